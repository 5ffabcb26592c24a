#!/usr/bin/python3
"""Facts about an NVMe/TCP capture, computed with tshark's own dissector.

Used by scripts/record_pcaps.sh to write tests/data/NAME.expect.json; it is
deliberately independent of the project's code: tshark (-T pdml, port 4420
decoded as nvme-tcp) parses the PDUs, this script only counts.  Every
CapsuleCommand PDU (nvme-tcp.type 4) is one NVMe command; its queue is the
dissector's nvme-tcp.cmd.qid (for a Fabrics Connect: the Connect's own QID).
NLB is reported as the number of blocks (the 0-based wire field + 1; tshark
shows that "absolute" value, checked against the raw field bytes).

The I/O-queue commands are split into the kernel's own commands issued
before fio started (namespace scan / partition table reads: the first K I/O
commands, K from the guest's block-layer counters just before fio) and fio's.
Checks compare fio's part with the job file and fio's JSON report.

Usage: pcap_expect.py --name N --pcap F --job F.fio [--fio-json F] [--guest-log F]
                      [--pre-fio K] [--target ADDR] [--port 4420] [--lba 4096] [--out F.json]
Re-checking a committed capture: --pre-fio K with K = kernel_before_fio.commands
of its expect.json (the guest log and fio's report are not kept).
Exits 1 if a check fails.
"""
import argparse
import collections
import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

PDU_TYPES = {0: "ICReq", 1: "ICResp", 2: "H2CTermReq", 3: "C2HTermReq", 4: "CapsuleCmd",
             5: "CapsuleResp", 6: "H2CData", 7: "C2HData", 9: "R2T"}
ADMIN_OPC = {0x00: "delete_sq", 0x01: "create_sq", 0x02: "get_log_page", 0x04: "delete_cq",
             0x05: "create_cq", 0x06: "identify", 0x08: "abort", 0x09: "set_features",
             0x0a: "get_features", 0x0c: "async_event_request", 0x18: "keep_alive"}
IO_OPC = {0x00: "flush", 0x01: "write", 0x02: "read", 0x08: "write_zeroes", 0x09: "dsm"}
FCTYPE = {0x00: "property_set", 0x01: "connect", 0x04: "property_get",
          0x05: "auth_send", 0x06: "auth_recv", 0x08: "disconnect"}


def num(s):
    return int(s, 0)


def size(s):
    m = re.fullmatch(r"(\d+)([kmgt]?)(i?b?)", s.strip().lower())
    if not m:
        return s
    return int(m.group(1)) << {"": 0, "k": 10, "m": 20, "g": 30, "t": 40}[m.group(2)]


def parse_job(path):
    """fio job file -> dict of the effective options of its (single) job."""
    sec, opts, job = None, {"global": {}}, None
    for line in open(path):
        line = line.split(";")[0].split("#")[0].strip()
        if not line:
            continue
        if line.startswith("["):
            sec = line.strip("[]")
            opts.setdefault(sec, {})
            if sec != "global":
                job = sec
            continue
        k, _, v = line.partition("=")
        opts[sec][k.strip()] = v.strip() if _ else "1"
    eff = dict(opts["global"])
    eff.update(opts.get(job, {}))
    eff["name"] = job
    return eff


def fields(proto):
    """{field name: [(show, value)]} of one pdml proto element (nested fields too)."""
    d = collections.defaultdict(list)
    for f in proto.iter("field"):
        d[f.get("name")].append((f.get("show"), f.get("value")))
    return d


def first(d, k, conv=None):
    v = d.get(k)
    if not v:
        return None
    return conv(v[0][0]) if conv else v[0][0]


