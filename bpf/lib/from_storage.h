/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The pipeline from storage (uplink ingress, XDP or TC): parse, find the
 * connection, observe, undo the NAT, hand the packet to the VM.
 */
#ifndef VSN_FROM_STORAGE_H
#define VSN_FROM_STORAGE_H

#include "lib/ctx.h"
#include "lib/parse.h"
#include "lib/counters.h"
#include "lib/conn.h"
#include "lib/route.h"
#include "lib/live.h"
#include "lib/rewrite.h"
#include "lib/roce.h"
#include "lib/guard.h"
#include "lib/nvme_tcp/parse.h"
#include "lib/xfer.h"

/* Storage reset TCP connection c (fabric side): its VM-side entry stops
 * counting towards the VM's limit (the VM sends nothing more on it). */
static __always_inline void conn_reset_by_storage(const struct vsn_conn *c)
{
	struct vsn_scratch *sc = scratch();
	struct vsn_conn *v;

	if (!sc || !c->vm_id)
		return;
	conn_fwd_key(&sc->rkey, c, IPPROTO_TCP);
	v = bpf_map_lookup_elem(&vsn_conns, &sc->rkey);
	if (v)
		vm_conn_closing(v);
}

/*
 * From storage (uplink ingress, XDP or TC): undo the NAT, hand to the VM.
 * after_xdp (TC behind XDP, lib/xfer.h): only the replies XDP left to TC;
 * everything else XDP has seen and counted already.
 */
static __always_inline int from_storage(vsn_ctx_t *ctx, bool after_xdp)
{
	struct vsn_conn_key k;
	struct vsn_pkt p;
	struct vsn_conn *c;
	__u32 reason, len = ctx_len(ctx);
	__u64 now;

	reason = vsn_parse(ctx, &p);
	if (reason != VSN_R_FORWARDED)
		return after_xdp ? VSN_PASS : pass(reason, len);
	conn_key_pkt(&k, &p, VSN_DIR_FROM_STORAGE, 0);
	c = bpf_map_lookup_elem(&vsn_conns, &k);
#ifdef VSN_CTX_XDP
	if (c && xfer_wanted(c))
		return XDP_PASS;
#endif
	if (after_xdp && !(c && xfer_wanted(c)))
		return VSN_PASS;
	if (!c && p.l4_proto == IPPROTO_UDP && p.dport == bpf_htons(VSN_PORT_ROCEV2)) {
		__u32 path_id = 0;

		k.sport = 0;
		c = bpf_map_lookup_elem(&vsn_conns, &k);
		if (c && route_path(c, &path_id)) {
			if (!(c->flags & VSN_CONN_ANSWERED))
				c->flags |= VSN_CONN_ANSWERED;
			/* Observed, then routed to the VM by the kernel. */
			path_live_rx(path_id, bpf_ktime_get_coarse_ns());
			roce_account(ctx, &p, c->vm_id, path_id, VSN_DIR_FROM_STORAGE, len);
			count(&vsn_be_stats, c->backend_id, len);
			count(&vsn_vm_stats, c->vm_id, len);
			return pass(VSN_R_ROCE_RX, len);
		}
		c = NULL;
	}
	if (!c) {
		__u16 sp = bpf_ntohs(p.sport);

		if (sp == VSN_PORT_NVME_TCP || sp == VSN_PORT_NVME_DISC || sp == VSN_PORT_ROCEV2)
			return pass(VSN_R_NO_CONN, len);
		return pass(VSN_R_NOT_STORAGE, len);
	}
	now = bpf_ktime_get_coarse_ns();
	nvme_tcp_parse(ctx, &p, c, 0, VSN_DIR_FROM_STORAGE);
	path_live_rx(c->last_path, now);
	conn_rcv_nxt(c, &p);
	if (!(c->flags & VSN_CONN_ANSWERED))
		c->flags |= VSN_CONN_ANSWERED;
	if (p.tcp_flags & TCPF_RST)
		conn_reset_by_storage(c);
	if (c->flags & VSN_CONN_HOST) {
		/* The host's own flow: observed, left to the kernel. */
		conn_touch(c, len, c->last_path, now);
		count(&vsn_be_stats, c->backend_id, len);
		count(&vsn_vm_stats, c->vm_id, len);
		return pass(VSN_R_HOST_RX, len);
	}
	if (c->flags & VSN_CONN_DNAT) {
		if (rw_addr(ctx, &p, true, &c->vip) || rw_port(ctx, &p, true, c->vip_port))
			return drop(VSN_R_REWRITE_ERR, len);
	}
	if (c->flags & VSN_CONN_SNAT) {
		if (rw_addr(ctx, &p, false, &c->vm_addr) ||
		    (c->snat_port != c->vm_port && rw_port(ctx, &p, false, c->vm_port)))
			return drop(VSN_R_REWRITE_ERR, len);
	}
	if (ctx_vlan_pop(ctx, p.vlan_inline) < 0)
		return drop(VSN_R_REWRITE_ERR, len);
	if (rw_macs(ctx, c->gw_mac, c->vm_mac))
		return drop(VSN_R_REWRITE_ERR, len);
	conn_touch(c, len, c->last_path, now);
	count(&vsn_be_stats, c->backend_id, len);
	count(&vsn_vm_stats, c->vm_id, len);
	count_reason(VSN_R_FORWARDED, len);
	return bpf_redirect(c->vm_ifindex, 0);
}

static __always_inline int steer_from_storage(vsn_ctx_t *ctx)
{
	return from_storage(ctx, false);
}

#ifdef VSN_CTX_TC
/* TC ingress of an uplink whose replies XDP handles: what XDP left to TC. */
static __always_inline int steer_left_by_xdp(struct __sk_buff *skb)
{
	return from_storage(skb, true);
}
#endif

#endif /* VSN_FROM_STORAGE_H */
