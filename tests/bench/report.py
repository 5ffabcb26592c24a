#!/usr/bin/python3
"""make bench: the report.  Reads build/bench/PART.json of every part that
ran, and writes build/bench/report.md, report.json and the plots
(pkt_cost.svg, pkt_stages.svg, tput.svg, react.svg, cluster_*.svg), and
prints the table
of targets.  Every target of issue 6 is listed, met, missed or not
measured, with its figure."""
import json
import os
import platform
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as B  # noqa: E402
import svgplot  # noqa: E402

PARTS = ("pkt", "tput", "react", "scale", "guest", "cluster")
CASES = (("hit", "connection hit"), ("syn", "new connection (SYN)"),
         ("reply_xdp", "storage to VM, XDP"), ("reply_tc", "storage to VM, TC"),
         ("roce", "RoCEv2 steering"), ("parse_on", "NVMe/TCP 1 PDU, parsing on"),
         ("parse_on_s64", "  same, 1 command in 64 reported"), ("parse_off", "NVMe/TCP 1 PDU, parsing off"),
         ("c2h_on", "read data to VM (C2HData, XDP), parsing on"),
         ("c2h_off", "read data to VM (C2HData, XDP), parsing off"),
         ("pass", "not storage (passed)"))
STAGES = ("VM lookup, parse, source check", "connection lookup", "route generation and path lookup",
          "path liveness stamp (coarse clock)", "NVMe/TCP parser call (off)", "DNAT (address, port)",
          "path L3, VLAN, MACs, redirect", "connection and counters")


def run(*cmd):
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
        return (r.stdout or r.stderr).strip()
    except (OSError, subprocess.SubprocessError):
        return None


def git_rev():
    """The checked-out commit, read from .git (no git command is run)."""
    g = os.path.join(B.ROOT, ".git")
    try:
        head = open(os.path.join(g, "HEAD")).read().strip()
        if not head.startswith("ref: "):
            return head
        ref = head[5:]
        p = os.path.join(g, ref)
        if os.path.exists(p):
            return "%s (%s)" % (open(p).read().strip(), ref.rsplit("/", 1)[-1])
        for line in open(os.path.join(g, "packed-refs")):
            if line.strip().endswith(" " + ref):
                return "%s (%s)" % (line.split()[0], ref.rsplit("/", 1)[-1])
    except OSError:
        pass
    return None


def dpkg(pkg):
    return run("dpkg-query", "-W", "-f=${Version}", pkg)


def machine():
    cpu = None
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    distro = None
    with open("/etc/os-release") as f:
        for line in f:
            if line.startswith("PRETTY_NAME="):
                distro = line.split("=", 1)[1].strip().strip('"')
    with open("/proc/meminfo") as f:
        mem = int(f.readline().split()[1]) // 1024
    cs = open("/sys/devices/system/clocksource/clocksource0/current_clocksource").read().strip()
    return {
        "cpu": cpu, "cores": os.cpu_count(), "memory_mib": mem, "kernel": platform.release(),
        "distro": distro, "clocksource": cs,
        "loadavg_at_report": open("/proc/loadavg").read().split()[:3],
        "versions": {
            "clang": (run("clang", "--version") or "").splitlines()[0],
            "libbpf": dpkg("libbpf-dev"), "iproute2": run("ip", "-V"),
            "bpftool": (run("bpftool", "version") or "").splitlines()[0],
            "iperf3": (run("iperf3", "--version") or "").splitlines()[0],
            "nftables": run("nft", "--version"), "gcc": (run("gcc", "--version") or
                                                         "").splitlines()[0],
            "vsn_git_rev": git_rev()},
    }


def load(part):
    p = os.path.join(B.OUT, part + ".json")
    if not os.path.exists(p):
        return None
    with open(p) as f:
        return json.load(f)


def T(*a, **k):
    return B.target(*a, **k)


def pkt_targets(pkt, out):
    if not pkt or not pkt.get("sizes"):
        out += [T("connection hit: (vsn - empty) <= 2 x (floor - empty)", None, None, False),
                T("1M entries, a different connection per packet: vsn <= 1.2 x floor", None,
                  None, False),
                T("NVMe/TCP parsing on, single PDU <= 1.3 x parsing off", None, None, False)]
        return
    sizes = sorted(pkt["sizes"], key=int)
    small, big = sizes[0], sizes[-1]
    d = pkt["sizes"][small]["same"]["derived"]
    hit, fl = d["hit_above_empty"], d["floor_above_empty"]
    out.append(T("connection hit: (vsn - empty) <= 2 x (floor - empty)", hit, 2 * fl,
                 hit <= 2 * fl, "ns", "%s connections, the same one every packet: vsn %s ns "
                 "above empty, floor %s ns above empty: %.2f x the floor's (allowed 2)"
                 % (small, hit, fl, hit / fl if fl else 0)))
    d = pkt["sizes"][big]["diff"]["derived"]
    ratio = d["hit_equiv"] / d["floor_equiv"]
    out.append(T("%s entries, a different connection per packet: vsn <= 1.2 x floor"
                 % format(2 * int(big), ","), round(ratio, 3), 1.2, ratio <= 1.2, "x",
                 "vsn %s ns, floor %s ns per packet (each as if run alone: measured in the "
                 "wrapper, the wrapper subtracted, empty added)"
                 % (d["hit_equiv"], d["floor_equiv"])))
    d = pkt["sizes"][small]["same"]["derived"]
    ratio = d["parse_on_equiv"] / d["parse_off_equiv"]
    out.append(T("NVMe/TCP parsing on, single PDU <= 1.3 x parsing off", round(ratio, 3), 1.3,
                 ratio <= 1.3, "x", "on %s ns, off %s ns (vsn's default telemetry: an event "
                 "per command); with 1 command in 64 reported and timed: %.2f x"
                 % (d["parse_on_equiv"], d["parse_off_equiv"],
                    d["parse_on_s64_equiv"] / d["parse_off_equiv"])))
    if "c2h_on_equiv" in d:
        ratio = d["c2h_on_equiv"] / d["c2h_off_equiv"]
        out.append(T("NVMe/TCP parsing on, 4 KiB read's data segment (C2HData, 1 PDU) <= 1.3 x "
                     "parsing off", round(ratio, 3), 1.3, ratio <= 1.3, "x",
                     "on %s ns, off %s ns: the reply path (XDP), a 1448-byte segment that "
                     "starts with its PDU header" % (d["c2h_on_equiv"], d["c2h_off_equiv"])))


