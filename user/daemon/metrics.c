// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The Prometheus textfile (vsn.prom in the metrics directory), rewritten
 * atomically every metrics_interval_ms for node_exporter's textfile
 * collector.  Names follow Prometheus conventions: _total counters, base
 * units (bytes, seconds), one family per quantity with labels.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <bpf/bpf.h>

#include "cluster/cluster.h"
#include "daemon/daemon.h"
#include "lib/prom.h"

#define PROM_FILE "vsn.prom"

struct mctx {
	struct ctl *c;
	struct prom_buf b;
	int ret;
};

static void fam(struct mctx *x, const char *name, enum prom_type t, const char *help)
{
	if (!x->ret)
		x->ret = prom_family(&x->b, name, t, help);
}

static void u64s(struct mctx *x, const char *k, const char *v, uint64_t val)
{
	struct prom_label l = {k, v};

	if (!x->ret)
		x->ret = prom_sample_u64(&x->b, &l, k ? 1 : 0, val);
}

static void u64s2(struct mctx *x, const char *k1, const char *v1, const char *k2, const char *v2,
		  uint64_t val)
{
	if (!x->ret) {
		struct prom_label l[2] = {{k1, v1}, {k2, v2}};

		x->ret = prom_sample_u64(&x->b, l, 2, val);
	}
}

static void dbl2(struct mctx *x, const char *k1, const char *v1, const char *k2, const char *v2,
		 double val)
{
	if (!x->ret) {
		struct prom_label l[2] = {{k1, v1}, {k2, v2}};

		x->ret = prom_sample(&x->b, l, k1 ? (k2 ? 2 : 1) : 0, val);
	}
}

/* bytes and packets of one per-CPU counter array, for the ids given. */
static void counters(struct mctx *x, int fd, const char *what, const char *label,
		     const uint32_t *ids, unsigned n)
{
	char name[64], help[128], id[16];
	struct vsn_counter sum;

	for (int pass = 0; pass < 2; pass++) {
		snprintf(name, sizeof(name), "vsn_%s_%s_total", what, pass ? "packets" : "bytes");
		snprintf(help, sizeof(help), "%s vsn forwarded towards storage, per %s.",
			 pass ? "Packets" : "Bytes", label);
		fam(x, name, PROM_COUNTER, help);
		for (unsigned i = 0; i < n; i++) {
			if (percpu_counter(fd, &ids[i], &sum))
				continue;
			snprintf(id, sizeof(id), "%u", ids[i]);
			u64s(x, label, id, pass ? sum.packets : sum.bytes);
		}
	}
}

/* log2 ns buckets -> cumulative seconds buckets 1us .. ~17 s. */
static void latency(struct mctx *x, const char *label, unsigned base, const uint32_t *ids,
		    unsigned n)
{
	double le[VSN_LAT_BUCKETS - 9];
	uint64_t cum[VSN_LAT_BUCKETS - 9];
	unsigned nb = VSN_LAT_BUCKETS - 9;
	char id[16];

	for (unsigned i = 0; i < n && !x->ret; i++) {
		uint64_t total = 0;
		__u64 b;
		double sum = 0;
		struct prom_label l = {label, id};

		/* Bucket k holds [2^k, 2^(k+1)) ns; buckets 0..9 (< 1 us) go
		 * into the first bound. */
		for (unsigned k = 0; k < VSN_LAT_BUCKETS; k++) {
			if (percpu_u64(x->c->m.lat_hist, (base + ids[i]) * VSN_LAT_BUCKETS + k, &b))
				b = 0;
			total += b;
			sum += b * 1.5 * (double)(1ull << k) / 1e9; /* bucket middle */
			if (k >= 9 && k - 9 < nb) {
				le[k - 9] = (double)(2ull << k) / 1e9;
				cum[k - 9] = total;
			}
		}
		snprintf(id, sizeof(id), "%u", ids[i]);
		x->ret = prom_histogram(&x->b, &l, 1, le, cum, nb - 1, sum, total);
	}
}

static unsigned count_keys(int fd, size_t ksize)
{
	char k[256] = {0}, next[256];
	unsigned n = 0;
	bool first = true;

	if (fd < 0 || ksize > sizeof(k))
		return 0;
	while (!bpf_map_get_next_key(fd, first ? NULL : k, next)) {
		first = false;
		memcpy(k, next, ksize);
		n++;
	}
	return n;
}

