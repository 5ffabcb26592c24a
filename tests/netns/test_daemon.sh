#!/bin/bash
# The controller daemon (vsn daemon) against real failures, in network
# namespaces: the standard topology (tests/lib/topo.sh, prefix vdm), vsn
# attached in vdm-hv (pin dir /sys/fs/bpf/vdm), the daemon running there with
# its API socket, decision log and Prometheus textfile in this run's
# temporary directory.  Paths 1 = up0 and 2 = up1 by next-hop MAC (path 3 on
# up1 is one no backend may use); backends 1 = be1 and 2 = be2 behind the
# VIP, both over paths 1 and 2.  Transfers are tests/netns/tcpx.py: sha256 of
# every byte on both ends, so "completes intact" means exactly that.
#
#  1. start-up: status JSON; the socket is 0600 root and refuses non-root
#     clients (file mode and SO_PEERCRED); the textfile passes promtool.
#  2. a bad config through 'vsn apply' and bad API requests are refused
#     with a reason; the maps stay byte for byte as they were.
#  3. carrier loss under a transfer (routes pinned to path 1): failover in
#     one tick, routes on path 2, the transfer intact.
#  4. a silent cut (nft drop inside the fabric, carriers up): path failed
#     "silent" within 500 ms, the connection on path 2, no reset.
#  5. congestion (TBF on up0): the heaviest connection moves to path 2 and
#     runs faster than the TBF allows; closed connections are not "moved";
#     a transfer whose route an operator pinned is not moved.
#  6. backend failure (its port dropped by nft): without a health probe the
#     stall that follows it from path to path fails the backend, not the
#     paths; with health: tcp the probe fails it.  Either way: drain, the
#     client reset at once, new connections on the other backend.
#  7. kill -9 of the daemon under a transfer and a restart: nothing moves,
#     the transfer completes, the routes are unchanged.
#  8. SIGHUP: a changed valid config applied (tick_ms takes effect); invalid
#     ones rejected and logged, maps unchanged.
#  9. SIGTERM: the daemon stops cleanly and the datapath keeps forwarding.
#
# Output: "ok N - ..." / "not ok N - ..." lines, diagnostics prefixed "# ".
# Needs root, socat, jq, nft, promtool.  Exit status non-zero if anything failed.
# shellcheck disable=SC2154,SC2016 # PORT_x/CPID_x come from eval; check runs eval strings
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
ROOT=$PWD

P=vdm
PIN=/sys/fs/bpf/vdm
VSN=$ROOT/build/vsn
PY=/usr/bin/python3
TCPX=$ROOT/tests/netns/tcpx.py
MAPHASH=$ROOT/tests/cli/maphash.py
CHASH_LIVE=$ROOT/tests/netns/chash_live.py
VIP=192.168.100.10
TBF_MBIT=20

T=$(mktemp -d /tmp/vdm-test.XXXXXX)
# Traversable by others: what refuses a non-root client must be the
# socket's own mode, not its directory's.
chmod 755 "$T"
SOCK=$T/vsn.sock
DLOG=$T/decisions.log
DCFG=$T/daemon.yaml
PROM=$T/vsn.prom
START=$(date +%s)
DPID=
SERVER_PIDS=()
CLIENT_PIDS=()

. tests/lib/tap.sh
. tests/lib/netns.sh

# In the fabric without ip netns exec's /sys remount: for the timed faults.
nsf() { nsenter --net="/run/netns/$P-fab" "$@"; }
vsn() { hv env VSN_SOCKET="$SOCK" "$VSN" --pin-dir "$PIN" "$@"; }
# api JSON: one raw request on the daemon's socket; prints the reply line.
api() { printf '%s\n' "$1" | socat -t 5 - "UNIX-CONNECT:$SOCK"; }

# stop_daemon SIGNAL: signal the daemon, wait for it (5 s, then SIGKILL);
# DRC is its exit status.
stop_daemon() {
	local i
	kill "-$1" "$DPID" 2>/dev/null
	for ((i = 0; i < 100; i++)); do
		kill -0 "$DPID" 2>/dev/null || break
		sleep 0.05
	done
	kill -9 "$DPID" 2>/dev/null
	wait "$DPID" 2>/dev/null
	DRC=$?
	DPID=
}

cleanup() {
	[ -z "$DPID" ] || stop_daemon TERM
	netns_down "${CLIENT_PIDS[@]}" "${SERVER_PIDS[@]}"
	echo "# runtime $(($(date +%s) - START))s"
}
trap cleanup EXIT
trap "exit 1" INT TERM # so that an interrupted run cleans up too

# ------------------------------------------------------------ helpers

status() { api '{"cmd":"status"}'; }
# alive: the daemon process runs and answers on its socket.
alive() {
	kill -0 "$DPID" 2>/dev/null && jt "$(status)" '.ok == true and (.paths | length) == 3'
}

# daemon_start CONFIG: the daemon in vdm-hv, in the background (DPID is
# vsn itself: nsenter and env exec it); waits until it answers.
daemon_start() {
	nsenter --net="/run/netns/$P-hv" env VSN_SOCKET="$SOCK" "$VSN" --pin-dir "$PIN" \
		daemon -c "$1" --log "$DLOG" >>"$T/daemon.err" 2>&1 &
	DPID=$!
	for _ in $(seq 60); do
		kill -0 "$DPID" 2>/dev/null || return 1
		[ -S "$SOCK" ] && jt "$(status 2>/dev/null)" '.ok == true' && return 0
		sleep 0.05
	done
	return 1
}

# daemon_restart CONFIG: stop the daemon, start it again on a copy of
# CONFIG (DCFG, so that later restarts and reloads use it too).
daemon_restart() {
	stop_daemon TERM
	cp "$1" "$DCFG"
	daemon_start "$DCFG" || tail -3 "$T/daemon.err" | diag
}

