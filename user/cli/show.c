// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* vsn show: the routing maps in words, or JSON with -j. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "config/config.h"
#include "cli/cli.h"

static const char *state_name(__u8 s)
{
	return s == VSN_BE_UP ? "up" : s == VSN_BE_DRAINING ? "draining" : "down";
}

#define addr_str addr_to_str

static void mac_str(const __u8 *m, char *buf)
{
	sprintf(buf, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
}

static const char *ifname(__u32 ifindex, char *buf)
{
	if (!if_indextoname(ifindex, buf))
		snprintf(buf, IF_NAMESIZE, "if%u", ifindex);
	return buf;
}

/* Iterate a hash map: calls fn for each (key, value); fn returns whether it
 * printed the entry, so JSON separators go only between printed ones. */
typedef bool (*entry_fn)(const struct vsn_opts *o, const struct vsn_maps *m, const void *k,
			 const void *v, bool first);

static int for_each(const struct vsn_opts *o, const struct vsn_maps *m, int fd, size_t ks,
		    size_t vs, entry_fn fn)
{
	char key[128] = {0}, next[128], val[512];
	bool first = true;
	int n = 0;

	if (ks > sizeof(key) || vs > sizeof(val))
		return -EINVAL;
	while (!bpf_map_get_next_key(fd, first ? NULL : key, next)) {
		memcpy(key, next, ks);
		first = false;
		if (bpf_map_lookup_elem(fd, key, val))
			continue;
		if (fn(o, m, key, val, n == 0))
			n++;
	}
	return n;
}

static bool show_volume(const struct vsn_opts *o, const struct vsn_maps *m, const void *kp,
			const void *vp, bool first)
{
	const struct vsn_volume_key *k = kp;
	const struct vsn_volume *v = vp;
	char a[INET6_ADDRSTRLEN], ap[INET6_ADDRSTRLEN + 8], vm[12];
	const char *proto = k->proto == VSN_PROTO_ROCEV2 ? "roce" : "nvme-tcp";

	addr_str(&k->vip, a, sizeof(a));
	if (o->json) {
		printf(
		    "%s{\"volume\":%u,\"vm\":%u,\"address\":\"%s\",\"port\":%u,\"protocol\":\"%s\","
		    "\"chash_gen\":%u,\"backends\":[",
		    first ? "" : ",", v->volume_id, k->vm_id, a, k->port, proto, v->chash_gen);
		for (unsigned i = 0; i < v->n_backends && i < VSN_MAX_VOL_BACKENDS; i++)
			printf("%s%u", i ? "," : "", v->backends[i]);
		printf("]}");
		return true;
	}
	if (first)
		printf("%-7s %-6s %-28s %-9s %s\n", "VOLUME", "VM", "ADDRESS", "PROTOCOL",
		       "BACKENDS");
	snprintf(vm, sizeof(vm), k->vm_id ? "%u" : "host", k->vm_id);
	snprintf(ap, sizeof(ap), "[%s]:%u", a, k->port);
	printf("%-7u %-6s %-28s %-9s", v->volume_id, vm, ap, proto);
	for (unsigned i = 0; i < v->n_backends && i < VSN_MAX_VOL_BACKENDS; i++)
		printf("%s%u", i ? "," : " ", v->backends[i]);
	printf("\n");
	return true;
}

static bool show_backend(const struct vsn_opts *o, const struct vsn_maps *m, const void *kp,
			 const void *vp, bool first)
{
	const struct vsn_backend *b = vp;
	char a[INET6_ADDRSTRLEN], paths[VSN_MAX_BE_PATHS * 12 + 1] = "";
	size_t n = 0;

	addr_str(&b->addr, a, sizeof(a));
	for (unsigned i = 0; i < b->n_paths && i < VSN_MAX_BE_PATHS; i++)
		n += snprintf(paths + n, sizeof(paths) - n, "%s%u", i ? "," : "", b->paths[i]);
	if (o->json) {
		printf("%s{\"id\":%u,\"address\":\"%s\",\"port\":%u,\"state\":\"%s\",\"weight\":%u,"
		       "\"tier\":%u,\"paths\":[%s]}",
		       first ? "" : ",", *(const __u32 *)kp, a, b->port, state_name(b->state),
		       b->weight, b->tier, paths);
		return true;
	}
	if (first)
		printf("%-7s %-40s %-6s %-9s %-7s %-5s %s\n", "ID", "ADDRESS", "PORT", "STATE",
		       "WEIGHT", "TIER", "PATHS");
	printf("%-7u %-40s %-6u %-9s %-7u %-5u %s\n", *(const __u32 *)kp, a, b->port,
	       state_name(b->state), b->weight, b->tier, paths);
	return true;
}

static bool show_path(const struct vsn_opts *o, const struct vsn_maps *m, const void *kp,
		      const void *vp, bool first)
{
	const struct vsn_path *p = vp;
	char sm[18], dm[INET6_ADDRSTRLEN], dev[IF_NAMESIZE], sa[INET6_ADDRSTRLEN] = "";
	char extra[160] = "";
	size_t n = 0;

	mac_str(p->smac, sm);
	if (p->flags & VSN_PATH_FIB)
		snprintf(dm, sizeof(dm), "fib");
	else if (p->flags & VSN_PATH_GW)
		addr_str(&p->gw, dm, sizeof(dm));
	else
		mac_str(p->dmac, dm);
	if (p->flags & VSN_PATH_SADDR)
		addr_str(&p->saddr, sa, sizeof(sa));
	ifname(p->ifindex, dev);
	if (o->json) {
		printf("%s{\"id\":%u,\"uplink\":\"%s\",\"ifindex\":%u,\"source_mac\":\"%s\","
		       "\"next_hop\":\"%s\",\"vlan\":%d,\"dscp\":%d,\"ecn\":%d,\"ttl\":%d,"
		       "\"flow_label\":%lld,\"source_address\":%s%s%s}",
		       first ? "" : ",", *(const __u32 *)kp, dev, p->ifindex, sm, dm,
		       p->flags & VSN_PATH_VLAN ? p->vlan_id : -1,
		       p->flags & VSN_PATH_DSCP ? p->dscp : -1,
		       p->flags & VSN_PATH_ECN ? p->ecn : -1, p->flags & VSN_PATH_TTL ? p->ttl : -1,
		       p->flags & VSN_PATH_FLOWLBL ? (long long)p->flow_label : -1LL,
		       sa[0] ? "\"" : "", sa[0] ? sa : "null", sa[0] ? "\"" : "");
		return true;
	}
	if (p->flags & VSN_PATH_VLAN)
		n += snprintf(extra + n, sizeof(extra) - n, " vlan=%u", p->vlan_id);
	if (p->flags & VSN_PATH_DSCP)
		n += snprintf(extra + n, sizeof(extra) - n, " dscp=%u", p->dscp);
	if (p->flags & VSN_PATH_ECN)
		n += snprintf(extra + n, sizeof(extra) - n, " ecn=%u", p->ecn);
	if (p->flags & VSN_PATH_TTL)
		n += snprintf(extra + n, sizeof(extra) - n, " ttl=%u", p->ttl);
	if (p->flags & VSN_PATH_FLOWLBL)
		n += snprintf(extra + n, sizeof(extra) - n, " flow_label=0x%x", p->flow_label);
	if (sa[0])
		snprintf(extra + n, sizeof(extra) - n, " snat=%s", sa);
	if (first)
		printf("%-5s %-16s %-17s %-17s %s\n", "ID", "UPLINK", "SOURCE MAC", "NEXT HOP",
		       "OPTIONS");
	printf("%-5u %-16s %-17s %-17s%s\n", *(const __u32 *)kp, dev, sm, dm, extra);
	return true;
}

static bool show_route(const struct vsn_opts *o, const struct vsn_maps *m, const void *kp,
		       const void *vp, bool first)
{
	const struct vsn_route_key *k = kp;
	const struct vsn_route *r = vp;

	if (o->json) {
		printf("%s{\"vm\":%u,\"volume\":%u,\"backend\":%u,\"path\":%u,\"pinned\":%s}",
		       first ? "" : ",", k->vm_id, k->volume_id, k->backend_id, r->path_id,
		       r->flags & VSN_ROUTE_PINNED ? "true" : "false");
		return true;
	}
	if (first)
		printf("%-6s %-7s %-8s %s\n", "VM", "VOLUME", "BACKEND", "PATH");
	printf("%-6u %-7u %-8u %u%s\n", k->vm_id, k->volume_id, k->backend_id, r->path_id,
	       r->flags & VSN_ROUTE_PINNED ? " (pinned)" : "");
	return true;
}

static __u32 current_path(const struct vsn_maps *m, const struct vsn_conn *c)
{
	struct vsn_route_key rk = {c->vm_id, c->volume_id, c->backend_id};
	struct vsn_route r;

	if (c->path_override)
		return c->path_override;
	return bpf_map_lookup_elem(m->routes, &rk, &r) ? 0 : r.path_id;
}

static bool show_conn(const struct vsn_opts *o, const struct vsn_maps *m, const void *kp,
		      const void *vp, bool first)
{
	const struct vsn_conn_key *k = kp;
	const struct vsn_conn *c = vp;
	char s[INET6_ADDRSTRLEN], d[INET6_ADDRSTRLEN], b[INET6_ADDRSTRLEN];
	struct vsn_conn_key rk;
	struct vsn_conn rc = {};
	struct timespec now;
	double idle;

	if (k->dir != VSN_DIR_TO_STORAGE)
		return false;
	addr_str(&k->saddr, s, sizeof(s));
	addr_str(&k->daddr, d, sizeof(d));
	addr_str(&c->backend_addr, b, sizeof(b));
	if (!(c->flags & VSN_CONN_HOST)) {
		vsn_conn_rev_key(&rk, c, k->proto);
		bpf_map_lookup_elem(m->conns, &rk, &rc);
	}
	clock_gettime(CLOCK_MONOTONIC, &now);
	idle = ((double)now.tv_sec * 1e9 + now.tv_nsec - (double)c->last_seen_ns) / 1e9;
	if (o->json) {
		printf(
		    "%s{\"vm\":%u,\"protocol\":\"%s\",\"src\":\"%s\",\"sport\":%u,\"dst\":\"%s\","
		    "\"dport\":%u,\"volume\":%u,\"backend\":%u,\"backend_address\":\"%s\","
		    "\"backend_port\":%u,\"path\":%u,\"path_override\":%u,\"tx_packets\":%llu,"
		    "\"tx_bytes\":%llu,\"rx_packets\":%llu,\"rx_bytes\":%llu,\"idle_s\":%.1f}",
		    first ? "" : ",", k->vm_id, k->proto == IPPROTO_TCP ? "tcp" : "udp", s,
		    ntohs(k->sport), d, ntohs(k->dport), c->volume_id, c->backend_id, b,
		    ntohs(c->backend_port), current_path(m, c), c->path_override,
		    (unsigned long long)c->packets, (unsigned long long)c->bytes,
		    (unsigned long long)rc.packets, (unsigned long long)rc.bytes, idle);
		return true;
	}
	printf("vm %-4u %s [%s]:%u -> [%s]:%u  backend %u [%s]:%u  path %u%s  tx %llu pkts %llu B  "
	       "rx %llu pkts %llu B  idle %.1fs\n",
	       k->vm_id, k->proto == IPPROTO_TCP ? "tcp" : "udp", s, ntohs(k->sport), d,
	       ntohs(k->dport), c->backend_id, b, ntohs(c->backend_port), current_path(m, c),
	       c->path_override ? " (pinned)" : "", (unsigned long long)c->packets,
	       (unsigned long long)c->bytes, (unsigned long long)rc.packets,
	       (unsigned long long)rc.bytes, idle);
	return true;
}

/* show connections' filters: 0 = any; limit 0 = all. */
struct conn_filter {
	__u32 vm, backend;
	bool vm_set;
	unsigned long limit;
};

#define CONN_LIMIT_DEFAULT 10000

static int conn_filter_parse(int argc, char **argv, struct conn_filter *f)
{
	static const struct option opts[] = {
	    {"vm", required_argument, NULL, 'v'},
	    {"backend", required_argument, NULL, 'b'},
	    {"limit", required_argument, NULL, 'n'},
	    {NULL, 0, NULL, 0},
	};
	char *end;
	int c;

	*f = (struct conn_filter){.limit = CONN_LIMIT_DEFAULT};
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == '?') {
			vsn_err("show connections: unknown option or missing value '%s'",
				argv[optind - 1]);
			return -EINVAL;
		}
		errno = 0;
		long v = strtol(optarg, &end, 0);

		if (errno || *end || !*optarg || v < 0 || (c != 'n' && v > UINT32_MAX)) {
			vsn_err("show connections: --%s wants a non-negative number, not '%s'",
				c == 'v'   ? "vm"
				: c == 'b' ? "backend"
					   : "limit",
				optarg);
			return -EINVAL;
		}
		if (c == 'v') {
			f->vm = (__u32)v;
			f->vm_set = true; /* vm 0: the host's own flows */
		} else if (c == 'b') {
			f->backend = (__u32)v;
		} else {
			f->limit = (unsigned long)v;
		}
	}
	if (optind < argc) {
		vsn_err("show connections: unexpected argument '%s'", argv[optind]);
		return -EINVAL;
	}
	return 0;
}

