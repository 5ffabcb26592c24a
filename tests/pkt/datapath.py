#!/usr/bin/python3
"""The harness of the datapath's packet tests (tests/pkt/test_dp_*.py):
BPF_PROG_TEST_RUN on vsn's pinned programs.  Each test file runs its
cases with run_cases(CASES); every file builds its own topology.

Builds a private topology (netns vsnp-hv holding vmif, vmif6, up0, up1, upt; their
veth peers in vsnp-peer), attaches vsn there (upt with --xdp-mode tc, for the
TC reply program) with its maps and programs pinned
under /sys/fs/bpf/vsnp, applies a config written here, and feeds crafted
frames to the pinned programs (vsn_vm_ingress, vsn_up_xdp, vsn_up_ingress,
vsn_up_egress).  Outputs are checked field by field with pktlib.parse, with
pktlib's own checksum/ICRC verifiers (which share no code with the BPF side),
and byte for byte against an expected frame built independently with scapy.
Counters are checked as exact deltas of `vsn -j show counters`: the expected
entries moved by exactly the expected amount and nothing else moved.

Prints "ok N - ..." / "not ok N - ..." lines; diagnostics start with "# ".
Exits non-zero if anything failed.  Everything created is removed on exit.
"""

import json
import os
import socket
import struct
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import pktlib as P  # noqa: E402
from harness import Tap, apply_config, note, remove_env, reply_tc, require_pinned, sh, \
    suite_start, veth_topology  # noqa: E402
from scapy.layers.inet import IP, TCP  # noqa: E402
from scapy.layers.inet6 import (IPv6, ICMPv6ND_NS,  # noqa: E402
                                ICMPv6NDOptSrcLLAddr)
from scapy.layers.l2 import Dot1Q, Ether  # noqa: E402
from scapy.packet import Raw  # noqa: E402

PFX = "vsnp"
NS_HV, NS_PEER = PFX + "-hv", PFX + "-peer"
PIN = "/sys/fs/bpf/" + PFX
VSN = os.path.join(ROOT, "build", "vsn")
PROG = {n: os.path.join(PIN, n) for n in
        ("vsn_vm_ingress", "vsn_up_xdp", "vsn_up_ingress", "vsn_up_xfer",
         "vsn_up_egress")}

TC_ACT_OK, TC_ACT_SHOT, TC_ACT_REDIRECT = 0, 2, 7
XDP_PASS, XDP_REDIRECT = 2, 4

# --- addressing --------------------------------------------------------------
VM1_MAC, VM2_MAC = "52:54:00:00:01:01", "52:54:00:00:02:01"
GW_MAC = "02:00:00:00:0a:01"      # what the VMs send to (their gateway)
FAB_MAC = "02:fa:b0:00:00:01"     # the fabric router, source of replies
VM1, VM2, VM1_6 = "10.0.0.2", "10.0.6.2", "2001:db8::2"
VIP, VIP6 = "192.168.100.10", "2001:db8:100::10"
BE = {1: "10.3.1.2", 2: "10.3.2.2", 3: "2001:db8:3:1::2",
      4: "2001:db8:3:2::2", 5: "10.4.0.5", 6: "2001:db8:4::5", 7: "10.5.0.7"}
BE_PORT = 4421                    # NVMe/TCP backends listen here: port NAT
SNAT4, SNAT6 = "10.9.2.1", "2001:db8:9:2::1"
ROCE4, ROCE6 = BE[5], BE[6]
HOST_ADDR = "10.1.0.1"


def pmac(i, kind):
    """Static MACs of path i: kind 'a' = source, 'b' = next hop."""
    return "02:00:00:00:%s%x:%02x" % (kind, i, i)