# snap FILE [live]: sha256 of every key and value of the routing maps.  With
# "live", vsn_volumes and vsn_chash count by what the datapath reads (each
# volume's live table, tests/netns/chash_live.py), not by which half is live.
snap() {
	if [ "${2:-}" = live ]; then
		hv "$PY" "$MAPHASH" "$PIN/vsn_backends" "$PIN/vsn_paths" "$PIN/vsn_routes" \
			"$PIN/vsn_vm_if" "$PIN/vsn_ifaces" >"$1" 2>&1
		hv "$PY" "$CHASH_LIVE" "$PIN" >>"$1" 2>&1
	else
		hv "$PY" "$MAPHASH" "$PIN/vsn_volumes" "$PIN/vsn_backends" "$PIN/vsn_paths" \
			"$PIN/vsn_routes" "$PIN/vsn_vm_if" "$PIN/vsn_chash" "$PIN/vsn_ifaces" >"$1" 2>&1
	fi
}
# same_maps FILE [live]: the maps are as in the snapshot FILE.
same_maps() {
	snap "$1.now" "${2:-}"
	cmp -s "$1" "$1.now" && return 0
	diff "$1" "$1.now" | diag
	return 1
}

# vm_ports: source ports of the VM's established storage connections.
vm_ports() {
	nsx vm ss -tnH state established "( dport = :4420 )" | awk '{print $3}' | sed 's/.*://' |
		sort -n
}

# start NAME UP DOWN RATE [tcpx client options]: a client in the VM
# namespace, in the background (result in $T/NAME.json); PORT_NAME is its
# source port, CPID_NAME its process.
start() {
	local name=$1 up=$2 down=$3 rate=$4 before p=
	shift 4
	before=$(vm_ports)
	ip netns exec "$P-vm" "$PY" "$TCPX" client --dst "$VIP" --port 4420 --up "$up" \
		--down "$down" --rate "$rate" "$@" >"$T/$name.json" 2>"$T/$name.err" &
	eval "CPID_$name=$!"
	CLIENT_PIDS+=($!)
	for _ in $(seq 60); do
		p=$(vm_ports | grep -vxF -f <(echo "$before") | sed -n 1p)
		[ -n "$p" ] && break
		kill -0 "$!" 2>/dev/null || break # done already
		sleep 0.05
	done
	eval "PORT_$name=$p"
	[ -n "$p" ] || ! kill -0 "$!" 2>/dev/null || echo "# client $name: no connection seen"
}

# finish NAME: wait for the client; RC is its exit status, BE the server
# (be1/be2) that had the connection; 0 when both directions arrived intact.
finish() {
	local pid
	pid=$(eval echo "\$CPID_$1")
	BE=
	wait "$pid"
	RC=$?
	"$PY" "$TCPX" verify "$T/$1.json" be1="$T/be1.log" be2="$T/be2.log" >"$T/$1.verify"
	BE=$(grep -v '^#' "$T/$1.verify")
	grep '^#' "$T/$1.verify"
	if [ "$RC" -ne 0 ] || [ -z "$BE" ] || grep -q '^# verify' "$T/$1.verify"; then
		echo "# client $1 (exit $RC): $(cat "$T/$1.json" "$T/$1.err")"
		return 1
	fi
	return 0
}

# conn PORT: vsn's JSON view of the VM-side connection from PORT (the most
# recently active one, should a port have been used twice).
conn() {
	vsn -j show connections |
		jq -c --argjson p "$1" '[.[] | select(.sport == $p)] | sort_by(.idle_s) | .[0] // empty'
}
conn_path() { jq -r '.path // empty' <<<"$(conn "$1")"; }
# tx_bytes PORT: bytes the VM sent on it, as vsn counted them.
tx_bytes() {
	local b
	for _ in 1 2 3; do
		b=$(jq -r '.tx_bytes // empty' <<<"$(conn "$1")")
		[[ $b =~ ^[0-9]+$ ]] && break
		sleep 0.05
	done
	echo "${b:-0}"
}
# wait_path PORT PATH SECONDS: the connection reaches PATH.
wait_path() {
	local i
	for ((i = 0; i <= $3 * 20; i++)); do
		[ "$(conn_path "$1")" = "$2" ] && return 0
		sleep 0.05
	done
	return 1
}

# server_of PORT: which backend server (be1/be2) accepted the VM's
# connection from PORT, from the servers' own logs.
server_of() {
	local b
	for _ in $(seq 30); do
		for b in be1 be2; do
			if grep -q "\"peer\": \"10\.0\.0\.2:$1\"" <<<"$(grep '"event": "accept"' "$T/$b.log")"; then
				echo "$b"
				return
			fi
		done
		sleep 0.1
	done
}

# pins_on N PATH: the daemon holds N operator pins, all on PATH.
pins_on() {
	jt "$(status)" "(.pinned_routes | length) == $1 and all(.pinned_routes[]; .path == $2)"
}
routes_all_on() { # PATH: every route of the maps is on PATH
	jt "$(vsn -j show routes)" "length > 0 and all(.[]; .path == $1)"
}
pin_routes() { # PATH: the operator pins both routes of volume 1 to PATH
	vsn route set 1 1 1 "$1" >/dev/null && vsn route set 1 1 2 "$1" >/dev/null
}

