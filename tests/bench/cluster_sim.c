// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * make bench, part cluster: many simulated hosts in one process, each a
 * real struct cluster from cluster_start() (its own keeper and watcher
 * threads, an elector where it campaigns, its own etcd connections), fed
 * synthetic observations with cluster_publish() as the daemon's loop does
 * (tests/bench/cluster.py runs several of these side by side).  No BPF.
 *
 *   cluster-sim --endpoints URL[,URL...] --prefix P --first I --hosts N
 *               --total T [--campaign C] [--publish-ms MS] [--ttl S]
 *               [--quorum Q] [--change P] [--seed S] [--start-rate R]
 *
 * Hosts are named vsnB-h%05u by their global index I..I+N-1 out of T; those
 * with an index below C stand for leader.  Each has 3 backends (ids 1-3) and
 * 2 paths (ids 1-2): every publish interval the figures jitter by a little
 * (below what cluster.c counts as a change), and each backend or path steps
 * (by more than that) with probability P, so that only some publishes carry
 * a change.  Hosts start R a second (0: all at once), each publishing at
 * once.  The daemon's loop would also take a view every tick: that cost
 * is measured (view_us) rather than burnt.
 *
 * Commands on stdin, one JSON line on stdout for each:
 *   ready SECONDS        until every host here is reachable, sees T hosts
 *                        and every host's observations of backend 1
 *   stats                counters (the hosts' txns, puts, events...),
 *                        process and driver CPU, RSS, threads, the
 *                        longest view and loop round since the last stats
 *   fail T0 MS SNAP I,I|all
 *                        at T0 (CLOCK_MONOTONIC ns) the hosts listed fail
 *                        backend 1 (CL_FAILED) in what they publish; then,
 *                        for every host here, when its view first shows
 *                        backend 1 failing on at least the quorum of hosts
 *                        (ms after T0, null if not within MS), and when
 *                        those failing here saw their publish committed
 *                        (polled until the quorum of them has); stats
 *                        taken at SNAP too
 *   heal T0 MS           at T0 they are healthy again: when each host sees
 *                        backend 1 failing nowhere
 *   errors               the hosts' last errors, and how many had each
 *   quit                 every host stopped (leases revoked), in parallel
 * End of input: exit at once.
 */
#define _GNU_SOURCE /* RUSAGE_THREAD */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cluster/cluster.h"
#include "cluster/etcd.h"
#include "lib/err.h"

#define N_BACKENDS  3
#define N_PATHS	    2
#define FAIL_ID	    1
#define LINE_MAX_   65536
#define COMMIT_POLL 2 /* ms between looks at the failing hosts' txns */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* xorshift64*: the same sequence for a seed, cheap. */
static uint64_t rng_state = 88172645463325252ull;

static double rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (double)((rng_state * 2685821657736338717ull) >> 11) / (double)(1ull << 53);
}

/* One figure's level: it steps now and then, and jitters around it. */
struct level {
	double base, cur;
	int dir;
};

struct host {
	struct cluster *cl;
	char name[32];
	unsigned idx; /* global */
	int efd;
	uint64_t next_pub;
	struct level iops[N_BACKENDS], bw[N_PATHS];
	double conns[N_BACKENDS]; /* at the base load */
	bool failing;
	/* The current measurement. */
	bool want_fail; /* agreement sought: failing >= quorum, else none failing */
	uint64_t agreed;
	uint64_t txns0, committed;
	bool watch_commit;
};

static struct {
	struct host *h;
	unsigned n, first, total, campaign;
	unsigned publish_ms;
	double change;
	struct vsn_cfg_cluster cfg;
	struct cl_obs obs;   /* scratch: cluster_publish copies it */
	struct cl_view view; /* scratch */
	int ep;
	uint64_t views, view_ns, view_max_ns, round_max_ns, wakes;
	uint64_t publishes;
	long base_rss_kib;
} S;

