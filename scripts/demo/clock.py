#!/usr/bin/python3
"""Guest clock minus host clock, for `make demo`.

The guest appends `$EPOCHREALTIME` lines to FILE (in its shared directory)
every ~50 ms; this polls FILE and, for each new line, takes guest time minus
the host time it was first seen.  That difference is never above the true
offset (the line was written before it was seen), so the largest one is the
best estimate, good to about the poll interval.  Prints the offset in seconds
(guest - host), or nothing when fewer than 3 lines came within TIMEOUT.
Usage: clock.py FILE COUNT [TIMEOUT_S]
"""
import sys
import time


def main():
    path, count = sys.argv[1], int(sys.argv[2])
    end = time.time() + (float(sys.argv[3]) if len(sys.argv) > 3 else 15)
    best, seen = None, 0
    while time.time() < end and seen < count:
        try:
            with open(path) as f:
                lines = f.read().split("\n")[:-1]  # the last one may be partial
        except OSError:
            lines = []
        now = time.time()
        for line in lines[seen:]:
            try:
                d = float(line) - now
            except ValueError:
                continue
            best = d if best is None or d > best else best
        seen = max(seen, len(lines))
        time.sleep(0.004)
    if best is not None and seen >= 3:
        print("%.4f" % best)


if __name__ == "__main__":
    main()
