// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#define _GNU_SOURCE
#include <errno.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <bpf/bpf.h>

#include "lib/bw.h"
#include "lib/maglev.h"
#include "config/plan.h"

/* Every plan error is a config the host cannot take: -EINVAL. */
#define errf(err, ...) vsn_error_set(err, -EINVAL, __VA_ARGS__)

/* The system's answers, from this network namespace and vsn_ifaces. */
static unsigned sys_ifindex(const struct plan_host *h, const char *name)
{
	return if_nametoindex(name);
}

static int sys_attached(const struct plan_host *h, unsigned ifindex, __u32 role)
{
	struct vsn_iface v;

	if (h->ifaces_fd < 0)
		return 0; /* not checked (apply --check without the maps) */
	if (bpf_map_lookup_elem(h->ifaces_fd, &ifindex, &v) || v.role != role ||
	    !iface_is_here(ifindex, &v))
		return -ENOENT;
	return 0;
}

static int sys_mac(const struct plan_host *h, const char *name, __u8 mac[6])
{
	struct ifreq ifr = {};
	int fd, err = 0;

	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (ioctl(fd, SIOCGIFHWADDR, &ifr))
		err = -errno;
	else
		memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
	close(fd);
	return err;
}

void plan_host_system(struct plan_host *h, int ifaces_fd)
{
	*h = (struct plan_host){.ifindex = sys_ifindex,
				.attached = sys_attached,
				.mac = sys_mac,
				.ifaces_fd = ifaces_fd};
}

static const struct vsn_cfg_path *find_path(const struct vsn_config *cfg, uint32_t id)
{
	for (unsigned i = 0; i < cfg->n_paths; i++)
		if (cfg->paths[i].id == id)
			return &cfg->paths[i];
	return NULL;
}

static const struct vsn_cfg_backend *find_backend(const struct vsn_config *cfg, uint32_t id)
{
	for (unsigned i = 0; i < cfg->n_backends; i++)
		if (cfg->backends[i].id == id)
			return &cfg->backends[i];
	return NULL;
}

static int vm_id_of(const struct vsn_config *cfg, const char *name, __u32 *id)
{
	const struct vsn_cfg_vm *vm;

	if (!strcmp(name, "host")) {
		*id = 0;
		return 0;
	}
	vm = config_find_vm(cfg, name);
	if (!vm)
		return -ENOENT;
	*id = vm->id;
	return 0;
}

/* The interface must exist and be attached by vsn in the given role. */
static int check_iface(const struct vsn_config *cfg, const struct plan_host *host, const char *name,
		       __u32 role, unsigned line, const char *field, __u32 *ifindex,
		       struct vsn_error *err)
{
	*ifindex = host->ifindex(host, name);
	if (!*ifindex)
		return errf(err, "%s:%u: %s: unknown interface '%s'", cfg->file, line, field, name);
	if (host->attached(host, *ifindex, role))
		return errf(
		    err, "%s:%u: %s: interface '%s' is not attached as %s; run: vsn attach %s %s",
		    cfg->file, line, field, name,
		    role == VSN_ROLE_VM ? "a VM interface" : "an uplink",
		    role == VSN_ROLE_VM ? "--vm" : "--uplink", name);
	return 0;
}

