// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* The NVMe/TCP admin client against a scripted peer on a socketpair: the
 * PDUs it sends are what the spec wants, and every malformed, truncated,
 * misdirected or missing answer ends in a clear error, never a crash or an
 * overrun (this binary runs under ASan/UBSan).  Responses are written
 * before the call that reads them; the client numbers commands 1, 2, ...
 * after ICResp. */
#include <endian.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "lib/health/nvmf_admin.h"

struct fx {
	int peer;
	struct nvmf_admin *s;
};

static struct nvmf_admin *new_session(unsigned timeout_ms, int cancel_fd)
{
	struct nvmf_target t = {.addr = "10.0.0.2",
				.port = 4420,
				.subnqn = "nqn.2026-11.io.vsn:vol1",
				.hostnqn = "nqn.2014-08.org.nvmexpress:uuid:test"};
	struct nvmf_admin_opts o = {.timeout_ms = timeout_ms, .cancel_fd = cancel_fd};

	t.hostid[0] = 1;
	return nvmf_admin_new(&t, &o);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	int sv[2];

	assert_non_null(f);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	f->peer = sv[1];
	f->s = new_session(200, -1);
	assert_non_null(f->s);
	nvmf_admin_use_fd(f->s, sv[0]);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	nvmf_admin_free(f->s);
	if (f->peer >= 0)
		close(f->peer);
	free(f);
	return 0;
}

static void put(struct fx *f, const void *b, size_t n)
{
	assert_int_equal(write(f->peer, b, n), (ssize_t)n);
}

static void get(struct fx *f, void *b, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = read(f->peer, (char *)b + got, n - got);

		assert_true(r > 0);
		got += (size_t)r;
	}
}

/* The peer stops sending: the client sees end of stream. */
static void eof(struct fx *f)
{
	shutdown(f->peer, SHUT_WR);
}

static void hdr(struct nvmf_tcp_hdr *h, uint8_t type, uint8_t flags, uint8_t hlen, uint8_t pdo,
		uint32_t plen)
{
	h->type = type;
	h->flags = flags;
	h->hlen = hlen;
	h->pdo = pdo;
	h->plen = htole32(plen);
}

static void put_icresp(struct fx *f, uint32_t maxdata)
{
	struct nvmf_tcp_icresp r = {0};

	hdr(&r.hdr, NVMF_TCP_ICRESP, 0, 128, 0, 128);
	r.maxdata = htole32(maxdata);
	put(f, &r, sizeof(r));
}

static void put_rsp(struct fx *f, uint16_t cid, uint16_t status, uint64_t result)
{
	struct nvmf_tcp_rsp r = {0};

	hdr(&r.hdr, NVMF_TCP_RSP, 0, 24, 0, 24);
	r.cqe.cid = htole16(cid);
	r.cqe.status = htole16((uint16_t)(status << 1));
	r.cqe.result = htole64(result);
	put(f, &r, sizeof(r));
}

static void put_c2h(struct fx *f, uint16_t cid, uint32_t off, const void *data, uint32_t len,
		    uint8_t flags)
{
	struct nvmf_tcp_data d = {0};

	hdr(&d.hdr, NVMF_TCP_C2H_DATA, flags, 24, 24, 24 + len);
	d.cccid = htole16(cid);
	d.datao = htole32(off);
	d.datal = htole32(len);
	put(f, &d, sizeof(d));
	put(f, data, len);
}

static void drain(struct fx *f)
{
	char b[4096];

	while (recv(f->peer, b, sizeof(b), MSG_DONTWAIT) > 0)
		;
}

/* ICReq sent and ICResp accepted. */
static void handshake(struct fx *f)
{
	struct nvmf_tcp_icreq q;

	put_icresp(f, 0x400000);
	assert_int_equal(nvmf_admin_icreq(f->s), 0);
	get(f, &q, sizeof(q));
	assert_int_equal(q.hdr.type, NVMF_TCP_ICREQ);
	assert_int_equal(q.hdr.hlen, 128);
	assert_int_equal(le32toh(q.hdr.plen), 128);
	assert_int_equal(q.digest, 0);
	assert_int_equal(q.hpda, 0);
}

static void expect_error(struct fx *f, const char *needle)
{
	const char *e = nvmf_admin_error(f->s);

	if (!strstr(e, needle))
		fail_msg("error '%s' does not contain '%s'", e, needle);
	assert_true(!strncmp(e, "10.0.0.2:4420: ", 15));
}

