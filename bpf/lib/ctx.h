/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Context layer: lets one parser and one rewriter run under TC (__sk_buff)
 * and XDP (xdp_md).  The entry file defines VSN_CTX_XDP or VSN_CTX_TC before
 * including this.  Everything hook-specific lives here and nowhere else.
 */
#ifndef VSN_CTX_H
#define VSN_CTX_H

#if defined(VSN_CTX_XDP)
#define vsn_ctx_t struct xdp_md
#define VSN_PASS  XDP_PASS
#define VSN_DROP  XDP_DROP
#elif defined(VSN_CTX_TC)
#define vsn_ctx_t struct __sk_buff
#define VSN_PASS  TC_ACT_OK
#define VSN_DROP  TC_ACT_SHOT
#else
#error "define VSN_CTX_XDP or VSN_CTX_TC before including ctx.h"
#endif

/* Loaded with inline asm so the compiler cannot fold the two loads into one
 * computed ctx offset, which the verifier refuses. */
#define CTX_LOAD_U32(ctx, field)                                                                   \
	({                                                                                         \
		__u64 v_;                                                                          \
		asm volatile("%0 = *(u32 *)(%1 + %2)"                                              \
			     : "=r"(v_)                                                            \
			     : "r"(ctx), "i"(__builtin_offsetof(vsn_ctx_t, field)));               \
		v_;                                                                                \
	})

static __always_inline void *ctx_data(vsn_ctx_t *ctx)
{
	return (void *)(long)CTX_LOAD_U32(ctx, data);
}

static __always_inline void *ctx_data_end(vsn_ctx_t *ctx)
{
	return (void *)(long)CTX_LOAD_U32(ctx, data_end);
}

/* Full packet length, including any non-linear part (TC super-frames). */
static __always_inline __u32 ctx_len(vsn_ctx_t *ctx)
{
#if defined(VSN_CTX_XDP)
	return ctx->data_end - ctx->data;
#else
	return ctx->len;
#endif
}

/* Make the first len bytes directly accessible.  TSO/GRO frames from a tap
 * may carry headers outside the linear area. */
static __always_inline int ctx_pull(vsn_ctx_t *ctx, __u32 len)
{
#if defined(VSN_CTX_XDP)
	return 0;
#else
	if (len > 0xffff)
		return -1;
	if (ctx_data(ctx) + len <= ctx_data_end(ctx))
		return 0;
	return bpf_skb_pull_data(ctx, len);
#endif
}

static __always_inline __u32 ctx_ifindex(vsn_ctx_t *ctx)
{
#if defined(VSN_CTX_XDP)
	return ctx->ingress_ifindex;
#else
	return ctx->ifindex;
#endif
}

/* Checksum fix-ups from a bpf_csum_diff() result.  Under TC the kernel's
 * L4 helper also keeps CHECKSUM_PARTIAL/COMPLETE skbs consistent, which XDP
 * frames (always complete checksums) do not need. */
/* ~fold(~old + diff), carried in 64 bits so no carry is lost (RFC 1624). */
static __always_inline __u16 csum_apply_diff(__u16 old, __s64 diff)
{
	__u64 s = (__u16)~old;

	s += (__u32)diff;
	s = (s & 0xffffffff) + (s >> 32);
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)~s;
}

/* The IPv4 header checksum at off: the same incremental update the kernel's
 * bpf_l3_csum_replace makes (the header is not part of any skb->csum the
 * update would have to keep), done inline under both hooks: one helper
 * call less per NAT. */
static __always_inline int ctx_l3_csum_diff(vsn_ctx_t *ctx, __u32 off, __s64 diff)
{
	void *data = ctx_data(ctx), *end = ctx_data_end(ctx);
	__u16 *p;

	/* Bound the offset itself: the verifier only tracks packet ranges
	 * for offsets it knows to be small. */
	asm volatile("" : "+r"(off));
	if (off > 0xff)
		return -1;
	p = data + off;
	if ((void *)(p + 1) > end)
		return -1;
	*p = csum_apply_diff(*p, diff);
	return 0;
}

