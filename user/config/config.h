/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The vsn config file: what `vsn apply FILE` reads.  Loading is two steps:
 * config_load() parses YAML into struct vsn_config (libcyaml does the schema,
 * a libyaml pass remembers the line of every node so later errors can name
 * it), then config_validate() checks the model as a whole.  Nothing touches
 * the kernel here: resolving interfaces and writing maps is plan.c's job.
 * config_read() does both steps: the one way to read a config.
 */
#ifndef VSN_CONFIG_H
#define VSN_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/types.h> /* vsn_types.h needs it first */

#include "vsn_types.h"
#include "lib/err.h"
#include "lib/values.h"

struct vsn_cfg_vm {
	char *name;	       /* unique */
	uint32_t id;	       /* 1..VSN_MAX_VMS-1, unique */
	char *interface;       /* VM-side interface (tap/veth) */
	uint64_t min_rate_bps; /* guaranteed on each uplink (HTB rate); 0 = none */
	uint64_t max_rate_bps; /* cap on each uplink (HTB ceil); 0 = none */
	/* Port security: the only sources it may send from (required), and
	 * its MAC (optional). */
	char **addresses;
	unsigned n_addresses;
	char *mac;
	/* New connections: at most max_connections open, conn_rate per
	 * second with bursts of conn_burst (0: no limit). */
	uint32_t max_connections;
	uint32_t conn_rate;
	uint32_t conn_burst;
	char *host; /* only on this host (cluster configs); NULL: every host */
	unsigned line;
};

struct vsn_cfg_uplink {
	char *interface;       /* unique */
	uint64_t capacity_bps; /* "10gbit", "100mbit", "1000000" (bit/s); 0 = unknown */
	char *host;
	unsigned line;
};

struct vsn_cfg_backend {
	uint32_t id;	 /* 1..VSN_MAX_BACKENDS-1, unique */
	char *name;	 /* optional, unique when set */
	char *address;	 /* IPv4 or IPv6 literal */
	uint16_t port;	 /* default 4420 */
	uint8_t state;	 /* enum vsn_backend_state; "up" (default), "down", "draining" */
	uint32_t weight; /* default 100, 1..65535 */
	uint8_t tier;	 /* default 0, 0..7 */
	uint32_t *paths; /* path ids usable to reach it; first = default */
	unsigned n_paths;
	char *nqn;	/* subsystem NQN: the controller polls its admin queue */
	uint8_t health; /* enum vsn_health_src */
	/* Connections it serves well, from all hosts together (0: unknown):
	 * the cluster's leader weights it by what is left of them. */
	uint32_t capacity;
	unsigned line;
};

/* Where the controller reads a backend's device health from. */
enum vsn_health_src {
	VSN_HEALTH_AUTO = 0,   /* admin queue over NVMe/TCP when nqn is set, else in-band */
	VSN_HEALTH_REMOTE = 1, /* admin queue over NVMe/TCP (needs nqn) */
	VSN_HEALTH_LOCAL = 2,  /* a controller this host's kernel sees (libnvme) */
	VSN_HEALTH_INBAND = 3, /* datapath latency and errors only */
	VSN_HEALTH_TCP = 4,    /* a TCP connect to address:port answers */
};

struct vsn_cfg_path {
	uint32_t id;	      /* 1..VSN_MAX_PATHS-1, unique */
	char *uplink;	      /* must be one of uplinks[].interface */
	char *next_hop_mac;   /* "aa:bb:cc:dd:ee:ff", or NULL with fib = true */
	char *next_hop_addr;  /* a gateway address whose MAC the kernel resolves */
	bool fib;	      /* resolve next hop with the kernel FIB/neighbour table */
	char *source_mac;     /* optional; default: the uplink's own MAC */
	int vlan;	      /* -1 = untagged, else 1..4094 */
	int dscp;	      /* -1 = keep, else 0..63 */
	int ecn;	      /* -1 = keep, else 0..3 */
	int ttl;	      /* -1 = keep, else 1..255 */
	int64_t flow_label;   /* -1 = keep, else 0..0xfffff (IPv6 only) */
	char *source_address; /* optional SNAT address for NVMe/TCP */
	char *host;
	unsigned line;
};

