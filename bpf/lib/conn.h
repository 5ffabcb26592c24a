/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The connection table (vsn_conns, LRU): each connection has two entries,
 * the VM-side tuple and the fabric-side tuple, holding the same value.
 * Creating one (backend choice, NAT state, SNAT port), keys, and what every
 * packet updates.
 */
#ifndef VSN_CONN_H
#define VSN_CONN_H

#include "lib/ctx.h"
#include "lib/maps.h"
#include "lib/parse.h"
#include "lib/telemetry.h"
#include "lib/backend.h"
#include "lib/route.h"
#include "lib/guard.h"

enum vsn_mode {
	VSN_MODE_VM = 0,   /* VM-direct: NAT VIP -> backend */
	VSN_MODE_HOST = 1, /* host-initiator: steer only */
};

/* The key of the packet's own tuple (dir: which entry it would find). */
static __always_inline void conn_key_pkt(struct vsn_conn_key *k, const struct vsn_pkt *p, __u8 dir,
					 __u32 vm_id)
{
	__builtin_memset(k, 0, sizeof(*k));
	k->saddr = p->saddr;
	k->daddr = p->daddr;
	k->sport = p->sport;
	k->dport = p->dport;
	k->proto = p->l4_proto;
	k->dir = dir;
	k->vm_id = vm_id;
}

/* The fabric-side key: vsn_conn_rev_key() in vsn_types.h. */

/* RoCEv2's fabric-side key: any source port of the backend towards the
 * VM's 4791, one entry per (backend, VM address) shared by its flows. */
static __always_inline void roce_rev_key(struct vsn_conn_key *rk, const struct vsn_conn *c)
{
	__builtin_memset(rk, 0, sizeof(*rk));
	rk->saddr = c->backend_addr;
	rk->daddr = c->vm_addr;
	rk->dport = bpf_htons(VSN_PORT_ROCEV2);
	rk->proto = IPPROTO_UDP;
	rk->dir = VSN_DIR_FROM_STORAGE;
}

/* The VM-side key of connection c (either entry's value describes it). */
static __always_inline void conn_fwd_key(struct vsn_conn_key *k, const struct vsn_conn *c,
					 __u8 proto)
{
	__builtin_memset(k, 0, sizeof(*k));
	k->saddr = c->vm_addr;
	k->daddr = c->vip;
	k->sport = c->vm_port;
	k->dport = c->vip_port;
	k->proto = proto;
	k->dir = VSN_DIR_TO_STORAGE;
	k->vm_id = c->vm_id;
}

static __always_inline bool addr_eq(const struct vsn_addr *a, const struct vsn_addr *b)
{
	return a->a[0] == b->a[0] && a->a[1] == b->a[1] && a->a[2] == b->a[2] && a->a[3] == b->a[3];
}

/*
 * Several VMs share a path's SNAT address, so two of their connections to
 * one backend may use the same source port: the fabric-side key must stay
 * unique.  Keep the VM's port when free (or already this connection's, as
 * after an LRU eviction of the VM-side entry), else try a few others.
 */
#define SNAT_TRIES 8

static __always_inline int snat_claim_port(struct vsn_conn_key *rk, struct vsn_conn *c, __u32 hash)
{
	for (int i = 0; i < SNAT_TRIES; i++) {
		struct vsn_conn *old;

		if (i)
			rk->dport = bpf_htons(1024 + (hash + i * 7919) % (65536 - 1024));
		if (!bpf_map_update_elem(&vsn_conns, rk, c, BPF_NOEXIST))
			goto claimed;
		old = bpf_map_lookup_elem(&vsn_conns, rk);
		if (old && old->vm_id == c->vm_id && old->vm_port == c->vm_port &&
		    addr_eq(&old->vm_addr, &c->vm_addr) && addr_eq(&old->vip, &c->vip)) {
			c->snat_port = rk->dport;
			if (bpf_map_update_elem(&vsn_conns, rk, c, BPF_EXIST))
				return -1;
			return 0;
		}
	}
	return -1;
claimed:
	/* The entry written holds the VM's port as its snat_port; fix both. */
	c->snat_port = rk->dport;
	return bpf_map_update_elem(&vsn_conns, rk, c, BPF_EXIST) ? -1 : 0;
}

