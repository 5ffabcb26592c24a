#!/usr/bin/python3
"""Summarise `make demo` (scripts/demo.sh): per phase and setup, the tenant's
throughput, p99 completion latency, I/O errors, longest I/O stall and time to
re-route; a timeline; an SVG of per-path throughput with the events marked.

    demo_report.py --setup DIR          one setup: its phases and timeline
    demo_report.py OUT SETUP...         all setups: OUT/summary.txt,
                                        OUT/summary.json, OUT/paths.svg

A setup directory holds (written by demo.sh):
  events.tsv     host_time, kind, text (kinds: start congest uncongest ana
                 ana-restore cut heal end)
  samples.tsv    host_time, bytes towards storage on path 1 and 2, bytes of
                 backend 1, 2, 3 (vsn -j show counters, every 0.5 s)
  clock.txt      vm1 clock - host clock, vm1 clock - vm1 uptime (seconds)
  fio/fio.json   fio's JSON status every second, then its final report
  fio/io_clat.*.log   one line per completed I/O: guest Unix ms, latency ns,
                 direction, block size
  decisions.log  vsn's decision log (JSON lines)
  tenant-dmesg.txt   the tenant kernel's messages
"""
import glob
import json
import re
import sys
from pathlib import Path

PHASES = [  # key, title, from event, to event, what moves
    ("steady", "1 steady state", "start", "congest", None),
    ("congested", "2 path A congested (TBF)", "congest", "uncongest", "path"),
    ("after", "2 after the congestion", "uncongest", "ana", None),
    ("ana", "3 target 1 ANA-inaccessible", "ana", "cut", "backend"),
    ("cut", "4 active fabric cut silently", "cut", "end", "path"),
]
TITLES = {"vsn": "vsn", "observe": "observe-only", "multipath": "kernel multipath"}
ACTS = ("move", "failover", "drain")
STALL_TOL = 0.3
LABELS = {"congest": "congest", "uncongest": "clear", "ana": "ANA inaccessible",
          "ana-restore": "ANA ok", "cut": "cut", "heal": "heal"}
KERNEL_MSGS = re.compile(r"error recovery|Reconnecting|reconnected|new ctrl|I/O error|"
                         r"timeout|requeuing|Removing ctrl|failed nvme_keep_alive")