static uint64_t ms_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------- good paths */

static void test_connect_in_capsule(void **state)
{
	struct fx *f = *state;
	struct nvmf_tcp_cmd c;
	struct nvmf_connect_data d;

	handshake(f);
	put_rsp(f, 1, 0, 7);
	assert_int_equal(nvmf_admin_fabrics_connect(f->s, true), 0);
	assert_int_equal(nvmf_admin_cntlid(f->s), 7);
	assert_false(nvmf_admin_connect_used_r2t(f->s));
	get(f, &c, sizeof(c));
	assert_int_equal(c.hdr.type, NVMF_TCP_CMD);
	assert_int_equal(c.hdr.hlen, 72);
	assert_int_equal(c.hdr.pdo, 72);
	assert_int_equal(le32toh(c.hdr.plen), 72 + 1024);
	assert_int_equal(c.sqe.opcode, 0x7f);
	assert_int_equal(c.sqe.flags, 0x40);
	assert_int_equal(le16toh(c.sqe.cid), 1);
	assert_int_equal(((uint8_t *)&c.sqe)[4], 0x01);			     /* FCTYPE Connect */
	assert_int_equal(le16toh(*(uint16_t *)((uint8_t *)&c.sqe + 42)), 0); /* QID */
	assert_int_equal(le16toh(*(uint16_t *)((uint8_t *)&c.sqe + 44)), 31);
	assert_int_equal(c.sqe.sgl_type, 0x01);
	assert_int_equal(le32toh(c.sqe.sgl_len), 1024);
	get(f, &d, sizeof(d));
	assert_int_equal(le16toh(d.cntlid), 0xffff);
	assert_string_equal(d.subsysnqn, "nqn.2026-11.io.vsn:vol1");
	assert_string_equal(d.hostnqn, "nqn.2014-08.org.nvmexpress:uuid:test");
	assert_int_equal(d.hostid[0], 1);
}

static void test_connect_r2t(void **state)
{
	struct fx *f = *state;
	struct nvmf_tcp_r2t r = {0};
	struct nvmf_tcp_cmd c;
	struct nvmf_tcp_data h;
	struct nvmf_connect_data d;

	handshake(f);
	hdr(&r.hdr, NVMF_TCP_R2T, 0, 24, 0, 24);
	r.cccid = htole16(1);
	r.ttag = htole16(5);
	r.r2tl = htole32(1024);
	put(f, &r, sizeof(r));
	put_rsp(f, 1, 0, 3);
	assert_int_equal(nvmf_admin_fabrics_connect(f->s, false), 0);
	assert_true(nvmf_admin_connect_used_r2t(f->s));
	get(f, &c, sizeof(c));
	assert_int_equal(le32toh(c.hdr.plen), 72);
	assert_int_equal(c.hdr.pdo, 0);
	assert_int_equal(c.sqe.sgl_type, 0x5a);
	assert_int_equal(le32toh(c.sqe.sgl_len), 1024);
	get(f, &h, sizeof(h));
	assert_int_equal(h.hdr.type, NVMF_TCP_H2C_DATA);
	assert_int_equal(h.hdr.flags, NVMF_TCP_F_DATA_LAST);
	assert_int_equal(h.hdr.hlen, 24);
	assert_int_equal(h.hdr.pdo, 24);
	assert_int_equal(le32toh(h.hdr.plen), 24 + 1024);
	assert_int_equal(le16toh(h.cccid), 1);
	assert_int_equal(le16toh(h.ttag), 5);
	assert_int_equal(le32toh(h.datao), 0);
	assert_int_equal(le32toh(h.datal), 1024);
	get(f, &d, sizeof(d));
	assert_string_equal(d.subsysnqn, "nqn.2026-11.io.vsn:vol1");
}