static int build_path(const struct vsn_config *cfg, const struct vsn_cfg_path *cp, unsigned idx,
		      const struct plan_host *host, struct plan_path *pp, struct vsn_error *err)
{
	struct vsn_path *p = &pp->v;
	char field[64];
	bool v6;

	memset(pp, 0, sizeof(*pp));
	pp->id = cp->id;
	snprintf(field, sizeof(field), "paths[%u].uplink", idx);
	if (check_iface(cfg, host, cp->uplink, VSN_ROLE_UPLINK, cp->line, field, &p->ifindex, err))
		return -EINVAL;
	if (cp->fib) {
		p->flags |= VSN_PATH_FIB;
	} else if (cp->next_hop_addr) {
		if (parse_addr(cp->next_hop_addr, &p->gw, &v6))
			return errf(err, "%s:%u: paths[%u].next_hop: '%s' is not an address",
				    cfg->file, cp->line, idx, cp->next_hop_addr);
		p->flags |= VSN_PATH_GW;
	} else if (!cp->next_hop_mac || parse_mac(cp->next_hop_mac, p->dmac)) {
		return errf(err, "%s:%u: paths[%u].next_hop: need a MAC address or 'fib'",
			    cfg->file, cp->line, idx);
	}
	if (cp->source_mac) {
		if (parse_mac(cp->source_mac, p->smac))
			return errf(err, "%s:%u: paths[%u].source_mac: '%s' is not a MAC address",
				    cfg->file, cp->line, idx, cp->source_mac);
	} else if (host->mac(host, cp->uplink, p->smac)) {
		return errf(err, "%s:%u: paths[%u].uplink: cannot read the MAC of '%s'", cfg->file,
			    cp->line, idx, cp->uplink);
	}
	if (cp->vlan >= 0) {
		p->flags |= VSN_PATH_VLAN;
		p->vlan_id = cp->vlan;
	}
	if (cp->dscp >= 0) {
		p->flags |= VSN_PATH_DSCP;
		p->dscp = cp->dscp;
	}
	if (cp->ecn >= 0) {
		p->flags |= VSN_PATH_ECN;
		p->ecn = cp->ecn;
	}
	if (cp->ttl >= 0) {
		p->flags |= VSN_PATH_TTL;
		p->ttl = cp->ttl;
	}
	if (cp->flow_label >= 0) {
		p->flags |= VSN_PATH_FLOWLBL;
		p->flow_label = (__u32)cp->flow_label;
	}
	if (cp->source_address) {
		if (parse_addr(cp->source_address, &p->saddr, &v6))
			return errf(err, "%s:%u: paths[%u].source_address: '%s' is not an address",
				    cfg->file, cp->line, idx, cp->source_address);
		p->flags |= VSN_PATH_SADDR;
	}
	return 0;
}

/* What the datapath checks of VM vm before steering anything of it. */
static int plan_vm_guard(const struct vsn_cfg_vm *vm, struct vsn_vm_if *v, struct vsn_error *err)
{
	bool v6;

	for (unsigned i = 0; i < vm->n_addresses && i < VSN_VM_MAX_ADDRS; i++) {
		if (parse_prefix(vm->addresses[i], &v->src[i].addr, &v->src[i].mask, &v6, NULL)) {
			errf(err, "vm %s: invalid address '%s'", vm->name, vm->addresses[i]);
			return -EINVAL;
		}
		v->n_addrs = (__u8)(i + 1);
	}
	if (vm->mac) {
		if (parse_mac(vm->mac, v->mac)) {
			errf(err, "vm %s: invalid MAC '%s'", vm->name, vm->mac);
			return -EINVAL;
		}
		v->flags |= VSN_VM_MAC;
	}
	v->max_conns = vm->max_connections;
	v->conn_gap_ns = vm->conn_rate ? 1000000000u / vm->conn_rate : 0;
	v->conn_burst = vm->conn_burst;
	return 0;
}

static int route_cmp(const void *a, const void *b)
{
	return memcmp(&((const struct plan_route *)a)->k, &((const struct plan_route *)b)->k,
		      sizeof(struct vsn_route_key));
}

static int add_route(struct vsn_plan *plan, __u32 vm, __u32 vol, __u32 be, __u32 path)
{
	if (plan->n_routes >= VSN_MAX_ROUTES)
		return -E2BIG;
	plan->routes[plan->n_routes].k = (struct vsn_route_key){vm, vol, be};
	plan->routes[plan->n_routes].v.path_id = path;
	plan->n_routes++;
	return 0;
}

/* An explicit route replaces the default one of its (vm, volume, backend);
 * the defaults are sorted by then, so this is a binary search. */