def tput_targets(tp, out):
    names = (("write", "bulk towards the backend"), ("read", "bulk from the backend"),
             ("rr", "request/response"))
    for t, desc in names:
        m = tp["median"] if tp else None
        if not m or not m["vsn"][t]["gbit_s"]:
            out.append(T("%s: vsn >= 0.95 x plain, >= 1.1 x nftables, CPU/GB <= both" % desc,
                         None, None, False))
            continue
        v, p, n = m["vsn"][t], m["plain"][t], m["nft"][t]
        key = "per_s" if t == "rr" else "gbit_s"
        unit = "transactions/s" if t == "rr" else "Gbit/s"
        rp, rn = v[key] / p[key], v[key] / n[key]
        out.append(T("%s: vsn >= 0.95 x plain routing" % desc, round(rp, 3), 0.95, rp >= 0.95,
                     "x", "vsn %.2f, plain %.2f %s" % (v[key], p[key], unit)))
        out.append(T("%s: vsn >= 1.1 x nftables DNAT + policy routing" % desc, round(rn, 3),
                     1.1, rn >= 1.1, "x", "vsn %.2f, nftables %.2f %s" % (v[key], n[key], unit)))
        cv, cp, cn = v["cpu_s_per_gb"], p["cpu_s_per_gb"], n["cpu_s_per_gb"]
        if cv is not None and cp is not None and cn is not None:
            out.append(T("%s: vsn CPU per GB <= plain and <= nftables" % desc, round(cv, 3),
                         round(min(cp, cn), 3), cv <= min(cp, cn), "CPU s/GB",
                         "vsn %.3f, plain %.3f, nftables %.3f CPU s/GB" % (cv, cp, cn)))


def react_targets(r, out):
    lim = (("carrier", "carrier down -> maps updated: median <= 5 ms", 5),
           ("silent", "silent cut -> connections moved: median <= 300 ms", 300),
           ("congestion", "congestion onset -> first move <= 1 s (median)", 1000))
    for k, desc, limit in lim:
        x = r["kinds"].get(k) if r else None
        v = x["median_ms"] if x else None
        out.append(T(desc, v, limit, v is not None and v <= limit, "ms",
                     "p99 %s ms, %s trials" % (x["p99_ms"], x["measured"]) if x else ""))


def guest_targets(g, out):
    if not g or g.get("not_done") or not g.get("stall_s"):
        why = (g or {}).get("not_done", "part guest did not run")
        out.append(T("guest I/O stall after a silent path cut <= 1 s with vsn", None, 1, False,
                     "s", why))
        out.append(T("guest stall with vsn >= 10 x shorter than native NVMe multipath", None,
                     10, False, "x", why))
        return
    s = g["stall_s"]
    v = s.get("vsn", {}).get("silent")
    n = s.get("native", {}).get("silent")
    fo = {k: B.median([x for x in g.get("failover_gap_s", {}).get(k, {}).get("silent", []) if x])
          for k in ("vsn", "native")}
    out.append(T("guest I/O stall after a silent path cut <= 1 s with vsn", v, 1,
                 v is not None and v <= 1, "s",
                 "longest fio completion gap while a %s s cut lasts, median of trials; the "
                 "failover alone (largest gap within 3 s of the cut): %s s"
                 % (fmt(g.get("config", {}).get("fault_s"), 0), fmt(fo["vsn"], 2))))
    ratio = n / v if v and n else None
    out.append(T("guest stall with vsn >= 10 x shorter than native NVMe multipath",
                 round(ratio, 1) if ratio else None, 10, ratio is not None and ratio >= 10, "x",
                 "native %s s, vsn %s s (failover gaps alone: native %s s, vsn %s s)"
                 % (fmt(n, 2), fmt(v, 2), fmt(fo["native"], 2), fmt(fo["vsn"], 2))))


def scale_targets(s, out):
    row = (s or {}).get("daemon", {}).get("100000")
    out.append(T("daemon at 100k idle connections: <= 32 MiB resident", row and row["rss_mib"],
                 32, bool(row) and row["rss_mib"] <= 32, "MiB"))
    out.append(T("daemon at 100k idle connections: <= 2 % of a core", row and row["cpu_pct"], 2,
                 bool(row) and row["cpu_pct"] <= 2, "%"))


def cluster_run(c, members, hosts):
    for r in (c or {}).get("runs", []):
        if r["members"] == members and r["hosts"] == hosts:
            return r.get("fig")
    return None


def cluster_targets(c, out):
    n = 1000
    for members in (1, 3):
        f = cluster_run(c, members, n)
        m = "%d member%s" % (members, "s" if members > 1 else "")
        name = "cluster, %s hosts, %s: all hosts agree <= 2 s after the quorum formed" % (
            format(n, ","), m)
        if not f:
            out.append(T(name, None, 2, False, "s", "not run"))
        elif not f["converged"] or "fail_two" not in f:
            t = T(name, None, 2, False, "s",
                  "never: %d of %d hosts had read the cluster (every host's observations) "
                  "%.0f s after the last one started; etcd at %.0f %% CPU, %.0f MiB"
                  % (f["hosts_ready"] or 0, n, f["ready_s"] or 0, f["etcd_cpu_pct"] or 0,
                     f["etcd_rss_mib"] or 0))
            t["status"] = "missed"
            out.append(t)
        else:
            xs = [f[k]["q_max_ms"] for k in ("fail_two", "fail_all") if k in f]
            v = max(xs) / 1000 if all(x is not None for x in xs) else None
            t = T(name, round(v, 3) if v is not None else None, 2, v is not None and v <= 2,
                  "s", "2 hosts fail it: %s ms, every host: %s ms (max)" % (
                      fmt(f["fail_two"]["q_max_ms"], 0), fmt(f["fail_all"]["q_max_ms"], 0)))
            if v is None:
                t["status"] = "missed"
            out.append(t)
    for members in (1, 3):
        f = cluster_run(c, members, n)
        m = "%d member%s" % (members, "s" if members > 1 else "")
        name = "cluster, %s hosts, %s: cluster threads < 2 %% of a core per host" % (
            format(n, ","), m)
        pr = ((c or {}).get("projection_1000") or {}).get(str(members), {})
        if not f:
            out.append(T(name, None, 2, False, "%", "not run"))
        elif not f["converged"]:
            out.append(T(name, None, 2, False, "%",
                         "the hosts never converged, so what they took (%.3f %%, the single "
                         "host %.3f %%) is what a starved machine gave them; from %s hosts' "
                         "figures (a host's fixed cost + its CPU per watch event x 1,000 hosts' "
                         "writes; the largest run that kept up) a host would need %s %%"
                         % (f["cpu_pct_per_host"] or 0, f["solo_cpu_pct"] or 0,
                            pr.get("from_hosts", "-"), fmt(pr.get("cpu_pct_per_host"), 2))))
        else:
            v = f["cpu_pct_per_host"]
            out.append(T(name, round(v, 3), 2, v < 2, "%", "single host in its own process: "
                         "%.3f %%" % (f["solo_cpu_pct"] or 0)))
    xs = [cluster_run(c, m, n) for m in (1, 3)]
    xs = [f for f in xs if f and f.get("writes_per_host_interval") is not None]
    v = max(f["writes_per_host_interval"] for f in xs) if xs else None
    big = [r.get("fig") for r in (c or {}).get("runs", [])]
    big = [f for f in big if f and f.get("kept_up")]
    big = max(big, key=lambda f: f["hosts"]) if big else None
    out.append(T("cluster, %s hosts: <= 1 etcd transaction per host per publish interval"
                 % format(n, ","), round(v, 3) if v is not None else None, 1,
                 v is not None and v <= 1, "",
                 "etcd's write revisions / hosts / intervals in the steady window (the hosts' "
                 "own count of answered txns: %s)%s" % (
                     ", ".join(fmt(f["txns_per_host_interval"], 3) for f in xs),
                     "; the hosts had not converged: at %d hosts, which kept up: %s" % (
                         big["hosts"], fmt(big["writes_per_host_interval"], 3))
                     if big and any(not f["converged"] for f in xs) else "")))


