#!/bin/bash
# A hostile tenant next to a well-behaved one, with the daemon running:
#
#  1. forged and martian sources (and a forged MAC) sent from VM 1's
#     namespace reach no backend and no fabric link (captures there), while
#     its own SYN does; each refusal counted per VM;
#  2. a SYN flood from VM 1 (to a volume whose target ignores it, and from
#     random forged sources) while VM 2's transfer runs: VM 2's bytes arrive
#     intact, VM 1 stays under its max_connections (rate refusals counted,
#     in the metrics too), and no path is failed or even suspected: SYNs
#     nobody answered never start a path's silence clock;
#  3. a real silent cut of path 1 while only VM 2 is active, its route
#     pinned there by the operator: only VM 2 moves (its pin displaced, not
#     dropped), the path stays up for VM 1 but suspect; VM 1's new
#     connection then finds no answer on it, which fails the path, and the
#     connection comes up on path 2; the cut healed, the pin comes back.
#
# Standard topology (tests/lib/topo.sh, prefix vtn) plus a second VM
# namespace vtn-vm2 [vm20 10.0.6.2] --- [vmif2 10.0.6.1] vtn-hv.
# Needs root, scapy, tcpdump, nft, jq, promtool.
# shellcheck disable=SC2016 # check runs eval strings
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
ROOT=$PWD
P=vtn
PIN=/sys/fs/bpf/vtn
VSN=$ROOT/build/vsn
PY=/usr/bin/python3
TCPX=$ROOT/tests/netns/tcpx.py
T=$(mktemp -d /tmp/vtn.XXXXXX)
SOCK=$T/vsn.sock
DLOG=$T/decisions.log
PIDS=()
. tests/lib/tap.sh
. tests/lib/netns.sh
vsn() { hv env VSN_SOCKET="$SOCK" "$VSN" --pin-dir "$PIN" "$@"; }
nsf() { nsenter --net="/run/netns/$P-fab" "$@"; }
cleanup() {
	netns_down "${PIDS[@]}"
	ip netns del "$P-vm2" 2>/dev/null
}
trap cleanup EXIT
trap "exit 1" INT TERM

refused() { # VM REASON: packets of VM refused for REASON
	vsn -j show counters | jq -r ".vm_refused[\"$1\"].$2 // 0"
}
# client NAME NS VIP UP: a tcpx client in the background ($T/NAME.json).
client() {
	ip netns exec "$P-$2" "$PY" "$TCPX" client --dst "$3" --port 4420 --up "$4" \
		--down 100000 --timeout 30 >"$T/$1.json" 2>"$T/$1.err" &
	eval "CPID_$1=$!"
	PIDS+=($!)
}
# finish NAME: the client exited 0 and both ends got what the other sent.
finish() {
	local pid
	pid=$(eval echo "\$CPID_$1")
	wait "$pid" || {
		echo "# client $1: $(cat "$T/$1.json" "$T/$1.err")"
		return 1
	}
	"$PY" "$TCPX" verify "$T/$1.json" be1="$T/be1.log" be2="$T/be2.log" >"$T/$1.verify" &&
		! grep -q '^# verify' "$T/$1.verify"
}
# port_of NS: the source port of the storage connection established there.
port_of() { nsx "$1" ss -tnH state established "( dport = :4420 )" | awk '{print $3}' | sed 's/.*://;q'; }
# conn_path VM PORT: the path of VM's connection from PORT.
conn_path() {
	vsn -j show connections --vm "$1" --limit 0 |
		jq -r --argjson p "$2" '[.[] | select(.sport == $p)] | sort_by(.idle_s) | .[0].path // empty'
}
# scapy_send NS: the python on stdin sends frames from NS (scapy imported as S,
# MAC/GW the interface's and its peer's MACs, IF the interface).
scapy_send() {
	ip netns exec "$P-$1" "$PY" -c "
import sys, logging
logging.getLogger('scapy.runtime').setLevel(logging.ERROR)
import scapy.all as S
IF, MAC, GW = sys.argv[1], sys.argv[2], sys.argv[3]
exec(sys.stdin.read())" "$2" "$3" "$4"
}

for tool in jq nft tcpdump promtool; do
	command -v "$tool" >/dev/null || fatal "$tool is not installed (scripts/deps.sh)"
