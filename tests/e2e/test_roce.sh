#!/bin/bash
# End to end, with real kernels and a real RoCEv2 receiver: vsn steers a
# tenant VM's Soft-RoCE (rxe) traffic over a path that rewrites DSCP (and TTL),
# and the target's rxe, which drops every packet whose ICRC does not match,
# still accepts it.  RoCE is never NATed: the volume's address is the target's
# real address; vsn only chooses the uplink and rewrites the ICRC-masked fields.
#
#   vsnr-hv  [tap0 10.0.0.1] <-> tenant VM "vm1" eth0 10.0.0.2 (rxe0)
#            [up0 10.1.0.1] --- [f0 10.1.0.2]  vsnr-fab  [tapt 10.3.1.1] <-> target VM
#            [up1 10.2.0.1] --- [f1 10.2.0.2]            "tgt" eth0 10.3.1.2 (rxe_eth0, nvmet rdma)
#
# vsn in vsnr-hv: attach --vm tap0 --uplink up0,up1; volume 1 of vm1 = RoCE
# 10.3.1.2:4791 -> backend 1 (the same address/port) over path 1 (up0, DSCP 26,
# TTL 40) or path 2 (up1, DSCP 46).  The target's RoCE replies reach the
# tenant through vsnr-hv's ordinary IP forwarding (XDP on up0 passes them).
# Checks:
#   1 ibv_rc_pingpong tenant -> target over path 1; the target's rxe
#     rcvd_pkts counter (incremented only after its ICRC check) grew by at
#     least the tenant's packets seen on the fabric
#   2 f0 (fabric side of up0): the tenant's RoCE with tos 0x68 (DSCP 26),
#     ttl 40; tap0: the same packets left the VM with tos 0, ttl 64 and the
#     very same ICRC bytes; nothing of the tenant's RoCE on f1
#   3 vsn route set -> path 2: ping-pong again, f1 shows tos 0xb8 (DSCP 46),
#     f0 none, path 2's counter grew
#   4 NVMe over RDMA (nvme connect -t rdma) through path 2: 4 MiB written and
#     read back identical, also on the target's null_blk
#   5 pktlib.roce_icrc_ok() (independent oracle) holds for every captured
#     tenant RoCE packet after the rewrite
# plus a receiver control: a pktlib-built RoCE packet with a valid ICRC raises
# the target's rcvd_pkts, the same packet with a corrupted ICRC does not.
#
# Usage: tests/e2e/test_roce.sh   (root; builds the testbed on first use)
#   E2E_VNET_HDR=on|off  tenant tap vnet_hdr (default on)
#   E2E_XDP_MODE=auto    vsn attach --xdp-mode
#   E2E_KEEP=1           keep build/e2e/roce/ captures on success too
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
ROOT=$PWD
P=vsnr
PIN=/sys/fs/bpf/vsnr
OUT=$ROOT/build/e2e/roce
export VM_RUN=$OUT/vms
# shellcheck source=../../scripts/testbed/vm.sh
. scripts/testbed/vm.sh

NQN=nqn.2026-11.io.vsn:roce1
TGT=10.3.1.2
VMADDR=10.0.0.2
MIB=4
PP_ITERS=50
PP_SIZE=2048
VNET=${E2E_VNET_HDR:-on}
XDP_MODE=${E2E_XDP_MODE:-auto}
VSN="nsenter --net=/run/netns/$P-hv $ROOT/build/vsn --pin-dir $PIN"
PY=/usr/bin/python3
ANA=$ROOT/tests/e2e/roce_pcap.py

T_START=$(date +%s%N)
. tests/lib/e2e.sh
check() { # DESCRIPTION: ok if the previous command succeeded
	if [ "$1" = 0 ]; then ok "$2"; else nok "$2"; fi
}

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
{
	ip netns add "$P-hv" && ip netns add "$P-fab" || exit 1
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
	# RoCE replies (never NATed) reach the tenant by ordinary forwarding.
	hx sysctl -qw net.ipv4.ip_forward=1
	fx sysctl -qw net.ipv4.ip_forward=1
	# Path 2 arrives on f1 while the way back is f0: no reverse-path filter.
	for i in all default f0 f1 tapt; do fx sysctl -qw "net.ipv4.conf.$i.rp_filter=0"; done
	# The fabric plays the wire: complete checksums towards the uplinks.
	fx ethtool -K f0 tx off
	fx ethtool -K f1 tx off
} >"$OUT/topo.log" 2>&1 || bail "topology set up ($P-hv, $P-fab)" "$OUT/topo.log"

