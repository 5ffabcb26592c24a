// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * vsn events: stream the datapath's ring-buffer events.
 * vsn telemetry: set parsing, sampling and the per-second event cap.
 * vsn show telemetry: counters and latency percentiles from the histograms.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "cli/cli.h"

static const char *const stat_names[VSN_T_MAX] = {
    [VSN_T_PDUS] = "pdus",
    [VSN_T_CMDS] = "cmds",
    [VSN_T_RESPS] = "resps",
    [VSN_T_ADMIN] = "admin",
    [VSN_T_MATCHED] = "matched",
    [VSN_T_UNMATCHED] = "unmatched",
    [VSN_T_RESYNCS] = "resyncs",
    [VSN_T_CAPPED] = "capped",
    [VSN_T_EV_SENT] = "events_sent",
    [VSN_T_EV_DROPPED] = "events_dropped",
    [VSN_T_EV_SAMPLED] = "events_sampled",
    [VSN_T_READ_CMDS] = "read_cmds",
    [VSN_T_WRITE_CMDS] = "write_cmds",
    [VSN_T_READ_BLKS] = "read_blocks",
    [VSN_T_WRITE_BLKS] = "write_blocks",
    [VSN_T_ERRORS] = "errors",
    [VSN_T_H2C_BYTES] = "h2c_data_bytes",
    [VSN_T_C2H_BYTES] = "c2h_data_bytes",
    [VSN_T_ERR_GENERIC] = "errors_generic",
    [VSN_T_ERR_CMD] = "errors_cmd_specific",
    [VSN_T_ERR_MEDIA] = "errors_media",
    [VSN_T_ERR_PATH] = "errors_path",
    [VSN_T_ERR_OTHER] = "errors_other",
    [VSN_T_SEQ_CMDS] = "seq_cmds",
};

static const char *event_name(__u32 type)
{
	switch (type) {
	case VSN_EV_CMD:
		return "cmd";
	case VSN_EV_RESP:
		return "resp";
	case VSN_EV_CONN_OPEN:
		return "conn_open";
	case VSN_EV_CONN_CLOSE:
		return "conn_close";
	case VSN_EV_RESYNC:
		return "resync";
	}
	return "unknown";
}

struct events_run {
	const struct vsn_opts *o;
	long left; /* events still to print; < 0: unlimited */
};

static volatile sig_atomic_t events_stop;

static void on_signal(int sig)
{
	(void)sig;
	events_stop = 1;
}

static int print_event(void *ctx, void *data, size_t size)
{
	struct events_run *run = ctx;
	const struct vsn_event *e = data;

	if (size < sizeof(*e))
		return 0;
	if (run->o->json)
		printf("{\"ts_ns\":%llu,\"type\":\"%s\",\"conn_id\":%u,\"vm\":%u,\"volume\":%u,"
		       "\"backend\":%u,\"path\":%u,\"qid\":%u,\"cid\":%u,\"opcode\":%u,\"dir\":%u,"
		       "\"status\":%u,\"nsid\":%u,\"nlb\":%u,\"slba\":%llu,\"latency_ns\":%llu,"
		       "\"seq\":%u}\n",
		       (unsigned long long)e->ts_ns, event_name(e->type), e->conn_id, e->vm_id,
		       e->volume_id, e->backend_id, e->path_id, e->qid, e->cid, e->opcode, e->dir,
		       e->status, e->nsid, e->nlb, (unsigned long long)e->slba,
		       (unsigned long long)e->latency_ns, !!(e->flags & VSN_EVF_SEQ));
	else
		printf("%-10s conn %08x vm %u vol %u be %u path %u q %u cid %u opc 0x%02x nsid %u "
		       "slba %llu nlb %u status 0x%x lat %.1fus\n",
		       event_name(e->type), e->conn_id, e->vm_id, e->volume_id, e->backend_id,
		       e->path_id, e->qid, e->cid, e->opcode, e->nsid, (unsigned long long)e->slba,
		       e->nlb, e->status, e->latency_ns / 1e3);
	if (run->left > 0 && --run->left == 0)
		events_stop = 1;
	return 0;
}

