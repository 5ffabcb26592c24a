// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Is the datapath still there?  The daemon holds its maps open, so after a
 * 'vsn detach' every write to them still succeeds, on maps no program reads
 * any more: without this, 'apply' said "applied" and 'route set' "pinned"
 * with nothing attached.  Each tick looks (cheaply: one stat() of the
 * vsn_ifaces pin; the interfaces' hooks once a second), and when the
 * datapath is gone the daemon says so (status, log, metrics), stops
 * deciding and refuses changes.  An attach brings it back: the same pins
 * (programs re-attached over kept maps) need nothing; new pins (a detach,
 * then an attach) are new, empty maps, which the daemon opens and fills
 * from its config, with the operator's pinned routes carried over.
 */
#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <json-c/json.h>
#include <linux/if_link.h>

#include "daemon/daemon.h"

#define HOOKS_EVERY_NS (1000ull * NS_PER_MS)

static int ifaces_pin_ino(const struct ctl *c, ino_t *ino)
{
	char path[4096];
	struct stat st;

	if (pins_path(c->o, VSN_MAP_IFACES, path, sizeof(path)))
		return -ENAMETOOLONG;
	if (stat(path, &st))
		return -errno;
	*ino = st.st_ino;
	return 0;
}

void ctl_datapath_init(struct ctl *c)
{
	ino_t ino = 0;

	if (!ifaces_pin_ino(c, &ino))
		c->pins_ino = ino;
	c->detached = false;
}

/* The first of vsn's hooks recorded in vsn_ifaces that is no longer on its
 * interface, into why; false when all are there. */
static bool hook_missing(struct ctl *c, char *why, size_t len)
{
	__u32 key, next, *prev = NULL;

	while (!bpf_map_get_next_key(c->m.ifaces, prev, &next)) {
		LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = next, .attach_point = BPF_TC_INGRESS);
		LIBBPF_OPTS(bpf_tc_opts, tc, .handle = VSN_TC_HANDLE, .priority = VSN_TC_PRIO);
		LIBBPF_OPTS(bpf_xdp_query_opts, xq);
		struct vsn_iface v;

		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(c->m.ifaces, &key, &v) || !iface_is_here(key, &v))
			continue;
		if ((v.hooks & (VSN_HOOK_XDP_NATIVE | VSN_HOOK_XDP_SKB)) &&
		    (bpf_xdp_query((int)key, 0, &xq) || xq.attach_mode == XDP_ATTACHED_NONE)) {
			snprintf(why, len, "%s: vsn's XDP program is gone", v.name);
			return true;
		}
		if ((v.hooks & VSN_HOOK_TC_INGRESS) && bpf_tc_query(&hook, &tc)) {
			snprintf(why, len, "%s: vsn's TC ingress program is gone", v.name);
			return true;
		}
	}
	return false;
}

static void set_detached(struct ctl *c, const char *why)
{
	char esc[2 * CTL_REASON_MAX];

	if (c->detached && !strcmp(c->detached_why, why))
		return;
	if (!c->detached)
		c->detached_at = time(NULL);
	c->detached = true;
	snprintf(c->detached_why, sizeof(c->detached_why), "%s", why);
	ctl_log(c, CTL_WHY_OPERATOR, "\"event\":\"datapath-detached\",\"why\":\"%s\"",
		ctl_esc(esc, sizeof(esc), why));
	vsn_warn("datapath detached (%s): changes are refused until 'vsn attach' runs again", why);
}

/* Routes an operator pinned, from the old maps into the new (empty) ones,
 * before the config is applied there: the overlay keeps what it finds
 * pinned. */
static void carry_pins(int from, int to)
{
	struct vsn_route_key k, next;
	struct vsn_route r;
	bool first = true;

	while (!bpf_map_get_next_key(from, first ? NULL : &k, &next)) {
		first = false;
		k = next;
		if (!bpf_map_lookup_elem(from, &k, &r) && (r.flags & VSN_ROUTE_PINNED) &&
		    bpf_map_update_elem(to, &k, &r, BPF_ANY))
			vsn_warn("re-attach: cannot carry a pinned route over: %s",
				 strerror(errno));
	}
}

/*
 * New pins: open them, map what the daemon maps, read the new ring, and
 * apply the config there.  All or nothing: on any failure the daemon keeps
 * what it had (and stays detached) and tries again next tick, as an attach
 * still running may not have pinned or attached everything yet.
 */
