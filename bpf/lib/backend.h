/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Backend choice for a new connection: the volume's consistent-hash
 * (Maglev) table, hashed on the initiator, skipping backends not up.
 */
#ifndef VSN_BACKEND_H
#define VSN_BACKEND_H

#include "lib/maps.h"
#include "lib/parse.h"

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

#endif /* VSN_BACKEND_H */
