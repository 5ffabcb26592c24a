// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The cluster's pure parts: the cluster section of the config, one file for
 * many hosts (host keys), the check of a desired configuration for every
 * host, the store's reading of keys, the fold of hosts' observations into a
 * view, the quorum, and the leader's weight steps.  etcd itself: the
 * cluster suite (tests/cluster/).
 */
#include <errno.h>
#include <linux/types.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cluster/cluster.h"
#include "cluster/store.h"
#include "config/config.h"

#define SHARED                                                                                     \
	"backends:\n"                                                                              \
	"  - {id: 1, address: 10.3.1.2, paths: [1], capacity: 100}\n"                              \
	"  - {id: 2, address: 10.3.2.2, paths: [1]}\n"

/* Two hosts with the same interface and path ids: valid per host only. */
#define TWO_HOSTS                                                                                  \
	SHARED "uplinks:\n"                                                                        \
	       "  - {interface: up0, host: h1}\n"                                                  \
	       "  - {interface: up0, host: h2}\n"                                                  \
	       "paths:\n"                                                                          \
	       "  - {id: 1, uplink: up0, next_hop: \"02:00:00:00:00:01\", host: h1}\n"             \
	       "  - {id: 1, uplink: up0, next_hop: \"02:00:00:00:00:02\", host: h2}\n"             \
	       "vms:\n"                                                                            \
	       "  - {name: a, id: 1, interface: t0, addresses: [10.0.0.2], host: h1}\n"            \
	       "  - {name: a, id: 1, interface: t0, addresses: [10.0.0.3], host: h2}\n"            \
	       "volumes:\n"                                                                        \
	       "  - {id: 1, vm: a, address: 192.168.100.10, backends: [1, 2], host: h1}\n"         \
	       "  - {id: 1, vm: a, address: 192.168.100.10, backends: [2], host: h2}\n"

static struct vsn_config *parse(const char *yaml, const char *host, struct vsn_error *err)
{
	return config_parse("t.yaml", yaml, strlen(yaml), 0, host, err);
}

static void test_cluster_section(void **state)
{
	struct vsn_error err = {.msg = ""};
	struct vsn_config *cfg;

	(void)state;
	/* Alone, it is a config: the rest comes from etcd. */
	cfg = parse("cluster:\n  endpoints: [http://127.0.0.1:2379]\n  host: h1\n", NULL, &err);
	if (!cfg)
		print_error("%s\n", err.msg);
	assert_non_null(cfg);
	assert_true(cfg->cluster.enabled);
	assert_int_equal(cfg->cluster.n_endpoints, 1);
	assert_string_equal(cfg->cluster.prefix, "/vsn/");
	assert_int_equal(cfg->cluster.lease_ttl_s, 3);
	assert_int_equal(cfg->cluster.publish_ms, 1000);
	assert_int_equal(cfg->cluster.quorum, 2);
	config_free(cfg);

	cfg = parse("cluster: {host: h1}\n", NULL, &err);
	assert_null(cfg);
	assert_non_null(strstr(err.msg, "cluster.endpoints"));
	cfg = parse("cluster: {endpoints: [127.0.0.1:2379]}\n", NULL, &err);
	assert_null(cfg);
	assert_non_null(strstr(err.msg, "must start with http:// or https://"));
	cfg = parse("cluster: {endpoints: [https://a:1], cert_file: /c.pem}\n", NULL, &err);
	assert_null(cfg);
	assert_non_null(strstr(err.msg, "cert_file and key_file go together"));
	cfg = parse("cluster: {endpoints: [https://a:1], lease_ttl_s: 1, publish_ms: 1000}\n", NULL,
		    &err);
	assert_null(cfg);
	assert_non_null(strstr(err.msg, "below lease_ttl_s"));
	cfg = parse("cluster: {endpoints: [http://a:1], host: 'a b'}\n", NULL, &err);
	assert_null(cfg);
	assert_non_null(strstr(err.msg, "not a host name"));
	cfg = parse("cluster: {endpoints: [http://a:1], prefix: vsn}\n", NULL, &err);
	assert_null(cfg);
	assert_non_null(strstr(err.msg, "must start and end with '/'"));
}