static int reopen(struct ctl *c, struct vsn_error *err)
{
	struct vsn_maps nm, old = c->m;
	struct vsn_path_live *live;
	const struct vsn_cmd_slot *cmds;
	struct ring_buffer *ring = NULL;
	int ret;

	ret = pins_open_err(c->o, &nm, err);
	if (ret)
		return ret;
	live = mmap(NULL, c->live_len, PROT_READ | PROT_WRITE, MAP_SHARED, nm.path_live, 0);
	cmds = mmap(NULL, c->cmds_len, PROT_READ, MAP_SHARED, nm.cmds, 0);
	if (live == MAP_FAILED || cmds == MAP_FAILED) {
		ret = vsn_error_set(err, -errno, "cannot map %s or %s: %s", VSN_MAP_PATH_LV,
				    VSN_MAP_CMDS, strerror(errno));
		goto fail;
	}
	ring = ctl_ring_new(c, nm.events);
	if (!ring) {
		ret = vsn_error_set(err, -errno, "cannot read the telemetry ring: %s",
				    strerror(errno));
		goto fail;
	}
	carry_pins(old.routes, nm.routes);
	c->m = nm;
	ret = ctl_apply_config(c, c->cfg, err);
	if (ret) {
		c->m = old;
		goto fail;
	}
	if (ctl_ring_swap(c, ring))
		vsn_warn("re-attach: telemetry events not read: epoll: %s", strerror(errno));
	munmap(c->live, c->live_len);
	munmap((void *)c->cmds, c->cmds_len);
	c->live = live;
	c->cmds = cmds;
	pins_close(&old);
	return 0;
fail:
	ring_buffer__free(ring);
	if (live != MAP_FAILED)
		munmap(live, c->live_len);
	if (cmds != MAP_FAILED)
		munmap((void *)cmds, c->cmds_len);
	pins_close(&nm);
	return ret;
}

bool ctl_datapath_check(struct ctl *c, uint64_t now)
{
	struct vsn_error err = {.msg = ""};
	char why[CTL_REASON_MAX];
	bool was = c->detached, renewed = false;
	ino_t ino = 0;
	int ret;

	ret = ifaces_pin_ino(c, &ino);
	if (ret) {
		snprintf(why, sizeof(why), "%s/%s %s ('vsn detach'?)", c->o->pin_dir,
			 VSN_MAP_IFACES, ret == -ENOENT ? "is gone" : strerror(-ret));
		set_detached(c, why);
		return false;
	}
	if (ino != c->pins_ino) {
		/* Pinned anew: another datapath's maps, empty. */
		if (reopen(c, &err)) {
			snprintf(why, sizeof(why), "new pins under %s not usable yet: %s",
				 c->o->pin_dir, err.msg);
			set_detached(c, why);
			return false;
		}
		c->pins_ino = ino;
		c->last_hook_check_ns = 0;
		renewed = true;
	}
	if (!c->detached && now - c->last_hook_check_ns < HOOKS_EVERY_NS)
		return true;
	c->last_hook_check_ns = now;
	if (hook_missing(c, why, sizeof(why))) {
		set_detached(c, why);
		return false;
	}
	c->detached = false;
	if (was || renewed)
		ctl_log(c, CTL_WHY_OPERATOR, "\"event\":\"datapath-attached\",\"maps\":\"%s\"",
			renewed ? "new: config re-applied" : "kept");
	return true;
}

int ctl_datapath_refuse(struct ctl *c, const char *cmd, struct vsn_error *err)
{
	static const char *const writes[] = {"route-set", "route-del", "route-conn", "backend-set",
					     "apply"};
	size_t i;

	for (i = 0; i < sizeof(writes) / sizeof(writes[0]) && strcmp(cmd, writes[i]); i++)
		;
	if (i == sizeof(writes) / sizeof(writes[0]))
		return 0;
	/* Looked at again now: the last tick may be up to tick_ms old. */
	if (ctl_datapath_check(c, ctl_now_ns()))
		return 0;
	return vsn_error_set(err, -ENXIO,
			     "the datapath is not attached (%s): nothing '%s' changes would reach "
			     "a packet; re-attach with 'vsn attach --vm ... --uplink ...' and the "
			     "daemon re-applies its config by itself",
			     c->detached_why, cmd);
}

struct json_object *ctl_datapath_json(const struct ctl *c)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "attached", json_object_new_boolean(!c->detached));
	if (c->detached) {
		json_object_object_add(o, "why", json_object_new_string(c->detached_why));
		json_object_object_add(o, "since", json_object_new_int64((int64_t)c->detached_at));
	}
	return o;
}
