// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * This host in the cluster: three threads, each with its own etcd handle,
 * so that a slow or absent etcd holds up none of the daemon's work.
 *
 *   keeper   the lease (grant, keep-alive), this host's registration and
 *            observations (one transaction per publish interval, only what
 *            changed), the desired configuration parsed for this host, and
 *            the leader's weights while this host leads
 *   watcher  reads the prefix once, then watches it from the next
 *            revision, resuming where it was when a watch ends; only after
 *            a compaction does it read the prefix again
 *   elector  campaigns for leadership with the lease
 *
 * The loop hands observations in and takes views out under one mutex;
 * nothing it calls blocks on the network.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cluster/cluster.h"
#include "cluster/etcd.h"
#include "cluster/store.h"
#include "lib/vsn.h"

#define TICK_MS	      50
#define KEY_MAX	      256
#define MAX_TXN_OPS   128 /* etcd's default --max-txn-ops */
#define NS_PER_MS     1000000ull
#define NS_PER_S      1000000000ull
#define RETRY_MS      500 /* after etcd failed a call */
#define MAX_VIEW_HOST 100000

struct cluster {
	/* Fixed at start. */
	char host[CL_HOST_MAX];
	char prefix[KEY_MAX];
	char version[64];
	struct etcd_opts eo;
	char *strs[ETCD_MAX_ENDPOINTS + 3]; /* the copies eo points to */
	struct vsn_cfg_cluster cfg;	    /* numbers only (quorum) */
	double started;
	unsigned ttl_s, publish_ms;
	int notify_fd;
	bool campaign;

	bool t_keeper, t_watcher, t_elector;
	pthread_t keeper, watcher, elector;
	volatile bool stop;
	/* The keeper had trouble with etcd, or took a new lease: the watch
	 * may hang on a member that stopped answering, or have missed
	 * events; it ends and the prefix is read again. */
	volatile bool watch_restart;
	volatile bool elect_abort; /* the lease changed: campaign again */

	pthread_mutex_t mu; /* everything below */
	struct cl_store st;
	int64_t rev;
	int64_t lease;
	uint64_t lease_ok_ns; /* last keep-alive answered */
	bool synced;	      /* the watcher has read the prefix */
	bool leader_self;
	/* From the loop. */
	bool obs_new, applied_new;
	unsigned n_bcfg;
	struct cl_obs obs;
	struct cl_backend_cfg *bcfg;
	int64_t applied_rev;
	char applied_err[CL_REASON_MAX];
	/* The desired configuration, parsed by the keeper for the loop. */
	int64_t cfg_seen_rev; /* parsed (or refused) */
	struct vsn_config *cfg_ready;
	int64_t cfg_ready_rev;
	bool cfg_error_new;
	char cfg_error[1024];
	/* The keeper's own. */
	struct cl_obs published; /* as last written */
	uint64_t txns, puts, events, resyncs, errors, elections;
	char last_error[CL_REASON_MAX * 2];
};

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

static double wall_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};

	nanosleep(&ts, NULL);
}

