// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Per-packet cost harness for BPF_PROG_TEST_RUN (make bench).  A program
 * that rewrites the packet sees its own output from the second repetition
 * on, so vsn's VM-ingress logic is timed through a wrapper that restores
 * the packet's first bytes and the connection's parser state after each
 * run; the same wrapper without vsn in between ("restore") is timed too and
 * subtracted.  "empty" and "floor" (parse Ethernet/IP/TCP, one hash lookup)
 * are the references.  Maps come from vsn's pins (built with pinning off).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define VSN_CTX_TC
#include "vsn_types.h"
#include "lib/defs.h"
#include "lib/ctx.h"
#include "lib/maps.h"
#include "lib/telemetry.h"
#include "lib/parse.h"
#include "lib/rewrite.h"
#include "lib/conn.h"
#include "lib/nvme_tcp.h"
#include "lib/roce.h"
#include "lib/steer.h"

#define SAVE_LEN 64 /* Ethernet, IPv4, TCP: every byte vsn rewrites */

struct bench_save {
	__u8 head[SAVE_LEN];
	struct vsn_pdu_state pdu;
	struct vsn_pdu_state rpdu;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bench_save);
} bench_save SEC(".maps");

/* The floor's table: same key and value as vsn's connections, own map. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, VSN_MAX_CONNS);
	__type(key, struct vsn_conn_key);
	__type(value, struct vsn_conn);
} bench_floor SEC(".maps");

const volatile __u32 bench_vm_id = 1;

SEC("tc")
int bench_empty(struct __sk_buff *skb)
{
	return TC_ACT_OK;
}

SEC("tc")
int bench_floor_prog(struct __sk_buff *skb)
{
	struct vsn_conn_key k;
	struct vsn_pkt p;

	if (vsn_parse(skb, &p) != VSN_R_FORWARDED)
		return TC_ACT_OK;
	conn_key_pkt(&k, &p, VSN_DIR_TO_STORAGE, bench_vm_id);
	return bpf_map_lookup_elem(&bench_floor, &k) ? TC_ACT_REDIRECT : TC_ACT_OK;
}

/* Save what a run changes: the packet head and both parser states. */
static __always_inline struct bench_save *save(struct __sk_buff *skb, struct vsn_conn **fwd,
					       struct vsn_conn **rev)
{
	struct vsn_conn_key k, rk;
	struct bench_save *s;
	struct vsn_pkt p;
	__u32 zero = 0, len = skb->len < SAVE_LEN ? skb->len : SAVE_LEN;

	s = bpf_map_lookup_elem(&bench_save, &zero);
	if (!s || len < 60 || bpf_skb_load_bytes(skb, 0, s->head, SAVE_LEN))
		return NULL;
	*fwd = NULL;
	*rev = NULL;
	if (vsn_parse(skb, &p) != VSN_R_FORWARDED)
		return s;
	conn_key_pkt(&k, &p, VSN_DIR_TO_STORAGE, bench_vm_id);
	*fwd = bpf_map_lookup_elem(&vsn_conns, &k);
	if (*fwd) {
		s->pdu = (*fwd)->pdu;
		conn_rev_key(&rk, *fwd, IPPROTO_TCP);
		*rev = bpf_map_lookup_elem(&vsn_conns, &rk);
		if (*rev)
			s->rpdu = (*rev)->pdu;
	}
	return s;
}

static __always_inline void restore(struct __sk_buff *skb, struct bench_save *s,
				    struct vsn_conn *fwd, struct vsn_conn *rev)
{
	bpf_skb_store_bytes(skb, 0, s->head, SAVE_LEN, 0);
	if (fwd)
		fwd->pdu = s->pdu;
	if (rev)
		rev->pdu = s->rpdu;
}

SEC("tc")
int bench_restore(struct __sk_buff *skb)
{
	struct vsn_conn *fwd, *rev;
	struct bench_save *s = save(skb, &fwd, &rev);

	if (!s)
		return TC_ACT_SHOT;
	restore(skb, s, fwd, rev);
	return TC_ACT_OK;
}

SEC("tc")
int bench_vm(struct __sk_buff *skb)
{
	struct vsn_conn *fwd, *rev;
	struct bench_save *s = save(skb, &fwd, &rev);
	int act;

	if (!s)
		return TC_ACT_SHOT;
	act = steer_to_storage(skb, bench_vm_id, 0, VSN_MODE_VM);
	restore(skb, s, fwd, rev);
	return act;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
