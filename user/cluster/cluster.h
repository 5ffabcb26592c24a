/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Many hosts, one storage fabric: this host's share of the cluster state in
 * etcd (docs/cluster.md), kept by threads of its own so that nothing the
 * daemon's loop or the datapath does ever waits on etcd.
 *
 *   cluster.c  the threads: lease and registration, publishing, the watch,
 *              the election; what the loop hands in and takes out
 *   store.c    the keys this host has seen under the prefix
 *   view.c     what they say together: each backend seen from every host,
 *              the quorum, the leader's weights (pure: the bench uses it)
 *   etcd.c     the etcd v3 JSON-gateway client
 *
 * Uses config and lib; the daemon uses it.
 */
#ifndef VSN_CLUSTER_H
#define VSN_CLUSTER_H

#include <stdbool.h>
#include <stdint.h>

#include "config/config.h"
#include "lib/err.h"

#define CL_REASON_MAX	   96
#define CL_MAX_BACKENDS	   256 /* backends one host reaches */
#define CL_MAX_PATHS	   64
#define CL_MAX_HOST_SHOWN  4 /* failing hosts named in a decision */
#define CL_HOST_MAX	   (VSN_HOST_NAME_MAX + 1)
#define CL_DEGRADED_WEIGHT 10 /* percent of its weight a degraded backend keeps */
#define CL_MIN_WEIGHT_PCT  5  /* a full backend keeps this much: it recovers */
#define CL_WEIGHT_STEP_PCT 25 /* per publish interval: rebalancing is gradual */

/* Verdicts, as the daemon's enum vsn_health numbers them (checked there). */
enum cl_verdict { CL_HEALTHY = 0, CL_DEGRADED = 1, CL_FAILED = 2, CL_NONE = 0xff };

/* What this host sees of one backend over the last publish interval. */
struct cl_backend_obs {
	uint32_t id;
	uint32_t conns; /* open connections from this host */
	float iops, bps;
	float p50_ms, p99_ms;
	float err_rate;	 /* share of commands that failed */
	uint8_t verdict; /* enum cl_verdict */
	char reason[CL_REASON_MAX];
};

/* ... and of one of its paths (an uplink and next hop into the fabric). */
struct cl_path_obs {
	uint32_t id;
	char uplink[16];
	float bps, util, lat_ms;
	uint8_t verdict;
	char reason[CL_REASON_MAX];
};

struct cl_obs {
	unsigned n_backends, n_paths;
	struct cl_backend_obs backends[CL_MAX_BACKENDS];
	struct cl_path_obs paths[CL_MAX_PATHS];
};

/* One backend as all live hosts see it. */
struct cl_backend_view {
	uint32_t id;
	unsigned reaching, failing, degraded; /* hosts */
	uint64_t conns;			      /* all hosts' open connections */
	double iops, bps, p99_ms;	      /* sums; the worst p99 */
	uint32_t weight;		      /* the leader's, 0: none given */
	uint8_t self_verdict;		      /* this host's, as published (CL_NONE) */
	char failing_hosts[CL_MAX_HOST_SHOWN * CL_HOST_MAX];
};

struct cl_view {
	bool on;	/* a cluster is configured */
	bool reachable; /* etcd answered within the lease's time */
	bool leader_self;
	char host[CL_HOST_MAX];
	char leader[CL_HOST_MAX]; /* "" while there is none */
	int64_t revision;	  /* of the store, as last seen */
	unsigned n_hosts;	  /* registered (their leases alive) */
	double lease_left_s;
	unsigned n_backends;
	struct cl_backend_view backends[CL_MAX_BACKENDS];
	char weights_leader[CL_HOST_MAX];
	int64_t weights_rev; /* of the weights given (0: none) */
	int64_t config_rev;  /* of the desired configuration (0: none) */
	/* The cluster thread's work, for the metrics. */
	uint64_t txns, puts, events, resyncs, errors, elections;
	double oldest_obs_s; /* age of the oldest remote observation used */
};

