// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * What the controller decides: health states from observations (through the
 * damper), failover of a failed path's connections, draining a failed
 * backend, and congestion moves.  Every change is logged with its reason
 * (one JSON object per line) and counted.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <netinet/in.h>
#include <bpf/bpf.h>

#include "daemon.h"
#include "ops.h"
#include "plan.h"
#include "rst_inject.h"

#define NS_PER_MS 1000000ull
/* Ticks an uplink is left alone after a congestion move: its queue drains
 * before it is judged again. */
#define SETTLE_TICKS 5

static const char *const why_names[CTL_WHY_MAX] = {
    [CTL_WHY_CARRIER] = "carrier",   [CTL_WHY_SILENT] = "silent",
    [CTL_WHY_NEIGH] = "neighbour",   [CTL_WHY_CONGESTION] = "congestion",
    [CTL_WHY_BACKEND] = "backend",   [CTL_WHY_RECOVERED] = "recovered",
    [CTL_WHY_OPERATOR] = "operator", [CTL_WHY_RELOAD] = "reload",
    [CTL_WHY_CLASS] = "workload",
};

const char *ctl_why_name(enum ctl_why why)
{
	return why < CTL_WHY_MAX ? why_names[why] : "unknown";
}

const char *ctl_esc(char *out, size_t len, const char *s)
{
	size_t o = 0;

	for (; *s && o + 7 < len; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\') {
			out[o++] = '\\';
			out[o++] = (char)ch;
		} else if (ch < 0x20) {
			o += (size_t)snprintf(out + o, len - o, "\\u%04x", ch);
		} else {
			out[o++] = (char)ch;
		}
	}
	out[o] = '\0';
	return out;
}

void ctl_log(struct ctl *c, enum ctl_why why, const char *fmt, ...)
{
	struct ctl_log_entry *e = &c->log[c->n_log % CTL_LOG_KEEP];
	struct timespec ts;
	char body[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(body, sizeof(body), fmt, ap);
	va_end(ap);
	clock_gettime(CLOCK_REALTIME, &ts);
	e->ts_ns = ctl_now_ns();
	snprintf(e->line, sizeof(e->line), "{\"ts\":%lld.%03ld,\"reason\":\"%s\",%s}",
		 (long long)ts.tv_sec, ts.tv_nsec / 1000000, ctl_why_name(why), body);
	c->n_log++;
	if (why < CTL_WHY_MAX)
		c->decisions[why]++;
	if (c->logf) {
		fprintf(c->logf, "%s\n", e->line);
		fflush(c->logf);
	}
}

/* The connection's last move, by id (a hashed slot: a collision only
 * forgets a dwell time). */
struct ctl_move_slot *ctl_move_slot(struct ctl *c, uint32_t conn_id)
{
	struct ctl_move_slot *s = &c->moves[(conn_id * 2654435761u) % CTL_MOVE_SLOTS];

	if (s->conn_id != conn_id)
		*s = (struct ctl_move_slot){.conn_id = conn_id};
	return s;
}

enum pol_class ctl_volume_class(const struct ctl *c, uint32_t volume_id)
{
	return c->vols ? c->vols[volume_id % VSN_MAX_VOLUMES].cls : POL_CLASS_MIXED;
}

/* Where a connection (or route) of backend cb now on path cur should go. */
static uint32_t choose(struct ctl *c, const struct vsn_cfg_backend *cb, uint32_t cur,
		       enum pol_class cls, uint64_t last_move, uint64_t now, bool *forced)
{
	struct pol_path in[VSN_MAX_BE_PATHS];
	unsigned n = 0;
	int icur = -1, to;

	*forced = false;
	for (unsigned i = 0; i < cb->n_paths && n < VSN_MAX_BE_PATHS; i++) {
		struct ctl_path *p = ctl_path(c, cb->paths[i]);

		if (!p)
			continue;
		if (p->id == cur)
			icur = (int)n;
		ctl_fill_pol(c, p, &in[n++]);
	}
	to = pol_choose(&c->cfg->ctl, in, n, icur, cls, last_move, now, forced);
	return to < 0 ? 0 : in[to].id;
}

static const struct vsn_cfg_backend *cfg_backend(const struct ctl *c, uint32_t id)
{
	for (unsigned i = 0; i < c->cfg->n_backends; i++)
		if (c->cfg->backends[i].id == id)
			return &c->cfg->backends[i];
	return NULL;
}

/* A connection that carried a packet this recently is counted as live (the
 * LRU table keeps closed ones until it needs the room). */
#define LIVE_NS (10000 * NS_PER_MS)

static bool conn_live(const struct vsn_conn *v, uint64_t now, uint64_t within)
{
	return v->last_seen_ns + within >= now;
}

/* The path a connection entry uses now: its override, else its route. */
static uint32_t conn_path(const struct ctl *c, const struct vsn_conn *v)
{
	struct vsn_route_key rk = {v->vm_id, v->volume_id, v->backend_id};
	struct vsn_route r;

	if (v->path_override)
		return v->path_override;
	return bpf_map_lookup_elem(c->m.routes, &rk, &r) ? 0 : r.path_id;
}

/*
 * Move everything off a failed path: routes first (new connections and
 * those following the route), then connections pinned to it by an
 * earlier move.  Failures bypass dwell time and the move budget.
 */
static int route_key_cmp(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(struct vsn_route_key));
}