static __always_inline int ctx_l4_csum_diff(vsn_ctx_t *ctx, __u32 off, __s64 diff, bool pseudo,
					    bool udp)
{
#if defined(VSN_CTX_XDP)
	void *data = ctx_data(ctx), *end = ctx_data_end(ctx);
	__u16 *p;

	/* Bound the offset itself: the verifier only tracks packet ranges
	 * for offsets it knows to be small. */
	asm volatile("" : "+r"(off));
	if (off > 0xff)
		return -1;
	p = data + off;
	if ((void *)(p + 1) > end)
		return -1;
	if (udp && *p == 0)
		return 0; /* IPv4 UDP without checksum stays without */
	*p = csum_apply_diff(*p, diff);
	if (udp && *p == 0)
		*p = 0xffff;
	return 0;
#else
	__u64 flags = pseudo ? BPF_F_PSEUDO_HDR : 0;

	if (udp)
		flags |= BPF_F_MARK_MANGLED_0;
	return bpf_l4_csum_replace(ctx, off, 0, diff, flags);
#endif
}

/* A 32-bit field covered by the checksum at off changes from old to new
 * (addresses): the helpers take both as they are, so no bpf_csum_diff call
 * is needed; XDP sums ~old + new itself (the same ones' complement sum). */
static __always_inline __u32 csum_diff4(__be32 old, __be32 new)
{
	__u64 s = (__u64)(__u32)~old + (__u32) new;

	return (__u32)s + (__u32)(s >> 32);
}

static __always_inline int ctx_l3_csum_replace4(vsn_ctx_t *ctx, __u32 off, __be32 old, __be32 new)
{
	return ctx_l3_csum_diff(ctx, off, csum_diff4(old, new));
}

static __always_inline int ctx_l4_csum_replace4(vsn_ctx_t *ctx, __u32 off, __be32 old, __be32 new,
						bool pseudo, bool udp)
{
#if defined(VSN_CTX_XDP)
	return ctx_l4_csum_diff(ctx, off, csum_diff4(old, new), pseudo, udp);
#else
	__u64 flags = sizeof(new) | (pseudo ? BPF_F_PSEUDO_HDR : 0);

	if (udp)
		flags |= BPF_F_MARK_MANGLED_0;
	return bpf_l4_csum_replace(ctx, off, old, new, flags);
#endif
}

/* Remove one inline 802.1Q tag at offset 12 (and, under TC, an offloaded
 * tag).  Returns the number of bytes removed from the front of L3 offsets. */
static __always_inline int ctx_vlan_pop(vsn_ctx_t *ctx, bool inline_tag)
{
#if defined(VSN_CTX_XDP)
	void *data = ctx_data(ctx), *end = ctx_data_end(ctx);
	__u8 macs[12];

	if (!inline_tag)
		return 0;
	if (data + 16 > end)
		return -1;
	__builtin_memcpy(macs, data, 12);
	if (bpf_xdp_adjust_head(ctx, 4))
		return -1;
	data = ctx_data(ctx);
	end = ctx_data_end(ctx);
	if (data + 12 > end)
		return -1;
	__builtin_memcpy(data, macs, 12);
	return 4;
#else
	if (!inline_tag && !ctx->vlan_present)
		return 0;
	if (bpf_skb_vlan_pop(ctx))
		return -1;
	return inline_tag ? 4 : 0;
#endif
}

/* Copy len bytes at off (anywhere in the packet, linear or not). */
static __always_inline int ctx_load_bytes(vsn_ctx_t *ctx, __u32 off, void *to, __u64 len)
{
#if defined(VSN_CTX_XDP)
	return bpf_xdp_load_bytes(ctx, off, to, len);
#else
	return bpf_skb_load_bytes(ctx, off, to, len);
#endif
}

/* Cut the packet to its first len bytes (len <= its length).  Under TC this
 * also ends GSO, and a CHECKSUM_COMPLETE skb becomes CHECKSUM_NONE. */
static __always_inline int ctx_trim(vsn_ctx_t *ctx, __u32 len)
{
	__u32 cur = ctx_len(ctx);

	if (len == cur)
		return 0;
#if defined(VSN_CTX_XDP)
	return bpf_xdp_adjust_tail(ctx, (int)len - (int)cur);
#else
	return bpf_skb_change_tail(ctx, len, 0);
#endif
}

#if defined(VSN_CTX_TC)
/* Offloaded tag: the egress device (or software fallback) inserts it, so
 * GSO super-frames stay valid. */
static __always_inline int ctx_vlan_push(vsn_ctx_t *ctx, __u16 vid)
{
	return bpf_skb_vlan_push(ctx, bpf_htons(ETH_P_8021Q), vid);
}
#endif

#endif /* VSN_CTX_H */
