/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * TC only: handing a packet towards storage to its path's uplink: a static
 * next hop's MACs, a configured gateway or the kernel's FIB through the
 * path's uplink; and the marker that keeps a host packet redirected between
 * uplinks from being steered twice.
 */
#ifndef VSN_REDIRECT_H
#define VSN_REDIRECT_H

#include "lib/ctx.h"
#include "lib/maps.h"
#include "lib/parse.h"
#include "lib/rewrite.h"

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

#endif /* VSN_REDIRECT_H */
