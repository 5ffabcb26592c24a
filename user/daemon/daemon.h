/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The controller daemon's state, shared by its files:
 *   daemon.c      the event loop: start-up, epoll, signals, reloads
 *   model.c       the model built from the config; measurements per tick
 *   decide.c      the tick: the outline of what is decided, in order
 *   judge.c       health states of paths and backends, from observations
 *   stall.c       the silent-cut watch (liveness stamps, command table)
 *   congestion.c  congested uplinks and the connections moved off them
 *   workload.c    volume classes and the tiers they choose
 *   moves.c       what decisions do to the maps: reroutes, resets, drains
 *   log.c         the decision log
 *   health.c      NVMe admin-queue / libnvme health pollers (observers)
 *   probe.c       TCP connect probes of backends (observers)
 *   api.c         the API socket (api.h)
 *   metrics.c     the Prometheus textfile
 * Observers only record what they saw; the loop then has it judged
 * (ctl_judge_pending).  Everything lives in one struct ctl that the loop
 * owns; no globals but the signal-safe flag in daemon.c.
 */
#ifndef VSN_DAEMON_H
#define VSN_DAEMON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "config/config.h"

struct json_object;
struct cl_view;
struct cluster;
#include "daemon/policy.h"
#include "lib/vsn.h"

#define CTL_REASON_MAX 160
#define CTL_MOVE_SLOTS 65536 /* last-move times by connection id (hashed) */
#define CTL_LOG_KEEP   64    /* recent decisions kept for 'vsn show decisions' */

/* Why the controller changed something: metric label and log field. */
enum ctl_why {
	CTL_WHY_CARRIER = 0, /* an uplink lost carrier */
	CTL_WHY_SILENT,	     /* a path stopped answering (silent cut) */
	CTL_WHY_NEIGH,	     /* a path's next hop became unreachable */
	CTL_WHY_CONGESTION,  /* an uplink crossed its congestion threshold */
	CTL_WHY_BACKEND,     /* a backend failed: drained, connections reset */
	CTL_WHY_RECOVERED,   /* a path or backend came back */
	CTL_WHY_OPERATOR,    /* an API request */
	CTL_WHY_RELOAD,	     /* a config reload */
	CTL_WHY_CLASS,	     /* a volume's workload class changed */
	CTL_WHY_TENANT,	     /* one VM's traffic: its silence alone, the table's fill */
	CTL_WHY_CLUSTER,     /* what the other hosts see (docs/cluster.md) */
	CTL_WHY_MAX,
};

struct ctl_uplink {
	const struct vsn_cfg_uplink *cfg;
	unsigned ifindex;
	bool carrier;
	uint64_t tx_bytes; /* vsn's bytes through its paths, last tick */
	double rate_bps;
	double util;			/* 0..1 of capacity; 1 when its qdisc throttled */
	uint64_t q_overlimits, q_drops; /* egress qdisc counters, last tick */
	bool q_throttled;
	bool congested;
	uint64_t settle_until_ns; /* no congestion moves off it before this */
};

struct ctl_path {
	uint32_t id;
	int uplink; /* index into ctl.uplinks */
	const struct vsn_cfg_path *cfg;
	struct pol_damper damp;
	enum vsn_health observed;
	bool carrier_down, silent, neigh_failed; /* silent: for one observation */
	enum ctl_why pending;			 /* an observer saw something (0: nothing) */
	uint64_t silent_since_ns;		 /* await_ns that tripped the silent check */
	/* One VM's silence alone moved that VM off it: until then, a second
	 * VM's silence, or SYNs nobody answers, fail it. */
	uint64_t suspect_until_ns;
	uint32_t suspect_vm;
	bool avoid;		/* while one VM's traffic moves off it: chosen as if failed */
	uint64_t cmd_cutoff_ns; /* commands sent before its last failover are moot */
	char reason[CTL_REASON_MAX];
	uint64_t bytes; /* vsn_path_stats, last tick */
	double rate_bps;
	/* In-band latency: mean of this tick, and a slow baseline. */
	double lat_ms, lat_base_ms;
	uint64_t lat_sum_ns, lat_n; /* this tick, from events */
	uint64_t cmds, errs;	    /* this tick, from events */
	double err_rate, ce_rate;
	uint64_t roce_pkts, roce_marks; /* vsn_roce_path totals, last tick */
};