cat >"$OUT/vsn.yaml" <<EOF
vms:
  - {name: vm1, id: 1, interface: tap0, addresses: [10.0.0.2, "2001:db8::2"]}
uplinks:
  - {interface: up0}
  - {interface: up1}
paths:
  - {id: 1, uplink: up0, next_hop: fib, dscp: 26, ttl: 40}
  - {id: 2, uplink: up1, next_hop: fib, dscp: 46}
backends:
  - {id: 1, name: rxe-target, address: $TGT, port: 4791, paths: [1, 2]}
volumes:
  - {id: 1, vm: vm1, address: $TGT, port: 4791, protocol: roce, backends: [1]}
EOF
if $VSN attach --vm tap0 --uplink up0,up1 --xdp-mode "$XDP_MODE" >"$OUT/attach.log" 2>&1 &&
	$VSN apply "$OUT/vsn.yaml" >>"$OUT/attach.log" 2>&1; then
	ok "vsn attached (tap0; up0,up1 xdp-mode $XDP_MODE), RoCE volume $TGT:4791 applied"
else
	bail "vsn attached and RoCE config applied" "$OUT/attach.log"
fi

vm_start tgt --nic "$P-fab:tapt" \
	--append "vsn.role=target vsn.trtype=rdma vsn.ip=$TGT/24 vsn.gw=10.3.1.1 vsn.nqn=$NQN" ||
	bail "target VM started" "$VM_RUN/tgt/qemu.log"
vm_start vm1 --nic "$P-hv:tap0" --vnet-hdr "$VNET" \
	--append "vsn.role=initiator vsn.ip=$VMADDR/24 vsn.gw=10.0.0.1" ||
	bail "tenant VM started" "$VM_RUN/vm1/qemu.log"
if vm_wait tgt VSN-READY 90 2> >(diag) && vm_wait vm1 VSN-READY 90 2> >(diag); then
	echo "# VMs ready $(secs "$T") s after setup began"
else
	bail "target and tenant VMs booted"
fi

# GID index of the RoCE v2, IPv4-mapped GID of ADDR on rxe DEV (guest side).
GIDFN='gid_idx() {
	local d=/sys/class/infiniband/$1/ports/1 want f i t
	want=$(printf "0000:0000:0000:0000:0000:ffff:%02x%02x:%02x%02x" ${2//./ })
	for i in $(seq 100); do
		for f in $d/gids/*; do
			i=${f##*/}
			[ "$(cat $f 2>/dev/null)" = "$want" ] || continue
			t=$(cat $d/gid_attrs/types/$i 2>/dev/null)
			[ "$t" = "RoCE v2" ] && { echo $i; return 0; }
		done
		sleep 0.1
	done
	return 1
}'
out=$(vm_exec vm1 -t 30 <<EOF
$GIDFN
rdma link add rxe0 type rxe netdev eth0 || exit 1
echo "GID \$(gid_idx rxe0 $VMADDR)"
EOF
)
GV=$(echo "$out" | awk '$1 == "GID" {print $2}')
out2=$(vm_exec tgt -t 30 <<EOF
$GIDFN
echo "GID \$(gid_idx rxe_eth0 $TGT)"
vsn-target ports
EOF
)
GT=$(echo "$out2" | awk '$1 == "GID" {print $2}')
{ echo "$out"; echo "$out2"; } | diag
if [ -n "$GV" ] && [ -n "$GT" ] && grep -q " rdma $TGT 4420 " <<<"$out2"; then
	ok "rxe on both VMs: tenant rxe0 RoCE v2 GID index $GV, target rxe_eth0 index $GT; nvmet rdma port $TGT:4420"
else
	bail "rxe on both VMs with a RoCE v2 IPv4 GID, nvmet rdma port"
fi
echo "# setup $(secs "$T") s"