static void die(const char *what)
{
	fprintf(stderr, "cluster-sim: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void level_init(struct level *l, double base)
{
	l->base = base;
	l->cur = base;
	l->dir = 1;
}

/* Jitter of +-2 %, or a step of 35 % (beyond cluster.c's noise) with
 * probability S.change. */
static double level_next(struct level *l)
{
	if (rnd() < S.change) {
		l->cur = l->dir > 0 ? l->base * 1.35 : l->base;
		l->dir = -l->dir;
	}
	return l->cur * (0.98 + 0.04 * rnd());
}

static void fill_obs(struct host *h)
{
	struct cl_obs *o = &S.obs;

	o->n_backends = N_BACKENDS;
	o->n_paths = N_PATHS;
	for (unsigned i = 0; i < N_BACKENDS; i++) {
		struct cl_backend_obs *b = &o->backends[i];
		double iops = level_next(&h->iops[i]);

		memset(b, 0, sizeof(*b));
		b->id = i + 1;
		/* Connections step with the load, and do not jitter. */
		b->conns = (uint32_t)(h->conns[i] * (h->iops[i].cur / h->iops[i].base));
		b->iops = (float)iops;
		b->bps = (float)(iops * 32768);
		b->p50_ms = (float)(0.3 * (0.98 + 0.04 * rnd()));
		b->p99_ms = (float)(1.5 * (0.98 + 0.04 * rnd()));
		b->verdict = CL_HEALTHY;
		if (b->id == FAIL_ID && h->failing) {
			b->verdict = CL_FAILED;
			b->err_rate = 1;
			snprintf(b->reason, sizeof(b->reason), "bench: backend %u failed", b->id);
		}
	}
	for (unsigned i = 0; i < N_PATHS; i++) {
		struct cl_path_obs *p = &o->paths[i];
		double bps = level_next(&h->bw[i]);

		memset(p, 0, sizeof(*p));
		p->id = i + 1;
		snprintf(p->uplink, sizeof(p->uplink), "ens1f%u", i);
		p->bps = (float)bps;
		p->util = (float)(bps / 1.25e9);
		p->lat_ms = (float)(0.2 * (0.98 + 0.04 * rnd()));
	}
}

static void publish(struct host *h, uint64_t now)
{
	fill_obs(h);
	cluster_publish(h->cl, &S.obs);
	S.publishes++;
	h->next_pub = now + (uint64_t)S.publish_ms * 1000000ull;
}

static void view(struct host *h)
{
	uint64_t t = now_ns(), d;

	cluster_view(h->cl, &S.view);
	d = now_ns() - t;
	S.views++;
	S.view_ns += d;
	if (d > S.view_max_ns)
		S.view_max_ns = d;
}

/* Does this host's view say what the measurement waits for? */
static bool agrees(const struct host *h)
{
	const struct cl_backend_view *b = cl_view_backend(&S.view, FAIL_ID);

	if (!S.view.reachable)
		return false;
	if (h->want_fail)
		return b && b->failing >= cl_quorum(&S.cfg, b);
	return !b || !b->failing;
}

/* A number from /proc/self/status ("VmRSS:" in KiB, "Threads:"). */
static long status_field(const char *key)
{
	size_t n = strlen(key);
	char line[256];
	long v = -1;
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, n))
			v = strtol(line + n, NULL, 10);
	fclose(f);
	return v;
}

static double tv_s(struct timeval tv)
{
	return (double)tv.tv_sec + tv.tv_usec / 1e6;
}

/* The counters as one JSON object (no braces: the caller adds them). */
static void stats(char *out, size_t len)
{
	uint64_t txns = 0, puts = 0, events = 0, resyncs = 0, errors = 0, elections = 0;
	unsigned reachable = 0, leaders = 0, hosts_min = ~0u;
	struct rusage self, drv;

	for (unsigned i = 0; i < S.n; i++) {
		view(&S.h[i]);
		txns += S.view.txns;
		puts += S.view.puts;
		events += S.view.events;
		resyncs += S.view.resyncs;
		errors += S.view.errors;
		elections += S.view.elections;
		reachable += S.view.reachable;
		leaders += S.view.leader_self;
		if (S.view.n_hosts < hosts_min)
			hosts_min = S.view.n_hosts;
	}
	getrusage(RUSAGE_SELF, &self);
	getrusage(RUSAGE_THREAD, &drv);
	snprintf(out, len,
		 "\"t_ns\":%" PRIu64 ",\"hosts\":%u,\"txns\":%" PRIu64 ",\"puts\":%" PRIu64
		 ",\"events\":%" PRIu64 ",\"resyncs\":%" PRIu64 ",\"errors\":%" PRIu64
		 ",\"elections\":%" PRIu64 ",\"reachable\":%u,\"leaders\":%u,\"hosts_seen_min\":%u,"
		 "\"cpu_s\":%.4f,\"driver_cpu_s\":%.4f,\"rss_kib\":%ld,\"base_rss_kib\":%ld,"
		 "\"threads\":%ld,\"publishes\":%" PRIu64 ",\"views\":%" PRIu64
		 ",\"view_us\":%.2f,\"view_max_us\":%.1f,\"round_max_ms\":%.2f,\"wakes\":%" PRIu64,
		 now_ns(), S.n, txns, puts, events, resyncs, errors, elections, reachable, leaders,
		 hosts_min == ~0u ? 0 : hosts_min, tv_s(self.ru_utime) + tv_s(self.ru_stime),
		 tv_s(drv.ru_utime) + tv_s(drv.ru_stime), status_field("VmRSS:"), S.base_rss_kib,
		 status_field("Threads:"), S.publishes, S.views,
		 S.views ? S.view_ns / 1e3 / S.views : 0, S.view_max_ns / 1e3, S.round_max_ns / 1e6,
		 S.wakes);
	/* The longest ones are since the last stats. */
	S.view_max_ns = 0;
	S.round_max_ns = 0;
}

