// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The controller as one host of many (docs/cluster.md): what it publishes
 * of its backends and paths, and the decisions the other hosts' views
 * change.  The etcd work itself runs on the cluster's threads
 * (user/cluster/); here, on the loop, only copies are handed over.
 *
 *   - a backend this host alone sees failing is not drained: its paths are
 *     the suspects (its routes and connections re-pathed, no reset); it is
 *     drained once the quorum of the hosts that reach it agree;
 *   - the leader's backend weights go into the consistent-hash tables;
 *   - congestion moves draw on this host's share of the cluster's budget;
 *   - the desired configuration from etcd is applied like 'vsn apply'.
 * etcd out of reach: the host decides alone, on its last good mapping.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <bpf/bpf.h>
#include <json-c/json.h>

#include "cluster/cluster.h"
#include "config/plan.h"
#include "daemon/daemon.h"

_Static_assert((int)CL_HEALTHY == (int)VSN_H_HEALTHY && (int)CL_DEGRADED == (int)VSN_H_DEGRADED &&
		   (int)CL_FAILED == (int)VSN_H_FAILED,
	       "cluster verdicts are the daemon's health states");

#define HIST_BUCKETS 32 /* log2 of microseconds */

struct fleet_be {
	int64_t conns; /* open, from connection events; recounted with the table */
	uint64_t resp, errs;
	uint32_t hist[HIST_BUCKETS];
	uint64_t bytes; /* vsn_be_stats at the last publish */
	bool suspect;	/* failed here alone: re-pathed, not drained */
};

struct ctl_fleet {
	struct cluster *cl;
	int fd;
	char host[CL_HOST_MAX];
	struct cl_view *view;
	struct cl_obs *obs;
	struct fleet_be be[VSN_MAX_BACKENDS];
	uint64_t last_pub_ns;
	int64_t weights_applied; /* revision of the weights in the tables */
	int64_t config_applied;	 /* revision of the configuration running (0: the file's) */
	bool was_reachable;
	double tokens; /* congestion moves this host may still make */
	uint64_t tokens_ns;
	uint64_t moves_granted, moves_refused;
};

static struct fleet_be *fbe(struct ctl *c, uint32_t id)
{
	return c->fleet && id < VSN_MAX_BACKENDS ? &c->fleet->be[id] : NULL;
}

void ctl_fleet_event(struct ctl *c, const struct vsn_event *e)
{
	struct fleet_be *b = fbe(c, e->backend_id);
	unsigned us, k = 0;

	if (!b)
		return;
	if (e->type == VSN_EV_CONN_OPEN) {
		b->conns++;
	} else if (e->type == VSN_EV_CONN_CLOSE) {
		if (b->conns > 0)
			b->conns--;
	} else if (e->type == VSN_EV_RESP) {
		b->resp++;
		b->errs += !!(e->status & 0x7ff);
		us = (unsigned)(e->latency_ns / 1000);
		while (us > 1 && k < HIST_BUCKETS - 1) {
			us >>= 1;
			k++;
		}
		b->hist[k]++;
	}
}

void ctl_fleet_recount(struct ctl *c, const uint32_t *per_backend)
{
	if (!c->fleet)
		return;
	for (unsigned i = 0; i < VSN_MAX_BACKENDS; i++)
		c->fleet->be[i].conns = per_backend[i];
}

/* The upper edge of the bucket holding the q-quantile, in ms. */
static float quantile_ms(const uint32_t *hist, uint64_t n, double q)
{
	uint64_t want = (uint64_t)(q * (double)n), seen = 0;

	for (unsigned k = 0; k < HIST_BUCKETS; k++) {
		seen += hist[k];
		if (seen > want)
			return (float)((double)(2ull << k) / 1000.0);
	}
	return 0;
}

