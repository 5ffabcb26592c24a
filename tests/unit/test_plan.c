// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* plan_build, the heart of `vsn apply`: a config resolved against a host
 * described by a table (interfaces, their roles, their MACs) into exactly
 * the map entries to write; and the errors that name file, line and field
 * when the host cannot take the config. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "config/plan.h"

/* The host the tests describe. */
struct fake_if {
	const char *name;
	unsigned ifindex;
	__u32 role; /* what vsn attached it as (0: not attached) */
	__u8 mac[6];
};

static const struct fake_if host_ifs[] = {
    {"tap0", 7, VSN_ROLE_VM, {0x52, 0x54, 0, 0, 0, 7}},
    {"tap1", 8, VSN_ROLE_VM, {0x52, 0x54, 0, 0, 0, 8}},
    {"eth1", 3, VSN_ROLE_UPLINK, {0x02, 0, 0, 0, 0x01, 0x03}},
    {"eth2", 4, VSN_ROLE_UPLINK, {0x02, 0, 0, 0, 0x01, 0x04}},
    {"eth9", 9, 0, {0x02, 0, 0, 0, 0x01, 0x09}},
};

static const struct fake_if *fake_find(const char *name, unsigned ifindex)
{
	for (size_t i = 0; i < sizeof(host_ifs) / sizeof(host_ifs[0]); i++)
		if (name ? !strcmp(host_ifs[i].name, name) : host_ifs[i].ifindex == ifindex)
			return &host_ifs[i];
	return NULL;
}

static unsigned fake_ifindex(const struct plan_host *h, const char *name)
{
	const struct fake_if *f = fake_find(name, 0);

	return f ? f->ifindex : 0;
}

static int fake_attached(const struct plan_host *h, unsigned ifindex, __u32 role)
{
	const struct fake_if *f = fake_find(NULL, ifindex);

	return f && f->role == role ? 0 : -ENOENT;
}

static int fake_mac(const struct plan_host *h, const char *name, __u8 mac[6])
{
	const struct fake_if *f = fake_find(name, 0);

	if (!f)
		return -ENODEV;
	memcpy(mac, f->mac, 6);
	return 0;
}

static const struct plan_host fake_host = {
    .ifindex = fake_ifindex, .attached = fake_attached, .mac = fake_mac, .ifaces_fd = -1};

static const char good_cfg[] =
    "vms:\n"
    "  - {name: vm1, id: 1, interface: tap0, addresses: [10.0.0.2, '2001:db8::2']}\n"
    "  - {name: vm2, id: 2, interface: tap1, max_rate: 1gbit, addresses: [10.0.6.2]}\n"
    "uplinks:\n"
    "  - {interface: eth1, capacity: 25gbit}\n"
    "  - {interface: eth2, capacity: 10gbit}\n"
    "paths:\n"
    "  - {id: 1, uplink: eth1, next_hop: \"52:54:00:12:34:56\", dscp: 26}\n"
    "  - {id: 2, uplink: eth2, next_hop: fib, vlan: 100}\n"
    "  - {id: 3, uplink: eth2, next_hop: 10.3.2.1, source_mac: \"02:aa:bb:cc:dd:ee\","
    " ttl: 9}\n"
    "backends:\n"
    "  - {id: 1, address: 10.3.1.2, port: 4420, paths: [1, 2]}\n"
    "  - {id: 2, address: 10.3.2.2, port: 4421, paths: [2, 1], tier: 1}\n"
    "  - {id: 3, address: 10.3.3.2, port: 4420, state: down, paths: [3]}\n"
    "volumes:\n"
    "  - {id: 1, vm: vm1, address: 192.168.100.10, port: 4420, backends: [1, 2]}\n"
    "  - {id: 2, vm: vm2, address: 192.168.100.10, port: 4420, backends: [3]}\n"
    "routes:\n"
    "  - {vm: vm1, volume: 1, backend: 2, path: 1}\n";

/* Write text as a config file and read it (config_read). */
static struct vsn_config *read_cfg(const char *text)
{
	char path[] = "/tmp/vsn-plan-XXXXXX";
	struct vsn_error err = {.msg = ""};
	struct vsn_config *cfg;
	int fd = mkstemp(path);
	FILE *f;

	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	cfg = config_read(path, CONFIG_ALLOW_EMPTY, &err);
	unlink(path);
	if (!cfg)
		fail_msg("config: %s", err.msg);
	return cfg;
}

static const struct plan_path *plan_path(const struct vsn_plan *p, __u32 id)
{
	for (unsigned i = 0; i < p->n_paths; i++)
		if (p->paths[i].id == id)
			return &p->paths[i];
	return NULL;
}

static const struct plan_route *plan_route(const struct vsn_plan *p, __u32 vm, __u32 vol, __u32 be)
{
	for (unsigned i = 0; i < p->n_routes; i++) {
		const struct vsn_route_key *k = &p->routes[i].k;

		if (k->vm_id == vm && k->volume_id == vol && k->backend_id == be)
			return &p->routes[i];
	}
	return NULL;
}

