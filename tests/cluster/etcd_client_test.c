// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The etcd client (user/cluster/etcd.c) against real etcd members, which
 * tests/cluster/test_etcd.sh starts.  Prints TAP lines, diagnostics on
 * "# " lines.
 *
 *   etcd-client-test single ENDPOINT PID     one member (PID: to SIGSTOP it)
 *   etcd-client-test cluster EP,EP,EP PID,PID,PID
 *                                            three members, the first not
 *                                            Raft's leader; kills them all
 *   etcd-client-test tls ENDPOINT CERTDIR    one member with client-cert auth
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cluster/etcd.h"

static int n_tap, n_failed;

static bool tap(bool ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool tap(bool ok, const char *fmt, ...)
{
	va_list ap;

	printf("%sok %d - ", ok ? "" : "not ", ++n_tap);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
	if (!ok)
		n_failed++;
	return ok;
}

static void diag(const char *what, int ret, const struct vsn_error *err)
{
	printf("# %s: %d (%s): %s\n", what, ret, strerror(ret < 0 ? -ret : ret), err->msg);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};

	nanosleep(&ts, NULL);
}

/* endpoints: comma-separated */
static struct etcd *open_etcd(const char *endpoints, const char *certdir, bool cert, bool ca,
			      unsigned timeout_ms, struct vsn_error *err)
{
	static char eps[ETCD_MAX_ENDPOINTS][256], files[3][512];
	struct etcd_opts o = {.timeout_ms = timeout_ms};
	char list[1024], *save = NULL, *tok;

	snprintf(list, sizeof(list), "%s", endpoints);
	for (tok = strtok_r(list, ",", &save); tok && o.n_endpoints < ETCD_MAX_ENDPOINTS;
	     tok = strtok_r(NULL, ",", &save)) {
		snprintf(eps[o.n_endpoints], sizeof(eps[0]), "%s", tok);
		o.endpoints[o.n_endpoints] = eps[o.n_endpoints];
		o.n_endpoints++;
	}
	if (certdir && ca) {
		snprintf(files[0], sizeof(files[0]), "%s/ca.pem", certdir);
		o.ca_file = files[0];
	}
	if (certdir && cert) {
		snprintf(files[1], sizeof(files[1]), "%s/client.pem", certdir);
		snprintf(files[2], sizeof(files[2]), "%s/client-key.pem", certdir);
		o.cert_file = files[1];
		o.key_file = files[2];
	}
	return etcd_open(&o, err);
}

static bool kv_is(const struct etcd_kv *kv, const char *key, const void *value, size_t len)
{
	return kv->key_len == strlen(key) && !strcmp(kv->key, key) && kv->value_len == len &&
	       !memcmp(kv->value, value, len) && kv->value[len] == '\0';
}

/* The value of key now, in buf ("" when absent); false on an error. */
static bool get(struct etcd *e, const char *key, char *buf, size_t size)
{
	struct vsn_error err = {{0}};
	struct etcd_range r = {0};
	int ret = etcd_range(e, key, false, 0, 0, &r, &err);

	if (ret) {
		diag("range", ret, &err);
		return false;
	}
	snprintf(buf, size, "%s", r.n ? r.kvs[0].value : "");
	etcd_range_free(&r);
	return true;
}

static bool put(struct etcd *e, const char *key, const char *value, int64_t *rev)
{
	struct vsn_error err = {{0}};
	int ret = etcd_put(e, key, value, strlen(value), 0, rev, &err);

	if (ret)
		diag("put", ret, &err);
	return !ret;
}

static void test_open(void)
{
	struct etcd_opts o = {.endpoints = {"127.0.0.1:2379"}, .n_endpoints = 1};
	struct vsn_error err = {{0}};
	struct etcd *e = etcd_open(&o, &err);

	tap(!e && strstr(err.msg, "cluster.endpoints"),
	    "an endpoint without http:// or https:// is refused, naming cluster.endpoints");
	etcd_close(e);
}