# ------------------------------------------------------------------ helpers
capture() { # NS IF FILE: tcpdump of RoCEv2 in the background, waits until it listens
	local ns=$1 dev=$2 f=$3 i
	ip netns exec "$ns" tcpdump -i "$dev" -s 0 -U -w "$f" 'udp dst port 4791' >"$f.log" 2>&1 &
	CAPS+=($!)
	for i in $(seq 50); do grep -q 'listening on' "$f.log" && return 0; sleep 0.1; done
	return 1
}
captures() { # DIR: tap0 (before vsn), f0 and f1 (after vsn, fabric side)
	mkdir -p "$1"
	capture "$P-hv" tap0 "$1/tap0.pcap" && capture "$P-fab" f0 "$1/f0.pcap" &&
		capture "$P-fab" f1 "$1/f1.pcap"
}
stop_captures() {
	local p
	sleep 0.3
	for p in "${CAPS[@]}"; do kill -INT "$p" 2>/dev/null; done
	for p in "${CAPS[@]}"; do wait "$p" 2>/dev/null; done
	CAPS=()
}
rcvd_pkts() { vm_exec tgt -t 20 'cat /sys/class/infiniband/rxe_eth0/ports/1/hw_counters/rcvd_pkts'; }
path_pkts() { # PATH: vsn's to-storage packet counter of PATH
	$VSN -j show counters 2>/dev/null |
		$PY -c 'import json,sys; print(json.load(sys.stdin)["paths"].get(sys.argv[1], {}).get("packets", 0))' "$1"
}
# One RC ping-pong: server on the target, client on the tenant (address of
# the target); up to 3 attempts (TCG is slow, the exchange port may lag).
pingpong() { # DIR
	local d=$1 a out rc
	for a in 1 2 3; do
		out=$(vm_exec tgt -t 20 <<EOF
pkill_pp() { for p in \$(pidof ibv_rc_pingpong); do kill \$p; done; }
pkill_pp 2>/dev/null; sleep 0.1
setsid timeout 40 ibv_rc_pingpong -d rxe_eth0 -g $GT -n $PP_ITERS -s $PP_SIZE >/tmp/pp.out 2>&1 </dev/null &
for i in \$(seq 100); do ss -ltn | grep -q ':18515 ' && exit 0; sleep 0.1; done
echo "server not listening"; cat /tmp/pp.out; exit 1
EOF
		) || { echo "$out" | diag; continue; }
		out=$(vm_exec vm1 -t 45 "timeout 35 ibv_rc_pingpong -d rxe0 -g $GV -n $PP_ITERS -s $PP_SIZE $TGT 2>&1")
		rc=$?
		echo "$out" >"$d/client.txt"
		vm_exec tgt -t 20 'for i in $(seq 50); do pidof ibv_rc_pingpong >/dev/null || break; sleep 0.1; done; cat /tmp/pp.out' \
			>"$d/server.txt"
		[ $rc = 0 ] && break
		echo "# ping-pong attempt $a failed (rc $rc):"
		diag <"$d/client.txt"
		diag <"$d/server.txt"
	done
	diag <"$d/client.txt"
	grep -q "$PP_ITERS iters in" "$d/client.txt" && grep -q "$PP_ITERS iters in" "$d/server.txt"
}
# Assertions on the captures of one phase, in Python: ARGS = DIR PATH-IFACE
# OTHER-IFACE TOS TTL|keep.
check_phase() {
	$PY - "$@" "$VMADDR" "$TGT" "$ANA" <<'EOF'
import json, subprocess, sys
d, on, off, tos, ttl, vm, tgt, ana = sys.argv[1:9]
tos = int(tos, 0)
def summ(f):
    r = json.loads(subprocess.run([sys.executable, ana, "summary", "%s/%s.pcap" % (d, f)],
                                  check=True, capture_output=True, text=True).stdout)
    return r
def mine(s):  # the tenant's RoCE towards the target
    return {k: v for k, v in s["flows"].items() if k.startswith("%s>%s " % (vm, tgt))}
res = {}
for f in ("tap0", on, off):
    s = summ(f)
    res[f] = mine(s)
    print("%s: %d RoCE packets, ICRC ok %d bad %d, unparsable %d; tenant flows %s" % (
        f, s["packets"], s["icrc_ok"], s["icrc_bad"], s["malformed"],
        {k: (v["packets"], v["icrc_ok"]) for k, v in res[f].items()}))
pr = json.loads(subprocess.run([sys.executable, ana, "pair", "%s/tap0.pcap" % d,
                                "%s/%s.pcap" % (d, on), vm], check=True,
                               capture_output=True, text=True).stdout)
print("tap0 -> %s pairs: %s" % (on, pr))
n_on = sum(v["packets"] for v in res[on].values())
ok_on = sum(v["icrc_ok"] for v in res[on].values())
n_tap = sum(v["packets"] for v in res["tap0"].values())
want_ttl = None if ttl == "keep" else int(ttl)
errs = []
if n_on < 20:
    errs.append("only %d tenant RoCE packets on %s" % (n_on, on))
if ok_on != n_on:
    errs.append("ICRC wrong on %d of %d packets on %s" % (n_on - ok_on, n_on, on))
for k in res[on]:
    if " tos=0x%02x " % tos not in k + " " or (want_ttl is not None and not k.endswith("ttl=%d" % want_ttl)):
        errs.append("unexpected tenant flow on %s: %s" % (on, k))
if res[off]:
    errs.append("tenant RoCE on the other path %s: %s" % (off, list(res[off])))
if any(" tos=0x00 " not in k + " " for k in res["tap0"]) or not n_tap:
    errs.append("tenant frames on tap0 not all tos 0: %s" % list(res["tap0"]))
if pr["matched"] < min(20, n_on) or pr["same_icrc"] != pr["matched"] \
        or pr["same_payload"] != pr["matched"] or pr["icrc_ok_after"] != pr["matched"] \
        or pr["tos_after"] != [tos] or tos in pr["tos_before"]:
    errs.append("tap0/%s pairing: %s" % (on, pr))
if want_ttl is not None and pr["ttl_after"] != [want_ttl]:
    errs.append("ttl after %s, want %d" % (pr["ttl_after"], want_ttl))
if want_ttl is None and pr["ttl_after"] != pr["ttl_before"]:
    errs.append("ttl changed %s -> %s on a path without ttl" % (pr["ttl_before"], pr["ttl_after"]))
print("RESULT n_on=%d icrc_ok=%d matched=%d" % (n_on, ok_on, pr["matched"]))
if errs:
    sys.exit("; ".join(errs))
EOF
}

