#!/bin/bash
# make demo: vsn on real kernels.  A tenant VM (QEMU, Debian's kernel) runs
# fio on its NVMe/TCP volume, which it reaches only through vsn's virtual
# address, while
#   1. everything is fine (steady state),
#   2. the path carrying its I/O congests (TBF on that uplink), then clears,
#   3. target 1 turns ANA-inaccessible (restored afterwards),
#   4. the fabric carrying its I/O is cut silently (carriers stay up).
# The story runs three times, one column each in the summary:
#   vsn        the daemon decides: moves, drains, fails over;
#   observe    the daemon only measures and logs (observe_only: the static
#              mapping stays);
#   multipath  the kernel's own NVMe multipath: target 1 listens on a second
#              address, the tenant connects to two virtual addresses (one
#              per fabric, pinned by vsn's static routes) with nvme-cli's
#              default settings; the daemon observe-only.
# The guests boot once; between setups the tenant disconnects, vsn is
# detached and attached again (empty maps, no connection left) and the
# daemon restarts with the setup's config.
#
# Topology: scripts/testbed/topo_ctl.sh, prefix vdemo (tenant VM on tap0 in
# vdemo-hv with vsn; path 1 = up0 through fabric 0, path 2 = up1 through
# fabric 1; targets tgt1 and tgt2 with the same NQN and namespace).
# Measured: fio's completion log in the tenant (per-I/O time and latency:
# throughput, p99, the longest gap between completions), fio's I/O error
# count every second, vsn's per-path and per-backend counters every 0.5 s,
# vsn's decision log, the tenant kernel's messages.  Guest clocks are mapped
# to the host's (scripts/demo/clock.py).
#
# Results in build/demo/: summary.txt (table and timelines), summary.json,
# paths.svg, vsn.prom and decisions.log (of the vsn setup), demo.log (this
# story), and one directory per setup with the raw data.
#
# Usage: scripts/demo.sh (root; `make demo` installs and builds first)
#   DEMO_SETUPS="vsn observe multipath"   which setups, in this order
#   DEMO_THINK_MS=20     fio's pause after every 8 I/Os (QD 8, 16 KiB, 50% writes)
#   DEMO_RATE=5mbit      the congested uplink's TBF rate
#   DEMO_STEADY_S=10 DEMO_CONGEST_S=15 DEMO_AFTER_S=5 DEMO_ANA_S=15
#   DEMO_CUT_S=20        phase lengths (the cut outlasts the kernel's ~14 s)
#   DEMO_CTL_EXTRA=      more controller keys for every setup, YAML flow
#                        ("silent_ms: 300, health_timeout_ms: 900")
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
export LC_ALL=C
ROOT=$PWD
OUT=$ROOT/build/demo
export P=vdemo PIN=/sys/fs/bpf/vdemo TOPO_DIR=$OUT/run VM_RUN=$OUT/run/vms TOPO_DAEMON=0
# shellcheck source=testbed/topo_ctl.sh
. scripts/testbed/topo_ctl.sh
PY=/usr/bin/python3
SETUPS=${DEMO_SETUPS:-vsn observe multipath}
RATE=${DEMO_RATE:-5mbit}
STEADY_S=${DEMO_STEADY_S:-10}
CONGEST_S=${DEMO_CONGEST_S:-15}
AFTER_S=${DEMO_AFTER_S:-5}
ANA_S=${DEMO_ANA_S:-15}
CUT_S=${DEMO_CUT_S:-20}
CTL_EXTRA=${DEMO_CTL_EXTRA:-}
SETTLE_S=3
TAIL_S=3
VIP=$TOPO_VIP
VIP2=192.168.100.11 # multipath: target 1's second address, through fabric 1
TGT1B=10.3.0.21
NQN=$TOPO_NQN
# fio pauses THINK_MS after every 8 I/Os (once they completed), which keeps
# three TCG guests on two cores well below saturation: a saturated guest
# answers late now and then, and vsn (150 ms silence, 500 ms health
# timeout) takes such pauses for failures.  A pause, unlike fio's rate
# limits, does not make up for lost time after a stall.
THINK_MS=${DEMO_THINK_MS:-20}
FIO_ARGS="--name=demo --ioengine=libaio --direct=1 --rw=randrw --rwmixread=50 --bs=16k"
FIO_ARGS+=" --thinktime=$((THINK_MS * 1000)) --thinktime_blocks=8"
FIO_ARGS+=" --iodepth=8 --size=64m --randrepeat=0 --time_based --runtime=900"
FIO_ARGS+=" --continue_on_error=all --write_lat_log=/tmp/demo/io --log_unix_epoch=1"
FIO_ARGS+=" --status-interval=1 --output-format=json --output=/tmp/demo/fio.json"
declare -A TITLE=([vsn]="vsn" [observe]="vsn observe-only (static mapping)"
	[multipath]="kernel NVMe multipath (vsn observe-only)")

