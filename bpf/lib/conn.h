/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Keys of a connection's two entries in vsn_conns. */
#ifndef VSN_CONN_H
#define VSN_CONN_H

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

#endif /* VSN_CONN_H */