def why(parts, targets):
    """For each missed target, what this run's own figures say about why."""
    out = []
    missed = {t["target"] for t in targets if t["status"] == "missed"}
    pkt, tp = parts["pkt"], parts["tput"]
    if pkt and pkt.get("sizes"):
        sizes = sorted(pkt["sizes"], key=int)
        d = pkt["sizes"][sizes[0]]["same"]["derived"]
        st = [d.get("stage%d_above_empty" % i, 0) - (d.get("stage%d_above_empty" % (i - 1), 0)
                                                        if i > 1 else 0) for i in range(1, 9)]
        if any(t.startswith("connection hit") for t in missed):
            out.append(
                "**Connection hit.** vsn spends %s ns above the empty program where the floor "
                "spends %s. Its steps (ablation, this run): parse, VM lookup and source check %d, the "
                "connection lookup %d (the floor's own work), the route generation and the "
                "path's hash lookup %d (the route itself is cached in the connection), the "
                "path liveness stamp %d (bpf_ktime_get_coarse_ns: %s ns alone, against %s for "
                "bpf_ktime_get_ns), the NVMe/TCP parser's call with parsing off %d, DNAT of "
                "address and port %d (the IP checksum inline; two bpf_l4_csum_replace calls, "
                "since only the kernel knows whether the skb's checksum is partial), path L3 "
                "fields, VLAN, MACs and redirect %d, connection stamp and four counters %d. "
                "Beyond the floor's parse and lookup, a hit needs the path (what lets a path "
                "change reach live connections) and the NAT: the allowance of one more floor "
                "(%s ns) does not cover them."
                % (d["hit_above_empty"], d["floor_above_empty"], st[0], st[1], st[2], st[3],
                   d.get("cal_coarse"), d.get("cal_ktime"), st[4], st[5], st[6], st[7],
                   d["floor_above_empty"]))
        if any(t.startswith("NVMe/TCP parsing") for t in missed):
            out.append(
                "**Parsing on.** Parsing a one-capsule packet adds %s ns (%s ns as if alone, "
                "against %s off). Timing a command takes the precise clock (bpf_ktime_get_ns, "
                "%s ns here), which the forwarding path no longer reads, and its ring-buffer "
                "event about %s ns more: vsn's default reports and times every command. With 1 "
                "command in 64 reported (vsn telemetry --sample 64: the others are counted, "
                "not timed) the addition is %s ns, %.2f x: reading the PDU header "
                "(bpf_skb_load_bytes), the sequential mark and the counters. On real skbs "
                "through the hook (below) the same capsule costs %s x off."
                % (d["parse_on_above_empty"] - d["parse_off_above_empty"],
                   d["parse_on_equiv"], d["parse_off_equiv"], d.get("cal_ktime"),
                   d.get("cal_ringbuf"),
                   d["parse_on_s64_above_empty"] - d["parse_off_above_empty"],
                   d["parse_on_s64_equiv"] / d["parse_off_equiv"],
                   "%.2f" % pkt["superframe"]["ratio_single"] if pkt.get("superframe")
                   else "-"))
    if tp and any(("bulk" in t or "request/response" in t) for t in missed):
        m = tp["median"]
        if "plain-xdp" in m and "vsn-tc" in m:
            rows = []
            for t, key in (("write", "gbit_s"), ("read", "gbit_s"), ("rr", "per_s")):
                p, x, v, vt, n = (m[s][t].get(key) for s in ("plain", "plain-xdp", "vsn",
                                                             "vsn-tc", "nft"))
                if p and x and v and vt and n:
                    rows.append("%s: plain-xdp %.2f x plain, vsn %.2f x, vsn-tc %.2f x plain "
                                "and %.2f x nftables" % (t, x / p, v / p, vt / p, vt / n))
            out.append(
                "**Throughput.** On a veth, attaching any XDP program moves the device's "
                "receive path to a NAPI instance of its own, and XDP_REDIRECT into the VM's "
                "veth adds a second one: plain routing with an XDP program that does nothing "
                "loses as much as vsn does, and vsn without XDP does not (" +
                "; ".join(rows) + "). With native XDP on a physical NIC the driver's own NAPI "
                "runs the program and this hop does not exist; on veth uplinks (containers, "
                "this testbed) attach with --xdp-mode tc.")
    g = parts.get("guest")
    if g and g.get("stall_s") and any(t.startswith("guest") for t in missed):
        tr = g["trials"].get("vsn", {}).get("silent", [])
        fo = g.get("failover_gap_s", {}).get("vsn", {}).get("silent", [])
        after = g.get("gap_from_fault_s", {}).get("vsn", {}).get("silent", [])
        ev = g.get("events", {}).get("vsn", {}).get("silent", [])
        out.append(
            "**Guest stall after a silent cut.** Per trial, the largest gap was %s s, beginning "
            "%s s after the cut; the failover itself (the largest gap beginning within 3 s of "
            "the cut) %s s. What the daemon decided in each trial (decision log): %s. Native "
            "multipath waited for its keep-alive timeout in every trial (%s s)."
            % (", ".join(fmt(x, 2) for x in tr), ", ".join(fmt(x, 1) for x in after),
               ", ".join(fmt(x, 2) for x in fo), "; ".join(ev) or "not recorded",
               ", ".join(fmt(x, 1) for x in g["trials"].get("native", {}).get("silent", []))))
    return out


def fmt(v, nd=1):
    if v is None:
        return "-"
    if isinstance(v, float):
        return ("%%.%df" % nd) % v
    return str(v)


