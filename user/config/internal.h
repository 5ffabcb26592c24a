/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * What the config reader's files share; everything else uses config.h.
 *
 *   load.c      config_load(): read, map lines, load, convert, check;
 *               config_read(), config_free()
 *   lines.c     libyaml pass: the line of every section, item, key
 *   raw.c       libcyaml pass: the schema, every value as a string
 *   check.c     per-item checks (config_load and config_validate)
 *   validate.c  config_validate(): ids, references, duplicates
 *   values.c    enum values, config_find_vm() (numbers, addresses, MACs
 *               and rates: lib/values.c)
 *   err.c       "FILE:LINE: SECTION[INDEX].FIELD: reason" messages
 * plan.c and ops.c (the map writes) use config.h only.
 */
#ifndef VSN_CONFIG_INT_H
#define VSN_CONFIG_INT_H

#include <errno.h>
#include <linux/types.h> /* vsn_types.h needs it first */

#include "config/config.h"

#define HOST_VM	    "host" /* vm name of host-initiator volumes and routes */
#define MAX_UPLINKS VSN_MAX_IFINDEX

#define PORT_MIN       1
#define PORT_MAX       65535
#define VLAN_MIN       1
#define VLAN_MAX       4094
#define DSCP_MAX       63
#define ECN_MAX	       3
#define TTL_MIN	       1
#define TTL_MAX	       255
#define FLOW_LABEL_MAX 0xfffff
#define WEIGHT_MIN     1
#define WEIGHT_MAX     65535
#define WEIGHT_DEFAULT 100
#define TIER_MAX       7
/* Per-VM connection limits, when the config gives none: room for a few
 * NVMe controllers of many queues each, and for reconnecting all of them
 * at once; 128 VMs at the limit fill the table (two entries each). */
#define VM_MAX_CONNS_DEFAULT  4096
#define VM_CONN_RATE_DEFAULT  256 /* new connections per second */
#define VM_CONN_RATE_MAX      1000000
#define VM_CONN_BURST_DEFAULT 512

/*
 * A file's errors are all reported, one line each, up to CFG_MAX_ERRORS;
 * then "... and N more".  Counted here (err.c).
 */
#define CFG_MAX_ERRORS 20
struct cfg_errs {
	unsigned n, shown;
};

/* Where errors go and how to find the line of a key (map may be NULL).
 * errs NULL: one error, the last one set. */
struct ectx {
	const char *file;
	struct vsn_error *err;
	const struct vsn_line_map *map;
	struct cfg_errs *errs;
};

/* Deeper than this is no vsn config (it needs four: root, section, item,
 * list): refused before libyaml's work on it grows with the square. */
#define CFG_MAX_DEPTH 8
/* The largest config that fits the maps is ~5 MiB in block style. */
#define CFG_MAX_FILE_SIZE (8u << 20)

/* The item being converted or checked: its section, index and line. */
struct item {
	const struct ectx *c;
	const char *sec;
	long idx;
	unsigned line;
};

/* err.c.  Both return -EINVAL, so callers can "return cfg_fail(...)". */
int cfg_fail(const struct ectx *c, const char *sec, long idx, unsigned line, const char *key,
	     long sub, const char *fmt, ...) __attribute__((format(printf, 7, 8)));
