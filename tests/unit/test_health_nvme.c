// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* Health decoding (SMART counters, bounded ANA log parse, selectors) and the
 * background worker against fake NVMe/TCP targets on 127.0.0.1 (kernel-chosen
 * ports): a responsive one whose ANA state the test flips, one that accepts
 * and never answers, and a closed port.  Checks that the worker signals
 * changes (and only changes) through the eventfd, that a hung target does
 * not hold up another source, and that stop() does not wait for it. */
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
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

#include "lib/health/health_nvme.h"

static uint64_t ms_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------- decoding */

static void test_smart_decode(void **state)
{
	struct nvme_smart_log l = {0};
	struct nvme_health h = {0};

	l.critical_warning = NVME_SMART_CRIT_SPARE | NVME_SMART_CRIT_MEDIA;
	l.temperature[0] = 0x2c; /* 300 K */
	l.temperature[1] = 0x01;
	l.avail_spare = 5;
	l.spare_thresh = 10;
	l.percent_used = 101;
	l.media_errors[0] = 3;
	l.num_err_log_entries[1] = 1; /* 256 */
	l.data_units_written[15] = 1; /* beyond 64 bits: saturated */
	health_from_smart(&h, &l);
	assert_int_equal(h.temperature_k, 300);
	assert_int_equal(h.critical_warning, 0x09);
	assert_int_equal(h.avail_spare, 5);
	assert_int_equal(h.spare_thresh, 10);
	assert_int_equal(h.percent_used, 101);
	assert_int_equal(h.media_errors, 3);
	assert_int_equal(h.num_err_log_entries, 256);
	assert_true(h.data_units_written == UINT64_MAX);
	char buf[64];
	health_crit_names(h.critical_warning, buf, sizeof(buf));
	assert_string_equal(buf, "spare,read-only");
	health_crit_names(0, buf, sizeof(buf));
	assert_string_equal(buf, "none");
}

static void test_id_strings(void **state)
{
	static struct nvme_id_ctrl id;
	struct nvme_health h = {0};

	memcpy(id.mn, "Linux                                   ", 40);
	memcpy(id.sn, "0123456789abcdef\x01   ", 20);
	memcpy(id.fr, "6.1.0-28", 8); /* full width: no terminator */
	id.cntlid = htole16(3);
	id.cmic = NVME_CTRL_CMIC_MULTI_ANA_REPORTING;
	health_from_id(&h, &id);
	assert_string_equal(h.model, "Linux");
	assert_string_equal(h.serial, "0123456789abcdef?");
	assert_string_equal(h.firmware, "6.1.0-28");
	assert_int_equal(h.cntlid, 3);
	assert_true(h.ana_supported);
}

/* An ANA log: header, then groups (grpid, nnsids, state). */
static size_t ana_log(uint8_t *b, size_t cap, unsigned ngrps, const uint32_t *nns,
		      const uint8_t *states)
{
	struct nvme_ana_log hdr = {0};
	size_t off = sizeof(hdr);

	hdr.chgcnt = htole64(42);
	hdr.ngrps = htole16((uint16_t)ngrps);
	memcpy(b, &hdr, sizeof(hdr));
	for (unsigned i = 0; i < ngrps; i++) {
		struct nvme_ana_group_desc d = {0};

		d.grpid = htole32(i + 1);
		d.nnsids = htole32(nns[i]);
		d.state = states[i];
		assert_true(off + sizeof(d) + nns[i] * 4 <= cap);
		memcpy(b + off, &d, sizeof(d));
		off += sizeof(d);
		for (uint32_t k = 0; k < nns[i]; k++, off += 4)
			memcpy(b + off, &(uint32_t){htole32(k + 1)}, 4);
	}
	return off;
}