static int override_route(struct vsn_plan *plan, unsigned n_sorted, __u32 vm, __u32 vol, __u32 be,
			  __u32 path)
{
	struct plan_route key = {.k = {vm, vol, be}}, *r;

	r = bsearch(&key, plan->routes, n_sorted, sizeof(*r), route_cmp);
	if (!r)
		return add_route(plan, vm, vol, be, path);
	r->v.path_id = path;
	return 0;
}

int plan_build(const struct vsn_config *cfg, const struct plan_host *host, struct vsn_plan *plan,
	       struct vsn_error *err)
{
	unsigned i, j, max_routes = 0, n_defaults;
	int ret = -ENOMEM;

	memset(plan, 0, sizeof(*plan));
	for (i = 0; i < cfg->n_volumes; i++)
		max_routes += cfg->volumes[i].n_backends;
	max_routes += cfg->n_routes;
	plan->vm_ifs = calloc(cfg->n_vms + 1, sizeof(*plan->vm_ifs));
	plan->backends = calloc(cfg->n_backends + 1, sizeof(*plan->backends));
	plan->paths = calloc(cfg->n_paths + 1, sizeof(*plan->paths));
	plan->routes = calloc(max_routes + 1, sizeof(*plan->routes));
	plan->volumes = calloc(cfg->n_volumes + 1, sizeof(*plan->volumes));
	if (!plan->vm_ifs || !plan->backends || !plan->paths || !plan->routes || !plan->volumes) {
		errf(err, "out of memory");
		goto fail;
	}
	ret = -EINVAL;
	for (i = 0; i < cfg->n_vms; i++) {
		const struct vsn_cfg_vm *vm = &cfg->vms[i];
		struct plan_vm_if *e = &plan->vm_ifs[plan->n_vm_ifs++];
		char field[64];

		snprintf(field, sizeof(field), "vms[%u].interface", i);
		if (check_iface(cfg, host, vm->interface, VSN_ROLE_VM, vm->line, field, &e->ifindex,
				err))
			goto fail;
		if (e->ifindex >= VSN_MAX_IFINDEX) {
			errf(err, "%s:%u: %s: ifindex %u of '%s' is over the limit %d", cfg->file,
			     vm->line, field, e->ifindex, vm->interface, VSN_MAX_IFINDEX - 1);
			goto fail;
		}
		e->v.vm_id = vm->id;
		if (plan_vm_guard(vm, &e->v, err))
			goto fail;
		/* Its storage packets go into its own HTB class on the uplinks. */
		if (vm->min_rate_bps || vm->max_rate_bps)
			e->v.tc_prio = bw_classid(vm->id);
	}
	for (i = 0; i < cfg->n_uplinks; i++) {
		const struct vsn_cfg_uplink *u = &cfg->uplinks[i];
		char field[64];
		__u32 ifindex;

		snprintf(field, sizeof(field), "uplinks[%u].interface", i);
		if (check_iface(cfg, host, u->interface, VSN_ROLE_UPLINK, u->line, field, &ifindex,
				err))
			goto fail;
	}
	for (i = 0; i < cfg->n_paths; i++)
		if (build_path(cfg, &cfg->paths[i], i, host, &plan->paths[plan->n_paths++], err))
			goto fail;
	for (i = 0; i < cfg->n_backends; i++) {
		const struct vsn_cfg_backend *cb = &cfg->backends[i];
		struct plan_backend *b = &plan->backends[plan->n_backends++];
		bool v6;

		b->id = cb->id;
		if (parse_addr(cb->address, &b->v.addr, &v6)) {
			errf(err, "%s:%u: backends[%u].address: '%s' is not an address", cfg->file,
			     cb->line, i, cb->address);
			goto fail;
		}
		if (!cb->n_paths) {
			errf(err, "%s:%u: backends[%u].paths: list at least one path", cfg->file,
			     cb->line, i);
			goto fail;
		}
		if (cb->n_paths > VSN_MAX_BE_PATHS) {
			errf(err, "%s:%u: backends[%u].paths: at most %d paths per backend",
			     cfg->file, cb->line, i, VSN_MAX_BE_PATHS);
			goto fail;
		}
		for (j = 0; j < cb->n_paths; j++)
			b->v.paths[b->v.n_paths++] = cb->paths[j];
		b->v.port = cb->port;
		b->v.state = cb->state;
		b->v.weight = cb->weight;
		b->v.tier = cb->tier;
	}
	for (i = 0; i < cfg->n_volumes; i++) {
		const struct vsn_cfg_volume *cv = &cfg->volumes[i];
		struct plan_volume *v = &plan->volumes[plan->n_volumes++];
		bool v6;

		if (vm_id_of(cfg, cv->vm, &v->k.vm_id)) {
			errf(err, "%s:%u: volumes[%u].vm: no VM named '%s'", cfg->file, cv->line, i,
			     cv->vm);
			goto fail;
		}
		if (parse_addr(cv->address, &v->k.vip, &v6)) {
			errf(err, "%s:%u: volumes[%u].address: '%s' is not an address", cfg->file,
			     cv->line, i, cv->address);
			goto fail;
		}
		v->k.port = cv->port;
		v->k.proto = cv->proto;
		v->v.volume_id = cv->id;
		if (cv->n_backends > VSN_MAX_VOL_BACKENDS) {
			errf(err, "%s:%u: volumes[%u].backends: at most %d backends per volume",
			     cfg->file, cv->line, i, VSN_MAX_VOL_BACKENDS);
			goto fail;
		}
		for (j = 0; j < cv->n_backends; j++) {
			const struct vsn_cfg_backend *cb = find_backend(cfg, cv->backends[j]);
			struct vsn_addr ba;

			if (!cb || !find_path(cfg, cb->paths[0]))
				continue; /* config_validate reports these */
			parse_addr(cb->address, &ba, &v6);
			if (!v->k.vm_id &&
			    (memcmp(&ba, &v->k.vip, sizeof(ba)) || cb->port != cv->port)) {
				errf(err,
				     "%s:%u: volumes[%u].backends: a host volume is steered, not "
				     "translated: its backend must have the volume's own address "
				     "and port",
				     cfg->file, cv->line, i);
				goto fail;
			}
			v->v.backends[v->v.n_backends++] = cb->id;
			if (add_route(plan, v->k.vm_id, cv->id, cb->id, cb->paths[0]))
				goto full;
		}
	}
	qsort(plan->routes, plan->n_routes, sizeof(*plan->routes), route_cmp);
	n_defaults = plan->n_routes;
	for (i = 0; i < cfg->n_routes; i++) {
		const struct vsn_cfg_route *r = &cfg->routes[i];
		__u32 vm;

		if (vm_id_of(cfg, r->vm, &vm)) {
			errf(err, "%s:%u: routes[%u].vm: no VM named '%s'", cfg->file, r->line, i,
			     r->vm);
			goto fail;
		}
		if (override_route(plan, n_defaults, vm, r->volume, r->backend, r->path))
			goto full;
	}
	return 0;
full:
	errf(err, "%s: more than %d routes: %s would be full", cfg->file, VSN_MAX_ROUTES,
	     VSN_MAP_ROUTES);
fail:
	plan_free(plan);
	return ret;
}

