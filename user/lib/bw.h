/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Bandwidth allocation per VM on an uplink: an HTB tree set up over
 * rtnetlink (no tc binary).
 *
 *	1:	root qdisc htb, default class 1:ffff
 *	1:1	capacity (rate = ceil = capacity)
 *	1:(0x100 + vm_id)	one per VM: rate = min, ceil = max
 *	1:ffff	everything not classified: small rate, ceil = capacity
 *
 * The datapath puts bw_classid(vm) in skb->priority, which HTB takes as
 * the class directly, so no tc filter is needed.
 *
 * Ownership: an HTB root qdisc with handle 1: on an uplink is taken to be
 * vsn's.  bw_setup() changes it in place; it replaces only the kernel's
 * default root qdisc (handle 0:) and refuses any other root qdisc.
 * bw_teardown() removes only an HTB 1: root.  Neither touches the clsact
 * qdisc that holds vsn's TC programs.
 */
#ifndef VSN_BW_H
#define VSN_BW_H

#include <stddef.h>
#include <stdint.h>

#define BW_MAJOR       1u
#define BW_PARENT_MIN  0x1u
#define BW_DEFAULT_MIN 0xffffu
#define BW_VM_BASE     0x100u
#define BW_VM_ID_MAX   (BW_DEFAULT_MIN - 1 - BW_VM_BASE) /* 1:fffe is the last VM class */
#define BW_MIN_BPS     8000ull				 /* HTB's rate is whole bytes/s */

struct bw_class {
	uint32_t vm_id;
	uint64_t min_bps; /* guaranteed, bits/s (0: BW_MIN_BPS) */
	uint64_t max_bps; /* ceiling, bits/s (0: the capacity) */
};

/* The classid (major 1, minor 0x100 + vm_id) for skb->priority. */
uint32_t bw_classid(uint32_t vm_id);

/*
 * Make the HTB tree on IFINDEX match CLS[0..N): creates the qdisc if
 * needed, creates or changes classes in place (traffic keeps flowing),
 * deletes VM classes no longer listed.  Returns 0 or a negative errno with
 * a message (the kernel's extended ack included) in ERR.
 */
int bw_setup(unsigned ifindex, uint64_t capacity_bps, const struct bw_class *cls, unsigned n,
	     char *err, size_t errlen);

/* Remove vsn's HTB root qdisc (and its classes) from IFINDEX; 0 if there
 * was none.  Any other root qdisc, and clsact, stay. */
int bw_teardown(unsigned ifindex, char *err, size_t errlen);

/* "20M", "1.5gbit", "800k", "100000" -> bits/s; 0 or -EINVAL. */
int bw_parse_rate(const char *s, uint64_t *bps);

#endif /* VSN_BW_H */
