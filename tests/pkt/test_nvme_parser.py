#!/usr/bin/python3
"""NVMe/TCP parser and telemetry tests of the vsn datapath (BPF_PROG_TEST_RUN).

Run as root from the repository root:
    /usr/bin/python3 tests/pkt/test_nvme_parser.py [CASE-SUBSTRING...]

Topology: netns vsnq2-hv holding vmif and up0 (veth peers in vsnq2-peer),
vsn attached there with pins under /sys/fs/bpf/vsnq2.  NVMe/TCP byte
streams come from nvme_pdus.py (written from the NVMe/TCP specification,
independently of the project), are cut into TCP segments in many ways and
fed packet by packet, in order, through the pinned programs: initiator
(VM) -> VIP:4420 through vsn_vm_ingress (skb ifindex = vmif), target ->
VM through vsn_up_xdp (ingress ifindex = up0).  Every connection starts
with SYN / SYN-ACK / ACK so it exists and sequence tracking starts.

What is checked (the contract of include/vsn_telemetry.h):
  * counters: vsn_tel_stats (per-CPU array, read raw with bpftool and
    summed over CPUs) as exact deltas per case;
  * events: the vsn_events ring buffer, read directly here (mmap of the
    pinned map, no project code), compared with the commands/responses the
    generator put in the stream: every field, no wrong event ever;
  * the CLI (`vsn -j show telemetry`, `vsn -j events`) against the same;
  * every packet is still forwarded with its TCP payload untouched.

Prints TAP ("ok N - ...", "not ok N - ...", diagnostics "# ...").
Exits non-zero on any failure.  Cleans up on exit.
"""

import atexit
import ctypes
import json
import math
import mmap
import os
import re
import signal
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
import nvme_pdus as N  # noqa: E402

PFX = "vsnq2"
NS_HV, NS_PEER = PFX + "-hv", PFX + "-peer"
PIN = "/sys/fs/bpf/" + PFX
VSN = os.path.join(ROOT, "build", "vsn")
PROG = {n: os.path.join(PIN, n) for n in ("vsn_vm_ingress", "vsn_up_xdp")}
TC_ACT_REDIRECT, XDP_REDIRECT = 7, 4

VM_MAC, GW_MAC, FAB_MAC = "52:54:00:00:01:01", "02:00:00:00:0a:01", \
    "02:fa:b0:00:00:01"
VM4, VIP4, BE4 = "10.0.0.2", "192.168.100.10", "10.3.1.2"
VM6, VIP6, BE6 = "2001:db8::2", "2001:db8:100::10", "2001:db8:3:1::2"
BE_PORT = 4421
VM_ID, VOL4, VOL6, BE4_ID, BE6_ID, PATH_ID = 1, 1, 2, 1, 2, 1

CONFIG = """\
vms:
  - {name: vm1, id: 1, interface: vmif}
uplinks:
  - {interface: up0}
paths:
  - {id: 1, uplink: up0, next_hop: "02:00:00:00:b1:01", source_mac: "02:00:00:00:a1:01"}
backends:
  - {id: 1, address: %s, port: %d, paths: [1]}
  - {id: 2, address: "%s", port: %d, paths: [1]}
volumes:
  - {id: 1, vm: vm1, address: %s, port: 4420, backends: [1]}
  - {id: 2, vm: vm1, address: "%s", port: 4420, backends: [2]}
routes:
""" % (BE4, BE_PORT, BE6, BE_PORT, VIP4, VIP6)

# enum vsn_tel_stat order (include/vsn_telemetry.h) and the CLI's JSON keys.
STATS = ["pdus", "cmds", "resps", "admin", "matched", "unmatched", "resyncs",
         "capped", "events_sent", "events_dropped", "events_sampled",
         "read_cmds", "write_cmds", "read_blocks", "write_blocks", "errors",
         "h2c_data_bytes", "c2h_data_bytes", "errors_generic",
         "errors_cmd_specific", "errors_media", "errors_path", "errors_other",
         "seq_cmds"]  # enum vsn_tel_stat, in order
EV_TYPES = {1: "cmd", 2: "resp", 3: "conn_open", 4: "conn_close",
            5: "resync"}
# struct vsn_event (72 bytes, native endian)
EV_FMT = "=QIIIIIIHHBBHIIQQII"
EV_FIELDS = ["ts_ns", "type", "conn_id", "vm", "volume", "backend", "path",
             "qid", "cid", "opcode", "dir", "status", "nsid", "nlb", "slba",
             "latency_ns", "flags", "pad"]
EV_SIZE = struct.calcsize(EV_FMT)
EVF_SEQ = 1                    # enum vsn_event_flags
LAT_BUCKETS = 32


# --- TAP ---------------------------------------------------------------------
T = Tap()


# --- environment -------------------------------------------------------------
def vsn(*args, check=True, timeout=60):
    return sh(VSN, "--pin-dir", PIN, *args, check=check, ns=NS_HV,
              timeout=timeout)


IFINDEX = {}
UP0_MAC = None
RING = None


def teardown():
    global RING
    if RING:
        RING.close()
        RING = None
    remove_env(VSN, PIN, NS_HV, (NS_HV, NS_PEER))


def setup():
    global UP0_MAC
    teardown()
    for ns in (NS_HV, NS_PEER):
        sh("ip", "netns", "add", ns)
        sh("sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1",
           "net.ipv6.conf.default.disable_ipv6=1", ns=ns)
        sh("ip", "link", "set", "lo", "up", ns=ns)
    for hv, peer in (("vmif", "vm0"), ("up0", "f0")):
        sh("ip", "link", "add", hv, "netns", NS_HV, "type", "veth", "peer",
           "name", peer, "netns", NS_PEER)
        sh("ip", "link", "set", hv, "up", ns=NS_HV)
        sh("ip", "link", "set", peer, "up", ns=NS_PEER)
    for link in json.loads(sh("ip", "-j", "link", "show", ns=NS_HV).stdout):
        IFINDEX[link["ifname"]] = link["ifindex"]
        if link["ifname"] == "up0":
            UP0_MAC = link["address"]
    vsn("attach", "--vm", "vmif", "--uplink", "up0")
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", prefix="vsnq2-",
                                     delete=False) as f:
        f.write(CONFIG)
    try:
        vsn("apply", f.name)
    finally:
        os.unlink(f.name)
    for path in PROG.values():
        if not os.path.exists(path):
            raise RuntimeError("program %s not pinned" % path)


# --- bpf(2) through ctypes: the ring buffer, read without project code ------
_libc = ctypes.CDLL(None, use_errno=True)
_SYS_BPF = {"x86_64": 321, "aarch64": 280}.get(os.uname().machine, 321)
BPF_MAP_GET_FD_BY_ID, BPF_OBJ_GET, BPF_OBJ_GET_INFO_BY_FD = 14, 7, 15


def _bpf(cmd, attr):
    buf = ctypes.create_string_buffer(bytes(attr), 128)
    r = _libc.syscall(_SYS_BPF, cmd, buf, 128)
    if r < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return r, buf.raw


def bpf_obj_get(path):
    p = ctypes.create_string_buffer(path.encode())
    return _bpf(BPF_OBJ_GET, struct.pack("=QII", ctypes.addressof(p), 0, 0))[0]


def bpf_map_fd_by_id(map_id):
    return _bpf(BPF_MAP_GET_FD_BY_ID, struct.pack("=III", map_id, 0, 0))[0]


def bpf_map_info(fd):
    info = ctypes.create_string_buffer(80)
    _bpf(BPF_OBJ_GET_INFO_BY_FD,
         struct.pack("=IIQ", fd, 80, ctypes.addressof(info)))
    t, mid, ks, vs, me = struct.unpack_from("=5I", info.raw, 0)
    name = info.raw[24:40].split(b"\0")[0].decode()
    return dict(type=t, id=mid, key_size=ks, value_size=vs, max_entries=me,
                name=name)


def prog_map_ids(name):
    """Map ids used by our own pinned program (distinguishes our maps from
    other vsn instances' maps of the same name)."""
    r = sh("bpftool", "-j", "prog", "show", "pinned", PROG[name], check=False)
    try:
        return json.loads(r.stdout).get("map_ids", [])
    except ValueError:
        return []


def our_map(name):
    """('pinned', path) or ('id', N) for one of our maps, or None."""
    path = os.path.join(PIN, name)
    if os.path.exists(path):
        return ("pinned", path)
    for mid in prog_map_ids("vsn_vm_ingress") + prog_map_ids("vsn_up_xdp"):
        fd = bpf_map_fd_by_id(mid)
        try:
            if bpf_map_info(fd)["name"] == name[:15]:
                return ("id", str(mid))
        finally:
            os.close(fd)
    return None


