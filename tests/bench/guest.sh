#!/bin/bash
# make bench, part guest: the longest I/O stall a tenant VM's fio sees after
# a silent path cut and after a backend failure, with vsn and with the
# kernel's native NVMe multipath, in the QEMU testbed of
# scripts/testbed/topo_ctl.sh (used as it is, prefix vbn-g): tenant VM vm1
# on tap0 in vbn-g-hv (vsn and its daemon), path 1 = up0 through fabric 0,
# path 2 = up1 through fabric 1, targets tgt1 (10.3.0.11) and tgt2
# (10.3.0.12) behind the storage router vbn-g-sto, the same subsystem and
# namespace identity on both.
#
#   vsn     the tenant connects to the volume address 192.168.100.10 only;
#           vsn steers it (tgt1 first, tgt2 the standby tier)
#   native  the tenant connects to tgt1 and to tgt2 itself (one subsystem,
#           two controllers: native multipath); the hypervisor routes tgt1
#           over fabric 0 and tgt2 over fabric 1; the daemon is stopped
# Both with the kernel's default connect settings (nvme connect without
# options: keep-alive 5 s, reconnect delay 10 s, I/O timeout 30 s).
# Faults, BENCH_GUEST_TRIALS (3) each, under fio (4 KiB random reads,
# iodepth 8, direct, every completion logged with its Unix ms time), 4 s
# into a 25 s run, each lasting 15 s (BENCH_GUEST_FAULT_S):
#   silent   the bridge port of the fabric carrying the I/O is disabled
#            (carriers stay up: topo_ctl.sh cut), then healed
#   backend  the target serving the I/O stops answering: the storage router
#            drops everything to and from it, then lets it through again
# The stall: the largest gap between consecutive fio completions (a stall
# still running at fio's end counts up to its end); also the largest gap
# beginning within 3 s of the fault (the failover itself) and whether I/O
# ran again before the fault ended.  The daemon runs with vsn's defaults (as tests/e2e/
# test_controller.sh: latency-triggered moves off).  Writes
# build/bench/guest.json; when topo_ctl.sh is missing, a "not_done" note.
# BENCH_GUEST_SETUPS ("vsn native") picks the setups, BENCH_GUEST_TRIALS (3)
# and BENCH_GUEST_FAULT_S (15) the effort.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
ROOT=$PWD
PY=/usr/bin/python3
OUTJ=$ROOT/build/bench/guest.json
TRIALS=${BENCH_GUEST_TRIALS:-3}
FAULT_S=${BENCH_GUEST_FAULT_S:-15}
RUN_S=$((4 + FAULT_S + 6))
T0=$(date +%s)
RES=$(mktemp -d /tmp/vbn-guest.XXXXXX)

say() { printf '[bench guest %5ds] %s\n' "$(($(date +%s) - T0))" "$*"; }
not_done() {
	say "NOT DONE: $1"
	$PY - "$OUTJ" "$1" "$(($(date +%s) - T0))" <<-'EOF'
	import json, sys, time
	json.dump({"part": "guest", "not_done": sys.argv[2], "seconds": float(sys.argv[3]),
	           "finished": time.strftime("%Y-%m-%d %H:%M:%S")}, open(sys.argv[1], "w"), indent=1)
	EOF
	rm -rf "$RES"
	exit 0
}

[ -f scripts/testbed/topo_ctl.sh ] ||
	not_done "scripts/testbed/topo_ctl.sh does not exist yet (the QEMU topology this part reuses)"
export P=vbn-g PIN=/sys/fs/bpf/vbn-g
export TOPO_DIR=$ROOT/build/bench/guest VM_RUN=$ROOT/build/bench/guest/vms
# As tests/e2e/test_controller.sh: under TCG a busy guest's command latency
# jumps past 3x its baseline every few seconds; latency-triggered moves
# would mix with the failovers measured here.
export TOPO_CTL_EXTRA="congestion_latency_pct: 100000"
# shellcheck source=../../scripts/testbed/topo_ctl.sh
. scripts/testbed/topo_ctl.sh
NQN=$TOPO_NQN