static void test_host_keys(void **state)
{
	struct vsn_error err = {.msg = ""};
	struct vsn_config *cfg;
	char hosts[64];

	(void)state;
	cfg = parse(TWO_HOSTS, "h2", &err);
	if (!cfg)
		print_error("%s\n", err.msg);
	assert_non_null(cfg);
	assert_int_equal(cfg->n_uplinks, 1);
	assert_int_equal(cfg->n_paths, 1);
	assert_string_equal(cfg->paths[0].next_hop_mac, "02:00:00:00:00:02");
	assert_string_equal(cfg->vms[0].addresses[0], "10.0.0.3");
	assert_int_equal(cfg->volumes[0].n_backends, 1);
	assert_int_equal(cfg->n_backends, 2); /* shared */
	assert_int_equal(cfg->backends[0].capacity, 100);
	config_free(cfg);
	/* A host the file does not name gets the shared items only: here
	 * backends over paths it does not have, refused. */
	cfg = config_parse("t.yaml", TWO_HOSTS, strlen(TWO_HOSTS), 0, "h9", &err);
	assert_null(cfg);
	assert_non_null(strstr(err.msg, "paths"));
	/* Every host's part, checked as each will read it. */
	assert_int_equal(cluster_check_config("t.yaml", TWO_HOSTS, strlen(TWO_HOSTS), hosts,
					      sizeof(hosts), &err),
			 0);
	assert_string_equal(hosts, "h1,h2");
}

static void test_check_refuses(void **state)
{
	const char *bad_h2 = SHARED "uplinks:\n"
				    "  - {interface: up0, host: h1}\n"
				    "paths:\n"
				    "  - {id: 1, uplink: up0, next_hop: fib, host: h1}\n"
				    "  - {id: 1, uplink: up9, next_hop: fib, host: h2}\n";
	const char *with_cluster = SHARED "cluster: {endpoints: [http://a:1]}\n";
	struct vsn_error err = {.msg = ""};

	(void)state;
	/* h2's path names an uplink h2 does not have: refused, naming h2. */
	assert_int_equal(cluster_check_config("t.yaml", bad_h2, strlen(bad_h2), NULL, 0, &err),
			 -EINVAL);
	assert_non_null(strstr(err.msg, "for host h2"));
	assert_non_null(strstr(err.msg, "up9"));
	assert_int_equal(
	    cluster_check_config("t.yaml", with_cluster, strlen(with_cluster), NULL, 0, &err),
	    -EINVAL);
	assert_non_null(strstr(err.msg, "cluster section"));
}

static unsigned put(struct cl_store *s, const char *k, const char *v, int64_t rev)
{
	return cl_store_apply(s, k, v, v ? strlen(v) : 0, rev, rev);
}

