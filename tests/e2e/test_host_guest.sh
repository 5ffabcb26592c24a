#!/bin/bash
# End to end, host-initiator mode inside a real Debian guest kernel (6.1, or
# 6.12 with VSN_TESTBED_SERIES=6.12):
# vsn's BPF programs load and attach in the guest (CO-RE portability) and
# steer the guest kernel's own NVMe/TCP connections between its two NICs.
#
#   initiator guest "ini"                 host namespaces                   target guest "tgt"
#   eth0 10.1.0.2/24 ==tap h0== vsnh-f0 [h0 10.1.0.1, p0 10.8.0.2] --+
#                                                                      vsnh-t [tapt 10.9.0.1] == eth0 10.9.0.2
#   eth1 10.2.0.2/24 ==tap h1== vsnh-f1 [h1 10.2.0.1, p1 10.8.1.2] --+        (nvmet, one TCP port 4420)
#
# The guest's own routing sends everything to 10.9.0.2 out of eth0 (default
# route via 10.1.0.1).  In the guest: vsn attach --uplink eth0,eth1 (TC
# egress = vsn_up_egress, XDP on both), apply a `vm: host` volume
# 10.9.0.2:4420 -> backend 10.9.0.2:4420 with path 1 (eth0) and path 2
# (eth1).  Replies always come back through vsnh-f0/eth0 (the target routes
# 10.1.0.0/24 there); only the initiator's transmit side is steered.
#
#   phase A  nvme connect, 8 MiB written and read back: captures on h0 (host
#            side of eth0) and h1 must show the flow on h0 only
#   phase B  a second XDP program (xdp-loader, libxdp dispatcher) joins vsn's
#            on eth0; `vsn route set host 1 1 2`; 4 MiB more written and read
#            back: the same TCP connections (no SYN, same ports) now leave on
#            eth1, nothing after the switch on h0; no NVMe error or reconnect
#   counters per path in the guest agree with the captures; `vsn status`;
#   `vsn detach` leaves the other XDP program alone and no vsn program,
#   filter, qdisc or pin behind.
#
# Usage: tests/e2e/test_host_guest.sh   (root; builds the testbed on first use)
#   E2E_NEXT_HOP=gw|mac|fib   how the paths name their next hop (default gw:
#                             the fabric-side gateway, resolved by
#                             bpf_redirect_neigh; mac: the tap's MAC; fib:
#                             bpf_fib_lookup through the path's uplink)
#   E2E_VNET_HDR=on|off       tap vnet_hdr of the initiator's NICs (default on)
#   E2E_XDP_MODE=auto         vsn attach --xdp-mode in the guest
#   E2E_VSN=PATH              run this vsn binary in the guest instead of build/vsn
#                             (same libraries as build/vsn), e.g. another build tree's
#   E2E_KEEP=1                keep build/e2e/host_guest/ captures on success too
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
ROOT=$PWD
P=vsnh
OUT=$ROOT/build/e2e/host_guest
export VM_RUN=$OUT/vms
# shellcheck source=../../scripts/testbed/vm.sh
. scripts/testbed/vm.sh

NQN=nqn.2026-11.io.vsn:vol1
TGT=10.9.0.2
INI0=10.1.0.2
INI1=10.2.0.2
GW0=10.1.0.1
GW1=10.2.0.1
MAC_H0=02:00:00:48:00:01
MAC_H1=02:00:00:48:01:01
NEXT_HOP=${E2E_NEXT_HOP:-gw}
VNET=${E2E_VNET_HDR:-on}
XDP_MODE=${E2E_XDP_MODE:-auto}
TS="tshark -n -d tcp.port==4420,nvme-tcp"
PY=/usr/bin/python3
# frames from the initiator to the target's NVMe/TCP port
TO_TGT="ip.dst == $TGT && tcp.dstport == 4420"

T_START=$(date +%s%N)
. tests/lib/e2e.sh
check() { # DESCRIPTION: ok/not ok from the status of the previous command
	if [ "$CHK" = 0 ]; then ok "$1"; else nok "$1"; fi
}
nsx() { local ns=$1; shift; ip netns exec "$P-$ns" "$@"; }

CAPS=()
cleanup() {
	local p ns
	for p in "${CAPS[@]}"; do kill -INT "$p" 2>/dev/null; done
	vm_stop_all
	for ns in f0 f1 t; do ip netns del "$P-$ns" 2>/dev/null; done
	wait 2>/dev/null
	return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

case $NEXT_HOP in gw | mac | fib) ;; *) bail "E2E_NEXT_HOP=$NEXT_HOP is gw, mac or fib" ;; esac

