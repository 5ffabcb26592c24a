/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The datapath's programs, each loaded alone with the verifier's statistics
 * (verifier.c): what `vsn verify` reports, and what `vsn attach` uses to
 * explain a program the kernel refuses.
 */
#ifndef VSN_VERIFIER_H
#define VSN_VERIFIER_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>

/* The kernel's limit on processed instructions (BPF_COMPLEXITY_LIMIT_INSNS),
 * and vsn's budget: a quarter of it, on every kernel vsn supports. */
#define VERIFIER_LIMIT 1000000
#define VERIFY_BUDGET  (VERIFIER_LIMIT / 4)
/* A log buffer that holds the statistics (log level 4). */
#define VERIFY_LOG_STATS (1u << 20)

enum vsn_prog_id {
	VSN_PROG_VM_INGRESS,
	VSN_PROG_UP_EGRESS,
	VSN_PROG_XDP,
	VSN_PROG_UP_INGRESS,
	VSN_PROG_UP_XFER,
	VSN_N_PROGS
};
struct vsn_prog_desc {
	const char *name;
	const char *object; /* "tc" or "xdp" */
	const char *what;
};
extern const struct vsn_prog_desc vsn_progs[VSN_N_PROGS];

struct vsn_verif {
	const struct vsn_prog_desc *desc;
	int err; /* 0: loaded; else -errno */
	long insns, limit, max_states_per_insn, total_states, peak_states, time_us;
	char stack[64]; /* each function's frame, "X+Y+Z" as the kernel prints */
	long stack_max;
	__u32 xlated, jited;
};
int verif_load_one(const struct vsn_prog_desc *d, __u32 log_level, char *log, size_t log_len,
		   struct vsn_verif *v);
/* d refused: say why (program, kernel, the log's last lines), keep the whole
 * log in a file.  Returns 0 when d loads alone after all. */
int verif_explain(const struct vsn_prog_desc *d, bool verbose);
/* The first program of obj (those set to load) that the kernel refuses
 * alone, explained as verif_explain() does; 0 when none is. */
struct bpf_object;
int verif_explain_obj(struct bpf_object *obj, bool verbose);
const char *kernel_release(void);

#endif /* VSN_VERIFIER_H */
