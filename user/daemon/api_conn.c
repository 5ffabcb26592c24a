// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The API socket (protocol: api.h): the daemon serves its clients from the
 * event loop and never waits on one.  Each client has a buffer for its one
 * request line, a deadline, and a buffer for its reply, written as the
 * socket takes it; a request line must be one JSON object with each key
 * once.  What a request does: api.c.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "daemon/api.h"
#include "daemon/daemon.h"

#define STR_(x) #x
#define STR(x)	STR_(x)

static void client_close(struct ctl *c, unsigned slot);

static int api_bind(const char *path, struct vsn_error *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char dir[sizeof(sa.sun_path)], *slash;
	mode_t old;
	int fd, ret;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		vsn_error_set(err, 0, "socket path too long: %s", path);
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	memcpy(dir, path, strlen(path) + 1);
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0755) && errno != EEXIST) {
			ret = -errno;
			vsn_error_set(err, 0, "cannot create %s: %s", dir, strerror(errno));
			return ret;
		}
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		ret = -errno;
		vsn_error_set(err, 0, "socket: %s", strerror(errno));
		return ret;
	}
	/* A socket file that nobody answers on is a dead daemon's: replace it. */
	if (!connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		vsn_error_set(
		    err, 0,
		    "a daemon already answers on %s (stop it first, or set controller.socket)",
		    path);
		close(fd);
		return -EADDRINUSE;
	}
	unlink(path);
	old = umask(0077); /* created 0600: root only */
	ret = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (ret || chmod(path, 0600) || listen(fd, API_BACKLOG)) {
		ret = -errno;
		vsn_error_set(err, 0, "cannot listen on %s: %s", path, strerror(errno));
		close(fd);
		return ret;
	}
	return fd;
}

int ctl_api_open(struct ctl *c, struct vsn_error *err)
{
	unsigned i;
	int fd;

	c->api = calloc(API_MAX_CLIENTS, sizeof(*c->api));
	if (!c->api) {
		vsn_error_set(err, 0, "out of memory");
		return -ENOMEM;
	}
	for (i = 0; i < API_MAX_CLIENTS; i++)
		c->api[i].fd = -1;
	fd = api_bind(c->cfg->ctl.socket, err);
	if (fd < 0)
		return fd;
	c->api_fd = fd;
	return 0;
}

void ctl_api_close(struct ctl *c)
{
	unsigned i;

	for (i = 0; c->api && i < API_MAX_CLIENTS; i++)
		if (c->api[i].fd >= 0)
			client_close(c, i);
	free(c->api);
	c->api = NULL;
	if (c->api_fd >= 0) {
		close(c->api_fd);
		unlink(c->cfg->ctl.socket);
	}
	c->api_fd = -1;
}

/* Keys of every object in a parsed JSON value. */
static size_t json_tree_keys(struct json_object *o)
{
	size_t n = 0, i;

	if (json_object_is_type(o, json_type_object)) {
		json_object_object_foreach(o, k, v)
		{
			(void)k;
			n += 1 + json_tree_keys(v);
		}
	} else if (json_object_is_type(o, json_type_array)) {
		for (i = 0; i < json_object_array_length(o); i++)
			n += json_tree_keys(json_object_array_get_idx(o, i));
	}
	return n;
}

/*
 * Keys in the text of a JSON value: strings followed by ':'.  More keys in
 * the text than json-c kept means one came twice (json-c keeps the last one
 * silently).  The first top-level key seen twice goes to dup (decoded, as
 * json-c reads it), when there is one.
 */
static size_t json_text_keys(const char *s, size_t len, char *dup, size_t dl)
{
	struct json_object *seen = json_object_new_object();
	size_t i, j, n = 0;
	int depth = 0;

	for (i = 0; i < len; i++) {
		size_t start = i;

		if (s[i] == '{' || s[i] == '[')
			depth++;
		else if (s[i] == '}' || s[i] == ']')
			depth--;
		if (s[i] != '"')
			continue;
		for (j = i + 1; j < len && s[j] != '"'; j++)
			if (s[j] == '\\')
				j++;
		if (j >= len)
			break;
		i = j;
		while (++j < len && (s[j] == ' ' || s[j] == '\t' || s[j] == '\r' || s[j] == '\n'))
			;
		if (j >= len || s[j] != ':')
			continue;
		n++;
		if (depth == 1 && seen && !dup[0]) {
			struct json_tokener *tok = json_tokener_new();
			struct json_object *k =
			    tok ? json_tokener_parse_ex(tok, s + start, (int)(i + 1 - start))
				: NULL;
			const char *name = json_object_get_string(k);

			if (name && json_object_object_get_ex(seen, name, NULL))
				snprintf(dup, dl, "%s", name);
			else if (name)
				json_object_object_add(seen, name, NULL);
			json_object_put(k);
			json_tokener_free(tok);
		}
	}
	json_object_put(seen);
	return n;
}

/*
 * The request line (its newline replaced by NUL): one JSON object, each key
 * once, nothing after it.  NULL with err filled otherwise.
 */
