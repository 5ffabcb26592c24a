// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * What the controller decides each tick, in order: measure, poll, classify
 * workloads, judge every path and backend, flag congested uplinks, move
 * connections off them.  The decisions themselves: judge.c (health),
 * stall.c (silent cuts, between ticks), congestion.c, workload.c; what
 * they do to the maps: moves.c; every change is logged (log.c).
 */
#include "daemon/daemon.h"

void ctl_tick(struct ctl *c, uint64_t now)
{
	const struct vsn_cfg_controller *pol = &c->cfg->ctl;
	double dt = c->last_tick_ns ? (now - c->last_tick_ns) / 1e9 : pol->tick_ms / 1e3;
	unsigned i;

	c->ticks++;
	c->last_tick_ns = now;
	/* What the datapath and the qdiscs saw since the last tick. */
	ctl_measure(c, now, dt);
	pol_budget_reset(pol, &c->budget);
	/* TCP probes, judged at once; admin-queue polls follow the paths. */
	ctl_probe_tick(c, now);
	ctl_judge_pending(c, now);
	ctl_health_follow_paths(c);
	ctl_classify_volumes(c, now);
	/* Every path and backend judged again: dampers move on with time. */
	for (i = 0; i < c->n_paths; i++)
		ctl_path_observe(c, &c->paths[i], now, CTL_WHY_BACKEND);
	for (i = 0; i < c->n_backends; i++) {
		struct ctl_backend *b = &c->backends[i];

		ctl_backend_observe(c, b, now, CTL_WHY_BACKEND);
		/* In-band error rates over windows of about a second. */
		if (now - b->window_start_ns > 1000 * NS_PER_MS) {
			b->resp = b->errs = 0;
			b->window_start_ns = now;
		}
	}
	ctl_congestion(c, now);
	/* What this host saw, to the other hosts; what they saw, acted on. */
	ctl_fleet_tick(c, now);
}
