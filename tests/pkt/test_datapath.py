#!/usr/bin/python3
"""Per-program packet tests of the vsn datapath with BPF_PROG_TEST_RUN.

Run as root from the repository root:  /usr/bin/python3 tests/pkt/test_datapath.py

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

import atexit
import json
import os
import signal
import socket
import struct
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import pktlib as P  # noqa: E402
from harness import Tap, note, remove_env, sh  # noqa: E402
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
        ("vsn_vm_ingress", "vsn_up_xdp", "vsn_up_ingress", "vsn_up_egress")}

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
    lines = ["vms:", "  - {name: vm1, id: 1, interface: vmif}"]
    if with_vm2:
        lines.append("  - {name: vm2, id: 2, interface: vmif6}")
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
UP0_MAC = None


def teardown():
    remove_env(VSN, PIN, NS_HV, (NS_HV, NS_PEER))


def setup():
    global UP0_MAC
    teardown()                          # stale state of an aborted run
    for ns in (NS_HV, NS_PEER):
        sh("ip", "netns", "add", ns)
        # No IPv6 autoconf/MLD/DAD: nothing but our test frames may move the
        # counters of the programs attached to these interfaces.
        sh("sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1",
           "net.ipv6.conf.default.disable_ipv6=1", ns=ns)
        sh("ip", "link", "set", "lo", "up", ns=ns)
    for hv, peer in (("vmif", "vm0"), ("vmif6", "vm6"), ("up0", "f0"),
                     ("up1", "f1"), ("upt", "ft")):
        sh("ip", "link", "add", hv, "netns", NS_HV, "type", "veth", "peer",
           "name", peer, "netns", NS_PEER)
        sh("ip", "link", "set", hv, "up", ns=NS_HV)
        sh("ip", "link", "set", peer, "up", ns=NS_PEER)
    for link in json.loads(sh("ip", "-j", "link", "show", ns=NS_HV).stdout):
        IFINDEX[link["ifname"]] = link["ifindex"]
        if link["ifname"] == "up0":
            UP0_MAC = link["address"]
    vsn("attach", "--vm", "vmif,vmif6", "--uplink", "up0,up1")
    # attach loads the TC reply program only for --xdp-mode tc: a spare
    # uplink in that mode pins it too (same maps).
    vsn("attach", "--uplink", "upt", "--xdp-mode", "tc")
    for name, path in PROG.items():
        if not os.path.exists(path):
            raise RuntimeError("program %s not pinned" % path)


def apply(text):
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", prefix="vsnp-",
                                     delete=False) as f:
        f.write(text)
    try:
        vsn("apply", f.name)
    finally:
        os.unlink(f.name)


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
         if path != 11 else UP0_MAC,
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
        return UP0_MAC, "02:00:00:00:bb:0b"
    return pmac(path, "a"), pmac(path, "b")


# =============================================================================
# Cases
# =============================================================================
CASES = []


def case(fn):
    CASES.append(fn)
    return fn


@case
def c12_not_vm():
    """12. Frames on an interface vsn knows as no VM's pass untouched,
    counted not_vm (the VM is identified by the ingress interface only)."""
    syn = tcp(VM2_MAC, GW_MAC, VM2, VIP, 41200, 4420, flags="S")
    # vmif6 is attached but config A has no VM on it yet.
    check("c12 SYN on unconfigured vmif6", "vsn_vm_ingress", syn, TC_ACT_OK,
          ifname="vmif6", cdelta=fwd_delta(len(syn), reason="not_vm"))
    syn1 = tcp(VM1_MAC, GW_MAC, VM1, VIP, 41201, 4420, flags="S")
    # A VM1 storage SYN presented on up0 (not a VM interface at all).
    check("c12 SYN with ifindex of up0", "vsn_vm_ingress", syn1, TC_ACT_OK,
          ifname="up0", cdelta=fwd_delta(len(syn1), reason="not_vm"))
    T.ok(conn(1, VM1, 41201) is None and conn(2, VM2, 41200) is None,
         "c12: no connection created for not_vm frames")


@case
def c00_vm2_after_apply():
    """Re-apply with vm2 on vmif6: the same frame is now VM 2's, and is
    steered by VM 2's own volume (volumes are per VM)."""
    apply(config_yaml(True))
    syn = tcp(VM2_MAC, GW_MAC, VM2, VIP, 41200, 4420, flags="S")
    check("c00 vm2 SYN after apply", "vsn_vm_ingress", syn, TC_ACT_REDIRECT,
          ifname="vmif6",
          exp=tcp(*path_macs(1), VM2, BE[1], 41200, BE_PORT, flags="S"),
          fields=to_storage_fields(1, BE[1], BE_PORT, VM2, 41200),
          cdelta=fwd_delta(len(syn), path=1, be=1, vm=2))
    c = conn(2, VM2, 41200)
    T.ok(c and c["volume"] == 6 and c["backend"] == 1 and
         c["vm_ifindex"] == IFINDEX["vmif6"],
         "c00: vm2 connection on its own volume 6, backend 1, replies to "
         "vmif6", c)
    # VM 2 has no IPv6 volume: VM 1's volume must not serve it.
    syn6 = tcp(VM2_MAC, GW_MAC, "2001:db8:6::2", VIP6, 41200, 4420, flags="S")
    check("c00 vm2 SYN to vm1-only IPv6 volume", "vsn_vm_ingress", syn6,
          TC_ACT_OK, ifname="vmif6",
          cdelta=fwd_delta(len(syn6), reason="not_storage"))