static void test_identify_split_and_log_success_flag(void **state)
{
	struct fx *f = *state;
	static struct nvme_id_ctrl id, want;
	static uint8_t smart[512], got[512];
	struct nvmf_tcp_cmd c;

	handshake(f);
	memset(&want, 0, sizeof(want));
	memcpy(want.mn, "Linux                                   ", 40);
	want.cntlid = htole16(9);
	/* two C2HData PDUs, then the response */
	put_c2h(f, 1, 0, &want, 2048, 0);
	put_c2h(f, 1, 2048, (uint8_t *)&want + 2048, 2048, NVMF_TCP_F_DATA_LAST);
	put_rsp(f, 1, 0, 0);
	assert_int_equal(nvmf_admin_identify_ctrl(f->s, &id), 0);
	assert_memory_equal(&id, &want, sizeof(id));
	get(f, &c, sizeof(c));
	assert_int_equal(c.sqe.opcode, 0x06);
	assert_int_equal(le32toh(c.sqe.cdw10), 1);
	assert_int_equal(c.sqe.sgl_type, 0x5a);
	assert_int_equal(le32toh(c.sqe.sgl_len), 4096);

	/* LAST|SUCCESS: no CapsuleResp follows */
	for (unsigned i = 0; i < sizeof(smart); i++)
		smart[i] = (uint8_t)i;
	put_c2h(f, 2, 0, smart, 512, NVMF_TCP_F_DATA_LAST | NVMF_TCP_F_DATA_SUCCESS);
	assert_int_equal(nvmf_admin_get_log(f->s, 0x02, 0, 0xffffffff, got, 512), 0);
	assert_memory_equal(got, smart, 512);
	get(f, &c, sizeof(c));
	assert_int_equal(c.sqe.opcode, 0x02);
	assert_int_equal(le32toh(c.sqe.nsid), 0xffffffff);
	assert_int_equal(le32toh(c.sqe.cdw10), 0x02 | (127u << 16));

	put_rsp(f, 3, 0, 0);
	assert_int_equal(nvmf_admin_keep_alive(f->s), 0);
	get(f, &c, sizeof(c));
	assert_int_equal(c.sqe.opcode, 0x18);
	assert_int_equal(le16toh(c.sqe.cid), 3);
}

static void test_enable_sequence(void **state)
{
	struct fx *f = *state;
	struct nvmf_tcp_cmd c;

	handshake(f);
	put_rsp(f, 1, 0, 0x0000000f0000ffffull); /* CAP */
	put_rsp(f, 2, 0, 0x10300);		 /* VS 1.3 */
	put_rsp(f, 3, 0, 0);			 /* CC: disabled */
	put_rsp(f, 4, 0, 0);			 /* Property Set CC */
	put_rsp(f, 5, 0, 0);			 /* CSTS: not ready yet */
	put_rsp(f, 6, 0, 1);			 /* CSTS.RDY */
	assert_int_equal(nvmf_admin_enable(f->s), 0);
	assert_int_equal(nvmf_admin_vs(f->s), 0x10300);
	for (int i = 0; i < 4; i++)
		get(f, &c, sizeof(c));
	/* the 4th command is Property Set CC with EN, IOSQES 6, IOCQES 4 */
	assert_int_equal(c.sqe.opcode, 0x7f);
	assert_int_equal(le32toh(c.sqe.nsid) & 0xff, 0x00);
	assert_int_equal(le32toh(c.sqe.cdw11), 0x14);
	assert_int_equal(le32toh(c.sqe.cdw12), 0x00460001);
}

/* ------------------------------------------------------------- failures */

static void test_icresp_timeout(void **state)
{
	struct fx *f = *state;
	uint64_t t0 = ms_now(), dt;

	assert_int_equal(nvmf_admin_icreq(f->s), -1);
	dt = ms_now() - t0;
	assert_string_equal(nvmf_admin_error(f->s), "10.0.0.2:4420: ICResp: timeout after 200 ms");
	assert_true(dt >= 195 && dt < 1000);
}

static void test_icresp_truncated(void **state)
{
	struct fx *f = *state;
	struct nvmf_tcp_icresp r = {0};

	hdr(&r.hdr, NVMF_TCP_ICRESP, 0, 128, 0, 128);
	put(f, &r, 50);
	eof(f);
	assert_int_equal(nvmf_admin_icreq(f->s), -1);
	expect_error(f, "ICResp: connection closed by the target in the middle of a PDU");
}

static void test_closed_at_once(void **state)
{
	struct fx *f = *state;

	eof(f);
	assert_int_equal(nvmf_admin_icreq(f->s), -1);
	expect_error(f, "ICResp: connection closed by the target");
}

