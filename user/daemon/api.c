// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The API's requests (protocol: api.h, commands: docs/daemon.md): what each
 * does, validated whole before anything changes; the changes go through
 * config/ops.c, the same code the CLI uses when no daemon runs.  How
 * requests arrive and answers leave: api_conn.c.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <bpf/bpf.h>

#include "cluster/cluster.h"
#include "daemon/api.h"
#include "daemon/daemon.h"
#include "config/ops.h"

static struct json_object *health_json(enum vsn_health h, const char *reason)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "state", json_object_new_string(pol_health_name(h)));
	json_object_object_add(o, "reason", json_object_new_string(reason));
	return o;
}

static struct json_object *pinned_json(struct ctl *c)
{
	struct json_object *a = json_object_new_array(), *o;
	struct vsn_route_key k, next;
	struct vsn_route r;
	bool first = true;

	while (!bpf_map_get_next_key(c->m.routes, first ? NULL : &k, &next)) {
		first = false;
		k = next;
		if (bpf_map_lookup_elem(c->m.routes, &k, &r) || !(r.flags & VSN_ROUTE_PINNED))
			continue;
		o = json_object_new_object();
		json_object_object_add(o, "vm", json_object_new_int64(k.vm_id));
		json_object_object_add(o, "volume", json_object_new_int64(k.volume_id));
		json_object_object_add(o, "backend", json_object_new_int64(k.backend_id));
		json_object_object_add(o, "path", json_object_new_int64(r.path_id));
		/* A failure moved it: the operator's path, where it returns. */
		if (r.pin_path)
			json_object_object_add(o, "displaced_from",
					       json_object_new_int64(r.pin_path));
		json_object_array_add(a, o);
	}
	return a;
}

struct json_object *ctl_state_json(struct ctl *c)
{
	struct json_object *root = json_object_new_object(), *a, *o;
	unsigned i;

	a = json_object_new_array();
	for (i = 0; i < c->n_uplinks; i++) {
		const struct ctl_uplink *u = &c->uplinks[i];

		o = json_object_new_object();
		json_object_object_add(o, "interface", json_object_new_string(u->cfg->interface));
		json_object_object_add(o, "carrier", json_object_new_boolean(u->carrier));
		json_object_object_add(o, "rate_bps", json_object_new_double(u->rate_bps));
		json_object_object_add(o, "utilisation", json_object_new_double(u->util));
		json_object_object_add(o, "qdisc_throttled",
				       json_object_new_boolean(u->q_throttled));
		json_object_object_add(o, "congested", json_object_new_boolean(u->congested));
		json_object_array_add(a, o);
	}
	json_object_object_add(root, "uplinks", a);
	a = json_object_new_array();
	for (i = 0; i < c->n_paths; i++) {
		const struct ctl_path *p = &c->paths[i];

		o = health_json(p->damp.state, p->reason);
		json_object_object_add(o, "path", json_object_new_int64(p->id));
		json_object_object_add(o, "uplink", json_object_new_string(p->cfg->uplink));
		json_object_object_add(o, "rate_bps", json_object_new_double(p->rate_bps));
		json_object_object_add(o, "latency_ms", json_object_new_double(p->lat_ms));
		json_object_object_add(o, "latency_baseline_ms",
				       json_object_new_double(p->lat_base_ms));
		json_object_object_add(o, "transitions",
				       json_object_new_int64((int64_t)p->damp.transitions));
		json_object_array_add(a, o);
	}
	json_object_object_add(root, "paths", a);
	a = json_object_new_array();
	for (i = 0; i < c->n_backends; i++) {
		const struct ctl_backend *b = &c->backends[i];

		o = health_json(b->damp.state, b->reason);
		json_object_object_add(o, "backend", json_object_new_int64(b->id));
		json_object_object_add(o, "drained", json_object_new_boolean(b->drained));
		if (b->admin_state)
			json_object_object_add(
			    o, "operator_state",
			    json_object_new_string(ops_backend_state_name(b->admin)));
		if (b->polled) {
			json_object_object_add(o, "reachable",
					       json_object_new_boolean(b->reachable));
			json_object_object_add(o, "critical_warning",
					       json_object_new_int(b->critical_warning));
			json_object_object_add(o, "ana_state", json_object_new_int(b->ana_state));
		}
		json_object_array_add(a, o);
	}
	json_object_object_add(root, "backends", a);
	json_object_object_add(root, "pinned_routes", pinned_json(c));
	a = json_object_new_array();
	for (i = 1; c->vols && i < VSN_MAX_VOLUMES; i++) {
		if (c->vols[i].cls == POL_CLASS_MIXED && !c->vols[i].tier_pref)
			continue;
		o = json_object_new_object();
		json_object_object_add(o, "volume", json_object_new_int64(i));
		json_object_object_add(o, "class",
				       json_object_new_string(pol_class_name(c->vols[i].cls)));
		if (c->vols[i].tier_pref)
			json_object_object_add(o, "tier",
					       json_object_new_int64(c->vols[i].tier_pref - 1));
		json_object_array_add(a, o);
	}
	json_object_object_add(root, "volumes", a);
	o = json_object_new_object();
	for (i = 0; i < CTL_WHY_MAX; i++)
		json_object_object_add(o, ctl_why_name(i),
				       json_object_new_int64((int64_t)c->reroutes[i]));
	json_object_object_add(root, "reroutes", o);
	a = json_object_new_array();
	for (i = c->n_log > CTL_LOG_KEEP ? c->n_log - CTL_LOG_KEEP : 0; i < c->n_log; i++) {
		struct json_object *e = json_tokener_parse(c->log[i % CTL_LOG_KEEP].line);

		if (e)
			json_object_array_add(a, e);
	}
	json_object_object_add(root, "decisions", a);
	json_object_object_add(root, "datapath", ctl_datapath_json(c));
	json_object_object_add(root, "ticks", json_object_new_int64((int64_t)c->ticks));
	json_object_object_add(root, "observe_only",
			       json_object_new_boolean(c->cfg->ctl.observe_only));
	return root;
}

