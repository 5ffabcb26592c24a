#!/bin/bash
# Network-namespace integration test: real TCP through vsn.
#
# Builds the standard topology (tests/lib/topo.sh, prefix vsnn), runs vsn in
# the hypervisor namespace vsnn-hv (pin dir /sys/fs/bpf/vsnn) and moves data
# between a client in the VM namespace and servers in the two backend
# namespaces (tests/netns/tcpx.py: both directions at once, sha256 of every
# byte on both ends).  Which backend served a connection is read from the
# servers' own logs, independently of vsn.
#
#  1. attach (XDP reply path), paths by next-hop MAC: IPv4 and IPv6 through
#     the VIP; the VM only ever sees the VIP; status shows the modes.
#  2. paths by FIB: a route change mid-transfer moves the bytes to up1 (vsn's
#     path counters and the interfaces' own counters); the connection lives.
#  2b. applies that add and remove a path, a backend and routes, 40 times
#     during a transfer: no packet finds a route without its path.
#  2c. checksums on the wire (captures, independent verifier) after DNAT
#     towards the backend and reverse NAT towards the VM, IPv4 and IPv6.
#  3. a backend marked down gets no new connections; its existing one lives.
#  5. bpftool shows the pinned maps with BTF field names.
#  7. re-running attach during a transfer is harmless (XDP mode).
#  6. detach (XDP mode) leaves nothing behind.
#  4. attach --xdp-mode tc: IPv4 (fib) and IPv6 (MAC) through the TC reply
#     path; IPv6 with next_hop fib; re-attach during a transfer (TC mode).
#  6. status in TC mode; detach leaves nothing behind.
# Throughout: tcpdump on the VM's interface must never see a packet from a
# backend's real address, and `vsn -j show connections` must parse as JSON.
#
# Output: "ok N - ..." / "not ok N - ..." lines, diagnostics prefixed "# ".
# Needs root.  Exit status non-zero if anything failed.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
ROOT=$PWD

P=vsnn
PIN=/sys/fs/bpf/vsnn
VSN=$ROOT/build/vsn
PY=/usr/bin/python3
TCPX=$ROOT/tests/netns/tcpx.py
VIP4=192.168.100.10
VIP6=2001:db8:100::10
MB=1000000

SERVER_PIDS=()
CLIENT_PIDS=()
JSON_BAD=0
JSON_READS=0
T=$(mktemp -d /tmp/vsnn-test.XXXXXX)
START=$(date +%s)

. tests/lib/tap.sh
. tests/lib/netns.sh

vsn() { hv "$VSN" --pin-dir "$PIN" "$@"; }

cleanup() {
	netns_down "${CLIENT_PIDS[@]}" "${SERVER_PIDS[@]}"
	echo "# runtime $(($(date +%s) - START))s"
}
trap cleanup EXIT

# ------------------------------------------------------------------ setup

netns_up

F0_MAC=$(nsx fab cat /sys/class/net/f0/address)
F1_MAC=$(nsx fab cat /sys/class/net/f1/address)

# write_cfg FILE mac|fib: vm1 on vmif; paths 1 = up0, 2 = up1; volume 1 =
# VIP4 on backends 1 (be1) and 2 (be2), volume 2 = VIP6 on backends 3 (be1)
# and 4 (be2); every backend's default path is 1 (up0).
write_cfg() {
	local nh1=fib nh2=fib
	if [ "$2" = mac ]; then
		nh1="\"$F0_MAC\""
		nh2="\"$F1_MAC\""
	fi
	cat >"$1" <<EOF
vms:
  - {name: vm1, id: 1, interface: vmif, addresses: [10.0.0.2, "2001:db8::2"]}
uplinks:
  - {interface: up0, capacity: 10gbit}
  - {interface: up1, capacity: 10gbit}
paths:
  - {id: 1, uplink: up0, next_hop: $nh1}
  - {id: 2, uplink: up1, next_hop: $nh2}
backends:
  - {id: 1, name: be1, address: 10.3.1.2, port: 4420, paths: [1, 2]}
  - {id: 2, name: be2, address: 10.3.2.2, port: 4420, paths: [1, 2]}
  - {id: 3, name: be1v6, address: "2001:db8:3:1::2", port: 4420, paths: [1, 2]}
  - {id: 4, name: be2v6, address: "2001:db8:3:2::2", port: 4420, paths: [1, 2]}
volumes:
  - {id: 1, vm: vm1, address: $VIP4, port: 4420, backends: [1, 2]}
  - {id: 2, vm: vm1, address: "$VIP6", port: 4420, backends: [3, 4]}
EOF
}
write_cfg "$T/mac.yaml" mac
write_cfg "$T/fib.yaml" fib