static void events_usage(FILE *f)
{
	fprintf(f, "usage: vsn [-j] events [--count N] [--timeout SECONDS]\n\n"
		   "Print the datapath's events (NVMe/TCP commands and responses, connection\n"
		   "open/close, parser resyncs) as they happen, one per line; -j: JSON lines.\n"
		   "Stops after N events, after SECONDS, or on Ctrl-C.  Events the ring could\n"
		   "not hold are counted (vsn show telemetry: events_dropped).\n");
}

int cmd_events(const struct vsn_opts *o, int argc, char **argv)
{
	static const struct option lo[] = {
	    {"count", required_argument, NULL, 'c'},
	    {"timeout", required_argument, NULL, 't'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct events_run run = {.o = o, .left = -1};
	struct vsn_maps m = VSN_MAPS_NONE;
	struct ring_buffer *rb = NULL;
	double timeout = 0;
	struct timespec t0, now;
	int c, err, ret = 1;
	char *end;

	optind = 1;
	while ((c = getopt_long(argc, argv, "c:t:h", lo, NULL)) != -1) {
		switch (c) {
		case 'c':
			run.left = strtol(optarg, &end, 10);
			if (*end || run.left <= 0) {
				vsn_err("events: --count wants a positive number, not '%s'",
					optarg);
				return 2;
			}
			break;
		case 't':
			timeout = strtod(optarg, &end);
			if (*end || timeout <= 0) {
				vsn_err("events: --timeout wants seconds > 0, not '%s'", optarg);
				return 2;
			}
			break;
		case 'h':
			events_usage(stdout);
			return 0;
		default:
			events_usage(stderr);
			return 2;
		}
	}
	if (pins_open(o, &m))
		return 1;
	rb = ring_buffer__new(m.events, print_event, &run, NULL);
	if (!rb) {
		vsn_err("cannot read %s: %s", VSN_MAP_EVENTS, strerror(errno));
		goto cleanup;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	setvbuf(stdout, NULL, _IOLBF, 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (!events_stop) {
		err = ring_buffer__poll(rb, 100);
		if (err < 0 && err != -EINTR) {
			vsn_err("reading events: %s", strerror(-err));
			goto cleanup;
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (timeout > 0 &&
		    (now.tv_sec - t0.tv_sec) + (now.tv_nsec - t0.tv_nsec) / 1e9 >= timeout)
			break;
	}
	/* What is already in the ring when asked to stop is printed too. */
	if (run.left != 0)
		ring_buffer__consume(rb);
	ret = 0;
cleanup:
	ring_buffer__free(rb);
	pins_close(&m);
	return ret;
}

static void telemetry_usage(FILE *f)
{
	fprintf(f, "usage: vsn telemetry [--parse on|off] [--sample N] [--cap N]\n\n"
		   "Set NVMe/TCP parsing in the datapath; report and time one command in N\n"
		   "(its response is reported with it; every command is counted), and at most\n"
		   "N command/response events per second per CPU (0: no cap).  Without\n"
		   "options: print the settings.  Counters and latencies: vsn show telemetry;\n"
		   "what sampling changes: docs/profile.md.\n");
}

int cmd_telemetry(const struct vsn_opts *o, int argc, char **argv)
{
	static const struct option lo[] = {
	    {"parse", required_argument, NULL, 'p'},
	    {"sample", required_argument, NULL, 's'},
	    {"cap", required_argument, NULL, 'c'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct vsn_maps m = VSN_MAPS_NONE;
	struct vsn_tel_cfg cfg;
	/* What the options ask for (-1: leave it): parsed before the maps are
	 * opened, so that --help and bad options need neither root nor an
	 * attach. */
	long parse = -1, sample = -1, cap = -1;
	__u32 zero = 0;
	unsigned long v;
	char *end;
	int c, ret = 1;

	optind = 1;
	while ((c = getopt_long(argc, argv, "p:s:c:h", lo, NULL)) != -1) {
		switch (c) {
		case 'p':
			if (strcmp(optarg, "on") && strcmp(optarg, "off")) {
				vsn_err("telemetry: --parse is on or off, not '%s'", optarg);
				return 2;
			}
			parse = !strcmp(optarg, "on");
			break;
		case 's':
		case 'c':
			errno = 0;
			v = strtoul(optarg, &end, 10);
			if (errno || *end || v > 1000000000 || (c == 's' && !v)) {
				vsn_err("telemetry: --%s: '%s' is not a number in range",
					c == 's' ? "sample" : "cap", optarg);
				return 2;
			}
			if (c == 's')
				sample = (long)v;
			else
				cap = (long)v;
			break;
		case 'h':
			telemetry_usage(stdout);
			return 0;
		default:
			telemetry_usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		vsn_err("telemetry: unexpected argument '%s'", argv[optind]);
		telemetry_usage(stderr);
		return 2;
	}
	if (pins_open(o, &m))
		return 1;
	if (bpf_map_lookup_elem(m.tel_cfg, &zero, &cfg)) {
		vsn_err("cannot read %s: %s", VSN_MAP_TEL_CFG, strerror(errno));
		goto cleanup;
	}
	if (parse >= 0)
		cfg.enabled = (__u32)parse;
	if (sample >= 0)
		cfg.sample_every = (__u32)sample;
	if (cap >= 0)
		cfg.max_per_sec = (__u32)cap;
	if ((parse >= 0 || sample >= 0 || cap >= 0) &&
	    bpf_map_update_elem(m.tel_cfg, &zero, &cfg, BPF_ANY)) {
		vsn_err("cannot write %s: %s", VSN_MAP_TEL_CFG, strerror(errno));
		goto cleanup;
	}
	if (o->json)
		printf("{\"parse\":%s,\"sample_every\":%u,\"max_per_sec\":%u}\n",
		       cfg.enabled ? "true" : "false", cfg.sample_every, cfg.max_per_sec);
	else
		printf("parse %s, one command in %u reported, at most %u events/s per CPU%s\n",
		       cfg.enabled ? "on" : "off", cfg.sample_every ? cfg.sample_every : 1,
		       cfg.max_per_sec, cfg.max_per_sec ? "" : " (no cap)");
	ret = 0;
cleanup:
	pins_close(&m);
	return ret;
}

/* Percentile from log2 buckets: the geometric middle of the bucket. */
static double hist_pct(const __u64 *b, __u64 total, double q)
{
	__u64 want = (__u64)(q * total + 0.5), seen = 0;

	if (!want)
		want = 1;
	for (int i = 0; i < VSN_LAT_BUCKETS; i++) {
		seen += b[i];
		if (seen >= want)
			return (double)(1ull << i) * 1.4142135623730951;
	}
	return 0;
}

/* Percentiles per backend, path or VM with any latency recorded.  first:
 * no JSON separator printed yet (shared across scopes). */
static void latency_scope(const struct vsn_opts *o, const struct vsn_maps *m, const char *name,
			  __u32 base, __u32 n, bool *first)
{
	for (__u32 id = 0; id < n; id++) {
		__u64 b[VSN_LAT_BUCKETS], total = 0;

		for (int i = 0; i < VSN_LAT_BUCKETS; i++) {
			if (percpu_u64(m->lat_hist, (base + id) * VSN_LAT_BUCKETS + i, &b[i]))
				b[i] = 0;
			total += b[i];
		}
		if (!total)
			continue;
		if (o->json)
			printf("%s\"%s/%u\":{\"count\":%llu,\"p50_ns\":%.0f,\"p99_ns\":%.0f,"
			       "\"p999_ns\":%.0f}",
			       *first ? "" : ",", name, id, (unsigned long long)total,
			       hist_pct(b, total, 0.5), hist_pct(b, total, 0.99),
			       hist_pct(b, total, 0.999));
		else
			printf("  %-8s %-5u %10llu cmds  p50 %9.1fus  p99 %9.1fus  p99.9 %9.1fus\n",
			       name, id, (unsigned long long)total, hist_pct(b, total, 0.5) / 1e3,
			       hist_pct(b, total, 0.99) / 1e3, hist_pct(b, total, 0.999) / 1e3);
		*first = false;
	}
}

static const char *const roce_names[VSN_ROCE_CLASSES] = {
    [VSN_ROCE_SEND] = "send",	      [VSN_ROCE_WRITE] = "rdma_write",
    [VSN_ROCE_READ_REQ] = "read_req", [VSN_ROCE_READ_RESP] = "read_resp",
    [VSN_ROCE_ACK] = "ack",	      [VSN_ROCE_OTHER] = "other",
    [VSN_ROCE_CNP] = "cnp",	      [VSN_ROCE_CE] = "ecn_ce",
    [VSN_ROCE_CE_OUT] = "ecn_ce_out", [VSN_ROCE_ATOMIC] = "atomic",
};

/* RoCEv2 per path and class, and per VM and destination QP. */
static void show_roce(const struct vsn_opts *o, const struct vsn_maps *m)
{
	struct vsn_roce_qp_key key = {0}, next;
	bool first_path = true, first_qp = true, started = false;
	struct vsn_counter c;

	printf(o->json ? ",\"roce\":{\"paths\":{" : "RoCEv2 per path:\n");
	for (__u32 path = 0; path < VSN_MAX_PATHS; path++) {
		bool any = false;

		for (__u32 cl = 0; cl < VSN_ROCE_CLASSES; cl++) {
			__u32 idx = path * VSN_ROCE_CLASSES + cl;

			if (percpu_counter(m->roce_path, &idx, &c) || !c.packets)
				continue;
			if (o->json) {
				if (!any)
					printf("%s\"%u\":{", first_path ? "" : ",", path);
				printf("%s\"%s\":{\"packets\":%llu,\"bytes\":%llu}", any ? "," : "",
				       roce_names[cl], (unsigned long long)c.packets,
				       (unsigned long long)c.bytes);
			} else {
				printf("  path %-4u %-11s %10llu pkts %12llu bytes\n", path,
				       roce_names[cl], (unsigned long long)c.packets,
				       (unsigned long long)c.bytes);
			}
			any = true;
		}
		if (any && o->json)
			printf("}");
		if (any)
			first_path = false;
	}
	printf(o->json ? "},\"qps\":[" : "RoCEv2 per VM and destination QP:\n");
	while (!bpf_map_get_next_key(m->roce_qp, started ? &key : NULL, &next)) {
		started = true;
		key = next;
		if (percpu_counter(m->roce_qp, &key, &c))
			continue;
		if (o->json)
			printf("%s{\"vm\":%u,\"dest_qp\":%u,\"dir\":\"%s\",\"packets\":%llu,"
			       "\"bytes\":%llu}",
			       first_qp ? "" : ",", key.vm_id, key.dest_qp,
			       key.dir == VSN_DIR_TO_STORAGE ? "to_storage" : "from_storage",
			       (unsigned long long)c.packets, (unsigned long long)c.bytes);
		else
			printf("  vm %-4u qp 0x%06x %-12s %10llu pkts %12llu bytes\n", key.vm_id,
			       key.dest_qp,
			       key.dir == VSN_DIR_TO_STORAGE ? "to storage" : "from storage",
			       (unsigned long long)c.packets, (unsigned long long)c.bytes);
		first_qp = false;
	}
	if (o->json)
		printf("]}");
}

int show_telemetry(const struct vsn_opts *o, const struct vsn_maps *m)
{
	bool first = true;
	__u64 v;

	printf(o->json ? "{\"stats\":{" : "telemetry counters:\n");
	for (__u32 i = 0; i < VSN_T_MAX; i++) {
		if (percpu_u64(m->tel_stats, i, &v))
			v = 0;
		if (o->json)
			printf("%s\"%s\":%llu", i ? "," : "", stat_names[i], (unsigned long long)v);
		else
			printf("  %-16s %llu\n", stat_names[i], (unsigned long long)v);
	}
	printf(o->json ? "},\"latency\":{" : "command latency (log2 histograms):\n");
	latency_scope(o, m, "backend", VSN_LAT_BE_BASE, VSN_MAX_BACKENDS, &first);
	latency_scope(o, m, "path", VSN_LAT_PATH_BASE, VSN_MAX_PATHS, &first);
	latency_scope(o, m, "vm", VSN_LAT_VM_BASE, VSN_MAX_VMS, &first);
	if (o->json)
		printf("}");
	show_roce(o, m);
	if (o->json)
		printf("}\n");
	return 0;
}