class Run:
    def __init__(self, d):
        self.dir = Path(d)
        self.name = self.dir.name
        self.events = []
        for line in self._lines("events.tsv"):
            p = line.split("\t")
            if len(p) >= 3:
                self.events.append((float(p[0]), p[1], p[2]))
        self.ev = {k: t for t, k, _ in self.events}
        c = (self._lines("clock.txt") or ["0 0"])[0].split()
        self.off = float(c[0])
        self.upoff = float(c[1]) if len(c) > 1 else 0.0
        self.comps = []  # (host time, latency ms, bytes)
        for f in glob.glob(str(self.dir / "fio" / "io_clat.*.log")):
            for line in open(f):
                p = line.split(",")
                if len(p) >= 4:
                    self.comps.append((int(p[0]) / 1000.0 - self.off,
                                       int(p[1]) / 1e6, int(p[3])))
        self.comps.sort()
        self.times = [c[0] for c in self.comps]
        self.status = self._fio_status()
        self.samples = []
        for line in self._lines("samples.tsv"):
            p = line.split("\t")
            if len(p) == 6:
                self.samples.append([float(p[0])] + [int(x) for x in p[1:]])
        self.decisions = []
        for line in self._lines("decisions.log"):
            try:
                self.decisions.append(json.loads(line))
            except ValueError:
                pass
        self.kernel = []
        for line in self._lines("tenant-dmesg.txt"):
            m = re.match(r"\[\s*([0-9.]+)\]\s*(.*)", line)
            if m and KERNEL_MSGS.search(m.group(2)):
                self.kernel.append((float(m.group(1)) + self.upoff - self.off, m.group(2)))

    def _lines(self, name):
        try:
            return (self.dir / name).read_text().splitlines()
        except OSError:
            return []

    def _fio_status(self):
        """(host time, cumulative I/O errors) of each fio JSON report."""
        out = []
        try:
            text = (self.dir / "fio" / "fio.json").read_text()
        except OSError:
            return out
        dec, i = json.JSONDecoder(), 0
        while True:
            i = text.find("{", i)
            if i < 0:
                break
            try:
                j, i = dec.raw_decode(text, i)
            except ValueError:
                i += 1
                continue
            errs = sum(job.get("total_err", job.get("error", 0)) for job in j.get("jobs", []))
            out.append((j.get("timestamp_ms", 0) / 1000.0 - self.off, errs))
        return out

    def errors_at(self, t):
        """Cumulative I/O errors reported by the first report at or after t."""
        for ts, e in self.status:
            if ts >= t:
                return e
        return self.status[-1][1] if self.status else 0

    def window(self, a, b):
        lo = bisect(self.times, a)
        hi = bisect(self.times, b)
        sel = self.comps[lo:hi]
        lat = sorted(c[1] for c in sel)
        # A stall belongs to the phase it began in; the guest clock maps to
        # the host's to some tens of ms, so the phase starts STALL_TOL early.
        s0, s1 = bisect(self.times, a - STALL_TOL), bisect(self.times, b - STALL_TOL)
        stall = max((self.times[i + 1] - self.times[i]
                     for i in range(s0, min(s1, len(self.times) - 1))), default=0.0)
        if not sel and (not self.times or self.times[-1] < a):
            stall = b - a
        return {
            "seconds": round(b - a, 1),
            "mb_s": sum(c[2] for c in sel) / 1e6 / (b - a) if b > a else 0.0,
            "p99_ms": lat[min(len(lat) - 1, int(0.99 * len(lat)))] if lat else None,
            "ios": len(sel),
            "errors": self.errors_at(b) - self.errors_at(a) if self.status else None,
            "stall_s": stall,
        }

    def fault_stall(self, t):
        """The longest gap between completions that began as the fault hit
        (from STALL_TOL before it to 2 s after): the reaction to the fault
        itself, apart from what happened later in the phase."""
        i, j = bisect(self.times, t - STALL_TOL), bisect(self.times, t + 2.0)
        return max((self.times[k + 1] - self.times[k]
                    for k in range(i, min(j, len(self.times) - 1))), default=0.0)

    def decision_after(self, t, until):
        """First acting (or, observe-only, would-act) decision in [t, until)."""
        for d in self.decisions:
            ts = d.get("ts", 0)
            if t <= ts < until and (d.get("event") in ACTS or d.get("event") == "observe-only"):
                return ts - t, d.get("event") == "observe-only"
        return None, False

    def moved_after(self, t, until, what):
        """Seconds until most of the storage traffic ran on another path (or
        backend) than before t, from the counter samples; None: never."""
        idx = (1, 2) if what == "path" else (3, 4)  # backend 3 is target 1 too

        def split(s0, s1):
            v = [s1[i] - s0[i] for i in range(1, 6)]
            if what == "path":
                return v[0], v[1]
            return v[2] + v[4], v[3]  # target 1 (backends 1, 3), target 2

        pairs = list(zip(self.samples, self.samples[1:]))
        before = [split(a, b) for a, b in pairs if t - 3 <= a[0] and b[0] <= t]
        tot = [sum(x) for x in zip(*before)] if before else [0, 0]
        if sum(tot) == 0:
            return None
        old = 0 if tot[0] >= tot[1] else 1
        per = sum(tot) / max(len(before), 1)
        for a, b in pairs:
            if a[0] < t - 0.01 or b[0] > until:
                continue
            v = split(a, b)
            if sum(v) > 0.1 * per and v[old] < 0.5 * sum(v):
                return b[0] - t
        del idx
        return None

    def phases(self):
        out = []
        for key, title, e0, e1, what in PHASES:
            if e0 not in self.ev or e1 not in self.ev:
                continue
            a, b = self.ev[e0], self.ev[e1]
            w = self.window(a, b)
            w.update(key=key, title=title)
            if what:
                w["decision_s"], w["would"] = self.decision_after(a, b)
                w["moved_s"] = self.moved_after(a, b, what)
                w["fault_stall_s"] = self.fault_stall(a)
            out.append(w)
        return out

    def timeline(self):
        t0 = self.ev.get("start", self.events[0][0] if self.events else 0)
        rows = [(t, "event", txt) for t, k, txt in self.events]
        # Observe-only logs what it would do on every tick: between two
        # events, a decision equal to one shown already is only counted.
        marks = sorted(t for t, _, _ in self.events)
        shown, repeats, seg = set(), 0, -1
        for d in sorted(self.decisions, key=lambda d: d.get("ts", 0)):
            if d.get("event") in ("started", "stopped"):
                continue
            ts = d.get("ts", 0)
            s = bisect(marks, ts)
            if s != seg:
                if repeats:
                    rows.append((marks[s - 1] - 1e-6 if s > 0 else ts, "vsn",
                                 "(%d more lines repeating those above)" % repeats))
                shown, repeats, seg = set(), 0, s
            what = "would " + d.get("would", "move") if d.get("event") == "observe-only" \
                else d.get("event")
            rest = " ".join("%s=%s" % (k, v) for k, v in d.items()
                            if k not in ("ts", "event", "reason", "would"))
            key = what + rest
            if key in shown:
                repeats += 1
                continue
            shown.add(key)
            rows.append((ts, "vsn", "%s %s (%s)" % (what, rest, d.get("reason"))))
        if repeats:
            rows.append((self.events[-1][0] - 1e-6 if self.events else 0, "vsn",
                         "(%d more lines repeating those above)" % repeats))
        last = None
        for t, m in self.kernel:
            key = re.sub(r"\d+", "#", m)
            if key == last:  # "requeuing I/O" comes in bursts
                continue
            last = key
            rows.append((t, "tenant", m))
        for a, b in zip(self.times, self.times[1:]):
            if b - a >= 1.0:
                rows.append((a, "fio", "I/O stalls (no completion for %.2f s)" % (b - a)))
                rows.append((b, "fio", "I/O resumes"))
        rows.sort(key=lambda r: r[0])
        return [(t - t0, who, txt) for t, who, txt in rows]


