#!/bin/bash
# End to end, with real kernels: the controller daemon (vsn daemon) keeps a
# tenant VM's NVMe/TCP volume working through path and target failures.
# Topology: scripts/testbed/topo_ctl.sh (prefix vct) - tenant VM on tap0 in
# vct-hv, where vsn and its daemon run; path 1 = up0 through fabric 0, path
# 2 = up1 through fabric 1 (a bridge each, cut silently with a bridge port
# in state 0); backends tgt1 (tier 0) and tgt2 (tier 1, standby), two nvmet
# VMs with the same NQN and namespace identity, polled by the daemon over
# their admin queues.  The tenant's kernel initiator connects to the
# volume's virtual address 192.168.100.10:4420 only (--reconnect-delay=1
# --ctrl-loss-tmo=-1; keep-alive and I/O timeouts are the kernel's
# defaults).  fio uses 4 KiB direct I/O at iodepth 8 with crc32c
# verification; every read-verify pass checks each block's header (its
# offset and checksum), so data from the wrong block or the wrong target
# fails fio.  fio logs every completion (Unix ms): the largest gap between
# consecutive completions is the stall the application saw.
#
#  1. path switch under I/O: a write+verify job and a read-verify pass
#     while `vsn route set` (through the daemon's API) moves the volume's
#     route between path 1 and path 2 every 0.6 s.  Per phase, only the
#     route's path carries packets (vsn's per-path counters); no fio error.
#  2. silent cut under I/O: read-verify passes on path 1; fabric 0's bridge
#     port towards up0 goes to state 0.  The decision log shows path-failed
#     (reason silent) and failover; the connections are on path 2; no reset,
#     no error recovery in the guest, no fio error; largest gap < 1 s.
#  3. backend failover: read-verify passes against tgt1; tgt1's ANA group
#     set inaccessible in configfs.  The daemon's admin-queue poll fails the
#     backend, drains it (connections_reset >= 1); the guest's controller
#     reconnects through the VIP and is served by tgt2 (which holds a copy of
#     the blocks read); no fio error; the gap is reported; writes afterwards
#     reach tgt2 only.
# Then the tenant VM boots again with the tap's vnet_hdr off (wire-sized
# frames instead of TSO super-frames) and 1 and 2 run once more, shorter.
#
# The controller's latency-triggered congestion moves are off here
# (congestion_latency_pct: 100000): under TCG the command latency of a
# busy guest jumps well past 3x its baseline every few seconds, and those
# moves would mix with the moves these scenarios make and check.
#
# Usage: tests/e2e/test_controller.sh   (root; builds the testbed on first use)
#   E2E_MODES="on off"   tap vnet_hdr modes (the first runs all scenarios)
#   E2E_KEEP=1           keep fio logs and the captures of a passing run
# shellcheck disable=SC2016,SC2086 # '$x' expands in the guest; $FIOC splits on purpose
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
ROOT=$PWD
P=vct
PIN=/sys/fs/bpf/vct
OUT=$ROOT/build/e2e/controller
export TOPO_DIR=$OUT VM_RUN=$OUT/vms
export TOPO_CTL_EXTRA="congestion_latency_pct: 100000"
MODES=${E2E_MODES:-on off}
# shellcheck source=../../scripts/testbed/topo_ctl.sh
. scripts/testbed/topo_ctl.sh
PY=/usr/bin/python3
VIP=$TOPO_VIP
NQN=$TOPO_NQN
DLOG=$TOPO_DLOG
FIOC="--filename=/dev/nvme0n1 --ioengine=libaio --direct=1 --bs=4k --iodepth=8 --randseed=42 --verify=crc32c"

T_START=$(date +%s%N)
. tests/lib/e2e.sh
. tests/lib/checks.sh