def basic_flow(tag, v6, sport):
    """Cases 1-3 (v4) and 4 (v6): SYN creating the connection, a data
    segment hitting it, replies through XDP and TC, a VLAN-tagged reply."""
    vm, vip = (VM1_6, VIP6) if v6 else (VM1, VIP)
    be, vol = (3, 2) if v6 else (1, 1)
    route(1, vol, be, 1)
    fam = "IPv6" if v6 else "IPv4"
    # -- SYN: creates both connection entries, DNAT VIP:4420 -> BE:4421.
    syn = tcp(VM1_MAC, GW_MAC, vm, vip, sport, 4420, flags="S", seq=5000,
              ack=0, tos=0x02, fl=0x54321 if v6 else 0)
    exp = tcp(*path_macs(1), vm, BE[be], sport, BE_PORT, flags="S", seq=5000,
              ack=0, tos=0x02, fl=0x54321 if v6 else 0)
    check("%s %s SYN VM->storage" % (tag, fam), "vsn_vm_ingress", syn,
          TC_ACT_REDIRECT, exp=exp,
          # src unchanged, TTL/hop limit unchanged (L2 forwarding, no decrement),
          # traffic class and flow label untouched on a plain path.
          fields=dict(to_storage_fields(1, BE[be], BE_PORT, vm, sport),
                      **{"ip.ttl": 64, "ip.tos": 0x02, "l4.flags": "S",
                         "l4.seq": 5000, "l4.options": bytes(TCP(
                             options=SYN_OPTS))[20:]}),
          cdelta=fwd_delta(len(syn), path=1, be=be, vm=1))
    c = conn(1, vm, sport)
    # Both entries exist; the VM-side one remembers what replies need
    # (VIP:port, VM MAC, gateway MAC, VM ifindex).
    T.ok(c is not None and c["backend"] == be and c["last_path"] == 1 and
         c["backend_port"] == BE_PORT and c["vip_port"] == 4420 and
         c["dst"] == canon(vip) and c["vip"] == canon(vip) and
         c["tx_packets"] == 1 and c["rx_packets"] == 0 and c["reverse"] and
         c["flags"] == (CONN_FLAGS["dnat"] | (CONN_FLAGS["v6"] if v6 else 0))
         and c["vm_mac"] == VM1_MAC and c["gw_mac"] == GW_MAC and
         c["vm_ifindex"] == IFINDEX["vmif"],
         "%s %s: connection recorded (backend %d, path 1, DNAT, both "
         "entries, MACs, tx 1)" % (tag, fam, be), c)
    # -- Data on the same connection: hits the existing entry.
    data = bytes(range(256)) * 3 + b"nvme"
    pkt = tcp(VM1_MAC, GW_MAC, vm, vip, sport, 4420, flags="PA", seq=5001,
              ack=777, payload=data)
    exp = tcp(*path_macs(1), vm, BE[be], sport, BE_PORT, flags="PA",
              seq=5001, ack=777, payload=data)
    check("%s %s data VM->storage" % (tag, fam), "vsn_vm_ingress", pkt,
          TC_ACT_REDIRECT, exp=exp,
          fields=dict(to_storage_fields(1, BE[be], BE_PORT, vm, sport),
                      payload=data, **{"ip.ttl": 64}),
          cdelta=fwd_delta(len(pkt), path=1, be=be, vm=1))
    c = conn(1, vm, sport)
    T.ok(c is not None and c["tx_packets"] == 2 and
         c["tx_bytes"] == len(syn) + len(pkt),
         "%s %s: data hit the existing entry (tx 2 packets)" % (tag, fam), c)
    # -- Reply through XDP: reverse NAT to VIP:4420, MACs gw -> vm.
    rdata = b"\x07" * 100
    rep = tcp(FAB_MAC, UP0_MAC, BE[be], vm, BE_PORT, sport, flags="PA",
              seq=9000, ack=5001 + len(data), payload=rdata, ttl=61)
    rexp = tcp(GW_MAC, VM1_MAC, vip, vm, 4420, sport, flags="PA", seq=9000,
               ack=5001 + len(data), payload=rdata, ttl=61)
    rfields = {"eth.src": GW_MAC, "eth.dst": VM1_MAC, "eth.vlan": None,
               "ip.src": canon(vip), "ip.dst": canon(vm), "l4.sport": 4420,
               "l4.dport": sport, "payload": rdata, "ip.ttl": 61}
    check("%s %s reply XDP" % (tag, fam), "vsn_up_xdp", rep, XDP_REDIRECT,
          exp=rexp, fields=rfields,
          cdelta=fwd_delta(len(rep), be=be, vm=1))
    check("%s %s reply TC" % (tag, fam), "vsn_up_ingress", rep,
          TC_ACT_REDIRECT, exp=rexp, fields=rfields,
          cdelta=fwd_delta(len(rep), be=be, vm=1))
    c = conn(1, vm, sport)
    T.ok(c is not None and c["rx_packets"] == 2 and
         c["rx_bytes"] == 2 * len(rep),
         "%s %s: replies counted on the connection (rx 2)" % (tag, fam), c)
    # -- Reply carrying an 802.1Q tag: comes out untagged, 4 bytes shorter.
    vrep = tcp(FAB_MAC, UP0_MAC, BE[be], vm, BE_PORT, sport, flags="A",
               seq=9100, ack=6000, vlan=100, ttl=61)
    vexp = tcp(GW_MAC, VM1_MAC, vip, vm, 4420, sport, flags="A", seq=9100,
               ack=6000, ttl=61)
    check("%s %s VLAN-tagged reply XDP" % (tag, fam), "vsn_up_xdp", vrep,
          XDP_REDIRECT, exp=vexp, fields=dict(rfields, payload=b""),
          cdelta=fwd_delta(len(vrep), be=be, vm=1))
    check("%s %s VLAN-tagged reply TC" % (tag, fam), "vsn_up_ingress", vrep,
          TC_ACT_REDIRECT, exp=vexp, fields=dict(rfields, payload=b""),
          cdelta=fwd_delta(len(vrep), be=be, vm=1))
    if not v6:
        # A minimum-size frame: 54 bytes of ACK + 6 bytes Ethernet padding.
        # The padding is not part of the datagram and must not be summed.
        prep = tcp(FAB_MAC, UP0_MAC, BE[be], vm, BE_PORT, sport, flags="A",
                   seq=9200, ack=6000, pad_to=60)
        pexp = tcp(GW_MAC, VM1_MAC, vip, vm, 4420, sport, flags="A",
                   seq=9200, ack=6000, pad_to=60)
        check("%s %s padded 60-byte reply XDP" % (tag, fam), "vsn_up_xdp",
              prep, XDP_REDIRECT, exp=pexp,
              cdelta=fwd_delta(len(prep), be=be, vm=1))
        # A VM frame with its own 802.1Q tag: parsed, tag removed.
        tpk = tcp(VM1_MAC, GW_MAC, vm, vip, sport, 4420, flags="A",
                  seq=6000, ack=9300, vlan=5)
        texp = tcp(*path_macs(1), vm, BE[be], sport, BE_PORT, flags="A",
                   seq=6000, ack=9300)
        check("%s %s VLAN-tagged VM frame" % (tag, fam), "vsn_vm_ingress",
              tpk, TC_ACT_REDIRECT, exp=texp,
              fields=to_storage_fields(1, BE[be], BE_PORT, vm, sport),
              cdelta=fwd_delta(len(tpk), path=1, be=be, vm=1))


@case
def c01_03_ipv4_flow():
    """1-3: IPv4 SYN, data, replies (XDP and TC), tagged reply."""
    basic_flow("c01-03", False, 41000)


@case
def c04_ipv6_flow():
    """4: the same over IPv6."""
    basic_flow("c04", True, 41000)


@case
def c05_path_l3_rewrites():
    """5: DSCP/ECN, flow label and TTL paths."""
    # DSCP 26 + ECN 1: tos = 26<<2|1 whatever the VM sent (ECN 2 here).
    route(1, 1, 1, 3)
    pkt = tcp(VM1_MAC, GW_MAC, VM1, VIP, 41500, 4420, flags="S", tos=0x02)
    check("c05 IPv4 DSCP/ECN path", "vsn_vm_ingress", pkt, TC_ACT_REDIRECT,
          exp=tcp(*path_macs(3), VM1, BE[1], 41500, BE_PORT, flags="S",
                  tos=26 << 2 | 1),
          fields=to_storage_fields(3, BE[1], BE_PORT, VM1, 41500,
                                   tos=26 << 2 | 1, dscp=26, ecn=1, ttl=64),
          cdelta=fwd_delta(len(pkt), path=3, be=1, vm=1))
    route(1, 2, 3, 3)
    pkt = tcp(VM1_MAC, GW_MAC, VM1_6, VIP6, 41500, 4420, flags="S", tos=0x02,
              fl=0x1F00D)
    check("c05 IPv6 DSCP/ECN path (traffic class)", "vsn_vm_ingress", pkt,
          TC_ACT_REDIRECT,
          exp=tcp(*path_macs(3), VM1_6, BE[3], 41500, BE_PORT, flags="S",
                  tos=26 << 2 | 1, fl=0x1F00D),
          fields=to_storage_fields(3, BE[3], BE_PORT, VM1_6, 41500,
                                   tc=26 << 2 | 1, flow_label=0x1F00D),
          cdelta=fwd_delta(len(pkt), path=3, be=3, vm=1))
    # Flow label path: IPv6 gets the label, traffic class stays.
    route(1, 2, 3, 4)
    pkt = tcp(VM1_MAC, GW_MAC, VM1_6, VIP6, 41501, 4420, flags="S", tos=0x20,
              fl=0x11111)
    check("c05 IPv6 flow label path", "vsn_vm_ingress", pkt, TC_ACT_REDIRECT,
          exp=tcp(*path_macs(4), VM1_6, BE[3], 41501, BE_PORT, flags="S",
                  tos=0x20, fl=0x12345),
          fields=to_storage_fields(4, BE[3], BE_PORT, VM1_6, 41501,
                                   flow_label=0x12345, tc=0x20, hlim=64),
          cdelta=fwd_delta(len(pkt), path=4, be=3, vm=1))
    # ...and IPv4 over the same path is untouched at L3 (label is v6 only).
    route(1, 1, 1, 4)
    pkt = tcp(VM1_MAC, GW_MAC, VM1, VIP, 41501, 4420, flags="S", tos=0x20)
    check("c05 IPv4 on flow label path (ignored)", "vsn_vm_ingress", pkt,
          TC_ACT_REDIRECT,
          exp=tcp(*path_macs(4), VM1, BE[1], 41501, BE_PORT, flags="S",
                  tos=0x20),
          fields=to_storage_fields(4, BE[1], BE_PORT, VM1, 41501, tos=0x20),
          cdelta=fwd_delta(len(pkt), path=4, be=1, vm=1))
    # TTL path: IPv4 TTL and IPv6 hop limit set to 17 (header csum updated).
    route(1, 1, 1, 5)
    pkt = tcp(VM1_MAC, GW_MAC, VM1, VIP, 41502, 4420, flags="S", ttl=64,
              tos=0xB8)
    check("c05 IPv4 TTL path", "vsn_vm_ingress", pkt, TC_ACT_REDIRECT,
          exp=tcp(*path_macs(5), VM1, BE[1], 41502, BE_PORT, flags="S",
                  ttl=17, tos=0xB8),
          fields=to_storage_fields(5, BE[1], BE_PORT, VM1, 41502, ttl=17,
                                   tos=0xB8),
          cdelta=fwd_delta(len(pkt), path=5, be=1, vm=1))
    route(1, 2, 3, 5)
    pkt = tcp(VM1_MAC, GW_MAC, VM1_6, VIP6, 41502, 4420, flags="S", ttl=200)
    check("c05 IPv6 hop limit path", "vsn_vm_ingress", pkt, TC_ACT_REDIRECT,
          exp=tcp(*path_macs(5), VM1_6, BE[3], 41502, BE_PORT, flags="S",
                  ttl=17),
          fields=to_storage_fields(5, BE[3], BE_PORT, VM1_6, 41502, hlim=17),
          cdelta=fwd_delta(len(pkt), path=5, be=3, vm=1))
    route(1, 1, 1, 1)
    route(1, 2, 3, 1)


