// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * What a decision does to the maps: move routes and connections to a
 * better path, reset the connections of a failed backend, drain and
 * undrain it.  Observe-only mode logs what would have been done.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <bpf/bpf.h>

#include "daemon/daemon.h"
#include "config/ops.h"
#include "config/plan.h"
#include "lib/rst_inject.h"

/* The connection's last move, by id (a hashed slot: a collision only
 * forgets a dwell time). */
struct ctl_move_slot *ctl_move_slot(struct ctl *c, uint32_t conn_id)
{
	struct ctl_move_slot *s = &c->moves[(conn_id * 2654435761u) % CTL_MOVE_SLOTS];

	if (s->conn_id != conn_id)
		*s = (struct ctl_move_slot){.conn_id = conn_id};
	return s;
}

/* Where a connection (or route) of backend cb now on path cur should go. */
uint32_t ctl_choose_path(struct ctl *c, const struct vsn_cfg_backend *cb, uint32_t cur,
			 enum pol_class cls, uint64_t last_move, uint64_t now, bool *forced)
{
	struct pol_path in[VSN_MAX_BE_PATHS];
	unsigned n = 0;
	int icur = -1, to;

	*forced = false;
	for (unsigned i = 0; i < cb->n_paths && n < VSN_MAX_BE_PATHS; i++) {
		struct ctl_path *p = ctl_path(c, cb->paths[i]);

		if (!p)
			continue;
		if (p->id == cur)
			icur = (int)n;
		ctl_fill_pol(c, p, &in[n++]);
	}
	to = pol_choose(&c->cfg->ctl, in, n, icur, cls, last_move, now, forced);
	return to < 0 ? 0 : in[to].id;
}

const struct vsn_cfg_backend *ctl_cfg_backend(const struct ctl *c, uint32_t id)
{
	for (unsigned i = 0; i < c->cfg->n_backends; i++)
		if (c->cfg->backends[i].id == id)
			return &c->cfg->backends[i];
	return NULL;
}

/* A connection that carried a packet this recently is counted as live (the
 * LRU table keeps closed ones until it needs the room). */
#define LIVE_NS (10000 * NS_PER_MS)

bool ctl_conn_live(const struct vsn_conn *v, uint64_t now, uint64_t within)
{
	return v->last_seen_ns + within >= now;
}

/* The path a connection entry uses now: its override, else its route. */
uint32_t ctl_conn_path(const struct ctl *c, const struct vsn_conn *v)
{
	struct vsn_route_key rk = {v->vm_id, v->volume_id, v->backend_id};
	struct vsn_route r;

	if (v->path_override)
		return v->path_override;
	return bpf_map_lookup_elem(c->m.routes, &rk, &r) ? 0 : r.path_id;
}

/*
 * Move everything off a failed path: routes first (new connections and
 * those following the route), then connections pinned to it by an
 * earlier move.  Failures bypass dwell time and the move budget.
 */
static int route_key_cmp(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(struct vsn_route_key));
}

/*
 * Move every route on the failed path to its best other path; *moved gets
 * the keys moved (sorted), so that the connections following them can be
 * counted whatever packet they sent since.
 */
static unsigned reroute_routes(struct ctl *c, struct ctl_path *p, uint32_t vm, uint64_t now,
			       enum ctl_why why, struct vsn_route_key **moved, unsigned *stuck)
{
	struct vsn_route_key rk, rnext, *keys = NULL;
	struct vsn_error err = {.msg = ""};
	unsigned n = 0, cap = 0;
	bool first = true, forced;
	struct vsn_route r;

