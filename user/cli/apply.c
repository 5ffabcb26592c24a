// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* vsn apply, vsn route, vsn backend: every change to the routing maps goes
 * through here, validated whole before anything is written. */
#define _GNU_SOURCE /* asprintf */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>

#include "cli/api_client.h"
#include "cluster/cluster.h"
#include "config/config.h"
#include "config/ops.h"
#include "config/plan.h"
#include "cli/cli.h"

static void apply_usage(FILE *f)
{
	fprintf(f, "usage: vsn apply [--check] [--allow-empty] FILE\n"
		   "       vsn apply --cluster [--check] [--revision N] FILE\n"
		   "\n"
		   "Validate FILE (YAML: vms, uplinks, backends, paths, volumes, routes; see\n"
		   "docs/config.md) and make the maps match it.  Nothing is written unless the\n"
		   "whole file is valid; packets never see a half-applied change.  Every error\n"
		   "is listed (up to 20), each as FILE:LINE: FIELD: reason.\n"
		   "\n"
		   "  --check        validate only (also against this host's interfaces when\n"
		   "                 vsn is attached); write nothing\n"
		   "  --allow-empty  accept a file with nothing in it, which removes every\n"
		   "                 mapping; without it such a file is refused\n"
		   "  --cluster      the configuration of every host in the cluster: checked\n"
		   "                 for each host it names (items with 'host: NAME' are that\n"
		   "                 host's), then written to etcd through the running daemon;\n"
		   "                 each host applies its part and reports its revision\n"
		   "                 ('vsn cluster status'; docs/cluster.md)\n"
		   "  --revision N   write only if etcd's configuration is still at revision N\n"
		   "                 (0: none yet); default: the one this host saw last\n");
}

/*
 * FILE as an absolute path: resolved (realpath), or, when it cannot be (it
 * does not exist), joined to the working directory so that the daemon's
 * "cannot open" names the file the user meant.  NULL with errno set.
 */
static char *abs_path(const char *file)
{
	char *abs = realpath(file, NULL), *cwd;

	if (abs || file[0] == '/')
		return abs ? abs : strdup(file);
	cwd = getcwd(NULL, 0);
	if (!cwd)
		return NULL;
	if (asprintf(&abs, "%s/%s", cwd, file) < 0)
		abs = NULL;
	free(cwd);
	return abs;
}

/* --cluster: checked here for every host; written by the daemon. */
static int apply_cluster(const struct vsn_opts *o, const char *file, bool check, long long revision,
			 bool cluster)
{
	struct vsn_error err = {.msg = ""};
	struct json_object *req;
	char hosts[256] = "", *text = NULL, *abs;
	size_t len = 0;
	FILE *f;
	int ret;

	if (!cluster) {
		vsn_err("apply: --revision goes with --cluster");
		return 2;
	}
	/* Checked as every host will read it. */
	f = fopen(file, "rb");
	if (!f || getdelim(&text, &len, '\0', f) < 0) {
		vsn_err("apply: %s: cannot read it: %s", file, strerror(errno));
		if (f)
			fclose(f);
		free(text);
		return 1;
	}
	fclose(f);
	ret = cluster_check_config(file, text, strlen(text), hosts, sizeof(hosts), &err);
	free(text);
	if (ret) {
		vsn_err("%s", err.msg);
		return 1;
	}
	if (check) {
		vsn_info(o, "%s: valid for every host it names (%s)", file,
			 hosts[0] ? hosts : "none: every host reads all of it");
		if (o->json)
			printf("{\"ok\":true,\"hosts\":\"%s\"}\n", hosts);
		return 0;
	}
	abs = abs_path(file);
	if (!abs) {
		vsn_err("apply: %s: cannot resolve the path: %s", file, strerror(errno));
		return 1;
	}
	req = json_object_new_object();
	json_object_object_add(req, "cmd", json_object_new_string("apply"));
	json_object_object_add(req, "file", json_object_new_string(abs));
	json_object_object_add(req, "cluster", json_object_new_boolean(true));
	if (revision >= 0)
		json_object_object_add(req, "revision", json_object_new_int64(revision));
	ret = api_forward(o, req);
	json_object_put(req);
	free(abs);
	if (ret < 0) {
		vsn_err("apply --cluster: no daemon answers on %s: the configuration goes to etcd "
			"through it (start 'vsn daemon -c FILE' with a cluster section)",
			api_socket_path());
		return 1;
	}
	return ret;
}

