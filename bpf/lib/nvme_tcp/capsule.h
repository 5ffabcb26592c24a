/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * What the parser does with a PDU it trusts: commands and responses timed,
 * counted and reported (through the command table vsn_cmds), queue ids
 * learnt from Fabrics Connect, connection close and loss of track.
 */
#ifndef VSN_NVME_TCP_CAPSULE_H
#define VSN_NVME_TCP_CAPSULE_H

#include "lib/maps.h"
#include "lib/telemetry.h"
#include "lib/conn.h"
#include "lib/nvme_tcp/pdu.h"

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

#endif /* VSN_NVME_TCP_CAPSULE_H */
