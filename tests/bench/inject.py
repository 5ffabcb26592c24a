#!/usr/bin/python3
"""NVMe/TCP parsing cost on real skbs (make bench, part pkt; run inside the
bench's namespace by pkt_cost.py).

Frames are written into the VM interface's veth peer through AF_PACKET
with a virtio-net header, as a tap hands them to the kernel: one capsule
per frame, or a 64 KiB GSO super-frame of 16 capsules (4000 bytes of
in-capsule data each).  vsn_vm_ingress runs on them at the VM interface's
TC ingress; its run time per packet comes from the kernel's BPF statistics
(enabled with BPF_ENABLE_STATS for as long as this runs).  Parsing on and
off alternate, rounds interleaved.  While parsing is off the sequence
number does not advance (the parser's state does not either), so parsing
stays in step; the PDU counters must grow by exactly the PDUs sent.
Prints one JSON line.
"""
import argparse
import ctypes
import json
import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as B  # noqa: E402
from pkt_cost import capsule  # noqa: E402
from scapy.layers.inet import IP, TCP  # noqa: E402
from scapy.layers.l2 import Ether  # noqa: E402
from scapy.packet import Raw  # noqa: E402

SYS_BPF, BPF_ENABLE_STATS, BPF_STATS_RUN_TIME = 321, 32, 0
SOL_PACKET, PACKET_VNET_HDR = 263, 15
PDUS, DATA = 16, 4000


def enable_stats():
    libc = ctypes.CDLL(None, use_errno=True)
    attr = ctypes.create_string_buffer(struct.pack("I", BPF_STATS_RUN_TIME) + bytes(60))
    fd = libc.syscall(SYS_BPF, BPF_ENABLE_STATS, attr, 64)
    if fd < 0:
        raise OSError(ctypes.get_errno(), "BPF_ENABLE_STATS")
    return fd


def prog_stats(pin):
    r = B.tool("prog", "--prog", pin)
    return r["run_cnt"], r["run_time_ns"]


def tel(pin):
    return json.loads(B.vsn(pin, "-j", "show", "telemetry").stdout)["stats"]


def main():
    ap = argparse.ArgumentParser()
    for a in ("ifname", "prog", "pin", "src", "dst", "smac", "dmac"):
        ap.add_argument("--" + a, required=True)
    for a in ("sport", "seq", "rounds"):
        ap.add_argument("--" + a, type=int, required=True)
    a = ap.parse_args()

    def frame(payload, seq):
        return bytes(Ether(src=a.smac, dst=a.dmac) / IP(src=a.src, dst=a.dst) /
                     TCP(sport=a.sport, dport=4420, flags="PA", seq=seq, ack=1) / Raw(payload))

    one = capsule()
    sup = b"".join(capsule(opc=0x01, cid=i, slba=8 * i, nlb=7, data=bytes(DATA))
                   for i in range(PDUS))
    # virtio_net_hdr: flags, gso_type, hdr_len, gso_size, csum_start, csum_offset
    plain_hdr = struct.pack("<BBHHHH", 0, 0, 0, 0, 0, 0)
    gso_hdr = struct.pack("<BBHHHH", 1, 1, 54, 1448, 34, 16)
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    s.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
    s.bind((a.ifname, 0))
    seq = a.seq
    kinds = (("single", one, plain_hdr, 4000), ("super", sup, gso_hdr, 400))
    raw = {"%s_%s" % (k[0], p): [] for k in kinds for p in ("on", "off")}
    pdus_sent = 0
    fd = enable_stats()
    t0 = tel(a.pin)
    try:
        for rnd in range(a.rounds):
            for name, payload, hdr, count in kinds:
                for parse in ("on", "off"):
                    B.vsn(a.pin, "telemetry", "--parse", parse)
                    c0, ns0 = prog_stats(a.prog)
                    for _ in range(count):
                        s.send(hdr + frame(payload, seq))
                        if parse == "on":
                            seq = (seq + len(payload)) & 0xffffffff
                            pdus_sent += 1 if name == "single" else PDUS
                    time.sleep(0.05)  # the backlog is processed in softirq
                    c1, ns1 = prog_stats(a.prog)
                    if c1 - c0 < count:
                        raise RuntimeError("%s: %d runs for %d frames" % (name, c1 - c0, count))
                    raw["%s_%s" % (name, parse)].append((ns1 - ns0) / (c1 - c0))
    finally:
        os.close(fd)
    t1 = tel(a.pin)
    med = {k: B.median(v) for k, v in raw.items()}
    d = {k: t1[k] - t0[k] for k in ("pdus", "cmds", "resyncs", "capped")}
    out = {"median_ns": med, "raw_ns": raw, "pdus_sent": pdus_sent, "telemetry_delta": d,
           "frame_bytes": {"single": len(frame(one, 0)), "super": len(frame(sup, 0))},
           "ok": d["pdus"] == pdus_sent and d["resyncs"] == 0 and d["capped"] == 0,
           "ratio_single": med["single_on"] / med["single_off"],
           "ratio_super": med["super_on"] / med["super_off"]}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