@case
def c06_snat():
    """6: SNAT path: VM address -> path source_address on the way out, the
    reply to that address translated back to the VM."""
    for v6 in (False, True):
        vm, vip, be, vol, path, sa = ((VM1_6, VIP6, 3, 2, 9, SNAT6) if v6 else
                                      (VM1, VIP, 1, 1, 6, SNAT4))
        fam = "IPv6" if v6 else "IPv4"
        route(1, vol, be, path)
        syn = tcp(VM1_MAC, GW_MAC, vm, vip, 41600, 4420, flags="S")
        check("c06 %s SNAT SYN" % fam, "vsn_vm_ingress", syn, TC_ACT_REDIRECT,
              exp=tcp(*path_macs(path), sa, BE[be], 41600, BE_PORT, flags="S"),
              fields=to_storage_fields(path, BE[be], BE_PORT, sa, 41600),
              cdelta=fwd_delta(len(syn), path=path, be=be, vm=1))
        rep = tcp(FAB_MAC, UP0_MAC, BE[be], sa, BE_PORT, 41600, flags="SA",
                  seq=1, ack=1001, payload=b"icresp")
        rexp = tcp(GW_MAC, VM1_MAC, vip, vm, 4420, 41600, flags="SA", seq=1,
                   ack=1001, payload=b"icresp")
        rf = {"ip.src": canon(vip), "ip.dst": canon(vm), "l4.sport": 4420,
              "l4.dport": 41600, "eth.dst": VM1_MAC}
        c = conn(1, vm, 41600)
        T.ok(c and c["flags"] & CONN_FLAGS["snat"] and c["snat"] == canon(sa)
             and c["reverse"],
             "c06 %s: connection has SNAT %s and a fabric-side entry for it"
             % (fam, sa), c)
        check("c06 %s SNAT reply XDP" % fam, "vsn_up_xdp", rep, XDP_REDIRECT,
              exp=rexp, fields=rf, cdelta=fwd_delta(len(rep), be=be, vm=1))
        check("c06 %s SNAT reply TC" % fam, "vsn_up_ingress", rep,
              TC_ACT_REDIRECT, exp=rexp, fields=rf,
              cdelta=fwd_delta(len(rep), be=be, vm=1))
        # A reply to the VM's own address has no entry: SNAT connections
        # are only reachable through the SNAT address.
        rep2 = tcp(FAB_MAC, UP0_MAC, BE[be], vm, BE_PORT, 41600, flags="A")
        check("c06 %s reply to pre-SNAT address" % fam, "vsn_up_xdp", rep2,
              XDP_PASS, cdelta=fwd_delta(len(rep2), reason="not_storage"))
        route(1, vol, be, 1)


@case
def c06b_snat_port_clash():
    """6b: two VMs share a SNAT address: the second connection with the same
    source port to the same backend gets another port on the wire, and the
    replies to each port reach the right VM, translated back."""
    route(1, 1, 1, 6)
    route(2, 6, 1, 6)
    sport = 41750  # used by no other case
    syn1 = tcp(VM1_MAC, GW_MAC, VM1, VIP, sport, 4420, flags="S")
    check("c06b vm1 SYN via SNAT", "vsn_vm_ingress", syn1, TC_ACT_REDIRECT,
          exp=tcp(*path_macs(6), SNAT4, BE[1], sport, BE_PORT, flags="S"),
          fields=to_storage_fields(6, BE[1], BE_PORT, SNAT4, sport),
          cdelta=fwd_delta(len(syn1), path=6, be=1, vm=1))
    syn2 = tcp(VM2_MAC, GW_MAC, VM2, VIP, sport, 4420, flags="S")
    r, out2 = run("vsn_vm_ingress", syn2, ctx_for("vsn_vm_ingress", "vmif6"))
    p2 = P.parse(out2) if out2 else None
    port2 = p2["l4"]["sport"] if p2 else None
    T.ok(r == TC_ACT_REDIRECT and p2 and p2["ip"]["src"] == canon(SNAT4)
         and port2 != sport and P.ipv4_csum_ok(out2) and P.l4_csum_ok(out2),
         "c06b vm2 SYN with the same port leaves from %s with another port "
         "(%s), checksums valid" % (SNAT4, port2), (r, p2))
    for vm, vm_mac, port, ifn in ((VM1, VM1_MAC, sport, "vmif"),
                                  (VM2, VM2_MAC, port2, "vmif6")):
        rep = tcp(FAB_MAC, UP0_MAC, BE[1], SNAT4, BE_PORT, port or 1,
                  flags="SA", seq=1, ack=1001)
        check("c06b reply to %s:%s reaches %s" % (SNAT4, port, vm), "vsn_up_xdp",
              rep, XDP_REDIRECT,
              exp=tcp(GW_MAC, vm_mac, VIP, vm, 4420, sport, flags="SA", seq=1,
                      ack=1001),
              fields={"ip.dst": canon(vm), "l4.dport": sport, "eth.dst": vm_mac},
              cdelta=fwd_delta(len(rep), be=1, vm=1 if vm == VM1 else 2))
    c2 = conn(2, VM2, sport)
    T.ok(c2 and c2["vm_ifindex"] == IFINDEX["vmif6"],
         "c06b: vm2's connection replies to vmif6", c2)
    route(1, 1, 1, 1)
    route(2, 6, 1, 1)


@case
def c07_path_change():
    """7: route set moves an existing connection on its next packet;
    route conn overrides one connection only."""
    route(1, 1, 1, 1)
    s, s2 = 41700, 41701
    for sp in (s, s2):
        syn = tcp(VM1_MAC, GW_MAC, VM1, VIP, sp, 4420, flags="S")
        check("c07 SYN sport %d on path 1" % sp, "vsn_vm_ingress", syn,
              TC_ACT_REDIRECT,
              exp=tcp(*path_macs(1), VM1, BE[1], sp, BE_PORT, flags="S"),
              cdelta=fwd_delta(len(syn), path=1, be=1, vm=1))
    route(1, 1, 1, 2)
    pkt = tcp(VM1_MAC, GW_MAC, VM1, VIP, s, 4420, payload=b"after route set")
    check("c07 next packet after route set -> path 2", "vsn_vm_ingress", pkt,
          TC_ACT_REDIRECT,
          exp=tcp(*path_macs(2), VM1, BE[1], s, BE_PORT,
                  payload=b"after route set"),
          fields=to_storage_fields(2, BE[1], BE_PORT, VM1, s),
          cdelta=fwd_delta(len(pkt), path=2, be=1, vm=1))
    c = conn(1, VM1, s)
    T.ok(c and c["last_path"] == 2 and c["backend"] == 1 and
         c["path_override"] == 0,
         "c07: connection's last path 2, backend 1 unchanged", c)
    # Per-connection override to the VLAN path 7: only connection s moves.
    # (Its tag is pushed with bpf_skb_vlan_push as an offloaded tag, which
    # test-run does not write into the output: only "no inline tag, path 7
    # MACs, path 7 counter" is observable here; the netns suite covers the
    # tag on the wire.)
    vsn("route", "conn", "1", VM1, str(s), VIP, "4420", "7")
    pkt = tcp(VM1_MAC, GW_MAC, VM1, VIP, s, 4420, payload=b"pinned")
    check("c07 route conn -> path 7 (VLAN)", "vsn_vm_ingress", pkt,
          TC_ACT_REDIRECT,
          exp=tcp(*path_macs(7), VM1, BE[1], s, BE_PORT, payload=b"pinned"),
          fields=to_storage_fields(7, BE[1], BE_PORT, VM1, s),
          cdelta=fwd_delta(len(pkt), path=7, be=1, vm=1))
    pkt = tcp(VM1_MAC, GW_MAC, VM1, VIP, s2, 4420, payload=b"other")
    check("c07 other connection stays on route path 2", "vsn_vm_ingress", pkt,
          TC_ACT_REDIRECT,
          exp=tcp(*path_macs(2), VM1, BE[1], s2, BE_PORT, payload=b"other"),
          cdelta=fwd_delta(len(pkt), path=2, be=1, vm=1))
    c = conn(1, VM1, s)
    T.ok(c and c["last_path"] == 7 and c["path_override"] == 7,
         "c07: connection carries the override (path 7)", c)
    # The reverse direction is independent of the path.
    rep = tcp(FAB_MAC, UP0_MAC, BE[1], VM1, BE_PORT, s, flags="A")
    check("c07 reply of overridden connection", "vsn_up_xdp", rep,
          XDP_REDIRECT,
          exp=tcp(GW_MAC, VM1_MAC, VIP, VM1, 4420, s, flags="A"),
          cdelta=fwd_delta(len(rep), be=1, vm=1))
    vsn("route", "conn", "1", VM1, str(s), VIP, "4420", "0")
    pkt = tcp(VM1_MAC, GW_MAC, VM1, VIP, s, 4420, payload=b"cleared")
    check("c07 route conn 0 clears -> back to path 2", "vsn_vm_ingress", pkt,
          TC_ACT_REDIRECT,
          exp=tcp(*path_macs(2), VM1, BE[1], s, BE_PORT, payload=b"cleared"),
          cdelta=fwd_delta(len(pkt), path=2, be=1, vm=1))
    route(1, 1, 1, 1)


