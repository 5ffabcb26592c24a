# Shared by the QEMU end-to-end suites (sourced once P, T_START and OUT are
# set): TAP output, timing, namespace shortcuts and the fatal-setup exit.
. tests/lib/tap.sh

# Seconds since a $(date +%s%N) stamp, one decimal.
secs() { awk -v a="$1" -v b="$(date +%s%N)" 'BEGIN {printf "%.1f", (b - a) / 1e9}'; }
hx() { ip netns exec "$P-hv" "$@"; }
fx() { ip netns exec "$P-fab" "$@"; }

bail() { # DESCRIPTION [LOG]: a fatal setup error: report it, clean up, fail
	nok "$1"
	[ -n "${2:-}" ] && [ -f "$2" ] && tail -25 "$2" | diag
	[ -n "${OUT:-}" ] && echo "# captures and logs kept in $OUT"
	echo "# wall time $(secs "$T_START") s"
	exit 1
}
