// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* NVMe/TCP admin-queue client (see nvmf_admin.h).  Every received PDU is
 * checked (type, header length, PDU length, data offset and length, command
 * id) before anything of it is used: a wrong byte from the target ends the
 * connection with a message, never a crash or an overrun. */
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "lib/health/nvmf_admin.h"

_Static_assert(sizeof(struct nvmf_tcp_hdr) == 8, "common header");
_Static_assert(sizeof(struct nvmf_tcp_icreq) == 128, "ICReq");
_Static_assert(sizeof(struct nvmf_tcp_icresp) == 128, "ICResp");
_Static_assert(sizeof(struct nvmf_sqe) == 64, "SQE");
_Static_assert(sizeof(struct nvmf_cqe) == 16, "CQE");
_Static_assert(sizeof(struct nvmf_tcp_cmd) == 72, "CapsuleCmd");
_Static_assert(sizeof(struct nvmf_tcp_rsp) == 24, "CapsuleResp");
_Static_assert(sizeof(struct nvmf_tcp_data) == 24, "C2HData/H2CData");
_Static_assert(sizeof(struct nvmf_tcp_r2t) == 24, "R2T");
_Static_assert(sizeof(struct nvmf_tcp_term) == 24, "TermReq");
_Static_assert(sizeof(struct nvmf_connect_data) == 1024, "Connect data");

/* How the last operation failed: decides whether Connect is retried. */
enum fail_kind { F_NONE, F_TIMEOUT, F_CANCEL, F_CLOSED, F_PROTO, F_SYS, F_STATUS };

struct nvmf_admin {
	struct nvmf_target t;
	struct nvmf_admin_opts o;
	int fd;
	bool icdone;	/* ICResp accepted */
	bool connected; /* Fabrics Connect accepted */
	bool used_r2t;
	uint32_t maxh2c;
	uint16_t cntlid;
	uint16_t next_cid;
	uint32_t vs;
	int status;
	enum fail_kind kind;
	char step[40]; /* what was running, for messages */
	uint64_t t0_ns;
	uint64_t deadline_ns;
	uint64_t rtt_ns;
	char peer[96];
	char err[384];
};

union nvmf_tcp_pdu {
	struct nvmf_tcp_hdr hdr;
	struct nvmf_tcp_icresp icresp;
	struct nvmf_tcp_rsp rsp;
	struct nvmf_tcp_data data;
	struct nvmf_tcp_r2t r2t;
	struct nvmf_tcp_term term;
	uint8_t raw[128];
};