# Path options (mirrors the YAML below; the tests derive expectations here).
PATHS = {
    1: dict(uplink="up0"),
    2: dict(uplink="up1"),
    3: dict(uplink="up0", dscp=26, ecn=1),
    4: dict(uplink="up0", flow_label=0x12345),
    5: dict(uplink="up1", ttl=17),
    6: dict(uplink="up1", source_address=SNAT4),
    7: dict(uplink="up0", vlan=100),
    8: dict(uplink="up0", dscp=46, ttl=5, vlan=200),
    9: dict(uplink="up1", source_address=SNAT6),
    10: dict(uplink="up0", dscp=10, flow_label=0xABCDE, ttl=9, vlan=300),
    11: dict(uplink="up0", source_mac=None),   # source MAC = up0's own
}


def config_yaml(with_vm2):
    lines = ["vms:", "  - {name: vm1, id: 1, interface: vmif, addresses: [10.0.0.2, '2001:db8::2'],"
             " mac: '%s'}" % VM1_MAC]
    if with_vm2:
        lines.append("  - {name: vm2, id: 2, interface: vmif6, addresses: [10.0.6.2, '2001:db8:6::2', 10.77.0.0/16]}")
    lines += ["uplinks:", "  - {interface: up0, capacity: 10gbit}",
              "  - {interface: up1}", "paths:"]
    for i, p in PATHS.items():
        kv = ["id: %d" % i, "uplink: %s" % p["uplink"],
              'next_hop: "%s"' % ("02:00:00:00:bb:0b" if i == 11
                                  else pmac(i, "b"))]
        if "source_mac" not in p:
            kv.append('source_mac: "%s"' % pmac(i, "a"))
        for k in ("vlan", "dscp", "ecn", "ttl", "flow_label"):
            if k in p:
                kv.append("%s: %d" % (k, p[k]))
        if "source_address" in p:
            kv.append('source_address: "%s"' % p["source_address"])
        lines.append("  - {%s}" % ", ".join(kv))
    lines += [
        "backends:",
        '  - {id: 1, name: t1, address: %s, port: %d, paths: [1, 2, 3, 4, 5, 6, 7, 11]}'
        % (BE[1], BE_PORT),
        # Down at first: every new IPv4/IPv6 connection deterministically
        # lands on backend 1/3 until case 8 changes that.
        '  - {id: 2, name: t2, address: %s, port: %d, state: down, paths: [2, 1]}'
        % (BE[2], BE_PORT),
        '  - {id: 3, address: "%s", port: %d, paths: [1, 2, 3, 4, 5, 7, 9, 11]}'
        % (BE[3], BE_PORT),
        '  - {id: 4, address: "%s", port: %d, state: down, paths: [2]}'
        % (BE[4], BE_PORT),
        '  - {id: 5, address: %s, port: 4791, paths: [8]}' % BE[5],
        '  - {id: 6, address: "%s", port: 4791, paths: [10]}' % BE[6],
        '  - {id: 7, address: %s, port: 4420, paths: [2, 11]}' % BE[7],
        "volumes:",
        "  - {id: 1, vm: vm1, address: %s, port: 4420, backends: [1, 2]}" % VIP,
        '  - {id: 2, vm: vm1, address: "%s", port: 4420, backends: [3, 4]}' % VIP6,
        "  - {id: 3, vm: vm1, address: %s, protocol: roce, backends: [5]}" % ROCE4,
        '  - {id: 4, vm: vm1, address: "%s", protocol: roce, port: 4791, backends: [6]}'
        % ROCE6,
        "  - {id: 5, vm: host, address: %s, port: 4420, backends: [7]}" % BE[7],
    ]
    if with_vm2:
        lines.append("  - {id: 6, vm: vm2, address: %s, backends: [1]}" % VIP)
    lines.append("routes:")
    return "\n".join(lines) + "\n"


# --- TAP output --------------------------------------------------------------
T = Tap()


# --- environment -------------------------------------------------------------
def vsn(*args, check=True):
    """build/vsn inside vsnp-hv (interface names resolve there; nsenter keeps
    the mount namespace, so the pins stay visible)."""
    return sh(VSN, "--pin-dir", PIN, *args, check=check, ns=NS_HV)


