// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* The Prometheus text writer: escaping, names, histograms, families, the
 * atomic file replacement, and (when promtool is installed) that
 * Prometheus' own checker accepts what we write. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "lib/prom.h"

static int setup(void **state)
{
	struct prom_buf *b = malloc(sizeof(*b));

	if (!b)
		return -1;
	prom_init(b);
	*state = b;
	return 0;
}

static int teardown(void **state)
{
	prom_free(*state);
	free(*state);
	return 0;
}

static void test_escaping(void **state)
{
	struct prom_buf *b = *state;
	struct prom_label l[] = {{"vm", "a\\b\"c\nd"}, {"path", "p1"}};

	assert_int_equal(prom_family(b, "vsn_up", PROM_GAUGE, "Help with \\ and\nnewline \"q\""),
			 0);
	assert_int_equal(prom_sample(b, l, 2, 1.5), 0);
	assert_string_equal(b->data, "# HELP vsn_up Help with \\\\ and\\nnewline \"q\"\n"
				     "# TYPE vsn_up gauge\n"
				     "vsn_up{vm=\"a\\\\b\\\"c\\nd\",path=\"p1\"} 1.5\n");
}

static void test_values(void **state)
{
	struct prom_buf *b = *state;

	assert_int_equal(prom_family(b, "vsn_bytes_total", PROM_COUNTER, "Bytes."), 0);
	/* Exact above 2^53, where a double would round. */
	assert_int_equal(prom_sample_u64(b, NULL, 0, 18446744073709551615ull), 0);
	assert_int_equal(prom_family(b, "vsn_g", PROM_GAUGE, "G."), 0);
	assert_int_equal(prom_sample(b, NULL, 0, 0.1), 0);
	assert_int_equal(prom_sample(b, NULL, 0, NAN), 0);
	assert_int_equal(prom_sample(b, NULL, 0, -INFINITY), 0);
	assert_non_null(strstr(b->data, "vsn_bytes_total 18446744073709551615\n"));
	assert_non_null(strstr(b->data, "vsn_g 0.1\nvsn_g NaN\nvsn_g -Inf\n"));
}

static void test_invalid_names(void **state)
{
	struct prom_buf *b = *state;
	struct prom_label bad_key[] = {{"9vm", "x"}};
	struct prom_label reserved[] = {{"__name__", "x"}};
	struct prom_label colon[] = {{"a:b", "x"}};
	struct prom_label twice[] = {{"vm", "1"}, {"vm", "2"}};
	struct prom_label ok[] = {{"_vm2", "x"}};

	assert_int_equal(prom_family(b, "9lives", PROM_GAUGE, "h"), -EINVAL);
	assert_int_equal(prom_family(b, "", PROM_GAUGE, "h"), -EINVAL);
	assert_int_equal(prom_family(b, "a-b", PROM_GAUGE, "h"), -EINVAL);
	assert_int_equal(prom_family(b, "vsn bytes", PROM_GAUGE, "h"), -EINVAL);
	assert_int_equal(prom_family(b, "vsn_bytes", PROM_COUNTER, "h"), -EINVAL);
	assert_non_null(strstr(prom_error(b), "_total"));
	assert_int_equal(prom_family(b, "vsn_x", PROM_GAUGE, NULL), -EINVAL);
	/* A sample before any family has nowhere to go. */
	assert_int_equal(prom_sample(b, NULL, 0, 1), -EINVAL);
	assert_int_equal(b->len, 0);

	assert_int_equal(prom_family(b, ":vsn_ok:1", PROM_GAUGE, "h"), 0);
	assert_int_equal(prom_sample(b, bad_key, 1, 1), -EINVAL);
	assert_int_equal(prom_sample(b, reserved, 1, 1), -EINVAL);
	assert_int_equal(prom_sample(b, colon, 1, 1), -EINVAL);
	assert_int_equal(prom_sample(b, twice, 2, 1), -EINVAL);
	assert_int_equal(prom_sample(b, ok, 1, 1), 0);
	assert_int_equal(prom_histogram(b, NULL, 0, NULL, NULL, 0, 0, 0), -EINVAL);

	assert_int_equal(prom_family(b, "vsn_c_total", PROM_COUNTER, "h"), 0);
	assert_int_equal(prom_sample(b, NULL, 0, -1), -EINVAL);
	assert_int_equal(prom_sample(b, NULL, 0, NAN), -EINVAL);
	/* Failed calls leave no trace in the text. */
	assert_null(strstr(b->data, "9lives"));
	assert_null(strstr(b->data, "vsn_bytes "));
	assert_null(strstr(b->data, "vm=\"2\""));
	assert_null(strstr(b->data, "vsn_c_total -1"));
}

