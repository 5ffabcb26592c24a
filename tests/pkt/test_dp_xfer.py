#!/usr/bin/python3
"""Datapath packet tests (BPF_PROG_TEST_RUN, harness: datapath.py).

Replies for a VM behind a veth (vsn_reply_tc set, lib/xfer.h): XDP passes
them up untouched and uncounted; vsn_up_xfer, on the uplink's TC ingress,
reverse-translates, counts and redirects them.  Everything else XDP passed
(and counted) goes by vsn_up_xfer untouched and uncounted.

Run as root from the repository root:  /usr/bin/python3 tests/pkt/test_dp_xfer.py
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from datapath import *  # noqa: E402,F401,F403  (the harness: check, tcp, conn, ...)
from datapath import CASES, case, run_cases  # noqa: E402


@case
def veth_replies_through_tc():
    """a VM behind a veth: XDP leaves its replies to vsn_up_xfer."""
    route(1, 1, 1, 1)
    s = 41900
    syn = tcp(VM1_MAC, GW_MAC, VM1, VIP, s, 4420, flags="S")
    check("SYN from VM 1", "vsn_vm_ingress", syn, TC_ACT_REDIRECT,
          exp=tcp(*path_macs(1), VM1, BE[1], s, BE_PORT, flags="S"),
          cdelta=fwd_delta(len(syn), path=1, be=1, vm=1))
    rep = tcp(FAB_MAC, IFMAC["up0"], BE[1], VM1, BE_PORT, s, flags="SA")
    want = tcp(GW_MAC, VM1_MAC, VIP, VM1, 4420, s, flags="SA")
    reply_tc(PIN, (IFINDEX["vmif"],), True, ns=NS_HV)
    try:
        check("reply, VM behind a veth: XDP passes it, untouched and uncounted",
              "vsn_up_xdp", rep, XDP_PASS, cdelta={})
        check("the same reply at TC ingress (vsn_up_xfer): reverse NAT, redirect",
              "vsn_up_xfer", rep, TC_ACT_REDIRECT, exp=want,
              cdelta=fwd_delta(len(rep), be=1, vm=1))
        other = tcp(FAB_MAC, IFMAC["up0"], BE[1], HOST_ADDR, 22, 50000)
        check("a packet XDP counted as not storage: vsn_up_xfer lets it by uncounted",
              "vsn_up_xfer", other, TC_ACT_OK, cdelta={})
        # The stack's copy of a reply XDP handled itself cannot reach TC;
        # if one did (a tap VM), TC leaves it alone.
        reply_tc(PIN, (IFINDEX["vmif"],), False, ns=NS_HV)
        check("a tap VM's reply at vsn_up_xfer: not its business, uncounted",
              "vsn_up_xfer", rep, TC_ACT_OK, cdelta={})
        check("a tap VM's reply: XDP redirects it itself", "vsn_up_xdp", rep,
              XDP_REDIRECT, exp=want, cdelta=fwd_delta(len(rep), be=1, vm=1))
    finally:
        reply_tc(PIN, (IFINDEX["vmif"],), False, ns=NS_HV)


if __name__ == "__main__":
    sys.exit(run_cases(CASES))
