#!/usr/bin/python3
"""Replay of real kernel NVMe/TCP captures through the vsn datapath.

Run as root from the repository root:
    /usr/bin/python3 tests/pkt/test_replay.py [CAPTURE-SUBSTRING...]

For each capture in tests/data (randread4k, seqwrite128k, randrw8k; see
tests/data/README.md): a fresh netns vsnrp-hv with a VM interface (vmif)
and an uplink (up0) (veth peers in vsnrp-peer), `vsn attach` with pins under
/sys/fs/bpf/vsnrp, and a config where vm1's volume is the capture's target
(10.3.1.2:4420) with one backend at the same address and port: no address
translation, the target's replies match the connection's fabric-side entry.

Every TCP frame of the capture is run once, in capture order, through
BPF_PROG_TEST_RUN (bpfsys.py: a small ctypes wrapper around bpf(2), from inside the
netns): initiator -> :4420 through vsn_vm_ingress (skb ifindex = vmif),
target -> initiator through vsn_up_xdp (ingress ifindex = up0).  Meanwhile
`vsn -j events` runs in the background and collects the ring buffer's
events; afterwards `vsn -j show telemetry` gives the counters.

The truth is tshark's NVMe/TCP dissector: tests/data/NAME.expect.json
(written by scripts/pcap_expect.py) and, for per-command detail and the
responses per TCP stream, tshark run here on the same capture.  Nothing of
the project is used to compute an expected value.

If `vsn profile` exists, `vsn -j profile --events FILE` on the collected
events is checked too (read share, dominant I/O size, class); otherwise
those checks are reported as skipped.

Prints TAP ("ok N - ...", "not ok N - ...", diagnostics "# ...").
Exits non-zero on any failure.  Cleans up on exit.
"""

import collections
import json
import os
import signal
import struct
import subprocess
import sys
import tempfile
import time
import traceback
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
DATA = os.path.join(ROOT, "tests", "data")
sys.path.insert(0, HERE)
import pktlib as P  # noqa: E402
from bpfsys import InNetns, TestRun  # noqa: E402
from harness import Tap, apply_config, note, remove_env, reply_tc, require_pinned, sh, \
    suite_start, veth_topology  # noqa: E402

PFX = "vsnrp"
NS_HV, NS_PEER = PFX + "-hv", PFX + "-peer"
PIN = "/sys/fs/bpf/" + PFX
VSN = os.path.join(ROOT, "build", "vsn")
PROG = {n: os.path.join(PIN, n) for n in ("vsn_vm_ingress", "vsn_up_xdp")}
TC_ACT_REDIRECT, XDP_REDIRECT = 7, 4
CAPTURES = ["randread4k", "seqwrite128k", "randrw8k"]
TARGET, PORT = "10.3.1.2", 4420
NVME_READ, NVME_WRITE = 0x02, 0x01

CONFIG = """\
vms:
  - {name: vm1, id: 1, interface: vmif, addresses: [10.3.1.3]}
uplinks:
  - {interface: up0}
paths:
  - {id: 1, uplink: up0, next_hop: "02:00:00:00:b1:01", source_mac: "02:00:00:00:a1:01"}
backends:
  - {id: 1, address: %s, port: %d, paths: [1]}
volumes:
  - {id: 1, vm: vm1, address: %s, port: %d, backends: [1]}
routes:
""" % (TARGET, PORT, TARGET, PORT)

STATS = ["pdus", "cmds", "resps", "admin", "matched", "unmatched", "resyncs",
         "capped", "events_sent", "events_dropped", "events_sampled",
         "read_cmds", "write_cmds", "read_blocks", "write_blocks", "errors"]

# Expected class parts per capture (from the fio jobs; see the brief).
CLASS_EXPECT = {"randread4k": ("read-heavy", "random"),
                "seqwrite128k": ("write-heavy", "sequential"),
                "randrw8k": ("mixed", "random")}


# --- TAP ---------------------------------------------------------------------
T = Tap()


# --- environment -------------------------------------------------------------
def vsn(*args, check=True, timeout=60):
    return sh(VSN, "--pin-dir", PIN, *args, check=check, ns=NS_HV,
              timeout=timeout)