@case
def c08_backend_change():
    """8: a backend change applies to new connections only."""
    route(1, 1, 1, 1)
    s, s2 = 41800, 41801
    syn = tcp(VM1_MAC, GW_MAC, VM1, VIP, s, 4420, flags="S")
    check("c08 SYN while backend 2 down", "vsn_vm_ingress", syn,
          TC_ACT_REDIRECT,
          exp=tcp(*path_macs(1), VM1, BE[1], s, BE_PORT, flags="S"),
          cdelta=fwd_delta(len(syn), path=1, be=1, vm=1))
    try:
        vsn("backend", "set", "2", "up")
        vsn("backend", "set", "1", "down")
        pkt = tcp(VM1_MAC, GW_MAC, VM1, VIP, s, 4420, payload=b"existing")
        check("c08 existing connection still to backend 1", "vsn_vm_ingress",
              pkt, TC_ACT_REDIRECT,
              exp=tcp(*path_macs(1), VM1, BE[1], s, BE_PORT,
                      payload=b"existing"),
              fields=to_storage_fields(1, BE[1], BE_PORT, VM1, s),
              cdelta=fwd_delta(len(pkt), path=1, be=1, vm=1))
        syn2 = tcp(VM1_MAC, GW_MAC, VM1, VIP, s2, 4420, flags="S")
        # Backend 2's default path is path 2 (up1).
        check("c08 new SYN goes to backend 2", "vsn_vm_ingress", syn2,
              TC_ACT_REDIRECT,
              exp=tcp(*path_macs(2), VM1, BE[2], s2, BE_PORT, flags="S"),
              fields=to_storage_fields(2, BE[2], BE_PORT, VM1, s2),
              cdelta=fwd_delta(len(syn2), path=2, be=2, vm=1))
        c = conn(1, VM1, s2)
        T.ok(c and c["backend"] == 2 and c["backend_address"] == BE[2],
             "c08: new connection recorded on backend 2", c)
        rep = tcp(FAB_MAC, UP0_MAC, BE[2], VM1, BE_PORT, s2, flags="SA")
        check("c08 reply from backend 2", "vsn_up_xdp", rep, XDP_REDIRECT,
              exp=tcp(GW_MAC, VM1_MAC, VIP, VM1, 4420, s2, flags="SA"),
              cdelta=fwd_delta(len(rep), be=2, vm=1))
        # A fresh SYN reusing connection s's tuple: its backend is down, so
        # the datapath chooses afresh.
        check("c08 SYN reusing tuple of down backend -> backend 2",
              "vsn_vm_ingress", syn, TC_ACT_REDIRECT,
              exp=tcp(*path_macs(2), VM1, BE[2], s, BE_PORT, flags="S"),
              cdelta=fwd_delta(len(syn), path=2, be=2, vm=1))
    finally:
        vsn("backend", "set", "1", "up", check=False)
        vsn("backend", "set", "2", "down", check=False)


BE_STATE_OFF = 18        # struct vsn_backend: offset of state
BE_DOWN, BE_UP, BE_DRAINING = 0, 1, 2


def backend_raw(bid):
    r = json.loads(sh("bpftool", "-j", "map", "lookup", "pinned", PIN + "/vsn_backends",
                      "key", *hexargs(struct.pack("=I", bid))).stdout)
    return bytes(int(x, 16) for x in r["value"])


def backend_write(bid, value):
    sh("bpftool", "map", "update", "pinned", PIN + "/vsn_backends", "key",
       *hexargs(struct.pack("=I", bid)), "value", *hexargs(value), "exist")


@case
def c08b_backend_state_in_datapath():
    """8b: a backend whose state in the map is not up takes no new
    connection, even while the consistent-hash table still names it (the
    gap between a state change and the table's rebuild, or a failed
    rebuild): the state is written straight into the map, no rebuild."""
    route(1, 1, 1, 1)
    orig = backend_raw(1)
    try:
        for state, sport in ((BE_DOWN, 41810), (BE_DRAINING, 41811)):
            v = bytearray(orig)
            v[BE_STATE_OFF] = state
            backend_write(1, bytes(v))
            syn = tcp(VM1_MAC, GW_MAC, VM1, VIP, sport, 4420, flags="S")
            what = "down" if state == BE_DOWN else "draining"
            check("c08b SYN while backend 1 is %s in the map only" % what, "vsn_vm_ingress",
                  syn, TC_ACT_OK, cdelta=fwd_delta(len(syn), reason="no_route"))
            T.ok(conn(1, VM1, sport) is None,
                 "c08b: no connection created on %s backend 1" % what)
    finally:
        backend_write(1, orig)
    syn = tcp(VM1_MAC, GW_MAC, VM1, VIP, 41812, 4420, flags="S")
    check("c08b SYN once backend 1 is up again", "vsn_vm_ingress", syn, TC_ACT_REDIRECT,
          exp=tcp(*path_macs(1), VM1, BE[1], 41812, BE_PORT, flags="S"),
          cdelta=fwd_delta(len(syn), path=1, be=1, vm=1))


@case
def c09_roce():
    """9: RoCEv2 is steered, never NATed: only DSCP/TTL/flow label (the
    fields the ICRC masks) and MACs change; the ICRC stays valid."""
    for csum in (0, None):          # no UDP checksum, and a real one
        what = "no UDP csum" if csum == 0 else "UDP csum"
        sport = 49152 if csum == 0 else 49153
        pkt = P.roce_v4(VM1_MAC, GW_MAC, VM1, ROCE4, sport,
                        dest_qp=0x123456, psn=0xABCDE, tos=0x03, ttl=64,
                        udp_csum=csum, payload=bytes(range(61)), ackreq=1)
        src = P.parse(pkt)
        b = bytearray(pkt)
        b[0:12] = bytes.fromhex(pmac(8, "b").replace(":", "")) + \
            bytes.fromhex(pmac(8, "a").replace(":", ""))
        b[15] = 46 << 2 | 3          # DSCP 46, ECN (CE) kept
        b[22] = 5                    # TTL
        b[24:26] = b"\0\0"
        b[24:26] = P.csum(bytes(b[14:34])).to_bytes(2, "big")
        check("c09 RoCEv2 IPv4 (%s) DSCP/TTL path" % what,
                    "vsn_vm_ingress", pkt, TC_ACT_REDIRECT, exp=bytes(b),
                    fields=dict(to_storage_fields(
                        8, ROCE4, 4791, VM1, sport,
                        tos=46 << 2 | 3, ttl=5),
                        **{"l4.csum": src["l4"]["csum"],
                           "roce.dest_qp": 0x123456, "roce.psn": 0xABCDE,
                           "roce.opcode": 4, "roce.ackreq": 1,
                           "roce.payload": bytes(range(61)),
                           "roce.icrc": src["roce"]["icrc"]}),
                    roce=True, cdelta=fwd_delta(len(pkt), path=8, be=5, vm=1))
    pkt = P.roce_v6(VM1_MAC, GW_MAC, VM1_6, ROCE6, 50000, tc=0x01, fl=0x77777,
                    hlim=64, payload=b"rdma-write-payload!", dest_qp=0x42)
    src = P.parse(pkt)
    exp = P.roce_v6(*path_macs(10), VM1_6, ROCE6, 50000, tc=10 << 2 | 1,
                    fl=0xABCDE, hlim=9, payload=b"rdma-write-payload!",
                    dest_qp=0x42)
    # The ICRC masks tc/fl/hlim, so the builder's fresh ICRC equals the
    # original's: the expected frame must carry the input's ICRC unchanged.
    check("c09 RoCEv2 IPv6 DSCP/flow label/hop limit path", "vsn_vm_ingress",
          pkt, TC_ACT_REDIRECT, exp=exp,
          fields=dict(to_storage_fields(10, ROCE6, 4791, VM1_6, 50000,
                                        tc=10 << 2 | 1, flow_label=0xABCDE,
                                        hlim=9),
                      **{"roce.icrc": src["roce"]["icrc"],
                         "roce.dest_qp": 0x42, "l4.csum": src["l4"]["csum"]}),
          roce=True, cdelta=fwd_delta(len(pkt), path=10, be=6, vm=1))
    # RoCE to an address that is no volume: untouched.
    pkt = P.roce_v4(VM1_MAC, GW_MAC, VM1, "10.4.0.99", 49999)
    check("c09 RoCEv2 to unconfigured address", "vsn_vm_ingress", pkt,
          TC_ACT_OK, cdelta=fwd_delta(len(pkt), reason="not_storage"))
    # UDP 4791 to the NVMe/TCP VIP: volumes are keyed by protocol too.
    pkt = P.roce_v4(VM1_MAC, GW_MAC, VM1, VIP, 49998)
    check("c09 RoCEv2 to the NVMe/TCP VIP", "vsn_vm_ingress", pkt, TC_ACT_OK,
          cdelta=fwd_delta(len(pkt), reason="not_storage"))
    # RoCE replies keep their addresses: the uplink programs count them for
    # the flow's path (its class, ECN CE) and leave them to the kernel.
    tel0 = vsn_json("show", "telemetry")["roce"]
    rep = P.roce_v4(FAB_MAC, UP0_MAC, ROCE4, VM1, 49153, tos=0x03)
    check("c09 RoCEv2 reply on uplink passes (XDP)", "vsn_up_xdp", rep,
          XDP_PASS, cdelta=fwd_delta(len(rep), be=5, vm=1, reason="roce_rx"))
    cnp = P.roce_v4(FAB_MAC, UP0_MAC, ROCE4, VM1, 49153, bth_opcode=0x81)
    check("c09 RoCEv2 CNP on uplink passes (XDP)", "vsn_up_xdp", cnp,
          XDP_PASS, cdelta=fwd_delta(len(cnp), be=5, vm=1, reason="roce_rx"))
    tel1 = vsn_json("show", "telemetry")["roce"]

    def roce_delta(cls):
        a = tel0["paths"].get("8", {}).get(cls, {}).get("packets", 0)
        return tel1["paths"].get("8", {}).get(cls, {}).get("packets", 0) - a
    T.ok(roce_delta("ecn_ce") == 1 and roce_delta("cnp") == 1 and roce_delta("send") == 1,
         "c09: path 8's RoCE counters took the reply (send, ECN CE) and the CNP",
         (tel0, tel1))
    qps = [q for q in tel1["qps"] if q["vm"] == 1 and q["dir"] == "from_storage"]
    T.ok(any(q["dest_qp"] == 0x11 and q["packets"] >= 2 for q in qps),
         "c09: per destination QP counters for the flow from storage", qps)
    c = conn(1, VM1, 49153, proto="udp")
    # No NAT flag and no fabric-side entry: RoCE is only steered.
    T.ok(c and c["backend"] == 5 and c["last_path"] == 8 and
         c["tx_packets"] == 1 and c["flags"] == 0 and not c["reverse"],
         "c09: RoCE connection recorded (backend 5, path 8, no NAT, no "
         "fabric-side entry)", c)