struct vsn_cfg_volume {
	uint32_t id;	    /* 1..VSN_MAX_VOLUMES-1, unique */
	char *vm;	    /* name of a vms[] entry, or "host" for host-initiator */
	char *address;	    /* the virtual storage address (VIP) */
	uint16_t port;	    /* default 4420 (nvme-tcp) or 4791 (roce) */
	uint8_t proto;	    /* enum vsn_proto; "nvme-tcp" (default) or "roce" */
	uint32_t *backends; /* backend ids */
	unsigned n_backends;
	char *host;
	unsigned line;
};

struct vsn_cfg_route {
	char *vm; /* vm name or "host" */
	uint32_t volume;
	uint32_t backend;
	uint32_t path;
	char *host;
	unsigned line;
};

#define VSN_CLUSTER_MAX_ENDPOINTS 7
#define VSN_HOST_NAME_MAX	  63

/* The cluster section (docs/cluster.md): how this host's daemon reaches
 * etcd and shares what it sees with the other hosts. */
struct vsn_cfg_cluster {
	bool enabled; /* the section is there */
	char **endpoints;
	unsigned n_endpoints;
	char *host;   /* this host's name in the cluster; NULL: its hostname */
	char *prefix; /* of every key vsn writes */
	uint32_t lease_ttl_s;
	uint32_t publish_ms;
	uint32_t timeout_ms;
	uint32_t quorum;      /* hosts that must see a backend failing */
	uint32_t move_budget; /* connection moves per second, all hosts together */
	char *ca_file, *cert_file, *key_file;
	unsigned line;
};

/* The cluster section's numeric keys: X(key, min, max, default). */
#define VSN_CLUSTER_NUMBERS(X)                                                                     \
	X(lease_ttl_s, 1, 600, 3)                                                                  \
	X(publish_ms, 100, 60000, 1000)                                                            \
	X(timeout_ms, 50, 60000, 1000)                                                             \
	X(quorum, 1, 100000, 2)                                                                    \
	X(move_budget, 1, 1000000, 64)

#define VSN_DEFAULT_CLUSTER_PREFIX "/vsn/"

/*
 * The daemon's policy (section "controller", one mapping).  Percentages are
 * integers so the file never depends on float parsing.
 */
struct vsn_cfg_controller {
	uint32_t tick_ms;		 /* decision tick */
	uint32_t watch_ms;		 /* silent-cut poll of vsn_path_live */
	uint32_t silent_ms;		 /* no reply this long with requests out: cut */
	uint32_t dwell_ms;		 /* a connection stays this long after a move */
	uint32_t margin_pct;		 /* a move must improve the score this much */
	uint32_t max_moves;		 /* connection moves per tick */
	uint32_t hold_down_ms;		 /* failed -> usable again after this */
	uint32_t flap_window_ms;	 /* damping: state changes counted over this */
	uint32_t flap_max;		 /* more changes than this in the window: held */
	uint32_t congestion_util_pct;	 /* uplink utilisation that is congestion */
	uint32_t congestion_latency_pct; /* latency over baseline that is congestion */
	uint32_t congestion_ce_pct;	 /* ECN CE share of packets that is congestion */
	uint32_t error_rate_pct;	 /* command errors that fail a backend */
	uint32_t weight_util;		 /* score weights */
	uint32_t weight_latency;
	uint32_t weight_errors;
	uint32_t health_interval_ms; /* admin-queue polls */
	uint32_t health_timeout_ms;
	uint32_t metrics_interval_ms;
	char *hostnqn;	   /* NULL: the host's /etc/nvme/hostnqn, else generated */
	char *metrics_dir; /* Prometheus textfile directory; "" = off */
	char *socket;	   /* API socket path */
	bool observe_only; /* measure and report, never change a mapping */
	/* New connections of a bulk (sequential) volume go to its highest
	 * tier with a backend up, of a latency-sensitive one to the lowest. */
	bool tier_by_class;
	unsigned line;
};