/* What one command moves: host to controller (out) or back (in). */
struct xfer {
	const void *out;
	uint32_t out_len;
	bool in_capsule;
	void *in;
	uint32_t in_len;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void close_fd(struct nvmf_admin *s)
{
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	s->icdone = false;
	s->connected = false;
}

/* snprintf() through a va_list: messages may be cut, never overrun. */
static void __attribute__((format(printf, 3, 4))) fmt(char *dst, size_t n, const char *f, ...)
{
	va_list ap;

	va_start(ap, f);
	vsnprintf(dst, n, f, ap);
	va_end(ap);
}

static int vfail(struct nvmf_admin *s, enum fail_kind k, const char *f, va_list ap)
{
	char msg[256];

	vsnprintf(msg, sizeof(msg), f, ap);
	fmt(s->err, sizeof(s->err), "%s: %s: %s", s->peer, s->step, msg);
	s->kind = k;
	if (k != F_STATUS)
		close_fd(s);
	return -1;
}

/* A failure that leaves the connection unusable: it is closed. */
static int __attribute__((format(printf, 3, 4)))
broken(struct nvmf_admin *s, enum fail_kind k, const char *f, ...)
{
	va_list ap;
	int r;

	va_start(ap, f);
	r = vfail(s, k, f, ap);
	va_end(ap);
	return r;
}

#define proto(s, ...) broken(s, F_PROTO, __VA_ARGS__)

static void set_step(struct nvmf_admin *s, const char *step)
{
	snprintf(s->step, sizeof(s->step), "%s", step);
}

static void begin(struct nvmf_admin *s, const char *step)
{
	set_step(s, step);
	s->status = 0;
	s->kind = F_NONE;
	s->t0_ns = now_ns();
	s->deadline_ns = s->t0_ns + (uint64_t)s->o.timeout_ms * 1000000ull;
}

/* Wait until the socket is ready for EVENTS, the deadline passes or the
 * cancel descriptor becomes readable (it is not consumed: one write
 * cancels every session that watches it). */
static int wait_io(struct nvmf_admin *s, short events)
{
	struct pollfd p[2] = {{.fd = s->fd, .events = events},
			      {.fd = s->o.cancel_fd, .events = POLLIN}};
	nfds_t n = s->o.cancel_fd >= 0 ? 2 : 1;

	for (;;) {
		uint64_t t = now_ns();
		int r;

		if (t >= s->deadline_ns)
			return broken(s, F_TIMEOUT, "timeout after %u ms", s->o.timeout_ms);
		r = poll(p, n, (int)((s->deadline_ns - t + 999999) / 1000000));
		if (r < 0 && errno != EINTR)
			return broken(s, F_SYS, "poll: %s", strerror(errno));
		if (r <= 0)
			continue;
		if (n == 2 && p[1].revents)
			return broken(s, F_CANCEL, "cancelled");
		if (p[0].revents)
			return 0; /* errors and hangups show in the read or write */
	}
}

static int recv_exact(struct nvmf_admin *s, void *buf, size_t len, bool mid_pdu)
{
	size_t got = 0;

	while (got < len) {
		ssize_t r;

		if (wait_io(s, POLLIN))
			return -1;
		r = recv(s->fd, (char *)buf + got, len - got, MSG_DONTWAIT);
		if (r == 0) {
			if (mid_pdu || got)
				return broken(
				    s, F_CLOSED,
				    "connection closed by the target in the middle of a PDU");
			return broken(s, F_CLOSED, "connection closed by the target");
		}
		if (r < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			return broken(s, F_CLOSED, "receive: %s", strerror(errno));
		}
		got += (size_t)r;
	}
	return 0;
}

static int send_all(struct nvmf_admin *s, const void *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t r;

		if (wait_io(s, POLLOUT))
			return -1;
		r = send(s->fd, (const char *)buf + done, len - done, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (r < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			return broken(s, F_CLOSED, "send: %s", strerror(errno));
		}
		done += (size_t)r;
	}
	return 0;
}

static const char *pdu_name(uint8_t type)
{
	static const char *const n[] = {
	    [NVMF_TCP_ICREQ] = "ICReq",
	    [NVMF_TCP_ICRESP] = "ICResp",
	    [NVMF_TCP_H2C_TERM] = "H2CTermReq",
	    [NVMF_TCP_C2H_TERM] = "C2HTermReq",
	    [NVMF_TCP_CMD] = "CapsuleCmd",
	    [NVMF_TCP_RSP] = "CapsuleResp",
	    [NVMF_TCP_H2C_DATA] = "H2CData",
	    [NVMF_TCP_C2H_DATA] = "C2HData",
	    [NVMF_TCP_R2T] = "R2T",
	};

	return type < sizeof(n) / sizeof(n[0]) && n[type] ? n[type] : "unknown";
}

static int discard(struct nvmf_admin *s, size_t len)
{
	uint8_t junk[256];

	while (len) {
		size_t k = len < sizeof(junk) ? len : sizeof(junk);

		if (recv_exact(s, junk, k, true))
			return -1;
		len -= k;
	}
	return 0;
}

/* One PDU header, checked.  A C2HData payload stays in the socket (the
 * caller knows where it goes); padding before it and the body of a
 * TermReq are consumed. */
static int recv_pdu(struct nvmf_admin *s, union nvmf_tcp_pdu *p)
{
	uint8_t type, hlen, want;
	uint32_t plen;

	if (recv_exact(s, &p->hdr, sizeof(p->hdr), false))
		return -1;
	type = p->hdr.type;
	hlen = p->hdr.hlen;
	plen = le32toh(p->hdr.plen);
	switch (type) {
	case NVMF_TCP_ICRESP:
		want = sizeof(struct nvmf_tcp_icresp);
		break;
	case NVMF_TCP_C2H_TERM:
	case NVMF_TCP_RSP:
	case NVMF_TCP_C2H_DATA:
	case NVMF_TCP_R2T:
		want = 24;
		break;
	default:
		return proto(s, "unexpected PDU type 0x%02x (%s) from the target", type,
			     pdu_name(type));
	}
	if (hlen != want)
		return proto(s, "%s PDU with header length %u (expected %u)", pdu_name(type), hlen,
			     want);
	if (p->hdr.flags & (NVMF_TCP_F_HDGST | NVMF_TCP_F_DDGST))
		return proto(s, "%s PDU carries digest flags 0x%02x, but no digest was negotiated",
			     pdu_name(type), p->hdr.flags);
	if (plen < hlen)
		return proto(s, "%s PDU length %u is shorter than its header (%u)", pdu_name(type),
			     plen, hlen);
	if (recv_exact(s, p->raw + sizeof(p->hdr), hlen - sizeof(p->hdr), true))
		return -1;

	switch (type) {
	case NVMF_TCP_C2H_DATA:
		if (p->hdr.pdo < hlen || p->hdr.pdo > plen)
			return proto(
			    s, "C2HData data offset %u outside the PDU (header %u, length %u)",
			    p->hdr.pdo, hlen, plen);
		if (plen - p->hdr.pdo != le32toh(p->data.datal))
			return proto(s, "C2HData carries %u bytes but says DATAL %u",
				     plen - p->hdr.pdo, le32toh(p->data.datal));
		return discard(s, p->hdr.pdo - hlen);
	case NVMF_TCP_C2H_TERM:
		if (plen > NVMF_TCP_TERM_MAX_PLEN)
			return proto(s, "C2HTermReq length %u (at most %u)", plen,
				     NVMF_TCP_TERM_MAX_PLEN);
		return discard(s, plen - hlen);
	default:
		if (plen != hlen)
			return proto(s, "%s PDU length %u (expected %u)", pdu_name(type), plen,
				     hlen);
		return 0;
	}
}

/* The target ended the connection with a C2HTermReq. */
static int term_error(struct nvmf_admin *s, const union nvmf_tcp_pdu *p)
{
	static const char *const fes[] = {
	    [1] = "invalid PDU header field",	  [2] = "PDU sequence error",
	    [3] = "header digest error",	  [4] = "data transfer out of range",
	    [5] = "data transfer limit exceeded", [6] = "unsupported parameter",
	};
	uint16_t f = le16toh(p->term.fes);
	uint32_t fei;

	memcpy(&fei, p->term.fei, sizeof(fei));

	return proto(s, "target terminated the connection (C2HTermReq: %s, FEI 0x%x)",
		     f < sizeof(fes) / sizeof(fes[0]) && fes[f] ? fes[f] : "unknown error",
		     le32toh(fei));
}

static int nvme_status_fail(struct nvmf_admin *s, int status)
{
	return broken(s, F_STATUS, "NVMe status 0x%03x (%s)%s", status & 0x7ff,
		      nvme_status_to_string(status & 0x7ff, true),
		      status & 0x4000 ? ", do not retry" : "");
}

/* The data for one R2T: H2CData PDUs no larger than the target's MAXH2CDATA. */
static int send_h2c(struct nvmf_admin *s, uint16_t cid, const union nvmf_tcp_pdu *p,
		    const struct xfer *x, uint32_t *sent)
{
	uint32_t off = le32toh(p->r2t.r2to), len = le32toh(p->r2t.r2tl), end;

	if (le16toh(p->r2t.cccid) != cid)
		return proto(s, "R2T for command id %u, expected %u", le16toh(p->r2t.cccid), cid);
	if (!x->out_len || x->in_capsule)
		return proto(s, "R2T for a command that has no data to send");
	if (off != *sent || !len || (uint64_t)off + len > x->out_len)
		return proto(s, "R2T for bytes %u+%u of a %u-byte transfer (%u sent)", off, len,
			     x->out_len, *sent);
	end = off + len;
	while (off < end) {
		uint32_t n = end - off < s->maxh2c ? end - off : s->maxh2c;
		struct nvmf_tcp_data h = {
		    .hdr = {.type = NVMF_TCP_H2C_DATA,
			    .flags = off + n == end ? NVMF_TCP_F_DATA_LAST : 0,
			    .hlen = sizeof(h),
			    .pdo = sizeof(h),
			    .plen = htole32(sizeof(h) + n)},
		    .cccid = htole16(cid),
		    .ttag = p->r2t.ttag,
		    .datao = htole32(off),
		    .datal = htole32(n),
		};

		if (send_all(s, &h, sizeof(h)) || send_all(s, (const char *)x->out + off, n))
			return -1;
		off += n;
	}
	*sent = end;
	return 0;
}

/* C2HData payload for the command in flight; 1: the transfer is complete
 * and the PDU said no response follows (SUCCESS flag). */
static int recv_c2h(struct nvmf_admin *s, uint16_t cid, const union nvmf_tcp_pdu *p,
		    const struct xfer *x, uint32_t *got)
{
	uint32_t off = le32toh(p->data.datao), len = le32toh(p->data.datal);
	uint8_t fl = p->hdr.flags;

	if (!x->in_len)
		return proto(s, "C2HData for a command that reads nothing");
	if (le16toh(p->data.cccid) != cid)
		return proto(s, "C2HData for command id %u, expected %u", le16toh(p->data.cccid),
			     cid);
	if (off != *got)
		return proto(s, "C2HData at offset %u, expected %u", off, *got);
	if (!len || len > x->in_len - *got)
		return proto(s, "C2HData of %u bytes at offset %u overruns the %u-byte transfer",
			     len, off, x->in_len);
	if (recv_exact(s, (char *)x->in + off, len, true))
		return -1;
	*got += len;
	if (!(fl & NVMF_TCP_F_DATA_SUCCESS))
		return 0;
	if (!(fl & NVMF_TCP_F_DATA_LAST))
		return proto(s, "C2HData with SUCCESS but without LAST_PDU");
	if (*got != x->in_len)
		return proto(s, "C2HData SUCCESS after %u of %u bytes", *got, x->in_len);
	return 1;
}

/* Send one command capsule and run it to its completion. */
static int exec(struct nvmf_admin *s, const char *step, struct nvmf_sqe *sqe, const struct xfer *x,
		struct nvmf_cqe *cqe)
{
	uint8_t buf[sizeof(struct nvmf_tcp_cmd) + NVMF_ADMIN_ICD_MAX];
	struct nvmf_tcp_cmd *c = (struct nvmf_tcp_cmd *)buf;
	uint32_t icd = x->in_capsule ? x->out_len : 0, got = 0, sent = 0;
	union nvmf_tcp_pdu p;
	uint16_t cid;
	int status;

