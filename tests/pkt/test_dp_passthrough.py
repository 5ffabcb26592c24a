#!/usr/bin/python3
"""Datapath packet tests (BPF_PROG_TEST_RUN, harness: datapath.py).

What is not storage traffic, and what is malformed or unsupported,
passes byte for byte and is counted.

Run as root from the repository root:  /usr/bin/python3 tests/pkt/test_dp_passthrough.py
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from datapath import *  # noqa: E402,F401,F403  (the harness: check, tcp, conn, ...)
from datapath import CASES, case, run_cases  # noqa: E402


def non_storage_frames(smac, dmac, a, b, a6, b6):
    ns = (Ether(src=smac, dst="33:33:ff:00:00:10")
          / IPv6(src="fe80::1", dst="ff02::1:ff00:10", hlim=255)
          / ICMPv6ND_NS(tgt=b6) / ICMPv6NDOptSrcLLAddr(lladdr=smac))
    return [
        ("TCP dport 80", P.plain(smac, dmac, "tcp", a, b)),
        ("TCP dport 4420 to an address that is no volume",
         tcp(smac, dmac, a, "10.200.0.1", 42000, 4420, flags="S")),
        ("TCP dport 4421 (a backend port, not a volume port)",
         tcp(smac, dmac, a, b, 42000, 4421, flags="S")),
        ("TCP IPv6 dport 4420 to an address that is no volume",
         tcp(smac, dmac, a6, "2001:db8:200::1", 42000, 4420, flags="S")),
        ("UDP dport 53", P.plain(smac, dmac, "udp", a, b)),
        ("UDP IPv6", P.plain(smac, dmac, "udp", a6, b6)),
        ("ARP request", P.plain(smac, dmac, "arp", a, b)),
        ("ICMP echo", P.plain(smac, dmac, "icmp", a, b)),
        ("ICMPv6 echo", P.plain(smac, dmac, "icmp", a6, b6)),
        ("IPv6 neighbour solicitation", bytes(ns)),
        ("LLDP", P.plain(smac, dmac, "lldp")),
    ]

@case
def non_storage_passes():
    """everything that is not storage traffic passes byte for byte."""
    for name, pkt in non_storage_frames(VM1_MAC, GW_MAC, VM1, VIP, VM1_6,
                                        VIP6):
        check("VM %s" % name, "vsn_vm_ingress", pkt, TC_ACT_OK,
              cdelta=fwd_delta(len(pkt), reason="not_storage"))
    for name, pkt in non_storage_frames(FAB_MAC, IFMAC["up0"], BE[1], VM1, BE[3],
                                        VM1_6):
        for prog, ret in (("vsn_up_xdp", XDP_PASS),
                          ("vsn_up_ingress", TC_ACT_OK)):
            check("uplink %s (%s)" % (name, prog), prog, pkt, ret,
                  cdelta=fwd_delta(len(pkt), reason="not_storage"))
    # From a storage port but matching no connection: no_conn.
    pkt = tcp(FAB_MAC, IFMAC["up0"], BE[1], VM1, 4420, 42999, flags="A")
    for prog, ret in (("vsn_up_xdp", XDP_PASS), ("vsn_up_ingress", TC_ACT_OK)):
        check("reply from port 4420 without connection (%s)" % prog,
              prog, pkt, ret, cdelta=fwd_delta(len(pkt), reason="no_conn"))

# Which reason each malformed shape must be counted under.
UNSUPPORTED = {"qinq_88a8_8100", "qinq_8100_8100", "ipv4_frag_first_mf",
               "ipv4_frag_nonfirst", "ipv4_frag_nonfirst_mf",
               "ipv6_hopbyhop_hdr", "ipv6_fragment_hdr", "ipv6_routing_hdr",
               "ipv6_destopt_hdr", "ipv4_options_ihl6"}


def shape_reason(name):
    return "unsupported" if name in UNSUPPORTED else "malformed"

@case
def malformed_passes_counted():
    """every malformed/unsupported shape passes untouched on every hook,
    counted exactly once under the right reason.  The shapes are aimed at
    live connections (VM sport 4420 <-> VIP:4420, replies BE:4421 -> VM:4420)
    so a parser trusting a bad length would find an entry and rewrite."""
    route(1, 1, 1, 1)
    route(1, 2, 3, 1)
    for vm, vip, be in ((VM1, VIP, 1), (VM1_6, VIP6, 3)):
        syn = tcp(VM1_MAC, GW_MAC, vm, vip, 4420, 4420, flags="S")
        check("setup connection %s:4420" % vm, "vsn_vm_ingress", syn,
              TC_ACT_REDIRECT,
              exp=tcp(*path_macs(1), vm, BE[be], 4420, BE_PORT, flags="S"))
    sides = [
        ("vsn_vm_ingress", "tc", TC_ACT_OK,
         P.malformed_shapes(VM1_MAC, GW_MAC, VM1, VIP, VM1_6, VIP6, 4420)),
        ("vsn_up_xdp", "xdp", XDP_PASS,
         P.malformed_shapes(FAB_MAC, IFMAC["up0"], BE[1], VM1, BE[3], VM1_6,
                            BE_PORT)),
        ("vsn_up_ingress", "tc", TC_ACT_OK,
         P.malformed_shapes(FAB_MAC, IFMAC["up0"], BE[1], VM1, BE[3], VM1_6,
                            BE_PORT)),
    ]
    for prog, hook, ret, shapes in sides:
        skipped = []
        for name, pkt in shapes:
            if name in P.TEST_RUN_EINVAL[hook]:
                skipped.append(name)
                continue
            before = counters()
            try:
                rv, out = run(prog, pkt, ctx_for(prog))
            except P.ProgRunError as e:
                T.ok(False, "%s %s" % (prog, name), e)
                continue
            got = delta(before, counters())
            want = fwd_delta(len(pkt), reason=shape_reason(name))
            T.ok(rv == ret and out == pkt and got == want,
                 "%s %s: returns %d, unchanged, %s +1" % (
                     prog, name, ret, shape_reason(name)),
                 "retval %d; %s; counters %s" % (
                     rv, bytes_diff(out, pkt) or "unchanged",
                     sorted(got.items())))
        note("%s: skipped (kernel test-run refuses them): %s"
             % (prog, ", ".join(skipped)))


if __name__ == "__main__":
    sys.exit(run_cases(CASES))
