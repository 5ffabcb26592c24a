// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* Errors and messages (err.h). */
#include <stdarg.h>
#include <stdio.h>

#include "lib/err.h"
#include "lib/vsn.h"

int vsn_error_set(struct vsn_error *err, int ret, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return ret;
}

void vsn_err(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("vsn: error: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

void vsn_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("vsn: warning: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

void vsn_info(const struct vsn_opts *o, const char *fmt, ...)
{
	va_list ap;

	if (o->json)
		return;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}