IFINDEX = {}
BG = []          # background processes we started (Popen)


def teardown():
    for p in BG:
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    del BG[:]
    remove_env(VSN, PIN, NS_HV, (NS_HV, NS_PEER))


def setup():
    teardown()
    IFINDEX.clear()
    links = veth_topology(NS_HV, NS_PEER, (("vmif", "vm0"), ("up0", "f0")))
    IFINDEX.update({n: i for n, (i, _) in links.items()})
    vsn("attach", "--vm", "vmif", "--uplink", "up0")
    reply_tc(PIN, (IFINDEX["vmif"],), False)
    apply_config(vsn, CONFIG, "vsnrp-")
    require_pinned(PROG.values())


# --- the capture ---------------------------------------------------------------
def read_pcap(path):
    """[(frame number from 1, bytes)] of a classic pcap (Ethernet)."""
    with open(path, "rb") as f:
        raw = f.read()
    magic = struct.unpack_from("<I", raw, 0)[0]
    if magic in (0xA1B2C3D4, 0xA1B23C4D):
        en = "<"
    elif magic in (0xD4C3B2A1, 0x4D3CB2A1):
        en = ">"
    else:
        raise RuntimeError("%s: not a classic pcap (magic %#x)" % (path, magic))
    linktype = struct.unpack_from(en + "I", raw, 20)[0]
    if linktype != 1:
        raise RuntimeError("%s: link type %d, not Ethernet" % (path, linktype))
    off, out = 24, []
    while off + 16 <= len(raw):
        incl, orig = struct.unpack_from(en + "II", raw, off + 8)
        out.append((len(out) + 1, raw[off + 16:off + 16 + incl]))
        if incl != orig:
            raise RuntimeError("%s: frame %d truncated (%d of %d bytes)"
                               % (path, len(out), incl, orig))
        off += 16 + incl
    return out


def classify_frame(fr):
    """'i2t' (to port 4420), 't2i' (from it) or None (not IPv4/TCP)."""
    if len(fr) < 54 or fr[12:14] != b"\x08\x00" or fr[23] != 6:
        return None
    ihl = (fr[14] & 0xF) * 4
    sport, dport = struct.unpack_from("!HH", fr, 14 + ihl)
    if dport == PORT:
        return "i2t"
    if sport == PORT:
        return "t2i"
    return None


def tshark_facts(pcap):
    """From tshark's dissector: per stream the Connect's qid, the commands
    in order (cid, opc, slba, nlb as blocks, nsid, frame) and the number of
    CapsuleResp PDUs."""
    cmd = ["tshark", "-n", "-r", pcap, "-d", "tcp.port==%d,nvme-tcp" % PORT,
           "-Y", "nvme-tcp.type == 4 || nvme-tcp.type == 5", "-T", "pdml"]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    streams = collections.defaultdict(lambda: {"connect_qid": None,
                                               "cmds": [], "resps": 0,
                                               "iport": None})

    def fields(pr):
        d = collections.defaultdict(list)
        for f in pr.iter("field"):
            d[f.get("name")].append(f.get("show"))
        return d

    for _, pkt in ET.iterparse(p.stdout):
        if pkt.tag != "packet":
            continue
        protos = pkt.findall("proto")
        frame = stream = None
        for pr in protos:
            if pr.get("name") == "frame":
                frame = int(fields(pr)["frame.number"][0])
            elif pr.get("name") == "tcp":
                fd = fields(pr)
                stream = int(fd["tcp.stream"][0])
                ports = {int(fd["tcp.srcport"][0]), int(fd["tcp.dstport"][0])}
        st = streams[stream]
        st["iport"] = (ports - {PORT} or {PORT}).pop()
        for i, pr in enumerate(protos):
            if pr.get("name") != "nvme-tcp":
                continue
            fd = fields(pr)
            if not fd.get("nvme-tcp.type"):
                continue
            t = int(fd["nvme-tcp.type"][0], 0)
            if t == 5:
                st["resps"] += 1
                continue
            if t != 4:
                continue
            if fd.get("nvme.fabrics.cmd.fctype"):
                if int(fd["nvme.fabrics.cmd.fctype"][0], 0) == 1:
                    st["connect_qid"] = int(
                        fd["nvme.fabrics.cmd.connect.qid"][0], 0)
                st["cmds"].append({"frame": frame, "fabrics": True})
                continue
            nx = protos[i + 1] if i + 1 < len(protos) else None
            c = {"frame": frame, "fabrics": False, "opc": None}
            if nx is not None and nx.get("name") == "nvme":
                nd = fields(nx)
                c["opc"] = int(nd["nvme.cmd.opc"][0], 0)
                c["cid"] = int(nd["nvme.cmd.cid"][0], 0)
                c["nsid"] = int(nd["nvme.cmd.nsid"][0], 0) \
                    if nd.get("nvme.cmd.nsid") else None
                if nd.get("nvme.cmd.slba"):
                    c["slba"] = int(nd["nvme.cmd.slba"][0], 0)
                    c["nlb"] = int(nd["nvme.cmd.nlb"][0])   # blocks (raw+1)
            st["cmds"].append(c)
        pkt.clear()
    p.wait()
    if p.returncode:
        raise RuntimeError("tshark failed on %s" % pcap)
    return dict(streams)