static void test_kv(struct etcd *e)
{
	struct vsn_error err = {{0}};
	struct etcd_range r = {0};
	int64_t rev1 = 0, rev2 = 0, n = -1;
	char bin[256], buf[64];
	unsigned i;
	bool ok;
	int ret;

	ret = etcd_put(e, "/kv/a", "one", 3, 0, &rev1, &err);
	if (ret)
		diag("put", ret, &err);
	ret = etcd_range(e, "/kv/a", false, 0, 0, &r, &err);
	if (ret)
		diag("range", ret, &err);
	tap(!ret && rev1 > 0 && r.n == 1 && r.count == 1 && kv_is(&r.kvs[0], "/kv/a", "one", 3) &&
		r.kvs[0].create_rev == rev1 && r.kvs[0].mod_rev == rev1 && r.kvs[0].version == 1 &&
		r.kvs[0].lease == 0 && r.revision >= rev1,
	    "put then range of one key: value, revisions, version");
	if (!ret)
		etcd_range_free(&r);

	ret = etcd_put(e, "/kv/a", "two", 3, 0, &rev2, &err);
	ok = !ret && rev2 > rev1;
	ret = etcd_range(e, "/kv/a", false, rev1, 0, &r, &err);
	tap(ok && !ret && r.n == 1 && kv_is(&r.kvs[0], "/kv/a", "one", 3),
	    "range at an earlier revision gives the value then");
	if (!ret)
		etcd_range_free(&r);
	ret = etcd_range(e, "/kv/a", false, 0, 0, &r, &err);
	tap(!ret && r.n == 1 && kv_is(&r.kvs[0], "/kv/a", "two", 3) && r.kvs[0].version == 2 &&
		r.kvs[0].create_rev == rev1 && r.kvs[0].mod_rev == rev2,
	    "range of the latest: the second value, version 2");
	if (!ret)
		etcd_range_free(&r);

	/* Every byte value, NUL included, and each base64 padding case. */
	for (i = 0; i < sizeof(bin); i++)
		bin[i] = (char)i;
	ok = true;
	for (i = 0; i <= 5 && ok; i++) {
		size_t len = i == 5 ? sizeof(bin) : i;

		ret = etcd_put(e, "/kv/bin", bin + (i == 5 ? 0 : 200), len, 0, NULL, &err);
		if (!ret)
			ret = etcd_range(e, "/kv/bin", false, 0, 0, &r, &err);
		if (ret) {
			diag("binary", ret, &err);
			ok = false;
			break;
		}
		ok = r.n == 1 && kv_is(&r.kvs[0], "/kv/bin", bin + (i == 5 ? 0 : 200), len);
		etcd_range_free(&r);
	}
	tap(ok, "values of 0 to 4 bytes and all 256 byte values (NUL too) round-trip");

	/* "/p0" is the prefix "/p/"'s range_end itself, "/p." sorts before. */
	ok = put(e, "/p/a", "1", NULL) && put(e, "/p/b", "2", NULL) && put(e, "/p/c", "3", NULL) &&
	     put(e, "/p0", "x", NULL) && put(e, "/p.", "y", NULL) && put(e, "/p", "z", NULL);
	ret = etcd_range(e, "/p/", true, 0, 0, &r, &err);
	tap(ok && !ret && r.n == 3 && r.count == 3 && kv_is(&r.kvs[0], "/p/a", "1", 1) &&
		kv_is(&r.kvs[1], "/p/b", "2", 1) && kv_is(&r.kvs[2], "/p/c", "3", 1),
	    "prefix range: the three keys under /p/, in order, not /p0, /p. or /p");
	if (!ret)
		etcd_range_free(&r);
	ret = etcd_range(e, "/p/", true, 0, 2, &r, &err);
	tap(!ret && r.n == 2 && r.count == 3 && kv_is(&r.kvs[1], "/p/b", "2", 1),
	    "prefix range with limit 2: two keys, count 3");
	if (!ret)
		etcd_range_free(&r);
	ret = etcd_range(e, "/nothing", false, 0, 0, &r, &err);
	tap(!ret && r.n == 0 && r.count == 0 && !r.kvs, "range of a missing key: none");
	if (!ret)
		etcd_range_free(&r);

	ret = etcd_delete(e, "/p/", true, &n, &err);
	if (ret)
		diag("delete", ret, &err);
	ok = !ret && n == 3;
	ret = etcd_range(e, "/p", true, 0, 0, &r, &err);
	tap(ok && !ret && r.n == 3 && !strcmp(r.kvs[0].key, "/p") && !strcmp(r.kvs[1].key, "/p.") &&
		!strcmp(r.kvs[2].key, "/p0"),
	    "delete with prefix /p/: 3 deleted, /p, /p. and /p0 left");
	if (!ret)
		etcd_range_free(&r);
	ret = etcd_delete(e, "/p0", false, &n, &err);
	ok = !ret && n == 1;
	ret = etcd_delete(e, "/p0", false, &n, &err);
	tap(ok && !ret && n == 0 && get(e, "/p", buf, sizeof(buf)) && !strcmp(buf, "z"),
	    "delete of one key: 1, then 0; its neighbours stay");
}