static void test_ana_parse(void **state)
{
	static uint8_t b[4096];
	static struct nvme_health h;
	uint32_t nns[3] = {1, 0, 5};
	uint8_t st[3] = {NVME_ANA_STATE_OPTIMIZED, NVME_ANA_STATE_INACCESSIBLE,
			 NVME_ANA_STATE_NONOPTIMIZED};
	size_t len = ana_log(b, sizeof(b), 3, nns, st);

	assert_int_equal(health_parse_ana(&h, b, len), 0);
	assert_int_equal(h.n_ana, 3);
	assert_int_equal(h.ana_chgcnt, 42);
	assert_int_equal(h.ana[0].grpid, 1);
	assert_string_equal(health_ana_state_name(h.ana[0].state), "optimized");
	assert_string_equal(health_ana_state_name(h.ana[1].state), "inaccessible");
	assert_int_equal(h.ana[2].nnsids, 5);
	assert_string_equal(health_ana_state_name(h.ana[2].state), "non-optimized");

	/* every cut of the log before its end is an error, never a read past it */
	for (size_t cut = 0; cut < len; cut++) {
		uint8_t *copy = malloc(cut ? cut : 1);

		memcpy(copy, b, cut);
		assert_int_equal(health_parse_ana(&h, copy, cut), -1);
		assert_non_null(strstr(h.error, "ANA log"));
		free(copy);
	}
	/* a group that claims more namespaces than the log holds */
	nns[2] = 2000000000u;
	memcpy(b + 16 + 32 + 4 + 32 + 4, &(uint32_t){htole32(nns[2])}, 4);
	assert_int_equal(health_parse_ana(&h, b, len), -1);
	assert_non_null(strstr(h.error, "lists 2000000000 namespaces"));
}

static void test_ana_many_groups(void **state)
{
	static uint8_t b[4096];
	static struct nvme_health h;
	uint32_t nns[20] = {0};
	uint8_t st[20];

	for (int i = 0; i < 20; i++)
		st[i] = NVME_ANA_STATE_OPTIMIZED;
	assert_int_equal(health_parse_ana(&h, b, ana_log(b, sizeof(b), 20, nns, st)), 0);
	assert_int_equal(h.n_ana, HEALTH_ANA_MAX);
	assert_int_equal(h.ana_groups, 20);
}

static void test_ana_log_len(void **state)
{
	static struct nvme_id_ctrl id;

	id.nanagrpid = htole32(128);
	id.mnan = htole32(1024);
	assert_int_equal(health_ana_log_len(&id), 16 + 128 * 32 + 1024 * 4);
	id.mnan = htole32(0xffffffff);
	assert_int_equal(health_ana_log_len(&id), 65536);
}

static void test_changed(void **state)
{
	static struct nvme_health a, b;

	a.reachable = b.reachable = true;
	a.n_ana = b.n_ana = 1;
	a.ana[0].grpid = b.ana[0].grpid = 1;
	a.ana[0].state = b.ana[0].state = NVME_ANA_STATE_OPTIMIZED;
	a.temperature_k = 300;
	b.temperature_k = 310; /* not a reason to wake the daemon */
	assert_false(health_changed(&a, &b));
	b.ana[0].state = NVME_ANA_STATE_INACCESSIBLE;
	assert_true(health_changed(&a, &b));
	b.ana[0].state = a.ana[0].state;
	b.critical_warning = 1;
	assert_true(health_changed(&a, &b));
	b.critical_warning = 0;
	b.reachable = false;
	assert_true(health_changed(&a, &b));
}

static void test_local_sel(void **state)
{
	struct health_local_sel s;
	char err[128];

	assert_int_equal(health_local_sel_parse("nvme3", &s, err, sizeof(err)), 0);
	assert_string_equal(s.dev, "nvme3");
	assert_int_equal(health_local_sel_parse("/dev/nvme12", &s, err, sizeof(err)), 0);
	assert_string_equal(s.dev, "nvme12");
	assert_int_equal(health_local_sel_parse("nvme1n1", &s, err, sizeof(err)), -1);
	assert_int_equal(health_local_sel_parse("10.0.0.2", &s, err, sizeof(err)), 0);
	assert_string_equal(s.traddr, "10.0.0.2");
	assert_int_equal(s.trsvcid, 0);
	assert_int_equal(health_local_sel_parse("10.0.0.2:4421", &s, err, sizeof(err)), 0);
	assert_int_equal(s.trsvcid, 4421);
	assert_int_equal(health_local_sel_parse("[fd00::2]:4420", &s, err, sizeof(err)), 0);
	assert_string_equal(s.traddr, "fd00::2");
	assert_int_equal(s.trsvcid, 4420);
	assert_int_equal(health_local_sel_parse("fd00::2", &s, err, sizeof(err)), 0);
	assert_int_equal(s.trsvcid, 0);
	assert_int_equal(health_local_sel_parse("", &s, err, sizeof(err)), 0);
	assert_string_equal(s.dev, "");
	assert_string_equal(s.traddr, "");
}

/* ------------------------------------------------------------- fake target */

