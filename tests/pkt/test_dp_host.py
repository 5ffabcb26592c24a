#!/usr/bin/python3
"""Datapath packet tests (BPF_PROG_TEST_RUN, harness: datapath.py).

Host-initiator flows on the uplinks' TC egress.

Run as root from the repository root:  /usr/bin/python3 tests/pkt/test_dp_host.py
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from datapath import *  # noqa: E402,F401,F403  (the harness: check, tcp, conn, ...)
from datapath import CASES, case, run_cases  # noqa: E402


@case
def host_initiator_flows():
    """host-initiator flows on the uplink's TC egress: steered to the
    route's path (no NAT); already on the chosen uplink -> TC_ACT_OK."""
    vsn("route", "set", "host", "5", "7", "2")
    gw = "02:00:00:00:99:99"
    syn = tcp(IFMAC["up0"], gw, HOST_ADDR, BE[7], 43000, 4420, flags="S")
    check("host SYN, route path 2 on up1", "vsn_up_egress", syn,
          TC_ACT_REDIRECT,
          exp=tcp(*path_macs(2), HOST_ADDR, BE[7], 43000, 4420, flags="S"),
          fields=to_storage_fields(2, BE[7], 4420, HOST_ADDR, 43000),
          cdelta=fwd_delta(len(syn), path=2, be=7, vm=0))
    c = conn(0, HOST_ADDR, 43000)
    T.ok(c and c["backend"] == 7 and c["last_path"] == 2 and
         c["flags"] == CONN_FLAGS["host"] and c["reverse"],
         "host connection recorded (backend 7, path 2, host flag, and a "
         "fabric-side entry for observing replies)", c)
    vsn("route", "set", "host", "5", "7", "11")
    pkt = tcp(IFMAC["up0"], gw, HOST_ADDR, BE[7], 43000, 4420, payload=b"cmd")
    check("host data, route path 11 on up0 itself", "vsn_up_egress", pkt,
          TC_ACT_OK,
          exp=tcp(*path_macs(11), HOST_ADDR, BE[7], 43000, 4420,
                  payload=b"cmd"),
          fields=to_storage_fields(11, BE[7], 4420, HOST_ADDR, 43000),
          cdelta=fwd_delta(len(pkt), path=11, be=7, vm=0))
    # Forwarded (not locally generated) frames are left alone, uncounted.
    check("forwarded frame (ingress_ifindex set)", "vsn_up_egress", pkt,
          TC_ACT_OK, ingress=IFINDEX["vmif"], cdelta={})
    pkt = P.plain(IFMAC["up0"], gw, "tcp", HOST_ADDR, "10.200.0.1")
    check("host non-storage traffic", "vsn_up_egress", pkt, TC_ACT_OK,
          cdelta=fwd_delta(len(pkt), reason="not_storage"))
    # Host flows are not translated: the reply is observed (counted for
    # its backend) and left untouched to the kernel stack.
    rep = tcp(FAB_MAC, IFMAC["up0"], BE[7], HOST_ADDR, 4420, 43000, flags="SA")
    check("reply to host flow passes (XDP)", "vsn_up_xdp", rep, XDP_PASS,
          cdelta=fwd_delta(len(rep), be=7, vm=0, reason="host_rx"))
    vsn("route", "set", "host", "5", "7", "2")


if __name__ == "__main__":
    sys.exit(run_cases(CASES))
