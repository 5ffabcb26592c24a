/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * A plan is the config resolved against this host (ifindexes, MACs,
 * consistent-hash tables): exactly the map entries to write.  Building one
 * touches nothing; applying one writes the maps in an order that never lets
 * a packet see a half-applied change.
 */
#ifndef VSN_PLAN_H
#define VSN_PLAN_H

#include "config/config.h"
#include "lib/vsn.h"

struct plan_vm_if {
	__u32 ifindex;
	struct vsn_vm_if v;
};

struct plan_backend {
	__u32 id;
	struct vsn_backend v;
};

struct plan_path {
	__u32 id;
	struct vsn_path v;
};

struct plan_route {
	struct vsn_route_key k;
	struct vsn_route v;
};

struct plan_volume {
	struct vsn_volume_key k;
	struct vsn_volume v; /* chash_gen is chosen at apply time */
};

struct vsn_plan {
	struct plan_vm_if *vm_ifs;
	unsigned n_vm_ifs;
	struct plan_backend *backends;
	unsigned n_backends;
	struct plan_path *paths;
	unsigned n_paths;
	struct plan_route *routes;
	unsigned n_routes;
	struct plan_volume *volumes;
	unsigned n_volumes;
};

/*
 * What plan_build asks of the host: an interface's index (0: no such
 * interface), whether vsn attached it in a role (0: yes, -ENOENT: no), and
 * its MAC.  plan_host_system() answers from this network namespace and the
 * pinned vsn_ifaces (ifaces_fd; -1: attachment not checked); tests answer
 * from a table.
 */
struct plan_host {
	unsigned (*ifindex)(const struct plan_host *h, const char *name);
	int (*attached)(const struct plan_host *h, unsigned ifindex, __u32 role);
	int (*mac)(const struct plan_host *h, const char *name, __u8 mac[6]);
	int ifaces_fd;
	void *priv;
};
void plan_host_system(struct plan_host *h, int ifaces_fd);

/* The map entries cfg asks for, resolved against the host. */
int plan_build(const struct vsn_config *cfg, const struct plan_host *host, struct vsn_plan *plan,
	       struct vsn_error *err);
int plan_apply(const struct vsn_plan *plan, const struct vsn_maps *m, struct vsn_error *err);
void plan_free(struct vsn_plan *plan);
/* Would the maps hold old and new entries together?  (What apply needs.) */
int plan_check_room(const struct vsn_plan *plan, const struct vsn_maps *m, struct vsn_error *err);

/* Rebuild the consistent-hash table of every volume that lists backend_id
 * (0: all volumes) from the backends' current states, and switch them in. */
int plan_rehash(const struct vsn_maps *m, __u32 backend_id, struct vsn_error *err);
/* Give new connections of volume_id the tier tier_pref - 1 (0: the best
 * tier up) and switch its table in if that changes it. */
int plan_volume_tier(const struct vsn_maps *m, __u32 volume_id, __u32 tier_pref,
		     struct vsn_error *err);

#endif /* VSN_PLAN_H */