static void test_txn(struct etcd *e)
{
	struct vsn_error err = {{0}};
	struct etcd_txn_result t;
	int64_t rev = 0;
	char buf[64];
	int ret;
	bool ok;

	ok = put(e, "/txn/k", "v1", &rev);
	{
		struct etcd_cmp cmp = {
		    .key = "/txn/k", .target = ETCD_MOD, .result = ETCD_EQUAL, .num = rev};
		struct etcd_op succ[] = {
		    {.type = ETCD_OP_PUT, .key = "/txn/k", .value = "v2", .value_len = 2},
		    {.type = ETCD_OP_RANGE, .key = "/txn/k"},
		};
		struct etcd_op fail[] = {{.type = ETCD_OP_RANGE, .key = "/txn/", .prefix = true}};

		ret = etcd_txn(e, &cmp, 1, succ, 2, fail, 1, &t, &err);
		if (ret)
			diag("txn", ret, &err);
		tap(ok && !ret && t.succeeded && t.n_ranges == 2 && t.ranges[0].n == 0 &&
			t.ranges[1].n == 1 && kv_is(&t.ranges[1].kvs[0], "/txn/k", "v2", 2) &&
			t.ranges[1].kvs[0].mod_rev == t.revision && t.revision > rev,
		    "txn on the right mod revision: success ops ran, its range sees the put");
		if (!ret)
			etcd_txn_result_free(&t);

		/* The same compare again: the revision moved on. */
		succ[0].value = "v3";
		ret = etcd_txn(e, &cmp, 1, succ, 2, fail, 1, &t, &err);
		if (ret)
			diag("txn", ret, &err);
		tap(!ret && !t.succeeded && t.n_ranges == 1 && t.ranges[0].n == 1 &&
			kv_is(&t.ranges[0].kvs[0], "/txn/k", "v2", 2) &&
			get(e, "/txn/k", buf, sizeof(buf)) && !strcmp(buf, "v2"),
		    "txn on a stale mod revision: failure ops ran (prefix range), value unchanged");
		if (!ret)
			etcd_txn_result_free(&t);
	}
	{
		/* Create-if-absent and compare-value, the idioms of a claim. */
		struct etcd_cmp absent = {
		    .key = "/txn/new", .target = ETCD_CREATE, .result = ETCD_EQUAL, .num = 0};
		struct etcd_cmp value = {.key = "/txn/k",
					 .target = ETCD_VALUE,
					 .result = ETCD_NOT_EQUAL,
					 .value = "v2",
					 .value_len = 2};
		struct etcd_op p = {
		    .type = ETCD_OP_PUT, .key = "/txn/new", .value = "\0\1", .value_len = 2};
		struct etcd_op d = {.type = ETCD_OP_DELETE, .key = "/txn/", .prefix = true};
		bool first, second;

		ret = etcd_txn(e, &absent, 1, &p, 1, NULL, 0, &t, &err);
		first = !ret && t.succeeded && t.n_ranges == 1 && t.ranges[0].n == 0;
		if (!ret)
			etcd_txn_result_free(&t);
		ret = etcd_txn(e, &absent, 1, &p, 1, NULL, 0, &t, &err);
		second = !ret && !t.succeeded && t.n_ranges == 0;
		if (!ret)
			etcd_txn_result_free(&t);
		tap(first && second, "txn create-if-absent: succeeds once, then fails");
		ret = etcd_txn(e, &value, 1, NULL, 0, &d, 1, &t, &err);
		ok = !ret && !t.succeeded;
		if (!ret)
			etcd_txn_result_free(&t);
		tap(ok && get(e, "/txn/k", buf, sizeof(buf)) && !buf[0] &&
			get(e, "/txn/new", buf, sizeof(buf)) && !buf[0],
		    "txn compare on value (not equal: false): its failure op deleted the prefix");
	}
}

