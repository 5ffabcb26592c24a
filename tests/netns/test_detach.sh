#!/bin/bash
# vsn detach under a running daemon, and the attach that follows.  The daemon
# keeps its maps open, so before this every change it was asked for
# "succeeded" on maps no program read any more.
#
# Topology: tests/lib/topo.sh with prefix vdt, vsn in vdt-hv (pin dir
# /sys/fs/bpf/vdt), the daemon there with its socket, log and textfile in
# this run's directory.
#
#  1. the daemon runs on an attached datapath: status says attached, the
#     metric vsn_datapath_attached is 1, a transfer through the VIP works.
#  2. vsn detach: it warns that a daemon runs, and detaches.
#  3. within a tick or two the daemon says detached: 'vsn status' (through
#     the API), 'vsn daemon status', its log, vsn_datapath_attached 0 (the
#     textfile passes promtool).
#  4. apply, route set, route del, backend set are refused, naming the fix.
#  5. vsn attach: the daemon re-opens the new maps and re-applies its
#     config by itself (volumes back, the operator's pinned route kept),
#     says attached, the metric is 1, route set works, a transfer works.
#  6. programs removed behind vsn's back (tc filter del) count as detached
#     too; putting them back (vsn attach) recovers without new maps.
#
# Output: "ok N - ..." / "not ok N - ..." lines, diagnostics prefixed "# ".
# Needs root, jq, promtool.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
ROOT=$PWD

P=vdt
PIN=/sys/fs/bpf/vdt
VSN=$ROOT/build/vsn
PY=/usr/bin/python3
TCPX=$ROOT/tests/netns/tcpx.py
VIP=192.168.100.10
T=$(mktemp -d /tmp/vdt-test.XXXXXX)
SOCK=$T/vsn.sock
DLOG=$T/decisions.log
PROM=$T/vsn.prom
START=$(date +%s)
DPID=
SERVER_PIDS=()

. tests/lib/tap.sh
. tests/lib/netns.sh

vsn() { hv env VSN_SOCKET="$SOCK" "$VSN" --pin-dir "$PIN" "$@"; }

cleanup() {
	if [ -n "$DPID" ]; then
		kill "$DPID" 2>/dev/null
		wait "$DPID" 2>/dev/null
	fi
	netns_down "${SERVER_PIDS[@]}"
	echo "# runtime $(($(date +%s) - START))s"
}
trap cleanup EXIT
trap "exit 1" INT TERM

# jt JSON FILTER: jq -e on a non-empty string.
# until_ok SECONDS CMD...: CMD succeeds within SECONDS.
until_ok() {
	local i n=$(($1 * 20))
	shift
	for ((i = 0; i < n; i++)); do
		"$@" && return 0
		sleep 0.05
	done
	return 1
}
daemon_up() { jt "$(vsn -j daemon status 2>/dev/null)" .ticks; }
daemon_attached() { jt "$(vsn -j daemon status)" ".datapath.attached == $1"; }
metric_is() { grep -qx "vsn_datapath_attached $1" "$PROM" 2>/dev/null; }
# xfer NAME: 1 MB each way through the VIP, intact.
xfer() {
	ip netns exec "$P-vm" "$PY" "$TCPX" client --dst "$VIP" --port 4420 --up 1000000 \
		--down 1000000 --timeout 15 >"$T/$1.json" 2>"$T/$1.err" &&
		"$PY" "$TCPX" verify "$T/$1.json" be1="$T/be1.log" >/dev/null && return 0
	echo "# $1: $(head -c 300 "$T/$1.json" "$T/$1.err")"
	return 1
}
# refused DESC CMD...: exits non-zero, the error names the fix (vsn attach).
refused() {
	local d=$1 rc
	shift
	"$@" >"$T/out" 2>"$T/err"
	rc=$?
	check "$d: refused (exit $rc)" test $rc -ne 0
	if grep -q "not attached.*vsn attach" "$T/err"; then
		ok "$d: the error says the datapath is detached and names 'vsn attach'"
	else
		nok "$d: the error says the datapath is detached and names 'vsn attach'"
		cat "$T/out" "$T/err" | head -3 | diag
	fi
}

netns_up
F0_MAC=$(nsx fab cat /sys/class/net/f0/address)
cat >"$T/cfg.yaml" <<EOF
vms:
  - {name: vm1, id: 1, interface: vmif, addresses: [10.0.0.2, "2001:db8::2"]}
uplinks:
  - {interface: up0}
  - {interface: up1}
paths:
  - {id: 1, uplink: up0, next_hop: "$F0_MAC"}
  - {id: 2, uplink: up0, next_hop: fib}
backends:
  - {id: 1, name: be1, address: 10.3.1.2, port: 4420, paths: [1, 2]}
volumes:
  - {id: 1, vm: vm1, address: $VIP, port: 4420, backends: [1]}
