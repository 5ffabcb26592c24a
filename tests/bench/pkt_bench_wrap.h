/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The per-packet bench's wrapper, for TC and XDP alike (included after the
 * datapath library by pkt_bench_tc.bpf.c and pkt_bench_xdp.bpf.c).
 *
 * BPF_PROG_TEST_RUN with repeat N runs a program N times on one buffer, so a
 * program that rewrites the packet would see its own output from the second
 * run on.  The wrapper runs the program under test between two steps:
 *   before: choose the connection of this run (run k uses k % n: the address
 *           at cfg->field becomes addr0 + k % n), advance the TCP sequence
 *           number when asked (so the NVMe/TCP parser stays in step), and
 *           save the packet's head;
 *   after:  put the head back (except after the last run, whose output the
 *           tool checks), and delete the connection a SYN created.
 * The wrapper alone ("w_none") is measured in the same run and subtracted.
 */
#ifndef VBN_PKT_BENCH_WRAP_H
#define VBN_PKT_BENCH_WRAP_H

#include "pkt_bench.h"

#define BENCH_VM_ID   1
#define BENCH_SEQ_OFF (ETH_HLEN_ + 20 + 4) /* IPv4 without options, TCP seq */

struct bench_save {
	__u8 head[BENCH_HEAD];
	struct vsn_conn_key k; /* the VM-side key of a SYN (BENCH_F_DELETE) */
	struct vsn_conn_key rk;
	struct vsn_pkt p;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bench_cfg);
} bench_cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bench_save);
} bench_save SEC(".maps");

/* The floor's table: same key and value as vsn's connections, own map,
 * filled by the tool with the same entries. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, VSN_MAX_CONNS);
	__type(key, struct vsn_conn_key);
	__type(value, struct vsn_conn);
} bench_floor SEC(".maps");

/* The floor: parse Ethernet/IP/TCP, one hash lookup. */
static __always_inline int bench_floor_run(vsn_ctx_t *ctx)
{
	struct vsn_conn_key k;
	struct vsn_pkt p;

	if (vsn_parse(ctx, &p) != VSN_R_FORWARDED)
		return VSN_PASS;
	conn_key_pkt(&k, &p, VSN_DIR_TO_STORAGE, BENCH_VM_ID);
	return bpf_map_lookup_elem(&bench_floor, &k) ? VSN_DROP : VSN_PASS;
}

struct bench_run {
	struct bench_cfg *cfg;
	struct bench_save *s;
	__u64 k;
};

static __always_inline int bench_pre(vsn_ctx_t *ctx, struct bench_run *r)
{
	void *data = ctx_data(ctx), *end = ctx_data_end(ctx);
	__u32 zero = 0, f, i = 0;
	__u64 visit;

	r->cfg = bpf_map_lookup_elem(&bench_cfg, &zero);
	r->s = bpf_map_lookup_elem(&bench_save, &zero);
	if (!r->cfg || !r->s || data + BENCH_HEAD > end)
		return -1;
	r->k = r->cfg->ctr++;
	visit = r->k;
	if (r->cfg->n > 1) {
		i = r->k % r->cfg->n;
		visit = r->k / r->cfg->n;
	}
	f = r->cfg->field & (BENCH_HEAD - 1);
	if (f) {
		__be32 *a = data + f;

		if ((void *)(a + 1) > end)
			return -1;
		*a = bpf_htonl(r->cfg->addr0 + i);
	}
	if (r->cfg->flags & BENCH_F_SEQ)
		*(__be32 *)(data + BENCH_SEQ_OFF) =
		    bpf_htonl(r->cfg->seq0 + (__u32)visit * r->cfg->seq_step);
	if (r->cfg->flags & BENCH_F_RESTORE)
		__builtin_memcpy(r->s->head, data, BENCH_HEAD);
	if (r->cfg->flags & BENCH_F_DELETE) {
		if (vsn_parse(ctx, &r->s->p) != VSN_R_FORWARDED)
			return -1;
		conn_key_pkt(&r->s->k, &r->s->p, VSN_DIR_TO_STORAGE, BENCH_VM_ID);
	}
	return 0;
}

static __always_inline void bench_post(vsn_ctx_t *ctx, struct bench_run *r)
{
	void *data, *end;
	struct vsn_conn *c;

	if (r->cfg->flags & BENCH_F_DELETE) {
		c = bpf_map_lookup_elem(&vsn_conns, &r->s->k);
		if (c) {
			vsn_conn_rev_key(&r->s->rk, c, IPPROTO_TCP);
			bpf_map_delete_elem(&vsn_conns, &r->s->rk);
			bpf_map_delete_elem(&vsn_conns, &r->s->k);
		}
	}
	if (!(r->cfg->flags & BENCH_F_RESTORE) || r->k == r->cfg->last)
		return;
	data = ctx_data(ctx);
	end = ctx_data_end(ctx);
	if (data + BENCH_HEAD <= end)
		__builtin_memcpy(data, r->s->head, BENCH_HEAD);
}

#endif /* VBN_PKT_BENCH_WRAP_H */