/* The connections the filter lets through, at most its limit; says on
 * stderr when it stopped early, so that a million entries stay usable. */
static void show_connections(const struct vsn_opts *o, const struct vsn_maps *m,
			     const struct conn_filter *f)
{
	struct vsn_conn_key key, next;
	struct vsn_conn val;
	bool first = true, more = false;
	unsigned long n = 0;

	while (!bpf_map_get_next_key(m->conns, first ? NULL : &key, &next)) {
		key = next;
		first = false;
		if (key.dir != VSN_DIR_TO_STORAGE || (f->vm_set && key.vm_id != f->vm) ||
		    bpf_map_lookup_elem(m->conns, &key, &val) ||
		    (f->backend && val.backend_id != f->backend))
			continue;
		if (f->limit && n == f->limit) {
			more = true;
			break;
		}
		show_conn(o, m, &key, &val, n == 0);
		n++;
	}
	if (more)
		fprintf(stderr,
			"vsn: showing the first %lu connections; narrow with --vm or --backend, "
			"or raise --limit (0: all)\n",
			n);
}

/* VM i's refusals by reason, when it has any. */
static bool vm_drops(int fd, __u32 i, __u64 d[VSN_VM_DROPS])
{
	__u64 any = 0;

	if (vm_drops_sum(fd, i, d))
		return false;
	for (unsigned j = 0; j < VSN_VM_DROPS; j++)
		any |= d[j];
	return any;
}