static void test_histogram(void **state)
{
	struct prom_buf *b = *state;
	struct prom_label l[] = {{"vm", "vm1"}};
	double le[] = {0.0001, 0.001, 0.01};
	uint64_t cum[] = {3, 10, 12};
	double bad_le[] = {0.001, 0.001};
	uint64_t bad_cum[] = {5, 4};
	double inf_le[] = {1, INFINITY};
	const char *want = "# HELP vsn_lat_seconds I/O latency.\n"
			   "# TYPE vsn_lat_seconds histogram\n"
			   "vsn_lat_seconds_bucket{vm=\"vm1\",le=\"0.0001\"} 3\n"
			   "vsn_lat_seconds_bucket{vm=\"vm1\",le=\"0.001\"} 10\n"
			   "vsn_lat_seconds_bucket{vm=\"vm1\",le=\"0.01\"} 12\n"
			   "vsn_lat_seconds_bucket{vm=\"vm1\",le=\"+Inf\"} 13\n"
			   "vsn_lat_seconds_sum{vm=\"vm1\"} 0.0425\n"
			   "vsn_lat_seconds_count{vm=\"vm1\"} 13\n"
			   "vsn_lat_seconds_bucket{le=\"+Inf\"} 0\n"
			   "vsn_lat_seconds_sum 0\n"
			   "vsn_lat_seconds_count 0\n";
	struct prom_label le_label[] = {{"le", "1"}};

	assert_int_equal(prom_family(b, "vsn_lat_seconds", PROM_HISTOGRAM, "I/O latency."), 0);
	assert_int_equal(prom_sample(b, NULL, 0, 1), -EINVAL);
	assert_int_equal(prom_histogram(b, l, 1, le, cum, 3, 0.0425, 13), 0);
	assert_int_equal(prom_histogram(b, NULL, 0, NULL, NULL, 0, 0, 0), 0);
	assert_string_equal(b->data, want);

	/* Rejected: bounds not increasing, counts not cumulative, count
	 * below the last bucket, an explicit +Inf, a label named le. */
	assert_int_equal(prom_histogram(b, l, 1, bad_le, cum, 2, 0, 10), -EINVAL);
	assert_int_equal(prom_histogram(b, l, 1, le, bad_cum, 2, 0, 10), -EINVAL);
	assert_non_null(strstr(prom_error(b), "cumulative"));
	assert_int_equal(prom_histogram(b, l, 1, le, cum, 3, 0, 11), -EINVAL);
	assert_int_equal(prom_histogram(b, l, 1, inf_le, cum, 2, 0, 20), -EINVAL);
	assert_int_equal(prom_histogram(b, le_label, 1, le, cum, 3, 0, 20), -EINVAL);
	assert_string_equal(b->data, want);
}

