// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Workload classes per volume, from the datapath's commands: a class that
 * holds for two windows places the volume's new connections by tier.
 */
#include <stdio.h>

#include "daemon/daemon.h"
#include "config/plan.h"

enum pol_class ctl_volume_class(const struct ctl *c, uint32_t volume_id)
{
	return c->vols ? c->vols[volume_id % VSN_MAX_VOLUMES].cls : POL_CLASS_MIXED;
}

#define CLASS_WINDOW_NS (2000 * NS_PER_MS)

/* The tier new connections of a volume of this class should use, plus one
 * (0: the best tier up), under tier_by_class. */
static uint32_t class_tier(const struct ctl *c, uint32_t volume_id, enum pol_class cls)
{
	const struct vsn_config *cfg = c->cfg;
	int lo = 256, hi = -1;

	if (!cfg->ctl.tier_by_class || cls == POL_CLASS_MIXED)
		return 0;
	for (unsigned i = 0; i < cfg->n_volumes; i++) {
		if (cfg->volumes[i].id != volume_id)
			continue;
		for (unsigned j = 0; j < cfg->volumes[i].n_backends; j++) {
			const struct vsn_cfg_backend *b =
			    ctl_cfg_backend(c, cfg->volumes[i].backends[j]);

			if (!b)
				continue;
			lo = b->tier < lo ? b->tier : lo;
			hi = b->tier > hi ? b->tier : hi;
		}
	}
	if (hi < 0 || lo == hi)
		return 0;
	return (uint32_t)(cls == POL_CLASS_BULK ? hi : lo) + 1;
}

/*
 * Each window: classify every volume that issued commands; a new class
 * that holds for two windows is adopted (scores use it; with tier_by_class
 * new connections go to its tier).
 */
void ctl_classify_volumes(struct ctl *c, uint64_t now)
{
	struct vsn_error err = {.msg = ""};

	if (!c->vols || now - c->class_window_ns < CLASS_WINDOW_NS)
		return;
	c->class_window_ns = now;
	for (uint32_t id = 1; id < VSN_MAX_VOLUMES; id++) {
		struct ctl_volume *v = &c->vols[id];
		enum pol_class cls;
		uint32_t tier;

		if (!v->cmds)
			continue;
		cls = pol_classify(v->cmds, v->bytes, v->seq);
		v->cmds = v->bytes = v->seq = 0;
		if (cls == v->cls || cls != v->pending) {
			v->pending = cls;
			continue;
		}
		ctl_log(c, CTL_WHY_CLASS,
			"\"event\":\"volume-class\",\"volume\":%u,\"was\":\"%s\","
			"\"now\":\"%s\"",
			id, pol_class_name(v->cls), pol_class_name(cls));
		v->cls = cls;
		tier = class_tier(c, id, cls);
		if (tier == v->tier_pref || c->cfg->ctl.observe_only)
			continue;
		if (plan_volume_tier(&c->m, id, tier, &err)) {
			vsn_warn("%s", err.msg);
			continue;
		}
		v->tier_pref = tier;
		ctl_log(c, CTL_WHY_CLASS,
			"\"event\":\"volume-tier\",\"volume\":%u,\"tier\":%d,\"class\":\"%s\"", id,
			(int)tier - 1, pol_class_name(cls));
	}
}
