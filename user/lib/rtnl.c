// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* rtnetlink events and queries for the daemon (rtnl.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/if.h>
#include <libmnl/libmnl.h>
#include <linux/gen_stats.h>
#include <linux/if_link.h>
#include <linux/neighbour.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>

#include "lib/rtnl.h"

struct rtnl {
	struct mnl_socket *ev; /* subscribed to link and neighbour groups */
	struct mnl_socket *q;  /* request/response */
	unsigned q_portid;
	unsigned seq;
	char *buf; /* MNL_SOCKET_BUFFER_SIZE */
};

struct ev_ctx {
	rtnl_link_fn lf;
	rtnl_neigh_fn nf;
	void *ctx;
};

int rtnl_open(struct rtnl **out, struct vsn_error *err)
{
	struct rtnl *r = calloc(1, sizeof(*r));
	int ret = -ENOMEM;

	*out = NULL;
	if (!r)
		goto fail;
	r->buf = malloc(MNL_SOCKET_BUFFER_SIZE);
	if (!r->buf)
		goto fail;
	r->ev = mnl_socket_open2(NETLINK_ROUTE, SOCK_NONBLOCK | SOCK_CLOEXEC);
	r->q = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
	if (!r->ev || !r->q) {
		ret = -errno;
		goto fail;
	}
	if (mnl_socket_bind(r->ev, RTMGRP_LINK | RTMGRP_NEIGH, MNL_SOCKET_AUTOPID) ||
	    mnl_socket_bind(r->q, 0, MNL_SOCKET_AUTOPID)) {
		ret = -errno;
		goto fail;
	}
	r->q_portid = mnl_socket_get_portid(r->q);
	r->seq = (unsigned)time(NULL);
	*out = r;
	return 0;
fail:
	vsn_error_set(err, 0, "rtnetlink: %s", strerror(-ret));
	rtnl_close(r);
	return ret;
}

void rtnl_close(struct rtnl *r)
{
	if (!r)
		return;
	if (r->ev)
		mnl_socket_close(r->ev);
	if (r->q)
		mnl_socket_close(r->q);
	free(r->buf);
	free(r);
}

int rtnl_fd(const struct rtnl *r)
{
	return mnl_socket_get_fd(r->ev);
}

static bool link_carrier(const struct nlmsghdr *nlh)
{
	const struct ifinfomsg *ifi = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *a;

	if (!(ifi->ifi_flags & IFF_UP))
		return false;
	mnl_attr_for_each(
	    a, nlh, sizeof(*ifi)) if (mnl_attr_get_type(a) == IFLA_CARRIER &&
				      !mnl_attr_validate(a, MNL_TYPE_U8)) return mnl_attr_get_u8(a);
	return ifi->ifi_flags & IFF_LOWER_UP;
}

static void neigh_event(const struct nlmsghdr *nlh, const struct ev_ctx *e)
{
	const struct ndmsg *nd = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *a;
	struct vsn_addr addr = {.a = {0}};
	bool have = false;

	mnl_attr_for_each(a, nlh, sizeof(*nd))
	{
		if (mnl_attr_get_type(a) != NDA_DST)
			continue;
		if (nd->ndm_family == AF_INET && mnl_attr_get_payload_len(a) == 4) {
			addr.a[2] = htonl(0xffff);
			memcpy(&addr.a[3], mnl_attr_get_payload(a), 4);
			have = true;
		} else if (nd->ndm_family == AF_INET6 && mnl_attr_get_payload_len(a) == 16) {
			memcpy(addr.a, mnl_attr_get_payload(a), 16);
			have = true;
		}
	}
	if (have && e->nf)
		e->nf(e->ctx, (unsigned)nd->ndm_ifindex, &addr,
		      nlh->nlmsg_type == RTM_DELNEIGH || (nd->ndm_state & NUD_FAILED));
}

