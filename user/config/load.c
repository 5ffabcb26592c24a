// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * config_load() and config_free() (see config.h).
 *
 * The file is read once into memory and parsed twice: a libyaml pass
 * builds the line map (config_lines.c), then libcyaml loads the same bytes
 * as strings (config_raw.c).  The strings are converted here, strictly, into
 * struct vsn_config, and each item is checked (config_check.c).  The line
 * map stays with the config so that config_validate() can name lines too.
 */
#include <errno.h>
#include <stdint.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/internal.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* The first name of each is the default. */
static const struct cfg_enum backend_states[] = {
    {"up", VSN_BE_UP},
    {"down", VSN_BE_DOWN},
    {"draining", VSN_BE_DRAINING},
};
static const struct cfg_enum health_srcs[] = {
    {"auto", VSN_HEALTH_AUTO},	    {"nvme-tcp", VSN_HEALTH_REMOTE}, {"local", VSN_HEALTH_LOCAL},
    {"in-band", VSN_HEALTH_INBAND}, {"tcp", VSN_HEALTH_TCP},
};
static const struct cfg_enum booleans[] = {
    {"false", 0},
    {"true", 1},
};
static const struct cfg_enum protocols[] = {
    {"nvme-tcp", VSN_PROTO_NVME_TCP},
    {"roce", VSN_PROTO_ROCEV2},
};

static int conv_str(const struct item *it, const char *key, const char *in, bool required,
		    char **out)
{
	if (!in) {
		if (required)
			return cfg_item_fail(it, key, -1, "missing or empty");
		*out = NULL;
		return 0;
	}
	*out = strdup(in);
	if (!*out)
		return cfg_fail_oom(it->c);
	return 0;
}

static int conv_int(const struct item *it, const char *key, long sub, const char *in, int64_t lo,
		    int64_t hi, int64_t *out)
{
	int64_t v;
	int ret;

	ret = parse_int(in, &v);
	if (ret == -EINVAL)
		return cfg_item_fail(it, key, sub, "expected an integer, got '%s'", in);
	if (ret || v < lo || v > hi)
		return cfg_item_fail(it, key, sub, "%s is out of range %lld..%lld", in,
				     (long long)lo, (long long)hi);
	*out = v;
	return 0;
}

/* Optional integer: dflt when absent. */
static int conv_opt(const struct item *it, const char *key, const char *in, int64_t lo, int64_t hi,
		    int64_t dflt, int64_t *out)
{
	if (!in) {
		*out = dflt;
		return 0;
	}
	return conv_int(it, key, -1, in, lo, hi, out);
}

