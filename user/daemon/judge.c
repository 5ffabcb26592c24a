// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Health states from observations: a path (carrier, silence, neighbour,
 * errors) or a backend (polls, SMART, ANA, in-band errors) is judged
 * through its damper, every change logged, and a failure acted on (moves.c).
 */
#include <stdio.h>
#include <string.h>

#include "daemon/daemon.h"

/*
 * One observation of a path or backend (kind) through its damper; a change
 * of the effective state is logged with its reason (cleared on recovery).
 * Returns the effective state.
 */
static enum vsn_health judge(struct ctl *c, const char *kind, uint32_t id, struct pol_damper *d,
			     enum vsn_health obs, char *reason, enum ctl_why why, uint64_t now)
{
	enum vsn_health before = d->state, after = pol_damp(&c->cfg->ctl, d, obs, now);
	char esc[CTL_REASON_MAX * 2];

	if (after == before)
		return after;
	if (after != VSN_H_FAILED && obs == VSN_H_HEALTHY)
		reason[0] = '\0';
	ctl_log(c, after == VSN_H_HEALTHY ? CTL_WHY_RECOVERED : why,
		"\"event\":\"%s-%s\",\"%s\":%u,\"was\":\"%s\",\"why\":\"%s\"", kind,
		pol_health_name(after), kind, id, pol_health_name(before),
		ctl_esc(esc, sizeof(esc), reason));
	return after;
}

void ctl_path_observe(struct ctl *c, struct ctl_path *p, uint64_t now, enum ctl_why why)
{
	const struct vsn_cfg_controller *pol = &c->cfg->ctl;
	enum vsn_health obs = VSN_H_HEALTHY, before = p->damp.state, after;
	bool silent = p->silent;

	p->silent = false; /* one observation: recovery is the damper's hold-down */
	if (p->carrier_down) {
		obs = VSN_H_FAILED;
		snprintf(p->reason, sizeof(p->reason), "uplink %s has no carrier",
			 p->uplink >= 0 ? c->uplinks[p->uplink].cfg->interface : "?");
	} else if (silent) {
		obs = VSN_H_FAILED; /* reason written with the flag */
	} else if (p->neigh_failed) {
		obs = VSN_H_FAILED;
		snprintf(p->reason, sizeof(p->reason), "next hop unreachable");
	} else if (p->err_rate * 100 >= pol->error_rate_pct) {
		obs = VSN_H_DEGRADED;
		snprintf(p->reason, sizeof(p->reason), "%.1f%% of commands failed",
			 p->err_rate * 100);
	}
	p->observed = obs;
	after = judge(c, "path", p->id, &p->damp, obs, p->reason, why, now);
	if (after == before)
		return;
	if (after == VSN_H_FAILED)
		ctl_reroute_path(c, p, now, why);
	else if (before == VSN_H_FAILED)
		ctl_restore_pins(c, p);
}

/* ANA states (NVMe base spec, ANA log): 3 inaccessible, 4 persistent loss. */
#define ANA_NONOPTIMIZED 2

#define ANA_INACCESSIBLE 3

#define ANA_PERSIST_LOSS 4

/*
 * Unreachable by its health polls for an interval plus the timeout: two
 * polls in a row, the second possibly through another path.
 */
static bool unreachable_counts(struct ctl *c, const struct ctl_backend *b, uint64_t now)
{
	const struct vsn_cfg_controller *pol = &c->cfg->ctl;
	uint64_t grace = (uint64_t)(pol->health_interval_ms + pol->health_timeout_ms) * NS_PER_MS;

	/* One failed poll is not enough: a busy host can miss a timeout;
	 * the failure counts once it lasted a whole interval. */
	return b->polled && !b->reachable && now - b->unreach_since_ns >= grace;
}

