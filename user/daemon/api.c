// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The API socket's server side (protocol: api.h, commands: docs/daemon.md).
 * Requests are validated whole before anything changes; the changes go
 * through config/ops.c, the same code the CLI uses when no daemon runs.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <bpf/bpf.h>

#include "daemon/api.h"
#include "daemon/daemon.h"
#include "config/ops.h"

#define API_READ_MS 500 /* a client gets this long to send its line */

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
	if (ret || chmod(path, 0600) || listen(fd, 16)) {
		ret = -errno;
		vsn_error_set(err, 0, "cannot listen on %s: %s", path, strerror(errno));
		close(fd);
		return ret;
	}
	return fd;
}

int ctl_api_open(struct ctl *c, struct vsn_error *err)
{
	int fd = api_bind(c->cfg->ctl.socket, err);

	if (fd < 0)
		return fd;
	c->api_fd = fd;
	return 0;
}

void ctl_api_close(struct ctl *c)
{
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
	uint32_t path;
	int ret;

	if (get_route_key(req, &k, err) || get_u32(req, "path", VSN_MAX_PATHS - 1, &path, err))
		return -EINVAL;
	ret = ops_route_set(&c->m, &k, path, VSN_ROUTE_PINNED, err);
	if (ret)
		return ret;
	ctl_log(c, CTL_WHY_OPERATOR,
		"\"event\":\"route-pinned\",\"vm\":%u,\"volume\":%u,\"backend\":%u,\"path\":%u",
		k.vm_id, k.volume_id, k.backend_id, path);
	snprintf(msg, ml, "route vm %u volume %u backend %u -> path %u (pinned)", k.vm_id,
		 k.volume_id, k.backend_id, path);
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
	struct vsn_conn v;
	const char *src, *dst;
	uint32_t sport, dport, path;
	bool v6a, v6b;

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
	if (ops_conn_path_any(&c->m, &k, path, err))
		return -ENOENT;
	if (!bpf_map_lookup_elem(c->m.conns, &k, &v))
		ctl_move_slot(c, v.conn_id)->operator= path != 0;
	ctl_log(c, CTL_WHY_OPERATOR,
		"\"event\":\"connection-pinned\",\"vm\":%u,\"sport\":%u,\"path\":%u", k.vm_id,
		sport, path);
	snprintf(msg, ml, "connection %s:%u -> %s:%u %s path %u", src, sport, dst, dport,
		 path ? "pinned to" : "released from", path);
	return 0;
}

static int do_backend_set(struct ctl *c, struct json_object *req, char *msg, size_t ml,
			  struct vsn_error *err)
{
	const char *state_s;
	struct ctl_backend *b;
	uint32_t id;
	uint8_t state;
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
	b->admin_state = state != VSN_BE_UP;
	b->admin = state;
	ctl_log(c, CTL_WHY_OPERATOR, "\"event\":\"backend-set\",\"backend\":%u,\"state\":\"%s\"",
		id, state_s);
	snprintf(msg, ml, "backend %u is %s%s", id, state_s,
		 state == VSN_BE_UP && b->drained ? " (but failed: stays drained until healthy)"
						  : "");
	return 0;
}

static int do_apply(struct ctl *c, struct json_object *req, char *msg, size_t ml,
		    struct vsn_error *err)
{
	struct vsn_config *cfg;
	const char *file = get_str(req, "file", err);
	char esc[2 * sizeof(err->msg)];
	int ret;

	if (!file)
		return -EINVAL;
	cfg = config_read(file, err);
	if (!cfg)
		return -EINVAL;
	ret = 0;
	if (strcmp(cfg->ctl.socket, c->cfg->ctl.socket)) {
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
	} else if (!strcmp(cmd, "apply")) {
		ret = do_apply(c, req, msg, sizeof(msg), &err);
	} else {
		vsn_error_set(&err, 0,
			      "unknown cmd '%s' (status, health, route-set, route-del, route-conn, "
			      "backend-set, apply)",
			      cmd);
		ret = -EINVAL;
	}
	if (!resp)
		resp = json_object_new_object();
	json_object_object_add(resp, "ok", json_object_new_boolean(!ret));
	if (ret) {
		c->api_errors++;
		json_object_object_add(resp, "error", json_object_new_string(err.msg));
	} else if (msg[0]) {
		json_object_object_add(resp, "message", json_object_new_string(msg));
	}
	return resp;
}

/* Read one request line, answer, close.  Short and bounded, so a stuck
 * client cannot hold the loop for long. */
void ctl_api_accept(struct ctl *c)
{
	struct json_object *req, *resp;
	struct ucred cred;
	socklen_t cl = sizeof(cred);
	char *buf = NULL, *nl = NULL;
	size_t len = 0;
	const char *out;
	int fd;

	fd = accept4(c->api_fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return;
	c->api_requests++;
	buf = malloc(API_MAX_REQUEST + 1);
	if (!buf)
		goto out;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) || cred.uid != 0) {
		/* The socket is 0600 root; this is the second lock. */
		static const char deny[] = "{\"ok\":false,\"error\":\"permission denied: the vsn "
					   "API is for root only\"}\n";

		c->api_errors++;
		send(fd, deny, sizeof(deny) - 1, MSG_NOSIGNAL);
		goto out;
	}
	while (!nl && len < API_MAX_REQUEST) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		ssize_t n;

		if (poll(&p, 1, API_READ_MS) <= 0)
			break;
		n = recv(fd, buf + len, API_MAX_REQUEST - len, 0);
		if (n <= 0)
			break;
		len += (size_t)n;
		buf[len] = '\0';
		nl = memchr(buf, '\n', len);
	}
	if (nl)
		*nl = '\0';
	else
		buf[len] = '\0';
	req = nl ? json_tokener_parse(buf) : NULL;
	resp = handle(c, req);
	if (!nl) {
		json_object_object_add(resp, "error",
				       json_object_new_string(len >= API_MAX_REQUEST
								  ? "request too large"
								  : "incomplete request (one JSON "
								    "object and a newline)"));
	}
	out = json_object_to_json_string_ext(resp, JSON_C_TO_STRING_PLAIN);
	send(fd, out, strlen(out), MSG_NOSIGNAL);
	send(fd, "\n", 1, MSG_NOSIGNAL);
	json_object_put(req);
	json_object_put(resp);
out:
	free(buf);
	close(fd);
}