void plan_free(struct vsn_plan *plan)
{
	free(plan->vm_ifs);
	free(plan->backends);
	free(plan->paths);
	free(plan->routes);
	free(plan->volumes);
	memset(plan, 0, sizeof(*plan));
}

/* --- applying --- */

/* The keys a plan writes to one map, sorted for lookup while the map's
 * current keys are walked (maps hold up to 64 Ki routes). */
struct keyset {
	const char **sorted;
	size_t n, key_size;
};

static int key_cmp(const void *a, const void *b, void *size)
{
	return memcmp(*(const char *const *)a, *(const char *const *)b, *(size_t *)size);
}

static int keyset_init(struct keyset *ks, const void *base, size_t n, size_t stride,
		       size_t key_size)
{
	ks->n = 0;
	ks->key_size = key_size;
	ks->sorted = calloc(n + 1, sizeof(*ks->sorted));
	if (!ks->sorted)
		return -ENOMEM;
	ks->n = n;
	for (size_t i = 0; i < n; i++)
		ks->sorted[i] = (const char *)base + i * stride;
	qsort_r(ks->sorted, n, sizeof(*ks->sorted), key_cmp, &ks->key_size);
	return 0;
}

static void keyset_free(struct keyset *ks)
{
	free(ks->sorted);
	ks->sorted = NULL;
	ks->n = 0;
}