BPF_MAP_TYPE_RINGBUF = 27
RB_BUSY, RB_DISCARD, RB_HDR = 1 << 31, 1 << 30, 8


class Ring:
    """Consumer of a BPF ring buffer map through mmap (the kernel ABI:
    consumer page rw at offset 0, producer page + twice-mapped data ro at
    offset PAGE_SIZE; records: le32 len with BUSY/DISCARD bits, le32
    pg_off, then the sample, 8-byte aligned)."""

    def __init__(self, where):
        kind, val = where
        self.fd = bpf_obj_get(val) if kind == "pinned" else \
            bpf_map_fd_by_id(int(val))
        info = bpf_map_info(self.fd)
        if info["type"] != BPF_MAP_TYPE_RINGBUF:
            raise RuntimeError("vsn_events is map type %d, not a ring buffer"
                               % info["type"])
        self.size = info["max_entries"]
        self.mask = self.size - 1
        pg = mmap.PAGESIZE
        self.cons = mmap.mmap(self.fd, pg, mmap.MAP_SHARED,
                              mmap.PROT_READ | mmap.PROT_WRITE, offset=0)
        self.prod = mmap.mmap(self.fd, pg + 2 * self.size, mmap.MAP_SHARED,
                              mmap.PROT_READ, offset=pg)
        self.pg = pg

    def poll(self):
        """All complete records now in the ring, consumed.  [bytes]"""
        out = []
        cpos = struct.unpack_from("=Q", self.cons, 0)[0]
        ppos = struct.unpack_from("=Q", self.prod, 0)[0]
        while cpos < ppos:
            off = self.pg + (cpos & self.mask)
            ln = struct.unpack_from("=I", self.prod, off)[0]
            if ln & RB_BUSY:
                break
            real = ln & ~(RB_BUSY | RB_DISCARD)
            if not ln & RB_DISCARD:
                out.append(bytes(self.prod[off + RB_HDR:off + RB_HDR + real]))
            cpos += (real + RB_HDR + 7) & ~7
            struct.pack_into("=Q", self.cons, 0, cpos)
        return out

    def close(self):
        for m in (self.cons, self.prod):
            m.close()
        os.close(self.fd)


def decode_event(b):
    if len(b) < EV_SIZE:
        return {"type": "short(%d bytes)" % len(b)}
    d = dict(zip(EV_FIELDS, struct.unpack_from(EV_FMT, b, 0)))
    d["type"] = EV_TYPES.get(d["type"], d["type"])
    return d


def events():
    """Decoded events since the last call (drains the ring)."""
    if RING is None:
        return []
    return [decode_event(b) for b in RING.poll()]


# --- counters -----------------------------------------------------------------
def _num(v):
    if isinstance(v, list):
        return int.from_bytes(bytes(int(x, 16) for x in v), sys.byteorder)
    if isinstance(v, str):
        return int(v, 0)
    return int(v)


def map_dump(name):
    w = our_map(name)
    if w is None:
        raise RuntimeError("map %s not found (not pinned, not used by our "
                           "programs)" % name)
    return json.loads(sh("bpftool", "-j", "map", "dump", w[0], w[1]).stdout)


def percpu_sums(name):
    """{index: sum over CPUs} of a per-CPU array of __u64, read raw."""
    out = {}
    for e in map_dump(name):
        k = _num(e["key"])
        if "values" in e:
            out[k] = sum(_num(v["value"]) for v in e["values"])
        elif "formatted" in e:
            out[k] = sum(_num(v["value"]) for v in e["formatted"]["values"])
        else:
            out[k] = _num(e["value"])
    return out


def stats():
    s = percpu_sums("vsn_tel_stats")
    return {n: s.get(i, 0) for i, n in enumerate(STATS)}


def sdelta(a, b):
    return {k: b[k] - a[k] for k in STATS}


TEL_CFG = None


def set_tel_cfg(enabled, sample_every=0, max_per_sec=0):
    w = our_map("vsn_tel_cfg")
    v = struct.pack("=4I", enabled, sample_every, max_per_sec, 0)
    sh("bpftool", "map", "update", w[0], w[1], "key", *["0"] * 4,
       "value", *[str(x) for x in v])


def get_tel_cfg():
    e = map_dump("vsn_tel_cfg")[0]
    v = e.get("value")
    if isinstance(v, list) and v and isinstance(v[0], str):
        raw = bytes(int(x, 16) for x in v)
        return dict(zip(("enabled", "sample_every", "max_per_sec"),
                        struct.unpack_from("=3I", raw)))
    f = e.get("formatted", {}).get("value", v)
    return {k: f[k] for k in ("enabled", "sample_every", "max_per_sec")}


# --- feeding packets -------------------------------------------------------------
FEED_ERR = []


def run_pkt(d, frame):
    if d == "i2t":
        prog, ctx, want = "vsn_vm_ingress", P.skb_ctx(IFINDEX["vmif"]), \
            TC_ACT_REDIRECT
    else:
        prog, ctx, want = "vsn_up_xdp", P.xdp_ctx(IFINDEX["up0"]), \
            XDP_REDIRECT
    try:
        rv, out, _, _ = P.prog_run(PROG[prog], frame, ctx=ctx, netns=NS_HV)
    except P.ProgRunError as e:
        FEED_ERR.append("%s: %s (frame %d bytes)" % (prog, e.error,
                                                     len(frame)))
        return
    if rv != want:
        FEED_ERR.append("%s returned %d, expected %d" % (prog, rv, want))
        return
    try:
        pi, po = P.parse(frame), P.parse(out)
        if pi["payload"] != po["payload"] or \
                pi["l4"]["seq"] != po["l4"]["seq"]:
            FEED_ERR.append("%s changed the TCP payload/seq" % prog)
    except (P.MalformedPacket, KeyError, TypeError) as e:
        FEED_ERR.append("%s output unparsable: %r" % (prog, e))


def feed(frames):
    for d, f in frames:
        run_pkt(d, f)
    return len(frames)


_sports = iter(range(40100, 60000))


class Conn:
    """One NVMe/TCP connection of vm1 to a volume (v4 or v6)."""

    def __init__(self, v6=False, digests=False, isn_i=None, isn_t=None):
        self.sport = next(_sports)
        self.v6 = v6
        vm, vip, be = (VM6, VIP6, BE6) if v6 else (VM4, VIP4, BE4)
        self.volume, self.backend = (VOL6, BE6_ID) if v6 else (VOL4, BE4_ID)
        ini = N.Endpoint(VM_MAC, vm, self.sport, GW_MAC, vip, 4420)
        tgt = N.Endpoint(FAB_MAC, be, BE_PORT, UP0_MAC, vm, self.sport)
        # Sequence numbers near the wrap point for some connections.
        self.flow = N.TcpFlow(
            ini, tgt,
            isn_i=isn_i if isn_i is not None else (self.sport * 7919) << 12,
            isn_t=isn_t if isn_t is not None else 0xFFFFF000 + self.sport % 97)
        self.dg = dict(hdgst=digests, ddgst=digests)
        self.digests = digests
        self.qid = None

    def open(self):
        return feed(self.flow.handshake())

    def nvme_init(self, qid, connect=True):
        """ICReq / ICResp / Connect(qid) / its response, one per segment.
        Returns the number of PDUs."""
        fl = self.flow
        n = feed(fl.send("i2t", [(0, N.icreq(hdgst_enable=self.digests,
                                              ddgst_enable=self.digests))]))
        n += feed(fl.send("t2i", [(0, N.icresp(hdgst_enable=self.digests,
                                                ddgst_enable=self.digests))]))
        if not connect:
            return 2
        self.qid = qid
        feed(fl.send("i2t", [(0, N.connect_cmd(0x0C00 + qid, qid,
                                                **self.dg))]))
        feed(fl.send("t2i", [(0, N.capsule_resp(0x0C00 + qid,
                                                 sqid=qid, **self.dg))]))
        return 4

    def send(self, d, segs, skip=()):
        return feed(self.flow.send(d, segs, skip=skip))


# --- expectations ----------------------------------------------------------------
def exp_cmd(pdu_bytes, qid, must=True):
    f = N.header_fields(pdu_bytes)
    nlb = f["nlb0"] + 1 if f["opcode"] in (N.OP_READ, N.OP_WRITE) else 0
    return dict(type="cmd", opcode=f["opcode"], cid=f["cid"], nsid=f["nsid"],
                slba=f["slba"], nlb=nlb, qid=qid, must=must)


def exp_resp(pdu_bytes, qid, matched, must=True):
    f = N.header_fields(pdu_bytes)
    return dict(type="resp", cid=f["cid"], status=f["status"], qid=qid,
                matched=matched, must=must)


