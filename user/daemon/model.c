// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The daemon's model of uplinks, paths and backends, built from the config
 * and carried across reloads by id; the config applied with the
 * controller's own state laid over it; measurements taken each tick.
 */
#include <errno.h>
#include <math.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>

#include "lib/bw.h"
#include "daemon/daemon.h"
#include "config/plan.h"
#include "lib/rtnl.h"

struct ctl_path *ctl_path(struct ctl *c, uint32_t id)
{
	for (unsigned i = 0; i < c->n_paths; i++)
		if (c->paths[i].id == id)
			return &c->paths[i];
	return NULL;
}

struct ctl_backend *ctl_backend(struct ctl *c, uint32_t id)
{
	for (unsigned i = 0; i < c->n_backends; i++)
		if (c->backends[i].id == id)
			return &c->backends[i];
	return NULL;
}

struct ctl_uplink *ctl_uplink_by_ifindex(struct ctl *c, unsigned ifindex)
{
	for (unsigned i = 0; i < c->n_uplinks; i++)
		if (c->uplinks[i].ifindex == ifindex)
			return &c->uplinks[i];
	return NULL;
}

void ctl_model_free(struct ctl *c)
{
	free(c->uplinks);
	free(c->paths);
	free(c->backends);
	c->uplinks = NULL;
	c->paths = NULL;
	c->backends = NULL;
	c->n_uplinks = c->n_paths = c->n_backends = 0;
}

/*
 * New arrays for c->cfg; the state of a path or backend whose id survives
 * a reload (damping history, drains, counters) is carried over.
 */
int ctl_model_build(struct ctl *c, struct vsn_error *err)
{
	const struct vsn_config *cfg = c->cfg;
	struct ctl_uplink *ups = calloc(cfg->n_uplinks + 1, sizeof(*ups));
	struct ctl_path *paths = calloc(cfg->n_paths + 1, sizeof(*paths));
	struct ctl_backend *bes = calloc(cfg->n_backends + 1, sizeof(*bes));
	unsigned i, j;
	int ret = 0;

	if (!ups || !paths || !bes) {
		vsn_error_set(err, 0, "out of memory");
		ret = -ENOMEM;
		goto out;
	}
	for (i = 0; i < cfg->n_uplinks; i++) {
		struct ctl_uplink *u = &ups[i];
		const struct ctl_uplink *old;

		u->cfg = &cfg->uplinks[i];
		u->ifindex = if_nametoindex(u->cfg->interface);
		if (!u->ifindex) {
			vsn_error_set(err, 0,
				      "%s: uplinks[%u]: no interface %s in this network namespace "
				      "(run the daemon where vsn attach ran)",
				      cfg->file, i, u->cfg->interface);
			ret = -ENODEV;
			goto out;
		}
		old = ctl_uplink_by_ifindex(c, u->ifindex);
		if (old) {
			u->tx_bytes = old->tx_bytes;
			u->q_overlimits = old->q_overlimits;
			u->q_drops = old->q_drops;
		}
		u->carrier = true;
		if (c->rtnl && rtnl_link_carrier(c->rtnl, u->ifindex, &u->carrier))
			u->carrier = true; /* unknown: events will tell */
	}
	for (i = 0; i < cfg->n_paths; i++) {
		struct ctl_path *p = &paths[i];
		const struct ctl_path *old = ctl_path(c, cfg->paths[i].id);

		if (old)
			*p = *old;
		else
			memset(p, 0, sizeof(*p));
		p->id = cfg->paths[i].id;
		p->cfg = &cfg->paths[i];
		p->uplink = -1;
		for (j = 0; j < cfg->n_uplinks; j++)
			if (!strcmp(cfg->uplinks[j].interface, p->cfg->uplink))
				p->uplink = (int)j;
		p->carrier_down = p->uplink >= 0 && !ups[p->uplink].carrier;
	}
	for (i = 0; i < cfg->n_backends; i++) {
		struct ctl_backend *b = &bes[i];
		const struct ctl_backend *old = ctl_backend(c, cfg->backends[i].id);

		if (old)
			*b = *old;
		else
			memset(b, 0, sizeof(*b));
		b->id = cfg->backends[i].id;
		b->cfg = &cfg->backends[i];
	}
	ctl_model_free(c);
	c->uplinks = ups;
	c->n_uplinks = cfg->n_uplinks;
	c->paths = paths;
	c->n_paths = cfg->n_paths;
	c->backends = bes;
	c->n_backends = cfg->n_backends;
	ups = NULL;
	paths = NULL;
	bes = NULL;
out:
	free(ups);
	free(paths);
	free(bes);
	return ret;
}

