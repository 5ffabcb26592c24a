#!/usr/bin/python3
"""make bench, part cluster: the real cluster code (user/cluster/) of many
simulated hosts against etcd (namespace vsnBcl, etcd on 127.0.0.1 there,
started with tests/lib/etcd.sh, data on tmpfs).

For each etcd (one member, three members) and each host count
(BENCH_CLUSTER_SIZES, default 10,100,300,1000): build/bench/cluster-sim
processes of at most 250 hosts each (every host a struct cluster of its
own, cluster_start()ed: keeper and watcher threads, an elector for the 3
that campaign, its own etcd connections), plus one process holding a single
host (the cleanest per-host CPU figure), all started at 100 hosts a second.
Then:

  ready    every host reachable, seeing every host and every host's
           observations of backend 1 (cold start)
  steady   a window of BENCH_CLUSTER_WINDOW s (default 6): etcd writes,
           watch events, bytes, database size, txns per host and publish
           interval, the hosts' CPU and memory
  fail 2   at t0 two hosts fail backend 1 in what they publish: when the
           quorum (2) formed (their publish committed) and when each host's
           view shows it failing on the quorum
  heal     they are healthy again: when every host sees it failing nowhere
  fail all every host fails it (a real backend death), then heal again

Where the hosts never converge (on a small machine, 1,000 hosts), the
failures are left out and the steady state shows what they manage; the
figures of the largest host count that converged project what 1,000 would
need.  BENCH_CLUSTER_CHANGE: the chance a backend or path steps per publish
interval (default 0.05: about a fifth of the publishes carry a change).
Writes build/bench/cluster.json; report.py makes its section and plots.
Interrupted, it stops etcd and the hosts and deletes the namespace.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as B  # noqa: E402

NS = "vsnBcl"
SIM = os.path.join(B.OUT, "cluster-sim")
ETCD_SH = os.path.join(B.ROOT, "tests", "lib", "etcd.sh")
SIZES = [int(x) for x in os.environ.get("BENCH_CLUSTER_SIZES", "10,100,300,1000").split(",")]
MEMBERS = [int(x) for x in os.environ.get("BENCH_CLUSTER_MEMBERS", "1,3").split(",")]
WINDOW = float(os.environ.get("BENCH_CLUSTER_WINDOW", "6"))
CHANGE = float(os.environ.get("BENCH_CLUSTER_CHANGE", "0.05"))
PER_PROC = 250
START_RATE = 100.0     # hosts a second, all processes together
CAMPAIGN = 3           # hosts that stand for leader
PUBLISH_MS, TTL_S, QUORUM = 1000, 3, 2
READY_S = (20, 0.03)    # cold start allowed: at least 20 s, 30 ms a host
DEADLINE_MS = 10000    # for every host to agree
BURST_S = 2.0          # the failure's window for rates: t0 .. t0 + this
# etcd defaults but for the logs: the tests' short Raft timers could call
# elections on a loaded machine, and the 1 s progress notifications would
# add a message per watcher per second.
ETCD_FLAGS = "--logger=zap --log-level=warn"
PORT_BASE = 23000      # each run's members on ports of their own


# ------------------------------------------------------------------ etcd

def etcd_start(d, members, run_no):
    """Members m1..mN on ports no earlier run used (a member that went
    away leaves nothing in the next one's way).  Their logs are kept in
    build/bench/ when they do not start."""
    base = PORT_BASE + 10 * run_no
    specs = " ".join("127.0.0.1:%d:%d" % (base + 2 * i, base + 2 * i + 1)
                     for i in range(members))
    script = (". %s; ETCD_NETNS=%s; ETCD_TEST_FLAGS=(%s); etcd_start %s http %s && "
              "echo \"$ETCD_ENDPOINTS\"" % (ETCD_SH, NS, ETCD_FLAGS, d, specs))
    r = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60)
    if r.returncode:
        for i in range(members):
            log = os.path.join(d, "m%d.log" % (i + 1))
            if os.path.exists(log):
                shutil.copy(log, os.path.join(B.OUT, "cluster-etcd-failed-m%d.log" % (i + 1)))
        raise RuntimeError("etcd_start (logs: %s): %s" % (
            os.path.join(B.OUT, "cluster-etcd-failed-m*.log"), (r.stdout + r.stderr)[-1500:]))
    return r.stdout.strip().splitlines()[-1].split(",")


def etcd_pids(d):
    pids = []
    for name in sorted(os.listdir(d)) if os.path.isdir(d) else []:
        if name.endswith(".pid"):
            try:
                pids.append(int(open(os.path.join(d, name)).read()))
            except (OSError, ValueError):
                pass
    return pids


def alive(pid):
    """Not gone yet: running, or a zombie whose other threads still exit
    (members outlive the shell that started them: init reaps them in its
    own time, and the leader thread of a process freeing gigabytes is a
    zombie well before its memory and sockets are released)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            if f.read().rsplit(")", 1)[1].split()[0] != "Z":
                return True
        return len(os.listdir("/proc/%d/task" % pid)) > 1
    except (OSError, IndexError):
        return False


def etcd_stop(d):
    pids = etcd_pids(d)
    for p in pids:
        for sig in (18, 15):        # CONT, TERM
            try:
                os.kill(p, sig)
            except OSError:
                pass
    for i in range(100):
        if not any(alive(p) for p in pids):
            return
        if i == 30:
            for p in pids:
                try:
                    os.kill(p, 9)
                except OSError:
                    pass
        time.sleep(0.1)
    raise RuntimeError("etcd members %s do not stop" % pids)


def scrape(eps):
    """Each member's /metrics: the counters and gauges this part reads."""
    want = ("etcd_mvcc_put_total", "etcd_mvcc_txn_total", "etcd_mvcc_range_total",
            "etcd_debugging_mvcc_events_total", "etcd_debugging_mvcc_watcher_total",
            "etcd_debugging_mvcc_watch_stream_total", "etcd_debugging_mvcc_slow_watcher_total",
            "etcd_debugging_mvcc_pending_events_total", "etcd_debugging_mvcc_keys_total",
            "etcd_debugging_mvcc_current_revision",
            "etcd_server_proposals_committed_total", "etcd_mvcc_db_total_size_in_bytes",
            "etcd_mvcc_db_total_size_in_use_in_bytes",
            "etcd_network_client_grpc_received_bytes_total",
            "etcd_network_client_grpc_sent_bytes_total", "process_cpu_seconds_total",
            "process_resident_memory_bytes", "etcd_debugging_lease_renewed_total")
    out = []
    for ep in eps:
        r = B.sh("curl", "-s", "-m", "5", ep + "/metrics", ns=NS, check=False, timeout=10)
        m = {"t": time.monotonic()}
        for line in r.stdout.splitlines():
            if line.startswith("#"):
                continue
            name, _, val = line.rpartition(" ")
            if name in want:
                m[name] = float(val)
            elif name.startswith("grpc_server_msg_sent_total{grpc_method=\"Watch\","
                                 "grpc_service=\"etcdserverpb.Watch\""):
                m["watch_msgs_sent"] = float(val)
        out.append(m)
    return out


def lo_bytes():
    r = B.sh("ip", "-n", NS, "-s", "-j", "link", "show", "lo", check=False)
    try:
        return json.loads(r.stdout)[0]["stats64"]["rx"]["bytes"]
    except (ValueError, KeyError, IndexError):
        return None


# ------------------------------------------------------------- the hosts

class Sim:
    """One cluster-sim process: hosts first .. first + n - 1."""

    def __init__(self, eps, prefix, first, n, total, rate, logdir):
        self.first, self.n = first, n
        self.err = open(os.path.join(logdir, "sim-%05d.err" % first), "w")
        self.p = subprocess.Popen(
            ["nsenter", "--net=/run/netns/" + NS, SIM, "--endpoints", ",".join(eps),
             "--prefix", prefix, "--first", str(first), "--hosts", str(n), "--total", str(total),
             "--campaign", str(CAMPAIGN), "--publish-ms", str(PUBLISH_MS), "--ttl", str(TTL_S),
             "--quorum", str(QUORUM), "--change", str(CHANGE), "--seed", str(first + 1),
             "--start-rate", "%.3f" % rate],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err, text=True, bufsize=1)

    def send(self, cmd):
        self.p.stdin.write(cmd + "\n")
        self.p.stdin.flush()

    def answer(self):
        line = self.p.stdout.readline()
        if not line:
            raise RuntimeError("cluster-sim (hosts %d..): exited %s: %s"
                               % (self.first, self.p.poll(), open(self.err.name).read()[-800:]))
        return json.loads(line)

    def kill(self):
        if self.p.poll() is None:
            try:
                self.p.stdin.close()
            except OSError:
                pass
            try:
                self.p.wait(5)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.err.close()


def all_do(sims, cmd):
    for s in sims:
        s.send(cmd)
    return [s.answer() for s in sims]


def split(n):
    """(first, count) per process: the last host alone, the others in
    processes of at most PER_PROC, as even as they go."""
    if n == 1:
        return [(0, 1)]
    rest = n - 1
    k = -(-rest // PER_PROC)
    out, first = [], 0
    for i in range(k):
        c = rest // k + (1 if i < rest % k else 0)
        out.append((first, c))
        first += c
    out.append((first, 1))
    return out


# ------------------------------------------------------------- figures

def delta(a, b, key):
    if a.get(key) is None or b.get(key) is None:
        return None
    return b[key] - a[key]


def etcd_rates(m0, m1):
    """Rates between two scrapes of every member.  Writes and the store are
    the same on every member (the first's are used); watch events, bytes
    and CPU are each member's own, summed."""
    dt = m1[0]["t"] - m0[0]["t"]
    if dt <= 0:
        return {}

    def rate(key, member=0):
        d = delta(m0[member], m1[member], key)
        return None if d is None else d / dt

    def total(key):
        xs = [delta(a, b, key) for a, b in zip(m0, m1)]
        xs = [x for x in xs if x is not None]
        return sum(xs) / dt if xs else None

    return {
        "seconds": round(dt, 2),
        "puts_per_s": rate("etcd_mvcc_put_total"),
        "txns_per_s": rate("etcd_mvcc_txn_total"),
        "ranges_per_s": rate("etcd_mvcc_range_total"),
        "revisions_per_s": rate("etcd_debugging_mvcc_current_revision"),
        "proposals_per_s": rate("etcd_server_proposals_committed_total"),
        "watch_events_per_s": total("etcd_debugging_mvcc_events_total"),
        "watch_msgs_per_s": total("watch_msgs_sent"),
        "grpc_rx_bytes_per_s": total("etcd_network_client_grpc_received_bytes_total"),
        "grpc_tx_bytes_per_s": total("etcd_network_client_grpc_sent_bytes_total"),
        "cpu_pct": (total("process_cpu_seconds_total") or 0) * 100,
        "slow_watchers": sum(m.get("etcd_debugging_mvcc_slow_watcher_total", 0) for m in m1),
        "pending_events": sum(m.get("etcd_debugging_mvcc_pending_events_total", 0) for m in m1),
        "watchers": m1[0].get("etcd_debugging_mvcc_watcher_total"),
        "db_bytes": max(m.get("etcd_mvcc_db_total_size_in_bytes", 0) for m in m1),
        "db_in_use_bytes": max(m.get("etcd_mvcc_db_total_size_in_use_in_bytes", 0) for m in m1),
        "keys": m1[0].get("etcd_debugging_mvcc_keys_total"),
        "rss_mib": round(sum(m.get("process_resident_memory_bytes", 0) for m in m1) / 2**20, 1),
    }


def host_rates(s0, s1, sims):
    """The hosts' own counters between two stats answers of every process:
    the many (all processes but the single host's) and the single host."""
    many = [(a, b, s) for a, b, s in zip(s0, s1, sims) if s is not sims[-1] or len(sims) == 1]
    solo = (s0[-1], s1[-1]) if len(sims) > 1 else None
    dt = max(b["t_ns"] - a["t_ns"] for a, b, _ in many) / 1e9
    n = sum(s.n for _, _, s in many)
    out = {"seconds": round(dt, 2)}
    for k in ("txns", "puts", "events", "resyncs", "errors", "publishes"):
        out[k + "_per_s"] = (sum(b[k] - a[k] for a, b, _ in many) +
                             (solo[1][k] - solo[0][k] if solo else 0)) / dt
    cpu = sum((b["cpu_s"] - b["driver_cpu_s"]) - (a["cpu_s"] - a["driver_cpu_s"])
              for a, b, _ in many)
    drv = sum(b["driver_cpu_s"] - a["driver_cpu_s"] for a, b, _ in many)
    out["cpu_pct_per_host"] = 100 * cpu / dt / n
    out["driver_cpu_pct_per_host"] = 100 * drv / dt / n
    out["rss_kib_per_host"] = sum(b["rss_kib"] - b["base_rss_kib"] for _, b, _ in many) / n
    out["events_per_host_s"] = sum(b["events"] - a["events"] for a, b, _ in many) / dt / n
    if solo:
        a, b = solo
        sdt = (b["t_ns"] - a["t_ns"]) / 1e9
        out["solo_cpu_pct"] = 100 * ((b["cpu_s"] - b["driver_cpu_s"]) -
                                     (a["cpu_s"] - a["driver_cpu_s"])) / sdt
        out["solo_rss_kib"] = b["rss_kib"] - b["base_rss_kib"]
        out["solo_events_per_s"] = (b["events"] - a["events"]) / sdt
    views = sum(b["views"] for b in s1)
    out["view_us"] = sum(b["view_us"] * b["views"] for b in s1) / views if views else None
    out["view_max_ms"] = max(b["view_max_us"] for b in s1) / 1e3
    out["round_max_ms"] = max(b["round_max_ms"] for b in s1)
    out["threads"] = sum(b["threads"] for b in s1)
    return out


def measure(sims, eps, cmd, n_fail):
    """fail/heal: t0 half a second ahead, etcd scraped at t0 and at
    t0 + BURST_S; each host's agreement, the quorum's forming."""
    t0 = time.monotonic() + 0.5
    t0_ns = int(t0 * 1e9)
    snap_ns = int((t0 + BURST_S) * 1e9)
    if cmd == "fail":
        for s in sims:
            s.send("fail %d %d %d %s" % (t0_ns, DEADLINE_MS, snap_ns, n_fail))
    else:
        for s in sims:
            s.send("heal %d %d" % (t0_ns, DEADLINE_MS))
    time.sleep(max(0, t0 - 0.08 - time.monotonic()))
    m0, lo0 = scrape(eps), lo_bytes()
    time.sleep(max(0, t0 + BURST_S - time.monotonic()))
    m1, lo1 = scrape(eps), lo_bytes()
    res = [s.answer() for s in sims]
    agree = [x for r in res for x in r["agree_ms"]]
    commits = sorted(x for r in res for x in r["commit_ms"] if x is not None)
    failing = sum(r.get("failing", r.get("healing", 0)) for r in res)
    q = min(QUORUM, failing) if failing else 1
    tq = commits[q - 1] if len(commits) >= q else None
    got = [x for x in agree if x is not None]
    # Commits are polled every 2 ms: a host that saw the quorum saw it
    # formed.
    if got and cmd == "fail" and (tq is None or min(got) < tq):
        tq = min(got)
    out = {
        "hosts": len(agree), "failing_hosts": failing, "agreed": len(got),
        "all_agreed": len(got) == len(agree),
        "quorum_formed_ms": tq,
        "commits_ms": commits[:8],
        "t0_to_agree_p50_ms": B.median(got), "t0_to_agree_max_ms": max(got) if got else None,
        "t0_to_first_agree_ms": min(got) if got else None,
    }
    if tq is not None and got:
        rel = [x - tq for x in got]
        out["quorum_to_agree_p50_ms"] = B.median(rel)
        out["quorum_to_agree_max_ms"] = max(rel) if out["all_agreed"] else None
    if cmd == "fail":
        out["etcd"] = etcd_rates(m0, m1)
        out["lo_bytes_per_s"] = (lo1 - lo0) / (m1[0]["t"] - m0[0]["t"]) if lo0 and lo1 else None
        ok = [r for r in res if r["at_snap"]]
        if len(ok) == len(res):
            out["hosts_rates"] = host_rates([r["at_t0"] for r in res],
                                            [r["at_snap"] for r in res], sims)
    return out


def run(members, n, tmp, run_no):
    d = os.path.join(tmp, "etcd-%d-%d" % (members, n))
    os.makedirs(d)
    res = {"members": members, "hosts": n}
    t_run = time.monotonic()
    sims = []
    try:
        eps = etcd_start(d, members, run_no)
        prefix = "/vsnB/"
        parts = split(n)
        rate = START_RATE / len(parts)
        B.progress("%d member(s), %d hosts: %d processes (%s)" % (
            members, n, len(parts), ", ".join(str(c) for _, c in parts)))
        t, ms, lo_s = time.monotonic(), scrape(eps), lo_bytes()
        sims = [Sim(eps, prefix, f, c, n, rate if c > 1 else 0, d) for f, c in parts]
        for s in sims:
            s.answer()      # started
        r = all_do(sims, "ready %d" % max(READY_S[0], READY_S[1] * n))
        mr, lo_r = scrape(eps), lo_bytes()
        res["ready"] = {"all": all(x["ready"] for x in r),
                        "etcd": etcd_rates(ms, mr),
                        "lo_bytes": lo_r - lo_s if lo_s and lo_r else None,
                        "hosts_ready": sum(x["ready_hosts"] for x in r),
                        "seconds_from_first_start": round(time.monotonic() - t, 2),
                        "resyncs": sum(x["resyncs"] for x in r),
                        "errors": sum(x["errors"] for x in r),
                        "leaders": sum(x["leaders"] for x in r),
                        "view_max_ms": max(x["view_max_us"] for x in r) / 1e3}
        B.progress("  ready: %d/%d hosts in %.1f s (errors %d)" % (
            res["ready"]["hosts_ready"], n, res["ready"]["seconds_from_first_start"],
            res["ready"]["errors"]))
        if not res["ready"]["all"]:
            res["ready"]["last_errors"] = all_do(sims, "errors")
        if not res["ready"]["hosts_ready"]:
            # Nothing to measure a failure against: the steady state is
            # what the hosts manage, the failures are left out.
            res["not_converged"] = True
        time.sleep(2)
        m0, s0, lo0 = scrape(eps), all_do(sims, "stats"), lo_bytes()
        time.sleep(WINDOW)
        m1, s1, lo1 = scrape(eps), all_do(sims, "stats"), lo_bytes()
        st = {"etcd": etcd_rates(m0, m1), "hosts_rates": host_rates(s0, s1, sims)}
        st["lo_bytes_per_s"] = (lo1 - lo0) / (m1[0]["t"] - m0[0]["t"]) if lo0 and lo1 else None
        h = st["hosts_rates"]
        intervals = h["seconds"] * 1000 / PUBLISH_MS
        st["txns_per_host_interval"] = h["txns_per_s"] * h["seconds"] / n / intervals
        # Every watcher should get every event under the prefix.
        exp = (st["etcd"]["puts_per_s"] or 0) * n
        st["watch_delivery"] = h["events_per_s"] / exp if exp else None
        res["steady"] = st
        B.progress("  steady: %.0f puts/s, %.0f watch events/s (hosts %.0f/s, %.0f %% of due), "
                   "%.3f %% CPU per host (single host %.3f %%), etcd %.0f %% CPU"
                   % (st["etcd"]["puts_per_s"] or 0, st["etcd"]["watch_events_per_s"] or 0,
                      h["events_per_s"], 100 * (st["watch_delivery"] or 0),
                      h["cpu_pct_per_host"], h.get("solo_cpu_pct", -1), st["etcd"]["cpu_pct"]))
        two = "%d,%d" % (1, n // 2) if n > 2 else "0,1"
        for name, which in (("fail_two", two), ("fail_all", "all")):
            if res.get("not_converged"):
                break
            f = measure(sims, eps, "fail", which)
            B.progress("  %s: quorum formed %s ms after t0; all %d agree: p50 %s ms, max %s ms "
                       "after it (%d/%d agreed)" % (
                           name, fmt(f["quorum_formed_ms"]), n,
                           fmt(f.get("quorum_to_agree_p50_ms")),
                           fmt(f.get("quorum_to_agree_max_ms")), f["agreed"], f["hosts"]))
            hl = measure(sims, eps, "heal", None)
            B.progress("  heal: every host sees it healthy %s ms after t0 (%d/%d)" % (
                fmt(hl["t0_to_agree_max_ms"]), hl["agreed"], hl["hosts"]))
            res[name] = f
            res[name.replace("fail", "heal")] = hl
        m2 = scrape(eps)
        res["end"] = {"db_bytes": max(m.get("etcd_mvcc_db_total_size_in_bytes", 0) for m in m2),
                      "revision": m2[0].get("etcd_debugging_mvcc_current_revision"),
                      "keys": m2[0].get("etcd_debugging_mvcc_keys_total"),
                      "errors": sum(x["errors"] for x in all_do(sims, "stats"))}
        q = all_do(sims, "quit")
        res["stop_ms"] = max(x["stop_ms"] for x in q)
    finally:
        for s in sims:
            s.kill()
        etcd_stop(d)
    res["seconds"] = round(time.monotonic() - t_run, 1)
    res["fig"] = figures(res)
    return res


def figures(r):
    """The run's figures as the report's table shows them (None: not
    measured)."""
    n, rd, st = r["hosts"], r.get("ready", {}), r.get("steady", {})
    e, h = st.get("etcd", {}), st.get("hosts_rates", {})
    per_interval = PUBLISH_MS / 1000.0
    f = {"hosts": n, "members": r["members"], "converged": bool(rd.get("all")),
         "hosts_ready": rd.get("hosts_ready"), "ready_s": rd.get("seconds_from_first_start"),
         "cold_start_errors": rd.get("errors"), "cold_start_resyncs": rd.get("resyncs"),
         "cold_start_view_max_ms": rd.get("view_max_ms"),
         "cold_start_grpc_mb": None, "cold_start_lo_mb": None}
    re_ = rd.get("etcd") or {}
    if re_.get("grpc_tx_bytes_per_s") is not None:
        f["cold_start_grpc_mb"] = re_["grpc_tx_bytes_per_s"] * re_["seconds"] / 1e6
    if rd.get("lo_bytes") is not None:
        f["cold_start_lo_mb"] = rd["lo_bytes"] / 1e6
    f.update({
        "writes_per_s": e.get("revisions_per_s"), "puts_per_s": e.get("puts_per_s"),
        "watch_events_per_s": h.get("events_per_s"),
        "etcd_watch_events_per_s": e.get("watch_events_per_s"),
        "grpc_tx_bytes_per_s": e.get("grpc_tx_bytes_per_s"),
        "grpc_rx_bytes_per_s": e.get("grpc_rx_bytes_per_s"),
        "lo_bytes_per_s": st.get("lo_bytes_per_s"),
        "db_bytes": (r.get("end") or {}).get("db_bytes") or e.get("db_bytes"),
        "keys": e.get("keys"),
        "etcd_cpu_pct": e.get("cpu_pct"), "etcd_rss_mib": e.get("rss_mib"),
        "slow_watchers": e.get("slow_watchers"), "watchers": e.get("watchers"),
        "watch_delivery": st.get("watch_delivery"),
        "txns_per_host_interval": st.get("txns_per_host_interval"),
        "writes_per_host_interval": (e["revisions_per_s"] * per_interval / n
                                     if e.get("revisions_per_s") is not None else None),
        "cpu_pct_per_host": h.get("cpu_pct_per_host"), "solo_cpu_pct": h.get("solo_cpu_pct"),
        "rss_kib_per_host": h.get("rss_kib_per_host"), "solo_rss_kib": h.get("solo_rss_kib"),
        "events_per_host_s": h.get("events_per_host_s"), "view_us": h.get("view_us"),
        "view_max_ms": h.get("view_max_ms"), "round_max_ms": h.get("round_max_ms"),
    })
    if h.get("solo_cpu_pct") is not None and h.get("solo_events_per_s"):
        f["solo_events_per_s"] = h["solo_events_per_s"]
    for k in ("fail_two", "fail_all", "heal_two", "heal_all"):
        x = r.get(k)
        if not x:
            continue
        f[k] = {"agreed": x["agreed"], "hosts": x["hosts"], "all": x["all_agreed"],
                "quorum_ms": x.get("quorum_formed_ms"),
                "q_p50_ms": x.get("quorum_to_agree_p50_ms"),
                "q_max_ms": x.get("quorum_to_agree_max_ms"),
                "t0_p50_ms": x.get("t0_to_agree_p50_ms"),
                "t0_max_ms": x.get("t0_to_agree_max_ms") if x["all_agreed"] else None}
        b = x.get("etcd")
        if b:
            f[k]["writes_per_s"] = b.get("revisions_per_s")
            f[k]["puts_per_s"] = b.get("puts_per_s")
            f[k]["grpc_tx_bytes_per_s"] = b.get("grpc_tx_bytes_per_s")
            f[k]["etcd_cpu_pct"] = b.get("cpu_pct")
        hr = x.get("hosts_rates")
        if hr:
            f[k]["watch_events_per_s"] = hr.get("events_per_s")
            f[k]["cpu_pct_per_host"] = hr.get("cpu_pct_per_host")
    f["kept_up"] = kept_up(f)
    return f


def kept_up(f):
    """Converged, got (nearly) every watch event due in the steady window
    and agreed on both failures within 2 s of the quorum: a run whose
    figures are the design's, not an overloaded machine's."""
    return bool(f["converged"] and f.get("watch_events_per_s") and
                0.9 <= (f.get("watch_delivery") or 0) <= 1.1 and
                all(f.get(k, {}).get("all") and f[k].get("q_max_ms") is not None and
                    f[k]["q_max_ms"] <= 2000 for k in ("fail_two", "fail_all")))


def projection(runs):
    """What 1,000 hosts would need, from the largest host count that kept
    up (per etcd setup): watch events grow as N^2 (every host gets every
    host's writes), etcd's CPU with them (its CPU per event), a host's CPU
    as its fixed cost plus its CPU per event times N x the writes a host
    makes; the cold start's bytes as N^2 (every host reads every host's
    keys)."""
    out = {}
    for members in sorted({r["members"] for r in runs}):
        ok = sorted((r["fig"] for r in runs if r["members"] == members and kept_up(r["fig"])),
                    key=lambda f: f["hosts"])
        if len(ok) < 2:
            continue
        lo, hi = ok[0], ok[-1]
        n, N = hi["hosts"], 1000
        puts_per_host = hi["puts_per_s"] / n
        events = N * N * puts_per_host
        etcd_per_event = hi["etcd_cpu_pct"] / hi["etcd_watch_events_per_s"] if hi.get(
            "etcd_watch_events_per_s") else None
        p = {"from_hosts": n, "watch_events_per_s": events,
             "etcd_cores": etcd_per_event * events / 100 if etcd_per_event else None,
             "etcd_cpu_us_per_event": etcd_per_event * 1e4 if etcd_per_event else None,
             "cold_start_grpc_mb": (hi["cold_start_grpc_mb"] * (N / n) ** 2
                                    if hi.get("cold_start_grpc_mb") else None)}
        # A single host's CPU: fixed + per event (two sizes give both).
        key = "solo_cpu_pct" if hi.get("solo_cpu_pct") is not None else "cpu_pct_per_host"
        e0, e1 = lo.get("events_per_host_s"), hi.get("events_per_host_s")
        if lo.get(key) is not None and e1 and e0 is not None and e1 > e0:
            per_event = (hi[key] - lo[key]) / (e1 - e0)
            fixed = lo[key] - per_event * e0
            p["host_cpu_fixed_pct"] = fixed
            p["host_cpu_us_per_event"] = per_event * 1e4
            p["cpu_pct_per_host"] = fixed + per_event * N * puts_per_host
        out[str(members)] = p
    return out


def fmt(v):
    return "-" if v is None else "%.0f" % v


def netns_clean():
    if os.path.exists("/run/netns/" + NS):
        r = B.sh("ip", "netns", "pids", NS, check=False)
        for p in r.stdout.split():
            try:
                os.kill(int(p), 9)
            except (OSError, ValueError):
                pass
        B.sh("ip", "netns", "del", NS, check=False)


def main():
    B.start("clus")
    for c in ("etcd", "etcdctl", "curl"):
        if not shutil.which(c):
            raise SystemExit("cluster: %s missing (make deps)" % c)
    if not os.access(SIM, os.X_OK):
        raise SystemExit("cluster: %s not built (make bench builds it)" % SIM)
    tmp = tempfile.mkdtemp(prefix="vsnB-cluster.", dir="/dev/shm")
    out = {"config": {"sizes": SIZES, "members": MEMBERS, "window_s": WINDOW,
                      "publish_ms": PUBLISH_MS, "lease_ttl_s": TTL_S, "quorum": QUORUM,
                      "campaigners": CAMPAIGN, "per_process": PER_PROC,
                      "start_rate": START_RATE, "change_prob": CHANGE,
                      "deadline_ms": DEADLINE_MS, "burst_s": BURST_S,
                      "backends_per_host": 3, "paths_per_host": 2, "etcd_flags": ETCD_FLAGS,
                      "etcd_version": B.sh("etcd", "--version", check=False).stdout.split(
                          "\n")[0].replace("etcd Version: ", "")},
           "runs": [], "errors": []}
    try:
        netns_clean()
        for f in os.listdir(B.OUT):
            if f.startswith("cluster-etcd-failed-"):
                os.remove(os.path.join(B.OUT, f))
        B.netns_add(NS)
        for members in MEMBERS:
            for n in SIZES:
                try:
                    out["runs"].append(run(members, n, tmp, len(out["runs"]) +
                                           len(out["errors"])))
                except (RuntimeError, subprocess.SubprocessError, OSError, ValueError) as e:
                    why = str(e).strip().splitlines()
                    why = why[0][:300] + (" ... " + why[-1][-300:] if len(why) > 1 else "")
                    out["errors"].append("%d member(s), %d hosts: %s" % (members, n, why))
                    B.progress("  failed: %s" % why)
    finally:
        netns_clean()
        shutil.rmtree(tmp, ignore_errors=True)
    out["projection_1000"] = projection(out["runs"])
    B.save("cluster", out)
    return 1 if out["errors"] and not out["runs"] else 0


if __name__ == "__main__":
    sys.exit(main())
