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
#ifndef VSN_NVME_TCP_H
#define VSN_NVME_TCP_H

#define NVME_OPC_WRITE	    0x01
#define NVME_OPC_READ	    0x02
#define NVME_OPC_FABRICS    0x7f
#define NVME_FCTYPE_CONNECT 0x01
#define PDU_COMMON_LEN	    8
/* Offsets in a PDU (common header + SQE/CQE). */
#define PDU_CMD_OPC	8
#define PDU_CMD_CID	10
#define PDU_CMD_NSID	12
#define PDU_CMD_FCTYPE	12
#define PDU_CMD_SLBA	48
#define PDU_CONNECT_QID 50
#define PDU_CMD_NLB	56
#define PDU_RSP_CID	20
#define PDU_RSP_STATUS	22
#define PDU_DATA_LEN	16

static __always_inline __u16 le16_at(const __u8 *h, __u32 off)
{
	return h[off] | (__u16)h[off + 1] << 8;
}

static __always_inline __u32 le32_at(const __u8 *h, __u32 off)
{
	return h[off] | (__u32)h[off + 1] << 8 | (__u32)h[off + 2] << 16 | (__u32)h[off + 3] << 24;
}

static __always_inline __u64 le64_at(const __u8 *h, __u32 off)
{
	return le32_at(h, off) | (__u64)le32_at(h, off + 4) << 32;
}

/* The header length each PDU type must carry; 0 = not a PDU type. */
static __always_inline __u32 pdu_hlen(__u8 type)
{
	switch (type) {
	case NVME_TCP_ICREQ:
	case NVME_TCP_ICRESP:
		return 128;
	case NVME_TCP_CMD:
		return 72;
	case NVME_TCP_H2C_TERM:
	case NVME_TCP_C2H_TERM:
	case NVME_TCP_RSP:
	case NVME_TCP_H2C_DATA:
	case NVME_TCP_C2H_DATA:
	case NVME_TCP_R2T:
		return 24;
	}
	return 0;
}

/* Header bytes the parser reads from a PDU of this type. */
static __always_inline __u32 pdu_want(__u8 type)
{
	switch (type) {
	case NVME_TCP_CMD:
		return PDU_CMD_NLB + 2;
	case NVME_TCP_RSP:
		return PDU_RSP_STATUS + 2;
	case NVME_TCP_H2C_DATA:
	case NVME_TCP_C2H_DATA:
		return PDU_DATA_LEN + 4;
	}
	return PDU_COMMON_LEN;
}

/* strict: only when resynchronising on a segment start, where the bytes may
 * just as well be data: then only PDU types that occur mid-stream, with a
 * plausible data offset, are trusted. */
static __always_inline bool pdu_hdr_ok(const __u8 *h, bool strict)
{
	__u32 hlen = pdu_hlen(h[0]), plen = le32_at(h, 4);

	if (!hlen || h[2] != hlen || (h[1] & 0xf0))
		return false;
	if (plen < hlen || plen > VSN_PDU_MAX_LEN)
		return false;
	if (!strict)
		return true;
	if (h[0] <= NVME_TCP_C2H_TERM)
		return false;
	return !h[3] || (h[3] >= hlen && h[3] <= hlen + 4 && h[3] <= plen);
}

static __always_inline void pdu_lose_track(struct vsn_conn *c, __u32 path_id, __u32 dir)
{
	c->pdu.flags &= ~VSN_PDU_SYNCED;
	c->pdu.skip = 0;
	c->pdu.hdr_have = 0;
	tel_count(VSN_T_RESYNCS, 1);
	tel_conn_event(VSN_EV_RESYNC, c, path_id, dir);
}

/* The queue id lives in the command direction's Connect; responses come on
 * the other entry, which learns it here.  Keys of the other entry are built
 * in scratch (its rkey is free while the parser runs): the parser's frames
 * sit on top of the deepest call chain, at the verifier's stack limit. */
static __always_inline void pdu_set_qid(struct vsn_conn *c, __u16 qid)
{
	struct vsn_scratch *sc = scratch();
	struct vsn_conn *rc;

	c->pdu.qid = qid;
	c->pdu.flags |= VSN_PDU_QID;
	if (!sc)
		return;
	vsn_conn_rev_key(&sc->rkey, c, IPPROTO_TCP);
	rc = bpf_map_lookup_elem(&vsn_conns, &sc->rkey);
	if (rc) {
		rc->pdu.qid = qid;
		rc->pdu.flags |= VSN_PDU_QID;
	}
}

/* One close event per connection, whichever side closes first: both
 * entries learn it. */