static void health(struct mctx *x, const char *label, uint32_t id, enum vsn_health h)
{
	static const enum vsn_health all[] = {VSN_H_HEALTHY, VSN_H_DEGRADED, VSN_H_FAILED};
	char s[16];

	snprintf(s, sizeof(s), "%u", id);
	for (unsigned i = 0; i < 3; i++)
		dbl2(x, label, s, "state", pol_health_name(all[i]), h == all[i]);
}

/* Per VM: what the datapath refused of it, and its connections. */
/* This host in the cluster (docs/cluster.md): only when it is in one. */
static void cluster(struct mctx *x, struct ctl *c)
{
	const struct cl_view *v = ctl_fleet_view(c);
	uint64_t granted, refused;
	char id[16];

	if (!v)
		return;
	fam(x, "vsn_cluster_etcd_up", PROM_GAUGE,
	    "1 while etcd answers this host's keep-alives and its view is live.");
	dbl2(x, NULL, NULL, NULL, NULL, v->reachable);
	fam(x, "vsn_cluster_lease_seconds_left", PROM_GAUGE,
	    "Time left on this host's lease as last renewed (0: none).");
	dbl2(x, NULL, NULL, NULL, NULL, v->lease_left_s);
	fam(x, "vsn_cluster_leader", PROM_GAUGE, "1 while this host is the cluster's leader.");
	dbl2(x, NULL, NULL, NULL, NULL, v->leader_self);
	fam(x, "vsn_cluster_hosts", PROM_GAUGE, "Hosts registered (their leases alive).");
	dbl2(x, NULL, NULL, NULL, NULL, v->n_hosts);
	fam(x, "vsn_cluster_observation_age_seconds", PROM_GAUGE,
	    "Age of the oldest other host's observations this host's view uses.");
	dbl2(x, NULL, NULL, NULL, NULL, v->oldest_obs_s);
	fam(x, "vsn_cluster_config_revision", PROM_GAUGE,
	    "Revision of the configuration this host runs (0: its own file's).");
	dbl2(x, NULL, NULL, NULL, NULL, (double)ctl_fleet_config_rev(c));
	fam(x, "vsn_cluster_backend_connections", PROM_GAUGE,
	    "A backend's open connections, all hosts together.");
	for (unsigned i = 0; i < v->n_backends; i++) {
		snprintf(id, sizeof(id), "%u", v->backends[i].id);
		u64s(x, "backend", id, v->backends[i].conns);
	}
	fam(x, "vsn_cluster_backend_hosts", PROM_GAUGE,
	    "Hosts reaching a backend, and how many see it failing or degraded.");
	for (unsigned i = 0; i < v->n_backends; i++) {
		snprintf(id, sizeof(id), "%u", v->backends[i].id);
		u64s2(x, "backend", id, "seen", "reaching", v->backends[i].reaching);
		u64s2(x, "backend", id, "seen", "failing", v->backends[i].failing);
		u64s2(x, "backend", id, "seen", "degraded", v->backends[i].degraded);
	}
	fam(x, "vsn_cluster_backend_weight", PROM_GAUGE,
	    "The leader's weight for a backend in the consistent-hash tables (0: none given).");
	for (unsigned i = 0; i < v->n_backends; i++) {
		snprintf(id, sizeof(id), "%u", v->backends[i].id);
		u64s(x, "backend", id, v->backends[i].weight);
	}
	ctl_fleet_moves(c, &granted, &refused);
	fam(x, "vsn_cluster_moves_total", PROM_COUNTER,
	    "Congestion moves this host asked of the cluster's budget, by outcome.");
	u64s(x, "result", "granted", granted);
	u64s(x, "result", "refused", refused);
	fam(x, "vsn_cluster_etcd_requests_total", PROM_COUNTER,
	    "This host's work with etcd: transactions, keys written, watch events read, "
	    "full re-reads, errors.");
	u64s(x, "kind", "txn", v->txns);
	u64s(x, "kind", "put", v->puts);
	u64s(x, "kind", "watch_event", v->events);
	u64s(x, "kind", "resync", v->resyncs);
	u64s(x, "kind", "error", v->errors);
}