	begin(s, step);
	if (s->fd < 0 || !s->icdone)
		return broken(s, F_SYS, "not connected");
	if (icd > NVMF_ADMIN_ICD_MAX || x->in_len > NVMF_MAX_XFER)
		return broken(s, F_SYS, "transfer too large");
	cid = s->next_cid;
	s->next_cid = s->next_cid >= 0xfffe ? 1 : s->next_cid + 1;

	sqe->cid = htole16(cid);
	sqe->flags |= NVMF_SQE_FLAG_SGL;
	sqe->sgl_addr = 0;
	sqe->sgl_len = htole32(x->out_len ? x->out_len : x->in_len);
	sqe->sgl_type = icd ? NVMF_SGL_INCAPSULE : NVMF_SGL_TRANSPORT_BLOCK;
	memset(&c->hdr, 0, sizeof(c->hdr));
	c->hdr.type = NVMF_TCP_CMD;
	c->hdr.hlen = sizeof(*c);
	c->hdr.pdo = icd ? sizeof(*c) : 0;
	c->hdr.plen = htole32(sizeof(*c) + icd);
	c->sqe = *sqe;
	if (icd)
		memcpy(buf + sizeof(*c), x->out, icd);
	if (send_all(s, buf, sizeof(*c) + icd))
		return -1;

