#!/usr/bin/python3
"""`make demo-cluster` (scripts/demo_cluster.sh): the sampler and the report.

    demo_cluster_report.py sample T FILE   every 0.5 s, one JSON line to FILE:
        the clients' connections (tests/cluster/hold.py status files
        T/hN/TAG.json) per backend, all hosts ("be") and per host
        ("by_host"), lost and reset connections per host, "complete" (every
        client holds all its connections), "stable_since" (since when none
        of that changed), the servers' own counts ("servers", T/beK.json)
    demo_cluster_report.py report OUT      OUT/summary.txt, summary.json,
        connections.svg (chapter 1), chapter2.svg from OUT/events.tsv (time,
        phase, kind, text), checks.tsv (phase, premise|outcome, ok|failed,
        text), samples.jsonl and h1.log.. (the hosts' decision logs)
"""
import glob
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "bench"))
import svgplot  # noqa: E402

TICK = 0.5


# ------------------------------------------------------------------ sampler
def read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def sample(tdir, outpath):
    prev, since = None, time.time()
    with open(outpath, "a") as out:
        while True:
            ts = time.time()
            s = {"ts": round(ts, 3), "be": {}, "by_host": {}, "lost": {}, "resets": {},
                 "servers": {}, "clients": 0}
            for f in sorted(glob.glob(os.path.join(tdir, "be*.json"))):
                name = os.path.basename(f)[:-5]
                st = read_json(f)
                s["be"][name] = 0
                s["servers"][name] = st.get("open", 0) if st else None
            complete = True
            for hd in sorted(glob.glob(os.path.join(tdir, "h[0-9]*"))):
                h = os.path.basename(hd)
                per, lost, resets = {b: 0 for b in s["be"]}, 0, 0
                for f in sorted(glob.glob(os.path.join(hd, "v*.json"))):
                    st = read_json(f)
                    if not st:
                        complete = False
                        continue
                    s["clients"] += 1
                    complete &= st.get("open") == st.get("n")
                    for b, n in st.get("per_backend", {}).items():
                        per[b] = per.get(b, 0) + n
                        s["be"][b] = s["be"].get(b, 0) + n
                    lost += st.get("lost", 0)
                    resets += st.get("resets", 0)
                    s.setdefault("connects", {})[h + "/" + os.path.basename(f)[:-5]] = \
                        st.get("connects", 0)
                s["by_host"][h] = per
                s["lost"][h] = lost
                s["resets"][h] = resets
            s["complete"] = complete
            key = json.dumps([s["by_host"], s.get("connects"), complete], sort_keys=True)
            if key != prev:
                prev, since = key, ts
            s["stable_since"] = round(since, 3)
            s.pop("connects", None)
            out.write(json.dumps(s, sort_keys=True) + "\n")
            out.flush()
            time.sleep(max(0.05, TICK - (time.time() - ts)))


# ------------------------------------------------------------------ report
def load_tsv(path, cols):
    rows = []
    if not path.exists():
        return rows
    for line in path.read_text().splitlines():
        p = line.split("\t")
        if len(p) >= cols:
            rows.append(p[:cols - 1] + ["\t".join(p[cols - 1:])])
    return rows


def load_log(path):
    out = []
    if not path.exists():
        return out
    for line in path.read_text().splitlines():
        try:
            d = json.loads(line)
        except ValueError:
            continue
        if isinstance(d, dict) and "ts" in d:
            out.append(d)
    return out


