#!/bin/bash
# make bench: the performance figures of issue 6, each against a baseline
# measured in the same run.  Runs every part, or only those named:
#   scripts/bench.sh [pkt] [tput] [react] [scale] [guest] [cluster]
# (make bench PART=NAME).  Each part writes build/bench/PART.json; the
# report (build/bench/report.md, report.json, *.svg) combines whatever parts
# have results and prints the table of targets.  A full run clears the old
# results first.  Exit status: non-zero when a part failed to run (a missed
# target is a result, not a failure).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
PY=/usr/bin/python3
BUILD=${BUILD:-build}
OUT=$BUILD/bench
ALL=(pkt tput react scale guest cluster)

parts=("$@")
if [ ${#parts[@]} -eq 0 ]; then
	parts=("${ALL[@]}")
	for p in "${ALL[@]}"; do rm -f "$OUT/$p.json"; done
fi
[ "$(id -u)" = 0 ] || { echo "bench: must run as root (namespaces, BPF)" >&2; exit 1; }
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
mkdir -p "$OUT"

failed=()
start=$(date +%s)
# The verifier budget on this kernel first: the report's table (with the
# guests' figures from their last e2e or make verify run).
echo "== verifier budget (scripts/verify.sh)"
bash scripts/verify.sh --kernels host || failed+=(verify)
for p in "${parts[@]}"; do
	case $p in
	pkt) cmd=("$PY" tests/bench/pkt_cost.py) ;;
	tput) cmd=("$PY" tests/bench/tput.py) ;;
	react) cmd=("$PY" tests/bench/react.py) ;;
	scale) cmd=("$PY" tests/bench/scale.py) ;;
	guest) cmd=(bash tests/bench/guest.sh) ;;
	cluster) cmd=("$PY" tests/bench/cluster.py) ;;
	*)
		echo "bench: unknown part '$p' (parts: ${ALL[*]})" >&2
		exit 2
		;;
	esac
	echo "== bench part $p"
	# In the background, so that an interrupted run stops the part too
	# (each part cleans up after itself on SIGTERM).
	"${cmd[@]}" &
	child=$!
	trap 'kill -TERM $child 2>/dev/null; wait $child; exit 130' INT TERM
	wait $child || failed+=("$p")
	trap - INT TERM
done
echo "== report ($(($(date +%s) - start)) s in all)"
"$PY" tests/bench/report.py || failed+=(report)
if [ ${#failed[@]} -ne 0 ]; then
	echo "bench: these parts did not complete: ${failed[*]} (see their output above)" >&2
	exit 1
fi
