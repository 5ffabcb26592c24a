#!/bin/bash
# Replies into a VM-side veth whose peer (the VM's end) has GRO off and no
# XDP program, with native XDP on the uplinks: the README's set-up as an
# operator would type it.  The kernel's veth accepts an XDP_REDIRECT
# (ndo_xdp_xmit) only when the receiving peer runs NAPI, which it does only
# with GRO on or an XDP program of its own; otherwise the frame is dropped
# after the program returned, and vsn's counters said "forwarded".  vsn
# hands such replies to its TC program on the uplink instead (XDP metadata
# names the VM interface), which redirects them as socket buffers.
#
# Topology: tests/lib/topo.sh with prefix vsng (pin dir /sys/fs/bpf/vsng),
# except that vm0 has GRO off.
#
#  1. attach --xdp-mode native; vsn_up_xfer on the uplinks' TC ingress.
#  2. IPv4 and IPv6 transfers, both directions intact (tests/netns/tcpx.py).
#  3. the replies reached the VM: vm0's received bytes grow by the 4 MB.
#  4. control: GRO on again, replies still arrive.
#  5. --veth-replies xdp with GRO on: XDP redirects the replies itself.
#
# Output: "ok N - ..." / "not ok N - ..." lines, diagnostics prefixed "# ".
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
ROOT=$PWD

P=vsng
PIN=/sys/fs/bpf/vsng
VSN=$ROOT/build/vsn
PY=/usr/bin/python3
TCPX=$ROOT/tests/netns/tcpx.py
VIP4=192.168.100.10
VIP6=2001:db8:100::10
SERVER_PIDS=()
T=$(mktemp -d /tmp/vsng-test.XXXXXX)
START=$(date +%s)

. tests/lib/tap.sh
. tests/lib/netns.sh

vsn() { hv "$VSN" --pin-dir "$PIN" "$@"; }

cleanup() {
	netns_down "${SERVER_PIDS[@]}"
	echo "# runtime $(($(date +%s) - START))s"
}
trap cleanup EXIT

netns_up
nsx vm ethtool -K vm0 gro off >/dev/null || fatal "ethtool -K vm0 gro off"
check "vm0 (the VM's end of vmif) has GRO off and no XDP program" \
	eval 'nsx vm ethtool -k vm0 | grep -q "^generic-receive-offload: off" &&
		! nsx vm ip link show vm0 | grep -q xdp'

F0_MAC=$(nsx fab cat /sys/class/net/f0/address)
F1_MAC=$(nsx fab cat /sys/class/net/f1/address)
cat >"$T/cfg.yaml" <<EOF
vms:
  - {name: vm1, id: 1, interface: vmif, addresses: [10.0.0.2, "2001:db8::2"]}
uplinks:
  - {interface: up0}
  - {interface: up1}
paths:
  - {id: 1, uplink: up0, next_hop: "$F0_MAC"}
  - {id: 2, uplink: up1, next_hop: "$F1_MAC"}
backends:
  - {id: 1, name: be1, address: 10.3.1.2, port: 4420, paths: [1, 2]}
  - {id: 3, name: be1v6, address: "2001:db8:3:1::2", port: 4420, paths: [1, 2]}
volumes:
  - {id: 1, vm: vm1, address: $VIP4, port: 4420, backends: [1]}
  - {id: 2, vm: vm1, address: "$VIP6", port: 4420, backends: [3]}
EOF

ip netns exec "$P-be1" "$PY" "$TCPX" server --port 4420 --log "$T/be1.log" &
SERVER_PIDS+=($!)
for _ in $(seq 50); do
	grep -q listening "$T/be1.log" 2>/dev/null && break
	sleep 0.1
done
grep -q listening "$T/be1.log" 2>/dev/null || fatal "server in $P-be1 did not start"

echo "# 1. attach with native XDP on the uplinks"
vsn attach --vm vmif --uplink up0,up1 --xdp-mode native 2>&1 | diag
check "attach --xdp-mode native: exit 0" test "${PIPESTATUS[0]}" -eq 0
vsn apply "$T/cfg.yaml" 2>&1 | diag
check "apply: exit 0" test "${PIPESTATUS[0]}" -eq 0
vsn status >"$T/status.txt" 2>&1
diag <"$T/status.txt"
check "status: both uplinks in native XDP" \
	test "$(grep -cE '^ +up[01] +ifindex [0-9]+ +uplink +ingress xdp-native' "$T/status.txt")" -eq 2

# xfer NAME DST: 2 MB each way through the VIP, both ends' digests checked.
xfer() {
	ip netns exec "$P-vm" "$PY" "$TCPX" client --dst "$2" --port 4420 --up 2000000 \
		--down 2000000 --timeout 15 >"$T/$1.json" 2>"$T/$1.err"
	local rc=$?
	if [ $rc -eq 0 ] && "$PY" "$TCPX" verify "$T/$1.json" be1="$T/be1.log" >"$T/$1.verify"; then
		return 0
	fi
	echo "# $1: exit $rc: $(head -c 300 "$T/$1.json" "$T/$1.err")"
	return 1
}
rx_bytes() { nsx vm cat /sys/class/net/vm0/statistics/rx_bytes; }

echo "# 2. transfers with GRO off on the VM's end"
rx0=$(rx_bytes)
check "IPv4 transfer through $VIP4 with vm0's GRO off: both directions intact" xfer v4 "$VIP4"
check "IPv6 transfer through $VIP6 with vm0's GRO off: both directions intact" xfer v6 "$VIP6"
rx1=$(rx_bytes)

echo "# 3. what vsn forwarded arrived"
vsn show counters 2>&1 | head -30 | diag
check "vm0 received the 4 MB of replies (rx_bytes $rx0 -> $rx1, at least 4,000,000 more)" \
	test $((rx1 - rx0)) -ge 4000000
check "vsn_up_xfer is on both uplinks' TC ingress" \
	eval 'hv tc filter show dev up0 ingress | grep -q vsn_up_xfer &&
		hv tc filter show dev up1 ingress | grep -q vsn_up_xfer'

echo "# 4. control: GRO on again"
nsx vm ethtool -K vm0 gro on >/dev/null
check "IPv4 transfer with vm0's GRO on: both directions intact" xfer v4gro "$VIP4"

echo "# 5. --veth-replies xdp (GRO on): XDP redirects the replies itself"
vsn attach --vm vmif --uplink up0,up1 --xdp-mode native --veth-replies xdp 2>&1 | diag
idx=$(hv ip -j link show vmif | jq '.[0].ifindex')
check "re-attach with --veth-replies xdp: vmif's replies no longer go through TC" eval \
	'[ "$(hv bpftool -j map lookup pinned "$PIN/vsn_reply_tc" key "$idx" 0 0 0 | jq .formatted.value)" = 0 ]'
check "IPv4 transfer with vm0's GRO on, replies redirected by XDP: both directions intact" \
	xfer v4xdp "$VIP4"

vsn detach 2>&1 | diag
check "detach: no vsn program left on the uplinks" \
	eval '! hv tc filter show dev up0 ingress | grep -q bpf && ! hv ip link show up0 | grep -q xdp'
echo "1..$n"
[ "$failed" -eq 0 ]
