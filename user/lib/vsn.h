/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* The base of the library: common options, the pinned maps (pins.c, maps.c),
 * where interfaces live; errors and messages come with lib/err.h. */
#ifndef VSN_H
#define VSN_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <linux/types.h>

#include "vsn_types.h"
#include "lib/err.h"

#define VSN_VERSION	    "0.1.0"
#define VSN_DEFAULT_PIN_DIR "/sys/fs/bpf/vsn"
#define VSN_PIN_ENV	    "VSN_PIN_DIR"

/* vsn's TC filters are found again by this handle and priority. */
#define VSN_TC_HANDLE 0x7653
#define VSN_TC_PRIO   0x7653

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
	int vm_state;
	int vm_drops;
};

/* Before pins_open(): pins_close() of this is a no-op. */
#define VSN_MAPS_NONE                                                                              \
	{                                                                                          \
		.vm_if = -1, .volumes = -1, .backends = -1, .chash = -1, .paths = -1,              \
		.routes = -1, .conns = -1, .ifaces = -1, .path_stats = -1, .be_stats = -1,         \
		.vm_stats = -1, .reasons = -1, .events = -1, .tel_cfg = -1, .tel_stats = -1,       \
		.lat_hist = -1, .roce_path = -1, .roce_qp = -1, .path_live = -1, .cmds = -1,       \
		.vm_state = -1, .vm_drops = -1, .gen = -1                                          \
	}

/* pins.c: the *_err forms fill err and print nothing; the others print the
 * error (vsn_err) themselves. */
int pins_env_ok(const struct vsn_opts *o, struct vsn_error *err);
int pins_check_env(const struct vsn_opts *o);
int pins_open_err(const struct vsn_opts *o, struct vsn_maps *m, struct vsn_error *err);
int pins_open(const struct vsn_opts *o, struct vsn_maps *m);
void pins_close(struct vsn_maps *m);
/* Unpin every map and program of the datapath and remove the pin dir. */
void pins_remove_all(const struct vsn_opts *o);
int pins_path(const struct vsn_opts *o, const char *name, char *buf, size_t len);

/* Where an interface recorded in vsn_ifaces is: pins outlive namespaces. */
__u64 netns_ino(void);
bool iface_is_here(unsigned ifindex, const struct vsn_iface *v);

/* maps.c: reading and writing the pinned maps. */
/* Sum of one per-CPU struct vsn_counter over all CPUs. */
int percpu_counter(int fd, const void *key, struct vsn_counter *sum);
/* What VM vm_id sent that the datapath refused, summed over CPUs: sum[i]
 * packets for reason VSN_VM_DROP_FIRST + i. */
int vm_drops_sum(int fd, __u32 vm_id, __u64 sum[VSN_VM_DROPS]);
/* Sum of one per-CPU __u64 over all CPUs. */
int percpu_u64(int fd, __u32 idx, __u64 *sum);
/* After any change to vsn_routes: connections drop their cached paths
 * (the route generation, vsn_gen, goes up by one). */
int maps_routes_changed(const struct vsn_maps *m, struct vsn_error *err);
/* The name of an enum vsn_reason, as 'vsn show counters' prints it. */
const char *vsn_reason_name(unsigned r);

#endif /* VSN_H */