class Data:
    def __init__(self, out):
        self.out = out
        self.events = [(float(t), ph, k, txt) for t, ph, k, txt in
                       load_tsv(out / "events.tsv", 4)]
        self.checks = load_tsv(out / "checks.tsv", 4)
        self.samples = []
        p = out / "samples.jsonl"
        if p.exists():
            for line in p.read_text().splitlines():
                try:
                    self.samples.append(json.loads(line))
                except ValueError:
                    pass
        self.hosts = sorted(os.path.basename(f)[:-4] for f in glob.glob(str(out / "h*.log")))
        self.logs = {h: load_log(out / (h + ".log")) for h in self.hosts}
        self.config = {}
        for t, ph, k, txt in self.events:
            if k == "config":
                self.config = json.loads(txt)
        self.cap = self.config.get("capacity", 0)
        self.phases = {}
        starts = [(t, ph, txt) for t, ph, k, txt in self.events if k == "phase"]
        t_last = self.samples[-1]["ts"] if self.samples else (self.events[-1][0] if self.events
                                                                else 0)
        for i, (t, ph, txt) in enumerate(starts):
            t1 = starts[i + 1][0] if i + 1 < len(starts) else t_last
            self.phases[ph] = {"title": txt, "t0": t, "t1": t1}
        self.backends = sorted({b for s in self.samples for b in s.get("be", {})})

    def ev(self, phase, kind):
        """The time of the phase's first event of this kind, or None."""
        for t, ph, k, _ in self.events:
            if ph == phase and k == kind:
                return t
        return None

    def ev_text(self, phase, kind):
        for _, ph, k, txt in self.events:
            if ph == phase and k == kind:
                return txt
        return None

    def at(self, t):
        """The last sample at or before t (or the first one)."""
        best = None
        for s in self.samples:
            if s["ts"] <= t:
                best = s
            else:
                break
        return best or (self.samples[0] if self.samples else {})

    def window(self, t0, t1):
        return [s for s in self.samples if t0 <= s["ts"] <= t1]

    def log_lines(self, h, t0, t1, pred):
        return [d for d in self.logs.get(h, []) if t0 <= d["ts"] <= t1 and pred(d)]

    def phase_checks(self, phase):
        return [{"kind": k, "ok": ok == "ok", "text": txt}
                for ph, k, ok, txt in self.checks if ph == phase]


def pct_over(n, cap):
    return round(max(0.0, (n - cap) * 100.0 / cap), 1) if cap else None


def backend_figures(d, t0, t1, before_t):
    """Per backend: connections before the fault, final, max, max overload %."""
    win = d.window(t0, t1)
    before, final = d.at(before_t), d.at(t1)
    res = {}
    for b in d.backends:
        mx = max([s["be"].get(b, 0) for s in win] + [0])
        res[b] = {"capacity": d.cap, "before": before.get("be", {}).get(b, 0),
                  "final": final.get("be", {}).get(b, 0), "max": mx,
                  "max_overload_pct": pct_over(mx, d.cap)}
    return res


def host_reactions(d, t_fault, t_end, backend, events):
    """Per host: its decisions about the backend after the fault."""
    res = {}
    for h in d.hosts:
        lines = d.log_lines(h, t_fault, t_end,
                            lambda x: x.get("backend") == backend and x.get("event") in events)
        first = lines[0] if lines else None
        drains = [x for x in lines if x.get("event") == "drain"]
        res[h] = {
            "decisions": [x["event"] for x in lines],
            "first": first["event"] if first else None,
            "reaction_s": round(first["ts"] - t_fault, 2) if first else None,
            "drained": bool(drains),
            "drain_s": round(drains[0]["ts"] - t_fault, 2) if drains else None,
            "connections_reset_by_vsn": sum(x.get("rst_sent", 0) for x in drains),
            "conn_entries_dropped": sum(x.get("connections_reset", 0) for x in drains),
            "leader": (first or {}).get("leader"),
            "failing_hosts": next((x.get("failing_hosts") for x in lines
                                   if x.get("event") == "backend-quorum"), None),
        }
    return res


def client_deltas(d, t0, t1):
    a, b = d.at(t0), d.at(t1)
    return {h: {"lost": b.get("lost", {}).get(h, 0) - a.get("lost", {}).get(h, 0),
                "reset": b.get("resets", {}).get(h, 0) - a.get("resets", {}).get(h, 0)}
            for h in d.hosts}


def last_weights(d, t0, t1):
    """The weights in every host's tables at t1: a weights event names the
    backends whose weight changed; the daemons started at t0 (configured
    weights, 100)."""
    for h in d.hosts:
        evs = d.log_lines(h, t0, t1, lambda x: x.get("event") == "weights")
        if not evs:
            continue
        w = {"be%s" % b: 100 for b in (x[2:] for x in d.backends)}
        for x in evs:
            for b, v in x.get("weights", {}).items():
                w["be%s" % b] = v
        return {"from": evs[-1].get("from"), "weights": w, "as_seen_by": h}
    return None


CH2_EVENTS = ("backend-suspect-local", "backend-repathed", "backend-quorum", "drain",
              "backend-decided-alone", "undrain")


