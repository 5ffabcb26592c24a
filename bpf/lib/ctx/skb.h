/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* The context layer under TC (__sk_buff): included by lib/ctx.h only. */
#ifndef VSN_CTX_SKB_H
#define VSN_CTX_SKB_H

/* Full packet length, including any non-linear part (super-frames). */
static __always_inline __u32 ctx_len(struct __sk_buff *ctx)
{
	return ctx->len;
}

/* Make the first len bytes directly accessible.  TSO/GRO frames from a tap
 * may carry headers outside the linear area. */
static __always_inline int ctx_pull(struct __sk_buff *ctx, __u32 len)
{
	if (len > 0xffff)
		return -1;
	if (ctx_data(ctx) + len <= ctx_data_end(ctx))
		return 0;
	return bpf_skb_pull_data(ctx, len);
}

static __always_inline __u32 ctx_ifindex(struct __sk_buff *ctx)
{
	return ctx->ifindex;
}

/* The L4 checksum at off changes by diff (a bpf_csum_diff() result).  The
 * kernel's helper also keeps CHECKSUM_PARTIAL/COMPLETE skbs consistent:
 * pseudo says the change is in the pseudo-header (addresses). */
static __always_inline int ctx_l4_csum_diff(struct __sk_buff *ctx, __u32 off, __s64 diff,
					    bool pseudo, bool udp)
{
	__u64 flags = pseudo ? BPF_F_PSEUDO_HDR : 0;

	if (udp)
		flags |= BPF_F_MARK_MANGLED_0;
	return bpf_l4_csum_replace(ctx, off, 0, diff, flags);
}

/* A 32-bit field covered by the checksum at off changes from old to new
 * (addresses): the helper takes both as they are, no bpf_csum_diff call. */
static __always_inline int ctx_l4_csum_replace4(struct __sk_buff *ctx, __u32 off, __be32 old,
						__be32 new, bool pseudo, bool udp)
{
	__u64 flags = sizeof(new) | (pseudo ? BPF_F_PSEUDO_HDR : 0);

	if (udp)
		flags |= BPF_F_MARK_MANGLED_0;
	return bpf_l4_csum_replace(ctx, off, old, new, flags);
}

/* Remove one inline 802.1Q tag at offset 12, or an offloaded one.  Returns
 * the number of bytes removed from the front of L3 offsets. */
static __always_inline int ctx_vlan_pop(struct __sk_buff *ctx, bool inline_tag)
{
	if (!inline_tag && !ctx->vlan_present)
		return 0;
	if (bpf_skb_vlan_pop(ctx))
		return -1;
	return inline_tag ? 4 : 0;
}

/* Offloaded tag: the egress device (or software fallback) inserts it, so
 * GSO super-frames stay valid. */
static __always_inline int ctx_vlan_push(struct __sk_buff *ctx, __u16 vid)
{
	return bpf_skb_vlan_push(ctx, bpf_htons(ETH_P_8021Q), vid);
}

/* Copy len bytes at off (anywhere in the packet, linear or not). */
static __always_inline int ctx_load_bytes(struct __sk_buff *ctx, __u32 off, void *to, __u64 len)
{
	return bpf_skb_load_bytes(ctx, off, to, len);
}

/* Cut the packet to its first len bytes (len <= its length).  This also
 * ends GSO, and a CHECKSUM_COMPLETE skb becomes CHECKSUM_NONE. */
static __always_inline int ctx_trim(struct __sk_buff *ctx, __u32 len)
{
	if (len == ctx->len)
		return 0;
	return bpf_skb_change_tail(ctx, len, 0);
}

#endif /* VSN_CTX_SKB_H */
