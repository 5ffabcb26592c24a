#!/bin/bash
# Record real-kernel NVMe/TCP captures for the workload-profiler tests.
#
# Two testbed guests (scripts/testbed, QEMU TCG, Debian 6.1 kernel) on one
# bridge in a host network namespace; no vsn involved:
#
#   vsnpc-br:  br0 ── tapi <-> guest "pcini" eth0 10.3.1.3 (nvme-tcp initiator, fio)
#                └─── tapt <-> guest "pctgt" eth0 10.3.1.2 (nvmet, null_blk 4 KiB LBAs)
#
# Both taps use vnet_hdr=off, so every frame is wire-sized (MTU 1500) with
# complete checksums.  For each workload tcpdump records the host side of
# tapi (full frames, filter 'tcp port 4420') from BEFORE `nvme connect`
# (TCP handshakes, ICReq/ICResp, Fabrics Connect of the admin and the single
# I/O queue, the kernel's identify/partition-scan commands), then the guest
# runs ONE fio job (tests/data/NAME.fio) and disconnects.  Results:
#
#   tests/data/NAME.pcap         the capture
#   tests/data/NAME.expect.json  facts from tshark's own NVMe/TCP dissector
#                                (scripts/pcap_expect.py), cross-checked with
#                                the guest's block-layer counters and fio's report
#
# NAMES: randread4k seqwrite128k randrw8k (default: all).
# Usage: bash scripts/record_pcaps.sh [NAME...]        (root)
#   RECORD_KEEP=1   keep build/record_pcaps/ (VM logs, fio output) afterwards
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
ROOT=$PWD
P=vsnpc
NS=$P-br
OUT=$ROOT/build/record_pcaps
DATA=$ROOT/tests/data
export VM_RUN=$OUT/vms
# shellcheck source=testbed/vm.sh
. scripts/testbed/vm.sh