	for (;;) {
		int r;

		if (recv_pdu(s, &p))
			return -1;
		switch (p.hdr.type) {
		case NVMF_TCP_RSP:
			if (le16toh(p.rsp.cqe.cid) != cid)
				return proto(s, "response for command id %u, expected %u",
					     le16toh(p.rsp.cqe.cid), cid);
			*cqe = p.rsp.cqe;
			goto done;
		case NVMF_TCP_C2H_DATA:
			r = recv_c2h(s, cid, &p, x, &got);
			if (r < 0)
				return -1;
			if (r == 1) {
				memset(cqe, 0, sizeof(*cqe));
				cqe->cid = htole16(cid);
				goto done;
			}
			break;
		case NVMF_TCP_R2T:
			if (send_h2c(s, cid, &p, x, &sent))
				return -1;
			break;
		case NVMF_TCP_C2H_TERM:
			return term_error(s, &p);
		default:
			return proto(s, "unexpected %s PDU", pdu_name(p.hdr.type));
		}
	}
done:
	s->rtt_ns = now_ns() - s->t0_ns;
	status = le16toh(cqe->status) >> 1;
	s->status = status;
	if (status)
		return nvme_status_fail(s, status);
	if (got != x->in_len)
		return proto(s, "success after %u of %u data bytes", got, x->in_len);
	if (x->out_len && !icd && sent != x->out_len)
		return proto(s, "success after %u of %u bytes were requested (R2T)", sent,
			     x->out_len);
	return 0;
}

/* ---------------------------------------------------------------- API */

static void hostid_default(uint8_t id[16])
{
	char *f = nvmf_hostid_from_file();
	unsigned v[16];

	if (f && sscanf(f, "%2x%2x%2x%2x-%2x%2x-%2x%2x-%2x%2x-%2x%2x%2x%2x%2x%2x", &v[0], &v[1],
			&v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9], &v[10], &v[11],
			&v[12], &v[13], &v[14], &v[15]) == 16) {
		for (int i = 0; i < 16; i++)
			id[i] = (uint8_t)v[i];
	} else if (getrandom(id, 16, 0) != 16) {
		/* No entropy source: still unique enough per process. */
		uint64_t t = now_ns() ^ ((uint64_t)getpid() << 32);

		memcpy(id, &t, 8);
		memcpy(id + 8, &t, 8);
	}
	free(f);
	id[6] = (id[6] & 0x0f) | 0x40; /* a version 4 UUID */
	id[8] = (id[8] & 0x3f) | 0x80;
}

