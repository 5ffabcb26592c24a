// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * vbn-tool: the parts of make bench that must not pay for a process or a
 * Python call per operation.  Every subcommand prints one JSON object.
 *
 *   run    BPF_PROG_TEST_RUN of a pinned program: repeat N (the kernel's mean
 *          duration) or N calls of one packet each (median of the kernel's
 *          per-call durations); sets the wrapper's bench_cfg first
 *   fill   synthetic connections (both entries) into vsn_conns and the floor
 *   clear  empty a hash map;  count  its entries
 *   rate   update rates of vsn_conns and vsn_routes, single and batched
 *   ring   ring-buffer events per second a reader keeps up with, no drop
 *   prog   run_cnt and run_time_ns of a pinned program (BPF_ENABLE_STATS)
 */
#include <errno.h>
#include <stddef.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "vsn_types.h"
#include "pkt_bench.h"

#define MAX_PKT	   65536
#define CHUNK	   8192
#define TEL_SENT   8 /* enum vsn_tel_stat: VSN_T_EV_SENT */
#define TEL_DROP   9 /* VSN_T_EV_DROPPED */
#define RING_BATCH 64

static void die(const char *fmt, const char *arg)
{
	fprintf(stderr, "vbn-tool: error: ");
	fprintf(stderr, fmt, arg);
	fputc('\n', stderr);
	exit(1);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Options: every subcommand takes "--name value" pairs. */
struct opts {
	const char *prog, *data, *out, *ctx, *cfg, *drain, *map, *floor, *routes, *ring, *tel;
	const char *proto, *vm_mac, *gw_mac;
	long repeat, ctr, stage, calls, call_seq_step, n, first, field, flags, seq0, seq_step,
	    vm_id;
	long vm_ifindex, path, volume, backend, sport, vport, bport, batch, seconds, reader;
	uint32_t addr0, vip, be;
};

static uint32_t ip4(const char *s)
{
	struct in_addr a;

	if (inet_pton(AF_INET, s, &a) != 1)
		die("'%s' is not an IPv4 address", s);
	return ntohl(a.s_addr);
}

static void mac(const char *s, __u8 *out)
{
	unsigned v[6];

	if (!s || sscanf(s, "%x:%x:%x:%x:%x:%x", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) != 6)
		die("'%s' is not a MAC address", s ? s : "(none)");
	for (int i = 0; i < 6; i++)
		out[i] = v[i];
}

static long num(const char *s)
{
	char *end;
	long v = strtol(s, &end, 0);

	if (*s == 0 || *end)
		die("'%s' is not a number", s);
	return v;
}

#define OPT(name, type)                                                                            \
	{                                                                                          \
#name, type, offsetof(struct opts, name)                                           \
	}
enum { T_STR, T_NUM, T_IP4 };
static const struct {
	const char *name;
	int type;
	size_t off;
} opt_table[] = {
    OPT(prog, T_STR),	       OPT(data, T_STR),    OPT(out, T_STR),
    OPT(ctx, T_STR),	       OPT(cfg, T_STR),	    OPT(drain, T_STR),
    OPT(map, T_STR),	       OPT(floor, T_STR),   OPT(routes, T_STR),
    OPT(ring, T_STR),	       OPT(tel, T_STR),	    OPT(proto, T_STR),
    OPT(vm_mac, T_STR),	       OPT(gw_mac, T_STR),  OPT(repeat, T_NUM),
    OPT(ctr, T_NUM),	       OPT(stage, T_NUM),   OPT(calls, T_NUM),
    OPT(call_seq_step, T_NUM), OPT(n, T_NUM),	    OPT(first, T_NUM),
    OPT(field, T_NUM),	       OPT(flags, T_NUM),   OPT(seq0, T_NUM),
    OPT(seq_step, T_NUM),      OPT(vm_id, T_NUM),   OPT(vm_ifindex, T_NUM),
    OPT(path, T_NUM),	       OPT(volume, T_NUM),  OPT(backend, T_NUM),
    OPT(sport, T_NUM),	       OPT(vport, T_NUM),   OPT(bport, T_NUM),
    OPT(batch, T_NUM),	       OPT(seconds, T_NUM), OPT(reader, T_NUM),
    OPT(addr0, T_IP4),	       OPT(vip, T_IP4),	    OPT(be, T_IP4),
};

static void parse_opts(int argc, char **argv, struct opts *o)
{
	memset(o, 0, sizeof(*o));
	o->repeat = 1;
	o->n = 1;
	o->vm_id = 1;
	o->batch = CHUNK;
	o->seconds = 1;
	o->reader = 1;
	o->proto = "tcp";
	for (int i = 2; i < argc; i += 2) {
		const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		unsigned j;

		if (strncmp(k, "--", 2) || !v)
			die("expected --option value at '%s'", k);
		for (j = 0; j < sizeof(opt_table) / sizeof(opt_table[0]); j++)
			if (!strcmp(k + 2, opt_table[j].name))
				break;
		if (j == sizeof(opt_table) / sizeof(opt_table[0]))
			die("unknown option %s", k);
		if (opt_table[j].type == T_STR)
			*(const char **)((char *)o + opt_table[j].off) = v;
		else if (opt_table[j].type == T_NUM)
			*(long *)((char *)o + opt_table[j].off) = num(v);
		else
			*(uint32_t *)((char *)o + opt_table[j].off) = ip4(v);
	}
}

static int pinned(const char *path)
{
	int fd;

	if (!path)
		die("%s", "a pinned object is missing (see the options)");
	fd = bpf_obj_get(path);
	if (fd < 0)
		die("cannot open %s (is the bench set up?)", path);
	return fd;
}

static size_t read_file(const char *path, void *buf, size_t max)
{
	FILE *f = fopen(path, "rb");
	size_t n;

	if (!f)
		die("cannot read %s", path);
	n = fread(buf, 1, max, f);
	fclose(f);
	return n;
}

static void write_file(const char *path, const void *buf, size_t len)
{
	FILE *f = fopen(path, "wb");

	if (!f || fwrite(buf, 1, len, f) != len)
		die("cannot write %s", path);
	fclose(f);
}

static int cmp_u32(const void *a, const void *b)
{
	__u32 x = *(const __u32 *)a, y = *(const __u32 *)b;

	return x < y ? -1 : x > y;
}

static int drain_cb(void *ctx, void *data, size_t len)
{
	(*(long *)ctx)++;
	return 0;
}

/* Consume whatever the ring holds (a run that creates connections emits an
 * event each; a full ring would change what the next run costs). */
static long drain(const char *path)
{
	struct ring_buffer *rb;
	long n = 0;
	int fd = pinned(path);

	rb = ring_buffer__new(fd, drain_cb, &n, NULL);
	if (!rb)
		die("cannot read the ring buffer %s", path);
	ring_buffer__consume(rb);
	ring_buffer__free(rb);
	close(fd);
	return n;
}

static int cmd_run(const struct opts *o)
{
	static __u8 data[MAX_PKT], out[MAX_PKT + 4096], ctx[256], ctx_out[256];
	LIBBPF_OPTS(bpf_test_run_opts, t);
	size_t dlen, clen = 0;
	int fd = pinned(o->prog), err;
	long drained = -1;

	dlen = read_file(o->data, data, sizeof(data));
	if (o->ctx)
		clen = read_file(o->ctx, ctx, sizeof(ctx));
	if (clen == sizeof(struct xdp_md) && !((struct xdp_md *)ctx)->data_end)
		((struct xdp_md *)ctx)->data_end = dlen; /* the kernel wants it */
	if (o->cfg) {
		struct bench_cfg c = {
		    .n = o->n,
		    .field = o->field,
		    .addr0 = o->addr0,
		    .flags = o->flags,
		    .seq0 = o->seq0,
		    .seq_step = o->seq_step,
		    .last = o->ctr + o->repeat - 1,
		    .stage = o->stage,
		    .ctr = o->ctr,
		};
		__u32 zero = 0;
		int cfd = pinned(o->cfg);

		if (bpf_map_update_elem(cfd, &zero, &c, BPF_ANY))
			die("cannot write the bench configuration %s", o->cfg);
		close(cfd);
	}
	t.data_in = data;
	t.data_size_in = dlen;
	t.data_out = out;
	t.data_size_out = sizeof(out);
	if (clen) {
		t.ctx_in = ctx;
		t.ctx_size_in = clen;
		t.ctx_out = ctx_out;
		t.ctx_size_out = sizeof(ctx_out);
	}
	if (o->calls > 0) {
		/* One packet per call: the kernel's duration of each. */
		__u32 *d = calloc(o->calls, sizeof(*d)), seq = 0;
		bool same = true;
		__u32 ret0 = 0;

		if (!d)
			die("%s", "out of memory");
		if (o->call_seq_step && dlen >= 42)
			seq = ntohl(*(__u32 *)(data + 38));
		for (long i = 0; i < o->calls; i++) {
			if (o->call_seq_step && dlen >= 42) {
				__u32 s = htonl(seq + i * o->call_seq_step);

				memcpy(data + 38, &s, 4);
			}
			t.repeat = 1;
			t.data_size_out = sizeof(out);
			t.ctx_size_out = clen ? sizeof(ctx_out) : 0;
			err = bpf_prog_test_run_opts(fd, &t);
			if (err)
				die("BPF_PROG_TEST_RUN of %s failed", o->prog);
			d[i] = t.duration;
			if (i == 0)
				ret0 = t.retval;
			else if (t.retval != ret0)
				same = false;
		}
		qsort(d, o->calls, sizeof(*d), cmp_u32);
		if (o->drain)
			drained = drain(o->drain);
		if (o->out) /* the output of the last call */
			write_file(o->out, out, t.data_size_out);
		printf("{\"retval\":%u,\"same_retval\":%s,\"calls\":%ld,\"median\":%u,\"p10\":%u,"
		       "\"p90\":%u,\"drained\":%ld}\n",
		       t.retval, same ? "true" : "false", o->calls, d[o->calls / 2],
		       d[o->calls / 10], d[o->calls * 9 / 10], drained);
		free(d);
		return 0;
	}
	t.repeat = o->repeat;
	err = bpf_prog_test_run_opts(fd, &t);
	if (err)
		die("BPF_PROG_TEST_RUN of %s failed", o->prog);
	if (o->drain)
		drained = drain(o->drain);
	if (o->out)
		write_file(o->out, out, t.data_size_out);
	printf("{\"retval\":%u,\"duration\":%u,\"repeat\":%ld,\"out_len\":%u,\"drained\":%ld}\n",
	       t.retval, t.duration, o->repeat, t.data_size_out, drained);
	close(fd);
	return 0;
}

/* Connection i of a fill: its two entries, as vsn would have written them. */
static void conn_pair(const struct opts *o, long i, struct vsn_conn_key *k, struct vsn_conn *v,
		      struct vsn_conn_key *rk, struct vsn_conn *rv)
{
	bool udp = !strcmp(o->proto, "udp");
	__u32 vm = htonl(o->addr0 + i), vip = htonl(o->vip), be = htonl(o->be);
	struct vsn_addr *mapped[] = {&k->saddr, &k->daddr,   &rk->saddr,      &rk->daddr,
				     &v->vip,	&v->vm_addr, &v->backend_addr};

	memset(k, 0, sizeof(*k));
	memset(v, 0, sizeof(*v));
	memset(rk, 0, sizeof(*rk));
	for (unsigned m = 0; m < sizeof(mapped) / sizeof(mapped[0]); m++)
		mapped[m]->a[2] = htonl(0xffff); /* IPv4-mapped */
	k->saddr.a[3] = vm;
	k->daddr.a[3] = vip;
	k->sport = htons(o->sport);
	k->dport = htons(o->vport);
	k->proto = udp ? 17 : 6;
	k->dir = VSN_DIR_TO_STORAGE;
	k->vm_id = o->vm_id;
	v->vm_id = o->vm_id;
	v->volume_id = o->volume;
	v->backend_id = o->backend;
	/* Established connections: storage answered them. */
	v->flags = ((udp || o->vip == o->be) ? 0 : VSN_CONN_DNAT) | VSN_CONN_ANSWERED;
	v->vm_ifindex = o->vm_ifindex;
	v->vip.a[3] = vip;
	v->vm_addr.a[3] = vm;
	v->backend_addr.a[3] = be;
	v->vip_port = htons(o->vport);
	v->backend_port = htons(o->bport);
	mac(o->vm_mac, v->vm_mac);
	mac(o->gw_mac, v->gw_mac);
	v->last_path = o->path;
	v->vm_port = htons(o->sport);
	v->snat_port = htons(o->sport);
	v->conn_id = 0x40000000u + i;
	v->pdu.next_seq = o->seq0;
	v->pdu.flags = VSN_PDU_SYNCED | VSN_PDU_QID;
	v->pdu.qid = 1;
	rk->saddr.a[3] = be;
	rk->daddr.a[3] = vm;
	rk->sport = udp ? 0 : htons(o->bport);
	rk->dport = htons(udp ? VSN_PORT_ROCEV2 : o->sport);
	rk->proto = k->proto;
	rk->dir = VSN_DIR_FROM_STORAGE;
	*rv = *v;
}

static void update_batch(int fd, void *keys, void *vals, __u32 n, const char *what)
{
	LIBBPF_OPTS(bpf_map_batch_opts, bo);
	__u32 cnt = n;

	if (bpf_map_update_batch(fd, keys, vals, &cnt, &bo) || cnt != n)
		die("batch update of %s failed", what);
}

static int cmd_fill(const struct opts *o)
{
	struct vsn_conn_key *keys = calloc(2 * CHUNK, sizeof(*keys));
	struct vsn_conn *vals = calloc(2 * CHUNK, sizeof(*vals));
	int fd = pinned(o->map), ffd = o->floor ? pinned(o->floor) : -1;
	double t0 = now_s(), t;

	if (!keys || !vals)
		die("%s", "out of memory");
	for (long i = o->first; i < o->first + o->n;) {
		__u32 m = 0;

		for (; m < 2 * CHUNK && i < o->first + o->n; i++, m += 2)
			conn_pair(o, i, &keys[m], &vals[m], &keys[m + 1], &vals[m + 1]);
		update_batch(fd, keys, vals, m, o->map);
		if (ffd >= 0)
			update_batch(ffd, keys, vals, m, o->floor);
	}
	t = now_s() - t0;
	printf("{\"connections\":%ld,\"entries\":%ld,\"seconds\":%.3f,\"entries_per_s\":%.0f}\n",
	       o->n, 2 * o->n, t, 2 * o->n * (ffd >= 0 ? 2 : 1) / t);
	free(keys);
	free(vals);
	return 0;
}

/* Keys of a hash map, at most max of them (key size ksize). */
static __u32 keys_of(int fd, void *buf, size_t ksize, __u32 max)
{
	char k[256], next[256];
	__u32 n = 0;
	bool first = true;

	while (n < max && !bpf_map_get_next_key(fd, first ? NULL : k, next)) {
		first = false;
		memcpy(k, next, ksize);
		memcpy((char *)buf + (size_t)n * ksize, next, ksize);
		n++;
	}
	return n;
}

static int cmd_clear(const struct opts *o)
{
	int fd = pinned(o->map);
	struct bpf_map_info info = {};
	__u32 len = sizeof(info), n;
	long total = 0;
	void *buf;

	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		die("cannot read what %s is", o->map);
	buf = malloc((size_t)CHUNK * info.key_size);
	if (!buf)
		die("%s", "out of memory");
	while ((n = keys_of(fd, buf, info.key_size, CHUNK)) > 0) {
		LIBBPF_OPTS(bpf_map_batch_opts, bo);
		__u32 cnt = n;

		if (bpf_map_delete_batch(fd, buf, &cnt, &bo)) {
			for (__u32 i = 0; i < n; i++)
				bpf_map_delete_elem(fd, (char *)buf + (size_t)i * info.key_size);
		}
		total += n;
	}
	printf("{\"deleted\":%ld}\n", total);
	free(buf);
	return 0;
}

static int cmd_count(const struct opts *o)
{
	int fd = pinned(o->map);
	char k[256], next[256];
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);
	long n = 0;
	bool first = true;
	double t0 = now_s();

	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		die("cannot read what %s is", o->map);
	while (!bpf_map_get_next_key(fd, first ? NULL : k, next)) {
		first = false;
		memcpy(k, next, info.key_size);
		n++;
	}
	printf("{\"entries\":%ld,\"max_entries\":%u,\"seconds\":%.3f}\n", n, info.max_entries,
	       now_s() - t0);
	return 0;
}