def pkt_section(pkt, md, plots):
    md.append("## 1. Per-packet cost (BPF_PROG_TEST_RUN)\n")
    if not pkt:
        md.append("Not run.\n")
        return
    c = pkt["config"]
    md.append("%d interleaved rounds; median of the kernel's mean per run; %d repetitions per "
              "run (SYN 5 %%, NVMe/TCP parsing 40 %% of that, to fit the event ring). "
              "Figures are ns per packet above the empty program of the hook: "
              "T(wrapper + program) - T(wrapper alone) (tests/bench/pkt_bench_wrap.h puts the "
              "packet back after each repetition and picks the connection). Tables: N "
              "connections, two entries each in vsn_conns (500,000 = 1,000,000 entries; the "
              "table holds 2^20). same: one connection every packet; diff: the next of the N "
              "every packet. Parsing is off except in the parsing rows. SYN includes the "
              "wrapper deleting both entries again.\n" % (c["rounds"], c["repeat"]))
    sizes = sorted(pkt["sizes"], key=int)
    cols = [(s, v) for s in sizes for v in ("same", "diff")]
    md.append("| ns above empty | " + " | ".join("%s %s" % (format(int(s), ","), v)
                                                   for s, v in cols) + " |")
    md.append("|---" * (len(cols) + 1) + "|")
    rows = [("empty program itself (TC)", "empty", False),
            ("floor: parse + 1 hash lookup", "floor_above_empty", False)]
    rows += [(desc, k + "_above_empty", True) for k, desc in CASES]
    rows += [("floor, RoCEv2 packet", "roce_floor_above_empty", False),
             ("empty program itself (XDP)", "x_empty", False),
             ("floor under XDP", "x_floor_above_empty", False)]
    for desc, key, _ in rows:
        vals = [pkt["sizes"][s][v]["derived"].get(key) for s, v in cols]
        md.append("| %s | %s |" % (desc, " | ".join(fmt(x, 0) for x in vals)))
    md.append("")
    md.append("Ratios (each figure as if run alone, i.e. + empty): vsn hit / floor: " + ", ".join(
        "%s %s %.2f" % (format(int(s), ","), v, pkt["sizes"][s][v]["derived"]["hit_equiv"] /
                        pkt["sizes"][s][v]["derived"]["floor_equiv"]) for s, v in cols) + ".\n")
    d0 = pkt["sizes"][sizes[0]]["same"]["derived"]
    md.append("One helper call on this machine (TC, minus empty): bpf_ktime_get_ns %s ns, "
              "bpf_ktime_get_coarse_ns %s ns, bpf_csum_diff %s ns, ring buffer reserve + "
              "discard %s ns.\n" % (d0.get("cal_ktime"), d0.get("cal_coarse"),
                                    d0.get("cal_csum_diff"), d0.get("cal_ringbuf")))
    md.append("### Where the connection hit's time goes (ablation)\n")
    md.append("tests/bench/pkt_bench_tc.bpf.c `b_w_stage`: vsn's hit path cut after each step; "
              "each row is the step's own cost (difference of two stages).\n")
    md.append("| step | " + " | ".join("%s %s" % (format(int(s), ","), v) for s, v in cols) +
              " |")
    md.append("|---" * (len(cols) + 1) + "|")
    for i, name in enumerate(STAGES, 1):
        vals = []
        for s, v in cols:
            dd = pkt["sizes"][s][v]["derived"]
            cur = dd.get("stage%d_above_empty" % i)
            prev = dd.get("stage%d_above_empty" % (i - 1), 0) if i > 1 else 0
            vals.append(cur - prev if cur is not None else None)
        md.append("| %d %s | %s |" % (i, name, " | ".join(fmt(x, 0) for x in vals)))
    md.append("| whole hit path (stage 8) | %s |" % " | ".join(
        fmt(pkt["sizes"][s][v]["derived"].get("stage8_above_empty"), 0) for s, v in cols))
    md.append("\nWhere every packet misses the cache (the largest table, a different connection "
              "each time), one cache miss more or less moves a figure by hundreds of ns from run "
              "to run: the steps there are noise around the connection lookup's miss, not costs."
              "\n")
    pc = pkt.get("per_call")
    if pc:
        m = pc["median"]
        md.append("### One packet per call (kernel-reported duration, vsn's attached programs)"
                  "\n")
        md.append("Median of %d calls per round, median of 3 rounds, 1,000 connections, no "
                  "wrapper: every call starts from the original packet, with cold(er) caches "
                  "and the timer's own cost included (compare with empty).\n"
                  % pkt["config"]["calls"])
        md.append("| program | ns | above empty |")
        md.append("|---|---|---|")
        for k in ("empty", "hit", "parse_off", "parse_on", "x_empty", "reply_xdp"):
            base = m["x_empty"] if k.startswith(("x_", "reply")) else m["empty"]
            md.append("| %s | %s | %s |" % (k, m[k], m[k] - base))
        md.append("")
    sf = pkt.get("superframe")
    if sf:
        m = sf["median_ns"]
        md.append("### NVMe/TCP parsing on real skbs (64 KiB super-frame)\n")
        md.append("BPF_PROG_TEST_RUN builds at most a one-page skb, so these frames are "
                  "written into the VM interface's veth peer with AF_PACKET and a virtio-net "
                  "header (a 64 KiB GSO frame of 16 write capsules, 4000 bytes of data each; "
                  "and single capsules), and vsn_vm_ingress's run time per packet is read from "
                  "the kernel's BPF statistics (which add their own clock reads to both).\n")
        md.append("| frame | parsing off ns | parsing on ns | on / off |")
        md.append("|---|---|---|---|")
        md.append("| 1 capsule (%d bytes) | %.0f | %.0f | %.2f |" % (
            sf["frame_bytes"]["single"], m["single_off"], m["single_on"], sf["ratio_single"]))
        md.append("| 16 capsules, GSO (%d bytes) | %.0f | %.0f | %.2f |" % (
            sf["frame_bytes"]["super"], m["super_off"], m["super_on"], sf["ratio_super"]))
        md.append("\nPDUs parsed: %d of %d sent, resyncs %d, capped %d (%s).\n" % (
            sf["telemetry_delta"]["pdus"], sf["pdus_sent"], sf["telemetry_delta"]["resyncs"],
            sf["telemetry_delta"]["capped"], "in step" if sf["ok"] else "NOT in step"))
    if pkt.get("errors"):
        md.append("Checks that failed: " + "; ".join(pkt["errors"]) + "\n")
    else:
        md.append("Every run returned what it must, and the last repetition's output of each "
                  "rewriting case carried the expected addresses, ports and MACs.\n")
    # plots
    groups = [desc.strip() for _, desc in CASES] + ["floor"]
    keys = [k + "_above_empty" for k, _ in CASES] + ["floor_above_empty"]
    series = ["%s %s" % (format(int(s), ","), v) for s, v in cols]
    vals = [[pkt["sizes"][s][v]["derived"].get(k) for s, v in cols] for k in keys]
    plots["pkt_cost.svg"] = svgplot.bars("Per-packet cost above the empty program",
                                         "ns per packet (log)", groups, series, vals, log=True)
    svals = []
    for i in range(1, 9):
        row = []
        for s, v in cols:
            dd = pkt["sizes"][s][v]["derived"]
            row.append(dd.get("stage%d_above_empty" % i, 0) -
                       (dd.get("stage%d_above_empty" % (i - 1), 0) if i > 1 else 0))
        svals.append(row)
    plots["pkt_stages.svg"] = svgplot.bars("Connection hit: cost of each step (ablation)",
                                           "ns per packet", list(STAGES), series, svals)
    md.append("![per-packet cost](pkt_cost.svg)\n\n![hit path steps](pkt_stages.svg)\n")