struct nvmf_admin *nvmf_admin_new(const struct nvmf_target *t, const struct nvmf_admin_opts *o)
{
	static const uint8_t zero[16];
	struct nvmf_admin *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->t = *t;
	s->o = *o;
	s->fd = -1;
	s->next_cid = 1;
	if (!s->t.port)
		s->t.port = 4420;
	if (!s->o.timeout_ms)
		s->o.timeout_ms = 2000;
	if (!s->o.kato_ms)
		s->o.kato_ms = 30000;
	s->t.addr[sizeof(s->t.addr) - 1] = 0;
	s->t.subnqn[sizeof(s->t.subnqn) - 1] = 0;
	s->t.hostnqn[sizeof(s->t.hostnqn) - 1] = 0;
	if (!memcmp(s->t.hostid, zero, 16))
		hostid_default(s->t.hostid);
	if (!s->t.hostnqn[0]) {
		char *f = nvmf_hostnqn_from_file();
		const uint8_t *h = s->t.hostid;

		if (f && *f)
			snprintf(s->t.hostnqn, sizeof(s->t.hostnqn), "%s", f);
		else
			snprintf(
			    s->t.hostnqn, sizeof(s->t.hostnqn),
			    "nqn.2014-08.org.nvmexpress:uuid:%02x%02x%02x%02x-%02x%02x-%02x%02x-"
			    "%02x%02x-%02x%02x%02x%02x%02x%02x",
			    h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7], h[8], h[9], h[10],
			    h[11], h[12], h[13], h[14], h[15]);
		free(f);
	}
	snprintf(s->peer, sizeof(s->peer), strchr(s->t.addr, ':') ? "[%s]:%u" : "%s:%u", s->t.addr,
		 s->t.port);
	return s;
}

void nvmf_admin_free(struct nvmf_admin *s)
{
	if (!s)
		return;
	close_fd(s);
	free(s);
}

const char *nvmf_admin_error(const struct nvmf_admin *s)
{
	return s->err[0] ? s->err : "no error";
}

int nvmf_admin_status(const struct nvmf_admin *s)
{
	return s->status;
}

bool nvmf_admin_conn_lost(const struct nvmf_admin *s)
{
	return s->kind == F_CLOSED;
}

const char *nvmf_admin_peer(const struct nvmf_admin *s)
{
	return s->peer;
}

bool nvmf_admin_is_open(const struct nvmf_admin *s)
{
	return s->fd >= 0 && s->connected;
}

void nvmf_admin_close(struct nvmf_admin *s)
{
	close_fd(s);
}

uint16_t nvmf_admin_cntlid(const struct nvmf_admin *s)
{
	return s->cntlid;
}

uint64_t nvmf_admin_last_rtt_ns(const struct nvmf_admin *s)
{
	return s->rtt_ns;
}

bool nvmf_admin_connect_used_r2t(const struct nvmf_admin *s)
{
	return s->used_r2t;
}

uint32_t nvmf_admin_vs(const struct nvmf_admin *s)
{
	return s->vs;
}

void nvmf_admin_use_fd(struct nvmf_admin *s, int fd)
{
	close_fd(s);
	s->fd = fd;
	s->next_cid = 1;
}

int nvmf_admin_tcp_connect(struct nvmf_admin *s)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV};
	struct addrinfo *ai = NULL;
	socklen_t elen = sizeof(int);
	char port[8];
	int one = 1, e = 0, r;

	close_fd(s);
	begin(s, "TCP connect");
	snprintf(port, sizeof(port), "%u", s->t.port);
	r = getaddrinfo(s->t.addr, port, &hints, &ai);
	if (r)
		return broken(s, F_SYS, "'%s' is not a numeric IPv4/IPv6 address (%s)", s->t.addr,
			      gai_strerror(r));
	s->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->fd < 0) {
		r = broken(s, F_SYS, "socket: %s", strerror(errno));
		goto out;
	}
	/* Capsules are small and each waits for its answer: no Nagle delay. */
	if (setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one))) {
		r = broken(s, F_SYS, "TCP_NODELAY: %s", strerror(errno));
		goto out;
	}
	if (s->t.ifname[0] &&
	    setsockopt(s->fd, SOL_SOCKET, SO_BINDTODEVICE, s->t.ifname, strlen(s->t.ifname))) {
		r = broken(s, F_SYS, "bind to %s: %s", s->t.ifname, strerror(errno));
		goto out;
	}
	r = connect(s->fd, ai->ai_addr, ai->ai_addrlen);
	if (r && s->t.ifname[0] && (errno == ENETUNREACH || errno == EHOSTUNREACH)) {
		/* No route through that interface: the kernel's own then, on a
		 * fresh socket (a failed connect leaves this one unusable). */
		close(s->fd);
		s->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (s->fd < 0 || setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one))) {
			r = broken(s, F_SYS, "socket: %s", strerror(errno));
			goto out;
		}
		r = connect(s->fd, ai->ai_addr, ai->ai_addrlen);
	}
	if (r && errno != EINPROGRESS) {
		r = broken(s, F_CLOSED, "%s", strerror(errno));
		goto out;
	}
	r = wait_io(s, POLLOUT);
	if (r)
		goto out;
	if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &e, &elen) || e) {
		r = broken(s, F_CLOSED, "%s", strerror(e ? e : errno));
		goto out;
	}
	r = 0;
