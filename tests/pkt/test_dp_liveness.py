#!/usr/bin/python3
"""Datapath packet tests (BPF_PROG_TEST_RUN, harness: datapath.py).

Path liveness stamps for the silent-cut watch, and fabric-side entries
following their path.

Run as root from the repository root:  /usr/bin/python3 tests/pkt/test_dp_liveness.py
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from datapath import *  # noqa: E402,F401,F403  (the harness: check, tcp, conn, ...)
from datapath import CASES, case, run_cases  # noqa: E402


def path_live(pid, full=False):
    """struct vsn_path_live of path pid: {await, rx, tx} (ns), and with
    full=True its await_be and await_vm too."""
    r = sh("bpftool", "-j", "map", "lookup", "pinned", PIN + "/vsn_path_live",
           "key", *hexargs(struct.pack("=I", pid)))
    v = bytes(int(x, 16) for x in json.loads(r.stdout)["value"])
    d = dict(zip(("await", "rx", "tx", "be", "vm", "syn"), struct.unpack_from("=3QIIQ", v)))
    if not full:
        del d["be"], d["vm"], d["syn"]
    return d


def path_live_clear(pid):
    sh("bpftool", "map", "update", "pinned", PIN + "/vsn_path_live", "key",
       *hexargs(struct.pack("=I", pid)), "value", *hexargs(bytes(40)))


def timed(prog, pkt, ifname=None):
    """Run pkt; returns (retval, t0, t1) with CLOCK_MONOTONIC_COARSE around
    it: the clock the datapath stamps vsn_path_live with
    (bpf_ktime_get_coarse_ns reads the same timekeeper value)."""
    coarse = getattr(time, "CLOCK_MONOTONIC_COARSE", 6)  # linux/time.h
    t0 = time.clock_gettime_ns(coarse)
    rv, _ = run(prog, pkt, ctx_for(prog, ifname))
    return rv, t0, time.clock_gettime_ns(coarse)

@case
def path_liveness_stamps():
    """vsn_path_live: a request-bearing packet towards storage of a
    connection storage answered stamps await_ns (a pure ACK does not, nor
    the SYN of a connection not yet answered), anything back on the path
    clears it;
    tx_ns / rx_ns stamp the directions; the fabric-side entry follows the
    connection's path so replies clear the path in use."""
    P5, P2 = 5, 2
    route(1, 1, 1, P5)
    for pid in (P5, P2):
        path_live_clear(pid)
    s = 42400
    rv, t0, t1 = timed("vsn_vm_ingress",
                       tcp(VM1_MAC, GW_MAC, VM1, VIP, s, 4420, flags="S"))
    pl = path_live(P5, full=True)
    T.ok(rv == TC_ACT_REDIRECT and pl["await"] == 0 and t0 <= pl["syn"] <= t1 and
         t0 <= pl["tx"] <= t1 and pl["rx"] == 0,
         "SYN stamps tx and syn of its path, not await (nothing answered it yet)",
         (rv, t0, t1, pl))
    raw = conns_raw()
    fab = [v for k, v in raw.items() if k[0] == 1 and k[6] == s]
    T.ok(len(fab) == 1 and fab[0]["last_path"] == P5,
         "the new fabric-side entry knows its path (%d)" % P5, fab)
    rep = tcp(FAB_MAC, IFMAC["up0"], BE[1], VM1, BE_PORT, s, flags="SA")
    rv, t0, t1 = timed("vsn_up_xdp", rep)
    pl = path_live(P5, full=True)
    T.ok(rv == XDP_REDIRECT and pl["await"] == 0 and pl["syn"] == 0 and
         t0 <= pl["rx"] <= t1, "reply (XDP) stamps rx and clears syn", (rv, pl))
    path_live_clear(P5)
    rv, t0, t1 = timed("vsn_vm_ingress",
                       tcp(VM1_MAC, GW_MAC, VM1, VIP, s, 4420, flags="A"))
    pl = path_live(P5)
    T.ok(rv == TC_ACT_REDIRECT and pl["await"] == 0 and t0 <= pl["tx"] <= t1,
         "a pure ACK stamps tx but not await", (rv, pl))
    rv, t0, t1 = timed("vsn_vm_ingress", tcp(VM1_MAC, GW_MAC, VM1, VIP, s,
                                             4420, payload=b"cmd"))
    first = path_live(P5, full=True)
    T.ok(rv == TC_ACT_REDIRECT and t0 <= first["await"] <= t1 and
         first["be"] == 1 and first["vm"] == 1,
         "a data packet of the answered connection stamps await, its backend "
         "and VM", (rv, t0, t1, first))
    del first["be"], first["vm"]
    rv, _, _ = timed("vsn_vm_ingress", tcp(VM1_MAC, GW_MAC, VM1, VIP, s,
                                           4420, payload=b"cmd2"))
    T.ok(path_live(P5)["await"] == first["await"],
         "a second request keeps the first await stamp")
    rv, t0, t1 = timed("vsn_up_ingress", tcp(FAB_MAC, IFMAC["up0"], BE[1], VM1,
                                             BE_PORT, s, flags="A"))
    pl = path_live(P5)
    T.ok(rv == TC_ACT_REDIRECT and pl["await"] == 0 and t0 <= pl["rx"] <= t1,
         "a pure ACK back (TC) clears await and stamps rx", (rv, pl))
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
         "after a route change the fabric-side entry's path is %d" % P2,
         fab)
    path_live_clear(P5)
    timed("vsn_vm_ingress", tcp(VM1_MAC, GW_MAC, VM1, VIP, s, 4420,
                                payload=b"again"))
    before5 = path_live(P5)
    timed("vsn_up_xdp", rep)
    p2, p5 = path_live(P2), path_live(P5)
    T.ok(before5["await"] == 0 and p2["await"] == 0 and p2["rx"] > 0 and
         p5["rx"] == 0,
         "the reply stamps path %d (in use), not path %d" % (P2, P5),
         (p2, p5))
    route(1, 1, 1, 1)
    # Host RX and RoCEv2 RX clear their paths too; RoCE always stamps await.
    vsn("route", "set", "host", "5", "7", "2")
    path_live_clear(P2)
    timed("vsn_up_egress", tcp(IFMAC["up0"], "02:00:00:00:99:99", HOST_ADDR,
                               BE[7], 43200, 4420, flags="S"))
    a0 = path_live(P2)["await"]
    timed("vsn_up_xdp", tcp(FAB_MAC, IFMAC["up0"], BE[7], HOST_ADDR, 4420, 43200,
                            flags="SA"))
    timed("vsn_up_egress", tcp(IFMAC["up0"], "02:00:00:00:99:99", HOST_ADDR,
                               BE[7], 43200, 4420, payload=b"cmd"))
    a = path_live(P2, full=True)
    rv, t0, t1 = timed("vsn_up_xdp", tcp(FAB_MAC, IFMAC["up0"], BE[7], HOST_ADDR,
                                         4420, 43200, flags="A"))
    pl = path_live(P2)
    T.ok(not a0 and a["await"] and a["vm"] == 0 and rv == XDP_PASS and
         pl["await"] == 0 and t0 <= pl["rx"] <= t1,
         "host flow: its SYN does not stamp await, data after the SYN-ACK "
         "does (VM 0), host RX clears it", (a0, a, rv, pl))
    path_live_clear(8)
    timed("vsn_vm_ingress", P.roce_v4(VM1_MAC, GW_MAC, VM1, ROCE4, 49301,
                                      bth_opcode=0x11))
    a0 = path_live(8)["await"]
    timed("vsn_up_xdp", P.roce_v4(FAB_MAC, IFMAC["up0"], ROCE4, VM1, 49301))
    rv, t0, t1 = timed("vsn_vm_ingress", P.roce_v4(VM1_MAC, GW_MAC, VM1,
                                                   ROCE4, 49301,
                                                   bth_opcode=0x11))
    a = path_live(8)["await"]
    rv2, t2, t3 = timed("vsn_up_xdp", P.roce_v4(FAB_MAC, IFMAC["up0"], ROCE4, VM1,
                                               49301))
    pl = path_live(8)
    T.ok(not a0 and rv == TC_ACT_REDIRECT and t0 <= a <= t1 and rv2 == XDP_PASS and
         pl["await"] == 0 and t2 <= pl["rx"] <= t3,
         "RoCEv2: a flow's first packet does not stamp await; once storage "
         "answered, every packet (even an ACK) does, and RoCE RX clears it",
         (a0, rv, a, rv2, pl))
    # A passed packet stamps nothing.
    path_live_clear(1)
    timed("vsn_vm_ingress", P.plain(VM1_MAC, GW_MAC, "tcp", VM1, VIP))
    T.ok(path_live(1) == {"await": 0, "rx": 0, "tx": 0},
         "a non-storage packet leaves path 1's entry alone")

@case
def fabric_entry_follows_path_with_snat_clash():
    """the fabric-side entry of a connection whose SNAT port differs
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
         "vm2's fabric-side entry (SNAT port %s) moved to path 2, "
         "vm1's (port %d) stays on path 6" % (port2, sport), (rv, fab))
    route(1, 1, 1, 1)
    route(2, 6, 1, 1)


if __name__ == "__main__":
    sys.exit(run_cases(CASES))