static void print_vm_drops(const struct vsn_opts *o, int fd)
{
	__u64 d[VSN_VM_DROPS];
	bool any = false;

	for (__u32 i = 0; i < VSN_MAX_VMS; i++) {
		if (!vm_drops(fd, i, d))
			continue;
		if (!any) {
			printf("refused per VM (packets):\n  %-6s", "VM");
			for (unsigned j = 0; j < VSN_VM_DROPS; j++)
				printf(" %10s", vsn_reason_name(VSN_VM_DROP_FIRST + j));
			printf("\n");
		}
		any = true;
		printf("  %-6u", i);
		for (unsigned j = 0; j < VSN_VM_DROPS; j++)
			printf(" %10llu", (unsigned long long)d[j]);
		printf("\n");
	}
}

static void json_vm_drops(int fd)
{
	__u64 d[VSN_VM_DROPS];
	bool first = true;

	printf(",\"vm_refused\":{");
	for (__u32 i = 0; i < VSN_MAX_VMS; i++) {
		if (!vm_drops(fd, i, d))
			continue;
		printf("%s\"%u\":{", first ? "" : ",", i);
		for (unsigned j = 0; j < VSN_VM_DROPS; j++)
			printf("%s\"%s\":%llu", j ? "," : "",
			       vsn_reason_name(VSN_VM_DROP_FIRST + j), (unsigned long long)d[j]);
		printf("}");
		first = false;
	}
	printf("}");
}