out:
	freeaddrinfo(ai);
	return r;
}

int nvmf_admin_icreq(struct nvmf_admin *s)
{
	struct nvmf_tcp_icreq q = {
	    .hdr = {.type = NVMF_TCP_ICREQ, .hlen = sizeof(q), .plen = htole32(sizeof(q))},
	    .pfv = 0,	 /* PDU format version 1.0 */
	    .hpda = 0,	 /* no padding before data */
	    .digest = 0, /* no header or data digest */
	    .maxr2t = 0, /* one outstanding R2T */
	};
	union nvmf_tcp_pdu p;

	begin(s, "ICResp");
	if (s->fd < 0)
		return broken(s, F_SYS, "not connected");
	s->icdone = false;
	if (send_all(s, &q, sizeof(q)) || recv_pdu(s, &p))
		return -1;
	if (p.hdr.type == NVMF_TCP_C2H_TERM)
		return term_error(s, &p);
	if (p.hdr.type != NVMF_TCP_ICRESP)
		return proto(s, "expected ICResp, got %s", pdu_name(p.hdr.type));
	if (le16toh(p.icresp.pfv) != 0)
		return proto(s, "unsupported PDU format version %u", le16toh(p.icresp.pfv));
	if (p.icresp.digest)
		return proto(s, "target enabled digests 0x%02x that were not asked for",
			     p.icresp.digest);
	if (p.icresp.cpda > 31)
		return proto(s, "CPDA %u out of range", p.icresp.cpda);
	s->maxh2c = le32toh(p.icresp.maxdata);
	if (s->maxh2c < 4096)
		return proto(s, "MAXH2CDATA %u is below the minimum of 4096", s->maxh2c);
	s->icdone = true;
	s->next_cid = 1;
	return 0;
}

/* Connect's "invalid parameter" status points at the offending field. */
static void connect_reason(struct nvmf_admin *s, uint32_t result)
{
	const char *f = NULL;
	char prev[sizeof(s->err)];
	int sc = s->status & 0xff, sct = (s->status >> 8) & 7;

	if (sct != NVME_SCT_CMD_SPECIFIC)
		return;
	if (sc == NVME_SC_CONNECT_INVALID_HOST)
		f = "the host NQN is not allowed on this subsystem";
	else if (sc == NVME_SC_CONNECT_CTRL_BUSY)
		f = "the controller is busy";
	else if (sc == NVME_SC_CONNECT_INVALID_PARAM && (result & 0x10000)) {
		switch (result & 0xffff) {
		case offsetof(struct nvmf_connect_data, subsysnqn):
			f = "no such subsystem NQN on this port";
			break;
		case offsetof(struct nvmf_connect_data, hostnqn):
			f = "the host NQN was refused";
			break;
		case offsetof(struct nvmf_connect_data, cntlid):
			f = "the controller id was refused";
			break;
		default:
			f = "a field of the Connect data was refused";
		}
	}
	if (!f)
		return;
	snprintf(prev, sizeof(prev), "%s", s->err);
	fmt(s->err, sizeof(s->err), "%s; %s (subsystem '%s', host '%s')", prev, f, s->t.subnqn,
	    s->t.hostnqn);
}

int nvmf_admin_fabrics_connect(struct nvmf_admin *s, bool in_capsule)
{
	struct nvmf_connect_data *d = calloc(1, sizeof(*d));
	struct nvmf_sqe c = {
	    .opcode = NVMF_OPC_FABRICS,
	    .nsid = htole32(nvme_fabrics_type_connect), /* FCTYPE, byte 4 */
	    .cdw10 = htole32(0),			/* RECFMT 0, QID 0: admin queue */
	    .cdw11 = htole32(NVMF_ADMIN_SQSIZE),	/* SQSIZE, CATTR 0 */
	    .cdw12 = htole32(s->o.kato_ms),		/* KATO */
	};
	struct xfer x = {.out_len = sizeof(*d), .in_capsule = in_capsule};
	struct nvmf_cqe cqe = {0};
	int r;

	if (!d)
		return broken(s, F_SYS, "out of memory");
	memcpy(d->hostid, s->t.hostid, sizeof(d->hostid));
	d->cntlid = htole16(0xffff); /* dynamic controller model: any controller */
	snprintf(d->subsysnqn, sizeof(d->subsysnqn), "%s", s->t.subnqn);
	snprintf(d->hostnqn, sizeof(d->hostnqn), "%s", s->t.hostnqn);
	x.out = d;
	r = exec(s, in_capsule ? "Connect" : "Connect (data by R2T)", &c, &x, &cqe);
	if (r) {
		if (s->kind == F_STATUS)
			connect_reason(s, (uint32_t)le64toh(cqe.result));
		goto out;
	}
	s->cntlid = (uint16_t)le64toh(cqe.result);
	s->connected = true;
	s->used_r2t = !in_capsule;
out:
	free(d);
	return r;
}

