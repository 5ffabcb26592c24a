"""NVMe/TCP byte streams for the vsn packet tests.

Run with /usr/bin/python3 (it has scapy).  Written from the NVMe/TCP
transport specification (NVM Express TCP Transport Specification 1.0,
section 3.6 "PDU formats") and the NVMe base / NVMe over Fabrics
specifications (SQE/CQE layout, Fabrics Connect), not from the project's
headers, so a layout mistake shared by the BPF parser and its tests cannot
hide itself.  `python3 nvme_pdus.py` runs a self test (CRC32C vectors, and,
when tshark is installed, Wireshark's own NVMe/TCP dissector reading a
capture of the generated streams back).

Sections:
  1. CRC32C (header and data digests)
  2. PDU builders   icreq, icresp, capsule_cmd (read/write/flush/connect/
                    admin helpers), capsule_resp, h2c_data, c2h_data, r2t,
                    h2c_term
  3. stream layout  pdu_starts, concat
  4. segmenters     cut_at, per_segment, superframes, fixed_size
  5. packets        Endpoint, TcpFlow (SYN / SYN-ACK, sequence numbers,
                    both directions), write_pcap

PDU layout reminders (all multi-byte fields little-endian):
  common header (8):  type u8, flags u8, hlen u8, pdo u8, plen le32
     flags: bit0 HDGSTF, bit1 DDGSTF, bit2 LAST_PDU (data PDUs),
            bit3 SUCCESS (C2HData)
  the header digest (CRC32C of the hlen header bytes) follows the header,
  then pad up to pdo, then data, then the data digest (CRC32C of the data);
  plen counts all of it.
  type hlen  PDU
  0x00 128   ICReq      PFV +8, HPDA +10, DGST +11, MAXR2T +12
  0x01 128   ICResp     PFV +8, CPDA +10, DGST +11, MAXH2CDATA +12
  0x02 24    H2CTermReq FES +8, FEI +10
  0x03 24    C2HTermReq
  0x04 72    CapsuleCmd SQE at +8 (opcode +8, flags +9, CID +10, NSID +12,
                        DPTR +32, CDW10/11 = SLBA +48, CDW12 = NLB +56)
  0x05 24    CapsuleResp CQE at +8 (DW0 +8, DW1 +12, SQHD +16, SQID +18,
                        CID +20, status +22: bit0 phase (0), bits 15:1 SF)
  0x06 24    H2CData    CCCID +8, TTAG +10, DATAO +12, DATAL +16
  0x07 24    C2HData    CCCID +8, DATAO +12, DATAL +16
  0x09 24    R2T        CCCID +8, TTAG +10, R2TO +12, R2TL +16
"""

import logging
import os
import shutil
import struct
import subprocess
import sys
import tempfile

logging.getLogger("scapy.runtime").setLevel(logging.ERROR)
from scapy.layers.inet import IP, TCP  # noqa: E402
from scapy.layers.inet6 import IPv6  # noqa: E402
from scapy.layers.l2 import Dot1Q, Ether  # noqa: E402
from scapy.packet import Raw  # noqa: E402

NVME_TCP_PORT = 4420

# PDU types
ICREQ, ICRESP, H2C_TERM, C2H_TERM = 0x00, 0x01, 0x02, 0x03
CAPSULE_CMD, CAPSULE_RESP, H2C_DATA, C2H_DATA, R2T = 0x04, 0x05, 0x06, 0x07, 0x09
HLEN = {ICREQ: 128, ICRESP: 128, H2C_TERM: 24, C2H_TERM: 24,
        CAPSULE_CMD: 72, CAPSULE_RESP: 24, H2C_DATA: 24, C2H_DATA: 24,
        R2T: 24}
TYPE_NAME = {ICREQ: "icreq", ICRESP: "icresp", H2C_TERM: "h2c_term",
             C2H_TERM: "c2h_term", CAPSULE_CMD: "cmd", CAPSULE_RESP: "resp",
             H2C_DATA: "h2c_data", C2H_DATA: "c2h_data", R2T: "r2t"}

# Common header flags
F_HDGST, F_DDGST, F_LAST_PDU, F_SUCCESS = 0x01, 0x02, 0x04, 0x08