# write_cfg FILE [EXTRA_BACKEND_KEYS [EXTRA_CONTROLLER_KEYS]]
write_cfg() {
	local be=${2:+, $2} ctl=${3:+, $3}
	cat >"$1" <<EOF
vms:
  - {name: vm1, id: 1, interface: vmif, addresses: [10.0.0.2, "2001:db8::2"]}
uplinks:
  - {interface: up0, capacity: 10gbit}
  - {interface: up1, capacity: 10gbit}
paths:
  - {id: 1, uplink: up0, next_hop: "$F0_MAC"}
  - {id: 2, uplink: up1, next_hop: "$F1_MAC"}
  - {id: 3, uplink: up1, next_hop: "$F1_MAC", dscp: 10}
backends:
  - {id: 1, name: be1, address: 10.3.1.2, port: 4420, paths: [1, 2]$be}
  - {id: 2, name: be2, address: 10.3.2.2, port: 4420, paths: [1, 2]$be}
volumes:
  - {id: 1, vm: vm1, address: $VIP, port: 4420, backends: [1, 2]}
controller: {socket: $SOCK, metrics_dir: $T, tick_ms: 100, watch_ms: 20, silent_ms: 150,
  hold_down_ms: 1000, flap_window_ms: 1000, metrics_interval_ms: 200,
  health_interval_ms: 200, health_timeout_ms: 100$ctl}
EOF
}

# ------------------------------------------------------------------ setup

for tool in socat jq nft promtool setpriv; do
	command -v "$tool" >/dev/null || fatal "$tool is not installed (scripts/deps.sh)"
done
netns_up
# Replies to the VM side survive f0 going down (via f1).
nsx fab ip route add 10.0.0.0/24 via 10.2.0.1 metric 10
# Health probes leave vdm-hv from ports the VM never uses: the servers'
# logs (and tcpx.py verify) tell connections apart by the client's port.
nsx hv sysctl -qw net.ipv4.ip_local_port_range="20000 29999"
F0_MAC=$(nsx fab cat /sys/class/net/f0/address)
F1_MAC=$(nsx fab cat /sys/class/net/f1/address)

vsn attach --vm vmif --uplink up0,up1 2>&1 | diag
[ "${PIPESTATUS[0]}" -eq 0 ] || fatal "vsn attach --vm vmif --uplink up0,up1"
write_cfg "$T/base.yaml"
cp "$T/base.yaml" "$DCFG"

for b in be1 be2; do
	ip netns exec "$P-$b" "$PY" "$TCPX" server --port 4420 --log "$T/$b.log" &
	SERVER_PIDS+=($!)
done
for b in be1 be2; do
	for _ in $(seq 50); do
		grep -q listening "$T/$b.log" 2>/dev/null && break
		sleep 0.1
	done
	grep -q listening "$T/$b.log" 2>/dev/null || fatal "server in $P-$b did not start"
done

# ------------------------------------------------------- 1. start-up

echo "# 1. start-up"
daemon_start "$DCFG" || {
	diag <"$T/daemon.err"
	fatal "the daemon starts and answers on its socket"
}
ok "the daemon starts and answers on its socket"
check "the decision log opens with 'started' (3 paths, 2 backends)" \
	jt "$(logq 0 '.event == "started"' | sed -n 1p)" \
	'.reason == "reload" and .paths == 3 and .backends == 2 and .observe_only == false'
ST=$(vsn -j daemon status)
check "vsn daemon status: JSON with 2 uplinks with carrier, 3 healthy paths, 2 healthy backends" \
	jt "$ST" '.ok == true and (.uplinks | length) == 2 and all(.uplinks[]; .carrier) and
		(.paths | length) == 3 and all(.paths[]; .state == "healthy") and
		(.backends | length) == 2 and all(.backends[]; .state == "healthy") and
		(.pinned_routes | length) == 0 and (.reroutes | type) == "object" and
		(.decisions | length) >= 1'
check "the socket is a socket, mode 0600, owned by root:root ($(stat -c '%A %U:%G' "$SOCK"))" \
	test "$(stat -c '%F %a %U %G' "$SOCK")" = "socket 600 root root"
# A status request as uid/gid 65534: connect, send, read to EOF.
cat >"$T/uclient.py" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(3)
s.connect(sys.argv[1])
try:
    s.sendall(b'{"cmd":"status"}\n')
except OSError:
    pass  # a refusing daemon may have closed already; its answer is queued
data = b""
while True:
    try:
        b = s.recv(65536)
    except OSError:
        break
    if not b:
        break
    data += b
sys.stdout.write(data.decode())
EOF
nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
out=$(nobody "$PY" "$T/uclient.py" "$SOCK" 2>&1)
rc=$?
echo "$out" | tail -1 | diag
refused_by_mode() { [ $rc -ne 0 ] && grep -qi 'permission denied' <<<"$out" && ! grep -q uplinks <<<"$out"; }
check "a non-root client (uid 65534) cannot connect: permission denied by the socket's mode" \
	refused_by_mode
# The second lock: with the file mode opened up, SO_PEERCRED still refuses.
chmod 666 "$SOCK"
out=$(nobody "$PY" "$T/uclient.py" "$SOCK" 2>&1)
chmod 600 "$SOCK"
echo "$out" | head -2 | diag
check "with the socket opened to all, the daemon still refuses uid 65534 (ok:false, no state)" \
	jt "$out" '.ok == false and (.error | test("permission denied")) and (has("uplinks") | not)'
for _ in $(seq 40); do
	[ -s "$PROM" ] && break
	sleep 0.05