/*
 * Move every route on the failed path to its best other path; *moved gets
 * the keys moved (sorted), so that the connections following them can be
 * counted whatever packet they sent since.
 */
static unsigned reroute_routes(struct ctl *c, struct ctl_path *p, uint64_t now, enum ctl_why why,
			       struct vsn_route_key **moved, unsigned *stuck)
{
	struct vsn_route_key rk, rnext, *keys = NULL;
	struct vsn_err err = {.msg = ""};
	unsigned n = 0, cap = 0;
	bool first = true, forced;
	struct vsn_route r;

	while (!bpf_map_get_next_key(c->m.routes, first ? NULL : &rk, &rnext)) {
		const struct vsn_cfg_backend *cb;
		uint32_t to;

		first = false;
		rk = rnext;
		if (bpf_map_lookup_elem(c->m.routes, &rk, &r) || r.path_id != p->id)
			continue;
		/* A pin never holds traffic on a dead path: it is dropped. */
		if (r.flags & VSN_ROUTE_PINNED)
			ctl_log(c, why,
				"\"event\":\"route-unpinned\",\"vm\":%u,\"volume\":%u,"
				"\"backend\":%u,\"path\":%u",
				rk.vm_id, rk.volume_id, rk.backend_id, p->id);
		cb = cfg_backend(c, rk.backend_id);
		to = cb ? choose(c, cb, p->id, ctl_volume_class(c, rk.volume_id), 0, now, &forced)
			: 0;
		if (!to || ops_route_set(&c->m, &rk, to, 0, &err)) {
			(*stuck)++;
			continue;
		}
		if (n == cap) {
			struct vsn_route_key *nk =
			    realloc(keys, (cap ? cap * 2 : 16) * sizeof(*nk));

			if (!nk)
				continue; /* moved, only not counted */
			keys = nk;
			cap = cap ? cap * 2 : 16;
		}
		keys[n++] = rk;
	}
	if (n)
		qsort(keys, n, sizeof(*keys), route_key_cmp);
	*moved = keys;
	return n;
}

/*
 * Move everything off a failed path: routes first (new connections and
 * those following the route), then connections pinned to it by an
 * earlier move.  Failures bypass dwell time and the move budget.
 */
static void reroute_path(struct ctl *c, struct ctl_path *p, uint64_t now, enum ctl_why why)
{
	struct vsn_route_key *moved = NULL;
	struct vsn_conn_key ck, cnext;
	struct vsn_err err = {.msg = ""};
	unsigned routes, conns = 0, stuck = 0;
	bool first = true, forced;
	struct vsn_conn v;

	if (c->cfg->ctl.observe_only) {
		ctl_log(c, why,
			"\"event\":\"observe-only\",\"path\":%u,\"would\":\"move its "
			"connections\"",
			p->id);
		return;
	}
	routes = reroute_routes(c, p, now, why, &moved, &stuck);
	while (!bpf_map_get_next_key(c->m.conns, first ? NULL : &ck, &cnext)) {
		struct vsn_route_key rk;
		const struct vsn_cfg_backend *cb;
		uint32_t to;

		first = false;
		ck = cnext;
		if (ck.dir != VSN_DIR_TO_STORAGE || bpf_map_lookup_elem(c->m.conns, &ck, &v))
			continue;
		if (v.path_override != p->id) {
			/* Following a route that just moved: counted as moved. */
			rk = (struct vsn_route_key){v.vm_id, v.volume_id, v.backend_id};
			if (!v.path_override && conn_live(&v, now, LIVE_NS) && routes &&
			    bsearch(&rk, moved, routes, sizeof(rk), route_key_cmp))
				conns++;
			continue;
		}
		cb = cfg_backend(c, v.backend_id);
		to = cb ? choose(c, cb, p->id, ctl_volume_class(c, v.volume_id), 0, now, &forced)
			: 0;
		if (!to || ops_conn_path(&c->m, &ck, to, &err)) {
			stuck++;
			continue;
		}
		ctl_move_slot(c, v.conn_id)->at_ns = now;
		conns += conn_live(&v, now, LIVE_NS);
	}
	free(moved);
	if (c->live)
		c->live[p->id].await_ns = 0;
	p->cmd_cutoff_ns = now;
	c->reroutes[why] += conns;
	ctl_log(c, why,
		"\"event\":\"failover\",\"path\":%u,\"routes_moved\":%u,\"connections_moved\":%u,"
		"\"left\":%u",
		p->id, routes, conns, stuck);
}