int cfg_item_fail(const struct item *it, const char *key, long sub, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* -ENOMEM; inline so that clang-analyzer sees it never returns 0. */
static inline int cfg_fail_oom(const struct ectx *c)
{
	cfg_fail(c, NULL, -1, 0, NULL, -1, "out of memory");
	return -ENOMEM;
}

/* After the last error of a pass: "... and N more" when some were not shown. */
void cfg_errs_finish(const struct ectx *c);
/*
 * A key as an error may quote it: keys of a vsn config are plain names.
 * Anything else (a line of /etc/shadow read as a key) is not echoed: NULL.
 */
const char *cfg_key_shown(const char *key);

/* line 0: take the item's line from the map. */
struct item cfg_item_at(const struct ectx *c, const char *sec, unsigned idx, unsigned line);

/* lines.c.  *empty: no document, or a null root (nothing to load).  Also
 * the syntax check, and where nesting beyond CFG_MAX_DEPTH is refused. */
int cfg_lines_build(const struct ectx *c, const char *buf, size_t len, struct vsn_line_map **map,
		    bool *empty);
void cfg_lines_free(struct vsn_line_map *map);
/* Best known line for sec[idx].key[sub] (any part may be NULL or -1); 0 if none. */
unsigned cfg_line(const struct vsn_line_map *map, const char *sec, long idx, const char *key,
		  long sub);
unsigned cfg_lines_count(const struct vsn_line_map *map, const char *sec);

/*
 * What libcyaml loads (raw.c) and load.c converts: every
 * value as a string, NULL when absent or null.  Each kind of item lists
 * its keys once, as S(T, key) for a scalar or L(T, key) for a sequence of
 * scalars; the list makes both the struct below and its schema.
 */
/* clang-format off */
#define RAW_VM_KEYS(S, L, T)						\
	S(T, name) S(T, id) S(T, interface) S(T, min_rate) S(T, max_rate) \
	L(T, addresses) S(T, mac) S(T, max_connections)			\
	S(T, connection_rate) S(T, connection_burst) S(T, host)
#define RAW_UPLINK_KEYS(S, L, T)					\
	S(T, interface) S(T, capacity) S(T, host)
#define RAW_BACKEND_KEYS(S, L, T)					\
	S(T, id) S(T, name) S(T, address) S(T, port) S(T, state)	\
	S(T, weight) S(T, tier) L(T, paths) S(T, nqn) S(T, health)	\
	S(T, capacity)
#define RAW_PATH_KEYS(S, L, T)						\
	S(T, id) S(T, uplink) S(T, next_hop) S(T, source_mac)		\
	S(T, vlan) S(T, dscp) S(T, ecn) S(T, ttl) S(T, flow_label)	\
	S(T, source_address) S(T, host)
#define RAW_VOLUME_KEYS(S, L, T)					\
	S(T, id) S(T, vm) S(T, address) S(T, port) S(T, protocol)	\
	L(T, backends) S(T, host)
#define RAW_ROUTE_KEYS(S, L, T)						\
	S(T, vm) S(T, volume) S(T, backend) S(T, path) S(T, host)
/* The controller section is one mapping, not a list. */
#define RAW_CONTROLLER_KEYS(S, L, T)					\
	S(T, tick_ms) S(T, watch_ms) S(T, silent_ms) S(T, dwell_ms)	\
	S(T, margin_pct) S(T, max_moves) S(T, hold_down_ms)		\
	S(T, flap_window_ms) S(T, flap_max) S(T, congestion_util_pct)	\
	S(T, congestion_latency_pct) S(T, congestion_ce_pct)		\
	S(T, error_rate_pct) S(T, weight_util) S(T, weight_latency)	\
	S(T, weight_errors) S(T, health_interval_ms)			\
	S(T, health_timeout_ms) S(T, hostnqn) S(T, metrics_dir)	\
	S(T, metrics_interval_ms) S(T, socket) S(T, observe_only)	\
	S(T, tier_by_class)
/* So is the cluster section (docs/cluster.md). */
#define RAW_CLUSTER_KEYS(S, L, T)					\
	L(T, endpoints) S(T, host) S(T, prefix) S(T, lease_ttl_s)	\
	S(T, publish_ms) S(T, timeout_ms) S(T, quorum)			\
	S(T, move_budget) S(T, ca_file) S(T, cert_file) S(T, key_file)
/* clang-format on */

#define RAW_MEMBER_STR(T, key) char *key;
#define RAW_MEMBER_LIST(T, key)                                                                    \
	char **key;                                                                                \
	unsigned key##_count;
#define RAW_STRUCT(kind, KEYS)                                                                     \
	struct raw_##kind {                                                                        \
		KEYS(RAW_MEMBER_STR, RAW_MEMBER_LIST, )                                            \
	}

RAW_STRUCT(vm, RAW_VM_KEYS);
RAW_STRUCT(uplink, RAW_UPLINK_KEYS);
RAW_STRUCT(backend, RAW_BACKEND_KEYS);
RAW_STRUCT(path, RAW_PATH_KEYS);
RAW_STRUCT(volume, RAW_VOLUME_KEYS);
RAW_STRUCT(route, RAW_ROUTE_KEYS);
RAW_STRUCT(controller, RAW_CONTROLLER_KEYS);
RAW_STRUCT(cluster, RAW_CLUSTER_KEYS);

struct raw_config {
	struct raw_vm *vms;
	unsigned vms_count;
	struct raw_uplink *uplinks;
	unsigned uplinks_count;
	struct raw_backend *backends;
	unsigned backends_count;
	struct raw_path *paths;
	unsigned paths_count;
	struct raw_volume *volumes;
	unsigned volumes_count;
	struct raw_route *routes;
	unsigned routes_count;
	struct raw_controller *controller; /* NULL: all defaults */
	struct raw_cluster *cluster;	   /* NULL: no cluster */
};

/* raw.c */
int cfg_raw_load(const struct ectx *c, const char *buf, size_t len, struct raw_config **raw);
void cfg_raw_free(struct raw_config *raw);

/* check.c */
int cfg_check_count(const struct ectx *c, const char *sec, unsigned n, unsigned max);
int cfg_check_items(const struct ectx *c, const struct vsn_config *cfg);

/* values.c */
struct cfg_enum {
	const char *name;
	uint8_t value;
};
int cfg_parse_enum(const char *s, const struct cfg_enum *names, unsigned n, uint8_t *out);

#endif /* VSN_CONFIG_INT_H */