static void test_duplicate_family(void **state)
{
	struct prom_buf *b = *state;

	assert_int_equal(prom_family(b, "vsn_a", PROM_GAUGE, "h"), 0);
	assert_int_equal(prom_family(b, "vsn_a", PROM_GAUGE, "h"), -EEXIST);
	assert_int_equal(prom_family(b, "vsn_lat", PROM_HISTOGRAM, "h"), 0);
	/* A histogram's series names are taken too, both ways round. */
	assert_int_equal(prom_family(b, "vsn_lat_count", PROM_GAUGE, "h"), -EEXIST);
	assert_int_equal(prom_family(b, "vsn_lat_bucket", PROM_GAUGE, "h"), -EEXIST);
	assert_int_equal(prom_family(b, "vsn_b_sum", PROM_GAUGE, "h"), 0);
	assert_int_equal(prom_family(b, "vsn_b", PROM_HISTOGRAM, "h"), -EEXIST);
	assert_non_null(strstr(prom_error(b), "vsn_b_sum"));
	/* A new tick starts afresh. */
	prom_reset(b);
	assert_int_equal(b->len, 0);
	assert_int_equal(prom_family(b, "vsn_a", PROM_GAUGE, "h"), 0);
}

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "r");
	char *p = NULL;
	long n;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
		p = malloc((size_t)n + 1);
		if (p && fread(p, 1, (size_t)n, f) != (size_t)n) {
			free(p);
			p = NULL;
		}
		if (p) {
			p[n] = '\0';
			*len = (size_t)n;
		}
	}
	fclose(f);
	return p;
}

static unsigned count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	unsigned n = 0;

	assert_non_null(d);
	while ((e = readdir(d)))
		n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
	closedir(d);
	return n;
}

static void fill(struct prom_buf *b, const char *fam, unsigned n)
{
	char v[16];
	struct prom_label l[] = {{"vm", v}};

	prom_reset(b);
	assert_int_equal(prom_family(b, fam, PROM_GAUGE, "Filler."), 0);
	for (unsigned i = 0; i < n; i++) {
		snprintf(v, sizeof(v), "%u", i);
		assert_int_equal(prom_sample(b, l, 1, i), 0);
	}
}

struct reader {
	const char *path;
	const char *a, *b;
	volatile int stop;
	unsigned reads, torn;
};

/* Reads the file while it is replaced: each read must be one whole version. */
static void *reader_fn(void *arg)
{
	struct reader *r = arg;

	while (!r->stop) {
		size_t len;
		char *s = read_file(r->path, &len);

		if (!s)
			continue;
		r->reads++;
		if (strcmp(s, r->a) && strcmp(s, r->b))
			r->torn++;
		free(s);
	}
	return NULL;
}

static void test_write_atomic(void **state)
{
	struct prom_buf *b = *state;
	char dir[] = "/tmp/vsn-prom-XXXXXX", path[512], missing[600];
	struct prom_buf other;
	struct reader r = {0};
	pthread_t th;
	char *s, *a, *c;
	size_t len;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/vsn.prom", dir);

	/* Bad names and directories: clear errors, nothing written. */
	fill(b, "vsn_fill", 10);
	assert_int_equal(prom_write_atomic(dir, "vsn.txt", b), -EINVAL);
	assert_int_equal(prom_write_atomic(dir, "../vsn.prom", b), -EINVAL);
	snprintf(missing, sizeof(missing), "%s/nope", dir);
	assert_int_equal(prom_write_atomic(missing, "vsn.prom", b), -ENOENT);
	assert_non_null(strstr(prom_error(b), "does not exist"));
	assert_non_null(strstr(prom_error(b), missing));
	assert_int_equal(count_entries(dir), 0);

	/* Large enough that a non-atomic writer would be caught mid-write. */
	fill(b, "vsn_fill", 20000);
	a = strdup(b->data);
	prom_init(&other);
	fill(&other, "vsn_other", 15000);
	c = strdup(other.data);
	assert_non_null(a);
	assert_non_null(c);

	assert_int_equal(prom_write_atomic(dir, "vsn.prom", b), 0);
	s = read_file(path, &len);
	assert_non_null(s);
	assert_int_equal(len, b->len);
	assert_string_equal(s, a);
	free(s);
	assert_int_equal(count_entries(dir), 1);

	/* A file in the way of the directory. */
	assert_int_equal(prom_write_atomic(path, "vsn.prom", b), -ENOTDIR);

	r.path = path;
	r.a = a;
	r.b = c;
	assert_int_equal(pthread_create(&th, NULL, reader_fn, &r), 0);
	for (int i = 0; i < 60; i++)
		assert_int_equal(prom_write_atomic(dir, "vsn.prom", i % 2 ? b : &other), 0);
	r.stop = 1;
	pthread_join(th, NULL);
	print_message("# %u reads during 60 replacements, %u torn\n", r.reads, r.torn);
	assert_int_equal(r.torn, 0);
	assert_true(r.reads > 0);
	/* No temporary file left behind. */
	assert_int_equal(count_entries(dir), 1);

	unlink(path);
	rmdir(dir);
	prom_free(&other);
	free(a);
	free(c);
}

