/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The keys this host has seen under the cluster prefix, as records: one per
 * host (its registration and observations), the election's candidates, the
 * leader's weights and the desired configuration.  Not thread-safe: the
 * cluster's mutex guards it.
 */
#ifndef VSN_CLUSTER_STORE_H
#define VSN_CLUSTER_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster/cluster.h"

/* The parts of the key space (docs/cluster.md), relative to the prefix. */
#define CL_KEY_HOSTS	"hosts/"   /* hosts/NAME: registration, lease-bound */
#define CL_KEY_OBS	"obs/"	   /* obs/NAME/b/ID, obs/NAME/p/ID: lease-bound */
#define CL_KEY_ELECTION "election" /* etcd's election keys: election/LEASE */
#define CL_KEY_WEIGHTS	"weights"  /* the leader's backend weights */
#define CL_KEY_CONFIG	"config"   /* the desired configuration (YAML) */

struct cl_store_host {
	struct cl_host_rec rec;
	bool registered;
	unsigned cap_backends;
	unsigned n_paths;
	struct cl_path_obs *paths;
	unsigned cap_paths;
};

struct cl_candidate {
	char *key;
	char host[CL_HOST_MAX];
	int64_t create_rev;
};

struct cl_store {
	struct cl_store_host *hosts;
	unsigned n_hosts, cap_hosts;
	struct cl_candidate *cands;
	unsigned n_cands, cap_cands;
	/* The leader's weights by backend id (0: none given). */
	uint32_t weights[VSN_MAX_BACKENDS];
	char weights_leader[CL_HOST_MAX];
	int64_t weights_rev;
	char *config; /* NULL: none */
	size_t config_len;
	int64_t config_rev;
};

/* What an applied key changed, for whom to wake. */
enum cl_change {
	CL_CH_NONE = 0,
	CL_CH_LOAD = 1 << 0,	/* observations' figures only */
	CL_CH_VERDICT = 1 << 1, /* a host's verdict on a backend, or hosts came or went */
	CL_CH_LEADER = 1 << 2,
	CL_CH_WEIGHTS = 1 << 3,
	CL_CH_CONFIG = 1 << 4,
};

void cl_store_init(struct cl_store *s);
void cl_store_clear(struct cl_store *s);
/* A put (value) or a delete (value NULL) of key, relative to the prefix. */
unsigned cl_store_apply(struct cl_store *s, const char *key, const char *value, size_t len,
			int64_t create_rev, int64_t mod_rev);
/* The leader: the candidate with the lowest create revision ("" if none). */
const char *cl_store_leader(const struct cl_store *s);
/* Registered hosts' records, for view.c (pointers into s). */
unsigned cl_store_hosts(const struct cl_store *s, struct cl_host_rec *out, unsigned max);

/* The values this host writes. */
char *cl_obs_backend_json(const struct cl_backend_obs *b, double ts);
char *cl_obs_path_json(const struct cl_path_obs *p, double ts);
char *cl_host_json(const char *version, double started, int64_t applied, const char *error);
char *cl_weights_json(const char *leader, const uint32_t *w, const struct cl_backend_cfg *cfg,
		      unsigned n);

#endif /* VSN_CLUSTER_STORE_H */