static void fill_obs(struct ctl *c, double secs)
{
	struct ctl_fleet *f = c->fleet;
	struct cl_obs *o = f->obs;

	o->n_backends = 0;
	o->n_paths = 0;
	for (unsigned i = 0; i < c->n_backends && o->n_backends < CL_MAX_BACKENDS; i++) {
		const struct ctl_backend *b = &c->backends[i];
		struct fleet_be *x = &f->be[b->id];
		struct cl_backend_obs *ob = &o->backends[o->n_backends++];
		struct vsn_counter sum = {0, 0};
		uint32_t id = b->id;

		memset(ob, 0, sizeof(*ob));
		ob->id = b->id;
		ob->conns = x->conns > 0 ? (uint32_t)x->conns : 0;
		ob->iops = (float)(x->resp / secs);
		if (c->m.be_stats >= 0 && !percpu_counter(c->m.be_stats, &id, &sum)) {
			ob->bps =
			    (float)((sum.bytes - (sum.bytes >= x->bytes ? x->bytes : 0)) / secs);
			x->bytes = sum.bytes;
		}
		ob->p50_ms = quantile_ms(x->hist, x->resp, 0.5);
		ob->p99_ms = quantile_ms(x->hist, x->resp, 0.99);
		ob->err_rate = x->resp ? (float)x->errs / (float)x->resp : 0;
		ob->verdict = (uint8_t)b->damp.state;
		snprintf(ob->reason, sizeof(ob->reason), "%.*s", (int)sizeof(ob->reason) - 1,
			 b->damp.state == VSN_H_HEALTHY ? "" : b->reason);
		x->resp = x->errs = 0;
		memset(x->hist, 0, sizeof(x->hist));
	}
	for (unsigned i = 0; i < c->n_paths && o->n_paths < CL_MAX_PATHS; i++) {
		const struct ctl_path *p = &c->paths[i];
		struct cl_path_obs *op = &o->paths[o->n_paths++];

		memset(op, 0, sizeof(*op));
		op->id = p->id;
		snprintf(op->uplink, sizeof(op->uplink), "%s",
			 p->uplink >= 0 ? c->uplinks[p->uplink].cfg->interface : "");
		op->bps = (float)p->rate_bps;
		op->util = p->uplink >= 0 ? (float)c->uplinks[p->uplink].util : 0;
		op->lat_ms = (float)p->lat_ms;
		op->verdict = (uint8_t)p->damp.state;
		snprintf(op->reason, sizeof(op->reason), "%.*s", (int)sizeof(op->reason) - 1,
			 p->damp.state == VSN_H_HEALTHY ? "" : p->reason);
	}
}

static void give_backends(struct ctl *c)
{
	struct cl_backend_cfg b[CL_MAX_BACKENDS];
	unsigned n = 0;

	for (unsigned i = 0; i < c->cfg->n_backends && n < CL_MAX_BACKENDS; i++)
		b[n++] = (struct cl_backend_cfg){
		    .id = c->cfg->backends[i].id,
		    .weight = c->cfg->backends[i].weight,
		    .capacity = c->cfg->backends[i].capacity,
		};
	cluster_set_backends(c->fleet->cl, b, n);
}

int ctl_fleet_start(struct ctl *c, struct vsn_error *err)
{
	const struct vsn_cfg_cluster *cc = &c->cfg->cluster;
	struct cluster_opts o = {.cfg = cc, .campaign = true, .version = VSN_VERSION};
	struct ctl_fleet *f;

	if (!cc->enabled)
		return 0;
	f = calloc(1, sizeof(*f));
	if (!f)
		return vsn_error_set(err, -ENOMEM, "out of memory");
	f->view = calloc(1, sizeof(*f->view));
	f->obs = calloc(1, sizeof(*f->obs));
	f->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (!f->view || !f->obs || f->fd < 0) {
		vsn_error_set(err, -ENOMEM, "cluster: %s",
			      f->fd < 0 ? strerror(errno) : "out of memory");
		goto fail;
	}
	config_host_name(c->cfg, f->host, sizeof(f->host));
	o.host = f->host;
	o.notify_fd = f->fd;
	f->cl = cluster_start(&o, err);
	if (!f->cl)
		goto fail;
	f->tokens = 1;
	c->fleet = f;
	give_backends(c);
	ctl_log(c, CTL_WHY_CLUSTER,
		"\"event\":\"cluster-joined\",\"host\":\"%s\",\"endpoints\":%u,\"prefix\":\"%s\"",
		f->host, cc->n_endpoints, cc->prefix);
	return 0;
fail:
	if (f->fd >= 0)
		close(f->fd);
	free(f->view);
	free(f->obs);
	free(f);
	return -EIO;
}

