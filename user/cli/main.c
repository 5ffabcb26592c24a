// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* vsn: the command-line front door; dispatches to one subcommand. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static const struct {
	const char *name;
	int (*fn)(const struct vsn_opts *o, int argc, char **argv);
	const char *help;
} cmds[] = {
    {"attach", cmd_attach, "load the datapath and attach it to VM interfaces and uplinks"},
    {"detach", cmd_detach, "remove vsn's programs, the qdiscs it created, and its pins"},
    {"apply", cmd_apply, "validate a config file and make the maps match it"},
    {"show", cmd_show, "print volumes, backends, paths, routes, connections, counters"},
    {"status", cmd_status, "what is attached where, in which mode; map fill levels"},
    {"route", cmd_route, "set or delete a route; pin one connection to a path"},
    {"backend", cmd_backend, "set a backend up, down or draining"},
    {"events", cmd_events, "stream NVMe/TCP commands, responses, connection events"},
    {"telemetry", cmd_telemetry, "NVMe/TCP parsing on/off, event sampling and cap"},
    {"profile", cmd_profile, "workload profile per VM, connection, backend, path"},
    {"top", cmd_top, "live view of the workload profile"},
    {"health", cmd_health, "NVMe health of a target: identity, SMART, ANA (remote or local)"},
    {"daemon", cmd_daemon, "run the controller; 'daemon status' shows its view"},
    {"cluster", cmd_cluster, "the hosts sharing etcd: leader, backends seen by all"},
    {"verify", cmd_verify, "load each program alone: the verifier's cost against the budget"},
    {"bw", cmd_bw, "per-VM bandwidth (HTB) on an uplink: setup, teardown, classid"},
};

static void usage(FILE *f)
{
	fprintf(f, "usage: vsn [OPTIONS] COMMAND [ARGS]\n\n"
		   "Adaptive storage networking: steers VMs' NVMe/TCP and RoCEv2 traffic\n"
		   "through BPF maps that act as the routing table.\n\n"
		   "commands:\n");
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		fprintf(f, "  %-9s %s\n", cmds[i].name, cmds[i].help);
	fprintf(f,
		"\noptions:\n"
		"  -j, --json         JSON output\n"
		"  -p, --pin-dir DIR  where maps and programs are pinned (default %s,\n"
		"                     or $%s)\n"
		"  -v, --verbose      more messages\n"
		"  -V, --version      print the version\n"
		"  -h, --help         this help; 'vsn COMMAND --help' for a command\n",
		VSN_DEFAULT_PIN_DIR, VSN_PIN_ENV);
}

bool cli_help_asked(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--"))
			break;
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
			return true;
	}
	return false;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
	    {"json", no_argument, NULL, 'j'},	 {"pin-dir", required_argument, NULL, 'p'},
	    {"verbose", no_argument, NULL, 'v'}, {"version", no_argument, NULL, 'V'},
	    {"help", no_argument, NULL, 'h'},	 {NULL, 0, NULL, 0},
	};
	struct vsn_opts o = {.pin_dir = getenv(VSN_PIN_ENV)};
	int c;

	if (!o.pin_dir || !*o.pin_dir)
		o.pin_dir = VSN_DEFAULT_PIN_DIR;
	/* '+': stop at the command; its own options are its business. */
	while ((c = getopt_long(argc, argv, "+jp:vVh", lo, NULL)) != -1) {
		switch (c) {
		case 'j':
			o.json = true;
			break;
		case 'p':
			o.pin_dir = optarg;
			break;
		case 'v':
			o.verbose = true;
			break;
		case 'V':
			printf("vsn %s\n", VSN_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		if (strcmp(argv[optind], cmds[i].name))
			continue;
		/* Subcommands see argv[0] = their name; -j after it works too. */
		argc -= optind;
		argv += optind;
		for (int k = 1; k < argc; k++) {
			if (!strcmp(argv[k], "-j") || !strcmp(argv[k], "--json")) {
				o.json = true;
				memmove(&argv[k], &argv[k + 1], (argc - k) * sizeof(*argv));
				argc--;
				k--;
			}
		}
		return cmds[i].fn(&o, argc, argv);
	}
	vsn_err("unknown command '%s' (see 'vsn --help')", argv[optind]);
	return 2;
}