/* A required unsigned field no larger than max. */
static int get_u32(struct json_object *req, const char *key, uint32_t max, uint32_t *out,
		   struct vsn_error *err)
{
	struct json_object *v;
	int64_t n;

	if (!json_object_object_get_ex(req, key, &v) || !json_object_is_type(v, json_type_int)) {
		vsn_error_set(err, 0, "'%s' is missing or not an integer", key);
		return -EINVAL;
	}
	n = json_object_get_int64(v);
	if (n < 0 || n > max) {
		vsn_error_set(err, 0, "'%s' must be 0..%u", key, max);
		return -EINVAL;
	}
	*out = (uint32_t)n;
	return 0;
}

static const char *get_str(struct json_object *req, const char *key, struct vsn_error *err)
{
	struct json_object *v;

	if (!json_object_object_get_ex(req, key, &v) || !json_object_is_type(v, json_type_string)) {
		vsn_error_set(err, 0, "'%s' is missing or not a string", key);
		return NULL;
	}
	return json_object_get_string(v);
}

static int get_route_key(struct json_object *req, struct vsn_route_key *k, struct vsn_error *err)
{
	if (get_u32(req, "vm", VSN_MAX_VMS - 1, &k->vm_id, err) ||
	    get_u32(req, "volume", VSN_MAX_VOLUMES - 1, &k->volume_id, err) ||
	    get_u32(req, "backend", VSN_MAX_BACKENDS - 1, &k->backend_id, err))
		return -EINVAL;
	return 0;
}

static int do_route_set(struct ctl *c, struct json_object *req, char *msg, size_t ml,
			struct vsn_error *err)
{
	struct vsn_route_key k = {};
	struct vsn_route old;
	uint32_t path;
	bool same;
	int ret;