done
$PY -c 'import scapy' 2>/dev/null || fatal "python3-scapy is not installed (scripts/deps.sh)"
netns_up
ip netns del "$P-vm2" 2>/dev/null
ip netns add "$P-vm2" || fatal "namespace $P-vm2"
ip link add vm20 netns "$P-vm2" type veth peer name vmif2 netns "$P-hv"
nsx vm2 ip link set lo up
nsx vm2 ip link set vm20 up
nsx hv ip link set vmif2 up
nsx vm2 ip addr add 10.0.6.2/24 dev vm20
nsx hv ip addr add 10.0.6.1/24 dev vmif2
nsx vm2 ip route add default via 10.0.6.1
nsx vm2 ethtool -K vm20 gro on >/dev/null
nsx fab ip route add 10.0.6.0/24 via 10.1.0.1
nsx fab ip route add 10.0.0.0/24 via 10.2.0.1 metric 10 # replies survive f0's cut
nsx fab ip route add 10.0.6.0/24 via 10.2.0.1 metric 10
F0=$(nsx fab cat /sys/class/net/f0/address)
F1=$(nsx fab cat /sys/class/net/f1/address)
VM0_MAC=$(nsx vm cat /sys/class/net/vm0/address)
VMIF_MAC=$(nsx hv cat /sys/class/net/vmif/address)
cat >"$T/vsn.yaml" <<EOF
vms:
  - {name: vm1, id: 1, interface: vmif, addresses: [10.0.0.2, "2001:db8::2"], mac: "$VM0_MAC",
     max_connections: 200, connection_rate: 50, connection_burst: 20}
  - {name: vm2, id: 2, interface: vmif2, addresses: [10.0.6.2]}
uplinks:
  - {interface: up0}
  - {interface: up1}
paths:
  - {id: 1, uplink: up0, next_hop: "$F0"}
  - {id: 2, uplink: up1, next_hop: "$F1"}
backends:
  - {id: 1, address: 10.3.1.2, port: 4420, paths: [1, 2]}
  - {id: 2, address: 10.3.2.2, port: 4420, paths: [1, 2]}
  - {id: 3, address: 10.3.1.2, port: 4430, paths: [1, 2]}
volumes:
  - {id: 1, vm: vm1, address: 192.168.100.10, port: 4420, backends: [1]}
  - {id: 2, vm: vm2, address: 192.168.100.20, port: 4420, backends: [2]}
  - {id: 3, vm: vm1, address: 192.168.100.11, port: 4430, backends: [3]}
controller: {socket: $SOCK, metrics_dir: $T, tick_ms: 100, watch_ms: 20, silent_ms: 150,
  hold_down_ms: 1000, flap_window_ms: 1000, metrics_interval_ms: 200}
EOF
check "attach (two VM interfaces) and apply" eval 'vsn attach --vm vmif,vmif2 --uplink up0,up1 >/dev/null 2>&1 &&
	vsn apply "$T/vsn.yaml" >/dev/null'
for b in be1 be2; do
	ip netns exec "$P-$b" "$PY" "$TCPX" server --port 4420 --log "$T/$b.log" &
	PIDS+=($!)
done
# Backend 3's target ignores whatever reaches it.
nsx be1 nft add table inet ign
nsx be1 nft add chain inet ign in '{ type filter hook input priority 0; }'
nsx be1 nft add rule inet ign in tcp dport 4430 drop
nsenter --net="/run/netns/$P-hv" env VSN_SOCKET="$SOCK" "$VSN" --pin-dir "$PIN" \
	daemon -c "$T/vsn.yaml" --log "$DLOG" >"$T/daemon.err" 2>&1 &
PIDS+=($!)
for _ in $(seq 60); do [ -S "$SOCK" ] && break; sleep 0.05; done
[ -S "$SOCK" ] || fatal "the daemon answers on its socket ($(cat "$T/daemon.err"))"

# ----------------------------------------------- 1. forged and martian sources

