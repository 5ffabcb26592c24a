// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* The controller's decision rules from synthetic measurements: scoring,
 * hysteresis (dwell, margin), flap damping and the per-tick move budget. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "daemon/policy.h"

#define MS 1000000ull

static struct vsn_cfg_controller cfg(void)
{
	struct vsn_cfg_controller p;

	pol_defaults(&p);
	return p;
}

static void test_defaults_match_config(void **state)
{
	struct vsn_cfg_controller p = cfg();

	assert_int_equal(p.tick_ms, 100);
	assert_int_equal(p.silent_ms, 150);
	assert_int_equal(p.max_moves, 8);
	assert_int_equal(p.margin_pct, 20);
}

static void test_score_orders_paths(void **state)
{
	struct vsn_cfg_controller p = cfg();
	struct pol_path idle = {.id = 1, .util = 0.1}, busy = {.id = 2, .util = 0.9};
	struct pol_path slow = {.id = 3, .util = 0.1, .lat_ratio = 4.0};
	struct pol_path failed = {.id = 4, .health = VSN_H_FAILED};
	struct pol_path degraded = {.id = 5, .util = 0.1, .health = VSN_H_DEGRADED};
	struct pol_path errs = {.id = 6, .util = 0.1, .err_rate = 0.10};

	assert_true(pol_score(&p, &idle, POL_CLASS_MIXED) < pol_score(&p, &busy, POL_CLASS_MIXED));
	assert_true(pol_score(&p, &idle, POL_CLASS_MIXED) < pol_score(&p, &slow, POL_CLASS_MIXED));
	assert_true(isinf(pol_score(&p, &failed, POL_CLASS_MIXED)));
	assert_true(pol_score(&p, &idle, POL_CLASS_MIXED) <
		    pol_score(&p, &degraded, POL_CLASS_MIXED));
	assert_true(pol_score(&p, &idle, POL_CLASS_MIXED) < pol_score(&p, &errs, POL_CLASS_MIXED));
}

/* A busy low-latency path against an idle slow one: the class decides. */
static void test_score_is_workload_aware(void **state)
{
	struct vsn_cfg_controller p = cfg();
	struct pol_path fast_busy = {.id = 1, .util = 0.6, .lat_ratio = 1.0};
	struct pol_path slow_idle = {.id = 2, .util = 0.05, .lat_ratio = 2.4};

	assert_true(pol_score(&p, &fast_busy, POL_CLASS_LATENCY) <
		    pol_score(&p, &slow_idle, POL_CLASS_LATENCY));
	assert_true(pol_score(&p, &slow_idle, POL_CLASS_BULK) <
		    pol_score(&p, &fast_busy, POL_CLASS_BULK));
}

static void test_congested_thresholds(void **state)
{
	struct vsn_cfg_controller p = cfg();
	struct pol_path a = {.util = 0.79}, b = {.util = 0.80}, c = {.lat_ratio = 3.0},
			d = {.lat_ratio = 2.9}, e = {.ce_rate = 0.05};

	assert_false(pol_congested(&p, &a));
	assert_true(pol_congested(&p, &b));
	assert_true(pol_congested(&p, &c));
	assert_false(pol_congested(&p, &d));
	assert_true(pol_congested(&p, &e));
}

static void test_choose_forced_on_failure_ignores_dwell(void **state)
{
	struct vsn_cfg_controller p = cfg();
	struct pol_path paths[2] = {{.id = 1, .health = VSN_H_FAILED}, {.id = 2, .util = 0.95}};
	bool forced;

	/* Moved 1 ms ago, target busier than anything: still forced out. */
	assert_int_equal(
	    pol_choose(&p, paths, 2, 0, POL_CLASS_MIXED, 1000 * MS, 1001 * MS, &forced), 1);
	assert_true(forced);
	/* Both failed: nowhere to go. */
	paths[1].health = VSN_H_FAILED;
	assert_int_equal(pol_choose(&p, paths, 2, 0, POL_CLASS_MIXED, 0, 1001 * MS, &forced), -1);
}

