// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * What the hosts' observations say together: each backend seen from every
 * vantage point, how many must agree that it failed, and the weights the
 * leader gives backends from their headroom.  Pure functions: the daemon
 * and the cluster bench call the same code.
 */
#include <string.h>

#include "cluster/cluster.h"
#include "lib/vsn.h"

const struct cl_backend_view *cl_view_backend(const struct cl_view *v, uint32_t id)
{
	for (unsigned i = 0; i < v->n_backends; i++)
		if (v->backends[i].id == id)
			return &v->backends[i];
	return NULL;
}

static struct cl_backend_view *view_backend(struct cl_view *v, uint32_t id)
{
	struct cl_backend_view *b = (struct cl_backend_view *)cl_view_backend(v, id);

	if (b || v->n_backends >= CL_MAX_BACKENDS)
		return b;
	b = &v->backends[v->n_backends++];
	memset(b, 0, sizeof(*b));
	b->id = id;
	b->self_verdict = CL_NONE;
	return b;
}

static void name_host(struct cl_backend_view *b, const char *host)
{
	size_t len = strlen(b->failing_hosts);

	if (b->failing > CL_MAX_HOST_SHOWN)
		return;
	snprintf(b->failing_hosts + len, sizeof(b->failing_hosts) - len, "%s%s", len ? "," : "",
		 host);
}

void cl_view_fold(struct cl_view *out, const struct cl_host_rec *hosts, unsigned n_hosts,
		  double now)
{
	out->n_backends = 0;
	out->oldest_obs_s = 0;
	out->n_hosts = n_hosts;
	for (unsigned h = 0; h < n_hosts; h++) {
		const struct cl_host_rec *r = &hosts[h];

		if (r->n_backends && r->obs_ts > 0 && now - r->obs_ts > out->oldest_obs_s)
			out->oldest_obs_s = now - r->obs_ts;
		for (unsigned i = 0; i < r->n_backends; i++) {
			const struct cl_backend_obs *o = &r->backends[i];
			struct cl_backend_view *b = view_backend(out, o->id);

			if (!b)
				continue;
			b->reaching++;
			if (!strcmp(r->name, out->host))
				b->self_verdict = o->verdict;
			b->conns += o->conns;
			b->iops += o->iops;
			b->bps += o->bps;
			if (o->p99_ms > b->p99_ms)
				b->p99_ms = o->p99_ms;
			if (o->verdict == CL_FAILED) {
				b->failing++;
				name_host(b, r->name);
			} else if (o->verdict == CL_DEGRADED) {
				b->degraded++;
			}
		}
	}
}

unsigned cl_quorum(const struct vsn_cfg_cluster *cfg, const struct cl_backend_view *b)
{
	unsigned q = cfg->quorum;

	if (b && b->reaching < q)
		q = b->reaching;
	return q ? q : 1;
}

bool cl_weights_step(const struct cl_view *v, const struct cl_backend_cfg *cfg, unsigned n,
		     const uint32_t *prev, uint32_t *out)
{
	bool changed = false;

	for (unsigned i = 0; i < n; i++) {
		const struct cl_backend_view *b = cl_view_backend(v, cfg[i].id);
		uint64_t w = cfg[i].weight, floor = (w * CL_MIN_WEIGHT_PCT + 99) / 100;
		uint64_t step = (w * CL_WEIGHT_STEP_PCT + 99) / 100, target = w, cur;

		if (cfg[i].capacity) {
			uint64_t load = b ? b->conns : 0;
			uint64_t room = load < cfg[i].capacity ? cfg[i].capacity - load : 0;

			target = w * room / cfg[i].capacity;
		}
		/* Most of the hosts that reach it see it degraded: keep a
		 * little, so that it is still measured. */
		if (b && b->reaching && 2 * b->degraded > b->reaching)
			target = target * CL_DEGRADED_WEIGHT / 100;
		if (target < floor)
			target = floor;
		cur = prev[i] ? prev[i] : w;
		if (target > cur + step)
			target = cur + step;
		else if (target + step < cur)
			target = cur - step;
		out[i] = (uint32_t)(target ? target : 1);
		changed |= out[i] != prev[i];
	}
	return changed;
}
