// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * vsn profile: the workload profile over a window, from the live event ring
 * or from JSON lines saved by `vsn -j events`.
 * vsn top: the same, refreshed every second, over 1 s and 10 s windows.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "lib/profile.h"
#include "cli/cli.h"

static volatile sig_atomic_t prof_stop;

static void on_signal(int sig)
{
	(void)sig;
	prof_stop = 1;
}

static __u64 now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__u64)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static int feed(void *ctx, void *data, size_t size)
{
	if (size < sizeof(struct vsn_event))
		return 0;
	return prof_add(ctx, data) ? -ENOMEM : 0;
}

static int from_file(struct prof *p, const char *file)
{
	struct vsn_event e;
	char line[1024];
	int bad = 0, n = 0;
	FILE *f = strcmp(file, "-") ? fopen(file, "r") : stdin;

	if (!f) {
		vsn_err("cannot open %s: %s", file, strerror(errno));
		return -errno;
	}
	while (fgets(line, sizeof(line), f)) {
		if (prof_parse_line(line, &e)) {
			bad++;
			continue;
		}
		if (prof_add(p, &e)) {
			vsn_err("out of memory");
			bad = -1;
			break;
		}
		n++;
	}
	if (f != stdin)
		fclose(f);
	if (bad < 0)
		return -ENOMEM;
	if (bad)
		vsn_warn("%s: %d lines were not vsn events, skipped", file, bad);
	return n;
}

/* The datapath's sampling, so that rates count every command. */
static int use_sampling(struct prof *p, const struct vsn_maps *m)
{
	struct vsn_tel_cfg cfg;
	__u32 zero = 0;

	if (bpf_map_lookup_elem(m->tel_cfg, &zero, &cfg)) {
		vsn_err("cannot read %s: %s", VSN_MAP_TEL_CFG, strerror(errno));
		return -1;
	}
	prof_set_sampling(p, cfg.sample_every);
	return 0;
}

static void profile_usage(FILE *f)
{
	fprintf(f, "usage: vsn [-j] profile [--seconds S | --events FILE] [--lba-size BYTES]\n\n"
		   "Per VM, connection, backend and path over the window: IOPS, bytes/s by\n"
		   "direction, read/write mix, I/O size distribution, sequential share, peak\n"
		   "queue depth, latency p50/p99/p99.9, and the VM's class\n"
		   "(read-heavy|write-heavy|mixed / sequential|random / small|large; thresholds\n"
		   "in docs/profile.md).  --seconds (default 2) listens to the datapath live;\n"
		   "--events reads JSON lines saved by 'vsn -j events' ('-': stdin).\n"
		   "--lba-size converts blocks to bytes (default 4096).\n");
}

int cmd_profile(const struct vsn_opts *o, int argc, char **argv)
{
	static const struct option lo[] = {
	    {"seconds", required_argument, NULL, 's'},
	    {"events", required_argument, NULL, 'e'},
	    {"lba-size", required_argument, NULL, 'l'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct vsn_maps m = VSN_MAPS_NONE;
	struct ring_buffer *rb = NULL;
	const char *file = NULL;
	double secs = 2;
	unsigned lba = 4096;
	struct prof *p = NULL;
	__u64 t0, t1;
	int c, ret = 1;
	char *end;

	optind = 1;
	while ((c = getopt_long(argc, argv, "s:e:l:h", lo, NULL)) != -1) {
		switch (c) {
		case 's':
			secs = strtod(optarg, &end);
			if (*end || secs <= 0 || secs > 3600) {
				vsn_err("profile: --seconds wants 0 < S <= 3600, not '%s'", optarg);
				return 2;
			}
			break;
		case 'e':
			file = optarg;
			break;
		case 'l':
			lba = strtoul(optarg, &end, 10);
			if (*end || lba < 512 || lba > 65536 || (lba & (lba - 1))) {
				vsn_err("profile: --lba-size wants a power of two 512..65536");
				return 2;
			}
			break;
		case 'h':
			profile_usage(stdout);
			return 0;
		default:
			profile_usage(stderr);
			return 2;
		}
	}
	p = prof_new(lba);
	if (!p) {
		vsn_err("out of memory");
		return 1;
	}
	if (file) {
		if (from_file(p, file) < 0)
			goto cleanup;
		prof_print(p, 0, UINT64_MAX, o->json, stdout);
		ret = 0;
		goto cleanup;
	}
	if (pins_open(o, &m) || use_sampling(p, &m))
		goto cleanup;
	rb = ring_buffer__new(m.events, feed, p, NULL);
	if (!rb) {
		vsn_err("cannot read %s: %s", VSN_MAP_EVENTS, strerror(errno));
		goto cleanup;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	vsn_info(o, "listening for %.1f s...", secs);
	t0 = now_ns();
	t1 = t0 + (__u64)(secs * 1e9);
	while (!prof_stop && now_ns() < t1)
		ring_buffer__poll(rb, 100);
	prof_print(p, t0, t1, o->json, stdout);
	ret = 0;
cleanup:
	ring_buffer__free(rb);
	pins_close(&m);
	prof_free(p);
	return ret;
}

int cmd_top(const struct vsn_opts *o, int argc, char **argv)
{
	struct vsn_maps m = VSN_MAPS_NONE;
	struct ring_buffer *rb = NULL;
	struct prof *p = NULL;
	int ret = 1;

	if (argc > 1) {
		FILE *f = strcmp(argv[1], "-h") && strcmp(argv[1], "--help") ? stderr : stdout;

		fprintf(f,
			"usage: vsn top\n\nA live view of VMs, connections, backends and "
			"paths (vsn profile, refreshed\nevery second over the last 1 s and 10 s). "
			"q or Ctrl-C quits.\n");
		return f == stdout ? 0 : 2;
	}
	p = prof_new(4096);
	if (!p || pins_open(o, &m) || use_sampling(p, &m))
		goto cleanup;
	rb = ring_buffer__new(m.events, feed, p, NULL);
	if (!rb) {
		vsn_err("cannot read %s: %s", VSN_MAP_EVENTS, strerror(errno));
		goto cleanup;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	while (!prof_stop) {
		__u64 until = now_ns() + 1000000000ull, t;

		while (!prof_stop && now_ns() < until)
			ring_buffer__poll(rb, 100);
		t = now_ns();
		prof_expire(p, t, 10000000000ull);
		if (!o->json)
			printf("\033[H\033[2Jvsn top  (Ctrl-C quits)\n\n-- last 1 s --\n");
		prof_print(p, t - 1000000000ull, t, o->json, stdout);
		if (!o->json)
			printf("\n-- last 10 s --\n");
		prof_print(p, t > 10000000000ull ? t - 10000000000ull : 1, t, o->json, stdout);
		fflush(stdout);
	}
	ret = 0;
cleanup:
	ring_buffer__free(rb);
	pins_close(&m);
	prof_free(p);
	return ret;
}
