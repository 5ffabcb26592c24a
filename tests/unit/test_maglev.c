// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* Maglev table properties the datapath relies on: full, balanced by
 * weight, and minimally disrupted by adding or removing a backend. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "lib/maglev.h"

#define M 1021

static unsigned count_of(const uint32_t *t, uint32_t id)
{
	unsigned n = 0;

	for (unsigned i = 0; i < M; i++)
		n += t[i] == id;
	return n;
}

static void test_full_and_balanced(void **state)
{
	uint32_t ids[4] = {11, 22, 33, 44}, w[4] = {1, 1, 1, 1}, t[M];

	assert_int_equal(maglev_build(ids, w, 4, t, M), 0);
	for (unsigned i = 0; i < M; i++)
		assert_true(t[i] == 11 || t[i] == 22 || t[i] == 33 || t[i] == 44);
	for (unsigned i = 0; i < 4; i++) {
		unsigned n = count_of(t, ids[i]);

		/* Maglev's round-robin fill: shares differ by at most one slot. */
		assert_true(n >= M / 4 && n <= M / 4 + 1);
	}
}

static void test_weights(void **state)
{
	uint32_t ids[2] = {1, 2}, w[2] = {300, 100}, t[M];
	unsigned a, b;

	assert_int_equal(maglev_build(ids, w, 2, t, M), 0);
	a = count_of(t, 1);
	b = count_of(t, 2);
	assert_int_equal(a + b, M);
	assert_true(a >= 3 * b - 4 && a <= 3 * b + 4);
}

static void test_remove_moves_only_its_slots(void **state)
{
	uint32_t ids[5] = {1, 2, 3, 4, 5}, w[5] = {1, 1, 1, 1, 1};
	uint32_t before[M], after[M];
	unsigned moved = 0;

	assert_int_equal(maglev_build(ids, w, 5, before, M), 0);
	/* Backend 3 goes away. */
	ids[2] = 5;
	assert_int_equal(maglev_build(ids, w, 4, after, M), 0);
	for (unsigned i = 0; i < M; i++) {
		if (before[i] == 3)
			continue;
		moved += before[i] != after[i];
	}
	/* Slots of surviving backends stay put, but for a small Maglev churn. */
	assert_true(moved <= M / 20);
}

static void test_add_moves_about_one_nth(void **state)
{
	uint32_t ids[5] = {1, 2, 3, 4, 5}, w[5] = {1, 1, 1, 1, 1};
	uint32_t before[M], after[M];
	unsigned moved = 0;

	assert_int_equal(maglev_build(ids, w, 4, before, M), 0);
	assert_int_equal(maglev_build(ids, w, 5, after, M), 0);
	for (unsigned i = 0; i < M; i++)
		moved += before[i] != after[i];
	/* Ideal is M/5 = 204; allow Maglev's small extra disruption. */
	assert_true(moved >= M / 5 - 5 && moved <= M / 5 + M / 20);
}

static void test_stable_and_order_independent(void **state)
{
	uint32_t a_ids[3] = {7, 8, 9}, b_ids[3] = {9, 7, 8}, w[3] = {1, 1, 1};
	uint32_t a[M], b[M];

	assert_int_equal(maglev_build(a_ids, w, 3, a, M), 0);
	assert_int_equal(maglev_build(b_ids, w, 3, b, M), 0);
	/* The table depends on the set of backends, not the order listed. */
	assert_memory_equal(a, b, sizeof(a));
}

static void test_empty_and_errors(void **state)
{
	uint32_t ids[1] = {1}, w0[1] = {0}, w1[1] = {1}, t[M];

	assert_int_equal(maglev_build(ids, w1, 0, t, M), 0);
	assert_int_equal(count_of(t, 0), M);
	assert_int_equal(maglev_build(ids, w0, 1, t, M), -EINVAL);
	assert_int_equal(maglev_build(ids, w1, 1, t, 2), -EINVAL);
	assert_int_equal(maglev_build(ids, w1, 1, t, M), 0);
	assert_int_equal(count_of(t, 1), M);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_full_and_balanced),
	    cmocka_unit_test(test_weights),
	    cmocka_unit_test(test_remove_moves_only_its_slots),
	    cmocka_unit_test(test_add_moves_about_one_nth),
	    cmocka_unit_test(test_stable_and_order_independent),
	    cmocka_unit_test(test_empty_and_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