	while (!bpf_map_get_next_key(c->m.routes, first ? NULL : &rk, &rnext)) {
		const struct vsn_cfg_backend *cb;
		uint32_t to;

		first = false;
		rk = rnext;
		if (bpf_map_lookup_elem(c->m.routes, &rk, &r) || r.path_id != p->id ||
		    (vm != CTL_ALL_VMS && rk.vm_id != vm))
			continue;
		cb = ctl_cfg_backend(c, rk.backend_id);
		to = cb ? ctl_choose_path(c, cb, p->id, ctl_volume_class(c, rk.volume_id), 0, now,
					  &forced)
			: 0;
		/* A pin never holds traffic on a dead path, but it is not
		 * forgotten: the operator's path comes back with its health. */
		if (to && (r.flags & VSN_ROUTE_PINNED)) {
			if (!r.pin_path)
				r.pin_path = p->id;
			ctl_log(c, why,
				"\"event\":\"route-pin-displaced\",\"vm\":%u,\"volume\":%u,"
				"\"backend\":%u,\"path\":%u,\"now_on\":%u,\"restored_to\":%u,"
				"\"when\":\"path %u is healthy again\"",
				rk.vm_id, rk.volume_id, rk.backend_id, p->id, to, r.pin_path,
				r.pin_path);
		}
		r.path_id = to;
		if (!to || ops_route_write(&c->m, &rk, &r, &err)) {
			(*stuck)++;
			continue;
		}
		if (n == cap) {
			struct vsn_route_key *nk =
			    realloc(keys, (cap ? cap * 2 : 16) * sizeof(*nk));

			if (!nk)
				continue; /* moved, only not counted */
			keys = nk;
			cap = cap ? cap * 2 : 16;
		}
		keys[n++] = rk;
	}
	if (n)
		qsort(keys, n, sizeof(*keys), route_key_cmp);
	*moved = keys;
	return n;
}

/*
 * Move everything off a failed path: routes first (new connections and
 * those following the route), then connections pinned to it by an
 * earlier move.  Failures bypass dwell time and the move budget.
 */
/* Everything of VM vm (CTL_ALL_VMS: of every VM) off path p. */
static void reroute(struct ctl *c, struct ctl_path *p, uint32_t vm, uint64_t now, enum ctl_why why)
{
	struct vsn_route_key *moved = NULL;
	struct vsn_conn_key ck, cnext;
	struct vsn_error err = {.msg = ""};
	unsigned routes, conns = 0, stuck = 0;
	bool first = true, forced;
	struct vsn_conn v;

	if (c->cfg->ctl.observe_only) {
		ctl_log(c, why,
			"\"event\":\"observe-only\",\"path\":%u,\"would\":\"move its "
			"connections\"",
			p->id);
		return;
	}
	p->avoid = vm != CTL_ALL_VMS;
	routes = reroute_routes(c, p, vm, now, why, &moved, &stuck);
	while (!bpf_map_get_next_key(c->m.conns, first ? NULL : &ck, &cnext)) {
		struct vsn_route_key rk;
		const struct vsn_cfg_backend *cb;
		uint32_t to;

		first = false;
		ck = cnext;
		if (ck.dir != VSN_DIR_TO_STORAGE || bpf_map_lookup_elem(c->m.conns, &ck, &v) ||
		    (vm != CTL_ALL_VMS && v.vm_id != vm))
			continue;
		if (v.path_override != p->id) {
			/* Following a route that just moved: counted as moved. */
			rk = (struct vsn_route_key){v.vm_id, v.volume_id, v.backend_id};
			if (!v.path_override && ctl_conn_live(&v, now, LIVE_NS) && routes &&
			    bsearch(&rk, moved, routes, sizeof(rk), route_key_cmp))
				conns++;
			continue;
		}
		cb = ctl_cfg_backend(c, v.backend_id);
		to = cb ? ctl_choose_path(c, cb, p->id, ctl_volume_class(c, v.volume_id), 0, now,
					  &forced)
			: 0;
		if (!to || ops_conn_path(&c->m, &ck, to, &err)) {
			stuck++;
			continue;
		}
		ctl_move_slot(c, v.conn_id)->at_ns = now;
		conns += ctl_conn_live(&v, now, LIVE_NS);
	}
	free(moved);
	p->avoid = false;
	if (c->live)
		c->live[p->id].await_ns = 0;
	if (vm == CTL_ALL_VMS) {
		/* Failed: what made it suspect is moot, and so are its SYNs. */
		p->suspect_until_ns = 0;
		if (c->live)
			c->live[p->id].syn_ns = 0;
	}
	p->cmd_cutoff_ns = now;
	c->reroutes[why] += conns;
	if (vm == CTL_ALL_VMS)
		ctl_log(c, why,
			"\"event\":\"failover\",\"path\":%u,\"routes_moved\":%u,"
			"\"connections_moved\":%u,\"left\":%u",
			p->id, routes, conns, stuck);
	else
		ctl_log(c, why,
			"\"event\":\"vm-moved-off-path\",\"path\":%u,\"vm\":%u,\"routes_moved\":%u,"
			"\"connections_moved\":%u,\"left\":%u",
			p->id, vm, routes, conns, stuck);
}

