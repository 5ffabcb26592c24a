// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * config_validate(): whole-model checks (see config.h).  Each item is
 * checked on its own first (config_check.c); then ids must be unique,
 * references must resolve, and addresses of one flow must share a family.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "config/internal.h"

struct paddr {
	struct vsn_addr a;
	bool v6;
};

#define BIT_SET(map, n)	 ((map)[(n) / 8] |= (uint8_t)(1u << ((n) % 8)))
#define BIT_TEST(map, n) (((map)[(n) / 8] >> ((n) % 8)) & 1)

/* Lookup tables; an index is stored +1 so that 0 means "no such id". */
struct vctx {
	const struct ectx *c;
	const struct vsn_config *cfg;
	unsigned vm_by_id[VSN_MAX_VMS];
	unsigned path_by_id[VSN_MAX_PATHS];
	unsigned be_by_id[VSN_MAX_BACKENDS];
	unsigned vol_by_id[VSN_MAX_VOLUMES];
	uint8_t be_has_path[VSN_MAX_BACKENDS][VSN_MAX_PATHS / 8];
	uint8_t vol_has_be[VSN_MAX_VOLUMES][VSN_MAX_BACKENDS / 8];
	uint8_t route_seen[VSN_MAX_VOLUMES][VSN_MAX_BACKENDS / 8];
	struct paddr *be_addr;
	struct paddr *vol_addr;
};

static const char *family(bool v6)
{
	return v6 ? "IPv6" : "IPv4";
}

/* Item it takes id; by_id[] finds it from now on. */
static int claim_id(unsigned *by_id, uint32_t id, const struct item *it)
{
	if (by_id[id])
		return cfg_item_fail(it, "id", -1, "id %u is already used by %s[%u]", id, it->sec,
				     by_id[id] - 1);
	by_id[id] = (unsigned)it->idx + 1;
	return 0;
}

static bool prefixes_overlap(const struct vsn_addr *a, const struct vsn_addr *ma,
			     const struct vsn_addr *b, const struct vsn_addr *mb)
{
	for (unsigned i = 0; i < 4; i++)
		if ((a->a[i] ^ b->a[i]) & ma->a[i] & mb->a[i])
			return false;
	return true;
}

/* Does a VM's addresses[ai] overlap an earlier VM's, or one earlier in its
 * own list?  One source address belongs to one VM. */
static int vm_addr_unique(const struct vsn_config *cfg, unsigned vi, unsigned ai,
			  const struct item *it)
{
	struct vsn_addr a, ma, b, mb;
	bool v6;

	if (parse_prefix(cfg->vms[vi].addresses[ai], &a, &ma, &v6, NULL))
		return 0; /* check.c reported it */
	for (unsigned i = 0; i <= vi; i++) {
		const struct vsn_cfg_vm *o = &cfg->vms[i];

		for (unsigned j = 0; j < (i == vi ? ai : o->n_addresses); j++) {
			if (parse_prefix(o->addresses[j], &b, &mb, &v6, NULL) ||
			    !prefixes_overlap(&a, &ma, &b, &mb))
				continue;
			if (i == vi)
				return cfg_item_fail(it, "addresses", ai,
						     "%s overlaps %s listed before",
						     cfg->vms[vi].addresses[ai], o->addresses[j]);
			return cfg_item_fail(it, "addresses", ai, "%s overlaps vm %s's %s",
					     cfg->vms[vi].addresses[ai], o->name, o->addresses[j]);
		}
	}
	return 0;
}