static int conv_u32(const struct item *it, const char *key, const char *in, int64_t lo, int64_t hi,
		    uint32_t *out)
{
	int64_t v = 0;

	if (!in)
		return cfg_item_fail(it, key, -1, "missing or empty");
	if (conv_int(it, key, -1, in, lo, hi, &v))
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

/* Optional enum: names[0] when absent; the error lists the names. */
static int conv_enum(const struct item *it, const char *key, const char *in,
		     const struct cfg_enum *names, unsigned n, uint8_t *out)
{
	char hint[64] = "";
	size_t len = 0;
	unsigned i;

	if (!in) {
		*out = names[0].value;
		return 0;
	}
	if (!cfg_parse_enum(in, names, n, out))
		return 0;
	for (i = 0; i < n && len < sizeof(hint); i++) {
		const char *sep = i + 1 < n ? ", " : " or ";

		len += (size_t)snprintf(hint + len, sizeof(hint) - len, "%s%s", i ? sep : "",
					names[i].name);
	}
	return cfg_item_fail(it, key, -1, "unknown %s '%s' (%s)", key, in, hint);
}

/* A required, non-empty list of ids. */
static int conv_ids(const struct item *it, const char *key, char **in, unsigned n, int64_t hi,
		    uint32_t **out, unsigned *n_out)
{
	int64_t v = 0;
	unsigned i;

	if (!n)
		return cfg_item_fail(it, key, -1, "at least one id is required");
	*out = calloc(n, sizeof(**out));
	if (!*out)
		return cfg_fail_oom(it->c);
	*n_out = n;
	for (i = 0; i < n; i++) {
		if (conv_int(it, key, i, in[i], 1, hi, &v))
			return -EINVAL;
		(*out)[i] = (uint32_t)v;
	}
	return 0;
}

/* Optional rate: 0 when absent. */
static int conv_rate(const struct item *it, const char *key, const char *in, uint64_t *out)
{
	*out = 0;
	if (in && parse_rate(in, out))
		return cfg_item_fail(it, key, -1,
				     "invalid rate '%s' (e.g. 10gbit, 100mbit, 1000000)", in);
	return 0;
}

/* A list of strings, at most max (check.c says whether none will do). */
static int conv_strs(const struct item *it, const char *key, char **in, unsigned n, unsigned max,
		     char ***out, unsigned *n_out)
{
	unsigned i;

	if (n > max)
		return cfg_item_fail(it, key, -1, "%u given, at most %u allowed", n, max);
	*out = calloc(n, sizeof(**out));
	if (!*out)
		return cfg_fail_oom(it->c);
	*n_out = n;
	for (i = 0; i < n; i++) {
		if (!in[i] || !*in[i])
			return cfg_item_fail(it, key, i, "empty");
		(*out)[i] = strdup(in[i]);
		if (!(*out)[i])
			return cfg_fail_oom(it->c);
	}
	return 0;
}

/* Optional host name: letters, digits, '.', '-', '_'. */
static int conv_host(const struct item *it, const char *in, char **out)
{
	size_t n = in ? strlen(in) : 0;

	*out = NULL;
	if (!in)
		return 0;
	if (!n || n > VSN_HOST_NAME_MAX ||
	    strspn(in, "abcdefghijklmnopqrstuvwxyz"
		       "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
		       "0123456789.-_") != n)
		return cfg_item_fail(it, "host", -1,
				     "'%s' is not a host name (1-%d of letters, digits, '.', '-', "
				     "'_')",
				     in, VSN_HOST_NAME_MAX);
	return conv_str(it, "host", in, true, out);
}

static int conv_vm(const struct item *it, const struct raw_vm *r, struct vsn_cfg_vm *vm)
{
	int64_t max_conns = 0, rate = 0, burst = 0;

	if (conv_str(it, "name", r->name, true, &vm->name) ||
	    conv_u32(it, "id", r->id, 1, VSN_MAX_VMS - 1, &vm->id) ||
	    conv_str(it, "interface", r->interface, true, &vm->interface) ||
	    conv_rate(it, "min_rate", r->min_rate, &vm->min_rate_bps) ||
	    conv_rate(it, "max_rate", r->max_rate, &vm->max_rate_bps) ||
	    (r->addresses_count && conv_strs(it, "addresses", r->addresses, r->addresses_count,
					     VSN_VM_MAX_ADDRS, &vm->addresses, &vm->n_addresses)) ||
	    conv_str(it, "mac", r->mac, false, &vm->mac) ||
	    conv_opt(it, "max_connections", r->max_connections, 0, VSN_MAX_CONNS / 2,
		     VM_MAX_CONNS_DEFAULT, &max_conns) ||
	    conv_opt(it, "connection_rate", r->connection_rate, 0, VM_CONN_RATE_MAX,
		     VM_CONN_RATE_DEFAULT, &rate) ||
	    conv_opt(it, "connection_burst", r->connection_burst, 1, VSN_MAX_CONNS / 2,
		     VM_CONN_BURST_DEFAULT, &burst) ||
	    conv_host(it, r->host, &vm->host))
		return -EINVAL;
	vm->max_connections = (uint32_t)max_conns;
	vm->conn_rate = (uint32_t)rate;
	vm->conn_burst = (uint32_t)burst;
	if (vm->max_rate_bps && vm->min_rate_bps > vm->max_rate_bps)
		return cfg_item_fail(it, "min_rate", -1, "%s is above max_rate %s", r->min_rate,
				     r->max_rate);
	return 0;
}

static int conv_uplink(const struct item *it, const struct raw_uplink *r, struct vsn_cfg_uplink *up)
{
	if (conv_str(it, "interface", r->interface, true, &up->interface) ||
	    conv_rate(it, "capacity", r->capacity, &up->capacity_bps) ||
	    conv_host(it, r->host, &up->host))
		return -EINVAL;
	return 0;
}

static int conv_backend(const struct item *it, const struct raw_backend *r,
			struct vsn_cfg_backend *be)
{
	int64_t port = 0, weight = 0, tier = 0, capacity = 0;

	if (conv_u32(it, "id", r->id, 1, VSN_MAX_BACKENDS - 1, &be->id) ||
	    conv_opt(it, "capacity", r->capacity, 0, UINT32_MAX, 0, &capacity) ||
	    conv_str(it, "name", r->name, false, &be->name) ||
	    conv_str(it, "address", r->address, true, &be->address) ||
	    conv_opt(it, "port", r->port, PORT_MIN, PORT_MAX, VSN_PORT_NVME_TCP, &port) ||
	    conv_opt(it, "weight", r->weight, WEIGHT_MIN, WEIGHT_MAX, WEIGHT_DEFAULT, &weight) ||
	    conv_opt(it, "tier", r->tier, 0, TIER_MAX, 0, &tier) ||
	    conv_enum(it, "state", r->state, backend_states, ARRAY_SIZE(backend_states),
		      &be->state) ||
	    conv_str(it, "nqn", r->nqn, false, &be->nqn) ||
	    conv_enum(it, "health", r->health, health_srcs, ARRAY_SIZE(health_srcs), &be->health))
		return -EINVAL;
	if (be->health == VSN_HEALTH_REMOTE && !be->nqn)
		return cfg_item_fail(it, "health", -1, "nvme-tcp health polling needs nqn");
	be->port = (uint16_t)port;
	be->weight = (uint32_t)weight;
	be->tier = (uint8_t)tier;
	be->capacity = (uint32_t)capacity;
	return conv_ids(it, "paths", r->paths, r->paths_count, VSN_MAX_PATHS - 1, &be->paths,
			&be->n_paths);
}

static int conv_path(const struct item *it, const struct raw_path *r, struct vsn_cfg_path *p)
{
	int64_t vlan = -1, dscp = -1, ecn = -1, ttl = -1;
	struct vsn_addr gw;
	uint8_t mac[6];
	bool v6;

	if (conv_u32(it, "id", r->id, 1, VSN_MAX_PATHS - 1, &p->id) ||
	    conv_str(it, "uplink", r->uplink, true, &p->uplink) ||
	    conv_str(it, "source_mac", r->source_mac, false, &p->source_mac) ||
	    conv_opt(it, "vlan", r->vlan, VLAN_MIN, VLAN_MAX, -1, &vlan) ||
	    conv_opt(it, "dscp", r->dscp, 0, DSCP_MAX, -1, &dscp) ||
	    conv_opt(it, "ecn", r->ecn, 0, ECN_MAX, -1, &ecn) ||
	    conv_opt(it, "ttl", r->ttl, TTL_MIN, TTL_MAX, -1, &ttl) ||
	    conv_opt(it, "flow_label", r->flow_label, 0, FLOW_LABEL_MAX, -1, &p->flow_label) ||
	    conv_str(it, "source_address", r->source_address, false, &p->source_address) ||
	    conv_host(it, r->host, &p->host))
		return -EINVAL;
	p->vlan = (int)vlan;
	p->dscp = (int)dscp;
	p->ecn = (int)ecn;
	p->ttl = (int)ttl;
	if (!r->next_hop)
		return cfg_item_fail(
		    it, "next_hop", -1,
		    "missing or empty (a MAC address, a gateway address or \"fib\")");
	if (!strcmp(r->next_hop, "fib")) {
		p->fib = true;
		return 0;
	}
	if (!parse_mac(r->next_hop, mac))
		return conv_str(it, "next_hop", r->next_hop, true, &p->next_hop_mac);
	if (!parse_addr(r->next_hop, &gw, &v6))
		return conv_str(it, "next_hop", r->next_hop, true, &p->next_hop_addr);
	return cfg_item_fail(it, "next_hop", -1,
			     "'%s' is not a MAC address, a gateway address or \"fib\"",
			     r->next_hop);
}

static int conv_volume(const struct item *it, const struct raw_volume *r,
		       struct vsn_cfg_volume *vol)
{
	int64_t port = 0;

	/* First: the default port depends on it. */
	if (conv_enum(it, "protocol", r->protocol, protocols, ARRAY_SIZE(protocols), &vol->proto) ||
	    conv_u32(it, "id", r->id, 1, VSN_MAX_VOLUMES - 1, &vol->id) ||
	    conv_str(it, "vm", r->vm, true, &vol->vm) ||
	    conv_str(it, "address", r->address, true, &vol->address) ||
	    conv_opt(it, "port", r->port, PORT_MIN, PORT_MAX,
		     vol->proto == VSN_PROTO_ROCEV2 ? VSN_PORT_ROCEV2 : VSN_PORT_NVME_TCP, &port) ||
	    conv_host(it, r->host, &vol->host))
		return -EINVAL;
	vol->port = (uint16_t)port;
	return conv_ids(it, "backends", r->backends, r->backends_count, VSN_MAX_BACKENDS - 1,
			&vol->backends, &vol->n_backends);
}

static int conv_route(const struct item *it, const struct raw_route *r, struct vsn_cfg_route *rt)
{
	if (conv_str(it, "vm", r->vm, true, &rt->vm) ||
	    conv_u32(it, "volume", r->volume, 1, VSN_MAX_VOLUMES - 1, &rt->volume) ||
	    conv_u32(it, "backend", r->backend, 1, VSN_MAX_BACKENDS - 1, &rt->backend) ||
	    conv_u32(it, "path", r->path, 1, VSN_MAX_PATHS - 1, &rt->path) ||
	    conv_host(it, r->host, &rt->host))
		return -EINVAL;
	return 0;
}

/*
 * Allocate cfg->FIELD for raw->FIELD_count items and convert each with
 * conv_FN: every item, so that each one's first problem is reported.
 * n_FIELD counts allocated items, so config_free() cleans up after a
 * failure.
 */
#define CONV_SECTION(c, raw, cfg, field, fn, max)                                                  \
	({                                                                                         \
		unsigned _i, _n = (raw)->field##_count;                                            \
		int _ret = cfg_check_count(c, #field, _n, (max)), _r = 0;                          \
		if (!_ret && _n) {                                                                 \
			(cfg)->field = calloc(_n, sizeof(*(cfg)->field));                          \
			if (!(cfg)->field)                                                         \
				_ret = cfg_fail_oom(c);                                            \
		}                                                                                  \
		for (_i = 0; (cfg)->field && _r != -ENOMEM && _i < _n; _i++) {                     \
			struct item _it = cfg_item_at(c, #field, _i, 0);                           \
			(cfg)->n_##field = _i + 1;                                                 \
			(cfg)->field[_i].line = _it.line;                                          \
			_r = conv_##fn(&_it, &(raw)->field[_i], &(cfg)->field[_i]);                \
			if (_r)                                                                    \
				_ret = _r;                                                         \
		}                                                                                  \
		_ret ? -EINVAL : 0;                                                                \
	})

/* One millisecond/count/percentage key of the controller section. */
#define CTL_U32(key, lo, hi, dflt)                                                                 \
	({                                                                                         \
		int64_t _v = 0;                                                                    \
		int _r = conv_opt(it, #key, r ? r->key : NULL, lo, hi, dflt, &_v);                 \
		ctl->key = (uint32_t)_v;                                                           \
		_r;                                                                                \
	})

#define CTL_CONV(key, lo, hi, dflt) CTL_U32(key, lo, hi, dflt) ||

static int conv_controller(const struct item *it, const struct raw_controller *r,
			   struct vsn_cfg_controller *ctl)
{
	uint8_t observe = 0, tiers = 0;

	if (VSN_CTL_NUMBERS(CTL_CONV)
		conv_str(it, "hostnqn", r ? r->hostnqn : NULL, false, &ctl->hostnqn) ||
	    conv_str(it, "metrics_dir",
		     r && r->metrics_dir ? r->metrics_dir : VSN_DEFAULT_METRICS_DIR, false,
		     &ctl->metrics_dir) ||
	    conv_str(it, "socket", r && r->socket ? r->socket : VSN_DEFAULT_SOCKET, false,
		     &ctl->socket) ||
	    conv_enum(it, "observe_only", r ? r->observe_only : NULL, booleans,
		      ARRAY_SIZE(booleans), &observe) ||
	    conv_enum(it, "tier_by_class", r ? r->tier_by_class : NULL, booleans,
		      ARRAY_SIZE(booleans), &tiers))
		return -EINVAL;
	ctl->observe_only = observe;
	ctl->tier_by_class = tiers;
	if (ctl->health_timeout_ms >= ctl->health_interval_ms)
		return cfg_item_fail(it, "health_timeout_ms", -1,
				     "%u must be below health_interval_ms (%u)",
				     ctl->health_timeout_ms, ctl->health_interval_ms);
	if (ctl->silent_ms < 2 * ctl->watch_ms)
		return cfg_item_fail(it, "silent_ms", -1, "%u must be at least twice watch_ms (%u)",
				     ctl->silent_ms, ctl->watch_ms);
	if (ctl->socket[0] != '/')
		return cfg_item_fail(it, "socket", -1, "'%s' must be an absolute path",
				     ctl->socket);
	return 0;
}

/* One count/millisecond key of the cluster section. */
#define CL_CONV(key, lo, hi, dflt)                                                                 \
	({                                                                                         \
		int64_t _v = 0;                                                                    \
		int _r = conv_opt(it, #key, r->key, lo, hi, dflt, &_v);                            \
		cl->key = (uint32_t)_v;                                                            \
		_r;                                                                                \
	}) ||

static int conv_cluster(const struct item *it, const struct raw_cluster *r,
			struct vsn_cfg_cluster *cl)
{
	const char *files[] = {r->ca_file, r->cert_file, r->key_file};
	unsigned i;

	cl->enabled = true;
	if (VSN_CLUSTER_NUMBERS(CL_CONV) conv_host(it, r->host, &cl->host) ||
	    conv_str(it, "prefix", r->prefix ? r->prefix : VSN_DEFAULT_CLUSTER_PREFIX, true,
		     &cl->prefix) ||
	    conv_str(it, "ca_file", r->ca_file, false, &cl->ca_file) ||
	    conv_str(it, "cert_file", r->cert_file, false, &cl->cert_file) ||
	    conv_str(it, "key_file", r->key_file, false, &cl->key_file))
		return -EINVAL;
	if (!r->endpoints_count)
		return cfg_item_fail(it, "endpoints", -1,
				     "at least one etcd endpoint is required (e.g. "
				     "http://10.0.0.1:2379)");
	if (conv_strs(it, "endpoints", r->endpoints, r->endpoints_count, VSN_CLUSTER_MAX_ENDPOINTS,
		      &cl->endpoints, &cl->n_endpoints))
		return -EINVAL;
	for (i = 0; i < cl->n_endpoints; i++) {
		const char *e = cl->endpoints[i];

		if (strncmp(e, "http://", 7) && strncmp(e, "https://", 8))
			return cfg_item_fail(it, "endpoints", i,
					     "'%s' must start with http:// or https://", e);
		if (!strncmp(e, "http://", 7) && (cl->cert_file || cl->ca_file))
			return cfg_item_fail(it, "endpoints", i,
					     "'%s' is plain http but certificates are set: use "
					     "https://",
					     e);
	}
	if (cl->prefix[0] != '/' || cl->prefix[strlen(cl->prefix) - 1] != '/')
		return cfg_item_fail(it, "prefix", -1, "'%s' must start and end with '/'",
				     cl->prefix);
	if (!cl->cert_file != !cl->key_file)
		return cfg_item_fail(it, cl->cert_file ? "key_file" : "cert_file", -1,
				     "cert_file and key_file go together");
	for (i = 0; i < ARRAY_SIZE(files); i++)
		if (files[i] && files[i][0] != '/')
			return cfg_item_fail(it,
					     i == 0   ? "ca_file"
					     : i == 1 ? "cert_file"
						      : "key_file",
					     -1, "'%s' must be an absolute path", files[i]);
	if ((uint64_t)cl->publish_ms >= (uint64_t)cl->lease_ttl_s * 1000)
		return cfg_item_fail(it, "publish_ms", -1,
				     "%u must be below lease_ttl_s (%u s): observations are "
				     "renewed within their lease",
				     cl->publish_ms, cl->lease_ttl_s);
	return 0;
}

static int convert(const struct ectx *c, const struct raw_config *raw, struct vsn_config *cfg)
{
	struct item ctl_item = cfg_item_at(c, "controller", 0, 0);
	int ret;

	ctl_item.idx = -1; /* one mapping: "controller.key" in messages */
	cfg->ctl.line = ctl_item.line;
	ret = conv_controller(&ctl_item, raw ? raw->controller : NULL, &cfg->ctl);
	if (!raw)
		return ret; /* empty document, or only empty sections */
	if (raw->cluster) {
		struct item cl_item = cfg_item_at(c, "cluster", 0, 0);

		cl_item.idx = -1;
		cfg->cluster.line = cl_item.line;
		ret |= conv_cluster(&cl_item, raw->cluster, &cfg->cluster);
	}
	/* Every section, so that all of their problems are reported. */
	ret |= CONV_SECTION(c, raw, cfg, vms, vm, VSN_MAX_VMS - 1);
	ret |= CONV_SECTION(c, raw, cfg, uplinks, uplink, MAX_UPLINKS);
	ret |= CONV_SECTION(c, raw, cfg, paths, path, VSN_MAX_PATHS - 1);
	ret |= CONV_SECTION(c, raw, cfg, backends, backend, VSN_MAX_BACKENDS - 1);
	ret |= CONV_SECTION(c, raw, cfg, volumes, volume, VSN_MAX_VOLUMES - 1);
	ret |= CONV_SECTION(c, raw, cfg, routes, route, VSN_MAX_ROUTES);
	return ret ? -EINVAL : 0;
}

static int read_all(const struct ectx *c, char **buf, size_t *len)
{
	struct stat st;
	FILE *f = NULL;
	char *p = NULL;
	long size;
	int ret = 0;

	f = fopen(c->file, "rb");
	if (!f) {
		ret = cfg_fail(c, NULL, -1, 0, NULL, -1, "cannot open: %s", strerror(errno));
		goto out;
	}
	if (fstat(fileno(f), &st)) {
		ret = cfg_fail(c, NULL, -1, 0, NULL, -1, "cannot stat: %s", strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		ret = cfg_fail(c, NULL, -1, 0, NULL, -1,
			       S_ISDIR(st.st_mode) ? "is a directory" : "not a regular file");
		goto out;
	}
	if (fseek(f, 0, SEEK_END) || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET)) {
		ret = cfg_fail(c, NULL, -1, 0, NULL, -1, "cannot read: %s", strerror(errno));
		goto out;
	}
	if ((unsigned long)size > CFG_MAX_FILE_SIZE) {
		ret = cfg_fail(c, NULL, -1, 0, NULL, -1,
			       "file too large (%ld bytes, at most %u): is this a vsn config?",
			       size, CFG_MAX_FILE_SIZE);
		goto out;
	}
	p = malloc((size_t)size + 1);
	if (!p) {
		ret = cfg_fail_oom(c);
		goto out;
	}
	if (fread(p, 1, (size_t)size, f) != (size_t)size) {
		ret = cfg_fail(c, NULL, -1, 0, NULL, -1, "short read");
		goto out;
	}
	p[size] = '\0';
	*buf = p;
	*len = (size_t)size;
	p = NULL;
out:
	free(p);
	if (f)
		fclose(f);
	return ret;
}

/* Parse buf (len bytes, NUL-terminated) as the config called name. */
static struct vsn_config *load_buf(const char *name, const char *buf, size_t len,
				   struct vsn_error *err)
{
	struct vsn_error scratch = {.msg = ""};
	struct cfg_errs errs = {.n = 0};
	struct ectx c = {
	    .file = name ? name : "(null)",
	    .err = err ? err : &scratch,
	    .map = NULL,
	    .errs = &errs,
	};
	struct vsn_line_map *map = NULL;
	struct raw_config *raw = NULL;
	struct vsn_config *cfg = NULL;
	bool empty = false;
	int ret;

	c.err->msg[0] = '\0';
	ret = cfg_lines_build(&c, buf, len, &map, &empty);
	if (ret)
		goto out;
	c.map = map;
	if (!empty) {
		ret = cfg_raw_load(&c, buf, len, &raw);
		if (ret)
			goto out;
	}
	cfg = calloc(1, sizeof(*cfg));
	if (!cfg) {
		ret = cfg_fail_oom(&c);
		goto out;
	}
	cfg->lines = map; /* from here on config_free() frees it */
	map = NULL;
	cfg->file = strdup(c.file);
	if (!cfg->file) {
		ret = cfg_fail_oom(&c);
		goto out;
	}
	ret = convert(&c, raw, cfg);
	if (ret)
		goto out;
	ret = cfg_check_items(&c, cfg);
out:
	cfg_errs_finish(&c);
	if (ret) {
		config_free(cfg);
		cfg = NULL;
	}
	cfg_raw_free(raw);
	cfg_lines_free(map);
	return cfg;
}

/* The whole file, NUL-terminated, in *buf; its error already in err. */
static int read_file(const char *file, char **buf, size_t *len, struct vsn_error *err)
{
	struct vsn_error scratch = {.msg = ""};
	struct ectx c = {
	    .file = file ? file : "(null)",
	    .err = err ? err : &scratch,
	    .map = NULL,
	    .errs = NULL,
	};

	c.err->msg[0] = '\0';
	if (!file)
		return cfg_fail(&c, NULL, -1, 0, NULL, -1, "no file given");
	return read_all(&c, buf, len);
}

struct vsn_config *config_load(const char *file, struct vsn_error *err)
{
	struct vsn_config *cfg = NULL;
	char *buf = NULL;
	size_t len = 0;

	if (!read_file(file, &buf, &len, err))
		cfg = load_buf(file, buf, len, err);
	free(buf);
	return cfg;
}

static void free_vm(struct vsn_cfg_vm *vm)
{
	free(vm->name);
	free(vm->interface);
	for (unsigned j = 0; j < vm->n_addresses; j++)
		free(vm->addresses[j]);
	free(vm->addresses);
	free(vm->mac);
	free(vm->host);
}

static void free_uplink(struct vsn_cfg_uplink *up)
{
	free(up->interface);
	free(up->host);
}

static void free_path(struct vsn_cfg_path *p)
{
	free(p->uplink);
	free(p->next_hop_mac);
	free(p->next_hop_addr);
	free(p->source_mac);
	free(p->source_address);
	free(p->host);
}

static void free_volume(struct vsn_cfg_volume *vol)
{
	free(vol->vm);
	free(vol->address);
	free(vol->backends);
	free(vol->host);
}

static void free_route(struct vsn_cfg_route *rt)
{
	free(rt->vm);
	free(rt->host);
}

static void free_cluster(struct vsn_cfg_cluster *cl)
{
	for (unsigned i = 0; i < cl->n_endpoints; i++)
		free(cl->endpoints[i]);
	free(cl->endpoints);
	free(cl->host);
	free(cl->prefix);
	free(cl->ca_file);
	free(cl->cert_file);
	free(cl->key_file);
}

void config_free(struct vsn_config *cfg)
{
	unsigned i;

	if (!cfg)
		return;
	for (i = 0; i < cfg->n_vms; i++)
		free_vm(&cfg->vms[i]);
	for (i = 0; i < cfg->n_uplinks; i++)
		free_uplink(&cfg->uplinks[i]);
	for (i = 0; i < cfg->n_backends; i++) {
		free(cfg->backends[i].name);
		free(cfg->backends[i].address);
		free(cfg->backends[i].paths);
		free(cfg->backends[i].nqn);
	}
	for (i = 0; i < cfg->n_paths; i++)
		free_path(&cfg->paths[i]);
	for (i = 0; i < cfg->n_volumes; i++)
		free_volume(&cfg->volumes[i]);
	for (i = 0; i < cfg->n_routes; i++)
		free_route(&cfg->routes[i]);
	free(cfg->vms);
	free(cfg->uplinks);
	free(cfg->backends);
	free(cfg->paths);
	free(cfg->volumes);
	free(cfg->routes);
	free(cfg->ctl.hostnqn);
	free(cfg->ctl.metrics_dir);
	free(cfg->ctl.socket);
	free_cluster(&cfg->cluster);
	cfg_lines_free(cfg->lines);
	free(cfg->file);
	free(cfg);
}

bool config_is_empty(const struct vsn_config *cfg)
{
	return !(cfg->n_vms || cfg->n_uplinks || cfg->n_paths || cfg->n_backends ||
		 cfg->n_volumes || cfg->n_routes);
}

/* The items for another host go, before validation. */
#define DROP_OTHERS(cfg, field, host, free_fn)                                                     \
	({                                                                                         \
		unsigned _i, _k = 0;                                                               \
		for (_i = 0; _i < (cfg)->n_##field; _i++) {                                        \
			if ((cfg)->field[_i].host && strcmp((cfg)->field[_i].host, host)) {        \
				free_fn(&(cfg)->field[_i]);                                        \
				continue;                                                          \
			}                                                                          \
			(cfg)->field[_k++] = (cfg)->field[_i];                                     \
		}                                                                                  \
		(cfg)->n_##field = _k;                                                             \
	})

static void for_host(struct vsn_config *cfg, const char *host)
{
	DROP_OTHERS(cfg, vms, host, free_vm);
	DROP_OTHERS(cfg, uplinks, host, free_uplink);
	DROP_OTHERS(cfg, paths, host, free_path);
	DROP_OTHERS(cfg, volumes, host, free_volume);
	DROP_OTHERS(cfg, routes, host, free_route);
	/* Lines of items no longer there would misname later errors. */
	if (cfg->lines) {
		cfg_lines_free(cfg->lines);
		cfg->lines = NULL;
	}
}

const char *config_host_name(const struct vsn_config *cfg, char *buf, size_t len)
{
	if (cfg && cfg->cluster.host) {
		snprintf(buf, len, "%s", cfg->cluster.host);
		return buf;
	}
	if (gethostname(buf, len) || !buf[0])
		snprintf(buf, len, "localhost");
	buf[len - 1] = '\0';
	return buf;
}

static bool has_host_keys(const struct vsn_config *cfg)
{
	const char *h[1];

	/* -ENOSPC: more than one. */
	return config_hosts(cfg, h, 1) != 0;
}

struct vsn_config *config_parse(const char *name, const char *buf, size_t len, unsigned flags,
				const char *host, struct vsn_error *err)
{
	struct vsn_config *cfg = load_buf(name, buf, len, err);

	if (!cfg || (flags & CONFIG_ALL_HOSTS))
		return cfg;
	if (has_host_keys(cfg)) {
		char own[VSN_HOST_NAME_MAX + 1];

		for_host(cfg, host ? host : config_host_name(cfg, own, sizeof(own)));
	}
	if (config_validate(cfg, err)) {
		config_free(cfg);
		return NULL;
	}
	/* An empty file is more often a mistake (truncated, the wrong file)
	 * than a wish to remove every mapping. */
	if (!(flags & CONFIG_ALLOW_EMPTY) && config_is_empty(cfg) && !cfg->cluster.enabled) {
		vsn_error_set(
		    err, 0,
		    "%s: no vms, uplinks, paths, backends, volumes or routes%s%s: applying "
		    "it would remove every mapping (to do that on purpose, pass "
		    "--allow-empty)",
		    name, host || has_host_keys(cfg) ? " for host " : "", host ? host : "");
		config_free(cfg);
		return NULL;
	}
	return cfg;
}

struct vsn_config *config_read(const char *file, unsigned flags, struct vsn_error *err)
{
	struct vsn_config *cfg = NULL;
	char *buf = NULL;
	size_t len = 0;

	if (!read_file(file, &buf, &len, err))
		cfg = config_parse(file, buf, len, flags, NULL, err);
	free(buf);
	return cfg;
}

static int add_host(const char *h, const char **out, unsigned *n, unsigned max)
{
	if (!h)
		return 0;
	for (unsigned i = 0; i < *n; i++)
		if (!strcmp(out[i], h))
			return 0;
	if (*n >= max)
		return -ENOSPC;
	out[(*n)++] = h;
	return 0;
}

int config_hosts(const struct vsn_config *cfg, const char **out, unsigned max)
{
	unsigned n = 0, i;
	int ret = 0;

	for (i = 0; !ret && i < cfg->n_vms; i++)
		ret = add_host(cfg->vms[i].host, out, &n, max);
	for (i = 0; !ret && i < cfg->n_uplinks; i++)
		ret = add_host(cfg->uplinks[i].host, out, &n, max);
	for (i = 0; !ret && i < cfg->n_paths; i++)
		ret = add_host(cfg->paths[i].host, out, &n, max);
	for (i = 0; !ret && i < cfg->n_volumes; i++)
		ret = add_host(cfg->volumes[i].host, out, &n, max);
	for (i = 0; !ret && i < cfg->n_routes; i++)
		ret = add_host(cfg->routes[i].host, out, &n, max);
	return ret ? ret : (int)n;
}