# Servers: one per backend namespace, IPv4 and IPv6 on port 4420.
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

# -------------------------------------------------------------- helpers

# start NAME DST UP DOWN RATE [CLIENT OPTIONS]: a client in the VM
# namespace, in the background; its result goes to $T/NAME.json.
start() {
	local name=$1 dst=$2 up=$3 down=$4 rate=$5
	shift 5
	ip netns exec "$P-vm" "$PY" "$TCPX" client --dst "$dst" --port 4420 --up "$up" \
		--down "$down" --rate "$rate" "$@" >"$T/$name.json" 2>"$T/$name.err" &
	eval "CPID_$name=$!"
	CLIENT_PIDS+=($!)
}

# finish NAME: wait for the client; sets BE to the server (be1/be2) that
# served it; fails unless both directions arrived intact.
finish() {
	local pid rc
	pid=$(eval echo "\$CPID_$1")
	BE=
	wait "$pid"
	rc=$?
	"$PY" "$TCPX" verify "$T/$1.json" be1="$T/be1.log" be2="$T/be2.log" >"$T/$1.verify"
	BE=$(grep -v '^#' "$T/$1.verify")
	grep '^#' "$T/$1.verify"
	if [ $rc -ne 0 ] || [ -z "$BE" ] || grep -q '^# verify' "$T/$1.verify"; then
		echo "# client $1: $(cat "$T/$1.json" "$T/$1.err")"
		return 1
	fi
	return 0
}

# finish_on NAME SERVER: finish, and SERVER (be1/be2) served it.
finish_on() {
	finish "$1" || return 1
	[ "$BE" = "$2" ] || {
		echo "# $1 was served by '$BE', not $2"
		return 1
	}
}

# client_port: source port of the VM's (single) established storage socket.
client_port() {
	local sp=
	for _ in $(seq 50); do
		sp=$(nsx vm ss -tnH state established "( dport = :4420 )" |
			awk '{print $3}' | sed 's/.*://' | sort -n | tail -1)
		[ -n "$sp" ] && break
		sleep 0.1
	done
	echo "$sp"
}

# server_of SPORT: which backend server (be1/be2) accepted the VM's
# connection from SPORT, from the servers' logs.
server_of() {
	local b
	for _ in $(seq 30); do
		for b in be1 be2; do
			if grep -q "\"peer\": \"[^\"]*:$1\"" <<<"$(grep '"event": "accept"' "$T/$b.log")"; then
				echo "$b"
				return
			fi
		done
		sleep 0.1
	done
}

# conn_line SPORT: vsn's (text) view of the VM-side connection from SPORT.
conn_line() { vsn show connections | grep -E "\]:$1 -> "; }
conn_path() { conn_line "$1" | sed -nE 's/.*  path ([0-9]+).*/\1/p' | head -1; }

# vsn -j show connections must be JSON; remember every time it is not.
conns_json() {
	local out
	out=$(vsn -j show connections)
	JSON_READS=$((JSON_READS + 1))
	if ! echo "$out" | jq -e . >/dev/null 2>&1; then
		JSON_BAD=$((JSON_BAD + 1))
		echo "# show -j connections is not JSON: $(echo "$out" | head -c 120)"
	fi
}

# ss_sees_only VIP: the VM's established storage sockets all have the VIP
# as peer, and no backend address appears in the VM's socket table.
ss_sees_only() {
	local vip=$1 out
	out=$(nsx vm ss -tnH state established)
	echo "$out" | diag
	grep -q ":4420$" <<<"$(echo "$out" | awk '{print $4}')" || return 1
	[ -z "$(echo "$out" | awk '{print $4}' | grep ':4420$' | grep -vF "$vip")" ] || return 1
	! grep -qE '10\.3\.[12]\.2|2001:db8:3:[12]::2' <<<"$out"
}