static int validate_vms_item(struct vctx *v, unsigned i)
{
	const struct vsn_config *cfg = v->cfg;
	unsigned j;
	const struct vsn_cfg_vm *vm = &cfg->vms[i];
	struct item it = cfg_item_at(v->c, "vms", i, vm->line);

	if (claim_id(v->vm_by_id, vm->id, &it))
		return -EINVAL;
	for (j = 0; j < vm->n_addresses; j++)
		if (vm_addr_unique(cfg, i, j, &it))
			return -EINVAL;
	for (j = 0; j < i; j++) {
		if (!strcmp(cfg->vms[j].name, vm->name))
			return cfg_item_fail(&it, "name", -1,
					     "name '%s' is already used by vms[%u]", vm->name, j);
		if (!strcmp(cfg->vms[j].interface, vm->interface))
			return cfg_item_fail(&it, "interface", -1,
					     "interface %s is already used by vms[%u]",
					     vm->interface, j);
	}
	for (j = 0; j < cfg->n_uplinks; j++)
		if (!strcmp(cfg->uplinks[j].interface, vm->interface))
			return cfg_item_fail(&it, "interface", -1,
					     "%s is also an uplink (uplinks[%u])", vm->interface,
					     j);
	return 0;
}

/* Every item, so that all of their problems are reported. */
static int validate_vms(struct vctx *v)
{
	unsigned i;
	int ret = 0;

	for (i = 0; i < v->cfg->n_vms; i++)
		if (validate_vms_item(v, i))
			ret = -EINVAL;
	return ret;
}

/* VM rates become HTB classes under each uplink's capacity. */
static int validate_rates(const struct vsn_config *cfg, const struct item *it)
{
	uint64_t min_sum = 0;
	const char *limited = NULL;
	unsigned i;

	for (i = 0; i < cfg->n_vms; i++) {
		min_sum += cfg->vms[i].min_rate_bps;
		if (cfg->vms[i].min_rate_bps || cfg->vms[i].max_rate_bps)
			limited = cfg->vms[i].name;
	}
	if (!limited)
		return 0;
	if (!cfg->uplinks[0].capacity_bps)
		return cfg_item_fail(it, "capacity", -1,
				     "needed: vm %s has min_rate/max_rate, which are shares of "
				     "each uplink's capacity",
				     limited);
	if (min_sum > cfg->uplinks[0].capacity_bps)
		return cfg_item_fail(it, "capacity", -1,
				     "the VMs' min_rate add up to %llu bit/s, more than this "
				     "uplink carries",
				     (unsigned long long)min_sum);
	return 0;
}

static int validate_uplinks_item(struct vctx *v, unsigned i)
{
	const struct vsn_config *cfg = v->cfg;
	unsigned j;
	const struct vsn_cfg_uplink *up = &cfg->uplinks[i];
	struct item it = cfg_item_at(v->c, "uplinks", i, up->line);
	struct vsn_config one = *cfg;

	for (j = 0; j < i; j++)
		if (!strcmp(cfg->uplinks[j].interface, up->interface))
			return cfg_item_fail(&it, "interface", -1,
					     "%s is already listed as uplinks[%u]", up->interface,
					     j);
	one.uplinks = (struct vsn_cfg_uplink *)up;
	if (validate_rates(&one, &it))
		return -EINVAL;
	return 0;
}

/* Every item, so that all of their problems are reported. */
static int validate_uplinks(struct vctx *v)
{
	unsigned i;
	int ret = 0;

	for (i = 0; i < v->cfg->n_uplinks; i++)
		if (validate_uplinks_item(v, i))
			ret = -EINVAL;
	return ret;
}

static int validate_paths_item(struct vctx *v, unsigned i)
{
	const struct vsn_config *cfg = v->cfg;
	unsigned j;
	const struct vsn_cfg_path *p = &cfg->paths[i];
	struct item it = cfg_item_at(v->c, "paths", i, p->line);

	if (claim_id(v->path_by_id, p->id, &it))
		return -EINVAL;
	for (j = 0; j < cfg->n_uplinks; j++)
		if (!strcmp(cfg->uplinks[j].interface, p->uplink))
			break;
	if (j == cfg->n_uplinks)
		return cfg_item_fail(&it, "uplink", -1, "unknown uplink '%s'", p->uplink);
	return 0;
}