/* Commands read so far (stdin is non-blocking). */
static char in_buf[LINE_MAX_];
static size_t in_used;

static void read_stdin(void)
{
	ssize_t r = read(0, in_buf + in_used, sizeof(in_buf) - 1 - in_used);

	if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
		_exit(0); /* the bench went away: so do we */
	if (r > 0) {
		in_used += (size_t)r;
		in_buf[in_used] = '\0';
	}
}

/* The failing hosts here whose publish was seen committed. */
static unsigned committed(void)
{
	unsigned n = 0;

	for (unsigned i = 0; i < S.n; i++)
		n += S.h[i].committed != 0;
	return n;
}

/* A look at the failing hosts' txns, until the quorum of them (here) has
 * its publish committed: when the quorum formed, at this poll's resolution. */
static void poll_commits(void)
{
	uint64_t t = now_ns();
	bool left = false;

	for (unsigned i = 0; i < S.n; i++) {
		struct host *h = &S.h[i];

		if (!h->watch_commit)
			continue;
		view(h);
		if (S.view.txns > h->txns0) {
			h->committed = t;
			h->watch_commit = false;
		}
		left |= h->watch_commit;
	}
	if (left && committed() >= S.cfg.quorum)
		for (unsigned i = 0; i < S.n; i++)
			S.h[i].watch_commit = false;
}

static bool polling(void)
{
	for (unsigned i = 0; i < S.n; i++)
		if (S.h[i].watch_commit)
			return true;
	return false;
}

/*
 * The loop: publishes on each host's schedule, views on each host's
 * notification (timed at the wake-up, as the daemon's loop would learn
 * it), and, while a measurement runs (t0 set), the failing hosts' commits.
 * Runs until stdin has a command (until 0), or until until, or done().
 */
static void loop(uint64_t until, bool (*done)(void), uint64_t t0, void (*at_t0)(void))
{
	struct epoll_event ev[256];
	uint64_t last_poll = 0, woke = now_ns();
	bool got_line = false;

	for (;;) {
		uint64_t now = now_ns(), next = now + 50000000ull, t;
		int n, timeout;

		if (t0 && at_t0 && now >= t0) {
			at_t0();
			at_t0 = NULL;
		}
		for (unsigned i = 0; i < S.n; i++) {
			if (S.h[i].next_pub <= now)
				publish(&S.h[i], now);
			if (S.h[i].next_pub < next)
				next = S.h[i].next_pub;
		}
		if (t0 && !at_t0 && polling()) {
			if (now - last_poll >= COMMIT_POLL * 1000000ull) {
				last_poll = now;
				poll_commits();
			}
			if (last_poll + COMMIT_POLL * 1000000ull < next)
				next = last_poll + COMMIT_POLL * 1000000ull;
		}
		if ((done && !at_t0 && done()) || (until && now_ns() >= until) ||
		    (!until && got_line))
			return;
		if (until && until < next)
			next = until;
		if (t0 && at_t0 && t0 < next)
			next = t0;
		now = now_ns();
		if (now - woke > S.round_max_ns)
			S.round_max_ns = now - woke;
		timeout = next > now ? (int)((next - now + 999999) / 1000000) : 0;
		n = epoll_wait(S.ep, ev, 256, timeout);
		if (n < 0 && errno != EINTR)
			die("epoll_wait");
		t = woke = now_ns();
		for (int i = 0; i < n; i++) {
			uint64_t val;
			struct host *h;

			if (ev[i].data.u32 == ~0u) {
				read_stdin();
				got_line = strchr(in_buf, '\n') != NULL;
				continue;
			}
			h = &S.h[ev[i].data.u32];
			if (read(h->efd, &val, sizeof(val)) < 0 && errno != EAGAIN)
				die("eventfd");
			S.wakes++;
			if (h->agreed)
				continue;
			view(h);
			if (t0 && !at_t0 && agrees(h))
				h->agreed = t;
		}
	}
}