def chapter1(d, phase):
    p = d.phases.get(phase)
    if not p:
        return None
    t_fail = d.ev(phase, "fail")
    t_end = d.ev(phase, "end") or p["t1"]
    r = {"title": p["title"], "complete": bool(t_fail), "checks": d.phase_checks(phase),
         "leader": d.ev_text(phase, "leader") or None}
    if not t_fail:
        return r
    before = d.at(t_fail - 0.01)
    final = d.at(t_end)
    r["backends"] = backend_figures(d, p["t0"], t_end, t_fail - 0.01)
    moved = {"off_be1": before.get("be", {}).get("be1", 0)}
    for b in d.backends:
        if b != "be1":
            moved["to_" + b] = final.get("be", {}).get(b, 0) - before.get("be", {}).get(b, 0)
    moved["per_host"] = {h: {b: final["by_host"].get(h, {}).get(b, 0) -
                             before["by_host"].get(h, {}).get(b, 0)
                             for b in d.backends}
                         for h in d.hosts if h in before.get("by_host", {})}
    r["moved"] = moved
    r["hosts"] = host_reactions(d, t_fail, t_end, 1, ("drain", "backend-quorum",
                                                      "backend-decided-alone"))
    for h, v in client_deltas(d, t_fail - 0.01, t_end).items():
        r["hosts"][h].update({"lost_by_vm": v["lost"], "reset_seen_by_vm": v["reset"]})
    r["weights_at_failure"] = last_weights(d, p["t0"], t_fail)
    drains = [v["drain_s"] for v in r["hosts"].values() if v["drain_s"] is not None]
    r["reaction_s"] = {"first": min(drains) if drains else None,
                       "last": max(drains) if len(drains) == len(d.hosts) else None}
    r["t_fail"] = t_fail
    return r


def chapter2(d, phase):
    p = d.phases.get(phase)
    if not p:
        return None
    t_fault = d.ev(phase, "cut") or d.ev(phase, "fail")
    t_end = d.ev(phase, "heal") or d.ev(phase, "end") or p["t1"]
    t_close = d.ev(phase, "end") or p["t1"]
    r = {"title": p["title"], "complete": bool(t_fault), "checks": d.phase_checks(phase),
         "leader": d.ev_text(phase, "leader") or None}
    if not t_fault:
        return r
    r["fault"] = "cut" if d.ev(phase, "cut") else "stop"
    r["fault_s"] = round(t_end - t_fault, 1)
    r["backends"] = backend_figures(d, p["t0"], t_close, t_fault - 0.01)
    r["hosts"] = host_reactions(d, t_fault, t_end, 2, CH2_EVENTS)
    for h, v in client_deltas(d, t_fault - 0.01, t_close).items():
        r["hosts"][h].update({"lost_by_vm": v["lost"], "reset_seen_by_vm": v["reset"]})
    r["drained_on"] = [h for h, v in r["hosts"].items() if v["drained"]]
    return r


def fmt_s(v):
    return "-" if v is None else "%.2f s" % v


def table(rows, head):
    widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(len(head))]
    line = lambda r: "  ".join(str(c).ljust(widths[i]) for i, c in enumerate(r)).rstrip()
    return [line(head), line(["-" * w for w in widths])] + [line(r) for r in rows]


def checks_text(runs):
    out = []
    for name, r in runs:
        for c in (r or {}).get("checks", []):
            if c["ok"]:
                continue
            what = "premise did not hold" if c["kind"] == "premise" else "not shown"
            out.append("  %s: %s: %s" % (name, what, c["text"]))
    return out


