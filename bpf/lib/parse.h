/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The one packet parser: Ethernet, at most one 802.1Q tag, IPv4 or IPv6
 * (no extension headers), TCP or UDP.  It only reads; the result is a set of
 * offsets and the flow tuple.  Anything it cannot vouch for is reported by
 * reason and must be passed untouched by the caller.
 */
#ifndef VSN_PARSE_H
#define VSN_PARSE_H

#include "lib/ctx.h"

#define ETH_HLEN_    14
#define VLAN_HLEN_   4
#define IPV6_HLEN_   40
#define TCP_HLEN_MIN 20
#define UDP_HLEN_    8
#define BTH_LEN	     12
#define ICRC_LEN     4
/* Headers the rewriter may touch all lie in the first MAX_HDR bytes. */
#define VSN_MAX_HDR (ETH_HLEN_ + VLAN_HLEN_ + 60 + 60)

struct vsn_pkt {
	struct vsn_addr saddr;
	struct vsn_addr daddr;
	__u16 sport; /* network byte order */
	__u16 dport;
	__u16 l3_off;
	__u16 l4_off;
	__u16 l3_proto; /* ETH_P_IP or ETH_P_IPV6, host order */
	__u8 l4_proto;	/* IPPROTO_TCP or IPPROTO_UDP */
	__u8 tcp_flags;
	__u8 vlan_inline; /* the frame carries an 802.1Q tag in its bytes */
	__u8 ecn;	  /* the IP header's ECN field */
	__u8 pad[3];
	__u32 len;     /* whole packet */
	__u32 seq;     /* TCP: sequence number, host order */
	__u32 pay_off; /* TCP: payload offset in the packet */
	__u32 pay_len; /* TCP: payload bytes (IP length, not frame padding) */
};

#define TCPF_FIN 0x01
#define TCPF_SYN 0x02
#define TCPF_RST 0x04
#define TCPF_ACK 0x10

static __always_inline void addr_set_v4(struct vsn_addr *a, __be32 v4)
{
	a->a[0] = 0;
	a->a[1] = 0;
	a->a[2] = bpf_htonl(0x0000ffff);
	a->a[3] = v4;
}

static __always_inline bool ip6_is_ext_hdr(__u8 nh)
{
	switch (nh) {
	case 0:	  /* hop-by-hop */
	case 43:  /* routing */
	case 44:  /* fragment */
	case 50:  /* ESP */
	case 51:  /* AH */
	case 60:  /* destination options */
	case 135: /* mobility */
	case 139: /* HIP */
	case 140: /* shim6 */
		return true;
	}
	return false;
}

/*
 * Returns VSN_R_FORWARDED (0) when the packet is a well-formed TCP or UDP
 * packet over IPv4/IPv6, else the reason to pass it untouched.
 */