TTY=0
[ -t 1 ] && TTY=1
LOG=$OUT/demo.log
T0=${EPOCHREALTIME/./}
SET_T0=$T0
EV_T=${EPOCHREALTIME}
EV_KIND=start
METER=0
SAMPLER=
FIO_PID=
TICKER=
CLEANED=0
SD=$OUT/none
OFF=0
UPOFF=0
KM_FROM=0

# ------------------------------------------------------------------ output
us() { echo "${EPOCHREALTIME/./}"; }
secs_since() { local d=$(($(us) - $1)); printf '%d.%d' $((d / 1000000)) $((d / 100000 % 10)); }
meter_clear() { [ "$METER" = 1 ] && printf '\r\033[K'; METER=0; }
# out STYLE TEXT: one line of the story, on the terminal and in demo.log.
out() {
	local ts style=$1
	shift
	ts=$(printf '%6ss' "$(secs_since "$T0")")
	meter_clear
	if [ "$TTY" = 1 ]; then
		case $style in
		head) printf '\n\033[1;36m[%s] %s\033[0m\n' "$ts" "$*" ;;
		event) printf '\033[1;33m[%s] %s\033[0m\n' "$ts" "$*" ;;
		vsn) printf '\033[32m[%s] %s\033[0m\n' "$ts" "$*" ;;
		*) printf '[%s] %s\n' "$ts" "$*" ;;
		esac
	else
		[ "$style" = head ] && echo
		printf '[%s] %s\n' "$ts" "$*"
	fi
	printf '[%s] %s\n' "$ts" "$*" >>"$LOG"
}
say() { out plain "$@"; }
die() {
	out plain "demo: error: $*"
	exit 1
}

# ------------------------------------------------------------------ cleanup
cleanup() {
	[ "$CLEANED" = 1 ] && return
	CLEANED=1
	meter_clear
	for p in $TICKER $SAMPLER $FIO_PID; do kill "$p" 2>/dev/null; done
	echo "[$(printf '%6ss' "$(secs_since "$T0")")] cleaning up: guests, daemon, vsn, namespaces" |
		tee -a "$LOG"
	topo_down >/dev/null 2>&1
	wait 2>/dev/null
	return 0
}
trap cleanup EXIT
trap 'meter_clear; echo; echo "interrupted"; exit 130' INT TERM

# ------------------------------------------------------------------ measurements
# Every line of samples.tsv: time, bytes to storage on path 1, 2, bytes of
# backend 1, 2, 3.  rate_over S: bytes/s to storage over the last S seconds.
rate_over() {
	awk -F'\t' -v w="$1" '{t[NR] = $1; v[NR] = $2 + $3}
	END {
		if (NR < 2) { print 0; exit }
		for (i = NR - 1; i > 1 && t[NR] - t[i] < w; i--);
		print (t[NR] > t[i]) ? int((v[NR] - v[i]) / (t[NR] - t[i])) : 0
	}' "$SD/samples.tsv" 2>/dev/null || echo 0
}
# The path that carried most bytes to storage in the last 2 s (1 or 2).
active_path() {
	awk -F'\t' '{t[NR] = $1; a[NR] = $2; b[NR] = $3}
	END {
		for (i = NR - 1; i > 1 && t[NR] - t[i] < 2; i--);
		print (NR < 2 || a[NR] - a[i] >= b[NR] - b[i]) ? 1 : 2
	}' "$SD/samples.tsv"
}
# One meter line: per-path and per-target rates over the last second.
meter_text() {
	awk -F'\t' '{t[NR] = $1; for (k = 2; k <= 6; k++) v[NR, k] = $k}
	function bar(x,   s, n) { s = ""; for (n = 0; n < x / 4 && n < 12; n++) s = s "#"; return sprintf("%-12s", s) }
	END {
		if (NR < 2) { print "waiting for counters"; exit }
		for (i = NR - 1; i > 1 && t[NR] - t[i] < 1; i--);
		d = t[NR] - t[i]; if (d <= 0) d = 1
		for (k = 2; k <= 6; k++) r[k] = (v[NR, k] - v[i, k]) * 8 / d / 1e6
		printf "to storage: path 1 %s %5.1f  path 2 %s %5.1f Mbit/s | tgt1 %5.1f tgt2 %5.1f Mbit/s both ways",
			bar(r[2]), r[2], bar(r[3]), r[3], r[4] + r[6], r[5]
	}' "$SD/samples.tsv" 2>/dev/null
}

