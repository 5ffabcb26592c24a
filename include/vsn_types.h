/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Structures shared by the BPF datapath and userspace: the keys and values of
 * every pinned map.  Declared once here; BPF code includes it after vmlinux.h,
 * userspace after <linux/types.h>.  Every field is fixed-width and explicitly
 * padded so both sides agree on the layout and BTF shows real field names.
 */
#ifndef VSN_TYPES_H
#define VSN_TYPES_H

/* Table sizes.  Changing them changes the map layout: detach first. */
#define VSN_MAX_IFINDEX	 4096 /* VM interfaces: array indexed by ifindex */
#define VSN_MAX_VMS	 1024
#define VSN_MAX_VOLUMES	 1024
#define VSN_MAX_BACKENDS 1024
#define VSN_MAX_PATHS	 256
#define VSN_MAX_ROUTES	 65536
#define VSN_MAX_CONNS	 (1 << 20)
/* Maglev table size per volume: prime, and >> backends per volume. */
#define VSN_CHASH_SIZE	     1021
#define VSN_MAX_VOL_BACKENDS 16
#define VSN_MAX_BE_PATHS     8
/* Two generations per volume so a table rebuild is switched atomically. */
#define VSN_CHASH_ENTRIES (VSN_MAX_VOLUMES * 2 * VSN_CHASH_SIZE)

/* Pinned map names (at most 15 characters: the kernel's BPF_OBJ_NAME_LEN). */
#define VSN_MAP_VM_IF	 "vsn_vm_if"
#define VSN_MAP_VOLUMES	 "vsn_volumes"
#define VSN_MAP_BACKENDS "vsn_backends"
#define VSN_MAP_CHASH	 "vsn_chash"
#define VSN_MAP_PATHS	 "vsn_paths"
#define VSN_MAP_ROUTES	 "vsn_routes"
#define VSN_MAP_CONNS	 "vsn_conns"
#define VSN_MAP_PATH_ST	 "vsn_path_stats"
#define VSN_MAP_BE_ST	 "vsn_be_stats"
#define VSN_MAP_VM_ST	 "vsn_vm_stats"
#define VSN_MAP_REASONS	 "vsn_reasons"
#define VSN_MAP_IFACES	 "vsn_ifaces"
#define VSN_MAP_REPLY_TC "vsn_reply_tc"
#define VSN_MAP_PATH_LV	 "vsn_path_live"
#define VSN_MAP_GEN	 "vsn_gen"
#define VSN_MAP_VM_STATE "vsn_vm_state"
#define VSN_MAP_VM_DROP	 "vsn_vm_drops"

#define VSN_PORT_NVME_TCP  4420
#define VSN_PORT_NVME_DISC 8009
#define VSN_PORT_ROCEV2	   4791

enum vsn_proto {
	VSN_PROTO_NVME_TCP = 6, /* IPPROTO_TCP */
	VSN_PROTO_ROCEV2 = 17,	/* IPPROTO_UDP, port 4791 */
};

enum vsn_backend_state {
	VSN_BE_DOWN = 0,
	VSN_BE_UP = 1,
	VSN_BE_DRAINING = 2, /* keeps its connections, takes no new ones */
};

/* Path flags: which optional rewrites a path applies. */
enum vsn_path_flags {
	VSN_PATH_FIB = 1 << 0,	   /* resolve next hop via the FIB/neighbour table */
	VSN_PATH_VLAN = 1 << 1,	   /* egress tagged with vlan_id */
	VSN_PATH_DSCP = 1 << 2,	   /* set DSCP, keep ECN */
	VSN_PATH_FLOWLBL = 1 << 3, /* set IPv6 flow label */
	VSN_PATH_SADDR = 1 << 4,   /* SNAT new NVMe/TCP connections to saddr */
	VSN_PATH_TTL = 1 << 5,	   /* set IPv4 TTL / IPv6 hop limit */
	VSN_PATH_ECN = 1 << 6,	   /* set ECN codepoint */
	VSN_PATH_GW = 1 << 7,	   /* next hop: the gateway address gw */
};