static void tenants(struct mctx *x, struct ctl *c)
{
	const struct vsn_config *cfg = c->cfg;
	char id[16];

	fam(x, "vsn_vm_refused_packets_total", PROM_COUNTER,
	    "Packets of a VM the datapath dropped: forged or martian source, over its "
	    "connection limit or rate, TCP without a SYN or a connection.");
	for (unsigned i = 0; i < cfg->n_vms; i++) {
		__u64 d[VSN_VM_DROPS];

		if (vm_drops_sum(c->m.vm_drops, cfg->vms[i].id, d))
			continue;
		snprintf(id, sizeof(id), "%u", cfg->vms[i].id);
		for (unsigned j = 0; j < VSN_VM_DROPS; j++)
			u64s2(x, "vm", id, "reason", vsn_reason_name(VSN_VM_DROP_FIRST + j), d[j]);
	}
	fam(x, "vsn_vm_connections", PROM_GAUGE, "A VM's open connections at the last count.");
	for (unsigned i = 0; i < cfg->n_vms; i++) {
		snprintf(id, sizeof(id), "%u", cfg->vms[i].id);
		u64s(x, "vm", id, c->vm_open[cfg->vms[i].id]);
	}
	fam(x, "vsn_vm_connections_limit", PROM_GAUGE, "A VM's max_connections (0: no limit).");
	for (unsigned i = 0; i < cfg->n_vms; i++) {
		snprintf(id, sizeof(id), "%u", cfg->vms[i].id);
		u64s(x, "vm", id, cfg->vms[i].max_connections);
	}
	fam(x, "vsn_vm_connections_lost_total", PROM_COUNTER,
	    "A VM's connection entries that went without being seen closing (evicted "
	    "from a full table).");
	for (unsigned i = 0; i < cfg->n_vms; i++) {
		snprintf(id, sizeof(id), "%u", cfg->vms[i].id);
		u64s(x, "vm", id, c->vm_lost[cfg->vms[i].id]);
	}
	fam(x, "vsn_conn_table_fill_ratio", PROM_GAUGE,
	    "Entries in the connection table over its capacity (the log warns at 0.8).");
	dbl2(x, NULL, NULL, NULL, NULL, (double)c->conn_entries / VSN_MAX_CONNS);
}

