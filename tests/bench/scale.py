#!/usr/bin/python3
"""make bench, part scale: the control plane at scale (namespace vbn-scl).

  rates    vsn_conns and vsn_routes updates per second, one syscall per
           entry and batched (BPF_MAP_UPDATE_BATCH), from vbn-tool
  table    vsn_conns filled to 1,000,000 entries (500,000 connections: it
           holds 2^20 entries, two per connection): fill time, a full walk,
           the kernel memory it takes
  ring     ring-buffer events per second read without a drop: by a bare
           libbpf reader, and by the daemon
  daemon   vsn daemon with 10,000, 100,000 and 500,000 idle connections
           (synthetic entries written in batches before it starts): resident
           memory (VmRSS, VmHWM) and CPU (utime + stime from /proc/PID/stat)
           over a window at the default tick; where the target is missed, a
           perf profile of where its time goes
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as B  # noqa: E402

NS = "vbn-scl"
PIN = "/sys/fs/bpf/vbn-scl"
FLOOD = "/sys/fs/bpf/vbn-scl-flood"
FLOOD_OBJ = os.path.join(B.BUILD, "ring_flood.bpf.o")
VIP, BE1 = "192.168.100.10", "10.3.1.2"
SIZES = [int(x) for x in os.environ.get("BENCH_DAEMON_SIZES", "10000,100000,500000").split(",")]
WINDOW = float(os.environ.get("BENCH_DAEMON_SECONDS", "20"))
WARMUP = 3.0
TEL_MAPS = ("vsn_events", "vsn_tel_cfg", "vsn_tel_stats", "vsn_cmds", "vsn_lat_hist")


def teardown(d=None):
    if d:
        d.stop()
    B.sh("rm", "-rf", FLOOD, check=False)
    if os.path.exists("/run/netns/" + NS) and os.path.isdir(PIN):
        B.vsn(PIN, "detach", ns=NS, check=False)
    B.netns_del(NS)
    if os.path.isdir(PIN):
        B.unpin(PIN)


class Daemon:
    def __init__(self, tmp):
        self.tmp = tmp
        self.cfg = os.path.join(tmp, "vsn.yaml")
        self.sock = os.path.join(tmp, "vsn.sock")
        self.p = None

    def start(self):
        self.p = subprocess.Popen(
            ["nsenter", "--net=/run/netns/" + NS, "env", "VSN_SOCKET=" + self.sock, B.VSN,
             "--pin-dir", PIN, "daemon", "-c", self.cfg, "--log",
             os.path.join(self.tmp, "decisions.log")],
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.tmp, "daemon.err"), "a"))
        for _ in range(200):
            if os.path.exists(self.sock):
                return
            if self.p.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError("the daemon did not start: %s"
                           % open(os.path.join(self.tmp, "daemon.err")).read()[-500:])

    def stop(self):
        if self.p and self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.p = None

    def cpu_ticks(self):
        with open("/proc/%d/stat" % self.p.pid) as f:
            v = f.read().rsplit(")", 1)[1].split()
        return int(v[11]) + int(v[12])           # utime + stime

    def mem_kib(self):
        out = {}
        with open("/proc/%d/status" % self.p.pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "VmHWM"):
                    out[k] = int(v.split()[0])
        return out


def conn_args(n):
    return ["--map", PIN + "/vsn_conns", "--n", n, "--addr0", "10.64.0.0", "--vip", VIP,
            "--vport", 4420, "--be", BE1, "--bport", 4420, "--sport", 40000, "--volume", 1,
            "--backend", 1, "--path", 1, "--vm_ifindex", B.ifindex(NS, "vmif"),
            "--vm_mac", "02:00:00:00:00:0a", "--gw_mac", B.macaddr(NS, "vmif")]


def setup(tmp, d):
    B.netns_add(NS)
    for a, b in (("vmif", "vmp"), ("up0", "upp0"), ("up1", "upp1")):
        B.sh("ip", "-n", NS, "link", "add", a, "type", "veth", "peer", "name", b)
        for x in (a, b):
            B.sh("ip", "-n", NS, "link", "set", x, "up")
    B.vsn(PIN, "attach", "--vm", "vmif", "--uplink", "up0,up1", ns=NS)
    with open(d.cfg, "w") as f:
        f.write("vms:\n  - {name: vm1, id: 1, interface: vmif, addresses: [10.0.0.2, '2001:db8::2', 10.64.0.0/10],"
                    "    max_connections: 0, connection_rate: 0}\n"
                "uplinks:\n  - {interface: up0, capacity: 10gbit}\n"
                "  - {interface: up1, capacity: 10gbit}\n"
                'paths:\n  - {id: 1, uplink: up0, next_hop: "%s"}\n'
                '  - {id: 2, uplink: up1, next_hop: "%s"}\n'
                "backends:\n  - {id: 1, address: %s, port: 4420, paths: [1, 2]}\n"
                "volumes:\n  - {id: 1, vm: vm1, address: %s, port: 4420, backends: [1]}\n"
                "controller: {socket: %s, metrics_dir: %s}\n"
                % (B.macaddr(NS, "upp0"), B.macaddr(NS, "upp1"), BE1, VIP, d.sock, tmp))
    B.vsn(PIN, "apply", d.cfg, ns=NS)


def ring_setup():
    os.makedirs(FLOOD, exist_ok=True)
    args = []
    for m in TEL_MAPS:
        args += ["map", "name", m, "pinned", "%s/%s" % (PIN, m)]
    B.sh("bpftool", "prog", "load", FLOOD_OBJ, FLOOD + "/ring_flood", "type", "classifier",
         *args)


def ring(reader):
    return B.tool("ring", "--prog", FLOOD + "/ring_flood", "--ring", PIN + "/vsn_events",
                  "--tel", PIN + "/vsn_tel_stats", "--seconds", 1, "--reader", reader, ns=NS)


def profile(pid, secs=8):
    """Where a process spends its CPU: perf (cpu-clock, this machine has no
    PMU), top symbols by self time."""
    if not shutil.which("perf"):
        return {"error": "perf is not installed (Debian: linux-perf)"}
    data = "/tmp/vbn-scl-perf.data"
    r = B.sh("perf", "record", "-e", "cpu-clock", "-F", "999", "-g", "-o", data, "-p", pid,
             "--", "sleep", secs, check=False, timeout=secs + 60)
    if r.returncode:
        return {"error": r.stderr.strip()[-300:]}
    rep = B.sh("perf", "report", "-i", data, "--no-children", "--sort", "dso,sym", "--stdio",
               "-g", "none", "--percent-limit", "1.5", check=False).stdout
    os.unlink(data)
    rows = []
    for line in rep.splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "%" in line:
            pc, _, rest = line.partition("%")
            dso, _, sym = rest.strip().partition(" ")
            try:
                rows.append({"percent": float(pc), "symbol": "%s %s" % (
                    dso, sym.split("]", 1)[-1].strip())})
            except ValueError:
                pass
    return {"top": rows[:15]}


def main():
    B.start("scale")
    tmp = tempfile.mkdtemp(prefix="vbn-scl.")
    d = Daemon(tmp)
    teardown()
    res = {"config": {"daemon_sizes": SIZES, "window_s": WINDOW, "warmup_s": WARMUP}}
    errors = []
    try:
        setup(tmp, d)
        B.progress("update rates (200,000 connection entries, 32,768 routes)")
        res["rates"] = B.tool("rate", "--routes", PIN + "/vsn_routes", *conn_args(100000),
                              ns=NS)
        B.tool("clear", "--map", PIN + "/vsn_conns", ns=NS)
        B.progress("  " + json.dumps(res["rates"]))
        B.progress("vsn_conns filled to 1,000,000 entries")
        fill = B.tool("fill", *conn_args(500000), ns=NS)
        walk = B.tool("count", "--map", PIN + "/vsn_conns", ns=NS)
        info = json.loads(B.sh("bpftool", "-j", "map", "show", "pinned",
                               PIN + "/vsn_conns").stdout)
        res["table"] = {"fill": fill, "walk": walk, "bytes_memlock": info.get("bytes_memlock"),
                        "max_entries": info.get("max_entries")}
        B.progress("  filled in %.2f s (%.0f entries/s), walked in %.2f s (%d entries), "
                   "%s MiB kernel memory" % (fill["seconds"], fill["entries_per_s"],
                                             walk["seconds"], walk["entries"],
                                             int(info.get("bytes_memlock", 0)) >> 20))
        B.tool("clear", "--map", PIN + "/vsn_conns", ns=NS)
        ring_setup()
        B.progress("ring buffer, a bare libbpf reader")
        res["ring_libbpf"] = ring(1)
        B.progress("  %.0f events/s without a drop" % res["ring_libbpf"]["max_no_drop_per_s"])
        res["daemon"] = {}
        for n in SIZES:
            B.tool("clear", "--map", PIN + "/vsn_conns", ns=NS)
            f = B.tool("fill", *conn_args(n), ns=NS)
            d.start()
            time.sleep(WARMUP)
            c0, w0 = d.cpu_ticks(), time.monotonic()
            time.sleep(WINDOW)
            c1, w1 = d.cpu_ticks(), time.monotonic()
            mem = d.mem_kib()
            cpu = (c1 - c0) / B.hz() / (w1 - w0) * 100
            row = {"connections": n, "entries": f["entries"], "cpu_pct": round(cpu, 2),
                   "rss_mib": round(mem["VmRSS"] / 1024, 1),
                   "hwm_mib": round(mem["VmHWM"] / 1024, 1)}
            B.progress("daemon, %d idle connections (%d entries): %.2f %% of a core, "
                       "%.1f MiB resident (peak %.1f)" % (n, f["entries"], cpu,
                                                         row["rss_mib"], row["hwm_mib"]))
            if (n == 100000 and (cpu > 2 or row["rss_mib"] > 32)) or n == max(SIZES):
                B.progress("  where its time goes: perf, 8 s")
                row["profile"] = profile(d.p.pid)
            if n == SIZES[0]:
                B.progress("ring buffer, the daemon as its reader")
                res["ring_daemon"] = ring(0)
                B.progress("  %.0f events/s without a drop"
                           % res["ring_daemon"]["max_no_drop_per_s"])
            d.stop()
            res["daemon"][str(n)] = row
    except (RuntimeError, ValueError, KeyError) as e:
        errors.append(str(e)[-500:])
        B.progress("ERROR " + errors[-1])
    finally:
        teardown(d)
        B.sh("rm", "-rf", tmp, check=False)
    res["errors"] = errors
    B.save("scale", res)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