# Every BTH opcode (IBTA vol. 1 9.2.1, RoCEv2 annex A17, memory placement
# extensions) and the class `vsn show telemetry` must count it in: written
# from the specification, not from the datapath's code.
ROCE_OPCODE_CLASS = {}
for _t in (0x00, 0x20, 0x40, 0x60, 0xA0):       # RC, UC, RD, UD, XRC
    for _op, _cls in ([(o, "send") for o in range(0x00, 0x06)] +
                      [(0x16, "send"), (0x17, "send")] +
                      [(o, "rdma_write") for o in range(0x06, 0x0C)] +
                      [(0x1C, "rdma_write")] +
                      [(0x0C, "read_req")] +
                      [(o, "read_resp") for o in range(0x0D, 0x11)] +
                      [(0x11, "ack")] +
                      [(o, "atomic") for o in (0x12, 0x13, 0x14, 0x1D)] +
                      [(o, "other") for o in (0x15, 0x18, 0x19, 0x1A, 0x1B,
                                              0x1E, 0x1F)]):
        ROCE_OPCODE_CLASS[_t | _op] = _cls
ROCE_OPCODE_CLASS.update({0x81: "cnp", 0x80: "other", 0x9F: "other",
                          0xC0: "other", 0xE5: "other"})


@case
def c09c_roce_opcodes():
    """9c: every BTH opcode lands in its class (SEND with invalidate, which
    every NVMe/RDMA response is, among the sends)."""
    tel0 = vsn_json("show", "telemetry")["roce"]["paths"].get("8", {})
    want = {}
    for opc, cls in sorted(ROCE_OPCODE_CLASS.items()):
        rep = P.roce_v4(FAB_MAC, UP0_MAC, ROCE4, VM1, 49153, bth_opcode=opc)
        rv, _ = run("vsn_up_xdp", rep, ctx_for("vsn_up_xdp"))
        if rv != XDP_PASS:
            T.ok(False, "c09c: opcode 0x%02x passes (XDP)" % opc, rv)
        want[cls] = want.get(cls, 0) + 1
    tel1 = vsn_json("show", "telemetry")["roce"]["paths"].get("8", {})
    got = {c: tel1.get(c, {}).get("packets", 0) - tel0.get(c, {}).get("packets", 0)
           for c in set(tel1) | set(tel0)}
    got = {c: v for c, v in got.items() if v}
    T.ok(got == want, "c09c: %d opcodes counted in their classes on path 8 (%s)"
         % (len(ROCE_OPCODE_CLASS), ", ".join("%s %d" % kv for kv in sorted(want.items()))),
         (want, got))
    for opc in (0x16, 0x17):
        rep = P.roce_v4(FAB_MAC, UP0_MAC, ROCE4, VM1, 49153, bth_opcode=opc)
        t0 = vsn_json("show", "telemetry")["roce"]["paths"]["8"]
        run("vsn_up_xdp", rep, ctx_for("vsn_up_xdp"))
        t1 = vsn_json("show", "telemetry")["roce"]["paths"]["8"]
        T.ok(t1["send"]["packets"] - t0["send"]["packets"] == 1,
             "c09c: SEND %s with invalidate (0x%02x, an NVMe/RDMA response) counts as send"
             % ("last" if opc == 0x16 else "only", opc), (t0, t1))


def non_storage_frames(smac, dmac, a, b, a6, b6):
    ns = (Ether(src=smac, dst="33:33:ff:00:00:10")
          / IPv6(src="fe80::1", dst="ff02::1:ff00:10", hlim=255)
          / ICMPv6ND_NS(tgt=b6) / ICMPv6NDOptSrcLLAddr(lladdr=smac))
    return [
        ("TCP dport 80", P.plain(smac, dmac, "tcp", a, b)),
        ("TCP dport 4420 to an address that is no volume",
         tcp(smac, dmac, a, "10.200.0.1", 42000, 4420, flags="S")),
        ("TCP dport 4421 (a backend port, not a volume port)",
         tcp(smac, dmac, a, b, 42000, 4421, flags="S")),
        ("TCP IPv6 dport 4420 to an address that is no volume",
         tcp(smac, dmac, a6, "2001:db8:200::1", 42000, 4420, flags="S")),
        ("UDP dport 53", P.plain(smac, dmac, "udp", a, b)),
        ("UDP IPv6", P.plain(smac, dmac, "udp", a6, b6)),
        ("ARP request", P.plain(smac, dmac, "arp", a, b)),
        ("ICMP echo", P.plain(smac, dmac, "icmp", a, b)),
        ("ICMPv6 echo", P.plain(smac, dmac, "icmp", a6, b6)),
        ("IPv6 neighbour solicitation", bytes(ns)),
        ("LLDP", P.plain(smac, dmac, "lldp")),
    ]


@case
def c10_non_storage():
    """10: everything that is not storage traffic passes byte for byte."""
    for name, pkt in non_storage_frames(VM1_MAC, GW_MAC, VM1, VIP, VM1_6,
                                        VIP6):
        check("c10 VM %s" % name, "vsn_vm_ingress", pkt, TC_ACT_OK,
              cdelta=fwd_delta(len(pkt), reason="not_storage"))
    for name, pkt in non_storage_frames(FAB_MAC, UP0_MAC, BE[1], VM1, BE[3],
                                        VM1_6):
        for prog, ret in (("vsn_up_xdp", XDP_PASS),
                          ("vsn_up_ingress", TC_ACT_OK)):
            check("c10 uplink %s (%s)" % (name, prog), prog, pkt, ret,
                  cdelta=fwd_delta(len(pkt), reason="not_storage"))
    # From a storage port but matching no connection: no_conn.
    pkt = tcp(FAB_MAC, UP0_MAC, BE[1], VM1, 4420, 42999, flags="A")
    for prog, ret in (("vsn_up_xdp", XDP_PASS), ("vsn_up_ingress", TC_ACT_OK)):
        check("c10 reply from port 4420 without connection (%s)" % prog,
              prog, pkt, ret, cdelta=fwd_delta(len(pkt), reason="no_conn"))


