/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The daemon's API: a unix stream socket (root only, mode 0600) carrying one
 * JSON object per line each way.  A request names its "cmd"; the reply has
 * "ok": true and the result, or "ok": false and "error".  docs/daemon.md
 * lists the commands.
 */
#ifndef VSN_API_H
#define VSN_API_H

#include <json-c/json.h>

#include "config.h"
#include "vsn.h"

#define VSN_SOCKET_ENV	"VSN_SOCKET"
#define API_MAX_REQUEST (64u << 10)
#define API_TIMEOUT_MS	5000

/* $VSN_SOCKET, or the default. */
const char *api_socket_path(void);

/*
 * Send req to the daemon and wait for its reply.  0: *resp holds it.
 * -ENOENT / -ECONNREFUSED: no daemon listens (the caller may write the
 * maps itself).  Other -errno: err says what failed.
 */
int api_call(const char *path, struct json_object *req, struct json_object **resp,
	     struct vsn_err *err);

/*
 * For CLI commands that change state: hand req to the daemon when one runs.
 * Returns the exit status (0 ok, 1 refused or failed), or -1 when no daemon
 * runs and the command should act on the maps itself.
 */
int api_forward(const struct vsn_opts *o, struct json_object *req);

#endif /* VSN_API_H */
