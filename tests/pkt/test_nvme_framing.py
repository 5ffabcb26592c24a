#!/usr/bin/python3
"""NVMe/TCP parser tests (BPF_PROG_TEST_RUN, harness: nvmetcp.py).

Following the PDU stream: headers split at every offset (IPv4, IPv6 across
a sequence wrap), many PDUs per segment, digests, garbage, lost segments and
holes (resync, no wrong event), overlapping and plain retransmissions.

Run as root from the repository root:
    /usr/bin/python3 tests/pkt/test_nvme_framing.py [CASE-SUBSTRING...]
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nvmetcp import *  # noqa: E402,F401,F403  (the harness: Conn, Phase, check_*, ...)
from nvmetcp import CASES, case, every_event, run_cases  # noqa: E402,F401


@case
def every_event_reported():
    """Exact event checks: every command reported, no cap."""
    every_event()


@case
def headers_split_at_every_offset():
    """PDU headers split at every byte offset: capsule k of a stream is
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
    check_fed("commands", n)
    check_events("commands (%d segments)" % len(segs), ph.ev, exp, c)
    k = counts(exp)
    check_stats("commands", ph.d, dict(k, pdus=len(cmds), resyncs=0,
                                           capped=0, admin=0),
                nevents=len(ph.ev))
    resp = responses(c, cmds, lambda i: 0)
    rsegs = N.cut_pdus_at(resp, [i % 24 for i in range(len(resp))]
                          [:70] + [list(range(1, 24))] + [None] * 9)
    rexp = [exp_resp(p, 3, True) for p in resp]
    with Phase() as ph:
        n = c.send("t2i", rsegs)
    check_fed("responses", n)
    io = check_events("responses (%d segments)" % len(rsegs), ph.ev,
                      rexp, c)
    check_stats("responses", ph.d, dict(
        counts(rexp), pdus=len(resp), resyncs=0, capped=0, cmds=0),
        nevents=len(ph.ev))
    lat = [g["latency_ns"] for g in io]
    note("latency_ns min %s max %s" % (min(lat or [0]), max(lat or [0])))

