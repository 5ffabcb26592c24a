/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Steering: connection table, backend choice (consistent hash), route and
 * path resolution, and the two directions of VM-direct translation.  The
 * hit path is one connection lookup (the only cache-cold access) plus small
 * hot arrays/hashes for route, path and counters; no insertions, no locks.
 */
#ifndef VSN_STEER_H
#define VSN_STEER_H

enum vsn_mode {
	VSN_MODE_VM = 0,   /* VM-direct: NAT VIP -> backend */
	VSN_MODE_HOST = 1, /* host-initiator: steer only */
};

/* Load-time tunable: chash slots probed past a backend that is not up. */
const volatile __u32 vsn_max_probe = 4;

static __always_inline __u32 mix32(__u32 h)
{
	h ^= h >> 16;
	h *= 0x7feb352d;
	h ^= h >> 15;
	h *= 0x846ca68b;
	h ^= h >> 16;
	return h;
}

/*
 * Backend choice hashes the initiator, not the connection: every TCP
 * connection of one NVMe controller (admin and I/O queues, each its own
 * source port) must reach the same target, which a per-port hash would
 * split between backends.  Different VMs and addresses still spread.
 */
static __always_inline __u32 backend_hash(const struct vsn_pkt *p)
{
	__u32 h = p->saddr.a[0] ^ p->saddr.a[1] ^ p->saddr.a[2] ^ p->saddr.a[3];

	h = mix32(h ^ p->dport);
	h = mix32(h ^ p->daddr.a[3] ^ p->l4_proto);
	return h;
}

/* Per-connection hash: spreads SNAT port retries. */
static __always_inline __u32 flow_hash(const struct vsn_pkt *p)
{
	__u32 h = p->saddr.a[0] ^ p->saddr.a[1] ^ p->saddr.a[2] ^ p->saddr.a[3];

	h = mix32(h ^ ((__u32)p->sport << 16 | p->dport));
	h = mix32(h ^ p->daddr.a[3] ^ p->l4_proto);
	return h;
}

/*
 * The path connection c takes now: its own override, else its route's path,
 * cached in the entry while vsn_gen says no route changed.  The generation
 * is read before the route, so a cache filled under the newest generation
 * holds a route at least as new as the change that bumped it.
 */
static __always_inline struct vsn_path *route_path(struct vsn_conn *c, __u32 *path_id)
{
	struct vsn_route_key rk = {
	    .vm_id = c->vm_id, .volume_id = c->volume_id, .backend_id = c->backend_id};
	struct vsn_route *r;
	struct vsn_path *path;
	struct vsn_gen *g;
	__u32 id = c->path_override, zero = 0, gen;

	if (!id) {
		g = bpf_map_lookup_elem(&vsn_gen, &zero);
		if (!g)
			return NULL;
		gen = (__u32)g->routes;
		if (c->route_path && c->route_gen == gen) {
			id = c->route_path;
		} else {
			r = bpf_map_lookup_elem(&vsn_routes, &rk);
			if (!r)
				return NULL;
			id = r->path_id;
			c->route_path = id;
			c->route_gen = gen;
		}
	}
	path = bpf_map_lookup_elem(&vsn_paths, &id);
	if (!path || !path->ifindex)
		return NULL;
	*path_id = id;
	return path;
}

/* Consistent-hash pick; a backend that is not up is skipped by probing the
 * next slots (the controller rebuilds the table without it soon). */
static __always_inline struct vsn_backend *pick_backend(const struct vsn_volume *vol, __u32 hash,
							__u32 *be_id)
{
	__u32 base = (vol->volume_id * 2 + (vol->chash_gen & 1)) * VSN_CHASH_SIZE;
	__u32 slot = hash % VSN_CHASH_SIZE;

	for (int i = 0; i < 4; i++) {
		__u32 idx = base + (slot + i) % VSN_CHASH_SIZE;
		struct vsn_backend *be;
		__u32 *id;

		if (i >= vsn_max_probe)
			break;
		id = bpf_map_lookup_elem(&vsn_chash, &idx);
		if (!id || !*id)
			return NULL;
		be = bpf_map_lookup_elem(&vsn_backends, id);
		if (be && be->state == VSN_BE_UP) {
			*be_id = *id;
			return be;
		}
	}
	return NULL;
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
 * record both directions.  Also taken for mid-stream packets whose entry the
 * LRU evicted: the consistent hash gives them the same backend again.
 */
static __always_inline struct vsn_conn *conn_create(vsn_ctx_t *ctx, const struct vsn_pkt *p,
						    const struct vsn_conn_key *k, __u32 vm_id,
						    enum vsn_mode mode, __u32 *reason)
{
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
	now = bpf_ktime_get_coarse_ns();
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
		/* RoCEv2 from storage: any source port of the backend towards
		 * the VM's 4791; found only to attribute it to a path. */
		__builtin_memset(rk, 0, sizeof(*rk));
		rk->saddr = c->backend_addr;
		rk->daddr = c->vm_addr;
		rk->dport = bpf_htons(VSN_PORT_ROCEV2);
		rk->proto = IPPROTO_UDP;
		rk->dir = VSN_DIR_FROM_STORAGE;
		bpf_map_update_elem(&vsn_conns, rk, c, BPF_ANY);
	}
	if (bpf_map_update_elem(&vsn_conns, k, c, BPF_ANY))
		return NULL;
	*reason = VSN_R_FORWARDED;
	tel_conn_event(VSN_EV_CONN_OPEN, c, path_id, VSN_DIR_TO_STORAGE);
	return bpf_map_lookup_elem(&vsn_conns, k);
nat_ports:
	*reason = VSN_R_NAT_PORTS;
	return NULL;
}

