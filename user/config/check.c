// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Per-item checks: each item on its own (ranges, names, addresses).  Run
 * by config_load() after conversion and again by config_validate(), since
 * a caller may have changed the model in between.
 */
#include <ctype.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <string.h>

#include "config/internal.h"

static int check_range(const struct item *it, const char *key, int64_t v, int64_t lo, int64_t hi)
{
	if (v < lo || v > hi)
		return cfg_item_fail(it, key, -1, "%lld is out of range %lld..%lld", (long long)v,
				     (long long)lo, (long long)hi);
	return 0;
}

/* -1 means "keep" / "not set". */
static int check_opt(const struct item *it, const char *key, int64_t v, int64_t lo, int64_t hi)
{
	return v == -1 ? 0 : check_range(it, key, v, lo, hi);
}

static int check_name(const struct item *it, const char *key, const char *s)
{
	if (!s || !*s)
		return cfg_item_fail(it, key, -1, "must not be empty");
	return 0;
}

/* What the kernel's dev_valid_name() accepts. */
static int check_ifname(const struct item *it, const char *key, const char *s)
{
	const char *p;

	if (check_name(it, key, s))
		return -EINVAL;
	if (strlen(s) >= IFNAMSIZ || !strcmp(s, ".") || !strcmp(s, ".."))
		goto bad;
	for (p = s; *p; p++)
		if (*p == '/' || *p == ':' || isspace((unsigned char)*p))
			goto bad;
	return 0;
bad:
	return cfg_item_fail(
	    it, key, -1,
	    "invalid interface name '%s' (at most %d characters, no '/', ':' or spaces)", s,
	    IFNAMSIZ - 1);
}

/* sub: the index within a list key, or -1. */
static int check_addr(const struct item *it, const char *key, long sub, const char *s)
{
	struct vsn_addr addr;
	struct in6_addr a;
	bool v6;

	if (check_name(it, key, s))
		return -EINVAL;
	if (parse_addr(s, &addr, &v6))
		return cfg_item_fail(it, key, sub, "invalid IP address '%s'", s);
	memcpy(&a, &addr, sizeof(a));
	if ((v6 && (IN6_IS_ADDR_UNSPECIFIED(&a) || IN6_IS_ADDR_MULTICAST(&a))) ||
	    (!v6 && (!memcmp(&a.s6_addr[12], "\0\0\0\0", 4) || (a.s6_addr[12] & 0xf0) == 0xe0 ||
		     !memcmp(&a.s6_addr[12], "\xff\xff\xff\xff", 4))))
		return cfg_item_fail(it, key, sub, "'%s' is not a unicast address", s);
	return 0;
}

static int check_mac(const struct item *it, const char *key, const char *s)
{
	uint8_t mac[6];

	if (parse_mac(s, mac))
		return cfg_item_fail(it, key, -1, "invalid MAC address '%s'", s);
	if ((mac[0] & 1) || !memcmp(mac, "\0\0\0\0\0\0", 6))
		return cfg_item_fail(it, key, -1, "'%s' is not a unicast MAC address", s);
	return 0;
}

static int check_ids(const struct item *it, const char *key, const uint32_t *ids, unsigned n,
		     uint32_t max)
{
	unsigned i;

	if (!n)
		return cfg_item_fail(it, key, -1, "at least one id is required");
	for (i = 0; i < n; i++)
		if (ids[i] < 1 || ids[i] > max)
			return cfg_item_fail(it, key, i, "%u is out of range 1..%u", ids[i], max);
	return 0;
}

/*
 * A VM's own source address or prefix: nothing a host may not send from in
 * it (the datapath drops martians anyway; this says so at once).
 */