def vsn_json(*args):
    return json.loads(vsn("-j", *args).stdout)


IFINDEX = {}
IFMAC = {}                        # interface name -> MAC, filled by setup()


def teardown():
    remove_env(VSN, PIN, NS_HV, (NS_HV, NS_PEER))


def setup():
    teardown()                          # stale state of an aborted run
    links = veth_topology(NS_HV, NS_PEER, (("vmif", "vm0"), ("vmif6", "vm6"), ("up0", "f0"),
                                           ("up1", "f1"), ("upt", "ft")))
    IFINDEX.update({n: i for n, (i, _) in links.items()})
    IFMAC["up0"] = links["up0"][1]
    vsn("attach", "--vm", "vmif,vmif6", "--uplink", "up0,up1")
    # attach loads the TC reply program only for --xdp-mode tc: a spare
    # uplink in that mode pins it too (same maps).
    vsn("attach", "--uplink", "upt", "--xdp-mode", "tc")
    reply_tc(PIN, (IFINDEX["vmif"], IFINDEX["vmif6"]), False)
    require_pinned(PROG.values())


def apply(text):
    apply_config(vsn, text, "vsnp-")


# --- state readers -----------------------------------------------------------
def counters():
    """Flat {(table, key): (packets, bytes)} from vsn -j show counters."""
    c = vsn_json("show", "counters")
    flat = {}
    for table in ("reasons", "paths", "backends", "vms"):
        for k, v in c[table].items():
            flat[(table, str(k))] = (v["packets"], v["bytes"])
    return flat


def delta(before, after):
    d = {}
    for k in set(before) | set(after):
        a, b = after.get(k, (0, 0)), before.get(k, (0, 0))
        if a != b:
            d[k] = (a[0] - b[0], a[1] - b[1])
    return d


def fwd_delta(n, path=None, be=None, vm=None, reason="forwarded"):
    """Expected counter delta of one packet of n bytes."""
    d = {("reasons", reason): (1, n)}
    if path is not None:
        d[("paths", str(path))] = (1, n)
    if be is not None:
        d[("backends", str(be))] = (1, n)
    if vm is not None:
        d[("vms", str(vm))] = (1, n)
    return d


def _addr(b):
    if b[:10] == bytes(10) and b[10:12] == b"\xff\xff":
        return socket.inet_ntop(socket.AF_INET, b[12:16])
    return socket.inet_ntop(socket.AF_INET6, b)


CONN_FLAGS = dict(dnat=1, snat=2, v6=4, host=8)


def conns_raw():
    """vsn_conns read with bpftool and decoded from the raw bytes (layout of
    struct vsn_conn_key / vsn_conn in include/vsn_types.h), independent of
    the vsn CLI.  {(dir, vm_id, saddr, sport, proto, daddr, dport): entry}"""
    r = sh("bpftool", "-j", "map", "dump", "pinned", PIN + "/vsn_conns")
    res = {}
    for e in json.loads(r.stdout):
        k = bytes(int(x, 16) for x in e["key"])
        v = bytes(int(x, 16) for x in e["value"])
        assert len(k) == 44 and len(v) == 248, (len(k), len(v))
        sport, dport, proto, d = struct.unpack_from("!HHBB", k, 32)
        vm_id = struct.unpack_from("=I", k, 40)[0]
        ent = dict(zip(("vm", "volume", "backend", "path_override", "flags",
                        "vm_ifindex"), struct.unpack_from("=6I", v, 0)))
        ent.update(vip=_addr(v[24:40]), vm_addr=_addr(v[40:56]),
                   backend_address=_addr(v[56:72]), snat=_addr(v[72:88]),
                   vip_port=struct.unpack_from("!H", v, 88)[0],
                   backend_port=struct.unpack_from("!H", v, 90)[0],
                   vm_mac=P._mac(v[92:98]), gw_mac=P._mac(v[98:104]),
                   last_path=struct.unpack_from("=I", v, 104)[0],
                   conn_id=struct.unpack_from("=I", v, 112)[0],
                   packets=struct.unpack_from("=Q", v, 136)[0],
                   bytes=struct.unpack_from("=Q", v, 144)[0])
        res[(d, vm_id, _addr(k[0:16]), sport, proto, _addr(k[16:32]),
             dport)] = ent
    return res