static void test_store_and_view(void **state)
{
	struct cl_store s;
	struct cl_host_rec recs[8];
	struct cl_view v;
	const struct cl_backend_view *b;
	struct vsn_cfg_cluster cc = {.quorum = 2};
	unsigned n;

	(void)state;
	cl_store_init(&s);
	assert_true(put(&s, "hosts/h1", "{\"applied\":7}", 2) & CL_CH_VERDICT);
	put(&s, "hosts/h2", "{\"applied\":7}", 3);
	put(&s, "hosts/h3", "{\"applied\":6,\"error\":\"bad\"}", 4);
	put(&s, "obs/h1/b/1", "{\"conns\":10,\"verdict\":2,\"reason\":\"silent\",\"ts\":1}", 5);
	put(&s, "obs/h2/b/1", "{\"conns\":20,\"verdict\":0,\"ts\":1}", 6);
	put(&s, "obs/h3/b/1", "{\"conns\":30,\"verdict\":1,\"ts\":1}", 7);
	put(&s, "obs/h3/b/2", "{\"conns\":5,\"verdict\":0,\"ts\":1}", 8);
	/* Strangers in the key space are ignored, not fatal. */
	assert_int_equal(put(&s, "obs/h1/b/notanumber", "{}", 9), CL_CH_NONE);
	assert_int_equal(put(&s, "obs/h1/b/3", "not json", 9), CL_CH_NONE);
	assert_int_equal(put(&s, "hosts/h4", "[1]", 9), CL_CH_NONE);
	/* The leader: the lowest create revision. */
	assert_true(cl_store_apply(&s, "election/2", "h2", 2, 10, 10) & CL_CH_LEADER);
	cl_store_apply(&s, "election/1", "h1", 2, 11, 11);
	assert_string_equal(cl_store_leader(&s), "h2");

	n = cl_store_hosts(&s, recs, 8);
	assert_int_equal(n, 3);
	memset(&v, 0, sizeof(v));
	snprintf(v.host, sizeof(v.host), "h1");
	cl_view_fold(&v, recs, n, 2);
	b = cl_view_backend(&v, 1);
	assert_non_null(b);
	assert_int_equal(b->reaching, 3);
	assert_int_equal(b->failing, 1);
	assert_int_equal(b->degraded, 1);
	assert_int_equal(b->conns, 60);
	assert_int_equal(b->self_verdict, CL_FAILED);
	assert_string_equal(b->failing_hosts, "h1");
	assert_int_equal(cl_quorum(&cc, b), 2);
	b = cl_view_backend(&v, 2);
	assert_int_equal(b->reaching, 1);
	assert_int_equal(b->self_verdict, CL_NONE);
	assert_int_equal(cl_quorum(&cc, b), 1); /* one host reaches it: its word */

	/* A host's verdict changes: a wake-up; its figures alone: none. */
	assert_true(put(&s, "obs/h2/b/1", "{\"conns\":20,\"verdict\":2,\"ts\":2}", 12) &
		    CL_CH_VERDICT);
	assert_false(put(&s, "obs/h2/b/1", "{\"conns\":25,\"verdict\":2,\"ts\":3}", 13) &
		     CL_CH_VERDICT);
	/* A dead host's lease takes its keys: it reaches nothing any more. */
	put(&s, "hosts/h3", NULL, 14);
	put(&s, "obs/h3/b/1", NULL, 14);
	put(&s, "obs/h3/b/2", NULL, 14);
	n = cl_store_hosts(&s, recs, 8);
	assert_int_equal(n, 2);
	cl_view_fold(&v, recs, n, 4);
	b = cl_view_backend(&v, 1);
	assert_int_equal(b->reaching, 2);
	assert_int_equal(b->failing, 2);
	assert_null(cl_view_backend(&v, 2));
	cl_store_clear(&s);
}

static void test_weights(void **state)
{
	const struct cl_backend_cfg cfg[3] = {
	    {.id = 1, .weight = 100, .capacity = 100},
	    {.id = 2, .weight = 100, .capacity = 100},
	    {.id = 3, .weight = 100, .capacity = 0},
	};
	uint32_t prev[3] = {0, 0, 0}, out[3];
	struct cl_view v;

	(void)state;
	memset(&v, 0, sizeof(v));
	v.n_backends = 3;
	v.backends[0] = (struct cl_backend_view){.id = 1, .reaching = 3, .conns = 95};
	v.backends[1] = (struct cl_backend_view){.id = 2, .reaching = 3, .conns = 10};
	v.backends[2] = (struct cl_backend_view){.id = 3, .reaching = 3, .conns = 500};
	/* Step by step (a quarter of the weight at most) to the headroom. */
	assert_true(cl_weights_step(&v, cfg, 3, prev, out));
	assert_int_equal(out[0], 75);
	assert_int_equal(out[1], 90);
	assert_int_equal(out[2], 100); /* no capacity: its own weight */
	memcpy(prev, out, sizeof(prev));
	assert_true(cl_weights_step(&v, cfg, 3, prev, out));
	assert_int_equal(out[0], 50);
	for (int i = 0; i < 4; i++) {
		memcpy(prev, out, sizeof(prev));
		cl_weights_step(&v, cfg, 3, prev, out);
	}
	assert_int_equal(out[0], 5); /* never below 5 %: it must recover */
	assert_int_equal(out[1], 90);
	memcpy(prev, out, sizeof(prev));
	assert_false(cl_weights_step(&v, cfg, 3, prev, out));
	/* Emptied again: it climbs back a quarter of its weight per step. */
	v.backends[0].conns = 0;
	memcpy(prev, out, sizeof(prev));
	cl_weights_step(&v, cfg, 3, prev, out);
	assert_int_equal(out[0], 30);
	/* Degraded for most hosts: a tenth of its share. */
	v.backends[1].degraded = 2;
	memcpy(prev, out, sizeof(prev));
	cl_weights_step(&v, cfg, 3, prev, out);
	assert_int_equal(out[1], 65);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cluster_section), cmocka_unit_test(test_host_keys),
	    cmocka_unit_test(test_check_refuses),   cmocka_unit_test(test_store_and_view),
	    cmocka_unit_test(test_weights),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