/* Send the RST of every live VM-direct TCP connection of the backend now;
 * returns how many went out. */
static unsigned reset_now(struct ctl *c, uint32_t backend_id, uint64_t now)
{
	struct vsn_conn_key k, next, rk;
	struct vsn_conn v, rev;
	bool first = true;
	unsigned sent = 0;
	char err[128];

	while (!bpf_map_get_next_key(c->m.conns, first ? NULL : &k, &next)) {
		first = false;
		k = next;
		if (k.dir != VSN_DIR_TO_STORAGE || k.proto != IPPROTO_TCP ||
		    bpf_map_lookup_elem(c->m.conns, &k, &v) || v.backend_id != backend_id ||
		    (v.flags & VSN_CONN_HOST) || !conn_live(&v, now, LIVE_NS) ||
		    ctl_move_slot(c, v.conn_id)->closed)
			continue;
		vsn_conn_rev_key(&rk, &v, IPPROTO_TCP);
		if (bpf_map_lookup_elem(c->m.conns, &rk, &rev) ||
		    rst_inject(&v, &rev, err, sizeof(err)))
			continue;
		sent++;
	}
	return sent;
}

/* Would draining backend id leave one of its volumes without a backend up? */
static bool last_backend_up(struct ctl *c, uint32_t id)
{
	const struct vsn_config *cfg = c->cfg;

	for (unsigned i = 0; i < cfg->n_volumes; i++) {
		const struct vsn_cfg_volume *v = &cfg->volumes[i];
		bool uses = false, other = false;

		for (unsigned j = 0; j < v->n_backends; j++) {
			const struct ctl_backend *o = ctl_backend(c, v->backends[j]);

			if (v->backends[j] == id)
				uses = true;
			else if (o && !o->drained && o->damp.state != VSN_H_FAILED &&
				 !(o->admin_state && o->admin != VSN_BE_UP))
				other = true;
		}
		if (uses && !other)
			return true;
	}
	return false;
}

static void drain_backend(struct ctl *c, struct ctl_backend *b, enum ctl_why why)
{
	struct vsn_err err = {.msg = ""};
	char reason[CTL_REASON_MAX * 2];
	unsigned n = 0;

	ctl_esc(reason, sizeof(reason), b->reason);
	if (c->cfg->ctl.observe_only) {
		ctl_log(c, why,
			"\"event\":\"observe-only\",\"backend\":%u,\"would\":\"drain\","
			"\"why\":\"%s\"",
			b->id, reason);
		return;
	}
	if (last_backend_up(c, b->id)) {
		/* Nowhere better to send its initiators: keep the last good
		 * mapping rather than reset them into nothing. */
		ctl_log(c, why,
			"\"event\":\"drain-skipped\",\"backend\":%u,\"why\":\"%s\","
			"\"because\":\"the last backend up of a volume\"",
			b->id, reason);
		return;
	}
	if (ops_backend_state(&c->m, b->id, VSN_BE_DOWN, &err) ||
	    ops_backend_reset(&c->m, b->id, &n, &err)) {
		ctl_log(c, why, "\"event\":\"drain-failed\",\"backend\":%u,\"error\":\"%s\"", b->id,
			ctl_esc(reason, sizeof(reason), err.msg));
		return;
	}
	b->drained = true;
	c->reroutes[why] += n;
	ctl_log(c, why,
		"\"event\":\"drain\",\"backend\":%u,\"connections_reset\":%u,\"rst_sent\":%u,"
		"\"why\":\"%s\"",
		b->id, n, reset_now(c, b->id, ctl_now_ns()), reason);
}

static void undrain_backend(struct ctl *c, struct ctl_backend *b)
{
	struct vsn_err err = {.msg = ""};

	b->drained = false;
	if (b->admin_state || c->cfg->ctl.observe_only)
		return;
	if (ops_backend_state(&c->m, b->id, VSN_BE_UP, &err)) {
		char esc[sizeof(err.msg) * 2];

		ctl_log(c, CTL_WHY_RECOVERED,
			"\"event\":\"undrain-failed\",\"backend\":%u,"
			"\"error\":\"%s\"",
			b->id, ctl_esc(esc, sizeof(esc), err.msg));
	} else {
		ctl_log(c, CTL_WHY_RECOVERED, "\"event\":\"undrain\",\"backend\":%u", b->id);
	}
}

