/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Replies for a VM behind a veth: XDP leaves them to TC.
 *
 * An XDP_REDIRECT into a veth (its ndo_xdp_xmit) only works while the
 * receiving end, the VM's, runs NAPI: with GRO on or an XDP program of its
 * own (drivers/net/veth.c: veth_xdp_xmit fails with -ENXIO otherwise, after
 * the program has returned, so nothing counts the loss).  Off is veth's
 * default, and the VM's end is not ours to change.  So for VM interfaces
 * vsn_reply_tc marks (attach marks every veth), the XDP program passes the
 * reply up untouched and uncounted, and vsn_up_xfer at the uplink's TC
 * ingress runs the same pipeline on it and redirects it as a socket
 * buffer, which veth always takes.  Taps and NICs keep the XDP redirect.
 *
 * TC cannot be told which packets XDP left (this kernel refuses
 * bpf_xdp_adjust_meta, and a per-CPU note would not survive GRO batching),
 * so it asks the same question XDP asked, of the same connection entry:
 * everything else XDP passed, and counted, TC lets by uncounted.
 */
#ifndef VSN_XFER_H
#define VSN_XFER_H

#include "lib/maps.h"

/* c's replies go through TC (and are not the host's own flow). */
static __always_inline bool xfer_wanted(const struct vsn_conn *c)
{
	__u32 idx = c->vm_ifindex, *on;

	if (c->flags & VSN_CONN_HOST)
		return false;
	on = bpf_map_lookup_elem(&vsn_reply_tc, &idx);
	return on && *on;
}

#endif /* VSN_XFER_H */