static void test_lease(struct etcd *e)
{
	struct vsn_error err = {{0}};
	int64_t id = 0, ttl = 0, left = 0;
	struct etcd_range r = {0};
	uint64_t t0;
	char buf[64];
	bool ok;
	int ret;

	ret = etcd_lease_grant(e, 1, &id, &ttl, &err);
	if (ret)
		diag("grant", ret, &err);
	tap(!ret && id > 0 && ttl >= 1, "lease grant: an id and a TTL (%" PRId64 " s)", ttl);
	ret = etcd_put(e, "/lease/k", "v", 1, id, NULL, &err);
	if (!ret)
		ret = etcd_range(e, "/lease/k", false, 0, 0, &r, &err);
	tap(!ret && r.n == 1 && r.kvs[0].lease == id, "a key put with the lease carries its id");
	if (!ret)
		etcd_range_free(&r);

	/* Kept alive for more than twice the TTL, the key stays. */
	ok = true;
	t0 = now_ms();
	while (ok && now_ms() - t0 < (uint64_t)ttl * 2500) {
		ret = etcd_lease_keepalive(e, id, &left, &err);
		if (ret)
			diag("keepalive", ret, &err);
		ok = !ret && left > 0;
		sleep_ms(250);
	}
	tap(ok && get(e, "/lease/k", buf, sizeof(buf)) && !strcmp(buf, "v"),
	    "keep-alives for %" PRId64 " s: the lease and its key live", ttl * 5 / 2);

	t0 = now_ms();
	while (get(e, "/lease/k", buf, sizeof(buf)) && buf[0] && now_ms() - t0 < 6000)
		sleep_ms(100);
	printf("# key gone %" PRIu64 " ms after the last keep-alive\n", now_ms() - t0);
	tap(!buf[0], "without keep-alives the key goes with the lease");
	ret = etcd_lease_keepalive(e, id, &left, &err);
	tap(ret == -ENOENT, "keep-alive of the expired lease: -ENOENT (%d: %s)", ret, err.msg);

	ret = etcd_lease_grant(e, 60, &id, &ttl, &err);
	ok = !ret && ttl == 60 && put(e, "/lease/r", "v", NULL);
	if (ok)
		ok = !etcd_put(e, "/lease/r", "w", 1, id, NULL, &err);
	ret = etcd_lease_revoke(e, id, &err);
	if (ret)
		diag("revoke", ret, &err);
	tap(ok && !ret && get(e, "/lease/r", buf, sizeof(buf)) && !buf[0],
	    "revoke: the lease's key goes at once");
	ret = etcd_lease_revoke(e, id, &err);
	tap(ret == -ENOENT, "revoke of a revoked lease: -ENOENT");
}

/* What a watch callback saw. */
struct seen {
	int n_ev, n_progress, want;
	struct {
		bool deleted;
		char key[32], value[32];
		int64_t mod_rev;
	} ev[16];
	pid_t stop_pid; /* SIGSTOP it at the first progress notification */
	uint64_t stopped_ms;
};

static int watch_cb(void *arg, int64_t revision, const struct etcd_event *ev, unsigned n)
{
	struct seen *s = arg;
	unsigned i;

	if (!n) {
		s->n_progress++;
		if (s->stop_pid && !s->stopped_ms) {
			kill(s->stop_pid, SIGSTOP);
			s->stopped_ms = now_ms();
		}
		return s->want < 0 ? 1 : 0;
	}
	for (i = 0; i < n && s->n_ev < 16; i++, s->n_ev++) {
		s->ev[s->n_ev].deleted = ev[i].deleted;
		snprintf(s->ev[s->n_ev].key, sizeof(s->ev[0].key), "%s", ev[i].kv.key);
		snprintf(s->ev[s->n_ev].value, sizeof(s->ev[0].value), "%s", ev[i].kv.value);
		s->ev[s->n_ev].mod_rev = ev[i].kv.mod_rev;
	}
	return s->want > 0 && s->n_ev >= s->want ? 2 : 0;
}

