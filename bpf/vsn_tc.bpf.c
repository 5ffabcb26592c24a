// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * TC programs: VM interface ingress (towards storage), uplink ingress (from
 * storage, where XDP is not used) and uplink egress (host-initiator).
 * Uplink ingress in XDP mode: vsn_up_xfer (lib/xfer.h).
 * Towards storage: lib/to_storage.h (parse, connection, path, rewrite,
 * redirect); from storage: lib/from_storage.h.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define VSN_CTX_TC
#include "vsn_types.h"
#include "lib/to_storage.h"
#include "lib/from_storage.h"

SEC("tc")
int vsn_vm_ingress(struct __sk_buff *skb)
{
	__u32 idx = skb->ifindex;
	struct vsn_vm_if *vm;

	/* The VM is its interface, never a source address it could forge. */
	vm = bpf_map_lookup_elem(&vsn_vm_if, &idx);
	if (!vm || !vm->vm_id)
		return pass(VSN_R_NOT_VM, skb->len);
	return steer_to_storage(skb, vm, VSN_MODE_VM);
}

SEC("tc")
int vsn_up_ingress(struct __sk_buff *skb)
{
	return steer_from_storage(skb);
}

/* Uplink ingress where XDP handles replies: those it left for TC (a VM
 * behind a veth, lib/xfer.h). */
SEC("tc")
int vsn_up_xfer(struct __sk_buff *skb)
{
	return steer_left_by_xdp(skb);
}

SEC("tc")
int vsn_up_egress(struct __sk_buff *skb)
{
	/* Only the host's own flows (no ingress device): packets that vsn or
	 * the kernel forwards from elsewhere were steered already. */
	if (skb->ingress_ifindex)
		return TC_ACT_OK;
#ifdef VSN_SELFTEST_REFUSE
	/* tests/cli/test_refused.sh only: the program every verifier refuses
	 * after walking all of it (a map value used unchecked at the end), to
	 * see how vsn reports a long log. */
	__u32 id = skb->mark;
	int act = steer_to_storage(skb, NULL, VSN_MODE_HOST);

	return act + ((struct vsn_backend *)bpf_map_lookup_elem(&vsn_backends, &id))->state;
#endif
	return steer_to_storage(skb, NULL, VSN_MODE_HOST);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