/*
 * One observation of a path or backend (kind) through its damper; a change
 * of the effective state is logged with its reason (cleared on recovery).
 * Returns the effective state.
 */
static enum vsn_health judge(struct ctl *c, const char *kind, uint32_t id, struct pol_damper *d,
			     enum vsn_health obs, char *reason, enum ctl_why why, uint64_t now)
{
	enum vsn_health before = d->state, after = pol_damp(&c->cfg->ctl, d, obs, now);
	char esc[CTL_REASON_MAX * 2];

	if (after == before)
		return after;
	if (after != VSN_H_FAILED && obs == VSN_H_HEALTHY)
		reason[0] = '\0';
	ctl_log(c, after == VSN_H_HEALTHY ? CTL_WHY_RECOVERED : why,
		"\"event\":\"%s-%s\",\"%s\":%u,\"was\":\"%s\",\"why\":\"%s\"", kind,
		pol_health_name(after), kind, id, pol_health_name(before),
		ctl_esc(esc, sizeof(esc), reason));
	return after;
}

void ctl_path_observe(struct ctl *c, struct ctl_path *p, uint64_t now, enum ctl_why why)
{
	const struct vsn_cfg_controller *pol = &c->cfg->ctl;
	enum vsn_health obs = VSN_H_HEALTHY, before = p->damp.state, after;

	if (p->carrier_down) {
		obs = VSN_H_FAILED;
		snprintf(p->reason, sizeof(p->reason), "uplink %s has no carrier",
			 p->uplink >= 0 ? c->uplinks[p->uplink].cfg->interface : "?");
	} else if (p->silent) {
		obs = VSN_H_FAILED; /* reason written by ctl_watch */
	} else if (p->neigh_failed) {
		obs = VSN_H_FAILED;
		snprintf(p->reason, sizeof(p->reason), "next hop unreachable");
	} else if (p->err_rate * 100 >= pol->error_rate_pct) {
		obs = VSN_H_DEGRADED;
		snprintf(p->reason, sizeof(p->reason), "%.1f%% of commands failed",
			 p->err_rate * 100);
	}
	p->observed = obs;
	after = judge(c, "path", p->id, &p->damp, obs, p->reason, why, now);
	if (after == before)
		return;
	if (after == VSN_H_FAILED)
		reroute_path(c, p, now, why);
}

/* ANA states (NVMe base spec, ANA log): 3 inaccessible, 4 persistent loss. */
#define ANA_NONOPTIMIZED 2
#define ANA_INACCESSIBLE 3
#define ANA_PERSIST_LOSS 4

/*
 * Unreachable by its health polls for an interval plus the timeout: two
 * polls in a row, the second possibly through another path.
 */
static bool unreachable_counts(struct ctl *c, const struct ctl_backend *b, uint64_t now)
{
	const struct vsn_cfg_controller *pol = &c->cfg->ctl;
	uint64_t grace = (uint64_t)(pol->health_interval_ms + pol->health_timeout_ms) * NS_PER_MS;

	/* One failed poll is not enough: a busy host can miss a timeout;
	 * the failure counts once it lasted a whole interval. */
	return b->polled && !b->reachable && now - b->unreach_since_ns >= grace;
}

void ctl_backend_observe(struct ctl *c, struct ctl_backend *b, uint64_t now, enum ctl_why why)
{
	const struct vsn_cfg_controller *pol = &c->cfg->ctl;
	enum vsn_health obs = VSN_H_HEALTHY, before = b->damp.state, after;

	if (b->silent) {
		obs = VSN_H_FAILED; /* reason written by ctl_watch */
	} else if (unreachable_counts(c, b, now)) {
		obs = VSN_H_FAILED;
		snprintf(b->reason, sizeof(b->reason), "%s%s",
			 b->cfg->health == VSN_HEALTH_TCP     ? ""
			 : b->cfg->health == VSN_HEALTH_LOCAL ? "local controller: "
							      : "admin queue: ",
			 b->dev_error);
	} else if (b->polled && b->critical_warning) {
		obs = VSN_H_FAILED;
		snprintf(b->reason, sizeof(b->reason), "SMART critical warning 0x%02x",
			 b->critical_warning);
	} else if (b->polled &&
		   (b->ana_state == ANA_INACCESSIBLE || b->ana_state == ANA_PERSIST_LOSS)) {
		obs = VSN_H_FAILED;
		snprintf(b->reason, sizeof(b->reason), "ANA state %s",
			 b->ana_state == ANA_INACCESSIBLE ? "inaccessible" : "persistent-loss");
	} else if (b->resp >= 20 && b->errs * 100 >= b->resp * pol->error_rate_pct) {
		obs = VSN_H_FAILED;
		snprintf(b->reason, sizeof(b->reason), "%llu of %llu commands failed",
			 (unsigned long long)b->errs, (unsigned long long)b->resp);
	} else if (b->polled && b->ana_state == ANA_NONOPTIMIZED) {
		obs = VSN_H_DEGRADED;
		snprintf(b->reason, sizeof(b->reason), "ANA state non-optimized");
	}
	b->observed = obs;
	/* Failed for what the datapath saw (a stall, errors): a polled backend
	 * comes back only once a poll has been answered since.  The hold-down
	 * alone would hand new connections to a target that may still be dead
	 * while its next poll is not due or not yet counted. */
	if (obs != VSN_H_FAILED && b->damp.state == VSN_H_FAILED && b->polled &&
	    b->ok_ns <= b->damp.failed_ns)
		return;
	after = judge(c, "backend", b->id, &b->damp, obs, b->reason, why, now);
	if (after == before)
		return;
	if (after == VSN_H_FAILED)
		drain_backend(c, b, why);
	else if (before == VSN_H_FAILED && b->drained)
		undrain_backend(c, b);
}