static bool ev_is(const struct seen *s, int i, bool deleted, const char *key, const char *value,
		  int64_t rev)
{
	return s->ev[i].deleted == deleted && !strcmp(s->ev[i].key, key) &&
	       !strcmp(s->ev[i].value, value) && s->ev[i].mod_rev == rev;
}

struct stopper {
	volatile bool *stop;
	unsigned after_ms;
	uint64_t at_ms;
};

static void *stopper(void *arg)
{
	struct stopper *s = arg;

	sleep_ms(s->after_ms);
	s->at_ms = now_ms();
	*s->stop = true;
	return NULL;
}

static void test_watch(struct etcd *e, const char *ep, pid_t pid)
{
	struct vsn_error err = {{0}};
	int64_t ra = 0, rb = 0, rd = 0, compact = 0;
	struct etcd_watch_opts o = {.key = "/w/", .prefix = true};
	struct seen s = {.want = 3};
	volatile bool stop = false;
	struct stopper st = {.stop = &stop, .after_ms = 300};
	struct etcd_range r = {0};
	pthread_t th;
	char cmd[512];
	uint64_t t;
	int ret;
	bool ok;

	ok = put(e, "/w/a", "1", &ra) && put(e, "/w/b", "2", &rb) && put(e, "/other", "x", NULL);
	ok = ok && !etcd_delete(e, "/w/a", false, NULL, &err) && put(e, "/w/c", "3", &rd);
	rd--; /* the delete came just before the put of /w/c */
	o.start_rev = ra;
	ret = etcd_watch(e, &o, watch_cb, &s, &err);
	if (ret != 2)
		diag("watch", ret, &err);
	tap(ok && ret == 2 && s.n_ev >= 3 && ev_is(&s, 0, false, "/w/a", "1", ra) &&
		ev_is(&s, 1, false, "/w/b", "2", rb) && ev_is(&s, 2, true, "/w/a", "", rd),
	    "watch from a revision: the puts and the delete under /w/, in order, then the "
	    "callback's own result");

	/* Compacted: the watch says from where the state must be read again. */
	snprintf(cmd, sizeof(cmd),
		 "ETCDCTL_API=3 etcdctl --endpoints=%s compaction %" PRId64 " >/dev/null", ep, rb);
	ok = !system(cmd);
	o.compact_rev = &compact;
	s = (struct seen){.want = 1};
	ret = etcd_watch(e, &o, watch_cb, &s, &err);
	tap(ok && ret == -ESTALE && compact == rb && s.n_ev == 0,
	    "watch from a compacted revision: -ESTALE, compacted up to %" PRId64 " (%s)", compact,
	    err.msg);
	ret = etcd_range(e, "/w/a", false, ra, 0, &r, &err);
	tap(ret == -ESTALE, "range at a compacted revision: -ESTALE");
	if (!ret)
		etcd_range_free(&r);

	/* The stop flag, on a quiet watch. */
	o = (struct etcd_watch_opts){.key = "/quiet", .stop = &stop};
	s = (struct seen){.want = 1};
	pthread_create(&th, NULL, stopper, &st);
	ret = etcd_watch(e, &o, watch_cb, &s, &err);
	t = now_ms();
	pthread_join(th, NULL);
	printf("# watch ended %" PRIu64 " ms after its stop flag\n", t - st.at_ms);
	tap(ret == -ECANCELED && t - st.at_ms < 200,
	    "a watch ends with -ECANCELED within 200 ms of its stop flag");

	/* Progress notifications (etcd started with a 1 s interval), then
	 * silence from a stopped member: idle_ms notices. */
	o = (struct etcd_watch_opts){.key = "/quiet", .idle_ms = 2500};
	s = (struct seen){.want = -1};
	t = now_ms();
	ret = etcd_watch(e, &o, watch_cb, &s, &err);
	tap(ret == 1 && s.n_progress == 1 && now_ms() - t < 2500,
	    "watch with idle_ms: a progress notification (n = 0) within 2.5 s");
	s = (struct seen){.want = 0, .stop_pid = pid};
	ret = etcd_watch(e, &o, watch_cb, &s, &err);
	t = now_ms();
	printf("# watch ended %" PRIu64 " ms after SIGSTOP: %s\n", t - s.stopped_ms, err.msg);
	tap(s.stopped_ms && ret == -ETIMEDOUT && t - s.stopped_ms >= 2000 &&
		t - s.stopped_ms < 3500 && strstr(err.msg, "progress"),
	    "a SIGSTOPped member: the watch ends with -ETIMEDOUT after idle_ms");
	{
		struct etcd *e2 = open_etcd(ep, NULL, false, false, 800, &err);

		t = now_ms();
		ret = e2 ? etcd_range(e2, "/w/b", false, 0, 0, &r, &err) : -1;
		t = now_ms() - t;
		tap(ret == -ETIMEDOUT && t < 1100 && strstr(err.msg, "no answer within 800 ms"),
		    "a call to the stopped member: -ETIMEDOUT within its 800 ms (%" PRIu64
		    " ms: %s)",
		    t, err.msg);
		if (!ret)
			etcd_range_free(&r);
		etcd_close(e2);
	}
	if (s.stopped_ms)
		kill(pid, SIGCONT);
	tap(get(e, "/w/b", cmd, sizeof(cmd)) && !strcmp(cmd, "2"),
	    "continued, the member answers again");
}

