#!/usr/bin/python3
"""Self-tests for pktlib: run as  /usr/bin/python3 tests/pkt/test_pktlib.py

Checks the oracle against things that do not share its code: scapy's own
checksums and its contrib RoCE ICRC, an rxe-style bitwise CRC written here,
offsets printed by a C compiler, and (as root, with clang) a real
BPF_PROG_TEST_RUN inside a private mount namespace.
Set VSN_PKTLIB_NO_BPF=1 to skip the BPF part.
"""

import ctypes
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import traceback
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pktlib as P  # noqa: E402

SMAC, DMAC = "02:00:00:00:00:01", "02:00:00:00:00:02"
A4, B4 = "10.1.2.3", "10.9.8.7"
A6, B6 = "fd00::1:2", "fd00:9::8:7"

TESTS = []


class Skip(Exception):
    pass


def test(fn):
    TESTS.append(fn)
    return fn


def flip(pkt, byte, bit):
    b = bytearray(pkt)
    b[byte] ^= 1 << bit
    return bytes(b)


def setb(pkt, off, val):
    b = bytearray(pkt)
    b[off:off + len(val)] = val
    return bytes(b)


def all_builders():
    """(name, pkt) for every builder x family x vlan, odd payloads too."""
    out = []
    for vlan in (None, 100, (4094, 7)):
        for pl in (b"", b"x", b"\x01" * 63, bytes(range(256)) * 5):
            out += [
                ("tcp4", P.nvme_tcp_v4(SMAC, DMAC, A4, B4, 40000, payload=pl,
                                       vlan=vlan, tos=0xB8)),
                ("tcp6", P.nvme_tcp_v6(SMAC, DMAC, A6, B6, 40000, payload=pl,
                                       vlan=vlan, tc=0xB8, fl=0x12345)),
                ("udp4", P.udp_v4(SMAC, DMAC, A4, B4, 1, 2, pl, vlan=vlan)),
                ("udp6", P.udp_v6(SMAC, DMAC, A6, B6, 1, 2, pl, vlan=vlan)),
                ("roce4", P.roce_v4(SMAC, DMAC, A4, B4, 50000, payload=pl,
                                    vlan=vlan, tos=0x62)),
                ("roce6", P.roce_v6(SMAC, DMAC, A6, B6, 50000, payload=pl,
                                    vlan=vlan, tc=0x62, fl=0xABCDE)),
            ]
    return out


# --- checksums ---------------------------------------------------------------

@test
def ones_sum_matches_scapy():
    from scapy.utils import checksum
    rnd = random.Random(1)
    for n in list(range(0, 70)) + [1499, 1500, 9000]:
        data = bytes(rnd.getrandbits(8) for _ in range(n))
        assert P.csum(data) == checksum(data), n


@test
def builders_have_valid_checksums():
    for name, pkt in all_builders():
        if name.endswith("4"):
            assert P.ipv4_csum_ok(pkt), name
        assert P.l4_csum_ok(pkt), name


@test
def ipv4_header_bitflips_detected():
    pkt = P.nvme_tcp_v4(SMAC, DMAC, A4, B4, 40000, payload=b"abc")
    for byte in range(14 + 1, 14 + 20):
        for bit in range(8):
            assert not P.ipv4_csum_ok(flip(pkt, byte, bit)), (byte, bit)


@test
def l4_bitflips_detected():
    for name, pkt in (
            ("tcp4", P.nvme_tcp_v4(SMAC, DMAC, A4, B4, 40000,
                                   payload=b"abcde")),
            ("tcp6v", P.nvme_tcp_v6(SMAC, DMAC, A6, B6, 40000, payload=b"abc",
                                    vlan=5)),
            ("udp4", P.udp_v4(SMAC, DMAC, A4, B4, 7, 9, b"hello")),
            ("udp6", P.udp_v6(SMAC, DMAC, A6, B6, 7, 9, b"hello"))):
        p = P.parse(pkt)
        l3, l4 = p["offsets"]["l3"], p["offsets"]["l4"]
        v4 = p["ip"]["version"] == 4
        addr = range(l3 + 12, l3 + 20) if v4 else range(l3 + 8, l3 + 40)
        # Not the UDP length: it also moves the payload boundary.
        body = [i for i in range(l4, len(pkt))
                if not (name.startswith("udp") and i in (l4 + 4, l4 + 5))]
        for byte in list(addr) + body:
            for bit in range(8):
                bad = flip(pkt, byte, bit)
                try:
                    ok = P.l4_csum_ok(bad)
                except P.MalformedPacket:
                    ok = False
                assert not ok, (name, byte, bit)


