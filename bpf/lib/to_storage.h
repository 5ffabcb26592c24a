/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * TC only: the pipeline towards storage (VM interface ingress, or uplink
 * egress for the host's own flows): parse, find or create the connection,
 * resolve its path, observe, rewrite, redirect.
 */
#ifndef VSN_TO_STORAGE_H
#define VSN_TO_STORAGE_H

#include "lib/ctx.h"
#include "lib/parse.h"
#include "lib/counters.h"
#include "lib/conn.h"
#include "lib/route.h"
#include "lib/live.h"
#include "lib/rewrite.h"
#include "lib/rst.h"
#include "lib/redirect.h"
#include "lib/roce.h"
#include "lib/guard.h"
#include "lib/nvme_tcp/parse.h"

/*
 * A packet of a connection the controller marked reset (its backend failed):
 * a TCP initiator gets a RST at once, instead of retransmitting into a dead
 * backend until its own timeouts fire; RoCEv2 is dropped.  The entries go,
 * so the next packet starts afresh.  A RST from the initiator is not
 * answered.  In host mode the RST goes up the uplink's receive path to the
 * local stack.
 */
static __always_inline int conn_reset(struct __sk_buff *skb, const struct vsn_pkt *p,
				      const struct vsn_conn *c, const struct vsn_conn_key *k,
				      enum vsn_mode mode, __u32 len)
{
	struct vsn_scratch *sc = scratch();
	__u32 reason = VSN_R_RESET;
	int act = TC_ACT_SHOT;

	if (!sc)
		return drop(VSN_R_REWRITE_ERR, len);
	if (p->l4_proto == IPPROTO_TCP) {
		/* RoCEv2's fabric-side entry is shared by the VM's flows. */
		vsn_conn_rev_key(&sc->rkey, c, IPPROTO_TCP);
		bpf_map_delete_elem(&vsn_conns, &sc->rkey);
		if (!(c->pdu.flags & VSN_PDU_CLOSED))
			tel_conn_event(VSN_EV_CONN_CLOSE, c, c->last_path, VSN_DIR_TO_STORAGE);
		if (!(p->tcp_flags & TCPF_RST)) {
			if (rw_tcp_rst(skb, p))
				reason = VSN_R_REWRITE_ERR;
			else
				act = bpf_redirect(skb->ifindex,
						   mode == VSN_MODE_HOST ? BPF_F_INGRESS : 0);
		}
	}
	if (!(c->flags & VSN_CONN_CLOSING))
		vm_conns_add(c->vm_id, -1);
	bpf_map_delete_elem(&vsn_conns, k);
	count_reason(reason, len);
	return act;
}

/*
 * TCP from a VM to a volume, neither a SYN nor of a connection vsn knows
 * (its entry was reset, evicted, or never made): only a SYN makes an entry,
 * so that a tenant cannot fill the table with stray segments.  Answered
 * with a RST, so a real initiator reconnects at once.
 */
static __always_inline int no_syn(struct __sk_buff *skb, const struct vsn_pkt *p, __u32 vm_id,
				  __u32 len)
{
	if (!(p->tcp_flags & TCPF_RST) && !rw_tcp_rst(skb, p)) {
		vm_drop(vm_id, VSN_R_NO_SYN, len);
		return bpf_redirect(skb->ifindex, 0);
	}
	return vm_drop(vm_id, VSN_R_NO_SYN, len);
}

/*
 * Has storage answered connection c (VM side)?  Only such connections'
 * requests may start their path's silence clock.  Storage marks the entry
 * it finds (the fabric-side one); the VM side learns it on its next
 * request, one lookup per request until then.
 */
static __always_inline bool conn_answered(struct vsn_conn *c, const struct vsn_pkt *p)
{
	struct vsn_scratch *sc;
	struct vsn_conn *r;

	if (c->flags & VSN_CONN_ANSWERED)
		return true;
	sc = scratch();
	if (!sc)
		return false;
	if (p->l4_proto == IPPROTO_TCP) {
		vsn_conn_rev_key(&sc->rkey, c, IPPROTO_TCP);
	} else {
		roce_rev_key(&sc->rkey, c);
	}
	r = bpf_map_lookup_elem(&vsn_conns, &sc->rkey);
	if (!r || !(r->flags & VSN_CONN_ANSWERED))
		return false;
	c->flags |= VSN_CONN_ANSWERED;
	return true;
}

/*
 * Towards storage (VM ingress, or host egress in host mode): find or create
 * the connection, resolve its current path, rewrite and redirect.  tc_prio:
 * the skb priority of steered packets (the VM's class on the uplink's
 * qdisc), 0 to leave it.
 */
static __always_inline int steer_to_storage(struct __sk_buff *skb, const struct vsn_vm_if *vm,
					    enum vsn_mode mode)
{
	__u32 vm_id = vm ? vm->vm_id : 0, tc_prio = vm ? vm->tc_prio : 0;
	struct vsn_conn_key k;
	struct vsn_pkt p;
	struct vsn_conn *c;
	struct vsn_path *path;
	__u32 reason, path_id, len = skb->len;
	int vlan_removed, act;
	bool request;
	__u64 now;

	reason = vsn_parse(skb, &p);
	if (reason != VSN_R_FORWARDED)
		return pass(reason, len);
	if (mode == VSN_MODE_VM) {
		reason = vm_src_check(skb, &p, vm);
		if (reason == VSN_R_MALFORMED)
			return pass(reason, len);
		if (reason)
			return vm_drop(vm_id, reason, len);
	}
	conn_key_pkt(&k, &p, VSN_DIR_TO_STORAGE, vm_id);
	c = bpf_map_lookup_elem(&vsn_conns, &k);
	/* Only storage packets are redirected between uplinks: the host's
	 * other traffic need not look for the marker. */
	if (c && mode == VSN_MODE_HOST && host_redirected(skb, &p))
		return TC_ACT_OK;
	if (c && (p.tcp_flags & (TCPF_SYN | TCPF_ACK)) == TCPF_SYN) {
		/* A new connection reusing a tuple: choose afresh if its old
		 * backend is no longer up, or the old connection was reset. */
		struct vsn_backend *be = bpf_map_lookup_elem(&vsn_backends, &c->backend_id);

		if (!be || be->state != VSN_BE_UP ||
		    (c->flags & (VSN_CONN_RESET | VSN_CONN_CLOSING)))
			c = NULL;
	}
	if (c && (c->flags & VSN_CONN_RESET))
		return conn_reset(skb, &p, c, &k, mode, len);
	if (!c) {
		c = conn_create(skb, &p, &k, vm, mode, &reason);
		if (!c) {
			if (reason == VSN_R_NO_SYN)
				return no_syn(skb, &p, vm_id, len);
			if (reason == VSN_R_CONN_LIMIT || reason == VSN_R_CONN_RATE)
				return vm_drop(vm_id, reason, len);
			return pass(reason, len);
		}
	} else if (mode == VSN_MODE_VM && (p.tcp_flags & (TCPF_FIN | TCPF_RST))) {
		vm_conn_closing(c);
	}
	path = route_path(c, &path_id);
	if (!path)
		return pass(VSN_R_NO_ROUTE, len);
	request =
	    (p.l4_proto == IPPROTO_UDP || p.pay_len || (p.tcp_flags & (TCPF_SYN | TCPF_FIN))) &&
	    conn_answered(c, &p);
	/* Coarse (a tick) is fine for liveness, and ten times cheaper. */
	now = bpf_ktime_get_coarse_ns();
	path_live_tx(path_id, c->backend_id, vm_id, request,
		     (p.tcp_flags & (TCPF_SYN | TCPF_ACK)) == TCPF_SYN, now);
	/* Before any rewrite moves the payload (VLAN pop). */
	if (p.l4_proto == IPPROTO_TCP)
		nvme_tcp_parse(skb, &p, c, path_id, VSN_DIR_TO_STORAGE);
	else
		roce_account(skb, &p, vm_id, path_id, VSN_DIR_TO_STORAGE, len);

	if (c->flags & VSN_CONN_DNAT) {
		if (rw_addr(skb, &p, false, &c->backend_addr) ||
		    rw_port(skb, &p, false, c->backend_port))
			return drop(VSN_R_REWRITE_ERR, len);
	}
	if (c->flags & VSN_CONN_SNAT) {
		if (rw_addr(skb, &p, true, &c->snat_addr) ||
		    (c->snat_port != c->vm_port && rw_port(skb, &p, true, c->snat_port)))
			return drop(VSN_R_REWRITE_ERR, len);
	}
	if (rw_path_l3(skb, &p, path))
		return drop(VSN_R_REWRITE_ERR, len);
	vlan_removed = ctx_vlan_pop(skb, p.vlan_inline);
	if (vlan_removed < 0)
		return drop(VSN_R_REWRITE_ERR, len);
	if ((path->flags & VSN_PATH_VLAN) && ctx_vlan_push(skb, path->vlan_id))
		return drop(VSN_R_REWRITE_ERR, len);

	if (mode == VSN_MODE_HOST && path->ifindex == skb->ifindex) {
		/* Already on the chosen uplink: the kernel's L2 stands. */
		if (!(path->flags & (VSN_PATH_FIB | VSN_PATH_GW)) &&
		    rw_macs(skb, path->smac, path->dmac))
			return drop(VSN_R_REWRITE_ERR, len);
		act = TC_ACT_OK;
	} else if (mode == VSN_MODE_HOST && host_redirect_mark(path->ifindex, &p)) {
		return drop(VSN_R_REWRITE_ERR, len);
	} else if (path->flags & VSN_PATH_GW) {
		act = redirect_gw(&p, path);
		if (act < 0)
			return drop(VSN_R_FIB_MISS, len);
	} else if (path->flags & VSN_PATH_FIB) {
		act = redirect_fib(skb, &p, c, path);
		if (act < 0)
			return drop(VSN_R_FIB_MISS, len);
	} else {
		if (rw_macs(skb, path->smac, path->dmac))
			return drop(VSN_R_REWRITE_ERR, len);
		act = bpf_redirect(path->ifindex, 0);
	}
	if (tc_prio)
		skb->priority = tc_prio;
	if (c->last_path != path_id) {
		path_live_forget(c->last_path);
		if (p.l4_proto == IPPROTO_TCP)
			conn_rev_path(c, path_id);
	}
	conn_touch(c, len, path_id, now);
	count(&vsn_path_stats, path_id, len);
	count(&vsn_be_stats, c->backend_id, len);
	count(&vsn_vm_stats, vm_id, len);
	count_reason(VSN_R_FORWARDED, len);
	return act;
}

#endif /* VSN_TO_STORAGE_H */