# ------------------------------------------------------------------ setup
e2e_prepare
T=$(date +%s%N)
clang -O2 -g -target bpf -I/usr/include/x86_64-linux-gnu -c tests/e2e/xdp_count_pass.bpf.c \
	-o "$OUT/xdp_count_pass.o" >"$OUT/clang.log" 2>&1 ||
	bail "tests/e2e/xdp_count_pass.bpf.c builds" "$OUT/clang.log"

T=$(date +%s%N)
for ns in f0 f1 t; do ip netns add "$P-$ns" || bail "namespace $P-$ns created"; done
(
	set -e
	for ns in f0 f1 t; do
		nsx "$ns" ip link set lo up
		nsx "$ns" sysctl -qw net.ipv4.ip_forward=1
		nsx "$ns" sysctl -qw net.ipv4.conf.all.rp_filter=0
		nsx "$ns" sysctl -qw net.ipv4.conf.default.rp_filter=0
	done
	ip link add p0 netns "$P-f0" type veth peer name t0 netns "$P-t"
	ip link add p1 netns "$P-f1" type veth peer name t1 netns "$P-t"
	nsx f0 ip tuntap add dev h0 mode tap
	nsx f0 ip link set h0 address $MAC_H0
	nsx t ip tuntap add dev tapt mode tap
	for i in p0 h0; do nsx f0 ip link set "$i" up; done
	nsx f1 ip link set p1 up
	for i in t0 t1 tapt; do nsx t ip link set "$i" up; done
	nsx f0 ip addr add $GW0/24 dev h0
	nsx f0 ip addr add 10.8.0.2/30 dev p0
	nsx f1 ip addr add 10.8.1.2/30 dev p1
	nsx t ip addr add 10.8.0.1/30 dev t0
	nsx t ip addr add 10.8.1.1/30 dev t1
	nsx t ip addr add 10.9.0.1/24 dev tapt
	nsx f0 ip route add 10.9.0.0/24 via 10.8.0.1
	nsx f1 ip route add 10.9.0.0/24 via 10.8.1.1
	# The target answers every initiator address through f0 (eth0): only
	# the initiator's transmit side is steered by vsn.
	nsx t ip route add 10.1.0.0/24 via 10.8.0.2
	nsx t ip route add 10.2.0.0/24 via 10.8.1.2
) >"$OUT/topo.log" 2>&1 || bail "topology set up" "$OUT/topo.log"

vm_start tgt --nic "$P-t:tapt" \
	--append "vsn.role=target vsn.ip=$TGT/24 vsn.gw=10.9.0.1 vsn.nqn=$NQN" ||
	bail "target VM started"
vm_start ini --nic "$P-f0:h0" --nic "$P-f1:h1" --vnet-hdr "$VNET" \
	--append "vsn.role=initiator vsn.ip=$INI0/24,$INI1/24 vsn.gw=$GW0" ||
	bail "initiator VM started"
(
	set -e
	# h1 was created by vm_start and moved into vsnh-f1 once QEMU held it.
	nsx f1 ip link set h1 address $MAC_H1
	nsx f1 ip addr add $GW1/24 dev h1
	for ns in f0 f1 t; do nsx "$ns" sysctl -qw net.ipv4.conf.all.rp_filter=0; done
	for i in h1 p1; do nsx f1 sysctl -qw "net.ipv4.conf.$i.rp_filter=0"; done
) >>"$OUT/topo.log" 2>&1 || bail "initiator's second NIC set up in $P-f1" "$OUT/topo.log"
if ! vm_wait tgt VSN-READY 90 2> >(diag) || ! vm_wait ini VSN-READY 90 2> >(diag); then
	bail "target and initiator VMs booted"
fi
echo "# VMs ready, setup $(secs "$T") s"
grep VSN-READY "$VM_RUN/ini/serial.log" | diag

