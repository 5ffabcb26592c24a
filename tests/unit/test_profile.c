// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* The workload profiler from synthetic events: mix, sizes, sequentiality,
 * queue depth, latency percentiles, classification, event line parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/types.h>
#include <cmocka.h>

#include "lib/profile.h"

/* Where each connection's last command ended: stands in for the
 * datapath, which marks sequential commands (VSN_EVF_SEQ) itself. */
static __u64 conn_end[16];

static void cmd(struct prof *p, __u64 ts, __u32 conn, __u8 opc, __u64 slba, __u32 nlb)
{
	__u64 *end = &conn_end[conn % 16];
	struct vsn_event e = {.ts_ns = ts,
			      .type = VSN_EV_CMD,
			      .conn_id = conn,
			      .vm_id = 1,
			      .backend_id = 1,
			      .path_id = 1,
			      .opcode = opc,
			      .slba = slba,
			      .nlb = nlb};

	if (*end && *end == slba)
		e.flags |= VSN_EVF_SEQ;
	*end = slba + nlb;
	assert_int_equal(prof_add(p, &e), 0);
}

/* A profiler, and the stand-in datapath's connections forgotten. */
static struct prof *fresh(void)
{
	memset(conn_end, 0, sizeof(conn_end));
	return prof_new(4096);
}

static void resp(struct prof *p, __u64 ts, __u32 conn, __u64 lat)
{
	struct vsn_event e = {.ts_ns = ts,
			      .type = VSN_EV_RESP,
			      .conn_id = conn,
			      .vm_id = 1,
			      .backend_id = 1,
			      .path_id = 1,
			      .latency_ns = lat};

	assert_int_equal(prof_add(p, &e), 0);
}

/* The profile as JSON text, for assertions on its fields. */
static char *render(struct prof *p)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	prof_print(p, 0, UINT64_MAX, true, f);
	fclose(f);
	return buf;
}

static void test_random_read_heavy_small(void **state)
{
	struct prof *p = fresh();
	char *out;

	(void)state;
	for (int i = 0; i < 100; i++) {
		cmd(p, 1000 + i * 10, 7, i % 10 ? 0x02 : 0x01, (i * 7919) % 100000, 1);
		resp(p, 1005 + i * 10, 7, 100000 + i * 1000);
	}
	out = render(p);
	assert_non_null(strstr(out, "\"read_pct\":90.00"));
	assert_non_null(strstr(out, "\"seq_pct\":0.00"));
	assert_non_null(strstr(out, "\"io_blocks\":{\"1\":100}"));
	assert_non_null(strstr(out, "\"class\":\"read-heavy/random/small\""));
	/* 100 latencies 100..199 us: the median is 149 or 150 us. */
	assert_true(strstr(out, "\"p50\":149000") || strstr(out, "\"p50\":150000"));
	free(out);
	prof_free(p);
}

static void test_sequential_write_large(void **state)
{
	struct prof *p = fresh();
	char *out;

	(void)state;
	for (int i = 0; i < 16; i++)
		cmd(p, 1000 + i, 3, 0x01, (__u64)i * 32, 32);
	out = render(p);
	/* The first command has no predecessor: 15 of 16 sequential. */
	assert_non_null(strstr(out, "\"seq_pct\":93.75"));
	assert_non_null(strstr(out, "\"class\":\"write-heavy/sequential/large\""));
	/* No responses: all 16 outstanding at the end. */
	assert_non_null(strstr(out, "\"qd_max\":16"));
	free(out);
	prof_free(p);
}

static void test_mixed_and_per_connection_sequence(void **state)
{
	struct prof *p = fresh();
	char *out;

	(void)state;
	/* Two connections, each sequential in itself, interleaved: a
	 * command follows its own queue's previous one, not the other's. */
	for (int i = 0; i < 10; i++) {
		cmd(p, 100 + 2 * i, 1, i < 5 ? 0x02 : 0x01, 1000 + i * 2, 2);
		cmd(p, 101 + 2 * i, 2, i < 5 ? 0x02 : 0x01, 50000 + i * 2, 2);
	}
	out = render(p);
	assert_non_null(strstr(out, "\"read_pct\":50.00"));
	assert_non_null(strstr(out, "\"seq_pct\":90.00"));
	assert_non_null(strstr(out, "\"class\":\"mixed/sequential/small\""));
	free(out);
	prof_free(p);
}

static void test_parse_line(void **state)
{
	struct vsn_event e;
	const char *line =
	    "{\"ts_ns\":123,\"type\":\"cmd\",\"conn_id\":9,\"vm\":2,\"volume\":3,\"backend\":4,"
	    "\"path\":5,\"qid\":1,\"cid\":77,\"opcode\":2,\"dir\":0,\"status\":0,\"nsid\":1,"
	    "\"nlb\":8,\"slba\":4096,\"latency_ns\":0}";

	(void)state;
	assert_int_equal(prof_parse_line(line, &e), 0);
	assert_int_equal(e.type, VSN_EV_CMD);
	assert_int_equal(e.ts_ns, 123);
	assert_int_equal(e.conn_id, 9);
	assert_int_equal(e.vm_id, 2);
	assert_int_equal(e.cid, 77);
	assert_int_equal(e.nlb, 8);
	assert_int_equal(e.slba, 4096);
	assert_int_equal(e.flags, 0); /* no "seq": not sequential */
	{
		char seq_line[512];

		snprintf(seq_line, sizeof(seq_line), "%.*s,\"seq\":1}", (int)strlen(line) - 1,
			 line);
		assert_int_equal(prof_parse_line(seq_line, &e), 0);
		assert_int_equal(e.flags, VSN_EVF_SEQ);
	}
	assert_int_not_equal(prof_parse_line("{\"type\":\"cmd\"}", &e), 0);
	assert_int_not_equal(prof_parse_line("not json", &e), 0);
}