def segments(pts, gap=1.5):
    """Split a rate series where a sample interval is longer than gap s."""
    seg = []
    for p in pts:
        if seg and p[3] > gap:
            yield seg
            seg = []
        seg.append(p)
    if seg:
        yield seg


def bisect(a, x):
    lo, hi = 0, len(a)
    while lo < hi:
        m = (lo + hi) // 2
        if a[m] < x:
            lo = m + 1
        else:
            hi = m
    return lo


def fmt_s(v, prec=2):
    return "-" if v is None else "%.*f" % (prec, v)


def reroute_cell(p):
    if "moved_s" not in p:
        return ""
    moved = "%.1f" % p["moved_s"] if p["moved_s"] is not None else "none"
    if p["decision_s"] is None:
        return moved
    if p["would"]:
        return "%s (would %.2f)" % (moved, p["decision_s"])
    return "%s (vsn %.2f)" % (moved, p["decision_s"])


def setup_report(run):
    lines = ["  %-30s %6s %7s %6s %7s %7s  %s" % ("phase", "MB/s", "p99 ms", "errors",
                                                "stall s", "at hit", "re-routed after s")]
    for p in run.phases():
        lines.append("  %-30s %6.2f %7s %6s %7.2f %7s  %s" % (
            p["title"], p["mb_s"], fmt_s(p["p99_ms"], 1), fmt_s(p["errors"], 0),
            p["stall_s"], fmt_s(p.get("fault_stall_s"), 2) if "fault_stall_s" in p else "",
            reroute_cell(p)))
    return lines


