#!/usr/bin/python3
"""NVMe/TCP parser tests (BPF_PROG_TEST_RUN, harness: nvmetcp.py).

Commands and what is made of them: telemetry on after attach and the
connection handshake, admin-queue commands, sampling, sequential marks and
sampled timing, latency histograms and errors, parsing off, and the CLI
(`vsn show telemetry`, `vsn events`).

Run as root from the repository root:
    /usr/bin/python3 tests/pkt/test_nvme_commands.py [CASE-SUBSTRING...]
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nvmetcp import *  # noqa: E402,F401,F403  (the harness: Conn, Phase, check_*, ...)
from nvmetcp import CASES, case, every_event, run_cases  # noqa: E402,F401


@case
def enabled_and_handshake():
    """vsn attach enables telemetry; a connection's SYN gives a conn_open
    event; ICReq/ICResp/Connect/response are 4 PDUs, no resync."""
    cfg = get_tel_cfg()
    T.ok(cfg["enabled"] == 1, "vsn_tel_cfg.enabled is 1 after attach",
         cfg)
    # Every event, no sampling or rate cap, for the exact checks below.
    set_tel_cfg(1, 0, 0)
    c = Conn()
    with Phase() as ph:
        n = c.open()
    check_fed("SYN/SYN-ACK/ACK", n)
    opens = [g for g in ph.ev if g.get("type") == "conn_open"]
    T.ok(len(opens) == 1 and len(ph.ev) == 1 and opens[0]["vm"] == VM_ID
         and opens[0]["volume"] == VOL4 and opens[0]["backend"] == BE4_ID
         and opens[0]["path"] == PATH_ID,
         "one conn_open event (vm 1, volume 1, backend 1, path 1)",
         "\n".join(fmt_ev(g) for g in ph.ev))
    with Phase() as ph:
        c.nvme_init(qid=1)
    check_fed("ICReq/ICResp/Connect", 4)
    check_stats("handshake", ph.d, dict(pdus=4, resyncs=0, capped=0,
                                            cmds=0, read_cmds=0,
                                            write_cmds=0),
                nevents=len(ph.ev))
    io = [g for g in ph.ev if g.get("type") in ("cmd", "resp")]
    if io:
        note("the Connect itself produced events: %s"
             % "; ".join(fmt_ev(g) for g in io))
    T.ok(all(g.get("opcode", 0x7F) == 0x7F or g["type"] == "resp"
             for g in io) and
         all(g.get("cid") == 0x0C01 for g in io),
         "no event other than for the Connect capsule itself",
         "\n".join(fmt_ev(g) for g in ph.ev))
    if opens:
        T.ok(all(g.get("conn_id") == opens[0]["conn_id"] for g in io),
             "Connect events (if any) carry the connection's conn_id")
    return c

@case
def admin_queue_commands():
    """A connection whose Connect has qid 0 is the admin queue: its
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
    check_fed("admin + I/O interleaved", n)
    exp = [exp_cmd(p, 5) for p in iocmds]
    check_events("only the I/O connection's commands (qid 5)", ph.ev,
                 exp, io)
    check_stats("admin", ph.d, dict(counts(exp), admin=at_least(5),
                                        pdus=len(adm) + len(iocmds),
                                        resyncs=0), nevents=len(ph.ev))
    # Property Get (opcode 0x7f, fctype 0x04) is an admin-queue command
    # like the others: the contract counts every command on qid 0.
    T.ok(ph.d["admin"] == len(adm), "all %d admin-queue commands "
         "counted in admin, Fabrics Property Get included" % len(adm),
         "admin +%d" % ph.d["admin"])
    with Phase() as ph:
        n = a.send("t2i", N.per_segment(
            [N.capsule_resp(0x11 + i) for i in range(len(adm))], 2))
    check_fed("admin responses", n)
    T.ok(not [g for g in ph.ev if g.get("type") == "cmd"] and
         all(g.get("qid") == 0 for g in ph.ev if g.get("type") == "resp"),
         "admin responses: no command event, no I/O-queue response",
         "\n".join(fmt_ev(g) for g in ph.ev))
    check_stats("admin responses", ph.d, dict(
        pdus=len(adm), cmds=0, matched=0, errors=0, resyncs=0),
        nevents=len(ph.ev))
    if ph.ev:
        note("admin responses gave events: %s"
             % "; ".join(fmt_ev(g) for g in ph.ev))

    # No Connect at all: ICReq/ICResp then I/O-looking commands.
    nc = Conn()
    nc.open()
    with Phase() as ph:
        nc.nvme_init(qid=None, connect=False)
        cmds = [N.read_cmd(0x31 + i, slba=i) for i in range(4)]
        n = nc.send("i2t", N.per_segment(cmds, 2))
        n += nc.send("t2i", N.per_segment(responses(nc, cmds), 1))
    check_fed("no Connect", n)
    T.ok(not [g for g in ph.ev if g.get("type") in ("cmd", "resp")],
         "no Connect seen: no command or response events",
         "\n".join(fmt_ev(g) for g in ph.ev))
    check_stats("no Connect", ph.d, dict(pdus=2 + 8, resyncs=0,
                                             read_cmds=0, matched=0),
                nevents=len(ph.ev))