struct ctl_backend {
	uint32_t id;
	const struct vsn_cfg_backend *cfg;
	struct pol_damper damp;
	enum vsn_health observed;
	char reason[CTL_REASON_MAX];
	bool drained;	     /* the controller set it down */
	bool admin_state;    /* an operator's backend-set holds */
	uint8_t admin;	     /* that state */
	uint64_t resp, errs; /* in-band, over the last window */
	uint64_t window_start_ns;
	double lat_ms;
	/* A silent stall on one of its paths: if it follows the backend to
	 * another path soon after, the backend is what stopped answering. */
	uint64_t silent_ns;
	uint32_t silent_path;
	bool silent;  /* for one observation */
	bool pending; /* a poll or probe result waits to be judged */
	/* TCP connect probe (health: tcp), run from the tick. */
	int probe_fd;
	uint64_t probe_start_ns, probe_next_ns;
	/* The device's own view (health_nvme), when polled. */
	bool polled, reachable;
	uint64_t unreach_since_ns; /* first of the current run of failed polls */
	uint64_t ok_ns;		   /* taken by the last poll or probe that was answered */
	uint32_t poll_path;	   /* the path whose uplink its admin polls leave by */
	uint8_t critical_warning, ana_state;
	char dev_error[CTL_REASON_MAX - 32];
};

struct ctl_move_slot {
	uint32_t conn_id;
	bool operator;	  /* pinned by 'vsn route conn': congestion leaves it */
	bool closed;	  /* FIN or RST seen (telemetry): nothing to move */
	uint32_t backend; /* from its open event: who a stall blames */
	uint32_t vm;	  /* from its open event: whose silence it is */
	bool vm_known;	  /* that event was seen (a slot can be taken over) */
	uint64_t at_ns;	  /* last move */
	uint64_t bytes;	  /* at the last congestion walk */
};

/* A volume's workload over the current window, and what it was judged. */
struct ctl_volume {
	uint64_t cmds, bytes, seq;
	enum pol_class cls;	/* the class acted on */
	enum pol_class pending; /* a new class must hold two windows */
	uint32_t tier_pref;	/* as written to vsn_volumes (tier + 1, 0: best up) */
};

/* A decision's own fields, and its whole line (time, reason, leader). */
#define CTL_LOG_BODY 1024
struct ctl_log_entry {
	uint64_t ts_ns;
	char line[CTL_LOG_BODY + 256];
};

/* One API connection (api.c), served without blocking: its request line
 * comes in, then its reply goes out; a free slot has fd -1. */
struct ctl_api_client {
	int fd;
	uint64_t ticket;      /* unique per connection: a late answer finds its client */
	bool loading;	      /* its config is being read (loader.c) */
	uint64_t deadline_ns; /* answered with an error if it can be, and closed */
	char *in;	      /* the request so far (API_MAX_REQUEST + 1) */
	size_t in_len;
	char *out; /* the reply, once there is one */
	size_t out_len, out_off;
};

struct ctl {
	const struct vsn_opts *o;
	const char *config_file;
	struct vsn_config *cfg;
	struct vsn_maps m;
	struct vsn_path_live *live; /* mmap of vsn_path_live */
	size_t live_len;
	const struct vsn_cmd_slot *cmds; /* mmap of vsn_cmds (outstanding commands) */
	size_t cmds_len;
	uint64_t last_cmd_scan_ns;

	struct ctl_uplink *uplinks;
	struct ctl_path *paths;
	struct ctl_backend *backends;
	unsigned n_uplinks, n_paths, n_backends;

	struct ctl_move_slot *moves; /* CTL_MOVE_SLOTS */
	struct ctl_volume *vols;     /* VSN_MAX_VOLUMES, by volume id */
	uint64_t class_window_ns;    /* start of the current class window */
	struct pol_budget budget;
	uint64_t last_tick_ns;
	uint64_t ticks;
	double tick_seconds_last, tick_seconds_max;
	uint64_t reroutes[CTL_WHY_MAX];	 /* connections moved or reset, by reason */
	uint64_t decisions[CTL_WHY_MAX]; /* logged changes, by reason */
	uint64_t ring_events, api_requests, api_errors, reloads;
	uint64_t api_dropped; /* API clients closed at their deadline or refused busy */
	uint64_t last_metrics_ns;
	uint64_t conn_entries; /* vsn_conns, counted every CONN_COUNT_NS */
	uint64_t last_conn_count_ns;
	/* Per VM id, at the last count: its open connections (VM-side
	 * entries not closing), and how many the datapath's count held
	 * beyond them since (entries the LRU evicted). */
	uint32_t vm_open[VSN_MAX_VMS];
	uint64_t vm_lost[VSN_MAX_VMS];
	struct ctl_log_entry log[CTL_LOG_KEEP];
	FILE *logf; /* structured decision log: one JSON object per line */
	unsigned n_log;

