#!/usr/bin/python3
"""The harness of the NVMe/TCP parser and telemetry tests
(tests/pkt/test_nvme_*.py, BPF_PROG_TEST_RUN).  Each test file runs its
cases with run_cases(CASES, argv); every file builds its own topology.

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

import json
import math
import mmap
import os
import re
import struct
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import pktlib as P  # noqa: E402
import bpfsys  # noqa: E402
from harness import Tap, apply_config, note, remove_env, reply_tc, require_pinned, sh, \
    suite_start, veth_topology  # noqa: E402
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
  - {name: vm1, id: 1, interface: vmif, addresses: [10.0.0.2, '2001:db8::2']}
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
IFMAC = {}                        # interface name -> MAC, filled by setup()
RING = None


def teardown():
    global RING
    if RING:
        RING.close()
        RING = None
    remove_env(VSN, PIN, NS_HV, (NS_HV, NS_PEER))


def setup():
    teardown()
    links = veth_topology(NS_HV, NS_PEER, (("vmif", "vm0"), ("up0", "f0")))
    IFINDEX.update({n: i for n, (i, _) in links.items()})
    IFMAC["up0"] = links["up0"][1]
    vsn("attach", "--vm", "vmif", "--uplink", "up0")
    reply_tc(PIN, (IFINDEX["vmif"],), False)
    apply_config(vsn, CONFIG, "vsnq2-")
    require_pinned(PROG.values())


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
        fd = bpfsys.map_fd_by_id(mid)
        try:
            if bpfsys.map_info(fd)["name"] == name[:15]:
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
        self.fd = bpfsys.obj_get(val) if kind == "pinned" else \
            bpfsys.map_fd_by_id(int(val))
        info = bpfsys.map_info(self.fd)
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
        tgt = N.Endpoint(FAB_MAC, be, BE_PORT, IFMAC["up0"], vm, self.sport)
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


CASES = []


def case(fn):
    """Register a case of the calling test file (run in order)."""
    CASES.append(fn)
    return fn


def every_event():
    """Every event reported, no sampling or rate cap: what the exact event
    checks need (vsn attach's default, set here explicitly)."""
    set_tel_cfg(1, 0, 0)


def run_cases(cases, argv):
    """Set up, run the cases (those whose name contains one of argv, or
    all), tear down; the process exit status."""
    try:
        rc = _main(cases, argv)
    finally:
        teardown()
    return rc


def _main(cases, argv):
    global RING
    t0 = time.time()
    if not suite_start(teardown):
        return 1
    try:
        setup()
    except Exception as e:   # noqa: BLE001
        T.ok(False, "setup: topology, vsn attach, vsn apply", e)
        print("1..%d" % T.n)
        return 1
    note("setup done: ifindex %s, up0 MAC %s" % (IFINDEX, IFMAC["up0"]))
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
    sel = [f for f in cases if not argv or
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
