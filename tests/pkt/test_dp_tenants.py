#!/usr/bin/python3
"""Datapath packet tests (BPF_PROG_TEST_RUN, harness: datapath.py).

A hostile tenant: forged and martian source addresses and MACs are dropped
before anything is looked up (no connection entry, counted per VM and per
reason); TCP without a SYN makes no entry (a RST answers it); a VM's
connection limit and new-connection rate hold, and a closing connection
gives its place back.

Run as root from the repository root:  /usr/bin/python3 tests/pkt/test_dp_tenants.py
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from datapath import *  # noqa: E402,F401,F403  (the harness: check, tcp, conn, ...)
from datapath import CASES, case, run_cases  # noqa: E402

DROPS = ("spoofed", "martian", "conn_limit", "conn_rate", "no_syn")


def vm_drops(vm):
    """struct vsn_vm_drops of vm, summed over CPUs, read with bpftool."""
    r = sh("bpftool", "-j", "map", "lookup", "pinned", PIN + "/vsn_vm_drops",
           "key", *hexargs(struct.pack("=I", vm)))
    tot = dict.fromkeys(DROPS, 0)
    for cpu in json.loads(r.stdout)["values"]:
        v = bytes(int(x, 16) for x in cpu["value"])
        for k, n in zip(DROPS, struct.unpack_from("=5Q", v)):
            tot[k] += n
    return tot


def drops_delta(vm, fn):
    before = vm_drops(vm)
    fn()
    after = vm_drops(vm)
    return {k: after[k] - before[k] for k in DROPS if after[k] != before[k]}


def vm_if_limits(ifname, max_conns, gap_ns, burst):
    """Set the limits in the interface's vsn_vm_if entry (the rest kept)."""
    key = hexargs(struct.pack("=I", IFINDEX[ifname]))
    r = sh("bpftool", "-j", "map", "lookup", "pinned", PIN + "/vsn_vm_if", "key", *key)
    v = bytearray(int(x, 16) for x in json.loads(r.stdout)["value"])
    struct.pack_into("=III", v, 16, max_conns, gap_ns, burst)
    sh("bpftool", "map", "update", "pinned", PIN + "/vsn_vm_if", "key", *key,
       "value", *hexargs(bytes(v)))


def vm_state(vm, conns=None):
    """(conns, tat_ns) of vm's vsn_vm_state; with conns, set it (tat 0)."""
    key = hexargs(struct.pack("=I", vm))
    if conns is not None:
        sh("bpftool", "map", "update", "pinned", PIN + "/vsn_vm_state", "key", *key,
           "value", *hexargs(struct.pack("=qQ", conns, 0)))
    r = sh("bpftool", "-j", "map", "lookup", "pinned", PIN + "/vsn_vm_state", "key", *key)
    return struct.unpack("=qQ", bytes(int(x, 16) for x in json.loads(r.stdout)["value"]))