def fin_dirs(frames):
    """{initiator port: {0 (initiator sent), 1 (target sent)}} of the
    frames with FIN or RST."""
    out = collections.defaultdict(set)
    for _, fr in frames:
        d = classify_frame(fr)
        if d is None:
            continue
        ihl = (fr[14] & 0xF) * 4
        sport, dport = struct.unpack_from("!HH", fr, 14 + ihl)
        if fr[14 + ihl + 13] & 0x05:            # FIN | RST
            out[sport if d == "i2t" else dport].add(0 if d == "i2t" else 1)
    return out


def contiguity(cmds):
    """(contiguous pairs, pairs) in order: b starts where a ended."""
    pairs = list(zip(cmds, cmds[1:]))
    n = sum(1 for a, b in pairs if b["slba"] == a["slba"] + a["nlb"])
    return n, len(pairs)


def nlb_hist(cmds):
    h = {"read": collections.Counter(), "write": collections.Counter()}
    for c in cmds:
        k = {NVME_READ: "read", NVME_WRITE: "write"}.get(c["opcode"])
        if k:
            h[k][str(c["nlb"])] += 1
    return {k: dict(v) for k, v in h.items() if v}


# --- one capture ---------------------------------------------------------------
def replay(frames):
    """Run every TCP frame through its program.  Returns (counts, errors)."""
    ctx_vm = P.skb_ctx(IFINDEX["vmif"])
    ctx_up = P.xdp_ctx(IFINDEX["up0"])
    progs = {"i2t": TestRun(PROG["vsn_vm_ingress"]),
             "t2i": TestRun(PROG["vsn_up_xdp"])}
    want = {"i2t": TC_ACT_REDIRECT, "t2i": XDP_REDIRECT}
    n = collections.Counter()
    errs = []
    try:
        with InNetns(NS_HV):
            for no, fr in frames:
                d = classify_frame(fr)
                if d is None:
                    n["other"] += 1
                    continue
                n[d] += 1
                ctx = ctx_vm if d == "i2t" else \
                    P._put(ctx_up, 4, "=I", len(fr))
                try:
                    rv, out = progs[d].run(fr, ctx)
                except OSError as e:
                    errs.append("frame %d (%s, %d bytes): test run: %s"
                                % (no, d, len(fr), e))
                    continue
                if rv != want[d]:
                    errs.append("frame %d (%s): returned %d, expected %d"
                                % (no, d, rv, want[d]))
                    continue
                # No translation: everything after the MACs is unchanged.
                if out[12:] != fr[12:]:
                    try:
                        a, b = P.parse(fr), P.parse(out)
                        what = [k for k in ("payload",) if a[k] != b[k]]
                    except Exception:   # noqa: BLE001
                        what = ["unparsable"]
                    errs.append("frame %d (%s): bytes after the MACs changed"
                                " (%s)" % (no, d, ",".join(what) or "headers"))
    finally:
        for p in progs.values():
            p.close()
    return n, errs