static bool backend_has_path(const struct vsn_cfg_backend *b, uint32_t path)
{
	for (unsigned i = 0; i < b->n_paths; i++)
		if (b->paths[i] == path)
			return true;
	return false;
}

/* The healthiest of a backend's paths, or 0. */
uint32_t ctl_best_path(struct ctl *c, const struct vsn_cfg_backend *b)
{
	double best = INFINITY;
	uint32_t id = 0;

	for (unsigned i = 0; i < b->n_paths; i++) {
		struct ctl_path *p = ctl_path(c, b->paths[i]);
		struct pol_path in;
		double s;

		if (!p)
			continue;
		ctl_fill_pol(c, p, &in);
		s = pol_score(&c->cfg->ctl, &in, POL_CLASS_MIXED);
		if (s < best) {
			best = s;
			id = p->id;
		}
	}
	return id;
}

/*
 * A route of the plan keeps the controller's state: an operator's pin
 * first; then the path the maps use now, if the backend may use it and it
 * has not failed (a restarted daemon adopts its predecessor's choices);
 * then the config's path unless it failed; then the best healthy one.
 */
static void overlay_route(struct ctl *c, const struct vsn_config *cfg, struct plan_route *r)
{
	const struct vsn_cfg_backend *cb = NULL;
	struct vsn_route cur;
	struct ctl_path *p;
	uint32_t id;

	if (!bpf_map_lookup_elem(c->m.routes, &r->k, &cur) && (cur.flags & VSN_ROUTE_PINNED)) {
		r->v = cur;
		return;
	}
	for (unsigned i = 0; i < cfg->n_backends; i++)
		if (cfg->backends[i].id == r->k.backend_id)
			cb = &cfg->backends[i];
	if (!cb)
		return;
	if (!bpf_map_lookup_elem(c->m.routes, &r->k, &cur) && backend_has_path(cb, cur.path_id)) {
		p = ctl_path(c, cur.path_id);
		if (p && p->damp.state != VSN_H_FAILED) {
			r->v.path_id = cur.path_id;
			return;
		}
	}
	p = ctl_path(c, r->v.path_id);
	if (p && p->damp.state != VSN_H_FAILED)
		return;
	id = ctl_best_path(c, cb);
	if (id)
		r->v.path_id = id;
}

/*
 * Per-VM rates as HTB classes on every uplink (bw.h); the datapath puts
 * each VM's packets in its class.  Failing here leaves the maps applied
 * and says so: bandwidth shares are not worth refusing a route over.
 */
static void apply_bandwidth(struct ctl *c)
{
	const struct vsn_config *cfg = c->cfg;
	struct bw_class *cls = calloc(cfg->n_vms + 1, sizeof(*cls));
	char msg[256], esc[512];
	unsigned i, n = 0;

	if (!cls)
		return;
	for (i = 0; i < cfg->n_vms; i++)
		if (cfg->vms[i].min_rate_bps || cfg->vms[i].max_rate_bps)
			cls[n++] = (struct bw_class){cfg->vms[i].id, cfg->vms[i].min_rate_bps,
						     cfg->vms[i].max_rate_bps};
	for (i = 0; i < c->n_uplinks; i++) {
		const struct ctl_uplink *u = &c->uplinks[i];
		int ret = n ? bw_setup(u->ifindex, u->cfg->capacity_bps, cls, n, msg, sizeof(msg))
			  : c->bw_active ? bw_teardown(u->ifindex, msg, sizeof(msg))
					 : 0;

		if (ret)
			ctl_log(c, CTL_WHY_RELOAD,
				"\"event\":\"bandwidth-failed\",\"uplink\":\"%s\",\"error\":\"%s\"",
				u->cfg->interface, ctl_esc(esc, sizeof(esc), msg));
	}
	c->bw_active = n > 0;
	free(cls);
}