void ctl_fleet_stop(struct ctl *c)
{
	struct ctl_fleet *f = c->fleet;

	if (!f)
		return;
	cluster_stop(f->cl);
	close(f->fd);
	free(f->view);
	free(f->obs);
	free(f);
	c->fleet = NULL;
}

int ctl_fleet_fd(const struct ctl *c)
{
	return c->fleet ? c->fleet->fd : -1;
}

const char *ctl_fleet_leader(const struct ctl *c)
{
	return c->fleet && c->fleet->view->reachable && c->fleet->view->leader[0]
		   ? c->fleet->view->leader
		   : NULL;
}

/* This host's verdict aside: who else reaches it, and who else fails it. */
static void others(const struct cl_backend_view *bv, unsigned *reach, unsigned *fail)
{
	*reach = bv ? bv->reaching - (bv->self_verdict != CL_NONE) : 0;
	*fail = bv ? bv->failing - (bv->self_verdict == CL_FAILED) : 0;
}

/* This host, then the others the view names failing (this host's own
 * published verdict, if it is there already, not twice). */
static void failing_names(char *out, size_t len, const char *self, const struct cl_backend_view *bv)
{
	const char *p = bv ? bv->failing_hosts : "";
	size_t n = (size_t)snprintf(out, len, "%s", self);

	while (*p && n < len) {
		size_t l = strcspn(p, ",");

		if (l != strlen(self) || strncmp(p, self, l))
			n += (size_t)snprintf(out + n, len - n, ",%.*s", (int)l, p);
		p += l + (p[l] == ',');
	}
}

bool ctl_fleet_may_drain(struct ctl *c, struct ctl_backend *b, uint64_t now)
{
	struct ctl_fleet *f = c->fleet;
	const struct cl_backend_view *bv;
	unsigned reach, fail, q;
	struct cl_backend_view me;

	if (!f)
		return true;
	cluster_view(f->cl, f->view);
	if (!f->view->reachable) {
		ctl_log(c, CTL_WHY_CLUSTER,
			"\"event\":\"backend-decided-alone\",\"backend\":%u,"
			"\"why\":\"etcd out of reach: no other host's view to weigh\"",
			b->id);
		return true;
	}
	bv = cl_view_backend(f->view, b->id);
	others(bv, &reach, &fail);
	/* This host fails it now (its verdict is not published yet). */
	memset(&me, 0, sizeof(me));
	me.reaching = reach + 1;
	q = cl_quorum(&c->cfg->cluster, &me);
	if (fail + 1 >= q) {
		char names[sizeof(bv->failing_hosts) + CL_HOST_MAX];

		failing_names(names, sizeof(names), f->host, bv);
		ctl_log(c, CTL_WHY_CLUSTER,
			"\"event\":\"backend-quorum\",\"backend\":%u,\"hosts_failing\":%u,"
			"\"hosts_reaching\":%u,\"quorum\":%u,\"failing_hosts\":\"%s\"",
			b->id, fail + 1, reach + 1, q, names);
		f->be[b->id].suspect = false;
		return true;
	}
	if (!f->be[b->id].suspect) {
		f->be[b->id].suspect = true;
		ctl_log(c, CTL_WHY_CLUSTER,
			"\"event\":\"backend-suspect-local\",\"backend\":%u,\"hosts_failing\":%u,"
			"\"hosts_reaching\":%u,\"quorum\":%u,\"action\":\"re-path; no drain, no "
			"reset\"",
			b->id, fail + 1, reach + 1, q);
		ctl_repath_backend(c, b->id, now);
	}
	return false;
}

/* Backends failed here alone: drained once the quorum agrees. */
static void recheck_suspects(struct ctl *c, uint64_t now)
{
	for (unsigned i = 0; i < c->n_backends; i++) {
		struct ctl_backend *b = &c->backends[i];
		struct fleet_be *x = &c->fleet->be[b->id];

		if (!x->suspect)
			continue;
		if (b->damp.state != VSN_H_FAILED || b->drained) {
			x->suspect = false;
			continue;
		}
		if (ctl_fleet_may_drain(c, b, now))
			ctl_drain_backend(c, b, CTL_WHY_BACKEND);
	}
}