void ctl_link_event(struct ctl *c, unsigned ifindex, bool carrier, uint64_t now)
{
	struct ctl_uplink *u = ctl_uplink_by_ifindex(c, ifindex);

	if (!u || u->carrier == carrier)
		return;
	u->carrier = carrier;
	for (unsigned i = 0; i < c->n_paths; i++) {
		struct ctl_path *p = &c->paths[i];

		if (p->uplink < 0 || &c->uplinks[p->uplink] != u)
			continue;
		p->carrier_down = !carrier;
		ctl_path_observe(c, p, now, CTL_WHY_CARRIER);
	}
}

void ctl_neigh_event(struct ctl *c, unsigned ifindex, const struct vsn_addr *a, bool failed,
		     uint64_t now)
{
	for (unsigned i = 0; i < c->n_paths; i++) {
		struct ctl_path *p = &c->paths[i];
		struct vsn_addr gw;

		if (!p->cfg->next_hop_addr || p->uplink < 0 ||
		    c->uplinks[p->uplink].ifindex != ifindex ||
		    parse_addr(p->cfg->next_hop_addr, &gw, NULL) || memcmp(&gw, a, sizeof(gw)) ||
		    p->neigh_failed == failed)
			continue;
		p->neigh_failed = failed;
		ctl_path_observe(c, p, now, CTL_WHY_NEIGH);
	}
}

#define CMD_SCAN_NS   (100 * NS_PER_MS)
#define CMD_RECENT_NS (30000 * NS_PER_MS)

/* How long a command may wait on path p: silent_ms, or four times the
 * path's usual latency when its device is slower than that. */
static uint64_t cmd_limit(const struct ctl *c, const struct ctl_path *p)
{
	uint64_t lim = c->cfg->ctl.silent_ms * NS_PER_MS, lat = (uint64_t)(4e6 * p->lat_base_ms);

	return lat > lim ? lat : lim;
}

/*
 * The other sign of a silent cut: NVMe commands outstanding past their
 * limit on a path from which nothing at all came back for as long (the
 * target may have acknowledged the command's TCP segment before the cut,
 * which clears the TCP-level stamp).  The command table is scanned only
 * while some recently used path is that quiet, at most every 100 ms.
 */
static void cmd_stalls(struct ctl *c, uint64_t now)
{
	uint64_t limit[VSN_MAX_PATHS] = {0}, oldest[VSN_MAX_PATHS] = {0};
	uint64_t cutoff[VSN_MAX_PATHS] = {0};
	bool any = false;
	unsigned i;

	if (!c->cmds || !c->live || now - c->last_cmd_scan_ns < CMD_SCAN_NS)
		return;
	c->last_cmd_scan_ns = now;
	for (i = 0; i < c->n_paths; i++) {
		const struct ctl_path *p = &c->paths[i];
		const struct vsn_path_live *l = &c->live[p->id];
		uint64_t lim = cmd_limit(c, p);

		if (p->damp.state == VSN_H_FAILED || !l->rx_ns || l->rx_ns > now ||
		    now - l->rx_ns < lim || now - l->tx_ns > CMD_RECENT_NS)
			continue;
		limit[p->id] = lim;
		cutoff[p->id] = p->cmd_cutoff_ns;
		any = true;
	}
	if (!any)
		return;
	for (i = 0; i < VSN_MAX_CMDS; i++) {
		const struct vsn_cmd_slot *s = &c->cmds[i];
		uint32_t pid = s->cmd.path_id, conn = s->key.conn_id;
		uint64_t ts = s->cmd.ts_ns;

		if (!conn || pid >= VSN_MAX_PATHS || !limit[pid] || ts > now || ts < cutoff[pid] ||
		    now - ts < limit[pid] || now - ts > CMD_RECENT_NS ||
		    ctl_move_slot(c, conn)->closed)
			continue;
		if (!oldest[pid] || ts < oldest[pid])
			oldest[pid] = ts;
	}
	for (i = 0; i < c->n_paths; i++) {
		struct ctl_path *p = &c->paths[i];

		if (!oldest[p->id])
			continue;
		p->silent = true;
		snprintf(p->reason, sizeof(p->reason),
			 "NVMe commands outstanding for %llu ms, nothing back for %llu ms",
			 (unsigned long long)((now - oldest[p->id]) / NS_PER_MS),
			 (unsigned long long)((now - c->live[p->id].rx_ns) / NS_PER_MS));
		ctl_path_observe(c, p, now, CTL_WHY_SILENT);
		p->silent = false;
	}
}

