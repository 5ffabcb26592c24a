// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The API socket's server side (protocol: api.h, commands: docs/daemon.md).
 * Requests are validated whole before anything changes; the changes go
 * through config/ops.c, the same code the CLI uses when no daemon runs.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <bpf/bpf.h>

#include "daemon/api.h"
#include "daemon/daemon.h"
#include "config/ops.h"

#define STR_(x) #x
#define STR(x)	STR_(x)

static int api_bind(const char *path, struct vsn_error *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char dir[sizeof(sa.sun_path)], *slash;
	mode_t old;
	int fd, ret;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		vsn_error_set(err, 0, "socket path too long: %s", path);
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	memcpy(dir, path, strlen(path) + 1);
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0755) && errno != EEXIST) {
			ret = -errno;
			vsn_error_set(err, 0, "cannot create %s: %s", dir, strerror(errno));
			return ret;
		}
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		ret = -errno;
		vsn_error_set(err, 0, "socket: %s", strerror(errno));
		return ret;
	}
	/* A socket file that nobody answers on is a dead daemon's: replace it. */
	if (!connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		vsn_error_set(
		    err, 0,
		    "a daemon already answers on %s (stop it first, or set controller.socket)",
		    path);
		close(fd);
		return -EADDRINUSE;
	}
	unlink(path);
	old = umask(0077); /* created 0600: root only */
	ret = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (ret || chmod(path, 0600) || listen(fd, API_BACKLOG)) {
		ret = -errno;
		vsn_error_set(err, 0, "cannot listen on %s: %s", path, strerror(errno));
		close(fd);
		return ret;
	}
	return fd;
}

static void client_close(struct ctl *c, unsigned slot);
static void client_reply(struct ctl *c, unsigned slot, struct json_object *resp);
static int ep_client(struct ctl *c, unsigned slot, int op, uint32_t events);

int ctl_api_open(struct ctl *c, struct vsn_error *err)
{
	unsigned i;
	int fd;

	c->api = calloc(API_MAX_CLIENTS, sizeof(*c->api));
	if (!c->api) {
		vsn_error_set(err, 0, "out of memory");
		return -ENOMEM;
	}
	for (i = 0; i < API_MAX_CLIENTS; i++)
		c->api[i].fd = -1;
	fd = api_bind(c->cfg->ctl.socket, err);
	if (fd < 0)
		return fd;
	c->api_fd = fd;
	return 0;
}

void ctl_api_close(struct ctl *c)
{
	unsigned i;

	for (i = 0; c->api && i < API_MAX_CLIENTS; i++)
		if (c->api[i].fd >= 0)
			client_close(c, i);
	free(c->api);
	c->api = NULL;
	if (c->api_fd >= 0) {
		close(c->api_fd);
		unlink(c->cfg->ctl.socket);
	}
	c->api_fd = -1;
}

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
	struct json_object *v;
	bool allow_empty = false;
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
	ret = ctl_loader_submit(c, file, allow_empty ? CONFIG_ALLOW_EMPTY : 0, (int)slot,
				c->api[slot].ticket);
	if (ret == -EBUSY)
		return vsn_error_set(err, ret, "busy: a config is being read; try again");
	if (ret)
		return vsn_error_set(err, ret, "%s: %s", file, strerror(-ret));
	c->api[slot].loading = true;
	/* Reading a file of the size cap takes well under this. */
	c->api[slot].deadline_ns = ctl_now_ns() + API_LOAD_MS * NS_PER_MS;
	/* Nothing to read from it meanwhile (a half-close is no error), and
	 * a hang-up must not wake the loop until the answer is due. */
	epoll_ctl(c->epfd, EPOLL_CTL_DEL, c->api[slot].fd, NULL);
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
		ret = ctl_apply_config(c, cfg, err);
	if (ret) {
		config_free(cfg);
		return ret;
	}
	c->reloads++;
	if (ctl_health_start(c, err))
		vsn_warn("apply: %s", err->msg);

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
		client_reply(c, slot, outcome(c, NULL, ret, &err, ""));
	return true;
}