done
# promtool_ok FILE: a non-empty textfile that promtool accepts.
promtool_ok() {
	local rc
	[ -s "$1" ] || return 1
	promtool check metrics <"$1" >"$1.promtool" 2>&1
	rc=$?
	diag <"$1.promtool"
	return $rc
}
# family FILE NAME: a family with its TYPE line and at least one sample.
family() { grep -q "^# TYPE $2 " "$1" && grep -qE "^$2(\{| )" "$1"; }
cp "$PROM" "$T/prom.1" 2>/dev/null
check "promtool check metrics passes on vsn.prom" promtool_ok "$T/prom.1"
for f in vsn_path_bytes_total vsn_backend_health vsn_reroutes_total vsn_map_entries \
	vsn_daemon_tick_seconds vsn_ringbuf_dropped_total; do
	check "vsn.prom has the family $f with samples" family "$T/prom.1" "$f"
done

# ------------------------------------------- 2. bad config, bad requests

echo "# 2. bad config and bad API requests"
snap "$T/maps.2"
L=$(loglines)
sed 's/paths: \[1, 2\]}/paths: [1, 9]}/' "$T/base.yaml" >"$T/bad-ref.yaml"
sed 's/interface: vmif/interface: nosuch0/' "$T/base.yaml" >"$T/bad-if.yaml"
sed "s#socket: $SOCK#socket: $T/other.sock#" "$T/base.yaml" >"$T/bad-sock.yaml"
sed 's/tick_ms: 100/tick_ms: 5/' "$T/base.yaml" >"$T/bad-range.yaml"
# refused DESC REGEX CMD...: CMD exits non-zero and says REGEX.
refused() {
	local d=$1 re=$2 out rc
	shift 2
	out=$("$@" 2>&1)
	rc=$?
	echo "$out" | head -3 | diag
	if [ $rc -ne 0 ] && grep -qE "$re" <<<"$out"; then ok "$d"; else nok "$d (exit $rc)"; fi
}
refused "vsn apply: a backend on an unknown path is refused, naming file:line and the path" \
	'bad-ref\.yaml:[0-9]+: backends\[0\]\.paths\[1\]: unknown path 9' vsn apply "$T/bad-ref.yaml"
refused "vsn apply: a VM on a missing interface is refused, naming it" \
	"nosuch0" vsn apply "$T/bad-if.yaml"
refused "vsn apply: another controller.socket is refused, saying so" \
	'controller\.socket' vsn apply "$T/bad-sock.yaml"
refused "vsn apply: tick_ms out of range is refused, naming the key and its range" \
	'tick_ms.*10\.\.10000' vsn apply "$T/bad-range.yaml"
refused "vsn route set to a path the backend may not use is refused" \
	"path 3 is not one of backend 1's paths" vsn route set 1 1 1 3
# bad_req DESC REQUEST REGEX: the daemon answers ok:false with an error matching REGEX.
bad_req() {
	local out
	out=$(api "$2")
	echo "# $2 -> $out"
	check "$1" jt "$out" ".ok == false and (.error | test(\"$3\"))"
}
bad_req "API: a line that is not JSON -> ok:false" 'this is {not json' "not a JSON object"
bad_req "API: a JSON array -> ok:false" '[1, 2]' "not a JSON object"
bad_req "API: an unknown cmd -> ok:false naming it" '{"cmd":"frobnicate"}' "unknown cmd 'frobnicate'"
bad_req "API: no cmd -> ok:false" '{"vm":1}' "'cmd' is missing"
bad_req "API: route-set without path -> ok:false naming the field" \
	'{"cmd":"route-set","vm":1,"volume":1,"backend":1}' "'path' is missing"
bad_req "API: route-set with a string id -> ok:false" \
	'{"cmd":"route-set","vm":1,"volume":"one","backend":1,"path":1}' "'volume' is missing or not an integer"
bad_req "API: backend id out of range -> ok:false giving the range" \
	'{"cmd":"route-set","vm":1,"volume":1,"backend":99999999,"path":1}' "'backend' must be 0\\\\.\\\\.[0-9]+"
bad_req "API: negative path -> ok:false" \
	'{"cmd":"route-set","vm":1,"volume":1,"backend":1,"path":-1}' "'path' must be"
bad_req "API: route to a path the backend may not use -> ok:false" \
	'{"cmd":"route-set","vm":1,"volume":1,"backend":1,"path":3}' "path 3 is not one of backend 1's paths"
bad_req "API: route for a volume the VM does not have -> ok:false" \
	'{"cmd":"route-set","vm":1,"volume":7,"backend":1,"path":1}' "no volume 7"
bad_req "API: backend-set on an unknown backend -> ok:false" \
	'{"cmd":"backend-set","backend":7,"state":"up"}' "no backend 7"
bad_req "API: backend-set to an unknown state -> ok:false" \
	'{"cmd":"backend-set","backend":1,"state":"sideways"}' "'sideways' is not one of"
bad_req "API: route-del of a route nobody pinned -> ok:false" \
	'{"cmd":"route-del","vm":1,"volume":1,"backend":1}' "no pinned route"
bad_req "API: apply of a missing file -> ok:false" \
	"{\"cmd\":\"apply\",\"file\":\"$T/none.yaml\"}" "none\\\\.yaml"
check "the maps are unchanged after every refused change" same_maps "$T/maps.2"
check "nothing was logged as applied or pinned" \
	test -z "$(logq "$L" '.event == "config-applied" or .event == "route-pinned" or .event == "backend-set"')"
check "the daemon still runs and answers" alive

# ------------------------------------------ 3. carrier loss under a transfer

echo "# 3. carrier down under a transfer"
pin_routes 1
check "vsn route set pins both routes of volume 1 to path 1 (status shows 2 pins)" pins_on 2 1
start c3 6000000 100000 2000000
sleep 0.8
check "the transfer runs on path 1" test "$(conn_path "$PORT_c3")" = 1
L=$(loglines)
t0=$(now)
nsf ip link set f0 down
ev=$(wait_log "$L" '.event == "failover" and .path == 1' 2)
echo "# $ev"
dt=$(sub "$(jq -r .ts <<<"$ev")" "$t0")
echo "# failover logged ${dt}s after 'ip link set f0 down' started"
check "failover of path 1 logged < 100 ms after the link went down (${dt}s)" \
	eval '[ -n "$ev" ] && lt "$dt" 0.1'