def dissect(pcap, port):
    """Walk tshark's pdml: (frames, commands, pdu type counts, streams)."""
    cmd = ["tshark", "-n", "-r", pcap, "-d", "tcp.port==%d,nvme-tcp" % port, "-T", "pdml"]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    frames, cmds, types, streams = [], [], collections.Counter(), {}
    for _, pkt in ET.iterparse(p.stdout):
        if pkt.tag != "packet":
            continue
        protos = pkt.findall("proto")
        fr = {}
        for pr in protos:
            if pr.get("name") == "frame":
                fd = fields(pr)
                fr = {"no": num(first(fd, "frame.number")), "len": num(first(fd, "frame.len")),
                      "t": float(first(fd, "frame.time_relative"))}
            elif pr.get("name") == "tcp":
                fd = fields(pr)
                fr["stream"] = num(first(fd, "tcp.stream"))
                fr["syn"] = first(fd, "tcp.flags.syn") in ("1", "True")
                fr["ack"] = first(fd, "tcp.flags.ack") in ("1", "True")
                fr["dport"] = num(first(fd, "tcp.dstport"))
                fr["sport"] = num(first(fd, "tcp.srcport"))
                fr["fin"] = first(fd, "tcp.flags.fin") in ("1", "True")
                fr["rst"] = first(fd, "tcp.flags.reset") in ("1", "True")
        frames.append(fr)
        if fr.get("syn") and not fr.get("ack"):
            streams[fr["stream"]] = {"sport": fr["sport"], "qid": None, "fin": set(), "rst": 0}
        if fr.get("fin") and fr["stream"] in streams:
            streams[fr["stream"]]["fin"].add(fr["dport"] == port)
        if fr.get("rst") and fr["stream"] in streams:
            streams[fr["stream"]]["rst"] += 1
        for i, pr in enumerate(protos):
            if pr.get("name") != "nvme-tcp":
                continue
            fd = fields(pr)
            t = first(fd, "nvme-tcp.type", num)
            if t is None:
                continue
            types[t] += 1
            if t != 4:
                continue
            c = {"frame": fr["no"], "t": fr["t"], "stream": fr["stream"],
                 "qid": first(fd, "nvme-tcp.cmd.qid", num)}
            fct = first(fd, "nvme.fabrics.cmd.fctype", num)
            if fct is not None:
                c["fabrics"] = FCTYPE.get(fct, "fctype_0x%02x" % fct)
                if fct == 0x01:
                    c["qid"] = first(fd, "nvme.fabrics.cmd.connect.qid", num)
                    c["connect_qid"] = c["qid"]
                    c["sqsize"] = first(fd, "nvme.fabrics.cmd.connect.sqsize", num)
                    streams.setdefault(fr["stream"], {})["qid"] = c["qid"]
                    c["subnqn"] = first(fd, "nvme.fabrics.cmd.connect.data.subnqn")
            else:
                nx = protos[i + 1] if i + 1 < len(protos) else None
                if nx is None or nx.get("name") != "nvme":
                    c["opc"] = None  # dissector gave no command body
                else:
                    nd = fields(nx)
                    c["opc"] = first(nd, "nvme.cmd.opc", num)
                    c["nsid"] = first(nd, "nvme.cmd.nsid", num)
                    if "nvme.cmd.slba" in nd:
                        c["slba"] = first(nd, "nvme.cmd.slba", num)
                        show, raw = nd["nvme.cmd.nlb"][0]
                        c["nlb"] = int(show)              # tshark: blocks (raw + 1)
                        c["nlb_raw"] = int.from_bytes(bytes.fromhex(raw), "little")
            cmds.append(c)
        pkt.clear()
    p.wait()
    if p.returncode:
        sys.exit("tshark failed on %s" % pcap)
    return frames, cmds, types, streams


def count(pcap, port, flt):
    out = subprocess.run(["tshark", "-n", "-r", pcap, "-d", "tcp.port==%d,nvme-tcp" % port,
                          "-Y", flt], capture_output=True, text=True).stdout
    return len(out.splitlines())


def io_summary(cmds, lba):
    c = collections.Counter()
    hist = {"read": collections.Counter(), "write": collections.Counter()}
    byts = collections.Counter()
    for x in cmds:
        name = IO_OPC.get(x.get("opc"), "opc_%s" % x.get("opc"))
        c[name] += 1
        if name in hist:
            hist[name][x["nlb"]] += 1
            byts[name] += x["nlb"] * lba
    rw = c["read"] + c["write"]
    # Contiguity in submission (frame) order, over all data commands and per direction.
    def contiguous(seq):
        pairs = [(a, b) for a, b in zip(seq, seq[1:])]
        n = sum(1 for a, b in pairs if b["slba"] == a["slba"] + a["nlb"])
        return n, len(pairs)
    data = [x for x in cmds if "slba" in x]
    n_all, p_all = contiguous(data)
    out = {
        "commands": len(cmds),
        "reads": c["read"], "writes": c["write"],
        "other": {k: v for k, v in c.items() if k not in ("read", "write")},
        "read_pct": round(100.0 * c["read"] / rw, 2) if rw else None,
        "read_bytes": byts["read"], "write_bytes": byts["write"],
        "nlb_hist": {d: {str(k): v for k, v in sorted(h.items())} for d, h in hist.items() if h},
        "size_bytes_hist": {d: {str(k * lba): v for k, v in sorted(h.items())}
                            for d, h in hist.items() if h},
        "contiguous_pairs": n_all, "pairs": p_all,
        "lba_sequential": p_all > 0 and n_all == p_all,
    }
    for d in ("read", "write"):
        s = [x for x in data if IO_OPC.get(x["opc"]) == d]
        if len(s) > 1:
            n, pp = contiguous(s)
            out["%s_contiguous_pairs" % d] = n
            out["%s_pairs" % d] = pp
    if data:
        out["first_slba"] = data[0]["slba"]
        out["lba_min"] = min(x["slba"] for x in data)
        out["lba_end_max"] = max(x["slba"] + x["nlb"] for x in data)
    return out


