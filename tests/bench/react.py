#!/usr/bin/python3
"""make bench, part react: how fast the controller reacts, in network
namespaces with real TCP traffic (tests/lib/topo.sh with prefix vbn-r,
tests/netns/tcpx.py transfers, vsn daemon in vbn-r-hv; the faults are the
ones tests/netns/test_daemon.sh uses).

Per kind of event, N trials (BENCH_REACT_TRIALS, default 20), each with a
fresh transfer on path 1 (up0), from the event to the daemon's decision-log
line (its "ts", milliseconds):
  carrier     f0 set down in the fabric (up0 loses carrier) -> "failover" of
              path 1; event time: just before a running "ip -batch -" in the
              fabric is handed the command (the times from ip -ts monitor
              link in vbn-r-hv, which is woken by the same rtnetlink message
              as the daemon, are kept too)
  silent      an nft rule in the fabric drops what comes from f0 (carriers
              stay up) -> "failover" of path 1 (connections moved); event
              time: nft returned (the rule is in place)
  congestion  TBF 20mbit on up0 under an 80 Mbit/s transfer -> the first
              "move"; event time: tc returned
  backend     the backend serving the transfer drops its port 4420 (nft),
              health: tcp at its default interval -> "drain" of it; event
              time: nft returned
Detection settings are vsn's defaults (tick_ms 100, watch_ms 20, silent_ms
150, health_interval_ms 1000, health_timeout_ms 500); only recovery is made
quick (hold_down_ms 200, flap_max 1000) so that trials follow each other.
"""
import datetime
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as B  # noqa: E402

P = "vbn-r"
PIN = "/sys/fs/bpf/vbn-r"
TOPO = os.path.join(B.ROOT, "tests", "lib", "topo.sh")
TCPX = os.path.join(B.ROOT, "tests", "netns", "tcpx.py")
VIP = "192.168.100.10"
TRIALS = int(os.environ.get("BENCH_REACT_TRIALS", "20"))
KINDS = ("carrier", "silent", "congestion", "backend")


def ns(n):
    return "%s-%s" % (P, n)


def nsx(n, *cmd, check=True):
    return B.sh("ip", "netns", "exec", ns(n), *cmd, check=check)


def nse(n, *cmd, check=True):
    """nsenter --net only: no /sys remount, for the timed faults."""
    return B.sh("nsenter", "--net=/run/netns/" + ns(n), *cmd, check=check)


