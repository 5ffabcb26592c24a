/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Storage telemetry shared by the datapath and userspace: the NVMe/TCP PDU
 * parser's per-connection state, the events it sends through the ring
 * buffer, and the counters and histograms it keeps.
 */
#ifndef VSN_TELEMETRY_H
#define VSN_TELEMETRY_H

#define VSN_MAP_EVENTS	  "vsn_events"
#define VSN_MAP_TEL_CFG	  "vsn_tel_cfg"
#define VSN_MAP_TEL_ST	  "vsn_tel_stats"
#define VSN_MAP_CMDS	  "vsn_cmds"
#define VSN_MAP_LAT_HIST  "vsn_lat_hist"
#define VSN_MAP_ROCE_PATH "vsn_roce_path"
#define VSN_MAP_ROCE_QP	  "vsn_roce_qp"

#define VSN_EVENTS_BYTES (1 << 22) /* ring buffer size */
#define VSN_MAX_CMDS	 (1 << 18) /* outstanding commands tracked */

/* NVMe/TCP PDU types (NVMe/TCP transport specification). */
enum vsn_nvme_pdu {
	NVME_TCP_ICREQ = 0x00,
	NVME_TCP_ICRESP = 0x01,
	NVME_TCP_H2C_TERM = 0x02,
	NVME_TCP_C2H_TERM = 0x03,
	NVME_TCP_CMD = 0x04,
	NVME_TCP_RSP = 0x05,
	NVME_TCP_H2C_DATA = 0x06,
	NVME_TCP_C2H_DATA = 0x07,
	NVME_TCP_R2T = 0x09,
};

/*
 * The parser reads at most this much of a PDU header (a command capsule's
 * NLB ends at byte 58), and at most VSN_PDUS_PER_PKT PDU headers per packet:
 * a TSO/GRO super-frame carrying more is followed up to the cap, then the
 * connection resynchronises on a later segment that starts with a header
 * it can trust.
 */
#define VSN_PDU_HDR_MAX	 64
#define VSN_PDUS_PER_PKT 16
#define VSN_PDU_MAX_LEN	 (1 << 24) /* larger plen: not a header */

enum vsn_pdu_flags {
	VSN_PDU_SYNCED = 1 << 0, /* skip counts to the next header */
	VSN_PDU_QID = 1 << 1,	 /* qid learned from Fabrics Connect */
	VSN_PDU_CLOSED = 1 << 2, /* FIN or RST seen (close event sent) */
	VSN_PDU_LBA = 1 << 3,	 /* next_lba and lba_nsid hold a read/write's end */
};

/* One direction of one NVMe/TCP connection, kept in its vsn_conn entry. */
struct vsn_pdu_state {
	__u32 next_seq; /* TCP sequence of the next payload byte expected */
	__u32 skip;	/* bytes left of the current PDU after its header */
	__u16 qid;	/* queue id (valid with VSN_PDU_QID) */
	__u8 hdr_have;	/* bytes of a split header kept in hdr */
	__u8 flags;	/* enum vsn_pdu_flags */
	__u32 lba_nsid; /* namespace of the last read or write (VSN_PDU_LBA) */
	__u64 next_lba; /* where it ended: the next one starting here is sequential */
	__u8 hdr[VSN_PDU_HDR_MAX];
};

enum vsn_event_type {
	VSN_EV_CMD = 1,	       /* an I/O command capsule */
	VSN_EV_RESP = 2,       /* its response (latency when matched) */
	VSN_EV_CONN_OPEN = 3,  /* a new storage connection */
	VSN_EV_CONN_CLOSE = 4, /* FIN or RST seen */
	VSN_EV_RESYNC = 5,     /* the parser lost track and resynchronised */
};

struct vsn_event {
	__u64 ts_ns;
	__u32 type; /* enum vsn_event_type */
	__u32 conn_id;
	__u32 vm_id;
	__u32 volume_id;
	__u32 backend_id;
	__u32 path_id;
	__u16 qid;
	__u16 cid;
	__u8 opcode;
	__u8 dir;     /* enum vsn_conn_dir of the packet that made it */
	__u16 status; /* response: status field (SCT/SC) */
	__u32 nsid;
	__u32 nlb; /* blocks (NLB + 1), 0 when not a read/write */
	__u64 slba;
	__u64 latency_ns; /* response matched to its command; else 0 */
	__u32 flags;	  /* enum vsn_event_flags */
	__u32 pad;
};

enum vsn_event_flags {
	/* A read or write starting where the previous one on its queue (the
	 * connection) and namespace ended, as biopattern counts it.  Decided
	 * in the datapath, which sees every command, so that it stays right
	 * when only one command in N is reported. */
	VSN_EVF_SEQ = 1 << 0,
};

/* vsn_tel_cfg: array[1], written by userspace. */
struct vsn_tel_cfg {
	__u32 enabled; /* parse NVMe/TCP at all */
	/* Report and time one command in N (0, 1: all); every command is
	 * counted.  A response is reported when its command was. */
	__u32 sample_every;
	__u32 max_per_sec; /* per CPU; 0 = no cap */
	__u32 pad;
};

