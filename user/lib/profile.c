// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* The workload profiler (see profile.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/profile.h"

/* One command or response, with what was known when it arrived. */
struct prof_rec {
	__u64 ts_ns;
	__u64 latency_ns;
	__u32 type;
	__u32 conn_id;
	__u32 vm_id;
	__u32 backend_id;
	__u32 path_id;
	__u32 nlb;
	__u32 qd; /* commands outstanding on the connection, this one included */
	__u8 opcode;
	__u8 seq; /* starts where the connection's previous command ended */
};

/* Per connection state carried across the window (in time order). */
struct prof_conn {
	__u32 conn_id;
	__u32 outstanding;
};

struct prof {
	unsigned lba_size;
	unsigned sample_every; /* the datapath reports one command in this many */
	struct prof_rec *rec;
	size_t n, cap;
	struct prof_conn *conn;
	size_t n_conn, cap_conn;
};

/* What a group of records (a VM, a connection, a backend, a path) adds up to. */
struct prof_sum {
	__u32 id;
	__u32 vm_id, backend_id, path_id; /* connections: where they go */
	__u64 cmds, reads, writes, read_blks, write_blks, seq, resps;
	__u32 qd_max;
	__u32 sizes[16][2]; /* distinct nlb -> count */
	unsigned n_sizes;
	__u64 *lat;
	size_t n_lat, cap_lat;
};

struct prof *prof_new(unsigned lba_size)
{
	struct prof *p = calloc(1, sizeof(*p));

	if (p) {
		p->lba_size = lba_size ? lba_size : 4096;
		p->sample_every = 1;
	}
	return p;
}

void prof_set_sampling(struct prof *p, unsigned sample_every)
{
	p->sample_every = sample_every > 1 ? sample_every : 1;
}

void prof_free(struct prof *p)
{
	if (!p)
		return;
	free(p->rec);
	free(p->conn);
	free(p);
}

static struct prof_conn *conn_state(struct prof *p, __u32 conn_id)
{
	struct prof_conn *grown;

	for (size_t i = 0; i < p->n_conn; i++)
		if (p->conn[i].conn_id == conn_id)
			return &p->conn[i];
	if (p->n_conn == p->cap_conn) {
		size_t cap = p->cap_conn ? p->cap_conn * 2 : 16;

		grown = realloc(p->conn, cap * sizeof(*grown));
		if (!grown)
			return NULL;
		p->conn = grown;
		p->cap_conn = cap;
	}
	memset(&p->conn[p->n_conn], 0, sizeof(p->conn[0]));
	p->conn[p->n_conn].conn_id = conn_id;
	return &p->conn[p->n_conn++];
}

int prof_add(struct prof *p, const struct vsn_event *e)
{
	struct prof_conn *c;
	struct prof_rec *r, *grown;

	if (e->type != VSN_EV_CMD && e->type != VSN_EV_RESP)
		return 0;
	c = conn_state(p, e->conn_id);
	if (!c)
		return -ENOMEM;
	if (p->n == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 1024;

		grown = realloc(p->rec, cap * sizeof(*grown));
		if (!grown)
			return -ENOMEM;
		p->rec = grown;
		p->cap = cap;
	}
	r = &p->rec[p->n++];
	memset(r, 0, sizeof(*r));
	r->ts_ns = e->ts_ns;
	r->type = e->type;
	r->conn_id = e->conn_id;
	r->vm_id = e->vm_id;
	r->backend_id = e->backend_id;
	r->path_id = e->path_id;
	r->opcode = e->opcode;
	r->nlb = e->nlb;
	r->latency_ns = e->latency_ns;
	if (e->type == VSN_EV_CMD) {
		/* The datapath decides (it sees every command, sampled or
		 * not): biopattern's rule, per queue and namespace. */
		r->seq = e->nlb && (e->flags & VSN_EVF_SEQ);
		r->qd = ++c->outstanding;
	} else if (c->outstanding) {
		c->outstanding--;
	}
	return 0;
}

void prof_expire(struct prof *p, __u64 now_ns, __u64 keep_ns)
{
	size_t drop = 0;

	while (drop < p->n && p->rec[drop].ts_ns + keep_ns < now_ns)
		drop++;
	if (!drop)
		return;
	memmove(p->rec, p->rec + drop, (p->n - drop) * sizeof(*p->rec));
	p->n -= drop;
}