/* How soon a stall on a second path must follow the first to be blamed on
 * their common backend. */
#define BACKEND_STALL_NS (3000 * NS_PER_MS)

/*
 * The stall on path p (towards backend be) followed one on another path to
 * the same backend: the backend stopped answering, not the paths.  Fail
 * the backend (drain, reset its connections) and forgive the first path.
 */
static bool blame_backend(struct ctl *c, struct ctl_path *p, uint32_t be, uint64_t now)
{
	struct ctl_backend *b = ctl_backend(c, be);
	struct ctl_path *q;

	if (!b)
		return false;
	if (!b->silent_ns || now - b->silent_ns > BACKEND_STALL_NS || b->silent_path == p->id) {
		b->silent_ns = now;
		b->silent_path = p->id;
		return false;
	}
	snprintf(b->reason, sizeof(b->reason),
		 "no reply on path %u nor, after the move, on path %u", b->silent_path, p->id);
	b->silent = true;
	ctl_backend_observe(c, b, now, CTL_WHY_SILENT);
	b->silent = false;
	q = ctl_path(c, b->silent_path);
	if (q && q->damp.state == VSN_H_FAILED && !q->carrier_down && !q->neigh_failed) {
		pol_damp_forgive(&q->damp);
		q->reason[0] = '\0';
		ctl_log(c, CTL_WHY_RECOVERED,
			"\"event\":\"path-healthy\",\"path\":%u,\"was\":\"failed\","
			"\"why\":\"the stall was backend %u's\"",
			q->id, be);
	}
	b->silent_ns = 0;
	return true;
}

/*
 * A path whose oldest unanswered request is older than silent_ms, while
 * its carrier is up: something inside the fabric stopped passing packets
 * (or the backend did: blame_backend tells them apart).
 */
void ctl_watch(struct ctl *c, uint64_t now)
{
	uint64_t limit = c->cfg->ctl.silent_ms * NS_PER_MS;

	if (!c->live)
		return;
	for (unsigned i = 0; i < c->n_paths; i++) {
		struct ctl_path *p = &c->paths[i];
		uint64_t since = c->live[p->id].await_ns;
		uint32_t be = c->live[p->id].await_be;
		uint64_t rx = c->live[p->id].rx_ns;

		/* Requests outstanding for silent_ms; or for half of it when
		 * nothing at all came back for silent_ms (a late ACK of older
		 * data cleared the stamp, and the sender now waits). */
		if (!since || since > now || p->damp.state == VSN_H_FAILED ||
		    !(now - since >= limit ||
		      (now - since >= limit / 2 && rx < now && now - rx >= limit)))
			continue;
		if (blame_backend(c, p, be, now)) {
			c->live[p->id].await_ns = 0;
			continue;
		}
		p->silent = true;
		p->silent_since_ns = since;
		snprintf(p->reason, sizeof(p->reason),
			 "no reply for %llu ms with requests outstanding",
			 (unsigned long long)((now - since) / NS_PER_MS));
		ctl_path_observe(c, p, now, CTL_WHY_SILENT);
		/* One observation: recovery is the damper's hold-down. */
		p->silent = false;
	}
	cmd_stalls(c, now);
}

struct cand {
	struct vsn_conn_key k;
	uint32_t conn_id, backend, path, volume;
	uint64_t bytes; /* since the last congestion walk (or in all, the first time) */
};

static int cand_cmp(const void *a, const void *b)
{
	const struct cand *x = a, *y = b;

	return x->bytes < y->bytes ? 1 : x->bytes > y->bytes ? -1 : 0;
}

/* Movable by congestion: live, on a congested uplink that is not settling,
 * neither reset nor pinned by an operator (its route or itself). */