/* Every item, so that all of their problems are reported. */
static int validate_paths(struct vctx *v)
{
	unsigned i;
	int ret = 0;

	for (i = 0; i < v->cfg->n_paths; i++)
		if (validate_paths_item(v, i))
			ret = -EINVAL;
	return ret;
}

/* The paths of backend i: known, listed once, SNAT in the backend's family. */
static int validate_backend_paths(struct vctx *v, unsigned i, const struct item *it)
{
	const struct vsn_cfg_backend *be = &v->cfg->backends[i];
	const struct paddr *ba = &v->be_addr[i];
	unsigned j;

	for (j = 0; j < be->n_paths; j++) {
		uint32_t pid = be->paths[j];
		const struct vsn_cfg_path *p;
		struct paddr sa;

		if (!v->path_by_id[pid])
			return cfg_item_fail(it, "paths", j, "unknown path %u", pid);
		if (BIT_TEST(v->be_has_path[be->id], pid))
			return cfg_item_fail(it, "paths", j, "path %u is listed twice", pid);
		BIT_SET(v->be_has_path[be->id], pid);
		p = &v->cfg->paths[v->path_by_id[pid] - 1];
		/* SNAT must produce an address the backend can answer. */
		if (p->source_address && !parse_addr(p->source_address, &sa.a, &sa.v6) &&
		    sa.v6 != ba->v6)
			return cfg_item_fail(
			    it, "paths", j,
			    "path %u's source_address %s is %s but the backend is %s", pid,
			    p->source_address, family(sa.v6), family(ba->v6));
	}
	return 0;
}

static int validate_backends_item(struct vctx *v, unsigned i)
{
	const struct vsn_config *cfg = v->cfg;
	unsigned j;
	const struct vsn_cfg_backend *be = &cfg->backends[i];
	struct item it = cfg_item_at(v->c, "backends", i, be->line);
	struct paddr *ba = &v->be_addr[i];
	int ret;

	if (claim_id(v->be_by_id, be->id, &it))
		return -EINVAL;
	if (parse_addr(be->address, &ba->a, &ba->v6))
		return -EINVAL; /* check_backend() vouched for it */
	for (j = 0; be->name && j < i; j++)
		if (cfg->backends[j].name && !strcmp(cfg->backends[j].name, be->name))
			return cfg_item_fail(&it, "name", -1,
					     "name '%s' is already used by backends[%u]", be->name,
					     j);
	ret = validate_backend_paths(v, i, &it);
	if (ret)
		return ret;
	return 0;
}

/* Every item, so that all of their problems are reported. */
static int validate_backends(struct vctx *v)
{
	unsigned i;
	int ret = 0;

	for (i = 0; i < v->cfg->n_backends; i++)
		if (validate_backends_item(v, i))
			ret = -EINVAL;
	return ret;
}

static int validate_volume_backends(const struct vctx *v, unsigned i, const struct item *it)
{
	const struct vsn_cfg_volume *vol = &v->cfg->volumes[i];
	const struct paddr *va = &v->vol_addr[i];
	const struct vsn_cfg_backend *be;
	const struct paddr *ba;
	unsigned j;

	for (j = 0; j < vol->n_backends; j++) {
		uint32_t bid = vol->backends[j];

		if (!v->be_by_id[bid])
			return cfg_item_fail(it, "backends", j, "unknown backend %u", bid);
		ba = &v->be_addr[v->be_by_id[bid] - 1];
		if (ba->v6 != va->v6)
			return cfg_item_fail(it, "backends", j,
					     "backend %u is %s but the volume address %s is %s",
					     bid, family(ba->v6), vol->address, family(va->v6));
	}
	if (vol->proto != VSN_PROTO_ROCEV2)
		return 0;
	/* RoCE cannot be NATed: the ICRC covers addresses and ports. */
	if (vol->n_backends != 1)
		return cfg_item_fail(
		    it, "backends", -1,
		    "a roce volume needs exactly one backend (RoCE cannot be NATed or balanced)");
	be = &v->cfg->backends[v->be_by_id[vol->backends[0]] - 1];
	ba = &v->be_addr[v->be_by_id[vol->backends[0]] - 1];
	if (memcmp(&ba->a, &va->a, sizeof(va->a)))
		return cfg_item_fail(
		    it, "address", -1,
		    "roce volume address %s differs from backend %u's %s (RoCE cannot be NATed)",
		    vol->address, be->id, be->address);
	if (be->port != vol->port)
		return cfg_item_fail(
		    it, "port", -1,
		    "roce volume port %u differs from backend %u's %u (RoCE cannot be NATed)",
		    vol->port, be->id, be->port);
	return 0;
}

