#!/usr/bin/python3
"""Datapath packet tests (BPF_PROG_TEST_RUN, harness: datapath.py).

Connections marked reset: RSTs back to the initiator, entries removed,
a new SYN starting afresh, RoCE dropped.

Run as root from the repository root:  /usr/bin/python3 tests/pkt/test_dp_reset.py
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from datapath import *  # noqa: E402,F401,F403  (the harness: check, tcp, conn, ...)
from datapath import CASES, case, run_cases  # noqa: E402


@case
def reset_answers_with_rst():
    """a packet of a connection marked reset is answered with a TCP RST
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
        cid = reset_setup("%s" % name, vm, vip, sport, be, 1)
        pkt = tcp(VM1_MAC, GW_MAC, vm, vip, sport, 4420, flags=fl, seq=seq,
                  ack=ack, payload=pay, vlan=vlan, options=opts, pad_to=pad)
        exp = rst_frame(GW_MAC, VM1_MAC, vip, vm, 4420, sport, eseq, eack,
                        vlan=vlan)
        out = check("%s -> RST" % name, "vsn_vm_ingress", pkt,
                    TC_ACT_REDIRECT, exp=exp,
                    fields=rst_fields(GW_MAC, VM1_MAC, vip, vm, 4420, sport,
                                      eseq, eack, v6),
                    cdelta=fwd_delta(len(pkt), reason="reset"))
        T.ok(out is not None and len(out) == len(exp) ==
             14 + (4 if vlan else 0) + (40 if v6 else 20) + 20,
             "%s: RST trimmed to its headers (%d bytes)"
             % (name, len(exp)), out and len(out))
        gone("%s" % name, cid)
    # A RST from the initiator itself is not answered: dropped, forgotten.
    for v6 in (False, True):
        vm, vip, be = (VM1_6, VIP6, 3) if v6 else (VM1, VIP, 1)
        fam = "IPv6" if v6 else "IPv4"
        cid = reset_setup("%s RST input" % fam, vm, vip, 42100, be, 1)
        pkt = tcp(VM1_MAC, GW_MAC, vm, vip, 42100, 4420, flags="RA",
                  seq=10, ack=20)
        check("%s RST on a reset connection is not answered" % fam,
              "vsn_vm_ingress", pkt, TC_ACT_SHOT,
              cdelta=fwd_delta(len(pkt), reason="reset"))
        gone("%s RST input" % fam, cid)
    # The SNAT case: the fabric-side entry is keyed by the SNAT address.
    route(1, 1, 1, 6)
    cid = reset_setup("SNAT", VM1, VIP, 42200, 1, 6)
    pkt = tcp(VM1_MAC, GW_MAC, VM1, VIP, 42200, 4420, seq=50, ack=60,
              payload=b"q")
    check("SNAT connection data -> RST from the VIP", "vsn_vm_ingress",
          pkt, TC_ACT_REDIRECT,
          exp=rst_frame(GW_MAC, VM1_MAC, VIP, VM1, 4420, 42200, 60, 51),
          cdelta=fwd_delta(len(pkt), reason="reset"))
    gone("SNAT", cid)
    route(1, 1, 1, 1)
    # Host mode: the RST goes to the local stack, MACs swapped.
    vsn("route", "set", "host", "5", "7", "2")
    gw = "02:00:00:00:99:99"
    cid = reset_setup("host", HOST_ADDR, BE[7], 43100, 7, 2, vm_id=0,
                      mac=IFMAC["up0"], gw=gw)
    pkt = tcp(IFMAC["up0"], gw, HOST_ADDR, BE[7], 43100, 4420, seq=1, ack=2,
              payload=b"host")
    check("host flow data -> RST", "vsn_up_egress", pkt, TC_ACT_REDIRECT,
          exp=rst_frame(gw, IFMAC["up0"], BE[7], HOST_ADDR, 4420, 43100, 2, 5),
          cdelta=fwd_delta(len(pkt), reason="reset"))
    gone("host", cid)

@case
def reset_then_new_syn_and_roce():
    """a SYN on a reset tuple opens a fresh connection; RoCEv2 of a
    reset connection is dropped and its entry forgotten."""
    route(1, 1, 1, 1)
    cid = reset_setup("SYN", VM1, VIP, 42300, 1, 1)
    syn = tcp(VM1_MAC, GW_MAC, VM1, VIP, 42300, 4420, flags="S", seq=77)
    check("SYN on a reset tuple is forwarded", "vsn_vm_ingress", syn,
          TC_ACT_REDIRECT,
          exp=tcp(*path_macs(1), VM1, BE[1], 42300, BE_PORT, flags="S",
                  seq=77),
          cdelta=fwd_delta(len(syn), path=1, be=1, vm=1))
    c = conn(1, VM1, 42300)
    T.ok(c and not c["flags"] & CONN_RESET and c["conn_id"] != cid and
         c["reverse"] and len(conn_id_entries(c["conn_id"])) == 2,
         "a fresh connection (new id, not reset, both entries)", c)
    pkt = P.roce_v4(VM1_MAC, GW_MAC, VM1, ROCE4, 49300, dest_qp=0x33)
    rv, _ = run("vsn_vm_ingress", pkt, ctx_for("vsn_vm_ingress"))
    c = conn(1, VM1, 49300, proto="udp")
    n = mark_reset(c["conn_id"]) if c else 0
    T.ok(rv == TC_ACT_REDIRECT and n >= 1, "RoCEv2 flow marked reset",
         (rv, c))
    check("RoCEv2 of a reset connection dropped", "vsn_vm_ingress", pkt,
          TC_ACT_SHOT, cdelta=fwd_delta(len(pkt), reason="reset"))
    T.ok(conn(1, VM1, 49300, proto="udp") is None,
         "the RoCEv2 flow's entry deleted")


if __name__ == "__main__":
    sys.exit(run_cases(CASES))