# leak_start NAME: capture on the VM's interface every packet that comes
# from a backend's real address (there must be none: vsn translates them).
leak_start() {
	rm -f "$T/$1.pcap"
	ip netns exec "$P-vm" tcpdump -i vm0 --immediate-mode -nU -Z root -w "$T/$1.pcap" \
		'src net 10.3.0.0/16 or src net 2001:db8:3::/48' 2>/dev/null &
	eval "LEAK_$1=$!"
	CLIENT_PIDS+=($!)
	for _ in $(seq 30); do
		[ -s "$T/$1.pcap" ] && break
		sleep 0.1
	done
}
# leak_check NAME DESCRIPTION: stop the capture; assert it caught nothing.
leak_check() {
	local pid leaks
	pid=$(eval echo "\$LEAK_$1")
	sleep 0.2
	kill -INT "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	leaks=$(tcpdump -nr "$T/$1.pcap" 2>/dev/null | tee "$T/$1.leaks" | wc -l)
	head -4 "$T/$1.leaks" | diag
	check "$2 ($leaks seen)" test "$leaks" -eq 0
}

path_bytes() { vsn -j show counters | jq ".paths[\"$1\"].bytes // 0"; }
if_tx() { hv ip -s -j link show "$1" | jq '.[0].stats64.tx.bytes'; }
# status_mode IF: the ingress mode vsn status reports for IF.
status_mode() { vsn -j status | jq -r --arg i "$1" '.interfaces[] | select(.name == $i) | .ingress'; }

# ------------------------------------------------ 1. attach, transfer

echo "# case 1: attach (XDP replies), paths by next-hop MAC"
vsn attach --vm vmif --uplink up0,up1 2>&1 | diag
check "attach --vm vmif --uplink up0,up1 succeeds" test "${PIPESTATUS[0]}" -eq 0
vsn apply "$T/mac.yaml" 2>&1 | diag
check "apply a config with MAC next hops" test "${PIPESTATUS[0]}" -eq 0

vsn -j status >"$T/status1.json"
check "status: vmif is a VM interface with TC ingress" \
	test "$(jq -r '.interfaces[] | select(.name=="vmif") | "\(.role) \(.ingress) \(.tc_ingress_prog > 0)"' "$T/status1.json")" = "vm tc true"
for u in up0 up1; do
	check "status: $u is an uplink with XDP ingress and TC egress" \
		test "$(jq -r --arg u $u '.interfaces[] | select(.name==$u) | "\(.role) \(.ingress | startswith("xdp")) \(.tc_egress_prog > 0)"' "$T/status1.json")" = "uplink true true"
done
vsn status >"$T/status1.txt" 2>&1
check "status (text) lists vmif, up0, up1 with their modes" \
	bash -c "grep -qE '^ +vmif +ifindex [0-9]+ +vm +ingress tc' $T/status1.txt &&
		grep -qE '^ +up0 +ifindex [0-9]+ +uplink +ingress xdp-(native|generic) +egress tc' $T/status1.txt &&
		grep -qE '^ +up1 +ifindex [0-9]+ +uplink +ingress xdp-(native|generic) +egress tc' $T/status1.txt"

leak_start early
up0_tx0=$(if_tx up0)
p1_0=$(path_bytes 1)
start c1 $VIP4 $((40 * MB)) $((40 * MB)) $((16 * MB))
sleep 1
check "IPv4: the VM's socket has the VIP as peer, never the backend (ss)" ss_sees_only "$VIP4:4420"
conns_json
check "IPv4: 40 MB each way through $VIP4:4420, sha256 equal on both ends" finish c1
echo "# c1 served by $BE: $(jq -c '{peer, seconds}' "$T/c1.json")"
check "IPv4: the client's getpeername() is the VIP" test "$(jq -r .peer "$T/c1.json")" = "$VIP4:4420"
d_p1=$(($(path_bytes 1) - p1_0))
d_up0=$(($(if_tx up0) - up0_tx0))
echo "# path 1 +$d_p1 bytes, up0 tx +$d_up0 bytes"
check "IPv4: path 1 counted the 40 MB, and up0 sent them" \
	test "$d_p1" -ge $((40 * MB)) -a "$d_up0" -ge $((40 * MB))

start c1v6 $VIP6 $((20 * MB)) $((20 * MB)) $((12 * MB))
sleep 0.8
check "IPv6: the VM's socket has the VIP as peer, never the backend (ss)" ss_sees_only "[$VIP6]:4420"
conns_json
check "IPv6: 20 MB each way through [$VIP6]:4420, sha256 equal on both ends" finish c1v6
check "IPv6: the client's getpeername() is the VIP" test "$(jq -r .peer "$T/c1v6.json")" = "[$VIP6]:4420"