static bool keyset_has(struct keyset *ks, const void *key)
{
	size_t lo = 0, hi = ks->sorted ? ks->n : 0;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = memcmp(ks->sorted[mid], key, ks->key_size);

		if (!c)
			return true;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

/* Entries the map would hold at the peak of an apply: old ones plus new. */
static int check_room(int fd, const char *name, struct keyset *ks, struct vsn_error *err)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);
	char key[64] = {0}, next[64];
	size_t extra = 0;
	bool first = true;

	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return errf(err, "cannot read map info of %s: %s", name, strerror(errno));
	while (!bpf_map_get_next_key(fd, first ? NULL : key, next)) {
		first = false;
		memcpy(key, next, ks->key_size);
		if (!keyset_has(ks, key))
			extra++;
	}
	if (ks->n + extra > info.max_entries)
		return errf(err, "map %s is full: the change needs %zu entries, it holds %u", name,
			    ks->n + extra, info.max_entries);
	return 0;
}

/* Collect first, delete after: deleting while walking restarts the walk. */
static int delete_stale(int fd, const char *name, struct keyset *ks, struct vsn_error *err)
{
	char key[64] = {0}, next[64], *stale = NULL, *grown;
	size_t n = 0, cap = 0;
	bool first = true;
	int ret = 0;

	while (!bpf_map_get_next_key(fd, first ? NULL : key, next)) {
		first = false;
		memcpy(key, next, ks->key_size);
		if (keyset_has(ks, key))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			grown = realloc(stale, cap * ks->key_size);
			if (!grown) {
				ret = errf(err, "out of memory");
				goto cleanup;
			}
			stale = grown;
		}
		memcpy(stale + n++ * ks->key_size, key, ks->key_size);
	}
	for (size_t i = 0; i < n; i++) {
		if (bpf_map_delete_elem(fd, stale + i * ks->key_size) && errno != ENOENT) {
			ret = errf(err, "cannot delete a stale entry of %s: %s", name,
				   strerror(errno));
			goto cleanup;
		}
	}
cleanup:
	free(stale);
	return ret;
}

static int upsert(int fd, const char *name, const void *k, const void *v, struct vsn_error *err)
{
	if (bpf_map_update_elem(fd, k, v, BPF_ANY))
		return errf(err, "cannot update %s: %s", name, strerror(errno));
	return 0;
}

/* Eligible backends: up, and of the controller's preferred tier when one
 * of those is up, else of the best (lowest) tier that has one up. */
static int write_table(const struct vsn_maps *m, const struct vsn_volume *vol, __u32 gen,
		       struct vsn_error *err)
{
	__u32 ids[VSN_MAX_VOL_BACKENDS], w[VSN_MAX_VOL_BACKENDS], table[VSN_CHASH_SIZE];
	__u32 keys[VSN_CHASH_SIZE], base, best_tier = 256;
	struct vsn_backend be;
	unsigned i, n = 0;
	int ret;