STATUS_CONV = {"seen": None}   # "raw" (le16 at +22) or "sf" (raw >> 1)


def ev_matches(g, e, conn):
    """Does got event g describe expected e (of Conn conn)?  [problems]"""
    bad = []
    if g.get("type") != e["type"]:
        return ["type %s" % g.get("type")]
    want = dict(vm=VM_ID, volume=conn.volume, backend=conn.backend,
                path=PATH_ID, qid=e["qid"])
    if e["type"] == "resp" and not e["matched"] and g.get("path") == 0:
        # The datapath takes a response's path from its command: without
        # one the path is unknown (0).  The connection's path is fine too.
        want["path"] = 0
    if e["type"] == "cmd":
        want.update(opcode=e["opcode"], cid=e["cid"], nsid=e["nsid"],
                    slba=e["slba"], nlb=e["nlb"], dir=0)
        if "seq" in e:
            if bool(g.get("flags", 0) & EVF_SEQ) != e["seq"]:
                bad.append("sequential mark %s (want %s)"
                           % (bool(g.get("flags", 0) & EVF_SEQ), e["seq"]))
    else:
        want.update(cid=e["cid"], dir=1)
    for k, v in want.items():
        if g.get(k) != v:
            bad.append("%s=%r (want %r)" % (k, g.get(k), v))
    if e["type"] == "resp":
        raw = e["status"]
        st = g.get("status")
        conv = "raw" if st == raw else "sf" if st == raw >> 1 else None
        if raw and conv is None:
            bad.append("status=%#x (want %#x raw or %#x SF)" % (st, raw,
                                                                  raw >> 1))
        elif not raw and st != 0:
            bad.append("status=%#x (want 0)" % st)
        elif raw and STATUS_CONV["seen"] and conv != STATUS_CONV["seen"]:
            bad.append("status convention changed (%s then %s)" %
                       (STATUS_CONV["seen"], conv))
        elif raw:
            STATUS_CONV["seen"] = conv
        if e["matched"] is None:
            pass              # may or may not have been matched
        elif e["matched"] and not g.get("latency_ns", 0) > 0:
            bad.append("latency_ns=%r for a matched response"
                       % g.get("latency_ns"))
        elif not e["matched"] and g.get("latency_ns", 0) != 0:
            bad.append("latency_ns=%r for an unmatched response"
                       % g.get("latency_ns"))
    return bad


def fmt_ev(g):
    return ", ".join("%s=%s" % (k, hex(v) if k in ("slba", "status") and
                                 isinstance(v, int) else v)
                     for k, v in g.items() if k != "ts_ns")


def check_events(tag, got, expected, conn, extra_ok=("conn_open",)):
    """Command/response events vs. expectations, in order.  Expected items
    with must=False may be absent (the parser may or may not have regained
    sync there); anything not expected, out of order, duplicated or with a
    wrong field fails.  Returns the io events."""
    io = [g for g in got if g.get("type") in ("cmd", "resp")]
    other = [g for g in got if g.get("type") not in ("cmd", "resp") and
             g.get("type") not in extra_ok]
    problems, j = [], 0
    for g in io:
        k = j
        while k < len(expected):
            if not ev_matches(g, expected[k], conn):
                break
            k += 1
        if k == len(expected):
            near = [e for e in expected[j:] if e["type"] == g.get("type")
                    and e.get("cid") == g.get("cid")]
            why = ev_matches(g, near[0], conn) if near else ["not expected"]
            problems.append("unexpected event: %s (%s)" % (fmt_ev(g),
                                                          "; ".join(why)))
            continue
        for e in expected[j:k]:
            if e["must"]:
                problems.append("missing %s cid %#x" % (e["type"], e["cid"]))
        j = k + 1
    for e in expected[j:]:
        if e["must"]:
            problems.append("missing %s cid %#x" % (e["type"], e["cid"]))
    if other:
        problems.append("other events: %s" % "; ".join(fmt_ev(g)
                                                       for g in other[:4]))
    nmust = sum(1 for e in expected if e["must"])
    T.ok(not problems, "%s: events: %d command/response events, %d required,"
         " all fields right, nothing unexpected" % (tag, len(io), nmust),
         "\n".join(problems[:20]) + "\ngot %d events" % len(got))
    return io


def check_stats(tag, d, want, nevents=None):
    """Exact counter deltas for the keys in want; events_sent must equal
    the number of events read; nothing dropped or sampled."""
    w = dict(want)
    if nevents is not None:
        w.setdefault("events_sent", nevents)
    w.setdefault("events_dropped", 0)
    w.setdefault("events_sampled", 0)
    bad = {}
    for k, v in w.items():
        ok = v(d[k]) if callable(v) else d[k] == v
        if not ok:
            bad[k] = (d[k], getattr(v, "desc", v))
    T.ok(not bad, "%s: counters %s" % (tag, ", ".join(
        "%s%s" % (k, "" if callable(v) else "+%d" % v)
        for k, v in w.items() if callable(v) or v)),
         "\n".join("%s: got +%d, want %s" % (k, g, x)
                   for k, (g, x) in bad.items()) + "\nall: %s" % d)


def at_least(n):
    f = lambda x: x >= n  # noqa: E731
    f.desc = ">= %d" % n
    return f


def between(a, b):
    f = lambda x: a <= x <= b  # noqa: E731
    f.desc = "%d..%d" % (a, b)
    return f


def check_fed(tag, n):
    T.ok(not FEED_ERR, "%s: all %d packets forwarded, TCP payload and seq "
         "untouched" % (tag, n), "\n".join(FEED_ERR[:10]))
    del FEED_ERR[:]


class Phase:
    """Counters and events of one stretch of traffic."""

    def __enter__(self):
        events()              # drain
        self.s0 = stats()
        return self

    def __exit__(self, *a):
        if a[0] is None:
            self.ev = events()
            self.d = sdelta(self.s0, stats())
        return False


def counts(expected):
    """Counter deltas implied by expected command/response events
    (I/O-queue commands only)."""
    c = dict(cmds=0, read_cmds=0, write_cmds=0, read_blocks=0,
             write_blocks=0, resps=0, matched=0, unmatched=0, errors=0)
    for e in expected:
        if e["type"] == "cmd":
            c["cmds"] += 1
            if e["opcode"] == N.OP_READ:
                c["read_cmds"] += 1
                c["read_blocks"] += e["nlb"]
            elif e["opcode"] == N.OP_WRITE:
                c["write_cmds"] += 1
                c["write_blocks"] += e["nlb"]
        else:
            c["resps"] += 1
            if e["matched"] is not None:
                c["matched" if e["matched"] else "unmatched"] += 1
            c["errors"] += 1 if e["status"] else 0
    return c