/* ------------------------------------------------------------ commands */

static unsigned ready_hosts(void)
{
	unsigned ok = 0;

	for (unsigned i = 0; i < S.n; i++) {
		const struct cl_backend_view *b;

		view(&S.h[i]);
		b = cl_view_backend(&S.view, FAIL_ID);
		ok += S.view.reachable && S.view.n_hosts == S.total && b &&
		      b->reaching == S.total && S.view.leader[0];
	}
	return ok;
}

static bool all_ready(void)
{
	static uint64_t last;
	uint64_t now = now_ns();

	if (now - last < 250000000ull)
		return false;
	last = now;
	return ready_hosts() == S.n;
}

static bool all_agreed(void)
{
	for (unsigned i = 0; i < S.n; i++)
		if (!S.h[i].agreed)
			return false;
	return !polling();
}

static bool *fail_set;
static bool fail_on;

static void set_failing(void)
{
	uint64_t now = now_ns();

	for (unsigned i = 0; i < S.n; i++) {
		struct host *h = &S.h[i];

		h->want_fail = fail_on;
		h->agreed = 0;
		h->committed = 0;
		h->watch_commit = false;
		if (!fail_set[i])
			continue;
		h->failing = fail_on;
		view(h);
		h->txns0 = S.view.txns;
		h->watch_commit = true;
		publish(h, now);
	}
}

static void json_times(FILE *f, const char *key, uint64_t t0, bool only_failing, bool commit)
{
	bool first = true;

	fprintf(f, "\"%s\":[", key);
	for (unsigned i = 0; i < S.n; i++) {
		uint64_t t = commit ? S.h[i].committed : S.h[i].agreed;

		if (only_failing && !fail_set[i])
			continue;
		fprintf(f, "%s", first ? "" : ",");
		first = false;
		if (t)
			fprintf(f, "%.2f", ((double)t - (double)t0) / 1e6);
		else
			fprintf(f, "null");
	}
	fprintf(f, "]");
}

static void cmd_measure(char *args, bool fail)
{
	uint64_t t0 = strtoull(strtok(args, " "), NULL, 10);
	uint64_t ms = strtoull(strtok(NULL, " "), NULL, 10), snap = 0;
	char st0[2048], st1[2048] = "";
	unsigned n_fail = 0;

	st0[0] = '\0';
	if (fail) {
		char *list = NULL;

		snap = strtoull(strtok(NULL, " "), NULL, 10);
		list = strtok(NULL, " \n");
		for (unsigned i = 0; i < S.n; i++)
			fail_set[i] = false;
		if (list && !strcmp(list, "all")) {
			for (unsigned i = 0; i < S.n; i++)
				fail_set[i] = true;
		} else {
			for (char *p = list ? strtok(list, ",") : NULL; p; p = strtok(NULL, ",")) {
				unsigned g = (unsigned)strtoul(p, NULL, 10);

				if (g >= S.first && g < S.first + S.n)
					fail_set[g - S.first] = true;
			}
		}
	}
	for (unsigned i = 0; i < S.n; i++)
		n_fail += fail_set[i];
	fail_on = fail;
	/* The stats for the window just before T0 (they take a view of every
	 * host), then T0 and on to the end. */
	loop(t0 - 50000000ull, NULL, 0, NULL);
	stats(st0, sizeof(st0));
	loop(t0 + ms * 1000000ull, all_agreed, t0, set_failing);
	if (snap) {
		if (now_ns() < snap)
			loop(snap, NULL, 0, NULL);
		stats(st1, sizeof(st1));
	}
	printf("{\"%s\":%u,", fail ? "failing" : "healing", n_fail);
	json_times(stdout, "agree_ms", t0, false, false);
	printf(",");
	json_times(stdout, "commit_ms", t0, true, true);
	printf(",\"at_t0\":{%s},\"at_snap\":{%s}}\n", st0, st1);
	fflush(stdout);
}

static void *stopper(void *arg)
{
	cluster_stop(arg);
	return NULL;
}

