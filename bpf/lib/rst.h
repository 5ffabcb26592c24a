/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* TC only: a TCP packet turned, in place, into the RST that answers it. */
#ifndef VSN_RST_H
#define VSN_RST_H

#include "lib/ctx.h"
#include "lib/parse.h"
#include "lib/rewrite.h"

/* The TCP header of the RST answering p (see rw_tcp_rst). */
static __always_inline void rst_tcp_hdr(struct tcphdr *th, const struct vsn_pkt *p)
{
	__u32 flags = p->tcp_flags;
	__be32 ack = th->ack_seq;
	__u16 port = th->source;

	th->source = th->dest;
	th->dest = port;
	th->ack_seq = bpf_htonl(p->seq + p->pay_len + !!(flags & TCPF_SYN) + !!(flags & TCPF_FIN));
	th->seq = (flags & TCPF_ACK) ? ack : 0;
	((__u8 *)th)[12] = (TCP_HLEN_MIN / 4) << 4;
	((__u8 *)th)[13] = TCPF_RST | TCPF_ACK;
	th->window = 0;
	th->check = 0;
	th->urg_ptr = 0;
}

/*
 * Turn TCP packet p, in place, into the RST that answers it: MACs, addresses
 * and ports swapped (any 802.1Q tag kept), fresh IP header, no options or
 * payload.  RST|ACK with seq = its ACK (0 without one) and ack = the end of
 * what it carried, so the sender accepts it in any state, SYN-SENT included.
 * The TCP checksum starts as 0xffff and goes through the L4 helper twice,
 * pseudo-header then header: a CHECKSUM_PARTIAL skb ends up holding the
 * pseudo-header sum its device completes, any other packet a full checksum.
 * A CHECKSUM_COMPLETE skb is trimmed (then NONE) unless it had no options or
 * payload, and then its sum does not change.  Own frame: kept off the stack
 * of the caller's deepest call chain (the NVMe/TCP parser).
 */
static __noinline int rw_tcp_rst(struct __sk_buff *ctx, const struct vsn_pkt *p)
{
	__u32 pseudo, hsum;
	void *data, *end, *l3;
	struct tcphdr *th;
	__u16 *eth, w;

	if (ctx_trim(ctx, p->l4_off + TCP_HLEN_MIN))
		return -1;
	data = ctx_data(ctx);
	end = ctx_data_end(ctx);
	eth = data;
	if ((void *)(eth + 6) > end)
		return -1;
	for (int i = 0; i < 3; i++) {
		w = eth[i];
		eth[i] = eth[i + 3];
		eth[i + 3] = w;
	}
	/* Constant offsets only (the parser vouched for them: no IP options,
	 * no extension headers): a bounded variable offset loses its bounds
	 * in a stack spill under older verifiers (6.1). */
	l3 = data + ETH_HLEN_;
	if (p->vlan_inline)
		l3 += VLAN_HLEN_;
	if (p->l3_proto == ETH_P_IP) {
		struct iphdr *ip = l3;
		__be32 a;

		th = l3 + sizeof(*ip);
		if ((void *)(th + 1) > end)
			return -1;
		a = ip->saddr;
		ip->saddr = ip->daddr;
		ip->daddr = a;
		*(__u16 *)ip = bpf_htons(0x4500); /* IPv4, 20 bytes, TOS 0 */
		ip->tot_len = bpf_htons(sizeof(*ip) + TCP_HLEN_MIN);
		ip->id = 0;
		ip->frag_off = bpf_htons(0x4000); /* DF */
		ip->ttl = 64;
		ip->protocol = IPPROTO_TCP;
		ip->check = 0;
		ip->check =
		    csum_apply_diff(0xffff, bpf_csum_diff(NULL, 0, (__be32 *)ip, sizeof(*ip), 0));
		pseudo = bpf_csum_diff(NULL, 0, (__be32 *)&ip->saddr, 8, 0);
		pseudo = csum_add32(pseudo, bpf_htonl(IPPROTO_TCP << 16 | TCP_HLEN_MIN));
	} else {
		struct ipv6hdr *ip6 = l3;
		__be32 *a, t;

		th = l3 + IPV6_HLEN_;
		if ((void *)(th + 1) > end)
			return -1;
		a = (__be32 *)&ip6->saddr;
		for (int i = 0; i < 4; i++) {
			t = a[i];
			a[i] = a[i + 4];
			a[i + 4] = t;
		}
		*(__be32 *)ip6 = bpf_htonl(6 << 28); /* traffic class, flow label 0 */
		ip6->payload_len = bpf_htons(TCP_HLEN_MIN);
		ip6->nexthdr = IPPROTO_TCP;
		ip6->hop_limit = 64;
		pseudo = bpf_csum_diff(NULL, 0, a, 32, 0);
		pseudo = csum_add32(pseudo, bpf_htonl(TCP_HLEN_MIN));
		pseudo = csum_add32(pseudo, bpf_htonl(IPPROTO_TCP));
	}
	rst_tcp_hdr(th, p);
	hsum = bpf_csum_diff(NULL, 0, (__be32 *)th, TCP_HLEN_MIN, 0);
	th->check = 0xffff;
	if (ctx_l4_csum_diff(ctx, p->l4_off + TCP_CSUM_OFF, pseudo, true, false))
		return -1;
	return ctx_l4_csum_diff(ctx, p->l4_off + TCP_CSUM_OFF, hsum, false, false);
}

#endif /* VSN_RST_H */
