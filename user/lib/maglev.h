/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Maglev consistent hashing: a lookup table in which removing a backend
 * moves only its own slots and adding one takes about 1/N of the rest. */
#ifndef VSN_MAGLEV_H
#define VSN_MAGLEV_H

#include <stdint.h>

/*
 * Fill table[0..size) (size prime) with backend ids, each backend getting a
 * share proportional to its weight.  n == 0 fills zeros (no backend).
 * Returns 0, or -EINVAL for a bad size/weight, -ENOMEM.
 */
int maglev_build(const uint32_t *ids, const uint32_t *weights, unsigned n, uint32_t *table,
		 unsigned size);

#endif /* VSN_MAGLEV_H */
