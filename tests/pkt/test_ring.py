#!/usr/bin/python3
"""Ring-buffer overload: events emitted faster than userspace reads them.

A harness program (ring_flood.bpf.c) emits connection events through the
datapath's own event code into the pinned vsn_events ring while nobody
reads it.  Afterwards `vsn events` drains the ring.  Every event must be
accounted for: events_sent = events received by vsn, and events_dropped =
events emitted - events received.
"""
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VSN = os.path.join(ROOT, "build", "vsn")
OBJ = os.path.join(ROOT, "build", "ring_flood.bpf.o")
NS = "vsnrf-hv"
PIN = "/sys/fs/bpf/vsnrf"
FLOOD = "/sys/fs/bpf/vsnrf-flood"
RUNS, PER_RUN = 2000, 64
TEL_MAPS = ("vsn_events", "vsn_tel_cfg", "vsn_tel_stats", "vsn_cmds", "vsn_lat_hist")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Tap, remove_env, sh  # noqa: E402
T = Tap()
ok = T.ok


def stats():
    """vsn_tel_stats summed over CPUs, by index (enum vsn_tel_stat)."""
    r = sh("bpftool", "-j", "map", "dump", "pinned", PIN + "/vsn_tel_stats")
    out = {}
    for e in json.loads(r.stdout):
        key = e["key"] if isinstance(e["key"], int) else int.from_bytes(
            bytes(int(x, 16) for x in e["key"]), "little")
        total = 0
        for v in e["values"]:
            val = v["value"]
            total += val if isinstance(val, int) else int.from_bytes(
                bytes(int(x, 16) for x in val), "little")
        out[key] = total
    return out


EV_SENT, EV_DROPPED = 8, 9  # enum vsn_tel_stat


def teardown():
    sh("rm", "-rf", FLOOD, check=False)
    remove_env(VSN, PIN, NS, (NS,))


def main():
    teardown()
    sh("ip", "netns", "add", NS)
    try:
        sh("ip", "-n", NS, "link", "add", "vmif", "type", "veth", "peer", "name", "vmp")
        sh("ip", "-n", NS, "link", "set", "vmif", "up")
        sh(VSN, "--pin-dir", PIN, "attach", "--vm", "vmif", ns=NS)
        args = []
        for m in TEL_MAPS:
            args += ["map", "name", m, "pinned", "%s/%s" % (PIN, m)]
        os.makedirs(FLOOD, exist_ok=True)
        sh("bpftool", "prog", "load", OBJ, FLOOD + "/ring_flood", "type", "classifier", *args)
        before = stats()
        data = "/tmp/vsnrf-pkt"
        with open(data, "wb") as f:
            f.write(bytes(60))
        r = sh("bpftool", "prog", "run", "pinned", FLOOD + "/ring_flood", "data_in", data,
               "repeat", str(RUNS))
        after = stats()
        sent = after.get(EV_SENT, 0) - before.get(EV_SENT, 0)
        dropped = after.get(EV_DROPPED, 0) - before.get(EV_DROPPED, 0)
        emitted = RUNS * PER_RUN
        print("# emitted %d, sent %d, dropped %d" % (emitted, sent, dropped))
        ok(sent + dropped == emitted, "every emitted event is either in the ring or counted as "
           "dropped (%d + %d = %d)" % (sent, dropped, emitted))
        ok(dropped > 0, "the ring overflowed (%d dropped): the test really overloads it" % dropped)
        r = sh(VSN, "--pin-dir", PIN, "-j", "events", "--timeout", "2", ns=NS)
        got = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
        received = sum(1 for e in got if e["type"] == "conn_open")
        print("# vsn events received %d" % received)
        ok(received == sent, "vsn events received exactly the events sent to the ring (%d)"
           % received)
        ok(dropped == emitted - received, "events_dropped = emitted - received (%d = %d - %d)"
           % (dropped, emitted, received))
        r = sh(VSN, "--pin-dir", PIN, "-j", "show", "telemetry", ns=NS)
        t = json.loads(r.stdout)["stats"]
        ok(t["events_dropped"] == after.get(EV_DROPPED, 0) and
           t["events_sent"] == after.get(EV_SENT, 0),
           "vsn show telemetry reports the same sent/dropped counters", t)
        os.unlink(data)
    finally:
        teardown()
    print("1..%d" % T.n)
    print("# %d passed, %d failed" % (T.n - T.failed, T.failed))
    return 1 if T.failed else 0


if __name__ == "__main__":
    sys.exit(main())