static __always_inline void pdu_closed(struct vsn_conn *c, __u32 path_id, __u32 dir)
{
	struct vsn_scratch *sc = scratch();
	struct vsn_conn *other;

	c->pdu.flags |= VSN_PDU_CLOSED;
	if (!sc)
		return;
	if (dir == VSN_DIR_TO_STORAGE)
		vsn_conn_rev_key(&sc->rkey, c, IPPROTO_TCP);
	else
		conn_fwd_key(&sc->rkey, c, IPPROTO_TCP);
	other = bpf_map_lookup_elem(&vsn_conns, &sc->rkey);
	if (other) {
		if (other->pdu.flags & VSN_PDU_CLOSED)
			return;
		other->pdu.flags |= VSN_PDU_CLOSED;
	}
	tel_conn_event(VSN_EV_CONN_CLOSE, c, path_id, dir);
}

/* The slot of a command key (VSN_MAX_CMDS is a power of two). */
static __always_inline struct vsn_cmd_slot *cmd_slot(const struct vsn_cmd_key *k)
{
	__u32 h = (k->conn_id ^ ((__u32)k->qid << 16 | k->cid)) * 0x9e3779b1;
	__u32 idx = (h >> 8) & (VSN_MAX_CMDS - 1);

	return bpf_map_lookup_elem(&vsn_cmds, &idx);
}

/* Fields written one by one into the slot: a struct vsn_cmd on the stack
 * would cost the parser's frame, and the stack of the deepest call chain
 * is at the verifier's limit. */
static __always_inline void cmd_remember(const struct vsn_cmd_key *k, __u8 opcode, __u32 nlb,
					 __u32 path_id, __u64 ts)
{
	struct vsn_cmd_slot *s = cmd_slot(k);

	if (s) {
		s->cmd.ts_ns = ts;
		s->cmd.nlb = nlb;
		s->cmd.path_id = path_id;
		s->cmd.opcode = opcode;
		s->key = *k;
	}
}

/* The slot holding k's command, or NULL.  The caller reads it and frees it
 * (key.conn_id = 0). */
static __always_inline struct vsn_cmd_slot *cmd_find(const struct vsn_cmd_key *k)
{
	struct vsn_cmd_slot *s = cmd_slot(k);

	if (!s || s->key.conn_id != k->conn_id || s->key.qid != k->qid || s->key.cid != k->cid)
		return NULL;
	return s;
}

/*
 * When the packet was seen, for command timing: the precise clock costs as
 * much as the rest of a command's handling, so it is read only here, once
 * per packet and only when the packet holds a command or response (the
 * forwarding path makes do with the coarse clock).
 */
static __always_inline __u64 pkt_now(__u64 *now)
{
	if (!*now)
		*now = bpf_ktime_get_ns();
	return *now;
}

/* The read or write of nlb blocks in capsule h: does it start where the
 * previous one on this connection (one queue) and namespace ended? */
static __always_inline bool pdu_sequential(struct vsn_pdu_state *st, const __u8 *h, __u32 nlb)
{
	__u32 nsid = le32_at(h, PDU_CMD_NSID);
	__u64 slba = le64_at(h, PDU_CMD_SLBA);
	bool seq = (st->flags & VSN_PDU_LBA) && st->lba_nsid == nsid && st->next_lba == slba;

	st->next_lba = slba + nlb;
	st->lba_nsid = nsid;
	st->flags |= VSN_PDU_LBA;
	return seq;
}

/*
 * A command capsule's header, in sc->hdr (sc->pkt_now: the packet's clock
 * read, if any yet).  This and pdu_response() are global functions: the
 * verifier checks each once on its own, not for every state of the PDU walk
 * that calls them.
 */
