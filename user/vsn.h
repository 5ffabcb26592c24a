/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* What every vsn subcommand shares: options, the pinned maps, messages. */
#ifndef VSN_H
#define VSN_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <linux/types.h>

#include "vsn_types.h"

#define VSN_DEFAULT_PIN_DIR "/sys/fs/bpf/vsn"
#define VSN_PIN_ENV	    "VSN_PIN_DIR"

/* Options common to all subcommands, parsed once in main(). */
struct vsn_opts {
	const char *pin_dir;
	bool json;
	bool verbose;
};

/* File descriptors of the pinned maps, opened by pins_open(). */
struct vsn_maps {
	int vm_if;
	int volumes;
	int backends;
	int chash;
	int paths;
	int routes;
	int conns;
	int ifaces;
	int path_stats;
	int be_stats;
	int vm_stats;
	int reasons;
	int events;
	int tel_cfg;
	int tel_stats;
	int lat_hist;
	int roce_path;
	int roce_qp;
	int path_live;
	int cmds;
	int gen;
};

/* Before pins_open(): pins_close() of this is a no-op. */
#define VSN_MAPS_NONE                                                                              \
	{                                                                                          \
		.vm_if = -1, .volumes = -1, .backends = -1, .chash = -1, .paths = -1,              \
		.routes = -1, .conns = -1, .ifaces = -1, .path_stats = -1, .be_stats = -1,         \
		.vm_stats = -1, .reasons = -1, .events = -1, .tel_cfg = -1, .tel_stats = -1,       \
		.lat_hist = -1, .roce_path = -1, .roce_qp = -1, .path_live = -1, .cmds = -1,       \
		.gen = -1                                                                          \
	}

/* Messages: errors go to stderr prefixed "vsn: ", and say what to do. */
void vsn_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void vsn_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void vsn_info(const struct vsn_opts *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* pins.c */
int pins_check_env(const struct vsn_opts *o);
int pins_open(const struct vsn_opts *o, struct vsn_maps *m);
void pins_close(struct vsn_maps *m);
/* Unpin every map and program of the datapath and remove the pin dir. */
void pins_remove_all(const struct vsn_opts *o);
int pins_path(const struct vsn_opts *o, const char *name, char *buf, size_t len);

/* Where an interface recorded in vsn_ifaces is: pins outlive namespaces. */
__u64 netns_ino(void);
bool iface_is_here(unsigned ifindex, const struct vsn_iface *v);

/* Sum of one per-CPU struct vsn_counter over all CPUs. */
int percpu_counter(int fd, const void *key, struct vsn_counter *sum);
/* Sum of one per-CPU __u64 over all CPUs (telemetry.c). */
int percpu_u64(int fd, __u32 idx, __u64 *sum);
/* The name of an enum vsn_reason, as 'vsn show counters' prints it. */
const char *vsn_reason_name(unsigned r);

/* verify.c: the datapath's programs, each loaded alone with the verifier's
 * statistics. */
enum vsn_prog_id {
	VSN_PROG_VM_INGRESS,
	VSN_PROG_UP_EGRESS,
	VSN_PROG_XDP,
	VSN_PROG_UP_INGRESS,
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

/* Subcommands: each returns the process exit status. */
int cmd_attach(const struct vsn_opts *o, int argc, char **argv);
int cmd_detach(const struct vsn_opts *o, int argc, char **argv);
int cmd_status(const struct vsn_opts *o, int argc, char **argv);
int cmd_apply(const struct vsn_opts *o, int argc, char **argv);
int cmd_show(const struct vsn_opts *o, int argc, char **argv);
int cmd_route(const struct vsn_opts *o, int argc, char **argv);
int cmd_backend(const struct vsn_opts *o, int argc, char **argv);
int cmd_events(const struct vsn_opts *o, int argc, char **argv);
int cmd_telemetry(const struct vsn_opts *o, int argc, char **argv);
int cmd_profile(const struct vsn_opts *o, int argc, char **argv);
int cmd_top(const struct vsn_opts *o, int argc, char **argv);
int cmd_health(const struct vsn_opts *o, int argc, char **argv);
int cmd_daemon(const struct vsn_opts *o, int argc, char **argv);
int cmd_bw(const struct vsn_opts *o, int argc, char **argv);
int cmd_verify(const struct vsn_opts *o, int argc, char **argv);
int show_telemetry(const struct vsn_opts *o, const struct vsn_maps *m);
/* Paths' and backends' health as the running daemon judges it (daemon.c). */
int show_health(const struct vsn_opts *o);

#endif /* VSN_H */