static bool congestion_candidate(struct ctl *c, const struct vsn_conn *v, uint64_t now,
				 uint32_t *path)
{
	struct vsn_route_key rk = {v->vm_id, v->volume_id, v->backend_id};
	const struct ctl_uplink *u;
	struct ctl_path *p;
	struct vsn_route r;

	if ((v->flags & VSN_CONN_RESET) || !conn_live(v, now, 1000 * NS_PER_MS) ||
	    ctl_move_slot(c, v->conn_id)->closed)
		return false;
	if (!v->path_override && !bpf_map_lookup_elem(c->m.routes, &rk, &r) &&
	    (r.flags & VSN_ROUTE_PINNED))
		return false;
	*path = conn_path(c, v);
	p = ctl_path(c, *path);
	if (!p || p->uplink < 0)
		return false;
	u = &c->uplinks[p->uplink];
	return u->congested && now >= u->settle_until_ns;
}

/*
 * An uplink over its threshold: move its heaviest connections (most bytes
 * since the last look) to better paths: at most half of a path's
 * connections per tick and within the move budget.  After a move the
 * uplink settles for a few ticks (its queue drains) before more go.
 */
static void congestion_moves(struct ctl *c, uint64_t now)
{
	struct vsn_conn_key k, next;
	struct vsn_err err = {.msg = ""};
	struct cand *cs = NULL;
	unsigned n = 0, cap = 0, *on_path = NULL, *moved_from = NULL;
	bool first = true;
	struct vsn_conn v;

	on_path = calloc(VSN_MAX_PATHS, sizeof(*on_path));
	moved_from = calloc(VSN_MAX_PATHS, sizeof(*moved_from));
	if (!on_path || !moved_from)
		goto out;
	while (!bpf_map_get_next_key(c->m.conns, first ? NULL : &k, &next)) {
		struct ctl_move_slot *s;
		uint32_t path;

		first = false;
		k = next;
		if (k.dir != VSN_DIR_TO_STORAGE || bpf_map_lookup_elem(c->m.conns, &k, &v) ||
		    !congestion_candidate(c, &v, now, &path))
			continue;
		s = ctl_move_slot(c, v.conn_id);
		if (n == cap) {
			struct cand *nc = realloc(cs, (cap ? cap * 2 : 64) * sizeof(*cs));

			if (!nc)
				break;
			cs = nc;
			cap = cap ? cap * 2 : 64;
		}
		cs[n++] = (struct cand){
		    k,	  v.conn_id,   v.backend_id,
		    path, v.volume_id, v.bytes >= s->bytes ? v.bytes - s->bytes : v.bytes};
		s->bytes = v.bytes;
		on_path[path % VSN_MAX_PATHS]++;
		if (s->operator)
			n--; /* counted on its path, never moved */
	}
	if (n)
		qsort(cs, n, sizeof(*cs), cand_cmp);
	for (unsigned i = 0; i < n; i++) {
		const struct vsn_cfg_backend *cb = cfg_backend(c, cs[i].backend);
		struct ctl_move_slot *s = ctl_move_slot(c, cs[i].conn_id);
		unsigned pi = cs[i].path % VSN_MAX_PATHS;
		struct ctl_path *from = ctl_path(c, cs[i].path);
		bool forced;
		uint32_t to;

		if (!cb || moved_from[pi] * 2 >= (on_path[pi] > 1 ? on_path[pi] : 2))
			continue;
		to = choose(c, cb, cs[i].path, ctl_volume_class(c, cs[i].volume), s->at_ns, now,
			    &forced);
		if (!to || !pol_budget_take(&c->budget, forced))
			continue;
		if (c->cfg->ctl.observe_only) {
			s->at_ns = now; /* as if moved: said once per dwell time */
			ctl_log(c, CTL_WHY_CONGESTION,
				"\"event\":\"observe-only\",\"connection\":%u,\"from\":%u,"
				"\"would_move_to\":%u",
				cs[i].conn_id, cs[i].path, to);
			continue;
		}
		if (ops_conn_path(&c->m, &cs[i].k, to, &err))
			continue;
		s->at_ns = now;
		moved_from[pi]++;
		c->reroutes[CTL_WHY_CONGESTION]++;
		if (from && from->uplink >= 0)
			c->uplinks[from->uplink].settle_until_ns =
			    now + (uint64_t)SETTLE_TICKS * c->cfg->ctl.tick_ms * NS_PER_MS;
		ctl_log(c, CTL_WHY_CONGESTION,
			"\"event\":\"move\",\"connection\":%u,\"from\":%u,\"to\":%u,\"bytes\":%llu",
			cs[i].conn_id, cs[i].path, to, (unsigned long long)cs[i].bytes);
	}
out:
	free(cs);
	free(on_path);
	free(moved_from);
}

#define CLASS_WINDOW_NS (2000 * NS_PER_MS)