def table(runs):
    cols = [TITLES.get(r.name, r.name) for r in runs]
    w = 24
    head = "%-34s" % "phase / metric" + "".join("%*s" % (w, c) for c in cols)
    out = [head, "-" * len(head)]
    per = [{p["key"]: p for p in r.phases()} for r in runs]
    for key, title, _, _, what in PHASES:
        if not any(key in x for x in per):
            continue
        secs = [x[key]["seconds"] for x in per if key in x]
        out.append("%s (%s s)" % (title, "/".join("%g" % s for s in secs)))
        rows = [("  throughput MB/s", lambda p: "%.2f" % p["mb_s"]),
                ("  p99 completion latency ms", lambda p: fmt_s(p["p99_ms"], 1)),
                ("  I/O errors", lambda p: fmt_s(p["errors"], 0)),
                ("  longest I/O stall s", lambda p: "%.2f" % p["stall_s"])]
        if what:
            rows.append(("  stall as the fault hit s", lambda p: "%.2f" % p["fault_stall_s"]))
            rows.append(("  re-routed after s", reroute_cell))
        for label, f in rows:
            out.append("%-34s" % label + "".join(
                "%*s" % (w, f(x[key]) if key in x else "") for x in per))
    out += ["",
            "throughput: the tenant's fio (random 16 KiB reads and writes, QD 8, a pause after",
            "every 8), read + write;",
            "stall: the longest time without any I/O completion that began in the phase;",
            "as the fault hit: the longest one beginning within 2 s of the fault;",
            "re-routed after: until most storage traffic ran on another path (congestion, cut)",
            "or target (ANA), from vsn's counters sampled every 0.5 s ('none': not within the",
            "phase); in brackets the decision-log time of vsn's first move/failover/drain",
            "('would': observe-only, logged but not done).  Under TCG absolute throughput is",
            "small; the ratios between phases and the stalls are what matter."]
    return out


