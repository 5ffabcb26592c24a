// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* vsn health: read a backend's NVMe health once, remote (vsn's own
 * NVMe/TCP admin client) or local (a controller the kernel has). */
#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "lib/health/health_nvme.h"
#include "cli/cli.h"

static void usage(FILE *f)
{
	fprintf(
	    f, "usage: vsn health probe ADDR[:PORT] --nqn SUBNQN [--hostnqn NQN] [--timeout-ms N]\n"
	       "                        [--connect-data auto|in-capsule|r2t]\n"
	       "       vsn health local [DEV | ADDR[:PORT]] [--nqn SUBNQN]\n"
	       "       vsn health watch ADDR[:PORT]... --nqn SUBNQN [--interval-ms N]\n"
	       "                        [--timeout-ms N] [--count N] [--duration-ms N]\n\n"
	       "probe: connect to an NVMe/TCP target's admin queue (no kernel initiator\n"
	       "       needed), read Identify Controller, the SMART/health log and the ANA\n"
	       "       log, send a Keep Alive and disconnect.  PORT defaults to 4420; IPv6 as\n"
	       "       [ADDR]:PORT.  --timeout-ms bounds each step (default 2000).\n"
	       "       --connect-data: how the Connect data travels (default auto: in the\n"
	       "       capsule, again through R2T if the target refuses that).\n"
	       "local: the same data from controllers this host's kernel has (libnvme):\n"
	       "       every controller, the one named DEV (nvme0), or the fabrics\n"
	       "       controller connected to ADDR[:PORT] (and SUBNQN).\n"
	       "watch: poll the targets in the background as the daemon does (one admin\n"
	       "       connection each, kept open) and print a line whenever one becomes\n"
	       "       reachable or unreachable, or its critical warning or an ANA state\n"
	       "       changes; until --count lines, --duration-ms, or Ctrl-C.\n\n"
	       "-j/--json prints JSON.  Exit status: 0 read, 1 failed, 2 usage.\n");
}

static void crit_line(const struct nvme_health *h, char *buf, size_t len)
{
	health_crit_names(h->critical_warning, buf, len);
}

static void print_human(const struct nvme_health *h)
{
	char cw[96];

	printf("%s  %s\n", h->source, h->subnqn);
	if (h->transport[0] && h->trsvcid)
		printf("  connection   %s %s port %u, state %s\n", h->transport, h->traddr,
		       h->trsvcid, h->state);
	else if (h->transport[0])
		printf("  connection   %s%s%s, state %s\n", h->transport, h->traddr[0] ? " " : "",
		       h->traddr, h->state);
	if (!h->reachable) {
		printf("  error        %s\n", h->error);
		return;
	}
	printf(
	    "  controller   cntlid %u, model \"%s\", serial \"%s\", firmware \"%s\", NVMe %u.%u\n",
	    h->cntlid, h->model, h->serial, h->firmware, h->version >> 16,
	    (h->version >> 8) & 0xff);
	crit_line(h, cw, sizeof(cw));
	printf("  smart        critical warning 0x%02x (%s), temperature %u K, available spare "
	       "%u%% (threshold %u%%), used %u%%\n",
	       h->critical_warning, cw, h->temperature_k, h->avail_spare, h->spare_thresh,
	       h->percent_used);
	printf("               media errors %llu, error log entries %llu, data units read %llu "
	       "written %llu,\n"
	       "               host reads %llu writes %llu, power-on hours %llu, unsafe shutdowns "
	       "%llu\n",
	       (unsigned long long)h->media_errors, (unsigned long long)h->num_err_log_entries,
	       (unsigned long long)h->data_units_read, (unsigned long long)h->data_units_written,
	       (unsigned long long)h->host_reads, (unsigned long long)h->host_writes,
	       (unsigned long long)h->power_on_hours, (unsigned long long)h->unsafe_shutdowns);
	if (!h->ana_supported)
		printf("  ana          not reported by this controller\n");
	for (unsigned i = 0; i < h->n_ana; i++)
		printf("  ana          group %u: %s (%u namespace%s)\n", h->ana[i].grpid,
		       health_ana_state_name(h->ana[i].state), h->ana[i].nnsids,
		       h->ana[i].nnsids == 1 ? "" : "s");
	if (h->ana_groups > h->n_ana)
		printf("  ana          ... %u more groups\n", h->ana_groups - h->n_ana);
	printf("  round trip   %.3f ms (SMART/health log read)\n", h->rtt_ms);
	if (h->connect_data[0])
		printf("  connect data %s\n", h->connect_data);
}