@test
def udp_zero_checksum():
    u4 = P.udp_v4(SMAC, DMAC, A4, B4, 7, 9, b"hello", udp_csum=0)
    u6 = P.udp_v6(SMAC, DMAC, A6, B6, 7, 9, b"hello", udp_csum=0)
    assert P.parse(u4)["l4"]["csum"] == 0 and P.l4_csum_ok(u4)
    assert P.parse(u6)["l4"]["csum"] == 0 and not P.l4_csum_ok(u6)
    r4 = P.roce_v4(SMAC, DMAC, A4, B4, 50000, udp_csum=0)
    assert P.l4_csum_ok(r4) and P.roce_icrc_ok(r4)


@test
def checksum_with_ethernet_padding():
    # A 54-byte SYN padded to the 60-byte minimum: padding is not summed.
    pkt = P.nvme_tcp_v4(SMAC, DMAC, A4, B4, 40000, flags="S") + b"\xaa" * 6
    assert P.ipv4_csum_ok(pkt) and P.l4_csum_ok(pkt)
    assert P.parse(pkt)["trailer"] == b"\xaa" * 6


# --- RoCEv2 ICRC -------------------------------------------------------------

def crc32_le_raw(crc, data):
    """Linux crc32_le(): reflected 0xedb88320, no pre/post inversion."""
    for x in data:
        crc ^= x
        for _ in range(8):
            crc = (crc >> 1) ^ (0xEDB88320 if crc & 1 else 0)
    return crc


def rxe_style_icrc(pkt):
    """Re-derivation following drivers/infiniband/sw/rxe/rxe_icrc.c:
    seed 0xdebb20e3, mangle the copied headers field by field, ~crc."""
    p = P.parse(pkt)
    l3, l4 = p["offsets"]["l3"], p["offsets"]["l4"]
    hdr = bytearray(pkt[l3:l4 + 8 + 12])          # ip + udp + bth
    n = l4 - l3
    if p["ip"]["version"] == 4:
        hdr[8] = 0xFF                              # ip4h->ttl
        hdr[10:12] = b"\xff\xff"                   # ip4h->check
        hdr[1] = 0xFF                              # ip4h->tos
    else:
        hdr[0] = (hdr[0] & 0xF0) | 0xF             # ip6h->priority = 0xf
        hdr[1:4] = b"\xff\xff\xff"                 # ip6h->flow_lbl
        hdr[7] = 0xFF                              # ip6h->hop_limit
    hdr[n + 6:n + 8] = b"\xff\xff"                 # udph->check
    qpn = struct.unpack_from("!I", hdr, n + 8 + 4)[0] | 0xFF000000
    struct.pack_into("!I", hdr, n + 8 + 4, qpn)    # bth->qpn |= ~QPN_MASK
    crc = crc32_le_raw(0xDEBB20E3, hdr)
    end = l4 + p["l4"]["len"] - 4
    crc = crc32_le_raw(crc, pkt[l4 + 20:end])
    return struct.pack("=I", ~crc & 0xFFFFFFFF)   # stored CPU order (x86)


@test
def rxe_seed_is_crc_of_masked_lrh():
    assert crc32_le_raw(0xFFFFFFFF, b"\xff" * 8) == 0xDEBB20E3
    assert zlib.crc32(b"\xff" * 8) == ~0xDEBB20E3 & 0xFFFFFFFF


@test
def icrc_matches_rxe_style_derivation():
    assert sys.byteorder == "little"
    for name, pkt in all_builders():
        if name.startswith("roce"):
            assert pkt[-4:] == rxe_style_icrc(pkt), name
            assert P.roce_icrc_ok(pkt), name


@test
def roce_v4_matches_scapy_contrib_roce():
    # scapy.contrib.roce.BTH computes the ICRC itself (IPv4 only).
    from scapy.all import Ether, IP, UDP, Raw
    from scapy.contrib.roce import BTH
    for pl, tos, qp, psn, op in ((bytes(range(32)), 0, 0x11, 1, 4),
                                 (b"abcdefg", 0x62, 0xABCDEF, 0xFFFFFF, 10),
                                 (b"", 0x03, 1, 0, 17)):
        pad = (-len(pl)) % 4
        ref = bytes(Ether(src=SMAC, dst=DMAC)
                    / IP(src=A4, dst=B4, tos=tos, id=1)
                    / UDP(sport=50001, dport=4791)
                    / BTH(opcode=op, dqpn=qp, psn=psn, padcount=pad)
                    / Raw(pl + b"\0" * pad))
        mine = P.roce_v4(SMAC, DMAC, A4, B4, 50001, bth_opcode=op,
                         dest_qp=qp, psn=psn, payload=pl, tos=tos)
        assert mine == ref, (mine.hex(), ref.hex())