check "failover: reason carrier, both routes moved, the connection moved" \
	jt "$ev" '.reason == "carrier" and .routes_moved == 2 and .connections_moved >= 1 and .left == 0'
check "path-failed logged first, reason carrier, naming up0" \
	jt "$(logq "$L" '.event == "path-failed" and .path == 1' | sed -n 1p)" \
	'.reason == "carrier" and (.why | test("up0"))'
check "the routes are on path 2" routes_all_on 2
check "the connection is on path 2" test "$(conn_path "$PORT_c3")" = 2
check "status: path 1 failed, reason names the carrier; its pins displaced to path 2, not dropped" \
	jt "$(status)" '(.paths[] | select(.path == 1) | .state == "failed" and (.reason | test("carrier"))) and
		(.pinned_routes | length) == 2 and all(.pinned_routes[]; .path == 2 and .displaced_from == 1) and
		.reroutes.carrier >= 1'
check "the transfer completes intact" finish c3
nsx fab ip link set f0 up
nsx fab ip route add 10.0.0.0/24 via 10.1.0.1 # admin down removed it
ev=$(wait_log "$L" '.event == "path-healthy" and .path == 1' 4)
echo "# $ev"
check "path 1 recovers (reason recovered) after the hold-down once the carrier is back" \
	jt "$ev" '.reason == "recovered"'
check "the operator's pins are back on path 1 (route-pin-restored twice)" eval \
	'pins_on 2 1 && [ "$(logq "$L" ".event == \"route-pin-restored\" and .path == 1" | wc -l)" = 2 ]'

# ------------------------------------------ 4. silent cut under a transfer

echo "# 4. silent cut (carriers up)"
nsx fab nft add table inet cut
nsx fab nft add chain inet cut cutfwd '{ type filter hook forward priority 0; }'
pin_routes 1
# The datapath knows a path is silent when requests go unanswered: the
# clock starts at the first request after the last reply.  tcpx.py's own
# rate limit sends 64 kB bursts with idle gaps, and a cut in a gap is only
# seen when TCP's loss probe fires (~80 ms later here).  NVMe/TCP is a
# steady stream: shape the VM's side to 16 Mbit/s and send unthrottled.
nsx vm tc qdisc add dev vm0 root tbf rate 16mbit burst 16kb latency 50ms
start c4 6000000 100000 0
# Long enough for the 100 kB from the backend to be sent and acknowledged:
# nothing may come back over path 1 once the cut is in place.
sleep 1
check "the transfer runs on path 1" test "$(conn_path "$PORT_c4")" = 1
L=$(loglines)
t0=$(now)
nsf nft add rule inet cut cutfwd iifname f0 drop
t1=$(now) # nft returns once the rule is committed
ev=$(wait_log "$L" '.event == "path-failed" and .path == 1' 2)
echo "# $ev"
dt=$(sub "$(jq -r .ts <<<"$ev")" "$t1")
echo "# path-failed (silent) logged ${dt}s after the cut was in place ($(sub "$t1" "$t0")s to put it there)"
check "path 1 failed, reason silent, within 500 ms of the cut (${dt}s; silent_ms 150, the rest scheduling on a shared machine)" \
	eval 'jt "$ev" ".reason == \"silent\"" && lt "$dt" 0.5'
check "failover of path 1 logged with reason silent, both routes moved" \
	jt "$(logq "$L" '.event == "failover" and .path == 1' | sed -n 1p)" \
	'.reason == "silent" and .routes_moved == 2'
check "the connection is on path 2 (vsn -j show connections)" wait_path "$PORT_c4" 2 1
check "the transfer completes intact, without a reset (client exit 0)" finish c4
check "carriers stayed up through the cut" jt "$(status)" 'all(.uplinks[]; .carrier)'
nsx fab nft delete table inet cut
nsx vm tc qdisc del dev vm0 root
ev=$(wait_log "$L" '.event == "path-healthy" and .path == 1' 4)
check "path 1 healthy again after the hold-down" test -n "$ev"
sleep 0.3 # a metrics interval
cp "$PROM" "$T/prom.4"
grep '^vsn_reroutes_total' "$T/prom.4" | diag
# reroutes_match: the textfile's reroutes by reason agree with status, and
# the carrier and silent failovers each moved something.
reroutes_match() {
	local st r
	st=$(status)
	for r in carrier silent; do
		grep -qE "^vsn_reroutes_total\{reason=\"$r\"\} $(jq -r ".reroutes.$r" <<<"$st")\$" \
			"$T/prom.4" || return 1
	done
	jt "$st" '.reroutes.carrier >= 1 and .reroutes.silent >= 1'
}
check "vsn.prom counts the reroutes by reason as status does (carrier, silent >= 1)" reroutes_match

# ------------------------------------------------- 5. congestion

echo "# 5. congestion on up0 (TBF ${TBF_MBIT}mbit)"
pin_routes 1
vsn route del 1 1 1 >/dev/null && vsn route del 1 1 2 >/dev/null
check "routes on path 1, released to the controller (route del: no pins left)" \
	eval 'routes_all_on 1 && pins_on 0 0'