def svg(runs, path):
    w, ph, pad, top = 980, 230, 55, 40
    h = top + ph * len(runs) + 20
    span = max((r.ev.get("end", 0) - r.ev.get("start", 0) for r in runs), default=1) + 4
    series = []
    ymax = 1.0
    for r in runs:
        t0 = r.ev.get("start", 0) - 2
        pts = []
        for a, b in zip(r.samples, r.samples[1:]):
            dt = b[0] - a[0]
            if dt > 0:
                pts.append((b[0] - t0, (b[1] - a[1]) * 8 / dt / 1e6, (b[2] - a[2]) * 8 / dt / 1e6,
                            dt))
        fio = {}
        for t, _, n in r.comps:
            fio[int(t - t0)] = fio.get(int(t - t0), 0) + n
        fpts = [(s + 0.5, fio.get(s, 0) * 8 / 1e6) for s in range(0, int(span))
                if r.comps and r.times[0] - t0 <= s + 1 and s <= r.times[-1] - t0]
        ymax = max([ymax] + [max(p[1], p[2]) for p in pts] + [p[1] for p in fpts])
        series.append((r, t0, pts, fpts))
    ymax *= 1.1
    el = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
          'font-family="sans-serif" font-size="11">' % (w, h),
          '<rect width="100%" height="100%" fill="white"/>',
          '<text x="%d" y="22" font-size="15">vsn demo: storage traffic per path '
          '(vsn counters, Mbit/s towards storage) and the tenant\'s fio I/O (read + write)'
          '</text>' % pad]
    colours = (("#1f77b4", "path 1 (up0, fabric 0)"), ("#d62728", "path 2 (up1, fabric 1)"))
    for n, (r, t0, pts, fpts) in enumerate(series):
        y0 = top + n * ph
        gh = ph - 45
        x = lambda t: pad + t / span * (w - 2 * pad)
        y = lambda v: y0 + 20 + gh - v / ymax * gh
        el.append('<text x="%d" y="%d" font-size="13" font-weight="bold">%s</text>'
                  % (pad, y0 + 14, TITLES.get(r.name, r.name)))
        el.append('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="black"/>'
                  % (pad, y(0), w - pad, y(0)))
        el.append('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="black"/>'
                  % (pad, y(0), pad, y(ymax)))
        el.append('<text x="%d" y="%.1f" text-anchor="end">%.0f</text>' % (pad - 4, y(ymax) + 4, ymax))
        el.append('<text x="%d" y="%.1f" text-anchor="end" fill="#555">Mbit/s</text>'
                  % (pad - 4, y(ymax) + 26))
        el.append('<text x="%d" y="%.1f" text-anchor="end">0</text>' % (pad - 4, y(0) + 4))
        for s in range(0, int(span) + 1, 10):
            el.append('<text x="%.1f" y="%.1f" text-anchor="middle" fill="#555">%d s</text>'
                      % (x(s), y(0) + 13, s))
        last_label = -1e9
        for a, b in zip(r.times, r.times[1:]):  # stalls of a second or more
            if b - a < 1.0:
                continue
            el.append('<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#f4a582" '
                      'fill-opacity="0.35"/>' % (x(a - t0), y(ymax), x(b - t0) - x(a - t0),
                                                  y(0) - y(ymax)))
            mid = (x(a - t0) + x(b - t0)) / 2
            if b - a >= 2.0 and mid - last_label > 60:
                last_label = mid
                el.append('<text x="%.1f" y="%.1f" fill="#b2182b" text-anchor="middle">'
                          'stall %.1f s</text>' % (mid, y(0) - 4, b - a))
        if fpts:
            el.append('<polyline fill="none" stroke="#999" stroke-width="1.2" '
                      'stroke-dasharray="3,2" points="%s"/>'
                      % " ".join("%.1f,%.1f" % (x(t), y(v)) for t, v in fpts))
        for i, (col, _) in enumerate(colours):
            for seg in segments(pts):  # no line across missing samples
                el.append('<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>'
                          % (col, " ".join("%.1f,%.1f" % (x(p[0]), y(p[i + 1])) for p in seg)))
        for k, (t, kind, _) in enumerate(r.events):
            if kind in ("start", "end"):
                continue
            ex = x(t - t0)
            el.append('<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#333" '
                      'stroke-dasharray="4,3"/>' % (ex, y(ymax), ex, y(0)))
            el.append('<text x="%.1f" y="%.1f" fill="#333">%s</text>'
                      % (ex + 3, y(ymax) + 10 + 11 * (k % 2), LABELS.get(kind, kind)))
    ly = top - 8
    for i, (col, name) in enumerate(colours + (("#999", "fio, tenant (dashed)"),)):
        lx = w - pad - 520 + i * 175
        el.append('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"/>'
                  % (lx, ly, lx + 18, ly, col))
        el.append('<text x="%d" y="%d">%s</text>' % (lx + 22, ly + 4, name))
    el.append("</svg>")
    Path(path).write_text("\n".join(el) + "\n")


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--setup":
        run = Run(sys.argv[2])
        print("\n".join(setup_report(run)))
        return 0
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    out = Path(sys.argv[1])
    runs = [Run(out / s) for s in sys.argv[2:] if (out / s / "events.tsv").exists()]
    if not runs:
        print("demo_report: no setup with events in %s" % out, file=sys.stderr)
        return 1
    txt = table(runs)
    tl = []
    for r in runs:
        tl += ["", "timeline, %s (seconds from the start of its fio run):" % TITLES.get(r.name, r.name)]
        tl += ["  %7.2f  %-6s %s" % row for row in r.timeline()]
    (out / "summary.txt").write_text("\n".join(txt + tl) + "\n")
    summary = {r.name: {"title": TITLES.get(r.name, r.name), "phases": r.phases(),
                        "events": [{"t": t, "kind": k, "text": x} for t, k, x in r.events]}
               for r in runs}
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    svg(runs, out / "paths.svg")
    print("\n".join(txt))
    return 0


if __name__ == "__main__":
    sys.exit(main())