# Which reason each malformed shape must be counted under.
UNSUPPORTED = {"qinq_88a8_8100", "qinq_8100_8100", "ipv4_frag_first_mf",
               "ipv4_frag_nonfirst", "ipv4_frag_nonfirst_mf",
               "ipv6_hopbyhop_hdr", "ipv6_fragment_hdr", "ipv6_routing_hdr",
               "ipv6_destopt_hdr", "ipv4_options_ihl6"}


def shape_reason(name):
    return "unsupported" if name in UNSUPPORTED else "malformed"


@case
def c11_malformed():
    """11: every malformed/unsupported shape passes untouched on every hook,
    counted exactly once under the right reason.  The shapes are aimed at
    live connections (VM sport 4420 <-> VIP:4420, replies BE:4421 -> VM:4420)
    so a parser trusting a bad length would find an entry and rewrite."""
    route(1, 1, 1, 1)
    route(1, 2, 3, 1)
    for vm, vip, be in ((VM1, VIP, 1), (VM1_6, VIP6, 3)):
        syn = tcp(VM1_MAC, GW_MAC, vm, vip, 4420, 4420, flags="S")
        check("c11 setup connection %s:4420" % vm, "vsn_vm_ingress", syn,
              TC_ACT_REDIRECT,
              exp=tcp(*path_macs(1), vm, BE[be], 4420, BE_PORT, flags="S"))
    sides = [
        ("vsn_vm_ingress", "tc", TC_ACT_OK,
         P.malformed_shapes(VM1_MAC, GW_MAC, VM1, VIP, VM1_6, VIP6, 4420)),
        ("vsn_up_xdp", "xdp", XDP_PASS,
         P.malformed_shapes(FAB_MAC, UP0_MAC, BE[1], VM1, BE[3], VM1_6,
                            BE_PORT)),
        ("vsn_up_ingress", "tc", TC_ACT_OK,
         P.malformed_shapes(FAB_MAC, UP0_MAC, BE[1], VM1, BE[3], VM1_6,
                            BE_PORT)),
    ]
    for prog, hook, ret, shapes in sides:
        skipped = []
        for name, pkt in shapes:
            if name in P.TEST_RUN_EINVAL[hook]:
                skipped.append(name)
                continue
            before = counters()
            try:
                rv, out = run(prog, pkt, ctx_for(prog))
            except P.ProgRunError as e:
                T.ok(False, "c11 %s %s" % (prog, name), e)
                continue
            got = delta(before, counters())
            want = fwd_delta(len(pkt), reason=shape_reason(name))
            T.ok(rv == ret and out == pkt and got == want,
                 "c11 %s %s: returns %d, unchanged, %s +1" % (
                     prog, name, ret, shape_reason(name)),
                 "retval %d; %s; counters %s" % (
                     rv, bytes_diff(out, pkt) or "unchanged",
                     sorted(got.items())))
        note("c11 %s: skipped (kernel test-run refuses them): %s"
             % (prog, ", ".join(skipped)))


@case
def c13_host_initiator():
    """13: host-initiator flows on the uplink's TC egress: steered to the
    route's path (no NAT); already on the chosen uplink -> TC_ACT_OK."""
    vsn("route", "set", "host", "5", "7", "2")
    gw = "02:00:00:00:99:99"
    syn = tcp(UP0_MAC, gw, HOST_ADDR, BE[7], 43000, 4420, flags="S")
    check("c13 host SYN, route path 2 on up1", "vsn_up_egress", syn,
          TC_ACT_REDIRECT,
          exp=tcp(*path_macs(2), HOST_ADDR, BE[7], 43000, 4420, flags="S"),
          fields=to_storage_fields(2, BE[7], 4420, HOST_ADDR, 43000),
          cdelta=fwd_delta(len(syn), path=2, be=7, vm=0))
    c = conn(0, HOST_ADDR, 43000)
    T.ok(c and c["backend"] == 7 and c["last_path"] == 2 and
         c["flags"] == CONN_FLAGS["host"] and c["reverse"],
         "c13: host connection recorded (backend 7, path 2, host flag, and a "
         "fabric-side entry for observing replies)", c)
    vsn("route", "set", "host", "5", "7", "11")
    pkt = tcp(UP0_MAC, gw, HOST_ADDR, BE[7], 43000, 4420, payload=b"cmd")
    check("c13 host data, route path 11 on up0 itself", "vsn_up_egress", pkt,
          TC_ACT_OK,
          exp=tcp(*path_macs(11), HOST_ADDR, BE[7], 43000, 4420,
                  payload=b"cmd"),
          fields=to_storage_fields(11, BE[7], 4420, HOST_ADDR, 43000),
          cdelta=fwd_delta(len(pkt), path=11, be=7, vm=0))
    # Forwarded (not locally generated) frames are left alone, uncounted.
    check("c13 forwarded frame (ingress_ifindex set)", "vsn_up_egress", pkt,
          TC_ACT_OK, ingress=IFINDEX["vmif"], cdelta={})
    pkt = P.plain(UP0_MAC, gw, "tcp", HOST_ADDR, "10.200.0.1")
    check("c13 host non-storage traffic", "vsn_up_egress", pkt, TC_ACT_OK,
          cdelta=fwd_delta(len(pkt), reason="not_storage"))
    # Host flows are not translated: the reply is observed (counted for
    # its backend) and left untouched to the kernel stack.
    rep = tcp(FAB_MAC, UP0_MAC, BE[7], HOST_ADDR, 4420, 43000, flags="SA")
    check("c13 reply to host flow passes (XDP)", "vsn_up_xdp", rep, XDP_PASS,
          cdelta=fwd_delta(len(rep), be=7, vm=0, reason="host_rx"))
    vsn("route", "set", "host", "5", "7", "2")


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


@case
def c14_reset_rst():
    """14: a packet of a connection marked reset is answered with a TCP RST
    to the initiator (from the address it sent to), the connection is
    forgotten, and the packet counted as reset."""
    route(1, 1, 1, 1)
    route(1, 2, 3, 1)
    # (name, v6, flags, seq, ack, payload, vlan, options, pad_to,
    #  expected RST seq, expected RST ack)
    shapes = [
        ("IPv4 data", False, "PA", 5001, 777, b"n" * 300, None, None, None,
         777, 5301),
        ("IPv4 data, seq wraps", False, "PA", 0xfffffff0, 1234, b"w" * 32,
         None, None, None, 1234, 0x10),
        ("IPv4 FIN", False, "FA", 6000, 4242, b"", None, None, None,
         4242, 6001),
        ("IPv4 SYN|ACK", False, "SA", 7000, 99, b"", None, None, None,
         99, 7001),
        ("IPv4 data without ACK", False, "P", 8000, 555, b"abc", None, None,
         None, 0, 8003),
        ("IPv4 padded pure ACK", False, "A", 9000, 31337, b"", None, None, 60,
         31337, 9000),
        ("IPv4 tagged, options, FIN with data", False, "FPA", 100, 200,
         b"x" * 10, 5, [("NOP", None), ("NOP", None),
                        ("Timestamp", (1, 2))], None, 200, 111),
        ("IPv6 data", True, "PA", 5001, 777, b"six" * 100, None, None, None,
         777, 5301),
        ("IPv6 FIN", True, "FA", 3000, 4000, b"", None, None, None, 4000,
         3001),
        ("IPv6 tagged SYN|ACK", True, "SA", 1, 2, b"", 9, None, None, 2, 2),
    ]
    for i, (name, v6, fl, seq, ack, pay, vlan, opts, pad, eseq, eack) in \
            enumerate(shapes):
        vm, vip, be = (VM1_6, VIP6, 3) if v6 else (VM1, VIP, 1)
        sport = 42000 + i
        cid = reset_setup("c14 %s" % name, vm, vip, sport, be, 1)
        pkt = tcp(VM1_MAC, GW_MAC, vm, vip, sport, 4420, flags=fl, seq=seq,
                  ack=ack, payload=pay, vlan=vlan, options=opts, pad_to=pad)
        exp = rst_frame(GW_MAC, VM1_MAC, vip, vm, 4420, sport, eseq, eack,
                        vlan=vlan)
        out = check("c14 %s -> RST" % name, "vsn_vm_ingress", pkt,
                    TC_ACT_REDIRECT, exp=exp,
                    fields=rst_fields(GW_MAC, VM1_MAC, vip, vm, 4420, sport,
                                      eseq, eack, v6),
                    cdelta=fwd_delta(len(pkt), reason="reset"))
        T.ok(out is not None and len(out) == len(exp) ==
             14 + (4 if vlan else 0) + (40 if v6 else 20) + 20,
             "c14 %s: RST trimmed to its headers (%d bytes)"
             % (name, len(exp)), out and len(out))
        gone("c14 %s" % name, cid)
    # A RST from the initiator itself is not answered: dropped, forgotten.
    for v6 in (False, True):
        vm, vip, be = (VM1_6, VIP6, 3) if v6 else (VM1, VIP, 1)
        fam = "IPv6" if v6 else "IPv4"
        cid = reset_setup("c14 %s RST input" % fam, vm, vip, 42100, be, 1)
        pkt = tcp(VM1_MAC, GW_MAC, vm, vip, 42100, 4420, flags="RA",
                  seq=10, ack=20)
        check("c14 %s RST on a reset connection is not answered" % fam,
              "vsn_vm_ingress", pkt, TC_ACT_SHOT,
              cdelta=fwd_delta(len(pkt), reason="reset"))
        gone("c14 %s RST input" % fam, cid)
    # The SNAT case: the fabric-side entry is keyed by the SNAT address.
    route(1, 1, 1, 6)
    cid = reset_setup("c14 SNAT", VM1, VIP, 42200, 1, 6)
    pkt = tcp(VM1_MAC, GW_MAC, VM1, VIP, 42200, 4420, seq=50, ack=60,
              payload=b"q")
    check("c14 SNAT connection data -> RST from the VIP", "vsn_vm_ingress",
          pkt, TC_ACT_REDIRECT,
          exp=rst_frame(GW_MAC, VM1_MAC, VIP, VM1, 4420, 42200, 60, 51),
          cdelta=fwd_delta(len(pkt), reason="reset"))
    gone("c14 SNAT", cid)
    route(1, 1, 1, 1)
    # Host mode: the RST goes to the local stack, MACs swapped.
    vsn("route", "set", "host", "5", "7", "2")
    gw = "02:00:00:00:99:99"
    cid = reset_setup("c14 host", HOST_ADDR, BE[7], 43100, 7, 2, vm_id=0,
                      mac=UP0_MAC, gw=gw)
    pkt = tcp(UP0_MAC, gw, HOST_ADDR, BE[7], 43100, 4420, seq=1, ack=2,
              payload=b"host")
    check("c14 host flow data -> RST", "vsn_up_egress", pkt, TC_ACT_REDIRECT,
          exp=rst_frame(gw, UP0_MAC, BE[7], HOST_ADDR, 4420, 43100, 2, 5),
          cdelta=fwd_delta(len(pkt), reason="reset"))
    gone("c14 host", cid)