/* Why a packet was passed untouched or dropped.  Index of vsn_reasons. */
enum vsn_reason {
	VSN_R_FORWARDED = 0, /* rewritten and redirected */
	VSN_R_NOT_STORAGE,   /* not to a configured volume: passed */
	VSN_R_NO_ROUTE,	     /* volume known but no usable backend/path: passed */
	VSN_R_MAP_FULL,	     /* connection insert failed: passed */
	VSN_R_MALFORMED,     /* truncated or inconsistent headers: passed */
	VSN_R_UNSUPPORTED,   /* fragments, IPv6 extension headers, ...: passed */
	VSN_R_NO_CONN,	     /* reply without a connection entry: passed */
	VSN_R_REWRITE_ERR,   /* a helper failed mid-way: dropped */
	VSN_R_FIB_MISS,	     /* no next hop through the path's uplink: dropped */
	VSN_R_NOT_VM,	     /* ingress interface is not a VM interface: passed */
	VSN_R_HOST_RX,	     /* a reply of a host flow: observed, passed */
	VSN_R_ROCE_RX,	     /* RoCEv2 from storage: observed, routed by the kernel */
	VSN_R_NAT_PORTS,     /* no free SNAT port for a new connection: passed */
	VSN_R_RESET,	     /* a packet of a reset connection: answered with a TCP RST */
	/* From a VM (counted per VM too, in vsn_vm_drops): */
	VSN_R_SPOOFED,	  /* a source address or MAC not the VM's own: dropped */
	VSN_R_MARTIAN,	  /* a source no host may use (loopback, multicast, ...): dropped */
	VSN_R_CONN_LIMIT, /* a new connection over the VM's max_connections: dropped */
	VSN_R_CONN_RATE,  /* a new connection over the VM's new-connection rate: dropped */
	VSN_R_NO_SYN,	  /* TCP to a volume without a connection nor a SYN: answered with a RST */
	VSN_R_MAX,
};

/*
 * Addresses are 16 bytes; IPv4 is stored IPv4-mapped (::ffff:a.b.c.d) so
 * one key type serves both families.  Network byte order.
 */
struct vsn_addr {
	__u32 a[4];
};

/* Source addresses a VM may use on its interface (port security). */
#define VSN_VM_MAX_ADDRS 8

/* One of them, or a prefix: a source s matches when (s ^ addr) & mask is 0. */
struct vsn_vm_src {
	struct vsn_addr addr;
	struct vsn_addr mask;
};

enum vsn_vm_flags {
	VSN_VM_MAC = 1 << 0, /* mac holds the only source MAC allowed */
};

/*
 * vsn_vm_if: array, index = ifindex of a VM interface. vm_id 0 = none.
 * Everything the datapath checks before it looks anything else up: the VM
 * is its interface, and it may only send from its own addresses.
 */
struct vsn_vm_if {
	__u32 vm_id;
	/* skb->priority given to the VM's storage packets, so the uplink's
	 * HTB qdisc puts them in the VM's class (0 = leave it alone). */
	__u32 tc_prio;
	__u8 mac[6];
	__u8 flags;   /* enum vsn_vm_flags */
	__u8 n_addrs; /* 0: nothing from this VM is steered */
	/* New connections: at most max_conns open at once (0: no limit),
	 * and one per conn_gap_ns on average (1 s / the configured rate; 0:
	 * no limit) with bursts of up to conn_burst. */
	__u32 max_conns;
	__u32 conn_gap_ns;
	__u32 conn_burst;
	__u32 pad;
	struct vsn_vm_src src[VSN_VM_MAX_ADDRS]; /* IPv4 as ::ffff:a.b.c.d */
};

/*
 * vsn_vm_state: array, index = vm_id, shared by all CPUs: the VM's open
 * connections and its new-connection rate limiter.
 */
struct vsn_vm_state {
	/* Connections created minus those seen closing (FIN or RST from
	 * either end) or reset.  Entries the LRU evicts are not seen: the
	 * daemon recounts the open ones every few seconds and writes the
	 * count here. */
	__s64 conns;
	/* Rate limiter (GCRA): the theoretical arrival time of the next new
	 * connection, CLOCK_MONOTONIC ns. */
	__u64 tat_ns;
};

/* vsn_vm_drops: per-CPU array, index = vm_id: what the VM sent that vsn
 * refused (packets), one counter per reason from VSN_R_SPOOFED on, in the
 * enum's order (named here for bpftool). */
#define VSN_VM_DROP_FIRST VSN_R_SPOOFED
#define VSN_VM_DROPS	  (VSN_R_NO_SYN - VSN_R_SPOOFED + 1)

struct vsn_vm_drops {
	__u64 spoofed;
	__u64 martian;
	__u64 conn_limit;
	__u64 conn_rate;
	__u64 no_syn;
};

/* vsn_volumes: hash. */
struct vsn_volume_key {
	__u32 vm_id; /* 0 = the host itself (host-initiator mode) */
	struct vsn_addr vip;
	__u16 port; /* host byte order */
	__u8 proto; /* enum vsn_proto */
	__u8 pad;
};

struct vsn_volume {
	__u32 volume_id; /* 1..VSN_MAX_VOLUMES-1 */
	__u32 chash_gen; /* 0/1: which half of vsn_chash is live */
	/* The configured backend set, so the table can be rebuilt when a
	 * backend changes state (the datapath reads only the two above). */
	__u32 n_backends;
	__u32 backends[VSN_MAX_VOL_BACKENDS];
	/* The controller's tier for new connections, plus one (0: the best
	 * tier with a backend up); userspace only. */
	__u32 tier_pref;
};