def _icrc_bad(pkt):
    try:
        return not P.roce_icrc_ok(pkt)
    except P.MalformedPacket:
        return True


@test
def icrc_detects_covered_bitflips():
    for fam, pkt in (("v4", P.roce_v4(SMAC, DMAC, A4, B4, 50000, vlan=3)),
                     ("v6", P.roce_v6(SMAC, DMAC, A6, B6, 50000))):
        p = P.parse(pkt)
        l3, l4 = p["offsets"]["l3"], p["offsets"]["l4"]
        if fam == "v4":
            covered = list(range(l3 + 12, l3 + 20))       # addresses
            covered += list(range(l3 + 4, l3 + 8))        # id, flags/frag
        else:
            covered = list(range(l3 + 8, l3 + 40))
        covered += list(range(l4, l4 + 4))                # ports
        covered += [i for i in range(l4 + 8, l4 + 20) if i != l4 + 8 + 4]
        covered += list(range(l4 + 20, len(pkt)))         # payload + ICRC
        for byte in covered:
            for bit in range(8):
                assert _icrc_bad(flip(pkt, byte, bit)), (fam, byte, bit)


@test
def icrc_ignores_masked_fields():
    rnd = random.Random(2)
    p4 = P.roce_v4(SMAC, DMAC, A4, B4, 50000)
    l4 = 34
    for tos in range(256):
        assert P.roce_icrc_ok(setb(p4, 15, bytes([tos])))
    for ttl in (0, 1, 63, 255):
        assert P.roce_icrc_ok(setb(p4, 22, bytes([ttl])))
    for _ in range(20):
        assert P.roce_icrc_ok(setb(p4, 24, rnd.randbytes(2)))       # IP csum
        assert P.roce_icrc_ok(setb(p4, l4 + 6, rnd.randbytes(2)))   # UDP csum
    for b4 in (0x80, 0x40, 0xC0, 0x3F, 0xFF):                       # FECN/BECN
        assert P.roce_icrc_ok(setb(p4, l4 + 12, bytes([b4])))
    # Builders with the masked fields set agree with the default build.
    base = P.roce_v6(SMAC, DMAC, A6, B6, 50000)
    for tc in range(256):
        for fl in (0, 1, 0x12345, 0xFFFFF):
            pkt = P.roce_v6(SMAC, DMAC, A6, B6, 50000, tc=tc, fl=fl, hlim=tc)
            assert P.roce_icrc_ok(pkt) and pkt[-4:] == base[-4:], (tc, fl)
    for tos in range(256):
        pkt = P.roce_v4(SMAC, DMAC, A4, B4, 50000, tos=tos, ttl=tos or 1,
                        udp_csum=0)
        assert pkt[-4:] == p4[-4:]


@test
def icrc_independent_of_vlan_and_padding():
    a = P.roce_v4(SMAC, DMAC, A4, B4, 50000)
    b = P.roce_v4(SMAC, DMAC, A4, B4, 50000, vlan=(42, 3))
    assert a[-4:] == b[-4:]
    # Trailing Ethernet padding is outside the UDP length.
    r = P.roce_v4(SMAC, DMAC, A4, B4, 50000, payload=b"") + b"\0" * 2
    assert P.roce_icrc_ok(r) and len(r) == 60


# --- parse -------------------------------------------------------------------

@test
def parse_tcp4_fields():
    pkt = P.nvme_tcp_v4(SMAC, DMAC, A4, B4, 40001, flags="S", seq=7, ack=0,
                        vlan=(300, 5), tos=0xB9, ttl=17, payload=b"")
    p = P.parse(pkt)
    assert p["eth"] == dict(dst=DMAC, src=SMAC, vlan=300, pcp=5,
                            ethertype=0x0800, stacked_vlan=False)
    ip = p["ip"]
    assert (ip["version"], ip["src"], ip["dst"], ip["tos"], ip["dscp"],
            ip["ecn"], ip["ttl"], ip["proto"], ip["total_len"]) == \
        (4, A4, B4, 0xB9, 0x2E, 1, 17, 6, 40)
    l4 = p["l4"]
    assert (l4["sport"], l4["dport"], l4["seq"], l4["ack"], l4["flags"]) == \
        (40001, 4420, 7, 0, "S")
    assert p["payload"] == b""
    for fl in ("PA", "FA", "R", "SA", "FSRPAUEC"):
        pkt = P.nvme_tcp_v4(SMAC, DMAC, A4, B4, 1, flags=fl, payload=b"z")
        assert P.parse(pkt)["l4"]["flags"] == fl, fl


