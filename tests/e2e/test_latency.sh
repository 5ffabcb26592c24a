#!/bin/bash
# End to end, with real kernels: the NVMe/TCP latency that vsn's datapath
# measures (response time - command time, both taken at the hypervisor) is
# the latency the target really has.  The target VM's null_blk completes
# every request after a known delay (irqmode=2 completion_nsec=DELAY, a
# timer per request); the tenant VM runs a 4 KiB random-read fio job at
# iodepth 1 through the VIP while `vsn -j events` records the datapath's
# events in the hypervisor namespace.
#
#   vsnl-hv  [tap0 10.0.0.1] <-> tenant VM "vm1" eth0 10.0.0.2 (initiator, fio)
#            [up0 10.1.0.1] --- [f0 10.1.0.2]  vsnl-fab  [tapt 10.3.1.1] <-> target VM
#                                                        "tgt" eth0 10.3.1.2 (nvmet, null_blk + delay)
#
# Checks: the target's null_blk has the delay; fio's reads all complete; the
# datapath reported a matched `resp` event (I/O queue, opcode 2 = Read) for
# at least every read fio issued; the median of their latency_ns lies within
# 20% of the configured delay.  fio's own clat p50 and vsn's histogram p50
# are reported for comparison.
#
# Choice of the delay: the hypervisor sees the null_blk delay plus the
# target VM's network stack and nvmet on both sides of it, which under QEMU
# TCG (no KVM here, two guests on two host cores) add a roughly constant
# 0.7-1 ms per I/O, with outliers of several ms.  Measured medians: 20 ms
# delay -> 20.97-21.25 ms (+5-6%, four runs); 5 ms -> 5.76 ms (+15%, too close
# to the bound to be robust on a loaded machine).  So 20 ms: TCG's share is
# small against the 20% bound (which is not loosened), and 100 I/Os still
# take only ~3 s.  The bound is two-sided and can fail: a target delay 30%
# larger than the expected one gave a median of 27.45 ms, "not ok"; a
# datapath that timed the wrong pair of packets or used a wrong clock would
# fall outside it too.  fio's own clat p50 (~22.5 ms) is larger still: it
# adds the tenant VM's stack.
#
# Usage: tests/e2e/test_latency.sh   (root; builds the testbed on first use)
#   E2E_DELAY_NS=20000000   null_blk completion delay
#   E2E_IOS=100             fio I/Os (4 KiB random reads, iodepth 1)
#   E2E_KEEP=1              keep build/e2e/latency/ (events, fio JSON) on success too
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
ROOT=$PWD
P=vsnl
PIN=/sys/fs/bpf/vsnl
OUT=$ROOT/build/e2e/latency
export VM_RUN=$OUT/vms
# shellcheck source=../../scripts/testbed/vm.sh
. scripts/testbed/vm.sh

NQN=nqn.2026-11.io.vsn:vol1
VIP=192.168.100.10
TGT=10.3.1.2
VMADDR=10.0.0.2
DELAY=${E2E_DELAY_NS:-20000000}
IOS=${E2E_IOS:-100}
TOL_PCT=20
VSN="nsenter --net=/run/netns/$P-hv $ROOT/build/vsn --pin-dir $PIN"
PY=/usr/bin/python3

T_START=$(date +%s%N)
. tests/lib/e2e.sh

EVPID=
stop_events() {
	[ -n "$EVPID" ] || return 0
	kill -INT "$EVPID" 2>/dev/null
	wait "$EVPID" 2>/dev/null
	EVPID=
}
cleanup() {
	stop_events
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
	hx ip tuntap add dev tap0 mode tap
	fx ip tuntap add dev tapt mode tap
	for i in up0 tap0; do hx ip link set "$i" up; done
	for i in f0 tapt; do fx ip link set "$i" up; done
	hx ip addr add 10.0.0.1/24 dev tap0
	hx ip addr add 10.1.0.1/24 dev up0
	fx ip addr add 10.1.0.2/24 dev f0
	fx ip addr add 10.3.1.1/24 dev tapt
	hx ip route add 10.3.0.0/16 via 10.1.0.2 dev up0
	fx ip route add 10.0.0.0/24 via 10.1.0.1
	fx sysctl -qw net.ipv4.ip_forward=1
	hx sysctl -qw net.ipv4.ip_forward=1
	# The fabric plays the wire: frames reaching the uplink carry complete
	# checksums (vsn's XDP reply path needs them).
	fx ethtool -K f0 tx off
} >"$OUT/topo.log" 2>&1 || bail "topology set up" "$OUT/topo.log"

cat >"$OUT/vsn.yaml" <<EOF
vms:
  - {name: vm1, id: 1, interface: tap0, addresses: [10.0.0.2, "2001:db8::2"]}
uplinks:
  - {interface: up0}
paths:
  - {id: 1, uplink: up0, next_hop: fib}
backends:
  - {id: 1, name: nvmet-vm, address: $TGT, port: 4420, paths: [1]}
