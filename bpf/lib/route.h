/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Which path a connection takes: its override, or its route's path. */
#ifndef VSN_ROUTE_H
#define VSN_ROUTE_H

#include "lib/maps.h"

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

#endif /* VSN_ROUTE_H */