@test
def parse_tcp6_fields():
    pkt = P.nvme_tcp_v6(SMAC, DMAC, A6, B6, 40001, payload=b"capsule",
                        tc=0x2A, fl=0xFEDCB, hlim=3, seq=2**32 - 1, ack=5)
    p = P.parse(pkt)
    ip, l4 = p["ip"], p["l4"]
    assert (ip["version"], ip["src"], ip["dst"], ip["tc"], ip["flow_label"],
            ip["hlim"], ip["proto"], ip["payload_len"]) == \
        (6, A6, B6, 0x2A, 0xFEDCB, 3, 6, 20 + 7)
    assert (l4["seq"], l4["ack"], l4["flags"]) == (2**32 - 1, 5, "PA")
    assert p["payload"] == b"capsule" and p["eth"]["vlan"] is None


@test
def parse_roce_fields():
    pkt = P.roce_v6(SMAC, DMAC, A6, B6, 50123, bth_opcode=0x0A,
                    dest_qp=0x123456, psn=0xABCDEF, payload=b"12345",
                    vlan=9, ackreq=1, becn=1)
    p = P.parse(pkt)
    assert p["l4"]["dport"] == 4791 and p["l4"]["len"] == 8 + 12 + 8 + 4
    r = p["roce"]
    assert (r["opcode"], r["dest_qp"], r["psn"], r["padcnt"], r["ackreq"],
            r["becn"], r["fecn"], r["payload"]) == \
        (0x0A, 0x123456, 0xABCDEF, 3, 1, 1, 0, b"12345")
    assert r["icrc"] == P.roce_icrc(pkt)


@test
def parse_plain_kinds():
    for kind in ("tcp", "udp", "icmp", "arp", "lldp"):
        for a, b in ((A4, B4), (A6, B6)):
            if kind == "arp" and ":" in a:
                continue
            p = P.parse(P.plain(SMAC, DMAC, kind, a, b, vlan=7))
            if kind in ("arp", "lldp"):
                assert p["ip"] is None
            else:
                assert p["ip"]["src"] == a
            if p["l4"] and "dport" in p["l4"]:
                assert p["l4"]["dport"] not in (4420, 4791)


# --- malformed shapes --------------------------------------------------------

REQUIRED = [
    "eth_only_ipv4", "ipv4_truncated_header", "ipv4_ihl_4",
    "ipv4_ihl_past_end", "ipv4_totlen_gt_frame", "ipv4_totlen_lt_ihl",
    "ipv4_version6_in_0800", "ipv4_frag_first_mf", "ipv4_frag_nonfirst",
    "tcp_header_truncated", "tcp_doff_4", "tcp_doff_past_end",
    "udp_header_truncated", "udp_len_gt_frame", "udp_len_lt_8",
    "ipv6_truncated_header", "ipv6_payload_len_gt_frame", "ipv6_hopbyhop_hdr",
    "ipv6_fragment_hdr", "ipv6_routing_hdr", "vlan_tag_truncated",
    "qinq_88a8_8100", "ipv4_options_ihl6", "empty_frame", "runt_13_bytes",
    "roce_bth_truncated"]