static struct json_object *to_json(const struct nvme_health *h)
{
	struct json_object *o = json_object_new_object();

#define ADD(k, v) json_object_object_add(o, k, v)
	ADD("source", json_object_new_string(h->source));
	ADD("subnqn", json_object_new_string(h->subnqn));
	ADD("reachable", json_object_new_boolean(h->reachable));
	ADD("error", h->reachable ? NULL : json_object_new_string(h->error));
	if (h->transport[0]) {
		ADD("transport", json_object_new_string(h->transport));
		ADD("traddr", json_object_new_string(h->traddr));
		ADD("trsvcid", json_object_new_int(h->trsvcid));
		ADD("state", json_object_new_string(h->state));
	}
	if (h->reachable) {
		struct json_object *a;
		char cw[96];

		ADD("cntlid", json_object_new_int(h->cntlid));
		ADD("model", json_object_new_string(h->model));
		ADD("serial", json_object_new_string(h->serial));
		ADD("firmware", json_object_new_string(h->firmware));
		ADD("version", json_object_new_int64(h->version));
		ADD("critical_warning", json_object_new_int(h->critical_warning));
		crit_line(h, cw, sizeof(cw));
		ADD("critical_warning_bits", json_object_new_string(cw));
		ADD("temperature_k", json_object_new_int(h->temperature_k));
		ADD("avail_spare", json_object_new_int(h->avail_spare));
		ADD("spare_thresh", json_object_new_int(h->spare_thresh));
		ADD("percent_used", json_object_new_int(h->percent_used));
		ADD("media_errors", json_object_new_uint64(h->media_errors));
		ADD("num_err_log_entries", json_object_new_uint64(h->num_err_log_entries));
		ADD("data_units_read", json_object_new_uint64(h->data_units_read));
		ADD("data_units_written", json_object_new_uint64(h->data_units_written));
		ADD("host_reads", json_object_new_uint64(h->host_reads));
		ADD("host_writes", json_object_new_uint64(h->host_writes));
		ADD("power_on_hours", json_object_new_uint64(h->power_on_hours));
		ADD("unsafe_shutdowns", json_object_new_uint64(h->unsafe_shutdowns));
		ADD("ana_supported", json_object_new_boolean(h->ana_supported));
		ADD("ana_chgcnt", json_object_new_uint64(h->ana_chgcnt));
		a = json_object_new_array();
		for (unsigned i = 0; i < h->n_ana; i++) {
			struct json_object *g = json_object_new_object();

			json_object_object_add(g, "grpid", json_object_new_int64(h->ana[i].grpid));
			json_object_object_add(
			    g, "state",
			    json_object_new_string(health_ana_state_name(h->ana[i].state)));
			json_object_object_add(g, "nnsids",
					       json_object_new_int64(h->ana[i].nnsids));
			json_object_array_add(a, g);
		}
		ADD("ana_groups", a);
		snprintf(cw, sizeof(cw), "%.3f", h->rtt_ms);
		ADD("rtt_ms", json_object_new_double_s(h->rtt_ms, cw));
		if (h->connect_data[0])
			ADD("connect_data", json_object_new_string(h->connect_data));
	}
	ADD("timestamp_ns", json_object_new_uint64(h->ts_ns));
#undef ADD
	return o;
}

static void print_json(struct json_object *o)
{
	printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
							     JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
}

/* --name's value: a whole number in min..max, else what it must be. */
static int opt_number(const char *name, const char *arg, unsigned long min, unsigned long max,
		      const char *what, unsigned long *out)
{
	char *end;
	unsigned long v = strtoul(arg, &end, 10);

	if (!*arg || *end || v < min || v > max) {
		vsn_err("--%s: %s", name, what);
		return -1;
	}
	*out = v;
	return 0;
}