controller: {socket: $SOCK, metrics_dir: $T, tick_ms: 100, metrics_interval_ms: 100}
EOF
ip netns exec "$P-be1" "$PY" "$TCPX" server --port 4420 --log "$T/be1.log" &
SERVER_PIDS+=($!)
until_ok 5 grep -qs listening "$T/be1.log" || fatal "server in $P-be1 did not start"

echo "# 1. the daemon on an attached datapath"
vsn attach --vm vmif --uplink up0,up1 2>&1 | diag
[ "${PIPESTATUS[0]}" -eq 0 ] || fatal "vsn attach"
nsenter --net="/run/netns/$P-hv" env VSN_SOCKET="$SOCK" "$VSN" --pin-dir "$PIN" \
	daemon -c "$T/cfg.yaml" --log "$DLOG" >>"$T/daemon.err" 2>&1 &
DPID=$!
until_ok 5 daemon_up || {
	diag <"$T/daemon.err"
	fatal "the daemon starts and answers"
}
check "the daemon sees the datapath attached" until_ok 2 daemon_attached true
check "vsn -j status: the daemon's view, attached" \
	jt "$(vsn -j status)" '.daemon.running and .daemon.datapath.attached'
check "metric vsn_datapath_attached 1" until_ok 3 metric_is 1
check "a transfer through the VIP" xfer before
vsn route set 1 1 1 2 2>&1 | diag
check "an operator pins route vm 1 volume 1 backend 1 to path 2" \
	jt "$(vsn -j show routes)" 'any(.[]; .path == 2)'

echo "# 2. vsn detach under the daemon"
vsn detach >"$T/detach.out" 2>&1
rc=$?
diag <"$T/detach.out"
check "detach: exit 0 ($rc)" test $rc -eq 0
check "detach warns that a daemon answers on its socket" \
	grep -q "warning: a vsn daemon answers on $SOCK" "$T/detach.out"
check "detach removed the pins" test ! -e "$PIN"

echo "# 3. the daemon notices"
check "vsn daemon status: datapath not attached (within 2 s)" until_ok 2 daemon_attached false
vsn -j daemon status | jq -c .datapath | diag
vsn status >"$T/status.txt" 2>&1
diag <"$T/status.txt"
check "vsn status: the daemon sees the datapath DETACHED" grep -q "DETACHED" "$T/status.txt"
check "vsn -j status: attached false, and the daemon's view says so too" \
	jt "$(vsn -j status)" '.attached == false and .daemon.running and .daemon.datapath.attached == false'
check "the log has a datapath-detached event" grep -q '"event":"datapath-detached"' "$DLOG"
check "metric vsn_datapath_attached 0" until_ok 3 metric_is 0
check "promtool check metrics accepts the textfile" eval 'promtool check metrics <"$PROM" >/dev/null 2>&1'

echo "# 4. changes refused"
refused "apply" vsn apply "$T/cfg.yaml"
refused "route set" vsn route set 1 1 1 1
refused "route del" vsn route del 1 1 1
refused "backend set" vsn backend set 1 draining
check "the daemon still runs" kill -0 "$DPID"

echo "# 5. vsn attach: the daemon recovers by itself"
vsn attach --vm vmif --uplink up0,up1 2>&1 | diag
check "attach: exit 0" test "${PIPESTATUS[0]}" -eq 0
check "vsn daemon status: attached again (within 2 s)" until_ok 2 daemon_attached true
check "the log has a datapath-attached event with the config re-applied" \
	grep -q '"event":"datapath-attached","maps":"new: config re-applied"' "$DLOG"
check "the new maps hold the config (volume $VIP)" \
	jt "$(vsn -j show volumes)" "any(.[]; .address == \"$VIP\")"
check "the operator's pinned route survived (path 2)" \
	jt "$(vsn -j show routes)" 'any(.[]; .path == 2)'
check "metric vsn_datapath_attached 1" until_ok 3 metric_is 1
vsn route set 1 1 1 1 >"$T/out" 2>&1
check "route set works again" eval 'test $? -eq 0 && grep -q pinned "$T/out"'
check "a transfer through the VIP after the re-attach" xfer after

echo "# 6. programs removed behind vsn's back"
hv tc filter del dev vmif ingress
check "the daemon notices the missing TC program (within 3 s)" until_ok 3 daemon_attached false
check "...and says which" jt "$(vsn -j daemon status)" '.datapath.why | test("vmif")'
refused "route set with vmif's program gone" vsn route set 1 1 1 2
vsn attach --vm vmif --uplink up0,up1 2>&1 | diag
check "attach puts it back: attached again (within 3 s)" until_ok 3 daemon_attached true
check "the log says the maps were kept" grep -q '"event":"datapath-attached","maps":"kept"' "$DLOG"
echo "1..$n"
[ "$failed" -eq 0 ]