/* Elections: campaigners and an observer, each a thread with its handle. */
struct campaigner {
	const char *ep, *value;
	int64_t lease;
	volatile bool stop, done;
	int ret;
	uint64_t done_ms;
	struct etcd_leader_key key;
	struct vsn_error err;
};

static void *campaign_thread(void *arg)
{
	struct campaigner *c = arg;
	struct etcd *e = open_etcd(c->ep, NULL, false, false, 2000, &c->err);

	c->ret = e ? etcd_campaign(e, "el", c->lease, c->value, &c->stop, &c->key, &c->err) : -1;
	c->done_ms = now_ms();
	c->done = true;
	etcd_close(e);
	return NULL;
}

struct observer {
	const char *ep;
	volatile bool stop;
	pthread_mutex_t lock;
	char seen[8][16];
	int n, ret;
	struct vsn_error err;
};

static int observe_cb(void *arg, int64_t revision, const struct etcd_event *ev, unsigned n)
{
	struct observer *o = arg;

	pthread_mutex_lock(&o->lock);
	if (n == 1 && o->n < 8)
		snprintf(o->seen[o->n++], sizeof(o->seen[0]), "%s", ev->kv.value);
	pthread_mutex_unlock(&o->lock);
	return 0;
}

static void *observe_thread(void *arg)
{
	struct observer *o = arg;
	struct etcd *e = open_etcd(o->ep, NULL, false, false, 2000, &o->err);

	o->ret = e ? etcd_observe(e, "el", &o->stop, observe_cb, o, &o->err) : -1;
	etcd_close(e);
	return NULL;
}

static int observed(struct observer *o)
{
	int n;

	pthread_mutex_lock(&o->lock);
	n = o->n;
	pthread_mutex_unlock(&o->lock);
	return n;
}

static bool wait_for(const volatile bool *flag, unsigned ms)
{
	uint64_t t = now_ms();

	while (!*flag && now_ms() - t < ms)
		sleep_ms(20);
	return *flag;
}

static bool leader_is(struct etcd *e, const char *value)
{
	struct vsn_error err = {{0}};
	struct etcd_kv kv;
	int ret = etcd_leader(e, "el", &kv, &err);
	bool ok = !ret && !strcmp(kv.value, value);

	if (ret)
		diag("leader", ret, &err);
	else
		printf("# leader: %s\n", kv.value);
	if (!ret)
		etcd_kv_free(&kv);
	return ok;
}