struct fake {
	int lfd;
	uint16_t port;
	bool hang; /* accept, read, never answer */
	atomic_int ana_state;
	atomic_int critical;
	atomic_bool stop;
	atomic_int connections;
	atomic_int drop_after; /* >0: close the connection after that many commands */
	pthread_t th;
};

static int rd(int fd, void *b, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = read(fd, (char *)b + got, n - got);

		if (r <= 0)
			return -1;
		got += (size_t)r;
	}
	return 0;
}

static void wr(int fd, const void *b, size_t n)
{
	if (write(fd, b, n) != (ssize_t)n)
		fprintf(stderr, "# fake target: short write\n");
}

static void send_rsp(int fd, uint16_t cid, uint64_t result)
{
	struct nvmf_tcp_rsp r = {.hdr = {.type = NVMF_TCP_RSP, .hlen = 24, .plen = htole32(24)}};

	r.cqe.cid = htole16(cid);
	r.cqe.result = htole64(result);
	wr(fd, &r, sizeof(r));
}

static void send_data(int fd, uint16_t cid, const void *b, uint32_t len)
{
	struct nvmf_tcp_data d = {.hdr = {.type = NVMF_TCP_C2H_DATA,
					  .flags = NVMF_TCP_F_DATA_LAST,
					  .hlen = 24,
					  .pdo = 24,
					  .plen = htole32(24 + len)}};

	d.cccid = htole16(cid);
	d.datal = htole32(len);
	wr(fd, &d, sizeof(d));
	wr(fd, b, len);
	send_rsp(fd, cid, 0);
}

/* One admin connection, just enough of a controller. */
static void fake_serve(struct fake *f, int fd)
{
	static uint8_t buf[65536];
	uint32_t cc = 0;
	int cmds = 0;

	for (;;) {
		struct nvmf_tcp_hdr h;
		struct nvmf_sqe q;
		uint32_t plen;

		if (rd(fd, &h, sizeof(h)))
			return;
		plen = le32toh(h.plen);
		if (plen < 8 || plen > sizeof(buf) || rd(fd, buf, plen - 8))
			return;
		if (f->hang)
			continue;
		if (h.type == NVMF_TCP_ICREQ) {
			struct nvmf_tcp_icresp r = {
			    .hdr = {.type = NVMF_TCP_ICRESP, .hlen = 128, .plen = htole32(128)},
			    .maxdata = htole32(65536)};

			wr(fd, &r, sizeof(r));
			continue;
		}
		if (h.type != NVMF_TCP_CMD)
			return;
		if (f->drop_after && ++cmds > f->drop_after) {
			f->drop_after = 0; /* once: as if the target restarted */
			return;
		}
		memcpy(&q, buf, sizeof(q));
		uint16_t cid = le16toh(q.cid);
		if (q.opcode == 0x7f) {
			uint8_t fct = (uint8_t)le32toh(q.nsid);
			uint32_t off = le32toh(q.cdw11);

			if (fct == 0x00)
				cc = le32toh(q.cdw12);
			send_rsp(fd, cid,
				 fct == 0x01		? 1
				 : fct == 0x00		? 0
				 : off == NVME_REG_VS	? 0x10300
				 : off == NVME_REG_CC	? cc
				 : off == NVME_REG_CSTS ? (cc & 1)
							: 0);
		} else if (q.opcode == 0x06) {
			static struct nvme_id_ctrl id;

			memcpy(id.mn, "FAKE", 4);
			memcpy(id.sn, "SN1", 3);
			memcpy(id.fr, "1.0", 3);
			id.cmic = NVME_CTRL_CMIC_MULTI_ANA_REPORTING;
			id.nanagrpid = htole32(1);
			id.mnan = htole32(1);
			id.cntlid = htole16(1);
			send_data(fd, cid, &id, sizeof(id));
		} else if (q.opcode == 0x02) {
			uint32_t lid = le32toh(q.cdw10) & 0xff;
			uint32_t len = ((le32toh(q.cdw10) >> 16) + 1) * 4;
			static uint8_t log[65536];

			memset(log, 0, sizeof(log));
			if (lid == NVME_LOG_LID_SMART) {
				log[0] = (uint8_t)f->critical;
				log[1] = 0x2c;
				log[2] = 0x01;
			} else {
				log[8] = 1;			 /* ngrps */
				log[16] = 1;			 /* grpid */
				log[20] = 1;			 /* nnsids */
				log[32] = (uint8_t)f->ana_state; /* state */
				log[48] = 1;			 /* nsid 1 */
			}
			send_data(fd, cid, log, len);
		} else {
			send_rsp(fd, cid, 0);
		}
	}
}

