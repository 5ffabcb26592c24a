#!/usr/bin/python3
"""Datapath packet tests (BPF_PROG_TEST_RUN, harness: datapath.py).

Backends: a change applies to new connections only; a backend not up in
the map takes none, whatever the hash table says.

Run as root from the repository root:  /usr/bin/python3 tests/pkt/test_dp_backends.py
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from datapath import *  # noqa: E402,F401,F403  (the harness: check, tcp, conn, ...)
from datapath import CASES, case, run_cases  # noqa: E402


@case
def backend_change_for_new_connections_only():
    """a backend change applies to new connections only."""
    route(1, 1, 1, 1)
    s, s2 = 41800, 41801
    syn = tcp(VM1_MAC, GW_MAC, VM1, VIP, s, 4420, flags="S")
    check("SYN while backend 2 down", "vsn_vm_ingress", syn,
          TC_ACT_REDIRECT,
          exp=tcp(*path_macs(1), VM1, BE[1], s, BE_PORT, flags="S"),
          cdelta=fwd_delta(len(syn), path=1, be=1, vm=1))
    try:
        vsn("backend", "set", "2", "up")
        vsn("backend", "set", "1", "down")
        pkt = tcp(VM1_MAC, GW_MAC, VM1, VIP, s, 4420, payload=b"existing")
        check("existing connection still to backend 1", "vsn_vm_ingress",
              pkt, TC_ACT_REDIRECT,
              exp=tcp(*path_macs(1), VM1, BE[1], s, BE_PORT,
                      payload=b"existing"),
              fields=to_storage_fields(1, BE[1], BE_PORT, VM1, s),
              cdelta=fwd_delta(len(pkt), path=1, be=1, vm=1))
        syn2 = tcp(VM1_MAC, GW_MAC, VM1, VIP, s2, 4420, flags="S")
        # Backend 2's default path is path 2 (up1).
        check("new SYN goes to backend 2", "vsn_vm_ingress", syn2,
              TC_ACT_REDIRECT,
              exp=tcp(*path_macs(2), VM1, BE[2], s2, BE_PORT, flags="S"),
              fields=to_storage_fields(2, BE[2], BE_PORT, VM1, s2),
              cdelta=fwd_delta(len(syn2), path=2, be=2, vm=1))
        c = conn(1, VM1, s2)
        T.ok(c and c["backend"] == 2 and c["backend_address"] == BE[2],
             "new connection recorded on backend 2", c)
        rep = tcp(FAB_MAC, IFMAC["up0"], BE[2], VM1, BE_PORT, s2, flags="SA")
        check("reply from backend 2", "vsn_up_xdp", rep, XDP_REDIRECT,
              exp=tcp(GW_MAC, VM1_MAC, VIP, VM1, 4420, s2, flags="SA"),
              cdelta=fwd_delta(len(rep), be=2, vm=1))
        # A fresh SYN reusing connection s's tuple: its backend is down, so
        # the datapath chooses afresh.
        check("SYN reusing tuple of down backend -> backend 2",
              "vsn_vm_ingress", syn, TC_ACT_REDIRECT,
              exp=tcp(*path_macs(2), VM1, BE[2], s, BE_PORT, flags="S"),
              cdelta=fwd_delta(len(syn), path=2, be=2, vm=1))
    finally:
        vsn("backend", "set", "1", "up", check=False)
        vsn("backend", "set", "2", "down", check=False)

BE_STATE_OFF = 18        # struct vsn_backend: offset of state
BE_DOWN, BE_UP, BE_DRAINING = 0, 1, 2


def backend_raw(bid):
    r = json.loads(sh("bpftool", "-j", "map", "lookup", "pinned", PIN + "/vsn_backends",
                      "key", *hexargs(struct.pack("=I", bid))).stdout)
    return bytes(int(x, 16) for x in r["value"])


def backend_write(bid, value):
    sh("bpftool", "map", "update", "pinned", PIN + "/vsn_backends", "key",
       *hexargs(struct.pack("=I", bid)), "value", *hexargs(value), "exist")

@case
def backend_state_checked_in_datapath():
    """a backend whose state in the map is not up takes no new
    connection, even while the consistent-hash table still names it (the
    gap between a state change and the table's rebuild, or a failed
    rebuild): the state is written straight into the map, no rebuild."""
    route(1, 1, 1, 1)
    orig = backend_raw(1)
    try:
        for state, sport in ((BE_DOWN, 41810), (BE_DRAINING, 41811)):
            v = bytearray(orig)
            v[BE_STATE_OFF] = state
            backend_write(1, bytes(v))
            syn = tcp(VM1_MAC, GW_MAC, VM1, VIP, sport, 4420, flags="S")
            what = "down" if state == BE_DOWN else "draining"
            check("SYN while backend 1 is %s in the map only" % what, "vsn_vm_ingress",
                  syn, TC_ACT_OK, cdelta=fwd_delta(len(syn), reason="no_route"))
            T.ok(conn(1, VM1, sport) is None,
                 "no connection created on %s backend 1" % what)
    finally:
        backend_write(1, orig)
    syn = tcp(VM1_MAC, GW_MAC, VM1, VIP, 41812, 4420, flags="S")
    check("SYN once backend 1 is up again", "vsn_vm_ingress", syn, TC_ACT_REDIRECT,
          exp=tcp(*path_macs(1), VM1, BE[1], 41812, BE_PORT, flags="S"),
          cdelta=fwd_delta(len(syn), path=1, be=1, vm=1))


if __name__ == "__main__":
    sys.exit(run_cases(CASES))