int ctl_apply_config(struct ctl *c, struct vsn_config *cfg, struct vsn_error *err)
{
	struct vsn_config *old_cfg = c->cfg;
	struct vsn_plan plan = {};
	struct plan_host host;
	unsigned i;
	int ret;

	plan_host_system(&host, c->m.ifaces);
	ret = plan_build(cfg, &host, &plan, err);
	if (ret)
		return ret;
	ret = plan_check_room(&plan, &c->m, err);
	if (ret)
		goto out;
	/* The model first (the overlay reads it), restored on failure. */
	c->cfg = cfg;
	ret = ctl_model_build(c, err);
	if (ret) {
		c->cfg = old_cfg;
		goto out;
	}
	for (i = 0; i < plan.n_backends; i++) {
		struct ctl_backend *b = ctl_backend(c, plan.backends[i].id);

		if (!b)
			continue;
		if (b->admin_state)
			plan.backends[i].v.state = b->admin;
		else if (b->drained)
			plan.backends[i].v.state = VSN_BE_DOWN;
	}
	for (i = 0; i < plan.n_routes; i++)
		overlay_route(c, cfg, &plan.routes[i]);
	for (i = 0; i < plan.n_volumes; i++) {
		struct vsn_volume cur;

		/* The controller's tier choice outlives a reload. */
		if (!bpf_map_lookup_elem(c->m.volumes, &plan.volumes[i].k, &cur) &&
		    cur.volume_id == plan.volumes[i].v.volume_id)
			plan.volumes[i].v.tier_pref = cur.tier_pref;
	}
	ret = plan_apply(&plan, &c->m, err);
	if (ret) {
		/* The maps are as before (plan_apply writes nothing it cannot
		 * finish); so is the model. */
		c->cfg = old_cfg;
		ctl_model_build(c, &(struct vsn_error){.msg = ""});
		goto out;
	}
	apply_bandwidth(c);
out:
	plan_free(&plan);
	return ret;
}

/* Sum of a per-CPU counter; 0 when unreadable. */
static uint64_t counter_bytes(int fd, uint32_t id)
{
	struct vsn_counter sum = {0, 0};

	if (fd < 0 || percpu_counter(fd, &id, &sum))
		return 0;
	return sum.bytes;
}

void ctl_event(struct ctl *c, const struct vsn_event *e)
{
	struct ctl_path *p;
	struct ctl_backend *b;

	c->ring_events++;
	if (c->fleet)
		ctl_fleet_event(c, e);
	if (e->type == VSN_EV_CONN_OPEN || e->type == VSN_EV_CONN_CLOSE) {
		struct ctl_move_slot *s = ctl_move_slot(c, e->conn_id);

		s->closed = e->type == VSN_EV_CONN_CLOSE;
		s->backend = e->backend_id;
		s->vm = e->vm_id;
		s->vm_known = true;
		return;
	}
	if (e->type == VSN_EV_CMD && e->nlb && c->vols) {
		struct ctl_volume *v = &c->vols[e->volume_id % VSN_MAX_VOLUMES];

		/* Bytes at 512 per block: the LBA size is the namespace's and
		 * vsn does not know it; sequentiality does not depend on it. */
		v->cmds++;
		v->bytes += (uint64_t)e->nlb * 512;
		v->seq += !!(e->flags & VSN_EVF_SEQ);
		return;
	}
	if (e->type != VSN_EV_RESP)
		return;
	p = ctl_path(c, e->path_id);
	b = ctl_backend(c, e->backend_id);
	if (p) {
		p->cmds++;
		if (e->status)
			p->errs++;
		if (e->latency_ns) {
			p->lat_sum_ns += e->latency_ns;
			p->lat_n++;
		}
	}
	if (b) {
		b->resp++;
		/* Status field: DNR and More bits aside, non-zero SC/SCT is an error. */
		if (e->status & 0x7ff)
			b->errs++;
		if (e->latency_ns)
			b->lat_ms = b->lat_ms ? 0.9 * b->lat_ms + 0.1 * (e->latency_ns / 1e6)
					      : e->latency_ns / 1e6;
	}
}