static int validate_volumes_item(struct vctx *v, unsigned i)
{
	const struct vsn_config *cfg = v->cfg;
	unsigned j;
	const struct vsn_cfg_volume *vol = &cfg->volumes[i];
	struct item it = cfg_item_at(v->c, "volumes", i, vol->line);
	struct paddr *va = &v->vol_addr[i];
	int ret;

	if (claim_id(v->vol_by_id, vol->id, &it))
		return -EINVAL;
	if (strcmp(vol->vm, HOST_VM) && !config_find_vm(cfg, vol->vm))
		return cfg_item_fail(&it, "vm", -1, "unknown vm '%s'", vol->vm);
	if (parse_addr(vol->address, &va->a, &va->v6))
		return -EINVAL; /* check_volume() vouched for it */
	for (j = 0; j < vol->n_backends; j++) {
		if (BIT_TEST(v->vol_has_be[vol->id], vol->backends[j]))
			return cfg_item_fail(&it, "backends", j, "backend %u is listed twice",
					     vol->backends[j]);
		BIT_SET(v->vol_has_be[vol->id], vol->backends[j]);
	}
	ret = validate_volume_backends(v, i, &it);
	if (ret)
		return ret;
	for (j = 0; j < i; j++) {
		const struct vsn_cfg_volume *o = &cfg->volumes[j];

		if (!strcmp(o->vm, vol->vm) && o->port == vol->port && o->proto == vol->proto &&
		    !memcmp(&v->vol_addr[j].a, &va->a, sizeof(va->a)))
			return cfg_item_fail(
			    &it, "address", -1,
			    "duplicate volume address %s%s%s:%u for %s (also volumes[%u])",
			    va->v6 ? "[" : "", vol->address, va->v6 ? "]" : "", vol->port, vol->vm,
			    j);
	}
	return 0;
}

/* Every item, so that all of their problems are reported. */
static int validate_volumes(struct vctx *v)
{
	unsigned i;
	int ret = 0;

	for (i = 0; i < v->cfg->n_volumes; i++)
		if (validate_volumes_item(v, i))
			ret = -EINVAL;
	return ret;
}

static int validate_routes_item(struct vctx *v, unsigned i)
{
	const struct vsn_config *cfg = v->cfg;
	const struct vsn_cfg_route *rt = &cfg->routes[i];
	struct item it = cfg_item_at(v->c, "routes", i, rt->line);
	const struct vsn_cfg_volume *vol;

	if (!v->vol_by_id[rt->volume])
		return cfg_item_fail(&it, "volume", -1, "unknown volume %u", rt->volume);
	vol = &cfg->volumes[v->vol_by_id[rt->volume] - 1];
	if (strcmp(rt->vm, vol->vm)) {
		if (strcmp(rt->vm, HOST_VM) && !config_find_vm(cfg, rt->vm))
			return cfg_item_fail(&it, "vm", -1, "unknown vm '%s'", rt->vm);
		return cfg_item_fail(&it, "vm", -1, "volume %u belongs to '%s', not '%s'",
				     rt->volume, vol->vm, rt->vm);
	}
	if (!v->be_by_id[rt->backend])
		return cfg_item_fail(&it, "backend", -1, "unknown backend %u", rt->backend);
	if (!BIT_TEST(v->vol_has_be[rt->volume], rt->backend))
		return cfg_item_fail(&it, "backend", -1,
				     "backend %u is not one of volume %u's backends", rt->backend,
				     rt->volume);
	if (!v->path_by_id[rt->path])
		return cfg_item_fail(&it, "path", -1, "unknown path %u", rt->path);
	if (!BIT_TEST(v->be_has_path[rt->backend], rt->path))
		return cfg_item_fail(&it, "path", -1, "path %u is not one of backend %u's paths",
				     rt->path, rt->backend);
	/* The route key is (vm, volume, backend); vm follows volume. */
	if (BIT_TEST(v->route_seen[rt->volume], rt->backend))
		return cfg_item_fail(&it, "backend", -1,
				     "duplicate route for %s volume %u backend %u", rt->vm,
				     rt->volume, rt->backend);
	BIT_SET(v->route_seen[rt->volume], rt->backend);
	return 0;
}

