#!/bin/bash
# Bytes on the wire for what BPF_PROG_TEST_RUN cannot show: the TC program
# pushes a path's VLAN tag as an offloaded tag, which only appears when the
# frame leaves the uplink.  A real TCP client connects through a path with
# VLAN 100 and DSCP 10; a capture on the fabric side of the uplink checks
# the tag, the DSCP, the translated address and the IP checksum.  (This
# kernel has no 8021q module, so the fabric cannot answer tagged frames:
# the test looks at the client's connection attempts, not a transfer.)
set -uo pipefail
cd "$(dirname "$0")/../.."

P=vsnw
PIN=/sys/fs/bpf/vsnw
VSN=build/vsn
T=$(mktemp -d /tmp/vsnw.XXXXXX)
PIDS=()
. tests/lib/tap.sh
. tests/lib/netns.sh
vsn() { hv "$VSN" --pin-dir "$PIN" "$@"; }
trap 'netns_down "${PIDS[@]}"' EXIT

netns_up
F0_MAC=$(nsx fab cat /sys/class/net/f0/address)

cat >"$T/vsn.yaml" <<EOF
vms:
  - {name: vm1, id: 1, interface: vmif, addresses: [10.0.0.2, "2001:db8::2"]}
uplinks:
  - {interface: up0}
  - {interface: up1}
paths:
  - {id: 1, uplink: up0, next_hop: "$F0_MAC", vlan: 100, dscp: 10}
backends:
  - {id: 1, address: 10.3.1.2, port: 4420, paths: [1]}
volumes:
  - {id: 1, vm: vm1, address: 192.168.100.10, port: 4420, backends: [1]}
EOF
# Someone else's TC program on up1 egress, there before vsn: it must
# survive vsn attach and detach, and so must the clsact qdisc it lives in.
printf '%s\n' '#include <linux/bpf.h>' '#include <bpf/bpf_helpers.h>' \
	'SEC("tc") int other_prog(struct __sk_buff *skb) { return 0; }' \
	'char LICENSE[] SEC("license") = "GPL";' >"$T/other.c"
clang -O2 -target bpf -I/usr/include/x86_64-linux-gnu -c "$T/other.c" -o "$T/other.o"
nsx hv tc qdisc add dev up1 clsact
nsx hv tc filter add dev up1 egress prio 7 bpf da obj "$T/other.o" sec tc
other_there() { grep -q other_prog <<<"$(nsx hv tc filter show dev up1 egress)"; }
vsn attach --vm vmif --uplink up0,up1 >/dev/null 2>&1
check "attach" test $? -eq 0
check "another TC program on up1 egress survives vsn attach" other_there
vsn apply "$T/vsn.yaml" >/dev/null
check "apply a path with VLAN 100 and DSCP 10" test $? -eq 0

nsx fab tcpdump -Q in -nn -e -vv -i f0 -c 3 -w "$T/f0.pcap" 'vlan 100 and tcp' \
	>/dev/null 2>&1 &
CAP=$!
PIDS+=($CAP)
sleep 0.5
# SYN and its retransmissions (after 1 s and 3 s): three tagged frames.
timeout 4 ip netns exec "$P-vm" socat -u OPEN:/dev/null TCP:192.168.100.10:4420 2>/dev/null
sleep 0.3
kill "$CAP" 2>/dev/null
wait "$CAP" 2>/dev/null
tcpdump -nn -e -vv -r "$T/f0.pcap" 2>/dev/null >"$T/f0.txt"
frames=$(grep -c 'vlan 100' "$T/f0.txt")
check "SYNs leave up0 tagged with VLAN 100 ($frames captured)" test "$frames" -ge 2
check "every captured frame has DSCP 10 (tos 0x28)" \
	bash -c "! grep -E '^[0-9].*vlan 100' '$T/f0.txt' | grep -vq 'tos 0x28'"
check "no captured frame has a bad IPv4 header checksum" \
	bash -c "! grep -q 'bad cksum' '$T/f0.txt'"
check "frames carry the backend as destination, never the VIP" \
	bash -c "grep -q '> 10.3.1.2.4420' '$T/f0.txt' && ! grep -q '192.168.100.10' '$T/f0.txt'"
vsn detach >/dev/null 2>&1
check "detach" test $? -eq 0
check "the other TC program on up1 egress survives vsn detach" other_there
check "vsn's own filter is gone from up1 egress" \
	bash -c "! ip netns exec $P-hv tc filter show dev up1 egress | grep -q vsn_up_egress"
check "the clsact vsn created on up0 is gone, the pre-existing one on up1 stays" \
	bash -c "! ip netns exec $P-hv tc qdisc show dev up0 | grep -q clsact &&
		ip netns exec $P-hv tc qdisc show dev up1 | grep -q clsact"
echo "1..$n"
[ "$failed" -eq 0 ]