static struct json_object *parse_request(const char *line, size_t len, struct vsn_error *err)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *req = NULL;
	char dup[64] = "";
	size_t used, rest;

	if (!tok) {
		vsn_error_set(err, 0, "out of memory");
		return NULL;
	}
	req = json_tokener_parse_ex(tok, line, (int)len);
	if (!req || json_tokener_get_error(tok) != json_tokener_success ||
	    !json_object_is_type(req, json_type_object)) {
		vsn_error_set(err, 0, "the request is not a JSON object");
		goto fail;
	}
	used = json_tokener_get_parse_end(tok);
	for (rest = used; rest < len && strchr(" \t\r", line[rest]); rest++)
		;
	if (rest < len) {
		vsn_error_set(err, 0,
			      "trailing data after the JSON object (at byte %zu): send one object "
			      "per request",
			      used);
		goto fail;
	}
	if (json_text_keys(line, used, dup, sizeof(dup)) != json_tree_keys(req)) {
		if (dup[0])
			vsn_error_set(err, 0,
				      "duplicate key '%.40s' in the request: give each once", dup);
		else
			vsn_error_set(err, 0, "a key appears twice in the request: give each once");
		goto fail;
	}
	json_tokener_free(tok);
	return req;
fail:
	json_tokener_free(tok);
	json_object_put(req);
	return NULL;
}

static int ep_client(struct ctl *c, unsigned slot, int op, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.u32 = CTL_EV_API_CLIENT + slot};

	return epoll_ctl(c->epfd, op, c->api[slot].fd, &ev);
}

static void client_close(struct ctl *c, unsigned slot)
{
	struct ctl_api_client *cl = &c->api[slot];

	if (cl->fd >= 0)
		close(cl->fd); /* also leaves the epoll set */
	free(cl->in);
	free(cl->out);
	memset(cl, 0, sizeof(*cl));
	cl->fd = -1;
}

/* Send what the socket takes now; closed once all is sent or on error. */
static void client_flush(struct ctl *c, unsigned slot)
{
	struct ctl_api_client *cl = &c->api[slot];

	while (cl->out_off < cl->out_len) {
		ssize_t n = send(cl->fd, cl->out + cl->out_off, cl->out_len - cl->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return; /* EPOLLOUT brings the rest, or the deadline the end */
		if (n <= 0)
			break;
		cl->out_off += (size_t)n;
	}
	client_close(c, slot);
}

/* Turn the client to its reply: resp (consumed), then close. */
void ctl_api_reply(struct ctl *c, unsigned slot, struct json_object *resp)
{
	struct ctl_api_client *cl = &c->api[slot];
	const char *text = json_object_to_json_string_ext(resp, JSON_C_TO_STRING_PLAIN);
	size_t len;

	if (!text) /* out of memory: a reply still, if a short one */
		text = "{\"ok\":false,\"error\":\"out of memory\"}";
	len = strlen(text);

	free(cl->in);
	cl->in = NULL;
	cl->out = malloc(len + 1);
	if (!cl->out) {
		json_object_put(resp);
		client_close(c, slot);
		return;
	}
	memcpy(cl->out, text, len);
	cl->out[len] = '\n';
	cl->out_len = len + 1;
	cl->out_off = 0;
	json_object_put(resp);
	cl->deadline_ns = ctl_now_ns() + API_REPLY_MS * NS_PER_MS;
	if (ep_client(c, slot, EPOLL_CTL_MOD, EPOLLOUT)) {
		client_close(c, slot);
		return;
	}
	client_flush(c, slot);
}

static void client_error(struct ctl *c, unsigned slot, const char *msg)
{
	struct json_object *resp = json_object_new_object();

	c->api_errors++;
	json_object_object_add(resp, "ok", json_object_new_boolean(false));
	json_object_object_add(resp, "error", json_object_new_string(msg));
	ctl_api_reply(c, slot, resp);
}

/* The request line is in: answer it.  Anything after its newline is a
 * second request on the same connection, which the protocol does not have. */
static void client_request(struct ctl *c, unsigned slot, size_t nl)
{
	struct ctl_api_client *cl = &c->api[slot];
	struct vsn_error err = {.msg = ""};
	struct json_object *req;

	if (nl + 1 < cl->in_len) {
		client_error(c, slot,
			     "data after the request's newline: one request per connection");
		return;
	}
	cl->in[nl] = '\0';
	req = parse_request(cl->in, nl, &err);
	if (!req) {
		client_error(c, slot, err.msg);
		return;
	}
	ctl_api_request(c, slot, req);
	json_object_put(req);
}

/* Read what has come; a full line gets its answer. */
static void client_read(struct ctl *c, unsigned slot)
{
	struct ctl_api_client *cl = &c->api[slot];
	char msg[128];

	for (;;) {
		ssize_t n =
		    recv(cl->fd, cl->in + cl->in_len, API_MAX_REQUEST - cl->in_len, MSG_DONTWAIT);
		char *nl;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n < 0) {
			client_close(c, slot);
			return;
		}
		if (n == 0) {
			client_error(c, slot, "incomplete request (one JSON object and a newline)");
			return;
		}
		nl = memchr(cl->in + cl->in_len, '\n', (size_t)n);
		cl->in_len += (size_t)n;
		if (nl) {
			client_request(c, slot, (size_t)(nl - cl->in));
			return;
		}
		if (cl->in_len >= API_MAX_REQUEST) {
			snprintf(msg, sizeof(msg), "request too large: no newline within %u bytes",
				 API_MAX_REQUEST);
			client_error(c, slot, msg);
			return;
		}
	}
}