CLI_JSON = {"states": 0, "bad": []}


def cli_conns_check(raw):
    """Cross-check `vsn -j show connections` against the raw map: valid
    JSON, and one record per VM-side entry with the same backend/tx."""
    CLI_JSON["states"] += 1
    out = vsn("-j", "show", "connections").stdout
    try:
        cli = json.loads(out)
    except ValueError as e:
        CLI_JSON["bad"].append("invalid JSON (%s): %s" % (e, out[:120]))
        return
    want = sorted((k[1], k[2], k[3], v["backend"], v["packets"])
                  for k, v in raw.items() if k[0] == 0)
    got = sorted((c["vm"], c["src"], c["sport"], c["backend"],
                  c["tx_packets"]) for c in cli)
    if got != want:
        CLI_JSON["bad"].append("CLI %s != map %s" % (got, want))


def conn(vm, src, sport, proto="tcp"):
    """The VM-side connection entry (dir 0) of (vm, src, sport) plus tx/rx
    counts (rx from the fabric-side entry), or None."""
    raw = conns_raw()
    cli_conns_check(raw)
    pnum = 6 if proto == "tcp" else 17
    for k, v in raw.items():
        if k[0] != 0 or k[1] != vm or k[2] != canon(src) or k[3] != sport \
                or k[4] != pnum:
            continue
        c = dict(v, dst=k[5], dport=k[6], tx_packets=v["packets"],
                 tx_bytes=v["bytes"], rx_packets=0, rx_bytes=0)
        fab = c["snat"] if v["flags"] & CONN_FLAGS["snat"] else v["vm_addr"]
        r = raw.get((1, 0, v["backend_address"], v["backend_port"], pnum, fab,
                     sport))
        if r:
            c.update(rx_packets=r["packets"], rx_bytes=r["bytes"],
                     reverse=True)
        else:
            c["reverse"] = False
        return c
    return None


# --- packets -----------------------------------------------------------------
def canon(a):
    fam = socket.AF_INET6 if ":" in a else socket.AF_INET
    return socket.inet_ntop(fam, socket.inet_pton(fam, a))


SYN_OPTS = [("MSS", 1460), ("SAckOK", b""), ("WScale", 7), ("NOP", None),
            ("NOP", None)]


def tcp(smac, dmac, src, dst, sport, dport, flags="PA", payload=b"",
        seq=1000, ack=1, tos=0, ttl=64, fl=0, ip_id=7, vlan=None,
        options=None, window=8192, pad_to=None):
    """Ethernet/[802.1Q]/IPv4|IPv6/TCP with scapy's (fresh) checksums."""
    e = Ether(src=smac, dst=dmac)
    if vlan is not None:
        e = e / Dot1Q(vlan=vlan)
    l3 = (IPv6(src=src, dst=dst, tc=tos, fl=fl, hlim=ttl) if ":" in src
          else IP(src=src, dst=dst, tos=tos, ttl=ttl, id=ip_id))
    if options is None:
        options = SYN_OPTS if flags == "S" else []
    t = TCP(sport=sport, dport=dport, flags=flags, seq=seq, ack=ack,
            window=window, options=options)
    b = bytes(e / l3 / t / Raw(payload)) if payload else bytes(e / l3 / t)
    if pad_to and len(b) < pad_to:
        b += b"\0" * (pad_to - len(b))     # Ethernet minimum-size padding
    return b


def csum_fields(pkt):
    """{offset: kind} of the checksum words in pkt (IPv4 header, TCP)."""
    try:
        p = P.parse(pkt)
    except P.MalformedPacket:
        return {}
    o = {}
    if p["ip"] and p["ip"]["version"] == 4:
        o[p["offsets"]["l3"] + 10] = "ipv4"
    if p["l4"] and p["l4"].get("proto") == "tcp":
        o[p["offsets"]["l4"] + 16] = "tcp"
    return o


