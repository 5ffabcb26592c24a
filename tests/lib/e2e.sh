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

# The namespaces $P-hv and $P-fab and vsn's pins under $PIN, gone ($VSN is
# the vsn command line run inside $P-hv).
e2e_remove_env() {
	if [ -e "/run/netns/$P-hv" ] && [ -d "$PIN" ]; then
		$VSN detach >/dev/null 2>&1 || true
	fi
	ip netns del "$P-hv" 2>/dev/null
	ip netns del "$P-fab" 2>/dev/null
	[ -d "$PIN" ] && rm -rf "$PIN"
	return 0
}

# Before a suite: bpffs, leftovers of an aborted run (the suite's own
# cleanup), a fresh $OUT, and the testbed built or taken from its cache.
e2e_prepare() {
	local t
	mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
	cleanup
	rm -rf "$OUT"
	mkdir -p "$OUT"
	[ -x build/vsn ] || bail "build/vsn exists (run make first)"
	t=$(date +%s%N)
	bash scripts/testbed/build.sh >"$OUT/testbed-build.log" 2>&1 ||
		bail "testbed builds (scripts/testbed/build.sh)" "$OUT/testbed-build.log"
	echo "# testbed ready in $(secs "$t") s: $(tail -1 "$OUT/testbed-build.log")"
}