__noinline int pdu_command(struct vsn_scratch *sc, struct vsn_conn *c, __u32 path_id)
{
	struct vsn_cmd_key k = {};
	struct vsn_event *e;
	const __u8 *h;
	bool seq = false;
	__u32 nlb = 0;
	__u64 ts;
	__u8 opc;

	if (!sc || !c)
		return 0;
	h = sc->hdr;
	opc = h[PDU_CMD_OPC];

	if (opc == NVME_OPC_FABRICS && h[PDU_CMD_FCTYPE] == NVME_FCTYPE_CONNECT)
		pdu_set_qid(c, le16_at(h, PDU_CONNECT_QID));
	if (!(c->pdu.flags & VSN_PDU_QID))
		return 0; /* which queue is unknown: no event */
	if (!c->pdu.qid) {
		tel_count(VSN_T_ADMIN, 1);
		return 0;
	}
	k.conn_id = c->conn_id;
	k.qid = c->pdu.qid;
	k.cid = le16_at(h, PDU_CMD_CID);
	if (opc == NVME_OPC_FABRICS) {
		/* An I/O queue's Connect: remembered only so that its response
		 * is known and not counted as an I/O completion. */
		cmd_remember(&k, opc, 0, 0, 0);
		return 0;
	}
	if (opc == NVME_OPC_READ || opc == NVME_OPC_WRITE) {
		nlb = le16_at(h, PDU_CMD_NLB) + 1;
		seq = pdu_sequential(&c->pdu, h, nlb);
		tel_count(opc == NVME_OPC_READ ? VSN_T_READ_CMDS : VSN_T_WRITE_CMDS, 1);
		tel_count(opc == NVME_OPC_READ ? VSN_T_READ_BLKS : VSN_T_WRITE_BLKS, nlb);
		if (seq)
			tel_count(VSN_T_SEQ_CMDS, 1);
	}
	tel_count(VSN_T_CMDS, 1);
	/* Only the commands reported are timed: the clock read and the
	 * record are most of a command's cost. */
	if (!tel_admit_cmd())
		return 0;
	ts = pkt_now(&sc->pkt_now);
	cmd_remember(&k, opc, nlb, path_id, ts);
	e = tel_event(VSN_EV_CMD, c, path_id, VSN_DIR_TO_STORAGE, ts);
	if (!e)
		return 0;
	e->opcode = opc;
	e->cid = k.cid;
	e->nsid = le32_at(h, PDU_CMD_NSID);
	e->nlb = nlb;
	if (nlb)
		e->slba = le64_at(h, PDU_CMD_SLBA);
	e->flags = seq ? VSN_EVF_SEQ : 0;
	tel_submit(e);
	return 0;
}

/* A response capsule's header, in sc->hdr. */
__noinline int pdu_response(struct vsn_scratch *sc, struct vsn_conn *c)
{
	struct vsn_tel_cfg *cfg = tel_cfg();
	struct vsn_cmd_key k = {};
	struct vsn_cmd_slot *s;
	struct vsn_event *e;
	__u64 lat = 0, now = 0;
	__u32 path_id = 0, nlb = 0;
	const __u8 *h;
	__u16 status;
	__u8 opc = 0;

	if (!sc || !c)
		return 0;
	h = sc->hdr;
	status = le16_at(h, PDU_RSP_STATUS);
	if (!(c->pdu.flags & VSN_PDU_QID) || !c->pdu.qid)
		return 0; /* admin queue, or unknown */
	k.conn_id = c->conn_id;
	k.qid = c->pdu.qid;
	k.cid = le16_at(h, PDU_RSP_CID);
	s = cmd_find(&k);
	if (s) {
		s->key.conn_id = 0;
		if (s->cmd.opcode == NVME_OPC_FABRICS)
			return 0;
	}
	tel_count(VSN_T_RESPS, 1);
	if (status >> 1) { /* bit 0 is the phase tag */
		/* Status code type: bits 9..11 of the status field. */
		__u32 sct = (status >> 9) & 7;

		tel_count(VSN_T_ERRORS, 1);
		tel_count(sct <= 3 ? VSN_T_ERR_GENERIC + sct : VSN_T_ERR_OTHER, 1);
	}
	if (s) {
		now = pkt_now(&sc->pkt_now);
		lat = now - s->cmd.ts_ns;
		path_id = s->cmd.path_id;
		opc = s->cmd.opcode;
		nlb = s->cmd.nlb;
		tel_count(VSN_T_MATCHED, 1);
		tel_latency(c, path_id, lat);
	} else if (cfg && cfg->sample_every <= 1) {
		tel_count(VSN_T_UNMATCHED, 1);
	}
	if (!tel_admit_resp(cfg, s != NULL))
		return 0;
	e = tel_event(VSN_EV_RESP, c, path_id, VSN_DIR_FROM_STORAGE, now);
	if (!e)
		return 0;
	e->cid = k.cid;
	e->status = status;
	e->opcode = opc;
	e->nlb = nlb;
	e->latency_ns = lat;
	tel_submit(e);
	return 0;
}

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
 * inside the map value.  Global: verified once, whatever the walk's state.
 */
__noinline int pdu_gather(vsn_ctx_t *ctx, const struct vsn_pkt *p, struct vsn_conn *c, __u32 pos,
			  struct vsn_scratch *sc)
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

#endif /* VSN_NVME_TCP_H */
