// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* vsn apply, vsn route, vsn backend: every change to the routing maps goes
 * through here, validated whole before anything is written. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>

#include "config.h"
#include "plan.h"
#include "vsn.h"

static void apply_usage(FILE *f)
{
	fprintf(f, "usage: vsn apply [--check] FILE\n"
		   "\n"
		   "Validate FILE (YAML: vms, uplinks, backends, paths, volumes, routes; see\n"
		   "docs/config.md) and make the maps match it.  Nothing is written unless the\n"
		   "whole file is valid; packets never see a half-applied change.\n"
		   "\n"
		   "  --check   validate only (also against this host's interfaces when vsn\n"
		   "            is attached); write nothing\n");
}

int cmd_apply(const struct vsn_opts *o, int argc, char **argv)
{
	struct vsn_config *cfg = NULL;
	struct vsn_maps m = VSN_MAPS_NONE;
	struct vsn_plan plan = {};
	const char *file = NULL;
	struct vsn_err err = {};
	bool check = false, have_maps = false;
	int i, ret = 1;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--check")) {
			check = true;
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			apply_usage(stdout);
			return 0;
		} else if (argv[i][0] == '-' || file) {
			vsn_err("apply: unexpected argument '%s'", argv[i]);
			apply_usage(stderr);
			return 2;
		} else {
			file = argv[i];
		}
	}
	if (!file) {
		apply_usage(stderr);
		return 2;
	}
	cfg = config_load(file, &err);
	if (!cfg || config_validate(cfg, &err)) {
		vsn_err("%s", err.msg);
		goto cleanup;
	}
	if (!check) {
		if (pins_open(o, &m))
			goto cleanup;
		have_maps = true;
	} else if (geteuid() == 0 && !pins_open(o, &m)) {
		have_maps = true;
	}
	if (plan_build(cfg, have_maps ? m.ifaces : -1, &plan, &err)) {
		vsn_err("%s", err.msg);
		goto cleanup;
	}
	if (check && have_maps && plan_check_room(&plan, &m, &err)) {
		vsn_err("%s", err.msg);
		goto cleanup;
	}
	if (check) {
		if (o->json)
			printf("{\"file\":\"%s\",\"valid\":true}\n", file);
		else
			printf("%s: valid (%u volumes, %u backends, %u paths, %u routes)%s\n", file,
			       plan.n_volumes, plan.n_backends, plan.n_paths, plan.n_routes,
			       have_maps ? "" : "; interfaces not checked against vsn attach");
		ret = 0;
		goto cleanup;
	}
	if (plan_apply(&plan, &m, &err)) {
		vsn_err("%s", err.msg);
		goto cleanup;
	}
	if (o->json)
		printf("{\"file\":\"%s\",\"applied\":true,\"volumes\":%u,\"backends\":%u,"
		       "\"paths\":%u,\"routes\":%u}\n",
		       file, plan.n_volumes, plan.n_backends, plan.n_paths, plan.n_routes);
	else
		printf("%s: applied (%u volumes, %u backends, %u paths, %u routes)\n", file,
		       plan.n_volumes, plan.n_backends, plan.n_paths, plan.n_routes);
	ret = 0;
cleanup:
	plan_free(&plan);
	config_free(cfg);
	pins_close(&m);
	return ret;
}

static int parse_u32(const char *s, const char *what, __u32 max, __u32 *out)
{
	char *end;
	unsigned long v;

	if (!strcmp(what, "vm") && !strcmp(s, "host")) {
		*out = 0;
		return 0;
	}
	errno = 0;
	v = strtoul(s, &end, 0);
	if (errno || end == s || *end || v > max) {
		vsn_err("%s: '%s' is not a number from 0 to %u", what, s, max);
		return -EINVAL;
	}
	*out = (__u32)v;
	return 0;
}

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

static void route_usage(FILE *f)
{
	fprintf(f, "usage: vsn route set VM VOLUME BACKEND PATH\n"
		   "       vsn route del VM VOLUME BACKEND\n"
		   "       vsn route conn VM SRC SPORT DST DPORT PATH   (PATH 0 clears)\n"
		   "\n"
		   "VM is a VM id or 'host'; VOLUME, BACKEND and PATH are ids.  'set' moves\n"
		   "every connection of (VM, VOLUME, BACKEND) to PATH on its next packet;\n"
		   "'conn' pins one connection (as the VM sees it: SRC is the VM, DST the\n"
		   "volume address) to PATH, overriding the route.\n");
}

static int route_conn(const struct vsn_maps *m, char **argv)
{
	struct vsn_conn_key k = {};
	struct vsn_conn c;
	__u32 vm, sport, dport, path;
	bool v6a, v6b;

	if (parse_u32(argv[0], "vm", VSN_MAX_VMS - 1, &vm) ||
	    parse_u32(argv[2], "sport", 65535, &sport) ||
	    parse_u32(argv[4], "dport", 65535, &dport) ||
	    parse_u32(argv[5], "path", VSN_MAX_PATHS - 1, &path))
		return 2;
	if (parse_addr(argv[1], &k.saddr, &v6a) || parse_addr(argv[3], &k.daddr, &v6b) ||
	    v6a != v6b) {
		vsn_err("route conn: SRC and DST must be addresses of one family");
		return 2;
	}
	if (path && !path_exists(m, path)) {
		vsn_err("route conn: no path %u (see 'vsn show paths')", path);
		return 1;
	}
	k.sport = htons(sport);
	k.dport = htons(dport);
	k.vm_id = vm;
	k.dir = VSN_DIR_TO_STORAGE;
	for (int proto = 0; proto < 2; proto++) {
		k.proto = proto ? IPPROTO_UDP : IPPROTO_TCP;
		if (bpf_map_lookup_elem(m->conns, &k, &c))
			continue;
		if (path && !backend_allows_path(m, c.backend_id, path)) {
			vsn_err("route conn: path %u is not one of backend %u's paths", path,
				c.backend_id);
			return 1;
		}
		c.path_override = path;
		/* BPF_EXIST: never resurrect an entry the LRU just evicted. */
		if (bpf_map_update_elem(m->conns, &k, &c, BPF_EXIST)) {
			vsn_err("route conn: cannot update the connection: %s", strerror(errno));
			return 1;
		}
		return 0;
	}
	vsn_err("route conn: no such connection (see 'vsn show connections')");
	return 1;
}

