#!/bin/bash
# The controller's second sign of a silent cut: NVMe commands outstanding on
# a path from which nothing comes back, while the TCP-level stamp cannot see
# it (the target acknowledged the command's segment before going quiet).
# A real TCP connection carries NVMe/TCP PDUs (tests/netns/nvme_stall.py):
# the "target" answers five Reads, then keeps the connection open and the
# sixth Read unanswered.  The daemon must fail the path with the command
# reason (not the TCP-level one), move the connection to the other path,
# and fail nothing else.
#
# Standard topology (tests/lib/topo.sh, prefix vcs), pins /sys/fs/bpf/vcs.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
ROOT=$PWD
P=vcs
PIN=/sys/fs/bpf/vcs
VSN=$ROOT/build/vsn
PY=/usr/bin/python3
T=$(mktemp -d /tmp/vcs.XXXXXX)
PIDS=()
. tests/lib/tap.sh
. tests/lib/netns.sh
vsn() { VSN_SOCKET=$T/vsn.sock hv "$VSN" --pin-dir "$PIN" "$@"; }
trap 'netns_down "${PIDS[@]}"' EXIT

netns_up
F0=$(nsx fab cat /sys/class/net/f0/address)
F1=$(nsx fab cat /sys/class/net/f1/address)
cat >"$T/vsn.yaml" <<EOC
vms:
  - {name: vm1, id: 1, interface: vmif, addresses: [10.0.0.2, "2001:db8::2"]}
uplinks:
  - {interface: up0}
  - {interface: up1}
paths:
  - {id: 1, uplink: up0, next_hop: "$F0"}
  - {id: 2, uplink: up1, next_hop: "$F1"}
backends:
  - {id: 1, address: 10.3.1.2, port: 4420, paths: [1, 2]}
volumes:
  - {id: 1, vm: vm1, address: 192.168.100.10, port: 4420, backends: [1]}
controller: {socket: $T/vsn.sock, metrics_dir: $T}
EOC
check "attach and apply" eval 'vsn attach --vm vmif --uplink up0,up1 >/dev/null 2>&1 &&
	vsn apply "$T/vsn.yaml" >/dev/null'
# Started directly (not through the functions above) so that $! is the
# process itself, which the cleanup kills.
ip netns exec "$P-be1" $PY tests/netns/nvme_stall.py server --port 4420 --answer 5 &
PIDS+=($!)
VSN_SOCKET=$T/vsn.sock nsenter --net="/run/netns/$P-hv" "$VSN" --pin-dir "$PIN" \
	daemon -c "$T/vsn.yaml" --log "$T/log" 2>"$T/daemon.err" &
PIDS+=($!)
for _ in $(seq 50); do [ -S "$T/vsn.sock" ] && break; sleep 0.1; done
sleep 0.3
t0=$(date +%s.%N)
nsx vm timeout 20 $PY tests/netns/nvme_stall.py client --dst 192.168.100.10 --reads 6 \
	--gap-ms 20 >"$T/client.json" 2>&1
echo "# client: $(cat "$T/client.json")"
check "the target answered five Reads through the VIP, then went quiet" \
	grep -q '"answered": 5' "$T/client.json"
sed 's/^/# log: /' "$T/log"
ev=$(jq -c 'select(.event == "path-failed")' "$T/log" | head -1)
# (Redirections inside the checked command: on check itself they would
# swallow its TAP line.)
check "path 1 failed for the outstanding command (reason silent, 'NVMe commands outstanding')" \
	jt "${ev:-}" '.path == 1 and .reason == "silent" and (.why | test("NVMe commands outstanding"))'
# The stalled command also reads as latency: a congestion move may take the
# connection off path 1 a moment before the failover would.
check "the connection left path 1: moved by the failover, or by a congestion move just before it" \
	eval 'jq -e -s "first(.[] | select(.event == \"failover\" and .path == 1)) | .connections_moved >= 1" \
		"$T/log" >/dev/null ||
	      jq -e -s "any(.[]; .event == \"move\" and .from == 1 and .to == 2)" "$T/log" >/dev/null'
check "only path 1 failed (the other path and the backend stay healthy)" eval \
	'[ "$(jq -c "select(.event == \"path-failed\" or .event == \"backend-failed\")" "$T/log" | wc -l)" = 1 ]'
port=$(jq -r .sport "$T/client.json" 2>/dev/null)
check "the connection is now on path 2" eval \
	"vsn -j show connections | jq -e '.[] | select(.vm_port == $port or .sport == $port) | .path == 2' >/dev/null ||
	 vsn show connections | grep -q ':$port .* path 2'"
echo "# wall $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}') s"
echo "1..$n"
[ "$failed" -eq 0 ]