void ctl_api_apply_loaded(struct ctl *c, int slot, uint64_t ticket, struct vsn_config *cfg,
			  const struct vsn_error *rerr)
{
	struct vsn_error err = *rerr;
	char msg[512] = "";
	int ret = cfg ? apply_finish(c, cfg, msg, sizeof(msg), &err) : -EINVAL;
	struct json_object *resp = outcome(c, NULL, ret, &err, msg);
	struct ctl_api_client *cl = slot >= 0 && slot < (int)API_MAX_CLIENTS ? &c->api[slot] : NULL;

	if (cl && cl->fd >= 0 && cl->loading && cl->ticket == ticket) {
		cl->loading = false;
		if (!ep_client(c, (unsigned)slot, EPOLL_CTL_ADD, EPOLLOUT)) {
			client_reply(c, (unsigned)slot, resp);
			return;
		}
		client_close(c, (unsigned)slot);
	}
	/* The client gave up: the outcome is in the log (or on stderr). */
	if (ret)
		vsn_warn("apply (its client is gone): %s", err.msg);
	json_object_put(resp);
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
			      "backend-set, apply)",
			      cmd);
		ret = -EINVAL;
	}
	return outcome(c, resp, ret, &err, msg);
}

/* Keys of every object in a parsed JSON value. */
static size_t json_tree_keys(struct json_object *o)
{
	size_t n = 0, i;

	if (json_object_is_type(o, json_type_object)) {
		json_object_object_foreach(o, k, v)
		{
			(void)k;
			n += 1 + json_tree_keys(v);
		}
	} else if (json_object_is_type(o, json_type_array)) {
		for (i = 0; i < json_object_array_length(o); i++)
			n += json_tree_keys(json_object_array_get_idx(o, i));
	}
	return n;
}

/*
 * Keys in the text of a JSON value: strings followed by ':'.  More keys in
 * the text than json-c kept means one came twice (json-c keeps the last one
 * silently).  The first top-level key seen twice goes to dup (decoded, as
 * json-c reads it), when there is one.
 */
static size_t json_text_keys(const char *s, size_t len, char *dup, size_t dl)
{
	struct json_object *seen = json_object_new_object();
	size_t i, j, n = 0;
	int depth = 0;

	for (i = 0; i < len; i++) {
		size_t start = i;

		if (s[i] == '{' || s[i] == '[')
			depth++;
		else if (s[i] == '}' || s[i] == ']')
			depth--;
		if (s[i] != '"')
			continue;
		for (j = i + 1; j < len && s[j] != '"'; j++)
			if (s[j] == '\\')
				j++;
		if (j >= len)
			break;
		i = j;
		while (++j < len && (s[j] == ' ' || s[j] == '\t' || s[j] == '\r' || s[j] == '\n'))
			;
		if (j >= len || s[j] != ':')
			continue;
		n++;
		if (depth == 1 && seen && !dup[0]) {
			struct json_tokener *tok = json_tokener_new();
			struct json_object *k =
			    tok ? json_tokener_parse_ex(tok, s + start, (int)(i + 1 - start))
				: NULL;
			const char *name = json_object_get_string(k);

			if (name && json_object_object_get_ex(seen, name, NULL))
				snprintf(dup, dl, "%s", name);
			else if (name)
				json_object_object_add(seen, name, NULL);
			json_object_put(k);
			json_tokener_free(tok);
		}
	}
	json_object_put(seen);
	return n;
}

/*
 * The request line (its newline replaced by NUL): one JSON object, each key
 * once, nothing after it.  NULL with err filled otherwise.
 */
static struct json_object *parse_request(const char *line, size_t len, struct vsn_error *err)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *req = NULL;
	char dup[64] = "";
	size_t used, rest;

	if (!tok) {
		vsn_error_set(err, 0, "out of memory");
		return NULL;
	}
	req = json_tokener_parse_ex(tok, line, (int)len);
	if (!req || json_tokener_get_error(tok) != json_tokener_success ||
	    !json_object_is_type(req, json_type_object)) {
		vsn_error_set(err, 0, "the request is not a JSON object");
		goto fail;
	}
	used = json_tokener_get_parse_end(tok);
	for (rest = used; rest < len && strchr(" \t\r", line[rest]); rest++)
		;
	if (rest < len) {
		vsn_error_set(err, 0,
			      "trailing data after the JSON object (at byte %zu): send one object "
			      "per request",
			      used);
		goto fail;
	}
	if (json_text_keys(line, used, dup, sizeof(dup)) != json_tree_keys(req)) {
		if (dup[0])
			vsn_error_set(err, 0,
				      "duplicate key '%.40s' in the request: give each once", dup);
		else
			vsn_error_set(err, 0, "a key appears twice in the request: give each once");
		goto fail;
	}
	json_tokener_free(tok);
	return req;