void ctl_backend_observe(struct ctl *c, struct ctl_backend *b, uint64_t now, enum ctl_why why)
{
	const struct vsn_cfg_controller *pol = &c->cfg->ctl;
	enum vsn_health obs = VSN_H_HEALTHY, before = b->damp.state, after;
	bool silent = b->silent;

	b->silent = false; /* one observation */
	b->pending = false;
	if (silent) {
		obs = VSN_H_FAILED; /* reason written with the flag */
	} else if (unreachable_counts(c, b, now)) {
		obs = VSN_H_FAILED;
		snprintf(b->reason, sizeof(b->reason), "%s%s",
			 b->cfg->health == VSN_HEALTH_TCP     ? ""
			 : b->cfg->health == VSN_HEALTH_LOCAL ? "local controller: "
							      : "admin queue: ",
			 b->dev_error);
	} else if (b->polled && b->critical_warning) {
		obs = VSN_H_FAILED;
		snprintf(b->reason, sizeof(b->reason), "SMART critical warning 0x%02x",
			 b->critical_warning);
	} else if (b->polled &&
		   (b->ana_state == ANA_INACCESSIBLE || b->ana_state == ANA_PERSIST_LOSS)) {
		obs = VSN_H_FAILED;
		snprintf(b->reason, sizeof(b->reason), "ANA state %s",
			 b->ana_state == ANA_INACCESSIBLE ? "inaccessible" : "persistent-loss");
	} else if (b->resp >= 20 && b->errs * 100 >= b->resp * pol->error_rate_pct) {
		obs = VSN_H_FAILED;
		snprintf(b->reason, sizeof(b->reason), "%llu of %llu commands failed",
			 (unsigned long long)b->errs, (unsigned long long)b->resp);
	} else if (b->polled && b->ana_state == ANA_NONOPTIMIZED) {
		obs = VSN_H_DEGRADED;
		snprintf(b->reason, sizeof(b->reason), "ANA state non-optimized");
	}
	b->observed = obs;
	/* Failed for what the datapath saw (a stall, errors): a polled backend
	 * comes back only once a poll has been answered since.  The hold-down
	 * alone would hand new connections to a target that may still be dead
	 * while its next poll is not due or not yet counted. */
	if (obs != VSN_H_FAILED && b->damp.state == VSN_H_FAILED && b->polled &&
	    b->ok_ns <= b->damp.failed_ns)
		return;
	after = judge(c, "backend", b->id, &b->damp, obs, b->reason, why, now);
	if (after == before)
		return;
	/* In a cluster, others must agree before its connections are reset. */
	if (after == VSN_H_FAILED && ctl_fleet_may_drain(c, b, now))
		ctl_drain_backend(c, b, why);
	else if (before == VSN_H_FAILED && b->drained)
		ctl_undrain_backend(c, b);
}

void ctl_link_event(struct ctl *c, unsigned ifindex, bool carrier, uint64_t now)
{
	struct ctl_uplink *u = ctl_uplink_by_ifindex(c, ifindex);

	if (!u || u->carrier == carrier)
		return;
	u->carrier = carrier;
	for (unsigned i = 0; i < c->n_paths; i++) {
		struct ctl_path *p = &c->paths[i];

		if (p->uplink < 0 || &c->uplinks[p->uplink] != u)
			continue;
		p->carrier_down = !carrier;
		ctl_path_observe(c, p, now, CTL_WHY_CARRIER);
	}
}

void ctl_neigh_event(struct ctl *c, unsigned ifindex, const struct vsn_addr *a, bool failed,
		     uint64_t now)
{
	for (unsigned i = 0; i < c->n_paths; i++) {
		struct ctl_path *p = &c->paths[i];
		struct vsn_addr gw;

		if (!p->cfg->next_hop_addr || p->uplink < 0 ||
		    c->uplinks[p->uplink].ifindex != ifindex ||
		    parse_addr(p->cfg->next_hop_addr, &gw, NULL) || memcmp(&gw, a, sizeof(gw)) ||
		    p->neigh_failed == failed)
			continue;
		p->neigh_failed = failed;
		ctl_path_observe(c, p, now, CTL_WHY_NEIGH);
	}
}

void ctl_judge_pending(struct ctl *c, uint64_t now)
{
	for (unsigned i = 0; i < c->n_paths; i++) {
		struct ctl_path *p = &c->paths[i];
		enum ctl_why why = p->pending;

		if (!why)
			continue;
		p->pending = 0;
		ctl_path_observe(c, p, now, why);
	}
	for (unsigned i = 0; i < c->n_backends; i++)
		if (c->backends[i].pending)
			ctl_backend_observe(c, &c->backends[i], now, CTL_WHY_BACKEND);
}
