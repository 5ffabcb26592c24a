#!/usr/bin/python3
"""Summarise a `make demo-netns` run (scripts/demo_netns.sh): per-phase
throughput and a per-path plot.

Reads, from the output directory: paths.tsv (time, bytes on path 1, path 2,
sampled from vsn's per-path counters), events.tsv (time, what happened) and
client.log (iperf3 interval lines).  Writes summary.txt and paths.svg there.
"""
import re
import sys
from pathlib import Path


def load_tsv(path):
    rows = []
    for line in path.read_text().splitlines():
        parts = line.split("\t")
        if len(parts) >= 2:
            rows.append(parts)
    return rows


def rates(samples):
    """Per-interval Mbit/s on each path from cumulative byte counters."""
    out = []
    for (t0, a0, b0), (t1, a1, b1) in zip(samples, samples[1:]):
        dt = t1 - t0
        if dt <= 0:
            continue
        out.append((t1, (a1 - a0) * 8 / dt / 1e6, (b1 - b0) * 8 / dt / 1e6))
    return out


def svg(series, events, t0, path):
    w, h, pad = 900, 320, 50
    tmax = max((s[0] - t0 for s in series), default=1) or 1
    ymax = max((max(s[1], s[2]) for s in series), default=1) or 1
    x = lambda t: pad + (t - t0) / tmax * (w - 2 * pad)
    y = lambda v: h - pad - v / ymax * (h - 2 * pad)
    lines = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
             'font-family="sans-serif" font-size="11">',
             f'<rect width="{w}" height="{h}" fill="white"/>',
             f'<text x="{pad}" y="20" font-size="14">vsn demo: throughput per path '
             f'(Mbit/s, from vsn counters)</text>',
             f'<line x1="{pad}" y1="{h-pad}" x2="{w-pad}" y2="{h-pad}" stroke="black"/>',
             f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{h-pad}" stroke="black"/>',
             f'<text x="5" y="{pad}">{ymax:.0f}</text>',
             f'<text x="{w-pad}" y="{h-pad+15}">{tmax:.0f} s</text>']
    for idx, colour, name in ((1, "#1f77b4", "path 1 (up0)"), (2, "#d62728", "path 2 (up1)")):
        pts = " ".join(f"{x(s[0]):.1f},{y(s[idx]):.1f}" for s in series)
        lines.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{pts}"/>')
        lines.append(f'<text x="{w-pad-120}" y="{pad + 15*idx}" fill="{colour}">{name}</text>')
    for i, (t, what) in enumerate(events):
        ex = x(t)
        lines.append(f'<line x1="{ex:.1f}" y1="{pad}" x2="{ex:.1f}" y2="{h-pad}" '
                     'stroke="gray" stroke-dasharray="4,3"/>')
        lines.append(f'<text x="{ex+3:.1f}" y="{pad + 12 + 12*(i % 4)}" fill="gray">'
                     f'{i+1}</text>')
    lines.append("</svg>")
    path.write_text("\n".join(lines) + "\n")


def main():
    out = Path(sys.argv[1])
    samples = [(float(r[0]), int(r[1]), int(r[2])) for r in load_tsv(out / "paths.tsv")]
    events = [(float(r[0]), r[1]) for r in load_tsv(out / "events.tsv")]
    series = rates(samples)
    if not series:
        print("demo: no samples recorded", file=sys.stderr)
        return 1
    t0 = samples[0][0]
    bounds = [t0] + [t for t, _ in events] + [samples[-1][0]]
    names = ["baseline"] + [what for _, what in events]
    report = ["", "phase                                                    path1 Mbit/s  path2 Mbit/s"]
    for i, name in enumerate(names):
        a, b = bounds[i], bounds[i + 1]
        inside = [s for s in series if a < s[0] <= b]
        if not inside:
            continue
        p1 = sum(s[1] for s in inside) / len(inside)
        p2 = sum(s[2] for s in inside) / len(inside)
        report.append(f"{i}. {name[:52]:<54} {p1:>10.0f}  {p2:>12.0f}")
    # Longest stretch with no bytes on either path while the client ran.
    stall, cur = 0.0, 0.0
    for (t_prev, *_), (t, r1, r2) in zip(series, series[1:]):
        cur = cur + (t - t_prev) if r1 + r2 < 0.01 else 0.0
        stall = max(stall, cur)
    report.append(f"longest stall on both paths: {stall:.2f} s")
    client = (out / "client.log").read_text() if (out / "client.log").exists() else ""
    m = re.findall(r"([\d.]+) (\w)bits/sec.*(sender|receiver)", client)
    if m:
        report.append("iperf3 totals: " + ", ".join(f"{v} {u}bit/s {who}" for v, u, who in m))
    lost = "Connection reset" in client or "error" in client.lower()
    report.append("connection survived every path change: " + ("NO" if lost else "yes"))
    srv2 = (out / "server-be2.log")
    if srv2.exists() and "Accepted connection" in srv2.read_text():
        report.append("after target-1 failed, the new connection was served by target-2: yes")
    for i, (_, what) in enumerate(events):
        report.append(f"  event {i+1}: {what}")
    svg(series, events, t0, out / "paths.svg")
    report.append(f"plot: {out/'paths.svg'}; raw data in {out}/")
    text = "\n".join(report)
    print(text)
    (out / "summary.txt").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
