// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* Per-VM bandwidth on an uplink: HTB qdisc and classes over rtnetlink. */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <sys/socket.h>
#include <libmnl/libmnl.h>
#include <linux/netlink.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>

#include "lib/bw.h"
#include "lib/values.h"

#define BW_HANDLE   TC_H_MAKE(BW_MAJOR << 16, 0)
#define BW_MTU	    1600 /* the rate table's largest cell, as tc assumes */
#define QUANTUM_MIN 1600u
#define QUANTUM_MAX 200000u /* HTB's own upper bound for a quantum */
#define RTAB_CELLS  256
#define RECV_SIZE   65536

struct nl {
	struct mnl_socket *sock;
	unsigned portid;
	unsigned seq;
	char *rbuf;
	char *err;
	size_t errlen;
};

/* What one request/dump got back: the error and the kernel's words. */
struct reply {
	int error;
	char extack[256];
	mnl_cb_t cb;
	void *data;
};

static int bw_fail(struct nl *nl, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int bw_fail(struct nl *nl, int err, const char *fmt, ...)
{
	if (nl->err && nl->errlen) {
		va_list ap;

		va_start(ap, fmt);
		vsnprintf(nl->err, nl->errlen, fmt, ap);
		va_end(ap);
	}
	return err;
}

uint32_t bw_classid(uint32_t vm_id)
{
	return TC_H_MAKE(BW_MAJOR << 16, BW_VM_BASE + vm_id);
}

static int nl_open(struct nl *nl, char *err, size_t errlen)
{
	int one = 1;

	memset(nl, 0, sizeof(*nl));
	nl->err = err;
	nl->errlen = errlen;
	nl->rbuf = malloc(RECV_SIZE);
	if (!nl->rbuf)
		return bw_fail(nl, -ENOMEM, "out of memory");
	nl->sock = mnl_socket_open(NETLINK_ROUTE);
	if (!nl->sock)
		return bw_fail(nl, -errno, "cannot open a netlink socket: %s", strerror(errno));
	/* Errors come with the kernel's explanation; acks without our request. */
	mnl_socket_setsockopt(nl->sock, NETLINK_EXT_ACK, &one, sizeof(one));
	mnl_socket_setsockopt(nl->sock, NETLINK_CAP_ACK, &one, sizeof(one));
	if (mnl_socket_bind(nl->sock, 0, MNL_SOCKET_AUTOPID) < 0)
		return bw_fail(nl, -errno, "cannot bind a netlink socket: %s", strerror(errno));
	nl->portid = mnl_socket_get_portid(nl->sock);
	nl->seq = (unsigned)time(NULL);
	return 0;
}

static void nl_close(struct nl *nl)
{
	if (nl->sock)
		mnl_socket_close(nl->sock);
	free(nl->rbuf);
	nl->sock = NULL;
	nl->rbuf = NULL;
}

static int extack_attr(const struct nlattr *a, void *data)
{
	struct reply *r = data;

	if (mnl_attr_get_type(a) == NLMSGERR_ATTR_MSG &&
	    mnl_attr_validate(a, MNL_TYPE_NUL_STRING) >= 0)
		snprintf(r->extack, sizeof(r->extack), "%s", mnl_attr_get_str(a));
	return MNL_CB_OK;
}

static int on_error(const struct nlmsghdr *nlh, void *data)
{
	const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);
	struct reply *r = data;
	unsigned off = sizeof(*e);

	if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(*e))) {
		r->error = -EBADMSG;
		return MNL_CB_ERROR;
	}
	if (nlh->nlmsg_flags & NLM_F_ACK_TLVS) {
		if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
			off += mnl_nlmsg_get_payload_len(&e->msg);
		if (mnl_nlmsg_size(off) < nlh->nlmsg_len)
			mnl_attr_parse(nlh, off, extack_attr, r);
	}
	if (!e->error)
		return MNL_CB_STOP;
	r->error = e->error;
	return MNL_CB_ERROR;
}

static int on_done(const struct nlmsghdr *nlh, void *data)
{
	struct reply *r = data;
	int e;

	if (mnl_nlmsg_get_payload_len(nlh) >= sizeof(e)) {
		memcpy(&e, mnl_nlmsg_get_payload(nlh), sizeof(e));
		if (e < 0) {
			r->error = e;
			return MNL_CB_ERROR;
		}
	}
	return MNL_CB_STOP;
}

static int on_data(const struct nlmsghdr *nlh, void *data)
{
	struct reply *r = data;

	return r->cb ? r->cb(nlh, r->data) : MNL_CB_OK;
}