	if (get_route_key(req, &k, err) || get_u32(req, "path", VSN_MAX_PATHS - 1, &path, err))
		return -EINVAL;
	/* The same pin again changes nothing: written, not logged (a script
	 * repeating it must not flood the decision log). */
	same = !bpf_map_lookup_elem(c->m.routes, &k, &old) && old.path_id == path &&
	       (old.flags & VSN_ROUTE_PINNED);
	ret = ops_route_set(&c->m, &k, path, VSN_ROUTE_PINNED, err);
	if (ret)
		return ret;
	snprintf(msg, ml, "route vm %u volume %u backend %u -> path %u (pinned%s)", k.vm_id,
		 k.volume_id, k.backend_id, path, same ? ", unchanged" : "");
	if (same)
		return 0;
	ctl_log(c, CTL_WHY_OPERATOR,
		"\"event\":\"route-pinned\",\"vm\":%u,\"volume\":%u,\"backend\":%u,\"path\":%u",
		k.vm_id, k.volume_id, k.backend_id, path);
	return 0;
}

/* Through the daemon, "route del" releases a pin: the route stays, the
 * controller owns it again. */
static int do_route_del(struct ctl *c, struct json_object *req, char *msg, size_t ml,
			struct vsn_error *err)
{
	struct vsn_route_key k = {};
	struct vsn_route r;

	if (get_route_key(req, &k, err))
		return -EINVAL;
	if (bpf_map_lookup_elem(c->m.routes, &k, &r) || !(r.flags & VSN_ROUTE_PINNED)) {
		vsn_error_set(
		    err, 0,
		    "route del: no pinned route for vm %u volume %u backend %u (the daemon "
		    "owns routes; see 'vsn daemon status')",
		    k.vm_id, k.volume_id, k.backend_id);
		return -ENOENT;
	}
	r.flags &= ~VSN_ROUTE_PINNED;
	if (bpf_map_update_elem(c->m.routes, &k, &r, BPF_EXIST)) {
		vsn_error_set(err, 0, "route del: cannot update %s: %s", VSN_MAP_ROUTES,
			      strerror(errno));
		return -errno;
	}
	ctl_log(c, CTL_WHY_OPERATOR,
		"\"event\":\"route-unpinned\",\"vm\":%u,\"volume\":%u,\"backend\":%u", k.vm_id,
		k.volume_id, k.backend_id);
	snprintf(msg, ml, "route vm %u volume %u backend %u released to the controller", k.vm_id,
		 k.volume_id, k.backend_id);
	return 0;
}

static int do_route_conn(struct ctl *c, struct json_object *req, char *msg, size_t ml,
			 struct vsn_error *err)
{
	struct vsn_conn_key k = {};
	struct vsn_conn v = {};
	const char *src, *dst;
	uint32_t sport, dport, path;
	bool v6a, v6b, same;

	if (get_u32(req, "vm", VSN_MAX_VMS - 1, &k.vm_id, err) ||
	    !(src = get_str(req, "src", err)) || !(dst = get_str(req, "dst", err)) ||
	    get_u32(req, "sport", 65535, &sport, err) ||
	    get_u32(req, "dport", 65535, &dport, err) ||
	    get_u32(req, "path", VSN_MAX_PATHS - 1, &path, err))
		return -EINVAL;
	if (parse_addr(src, &k.saddr, &v6a) || parse_addr(dst, &k.daddr, &v6b) || v6a != v6b) {
		vsn_error_set(err, 0, "route conn: src and dst must be addresses of one family");
		return -EINVAL;
	}
	k.sport = htons((uint16_t)sport);
	k.dport = htons((uint16_t)dport);
	k.dir = VSN_DIR_TO_STORAGE;
	k.proto = IPPROTO_TCP; /* as ops_conn_path_any looks it up first */
	if (bpf_map_lookup_elem(c->m.conns, &k, &v)) {
		k.proto = IPPROTO_UDP;
		if (bpf_map_lookup_elem(c->m.conns, &k, &v))
			v.path_override = UINT32_MAX; /* not there: the call below says so */
	}
	same = v.path_override == path && ctl_move_slot(c, v.conn_id)->operator==(path != 0);
	if (ops_conn_path_any(&c->m, &k, path, err))
		return -ENOENT;
	if (!bpf_map_lookup_elem(c->m.conns, &k, &v))
		ctl_move_slot(c, v.conn_id)->operator= path != 0;
	snprintf(msg, ml, "connection %s:%u -> %s:%u %s path %u%s", src, sport, dst, dport,
		 path ? "pinned to" : "released from", path, same ? " (unchanged)" : "");
	if (same)
		return 0; /* a repeat: nothing to log */
	ctl_log(c, CTL_WHY_OPERATOR,
		"\"event\":\"connection-pinned\",\"vm\":%u,\"sport\":%u,\"path\":%u", k.vm_id,
		sport, path);
	return 0;
}