static struct prof_sum *sum_for(struct prof_sum **v, size_t *n, __u32 id)
{
	struct prof_sum *grown;

	for (size_t i = 0; i < *n; i++)
		if ((*v)[i].id == id)
			return &(*v)[i];
	grown = realloc(*v, (*n + 1) * sizeof(**v));
	if (!grown)
		return NULL;
	*v = grown;
	memset(&(*v)[*n], 0, sizeof(**v));
	(*v)[*n].id = id;
	return &(*v)[(*n)++];
}

static void sum_rec(struct prof_sum *s, const struct prof_rec *r)
{
	if (!s)
		return;
	if (r->type == VSN_EV_RESP) {
		s->resps++;
		if (r->latency_ns && s->n_lat == s->cap_lat) {
			size_t cap = s->cap_lat ? s->cap_lat * 2 : 256;
			__u64 *grown = realloc(s->lat, cap * sizeof(*grown));

			if (!grown)
				return;
			s->lat = grown;
			s->cap_lat = cap;
		}
		if (r->latency_ns)
			s->lat[s->n_lat++] = r->latency_ns;
		return;
	}
	s->cmds++;
	s->vm_id = r->vm_id;
	s->backend_id = r->backend_id;
	s->path_id = r->path_id;
	if (r->qd > s->qd_max)
		s->qd_max = r->qd;
	if (!r->nlb)
		return;
	s->seq += r->seq;
	if (r->opcode == 0x02) {
		s->reads++;
		s->read_blks += r->nlb;
	} else {
		s->writes++;
		s->write_blks += r->nlb;
	}
	for (unsigned i = 0; i < s->n_sizes; i++) {
		if (s->sizes[i][0] == r->nlb) {
			s->sizes[i][1]++;
			return;
		}
	}
	if (s->n_sizes < 16) {
		s->sizes[s->n_sizes][0] = r->nlb;
		s->sizes[s->n_sizes++][1] = 1;
	}
}

static int cmp_u64(const void *a, const void *b)
{
	__u64 x = *(const __u64 *)a, y = *(const __u64 *)b;

	return x < y ? -1 : x > y;
}

static double pct(__u64 *v, size_t n, double q)
{
	size_t i;

	if (!n)
		return 0;
	qsort(v, n, sizeof(*v), cmp_u64);
	i = (size_t)(q * (double)(n - 1) + 0.5);
	return (double)v[i < n ? i : n - 1];
}

/* The median I/O size in blocks (the size most commands have at the middle). */
static __u32 median_blocks(const struct prof_sum *s)
{
	__u64 rw = s->reads + s->writes, seen = 0;
	__u32 order[16][2];
	unsigned n = s->n_sizes;

	memcpy(order, s->sizes, sizeof(order));
	for (unsigned i = 1; i < n; i++)
		for (unsigned j = i; j > 0 && order[j - 1][0] > order[j][0]; j--) {
			__u32 t0 = order[j][0], t1 = order[j][1];

			order[j][0] = order[j - 1][0];
			order[j][1] = order[j - 1][1];
			order[j - 1][0] = t0;
			order[j - 1][1] = t1;
		}
	for (unsigned i = 0; i < n; i++) {
		seen += order[i][1];
		if (2 * seen >= rw)
			return order[i][0];
	}
	return 0;
}

static void classify(const struct prof *p, const struct prof_sum *s, char *out, size_t len)
{
	__u64 rw = s->reads + s->writes;
	double rp = rw ? 100.0 * s->reads / rw : 0, sp = rw ? 100.0 * s->seq / rw : 0;

	if (!rw) {
		snprintf(out, len, "idle");
		return;
	}
	snprintf(out, len, "%s/%s/%s",
		 rp >= PROF_READ_HEAVY_PCT    ? "read-heavy"
		 : rp <= PROF_WRITE_HEAVY_PCT ? "write-heavy"
					      : "mixed",
		 sp >= PROF_SEQ_PCT ? "sequential" : "random",
		 (__u64)median_blocks(s) * p->lba_size <= PROF_SMALL_IO_BYTES ? "small" : "large");
}

