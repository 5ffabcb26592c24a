/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* The context layer under XDP (xdp_md): included by lib/ctx.h only.  XDP
 * frames come off the wire with complete checksums and no offloaded tag. */
#ifndef VSN_CTX_XDP_H
#define VSN_CTX_XDP_H

static __always_inline __u32 ctx_len(struct xdp_md *ctx)
{
	return ctx->data_end - ctx->data;
}

/* The whole frame is linear. */
static __always_inline int ctx_pull(struct xdp_md *ctx, __u32 len)
{
	return 0;
}

static __always_inline __u32 ctx_ifindex(struct xdp_md *ctx)
{
	return ctx->ingress_ifindex;
}

/* The L4 checksum at off changes by diff, updated in place (RFC 1624);
 * pseudo is for the TC half's sake. */
static __always_inline int ctx_l4_csum_diff(struct xdp_md *ctx, __u32 off, __s64 diff, bool pseudo,
					    bool udp)
{
	__u16 *p = ctx_u16_at(ctx, off);

	if (!p)
		return -1;
	if (udp && *p == 0)
		return 0; /* IPv4 UDP without checksum stays without */
	*p = csum_apply_diff(*p, diff);
	if (udp && *p == 0)
		*p = 0xffff;
	return 0;
}

/* A 32-bit field covered by the checksum at off changes from old to new:
 * ~old + new is the same ones' complement sum the TC helper forms. */
static __always_inline int ctx_l4_csum_replace4(struct xdp_md *ctx, __u32 off, __be32 old,
						__be32 new, bool pseudo, bool udp)
{
	return ctx_l4_csum_diff(ctx, off, csum_diff4(old, new), pseudo, udp);
}

/* Remove one inline 802.1Q tag at offset 12.  Returns the number of bytes
 * removed from the front of L3 offsets. */
static __always_inline int ctx_vlan_pop(struct xdp_md *ctx, bool inline_tag)
{
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
}

/* Copy len bytes at off. */
static __always_inline int ctx_load_bytes(struct xdp_md *ctx, __u32 off, void *to, __u64 len)
{
	return bpf_xdp_load_bytes(ctx, off, to, len);
}

/* Cut the frame to its first len bytes (len <= its length). */
static __always_inline int ctx_trim(struct xdp_md *ctx, __u32 len)
{
	__u32 cur = ctx_len(ctx);

	if (len == cur)
		return 0;
	return bpf_xdp_adjust_tail(ctx, (int)len - (int)cur);
}

#endif /* VSN_CTX_XDP_H */
