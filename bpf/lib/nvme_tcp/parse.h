/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * NVMe/TCP PDU parser, stateful per connection and direction.  It follows
 * the byte stream with the TCP sequence number and "bytes to the next PDU
 * header" (a PDU's plen, digests included, says where the next one starts),
 * reassembles headers split across segments, and reports commands and
 * responses.  When it cannot be sure where it is (a sequence gap, a header
 * that fails its checks, more PDUs in one packet than it follows), it counts
 * a resync and says nothing until a segment starts with a header it trusts:
 * a wrong event is worse than a missing one.
 */
#ifndef VSN_NVME_TCP_PARSE_H
#define VSN_NVME_TCP_PARSE_H

#include "lib/ctx.h"
#include "lib/parse.h"
#include "lib/maps.h"
#include "lib/telemetry.h"
#include "lib/nvme_tcp/pdu.h"
#include "lib/nvme_tcp/capsule.h"

/* Both buffers are 8-byte aligned (struct layout): copy in words, which
 * clang otherwise expands byte by byte into more registers than exist. */
static __always_inline void hdr_copy(__u8 *dst, const __u8 *src)
{
	__u64 *d = (__u64 *)dst;
	const __u64 *s = (const __u64 *)src;

#pragma clang loop unroll(disable)
	for (int i = 0; i < VSN_PDU_HDR_MAX / 8; i++)
		d[i] = s[i];
}

/*
 * Header bytes at payload offset pos into sc->hdr, after the hdr_have bytes
 * a previous segment of c left.  Returns the bytes now in sc->hdr, < 0 when
 * they cannot be read.  sc->hdr is followed by another VSN_PDU_HDR_MAX bytes
 * of scratch, so a load at hdr + have of up to VSN_PDU_HDR_MAX bytes stays
 * inside the map value.  Inlined: it runs for every PDU, and as a global
 * function its call cost 4-5 % of a data segment's parsing, for a saving of
 * 23k processed instructions (17.5k against 40.6k on 6.18, within budget
 * either way).
 */
static __always_inline int pdu_gather(vsn_ctx_t *ctx, const struct vsn_pkt *p, struct vsn_conn *c,
				      __u32 pos, struct vsn_scratch *sc)
{
	struct vsn_pdu_state *st;
	__u64 have, n, avail;
	__u8 *hb;

	if (!p || !c || !sc)
		return -1;
	st = &c->pdu;
	hb = sc->hdr;
	/* 64-bit: the helper takes a 64-bit length, and a 32-bit value's
	 * bounds check would be done on a zero-extended copy. */
	have = st->hdr_have;
	avail = p->pay_len - pos;
	if (have >= VSN_PDU_HDR_MAX)
		return -1;
	n = VSN_PDU_HDR_MAX - have;
	if (n > avail)
		n = avail;
	/* Keep the bounds checks on the very registers the helper gets. */
	asm volatile("" : "+r"(n), "+r"(have));
	if (n == 0 || n > VSN_PDU_HDR_MAX || have >= VSN_PDU_HDR_MAX)
		return -1;
	if (have) {
		hdr_copy(hb, st->hdr);
	} else if (n == VSN_PDU_HDR_MAX) {
		/* A whole header's worth in the linear part (always under XDP,
		 * the usual case under TC): copied directly, without the
		 * helper call. */
		void *data = ctx_data(ctx), *end = ctx_data_end(ctx);
		__u64 off = p->pay_off + pos;
		const __u8 *src;

		asm volatile("" : "+r"(off));
		/* The verifier grants no range past 64 KiB, offset included. */
		if (off < 0xff00) {
			src = data + off;
			/* The bounds check must be made on this very pointer. */
			asm volatile("" : "+r"(src));
			if ((void *)(src + VSN_PDU_HDR_MAX) <= end) {
				hdr_copy(hb, src);
				return VSN_PDU_HDR_MAX;
			}
		}
	}
	/* Equal to n, in a form older verifiers can see is 1..64. */
	n = ((n - 1) & (VSN_PDU_HDR_MAX - 1)) + 1;
	if (ctx_load_bytes(ctx, p->pay_off + pos, hb + have, n))
		return -1;
	return have + n;
}

/*
 * Where a payload sits in the stream: the offset of its first byte not yet
 * parsed, or -1 when it carries nothing to parse.
 */
static __always_inline int pdu_in_sequence(vsn_ctx_t *ctx, const struct vsn_pkt *p,
					   struct vsn_conn *c, __u32 path_id, __u32 dir)
{
	struct vsn_pdu_state *st = &c->pdu;
	__s32 delta = (__s32)(p->seq - st->next_seq);
	__u8 h[PDU_COMMON_LEN];

	if (st->flags & VSN_PDU_SYNCED) {
		if (delta < 0 && (__s32)(delta + p->pay_len) <= 0)
			return -1; /* a retransmission of what was parsed */
		if (delta < 0) {
			/* Old bytes and new ones: go on after the old. */
			st->next_seq = p->seq + p->pay_len;
			return -delta;
		}
		if (delta)
			pdu_lose_track(c, path_id, dir);
	}
	st->next_seq = p->seq + p->pay_len;
	if (st->flags & VSN_PDU_SYNCED)
		return 0;
	/* Out of step: only a segment that starts with a header resyncs. */
	if (p->pay_len < PDU_COMMON_LEN || ctx_load_bytes(ctx, p->pay_off, h, sizeof(h)) ||
	    !pdu_hdr_ok(h, true))
		return -1;
	st->flags |= VSN_PDU_SYNCED;
	st->skip = 0;
	st->hdr_have = 0;
	return 0;
}