int nvmf_admin_prop_get(struct nvmf_admin *s, uint32_t off, bool eight, uint64_t *val)
{
	struct nvmf_sqe c = {
	    .opcode = NVMF_OPC_FABRICS,
	    .nsid = htole32(nvme_fabrics_type_property_get),
	    .cdw10 = htole32(eight ? 1 : 0), /* ATTRIB: property size */
	    .cdw11 = htole32(off),
	};
	struct xfer x = {0};
	struct nvmf_cqe cqe = {0};
	char step[40];

	snprintf(step, sizeof(step), "Property Get %s",
		 off == NVME_REG_CAP	? "CAP"
		 : off == NVME_REG_VS	? "VS"
		 : off == NVME_REG_CC	? "CC"
		 : off == NVME_REG_CSTS ? "CSTS"
					: "");
	if (exec(s, step, &c, &x, &cqe))
		return -1;
	*val = eight ? le64toh(cqe.result) : (uint32_t)le64toh(cqe.result);
	return 0;
}

int nvmf_admin_prop_set(struct nvmf_admin *s, uint32_t off, uint64_t val)
{
	struct nvmf_sqe c = {
	    .opcode = NVMF_OPC_FABRICS,
	    .nsid = htole32(nvme_fabrics_type_property_set),
	    .cdw10 = htole32(0), /* 4-byte property */
	    .cdw11 = htole32(off),
	    .cdw12 = htole32((uint32_t)val),
	    .cdw13 = htole32((uint32_t)(val >> 32)),
	};
	struct xfer x = {0};
	struct nvmf_cqe cqe = {0};

	return exec(s, off == NVME_REG_CC ? "Property Set CC" : "Property Set", &c, &x, &cqe);
}

/* A fabrics controller accepts admin commands other than Fabrics ones only
 * once CC.EN is set and CSTS.RDY follows. */
int nvmf_admin_enable(struct nvmf_admin *s)
{
	uint64_t cap, vs, cc, csts, until;

	if (nvmf_admin_prop_get(s, NVME_REG_CAP, true, &cap) ||
	    nvmf_admin_prop_get(s, NVME_REG_VS, false, &vs) ||
	    nvmf_admin_prop_get(s, NVME_REG_CC, false, &cc))
		return -1;
	s->vs = (uint32_t)vs;
	if (!(cc & 1)) {
		/* NVM command set, 4 KiB pages, round robin, 64/16-byte entries. */
		cc = 1u | (6u << 16) | (4u << 20);
		if (nvmf_admin_prop_set(s, NVME_REG_CC, cc))
			return -1;
	}
	until = now_ns() + (uint64_t)s->o.timeout_ms * 1000000ull;
	for (;;) {
		struct timespec pause = {0, 10000000L}; /* 10 ms */

		if (nvmf_admin_prop_get(s, NVME_REG_CSTS, false, &csts))
			return -1;
		if (csts & 2) {
			set_step(s, "CSTS");
			return broken(s, F_STATUS,
				      "controller fatal status (CSTS 0x%x) after CC.EN",
				      (unsigned)csts);
		}
		if (csts & 1)
			return 0;
		if (now_ns() >= until) {
			set_step(s, "CSTS.RDY");
			return broken(s, F_TIMEOUT, "not ready %u ms after CC.EN=1 (CAP.TO %u ms)",
				      s->o.timeout_ms, (unsigned)((cap >> 24) & 0xff) * 500);
		}
		nanosleep(&pause, NULL);
	}
}

int nvmf_admin_identify_ctrl(struct nvmf_admin *s, struct nvme_id_ctrl *id)
{
	struct nvmf_sqe c = {
	    .opcode = nvme_admin_identify,
	    .cdw10 = htole32(NVME_IDENTIFY_CNS_CTRL),
	};
	struct xfer x = {.in = id, .in_len = sizeof(*id)};
	struct nvmf_cqe cqe = {0};

	return exec(s, "Identify Controller", &c, &x, &cqe);
}

