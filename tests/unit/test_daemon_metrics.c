// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* The daemon's metrics writer on a model built from a real config: every
 * family has the type its name promises and `promtool check metrics`
 * accepts the file, in the fast suite (no datapath: the map fds are -1, so
 * the datapath's counters are simply absent). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "daemon/daemon.h"

static const char cfg_text[] =
    "vms:\n"
    "  - {name: vm1, id: 1, interface: vmif, addresses: [10.0.0.2, '2001:db8::2']}\n"
    "uplinks:\n"
    "  - {interface: lo, capacity: 10gbit}\n"
    "paths:\n"
    "  - {id: 1, uplink: lo, next_hop: \"02:00:00:00:00:01\"}\n"
    "  - {id: 2, uplink: lo, next_hop: fib}\n"
    "backends:\n"
    "  - {id: 1, address: 10.3.1.2, port: 4420, paths: [1, 2]}\n"
    "  - {id: 2, address: 10.3.2.2, port: 4420, paths: [2, 1]}\n"
    "volumes:\n"
    "  - {id: 1, vm: vm1, address: 192.168.100.10, port: 4420, backends: [1, 2]}\n"
    "controller:\n"
    "  metrics_dir: %s\n";

struct fixture {
	char dir[32];
	char cfg_path[64];
	struct vsn_config *cfg;
	struct ctl c;
	char *prom; /* the written file */
};

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	long n;

	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	rewind(f);
	buf = calloc(1, n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, n, f), (size_t)n);
	fclose(f);
	return buf;
}

static int setup(void **state)
{
	struct fixture *x = calloc(1, sizeof(*x));
	struct vsn_maps none = VSN_MAPS_NONE;
	struct vsn_error err = {0};
	char path[96];
	FILE *f;

	assert_non_null(x);
	snprintf(x->dir, sizeof(x->dir), "/tmp/vsn-dm-XXXXXX");
	assert_non_null(mkdtemp(x->dir));
	snprintf(x->cfg_path, sizeof(x->cfg_path), "%s/vsn.yaml", x->dir);
	f = fopen(x->cfg_path, "w");
	assert_non_null(f);
	fprintf(f, cfg_text, x->dir);
	fclose(f);
	x->cfg = config_load(x->cfg_path, &err);
	if (!x->cfg || config_validate(x->cfg, &err))
		fail_msg("config: %s", err.msg);
	x->c.cfg = x->cfg;
	x->c.m = none;
	if (ctl_model_build(&x->c, &err))
		fail_msg("model: %s", err.msg);
	/* Something in every family the daemon fills itself. */
	x->c.paths[0].damp.state = VSN_H_DEGRADED;
	x->c.backends[1].damp.state = VSN_H_FAILED;
	x->c.uplinks[0].util = 0.25;
	x->c.reroutes[0] = 3;
	x->c.decisions[1] = 2;
	x->c.ticks = 42;
	x->c.tick_seconds_last = 0.0004;
	x->c.tick_seconds_max = 0.002;
	if (ctl_metrics_write(&x->c, &err))
		fail_msg("metrics: %s", err.msg);
	snprintf(path, sizeof(path), "%s/vsn.prom", x->dir);
	x->prom = slurp(path);
	*state = x;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *x = *state;
	char cmd[96];

	if (!x)
		return 0;
	ctl_model_free(&x->c);
	config_free(x->cfg);
	free(x->prom);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", x->dir);
	if (system(cmd))
		return -1;
	free(x);
	return 0;
}

/* Every family's TYPE agrees with its name: _total only on counters,
 * histograms with their _bucket/_sum/_count samples. */
static void test_types_match_names(void **state)
{
	struct fixture *x = *state;
	unsigned families = 0;

	for (const char *l = x->prom; (l = strstr(l, "# TYPE ")); l++) {
		char name[128], type[32];

		assert_int_equal(sscanf(l, "# TYPE %127s %31s", name, type), 2);
		families++;
		if (strlen(name) > 6 && !strcmp(name + strlen(name) - 6, "_total"))
			assert_string_equal(type, "counter");
		else
			assert_string_not_equal(type, "counter");
	}
	assert_true(families >= 15);
	assert_non_null(strstr(x->prom, "# TYPE vsn_path_health gauge\n"));
	assert_non_null(strstr(x->prom, "vsn_path_health{path=\"1\",state=\"degraded\"} 1\n"));
	assert_non_null(strstr(x->prom, "vsn_backend_health{backend=\"2\",state=\"failed\"} 1\n"));
	assert_non_null(strstr(x->prom, "# TYPE vsn_daemon_ticks_total counter\n"));
	assert_non_null(strstr(x->prom, "vsn_daemon_ticks_total 42\n"));
	assert_non_null(strstr(x->prom, "vsn_uplink_utilisation_ratio{uplink=\"lo\"} 0.25\n"));
	/* A daemon whose datapath is in place says so (0 after a detach). */
	assert_non_null(strstr(x->prom, "# TYPE vsn_datapath_attached gauge\n"));
	assert_non_null(strstr(x->prom, "vsn_datapath_attached 1\n"));
}

static void test_promtool_accepts(void **state)
{
	struct fixture *x = *state;
	char cmd[160];
	int rc;

	if (system("command -v promtool >/dev/null 2>&1") != 0) {
		print_message("# promtool is not on PATH (Debian package prometheus; "
			      "scripts/deps.sh installs it): skipped\n");
		skip();
	}
	snprintf(cmd, sizeof(cmd), "promtool check metrics < %s/vsn.prom", x->dir);
	rc = system(cmd);
	if (rc != 0)
		print_message("# promtool rejected:\n%s", x->prom);
	assert_int_equal(rc, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_types_match_names),
	    cmocka_unit_test(test_promtool_accepts),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