static void *fake_main(void *arg)
{
	struct fake *f = arg;
	int held[8], nheld = 0;

	while (!f->stop) {
		struct pollfd p = {.fd = f->lfd, .events = POLLIN};
		int fd;

		if (poll(&p, 1, 20) <= 0)
			continue;
		fd = accept(f->lfd, NULL, NULL);
		if (fd < 0)
			continue;
		f->connections++;
		if (f->hang) {
			/* keep it open, say nothing */
			if (nheld < 8)
				held[nheld++] = fd;
			else
				close(fd);
			continue;
		}
		fake_serve(f, fd);
		close(fd);
	}
	for (int i = 0; i < nheld; i++)
		close(held[i]);
	return NULL;
}

static struct fake *fake_start(bool hang)
{
	struct fake *f = calloc(1, sizeof(*f));
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof(a);

	assert_non_null(f);
	f->hang = hang;
	f->ana_state = NVME_ANA_STATE_OPTIMIZED;
	f->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(f->lfd >= 0);
	assert_int_equal(bind(f->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(f->lfd, 8), 0);
	assert_int_equal(getsockname(f->lfd, (struct sockaddr *)&a, &al), 0);
	f->port = ntohs(a.sin_port);
	assert_int_equal(pthread_create(&f->th, NULL, fake_main, f), 0);
	return f;
}

static void fake_stop(struct fake *f)
{
	f->stop = true;
	pthread_join(f->th, NULL);
	close(f->lfd);
	free(f);
}

/* A port on 127.0.0.1 where nothing listens. */
static uint16_t closed_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	uint16_t p;

	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
	p = ntohs(a.sin_port);
	close(fd);
	return p;
}

static struct health_src remote_src(uint32_t id, uint16_t port)
{
	struct health_src s = {.backend_id = id};

	snprintf(s.remote.addr, sizeof(s.remote.addr), "127.0.0.1");
	s.remote.port = port;
	snprintf(s.remote.subnqn, sizeof(s.remote.subnqn), "nqn.test:fake");
	snprintf(s.remote.hostnqn, sizeof(s.remote.hostnqn), "nqn.test:host");
	return s;
}

/* Wait up to ms for the eventfd; returns its count (0: nothing). */
static uint64_t wait_event(int efd, int ms)
{
	struct pollfd p = {.fd = efd, .events = POLLIN};
	uint64_t v = 0;

	if (poll(&p, 1, ms) == 1 && read(efd, &v, sizeof(v)) != sizeof(v))
		v = 0;
	return v;
}

static void test_probe_fake(void **state)
{
	struct fake *f = fake_start(false);
	struct nvmf_target t = {.addr = "127.0.0.1", .subnqn = "nqn.test:fake"};
	struct nvmf_admin_opts o = {.timeout_ms = 1000, .cancel_fd = -1};
	static struct nvme_health h;

	t.port = f->port;
	assert_int_equal(health_probe_remote(&t, &o, &h), 0);
	assert_true(h.reachable);
	assert_string_equal(h.model, "FAKE");
	assert_string_equal(h.serial, "SN1");
	assert_int_equal(h.temperature_k, 300);
	assert_int_equal(h.version, 0x10300);
	assert_int_equal(h.n_ana, 1);
	assert_int_equal(h.ana[0].state, NVME_ANA_STATE_OPTIMIZED);
	assert_true(h.ts_ns > 0);
	fake_stop(f);
}