# ------------------------------------------------------------------ helpers
capture() { # NS IF FILE: tcpdump in the background (NS: f0, f1, t), waits until it listens
	local ns=$1 dev=$2 f=$3 i
	# ip netns exec directly (not through a function): $! is tcpdump itself
	ip netns exec "$P-$ns" tcpdump -i "$dev" -s 0 -U -w "$f" 'tcp port 4420' >"$f.log" 2>&1 &
	CAPS+=($!)
	for i in $(seq 50); do grep -q 'listening on' "$f.log" && return 0; sleep 0.1; done
	return 1
}
stop_captures() {
	local p
	for p in "${CAPS[@]}"; do kill -INT "$p" 2>/dev/null; done
	for p in "${CAPS[@]}"; do wait "$p" 2>/dev/null; done
	CAPS=()
}
count() { $TS -r "$1" -Y "$2" 2>/dev/null | wc -l; }
io_bytes() { # FILE OPCODE: bytes of the I/O commands with OPCODE to nsid 1, towards the target
	$TS -r "$1" -Y "nvme.cmd.opc == $2 && ip.dst == $TGT" -T fields -e nvme.cmd.opc \
		-e nvme.cmd.nsid -e nvme.cmd.nlb -E occurrence=a -E aggregator=' ' 2>/dev/null |
		awk -v op="$2" '{ k = NF / 3; for (i = 1; i <= k; i++)
			if ($i == op && $(k + i) == "0x00000001") s += $(2 * k + i) }
			END { printf "%d\n", s * 4096 }'
}
# "sport:frames ..." of the initiator's frames to the target in FILE
flows() { $TS -r "$1" -Y "$TO_TGT" -T fields -e tcp.srcport 2>/dev/null | sort -n | uniq -c |
	awk '{printf "%s:%s ", $2, $1}'; }
syns() { count "$1" "$TO_TGT && tcp.flags.syn == 1"; }
first_ts() { $TS -r "$1" -Y "$TO_TGT" -T fields -e frame.time_epoch 2>/dev/null | head -1; }
counters() { # FILE: vsn -j show counters in the guest
	vm_exec ini -t 30 'vsn -j show counters' >"$1" 2>&1
}
iox() { # TAG MIB SEEK_MIB: write MIB random MiB at SEEK_MIB, read back, compare (in the guest)
	vm_exec ini -t 120 <<EOF
set -e
dd if=/dev/urandom of=/tmp/w$1 bs=1M count=$2 status=none
dd if=/tmp/w$1 of=/dev/nvme0n1 bs=1M seek=$3 oflag=direct status=none
dd if=/dev/nvme0n1 of=/tmp/r$1 bs=1M skip=$3 count=$2 iflag=direct status=none
echo "W \$(sha256sum </tmp/w$1 | cut -c1-64)"
echo "R \$(sha256sum </tmp/r$1 | cut -c1-64)"
cmp /tmp/w$1 /tmp/r$1 && echo CMP same
EOF
}
io_ok() { # OUTPUT: data read back identical
	local sums
	sums=$(echo "$1" | awk '$1 == "W" || $1 == "R" {print $2}' | sort -u)
	grep -q '^CMP same' <<<"$1" && [ "$(echo "$sums" | wc -l)" = 1 ] && [ ${#sums} = 64 ]
}

# ------------------------------------------------------------------ vsn in the guest
T=$(date +%s%N)
case $NEXT_HOP in
gw) NH0=$GW0 NH1=$GW1 ;;
mac) NH0=$MAC_H0 NH1=$MAC_H1 ;;
fib) NH0=fib NH1=fib ;;
esac
cat >"$(vm_file ini vsn.yaml)" <<EOF
uplinks:
  - {interface: eth0}
  - {interface: eth1}
paths:
  - {id: 1, uplink: eth0, next_hop: "$NH0"}
  - {id: 2, uplink: eth1, next_hop: "$NH1"}
backends:
  - {id: 1, name: nvmet-guest, address: $TGT, port: 4420, paths: [1, 2]}
volumes:
  - {id: 1, vm: host, address: $TGT, port: 4420, protocol: nvme-tcp, backends: [1]}
EOF
vm_put ini "$OUT/xdp_count_pass.o"
if [ -n "${E2E_VSN:-}" ]; then
	cp "$E2E_VSN" "$(vm_file ini vsn.bin)" || bail "E2E_VSN=$E2E_VSN copied into the guest"
	echo "# vsn under test: $E2E_VSN (not build/vsn)"