/* The numeric keys of the controller section: X(key, min, max, default). */
#define VSN_CTL_NUMBERS(X)                                                                         \
	X(tick_ms, 10, 10000, 100)                                                                 \
	X(watch_ms, 5, 1000, 20)                                                                   \
	X(silent_ms, 20, 60000, 150)                                                               \
	X(dwell_ms, 0, 3600000, 2000)                                                              \
	X(margin_pct, 0, 100, 20)                                                                  \
	X(max_moves, 1, 100000, 8)                                                                 \
	X(hold_down_ms, 0, 3600000, 5000)                                                          \
	X(flap_window_ms, 1000, 3600000, 60000)                                                    \
	X(flap_max, 1, 1000, 3)                                                                    \
	X(congestion_util_pct, 1, 100, 80)                                                         \
	X(congestion_latency_pct, 100, 100000, 300)                                                \
	X(congestion_ce_pct, 1, 100, 5)                                                            \
	X(error_rate_pct, 1, 100, 5)                                                               \
	X(weight_util, 0, 100, 40)                                                                 \
	X(weight_latency, 0, 100, 40)                                                              \
	X(weight_errors, 0, 100, 20)                                                               \
	X(health_interval_ms, 50, 3600000, 1000)                                                   \
	X(health_timeout_ms, 10, 60000, 500)                                                       \
	X(metrics_interval_ms, 100, 3600000, 1000)

#define VSN_DEFAULT_SOCKET	"/run/vsn/vsn.sock"
#define VSN_DEFAULT_METRICS_DIR "/var/lib/prometheus/node-exporter"

/* Where each key and list entry stands in the file (config_lines.c). */
struct vsn_line_map;

struct vsn_config {
	char *file; /* path it was loaded from (for messages) */
	struct vsn_cfg_vm *vms;
	unsigned n_vms;
	struct vsn_cfg_uplink *uplinks;
	unsigned n_uplinks;
	struct vsn_cfg_backend *backends;
	unsigned n_backends;
	struct vsn_cfg_path *paths;
	unsigned n_paths;
	struct vsn_cfg_volume *volumes;
	unsigned n_volumes;
	struct vsn_cfg_route *routes;
	unsigned n_routes;
	struct vsn_cfg_controller ctl; /* defaults when the section is absent */
	struct vsn_cfg_cluster cluster;
	struct vsn_line_map *lines; /* lets config_validate name a field's line; may be NULL */
};

/* Parse FILE.  On error returns NULL and fills err (file:line: field: why). */
struct vsn_config *config_load(const char *file, struct vsn_error *err);
/* Whole-model checks (ids, references, duplicates, ranges, families).
 * Returns 0 or -EINVAL with err filled.  Does not look at the system. */
int config_validate(const struct vsn_config *cfg, struct vsn_error *err);
/*
 * Load and validate: the one way callers read a config.  NULL with err
 * filled when the file cannot be taken whole.  A file with no vms, uplinks,
 * paths, backends, volumes or routes would empty every map when applied:
 * it is refused unless flags has CONFIG_ALLOW_EMPTY (--allow-empty), or the
 * file has a cluster section (the rest then comes from etcd).
 */
#define CONFIG_ALLOW_EMPTY 0x1u
/* config_parse: every host's items, each checked alone but not validated
 * as a whole (a file for many hosts, to learn its host names). */
#define CONFIG_ALL_HOSTS 0x2u
struct vsn_config *config_read(const char *file, unsigned flags, struct vsn_error *err);
/*
 * The same from a buffer (name stands for the file in messages), for host:
 * items with a host key are kept only on that host (a file for many hosts,
 * docs/cluster.md), before validation since interfaces and paths may repeat
 * across hosts.  host NULL: this host (config_host_name()).
 */
struct vsn_config *config_parse(const char *name, const char *buf, size_t len, unsigned flags,
				const char *host, struct vsn_error *err);
/* This host's name: the cluster section's host, else its hostname. */
const char *config_host_name(const struct vsn_config *cfg, char *buf, size_t len);
/* The distinct host names a file's items give, at most max; -ENOMEM. */
int config_hosts(const struct vsn_config *cfg, const char **out, unsigned max);
/* Nothing in any section (the controller section aside). */
bool config_is_empty(const struct vsn_config *cfg);
void config_free(struct vsn_config *cfg);

const struct vsn_cfg_vm *config_find_vm(const struct vsn_config *cfg, const char *name);

#endif /* VSN_CONFIG_H */
