#!/bin/bash
# End to end, with real kernels: a tenant VM's NVMe/TCP initiator reaches its
# volume at the virtual address 192.168.100.10:4420; vsn (TC on the VM's tap,
# XDP on the uplinks) maps it to a kernel nvmet target VM at 10.3.1.2:4420.
#
#   vsne-hv  [tap0 10.0.0.1] <-> tenant VM "vm1" eth0 10.0.0.2 (initiator)
#            [up0 10.1.0.1] --- [f0 10.1.0.2]  vsne-fab  [tapt 10.3.1.1] <-> target VM
#            [up1 10.2.0.1] --- [f1 10.2.0.2]            "tgt" eth0 10.3.1.2 (nvmet, null_blk)
#
# vsn runs in vsne-hv: attach --vm tap0 --uplink up0,up1; volume 1 of vm1 =
# 192.168.100.10:4420 -> backend 1 (10.3.1.2:4420) over path 1 (up0, FIB).
# For each tap mode (vnet_hdr on: TSO super-frames reach vsn; vnet_hdr off:
# wire-sized frames) the tenant VM connects, writes 8 MiB of random data and
# reads it back, while tcpdump records up0 and f0 (host side), tap0 and eth0
# inside the tenant VM.  Checks: the data (in the VM and on the target's
# null_blk), well-formed NVMe/TCP PDUs to the real target on up0, only the
# VIP ever seen by the VM, vsn's connection table and counters.  vsne-hv
# routes (ip_forward=1, as tests/lib/topo.sh); after the last mode the VM
# connects once more with IPv4 forwarding off there, which must work too
# (vsn redirects by itself; a hypervisor need not route).
#
# Usage: tests/e2e/test_nvme_vip.sh   (root; builds the testbed on first use)
#   E2E_MODES="on off"   tap vnet_hdr modes to run (default both)
#   E2E_XDP_MODE=auto    vsn attach --xdp-mode
#   E2E_HV_FORWARD=1     net.ipv4.ip_forward in vsne-hv during the main runs
#   E2E_KEEP=1           keep build/e2e/nvme_vip/ captures on success too
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
ROOT=$PWD
P=vsne
PIN=/sys/fs/bpf/vsne
OUT=$ROOT/build/e2e/nvme_vip
export VM_RUN=$OUT/vms
# shellcheck source=../../scripts/testbed/vm.sh
. scripts/testbed/vm.sh

NQN=nqn.2026-11.io.vsn:vol1
VIP=192.168.100.10
TGT=10.3.1.2
VMADDR=10.0.0.2
MIB=8
MODES=${E2E_MODES:-on off}
XDP_MODE=${E2E_XDP_MODE:-auto}
HV_FORWARD=${E2E_HV_FORWARD:-1}
VSN="nsenter --net=/run/netns/$P-hv $ROOT/build/vsn --pin-dir $PIN"
TS="tshark -n -d tcp.port==4420,nvme-tcp"
PY=/usr/bin/python3

T_START=$(date +%s%N)
. tests/lib/e2e.sh