/*
 * Update rates: n conn entries one syscall each, then batched; routes (the
 * controller's moves) one each and batched.  The entries written are
 * synthetic and deleted again by the caller (clear).
 */
static int cmd_rate(const struct opts *o)
{
	struct vsn_conn_key *keys = calloc(2 * o->n, sizeof(*keys));
	struct vsn_conn *vals = calloc(2 * o->n, sizeof(*vals));
	struct vsn_route_key *rk = calloc(o->n, sizeof(*rk));
	struct vsn_route *rv = calloc(o->n, sizeof(*rv));
	int fd = pinned(o->map), rfd = pinned(o->routes);
	double t0, single, batch, rsingle, rbatch;
	long nr = o->n < VSN_MAX_ROUTES / 2 ? o->n : VSN_MAX_ROUTES / 2;

	if (!keys || !vals || !rk || !rv)
		die("%s", "out of memory");
	for (long i = 0; i < o->n; i++)
		conn_pair(o, i, &keys[2 * i], &vals[2 * i], &keys[2 * i + 1], &vals[2 * i + 1]);
	t0 = now_s();
	for (long i = 0; i < 2 * o->n; i++)
		if (bpf_map_update_elem(fd, &keys[i], &vals[i], BPF_ANY))
			die("single update of %s failed", o->map);
	single = now_s() - t0;
	t0 = now_s();
	for (long i = 0; i < 2 * o->n; i += o->batch) {
		__u32 m = 2 * o->n - i < o->batch ? 2 * o->n - i : o->batch;

		update_batch(fd, &keys[i], &vals[i], m, o->map);
	}
	batch = now_s() - t0;
	for (long i = 0; i < nr; i++) {
		rk[i].vm_id = 1000 + i / 1024; /* VMs no config has */
		rk[i].volume_id = 1 + i % 1024;
		rk[i].backend_id = 1;
		rv[i].path_id = 1 + i % 2;
	}
	t0 = now_s();
	for (long i = 0; i < nr; i++)
		if (bpf_map_update_elem(rfd, &rk[i], &rv[i], BPF_ANY))
			die("single update of %s failed", o->routes);
	rsingle = now_s() - t0;
	t0 = now_s();
	for (long i = 0; i < nr; i += o->batch) {
		__u32 m = nr - i < o->batch ? nr - i : o->batch;

		update_batch(rfd, &rk[i], &rv[i], m, o->routes);
	}
	rbatch = now_s() - t0;
	for (long i = 0; i < nr; i++)
		bpf_map_delete_elem(rfd, &rk[i]);
	printf("{\"conn_entries\":%ld,\"conns_single_per_s\":%.0f,\"conns_batch_per_s\":%.0f,"
	       "\"batch\":%ld,\"routes\":%ld,\"routes_single_per_s\":%.0f,"
	       "\"routes_batch_per_s\":%.0f}\n",
	       2 * o->n, 2 * o->n / single, 2 * o->n / batch, o->batch, nr, nr / rsingle,
	       nr / rbatch);
	free(keys);
	free(vals);
	free(rk);
	free(rv);
	return 0;
}

