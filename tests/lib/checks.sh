# Small helpers the shell tests share (sourced by tests/lib/netns.sh, and
# by e2e tests that need them): time arithmetic and JSON checks.

# now: the wall clock, seconds with nanoseconds (the decision log's ts).
now() { date +%s.%N; }
# sub A B: A - B (seconds, 3 decimals); lt A B: A < B (floats).
sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a - b }'; }
lt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 < b + 0) }'; }
# jt JSON FILTER: jq -e on a non-empty string (jq 1.6 -e passes on no input).
jt() { [ -n "$1" ] && jq -e "$2" >/dev/null 2>&1 <<<"$1"; }

# The daemon's decision log, in $DLOG (one JSON object per line).
loglines() { wc -l <"$DLOG" 2>/dev/null || echo 0; }
# logq FROM FILTER: the lines after line FROM that the jq FILTER selects,
# one compact JSON object per line.
logq() { tail -n +"$(($1 + 1))" "$DLOG" | jq -cR "fromjson? | select($2)"; }
# wait_log FROM FILTER SECONDS: the first such line, waiting for it.
wait_log() {
	local line i
	for ((i = 0; i <= $3 * 20; i++)); do
		line=$(logq "$1" "$2" | sed -n 1p)
		if [ -n "$line" ]; then
			echo "$line"
			return 0
		fi
		sleep 0.05
	done
	return 1
}