/*
 * A packet to a volume without a connection entry: choose the backend and
 * record both directions.  From a VM, only a SYN (or RoCEv2's first packet)
 * makes one, within the VM's limits.  The host's own mid-stream packets
 * make one too (flows that predate the attach, or whose entry the LRU
 * evicted): the consistent hash gives them the same backend again.
 */
static __always_inline struct vsn_conn *conn_create(vsn_ctx_t *ctx, const struct vsn_pkt *p,
						    const struct vsn_conn_key *k,
						    const struct vsn_vm_if *vm, enum vsn_mode mode,
						    __u32 *reason)
{
	__u32 vm_id = vm ? vm->vm_id : 0;
	struct vsn_volume_key vk = {};
	struct vsn_scratch *sc = scratch();
	struct vsn_conn_key *rk;
	struct vsn_conn *c;
	struct vsn_volume *vol;
	struct vsn_backend *be;
	struct vsn_path *path;
	struct ethhdr *eth;
	__u32 path_id;
	__u64 now;

	if (!sc)
		return NULL;
	c = &sc->conn;
	rk = &sc->rkey;
	vk.vm_id = vm_id;
	vk.vip = p->daddr;
	vk.port = bpf_ntohs(p->dport);
	vk.proto = p->l4_proto;
	vol = bpf_map_lookup_elem(&vsn_volumes, &vk);
	if (!vol) {
		*reason = VSN_R_NOT_STORAGE;
		return NULL;
	}
	now = bpf_ktime_get_coarse_ns();
	if (mode == VSN_MODE_VM && vm) {
		if (p->l4_proto == IPPROTO_TCP &&
		    (p->tcp_flags & (TCPF_SYN | TCPF_ACK)) != TCPF_SYN) {
			*reason = VSN_R_NO_SYN;
			return NULL;
		}
		*reason = vm_admit(vm, vm_id, now);
		if (*reason)
			return NULL;
	}
	/* Only now: other traffic need not pay for zeroing the entry. */
	__builtin_memset(c, 0, sizeof(*c));
	*reason = VSN_R_NO_ROUTE;
	be = pick_backend(vol, backend_hash(p), &c->backend_id);
	if (!be)
		return NULL;
	c->vm_id = vm_id;
	c->volume_id = vol->volume_id;
	c->vm_ifindex = ctx_ifindex(ctx);
	c->vip = p->daddr;
	c->vm_addr = p->saddr;
	c->backend_addr = be->addr;
	c->vip_port = p->dport;
	c->backend_port = bpf_htons(be->port);
	if (p->l3_proto == ETH_P_IPV6)
		c->flags |= VSN_CONN_V6;
	if (mode == VSN_MODE_HOST || p->l4_proto == IPPROTO_UDP) {
		/* No NAT: the host's own flows, and RoCEv2, whose ICRC covers
		 * addresses and ports, are only steered. */
		if (!addr_eq(&be->addr, &p->daddr) || c->backend_port != p->dport)
			return NULL;
		if (mode == VSN_MODE_HOST)
			c->flags |= VSN_CONN_HOST;
	} else if (!addr_eq(&be->addr, &p->daddr) || c->backend_port != p->dport) {
		c->flags |= VSN_CONN_DNAT;
	}
	path = route_path(c, &path_id);
	if (!path)
		return NULL;
	/* In both entries: replies stamp the liveness of their path. */
	c->last_path = path_id;
	if ((path->flags & VSN_PATH_SADDR) && mode == VSN_MODE_VM && p->l4_proto == IPPROTO_TCP) {
		c->flags |= VSN_CONN_SNAT;
		c->snat_addr = path->saddr;
	}
	eth = ctx_data(ctx);
	if ((void *)(eth + 1) > ctx_data_end(ctx)) {
		*reason = VSN_R_MALFORMED;
		return NULL;
	}
	__builtin_memcpy(c->vm_mac, eth->h_source, 6);
	__builtin_memcpy(c->gw_mac, eth->h_dest, 6);
	c->first_seen_ns = now;
	c->last_seen_ns = now;

	c->vm_port = p->sport;
	c->snat_port = p->sport;
	c->conn_id = bpf_get_prandom_u32();
	*reason = VSN_R_MAP_FULL;
	/* TCP needs the fabric-side entry: for the NAT, and for parsing the
	 * replies.  RoCEv2 replies keep their addresses and reach the VM
	 * through the kernel's own routing. */
	if (p->l4_proto == IPPROTO_TCP) {
		vsn_conn_rev_key(rk, c, IPPROTO_TCP);
		if (c->flags & VSN_CONN_SNAT) {
			if (snat_claim_port(rk, c, flow_hash(p)))
				goto nat_ports;
		} else if (bpf_map_update_elem(&vsn_conns, rk, c, BPF_ANY)) {
			return NULL;
		}
	} else {
		/* RoCEv2 from storage: found only to attribute it to a path,
		 * and to tell the VM's flows that storage answers.  The first
		 * flow's entry stays, with what storage marked in it. */
		roce_rev_key(rk, c);
		bpf_map_update_elem(&vsn_conns, rk, c, BPF_NOEXIST);
	}
	if (bpf_map_update_elem(&vsn_conns, k, c, BPF_ANY))
		return NULL;
	if (mode == VSN_MODE_VM)
		vm_conns_add(vm_id, 1);
	*reason = VSN_R_FORWARDED;
	tel_conn_event(VSN_EV_CONN_OPEN, c, path_id, VSN_DIR_TO_STORAGE);
	return bpf_map_lookup_elem(&vsn_conns, k);
nat_ports:
	*reason = VSN_R_NAT_PORTS;
	return NULL;
}