static void print_counters(const struct vsn_opts *o, int fd, const char *title, __u32 max)
{
	struct vsn_counter c;
	bool any = false;

	for (__u32 i = 0; i < max; i++) {
		if (percpu_counter(fd, &i, &c) || !c.packets)
			continue;
		if (!any)
			printf("%s:\n", title);
		any = true;
		if (max == VSN_R_MAX)
			printf("  %-14s %12llu pkts %14llu bytes\n", vsn_reason_name(i),
			       (unsigned long long)c.packets, (unsigned long long)c.bytes);
		else
			printf("  %-14u %12llu pkts %14llu bytes\n", i,
			       (unsigned long long)c.packets, (unsigned long long)c.bytes);
	}
}

static void json_counters(int fd, const char *title, __u32 max, bool named, bool first_tab)
{
	struct vsn_counter c;
	bool first = true;

	printf("%s\"%s\":{", first_tab ? "" : ",", title);
	for (__u32 i = 0; i < max; i++) {
		if (percpu_counter(fd, &i, &c) || (!named && !c.packets))
			continue;
		if (named)
			printf("%s\"%s\":", first ? "" : ",", vsn_reason_name(i));
		else
			printf("%s\"%u\":", first ? "" : ",", i);
		printf("{\"packets\":%llu,\"bytes\":%llu}", (unsigned long long)c.packets,
		       (unsigned long long)c.bytes);
		first = false;
	}
	printf("}");
}