def bytes_diff(out, exp):
    """None if out == exp, allowing only +0/-0 (0x0000 vs 0xffff) in the IPv4
    and TCP checksum words (an incremental update may legally produce the
    other zero than a fresh computation; validity is checked separately)."""
    out, exp = bytes(out), bytes(exp)
    if len(out) != len(exp):
        return "length %d, expected %d\n out %s\n exp %s" % (
            len(out), len(exp), out.hex(), exp.hex())
    cs = csum_fields(exp)
    bad = []
    for i in range(len(out)):
        if out[i] == exp[i]:
            continue
        start = i if i in cs else i - 1 if (i - 1) in cs else None
        if start is not None and {out[start:start + 2], exp[start:start + 2]} \
                == {b"\0\0", b"\xff\xff"}:
            continue
        bad.append(i)
    if not bad:
        return None
    return "bytes differ at offsets %s\n out %s\n exp %s" % (
        bad[:16], out.hex(), exp.hex())


def getf(p, path):
    v = p
    for k in path.split("."):
        v = v[k]
    return v


def run(prog, pkt, ctx):
    r = P.prog_run(PROG[prog], pkt, ctx=ctx, netns=NS_HV)
    return r[0], r[1]


def ctx_for(prog, ifname=None, ingress=None):
    if prog == "vsn_up_xdp":
        return P.xdp_ctx(IFINDEX[ifname or "up0"])
    idx = IFINDEX[ifname or ("vmif" if prog == "vsn_vm_ingress" else "up0")]
    if prog == "vsn_up_egress" and ingress is None:
        ingress = 0                      # a locally generated packet
    return P.skb_ctx(idx, ingress_ifindex=ingress)


def check(name, prog, pkt, ret, exp=None, fields=None, cdelta=None,
          ifname=None, ingress=None, csums=True, roce=False):
    """Run pkt through prog and assert: return code; header fields (parsed
    by pktlib); checksums (independent verifiers); every byte against exp
    (None: the output must equal the input); exact counter delta.
    Returns the output bytes (or None if the run itself failed)."""
    before = counters()
    try:
        rv, out = run(prog, pkt, ctx_for(prog, ifname, ingress))
    except P.ProgRunError as e:
        T.ok(False, "%s: program ran" % name, e)
        return None
    after = counters()
    # The verdict decides the packet's fate (redirect vs. stack vs. drop).
    T.ok(rv == ret, "%s: %s returns %d" % (name, prog, ret), "got %d" % rv)
    # The fields the case is about, read by an independent dissector, so a
    # failure names the wrong field instead of just "bytes differ".
    if fields:
        try:
            p = P.parse(out)
            bad = {k: (getf(p, k), v) for k, v in fields.items()
                   if getf(p, k) != v}
        except (P.MalformedPacket, KeyError, TypeError) as e:
            bad = {"parse": repr(e)}
        T.ok(not bad, "%s: header fields %s" % (name, ", ".join(fields)),
             "\n".join("%s: got %r, expected %r" % (k, v[0], v[1]) if
                       isinstance(v, tuple) else "%s: %s" % (k, v)
                       for k, v in bad.items()))
    if exp is not None and csums:
        # The oracle's own ones'-complement code; scapy is not involved.
        try:
            p = P.parse(out)
            okv4 = p["ip"]["version"] != 4 or P.ipv4_csum_ok(out)
            okl4 = P.l4_csum_ok(out)
            what = ("IPv4 header + " if p["ip"]["version"] == 4 else "") + \
                p["l4"]["proto"].upper()
            T.ok(okv4 and okl4, "%s: %s checksums valid" % (name, what),
                 "ipv4 %s l4 %s" % (okv4, okl4))
        except (P.MalformedPacket, KeyError, TypeError) as e:
            T.ok(False, "%s: checksums valid" % name, repr(e))
    if roce:
        try:
            T.ok(P.roce_icrc_ok(out), "%s: RoCEv2 ICRC valid (recomputed)"
                 % name, "icrc %08x stored %08x" % (P.roce_icrc(out),
                                                    P.roce_icrc_stored(out)))
        except P.MalformedPacket as e:
            T.ok(False, "%s: RoCEv2 ICRC valid" % name, repr(e))
    # Everything else must be exactly as expected: catches stray writes,
    # wrong offsets (VLAN), lost options/payload/padding.
    if exp is None:
        T.ok(out == pkt, "%s: output identical to input" % name,
             bytes_diff(out, pkt))
    else:
        d = bytes_diff(out, exp)
        T.ok(d is None, "%s: whole frame as expected byte for byte" % name, d)
    # Exactly these counters moved, by one packet and its length: wrong
    # reasons, double counting or counting a passed packet all show here.
    if cdelta is not None:
        got = delta(before, after)
        T.ok(got == cdelta, "%s: counters %s" % (
            name, ", ".join("%s[%s]+%d" % (k[0], k[1], v[0])
                            for k, v in sorted(cdelta.items()))
            or "unchanged"),
             "got %s\nexpected %s" % (sorted(got.items()),
                                      sorted(cdelta.items())))
    return out