# ------------------------------------------------------------------ receiver control
# The target's rxe drops a packet whose ICRC is wrong before counting it in
# rcvd_pkts.  A UD send to QP1 (GSI: pkey 0xffff, qkey 0x80010000) built by
# pktlib from the fabric namespace straight to the target (vsn not involved):
# a valid ICRC counts, the same packet with one ICRC bit flipped does not.
inject() { # good|bad
	fx $PY - "$1" "$ROOT/tests/pkt" "$TGT" <<'EOF'
import socket, struct, sys
sys.path.insert(0, sys.argv[2])
import pktlib
deth = struct.pack("!IBBH", 0x80010000, 0, 0, 1)        # qkey, rsvd, src QP 1
f = bytearray(pktlib.roce_v4("02:00:00:00:00:01", "02:00:00:00:00:02", "10.3.1.1",
                             sys.argv[3], 49152, bth_opcode=0x64, dest_qp=1, psn=7,
                             payload=deth + bytes(256), udp_csum=0))
assert pktlib.roce_icrc_ok(bytes(f))
if sys.argv[1] == "bad":
    f[-1] ^= 0x01
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
s.sendto(bytes(f[14:]), (sys.argv[3], 0))
EOF
}
T=$(date +%s%N)
c0=$(rcvd_pkts)
inject good
sleep 0.5
c1=$(rcvd_pkts)
inject bad
inject bad
sleep 0.5
c2=$(rcvd_pkts)
echo "# target rxe rcvd_pkts: $c0 -> (valid ICRC) $c1 -> (2 x corrupted ICRC) $c2"
if [ -n "$c0" ] && [ "$c1" = $((c0 + 1)) ] && [ "$c2" = "$c1" ]; then
	ok "control: the target's rxe counts a pktlib-built RoCE packet with a valid ICRC, drops it with a corrupted ICRC"