echo "# 1. forged and martian sources from VM 1"
caps=()
for c in be1:eth0 be2:eth0 fab:f0 fab:f1; do
	ns=${c%%:*} dev=${c#*:}
	nsx "$ns" tcpdump -i "$dev" -U -n -w "$T/cap-$ns-$dev.pcap" 'tcp or udp' 2>/dev/null &
	caps+=($!)
done
sleep 1 # tcpdump listening
scapy_send vm vm0 "$VM0_MAC" "$VMIF_MAC" <<'EOF'
VIP = "192.168.100.10"
def syn(src, sport, mac=MAC):
    l3 = S.IPv6(src=src, dst="2001:db8:100::10") if ":" in src else S.IP(src=src, dst=VIP)
    return S.Ether(src=mac, dst=GW) / l3 / S.TCP(sport=sport, dport=4420, flags="S")
frames = [syn("10.0.6.2", 47001), syn("10.3.2.2", 47002), syn("127.0.0.1", 47003),
          syn("255.255.255.255", 47004), syn("::1", 47005),
          syn("10.0.0.2", 47006, mac="02:de:ad:be:ef:01"),
          syn("10.0.0.2", 47007)]  # the VM's own: the control
S.sendp(frames, iface=IF, verbose=False)
EOF
sleep 1
kill "${caps[@]}" 2>/dev/null
wait "${caps[@]}" 2>/dev/null
seen() { # PORT: frames of that source port in any capture
	local f n=0
	for f in "$T"/cap-*.pcap; do
		n=$((n + $(tcpdump -r "$f" -n "tcp src port $1" 2>/dev/null | wc -l)))
	done
	echo "$n"
}
check "the VM's own SYN reaches backend 1 (the captures see it)" test "$(seen 47007)" -ge 1
for s in 47001:"another VM's address" 47002:"a backend's address" 47003:127.0.0.1 \
	47004:255.255.255.255 47005:::1 47006:"its own address from a forged MAC"; do
	port=${s%%:*}
	check "nothing from ${s#*:} reaches a backend or the fabric" test "$(seen "$port")" = 0
done
check "VM 1's refusals: spoofed 3 (two addresses, one MAC), martian 3" \
	eval '[ "$(refused 1 spoofed)" = 3 ] && [ "$(refused 1 martian)" = 3 ]'
check "none of them made a connection entry" eval \
	'[ "$(vsn -j show connections --vm 1 --limit 0 | jq "[.[] | select(.sport > 47000 and .sport < 47007)] | length")" = 0 ]'

# ------------------------------------------------------- 2. a SYN flood

echo "# 2. SYN flood from VM 1 while VM 2 transfers"
L=$(loglines)
client c2 vm2 192.168.100.20 12000000
sleep 0.3
t0=$(now)
scapy_send vm vm0 "$VM0_MAC" "$VMIF_MAC" <<'EOF'
import random
own = [S.Ether(src=MAC, dst=GW) / S.IP(src="10.0.0.2", dst="192.168.100.11") /
       S.TCP(sport=20000 + i, dport=4430, flags="S") for i in range(3000)]
forged = [S.Ether(src=MAC, dst=GW) /
          S.IP(src="10.%d.%d.%d" % (random.randint(1, 250), random.randint(0, 255),
                                    random.randint(1, 254)), dst="192.168.100.10") /
          S.TCP(sport=random.randint(1024, 65535), dport=4420, flags="S")
          for _ in range(3000)]
frames = [f for pair in zip(own, forged) for f in pair]
S.sendp(frames, iface=IF, verbose=False)
EOF
echo "# flood of 6000 frames sent in $(sub "$(now)" "$t0") s"
check "VM 2's transfer completes intact beside the flood" finish c2
n1=$(vsn -j show connections --vm 1 --limit 0 | jq length)
check "VM 1 holds at most its max_connections 200 entries ($n1)" test "$n1" -le 200
check "the forged flood was refused as spoofed (>= 3000)" test "$(refused 1 spoofed)" -ge 3003
r=$(refused 1 conn_rate) l=$(refused 1 conn_limit)
check "the own-address flood was refused by its rate (conn_rate $r, conn_limit $l; >= 2700)" \
	test $((r + l)) -ge 2700
sleep 0.5 # past silent_ms, and a metrics interval
check "no path was failed or suspected during the flood (SYNs never start the clock)" eval \
	'[ -z "$(logq "$L" ".event == \"path-failed\" or .event == \"path-silent-for-one-vm\"")" ]'
check "metrics: vsn_vm_refused_packets_total of VM 1 by conn_rate, and promtool accepts them" eval \
	'grep -qE "^vsn_vm_refused_packets_total\{vm=\"1\",reason=\"conn_rate\"\} [1-9]" "$T/vsn.prom" &&
	 promtool check metrics <"$T/vsn.prom" >/dev/null 2>&1'
out=$(vsn -j show connections --limit 2 2>"$T/limit.err")
check "show connections --limit 2: two entries and a note that there are more" eval \
	'[ "$(jq length <<<"$out")" = 2 ] && grep -q "first 2 connections" "$T/limit.err"'
check "show connections --vm 2 shows only VM 2's" eval \
	'vsn -j show connections --vm 2 --limit 0 | jq -e "length >= 1 and all(.[]; .vm == 2)" >/dev/null'

# The datapath's count of VM 1's connections, as if the LRU had evicted
# entries unseen; the daemon's recount (every 10 s) must set it right, count
# what it held beyond the table as lost, and leave out the flood's
# half-open connections once their SYNs are 10 s old.
vm_conns() { # VM: the datapath's count (vsn_vm_state.conns)
	hv bpftool -j map lookup pinned "$PIN/vsn_vm_state" key "$1" 0 0 0 | jq -r .formatted.value.conns
}
hv bpftool map update pinned "$PIN/vsn_vm_state" key 1 0 0 0 value 16 39 0 0 0 0 0 0 0 0 0 0 0 0 0 0
c0=$(vm_conns 1)
for _ in $(seq 50); do
	c1=$(vm_conns 1)
	[ "$c1" -le 5 ] && break
	sleep 0.5
done
lost=$(sed -n 's/^vsn_vm_connections_lost_total{vm="1"} //p' "$T/vsn.prom")
echo "# VM 1's count: set to $c0, recounted to $c1; lost $lost"
check "the daemon's recount corrects the datapath's count ($c0 -> $c1: the flood's half-open ones left out once idle)" \
	eval '[ "$c0" = 10000 ] && [ "$c1" -le 5 ]'
check "what the count held beyond the table is counted lost (vsn_vm_connections_lost_total $lost >= 9800)" \
	eval '[ -n "$lost" ] && [ "$lost" -ge 9800 ]'

# ------------------------------------- 3. a real cut, one VM active, a pin

echo "# 3. silent cut of path 1 while only VM 2 is active"
check "operator pins VM 2's route to path 1" eval 'vsn route set 2 2 2 1 >/dev/null'
nsx vm2 tc qdisc add dev vm20 root tbf rate 16mbit burst 16kb latency 50ms
client c3 vm2 192.168.100.20 5000000
sleep 1
p3=$(port_of vm2)
check "VM 2's transfer runs on path 1" test "$(conn_path 2 "$p3")" = 1
nsx fab nft add table inet cut
nsx fab nft add chain inet cut cutfwd '{ type filter hook forward priority 0; }'
L=$(loglines)
nsf nft add rule inet cut cutfwd iifname f0 drop
t1=$(now)
ev=$(wait_log "$L" '.event == "path-silent-for-one-vm" and .path == 1' 2)
echo "# $ev"
dt=$(sub "$(jq -r .ts <<<"$ev" 2>/dev/null || echo 0)" "$t1")
check "only VM 2's silence: VM 2 moved off path 1 within 300 ms ($dt s)" \
	eval 'jt "$ev" ".vm == 2" && lt "$dt" 0.3'
check "its pin was displaced, not dropped (restored to path 1 later)" \
	jt "$(logq "$L" '.event == "route-pin-displaced"' | sed -n 1p)" \
	'.vm == 2 and .path == 1 and .now_on == 2 and .restored_to == 1'
check "VM 2's transfer completes intact" finish c3
check "path 1 was not failed: VM 1 still uses it" eval \
	'[ -z "$(logq "$L" ".event == \"path-failed\"")" ]'
L2=$(loglines)
client c4 vm 192.168.100.10 200000
ev=$(wait_log "$L2" '.event == "path-failed" and .path == 1' 3)
echo "# $ev"
check "VM 1's unanswered SYNs on the suspect path fail it" \
	jt "$ev" '.reason == "silent" and (.why | test("SYNs unanswered"))'
check "VM 1's new connection comes up on path 2 and completes intact" finish c4
nsx fab nft delete table inet cut
nsx vm2 tc qdisc del dev vm20 root
ev=$(wait_log "$L2" '.event == "route-pin-restored"' 5)
echo "# $ev"
check "path 1 healthy again: VM 2's pin is back on it" eval \
	'jt "$ev" ".vm == 2 and .path == 1" &&
	 vsn -j show routes | jq -e ".[] | select(.vm == 2 and .volume == 2) | .path == 1 and .pinned" >/dev/null'

# ----------------------------------------------- 4. a map nearly full

echo "# 4. vsn status flags a map nearly full"
{
	sed -n '/^vms:/,/^volumes:/p' "$T/vsn.yaml"
	for i in $(seq 1 830); do
		echo "  - {id: $i, vm: vm1, address: 172.16.$((i / 250)).$((1 + i % 250)), backends: [1]}"
	done
	echo "controller: {socket: $SOCK, metrics_dir: $T}"
} >"$T/full.yaml"
check "apply 830 volumes (81 % of vsn_volumes)" eval 'vsn apply "$T/full.yaml" >/dev/null'
check "vsn status: vsn_volumes WARNING: nearly full" eval \
	'vsn status | grep -E "^ +vsn_volumes .*WARNING: nearly full"'
check "vsn -j status: the map carries the warning, vsn_conns does not" eval \
	'vsn -j status | jq -e ".maps.vsn_volumes.warning == \"nearly full\" and (.maps.vsn_conns.warning == null)" >/dev/null'
sed 's/^/# log: /' "$DLOG" | tail -20
echo "1..$n"
[ "$failed" -eq 0 ]
