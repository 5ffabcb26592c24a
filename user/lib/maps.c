// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* Reading and writing the pinned maps: per-CPU sums, the route generation,
 * the names of the datapath's outcomes. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "lib/vsn.h"

/* Sum over all CPUs of a per-CPU value of n __u64 words (at key). */
static int percpu_sum(int fd, const void *key, __u64 *sum, unsigned n)
{
	int ncpu = libbpf_num_possible_cpus();
	__u64 *vals;
	int err = 0;

	memset(sum, 0, n * sizeof(*sum));
	if (ncpu <= 0)
		return -EINVAL;
	vals = calloc((size_t)ncpu * n, sizeof(*vals));
	if (!vals)
		return -ENOMEM;
	if (bpf_map_lookup_elem(fd, key, vals)) {
		err = -errno;
		goto cleanup;
	}
	for (int i = 0; i < ncpu; i++)
		for (unsigned w = 0; w < n; w++)
			sum[w] += vals[(size_t)i * n + w];
cleanup:
	free(vals);
	return err;
}

/* Sum of one per-CPU struct vsn_counter over all CPUs. */
int percpu_counter(int fd, const void *key, struct vsn_counter *sum)
{
	__u64 w[2];
	int err = percpu_sum(fd, key, w, 2);

	sum->packets = w[0];
	sum->bytes = w[1];
	return err;
}

/* Sum of one per-CPU __u64 slot over all CPUs. */
int percpu_u64(int fd, __u32 idx, __u64 *sum)
{
	return percpu_sum(fd, &idx, sum, 1);
}

int vm_drops_sum(int fd, __u32 vm_id, __u64 sum[VSN_VM_DROPS])
{
	_Static_assert(sizeof(struct vsn_vm_drops) == VSN_VM_DROPS * sizeof(__u64),
		       "vsn_vm_drops holds one counter per reason from VSN_VM_DROP_FIRST");
	return percpu_sum(fd, &vm_id, sum, VSN_VM_DROPS);
}

int maps_routes_changed(const struct vsn_maps *m, struct vsn_error *err)
{
	struct vsn_gen g;
	__u32 zero = 0;

	if (bpf_map_lookup_elem(m->gen, &zero, &g))
		return vsn_error_set(err, -errno, "cannot read %s: %s", VSN_MAP_GEN,
				     strerror(errno));
	g.routes++;
	if (bpf_map_update_elem(m->gen, &zero, &g, BPF_ANY))
		return vsn_error_set(err, -errno,
				     "cannot update %s: %s (connections keep their "
				     "cached paths until it succeeds)",
				     VSN_MAP_GEN, strerror(errno));
	return 0;
}

static const char *const reason_names[VSN_R_MAX] = {
    [VSN_R_FORWARDED] = "forwarded",   [VSN_R_NOT_STORAGE] = "not_storage",
    [VSN_R_NO_ROUTE] = "no_route",     [VSN_R_MAP_FULL] = "map_full",
    [VSN_R_MALFORMED] = "malformed",   [VSN_R_UNSUPPORTED] = "unsupported",
    [VSN_R_NO_CONN] = "no_conn",       [VSN_R_REWRITE_ERR] = "rewrite_error",
    [VSN_R_FIB_MISS] = "fib_miss",     [VSN_R_NOT_VM] = "not_vm",
    [VSN_R_NAT_PORTS] = "nat_ports",   [VSN_R_HOST_RX] = "host_rx",
    [VSN_R_ROCE_RX] = "roce_rx",       [VSN_R_RESET] = "reset",
    [VSN_R_SPOOFED] = "spoofed",       [VSN_R_MARTIAN] = "martian",
    [VSN_R_CONN_LIMIT] = "conn_limit", [VSN_R_CONN_RATE] = "conn_rate",
    [VSN_R_NO_SYN] = "no_syn",
};

const char *vsn_reason_name(unsigned r)
{
	return r < VSN_R_MAX && reason_names[r] ? reason_names[r] : "unknown";
}
