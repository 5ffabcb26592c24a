// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * vsn cluster: the cluster as this host's daemon sees it (docs/cluster.md).
 * The daemon holds the connection to etcd; these ask it through the API.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli/api_client.h"
#include "cli/cli.h"

static void cluster_usage(FILE *f)
{
	fprintf(f, "usage: vsn cluster status|config\n"
		   "\n"
		   "  status   the hosts (their leases alive), the leader, each backend as\n"
		   "           all hosts see it (hosts reaching and failing it, the quorum,\n"
		   "           cluster-wide connections and the leader's weight), and the\n"
		   "           configuration revision this host runs; -j: JSON\n"
		   "  config   the desired configuration in etcd (YAML; -j: with its revision)\n"
		   "\n"
		   "Change the configuration of every host with 'vsn apply --cluster FILE'.\n"
		   "Needs a running daemon whose config has a cluster section.\n");
}

static const char *jstr(struct json_object *o, const char *k)
{
	struct json_object *v;

	return json_object_object_get_ex(o, k, &v) && v ? json_object_get_string(v) : "";
}

static int64_t jint(struct json_object *o, const char *k)
{
	struct json_object *v;

	return json_object_object_get_ex(o, k, &v) ? json_object_get_int64(v) : 0;
}

static double jnum(struct json_object *o, const char *k)
{
	struct json_object *v;

	return json_object_object_get_ex(o, k, &v) ? json_object_get_double(v) : 0;
}

static void print_status(struct json_object *st)
{
	struct json_object *a;
	size_t i;

	printf("host %s: etcd %s, leader %s%s, lease %.1f s left\n", jstr(st, "host"),
	       json_object_get_boolean(json_object_object_get(st, "reachable")) ? "reachable"
										: "UNREACHABLE",
	       *jstr(st, "leader") ? jstr(st, "leader") : "(none)",
	       json_object_get_boolean(json_object_object_get(st, "leader_self")) ? " (this host)"
										  : "",
	       jnum(st, "lease_left_s"));
	printf("configuration: revision %lld in etcd, this host runs %lld%s%s\n",
	       (long long)jint(st, "config_revision"), (long long)jint(st, "running_revision"),
	       *jstr(st, "applied_error") ? "; refused: " : "", jstr(st, "applied_error"));
	printf("moves: %lld granted, %lld refused by the cluster's budget\n",
	       (long long)jint(st, "moves_granted"), (long long)jint(st, "moves_refused"));
	if (*jstr(st, "last_error"))
		printf("last etcd error: %s\n", jstr(st, "last_error"));
	if (json_object_object_get_ex(st, "hosts", &a)) {
		printf("\n%-20s %-9s %-9s %-9s %s\n", "HOST", "APPLIED", "BACKENDS", "OBS AGE",
		       "ERROR");
		for (i = 0; i < json_object_array_length(a); i++) {
			struct json_object *h = json_object_array_get_idx(a, i);

			printf("%-20s %-9lld %-9lld %7.1f s %s\n", jstr(h, "name"),
			       (long long)jint(h, "applied"), (long long)jint(h, "backends"),
			       jnum(h, "observation_age_s"), jstr(h, "error"));
		}
	}
	if (json_object_object_get_ex(st, "backends", &a)) {
		printf("\n%-8s %-9s %-8s %-8s %-7s %-12s %-7s %s\n", "BACKEND", "STATE", "REACHING",
		       "FAILING", "QUORUM", "CONNECTIONS", "WEIGHT", "FAILING HOSTS");
		for (i = 0; i < json_object_array_length(a); i++) {
			struct json_object *b = json_object_array_get_idx(a, i);

			printf("%-8lld %-9s %-8lld %-8lld %-7lld %-12lld %-7lld %s\n",
			       (long long)jint(b, "id"), jstr(b, "state"),
			       (long long)jint(b, "hosts_reaching"),
			       (long long)jint(b, "hosts_failing"), (long long)jint(b, "quorum"),
			       (long long)jint(b, "connections"), (long long)jint(b, "weight"),
			       jstr(b, "failing_hosts"));
		}
	}
}

int cmd_cluster(const struct vsn_opts *o, int argc, char **argv)
{
	struct json_object *req, *resp = NULL, *ok;
	struct vsn_error err = {.msg = ""};
	const char *what;
	int ret;

	if (cli_help_asked(argc, argv)) {
		cluster_usage(stdout);
		return 0;
	}
	if (argc != 2 || (strcmp(argv[1], "status") && strcmp(argv[1], "config"))) {
		cluster_usage(stderr);
		return 2;
	}
	what = !strcmp(argv[1], "status") ? "cluster-status" : "cluster-config";
	req = json_object_new_object();
	json_object_object_add(req, "cmd", json_object_new_string(what));
	ret = api_call(api_socket_path(), req, &resp, &err);
	json_object_put(req);
	if (ret == -ENOENT || ret == -ECONNREFUSED) {
		vsn_err("cluster: no daemon answers on %s: the cluster is seen through it (start "
			"'vsn daemon -c FILE' with a cluster section)",
			api_socket_path());
		return 1;
	}
	if (ret) {
		vsn_err("cluster: %s", err.msg);
		return 1;
	}
	if (!json_object_object_get_ex(resp, "ok", &ok) || !json_object_get_boolean(ok)) {
		vsn_err("cluster: %s", jstr(resp, "error"));
		json_object_put(resp);
		return 1;
	}
	json_object_object_del(resp, "ok");
	if (o->json)
		printf("%s\n", json_object_to_json_string_ext(resp, JSON_C_TO_STRING_PRETTY));
	else if (!strcmp(argv[1], "status"))
		print_status(resp);
	else if (*jstr(resp, "config"))
		fputs(jstr(resp, "config"), stdout);
	else
		vsn_info(o, "no configuration in etcd yet ('vsn apply --cluster FILE' writes one)");
	json_object_put(resp);
	return 0;
}
