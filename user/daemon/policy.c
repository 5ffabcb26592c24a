// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* Path scoring, hysteresis, flap damping and the move budget (policy.h). */
#include <math.h>
#include <string.h>

#include "daemon/policy.h"
#include "lib/profile.h"

#define NS_PER_MS 1000000ull

void pol_defaults(struct vsn_cfg_controller *p)
{
	memset(p, 0, sizeof(*p));
#define POL_DEFAULT(key, lo, hi, dflt) p->key = dflt;
	VSN_CTL_NUMBERS(POL_DEFAULT)
#undef POL_DEFAULT
}

#define POL_CLASS_MIN_CMDS 20

enum pol_class pol_classify(uint64_t cmds, uint64_t bytes, uint64_t seq_cmds)
{
	if (cmds < POL_CLASS_MIN_CMDS)
		return POL_CLASS_MIXED;
	if (seq_cmds * 100.0 >= PROF_SEQ_PCT * (double)cmds)
		return POL_CLASS_BULK;
	if (bytes / cmds <= PROF_SMALL_IO_BYTES)
		return POL_CLASS_LATENCY;
	return POL_CLASS_MIXED;
}

const char *pol_class_name(enum pol_class cls)
{
	switch (cls) {
	case POL_CLASS_LATENCY:
		return "latency";
	case POL_CLASS_BULK:
		return "bulk";
	case POL_CLASS_MIXED:
		break;
	}
	return "mixed";
}

const char *pol_health_name(enum vsn_health h)
{
	switch (h) {
	case VSN_H_HEALTHY:
		return "healthy";
	case VSN_H_DEGRADED:
		return "degraded";
	case VSN_H_FAILED:
		return "failed";
	}
	return "unknown";
}

/*
 * Each term is scaled so that 1.0 means "at its congestion threshold":
 * utilisation over congestion_util_pct, latency inflation over
 * congestion_latency_pct, errors over error_rate_pct.  The workload class
 * doubles the term it cares about and halves the other.
 */
double pol_score(const struct vsn_cfg_controller *p, const struct pol_path *path,
		 enum pol_class cls)
{
	double w_util = p->weight_util, w_lat = p->weight_latency, w_err = p->weight_errors;
	double util, lat = 0, err, score;

	if (path->health == VSN_H_FAILED)
		return INFINITY;
	if (cls == POL_CLASS_LATENCY) {
		w_lat *= 2;
		w_util /= 2;
	} else if (cls == POL_CLASS_BULK) {
		w_util *= 2;
		w_lat /= 2;
	}
	util = path->util / (p->congestion_util_pct / 100.0);
	if (path->lat_ratio > 1.0)
		lat = (path->lat_ratio - 1.0) / (p->congestion_latency_pct / 100.0 - 1.0 + 1e-9);
	err = path->err_rate / (p->error_rate_pct / 100.0) +
	      path->ce_rate / (p->congestion_ce_pct / 100.0);
	score = w_util * util + w_lat * lat + w_err * err;
	if (path->health == VSN_H_DEGRADED)
		score += p->weight_util + p->weight_latency + p->weight_errors;
	return score;
}

bool pol_congested(const struct vsn_cfg_controller *p, const struct pol_path *path)
{
	return path->util * 100.0 >= p->congestion_util_pct ||
	       (path->lat_ratio > 0 && path->lat_ratio * 100.0 >= p->congestion_latency_pct) ||
	       path->ce_rate * 100.0 >= p->congestion_ce_pct;
}

int pol_choose(const struct vsn_cfg_controller *p, const struct pol_path *paths, unsigned n,
	       int cur, enum pol_class cls, uint64_t last_move_ns, uint64_t now_ns, bool *forced)
{
	double best_score = INFINITY, cur_score, min_gap;
	int best = -1;
	unsigned i;

	*forced = false;
	if (cur < 0 || (unsigned)cur >= n)
		return -1;
	for (i = 0; i < n; i++) {
		double s;

		if ((int)i == cur)
			continue;
		s = pol_score(p, &paths[i], cls);
		if (s < best_score) {
			best_score = s;
			best = (int)i;
		}
	}
	if (best < 0 || isinf(best_score))
		return -1; /* nowhere better to go */
	if (paths[cur].health == VSN_H_FAILED) {
		*forced = true;
		return best;
	}
	if (last_move_ns && now_ns - last_move_ns < p->dwell_ms * NS_PER_MS)
		return -1;
	cur_score = pol_score(p, &paths[cur], cls);
	/*
	 * Relative margin, plus an absolute one (a quarter of the weights: at
	 * defaults about 10 points of utilisation) so that noise between
	 * nearly idle paths never moves a flow.
	 */
	min_gap =
	    p->margin_pct / 100.0 * (p->weight_util + p->weight_latency + p->weight_errors) / 4;
	if (best_score < cur_score * (1.0 - p->margin_pct / 100.0) &&
	    cur_score - best_score >= min_gap)
		return best;
	return -1;
}

unsigned pol_flaps(const struct vsn_cfg_controller *p, const struct pol_damper *d, uint64_t now_ns)
{
	uint64_t window = p->flap_window_ms * NS_PER_MS;
	unsigned i, n = 0, have = d->n_changes;

	if (have > POL_FLAP_HISTORY)
		have = POL_FLAP_HISTORY; /* the ring holds the latest only */
	for (i = 0; i < have; i++)
		if (now_ns - d->changes[i] <= window)
			n++;
	return n;
}

enum vsn_health pol_damp(const struct vsn_cfg_controller *p, struct pol_damper *d,
			 enum vsn_health observed, uint64_t now_ns)
{
	enum vsn_health before = d->state;

	if (observed != d->observed) {
		d->changes[d->n_changes % POL_FLAP_HISTORY] = now_ns;
		d->n_changes++;
		d->observed = observed;
	}
	if (observed == VSN_H_FAILED) {
		/* Failures bypass every delay. */
		if (d->state != VSN_H_FAILED)
			d->failed_ns = now_ns;
		d->state = VSN_H_FAILED;
		d->held_until_ns = now_ns + p->hold_down_ms * NS_PER_MS;
		if (pol_flaps(p, d, now_ns) > p->flap_max)
			d->held_until_ns = now_ns + p->flap_window_ms * NS_PER_MS;
	} else if (d->state != VSN_H_FAILED || now_ns >= d->held_until_ns) {
		d->state = observed;
	}
	if (d->state != before)
		d->transitions++;
	return d->state;
}

void pol_damp_forgive(struct pol_damper *d)
{
	if (d->n_changes && d->observed == VSN_H_FAILED)
		d->n_changes--;
	if (d->state != VSN_H_HEALTHY)
		d->transitions++;
	d->state = VSN_H_HEALTHY;
	d->observed = VSN_H_HEALTHY;
	d->held_until_ns = 0;
}

void pol_budget_reset(const struct vsn_cfg_controller *p, struct pol_budget *b)
{
	b->left = p->max_moves;
}

bool pol_budget_take(struct pol_budget *b, bool forced)
{
	if (forced)
		return true;
	if (!b->left)
		return false;
	b->left--;
	return true;
}
