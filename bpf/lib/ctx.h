/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Context layer: one parser and one rewriter run under TC (__sk_buff) and
 * XDP (xdp_md).  The entry file defines VSN_CTX_TC or VSN_CTX_XDP; this
 * header picks that hook's half (ctx/skb.h or ctx/xdp.h), which define the
 * same functions: ctx_data, ctx_data_end, ctx_len, ctx_pull, ctx_ifindex,
 * ctx_l4_csum_diff, ctx_l4_csum_replace4, ctx_vlan_pop, ctx_load_bytes,
 * ctx_trim (and ctx_vlan_push under TC only).  What both hooks share is here.
 */
#ifndef VSN_CTX_H
#define VSN_CTX_H

#include "lib/defs.h"
#include "lib/csum.h"

#if defined(VSN_CTX_XDP)
#define vsn_ctx_t struct xdp_md
#define VSN_PASS  XDP_PASS
#define VSN_DROP  XDP_DROP
#elif defined(VSN_CTX_TC)
#define vsn_ctx_t struct __sk_buff
#define VSN_PASS  TC_ACT_OK
#define VSN_DROP  TC_ACT_SHOT
#else
#error "define VSN_CTX_XDP or VSN_CTX_TC before including lib/ctx.h"
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

/* The 16-bit word at off in the first 256 bytes, or NULL past the packet.
 * The offset itself is bounded: the verifier only tracks packet ranges for
 * offsets it knows to be small. */
static __always_inline __u16 *ctx_u16_at(vsn_ctx_t *ctx, __u32 off)
{
	void *data = ctx_data(ctx), *end = ctx_data_end(ctx);
	__u16 *p;

	asm volatile("" : "+r"(off));
	if (off > 0xff)
		return NULL;
	p = data + off;
	if ((void *)(p + 1) > end)
		return NULL;
	return p;
}

/* The IPv4 header checksum at off: the same incremental update the kernel's
 * bpf_l3_csum_replace makes (the header is not part of any skb->csum the
 * update would have to keep), done inline under both hooks: one helper
 * call less per NAT. */
static __always_inline int ctx_l3_csum_diff(vsn_ctx_t *ctx, __u32 off, __s64 diff)
{
	__u16 *p = ctx_u16_at(ctx, off);

	if (!p)
		return -1;
	*p = csum_apply_diff(*p, diff);
	return 0;
}

static __always_inline int ctx_l3_csum_replace4(vsn_ctx_t *ctx, __u32 off, __be32 old, __be32 new)
{
	return ctx_l3_csum_diff(ctx, off, csum_diff4(old, new));
}

#if defined(VSN_CTX_XDP)
#include "lib/ctx/xdp.h"
#else
#include "lib/ctx/skb.h"
#endif

#endif /* VSN_CTX_H */
