"""What the packet test suites share: TAP output, running commands (inside
a network namespace with nsenter, which keeps /sys/fs/bpf visible), and
removing a test environment (vsn detach, namespaces, leftover pins)."""
import atexit
import json
import os
import signal
import struct
import subprocess
import sys
import tempfile


class Tap:
    """TAP lines that tests/run.sh counts: "ok N - ..." / "not ok N - ..."."""

    def __init__(self):
        self.n = self.failed = 0

    def ok(self, cond, desc, diag=None):
        self.n += 1
        if not cond:
            self.failed += 1
        print("%sok %d - %s" % ("" if cond else "not ", self.n, desc))
        if not cond and diag:
            for line in str(diag).splitlines()[:40]:
                print("#   " + line)
        sys.stdout.flush()
        return bool(cond)

    def skip(self, desc, why):
        self.n += 1
        print("ok %d - %s # SKIP %s" % (self.n, desc, why))
        sys.stdout.flush()


def note(msg):
    for line in str(msg).splitlines():
        print("# " + line)
    sys.stdout.flush()


def sh(*cmd, check=True, ns=None, timeout=60):
    cmd = list(cmd)
    if ns:
        cmd = ["nsenter", "--net=/run/netns/%s" % ns] + cmd
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check and r.returncode:
        raise RuntimeError("%s: exit %d: %s" % (" ".join(cmd), r.returncode,
                                               (r.stderr or r.stdout).strip()))
    return r


def remove_env(vsn, pin, hv_ns, namespaces):
    """Detach vsn (run in hv_ns), delete the namespaces, and clear what a
    failed detach left in our own pin directory."""
    if os.path.exists("/run/netns/" + hv_ns) and os.path.isdir(pin):
        sh(vsn, "--pin-dir", pin, "detach", check=False, ns=hv_ns)
    for ns in namespaces:
        if os.path.exists("/run/netns/" + ns):
            sh("ip", "netns", "del", ns, check=False)
    if os.path.isdir(pin):
        for f in os.listdir(pin):
            try:
                os.unlink(os.path.join(pin, f))
            except OSError:
                pass
        try:
            os.rmdir(pin)
        except OSError:
            pass


def veth_topology(hv_ns, peer_ns, pairs):
    """Two namespaces (IPv6 off: no autoconf, MLD or DAD frames may move
    the counters of the programs under test; lo up) and a veth pair for
    each (hv-side name, peer name).  Returns {name: (ifindex, MAC)} of the
    hv side."""
    for ns in (hv_ns, peer_ns):
        sh("ip", "netns", "add", ns)
        sh("sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1",
           "net.ipv6.conf.default.disable_ipv6=1", ns=ns)
        sh("ip", "link", "set", "lo", "up", ns=ns)
    for hv, peer in pairs:
        sh("ip", "link", "add", hv, "netns", hv_ns, "type", "veth", "peer",
           "name", peer, "netns", peer_ns)
        sh("ip", "link", "set", hv, "up", ns=hv_ns)
        sh("ip", "link", "set", peer, "up", ns=peer_ns)
    return {link["ifname"]: (link["ifindex"], link.get("address"))
            for link in json.loads(sh("ip", "-j", "link", "show", ns=hv_ns).stdout)}


def apply_config(vsn, text, prefix):
    """vsn apply of text, written to a temporary file."""
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", prefix=prefix,
                                     delete=False) as f:
        f.write(text)
    try:
        vsn("apply", f.name)
    finally:
        os.unlink(f.name)


def reply_tc(pin, ifindexes, on, ns=None):
    """Set vsn_reply_tc (lib/xfer.h) for these VM interfaces.  attach marks
    every veth, so that XDP leaves its replies to TC; the packet suites'
    VM interfaces are veths standing in for taps, whose replies XDP
    redirects itself, so they clear it (test_dp_xfer.py sets it)."""
    for idx in ifindexes:
        sh("bpftool", "map", "update", "pinned", pin + "/vsn_reply_tc", "key",
           *["%d" % b for b in struct.pack("=I", idx)], "value",
           *["%d" % b for b in struct.pack("=I", 1 if on else 0)], ns=ns)


def require_pinned(paths):
    for path in paths:
        if not os.path.exists(path):
            raise RuntimeError("program %s not pinned" % path)


def suite_start(teardown):
    """A suite's first step: root, and teardown on exit, SIGTERM and SIGINT.
    False (with the TAP line saying why) when not root."""
    if os.geteuid() != 0:
        print("not ok 1 - must run as root")
        print("1..1")
        return False
    atexit.register(teardown)
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))
    signal.signal(signal.SIGINT, lambda *a: sys.exit(130))
    return True