	for (i = 0; i < vol->n_backends && i < VSN_MAX_VOL_BACKENDS; i++)
		if (!bpf_map_lookup_elem(m->backends, &vol->backends[i], &be) &&
		    be.state == VSN_BE_UP && be.tier < best_tier)
			best_tier = be.tier;
	for (i = 0; vol->tier_pref && i < vol->n_backends && i < VSN_MAX_VOL_BACKENDS; i++)
		if (!bpf_map_lookup_elem(m->backends, &vol->backends[i], &be) &&
		    be.state == VSN_BE_UP && be.tier == vol->tier_pref - 1)
			best_tier = be.tier;
	for (i = 0; i < vol->n_backends && i < VSN_MAX_VOL_BACKENDS; i++)
		if (!bpf_map_lookup_elem(m->backends, &vol->backends[i], &be) &&
		    be.state == VSN_BE_UP && be.tier == best_tier) {
			ids[n] = vol->backends[i];
			w[n++] = be.weight ? be.weight : 1;
		}
	ret = maglev_build(ids, w, n, table, VSN_CHASH_SIZE);
	if (ret)
		return errf(err, "cannot build the consistent-hash table of volume %u: %s",
			    vol->volume_id, strerror(-ret));
	base = (vol->volume_id * 2 + gen) * VSN_CHASH_SIZE;
	for (i = 0; i < VSN_CHASH_SIZE; i++)
		keys[i] = base + i;
	{
		LIBBPF_OPTS(bpf_map_batch_opts, bo);
		__u32 count = VSN_CHASH_SIZE;

		if (!bpf_map_update_batch(m->chash, keys, table, &count, &bo))
			return 0;
	}
	for (i = 0; i < VSN_CHASH_SIZE; i++)
		if (upsert(m->chash, VSN_MAP_CHASH, &keys[i], &table[i], err))
			return -EIO;
	return 0;
}

/* Write the inactive half, then flip the volume to it in one update. */
static int switch_volume(const struct vsn_maps *m, const struct vsn_volume_key *k,
			 struct vsn_volume v, struct vsn_error *err)
{
	struct vsn_volume cur;

	v.chash_gen = 0;
	if (!bpf_map_lookup_elem(m->volumes, k, &cur) && cur.volume_id == v.volume_id)
		v.chash_gen = !cur.chash_gen;
	if (write_table(m, &v, v.chash_gen, err))
		return -EIO;
	return upsert(m->volumes, VSN_MAP_VOLUMES, k, &v, err);
}

/* The plan's keys per map; on failure everything is freed. */
static int plan_keysets(const struct vsn_plan *plan, struct keyset *be, struct keyset *pa,
			struct keyset *ro, struct keyset *vo, struct vsn_error *err)
{
	if (keyset_init(be, plan->backends, plan->n_backends, sizeof(*plan->backends), 4) ||
	    keyset_init(pa, plan->paths, plan->n_paths, sizeof(*plan->paths), 4) ||
	    keyset_init(ro, plan->routes, plan->n_routes, sizeof(*plan->routes),
			sizeof(struct vsn_route_key)) ||
	    keyset_init(vo, plan->volumes, plan->n_volumes, sizeof(*plan->volumes),
			sizeof(struct vsn_volume_key))) {
		keyset_free(be);
		keyset_free(pa);
		keyset_free(ro);
		keyset_free(vo);
		return errf(err, "out of memory");
	}
	return 0;
}

static int check_rooms(const struct vsn_maps *m, struct keyset *be, struct keyset *pa,
		       struct keyset *ro, struct keyset *vo, struct vsn_error *err)
{
	if (check_room(m->backends, VSN_MAP_BACKENDS, be, err) ||
	    check_room(m->paths, VSN_MAP_PATHS, pa, err) ||
	    check_room(m->routes, VSN_MAP_ROUTES, ro, err) ||
	    check_room(m->volumes, VSN_MAP_VOLUMES, vo, err))
		return -ENOSPC;
	return 0;
}

int plan_check_room(const struct vsn_plan *plan, const struct vsn_maps *m, struct vsn_error *err)
{
	struct keyset be = {0}, pa = {0}, ro = {0}, vo = {0};
	int ret;

	ret = plan_keysets(plan, &be, &pa, &ro, &vo, err);
	if (ret)
		return ret;
	ret = check_rooms(m, &be, &pa, &ro, &vo, err);
	keyset_free(&be);
	keyset_free(&pa);
	keyset_free(&ro);
	keyset_free(&vo);
	return ret;
}

