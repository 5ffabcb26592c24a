// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * vbn-rr: TCP request/response for make bench (part tput), the shape of
 * small NVMe/TCP reads: a REQ-byte request, a RESP-byte answer, one
 * outstanding per connection, CONNS connections in parallel.
 *
 *   vbn-rr server PORT REQ RESP
 *   vbn-rr client ADDR PORT REQ RESP CONNS SECONDS
 *
 * The client prints one JSON object: transactions per second and the
 * latency percentiles (microseconds) over all connections.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#define MAX_MSG	  (1 << 20)
#define LAT_SLOTS 100000 /* 1 us each; longer ones in the last */

struct conn {
	int fd;
	size_t req, resp;
	double until;
	uint64_t done;
	uint32_t *lat; /* histogram, LAT_SLOTS */
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int full_io(int fd, char *buf, size_t len, bool rd)
{
	size_t off = 0;

	while (off < len) {
		ssize_t n = rd ? read(fd, buf + off, len - off) : write(fd, buf + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		off += n;
	}
	return 0;
}

static void *serve(void *arg)
{
	struct conn *c = arg;
	char *buf = calloc(1, MAX_MSG);

	while (buf && !full_io(c->fd, buf, c->req, true) && !full_io(c->fd, buf, c->resp, false))
		;
	close(c->fd);
	free(buf);
	free(c);
	return NULL;
}

static int server(int port, size_t req, size_t resp)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
	int one = 1, ls = socket(AF_INET, SOCK_STREAM, 0);

	if (ls < 0 || setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(ls, (struct sockaddr *)&a, sizeof(a)) || listen(ls, 64)) {
		perror("vbn-rr: server");
		return 1;
	}
	printf("listening\n");
	fflush(stdout);
	for (;;) {
		struct conn *c = calloc(1, sizeof(*c));
		pthread_t th;

		if (!c)
			return 1;
		c->fd = accept(ls, NULL, NULL);
		if (c->fd < 0) {
			free(c);
			continue;
		}
		setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c->req = req;
		c->resp = resp;
		if (pthread_create(&th, NULL, serve, c)) {
			close(c->fd);
			free(c);
			continue;
		}
		pthread_detach(th);
	}
}

static void *run(void *arg)
{
	struct conn *c = arg;
	char *buf = calloc(1, MAX_MSG);
	double t;

	while (buf && (t = now_s()) < c->until) {
		uint64_t us;

		if (full_io(c->fd, buf, c->req, false) || full_io(c->fd, buf, c->resp, true))
			break;
		us = (now_s() - t) * 1e6;
		c->lat[us < LAT_SLOTS ? us : LAT_SLOTS - 1]++;
		c->done++;
	}
	free(buf);
	return NULL;
}

static double pctl(const uint64_t *h, uint64_t total, double p)
{
	uint64_t want = total * p, seen = 0;

	for (int i = 0; i < LAT_SLOTS; i++) {
		seen += h[i];
		if (seen > want)
			return i + 0.5;
	}
	return LAT_SLOTS;
}

static int client(const char *addr, int port, size_t req, size_t resp, int n, double secs)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
	struct conn *cs = calloc(n, sizeof(*cs));
	pthread_t *th = calloc(n, sizeof(*th));
	uint64_t *h = calloc(LAT_SLOTS, sizeof(*h)), total = 0;
	double t0, until, t;
	int one = 1, ret = 1;

	if (!cs || !th || !h || inet_pton(AF_INET, addr, &a.sin_addr) != 1)
		goto out;
	t0 = now_s();
	until = t0 + secs;
	for (int i = 0; i < n; i++) {
		cs[i].fd = socket(AF_INET, SOCK_STREAM, 0);
		cs[i].lat = calloc(LAT_SLOTS, sizeof(uint32_t));
		if (cs[i].fd < 0 || !cs[i].lat ||
		    connect(cs[i].fd, (struct sockaddr *)&a, sizeof(a))) {
			perror("vbn-rr: connect");
			goto out;
		}
		setsockopt(cs[i].fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		cs[i].req = req;
		cs[i].resp = resp;
		cs[i].until = until;
	}
	for (int i = 0; i < n; i++)
		if (pthread_create(&th[i], NULL, run, &cs[i]))
			goto out;
	for (int i = 0; i < n; i++)
		pthread_join(th[i], NULL);
	t = now_s() - t0;
	for (int i = 0; i < n; i++) {
		total += cs[i].done;
		for (int j = 0; j < LAT_SLOTS; j++)
			h[j] += cs[i].lat[j];
	}
	printf("{\"transactions\":%llu,\"seconds\":%.3f,\"per_s\":%.0f,\"p50_us\":%.1f,"
	       "\"p99_us\":%.1f,\"bytes\":%llu}\n",
	       (unsigned long long)total, t, total / t, pctl(h, total, 0.5), pctl(h, total, 0.99),
	       (unsigned long long)(total * (req + resp)));
	ret = total ? 0 : 1;
out:
	for (int i = 0; cs && i < n; i++) {
		if (cs[i].fd > 0)
			close(cs[i].fd);
		free(cs[i].lat);
	}
	free(cs);
	free(th);
	free(h);
	return ret;
}

int main(int argc, char **argv)
{
	if (argc == 5 && !strcmp(argv[1], "server"))
		return server(atoi(argv[2]), atol(argv[3]), atol(argv[4]));
	if (argc == 8 && !strcmp(argv[1], "client"))
		return client(argv[2], atoi(argv[3]), atol(argv[4]), atol(argv[5]), atoi(argv[6]),
			      atof(argv[7]));
	fprintf(stderr, "usage: vbn-rr server PORT REQ RESP\n"
			"       vbn-rr client ADDR PORT REQ RESP CONNS SECONDS\n");
	return 2;
}
