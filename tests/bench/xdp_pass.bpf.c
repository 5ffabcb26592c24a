// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * make bench, part tput: an XDP program that passes everything.  On plain
 * routing's uplinks it shows what attaching any XDP program to a veth
 * costs (the veth then receives through its own NAPI instance), apart from
 * what vsn's program does.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

SEC("xdp")
int xdp_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