/* A backend as the configuration gives it (the leader weights them). */
struct cl_backend_cfg {
	uint32_t id;
	uint32_t weight, capacity;
};

struct cluster_opts {
	const struct vsn_cfg_cluster *cfg;
	const char *host;    /* this host's name */
	bool campaign;	     /* stand for leader */
	int notify_fd;	     /* an eventfd written when something changed; -1: none */
	const char *version; /* of vsn, in the registration */
};

struct cluster;

/* Starts the threads; etcd need not answer yet (they retry). */
struct cluster *cluster_start(const struct cluster_opts *o, struct vsn_error *err);
/* Revokes the lease (this host's keys go at once) and joins the threads. */
void cluster_stop(struct cluster *cl);

/* This host's observations (copied); published when they changed, at most
 * once per publish interval, in one transaction. */
void cluster_publish(struct cluster *cl, const struct cl_obs *obs);
/* The configured backends, for the leader's weights. */
void cluster_set_backends(struct cluster *cl, const struct cl_backend_cfg *b, unsigned n);
/* The cluster as this host sees it now. */
void cluster_view(struct cluster *cl, struct cl_view *out);
const struct cl_backend_view *cl_view_backend(const struct cl_view *v, uint32_t id);

/* The desired configuration, parsed and validated for this host, when a
 * new one came (else NULL); *rev its revision, *error why it was refused
 * (then NULL is returned and the old one stays). */
struct vsn_config *cluster_take_config(struct cluster *cl, int64_t *rev, char *error,
				       size_t error_len);
/* What this host runs: the revision applied, or the error that kept the
 * old configuration (error NULL: applied). */
void cluster_report_applied(struct cluster *cl, int64_t rev, const char *error);
/*
 * Write the desired configuration (validated by the caller) if the one in
 * etcd is still at revision expect (0: there is none yet; -1: whatever it
 * is).  Blocks up to the timeout: not for the loop.  *rev: the new one.
 */
int cluster_put_config(struct cluster *cl, const char *text, size_t len, int64_t expect,
		       int64_t *rev, struct vsn_error *err);

/*
 * A desired configuration checked as every host it names will read it
 * (with the code of 'vsn apply'; all of it when it names none);
 * hosts (may be NULL) lists them.  0 or -EINVAL with err filled.
 */
#define CL_CONFIG_MAX (1u << 20) /* etcd takes 1.5 MiB per request */
int cluster_check_config(const char *name, const char *text, size_t len, char *hosts,
			 size_t hosts_len, struct vsn_error *err);

/* The desired configuration's text as last seen (NULL: none; free()). */
char *cluster_config_text(struct cluster *cl, int64_t *rev);

struct json_object;
/* Hosts (name, applied revision, error, observation age), the leader and
 * each backend's cluster-wide view, for 'vsn cluster status'. */
struct json_object *cluster_status_json(struct cluster *cl);

/* view.c: pure functions over what the store holds. */
struct cl_host_rec {
	char name[CL_HOST_MAX];
	int64_t applied_rev;
	char error[CL_REASON_MAX];
	double obs_ts; /* wall clock of its last publish */
	unsigned n_backends;
	struct cl_backend_obs *backends;
};

/* Fold hosts' observations into per-backend views (out->backends). */
void cl_view_fold(struct cl_view *out, const struct cl_host_rec *hosts, unsigned n_hosts,
		  double now);
/*
 * The leader's weights, one step from prev towards each backend's share:
 * its configured weight times its headroom (capacity minus every host's
 * connections), a tenth of it while most hosts see it degraded; at least
 * CL_MIN_WEIGHT_PCT; unchanged where no capacity is configured.
 * Returns whether any weight changed.
 */
bool cl_weights_step(const struct cl_view *v, const struct cl_backend_cfg *cfg, unsigned n,
		     const uint32_t *prev, uint32_t *out);
/* Hosts that must see a backend failing for it to be failed everywhere:
 * the configured quorum, or all that reach it when fewer do. */
unsigned cl_quorum(const struct vsn_cfg_cluster *cfg, const struct cl_backend_view *b);

#endif /* VSN_CLUSTER_H */
