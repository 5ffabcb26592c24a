// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * A second XDP program for tests/e2e/test_host_guest.sh: counts every frame
 * it sees (packets, bytes) and passes it on, so the test can show that it
 * runs next to vsn's program in libxdp's dispatcher on the same uplink.
 * Built by the test: clang -O2 -g -target bpf -c xdp_count_pass.bpf.c
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2); /* 0: packets, 1: bytes */
	__type(key, __u32);
	__type(value, __u64);
} cnt_pass SEC(".maps");

SEC("xdp")
int count_pass(struct xdp_md *ctx)
{
	__u32 k = 0;
	__u64 *v = bpf_map_lookup_elem(&cnt_pass, &k);

	if (v)
		__sync_fetch_and_add(v, 1);
	k = 1;
	v = bpf_map_lookup_elem(&cnt_pass, &k);
	if (v)
		__sync_fetch_and_add(v, (__u64)(ctx->data_end - ctx->data));
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