static void test_election(struct etcd *e, const char *ep)
{
	struct campaigner a = {.ep = ep, .value = "A"}, b = {.ep = ep, .value = "B"},
			  c = {.ep = ep, .value = "C"}, d = {.ep = ep, .value = "D"};
	struct observer ob = {.ep = ep, .lock = PTHREAD_MUTEX_INITIALIZER};
	struct stopper st = {.stop = &d.stop, .after_ms = 300};
	struct vsn_error err = {{0}};
	pthread_t tb, tc, td, to, ts;
	struct etcd_kv kv;
	uint64_t t;
	int ret, i;
	bool ok;

	ok = !etcd_lease_grant(e, 30, &a.lease, NULL, &err) &&
	     !etcd_lease_grant(e, 30, &b.lease, NULL, &err) &&
	     !etcd_lease_grant(e, 30, &c.lease, NULL, &err) &&
	     !etcd_lease_grant(e, 30, &d.lease, NULL, &err);
	ret = etcd_leader(e, "el", &kv, &err);
	tap(ok && ret == -ENOENT, "leader of an election nobody ran: -ENOENT");
	if (!ret)
		etcd_kv_free(&kv);

	campaign_thread(&a);
	tap(a.ret == 0 && a.key.lease == a.lease && a.key.rev > 0 && a.key.key &&
		!strcmp(a.key.name, "el"),
	    "the first campaigner leads at once");
	tap(leader_is(e, "A"), "leader() gives its value");

	pthread_create(&to, NULL, observe_thread, &ob);
	for (i = 0; i < 100 && observed(&ob) < 1; i++)
		sleep_ms(20);
	pthread_create(&tb, NULL, campaign_thread, &b);
	sleep_ms(300);
	pthread_create(&tc, NULL, campaign_thread, &c);
	sleep_ms(300);
	tap(!b.done && !c.done && leader_is(e, "A"), "two more campaigners wait");

	ret = etcd_resign(e, &a.key, &err);
	if (ret)
		diag("resign", ret, &err);
	tap(!ret && wait_for(&b.done, 3000) && b.ret == 0 && !c.done && leader_is(e, "B"),
	    "the leader resigns: the next campaigner leads");
	ret = etcd_lease_revoke(e, b.lease, &err);
	tap(!ret && wait_for(&c.done, 3000) && c.ret == 0 && leader_is(e, "C"),
	    "the leader's lease is revoked: the third leads");
	for (i = 0; i < 150 && observed(&ob) < 3; i++)
		sleep_ms(20);
	pthread_mutex_lock(&ob.lock);
	tap(ob.n == 3 && !strcmp(ob.seen[0], "A") && !strcmp(ob.seen[1], "B") &&
		!strcmp(ob.seen[2], "C"),
	    "observe saw A, then B, then C (%d)", ob.n);
	pthread_mutex_unlock(&ob.lock);
	t = now_ms();
	ob.stop = true;
	pthread_join(to, NULL);
	t = now_ms() - t;
	tap(ob.ret == -ECANCELED && t < 200, "observe ends with -ECANCELED within 200 ms of stop");

	pthread_create(&td, NULL, campaign_thread, &d);
	pthread_create(&ts, NULL, stopper, &st);
	pthread_join(td, NULL);
	pthread_join(ts, NULL);
	printf("# campaign ended %" PRId64 " ms after its stop flag\n",
	       (int64_t)(d.done_ms - st.at_ms));
	tap(d.ret == -ECANCELED && d.done_ms - st.at_ms < 200,
	    "a waiting campaign ends with -ECANCELED within 200 ms of its stop flag");

	ret = etcd_lease_revoke(e, d.lease, &err);
	if (!ret)
		ret = etcd_resign(e, &c.key, &err);
	ok = !ret;
	ret = etcd_leader(e, "el", &kv, &err);
	tap(ok && ret == -ENOENT, "the last leader resigns: no leader (-ENOENT)");
	if (!ret)
		etcd_kv_free(&kv);
	pthread_join(tb, NULL);
	pthread_join(tc, NULL);
	etcd_leader_key_free(&a.key);
	etcd_leader_key_free(&b.key);
	etcd_leader_key_free(&c.key);
	etcd_leader_key_free(&d.key);
}

static int single(const char *ep, pid_t pid)
{
	struct vsn_error err = {{0}};
	struct etcd *e = open_etcd(ep, NULL, false, false, 2000, &err);

	if (!tap(e != NULL, "open %s", ep)) {
		diag("open", 0, &err);
		return 1;
	}
	test_open();
	test_kv(e);
	test_txn(e);
	test_lease(e);
	test_watch(e, ep, pid);
	test_election(e, ep);
	etcd_close(e);
	return 0;
}

