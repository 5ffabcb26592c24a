// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Text to addresses, MACs and rates and back, strict on purpose: a typo
 * must be an error, not a different number.  The config file and the CLI
 * read values with these.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/values.h"

int parse_addr(const char *s, struct vsn_addr *out, bool *is_v6)
{
	struct in6_addr a6;
	struct in_addr a4;
	bool v6;

	if (!s || !out)
		return -EINVAL;
	if (inet_pton(AF_INET, s, &a4) == 1) {
		memset(&a6, 0, sizeof(a6));
		a6.s6_addr[10] = 0xff;
		a6.s6_addr[11] = 0xff;
		memcpy(&a6.s6_addr[12], &a4, sizeof(a4));
		v6 = false;
	} else if (inet_pton(AF_INET6, s, &a6) == 1) {
		/* "::ffff:a.b.c.d" is stored exactly like a.b.c.d: IPv4. */
		v6 = !IN6_IS_ADDR_V4MAPPED(&a6);
	} else {
		return -EINVAL;
	}
	memcpy(out, &a6, sizeof(*out));
	if (is_v6)
		*is_v6 = v6;
	return 0;
}

int parse_prefix(const char *s, struct vsn_addr *addr, struct vsn_addr *mask, bool *is_v6,
		 unsigned *len)
{
	char buf[INET6_ADDRSTRLEN + 8], *slash, *end;
	unsigned long n, bits;
	bool v6;

	if (!s || strlen(s) >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, strlen(s) + 1);
	slash = strchr(buf, '/');
	if (slash)
		*slash = '\0';
	if (parse_addr(buf, addr, &v6))
		return -EINVAL;
	bits = v6 ? 128 : 32;
	n = bits;
	if (slash) {
		errno = 0;
		n = strtoul(slash + 1, &end, 10);
		if (errno || *end || end == slash + 1 || n > bits)
			return -EINVAL;
	}
	if (!v6)
		n += 96; /* the ::ffff: part always matches */
	for (unsigned long i = 0; i < 4; i++) {
		unsigned long lo = 32 * i, w = n >= lo + 32 ? 32 : n > lo ? n - lo : 0;

		mask->a[i] = w ? htonl(w == 32 ? 0xffffffffu : ~(0xffffffffu >> w)) : 0;
		if (addr->a[i] & ~mask->a[i])
			return -EINVAL; /* host bits set */
	}
	if (is_v6)
		*is_v6 = v6;
	if (len)
		*len = (unsigned)(v6 ? n : n - 96);
	return 0;
}

const char *addr_to_str(const struct vsn_addr *a, char *buf, size_t len)
{
	static const __u32 v4map[3] = {0, 0, 0};

	if (!memcmp(a->a, v4map, 8) && a->a[2] == htonl(0xffff))
		return inet_ntop(AF_INET, &a->a[3], buf, len);
	return inet_ntop(AF_INET6, a->a, buf, len);
}

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	return tolower((unsigned char)ch) - 'a' + 10;
}

int parse_mac(const char *s, uint8_t mac[6])
{
	uint8_t tmp[6];
	unsigned i;

	if (!s || strlen(s) != 17)
		return -EINVAL;
	for (i = 0; i < 6; i++) {
		const char *p = s + 3 * (size_t)i;

		if (!isxdigit((unsigned char)p[0]) || !isxdigit((unsigned char)p[1]) ||
		    (i < 5 && p[2] != ':'))
			return -EINVAL;
		tmp[i] = (uint8_t)(hexval(p[0]) << 4 | hexval(p[1]));
	}
	memcpy(mac, tmp, sizeof(tmp));
	return 0;
}

/* No "bps" units: tc reads those as bytes, which would confuse. */
uint64_t rate_unit(const char *suffix)
{
	static const struct {
		const char *suffix;
		uint64_t mult;
	} units[] = {
	    {"", 1},
	    {"bit", 1},
	    {"k", 1000ULL},
	    {"kbit", 1000ULL},
	    {"m", 1000000ULL},
	    {"mbit", 1000000ULL},
	    {"g", 1000000000ULL},
	    {"gbit", 1000000000ULL},
	    {"t", 1000000000000ULL},
	    {"tbit", 1000000000000ULL},
	};

	for (unsigned i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (!strcasecmp(suffix, units[i].suffix))
			return units[i].mult;
	return 0;
}

int parse_rate(const char *s, uint64_t *bps)
{
	const char *p = s;
	uint64_t v = 0, mult;

	if (!s || !bps || !isdigit((unsigned char)*p))
		return -EINVAL;
	for (; isdigit((unsigned char)*p); p++)
		if (__builtin_mul_overflow(v, 10, &v) ||
		    __builtin_add_overflow(v, (uint64_t)(*p - '0'), &v))
			return -ERANGE;
	mult = rate_unit(p);
	if (!mult)
		return -EINVAL;
	if (__builtin_mul_overflow(v, mult, &v))
		return -ERANGE;
	*bps = v;
	return 0;
}

/* Decimal or 0x-hex; strtoll's base 0 would read "010" as octal. */
int parse_int(const char *s, int64_t *out)
{
	const char *p = s;
	bool neg = false;
	uint64_t v = 0;
	int base = 10;

	if (*p == '-') {
		neg = true;
		p++;
	}
	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
		base = 16;
		p += 2;
	}
	if (!*p)
		return -EINVAL;
	for (; *p; p++) {
		if (base == 10 ? !isdigit((unsigned char)*p) : !isxdigit((unsigned char)*p))
			return -EINVAL;
		if (__builtin_mul_overflow(v, (uint64_t)base, &v) ||
		    __builtin_add_overflow(v, (uint64_t)hexval(*p), &v) || v > INT64_MAX)
			return -ERANGE;
	}
	*out = neg ? -(int64_t)v : (int64_t)v;
	return 0;
}
