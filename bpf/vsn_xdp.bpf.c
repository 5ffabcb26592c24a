// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* XDP on uplinks: replies from storage, reverse-translated before the stack
 * sees them (lib/from_storage.h, the same pipeline as the TC variant). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define VSN_CTX_XDP
#include "vsn_types.h"
#include "lib/from_storage.h"

SEC("xdp")
int vsn_up_xdp(struct xdp_md *ctx)
{
	return steer_from_storage(ctx);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