/*
 * Send one request and read until its ack (or a dump's end).  WHAT names
 * the request for the error message.
 */
static int nl_talk(struct nl *nl, struct nlmsghdr *nlh, mnl_cb_t cb, void *data, const char *what)
{
	static mnl_cb_t ctl[NLMSG_MIN_TYPE] = {
	    [NLMSG_ERROR] = on_error,
	    [NLMSG_DONE] = on_done,
	};
	struct reply r = {.cb = cb, .data = data};
	int ret;

	nlh->nlmsg_seq = ++nl->seq;
	if (mnl_socket_sendto(nl->sock, nlh, nlh->nlmsg_len) < 0)
		return bw_fail(nl, -errno, "%s: cannot send to the kernel: %s", what,
			       strerror(errno));
	do {
		ret = (int)mnl_socket_recvfrom(nl->sock, nl->rbuf, RECV_SIZE);
		if (ret < 0) {
			r.error = -errno;
			break;
		}
		ret = mnl_cb_run2(nl->rbuf, (size_t)ret, nl->seq, nl->portid, on_data, &r, ctl,
				  NLMSG_MIN_TYPE);
		if (ret < 0 && !r.error)
			r.error = errno ? -errno : -EPROTO;
	} while (ret > 0);
	if (!r.error)
		return 0;
	return bw_fail(nl, r.error, "%s: %s%s%s%s", what, strerror(-r.error),
		       r.extack[0] ? " (kernel: " : "", r.extack, r.extack[0] ? ")" : "");
}

static struct nlmsghdr *tc_msg(char *buf, uint16_t type, uint16_t flags, unsigned ifindex,
			       uint32_t handle, uint32_t parent)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct tcmsg *tcm;

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | flags;
	tcm = mnl_nlmsg_put_extra_header(nlh, sizeof(*tcm));
	tcm->tcm_family = AF_UNSPEC;
	tcm->tcm_ifindex = (int)ifindex;
	tcm->tcm_handle = handle;
	tcm->tcm_parent = parent;
	return nlh;
}

/* The device's root qdisc, as a dump of all qdiscs shows it. */
struct root_qdisc {
	unsigned ifindex;
	bool found;
	uint32_t handle;
	char kind[32];
};

static const char *tca_kind(const struct nlmsghdr *nlh)
{
	const struct nlattr *a;

	mnl_attr_for_each(a, nlh, sizeof(struct tcmsg))
	{
		if (mnl_attr_get_type(a) == TCA_KIND &&
		    mnl_attr_validate(a, MNL_TYPE_NUL_STRING) >= 0)
			return mnl_attr_get_str(a);
	}
	return "";
}

static int root_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct tcmsg *tcm = mnl_nlmsg_get_payload(nlh);
	struct root_qdisc *q = data;

	if (nlh->nlmsg_type != RTM_NEWQDISC || (unsigned)tcm->tcm_ifindex != q->ifindex ||
	    tcm->tcm_parent != TC_H_ROOT)
		return MNL_CB_OK;
	q->found = true;
	q->handle = tcm->tcm_handle;
	snprintf(q->kind, sizeof(q->kind), "%s", tca_kind(nlh));
	return MNL_CB_OK;
}

static int root_qdisc(struct nl *nl, unsigned ifindex, struct root_qdisc *q)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh;
	char what[64];

	memset(q, 0, sizeof(*q));
	q->ifindex = ifindex;
	/* Older kernels dump every device's qdiscs: root_cb keeps ours.
	 * INVISIBLE: include the builtin noop of a device that is down. */
	nlh = tc_msg(buf, RTM_GETQDISC, NLM_F_DUMP, ifindex, 0, 0);
	mnl_attr_put(nlh, TCA_DUMP_INVISIBLE, 0, "");
	snprintf(what, sizeof(what), "listing qdiscs of ifindex %u", ifindex);
	return nl_talk(nl, nlh, root_cb, q, what);
}

static bool is_ours(const struct root_qdisc *q)
{
	return q->found && q->handle == BW_HANDLE && !strcmp(q->kind, "htb");
}

/* Minors of the classes under qdisc 1:, one bit each. */
struct class_set {
	uint8_t minor[0x10000 / 8];
};

static int class_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct tcmsg *tcm = mnl_nlmsg_get_payload(nlh);
	struct class_set *s = data;
	uint32_t min = TC_H_MIN(tcm->tcm_handle);

	if (nlh->nlmsg_type == RTM_NEWTCLASS && TC_H_MAJ(tcm->tcm_handle) == BW_HANDLE)
		s->minor[min / 8] |= (uint8_t)(1u << (min % 8));
	return MNL_CB_OK;
}