static int ev_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct ev_ctx *e = data;

	switch (nlh->nlmsg_type) {
	case RTM_NEWLINK:
	case RTM_DELLINK: {
		const struct ifinfomsg *ifi = mnl_nlmsg_get_payload(nlh);

		if (e->lf)
			e->lf(e->ctx, (unsigned)ifi->ifi_index,
			      nlh->nlmsg_type == RTM_NEWLINK && link_carrier(nlh));
		break;
	}
	case RTM_NEWNEIGH:
	case RTM_DELNEIGH:
		neigh_event(nlh, e);
		break;
	}
	return MNL_CB_OK;
}

int rtnl_drain(struct rtnl *r, rtnl_link_fn lf, rtnl_neigh_fn nf, void *ctx)
{
	struct ev_ctx e = {.lf = lf, .nf = nf, .ctx = ctx};

	for (;;) {
		ssize_t n = mnl_socket_recvfrom(r->ev, r->buf, MNL_SOCKET_BUFFER_SIZE);

		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
		if (mnl_cb_run(r->buf, (size_t)n, 0, 0, ev_cb, &e) < 0)
			return -errno;
	}
}

/* Send a request on the query socket and run cb over every reply. */
static int query(struct rtnl *r, struct nlmsghdr *nlh, mnl_cb_t cb, void *data)
{
	unsigned seq = ++r->seq;
	int ret;

	nlh->nlmsg_seq = seq;
	if (mnl_socket_sendto(r->q, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	do {
		ssize_t n = mnl_socket_recvfrom(r->q, r->buf, MNL_SOCKET_BUFFER_SIZE);
		if (n < 0)
			return -errno;
		ret = mnl_cb_run(r->buf, (size_t)n, seq, r->q_portid, cb, data);
	} while (ret > 0);
	return ret < 0 ? -errno : 0;
}

static int link_cb(const struct nlmsghdr *nlh, void *data)
{
	*(bool *)data = link_carrier(nlh);
	return MNL_CB_OK;
}

int rtnl_link_carrier(struct rtnl *r, unsigned ifindex, bool *carrier)
{
	char buf[256];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct ifinfomsg *ifi;

	nlh->nlmsg_type = RTM_GETLINK;
	/* The ACK ends the exchange (a non-dump reply has no NLMSG_DONE). */
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_index = (int)ifindex;
	*carrier = false;
	return query(r, nlh, link_cb, carrier);
}

struct qstats {
	unsigned ifindex;
	uint64_t overlimits, drops;
};

static int qdisc_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct tcmsg *tcm = mnl_nlmsg_get_payload(nlh);
	struct qstats *q = data;
	const struct nlattr *a, *s;

	if ((unsigned)tcm->tcm_ifindex != q->ifindex || tcm->tcm_parent == TC_H_INGRESS)
		return MNL_CB_OK; /* clsact and ingress hang off TC_H_INGRESS */
	mnl_attr_for_each(a, nlh, sizeof(*tcm))
	{
		if (mnl_attr_get_type(a) != TCA_STATS2)
			continue;
		mnl_attr_for_each_nested(s, a)
		{
			struct gnet_stats_queue gq;

			if (mnl_attr_get_type(s) != TCA_STATS_QUEUE ||
			    mnl_attr_get_payload_len(s) < sizeof(gq))
				continue;
			memcpy(&gq, mnl_attr_get_payload(s), sizeof(gq));
			q->overlimits += gq.overlimits;
			q->drops += gq.drops;
		}
	}
	return MNL_CB_OK;
}

int rtnl_qdisc_stats(struct rtnl *r, unsigned ifindex, uint64_t *overlimits, uint64_t *drops)
{
	char buf[256];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct qstats q = {.ifindex = ifindex};
	struct tcmsg *tcm;
	int ret;

	nlh->nlmsg_type = RTM_GETQDISC;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	tcm = mnl_nlmsg_put_extra_header(nlh, sizeof(*tcm));
	tcm->tcm_family = AF_UNSPEC;
	tcm->tcm_ifindex = (int)ifindex;
	ret = query(r, nlh, qdisc_cb, &q);
	*overlimits = q.overlimits;
	*drops = q.drops;
	return ret;
}