	/* Event-loop plumbing (daemon.c). */
	int epfd, tick_fd, watch_fd, sig_fd, api_fd, health_fd;
	int loader_fd;
	struct ctl_api_client *api; /* API_MAX_CLIENTS */
	uint64_t api_tickets;
	struct ctl_loader *loader; /* config files read off the loop (loader.c) */
	struct ctl_fleet *fleet;   /* this host in a cluster (fleet.c); NULL: alone */
	struct rtnl *rtnl;
	struct ring_buffer *ring;
	struct health_worker *health;
	uint32_t *health_ids; /* backend of each polled source, in order */
	unsigned n_health;
	bool bw_active;	  /* vsn's HTB trees are on the uplinks */
	bool allow_empty; /* --allow-empty: a reload may empty the maps */
	bool stop;
	bool conns_nearly_full; /* conn_entries at CONN_FULL_WARN or above */
	bool detached;		/* datapath.c: its pins or programs are gone: decide nothing */
	bool maps_kept;		/* started on a cluster-only file: maps left as they were */

	/* The datapath as last seen (datapath.c). */
	int64_t detached_at;	     /* wall clock, seconds */
	uint64_t pins_ino;	     /* of the vsn_ifaces pin the maps came from */
	uint64_t last_hook_check_ns; /* interfaces' hooks, looked at once a second */
	char detached_why[CTL_REASON_MAX];
};

#define NS_PER_MS 1000000ull

static inline uint64_t ctl_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* model.c */
int ctl_model_build(struct ctl *c, struct vsn_error *err);
void ctl_model_free(struct ctl *c);
struct ctl_path *ctl_path(struct ctl *c, uint32_t id);
struct ctl_backend *ctl_backend(struct ctl *c, uint32_t id);
struct ctl_uplink *ctl_uplink_by_ifindex(struct ctl *c, unsigned ifindex);
uint32_t ctl_best_path(struct ctl *c, const struct vsn_cfg_backend *b);
/* Apply the config (plan) with the controller's state laid over it. */
int ctl_apply_config(struct ctl *c, struct vsn_config *cfg, struct vsn_error *err);
/* Per tick: counters, qdisc, latency -> pol_path inputs. */
void ctl_measure(struct ctl *c, uint64_t now, double dt);
void ctl_event(struct ctl *c, const struct vsn_event *e);
void ctl_fill_pol(const struct ctl *c, const struct ctl_path *p, struct pol_path *out);

/* decide.c: the tick, the outline of what the controller decides. */
void ctl_tick(struct ctl *c, uint64_t now);

