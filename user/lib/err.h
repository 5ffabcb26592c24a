/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Errors and messages.  A function that can fail for a reason the user must
 * read fills a struct vsn_error (one message, saying what is wrong and what
 * to do) with vsn_error_set(); the command that called it prints it with
 * vsn_err().  Messages go to stderr, prefixed "vsn: ".
 */
#ifndef VSN_ERR_H
#define VSN_ERR_H

#include <stdbool.h>

/* Room for a config's list of errors (up to 20 lines, config/err.c). */
#define VSN_ERR_MAX 4096

/* e.g. "vsn.yaml:14: volumes[1].address: duplicate volume address ..." */
struct vsn_error {
	char msg[VSN_ERR_MAX];
};

/* Fill err from a format; returns ret (a negative errno, or 0), so that
 * "return vsn_error_set(err, -EINVAL, ...)" reads as one step. */
int vsn_error_set(struct vsn_error *err, int ret, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

struct vsn_opts;
void vsn_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void vsn_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Progress for people: silent under -j. */
void vsn_info(const struct vsn_opts *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif /* VSN_ERR_H */