else
	nok "control: the target's rxe counts a pktlib-built RoCE packet with a valid ICRC, drops it with a corrupted ICRC"
fi

# ------------------------------------------------------------------ path 1
D=$OUT/path1
captures "$D" || nok "captures on tap0, f0, f1 started"
c0=$(rcvd_pkts)
p1a=$(path_pkts 1)
pingpong "$D"
rc=$?
c1=$(rcvd_pkts)
p1b=$(path_pkts 1)
stop_captures
$VSN -j show counters >"$D/counters.json" 2>&1
check $rc "ibv_rc_pingpong ($PP_ITERS x $PP_SIZE B) tenant -> $TGT over path 1 (up0, DSCP 26, TTL 40) succeeds"
out=$(check_phase "$D" f0 f1 0x68 40 2>&1)
rc=$?
echo "$out" | diag
check $rc "path 1: f0 carries the tenant's RoCE with tos 0x68 (DSCP 26) ttl 40, sent with tos 0 ttl 64 on tap0, same ICRC bytes, pktlib ICRC valid on every packet; nothing on f1"
nf=$(echo "$out" | sed -n 's/^RESULT n_on=\([0-9]*\).*/\1/p')
echo "# target rxe rcvd_pkts $c0 -> $c1 (+$((c1 - c0))); tenant packets on f0: ${nf:-?}; vsn path 1 counter $p1a -> $p1b"
if [ -n "$nf" ] && [ $((c1 - c0)) -ge "$nf" ] && [ "$nf" -gt 0 ] && [ "$p1b" -ge $((p1a + nf)) ]; then
	ok "path 1: the target's rxe accepted (ICRC-checked) at least all $nf rewritten packets; vsn's path 1 counter covers them"
else
	nok "path 1: the target's rxe accepted (ICRC-checked) at least all ${nf:-?} rewritten packets; vsn's path 1 counter covers them"
fi

# ------------------------------------------------------------------ path 2
D=$OUT/path2
out=$($VSN route set 1 1 1 2 2>&1 && $VSN -j show routes 2>&1)
rc=$?
echo "$out" | diag
grep -q '"path":2' <<<"$out" || rc=1
check $rc "vsn route set 1 1 1 2: (vm 1, volume 1, backend 1) now routed over path 2"
p2a=$(path_pkts 2)
captures "$D" || nok "captures on tap0, f0, f1 started"
c0=$(rcvd_pkts)
pingpong "$D"
rc=$?
c1=$(rcvd_pkts)
p2b=$(path_pkts 2)
stop_captures
$VSN -j show counters >"$D/counters.json" 2>&1
check $rc "after vsn route set to path 2: ibv_rc_pingpong tenant -> $TGT succeeds over up1"
out=$(check_phase "$D" f1 f0 0xb8 keep 2>&1)
rc=$?
echo "$out" | diag
check $rc "path 2: f1 carries the tenant's RoCE with tos 0xb8 (DSCP 46), TTL kept, same ICRC bytes as on tap0, pktlib ICRC valid on every packet; nothing on f0"
nf=$(echo "$out" | sed -n 's/^RESULT n_on=\([0-9]*\).*/\1/p')
echo "# target rxe rcvd_pkts $c0 -> $c1 (+$((c1 - c0))); tenant packets on f1: ${nf:-?}; vsn path 2 counter $p2a -> $p2b"
if [ -n "$nf" ] && [ "$nf" -gt 0 ] && [ $((c1 - c0)) -ge "$nf" ] && [ "$p2b" -ge $((p2a + nf)) ]; then
	ok "path 2: vsn -j show counters: path 2 grew by $((p2b - p2a)) (>= $nf packets seen on f1); the target's rxe accepted them all"
else
	nok "path 2: vsn -j show counters: path 2 grew ($p2a -> $p2b, want >= +${nf:-?}); the target's rxe accepted them all"
fi