static void test_choose_dwell_and_margin(void **state)
{
	struct vsn_cfg_controller p = cfg();
	struct pol_path paths[2] = {{.id = 1, .util = 0.9}, {.id = 2, .util = 0.1}};
	bool forced;

	/* Within dwell_ms of the last move: stay. */
	assert_int_equal(pol_choose(&p, paths, 2, 0, POL_CLASS_MIXED, 10000 * MS,
				    (10000 + p.dwell_ms - 1) * MS, &forced),
			 -1);
	/* After it: move, not forced. */
	assert_int_equal(pol_choose(&p, paths, 2, 0, POL_CLASS_MIXED, 10000 * MS,
				    (10000 + p.dwell_ms) * MS, &forced),
			 1);
	assert_false(forced);
	/* An improvement inside the margin does not move. */
	paths[0].util = 0.50;
	paths[1].util = 0.45;
	assert_int_equal(pol_choose(&p, paths, 2, 0, POL_CLASS_MIXED, 0, 100000 * MS, &forced), -1);
	/* Two idle paths: noise never moves a flow. */
	paths[0].util = 0.02;
	paths[1].util = 0.0;
	assert_int_equal(pol_choose(&p, paths, 2, 0, POL_CLASS_MIXED, 0, 100000 * MS, &forced), -1);
}

static void test_damping_failure_immediate_recovery_held(void **state)
{
	struct vsn_cfg_controller p = cfg();
	struct pol_damper d = {0};
	uint64_t t = 1000 * MS;

	assert_int_equal(pol_damp(&p, &d, VSN_H_HEALTHY, t), VSN_H_HEALTHY);
	assert_int_equal(pol_damp(&p, &d, VSN_H_FAILED, t + MS), VSN_H_FAILED);
	/* Recovered at once in reality: still failed until hold_down_ms. */
	assert_int_equal(pol_damp(&p, &d, VSN_H_HEALTHY, t + 2 * MS), VSN_H_FAILED);
	assert_int_equal(pol_damp(&p, &d, VSN_H_HEALTHY, t + (p.hold_down_ms) * MS), VSN_H_FAILED);
	assert_int_equal(pol_damp(&p, &d, VSN_H_HEALTHY, t + (p.hold_down_ms + 1) * MS),
			 VSN_H_HEALTHY);
	assert_int_equal(d.transitions, 2);
}

static void test_damping_holds_a_flapping_path(void **state)
{
	struct vsn_cfg_controller p = cfg();
	struct pol_damper d = {0};
	uint64_t t = 1000 * MS, step = (p.hold_down_ms + 1) * MS;
	unsigned i;

	/* Fail and recover, each recovery after the hold-down: the first
	 * few recoveries are accepted, then the path is held for the window. */
	for (i = 0; i < 10; i++) {
		pol_damp(&p, &d, VSN_H_FAILED, t);
		t += step;
		pol_damp(&p, &d, VSN_H_HEALTHY, t);
		t += MS;
	}
	assert_int_equal(pol_damp(&p, &d, VSN_H_HEALTHY, t), VSN_H_FAILED);
	assert_true(pol_flaps(&p, &d, t) > p.flap_max);
	/* Quiet for a whole window: back. */
	assert_int_equal(pol_damp(&p, &d, VSN_H_HEALTHY, t + p.flap_window_ms * MS), VSN_H_HEALTHY);
}

static void test_damping_forgive(void **state)
{
	struct vsn_cfg_controller p = cfg();
	struct pol_damper d = {0};

	pol_damp(&p, &d, VSN_H_FAILED, 1000 * MS);
	assert_int_equal(d.state, VSN_H_FAILED);
	pol_damp_forgive(&d);
	assert_int_equal(d.state, VSN_H_HEALTHY);
	assert_int_equal(pol_flaps(&p, &d, 1001 * MS), 0);
	/* Healthy observations keep it healthy: no hold-down left. */
	assert_int_equal(pol_damp(&p, &d, VSN_H_HEALTHY, 1002 * MS), VSN_H_HEALTHY);
}

static void test_classify(void **state)
{
	/* Too few commands: no opinion. */
	assert_int_equal(pol_classify(5, 5 * 4096, 0), POL_CLASS_MIXED);
	/* 4 KiB random reads: latency-sensitive. */
	assert_int_equal(pol_classify(1000, 1000 * 4096, 30), POL_CLASS_LATENCY);
	/* Sequential, whatever the size: bulk. */
	assert_int_equal(pol_classify(1000, 1000 * 131072ull, 900), POL_CLASS_BULK);
	assert_int_equal(pol_classify(1000, 1000 * 4096, 600), POL_CLASS_BULK);
	/* Large and random: neither. */
	assert_int_equal(pol_classify(1000, 1000 * 262144ull, 100), POL_CLASS_MIXED);
	assert_string_equal(pol_class_name(POL_CLASS_BULK), "bulk");
}