static void notify(struct cluster *cl)
{
	uint64_t one = 1;

	if (cl->notify_fd >= 0 && write(cl->notify_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		cl->errors++;
}

static void key_of(const struct cluster *cl, char *out, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void key_of(const struct cluster *cl, char *out, size_t len, const char *fmt, ...)
{
	size_t n = (size_t)snprintf(out, len, "%s", cl->prefix);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(out + n, len - n, fmt, ap);
	va_end(ap);
}

static void note_error(struct cluster *cl, const struct vsn_error *err)
{
	pthread_mutex_lock(&cl->mu);
	cl->errors++;
	snprintf(cl->last_error, sizeof(cl->last_error), "%.*s", (int)sizeof(cl->last_error) - 1,
		 err->msg);
	pthread_mutex_unlock(&cl->mu);
}

/* The keeper's trouble with etcd: the watch may be stuck on the same
 * member. */
static void keeper_error(struct cluster *cl, const struct vsn_error *err)
{
	cl->watch_restart = true;
	note_error(cl, err);
}

/* ---------------------------------------------------------------- watcher */

/* Into st: cl->st under cl->mu, or the watcher's own store (below). */
static unsigned apply_kv(struct cluster *cl, struct cl_store *st, const struct etcd_kv *kv,
			 bool deleted)
{
	size_t plen = strlen(cl->prefix);

	if (kv->key_len < plen || strncmp(kv->key, cl->prefix, plen))
		return CL_CH_NONE;
	return cl_store_apply(st, kv->key + plen, deleted ? NULL : kv->value, kv->value_len,
			      kv->create_rev, kv->mod_rev);
}

/* Changes the loop must act on soon (the rest it reads each tick). */
#define CL_CH_WAKE (CL_CH_VERDICT | CL_CH_LEADER | CL_CH_WEIGHTS | CL_CH_CONFIG)

static int on_events(void *arg, int64_t revision, const struct etcd_event *ev, unsigned n)
{
	struct cluster *cl = arg;
	unsigned ch = CL_CH_NONE;

	pthread_mutex_lock(&cl->mu);
	for (unsigned i = 0; i < n; i++)
		ch |= apply_kv(cl, &cl->st, &ev[i].kv, ev[i].deleted);
	if (revision > cl->rev)
		cl->rev = revision;
	cl->events += n;
	pthread_mutex_unlock(&cl->mu);
	if (ch & CL_CH_WAKE)
		notify(cl);
	return 0;
}

/*
 * The whole prefix read again: the store rebuilt at one revision.  Built
 * aside (the watcher is the store's only writer) and swapped in, so that
 * the loop's view waits for the swap, not for every key to be parsed: at
 * 300 hosts that held cl->mu for up to 40 ms, at 1,000 for 6,000 keys.
 */
static int resync(struct cluster *cl, struct etcd *e)
{
	struct etcd_range r = {.n = 0};
	struct cl_store fresh, old;
	struct vsn_error err;
	int ret;

	ret = etcd_range(e, cl->prefix, true, 0, 0, &r, &err);
	if (ret) {
		note_error(cl, &err);
		return ret;
	}
	cl_store_init(&fresh);
	for (unsigned i = 0; i < r.n; i++)
		apply_kv(cl, &fresh, &r.kvs[i], false);
	pthread_mutex_lock(&cl->mu);
	old = cl->st;
	cl->st = fresh;
	cl->rev = r.revision;
	cl->synced = true;
	cl->resyncs++;
	pthread_mutex_unlock(&cl->mu);
	cl_store_clear(&old);
	etcd_range_free(&r);
	notify(cl);
	return 0;
}

static void *watcher_main(void *arg)
{
	struct cluster *cl = arg;
	struct vsn_error err;
	struct etcd *e = NULL;
	bool need_sync = true;

	while (!cl->stop) {
		struct etcd_watch_opts wo = {
		    .key = cl->prefix,
		    .prefix = true,
		    .stop = &cl->watch_restart,
		};
		int64_t compact = 0;
		int ret;

		if (!e && !(e = etcd_open(&cl->eo, &err))) {
			note_error(cl, &err);
			sleep_ms(RETRY_MS);
			continue;
		}
		if (need_sync) {
			if (resync(cl, e)) {
				sleep_ms(RETRY_MS);
				continue;
			}
			need_sync = false;
		}
		/* A restart asked for before this point is served by this
		 * watch: it starts from the next revision anyway. */
		cl->watch_restart = cl->stop;
		pthread_mutex_lock(&cl->mu);
		wo.start_rev = cl->rev + 1;
		pthread_mutex_unlock(&cl->mu);
		wo.compact_rev = &compact;
		ret = etcd_watch(e, &wo, on_events, cl, &err);
		if (cl->stop)
			break;
		/* Ended (a lost member, the keeper's restart): resumed from the
		 * revision after the last one seen, so nothing is missed, unless
		 * etcd compacted it away: then everything is read again. */
		if (ret == -ESTALE) {
			need_sync = true;
		} else if (ret != -ECANCELED) {
			note_error(cl, &err);
			sleep_ms(RETRY_MS);
		}
	}
	etcd_close(e);
	return NULL;
}

/* ---------------------------------------------------------------- elector */

static void *elector_main(void *arg)
{
	struct cluster *cl = arg;
	struct etcd_leader_key lk = {.name = NULL};
	struct vsn_error err;
	struct etcd *e = NULL;
	char name[KEY_MAX];

	key_of(cl, name, sizeof(name), "%s", CL_KEY_ELECTION);
	while (!cl->stop) {
		int64_t lease;
		int ret;

		pthread_mutex_lock(&cl->mu);
		lease = cl->lease;
		pthread_mutex_unlock(&cl->mu);
		if (!lease) {
			sleep_ms(TICK_MS);
			continue;
		}
		if (!e && !(e = etcd_open(&cl->eo, &err))) {
			note_error(cl, &err);
			sleep_ms(RETRY_MS);
			continue;
		}
		cl->elect_abort = false;
		ret = etcd_campaign(e, name, lease, cl->host, &cl->elect_abort, &lk, &err);
		if (ret) {
			if (ret != -ECANCELED)
				note_error(cl, &err);
			sleep_ms(ret == -ECANCELED ? TICK_MS : RETRY_MS);
			continue;
		}
		pthread_mutex_lock(&cl->mu);
		/* Elected with a lease that is still ours. */
		cl->leader_self = cl->lease == lease;
		cl->elections++;
		pthread_mutex_unlock(&cl->mu);
		notify(cl);
		while (!cl->stop && !cl->elect_abort)
			sleep_ms(TICK_MS);
		pthread_mutex_lock(&cl->mu);
		cl->leader_self = false;
		pthread_mutex_unlock(&cl->mu);
		/* Stopping: hand leadership on at once (the lease's revoke
		 * would too, a little later). */
		if (cl->stop && etcd_resign(e, &lk, &err))
			note_error(cl, &err);
		etcd_leader_key_free(&lk);
		notify(cl);
	}
	etcd_close(e);
	return NULL;
}

/* ----------------------------------------------------------------- keeper */

/* Worth publishing: a verdict, or a figure that moved by more than noise. */
static bool moved(double a, double b, double rel, double abs)
{
	double d = a > b ? a - b : b - a;

	return d > abs && d > rel * (a > b ? a : b);
}

static bool backend_changed(const struct cl_backend_obs *a, const struct cl_backend_obs *b)
{
	return a->verdict != b->verdict || strcmp(a->reason, b->reason) ||
	       moved(a->conns, b->conns, 0.05, 1) || moved(a->iops, b->iops, 0.2, 10) ||
	       moved(a->bps, b->bps, 0.2, 1e5) || moved(a->p99_ms, b->p99_ms, 0.25, 0.5) ||
	       moved(a->err_rate, b->err_rate, 0.25, 0.01);
}

static bool path_changed(const struct cl_path_obs *a, const struct cl_path_obs *b)
{
	return a->verdict != b->verdict || strcmp(a->reason, b->reason) ||
	       moved(a->bps, b->bps, 0.2, 1e5) || moved(a->util, b->util, 0.1, 0.05) ||
	       moved(a->lat_ms, b->lat_ms, 0.25, 0.5);
}

struct txn_buf {
	struct etcd_op ops[MAX_TXN_OPS];
	char *keys[MAX_TXN_OPS], *vals[MAX_TXN_OPS];
	unsigned n;
};

static void txn_buf_free(struct txn_buf *t)
{
	for (unsigned i = 0; i < t->n; i++) {
		free(t->keys[i]);
		free(t->vals[i]);
	}
	t->n = 0;
}

/* Adds a put (val, consumed) or a delete (val NULL); false when full. */
static bool txn_add(struct txn_buf *t, const char *key, char *val, int64_t lease)
{
	if (t->n >= MAX_TXN_OPS || !(t->keys[t->n] = strdup(key))) {
		free(val);
		return false;
	}
	t->vals[t->n] = val;
	t->ops[t->n] = (struct etcd_op){
	    .type = val ? ETCD_OP_PUT : ETCD_OP_DELETE,
	    .key = t->keys[t->n],
	    .value = val,
	    .value_len = val ? strlen(val) : 0,
	    .lease = val ? lease : 0,
	};
	t->n++;
	return true;
}

static const struct cl_backend_obs *find_b(const struct cl_obs *o, uint32_t id)
{
	for (unsigned i = 0; i < o->n_backends; i++)
		if (o->backends[i].id == id)
			return &o->backends[i];
	return NULL;
}

static const struct cl_path_obs *find_p(const struct cl_obs *o, uint32_t id)
{
	for (unsigned i = 0; i < o->n_paths; i++)
		if (o->paths[i].id == id)
			return &o->paths[i];
	return NULL;
}

/*
 * What changed since the last publish, as one transaction (all when full:
 * a new lease); what did not fit waits for the next interval.
 */
static void build_publish(struct cluster *cl, const struct cl_obs *now, bool full, int64_t lease,
			  bool reg, struct txn_buf *t)
{
	const struct cl_obs *was = &cl->published;
	double ts = wall_s();
	char key[KEY_MAX];

	if (reg) {
		key_of(cl, key, sizeof(key), CL_KEY_HOSTS "%s", cl->host);
		txn_add(t, key,
			cl_host_json(cl->version, cl->started, cl->applied_rev, cl->applied_err),
			lease);
	}
	for (unsigned i = 0; i < now->n_backends; i++) {
		const struct cl_backend_obs *b = &now->backends[i], *o = find_b(was, b->id);

		if (!full && o && !backend_changed(b, o))
			continue;
		key_of(cl, key, sizeof(key), CL_KEY_OBS "%s/b/%u", cl->host, b->id);
		if (!txn_add(t, key, cl_obs_backend_json(b, ts), lease))
			return;
	}
	for (unsigned i = 0; i < was->n_backends; i++)
		if (!find_b(now, was->backends[i].id)) {
			key_of(cl, key, sizeof(key), CL_KEY_OBS "%s/b/%u", cl->host,
			       was->backends[i].id);
			txn_add(t, key, NULL, 0);
		}
	for (unsigned i = 0; i < now->n_paths; i++) {
		const struct cl_path_obs *p = &now->paths[i], *o = find_p(was, p->id);

		if (!full && o && !path_changed(p, o))
			continue;
		key_of(cl, key, sizeof(key), CL_KEY_OBS "%s/p/%u", cl->host, p->id);
		if (!txn_add(t, key, cl_obs_path_json(p, ts), lease))
			return;
	}
	for (unsigned i = 0; i < was->n_paths; i++)
		if (!find_p(now, was->paths[i].id)) {
			key_of(cl, key, sizeof(key), CL_KEY_OBS "%s/p/%u", cl->host,
			       was->paths[i].id);
			txn_add(t, key, NULL, 0);
		}
}

/*
 * Publish: registration and observations in one transaction, guarded by
 * the lease still being ours (a lease that expired meanwhile would make
 * the puts fail anyway; the guard says so cleanly).
 */
static int publish(struct cluster *cl, struct etcd *e, bool full, struct vsn_error *err)
{
	struct cl_obs *now = malloc(sizeof(*now));
	struct etcd_txn_result res = {.succeeded = false};
	struct txn_buf *t = calloc(1, sizeof(*t));
	int64_t lease;
	bool reg;
	int ret = -ENOMEM;

	if (!now || !t)
		goto out;
	pthread_mutex_lock(&cl->mu);
	*now = cl->obs;
	lease = cl->lease;
	reg = full || cl->applied_new;
	cl->obs_new = false;
	cl->applied_new = false;
	build_publish(cl, now, full, lease, reg, t);
	pthread_mutex_unlock(&cl->mu);
	ret = 0;
	if (!t->n)
		goto out;
	ret = etcd_txn(e, NULL, 0, t->ops, t->n, NULL, 0, &res, err);
	pthread_mutex_lock(&cl->mu);
	if (!ret) {
		cl->txns++;
		cl->puts += t->n;
		cl->published = *now;
	} else if (reg) {
		cl->applied_new = true; /* try it again */
	}
	pthread_mutex_unlock(&cl->mu);
	etcd_txn_result_free(&res);
out:
	if (t)
		txn_buf_free(t);
	free(t);
	free(now);
	return ret;
}

/* The desired configuration, new in the store: parsed for this host here,
 * off the loop, with the same code as 'vsn apply'. */
static void parse_config(struct cluster *cl)
{
	struct vsn_config *cfg = NULL;
	char name[KEY_MAX + 32];
	struct vsn_error err;
	char *text = NULL;
	size_t len = 0;
	int64_t rev;

	pthread_mutex_lock(&cl->mu);
	rev = cl->st.config_rev;
	if (rev && rev != cl->cfg_seen_rev && cl->st.config) {
		text = malloc(cl->st.config_len + 1);
		if (text) {
			memcpy(text, cl->st.config, cl->st.config_len + 1);
			len = cl->st.config_len;
		}
	}
	pthread_mutex_unlock(&cl->mu);
	if (!text)
		return;
	snprintf(name, sizeof(name), "etcd %s%s@%lld", cl->prefix, CL_KEY_CONFIG, (long long)rev);
	cfg = config_parse(name, text, len, 0, cl->host, &err);
	if (cfg && cfg->cluster.enabled) {
		vsn_error_set(&err, -EINVAL,
			      "%s: has a cluster section: it stays in each host's own file", name);
		config_free(cfg);
		cfg = NULL;
	}
	pthread_mutex_lock(&cl->mu);
	config_free(cl->cfg_ready);
	cl->cfg_ready = cfg;
	cl->cfg_ready_rev = rev;
	cl->cfg_seen_rev = rev;
	if (!cfg) {
		snprintf(cl->cfg_error, sizeof(cl->cfg_error), "%.*s",
			 (int)sizeof(cl->cfg_error) - 1, err.msg);
		cl->cfg_error_new = true;
	}
	pthread_mutex_unlock(&cl->mu);
	free(text);
	notify(cl);
}

/* While this host leads: one step of the weights, written when changed. */
static void lead(struct cluster *cl, struct etcd *e)
{
	struct cl_view *v = malloc(sizeof(*v));
	uint32_t *prev = NULL, *next = NULL;
	char key[KEY_MAX], *val = NULL;
	struct cl_backend_cfg *bc = NULL;
	struct vsn_error err;
	unsigned n = 0;

	if (!v)
		return;
	cluster_view(cl, v);
	pthread_mutex_lock(&cl->mu);
	n = cl->n_bcfg;
	bc = n ? malloc(n * sizeof(*bc)) : NULL;
	prev = n ? calloc(n, sizeof(*prev)) : NULL;
	next = n ? calloc(n, sizeof(*next)) : NULL;
	if (bc && prev && next) {
		memcpy(bc, cl->bcfg, n * sizeof(*bc));
		/* From the weights in force, whoever gave them. */
		for (unsigned i = 0; i < n; i++)
			prev[i] = bc[i].id < VSN_MAX_BACKENDS ? cl->st.weights[bc[i].id] : 0;
	}
	pthread_mutex_unlock(&cl->mu);
	if (!bc || !prev || !next || !v->reachable)
		goto out;
	if (!cl_weights_step(v, bc, n, prev, next) && v->weights_rev)
		goto out;
	val = cl_weights_json(cl->host, next, bc, n);
	key_of(cl, key, sizeof(key), "%s", CL_KEY_WEIGHTS);
	if (val && etcd_put(e, key, val, strlen(val), 0, NULL, &err))
		note_error(cl, &err);
	else if (val)
		cl->puts++;
out:
	free(val);
	free(bc);
	free(prev);
	free(next);
	free(v);
}

static void lease_lost(struct cluster *cl)
{
	pthread_mutex_lock(&cl->mu);
	cl->lease = 0;
	cl->leader_self = false;
	pthread_mutex_unlock(&cl->mu);
	cl->elect_abort = true;
	notify(cl);
}

static void *keeper_main(void *arg)
{
	struct cluster *cl = arg;
	uint64_t last_ka = 0, last_pub = 0, last_lead = 0, ttl_ns = cl->ttl_s * NS_PER_S;
	uint64_t pub_ns = cl->publish_ms * NS_PER_MS;
	struct vsn_error err;
	struct etcd *e = NULL;
	bool full = true;

	while (!cl->stop) {
		uint64_t now = mono_ns();
		int64_t lease, left = 0;
		bool lead_now, due;

		sleep_ms(TICK_MS);
		if (!e && !(e = etcd_open(&cl->eo, &err))) {
			keeper_error(cl, &err);
			sleep_ms(RETRY_MS);
			continue;
		}
		parse_config(cl);
		pthread_mutex_lock(&cl->mu);
		lease = cl->lease;
		pthread_mutex_unlock(&cl->mu);
		if (!lease) {
			int64_t id = 0, granted = 0;

			if (etcd_lease_grant(e, cl->ttl_s, &id, &granted, &err)) {
				keeper_error(cl, &err);
				sleep_ms(RETRY_MS);
				continue;
			}
			pthread_mutex_lock(&cl->mu);
			/* The watch may have missed what happened while etcd
			 * was away: it resumes from its revision. */
			cl->watch_restart = true;
			cl->lease = id;
			cl->lease_ok_ns = mono_ns();
			memset(&cl->published, 0, sizeof(cl->published));
			pthread_mutex_unlock(&cl->mu);
			last_ka = mono_ns();
			full = true;
			continue;
		}
		if (now - last_ka >= ttl_ns / 3) {
			int ret = etcd_lease_keepalive(e, lease, &left, &err);

			last_ka = now;
			if (ret == -ENOENT) {
				lease_lost(cl);
				continue;
			}
			if (ret) {
				keeper_error(cl, &err);
				/* Not answered for a whole TTL: the lease is as
				 * good as gone, and so is leadership. */
				if (mono_ns() - cl->lease_ok_ns >= ttl_ns)
					lease_lost(cl);
				continue;
			}
			pthread_mutex_lock(&cl->mu);
			cl->lease_ok_ns = mono_ns();
			pthread_mutex_unlock(&cl->mu);
		}
		pthread_mutex_lock(&cl->mu);
		due = full || cl->applied_new || (cl->obs_new && now - last_pub >= pub_ns);
		lead_now = cl->leader_self;
		pthread_mutex_unlock(&cl->mu);
		if (due) {
			if (publish(cl, e, full, &err)) {
				keeper_error(cl, &err);
				continue;
			}
			full = false;
			last_pub = now;
		}
		if (lead_now && now - last_lead >= pub_ns) {
			last_lead = now;
			lead(cl, e);
		}
	}
	if (e) {
		pthread_mutex_lock(&cl->mu);
		int64_t lease = cl->lease;

		pthread_mutex_unlock(&cl->mu);
		/* This host's keys go now, not a TTL later. */
		if (lease && etcd_lease_revoke(e, lease, &err))
			keeper_error(cl, &err);
	}
	etcd_close(e);
	return NULL;
}

/* ---------------------------------------------------------- the loop's side */

static char *dup_keep(struct cluster *cl, unsigned *n, const char *s)
{
	char *d = s ? strdup(s) : NULL;

	if (d)
		cl->strs[(*n)++] = d;
	return d;
}

struct cluster *cluster_start(const struct cluster_opts *o, struct vsn_error *err)
{
	const struct vsn_cfg_cluster *c = o->cfg;
	struct cluster *cl = calloc(1, sizeof(*cl));
	unsigned ns = 0;
	int ret;

	if (!cl) {
		vsn_error_set(err, -ENOMEM, "cluster: out of memory");
		return NULL;
	}
	pthread_mutex_init(&cl->mu, NULL);
	cl_store_init(&cl->st);
	cl->notify_fd = o->notify_fd;
	cl->campaign = o->campaign;
	cl->ttl_s = c->lease_ttl_s;
	cl->publish_ms = c->publish_ms;
	cl->cfg.quorum = c->quorum;
	cl->started = wall_s();
	snprintf(cl->host, sizeof(cl->host), "%s", o->host);
	snprintf(cl->prefix, sizeof(cl->prefix), "%s", c->prefix);
	snprintf(cl->version, sizeof(cl->version), "%s", o->version ? o->version : "");
	for (unsigned i = 0; i < c->n_endpoints && i < ETCD_MAX_ENDPOINTS; i++)
		cl->eo.endpoints[cl->eo.n_endpoints++] = dup_keep(cl, &ns, c->endpoints[i]);
	cl->eo.ca_file = dup_keep(cl, &ns, c->ca_file);
	cl->eo.cert_file = dup_keep(cl, &ns, c->cert_file);
	cl->eo.key_file = dup_keep(cl, &ns, c->key_file);
	cl->eo.timeout_ms = c->timeout_ms;
	for (unsigned i = 0; i < cl->eo.n_endpoints; i++)
		if (!cl->eo.endpoints[i]) {
			vsn_error_set(err, -ENOMEM, "cluster: out of memory");
			goto fail;
		}
	ret = pthread_create(&cl->watcher, NULL, watcher_main, cl);
	cl->t_watcher = !ret;
	if (!ret) {
		ret = pthread_create(&cl->keeper, NULL, keeper_main, cl);
		cl->t_keeper = !ret;
	}
	if (!ret && cl->campaign) {
		ret = pthread_create(&cl->elector, NULL, elector_main, cl);
		cl->t_elector = !ret;
	}
	if (ret) {
		vsn_error_set(err, -ret, "cluster: cannot start its threads: %s", strerror(ret));
		goto fail;
	}
	return cl;
fail:
	cluster_stop(cl);
	return NULL;
}

void cluster_stop(struct cluster *cl)
{
	if (!cl)
		return;
	cl->stop = true;
	cl->elect_abort = true;
	cl->watch_restart = true;
	/* The elector resigns before the keeper revokes the lease. */
	if (cl->t_elector)
		pthread_join(cl->elector, NULL);
	if (cl->t_keeper)
		pthread_join(cl->keeper, NULL);
	if (cl->t_watcher)
		pthread_join(cl->watcher, NULL);
	cl_store_clear(&cl->st);
	config_free(cl->cfg_ready);
	free(cl->bcfg);
	for (unsigned i = 0; i < sizeof(cl->strs) / sizeof(cl->strs[0]); i++)
		free(cl->strs[i]);
	pthread_mutex_destroy(&cl->mu);
	free(cl);
}

void cluster_publish(struct cluster *cl, const struct cl_obs *obs)
{
	pthread_mutex_lock(&cl->mu);
	cl->obs = *obs;
	cl->obs_new = true;
	pthread_mutex_unlock(&cl->mu);
}

void cluster_set_backends(struct cluster *cl, const struct cl_backend_cfg *b, unsigned n)
{
	struct cl_backend_cfg *copy = n ? malloc(n * sizeof(*copy)) : NULL;

	if (n && !copy)
		return; /* the old list stays */
	if (n)
		memcpy(copy, b, n * sizeof(*copy));
	pthread_mutex_lock(&cl->mu);
	free(cl->bcfg);
	cl->bcfg = copy;
	cl->n_bcfg = n;
	pthread_mutex_unlock(&cl->mu);
}

/* Under cl->mu. */
static bool reachable_locked(const struct cluster *cl, uint64_t now)
{
	return cl->lease && cl->synced && now - cl->lease_ok_ns < (uint64_t)cl->ttl_s * NS_PER_S;
}

void cluster_view(struct cluster *cl, struct cl_view *v)
{
	struct cl_host_rec *recs = NULL;
	uint64_t now = mono_ns();
	unsigned n = 0;

	memset(v, 0, sizeof(*v));
	v->on = true;
	pthread_mutex_lock(&cl->mu);
	snprintf(v->host, sizeof(v->host), "%s", cl->host);
	v->reachable = reachable_locked(cl, now);
	v->leader_self = cl->leader_self && v->reachable;
	snprintf(v->leader, sizeof(v->leader), "%s", cl_store_leader(&cl->st));
	v->revision = cl->rev;
	if (cl->lease && now - cl->lease_ok_ns < (uint64_t)cl->ttl_s * NS_PER_S)
		v->lease_left_s = cl->ttl_s - (double)(now - cl->lease_ok_ns) / NS_PER_S;
	snprintf(v->weights_leader, sizeof(v->weights_leader), "%s", cl->st.weights_leader);
	v->weights_rev = cl->st.weights_rev;
	v->config_rev = cl->st.config_rev;
	v->txns = cl->txns;
	v->puts = cl->puts;
	v->events = cl->events;
	v->resyncs = cl->resyncs;
	v->errors = cl->errors;
	v->elections = cl->elections;
	if (cl->st.n_hosts)
		recs = malloc(cl->st.n_hosts * sizeof(*recs));
	if (recs)
		n = cl_store_hosts(&cl->st, recs, cl->st.n_hosts);
	/* Remote observations count only while this host's view is live. */
	if (v->reachable) {
		cl_view_fold(v, recs, n, wall_s());
		for (unsigned i = 0; i < v->n_backends; i++)
			v->backends[i].weight = cl->st.weights[v->backends[i].id];
	}
	v->n_hosts = n;
	pthread_mutex_unlock(&cl->mu);
	free(recs);
}

struct vsn_config *cluster_take_config(struct cluster *cl, int64_t *rev, char *error,
				       size_t error_len)
{
	struct vsn_config *cfg;

	pthread_mutex_lock(&cl->mu);
	cfg = cl->cfg_ready;
	cl->cfg_ready = NULL;
	*rev = cl->cfg_ready_rev;
	error[0] = '\0';
	if (!cfg && cl->cfg_error_new) {
		snprintf(error, error_len, "%s", cl->cfg_error);
		cl->cfg_error_new = false;
	}
	pthread_mutex_unlock(&cl->mu);
	return cfg;
}

void cluster_report_applied(struct cluster *cl, int64_t rev, const char *error)
{
	pthread_mutex_lock(&cl->mu);
	cl->applied_rev = rev;
	snprintf(cl->applied_err, sizeof(cl->applied_err), "%s", error ? error : "");
	cl->applied_new = true;
	pthread_mutex_unlock(&cl->mu);
}

int cluster_put_config(struct cluster *cl, const char *text, size_t len, int64_t expect,
		       int64_t *rev, struct vsn_error *err)
{
	struct etcd_txn_result res = {.succeeded = false};
	char key[KEY_MAX];
	struct etcd *e;
	int ret;

	key_of(cl, key, sizeof(key), "%s", CL_KEY_CONFIG);
	e = etcd_open(&cl->eo, err);
	if (!e)
		return -EIO;
	{
		const struct etcd_cmp cmp = {
		    .key = key,
		    .target = expect ? ETCD_MOD : ETCD_CREATE,
		    .result = ETCD_EQUAL,
		    .num = expect > 0 ? expect : 0,
		};
		const struct etcd_op put = {
		    .type = ETCD_OP_PUT, .key = key, .value = text, .value_len = len};
		const struct etcd_op get = {.type = ETCD_OP_RANGE, .key = key};

		ret = etcd_txn(e, &cmp, expect < 0 ? 0 : 1, &put, 1, &get, 1, &res, err);
	}
	if (ret)
		goto out;
	if (!res.succeeded) {
		int64_t now_rev =
		    res.n_ranges && res.ranges[0].n ? res.ranges[0].kvs[0].mod_rev : 0;

		ret = vsn_error_set(err, -EAGAIN,
				    "the cluster's configuration is at revision %lld, not %lld: "
				    "someone changed it meanwhile; look at it again ('vsn cluster "
				    "config'), then apply with --revision %lld",
				    (long long)now_rev, (long long)expect, (long long)now_rev);
		goto out;
	}
	*rev = res.revision;
out:
	etcd_txn_result_free(&res);
	etcd_close(e);
	return ret;
}

#define CHECK_HOSTS 64

int cluster_check_config(const char *name, const char *text, size_t len, char *hosts,
			 size_t hosts_len, struct vsn_error *err)
{
	struct vsn_config *all;
	const char *names[CHECK_HOSTS];
	size_t off = 0;
	int n, ret = 0;

	if (hosts && hosts_len)
		hosts[0] = '\0';
	if (len > CL_CONFIG_MAX)
		return vsn_error_set(err, -EFBIG, "%s: %zu bytes, at most %u go into etcd", name,
				     len, CL_CONFIG_MAX);
	/* Every host's items at once: only to learn the names. */
	all = config_parse(name, text, len, CONFIG_ALL_HOSTS, NULL, err);
	if (!all)
		return -EINVAL;
	if (all->cluster.enabled) {
		config_free(all);
		return vsn_error_set(
		    err, -EINVAL,
		    "%s: has a cluster section: that stays in each host's own file "
		    "(it says how to reach etcd)",
		    name);
	}
	n = config_hosts(all, names, CHECK_HOSTS);
	if (n < 0) {
		config_free(all);
		return vsn_error_set(err, -EINVAL, "%s: more than %d hosts named", name,
				     CHECK_HOSTS);
	}
	/* No host named: every host reads all of it. */
	if (!n)
		names[n++] = NULL;
	for (int i = 0; !ret && i < n; i++) {
		struct vsn_config *one =
		    config_parse(name, text, len, 0, names[i] ? names[i] : "\x01every", err);

		if (!one) {
			char why[VSN_ERR_MAX - 64];

			snprintf(why, sizeof(why), "%.*s", (int)sizeof(why) - 1, err->msg);
			ret = vsn_error_set(err, -EINVAL, "for host %s: %s",
					    names[i] ? names[i] : "(every host)", why);
		}
		config_free(one);
		if (names[i] && hosts && off < hosts_len)
			off += (size_t)snprintf(hosts + off, hosts_len - off, "%s%s",
						off ? "," : "", names[i]);
	}
	config_free(all);
	return ret;
}

char *cluster_config_text(struct cluster *cl, int64_t *rev)
{
	char *t = NULL;

	pthread_mutex_lock(&cl->mu);
	*rev = cl->st.config_rev;
	if (cl->st.config)
		t = strdup(cl->st.config);
	pthread_mutex_unlock(&cl->mu);
	return t;
}

static const char *health_name(uint8_t v)
{
	return v == CL_FAILED ? "failed" : v == CL_DEGRADED ? "degraded" : "healthy";
}

struct json_object *cluster_status_json(struct cluster *cl)
{
	struct json_object *o = json_object_new_object(), *hosts = json_object_new_array();
	struct json_object *bes = json_object_new_array();
	struct cl_view *v = malloc(sizeof(*v));
	double now = wall_s();

	if (!o || !hosts || !bes || !v) {
		json_object_put(o);
		json_object_put(hosts);
		json_object_put(bes);
		free(v);
		return NULL;
	}
	cluster_view(cl, v);
	json_object_object_add(o, "host", json_object_new_string(v->host));
	json_object_object_add(o, "reachable", json_object_new_boolean(v->reachable));
	json_object_object_add(o, "leader", json_object_new_string(v->leader));
	json_object_object_add(o, "leader_self", json_object_new_boolean(v->leader_self));
	json_object_object_add(o, "revision", json_object_new_int64(v->revision));
	json_object_object_add(o, "config_revision", json_object_new_int64(v->config_rev));
	json_object_object_add(o, "lease_left_s", json_object_new_double(v->lease_left_s));
	pthread_mutex_lock(&cl->mu);
	json_object_object_add(o, "applied_revision", json_object_new_int64(cl->applied_rev));
	if (cl->applied_err[0])
		json_object_object_add(o, "applied_error", json_object_new_string(cl->applied_err));
	if (cl->last_error[0])
		json_object_object_add(o, "last_error", json_object_new_string(cl->last_error));
	for (unsigned i = 0; i < cl->st.n_hosts; i++) {
		const struct cl_store_host *h = &cl->st.hosts[i];
		struct json_object *ho = json_object_new_object();

		if (!ho || !h->registered) {
			json_object_put(ho);
			continue;
		}
		json_object_object_add(ho, "name", json_object_new_string(h->rec.name));
		json_object_object_add(ho, "applied", json_object_new_int64(h->rec.applied_rev));
		if (h->rec.error[0])
			json_object_object_add(ho, "error", json_object_new_string(h->rec.error));
		json_object_object_add(
		    ho, "observation_age_s",
		    json_object_new_double(h->rec.obs_ts > 0 ? now - h->rec.obs_ts : -1));
		json_object_object_add(ho, "backends", json_object_new_int(h->rec.n_backends));
		json_object_array_add(hosts, ho);
	}
	pthread_mutex_unlock(&cl->mu);
	for (unsigned i = 0; i < v->n_backends; i++) {
		const struct cl_backend_view *b = &v->backends[i];
		struct json_object *bo = json_object_new_object();
		unsigned q = cl_quorum(&cl->cfg, b);

		if (!bo)
			continue;
		json_object_object_add(bo, "id", json_object_new_int64(b->id));
		json_object_object_add(bo, "hosts_reaching", json_object_new_int(b->reaching));
		json_object_object_add(bo, "hosts_failing", json_object_new_int(b->failing));
		json_object_object_add(bo, "hosts_degraded", json_object_new_int(b->degraded));
		json_object_object_add(bo, "quorum", json_object_new_int(q));
		json_object_object_add(bo, "state",
				       json_object_new_string(health_name(
					   b->failing >= q		   ? CL_FAILED
					   : b->degraded * 2 > b->reaching ? CL_DEGRADED
									   : CL_HEALTHY)));
		json_object_object_add(bo, "connections", json_object_new_int64((int64_t)b->conns));
		json_object_object_add(bo, "iops", json_object_new_double(b->iops));
		json_object_object_add(bo, "bps", json_object_new_double(b->bps));
		json_object_object_add(bo, "p99_ms", json_object_new_double(b->p99_ms));
		json_object_object_add(bo, "weight", json_object_new_int64(b->weight));
		if (b->failing_hosts[0])
			json_object_object_add(bo, "failing_hosts",
					       json_object_new_string(b->failing_hosts));
		json_object_array_add(bes, bo);
	}
	json_object_object_add(o, "hosts", hosts);
	json_object_object_add(o, "backends", bes);
	free(v);
	return o;
}