# New lines of the decision log, shown with the time since the last event.
# A line that repeats one shown since that event (observe-only logs what it
# would do on every tick) is counted, not shown again.
DL_SEEN=0
declare -A DL_SHOWN=()
DL_REPEATS=0
# shellcheck disable=SC2016
JQ_DECISION='(if .event == "observe-only" then "vsn would " + (.would // "move")
	else "vsn " + .event end) + " " + ([to_entries[]
	| select(.key | IN("ts", "event", "reason", "would") | not)
	| "\(.key)=\(.value)"] | join(" ")) + "\t(" + .reason + ", "
	+ (((.ts - ($t | tonumber)) * 1000) | floor | tostring) + " ms after " + $k + ")"'
# decisions [CUTOFF]: show the new lines (only those before CUTOFF, host
# time, when given: the rest waits for the next event).  jq turns each line
# into one: the text, "-" (not shown) or "=" (at or after CUTOFF).
decisions() {
	local n line what used=0
	[ -f "$TOPO_DLOG" ] || return 0
	n=$(wc -l <"$TOPO_DLOG")
	[ "$n" -gt "$DL_SEEN" ] || return 0
	while IFS= read -r line; do
		[ "$line" = "=" ] && break
		used=$((used + 1))
		[ "$line" = "-" ] && continue
		what=${line%%$'\t'*}
		if [ -n "${DL_SHOWN[$what]:-}" ]; then
			DL_REPEATS=$((DL_REPEATS + 1))
			continue
		fi
		DL_SHOWN[$what]=1
		out vsn "    $what  ${line#*$'\t'}"
	done < <(sed -n "$((DL_SEEN + 1)),${n}p" "$TOPO_DLOG" |
		jq -R -r --arg t "$EV_T" --arg k "$EV_KIND" --arg cut "${1:-}" "(fromjson? // {}) |
			if \$cut != \"\" and (.ts // 0) >= (\$cut | tonumber) then \"=\"
			elif .ts == null or .event == \"started\" then \"-\" else $JQ_DECISION end" 2>/dev/null)
	DL_SEEN=$((DL_SEEN + used))
}

# The tenant kernel's NVMe messages as they come: the guest copies
# /dev/kmsg into its shared directory (kmsg_start); shown once per kind
# between two events, with their time mapped to the host's clock.
# kmsg [CUTOFF] as decisions.
KM_SEEN=0
declare -A KM_SHOWN=()
kmsg() {
	local f=$VM_RUN/vm1/share/kmsg n line key used=0
	[ -f "$f" ] || return 0
	n=$(wc -l <"$f")
	[ "$n" -gt "$KM_SEEN" ] || return 0
	while IFS= read -r line; do
		[ "$line" = "=" ] && break
		used=$((used + 1))
		[ "$line" = "-" ] && continue
		key=$(tr -d '0-9' <<<"${line%%$'\t'*}")
		[ -n "${KM_SHOWN[$key]:-}" ] && continue
		KM_SHOWN[$key]=1
		out plain "    tenant kernel: ${line%%$'\t'*}  ${line#*$'\t'}"
	done < <(sed -n "$((KM_SEEN + 1)),${n}p" "$f" | awk -v up="$UPOFF" -v off="$OFF" \
		-v from="$KM_FROM" -v t="$EV_T" -v k="$EV_KIND" -v cut="${1:-}" '{
		split($0, h, ","); msg = substr($0, index($0, ";") + 1)
		ht = h[3] / 1e6 + up - off
		if ($0 !~ /^[0-9]/ || msg !~ /nvme|I\/O error/ || ht < from) { print "-"; next }
		if (cut != "" && ht >= cut) { print "="; exit }
		printf "%s\t(%d ms after %s)\n", msg, (ht - t) * 1000, k
	}')
	KM_SEEN=$((KM_SEEN + used))
}
kmsg_start() {
	rm -f "$VM_RUN/vm1/share/kmsg"
	KM_SEEN=0
	KM_FROM=$EPOCHREALTIME
	vm_exec vm1 -t 20 'setsid cat /dev/kmsg >/share/kmsg 2>/dev/null </dev/null & echo $! >/tmp/kmsg.pid' >/dev/null
}
kmsg_stop() {
	kmsg
	vm_exec vm1 -t 20 'kill $(cat /tmp/kmsg.pid) 2>/dev/null; true' >/dev/null
}