# Connections that have closed stay in the LRU table: their byte counts.
vsn -j show connections | jq '[.[].tx_bytes]' >"$T/closed.json"
echo "# $(jq length "$T/closed.json") closed connections in vsn_conns"
nsx hv tc qdisc add dev up0 root tbf rate ${TBF_MBIT}mbit burst 32kb latency 50ms
L=$(loglines)
# One heavy transfer (wants 80 Mbit/s) and two light ones (0.8 Mbit/s).
start heavy 30000000 100000 10000000
start light1 300000 100000 100000
start light2 300000 100000 100000
ev=$(wait_log "$L" '.event == "uplink-congested" and .uplink == "up0"' 3)
echo "# $ev"
check "uplink-congested logged for up0 (reason congestion, qdisc throttled)" \
	jt "$ev" '.reason == "congestion" and .qdisc_throttled == true'
if wait_path "$PORT_heavy" 2 3; then
	ok "the heavy transfer's connection moves to path 2"
	b1=$(tx_bytes "$PORT_heavy")
	ta=$(now)
	sleep 1
	b2=$(tx_bytes "$PORT_heavy")
	mbit=$(awk -v a="$b1" -v b="$b2" -v t="$(sub "$(now)" "$ta")" \
		'BEGIN { printf "%.1f", (b - a) * 8 / t / 1e6 }')
	echo "# heavy transfer after the move: $mbit Mbit/s (TBF on up0: $TBF_MBIT)"
	check "after the move it runs well above the TBF rate ($mbit > 2 x $TBF_MBIT Mbit/s)" \
		lt $((2 * TBF_MBIT)) "$mbit"
else
	nok "the heavy transfer's connection moves to path 2 (on path $(conn_path "$PORT_heavy"))"
	nok "after the move it runs well above the TBF rate (never moved)"
fi
check "the heavy transfer completes intact" finish heavy
echo "# heavy transfer: $(jq -r .seconds "$T/heavy.json") s for 30 MB"
check "the first light transfer completes intact" finish light1
check "the second light transfer completes intact" finish light2
logq "$L" '.event == "move"' >"$T/moves.5"
diag <"$T/moves.5"
echo "# light transfers ended on paths $(conn_path "$PORT_light1") and $(conn_path "$PORT_light2")"
check "move events logged: reason congestion, from path 1 to path 2" \
	jt "$(jq -s . "$T/moves.5")" 'length >= 1 and all(.[]; .reason == "congestion" and .from == 1 and .to == 2)'
dead=$(jq -s --slurpfile c "$T/closed.json" '[.[] | select(.bytes as $b | $c[0] | index($b))] | length' "$T/moves.5")
check "no move event is for a connection that had already closed ($dead were)" test "$dead" = 0
check "the first live connection moved is the heaviest one moved" \
	jt "$(jq -s --slurpfile c "$T/closed.json" '[.[] | select(.bytes as $b | $c[0] | index($b) | not)]' "$T/moves.5")" \
	'length >= 1 and .[0].bytes == (map(.bytes) | max)'

echo "# 5b. congestion with the routes pinned by an operator"
pin_routes 1
L=$(loglines)
start pinned 5000000 100000 0
ev=$(wait_log "$L" '.event == "uplink-congested" and .uplink == "up0"' 3)
check "up0 congested again under an unthrottled transfer" test -n "$ev"
sleep 0.5 # five ticks
c=$(conn "$PORT_pinned")
echo "# $c"
check "the transfer whose route the operator pinned stays on path 1 (no override)" \
	jt "$c" '.path == 1 and .path_override == 0'
check "the pinned transfer completes intact" finish pinned
nsx hv tc qdisc del dev up0 root

# ---------------------------------------------- 6. backend failure

# serving PORT: bad/bad_id = the backend serving the VM's connection from
# PORT, good = the other one.
serving() {
	bad=$(server_of "$1")
	[ -n "$bad" ] || echo "# no server logged the connection from port '$1'"
	bad=${bad:-be1} good=be2 bad_id=1
	[ "$bad" = be2 ] && good=be1 bad_id=2
	echo "# the transfer is on $bad (backend $bad_id); dropping its port 4420"
}
# port_drop NS / port_undrop NS: the backend's port 4420 stops answering
# (every packet to it dropped, nothing sent back) / answers again.
port_drop() {
	nsx "$1" nft add table inet bdrop
	nsx "$1" nft add chain inet bdrop in '{ type filter hook input priority 0; }'
	nsenter --net="/run/netns/$P-$1" nft add rule inet bdrop in tcp dport 4420 drop
}
port_undrop() { nsx "$1" nft delete table inet bdrop; }
# all_healthy SECONDS: every path and backend healthy again (hold-downs over).
all_healthy() {
	local i
	for ((i = 0; i <= $1 * 10; i++)); do
		jt "$(status)" 'all(.paths[]; .state == "healthy") and all(.backends[]; .state == "healthy")' &&
			return 0
		sleep 0.1
	done
	return 1
}

# 6a. No health probe: the stall is seen on path 1, then, after the move, on
# path 2; docs/daemon.md: "A stall that follows a backend onto a second path
# within 3 s is the backend's, not the paths': the backend is failed instead
# and the first path forgiven".
echo "# 6a. a backend stops answering (no health probe): the stall follows it across paths"
pin_routes 1
start c6s 20000000 100000 1000000 --timeout 8
sleep 0.5
serving "$PORT_c6s"
L=$(loglines)
t0=$(now)
port_drop "$bad"
ev=$(wait_log "$L" ".event == \"backend-failed\" and .backend == $bad_id" 3)
echo "# $ev"
[ -n "$ev" ] && echo "# backend failed $(sub "$(jq -r .ts <<<"$ev")" "$t0")s after its port was dropped"
check "the backend is failed for the stall that followed it from path 1 to path 2 (reason silent)" \
	jt "$ev" '.reason == "silent" and (.why | test("path 1.*path 2"))'