static int check_vm_addr(const struct item *it, unsigned i, const char *s)
{
	struct vsn_addr a, m;
	unsigned len;
	bool v6;

	if (parse_prefix(s, &a, &m, &v6, &len))
		return cfg_item_fail(
		    it, "addresses", i,
		    "invalid address or prefix '%s' (ADDR or ADDR/LEN, no host bits "
		    "set)",
		    s);
	if (v6) {
		uint32_t top = ntohl(a.a[0]) >> 16;

		if (len < 16 || !top || (top >> 8) == 0xff)
			return cfg_item_fail(it, "addresses", i,
					     "'%s' is or covers a martian address (::/16 holds the "
					     "unspecified, loopback and IPv4-mapped ones, ff00::/8 "
					     "multicast; a prefix is /16 or longer)",
					     s);
	} else {
		uint32_t lo = ntohl(a.a[3]) >> 24, hi = (ntohl(a.a[3]) | ~ntohl(m.a[3])) >> 24;

		if (!lo || (lo <= 127 && hi >= 127) || hi >= 224)
			return cfg_item_fail(it, "addresses", i,
					     "'%s' is or covers a martian address (0/8, loopback "
					     "127/8, multicast, class E, broadcast)",
					     s);
	}
	return 0;
}

static int check_vm(const struct item *it, const struct vsn_cfg_vm *vm)
{
	if (check_name(it, "name", vm->name) || check_range(it, "id", vm->id, 1, VSN_MAX_VMS - 1) ||
	    check_ifname(it, "interface", vm->interface) ||
	    (vm->mac && check_mac(it, "mac", vm->mac)) ||
	    check_range(it, "max_connections", vm->max_connections, 0, VSN_MAX_CONNS / 2) ||
	    check_range(it, "connection_rate", vm->conn_rate, 0, VM_CONN_RATE_MAX) ||
	    check_range(it, "connection_burst", vm->conn_burst, 1, VSN_MAX_CONNS / 2))
		return -EINVAL;
	if (!strcmp(vm->name, HOST_VM))
		return cfg_item_fail(it, "name", -1,
				     "\"" HOST_VM "\" is reserved for host-initiator volumes");
	if (!vm->n_addresses)
		return cfg_item_fail(it, "addresses", -1,
				     "at least one is required: every source address or prefix "
				     "the VM sends from (vsn drops whatever else it sends)");
	if (vm->n_addresses > VSN_VM_MAX_ADDRS)
		return cfg_item_fail(it, "addresses", -1, "%u given, at most %u allowed",
				     vm->n_addresses, VSN_VM_MAX_ADDRS);
	for (unsigned i = 0; i < vm->n_addresses; i++)
		if (check_vm_addr(it, i, vm->addresses[i]))
			return -EINVAL;
	return 0;
}

static int check_uplink(const struct item *it, const struct vsn_cfg_uplink *up)
{
	return check_ifname(it, "interface", up->interface);
}

static int check_backend(const struct item *it, const struct vsn_cfg_backend *be)
{
	if (check_range(it, "id", be->id, 1, VSN_MAX_BACKENDS - 1) ||
	    (be->name && check_name(it, "name", be->name)) ||
	    check_addr(it, "address", -1, be->address) ||
	    check_range(it, "port", be->port, PORT_MIN, PORT_MAX) ||
	    check_range(it, "weight", be->weight, WEIGHT_MIN, WEIGHT_MAX) ||
	    check_range(it, "tier", be->tier, 0, TIER_MAX) ||
	    check_ids(it, "paths", be->paths, be->n_paths, VSN_MAX_PATHS - 1))
		return -EINVAL;
	if (be->state != VSN_BE_UP && be->state != VSN_BE_DOWN && be->state != VSN_BE_DRAINING)
		return cfg_item_fail(it, "state", -1, "invalid state %u", be->state);
	return 0;
}

