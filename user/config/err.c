// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Config error messages: "FILE:LINE: SEC[IDX].KEY[SUB]: reason".  The line
 * map, when there is one, knows the line of the field itself; otherwise
 * the caller's line (usually the item's) is used.  With an error list
 * (ectx.errs) every error is kept, one line each, up to CFG_MAX_ERRORS.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "config/internal.h"

#define ERR_MORE_ROOM 256 /* for cfg_errs_finish()'s line */

/* "SEC[IDX].KEY[SUB]: ", any part may be absent. */
static void err_path(char *buf, size_t size, const char *sec, long idx, const char *key, long sub)
{
	char is[24] = "", ks[24] = "";

	if (!sec && !key) {
		buf[0] = '\0';
		return;
	}
	if (sec && idx >= 0)
		snprintf(is, sizeof(is), "[%ld]", idx);
	if (key && sub >= 0)
		snprintf(ks, sizeof(ks), "[%ld]", sub);
	snprintf(buf, size, "%s%s%s%s%s: ", sec ? sec : "", is, sec && key ? "." : "",
		 key ? key : "", ks);
}

static int __attribute__((format(printf, 7, 0)))
vfail(const struct ectx *c, const char *sec, long idx, unsigned line, const char *key, long sub,
      const char *fmt, va_list ap)
{
	unsigned mline = cfg_line(c->map, sec, idx, key, sub);
	char path[160], at[16] = "", one[512];
	struct cfg_errs *e = c->errs;
	size_t used, len;
	int n;

	err_path(path, sizeof(path), sec, idx, key, sub);
	if (mline)
		line = mline;
	if (line)
		snprintf(at, sizeof(at), ":%u", line);
	n = snprintf(one, sizeof(one), "%s%s: %s", c->file, at, path);
	if (n >= 0 && (size_t)n < sizeof(one))
		vsnprintf(one + n, sizeof(one) - n, fmt, ap);
	if (!e) {
		snprintf(c->err->msg, sizeof(c->err->msg), "%s", one);
		return -EINVAL;
	}
	/* One line per error, room kept for the "and N more" line. */
	e->n++;
	used = strlen(c->err->msg);
	len = strlen(one);
	if (e->shown < CFG_MAX_ERRORS && used + len + 1 + ERR_MORE_ROOM < sizeof(c->err->msg)) {
		snprintf(c->err->msg + used, sizeof(c->err->msg) - used, "%s%s", used ? "\n" : "",
			 one);
		e->shown++;
	}
	return -EINVAL;
}

void cfg_errs_finish(const struct ectx *c)
{
	const struct cfg_errs *e = c->errs;
	size_t used = strlen(c->err->msg);

	if (e && e->n > e->shown)
		snprintf(c->err->msg + used, sizeof(c->err->msg) - used,
			 "\n%s: ... and %u more error%s", c->file, e->n - e->shown,
			 e->n - e->shown == 1 ? "" : "s");
}

const char *cfg_key_shown(const char *key)
{
	const char *k;

	if (!key || !*key || strlen(key) > 32)
		return NULL;
	for (k = key; *k; k++)
		if (!isalnum((unsigned char)*k) && *k != '_' && *k != '-')
			return NULL;
	return key;
}

int cfg_fail(const struct ectx *c, const char *sec, long idx, unsigned line, const char *key,
	     long sub, const char *fmt, ...)
{
	va_list ap;
	int ret;

	va_start(ap, fmt);
	ret = vfail(c, sec, idx, line, key, sub, fmt, ap);
	va_end(ap);
	return ret;
}

/* An error in field key (entry sub, or -1) of the item. */
int cfg_item_fail(const struct item *it, const char *key, long sub, const char *fmt, ...)
{
	va_list ap;
	int ret;

	va_start(ap, fmt);
	ret = vfail(it->c, it->sec, it->idx, it->line, key, sub, fmt, ap);
	va_end(ap);
	return ret;
}

struct item cfg_item_at(const struct ectx *c, const char *sec, unsigned idx, unsigned line)
{
	struct item it = {.c = c, .sec = sec, .idx = idx, .line = line};

	if (!line)
		it.line = cfg_line(c->map, sec, idx, NULL, -1);
	return it;
}