/* vsn_backends: hash, key = backend id. */
struct vsn_backend {
	struct vsn_addr addr;
	__u16 port; /* host byte order */
	__u8 state; /* enum vsn_backend_state */
	__u8 tier;
	__u32 weight;
	/* Paths allowed to reach it (the first is the default): userspace
	 * checks route changes against them; the datapath never reads it. */
	__u32 n_paths;
	__u32 paths[VSN_MAX_BE_PATHS];
};

/*
 * vsn_chash: array of backend ids, index =
 * (volume_id * 2 + chash_gen) * VSN_CHASH_SIZE + (flow hash % VSN_CHASH_SIZE).
 */

/* vsn_paths: hash, key = path id. */
struct vsn_path {
	__u32 ifindex; /* egress uplink */
	__u32 flags;   /* enum vsn_path_flags */
	__u8 smac[6];
	__u8 dmac[6];
	__u16 vlan_id;
	__u8 dscp;
	__u8 ttl;
	__u32 flow_label;
	struct vsn_addr saddr;
	struct vsn_addr gw; /* with VSN_PATH_GW */
	__u8 ecn;
	__u8 pad[3];
};

/* vsn_routes: hash.  The dynamic mapping table the controller rewrites. */
struct vsn_route_key {
	__u32 vm_id;
	__u32 volume_id;
	__u32 backend_id;
};

enum vsn_route_flags {
	/* An operator set it: the controller moves it only off a failed path.
	 * Kept in the map so that a restarted daemon knows it too. */
	VSN_ROUTE_PINNED = 1 << 0,
};

struct vsn_route {
	__u32 path_id;
	__u32 flags; /* enum vsn_route_flags; the datapath reads only path_id */
	/* A pinned route a path failure moved: the operator's path, restored
	 * when it is healthy again (0: none). */
	__u32 pin_path;
	__u32 pad;
};

/*
 * vsn_gen: array of one.  Connections cache their route's path (a hash
 * lookup saved per packet) under the generation they read it in; whoever
 * changes vsn_routes bumps routes afterwards, and every cache goes stale.
 */
struct vsn_gen {
	__u64 routes;
};

#include "vsn_telemetry.h"

/*
 * vsn_conns: LRU hash.  Each connection has two entries: the VM-side key
 * (as the VM sent it: VM address -> VIP) and the fabric-side key (as the
 * backend replies: backend -> VM or SNAT address).  dir tells them apart.
 */
enum vsn_conn_dir {
	VSN_DIR_TO_STORAGE = 0,
	VSN_DIR_FROM_STORAGE = 1,
};

struct vsn_conn_key {
	struct vsn_addr saddr;
	struct vsn_addr daddr;
	__u16 sport; /* network byte order */
	__u16 dport;
	__u8 proto;
	__u8 dir; /* enum vsn_conn_dir */
	__u16 pad;
	__u32 vm_id; /* VM-side entries: the VM's id; fabric side: 0 */
};

enum vsn_conn_flags {
	VSN_CONN_DNAT = 1 << 0, /* destination rewritten VIP -> backend */
	VSN_CONN_SNAT = 1 << 1, /* source rewritten VM -> path saddr */
	VSN_CONN_V6 = 1 << 2,
	VSN_CONN_HOST = 1 << 3, /* host-initiator flow (no NAT) */
	/* Its backend failed: the datapath answers the initiator's next packet
	 * with a TCP RST and forgets the connection, so the initiator
	 * reconnects at once instead of waiting out its timeouts. */
	VSN_CONN_RESET = 1 << 4,
	VSN_CONN_RCV_NXT = 1 << 5, /* rcv_nxt holds a value */
	/* Storage answered it: only such connections' requests may start a
	 * path's silence clock (a tenant's unanswered SYNs must not). */
	VSN_CONN_ANSWERED = 1 << 6,
	/* VM side: the connection is closing (FIN or RST seen) and no longer
	 * counts towards the VM's max_connections. */
	VSN_CONN_CLOSING = 1 << 7,
};

