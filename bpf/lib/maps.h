/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The routing table as BPF maps.  Pinned by name, so every program object
 * that includes this shares one set of maps under the pin root the loader
 * chooses (default /sys/fs/bpf/vsn).  Keys and values: include/vsn_types.h.
 */
#ifndef VSN_MAPS_H
#define VSN_MAPS_H

/* Test and bench harnesses that hand libbpf vsn's maps build with pinning
 * off. */
#ifndef VSN_PINNING
#define VSN_PINNING LIBBPF_PIN_BY_NAME
#endif

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, VSN_MAX_IFINDEX);
	__type(key, __u32);
	__type(value, struct vsn_vm_if);
	__uint(pinning, VSN_PINNING);
} vsn_vm_if SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, VSN_MAX_VOLUMES);
	__type(key, struct vsn_volume_key);
	__type(value, struct vsn_volume);
	__uint(pinning, VSN_PINNING);
} vsn_volumes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH); /* hash: updates replace whole entries */
	__uint(max_entries, VSN_MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct vsn_backend);
	__uint(pinning, VSN_PINNING);
} vsn_backends SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, VSN_CHASH_ENTRIES);
	__type(key, __u32);
	__type(value, __u32); /* backend id */
	__uint(pinning, VSN_PINNING);
} vsn_chash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH); /* hash: updates replace whole entries */
	__uint(max_entries, VSN_MAX_PATHS);
	__type(key, __u32);
	__type(value, struct vsn_path);
	__uint(pinning, VSN_PINNING);
} vsn_paths SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, VSN_MAX_ROUTES);
	__type(key, struct vsn_route_key);
	__type(value, struct vsn_route);
	__uint(pinning, VSN_PINNING);
} vsn_routes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct vsn_gen);
	__uint(pinning, VSN_PINNING);
} vsn_gen SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, VSN_MAX_CONNS);
	__type(key, struct vsn_conn_key);
	__type(value, struct vsn_conn);
	__uint(pinning, VSN_PINNING);
} vsn_conns SEC(".maps");

/* VM interfaces (by ifindex) whose replies XDP hands to TC: lib/xfer.h. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, VSN_MAX_IFINDEX);
	__type(key, __u32);
	__type(value, __u32);
	__uint(pinning, VSN_PINNING);
} vsn_reply_tc SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, struct vsn_iface);
	__uint(pinning, VSN_PINNING);
} vsn_ifaces SEC(".maps");

/* Per-CPU scratch space for what does not fit the 512-byte BPF stack: a new
 * connection entry being built, and PDU header bytes being gathered. */
struct vsn_scratch {
	struct vsn_conn conn;
	__u8 hdr[VSN_PDU_HDR_MAX];
	__u8 tmp[VSN_PDU_HDR_MAX];
	__u64 pkt_now; /* the NVMe/TCP parser's clock read for this packet, 0: none yet */
	/* A new connection's fabric-side key; the parser's key of a
	 * connection's other entry. */
	struct vsn_conn_key rkey;
	struct bpf_fib_lookup fib;
	struct bpf_redir_neigh nh;
	/* A host packet redirected from one uplink's egress to another's,
	 * whose egress runs vsn again at once on this CPU: seen, not counted
	 * twice. */
	__u32 redir_ifindex;
	__u32 redir_seq;
	__u16 redir_sport;
	__u16 redir_dport;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct vsn_scratch);
} vsn_scratch SEC(".maps");

static __always_inline struct vsn_scratch *scratch(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&vsn_scratch, &zero);
}

static __always_inline struct vsn_conn *scratch_conn(void)
{
	struct vsn_scratch *s = scratch();

	return s ? &s->conn : NULL;
}

#endif /* VSN_MAPS_H */