fail:
	json_tokener_free(tok);
	json_object_put(req);
	return NULL;
}

static int ep_client(struct ctl *c, unsigned slot, int op, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.u32 = CTL_EV_API_CLIENT + slot};

	return epoll_ctl(c->epfd, op, c->api[slot].fd, &ev);
}

static void client_close(struct ctl *c, unsigned slot)
{
	struct ctl_api_client *cl = &c->api[slot];

	if (cl->fd >= 0)
		close(cl->fd); /* also leaves the epoll set */
	free(cl->in);
	free(cl->out);
	memset(cl, 0, sizeof(*cl));
	cl->fd = -1;
}

/* Send what the socket takes now; closed once all is sent or on error. */
static void client_flush(struct ctl *c, unsigned slot)
{
	struct ctl_api_client *cl = &c->api[slot];

	while (cl->out_off < cl->out_len) {
		ssize_t n = send(cl->fd, cl->out + cl->out_off, cl->out_len - cl->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return; /* EPOLLOUT brings the rest, or the deadline the end */
		if (n <= 0)
			break;
		cl->out_off += (size_t)n;
	}
	client_close(c, slot);
}

/* Turn the client to its reply: resp (consumed), then close. */
static void client_reply(struct ctl *c, unsigned slot, struct json_object *resp)
{
	struct ctl_api_client *cl = &c->api[slot];
	const char *text = json_object_to_json_string_ext(resp, JSON_C_TO_STRING_PLAIN);
	size_t len;

	if (!text) /* out of memory: a reply still, if a short one */
		text = "{\"ok\":false,\"error\":\"out of memory\"}";
	len = strlen(text);

	free(cl->in);
	cl->in = NULL;
	cl->out = malloc(len + 1);
	if (!cl->out) {
		json_object_put(resp);
		client_close(c, slot);
		return;
	}
	memcpy(cl->out, text, len);
	cl->out[len] = '\n';
	cl->out_len = len + 1;
	cl->out_off = 0;
	json_object_put(resp);
	cl->deadline_ns = ctl_now_ns() + API_REPLY_MS * NS_PER_MS;
	if (ep_client(c, slot, EPOLL_CTL_MOD, EPOLLOUT)) {
		client_close(c, slot);
		return;
	}
	client_flush(c, slot);
}

static void client_error(struct ctl *c, unsigned slot, const char *msg)
{
	struct json_object *resp = json_object_new_object();

	c->api_errors++;
	json_object_object_add(resp, "ok", json_object_new_boolean(false));
	json_object_object_add(resp, "error", json_object_new_string(msg));
	client_reply(c, slot, resp);
}

/* The request line is in: answer it.  Anything after its newline is a
 * second request on the same connection, which the protocol does not have. */
static void client_request(struct ctl *c, unsigned slot, size_t nl)
{
	struct ctl_api_client *cl = &c->api[slot];
	struct vsn_error err = {.msg = ""};
	struct json_object *req;

	if (nl + 1 < cl->in_len) {
		client_error(c, slot,
			     "data after the request's newline: one request per connection");
		return;
	}
	cl->in[nl] = '\0';
	req = parse_request(cl->in, nl, &err);
	if (!req) {
		client_error(c, slot, err.msg);
		return;
	}
	if (!apply_request(c, slot, req))
		client_reply(c, slot, handle(c, req));
	json_object_put(req);
}

/* Read what has come; a full line gets its answer. */
static void client_read(struct ctl *c, unsigned slot)
{
	struct ctl_api_client *cl = &c->api[slot];
	char msg[128];

	for (;;) {
		ssize_t n =
		    recv(cl->fd, cl->in + cl->in_len, API_MAX_REQUEST - cl->in_len, MSG_DONTWAIT);
		char *nl;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n < 0) {
			client_close(c, slot);
			return;
		}
		if (n == 0) {
			client_error(c, slot, "incomplete request (one JSON object and a newline)");
			return;
		}
		nl = memchr(cl->in + cl->in_len, '\n', (size_t)n);
		cl->in_len += (size_t)n;
		if (nl) {
			client_request(c, slot, (size_t)(nl - cl->in));
			return;
		}
		if (cl->in_len >= API_MAX_REQUEST) {
			snprintf(msg, sizeof(msg), "request too large: no newline within %u bytes",
				 API_MAX_REQUEST);
			client_error(c, slot, msg);
			return;
		}
	}
}

