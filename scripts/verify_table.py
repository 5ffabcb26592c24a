#!/usr/bin/env python3
"""The verifier budget table, program x kernel, from scripts/verify.sh's
results (build/verify/*.json, one per kernel: `vsn -j verify` output plus
when and with which build of vsn it was measured).

    verify_table.py --dir build/verify [--budget N] [--build ID] [--markdown]
"""
import argparse
import glob
import json
import os
import time


def load(d):
    res = []
    for path in sorted(glob.glob(os.path.join(d, "*.json"))):
        try:
            r = json.load(open(path))
        except (OSError, ValueError):
            continue
        if "programs" in r:
            res.append(r)
    # the host first, then the guests by kernel name
    res.sort(key=lambda r: (not r["kernel"].startswith("host"), r["kernel"]))
    return res


def cell(p, budget):
    if not p["loaded"]:
        return "REFUSED"
    mark = "" if p["insns"] <= budget else " OVER"
    return "%d (%.1f%%)%s" % (p["insns"], 100.0 * p["insns"] / budget, mark)


def age(r):
    s = time.time() - r.get("measured_at", 0)
    if s < 120:
        return "now"
    if s < 7200:
        return "%d min ago" % (s / 60)
    if s < 172800:
        return "%d h ago" % (s / 3600)
    return "%d days ago" % (s / 86400)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", default="build/verify")
    ap.add_argument("--budget", type=int, default=250000)
    ap.add_argument("--build", default="")
    ap.add_argument("--markdown", action="store_true")
    a = ap.parse_args()
    res = load(a.dir)
    if not res:
        print("no results in %s (run scripts/verify.sh)" % a.dir)
        return
    progs = []
    for r in res:
        for p in r["programs"]:
            if p["program"] not in progs:
                progs.append(p["program"])
    heads = []
    for r in res:
        note = age(r)
        if a.build and r.get("build") and r["build"] != a.build:
            note += ", older build"
        heads.append("%s [%s]" % (r["kernel"], note))
    rows = []
    for name in progs:
        row = [name]
        for r in res:
            p = next((q for q in r["programs"] if q["program"] == name), None)
            row.append(cell(p, a.budget) if p else "-")
        rows.append(row)
    title = ("Processed instructions per program (budget %d, a quarter of the "
             "verifier's limit of 1,000,000)" % a.budget)
    if a.markdown:
        print(title + "\n")
        print("| program | " + " | ".join(heads) + " |")
        print("|---" * (len(heads) + 1) + "|")
        for row in rows:
            print("| " + " | ".join(row) + " |")
    else:
        print(title + ":\n")
        w = [max(len(x) for x in col) for col in zip(["program"] + heads, *rows)]
        print("  ".join(h.ljust(w[i]) for i, h in enumerate(["program"] + heads)))
        for row in rows:
            print("  ".join(c.ljust(w[i]) for i, c in enumerate(row)))
    # the detail per kernel: states, stack, size
    print("")
    for r in res:
        print("%s%s:" % ("" if not a.markdown else "- ", r["kernel"]))
        for p in r["programs"]:
            print("%s  %-15s peak states %6d, most per insn %3d, stack %-24s "
                  "xlated %6d B, jited %6d B, %d us" % (
                      "" if not a.markdown else "  ", p["program"], p["peak_states"],
                      p["max_states_per_insn"], p["stack"], p["xlated"], p["jited"],
                      p["time_us"]))


if __name__ == "__main__":
    main()