@case
def sampling_one_in_n():
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
    check_fed("sampling", n)
    check_events("sampled events", ph.ev,
                 [exp_cmd(x, 17, must=False) for x in cmds], c)
    check_stats("sampling", ph.d, dict(cmds=12, events_sent=len(ph.ev),
                                   events_sampled=12 - len(ph.ev)))
    T.ok(2 <= len(ph.ev) <= 10, "%d of 12 command events sent with "
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
def sequential_marks_and_sampled_timing():
    """The datapath marks sequential reads and writes (per queue and
    namespace), so the mark stays right when only 1 command in N is
    reported; with sample_every 3 only the reported commands are timed:
    their responses come matched, the others' are counted, not reported."""
    c = Conn()
    c.open()
    c.nvme_init(qid=21)
    cmds, seq = seq_plan(0x6100)
    with Phase() as ph:
        n = c.send("i2t", N.per_segment(cmds, 1))
    check_fed("sequential", n)
    exp = [dict(exp_cmd(x, 21), seq=q) for x, q in zip(cmds, seq)]
    check_events("every command: sequential marks", ph.ev, exp, c)
    check_stats("sequential", ph.d, dict(counts(exp), seq_cmds=sum(seq)),
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
    check_fed("sampled", n)
    got_cmd = [g["cid"] for g in ph.ev if g.get("type") == "cmd"]
    exp = [dict(exp_cmd(x, 22, must=False), seq=q) for x, q in zip(cmds, seq)]
    exp += [exp_resp(x, 22, True, must=False) for x in resp]
    io = check_events("sample_every 3: reported commands keep their "
                      "marks, their responses are matched", ph.ev, exp, c2)
    got_resp = [g["cid"] for g in io if g["type"] == "resp"]
    T.ok(2 <= len(got_cmd) <= 4 and got_resp == got_cmd,
         "%d of 8 commands reported with sample_every 3, and exactly "
         "their responses" % len(got_cmd),
         "commands %s responses %s" % (got_cmd, got_resp))
    check_stats("sampled", ph.d,
                dict(cmds=8, resps=8, seq_cmds=sum(seq), matched=len(got_cmd),
                     unmatched=0, events_sampled=8 - len(got_cmd)),
                nevents=len(ph.ev))

@case
def latency_and_errors():
    """Responses matched to their commands with latency_ns (at least the
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
    check_fed("latency", n)
    exp = [exp_cmd(x, 10) for x in cmds] + \
        [exp_resp(x, 10, True) for x in resp[:3]] + \
        [exp_resp(stray[0], 10, False)] + \
        [exp_resp(x, 10, True) for x in resp[3:]] + \
        [exp_resp(stray[1], 10, False)]
    io = check_events("latency", ph.ev, exp, c)
    check_stats("latency", ph.d, dict(counts(exp), pdus=12, resyncs=0),
                nevents=len(ph.ev))
    lat = [g["latency_ns"] for g in io if g["type"] == "resp"
           and g["cid"] in range(0x71, 0x76)]
    T.ok(len(lat) == 5 and all(50e6 <= x <= wall + 1e6 for x in lat),
         "matched latency_ns >= 50 ms slept and <= the wall time "
         "(%.0f ms)" % (wall / 1e6), "latencies %s" % lat)
    T.ok(STATUS_CONV["seen"] is not None,
         "error statuses reported (convention: %s)"
         % {"raw": "raw CQE half-word at +22", "sf": "status field (>> 1)",
            None: "?"}[STATUS_CONV["seen"]])
    ids = [g["conn_id"] for g in io]
    T.ok(len(set(ids)) == 1, "commands and responses share one conn_id",
         ids)
    hist1 = lat_hist()
    if hist0 is None or hist1 is None:
        T.ok(False, "vsn_lat_hist readable", "map not found")
        return
    want = {}
    for x in lat:
        b = min(int(math.log2(x)), LAT_BUCKETS - 1)
        for idx in (BE_BASE + BE4_ID, PATH_BASE + PATH_ID, VM_BASE + VM_ID):
            k = idx * LAT_BUCKETS + b
            want[k] = want.get(k, 0) + 1
    got = {k: hist1.get(k, 0) - hist0.get(k, 0) for k in
           set(hist0) | set(hist1) if hist1.get(k, 0) != hist0.get(k, 0)}
    T.ok(got == want, "latency histogram: 5 latencies in their log2 "
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
def parsing_disabled():
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
        check_fed("disabled", n + 4)
        T.ok(not ph.ev and not any(ph.d.values()),
             "disabled: no events, no counter moved",
             "%s\n%s" % (ph.d, "; ".join(map(fmt_ev, ph.ev))))
    finally:
        set_tel_cfg(1, 0, 0)
    c2 = Conn()
    with Phase() as ph:
        c2.open()
        c2.nvme_init(qid=13)
        cmd = N.read_cmd(0x99, slba=9, nlb=9)
        n = c2.send("i2t", [(0, cmd)])
    check_events("enabled again", ph.ev, [
        exp_resp(N.capsule_resp(0x0C00 + 13), 13, False, must=False),
        exp_cmd(cmd, 13)], c2)

@case
def cli_telemetry_and_events():
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
         "vsn -j show telemetry: all %d counters, equal to the map"
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
    check_fed("cli", n)
    t0 = time.monotonic()
    r = vsn("-j", "events", "--count", "3", "--timeout", "5", check=False,
            timeout=30)
    took = time.monotonic() - t0
    lines = [x for x in r.stdout.splitlines() if x.strip()]
    try:
        evs = [json.loads(x) for x in lines]
    except ValueError as e:
        evs = None
        note("bad JSON line: %s" % e)
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
         "vsn -j events --count 3: 3 JSON lines with the right fields,"
         " exits at once (%.1fs)" % took, "\n".join(bad))
    t0 = time.monotonic()
    r = vsn("-j", "events", "--count", "1", "--timeout", "1", check=False,
            timeout=30)
    took = time.monotonic() - t0
    T.ok(not r.stdout.strip() and 0.8 < took < 4,
         "vsn -j events with nothing pending exits after --timeout 1 "
         "(%.1fs) printing nothing" % took,
         "exit %d out %r err %r" % (r.returncode, r.stdout[:200],
                                    r.stderr[:200]))


if __name__ == "__main__":
    sys.exit(run_cases(CASES, sys.argv[1:]))