int cmd_apply(const struct vsn_opts *o, int argc, char **argv)
{
	struct vsn_config *cfg = NULL;
	struct vsn_maps m = VSN_MAPS_NONE;
	struct vsn_plan plan = {};
	struct plan_host host;
	const char *file = NULL;
	struct vsn_error err = {};
	bool check = false, have_maps = false, allow_empty = false, cluster = false;
	long long revision = -1;
	int i, ret = 1;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--check")) {
			check = true;
		} else if (!strcmp(argv[i], "--allow-empty")) {
			allow_empty = true;
		} else if (!strcmp(argv[i], "--cluster")) {
			cluster = true;
		} else if (!strcmp(argv[i], "--revision")) {
			char *end = NULL;

			if (i + 1 < argc)
				revision = strtoll(argv[++i], &end, 10);
			if (!end || *end || revision < 0) {
				vsn_err("apply: --revision takes a revision number (0: none yet)");
				return 2;
			}
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
	if (cluster || revision >= 0)
		return apply_cluster(o, file, check, revision, cluster);
	if (!check) {
		/* A running daemon applies it (and keeps its own decisions).
		 * It takes absolute paths only: its directory is not ours. */
		char *abs = abs_path(file);
		struct json_object *req = json_object_new_object();

		if (!abs) {
			vsn_err("apply: %s: cannot resolve the path: %s", file, strerror(errno));
			json_object_put(req);
			return 1;
		}
		json_object_object_add(req, "cmd", json_object_new_string("apply"));
		json_object_object_add(req, "file", json_object_new_string(abs));
		if (allow_empty)
			json_object_object_add(req, "allow_empty", json_object_new_boolean(true));
		ret = api_forward(o, req);
		json_object_put(req);
		free(abs);
		if (ret >= 0)
			return ret;
		ret = 1;
	}
	cfg = config_read(file, allow_empty ? CONFIG_ALLOW_EMPTY : 0, &err);
	if (!cfg) {
		vsn_err("%s", err.msg);
		goto cleanup;
	}
	if (!check) {
		if (pins_open(o, &m))
			goto cleanup;
		have_maps = true;
	} else {
		/* --check: the maps only add checks (this host's attach, room);
		 * without them (nothing attached, not root) the file is still
		 * judged, and the verdict says what was not checked. */
		struct vsn_error ignored = {.msg = ""};

		have_maps = !pins_open_err(o, &m, &ignored);
	}
	plan_host_system(&host, have_maps ? m.ifaces : -1);
	if (plan_build(cfg, &host, &plan, &err)) {
		vsn_err("%s", err.msg);
		goto cleanup;
	}
	if (check && have_maps && plan_check_room(&plan, &m, &err)) {
		vsn_err("%s", err.msg);
		goto cleanup;
	}
	if (check) {
		if (o->json)
			printf("{\"file\":\"%s\",\"valid\":true,\"interfaces_checked\":%s}\n", file,
			       have_maps ? "true" : "false");
		else
			printf("%s: valid (%u volumes, %u backends, %u paths, %u routes)%s\n", file,
			       plan.n_volumes, plan.n_backends, plan.n_paths, plan.n_routes,
			       have_maps ? ""
					 : "; interfaces not checked against vsn attach (nothing "
					   "attached, or not root)");
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

static void route_usage(FILE *f)
{
	fprintf(f, "usage: vsn route set VM VOLUME BACKEND PATH\n"
		   "       vsn route del VM VOLUME BACKEND\n"
		   "       vsn route conn VM SRC SPORT DST DPORT PATH   (PATH 0 clears)\n"
		   "\n"
		   "VM is a VM id or 'host'; VOLUME, BACKEND and PATH are ids.  'set' moves\n"
		   "every connection of (VM, VOLUME, BACKEND) to PATH on its next packet;\n"
		   "'conn' pins one connection (as the VM sees it: SRC is the VM, DST the\n"
		   "volume address) to PATH, overriding the route.  When the daemon runs,\n"
		   "the change goes through it and stays pinned: the controller does not\n"
		   "move what an operator set until 'route del' (or PATH 0) releases it.\n");
}

/* The request the daemon would get for these arguments (already parsed). */
static struct json_object *route_request(const char *op, const struct vsn_route_key *k, __u32 path,
					 const struct vsn_conn_key *ck)
{
	struct json_object *req = json_object_new_object();

	json_object_object_add(req, "cmd", json_object_new_string(op));
	if (ck) {
		char a[INET6_ADDRSTRLEN], b[INET6_ADDRSTRLEN];

		json_object_object_add(req, "vm", json_object_new_int64(ck->vm_id));
		addr_to_str(&ck->saddr, a, sizeof(a));
		addr_to_str(&ck->daddr, b, sizeof(b));
		json_object_object_add(req, "src", json_object_new_string(a));
		json_object_object_add(req, "sport", json_object_new_int(ntohs(ck->sport)));
		json_object_object_add(req, "dst", json_object_new_string(b));
		json_object_object_add(req, "dport", json_object_new_int(ntohs(ck->dport)));
	} else {
		json_object_object_add(req, "vm", json_object_new_int64(k->vm_id));
		json_object_object_add(req, "volume", json_object_new_int64(k->volume_id));
		json_object_object_add(req, "backend", json_object_new_int64(k->backend_id));
	}
	if (strcmp(op, "route-del"))
		json_object_object_add(req, "path", json_object_new_int64(path));
	return req;
}

/* Forward to the daemon; -1: none runs. */
static int route_forward(const struct vsn_opts *o, const char *op, const struct vsn_route_key *k,
			 __u32 path, const struct vsn_conn_key *ck)
{
	struct json_object *req = route_request(op, k, path, ck);
	int ret = api_forward(o, req);

	json_object_put(req);
	return ret;
}

static int parse_conn(char **argv, struct vsn_conn_key *k, __u32 *path)
{
	__u32 vm, sport, dport;
	bool v6a, v6b;

	memset(k, 0, sizeof(*k));
	if (parse_u32(argv[0], "vm", VSN_MAX_VMS - 1, &vm) ||
	    parse_u32(argv[2], "sport", 65535, &sport) ||
	    parse_u32(argv[4], "dport", 65535, &dport) ||
	    parse_u32(argv[5], "path", VSN_MAX_PATHS - 1, path))
		return -EINVAL;
	if (parse_addr(argv[1], &k->saddr, &v6a) || parse_addr(argv[3], &k->daddr, &v6b) ||
	    v6a != v6b) {
		vsn_err("route conn: SRC and DST must be addresses of one family");
		return -EINVAL;
	}
	k->sport = htons(sport);
	k->dport = htons(dport);
	k->vm_id = vm;
	k->dir = VSN_DIR_TO_STORAGE;
	k->proto = IPPROTO_TCP;
	return 0;
}

int cmd_route(const struct vsn_opts *o, int argc, char **argv)
{
	struct vsn_maps m = VSN_MAPS_NONE;
	struct vsn_route_key k = {};
	struct vsn_conn_key ck;
	struct vsn_error err = {.msg = ""};
	bool conn;
	__u32 path = 0;
	int ret = 2;

	if (argc < 2 || cli_help_asked(argc, argv)) {
		route_usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (!((!strcmp(argv[1], "set") && argc == 6) || (!strcmp(argv[1], "del") && argc == 5) ||
	      (!strcmp(argv[1], "conn") && argc == 8))) {
		vsn_err("route: bad arguments");
		route_usage(stderr);
		return 2;
	}
	conn = !strcmp(argv[1], "conn");
	if (conn) {
		if (parse_conn(argv + 2, &ck, &path))
			return 2;
	} else if (parse_u32(argv[2], "vm", VSN_MAX_VMS - 1, &k.vm_id) ||
		   parse_u32(argv[3], "volume", VSN_MAX_VOLUMES - 1, &k.volume_id) ||
		   parse_u32(argv[4], "backend", VSN_MAX_BACKENDS - 1, &k.backend_id) ||
		   (argc == 6 && parse_u32(argv[5], "path", VSN_MAX_PATHS - 1, &path))) {
		return 2;
	}
	ret = route_forward(o,
			    conn		      ? "route-conn"
			    : !strcmp(argv[1], "set") ? "route-set"
						      : "route-del",
			    &k, path, conn ? &ck : NULL);
	if (ret >= 0)
		return ret;
	if (pins_open(o, &m))
		return 1;
	ret = 1;
	if (conn) {
		if (ops_conn_path_any(&m, &ck, path, &err))
			goto fail;
	} else if (!strcmp(argv[1], "del")) {
		if (ops_route_del(&m, &k, &err))
			goto fail;
	} else {
		if (ops_route_set(&m, &k, path, VSN_ROUTE_PINNED, &err))
			goto fail;
		vsn_info(o, "route vm %u volume %u backend %u -> path %u", k.vm_id, k.volume_id,
			 k.backend_id, path);
	}
	ret = 0;
	goto cleanup;
fail:
	vsn_err("%s", err.msg);
cleanup:
	pins_close(&m);
	return ret;
}

int cmd_backend(const struct vsn_opts *o, int argc, char **argv)
{
	struct vsn_maps m = VSN_MAPS_NONE;
	struct json_object *req;
	struct vsn_error err = {.msg = ""};
	__u32 id;
	__u8 state;
	int ret;

	if (argc != 4 || strcmp(argv[1], "set") || cli_help_asked(argc, argv)) {
		FILE *f = cli_help_asked(argc, argv) ? stdout : stderr;

		fprintf(f,
			"usage: vsn backend set ID up|down|draining\n\n"
			"Change a backend's state and rebuild the consistent-hash tables of the\n"
			"volumes using it: new connections avoid a backend that is not up;\n"
			"existing ones stay where they are.  When the daemon runs, 'down' and\n"
			"'draining' are an operator's drain the controller keeps until 'up'.\n");
		return f == stdout ? 0 : 2;
	}
	if (parse_u32(argv[2], "backend", VSN_MAX_BACKENDS - 1, &id))
		return 2;
	if (ops_backend_state_parse(argv[3], &state)) {
		vsn_err("backend set: state '%s' is not one of up, down, draining", argv[3]);
		return 2;
	}
	req = json_object_new_object();
	json_object_object_add(req, "cmd", json_object_new_string("backend-set"));
	json_object_object_add(req, "backend", json_object_new_int64(id));
	json_object_object_add(req, "state", json_object_new_string(argv[3]));
	ret = api_forward(o, req);
	json_object_put(req);
	if (ret >= 0)
		return ret;
	if (pins_open(o, &m))
		return 1;
	ret = 1;
	if (ops_backend_state(&m, id, state, &err)) {
		vsn_err("%s", err.msg);
		goto cleanup;
	}
	vsn_info(o, "backend %u is %s", id, argv[3]);
	ret = 0;
cleanup:
	pins_close(&m);
	return ret;
}
