#!/usr/bin/python3
"""Checksums of a capture, checked by pktlib's own verifiers (which share no
code with the datapath): every TCP segment between SRC and DST (either
direction given) must carry a valid IPv4 header checksum (IPv4) and a valid
TCP checksum.  A frame longer than the link's MTU was not on any wire: the
receiver's GRO merged it after the checksums were checked, and its TCP
checksum field is the first segment's.  Such frames are counted, not
checked.

    wire_csum.py PCAP --src ADDR --dst ADDR [--min N] [--mtu BYTES]

Prints one summary line; exits 1 when a checksum is wrong, or fewer than N
segments (default 100) matched.
"""
import argparse
import ipaddress
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "pkt"))
import pktlib as P  # noqa: E402
from scapy.utils import RawPcapReader  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pcap")
    ap.add_argument("--src", required=True)
    ap.add_argument("--dst", required=True)
    ap.add_argument("--min", type=int, default=100)
    ap.add_argument("--mtu", type=int, default=1500)
    a = ap.parse_args()
    src, dst = str(ipaddress.ip_address(a.src)), str(ipaddress.ip_address(a.dst))
    n = bad_ip = bad_l4 = merged = 0
    bad_lens = set()
    first_bad = None
    for data, _ in RawPcapReader(a.pcap):
        try:
            p = P.parse(data)
        except P.MalformedPacket:
            continue
        ip, l4 = p.get("ip"), p.get("l4")
        if not ip or not l4 or l4.get("proto") != "tcp":
            continue
        if (str(ipaddress.ip_address(ip["src"])), str(ipaddress.ip_address(ip["dst"]))) != \
                (src, dst):
            continue
        if (ip["total_len"] if ip.get("version") == 4 else ip["payload_len"] + 40) > a.mtu:
            merged += 1
            continue
        n += 1
        if ip.get("version") == 4 and not P.ipv4_csum_ok(data):
            bad_ip += 1
            first_bad = first_bad or data.hex()
        if not P.l4_csum_ok(data):
            bad_l4 += 1
            bad_lens.add(len(data))
            first_bad = first_bad or data.hex()
    print("%s: %d segments %s -> %s, IPv4 header checksum wrong in %d, TCP checksum wrong "
          "in %d%s; %d GRO aggregates not checked" % (
              os.path.basename(a.pcap), n, src, dst, bad_ip, bad_l4,
              " (frame lengths %s)" % sorted(bad_lens) if bad_lens else "", merged))
    if first_bad:
        print("first bad frame: %s" % first_bad[:240])
    return 0 if n >= a.min and not bad_ip and not bad_l4 else 1


if __name__ == "__main__":
    sys.exit(main())
