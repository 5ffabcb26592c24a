#!/usr/bin/python3
"""Datapath packet tests (BPF_PROG_TEST_RUN, harness: datapath.py).

Paths: DSCP/ECN/TTL/flow label/VLAN rewrites, a route change moving live
connections, and the per-VM skb priority.

Run as root from the repository root:  /usr/bin/python3 tests/pkt/test_dp_paths.py
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from datapath import *  # noqa: E402,F401,F403  (the harness: check, tcp, conn, ...)
from datapath import CASES, case, run_cases  # noqa: E402


@case
def path_header_rewrites():
    """DSCP/ECN, flow label and TTL paths."""
    # DSCP 26 + ECN 1: tos = 26<<2|1 whatever the VM sent (ECN 2 here).
    route(1, 1, 1, 3)
    pkt = tcp(VM1_MAC, GW_MAC, VM1, VIP, 41500, 4420, flags="S", tos=0x02)
    check("IPv4 DSCP/ECN path", "vsn_vm_ingress", pkt, TC_ACT_REDIRECT,
          exp=tcp(*path_macs(3), VM1, BE[1], 41500, BE_PORT, flags="S",
                  tos=26 << 2 | 1),
          fields=to_storage_fields(3, BE[1], BE_PORT, VM1, 41500,
                                   tos=26 << 2 | 1, dscp=26, ecn=1, ttl=64),
          cdelta=fwd_delta(len(pkt), path=3, be=1, vm=1))
    route(1, 2, 3, 3)
    pkt = tcp(VM1_MAC, GW_MAC, VM1_6, VIP6, 41500, 4420, flags="S", tos=0x02,
              fl=0x1F00D)
    check("IPv6 DSCP/ECN path (traffic class)", "vsn_vm_ingress", pkt,
          TC_ACT_REDIRECT,
          exp=tcp(*path_macs(3), VM1_6, BE[3], 41500, BE_PORT, flags="S",
                  tos=26 << 2 | 1, fl=0x1F00D),
          fields=to_storage_fields(3, BE[3], BE_PORT, VM1_6, 41500,
                                   tc=26 << 2 | 1, flow_label=0x1F00D),
          cdelta=fwd_delta(len(pkt), path=3, be=3, vm=1))
    # Flow label path: IPv6 gets the label, traffic class stays.
    route(1, 2, 3, 4)
    pkt = tcp(VM1_MAC, GW_MAC, VM1_6, VIP6, 41501, 4420, flags="S", tos=0x20,
              fl=0x11111)
    check("IPv6 flow label path", "vsn_vm_ingress", pkt, TC_ACT_REDIRECT,
          exp=tcp(*path_macs(4), VM1_6, BE[3], 41501, BE_PORT, flags="S",
                  tos=0x20, fl=0x12345),
          fields=to_storage_fields(4, BE[3], BE_PORT, VM1_6, 41501,
                                   flow_label=0x12345, tc=0x20, hlim=64),
          cdelta=fwd_delta(len(pkt), path=4, be=3, vm=1))
    # ...and IPv4 over the same path is untouched at L3 (label is v6 only).
    route(1, 1, 1, 4)
    pkt = tcp(VM1_MAC, GW_MAC, VM1, VIP, 41501, 4420, flags="S", tos=0x20)
    check("IPv4 on flow label path (ignored)", "vsn_vm_ingress", pkt,
          TC_ACT_REDIRECT,
          exp=tcp(*path_macs(4), VM1, BE[1], 41501, BE_PORT, flags="S",
                  tos=0x20),
          fields=to_storage_fields(4, BE[1], BE_PORT, VM1, 41501, tos=0x20),
          cdelta=fwd_delta(len(pkt), path=4, be=1, vm=1))
    # TTL path: IPv4 TTL and IPv6 hop limit set to 17 (header csum updated).
    route(1, 1, 1, 5)
    pkt = tcp(VM1_MAC, GW_MAC, VM1, VIP, 41502, 4420, flags="S", ttl=64,
              tos=0xB8)
    check("IPv4 TTL path", "vsn_vm_ingress", pkt, TC_ACT_REDIRECT,
          exp=tcp(*path_macs(5), VM1, BE[1], 41502, BE_PORT, flags="S",
                  ttl=17, tos=0xB8),
          fields=to_storage_fields(5, BE[1], BE_PORT, VM1, 41502, ttl=17,
                                   tos=0xB8),
          cdelta=fwd_delta(len(pkt), path=5, be=1, vm=1))
    route(1, 2, 3, 5)
    pkt = tcp(VM1_MAC, GW_MAC, VM1_6, VIP6, 41502, 4420, flags="S", ttl=200)
    check("IPv6 hop limit path", "vsn_vm_ingress", pkt, TC_ACT_REDIRECT,
          exp=tcp(*path_macs(5), VM1_6, BE[3], 41502, BE_PORT, flags="S",
                  ttl=17),
          fields=to_storage_fields(5, BE[3], BE_PORT, VM1_6, 41502, hlim=17),
          cdelta=fwd_delta(len(pkt), path=5, be=3, vm=1))
    route(1, 1, 1, 1)
    route(1, 2, 3, 1)

@case
def path_change_moves_live_connection():
    """route set moves an existing connection on its next packet;
    route conn overrides one connection only."""
    route(1, 1, 1, 1)
    s, s2 = 41700, 41701
    for sp in (s, s2):
        syn = tcp(VM1_MAC, GW_MAC, VM1, VIP, sp, 4420, flags="S")
        check("SYN sport %d on path 1" % sp, "vsn_vm_ingress", syn,
              TC_ACT_REDIRECT,
              exp=tcp(*path_macs(1), VM1, BE[1], sp, BE_PORT, flags="S"),
              cdelta=fwd_delta(len(syn), path=1, be=1, vm=1))
    route(1, 1, 1, 2)
    pkt = tcp(VM1_MAC, GW_MAC, VM1, VIP, s, 4420, payload=b"after route set")
    check("next packet after route set -> path 2", "vsn_vm_ingress", pkt,
          TC_ACT_REDIRECT,
          exp=tcp(*path_macs(2), VM1, BE[1], s, BE_PORT,
                  payload=b"after route set"),
          fields=to_storage_fields(2, BE[1], BE_PORT, VM1, s),
          cdelta=fwd_delta(len(pkt), path=2, be=1, vm=1))
    c = conn(1, VM1, s)
    T.ok(c and c["last_path"] == 2 and c["backend"] == 1 and
         c["path_override"] == 0,
         "connection's last path 2, backend 1 unchanged", c)
    # Per-connection override to the VLAN path 7: only connection s moves.
    # (Its tag is pushed with bpf_skb_vlan_push as an offloaded tag, which
    # test-run does not write into the output: only "no inline tag, path 7
    # MACs, path 7 counter" is observable here; the netns suite covers the
    # tag on the wire.)
    vsn("route", "conn", "1", VM1, str(s), VIP, "4420", "7")
    pkt = tcp(VM1_MAC, GW_MAC, VM1, VIP, s, 4420, payload=b"pinned")
    check("route conn -> path 7 (VLAN)", "vsn_vm_ingress", pkt,
          TC_ACT_REDIRECT,
          exp=tcp(*path_macs(7), VM1, BE[1], s, BE_PORT, payload=b"pinned"),
          fields=to_storage_fields(7, BE[1], BE_PORT, VM1, s),
          cdelta=fwd_delta(len(pkt), path=7, be=1, vm=1))
    pkt = tcp(VM1_MAC, GW_MAC, VM1, VIP, s2, 4420, payload=b"other")
    check("other connection stays on route path 2", "vsn_vm_ingress", pkt,
          TC_ACT_REDIRECT,
          exp=tcp(*path_macs(2), VM1, BE[1], s2, BE_PORT, payload=b"other"),
          cdelta=fwd_delta(len(pkt), path=2, be=1, vm=1))
    c = conn(1, VM1, s)
    T.ok(c and c["last_path"] == 7 and c["path_override"] == 7,
         "connection carries the override (path 7)", c)
    # The reverse direction is independent of the path.
    rep = tcp(FAB_MAC, IFMAC["up0"], BE[1], VM1, BE_PORT, s, flags="A")
    check("reply of overridden connection", "vsn_up_xdp", rep,
          XDP_REDIRECT,
          exp=tcp(GW_MAC, VM1_MAC, VIP, VM1, 4420, s, flags="A"),
          cdelta=fwd_delta(len(rep), be=1, vm=1))
    vsn("route", "conn", "1", VM1, str(s), VIP, "4420", "0")
    pkt = tcp(VM1_MAC, GW_MAC, VM1, VIP, s, 4420, payload=b"cleared")
    check("route conn 0 clears -> back to path 2", "vsn_vm_ingress", pkt,
          TC_ACT_REDIRECT,
          exp=tcp(*path_macs(2), VM1, BE[1], s, BE_PORT, payload=b"cleared"),
          cdelta=fwd_delta(len(pkt), path=2, be=1, vm=1))
    route(1, 1, 1, 1)

def vm_if_set(ifname, vm_id, tc_prio):
    """vm_id and tc_prio of the interface's entry; the rest (its addresses
    and limits, from the config) kept."""
    key = hexargs(struct.pack("=I", IFINDEX[ifname]))
    r = sh("bpftool", "-j", "map", "lookup", "pinned", PIN + "/vsn_vm_if", "key", *key)
    v = bytes(int(x, 16) for x in json.loads(r.stdout)["value"])
    sh("bpftool", "map", "update", "pinned", PIN + "/vsn_vm_if", "key", *key,
       "value", *hexargs(struct.pack("=II", vm_id, tc_prio) + v[8:]))


def prio_run(prog, pkt, prio):
    ctx = P.skb_ctx(IFINDEX["vmif"], priority=prio)
    rv, _, _, ctx_out = P.prog_run(PROG[prog], pkt, ctx=ctx, netns=NS_HV)
    return rv, P.skb_ctx_fields(ctx_out)["priority"] if ctx_out else None

@case
def vm_skb_priority():
    """a VM's tc_prio becomes the skb priority of its steered packets
    (the uplink qdisc's class), and of nothing else."""
    route(1, 1, 1, 1)
    data = tcp(VM1_MAC, GW_MAC, VM1, VIP, 42600, 4420, payload=b"prio")
    other = P.plain(VM1_MAC, GW_MAC, "tcp", VM1, VIP)
    try:
        vm_if_set("vmif", 1, 0x10002)
        run("vsn_vm_ingress", tcp(VM1_MAC, GW_MAC, VM1, VIP, 42600, 4420, flags="S"),
            ctx_for("vsn_vm_ingress"))
        rv, pr = prio_run("vsn_vm_ingress", data, 7)
        T.ok(rv == TC_ACT_REDIRECT and pr == 0x10002,
             "steered packet gets the VM's tc_prio 0x10002", (rv, pr))
        rv, pr = prio_run("vsn_vm_ingress", other, 7)
        T.ok(rv == TC_ACT_OK and pr == 7,
             "a passed packet keeps its priority", (rv, pr))
        cid = reset_setup("priority", VM1, VIP, 42601, 1, 1)
        rv, pr = prio_run("vsn_vm_ingress", tcp(
            VM1_MAC, GW_MAC, VM1, VIP, 42601, 4420, payload=b"r"), 7)
        T.ok(rv == TC_ACT_REDIRECT and pr == 7 and cid is not None,
             "the RST back to the VM keeps its priority", (rv, pr))
        vm_if_set("vmif", 1, 0)
        rv, pr = prio_run("vsn_vm_ingress", data, 7)
        T.ok(rv == TC_ACT_REDIRECT and pr == 7,
             "tc_prio 0 leaves the priority alone", (rv, pr))
    finally:
        vm_if_set("vmif", 1, 0)


if __name__ == "__main__":
    sys.exit(run_cases(CASES))
