// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The silent-cut watch: a path with requests outstanding and nothing coming
 * back (the datapath's liveness stamps), or NVMe commands outstanding past
 * their limit (the command table), fails; a stall that follows a backend
 * from path to path fails the backend instead.
 */
#include <stdio.h>
#include <string.h>

#include "daemon/daemon.h"

#define CMD_SCAN_NS (100 * NS_PER_MS)

#define CMD_RECENT_NS (30000 * NS_PER_MS)

/* How long a command may wait on path p: silent_ms, or four times the
 * path's usual latency when its device is slower than that. */
static uint64_t cmd_limit(const struct ctl *c, const struct ctl_path *p)
{
	uint64_t lim = c->cfg->ctl.silent_ms * NS_PER_MS, lat = (uint64_t)(4e6 * p->lat_base_ms);

	return lat > lim ? lat : lim;
}

/*
 * The other sign of a silent cut: NVMe commands outstanding past their
 * limit on a path from which nothing at all came back for as long (the
 * target may have acknowledged the command's TCP segment before the cut,
 * which clears the TCP-level stamp).  The command table is scanned only
 * while some recently used path is that quiet, at most every 100 ms.
 */
static void cmd_stalls(struct ctl *c, uint64_t now)
{
	uint64_t limit[VSN_MAX_PATHS] = {0}, oldest[VSN_MAX_PATHS] = {0};
	uint64_t cutoff[VSN_MAX_PATHS] = {0};
	bool any = false;
	unsigned i;

	if (!c->cmds || !c->live || now - c->last_cmd_scan_ns < CMD_SCAN_NS)
		return;
	c->last_cmd_scan_ns = now;
	for (i = 0; i < c->n_paths; i++) {
		const struct ctl_path *p = &c->paths[i];
		const struct vsn_path_live *l = &c->live[p->id];
		uint64_t lim = cmd_limit(c, p);

		if (p->damp.state == VSN_H_FAILED || !l->rx_ns || l->rx_ns > now ||
		    now - l->rx_ns < lim || now - l->tx_ns > CMD_RECENT_NS)
			continue;
		limit[p->id] = lim;
		cutoff[p->id] = p->cmd_cutoff_ns;
		any = true;
	}
	if (!any)
		return;
	for (i = 0; i < VSN_MAX_CMDS; i++) {
		const struct vsn_cmd_slot *s = &c->cmds[i];
		uint32_t pid = s->cmd.path_id, conn = s->key.conn_id;
		uint64_t ts = s->cmd.ts_ns;

		if (!conn || pid >= VSN_MAX_PATHS || !limit[pid] || ts > now || ts < cutoff[pid] ||
		    now - ts < limit[pid] || now - ts > CMD_RECENT_NS ||
		    ctl_move_slot(c, conn)->closed)
			continue;
		if (!oldest[pid] || ts < oldest[pid])
			oldest[pid] = ts;
	}
	for (i = 0; i < c->n_paths; i++) {
		struct ctl_path *p = &c->paths[i];

		if (!oldest[p->id])
			continue;
		p->silent = true;
		snprintf(p->reason, sizeof(p->reason),
			 "NVMe commands outstanding for %llu ms, nothing back for %llu ms",
			 (unsigned long long)((now - oldest[p->id]) / NS_PER_MS),
			 (unsigned long long)((now - c->live[p->id].rx_ns) / NS_PER_MS));
		ctl_path_observe(c, p, now, CTL_WHY_SILENT);
		p->silent = false;
	}
}

/* How soon a stall on a second path must follow the first to be blamed on
 * their common backend. */
#define BACKEND_STALL_NS (3000 * NS_PER_MS)

/*
 * The stall on path p (towards backend be) followed one on another path to
 * the same backend: the backend stopped answering, not the paths.  Fail
 * the backend (drain, reset its connections) and forgive the first path.
 */
static bool blame_backend(struct ctl *c, struct ctl_path *p, uint32_t be, uint64_t now)
{
	struct ctl_backend *b = ctl_backend(c, be);
	struct ctl_path *q;

	if (!b)
		return false;
	if (!b->silent_ns || now - b->silent_ns > BACKEND_STALL_NS || b->silent_path == p->id) {
		b->silent_ns = now;
		b->silent_path = p->id;
		return false;
	}
	snprintf(b->reason, sizeof(b->reason),
		 "no reply on path %u nor, after the move, on path %u", b->silent_path, p->id);
	b->silent = true;
	ctl_backend_observe(c, b, now, CTL_WHY_SILENT);
	q = ctl_path(c, b->silent_path);
	if (q && q->damp.state == VSN_H_FAILED && !q->carrier_down && !q->neigh_failed) {
		pol_damp_forgive(&q->damp);
		q->reason[0] = '\0';
		ctl_log(c, CTL_WHY_RECOVERED,
			"\"event\":\"path-healthy\",\"path\":%u,\"was\":\"failed\","
			"\"why\":\"the stall was backend %u's\"",
			q->id, be);
	}
	b->silent_ns = 0;
	return true;
}

/*
 * A path whose oldest unanswered request is older than silent_ms, while
 * its carrier is up: something inside the fabric stopped passing packets
 * (or the backend did: blame_backend tells them apart).
 */
void ctl_watch(struct ctl *c, uint64_t now)
{
	uint64_t limit = c->cfg->ctl.silent_ms * NS_PER_MS;

	if (!c->live)
		return;
	for (unsigned i = 0; i < c->n_paths; i++) {
		struct ctl_path *p = &c->paths[i];
		uint64_t since = c->live[p->id].await_ns;
		uint32_t be = c->live[p->id].await_be;
		uint64_t rx = c->live[p->id].rx_ns;

		/* Requests outstanding for silent_ms; or for half of it when
		 * nothing at all came back for silent_ms (a late ACK of older
		 * data cleared the stamp, and the sender now waits). */
		if (!since || since > now || p->damp.state == VSN_H_FAILED ||
		    !(now - since >= limit ||
		      (now - since >= limit / 2 && rx < now && now - rx >= limit)))
			continue;
		if (blame_backend(c, p, be, now)) {
			c->live[p->id].await_ns = 0;
			continue;
		}
		p->silent = true;
		p->silent_since_ns = since;
		snprintf(p->reason, sizeof(p->reason),
			 "no reply for %llu ms with requests outstanding",
			 (unsigned long long)((now - since) / NS_PER_MS));
		ctl_path_observe(c, p, now, CTL_WHY_SILENT);
	}
	cmd_stalls(c, now);
}