static void test_good_config(void **state)
{
	struct vsn_config *cfg = read_cfg(good_cfg);
	struct vsn_error err = {.msg = ""};
	static const __u8 uplink2_mac[6] = {0x02, 0, 0, 0, 0x01, 0x04};
	static const __u8 nh1[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
	static const __u8 own3[6] = {0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee};
	const struct plan_path *p;
	const struct plan_route *r;
	struct vsn_plan plan;

	(void)state;
	if (plan_build(cfg, &fake_host, &plan, &err))
		fail_msg("plan_build: %s", err.msg);
	/* VM interfaces by ifindex; vm2 has a rate, so its HTB class. */
	assert_int_equal(plan.n_vm_ifs, 2);
	assert_int_equal(plan.vm_ifs[0].ifindex, 7);
	assert_int_equal(plan.vm_ifs[0].v.vm_id, 1);
	assert_int_equal(plan.vm_ifs[0].v.tc_prio, 0);
	assert_int_equal(plan.vm_ifs[1].ifindex, 8);
	assert_int_equal(plan.vm_ifs[1].v.vm_id, 2);
	assert_int_not_equal(plan.vm_ifs[1].v.tc_prio, 0);
	/* Paths: the uplink's ifindex; MACs from the config or the host. */
	assert_int_equal(plan.n_paths, 3);
	p = plan_path(&plan, 1);
	assert_non_null(p);
	assert_int_equal(p->v.ifindex, 3);
	assert_memory_equal(p->v.dmac, nh1, 6);
	assert_memory_equal(p->v.smac, host_ifs[2].mac, 6);
	assert_int_equal(p->v.flags, VSN_PATH_DSCP);
	assert_int_equal(p->v.dscp, 26);
	p = plan_path(&plan, 2);
	assert_int_equal(p->v.ifindex, 4);
	assert_int_equal(p->v.flags, VSN_PATH_FIB | VSN_PATH_VLAN);
	assert_int_equal(p->v.vlan_id, 100);
	assert_memory_equal(p->v.smac, uplink2_mac, 6);
	p = plan_path(&plan, 3);
	assert_int_equal(p->v.flags, VSN_PATH_GW | VSN_PATH_TTL);
	assert_memory_equal(p->v.smac, own3, 6);
	assert_int_equal(p->v.ttl, 9);
	/* Backends keep state, port, tier and their paths, default first. */
	assert_int_equal(plan.n_backends, 3);
	assert_int_equal(plan.backends[1].v.port, 4421);
	assert_int_equal(plan.backends[1].v.tier, 1);
	assert_int_equal(plan.backends[1].v.paths[0], 2);
	assert_int_equal(plan.backends[2].v.state, VSN_BE_DOWN);
	/* Volumes: (VM, address, port, protocol) -> backends. */
	assert_int_equal(plan.n_volumes, 2);
	assert_int_equal(plan.volumes[0].k.vm_id, 1);
	assert_int_equal(plan.volumes[0].k.port, 4420);
	assert_int_equal(plan.volumes[0].v.n_backends, 2);
	assert_int_equal(plan.volumes[1].k.vm_id, 2);
	/* One route per (VM, volume, backend): its first path, unless the
	 * config's routes say otherwise. */
	assert_int_equal(plan.n_routes, 3);
	r = plan_route(&plan, 1, 1, 1);
	assert_non_null(r);
	assert_int_equal(r->v.path_id, 1);
	r = plan_route(&plan, 1, 1, 2);
	assert_non_null(r);
	assert_int_equal(r->v.path_id, 1); /* the override; its default is 2 */
	r = plan_route(&plan, 2, 2, 3);
	assert_non_null(r);
	assert_int_equal(r->v.path_id, 3);
	plan_free(&plan);
	config_free(cfg);
}

/* The host cannot take it: the error names file, line and field, and says
 * what to do.  from is replaced by to wherever it stands. */
static void expect_error(const char *from, const char *to, const char *want)
{
	char text[sizeof(good_cfg) + 256] = "";
	const char *at, *rest = good_cfg;
	struct vsn_error err = {.msg = ""};
	struct vsn_config *cfg;
	struct vsn_plan plan;

	assert_non_null(strstr(good_cfg, from));
	while ((at = strstr(rest, from))) {
		strncat(text, rest, at - rest);
		strcat(text, to);
		rest = at + strlen(from);
	}
	strcat(text, rest);
	cfg = read_cfg(text);
	assert_int_equal(plan_build(cfg, &fake_host, &plan, &err), -EINVAL);
	if (!strstr(err.msg, want))
		fail_msg("error '%s' does not say '%s'", err.msg, want);
	config_free(cfg);
}

static void test_host_errors(void **state)
{
	(void)state;
	expect_error("interface: tap1", "interface: tap5",
		     ":3: vms[1].interface: unknown interface 'tap5'");
	expect_error("interface: tap1", "interface: eth9",
		     ":3: vms[1].interface: interface 'eth9' is not attached as a VM interface; "
		     "run: vsn attach --vm eth9");
	expect_error(
	    "eth2", "eth9",
	    ":6: uplinks[1].interface: interface 'eth9' is not attached as an uplink; run: "
	    "vsn attach --uplink eth9");
	expect_error("eth2", "eth5", ":6: uplinks[1].interface: unknown interface 'eth5'");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_good_config),
	    cmocka_unit_test(test_host_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