void ctl_reroute_path(struct ctl *c, struct ctl_path *p, uint64_t now, enum ctl_why why)
{
	reroute(c, p, CTL_ALL_VMS, now, why);
}

void ctl_reroute_vm(struct ctl *c, struct ctl_path *p, uint32_t vm, uint64_t now, enum ctl_why why)
{
	reroute(c, p, vm, now, why);
}

/* Another of backend cb's paths than cur: the first healthy one, else the
 * first not failed; 0 when there is none. */
static uint32_t other_path(struct ctl *c, const struct vsn_cfg_backend *cb, uint32_t cur)
{
	uint32_t fallback = 0;

	for (unsigned i = 0; i < cb->n_paths; i++) {
		const struct ctl_path *p = ctl_path(c, cb->paths[i]);

		if (!p || p->id == cur || p->damp.state == VSN_H_FAILED)
			continue;
		if (p->damp.state == VSN_H_HEALTHY)
			return p->id;
		if (!fallback)
			fallback = p->id;
	}
	return fallback;
}

void ctl_repath_backend(struct ctl *c, uint32_t id, uint64_t now)
{
	const struct vsn_cfg_backend *cb = ctl_cfg_backend(c, id);
	struct vsn_error err = {.msg = ""};
	struct vsn_route_key rk, rnext;
	struct vsn_conn_key ck, cnext;
	unsigned routes = 0, conns = 0;
	bool first = true;
	struct vsn_route r;
	struct vsn_conn v;

	if (!cb || cb->n_paths < 2 || c->cfg->ctl.observe_only)
		return;
	while (!bpf_map_get_next_key(c->m.routes, first ? NULL : &rk, &rnext)) {
		uint32_t to;

		first = false;
		rk = rnext;
		if (rk.backend_id != id || bpf_map_lookup_elem(c->m.routes, &rk, &r) ||
		    (r.flags & VSN_ROUTE_PINNED))
			continue;
		/* Its current path is the suspect: any other will do. */
		to = other_path(c, cb, r.path_id);
		if (!to)
			continue;
		r.path_id = to;
		routes += !ops_route_write(&c->m, &rk, &r, &err);
	}
	first = true;
	while (!bpf_map_get_next_key(c->m.conns, first ? NULL : &ck, &cnext)) {
		uint32_t cur, to;

		first = false;
		ck = cnext;
		if (ck.dir != VSN_DIR_TO_STORAGE || bpf_map_lookup_elem(c->m.conns, &ck, &v) ||
		    v.backend_id != id || !v.path_override)
			continue;
		cur = ctl_conn_path(c, &v);
		to = other_path(c, cb, cur);
		if (!to || ops_conn_path(&c->m, &ck, to, &err))
			continue;
		ctl_move_slot(c, v.conn_id)->at_ns = now;
		conns++;
	}
	ctl_log(c, CTL_WHY_CLUSTER,
		"\"event\":\"backend-repathed\",\"backend\":%u,\"routes_moved\":%u,"
		"\"connections_moved\":%u",
		id, routes, conns);
}

void ctl_restore_pins(struct ctl *c, const struct ctl_path *p)
{
	struct vsn_route_key rk, rnext;
	struct vsn_error err = {.msg = ""};
	bool first = true;
	struct vsn_route r;

	if (c->cfg->ctl.observe_only)
		return;
	while (!bpf_map_get_next_key(c->m.routes, first ? NULL : &rk, &rnext)) {
		first = false;
		rk = rnext;
		if (bpf_map_lookup_elem(c->m.routes, &rk, &r) || r.pin_path != p->id)
			continue;
		if (ops_route_set(&c->m, &rk, p->id, VSN_ROUTE_PINNED, &err)) {
			char esc[sizeof(err.msg) * 2];

			ctl_log(c, CTL_WHY_RECOVERED,
				"\"event\":\"route-pin-restore-failed\",\"vm\":%u,\"volume\":%u,"
				"\"backend\":%u,\"path\":%u,\"error\":\"%s\"",
				rk.vm_id, rk.volume_id, rk.backend_id, p->id,
				ctl_esc(esc, sizeof(esc), err.msg));
			continue;
		}
		ctl_log(c, CTL_WHY_RECOVERED,
			"\"event\":\"route-pin-restored\",\"vm\":%u,\"volume\":%u,"
			"\"backend\":%u,\"path\":%u,\"was_on\":%u",
			rk.vm_id, rk.volume_id, rk.backend_id, p->id, r.path_id);
	}
}