failed_paths=$(logq "$L" '.event == "path-failed"' | jq -s 'map(.path) | unique | length')
check "one backend's stall fails at most one path ($failed_paths failed)" test "$failed_paths" -le 1
check "path 1 is forgiven at once (path-healthy: the stall was backend $bad_id's)" \
	test -n "$(logq "$L" ".event == \"path-healthy\" and .path == 1 and (.why | test(\"backend $bad_id\"))")"
for _ in $(seq 40); do
	kill -0 "$CPID_c6s" 2>/dev/null || break
	sleep 0.05
done
kill "$CPID_c6s" 2>/dev/null # still waiting: nobody reset it
wait "$CPID_c6s"
rc=$?
echo "# client: exit $rc after $(sub "$(now)" "$t0")s: $(jq -c '{error, tx_bytes}' "$T/c6s.json" 2>/dev/null)"
check "the client is reset by the drain, not left waiting" \
	eval '[ $rc -ne 0 ] && grep -qi reset "$T/c6s.json"'
port_undrop "$bad"
logq "$L" 'true' | diag
check "every path and backend is healthy again after the hold-down" all_healthy 4

echo "# 6b. backend failure (health: tcp)"
write_cfg "$T/health.yaml" "health: tcp"
S6=("the config with health: tcp is accepted (vsn apply --check)"
	"the daemon runs with health: tcp on both backends, both healthy"
	"drain of the failed backend logged (reason backend or silent, connections_reset >= 1)"
	"the client is reset (exit non-zero, 'reset'), within 4 s of the failure"
	"a new connection lands on the other backend and completes intact"
	"status: the backend failed with a reason, drained"
	"the backend recovers (undrain) once its port answers again"
	"the drain's reason is the evidence: the TCP probe's ('tcp connect: ...') or the stall that followed the backend")
out=$(vsn apply --check "$T/health.yaml" 2>&1)
rc=$?
echo "$out" | diag
if [ $rc -ne 0 ]; then
	nok "${S6[0]}"
	for d in "${S6[@]:1}"; do nok "$d (not run: health: tcp refused)"; done
else
	ok "${S6[0]}"
	daemon_restart "$T/health.yaml"
	sleep 0.5 # a few probes
	ST=$(status)
	echo "# backends: $(jq -c '[.backends[] | {backend, state, reason}]' <<<"$ST")"
	check "${S6[1]}" jt "$ST" '.ok == true and all(.backends[]; .state == "healthy")'
	start c6 20000000 100000 1000000 --timeout 10
	sleep 0.5
	serving "$PORT_c6"
	L=$(loglines)
	t0=$(now)
	port_drop "$bad"
	ev=$(wait_log "$L" ".event == \"drain\" and .backend == $bad_id" 5)
	echo "# $ev"
	[ -n "$ev" ] && echo "# drain logged $(sub "$(jq -r .ts <<<"$ev")" "$t0")s after the port was dropped"
	# Whichever sees it first: the probe, or the stall following the
	# backend from one path to the other (docs/daemon.md).
	check "${S6[2]}" jt "$ev" '(.reason == "backend" or .reason == "silent") and .connections_reset >= 1'
	check "${S6[7]}" jt "$ev" '.why | test("^tcp connect: |^no reply on path [0-9]+ nor")'
	for _ in $(seq 100); do
		kill -0 "$CPID_c6" 2>/dev/null || break
		sleep 0.05
	done
	dt=$(sub "$(now)" "$t0")
	wait "$CPID_c6"
	rc=$?
	echo "# client: exit $rc after ${dt}s: $(jq -c '{error, tx_bytes}' "$T/c6.json" 2>/dev/null)"
	check "${S6[3]} (${dt}s)" \
		eval '[ $rc -ne 0 ] && grep -qi reset "$T/c6.json" && lt "$dt" 4'
	start c6b 1000000 100000 0
	if finish c6b && [ "$BE" = "$good" ]; then ok "${S6[4]} ($BE)"; else nok "${S6[4]} (served by '$BE')"; fi
	ST=$(status)
	echo "# $(jq -c ".backends[] | select(.backend == $bad_id)" <<<"$ST")"
	check "${S6[5]}" jt "$ST" \
		".backends[] | select(.backend == $bad_id) | .state == \"failed\" and (.reason | length) > 0 and .drained"
	port_undrop "$bad"
	logq "$L" 'true' | diag # what the controller made of it
	ev=$(wait_log "$L" ".event == \"undrain\" and .backend == $bad_id" 5)
	echo "# $ev"
	check "${S6[6]}" jt "$ev" '.reason == "recovered"'

	# 6c. The probe comes every 3 s, the hold-down is 1 s: a backend
	# failed by the stall that followed it must not come back when the
	# hold-down ends, only once a probe has answered since the failure.
	echo "# 6c. a stalled backend comes back after an answered probe, not after the hold-down"
	sed 's/health_interval_ms: 200/health_interval_ms: 3000/' "$T/health.yaml" >"$T/slowprobe.yaml"
	daemon_restart "$T/slowprobe.yaml"
	sleep 0.5 # the first probes (at start) answered
	start c6c 20000000 100000 1000000 --timeout 8
	sleep 0.5
	serving "$PORT_c6c"
	L=$(loglines)
	port_drop "$bad"
	ev=$(wait_log "$L" ".event == \"backend-failed\" and .backend == $bad_id" 3)
	echo "# $ev"
	t0=$(now)
	sleep 1.8 # the hold-down (1 s) is over; the next probe not yet counted
	ST=$(status)
	echo "# $(jq -c ".backends[] | select(.backend == $bad_id) | {state, reason}" <<<"$ST")"
	check "6c: a backend failed by a stall (reason silent) stays failed past its hold-down while no probe has answered since" \
		eval 'jt "$ev" ".reason == \"silent\"" && jt "$ST" ".backends[] | select(.backend == $bad_id) | .state == \"failed\"" && [ -z "$(logq "$L" ".event == \"undrain\" and .backend == $bad_id")" ]'
	kill "$CPID_c6c" 2>/dev/null
	wait "$CPID_c6c" 2>/dev/null
	port_undrop "$bad"
	ev=$(wait_log "$L" ".event == \"undrain\" and .backend == $bad_id" 8)
	echo "# $ev"
	[ -n "$ev" ] && echo "# undrain $(sub "$(jq -r .ts <<<"$ev")" "$t0")s after the check, once a probe answered"
	check "6c: ... and comes back once its port answers a probe again" jt "$ev" '.reason == "recovered"'
	daemon_restart "$T/health.yaml"