static void test_budget(void **state)
{
	struct vsn_cfg_controller p = cfg();
	struct pol_budget b;
	unsigned i, took = 0;

	p.max_moves = 3;
	pol_budget_reset(&p, &b);
	for (i = 0; i < 10; i++)
		took += pol_budget_take(&b, false);
	assert_int_equal(took, 3);
	assert_true(pol_budget_take(&b, true)); /* forced moves always go */
	pol_budget_reset(&p, &b);
	assert_true(pol_budget_take(&b, false));
}

/*
 * A path that flaps every 3 ticks for a minute while 20 connections use
 * two paths: the connections leave the flapping path when it fails, and
 * damping plus dwell keep them from following every recovery.  The total
 * number of moves stays within the bound the configuration implies.
 */
static void test_flapping_path_bounded_moves(void **state)
{
	struct vsn_cfg_controller p = cfg();
	struct pol_damper dmp[2] = {{0}};
	struct pol_path paths[2] = {{.id = 1}, {.id = 2}};
	unsigned cur[20], moves = 0, max_tick_moves = 0, tick, c;
	uint64_t last[20] = {0}, t0 = 1000 * MS;

	p.max_moves = 4;
	for (c = 0; c < 20; c++)
		cur[c] = c % 2;
	for (tick = 0; tick < 600; tick++) {
		uint64_t now = t0 + tick * p.tick_ms * MS;
		enum vsn_health raw = (tick / 3) % 2 ? VSN_H_FAILED : VSN_H_HEALTHY;
		struct pol_budget b;
		unsigned n = 0;

		paths[0].health = pol_damp(&p, &dmp[0], raw, now);
		paths[1].health = pol_damp(&p, &dmp[1], VSN_H_HEALTHY, now);
		/* Utilisation follows the connections a path carries. */
		paths[0].util = paths[1].util = 0;
		for (c = 0; c < 20; c++)
			paths[cur[c]].util += 0.02;
		pol_budget_reset(&p, &b);
		for (c = 0; c < 20; c++) {
			bool forced;
			int to = pol_choose(&p, paths, 2, (int)cur[c], POL_CLASS_MIXED, last[c],
					    now, &forced);

			if (to < 0 || !pol_budget_take(&b, forced))
				continue;
			cur[c] = (unsigned)to;
			last[c] = now;
			moves++;
			n++;
		}
		if (n > max_tick_moves)
			max_tick_moves = n;
	}
	/* Balanced at first, so nothing moves; half the connections leave
	 * path 1 once when it first fails; after that the damper holds it
	 * failed, so nothing moves back. */
	assert_int_equal(moves, 10);
	assert_int_equal(cur[0], 1);
	assert_true(dmp[0].transitions <= 2 * (p.flap_max + 1));
	(void)max_tick_moves;
}

/* Congestion moves are discretionary: never more than max_moves a tick. */
static void test_congestion_moves_limited_per_tick(void **state)
{
	struct vsn_cfg_controller p = cfg();
	struct pol_path paths[2] = {{.id = 1, .util = 0.95}, {.id = 2, .util = 0.05}};
	struct pol_budget b;
	unsigned c, moved = 0;

	p.max_moves = 5;
	pol_budget_reset(&p, &b);
	for (c = 0; c < 50; c++) {
		bool forced;
		int to = pol_choose(&p, paths, 2, 0, POL_CLASS_BULK, 0, 100000 * MS, &forced);

		if (to == 1 && pol_budget_take(&b, forced))
			moved++;
	}
	assert_int_equal(moved, 5);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults_match_config),
	    cmocka_unit_test(test_score_orders_paths),
	    cmocka_unit_test(test_score_is_workload_aware),
	    cmocka_unit_test(test_congested_thresholds),
	    cmocka_unit_test(test_choose_forced_on_failure_ignores_dwell),
	    cmocka_unit_test(test_choose_dwell_and_margin),
	    cmocka_unit_test(test_damping_failure_immediate_recovery_held),
	    cmocka_unit_test(test_damping_holds_a_flapping_path),
	    cmocka_unit_test(test_damping_forgive),
	    cmocka_unit_test(test_classify),
	    cmocka_unit_test(test_budget),
	    cmocka_unit_test(test_flapping_path_bounded_moves),
	    cmocka_unit_test(test_congestion_moves_limited_per_tick),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