/* One command in 4 reported: rates count all four, shares stay the
 * sample's. */
static void test_sampling_scales_rates(void **state)
{
	struct prof *p = fresh();
	char *out;

	(void)state;
	prof_set_sampling(p, 4);
	/* 11 reads over 1 s of event time: 10 intervals. */
	for (int i = 0; i <= 10; i++)
		cmd(p, 1000000000ull + i * 100000000ull, 5, 0x02, (__u64)i * 1000, 8);
	out = render(p);
	assert_non_null(strstr(out, "\"sample_every\":4"));
	assert_non_null(strstr(out, "\"commands\":11"));
	assert_non_null(strstr(out, "\"iops\":44.0"));
	assert_non_null(strstr(out, "\"read_pct\":100.00"));
	free(out);
	prof_free(p);
}

static void test_expire(void **state)
{
	struct prof *p = fresh();
	char *out;

	(void)state;
	cmd(p, 1000, 1, 0x02, 0, 1);
	cmd(p, 5000, 1, 0x01, 10, 1);
	prof_expire(p, 6000, 2000);
	out = render(p);
	assert_non_null(strstr(out, "\"reads\":0,\"writes\":1"));
	free(out);
	prof_free(p);
}

/* The JSON object of the row with this id in one section ("backends",
 * "paths", ...) of rendered output, copied into buf. */
static void row_of(const char *out, const char *section, unsigned id, char *buf, size_t len)
{
	char key[64], idk[32];
	const char *sec, *row, *end;

	snprintf(key, sizeof(key), "\"%s\":[", section);
	sec = strstr(out, key);
	assert_non_null(sec);
	snprintf(idk, sizeof(idk), "{\"id\":%u,", id);
	row = strstr(sec, idk);
	assert_non_null(row);
	end = strstr(row, "\"class\"");
	assert_non_null(end);
	assert_true((size_t)(end - row) < len);
	memcpy(buf, row, end - row);
	buf[end - row] = '\0';
}

/* Backends and paths carry the I/O of the commands sent to them, not only
 * the latency of their responses. */
static void test_backend_and_path_rows(void **state)
{
	struct prof *p = fresh();
	char *out, row[1024];

	(void)state;
	/* 1 s of event time: 30 reads on backend 2 over path 5 (conn 1), 10
	 * writes on backend 3 over path 6 (conn 2), each answered. */
	for (int i = 0; i < 40; i++) {
		bool rd = i % 4 != 3;
		struct vsn_event c = {.ts_ns = 1000000000ull + i * 25000000ull,
				      .type = VSN_EV_CMD,
				      .conn_id = rd ? 1 : 2,
				      .vm_id = 1,
				      .backend_id = rd ? 2 : 3,
				      .path_id = rd ? 5 : 6,
				      .opcode = rd ? 0x02 : 0x01,
				      .slba = (__u64)i * 977,
				      .nlb = 8};
		struct vsn_event r = c;

		assert_int_equal(prof_add(p, &c), 0);
		r.type = VSN_EV_RESP;
		r.ts_ns += 100000;
		r.latency_ns = 100000;
		assert_int_equal(prof_add(p, &r), 0);
	}
	out = render(p);
	row_of(out, "backends", 2, row, sizeof(row));
	assert_non_null(strstr(row, "\"commands\":30,"));
	assert_non_null(strstr(row, "\"reads\":30,\"writes\":0"));
	assert_non_null(strstr(row, "\"latency_ns\":{\"count\":30,"));
	assert_null(strstr(row, "\"iops\":0.0,"));
	row_of(out, "backends", 3, row, sizeof(row));
	assert_non_null(strstr(row, "\"commands\":10,"));
	row_of(out, "paths", 5, row, sizeof(row));
	assert_non_null(strstr(row, "\"commands\":30,"));
	assert_non_null(strstr(row, "\"read_pct\":100.00"));
	row_of(out, "paths", 6, row, sizeof(row));
	assert_non_null(strstr(row, "\"commands\":10,"));
	assert_non_null(strstr(row, "\"read_pct\":0.00"));
	/* Rows of the same I/O agree: the VM's commands are the sum. */
	row_of(out, "vms", 1, row, sizeof(row));
	assert_non_null(strstr(row, "\"commands\":40,"));
	assert_null(strstr(out, "\"class\":\"idle\""));
	free(out);
	prof_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_random_read_heavy_small),
	    cmocka_unit_test(test_sequential_write_large),
	    cmocka_unit_test(test_mixed_and_per_connection_sequence),
	    cmocka_unit_test(test_sampling_scales_rates),
	    cmocka_unit_test(test_parse_line),
	    cmocka_unit_test(test_expire),
	    cmocka_unit_test(test_backend_and_path_rows),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