static int do_backend_set(struct ctl *c, struct json_object *req, char *msg, size_t ml,
			  struct vsn_error *err)
{
	const char *state_s;
	struct ctl_backend *b;
	uint32_t id;
	uint8_t state;
	bool same;
	int ret;

	if (get_u32(req, "backend", VSN_MAX_BACKENDS - 1, &id, err) ||
	    !(state_s = get_str(req, "state", err)))
		return -EINVAL;
	if (ops_backend_state_parse(state_s, &state)) {
		vsn_error_set(err, 0, "backend set: state '%s' is not one of up, down, draining",
			      state_s);
		return -EINVAL;
	}
	b = ctl_backend(c, id);
	if (!b) {
		vsn_error_set(err, 0, "backend set: no backend %u in the daemon's config", id);
		return -ENOENT;
	}
	/* Up releases the operator's hold; a failed backend stays drained. */
	ret = ops_backend_state(&c->m, id, state == VSN_BE_UP && b->drained ? VSN_BE_DOWN : state,
				err);
	if (ret)
		return ret;
	/* Logged when the operator's hold changes, not for each repeat. */
	same = b->admin_state == (state != VSN_BE_UP) && (state == VSN_BE_UP || b->admin == state);
	b->admin_state = state != VSN_BE_UP;
	b->admin = state;
	if (!same)
		ctl_log(c, CTL_WHY_OPERATOR,
			"\"event\":\"backend-set\",\"backend\":%u,\"state\":\"%s\"", id, state_s);
	snprintf(msg, ml, "backend %u is %s%s", id, state_s,
		 state == VSN_BE_UP && b->drained ? " (but failed: stays drained until healthy)"
						  : "");
	return 0;
}

/*
 * An apply: its arguments checked here, its file read by the loader
 * (loader.c), which hands the result to ctl_api_apply_loaded.  0: the
 * client waits for that.
 */
static int apply_start(struct ctl *c, unsigned slot, struct json_object *req, struct vsn_error *err)
{
	const char *file = get_str(req, "file", err);
	bool allow_empty = false, cluster = false;
	struct json_object *v;
	int64_t expect = -1;
	int ret;

	if (!file)
		return -EINVAL;
	/* Relative to what?  The daemon's directory is not the client's. */
	if (file[0] != '/') {
		vsn_error_set(err, 0, "'file' must be an absolute path ('vsn apply' sends one)");
		return -EINVAL;
	}
	if (json_object_object_get_ex(req, "allow_empty", &v)) {
		if (!json_object_is_type(v, json_type_boolean)) {
			vsn_error_set(err, 0, "'allow_empty' must be true or false");
			return -EINVAL;
		}
		allow_empty = json_object_get_boolean(v);
	}
	if (json_object_object_get_ex(req, "cluster", &v)) {
		if (!json_object_is_type(v, json_type_boolean)) {
			vsn_error_set(err, 0, "'cluster' must be true or false");
			return -EINVAL;
		}
		cluster = json_object_get_boolean(v);
	}
	if (json_object_object_get_ex(req, "revision", &v)) {
		if (!cluster || !json_object_is_type(v, json_type_int) ||
		    json_object_get_int64(v) < 0) {
			vsn_error_set(err, 0,
				      "'revision' goes with 'cluster' and is a revision (0: no "
				      "configuration in etcd yet)");
			return -EINVAL;
		}
		expect = json_object_get_int64(v);
	}
	if (cluster && !ctl_fleet_cluster(c)) {
		vsn_error_set(err, 0,
			      "this daemon is in no cluster: its config has no cluster section "
			      "(docs/cluster.md)");
		return -EINVAL;
	}
	if (!cluster && ctl_fleet_config_rev(c)) {
		vsn_error_set(
		    err, 0,
		    "this host runs the cluster's configuration (revision %lld): change it "
		    "for every host with 'vsn apply --cluster FILE'",
		    (long long)ctl_fleet_config_rev(c));
		return -EINVAL;
	}
	/* By default the swap is against the configuration this host saw
	 * last: a change made meanwhile elsewhere is not overwritten. */
	if (cluster && expect < 0)
		expect = ctl_fleet_view(c)->config_rev;
	if (cluster)
		ret = ctl_loader_submit_cluster(c, file, 0, ctl_fleet_cluster(c), expect, (int)slot,
						c->api[slot].ticket);
	else
		ret = ctl_loader_submit(c, file, allow_empty ? CONFIG_ALLOW_EMPTY : 0, (int)slot,
					c->api[slot].ticket);
	if (ret == -EBUSY)
		return vsn_error_set(err, ret, "busy: a config is being read; try again");
	if (ret)
		return vsn_error_set(err, ret, "%s: %s", file, strerror(-ret));
	ctl_api_hold(c, slot, API_LOAD_MS);
	return 0;
}

