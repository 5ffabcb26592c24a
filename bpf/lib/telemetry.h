/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Telemetry maps and the helpers that feed them: counters, latency
 * histograms and ring-buffer events with sampling and a per-second cap.
 * Every event that cannot be written is counted, never silently lost.
 */
#ifndef VSN_TELEMETRY_BPF_H
#define VSN_TELEMETRY_BPF_H

#include "lib/maps.h"

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, VSN_EVENTS_BYTES);
	__uint(pinning, VSN_PINNING);
} vsn_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct vsn_tel_cfg);
	__uint(pinning, VSN_PINNING);
} vsn_tel_cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, VSN_T_MAX);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, VSN_PINNING);
} vsn_tel_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, VSN_MAX_CMDS);
	__type(key, __u32);
	__type(value, struct vsn_cmd_slot);
	__uint(map_flags, BPF_F_MMAPABLE); /* the controller scans it for stalls */
	__uint(pinning, VSN_PINNING);
} vsn_cmds SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, VSN_LAT_IDS *VSN_LAT_BUCKETS);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, VSN_PINNING);
} vsn_lat_hist SEC(".maps");

/* Per-CPU sampling countdown and rate-cap window (not pinned: CPU-local
 * bookkeeping, nothing to inspect). */
struct tel_rate {
	__u64 window_ns;
	__u32 in_window;
	__u32 sample_left; /* commands still to skip before the next sample */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tel_rate);
} vsn_tel_rate SEC(".maps");

static __always_inline void tel_count(__u32 stat, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&vsn_tel_stats, &stat);

	if (v)
		*v += n;
}

static __always_inline struct vsn_tel_cfg *tel_cfg(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&vsn_tel_cfg, &zero);
}

static __always_inline __u32 log2_u64(__u64 v)
{
	__u32 r = 0;

	if (v >> 32) {
		v >>= 32;
		r += 32;
	}
	if (v >> 16) {
		v >>= 16;
		r += 16;
	}
	if (v >> 8) {
		v >>= 8;
		r += 8;
	}
	if (v >> 4) {
		v >>= 4;
		r += 4;
	}
	if (v >> 2) {
		v >>= 2;
		r += 2;
	}
	if (v >> 1)
		r += 1;
	return r;
}

static __always_inline void hist_add(__u32 base, __u32 id, __u32 bucket)
{
	__u32 idx = (base + id) * VSN_LAT_BUCKETS + bucket;
	__u64 *v;

	if (id >= VSN_LAT_IDS)
		return;
	v = bpf_map_lookup_elem(&vsn_lat_hist, &idx);
	if (v)
		*v += 1;
}

static __always_inline void tel_latency(const struct vsn_conn *c, __u32 path_id, __u64 ns)
{
	__u32 b = log2_u64(ns);

	if (b >= VSN_LAT_BUCKETS)
		b = VSN_LAT_BUCKETS - 1;
	if (c->backend_id < VSN_MAX_BACKENDS)
		hist_add(VSN_LAT_BE_BASE, c->backend_id, b);
	if (path_id < VSN_MAX_PATHS)
		hist_add(VSN_LAT_PATH_BASE, path_id, b);
	if (c->vm_id < VSN_MAX_VMS)
		hist_add(VSN_LAT_VM_BASE, c->vm_id, b);
}

static __always_inline struct tel_rate *tel_rate(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&vsn_tel_rate, &zero);
}

/* Is this command one in sample_every?  A countdown, not a modulo: a
 * division costs more than the rest of the check. */
static __always_inline bool tel_sample(const struct vsn_tel_cfg *cfg, struct tel_rate *r)
{
	if (cfg->sample_every <= 1)
		return true;
	if (r->sample_left > 1) {
		r->sample_left--;
		return false;
	}
	r->sample_left = cfg->sample_every;
	return true;
}

/* The per-second cap on command/response events (connection and resync
 * events are rare and always wanted). */
static __always_inline bool tel_cap(const struct vsn_tel_cfg *cfg, struct tel_rate *r)
{
	__u64 now;

	if (!cfg->max_per_sec)
		return true;
	now = bpf_ktime_get_coarse_ns();
	if (now - r->window_ns >= 1000000000ull) {
		r->window_ns = now;
		r->in_window = 0;
	}
	if (r->in_window >= cfg->max_per_sec)
		return false;
	r->in_window++;
	return true;
}

/* A command to time and report: sampled, and within the cap. */
static __always_inline bool tel_admit_cmd(void)
{
	struct vsn_tel_cfg *cfg = tel_cfg();
	struct tel_rate *r = tel_rate();

	if (!cfg || !r)
		return false;
	if (tel_sample(cfg, r) && tel_cap(cfg, r))
		return true;
	tel_count(VSN_T_EV_SAMPLED, 1);
	return false;
}

/* A response to report: its command was (found), or, when every command
 * is reported, one whose command is unknown; within the cap either way.
 * cfg: tel_cfg(), which the caller has at hand. */
static __always_inline bool tel_admit_resp(const struct vsn_tel_cfg *cfg, bool found)
{
	struct tel_rate *r = tel_rate();

	if (!cfg || !r || (!found && cfg->sample_every > 1))
		return false;
	if (tel_cap(cfg, r))
		return true;
	tel_count(VSN_T_EV_SAMPLED, 1);
	return false;
}

/* A zeroed event for connection c, or NULL (counted) when the ring is full.
 * ts: when it happened, if the caller read the clock already (a clock read
 * costs as much as the rest of the event); 0: read it here. */
static __always_inline struct vsn_event *tel_event(__u32 type, const struct vsn_conn *c,
						   __u32 path_id, __u32 dir, __u64 ts)
{
	struct vsn_event *e = bpf_ringbuf_reserve(&vsn_events, sizeof(*e), 0);

	if (!e) {
		tel_count(VSN_T_EV_DROPPED, 1);
		return NULL;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->ts_ns = ts ? ts : bpf_ktime_get_ns();
	e->type = type;
	e->conn_id = c->conn_id;
	e->vm_id = c->vm_id;
	e->volume_id = c->volume_id;
	e->backend_id = c->backend_id;
	e->path_id = path_id;
	e->dir = dir;
	e->qid = c->pdu.qid;
	return e;
}

static __always_inline void tel_submit(struct vsn_event *e)
{
	bpf_ringbuf_submit(e, 0);
	tel_count(VSN_T_EV_SENT, 1);
}

/* Connection open / close / resync: no payload beyond the connection. */
static __always_inline void tel_conn_event(__u32 type, const struct vsn_conn *c, __u32 path_id,
					   __u32 dir)
{
	struct vsn_event *e = tel_event(type, c, path_id, dir, 0);

	if (e)
		tel_submit(e);
}

#endif /* VSN_TELEMETRY_BPF_H */
