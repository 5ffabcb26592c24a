/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* The CLI's side of the daemon's API (daemon/api.h): api_client.c. */
#ifndef VSN_API_CLIENT_H
#define VSN_API_CLIENT_H

#include <json-c/json.h>

#include "daemon/api.h"
#include "lib/vsn.h"

/* $VSN_SOCKET, or the default. */
const char *api_socket_path(void);

/*
 * Send req to the daemon and wait for its reply.  0: *resp holds it.
 * -ENOENT / -ECONNREFUSED: no daemon listens (the caller may write the
 * maps itself).  Other -errno: err says what failed.
 */
int api_call(const char *path, struct json_object *req, struct json_object **resp,
	     struct vsn_error *err);

/*
 * For CLI commands that change state: hand req to the daemon when one runs.
 * Returns the exit status (0 ok, 1 refused or failed), or -1 when no daemon
 * runs and the command should act on the maps itself.
 */
int api_forward(const struct vsn_opts *o, struct json_object *req);

/* A field of a reply, for printing: "", 0 when it is absent or null. */
const char *api_str(struct json_object *o, const char *k);
double api_num(struct json_object *o, const char *k);
int64_t api_int(struct json_object *o, const char *k);

#endif /* VSN_API_CLIENT_H */