int ctl_metrics_write(struct ctl *c, struct vsn_error *err)
{
	struct mctx x = {.c = c};
	uint32_t ids[VSN_MAX_BACKENDS];
	__u64 v;
	unsigned i, n;

	if (!c->cfg->ctl.metrics_dir || !c->cfg->ctl.metrics_dir[0])
		return 0;
	prom_init(&x.b);
	for (i = 0; i < c->n_paths; i++)
		ids[i] = c->paths[i].id;
	counters(&x, c->m.path_stats, "path", "path", ids, c->n_paths);
	fam(&x, "vsn_command_latency_seconds", PROM_HISTOGRAM,
	    "NVMe/TCP command latency seen by the datapath, per path.");
	latency(&x, "path", VSN_LAT_PATH_BASE, ids, c->n_paths);
	fam(&x, "vsn_path_health", PROM_GAUGE, "1 for the path's current health state.");
	for (i = 0; i < c->n_paths; i++)
		health(&x, "path", c->paths[i].id, c->paths[i].damp.state);
	for (i = 0; i < c->n_backends; i++)
		ids[i] = c->backends[i].id;
	counters(&x, c->m.be_stats, "backend", "backend", ids, c->n_backends);
	fam(&x, "vsn_backend_command_latency_seconds", PROM_HISTOGRAM,
	    "NVMe/TCP command latency seen by the datapath, per backend.");
	latency(&x, "backend", VSN_LAT_BE_BASE, ids, c->n_backends);
	fam(&x, "vsn_backend_health", PROM_GAUGE, "1 for the backend's current health state.");
	for (i = 0; i < c->n_backends; i++)
		health(&x, "backend", c->backends[i].id, c->backends[i].damp.state);
	for (i = 0; i < c->cfg->n_vms; i++)
		ids[i] = c->cfg->vms[i].id;
	counters(&x, c->m.vm_stats, "vm", "vm", ids, c->cfg->n_vms);
	tenants(&x, c);
	cluster(&x, c);

	fam(&x, "vsn_uplink_utilisation_ratio", PROM_GAUGE,
	    "vsn's rate over the uplink's configured capacity (1 when its qdisc throttles).");
	for (i = 0; i < c->n_uplinks; i++)
		dbl2(&x, "uplink", c->uplinks[i].cfg->interface, NULL, NULL, c->uplinks[i].util);
	fam(&x, "vsn_uplink_carrier", PROM_GAUGE, "1 when the uplink is up with carrier.");
	for (i = 0; i < c->n_uplinks; i++)
		dbl2(&x, "uplink", c->uplinks[i].cfg->interface, NULL, NULL, c->uplinks[i].carrier);

	fam(&x, "vsn_datapath_attached", PROM_GAUGE,
	    "1 while vsn's pins and programs are in place; 0 after a detach (changes are "
	    "refused until an attach).");
	dbl2(&x, NULL, NULL, NULL, NULL, !c->detached);
	fam(&x, "vsn_reroutes_total", PROM_COUNTER,
	    "Connections moved to another path or reset, by reason.");
	for (i = 0; i < CTL_WHY_MAX; i++)
		u64s(&x, "reason", ctl_why_name(i), c->reroutes[i]);
	fam(&x, "vsn_decisions_total", PROM_COUNTER, "Changes the controller logged, by reason.");
	for (i = 0; i < CTL_WHY_MAX; i++)
		u64s(&x, "reason", ctl_why_name(i), c->decisions[i]);
	fam(&x, "vsn_datapath_packets_total", PROM_COUNTER,
	    "Packets the datapath saw, by what it did with them.");
	for (i = 0; i < VSN_R_MAX; i++) {
		struct vsn_counter s;
		__u32 r = i;

		if (!percpu_counter(c->m.reasons, &r, &s))
			u64s(&x, "reason", vsn_reason_name(i), s.packets);
	}

	fam(&x, "vsn_map_entries", PROM_GAUGE, "Entries in each routing map.");
	n = count_keys(c->m.routes, sizeof(struct vsn_route_key));
	u64s(&x, "map", VSN_MAP_ROUTES, n);
	u64s(&x, "map", VSN_MAP_VOLUMES, count_keys(c->m.volumes, sizeof(struct vsn_volume_key)));
	u64s(&x, "map", VSN_MAP_BACKENDS, count_keys(c->m.backends, sizeof(__u32)));
	u64s(&x, "map", VSN_MAP_PATHS, count_keys(c->m.paths, sizeof(__u32)));
	u64s(&x, "map", VSN_MAP_CONNS, c->conn_entries);
	fam(&x, "vsn_map_capacity", PROM_GAUGE, "Maximum entries of each routing map.");
	u64s(&x, "map", VSN_MAP_ROUTES, VSN_MAX_ROUTES);
	u64s(&x, "map", VSN_MAP_VOLUMES, VSN_MAX_VOLUMES);
	u64s(&x, "map", VSN_MAP_BACKENDS, VSN_MAX_BACKENDS);
	u64s(&x, "map", VSN_MAP_PATHS, VSN_MAX_PATHS);
	u64s(&x, "map", VSN_MAP_CONNS, VSN_MAX_CONNS);

	fam(&x, "vsn_ringbuf_dropped_total", PROM_COUNTER,
	    "Telemetry events lost because the ring buffer was full.");
	u64s(&x, NULL, NULL, percpu_u64(c->m.tel_stats, VSN_T_EV_DROPPED, &v) ? 0 : v);
	fam(&x, "vsn_ringbuf_events_total", PROM_COUNTER, "Telemetry events the daemon read.");
	u64s(&x, NULL, NULL, c->ring_events);
	fam(&x, "vsn_daemon_tick_seconds", PROM_GAUGE, "Duration of the last decision tick.");
	dbl2(&x, NULL, NULL, NULL, NULL, c->tick_seconds_last);
	fam(&x, "vsn_daemon_tick_seconds_max", PROM_GAUGE, "Longest decision tick so far.");
	dbl2(&x, NULL, NULL, NULL, NULL, c->tick_seconds_max);
	fam(&x, "vsn_daemon_ticks_total", PROM_COUNTER, "Decision ticks run.");
	u64s(&x, NULL, NULL, c->ticks);
	fam(&x, "vsn_api_requests_total", PROM_COUNTER, "API requests served.");
	u64s(&x, NULL, NULL, c->api_requests);
	fam(&x, "vsn_api_clients_dropped_total", PROM_COUNTER,
	    "API clients refused (busy) or closed at their deadline.");
	u64s(&x, NULL, NULL, c->api_dropped);

	if (!x.ret)
		x.ret = prom_write_atomic(c->cfg->ctl.metrics_dir, PROM_FILE, &x.b);
	if (x.ret)
		vsn_error_set(err, 0, "metrics: %s", prom_error(&x.b));
	prom_free(&x.b);
	return x.ret;
}
