/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * rtnetlink for the daemon (libmnl): link and neighbour events as they
 * happen (so a carrier loss is acted on at once, not on the next tick), and
 * queries of a link's carrier and of its egress qdisc counters.
 */
#ifndef VSN_RTNL_H
#define VSN_RTNL_H

#include <stdbool.h>
#include <stdint.h>

#include <linux/types.h>

#include "vsn_types.h"
#include "lib/err.h"

struct rtnl;

typedef void (*rtnl_link_fn)(void *ctx, unsigned ifindex, bool carrier);
typedef void (*rtnl_neigh_fn)(void *ctx, unsigned ifindex, const struct vsn_addr *a, bool failed);

int rtnl_open(struct rtnl **r, struct vsn_error *err);
void rtnl_close(struct rtnl *r);
/* The event socket, for epoll. */
int rtnl_fd(const struct rtnl *r);
/* Read every pending event and call the handlers. */
int rtnl_drain(struct rtnl *r, rtnl_link_fn lf, rtnl_neigh_fn nf, void *ctx);
/* The link is up and has carrier. */
int rtnl_link_carrier(struct rtnl *r, unsigned ifindex, bool *carrier);
/* Sum of overlimits and drops of the egress qdiscs of one link. */
int rtnl_qdisc_stats(struct rtnl *r, unsigned ifindex, uint64_t *overlimits, uint64_t *drops);

#endif /* VSN_RTNL_H */