/* What the daemon will write each tick, in miniature. */
static void realistic(struct prom_buf *b)
{
	struct prom_label p1[] = {{"path", "1"}, {"uplink", "up0"}};
	struct prom_label p2[] = {{"path", "2"}, {"uplink", "up1 \"spare\"\\x"}};
	struct prom_label v1[] = {{"vm", "vm1"}};
	struct prom_label v2[] = {{"vm", "vm-2\nnewline"}};
	double le[] = {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01};
	uint64_t c1[] = {0, 4, 90, 300, 410, 420, 421, 421};
	uint64_t c2[] = {1, 1, 1, 1, 1, 1, 1, 1};

	assert_int_equal(
	    prom_family(b, "vsn_path_tx_bytes_total", PROM_COUNTER, "Bytes sent on a path."), 0);
	assert_int_equal(prom_sample_u64(b, p1, 2, 123456789012ull), 0);
	assert_int_equal(prom_sample_u64(b, p2, 2, 0), 0);
	assert_int_equal(prom_family(b, "vsn_path_up", PROM_GAUGE,
				     "1 when the path is usable, 0 when it is down."),
			 0);
	assert_int_equal(prom_sample(b, p1, 2, 1), 0);
	assert_int_equal(prom_sample(b, p2, 2, 0), 0);
	assert_int_equal(prom_family(b, "vsn_io_latency_seconds", PROM_HISTOGRAM,
				     "NVMe/TCP command latency seen by the datapath."),
			 0);
	assert_int_equal(prom_histogram(b, v1, 1, le, c1, 8, 0.214, 425), 0);
	assert_int_equal(prom_histogram(b, v2, 1, le, c2, 8, 0.00002, 1), 0);
}

static void test_promtool(void **state)
{
	struct prom_buf *b = *state;
	char dir[] = "/tmp/vsn-promtool-XXXXXX", cmd[256];
	int rc;

	if (system("command -v promtool >/dev/null 2>&1") != 0) {
		print_message("# promtool is not on PATH (Debian package prometheus; "
			      "scripts/deps.sh installs it): skipped\n");
		skip();
	}
	assert_non_null(mkdtemp(dir));
	realistic(b);
	assert_int_equal(prom_write_atomic(dir, "vsn.prom", b), 0);
	snprintf(cmd, sizeof(cmd), "promtool check metrics < %s/vsn.prom", dir);
	rc = system(cmd);
	if (rc != 0)
		print_message("# promtool rejected:\n%s", b->data);
	assert_int_equal(rc, 0);

	/* And the checker can fail: a counter without _total is refused. */
	snprintf(cmd, sizeof(cmd),
		 "printf '# HELP x_bytes h\\n# TYPE x_bytes counter\\nx_bytes 1\\n' > %s/bad.prom "
		 "&& promtool check metrics < %s/bad.prom >/dev/null 2>&1",
		 dir, dir);
	assert_int_not_equal(system(cmd), 0);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_escaping, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_values, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_invalid_names, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_histogram, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_duplicate_family, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_write_atomic, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_promtool, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