static void cmd_quit(void)
{
	pthread_t *t = calloc(S.n, sizeof(*t));
	uint64_t t0 = now_ns();

	for (unsigned i = 0; i < S.n; i++)
		if (!t || pthread_create(&t[i], NULL, stopper, S.h[i].cl)) {
			cluster_stop(S.h[i].cl);
			if (t)
				t[i] = 0;
		}
	for (unsigned i = 0; t && i < S.n; i++)
		if (t[i])
			pthread_join(t[i], NULL);
	printf("{\"stopped\":%u,\"stop_ms\":%.1f}\n", S.n, (now_ns() - t0) / 1e6);
	fflush(stdout);
	exit(0);
}

/* The hosts' last errors, each different one once (with how many hosts
 * had it last), as JSON strings. */
static void cmd_errors(void)
{
	struct json_object *seen = json_object_new_object();

	for (unsigned i = 0; seen && i < S.n; i++) {
		struct json_object *st = cluster_status_json(S.h[i].cl), *e, *c;

		if (st && json_object_object_get_ex(st, "last_error", &e)) {
			char why[160];

			/* The endpoint and figures vary: the first words say it. */
			snprintf(why, sizeof(why), "%s", json_object_get_string(e));
			if (json_object_object_get_ex(seen, why, &c))
				json_object_int_inc(c, 1);
			else
				json_object_object_add(seen, why, json_object_new_int(1));
		}
		json_object_put(st);
	}
	printf("{\"last_errors\":%s}\n",
	       seen ? json_object_to_json_string_ext(seen, JSON_C_TO_STRING_PLAIN) : "{}");
	json_object_put(seen);
	fflush(stdout);
}

static void command(char *line)
{
	char buf[4096];

	line[strcspn(line, "\n")] = '\0';
	if (!strncmp(line, "ready ", 6)) {
		uint64_t t0 = now_ns();
		double s = strtod(line + 6, NULL);
		unsigned ok;

		loop(t0 + (uint64_t)(s * 1e9), all_ready, 0, NULL);
		ok = ready_hosts();
		stats(buf, sizeof(buf));
		printf("{\"ready\":%s,\"ready_hosts\":%u,\"ready_s\":%.2f,%s}\n",
		       ok == S.n ? "true" : "false", ok, (now_ns() - t0) / 1e9, buf);
	} else if (!strcmp(line, "stats")) {
		stats(buf, sizeof(buf));
		printf("{%s}\n", buf);
	} else if (!strncmp(line, "fail ", 5)) {
		cmd_measure(line + 5, true);
		return;
	} else if (!strncmp(line, "heal ", 5)) {
		cmd_measure(line + 5, false);
		return;
	} else if (!strcmp(line, "errors")) {
		cmd_errors();
		return;
	} else if (!strcmp(line, "quit")) {
		cmd_quit();
	} else {
		printf("{\"error\":\"unknown command\"}\n");
	}
	fflush(stdout);
}