static int cluster(const char *eps, const char *pids)
{
	struct vsn_error err = {{0}};
	struct etcd *e = open_etcd(eps, NULL, false, false, 2000, &err), *f;
	pid_t pid[3] = {0};
	char first[256], buf[64];
	uint64_t t;
	int ret;

	if (sscanf(pids, "%d,%d,%d", &pid[0], &pid[1], &pid[2]) != 3 || !e) {
		tap(false, "open %s (pids %s)", eps, pids);
		return 1;
	}
	snprintf(first, sizeof(first), "%s", eps);
	if (strchr(first, ','))
		*strchr(first, ',') = '\0';
	tap(put(e, "/c/k", "v", NULL) && get(e, "/c/k", buf, sizeof(buf)) && !strcmp(buf, "v") &&
		!strcmp(etcd_endpoint(e), first),
	    "three members: put and range through the first endpoint");

	kill(pid[0], SIGKILL);
	sleep_ms(100);
	t = now_ms();
	tap(put(e, "/c/k", "w", NULL) && get(e, "/c/k", buf, sizeof(buf)) && !strcmp(buf, "w") &&
		strcmp(etcd_endpoint(e), first),
	    "its member killed: the client moves on to %s (%" PRIu64 " ms)", etcd_endpoint(e),
	    now_ms() - t);
	f = open_etcd(eps, NULL, false, false, 2000, &err);
	tap(f && get(f, "/c/k", buf, sizeof(buf)) && !strcmp(buf, "w"),
	    "a new handle starting at the dead member gets there too");
	etcd_close(f);

	kill(pid[1], SIGKILL);
	kill(pid[2], SIGKILL);
	sleep_ms(100);
	t = now_ms();
	ret = etcd_put(e, "/c/k", "x", 1, 0, NULL, &err);
	t = now_ms() - t;
	printf("# %s\n", err.msg);
	tap(ret == -ECONNREFUSED && t < 2000 && strstr(err.msg, "none of 3") &&
		strstr(err.msg, "connection refused: is etcd running?"),
	    "all killed: -ECONNREFUSED within the timeout (%" PRIu64 " ms), saying so", t);
	etcd_close(e);
	return 0;
}

static int tls(const char *ep, const char *certdir)
{
	struct vsn_error err = {{0}};
	struct etcd *e = open_etcd(ep, certdir, true, true, 2000, &err);
	char buf[64], plain[256];
	int ret;

	tap(e && put(e, "/tls/k", "v", NULL) && get(e, "/tls/k", buf, sizeof(buf)) &&
		!strcmp(buf, "v"),
	    "TLS with the CA and a client certificate: put and range");
	etcd_close(e);

	e = open_etcd(ep, certdir, false, true, 2000, &err);
	ret = e ? etcd_put(e, "/tls/k", "w", 1, 0, NULL, &err) : -1;
	printf("# %s\n", err.msg);
	tap(ret == -EACCES && strstr(err.msg, "certificate") &&
		strstr(err.msg, "cluster.cert_file"),
	    "TLS without a client certificate: -EACCES, saying so");
	etcd_close(e);

	e = open_etcd(ep, certdir, true, false, 2000, &err);
	ret = e ? etcd_put(e, "/tls/k", "w", 1, 0, NULL, &err) : -1;
	printf("# %s\n", err.msg);
	tap(ret == -EACCES && strstr(err.msg, "cluster.ca_file"),
	    "TLS without the CA: the server is not trusted (-EACCES), saying so");
	etcd_close(e);

	snprintf(plain, sizeof(plain), "http://%s", ep + strlen("https://"));
	e = open_etcd(plain, NULL, false, false, 2000, &err);
	ret = e ? etcd_put(e, "/tls/k", "w", 1, 0, NULL, &err) : -1;
	printf("# %s\n", err.msg);
	tap(ret < 0 && strstr(err.msg, "https"), "http:// to a TLS member fails, naming https");
	etcd_close(e);
	return 0;
}

int main(int argc, char **argv)
{
	int ret = 2;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 4 && !strcmp(argv[1], "single"))
		ret = single(argv[2], (pid_t)atoi(argv[3]));
	else if (argc == 4 && !strcmp(argv[1], "cluster"))
		ret = cluster(argv[2], argv[3]);
	else if (argc == 4 && !strcmp(argv[1], "tls"))
		ret = tls(argv[2], argv[3]);
	else
		fprintf(stderr,
			"usage: %s single EP PID | cluster EP,EP,EP PID,PID,PID | "
			"tls EP CERTDIR\n",
			argv[0]);
	return ret ? ret : n_failed != 0;
}