static void print_sum(const struct prof *p, struct prof_sum *s, double secs, bool json,
		      const char *kind, bool first, FILE *f)
{
	/* Reported commands stand for sample_every each (shares, sizes and
	 * latencies are the sample's own). */
	double w = p->sample_every;
	__u64 rw = s->reads + s->writes;
	double rp = rw ? 100.0 * s->reads / rw : 0, sp = rw ? 100.0 * s->seq / rw : 0;
	double p50 = pct(s->lat, s->n_lat, 0.5), p99 = pct(s->lat, s->n_lat, 0.99);
	double p999 = pct(s->lat, s->n_lat, 0.999);
	char cls[64];

	classify(p, s, cls, sizeof(cls));
	if (!json) {
		fprintf(f, "%-5s %-10u %9.0f %8.1f %8.1f %5.1f %5.1f %4u %9.1f %9.1f  %s\n", kind,
			s->id, secs > 0 ? w * s->cmds / secs : 0,
			secs > 0 ? w * s->read_blks * p->lba_size / secs / 1e6 : 0,
			secs > 0 ? w * s->write_blks * p->lba_size / secs / 1e6 : 0, rp, sp,
			s->qd_max, p50 / 1e3, p99 / 1e3, cls);
		return;
	}
	fprintf(f,
		"%s{\"id\":%u,\"vm\":%u,\"backend\":%u,\"path\":%u,\"commands\":%llu,"
		"\"iops\":%.1f,\"read_iops\":%.1f,\"write_iops\":%.1f,\"read_bytes_s\":%.0f,"
		"\"write_bytes_s\":%.0f,\"reads\":%llu,\"writes\":%llu,\"read_pct\":%.2f,"
		"\"seq_pct\":%.2f,\"qd_max\":%u,\"io_blocks\":{",
		first ? "" : ",", s->id, s->vm_id, s->backend_id, s->path_id,
		(unsigned long long)s->cmds, secs > 0 ? w * s->cmds / secs : 0,
		secs > 0 ? w * s->reads / secs : 0, secs > 0 ? w * s->writes / secs : 0,
		secs > 0 ? w * s->read_blks * p->lba_size / secs : 0,
		secs > 0 ? w * s->write_blks * p->lba_size / secs : 0, (unsigned long long)s->reads,
		(unsigned long long)s->writes, rp, sp, s->qd_max);
	for (unsigned i = 0; i < s->n_sizes; i++)
		fprintf(f, "%s\"%u\":%u", i ? "," : "", s->sizes[i][0], s->sizes[i][1]);
	fprintf(f,
		"},\"latency_ns\":{\"count\":%zu,\"p50\":%.0f,\"p99\":%.0f,\"p999\":%.0f},"
		"\"class\":\"%s\"}",
		s->n_lat, p50, p99, p999, cls);
}

static void free_sums(struct prof_sum *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i].lat);
	free(v);
}