fi

# ----------------------------------- 7. kill -9 and restart under a transfer

echo "# 7. kill -9 and restart"
pin_routes 1
start c7 6000000 100000 2000000
sleep 0.8
path0=$(conn_path "$PORT_c7")
snap "$T/maps.7" live
L=$(loglines)
stop_daemon KILL
check "the daemon died of SIGKILL (status $DRC)" test "$DRC" -eq 137
t0=$(now)
if daemon_start "$DCFG"; then
	ok "a new daemon starts on the dead one's socket ($(sub "$(now)" "$t0")s)"
else
	tail -3 "$T/daemon.err" | diag
	nok "a new daemon starts on the dead one's socket"
fi
check "the restarted daemon logged 'started'" test -n "$(logq "$L" '.event == "started"')"
sleep 1 # ten ticks with the transfer running
check "the connection stays on its path ($path0 -> $(conn_path "$PORT_c7"))" \
	test "$(conn_path "$PORT_c7")" = "$path0" -a "$path0" = 1
check "the transfer completes intact, without a reset" finish c7
moved=$(logq "$L" '.event | test("failover|move|drain|failed|congested")')
echo "$moved" | diag
check "the restarted daemon moved, failed and drained nothing" test -z "$moved"
check "the routes, backends, paths and live hash tables are unchanged" same_maps "$T/maps.7" live
check "the operator's pins survive the restart (status shows 2)" \
	jt "$(status)" '(.pinned_routes | length) == 2'

# ---------------------------------------------------------- 8. SIGHUP

echo "# 8. SIGHUP"
cp "$DCFG" "$T/running.yaml"
ticks() { jq -r .ticks <<<"$(status)"; }
ta=$(ticks) && sleep 1 && tb=$(ticks)
echo "# tick_ms 100: $((tb - ta)) ticks in 1 s"
L=$(loglines)
sed -i 's/tick_ms: 100/tick_ms: 50/' "$DCFG"
kill -HUP "$DPID"
ev=$(wait_log "$L" '.event == "config-applied"' 2)
echo "# $ev"
check "SIGHUP with tick_ms 50: config-applied logged (reason reload)" jt "$ev" '.reason == "reload"'
ta=$(ticks) && sleep 1 && tb=$(ticks)
echo "# tick_ms 50: $((tb - ta)) ticks in 1 s"
check "the new tick_ms takes effect ($((tb - ta)) ticks in 1 s, want about 20)" \
	test $((tb - ta)) -ge 15
snap "$T/maps.8"
L=$(loglines)
cp "$T/running.yaml" "$DCFG"
echo "garbage: [" >>"$DCFG"
kill -HUP "$DPID"
ev=$(wait_log "$L" '.event == "reload-rejected"' 2)
echo "# $ev"
check "SIGHUP with a YAML syntax error: reload-rejected logged, naming file:line" \
	jt "$ev" '.reason == "reload" and (.error | test("daemon\\.yaml:[0-9]+"))'
check "the maps are unchanged" same_maps "$T/maps.8"
L=$(loglines)
sed 's/interface: vmif/interface: nosuch0/' "$T/running.yaml" >"$DCFG"
kill -HUP "$DPID"
ev=$(wait_log "$L" '.event == "reload-rejected"' 2)
echo "# $ev"
tail -1 "$T/daemon.err" | diag
check "SIGHUP with a VM on a missing interface: reload-rejected logged, naming it" \
	jt "$ev" '.error | test("nosuch0")'
check "the maps are unchanged" same_maps "$T/maps.8"
cp "$T/running.yaml" "$DCFG"
check "the daemon still runs and answers" alive
cp "$PROM" "$T/prom.8"
check "the textfile still passes promtool" promtool_ok "$T/prom.8"

# ---------------------------------------------------------- 9. SIGTERM

echo "# 9. SIGTERM"
L=$(loglines)
stop_daemon TERM
check "SIGTERM: the daemon exits 0 (status $DRC)" test "$DRC" -eq 0
check "'stopped' logged, datapath left forwarding" \
	jt "$(logq "$L" '.event == "stopped"')" '.datapath == "left forwarding"'
check "the socket file is removed" test ! -e "$SOCK"
start c9 1000000 1000000 0
check "with the daemon stopped, a new transfer still completes intact" finish c9
check "every decision-log line is a JSON object with ts, a known reason and an event" \
	jq -se 'length > 0 and all(.[]; (.ts | type) == "number" and (.event | type) == "string" and
		(.reason | IN("carrier", "silent", "neighbour", "congestion", "backend", "recovered",
			"operator", "reload")))' "$DLOG"
echo "# decision log: $(loglines) lines"
[ "$failed" -eq 0 ] || sed 's/^/# log: /' "$DLOG"

echo "1..$n"
[ "$failed" -eq 0 ]