# NVM command set / admin / fabrics opcodes
OP_FLUSH, OP_WRITE, OP_READ, OP_WRITE_ZEROES, OP_DSM = 0x00, 0x01, 0x02, 0x08, 0x09
ADM_GET_LOG_PAGE, ADM_IDENTIFY, ADM_SET_FEATURES, ADM_GET_FEATURES = \
    0x02, 0x06, 0x09, 0x0A
ADM_ASYNC_EVENT, ADM_KEEP_ALIVE = 0x0C, 0x18
OP_FABRICS = 0x7F
FCTYPE_PROPERTY_SET, FCTYPE_CONNECT, FCTYPE_PROPERTY_GET = 0x00, 0x01, 0x04

CONNECT_DATA_LEN = 1024
SQE_PSDT_SGL = 0x40          # SQE flags: PSDT = 01b, SGLs for the data


# ---------------------------------------------------------------------------
# 1. CRC32C (Castagnoli, reflected polynomial 0x82F63B78, init and final ~0).
# ---------------------------------------------------------------------------

def _crc32c_table():
    t = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        t.append(c)
    return t


_CRC32C = _crc32c_table()


def crc32c(data, crc=0):
    """CRC32C of data (crc: a previous result, to continue a running CRC)."""
    c = crc ^ 0xFFFFFFFF
    for b in bytes(data):
        c = _CRC32C[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def digest(data):
    """The 4 digest bytes as they go on the wire (the CRC as little-endian,
    like Linux' crc32c shash and SPDK)."""
    return struct.pack("<I", crc32c(data))


# ---------------------------------------------------------------------------
# 2. PDU builders.  Each returns the complete PDU as bytes.
# ---------------------------------------------------------------------------

def pdu(ptype, specific, data=b"", hdgst=False, ddgst=False, flags=0,
        pdo=None, hlen=None, plen=None, pad_align=0):
    """Generic PDU: common header + PDU-specific header (`specific`, padded
    to hlen - 8) [+ HDGST] [+ pad] [+ data [+ DDGST]].

    hdgst/ddgst set the HDGSTF/DDGSTF flags and append the digests (DDGSTF
    only when there is data).  pdo defaults to where the data starts (0
    without data); pad_align (CPDA/HPDA style, in bytes) pads the data
    start up to a multiple of it.  hlen/plen override the computed values
    (for malformed headers); everything else stays consistent.
    """
    h = HLEN.get(ptype, 8 + len(specific)) if hlen is None else hlen
    spec = bytes(specific)[:max(h - 8, 0)]
    spec += b"\0" * (max(h - 8, 0) - len(spec))
    fl = flags | (F_HDGST if hdgst else 0) | (F_DDGST if ddgst and data else 0)
    hd_len = 4 if hdgst else 0
    dstart = h + hd_len
    if data and pad_align:
        dstart = -(-dstart // pad_align) * pad_align
    if pdo is None:
        pdo = dstart if data else 0
    body_len = dstart + len(data) + (4 if ddgst and data else 0) \
        if data else h + hd_len
    if plen is None:
        plen = body_len
    hdr = struct.pack("<BBBBI", ptype, fl, h, pdo, plen) + spec
    out = hdr
    if hdgst:
        out += digest(hdr)
    if data:
        out += b"\0" * (dstart - len(out))
        out += bytes(data)
        if ddgst:
            out += digest(data)
    return out


def icreq(pfv=0, hpda=0, hdgst_enable=False, ddgst_enable=False, maxr2t=0):
    dg = (1 if hdgst_enable else 0) | (2 if ddgst_enable else 0)
    return pdu(ICREQ, struct.pack("<HBBI", pfv, hpda, dg, maxr2t))


def icresp(pfv=0, cpda=0, hdgst_enable=False, ddgst_enable=False,
           maxh2cdata=0x20000):
    dg = (1 if hdgst_enable else 0) | (2 if ddgst_enable else 0)
    return pdu(ICRESP, struct.pack("<HBBI", pfv, cpda, dg, maxh2cdata))


def sqe(opcode, cid, nsid=0, cdw10=0, cdw11=0, cdw12=0, cdw13=0, cdw14=0,
        cdw15=0, flags=SQE_PSDT_SGL, sgl=None, mptr=0):
    """A 64-byte submission queue entry.  sgl: the 16-byte DPTR (SGL
    descriptor 1); default: a transport SGL data block (type 5, subtype
    0xA, length 0)."""
    if sgl is None:
        sgl = sgl_transport(0)
    return (struct.pack("<BBHI8xQ", opcode, flags, cid, nsid, mptr) + sgl
            + struct.pack("<6I", cdw10, cdw11, cdw12, cdw13, cdw14, cdw15))


def sgl_transport(length):
    """SGL Transport Data Block descriptor: data moved by H2C/C2H PDUs."""
    return struct.pack("<QI3xB", 0, length, 0x5A)


def sgl_incapsule(length, offset=0):
    """SGL Data Block descriptor, offset subtype: in-capsule data."""
    return struct.pack("<QI3xB", offset, length, 0x01)


def capsule_cmd(sqe_bytes, data=b"", hdgst=False, ddgst=False, **kw):
    """CapsuleCmd PDU (hlen 72) around a 64-byte SQE, with in-capsule data."""
    assert len(sqe_bytes) == 64
    return pdu(CAPSULE_CMD, sqe_bytes, data, hdgst, ddgst, **kw)


def io_cmd(opcode, cid, nsid=1, slba=0, nlb=0, data=b"", hdgst=False,
           ddgst=False, **kw):
    """Read/write-style NVM command: SLBA in CDW10/11, NLB (0-based) in
    CDW12 bits 15:0.  nlb here is the 0-based field value.  With data,
    the data travels in the capsule (in-capsule data SGL)."""
    sgl = sgl_incapsule(len(data)) if data else sgl_transport(
        (nlb + 1) * 512 if opcode in (OP_READ, OP_WRITE) else 0)
    s = sqe(opcode, cid, nsid, slba & 0xFFFFFFFF, slba >> 32, nlb & 0xFFFF,
            sgl=sgl)
    return capsule_cmd(s, data, hdgst, ddgst, **kw)


def read_cmd(cid, nsid=1, slba=0, nlb=0, **kw):
    return io_cmd(OP_READ, cid, nsid, slba, nlb, **kw)


def write_cmd(cid, nsid=1, slba=0, nlb=0, data=b"", **kw):
    return io_cmd(OP_WRITE, cid, nsid, slba, nlb, data=data, **kw)


def flush_cmd(cid, nsid=1, **kw):
    return capsule_cmd(sqe(OP_FLUSH, cid, nsid), **kw)


def admin_cmd(opcode, cid, nsid=0, cdw10=0, **kw):
    """An admin command (Identify, Get Log Page, Keep Alive...)."""
    return capsule_cmd(sqe(opcode, cid, nsid, cdw10), **kw)


def connect_data(hostid=b"\x11" * 16, cntlid=0xFFFF,
                 subnqn="nqn.2014-08.org.nvmexpress:uuid:vsn-test-subsys",
                 hostnqn="nqn.2014-08.org.nvmexpress:uuid:vsn-test-host"):
    """The 1024-byte Connect command data."""
    d = bytearray(CONNECT_DATA_LEN)
    d[0:16] = hostid
    struct.pack_into("<H", d, 16, cntlid)
    sn, hn = subnqn.encode(), hostnqn.encode()
    d[256:256 + len(sn)] = sn
    d[512:512 + len(hn)] = hn
    return bytes(d)


def connect_cmd(cid, qid, sqsize=127, kato=0, cattr=0, hdgst=False,
                ddgst=False, cdata=None, **kw):
    """Fabrics Connect (opcode 0x7f, FCTYPE 0x01 at SQE byte 4 = PDU +12):
    RECFMT le16 at +48, QID le16 at +50, SQSIZE le16 at +52, CATTR at +54,
    KATO le32 at +56; the 1024-byte connect data travels in the capsule."""
    cdata = connect_data() if cdata is None else cdata
    s = bytearray(64)
    struct.pack_into("<BBH", s, 0, OP_FABRICS, SQE_PSDT_SGL, cid)
    s[4] = FCTYPE_CONNECT
    s[24:40] = sgl_incapsule(len(cdata))
    struct.pack_into("<HHHBxI", s, 40, 0, qid, sqsize, cattr, kato)
    return capsule_cmd(bytes(s), cdata, hdgst, ddgst, **kw)


def property_get_cmd(cid, offset=0x1C, size8=False, **kw):
    """Fabrics Property Get (an admin-queue command that is not Connect)."""
    s = bytearray(64)
    struct.pack_into("<BBH", s, 0, OP_FABRICS, SQE_PSDT_SGL, cid)
    s[4] = FCTYPE_PROPERTY_GET
    s[40] = 1 if size8 else 0
    struct.pack_into("<I", s, 44, offset)
    return capsule_cmd(bytes(s), **kw)


def cqe(cid, status=0, sqhd=0, sqid=0, dw0=0, dw1=0):
    """A 16-byte completion queue entry.  status is the raw upper half of
    DW3 (bit 0 the phase tag, 0 on NVMe/TCP; bits 15:1 the status field):
    use status_word(sct, sc) to build it."""
    return struct.pack("<IIHHHH", dw0, dw1, sqhd, sqid, cid, status)


def status_word(sct=0, sc=0, dnr=False, more=False):
    """Raw CQE status half-word: phase 0, SC bits 8:1, SCT bits 11:9,
    CRD 13:12 (0), M bit 14, DNR bit 15."""
    return ((sc & 0xFF) << 1) | ((sct & 7) << 9) | (int(more) << 14) \
        | (int(dnr) << 15)


def capsule_resp(cid, status=0, sqhd=0, sqid=0, dw0=0, hdgst=False,
                 ddgst=False, **kw):
    """CapsuleResp PDU (hlen 24), CID at +20, status at +22.  (ddgst is
    accepted and ignored: a response carries no data, so no DDGSTF.)"""
    return pdu(CAPSULE_RESP, cqe(cid, status, sqhd, sqid, dw0), b"", hdgst,
               False, **kw)


def h2c_data(cccid, ttag, datao, data, last=True, hdgst=False, ddgst=False,
             **kw):
    spec = struct.pack("<HHII", cccid, ttag, datao, len(data))
    return pdu(H2C_DATA, spec, data, hdgst, ddgst,
               flags=F_LAST_PDU if last else 0, **kw)


def c2h_data(cccid, datao, data, last=True, success=False, hdgst=False,
             ddgst=False, **kw):
    spec = struct.pack("<HHII", cccid, 0, datao, len(data))
    fl = (F_LAST_PDU if last else 0) | (F_SUCCESS if success else 0)
    return pdu(C2H_DATA, spec, data, hdgst, ddgst, flags=fl, **kw)


def r2t(cccid, ttag, r2to, r2tl, hdgst=False, ddgst=False, **kw):
    return pdu(R2T, struct.pack("<HHII", cccid, ttag, r2to, r2tl), b"",
               hdgst, **kw)


def h2c_term(fes=1, fei=0, hdgst=False):
    return pdu(H2C_TERM, struct.pack("<HI", fes, fei), b"", hdgst)


def header_fields(b):
    """Decode a PDU header (the generator's own view, for expectations):
    {type, flags, hlen, pdo, plen, ...type specific}."""
    t, fl, h, pdo, plen = struct.unpack_from("<BBBBI", b, 0)
    d = dict(type=t, flags=fl, hlen=h, pdo=pdo, plen=plen)
    if t == CAPSULE_CMD and len(b) >= 72:
        d.update(opcode=b[8], sqe_flags=b[9],
                 cid=struct.unpack_from("<H", b, 10)[0],
                 nsid=struct.unpack_from("<I", b, 12)[0],
                 slba=struct.unpack_from("<Q", b, 48)[0],
                 nlb0=struct.unpack_from("<H", b, 56)[0],
                 fctype=b[12], qid=struct.unpack_from("<H", b, 50)[0])
    elif t == CAPSULE_RESP and len(b) >= 24:
        d.update(cid=struct.unpack_from("<H", b, 20)[0],
                 status=struct.unpack_from("<H", b, 22)[0])
    elif t in (H2C_DATA, C2H_DATA, R2T) and len(b) >= 24:
        d.update(cccid=struct.unpack_from("<H", b, 8)[0],
                 ttag=struct.unpack_from("<H", b, 10)[0],
                 datao=struct.unpack_from("<I", b, 12)[0],
                 datal=struct.unpack_from("<I", b, 16)[0])
    return d


# ---------------------------------------------------------------------------
# 3. Stream layout.
# ---------------------------------------------------------------------------

def concat(pdus):
    return b"".join(pdus)


def pdu_starts(pdus):
    """Offsets of each PDU in the concatenated stream."""
    out, off = [], 0
    for p in pdus:
        out.append(off)
        off += len(p)
    return out


def walk(stream):
    """Split a well-formed stream back into PDUs by plen (a check that a
    list of PDUs is self-consistent: every plen equals the PDU's length)."""
    out, off = [], 0
    while off < len(stream):
        plen = struct.unpack_from("<I", stream, off + 4)[0]
        out.append(stream[off:off + plen])
        off += plen
    return out


# ---------------------------------------------------------------------------
# 4. Segmenters: one direction's PDUs -> TCP payload segments.
#    Every segmenter returns [(stream_offset, payload_bytes)].
# ---------------------------------------------------------------------------

def cut_at(stream, cuts):
    """Cut a byte stream at the given absolute offsets (sorted, deduped,
    0 and len ignored)."""
    if isinstance(stream, (list, tuple)):
        stream = concat(stream)
    pts = sorted(set(c for c in cuts if 0 < c < len(stream)))
    out, prev = [], 0
    for c in pts + [len(stream)]:
        out.append((prev, stream[prev:c]))
        prev = c
    return out


def cut_pdus_at(pdus, rel_cuts):
    """Cut each PDU i at the offsets rel_cuts[i] (relative to its start;
    an int or a list; None/0: no cut inside it).  PDU boundaries are not
    cuts by themselves, so a segment may end with the head of the next
    PDU: with rel_cuts[i] = k the segment boundary lies k bytes into PDU i
    and the previous segment carries PDU i-1's tail plus PDU i's first k
    bytes."""
    starts = pdu_starts(pdus)
    cuts = []
    for i, rc in enumerate(rel_cuts):
        if rc is None:
            continue
        for k in ([rc] if isinstance(rc, int) else rc):
            cuts.append(starts[i] + k)
    return cut_at(concat(pdus), cuts)


def per_segment(pdus, n):
    """Whole PDUs, n per segment (n: an int, or a list of counts used in
    turn; the rest goes into the last segment if the list runs out)."""
    counts = [n] if isinstance(n, int) else list(n)
    out, off, i, k = [], 0, 0, 0
    while i < len(pdus):
        c = counts[k] if k < len(counts) else (
            counts[-1] if isinstance(n, int) else len(pdus) - i)
        k += 1
        chunk = concat(pdus[i:i + c])
        out.append((off, chunk))
        off += len(chunk)
        i += c
    return out


def superframes(pdus, max_bytes=65536):
    """TSO/GRO-style super-frames: as many whole PDUs as fit in max_bytes
    per segment (a PDU larger than max_bytes gets a segment of its own and
    is then cut at max_bytes)."""
    out, off, cur = [], 0, b""
    for p in pdus:
        if cur and len(cur) + len(p) > max_bytes:
            out.append((off, cur))
            off += len(cur)
            cur = b""
        cur += p
        while len(cur) > max_bytes:
            out.append((off, cur[:max_bytes]))
            off += max_bytes
            cur = cur[max_bytes:]
    if cur:
        out.append((off, cur))
    return out


def fixed_size(stream, size):
    """MSS-style: cut the stream every `size` bytes regardless of PDUs."""
    if isinstance(stream, (list, tuple)):
        stream = concat(stream)
    return [(o, stream[o:o + size]) for o in range(0, len(stream), size)]


def segment_of(segments, offset):
    """Index of the segment holding stream byte `offset`."""
    for i, (o, b) in enumerate(segments):
        if o <= offset < o + len(b):
            return i
    return None


# ---------------------------------------------------------------------------
# 5. Packets: Ether/IP/TCP around segments, both directions of a connection.
# ---------------------------------------------------------------------------

class Endpoint:
    """One side's view of a packet it sends: its MAC/address/port and the
    L2/L3 destination as they appear where vsn sees the packet."""

    def __init__(self, mac, addr, port, dst_mac, dst_addr, dst_port,
                 vlan=None, ttl=64):
        self.mac, self.addr, self.port = mac, addr, port
        self.dst_mac, self.dst_addr, self.dst_port = dst_mac, dst_addr, dst_port
        self.vlan, self.ttl = vlan, ttl


def tcp_packet(ep, seq, ack, flags="PA", payload=b"", window=65535,
               options=None, ip_id=1):
    e = Ether(src=ep.mac, dst=ep.dst_mac)
    if ep.vlan is not None:
        e = e / Dot1Q(vlan=ep.vlan)
    if ":" in ep.addr:
        l3 = IPv6(src=ep.addr, dst=ep.dst_addr, hlim=ep.ttl)
    else:
        l3 = IP(src=ep.addr, dst=ep.dst_addr, ttl=ep.ttl, id=ip_id & 0xFFFF)
    t = TCP(sport=ep.port, dport=ep.dst_port, flags=flags, seq=seq & 0xFFFFFFFF,
            ack=ack & 0xFFFFFFFF, window=window, options=options or [])
    p = e / l3 / t
    if payload:
        p = p / Raw(bytes(payload))
    return bytes(p)


SYN_OPTS = [("MSS", 1460), ("SAckOK", b""), ("WScale", 7), ("NOP", None),
            ("NOP", None)]


class TcpFlow:
    """Both directions of one TCP connection.

    init: the initiator (VM) side, packets towards the target;
    targ: the target side, replies towards the initiator (as seen where
    the test injects them, e.g. on the uplink before reverse NAT).
    isn_i / isn_t: initial sequence numbers; the first payload byte of each
    direction has sequence isn + 1 (the SYN takes one).

    Every packet method returns (direction, frame) with direction "i2t" or
    "t2i", so a list of them can be fed in order.
    """

    def __init__(self, init, targ, isn_i=0x10000000, isn_t=0x20000000):
        self.ep = {"i2t": init, "t2i": targ}
        self.isn = {"i2t": isn_i, "t2i": isn_t}
        # next sequence number each side sends = isn + 1 + stream offset
        self.sent = {"i2t": 0, "t2i": 0}
        self.ip_id = {"i2t": 1, "t2i": 1}

    def seq_of(self, d, offset):
        """Sequence number of stream byte `offset` of direction d."""
        return (self.isn[d] + 1 + offset) & 0xFFFFFFFF

    def _other(self, d):
        return "t2i" if d == "i2t" else "i2t"

    def _pkt(self, d, seq, flags, payload=b"", options=None):
        o = self._other(d)
        ack = self.seq_of(o, self.sent[o]) if "A" in flags else 0
        self.ip_id[d] += 1
        return (d, tcp_packet(self.ep[d], seq, ack, flags, payload,
                              options=options, ip_id=self.ip_id[d]))

    def syn(self):
        return self._pkt("i2t", self.isn["i2t"], "S", options=SYN_OPTS)

    def synack(self):
        return self._pkt("t2i", self.isn["t2i"], "SA", options=SYN_OPTS)

    def ack(self, d="i2t"):
        return self._pkt(d, self.seq_of(d, self.sent[d]), "A")

    def handshake(self):
        return [self.syn(), self.synack(), self.ack("i2t")]

    def segment(self, d, offset, payload, flags="PA"):
        """One data segment of direction d carrying stream bytes
        [offset, offset + len(payload)).  Advances the direction's "sent"
        mark (used for ACK numbers of the other side) when it moves on."""
        pkt = self._pkt(d, self.seq_of(d, offset), flags, payload)
        self.sent[d] = max(self.sent[d], offset + len(payload))
        return pkt

    def segments(self, d, segs, base=0, skip=()):
        """Packets for [(offset, payload)] of direction d; stream offsets
        are relative to `base` (where this batch starts in the direction's
        stream).  Indices in `skip` are left out (lost segments), but the
        stream position still moves past them."""
        out = []
        for i, (o, b) in enumerate(segs):
            if i in skip:
                self.sent[d] = max(self.sent[d], base + o + len(b))
                continue
            out.append(self.segment(d, base + o, b))
        return out

    def send(self, d, segs, skip=()):
        """Like segments(), appending at the direction's current end."""
        return self.segments(d, segs, base=self.sent[d], skip=skip)

    def fin(self, d="i2t"):
        return self._pkt(d, self.seq_of(d, self.sent[d]), "FA")


def write_pcap(path, frames):
    """Write frames (bytes, or (direction, bytes)) to a pcap file."""
    from scapy.utils import wrpcap
    pk = [Ether(f[1] if isinstance(f, tuple) else f) for f in frames]
    wrpcap(path, pk)


# ---------------------------------------------------------------------------
# Self test
# ---------------------------------------------------------------------------

def _selftest():
    fails = []

    def ok(cond, what):
        print("%sok %d - %s" % ("" if cond else "not ", len(_n) + 1, what))
        _n.append(1)
        if not cond:
            fails.append(what)
    _n = []
    # RFC 3720 B.4 / iSCSI CRC32C vectors.
    ok(crc32c(b"123456789") == 0xE3069283, "crc32c('123456789')")
    ok(crc32c(bytes(32)) == 0x8A9136AA, "crc32c(32 x 00)")
    ok(crc32c(b"\xff" * 32) == 0x62A8AB43, "crc32c(32 x ff)")
    ok(crc32c(bytes(range(32))) == 0x46DD794E, "crc32c(00..1f)")
    ok(crc32c(b"6789", crc32c(b"12345")) == 0xE3069283, "crc32c running")
    # Sizes and plen.
    c = read_cmd(5, nsid=1, slba=0x123456789, nlb=7)
    ok(len(c) == 72 and header_fields(c)["plen"] == 72 and c[3] == 0,
       "read capsule: 72 bytes, plen 72, pdo 0")
    f = header_fields(c)
    ok((f["opcode"], f["cid"], f["nsid"], f["slba"], f["nlb0"])
       == (2, 5, 1, 0x123456789, 7), "read capsule fields")
    c = write_cmd(6, data=b"x" * 512, hdgst=True, ddgst=True)
    ok(len(c) == 72 + 4 + 512 + 4 and header_fields(c)["plen"] == len(c)
       and c[1] == 3 and c[3] == 76, "write with digests: plen, flags, pdo")
    ok(c[72:76] == digest(c[:72]) and c[-4:] == digest(b"x" * 512),
       "digests at the right places")
    cc = connect_cmd(1, qid=3)
    f = header_fields(cc)
    ok(len(cc) == 72 + 1024 and f["opcode"] == 0x7F and f["fctype"] == 1
       and f["qid"] == 3 and cc[3] == 72, "connect: 1096 bytes, qid 3")
    r = capsule_resp(9, status=status_word(0, 2))
    ok(len(r) == 24 and header_fields(r)["cid"] == 9
       and header_fields(r)["status"] == 4, "response cid/status")
    ok(len(icreq()) == 128 and len(icresp()) == 128, "icreq/icresp 128")
    pd = [icreq(), connect_cmd(1, 0), read_cmd(2), c, capsule_resp(2)]
    ok(walk(concat(pd)) == pd, "walk(concat) round trip")
    segs = cut_pdus_at(pd, [None, 5, 71, 1, 3])
    ok(concat(b for _, b in segs) == concat(pd) and len(segs) == 5,
       "cut_pdus_at keeps the stream")
    sf = superframes(pd * 100, 65536)
    ok(all(len(b) <= 65536 for _, b in sf)
       and concat(b for _, b in sf) == concat(pd * 100),
       "superframes <= 64 KiB, stream intact")
    ps = per_segment(pd, [1, 2])
    ok([len(walk(b)) for _, b in ps] == [1, 2, 2], "per_segment counts")
    # Packets: sequence numbers.
    ini = Endpoint("52:54:00:00:01:01", "10.0.0.2", 40000,
                   "02:00:00:00:0a:01", "192.168.100.10", 4420)
    tgt = Endpoint("02:fa:b0:00:00:01", "10.3.1.2", 4421,
                   "02:00:00:00:00:99", "10.0.0.2", 40000)
    fl = TcpFlow(ini, tgt, isn_i=0xFFFFFF00)
    frames = fl.handshake()
    frames += fl.send("i2t", cut_pdus_at(pd[:4], [None, 8, 30, 71]))
    frames += fl.send("t2i", per_segment([icresp(), capsule_resp(1),
                                          capsule_resp(2)], 1))
    seqs = [TCP(Ether(f)[TCP].build()).seq for d, f in frames if d == "i2t"]
    ok(seqs[0] == 0xFFFFFF00 and seqs[1] == 0xFFFFFF01
       and seqs[2] == 0xFFFFFF01, "seq: SYN isn, data isn+1 (wraps)")
    # Wireshark's dissector as an independent reader (with its digest
    # checks on): both directions, digests on, headers split.
    if shutil.which("tshark"):
        t4420 = Endpoint("02:fa:b0:00:00:01", "10.3.1.2", 4420,
                         "02:00:00:00:00:99", "10.0.0.2", 40000)
        fl2 = TcpFlow(ini, t4420)
        frames2 = fl2.handshake()
        dg = dict(hdgst=True, ddgst=True)
        s = [icreq(hdgst_enable=True, ddgst_enable=True), connect_cmd(1, 2, **dg),
             read_cmd(0x21, 1, 0x1000, 7, **dg),
             write_cmd(0x22, 1, 0x2000, 0, data=bytes(range(256)) * 2, **dg),
             read_cmd(0x23, 1, 0x3000, 15, **dg)]
        frames2 += fl2.send("i2t", cut_pdus_at(s, [None, 40, 9, 50, 3]))
        frames2 += fl2.send("t2i", per_segment(
            [icresp(hdgst_enable=True, ddgst_enable=True),
             capsule_resp(1, **dg), capsule_resp(0x21, **dg),
             capsule_resp(0x22, status_word(0, 0x80), **dg),
             capsule_resp(0x23, **dg)], [1, 2, 2]))
        with tempfile.TemporaryDirectory() as d:
            pc = os.path.join(d, "s.pcap")
            write_pcap(pc, frames2)
            fields = ["nvme-tcp.type", "nvme-tcp.plen", "nvme.cmd.opc",
                      "nvme.cmd.cid", "nvme.cmd.slba", "nvme.cmd.nlb",
                      "nvme.fabrics.cmd.connect.qid", "nvme.cqe.cid",
                      "nvme.cqe.status.sc", "nvme-tcp.unknown_data",
                      "nvme-tcp.hdgst.status",
                      "nvme-tcp.ddgst.status"]
            cmd = ["tshark", "-n", "-r", pc, "-o",
                   "tcp.desegment_tcp_streams:TRUE",
                   "-o", "nvme-tcp.check_hdgst:TRUE",
                   "-o", "nvme-tcp.check_ddgst:TRUE",
                   "-d", "tcp.port==4420,nvme-tcp", "-T", "fields"]
            for x in fields:
                cmd += ["-e", x]
            cmd += ["-E", "occurrence=a", "-E", "aggregator=,"]
            r = subprocess.run(cmd, capture_output=True, text=True,
                               timeout=60)
            rows = [dict(zip(fields, x.split("\t")))
                    for x in r.stdout.splitlines() if x.split("\t")[0]]
            print("# tshark:\n# " + r.stdout.strip().replace("\n", "\n# "))
            col = lambda k: ",".join(x.get(k, "") for x in rows).split(",")
            ok(col("nvme-tcp.type") == ["0", "4", "4", "4", "4", "1", "5",
                                        "5", "5", "5"],
               "tshark: icreq, 4 capsules, icresp, 4 responses in order")
            ok([int(x, 16) for x in col("nvme.cmd.slba") if x] ==
               [0x1000, 0x2000, 0x3000] and
               [int(x) for x in col("nvme.cmd.nlb") if x] == [8, 1, 16],
               "tshark: SLBA and NLB of the I/O commands")
            ok([x for x in col("nvme.fabrics.cmd.connect.qid") if x] == ["2"],
               "tshark: Connect qid 2")
            # Wireshark decodes a CQE only when it tracked the command on
            # its idea of the queue; otherwise it shows the 16 CQE bytes
            # as unknown data: CID and status are its last 4 bytes.
            cids = [int(x, 16) for x in col("nvme.cqe.cid") if x]
            if not cids:
                cids = [struct.unpack("<HH", bytes.fromhex(x[-8:]))
                        for x in col("nvme-tcp.unknown_data") if x]
            ok(cids in ([1, 0x21, 0x22, 0x23],
                        [(1, 0), (0x21, 0), (0x22, 0x100), (0x23, 0)]),
               "tshark: response CIDs (and status 0x80 << 1)")
            hs = [x for x in col("nvme-tcp.hdgst.status") if x]
            ds = [x for x in col("nvme-tcp.ddgst.status") if x]
            ok(len(hs) == 8 and set(hs) == {"1"} and len(ds) >= 2
               and set(ds) == {"1"},
               "tshark: header/data digests verified good (%d/%d)"
               % (len(hs), len(ds)))
    else:
        print("# tshark not installed: dissector cross-check skipped")
    print("1..%d" % len(_n))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(_selftest())