/* The file of an apply, read: the rest of it (cfg consumed). */
static int apply_finish(struct ctl *c, struct vsn_config *cfg, char *msg, size_t ml,
			struct vsn_error *err)
{
	char esc[2 * sizeof(err->msg)];
	const char *file = cfg->file;
	int ret = 0;

	if (ctl_datapath_refuse(c, "apply", err)) {
		ret = -ENXIO;
	} else if (strcmp(cfg->ctl.socket, c->cfg->ctl.socket)) {
		vsn_error_set(
		    err, 0,
		    "%s: controller.socket differs from the running daemon's (%s): restart "
		    "the daemon to move its socket",
		    file, c->cfg->ctl.socket);
		ret = -EINVAL;
	}
	if (!ret)
		ret = ctl_adopt_config(c, cfg, err);
	if (ret) {
		config_free(cfg);
		return ret;
	}

	ctl_log(c, CTL_WHY_RELOAD, "\"event\":\"config-applied\",\"file\":\"%s\"",
		ctl_esc(esc, sizeof(esc), cfg->file));
	snprintf(msg, ml, "%s: applied by the daemon (%u volumes, %u backends, %u paths)", file,
		 cfg->n_volumes, cfg->n_backends, cfg->n_paths);
	return 0;
}

/* The reply: resp (NULL: a new object) with ok, and error or message. */
static struct json_object *outcome(struct ctl *c, struct json_object *resp, int ret,
				   const struct vsn_error *err, const char *msg)
{
	if (!resp)
		resp = json_object_new_object();
	json_object_object_add(resp, "ok", json_object_new_boolean(!ret));
	if (ret) {
		c->api_errors++;
		json_object_object_add(resp, "error", json_object_new_string(err->msg));
	} else if (msg[0]) {
		json_object_object_add(resp, "message", json_object_new_string(msg));
	}
	return resp;
}

/* An apply's own path: answered once its file is read, or now with why
 * not.  true when the request was one. */
static bool apply_request(struct ctl *c, unsigned slot, struct json_object *req)
{
	struct vsn_error err = {.msg = ""};
	struct json_object *cmd;
	int ret;

	if (!req || !json_object_is_type(req, json_type_object) ||
	    !json_object_object_get_ex(req, "cmd", &cmd) ||
	    !json_object_is_type(cmd, json_type_string) ||
	    strcmp(json_object_get_string(cmd), "apply"))
		return false;
	ret = ctl_datapath_refuse(c, "apply", &err) ? -ENXIO : apply_start(c, slot, req, &err);
	if (ret)
		ctl_api_reply(c, slot, outcome(c, NULL, ret, &err, ""));
	return true;
}

void ctl_api_apply_loaded(struct ctl *c, int slot, uint64_t ticket, struct vsn_config *cfg,
			  const struct vsn_error *rerr)
{
	struct vsn_error err = *rerr;
	char msg[512] = "";
	int ret = cfg ? apply_finish(c, cfg, msg, sizeof(msg), &err) : -EINVAL;
	struct json_object *resp = outcome(c, NULL, ret, &err, msg);

	if (ctl_api_resume(c, slot, ticket)) {
		ctl_api_reply(c, (unsigned)slot, resp);
		return;
	}
	/* The client gave up: the outcome is in the log (or on stderr). */
	if (ret)
		vsn_warn("apply (its client is gone): %s", err.msg);
	json_object_put(resp);
}