NQN=nqn.2026-11.io.vsn:vol1
TGT=10.3.1.2
INI=10.3.1.3
NAMES=("$@")
[ ${#NAMES[@]} -gt 0 ] || NAMES=(randread4k seqwrite128k randrw8k)
PY=/usr/bin/python3

T0=$(date +%s%N)
secs() { awk -v a="$1" -v b="$(date +%s%N)" 'BEGIN {printf "%.1f", (b - a) / 1e9}'; }
log() { echo "record_pcaps: $*"; }
die() { echo "record_pcaps: ERROR: $*" >&2; exit 1; }

TD=""
cleanup() {
	[ -n "$TD" ] && kill -INT "$TD" 2>/dev/null && wait "$TD" 2>/dev/null
	vm_stop_all
	ip netns del "$NS" 2>/dev/null
	return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for n in "${NAMES[@]}"; do
	[ -r "$DATA/$n.fio" ] || die "no job file $DATA/$n.fio"
done
command -v tshark >/dev/null || die "tshark is needed (apt-get install tshark)"
cleanup
rm -rf "$OUT"
mkdir -p "$OUT"

# ------------------------------------------------------------------ setup
T=$(date +%s%N)
bash scripts/testbed/build.sh >"$OUT/testbed-build.log" 2>&1 ||
	{ tail -20 "$OUT/testbed-build.log" >&2; die "scripts/testbed/build.sh failed"; }
log "testbed ready in $(secs "$T") s"

T=$(date +%s%N)
{
	ip netns add "$NS" &&
	ip -n "$NS" link set lo up &&
	ip -n "$NS" link add br0 type bridge stp_state 0 forward_delay 0 &&
	ip -n "$NS" tuntap add dev tapi mode tap &&
	ip -n "$NS" tuntap add dev tapt mode tap &&
	ip -n "$NS" link set tapi master br0 &&
	ip -n "$NS" link set tapt master br0 &&
	ip -n "$NS" link set br0 up &&
	ip -n "$NS" link set tapi up &&
	ip -n "$NS" link set tapt up
} >"$OUT/topo.log" 2>&1 || { cat "$OUT/topo.log" >&2; die "namespace $NS"; }

vm_start pctgt --nic "$NS:tapt" --vnet-hdr off \
	--append "vsn.role=target vsn.ip=$TGT/24 vsn.nqn=$NQN" || die "target VM start"
vm_start pcini --nic "$NS:tapi" --vnet-hdr off \
	--append "vsn.role=initiator vsn.ip=$INI/24" || die "initiator VM start"
vm_wait pctgt VSN-READY 120 && vm_wait pcini VSN-READY 120 || die "VMs did not boot"
log "VMs booted in $(secs "$T") s"

# The guest side of one recording: connect (one I/O queue), wait until the
# kernel's own namespace scan is done, fio, disconnect.  Block-layer counters
# (/sys/block/DEV/stat) before and after fio tell which I/O commands are fio's.
cat >"$(vm_file pcini run-job.sh)" <<EOF
#!/bin/bash
# run-job.sh NAME  (written by scripts/record_pcaps.sh)
set -e
name=\$1
nvme connect -t tcp -a $TGT -s 4420 -n $NQN --nr-io-queues=1
dev=""
for i in \$(seq 200); do
	dev=\$(ls /sys/block | grep -E '^nvme[0-9]+n[0-9]+\$' | head -1 || true)
	[ -n "\$dev" ] && [ -b /dev/\$dev ] && break
	sleep 0.05
done
[ -n "\$dev" ] || { echo "no namespace block device"; exit 1; }
# Native multipath: \$dev is the multipath head (no I/O statistics of its
# own); the controller's path device (nvmeXcYnZ) counts the requests.
st=""
for i in \$(seq 100); do
	st=\$(ls -d /sys/block/nvme*c*n*/stat /sys/class/nvme/nvme*/nvme*c*n*/stat 2>/dev/null | head -1)
	[ -n "\$st" ] && break
	sleep 0.05
done
[ -n "\$st" ] || st=/sys/block/\$dev/stat
# Quiet: nothing in flight and the counters unchanged for 1 s.
prev=""
for i in \$(seq 100); do
	cur=\$(cat \$st)
	set -- \$cur
	[ "\$cur" = "\$prev" ] && [ "\$9" = 0 ] && break
	prev=\$cur
	sleep 1
done
echo "DEV \$dev"
echo "PATHDEV \$(basename \$(dirname \$st))"
echo "CTRL \$(cat /sys/class/nvme/*/address | paste -sd' ')"
echo "QUEUES \$(ls -d /sys/block/\$(basename \$(dirname \$st))/mq/* 2>/dev/null | wc -l)"
echo "LBA \$(cat /sys/block/\$dev/queue/logical_block_size)"
echo "MAXKB \$(cat /sys/block/\$dev/queue/max_sectors_kb)"
echo "STAT0 \$(cat \$st)"
NVME_DEV=/dev/\$dev fio --output-format=json --output=/share/\$name.fio.json /share/\$name.fio
echo "STAT1 \$(cat \$st)"
sleep 0.3
nvme disconnect -n $NQN
EOF

# ------------------------------------------------------------------ record
TD_LOG=$OUT/tcpdump.log
record() { # NAME: one capture; fails if tcpdump lost frames
	local n=$1 pcap=$OUT/$1.pcap
	cp "$DATA/$n.fio" "$(vm_file pcini "$n.fio")"
	rm -f "$(vm_file pcini "$n.fio.json")"
	# 64 MiB ring: the host may be busy with other guests; a lost frame
	# would make the capture useless (the checks below would notice).
	nsenter --net="/run/netns/$NS" tcpdump -i tapi -s 0 -B 65536 -U -w "$pcap" 'tcp port 4420' \
		>"$TD_LOG" 2>&1 &
	TD=$!
	for _ in $(seq 100); do grep -q 'listening on' "$TD_LOG" && break; sleep 0.1; done
	grep -q 'listening on' "$TD_LOG" || die "tcpdump did not start: $(cat "$TD_LOG")"
	vm_exec pcini -t 300 "bash /share/run-job.sh $n" >"$OUT/$n.guest.log" 2>&1 ||
		{ cat "$OUT/$n.guest.log" >&2; die "$n: guest job failed"; }
	# tcpdump exits without draining the kernel's ring, whose blocks reach
	# it after at most its 1 s timeout: wait for the last frames (the
	# disconnect's FIN/RST) before stopping it.
	sleep 2
	kill -INT "$TD"
	wait "$TD" 2>/dev/null
	TD=""
	cp "$(vm_file pcini "$n.fio.json")" "$OUT/$n.fio.json" || die "$n: no fio output"
	grep -q '^0 packets dropped by kernel' "$TD_LOG"
}
for n in "${NAMES[@]}"; do
	T=$(date +%s%N)
	for try in 1 2 3; do
		record "$n" && break
		log "$n: tcpdump dropped frames ($(grep dropped "$TD_LOG" | paste -sd, -)); again"
		[ $try = 3 ] && die "$n: tcpdump kept dropping frames"
	done
	log "$n recorded in $(secs "$T") s: $(grep -E 'captured|dropped by kernel' "$TD_LOG" | paste -sd, -)"
	sed 's/^/    guest: /' "$OUT/$n.guest.log" | grep -E 'DEV|QUEUES|LBA|MAXKB|STAT|disconnected'
done
vm_stop_all

# ------------------------------------------------------------------ facts
# Facts and checks on the new captures; tests/data is only updated when
# every capture passes.
rc=0
for n in "${NAMES[@]}"; do
	$PY scripts/pcap_expect.py --name "$n" --pcap "$OUT/$n.pcap" --job "$DATA/$n.fio" \
		--fio-json "$OUT/$n.fio.json" --guest-log "$OUT/$n.guest.log" \
		--target "$TGT" --out "$OUT/$n.expect.json" || rc=1
done
[ $rc -eq 0 ] || die "some checks failed; tests/data unchanged, see build/record_pcaps"
for n in "${NAMES[@]}"; do
	cp "$OUT/$n.pcap" "$OUT/$n.expect.json" "$DATA/"
done
total=0
for n in "${NAMES[@]}"; do
	sz=$(stat -c %s "$DATA/$n.pcap")
	total=$((total + sz))
	printf '  %-34s %9d bytes\n' "tests/data/$n.pcap" "$sz"
done
log "pcaps total $total bytes; wall time $(secs "$T0") s"
[ -n "${RECORD_KEEP:-}" ] || rm -rf "$OUT"
