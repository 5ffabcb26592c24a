/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Per-CPU counters of packets and bytes per path, backend, VM and outcome
 * (enum vsn_reason), and the pass/drop verdicts that count their reason.
 */
#ifndef VSN_COUNTERS_H
#define VSN_COUNTERS_H

#include "lib/ctx.h"
#include "lib/maps.h"

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, VSN_MAX_PATHS);
	__type(key, __u32);
	__type(value, struct vsn_counter);
	__uint(pinning, VSN_PINNING);
} vsn_path_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, VSN_MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct vsn_counter);
	__uint(pinning, VSN_PINNING);
} vsn_be_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, VSN_MAX_VMS);
	__type(key, __u32);
	__type(value, struct vsn_counter);
	__uint(pinning, VSN_PINNING);
} vsn_vm_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, VSN_R_MAX);
	__type(key, __u32);
	__type(value, struct vsn_counter);
	__uint(pinning, VSN_PINNING);
} vsn_reasons SEC(".maps");

static __always_inline void count(void *map, __u32 idx, __u32 bytes)
{
	struct vsn_counter *c = bpf_map_lookup_elem(map, &idx);

	if (c) {
		c->packets++;
		c->bytes += bytes;
	}
}

static __always_inline void count_reason(__u32 reason, __u32 bytes)
{
	count(&vsn_reasons, reason, bytes);
}

static __always_inline int pass(__u32 reason, __u32 bytes)
{
	count_reason(reason, bytes);
	return VSN_PASS;
}

static __always_inline int drop(__u32 reason, __u32 bytes)
{
	count_reason(reason, bytes);
	return VSN_DROP;
}

#endif /* VSN_COUNTERS_H */
