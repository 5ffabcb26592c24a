/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * TC only: what a VM may send, checked before anything is looked up for it
 * (port security: its own source addresses and MAC only, never a martian),
 * and how many connections it may open (at once and per second), so that
 * one tenant can neither spoof into the fabric nor fill the connection
 * table shared by all.  Refusals are counted per VM and per reason.
 */
#ifndef VSN_GUARD_H
#define VSN_GUARD_H

#include "lib/ctx.h"
#include "lib/parse.h"
#include "lib/counters.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, VSN_MAX_VMS);
	__type(key, __u32);
	__type(value, struct vsn_vm_state);
	__uint(pinning, VSN_PINNING);
} vsn_vm_state SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, VSN_MAX_VMS);
	__type(key, __u32);
	__type(value, struct vsn_vm_drops);
	__uint(pinning, VSN_PINNING);
} vsn_vm_drops SEC(".maps");

/* Drop a VM's packet for reason, counted globally and for the VM. */
static __always_inline int vm_drop(__u32 vm_id, __u32 reason, __u32 len)
{
	struct vsn_vm_drops *d = bpf_map_lookup_elem(&vsn_vm_drops, &vm_id);
	__u32 i = reason - VSN_VM_DROP_FIRST;

	if (d && i < VSN_VM_DROPS)
		((__u64 *)d)[i]++;
	count_reason(reason, len);
	return VSN_DROP;
}

/*
 * A source no host may send from, whatever the config says: unspecified,
 * loopback, multicast, IPv4 class E and broadcast, and in an IPv6 header an
 * IPv4-mapped address (which would otherwise pass for the IPv4 one).
 */
static __always_inline bool addr_martian(const struct vsn_addr *a, bool v6)
{
	__u32 w0 = bpf_ntohl(a->a[0]), w3 = bpf_ntohl(a->a[3]);
	bool mapped = !a->a[0] && !a->a[1] && a->a[2] == bpf_htonl(0x0000ffff);

	if (mapped) {
		__u8 top = w3 >> 24;

		return v6 || top == 0 || top == 127 || top >= 224;
	}
	if (!v6)
		return true; /* not mapped: the parser never builds one */
	if ((w0 >> 24) == 0xff)
		return true;
	return !a->a[0] && !a->a[1] && !a->a[2] && (w3 == 0 || w3 == 1);
}

static __always_inline bool src_match(const struct vsn_addr *a, const struct vsn_vm_src *s)
{
	return !(
	    ((a->a[0] ^ s->addr.a[0]) & s->mask.a[0]) | ((a->a[1] ^ s->addr.a[1]) & s->mask.a[1]) |
	    ((a->a[2] ^ s->addr.a[2]) & s->mask.a[2]) | ((a->a[3] ^ s->addr.a[3]) & s->mask.a[3]));
}

/*
 * 0 when p comes from one of the VM's own addresses or prefixes (and its
 * MAC, when the config gives one), else the reason to drop it.  A martian
 * source fails first, whatever the list holds.
 */
static __always_inline __u32 vm_src_check(vsn_ctx_t *ctx, const struct vsn_pkt *p,
					  const struct vsn_vm_if *vm)
{
	struct ethhdr *eth;
	__u32 n = vm->n_addrs;

	if (vm->flags & VSN_VM_MAC) {
		eth = ctx_data(ctx);
		if ((void *)(eth + 1) > ctx_data_end(ctx))
			return VSN_R_MALFORMED;
		if (*(__u32 *)eth->h_source != *(__u32 *)vm->mac ||
		    *(__u16 *)&eth->h_source[4] != *(__u16 *)&vm->mac[4])
			return VSN_R_SPOOFED;
	}
	if (addr_martian(&p->saddr, p->l3_proto == ETH_P_IPV6))
		return VSN_R_MARTIAN;
#pragma unroll
	for (int i = 0; i < VSN_VM_MAX_ADDRS; i++) {
		if (i < n && src_match(&p->saddr, &vm->src[i]))
			return 0;
	}
	return VSN_R_SPOOFED;
}

/*
 * May the VM open one more connection now?  0, or the reason it may not.
 * The rate is a GCRA (one connection per conn_gap_ns, bursts of
 * conn_burst); CPUs racing on it may let a few more through, never fewer.
 */
static __always_inline __u32 vm_admit(const struct vsn_vm_if *vm, __u32 vm_id, __u64 now)
{
	struct vsn_vm_state *st = bpf_map_lookup_elem(&vsn_vm_state, &vm_id);
	__u64 gap = vm->conn_gap_ns, tat;

	if (!st)
		return VSN_R_CONN_LIMIT;
	if (vm->max_conns && st->conns >= (__s64)vm->max_conns)
		return VSN_R_CONN_LIMIT;
	if (gap) {
		tat = st->tat_ns;
		if (tat < now)
			tat = now;
		/* Up to conn_burst at once (the config keeps it >= 1). */
		if (tat - now + gap > gap * vm->conn_burst)
			return VSN_R_CONN_RATE;
		st->tat_ns = tat + gap;
	}
	return 0;
}

/* delta: +1 for a connection opened, -1 for one closing or reset. */
static __always_inline void vm_conns_add(__u32 vm_id, __s64 delta)
{
	struct vsn_vm_state *st = bpf_map_lookup_elem(&vsn_vm_state, &vm_id);

	if (st)
		__sync_fetch_and_add(&st->conns, delta);
}

/* VM-side entry c is closing (FIN or RST seen, or reset): it no longer
 * counts towards its VM's limit.  Once per connection. */
static __always_inline void vm_conn_closing(struct vsn_conn *c)
{
	if (!c->vm_id || (c->flags & VSN_CONN_CLOSING))
		return;
	c->flags |= VSN_CONN_CLOSING;
	vm_conns_add(c->vm_id, -1);
}

#endif /* VSN_GUARD_H */
