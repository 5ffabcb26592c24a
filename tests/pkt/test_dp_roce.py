#!/usr/bin/python3
"""Datapath packet tests (BPF_PROG_TEST_RUN, harness: datapath.py).

RoCEv2: steered, never translated (the ICRC stays valid), and every BTH
opcode counted in its class.

Run as root from the repository root:  /usr/bin/python3 tests/pkt/test_dp_roce.py
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from datapath import *  # noqa: E402,F401,F403  (the harness: check, tcp, conn, ...)
from datapath import CASES, case, run_cases  # noqa: E402


@case
def roce_steered_not_translated():
    """RoCEv2 is steered, never NATed: only DSCP/TTL/flow label (the
    fields the ICRC masks) and MACs change; the ICRC stays valid."""
    for csum in (0, None):          # no UDP checksum, and a real one
        what = "no UDP csum" if csum == 0 else "UDP csum"
        sport = 49152 if csum == 0 else 49153
        pkt = P.roce_v4(VM1_MAC, GW_MAC, VM1, ROCE4, sport,
                        dest_qp=0x123456, psn=0xABCDE, tos=0x03, ttl=64,
                        udp_csum=csum, payload=bytes(range(61)), ackreq=1)
        src = P.parse(pkt)
        b = bytearray(pkt)
        b[0:12] = bytes.fromhex(pmac(8, "b").replace(":", "")) + \
            bytes.fromhex(pmac(8, "a").replace(":", ""))
        b[15] = 46 << 2 | 3          # DSCP 46, ECN (CE) kept
        b[22] = 5                    # TTL
        b[24:26] = b"\0\0"
        b[24:26] = P.csum(bytes(b[14:34])).to_bytes(2, "big")
        check("RoCEv2 IPv4 (%s) DSCP/TTL path" % what,
                    "vsn_vm_ingress", pkt, TC_ACT_REDIRECT, exp=bytes(b),
                    fields=dict(to_storage_fields(
                        8, ROCE4, 4791, VM1, sport,
                        tos=46 << 2 | 3, ttl=5),
                        **{"l4.csum": src["l4"]["csum"],
                           "roce.dest_qp": 0x123456, "roce.psn": 0xABCDE,
                           "roce.opcode": 4, "roce.ackreq": 1,
                           "roce.payload": bytes(range(61)),
                           "roce.icrc": src["roce"]["icrc"]}),
                    roce=True, cdelta=fwd_delta(len(pkt), path=8, be=5, vm=1))
    pkt = P.roce_v6(VM1_MAC, GW_MAC, VM1_6, ROCE6, 50000, tc=0x01, fl=0x77777,
                    hlim=64, payload=b"rdma-write-payload!", dest_qp=0x42)
    src = P.parse(pkt)
    exp = P.roce_v6(*path_macs(10), VM1_6, ROCE6, 50000, tc=10 << 2 | 1,
                    fl=0xABCDE, hlim=9, payload=b"rdma-write-payload!",
                    dest_qp=0x42)
    # The ICRC masks tc/fl/hlim, so the builder's fresh ICRC equals the
    # original's: the expected frame must carry the input's ICRC unchanged.
    check("RoCEv2 IPv6 DSCP/flow label/hop limit path", "vsn_vm_ingress",
          pkt, TC_ACT_REDIRECT, exp=exp,
          fields=dict(to_storage_fields(10, ROCE6, 4791, VM1_6, 50000,
                                        tc=10 << 2 | 1, flow_label=0xABCDE,
                                        hlim=9),
                      **{"roce.icrc": src["roce"]["icrc"],
                         "roce.dest_qp": 0x42, "l4.csum": src["l4"]["csum"]}),
          roce=True, cdelta=fwd_delta(len(pkt), path=10, be=6, vm=1))
    # RoCE to an address that is no volume: untouched.
    pkt = P.roce_v4(VM1_MAC, GW_MAC, VM1, "10.4.0.99", 49999)
    check("RoCEv2 to unconfigured address", "vsn_vm_ingress", pkt,
          TC_ACT_OK, cdelta=fwd_delta(len(pkt), reason="not_storage"))
    # UDP 4791 to the NVMe/TCP VIP: volumes are keyed by protocol too.
    pkt = P.roce_v4(VM1_MAC, GW_MAC, VM1, VIP, 49998)
    check("RoCEv2 to the NVMe/TCP VIP", "vsn_vm_ingress", pkt, TC_ACT_OK,
          cdelta=fwd_delta(len(pkt), reason="not_storage"))
    # RoCE replies keep their addresses: the uplink programs count them for
    # the flow's path (its class, ECN CE) and leave them to the kernel.
    tel0 = vsn_json("show", "telemetry")["roce"]
    rep = P.roce_v4(FAB_MAC, IFMAC["up0"], ROCE4, VM1, 49153, tos=0x03)
    check("RoCEv2 reply on uplink passes (XDP)", "vsn_up_xdp", rep,
          XDP_PASS, cdelta=fwd_delta(len(rep), be=5, vm=1, reason="roce_rx"))
    cnp = P.roce_v4(FAB_MAC, IFMAC["up0"], ROCE4, VM1, 49153, bth_opcode=0x81)
    check("RoCEv2 CNP on uplink passes (XDP)", "vsn_up_xdp", cnp,
          XDP_PASS, cdelta=fwd_delta(len(cnp), be=5, vm=1, reason="roce_rx"))
    tel1 = vsn_json("show", "telemetry")["roce"]

    def roce_delta(cls):
        a = tel0["paths"].get("8", {}).get(cls, {}).get("packets", 0)
        return tel1["paths"].get("8", {}).get(cls, {}).get("packets", 0) - a
    T.ok(roce_delta("ecn_ce") == 1 and roce_delta("cnp") == 1 and roce_delta("send") == 1,
         "path 8's RoCE counters took the reply (send, ECN CE) and the CNP",
         (tel0, tel1))
    qps = [q for q in tel1["qps"] if q["vm"] == 1 and q["dir"] == "from_storage"]
    T.ok(any(q["dest_qp"] == 0x11 and q["packets"] >= 2 for q in qps),
         "per destination QP counters for the flow from storage", qps)
    c = conn(1, VM1, 49153, proto="udp")
    # No NAT flag and no fabric-side entry: RoCE is only steered.
    T.ok(c and c["backend"] == 5 and c["last_path"] == 8 and
         c["tx_packets"] == 1 and c["flags"] == 0 and not c["reverse"],
         "RoCE connection recorded (backend 5, path 8, no NAT, no "
         "fabric-side entry)", c)

# Every BTH opcode (IBTA vol. 1 9.2.1, RoCEv2 annex A17, memory placement
# extensions) and the class `vsn show telemetry` must count it in: written
# from the specification, not from the datapath's code.
ROCE_OPCODE_CLASS = {}
for _t in (0x00, 0x20, 0x40, 0x60, 0xA0):       # RC, UC, RD, UD, XRC
    for _op, _cls in ([(o, "send") for o in range(0x00, 0x06)] +
                      [(0x16, "send"), (0x17, "send")] +
                      [(o, "rdma_write") for o in range(0x06, 0x0C)] +
                      [(0x1C, "rdma_write")] +
                      [(0x0C, "read_req")] +
                      [(o, "read_resp") for o in range(0x0D, 0x11)] +
                      [(0x11, "ack")] +
                      [(o, "atomic") for o in (0x12, 0x13, 0x14, 0x1D)] +
                      [(o, "other") for o in (0x15, 0x18, 0x19, 0x1A, 0x1B,
                                              0x1E, 0x1F)]):
        ROCE_OPCODE_CLASS[_t | _op] = _cls
ROCE_OPCODE_CLASS.update({0x81: "cnp", 0x80: "other", 0x9F: "other",
                          0xC0: "other", 0xE5: "other"})

@case
def roce_opcode_classes():
    """every BTH opcode lands in its class (SEND with invalidate, which
    every NVMe/RDMA response is, among the sends)."""
    tel0 = vsn_json("show", "telemetry")["roce"]["paths"].get("8", {})
    want = {}
    for opc, cls in sorted(ROCE_OPCODE_CLASS.items()):
        rep = P.roce_v4(FAB_MAC, IFMAC["up0"], ROCE4, VM1, 49153, bth_opcode=opc)
        rv, _ = run("vsn_up_xdp", rep, ctx_for("vsn_up_xdp"))
        if rv != XDP_PASS:
            T.ok(False, "opcode 0x%02x passes (XDP)" % opc, rv)
        want[cls] = want.get(cls, 0) + 1
    tel1 = vsn_json("show", "telemetry")["roce"]["paths"].get("8", {})
    got = {c: tel1.get(c, {}).get("packets", 0) - tel0.get(c, {}).get("packets", 0)
           for c in set(tel1) | set(tel0)}
    got = {c: v for c, v in got.items() if v}
    T.ok(got == want, "%d opcodes counted in their classes on path 8 (%s)"
         % (len(ROCE_OPCODE_CLASS), ", ".join("%s %d" % kv for kv in sorted(want.items()))),
         (want, got))
    for opc in (0x16, 0x17):
        rep = P.roce_v4(FAB_MAC, IFMAC["up0"], ROCE4, VM1, 49153, bth_opcode=opc)
        t0 = vsn_json("show", "telemetry")["roce"]["paths"]["8"]
        run("vsn_up_xdp", rep, ctx_for("vsn_up_xdp"))
        t1 = vsn_json("show", "telemetry")["roce"]["paths"]["8"]
        T.ok(t1["send"]["packets"] - t0["send"]["packets"] == 1,
             "SEND %s with invalidate (0x%02x, an NVMe/RDMA response) counts as send"
             % ("last" if opc == 0x16 else "only", opc), (t0, t1))


if __name__ == "__main__":
    sys.exit(run_cases(CASES))