@case
def spoofed_and_martian_sources():
    """Forged sources (another VM's, a backend's, an unlisted one of the
    VM's own subnet) and martians (loopback, broadcast, unspecified,
    multicast, class E; ::1, multicast, IPv4-mapped in an IPv6 header)
    are dropped before any lookup: no entry, counted per VM and reason."""
    route(1, 1, 1, 1)
    cases = [("another VM's address", VM2, VIP, "spoofed"),
             ("a backend's address", BE[1], VIP, "spoofed"),
             ("an unlisted neighbour", "10.0.0.3", VIP, "spoofed"),
             ("127.0.0.1", "127.0.0.1", VIP, "martian"),
             ("255.255.255.255", "255.255.255.255", VIP, "martian"),
             ("0.0.0.0", "0.0.0.0", VIP, "martian"),
             ("224.0.0.5", "224.0.0.5", VIP, "martian"),
             ("240.0.0.1", "240.0.0.1", VIP, "martian"),
             ("::1", "::1", VIP6, "martian"),
             ("ff02::1", "ff02::1", VIP6, "martian"),
             ("::ffff:10.0.0.2 in an IPv6 header", "::ffff:10.0.0.2", VIP6, "martian"),
             ("another VM's IPv6", "2001:db8:6::2", VIP6, "spoofed")]
    for i, (tag, src, vip, why) in enumerate(cases):
        syn = tcp(VM1_MAC, GW_MAC, src, vip, 44000 + i, 4420, flags="S")
        d = drops_delta(1, lambda: check(
            "SYN from %s" % tag, "vsn_vm_ingress", syn, TC_ACT_SHOT,
            cdelta=fwd_delta(len(syn), reason=why)))
        left = [k for k in conns_raw() if 44000 + i in (k[3], k[6])]
        T.ok(d == {why: 1} and not left,
             "SYN from %s: no connection entry, vm 1's %s +1" % (tag, why), (d, left))
    # A data segment and a RoCEv2 packet with a forged source: the same.
    seg = tcp(VM1_MAC, GW_MAC, VM2, VIP, 44100, 4420, payload=b"x" * 64)
    check("data from another VM's address", "vsn_vm_ingress", seg, TC_ACT_SHOT,
          cdelta=fwd_delta(len(seg), reason="spoofed"))
    roce = P.roce_v4(VM1_MAC, GW_MAC, "10.0.0.9", ROCE4, 49400, bth_opcode=0x11)
    check("RoCEv2 from a forged source", "vsn_vm_ingress", roce, TC_ACT_SHOT,
          cdelta=fwd_delta(len(roce), reason="spoofed"))
    # Non-storage traffic the VM may send the host (ARP, ICMP) is not ours.
    arp = P.plain(VM1_MAC, GW_MAC, "arp", "10.0.0.99", "10.0.0.1")
    check("ARP from any address passes", "vsn_vm_ingress", arp, TC_ACT_OK)
    # The VM's own addresses still work, both families.
    for src, vip, s in ((VM1, VIP, 44200), (VM1_6, VIP6, 44201)):
        syn = tcp(VM1_MAC, GW_MAC, src, vip, s, 4420, flags="S")
        rv, _ = run("vsn_vm_ingress", syn, ctx_for("vsn_vm_ingress"))
        T.ok(rv == TC_ACT_REDIRECT and conn(1, src, s) is not None,
             "SYN from the VM's own %s is steered" % src, rv)


@case
def forged_mac():
    """vm1 has a MAC in the config: its address from another MAC is
    dropped as spoofed; vm2 has none, so any MAC passes there."""
    route(1, 1, 1, 1)
    syn = tcp("52:54:00:de:ad:01", GW_MAC, VM1, VIP, 44300, 4420, flags="S")
    d = drops_delta(1, lambda: check("vm1's address from a forged MAC", "vsn_vm_ingress",
                                     syn, TC_ACT_SHOT,
                                     cdelta=fwd_delta(len(syn), reason="spoofed")))
    T.ok(d == {"spoofed": 1} and conn(1, VM1, 44300) is None,
         "forged MAC: no entry, vm 1's spoofed +1", d)
    syn2 = tcp("52:54:00:de:ad:02", GW_MAC, VM2, VIP, 44301, 4420, flags="S")
    rv, _ = run("vsn_vm_ingress", syn2, ctx_for("vsn_vm_ingress", "vmif6"))
    T.ok(rv == TC_ACT_REDIRECT and conn(2, VM2, 44301) is not None,
         "vm2 (no MAC configured) is steered from any MAC", rv)


