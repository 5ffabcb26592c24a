// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Unit tests for user/config_*.c: each test writes a small YAML file into its
 * own temporary directory, loads and validates it, and checks either the
 * loaded values or that the error names the exact line and field.
 */
#include <linux/types.h>
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "config/config.h"

/* A temporary directory holding one config file, t.yaml. */
struct tmp {
	char dir[64];
	char path[PATH_MAX];
};

static void tmp_write(struct tmp *t, const char *yaml)
{
	FILE *f;

	snprintf(t->dir, sizeof(t->dir), "/tmp/vsn-test-config-XXXXXX");
	assert_non_null(mkdtemp(t->dir));
	snprintf(t->path, sizeof(t->path), "%s/t.yaml", t->dir);
	f = fopen(t->path, "w");
	assert_non_null(f);
	assert_int_equal(fputs(yaml, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

static void tmp_remove(struct tmp *t)
{
	unlink(t->path);
	rmdir(t->dir);
}

/* Load and validate; returns NULL (with err filled) on either failure. */
static struct vsn_config *load(struct tmp *t, const char *yaml, struct vsn_error *err)
{
	struct vsn_config *cfg;

	tmp_write(t, yaml);
	cfg = config_load(t->path, err);
	if (cfg && config_validate(cfg, err)) {
		config_free(cfg);
		cfg = NULL;
	}
	return cfg;
}

static struct vsn_config *load_ok(struct tmp *t, const char *yaml)
{
	struct vsn_error err = {.msg = ""};
	struct vsn_config *cfg = load(t, yaml, &err);

	if (!cfg)
		print_error("unexpected error: %s\n", err.msg);
	assert_non_null(cfg);
	return cfg;
}

/* The message must start with "FILE:LINE: FIELD: " and mention why. */
static void expect_error(const char *yaml, unsigned line, const char *field, const char *why)
{
	struct vsn_error err = {.msg = ""};
	struct vsn_config *cfg;
	char prefix[PATH_MAX + 128];
	struct tmp t = {.dir = ""};

	cfg = load(&t, yaml, &err);
	if (line)
		snprintf(prefix, sizeof(prefix), "%s:%u: %s: ", t.path, line, field);
	else
		snprintf(prefix, sizeof(prefix), "%s: %s", t.path, field);
	tmp_remove(&t);
	config_free(cfg);
	if (strncmp(err.msg, prefix, strlen(prefix)) || !strstr(err.msg, why))
		print_error("got:      %s\nexpected: %s...%s\n", err.msg, prefix, why);
	assert_null(cfg);
	assert_int_equal(strncmp(err.msg, prefix, strlen(prefix)), 0);
	assert_non_null(strstr(err.msg, why));
}

/* clang-format off */
/* Lines 1..11; volumes and routes are appended by the tests. */
#define BASE \
	"vms:\n" \
	"  - {name: vm1, id: 1, interface: vsnt-vm1, addresses: [10.0.0.2, '2001:db8::2']}\n" \
	"uplinks:\n" \
	"  - {interface: up0, capacity: 10gbit}\n" \
	"  - {interface: up1, capacity: 10gbit}\n" \
	"paths:\n" \
	"  - {id: 1, uplink: up0, next_hop: \"02:00:00:00:01:02\", vlan: 100, dscp: 26}\n" \
	"  - {id: 2, uplink: up1, next_hop: fib, source_address: 10.0.2.1}\n" \
	"backends:\n" \
	"  - {id: 1, name: t1, address: 10.0.1.2, port: 4420, paths: [1, 2]}\n" \
	"  - {id: 2, name: t2, address: 10.0.2.2, state: draining, weight: 50, tier: 1, paths: [2]}\n"

#define VALID \
	BASE \
	"volumes:\n" \
	"  - {id: 1, vm: vm1, address: 192.168.100.10, port: 4420, protocol: nvme-tcp, backends: [1, 2]}\n" \
	"routes:\n" \
	"  - {vm: vm1, volume: 1, backend: 1, path: 2}\n"
/* clang-format on */

/* The same configuration in block style. */
static const char valid_block[] = "# comment\n"				  /* 1 */
				  "vms:\n"				  /* 2 */
				  "  - name: vm1\n"			  /* 3 */
				  "    id: 1\n"				  /* 4 */
				  "    interface: vsnt-vm1\n"		  /* 5 */
				  "    addresses: [10.0.0.2]\n"		  /* 6 */
				  "uplinks:\n"				  /* 7 */
				  "  - interface: up0\n"		  /* 8 */
				  "    capacity: 10gbit\n"		  /* 9 */
				  "  - interface: up1\n"		  /* 10 */
				  "    capacity: 10gbit\n"		  /* 11 */
				  "paths:\n"				  /* 12 */
				  "  - id: 1\n"				  /* 13 */
				  "    uplink: up0\n"			  /* 14 */
				  "    next_hop: \"02:00:00:00:01:02\"\n" /* 15 */
				  "    vlan: 100\n"			  /* 16 */
				  "    dscp: 26\n"			  /* 17 */
				  "  - id: 2\n"				  /* 18 */
				  "    uplink: up1\n"			  /* 19 */
				  "    next_hop: fib\n"			  /* 20 */
				  "    source_address: 10.0.2.1\n"	  /* 21 */
				  "backends:\n"				  /* 22 */
				  "  - id: 1\n"				  /* 23 */
				  "    name: t1\n"			  /* 24 */
				  "    address: 10.0.1.2\n"		  /* 25 */
				  "    port: 4420\n"			  /* 26 */
				  "    paths:\n"			  /* 27 */
				  "      - 1\n"				  /* 28 */
				  "      - 2\n"				  /* 29 */
				  "  - id: 2\n"				  /* 30 */
				  "    name: t2\n"			  /* 31 */
				  "    address: 10.0.2.2\n"		  /* 32 */
				  "    state: draining\n"		  /* 33 */
				  "    weight: 50\n"			  /* 34 */
				  "    tier: 1\n"			  /* 35 */
				  "    paths: [2]\n"			  /* 36 */
				  "volumes:\n"				  /* 37 */
				  "  - id: 1\n"				  /* 38 */
				  "    vm: vm1\n"			  /* 39 */
				  "    address: 192.168.100.10\n"	  /* 40 */
				  "    port: 4420\n"			  /* 41 */
				  "    protocol: nvme-tcp\n"		  /* 42 */
				  "    backends: [1, 2]\n"		  /* 43 */
				  "routes:\n"				  /* 44 */
				  "  - vm: vm1\n"			  /* 45 */
				  "    volume: 1\n"			  /* 46 */
				  "    backend: 1\n"			  /* 47 */
				  "    path: 2\n";			  /* 48 */

static void check_valid_values(const struct vsn_config *cfg)
{
	const struct vsn_cfg_path *p;
	const struct vsn_cfg_backend *be;
	const struct vsn_cfg_volume *vol;

	assert_int_equal(cfg->n_vms, 1);
	assert_string_equal(cfg->vms[0].name, "vm1");
	assert_int_equal(cfg->vms[0].id, 1);
	assert_string_equal(cfg->vms[0].interface, "vsnt-vm1");

	assert_int_equal(cfg->n_uplinks, 2);
	assert_string_equal(cfg->uplinks[1].interface, "up1");
	assert_true(cfg->uplinks[0].capacity_bps == 10000000000ULL);

	assert_int_equal(cfg->n_paths, 2);
	p = &cfg->paths[0];
	assert_int_equal(p->id, 1);
	assert_string_equal(p->uplink, "up0");
	assert_string_equal(p->next_hop_mac, "02:00:00:00:01:02");
	assert_false(p->fib);
	assert_null(p->source_mac);
	assert_int_equal(p->vlan, 100);
	assert_int_equal(p->dscp, 26);
	assert_int_equal(p->ecn, -1);
	assert_int_equal(p->ttl, -1);
	assert_true(p->flow_label == -1);
	assert_null(p->source_address);
	p = &cfg->paths[1];
	assert_null(p->next_hop_mac);
	assert_true(p->fib);
	assert_int_equal(p->vlan, -1);
	assert_int_equal(p->dscp, -1);
	assert_string_equal(p->source_address, "10.0.2.1");

	assert_int_equal(cfg->n_backends, 2);
	be = &cfg->backends[0];
	assert_int_equal(be->id, 1);
	assert_string_equal(be->name, "t1");
	assert_string_equal(be->address, "10.0.1.2");
	assert_int_equal(be->port, 4420);
	assert_int_equal(be->state, VSN_BE_UP);
	assert_int_equal(be->weight, 100);
	assert_int_equal(be->tier, 0);
	assert_int_equal(be->n_paths, 2);
	assert_int_equal(be->paths[0], 1);
	assert_int_equal(be->paths[1], 2);
	be = &cfg->backends[1];
	assert_int_equal(be->port, VSN_PORT_NVME_TCP);
	assert_int_equal(be->state, VSN_BE_DRAINING);
	assert_int_equal(be->weight, 50);
	assert_int_equal(be->tier, 1);
	assert_int_equal(be->n_paths, 1);
	assert_int_equal(be->paths[0], 2);

	assert_int_equal(cfg->n_volumes, 1);
	vol = &cfg->volumes[0];
	assert_int_equal(vol->id, 1);
	assert_string_equal(vol->vm, "vm1");
	assert_string_equal(vol->address, "192.168.100.10");
	assert_int_equal(vol->port, 4420);
	assert_int_equal(vol->proto, VSN_PROTO_NVME_TCP);
	assert_int_equal(vol->n_backends, 2);
	assert_int_equal(vol->backends[1], 2);

	assert_int_equal(cfg->n_routes, 1);
	assert_string_equal(cfg->routes[0].vm, "vm1");
	assert_int_equal(cfg->routes[0].volume, 1);
	assert_int_equal(cfg->routes[0].backend, 1);
	assert_int_equal(cfg->routes[0].path, 2);

	assert_ptr_equal(config_find_vm(cfg, "vm1"), &cfg->vms[0]);
	assert_null(config_find_vm(cfg, "vm2"));
	assert_null(config_find_vm(cfg, NULL));
}

static void test_valid_flow(void **state)
{
	struct tmp t = {.dir = ""};
	struct vsn_config *cfg;

	(void)state;
	cfg = load_ok(&t, VALID);
	check_valid_values(cfg);
	assert_non_null(strstr(cfg->file, "t.yaml"));
	assert_int_equal(cfg->vms[0].line, 2);
	assert_int_equal(cfg->uplinks[1].line, 5);
	assert_int_equal(cfg->paths[1].line, 8);
	assert_int_equal(cfg->backends[0].line, 10);
	assert_int_equal(cfg->volumes[0].line, 13);
	assert_int_equal(cfg->routes[0].line, 15);
	config_free(cfg);
	tmp_remove(&t);
}

/* A gateway address as next hop: neither a MAC nor fib. */
static void test_gateway_next_hop(void **state)
{
	struct tmp t = {.dir = ""};
	struct vsn_config *cfg;

	(void)state;
	cfg = load_ok(&t, "uplinks: [{interface: up0}]\n"
			  "paths:\n"
			  "  - {id: 1, uplink: up0, next_hop: \"2001:db8:1::2\"}\n"
			  "  - {id: 2, uplink: up0, next_hop: 10.1.0.2}\n");
	assert_string_equal(cfg->paths[0].next_hop_addr, "2001:db8:1::2");
	assert_null(cfg->paths[0].next_hop_mac);
	assert_false(cfg->paths[0].fib);
	assert_string_equal(cfg->paths[1].next_hop_addr, "10.1.0.2");
	config_free(cfg);
	tmp_remove(&t);
}

static void test_valid_block(void **state)
{
	struct tmp t = {.dir = ""};
	struct vsn_config *cfg;

	(void)state;
	cfg = load_ok(&t, valid_block);
	check_valid_values(cfg);
	assert_int_equal(cfg->vms[0].line, 3);
	assert_int_equal(cfg->uplinks[1].line, 10);
	assert_int_equal(cfg->paths[1].line, 18);
	assert_int_equal(cfg->backends[1].line, 30);
	assert_int_equal(cfg->volumes[0].line, 38);
	assert_int_equal(cfg->routes[0].line, 45);
	config_free(cfg);
	tmp_remove(&t);
}

/* RoCE default port, host-initiator volumes, IPv6, flow_label on IPv4. */
static void test_valid_other(void **state)
{
	struct tmp t = {.dir = ""};
	struct vsn_config *cfg;

	(void)state;
	cfg = load_ok(
	    &t,
	    "uplinks: [{interface: up0}]\n"
	    "paths:\n"
	    "  - {id: 3, uplink: up0, next_hop: 0a:bb:cc:dd:ee:ff, source_mac: 02:00:00:00:00:01,\n"
	    "     ecn: 1, ttl: 64, flow_label: 0x12345, vlan: ~}\n"
	    "backends:\n"
	    "  - {id: 7, address: 10.0.9.9, port: 4791, state: down, paths: [3]}\n"
	    "  - {id: 8, address: \"fd00::2\", paths: [3]}\n"
	    "volumes:\n"
	    "  - {id: 4, vm: host, address: 10.0.9.9, protocol: roce, backends: [7]}\n"
	    "  - {id: 5, vm: host, address: \"fd00::10\", backends: [8]}\n"
	    "routes:\n"
	    "  - {vm: host, volume: 4, backend: 7, path: 3}\n");
	assert_int_equal(cfg->n_vms, 0);
	assert_true(cfg->uplinks[0].capacity_bps == 0);
	assert_int_equal(cfg->paths[0].ecn, 1);
	assert_int_equal(cfg->paths[0].ttl, 64);
	assert_int_equal(cfg->paths[0].vlan, -1);
	assert_true(cfg->paths[0].flow_label == 0x12345);
	assert_string_equal(cfg->paths[0].source_mac, "02:00:00:00:00:01");
	assert_int_equal(cfg->backends[0].state, VSN_BE_DOWN);
	assert_int_equal(cfg->volumes[0].proto, VSN_PROTO_ROCEV2);
	assert_int_equal(cfg->volumes[0].port, VSN_PORT_ROCEV2);
	assert_int_equal(cfg->volumes[1].proto, VSN_PROTO_NVME_TCP);
	assert_int_equal(cfg->volumes[1].port, VSN_PORT_NVME_TCP);
	config_free(cfg);
	tmp_remove(&t);
}

static void test_empty(void **state)
{
	static const char *const docs[] = {
	    "",
	    "# nothing\n",
	    "---\n",
	    "vms:\nroutes: ~\nuplinks: []\n",
	};
	struct tmp t = {.dir = ""};
	unsigned i;

	(void)state;
	for (i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
		struct vsn_config *cfg = load_ok(&t, docs[i]);

		assert_int_equal(cfg->n_vms + cfg->n_uplinks + cfg->n_paths + cfg->n_backends +
				     cfg->n_volumes + cfg->n_routes,
				 0);
		config_free(cfg);
		tmp_remove(&t);
	}
}

/* config_validate() on a config changed after loading (flow style). */
static void test_validate_model(void **state)
{
	struct vsn_error err = {.msg = ""};
	struct vsn_config *cfg;
	struct tmp t = {.dir = ""};

	(void)state;
	cfg = load_ok(&t, VALID);
	cfg->paths[1].vlan = 5000;
	assert_int_equal(config_validate(cfg, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "t.yaml:8: paths[1].vlan: "));
	cfg->paths[1].vlan = -1;
	cfg->backends[1].tier = 8;
	assert_int_equal(config_validate(cfg, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "t.yaml:11: backends[1].tier: "));
	cfg->backends[1].tier = 7;
	cfg->paths[0].fib = true;
	assert_int_equal(config_validate(cfg, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "t.yaml:7: paths[0].next_hop: "));
	cfg->paths[0].fib = false;
	assert_int_equal(config_validate(cfg, &err), 0);
	config_free(cfg);
	config_free(NULL);
	tmp_remove(&t);
}

/*
 * In block style config_validate() names the line of the field itself,
 * also after values were changed; once items were moved, the line map no
 * longer fits and it names the item's line.
 */
static void test_validate_field_lines(void **state)
{
	struct vsn_error err = {.msg = ""};
	struct vsn_cfg_path moved;
	struct vsn_config *cfg;
	struct tmp t = {.dir = ""};

	(void)state;
	cfg = load_ok(&t, valid_block);
	cfg->routes[0].volume = 9;
	assert_int_equal(config_validate(cfg, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "t.yaml:46: routes[0].volume: unknown volume 9"));
	cfg->routes[0].volume = 1;
	cfg->backends[0].paths[1] = 9;
	assert_int_equal(config_validate(cfg, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "t.yaml:29: backends[0].paths[1]: unknown path 9"));
	cfg->backends[0].paths[1] = 2;
	cfg->paths[0].vlan = 5000;
	assert_int_equal(config_validate(cfg, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "t.yaml:16: paths[0].vlan: "));
	cfg->paths[0].vlan = 100;

	moved = cfg->paths[0];
	cfg->paths[0] = cfg->paths[1];
	cfg->paths[1] = moved;
	assert_int_equal(config_validate(cfg, &err), 0);
	cfg->paths[0].vlan = 5000;
	assert_int_equal(config_validate(cfg, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "t.yaml:18: paths[0].vlan: "));
	config_free(cfg);
	tmp_remove(&t);
}

/* Every prefix of a valid file loads, or fails with FILE:LINE: or FILE:. */
static void test_truncated(void **state)
{
	static const char *const docs[] = {VALID, valid_block};
	char buf[sizeof(valid_block)];
	struct vsn_error err;
	struct vsn_config *cfg;
	struct tmp t = {.dir = ""};
	size_t d, n;

	(void)state;
	for (d = 0; d < sizeof(docs) / sizeof(docs[0]); d++) {
		for (n = 0; n <= strlen(docs[d]) && n < sizeof(buf); n++) {
			memcpy(buf, docs[d], n);
			buf[n] = '\0';
			err.msg[0] = '\0';
			cfg = load(&t, buf, &err);
			if (!cfg) {
				assert_int_equal(strncmp(err.msg, t.path, strlen(t.path)), 0);
				assert_true(err.msg[strlen(t.path)] == ':');
			}
			config_free(cfg);
			tmp_remove(&t);
		}
	}
}

static void test_no_file(void **state)
{
	struct vsn_error err = {.msg = ""};

	(void)state;
	assert_null(config_load("/nonexistent/vsn.yaml", &err));
	assert_non_null(strstr(err.msg, "/nonexistent/vsn.yaml: cannot open"));
}

/* A file of brackets: refused at once at its nesting, not parsed for
 * minutes (200 kB of them took 83 s of CPU). */
static void test_nesting_cap(void **state)
{
	struct vsn_error err = {.msg = ""};
	struct vsn_config *cfg;
	struct tmp t = {.dir = ""};
	struct timespec a, b;
	size_t n = 200000;
	char *yaml = malloc(n + 8);

	(void)state;
	assert_non_null(yaml);
	memcpy(yaml, "vms: ", 5);
	memset(yaml + 5, '[', n);
	yaml[n + 5] = '\0';
	clock_gettime(CLOCK_MONOTONIC, &a);
	cfg = load(&t, yaml, &err);
	clock_gettime(CLOCK_MONOTONIC, &b);
	assert_null(cfg);
	assert_non_null(strstr(err.msg, "t.yaml:1: nested deeper than 8 levels"));
	assert_true((b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000 < 500);
	tmp_remove(&t);
	free(yaml);
	/* Four levels, as a config has them, are fine. */
	config_free(load_ok(&t, "backends:\n  - {id: 1, address: 10.0.0.1, paths: [1]}\n"
				"uplinks: [{interface: up0}]\n"
				"paths: [{id: 1, uplink: up0, next_hop: fib}]\n"));
	tmp_remove(&t);
}

static void test_size_cap(void **state)
{
	struct vsn_error err = {.msg = ""};
	struct tmp t = {.dir = ""};
	FILE *f;

	(void)state;
	tmp_write(&t, "# big\n");
	f = fopen(t.path, "r+");
	assert_non_null(f);
	assert_int_equal(fseek(f, 9 << 20, SEEK_SET), 0);
	assert_int_equal(fputc('\n', f), '\n');
	assert_int_equal(fclose(f), 0);
	assert_null(config_load(t.path, &err));
	assert_non_null(strstr(err.msg, "file too large"));
	tmp_remove(&t);
}

/* A NUL byte is reported on its own line, not on line 1. */
static void test_nul_line(void **state)
{
	static const char yaml[] = "vms: []\nupl\0inks: []\n";
	struct vsn_error err = {.msg = ""};
	struct tmp t = {.dir = ""};
	char want[PATH_MAX + 16];
	FILE *f;

	(void)state;
	tmp_write(&t, "");
	f = fopen(t.path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(yaml, 1, sizeof(yaml) - 1, f), sizeof(yaml) - 1);
	assert_int_equal(fclose(f), 0);
	assert_null(config_load(t.path, &err));
	snprintf(want, sizeof(want), "%s:2: syntax error", t.path);
	if (strncmp(err.msg, want, strlen(want)))
		print_error("got: %s\n", err.msg);
	assert_int_equal(strncmp(err.msg, want, strlen(want)), 0);
	tmp_remove(&t);
}

/* A file that is no config (vsn apply /etc/shadow): its lines are not echoed. */
static void test_no_echo(void **state)
{
	static const char *const docs[] = {
	    "root:$y$j9T$SECRETHASH:20228:0:99999:7:::\ndaemon:*:20228:0:99999:7:::\n",
	    "root:$y$j9T$SECRETHASH:20228:0:99999:7:::\nroot:$y$j9T$SECRETHASH:20228:0:99999:7:::"
	    "\n",
	    "vms:\n  - {name: a, id: 1, interface: x, \"SECRET HASH\": 1}\n",
	};
	struct vsn_error err;
	struct tmp t = {.dir = ""};
	unsigned i;

	(void)state;
	for (i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
		err.msg[0] = '\0';
		assert_null(load(&t, docs[i], &err));
		if (strstr(err.msg, "SECRET"))
			print_error("echoed: %s\n", err.msg);
		assert_null(strstr(err.msg, "SECRET"));
		assert_non_null(strstr(err.msg, "t.yaml:"));
		tmp_remove(&t);
	}
	/* A key that is a name is still named. */
	expect_error("vms: []\npassword: hunter2\n", 2, "password", "unknown key");
}

/* count_lines: lines in s (the last without its newline counts). */
static unsigned count_lines(const char *s)
{
	unsigned n = *s ? 1 : 0;

	for (; *s; s++)
		n += *s == '\n' && s[1];
	return n;
}

/* Every error of a file, each with FILE:LINE: FIELD, up to 20 and a count. */
static void test_all_errors(void **state)
{
	struct vsn_error err = {.msg = ""};
	struct tmp t = {.dir = ""};
	char yaml[4096] = "vms:\n", want[PATH_MAX + 64];
	size_t len = strlen(yaml);
	unsigned i;

	(void)state;
	/* Conversion: three bad items in two sections. */
	assert_null(load(&t,
			 "vms:\n"
			 "  - {name: a, id: x, interface: y}\n"
			 "  - {name: b, id: 2, interface: z}\n"
			 "  - {name: c, id: 99999, interface: w}\n"
			 "uplinks: [{interface: up0, capacity: 10gbps}]\n",
			 &err));
	assert_int_equal(count_lines(err.msg), 3);
	snprintf(want, sizeof(want), "%s:2: vms[0].id: expected an integer", t.path);
	assert_non_null(strstr(err.msg, want));
	snprintf(want, sizeof(want), "\n%s:4: vms[2].id: 99999 is out of range", t.path);
	assert_non_null(strstr(err.msg, want));
	snprintf(want, sizeof(want), "\n%s:5: uplinks[0].capacity: invalid rate", t.path);
	assert_non_null(strstr(err.msg, want));
	tmp_remove(&t);
	/* Whole-model checks: two unknown references. */
	assert_null(load(&t,
			 BASE
			 "volumes:\n  - {id: 1, vm: vm9, address: 192.168.100.10, backends: [1]}\n"
			 "routes:\n  - {vm: vm1, volume: 7, backend: 1, path: 2}\n",
			 &err));
	assert_int_equal(count_lines(err.msg), 2);
	assert_non_null(strstr(err.msg, "t.yaml:13: volumes[0].vm: unknown vm 'vm9'"));
	assert_non_null(strstr(err.msg, "t.yaml:15: routes[0].volume: unknown volume 7"));
	tmp_remove(&t);
	/* 25 bad VMs: 20 lines and the rest counted. */
	for (i = 0; i < 25; i++)
		len += (size_t)snprintf(yaml + len, sizeof(yaml) - len,
					"  - {name: v%u, id: bad, interface: x%u}\n", i, i);
	assert_null(load(&t, yaml, &err));
	assert_int_equal(count_lines(err.msg), 21);
	snprintf(want, sizeof(want), "%s:21: vms[19].id: ", t.path);
	assert_non_null(strstr(err.msg, want));
	assert_null(strstr(err.msg, "vms[20]"));
	snprintf(want, sizeof(want), "\n%s: ... and 5 more errors", t.path);
	assert_non_null(strstr(err.msg, want));
	tmp_remove(&t);
}

/* An empty file removes every mapping: config_read() wants it said. */
static void test_empty_needs_flag(void **state)
{
	static const char *const docs[] = {"", "# nothing\n", "controller: {tick_ms: 50}\n"};
	struct vsn_error err = {.msg = ""};
	struct vsn_config *cfg;
	struct tmp t = {.dir = ""};
	unsigned i;

	(void)state;
	for (i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
		tmp_write(&t, docs[i]);
		assert_null(config_read(t.path, 0, &err));
		assert_non_null(strstr(err.msg, "--allow-empty"));
		assert_non_null(strstr(err.msg, t.path));
		cfg = config_read(t.path, CONFIG_ALLOW_EMPTY, &err);
		assert_non_null(cfg);
		assert_true(config_is_empty(cfg));
		config_free(cfg);
		tmp_remove(&t);
	}
	tmp_write(&t, VALID);
	cfg = config_read(t.path, 0, &err);
	assert_non_null(cfg);
	assert_false(config_is_empty(cfg));
	config_free(cfg);
	tmp_remove(&t);
}

static void test_parse_rate(void **state)
{
	uint64_t v = 0;

	(void)state;
	assert_int_equal(parse_rate("10gbit", &v), 0);
	assert_true(v == 10000000000ULL);
	assert_int_equal(parse_rate("100mbit", &v), 0);
	assert_true(v == 100000000ULL);
	assert_int_equal(parse_rate("1g", &v), 0);
	assert_true(v == 1000000000ULL);
	assert_int_equal(parse_rate("500kbit", &v), 0);
	assert_true(v == 500000ULL);
	assert_int_equal(parse_rate("1000000", &v), 0);
	assert_true(v == 1000000ULL);
	assert_int_equal(parse_rate("25Gbit", &v), 0);
	assert_true(v == 25000000000ULL);
	assert_int_equal(parse_rate("0", &v), 0);
	assert_true(v == 0);
	assert_int_not_equal(parse_rate("", &v), 0);
	assert_int_not_equal(parse_rate(NULL, &v), 0);
	assert_int_not_equal(parse_rate("gbit", &v), 0);
	assert_int_not_equal(parse_rate("10 gbit", &v), 0);
	assert_int_not_equal(parse_rate("10gbps", &v), 0);
	assert_int_not_equal(parse_rate("-1", &v), 0);
	assert_int_not_equal(parse_rate("1.5g", &v), 0);
	assert_int_not_equal(parse_rate("10xbit", &v), 0);
	assert_int_not_equal(parse_rate("18446744073709551616", &v), 0);
	assert_int_not_equal(parse_rate("18446744073709552tbit", &v), 0);
	assert_int_equal(parse_rate("18446744073709551615", &v), 0);
	assert_true(v == UINT64_MAX);
}

static void test_parse_mac(void **state)
{
	uint8_t mac[6] = {0};
	static const uint8_t want[6] = {0x02, 0xab, 0xcd, 0x00, 0x01, 0xff};

	(void)state;
	assert_int_equal(parse_mac("02:AB:cd:00:01:ff", mac), 0);
	assert_memory_equal(mac, want, 6);
	assert_int_not_equal(parse_mac("02:ab:cd:00:01", mac), 0);
	assert_int_not_equal(parse_mac("02:ab:cd:00:01:ff:00", mac), 0);
	assert_int_not_equal(parse_mac("02-ab-cd-00-01-ff", mac), 0);
	assert_int_not_equal(parse_mac("0g:ab:cd:00:01:ff", mac), 0);
	assert_int_not_equal(parse_mac("", mac), 0);
	assert_int_not_equal(parse_mac(NULL, mac), 0);
	assert_memory_equal(mac, want, 6); /* untouched on failure */
}

static void test_parse_addr(void **state)
{
	static const uint8_t v4[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 1, 2};
	static const uint8_t v6[16] = {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10};
	struct vsn_addr a;
	bool is_v6 = true;

	(void)state;
	assert_int_equal(parse_addr("10.0.1.2", &a, &is_v6), 0);
	assert_false(is_v6);
	assert_memory_equal(&a, v4, 16);
	assert_int_equal(parse_addr("::ffff:10.0.1.2", &a, &is_v6), 0);
	assert_false(is_v6);
	assert_memory_equal(&a, v4, 16);
	assert_int_equal(parse_addr("fd00::10", &a, &is_v6), 0);
	assert_true(is_v6);
	assert_memory_equal(&a, v6, 16);
	assert_int_equal(parse_addr("fd00::10", &a, NULL), 0);
	assert_int_not_equal(parse_addr("10.0.1", &a, &is_v6), 0);
	assert_int_not_equal(parse_addr("10.0.1.256", &a, &is_v6), 0);
	assert_int_not_equal(parse_addr("fd00::1::2", &a, &is_v6), 0);
	assert_int_not_equal(parse_addr("", &a, &is_v6), 0);
	assert_int_not_equal(parse_addr(NULL, &a, &is_v6), 0);
}

/* ------------------------------------------------------------------ */
/* Error cases: the exact line and field must be in the message.       */

struct err_case {
	const char *yaml;
	unsigned line;
	const char *field;
	const char *why;
};

static void run_err(void **state)
{
	const struct err_case *e = *state;

	expect_error(e->yaml, e->line, e->field, e->why);
}

#define ERR(_name, _yaml, _line, _field, _why)                                                     \
	{                                                                                          \
		.name = #_name, .test_func = run_err,                                              \
		.initial_state = (void *)&(const struct err_case){                                 \
		    .yaml = _yaml,                                                                 \
		    .line = _line,                                                                 \
		    .field = _field,                                                               \
		    .why = _why,                                                                   \
		},                                                                                 \
	}

#define ROUTE	  "routes:\n  - {vm: vm1, volume: 1, backend: 1, path: 2}\n"
#define VOL(body) "volumes:\n  - {" body "}\n"
#define VOL1	  VOL("id: 1, vm: vm1, address: 192.168.100.10, backends: [1, 2]")

/* One case per block, laid out like the YAML it holds. */
/* clang-format off */
static const struct CMUnitTest error_tests[] = {
	ERR(syntax_error,
	    "vms:\n"
	    "  - name: vm1\n"
	    "    id: 1\n"
	    "   interface: x\n",
	    4, "syntax error", "did not find expected"),
	ERR(syntax_error_flow,
	    "vms:\n"
	    "  - {name: vm1, id: 1, interface: x\n"
	    "uplinks: []\n",
	    3, "syntax error", "expected ',' or '}'"),
	ERR(unknown_key,
	    "vms:\n"
	    "  - name: vm1\n"
	    "    id: 1\n"
	    "    interface: vsnt-vm1\n"
	    "    colour: red\n",
	    5, "vms[0].colour", "unknown key"),
	ERR(unknown_key_flow, BASE VOL1 "routes:\n  - {vm: vm1, volume: 1, backend: 1, pth: 2}\n",
	    15, "routes[0].pth", "unknown key"),
	ERR(unknown_section, BASE "\n\nvolume: []\n",
	    14, "volume", "unknown key"),
	ERR(bad_type_int, BASE VOL("id: one, vm: vm1, address: 192.168.100.10, backends: [1]"),
	    13, "volumes[0].id", "expected an integer, got 'one'"),
	ERR(bad_type_float, "vms:\n  - {name: a, id: 1.5, interface: x}\n",
	    2, "vms[0].id", "expected an integer"),
	ERR(bad_type_list,
	    "vms:\n"
	    "  - id: 1\n"
	    "    interface: x\n"
	    "    name: [vm1]\n",
	    4, "vms[0].name", "expected a scalar, got a sequence"),
	ERR(bad_type_section, "vms:\n  - {name: a, id: 1, interface: x}\nuplinks: up0\n",
	    3, "uplinks", "expected a sequence, got a scalar"),
	ERR(bad_type_item, "uplinks:\n  - up0\n",
	    2, "uplinks[0]", "expected a mapping, got a scalar"),
	ERR(not_a_mapping, "- vms\n", 1, "top level", "expected a mapping"),
	ERR(bad_list_entry,
	    "backends:\n"
	    "  - id: 1\n"
	    "    address: 10.0.0.1\n"
	    "    paths:\n"
	    "      - 1\n"
	    "      - two\n",
	    6, "backends[0].paths[1]", "expected an integer"),
	ERR(duplicate_key,
	    "vms:\n"
	    "  - name: vm1\n"
	    "    id: 1\n"
	    "    interface: x\n"
	    "    id: 2\n",
	    5, "vms[0].id", "duplicate key"),
	ERR(duplicate_section, "vms: []\nuplinks: []\nvms: []\n",
	    3, "vms", "duplicate key"),
	ERR(bad_mac,
	    "uplinks: [{interface: up0}]\n"
	    "paths:\n"
	    "  - {id: 1, uplink: up0, next_hop: \"02:00:00:00:01\"}\n",
	    3, "paths[0].next_hop",
	    "'02:00:00:00:01' is not a MAC address, a gateway address or \"fib\""),
	ERR(multicast_mac,
	    "uplinks: [{interface: up0}]\n"
	    "paths:\n"
	    "  - {id: 1, uplink: up0, next_hop: fib,\n"
	    "     source_mac: \"01:00:5e:00:00:01\"}\n",
	    4, "paths[0].source_mac", "not a unicast MAC"),
	ERR(controller_unknown_key,
	    "vms: []\n"
	    "controller:\n"
	    "  tick_ms: 50\n"
	    "  tik_ms: 50\n",
	    4, "controller.tik_ms", "unknown key"),
	ERR(controller_out_of_range,
	    "controller:\n"
	    "  silent_ms: 5\n",
	    2, "controller.silent_ms", "5 is out of range 20..60000"),
	ERR(controller_silent_vs_watch,
	    "controller: {watch_ms: 100, silent_ms: 150}\n",
	    1, "controller.silent_ms", "must be at least twice watch_ms"),
	ERR(controller_timeout_vs_interval,
	    "controller:\n"
	    "  health_interval_ms: 500\n"
	    "  health_timeout_ms: 500\n",
	    3, "controller.health_timeout_ms", "must be below health_interval_ms"),
	ERR(controller_bad_bool,
	    "controller:\n"
	    "  observe_only: yes\n",
	    2, "controller.observe_only", "unknown observe_only 'yes' (false or true)"),
	ERR(controller_relative_socket,
	    "controller:\n"
	    "  socket: vsn.sock\n",
	    2, "controller.socket", "must be an absolute path"),
	ERR(controller_not_mapping, "controller: [1]\n",
	    1, "controller", "expected a mapping, got a sequence"),
	ERR(health_needs_nqn,
	    "backends:\n"
	    "  - {id: 1, address: 10.0.0.1, paths: [1], health: nvme-tcp}\n",
	    2, "backends[0].health", "nvme-tcp health polling needs nqn"),
	ERR(vm_min_over_max,
	    "vms:\n"
	    "  - {name: a, id: 1, interface: x, min_rate: 20mbit, max_rate: 10mbit}\n",
	    2, "vms[0].min_rate", "20mbit is above max_rate 10mbit"),
	ERR(bad_rate,
	    "uplinks:\n"
	    "  - {interface: up0, capacity: 10gbit}\n"
	    "  - {interface: up1, capacity: 10gbps}\n",
	    3, "uplinks[1].capacity", "invalid rate '10gbps'"),
	ERR(missing_next_hop,
	    "uplinks: [{interface: up0}]\n"
	    "paths:\n"
	    "  - id: 1\n"
	    "    uplink: up0\n"
	    "    vlan: 10\n",
	    3, "paths[0].next_hop", "missing"),
	ERR(missing_id, "vms:\n  - {name: a, interface: x}\n",
	    2, "vms[0].id", "missing"),
	ERR(vlan_out_of_range,
	    "uplinks: [{interface: up0}]\n"
	    "paths:\n"
	    "  - id: 1\n"
	    "    uplink: up0\n"
	    "    next_hop: fib\n"
	    "    vlan: 4095\n",
	    6, "paths[0].vlan", "4095 is out of range 1..4094"),
	ERR(ttl_out_of_range,
	    "uplinks: [{interface: up0}]\n"
	    "paths: [{id: 1, uplink: up0, next_hop: fib, ttl: 0}]\n",
	    2, "paths[0].ttl", "out of range 1..255"),
	ERR(flow_label_out_of_range,
	    "uplinks: [{interface: up0}]\n"
	    "paths: [{id: 1, uplink: up0, next_hop: fib, flow_label: 0x100000}]\n",
	    2, "paths[0].flow_label", "out of range"),
	ERR(id_out_of_range,
	    "uplinks: [{interface: up0}]\n"
	    "paths: [{id: 256, uplink: up0, next_hop: fib}]\n",
	    2, "paths[0].id", "out of range 1..255"),
	ERR(weight_out_of_range,
	    "backends: [{id: 1, address: 10.0.0.1, weight: 0, paths: [1]}]\n",
	    1, "backends[0].weight", "out of range 1..65535"),
	ERR(bad_state,
	    "backends: [{id: 1, address: 10.0.0.1, state: sleeping, paths: [1]}]\n",
	    1, "backends[0].state", "unknown state 'sleeping'"),
	ERR(bad_protocol, BASE VOL("id: 1, vm: vm1, address: 10.9.9.9, protocol: iscsi, backends: [1]"),
	    13, "volumes[0].protocol", "unknown protocol 'iscsi'"),
	ERR(bad_address,
	    "backends:\n"
	    "  - id: 1\n"
	    "    address: 10.0.0.300\n"
	    "    paths: [1]\n",
	    3, "backends[0].address", "invalid IP address '10.0.0.300'"),
	ERR(multicast_address, BASE VOL("id: 1, vm: vm1, address: 239.1.1.1, backends: [1]"),
	    13, "volumes[0].address", "not a unicast address"),
	ERR(bad_interface_name, "vms: [{name: a, id: 1, interface: this-name-is-too-long}]\n",
	    1, "vms[0].interface", "invalid interface name"),
	ERR(vm_named_host, "vms: [{name: host, id: 1, interface: x}]\n",
	    1, "vms[0].name", "reserved"),
	/* Whole-model checks (config_validate): lines are the fields' own. */
	ERR(duplicate_id,
	    BASE "  - {id: 1, address: 10.0.3.3, paths: [1]}\n",
	    12, "backends[2].id", "id 1 is already used by backends[0]"),
	ERR(duplicate_vm_name,
	    "vms:\n"
	    "  - {name: vm1, id: 1, interface: a, addresses: [10.0.0.2, '2001:db8::2']}\n"
	    "  - {name: vm1, id: 2, interface: b, addresses: [10.0.6.2]}\n",
	    3, "vms[1].name", "already used"),
	ERR(duplicate_vm_interface,
	    "vms:\n"
	    "  - {name: vm1, id: 1, interface: a, addresses: [10.0.0.2, '2001:db8::2']}\n"
	    "  - {name: vm2, id: 2, interface: a, addresses: [10.0.6.2]}\n",
	    3, "vms[1].interface", "already used"),
	ERR(vm_interface_is_uplink,
	    "uplinks: [{interface: up0}]\n"
	    "vms:\n"
	    "  - name: vm1\n"
	    "    id: 1\n"
	    "    interface: up0\n"
	    "    addresses: [10.0.0.2]\n",
	    5, "vms[0].interface", "up0 is also an uplink"),
	ERR(unknown_uplink,
	    "uplinks: [{interface: up0}]\n"
	    "paths: [{id: 1, uplink: up9, next_hop: fib}]\n",
	    2, "paths[0].uplink", "unknown uplink 'up9'"),
	ERR(unknown_path_ref,
	    "uplinks: [{interface: up0}]\n"
	    "paths: [{id: 1, uplink: up0, next_hop: fib}]\n"
	    "backends: [{id: 1, address: 10.0.0.1, paths: [1, 4]}]\n",
	    3, "backends[0].paths[1]", "unknown path 4"),
	ERR(unknown_path_ref_block,
	    "uplinks: [{interface: up0}]\n"
	    "paths: [{id: 1, uplink: up0, next_hop: fib}]\n"
	    "backends:\n"
	    "  - id: 1\n"
	    "    address: 10.0.0.1\n"
	    "    paths:\n"
	    "      - 1\n"
	    "      - 4\n",
	    8, "backends[0].paths[1]", "unknown path 4"),
	ERR(snat_family,
	    "uplinks: [{interface: up0}]\n"
	    "paths: [{id: 1, uplink: up0, next_hop: fib, source_address: 10.0.0.9}]\n"
	    "backends: [{id: 1, address: \"fd00::1\", paths: [1]}]\n",
	    3, "backends[0].paths[0]", "is IPv4 but the backend is IPv6"),
	ERR(unknown_vm_ref, BASE VOL("id: 1, vm: vm9, address: 192.168.100.10, backends: [1]"),
	    13, "volumes[0].vm", "unknown vm 'vm9'"),
	ERR(unknown_backend_ref, BASE VOL("id: 1, vm: vm1, address: 192.168.100.10, backends: [1, 9]"),
	    13, "volumes[0].backends[1]", "unknown backend 9"),
	ERR(backend_listed_twice, BASE VOL("id: 1, vm: vm1, address: 192.168.100.10, backends: [2, 2]"),
	    13, "volumes[0].backends[1]", "listed twice"),
	ERR(family_mismatch, BASE VOL("id: 1, vm: vm1, address: \"fd00::10\", backends: [1]"),
	    13, "volumes[0].backends[0]", "backend 1 is IPv4 but the volume address fd00::10 is IPv6"),
	ERR(duplicate_volume_address,
	    BASE
	    "volumes:\n"
	    "  - {id: 1, vm: vm1, address: 192.168.100.10, backends: [1]}\n"
	    "  - id: 2\n"
	    "    vm: vm1\n"
	    "    address: 192.168.100.10\n"
	    "    port: 4420\n"
	    "    backends: [2]\n",
	    16, "volumes[1].address", "duplicate volume address 192.168.100.10:4420 for vm1"),
	ERR(roce_nat, BASE "  - {id: 3, address: 10.0.1.3, port: 4791, paths: [1]}\n"
	    VOL("id: 1, vm: vm1, address: 192.168.100.10, protocol: roce, backends: [3]"),
	    14, "volumes[0].address", "cannot be NATed"),
	ERR(roce_port, BASE "  - {id: 3, address: 10.0.1.3, paths: [1]}\n"
	    VOL("id: 1, vm: vm1, address: 10.0.1.3, protocol: roce, backends: [3]"),
	    14, "volumes[0].port", "cannot be NATed"),
	ERR(roce_two_backends, BASE VOL("id: 1, vm: vm1, address: 10.0.1.2, protocol: roce, backends: [1, 2]"),
	    13, "volumes[0].backends", "exactly one backend"),
	ERR(route_unknown_volume, BASE VOL1 "routes:\n  - {vm: vm1, volume: 2, backend: 1, path: 2}\n",
	    15, "routes[0].volume", "unknown volume 2"),
	ERR(route_unknown_vm, BASE VOL1 "routes:\n  - {vm: vm7, volume: 1, backend: 1, path: 2}\n",
	    15, "routes[0].vm", "unknown vm 'vm7'"),
	ERR(route_wrong_vm, BASE VOL1 "routes:\n  - {vm: host, volume: 1, backend: 1, path: 2}\n",
	    15, "routes[0].vm", "volume 1 belongs to 'vm1'"),
	ERR(route_backend_not_in_volume,
	    BASE VOL("id: 1, vm: vm1, address: 192.168.100.10, backends: [2]") ROUTE,
	    15, "routes[0].backend", "backend 1 is not one of volume 1's backends"),
	ERR(route_path_not_in_backend,
	    BASE VOL1
	    "routes:\n"
	    "  - {vm: vm1, volume: 1, backend: 1, path: 2}\n"
	    "  - vm: vm1\n"
	    "    volume: 1\n"
	    "    backend: 2\n"
	    "    path: 1\n",
	    19, "routes[1].path", "path 1 is not one of backend 2's paths"),
	ERR(duplicate_route, BASE VOL1 ROUTE "  - {vm: vm1, volume: 1, backend: 1, path: 1}\n",
	    16, "routes[1].backend", "duplicate route"),
};
/* clang-format on */

int main(void)
{
	static const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_valid_flow),
	    cmocka_unit_test(test_valid_block),
	    cmocka_unit_test(test_gateway_next_hop),
	    cmocka_unit_test(test_valid_other),
	    cmocka_unit_test(test_empty),
	    cmocka_unit_test(test_validate_model),
	    cmocka_unit_test(test_truncated),
	    cmocka_unit_test(test_no_file),
	    cmocka_unit_test(test_parse_rate),
	    cmocka_unit_test(test_parse_mac),
	    cmocka_unit_test(test_parse_addr),
	    cmocka_unit_test(test_validate_field_lines),
	    cmocka_unit_test(test_nesting_cap),
	    cmocka_unit_test(test_size_cap),
	    cmocka_unit_test(test_nul_line),
	    cmocka_unit_test(test_no_echo),
	    cmocka_unit_test(test_all_errors),
	    cmocka_unit_test(test_empty_needs_flag),
	};
	int failed;

	failed = cmocka_run_group_tests_name("config", tests, NULL, NULL);
	failed += cmocka_run_group_tests_name("config errors", error_tests, NULL, NULL);
	return failed ? 1 : 0;
}
