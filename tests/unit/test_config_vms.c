// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Unit tests for a VM's port security and connection limits in the config:
 * its own addresses (required, unicast, not loopback, one VM's only), its
 * MAC, max_connections, connection_rate and connection_burst (defaults and
 * ranges).  Each error must name the line and field.
 */
#include <linux/types.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config/config.h"

#define REST                                                                                       \
	"uplinks:\n"                                                                               \
	"  - {interface: up0}\n"                                                                   \
	"paths:\n"                                                                                 \
	"  - {id: 1, uplink: up0, next_hop: \"02:00:00:00:00:01\"}\n"                              \
	"backends:\n"                                                                              \
	"  - {id: 1, address: 10.3.1.2, paths: [1]}\n"

/* Load and validate yaml (written to a temporary file); NULL on failure,
 * with err filled. */
static struct vsn_config *load(const char *yaml, struct vsn_error *err)
{
	char dir[] = "/tmp/vsn-test-vms-XXXXXX", path[64];
	struct vsn_config *cfg;
	FILE *f;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/t.yaml", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_true(fputs(yaml, f) >= 0);
	assert_int_equal(fclose(f), 0);
	cfg = config_load(path, err);
	if (cfg && config_validate(cfg, err)) {
		config_free(cfg);
		cfg = NULL;
	}
	unlink(path);
	rmdir(dir);
	return cfg;
}

/* yaml must be rejected, the error naming where and why. */
static void rejected(const char *yaml, const char *where, const char *why)
{
	struct vsn_error err = {.msg = ""};
	struct vsn_config *cfg = load(yaml, &err);

	if (cfg || !strstr(err.msg, where) || !strstr(err.msg, why))
		print_error("expected '%s' ... '%s', got: %s\n", where, why, err.msg);
	assert_null(cfg);
	assert_non_null(strstr(err.msg, where));
	assert_non_null(strstr(err.msg, why));
}

static void test_defaults_and_values(void **state)
{
	struct vsn_error err = {.msg = ""};
	struct vsn_config *cfg = load(
	    "vms:\n"
	    "  - {name: a, id: 1, interface: t0, addresses: [10.0.0.2, '2001:db8::2', "
	    "10.64.0.0/10, '2001:db8:7::/48']}\n"
	    "  - {name: b, id: 2, interface: t1, addresses: [10.0.6.2], mac: '52:54:00:00:02:01',\n"
	    "     max_connections: 0, connection_rate: 10, connection_burst: 3}\n" REST,
	    &err);

	(void)state;
	if (!cfg)
		print_error("%s\n", err.msg);
	assert_non_null(cfg);
	assert_int_equal(cfg->vms[0].n_addresses, 4);
	assert_string_equal(cfg->vms[0].addresses[1], "2001:db8::2");
	assert_null(cfg->vms[0].mac);
	assert_int_equal(cfg->vms[0].max_connections, 4096);
	assert_int_equal(cfg->vms[0].conn_rate, 256);
	assert_int_equal(cfg->vms[0].conn_burst, 512);
	assert_string_equal(cfg->vms[1].mac, "52:54:00:00:02:01");
	assert_int_equal(cfg->vms[1].max_connections, 0);
	assert_int_equal(cfg->vms[1].conn_rate, 10);
	assert_int_equal(cfg->vms[1].conn_burst, 3);
	config_free(cfg);
}

static void test_addresses_required(void **state)
{
	(void)state;
	rejected("vms:\n  - {name: a, id: 1, interface: t0}\n" REST, "t.yaml:2: vms[0].addresses",
		 "at least one is required");
	rejected("vms:\n  - {name: a, id: 1, interface: t0, addresses: []}\n" REST,
		 "vms[0].addresses", "at least one");
}

static void test_addresses_checked(void **state)
{
	(void)state;
	rejected("vms:\n  - {name: a, id: 1, interface: t0, addresses: [10.0.0.1, 10.0.0.2, "
		 "10.0.0.3, 10.0.0.4, 10.0.0.5, 10.0.0.6, 10.0.0.7, 10.0.0.8, 10.0.0.9]}\n" REST,
		 "vms[0].addresses", "at most 8");
	rejected(
	    "vms:\n  - {name: a, id: 1, interface: t0, addresses: [10.0.0.2, 127.0.0.5]}\n" REST,
	    "vms[0].addresses[1]", "loopback");
	rejected("vms:\n  - {name: a, id: 1, interface: t0, addresses: ['::1']}\n" REST,
		 "vms[0].addresses[0]", "martian");
	rejected("vms:\n  - {name: a, id: 1, interface: t0, addresses: [224.0.0.5]}\n" REST,
		 "vms[0].addresses[0]", "martian");
	rejected("vms:\n  - {name: a, id: 1, interface: t0, addresses: [255.255.255.255]}\n" REST,
		 "vms[0].addresses[0]", "martian");
	rejected("vms:\n  - {name: a, id: 1, interface: t0, addresses: [0.0.0.0/0]}\n" REST,
		 "vms[0].addresses[0]", "martian");
	rejected("vms:\n  - {name: a, id: 1, interface: t0, addresses: [96.0.0.0/3]}\n" REST,
		 "vms[0].addresses[0]", "martian"); /* 96-127: loopback inside */
	rejected("vms:\n  - {name: a, id: 1, interface: t0, addresses: ['2001:db8::/8']}\n" REST,
		 "vms[0].addresses[0]", "invalid address or prefix"); /* host bits */
	rejected("vms:\n  - {name: a, id: 1, interface: t0, addresses: ['2000::/8']}\n" REST,
		 "vms[0].addresses[0]", "/16 or longer");
	rejected("vms:\n  - {name: a, id: 1, interface: t0, addresses: [10.0.0.300]}\n" REST,
		 "vms[0].addresses[0]", "invalid address or prefix");
	rejected("vms:\n  - {name: a, id: 1, interface: t0, addresses: [10.0.0.2/33]}\n" REST,
		 "vms[0].addresses[0]", "invalid address or prefix");
	rejected("vms:\n  - {name: a, id: 1, interface: t0, addresses: [10.0.0.2, "
		 "'::ffff:10.0.0.2']}\n" REST,
		 "vms[0].addresses[1]", "overlaps 10.0.0.2 listed before");
	rejected("vms:\n"
		 "  - {name: a, id: 1, interface: t0, addresses: [10.0.0.0/24]}\n"
		 "  - {name: b, id: 2, interface: t1, addresses: [10.0.6.2, 10.0.0.77]}\n" REST,
		 "t.yaml:3: vms[1].addresses[1]", "overlaps vm a's 10.0.0.0/24");
}

static void test_mac_and_limits(void **state)
{
	(void)state;
	rejected(
	    "vms:\n  - {name: a, id: 1, interface: t0, addresses: [10.0.0.2], mac: nope}\n" REST,
	    "vms[0].mac", "invalid MAC");
	rejected("vms:\n  - {name: a, id: 1, interface: t0, addresses: [10.0.0.2], "
		 "mac: '01:00:5e:00:00:01'}\n" REST,
		 "vms[0].mac", "not a unicast MAC");
	rejected("vms:\n  - {name: a, id: 1, interface: t0, addresses: [10.0.0.2], "
		 "max_connections: 524289}\n" REST,
		 "vms[0].max_connections", "out of range");
	rejected("vms:\n  - {name: a, id: 1, interface: t0, addresses: [10.0.0.2], "
		 "connection_burst: 0}\n" REST,
		 "vms[0].connection_burst", "out of range");
	rejected("vms:\n  - {name: a, id: 1, interface: t0, addresses: [10.0.0.2], "
		 "connection_rate: -1}\n" REST,
		 "vms[0].connection_rate", "out of range");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults_and_values),
	    cmocka_unit_test(test_addresses_required),
	    cmocka_unit_test(test_addresses_checked),
	    cmocka_unit_test(test_mac_and_limits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