fi
out=$(vm_exec ini -t 60 <<EOF
uname -r
[ -f /share/vsn.bin ] && cp /share/vsn.bin /usr/local/bin/vsn && chmod 755 /usr/local/bin/vsn
grep -q ' /sys/fs/bpf bpf ' /proc/mounts || mount -t bpf bpf /sys/fs/bpf
grep ' /sys/fs/bpf ' /proc/mounts
if [ "$NEXT_HOP" = fib ]; then
	# bpf_fib_lookup through eth1 needs a route through eth1; the kernel's
	# own choice stays eth0 (lower metric).
	ip route add 10.9.0.0/24 via $GW0 dev eth0 metric 5
	ip route add 10.9.0.0/24 via $GW1 dev eth1 metric 10
fi
# clsact and the bpf classifier (TC programs); the kernel would autoload
# them by alias, which busybox modprobe may not resolve.
modprobe sch_ingress; modprobe cls_bpf
echo "ATTACH-BEGIN"
vsn -v attach --uplink eth0,eth1 --xdp-mode $XDP_MODE 2>&1; rc=\$?
echo "ATTACH-END rc=\$rc"
[ \$rc = 0 ] || exit 1
vsn apply /share/vsn.yaml 2>&1 || exit 1
echo "APPLIED"
EOF
)
rc=$?
echo "$out" | diag
echo "$out" | sed -n '/ATTACH-BEGIN/,/ATTACH-END/p' >"$OUT/attach.log"
GUEST_KVER=$(echo "$out" | head -1)
if [ $rc -eq 0 ] && grep -q '^APPLIED' <<<"$out"; then
	ok "vsn attach --uplink eth0,eth1 (xdp-mode $XDP_MODE) and apply of a 'vm: host' volume succeed in the guest (kernel $GUEST_KVER)"
else
	nok "vsn attach --uplink eth0,eth1 (xdp-mode $XDP_MODE) and apply of a 'vm: host' volume succeed in the guest (kernel $GUEST_KVER)"
	bail "vsn usable in the guest (see the attach output above)"
fi
# Which XDP mode and whether libxdp's dispatcher is in use.
XDP_DESC=$(grep -oE 'XDP \((native|generic)\)' "$OUT/attach.log" | sort -u | paste -sd, -)
if grep -q 'libxdp runs vsn as the only program' "$OUT/attach.log"; then
	DISPATCHER=0
else
	DISPATCHER=1
fi
echo "# vsn in the guest: uplinks use ${XDP_DESC:-TC ingress}; libxdp dispatcher: $([ $DISPATCHER = 1 ] && echo yes || echo no)"

out=$(vm_exec ini -t 30 'vsn status; echo "---"; bpftool -j net show; echo; echo "---"; xdp-loader status 2>&1')
echo "$out" | diag
echo "$out" | awk '/^---$/ {n++; next} n == 0' >"$OUT/status.txt"
echo "$out" | awk '/^---$/ {n++; next} n == 1' >"$OUT/net.json"
$PY - "$OUT/status.txt" "$OUT/net.json" <<'EOF' 2>&1 | diag
import json, re, sys
st = open(sys.argv[1]).read()
net = json.load(open(sys.argv[2]))[0]
bad = []
for dev in ("eth0", "eth1"):
    m = re.search(r"^\s*%s\s+ifindex \d+\s+uplink\s+ingress (\S+)\s+egress (\S+)" % dev, st, re.M)
    if not m:
        bad.append("vsn status has no uplink line for " + dev)
    elif m.group(2) != "tc":
        bad.append("%s egress %s, not tc" % (dev, m.group(2)))
    egress = [f for f in net.get("tc", []) if f.get("devname") == dev and f.get("kind") == "clsact/egress"]
    if not any(f.get("name", "").split(":")[0] == "vsn_up_egress" for f in egress):
        bad.append("bpftool: no vsn_up_egress on %s egress: %s" % (dev, egress))
    xdp = [x for x in net.get("xdp", []) if x.get("devname") == dev]
    if not xdp:
        bad.append("bpftool: no XDP program on " + dev)
if "vsn_volumes" not in st:
    bad.append("vsn status lists no maps")
if bad:
    sys.exit("; ".join(bad))
EOF
CHK=${PIPESTATUS[0]}
check "vsn status in the guest: eth0 and eth1 are uplinks with TC egress and XDP ingress; bpftool agrees"

# ------------------------------------------------------------------ phase A
D=$OUT/a
mkdir -p "$D"
capture f0 h0 "$D/h0.pcap" && capture f1 h1 "$D/h1.pcap" || nok "host captures started"
counters "$D/c0.json"
out=$(vm_exec ini -t 60 <<EOF
set -e
nvme connect -t tcp -a $TGT -s 4420 -n $NQN
for i in \$(seq 100); do [ -b /dev/nvme0n1 ] && break; sleep 0.1; done
echo "DEV \$(ls /dev/nvme0n1)"
echo "ADDR \$(cat /sys/class/nvme/nvme0/address)"
EOF
)
rc=$?
echo "$out" | diag
if [ $rc -eq 0 ] && grep -q "^DEV /dev/nvme0n1" <<<"$out" &&
	grep -q "^ADDR traddr=$TGT,trsvcid=4420" <<<"$out"; then
	ok "guest nvme connect -t tcp to $TGT:4420 gave /dev/nvme0n1"