def telemetry():
    r = vsn("-j", "show", "telemetry", check=False)
    try:
        j = json.loads(r.stdout)
        return j["stats"] if "stats" in j else j
    except (ValueError, KeyError, TypeError):
        raise RuntimeError("vsn -j show telemetry: exit %d: %s %s"
                           % (r.returncode, r.stdout[:300], r.stderr[:300]))


def collect_events(path, tel):
    """Wait until the background `vsn -j events` wrote events_sent lines,
    then stop it.  Returns the parsed events."""
    want = tel.get("events_sent", 0)
    deadline = time.monotonic() + 15
    have = 0
    while time.monotonic() < deadline:
        with open(path) as f:
            have = sum(1 for x in f if x.strip())
        if have >= want or BG[-1].poll() is not None:
            break
        time.sleep(0.05)
    time.sleep(0.2)       # anything beyond events_sent would show up too
    p = BG.pop()
    if p.poll() is None:
        p.send_signal(signal.SIGINT)
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    evs, bad = [], []
    with open(path) as f:
        for line in f:
            if line.strip():
                try:
                    evs.append(json.loads(line))
                except ValueError:
                    bad.append(line.strip()[:120])
    return evs, bad


def fmt_cmd(c):
    return "cid %#06x opc %s slba %s nlb %s nsid %s qid %s" % (
        c.get("cid", -1), c.get("opc", c.get("opcode")), c.get("slba"),
        c.get("nlb"), c.get("nsid"), c.get("qid", "-"))


