#!/bin/bash
# make demo-netns: real TCP storage traffic (iperf3 on the NVMe/TCP port) from a VM
# namespace to its volume's virtual address, through vsn, across two uplinks
# and two backends, while the fabric congests and a link is cut silently.
#
# Today the decisions are taken by this script acting as the operator, with
# vsn's own commands (vsn route set / vsn backend set); the controller daemon
# will take them on its own. What is shown is the datapath doing it live:
# connections keep running while their path changes under them.
set -euo pipefail
cd "$(dirname "$0")/.."

P=vsnd
export P
PIN=/sys/fs/bpf/vsnd
OUT=$PWD/build/demo-netns
VSN="nsenter --net=/run/netns/$P-hv build/vsn --pin-dir $PIN"
PHASE_S=${DEMO_PHASE_S:-5}
CLEANED=0

say() { printf '\033[1m[%5.1fs] %s\033[0m\n' "$(elapsed)" "$*"; }
elapsed() { echo "$(($(date +%s%N) - T0))" | awk '{printf "%.1f", $1/1e9}'; }
nsx() { local ns=$1; shift; ip netns exec "$P-$ns" "$@"; }

cleanup() {
	[ "$CLEANED" = 1 ] && return
	CLEANED=1
	[ -n "${SAMPLER:-}" ] && kill "$SAMPLER" 2>/dev/null
	[ -n "${CLIENT:-}" ] && kill "$CLIENT" 2>/dev/null
	$VSN detach >/dev/null 2>&1 || true
	bash tests/lib/topo.sh down
	wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'echo; echo "interrupted: cleaning up"; exit 130' INT TERM

mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
mkdir -p "$OUT"
rm -f "$OUT"/*.log "$OUT"/*.tsv
T0=$(date +%s%N)

say "topology: VM ns -> hypervisor ns (vsn) -> two uplinks -> fabric ns -> two backends"
bash tests/lib/topo.sh down
bash tests/lib/topo.sh up
cat >"$OUT/vsn.yaml" <<'EOF'
vms:
  - {name: vm1, id: 1, interface: vmif, addresses: [10.0.0.2, "2001:db8::2"]}
uplinks:
  - {interface: up0, capacity: 10gbit}
  - {interface: up1, capacity: 10gbit}
paths:
  - {id: 1, uplink: up0, next_hop: fib}
  - {id: 2, uplink: up1, next_hop: fib, dscp: 26}
backends:
  - {id: 1, name: target-1, address: 10.3.1.2, port: 4420, paths: [1, 2]}
  - {id: 2, name: target-2, address: 10.3.2.2, port: 4420, paths: [1, 2]}
volumes:
  - {id: 1, vm: vm1, address: 192.168.100.10, port: 4420, protocol: nvme-tcp, backends: [1, 2]}
routes:
  - {vm: vm1, volume: 1, backend: 1, path: 1}
  - {vm: vm1, volume: 1, backend: 2, path: 1}
EOF
$VSN attach --vm vmif --uplink up0,up1
$VSN apply "$OUT/vsn.yaml"
# Start with backend 1 only, so the first connection lands there.
$VSN backend set 2 draining >/dev/null
for b in be1 be2; do
	nsx "$b" iperf3 -s -p 4420 -D --logfile "$OUT/server-$b.log"
done
sleep 0.5

# Per-path bytes every 250 ms from vsn's own counters.
sample() {
	while :; do
		$VSN -j show counters |
			/usr/bin/python3 -c 'import json,sys,time
d=json.load(sys.stdin)["paths"]
print("%.3f\t%d\t%d" % (time.time(), d.get("1",{}).get("bytes",0), d.get("2",{}).get("bytes",0)))'
		sleep 0.25
	done >>"$OUT/paths.tsv"
}
sample &
SAMPLER=$!

say "VM connects to its volume 192.168.100.10:4420; vsn picks target-1 over path 1 (up0)"
nsx vm iperf3 -c 192.168.100.10 -p 4420 -b 2G -t $((PHASE_S * 5)) -i 0.5 --forceflush \
	>"$OUT/client.log" 2>&1 &
CLIENT=$!
event() { printf '%s\t%s\n' "$(date +%s.%N)" "$1" >>"$OUT/events.tsv"; say "$1"; }
sleep "$PHASE_S"

event "congestion: up0 limited to 400 Mbit/s (TBF)"
nsx hv tc qdisc add dev up0 root tbf rate 400mbit burst 256kb latency 100ms
sleep "$PHASE_S"

event "re-route: vsn route set 1 1 1 2 (live connection moves to path 2, up1)"
$VSN route set 1 1 1 2
sleep "$PHASE_S"

event "silent cut of path 2 in the fabric (carriers stay up); congestion on up0 clears"
nsx fab nft add table inet demo
nsx fab nft add chain inet demo cut '{ type filter hook forward priority 0; }'
nsx fab nft add rule inet demo cut iif f1 drop
nsx hv tc qdisc del dev up0 root
sleep 1
event "re-route: vsn route set 1 1 1 1 (back to path 1; TCP retransmits take it)"
$VSN route set 1 1 1 1
sleep "$PHASE_S"

event "target-1 fails: vsn backend set 1 down, target-2 up; a new connection lands on target-2"
$VSN backend set 2 up >/dev/null
$VSN backend set 1 down
nsx vm iperf3 -c 192.168.100.10 -p 4420 -t 2 >"$OUT/client2.log" 2>&1 || true
wait "$CLIENT" || true
CLIENT=
kill "$SAMPLER" 2>/dev/null || true
SAMPLER=

echo
$VSN show connections | tee "$OUT/connections.txt"
$VSN show counters | tee "$OUT/counters.txt"
/usr/bin/python3 scripts/demo_netns_report.py "$OUT"