volumes:
  - {id: 1, vm: vm1, address: $VIP, port: 4420, protocol: nvme-tcp, backends: [1]}
EOF
if $VSN attach --vm tap0 --uplink up0 >"$OUT/attach.log" 2>&1 &&
	$VSN apply "$OUT/vsn.yaml" >>"$OUT/attach.log" 2>&1; then
	ok "vsn attached (tap0; up0) and config applied"
else
	bail "vsn attached and config applied" "$OUT/attach.log"
fi

# Both guests boot at once (TCG: one host core each).
vm_start tgt --nic "$P-fab:tapt" --append "vsn.role=target vsn.ip=$TGT/24 vsn.gw=10.3.1.1 \
vsn.nqn=$NQN vsn.nullblk=irqmode=2:completion_nsec=$DELAY" || bail "target VM started"
vm_start vm1 --nic "$P-hv:tap0" \
	--append "vsn.role=initiator vsn.ip=$VMADDR/24 vsn.gw=10.0.0.1" || bail "tenant VM started"
if ! vm_wait tgt VSN-READY 90 2> >(diag) || ! vm_wait vm1 VSN-READY 90 2> >(diag); then
	bail "target and tenant VMs booted"
fi
echo "# setup and boot $(secs "$T") s"

# The delay is really configured in the target's null_blk.
out=$(vm_exec tgt -t 30 'cd /sys/module/null_blk/parameters &&
echo "NULLBLK irqmode=$(cat irqmode) completion_nsec=$(cat completion_nsec) memory_backed=$(cat memory_backed)"')
echo "$out" | diag
check "target's null_blk completes after a timer of $DELAY ns (irqmode=2)" \
	grep -qxE "NULLBLK irqmode=2 completion_nsec=$DELAY memory_backed=[Y1]" <<<"$out"

# Events from here on; the ring keeps what nobody read yet, so nothing of the
# connect is lost either (the reader starts before the connect anyway).
$VSN -j events --timeout 120 >"$OUT/events.jsonl" 2>"$OUT/events.err" &
EVPID=$!
sleep 0.3
kill -0 "$EVPID" 2>/dev/null || bail "vsn -j events runs" "$OUT/events.err"

out=$(vm_exec vm1 -t 60 <<EOF
nvme connect -t tcp -a $VIP -s 4420 -n $NQN || exit 1
for i in \$(seq 100); do [ -b /dev/nvme0n1 ] && break; sleep 0.1; done
echo "DEV \$(ls /dev/nvme0n1)"
EOF
)
rc=$?
echo "$out" | diag
if [ $rc -eq 0 ] && grep -q "^DEV /dev/nvme0n1" <<<"$out"; then
	ok "nvme connect to $VIP:4420 through vsn gave /dev/nvme0n1"
else
	bail "nvme connect to $VIP:4420 through vsn gave /dev/nvme0n1"
fi
# What the connect itself read (partition scan) is before this line: the
# reader polls every 100 ms and prints line-buffered.
sleep 1
PRE=$(wc -l <"$OUT/events.jsonl")

T=$(date +%s%N)
out=$(vm_exec vm1 -t 60 <<EOF
fio --name=lat --filename=/dev/nvme0n1 --rw=randread --bs=4k --iodepth=1 --ioengine=psync \
	--direct=1 --size=1G --io_size=$((IOS * 4))k --output-format=json --output=/share/fio.json \
	>/tmp/fio.log 2>&1
rc=\$?
cat /tmp/fio.log
nvme disconnect -n $NQN
exit \$rc
EOF
)
rc=$?
echo "# fio ($IOS x 4 KiB random reads, iodepth 1) took $(secs "$T") s"
echo "$out" | diag
sleep 0.5 # the reader's last poll
stop_events
cp "$(vm_file vm1 fio.json)" "$OUT/fio.json" 2>/dev/null
$VSN -j show telemetry >"$OUT/telemetry.json" 2>&1

# fio: every read done, no error; its count and clat p50.
fio=$($PY - "$OUT/fio.json" "$IOS" <<'EOF' 2>&1
import json, sys
j = json.load(open(sys.argv[1]))["jobs"][0]
r = j["read"]
p50 = r["clat_ns"]["percentile"]["50.000000"]
print("FIO %d %d %.0f %.0f %.0f" % (r["total_ios"], j["error"], p50, r["clat_ns"]["mean"],
                                    r["lat_ns"]["mean"]))
EOF
)
read -r _ FIO_IOS FIO_ERR FIO_P50 FIO_MEAN FIO_LAT <<<"$(grep '^FIO ' <<<"$fio")"
echo "# fio: total_ios ${FIO_IOS:-?} error ${FIO_ERR:-?} clat p50 $(awk -v v="${FIO_P50:-0}" 'BEGIN {printf "%.3f", v / 1e6}') ms" \
	"clat mean $(awk -v v="${FIO_MEAN:-0}" 'BEGIN {printf "%.3f", v / 1e6}') ms" \
	"lat mean $(awk -v v="${FIO_LAT:-0}" 'BEGIN {printf "%.3f", v / 1e6}') ms"
grep -v '^FIO ' <<<"$fio" | diag
check "fio in the tenant VM: $IOS random 4 KiB reads with O_DIRECT through the VIP, no error" \
	test "$rc" = 0 -a "${FIO_IOS:-0}" = "$IOS" -a "${FIO_ERR:-1}" = 0

# The datapath's view: matched responses to Reads on an I/O queue, during fio.
ev=$($PY - "$OUT/events.jsonl" "$PRE" <<'EOF' 2>&1
import json, sys
lines = open(sys.argv[1]).read().splitlines()
pre = int(sys.argv[2])
bad = 0
evs = []
for i, l in enumerate(lines):
    try:
        evs.append((i, json.loads(l)))
    except ValueError:
        bad += 1
def reads(es):
    return [e for _, e in es if e["type"] == "resp" and e["qid"] > 0 and e["opcode"] == 2
            and e["vm"] == 1 and e["backend"] == 1]
during = [(i, e) for i, e in evs if i >= pre]
rd = reads(during)
lat = sorted(e["latency_ns"] for e in rd if e["latency_ns"] > 0)
unmatched = sum(1 for e in rd if e["latency_ns"] == 0)
errs = sum(1 for e in rd if e["status"] >> 1)
cmds = sum(1 for _, e in during if e["type"] == "cmd" and e["qid"] > 0 and e["opcode"] == 2)
k = len(lat)
med = (lat[(k - 1) // 2] + lat[k // 2]) / 2 if k else 0
pct = lambda q: lat[min(k - 1, int(q * k))] if k else 0
print("EV %d %d %d %d %.0f" % (len(lat), unmatched, errs, cmds, med))
print("events: %d lines (%d before fio, %d not JSON); during fio: %d read commands, "
      "%d matched read responses (%d unmatched, %d errors), %d read responses before" % (
      len(lines), pre, bad, cmds, len(lat), unmatched, errs, len(reads(evs[:pre]))))
if k:
    print("datapath read latency ms: min %.3f p10 %.3f median %.3f p90 %.3f max %.3f" % (
          lat[0] / 1e6, pct(0.1) / 1e6, med / 1e6, pct(0.9) / 1e6, lat[-1] / 1e6))
EOF
)
read -r _ EV_N EV_UNM EV_ERR _ EV_MED <<<"$(grep '^EV ' <<<"$ev")"
grep -v '^EV ' <<<"$ev" | diag
[ -s "$OUT/events.err" ] && diag <"$OUT/events.err"
$PY - "$OUT/telemetry.json" <<'EOF' 2>&1 | diag
import json, sys
t = json.load(open(sys.argv[1]))
s, b = t["stats"], t["latency"].get("backend/1", {})
print("vsn show telemetry: read_cmds %d resps %d matched %d unmatched %d events sent %d dropped %d "
      "sampled %d; backend/1 histogram p50 %.3f ms p99 %.3f ms (log2 buckets)" % (
      s["read_cmds"], s["resps"], s["matched"], s["unmatched"], s["events_sent"],
      s["events_dropped"], s["events_sampled"], b.get("p50_ns", 0) / 1e6, b.get("p99_ns", 0) / 1e6))
EOF

check "datapath reported a matched response for every read fio issued (${EV_N:-0} >= ${FIO_IOS:-?}, opcode 2 on an I/O queue, no unmatched/errors)" \
	test "${EV_N:-0}" -ge "${FIO_IOS:-999999}" -a "${FIO_IOS:-0}" -gt 0 -a "${EV_UNM:-1}" = 0 -a "${EV_ERR:-1}" = 0

lo=$((DELAY * (100 - TOL_PCT) / 100))
hi=$((DELAY * (100 + TOL_PCT) / 100))
med_ms=$(awk -v v="${EV_MED:-0}" 'BEGIN {printf "%.3f", v / 1e6}')
echo "# median datapath read latency $med_ms ms; fio clat p50 $(awk -v v="${FIO_P50:-0}" 'BEGIN {printf "%.3f", v / 1e6}') ms;" \
	"configured null_blk delay $(awk -v v="$DELAY" 'BEGIN {printf "%.3f", v / 1e6}') ms"
check "median datapath read latency $med_ms ms within $TOL_PCT% of the target's $((DELAY / 1000)) us delay" \
	awk -v m="${EV_MED:-0}" -v lo="$lo" -v hi="$hi" 'BEGIN {exit !(m >= lo && m <= hi)}'

if [ "$failed" -eq 0 ] && [ -z "${E2E_KEEP:-}" ]; then
	rm -f "$OUT/events.jsonl"
else
	echo "# events, fio JSON and logs kept in $OUT"
fi
echo "# wall time $(secs "$T_START") s"
[ "$failed" -eq 0 ]
