// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Congestion: an uplink over its threshold sheds its heaviest live
 * connections to better paths, within the move budget, then settles.
 */
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>

#include "daemon/daemon.h"
#include "config/ops.h"

/* Ticks an uplink is left alone after a congestion move: its queue drains
 * before it is judged again. */
#define SETTLE_TICKS 5

struct cand {
	struct vsn_conn_key k;
	uint32_t conn_id, backend, path, volume;
	uint64_t bytes; /* since the last congestion walk (or in all, the first time) */
};

static int cand_cmp(const void *a, const void *b)
{
	const struct cand *x = a, *y = b;

	return x->bytes < y->bytes ? 1 : x->bytes > y->bytes ? -1 : 0;
}

/* Movable by congestion: live, on a congested uplink that is not settling,
 * neither reset nor pinned by an operator (its route or itself). */
static bool congestion_candidate(struct ctl *c, const struct vsn_conn *v, uint64_t now,
				 uint32_t *path)
{
	struct vsn_route_key rk = {v->vm_id, v->volume_id, v->backend_id};
	const struct ctl_uplink *u;
	struct ctl_path *p;
	struct vsn_route r;

	if ((v->flags & VSN_CONN_RESET) || !ctl_conn_live(v, now, 1000 * NS_PER_MS) ||
	    ctl_move_slot(c, v->conn_id)->closed)
		return false;
	if (!v->path_override && !bpf_map_lookup_elem(c->m.routes, &rk, &r) &&
	    (r.flags & VSN_ROUTE_PINNED))
		return false;
	*path = ctl_conn_path(c, v);
	p = ctl_path(c, *path);
	if (!p || p->uplink < 0)
		return false;
	u = &c->uplinks[p->uplink];
	return u->congested && now >= u->settle_until_ns;
}

/*
 * An uplink over its threshold: move its heaviest connections (most bytes
 * since the last look) to better paths: at most half of a path's
 * connections per tick and within the move budget.  After a move the
 * uplink settles for a few ticks (its queue drains) before more go.
 */
static void congestion_moves(struct ctl *c, uint64_t now)
{
	struct vsn_conn_key k, next;
	struct vsn_error err = {.msg = ""};
	struct cand *cs = NULL;
	unsigned n = 0, cap = 0, *on_path = NULL, *moved_from = NULL;
	bool first = true;
	struct vsn_conn v;

	on_path = calloc(VSN_MAX_PATHS, sizeof(*on_path));
	moved_from = calloc(VSN_MAX_PATHS, sizeof(*moved_from));
	if (!on_path || !moved_from)
		goto out;
	while (!bpf_map_get_next_key(c->m.conns, first ? NULL : &k, &next)) {
		struct ctl_move_slot *s;
		uint32_t path;

		first = false;
		k = next;
		if (k.dir != VSN_DIR_TO_STORAGE || bpf_map_lookup_elem(c->m.conns, &k, &v) ||
		    !congestion_candidate(c, &v, now, &path))
			continue;
		s = ctl_move_slot(c, v.conn_id);
		if (n == cap) {
			struct cand *nc = realloc(cs, (cap ? cap * 2 : 64) * sizeof(*cs));

			if (!nc)
				break;
			cs = nc;
			cap = cap ? cap * 2 : 64;
		}
		cs[n++] = (struct cand){
		    k,	  v.conn_id,   v.backend_id,
		    path, v.volume_id, v.bytes >= s->bytes ? v.bytes - s->bytes : v.bytes};
		s->bytes = v.bytes;
		on_path[path % VSN_MAX_PATHS]++;
		if (s->operator)
			n--; /* counted on its path, never moved */
	}
	if (n)
		qsort(cs, n, sizeof(*cs), cand_cmp);
	for (unsigned i = 0; i < n; i++) {
		const struct vsn_cfg_backend *cb = ctl_cfg_backend(c, cs[i].backend);
		struct ctl_move_slot *s = ctl_move_slot(c, cs[i].conn_id);
		unsigned pi = cs[i].path % VSN_MAX_PATHS;
		struct ctl_path *from = ctl_path(c, cs[i].path);
		bool forced;
		uint32_t to;

		if (!cb || moved_from[pi] * 2 >= (on_path[pi] > 1 ? on_path[pi] : 2))
			continue;
		to = ctl_choose_path(c, cb, cs[i].path, ctl_volume_class(c, cs[i].volume), s->at_ns,
				     now, &forced);
		if (!to || !pol_budget_take(&c->budget, forced))
			continue;
		/* Many hosts moving off one link at once must not all land on
		 * the same one: each draws on its share of the cluster's budget. */
		if (!forced && !ctl_fleet_move_grant(c, now))
			break;
		if (c->cfg->ctl.observe_only) {
			s->at_ns = now; /* as if moved: said once per dwell time */
			ctl_log(c, CTL_WHY_CONGESTION,
				"\"event\":\"observe-only\",\"connection\":%u,\"from\":%u,"
				"\"would_move_to\":%u",
				cs[i].conn_id, cs[i].path, to);
			continue;
		}
		if (ops_conn_path(&c->m, &cs[i].k, to, &err))
			continue;
		s->at_ns = now;
		moved_from[pi]++;
		c->reroutes[CTL_WHY_CONGESTION]++;
		if (from && from->uplink >= 0)
			c->uplinks[from->uplink].settle_until_ns =
			    now + (uint64_t)SETTLE_TICKS * c->cfg->ctl.tick_ms * NS_PER_MS;
		ctl_log(c, CTL_WHY_CONGESTION,
			"\"event\":\"move\",\"connection\":%u,\"from\":%u,\"to\":%u,\"bytes\":%llu",
			cs[i].conn_id, cs[i].path, to, (unsigned long long)cs[i].bytes);
	}
out:
	free(cs);
	free(on_path);
	free(moved_from);
}

void ctl_congestion(struct ctl *c, uint64_t now)
{
	const struct vsn_cfg_controller *pol = &c->cfg->ctl;
	bool any = false;

	for (unsigned i = 0; i < c->n_uplinks; i++) {
		struct ctl_uplink *u = &c->uplinks[i];
		bool was = u->congested;

		u->congested = false;
		for (unsigned j = 0; j < c->n_paths; j++) {
			struct pol_path in;

			if (c->paths[j].uplink != (int)i)
				continue;
			ctl_fill_pol(c, &c->paths[j], &in);
			u->congested |= pol_congested(pol, &in);
		}
		if (u->congested != was)
			ctl_log(c, CTL_WHY_CONGESTION,
				"\"event\":\"uplink-%s\",\"uplink\":\"%s\",\"utilisation\":%.2f,"
				"\"qdisc_throttled\":%s",
				u->congested ? "congested" : "clear", u->cfg->interface, u->util,
				u->q_throttled ? "true" : "false");
		any |= u->congested;
	}
	if (any)
		congestion_moves(c, now);
}