static int cmd_probe(const struct vsn_opts *o, int argc, char **argv)
{
	static const struct option lo[] = {
	    {"nqn", required_argument, NULL, 'n'},
	    {"hostnqn", required_argument, NULL, 'H'},
	    {"timeout-ms", required_argument, NULL, 't'},
	    {"connect-data", required_argument, NULL, 'c'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct nvmf_admin_opts ao = {.timeout_ms = 2000, .cancel_fd = -1};
	struct nvmf_target t = {0};
	struct nvme_health *h = NULL;
	unsigned long v;
	char err[256];
	int c, rc = 2;

	optind = 0; /* 0: glibc re-initialises (main parsed with "+") */
	while ((c = getopt_long(argc, argv, "n:H:t:c:h", lo, NULL)) != -1) {
		switch (c) {
		case 'n':
			snprintf(t.subnqn, sizeof(t.subnqn), "%s", optarg);
			break;
		case 'H':
			snprintf(t.hostnqn, sizeof(t.hostnqn), "%s", optarg);
			break;
		case 't':
			if (opt_number("timeout-ms", optarg, 1, 600000,
				       "a number of milliseconds, 1-600000", &v))
				return 2;
			ao.timeout_ms = (unsigned)v;
			break;
		case 'c':
			if (!strcmp(optarg, "auto"))
				ao.connect_data = NVMF_CD_AUTO;
			else if (!strcmp(optarg, "in-capsule"))
				ao.connect_data = NVMF_CD_IN_CAPSULE;
			else if (!strcmp(optarg, "r2t"))
				ao.connect_data = NVMF_CD_R2T;
			else {
				vsn_err("--connect-data: auto, in-capsule or r2t");
				return 2;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind + 1 != argc) {
		vsn_err("health probe: one target address expected (vsn health probe ADDR[:PORT] "
			"--nqn SUBNQN)");
		return 2;
	}
	if (!t.subnqn[0]) {
		vsn_err("health probe: --nqn SUBNQN is required (the target's subsystem NQN)");
		return 2;
	}
	if (nvmf_parse_addr(argv[optind], &t, err, sizeof(err))) {
		vsn_err("health probe: %s", err);
		return 2;
	}
	h = calloc(1, sizeof(*h));
	if (!h) {
		vsn_err("out of memory");
		return 1;
	}
	rc = health_probe_remote(&t, &ao, h) ? 1 : 0;
	if (o->json)
		print_json(to_json(h));
	else if (!rc)
		print_human(h);
	if (rc)
		vsn_err("%s", h->error);
	free(h);
	return rc;
}

static int cmd_local(const struct vsn_opts *o, int argc, char **argv)
{
	static const struct option lo[] = {
	    {"nqn", required_argument, NULL, 'n'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct health_local_sel sel = {0};
	struct nvme_health *v = NULL;
	const char *nqn = NULL;
	char err[256];
	int c, n, rc = 0;

	optind = 0; /* 0: glibc re-initialises (main parsed with "+") */
	while ((c = getopt_long(argc, argv, "n:h", lo, NULL)) != -1) {
		switch (c) {
		case 'n':
			nqn = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (argc - optind > 1) {
		vsn_err("health local: at most one controller (nvme0 or ADDR[:PORT])");
		return 2;
	}
	if (health_local_sel_parse(argc > optind ? argv[optind] : "", &sel, err, sizeof(err))) {
		vsn_err("health local: %s", err);
		return 2;
	}
	if (nqn)
		snprintf(sel.subnqn, sizeof(sel.subnqn), "%s", nqn);
	n = health_list_local(&sel, &v, err, sizeof(err));
	if (n < 0) {
		vsn_err("health local: %s", err);
		return 1;
	}
	if (!n) {
		if (o->json)
			printf("[]\n");
		vsn_err(
		    "health local: no %sNVMe controller on this host%s (see 'nvme list-subsys')",
		    argc > optind || nqn ? "matching " : "",
		    argc > optind ? "" : "; connect one first");
		free(v);
		return 1;
	}
	if (o->json) {
		struct json_object *a = json_object_new_array();

		for (int i = 0; i < n; i++)
			json_object_array_add(a, to_json(&v[i]));
		/* One controller asked for by name: the object itself. */
		if (argc > optind) {
			struct json_object *one = json_object_get(json_object_array_get_idx(a, 0));

			json_object_put(a);
			a = one;
		}
		print_json(a);
	}
	for (int i = 0; i < n; i++) {
		if (!o->json)
			print_human(&v[i]);
		if (!v[i].reachable) {
			vsn_err("%s", v[i].error);
			rc = 1;
		}
	}
	free(v);
	return rc;
}

static volatile sig_atomic_t watch_stop;

static void on_signal(int sig)
{
	watch_stop = 1;
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void watch_line(const struct vsn_opts *o, const struct nvme_health *h, uint64_t t0)
{
	if (o->json) {
		print_json(to_json(h));
	} else {
		printf("+%.3fs %s %s", (double)(mono_ms() - t0) / 1000.0, h->source,
		       h->reachable ? "reachable" : "UNREACHABLE");
		if (h->reachable) {
			char cw[96];

			crit_line(h, cw, sizeof(cw));
			printf(" critical-warning %s ana", cw);
			for (unsigned i = 0; i < h->n_ana; i++)
				printf(" %u:%s", h->ana[i].grpid,
				       health_ana_state_name(h->ana[i].state));
		} else {
			printf(" (%s)", h->error);
		}
		printf("\n");
	}
	fflush(stdout);
}

static int cmd_watch(const struct vsn_opts *o, int argc, char **argv)
{
	static const struct option lo[] = {
	    {"nqn", required_argument, NULL, 'n'},
	    {"hostnqn", required_argument, NULL, 'H'},
	    {"interval-ms", required_argument, NULL, 'i'},
	    {"timeout-ms", required_argument, NULL, 't'},
	    {"count", required_argument, NULL, 'c'},
	    {"duration-ms", required_argument, NULL, 'd'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	unsigned long interval = 1000, timeout = 2000, count = 0, duration = 0, printed = 0;
	struct sigaction sa = {.sa_handler = on_signal};
	struct health_worker *w = NULL;
	struct nvme_health *cur = NULL, *prev = NULL;
	struct health_src *srcs = NULL;
	const char *nqn = NULL, *hostnqn = NULL;
	char err[256];
	int c, n, efd = -1, rc = 2;
	uint64_t t0 = mono_ms();

	optind = 0; /* 0: glibc re-initialises (main parsed with "+") */
	while ((c = getopt_long(argc, argv, "n:H:i:t:c:d:h", lo, NULL)) != -1) {
		switch (c) {
		case 'n':
			nqn = optarg;
			break;
		case 'H':
			hostnqn = optarg;
			break;
		case 'i':
			if (opt_number("interval-ms", optarg, 10, 86400000,
				       "a number of milliseconds, at least 10", &interval))
				return 2;
			break;
		case 't':
			if (opt_number("timeout-ms", optarg, 0, 86400000, "a number", &timeout))
				return 2;
			break;
		case 'c':
			if (opt_number("count", optarg, 0, 86400000, "a number", &count))
				return 2;
			break;
		case 'd':
			if (opt_number("duration-ms", optarg, 0, 86400000, "a number", &duration))
				return 2;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	n = argc - optind;
	if (n < 1 || !nqn) {
		vsn_err("health watch: ADDR[:PORT]... and --nqn SUBNQN are required");
		return 2;
	}
	srcs = calloc((size_t)n, sizeof(*srcs));
	cur = calloc((size_t)n, sizeof(*cur));
	prev = calloc((size_t)n, sizeof(*prev));
	if (!srcs || !cur || !prev) {
		vsn_err("out of memory");
		rc = 1;
		goto out;
	}
	for (int i = 0; i < n; i++) {
		srcs[i].backend_id = (uint32_t)i + 1;
		if (nvmf_parse_addr(argv[optind + i], &srcs[i].remote, err, sizeof(err))) {
			vsn_err("health watch: %s", err);
			goto out;
		}
		snprintf(srcs[i].remote.subnqn, sizeof(srcs[i].remote.subnqn), "%s", nqn);
		if (hostnqn)
			snprintf(srcs[i].remote.hostnqn, sizeof(srcs[i].remote.hostnqn), "%s",
				 hostnqn);
	}
	efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (efd < 0) {
		vsn_err("eventfd: %s", strerror(errno));
		rc = 1;
		goto out;
	}
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	c = health_worker_start(&w, srcs, (unsigned)n, (unsigned)interval, (unsigned)timeout, efd);
	if (c) {
		vsn_err("health watch: cannot start the worker: %s", strerror(-c));
		rc = 1;
		goto out;
	}
	rc = 0;
	while (!watch_stop && (!count || printed < count)) {
		struct pollfd p = {.fd = efd, .events = POLLIN};
		int left = 1000;
		uint64_t v;

		if (duration) {
			uint64_t el = mono_ms() - t0;

			if (el >= duration)
				break;
			left = (int)(duration - el < 1000 ? duration - el : 1000);
		}
		if (poll(&p, 1, left) <= 0 || read(efd, &v, sizeof(v)) != sizeof(v))
			continue;
		health_worker_snapshot(w, cur, (unsigned)n);
		for (int i = 0; i < n && (!count || printed < count); i++) {
			/* the worker's "changed" also covers the first result */
			if (cur[i].ts_ns && (!prev[i].ts_ns || health_changed(&prev[i], &cur[i]))) {
				watch_line(o, &cur[i], t0);
				printed++;
				prev[i] = cur[i];
			}
		}
	}
out:
	health_worker_stop(w);
	if (efd >= 0)
		close(efd);
	free(srcs);
	free(cur);
	free(prev);
	return rc;
}

int cmd_health(const struct vsn_opts *o, int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (!strcmp(argv[1], "probe"))
		return cmd_probe(o, argc - 1, argv + 1);
	if (!strcmp(argv[1], "local"))
		return cmd_local(o, argc - 1, argv + 1);
	if (!strcmp(argv[1], "watch"))
		return cmd_watch(o, argc - 1, argv + 1);
	vsn_err("health: unknown subcommand '%s' (probe, local or watch; see 'vsn health --help')",
		argv[1]);
	return 2;
}