else
	nok "guest nvme connect -t tcp to $TGT:4420 gave /dev/nvme0n1"
	vm_exec ini 'vsn show counters; ip route; ip neigh; dmesg | tail -20' 2>&1 | diag
	bail "NVMe/TCP connection (nothing more to test without it)"
fi
out=$(iox A 8 0)
rc=$?
echo "$out" | diag
SUM_A=$(echo "$out" | awk '$1 == "W" {print $2}')
if [ $rc -eq 0 ] && io_ok "$out"; then
	ok "phase A: 8 MiB written and read back identical (sha256 ${SUM_A:0:16}...)"
else
	nok "phase A: 8 MiB written and read back identical"
fi
counters "$D/c1.json"
vm_exec ini -t 30 'vsn -j show connections' >"$D/conns.json" 2>&1
sleep 0.2
stop_captures

FL_A0=$(flows "$D/h0.pcap")
FL_A1=$(flows "$D/h1.pcap")
W_A0=$(io_bytes "$D/h0.pcap" 0x01)
N_A0=$(count "$D/h0.pcap" "$TO_TGT")
N_A1=$(count "$D/h1.pcap" "$TO_TGT")
SYN_A0=$(syns "$D/h0.pcap")
echo "# phase A h0: $N_A0 frames to the target (source port:frames $FL_A0), $SYN_A0 SYN, NVMe Write $W_A0 bytes"
echo "# phase A h1: $N_A1 frames to the target ($FL_A1)"
if [ "$N_A0" -gt 100 ] && [ "$N_A1" = 0 ] && [ "$SYN_A0" -ge 2 ] && [ "$W_A0" = $((8 << 20)) ]; then
	ok "phase A: the NVMe/TCP flows (admin + I/O queue, 8 MiB of Writes) leave through eth0 only (h0 $N_A0 frames, h1 none)"
else
	nok "phase A: the NVMe/TCP flows leave through eth0 only (h0 $N_A0 frames, Writes $W_A0 B; h1 $N_A1 frames)"
fi
SPORTS_A=$(for f in $FL_A0; do echo "${f%%:*}"; done | sort -n | paste -sd, -)

# vsn's connection table: the guest's connections, host flows on path 1.
$PY - "$D/conns.json" "$SPORTS_A" "$INI0" "$TGT" <<'EOF' 2>&1 | diag
import json, sys
conns = json.load(open(sys.argv[1]))
want = {int(p) for p in sys.argv[2].split(",") if p}
src, tgt = sys.argv[3:5]
mine = {c["sport"]: c for c in conns if c["src"] == src and c["dst"] == tgt and c["dport"] == 4420}
for c in mine.values():
    print("conn vm %d %s:%d -> %s:%d backend %d path %d tx %d pkts" % (c["vm"], c["src"], c["sport"],
          c["dst"], c["dport"], c["backend"], c["path"], c["tx_packets"]))
if not want or want - set(mine):
    sys.exit("connections missing from vsn's table: %s" % sorted(want - set(mine)))
for p in want:
    c = mine[p]
    if (c["vm"], c["volume"], c["backend"], c["backend_address"], c["path"]) != (0, 1, 1, tgt, 1) \
            or c["tx_packets"] == 0:
        sys.exit("connection %d is not host (vm 0) volume 1 backend 1 path 1 with traffic" % p)
EOF
CHK=${PIPESTATUS[0]}
check "vsn show connections in the guest: the guest's connections ($SPORTS_A) are host flows of volume 1 on backend 1, path 1"

# ------------------------------------------------------------------ coexistence
# A second XDP program next to vsn's on eth0 (where the target's replies
# arrive): only possible when libxdp uses its dispatcher.
COEX=0
if [ $DISPATCHER = 1 ]; then
	mode=native
	case $XDP_DESC in *generic*) mode=skb ;; esac
	out=$(vm_exec ini -t 60 <<EOF
xdp-loader load -m $mode -P 10 eth0 /share/xdp_count_pass.o 2>&1 || exit 1
xdp-loader status eth0 2>&1
echo "---"
bpftool -j prog show 2>/dev/null
EOF
	)
	rc=$?
	echo "$out" | awk '/^---$/ {exit} {print}' | diag
	echo "$out" | awk '/^---$/ {n++; next} n == 1' >"$OUT/progs.json"
	if [ $rc -eq 0 ] && grep -qE '^ *=> +[0-9]+ +count_pass' <<<"$out" &&
		grep -qE '^ *=> +[0-9]+ +vsn_up_xdp' <<<"$out" &&
		grep -qE '^eth0 +xdp_dispatcher' <<<"$out"; then
		ok "xdp-loader adds count_pass (priority 10) to eth0 next to vsn_up_xdp in libxdp's dispatcher ($mode)"
		COEX=1
	else
		nok "xdp-loader adds count_pass (priority 10) to eth0 next to vsn_up_xdp in libxdp's dispatcher ($mode)"
	fi
