// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* Validated single changes to the routing maps (ops.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <netinet/in.h>
#include <bpf/bpf.h>

#include "config/ops.h"
#include "config/plan.h"

static bool volume_lists_backend(const struct vsn_maps *m, __u32 vm, __u32 vol, __u32 be)
{
	struct vsn_volume_key key, next;
	struct vsn_volume v;
	bool first = true;

	while (!bpf_map_get_next_key(m->volumes, first ? NULL : &key, &next)) {
		first = false;
		key = next;
		if (key.vm_id != vm || bpf_map_lookup_elem(m->volumes, &key, &v) ||
		    v.volume_id != vol)
			continue;
		for (unsigned i = 0; i < v.n_backends && i < VSN_MAX_VOL_BACKENDS; i++)
			if (v.backends[i] == be)
				return true;
	}
	return false;
}

static bool path_exists(const struct vsn_maps *m, __u32 id)
{
	struct vsn_path p;

	return !bpf_map_lookup_elem(m->paths, &id, &p);
}

static bool backend_allows_path(const struct vsn_maps *m, __u32 be_id, __u32 path)
{
	struct vsn_backend be;

	if (bpf_map_lookup_elem(m->backends, &be_id, &be))
		return false;
	for (unsigned i = 0; i < be.n_paths && i < VSN_MAX_BE_PATHS; i++)
		if (be.paths[i] == path)
			return true;
	return false;
}

int ops_route_check(const struct vsn_maps *m, const struct vsn_route_key *k, __u32 path,
		    struct vsn_error *err)
{
	if (!volume_lists_backend(m, k->vm_id, k->volume_id, k->backend_id))
		return vsn_error_set(
		    err, -ENOENT,
		    "route set: VM %u has no volume %u with backend %u (see 'vsn show "
		    "volumes')",
		    k->vm_id, k->volume_id, k->backend_id);
	if (!path_exists(m, path))
		return vsn_error_set(err, -ENOENT, "route set: no path %u (see 'vsn show paths')",
				     path);
	if (!backend_allows_path(m, k->backend_id, path))
		return vsn_error_set(
		    err, -EINVAL,
		    "route set: path %u is not one of backend %u's paths (see 'vsn show "
		    "backends')",
		    path, k->backend_id);
	return 0;
}

int ops_route_set(const struct vsn_maps *m, const struct vsn_route_key *k, __u32 path, __u32 flags,
		  struct vsn_error *err)
{
	struct vsn_route r = {.path_id = path, .flags = flags};

	return ops_route_write(m, k, &r, err);
}

int ops_route_write(const struct vsn_maps *m, const struct vsn_route_key *k,
		    const struct vsn_route *r, struct vsn_error *err)
{
	int ret = ops_route_check(m, k, r->path_id, err);

	if (ret)
		return ret;
	if (bpf_map_update_elem(m->routes, k, r, BPF_ANY))
		return vsn_error_set(err, -errno, "route set: cannot update %s: %s", VSN_MAP_ROUTES,
				     strerror(errno));
	return maps_routes_changed(m, err);
}

int ops_route_del(const struct vsn_maps *m, const struct vsn_route_key *k, struct vsn_error *err)
{
	if (bpf_map_delete_elem(m->routes, k))
		return vsn_error_set(err, -ENOENT, "route del: no such route");
	return maps_routes_changed(m, err);
}

int ops_conn_path(const struct vsn_maps *m, const struct vsn_conn_key *k, __u32 path,
		  struct vsn_error *err)
{
	struct vsn_conn c;

	if (path && !path_exists(m, path))
		return vsn_error_set(err, -ENOENT, "route conn: no path %u (see 'vsn show paths')",
				     path);
	if (bpf_map_lookup_elem(m->conns, k, &c))
		return vsn_error_set(err, -ENOENT,
				     "route conn: no such connection (see 'vsn show connections')");
	if (path && !backend_allows_path(m, c.backend_id, path))
		return vsn_error_set(err, -EINVAL,
				     "route conn: path %u is not one of backend %u's paths", path,
				     c.backend_id);
	c.path_override = path;
	/* BPF_EXIST: never resurrect an entry the LRU just evicted. */
	if (bpf_map_update_elem(m->conns, k, &c, BPF_EXIST))
		return vsn_error_set(err, -errno, "route conn: cannot update the connection: %s",
				     strerror(errno));
	return 0;
}

int ops_conn_path_any(const struct vsn_maps *m, struct vsn_conn_key *k, __u32 path,
		      struct vsn_error *err)
{
	struct vsn_conn c;

	/* The same tuple as TCP (NVMe/TCP) or UDP (RoCEv2). */
	k->proto = IPPROTO_TCP;
	if (bpf_map_lookup_elem(m->conns, k, &c))
		k->proto = IPPROTO_UDP;
	return ops_conn_path(m, k, path, err);
}

int ops_backend_state_parse(const char *s, __u8 *state)
{
	if (!strcmp(s, "up"))
		*state = VSN_BE_UP;
	else if (!strcmp(s, "down"))
		*state = VSN_BE_DOWN;
	else if (!strcmp(s, "draining"))
		*state = VSN_BE_DRAINING;
	else
		return -EINVAL;
	return 0;
}

const char *ops_backend_state_name(__u8 state)
{
	switch (state) {
	case VSN_BE_UP:
		return "up";
	case VSN_BE_DOWN:
		return "down";
	case VSN_BE_DRAINING:
		return "draining";
	}
	return "unknown";
}

int ops_backend_state(const struct vsn_maps *m, __u32 id, __u8 state, struct vsn_error *err)
{
	struct vsn_backend be;

	if (bpf_map_lookup_elem(m->backends, &id, &be))
		return vsn_error_set(err, -ENOENT,
				     "backend set: no backend %u (see 'vsn show backends')", id);
	if (be.state == state)
		return 0;
	be.state = state;
	if (bpf_map_update_elem(m->backends, &id, &be, BPF_EXIST))
		return vsn_error_set(err, -errno, "backend set: cannot update %s: %s",
				     VSN_MAP_BACKENDS, strerror(errno));
	if (plan_rehash(m, id, err))
		return -EIO;
	return 0;
}

int ops_backend_reset(const struct vsn_maps *m, __u32 id, unsigned *n, struct vsn_error *err)
{
	struct vsn_conn_key key, next;
	struct vsn_conn c;
	bool first = true;

	*n = 0;
	while (!bpf_map_get_next_key(m->conns, first ? NULL : &key, &next)) {
		first = false;
		key = next;
		if (key.dir != VSN_DIR_TO_STORAGE || bpf_map_lookup_elem(m->conns, &key, &c) ||
		    c.backend_id != id || (c.flags & VSN_CONN_RESET))
			continue;
		c.flags |= VSN_CONN_RESET;
		if (bpf_map_update_elem(m->conns, &key, &c, BPF_EXIST) && errno != ENOENT)
			return vsn_error_set(err, -errno, "cannot mark a connection for reset: %s",
					     strerror(errno));
		(*n)++;
	}
	return 0;
}