/* vsn_tel_stats: per-CPU array indexed by this enum. */
enum vsn_tel_stat {
	VSN_T_PDUS = 0,	   /* PDU headers parsed */
	VSN_T_CMDS,	   /* I/O commands seen */
	VSN_T_RESPS,	   /* responses seen */
	VSN_T_ADMIN,	   /* admin-queue commands (not counted as I/O) */
	VSN_T_MATCHED,	   /* responses matched to a command */
	VSN_T_UNMATCHED,   /* responses without a known command (not counted
			    * while sampling: most commands are not kept) */
	VSN_T_RESYNCS,	   /* times the parser lost track */
	VSN_T_CAPPED,	   /* PDUs past the per-packet cap */
	VSN_T_EV_SENT,	   /* events written to the ring */
	VSN_T_EV_DROPPED,  /* events lost: ring full */
	VSN_T_EV_SAMPLED,  /* events skipped by sampling or the rate cap */
	VSN_T_READ_CMDS,   /* reads */
	VSN_T_WRITE_CMDS,  /* writes */
	VSN_T_READ_BLKS,   /* blocks read (sum of NLB + 1) */
	VSN_T_WRITE_BLKS,  /* blocks written */
	VSN_T_ERRORS,	   /* responses with a non-zero status */
	VSN_T_H2C_BYTES,   /* data bytes in H2CData PDUs (towards storage) */
	VSN_T_C2H_BYTES,   /* data bytes in C2HData PDUs (from storage) */
	VSN_T_ERR_GENERIC, /* errors by status code type: generic command */
	VSN_T_ERR_CMD,	   /* command specific */
	VSN_T_ERR_MEDIA,   /* media and data integrity */
	VSN_T_ERR_PATH,	   /* path related */
	VSN_T_ERR_OTHER,   /* vendor specific and reserved types */
	VSN_T_SEQ_CMDS,	   /* reads and writes that were sequential (VSN_EVF_SEQ) */
	VSN_T_MAX,
};

/*
 * vsn_cmds: outstanding commands, for latency.  An array indexed by a hash
 * of the key, written in place (no insertion, no lock on the packet path);
 * a response matches only a slot holding its own key, so a collision loses
 * a latency sample (counted unmatched), never makes a wrong one.
 */
struct vsn_cmd_key {
	__u32 conn_id;
	__u16 qid;
	__u16 cid;
};

struct vsn_cmd {
	__u64 ts_ns;
	__u32 nlb;
	__u32 path_id; /* the path the command went out on */
	__u8 opcode;
	__u8 pad[7];
};

struct vsn_cmd_slot {
	struct vsn_cmd_key key; /* conn_id 0: free */
	struct vsn_cmd cmd;
};

/*
 * vsn_lat_hist: per-CPU array of log2 latency buckets (bucket b counts
 * latencies in [2^b, 2^(b+1)) ns), per backend, per path and per VM:
 * index = (scope_base + id) * VSN_LAT_BUCKETS + b.
 */
#define VSN_LAT_BUCKETS	  32
#define VSN_LAT_BE_BASE	  0
#define VSN_LAT_PATH_BASE VSN_MAX_BACKENDS
#define VSN_LAT_VM_BASE	  (VSN_MAX_BACKENDS + VSN_MAX_PATHS)
#define VSN_LAT_IDS	  (VSN_MAX_BACKENDS + VSN_MAX_PATHS + VSN_MAX_VMS)

/*
 * RoCEv2: packets per BTH opcode class, per path (vsn_roce_path: per-CPU
 * array of struct vsn_counter, index = path * VSN_ROCE_CLASSES + class;
 * towards storage on the path's uplink, and from storage attributed to the
 * path the flow currently takes).  CNPs and ECN CE marks are the
 * congestion signals.
 */
enum vsn_roce_class {
	VSN_ROCE_SEND = 0,
	VSN_ROCE_WRITE,
	VSN_ROCE_READ_REQ,
	VSN_ROCE_READ_RESP,
	VSN_ROCE_ACK,
	VSN_ROCE_OTHER,
	VSN_ROCE_CNP,	 /* opcode 0x81: congestion notification */
	VSN_ROCE_CE,	 /* any RoCE packet arriving with ECN CE */
	VSN_ROCE_CE_OUT, /* towards storage already CE-marked */
	VSN_ROCE_ATOMIC, /* atomics and their acknowledgements */
	VSN_ROCE_CLASSES,
};

#define BTH_OPCODE_CNP 0x81

/* vsn_roce_qp: LRU hash, per VM and destination queue pair. */
struct vsn_roce_qp_key {
	__u32 vm_id;
	__u32 dest_qp; /* 24 bits */
	__u8 dir;      /* enum vsn_conn_dir */
	__u8 pad[3];
};

#endif /* VSN_TELEMETRY_H */