@case
def split_headers_ipv6_sequence_wrap():
    """The same over IPv6 with sequence numbers wrapping mid-stream:
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
    check_fed("split headers IPv6", n)
    rexp = [exp_resp(p, 7, True) for p in resp]
    got = ph.ev
    check_events("commands", [g for g in got if g["type"] != "resp"],
                 exp, c)
    check_events("responses", [g for g in got if g["type"] != "cmd"],
                 rexp, c)
    check_stats("split headers IPv6", ph.d, dict(counts(exp + rexp), pdus=48, resyncs=0,
                                   capped=0), nevents=len(got))

@case
def pdus_per_segment():
    """1 to 16 PDUs per segment: all parsed.  Then 20 and 40 PDUs in
    one super-frame: 16 parsed, the rest counted capped, no wrong event;
    later segments are parsed again."""
    c = Conn()
    c.open()
    c.nvme_init(qid=2)
    cmds = io_mix(c, 0x300, sum(range(1, 17)), data_every=1000)
    segs = N.per_segment(cmds, list(range(1, 17)))
    T.ok([len(N.walk(b)) for _, b in segs] == list(range(1, 17)),
         "generator made segments of 1..16 PDUs")
    exp = [exp_cmd(p, 2) for p in cmds]
    resp = responses(c, cmds, lambda i: 0)
    rsegs = N.per_segment(resp, list(range(16, 0, -1)))
    rexp = [exp_resp(p, 2, True) for p in resp]
    with Phase() as ph:
        n = c.send("i2t", segs) + c.send("t2i", rsegs)
    check_fed("1..16 per segment", n)
    check_events("commands 1..16 per segment",
                 [g for g in ph.ev if g["type"] != "resp"], exp, c)
    check_events("responses 16..1 per segment",
                 [g for g in ph.ev if g["type"] != "cmd"], rexp, c)
    check_stats("1..16 per segment", ph.d, dict(
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
        T.ok(len(sf) == 1, "%s PDUs fit one test-run super-frame" % tag)
        exp = [exp_cmd(p, 2) for p in big[:16]] + \
            [exp_cmd(p, 2, must=False) for p in after[:1]] + \
            [exp_cmd(p, 2) for p in after[1:]]
        with Phase() as ph:
            n = c.send("i2t", sf) + c.send("i2t", N.per_segment(after, 1))
        check_fed("super-frame of %s" % tag, n)
        check_events("super-frame of %s: first 16 reported, none past "
                     "the cap, later segments again" % tag, ph.ev, exp, c)
        check_stats("super-frame of %s" % tag, ph.d, dict(
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
        check_fed("response super-frame of %d" % (nbig + 4), n)
        rexp += [exp_resp(N.capsule_resp(0x7777), 2, False, must=False),
                 exp_resp(N.capsule_resp(0x7778), 2, False)]
        check_events("response super-frame of %d: first 16 matched, "
                     "later segments again" % (nbig + 4), ph.ev, rexp, c)
        check_stats("response super-frame", ph.d, dict(
            capped=at_least(1), matched=16, resps=between(17, 18),
            unmatched=between(1, 2)), nevents=len(ph.ev))

def digest_case(tag, digests, v6=False):
    """Reads with C2HData, writes with in-capsule data, writes through
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
def header_and_data_digests():
    """Digests on and off (HDGST/DDGST flags, plen including them)."""
    digest_case("digests off", False)
    digest_case("digests on", True)
    digest_case("digests on IPv6", True, v6=True)

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
def garbage_never_reported():
    """A bogus header right after a valid PDU (same segment, followed
    by a valid-looking capsule that is not at a segment start): one resync
    and a resync event; nothing wrong reported; the next segments'
    commands are reported again."""
    for name, bogus in BOGUS:
        tag = "%s" % name
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
def lost_segments_resync():
    """Lost segments (a hole in the sequence space): a resync is
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
         "generator: 6 segments, the one after the hole starts "
         "inside data")
    with Phase() as ph:
        n = c.send("i2t", segs, skip=(2,))
    check_fed("hole in data", n)
    exp = [exp_cmd(x, 8) for x in cmds[:3]] + \
        [exp_cmd(x, 8) for x in cmds[4:]]
    check_events("hole in data: c51..c53 and c55..c57, never c54 "
                 "(mid-segment after the hole) nor the hidden headers",
                 ph.ev, exp, c, extra_ok=("resync",))
    check_stats("lost segment", ph.d, dict(resyncs=between(1, 2), capped=0,
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
    check_fed("hole of whole PDUs", n)
    exp = [exp_cmd(cmds[0], 9), exp_cmd(cmds[3], 9, must=False),
           exp_cmd(cmds[4], 9), exp_cmd(cmds[5], 9)]
    check_events("commands before and after the hole, not the lost "
                 "ones", ph.ev, exp, c, extra_ok=("resync",))
    rs = [g for g in ph.ev if g.get("type") == "resync"]
    T.ok(len(rs) == 1, "one resync event", "\n".join(map(fmt_ev, rs)))
    check_stats("lost header", ph.d, dict(resyncs=1, capped=0,
                                   cmds=between(3, 4)), nevents=len(ph.ev))
    # (c) a hole in the response direction: later responses match again.
    resp = [N.capsule_resp(0x61 + i, status=0, sqid=9) for i in range(6)]
    with Phase() as ph:
        n = c.send("t2i", N.per_segment(resp, [1, 1, 2, 1, 1]), skip=(1,))
    check_fed("hole in responses", n)
    rexp = [exp_resp(resp[0], 9, True),
            exp_resp(resp[2], 9, False, must=False),
            exp_resp(resp[3], 9, None, must=False),
            exp_resp(resp[4], 9, True), exp_resp(resp[5], 9, True)]
    check_events("responses before and after the hole", ph.ev, rexp,
                 c, extra_ok=("resync",))
    check_stats("lost response", ph.d, dict(resyncs=1, errors=0,
                                   matched=between(3, 4),
                                   unmatched=between(0, 2)),
                nevents=len(ph.ev))

@case
def hole_after_partial_header():
    """The segment lost is the rest of a split header: the kept header
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
    check_fed("hole", n)
    exp = [exp_cmd(cmds[0], 15), exp_cmd(cmds[3], 15, must=False),
           exp_cmd(cmds[4], 15)]
    check_events("hole after a partial header", ph.ev, exp, c,
                 extra_ok=("resync",))
    check_stats("hole", ph.d, dict(resyncs=1, cmds=between(2, 3)),
                nevents=len(ph.ev))

@case
def overlapping_retransmission():
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
    check_fed("overlap", n)
    exp = [exp_cmd(cmds[0], 16), exp_cmd(cmds[1], 16),
           exp_cmd(cmds[2], 16, must=False), exp_cmd(cmds[3], 16, must=False),
           exp_cmd(cmds[4], 16)]
    check_events("overlap: no duplicate of c2, c5 reported", ph.ev, exp,
                 c, extra_ok=("resync",))
    check_stats("overlap", ph.d, dict(resyncs=between(0, 1),
                                   cmds=between(3, 5)), nevents=len(ph.ev))

@case
def retransmission_not_counted_twice():
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
    check_fed("retransmission", n)
    check_events("retransmissions", ph.ev, [exp_cmd(x, 11)
                                                for x in cmds], c)
    check_stats("retransmission", ph.d, dict(counts([exp_cmd(x, 11) for x in cmds]),
                                  resyncs=0, pdus=5), nevents=len(ph.ev))


if __name__ == "__main__":
    sys.exit(run_cases(CASES, sys.argv[1:]))