class Env:
    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="vbn-react.")
        self.sock = os.path.join(self.tmp, "vsn.sock")
        self.dlog = os.path.join(self.tmp, "decisions.log")
        self.daemon = None
        self.procs = []
        self.clients = []

    def topo_up(self):
        env = dict(os.environ, P=P)
        subprocess.run(["bash", TOPO, "down"], env=env, capture_output=True)
        r = subprocess.run(["bash", TOPO, "up"], env=env, capture_output=True, text=True)
        if r.returncode:
            raise RuntimeError("tests/lib/topo.sh up: " + r.stderr[-500:])
        # Replies to the VM side survive f0 going down (via f1).
        nsx("fab", "ip", "route", "add", "10.0.0.0/24", "via", "10.2.0.1", "metric", "10")
        nsx("hv", "sysctl", "-qw", "net.ipv4.ip_local_port_range=20000 29999")
        self.f0 = B.macaddr(ns("fab"), "f0")
        self.f1 = B.macaddr(ns("fab"), "f1")
        B.vsn(PIN, "attach", "--vm", "vmif", "--uplink", "up0,up1", ns=ns("hv"))
        for b in ("be1", "be2"):
            log = os.path.join(self.tmp, b + ".log")
            self.procs.append(subprocess.Popen(
                ["ip", "netns", "exec", ns(b), B.PY, TCPX, "server", "--port", "4420", "--log",
                 log], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        for b in ("be1", "be2"):
            for _ in range(50):
                if os.path.exists(os.path.join(self.tmp, b + ".log")) and \
                        "listening" in open(os.path.join(self.tmp, b + ".log")).read():
                    break
                time.sleep(0.1)
        nsx("fab", "nft", "add", "table", "inet", "vbncut")
        nsx("fab", "nft", "add", "chain", "inet", "vbncut", "cutfwd",
            "{ type filter hook forward priority 0; }")
        # Link changes in the fabric from one ip process reading commands:
        # no process start between the clock read and the change.
        self.fab = subprocess.Popen(["nsenter", "--net=/run/netns/" + ns("fab"), "ip", "-force",
                                     "-batch", "-"], stdin=subprocess.PIPE,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                    text=True)
        self.procs.append(self.fab)
        self.monitor_ms = []
        self.mon_file = os.path.join(self.tmp, "monitor.log")
        self.procs.append(subprocess.Popen(
            ["nsenter", "--net=/run/netns/" + ns("hv"), "ip", "-ts", "monitor", "link"],
            stdout=open(self.mon_file, "w"), stderr=subprocess.DEVNULL))

    def fab_ip(self, line):
        self.fab.stdin.write(line + "\n")
        self.fab.stdin.flush()

    def config(self, health):
        path = os.path.join(self.tmp, "vsn.yaml")
        be = ", health: tcp" if health else ""
        with open(path, "w") as f:
            f.write("vms:\n  - {name: vm1, id: 1, interface: vmif, addresses: [10.0.0.2, '2001:db8::2'],"
                    "    max_connections: 0, connection_rate: 0}\n"
                    "uplinks:\n  - {interface: up0, capacity: 10gbit}\n"
                    "  - {interface: up1, capacity: 10gbit}\n"
                    'paths:\n  - {id: 1, uplink: up0, next_hop: "%s"}\n'
                    '  - {id: 2, uplink: up1, next_hop: "%s"}\n'
                    "backends:\n"
                    "  - {id: 1, name: be1, address: 10.3.1.2, port: 4420, paths: [1, 2]%s}\n"
                    "  - {id: 2, name: be2, address: 10.3.2.2, port: 4420, paths: [1, 2]%s}\n"
                    "volumes:\n  - {id: 1, vm: vm1, address: %s, port: 4420, backends: [1, 2]}\n"
                    "controller: {socket: %s, metrics_dir: %s, hold_down_ms: 200, "
                    "flap_window_ms: 1000, flap_max: 1000}\n"
                    % (self.f0, self.f1, be, be, VIP, self.sock, self.tmp))
        return path

    def daemon_start(self, health):
        self.daemon_stop()
        cfg = self.config(health)
        self.daemon = subprocess.Popen(
            ["nsenter", "--net=/run/netns/" + ns("hv"), "env", "VSN_SOCKET=" + self.sock, B.VSN,
             "--pin-dir", PIN, "daemon", "-c", cfg, "--log", self.dlog],
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.tmp, "daemon.err"), "a"))
        for _ in range(100):
            if os.path.exists(self.sock):
                try:
                    if self.api({"cmd": "status"}).get("ok"):
                        return
                except OSError:
                    pass
            time.sleep(0.05)
        raise RuntimeError("the daemon did not start: " +
                           open(os.path.join(self.tmp, "daemon.err")).read()[-500:])

    def daemon_stop(self):
        if self.daemon and self.daemon.poll() is None:
            self.daemon.terminate()
            try:
                self.daemon.wait(10)
            except subprocess.TimeoutExpired:
                self.daemon.kill()
                self.daemon.wait()
        self.daemon = None
        if os.path.exists(self.sock):
            os.unlink(self.sock)

    def api(self, req):
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(5)
        s.connect(self.sock)
        s.sendall((json.dumps(req) + "\n").encode())
        data = b""
        while not data.endswith(b"\n"):
            b = s.recv(65536)
            if not b:
                break
            data += b
        s.close()
        return json.loads(data.decode() or "{}")

    def log_pos(self):
        try:
            return os.path.getsize(self.dlog)
        except OSError:
            return 0

    def wait_log(self, pos, pred, timeout):
        """The first decision-log line after byte pos that pred accepts."""
        end = time.time() + timeout
        while True:
            try:
                with open(self.dlog) as f:
                    f.seek(pos)
                    for line in f:
                        try:
                            ev = json.loads(line)
                        except ValueError:
                            continue
                        if pred(ev):
                            return ev
            except OSError:
                pass
            if time.time() > end:
                return None
            time.sleep(0.01)

    def routes(self, path, pin=True):
        for be in (1, 2):
            r = self.api({"cmd": "route-set", "vm": 1, "volume": 1, "backend": be, "path": path})
            if not r.get("ok"):
                raise RuntimeError("route-set: %s" % r)
        if not pin:
            for be in (1, 2):
                self.api({"cmd": "route-del", "vm": 1, "volume": 1, "backend": be})

    def client(self, up, rate):
        p = subprocess.Popen(["ip", "netns", "exec", ns("vm"), B.PY, TCPX, "client", "--dst",
                              VIP, "--port", "4420", "--up", str(up), "--down", "1000",
                              "--rate", str(rate), "--timeout", "30"],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.clients.append(p)
        return p

    def kill_clients(self):
        for p in self.clients:
            if p.poll() is None:
                p.kill()
            p.wait()
        self.clients = []

    def healthy(self, timeout=5):
        end = time.time() + timeout
        while time.time() < end:
            st = self.api({"cmd": "status"})
            if all(p["state"] == "healthy" for p in st.get("paths", [])) and \
                    all(b["state"] == "healthy" for b in st.get("backends", [])):
                return True
            time.sleep(0.05)
        return False

    def carrier_time(self, after, dev="up0"):
        """When rtnetlink said dev lost its carrier (ip -ts monitor)."""
        pat = re.compile(r"^\[([0-9T:.\-]+)\].*\b%s@.*NO-CARRIER" % dev)
        for _ in range(100):
            with open(self.mon_file) as f:
                for line in f:
                    m = pat.match(line)
                    if m:
                        t = datetime.datetime.fromisoformat(m.group(1)).timestamp()
                        if t >= after - 0.001:
                            return t
            time.sleep(0.01)
        return None

    def server_of(self, port):
        for _ in range(30):
            for b in ("be1", "be2"):
                try:
                    for line in open(os.path.join(self.tmp, b + ".log")):
                        if '"accept"' in line and '10.0.0.2:%d"' % port in line:
                            return b
                except OSError:
                    pass
            time.sleep(0.1)
        return None

    def teardown(self):
        self.kill_clients()
        if getattr(self, "fab", None):
            self.fab.stdin.close()
        self.daemon_stop()
        for p in self.procs:
            p.terminate()
            p.wait()
        if os.path.exists("/run/netns/" + ns("hv")) and os.path.isdir(PIN):
            B.vsn(PIN, "detach", ns=ns("hv"), check=False)
        subprocess.run(["bash", TOPO, "down"], env=dict(os.environ, P=P), capture_output=True)
        if os.path.isdir(PIN):
            B.unpin(PIN)
        B.sh("rm", "-rf", self.tmp, check=False)


def vm_port(before):
    """Source port of the VM's newest storage connection."""
    for _ in range(60):
        out = nsx("vm", "ss", "-tnH", "state", "established", "( dport = :4420 )").stdout
        ports = {int(line.split()[2].rsplit(":", 1)[1]) for line in out.splitlines() if line}
        new = ports - before
        if new:
            return max(new)
        time.sleep(0.05)
    return None


def vm_ports():
    out = nsx("vm", "ss", "-tnH", "state", "established", "( dport = :4420 )").stdout
    return {int(line.split()[2].rsplit(":", 1)[1]) for line in out.splitlines() if line}


def trial_carrier(e):
    e.routes(1)
    e.client(50000000, 2000000)
    time.sleep(0.4)
    pos = e.log_pos()
    t0 = time.time()
    e.fab_ip("link set f0 down")
    ev = e.wait_log(pos, lambda v: v.get("event") == "failover" and v.get("path") == 1, 3)
    tm = e.carrier_time(t0)
    e.fab_ip("link set f0 up")
    e.fab_ip("route replace 10.0.0.0/24 via 10.1.0.1")
    ok = e.healthy()
    e.kill_clients()
    if not ev:
        return None, "no failover logged"
    if ev.get("reason") != "carrier":
        return None, "unexpected: %s" % ev
    e.monitor_ms.append(round((ev["ts"] - tm) * 1000, 1) if tm else None)
    return ev["ts"] - t0, None if ok else "path 1 did not recover"


def trial_silent(e):
    e.routes(1)
    nsx("vm", "tc", "qdisc", "replace", "dev", "vm0", "root", "tbf", "rate", "16mbit", "burst",
        "16kb", "latency", "50ms")
    e.client(20000000, 0)
    time.sleep(0.6)
    pos = e.log_pos()
    nse("fab", "nft", "add", "rule", "inet", "vbncut", "cutfwd", "iifname", "f0", "drop")
    t1 = time.time()
    ev = e.wait_log(pos, lambda v: v.get("event") == "failover" and v.get("path") == 1, 3)
    nse("fab", "nft", "flush", "chain", "inet", "vbncut", "cutfwd")
    nsx("vm", "tc", "qdisc", "del", "dev", "vm0", "root", check=False)
    e.kill_clients()
    ok = e.healthy()
    if not ev:
        return None, "no failover logged"
    if ev.get("reason") != "silent" or not ev.get("connections_moved"):
        return None, "unexpected: %s" % ev
    return ev["ts"] - t1, None if ok else "path 1 did not recover"


def trial_congestion(e):
    e.routes(1, pin=False)
    e.client(30000000, 10000000)
    time.sleep(0.6)
    pos = e.log_pos()
    nse("hv", "tc", "qdisc", "add", "dev", "up0", "root", "tbf", "rate", "20mbit", "burst",
        "32kb", "latency", "50ms")
    t1 = time.time()
    ev = e.wait_log(pos, lambda v: v.get("event") == "move", 3)
    nse("hv", "tc", "qdisc", "del", "dev", "up0", "root", check=False)
    e.kill_clients()
    time.sleep(0.3)
    if not ev:
        return None, "no move logged"
    return ev["ts"] - t1, None


def trial_backend(e):
    e.routes(1)
    before = vm_ports()
    e.client(20000000, 1000000)
    port = vm_port(before)
    bad = e.server_of(port) if port else None
    if not bad:
        e.kill_clients()
        return None, "no server logged the connection"
    bad_id = 1 if bad == "be1" else 2
    pos = e.log_pos()
    rules = ("table inet vbndrop {\n chain in {\n  type filter hook input priority 0;\n"
             "  tcp dport 4420 drop\n }\n}\n")
    B.sh("nsenter", "--net=/run/netns/" + ns(bad), "nft", "-f", "-", inp=rules)
    t1 = time.time()
    ev = e.wait_log(pos, lambda v: v.get("event") == "drain" and v.get("backend") == bad_id, 6)
    nse(bad, "nft", "delete", "table", "inet", "vbndrop")
    e.kill_clients()
    ok = e.healthy(8)
    if not ev:
        return None, "no drain logged"
    return ev["ts"] - t1, None if ok else "backend %d did not recover" % bad_id


def main():
    B.start("react")
    e = Env()
    res = {"config": {"trials": TRIALS, "tick_ms": 100, "watch_ms": 20, "silent_ms": 150,
                      "health_interval_ms": 1000, "health_timeout_ms": 500,
                      "hold_down_ms": 200}, "kinds": {}}
    errors = []
    fns = {"carrier": trial_carrier, "silent": trial_silent, "congestion": trial_congestion,
           "backend": trial_backend}
    try:
        B.progress("topology %s-*, vsn attach, servers, daemon" % P)
        e.topo_up()
        for kind in KINDS:
            e.daemon_start(health=kind == "backend")
            xs, notes = [], []
            for i in range(TRIALS):
                try:
                    dt, note = fns[kind](e)
                except (RuntimeError, OSError, ValueError) as ex:
                    dt, note = None, str(ex)[-300:]
                    e.kill_clients()
                if dt is not None:
                    xs.append(dt)
                if note:
                    notes.append("trial %d: %s" % (i + 1, note))
                B.progress("  %-10s trial %2d/%d: %s%s" % (kind, i + 1, TRIALS,
                                                          "%.1f ms" % (dt * 1000)
                                                          if dt is not None else "-",
                                                          (" (%s)" % note) if note else ""))
            res["kinds"][kind] = {
                "trials": TRIALS, "measured": len(xs), "ms": [round(x * 1000, 1) for x in xs],
                "median_ms": round(B.median(xs) * 1000, 1) if xs else None,
                "p99_ms": round(B.pct(xs, 99) * 1000, 1) if xs else None,
                "min_ms": round(min(xs) * 1000, 1) if xs else None,
                "notes": notes}
            if kind == "carrier":
                res["kinds"][kind]["from_rtnetlink_ms"] = e.monitor_ms
            if len(xs) < TRIALS:
                errors.append("%s: %d of %d trials measured" % (kind, len(xs), TRIALS))
            B.progress("%s: median %s ms, p99 %s ms over %d trials"
                       % (kind, res["kinds"][kind]["median_ms"], res["kinds"][kind]["p99_ms"],
                          len(xs)))
    finally:
        e.teardown()
    res["errors"] = errors
    B.save("react", res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
