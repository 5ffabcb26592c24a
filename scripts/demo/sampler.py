#!/usr/bin/python3
"""Sample vsn's counters for `make demo`: every INTERVAL seconds, one TSV line

    host_time  path1_bytes  path2_bytes  backend1_bytes  backend2_bytes  backend3_bytes

(paths: bytes vsn forwarded towards storage on that path; backends: both
directions).  Usage: sampler.py OUT.tsv INTERVAL VSN-COMMAND...  (the command
prints `vsn -j show counters`).  Runs until killed; a failed read is skipped.
"""
import json
import signal
import subprocess
import sys
import time


def read(cmd):
    try:
        out = subprocess.run(cmd, capture_output=True, timeout=5, check=True).stdout
        j = json.loads(out)
    except (subprocess.SubprocessError, ValueError):
        return None
    paths, bes = j.get("paths", {}), j.get("backends", {})
    return ([paths.get(str(p), {}).get("bytes", 0) for p in (1, 2)] +
            [bes.get(str(b), {}).get("bytes", 0) for b in (1, 2, 3)])


def main():
    out, interval, cmd = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    nxt = time.time()
    with open(out, "a", buffering=1) as f:
        while True:
            v = read(cmd)
            if v is not None:
                f.write("%.3f\t%s\n" % (time.time(), "\t".join(map(str, v))))
            nxt += interval
            time.sleep(max(0.0, nxt - time.time()))


if __name__ == "__main__":
    main()