static void test_not_nvme(void **state)
{
	struct fx *f = *state;

	put(f, "HTTP/1.1 400 Bad Request\r\n\r\n", 28);
	assert_int_equal(nvmf_admin_icreq(f->s), -1);
	expect_error(f, "unexpected PDU type 0x48");
	/* the session is closed after a protocol error */
	assert_int_equal(nvmf_admin_keep_alive(f->s), -1);
	expect_error(f, "Keep Alive: not connected");
}

static void test_icresp_bad_fields(void **state)
{
	struct fx *f = *state;
	struct nvmf_tcp_icresp r = {0};
	struct {
		uint8_t hlen;
		uint32_t plen;
		uint8_t flags, digest;
		uint32_t maxdata;
		const char *err;
	} cases[] = {
	    {24, 128, 0, 0, 4096, "ICResp PDU with header length 24 (expected 128)"},
	    {128, 0xffffffff, 0, 0, 4096, "ICResp PDU length 4294967295 (expected 128)"},
	    {128, 12, 0, 0, 4096, "shorter than its header"},
	    {128, 128, NVMF_TCP_F_HDGST, 0, 4096, "digest flags"},
	    {128, 128, 0, 3, 4096, "target enabled digests 0x03"},
	    {128, 128, 0, 0, 512, "MAXH2CDATA 512 is below the minimum"},
	};

	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int sv[2];

		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
		close(f->peer);
		f->peer = sv[1];
		nvmf_admin_use_fd(f->s, sv[0]);
		memset(&r, 0, sizeof(r));
		hdr(&r.hdr, NVMF_TCP_ICRESP, cases[i].flags, cases[i].hlen, 0, cases[i].plen);
		r.digest = cases[i].digest;
		r.maxdata = htole32(cases[i].maxdata);
		put(f, &r, sizeof(r));
		eof(f);
		assert_int_equal(nvmf_admin_icreq(f->s), -1);
		expect_error(f, cases[i].err);
	}
}

static void test_wrong_cid(void **state)
{
	struct fx *f = *state;

	handshake(f);
	put_rsp(f, 9, 0, 0);
	assert_int_equal(nvmf_admin_keep_alive(f->s), -1);
	expect_error(f, "Keep Alive: response for command id 9, expected 1");
}

static void test_c2h_overrun(void **state)
{
	struct fx *f = *state;
	static uint8_t big[8192];
	static struct nvme_id_ctrl id;

	handshake(f);
	put_c2h(f, 1, 0, big, sizeof(big), NVMF_TCP_F_DATA_LAST);
	assert_int_equal(nvmf_admin_identify_ctrl(f->s, &id), -1);
	expect_error(
	    f, "Identify Controller: C2HData of 8192 bytes at offset 0 overruns the 4096-byte");
}

static void test_c2h_bad_headers(void **state)
{
	struct fx *f = *state;
	static struct nvme_id_ctrl id;
	struct nvmf_tcp_data d;
	struct {
		uint16_t cid;
		uint8_t pdo;
		uint32_t plen, off, len;
		const char *err;
	} cases[] = {
	    {1, 200, 24 + 16, 0, 16, "C2HData data offset 200 outside the PDU"},
	    {1, 8, 24 + 16, 0, 16, "C2HData data offset 8 outside the PDU"},
	    {1, 24, 24 + 16, 0, 4000, "C2HData carries 16 bytes but says DATAL 4000"},
	    {4, 24, 24 + 16, 0, 16, "C2HData for command id 4, expected 1"},
	    {1, 24, 24 + 16, 64, 16, "C2HData at offset 64, expected 0"},
	    {1, 24, 24, 0, 0, "C2HData of 0 bytes"},
	};

	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int sv[2];

		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
		close(f->peer);
		f->peer = sv[1];
		nvmf_admin_use_fd(f->s, sv[0]);
		handshake(f);
		memset(&d, 0, sizeof(d));
		hdr(&d.hdr, NVMF_TCP_C2H_DATA, 0, 24, cases[i].pdo, cases[i].plen);
		d.cccid = htole16(cases[i].cid);
		d.datao = htole32(cases[i].off);
		d.datal = htole32(cases[i].len);
		put(f, &d, sizeof(d));
		put(f, &id, cases[i].plen - 24);
		eof(f);
		assert_int_equal(nvmf_admin_identify_ctrl(f->s, &id), -1);
		expect_error(f, cases[i].err);
	}
}