def report(out):
    out = Path(out)
    d = Data(out)
    cap = d.cap
    c1 = {"alone": chapter1(d, "1a"), "cluster": chapter1(d, "1b")}
    c2 = {k: chapter2(d, k) for k in ("2a", "2b", "2c")}
    t_first = d.events[0][0] if d.events else 0
    t_last = d.samples[-1]["ts"] if d.samples else t_first
    summary = {"capacity": cap, "connections_per_vm": {"volume1": d.config.get("n1"),
                                                       "volume2": d.config.get("n2"),
                                                       "volume2_chapter2": d.config.get("n2b")},
               "hosts": d.hosts, "backends": d.backends,
               "started": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t_first)),
               "duration_s": round(t_last - t_first, 1),
               "chapter1": c1, "chapter2": c2,
               "checks": [{"phase": ph, "kind": k, "ok": ok == "ok", "text": txt}
                          for ph, k, ok, txt in d.checks]}
    failed = [c for c in summary["checks"] if not c["ok"]]
    summary["all_checks_held"] = not failed
    (out / "summary.json").write_text(json.dumps(summary, indent=1, sort_keys=True) + "\n")

    L = ["vsn demo-cluster, %s (%.0f s): 3 hosts h1..h3, backends be1..be3 of capacity %s "
         "connections each" % (summary["started"], summary["duration_s"], cap),
         "README: connections are the VMs' long-lived connections as their clients count them "
         "(all hosts together unless per host); 'max' is the most a backend held at any sample "
         "(every 0.5 s) during the run, 'over' how far that exceeds its capacity; times are "
         "from the fault (a server stopped, a cut) to each host's decision-log line; "
         "connections.svg plots chapter 1 over time, chapter2.svg each host's connections on be2 "
         "in chapter 2; h1.log.. are the "
         "decision logs; any premise that did not hold is listed at the end.", ""]

    # Chapter 1
    L.append("Chapter 1: herding without the cluster vs spreading with it")
    L.append("  per VM %s connections to volume 2 (be2 alone) and %s to volume 1 (be1..be3); "
             "then be1's server stops" % (d.config.get("n2"), d.config.get("n1")))
    a, b = c1["alone"] or {}, c1["cluster"] or {}
    rows = []
    for be in d.backends:
        row = [be, str(cap)]
        for r in (a, b):
            f = (r.get("backends") or {}).get(be)
            row += ["%d -> %d" % (f["before"], f["final"]), str(f["max"]),
                    "%.0f %%" % f["max_overload_pct"]] if f else ["-", "-", "-"]
        rows.append(row)
    L += ["  " + x for x in table(rows, ["backend", "capacity", "alone: before -> final",
                                         "max", "over", "cluster: before -> final", "max",
                                         "over"])]
    L.append("")
    rows = []

    def per_host(r, key, f=str):
        hs = (r or {}).get("hosts") or {}
        return " ".join("%s %s" % (h, f(hs[h].get(key))) for h in d.hosts if h in hs) or "-"

    def moved(r):
        m = (r or {}).get("moved")
        if not m:
            return "-"
        return "%d: " % m["off_be1"] + ", ".join(
            "%d to %s" % (v, k[3:]) for k, v in m.items() if k.startswith("to_"))
    rows.append(["connections moved off be1", moved(a), moved(b)])
    rows.append(["time to reaction: drain of be1 logged",
                 per_host(a, "drain_s", fmt_s), per_host(b, "drain_s", fmt_s)])
    rows.append(["connections reset by vsn's drain (RST sent)",
                 per_host(a, "connections_reset_by_vsn"), per_host(b, "connections_reset_by_vsn")])
    rows.append(["connections the VMs lost (be1's server closed them)",
                 per_host(a, "lost_by_vm"), per_host(b, "lost_by_vm")])
    w = lambda r: ("from %s: " % r["weights_at_failure"]["from"] + " ".join(
        "%s %s" % kv for kv in sorted(r["weights_at_failure"]["weights"].items()))) \
        if r and r.get("weights_at_failure") else "configured (100 each)"
    rows.append(["weights when be1 failed", w(a), w(b)])
    rows.append(["leader", a.get("leader") or "- (no cluster)", b.get("leader") or "-"])
    L += ["  " + x for x in table(rows, ["", "without the cluster", "with the cluster"])]
    L.append("")

    # Chapter 2
    L.append("Chapter 2: a single host's path cut does not drain a healthy backend")
    L.append("  per VM %s connections to volume 1 (be1..be3) and %s to volume 2 (be2, be3)"
             % (d.config.get("n1"), d.config.get("n2b")))
    names = {"2a": "2a: h1's paths to be2 cut, cluster", "2b": "2b: the same cut, no cluster",
             "2c": "2c: be2's server stops, cluster"}
    cols = [k for k in ("2a", "2b", "2c") if c2.get(k)]
    rows = []
    for h in d.hosts:
        row = [h + ": decisions on be2 (time to the first)"]
        for k in cols:
            hv = (c2[k].get("hosts") or {}).get(h)
            if not hv or not hv["decisions"]:
                row.append("none")
            else:
                seen = []
                for e in hv["decisions"]:
                    e = e.replace("backend-", "")
                    if e not in seen:
                        seen.append(e)
                row.append("%s (%s)" % (", ".join(seen), fmt_s(hv["reaction_s"])))
        rows.append(row)
    rows.append(["hosts that drained be2"] +
                [" ".join(c2[k].get("drained_on") or []) or "none" for k in cols])
    rows.append(["connections reset by vsn (RST sent)"] +
                [per_host(c2[k], "connections_reset_by_vsn") for k in cols])
    rows.append(["connections the VMs lost"] + [per_host(c2[k], "lost_by_vm") for k in cols])
    rows.append(["leader"] + [c2[k].get("leader") or "- (no cluster)" for k in cols])
    for be in d.backends:
        rows.append(["%s before -> final (max, over)" % be] + [
            ("%d -> %d (%d, %.0f %%)" % (f["before"], f["final"], f["max"], f["max_overload_pct"])
             if f else "-")
            for f in ((c2[k].get("backends") or {}).get(be) for k in cols)])
    L += ["  " + x for x in table(rows, [""] + [names[k] for k in cols])]
    L.append("")

    bad = checks_text([("1a", a), ("1b", b)] + [(k, c2[k]) for k in cols])
    n_ok = sum(1 for c in summary["checks"] if c["ok"])
    if bad:
        L.append("Premises and outcomes: %d of %d held; these did not:" %
                 (n_ok, len(summary["checks"])))
        L += bad
    else:
        L.append("Premises and outcomes: all %d held (the list is in summary.json)." % n_ok)
    text = "\n".join(L) + "\n"
    (out / "summary.txt").write_text(text)
    print(text, end="")

    # Plots: connections over time, a panel per phase, the events marked
    # (each host's decisions of one kind grouped into one mark).
    def panels(phs, titles, series_of, hline, same_t=False):
        res = []
        for ph in phs:
            p = d.phases.get(ph)
            if not p:
                continue
            t0 = p["t0"]
            t1 = d.ev(ph, "end") or p["t1"]
            win = d.window(t0, t1)
            evs = [(t - t0, txt) for t, pp, k, txt in d.events
                   if pp == ph and k not in ("phase", "leader", "config", "end")]
            groups = {}
            for h in d.hosts:
                for x in d.log_lines(h, t0, t1, lambda x: x.get("event") in
                                     ("drain", "backend-suspect-local", "backend-quorum")):
                    groups.setdefault((x["event"], x["backend"]), []).append((x["ts"] - t0, h))
            for (e, b), hs in groups.items():
                hs.sort()
                evs.append((hs[0][0], "%s be%s on %s (until %.1f s)"
                            % (e, b, ", ".join(h for _, h in hs), hs[-1][0])))
            evs.sort()
            res.append({"title": titles[ph], "series": series_of(win, t0), "events": evs,
                        "hline": hline, "tmax": max(1.0, t1 - t0)})
        if same_t and res:
            tmax = max(r["tmax"] for r in res)
            for r in res:
                r["tmax"] = tmax
        return res

    def per_backend(win, t0):
        return {b: [(s["ts"] - t0, s["be"].get(b, 0)) for s in win] for b in d.backends}

    def on_be2(win, t0):
        return {"%s on be2" % h: [(s["ts"] - t0, s["by_host"].get(h, {}).get("be2", 0))
                                  for s in win] for h in d.hosts}
    (out / "connections.svg").write_text(svgplot.timelines(
        "Chapter 1: connections per backend (all hosts' VMs together); be1's server stops",
        "connections",
        panels(["1a", "1b"], {"1a": "without the cluster: each host alone",
                              "1b": "with the cluster: the leader's headroom weights"},
               per_backend, (cap, "capacity %s (every backend)" % cap), same_t=True)))
    (out / "chapter2.svg").write_text(svgplot.timelines(
        "Chapter 2: each host's VM's connections on be2", "connections",
        panels(["2a", "2b", "2c"], names, on_be2, None)))
    return 0


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "sample":
        try:
            sample(sys.argv[2], sys.argv[3])
        except KeyboardInterrupt:
            pass
        return 0
    if len(sys.argv) == 3 and sys.argv[1] == "report":
        return report(sys.argv[2])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