static void usage(void)
{
	fprintf(stderr, "usage: cluster-sim --endpoints URL[,URL...] --prefix P --first I "
			"--hosts N --total T [--campaign C] [--publish-ms MS] [--ttl S] "
			"[--quorum Q] [--change P] [--seed S] [--start-rate R]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static char *eps[ETCD_MAX_ENDPOINTS];
	struct epoll_event ev = {.events = EPOLLIN};
	struct cl_backend_cfg bc[N_BACKENDS];
	struct rlimit rl;
	char *ep_arg = NULL, *prefix = "/vsnB/";
	unsigned ttl = 3, quorum = 2, n_ep = 0;
	double rate = 0;

	S.publish_ms = 1000;
	S.change = 0.05;
	S.campaign = 3;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!v)
			usage();
		i++;
		if (!strcmp(a, "--endpoints"))
			ep_arg = strdup(v);
		else if (!strcmp(a, "--prefix"))
			prefix = argv[i];
		else if (!strcmp(a, "--first"))
			S.first = (unsigned)strtoul(v, NULL, 10);
		else if (!strcmp(a, "--hosts"))
			S.n = (unsigned)strtoul(v, NULL, 10);
		else if (!strcmp(a, "--total"))
			S.total = (unsigned)strtoul(v, NULL, 10);
		else if (!strcmp(a, "--campaign"))
			S.campaign = (unsigned)strtoul(v, NULL, 10);
		else if (!strcmp(a, "--publish-ms"))
			S.publish_ms = (unsigned)strtoul(v, NULL, 10);
		else if (!strcmp(a, "--ttl"))
			ttl = (unsigned)strtoul(v, NULL, 10);
		else if (!strcmp(a, "--quorum"))
			quorum = (unsigned)strtoul(v, NULL, 10);
		else if (!strcmp(a, "--change"))
			S.change = strtod(v, NULL);
		else if (!strcmp(a, "--start-rate"))
			rate = strtod(v, NULL);
		else if (!strcmp(a, "--seed"))
			rng_state ^= strtoull(v, NULL, 10) * 0x9e3779b97f4a7c15ull;
		else
			usage();
	}
	if (!ep_arg || !S.n || !S.publish_ms)
		usage();
	if (!S.total)
		S.total = S.first + S.n;
	for (char *p = strtok(ep_arg, ","); p && n_ep < ETCD_MAX_ENDPOINTS; p = strtok(NULL, ","))
		eps[n_ep++] = p;
	/* Two etcd connections and an eventfd per host. */
	if (!getrlimit(RLIMIT_NOFILE, &rl)) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	S.cfg = (struct vsn_cfg_cluster){
	    .enabled = true,
	    .endpoints = eps,
	    .n_endpoints = n_ep,
	    .prefix = prefix,
	    .lease_ttl_s = ttl,
	    .publish_ms = S.publish_ms,
	    .timeout_ms = 1000,
	    .quorum = quorum,
	    .move_budget = 64,
	};
	for (unsigned i = 0; i < N_BACKENDS; i++)
		bc[i] = (struct cl_backend_cfg){.id = i + 1, .weight = 100, .capacity = 100000};
	S.h = calloc(S.n, sizeof(*S.h));
	fail_set = calloc(S.n, sizeof(*fail_set));
	S.ep = epoll_create1(EPOLL_CLOEXEC);
	if (!S.h || !fail_set || S.ep < 0)
		die("setup");
	ev.data.u32 = ~0u;
	if (epoll_ctl(S.ep, EPOLL_CTL_ADD, 0, &ev))
		die("epoll stdin");
	if (fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK))
		die("stdin");
	S.base_rss_kib = status_field("VmRSS:");
	for (unsigned i = 0; i < S.n; i++) {
		struct host *h = &S.h[i];
		struct vsn_error err = {.msg = ""};
		struct cluster_opts o = {.cfg = &S.cfg, .version = "bench"};

		h->idx = S.first + i;
		snprintf(h->name, sizeof(h->name), "vsnB-h%05u", h->idx);
		h->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (h->efd < 0)
			die("eventfd");
		ev.data.u32 = i;
		if (epoll_ctl(S.ep, EPOLL_CTL_ADD, h->efd, &ev))
			die("epoll");
		for (unsigned b = 0; b < N_BACKENDS; b++) {
			level_init(&h->iops[b], 800 + 400 * rnd());
			h->conns[b] = 16 + (unsigned)(16 * rnd());
		}
		for (unsigned p = 0; p < N_PATHS; p++)
			level_init(&h->bw[p], 2e8 + 2e8 * rnd());
		o.host = h->name;
		o.campaign = h->idx < S.campaign;
		o.notify_fd = h->efd;
		h->cl = cluster_start(&o, &err);
		if (!h->cl) {
			fprintf(stderr, "cluster-sim: %s: %s\n", h->name, err.msg);
			return 1;
		}
		cluster_set_backends(h->cl, bc, N_BACKENDS);
		publish(h, now_ns());
		/* Then each host's loop publishes on its own phase. */
		h->next_pub = now_ns() + (uint64_t)(rnd() * S.publish_ms * 1e6);
		if (rate > 0) {
			struct timespec ts = {.tv_nsec = (long)(1e9 / rate)};

			if (rate < 1)
				ts = (struct timespec){.tv_sec = 1};
			nanosleep(&ts, NULL);
		}
	}
	printf("{\"started\":%u}\n", S.n);
	fflush(stdout);
	for (;;) {
		char *nl;

		loop(0, NULL, 0, NULL);
		while ((nl = strchr(in_buf, '\n'))) {
			size_t len = (size_t)(nl - in_buf) + 1;
			char cmd[4096];

			snprintf(cmd, sizeof(cmd), "%.*s", (int)len, in_buf);
			memmove(in_buf, in_buf + len, in_used - len + 1);
			in_used -= len;
			command(cmd);
		}
	}
}