@test
def malformed_shapes_complete_and_really_malformed():
    shapes = P.malformed_shapes(saddr=A4, daddr=B4, saddr6=A6, daddr6=B6)
    names = [n for n, _ in shapes]
    assert len(shapes) >= 24 and len(set(names)) == len(names)
    missing = set(REQUIRED) - set(names)
    assert not missing, missing
    too_short_for_l4 = {"eth_only_ipv4", "eth_only_ipv6", "empty_frame",
                        "runt_13_bytes", "vlan_tag_truncated",
                        "ipv4_truncated_header", "ipv6_truncated_header"}
    for name, pkt in shapes:
        assert isinstance(pkt, bytes), name
        if name not in too_short_for_l4:
            assert b"\x11\x44" in pkt or b"\x12\xb7" in pkt, name   # 4420/4791
        # Either our parser rejects it, or it carries a feature the datapath
        # treats as unsupported.
        try:
            p = P.parse(pkt)
        except P.MalformedPacket:
            continue
        ip = p["ip"]
        unsupported = (p["eth"]["stacked_vlan"] or ip is None
                       or ip["ext_headers"] or ip.get("mf")
                       or ip.get("frag_offset") or ip.get("ihl", 5) != 5)
        assert unsupported, name
    # The complete IPv4 headers keep a valid checksum (single defect).
    for name, pkt in shapes:
        if name.startswith(("ipv4_ihl", "ipv4_tot", "ipv4_frag", "tcp_")):
            hl = 24 if name == "ipv4_options_ihl6" else 20
            assert P.ones_sum(pkt[14:14 + hl]) == 0xFFFF, name
    assert len(P.malformed_shapes(include_options=False)) == len(shapes) - 1


# --- contexts ----------------------------------------------------------------

@test
def ctx_layouts_match_c_compiler():
    assert len(P.skb_ctx(3)) == 192 and len(P.xdp_ctx(3)) == 24
    cc = shutil.which("gcc") or shutil.which("cc")
    if not cc:
        raise Skip("no C compiler")
    src = r"""
#include <stdio.h>
#include <stddef.h>
#include <linux/bpf.h>
#define S(f) printf("%s %zu\n", #f, offsetof(struct __sk_buff, f));
int main(void) {
  S(mark) S(priority) S(ingress_ifindex) S(ifindex) S(cb) S(tstamp)
  S(wire_len) S(gso_segs) S(gso_size) S(hwtstamp)
  printf("skb_size %zu\nxdp_size %zu\n", sizeof(struct __sk_buff),
         sizeof(struct xdp_md));
  printf("xdp_data_end %zu\n", offsetof(struct xdp_md, data_end));
  return 0; }
"""
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, "o.c"), "w") as f:
            f.write(src)
        subprocess.run([cc, "-o", os.path.join(d, "o"),
                        os.path.join(d, "o.c")], check=True)
        out = subprocess.run([os.path.join(d, "o")], check=True,
                             capture_output=True, text=True).stdout
    got = dict((k, int(v)) for k, v in (ln.split() for ln in out.splitlines()))
    for k, v in P._SKB_OFF.items():
        assert got[k] == v, (k, got[k], v)
    assert got["skb_size"] == P.SKB_CTX_SIZE
    assert got["xdp_size"] == P.XDP_CTX_SIZE
    assert got["xdp_data_end"] == P._XDP_DATA_END
    c = P.skb_ctx(5, mark=9, priority=2, cb=[1, 2], wire_len=100)
    f = P.skb_ctx_fields(c)
    assert (f["ifindex"], f["ingress_ifindex"], f["mark"], f["priority"],
            f["cb"], f["wire_len"]) == (5, 5, 9, 2, [1, 2, 0, 0, 0], 100)
    assert struct.unpack("=6I", P.xdp_ctx(4, 2)) == (0, 0, 0, 4, 2, 0)


# --- real BPF_PROG_TEST_RUN --------------------------------------------------

BPF_SRC = r"""
#include <linux/bpf.h>
#define SEC(n) __attribute__((section(n), used))
static long (*adjust_head)(void *, int) = (void *)BPF_FUNC_xdp_adjust_head;
SEC("tc") int t_tc(struct __sk_buff *skb)
{
	void *d = (void *)(long)skb->data, *e = (void *)(long)skb->data_end;
	if (d + 1 <= e)
		*(unsigned char *)d ^= 0xff;
	skb->mark = skb->mark + 1;
	skb->cb[0] = skb->ifindex;
	skb->cb[1] = skb->ingress_ifindex;
	skb->cb[2] = skb->len;
	return 7;
}
SEC("xdp") int t_xdp(struct xdp_md *x)
{
	return (x->data_end - x->data) + 1000 * x->ingress_ifindex;
}
SEC("xdp") int t_grow(struct xdp_md *x)
{
	void *d, *e;
	if (adjust_head(x, -4))
		return 0;
	d = (void *)(long)x->data; e = (void *)(long)x->data_end;
	if (d + 4 > e)
		return 0;
	*(unsigned int *)d = 0x78563412;
	return 2;
}
char _l[] SEC("license") = "GPL";
"""