static double tick_in_usec(void)
{
	static double tick;
	unsigned t2us, us2t, res;
	FILE *f;

	if (tick > 0)
		return tick;
	/* psched ticks per microsecond: 1000/64 on any kernel since 2.6.31. */
	tick = 1000.0 / 64;
	f = fopen("/proc/net/psched", "r");
	if (!f)
		return tick;
	if (fscanf(f, "%08x%08x%08x", &t2us, &us2t, &res) == 3 && us2t && res)
		tick = (double)t2us / us2t * ((double)res / 1000000);
	fclose(f);
	return tick;
}

/* Time to send BYTES at BPS (bytes/s), in psched ticks. */
static uint32_t xmit_ticks(uint64_t bps, uint64_t bytes)
{
	double t = (double)bytes / (double)bps * 1e6 * tick_in_usec();

	return t >= 4294967295.0 ? UINT32_MAX : (uint32_t)t;
}

/*
 * A rate and its table.  Kernels that know the link layer (3.11 on)
 * compute from the rate; older ones read the table: cell i holds the time
 * to send (i + 1) << cell_log bytes, with cells covering BW_MTU.
 */
static void ratespec(struct tc_ratespec *r, uint32_t *tab, uint64_t bytes_ps)
{
	uint8_t cell_log = 0;

	while ((BW_MTU >> cell_log) > RTAB_CELLS - 1)
		cell_log++;
	memset(r, 0, sizeof(*r));
	r->rate = bytes_ps >= (1ull << 32) ? UINT32_MAX : (uint32_t)bytes_ps;
	r->cell_log = cell_log;
	r->cell_align = -1;
	r->linklayer = TC_LINKLAYER_ETHERNET;
	for (unsigned i = 0; i < RTAB_CELLS; i++)
		tab[i] = xmit_ticks(r->rate, (uint64_t)(i + 1) << cell_log);
}

/* Rate-to-quantum divisor: the whole capacity's quantum stays in HTB's
 * bounds, so a VM's quantum (its weight when borrowing) follows its rate. */
static uint32_t r2q_of(uint64_t cap_bytes_ps)
{
	uint64_t r2q = cap_bytes_ps / QUANTUM_MAX + 1;

	return r2q < 10 ? 10 : (uint32_t)r2q;
}

struct htb_rates {
	uint64_t rate; /* bytes/s */
	uint64_t ceil;
	uint32_t quantum;
};

static int put_class(struct nl *nl, unsigned ifindex, uint32_t classid, uint32_t parent,
		     const struct htb_rates *hr)
{
	uint32_t rtab[RTAB_CELLS], ctab[RTAB_CELLS];
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct tc_htb_opt opt = {0};
	struct nlmsghdr *nlh;
	struct nlattr *nest;
	char what[96];

	ratespec(&opt.rate, rtab, hr->rate);
	ratespec(&opt.ceil, ctab, hr->ceil);
	/* Burst: 1 ms at the rate plus a frame.  Rate-accurate at high
	 * rates without letting a class run more than 1 ms ahead. */
	opt.buffer = xmit_ticks(hr->rate, hr->rate / 1000 + BW_MTU);
	opt.cbuffer = xmit_ticks(hr->ceil, hr->ceil / 1000 + BW_MTU);
	opt.quantum = hr->quantum;

	/* Create, or change in place when it exists (no NLM_F_EXCL). */
	nlh = tc_msg(buf, RTM_NEWTCLASS, NLM_F_ACK | NLM_F_CREATE, ifindex, classid, parent);
	mnl_attr_put_strz(nlh, TCA_KIND, "htb");
	nest = mnl_attr_nest_start(nlh, TCA_OPTIONS);
	if (hr->rate >= (1ull << 32))
		mnl_attr_put_u64(nlh, TCA_HTB_RATE64, hr->rate);
	if (hr->ceil >= (1ull << 32))
		mnl_attr_put_u64(nlh, TCA_HTB_CEIL64, hr->ceil);
	mnl_attr_put(nlh, TCA_HTB_PARMS, sizeof(opt), &opt);
	mnl_attr_put(nlh, TCA_HTB_RTAB, sizeof(rtab), rtab);
	mnl_attr_put(nlh, TCA_HTB_CTAB, sizeof(ctab), ctab);
	mnl_attr_nest_end(nlh, nest);
	snprintf(what, sizeof(what), "setting HTB class %x:%x on ifindex %u",
		 TC_H_MAJ(classid) >> 16, TC_H_MIN(classid), ifindex);
	return nl_talk(nl, nlh, NULL, NULL, what);
}

