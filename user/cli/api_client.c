// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* The client side of the daemon's API (api.h). */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "cli/api_client.h"
#include "config/config.h"

const char *api_socket_path(void)
{
	const char *p = getenv(VSN_SOCKET_ENV);

	return p && *p ? p : VSN_DEFAULT_SOCKET;
}

static int send_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -errno;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* One line, up to API_MAX_REQUEST bytes, within the timeout. */
static int recv_line(int fd, char **out)
{
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap);
	int ret = 0;

	if (!buf)
		return -ENOMEM;
	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		ssize_t n;
		char *nl;

		if (poll(&p, 1, API_TIMEOUT_MS) <= 0) {
			ret = -ETIMEDOUT;
			break;
		}
		if (len + 1 >= cap) {
			char *nb =
			    cap >= (size_t)16 * API_MAX_REQUEST ? NULL : realloc(buf, cap * 2);

			if (!nb) {
				ret = -EMSGSIZE;
				break;
			}
			buf = nb;
			cap *= 2;
		}
		n = recv(fd, buf + len, cap - len - 1, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			ret = n ? -errno : -ECONNRESET;
			break;
		}
		len += (size_t)n;
		buf[len] = '\0';
		nl = memchr(buf, '\n', len);
		if (nl) {
			*nl = '\0';
			*out = buf;
			return 0;
		}
	}
	free(buf);
	return ret;
}

int api_call(const char *path, struct json_object *req, struct json_object **resp,
	     struct vsn_error *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	const char *text;
	char *line = NULL;
	int fd, ret;

	*resp = NULL;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		vsn_error_set(err, 0, "socket path too long: %s", path);
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		ret = -errno;
		vsn_error_set(err, 0, "socket: %s", strerror(errno));
		return ret;
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		ret = -errno;
		vsn_error_set(err, 0, "cannot reach the daemon at %s: %s", path, strerror(errno));
		goto out;
	}
	text = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN);
	ret = send_all(fd, text, strlen(text));
	if (!ret)
		ret = send_all(fd, "\n", 1);
	if (!ret)
		ret = recv_line(fd, &line);
	if (ret) {
		vsn_error_set(err, 0, "daemon at %s: %s", path, strerror(-ret));
		goto out;
	}
	*resp = json_tokener_parse(line);
	if (!*resp || !json_object_is_type(*resp, json_type_object)) {
		json_object_put(*resp);
		*resp = NULL;
		vsn_error_set(err, 0, "daemon at %s: reply is not a JSON object", path);
		ret = -EPROTO;
	}
out:
	free(line);
	close(fd);
	return ret;
}

int api_forward(const struct vsn_opts *o, struct json_object *req)
{
	struct json_object *resp = NULL, *ok, *msg;
	struct vsn_error err = {.msg = ""};
	int ret = api_call(api_socket_path(), req, &resp, &err);

	if (ret == -ENOENT || ret == -ECONNREFUSED)
		return -1;
	if (ret) {
		vsn_err("%s", err.msg);
		return 1;
	}
	ret = 1;
	if (json_object_object_get_ex(resp, "ok", &ok) && json_object_get_boolean(ok)) {
		ret = 0;
		if (o->json)
			printf("%s\n",
			       json_object_to_json_string_ext(resp, JSON_C_TO_STRING_PLAIN));
		else if (json_object_object_get_ex(resp, "message", &msg))
			printf("%s\n", json_object_get_string(msg));
	} else if (json_object_object_get_ex(resp, "error", &msg)) {
		vsn_err("%s", json_object_get_string(msg));
	} else {
		vsn_err("the daemon refused the request without saying why");
	}
	json_object_put(resp);
	return ret;
}

const char *api_str(struct json_object *o, const char *k)
{
	struct json_object *v;

	return json_object_object_get_ex(o, k, &v) && v ? json_object_get_string(v) : "";
}

double api_num(struct json_object *o, const char *k)
{
	struct json_object *v;

	return json_object_object_get_ex(o, k, &v) ? json_object_get_double(v) : 0;
}

int64_t api_int(struct json_object *o, const char *k)
{
	struct json_object *v;

	return json_object_object_get_ex(o, k, &v) ? json_object_get_int64(v) : 0;
}