void ctl_api_client_event(struct ctl *c, unsigned slot, uint32_t events)
{
	if (slot >= API_MAX_CLIENTS || c->api[slot].fd < 0)
		return;
	if (c->api[slot].out)
		client_flush(c, slot);
	else if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
		client_read(c, slot);
}

void ctl_api_sweep(struct ctl *c, uint64_t now)
{
	char msg[128];
	unsigned i;

	for (i = 0; c->api && i < API_MAX_CLIENTS; i++) {
		struct ctl_api_client *cl = &c->api[i];

		if (cl->fd < 0 || now < cl->deadline_ns)
			continue;
		c->api_dropped++;
		if (cl->out) {
			/* It does not read its reply: dropped, nothing waits on it. */
			client_close(c, i);
			continue;
		}
		if (cl->loading) {
			/* Back in the epoll set (apply_start took it out) for
			 * its answer; the loader's late result finds it gone. */
			cl->loading = false;
			if (ep_client(c, i, EPOLL_CTL_ADD, EPOLLOUT)) {
				client_close(c, i);
				continue;
			}
			snprintf(msg, sizeof(msg),
				 "the config took over %u ms to read; the daemon's log will say "
				 "whether it was applied",
				 API_LOAD_MS);
		} else
			snprintf(msg, sizeof(msg),
				 "request not complete within %u ms (one JSON object and a "
				 "newline)",
				 API_REQUEST_MS);
		client_error(c, i, msg);
		/* One try: a client that cannot take even the error is gone. */
		if (c->api[i].fd >= 0)
			client_close(c, i);
	}
}

/* A one-line answer to a client that gets no slot; its socket is new, so
 * the line fits in its buffer. */
static void refuse(int fd, const char *line)
{
	ssize_t n = send(fd, line, strlen(line), MSG_NOSIGNAL | MSG_DONTWAIT);

	(void)n; /* nothing more to do for it either way */
	close(fd);
}

/*
 * New connections: each gets a slot and a deadline, or a refusal.  Bounded
 * per call, so that a flood of connects shares the loop with the rest.
 */
void ctl_api_accept(struct ctl *c)
{
	unsigned k, slot;

	for (k = 0; k < API_BACKLOG; k++) {
		struct ucred cred;
		socklen_t cl = sizeof(cred);
		int fd = accept4(c->api_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

		if (fd < 0)
			return;
		c->api_requests++;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) || cred.uid != 0) {
			/* The socket is 0600 root; this is the second lock. */
			c->api_errors++;
			refuse(fd, "{\"ok\":false,\"error\":\"permission denied: the vsn API is "
				   "for root only\"}\n");
			continue;
		}
		for (slot = 0; slot < API_MAX_CLIENTS && c->api[slot].fd >= 0; slot++)
			;
		if (slot == API_MAX_CLIENTS) {
			c->api_errors++;
			c->api_dropped++;
			refuse(fd, "{\"ok\":false,\"error\":\"busy: " STR(
				       API_MAX_CLIENTS) " API clients are connected already; try "
							"again\"}\n");
			continue;
		}
		c->api[slot].fd = fd;
		c->api[slot].ticket = ++c->api_tickets;
		c->api[slot].deadline_ns = ctl_now_ns() + API_REQUEST_MS * NS_PER_MS;
		c->api[slot].in = malloc(API_MAX_REQUEST + 1);
		if (!c->api[slot].in || ep_client(c, slot, EPOLL_CTL_ADD, EPOLLIN)) {
			client_close(c, slot);
			continue;
		}
		client_read(c, slot); /* the line may be there already */
	}
}
