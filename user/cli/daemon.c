// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * vsn daemon: run the controller (daemon/), or ask the running one for its
 * view ('vsn daemon status', 'vsn show health') through its API socket.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "config/config.h"
#include "cli/api_client.h"
#include "daemon/daemon.h"

static void daemon_usage(FILE *f)
{
	fprintf(f, "usage: vsn daemon -c FILE [--log FILE] [--observe-only] [--allow-empty]\n"
		   "\n"
		   "Run the controller: watch link state, path liveness, congestion and\n"
		   "backend health, and rewrite the routing maps (see docs/daemon.md).\n"
		   "Requires 'vsn attach' first.  The config's controller section sets the\n"
		   "policy, the API socket and the metrics directory.\n"
		   "\n"
		   "  -c, --config FILE  config file (required); SIGHUP re-reads it\n"
		   "  -l, --log FILE     decision log, one JSON object per line (default stdout)\n"
		   "  --observe-only     measure and log, never change a mapping\n"
		   "  --allow-empty      accept a config with nothing in it (at start and on\n"
		   "                     SIGHUP), which empties the maps; refused otherwise\n"
		   "\n"
		   "Signals: SIGHUP reloads the config atomically; SIGTERM/SIGINT stop the\n"
		   "daemon and leave the datapath forwarding ('vsn detach' removes it).\n"
		   "Other commands ('vsn route', 'vsn backend', 'vsn apply') go through the\n"
		   "daemon while it runs; 'vsn daemon status' shows its view (-j: JSON).\n");
}

static void print_health(struct json_object *st)
{
	struct json_object *a;
	size_t i;

	if (json_object_object_get_ex(st, "uplinks", &a)) {
		printf("%-10s %-8s %-12s %s\n", "UPLINK", "CARRIER", "UTILISATION", "CONGESTED");
		for (i = 0; i < json_object_array_length(a); i++) {
			struct json_object *u = json_object_array_get_idx(a, i);

			printf("%-10s %-8s %-12.2f %s\n", api_str(u, "interface"),
			       api_str(u, "carrier"), api_num(u, "utilisation"),
			       api_str(u, "congested"));
		}
	}
	if (json_object_object_get_ex(st, "paths", &a)) {
		printf("\n%-5s %-10s %-9s %-14s %-11s %s\n", "PATH", "UPLINK", "STATE", "RATE",
		       "LATENCY", "REASON");
		for (i = 0; i < json_object_array_length(a); i++) {
			struct json_object *p = json_object_array_get_idx(a, i);

			printf("%-5s %-10s %-9s %8.1f Mb/s %8.3f ms %s\n", api_str(p, "path"),
			       api_str(p, "uplink"), api_str(p, "state"),
			       api_num(p, "rate_bps") / 1e6, api_num(p, "latency_ms"),
			       api_str(p, "reason"));
		}
	}
	if (json_object_object_get_ex(st, "backends", &a)) {
		printf("\n%-8s %-9s %-8s %s\n", "BACKEND", "STATE", "DRAINED", "REASON");
		for (i = 0; i < json_object_array_length(a); i++) {
			struct json_object *b = json_object_array_get_idx(a, i);

			printf("%-8s %-9s %-8s %s\n", api_str(b, "backend"), api_str(b, "state"),
			       api_str(b, "drained"), api_str(b, "reason"));
		}
	}
}

int show_health(const struct vsn_opts *o)
{
	struct json_object *req = json_object_new_object(), *resp = NULL, *v;
	struct vsn_error err = {.msg = ""};
	int ret;

	json_object_object_add(req, "cmd", json_object_new_string("health"));
	ret = api_call(api_socket_path(), req, &resp, &err);
	json_object_put(req);
	if (ret) {
		vsn_err("show health: %s%s", err.msg,
			ret == -ENOENT || ret == -ECONNREFUSED
			    ? " (health is judged by 'vsn daemon': is it running? $VSN_SOCKET?)"
			    : "");
		return 1;
	}
	if (o->json) {
		struct json_object *out = json_object_new_object();

		for (const char *const *k =
			 (const char *const[]){"uplinks", "paths", "backends", "volumes", NULL};
		     *k; k++)
			if (json_object_object_get_ex(resp, *k, &v))
				json_object_object_add(out, *k, json_object_get(v));
		printf("%s\n", json_object_to_json_string_ext(out, JSON_C_TO_STRING_PLAIN));
		json_object_put(out);
	} else {
		print_health(resp);
	}
	json_object_put(resp);
	return 0;
}

static int daemon_status(const struct vsn_opts *o)
{
	struct json_object *req = json_object_new_object(), *resp = NULL;
	struct vsn_error err = {.msg = ""};
	int ret;

	json_object_object_add(req, "cmd", json_object_new_string("status"));
	ret = api_call(api_socket_path(), req, &resp, &err);
	json_object_put(req);
	if (ret) {
		vsn_err("%s%s", err.msg,
			ret == -ENOENT || ret == -ECONNREFUSED ? " (is 'vsn daemon' running?)"
							       : "");
		return 1;
	}
	printf("%s\n", json_object_to_json_string_ext(resp, o->json ? JSON_C_TO_STRING_PLAIN
								    : JSON_C_TO_STRING_PRETTY));
	json_object_put(resp);
	return 0;
}

int cmd_daemon(const struct vsn_opts *o, int argc, char **argv)
{
	static const struct option lo[] = {
	    {"config", required_argument, NULL, 'c'}, {"log", required_argument, NULL, 'l'},
	    {"observe-only", no_argument, NULL, 'O'}, {"allow-empty", no_argument, NULL, 'E'},
	    {"help", no_argument, NULL, 'h'},	      {NULL, 0, NULL, 0},
	};
	struct vsn_error err = {.msg = ""};
	const char *file = NULL, *log = NULL;
	struct vsn_config *cfg;
	bool observe = false, allow_empty = false;
	FILE *logf;
	int opt;

	if (cli_help_asked(argc, argv)) {
		daemon_usage(stdout);
		return 0;
	}
	if (argc >= 2 && !strcmp(argv[1], "status"))
		return daemon_status(o);
	optind = 1;
	while ((opt = getopt_long(argc, argv, "c:l:h", lo, NULL)) != -1) {
		switch (opt) {
		case 'c':
			file = optarg;
			break;
		case 'l':
			log = optarg;
			break;
		case 'O':
			observe = true;
			break;
		case 'E':
			allow_empty = true;
			break;
		case 'h':
			daemon_usage(stdout);
			return 0;
		default:
			daemon_usage(stderr);
			return 2;
		}
	}
	if (!file || optind < argc) {
		daemon_usage(stderr);
		return 2;
	}
	cfg = config_read(file, allow_empty ? CONFIG_ALLOW_EMPTY : 0, &err);
	if (!cfg) {
		vsn_err("%s", err.msg);
		return 2;
	}
	if (observe)
		cfg->ctl.observe_only = true;
	logf = log ? fopen(log, "a") : stdout;
	if (!logf) {
		vsn_err("cannot open the log %s: %s", log, strerror(errno));
		config_free(cfg);
		return 1;
	}
	return daemon_run(o, file, cfg, logf, allow_empty);
}