/* The leader's weights into vsn_backends, and every table rebuilt once. */
static void apply_weights(struct ctl *c)
{
	struct ctl_fleet *f = c->fleet;
	const struct cl_view *v = f->view;
	struct vsn_error err = {.msg = ""};
	char list[512] = "";
	size_t len = 0;
	bool changed = false;

	if (!v->reachable || !v->weights_rev || v->weights_rev == f->weights_applied)
		return;
	f->weights_applied = v->weights_rev;
	if (c->cfg->ctl.observe_only)
		return;
	for (unsigned i = 0; i < c->cfg->n_backends; i++) {
		const struct vsn_cfg_backend *cb = &c->cfg->backends[i];
		const struct cl_backend_view *bv = cl_view_backend(v, cb->id);
		uint32_t w = bv && bv->weight ? bv->weight : cb->weight;
		struct vsn_backend be;

		if (bpf_map_lookup_elem(c->m.backends, &cb->id, &be) || be.weight == w)
			continue;
		be.weight = w;
		if (bpf_map_update_elem(c->m.backends, &cb->id, &be, BPF_EXIST))
			continue;
		changed = true;
		if (len < sizeof(list))
			len += (size_t)snprintf(list + len, sizeof(list) - len, "%s\"%u\":%u",
						len ? "," : "", cb->id, w);
	}
	if (!changed)
		return;
	if (plan_rehash(&c->m, 0, &err))
		vsn_warn("cluster weights: %s", err.msg);
	ctl_log(c, CTL_WHY_CLUSTER, "\"event\":\"weights\",\"from\":\"%s\",\"weights\":{%s}",
		v->weights_leader, list);
}

/* Of a refused configuration's reason, what goes into the decision log
 * (ctl_log's lines hold 256 bytes of event). */
#define CL_LOG_ERROR_MAX 128

/* to's controller section becomes a copy of from's; -ENOMEM: unchanged. */
static int copy_controller(struct vsn_config *to, const struct vsn_config *from)
{
	struct vsn_cfg_controller k = from->ctl;

	k.hostnqn = from->ctl.hostnqn ? strdup(from->ctl.hostnqn) : NULL;
	k.metrics_dir = from->ctl.metrics_dir ? strdup(from->ctl.metrics_dir) : NULL;
	k.socket = from->ctl.socket ? strdup(from->ctl.socket) : NULL;
	if ((from->ctl.hostnqn && !k.hostnqn) || (from->ctl.metrics_dir && !k.metrics_dir) ||
	    (from->ctl.socket && !k.socket)) {
		free(k.hostnqn);
		free(k.metrics_dir);
		free(k.socket);
		return -ENOMEM;
	}
	free(to->ctl.hostnqn);
	free(to->ctl.metrics_dir);
	free(to->ctl.socket);
	to->ctl = k;
	return 0;
}

/* The desired configuration from etcd, applied as 'vsn apply' would. */
static void take_config(struct ctl *c)
{
	struct ctl_fleet *f = c->fleet;
	struct vsn_error err = {.msg = ""};
	char error[1024];
	struct vsn_config *cfg;
	int64_t rev = 0;
	int ret = 0;

	cfg = cluster_take_config(f->cl, &rev, error, sizeof(error));
	if (!cfg && !error[0])
		return;
	/* Without a controller section of its own, the desired configuration
	 * keeps this host's: its socket, metrics directory and timers are the
	 * host's, like its cluster section (ctl.line 0: no such section). */
	if (cfg && !cfg->ctl.line && copy_controller(cfg, c->cfg))
		ret = vsn_error_set(&err, -ENOMEM, "out of memory");
	else if (cfg)
		ret = ctl_adopt_config(c, cfg, &err);
	if (cfg && ret) {
		snprintf(error, sizeof(error), "%.*s", (int)sizeof(error) - 1, err.msg);
		config_free(cfg);
		cfg = NULL;
	}
	if (!cfg) {
		/* The reason cut short (whole escapes only) so that the line
		 * fits ctl_log's and stays JSON; the status has all of it. */
		char esc[CL_LOG_ERROR_MAX];

		ctl_log(c, CTL_WHY_CLUSTER,
			"\"event\":\"cluster-config-refused\",\"revision\":%lld,\"error\":\"%s\","
			"\"running\":%lld",
			(long long)rev, ctl_esc(esc, sizeof(esc), error),
			(long long)f->config_applied);
		vsn_err("cluster configuration revision %lld refused, the running one kept: %s",
			(long long)rev, error);
		cluster_report_applied(f->cl, f->config_applied, error);
		return;
	}
	f->config_applied = rev;
	f->weights_applied = 0; /* the plan wrote the configured weights */
	give_backends(c);
	cluster_report_applied(f->cl, rev, NULL);
	ctl_log(c, CTL_WHY_CLUSTER, "\"event\":\"cluster-config-applied\",\"revision\":%lld",
		(long long)rev);
}

