/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * What the per-packet bench's wrapper programs (pkt_bench_*.bpf.c) and the
 * bench tool (vbn_tool.c) share: the run configuration, one array entry
 * the tool writes before every run.
 */
#ifndef VBN_PKT_BENCH_H
#define VBN_PKT_BENCH_H

/* Bytes of the packet the wrapper saves and puts back: Ethernet, IPv4 and
 * TCP (or UDP + BTH), everything vsn rewrites. */
#define BENCH_HEAD 64

enum bench_flags {
	BENCH_F_RESTORE = 1 << 0, /* put the head back after each run but the last */
	BENCH_F_DELETE = 1 << 1,  /* delete the connection the run created (SYN) */
	BENCH_F_SEQ = 1 << 2,	  /* TCP seq = seq0 + visit * seq_step */
};

struct bench_cfg {
	__u32 n;	/* connections cycled through: run k uses k % n */
	__u32 field;	/* packet offset of the IPv4 address that selects it */
	__u32 addr0;	/* that address for connection 0, host byte order */
	__u32 flags;	/* enum bench_flags */
	__u32 seq0;	/* host byte order */
	__u32 seq_step; /* payload bytes per packet */
	__u32 last;	/* run number of the last run (not restored) */
	__u32 stage;	/* b_w_stage: how far along vsn's hit path to go */
	__u64 ctr;	/* runs so far (the tool sets it) */
};

#endif /* VBN_PKT_BENCH_H */
