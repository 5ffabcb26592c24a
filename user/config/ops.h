/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Single changes to the routing maps, validated against what the maps hold.
 * The CLI calls these when no daemon runs; the daemon calls the same ones
 * for API requests and for its own decisions: one validation path.
 * Each returns 0 or -errno with err saying why (and what to look at).
 */
#ifndef VSN_OPS_H
#define VSN_OPS_H

#include "config/config.h"
#include "lib/vsn.h"

int ops_route_check(const struct vsn_maps *m, const struct vsn_route_key *k, __u32 path,
		    struct vsn_error *err);
/* flags: enum vsn_route_flags (VSN_ROUTE_PINNED for an operator's route). */
/* The whole route (a displaced pin keeps the operator's path in pin_path). */
int ops_route_write(const struct vsn_maps *m, const struct vsn_route_key *k,
		    const struct vsn_route *r, struct vsn_error *err);
int ops_route_set(const struct vsn_maps *m, const struct vsn_route_key *k, __u32 path, __u32 flags,
		  struct vsn_error *err);
int ops_route_del(const struct vsn_maps *m, const struct vsn_route_key *k, struct vsn_error *err);
/* Pin (path > 0) or unpin (0) one connection, both of its entries.  k is
 * the VM-side key (dir and vm_id set by the caller). */
int ops_conn_path(const struct vsn_maps *m, const struct vsn_conn_key *k, __u32 path,
		  struct vsn_error *err);
/* The same for a tuple that may be TCP or RoCEv2 (UDP): sets k->proto. */
int ops_conn_path_any(const struct vsn_maps *m, struct vsn_conn_key *k, __u32 path,
		      struct vsn_error *err);
/* Set a backend's state and rebuild the consistent-hash tables using it. */
int ops_backend_state(const struct vsn_maps *m, __u32 id, __u8 state, struct vsn_error *err);
/* Mark every connection of the backend VSN_CONN_RESET; *n: how many. */
int ops_backend_reset(const struct vsn_maps *m, __u32 id, unsigned *n, struct vsn_error *err);
/* "up", "down", "draining" -> enum vsn_backend_state; -EINVAL if none. */
int ops_backend_state_parse(const char *s, __u8 *state);
const char *ops_backend_state_name(__u8 state);

#endif /* VSN_OPS_H */