def _private_bpffs(d):
    """Mount a bpffs visible only to this process (and its children)."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    if libc.unshare(0x00020000) != 0:                  # CLONE_NEWNS
        raise Skip("unshare(CLONE_NEWNS) failed")
    subprocess.run(["mount", "--make-rprivate", "/"], check=True)
    subprocess.run(["mount", "-t", "bpf", "bpf", d], check=True)


@test
def prog_run_against_kernel():
    if os.environ.get("VSN_PKTLIB_NO_BPF"):
        raise Skip("VSN_PKTLIB_NO_BPF set")
    if os.geteuid() != 0 or not shutil.which("clang") \
            or not shutil.which("bpftool"):
        raise Skip("needs root, clang and bpftool")
    with tempfile.TemporaryDirectory(prefix="vsn-pktlib-") as d:
        fs = os.path.join(d, "fs")
        os.mkdir(fs)
        src, obj = os.path.join(d, "t.c"), os.path.join(d, "t.o")
        with open(src, "w") as f:
            f.write(BPF_SRC)
        arch = "/usr/include/%s-linux-gnu" % os.uname().machine
        subprocess.run(["clang", "-O2", "-target", "bpf", "-I", arch, "-c",
                        src, "-o", obj], check=True)
        _private_bpffs(fs)
        try:
            subprocess.run(["bpftool", "prog", "loadall", obj,
                            os.path.join(fs, "p")], check=True)
            tc, xdp, grow = (os.path.join(fs, "p", n)
                             for n in ("t_tc", "t_xdp", "t_grow"))
            pkt = P.nvme_tcp_v4(SMAC, DMAC, A4, B4, 40000, payload=b"x" * 30)

            rv, out, dur, ctx = P.prog_run(tc, pkt)
            assert rv == 7 and ctx is None and isinstance(dur, int)
            assert out == bytes([pkt[0] ^ 0xFF]) + pkt[1:]

            rv, out, dur, ctx = P.prog_run(tc, pkt, ctx=P.skb_ctx(1, mark=41))
            f = P.skb_ctx_fields(ctx)
            assert rv == 7 and f["mark"] == 42, f
            assert f["cb"][:3] == [1, 1, len(pkt)], f
            # repeat reuses one skb: each run sees the previous run's output.
            rv, out, dur, ctx = P.prog_run(tc, pkt, ctx=P.skb_ctx(1, mark=41),
                                           repeat=5)
            assert P.skb_ctx_fields(ctx)["mark"] == 46
            assert out == bytes([pkt[0] ^ 0xFF]) + pkt[1:]

            rv, out, _, ctx = P.prog_run(xdp, pkt, ctx=P.xdp_ctx(1))
            assert rv == len(pkt) + 1000 and out == pkt, rv
            assert struct.unpack("=6I", ctx)[1] == len(pkt)

            rv, out, _, _ = P.prog_run(grow, pkt)
            assert rv == 2 and out == b"\x12\x34\x56\x78" + pkt, out[:8]

            # Which malformed shapes the kernel refuses, per hook.
            for name, shape in P.malformed_shapes():
                for hook, prog in (("tc", tc), ("xdp", xdp)):
                    try:
                        out = P.prog_run(prog, shape)[1]
                    except P.ProgRunError as e:
                        assert name in P.TEST_RUN_EINVAL[hook], (name, hook)
                        assert "Invalid argument" in e.error, e.error
                    else:
                        assert name not in P.TEST_RUN_EINVAL[hook], \
                            (name, hook)
                        assert out[1:] == shape[1:], (name, hook)
            try:
                P.prog_run(tc, pkt, ctx=P.skb_ctx(999999))
            except P.ProgRunError as e:
                assert "No such device" in e.error, e.error
            else:
                assert False, "unknown ifindex accepted"
        finally:
            subprocess.run(["umount", fs])


def main():
    """TAP lines, as tests/run.sh counts them."""
    passed = failed = skipped = 0
    for n, fn in enumerate(TESTS, 1):
        name = fn.__name__.replace("_", " ")
        try:
            fn()
        except Skip as e:
            skipped += 1
            print("ok %d - %s # SKIP %s" % (n, name, e))
        except Exception:
            failed += 1
            print("not ok %d - %s" % (n, name))
            for line in traceback.format_exc().splitlines():
                print("#   " + line)
        else:
            passed += 1
            print("ok %d - %s" % (n, name))
    print("1..%d" % len(TESTS))
    extra = ", %d skipped" % skipped if skipped else ""
    print("# %d passed, %d failed%s" % (passed, failed, extra))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