/* Send the RST of every live VM-direct TCP connection of the backend now;
 * returns how many went out. */
static unsigned reset_now(struct ctl *c, uint32_t backend_id, uint64_t now)
{
	struct vsn_conn_key k, next, rk;
	struct vsn_conn v, rev;
	bool first = true;
	unsigned sent = 0;
	char err[128];

	while (!bpf_map_get_next_key(c->m.conns, first ? NULL : &k, &next)) {
		first = false;
		k = next;
		if (k.dir != VSN_DIR_TO_STORAGE || k.proto != IPPROTO_TCP ||
		    bpf_map_lookup_elem(c->m.conns, &k, &v) || v.backend_id != backend_id ||
		    (v.flags & VSN_CONN_HOST) || !ctl_conn_live(&v, now, LIVE_NS) ||
		    ctl_move_slot(c, v.conn_id)->closed)
			continue;
		vsn_conn_rev_key(&rk, &v, IPPROTO_TCP);
		if (bpf_map_lookup_elem(c->m.conns, &rk, &rev) ||
		    rst_inject(&v, &rev, err, sizeof(err)))
			continue;
		sent++;
	}
	return sent;
}

/* Would draining backend id leave one of its volumes without a backend up? */
static bool last_backend_up(struct ctl *c, uint32_t id)
{
	const struct vsn_config *cfg = c->cfg;

	for (unsigned i = 0; i < cfg->n_volumes; i++) {
		const struct vsn_cfg_volume *v = &cfg->volumes[i];
		bool uses = false, other = false;

		for (unsigned j = 0; j < v->n_backends; j++) {
			const struct ctl_backend *o = ctl_backend(c, v->backends[j]);

			if (v->backends[j] == id)
				uses = true;
			else if (o && !o->drained && o->damp.state != VSN_H_FAILED &&
				 !(o->admin_state && o->admin != VSN_BE_UP))
				other = true;
		}
		if (uses && !other)
			return true;
	}
	return false;
}

void ctl_drain_backend(struct ctl *c, struct ctl_backend *b, enum ctl_why why)
{
	struct vsn_error err = {.msg = ""};
	char reason[CTL_REASON_MAX * 2];
	unsigned n = 0;

	ctl_esc(reason, sizeof(reason), b->reason);
	if (c->cfg->ctl.observe_only) {
		ctl_log(c, why,
			"\"event\":\"observe-only\",\"backend\":%u,\"would\":\"drain\","
			"\"why\":\"%s\"",
			b->id, reason);
		return;
	}
	if (last_backend_up(c, b->id)) {
		/* Nowhere better to send its initiators: keep the last good
		 * mapping rather than reset them into nothing. */
		ctl_log(c, why,
			"\"event\":\"drain-skipped\",\"backend\":%u,\"why\":\"%s\","
			"\"because\":\"the last backend up of a volume\"",
			b->id, reason);
		return;
	}
	if (ops_backend_state(&c->m, b->id, VSN_BE_DOWN, &err) ||
	    ops_backend_reset(&c->m, b->id, &n, &err)) {
		ctl_log(c, why, "\"event\":\"drain-failed\",\"backend\":%u,\"error\":\"%s\"", b->id,
			ctl_esc(reason, sizeof(reason), err.msg));
		return;
	}
	b->drained = true;
	c->reroutes[why] += n;
	ctl_log(c, why,
		"\"event\":\"drain\",\"backend\":%u,\"connections_reset\":%u,\"rst_sent\":%u,"
		"\"why\":\"%s\"",
		b->id, n, reset_now(c, b->id, ctl_now_ns()), reason);
}

void ctl_undrain_backend(struct ctl *c, struct ctl_backend *b)
{
	struct vsn_error err = {.msg = ""};

	b->drained = false;
	if (b->admin_state || c->cfg->ctl.observe_only)
		return;
	if (ops_backend_state(&c->m, b->id, VSN_BE_UP, &err)) {
		char esc[sizeof(err.msg) * 2];

		ctl_log(c, CTL_WHY_RECOVERED,
			"\"event\":\"undrain-failed\",\"backend\":%u,"
			"\"error\":\"%s\"",
			b->id, ctl_esc(esc, sizeof(esc), err.msg));
	} else {
		ctl_log(c, CTL_WHY_RECOVERED, "\"event\":\"undrain\",\"backend\":%u", b->id);
	}
}