/*
 * Congestion marks on a path's RoCEv2 traffic this tick: CNPs and ECN CE
 * over all its RoCE packets (vsn_roce_path).  TCP flows show congestion as
 * queueing latency and qdisc throttling instead.
 */
static void roce_marks(struct ctl *c, struct ctl_path *p)
{
	uint64_t pkts = 0, marks = 0;

	p->ce_rate = 0;
	if (c->m.roce_path < 0)
		return;
	for (uint32_t cl = 0; cl < VSN_ROCE_CLASSES; cl++) {
		uint32_t idx = p->id * VSN_ROCE_CLASSES + cl;
		struct vsn_counter s;

		if (percpu_counter(c->m.roce_path, &idx, &s))
			return;
		if (cl == VSN_ROCE_CNP || cl == VSN_ROCE_CE)
			marks += s.packets;
		if (cl != VSN_ROCE_CE && cl != VSN_ROCE_CE_OUT)
			pkts += s.packets; /* CE counts packets already counted */
	}
	if (pkts > p->roce_pkts && marks >= p->roce_marks)
		p->ce_rate = (double)(marks - p->roce_marks) / (double)(pkts - p->roce_pkts);
	p->roce_pkts = pkts;
	p->roce_marks = marks;
}

void ctl_measure(struct ctl *c, uint64_t now, double dt)
{
	unsigned i;

	for (i = 0; i < c->n_uplinks; i++) {
		struct ctl_uplink *u = &c->uplinks[i];
		uint64_t ol = 0, dr = 0;

		u->rate_bps = 0;
		u->q_throttled = false;
		if (c->rtnl && !rtnl_qdisc_stats(c->rtnl, u->ifindex, &ol, &dr)) {
			/* A shaper holding packets back or dropping them:
			 * this uplink is carrying all it can. */
			u->q_throttled = (ol > u->q_overlimits || dr > u->q_drops) &&
					 u->q_overlimits + u->q_drops > 0;
			u->q_overlimits = ol;
			u->q_drops = dr;
		}
	}
	for (i = 0; i < c->n_paths; i++) {
		struct ctl_path *p = &c->paths[i];
		uint64_t bytes = counter_bytes(c->m.path_stats, p->id);

		p->rate_bps = bytes >= p->bytes && dt > 0 ? (bytes - p->bytes) * 8.0 / dt : 0;
		p->bytes = bytes;
		if (p->uplink >= 0)
			c->uplinks[p->uplink].rate_bps += p->rate_bps;
		if (p->lat_n) {
			p->lat_ms = p->lat_sum_ns / 1e6 / (double)p->lat_n;
			/* The baseline follows improvements at once and
			 * degradations slowly, so inflation shows. */
			if (!p->lat_base_ms || p->lat_ms < p->lat_base_ms)
				p->lat_base_ms = p->lat_ms;
			else
				p->lat_base_ms = 0.995 * p->lat_base_ms + 0.005 * p->lat_ms;
		} else {
			p->lat_ms = 0;
		}
		p->err_rate = p->cmds >= 20 ? (double)p->errs / (double)p->cmds : 0;
		roce_marks(c, p);
		p->lat_sum_ns = p->lat_n = p->cmds = p->errs = 0;
	}
	for (i = 0; i < c->n_uplinks; i++) {
		struct ctl_uplink *u = &c->uplinks[i];

		u->util = u->cfg->capacity_bps ? u->rate_bps / (double)u->cfg->capacity_bps : 0;
		if (u->q_throttled && u->util < 1.0)
			u->util = 1.0;
	}
	(void)now;
}

void ctl_fill_pol(const struct ctl *c, const struct ctl_path *p, struct pol_path *out)
{
	memset(out, 0, sizeof(*out));
	out->id = p->id;
	out->health = p->avoid ? VSN_H_FAILED : p->damp.state;
	if (p->uplink >= 0)
		out->util = c->uplinks[p->uplink].util;
	out->lat_ratio = p->lat_ms && p->lat_base_ms ? p->lat_ms / p->lat_base_ms : 0;
	out->err_rate = p->err_rate;
	out->ce_rate = p->ce_rate;
}