static void test_success_before_data(void **state)
{
	struct fx *f = *state;
	static uint8_t half[2048];
	static struct nvme_id_ctrl id;

	handshake(f);
	put_c2h(f, 1, 0, half, sizeof(half), 0);
	put_rsp(f, 1, 0, 0);
	assert_int_equal(nvmf_admin_identify_ctrl(f->s, &id), -1);
	expect_error(f, "success after 2048 of 4096 data bytes");
}

static void test_term_req(void **state)
{
	struct fx *f = *state;
	uint8_t t[24 + 72] = {0};
	struct nvmf_tcp_term *h = (struct nvmf_tcp_term *)t;

	handshake(f);
	hdr(&h->hdr, NVMF_TCP_C2H_TERM, 0, 24, 0, sizeof(t));
	h->fes = htole16(1);
	h->fei[0] = 2;
	put(f, t, sizeof(t));
	assert_int_equal(nvmf_admin_keep_alive(f->s), -1);
	expect_error(
	    f, "target terminated the connection (C2HTermReq: invalid PDU header field, FEI 0x2)");
}

static void test_r2t_out_of_range(void **state)
{
	struct fx *f = *state;
	struct nvmf_tcp_r2t r = {0};

	handshake(f);
	hdr(&r.hdr, NVMF_TCP_R2T, 0, 24, 0, 24);
	r.cccid = htole16(1);
	r.r2to = htole32(512);
	r.r2tl = htole32(1024);
	put(f, &r, sizeof(r));
	assert_int_equal(nvmf_admin_fabrics_connect(f->s, false), -1);
	expect_error(f, "R2T for bytes 512+1024 of a 1024-byte transfer");
}

static void test_r2t_without_data(void **state)
{
	struct fx *f = *state;
	struct nvmf_tcp_r2t r = {0};

	handshake(f);
	hdr(&r.hdr, NVMF_TCP_R2T, 0, 24, 0, 24);
	r.cccid = htole16(1);
	r.r2tl = htole32(16);
	put(f, &r, sizeof(r));
	assert_int_equal(nvmf_admin_keep_alive(f->s), -1);
	expect_error(f, "R2T for a command that has no data to send");
}

static void test_connect_rejected(void **state)
{
	struct fx *f = *state;

	handshake(f);
	/* Connect Invalid Parameters, in the data at offset 256 (subsysnqn) */
	put_rsp(f, 1, 0x4182, (1u << 16) | 256);
	assert_int_equal(nvmf_admin_fabrics_connect(f->s, true), -1);
	assert_int_equal(nvmf_admin_status(f->s), 0x4182);
	expect_error(f, "Connect: NVMe status 0x182");
	expect_error(f, "no such subsystem NQN on this port (subsystem 'nqn.2026-11.io.vsn:vol1'");
	/* an NVMe status leaves the connection usable */
	drain(f);
	put_rsp(f, 2, 0, 0);
	assert_int_equal(nvmf_admin_keep_alive(f->s), 0);
}