static void test_worker_notifies_changes(void **state)
{
	struct fake *f = fake_start(false);
	struct health_src src = remote_src(7, f->port);
	struct health_worker *w;
	static struct nvme_health h;
	int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

	assert_int_equal(health_worker_start(&w, &src, 1, 50, 1000, efd), 0);
	/* the first result is news */
	assert_true(wait_event(efd, 3000) >= 1);
	assert_int_equal(health_worker_snapshot(w, &h, 1), 1);
	assert_int_equal(h.backend_id, 7);
	assert_true(h.reachable);
	assert_int_equal(h.ana[0].state, NVME_ANA_STATE_OPTIMIZED);
	/* nothing changes: no event, though polls go on (one connection) */
	assert_int_equal(wait_event(efd, 300), 0);
	assert_int_equal(f->connections, 1);
	/* the ANA state changes: event within a few polls */
	f->ana_state = NVME_ANA_STATE_INACCESSIBLE;
	assert_true(wait_event(efd, 2000) >= 1);
	health_worker_snapshot(w, &h, 1);
	assert_string_equal(health_ana_state_name(h.ana[0].state), "inaccessible");
	/* a critical warning too */
	f->critical = NVME_SMART_CRIT_TEMPERATURE;
	assert_true(wait_event(efd, 2000) >= 1);
	health_worker_snapshot(w, &h, 1);
	assert_int_equal(h.critical_warning, NVME_SMART_CRIT_TEMPERATURE);
	health_worker_stop(w);
	close(efd);
	fake_stop(f);
}

/* The kept connection is dropped between polls: the worker reconnects in the
 * same poll and never reports the target unreachable. */
static void test_worker_reconnects_quietly(void **state)
{
	struct fake *f = fake_start(false);
	struct health_src src = remote_src(9, f->port);
	struct health_worker *w;
	static struct nvme_health h;
	int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

	/* bring-up and the first poll take 10 commands, a poll 3: the
	 * connection goes away in the middle of the second poll after that */
	f->drop_after = 14;
	assert_int_equal(health_worker_start(&w, &src, 1, 50, 1000, efd), 0);
	/* eventfd writes add up: exactly one (the first result) in 1.6 s */
	assert_int_equal(wait_event(efd, 3000), 1);
	assert_int_equal(wait_event(efd, 600), 0);
	health_worker_snapshot(w, &h, 1);
	assert_true(h.reachable);
	assert_int_equal(f->connections, 2);
	health_worker_stop(w);
	close(efd);
	fake_stop(f);
}

static void test_worker_hung_target_isolated(void **state)
{
	struct fake *hung = fake_start(true);
	struct health_src srcs[2] = {remote_src(1, hung->port), remote_src(2, closed_port())};
	struct health_worker *w;
	static struct nvme_health h[2];
	uint64_t t0;
	int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

	/* 5 s per step: the hung source is stuck in its ICResp wait all along */
	assert_int_equal(health_worker_start(&w, srcs, 2, 50, 5000, efd), 0);
	assert_true(wait_event(efd, 2000) >= 1);
	usleep(300 * 1000);
	assert_int_equal(health_worker_snapshot(w, h, 2), 2);
	assert_false(h[0].reachable);
	assert_non_null(strstr(h[0].error, "not probed yet"));
	assert_false(h[1].reachable);
	assert_non_null(strstr(h[1].error, "TCP connect: Connection refused"));
	/* polled again and again meanwhile */
	{
		uint64_t ts = h[1].ts_ns;

		usleep(200 * 1000);
		health_worker_snapshot(w, h, 2);
		assert_true(h[1].ts_ns > ts);
	}
	t0 = ms_now();
	health_worker_stop(w);
	assert_true(ms_now() - t0 < 1000); /* the hung probe is cancelled */
	close(efd);
	fake_stop(hung);
}

static void test_worker_timeout(void **state)
{
	struct fake *hung = fake_start(true);
	struct health_src src = remote_src(3, hung->port);
	struct health_worker *w;
	static struct nvme_health h;
	int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	uint64_t t0 = ms_now();

	assert_int_equal(health_worker_start(&w, &src, 1, 1000, 200, efd), 0);
	assert_true(wait_event(efd, 2000) >= 1);
	assert_true(ms_now() - t0 < 1000);
	health_worker_snapshot(w, &h, 1);
	assert_false(h.reachable);
	assert_non_null(strstr(h.error, "ICResp: timeout after 200 ms"));
	health_worker_stop(w);
	close(efd);
	fake_stop(hung);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_smart_decode),
	    cmocka_unit_test(test_id_strings),
	    cmocka_unit_test(test_ana_parse),
	    cmocka_unit_test(test_ana_many_groups),
	    cmocka_unit_test(test_ana_log_len),
	    cmocka_unit_test(test_changed),
	    cmocka_unit_test(test_local_sel),
	    cmocka_unit_test(test_probe_fake),
	    cmocka_unit_test(test_worker_notifies_changes),
	    cmocka_unit_test(test_worker_reconnects_quietly),
	    cmocka_unit_test(test_worker_hung_target_isolated),
	    cmocka_unit_test(test_worker_timeout),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