def tput_section(tp, md, plots):
    md.append("## 2. Throughput across namespaces\n")
    if not tp:
        md.append("Not run.\n")
        return
    c = tp["config"]
    md.append("VM namespace -> hypervisor namespace -> backend namespace, over veth; %d "
              "rounds, the setups interleaved in each; medians. Bulk: iperf3 on port 4420, "
              "%d streams, %s s (write: towards the backend; read: -R). Request/response: "
              "vbn-rr, %s, %s s. Setups: plain routing (no vsn); vsn (TC on the VM "
              "interface, XDP on the uplinks: attach's default); nft (nftables DNAT + policy "
              "routing); vsn-tc (vsn with --xdp-mode tc); plain-xdp (plain routing with an "
              "XDP program that passes everything on the uplinks: what XDP on a veth costs by "
              "itself). CPU s/GB: the CPU time of the test's client and server processes and "
              "of ksoftirqd (with tick accounting, softirq work is charged to the task it "
              "interrupts) per GB moved. The whole machine's busy time (/proc/stat) minus its "
              "busy rate in a %.1f s idle window before each test is in report.json "
              "(cpu_machine_s_per_gb): it is only meaningful on an otherwise idle machine.\n" % (c["rounds"], c["streams"], c["seconds"],
                                                   c["rr"], c["seconds"], c["idle_window_s"]))
    m = tp["median"]
    setups = [s for s in ("plain", "vsn", "nft", "vsn-tc", "plain-xdp") if s in m]
    md.append("| test | " + " | ".join(setups) + " | vsn/plain | vsn/nft |")
    md.append("|---" * (len(setups) + 3) + "|")
    for t, desc, key in (("write", "write Gbit/s", "gbit_s"), ("read", "read Gbit/s", "gbit_s"),
                         ("rr", "request/response per s", "per_s"),
                         ("rr", "request/response p99 us", "p99_us"),
                         ("write", "write CPU s/GB", "cpu_s_per_gb"),
                         ("read", "read CPU s/GB", "cpu_s_per_gb"),
                         ("rr", "request/response CPU s/GB", "cpu_s_per_gb")):
        vals = [m[s][t].get(key) for s in setups]
        v, p, n = m["vsn"][t].get(key), m["plain"][t].get(key), m["nft"][t].get(key)
        md.append("| %s | %s | %s | %s |" % (desc, " | ".join(fmt(x, 2) for x in vals),
                                             fmt(v / p, 2) if v and p else "-",
                                             fmt(v / n, 2) if v and n else "-"))
    md.append("")
    if tp.get("errors"):
        md.append("Errors: " + "; ".join(tp["errors"]) + "\n")
    groups = ["write Gbit/s", "read Gbit/s", "RR Gbit/s"]
    vals = [[m[s][t]["gbit_s"] for s in setups] for t in ("write", "read", "rr")]
    plots["tput.svg"] = svgplot.bars("Throughput per setup (median)", "Gbit/s", groups, setups,
                                     vals, width=640)
    md.append("![throughput](tput.svg)\n")


def react_section(r, md, plots):
    md.append("## 3. Controller reaction\n")
    if not r:
        md.append("Not run.\n")
        return
    c = r["config"]
    md.append("Network namespaces (tests/lib/topo.sh), real TCP transfers (tests/netns/tcpx.py), "
              "vsn daemon with vsn's default detection settings (tick %d ms, watch %d ms, "
              "silent %d ms, health probe every %d ms with %d ms timeout), recovery shortened "
              "(hold-down %d ms) so that trials follow each other. From the event to the "
              "decision-log line's ts (1 ms resolution); see tests/bench/react.py for each "
              "event's time.\n" % (c["tick_ms"], c["watch_ms"], c["silent_ms"],
                                   c["health_interval_ms"], c["health_timeout_ms"],
                                   c["hold_down_ms"]))
    md.append("| event -> decision | trials | median ms | p99 ms | min ms |")
    md.append("|---|---|---|---|---|")
    desc = {"carrier": "carrier down -> failover (maps updated)",
            "silent": "silent cut -> failover (connections moved)",
            "congestion": "congestion onset (TBF) -> first move",
            "backend": "backend failure -> drain"}
    for k in ("carrier", "silent", "congestion", "backend"):
        if k not in r["kinds"]:
            continue
        x = r["kinds"][k]
        md.append("| %s | %d/%d | %s | %s | %s |" % (desc.get(k, k), x["measured"], x["trials"],
                                                     x["median_ms"], x["p99_ms"], x["min_ms"]))
        for n in x.get("notes", [])[:5]:
            md.append("|  %s |||||" % n)
    md.append("")
    kinds = [k for k in ("carrier", "silent", "congestion", "backend") if k in r["kinds"]]
    lim = {"carrier": 5, "silent": 300, "congestion": 1000}
    plots["react.svg"] = svgplot.strips("Controller reaction per trial", "ms (log)", kinds,
                                        [r["kinds"][k]["ms"] for k in kinds],
                                        [lim.get(k) for k in kinds])
    md.append("![reaction](react.svg)\n")