@case
def c14b_reset_syn_roce():
    """14b: a SYN on a reset tuple opens a fresh connection; RoCEv2 of a
    reset connection is dropped and its entry forgotten."""
    route(1, 1, 1, 1)
    cid = reset_setup("c14b SYN", VM1, VIP, 42300, 1, 1)
    syn = tcp(VM1_MAC, GW_MAC, VM1, VIP, 42300, 4420, flags="S", seq=77)
    check("c14b SYN on a reset tuple is forwarded", "vsn_vm_ingress", syn,
          TC_ACT_REDIRECT,
          exp=tcp(*path_macs(1), VM1, BE[1], 42300, BE_PORT, flags="S",
                  seq=77),
          cdelta=fwd_delta(len(syn), path=1, be=1, vm=1))
    c = conn(1, VM1, 42300)
    T.ok(c and not c["flags"] & CONN_RESET and c["conn_id"] != cid and
         c["reverse"] and len(conn_id_entries(c["conn_id"])) == 2,
         "c14b: a fresh connection (new id, not reset, both entries)", c)
    pkt = P.roce_v4(VM1_MAC, GW_MAC, VM1, ROCE4, 49300, dest_qp=0x33)
    rv, _ = run("vsn_vm_ingress", pkt, ctx_for("vsn_vm_ingress"))
    c = conn(1, VM1, 49300, proto="udp")
    n = mark_reset(c["conn_id"]) if c else 0
    T.ok(rv == TC_ACT_REDIRECT and n >= 1, "c14b: RoCEv2 flow marked reset",
         (rv, c))
    check("c14b RoCEv2 of a reset connection dropped", "vsn_vm_ingress", pkt,
          TC_ACT_SHOT, cdelta=fwd_delta(len(pkt), reason="reset"))
    T.ok(conn(1, VM1, 49300, proto="udp") is None,
         "c14b: the RoCEv2 flow's entry deleted")


def path_live(pid):
    """struct vsn_path_live of path pid: {await, rx, tx} (ns)."""
    r = sh("bpftool", "-j", "map", "lookup", "pinned", PIN + "/vsn_path_live",
           "key", *hexargs(struct.pack("=I", pid)))
    v = bytes(int(x, 16) for x in json.loads(r.stdout)["value"])
    return dict(zip(("await", "rx", "tx"), struct.unpack_from("=3Q", v)))


def path_live_clear(pid):
    sh("bpftool", "map", "update", "pinned", PIN + "/vsn_path_live", "key",
       *hexargs(struct.pack("=I", pid)), "value", *hexargs(bytes(32)))


def timed(prog, pkt, ifname=None):
    """Run pkt; returns (retval, t0, t1) with CLOCK_MONOTONIC_COARSE around
    it: the clock the datapath stamps vsn_path_live with
    (bpf_ktime_get_coarse_ns reads the same timekeeper value)."""
    coarse = getattr(time, "CLOCK_MONOTONIC_COARSE", 6)  # linux/time.h
    t0 = time.clock_gettime_ns(coarse)
    rv, _ = run(prog, pkt, ctx_for(prog, ifname))
    return rv, t0, time.clock_gettime_ns(coarse)


