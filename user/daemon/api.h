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

#define VSN_SOCKET_ENV	"VSN_SOCKET"
#define API_MAX_REQUEST (64u << 10)
#define API_TIMEOUT_MS	5000

#endif /* VSN_API_H */
