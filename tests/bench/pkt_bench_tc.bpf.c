// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Per-packet bench, TC side (make bench, part pkt): the references (empty,
 * floor), the wrapper alone, and vsn's TC entry points inside the wrapper
 * (pkt_bench_wrap.h).  vsn's maps come from its pins: built with pinning
 * off and loaded with each map replaced by the pinned one.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define VSN_CTX_TC
#include "vsn_types.h"
#include "lib/to_storage.h"
#include "lib/from_storage.h"
#include "pkt_bench_wrap.h"

SEC("tc")
int b_empty(struct __sk_buff *skb)
{
	return TC_ACT_OK;
}

SEC("tc")
int b_floor(struct __sk_buff *skb)
{
	return bench_floor_run(skb);
}

SEC("tc")
int b_w_none(struct __sk_buff *skb)
{
	struct bench_run r;

	if (bench_pre(skb, &r))
		return TC_ACT_SHOT;
	bench_post(skb, &r);
	return TC_ACT_OK;
}

SEC("tc")
int b_w_floor(struct __sk_buff *skb)
{
	struct bench_run r;
	int act;

	if (bench_pre(skb, &r))
		return TC_ACT_SHOT;
	act = bench_floor_run(skb);
	bench_post(skb, &r);
	return act;
}

/* vsn_vm_ingress (bpf/vsn_tc.bpf.c), line for line. */
SEC("tc")
int b_w_vm(struct __sk_buff *skb)
{
	__u32 idx = skb->ifindex;
	struct vsn_vm_if *vm;
	struct bench_run r;
	int act;

	if (bench_pre(skb, &r))
		return TC_ACT_SHOT;
	vm = bpf_map_lookup_elem(&vsn_vm_if, &idx);
	if (!vm || !vm->vm_id)
		act = pass(VSN_R_NOT_VM, skb->len);
	else
		act = steer_to_storage(skb, vm, VSN_MODE_VM);
	bench_post(skb, &r);
	return act;
}

/* vsn_up_ingress */
SEC("tc")
int b_w_up(struct __sk_buff *skb)
{
	struct bench_run r;
	int act;

	if (bench_pre(skb, &r))
		return TC_ACT_SHOT;
	act = steer_from_storage(skb);
	bench_post(skb, &r);
	return act;
}

/* What single helpers cost on this machine (each minus b_empty). */
SEC("tc")
int b_cal_ktime(struct __sk_buff *skb)
{
	return bpf_ktime_get_ns() == 1;
}

SEC("tc")
int b_cal_coarse(struct __sk_buff *skb)
{
	return bpf_ktime_get_coarse_ns() == 1;
}

SEC("tc")
int b_cal_csum_diff(struct __sk_buff *skb)
{
	__be32 a = skb->mark, b = skb->priority;

	return bpf_csum_diff(&a, 4, &b, 4, 0) == 1;
}

SEC("tc")
int b_cal_ringbuf(struct __sk_buff *skb)
{
	struct vsn_event *e = bpf_ringbuf_reserve(&vsn_events, sizeof(*e), 0);

	if (!e)
		return TC_ACT_SHOT;
	bpf_ringbuf_discard(e, BPF_RB_NO_WAKEUP);
	return TC_ACT_OK;
}

/*
 * Ablation: vsn's connection-hit path towards storage (steer_to_storage
 * for an established IPv4 connection with DNAT and a MAC next hop), cut
 * after cfg->stage steps, so that the cost of each step is the difference
 * of two stages.  Keep in step with steer_to_storage in bpf/lib/to_storage.h.
 *   1 VM lookup, parse, source check (port security)
 *   2 connection lookup       3 route and path
 *   4 path liveness stamp     5 NVMe/TCP parser call  6 DNAT (address, port)
 *   7 path L3, VLAN, MACs, redirect                   8 connection and
 *   path/backend/VM/reason counters (the whole hit path)
 */
SEC("tc")
int b_w_stage(struct __sk_buff *skb)
{
	__u32 idx = skb->ifindex, path_id, len = skb->len, st;
	struct vsn_conn_key k;
	struct vsn_path *path;
	struct vsn_vm_if *vm;
	struct bench_run r;
	struct vsn_conn *c;
	struct vsn_pkt p;
	int act = TC_ACT_OK;
	__u64 now;

	if (bench_pre(skb, &r))
		return TC_ACT_SHOT;
	st = r.cfg->stage;
	vm = bpf_map_lookup_elem(&vsn_vm_if, &idx);
	if (!vm || vsn_parse(skb, &p) != VSN_R_FORWARDED || vm_src_check(skb, &p, vm) || st < 2)
		goto out;
	conn_key_pkt(&k, &p, VSN_DIR_TO_STORAGE, vm->vm_id);
	c = bpf_map_lookup_elem(&vsn_conns, &k);
	if (!c || st < 3)
		goto out;
	path = route_path(c, &path_id);
	if (!path || st < 4)
		goto out;
	now = bpf_ktime_get_coarse_ns();
	path_live_tx(path_id, c->backend_id, vm->vm_id,
		     (p.pay_len || (p.tcp_flags & (TCPF_SYN | TCPF_FIN))) && conn_answered(c, &p),
		     (p.tcp_flags & (TCPF_SYN | TCPF_ACK)) == TCPF_SYN, now);
	if (st < 5)
		goto out;
	nvme_tcp_parse(skb, &p, c, path_id, VSN_DIR_TO_STORAGE);
	if (st < 6)
		goto out;
	if (rw_addr(skb, &p, false, &c->backend_addr) || rw_port(skb, &p, false, c->backend_port))
		goto out;
	if (st < 7)
		goto out;
	if (rw_path_l3(skb, &p, path) || ctx_vlan_pop(skb, p.vlan_inline) < 0 ||
	    rw_macs(skb, path->smac, path->dmac))
		goto out;
	act = bpf_redirect(path->ifindex, 0);
	if (st < 8)
		goto out;
	conn_touch(c, len, path_id, now);
	count(&vsn_path_stats, path_id, len);
	count(&vsn_be_stats, c->backend_id, len);
	count(&vsn_vm_stats, vm->vm_id, len);
	count_reason(VSN_R_FORWARDED, len);
out:
	bench_post(skb, &r);
	return act;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