static void refresh(struct ctl *c, uint64_t now)
{
	struct ctl_fleet *f = c->fleet;

	cluster_view(f->cl, f->view);
	if (f->view->reachable != f->was_reachable) {
		f->was_reachable = f->view->reachable;
		if (f->view->reachable)
			ctl_log(c, CTL_WHY_CLUSTER,
				"\"event\":\"cluster-reachable\",\"hosts\":%u,\"revision\":%lld",
				f->view->n_hosts, (long long)f->view->revision);
		else
			ctl_log(c, CTL_WHY_CLUSTER,
				"\"event\":\"cluster-unreachable\",\"action\":\"deciding alone on "
				"local data; forwarding on the last mapping\"");
	}
	apply_weights(c);
	recheck_suspects(c, now);
}

void ctl_fleet_wake(struct ctl *c, uint64_t now)
{
	uint64_t v;

	if (!c->fleet)
		return;
	if (read(c->fleet->fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		vsn_warn("cluster: %s", strerror(errno));
	take_config(c);
	refresh(c, now);
}

void ctl_fleet_tick(struct ctl *c, uint64_t now)
{
	struct ctl_fleet *f = c->fleet;
	uint64_t every;

	if (!f)
		return;
	every = (uint64_t)c->cfg->cluster.publish_ms * NS_PER_MS;
	if (!f->last_pub_ns || now - f->last_pub_ns >= every) {
		double secs = f->last_pub_ns ? (double)(now - f->last_pub_ns) / 1e9 : every / 1e9;

		f->last_pub_ns = now;
		fill_obs(c, secs);
		cluster_publish(f->cl, f->obs);
	}
	refresh(c, now);
}

/* A token bucket filled at this host's share of the cluster's budget. */
bool ctl_fleet_move_grant(struct ctl *c, uint64_t now)
{
	struct ctl_fleet *f = c->fleet;
	double rate, cap;

	if (!f || !f->view->reachable)
		return true;
	rate = (double)c->cfg->cluster.move_budget / (f->view->n_hosts ? f->view->n_hosts : 1);
	cap = rate > 1 ? rate : 1;
	if (f->tokens_ns)
		f->tokens += rate * (double)(now - f->tokens_ns) / 1e9;
	f->tokens_ns = now;
	if (f->tokens > cap)
		f->tokens = cap;
	if (f->tokens >= 1) {
		f->tokens -= 1;
		f->moves_granted++;
		return true;
	}
	f->moves_refused++;
	return false;
}

int64_t ctl_fleet_config_rev(const struct ctl *c)
{
	return c->fleet ? c->fleet->config_applied : 0;
}

struct json_object *ctl_fleet_json(struct ctl *c)
{
	struct json_object *o;

	if (!c->fleet)
		return NULL;
	o = cluster_status_json(c->fleet->cl);
	if (!o)
		return NULL;
	json_object_object_add(o, "running_revision",
			       json_object_new_int64(c->fleet->config_applied));
	json_object_object_add(o, "moves_granted",
			       json_object_new_int64((int64_t)c->fleet->moves_granted));
	json_object_object_add(o, "moves_refused",
			       json_object_new_int64((int64_t)c->fleet->moves_refused));
	return o;
}

const struct cl_view *ctl_fleet_view(const struct ctl *c)
{
	return c->fleet ? c->fleet->view : NULL;
}

void ctl_fleet_moves(const struct ctl *c, uint64_t *granted, uint64_t *refused)
{
	*granted = c->fleet ? c->fleet->moves_granted : 0;
	*refused = c->fleet ? c->fleet->moves_refused : 0;
}

struct cluster *ctl_fleet_cluster(const struct ctl *c)
{
	return c->fleet ? c->fleet->cl : NULL;
}