void ctl_api_cluster_put_done(struct ctl *c, int slot, uint64_t ticket, int64_t rev,
			      const char *hosts, const struct vsn_error *err)
{
	char msg[512] = "";
	struct json_object *resp = json_object_new_object();

	if (rev) {
		snprintf(msg, sizeof(msg),
			 "written to etcd as revision %lld: every host applies its part "
			 "('vsn cluster status' shows what each runs)",
			 (long long)rev);
		json_object_object_add(resp, "revision", json_object_new_int64(rev));
		json_object_object_add(resp, "hosts", json_object_new_string(hosts));
		ctl_log(c, CTL_WHY_OPERATOR,
			"\"event\":\"cluster-config-written\",\"revision\":%lld", (long long)rev);
	}
	resp = outcome(c, resp, rev ? 0 : -EINVAL, err, msg);
	if (ctl_api_resume(c, slot, ticket)) {
		ctl_api_reply(c, (unsigned)slot, resp);
		return;
	}
	if (!rev)
		vsn_warn("apply --cluster (its client is gone): %s", err->msg);
	json_object_put(resp);
}

/* 'vsn cluster status' and 'vsn cluster config'. */
static struct json_object *cluster_request(struct ctl *c, const char *cmd, int *ret,
					   struct vsn_error *err)
{
	struct json_object *resp;
	int64_t rev = 0;
	char *text;

	*ret = -EINVAL;
	if (!ctl_fleet_cluster(c)) {
		vsn_error_set(err, 0,
			      "this daemon is in no cluster: its config has no cluster section "
			      "(docs/cluster.md)");
		return NULL;
	}
	if (!strcmp(cmd, "cluster-status")) {
		resp = ctl_fleet_json(c);
		*ret = resp ? 0 : -ENOMEM;
		return resp;
	}
	text = cluster_config_text(ctl_fleet_cluster(c), &rev);
	resp = json_object_new_object();
	json_object_object_add(resp, "revision", json_object_new_int64(rev));
	json_object_object_add(resp, "config", text ? json_object_new_string(text) : NULL);
	free(text);
	*ret = 0;
	return resp;
}

static struct json_object *handle(struct ctl *c, struct json_object *req)
{
	struct json_object *resp = NULL;
	struct vsn_error err = {.msg = ""};
	char msg[512] = "";
	const char *cmd;
	int ret;

	if (!req || !json_object_is_type(req, json_type_object)) {
		vsn_error_set(&err, 0, "the request is not a JSON object");
		ret = -EINVAL;
	} else if (!(cmd = get_str(req, "cmd", &err))) {
		ret = -EINVAL;
	} else if (!strcmp(cmd, "status") || !strcmp(cmd, "health")) {
		resp = ctl_state_json(c);
		ret = 0;
	} else if (!strcmp(cmd, "cluster-status") || !strcmp(cmd, "cluster-config")) {
		resp = cluster_request(c, cmd, &ret, &err);
	} else if (ctl_datapath_refuse(c, cmd, &err)) {
		ret = -ENXIO; /* detached: nothing written would reach a packet */
	} else if (!strcmp(cmd, "route-set")) {
		ret = do_route_set(c, req, msg, sizeof(msg), &err);
	} else if (!strcmp(cmd, "route-del")) {
		ret = do_route_del(c, req, msg, sizeof(msg), &err);
	} else if (!strcmp(cmd, "route-conn")) {
		ret = do_route_conn(c, req, msg, sizeof(msg), &err);
	} else if (!strcmp(cmd, "backend-set")) {
		ret = do_backend_set(c, req, msg, sizeof(msg), &err);
	} else {
		vsn_error_set(&err, 0,
			      "unknown cmd '%s' (status, health, route-set, route-del, route-conn, "
			      "backend-set, apply, cluster-status, cluster-config)",
			      cmd);
		ret = -EINVAL;
	}
	return outcome(c, resp, ret, &err, msg);
}

void ctl_api_request(struct ctl *c, unsigned slot, struct json_object *req)
{
	if (!apply_request(c, slot, req))
		ctl_api_reply(c, slot, handle(c, req));
}