/* Stamps in vsn_path_live are rewritten at most every millisecond: every
 * CPU's packets on a path share its cache line. */
#define PATH_LIVE_STEP_NS 1000000ull

/* A packet towards storage on path_id, seen at now; request: one the other
 * end must answer (payload, SYN, FIN; RoCEv2 always). */
static __always_inline void path_live_tx(__u32 path_id, __u32 backend_id, bool request, __u64 now)
{
	struct vsn_path_live *pl = bpf_map_lookup_elem(&vsn_path_live, &path_id);

	if (!pl || !path_id)
		return;
	if (request && !pl->await_ns) {
		pl->await_ns = now;
		pl->await_be = backend_id;
	}
	if (now - pl->tx_ns > PATH_LIVE_STEP_NS)
		pl->tx_ns = now;
}

/* Anything from storage on path_id, seen at now: the path answers. */
static __always_inline void path_live_rx(__u32 path_id, __u64 now)
{
	struct vsn_path_live *pl = bpf_map_lookup_elem(&vsn_path_live, &path_id);

	if (!pl || !path_id)
		return;
	if (pl->await_ns)
		pl->await_ns = 0;
	if (now - pl->rx_ns > PATH_LIVE_STEP_NS)
		pl->rx_ns = now;
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

/* A path's outstanding requests are answered through another once their
 * connection moved: the old path's stamp is no longer evidence. */
static __always_inline void path_live_forget(__u32 path_id)
{
	struct vsn_path_live *pl = bpf_map_lookup_elem(&vsn_path_live, &path_id);

	if (pl && pl->await_ns)
		pl->await_ns = 0;
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

static __always_inline int pass(__u32 reason, __u32 bytes)
{
	count_reason(reason, bytes);
	return VSN_PASS;
}

static __always_inline int drop(__u32 reason, __u32 bytes)
{
	count_reason(reason, bytes);
	return VSN_DROP;
}

#if defined(VSN_CTX_TC)
/* Before redirecting a host packet to another uplink's egress. */
static __always_inline int host_redirect_mark(__u32 ifindex, const struct vsn_pkt *p)
{
	struct vsn_scratch *sc = scratch();

	if (!sc)
		return -1;
	sc->redir_ifindex = ifindex;
	sc->redir_seq = p->seq;
	sc->redir_sport = p->sport;
	sc->redir_dport = p->dport;
	return 0;
}

/* At an uplink's egress: is this the packet just redirected here? */
static __always_inline bool host_redirected(struct __sk_buff *skb, const struct vsn_pkt *p)
{
	struct vsn_scratch *sc = scratch();
	bool hit;

	if (!sc || !sc->redir_ifindex)
		return false;
	hit = sc->redir_ifindex == skb->ifindex && sc->redir_seq == p->seq &&
	      sc->redir_sport == p->sport && sc->redir_dport == p->dport;
	sc->redir_ifindex = 0;
	return hit;
}

/*
 * Next hop from the kernel's FIB, looked up as output through the path's own
 * uplink (bpf_redirect_neigh alone would take the best route's gateway,
 * which for IPv6 may belong to another uplink).  Resolved: MACs written
 * here; neighbour not yet resolved: the kernel resolves it.  < 0: no route.
 */
static __always_inline int redirect_fib(struct __sk_buff *skb, const struct vsn_pkt *p,
					const struct vsn_conn *c, const struct vsn_path *path)
{
	const struct vsn_addr *dst = (c->flags & VSN_CONN_DNAT) ? &c->backend_addr : &p->daddr;
	const struct vsn_addr *src = (c->flags & VSN_CONN_SNAT) ? &c->snat_addr : &p->saddr;
	struct vsn_scratch *sc = scratch();
	struct bpf_fib_lookup *fib;
	struct bpf_redir_neigh *nh;
	long rc;

	/* In scratch, not on the stack: the parser's frames come on top. */
	if (!sc)
		return -1;
	fib = &sc->fib;
	nh = &sc->nh;
	__builtin_memset(fib, 0, sizeof(*fib));
	__builtin_memset(nh, 0, sizeof(*nh));
	fib->ifindex = path->ifindex;
	fib->l4_protocol = p->l4_proto;
	fib->sport = p->sport;
	fib->dport = (c->flags & VSN_CONN_DNAT) ? c->backend_port : p->dport;
	if (p->l3_proto == ETH_P_IP) {
		fib->family = AF_INET;
		fib->ipv4_src = src->a[3];
		fib->ipv4_dst = dst->a[3];
	} else {
		fib->family = AF_INET6;
		__builtin_memcpy(fib->ipv6_src, src->a, 16);
		__builtin_memcpy(fib->ipv6_dst, dst->a, 16);
	}
	rc = bpf_fib_lookup(skb, fib, sizeof(*fib), BPF_FIB_LOOKUP_OUTPUT);
	/* The helper refuses outright where the uplink does not forward; vsn
	 * is the one forwarding, so let the kernel resolve the route itself. */
	if (rc == BPF_FIB_LKUP_RET_FWD_DISABLED)
		return bpf_redirect_neigh(path->ifindex, NULL, 0, 0);
	if (fib->ifindex != path->ifindex)
		return -1;
	if (rc == BPF_FIB_LKUP_RET_SUCCESS) {
		if (rw_macs(skb, fib->smac, fib->dmac))
			return -1;
		return bpf_redirect(path->ifindex, 0);
	}
	if (rc != BPF_FIB_LKUP_RET_NO_NEIGH)
		return -1;
	/* The lookup left the next hop in the destination fields. */
	nh->nh_family = fib->family;
	if (fib->family == AF_INET)
		nh->ipv4_nh = fib->ipv4_dst;
	else
		__builtin_memcpy(nh->ipv6_nh, fib->ipv6_dst, 16);
	return bpf_redirect_neigh(path->ifindex, nh, sizeof(*nh), 0);
}

static __always_inline bool addr_is_v4(const struct vsn_addr *a)
{
	return !a->a[0] && !a->a[1] && a->a[2] == bpf_htonl(0x0000ffff);
}

/* A configured gateway: the kernel resolves its MAC on the path's uplink. */
static __always_inline int redirect_gw(const struct vsn_pkt *p, const struct vsn_path *path)
{
	struct bpf_redir_neigh nh = {};
	bool v4 = addr_is_v4(&path->gw);

	if (v4 != (p->l3_proto == ETH_P_IP))
		return -1; /* a gateway of the other family */
	if (v4) {
		nh.nh_family = AF_INET;
		nh.ipv4_nh = path->gw.a[3];
	} else {
		nh.nh_family = AF_INET6;
		__builtin_memcpy(nh.ipv6_nh, path->gw.a, 16);
	}
	return bpf_redirect_neigh(path->ifindex, &nh, sizeof(nh), 0);
}

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
	bpf_map_delete_elem(&vsn_conns, k);
	count_reason(reason, len);
	return act;
}

/*
 * Towards storage (VM ingress, or host egress in host mode): find or create
 * the connection, resolve its current path, rewrite and redirect.  tc_prio:
 * the skb priority of steered packets (the VM's class on the uplink's
 * qdisc), 0 to leave it.
 */
static __always_inline int steer_to_storage(struct __sk_buff *skb, __u32 vm_id, __u32 tc_prio,
					    enum vsn_mode mode)
{
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

		if (!be || be->state != VSN_BE_UP || (c->flags & VSN_CONN_RESET))
			c = NULL;
	}
	if (c && (c->flags & VSN_CONN_RESET))
		return conn_reset(skb, &p, c, &k, mode, len);
	if (!c) {
		c = conn_create(skb, &p, &k, vm_id, mode, &reason);
		if (!c)
			return pass(reason, len);
	}
	path = route_path(c, &path_id);
	if (!path)
		return pass(VSN_R_NO_ROUTE, len);
	request = p.l4_proto == IPPROTO_UDP || p.pay_len || (p.tcp_flags & (TCPF_SYN | TCPF_FIN));
	/* Coarse (a tick) is fine for liveness, and ten times cheaper. */
	now = bpf_ktime_get_coarse_ns();
	path_live_tx(path_id, c->backend_id, request, now);
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
#endif

/* From storage (uplink ingress, XDP or TC): undo the NAT, hand to the VM. */
static __always_inline int steer_from_storage(vsn_ctx_t *ctx)
{
	struct vsn_conn_key k;
	struct vsn_pkt p;
	struct vsn_conn *c;
	__u32 reason, len = ctx_len(ctx);
	__u64 now;

	reason = vsn_parse(ctx, &p);
	if (reason != VSN_R_FORWARDED)
		return pass(reason, len);
	conn_key_pkt(&k, &p, VSN_DIR_FROM_STORAGE, 0);
	c = bpf_map_lookup_elem(&vsn_conns, &k);
	if (!c && p.l4_proto == IPPROTO_UDP && p.dport == bpf_htons(VSN_PORT_ROCEV2)) {
		__u32 path_id = 0;

		k.sport = 0;
		c = bpf_map_lookup_elem(&vsn_conns, &k);
		if (c && route_path(c, &path_id)) {
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

#endif /* VSN_STEER_H */