/* What one bpf_loop step of the PDU walk needs (on the caller's stack). */
struct pdu_walk {
	vsn_ctx_t *ctx;
	const struct vsn_pkt *p;
	struct vsn_conn *c;
	struct vsn_scratch *sc; /* hdr: the header buffer; pkt_now */
	__u32 pos;
	__u32 path_id;
	__u32 dir;
	__u32 pad;
};

/* One PDU header of the packet: 0 = go on, 1 = done with this packet. */
static long pdu_step(__u32 i, void *data)
{
	struct pdu_walk *w = data;
	struct vsn_conn *c = w->c;
	const struct vsn_pkt *p = w->p;
	struct vsn_pdu_state *st = &c->pdu;
	__u8 *hb = w->sc->hdr;
	__u32 want, plen;
	int have;

	if (st->skip) {
		__u32 n = p->pay_len - w->pos;

		if (n > st->skip)
			n = st->skip;
		st->skip -= n;
		w->pos += n;
	}
	if (w->pos >= p->pay_len)
		return 1;
	if (i == VSN_PDUS_PER_PKT) {
		/* Past the cap: skip the rest, find a header later. */
		tel_count(VSN_T_CAPPED, 1);
		st->flags &= ~VSN_PDU_SYNCED;
		return 1;
	}
	have = pdu_gather(w->ctx, p, c, w->pos, w->sc);
	if (have < 0) {
		pdu_lose_track(c, w->path_id, w->dir);
		return 1;
	}
	if (have < PDU_COMMON_LEN) {
		hdr_copy(st->hdr, hb);
		st->hdr_have = have;
		return 1;
	}
	if (!pdu_hdr_ok(hb, false)) {
		pdu_lose_track(c, w->path_id, w->dir);
		return 1;
	}
	want = pdu_want(hb[0]);
	if ((__u32)have < want) {
		/* The header goes on in the next segment. */
		hdr_copy(st->hdr, hb);
		st->hdr_have = have;
		return 1;
	}
	plen = le32_at(hb, 4);
	w->pos += want - st->hdr_have;
	st->skip = plen - want;
	st->hdr_have = 0;
	tel_count(VSN_T_PDUS, 1);
	if (hb[0] == NVME_TCP_CMD && w->dir == VSN_DIR_TO_STORAGE)
		pdu_command(w->sc, c, w->path_id);
	else if (hb[0] == NVME_TCP_RSP && w->dir == VSN_DIR_FROM_STORAGE)
		pdu_response(w->sc, c);
	else if (hb[0] == NVME_TCP_H2C_DATA || hb[0] == NVME_TCP_C2H_DATA)
		tel_count(hb[0] == NVME_TCP_H2C_DATA ? VSN_T_H2C_BYTES : VSN_T_C2H_BYTES,
			  le32_at(hb, PDU_DATA_LEN));
	/* The PDU goes on to the end of the packet (or past it), as a data
	 * PDU's usually does: done, without a step only to skip it. */
	if (st->skip >= p->pay_len - w->pos) {
		st->skip -= p->pay_len - w->pos;
		return 1;
	}
	return 0;
}

/*
 * A global function: the verifier checks it once, on its own, from its
 * argument types alone, instead of once for every state the caller's
 * branches bring to the call (on 6.18 that product cost over a million
 * instructions).  Its arguments must therefore be checked here (a pointer
 * argument may be NULL), and it can only return a scalar.  The PDU walk is
 * a bpf_loop: one step verified once, and no loop back-edge for older
 * verifiers (6.1) to refuse.
 */
__noinline int nvme_tcp_parse(vsn_ctx_t *ctx, const struct vsn_pkt *p, struct vsn_conn *c,
			      __u32 path_id, __u32 dir)
{
	struct vsn_tel_cfg *cfg = tel_cfg();
	struct vsn_pdu_state *st;
	struct pdu_walk w = {};
	struct vsn_scratch *sc;
	int start;

	if (!p || !c || !cfg || !cfg->enabled || p->l4_proto != IPPROTO_TCP)
		return 0;
	st = &c->pdu;
	if (p->tcp_flags & TCPF_SYN) {
		st->next_seq = p->seq + 1;
		st->skip = 0;
		st->hdr_have = 0;
		st->flags |= VSN_PDU_SYNCED;
		return 0;
	}
	if ((p->tcp_flags & (TCPF_FIN | TCPF_RST)) && !(st->flags & VSN_PDU_CLOSED))
		pdu_closed(c, path_id, dir);
	if (!p->pay_len)
		return 0;
	start = pdu_in_sequence(ctx, p, c, path_id, dir);
	if (start < 0)
		return 0;
	sc = scratch();
	if (!sc)
		return 0;
	w.ctx = ctx;
	w.p = p;
	w.c = c;
	w.sc = sc;
	sc->pkt_now = 0;
	w.pos = start;
	w.path_id = path_id;
	w.dir = dir;
	bpf_loop(VSN_PDUS_PER_PKT + 1, pdu_step, &w, 0);
	return 0;
}

#endif /* VSN_NVME_TCP_PARSE_H */