@case
def source_prefix():
    """vm2's 10.77.0.0/16: any source inside it is steered, the next
    address outside it is spoofed."""
    inside = tcp(VM2_MAC, GW_MAC, "10.77.255.254", VIP, 44350, 4420, flags="S")
    rv, _ = run("vsn_vm_ingress", inside, ctx_for("vsn_vm_ingress", "vmif6"))
    T.ok(rv == TC_ACT_REDIRECT and conn(2, "10.77.255.254", 44350) is not None,
         "a source inside vm2's prefix is steered", rv)
    outside = tcp(VM2_MAC, GW_MAC, "10.78.0.0", VIP, 44351, 4420, flags="S")
    d = drops_delta(2, lambda: check("a source just outside vm2's prefix", "vsn_vm_ingress",
                                     outside, TC_ACT_SHOT, ifname="vmif6",
                                     cdelta=fwd_delta(len(outside), reason="spoofed")))
    T.ok(d == {"spoofed": 1}, "outside the prefix: vm 2's spoofed +1", d)


@case
def entries_only_from_syn():
    """TCP to a volume without an entry and without a SYN (a stray ACK, a
    data segment, a SYN-ACK, a FIN) makes no entry: it is answered with a
    RST (the initiator reconnects at once) and counted; a stray RST is
    dropped, not answered."""
    route(1, 1, 1, 1)
    for i, (flags, pay) in enumerate((("A", b""), ("PA", b"data"), ("SA", b""),
                                      ("FA", b""))):
        s = 44400 + i
        pkt = tcp(VM1_MAC, GW_MAC, VM1, VIP, s, 4420, flags=flags, payload=pay,
                  seq=5000, ack=777)
        exp = rst_frame(GW_MAC, VM1_MAC, VIP, VM1, 4420, s, 777,
                        5000 + len(pay) + (1 if "S" in flags or "F" in flags else 0))
        d = drops_delta(1, lambda: check(
            "%s without a connection" % flags, "vsn_vm_ingress", pkt, TC_ACT_REDIRECT,
            exp=exp, cdelta=fwd_delta(len(pkt), reason="no_syn")))
        T.ok(d == {"no_syn": 1} and conn(1, VM1, s) is None,
             "%s without a connection: no entry, vm 1's no_syn +1" % flags, d)
    rst = tcp(VM1_MAC, GW_MAC, VM1, VIP, 44410, 4420, flags="R")
    check("a stray RST", "vsn_vm_ingress", rst, TC_ACT_SHOT,
          cdelta=fwd_delta(len(rst), reason="no_syn"))
    # The host's own flows may still join mid-stream (they predate attach).
    vsn("route", "set", "host", "5", "7", "2")
    ack = tcp(IFMAC["up0"], "02:00:00:00:99:99", HOST_ADDR, BE[7], 44420, 4420,
              flags="A")
    rv, _ = run("vsn_up_egress", ack, ctx_for("vsn_up_egress"))
    T.ok(rv in (TC_ACT_OK, TC_ACT_REDIRECT) and conn(0, HOST_ADDR, 44420) is not None,
         "a host flow's mid-stream ACK still makes its entry", rv)