int nvmf_admin_get_log(struct nvmf_admin *s, uint8_t lid, uint8_t lsp, uint32_t nsid, void *buf,
		       uint32_t len)
{
	uint32_t numd = len / 4 - 1;
	struct nvmf_sqe c = {
	    .opcode = nvme_admin_get_log_page,
	    .nsid = htole32(nsid),
	    .cdw10 = htole32(lid | (uint32_t)(lsp & 0x7f) << 8 | (numd & 0xffff) << 16),
	    .cdw11 = htole32(numd >> 16),
	};
	struct xfer x = {.in = buf, .in_len = len};
	struct nvmf_cqe cqe = {0};
	char step[40];

	if (lid == NVME_LOG_LID_SMART)
		snprintf(step, sizeof(step), "Get Log Page SMART/Health");
	else if (lid == NVME_LOG_LID_ANA)
		snprintf(step, sizeof(step), "Get Log Page ANA");
	else
		snprintf(step, sizeof(step), "Get Log Page 0x%02x", lid);
	if (!len || len % 4 || len > NVMF_MAX_XFER) {
		begin(s, step);
		return broken(s, F_STATUS, "bad length %u", len);
	}
	return exec(s, step, &c, &x, &cqe);
}

int nvmf_admin_keep_alive(struct nvmf_admin *s)
{
	struct nvmf_sqe c = {.opcode = nvme_admin_keep_alive};
	struct xfer x = {0};
	struct nvmf_cqe cqe = {0};

	return exec(s, "Keep Alive", &c, &x, &cqe);
}

/* In-capsule Connect data refused in a way that R2T may fix: an SGL status,
 * or the target dropping the connection over the unexpected bytes. */
static bool retry_by_r2t(const struct nvmf_admin *s)
{
	int sc = s->status & 0xff, sct = (s->status >> 8) & 7;

	if (s->kind == F_CLOSED || s->kind == F_PROTO)
		return true;
	return s->kind == F_STATUS && sct == NVME_SCT_GENERIC &&
	       (sc == NVME_SC_SGL_INVALID_OFFSET || sc == NVME_SC_SGL_INVALID_DATA ||
		sc == NVME_SC_SGL_INVALID_TYPE);
}

static int bring_up(struct nvmf_admin *s, bool in_capsule)
{
	if (nvmf_admin_tcp_connect(s) || nvmf_admin_icreq(s) ||
	    nvmf_admin_fabrics_connect(s, in_capsule))
		return -1;
	return 0;
}

int nvmf_admin_open(struct nvmf_admin *s)
{
	int r;

	if (s->o.connect_data == NVMF_CD_R2T) {
		r = bring_up(s, false);
	} else {
		r = bring_up(s, true);
		if (r && s->o.connect_data == NVMF_CD_AUTO && !strcmp(s->step, "Connect") &&
		    retry_by_r2t(s)) {
			char first[sizeof(s->err)];

			snprintf(first, sizeof(first), "%s", s->err);
			r = bring_up(s, false);
			if (r) {
				char again[sizeof(s->err)];

				snprintf(again, sizeof(again), "%s", s->err);
				fmt(s->err, sizeof(s->err), "%s (in-capsule before: %.120s)", again,
				    first);
			}
		}
	}
	if (r)
		return -1;
	if (nvmf_admin_enable(s)) {
		close_fd(s);
		return -1;
	}
	return 0;
}

int nvmf_parse_addr(const char *str, struct nvmf_target *t, char *err, size_t errlen)
{
	const char *a = str, *colon = strrchr(str, ':'), *p = NULL;
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST};
	struct addrinfo *ai = NULL;
	size_t alen;
	char *end;

	if (*str == '[') {
		const char *rb = strchr(str, ']');

		if (!rb || (rb[1] && rb[1] != ':')) {
			snprintf(err, errlen, "'%s': use [IPV6]:PORT", str);
			return -1;
		}
		a = str + 1;
		alen = (size_t)(rb - a);
		p = rb[1] ? rb + 2 : NULL;
	} else if (colon && strchr(str, ':') == colon) {
		alen = (size_t)(colon - str); /* IPv4:PORT */
		p = colon + 1;
	} else {
		alen = strlen(str); /* IPv4, or IPv6 without a port */
	}
	if (!alen || alen >= sizeof(t->addr)) {
		snprintf(err, errlen, "'%s': no address", str);
		return -1;
	}
	memcpy(t->addr, a, alen);
	t->addr[alen] = 0;
	t->port = 4420;
	if (p) {
		unsigned long v = strtoul(p, &end, 10);

		if (!*p || *end || !v || v > 65535) {
			snprintf(err, errlen, "'%s': port must be 1-65535", str);
			return -1;
		}
		t->port = (uint16_t)v;
	}
	if (getaddrinfo(t->addr, NULL, &hints, &ai)) {
		snprintf(err, errlen, "'%s': not a numeric IPv4 or IPv6 address", t->addr);
		return -1;
	}
	freeaddrinfo(ai);
	return 0;
}