static __u64 tel_stat(int fd, __u32 idx)
{
	int ncpu = libbpf_num_possible_cpus();
	__u64 *v = calloc(ncpu > 0 ? ncpu : 1, sizeof(*v)), sum = 0;

	if (!v || ncpu <= 0 || bpf_map_lookup_elem(fd, &idx, v))
		die("cannot read %s", "vsn_tel_stats");
	for (int i = 0; i < ncpu; i++)
		sum += v[i];
	free(v);
	return sum;
}

struct reader {
	struct ring_buffer *rb;
	volatile bool stop;
	long got;
};

static void *reader_main(void *arg)
{
	struct reader *r = arg;

	while (!r->stop)
		ring_buffer__poll(r->rb, 10);
	ring_buffer__consume(r->rb);
	return NULL;
}

/* One step of cmd_ring: events at rate for secs; true when none dropped.
 * *emitted: the rate reached (the producer has its limits too). */
static bool ring_step(int pfd, int tfd, double rate, double secs, bool first, double *emitted)
{
	__u64 s0 = tel_stat(tfd, TEL_SENT), d0 = tel_stat(tfd, TEL_DROP), sent, dropped;
	static __u8 pkt[64];
	double t0 = now_s(), t;
	long runs = 0;

	/* Paced: RING_BATCH runs at a time, then catch up with the clock. */
	while ((t = now_s() - t0) < secs) {
		LIBBPF_OPTS(bpf_test_run_opts, tr);
		double due = runs * 64.0 / rate;

		if (t < due) {
			struct timespec ts = {0, (long)((due - t) * 1e9)};

			nanosleep(&ts, NULL);
			continue;
		}
		tr.data_in = pkt;
		tr.data_size_in = sizeof(pkt);
		tr.repeat = RING_BATCH;
		if (bpf_prog_test_run_opts(pfd, &tr))
			die("%s", "BPF_PROG_TEST_RUN of the flood program failed");
		runs += RING_BATCH;
	}
	t = now_s() - t0;
	usleep(300000); /* let the reader finish */
	sent = tel_stat(tfd, TEL_SENT) - s0;
	dropped = tel_stat(tfd, TEL_DROP) - d0;
	printf("%s{\"target_per_s\":%.0f,\"emitted_per_s\":%.0f,\"sent\":%llu,\"dropped\":%llu}",
	       first ? "" : ",", rate, runs * 64.0 / t, (unsigned long long)sent,
	       (unsigned long long)dropped);
	fflush(stdout);
	*emitted = runs * 64.0 / t;
	return !dropped;
}