def check_capture(name, workdir):
    pcap = os.path.join(DATA, name + ".pcap")
    exp = json.load(open(os.path.join(DATA, name + ".expect.json")))
    tag = name + ":"
    t0 = time.monotonic()

    # tshark's view of the same capture: the I/O connection = the stream
    # whose Fabrics Connect has qid != 0.
    ts = tshark_facts(pcap)
    io_streams = [s for s, v in ts.items() if v["connect_qid"]]
    admin_streams = [s for s, v in ts.items() if v["connect_qid"] == 0]
    if not T.ok(len(io_streams) == 1 and len(admin_streams) == 1,
                "%s tshark: one admin and one I/O connection" % tag,
                {s: (v["connect_qid"], len(v["cmds"])) for s, v in ts.items()}):
        return
    io = ts[io_streams[0]]
    ts_io = [c for c in io["cmds"] if not c["fabrics"]]
    ts_rw = [c for c in ts_io if c.get("opc") in (NVME_READ, NVME_WRITE)]
    io_resps = io["resps"] - 1          # minus the Connect's response
    ia = exp["io_all"]
    T.ok(len(ts_io) == ia["commands"] and len(ts_rw) == ia["commands"] and
         len(io["cmds"]) == exp["commands"]["io_queue"],
         "%s tshark here agrees with expect.json: %d I/O commands "
         "(+ Connect)" % (tag, ia["commands"]),
         "tshark: %d cmds, %d r/w; expect %s" % (len(io["cmds"]), len(ts_rw),
                                                 exp["commands"]))
    note("%s tshark: %d I/O commands, %d CapsuleResp on the I/O connection "
         "(%d I/O responses), admin connection: %d commands, %d responses"
         % (name, len(ts_io), io["resps"], io_resps,
            len(ts[admin_streams[0]]["cmds"]), ts[admin_streams[0]]["resps"]))

    setup()
    frames = read_pcap(pcap)
    T.ok(len(frames) == exp["frames"] and
         max(len(f) for _, f in frames) <= 4000,
         "%s %d frames read from the pcap, largest %d bytes" % (
             tag, len(frames), max(len(f) for _, f in frames)),
         "expect.json frames %d" % exp["frames"])

    evpath = os.path.join(workdir, name + ".events.jsonl")
    evf = open(evpath, "w")
    BG.append(subprocess.Popen(
        ["nsenter", "--net=/run/netns/" + NS_HV, VSN, "--pin-dir", PIN, "-j",
         "events", "--timeout", "120"], stdout=evf,
        stderr=subprocess.DEVNULL))
    evf.close()
    time.sleep(0.1)

    tr = time.monotonic()
    n, errs = replay(frames)
    tr = time.monotonic() - tr
    T.ok(not errs and n["other"] == 0,
         "%s replayed %d initiator frames through vsn_vm_ingress (all %d "
         "TC_ACT_REDIRECT) and %d target frames through vsn_up_xdp (all %d "
         "XDP_REDIRECT), bytes after the MACs unchanged (%.2fs)"
         % (tag, n["i2t"], TC_ACT_REDIRECT, n["t2i"], XDP_REDIRECT, tr),
         "%d problems, %d non-TCP frames:\n%s" % (len(errs), n["other"],
                                                  "\n".join(errs[:30])))

    tel = telemetry()
    evs, bad = collect_events(evpath, tel)
    note("%s telemetry: %s" % (name, " ".join("%s=%s" % (k, tel.get(k))
                                              for k in STATS)))
    T.ok(not bad and len(evs) == tel.get("events_sent") and
         tel.get("events_dropped") == 0 and tel.get("events_sampled") == 0,
         "%s vsn -j events: %d JSON lines = telemetry events_sent, none "
         "dropped or sampled" % (tag, len(evs)),
         "events_sent %s dropped %s sampled %s; bad lines %s" % (
             tel.get("events_sent"), tel.get("events_dropped"),
             tel.get("events_sampled"), bad[:3]))

    cmds = [e for e in evs if e.get("type") == "cmd"]
    resps = [e for e in evs if e.get("type") == "resp"]
    rds = [e for e in cmds if e.get("opcode") == NVME_READ]
    wrs = [e for e in cmds if e.get("opcode") == NVME_WRITE]
    types = collections.Counter(e.get("type") for e in evs)
    note("%s events: %s" % (name, dict(types)))

    # Counts.
    T.ok(len(cmds) == ia["commands"] and tel.get("cmds") == ia["commands"],
         "%s I/O command events = tshark's I/O-queue commands without the "
         "Connect (%d), telemetry cmds too" % (tag, ia["commands"]),
         "events %d, telemetry cmds %s" % (len(cmds), tel.get("cmds")))
    T.ok(len(rds) == ia["reads"] and len(wrs) == ia["writes"] and
         tel.get("read_cmds") == ia["reads"] and
         tel.get("write_cmds") == ia["writes"],
         "%s reads/writes: %d/%d (events and telemetry)" % (
             tag, ia["reads"], ia["writes"]),
         "events %d/%d (other opcodes %s), telemetry %s/%s" % (
             len(rds), len(wrs),
             dict(collections.Counter(e.get("opcode") for e in cmds
                                      if e not in rds and e not in wrs)),
             tel.get("read_cmds"), tel.get("write_cmds")))

    # Per command, in order, against tshark.
    diffs = []
    for i, (e, c) in enumerate(zip(cmds, ts_rw)):
        w = {"cid": c["cid"], "opcode": c["opc"], "slba": c["slba"],
             "nlb": c["nlb"], "nsid": c["nsid"]}
        d = {k: (e.get(k), v) for k, v in w.items() if e.get(k) != v}
        if e.get("qid") != io["connect_qid"]:
            d["qid"] = (e.get("qid"), io["connect_qid"])
        if d:
            diffs.append("command #%d (tshark frame %d, %s): %s" % (
                i + 1, c["frame"], fmt_cmd(c),
                ", ".join("%s event %s tshark %s" % (k, a, b)
                          for k, (a, b) in sorted(d.items()))))
    T.ok(len(cmds) == len(ts_rw) and not diffs,
         "%s every command event equals tshark's command in order (cid, "
         "opcode, slba, nlb, nsid, qid %s)" % (tag, io["connect_qid"]),
         "%d events vs %d tshark commands; %d differ:\n%s" % (
             len(cmds), len(ts_rw), len(diffs), "\n".join(diffs[:20])))
    ids = {(e.get("conn_id"), e.get("vm"), e.get("volume"), e.get("backend"),
            e.get("path")) for e in cmds}
    T.ok(len(ids) == 1 and list(ids)[0][1:] == (1, 1, 1, 1),
         "%s command events: one connection, vm 1, volume 1, backend 1, "
         "path 1" % tag, "(conn_id, vm, volume, backend, path): %s" % ids)

    h = nlb_hist(cmds)
    T.ok(h == ia["nlb_hist"] and
         tel.get("read_blocks") == sum(int(k) * v for k, v in
                                       ia["nlb_hist"].get("read", {}).items())
         and tel.get("write_blocks") == sum(
             int(k) * v for k, v in ia["nlb_hist"].get("write", {}).items()),
         "%s blocks per command (NLB+1) distribution = tshark's %s; "
         "telemetry read/write blocks agree" % (tag, ia["nlb_hist"]),
         "events %s; telemetry read_blocks %s write_blocks %s" % (
             h, tel.get("read_blocks"), tel.get("write_blocks")))

    rw = len(rds) + len(wrs)
    pct = 100.0 * len(rds) / rw if rw else None
    T.ok(pct is not None and abs(pct - ia["read_pct"]) <= 2.0,
         "%s read share %s%% within 2 points of tshark's %.2f%%" % (
             tag, "%.2f" % pct if pct is not None else "?", ia["read_pct"]))
    T.ok(pct is not None and round(pct, 2) == ia["read_pct"],
         "%s read share exact (%.2f%%)" % (tag, ia["read_pct"]),
         "events %s%%" % pct)

    # Sequentiality, per connection in order.
    byconn = collections.defaultdict(list)
    for e in cmds:
        byconn[e.get("conn_id")].append(e)
    cp = [contiguity(v) for v in byconn.values()]
    ncont, npairs = sum(a for a, _ in cp), sum(b for _, b in cp)
    seq = npairs > 0 and ncont == npairs
    T.ok((ncont, npairs, seq) == (ia["contiguous_pairs"], ia["pairs"],
                                  ia["lba_sequential"]),
         "%s contiguity from the events' slba/nlb per connection: %d/%d "
         "pairs contiguous, sequential=%s, as tshark (io_all)" % (
             tag, ia["contiguous_pairs"], ia["pairs"], ia["lba_sequential"]),
         "events: %d/%d, sequential=%s" % (ncont, npairs, seq))
    # The datapath's own mark (VSN_EVF_SEQ, "seq" in the JSON lines) on
    # each command: as many as the contiguous pairs counted above.
    marked = sum(1 for e in cmds if e.get("seq"))
    T.ok(all("seq" in e for e in cmds) and marked == ncont and
         tel.get("seq_cmds") == ncont,
         "%s the datapath marked %d commands sequential, as many as the "
         "contiguous pairs counted here, and counted them (seq_cmds)"
         % (tag, ncont),
         "marked %d, contiguous pairs %d, seq_cmds %s"
         % (marked, ncont, tel.get("seq_cmds")))
    k = exp["kernel_before_fio"]["commands"]
    fi = exp["fio_io"]
    fio_ev = cmds[k:]
    fn, fp = contiguity(fio_ev)
    fseq = fp > 0 and fn == fp
    T.ok((fn, fp, fseq) == (fi["contiguous_pairs"], fi["pairs"],
                            fi["lba_sequential"]),
         "%s fio's part (after the kernel's %d reads): %d/%d contiguous, "
         "%s, as tshark" % (tag, k, fi["contiguous_pairs"], fi["pairs"],
                            "sequential" if fi["lba_sequential"] else
                            "random"),
         "events: %d/%d, sequential=%s" % (fn, fp, fseq))

    # Admin, responses, resyncs.
    T.ok(tel.get("admin") == exp["commands"]["admin_queue"],
         "%s telemetry admin = tshark's admin-queue commands (%d)" % (
             tag, exp["commands"]["admin_queue"]),
         "admin %s (admin opcodes per tshark: %s)" % (
             tel.get("admin"), exp["commands"]["admin_opcodes"]))
    T.ok(tel.get("matched") == io_resps,
         "%s telemetry matched = I/O responses in the capture (%d "
         "CapsuleResp on the I/O connection minus the Connect's)" % (
             tag, io_resps),
         "matched %s, unmatched %s, resps %s" % (
             tel.get("matched"), tel.get("unmatched"), tel.get("resps")))
    mresp = [e for e in resps if e.get("latency_ns")]
    cids = collections.Counter(e.get("cid") for e in resps)
    T.ok(len(mresp) == io_resps and len(resps) == io_resps and
         all(e.get("qid") == io["connect_qid"] and e.get("dir") == 1
             for e in resps),
         "%s %d response events, all matched (latency_ns > 0), qid %s, "
         "fabric side" % (tag, io_resps, io["connect_qid"]),
         "%d response events, %d with latency; qids %s dirs %s; cids seen "
         "%d" % (len(resps), len(mresp),
                 dict(collections.Counter(e.get("qid") for e in resps)),
                 dict(collections.Counter(e.get("dir") for e in resps)),
                 len(cids)))
    T.ok(tel.get("resyncs") == 0 and types.get("resync", 0) == 0 and
         tel.get("capped") == 0 and tel.get("errors") == 0,
         "%s no resync (counter and events), nothing capped, no error "
         "status" % tag,
         "resyncs %s (events %s) capped %s errors %s" % (
             tel.get("resyncs"), types.get("resync", 0), tel.get("capped"),
             tel.get("errors")))
    # Data PDUs: every byte read came back in C2HData (admin data too), and
    # writes too large for the capsule went in H2CData.
    io_all = exp["io_all"]
    T.ok(tel.get("c2h_data_bytes", -1) >= io_all["read_bytes"] and
         (name != "seqwrite128k" or tel.get("h2c_data_bytes") == io_all["write_bytes"]),
         "%s data PDUs: c2h_data_bytes %s >= read bytes %d%s" % (
             tag, tel.get("c2h_data_bytes"), io_all["read_bytes"],
             ", h2c_data_bytes = write bytes %d" % io_all["write_bytes"]
             if name == "seqwrite128k" else ""), tel)

    # Connection events: one conn_open per TCP connection, and one
    # conn_close per connection that saw FIN or RST (whichever side first).
    opens = [e for e in evs if e.get("type") == "conn_open"]
    io_id = cmds[0].get("conn_id") if cmds else None
    port_of = {io_id: io["iport"]}
    for e in opens:
        if e.get("conn_id") != io_id:
            port_of[e.get("conn_id")] = ts[admin_streams[0]]["iport"]
    fins = fin_dirs(frames)
    want_close = sorted(cid for cid, port in port_of.items() if fins.get(port))
    got_close = sorted(e.get("conn_id") for e in evs if e.get("type") == "conn_close")
    T.ok(len(opens) == 2 and len({e.get("conn_id") for e in opens}) == 2 and
         io_id in port_of and got_close == want_close,
         "%s connection events: 2 conn_open (admin, I/O), one conn_close per "
         "connection that sent FIN/RST (%d)" % (tag, len(want_close)),
         "opens %s; closes %s, want %s" % (
             [e.get("conn_id") for e in opens], got_close, want_close))

    check_profile(name, evpath, exp)
    teardown()
    note("%s done in %.1fs" % (name, time.monotonic() - t0))


