/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The controller's decisions as pure functions of plain numbers, so that
 * scoring, hysteresis, flap damping and the move budget are unit-tested
 * from synthetic inputs (tests/unit/test_policy.c) and the daemon only
 * gathers measurements and applies what these return.
 */
#ifndef VSN_POLICY_H
#define VSN_POLICY_H

#include <stdbool.h>
#include <stdint.h>

#include "config/config.h"

enum vsn_health {
	VSN_H_HEALTHY = 0,
	VSN_H_DEGRADED = 1, /* usable, scored worse */
	VSN_H_FAILED = 2,   /* never chosen; its connections are moved */
};

/* What the workload profile says a connection cares about. */
enum pol_class {
	POL_CLASS_MIXED = 0,
	POL_CLASS_LATENCY = 1, /* small random I/O: the lowest latency wins */
	POL_CLASS_BULK = 2,    /* large sequential: the most spare bandwidth wins */
};

/* One candidate path as measured this tick. */
struct pol_path {
	uint32_t id;
	enum vsn_health health;
	double util;	  /* uplink utilisation, 0..1 (0 when capacity unknown) */
	double lat_ratio; /* command latency over this path's baseline; 0 = unknown */
	double err_rate;  /* share of commands that failed, 0..1 */
	double ce_rate;	  /* share of packets with ECN CE / RoCE CNP, 0..1 */
};

/*
 * A workload's class from what its commands looked like over a window:
 * mostly sequential (each command starting where the previous one of its
 * connection ended) is bulk; small and random is latency-sensitive; too
 * few commands or anything else is mixed.  Thresholds: profile.h.
 */
enum pol_class pol_classify(uint64_t cmds, uint64_t bytes, uint64_t seq_cmds);
const char *pol_class_name(enum pol_class cls);

/* Lower is better; a failed path scores +infinity. */
double pol_score(const struct vsn_cfg_controller *p, const struct pol_path *path,
		 enum pol_class cls);

/* Is the path congested (utilisation, latency inflation or CE over threshold)? */
bool pol_congested(const struct vsn_cfg_controller *p, const struct pol_path *path);

/*
 * Where a connection on paths[cur] should go: an index into paths, or -1
 * to stay.  A failed current path forces a move (no dwell, no margin);
 * otherwise the connection must have dwelt dwell_ms since its last move
 * and the best path must beat the current score by margin_pct.
 */
int pol_choose(const struct vsn_cfg_controller *p, const struct pol_path *paths, unsigned n,
	       int cur, enum pol_class cls, uint64_t last_move_ns, uint64_t now_ns, bool *forced);

/*
 * Flap damping of one path or backend.  A failure takes effect at once; a
 * recovery only after hold_down_ms, and after flap_window_ms when it
 * changed state more than flap_max times within the window.
 */
#define POL_FLAP_HISTORY 32

struct pol_damper {
	enum vsn_health state;		    /* the effective state */
	enum vsn_health observed;	    /* the last raw observation */
	uint64_t failed_ns;		    /* when it last failed */
	uint64_t held_until_ns;		    /* no recovery before this */
	uint64_t changes[POL_FLAP_HISTORY]; /* times of raw state changes, ring */
	unsigned n_changes;
	uint64_t transitions; /* effective state changes, ever */
};

/* Feed one observation; returns the effective state. */
enum vsn_health pol_damp(const struct vsn_cfg_controller *p, struct pol_damper *d,
			 enum vsn_health observed, uint64_t now_ns);
/* An observation turned out wrong (a stall that was the backend's, not the
 * path's): back to healthy at once, the failure not counted as a flap. */
void pol_damp_forgive(struct pol_damper *d);
/* Raw state changes within the flap window ending at now_ns. */
unsigned pol_flaps(const struct vsn_cfg_controller *p, const struct pol_damper *d, uint64_t now_ns);

/* Discretionary moves left this tick; forced moves do not spend it. */
struct pol_budget {
	unsigned left;
};

void pol_budget_reset(const struct vsn_cfg_controller *p, struct pol_budget *b);
bool pol_budget_take(struct pol_budget *b, bool forced);

/* Defaults of the controller section, as config_load() fills them. */
void pol_defaults(struct vsn_cfg_controller *p);

const char *pol_health_name(enum vsn_health h);

#endif /* VSN_POLICY_H */