@case
def connection_limit():
    """max_connections: SYNs past it are dropped (conn_limit); a FIN, a RST
    from either end, or a reset gives the place back; a retransmitted SYN
    of an open connection is not a new one."""
    route(1, 1, 1, 1)
    vm_if_limits("vmif", 3, 0, 1)
    vm_state(1, conns=0)
    try:
        rvs = []
        for s in range(44500, 44503):
            rv, _ = run("vsn_vm_ingress", tcp(VM1_MAC, GW_MAC, VM1, VIP, s, 4420,
                                              flags="S"), ctx_for("vsn_vm_ingress"))
            rvs.append(rv)
        T.ok(rvs == [TC_ACT_REDIRECT] * 3 and vm_state(1)[0] == 3,
             "3 SYNs open 3 connections (count 3)", (rvs, vm_state(1)))
        rv, _ = run("vsn_vm_ingress", tcp(VM1_MAC, GW_MAC, VM1, VIP, 44500, 4420,
                                          flags="S"), ctx_for("vsn_vm_ingress"))
        T.ok(rv == TC_ACT_REDIRECT and vm_state(1)[0] == 3,
             "a retransmitted SYN is no new connection", (rv, vm_state(1)))
        syn = tcp(VM1_MAC, GW_MAC, VM1, VIP, 44503, 4420, flags="S")
        d = drops_delta(1, lambda: check("4th SYN over max_connections 3", "vsn_vm_ingress",
                                         syn, TC_ACT_SHOT,
                                         cdelta=fwd_delta(len(syn), reason="conn_limit")))
        T.ok(d == {"conn_limit": 1} and conn(1, VM1, 44503) is None,
             "over the limit: no entry, vm 1's conn_limit +1", d)
        run("vsn_vm_ingress", tcp(VM1_MAC, GW_MAC, VM1, VIP, 44500, 4420, flags="FA"),
            ctx_for("vsn_vm_ingress"))
        run("vsn_vm_ingress", tcp(VM1_MAC, GW_MAC, VM1, VIP, 44500, 4420, flags="A"),
            ctx_for("vsn_vm_ingress"))
        T.ok(vm_state(1)[0] == 2, "the VM's FIN gives one place back, once",
             vm_state(1))
        run("vsn_up_xdp", tcp(FAB_MAC, IFMAC["up0"], BE[1], VM1, BE_PORT, 44501,
                              flags="R"), ctx_for("vsn_up_xdp"))
        T.ok(vm_state(1)[0] == 1, "the backend's RST gives one back", vm_state(1))
        rv, _ = run("vsn_vm_ingress", syn, ctx_for("vsn_vm_ingress"))
        T.ok(rv == TC_ACT_REDIRECT and conn(1, VM1, 44503) is not None and
             vm_state(1)[0] == 2, "below the limit again: the SYN opens it",
             (rv, vm_state(1)))
        rv, _ = run("vsn_vm_ingress", tcp(VM1_MAC, GW_MAC, VM1, VIP, 44500, 4420,
                                          flags="S", seq=99999),
                    ctx_for("vsn_vm_ingress"))
        T.ok(rv == TC_ACT_REDIRECT and vm_state(1)[0] == 3,
             "a new SYN on the closed connection's tuple counts again", vm_state(1))
    finally:
        vm_if_limits("vmif", 0, 0, 1)
        vm_state(1, conns=0)


@case
def connection_rate():
    """The new-connection rate (GCRA): a burst of conn_burst passes, the
    next SYN at once is dropped (conn_rate), and after one interval one
    more passes."""
    route(1, 1, 1, 1)
    gap = 300 * 1000 * 1000
    vm_if_limits("vmif", 0, gap, 2)
    vm_state(1, conns=0)
    try:
        rvs = []
        for s in range(44600, 44602):
            rv, _ = run("vsn_vm_ingress", tcp(VM1_MAC, GW_MAC, VM1, VIP, s, 4420,
                                              flags="S"), ctx_for("vsn_vm_ingress"))
            rvs.append(rv)
        syn = tcp(VM1_MAC, GW_MAC, VM1, VIP, 44602, 4420, flags="S")
        d = drops_delta(1, lambda: check("3rd SYN in a burst of 2", "vsn_vm_ingress",
                                         syn, TC_ACT_SHOT,
                                         cdelta=fwd_delta(len(syn), reason="conn_rate")))
        T.ok(rvs == [TC_ACT_REDIRECT] * 2 and d == {"conn_rate": 1} and
             conn(1, VM1, 44602) is None,
             "a burst of 2 passes, the 3rd is refused by the rate", (rvs, d))
        time.sleep(gap / 1e9 + 0.05)
        rv, _ = run("vsn_vm_ingress", syn, ctx_for("vsn_vm_ingress"))
        T.ok(rv == TC_ACT_REDIRECT and conn(1, VM1, 44602) is not None,
             "one interval later it passes", rv)
    finally:
        vm_if_limits("vmif", 0, 0, 1)
        vm_state(1, conns=0)


if __name__ == "__main__":
    sys.exit(run_cases(CASES))