PROFILE = None


def have_profile():
    global PROFILE
    if PROFILE is None:
        r = sh(VSN, "profile", "--help", check=False)
        PROFILE = r.returncode == 0 and "--events" in (r.stdout + r.stderr)
    return PROFILE


def find_vm(prof):
    """The per-VM object for vm 1 in vsn -j profile's output."""
    vms = prof.get("vms") if isinstance(prof, dict) else None
    if isinstance(vms, dict):
        vms = [dict(v, vm=k) if isinstance(v, dict) else v
               for k, v in vms.items()]
    if isinstance(vms, list):
        for v in vms:
            if isinstance(v, dict) and str(v.get("vm", v.get("id"))) in \
                    ("1", "vm1"):
                return v
        if len(vms) == 1 and isinstance(vms[0], dict):
            return vms[0]
    return None


def check_profile(name, evpath, exp):
    tag = name + ": profile:"
    descs = ["%s per-VM read_pct within 2 points of tshark's" % tag,
             "%s dominant I/O size exact" % tag,
             "%s class" % tag]
    if not have_profile():
        for d in descs:
            T.skip(d, "vsn profile does not exist yet")
        return
    r = sh(VSN, "-j", "profile", "--events", evpath, check=False)
    try:
        prof = json.loads(r.stdout)
    except ValueError:
        prof = None
    vm = find_vm(prof)
    if vm is None:
        for d in descs:
            T.ok(False, d, "vsn -j profile --events: exit %d: %s %s" % (
                r.returncode, r.stdout[:600], r.stderr[:300]))
        return
    note("%s profile vm: %s" % (name, json.dumps(vm)[:600]))
    ia = exp["io_all"]
    rp = vm.get("read_pct")
    T.ok(isinstance(rp, (int, float)) and abs(rp - ia["read_pct"]) <= 2.0,
         descs[0] + " (%.2f%%)" % ia["read_pct"], "read_pct %r" % rp)
    # Dominant I/O size: the most frequent blocks-per-command over reads
    # and writes, per tshark.
    allh = collections.Counter()
    for h in ia["nlb_hist"].values():
        for k, v in h.items():
            allh[int(k)] += v
    dom = allh.most_common(1)[0][0]
    ib = vm.get("io_blocks")
    got = None
    if isinstance(ib, dict) and ib:
        flat = collections.Counter()
        for k, v in ib.items():
            if isinstance(v, dict):        # {"read": {...}, "write": {...}}
                for kk, vv in v.items():
                    flat[int(kk)] += vv
            else:
                flat[int(k)] += v
        got = flat.most_common(1)[0][0] if flat else None
        want_flat = dict(allh)
        T.ok(got == dom and dict(flat) == want_flat,
             descs[1] + " (%d blocks = %d bytes; distribution %s)" % (
                 dom, dom * exp["lba_bytes"], want_flat),
             "io_blocks %r" % ib)
    else:
        T.ok(False, descs[1] + " (%d blocks)" % dom, "io_blocks %r" % ib)
    rw, sr = CLASS_EXPECT[name]
    cls = vm.get("class")
    parts = cls.split("/") if isinstance(cls, str) else []
    T.ok(len(parts) >= 2 and parts[0] == rw and parts[1] == sr,
         descs[2] + " %s/%s/..." % (rw, sr),
         "class %r, seq_pct %r" % (cls, vm.get("seq_pct")))
    # The one backend and the one path carry all of the VM's I/O: their
    # rows show the same commands, mix and class, not just latencies.
    for kind in ("backends", "paths"):
        rows = prof.get(kind) or []
        row = next((r for r in rows if r.get("id") == 1), None)
        same = row is not None and all(
            row.get(k) == vm.get(k) for k in ("commands", "reads", "writes", "class"))
        T.ok(same and row.get("iops", 0) > 0,
             "%s %s row 1: the VM's %s commands (%s reads, %s writes, IOPS > 0, %s)" % (
                 tag, kind[:-1], vm.get("commands"), vm.get("reads"), vm.get("writes"),
                 vm.get("class")),
             "row %r" % row)


# =============================================================================
def main(argv):
    t0 = time.time()
    if not suite_start(teardown):
        return 1
    sel = [c for c in CAPTURES if not argv or any(a in c for a in argv)]
    workdir = tempfile.mkdtemp(prefix="vsnrp-")
    try:
        for name in sel:
            try:
                check_capture(name, workdir)
            except Exception:   # noqa: BLE001
                T.ok(False, "%s: replay completed" % name,
                     traceback.format_exc())
                teardown()
    finally:
        for f in os.listdir(workdir):
            os.unlink(os.path.join(workdir, f))
        os.rmdir(workdir)
    note("%d assertions, %d failed, %d captures, %.1fs"
         % (T.n, T.failed, len(sel), time.time() - t0))
    print("1..%d" % T.n)
    return 1 if T.failed else 0


if __name__ == "__main__":
    try:
        rc = main(sys.argv[1:])
    finally:
        teardown()
    sys.exit(rc)
