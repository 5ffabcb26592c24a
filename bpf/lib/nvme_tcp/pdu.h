/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * NVMe/TCP PDUs as the parser reads them: field offsets (common header,
 * SQE/CQE), little-endian readers, and the checks that make a header
 * trusted.
 */
#ifndef VSN_NVME_TCP_PDU_H
#define VSN_NVME_TCP_PDU_H

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

#endif /* VSN_NVME_TCP_PDU_H */
