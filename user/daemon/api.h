/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The daemon's API: a unix stream socket (root only, mode 0600) carrying one
 * JSON object per line each way.  A request names its "cmd"; the reply has
 * "ok": true and the result, or "ok": false and "error".  One request per
 * connection: a JSON object with each key once, nothing after it but its
 * newline.  docs/daemon.md lists the commands.
 */
#ifndef VSN_API_H
#define VSN_API_H

#include <json-c/json.h>

#define VSN_SOCKET_ENV	"VSN_SOCKET"
#define API_MAX_REQUEST (64u << 10) /* one request line, its newline included */
#define API_TIMEOUT_MS	5000	    /* the CLI waits this long for a reply */
/*
 * The daemon serves clients from its event loop, never waiting on one: a
 * client gets API_REQUEST_MS from connecting to send its line and
 * API_REPLY_MS to read the reply, after which it is answered with an error
 * (when it still can be) and dropped.  At most API_MAX_CLIENTS at once;
 * one more is refused with "busy".
 */
#define API_REQUEST_MS	2000u
#define API_REPLY_MS	2000u
#define API_LOAD_MS	10000u /* an apply's file read and checked (loader.c) */
#define API_MAX_CLIENTS 16
#define API_BACKLOG	64 /* connections waiting for accept (refused busy or served) */

#endif /* VSN_API_H */
