/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* A small NVMe/TCP host for the admin queue only: it reads a remote
 * controller's identity, SMART/health and ANA logs over TCP without the
 * kernel's nvme-tcp (the hypervisor may not have it) and without creating a
 * block device.  Blocking calls; every operation is bounded by a timeout and
 * can be cancelled through a file descriptor.  Controller data structures
 * come from libnvme; what libnvme 1.3 lacks (the NVMe/TCP PDUs, the wire
 * format of a submission/completion queue entry) is defined here after the
 * NVMe/TCP transport specification 1.0 and NVMe over Fabrics 1.1. */
#ifndef VSN_NVMF_ADMIN_H
#define VSN_NVMF_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <libnvme.h>

/* ---------------------------------------------------------------- wire */

enum nvmf_tcp_pdu_type {
	NVMF_TCP_ICREQ = 0x00,
	NVMF_TCP_ICRESP = 0x01,
	NVMF_TCP_H2C_TERM = 0x02,
	NVMF_TCP_C2H_TERM = 0x03,
	NVMF_TCP_CMD = 0x04,
	NVMF_TCP_RSP = 0x05,
	NVMF_TCP_H2C_DATA = 0x06,
	NVMF_TCP_C2H_DATA = 0x07,
	NVMF_TCP_R2T = 0x09,
};

/* Common header flags. */
#define NVMF_TCP_F_HDGST	0x01
#define NVMF_TCP_F_DDGST	0x02
#define NVMF_TCP_F_DATA_LAST	0x04 /* C2HData/H2CData: last PDU of the transfer */
#define NVMF_TCP_F_DATA_SUCCESS 0x08 /* C2HData: no CapsuleResp follows */

struct nvmf_tcp_hdr {
	__u8 type;
	__u8 flags;
	__u8 hlen;
	__u8 pdo;
	__le32 plen;
};

struct nvmf_tcp_icreq {
	struct nvmf_tcp_hdr hdr;
	__le16 pfv;
	__u8 hpda;
	__u8 digest;
	__le32 maxr2t;
	__u8 rsvd[112];
};

struct nvmf_tcp_icresp {
	struct nvmf_tcp_hdr hdr;
	__le16 pfv;
	__u8 cpda;
	__u8 digest;
	__le32 maxdata; /* largest H2CData payload the controller accepts */
	__u8 rsvd[112];
};

/* Submission queue entry as it travels in a command capsule. */
struct nvmf_sqe {
	__u8 opcode;
	__u8 flags;
	__le16 cid;
	__le32 nsid;
	__le32 cdw2;
	__le32 cdw3;
	__le64 mptr;
	__le64 sgl_addr;
	__le32 sgl_len;
	__u8 sgl_rsvd[3];
	__u8 sgl_type;
	__le32 cdw10;
	__le32 cdw11;
	__le32 cdw12;
	__le32 cdw13;
	__le32 cdw14;
	__le32 cdw15;
};

struct nvmf_cqe {
	__le64 result;
	__le16 sq_head;
	__le16 sq_id;
	__le16 cid;
	__le16 status; /* bit 0: phase; 15:1 status field */
};

struct nvmf_tcp_cmd {
	struct nvmf_tcp_hdr hdr;
	struct nvmf_sqe sqe;
};

struct nvmf_tcp_rsp {
	struct nvmf_tcp_hdr hdr;
	struct nvmf_cqe cqe;
};

/* C2HData and H2CData. */
struct nvmf_tcp_data {
	struct nvmf_tcp_hdr hdr;
	__le16 cccid;
	__le16 ttag;
	__le32 datao;
	__le32 datal;
	__u8 rsvd[4];
};

struct nvmf_tcp_r2t {
	struct nvmf_tcp_hdr hdr;
	__le16 cccid;
	__le16 ttag;
	__le32 r2to;
	__le32 r2tl;
	__u8 rsvd[4];
};

/* C2HTermReq/H2CTermReq header; up to 128 bytes of the offending PDU follow. */
struct nvmf_tcp_term {
	struct nvmf_tcp_hdr hdr;
	__le16 fes;
	__u8 fei[4]; /* le32 at offset 10: unaligned, so bytes */
	__u8 rsvd[10];
};

#define NVMF_TCP_TERM_MAX_PLEN	 (24 + 128)
#define NVMF_SQE_FLAG_SGL	 0x40 /* PSDT 01b: fabrics always use SGLs */
#define NVMF_SGL_TRANSPORT_BLOCK 0x5a /* transport data block, subtype A */
#define NVMF_SGL_INCAPSULE	 0x01 /* data block, offset into the capsule */
#define NVMF_OPC_FABRICS	 0x7f
#define NVMF_ADMIN_SQSIZE	 31	   /* 0's based: 32 entries, like Linux */
#define NVMF_ADMIN_ICD_MAX	 8192	   /* admin queue in-capsule data, spec minimum */
#define NVMF_MAX_XFER		 (1 << 20) /* the largest read this client asks for */