static int add_qdisc(struct nl *nl, unsigned ifindex, uint64_t cap_bytes_ps)
{
	struct tc_htb_glob g = {
	    .version = TC_HTB_PROTOVER,
	    .rate2quantum = r2q_of(cap_bytes_ps),
	    .defcls = BW_DEFAULT_MIN,
	};
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh;
	struct nlattr *nest;
	char what[64];

	/* REPLACE: takes the place of the kernel's default root qdisc. */
	nlh = tc_msg(buf, RTM_NEWQDISC, NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE, ifindex,
		     BW_HANDLE, TC_H_ROOT);
	mnl_attr_put_strz(nlh, TCA_KIND, "htb");
	nest = mnl_attr_nest_start(nlh, TCA_OPTIONS);
	mnl_attr_put(nlh, TCA_HTB_INIT, sizeof(g), &g);
	mnl_attr_nest_end(nlh, nest);
	snprintf(what, sizeof(what), "adding HTB root qdisc 1: on ifindex %u", ifindex);
	return nl_talk(nl, nlh, NULL, NULL, what);
}

static int del_class(struct nl *nl, unsigned ifindex, uint32_t classid)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh;
	char what[80];

	nlh = tc_msg(buf, RTM_DELTCLASS, NLM_F_ACK, ifindex, classid, 0);
	snprintf(what, sizeof(what), "deleting HTB class 1:%x on ifindex %u", TC_H_MIN(classid),
		 ifindex);
	return nl_talk(nl, nlh, NULL, NULL, what);
}

static uint32_t quantum_of(uint64_t bytes_ps, uint32_t r2q)
{
	uint64_t q = bytes_ps / r2q;

	return q < QUANTUM_MIN ? QUANTUM_MIN : q > QUANTUM_MAX ? QUANTUM_MAX : (uint32_t)q;
}

static int check_classes(struct nl *nl, uint64_t cap, const struct bw_class *cls, unsigned n)
{
	uint64_t sum = 0;

	if (cap < BW_MIN_BPS)
		return bw_fail(nl, -EINVAL, "capacity %llu bit/s is below the minimum %llu bit/s",
			       (unsigned long long)cap, BW_MIN_BPS);
	for (unsigned i = 0; i < n; i++) {
		uint64_t min = cls[i].min_bps ? cls[i].min_bps : BW_MIN_BPS;
		uint64_t max = cls[i].max_bps ? cls[i].max_bps : cap;

		if (cls[i].vm_id > BW_VM_ID_MAX)
			return bw_fail(nl, -EINVAL, "VM id %u is above %u, the last HTB class",
				       cls[i].vm_id, BW_VM_ID_MAX);
		for (unsigned k = 0; k < i; k++)
			if (cls[k].vm_id == cls[i].vm_id)
				return bw_fail(nl, -EINVAL, "VM %u is listed twice", cls[i].vm_id);
		if (min < BW_MIN_BPS || max > cap || min > max)
			return bw_fail(nl, -EINVAL,
				       "VM %u: need %llu <= min (%llu) <= max (%llu) <= capacity "
				       "(%llu) bit/s",
				       cls[i].vm_id, BW_MIN_BPS, (unsigned long long)min,
				       (unsigned long long)max, (unsigned long long)cap);
		sum += min;
	}
	if (sum > cap)
		return bw_fail(nl, -EINVAL,
			       "the VMs' guaranteed rates add up to %llu bit/s, more than the "
			       "capacity %llu bit/s: lower some min",
			       (unsigned long long)sum, (unsigned long long)cap);
	return 0;
}

