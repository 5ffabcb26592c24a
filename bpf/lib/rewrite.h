/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The one header rewriter: NAT of addresses and ports, DSCP/ECN, TTL, flow
 * label and MACs, each keeping IPv4 header and TCP/UDP checksums right.
 * Every function re-derives packet pointers (helpers invalidate them) and
 * returns 0 or -1; on -1 the caller drops, since the packet may be half done.
 * Callers must have validated the packet with vsn_parse() first.
 */
#ifndef VSN_REWRITE_H
#define VSN_REWRITE_H

#include "lib/ctx.h"
#include "lib/parse.h"
#include "lib/maps.h"

#define IP4_CSUM_OFF  10
#define IP4_SADDR_OFF 12
#define IP4_DADDR_OFF 16
#define IP6_SADDR_OFF 8
#define IP6_DADDR_OFF 24
#define TCP_CSUM_OFF  16
#define UDP_CSUM_OFF  6

static __always_inline __u32 l4_csum_off(const struct vsn_pkt *p)
{
	return p->l4_off + (p->l4_proto == IPPROTO_TCP ? TCP_CSUM_OFF : UDP_CSUM_OFF);
}

/* Replace the 16-bit word at off (anywhere in the first VSN_MAX_HDR bytes). */
static __always_inline int store_u16(vsn_ctx_t *ctx, __u32 off, __u16 val, __u16 *old)
{
	void *data = ctx_data(ctx), *end = ctx_data_end(ctx);
	__u16 *w;

	/* The check must bind the register the pointer is built from. */
	asm volatile("" : "+r"(off));
	if (off > VSN_MAX_HDR)
		return -1;
	w = data + off;
	if ((void *)(w + 1) > end)
		return -1;
	*old = *w;
	*w = val;
	return 0;
}

/* Rewrite the source (src = true) or destination address. */
static __always_inline int rw_addr(vsn_ctx_t *ctx, const struct vsn_pkt *p, bool src,
				   const struct vsn_addr *to)
{
	void *data = ctx_data(ctx), *end = ctx_data_end(ctx);
	bool udp = p->l4_proto == IPPROTO_UDP;
	__u32 l3 = p->l3_off;
	struct vsn_addr old6, *a6;
	__be32 old, *a;

	if (l3 > ETH_HLEN_ + VLAN_HLEN_)
		return -1;
	if (p->l3_proto == ETH_P_IP) {
		a = data + l3 + (src ? IP4_SADDR_OFF : IP4_DADDR_OFF);
		if ((void *)(a + 1) > end)
			return -1;
		old = *a;
		*a = to->a[3];
		if (ctx_l3_csum_replace4(ctx, l3 + IP4_CSUM_OFF, old, to->a[3]))
			return -1;
		return ctx_l4_csum_replace4(ctx, l4_csum_off(p), old, to->a[3], true, udp);
	}
	a6 = data + l3 + (src ? IP6_SADDR_OFF : IP6_DADDR_OFF);
	if ((void *)(a6 + 1) > end)
		return -1;
	old6 = *a6;
	*a6 = *to;
	return ctx_l4_csum_diff(ctx, l4_csum_off(p),
				bpf_csum_diff((__be32 *)&old6, 16, (__be32 *)to, 16, 0), true, udp);
}

static __always_inline int rw_port(vsn_ctx_t *ctx, const struct vsn_pkt *p, bool src, __u16 to)
{
	__u16 old;

	if (store_u16(ctx, p->l4_off + (src ? 0 : 2), to, &old))
		return -1;
	if (old == to)
		return 0;
	return ctx_l4_csum_diff(ctx, l4_csum_off(p), diff16(old, to), false,
				p->l4_proto == IPPROTO_UDP);
}

/*
 * DSCP, ECN, TTL/hop limit and flow label: the fields the RoCEv2 ICRC masks,
 * and none of them is in the TCP/UDP pseudo-header.
 */
static __always_inline int rw_path_l3(vsn_ctx_t *ctx, const struct vsn_pkt *p,
				      const struct vsn_path *path)
{
	void *data = ctx_data(ctx), *end = ctx_data_end(ctx);
	__u32 l3 = p->l3_off;

	if (!(path->flags & (VSN_PATH_DSCP | VSN_PATH_ECN | VSN_PATH_TTL | VSN_PATH_FLOWLBL)))
		return 0;
	if (l3 > ETH_HLEN_ + VLAN_HLEN_)
		return -1;
	if (p->l3_proto == ETH_P_IP) {
		/* Words 0 (version/IHL, TOS) and 4 (TTL, protocol) of the
		 * header, rewritten whole so the checksum diff sees both. */
		union {
			__u16 w;
			__u8 b[2];
		} o0, n0, o8, n8;
		__u16 *w = data + l3;

		if ((void *)(w + 10) > end)
			return -1;
		o0.w = w[0];
		o8.w = w[4];
		n0 = o0;
		n8 = o8;
		if (path->flags & VSN_PATH_DSCP)
			n0.b[1] = (path->dscp << 2) | (n0.b[1] & 3);
		if (path->flags & VSN_PATH_ECN)
			n0.b[1] = (n0.b[1] & ~3) | (path->ecn & 3);
		if (path->flags & VSN_PATH_TTL)
			n8.b[0] = path->ttl;
		w[0] = n0.w;
		w[4] = n8.w;
		return ctx_l3_csum_diff(ctx, l3 + IP4_CSUM_OFF,
					diff16(o0.w, n0.w) + diff16(o8.w, n8.w));
	} else {
		struct ipv6hdr *ip6 = data + l3;
		__u32 w, tc;

		if ((void *)(ip6 + 1) > end)
			return -1;
		w = bpf_ntohl(*(__be32 *)ip6);
		tc = (w >> 20) & 0xff;
		if (path->flags & VSN_PATH_DSCP)
			tc = (path->dscp << 2) | (tc & 3);
		if (path->flags & VSN_PATH_ECN)
			tc = (tc & ~3) | (path->ecn & 3);
		w = (w & 0xf00fffff) | (tc << 20);
		if (path->flags & VSN_PATH_FLOWLBL)
			w = (w & 0xfff00000) | (path->flow_label & 0xfffff);
		*(__be32 *)ip6 = bpf_htonl(w);
		if (path->flags & VSN_PATH_TTL)
			ip6->hop_limit = path->ttl;
	}
	return 0;
}

static __always_inline int rw_macs(vsn_ctx_t *ctx, const __u8 *smac, const __u8 *dmac)
{
	void *data = ctx_data(ctx), *end = ctx_data_end(ctx);
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > end)
		return -1;
	__builtin_memcpy(eth->h_dest, dmac, 6);
	__builtin_memcpy(eth->h_source, smac, 6);
	return 0;
}

#endif /* VSN_REWRITE_H */