def route(vm, vol, be, path):
    vsn("route", "set", str(vm), str(vol), str(be), str(path))


def to_storage_fields(path, dst, dport, src, sport, vlan=None, **ip):
    """Fields of a packet leaving on a static-MAC path."""
    f = {"eth.src": PATHS[path].get("source_mac", pmac(path, "a"))
         if path != 11 else IFMAC["up0"],
         "eth.dst": "02:00:00:00:bb:0b" if path == 11 else pmac(path, "b"),
         # The path's VLAN tag is pushed as an offloaded tag (skb->vlan_tci),
         # which test-run does not write into the output bytes: no inline tag.
         "eth.vlan": vlan,
         "ip.src": canon(src), "ip.dst": canon(dst),
         "l4.sport": sport, "l4.dport": dport}
    for k, v in ip.items():
        f["ip." + k] = v
    return f


def path_macs(path):
    if path == 11:
        return IFMAC["up0"], "02:00:00:00:bb:0b"
    return pmac(path, "a"), pmac(path, "b")


# =============================================================================
# Cases
# =============================================================================


# --- reset connections, path liveness, skb priority --------------------------
CONN_RESET = 16          # VSN_CONN_RESET (include/vsn_types.h)
CONN_FLAGS_OFF = 16      # struct vsn_conn: offset of flags
CONN_ID_OFF = 112        # struct vsn_conn: offset of conn_id


def conns_bytes():
    """[(key bytes, value bytes)] of every vsn_conns entry, via bpftool."""
    r = sh("bpftool", "-j", "map", "dump", "pinned", PIN + "/vsn_conns")
    return [(bytes(int(x, 16) for x in e["key"]),
             bytes(int(x, 16) for x in e["value"]))
            for e in json.loads(r.stdout)]


def conn_id_of(vm, src, sport, proto="tcp"):
    c = conn(vm, src, sport, proto)
    return c["conn_id"] if c else None


def conn_id_entries(cid):
    return [(k, v) for k, v in conns_bytes()
            if struct.unpack_from("=I", v, CONN_ID_OFF)[0] == cid]


def hexargs(b):
    return ["hex"] + ["%02x" % x for x in b]


def mark_reset(cid):
    """Set VSN_CONN_RESET in every entry of connection cid (as the
    controller does); returns how many entries were marked."""
    n = 0
    for k, v in conn_id_entries(cid):
        v = bytearray(v)
        flags = struct.unpack_from("=I", v, CONN_FLAGS_OFF)[0]
        struct.pack_into("=I", v, CONN_FLAGS_OFF, flags | CONN_RESET)
        sh("bpftool", "map", "update", "pinned", PIN + "/vsn_conns",
           "key", *hexargs(k), "value", *hexargs(v), "exist")
        n += 1
    return n


