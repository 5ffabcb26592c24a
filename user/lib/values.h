/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Text to addresses, MACs and rates and back (values.c). */
#ifndef VSN_VALUES_H
#define VSN_VALUES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/types.h> /* vsn_types.h needs it first */

#include "vsn_types.h"

/* IPv4 (held IPv4-mapped) or IPv6; *is_v6 says which. */
int parse_addr(const char *s, struct vsn_addr *out, bool *is_v6);
/*
 * "ADDR" or "ADDR/LEN": the address, and the mask of its first LEN bits
 * over the stored 128-bit form (IPv4: LEN of 32, and the 96 bits of the
 * ::ffff: prefix); all ones without /LEN.  -EINVAL when malformed, LEN out
 * of range, or host bits set.
 */
int parse_prefix(const char *s, struct vsn_addr *addr, struct vsn_addr *mask, bool *is_v6,
		 unsigned *len);
/* The inverse: dotted quad for IPv4-mapped, else IPv6 text. */
const char *addr_to_str(const struct vsn_addr *a, char *buf, size_t len);
int parse_mac(const char *s, uint8_t mac[6]);
/* Whole bits per second with an optional unit: "10gbit", "100m", "1000". */
int parse_rate(const char *s, uint64_t *bps);
/* Decimal or 0x-hex, with an optional '-'. */
int parse_int(const char *s, int64_t *out);
/* Bits per second of one unit ("", "k", "mbit", ...); 0 if unknown. */
uint64_t rate_unit(const char *suffix);

#endif /* VSN_VALUES_H */
