// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The silent-cut watch: a path with requests outstanding and nothing coming
 * back (the datapath's liveness stamps), or NVMe commands outstanding past
 * their limit (the command table), fails; a stall that follows a backend
 * from path to path fails the backend instead.
 */
#include <stdio.h>
#include <string.h>
#include <bpf/bpf.h>

#include "daemon/daemon.h"

#define CMD_SCAN_NS (100 * NS_PER_MS)

#define CMD_RECENT_NS (30000 * NS_PER_MS)

#define VM_NONE (VSN_AWAIT_MANY - 1)

/* How long a command may wait on path p: silent_ms, or four times the
 * path's usual latency when its device is slower than that. */
static uint64_t cmd_limit(const struct ctl *c, const struct ctl_path *p)
{
	uint64_t lim = c->cfg->ctl.silent_ms * NS_PER_MS, lat = (uint64_t)(4e6 * p->lat_base_ms);

	return lat > lim ? lat : lim;
}

/*
 * Does any VM but vm (the host counts as VM 0) have a route on path p?
 */
static bool path_shared(struct ctl *c, const struct ctl_path *p, uint32_t vm)
{
	struct vsn_route_key rk, next;
	bool first = true;
	struct vsn_route r;

	while (!bpf_map_get_next_key(c->m.routes, first ? NULL : &rk, &next)) {
		first = false;
		rk = next;
		if (rk.vm_id != vm && !bpf_map_lookup_elem(c->m.routes, &rk, &r) &&
		    r.path_id == p->id)
			return true;
	}
	return false;
}

/* How long one VM's silence keeps a path suspect. */
#define SUSPECT_NS (30000 * NS_PER_MS)

/*
 * Only VM vm's requests wait on path p, and other VMs use it too: one
 * tenant's connections are not evidence against a path others share (its
 * target may ignore it, or it may be sending what no target answers).  Its
 * own traffic moves off the path, and the path stays up for the others but
 * suspect: a second VM's silence on it, or SYNs nobody answers, fail it
 * (ctl_watch).  Returns false when the path is to fail instead.
 */
static bool one_vm_alone(struct ctl *c, struct ctl_path *p, uint32_t vm, uint64_t since,
			 uint64_t now)
{
	if (vm == VSN_AWAIT_MANY || !path_shared(c, p, vm))
		return false;
	if (p->suspect_until_ns > now && p->suspect_vm != vm) {
		ctl_log(c, CTL_WHY_SILENT,
			"\"event\":\"path-silent-second-vm\",\"path\":%u,\"vm\":%u,"
			"\"after_vm\":%u,\"action\":\"failing the path\"",
			p->id, vm, p->suspect_vm);
		return false;
	}
	ctl_log(c, CTL_WHY_TENANT,
		"\"event\":\"path-silent-for-one-vm\",\"path\":%u,\"vm\":%u,"
		"\"waiting_ms\":%llu,\"action\":\"moving only vm %u's traffic; the path stays "
		"up for the VMs that share it, suspect for %llu s\"",
		p->id, vm, (unsigned long long)((now - since) / NS_PER_MS), vm,
		(unsigned long long)(SUSPECT_NS / NS_PER_MS / 1000));
	ctl_reroute_vm(c, p, vm, now, CTL_WHY_TENANT);
	p->suspect_until_ns = now + SUSPECT_NS;
	p->suspect_vm = vm;
	return true;
}

/* A suspect path on which SYNs went unanswered for the silence limit: the
 * new connections of another VM confirm what one VM's silence suggested. */
static bool suspect_syns(struct ctl *c, struct ctl_path *p, uint64_t limit, uint64_t now)
{
	uint64_t syn = c->live[p->id].syn_ns;

	/* SYNs sent since it turned suspect only. */
	if (p->suspect_until_ns <= now || !syn || syn > now || now - syn < limit ||
	    syn + SUSPECT_NS < p->suspect_until_ns)
		return false;
	p->silent = true;
	p->silent_since_ns = syn;
	snprintf(p->reason, sizeof(p->reason), "SYNs unanswered for %llu ms after vm %u's silence",
		 (unsigned long long)((now - syn) / NS_PER_MS), p->suspect_vm);
	ctl_path_observe(c, p, now, CTL_WHY_SILENT);
	return true;
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
	uint32_t vm[VSN_MAX_PATHS]; /* whose commands wait: one VM, or many */
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
		vm[p->id] = VM_NONE;
		any = true;
	}
	if (!any)
		return;
	for (i = 0; i < VSN_MAX_CMDS; i++) {
		const struct vsn_cmd_slot *s = &c->cmds[i];
		uint32_t pid = s->cmd.path_id, conn = s->key.conn_id, s_vm;
		uint64_t ts = s->cmd.ts_ns;
		const struct ctl_move_slot *ms;

		if (!conn || pid >= VSN_MAX_PATHS || !limit[pid] || ts > now || ts < cutoff[pid] ||
		    now - ts < limit[pid] || now - ts > CMD_RECENT_NS)
			continue;
		ms = ctl_move_slot(c, conn);
		if (ms->closed)
			continue;
		if (!oldest[pid] || ts < oldest[pid])
			oldest[pid] = ts;
		/* A connection whose VM is not known counts as another VM. */
		s_vm = ms->vm_known ? ms->vm : VSN_AWAIT_MANY;
		if (vm[pid] == VM_NONE)
			vm[pid] = s_vm;
		else if (vm[pid] != s_vm)
			vm[pid] = VSN_AWAIT_MANY;
	}
	for (i = 0; i < c->n_paths; i++) {
		struct ctl_path *p = &c->paths[i];

		if (!oldest[p->id] || one_vm_alone(c, p, vm[p->id], oldest[p->id], now))
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
		ctl_restore_pins(c, q);
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

		if (p->suspect_until_ns && now >= p->suspect_until_ns &&
		    p->damp.state != VSN_H_FAILED) {
			/* Nobody else found it silent: what one VM's silence
			 * moved off it may come back. */
			p->suspect_until_ns = 0;
			ctl_log(c, CTL_WHY_RECOVERED,
				"\"event\":\"path-suspicion-over\",\"path\":%u,\"vm\":%u", p->id,
				p->suspect_vm);
			ctl_restore_pins(c, p);
		}
		if (p->damp.state == VSN_H_FAILED || suspect_syns(c, p, limit, now))
			continue;
		/* Requests outstanding for silent_ms; or for half of it when
		 * nothing at all came back for silent_ms (a late ACK of older
		 * data cleared the stamp, and the sender now waits). */
		if (!since || since > now ||
		    !(now - since >= limit ||
		      (now - since >= limit / 2 && rx < now && now - rx >= limit)))
			continue;
		/* The backend first: a stall that follows one VM's connections
		 * from path to path is their backend's, shared or not. */
		if (blame_backend(c, p, be, now) ||
		    one_vm_alone(c, p, c->live[p->id].await_vm, since, now)) {
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