static __always_inline int vsn_parse(vsn_ctx_t *ctx, struct vsn_pkt *p)
{
	void *data, *end;
	struct ethhdr *eth;
	__u32 off = ETH_HLEN_, l3_len, l4_avail;
	__u16 proto;

	p->len = ctx_len(ctx);
	if (ctx_pull(ctx, p->len < VSN_MAX_HDR ? p->len : VSN_MAX_HDR))
		return VSN_R_MALFORMED;
	data = ctx_data(ctx);
	end = ctx_data_end(ctx);
	eth = data;
	if ((void *)(eth + 1) > end)
		return VSN_R_MALFORMED;
	proto = bpf_ntohs(eth->h_proto);
	p->vlan_inline = 0;
	if (proto == ETH_P_8021Q || proto == ETH_P_8021AD) {
		struct vlan_hdr *vh = data + ETH_HLEN_;

		if ((void *)(vh + 1) > end)
			return VSN_R_MALFORMED;
		proto = bpf_ntohs(vh->h_vlan_encapsulated_proto);
		if (proto == ETH_P_8021Q || proto == ETH_P_8021AD)
			return VSN_R_UNSUPPORTED; /* QinQ */
		p->vlan_inline = 1;
		off += VLAN_HLEN_;
	}
	p->l3_off = off;
	p->l3_proto = proto;

	if (proto == ETH_P_IP) {
		struct iphdr *ip = data + off;
		__u32 ihl;

		if ((void *)(ip + 1) > end)
			return VSN_R_MALFORMED;
		ihl = ip->ihl * 4;
		if (ip->version != 4 || ihl < sizeof(*ip))
			return VSN_R_MALFORMED;
		l3_len = bpf_ntohs(ip->tot_len);
		if (l3_len < ihl || off + l3_len > p->len)
			return VSN_R_MALFORMED;
		/* Storage senders never use IP options, and RoCEv2 ICRC
		 * implementations assume a 20-byte header: leave them alone. */
		if (ihl != sizeof(*ip))
			return VSN_R_UNSUPPORTED;
		if (ip->frag_off & bpf_htons(0x3fff)) /* MF or an offset */
			return VSN_R_UNSUPPORTED;
		if (ip->protocol != IPPROTO_TCP && ip->protocol != IPPROTO_UDP)
			return VSN_R_NOT_STORAGE;
		p->ecn = ip->tos & 3;
		addr_set_v4(&p->saddr, ip->saddr);
		addr_set_v4(&p->daddr, ip->daddr);
		p->l4_proto = ip->protocol;
		off += ihl;
		l4_avail = l3_len - ihl;
	} else if (proto == ETH_P_IPV6) {
		struct ipv6hdr *ip6 = data + off;

		if ((void *)(ip6 + 1) > end)
			return VSN_R_MALFORMED;
		if (ip6->version != 6)
			return VSN_R_MALFORMED;
		l4_avail = bpf_ntohs(ip6->payload_len);
		if (off + IPV6_HLEN_ + l4_avail > p->len)
			return VSN_R_MALFORMED;
		if (ip6_is_ext_hdr(ip6->nexthdr))
			return VSN_R_UNSUPPORTED;
		if (ip6->nexthdr != IPPROTO_TCP && ip6->nexthdr != IPPROTO_UDP)
			return VSN_R_NOT_STORAGE;
		p->ecn = (bpf_ntohl(*(__be32 *)ip6) >> 20) & 3;
		__builtin_memcpy(&p->saddr, &ip6->saddr, 16);
		__builtin_memcpy(&p->daddr, &ip6->daddr, 16);
		p->l4_proto = ip6->nexthdr;
		off += IPV6_HLEN_;
	} else {
		return VSN_R_NOT_STORAGE;
	}
	if (off > VSN_MAX_HDR - TCP_HLEN_MIN)
		return VSN_R_MALFORMED;
	p->l4_off = off;

	if (p->l4_proto == IPPROTO_TCP) {
		struct tcphdr *th = data + off;
		__u32 doff;

		if ((void *)(th + 1) > end || l4_avail < TCP_HLEN_MIN)
			return VSN_R_MALFORMED;
		doff = th->doff * 4;
		if (doff < TCP_HLEN_MIN || doff > l4_avail)
			return VSN_R_MALFORMED;
		p->sport = th->source;
		p->dport = th->dest;
		p->tcp_flags = ((__u8 *)th)[13];
		p->seq = bpf_ntohl(th->seq);
		p->pay_off = off + doff;
		p->pay_len = l4_avail - doff;
	} else {
		struct udphdr *uh = data + off;
		__u32 ulen;

		if ((void *)(uh + 1) > end || l4_avail < UDP_HLEN_)
			return VSN_R_MALFORMED;
		ulen = bpf_ntohs(uh->len);
		if (ulen < UDP_HLEN_ || ulen > l4_avail)
			return VSN_R_MALFORMED;
		p->sport = uh->source;
		p->dport = uh->dest;
		p->tcp_flags = 0;
		p->seq = 0;
		p->pay_off = off + UDP_HLEN_;
		p->pay_len = ulen - UDP_HLEN_;
		/* RoCEv2 must carry at least a BTH and the ICRC. */
		if (uh->dest == bpf_htons(VSN_PORT_ROCEV2) && ulen < UDP_HLEN_ + BTH_LEN + ICRC_LEN)
			return VSN_R_MALFORMED;
	}
	return VSN_R_FORWARDED;
}

#endif /* VSN_PARSE_H */