struct vsn_conn {
	__u32 vm_id;
	__u32 volume_id;
	__u32 backend_id;
	__u32 path_override;	 /* 0 = follow vsn_routes */
	__u32 flags;		 /* enum vsn_conn_flags */
	__u32 vm_ifindex;	 /* where replies go (VM-direct) */
	struct vsn_addr vip;	 /* what the VM connected to */
	struct vsn_addr vm_addr; /* the VM's own address (before SNAT) */
	struct vsn_addr backend_addr;
	struct vsn_addr snat_addr; /* valid with VSN_CONN_SNAT */
	__u16 vip_port;		   /* network byte order */
	__u16 backend_port;	   /* network byte order */
	__u8 vm_mac[6];		   /* replies: destination MAC */
	__u8 gw_mac[6];		   /* replies: source MAC (what the VM sent to) */
	__u32 last_path;	   /* path the last packet took (counters, show) */
	__u16 vm_port;		   /* the VM's source port, network byte order */
	__u16 snat_port;	   /* its port after SNAT (differs on a clash) */
	__u32 conn_id;		   /* the same in both entries: telemetry joins on it */
	/* Fabric-side TCP entry (with VSN_CONN_RCV_NXT): the sequence number
	 * the initiator expects next, so the controller can reset the
	 * connection at once without waiting for the initiator's next packet.
	 * Host byte order. */
	__u32 rcv_nxt;
	__u64 first_seen_ns;
	__u64 last_seen_ns;
	__u64 packets;
	__u64 bytes;
	__u32 route_path; /* vsn_routes' path for this connection, cached, */
	__u32 route_gen;  /* valid while vsn_gen.routes equals this */
	/* NVMe/TCP parser state of this direction */
	struct vsn_pdu_state pdu;
};

/*
 * The fabric-side key of connection c (either entry's value), whose
 * VM-side key holds proto: one definition for the datapath, which writes
 * and finds these entries, and for userspace, which looks them up.
 */
static inline __attribute__((always_inline)) void
vsn_conn_rev_key(struct vsn_conn_key *rk, const struct vsn_conn *c, __u8 proto)
{
	__builtin_memset(rk, 0, sizeof(*rk));
	rk->saddr = c->backend_addr;
	rk->daddr = (c->flags & VSN_CONN_SNAT) ? c->snat_addr : c->vm_addr;
	rk->sport = c->backend_port;
	rk->dport = (c->flags & VSN_CONN_SNAT) ? c->snat_port : c->vm_port;
	rk->proto = proto;
	rk->dir = VSN_DIR_FROM_STORAGE;
}

/*
 * vsn_ifaces: hash, ifindex -> what vsn attached there.  Userspace state
 * only (the datapath never reads it): detach and status work from it.
 */
enum vsn_iface_role {
	VSN_ROLE_VM = 1,
	VSN_ROLE_UPLINK = 2,
};

enum vsn_iface_hook {
	VSN_HOOK_TC_INGRESS = 1 << 0,
	VSN_HOOK_TC_EGRESS = 1 << 1,
	VSN_HOOK_XDP_NATIVE = 1 << 2,
	VSN_HOOK_XDP_SKB = 1 << 3,
	VSN_HOOK_CLSACT_OURS = 1 << 4, /* vsn created the clsact qdisc */
};

struct vsn_iface {
	__u32 role;  /* enum vsn_iface_role */
	__u32 hooks; /* enum vsn_iface_hook */
	char name[16];
	__u64 netns_ino;    /* network namespace it lives in (pins are global) */
	__u64 capacity_bps; /* uplinks: from the config, 0 = unknown */
};

/*
 * vsn_path_live: array indexed by path id, shared by all CPUs and mmap()ed by
 * the controller, which polls it to find a path that stopped answering while
 * every carrier stays up (a silent cut inside the fabric).  CLOCK_MONOTONIC
 * nanoseconds.
 */
struct vsn_path_live {
	/* Time of the first request-bearing packet (payload, SYN or FIN)
	 * towards storage since the last packet came back; 0 = none waiting. */
	__u64 await_ns;
	__u64 rx_ns; /* last packet from storage on this path (~1 ms steps) */
	__u64 tx_ns; /* last packet towards storage on this path (~1 ms steps) */
	/* The backend of the request that set await_ns: a stall seen on
	 * every path to one backend is the backend's, not the paths'. */
	__u32 await_be;
	/* The VM whose request set await_ns, or VSN_AWAIT_MANY once another
	 * VM's request waits too: one VM alone must not fail a path that
	 * others share. */
	__u32 await_vm;
	/* The first SYN of a connection not yet answered since the last
	 * packet came back.  Never evidence alone (a tenant can send SYNs
	 * nobody answers); the controller weighs it on a path that another
	 * VM's silence already made suspect. */
	__u64 syn_ns;
};

#define VSN_AWAIT_MANY 0xffffffffu

/* Per-CPU counters: vsn_path_stats, vsn_be_stats, vsn_vm_stats (arrays
 * indexed by id), vsn_reasons (array indexed by enum vsn_reason). */
struct vsn_counter {
	__u64 packets;
	__u64 bytes;
};

#endif /* VSN_TYPES_H */