static int check_path(const struct item *it, const struct vsn_cfg_path *p)
{
	if (check_range(it, "id", p->id, 1, VSN_MAX_PATHS - 1) ||
	    check_ifname(it, "uplink", p->uplink))
		return -EINVAL;
	if (!!p->next_hop_mac + !!p->next_hop_addr + p->fib != 1)
		return cfg_item_fail(
		    it, "next_hop", -1,
		    "required: one of a MAC address, a gateway address or \"fib\"");
	if ((p->next_hop_mac && check_mac(it, "next_hop", p->next_hop_mac)) ||
	    (p->next_hop_addr && check_addr(it, "next_hop", -1, p->next_hop_addr)) ||
	    (p->source_mac && check_mac(it, "source_mac", p->source_mac)) ||
	    check_opt(it, "vlan", p->vlan, VLAN_MIN, VLAN_MAX) ||
	    check_opt(it, "dscp", p->dscp, 0, DSCP_MAX) ||
	    check_opt(it, "ecn", p->ecn, 0, ECN_MAX) ||
	    check_opt(it, "ttl", p->ttl, TTL_MIN, TTL_MAX) ||
	    check_opt(it, "flow_label", p->flow_label, 0, FLOW_LABEL_MAX) ||
	    (p->source_address && check_addr(it, "source_address", -1, p->source_address)))
		return -EINVAL;
	return 0;
}

static int check_volume(const struct item *it, const struct vsn_cfg_volume *vol)
{
	if (check_range(it, "id", vol->id, 1, VSN_MAX_VOLUMES - 1) ||
	    check_name(it, "vm", vol->vm) || check_addr(it, "address", -1, vol->address) ||
	    check_range(it, "port", vol->port, PORT_MIN, PORT_MAX) ||
	    check_ids(it, "backends", vol->backends, vol->n_backends, VSN_MAX_BACKENDS - 1))
		return -EINVAL;
	if (vol->proto != VSN_PROTO_NVME_TCP && vol->proto != VSN_PROTO_ROCEV2)
		return cfg_item_fail(it, "protocol", -1, "invalid protocol %u", vol->proto);
	return 0;
}

static int check_route(const struct item *it, const struct vsn_cfg_route *rt)
{
	if (check_name(it, "vm", rt->vm) ||
	    check_range(it, "volume", rt->volume, 1, VSN_MAX_VOLUMES - 1) ||
	    check_range(it, "backend", rt->backend, 1, VSN_MAX_BACKENDS - 1) ||
	    check_range(it, "path", rt->path, 1, VSN_MAX_PATHS - 1))
		return -EINVAL;
	return 0;
}

int cfg_check_count(const struct ectx *c, const char *sec, unsigned n, unsigned max)
{
	if (n > max)
		return cfg_fail(c, NULL, -1, 0, sec, -1, "%u entries, at most %u are supported", n,
				max);
	return 0;
}

/* Every item, so that each one's first problem is reported. */
#define CHECK_SECTION(c, cfg, field, fn)                                                           \
	({                                                                                         \
		unsigned _i;                                                                       \
		int _ret = 0;                                                                      \
		for (_i = 0; _i < (cfg)->n_##field; _i++) {                                        \
			struct item _it = cfg_item_at(c, #field, _i, (cfg)->field[_i].line);       \
			if (check_##fn(&_it, &(cfg)->field[_i]))                                   \
				_ret = -EINVAL;                                                    \
		}                                                                                  \
		_ret;                                                                              \
	})

int cfg_check_items(const struct ectx *c, const struct vsn_config *cfg)
{
	int ret = 0;

	if (cfg_check_count(c, "vms", cfg->n_vms, VSN_MAX_VMS - 1) ||
	    cfg_check_count(c, "uplinks", cfg->n_uplinks, MAX_UPLINKS) ||
	    cfg_check_count(c, "paths", cfg->n_paths, VSN_MAX_PATHS - 1) ||
	    cfg_check_count(c, "backends", cfg->n_backends, VSN_MAX_BACKENDS - 1) ||
	    cfg_check_count(c, "volumes", cfg->n_volumes, VSN_MAX_VOLUMES - 1) ||
	    cfg_check_count(c, "routes", cfg->n_routes, VSN_MAX_ROUTES))
		return -EINVAL;
	ret |= CHECK_SECTION(c, cfg, vms, vm);
	ret |= CHECK_SECTION(c, cfg, uplinks, uplink);
	ret |= CHECK_SECTION(c, cfg, paths, path);
	ret |= CHECK_SECTION(c, cfg, backends, backend);
	ret |= CHECK_SECTION(c, cfg, volumes, volume);
	ret |= CHECK_SECTION(c, cfg, routes, route);
	return ret ? -EINVAL : 0;
}
