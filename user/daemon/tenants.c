// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The connection table as tenants share it: how full it is (logged when it
 * nears full), and each VM's open connections.  The datapath counts a VM's
 * connections itself (opened minus seen closing) to enforce its
 * max_connections; entries the LRU evicts are never seen closing, so the
 * count is rewritten here from what the table holds.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <bpf/bpf.h>

#include "daemon/daemon.h"

#define COUNT_BATCH 4096

/* Warn at this share of the table, and again only after it fell below
 * CONN_FULL_CLEAR. */
#define CONN_FULL_WARN	0.80
#define CONN_FULL_CLEAR 0.70

/* A connection storage never answered stops counting once its SYNs stop
 * (an initiator retries for about a minute, each retry seen). */
#define HALF_OPEN_IDLE_NS (10ull * 1000000000ull)
/* A RoCEv2 flow has no FIN: once idle this long it is over. */
#define UDP_IDLE_NS (60ull * 1000000000ull)

/* Per VM id and per backend id (for the cluster's load figures). */
struct tally {
	uint32_t vm[VSN_MAX_VMS];
	uint32_t backend[VSN_MAX_BACKENDS];
};

static void count_entry(const struct vsn_conn_key *k, const struct vsn_conn *v, uint64_t now,
			struct tally *t)
{
	if (k->dir != VSN_DIR_TO_STORAGE || k->vm_id >= VSN_MAX_VMS ||
	    (v->flags & VSN_CONN_CLOSING))
		return;
	if (v->last_seen_ns < now &&
	    ((!(v->flags & VSN_CONN_ANSWERED) && now - v->last_seen_ns > HALF_OPEN_IDLE_NS) ||
	     (k->proto == IPPROTO_UDP && now - v->last_seen_ns > UDP_IDLE_NS)))
		return;
	/* The host's own connections (VM 0) load backends too. */
	if (v->backend_id < VSN_MAX_BACKENDS)
		t->backend[v->backend_id]++;
	if (k->vm_id)
		t->vm[k->vm_id]++;
}

/*
 * Entries in vsn_conns and each VM's open ones: batched lookups (a few
 * syscalls per million entries), one key at a time where the kernel lacks
 * batch operations on this map type.  -1 if the table cannot be read.
 */
static int64_t count_all(struct ctl *c, struct tally *t)
{
	uint64_t now = ctl_now_ns();
	struct vsn_conn_key *keys = malloc(COUNT_BATCH * sizeof(*keys)), k, next;
	struct vsn_conn *vals = malloc(COUNT_BATCH * sizeof(*vals)), v;
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	struct vsn_conn_key in, out;
	int64_t n = -1;
	bool first = true;
	__u32 got;
	int ret;

	if (!keys || !vals)
		goto out;
	n = 0;
	do {
		got = COUNT_BATCH;
		ret = bpf_map_lookup_batch(c->m.conns, first ? NULL : &in, &out, keys, vals, &got,
					   &opts);
		if (ret && errno != ENOENT)
			break;
		for (__u32 i = 0; i < got; i++)
			count_entry(&keys[i], &vals[i], now, t);
		n += got;
		in = out;
		first = false;
	} while (!ret);
	if (!ret || errno == ENOENT)
		goto out;
	/* No batch support: walk the keys. */
	n = 0;
	memset(t, 0, sizeof(*t));
	first = true;
	while (!bpf_map_get_next_key(c->m.conns, first ? NULL : &k, &next)) {
		first = false;
		k = next;
		n++;
		if (!bpf_map_lookup_elem(c->m.conns, &k, &v))
			count_entry(&k, &v, now, t);
	}
out:
	free(keys);
	free(vals);
	return n;
}

/*
 * The datapath's count of VM id's connections, rewritten as counted.
 * Connections opened between the walk and this write are lost from it
 * (the count errs low by a few, for one interval); what it held beyond the
 * walk's count were entries gone unseen.
 */
static void vm_recount(struct ctl *c, uint32_t id, uint32_t open)
{
	struct vsn_vm_state st;

	if (bpf_map_lookup_elem(c->m.vm_state, &id, &st))
		return;
	if (st.conns > (__s64)open)
		c->vm_lost[id] += (uint64_t)(st.conns - (__s64)open);
	st.conns = open;
	if (bpf_map_update_elem(c->m.vm_state, &id, &st, BPF_EXIST))
		vsn_warn("vm %u: cannot write its connection count: %s", id, strerror(errno));
}

void ctl_count_conns(struct ctl *c)
{
	struct tally *t = calloc(1, sizeof(*t));
	double fill;
	int64_t n;

	if (!t)
		return;
	n = count_all(c, t);
	if (n < 0)
		goto out;
	c->conn_entries = (uint64_t)n;
	for (unsigned i = 0; i < c->cfg->n_vms; i++) {
		uint32_t id = c->cfg->vms[i].id;

		c->vm_open[id] = t->vm[id];
		vm_recount(c, id, t->vm[id]);
	}
	ctl_fleet_recount(c, t->backend);
	fill = (double)n / VSN_MAX_CONNS;
	if (!c->conns_nearly_full && fill >= CONN_FULL_WARN) {
		unsigned top = 0;

		for (unsigned i = 1; i < VSN_MAX_VMS; i++)
			if (t->vm[i] > t->vm[top])
				top = i;
		c->conns_nearly_full = true;
		ctl_log(c, CTL_WHY_TENANT,
			"\"event\":\"conn-table-nearly-full\",\"entries\":%lld,\"capacity\":%u,"
			"\"fill\":%.2f,\"most_connections_vm\":%u,\"its_connections\":%u",
			(long long)n, VSN_MAX_CONNS, fill, top, t->vm[top]);
	} else if (c->conns_nearly_full && fill < CONN_FULL_CLEAR) {
		c->conns_nearly_full = false;
		ctl_log(
		    c, CTL_WHY_TENANT,
		    "\"event\":\"conn-table-ok\",\"entries\":%lld,\"capacity\":%u,\"fill\":%.2f",
		    (long long)n, VSN_MAX_CONNS, fill);
	}
out:
	free(t);
}
