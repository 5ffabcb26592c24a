#!/usr/bin/python3
"""RoCEv2 facts from pcap files, for tests/e2e/test_roce.sh.

  roce_pcap.py summary FILE [FILE...]
      one JSON object per file: {"file", "flows": {"SRC>DST tos=0xTT ttl=N":
      {"packets", "icrc_ok", "icrc_bad", "opcodes": {...}}}, "packets",
      "icrc_ok", "icrc_bad", "malformed"}
  roce_pcap.py pair BEFORE AFTER SRC
      matches SRC's RoCE packets seen BEFORE a rewrite (the VM's tap) with
      the same packets AFTER it (the fabric), by IP ID, UDP source port,
      dest QP, PSN, opcode and length; prints {"matched", "same_icrc", "same_payload",
      "icrc_ok_after", "tos_before", "tos_after", "ttl_before", "ttl_after"}

The ICRC is recomputed with tests/pkt/pktlib.py's roce_icrc (an oracle that
imports nothing from vsn).  Only Ethernet (DLT_EN10MB) captures.
"""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pkt"))
import pktlib  # noqa: E402
from scapy.utils import RawPcapReader  # noqa: E402


def roce_packets(path):
    """(parsed, raw bytes) of every frame carrying UDP dport 4791; count of
    frames that would not parse."""
    out, bad = [], 0
    for data, _meta in RawPcapReader(path):
        try:
            p = pktlib.parse(data)
        except pktlib.MalformedPacket:
            bad += 1
            continue
        if p["roce"] is None:
            continue
        out.append((p, bytes(data)))
    return out, bad


def summary(path):
    pkts, bad = roce_packets(path)
    flows, ok, nok = {}, 0, 0
    for p, raw in pkts:
        ip = p["ip"]
        k = "%s>%s tos=0x%02x ttl=%d" % (ip["src"], ip["dst"], ip["tos"], ip["ttl"])
        f = flows.setdefault(k, dict(packets=0, icrc_ok=0, icrc_bad=0, opcodes={}))
        f["packets"] += 1
        good = pktlib.roce_icrc_ok(raw)
        f["icrc_ok" if good else "icrc_bad"] += 1
        ok += good
        nok += not good
        op = "0x%02x" % p["roce"]["opcode"]
        f["opcodes"][op] = f["opcodes"].get(op, 0) + 1
    return dict(file=path, packets=len(pkts), icrc_ok=ok, icrc_bad=nok, malformed=bad,
                flows=flows)


def key(p):
    r = p["roce"]
    # The IP ID too: rxe repeats identical ACKs (same PSN/AETH) that differ
    # only in it (and so in their ICRC, which covers the IP ID).
    return (p["ip"]["id"], p["l4"]["sport"], r["dest_qp"], r["psn"], r["opcode"], p["l4"]["len"])


def pair(before, after, src):
    b = {}
    for p, raw in roce_packets(before)[0]:
        if p["ip"]["src"] == src:
            b.setdefault(key(p), (p, raw))
    res = dict(matched=0, same_icrc=0, same_payload=0, icrc_ok_after=0,
               tos_before=[], tos_after=[], ttl_before=[], ttl_after=[])
    for p, raw in roce_packets(after)[0]:
        if p["ip"]["src"] != src or key(p) not in b:
            continue
        q, _ = b[key(p)]
        res["matched"] += 1
        res["same_icrc"] += p["roce"]["icrc"] == q["roce"]["icrc"]
        res["same_payload"] += p["payload"] == q["payload"]
        res["icrc_ok_after"] += pktlib.roce_icrc_ok(raw)
        for n, v in (("tos_before", q["ip"]["tos"]), ("tos_after", p["ip"]["tos"]),
                     ("ttl_before", q["ip"]["ttl"]), ("ttl_after", p["ip"]["ttl"])):
            if v not in res[n]:
                res[n].append(v)
    return res


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "summary":
        for f in sys.argv[2:]:
            print(json.dumps(summary(f), sort_keys=True))
    elif len(sys.argv) == 5 and sys.argv[1] == "pair":
        print(json.dumps(pair(*sys.argv[2:5]), sort_keys=True))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