void prof_print(struct prof *p, __u64 from_ns, __u64 to_ns, bool json, FILE *f)
{
	struct prof_sum *vm = NULL, *conn = NULL, *be = NULL, *path = NULL;
	size_t n_vm = 0, n_conn = 0, n_be = 0, n_path = 0;
	__u64 first_ts = 0, last_ts = 0;
	double secs;

	for (size_t i = 0; i < p->n; i++) {
		const struct prof_rec *r = &p->rec[i];

		if (r->ts_ns < from_ns || r->ts_ns > to_ns)
			continue;
		if (!first_ts)
			first_ts = r->ts_ns;
		last_ts = r->ts_ns;
		/* Every row takes both the commands (I/O, mix, sizes) and the
		 * responses (latency): a response carries its command's path,
		 * 0 when its command was not seen. */
		sum_rec(sum_for(&vm, &n_vm, r->vm_id), r);
		sum_rec(sum_for(&conn, &n_conn, r->conn_id), r);
		sum_rec(sum_for(&be, &n_be, r->backend_id), r);
		if (r->path_id)
			sum_rec(sum_for(&path, &n_path, r->path_id), r);
	}
	/* A window given by the caller, else the span of what was seen. */
	secs =
	    (to_ns != UINT64_MAX && from_ns) ? (to_ns - from_ns) / 1e9 : (last_ts - first_ts) / 1e9;
	if (json) {
		fprintf(f, "{\"window_s\":%.3f,\"lba_size\":%u,\"sample_every\":%u,\"vms\":[", secs,
			p->lba_size, p->sample_every);
		for (size_t i = 0; i < n_vm; i++)
			print_sum(p, &vm[i], secs, true, "vm", !i, f);
		fprintf(f, "],\"connections\":[");
		for (size_t i = 0; i < n_conn; i++)
			print_sum(p, &conn[i], secs, true, "conn", !i, f);
		fprintf(f, "],\"backends\":[");
		for (size_t i = 0; i < n_be; i++)
			print_sum(p, &be[i], secs, true, "be", !i, f);
		fprintf(f, "],\"paths\":[");
		for (size_t i = 0; i < n_path; i++)
			print_sum(p, &path[i], secs, true, "path", !i, f);
		fprintf(f, "]}\n");
	} else {
		fprintf(f, "window %.1f s, LBA %u bytes", secs, p->lba_size);
		if (p->sample_every > 1)
			fprintf(f,
				", 1 command in %u reported (rates scaled; QD and latency "
				"from the sample)",
				p->sample_every);
		fputc('\n', f);
		fprintf(f, "%-5s %-10s %9s %8s %8s %5s %5s %4s %9s %9s  %s\n", "", "ID", "IOPS",
			"rd MB/s", "wr MB/s", "rd%", "seq%", "QD", "p50 us", "p99 us", "CLASS");
		for (size_t i = 0; i < n_vm; i++)
			print_sum(p, &vm[i], secs, false, "vm", false, f);
		for (size_t i = 0; i < n_conn; i++)
			print_sum(p, &conn[i], secs, false, "conn", false, f);
		for (size_t i = 0; i < n_be; i++)
			print_sum(p, &be[i], secs, false, "be", false, f);
		for (size_t i = 0; i < n_path; i++)
			print_sum(p, &path[i], secs, false, "path", false, f);
	}
	free_sums(vm, n_vm);
	free_sums(conn, n_conn);
	free_sums(be, n_be);
	free_sums(path, n_path);
}

static int json_u64(const char *line, const char *key, __u64 *out)
{
	char pat[48];
	const char *at;
	char *end;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	at = strstr(line, pat);
	if (!at)
		return -EINVAL;
	*out = strtoull(at + strlen(pat), &end, 10);
	return end == at + strlen(pat) ? -EINVAL : 0;
}

int prof_parse_line(const char *line, struct vsn_event *e)
{
	static const struct {
		const char *word;
		__u32 type;
	} types[] = {
	    {"\"type\":\"cmd\"", VSN_EV_CMD},
	    {"\"type\":\"resp\"", VSN_EV_RESP},
	    {"\"type\":\"conn_open\"", VSN_EV_CONN_OPEN},
	    {"\"type\":\"conn_close\"", VSN_EV_CONN_CLOSE},
	    {"\"type\":\"resync\"", VSN_EV_RESYNC},
	};
	__u64 v[12];
	static const char *const keys[12] = {"ts_ns",	"conn_id", "vm",   "volume",
					     "backend", "path",	   "qid",  "cid",
					     "opcode",	"nlb",	   "slba", "latency_ns"};

	memset(e, 0, sizeof(*e));
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (strstr(line, types[i].word))
			e->type = types[i].type;
	if (!e->type)
		return -EINVAL;
	for (int i = 0; i < 12; i++)
		if (json_u64(line, keys[i], &v[i]))
			return -EINVAL;
	e->ts_ns = v[0];
	e->conn_id = v[1];
	e->vm_id = v[2];
	e->volume_id = v[3];
	e->backend_id = v[4];
	e->path_id = v[5];
	e->qid = v[6];
	e->cid = v[7];
	e->opcode = v[8];
	e->nlb = v[9];
	e->slba = v[10];
	e->latency_ns = v[11];
	/* Optional: lines written before the datapath marked sequential
	 * commands have no "seq". */
	if (!json_u64(line, "seq", &v[0]) && v[0])
		e->flags |= VSN_EVF_SEQ;
	return 0;
}