/*
 * Events per second a ring-buffer reader keeps up with: the flood program
 * (tests/pkt/ring_flood.bpf.c, 64 events a run) is run at a paced rate for
 * --seconds per step, doubling until the ring drops an event, then halving
 * the interval between the last rate without a drop and the first with one
 * three times.  The reader: --reader 1, libbpf's ring_buffer with a
 * counting callback in a thread of this process (what vsn events and the
 * daemon use); --reader 0, whoever else reads the ring (the daemon).
 */
static int cmd_ring(const struct opts *o)
{
	int pfd = pinned(o->prog), rfd = pinned(o->ring), tfd = pinned(o->tel);
	double lo = 0, hi = 0, rate, em, best = 0, worst = 0;
	struct reader r = {};
	bool first = true;
	pthread_t th;

	if (o->reader) {
		r.rb = ring_buffer__new(rfd, drain_cb, &r.got, NULL);
		if (!r.rb)
			die("cannot read the ring buffer %s", o->ring);
		ring_buffer__consume(r.rb);
		if (pthread_create(&th, NULL, reader_main, &r))
			die("%s", "cannot start the reader thread");
	}
	printf("{\"steps\":[");
	for (rate = 50000; rate <= 64e6; rate *= 2) {
		bool ok = ring_step(pfd, tfd, rate, o->seconds, first, &em);

		first = false;
		if (!ok) {
			hi = rate;
			worst = em;
			break;
		}
		lo = rate;
		best = em > best ? em : best;
	}
	for (int i = 0; hi && i < 3; i++) {
		rate = (lo + hi) / 2;
		if (ring_step(pfd, tfd, rate, o->seconds, false, &em)) {
			lo = rate;
			best = em > best ? em : best;
		} else {
			hi = rate;
			worst = !worst || em < worst ? em : worst;
		}
	}
	if (o->reader) {
		r.stop = true;
		pthread_join(th, NULL);
		ring_buffer__free(r.rb);
	}
	/* Rates reached, not asked for: past its limit the producer emits less
	 * than a step asks. */
	printf("],\"max_no_drop_per_s\":%.0f,\"first_drop_per_s\":%.0f,\"received\":%ld}\n", best,
	       worst, o->reader ? r.got : -1);
	return 0;
}

static int cmd_prog(const struct opts *o)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);
	int fd = pinned(o->prog);

	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		die("cannot read the information of %s", o->prog);
	printf("{\"id\":%u,\"run_cnt\":%llu,\"run_time_ns\":%llu}\n", info.id,
	       (unsigned long long)info.run_cnt, (unsigned long long)info.run_time_ns);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(const struct opts *o);
	} cmds[] = {{"run", cmd_run},	  {"fill", cmd_fill}, {"clear", cmd_clear},
		    {"count", cmd_count}, {"rate", cmd_rate}, {"ring", cmd_ring},
		    {"prog", cmd_prog}};
	struct opts o;

	if (argc < 2) {
		fprintf(stderr,
			"usage: vbn-tool run|fill|clear|count|rate|ring|prog --option value...\n"
			"(see tests/bench/vbn_tool.c)\n");
		return 2;
	}
	parse_opts(argc, argv, &o);
	libbpf_set_print(NULL);
	for (unsigned i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (!strcmp(argv[1], cmds[i].name))
			return cmds[i].fn(&o);
	die("unknown subcommand '%s'", argv[1]);
	return 2;
}