int plan_apply(const struct vsn_plan *plan, const struct vsn_maps *m, struct vsn_error *err)
{
	struct keyset be = {0}, pa = {0}, ro = {0}, vo = {0};
	struct vsn_vm_if none = {};
	unsigned i;
	__u32 idx;
	int ret;

	if (plan_keysets(plan, &be, &pa, &ro, &vo, err))
		return -ENOMEM;
	/* Nothing is written unless every map has room for old and new. */
	ret = check_rooms(m, &be, &pa, &ro, &vo, err);
	if (ret)
		goto cleanup;

	/* New and changed entries first, the switch (volumes) after the
	 * tables it points to, stale entries last. */
	ret = -EIO;
	for (i = 0; i < plan->n_backends; i++)
		if (upsert(m->backends, VSN_MAP_BACKENDS, &plan->backends[i].id,
			   &plan->backends[i].v, err))
			goto cleanup;
	for (i = 0; i < plan->n_paths; i++)
		if (upsert(m->paths, VSN_MAP_PATHS, &plan->paths[i].id, &plan->paths[i].v, err))
			goto cleanup;
	for (i = 0; i < plan->n_routes; i++)
		if (upsert(m->routes, VSN_MAP_ROUTES, &plan->routes[i].k, &plan->routes[i].v, err))
			goto cleanup;
	/* Connections leave their cached paths before stale paths go. */
	if (maps_routes_changed(m, err))
		goto cleanup;
	for (i = 0; i < plan->n_volumes; i++)
		if (switch_volume(m, &plan->volumes[i].k, plan->volumes[i].v, err))
			goto cleanup;
	for (i = 0; i < plan->n_vm_ifs; i++)
		if (upsert(m->vm_if, VSN_MAP_VM_IF, &plan->vm_ifs[i].ifindex, &plan->vm_ifs[i].v,
			   err))
			goto cleanup;

	for (idx = 0; idx < VSN_MAX_IFINDEX; idx++) {
		struct vsn_vm_if cur;
		bool keep = false;

		if (bpf_map_lookup_elem(m->vm_if, &idx, &cur) || !cur.vm_id)
			continue;
		for (i = 0; i < plan->n_vm_ifs && !keep; i++)
			keep = plan->vm_ifs[i].ifindex == idx;
		if (!keep && upsert(m->vm_if, VSN_MAP_VM_IF, &idx, &none, err))
			goto cleanup;
	}
	if (delete_stale(m->volumes, VSN_MAP_VOLUMES, &vo, err) ||
	    delete_stale(m->routes, VSN_MAP_ROUTES, &ro, err) ||
	    delete_stale(m->paths, VSN_MAP_PATHS, &pa, err) ||
	    delete_stale(m->backends, VSN_MAP_BACKENDS, &be, err) || maps_routes_changed(m, err))
		goto cleanup;
	ret = 0;
cleanup:
	keyset_free(&be);
	keyset_free(&pa);
	keyset_free(&ro);
	keyset_free(&vo);
	return ret;
}

int plan_volume_tier(const struct vsn_maps *m, __u32 volume_id, __u32 tier_pref,
		     struct vsn_error *err)
{
	struct vsn_volume_key key, next;
	struct vsn_volume v;
	bool first = true;

	while (!bpf_map_get_next_key(m->volumes, first ? NULL : &key, &next)) {
		first = false;
		key = next;
		if (bpf_map_lookup_elem(m->volumes, &key, &v) || v.volume_id != volume_id ||
		    v.tier_pref == tier_pref)
			continue;
		v.tier_pref = tier_pref;
		if (switch_volume(m, &key, v, err))
			return -EIO;
	}
	return 0;
}

int plan_rehash(const struct vsn_maps *m, __u32 backend_id, struct vsn_error *err)
{
	struct vsn_volume_key key, next;
	struct vsn_volume v;
	bool first = true;

	while (!bpf_map_get_next_key(m->volumes, first ? NULL : &key, &next)) {
		bool uses = !backend_id;

		first = false;
		key = next;
		if (bpf_map_lookup_elem(m->volumes, &key, &v))
			continue;
		for (unsigned i = 0; i < v.n_backends && i < VSN_MAX_VOL_BACKENDS && !uses; i++)
			uses = v.backends[i] == backend_id;
		if (uses && switch_volume(m, &key, v, err))
			return -EIO;
	}
	return 0;
}