else
	echo "# libxdp did not use its dispatcher in the guest: no coexistence check"
fi
pass_count() { # packets count_pass saw (its map value: 8 bytes, little endian, as bpftool prints them without BTF)
	vm_exec ini -t 30 'bpftool -j map dump name cnt_pass' 2>/dev/null | $PY -c '
import json, sys
v = [e for e in json.load(sys.stdin) if e["key"] in (0, ["0x00", "0x00", "0x00", "0x00"])][0]["value"]
print(v if isinstance(v, int) else int.from_bytes(bytes(int(b, 16) for b in v), "little"))' 2>/dev/null || echo -1
}
[ $COEX = 1 ] && PASS0=$(pass_count)

# ------------------------------------------------------------------ phase B
D=$OUT/b
mkdir -p "$D"
capture f0 h0 "$D/h0.pcap" && capture f1 h1 "$D/h1.pcap" || nok "host captures started"
# Counters and the route change in one guest script: nothing slips between.
out=$(vm_exec ini -t 30 'vsn -j show counters >/share/c2.json && vsn route set host 1 1 2 && vsn -j show routes')
rc=$?
echo "$out" | diag
cp "$(vm_file ini c2.json)" "$D/c2.json"
if [ $rc -eq 0 ] && grep -q '"vm":0,"volume":1,"backend":1,"path":2' <<<"$out"; then
	ok "vsn route set host 1 1 2: the route of (host, volume 1, backend 1) is path 2"
else
	nok "vsn route set host 1 1 2: the route of (host, volume 1, backend 1) is path 2"
fi
out=$(iox B 4 8)
rc=$?
echo "$out" | diag
SUM_B=$(echo "$out" | awk '$1 == "W" {print $2}')
if [ $rc -eq 0 ] && io_ok "$out"; then
	ok "phase B: 4 MiB more written and read back identical after the switch (sha256 ${SUM_B:0:16}...)"
else
	nok "phase B: 4 MiB more written and read back identical after the switch"
fi
counters "$D/c3.json"
out=$(vm_exec ini -t 30 <<'EOF'
echo "STATE $(cat /sys/class/nvme/nvme0/state)"
echo "ADDR $(cat /sys/class/nvme/nvme0/address)"
dmesg | grep -iE 'nvme|blk_update|I/O error' | tail -20
EOF
)
echo "$out" | diag
NVME_LOG=$out
sleep 0.2
stop_captures
[ $COEX = 1 ] && PASS1=$(pass_count)

FL_B0=$(flows "$D/h0.pcap")
FL_B1=$(flows "$D/h1.pcap")
W_B0=$(io_bytes "$D/h0.pcap" 0x01)
W_B1=$(io_bytes "$D/h1.pcap" 0x01)
N_B1=$(count "$D/h1.pcap" "$TO_TGT")
SYN_B=$(($(syns "$D/h0.pcap") + $(syns "$D/h1.pcap")))
T1=$(first_ts "$D/h1.pcap")
N_B0_AFTER=$($TS -r "$D/h0.pcap" -Y "$TO_TGT && frame.time_epoch >= ${T1:-0}" 2>/dev/null | wc -l)
N_B0=$(count "$D/h0.pcap" "$TO_TGT")
BAD_B1=$(count "$D/h1.pcap" "_ws.malformed || _ws.expert.severity >= error")
echo "# phase B h1: $N_B1 frames to the target ($FL_B1), NVMe Write $W_B1 bytes, malformed/errors $BAD_B1"
echo "# phase B h0: $N_B0 frames to the target ($FL_B0), $N_B0_AFTER after the first frame on h1, NVMe Write $W_B0 bytes; SYNs on both $SYN_B"
SPORTS_B=$(for f in $FL_B1; do echo "${f%%:*}"; done | sort -n | paste -sd, -)
if [ "$N_B1" -gt 50 ] && [ "$W_B1" = $((4 << 20)) ] && [ "$W_B0" = 0 ] && [ "$N_B0_AFTER" = 0 ] &&
	[ "$BAD_B1" = 0 ]; then
	ok "phase B: after the route change the NVMe/TCP flow (4 MiB of Writes) leaves through eth1 only (h1 $N_B1 frames; h0 none after the switch)"