def scale_section(s, md):
    md.append("## 4. Control-plane scale\n")
    if not s:
        md.append("Not run.\n")
        return
    r = s.get("rates")
    if r:
        md.append("Map updates (vbn-tool, one process, %s conn entries, %s routes): vsn_conns "
                  "%.0f/s one syscall each, %.0f/s batched (%d per call); vsn_routes %.0f/s "
                  "one each, %.0f/s batched.\n"
                  % (format(r["conn_entries"], ","), format(r["routes"], ","),
                     r["conns_single_per_s"], r["conns_batch_per_s"], r["batch"],
                     r["routes_single_per_s"], r["routes_batch_per_s"]))
    t = s.get("table")
    if t:
        md.append("vsn_conns at 1,000,000 entries (500,000 connections; max_entries %s): filled "
                  "in %.2f s (%.0f entries/s, batched), walked (get_next_key) in %.2f s, %s MiB "
                  "of kernel memory (bytes_memlock).\n"
                  % (format(t["max_entries"], ","), t["fill"]["seconds"],
                     t["fill"]["entries_per_s"], t["walk"]["seconds"],
                     int(t["bytes_memlock"] or 0) >> 20))
    for k, who in (("ring_libbpf", "a bare libbpf reader"), ("ring_daemon", "vsn daemon")):
        if s.get(k):
            md.append("Ring buffer read by %s: %.0f events/s without a drop (the highest rate "
                      "the flood program reached without one; the lowest with a drop: %.0f/s; "
                      "producer and reader share the machine's %d cores).\n"
                      % (who, s[k]["max_no_drop_per_s"], s[k].get("first_drop_per_s") or 0,
                         os.cpu_count()))
    if s.get("daemon"):
        md.append("Daemon, idle connections written before it starts, %s s window after %s s:"
                  "\n" % (s["config"]["window_s"], s["config"]["warmup_s"]))
        md.append("| connections | entries | CPU % of a core | RSS MiB | peak RSS MiB |")
        md.append("|---|---|---|---|---|")
        for n, row in sorted(s["daemon"].items(), key=lambda kv: int(kv[0])):
            md.append("| %s | %s | %.2f | %.1f | %.1f |" % (
                format(int(n), ","), format(row["entries"], ","), row["cpu_pct"],
                row["rss_mib"], row["hwm_mib"]))
            if row.get("profile", {}).get("top"):
                md.append("|  profile: %s |||||" % ", ".join(
                    "%s %.0f%%" % (x["symbol"], x["percent"]) for x in row["profile"]["top"][:6]))
        md.append("")
    if s.get("errors"):
        md.append("Errors: " + "; ".join(s["errors"]) + "\n")


def guest_section(g, md):
    md.append("## 5. Guest I/O stalls (QEMU testbed)\n")
    if not g:
        md.append("Not run.\n")
        return
    if g.get("not_done"):
        md.append("Not done: %s\n" % g["not_done"])
        return
    md.append(g.get("method", "") + "\n")
    md.append("| setup | fault | trials | largest gap s (longest trial) | each trial: largest gap / "
              "failover gap (within 3 s of the fault), s | I/O ran again before the fault ended |")
    md.append("|---|---|---|---|---|---|")
    for setup, faults in g.get("trials", {}).items():
        for fault, xs in faults.items():
            fo = g.get("failover_gap_s", {}).get(setup, {}).get(fault, [])
            rs = g.get("resumed_during_fault", {}).get(setup, {}).get(fault, [])
            md.append("| %s | %s | %d | %s | %s | %s |" % (
                setup, fault, len(xs), fmt(g["stall_s"][setup].get(fault), 2),
                ", ".join("%s / %s" % (fmt(x, 2), fmt(f, 2)) for x, f in zip(xs, fo)),
                ", ".join("yes" if r else "no" for r in rs)))
    md.append("")
    for n in g.get("notes", []):
        md.append("- " + n)
    for fault, evs in g.get("events", {}).get("vsn", {}).items():
        md.append("- vsn, %s: the daemon's decisions from the fault on: %s" % (fault, "; ".join(evs)))
    md.append("")