# ------------------------------------------------ 2. path change mid-transfer

echo "# case 2: paths by FIB; route set moves a running connection to up1"
vsn apply "$T/fib.yaml" 2>&1 | diag
check "apply the same volumes with next_hop: fib" test "${PIPESTATUS[0]}" -eq 0
p1_a=$(path_bytes 1)
p2_a=$(path_bytes 2)
up1_a=$(if_tx up1)
start c2 $VIP4 $((36 * MB)) $((4 * MB)) $((12 * MB))
sp=$(client_port)
srv=$(server_of "${sp:-0}")
be_id=${srv#be}
echo "# c2: source port $sp, served by ${srv:-?}"
sleep 0.9
p1_b=$(path_bytes 1)
p2_b=$(path_bytes 2)
up1_b=$(if_tx up1)
vsn route set 1 1 "${be_id:-1}" 2 2>&1 | diag
check "route set 1 1 ${be_id:-?} 2 during the transfer" test "${PIPESTATUS[0]}" -eq 0
sleep 0.3
p1_c=$(path_bytes 1)
p2_c=$(path_bytes 2)
up1_c=$(if_tx up1)
conns_json
check "the connection survives the path change (sha256 equal both ways)" finish_on c2 "${srv:-?}"
p1_d=$(path_bytes 1)
p2_d=$(path_bytes 2)
up1_d=$(if_tx up1)
echo "# path 1: $p1_a $p1_b $p1_c $p1_d; path 2: $p2_a $p2_b $p2_c $p2_d; up1 tx: $up1_a $up1_b $up1_c $up1_d"
check "before the change the data went by path 1 (>= 5 MB), none by path 2" \
	test $((p1_b - p1_a)) -ge $((5 * MB)) -a $((p2_b - p2_a)) -eq 0
check "after the change path 2 grows (>= 10 MB in the second half)" \
	test $((p2_d - p2_c)) -ge $((10 * MB))
check "after the change path 1 stops growing" test $((p1_d - p1_c)) -eq 0
check "up1's own tx counter shows path 2's bytes left through up1" \
	test $((up1_d - up1_c)) -ge $(((p2_d - p2_c) * 9 / 10)) -a $((up1_d - up1_c)) -ge $((10 * MB))
check "up1 sent almost nothing before the change (< 1 MB)" test $((up1_b - up1_a)) -lt $MB
check "show connections reports path 2 for the moved connection" \
	test "$(conn_path "${sp:-0}")" = 2
vsn route set 1 1 "${be_id:-1}" 1 >/dev/null 2>&1

# ------------------------------------------------ 2b. applies under traffic

echo "# case 2b: applies that add and remove a path, a backend and routes, under traffic"
# A: path 1 (up0) and 2 (up1), routes of both backends on path 1.  B: path 1
# gone, path 3 (up0, the same next hop) instead, a fifth backend, routes
# on path 3.  Between them vsn apply rewrites paths, backends, the volume's
# table and routes at once; it must write the new entries before it deletes
# the stale ones, so that no packet ever finds a route to a missing path.
applies_cfg() { # FILE PATH-ID EXTRA-BACKEND(0/1)
	{
		cat <<-EOF
		vms:
		  - {name: vm1, id: 1, interface: vmif, addresses: [10.0.0.2, "2001:db8::2"]}
		uplinks:
		  - {interface: up0, capacity: 10gbit}
		  - {interface: up1, capacity: 10gbit}
		paths:
		  - {id: $2, uplink: up0, next_hop: "$F0_MAC"}
		  - {id: 2, uplink: up1, next_hop: "$F1_MAC"}
		backends:
		  - {id: 1, name: be1, address: 10.3.1.2, port: 4420, paths: [$2, 2]}
		  - {id: 2, name: be2, address: 10.3.2.2, port: 4420, paths: [$2, 2]}
		EOF
		[ "$3" = 1 ] && echo "  - {id: 5, name: be1b, address: 10.3.1.2, port: 4421, state: down, paths: [2]}"
		cat <<-EOF
		volumes:
		  - {id: 1, vm: vm1, address: $VIP4, port: 4420, backends: [1, 2$([ "$3" = 1 ] && echo ", 5")]}
		routes:
		  - {vm: vm1, volume: 1, backend: 1, path: $2}
		  - {vm: vm1, volume: 1, backend: 2, path: $2}
		EOF
	} >"$1"
}
applies_cfg "$T/applyA.yaml" 1 0
applies_cfg "$T/applyB.yaml" 3 1
# lost REASON...: packets counted under these reasons so far.
lost() { vsn -j show counters | jq "[.reasons[\"$1\"].packets // 0, .reasons[\"$2\"].packets // 0, .reasons[\"$3\"].packets // 0] | add"; }
vsn apply "$T/applyA.yaml" 2>&1 | diag
check "apply config A (path 1)" test "${PIPESTATUS[0]}" -eq 0
lost0=$(lost no_route rewrite_error fib_miss)
fwd0=$(vsn -j show counters | jq '.reasons.forwarded.packets // 0')
# Wire-sized segments (no TSO/GSO from the VM): many packets per apply, so
# that a moment without a route would be hit.
nsx vm ethtool -K vm0 tso off gso off >/dev/null
start c2b $VIP4 $((300 * MB)) $((4 * MB)) 0
sleep 0.3
ok_applies=0
for i in $(seq 20); do
	vsn apply "$T/applyB.yaml" >"$T/applyB.out" 2>&1 && ok_applies=$((ok_applies + 1))
	vsn apply "$T/applyA.yaml" >"$T/applyA.out" 2>&1 && ok_applies=$((ok_applies + 1))
done
fwd_mid=$(($(vsn -j show counters | jq '.reasons.forwarded.packets // 0') - fwd0))
lost1=$(lost no_route rewrite_error fib_miss)
check "40 applies (A -> B -> A ...) all succeeded during the transfer" test "$ok_applies" -eq 40
check "no packet without a route during the applies ($((lost1 - lost0)) lost, $fwd_mid forwarded meanwhile)" \
	test $((lost1 - lost0)) -eq 0 -a "$fwd_mid" -gt 1000
check "the connection survived 40 applies (sha256 equal both ways)" finish c2b
nsx vm ethtool -K vm0 tso on gso on >/dev/null
vsn apply "$T/mac.yaml" >/dev/null 2>&1

# ------------------------------------------------ 2c. checksums on the wire

echo "# case 2c: IPv4/TCP checksums of rewritten packets, on captures (MAC paths)"
# The VM computes full checksums and sends wire-sized segments (no offload,
# no GSO), so what vsn leaves on the
# wire must carry full, valid ones: towards the backend after its DNAT (TC,
# on f0, the fabric's end of up0), and back to the VM after its reverse NAT
# (XDP, on vm0).  Checked by pktlib's verifiers, not the datapath's code.
nsx vm ethtool -K vm0 tx off gso off >/dev/null
cap_on() { # NS IF FILE FILTER: tcpdump in the background; its pid in CAP
	ip netns exec "$P-$1" tcpdump -i "$2" -s 0 -U -w "$3" "$4" >/dev/null 2>&1 &
	CAP=$!
	CLIENT_PIDS+=($CAP)
}
for fam in 4 6; do
	vip=$VIP4
	[ $fam = 6 ] && vip=$VIP6
	cap_on fab f0 "$T/csum-f0-$fam.pcap" "tcp port 4420"
	cap_f0=$CAP
	cap_on vm vm0 "$T/csum-vm0-$fam.pcap" "tcp port 4420"
	cap_vm=$CAP
	sleep 0.5
	start c2c$fam "$vip" $((2 * MB)) $((2 * MB)) 0
	check "IPv$fam: 2 MB each way with checksum offload off in the VM (sha256 equal)" finish c2c$fam
	sleep 0.3
	kill -INT "$cap_f0" "$cap_vm" 2>/dev/null
	wait "$cap_f0" "$cap_vm" 2>/dev/null
	be_addr=10.3.${BE#be}.2
	vm_addr=10.0.0.2
	if [ $fam = 6 ]; then
		be_addr=2001:db8:3:${BE#be}::2
		vm_addr=2001:db8::2
	fi
	"$PY" "$ROOT/tests/netns/wire_csum.py" "$T/csum-f0-$fam.pcap" --src "$vm_addr" \
		--dst "$be_addr" >"$T/csum-f0-$fam.out" 2>&1
	rc=$?
	diag <"$T/csum-f0-$fam.out"
	check "IPv$fam: every segment vsn sent towards $BE (after DNAT) has valid checksums" \
		test $rc -eq 0
	"$PY" "$ROOT/tests/netns/wire_csum.py" "$T/csum-vm0-$fam.pcap" --src "$vip" \
		--dst "$vm_addr" >"$T/csum-vm0-$fam.out" 2>&1
	rc=$?
	diag <"$T/csum-vm0-$fam.out"
	check "IPv$fam: every reply the VM received from the VIP (after XDP's reverse NAT) has valid checksums" \
		test $rc -eq 0
done
nsx vm ethtool -K vm0 tx on gso on >/dev/null

# ------------------------------------------------ 3. backend down

echo "# case 3: a backend marked down takes no new connections, keeps its old one"
vsn apply "$T/mac.yaml" >/dev/null 2>&1
start c3 $VIP4 $((30 * MB)) $((4 * MB)) $((10 * MB))
sp=$(client_port)
down_name=$(server_of "${sp:-0}")
down_name=${down_name:-be1}
down_id=${down_name#be}
other=be$((3 - down_id))
echo "# long connection from port $sp on backend $down_id ($down_name)"
sleep 0.5
vsn backend set "$down_id" down 2>&1 | diag
check "backend set $down_id down" test "${PIPESTATUS[0]}" -eq 0
check "show backends reports backend $down_id down" \
	test "$(vsn -j show backends | jq -r --argjson i "$down_id" '.[] | select(.id == $i) | .state')" = down
good=0
for i in 1 2 3 4 5 6; do
	start c3n$i $VIP4 $((MB / 2)) $((MB / 2)) 0
	if finish_on c3n$i "$other"; then good=$((good + 1)); fi
	conns_json
done
check "6 new connections all went to $other, intact" test $good -eq 6
conns_json
check "the existing connection to $down_name kept working (sha256 equal)" finish_on c3 "$down_name"
vsn backend set "$down_id" up 2>&1 | diag
leak_check early "cases 1-3: the VM never received a packet from a backend's real address"

# ------------------------------------------------ 5. bpftool shows field names

echo "# case 5: bpftool map dump shows BTF field names"
# dump_has MAP FIELD...: the pinned map's dump names every FIELD.
dump_has() {
	local m=$1 f out
	shift
	out=$(hv bpftool map dump pinned "$PIN/$m" 2>&1) || {
		echo "$out" | head -5 | diag
		return 1
	}
	for f in "$@"; do
		grep -q "\"$f\":" <<<"$out" || {
			echo "# $m: no field $f in: $(echo "$out" | head -c 300)"
			return 1
		}
	done
}
check "bpftool map dump vsn_conns names backend_id, volume_id, vm_id, backend_addr, dir" \
	dump_has vsn_conns backend_id volume_id vm_id backend_addr dir
check "bpftool map dump vsn_paths names vlan_id, ifindex, dmac, flow_label" \
	dump_has vsn_paths vlan_id ifindex dmac flow_label
check "bpftool map dump vsn_volumes names volume_id, chash_gen, vip, port, proto" \
	dump_has vsn_volumes volume_id chash_gen vip port proto
check "bpftool map dump vsn_backends names addr, state, weight, tier" \
	dump_has vsn_backends addr state weight tier
check "bpftool: vsn_backends key 1 holds port 4420 and state up (1)" \
	test "$(hv bpftool -j map lookup pinned "$PIN/vsn_backends" key 1 0 0 0 |
		jq -c '.formatted.value | [.port, .state]')" = "[4420,1]"

# ------------------------------------------------ 7. attach again, live

MAPS="vsn_vm_if vsn_volumes vsn_backends vsn_paths vsn_routes vsn_conns vsn_chash vsn_ifaces vsn_path_stats vsn_be_stats vsn_vm_stats vsn_reasons"
map_ids() {
	local m
	for m in $MAPS; do
		echo "$m $(hv bpftool -j map show pinned "$PIN/$m" | jq .id)"
	done
}
small_dumps() {
	local m
	for m in vsn_vm_if vsn_volumes vsn_backends vsn_paths vsn_routes; do
		hv bpftool -j map dump pinned "$PIN/$m"
	done
}

# reattach_live LABEL ATTACH-ARGS...: run attach again mid-transfer.
reattach_live() {
	local label=$1 before after sp
	shift
	map_ids >"$T/ids.before"
	small_dumps >"$T/dump.before"
	before=$(vsn -j status | jq '.maps.vsn_conns.entries')
	leak_start c7
	start c7 $VIP4 $((30 * MB)) $((8 * MB)) $((12 * MB))
	sp=$(client_port)
	sleep 1
	vsn attach "$@" 2>&1 | diag
	check "$label: attach again during a transfer exits 0" test "${PIPESTATUS[0]}" -eq 0
	check "$label: the connection keeps flowing across the re-attach (sha256 equal)" finish c7
	leak_check c7 "$label: the VM never received a packet from a backend's real address"
	map_ids >"$T/ids.after"
	small_dumps >"$T/dump.after"
	check "$label: the re-attach kept the same maps (same map ids)" cmp -s "$T/ids.before" "$T/ids.after"
	check "$label: vm_if, volumes, backends, paths, routes unchanged by the re-attach" \
		cmp -s "$T/dump.before" "$T/dump.after"
	after=$(vsn -j status | jq '.maps.vsn_conns.entries')
	echo "# vsn_conns entries: $before before, $after after"
	check "$label: vsn_conns kept its entries and holds the live connection" \
		test "$after" -ge $((before + 2)) -a -n "$(conn_line "${sp:-0}")"
}

echo "# case 7: vsn attach on an attached setup (XDP), during a transfer"
reattach_live "XDP mode" --vm vmif --uplink up0,up1
check "after the re-attach the uplinks still run XDP, vmif TC" \
	test "$(status_mode vmif) $(status_mode up0 | cut -c1-3) $(status_mode up1 | cut -c1-3)" = "tc xdp xdp"

# ------------------------------------------------ 6a. detach (XDP mode)

# clean_ifaces: no vsn filter, clsact qdisc, XDP program or pin is left.
clean_ifaces() {
	local dev dir bad=0 out
	for dev in vmif up0 up1; do
		for dir in ingress egress; do
			out=$(hv tc filter show dev $dev $dir)
			[ -z "$out" ] || {
				echo "# $dev $dir filters left: $out"
				bad=1
			}
		done
		if grep -q clsact <<<"$(hv tc qdisc show dev $dev)"; then
			echo "# $dev: clsact qdisc left"
			bad=1
		fi
		if grep -q 'xdp' <<<"$(hv ip link show $dev)"; then
			echo "# $dev: XDP program left: $(hv ip link show $dev)"
			bad=1
		fi
	done
	if [ -e "$PIN" ]; then
		echo "# $PIN left: $(ls -A "$PIN" | tr '\n' ' ')"
		bad=1
	fi
	return $bad
}

echo "# case 6a: detach from XDP mode"
vsn detach 2>&1 | diag
check "detach (XDP mode): exit 0" test "${PIPESTATUS[0]}" -eq 0
check "detach (XDP mode): no filters, clsact, XDP or pins left" clean_ifaces

# ------------------------------------------------ 4. TC reply path

echo "# case 4: attach --xdp-mode tc; IPv4 and IPv6 through the TC reply path"
vsn attach --vm vmif --uplink up0,up1 --xdp-mode tc 2>&1 | diag
check "attach --xdp-mode tc: exit 0" test "${PIPESTATUS[0]}" -eq 0
vsn apply "$T/fib.yaml" 2>&1 | diag
check "apply (fib next hops) after the fresh attach" test "${PIPESTATUS[0]}" -eq 0
check "status: vmif, up0 and up1 all use TC ingress" \
	test "$(status_mode vmif) $(status_mode up0) $(status_mode up1)" = "tc tc tc"
check "no XDP program on up0 or up1 in TC mode" \
	bash -c "! nsenter --net=/run/netns/$P-hv ip link show up0 | grep -q xdp &&
		! nsenter --net=/run/netns/$P-hv ip link show up1 | grep -q xdp"
vsn status >"$T/status4.txt" 2>&1
check "status (text) lists vmif, up0, up1 in TC mode" \
	bash -c "grep -qE '^ +vmif +ifindex [0-9]+ +vm +ingress tc' $T/status4.txt &&
		grep -qE '^ +up0 +ifindex [0-9]+ +uplink +ingress tc +egress tc' $T/status4.txt &&
		grep -qE '^ +up1 +ifindex [0-9]+ +uplink +ingress tc +egress tc' $T/status4.txt"
leak_start tcmode
fwd0=$(vsn -j show counters | jq '.reasons.forwarded.bytes')
start c4 $VIP4 $((30 * MB)) $((30 * MB)) $((15 * MB))
sleep 0.8
check "TC mode, IPv4 (fib): the VM sees only the VIP (ss)" ss_sees_only "$VIP4:4420"
check "TC mode, IPv4 (fib): 30 MB each way through $VIP4:4420, sha256 equal" finish c4

vsn apply "$T/mac.yaml" >/dev/null 2>&1
start c4v6 $VIP6 $((30 * MB)) $((30 * MB)) $((15 * MB))
sleep 0.8
check "TC mode, IPv6 (MAC): the VM sees only the VIP (ss)" ss_sees_only "[$VIP6]:4420"
conns_json
check "TC mode, IPv6 (MAC): 30 MB each way through [$VIP6]:4420, sha256 equal" finish c4v6
fwd1=$(vsn -j show counters | jq '.reasons.forwarded.bytes')
echo "# forwarded bytes +$((fwd1 - fwd0))"
leak_check tcmode "TC mode: the VM never received a packet from a backend's real address"
check "TC mode: vsn forwarded both directions of both transfers (>= 120 MB)" \
	test $((fwd1 - fwd0)) -ge $((120 * MB))

echo "# case 4b: IPv6 next hops: fib behind another uplink's better route, and gateways"
# In this topology the hypervisor's best IPv6 route to the backends is via
# up1 (metric 10; up0's has 1024). The kernel's IPv6 FIB lookup for a fib
# path on up0 answers with up1's route, so vsn must not send the packet out
# of up0 towards up1's next hop (it would never arrive): it counts fib_miss.
# A path whose next hop is a gateway address works on either uplink.
vsn apply "$T/fib.yaml" >/dev/null 2>&1
miss0=$(vsn -j show counters | jq '.reasons.fib_miss.packets')
start c4f1 $VIP6 $MB $MB 0 --connect-timeout 2 --timeout 3
check "IPv6, fib path on up0 behind up1's better route: no connection" not finish c4f1
miss1=$(vsn -j show counters | jq '.reasons.fib_miss.packets')
check "IPv6, fib path on up0 behind up1's better route: counted as fib_miss" \
	test "$miss1" -gt "$miss0"
sed -e 's/next_hop: fib}/next_hop: GW}/' "$T/fib.yaml" |
	awk '/next_hop: GW/ && !done1 { sub("GW", "\"2001:db8:1::2\""); done1 = 1 }
	     /next_hop: GW/ { sub("GW", "\"2001:db8:2::2\"") } { print }' >"$T/gw6.yaml"
vsn apply "$T/gw6.yaml" 2>&1 | diag
start c4g1 $VIP6 $MB $MB 0 --connect-timeout 3 --timeout 5
check "IPv6, gateway next hop on path 1 (up0): 1 MB each way, sha256 equal" finish c4g1
hv ip -6 neigh show dev up0 | diag
vsn route set 1 2 3 2 >/dev/null 2>&1 && vsn route set 1 2 4 2 >/dev/null 2>&1
start c4g2 $VIP6 $MB $MB 0 --connect-timeout 3 --timeout 5
check "IPv6, gateway next hop on path 2 (up1): 1 MB each way, sha256 equal" finish c4g2
vsn apply "$T/fib.yaml" >/dev/null 2>&1
vsn route set 1 2 3 2 >/dev/null 2>&1 && vsn route set 1 2 4 2 >/dev/null 2>&1
start c4f2 $VIP6 $MB $MB 0 --connect-timeout 3 --timeout 5
check "IPv6, fib next hop on path 2 (up1), the best route: 1 MB each way, sha256 equal" finish c4f2

echo "# case 7b: vsn attach --xdp-mode tc again, during a transfer"
reattach_live "TC mode" --vm vmif --uplink up0,up1 --xdp-mode tc

# ------------------------------------------------ 6b. detach (TC mode)

echo "# case 6b: detach from TC mode"
vsn detach 2>&1 | diag
check "detach (TC mode): exit 0" test "${PIPESTATUS[0]}" -eq 0
check "detach (TC mode): no filters, clsact, XDP or pins left" clean_ifaces

echo "# vsn -j show connections: $JSON_BAD of $JSON_READS reads were not JSON"
check "vsn -j show connections is valid JSON every time ($JSON_READS reads)" test "$JSON_BAD" -eq 0

[ "$failed" -eq 0 ]