@case
def c15_path_live():
    """15: vsn_path_live: a request-bearing packet towards storage stamps
    await_ns (a pure ACK does not), anything back on the path clears it;
    tx_ns / rx_ns stamp the directions; the fabric-side entry follows the
    connection's path so replies clear the path in use."""
    P5, P2 = 5, 2
    route(1, 1, 1, P5)
    for pid in (P5, P2):
        path_live_clear(pid)
    s = 42400
    rv, t0, t1 = timed("vsn_vm_ingress",
                       tcp(VM1_MAC, GW_MAC, VM1, VIP, s, 4420, flags="S"))
    pl = path_live(P5)
    T.ok(rv == TC_ACT_REDIRECT and t0 <= pl["await"] <= t1 and
         t0 <= pl["tx"] <= t1 and pl["rx"] == 0,
         "c15: SYN stamps await and tx of its path", (rv, t0, t1, pl))
    raw = conns_raw()
    fab = [v for k, v in raw.items() if k[0] == 1 and k[6] == s]
    T.ok(len(fab) == 1 and fab[0]["last_path"] == P5,
         "c15: the new fabric-side entry knows its path (%d)" % P5, fab)
    rep = tcp(FAB_MAC, UP0_MAC, BE[1], VM1, BE_PORT, s, flags="SA")
    rv, t0, t1 = timed("vsn_up_xdp", rep)
    pl = path_live(P5)
    T.ok(rv == XDP_REDIRECT and pl["await"] == 0 and t0 <= pl["rx"] <= t1,
         "c15: reply (XDP) clears await and stamps rx", (rv, pl))
    path_live_clear(P5)
    rv, t0, t1 = timed("vsn_vm_ingress",
                       tcp(VM1_MAC, GW_MAC, VM1, VIP, s, 4420, flags="A"))
    pl = path_live(P5)
    T.ok(rv == TC_ACT_REDIRECT and pl["await"] == 0 and t0 <= pl["tx"] <= t1,
         "c15: a pure ACK stamps tx but not await", (rv, pl))
    rv, t0, t1 = timed("vsn_vm_ingress", tcp(VM1_MAC, GW_MAC, VM1, VIP, s,
                                             4420, payload=b"cmd"))
    first = path_live(P5)
    T.ok(rv == TC_ACT_REDIRECT and t0 <= first["await"] <= t1,
         "c15: a data packet stamps await", (rv, t0, t1, first))
    rv, _, _ = timed("vsn_vm_ingress", tcp(VM1_MAC, GW_MAC, VM1, VIP, s,
                                           4420, payload=b"cmd2"))
    T.ok(path_live(P5)["await"] == first["await"],
         "c15: a second request keeps the first await stamp")
    rv, t0, t1 = timed("vsn_up_ingress", tcp(FAB_MAC, UP0_MAC, BE[1], VM1,
                                             BE_PORT, s, flags="A"))
    pl = path_live(P5)
    T.ok(rv == TC_ACT_REDIRECT and pl["await"] == 0 and t0 <= pl["rx"] <= t1,
         "c15: a pure ACK back (TC) clears await and stamps rx", (rv, pl))
    # The connection moves to path 2: the fabric-side entry follows, and a
    # reply clears path 2's await, not path 5's.
    route(1, 1, 1, P2)
    for pid in (P5, P2):
        path_live_clear(pid)
    timed("vsn_vm_ingress", tcp(VM1_MAC, GW_MAC, VM1, VIP, s, 4420,
                                payload=b"moved"))
    raw = conns_raw()
    fab = [v for k, v in raw.items() if k[0] == 1 and k[6] == s]
    T.ok(len(fab) == 1 and fab[0]["last_path"] == P2,
         "c15: after a route change the fabric-side entry's path is %d" % P2,
         fab)
    path_live_clear(P5)
    timed("vsn_vm_ingress", tcp(VM1_MAC, GW_MAC, VM1, VIP, s, 4420,
                                payload=b"again"))
    before5 = path_live(P5)
    timed("vsn_up_xdp", rep)
    p2, p5 = path_live(P2), path_live(P5)
    T.ok(before5["await"] == 0 and p2["await"] == 0 and p2["rx"] > 0 and
         p5["rx"] == 0,
         "c15: the reply stamps path %d (in use), not path %d" % (P2, P5),
         (p2, p5))
    route(1, 1, 1, 1)
    # Host RX and RoCEv2 RX clear their paths too; RoCE always stamps await.
    vsn("route", "set", "host", "5", "7", "2")
    path_live_clear(P2)
    timed("vsn_up_egress", tcp(UP0_MAC, "02:00:00:00:99:99", HOST_ADDR,
                               BE[7], 43200, 4420, flags="S"))
    a = path_live(P2)["await"]
    rv, t0, t1 = timed("vsn_up_xdp", tcp(FAB_MAC, UP0_MAC, BE[7], HOST_ADDR,
                                         4420, 43200, flags="SA"))
    pl = path_live(P2)
    T.ok(a and rv == XDP_PASS and pl["await"] == 0 and t0 <= pl["rx"] <= t1,
         "c15: host flow: SYN stamps await, host RX clears it", (a, rv, pl))
    path_live_clear(8)
    rv, t0, t1 = timed("vsn_vm_ingress", P.roce_v4(VM1_MAC, GW_MAC, VM1,
                                                   ROCE4, 49301,
                                                   bth_opcode=0x11))
    a = path_live(8)["await"]
    rv2, t2, t3 = timed("vsn_up_xdp", P.roce_v4(FAB_MAC, UP0_MAC, ROCE4, VM1,
                                               49301))
    pl = path_live(8)
    T.ok(rv == TC_ACT_REDIRECT and t0 <= a <= t1 and rv2 == XDP_PASS and
         pl["await"] == 0 and t2 <= pl["rx"] <= t3,
         "c15: RoCEv2 (even an ACK) stamps await, RoCE RX clears it",
         (rv, a, rv2, pl))
    # A passed packet stamps nothing.
    path_live_clear(1)
    timed("vsn_vm_ingress", P.plain(VM1_MAC, GW_MAC, "tcp", VM1, VIP))
    T.ok(path_live(1) == {"await": 0, "rx": 0, "tx": 0},
         "c15: a non-storage packet leaves path 1's entry alone")


@case
def c15b_fabric_path_snat_clash():
    """15b: the fabric-side entry of a connection whose SNAT port differs
    from the VM's follows a path change (found by the SNAT port), and the
    other VM's connection with the VM's port keeps its own path."""
    route(1, 1, 1, 6)
    route(2, 6, 1, 6)
    sport = 42500
    for vm, mac, ifn in ((VM1, VM1_MAC, "vmif"), (VM2, VM2_MAC, "vmif6")):
        run("vsn_vm_ingress", tcp(mac, GW_MAC, vm, VIP, sport, 4420,
                                  flags="S"), ctx_for("vsn_vm_ingress", ifn))
    c2 = conn(2, VM2, sport)
    route(2, 6, 1, 2)
    rv, _ = run("vsn_vm_ingress", tcp(VM2_MAC, GW_MAC, VM2, VIP, sport, 4420,
                                      payload=b"m"),
                ctx_for("vsn_vm_ingress", "vmif6"))
    raw = conns_raw()
    fab = {k[6]: v["last_path"] for k, v in raw.items()
           if k[0] == 1 and k[5] == canon(SNAT4) and
           v["conn_id"] in (c2 and c2["conn_id"],
                            conn_id_of(1, VM1, sport))}
    port2 = None
    for k, v in raw.items():
        if k[0] == 1 and c2 and v["conn_id"] == c2["conn_id"]:
            port2 = k[6]
    T.ok(rv == TC_ACT_REDIRECT and port2 not in (None, sport) and
         fab.get(port2) == 2 and fab.get(sport) == 6,
         "c15b: vm2's fabric-side entry (SNAT port %s) moved to path 2, "
         "vm1's (port %d) stays on path 6" % (port2, sport), (rv, fab))
    route(1, 1, 1, 1)
    route(2, 6, 1, 1)


def vm_if_set(ifname, vm_id, tc_prio):
    sh("bpftool", "map", "update", "pinned", PIN + "/vsn_vm_if", "key",
       *hexargs(struct.pack("=I", IFINDEX[ifname])), "value",
       *hexargs(struct.pack("=II", vm_id, tc_prio)))


def prio_run(prog, pkt, prio):
    ctx = P.skb_ctx(IFINDEX["vmif"], priority=prio)
    rv, _, _, ctx_out = P.prog_run(PROG[prog], pkt, ctx=ctx, netns=NS_HV)
    return rv, P.skb_ctx_fields(ctx_out)["priority"] if ctx_out else None


@case
def c16_tc_prio():
    """16: a VM's tc_prio becomes the skb priority of its steered packets
    (the uplink qdisc's class), and of nothing else."""
    route(1, 1, 1, 1)
    data = tcp(VM1_MAC, GW_MAC, VM1, VIP, 42600, 4420, payload=b"prio")
    other = P.plain(VM1_MAC, GW_MAC, "tcp", VM1, VIP)
    try:
        vm_if_set("vmif", 1, 0x10002)
        rv, pr = prio_run("vsn_vm_ingress", data, 7)
        T.ok(rv == TC_ACT_REDIRECT and pr == 0x10002,
             "c16: steered packet gets the VM's tc_prio 0x10002", (rv, pr))
        rv, pr = prio_run("vsn_vm_ingress", other, 7)
        T.ok(rv == TC_ACT_OK and pr == 7,
             "c16: a passed packet keeps its priority", (rv, pr))
        cid = reset_setup("c16", VM1, VIP, 42601, 1, 1)
        rv, pr = prio_run("vsn_vm_ingress", tcp(
            VM1_MAC, GW_MAC, VM1, VIP, 42601, 4420, payload=b"r"), 7)
        T.ok(rv == TC_ACT_REDIRECT and pr == 7 and cid is not None,
             "c16: the RST back to the VM keeps its priority", (rv, pr))
        vm_if_set("vmif", 1, 0)
        rv, pr = prio_run("vsn_vm_ingress", data, 7)
        T.ok(rv == TC_ACT_REDIRECT and pr == 7,
             "c16: tc_prio 0 leaves the priority alone", (rv, pr))
    finally:
        vm_if_set("vmif", 1, 0)


@case
def c99_cli_connections_json():
    """`vsn -j show connections` must be valid JSON agreeing with the map in
    every state the cases above looked at (conn() checks it each time)."""
    T.ok(CLI_JSON["states"] > 0 and not CLI_JSON["bad"],
         "c99: vsn -j show connections valid and matching the map in all "
         "%d states checked" % CLI_JSON["states"],
         "%d bad states; first: %s" % (len(CLI_JSON["bad"]),
                                       (CLI_JSON["bad"] or [""])[0]))


# =============================================================================
def main():
    t0 = time.time()
    if os.geteuid() != 0:
        print("not ok 1 - must run as root")
        return 1
    atexit.register(teardown)
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))
    signal.signal(signal.SIGINT, lambda *a: sys.exit(130))
    try:
        setup()
        apply(config_yaml(False))
    except Exception as e:   # noqa: BLE001
        T.ok(False, "setup: topology, vsn attach, vsn apply", e)
        return 1
    note("setup done: ifindex %s, up0 MAC %s" % (IFINDEX, UP0_MAC))
    for fn in CASES:
        try:
            fn()
        except Exception:   # noqa: BLE001
            T.ok(False, "%s completed" % fn.__name__, traceback.format_exc())
    note("%d assertions, %d failed, %d cases, %.1fs"
         % (T.n, T.failed, len(CASES), time.time() - t0))
    print("1..%d" % T.n)
    return 1 if T.failed else 0


if __name__ == "__main__":
    try:
        rc = main()
    finally:
        teardown()
    sys.exit(rc)