cleanup() {
	topo_down >/dev/null 2>&1
	rm -rf "$RES"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

g() { vm_exec vm1 -t "${2:-60}" "$1"; } # a command in the tenant VM
# The tenant's multipath block device (nvmeXnY, not a per-path nvmeXcYnZ).
dev() { g 'ls /sys/block | grep -E "^nvme[0-9]+n[0-9]+$" | head -1' | tail -1; }

# fio_run SECONDS NAME: fio in the tenant in the background (FIO_PID); its
# completion log ends up in $VM_RUN/vm1/share/NAME/.
fio_run() {
	local d
	d=$(dev)
	[ -n "$d" ] || return 1
	vm_exec vm1 -t $(($1 + 300)) "mkdir -p /tmp/$2 /share/$2
fio --name=stall --filename=/dev/$d --ioengine=libaio --direct=1 --bs=4k --iodepth=8 \
	--rw=randread --size=64m --time_based --runtime=$1 --write_lat_log=/tmp/$2/io \
	--log_unix_epoch=1 --log_avg_msec=0 --output-format=json --output=/tmp/$2/fio.json \
	>/tmp/$2/fio.log 2>&1
cp /tmp/$2/fio.json /tmp/$2/io_clat.*.log /share/$2/ 2>/dev/null; rm -rf /tmp/$2" \
		>"$RES/$2.exec" 2>&1 &
	FIO_PID=$!
}

# gap NAME FAULT_HOST_TIME HEAL_HOST_TIME: the largest completion gap (guest
# clock offset applied), the largest one beginning within 3 s of the fault
# (the failover), and whether I/O completed between the fault and its end.
gap() {
	$PY - "$VM_RUN/vm1/share/$1" "$2" "$3" "$OFF" <<-'EOF'
	import glob, json, sys
	d, fault, heal, off = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
	ts = []
	for f in glob.glob(d + "/io_clat.*.log"):
	    for line in open(f):
	        try:
	            ts.append(int(line.split(",")[0]) / 1000.0 - off)
	        except ValueError:
	            pass
	try:
	    j = json.load(open(d + "/fio.json"))
	    err = j["jobs"][0]["error"]
	    end = j["timestamp_ms"] / 1000.0 - off if "timestamp_ms" in j else None
	except (OSError, ValueError, KeyError, IndexError):
	    err, end = "no fio JSON", None
	ts.sort()
	if len(ts) < 2:
	    print(json.dumps({"error": "no completions logged", "fio_error": err}))
	    sys.exit()
	pts = ts + ([end] if end and end > ts[-1] else [])
	best, at = (0, None, None), (0, None, None)
	for a, b in zip(pts, pts[1:]):
	    if b - a > best[0]:
	        best = (b - a, a, b)
	    # The failover: the largest gap beginning in the 3 s after the fault.
	    if fault - 0.2 <= a <= fault + 3 and b - a > at[0]:
	        at = (b - a, a, b)
	print(json.dumps({"gap_s": round(best[0], 3), "gap_from_fault_s": round(best[1] - fault, 3),
	                  "failover_gap_s": round(at[0], 3) if at[1] else None,
	                  "resumed_during_fault": bool(at[1] and at[2] < heal and at[2] in ts),
	                  "ios": len(ts), "fio_error": err,
	                  "open_ended": bool(end and best[2] == end)}))
	EOF
}

# clock_off: guest clock minus host clock (s); fio logs guest time.
clock_off() {
	local h0 h1 gt
	h0=$(date +%s.%N)
	gt=$(g 'date +%s.%N' | tail -1)
	h1=$(date +%s.%N)
	awk -v a="$h0" -v b="$h1" -v g="$gt" 'BEGIN {printf "%.3f", g - (a + b) / 2}'
}

sto_fail() { # the target at ADDR drops out silently / comes back
	topo_ns sto nft -f - <<-EOF
	table ip vbnfail {
		chain vbnfwd {
			type filter hook forward priority 0; policy accept;
			ip daddr $1 drop
			ip saddr $1 drop
		}
	}
	EOF
}
sto_unfail() { topo_ns sto nft delete table ip vbnfail 2>/dev/null; }

# vsn_where: "BACKEND PATH" of the tenant's I/O: of its storage connections
# active in the last second (entries of closed ones stay in the table), the
# one with the most packets.
vsn_where() {
	topo_vsn -j show connections |
		jq -r '[.[] | select(.dport == 4420 and .idle_s < 1)] | sort_by(-.tx_packets) | .[0] |
			"\(.backend) \(.path)"'
}

# trial SETUP FAULT N: one fio run with the fault 4 s in, for FAULT_S.
trial() {
	local setup=$1 fault=$2 n=$3 name="$1-$2-$3" t_fault t_heal be path fab addr healer
	if [ "$setup" = vsn ]; then
		# Routes back on path 1, released to the controller: the I/O runs
		# through fabric 0 and the daemon's admin-queue polls through
		# fabric 1 (TOPO_POLL_VIA), so a cut of fabric 0 is a path's.
		for be in 1 2; do
			topo_vsn route set 1 1 "$be" 1 >/dev/null && topo_vsn route del 1 1 "$be" >/dev/null
		done
	fi
	fio_run "$RUN_S" "$name" || {
		say "$name: no block device in the tenant"
		return 1
	}
	sleep 3
	if [ "$setup" = vsn ]; then # where the I/O runs now
		read -r be path <<<"$(vsn_where)"
		fab=$((${path:-1} - 1))
		addr=$TOPO_TGT1
		[ "${be:-1}" = 2 ] && addr=$TOPO_TGT2
	else
		fab=0 addr=$TOPO_TGT1 # the first controller: the numa iopolicy's path
	fi
	sleep 1
	t_fault=$(date +%s.%N)
	if [ "$fault" = silent ]; then topo_cut "$fab"; else sto_fail "$addr"; fi
	# Healed on time even when I/O hangs and fio with it.
	(
		sleep "$FAULT_S"
		if [ "$fault" = silent ]; then topo_heal "$fab"; else sto_unfail; fi
	) &
	healer=$!
	t_heal=$(awk -v a="$t_fault" -v b="$FAULT_S" 'BEGIN {printf "%.3f", a + b}')
	wait "$FIO_PID"
	wait "$healer"
	g_out=$(gap "$name" "$t_fault" "$t_heal")
	if [ "$setup" = vsn ]; then # what the daemon decided meanwhile
		evs=$(jq -r --argjson a "$t_fault" --argjson b "$(date +%s.%N)" \
			'select(.ts >= $a and .ts <= $b and (.event | test("^route-|volume-class") | not)) |
			"\(.event)(\(.reason))"' "$TOPO_DLOG" 2>/dev/null | uniq -c |
			awk '{printf "%s%s%s", (NR > 1 ? " " : ""), $2, ($1 > 1 ? " x" $1 : "")}')
		g_out=$(jq -c --arg ev "$evs" '. + {events: $ev}' <<<"$g_out" 2>/dev/null || echo "$g_out")
	fi
	echo "$setup $fault $n $g_out" >>"$RES/trials"
	say "$setup $fault trial $n: $(jq -r '"largest gap \(.gap_s) s (\(.gap_from_fault_s) s after the fault), failover gap \(.failover_gap_s) s, I/O again before the heal: \(.resumed_during_fault), \(.ios) I/Os, fio error \(.fio_error)\(if .open_ended then " (gap to fio end)" else "" end)"' <<<"$g_out" 2>/dev/null || echo "$g_out")"
}

# recovered SETUP: the tenant's I/O path usable again before the next trial.
recovered() {
	local i
	for i in $(seq 60); do
		if [ "$1" = vsn ]; then
			topo_vsn -j daemon status 2>/dev/null |
				jq -e 'all(.paths[]; .state == "healthy") and all(.backends[]; .state == "healthy")' \
					>/dev/null && g "dd if=/dev/$(dev) of=/dev/null bs=4k count=16 iflag=direct" 30 \
				>/dev/null 2>&1 && return 0
		else
			[ "$(g 'cat /sys/class/nvme/nvme*/state 2>/dev/null | grep -c "^live$"' | tail -1)" = 2 ] &&
				return 0
		fi
		sleep 1
	done
	return 1
}

# ------------------------------------------------------------------ run
say "testbed up (scripts/testbed/topo_ctl.sh, prefix $P): 3 QEMU guests, vsn, daemon"
topo_down >/dev/null 2>&1
topo_up || not_done "topo_ctl.sh up failed: $(tail -5 "$TOPO_DIR/topo.log" 2>/dev/null | tr '\n' ' ')"
OFF=$(clock_off)
say "guest clock - host clock: $OFF s"

# Some I/O before the first trial: the daemon has seen the workload (it
# classifies volumes by their I/O) and every cache is warm.
warm_up() {
	g "fio --name=warm --filename=/dev/$(dev) --ioengine=libaio --direct=1 --bs=4k \
--iodepth=8 --rw=randread --size=64m --time_based --runtime=5 >/dev/null 2>&1" 60 >/dev/null
}

run_vsn() {
	local fault n
	say "vsn: the tenant connects to $TOPO_VIP (default settings)"
	g "nvme connect -t tcp -a $TOPO_VIP -s 4420 -n $NQN" 60 >/dev/null || say "nvme connect failed"
	warm_up
	for fault in silent backend; do
		for n in $(seq "$TRIALS"); do
			recovered vsn || say "vsn did not recover before trial $n"
			trial vsn "$fault" "$n"
		done
	done
	recovered vsn || true
	g "nvme disconnect-all" 60 >/dev/null
}

run_native() {
	local fault n t
	say "native: the tenant connects to tgt1 and tgt2 (native multipath, default settings)"
	topo_daemon_stop
	# Two nvmet systems serving one subsystem must hand out distinct
	# controller IDs, or the host rejects the second controller
	# ("Duplicate cntlid").
	for t in 1 2; do
		vm_exec "tgt$t" -t 30 "d=/sys/kernel/config/nvmet/subsystems/$NQN
echo $((t * 1000 - 999)) >\$d/attr_cntlid_min && echo $((t * 1000 - 1)) >\$d/attr_cntlid_max" \
			>/dev/null || say "tgt$t: cannot set its controller ID range"
	done
	ip -n "$P-hv" route add "$TOPO_TGT1/32" via 10.1.0.2 dev up0
	ip -n "$P-hv" route add "$TOPO_TGT2/32" via 10.2.0.2 dev up1
	for fault in silent backend; do
		for n in $(seq "$TRIALS"); do
			# Fresh controllers each trial: tgt1 first, the path numa uses.
			g "nvme disconnect-all; nvme connect -t tcp -a $TOPO_TGT1 -s 4420 -n $NQN &&
nvme connect -t tcp -a $TOPO_TGT2 -s 4420 -n $NQN" 90 >/dev/null || say "nvme connect failed"
			recovered native || say "native multipath: both paths not live before trial $n"
			[ "$fault$n" = silent1 ] && warm_up
			trial native "$fault" "$n"
		done
	done
	g "nvme disconnect-all" 60 >/dev/null
}

for setup in ${BENCH_GUEST_SETUPS:-vsn native}; do
	"run_$setup"
done

$PY - "$RES/trials" "$OUTJ" "$(($(date +%s) - T0))" "$TRIALS" "$OFF" "$FAULT_S" <<-'EOF'
import json, statistics, sys, time
trials, stall, notes, fo, resumed, after, events = {}, {}, [], {}, {}, {}, {}
for line in open(sys.argv[1]):
    setup, fault, n, js = line.split(" ", 3)
    r = json.loads(js)
    if "gap_s" not in r:
        notes.append("%s %s trial %s: %s" % (setup, fault, n, r.get("error")))
        continue
    trials.setdefault(setup, {}).setdefault(fault, []).append(r["gap_s"])
    fo.setdefault(setup, {}).setdefault(fault, []).append(r.get("failover_gap_s"))
    resumed.setdefault(setup, {}).setdefault(fault, []).append(r.get("resumed_during_fault"))
    after.setdefault(setup, {}).setdefault(fault, []).append(r.get("gap_from_fault_s"))
    if r.get("events"):
        events.setdefault(setup, {}).setdefault(fault, []).append(
            "trial %s: %s" % (n, r["events"]))
    if r.get("fio_error"):
        notes.append("%s %s trial %s: fio error %s" % (setup, fault, n, r["fio_error"]))
    if r.get("open_ended") and r["gap_s"] >= 1:
        notes.append("%s %s trial %s: I/O had not resumed when fio ended (the gap is a lower "
                     "bound)" % (setup, fault, n))
for s, fs in trials.items():
    stall[s] = {f: max(xs) for f, xs in fs.items()}
json.dump({"part": "guest", "trials": trials, "stall_s": stall, "notes": notes,
           "failover_gap_s": fo, "resumed_during_fault": resumed,
           "gap_from_fault_s": after, "events": events,
           "seconds": float(sys.argv[3]), "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
           "loadavg": open("/proc/loadavg").read().split()[:3],
           "config": {"trials": int(sys.argv[4]), "guest_clock_offset_s": float(sys.argv[5]),
                      "fault_s": float(sys.argv[6])},
           "method": "fio 4 KiB random reads, iodepth 8, in the tenant VM (QEMU TCG, Debian "
                     "6.1 guests); the fault 4 s into a 25 s run, lasting %s s; figure: the "
                     "largest gap between consecutive completions, the longest of the trials "
                     "(also: the largest gap beginning within 3 s of the fault, and whether I/O ran again before "
                     "the fault ended). Kernel default connect settings in both setups; vsn's "
                     "daemon with its defaults." % sys.argv[6]},
          open(sys.argv[2], "w"), indent=1)
EOF
say "done in $(($(date +%s) - T0)) s: $OUTJ"