def cluster_section(c, md, plots):
    md.append("## 6. Many hosts through etcd (cluster)\n")
    if not c:
        md.append("Not run.\n")
        return
    g = c["config"]
    md.append(
        "tests/bench/cluster.py: the cluster code of libvsn.a (user/cluster/) for many "
        "simulated hosts, no BPF: build/bench/cluster-sim runs up to %d hosts per process, each "
        "a struct cluster of its own from cluster_start() (keeper and watcher threads and their "
        "etcd connections), and one more process holds a single host (its CPU is one host's, "
        "undiluted). Every host publishes %d backends and %d paths every %d ms "
        "(cluster_publish()); the figures jitter below what counts as a change and each "
        "backend or path steps beyond it with probability %.2f per interval, so that about a "
        "fifth of the publishes carry a change. Only %d hosts stand for leader (cluster_opts."
        "campaign false for the others): a thousand campaigners would each hold an election "
        "key and a blocked campaign call, which is not what is measured here. Hosts start at "
        "%d a second. etcd %s (%s), in namespace vsnBcl on 127.0.0.1, data on tmpfs (no fsync "
        "cost), started with tests/lib/etcd.sh; its defaults but for the log (no 1 s progress "
        "notifications, Raft timers 100/1000 ms). Every host's client talks to the first "
        "endpoint that answers: with 3 members the first takes every host's connections, the "
        "others only replicate. Lease TTL %d s, quorum %d. Steady state: a %d s window. "
        "Failure: at t0 two hosts (then every host) publish backend 1 failed; the quorum "
        "formed when the second of them saw its transaction committed (their txns counter "
        "polled every 2 ms) or a host saw it, whichever came first; a host agrees when its "
        "cluster_view() shows backend 1 failing on the quorum (the notify eventfd wakes the "
        "driver, which takes the view as the daemon's loop would). Heal: they publish it "
        "healthy again, until every host sees it failing nowhere. %d s allowed each.\n"
        % (g["per_process"], g["backends_per_host"], g["paths_per_host"], g["publish_ms"],
           g["change_prob"], g["campaigners"], g["start_rate"], g.get("etcd_version", ""),
           "1 and 3 members" if len(g["members"]) > 1 else "%d member(s)" % g["members"][0],
           g["lease_ttl_s"], g["quorum"], g["window_s"], g["deadline_ms"] // 1000))
    runs = [r["fig"] for r in c["runs"] if r.get("fig")]
    if not runs:
        md.append("No run completed: %s\n" % "; ".join(c.get("errors", [])))
        return
    cols = sorted(runs, key=lambda f: (f["members"], f["hosts"]))
    md.append("| | " + " | ".join("%d member%s, %s hosts" % (
        f["members"], "s" if f["members"] > 1 else "", format(f["hosts"], ",")) for f in cols)
        + " |")
    md.append("|---" * (len(cols) + 1) + "|")

    def row(label, get, nd=1):
        vals = []
        for f in cols:
            try:
                v = get(f)
            except (KeyError, TypeError, ZeroDivisionError):
                v = None
            vals.append(v if isinstance(v, str) else fmt(float(v), nd) if v is not None
                        else "-")
        md.append("| %s | %s |" % (label, " | ".join(vals)))

    def sub(k, x):
        return lambda f: f[k][x]

    md.append("| **cold start** |" + " |" * len(cols))
    row("hosts in sync, of all", lambda f: "%d/%d" % (f["hosts_ready"], f["hosts"]))
    row("seconds from the first start", lambda f: f["ready_s"])
    row("etcd calls that failed (timeouts)", lambda f: f["cold_start_errors"], 0)
    row("etcd sent, gRPC MB", lambda f: f["cold_start_grpc_mb"])
    row("cluster_view(), longest, ms", lambda f: f["cold_start_view_max_ms"], 1)
    md.append("| **steady state** |" + " |" * len(cols))
    row("etcd writes/s (revisions)", lambda f: f["writes_per_s"])
    row("keys written/s", lambda f: f["puts_per_s"])
    row("writes per host per publish interval", lambda f: f["writes_per_host_interval"], 3)
    row("hosts' answered txns per host per interval", lambda f: f["txns_per_host_interval"], 3)
    row("watch events/s, all hosts (views' counters)", lambda f: f["watch_events_per_s"], 0)
    row("watch events/s, etcd's count", lambda f: f["etcd_watch_events_per_s"], 0)
    row("events got / due (hosts x keys written), %", lambda f: 100 * f["watch_delivery"], 0)
    row("etcd gRPC bytes/s out (KB/s)", lambda f: f["grpc_tx_bytes_per_s"] / 1e3, 0)
    row("loopback bytes/s, all (KB/s)", lambda f: f["lo_bytes_per_s"] / 1e3, 0)
    row("etcd database, KiB (end of run)", lambda f: f["db_bytes"] / 1024, 0)
    row("etcd CPU, % of a core (all members)", lambda f: f["etcd_cpu_pct"], 0)
    row("etcd RSS, MiB (all members)", lambda f: f["etcd_rss_mib"], 0)
    row("etcd watchers (the hosts' watches it holds)", lambda f: f["watchers"], 0)
    row("cluster threads' CPU per host, % of a core", lambda f: f["cpu_pct_per_host"], 3)
    row("  the single host in its own process", lambda f: f["solo_cpu_pct"], 3)
    row("RSS per host, KiB", lambda f: f["rss_kib_per_host"], 0)
    row("  the single host's process (above its start)", lambda f: f["solo_rss_kib"], 0)
    row("watch events per host per s", lambda f: f["events_per_host_s"], 1)
    row("cluster_view(), us per call", lambda f: f["view_us"], 1)
    row("cluster_view(), longest, ms", lambda f: f["view_max_ms"], 1)
    for k, what in (("fail_two", "2 hosts fail backend 1"), ("fail_all", "every host fails it")):
        md.append("| **%s** |" % what + " |" * len(cols))
        row("t0 -> quorum formed, ms", sub(k, "quorum_ms"), 0)
        row("quorum -> every host agrees, p50 ms", sub(k, "q_p50_ms"), 0)
        row("quorum -> every host agrees, max ms", sub(k, "q_max_ms"), 0)
        row("t0 -> every host agrees, p50 ms", sub(k, "t0_p50_ms"), 0)
        row("t0 -> every host agrees, max ms", sub(k, "t0_max_ms"), 0)
        row("hosts that agreed", lambda f, k=k: "%d/%d" % (f[k]["agreed"], f[k]["hosts"]))
        row("etcd writes/s, t0 .. t0 + 2 s", sub(k, "writes_per_s"), 0)
        row("watch events/s, t0 .. t0 + 2 s", sub(k, "watch_events_per_s"), 0)
        h = k.replace("fail", "heal")
        row("healed: t0 -> every host sees it healthy, max ms", sub(h, "t0_max_ms"), 0)
        row("healed: hosts that saw it in time", lambda f, h=h: "%d/%d" % (f[h]["agreed"],
                                                                        f[h]["hosts"]))
    md.append("")
    pr = c.get("projection_1000") or {}
    for m, p in sorted(pr.items()):
        md.append(
            "Projected for 1,000 hosts from %d hosts' figures (%s member%s; the largest run that "
            "kept up: converged, got 90-110 %% of the events due, agreed within 2 s): %s watch "
            "events/s "
            "(N^2 x %.2f keys written per host per s), %s cores of etcd at its %s us per event, "
            "%s MB read at a cold start, %s %% of a core per host (a fixed %s %% + %s us per "
            "watch event).\n" % (
                p["from_hosts"], m, "s" if m != "1" else "", format(int(p["watch_events_per_s"]),
                                                                   ","),
                p["watch_events_per_s"] / 1e6, fmt(p.get("etcd_cores"), 1),
                fmt(p.get("etcd_cpu_us_per_event"), 0), fmt(p.get("cold_start_grpc_mb"), 0),
                fmt(p.get("cpu_pct_per_host"), 2), fmt(p.get("host_cpu_fixed_pct"), 3),
                fmt(p.get("host_cpu_us_per_event"), 1)))
    if c.get("errors"):
        md.append("Runs that failed: " + "; ".join(c["errors"]) + "\n")
    # Plots: each figure against host count, one line per etcd setup; runs
    # that never converged are left out (what a starved machine gave them
    # is no figure of the design), the projections for 1,000 hosts dashed.
    xs = sorted({f["hosts"] for f in runs} | ({1000} if pr else set()))
    setups = sorted({f["members"] for f in runs})

    def name(m):
        return "%d member%s" % (m, "s" if m > 1 else "")

    def series(get, label="%s", proj=None):
        out, dashed = {}, []
        for m in setups:
            vals = []
            for x in xs:
                f = next((f for f in runs if f["members"] == m and f["hosts"] == x), None)
                try:
                    vals.append(get(f) if f and f["converged"] else None)
                except (KeyError, TypeError, ZeroDivisionError):
                    vals.append(None)
            out[label % name(m)] = vals
            p = pr.get(str(m), {})
            if proj and p.get(proj[0]) is not None and p["from_hosts"] in xs:
                i = xs.index(p["from_hosts"])
                pv = [None] * len(xs)
                pv[i], pv[xs.index(1000)] = vals[i], p[proj[0]] * proj[1]
                key = (label % name(m)) + ", projected"
                out[key] = pv
                dashed.append(key)
        return out, dashed

    ev, d1 = series(lambda f: f["watch_events_per_s"], "events, %s", ("watch_events_per_s", 1))
    wr, d2 = series(lambda f: f["writes_per_s"], "writes, %s")
    ev.update(wr)
    plots["cluster_events.svg"] = svgplot.lines(
        "etcd writes and watch events per second (steady)", "hosts", "per second (log)", xs, ev,
        guides=(("N", 1), ("N²", 2)), dashed=d1 + d2)
    cpu, d1 = series(lambda f: f["solo_cpu_pct"], "a host, %s", ("cpu_pct_per_host", 1))
    ec, d2 = series(lambda f: f["etcd_cpu_pct"] / 100, "etcd cores, %s", ("etcd_cores", 1))
    cpu.update(ec)
    plots["cluster_cpu.svg"] = svgplot.lines(
        "CPU: one host's cluster threads (% of a core), etcd (cores)", "hosts", "(log)", xs,
        cpu, limit=2, limit_label="2 % of a core: the target per host", guides=(("N", 1),),
        dashed=d1 + d2)
    ag, _ = series(lambda f: max(f["fail_two"]["q_max_ms"], 1), "2 fail, %s")
    a2, _ = series(lambda f: max(f["fail_all"]["q_max_ms"], 1), "all fail, %s")
    ag.update(a2)
    plots["cluster_agree.svg"] = svgplot.lines(
        "Backend failure: quorum formed -> every host agrees (max)", "hosts", "ms (log)", xs, ag,
        limit=2000, limit_label="2 s target")
    by, d1 = series(lambda f: f["cold_start_grpc_mb"] * 1e6, "cold start read, %s",
                    ("cold_start_grpc_mb", 1e6))
    for get, label in ((lambda f: f["grpc_tx_bytes_per_s"], "etcd out per s, %s"),
                       (lambda f: f["db_bytes"], "database, %s"),
                       (lambda f: f["rss_kib_per_host"] * 1024, "RSS per host, %s")):
        b, _ = series(get, label)
        by.update((k, v) for k, v in b.items() if k.endswith("1 member"))
    plots["cluster_bytes.svg"] = svgplot.lines(
        "Bytes: cold start, etcd out per s, database (1 member), a host's memory", "hosts",
        "bytes (log)",
        xs, by, guides=(("N", 1), ("N²", 2)), dashed=d1)
    md.append("Left out of the plots: runs that never converged (no host read every host's "
              "observations), whose figures are what a starved machine gave them; dashed: the "
              "projections for 1,000 hosts above. Agreement under 1 ms is drawn at 1 ms.\n")
    md.append("![events](cluster_events.svg)\n\n![cpu](cluster_cpu.svg)\n\n"
              "![agreement](cluster_agree.svg)\n\n![bytes](cluster_bytes.svg)\n")


def verify_section(md):
    """The verifier budget table (scripts/verify.sh's results: the host's
    from this bench run, the guests' from their last e2e or make verify)."""
    d = os.path.join(os.path.dirname(B.OUT), "verify")
    md.append("## 0. Verifier budget\n")
    res = {}
    for name in sorted(os.listdir(d)) if os.path.isdir(d) else []:
        if name.endswith(".json"):
            try:
                res[name[:-5]] = json.load(open(os.path.join(d, name)))
            except (OSError, ValueError):
                pass
    if not res:
        md.append("Not measured (scripts/verify.sh).\n")
        return res
    r = subprocess.run([sys.executable, os.path.join(B.ROOT, "scripts", "verify_table.py"),
                        "--dir", d, "--markdown"], capture_output=True, text=True)
    md.append(r.stdout)
    return res


def main():
    parts = {p: load(p) for p in PARTS}
    targets = []
    pkt_targets(parts["pkt"], targets)
    tput_targets(parts["tput"], targets)
    react_targets(parts["react"], targets)
    guest_targets(parts["guest"], targets)
    scale_targets(parts["scale"], targets)
    cluster_targets(parts["cluster"], targets)
    mach = machine()
    plots = {}
    md = ["# vsn benchmark report\n",
          "Generated %s by `make bench` (tests/bench/, scripts/bench.sh). How to read it and "
          "how to run one part: README.md, Benchmarks.\n" % time.strftime("%Y-%m-%d %H:%M:%S"),
          "## Machine\n",
          "| | |", "|---|---|",
          "| CPU | %s, %d cores |" % (mach["cpu"], mach["cores"]),
          "| memory | %d MiB |" % mach["memory_mib"],
          "| kernel | %s (clocksource %s) |" % (mach["kernel"], mach["clocksource"]),
          "| distribution | %s |" % mach["distro"]]
    for k, v in mach["versions"].items():
        md.append("| %s | %s |" % (k, v))
    md.append("| load average at the end | %s |" % " ".join(mach["loadavg_at_report"]))
    durations = {p: parts[p]["seconds"] for p in PARTS if parts[p] and "seconds" in parts[p]}
    for p in PARTS:
        if parts[p] and "seconds" in parts[p]:
            md.append("| part %s | %.0f s, finished %s, load average then %s |"
                      % (p, parts[p]["seconds"], parts[p].get("finished", "?"),
                         " ".join(parts[p].get("loadavg", []))))
    md.append("")
    md.append("## Targets\n")
    md.append("| target | figure | limit | status | detail |")
    md.append("|---|---|---|---|---|")
    for t in targets:
        md.append("| %s | %s %s | %s | **%s** | %s |" % (t["target"], fmt(t["value"], 2),
                                                       t["unit"] if t["value"] is not None else "",
                                                       fmt(t["limit"], 2), t["status"],
                                                       t["note"]))
    md.append("")
    notes = why(parts, targets)
    if notes:
        md.append("### Why the missed targets are missed (this run's own figures)\n")
        md += [n + "\n" for n in notes]
    verify = verify_section(md)
    pkt_section(parts["pkt"], md, plots)
    tput_section(parts["tput"], md, plots)
    react_section(parts["react"], md, plots)
    scale_section(parts["scale"], md)
    guest_section(parts["guest"], md)
    cluster_section(parts["cluster"], md, plots)
    os.makedirs(B.OUT, exist_ok=True)
    for name, svg in plots.items():
        with open(os.path.join(B.OUT, name), "w") as f:
            f.write(svg)
    with open(os.path.join(B.OUT, "report.md"), "w") as f:
        f.write("\n".join(md))
    with open(os.path.join(B.OUT, "report.json"), "w") as f:
        json.dump({"machine": mach, "targets": targets, "durations_s": durations,
                   "parts": parts, "verifier": verify, "plots": sorted(plots)}, f, indent=1,
                  sort_keys=True)
    # The printed table.
    w = max(len(t["target"]) for t in targets)
    print("\n%-*s  %12s  %10s  %s" % (w, "target", "figure", "limit", "status"))
    for t in targets:
        print("%-*s  %12s  %10s  %s" % (w, t["target"],
                                        "%s %s" % (fmt(t["value"], 2), t["unit"])
                                        if t["value"] is not None else "-",
                                        fmt(t["limit"], 2), t["status"].upper()))
    print("\nparts: %s" % ", ".join("%s %.0f s" % kv for kv in durations.items()))
    print("report: %s, %s; plots: %s" % (os.path.join(B.OUT, "report.md"),
                                         os.path.join(B.OUT, "report.json"),
                                         ", ".join(sorted(plots))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