def rst_frame(smac, dmac, src, dst, sport, dport, seq, ack, vlan=None):
    """The expected RST, built by scapy (fresh checksums): fresh IP header
    (IPv4: TOS 0, id 0, DF, TTL 64; IPv6: class 0, flow label 0, hop limit
    64), RST|ACK, window 0, no options or payload."""
    e = Ether(src=smac, dst=dmac)
    if vlan is not None:
        e = e / Dot1Q(vlan=vlan)
    l3 = (IPv6(src=src, dst=dst, hlim=64, tc=0, fl=0) if ":" in src
          else IP(src=src, dst=dst, tos=0, ttl=64, id=0, flags="DF"))
    return bytes(e / l3 / TCP(sport=sport, dport=dport, seq=seq, ack=ack,
                              flags="RA", window=0))


def rst_fields(smac, dmac, src, dst, sport, dport, seq, ack, v6):
    f = {"eth.src": smac, "eth.dst": dmac, "ip.src": canon(src),
         "ip.dst": canon(dst), "ip.ttl": 64, "ip.tos": 0,
         "ip.payload_len": 20, "l4.sport": sport, "l4.dport": dport,
         "l4.seq": seq, "l4.ack": ack, "l4.flags": "RA", "l4.doff": 5,
         "l4.window": 0, "payload": b"", "trailer": b""}
    if v6:
        f["ip.flow_label"] = 0
    else:
        f.update({"ip.total_len": 40, "ip.id": 0, "ip.df": True})
    return f


def reset_setup(tag, vm, vip, sport, be, path, vm_id=1, ifname=None,
                mac=VM1_MAC, gw=GW_MAC):
    """A SYN creating a connection, then both its entries marked reset.
    Returns its conn_id (None if something failed, reported)."""
    syn = tcp(mac, gw, vm, vip, sport, 4420, flags="S")
    prog = "vsn_up_egress" if vm_id == 0 else "vsn_vm_ingress"
    rv, _ = run(prog, syn, ctx_for(prog, ifname))
    cid = conn_id_of(vm_id, vm, sport)
    ents = conn_id_entries(cid) if cid is not None else []
    n = mark_reset(cid) if len(ents) == 2 else 0
    T.ok(rv in (TC_ACT_REDIRECT, TC_ACT_OK) and n == 2,
         "%s: connection %s:%d created and both entries marked reset"
         % (tag, vm, sport), "retval %d, %d entries" % (rv, len(ents)))
    return cid if n == 2 else None


def gone(tag, cid):
    left = conn_id_entries(cid) if cid is not None else [None]
    T.ok(not left, "%s: both connection entries deleted" % tag,
         "%d left" % len(left))


# =============================================================================
CASES = []


def case(fn):
    """Register a case of the calling test file (run in order)."""
    CASES.append(fn)
    return fn


def run_cases(cases, with_vm2=True):
    """Set up (topology, attach, the config with or without vm2), run the
    cases in order, tear down; the process exit status."""
    try:
        rc = _main(cases, with_vm2)
    finally:
        teardown()
    return rc


def _main(cases, with_vm2):
    t0 = time.time()
    if not suite_start(teardown):
        return 1
    try:
        setup()
        apply(config_yaml(with_vm2))
    except Exception as e:   # noqa: BLE001
        T.ok(False, "setup: topology, vsn attach, vsn apply", e)
        return 1
    note("setup done: ifindex %s, up0 MAC %s" % (IFINDEX, IFMAC["up0"]))
    for fn in cases:
        try:
            fn()
        except Exception:   # noqa: BLE001
            T.ok(False, "%s completed" % fn.__name__, traceback.format_exc())
    note("%d assertions, %d failed, %d cases, %.1fs"
         % (T.n, T.failed, len(cases), time.time() - t0))
    print("1..%d" % T.n)
    return 1 if T.failed else 0