/* The VM-side entry of TCP connection c moves to path_id: its fabric-side
 * entry follows, so the replies stamp the path the requests now take. */
static __always_inline void conn_rev_path(const struct vsn_conn *c, __u32 path_id)
{
	struct vsn_scratch *sc = scratch();
	struct vsn_conn *r;

	if (!sc)
		return;
	vsn_conn_rev_key(&sc->rkey, c, IPPROTO_TCP);
	r = bpf_map_lookup_elem(&vsn_conns, &sc->rkey);
	if (r)
		r->last_path = path_id;
}

/* From storage: the sequence number the initiator expects after this
 * segment (the latest in sequence space, as retransmissions come too). */
static __always_inline void conn_rcv_nxt(struct vsn_conn *c, const struct vsn_pkt *p)
{
	__u32 nxt = p->seq + p->pay_len + !!(p->tcp_flags & TCPF_SYN) + !!(p->tcp_flags & TCPF_FIN);

	if (p->l4_proto != IPPROTO_TCP || (p->tcp_flags & TCPF_RST))
		return;
	if (!(c->flags & VSN_CONN_RCV_NXT)) {
		c->flags |= VSN_CONN_RCV_NXT;
		c->rcv_nxt = nxt;
	} else if ((__s32)(nxt - c->rcv_nxt) > 0) {
		c->rcv_nxt = nxt;
	}
}

/* now: bpf_ktime_get_coarse_ns(), read once per packet. */
static __always_inline void conn_touch(struct vsn_conn *c, __u32 bytes, __u32 path_id, __u64 now)
{
	c->last_seen_ns = now;
	c->packets++;
	c->bytes += bytes;
	if (c->last_path != path_id)
		c->last_path = path_id;
}

#endif /* VSN_CONN_H */
