/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Prometheus text exposition format (version 0.0.4), built in memory and
 * written atomically for node_exporter's textfile collector.
 *
 * Use, once per tick:
 *	prom_reset(&b);
 *	prom_family(&b, "vsn_path_bytes_total", PROM_COUNTER, "Bytes sent per path.");
 *	prom_sample_u64(&b, labels, 2, bytes);
 *	...
 *	if (prom_write_atomic(dir, "vsn.prom", &b))
 *		vsn_err("%s", prom_error(&b));
 *
 * Every call returns 0 or a negative errno; on error the buffer is left as
 * it was before the call and prom_error() says what was wrong.
 */
#ifndef VSN_PROM_H
#define VSN_PROM_H

#include <stddef.h>
#include <stdint.h>

enum prom_type {
	PROM_COUNTER,
	PROM_GAUGE,
	PROM_HISTOGRAM,
};

struct prom_label {
	const char *key;
	const char *value; /* any UTF-8; escaped on output */
};

struct prom_buf {
	char *data;
	size_t len;
	size_t cap;
	char **names; /* families written since the last reset */
	enum prom_type *types;
	unsigned nfam;
	unsigned capfam;
	int cur; /* index of the open family, -1 before the first */
	char err[256];
};

void prom_init(struct prom_buf *b);
/* Forget the text and the families; keeps the memory for the next tick. */
void prom_reset(struct prom_buf *b);
void prom_free(struct prom_buf *b);

/*
 * Start a family: writes "# HELP" and "# TYPE".  The name must match
 * [a-zA-Z_:][a-zA-Z0-9_:]*, a counter's must end in "_total", and no
 * family (nor a histogram's _bucket/_sum/_count series) may repeat.
 */
int prom_family(struct prom_buf *b, const char *name, enum prom_type type, const char *help);

/* One sample of the open counter or gauge family (counters: >= 0). */
int prom_sample(struct prom_buf *b, const struct prom_label *l, unsigned nl, double value);
int prom_sample_u64(struct prom_buf *b, const struct prom_label *l, unsigned nl, uint64_t value);

/*
 * One histogram series of the open histogram family: le[i] are the finite
 * bucket upper bounds (seconds for latencies), strictly increasing;
 * cum[i] the cumulative counts (non-decreasing).  The "+Inf" bucket is
 * count, which must be >= cum[n - 1].
 */
int prom_histogram(struct prom_buf *b, const struct prom_label *l, unsigned nl, const double *le,
		   const uint64_t *cum, unsigned n, double sum, uint64_t count);

/*
 * Write the buffer to DIR/NAME (NAME ends in ".prom") through
 * DIR/.NAME.tmp.PID, fsync and rename: readers see the old file or the
 * new one, never part of one.
 */
int prom_write_atomic(const char *dir, const char *name, struct prom_buf *b);

/* The message of the last failed call. */
const char *prom_error(const struct prom_buf *b);

#endif /* VSN_PROM_H */