else
	nok "phase B: after the route change the NVMe/TCP flow leaves through eth1 only (h1 $N_B1 frames, Writes $W_B1 B; h0 $N_B0_AFTER frames after the switch, Writes $W_B0 B)"
fi
NEW_PORTS=$(comm -13 <(tr , '\n' <<<"$SPORTS_A" | sort) <(tr , '\n' <<<"$SPORTS_B" | sort) | paste -sd, -)
if [ "$SYN_B" = 0 ] && [ -n "$SPORTS_B" ] && [ -z "$NEW_PORTS" ] &&
	grep -q '^STATE live' <<<"$NVME_LOG" &&
	! grep -qiE 'reset|reconnect|error|timeout|failed' <<<"$NVME_LOG"; then
	ok "the existing TCP connections moved NICs: same source ports ($SPORTS_B) on eth1, no SYN, controller live, no NVMe error/reset in dmesg"
else
	nok "the existing TCP connections moved NICs: source ports A [$SPORTS_A] B [$SPORTS_B] (new [$NEW_PORTS]), SYNs $SYN_B, controller/dmesg see above"
fi

# Target-side truth: null_blk holds phase A's and phase B's data.
tsum=$(vm_exec tgt -t 60 "dd if=/dev/nullb0 bs=1M count=8 iflag=direct status=none | sha256sum | cut -c1-64
dd if=/dev/nullb0 bs=1M skip=8 count=4 iflag=direct status=none | sha256sum | cut -c1-64" | paste -sd' ')
if [ -n "$SUM_A" ] && [ -n "$SUM_B" ] && [ "$tsum" = "$SUM_A $SUM_B" ]; then
	ok "the target's null_blk holds both phases' data (8 MiB at 0, 4 MiB at 8 MiB)"
else
	nok "the target's null_blk holds both phases' data (target [$tsum], guest [$SUM_A $SUM_B])"
fi

# Counters: per-path deltas agree with what each NIC carried.  vnet_hdr on:
# one frame on the host per skb vsn saw (GSO frames reach the host whole);
# off: the guest segments after vsn, so frames >= skbs.  A keep-alive may
# fall between a counter snapshot and the end of a capture: small slack.
COUNTER_CHECK='
import json, sys
c = [json.load(open(f)) for f in sys.argv[1:5]]
na0, nb1, vnet, which = int(sys.argv[5]), int(sys.argv[6]), sys.argv[7], sys.argv[8]
def path(i, p): return c[i]["paths"].get(str(p), {"packets": 0, "bytes": 0})
def d(i, j, p, k="packets"): return path(j, p)[k] - path(i, p)[k]
a1, a2, b1, b2 = d(0, 1, 1), d(0, 1, 2), d(2, 3, 1), d(2, 3, 2)
def close(cnt, frames):
    if vnet == "on":
        return abs(cnt - frames) <= max(4, frames // 50)
    return 0 < cnt <= frames + 4
bad = []
if which == "A":
    print("path counters: phase A path1 +%d pkts +%d B, path2 +%d; phase B path1 +%d, path2 +%d pkts +%d B"
          % (a1, d(0, 1, 1, "bytes"), a2, b1, b2, d(2, 3, 2, "bytes")))
    print("frames to the target on the host: phase A h0 %d, phase B h1 %d" % (na0, nb1))
    r = c[3]["reasons"]
    print("reasons at the end: " + " ".join("%s=%d" % (k, v["packets"]) for k, v in r.items() if v["packets"]))
    if a2 or b1:
        bad.append("the unused path counted packets (A path2 %d, B path1 %d)" % (a2, b1))
    if not close(a1, na0):
        bad.append("phase A: path 1 counted %d packets, h0 carried %d frames" % (a1, na0))
    for k in ("malformed", "rewrite_error", "map_full", "fib_miss", "no_route"):
        if r.get(k, {}).get("packets"):
            bad.append("%s=%d" % (k, r[k]["packets"]))
else:
    if not close(b2, nb1):
        bad.append("phase B: path 2 counted %d packets (%d B) for %d frames on h1 (ratio %.2f)"
                   % (b2, d(2, 3, 2, "bytes"), nb1, b2 / max(nb1, 1)))
if bad:
    sys.exit("; ".join(bad))
'
$PY -c "$COUNTER_CHECK" "$OUT/a/c0.json" "$OUT/a/c1.json" "$OUT/b/c2.json" "$OUT/b/c3.json" \
	"$N_A0" "$N_B1" "$VNET" A 2>&1 | diag
CHK=${PIPESTATUS[0]}
check "vsn -j show counters in the guest: path 1 counted phase A's packets (as many as h0 carried), the unused path nothing, no failure reasons"
# A packet steered to another uplink is redirected from the kernel's device
# (eth0) to eth1, where vsn_up_egress sees it once more: it must count once.
$PY -c "$COUNTER_CHECK" "$OUT/a/c0.json" "$OUT/a/c1.json" "$OUT/b/c2.json" "$OUT/b/c3.json" \
	"$N_A0" "$N_B1" "$VNET" B 2>&1 | diag
CHK=${PIPESTATUS[0]}
check "vsn -j show counters in the guest: path 2 counted each phase-B packet once (as many as h1 carried)"

if [ $COEX = 1 ]; then
	# Replies to the guest (sport 4420) that arrived on eth0 in phase B: the
	# other program counted them, vsn's XDP passed them on as no_conn.
	N_RX=$(count "$D/h0.pcap" "ip.src == $TGT && tcp.srcport == 4420")
	echo "# count_pass: $PASS0 -> $PASS1 packets; replies captured on h0 in phase B: $N_RX"
	if [ "$PASS0" -ge 0 ] && [ "$PASS1" -ge $((PASS0 + N_RX)) ] && [ "$N_RX" -gt 50 ]; then
		ok "coexistence: count_pass saw every reply on eth0 (+$((PASS1 - PASS0)) >= $N_RX) while vsn's program ran in the same dispatcher and I/O worked"
	else
		nok "coexistence: count_pass saw every reply on eth0 ($PASS0 -> $PASS1, replies $N_RX)"
	fi
fi

# ------------------------------------------------------------------ detach
out=$(vm_exec ini -t 60 <<'EOF'
nvme disconnect -n nqn.2026-11.io.vsn:vol1 >/dev/null 2>&1
vsn detach 2>&1; echo "DETACH rc=$?"
echo "PROGS $(bpftool prog show 2>/dev/null | grep -oE 'name [a-z_0-9]+' | awk '{print $2}' | sort | paste -sd, -)"
echo "XDPSTATUS"; xdp-loader status 2>&1 | grep -E '^eth|=>'
echo "TC"; for d in eth0 eth1; do tc filter show dev $d egress; tc filter show dev $d ingress; tc qdisc show dev $d | grep clsact; done
echo "PINS $(ls /sys/fs/bpf/vsn 2>&1 | head -3 | paste -sd' ')"
xdp-loader unload --all eth0 >/dev/null 2>&1
echo "AFTER $(bpftool prog show 2>/dev/null | grep -oE 'name [a-z_0-9]+' | awk '{print $2}' | sort | paste -sd, -)"
echo "NET $(bpftool -j net show)"
EOF
)
echo "$out" | diag
PROGS=$(echo "$out" | sed -n 's/^PROGS //p')
TCOUT=$(echo "$out" | sed -n '/^TC$/,/^PINS/p' | grep -v -e '^TC$' -e '^PINS')
AFTER=$(echo "$out" | sed -n 's/^AFTER //p')
NETJ=$(echo "$out" | sed -n 's/^NET //p')
if grep -q '^DETACH rc=0' <<<"$out" && ! grep -q 'vsn_' <<<"$(echo "$PROGS,$AFTER")" &&
	[ -z "$TCOUT" ] && grep -q '^PINS .*No such file' <<<"$out" &&
	[ "$NETJ" = '[{"xdp":[],"tc":[],"flow_dissector":[]}]' ]; then
	ok "vsn detach in the guest: no vsn program, TC filter, clsact qdisc or pin left (programs then: [${PROGS}])"
else
	nok "vsn detach in the guest: no vsn program, TC filter, clsact qdisc or pin left"
fi
if [ $COEX = 1 ]; then
	if grep -qE '=> +[0-9]+ +count_pass' <<<"$(echo "$out" | sed -n '/^XDPSTATUS/,/^TC$/p')" &&
		! grep -q vsn_up_xdp <<<"$(echo "$out" | sed -n '/^XDPSTATUS/,/^TC$/p')"; then
		ok "vsn detach removed only its own XDP program: count_pass stays on eth0"
	else
		nok "vsn detach removed only its own XDP program: count_pass stays on eth0"
	fi
fi

if [ "$failed" -eq 0 ] && [ -z "${E2E_KEEP:-}" ]; then
	rm -f "$OUT"/*/*.pcap
else
	echo "# captures and logs kept in $OUT"
fi
echo "# wall time $(secs "$T_START") s"
[ "$failed" -eq 0 ]
