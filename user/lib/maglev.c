// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "lib/maglev.h"

/* Two independent hashes of a backend id give its permutation of slots;
 * the id (not the position in the list) keeps tables stable across edits. */
static uint32_t hash32(uint32_t x, uint32_t seed)
{
	uint64_t h = ((uint64_t)x << 32 | seed) * 0x9e3779b97f4a7c15ull;

	h ^= h >> 29;
	h *= 0xbf58476d1ce4e5b9ull;
	h ^= h >> 32;
	return (uint32_t)h;
}

struct mg_backend {
	uint32_t id, weight, offset, skip, next;
	uint64_t credit;
};

static int by_id(const void *a, const void *b)
{
	const struct mg_backend *x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

int maglev_build(const uint32_t *ids, const uint32_t *weights, unsigned n, uint32_t *table,
		 unsigned size)
{
	struct mg_backend *be = NULL;
	unsigned i, filled = 0;
	uint32_t wmax = 0;
	int err = 0;

	if (size < 3)
		return -EINVAL;
	memset(table, 0, size * sizeof(*table));
	if (!n)
		return 0;
	be = calloc(n, sizeof(*be));
	if (!be)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		if (!weights[i] || !ids[i]) {
			err = -EINVAL;
			goto cleanup;
		}
		if (weights[i] > wmax)
			wmax = weights[i];
		be[i].id = ids[i];
		be[i].weight = weights[i];
		be[i].offset = hash32(ids[i], 0x5eed0001) % size;
		be[i].skip = hash32(ids[i], 0x5eed0002) % (size - 1) + 1;
	}
	/* The same set gives the same table whatever order it was listed in. */
	qsort(be, n, sizeof(*be), by_id);
	/* Round-robin over backends; a backend takes a turn each time its
	 * weight credit reaches the largest weight (weighted Maglev). */
	while (filled < size) {
		for (i = 0; i < n && filled < size; i++) {
			be[i].credit += be[i].weight;
			if (be[i].credit < wmax)
				continue;
			be[i].credit -= wmax;
			for (;;) {
				uint32_t slot =
				    (uint32_t)((be[i].offset + (uint64_t)be[i].next * be[i].skip) %
					       size);

				be[i].next++;
				if (!table[slot]) {
					table[slot] = be[i].id;
					filled++;
					break;
				}
			}
		}
	}
cleanup:
	free(be);
	return err;
}