/* log.c: the decision log. */
void ctl_log(struct ctl *c, enum ctl_why why, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
const char *ctl_why_name(enum ctl_why why);
/* s as the body of a JSON string (for free text in ctl_log lines). */
const char *ctl_esc(char *out, size_t len, const char *s);

/* judge.c: health states.  Re-evaluate one path's/backend's observation and
 * act on a change; a path's or backend's `silent` counts for one
 * observation. */
void ctl_path_observe(struct ctl *c, struct ctl_path *p, uint64_t now, enum ctl_why why);
void ctl_backend_observe(struct ctl *c, struct ctl_backend *b, uint64_t now, enum ctl_why why);
/* What the observers (health.c, probe.c) left pending, judged. */
void ctl_judge_pending(struct ctl *c, uint64_t now);
void ctl_link_event(struct ctl *c, unsigned ifindex, bool carrier, uint64_t now);
void ctl_neigh_event(struct ctl *c, unsigned ifindex, const struct vsn_addr *a, bool failed,
		     uint64_t now);

/* loader.c: config files read and validated on a thread of their own, the
 * result applied by the loop.  LOADER_RELOAD: for a SIGHUP, else an API
 * client's slot (and its ticket). */
#define LOADER_RELOAD (-1)
int ctl_loader_start(struct ctl *c, struct vsn_error *err);
void ctl_loader_stop(struct ctl *c);
/* -EBUSY while a load runs (a reload is then queued). */
int ctl_loader_submit(struct ctl *c, const char *file, unsigned flags, int client, uint64_t ticket);
/* The same for 'vsn apply --cluster': checked, then written to etcd if it
 * is still at revision expect (cluster_put_config). */
int ctl_loader_submit_cluster(struct ctl *c, const char *file, unsigned flags, struct cluster *cl,
			      int64_t expect, int client, uint64_t ticket);
/* The loop's side: the result of the last load, handed on. */
void ctl_loader_event(struct ctl *c);
/* SIGHUP: read the config file again (daemon.c), and its result. */
void ctl_reload(struct ctl *c);
void ctl_reload_loaded(struct ctl *c, struct vsn_config *cfg, const struct vsn_error *err);
/* api.c: an API apply's file, read: applied, and the client answered if it
 * is still there (cfg is consumed). */
void ctl_api_apply_loaded(struct ctl *c, int slot, uint64_t ticket, struct vsn_config *cfg,
			  const struct vsn_error *err);
/* ... and a cluster put's outcome: rev 0 and err, or the new revision. */
void ctl_api_cluster_put_done(struct ctl *c, int slot, uint64_t ticket, int64_t rev,
			      const char *hosts, const struct vsn_error *err);

/* tenants.c: vsn_conns counted (fill level, each VM's open connections,
 * written back to the datapath's per-VM count). */
void ctl_count_conns(struct ctl *c);

/* stall.c: the silent-cut watch, between ticks. */
void ctl_watch(struct ctl *c, uint64_t now);

/* congestion.c: congested uplinks flagged (and logged), their heaviest
 * connections moved. */
void ctl_congestion(struct ctl *c, uint64_t now);

/* workload.c: volume classes and the tiers they choose. */
enum pol_class ctl_volume_class(const struct ctl *c, uint32_t volume_id);
void ctl_classify_volumes(struct ctl *c, uint64_t now);

/* moves.c: what decisions do to the maps. */
struct ctl_move_slot *ctl_move_slot(struct ctl *c, uint32_t conn_id);
/* Where a connection (or route) of backend cb now on path cur should go. */
uint32_t ctl_choose_path(struct ctl *c, const struct vsn_cfg_backend *cb, uint32_t cur,
			 enum pol_class cls, uint64_t last_move, uint64_t now, bool *forced);
const struct vsn_cfg_backend *ctl_cfg_backend(const struct ctl *c, uint32_t id);
bool ctl_conn_live(const struct vsn_conn *v, uint64_t now, uint64_t within);
/* The path a connection entry uses now: its override, else its route. */
uint32_t ctl_conn_path(const struct ctl *c, const struct vsn_conn *v);
/* Everything off a failed path: routes, then connections pinned to it. */
void ctl_reroute_path(struct ctl *c, struct ctl_path *p, uint64_t now, enum ctl_why why);
/* Only VM vm's routes and connections off path p (its silence alone must
 * not fail a path that other VMs share). */
#define CTL_ALL_VMS VSN_AWAIT_MANY
void ctl_reroute_vm(struct ctl *c, struct ctl_path *p, uint32_t vm, uint64_t now, enum ctl_why why);
/* Path p is healthy again: the pins a failure displaced from it return. */
void ctl_restore_pins(struct ctl *c, const struct ctl_path *p);
void ctl_drain_backend(struct ctl *c, struct ctl_backend *b, enum ctl_why why);
void ctl_undrain_backend(struct ctl *c, struct ctl_backend *b);

/* health.c: NVMe admin-queue and libnvme pollers (observers: they leave
 * their backends pending for ctl_judge_pending). */
int ctl_health_start(struct ctl *c, struct vsn_error *err);
void ctl_health_stop(struct ctl *c);
void ctl_health_update(struct ctl *c, uint64_t now);
/* Point each admin-queue poll at the uplink its backend's traffic uses. */
void ctl_health_follow_paths(struct ctl *c);

/* probe.c: TCP connect probes (observers, like health.c). */
void ctl_probe_tick(struct ctl *c, uint64_t now);
void ctl_probe_stop(struct ctl *c);

/* api_conn.c: the API socket and its clients.  Client sockets are in the
 * epoll set with data.u32 = CTL_EV_API_CLIENT + slot. */
#define CTL_EV_API_CLIENT 256
int ctl_api_open(struct ctl *c, struct vsn_error *err);
void ctl_api_accept(struct ctl *c);
void ctl_api_client_event(struct ctl *c, unsigned slot, uint32_t events);
/* Clients past their deadline: answered if possible, closed. */
void ctl_api_sweep(struct ctl *c, uint64_t now);
void ctl_api_close(struct ctl *c);
/* The client's answer: resp (consumed), sent as the socket takes it. */
void ctl_api_reply(struct ctl *c, unsigned slot, struct json_object *resp);
/* The answer comes later (an apply's file is being read): the client waits
 * up to ms, out of the epoll set; resume: it is still there (same ticket)
 * and ready for ctl_api_reply. */
void ctl_api_hold(struct ctl *c, unsigned slot, unsigned ms);
bool ctl_api_resume(struct ctl *c, int slot, uint64_t ticket);

/* api.c: what a request (parsed, strict) does; answers through
 * ctl_api_reply, now or once its file is read. */
void ctl_api_request(struct ctl *c, unsigned slot, struct json_object *req);
struct json_object *ctl_state_json(struct ctl *c);

/* datapath.c: is the datapath still attached?  Checked each tick (and
 * before each change an API request asks for); false while detached.  A
 * re-attach with new pins reopens the maps and re-applies the config. */
void ctl_datapath_init(struct ctl *c);
bool ctl_datapath_check(struct ctl *c, uint64_t now);
/* For an API request cmd: 0, or an error naming the fix when cmd would
 * change maps that no program reads. */
int ctl_datapath_refuse(struct ctl *c, const char *cmd, struct vsn_error *err);
struct json_object *ctl_datapath_json(const struct ctl *c);

/* daemon.c: the telemetry ring, for a re-attach's new maps. */
struct ring_buffer *ctl_ring_new(struct ctl *c, int events_fd);
/* Read rb from now on instead of c->ring (freed). */
int ctl_ring_swap(struct ctl *c, struct ring_buffer *rb);

/* fleet.c: this host in a cluster (nothing when the config has none). */
int ctl_fleet_start(struct ctl *c, struct vsn_error *err);
void ctl_fleet_stop(struct ctl *c);
int ctl_fleet_fd(const struct ctl *c); /* -1: no cluster */
/* Connection events and responses, per backend (from ctl_event). */
void ctl_fleet_event(struct ctl *c, const struct vsn_event *e);
/* Each backend's open connections as the table holds them (tenants.c). */
void ctl_fleet_recount(struct ctl *c, const uint32_t *per_backend);
void ctl_fleet_tick(struct ctl *c, uint64_t now);
/* Its eventfd: a new configuration, leader, weights or verdict. */
void ctl_fleet_wake(struct ctl *c, uint64_t now);
/* May b, failed here, be drained?  Not while fewer than the quorum of the
 * hosts that reach it see it failing: then its paths are re-pathed. */
bool ctl_fleet_may_drain(struct ctl *c, struct ctl_backend *b, uint64_t now);
/* One congestion move from this host's share of the cluster's budget. */
bool ctl_fleet_move_grant(struct ctl *c, uint64_t now);
const char *ctl_fleet_leader(const struct ctl *c); /* NULL: none known */
int64_t ctl_fleet_config_rev(const struct ctl *c); /* 0: the file's */
struct json_object *ctl_fleet_json(struct ctl *c);
const struct cl_view *ctl_fleet_view(const struct ctl *c);
void ctl_fleet_moves(const struct ctl *c, uint64_t *granted, uint64_t *refused);
struct cluster *ctl_fleet_cluster(const struct ctl *c);

/* daemon.c: a configuration read (file, API or cluster) made the running
 * one: checked against what cannot change live, applied, timers and
 * pollers following it.  0, or err (cfg then still the caller's). */
int ctl_adopt_config(struct ctl *c, struct vsn_config *cfg, struct vsn_error *err);

/* moves.c: every route and connection of backend id to another of its
 * paths (its current paths suspect), without a reset. */
void ctl_repath_backend(struct ctl *c, uint32_t id, uint64_t now);

/* metrics.c */
int ctl_metrics_write(struct ctl *c, struct vsn_error *err);

/* daemon.c: the controller until SIGTERM/SIGINT; owns cfg and logf. */
int daemon_run(const struct vsn_opts *o, const char *config_file, struct vsn_config *cfg,
	       FILE *logf, bool allow_empty);

#endif /* VSN_DAEMON_H */