/* ---------------------------------------------------------------- client */

struct nvmf_target {
	char addr[64]; /* numeric IPv4 or IPv6 address */
	uint16_t port; /* 4420 when 0 */
	char subnqn[NVME_NQN_LENGTH];
	char hostnqn[NVME_NQN_LENGTH]; /* /etc/nvme/hostnqn or one from hostid when empty */
	uint8_t hostid[16];	       /* /etc/nvme/hostid, or random, when all zero */
	/* Leave through this interface (SO_BINDTODEVICE), as the storage
	 * traffic does; "" or no route through it: the kernel's route. */
	char ifname[16];
};

/* How the 1 KiB Connect data reaches the target. */
enum nvmf_cd_mode {
	NVMF_CD_AUTO = 0,	/* in the capsule; again through R2T if that is refused */
	NVMF_CD_IN_CAPSULE = 1, /* in the capsule only */
	NVMF_CD_R2T = 2,	/* H2CData after the target's R2T only */
};

struct nvmf_admin_opts {
	unsigned timeout_ms; /* each step: TCP connect, ICReq, one command (default 2000) */
	int cancel_fd;	     /* readable: abort what is running (-1: none) */
	unsigned kato_ms;    /* Keep Alive Timeout asked for in Connect (default 30000) */
	enum nvmf_cd_mode connect_data;
};

struct nvmf_admin;

/* A session object; no I/O yet.  NULL only when out of memory. */
struct nvmf_admin *nvmf_admin_new(const struct nvmf_target *t, const struct nvmf_admin_opts *o);
void nvmf_admin_free(struct nvmf_admin *s);

/*
 * Every call below returns 0, or -1 with nvmf_admin_error() describing the
 * failure as "ADDR:PORT: STEP: what happened".  After a transport or
 * protocol error the connection is closed; after an NVMe error status
 * (nvmf_admin_status() != 0) it stays usable.
 */
const char *nvmf_admin_error(const struct nvmf_admin *s);
/* Status field of the last completion (SCT << 8 | SC, with DNR/MORE bits). */
int nvmf_admin_status(const struct nvmf_admin *s);
/* The last failure was the connection going away (closed or reset by the
 * peer), not a timeout, a cancel or a protocol error. */
bool nvmf_admin_conn_lost(const struct nvmf_admin *s);
/* "ADDR:PORT", brackets around IPv6 addresses. */
const char *nvmf_admin_peer(const struct nvmf_admin *s);

/* The whole bring-up: TCP, ICReq/ICResp, Connect, CC.EN=1 until CSTS.RDY. */
int nvmf_admin_open(struct nvmf_admin *s);
bool nvmf_admin_is_open(const struct nvmf_admin *s);
/* Close the TCP connection (the target frees the controller); reopen later. */
void nvmf_admin_close(struct nvmf_admin *s);

/* The steps of nvmf_admin_open(), for tests and finer control. */
int nvmf_admin_tcp_connect(struct nvmf_admin *s);
/* Adopt a connected stream socket (socketpair in the unit tests). */
void nvmf_admin_use_fd(struct nvmf_admin *s, int fd);
int nvmf_admin_icreq(struct nvmf_admin *s);
int nvmf_admin_fabrics_connect(struct nvmf_admin *s, bool in_capsule);
int nvmf_admin_enable(struct nvmf_admin *s);

/* Properties: offsets from enum nvme_register (NVME_REG_CAP, _VS, _CC, _CSTS). */
int nvmf_admin_prop_get(struct nvmf_admin *s, uint32_t off, bool eight, uint64_t *val);
int nvmf_admin_prop_set(struct nvmf_admin *s, uint32_t off, uint64_t val);

int nvmf_admin_identify_ctrl(struct nvmf_admin *s, struct nvme_id_ctrl *id);
/* len: a multiple of 4, at most NVMF_MAX_XFER. */
int nvmf_admin_get_log(struct nvmf_admin *s, uint8_t lid, uint8_t lsp, uint32_t nsid, void *buf,
		       uint32_t len);
int nvmf_admin_keep_alive(struct nvmf_admin *s);

uint16_t nvmf_admin_cntlid(const struct nvmf_admin *s);
/* VS property read while enabling: major << 16 | minor << 8 | tertiary. */
uint32_t nvmf_admin_vs(const struct nvmf_admin *s);
/* Round trip of the last completed command, in nanoseconds. */
uint64_t nvmf_admin_last_rtt_ns(const struct nvmf_admin *s);
/* Which way the Connect data went on the current connection. */
bool nvmf_admin_connect_used_r2t(const struct nvmf_admin *s);

/* "ADDR[:PORT]", "[V6]:PORT" or a bare IPv6 address into t->addr/t->port.
 * Returns 0 or -1 with a message in err. */
int nvmf_parse_addr(const char *s, struct nvmf_target *t, char *err, size_t errlen);

#endif /* VSN_NVMF_ADMIN_H */