def fake_header_data(n, cid=0xDEAD):
    """n bytes of in-capsule data that *contain* a perfectly valid read
    capsule header (CID 0xDEAD) at offset 0 and 256: a parser that does not
    skip data by plen reports it."""
    fake = N.read_cmd(cid, nsid=0x4E, slba=0xBAD, nlb=3)
    d = bytearray((bytes(range(256)) * (n // 256 + 1))[:n])
    for o in (0, 256):
        if o + len(fake) <= n:
            d[o:o + len(fake)] = fake
    return bytes(d)


def io_mix(conn, cid0, count, nsid=1, data_every=5, data_len=512):
    """count I/O commands: reads, writes (every data_every-th with
    in-capsule data that hides a fake header), a flush; distinct CIDs,
    SLBAs up to 48 bits, NLB up to 0xFFFF."""
    out = []
    for i in range(count):
        cid = cid0 + i
        slba = (0x0000A5A5 << 16 | i * 8) if i % 3 else (1 << 47) + i
        nlb0 = [0, 7, 255, 0xFFFF, 31][i % 5]
        if i % 11 == 10:
            out.append(N.flush_cmd(cid, nsid=nsid, **conn.dg))
        elif i % data_every == data_every - 1:
            out.append(N.write_cmd(cid, nsid=nsid, slba=slba, nlb=0,
                                   data=fake_header_data(data_len),
                                   **conn.dg))
        elif i % 2:
            out.append(N.write_cmd(cid, nsid=nsid, slba=slba, nlb=nlb0,
                                   **conn.dg))
        else:
            out.append(N.read_cmd(cid, nsid=nsid, slba=slba, nlb=nlb0,
                                  **conn.dg))
    return out


def responses(conn, cmds, status_of=lambda i: 0):
    return [N.capsule_resp(N.header_fields(c)["cid"], status_of(i),
                           sqid=conn.qid or 0, **conn.dg)
            for i, c in enumerate(cmds)]


# =============================================================================
# Cases
# =============================================================================
CASES = []


def case(fn):
    CASES.append(fn)
    return fn


@case
def c00_enabled_and_handshake():
    """vsn attach enables telemetry; a connection's SYN gives a conn_open
    event; ICReq/ICResp/Connect/response are 4 PDUs, no resync."""
    cfg = get_tel_cfg()
    T.ok(cfg["enabled"] == 1, "c00: vsn_tel_cfg.enabled is 1 after attach",
         cfg)
    # Every event, no sampling or rate cap, for the exact checks below.
    set_tel_cfg(1, 0, 0)
    c = Conn()
    with Phase() as ph:
        n = c.open()
    check_fed("c00 SYN/SYN-ACK/ACK", n)
    opens = [g for g in ph.ev if g.get("type") == "conn_open"]
    T.ok(len(opens) == 1 and len(ph.ev) == 1 and opens[0]["vm"] == VM_ID
         and opens[0]["volume"] == VOL4 and opens[0]["backend"] == BE4_ID
         and opens[0]["path"] == PATH_ID,
         "c00: one conn_open event (vm 1, volume 1, backend 1, path 1)",
         "\n".join(fmt_ev(g) for g in ph.ev))
    with Phase() as ph:
        c.nvme_init(qid=1)
    check_fed("c00 ICReq/ICResp/Connect", 4)
    check_stats("c00 handshake", ph.d, dict(pdus=4, resyncs=0, capped=0,
                                            cmds=0, read_cmds=0,
                                            write_cmds=0),
                nevents=len(ph.ev))
    io = [g for g in ph.ev if g.get("type") in ("cmd", "resp")]
    if io:
        note("c00: the Connect itself produced events: %s"
             % "; ".join(fmt_ev(g) for g in io))
    T.ok(all(g.get("opcode", 0x7F) == 0x7F or g["type"] == "resp"
             for g in io) and
         all(g.get("cid") == 0x0C01 for g in io),
         "c00: no event other than for the Connect capsule itself",
         "\n".join(fmt_ev(g) for g in ph.ev))
    if opens:
        T.ok(all(g.get("conn_id") == opens[0]["conn_id"] for g in io),
             "c00: Connect events (if any) carry the connection's conn_id")
    return c


@case
def c01_split_headers():
    """(1) PDU headers split at every byte offset: capsule k of a stream is
    cut k bytes in (k = 1..71, so the common header (1..7) and every SQE
    field boundary), one capsule arrives as 72 one-byte segments, one
    header spans three segments; responses likewise at every offset of
    their 24-byte header.  Writes carry in-capsule data hiding a valid
    capsule header (must be skipped).  Exactly the right events, no
    resync."""
    c = Conn()
    c.open()
    c.nvme_init(qid=3)
    cmds = io_mix(c, 0x100, 80)
    # capsule k cut at k; capsule 72: 1-byte segments; capsule 73: cut at
    # 5 and 40 (three pieces); 74..: cut inside data/after the header.
    rel = list(range(0, 72)) + [list(range(1, 72)), [5, 40]] + \
        [[72 + 3, 72 + 100] if len(p) > 72 else [71] for p in cmds[74:]]
    segs = N.cut_pdus_at(cmds, rel)
    exp = [exp_cmd(p, 3) for p in cmds]
    with Phase() as ph:
        n = c.send("i2t", segs)
    check_fed("c01 commands", n)
    check_events("c01 commands (%d segments)" % len(segs), ph.ev, exp, c)
    k = counts(exp)
    check_stats("c01 commands", ph.d, dict(k, pdus=len(cmds), resyncs=0,
                                           capped=0, admin=0),
                nevents=len(ph.ev))
    resp = responses(c, cmds, lambda i: 0)
    rsegs = N.cut_pdus_at(resp, [i % 24 for i in range(len(resp))]
                          [:70] + [list(range(1, 24))] + [None] * 9)
    rexp = [exp_resp(p, 3, True) for p in resp]
    with Phase() as ph:
        n = c.send("t2i", rsegs)
    check_fed("c01 responses", n)
    io = check_events("c01 responses (%d segments)" % len(rsegs), ph.ev,
                      rexp, c)
    check_stats("c01 responses", ph.d, dict(
        counts(rexp), pdus=len(resp), resyncs=0, capped=0, cmds=0),
        nevents=len(ph.ev))
    lat = [g["latency_ns"] for g in io]
    note("c01: latency_ns min %s max %s" % (min(lat or [0]), max(lat or [0])))


@case
def c01b_split_v6_wrap():
    """(1) The same over IPv6 with sequence numbers wrapping mid-stream:
    headers cut at varied offsets across the 2^32 boundary."""
    c = Conn(v6=True, isn_i=0xFFFFFFFF - 1100, isn_t=0xFFFFFFFF - 30)
    c.open()
    c.nvme_init(qid=7)
    cmds = io_mix(c, 0x200, 24)
    segs = N.cut_pdus_at(cmds, [(7 * i) % 72 or None for i in range(24)])
    exp = [exp_cmd(p, 7) for p in cmds]
    with Phase() as ph:
        n = c.send("i2t", segs)
        resp = responses(c, cmds)
        n += c.send("t2i", N.cut_pdus_at(resp, [(5 * i) % 24 or None
                                                for i in range(24)]))
    check_fed("c01b", n)
    rexp = [exp_resp(p, 7, True) for p in resp]
    got = ph.ev
    check_events("c01b commands", [g for g in got if g["type"] != "resp"],
                 exp, c)
    check_events("c01b responses", [g for g in got if g["type"] != "cmd"],
                 rexp, c)
    check_stats("c01b", ph.d, dict(counts(exp + rexp), pdus=48, resyncs=0,
                                   capped=0), nevents=len(got))


@case
def c02_pdus_per_segment():
    """(2) 1 to 16 PDUs per segment: all parsed.  Then 20 and 40 PDUs in
    one super-frame: 16 parsed, the rest counted capped, no wrong event;
    later segments are parsed again."""
    c = Conn()
    c.open()
    c.nvme_init(qid=2)
    cmds = io_mix(c, 0x300, sum(range(1, 17)), data_every=1000)
    segs = N.per_segment(cmds, list(range(1, 17)))
    T.ok([len(N.walk(b)) for _, b in segs] == list(range(1, 17)),
         "c02: generator made segments of 1..16 PDUs")
    exp = [exp_cmd(p, 2) for p in cmds]
    resp = responses(c, cmds, lambda i: 0)
    rsegs = N.per_segment(resp, list(range(16, 0, -1)))
    rexp = [exp_resp(p, 2, True) for p in resp]
    with Phase() as ph:
        n = c.send("i2t", segs) + c.send("t2i", rsegs)
    check_fed("c02 1..16 per segment", n)
    check_events("c02 commands 1..16 per segment",
                 [g for g in ph.ev if g["type"] != "resp"], exp, c)
    check_events("c02 responses 16..1 per segment",
                 [g for g in ph.ev if g["type"] != "cmd"], rexp, c)
    check_stats("c02 1..16 per segment", ph.d, dict(
        counts(exp + rexp), pdus=2 * len(cmds), resyncs=0, capped=0),
        nevents=len(ph.ev))

    # Super-frames.  BPF_PROG_TEST_RUN takes at most about a page of packet
    # data (no frags), so a "super-frame" here is ~3 KB: 20 capsules
    # (1440 bytes) then 40 reads (2880 bytes); the segmenter's real 64 KiB
    # super-frames are for on-the-wire tests.
    for tag, nbig, cid0 in (("20", 20, 0x400), ("40", 40, 0x500)):
        big = [N.read_cmd(cid0 + i, slba=i, nlb=i, **c.dg)
               for i in range(nbig)]
        after = [N.read_cmd(cid0 + 0x80 + i, slba=0x77 + i, **c.dg)
                 for i in range(4)]
        sf = N.superframes(big, 3000)
        T.ok(len(sf) == 1, "c02: %s PDUs fit one test-run super-frame" % tag)
        exp = [exp_cmd(p, 2) for p in big[:16]] + \
            [exp_cmd(p, 2, must=False) for p in after[:1]] + \
            [exp_cmd(p, 2) for p in after[1:]]
        with Phase() as ph:
            n = c.send("i2t", sf) + c.send("i2t", N.per_segment(after, 1))
        check_fed("c02 super-frame of %s" % tag, n)
        check_events("c02 super-frame of %s: first 16 reported, none past "
                     "the cap, later segments again" % tag, ph.ev, exp, c)
        check_stats("c02 super-frame of %s" % tag, ph.d, dict(
            capped=at_least(1), pdus=between(16 + 3, 16 + 4),
            cmds=between(16 + 3, 16 + 4)), nevents=len(ph.ev))
        # Responses for what was reported, in one super-frame of
        # nbig + 4 responses (> 16 again: capped on the target side too).
        resp = [N.capsule_resp(cid0 + i, sqid=2, **c.dg) for i in range(nbig)]
        resp += [N.capsule_resp(cid0 + 0x80 + i, sqid=2, **c.dg)
                 for i in range(4)]
        rexp = [exp_resp(p, 2, True) for p in resp[:16]]
        with Phase() as ph:
            n = c.send("t2i", N.superframes(resp, 3000))
            n += c.send("t2i", [(0, N.capsule_resp(0x7777, sqid=2,
                                                   **c.dg))])
            n += c.send("t2i", [(0, N.capsule_resp(0x7778, sqid=2,
                                                   **c.dg))])
        check_fed("c02 response super-frame of %d" % (nbig + 4), n)
        rexp += [exp_resp(N.capsule_resp(0x7777), 2, False, must=False),
                 exp_resp(N.capsule_resp(0x7778), 2, False)]
        check_events("c02 response super-frame of %d: first 16 matched, "
                     "later segments again" % (nbig + 4), ph.ev, rexp, c)
        check_stats("c02 response super-frame", ph.d, dict(
            capped=at_least(1), matched=16, resps=between(17, 18),
            unmatched=between(1, 2)), nevents=len(ph.ev))


def digest_case(tag, digests, v6=False):
    """(3) Reads with C2HData, writes with in-capsule data, writes through
    R2T + H2CData, responses; headers and digests split."""
    c = Conn(digests=digests, v6=v6)
    c.open()
    c.nvme_init(qid=4)
    dg = c.dg
    data1 = fake_header_data(1024)
    i2t = [N.read_cmd(0x601, slba=0x10, nlb=1, **dg),
           N.write_cmd(0x602, slba=0x20, nlb=1, data=data1, **dg),
           N.write_cmd(0x603, slba=0x30, nlb=3, **dg),   # via R2T
           N.read_cmd(0x604, slba=0x40, nlb=0, **dg)]
    t2i = [N.c2h_data(0x601, 0, data1, **dg),
           N.r2t(0x603, 0x55, 0, 2048, **dg),
           N.capsule_resp(0x602, sqid=4, **dg)]
    i2t2 = [N.h2c_data(0x603, 0x55, 0, data1, last=False, **dg),
            N.h2c_data(0x603, 0x55, 1024, fake_header_data(1024, 0xBEEF),
                       **dg)]
    t2i2 = [N.capsule_resp(0x603, sqid=4, **dg),
            N.c2h_data(0x604, 0, bytes(512), success=True, **dg),
            N.capsule_resp(0x601, sqid=4, **dg)]
    hd = 4 if digests else 0
    # Cuts: inside the header digest (72..75), right after it, inside data
    # and inside the data digest.
    cut1 = N.cut_pdus_at(i2t, [None, [72 + hd - 2 if digests else 50,
                                      72 + hd + 1, 72 + hd + 1024 + 2],
                               [70, 73 if digests else 71], [1]])
    cut2 = N.cut_pdus_at(t2i, [[24 + hd - 1, 24 + hd + 500], [3, 23],
                               [24 + hd - 2 if digests else 12]])
    cut3 = N.cut_pdus_at(i2t2, [[24 + hd + 1024 + 1], [2, 24 + hd + 3]])
    cut4 = N.cut_pdus_at(t2i2, [None, [20, 24 + hd + 100], [1]])
    if digests:
        T.ok(all(p[1] & N.F_HDGST for p in i2t + t2i + i2t2 + t2i2)
             and all(N.header_fields(p)["plen"] == len(p)
                     for p in i2t + t2i + i2t2 + t2i2),
             "%s: generator: HDGSTF on every PDU, plen includes digests"
             % tag)
    with Phase() as ph:
        n = c.send("i2t", cut1) + c.send("t2i", cut2)
        n += c.send("i2t", cut3) + c.send("t2i", cut4)
    check_fed(tag, n)
    exp = [exp_cmd(p, 4) for p in i2t] + \
        [exp_resp(t2i[2], 4, True), exp_resp(t2i2[0], 4, True),
         exp_resp(t2i2[2], 4, True)]
    check_events(tag + " commands", [g for g in ph.ev if g["type"] == "cmd"],
                 exp[:4], c)
    check_events(tag + " responses", [g for g in ph.ev
                                      if g["type"] != "cmd"], exp[4:], c)
    check_stats(tag, ph.d, dict(counts(exp), pdus=len(i2t + t2i + i2t2 +
                                                       t2i2),
                                resyncs=0, capped=0), nevents=len(ph.ev))


@case
def c03_digests():
    """(3) Digests on and off (HDGST/DDGST flags, plen including them)."""
    digest_case("c03 digests off", False)
    digest_case("c03 digests on", True)
    digest_case("c03 digests on IPv6", True, v6=True)


@case
def c04_admin_queue():
    """(4) A connection whose Connect has qid 0 is the admin queue: its
    commands (some with opcodes that are read/write/DSM on an I/O queue)
    count as admin, not I/O, and make no command events.  A connection
    that never sent a Connect makes no command events either."""
    a = Conn()
    a.open()
    a.nvme_init(qid=0)
    adm = [N.admin_cmd(N.ADM_IDENTIFY, 0x11, cdw10=1),
           N.admin_cmd(N.ADM_GET_LOG_PAGE, 0x12, nsid=0xFFFFFFFF,
                       cdw10=0x00FF0002),                 # opcode 0x02
           N.property_get_cmd(0x13),
           N.admin_cmd(N.ADM_SET_FEATURES, 0x14, cdw10=7),  # opcode 0x09
           N.admin_cmd(0x01, 0x15),    # opcode 0x01 (Create I/O SQ)
           N.admin_cmd(N.ADM_KEEP_ALIVE, 0x16)]
    # Interleave with an I/O connection, packet by packet.
    io = Conn()
    io.open()
    io.nvme_init(qid=5)
    iocmds = [N.read_cmd(0x21 + i, slba=i, nlb=i) for i in range(6)]
    frames = []
    for p, q in zip(N.per_segment(adm, 1), N.per_segment(iocmds, 1)):
        frames += a.flow.send("i2t", [(0, p[1])])
        frames += io.flow.send("i2t", [(0, q[1])])
    with Phase() as ph:
        n = feed(frames)
    check_fed("c04 admin + I/O interleaved", n)
    exp = [exp_cmd(p, 5) for p in iocmds]
    check_events("c04 only the I/O connection's commands (qid 5)", ph.ev,
                 exp, io)
    check_stats("c04 admin", ph.d, dict(counts(exp), admin=at_least(5),
                                        pdus=len(adm) + len(iocmds),
                                        resyncs=0), nevents=len(ph.ev))
    # Property Get (opcode 0x7f, fctype 0x04) is an admin-queue command
    # like the others: the contract counts every command on qid 0.
    T.ok(ph.d["admin"] == len(adm), "c04: all %d admin-queue commands "
         "counted in admin, Fabrics Property Get included" % len(adm),
         "admin +%d" % ph.d["admin"])
    with Phase() as ph:
        n = a.send("t2i", N.per_segment(
            [N.capsule_resp(0x11 + i) for i in range(len(adm))], 2))
    check_fed("c04 admin responses", n)
    T.ok(not [g for g in ph.ev if g.get("type") == "cmd"] and
         all(g.get("qid") == 0 for g in ph.ev if g.get("type") == "resp"),
         "c04: admin responses: no command event, no I/O-queue response",
         "\n".join(fmt_ev(g) for g in ph.ev))
    check_stats("c04 admin responses", ph.d, dict(
        pdus=len(adm), cmds=0, matched=0, errors=0, resyncs=0),
        nevents=len(ph.ev))
    if ph.ev:
        note("c04: admin responses gave events: %s"
             % "; ".join(fmt_ev(g) for g in ph.ev))

    # No Connect at all: ICReq/ICResp then I/O-looking commands.
    nc = Conn()
    nc.open()
    with Phase() as ph:
        nc.nvme_init(qid=None, connect=False)
        cmds = [N.read_cmd(0x31 + i, slba=i) for i in range(4)]
        n = nc.send("i2t", N.per_segment(cmds, 2))
        n += nc.send("t2i", N.per_segment(responses(nc, cmds), 1))
    check_fed("c04 no Connect", n)
    T.ok(not [g for g in ph.ev if g.get("type") in ("cmd", "resp")],
         "c04: no Connect seen: no command or response events",
         "\n".join(fmt_ev(g) for g in ph.ev))
    check_stats("c04 no Connect", ph.d, dict(pdus=2 + 8, resyncs=0,
                                             read_cmds=0, matched=0),
                nevents=len(ph.ev))


BOGUS = [
    ("unknown type 0x08", N.pdu(0x08, b"\x11" * 16, hlen=24)),
    ("capsule with hlen 24", N.pdu(N.CAPSULE_CMD, N.sqe(N.OP_READ, 0x999),
                                   hlen=24)),
    ("response with hlen 72", N.pdu(N.CAPSULE_RESP, N.cqe(0x998), hlen=72)),
    ("plen < hlen", N.pdu(N.CAPSULE_RESP, N.cqe(0x997), plen=16)),
    ("plen > 16 MiB", N.pdu(N.CAPSULE_CMD, N.sqe(N.OP_READ, 0x996),
                            plen=(1 << 24) + 1)),
    ("ICReq type with hlen 24", N.pdu(N.ICREQ, b"", hlen=24)),
]


@case
def c05_garbage():
    """(5) A bogus header right after a valid PDU (same segment, followed
    by a valid-looking capsule that is not at a segment start): one resync
    and a resync event; nothing wrong reported; the next segments'
    commands are reported again."""
    for name, bogus in BOGUS:
        tag = "c05 %s" % name
        c = Conn()
        c.open()
        c.nvme_init(qid=6)
        a = N.read_cmd(0x41, slba=1, nlb=1)
        hidden = N.read_cmd(0x42, slba=2, nlb=2)      # after the garbage
        b, cc, dd = (N.read_cmd(0x43 + i, slba=3 + i, nlb=i)
                     for i in range(3))
        seg1 = a + bogus + hidden
        with Phase() as ph:
            n = c.send("i2t", [(0, seg1), (len(seg1), b),
                               (len(seg1) + len(b), cc + dd)])
            n += c.send("t2i", N.per_segment(
                [N.capsule_resp(0x41, sqid=6), N.capsule_resp(0x43, sqid=6),
                 N.capsule_resp(0x44, sqid=6),
                 N.capsule_resp(0x45, sqid=6)], 1))
        check_fed(tag, n)
        exp = [exp_cmd(x, 6) for x in (a, b, cc, dd)]
        rexp = [exp_resp(N.capsule_resp(x), 6, True)
                for x in (0x41, 0x43, 0x44, 0x45)]
        check_events(tag, ph.ev, exp + rexp, c, extra_ok=("resync",))
        rs = [g for g in ph.ev if g.get("type") == "resync"]
        T.ok(len(rs) == 1 and rs[0]["vm"] == VM_ID and rs[0]["dir"] == 0
             and rs[0]["volume"] == VOL4,
             "%s: one resync event (vm 1, volume 1, dir 0)" % tag,
             "\n".join(fmt_ev(g) for g in rs))
        check_stats(tag, ph.d, dict(counts(exp + rexp), resyncs=1, capped=0,
                                    pdus=between(1 + 3 + 4, 1 + 3 + 4 + 1)),
                    nevents=len(ph.ev))


@case
def c06_lost_segment():
    """(6) Lost segments (a hole in the sequence space): a resync is
    counted; commands that start a later segment are reported again;
    nothing wrong in between (a write's data after the hole hides valid
    capsule headers)."""
    # (a) the hole is inside a write's in-capsule data.
    c = Conn()
    c.open()
    c.nvme_init(qid=8)
    w = N.write_cmd(0x53, slba=0x53, nlb=3, data=fake_header_data(2048))
    cmds = [N.read_cmd(0x51, slba=0x51), N.read_cmd(0x52, slba=0x52, nlb=1),
            w, N.read_cmd(0x54, slba=0x54), N.read_cmd(0x55, slba=0x55),
            N.read_cmd(0x56, slba=0x56), N.read_cmd(0x57, slba=0x57)]
    st = N.pdu_starts(cmds)
    # S0 [c51] S1 [c52 + w head..+600] S2 [w +600..+1300] (lost)
    # S3 [w +1300.. end, c54] S4 [c55] S5 [c56 c57]
    cuts = [st[1], st[2] + 600, st[2] + 1300, st[4], st[5]]
    segs = N.cut_at(cmds, cuts)
    T.ok(len(segs) == 6 and segs[3][1][:1] != b"\x04",
         "c06a: generator: 6 segments, the one after the hole starts "
         "inside data")
    with Phase() as ph:
        n = c.send("i2t", segs, skip=(2,))
    check_fed("c06a hole in data", n)
    exp = [exp_cmd(x, 8) for x in cmds[:3]] + \
        [exp_cmd(x, 8) for x in cmds[4:]]
    check_events("c06a hole in data: c51..c53 and c55..c57, never c54 "
                 "(mid-segment after the hole) nor the hidden headers",
                 ph.ev, exp, c, extra_ok=("resync",))
    check_stats("c06a", ph.d, dict(resyncs=between(1, 2), capped=0,
                                   cmds=6), nevents=len(ph.ev))
    # (b) the hole is a whole segment of headers; the next segment starts
    # with a header (may or may not be trusted at once), the one after
    # must be.
    c = Conn()
    c.open()
    c.nvme_init(qid=9)
    cmds = [N.read_cmd(0x61 + i, slba=0x61 + i, nlb=i) for i in range(6)]
    segs = N.per_segment(cmds, [1, 2, 1, 1, 1])
    with Phase() as ph:
        n = c.send("i2t", segs, skip=(1,))
    check_fed("c06b hole of whole PDUs", n)
    exp = [exp_cmd(cmds[0], 9), exp_cmd(cmds[3], 9, must=False),
           exp_cmd(cmds[4], 9), exp_cmd(cmds[5], 9)]
    check_events("c06b: commands before and after the hole, not the lost "
                 "ones", ph.ev, exp, c, extra_ok=("resync",))
    rs = [g for g in ph.ev if g.get("type") == "resync"]
    T.ok(len(rs) == 1, "c06b: one resync event", "\n".join(map(fmt_ev, rs)))
    check_stats("c06b", ph.d, dict(resyncs=1, capped=0,
                                   cmds=between(3, 4)), nevents=len(ph.ev))
    # (c) a hole in the response direction: later responses match again.
    resp = [N.capsule_resp(0x61 + i, status=0, sqid=9) for i in range(6)]
    with Phase() as ph:
        n = c.send("t2i", N.per_segment(resp, [1, 1, 2, 1, 1]), skip=(1,))
    check_fed("c06c hole in responses", n)
    rexp = [exp_resp(resp[0], 9, True),
            exp_resp(resp[2], 9, False, must=False),
            exp_resp(resp[3], 9, None, must=False),
            exp_resp(resp[4], 9, True), exp_resp(resp[5], 9, True)]
    check_events("c06c: responses before and after the hole", ph.ev, rexp,
                 c, extra_ok=("resync",))
    check_stats("c06c", ph.d, dict(resyncs=1, errors=0,
                                   matched=between(3, 4),
                                   unmatched=between(0, 2)),
                nevents=len(ph.ev))


@case
def c06d_hole_after_partial_header():
    """(6) The segment lost is the rest of a split header: the kept header
    bytes must be dropped, not glued to later bytes."""
    c = Conn()
    c.open()
    c.nvme_init(qid=15)
    cmds = [N.read_cmd(0xB1 + i, slba=0xB1 + i, nlb=i) for i in range(5)]
    st = N.pdu_starts(cmds)
    # S0 [c1, c2[:30]] S1 [c2[30:], c3[:5]] (lost) S2 [c3[5:]] S3 [c4]
    # S4 [c5]
    segs = N.cut_at(cmds, [st[1] + 30, st[2] + 5, st[3], st[4]])
    with Phase() as ph:
        n = c.send("i2t", segs, skip=(1,))
    check_fed("c06d", n)
    exp = [exp_cmd(cmds[0], 15), exp_cmd(cmds[3], 15, must=False),
           exp_cmd(cmds[4], 15)]
    check_events("c06d hole after a partial header", ph.ev, exp, c,
                 extra_ok=("resync",))
    check_stats("c06d", ph.d, dict(resyncs=1, cmds=between(2, 3)),
                nevents=len(ph.ev))


@case
def c06e_overlapping_retransmission():
    """A segment that repeats old bytes and carries new ones (a
    retransmission coalesced with new data) never produces a wrong or
    duplicate event; commands at later segment starts are reported."""
    c = Conn()
    c.open()
    c.nvme_init(qid=16)
    cmds = [N.read_cmd(0xC1 + i, slba=0xC1 + i) for i in range(5)]
    st = N.pdu_starts(cmds)
    stream = N.concat(cmds)
    fl = c.flow
    base = fl.sent["i2t"]
    with Phase() as ph:
        frames = [fl.segment("i2t", base, stream[:st[2]]),          # c1 c2
                  fl.segment("i2t", base + st[1], stream[st[1]:st[3]]),
                  fl.segment("i2t", base + st[3], stream[st[3]:st[4]]),
                  fl.segment("i2t", base + st[4], stream[st[4]:])]
        n = feed(frames)
    check_fed("c06e", n)
    exp = [exp_cmd(cmds[0], 16), exp_cmd(cmds[1], 16),
           exp_cmd(cmds[2], 16, must=False), exp_cmd(cmds[3], 16, must=False),
           exp_cmd(cmds[4], 16)]
    check_events("c06e overlap: no duplicate of c2, c5 reported", ph.ev, exp,
                 c, extra_ok=("resync",))
    check_stats("c06e", ph.d, dict(resyncs=between(0, 1),
                                   cmds=between(3, 5)), nevents=len(ph.ev))


@case
def c06f_sampling():
    """sample_every 2: about half the command events are sent, the rest
    counted sampled (per CPU, so not exactly half); what is sent is right."""
    c = Conn()
    c.open()
    c.nvme_init(qid=17)
    cmds = [N.read_cmd(0xD1 + i, slba=i, nlb=i) for i in range(12)]
    try:
        set_tel_cfg(1, 2, 0)
        with Phase() as ph:
            n = c.send("i2t", N.per_segment(cmds, 1))
    finally:
        set_tel_cfg(1, 0, 0)
    check_fed("c06f", n)
    check_events("c06f sampled events", ph.ev,
                 [exp_cmd(x, 17, must=False) for x in cmds], c)
    check_stats("c06f", ph.d, dict(cmds=12, events_sent=len(ph.ev),
                                   events_sampled=12 - len(ph.ev)))
    T.ok(2 <= len(ph.ev) <= 10, "c06f: %d of 12 command events sent with "
         "sample_every 2" % len(ph.ev))


def seq_plan(cid0):
    """Reads on one queue with the sequential mark each must carry, decided
    here from the plan itself: biopattern's rule, per queue and namespace
    (the first command of a connection has nothing before it)."""
    plan = [(0, 7, 1), (8, 7, 1), (16, 7, 1), (100, 0, 1), (101, 3, 1),
            (105, 0, 2), (106, 0, 2), (106, 0, 1)]
    cmds, seq, end = [], [], None
    for i, (slba, nlb0, nsid) in enumerate(plan):
        cmds.append(N.read_cmd(cid0 + i, nsid=nsid, slba=slba, nlb=nlb0))
        seq.append(end == (nsid, slba))
        end = (nsid, slba + nlb0 + 1)
    return cmds, seq


@case
def c06g_sequential_and_sampled_timing():
    """(2) The datapath marks sequential reads and writes (per queue and
    namespace), so the mark stays right when only 1 command in N is
    reported; with sample_every 3 only the reported commands are timed:
    their responses come matched, the others' are counted, not reported."""
    c = Conn()
    c.open()
    c.nvme_init(qid=21)
    cmds, seq = seq_plan(0x6100)
    with Phase() as ph:
        n = c.send("i2t", N.per_segment(cmds, 1))
    check_fed("c06g", n)
    exp = [dict(exp_cmd(x, 21), seq=q) for x, q in zip(cmds, seq)]
    check_events("c06g every command: sequential marks", ph.ev, exp, c)
    check_stats("c06g", ph.d, dict(counts(exp), seq_cmds=sum(seq)),
                nevents=len(ph.ev))
    c2 = Conn()
    c2.open()
    c2.nvme_init(qid=22)
    cmds, seq = seq_plan(0x6200)
    resp = [N.capsule_resp(0x6200 + i, 0, sqid=22) for i in range(len(cmds))]
    try:
        set_tel_cfg(1, 3, 0)
        with Phase() as ph:
            n = c2.send("i2t", N.per_segment(cmds, 1))
            time.sleep(0.01)
            n += c2.send("t2i", N.per_segment(resp, 1))
    finally:
        set_tel_cfg(1, 0, 0)
    check_fed("c06g sampled", n)
    got_cmd = [g["cid"] for g in ph.ev if g.get("type") == "cmd"]
    exp = [dict(exp_cmd(x, 22, must=False), seq=q) for x, q in zip(cmds, seq)]
    exp += [exp_resp(x, 22, True, must=False) for x in resp]
    io = check_events("c06g sample_every 3: reported commands keep their "
                      "marks, their responses are matched", ph.ev, exp, c2)
    got_resp = [g["cid"] for g in io if g["type"] == "resp"]
    T.ok(2 <= len(got_cmd) <= 4 and got_resp == got_cmd,
         "c06g: %d of 8 commands reported with sample_every 3, and exactly "
         "their responses" % len(got_cmd),
         "commands %s responses %s" % (got_cmd, got_resp))
    check_stats("c06g sampled", ph.d,
                dict(cmds=8, resps=8, seq_cmds=sum(seq), matched=len(got_cmd),
                     unmatched=0, events_sampled=8 - len(got_cmd)),
                nevents=len(ph.ev))


@case
def c07_latency_and_errors():
    """(7) Responses matched to their commands with latency_ns (at least the
    time slept between command and response, and in the log2 latency
    histogram of backend, path and VM), error statuses counted, unknown
    CIDs unmatched (latency 0)."""
    c = Conn()
    c.open()
    c.nvme_init(qid=10)
    cmds = [N.read_cmd(0x71, slba=1, nlb=7), N.write_cmd(0x72, slba=2,
                                                          nlb=15),
            N.read_cmd(0x73, slba=3), N.write_cmd(0x74, slba=4),
            N.read_cmd(0x75, slba=5)]
    statuses = [0, N.status_word(0, 0x02),            # invalid field
                N.status_word(2, 0x81, dnr=True),     # unrecovered read
                0, N.status_word(1, 0x80)]            # cmd-specific
    resp = [N.capsule_resp(0x71 + i, statuses[i], sqid=10)
            for i in range(5)]
    stray = [N.capsule_resp(0x7A, 0, sqid=10),
             N.capsule_resp(0x7B, N.status_word(0, 0x06), sqid=10)]
    hist0 = lat_hist()
    with Phase() as ph:
        t0 = time.monotonic()
        n = c.send("i2t", N.per_segment(cmds, 1))
        time.sleep(0.05)
        n += c.send("t2i", N.per_segment(resp[:3] + stray[:1], 2))
        n += c.send("t2i", N.per_segment(resp[3:] + stray[1:], 3))
        wall = (time.monotonic() - t0) * 1e9
    check_fed("c07", n)
    exp = [exp_cmd(x, 10) for x in cmds] + \
        [exp_resp(x, 10, True) for x in resp[:3]] + \
        [exp_resp(stray[0], 10, False)] + \
        [exp_resp(x, 10, True) for x in resp[3:]] + \
        [exp_resp(stray[1], 10, False)]
    io = check_events("c07", ph.ev, exp, c)
    check_stats("c07", ph.d, dict(counts(exp), pdus=12, resyncs=0),
                nevents=len(ph.ev))
    lat = [g["latency_ns"] for g in io if g["type"] == "resp"
           and g["cid"] in range(0x71, 0x76)]
    T.ok(len(lat) == 5 and all(50e6 <= x <= wall + 1e6 for x in lat),
         "c07: matched latency_ns >= 50 ms slept and <= the wall time "
         "(%.0f ms)" % (wall / 1e6), "latencies %s" % lat)
    T.ok(STATUS_CONV["seen"] is not None,
         "c07: error statuses reported (convention: %s)"
         % {"raw": "raw CQE half-word at +22", "sf": "status field (>> 1)",
            None: "?"}[STATUS_CONV["seen"]])
    ids = [g["conn_id"] for g in io]
    T.ok(len(set(ids)) == 1, "c07: commands and responses share one conn_id",
         ids)
    hist1 = lat_hist()
    if hist0 is None or hist1 is None:
        T.ok(False, "c07: vsn_lat_hist readable", "map not found")
        return
    want = {}
    for x in lat:
        b = min(int(math.log2(x)), LAT_BUCKETS - 1)
        for idx in (BE_BASE + BE4_ID, PATH_BASE + PATH_ID, VM_BASE + VM_ID):
            k = idx * LAT_BUCKETS + b
            want[k] = want.get(k, 0) + 1
    got = {k: hist1.get(k, 0) - hist0.get(k, 0) for k in
           set(hist0) | set(hist1) if hist1.get(k, 0) != hist0.get(k, 0)}
    T.ok(got == want, "c07: latency histogram: 5 latencies in their log2 "
         "buckets for backend 1, path 1 and VM 1",
         "got %s\nwant %s" % (sorted(got.items()), sorted(want.items())))


VSN_TYPES = os.path.join(ROOT, "include", "vsn_types.h")


def _define(name, default):
    try:
        m = re.search(r"#define\s+%s\s+(\d+)" % name, open(VSN_TYPES).read())
        return int(m.group(1)) if m else default
    except OSError:
        return default


BE_BASE = 0
PATH_BASE = _define("VSN_MAX_BACKENDS", 1024)
VM_BASE = PATH_BASE + _define("VSN_MAX_PATHS", 256)


def lat_hist():
    try:
        return percpu_sums("vsn_lat_hist")
    except (RuntimeError, ValueError):
        return None


@case
def c08_retransmission():
    """Retransmitted (old) segments are ignored: no duplicate events, no
    resync; the stream continues normally afterwards."""
    c = Conn()
    c.open()
    c.nvme_init(qid=11)
    cmds = [N.read_cmd(0x81 + i, slba=i) for i in range(4)] + \
        [N.write_cmd(0x85, slba=5, data=fake_header_data(600))]
    segs = N.cut_pdus_at(cmds, [None, None, 30, None, 100])
    fl = c.flow
    with Phase() as ph:
        frames = fl.segments("i2t", segs[:3], base=fl.sent["i2t"])
        base = fl.sent["i2t"] - sum(len(b) for _, b in segs[:3])
        # resend segment 1 and 0 after 2 went out, then go on
        frames += [fl.segment("i2t", base + segs[1][0], segs[1][1]),
                   fl.segment("i2t", base + segs[0][0], segs[0][1])]
        frames += fl.segments("i2t", segs[3:], base=base)
        frames += [fl.segment("i2t", base + segs[-1][0], segs[-1][1])]
        n = feed(frames)
    check_fed("c08", n)
    check_events("c08 retransmissions", ph.ev, [exp_cmd(x, 11)
                                                for x in cmds], c)
    check_stats("c08", ph.d, dict(counts([exp_cmd(x, 11) for x in cmds]),
                                  resyncs=0, pdus=5), nevents=len(ph.ev))


@case
def c09_disabled():
    """vsn_tel_cfg.enabled = 0: nothing parsed, counted or sent, traffic
    still forwarded; enabled again: a new connection is parsed."""
    c = Conn()
    c.open()
    try:
        set_tel_cfg(0)
        with Phase() as ph:
            c.nvme_init(qid=12)
            n = c.send("i2t", N.per_segment(
                [N.read_cmd(0x91 + i) for i in range(3)], 1))
        check_fed("c09 disabled", n + 4)
        T.ok(not ph.ev and not any(ph.d.values()),
             "c09: disabled: no events, no counter moved",
             "%s\n%s" % (ph.d, "; ".join(map(fmt_ev, ph.ev))))
    finally:
        set_tel_cfg(1, 0, 0)
    c2 = Conn()
    with Phase() as ph:
        c2.open()
        c2.nvme_init(qid=13)
        cmd = N.read_cmd(0x99, slba=9, nlb=9)
        n = c2.send("i2t", [(0, cmd)])
    check_events("c09 enabled again", ph.ev, [
        exp_resp(N.capsule_resp(0x0C00 + 13), 13, False, must=False),
        exp_cmd(cmd, 13)], c2)


@case
def c10_cli():
    """`vsn -j show telemetry` agrees with the map; `vsn -j events` prints
    the pending events as JSON lines and exits after --count."""
    r = vsn("-j", "show", "telemetry", check=False)
    try:
        cli = json.loads(r.stdout)
    except ValueError:
        cli = None
    raw = stats()
    if isinstance(cli, dict) and isinstance(cli.get("stats"), dict):
        cli = cli["stats"]         # {"stats": {...}, "latency": {...}}
    cli_ok = isinstance(cli, dict) and all(k in cli for k in STATS)
    T.ok(cli_ok and all(cli[k] == raw[k] for k in STATS),
         "c10: vsn -j show telemetry: all %d counters, equal to the map"
         % len(STATS), "exit %d: %s %s\nmap %s" % (
             r.returncode, r.stdout[:400], r.stderr[:200], raw))
    c = Conn()
    c.open()
    c.nvme_init(qid=14)
    events()      # drain: the CLI must see exactly what follows
    cmds = [N.read_cmd(0xA1, nsid=3, slba=0x123456789AB, nlb=0x1F),
            N.write_cmd(0xA2, nsid=3, slba=7, nlb=0)]
    n = c.send("i2t", N.per_segment(cmds, 2))
    time.sleep(0.02)
    n += c.send("t2i", [(0, N.capsule_resp(0xA1, N.status_word(0, 0x04),
                                           sqid=14))])
    check_fed("c10", n)
    t0 = time.monotonic()
    r = vsn("-j", "events", "--count", "3", "--timeout", "5", check=False,
            timeout=30)
    took = time.monotonic() - t0
    lines = [x for x in r.stdout.splitlines() if x.strip()]
    try:
        evs = [json.loads(x) for x in lines]
    except ValueError as e:
        evs = None
        note("c10: bad JSON line: %s" % e)
    want = [dict(type="cmd", vm=1, volume=VOL4, backend=BE4_ID, path=1,
                 qid=14, cid=0xA1, opcode=2, dir=0, nsid=3, nlb=0x20,
                 slba=0x123456789AB),
            dict(type="cmd", qid=14, cid=0xA2, opcode=1, nsid=3, nlb=1,
                 slba=7),
            dict(type="resp", qid=14, cid=0xA1, dir=1)]
    bad = []
    if evs is None or len(evs) != 3:
        bad.append("exit %d, %d lines: %s %s" % (r.returncode, len(lines),
                                                 r.stdout[:300],
                                                 r.stderr[:200]))
    else:
        for g, w in zip(evs, want):
            for k, v in w.items():
                if g.get(k) != v:
                    bad.append("%s: %s=%r want %r" % (w["cid"], k, g.get(k),
                                                      v))
        st = evs[2].get("status")
        if st not in (N.status_word(0, 0x04), N.status_word(0, 0x04) >> 1):
            bad.append("resp status %r" % st)
        if not (isinstance(evs[2].get("latency_ns"), int) and
                evs[2]["latency_ns"] >= 20e6):
            bad.append("resp latency_ns %r" % evs[2].get("latency_ns"))
        if len({g.get("conn_id") for g in evs}) != 1:
            bad.append("conn_id differs")
    T.ok(not bad and r.returncode == 0 and took < 4,
         "c10: vsn -j events --count 3: 3 JSON lines with the right fields,"
         " exits at once (%.1fs)" % took, "\n".join(bad))
    t0 = time.monotonic()
    r = vsn("-j", "events", "--count", "1", "--timeout", "1", check=False,
            timeout=30)
    took = time.monotonic() - t0
    T.ok(not r.stdout.strip() and 0.8 < took < 4,
         "c10: vsn -j events with nothing pending exits after --timeout 1 "
         "(%.1fs) printing nothing" % took,
         "exit %d out %r err %r" % (r.returncode, r.stdout[:200],
                                    r.stderr[:200]))


# =============================================================================
def main(argv):
    global RING
    t0 = time.time()
    if os.geteuid() != 0:
        print("not ok 1 - must run as root")
        return 1
    atexit.register(teardown)
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))
    signal.signal(signal.SIGINT, lambda *a: sys.exit(130))
    try:
        setup()
    except Exception as e:   # noqa: BLE001
        T.ok(False, "setup: topology, vsn attach, vsn apply", e)
        print("1..%d" % T.n)
        return 1
    note("setup done: ifindex %s, up0 MAC %s" % (IFINDEX, UP0_MAC))
    missing = [m for m in ("vsn_tel_stats", "vsn_tel_cfg", "vsn_events")
               if our_map(m) is None]
    if not T.ok(not missing, "telemetry maps present (vsn_tel_stats, "
                "vsn_tel_cfg, vsn_events)", "missing: %s" % missing):
        note("the datapath has no telemetry yet: every case below fails")
    try:
        w = our_map("vsn_events")
        if w:
            RING = Ring(w)
            note("vsn_events: ring buffer of %d bytes" % RING.size)
    except Exception as e:   # noqa: BLE001
        T.ok(False, "vsn_events ring buffer can be mapped", e)
    sel = [f for f in CASES if not argv or
           any(a in f.__name__ for a in argv)]
    for fn in sel:
        try:
            fn()
        except Exception:   # noqa: BLE001
            T.ok(False, "%s completed" % fn.__name__, traceback.format_exc())
        del FEED_ERR[:]
    note("%d assertions, %d failed, %d cases, %.1fs"
         % (T.n, T.failed, len(sel), time.time() - t0))
    print("1..%d" % T.n)
    return 1 if T.failed else 0


if __name__ == "__main__":
    try:
        rc = main(sys.argv[1:])
    finally:
        teardown()
    sys.exit(rc)