/* Every item, so that all of their problems are reported. */
static int validate_routes(struct vctx *v)
{
	unsigned i;
	int ret = 0;

	for (i = 0; i < v->cfg->n_routes; i++)
		if (validate_routes_item(v, i))
			ret = -EINVAL;
	return ret;
}

/* Every item of cfg->field still stands where the line map says. */
#define LINES_FIT(map, cfg, field)                                                                 \
	({                                                                                         \
		unsigned _i;                                                                       \
		bool _fit = cfg_lines_count(map, #field) == (cfg)->n_##field;                      \
		for (_i = 0; _fit && _i < (cfg)->n_##field; _i++)                                  \
			_fit = cfg_line(map, #field, _i, NULL, -1) == (cfg)->field[_i].line;       \
		_fit;                                                                              \
	})

/*
 * The line map of the loaded file, unless the caller has since added,
 * removed or reordered items: then its lines would name the wrong ones,
 * and errors fall back to the item lines.
 */
static const struct vsn_line_map *fitting_lines(const struct vsn_config *cfg)
{
	const struct vsn_line_map *map = cfg->lines;

	if (map && LINES_FIT(map, cfg, vms) && LINES_FIT(map, cfg, uplinks) &&
	    LINES_FIT(map, cfg, paths) && LINES_FIT(map, cfg, backends) &&
	    LINES_FIT(map, cfg, volumes) && LINES_FIT(map, cfg, routes))
		return map;
	return NULL;
}

int config_validate(const struct vsn_config *cfg, struct vsn_error *err)
{
	struct vsn_error scratch = {.msg = ""};
	struct cfg_errs errs = {.n = 0};
	struct ectx c = {
	    .file = cfg && cfg->file ? cfg->file : "(config)",
	    .err = err ? err : &scratch,
	    .map = NULL,
	    .errs = &errs,
	};
	struct vctx *v = NULL;
	int ret;

	c.err->msg[0] = '\0';
	if (!cfg)
		return cfg_fail(&c, NULL, -1, 0, NULL, -1, "no config");
	c.map = fitting_lines(cfg);
	ret = cfg_check_items(&c, cfg);
	if (ret)
		goto out;
	v = calloc(1, sizeof(*v));
	if (!v) {
		ret = cfg_fail_oom(&c);
		goto out;
	}
	v->c = &c;
	v->cfg = cfg;
	v->be_addr = calloc(cfg->n_backends + 1, sizeof(*v->be_addr));
	v->vol_addr = calloc(cfg->n_volumes + 1, sizeof(*v->vol_addr));
	if (!v->be_addr || !v->vol_addr) {
		ret = cfg_fail_oom(&c);
		goto out;
	}
	/* Every phase, so that every problem is reported; a reference to an
	 * item that failed its own checks still resolves (its id is known). */
	ret = validate_vms(v);
	ret |= validate_uplinks(v);
	ret |= validate_paths(v);
	ret |= validate_backends(v);
	ret |= validate_volumes(v);
	ret |= validate_routes(v);
out:
	cfg_errs_finish(&c);
	if (v) {
		free(v->be_addr);
		free(v->vol_addr);
	}
	free(v);
	return ret ? -EINVAL : 0;
}
