// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Test harness for the ring-buffer overload test: each run emits
 * FLOOD_PER_RUN connection events through the datapath's own event code
 * (lib/telemetry.h) into the pinned vsn_events ring, faster than any reader.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define VSN_CTX_TC
#include "vsn_types.h"
#include "lib/defs.h"
#include "lib/telemetry.h"

#define FLOOD_PER_RUN 64

/* A connection entry to describe in the events (too big for the stack). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct vsn_conn);
} flood_conn SEC(".maps");

SEC("tc")
int ring_flood(struct __sk_buff *skb)
{
	__u32 zero = 0;
	struct vsn_conn *c = bpf_map_lookup_elem(&flood_conn, &zero);

	if (!c)
		return TC_ACT_OK;
	for (int i = 0; i < FLOOD_PER_RUN; i++) {
		c->conn_id = i;
		tel_conn_event(VSN_EV_CONN_OPEN, c, 0, 0);
	}
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
