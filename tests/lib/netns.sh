# What the network-namespace suites on the standard topology share (sourced
# after tests/lib/tap.sh, from the repository root).  The suite sets P (the
# namespace prefix), PIN (vsn's pin directory), VSN (the binary) and T (its
# scratch directory), and defines vsn(), which runs $VSN in $P-hv.

NETNS_TOPO=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/topo.sh
# shellcheck source=tests/lib/checks.sh
. "$(dirname "$NETNS_TOPO")/checks.sh"

# nsx NS CMD...: run in $P-NS (ip netns exec: fine for non-BPF tools).
nsx() {
	local ns=$1
	shift
	ip netns exec "$P-$ns" "$@"
}
# hv CMD...: run in $P-hv without ip netns exec's /sys remount, so that
# /sys/fs/bpf stays visible.
hv() { nsenter --net="/run/netns/$P-hv" "$@"; }

# fatal TEXT: a setup step failed; the suite cannot go on.
fatal() {
	nok "$*"
	echo "1..$n"
	exit 1
}

# netns_rm_pins: what is left under $PIN (the suite's own pins).
netns_rm_pins() {
	[ -d "$PIN" ] || return 0
	rm -f "$PIN"/*
	rmdir "$PIN" 2>/dev/null
}

# netns_up: root, vsn built, bpffs mounted, leftovers of an aborted run
# removed, the standard topology (tests/lib/topo.sh) up.
netns_up() {
	[ "$(id -u)" = 0 ] || fatal "must run as root"
	[ -x "$VSN" ] || fatal "$VSN not built (run make)"
	mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
	P=$P bash "$NETNS_TOPO" down
	netns_rm_pins
	P=$P bash "$NETNS_TOPO" up || fatal "topology setup"
}

# netns_down PID...: stop those processes, detach vsn, take the topology
# down, remove the pins detach left (if it failed) and $T.  For the EXIT
# trap, so that a failed or interrupted run cleans up too.
netns_down() {
	local p
	for p in "$@"; do kill "$p" 2>/dev/null; done
	for p in "$@"; do wait "$p" 2>/dev/null; done
	if [ -e "/run/netns/$P-hv" ] && [ -d "$PIN" ]; then
		vsn detach >/dev/null 2>&1
	fi
	P=$P bash "$NETNS_TOPO" down
	netns_rm_pins
	rm -rf "$T"
}
