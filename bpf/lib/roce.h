/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * RoCEv2 telemetry: packets and bytes per BTH opcode class on each path,
 * CNPs and ECN CE marks (the congestion signals), and per destination QP.
 * Only counts: RoCE packets are never rewritten beyond the path's fields.
 */
#ifndef VSN_ROCE_H
#define VSN_ROCE_H

#include "lib/ctx.h"
#include "lib/parse.h"
#include "lib/counters.h"

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, VSN_MAX_PATHS *VSN_ROCE_CLASSES);
	__type(key, __u32);
	__type(value, struct vsn_counter);
	__uint(pinning, VSN_PINNING);
} vsn_roce_path SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct vsn_roce_qp_key);
	__type(value, struct vsn_counter);
	__uint(pinning, VSN_PINNING);
} vsn_roce_qp SEC(".maps");

/*
 * The BTH opcode's top three bits name the transport (RC 0, UC 1, RD 2,
 * UD 3, XRC 5; 0x81 is RoCEv2's CNP), its low five the operation, numbered
 * alike in every transport that has it (IBTA vol. 1, 9.2.1; SEND with
 * invalidate 0x16/0x17, which every NVMe/RDMA response uses; FLUSH 0x1c and
 * ATOMIC WRITE 0x1d from the memory placement extensions).
 */
static __always_inline __u32 roce_class(__u8 opc)
{
	if (opc == BTH_OPCODE_CNP)
		return VSN_ROCE_CNP;
	switch (opc >> 5) {
	case 0: /* RC */
	case 1: /* UC */
	case 2: /* RD */
	case 3: /* UD */
	case 5: /* XRC */
		break;
	default: /* CNP's range apart from 0x81, manufacturer-specific */
		return VSN_ROCE_OTHER;
	}
	switch (opc & 0x1f) {
	case 0x00 ... 0x05: /* SEND first, middle, last, only (with immediate) */
	case 0x16 ... 0x17: /* SEND last, only with invalidate */
		return VSN_ROCE_SEND;
	case 0x06 ... 0x0b: /* RDMA WRITE first, middle, last, only (imm.) */
	case 0x1c:	    /* FLUSH: makes earlier RDMA WRITEs persistent */
		return VSN_ROCE_WRITE;
	case 0x0c:
		return VSN_ROCE_READ_REQ;
	case 0x0d ... 0x10: /* RDMA READ response first, middle, last, only */
		return VSN_ROCE_READ_RESP;
	case 0x11:
		return VSN_ROCE_ACK;
	case 0x12 ... 0x14: /* ATOMIC acknowledge, compare-and-swap, fetch-add */
	case 0x1d:	    /* ATOMIC WRITE */
		return VSN_ROCE_ATOMIC;
	}
	return VSN_ROCE_OTHER; /* reserved */
}

static __always_inline void roce_account(vsn_ctx_t *ctx, const struct vsn_pkt *p, __u32 vm_id,
					 __u32 path_id, __u32 dir, __u32 len)
{
	struct vsn_roce_qp_key qk = {};
	struct vsn_counter one = {1, len}, *qc;
	__u8 bth[8];

	if (p->pay_len < BTH_LEN || path_id >= VSN_MAX_PATHS ||
	    ctx_load_bytes(ctx, p->pay_off, bth, sizeof(bth)))
		return;
	count(&vsn_roce_path, path_id * VSN_ROCE_CLASSES + roce_class(bth[0]), len);
	if (p->ecn == 3)
		count(&vsn_roce_path,
		      path_id * VSN_ROCE_CLASSES +
			  (dir == VSN_DIR_TO_STORAGE ? VSN_ROCE_CE_OUT : VSN_ROCE_CE),
		      len);
	qk.vm_id = vm_id;
	qk.dest_qp = (__u32)bth[5] << 16 | (__u32)bth[6] << 8 | bth[7];
	qk.dir = dir;
	qc = bpf_map_lookup_elem(&vsn_roce_qp, &qk);
	if (qc) {
		qc->packets++;
		qc->bytes += len;
	} else {
		bpf_map_update_elem(&vsn_roce_qp, &qk, &one, BPF_NOEXIST);
	}
}

#endif /* VSN_ROCE_H */