int cmd_route(const struct vsn_opts *o, int argc, char **argv)
{
	struct vsn_maps m = VSN_MAPS_NONE;
	struct vsn_route_key k = {};
	struct vsn_route r = {};
	int ret = 2;

	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		route_usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (!((!strcmp(argv[1], "set") && argc == 6) || (!strcmp(argv[1], "del") && argc == 5) ||
	      (!strcmp(argv[1], "conn") && argc == 8))) {
		vsn_err("route: bad arguments");
		route_usage(stderr);
		return 2;
	}
	if (pins_open(o, &m))
		return 1;
	if (!strcmp(argv[1], "conn")) {
		ret = route_conn(&m, argv + 2);
		goto cleanup;
	}
	if (parse_u32(argv[2], "vm", VSN_MAX_VMS - 1, &k.vm_id) ||
	    parse_u32(argv[3], "volume", VSN_MAX_VOLUMES - 1, &k.volume_id) ||
	    parse_u32(argv[4], "backend", VSN_MAX_BACKENDS - 1, &k.backend_id))
		goto cleanup;
	ret = 1;
	if (!strcmp(argv[1], "del")) {
		if (bpf_map_delete_elem(m.routes, &k)) {
			vsn_err("route del: no such route");
			goto cleanup;
		}
		ret = 0;
		goto cleanup;
	}
	if (parse_u32(argv[5], "path", VSN_MAX_PATHS - 1, &r.path_id)) {
		ret = 2;
		goto cleanup;
	}
	if (!volume_lists_backend(&m, k.vm_id, k.volume_id, k.backend_id)) {
		vsn_err(
		    "route set: VM %u has no volume %u with backend %u (see 'vsn show volumes')",
		    k.vm_id, k.volume_id, k.backend_id);
		goto cleanup;
	}
	if (!path_exists(&m, r.path_id)) {
		vsn_err("route set: no path %u (see 'vsn show paths')", r.path_id);
		goto cleanup;
	}
	if (!backend_allows_path(&m, k.backend_id, r.path_id)) {
		vsn_err(
		    "route set: path %u is not one of backend %u's paths (see 'vsn show backends')",
		    r.path_id, k.backend_id);
		goto cleanup;
	}
	if (bpf_map_update_elem(m.routes, &k, &r, BPF_ANY)) {
		vsn_err("route set: cannot update %s: %s", VSN_MAP_ROUTES, strerror(errno));
		goto cleanup;
	}
	vsn_info(o, "route vm %u volume %u backend %u -> path %u", k.vm_id, k.volume_id,
		 k.backend_id, r.path_id);
	ret = 0;
cleanup:
	pins_close(&m);
	return ret;
}

int cmd_backend(const struct vsn_opts *o, int argc, char **argv)
{
	struct vsn_maps m = VSN_MAPS_NONE;
	struct vsn_backend be;
	struct vsn_err err = {};
	__u32 id;
	__u8 state;
	int ret = 1;

	if (argc != 4 || strcmp(argv[1], "set")) {
		FILE *f = argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))
			      ? stdout
			      : stderr;

		fprintf(f,
			"usage: vsn backend set ID up|down|draining\n\n"
			"Change a backend's state and rebuild the consistent-hash tables of the\n"
			"volumes using it: new connections avoid a backend that is not up;\n"
			"existing ones stay where they are.\n");
		return f == stdout ? 0 : 2;
	}
	if (parse_u32(argv[2], "backend", VSN_MAX_BACKENDS - 1, &id))
		return 2;
	if (!strcmp(argv[3], "up"))
		state = VSN_BE_UP;
	else if (!strcmp(argv[3], "down"))
		state = VSN_BE_DOWN;
	else if (!strcmp(argv[3], "draining"))
		state = VSN_BE_DRAINING;
	else {
		vsn_err("backend set: state '%s' is not one of up, down, draining", argv[3]);
		return 2;
	}
	if (pins_open(o, &m))
		return 1;
	if (bpf_map_lookup_elem(m.backends, &id, &be)) {
		vsn_err("backend set: no backend %u (see 'vsn show backends')", id);
		goto cleanup;
	}
	be.state = state;
	if (bpf_map_update_elem(m.backends, &id, &be, BPF_EXIST)) {
		vsn_err("backend set: cannot update %s: %s", VSN_MAP_BACKENDS, strerror(errno));
		goto cleanup;
	}
	if (plan_rehash(&m, id, &err)) {
		vsn_err("%s", err.msg);
		goto cleanup;
	}
	vsn_info(o, "backend %u is %s", id, argv[3]);
	ret = 0;
cleanup:
	pins_close(&m);
	return ret;
}
