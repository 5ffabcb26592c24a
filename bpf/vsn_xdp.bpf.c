// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* XDP on uplinks: replies from storage, reverse-translated before the stack
 * sees them.  Same parser and rewriter as the TC programs. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define VSN_CTX_XDP
#include "vsn_types.h"
#include "lib/defs.h"
#include "lib/ctx.h"
#include "lib/maps.h"
#include "lib/telemetry.h"
#include "lib/parse.h"
#include "lib/rewrite.h"
#include "lib/conn.h"
#include "lib/nvme_tcp.h"
#include "lib/roce.h"
#include "lib/steer.h"

SEC("xdp")
int vsn_up_xdp(struct xdp_md *ctx)
{
	return steer_from_storage(ctx);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