# run_for S: S seconds of the story: the meter every second, new decisions
# as they come.
LAST_METER=0
run_for() {
	local f=000000 end now
	[[ $1 == *.* ]] && f=${1#*.}000000
	end=$(($(us) + ${1%.*} * 1000000 + 10#${f:0:6}))
	while now=$(us) && [ "$now" -lt "$end" ]; do
		decisions
		kmsg
		if [ $((now - LAST_METER)) -ge 1000000 ]; then
			LAST_METER=$now
			if [ "$TTY" = 1 ]; then
				printf '\r\033[K\033[2m  t+%-5s %s\033[0m' "$(secs_since "$SET_T0")" "$(meter_text)"
				METER=1
			elif [ $(((now - SET_T0) / 1000000 % 2)) = 0 ]; then
				out plain "  t+$(secs_since "$SET_T0") $(meter_text)"
			fi
		fi
		sleep 0.2
	done
	decisions
}
# wait_flowing MAX_S: until the storage traffic is back to a quarter of its
# steady rate (or MAX_S); prints how long it took.
wait_flowing() {
	local t want=$((STEADY_BPS / 4))
	t=$(us)
	while [ "$(rate_over 1)" -lt "$want" ]; do
		[ $(($(us) - t)) -ge $(($1 * 1000000)) ] && {
			out plain "  (I/O still not flowing after $1 s; going on)"
			return 1
		}
		run_for 0.5
	done
	return 0
}

# wait_healthy MAX_S: until the daemon sees every path and backend healthy
# again (failures are held down for a while), so that the next fault meets
# a settled system, not the previous one's after-effects.
wait_healthy() {
	local t n
	t=$(us)
	while :; do
		n=$(topo_vsn -j daemon status 2>/dev/null |
			jq -r '[.paths[].state, .backends[].state] | map(select(. != "healthy")) | length' 2>/dev/null)
		if [ "$n" = 0 ]; then
			out plain "  vsn's view: every path and backend healthy (waited $(secs_since "$t") s)"
			return 0
		fi
		if [ $(($(us) - t)) -ge $(($1 * 1000000)) ]; then
			out plain "  (vsn's view: ${n:-?} paths/backends not healthy after $1 s; going on)"
			return 1
		fi
		run_for 0.5
	done
}

# event KIND TEXT [HOST_TIME]: a fault or repair, on the timeline.
event() {
	local t=${3:-$EPOCHREALTIME}
	decisions "$t"
	kmsg "$t"
	[ "$DL_REPEATS" -gt 0 ] && out vsn "    (and $DL_REPEATS more decision-log lines repeating those)"
	DL_SHOWN=()
	DL_REPEATS=0
	KM_SHOWN=()
	printf '%s\t%s\t%s\n' "$t" "$1" "$2" >>"$SD/events.tsv"
	EV_T=$t EV_KIND=$1
	out event "t+$(secs_since "$SET_T0") >> $2"
	decisions
	kmsg
}

# clock NAME: the guest's clock minus the host's (seconds), to
# $SD/clock-NAME.off; clock-NAME.raw: its clock and kernel-log time at once.
clock() {
	local f=$VM_RUN/$1/share/clk p r
	rm -f "$f"
	# The last line pairs the clock with the kernel log's (a record written
	# to /dev/kmsg is stamped on the write): tenant kernel messages map too.
	vm_exec "$1" -t 20 'for i in $(seq 40); do echo $EPOCHREALTIME >>/share/clk; sleep 0.04; done
echo "vsn-demo-clock $EPOCHREALTIME" >/dev/kmsg
dmesg | sed -n "s/^\[ *\([0-9.]*\)\] vsn-demo-clock \([0-9.]*\)$/\2 \1/p" | tail -1' \
		>"$SD/clock-$1.raw" 2>&1 &
	p=$!
	r=$($PY scripts/demo/clock.py "$f" 40 15)
	wait "$p"
	echo "${r:-0}" >"$SD/clock-$1.off"
}

# ana_set STATE: target 1's ANA group on all its ports, as topo_ana
# (vsn-target ana all) does, with the guest's clock read right before the
# first write: a busy TCG guest may run the next command a second later.
# The event's host time to ANA_T.
ana_set() {
	local g off
	g=$(vm_exec tgt1 -t 30 "t=\$EPOCHREALTIME
for p in /sys/kernel/config/nvmet/ports/*/; do echo $1 >\"\$p/ana_groups/1/ana_state\" || exit 1; done
echo \$t") || out plain "  (setting ANA state $1 failed in tgt1: $g)"
	off=$(cat "$SD/clock-tgt1.off" 2>/dev/null || echo 0)
	ANA_T=$(awk -v g="${g:-0}" -v o="$off" -v n="$EPOCHREALTIME" \
		'BEGIN {printf "%.6f", (g > 0) ? g - o : n}')
}

# ------------------------------------------------------------------ setups
write_cfg() { # SETUP FILE
	local obs=false
	[ "$1" = vsn ] || obs=true
	{
		cat <<EOF
# make demo, setup $1 (written by scripts/demo.sh)
vms:
  - {name: vm1, id: 1, interface: tap0, addresses: [10.0.0.2, "2001:db8::2"]}
uplinks:
  - {interface: up0}
  - {interface: up1}
paths:
  - {id: 1, uplink: up0, next_hop: fib}
  - {id: 2, uplink: up1, next_hop: fib}
EOF
		if [ "$1" = multipath ]; then
			cat <<EOF
backends:
  - {id: 1, name: tgt1, address: $TOPO_TGT1, port: 4420, paths: [1], nqn: "$NQN", health: nvme-tcp}
  - {id: 3, name: tgt1-b, address: $TGT1B, port: 4420, paths: [2], nqn: "$NQN", health: nvme-tcp}
volumes:
  - {id: 1, vm: vm1, address: $VIP, port: 4420, protocol: nvme-tcp, backends: [1]}
  - {id: 2, vm: vm1, address: $VIP2, port: 4420, protocol: nvme-tcp, backends: [3]}
EOF
		else
			cat <<EOF
backends:
  - {id: 1, name: tgt1, address: $TOPO_TGT1, port: 4420, paths: [1, 2], nqn: "$NQN", health: nvme-tcp}
  - {id: 2, name: tgt2, address: $TOPO_TGT2, port: 4420, paths: [1, 2], nqn: "$NQN", health: nvme-tcp, tier: 1}
volumes:
  - {id: 1, vm: vm1, address: $VIP, port: 4420, protocol: nvme-tcp, backends: [1, 2]}
EOF
		fi
		# Latency-triggered congestion is off: under TCG a busy guest's
		# command latency jumps past 3x its baseline every few seconds.
		# The congestion here is a shaper, which the daemon sees in the
		# qdisc's counters.
		cat <<EOF
controller: {socket: $TOPO_SOCK, metrics_dir: $SD/metrics, congestion_latency_pct: 100000, observe_only: $obs${CTL_EXTRA:+, $CTL_EXTRA}}
EOF
	} >"$2"
}

# prepare SETUP: vsn with empty maps, the setup's config, its daemon.
prepare() {
	local s=$1 r applied
	topo_daemon_stop
	if [ "$FIRST" = 0 ]; then
		r=$(topo_vsn detach 2>&1) || die "vsn detach: $r"
		r=$(topo_vsn attach --vm tap0 --uplink up0,up1 2>&1) || die "vsn attach: $r"
	fi
	write_cfg "$s" "$SD/vsn.yaml"
	TOPO_CFG=$SD/vsn.yaml
	TOPO_DLOG=$SD/decisions.log
	DL_SEEN=0
	if [ "$s" = multipath ] && [ "$TGT1B_UP" = 0 ]; then
		r=$(vm_exec tgt1 -t 30 "ip addr add $TGT1B/24 dev eth0 && vsn-target port-add tcp $TGT1B") ||
			die "tgt1: second address and port: $r"
		TGT1B_UP=1
		say "tgt1 listens on a second address, $TGT1B:4420 (nvmet port $r); vsn: volume $VIP2 -> it, path 2 only"
	fi
	applied=$(topo_vsn apply "$SD/vsn.yaml" 2>&1) || die "vsn apply $SD/vsn.yaml: $applied"
	EV_T=$EPOCHREALTIME EV_KIND="the daemon's start"
	topo_daemon_start 2>>"$SD/daemon.err" || die "the daemon did not start: $(tail -3 "$TOPO_DIR/daemon.err")"
	say "vsn: $(sed -n 's/.*: \(applied.*\)/\1/p' <<<"$applied")$([ "$s" = vsn ] || echo '; daemon observe-only')"
}

# connect SETUP: the tenant's controller(s); DEV the namespace's block device.
connect() {
	local r
	if [ "$1" = multipath ]; then
		r=$(vm_exec vm1 -t 60 <<EOF
nvme connect -t tcp -a $VIP -s 4420 -n $NQN >/dev/null || exit 1
nvme connect -t tcp -a $VIP2 -s 4420 -n $NQN >/dev/null || exit 1
for i in \$(seq 100); do d=\$(cd /sys/block && ls -d nvme*n1 2>/dev/null | grep -v c | head -1); [ -n "\$d" ] && break; sleep 0.1; done
echo "DEV \$d"; cat /sys/class/nvme-subsystem/*/iopolicy | sed 's/^/IOPOLICY /'
EOF
		) || die "nvme connect in the tenant: $r"
		say "tenant: nvme connect $VIP and $VIP2 (defaults: keep-alive 5 s, reconnect-delay 10 s):" \
			"one subsystem, two paths, iopolicy $(sed -n 's/^IOPOLICY //p' <<<"$r")"
	else
		r=$(vm_exec vm1 -t 60 <<EOF
nvme connect -t tcp -a $VIP -s 4420 -n $NQN --reconnect-delay=1 --ctrl-loss-tmo=-1 >/dev/null || exit 1
for i in \$(seq 100); do d=\$(cd /sys/block && ls -d nvme*n1 2>/dev/null | grep -v c | head -1); [ -n "\$d" ] && break; sleep 0.1; done
echo "DEV \$d"
EOF
		) || die "nvme connect in the tenant: $r"
		say "tenant: nvme connect -t tcp -a $VIP -s 4420 --reconnect-delay=1 --ctrl-loss-tmo=-1"
	fi
	DEV=$(sed -n 's/^DEV //p' <<<"$r")
	[ -n "$DEV" ] || die "no NVMe namespace in the tenant: $r"
	topo_vsn show connections 2>/dev/null | sed -n 's/^vm 1 *tcp /    vsn connection: /p' |
		sed 's/  tx .*//' | while IFS= read -r l; do say "$l"; done
}

fio_start() {
	local i
	rm -rf "$VM_RUN/vm1/share/demo" "$VM_RUN/vm1/share/demo.started"
	vm_exec vm1 -t 900 >"$SD/fio.out" 2>&1 <<EOF &
rm -rf /tmp/demo; mkdir -p /tmp/demo /share/demo
touch /share/demo.started
fio $FIO_ARGS --filename=/dev/$DEV >/tmp/demo/fio.err 2>&1
rc=\$?
cp /tmp/demo/fio.json /tmp/demo/io_clat.*.log /share/demo/
echo "fio rc=\$rc"; cat /tmp/demo/fio.err
EOF
	FIO_PID=$!
	for i in $(seq 100); do
		[ -e "$VM_RUN/vm1/share/demo.started" ] && return 0
		kill -0 "$FIO_PID" 2>/dev/null || break
		sleep 0.1
	done
	die "fio did not start in the tenant: $(cat "$SD/fio.out")"
}

fio_stop() {
	local i
	vm_exec vm1 -t 20 'kill -INT $(pidof fio) 2>/dev/null; true' >/dev/null
	for i in $(seq 300); do
		kill -0 "$FIO_PID" 2>/dev/null || break
		[ "$i" = 200 ] && vm_exec vm1 -t 20 'kill -9 $(pidof fio) 2>/dev/null; true' >/dev/null
		sleep 0.1
	done
	wait "$FIO_PID" 2>/dev/null
	FIO_PID=
	mkdir -p "$SD/fio"
	cp "$VM_RUN"/vm1/share/demo/* "$SD/fio/" 2>/dev/null
	ls "$SD"/fio/io_clat.*.log >/dev/null 2>&1 || out plain "  (no fio completion log: $(tail -3 "$SD/fio.out"))"
}

# story SETUP: one run of the four phases.
story() {
	local s=$1 a c n
	SD=$OUT/$s
	rm -rf "$SD"
	mkdir -p "$SD/metrics"
	out head "=== setup $SETUP_N/$N_SETUPS: ${TITLE[$s]} ==="
	prepare "$s"
	vm_exec vm1 -t 20 'dmesg -c >/dev/null' >/dev/null
	connect "$s"
	clock vm1 &
	c=$!
	clock tgt1
	wait "$c"
	paste -d' ' "$SD/clock-vm1.off" <(awk '{printf "%.3f\n", $1 - $2}' <(tail -1 "$SD/clock-vm1.raw")) \
		>"$SD/clock.txt"
	read -r OFF UPOFF <"$SD/clock.txt"
	say "guest clocks: vm1 $(cat "$SD/clock-vm1.off") s, tgt1 $(cat "$SD/clock-tgt1.off") s from the host's"
	kmsg_start
	: >"$SD/events.tsv"
	$PY scripts/demo/sampler.py "$SD/samples.tsv" 0.5 nsenter --net="/run/netns/$P-hv" \
		"$TOPO_VSN" --pin-dir "$PIN" -j show counters &
	SAMPLER=$!
	fio_start
	SET_T0=$(us)
	say "tenant: fio randrw 16 KiB, QD 8, ${THINK_MS} ms pause every 8 I/Os, on /dev/$DEV" \
		"(direct I/O, every completion logged)"
	for n in $(seq 50); do
		[ "$(rate_over 1)" -gt 100000 ] && break
		run_for 0.2
	done
	event start "steady state"
	run_for "$STEADY_S"
	STEADY_BPS=$(rate_over "$STEADY_S")

	a=$(active_path)
	event congest "path $a congests: TBF $RATE on uplink up$((a - 1)), the path carrying the I/O"
	topo_congest $((a - 1)) "$RATE"
	run_for "$CONGEST_S"
	topo_uncongest $((a - 1))
	event uncongest "congestion over: TBF removed from up$((a - 1))"
	run_for "$AFTER_S"
	wait_healthy 10

	ana_set inaccessible
	event ana "target 1 (tgt1) ANA-inaccessible on all its ports" "$ANA_T"
	run_for "$ANA_S"
	ana_set optimized
	event ana-restore "target 1 ANA-optimized again" "$ANA_T"
	run_for "$SETTLE_S"
	wait_flowing 25
	wait_healthy 10

	c=$(active_path)
	topo_cut $((c - 1))
	event cut "fabric $((c - 1)) cut silently under path $c (bridge port f$((c - 1)) disabled, carriers up)"
	run_for "$CUT_S"
	topo_heal $((c - 1))
	event heal "fabric $((c - 1)) healed"
	wait_flowing 25
	run_for "$TAIL_S"
	event end "fio stops"
	fio_stop
	kmsg_stop
	kill "$SAMPLER" 2>/dev/null
	wait "$SAMPLER" 2>/dev/null
	SAMPLER=
	decisions
	vm_exec vm1 -t 20 'dmesg' >"$SD/tenant-dmesg.txt" 2>&1
	topo_vsn -j daemon status >"$SD/daemon-status.json" 2>&1
	topo_vsn show connections >"$SD/connections.txt" 2>&1
	topo_daemon_stop
	cp "$SD/metrics/vsn.prom" "$SD/vsn.prom" 2>/dev/null
	vm_exec vm1 -t 30 'nvme disconnect-all' >/dev/null 2>&1
	say "results of ${TITLE[$s]}:"
	$PY scripts/demo_report.py --setup "$SD" | while IFS= read -r l; do say "$l"; done
	FIRST=0
}

# ------------------------------------------------------------------ main
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
[ -e "/run/netns/$P-hv" ] && topo_down >/dev/null 2>&1 # a previous run's leftovers
rm -rf "$OUT"
mkdir -p "$OUT"
: >"$LOG"
for s in $SETUPS; do
	[ -n "${TITLE[$s]:-}" ] || { echo "demo: unknown setup '$s' (vsn, observe, multipath)" >&2; exit 2; }
done
read -ra SETUP_LIST <<<"$SETUPS"
N_SETUPS=${#SETUP_LIST[@]}

out head "vsn demo: a tenant VM's NVMe/TCP volume through vsn, on real kernels (QEMU TCG guests)"
say "setups: $(for s in $SETUPS; do printf '%s; ' "${TITLE[$s]}"; done)phases: steady ${STEADY_S} s," \
	"congestion ${CONGEST_S} s + ${AFTER_S} s, target failure ${ANA_S} s, fabric cut ${CUT_S} s"
# The whole run uses one vsn binary, even if build/vsn is rebuilt meanwhile.
mkdir -p "$TOPO_DIR"
cp "$TOPO_VSN" "$TOPO_DIR/vsn" || die "no $TOPO_VSN: run make"
TOPO_VSN=$TOPO_DIR/vsn
say "topology (scripts/testbed/topo_ctl.sh, prefix $P): tenant VM vm1 -- tap0 [vdemo-hv: vsn]" \
	"-- up0 | up1 -- fabric 0 | fabric 1 -- storage router -- tgt1, tgt2 (nvmet, same NQN)"
say "booting three QEMU guests (TCG, one vCPU each; Debian's kernel, the testbed's initramfs):" \
	"tenant vm1, targets tgt1 and tgt2"
(
	t=$(us)
	while sleep 2; do
		r=""
		for g in tgt1 tgt2 vm1; do
			grep -q VSN-READY "$VM_RUN/$g/serial.log" 2>/dev/null && r+="$g ready, "
		done
		if [ "$TTY" = 1 ]; then
			printf '\r\033[K\033[2m  booting... %s s %s\033[0m' "$(secs_since "$t")" "${r%, }"
		else
			printf '  booting... %s s %s\n' "$(secs_since "$t")" "${r%, }"
		fi
	done
) &
TICKER=$!
B=$(us)
topo_up 2>"$OUT/topo-up.err"
rc=$?
kill "$TICKER" 2>/dev/null
wait "$TICKER" 2>/dev/null
TICKER=
[ "$TTY" = 1 ] && printf '\r\033[K'
[ $rc = 0 ] || die "topology up failed: $(tail -5 "$OUT/topo-up.err") (logs in $TOPO_DIR)"
say "topology up in $(secs_since "$B") s: three guests ready, vsn attached in $P-hv (XDP + TC)"

FIRST=1
TGT1B_UP=0
SETUP_N=0
for s in $SETUPS; do
	SETUP_N=$((SETUP_N + 1))
	story "$s"
done

out head "=== summary: per phase and setup ==="
$PY scripts/demo_report.py "$OUT" "${SETUP_LIST[@]}" | while IFS= read -r l; do say "$l"; done
# The Prometheus textfile and the decision log of the vsn setup (else the first).
for s in vsn $SETUPS; do
	[ -s "$OUT/$s/vsn.prom" ] || continue
	cp "$OUT/$s/vsn.prom" "$OUT/vsn.prom"
	cp "$OUT/$s/decisions.log" "$OUT/decisions.log"
	break
done
say "saved in $OUT: summary.txt (with timelines), summary.json, paths.svg, vsn.prom (Prometheus" \
	"textfile), decisions.log, demo.log; raw data per setup in $(for s in $SETUPS; do printf '%s/ ' "$s"; done)"
say "total wall time $(secs_since "$T0") s"