FIO_PID=
cleanup() {
	[ -n "$FIO_PID" ] && kill "$FIO_PID" 2>/dev/null
	topo_down
	wait 2>/dev/null
	return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------------ helpers
ms_between() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%d", (b - a) * 1000}'; }

# Source ports of the tenant's established connections to the VIP.
guest_ports() {
	vm_exec vm1 -t 30 "ss -tnH state established '( dport = :4420 )'" |
		awk '{n = split($3, a, ":"); print a[n]}' | sort -n | paste -sd, -
}
# conns PORTS: "sport backend path" of each of the tenant's connections.
conns() {
	topo_vsn -j show connections | $PY -c '
import json, sys
want = {int(p) for p in sys.argv[1].split(",") if p}
for c in json.load(sys.stdin):
    if c["src"] == "10.0.0.2" and c["sport"] in want:
        print(c["sport"], c["backend"], c["path"])' "$1"
}
# Packets to storage per path and per backend: "p1 p2 b1 b2".
counters() {
	topo_vsn -j show counters | $PY -c '
import json, sys
j = json.load(sys.stdin)
g = lambda t, k: j[t].get(k, {}).get("packets", 0)
print(g("paths", "1"), g("paths", "2"), g("backends", "1"), g("backends", "2"))'
}
# wait_io FIELD: until counters() field FIELD grew by 300 packets in at
# least a second (fio's I/O flows), at most 8 s.
wait_io() {
	local c0 c1 i
	read -r -a c0 <<<"$(counters)"
	for i in $(seq 80); do
		sleep 0.1
		read -r -a c1 <<<"$(counters)"
		[ $((c1[$1] - c0[$1])) -gt 300 ] && [ "$i" -ge 10 ] && return 0
	done
	return 1
}
# Guest clock minus host clock (s), as OFF: fio logs guest time, the daemon
# host time.  UPOFF: the guest's clock minus its uptime (dmesg stamps).
guest_clock() {
	local a b g
	a=$(now)
	g=$(vm_exec vm1 -t 10 'echo $EPOCHREALTIME $(cut -d" " -f1 /proc/uptime)')
	b=$(now)
	read -r OFF UPOFF <<<"$(awk -v a="$a" -v b="$b" -v g="${g% *}" -v u="${g#* }" \
		'BEGIN {printf "%.3f %.3f", g - (a + b) / 2, g - u}')"
}
# dmesg_at REGEX: host time of the tenant's first kernel message matching REGEX.
dmesg_at() {
	vm_exec vm1 -t 10 'dmesg' | grep -E "$1" | head -1 |
		awk -v o="$UPOFF" -v g="$OFF" -F'[][]' '{printf "%.3f", $2 + o - g}'
}

# fio_start NAME ARGS...: fio in the tenant VM in the background (FIO_PID);
# returns once it runs.  Its JSON and completion logs end up in $OUT/NAME/.
fio_start() {
	local name=$1 i
	shift
	rm -rf "$(vm_file vm1 "$name")" "$(vm_file vm1 "$name").started" "${OUT:?}/$name"
	vm_exec vm1 -t 240 >"$OUT/$name.out" 2>&1 <<EOF &
mkdir -p /tmp/$name /share/$name
touch /share/$name.started
fio --output-format=json --output=/tmp/$name/fio.json --write_lat_log=/tmp/$name/io \
	--log_unix_epoch=1 $* >/tmp/$name/fio.log 2>&1
rc=\$?
cp /tmp/$name/fio.json /tmp/$name/io_clat.*.log /share/$name/ 2>/dev/null
echo "FIO rc=\$rc"
cat /tmp/$name/fio.log
exit \$rc
EOF
	FIO_PID=$!
	for i in $(seq 100); do
		[ -e "$(vm_file vm1 "$name").started" ] && return 0
		kill -0 "$FIO_PID" 2>/dev/null || break
		sleep 0.1
	done
	return 1
}
fio_running() { [ -n "$FIO_PID" ] && kill -0 "$FIO_PID" 2>/dev/null; }
fio_wait() { # NAME: waits; FIO_RC
	wait "$FIO_PID"
	FIO_RC=$?
	FIO_PID=
	cp -r "$(vm_file vm1 "$1")" "$OUT/$1" 2>/dev/null
	grep -v '^FIO rc=' "$OUT/$1.out" | grep -v '^$' | head -20 | diag
}
# fio_report NAME OFFSET [EVENT]: "FIOR errors ios gap_ms gap_start gap_end
# first last near_ms near_start" (times in host seconds: the guest's minus
# OFFSET; near: the largest gap that ends after EVENT and starts at most 3 s
# after it), then per-job lines.
fio_report() {
	$PY - "$OUT/$1" "$2" "${3:-0}" <<'EOF' 2>&1
import glob, json, sys
d, off, ev = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
try:
    j = json.load(open(d + "/fio.json"))
except (OSError, ValueError) as e:
    print("FIOR -1 0 0 0 0 0 0")
    print("no fio JSON: %s" % e)
    sys.exit(0)
errs = ios = 0
for job in j["jobs"]:
    n = {k: job[k]["total_ios"] for k in ("read", "write")}
    errs += job["error"]
    ios += n["read"] + n["write"]
    print("job %s: error %d, %d reads, %d writes, %.1f s" % (
        job["jobname"], job["error"], n["read"], n["write"], job["job_runtime"] / 1000))
t = []
for f in glob.glob(d + "/io_clat.*.log"):
    t += [int(l.split(",")[0]) / 1000.0 - off for l in open(f) if l.strip()]
t.sort()
g = max(((b - a, a, b) for a, b in zip(t, t[1:])), default=(0, 0, 0))
near = max(((b - a, a) for a, b in zip(t, t[1:]) if b > ev and a < ev + 3), default=(0, 0))
print("FIOR %d %d %d %.3f %.3f %.3f %.3f %d %.3f" % (errs, ios, g[0] * 1000, g[1], g[2],
      t[0] if t else 0, t[-1] if t else 0, near[0] * 1000, near[1]))
print("%d completions logged" % len(t))
EOF
}

# ------------------------------------------------------------------ setup
e2e_prepare
T=$(date +%s%N)
if topo_up 2>"$OUT/topo_up.err"; then
	ok "topology up: 3 VMs booted, vsn attached in $P-hv, daemon answering ($(secs "$T") s)"
else
	diag <"$OUT/topo_up.err"
	bail "topology up (scripts/testbed/topo_ctl.sh)" "$OUT/topo.log"
fi
# The first polls take a moment (TCP connect, ICReq, Connect, three reads).
for _ in $(seq 40); do
	out=$(topo_vsn -j daemon status)
	jt "$out" '[.backends[] | select(.reachable and .ana_state == 1)] | length == 2' && break
	sleep 0.25
done
if jt "$out" '[.backends[] | select(.reachable and .ana_state == 1)] | length == 2'; then
	ok "the daemon's admin-queue polls reach both targets (ANA optimized)"
else
	echo "$out" | head -c 2000 | diag
	nok "the daemon's admin-queue polls reach both targets (ANA optimized)"
fi

connect() { # TAG
	local out rc
	out=$(vm_exec vm1 -t 60 <<EOF
nvme connect -t tcp -a $VIP -s 4420 -n $NQN --reconnect-delay=1 --ctrl-loss-tmo=-1 || exit 1
for i in \$(seq 100); do [ -b /dev/nvme0n1 ] && break; sleep 0.1; done
echo "DEV \$(ls /dev/nvme0n1)"
echo "ADDR \$(cat /sys/class/nvme/nvme0/address)"
EOF
	)
	rc=$?
	echo "$out" | diag
	if [ $rc -eq 0 ] && grep -q "^DEV /dev/nvme0n1" <<<"$out" &&
		grep -q "^ADDR traddr=$VIP,trsvcid=4420" <<<"$out"; then
		ok "[$1] nvme connect to $VIP:4420 (reconnect-delay 1 s, ctrl-loss-tmo -1) gave /dev/nvme0n1"
		return 0
	fi
	nok "[$1] nvme connect to $VIP:4420 gave /dev/nvme0n1"
	return 1
}

# baseline TAG: each scenario starts from the same state, whatever the one
# before left: paths and backends healthy, the route of backend 1 on path 1
# and unpinned, the tenant's controller on backend 1 over path 1 (else it
# reconnects).
baseline() {
	local st i out
	for i in $(seq 80); do
		out=$(topo_vsn -j daemon status 2>/dev/null)
		jt "$out" 'all(.paths[]; .state == "healthy") and
			all(.backends[]; .state == "healthy" and (.drained | not))' && break
		sleep 0.25
	done
	jt "$out" 'all(.paths[]; .state == "healthy") and all(.backends[]; .state == "healthy")' ||
		echo "# [$1] not all healthy yet: $(jq -c '[.paths[].state, .backends[].state]' <<<"$out")"
	topo_vsn route set 1 1 1 1 >/dev/null && topo_vsn route del 1 1 1 >/dev/null
	st=$(conns "$(guest_ports)" | awk '{print $2 ":" $3}' | sort -u | paste -sd, -)
	[ "$st" = 1:1 ] && return 0
	echo "# [$1] tenant on (backend:path) ${st:-none}: reconnecting it"
	vm_exec vm1 -t 60 "nvme disconnect -n $NQN >/dev/null; nvme connect -t tcp -a $VIP -s 4420 \
		-n $NQN --reconnect-delay=1 --ctrl-loss-tmo=-1 &&
		for i in \$(seq 100); do [ -b /dev/nvme0n1 ] && break; sleep 0.1; done" 2>&1 | diag
	st=$(conns "$(guest_ports)" | awk '{print $2 ":" $3}' | sort -u | paste -sd, -)
	[ "$st" = 1:1 ]
}

# ------------------------------------------------------------------ 1. path switch
# s1 TAG MOVES: route moves between the paths under write+verify and read-verify.
s1() {
	local tag=$1 moves=$2 ports be path=1 i c0 c1 d bad=0 idle=0 set_fail=0 n_phase=0
	local sum1=0 sum2=0 L0 out phases="" r
	echo "# --- [$tag] 1. path switch under I/O ($moves moves)"
	baseline "$tag" || { nok "[$tag] 1. the tenant is served by backend 1 over path 1 to start with"; return; }
	ports=$(guest_ports)
	be=$(conns "$ports" | awk 'NR == 1 {print $2}')
	echo "# tenant connections (sport backend path): $(conns "$ports" | paste -sd';' -)"
	[ -n "$be" ] || { nok "[$tag] 1. the tenant's connections are in vsn's table"; return; }
	topo_vsn route set 1 1 "$be" 1 >/dev/null
	L0=$(loglines)
	# 16 MiB: long enough for four moves at TCG speed with vnet_hdr on
	# (8 MiB was done after three once).
	fio_start "s1-$tag" $FIOC --size=16m --name=write --rw=randwrite --do_verify=1 \
		--name=read --stonewall --rw=randread ||
		{ nok "[$tag] 1. fio started in the tenant VM"; return; }
	wait_io 0 || { nok "[$tag] 1. fio's writes reach path 1"; fio_wait "s1-$tag"; return; }
	for ((i = 1; i <= moves; i++)); do
		path=$((3 - path))
		if ! topo_vsn route set 1 1 "$be" "$path" >/dev/null 2>"$OUT/route.err"; then
			set_fail=$((set_fail + 1))
			diag <"$OUT/route.err"
		fi
		read -r -a c0 <<<"$(counters)"
		sleep 0.6
		read -r -a c1 <<<"$(counters)"
		r=no
		fio_running && r=yes
		n_phase=$((n_phase + 1))
		d=("$((c1[0] - c0[0]))" "$((c1[1] - c0[1]))")
		phases+="p$path:${d[0]}/${d[1]}$([ $r = no ] && echo '(fio done)') "
		sum1=$((sum1 + d[0]))
		sum2=$((sum2 + d[1]))
		# The route's path carries everything; the other one nothing.
		[ "${d[$((2 - path))]}" = 0 ] || bad=$((bad + 1))
		[ $r = yes ] && [ "${d[$((path - 1))]}" -le 0 ] && idle=$((idle + 1))
		[ $r = no ] && break
	done
	fio_wait "s1-$tag"
	# Back on path 1, and the pin released to the controller.
	topo_vsn route set 1 1 "$be" 1 >/dev/null && topo_vsn route del 1 1 "$be" >/dev/null
	echo "# phases (path:packets on path 1/path 2): $phases"
	out=$(logq "$L0" '.event | test("failed|drain|failover")')
	[ -n "$out" ] && echo "$out" | diag
	check "[$tag] 1. the moves alone made the daemon fail nothing (no path-failed, failover, backend-failed or drain decision)" \
		test -z "$out"
	out=$(logq "$L0" '.event == "route-pinned"' | wc -l)
	check "[$tag] 1. the daemon accepted every route move ($n_phase moves, $out route-pinned decisions logged, $set_fail refused)" \
		test "$set_fail" = 0 -a "$out" -ge "$n_phase" -a "$n_phase" -ge 4
	check "[$tag] 1. in every phase only the route's path carried packets to storage (path 1 $sum1, path 2 $sum2 packets in all)" \
		test "$bad" = 0 -a "$idle" = 0 -a "$sum1" -gt 0 -a "$sum2" -gt 0
	read -r _ e ios gap _ <<<"$(fio_report "s1-$tag" 0 | tee >(grep -v '^FIOR' | diag) | grep '^FIOR')"
	check "[$tag] 1. fio: 16 MiB random writes verified (crc32c) and read back verified across the moves: no error ($ios I/Os, largest gap ${gap} ms)" \
		test "$FIO_RC" = 0 -a "${e:-1}" = 0 -a "${ios:-0}" -ge 12288
	out=$(conns "$(guest_ports)" | awk '{print $3}' | sort -u | paste -sd, -)
	check "[$tag] 1. afterwards the route is back on path 1 and unpinned (connections on path $out)" \
		test "$out" = 1 -a "$(topo_vsn -j daemon status | jq '.pinned_routes | length')" = 0
}

# ------------------------------------------------------------------ 2. silent cut
s2() {
	local tag=$1 ports L0 t_cut t_heal line ms e ios gap gs ge first last near ns out dm
	echo "# --- [$tag] 2. silent cut of fabric 0 under I/O"
	baseline "$tag" || { nok "[$tag] 2. the tenant is served by backend 1 over path 1 to start with"; return; }
	# The blocks the passes read, written with their verification headers.
	vm_exec vm1 -t 90 "fio --name=seed $FIOC --size=4m --rw=randwrite --output-format=terse \
		--minimal >/dev/null" || { nok "[$tag] 2. 4 MiB written with verification headers"; return; }
	ports=$(guest_ports)
	out=$(conns "$ports" | awk '{print $3}' | sort -u | paste -sd, -)
	echo "# tenant connections (sport backend path): $(conns "$ports" | paste -sd';' -)"
	[ "$out" = 1 ] || { nok "[$tag] 2. the tenant's connections are on path 1 before the cut (got $out)"; return; }
	vm_exec vm1 'dmesg -c >/dev/null'
	guest_clock
	L0=$(loglines)
	fio_start "s2-$tag" $FIOC --size=4m --rw=randread --stonewall \
		--name=p1 --name=p2 --name=p3 --name=p4 --name=p5 --name=p6 --name=p7 --name=p8 ||
		{ nok "[$tag] 2. fio started in the tenant VM"; return; }
	wait_io 0 || echo "# no reads seen on path 1 yet"
	t_cut=$(now)
	topo_cut 0
	line=$(wait_log "$L0" '.event == "path-failed" and .path == 1' 5)
	ms=$(ms_between "$t_cut" "$(jq -r '.ts // 0' <<<"${line:-null}")")
	echo "# cut at $t_cut; $line"
	check "[$tag] 2. path 1 failed with reason silent ${ms} ms after the cut (< 1000)" \
		jt "$line" ".reason == \"silent\" and .ts - $t_cut < 1.0"
	line=$(wait_log "$L0" '.event == "failover" and .path == 1' 2)
	echo "# $line"
	check "[$tag] 2. failover of path 1: routes and connections moved, none left" \
		jt "$line" '.reason == "silent" and .routes_moved + .connections_moved >= 1 and .left == 0'
	out=$(conns "$ports" | awk '{print $3}' | sort -u | paste -sd, -)
	check "[$tag] 2. the tenant's connections (ports $ports) are now on path 2 (got $out)" test "$out" = 2
	# Fabric 0 back while I/O still runs: later moves are not this scenario's.
	sleep 1
	topo_heal 0
	t_heal=$(now)
	fio_wait "s2-$tag"
	read -r _ e ios gap gs ge first last near ns <<<"$(fio_report "s2-$tag" "$OFF" "$t_cut" | tee >(grep -v '^FIOR' | diag) | grep '^FIOR')"
	echo "# guest clock - host clock = $OFF s; fio ran $first .. $last (host time), cut at $t_cut, healed at $t_heal"
	echo "# largest completion gap ${gap} ms, from $gs to $ge (host time; cut + $(ms_between "$t_cut" "${gs:-0}") ms)"
	echo "# GAP [$tag] silent cut: largest stall within 3 s after the cut ${near:-?} ms (from cut + $(ms_between "$t_cut" "${ns:-0}") ms, guest clock ±0.3 s); largest anywhere ${gap:-?} ms"
	check "[$tag] 2. fio: randread passes with crc32c verification across the cut, no error ($ios I/Os)" \
		test "$FIO_RC" = 0 -a "${e:-1}" = 0 -a "${ios:-0}" -ge 8192
	check "[$tag] 2. fio kept running across the cut (completions before and after it)" \
		awk -v f="${first:-0}" -v l="${last:-0}" -v c="$t_cut" 'BEGIN {exit !(f < c - 0.2 && l > c + 1)}'
	check "[$tag] 2. longest gap between fio completions ${gap} ms < 1000 ms" test "${gap:-99999}" -lt 1000
	out=$(logq "$L0" '.event == "backend-failed" or .event == "drain"')
	[ -n "$out" ] && echo "$out" | diag
	dm=$(vm_exec vm1 'dmesg | grep -E "nvme|I/O" || true')
	[ -n "$dm" ] && echo "$dm" | diag
	check "[$tag] 2. no backend drained, no connection reset, no error recovery in the tenant" \
		test -z "$out" -a -z "$(grep -iE 'recovery|reconnect|reset|timeout' <<<"$dm")"
}

# ------------------------------------------------------------------ 3. backend failover
s3() {
	local tag=$1 ports out L0 c0 c1 line t_fail t_done ms e ios gap gs ge first last i sums dm
	echo "# --- [$tag] 3. backend failover (tgt1's ANA group inaccessible)"
	baseline "$tag" || { nok "[$tag] 3. the tenant is served by backend 1 over path 1 to start with"; return; }
	vm_exec vm1 -t 90 "fio --name=seed $FIOC --size=4m --rw=randwrite --output-format=terse \
		--minimal >/dev/null" || { nok "[$tag] 3. 4 MiB written with verification headers"; return; }
	ports=$(guest_ports)
	out=$(conns "$ports" | awk '{print $2}' | sort -u | paste -sd, -)
	echo "# tenant connections (sport backend path): $(conns "$ports" | paste -sd';' -)"
	[ "$out" = 1 ] || { nok "[$tag] 3. the tenant is served by backend 1 before the failure (got $out)"; return; }
	# tgt2 stands in with the same data: a copy of the first 4 MiB.
	vm_exec tgt1 -t 60 'dd if=/dev/nullb0 of=/share/img bs=1M count=4 iflag=direct status=none' &&
		cp "$(vm_file tgt1 img)" "$(vm_file tgt2 img)" &&
		vm_exec tgt2 -t 60 'dd if=/share/img of=/dev/nullb0 bs=1M oflag=direct status=none'
	sums=$(for t in tgt1 tgt2; do
		vm_exec "$t" -t 60 'dd if=/dev/nullb0 bs=1M count=4 iflag=direct status=none | sha256sum | cut -c1-16'
	done | sort -u)
	rm -f "$(vm_file tgt1 img)" "$(vm_file tgt2 img)"
	check "[$tag] 3. tgt2 holds a copy of tgt1's first 4 MiB (sha256 ${sums:0:16})" \
		test "$(wc -l <<<"$sums")" = 1 -a ${#sums} = 16
	vm_exec vm1 'dmesg -c >/dev/null'
	guest_clock
	L0=$(loglines)
	fio_start "s3-$tag" $FIOC --size=4m --rw=randread --stonewall --name=p1 --name=p2 \
		--name=p3 --name=p4 --name=p5 --name=p6 --name=p7 --name=p8 --name=p9 --name=p10 \
		--name=p11 --name=p12 ||
		{ nok "[$tag] 3. fio started in the tenant VM"; return; }
	wait_io 2 || echo "# no reads seen on backend 1 yet"
	t_fail=$(now)
	topo_ana 1 inaccessible >/dev/null
	t_done=$(now)
	echo "# tgt1 ANA inaccessible: configfs write from $t_fail to $t_done"
	line=$(wait_log "$L0" '.event == "backend-failed" and .backend == 1' 10)
	ms=$(ms_between "$t_done" "$(jq -r '.ts // 0' <<<"${line:-null}")")
	echo "# $line"
	check "[$tag] 3. backend 1 failed (reason backend, ANA inaccessible) $ms ms after the change (< 3000)" \
		jt "$line" ".reason == \"backend\" and (.why | test(\"ANA\")) and .ts - $t_done < 3.0"
	line=$(wait_log "$L0" '.event == "drain" and .backend == 1' 2)
	echo "# $line"
	check "[$tag] 3. backend 1 drained with connections_reset >= 1" \
		jt "$line" '.connections_reset >= 1'
	fio_wait "s3-$tag"
	topo_ana 1 optimized >/dev/null
	read -r _ e ios gap gs ge first last _ <<<"$(fio_report "s3-$tag" "$OFF" | tee >(grep -v '^FIOR' | diag) | grep '^FIOR')"
	dm=$(vm_exec vm1 'dmesg | grep -vE "requeuing I/O" | grep -E "nvme" || true')
	echo "$dm" | diag
	echo "# guest clock - host clock = $OFF s; fio ran $first .. $last (host time)"
	echo "# timeline from the end of the ANA write (ms): backend-failed +$ms," \
		"tenant's error recovery +$(ms_between "$t_done" "$(dmesg_at 'starting error recovery')")," \
		"reconnected +$(ms_between "$t_done" "$(dmesg_at 'Successfully reconnected')");" \
		"I/O stalled from +$(ms_between "$t_done" "${gs:-0}") to +$(ms_between "$t_done" "${ge:-0}")"
	echo "# GAP [$tag] backend failover: I/O gap $(awk -v g="${gap:-0}" 'BEGIN {printf "%.2f", g / 1000}') s"
	out=$(vm_exec vm1 'echo "$(cat /sys/class/nvme/nvme0/state) $(cat /sys/class/nvme/nvme0/address)"')
	check "[$tag] 3. the tenant's controller reconnected through the VIP ($out)" \
		grep -q "^live traddr=$VIP,trsvcid=4420" <<<"$out"
	ports=$(guest_ports)
	out=$(conns "$ports" | awk '{print $2}' | sort -u | paste -sd, -)
	echo "# tenant connections now (sport backend path): $(conns "$ports" | paste -sd';' -)"
	check "[$tag] 3. its new connections (ports $ports) are served by backend 2 (tgt2)" test "$out" = 2
	check "[$tag] 3. fio: randread passes with crc32c verification across the failover, no error, no corruption ($ios I/Os)" \
		test "$FIO_RC" = 0 -a "${e:-1}" = 0 -a "${ios:-0}" -ge 12288
	check "[$tag] 3. I/O resumed after the failover (gap $(awk -v g="${gap:-0}" 'BEGIN {printf "%.2f", g / 1000}') s, then completions until $last)" \
		awk -v ge="${ge:-0}" -v l="${last:-0}" -v t="$t_done" -v g="${gap:-0}" \
		'BEGIN {exit !(ge > t && l > ge + 0.5 && g < 30000)}'
	# New writes go to tgt2 only.
	read -r -a c0 <<<"$(counters)"
	out=$(vm_exec vm1 -t 90 "fio --name=after $FIOC --offset=64m --size=2m --rw=randwrite \
		--do_verify=1 --output-format=terse --minimal 2>&1 | cut -d';' -f1-6; exit \${PIPESTATUS[0]}")
	i=$?
	read -r -a c1 <<<"$(counters)"
	echo "# fio after the failover: $out; backend packets 1: +$((c1[2] - c0[2])), 2: +$((c1[3] - c0[3]))"
	check "[$tag] 3. 2 MiB written and verified after the failover, all of it through backend 2" \
		test "$i" = 0 -a "$((c1[2] - c0[2]))" = 0 -a "$((c1[3] - c0[3]))" -gt 500
}

# ------------------------------------------------------------------ run
first=1
for mode in $MODES; do
	T=$(date +%s%N)
	if [ "$first" = 1 ]; then
		[ "$mode" = "$TOPO_VNET_HDR" ] || topo_tenant_restart "$mode" 2> >(diag) ||
			bail "[vnet_hdr=$mode] tenant VM booted"
	else
		topo_tenant_restart "$mode" 2> >(diag) || { nok "[vnet_hdr=$mode] tenant VM booted"; continue; }
		echo "# tenant VM rebooted with vnet_hdr=$mode in $(secs "$T") s"
	fi
	connect "vnet_hdr=$mode" || continue
	if [ "$first" = 1 ]; then
		s1 "vnet_hdr=$mode" 8
		s2 "vnet_hdr=$mode"
		s3 "vnet_hdr=$mode"
	else
		s1 "vnet_hdr=$mode" 4
		s2 "vnet_hdr=$mode"
	fi
	echo "# vnet_hdr=$mode done in $(secs "$T") s"
	first=0
done

topo_vsn daemon status >"$OUT/daemon-status.txt" 2>&1
if [ "$failed" -eq 0 ] && [ -z "${E2E_KEEP:-}" ]; then
	rm -rf "$OUT"/s[123]-*/
else
	echo "# fio logs, decision log ($DLOG) and serial consoles kept in $OUT"
fi
echo "# wall time $(secs "$T_START") s"
[ "$failed" -eq 0 ]