CAPS=()
cleanup() {
	local p
	for p in "${CAPS[@]}"; do kill -INT "$p" 2>/dev/null; done
	vm_stop_all
	e2e_remove_env
	wait 2>/dev/null
	return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------------ setup
e2e_prepare

T=$(date +%s%N)
ip netns add "$P-hv" && ip netns add "$P-fab" || bail "namespaces $P-hv/$P-fab created"
{
	hx ip link set lo up
	fx ip link set lo up
	ip link add up0 netns "$P-hv" type veth peer name f0 netns "$P-fab"
	ip link add up1 netns "$P-hv" type veth peer name f1 netns "$P-fab"
	hx ip tuntap add dev tap0 mode tap
	fx ip tuntap add dev tapt mode tap
	for i in up0 up1 tap0; do hx ip link set "$i" up; done
	for i in f0 f1 tapt; do fx ip link set "$i" up; done
	hx ip addr add 10.0.0.1/24 dev tap0
	hx ip addr add 10.1.0.1/24 dev up0
	hx ip addr add 10.2.0.1/24 dev up1
	fx ip addr add 10.1.0.2/24 dev f0
	fx ip addr add 10.2.0.2/24 dev f1
	fx ip addr add 10.3.1.1/24 dev tapt
	hx ip route add 10.3.0.0/16 via 10.1.0.2 dev up0
	hx ip route add 10.3.0.0/16 via 10.2.0.2 dev up1 metric 10
	fx ip route add 10.0.0.0/24 via 10.1.0.1
	fx sysctl -qw net.ipv4.ip_forward=1
	hx sysctl -qw net.ipv4.ip_forward="$HV_FORWARD"
	# The fabric plays the wire: frames reaching the uplinks carry complete
	# checksums (vsn's XDP reply path needs them).
	fx ethtool -K f0 tx off
	fx ethtool -K f1 tx off
} >"$OUT/topo.log" 2>&1 || bail "topology set up" "$OUT/topo.log"

cat >"$OUT/vsn.yaml" <<EOF
vms:
  - {name: vm1, id: 1, interface: tap0, addresses: [10.0.0.2, "2001:db8::2"]}
uplinks:
  - {interface: up0}
  - {interface: up1}
paths:
  - {id: 1, uplink: up0, next_hop: fib}
  - {id: 2, uplink: up1, next_hop: fib}
backends:
  - {id: 1, name: nvmet-vm, address: $TGT, port: 4420, paths: [1, 2]}
volumes:
  - {id: 1, vm: vm1, address: $VIP, port: 4420, protocol: nvme-tcp, backends: [1]}
EOF
if $VSN attach --vm tap0 --uplink up0,up1 --xdp-mode "$XDP_MODE" >"$OUT/attach.log" 2>&1 &&
	$VSN apply "$OUT/vsn.yaml" >>"$OUT/attach.log" 2>&1; then
	ok "vsn attached (tap0; up0,up1 xdp-mode $XDP_MODE) and config applied"
	$VSN status 2>&1 | diag
else
	bail "vsn attached and config applied" "$OUT/attach.log"
fi

vm_start tgt --nic "$P-fab:tapt" \
	--append "vsn.role=target vsn.ip=$TGT/24 vsn.gw=10.3.1.1 vsn.nqn=$NQN" ||
	bail "target VM started"
echo "# setup $(secs "$T") s"

# ------------------------------------------------------------------ helpers
capture() { # NS IF FILE: tcpdump in the background, waits until it listens
	local ns=$1 dev=$2 f=$3 i
	ip netns exec "$ns" tcpdump -i "$dev" -s 0 -U -w "$f" 'tcp port 4420' >"$f.log" 2>&1 &
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
# PDU types of the frames matching FILTER in FILE, one per line, sorted
pdu_types() { $TS -r "$1" -Y "$2" -T fields -e nvme-tcp.type -E aggregator=' ' 2>/dev/null |
	tr ' ' '\n' | grep -v '^$' | sort -n | uniq -c | awk '{printf "%s:%s ", $2, $1}'; }
has_types() { # "TYPES-STRING" TYPE...: every TYPE occurs
	local t
	for t in "${@:2}"; do [[ " $1" == *" $t:"* ]] || return 1; done
}
count() { $TS -r "$1" -Y "$2" 2>/dev/null | wc -l; }
io_bytes() { # FILE OPCODE: bytes of the I/O commands with OPCODE to nsid 1, towards the target
	$TS -r "$1" -Y "nvme.cmd.opc == $2 && ip.dst == $TGT" -T fields -e nvme.cmd.opc \
		-e nvme.cmd.nsid -e nvme.cmd.nlb -E occurrence=a -E aggregator=' ' 2>/dev/null |
		awk -v op="$2" '{ k = NF / 3; for (i = 1; i <= k; i++)
			if ($i == op && $(k + i) == "0x00000001") s += $(2 * k + i) }
			END { printf "%d\n", s * 4096 }'
}
max_len() { # FILE FILTER: largest frame
	$TS -r "$1" -Y "$2" -T fields -e frame.len 2>/dev/null | sort -n | tail -1; }

# vsn redirects the VM's storage traffic itself: the hypervisor need not route
# (ip_forward off is a normal hypervisor setting).  Same VM, new connection,
# 1 MiB written and read back, with IPv4 forwarding off in vsne-hv.
check_forwarding_off() { # TAG
	local before after out rc
	before=$(fib_misses)
	hx sysctl -qw net.ipv4.conf.all.forwarding=0
	out=$(vm_exec vm1 -t 60 <<EOF
nvme connect -t tcp -a $VIP -s 4420 -n $NQN || exit 1
for i in \$(seq 100); do [ -b /dev/nvme0n1 ] && break; sleep 0.1; done
dd if=/dev/urandom of=/tmp/w1 bs=1M count=1 status=none
dd if=/tmp/w1 of=/dev/nvme0n1 bs=1M oflag=direct status=none &&
dd if=/dev/nvme0n1 of=/tmp/r1 bs=1M count=1 iflag=direct status=none &&
cmp /tmp/w1 /tmp/r1 && echo CMP same
nvme disconnect -n $NQN >/dev/null
EOF
	)
	rc=$?
	hx sysctl -qw net.ipv4.conf.all.forwarding="$HV_FORWARD"
	after=$(fib_misses)
	echo "$out" | diag
	echo "# fib_miss counter $before -> $after"
	if [ $rc -eq 0 ] && grep -q '^CMP same' <<<"$out" && [ "$after" = "$before" ]; then
		ok "[$1] with IPv4 forwarding off in the hypervisor namespace, connect + 1 MiB IO through the VIP still work (no fib_miss)"
	else
		nok "[$1] with IPv4 forwarding off in the hypervisor namespace, connect + 1 MiB IO through the VIP still work (no fib_miss)"
	fi
}
fib_misses() { $VSN -j show counters 2>/dev/null |
	$PY -c 'import json,sys; print(json.load(sys.stdin)["reasons"]["fib_miss"]["packets"])'; }

# ------------------------------------------------------------------ one mode
run_mode() { # on|off
	local mode=$1 D T1 out rc sums tsum tag
	D=$OUT/vnet_hdr-$mode
	tag="vnet_hdr=$mode"
	local ty malformed bad nvip ntgt cnt nwr nrd big
	mkdir -p "$D"
	T1=$(date +%s%N)
	echo "# --- tenant VM with tap vnet_hdr=$mode"
	vm_start vm1 --nic "$P-hv:tap0" --vnet-hdr "$mode" \
		--append "vsn.role=initiator vsn.ip=$VMADDR/24 vsn.gw=10.0.0.1" || {
		nok "[$tag] tenant VM started"
		return
	}
	if ! vm_wait tgt VSN-READY 90 2> >(diag) || ! vm_wait vm1 VSN-READY 90 2> >(diag); then
		nok "[$tag] target and tenant VMs booted"
		vm_stop vm1
		return
	fi
	echo "# VMs ready $(secs "$T1") s after start"

	capture "$P-hv" up0 "$D/up0.pcap" && capture "$P-hv" tap0 "$D/tap0.pcap" &&
		capture "$P-fab" f0 "$D/f0.pcap" || nok "[$tag] host captures started"

	# Connect to the VIP; the VM records its own view of the traffic.
	out=$(vm_exec vm1 -t 60 <<EOF
set -e
ethtool -K eth0 gro off >/dev/null 2>&1 || true  # capture wire frames, not GRO merges
setsid tcpdump -Z root -i eth0 -s 0 -U -w /tmp/vm.pcap 'tcp port 4420' >/tmp/td.log 2>&1 </dev/null &
echo \$! >/tmp/td.pid
for i in \$(seq 100); do grep -q 'listening on' /tmp/td.log && break; sleep 0.1; done
nvme connect -t tcp -a $VIP -s 4420 -n $NQN
for i in \$(seq 100); do [ -b /dev/nvme0n1 ] && break; sleep 0.1; done
echo "DEV \$(ls /dev/nvme0n1)"
echo "ADDR \$(cat /sys/class/nvme/nvme0/address)"
echo "SUBNQN \$(cat /sys/class/nvme/nvme0/subsysnqn)"
EOF
	)
	rc=$?
	echo "$out" | diag
	if [ $rc -eq 0 ] && grep -q "^DEV /dev/nvme0n1" <<<"$out" &&
		grep -q "^ADDR traddr=$VIP,trsvcid=4420" <<<"$out" &&
		grep -q "^SUBNQN $NQN" <<<"$out"; then
		ok "[$tag] nvme connect to $VIP:4420 gave /dev/nvme0n1 of $NQN"
	else
		nok "[$tag] nvme connect to $VIP:4420 gave /dev/nvme0n1 of $NQN"
		{
			echo "vsne-hv routes, neighbours, links:"
			ip -n "$P-hv" route
			ip -n "$P-hv" neigh
			ip -n "$P-hv" -br link
			$VSN show counters
		} 2>&1 | diag
	fi
	$VSN -j show connections >"$D/conns.json" 2>&1

	# Write random data, read it back; the target's null_blk must hold it too.
	out=$(vm_exec vm1 -t 90 <<EOF
set -e
dd if=/dev/urandom of=/tmp/w bs=1M count=$MIB status=none
dd if=/tmp/w of=/dev/nvme0n1 bs=1M oflag=direct status=none
dd if=/dev/nvme0n1 of=/tmp/r bs=1M count=$MIB iflag=direct status=none
echo "W \$(sha256sum </tmp/w | cut -c1-64)"
echo "R \$(sha256sum </tmp/r | cut -c1-64)"
cmp /tmp/w /tmp/r && echo CMP same
EOF
	)
	rc=$?
	echo "$out" | diag
	sums=$(echo "$out" | awk '$1 == "W" || $1 == "R" {print $2}' | sort -u)
	if [ $rc -eq 0 ] && grep -q '^CMP same' <<<"$out" && [ "$(echo "$sums" | wc -l)" = 1 ] &&
		[ ${#sums} = 64 ]; then
		ok "[$tag] $MIB MiB written through the VIP read back identical (sha256 ${sums:0:16}...)"
	else
		nok "[$tag] $MIB MiB written through the VIP read back identical"
	fi
	tsum=$(vm_exec tgt -t 60 "dd if=/dev/nullb0 bs=1M count=$MIB iflag=direct status=none | sha256sum | cut -c1-64")
	if [ -n "$sums" ] && [ "$tsum" = "$sums" ]; then
		ok "[$tag] the target's null_blk holds the same $MIB MiB"
	else
		nok "[$tag] the target's null_blk holds the same $MIB MiB (target ${tsum:0:16}, VM ${sums:0:16})"
	fi

	out=$(vm_exec vm1 -t 60 <<EOF
nvme disconnect -n $NQN
sleep 0.3
p=\$(cat /tmp/td.pid); kill -INT \$p
for i in \$(seq 50); do kill -0 \$p 2>/dev/null || break; sleep 0.1; done
cat /tmp/td.log
cp /tmp/vm.pcap /share/vm.pcap
EOF
	)
	echo "$out" | grep -E 'disconnected|packets' | diag
	sleep 0.3
	stop_captures
	$VSN -j show counters >"$D/counters.json" 2>&1
	$VSN -j show telemetry >"$D/telemetry.json" 2>&1
	[ "$mode" = "$LAST_MODE" ] && check_forwarding_off "$tag"
	vm_stop vm1
	echo "# IO and captures done $(secs "$T1") s after start"

	# (b) up0: NVMe/TCP to the real target, well formed.
	ty=$(pdu_types "$D/up0.pcap" "nvme-tcp && ip.dst == $TGT && tcp.dstport == 4420")
	malformed=$(count "$D/up0.pcap" "_ws.malformed || _ws.expert.severity >= error")
	nvip=$(count "$D/up0.pcap" "ip.addr == $VIP")
	# Bytes of Write (0x01) and Read (0x02) commands to nsid 1 (tshark shows
	# nvme.cmd.nlb as a block count already, not 0-based; 4 KiB blocks).
	nwr=$(io_bytes "$D/up0.pcap" 0x01)
	nrd=$(io_bytes "$D/up0.pcap" 0x02)
	cnt=$(count "$D/up0.pcap" "nvme.fabrics.cmd.connect.data.subnqn == \"$NQN\" && ip.dst == $TGT")
	echo "# up0: PDU types (type:count) $ty; connect commands $cnt; write $nwr / read $nrd bytes; malformed/errors $malformed; frames with the VIP $nvip"
	if has_types "$ty" 0 4 6 && [ "$cnt" -ge 2 ] && [ "$malformed" = 0 ] && [ "$nvip" = 0 ] &&
		[ "$nwr" = $((MIB << 20)) ] && [ "$nrd" -ge $((MIB << 20)) ]; then
		ok "[$tag] up0 carries well-formed NVMe/TCP to $TGT:4420 (ICReq, Connect to $NQN, Write $MIB MiB, Read, H2CData), never the VIP"
	else
		nok "[$tag] up0 carries well-formed NVMe/TCP to $TGT:4420, never the VIP"
	fi
	# The fabric side also sees the target's replies (before the uplink's XDP).
	ty=$(pdu_types "$D/f0.pcap" "nvme-tcp && ip.src == $TGT && ip.dst == $VMADDR && tcp.srcport == 4420")
	malformed=$(count "$D/f0.pcap" "_ws.malformed || _ws.expert.severity >= error")
	echo "# f0 (fabric): reply PDU types $ty; malformed/errors $malformed"
	if has_types "$ty" 1 5 7 && [ "$malformed" = 0 ]; then
		ok "[$tag] fabric carries the target's replies $TGT:4420 -> $VMADDR (ICResp, CapsuleResp, C2HData)"
	else
		nok "[$tag] fabric carries the target's replies $TGT:4420 -> $VMADDR"
	fi

	# (c) the tenant VM sees only the VIP.
	if [ -s "$(vm_file vm1 vm.pcap)" ]; then
		cp "$(vm_file vm1 vm.pcap)" "$D/vm.pcap"
	fi
	ntgt=$(count "$D/vm.pcap" "ip.addr == $TGT")
	nvip=$(count "$D/vm.pcap" "ip.src == $VIP && tcp.srcport == 4420")
	local others
	others=$($TS -r "$D/vm.pcap" -T fields -e ip.src -e ip.dst 2>/dev/null | tr '\t' '\n' |
		sort -u | grep -vxE "$VMADDR|${VIP//./\\.}" | paste -sd, -)
	ty=$(pdu_types "$D/vm.pcap" "nvme-tcp && ip.src == $VIP")
	bad=$($TS -o ip.check_checksum:TRUE -o tcp.check_checksum:TRUE -r "$D/vm.pcap" \
		-Y "ip.src == $VIP && (ip.checksum.status == 0 || tcp.checksum.status == 0)" 2>/dev/null | wc -l)
	malformed=$(count "$D/vm.pcap" "_ws.malformed || _ws.expert.severity >= error")
	echo "# VM eth0: $nvip frames from the VIP, $ntgt with $TGT, other addresses [${others}], reply PDU types $ty, bad checksums $bad, malformed $malformed"
	if [ "$nvip" -gt 100 ] && [ "$ntgt" = 0 ] && [ -z "$others" ] && has_types "$ty" 1 5 7 &&
		[ "$bad" = 0 ] && [ "$malformed" = 0 ]; then
		ok "[$tag] inside the VM the only peer is $VIP:4420 (never $TGT); replies well formed with valid IP/TCP checksums"
	else
		nok "[$tag] inside the VM the only peer is $VIP:4420 (never $TGT); replies well formed with valid IP/TCP checksums"
	fi
	ntgt=$(count "$D/tap0.pcap" "ip.addr == $TGT")
	nvip=$(count "$D/tap0.pcap" "ip.dst == $VIP")
	big=$(max_len "$D/tap0.pcap" "ip.dst == $VIP")
	echo "# tap0: $nvip frames to the VIP (largest ${big:-0} bytes), $ntgt with $TGT"
	if [ "$nvip" -gt 0 ] && [ "$ntgt" = 0 ]; then
		ok "[$tag] tap0 never shows $TGT"
	else
		nok "[$tag] tap0 never shows $TGT"
	fi
	# The mode took effect: TSO super-frames from the VM only with vnet_hdr on.
	if { [ "$mode" = on ] && [ "${big:-0}" -gt 1514 ]; } ||
		{ [ "$mode" = off ] && [ "${big:-0}" -gt 0 ] && [ "${big:-0}" -le 1514 ]; }; then
		ok "[$tag] frames from the VM reach vsn as expected for the mode (largest ${big:-0} bytes)"
	else
		nok "[$tag] frames from the VM reach vsn as expected for the mode (largest ${big:-0} bytes)"
	fi

	# (d) vsn's connection table: the VM's connections, to backend 1 over path 1.
	local sports
	sports=$($TS -r "$D/vm.pcap" -Y "tcp.flags.syn == 1 && tcp.flags.ack == 0" -T fields \
		-e tcp.srcport 2>/dev/null | sort -u | paste -sd, -)
	echo "# connections the VM opened (source ports): $sports"
	if $PY - "$D/conns.json" "$sports" "$VMADDR" "$VIP" "$TGT" <<'EOF' 2>&1 | diag; then
import json, sys
conns = json.load(open(sys.argv[1]))
want = {int(p) for p in sys.argv[2].split(",") if p}
vmaddr, vip, tgt = sys.argv[3:6]
mine = {c["sport"]: c for c in conns if c["src"] == vmaddr and c["dst"] == vip}
for c in mine.values():
    print("conn %s:%d -> %s:%d backend %d %s:%d path %d tx %d rx %d" % (
        c["src"], c["sport"], c["dst"], c["dport"], c["backend"], c["backend_address"],
        c["backend_port"], c["path"], c["tx_packets"], c["rx_packets"]))
missing = want - set(mine)
if not want or missing:
    sys.exit("connections missing from vsn's table: %s" % sorted(missing))
for p in want:
    c = mine[p]
    if (c["vm"], c["dport"], c["backend"], c["backend_address"], c["backend_port"], c["path"]) != \
            (1, 4420, 1, tgt, 4420, 1) or c["tx_packets"] == 0 or c["rx_packets"] == 0:
        sys.exit("connection %d not vm 1 -> backend 1 (%s:4420) path 1 with traffic both ways" % (p, tgt))
EOF
		ok "[$tag] vsn show connections: every connection the VM opened maps to backend 1 ($TGT:4420) over path 1"
	else
		nok "[$tag] vsn show connections: every connection the VM opened maps to backend 1 ($TGT:4420) over path 1"
	fi

	# Counters: nothing malformed, failed or unresolved.
	if $PY - "$D/counters.json" <<'EOF' 2>&1 | diag; then
import json, sys
r = json.load(open(sys.argv[1]))["reasons"]
print(" ".join("%s=%d" % (k, v["packets"]) for k, v in r.items() if v["packets"]))
# "unsupported" counts IPv6 packets with extension headers: the MLD reports
# (hop-by-hop router alert) that the guests and namespaces send; not asserted.
bad = {k: r[k]["packets"] for k in ("malformed", "rewrite_error", "map_full", "fib_miss", "no_route")
       if r.get(k, {}).get("packets")}
if r["forwarded"]["packets"] == 0 or bad:
    sys.exit("forwarded=%d, unexpected: %s" % (r["forwarded"]["packets"], bad))
EOF
		ok "[$tag] vsn counters: packets forwarded, none malformed/failed/unresolved"
	else
		nok "[$tag] vsn counters: packets forwarded, none malformed/failed/unresolved"
	fi

	# The datapath's NVMe/TCP parser saw the I/O that was issued: at least
	# the 8 MiB written (4 KiB blocks) as write commands, reads, every
	# response matched to its command, and a latency per backend.
	if $PY - "$D/telemetry.json" <<'EOF' 2>&1 | diag; then
import json, sys
t = json.load(open(sys.argv[1]))
s, lat = t["stats"], t["latency"]
print(" ".join("%s=%d" % kv for kv in s.items() if kv[1]))
print("latency: %s" % lat)
bad = []
if s["write_blocks"] * 4096 < 8 << 20:
    bad.append("write_blocks %d < 8 MiB" % s["write_blocks"])
if not s["read_cmds"] or s["read_blocks"] * 4096 < 8 << 20:
    bad.append("reads %d cmds / %d blocks < 8 MiB" % (s["read_cmds"], s["read_blocks"]))
if s["matched"] != s["resps"] or s["unmatched"]:
    bad.append("matched %d of %d responses" % (s["matched"], s["resps"]))
if s["resps"] < s["cmds"] - 64:
    bad.append("responses %d far below commands %d" % (s["resps"], s["cmds"]))
if s["errors"]:
    bad.append("%d error completions" % s["errors"])
if "backend/1" not in lat or lat["backend/1"]["count"] < s["matched"]:
    bad.append("no latency histogram for backend 1")
if bad:
    sys.exit("; ".join(bad))
EOF
		ok "[$tag] NVMe/TCP parser: the 8 MiB written and read appear as commands, every response matched, latency per backend"
	else
		nok "[$tag] NVMe/TCP parser: the 8 MiB written and read appear as commands, every response matched, latency per backend"
	fi
	echo "# vnet_hdr=$mode done in $(secs "$T1") s"
}

LAST_MODE=${MODES##* }
for m in $MODES; do
	run_mode "$m"
done

if [ "$failed" -eq 0 ] && [ -z "${E2E_KEEP:-}" ]; then
	rm -f "$OUT"/*/*.pcap "$VM_RUN"/*/share/*.pcap
else
	echo "# captures and logs kept in $OUT"
fi
echo "# wall time $(secs "$T_START") s"
[ "$failed" -eq 0 ]