/* The tier new connections of a volume of this class should use, plus one
 * (0: the best tier up), under tier_by_class. */
static uint32_t class_tier(const struct ctl *c, uint32_t volume_id, enum pol_class cls)
{
	const struct vsn_config *cfg = c->cfg;
	int lo = 256, hi = -1;

	if (!cfg->ctl.tier_by_class || cls == POL_CLASS_MIXED)
		return 0;
	for (unsigned i = 0; i < cfg->n_volumes; i++) {
		if (cfg->volumes[i].id != volume_id)
			continue;
		for (unsigned j = 0; j < cfg->volumes[i].n_backends; j++) {
			const struct vsn_cfg_backend *b =
			    cfg_backend(c, cfg->volumes[i].backends[j]);

			if (!b)
				continue;
			lo = b->tier < lo ? b->tier : lo;
			hi = b->tier > hi ? b->tier : hi;
		}
	}
	if (hi < 0 || lo == hi)
		return 0;
	return (uint32_t)(cls == POL_CLASS_BULK ? hi : lo) + 1;
}

/*
 * Each window: classify every volume that issued commands; a new class
 * that holds for two windows is adopted (scores use it; with tier_by_class
 * new connections go to its tier).
 */
static void classify_volumes(struct ctl *c, uint64_t now)
{
	struct vsn_err err = {.msg = ""};

	if (!c->vols || now - c->class_window_ns < CLASS_WINDOW_NS)
		return;
	c->class_window_ns = now;
	for (uint32_t id = 1; id < VSN_MAX_VOLUMES; id++) {
		struct ctl_volume *v = &c->vols[id];
		enum pol_class cls;
		uint32_t tier;

		if (!v->cmds)
			continue;
		cls = pol_classify(v->cmds, v->bytes, v->seq);
		v->cmds = v->bytes = v->seq = 0;
		if (cls == v->cls || cls != v->pending) {
			v->pending = cls;
			continue;
		}
		ctl_log(c, CTL_WHY_CLASS,
			"\"event\":\"volume-class\",\"volume\":%u,\"was\":\"%s\","
			"\"now\":\"%s\"",
			id, pol_class_name(v->cls), pol_class_name(cls));
		v->cls = cls;
		tier = class_tier(c, id, cls);
		if (tier == v->tier_pref || c->cfg->ctl.observe_only)
			continue;
		if (plan_volume_tier(&c->m, id, tier, &err)) {
			vsn_warn("%s", err.msg);
			continue;
		}
		v->tier_pref = tier;
		ctl_log(c, CTL_WHY_CLASS,
			"\"event\":\"volume-tier\",\"volume\":%u,\"tier\":%d,\"class\":\"%s\"", id,
			(int)tier - 1, pol_class_name(cls));
	}
}

void ctl_tick(struct ctl *c, uint64_t now)
{
	const struct vsn_cfg_controller *pol = &c->cfg->ctl;
	double dt = c->last_tick_ns ? (now - c->last_tick_ns) / 1e9 : pol->tick_ms / 1e3;
	bool any = false;
	unsigned i;

	c->ticks++;
	c->last_tick_ns = now;
	ctl_measure(c, now, dt);
	pol_budget_reset(pol, &c->budget);
	ctl_probe_tick(c, now);
	ctl_health_follow_paths(c);
	classify_volumes(c, now);
	for (i = 0; i < c->n_paths; i++)
		ctl_path_observe(c, &c->paths[i], now, CTL_WHY_BACKEND);
	for (i = 0; i < c->n_backends; i++) {
		struct ctl_backend *b = &c->backends[i];

		ctl_backend_observe(c, b, now, CTL_WHY_BACKEND);
		/* In-band error rates over windows of about a second. */
		if (now - b->window_start_ns > 1000 * NS_PER_MS) {
			b->resp = b->errs = 0;
			b->window_start_ns = now;
		}
	}
	for (i = 0; i < c->n_uplinks; i++) {
		struct ctl_uplink *u = &c->uplinks[i];
		bool was = u->congested;

		u->congested = false;
		for (unsigned j = 0; j < c->n_paths; j++) {
			struct pol_path in;

			if (c->paths[j].uplink != (int)i)
				continue;
			ctl_fill_pol(c, &c->paths[j], &in);
			u->congested |= pol_congested(pol, &in);
		}
		if (u->congested != was)
			ctl_log(c, CTL_WHY_CONGESTION,
				"\"event\":\"uplink-%s\",\"uplink\":\"%s\",\"utilisation\":%.2f,"
				"\"qdisc_throttled\":%s",
				u->congested ? "congested" : "clear", u->cfg->interface, u->util,
				u->q_throttled ? "true" : "false");
		any |= u->congested;
	}
	if (any)
		congestion_moves(c, now);
}
