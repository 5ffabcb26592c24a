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

static void print_status(struct json_object *st)
{
	struct json_object *a;
	size_t i;

	printf("host %s: etcd %s, leader %s%s, lease %.1f s left\n", api_str(st, "host"),
	       json_object_get_boolean(json_object_object_get(st, "reachable")) ? "reachable"
										: "UNREACHABLE",
	       *api_str(st, "leader") ? api_str(st, "leader") : "(none)",
	       json_object_get_boolean(json_object_object_get(st, "leader_self")) ? " (this host)"
										  : "",
	       api_num(st, "lease_left_s"));
	printf("configuration: revision %lld in etcd, this host runs %lld%s%s\n",
	       (long long)api_int(st, "config_revision"),
	       (long long)api_int(st, "running_revision"),
	       *api_str(st, "applied_error") ? "; refused: " : "", api_str(st, "applied_error"));
	printf("moves: %lld granted, %lld refused by the cluster's budget\n",
	       (long long)api_int(st, "moves_granted"), (long long)api_int(st, "moves_refused"));
	if (*api_str(st, "last_error"))
		printf("last etcd error: %s\n", api_str(st, "last_error"));
	if (json_object_object_get_ex(st, "hosts", &a)) {
		printf("\n%-20s %-9s %-9s %-9s %s\n", "HOST", "APPLIED", "BACKENDS", "OBS AGE",
		       "ERROR");
		for (i = 0; i < json_object_array_length(a); i++) {
			struct json_object *h = json_object_array_get_idx(a, i);

			printf("%-20s %-9lld %-9lld %7.1f s %s\n", api_str(h, "name"),
			       (long long)api_int(h, "applied"), (long long)api_int(h, "backends"),
			       api_num(h, "observation_age_s"), api_str(h, "error"));
		}
	}
	if (json_object_object_get_ex(st, "backends", &a)) {
		printf("\n%-8s %-9s %-8s %-8s %-7s %-12s %-7s %s\n", "BACKEND", "STATE", "REACHING",
		       "FAILING", "QUORUM", "CONNECTIONS", "WEIGHT", "FAILING HOSTS");
		for (i = 0; i < json_object_array_length(a); i++) {
			struct json_object *b = json_object_array_get_idx(a, i);

			printf("%-8lld %-9s %-8lld %-8lld %-7lld %-12lld %-7lld %s\n",
			       (long long)api_int(b, "id"), api_str(b, "state"),
			       (long long)api_int(b, "hosts_reaching"),
			       (long long)api_int(b, "hosts_failing"),
			       (long long)api_int(b, "quorum"),
			       (long long)api_int(b, "connections"),
			       (long long)api_int(b, "weight"), api_str(b, "failing_hosts"));
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
		vsn_err("cluster: %s", api_str(resp, "error"));
		json_object_put(resp);
		return 1;
	}
	json_object_object_del(resp, "ok");
	if (o->json)
		printf("%s\n", json_object_to_json_string_ext(resp, JSON_C_TO_STRING_PRETTY));
	else if (!strcmp(argv[1], "status"))
		print_status(resp);
	else if (*api_str(resp, "config"))
		fputs(api_str(resp, "config"), stdout);
	else
		vsn_info(o, "no configuration in etcd yet ('vsn apply --cluster FILE' writes one)");
	json_object_put(resp);
	return 0;
}
