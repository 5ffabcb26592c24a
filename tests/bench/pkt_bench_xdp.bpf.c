// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Per-packet bench, XDP side: empty, floor, the wrapper alone and vsn's
 * XDP entry point (vsn_up_xdp) inside the wrapper (pkt_bench_wrap.h).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define VSN_CTX_XDP
#include "vsn_types.h"
#include "lib/from_storage.h"
#include "pkt_bench_wrap.h"

SEC("xdp")
int bx_empty(struct xdp_md *ctx)
{
	return XDP_PASS;
}

SEC("xdp")
int bx_floor(struct xdp_md *ctx)
{
	return bench_floor_run(ctx);
}

SEC("xdp")
int bx_w_none(struct xdp_md *ctx)
{
	struct bench_run r;

	if (bench_pre(ctx, &r))
		return XDP_ABORTED;
	bench_post(ctx, &r);
	return XDP_PASS;
}

SEC("xdp")
int bx_w_floor(struct xdp_md *ctx)
{
	struct bench_run r;
	int act;

	if (bench_pre(ctx, &r))
		return XDP_ABORTED;
	act = bench_floor_run(ctx);
	bench_post(ctx, &r);
	return act;
}

/* vsn_up_xdp (bpf/vsn_xdp.bpf.c) */
SEC("xdp")
int bx_w_up(struct xdp_md *ctx)
{
	struct bench_run r;
	int act;

	if (bench_pre(ctx, &r))
		return XDP_ABORTED;
	act = steer_from_storage(ctx);
	bench_post(ctx, &r);
	return act;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
