/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Ones' complement checksum arithmetic (RFC 1071, RFC 1624), the same under
 * every hook: what the context layer and the rewriter build their updates
 * from.
 */
#ifndef VSN_CSUM_H
#define VSN_CSUM_H

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

/* A 32-bit field covered by the checksum at off changes from old to new
 * (addresses): the helpers take both as they are, so no bpf_csum_diff call
 * is needed; XDP sums ~old + new itself (the same ones' complement sum). */
static __always_inline __u32 csum_diff4(__be32 old, __be32 new)
{
	__u64 s = (__u64)(__u32)~old + (__u32) new;

	return (__u32)s + (__u32)(s >> 32);
}

static __always_inline __s64 diff16(__u16 old, __u16 new)
{
	return (__s64)((__u16)~old + (__u32) new);
}

/* a + b in ones' complement, 32 bits (the end-around carry cannot carry
 * again: a + b < 2^33 - 1). */
static __always_inline __u32 csum_add32(__u32 a, __u32 b)
{
	__u64 s = (__u64)a + b;

	return (__u32)s + (__u32)(s >> 32);
}

#endif /* VSN_CSUM_H */
