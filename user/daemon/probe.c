// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Backends with "health: tcp": a non-blocking TCP connect to the backend's
 * address and port every health_interval_ms, judged on the ticks that
 * follow (refused, unreachable or no answer within health_timeout_ms is a
 * failure).  Cheap and target-agnostic; the NVMe admin-queue poll says
 * more where the target allows it.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "daemon/daemon.h"

static int probe_start(const struct ctl_backend *b)
{
	struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_port = htons(b->cfg->port)};
	struct vsn_addr a;
	int fd;

	if (parse_addr(b->cfg->address, &a, NULL))
		return -EINVAL;
	memcpy(&sa.sin6_addr, a.a, sizeof(a.a)); /* IPv4 stays IPv4-mapped */
	fd = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) && errno != EINPROGRESS) {
		int ret = -errno;

		close(fd);
		return ret;
	}
	return fd;
}

static void probe_result(struct ctl *c, struct ctl_backend *b, int err, uint64_t now)
{
	b->polled = true;
	b->reachable = !err;
	if (b->reachable) {
		b->ok_ns = now;
		b->unreach_since_ns = 0;
	} else if (!b->unreach_since_ns) {
		b->unreach_since_ns = now;
	}
	if (err == ETIMEDOUT)
		snprintf(b->dev_error, sizeof(b->dev_error), "tcp connect: no answer in %u ms",
			 c->cfg->ctl.health_timeout_ms);
	else if (err)
		snprintf(b->dev_error, sizeof(b->dev_error), "tcp connect: %s", strerror(err));
	else
		b->dev_error[0] = '\0';
	b->pending = true;
}

void ctl_probe_tick(struct ctl *c, uint64_t now)
{
	const struct vsn_cfg_controller *pol = &c->cfg->ctl;

	for (unsigned i = 0; i < c->n_backends; i++) {
		struct ctl_backend *b = &c->backends[i];
		struct pollfd p;
		socklen_t len = sizeof(int);
		int err = 0;

		if (b->cfg->health != VSN_HEALTH_TCP)
			continue;
		if (b->probe_fd > 0) {
			p = (struct pollfd){.fd = b->probe_fd, .events = POLLOUT};
			if (poll(&p, 1, 0) == 1) {
				if (getsockopt(b->probe_fd, SOL_SOCKET, SO_ERROR, &err, &len))
					err = errno;
			} else if (now - b->probe_start_ns >= pol->health_timeout_ms * NS_PER_MS) {
				err = ETIMEDOUT;
			} else {
				continue;
			}
			close(b->probe_fd);
			b->probe_fd = 0;
			probe_result(c, b, err, now);
		}
		if (now < b->probe_next_ns)
			continue;
		b->probe_next_ns = now + pol->health_interval_ms * NS_PER_MS;
		b->probe_start_ns = now;
		b->probe_fd = probe_start(b);
		if (b->probe_fd < 0) {
			err = -b->probe_fd;
			b->probe_fd = 0;
			probe_result(c, b, err, now);
		}
	}
}

void ctl_probe_stop(struct ctl *c)
{
	for (unsigned i = 0; i < c->n_backends; i++) {
		if (c->backends[i].probe_fd > 0)
			close(c->backends[i].probe_fd);
		c->backends[i].probe_fd = 0;
	}
}