static void test_cancel(void **state)
{
	struct fx *f = *state;
	int efd = eventfd(0, EFD_CLOEXEC);
	uint64_t one = 1, t0;
	struct nvmf_admin *s = new_session(5000, efd);
	int sv[2];

	assert_true(efd >= 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	nvmf_admin_use_fd(s, sv[0]);
	assert_int_equal(write(efd, &one, sizeof(one)), 8);
	t0 = ms_now();
	assert_int_equal(nvmf_admin_icreq(s), -1);
	assert_true(ms_now() - t0 < 1000);
	assert_string_equal(nvmf_admin_error(s), "10.0.0.2:4420: ICResp: cancelled");
	nvmf_admin_free(s);
	close(sv[1]);
	close(efd);
	(void)f;
}

/* Bytes of a good Identify exchange, then damaged and cut at random: the
 * client must fail cleanly (or, rarely, succeed on an equivalent stream). */
static void test_fuzz_identify(void **state)
{
	struct fx *f = *state;
	static uint8_t good[24 + 4096 + 24], bad[sizeof(good)];
	static struct nvme_id_ctrl id;
	struct nvmf_tcp_data *d = (struct nvmf_tcp_data *)good;
	struct nvmf_tcp_rsp *r = (struct nvmf_tcp_rsp *)(good + 24 + 4096);
	unsigned seed = 12345, ok = 0, fails = 0;

	hdr(&d->hdr, NVMF_TCP_C2H_DATA, NVMF_TCP_F_DATA_LAST, 24, 24, 24 + 4096);
	d->cccid = htole16(1);
	d->datal = htole32(4096);
	hdr(&r->hdr, NVMF_TCP_RSP, 0, 24, 0, 24);
	r->cqe.cid = htole16(1);
	for (int it = 0; it < 3000; it++) {
		size_t len = sizeof(good);
		int sv[2];

		memcpy(bad, good, sizeof(good));
		/* flip 1-4 header bytes (data bytes do not matter to the parser) */
		for (int k = rand_r(&seed) % 4; k >= 0; k--) {
			size_t at = (size_t)rand_r(&seed) % 48;

			at = at < 24 ? at : 24 + 4096 + (at - 24);
			bad[at] = (uint8_t)rand_r(&seed);
		}
		if (rand_r(&seed) % 3 == 0)
			len = (size_t)rand_r(&seed) % sizeof(good);
		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
		close(f->peer);
		f->peer = sv[1];
		nvmf_admin_use_fd(f->s, sv[0]);
		handshake(f);
		put(f, bad, len);
		eof(f);
		if (nvmf_admin_identify_ctrl(f->s, &id) == 0) {
			ok++;
		} else {
			fails++;
			assert_true(!strncmp(nvmf_admin_error(f->s), "10.0.0.2:4420: ", 15));
		}
	}
	print_message("# fuzz: %u accepted, %u rejected\n", ok, fails);
	assert_true(fails > 2500);
}

/* ------------------------------------------------------------- addresses */

static void test_parse_addr(void **state)
{
	struct nvmf_target t;
	char err[128];

	assert_int_equal(nvmf_parse_addr("10.0.0.2", &t, err, sizeof(err)), 0);
	assert_string_equal(t.addr, "10.0.0.2");
	assert_int_equal(t.port, 4420);
	assert_int_equal(nvmf_parse_addr("10.0.0.2:8009", &t, err, sizeof(err)), 0);
	assert_int_equal(t.port, 8009);
	assert_int_equal(nvmf_parse_addr("[fd00::1]:4421", &t, err, sizeof(err)), 0);
	assert_string_equal(t.addr, "fd00::1");
	assert_int_equal(t.port, 4421);
	assert_int_equal(nvmf_parse_addr("fd00::1", &t, err, sizeof(err)), 0);
	assert_string_equal(t.addr, "fd00::1");
	assert_int_equal(t.port, 4420);
	assert_int_equal(nvmf_parse_addr("10.0.0.2:0", &t, err, sizeof(err)), -1);
	assert_int_equal(nvmf_parse_addr("10.0.0.2:70000", &t, err, sizeof(err)), -1);
	assert_int_equal(nvmf_parse_addr("10.0.0.2:", &t, err, sizeof(err)), -1);
	assert_int_equal(nvmf_parse_addr("[fd00::1", &t, err, sizeof(err)), -1);
	assert_int_equal(nvmf_parse_addr("storage.example", &t, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not a numeric"));
	assert_int_equal(nvmf_parse_addr("", &t, err, sizeof(err)), -1);
}

static void test_peer_name(void **state)
{
	struct nvmf_target t = {.addr = "fd00::2", .port = 4420, .subnqn = "x"};
	struct nvmf_admin_opts o = {.cancel_fd = -1};
	struct nvmf_admin *s = nvmf_admin_new(&t, &o);

	assert_non_null(s);
	assert_string_equal(nvmf_admin_peer(s), "[fd00::2]:4420");
	nvmf_admin_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_connect_in_capsule, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_connect_r2t, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_identify_split_and_log_success_flag, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_enable_sequence, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_icresp_timeout, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_icresp_truncated, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_closed_at_once, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_not_nvme, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_icresp_bad_fields, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_wrong_cid, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_c2h_overrun, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_c2h_bad_headers, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_success_before_data, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_term_req, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_r2t_out_of_range, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_r2t_without_data, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_connect_rejected, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fuzz_identify, setup, teardown),
	    cmocka_unit_test(test_parse_addr),
	    cmocka_unit_test(test_peer_name),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