int bw_setup(unsigned ifindex, uint64_t capacity_bps, const struct bw_class *cls, unsigned n,
	     char *err, size_t errlen)
{
	uint64_t cap = capacity_bps / 8, dflt;
	struct class_set *have = NULL;
	struct root_qdisc q;
	struct htb_rates hr;
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh;
	uint32_t r2q;
	char what[64];
	struct nl nl;
	int ret;

	ret = nl_open(&nl, err, errlen);
	ret = ret ?: check_classes(&nl, capacity_bps, cls, n);
	ret = ret ?: root_qdisc(&nl, ifindex, &q);
	if (ret)
		goto out;
	if (q.found && !is_ours(&q) && q.handle != 0) {
		/* Someone configured this root qdisc: not ours to replace. */
		ret = bw_fail(&nl, -EBUSY,
			      "ifindex %u already has root qdisc %s %x: (not vsn's HTB 1:); "
			      "remove it (tc qdisc del dev IF root) to let vsn allocate bandwidth",
			      ifindex, q.kind, TC_H_MAJ(q.handle) >> 16);
		goto out;
	}
	if (!is_ours(&q)) {
		ret = add_qdisc(&nl, ifindex, cap);
		if (ret)
			goto out;
	}

	r2q = r2q_of(cap);
	hr = (struct htb_rates){.rate = cap, .ceil = cap, .quantum = quantum_of(cap, r2q)};
	ret = put_class(&nl, ifindex, TC_H_MAKE(BW_HANDLE, BW_PARENT_MIN), BW_HANDLE, &hr);
	if (ret)
		goto out;
	for (unsigned i = 0; i < n; i++) {
		uint64_t min = (cls[i].min_bps ? cls[i].min_bps : BW_MIN_BPS) / 8;
		uint64_t max = (cls[i].max_bps ? cls[i].max_bps : capacity_bps) / 8;

		hr = (struct htb_rates){.rate = min, .ceil = max, .quantum = quantum_of(min, r2q)};
		ret = put_class(&nl, ifindex, bw_classid(cls[i].vm_id),
				TC_H_MAKE(BW_HANDLE, BW_PARENT_MIN), &hr);
		if (ret)
			goto out;
	}
	/* Unclassified traffic: 1 % guaranteed, may use what is idle. */
	dflt = cap / 100 < BW_MIN_BPS / 8 ? BW_MIN_BPS / 8 : cap / 100;
	hr = (struct htb_rates){.rate = dflt, .ceil = cap, .quantum = quantum_of(dflt, r2q)};
	ret = put_class(&nl, ifindex, TC_H_MAKE(BW_HANDLE, BW_DEFAULT_MIN),
			TC_H_MAKE(BW_HANDLE, BW_PARENT_MIN), &hr);
	if (ret)
		goto out;

	/* VM classes no longer listed go; their traffic falls to 1:ffff. */
	have = calloc(1, sizeof(*have));
	if (!have) {
		ret = bw_fail(&nl, -ENOMEM, "out of memory");
		goto out;
	}
	nlh = tc_msg(buf, RTM_GETTCLASS, NLM_F_DUMP, ifindex, 0, 0);
	snprintf(what, sizeof(what), "listing classes of ifindex %u", ifindex);
	ret = nl_talk(&nl, nlh, class_cb, have, what);
	for (uint32_t vm = 0; !ret && vm <= BW_VM_ID_MAX; vm++) {
		uint32_t min = BW_VM_BASE + vm;
		bool listed = false;

		if (!(have->minor[min / 8] & (1u << (min % 8))))
			continue;
		for (unsigned i = 0; i < n && !listed; i++)
			listed = cls[i].vm_id == vm;
		if (!listed)
			ret = del_class(&nl, ifindex, bw_classid(vm));
	}
out:
	free(have);
	nl_close(&nl);
	return ret;
}

int bw_teardown(unsigned ifindex, char *err, size_t errlen)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh;
	struct root_qdisc q;
	char what[64];
	struct nl nl;
	int ret;

	ret = nl_open(&nl, err, errlen);
	ret = ret ?: root_qdisc(&nl, ifindex, &q);
	if (ret)
		goto out;
	if (!is_ours(&q)) {
		ret = 1; /* nothing of vsn's: leave the root qdisc alone */
		goto out;
	}
	/* Only the root: clsact (vsn's TC programs) is a separate qdisc. */
	nlh = tc_msg(buf, RTM_DELQDISC, NLM_F_ACK, ifindex, BW_HANDLE, TC_H_ROOT);
	snprintf(what, sizeof(what), "removing HTB root qdisc 1: from ifindex %u", ifindex);
	ret = nl_talk(&nl, nlh, NULL, NULL, what);
out:
	nl_close(&nl);
	return ret;
}

int bw_parse_rate(const char *s, uint64_t *bps)
{
	uint64_t mult;
	char *end;
	double v;

	if (!s || !*s || *s == '-' || *s == '+')
		return -EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || !(v >= 0))
		return -EINVAL;
	/* The units of the config file (parse_rate); fractions allowed here. */
	mult = rate_unit(end);
	if (!mult)
		return -EINVAL;
	v *= (double)mult;
	if (v >= 18446744073709551615.0)
		return -ERANGE;
	*bps = (uint64_t)(v + 0.5);
	return 0;
}
