// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Device health for the daemon: the backends whose config asks for it
 * (health: nvme-tcp, or auto with an nqn; health: local) are polled by
 * health_nvme's worker threads, which signal changes through an eventfd in
 * the epoll loop; each result becomes the backend's observation.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/daemon.h"
#include "lib/health/health_nvme.h"

static bool wants_remote(const struct vsn_cfg_backend *b)
{
	return b->health == VSN_HEALTH_REMOTE || (b->health == VSN_HEALTH_AUTO && b->nqn);
}

void ctl_health_stop(struct ctl *c)
{
	if (c->health)
		health_worker_stop(c->health);
	c->health = NULL;
	free(c->health_ids);
	c->health_ids = NULL;
	c->n_health = 0;
}

int ctl_health_start(struct ctl *c, struct vsn_error *err)
{
	const struct vsn_config *cfg = c->cfg;
	struct health_src *srcs = calloc(cfg->n_backends + 1, sizeof(*srcs));
	unsigned n = 0;
	int ret = 0;

	ctl_health_stop(c);
	c->health_ids = calloc(cfg->n_backends + 1, sizeof(*c->health_ids));
	if (!srcs || !c->health_ids) {
		vsn_error_set(err, 0, "out of memory");
		ret = -ENOMEM;
		goto out;
	}
	for (unsigned i = 0; i < cfg->n_backends; i++) {
		const struct vsn_cfg_backend *b = &cfg->backends[i];
		struct health_src *s = &srcs[n];

		if (!wants_remote(b) && b->health != VSN_HEALTH_LOCAL)
			continue;
		s->backend_id = b->id;
		if (b->health == VSN_HEALTH_LOCAL) {
			s->local = true;
			snprintf(s->sel.traddr, sizeof(s->sel.traddr), "%s", b->address);
			s->sel.trsvcid = b->port;
			if (b->nqn)
				snprintf(s->sel.subnqn, sizeof(s->sel.subnqn), "%s", b->nqn);
		} else {
			snprintf(s->remote.addr, sizeof(s->remote.addr), "%s", b->address);
			s->remote.port = b->port;
			snprintf(s->remote.subnqn, sizeof(s->remote.subnqn), "%s", b->nqn);
			if (cfg->ctl.hostnqn)
				snprintf(s->remote.hostnqn, sizeof(s->remote.hostnqn), "%s",
					 cfg->ctl.hostnqn);
		}
		c->health_ids[n++] = b->id;
	}
	c->n_health = n;
	if (!n)
		goto out;
	ret = health_worker_start(&c->health, srcs, n, cfg->ctl.health_interval_ms,
				  cfg->ctl.health_timeout_ms, c->health_fd);
	if (ret)
		vsn_error_set(err, 0, "cannot start the health pollers: %s",
			      strerror(-ret > 0 ? -ret : EIO));
out:
	free(srcs);
	return ret;
}

/*
 * A poll must see what the storage traffic sees: it leaves through the
 * uplink of the backend's best path, so a cut fabric fails the path (and
 * moves the traffic) without also failing the backend behind it.
 */
void ctl_health_follow_paths(struct ctl *c)
{
	for (unsigned i = 0; c->health && i < c->n_health; i++) {
		struct ctl_backend *b = ctl_backend(c, c->health_ids[i]);
		struct ctl_path *p = b ? ctl_path(c, ctl_best_path(c, b->cfg)) : NULL;

		if (p && p->uplink >= 0 && b->cfg->health != VSN_HEALTH_LOCAL) {
			health_worker_set_ifname(c->health, i,
						 c->uplinks[p->uplink].cfg->interface);
			b->poll_path = p->id;
		}
	}
}

/* The worst ANA state of the groups holding namespaces: what its I/O would
 * see (nvmet lists empty groups too, a new one as inaccessible). */
static uint8_t worst_ana(const struct nvme_health *h)
{
	static const uint8_t rank[16] = {[1] = 1, [2] = 2, [15] = 3, [3] = 4, [4] = 5};
	uint8_t worst = 0;

	for (unsigned i = 0; i < h->n_ana && i < HEALTH_ANA_MAX; i++)
		if (h->ana[i].nnsids && rank[h->ana[i].state & 15] > rank[worst & 15])
			worst = h->ana[i].state;
	return worst;
}

/*
 * A silently cut path comes back on its hold-down, untested; the first
 * polls through it then fail.  A failed poll through a path that failed
 * within the flap window is evidence against that path, not the backend:
 * the path fails again, the next poll leaves by another one.
 */
static bool poll_blames_path(struct ctl *c, struct ctl_backend *b, uint64_t now)
{
	struct ctl_path *p = ctl_path(c, b->poll_path);

	if (!p || p->damp.state == VSN_H_FAILED || !p->damp.failed_ns ||
	    now - p->damp.failed_ns > c->cfg->ctl.flap_window_ms * 1000000ull)
		return false;
	p->silent = true;
	p->pending = CTL_WHY_SILENT;
	snprintf(p->reason, sizeof(p->reason),
		 "backend %u's admin-queue poll through it went unanswered", b->id);
	return true;
}

void ctl_health_update(struct ctl *c, uint64_t now)
{
	struct nvme_health *res;
	uint64_t v;
	int n;

	if (read(c->health_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		return;
	if (!c->health || !c->n_health)
		return;
	res = calloc(c->n_health, sizeof(*res));
	if (!res)
		return;
	n = health_worker_snapshot(c->health, res, c->n_health);
	for (int i = 0; i < n; i++) {
		struct ctl_backend *b = ctl_backend(c, c->health_ids[i]);

		if (!b || !res[i].ts_ns)
			continue; /* no result yet */
		if (!res[i].reachable && poll_blames_path(c, b, now))
			continue;
		b->polled = true;
		b->reachable = res[i].reachable;
		if (b->reachable) {
			/* The poll's own time: a snapshot can repeat an old one. */
			if (res[i].ts_ns > b->ok_ns)
				b->ok_ns = res[i].ts_ns;
			b->unreach_since_ns = 0;
		} else if (!b->unreach_since_ns) {
			b->unreach_since_ns = now;
		}
		b->critical_warning = res[i].critical_warning;
		b->ana_state = res[i].ana_supported ? worst_ana(&res[i]) : 0;
		snprintf(b->dev_error, sizeof(b->dev_error), "%s",
			 res[i].reachable ? "" : res[i].error);
		b->pending = true;
	}
	free(res);
}