static int show_counters(const struct vsn_opts *o, const struct vsn_maps *m)
{
	if (o->json) {
		printf("{");
		json_counters(m->reasons, "reasons", VSN_R_MAX, true, true);
		json_counters(m->path_stats, "paths", VSN_MAX_PATHS, false, false);
		json_counters(m->be_stats, "backends", VSN_MAX_BACKENDS, false, false);
		json_counters(m->vm_stats, "vms", VSN_MAX_VMS, false, false);
		json_vm_drops(m->vm_drops);
		printf("}\n");
		return 0;
	}
	print_counters(o, m->reasons, "packets by outcome", VSN_R_MAX);
	print_counters(o, m->path_stats, "to storage, per path", VSN_MAX_PATHS);
	print_counters(o, m->be_stats, "per backend (both directions)", VSN_MAX_BACKENDS);
	print_counters(o, m->vm_stats, "per VM (both directions)", VSN_MAX_VMS);
	print_vm_drops(o, m->vm_drops);
	return 0;
}

static void show_usage(FILE *f)
{
	fprintf(f,
		"usage: vsn [-j] show [volumes|backends|paths|routes|connections|counters|"
		"telemetry]\n"
		"       vsn [-j] show profile [--seconds S]   (see vsn profile --help)\n"
		"       vsn [-j] show health    (the daemon's view of paths and backends)\n"
		"       vsn [-j] show connections [--vm ID] [--backend ID] [--limit N]\n"
		"\nWithout a table name, shows all of them.  Connections: only VM ID's (0: the\n"
		"host's own), only those on backend ID, at most N (default %d, 0: all; a\n"
		"note on stderr says when there were more).\n",
		CONN_LIMIT_DEFAULT);
}

int cmd_show(const struct vsn_opts *o, int argc, char **argv)
{
	static const char *const all[] = {"volumes",	 "backends", "paths",	 "routes",
					  "connections", "counters", "telemetry"};
	struct vsn_maps m = VSN_MAPS_NONE;
	const char *what = argc > 1 ? argv[1] : NULL;
	struct conn_filter cf = {.limit = CONN_LIMIT_DEFAULT};
	int ret = 0;
	size_t i;

	if (cli_help_asked(argc, argv)) {
		/* 'show profile --help' is the profile's own. */
		if (what && !strcmp(what, "profile"))
			return cmd_profile(o, argc - 1, argv + 1);
		show_usage(stdout);
		return 0;
	}
	/* Health is the daemon's judgement, not a map. */
	if (what && !strcmp(what, "health"))
		return show_health(o);
	/* The profile is not a map: it listens to the datapath for a while. */
	if (what && !strcmp(what, "profile"))
		return cmd_profile(o, argc - 1, argv + 1);
	if (what && (!strcmp(what, "connections") || !strcmp(what, "conns"))) {
		if (conn_filter_parse(argc - 1, argv + 1, &cf)) {
			show_usage(stderr);
			return 2;
		}
	} else if (argc > 2) {
		show_usage(stderr);
		return 2;
	}
	if (what) {
		for (i = 0; i < sizeof(all) / sizeof(all[0]); i++)
			if (!strcmp(what, all[i]) ||
			    (!strcmp(all[i], "connections") && !strcmp(what, "conns")))
				break;
		if (i == sizeof(all) / sizeof(all[0])) {
			vsn_err("show: unknown table '%s'", what);
			show_usage(stderr);
			return 2;
		}
		what = all[i];
	}
	if (pins_open(o, &m))
		return 1;
	if (!what && o->json)
		printf("{");
	for (i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		const char *t = all[i];

		if (what && strcmp(what, t))
			continue;
		if (!what && o->json)
			printf("%s\"%s\":", i ? "," : "", t);
		else if (!what)
			printf("%s== %s ==\n", i ? "\n" : "", t);
		if (!strcmp(t, "counters")) {
			show_counters(o, &m);
			continue;
		}
		if (!strcmp(t, "telemetry")) {
			show_telemetry(o, &m);
			continue;
		}
		if (o->json)
			printf("[");
		if (!strcmp(t, "volumes"))
			for_each(o, &m, m.volumes, sizeof(struct vsn_volume_key),
				 sizeof(struct vsn_volume), show_volume);
		else if (!strcmp(t, "backends"))
			for_each(o, &m, m.backends, 4, sizeof(struct vsn_backend), show_backend);
		else if (!strcmp(t, "paths"))
			for_each(o, &m, m.paths, 4, sizeof(struct vsn_path), show_path);
		else if (!strcmp(t, "routes"))
			for_each(o, &m, m.routes, sizeof(struct vsn_route_key),
				 sizeof(struct vsn_route), show_route);
		else
			show_connections(o, &m, &cf);
		if (o->json)
			printf("]%s", what ? "\n" : "");
	}
	if (!what && o->json)
		printf("}\n");
	pins_close(&m);
	return ret;
}
