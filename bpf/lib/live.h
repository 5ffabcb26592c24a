/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Path liveness for the controller's silent-cut watch (vsn_path_live, read
 * through mmap()): per path, when requests went out, the oldest one still
 * unanswered (and its backend), and when anything came back.
 */
#ifndef VSN_LIVE_H
#define VSN_LIVE_H

#include "lib/maps.h"

/* Read by the controller through mmap(), hence an array shared by all CPUs:
 * per path, when requests went out and when anything came back. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, VSN_MAX_PATHS);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct vsn_path_live);
	__uint(pinning, VSN_PINNING);
} vsn_path_live SEC(".maps");

/* Stamps in vsn_path_live are rewritten at most every millisecond: every
 * CPU's packets on a path share its cache line. */
#define PATH_LIVE_STEP_NS 1000000ull

/* A packet towards storage on path_id from VM vm_id, seen at now; request:
 * one the other end must answer (payload, SYN, FIN; RoCEv2 always) on a
 * connection it answered before. */
static __always_inline void path_live_tx(__u32 path_id, __u32 backend_id, __u32 vm_id, bool request,
					 bool syn, __u64 now)
{
	struct vsn_path_live *pl = bpf_map_lookup_elem(&vsn_path_live, &path_id);

	if (!pl || !path_id)
		return;
	if (request) {
		if (!pl->await_ns) {
			pl->await_ns = now;
			pl->await_be = backend_id;
			pl->await_vm = vm_id;
		} else if (pl->await_vm != vm_id && pl->await_vm != VSN_AWAIT_MANY) {
			pl->await_vm = VSN_AWAIT_MANY;
		}
	} else if (syn && !pl->syn_ns) {
		pl->syn_ns = now;
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
	if (pl->syn_ns)
		pl->syn_ns = 0;
	if (now - pl->rx_ns > PATH_LIVE_STEP_NS)
		pl->rx_ns = now;
}

/* A path's outstanding requests are answered through another once their
 * connection moved: the old path's stamp is no longer evidence. */
static __always_inline void path_live_forget(__u32 path_id)
{
	struct vsn_path_live *pl = bpf_map_lookup_elem(&vsn_path_live, &path_id);

	if (pl && pl->await_ns)
		pl->await_ns = 0;
}

#endif /* VSN_LIVE_H */