def guest_stats(path):
    """STAT0/STAT1 lines (/sys/block/DEV/stat before/after fio) -> I/O requests."""
    st = {}
    if not path or not os.path.exists(path):
        return st
    for line in open(path):
        w = line.split()
        if w and w[0] in ("STAT0", "STAT1"):
            v = [int(x) for x in w[1:]]
            # reads, writes, discards (field 12), flushes (field 16) completed
            st[w[0]] = {"reads": v[0], "writes": v[4],
                        "discards": v[11] if len(v) > 11 else 0,
                        "flushes": v[15] if len(v) > 15 else 0}
        elif w and w[0] in ("DEV", "PATHDEV", "LBA", "MAXKB", "QUEUES"):
            st[w[0].lower()] = w[1] if len(w) > 1 else None
    return st


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", required=True)
    ap.add_argument("--pcap", required=True)
    ap.add_argument("--job", required=True)
    ap.add_argument("--fio-json")
    ap.add_argument("--guest-log")
    ap.add_argument("--target", default="10.3.1.2")
    ap.add_argument("--port", type=int, default=4420)
    ap.add_argument("--lba", type=int, default=4096)
    ap.add_argument("--pre-fio", type=int,
                    help="I/O commands the kernel issued before fio (else from --guest-log)")
    ap.add_argument("--out")
    a = ap.parse_args()

    job = parse_job(a.job)
    frames, cmds, types, streams = dissect(a.pcap, a.port)
    malformed = count(a.pcap, a.port, "_ws.malformed || _ws.expert.severity >= error")
    gs = guest_stats(a.guest_log)
    closed = sum(1 for st in streams.values() if st["fin"] == {True, False} or
                 (True in st["fin"] and st["rst"]))
    lba = a.lba

    admin = [c for c in cmds if c["qid"] == 0]
    ioq = [c for c in cmds if c["qid"] is not None and c["qid"] > 0]
    noq = [c for c in cmds if c["qid"] is None]
    ioq_data = [c for c in ioq if "fabrics" not in c]
    connects = [c for c in cmds if c.get("fabrics") == "connect"]

    admin_ops = collections.Counter(
        "fabrics_" + c["fabrics"] if "fabrics" in c else ADMIN_OPC.get(c["opc"], "opc_0x%02x" % c["opc"])
        for c in admin)
    pre = None
    if "STAT0" in gs:
        s0 = gs["STAT0"]
        pre = s0["reads"] + s0["writes"] + s0["discards"] + s0["flushes"]
    if a.pre_fio is not None:
        pre = a.pre_fio
    kern, fio_cmds = (ioq_data[:pre], ioq_data[pre:]) if pre is not None else ([], ioq_data)

    rw = job.get("rw", "read")
    bs = size(job.get("bs", "4k"))
    rwmixread = int(job.get("rwmixread", 50)) if rw in ("randrw", "rw", "readwrite") else \
        (100 if "read" in rw else 0)
    expect = {
        "name": a.name,
        "pcap": os.path.basename(a.pcap),
        "pcap_bytes": os.path.getsize(a.pcap),
        "dissector": "%s; -d tcp.port==%d,nvme-tcp" % (
            subprocess.run(["tshark", "-v"], capture_output=True, text=True).stdout
            .split("\n")[0].split(" (Git")[0], a.port),
        "target": "%s:%d" % (a.target, a.port),
        "lba_bytes": lba,
        "fio_job": {
            "file": os.path.basename(a.job), "rw": rw, "rwmixread": rwmixread, "bs": bs,
            "bs_blocks": bs // lba, "iodepth": int(job.get("iodepth", 1)),
            "numjobs": int(job.get("numjobs", 1)), "ioengine": job.get("ioengine"),
            "direct": int(job.get("direct", 0)),
            "size": size(job["size"]) if "size" in job else None,
            "offset": size(job.get("offset", "0")),
            "number_ios": int(job["number_ios"]) if "number_ios" in job else None,
        },
        "frames": len(frames),
        "max_frame_len": max(f["len"] for f in frames),
        "malformed_or_error_frames": malformed,
        "tcp_connections": len(streams),
        "tcp_connections_closed": closed,
        "pdu_types": {PDU_TYPES.get(k, str(k)): v for k, v in sorted(types.items())},
        "connects": [{"frame": c["frame"], "qid": c["connect_qid"], "sqsize": c["sqsize"],
                      "subnqn": c["subnqn"]} for c in connects],
        "commands": {
            "total": len(cmds),
            "admin_queue": len(admin),
            "io_queue": len(ioq),
            "queue_unknown": len(noq),
            "admin_opcodes": dict(sorted(admin_ops.items())),
            "io_queue_fabrics": sum(1 for c in ioq if "fabrics" in c),
        },
        "io_all": io_summary(ioq_data, lba),
        "kernel_before_fio": {
            "commands": len(kern),
            "list": [{"frame": c["frame"], "opc": IO_OPC.get(c["opc"], c["opc"]),
                      "slba": c.get("slba"), "nlb": c.get("nlb")} for c in kern],
        },
        "fio_io": io_summary(fio_cmds, lba),
    }
    if gs:
        expect["guest_block_stats"] = {
            {"STAT0": "before_fio", "STAT1": "after_fio"}.get(k, k): v for k, v in gs.items()}
    fio = None
    if a.fio_json and os.path.exists(a.fio_json):
        j = json.load(open(a.fio_json))["jobs"][0]
        fio = {"read_ios": j["read"]["total_ios"], "write_ios": j["write"]["total_ios"],
               "read_bytes": j["read"]["io_bytes"], "write_bytes": j["write"]["io_bytes"],
               "error": j["error"], "fio_version": json.load(open(a.fio_json)).get("fio version")}
        expect["fio_report"] = fio

    # ---------------------------------------------------------------- checks
    checks = []
    # The block layer splits an I/O larger than max_sectors_kb into several commands.
    max_cmd = int(gs["maxkb"]) * 1024 if gs.get("maxkb") else None
    split = max_cmd is not None and bs > max_cmd
    expect["kernel_splits_fio_io"] = split
    def check(ok, what):
        checks.append({"ok": bool(ok), "check": what})
    fi = expect["fio_io"]
    check(malformed == 0, "no malformed frames or dissector errors (%d)" % malformed)
    check(expect["max_frame_len"] <= 1514, "wire-sized frames (largest %d)" % expect["max_frame_len"])
    check(types[0] == len(streams) and types[1] == len(streams) and len(streams) >= 2,
          "every TCP connection has ICReq/ICResp (%d connections)" % len(streams))
    check(closed == len(streams), "every TCP connection closed in the capture (FIN from the"
          " host, then FIN or RST): %d/%d" % (closed, len(streams)))
    last_io = max([c["frame"] for c in ioq_data] or [0])
    shut = [c for c in admin if c.get("fabrics") == "property_set" and c["frame"] > last_io]
    check(len(shut) >= 1, "disconnect captured: admin Property Set (CC shutdown) after the last"
          " I/O command (%d)" % len(shut))
    cq = sorted(c["connect_qid"] for c in connects)
    check(cq == [0, 1], "Fabrics Connect of the admin queue and ONE I/O queue (qids %s)" % cq)
    check(not noq, "every command has a queue id from the dissector (%d without)" % len(noq))
    check(all(c.get("nlb") == c.get("nlb_raw", -1) + 1 for c in ioq_data),
          "tshark's NLB = raw NLB field + 1 for every I/O command")
    check(all(c.get("nsid") == 1 for c in ioq_data), "every I/O command is for nsid 1")
    if fio:
        check(fio["error"] == 0, "fio reported no error")
        if not split:
            check(fi["reads"] == fio["read_ios"] and fi["writes"] == fio["write_ios"],
                  "commands = fio's I/Os (reads %d/%d, writes %d/%d)" % (
                      fi["reads"], fio["read_ios"], fi["writes"], fio["write_ios"]))
        check(fi["read_bytes"] == fio["read_bytes"] and fi["write_bytes"] == fio["write_bytes"],
              "bytes on the wire = fio's (read %d/%d, write %d/%d)" % (
                  fi["read_bytes"], fio["read_bytes"], fi["write_bytes"], fio["write_bytes"]))
    if "STAT1" in gs:
        s1 = gs["STAT1"]
        tot = s1["reads"] + s1["writes"] + s1["discards"] + s1["flushes"]
        check(len(ioq_data) == tot, "I/O-queue commands %d = the guest's block requests %d"
              % (len(ioq_data), tot))
    want_r = rwmixread
    if fi["read_pct"] is not None:
        check(abs(fi["read_pct"] - want_r) <= 5,
              "read share %.1f%% within 5 points of rwmixread %d" % (fi["read_pct"], want_r))
    sizes = set()
    for h in fi["size_bytes_hist"].values():
        sizes |= {int(k) for k in h}
    if not split:
        check(sizes == {bs}, "every fio command is bs=%d bytes (%s)" % (bs, sorted(sizes)))
    else:
        check(max(sizes) <= max_cmd, "fio's %d-byte I/Os split into commands of at most"
              " max_sectors_kb (%s)" % (bs, sorted(sizes)))
    seq = not rw.startswith("rand")
    if seq:
        check(fi["lba_sequential"], "LBAs sequential (%d/%d contiguous pairs)" % (
            fi["contiguous_pairs"], fi["pairs"]))
        check(fi.get("first_slba") == expect["fio_job"]["offset"] // lba,
              "first LBA = offset / LBA size")
    else:
        check(fi["contiguous_pairs"] <= max(2, fi["pairs"] // 20),
              "LBAs random (%d/%d contiguous pairs)" % (fi["contiguous_pairs"], fi["pairs"]))
    if expect["fio_job"]["size"]:
        end = (expect["fio_job"]["offset"] + expect["fio_job"]["size"]) // lba
        check(fi.get("lba_end_max", 0) <= end, "LBAs within the job's region (end %d <= %d)"
              % (fi.get("lba_end_max", 0), end))
    if expect["fio_job"]["number_ios"]:
        check(fi["commands"] == expect["fio_job"]["number_ios"],
              "fio commands %d = number_ios %d" % (fi["commands"], expect["fio_job"]["number_ios"]))
    elif expect["fio_job"]["size"]:
        check(fi["read_bytes"] + fi["write_bytes"] == expect["fio_job"]["size"],
              "fio bytes = size %d" % expect["fio_job"]["size"])
    expect["checks"] = checks

    if a.out:
        with open(a.out, "w") as f:
            json.dump(expect, f, indent=1)
            f.write("\n")
    # summary
    c = expect["commands"]
    print("== %s: %d bytes, %d frames (largest %d), %d TCP connections, PDUs %s" % (
        a.name, expect["pcap_bytes"], len(frames), expect["max_frame_len"], len(streams),
        " ".join("%s=%d" % kv for kv in expect["pdu_types"].items())))
    print("   commands %d: admin queue %d %s; I/O queue %d (%d Connect); kernel before fio %d %s" % (
        c["total"], c["admin_queue"], c["admin_opcodes"], c["io_queue"], c["io_queue_fabrics"],
        len(kern), [(x["opc"], x["slba"], x["nlb"]) for x in expect["kernel_before_fio"]["list"]]))
    print("   fio (%s bs=%d iodepth=%d): %d commands, reads %d writes %d (read %s%%), blocks %s,"
          " contiguous %d/%d; fio says read %s write %s" % (
              rw, bs, expect["fio_job"]["iodepth"], fi["commands"], fi["reads"], fi["writes"],
              fi["read_pct"], fi["nlb_hist"], fi["contiguous_pairs"], fi["pairs"],
              fio and fio["read_ios"], fio and fio["write_ios"]))
    bad = [x for x in checks if not x["ok"]]
    for x in checks:
        print("   %s %s" % ("ok  " if x["ok"] else "FAIL", x["check"]))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
