/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* NVMe health of a storage backend: identity, SMART/health log and ANA
 * state, read either from a remote target over vsn's own NVMe/TCP admin
 * client (nvmf_admin.h) or from a controller this host's kernel has
 * (libnvme).  A worker thread keeps the latest result of every source for
 * the daemon and signals changes through an eventfd. */
#ifndef VSN_HEALTH_NVME_H
#define VSN_HEALTH_NVME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/health/nvmf_admin.h"

#define HEALTH_ANA_MAX 16

struct nvme_health_ana {
	uint32_t grpid;
	uint8_t state; /* enum nvme_ana_state */
	uint32_t nnsids;
};

struct nvme_health {
	uint32_t backend_id;
	char source[96]; /* "10.0.0.2:4420" or "nvme0" */
	char subnqn[NVME_NQN_LENGTH];
	bool reachable; /* every read below succeeded */
	char error[400];

	/* Identify Controller */
	uint16_t cntlid;
	char model[41];
	char serial[21];
	char firmware[9];
	uint32_t version; /* VS: major << 16 | minor << 8 */

	/* SMART / Health Information log (02h), all namespaces */
	uint8_t critical_warning; /* enum nvme_smart_crit bits */
	uint16_t temperature_k;
	uint8_t avail_spare;
	uint8_t spare_thresh;
	uint8_t percent_used;
	uint64_t media_errors; /* 128-bit counters, saturated at UINT64_MAX */
	uint64_t num_err_log_entries;
	uint64_t data_units_read;
	uint64_t data_units_written;
	uint64_t host_reads;
	uint64_t host_writes;
	uint64_t power_on_hours;
	uint64_t unsafe_shutdowns;

	/* Asymmetric Namespace Access log (0Ch) */
	bool ana_supported;
	uint64_t ana_chgcnt;
	unsigned ana_groups; /* in the log; the first HEALTH_ANA_MAX are kept */
	unsigned n_ana;
	struct nvme_health_ana ana[HEALTH_ANA_MAX];

	/* remote: how the Connect data went ("in-capsule" or "r2t") */
	char connect_data[12];

	/* local controllers: what the kernel says about the connection */
	char transport[16];
	char traddr[64];
	uint16_t trsvcid;
	char state[16];

	double rtt_ms;	/* round trip of the SMART/health log read */
	uint64_t ts_ns; /* CLOCK_MONOTONIC when the result was taken */
};

/* A kernel-visible controller: by name, or by fabrics address (port 0 and an
 * empty NQN match any); empty: every controller. */
struct health_local_sel {
	char dev[32];
	char traddr[64];
	uint16_t trsvcid;
	char subnqn[NVME_NQN_LENGTH];
};

struct health_src {
	uint32_t backend_id;
	bool local;
	struct nvmf_target remote;
	struct health_local_sel sel;
};

const char *health_ana_state_name(uint8_t state);
/* "spare,temperature,..." for the set critical warning bits ("none"). */
void health_crit_names(uint8_t cw, char *buf, size_t len);

void health_from_smart(struct nvme_health *h, const struct nvme_smart_log *l);
void health_from_id(struct nvme_health *h, const struct nvme_id_ctrl *id);
/* Bounded parse of an ANA log; 0 or -1 with a message in h->error. */
int health_parse_ana(struct nvme_health *h, const void *buf, size_t len);
/* Bytes to ask for the whole ANA log of this controller (multiple of 4). */
uint32_t health_ana_log_len(const struct nvme_id_ctrl *id);
/* A change the daemon acts on: reachability, critical warning, ANA states. */
bool health_changed(const struct nvme_health *a, const struct nvme_health *b);

/* One complete probe over a new admin connection (closed afterwards).
 * Returns 0 when reachable, -1 otherwise (h->error says why). */
int health_probe_remote(const struct nvmf_target *t, const struct nvmf_admin_opts *o,
			struct nvme_health *h);

/* "nvme0", "/dev/nvme0", "ADDR[:PORT]" or "" into a selector. */
int health_local_sel_parse(const char *s, struct health_local_sel *sel, char *err, size_t len);
/* The first matching local controller; -1 with h->error when none or on error. */
int health_read_local(const struct health_local_sel *sel, struct nvme_health *h);
/* Every matching local controller (malloc'ed array in *out).  Returns the
 * count, or -1 when the scan itself failed (message in err). */
int health_list_local(const struct health_local_sel *sel, struct nvme_health **out, char *err,
		      size_t len);

/* Background polling, one thread per source: a hung target, or a local
 * ioctl stuck in the kernel, delays only its own source. */
struct health_worker;
int health_worker_start(struct health_worker **w, const struct health_src *srcs, unsigned n,
			unsigned interval_ms, unsigned timeout_ms, int notify_fd);
/* Latest result per source, in srcs order; returns how many were copied. */
int health_worker_snapshot(struct health_worker *w, struct nvme_health *out, unsigned n);
void health_worker_stop(struct health_worker *w);
/* Poll source idx (a remote one) through interface ifname from its next
 * poll on ("" : the kernel's route); a change reconnects. */
void health_worker_set_ifname(struct health_worker *w, unsigned idx, const char *ifname);

#endif /* VSN_HEALTH_NVME_H */