# ------------------------------------------------------------------ NVMe over RDMA
D=$OUT/nvme
captures "$D" || nok "captures on tap0, f0, f1 started"
p2a=$(path_pkts 2)
out=$(vm_exec vm1 -t 90 <<EOF
ok=
for a in 1 2 3; do
	nvme connect -t rdma -a $TGT -s 4420 -n $NQN && { ok=1; break; }
	sleep 1
done
[ -n "\$ok" ] || exit 1
for i in \$(seq 100); do [ -b /dev/nvme0n1 ] && break; sleep 0.1; done
echo "ADDR \$(cat /sys/class/nvme/nvme0/address) TRANSPORT \$(cat /sys/class/nvme/nvme0/transport)"
dd if=/dev/urandom of=/tmp/w bs=1M count=$MIB status=none
dd if=/tmp/w of=/dev/nvme0n1 bs=1M oflag=direct status=none || exit 1
dd if=/dev/nvme0n1 of=/tmp/r bs=1M count=$MIB iflag=direct status=none || exit 1
echo "W \$(sha256sum </tmp/w | cut -c1-64)"
echo "R \$(sha256sum </tmp/r | cut -c1-64)"
cmp /tmp/w /tmp/r && echo CMP same
nvme disconnect -n $NQN >/dev/null
EOF
)
rc=$?
p2b=$(path_pkts 2)
stop_captures
echo "$out" | diag
sums=$(echo "$out" | awk '$1 == "W" || $1 == "R" {print $2}' | sort -u)
tsum=$(vm_exec tgt -t 60 "dd if=/dev/nullb0 bs=1M count=$MIB iflag=direct status=none | sha256sum | cut -c1-64")
echo "# target null_blk sha256 ${tsum:0:16}...; vsn path 2 counter $p2a -> $p2b"
if [ $rc = 0 ] && grep -q "^ADDR traddr=$TGT,trsvcid=4420 TRANSPORT rdma" <<<"$out" &&
	grep -q '^CMP same' <<<"$out" && [ "$(echo "$sums" | wc -l)" = 1 ] && [ ${#sums} = 64 ] &&
	[ "$tsum" = "$sums" ]; then
	ok "NVMe over RDMA through path 2: nvme connect -t rdma $TGT, $MIB MiB written and read back identical, same on the target's null_blk (sha256 ${sums:0:16}...)"
else
	nok "NVMe over RDMA through path 2: nvme connect -t rdma $TGT, $MIB MiB written and read back identical, same on the target's null_blk"
fi
out=$(check_phase "$D" f1 f0 0xb8 keep 2>&1)
rc=$?
echo "$out" | diag
nf=$(echo "$out" | sed -n 's/^RESULT n_on=\([0-9]*\).*/\1/p')
if [ $rc = 0 ] && [ "${nf:-0}" -gt $((MIB * 1024 * 1024 / 4096)) ] && [ "$p2b" -ge $((p2a + nf)) ]; then
	ok "NVMe/RDMA: all ${nf} tenant RoCE packets on f1 have tos 0xb8 and a valid ICRC (pktlib), identical ICRC to tap0; path 2 counter covers them"
else
	nok "NVMe/RDMA: tenant RoCE packets on f1 have tos 0xb8 and a valid ICRC (pktlib), identical ICRC to tap0; path 2 counter covers them (n=${nf:-?})"
fi

# ------------------------------------------------------------------ counters
$VSN -j show counters >"$OUT/counters.json" 2>&1
if $PY - "$OUT/counters.json" <<'EOF' 2>&1 | diag; then
import json, sys
r = json.load(open(sys.argv[1]))["reasons"]
print(" ".join("%s=%d" % (k, v["packets"]) for k, v in r.items() if v["packets"]))
bad = {k: r[k]["packets"] for k in ("malformed", "rewrite_error", "map_full", "fib_miss", "no_route")
       if r.get(k, {}).get("packets")}
if r["forwarded"]["packets"] == 0 or bad:
    sys.exit("forwarded=%d, unexpected: %s" % (r["forwarded"]["packets"], bad))
EOF
	ok "vsn counters: RoCE forwarded, nothing malformed/failed/unresolved"
else
	nok "vsn counters: RoCE forwarded, nothing malformed/failed/unresolved"
fi

if [ "$failed" -eq 0 ] && [ -z "${E2E_KEEP:-}" ]; then
	rm -f "$OUT"/*/*.pcap
else
	echo "# captures and logs kept in $OUT"
fi
echo "# wall time $(secs "$T_START") s"
[ "$failed" -eq 0 ]