void ctl_api_client_event(struct ctl *c, unsigned slot, uint32_t events)
{
	if (slot >= API_MAX_CLIENTS || c->api[slot].fd < 0)
		return;
	if (c->api[slot].out)
		client_flush(c, slot);
	else if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
		client_read(c, slot);
}

void ctl_api_sweep(struct ctl *c, uint64_t now)
{
	char msg[128];
	unsigned i;

	for (i = 0; c->api && i < API_MAX_CLIENTS; i++) {
		struct ctl_api_client *cl = &c->api[i];

		if (cl->fd < 0 || now < cl->deadline_ns)
			continue;
		c->api_dropped++;
		if (cl->out) {
			/* It does not read its reply: dropped, nothing waits on it. */
			client_close(c, i);
			continue;
		}
		if (cl->loading) {
			/* Back in the epoll set (apply_start took it out) for
			 * its answer; the loader's late result finds it gone. */
			cl->loading = false;
			if (ep_client(c, i, EPOLL_CTL_ADD, EPOLLOUT)) {
				client_close(c, i);
				continue;
			}
			snprintf(msg, sizeof(msg),
				 "the config took over %u ms to read; the daemon's log will say "
				 "whether it was applied",
				 API_LOAD_MS);
		} else
			snprintf(msg, sizeof(msg),
				 "request not complete within %u ms (one JSON object and a "
				 "newline)",
				 API_REQUEST_MS);
		client_error(c, i, msg);
		/* One try: a client that cannot take even the error is gone. */
		if (c->api[i].fd >= 0)
			client_close(c, i);
	}
}

/* A one-line answer to a client that gets no slot; its socket is new, so
 * the line fits in its buffer. */
static void refuse(int fd, const char *line)
{
	ssize_t n = send(fd, line, strlen(line), MSG_NOSIGNAL | MSG_DONTWAIT);

	(void)n; /* nothing more to do for it either way */
	close(fd);
}

/*
 * New connections: each gets a slot and a deadline, or a refusal.  Bounded
 * per call, so that a flood of connects shares the loop with the rest.
 */
void ctl_api_accept(struct ctl *c)
{
	unsigned k, slot;

	for (k = 0; k < API_BACKLOG; k++) {
		struct ucred cred;
		socklen_t cl = sizeof(cred);
		int fd = accept4(c->api_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

		if (fd < 0)
			return;
		c->api_requests++;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) || cred.uid != 0) {
			/* The socket is 0600 root; this is the second lock. */
			c->api_errors++;
			refuse(fd, "{\"ok\":false,\"error\":\"permission denied: the vsn API is "
				   "for root only\"}\n");
			continue;
		}
		for (slot = 0; slot < API_MAX_CLIENTS && c->api[slot].fd >= 0; slot++)
			;
		if (slot == API_MAX_CLIENTS) {
			c->api_errors++;
			c->api_dropped++;
			refuse(fd, "{\"ok\":false,\"error\":\"busy: " STR(
				       API_MAX_CLIENTS) " API clients are connected already; try "
							"again\"}\n");
			continue;
		}
		c->api[slot].fd = fd;
		c->api[slot].ticket = ++c->api_tickets;
		c->api[slot].deadline_ns = ctl_now_ns() + API_REQUEST_MS * NS_PER_MS;
		c->api[slot].in = malloc(API_MAX_REQUEST + 1);
		if (!c->api[slot].in || ep_client(c, slot, EPOLL_CTL_ADD, EPOLLIN)) {
			client_close(c, slot);
			continue;
		}
		client_read(c, slot); /* the line may be there already */
	}
}

void ctl_api_hold(struct ctl *c, unsigned slot, unsigned ms)
{
	struct ctl_api_client *cl = &c->api[slot];

	cl->loading = true;
	cl->deadline_ns = ctl_now_ns() + ms * NS_PER_MS;
	/* Nothing to read from it meanwhile (a half-close is no error), and
	 * a hang-up must not wake the loop until the answer is due. */
	epoll_ctl(c->epfd, EPOLL_CTL_DEL, cl->fd, NULL);
}

bool ctl_api_resume(struct ctl *c, int slot, uint64_t ticket)
{
	struct ctl_api_client *cl;

	if (slot < 0 || slot >= (int)API_MAX_CLIENTS)
		return false;
	cl = &c->api[slot];
	if (cl->fd < 0 || !cl->loading || cl->ticket != ticket)
		return false;
	cl->loading = false;
	if (ep_client(c, (unsigned)slot, EPOLL_CTL_ADD, EPOLLOUT)) {
		client_close(c, (unsigned)slot);
		return false;
	}
	return true;
}
