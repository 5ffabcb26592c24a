/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The workload profiler: turns the datapath's command/response events into
 * per-VM and per-connection profiles (IOPS, mix, sizes, sequentiality, queue
 * depth, latency percentiles) over a time window, and classifies each VM.
 */
#ifndef VSN_PROFILE_H
#define VSN_PROFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <linux/types.h>

#include "vsn_types.h"

/*
 * Classification thresholds, in one place (docs/profile.md explains them):
 * read-heavy at or above READ_HEAVY_PCT reads, write-heavy at or below
 * WRITE_HEAVY_PCT, mixed between; sequential when at least SEQ_PCT of
 * commands start where the previous one on their connection ended; small
 * when the median I/O is at most SMALL_IO_BYTES.
 */
#define PROF_READ_HEAVY_PCT  80.0
#define PROF_WRITE_HEAVY_PCT 20.0
#define PROF_SEQ_PCT	     50.0
#define PROF_SMALL_IO_BYTES  32768ull

struct prof;

struct prof *prof_new(unsigned lba_size);
void prof_free(struct prof *p);
/* The datapath's sample_every (vsn_tel_cfg): rates are scaled by it. */
void prof_set_sampling(struct prof *p, unsigned sample_every);
/* Feed one event (in time order). */
int prof_add(struct prof *p, const struct vsn_event *e);
/* Forget what is older than now_ns - keep_ns (live views). */
void prof_expire(struct prof *p, __u64 now_ns, __u64 keep_ns);
/* Print the profile of events in [from_ns, to_ns]; JSON or text. */
void prof_print(struct prof *p, __u64 from_ns, __u64 to_ns, bool json, FILE *f);
/* Parse one JSON line written by `vsn -j events`. */
int prof_parse_line(const char *line, struct vsn_event *e);

#endif /* VSN_PROFILE_H */
