"""What the parts of make bench share: paths, running commands (inside a
network namespace with nsenter, which keeps /sys/fs/bpf visible), progress
lines, statistics, and each part's result file build/bench/PART.json that
report.py reads.  Every namespace is named vbn-*, every pin dir
/sys/fs/bpf/vbn*."""
import json
import math
import os
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, os.environ.get("BUILD", "build"))
OUT = os.path.join(BUILD, "bench")
VSN = os.path.join(BUILD, "vsn")
TOOL = os.path.join(OUT, "vbn-tool")
PY = "/usr/bin/python3"
_T0 = time.monotonic()
_PART = "bench"


def start(part):
    """Name the part for progress lines; returns its start time.  SIGTERM
    (scripts/bench.sh interrupted) raises SystemExit, so that the part's
    finally blocks clean up."""
    global _PART, _T0
    _PART = part
    _T0 = time.monotonic()
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(1))
    return _T0


def progress(msg):
    print("[bench %-5s %6.1fs] %s" % (_PART, time.monotonic() - _T0, msg), flush=True)


def sh(*cmd, check=True, ns=None, timeout=120, inp=None):
    cmd = [str(c) for c in cmd]
    if ns:
        cmd = ["nsenter", "--net=/run/netns/%s" % ns] + cmd
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, input=inp)
    if check and r.returncode:
        raise RuntimeError("%s: exit %d: %s" % (" ".join(cmd), r.returncode,
                                               (r.stderr or r.stdout).strip()[-2000:]))
    return r


def tool(*args, ns=None, timeout=300):
    """vbn-tool SUBCOMMAND --opt val ...: its JSON answer."""
    r = sh(TOOL, *args, ns=ns, timeout=timeout)
    return json.loads(r.stdout)


def vsn(pin, *args, ns=None, check=True, env=None):
    cmd = [VSN, "--pin-dir", pin] + [str(a) for a in args]
    if ns:
        cmd = ["nsenter", "--net=/run/netns/%s" % ns] + cmd
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, **(env or {})))
    if check and r.returncode:
        raise RuntimeError("vsn %s: exit %d: %s" % (" ".join(map(str, args)), r.returncode,
                                                   r.stderr.strip()))
    return r


def netns_add(*names):
    for n in names:
        netns_del(n)
        sh("ip", "netns", "add", n)
        sh("ip", "-n", n, "link", "set", "lo", "up")


def netns_del(*names):
    for n in names:
        if os.path.exists("/run/netns/" + n):
            sh("ip", "netns", "del", n, check=False)


def unpin(path):
    """Remove a pin directory of ours (after vsn detach, or a crash)."""
    if not path.startswith("/sys/fs/bpf/vbn"):
        raise ValueError("not a bench pin dir: " + path)
    sh("rm", "-rf", path, check=False)


def ifindex(ns, dev):
    return json.loads(sh("ip", "-n", ns, "-j", "link", "show", dev).stdout)[0]["ifindex"]


def macaddr(ns, dev):
    return json.loads(sh("ip", "-n", ns, "-j", "link", "show", dev).stdout)[0]["address"]


def median(xs):
    xs = sorted(xs)
    if not xs:
        return None
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def pct(xs, p):
    """The p-th percentile (nearest rank)."""
    xs = sorted(xs)
    if not xs:
        return None
    k = max(0, min(len(xs) - 1, int(math.ceil(p / 100.0 * len(xs))) - 1))
    return xs[k]


def save(part, data):
    os.makedirs(OUT, exist_ok=True)
    data["part"] = part
    data["seconds"] = round(time.monotonic() - _T0, 1)
    data["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    data["loadavg"] = open("/proc/loadavg").read().split()[:3]
    with open(os.path.join(OUT, part + ".json"), "w") as f:
        json.dump(data, f, indent=1, sort_keys=True)
    progress("done in %.0f s: %s" % (data["seconds"], os.path.join(OUT, part + ".json")))


def target(name, value, limit, met, unit="", note=""):
    """One target of issue 6, marked met or missed, never left out."""
    return {"target": name, "value": value, "limit": limit, "unit": unit,
            "met": bool(met) if value is not None else False,
            "status": ("met" if met else "missed") if value is not None else "not measured",
            "note": note}


def cpu_ticks():
    """(busy, total) jiffies of every CPU from /proc/stat; busy is user +
    nice + system + irq + softirq + steal."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = v[:8]
    busy = user + nice + system + irq + softirq + steal
    return busy, busy + idle + iowait


def hz():
    return os.sysconf("SC_CLK_TCK")

