#!/bin/bash
# End to end, against a real kernel NVMe/TCP target (nvmet in a Debian 6.1
# guest): vsn's own admin-queue client (`vsn health probe`) and its libnvme
# reader (`vsn health local`) report what the kernel's own initiator and
# nvme-cli report for the same subsystem.
#
#   vnh-h [vnht 10.78.0.1] <-> target VM "tgt" eth0 10.78.0.2
#     port 1  10.78.0.2:4420  ANA group 1 optimized, group 2 non-optimized;
#                             the namespace is in group 2
#     port 2  10.78.0.2:4421  param_inline_data_size 0 (no in-capsule data)
#     4498                    a listener that accepts and never answers (nc)
#
# The independent reference: inside the guest the kernel initiator connects
# to its own port 1 over loopback (nvme connect), 1 MiB is written so that
# the SMART counters are not all zero, and nvme-cli reads id-ctrl, smart-log
# and ana-log as JSON.  Checked:
#   - `vsn health local` before any connect: exit 1, a clear message
#   - probe from the host: model, serial, firmware, version, subsystem NQN;
#     every subsystem-wide SMART field; every ANA group (id, state, number of
#     namespaces) equal to nvme-cli's; the error log count of the probe's own
#     controller is 0 (it is per controller in nvmet)
#   - `vsn health local nvme0` (and by address) in the guest: all of the
#     above plus cntlid and the error log count of that same controller
#   - port 2: in-capsule Connect data is refused with a clear NVMe status;
#     auto falls back to R2T/H2CData and succeeds; r2t alone succeeds
#   - group 2 set inaccessible in configfs: `vsn health watch` (the daemon's
#     worker) prints the change within a few seconds, the probe, the local
#     reader and nvme-cli all say inaccessible
#   - failures within the timeout, with a clear message: the port removed
#     (refused), a host that does not exist (TCP connect timeout), a
#     listener that never answers (ICResp timeout), a wrong NQN (Connect
#     refused: no such subsystem)
#
# Usage: tests/e2e/test_nvmf_health.sh   (root; builds the testbed on first use)
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
ROOT=$PWD
P=vnh
OUT=$ROOT/build/e2e/nvmf_health
export VM_RUN=$OUT/vms
# shellcheck source=../../scripts/testbed/vm.sh
. scripts/testbed/vm.sh

NQN=nqn.2026-11.io.vsn:health
TGT=10.78.0.2
NOHOST=10.78.0.9
TMO=1000
PY=/usr/bin/python3
VSN="nsenter --net=/run/netns/$P-h $ROOT/build/vsn"
CFG=/sys/kernel/config/nvmet

T_START=$(date +%s%N)
. tests/lib/e2e.sh

WATCH=
cleanup() {
	[ -n "$WATCH" ] && kill -INT "$WATCH" 2>/dev/null
	vm_stop_all
	ip netns del "$P-h" 2>/dev/null
	wait 2>/dev/null
	return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Milliseconds since a $(date +%s%N) stamp.
ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }
share() { vm_file tgt "$1"; }

# Compare vsn's JSON with nvme-cli's.  Prints "RESULT <what> ok|bad <details>".
compare() { # MODE(probe|local) VSN.json SMART.json ANA.json IDCTRL.json
	$PY - "$@" <<'EOF'
import json, sys
mode, vf, sf, af, idf = sys.argv[1:]
v = json.load(open(vf))
s = json.load(open(sf))
a = json.load(open(af))
i = json.load(open(idf))
def res(what, bad, detail):
    print("RESULT %s %s %s" % (what, "bad" if bad else "ok", detail))
if not v.get("reachable"):
    for w in ("identity", "smart", "ana"):
        res(w, True, "vsn: " + str(v.get("error")))
    sys.exit(0)
ident = [("model", v["model"], i["mn"].strip()), ("serial", v["serial"], i["sn"].strip()),
         ("firmware", v["firmware"], i["fr"].strip()), ("version", v["version"], i["ver"]),
         ("subnqn", v["subnqn"], i["subnqn"].strip())]
if mode == "local":
    ident.append(("cntlid", v["cntlid"], i["cntlid"]))
bad = [n for n, x, y in ident if x != y]
res("identity", bad, " ".join("%s=%r/%r" % (n, x, y) for n, x, y in ident))
sm = [("critical_warning", "critical_warning"), ("temperature_k", "temperature"),
      ("avail_spare", "avail_spare"), ("spare_thresh", "spare_thresh"),
      ("percent_used", "percent_used"), ("media_errors", "media_errors"),
      ("data_units_read", "data_units_read"), ("data_units_written", "data_units_written"),
      ("host_reads", "host_read_commands"), ("host_writes", "host_write_commands"),
      ("power_on_hours", "power_on_hours"), ("unsafe_shutdowns", "unsafe_shutdowns")]
pairs = [(n, int(v[n]), int(s[k])) for n, k in sm]
if mode == "local":
    pairs.append(("num_err_log_entries", int(v["num_err_log_entries"]),
                  int(s["num_err_log_entries"])))
else:
    # per controller in nvmet: the probe's fresh controller has had no error
    pairs.append(("num_err_log_entries(own controller)", int(v["num_err_log_entries"]), 0))
bad = [n for n, x, y in pairs if x != y]
# the 1 MiB written must show: equal zeros would prove nothing
if int(s["host_write_commands"]) < 16 or int(s["data_units_written"]) < 2:
    bad.append("no-writes-counted")
res("smart", bad, " ".join("%s=%d/%d" % p for p in pairs))
desc = next(val for key, val in a.items() if key.startswith("ANA DESC LIST"))
kg = [(d["grpid"], d["state"], d["nnsids"]) for d in desc]
vg = [(g["grpid"], g["state"], g["nnsids"]) for g in v["ana_groups"]]
res("ana", kg != vg or not v["ana_supported"], "vsn %s / nvme-cli %s" % (vg, kg))
EOF
}

# One assertion per RESULT line of compare().
report() { # PREFIX OUTPUT
	local what st detail
	while read -r _ what st detail; do
		if [ "$st" = ok ]; then ok "$1: $what equal to nvme-cli's"; else nok "$1: $what equal to nvme-cli's"; fi
		echo "$detail" | diag
	done < <(grep '^RESULT ' <<<"$2")
	grep -v '^RESULT ' <<<"$2" | diag
}

# ------------------------------------------------------------------ setup
e2e_prepare

T=$(date +%s%N)
ip netns add "$P-h" || bail "namespace $P-h created"
{
	ip -n "$P-h" link set lo up
	ip -n "$P-h" tuntap add dev vnht mode tap
	ip -n "$P-h" link set vnht up
	ip -n "$P-h" addr add 10.78.0.1/24 dev vnht
} >"$OUT/topo.log" 2>&1 || bail "host namespace set up" "$OUT/topo.log"
vm_start tgt --nic "$P-h:vnht" --append "vsn.role=target vsn.ip=$TGT/24 vsn.nqn=$NQN" ||
	bail "target VM started"
vm_wait tgt VSN-READY 90 2> >(diag) || bail "target VM booted"
echo "# boot $(secs "$T") s"

out=$(vm_exec tgt -t 60 <<EOF
set -e
S=$CFG/subsystems/$NQN
# ANA: a second group on port 1 (a new group starts inaccessible), the namespace in it
mkdir $CFG/ports/1/ana_groups/2
echo non-optimized >$CFG/ports/1/ana_groups/2/ana_state
echo 2 >\$S/namespaces/1/ana_grpid
# port 2 without in-capsule data
mkdir $CFG/ports/2
echo tcp >$CFG/ports/2/addr_trtype
echo ipv4 >$CFG/ports/2/addr_adrfam
echo $TGT >$CFG/ports/2/addr_traddr
echo 4421 >$CFG/ports/2/addr_trsvcid
echo 0 >$CFG/ports/2/param_inline_data_size
ln -s \$S $CFG/ports/2/subsystems/$NQN
# a TCP listener that never says a word
setsid sh -c 'sleep 600 | nc -l -p 4498' >/dev/null 2>&1 </dev/null &
for i in \$(seq 50); do grep -q ':1192 ' /proc/net/tcp && break; sleep 0.1; done
vsn-target ports
echo "vsn in guest: \$(command -v vsn)"
EOF
)
rc=$?
echo "$out" | diag
[ $rc -eq 0 ] || bail "target configured (ANA group 2, port 2 without in-capsule data, silent listener)"
ok "target configured: port 1 with ANA groups 1 and 2, port 2 without in-capsule data"

# ------------------------------------------------------------------ local, nothing connected
out=$(vm_exec tgt -t 30 'vsn health local; echo "RC=$?"' 2>&1)
echo "$out" | diag
if grep -q 'RC=1' <<<"$out" && grep -q 'no NVMe controller' <<<"$out"; then
	ok "vsn health local in the guest with no controller: exit 1, 'no NVMe controller'"
else
	nok "vsn health local in the guest with no controller: exit 1, 'no NVMe controller'"
fi

# ------------------------------------------------------------------ the kernel's own view
T=$(date +%s%N)
out=$(vm_exec tgt -t 90 <<EOF
set -e
modprobe nvme_tcp
nvme connect -t tcp -a $TGT -s 4420 -n $NQN
for i in \$(seq 100); do [ -b /dev/nvme0n1 ] && break; sleep 0.1; done
dd if=/dev/urandom of=/dev/nvme0n1 bs=64k count=16 oflag=direct 2>&1 | tail -1
nvme id-ctrl /dev/nvme0 -o json >/share/k_id.json
nvme smart-log /dev/nvme0 -o json >/share/k_smart.json
nvme ana-log /dev/nvme0 -o json >/share/k_ana.json
vsn -j health local nvme0 >/share/v_local.json || true
vsn -j health local $TGT:4420 --nqn $NQN >/share/v_local_addr.json || true
vsn health local nvme0 || true
EOF
)
rc=$?
echo "$out" | diag
[ $rc -eq 0 ] || bail "kernel initiator connected over loopback and nvme-cli read id-ctrl, smart-log, ana-log"
ok "kernel initiator in the guest connected to its own port 1, wrote 1 MiB, nvme-cli read the logs ($(secs "$T") s)"

# ------------------------------------------------------------------ remote probe
T=$(date +%s%N)
$VSN -j health probe $TGT --nqn $NQN --timeout-ms 5000 >"$OUT/probe.json" 2>"$OUT/probe.err"
rc=$?
echo "# probe: exit $rc in $(ms_since "$T") ms: $(head -c 400 "$OUT/probe.json")"
diag <"$OUT/probe.err"
check "vsn health probe $TGT (from the host) succeeded" test $rc = 0
report "probe" "$(compare probe "$OUT/probe.json" "$(share k_smart.json)" "$(share k_ana.json)" \
	"$(share k_id.json)" 2>&1)"
check "probe: ANA group 2 non-optimized, group 1 optimized, in-capsule Connect" \
	grep -q '"ana_groups":\[{"grpid":1,"state":"optimized","nnsids":0},{"grpid":2,"state":"non-optimized","nnsids":1}\].*"connect_data":"in-capsule"' "$OUT/probe.json"

# ------------------------------------------------------------------ local reader in the guest
for f in v_local v_local_addr; do
	cp "$(share $f.json)" "$OUT/$f.json" 2>/dev/null
	echo "# $f: $(head -c 300 "$OUT/$f.json" 2>/dev/null)"
done
report "local nvme0" "$(compare local "$OUT/v_local.json" "$(share k_smart.json)" \
	"$(share k_ana.json)" "$(share k_id.json)" 2>&1)"
check "local by address ($TGT:4420 --nqn) finds the same controller (nvme0, tcp, live)" \
	grep -q '"source":"nvme0".*"transport":"tcp","traddr":"'$TGT'","trsvcid":4420,"state":"live"' \
	"$OUT/v_local_addr.json"

# ------------------------------------------------------------------ Connect data: in-capsule vs R2T
declare -A CD=()
for m in in-capsule auto r2t; do
	T=$(date +%s%N)
	$VSN -j health probe $TGT:4421 --nqn $NQN --timeout-ms 3000 --connect-data $m \
		>"$OUT/port2-$m.json" 2>"$OUT/port2-$m.err"
	CD[$m]=$?
	echo "# port 2 --connect-data $m: exit ${CD[$m]} in $(ms_since "$T") ms: $(cat "$OUT/port2-$m.err")"
done
if [ "${CD[in-capsule]}" = 1 ] &&
	grep -q 'Connect: NVMe status 0x016 (SGL Offset Invalid' "$OUT/port2-in-capsule.err"; then
	ok "port 2 (inline_data_size 0), in-capsule only: refused with 'SGL Offset Invalid', exit 1"
else
	nok "port 2 (inline_data_size 0), in-capsule only: refused with 'SGL Offset Invalid', exit 1"
fi
check "port 2, auto: falls back to R2T/H2CData and reads the controller" \
	grep -q '"reachable":true.*"connect_data":"r2t"' "$OUT/port2-auto.json"
check "port 2, r2t: Connect data through R2T/H2CData, controller read" \
	grep -q '"reachable":true.*"serial":"'"$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["sn"].strip())' "$(share k_id.json)")"'".*"connect_data":"r2t"' \
	"$OUT/port2-r2t.json"

# ------------------------------------------------------------------ ANA change
$VSN -j health watch $TGT --nqn $NQN --interval-ms 250 --timeout-ms 2000 --count 2 \
	--duration-ms 20000 >"$OUT/watch.jsonl" 2>"$OUT/watch.err" &
WATCH=$!
for _ in $(seq 50); do [ -s "$OUT/watch.jsonl" ] && break; sleep 0.1; done
T_CHANGE=$(awk '{print $1}' /proc/uptime)
vm_exec tgt -t 30 "echo inaccessible >$CFG/ports/1/ana_groups/2/ana_state" ||
	nok "ANA group 2 of port 1 set inaccessible in configfs"
wait "$WATCH"
rc=$?
WATCH=
diag <"$OUT/watch.err"
ev=$($PY - "$OUT/watch.jsonl" "$T_CHANGE" <<'EOF' 2>&1
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
states = [[g["state"] for g in l.get("ana_groups", [])] for l in lines]
print("WATCH lines %d states %s" % (len(lines), states))
if len(lines) == 2 and states[0] == ["optimized", "non-optimized"] \
        and states[1] == ["optimized", "inaccessible"]:
    print("SEEN %.0f" % ((lines[1]["timestamp_ns"] / 1e9 - float(sys.argv[2])) * 1000))
EOF
)
echo "$ev" | diag
seen=$(sed -n 's/^SEEN //p' <<<"$ev")
check "vsn health watch (the daemon's worker, 250 ms interval) saw group 2 go non-optimized -> inaccessible within 5 s (${seen:-?} ms after the configfs write was started)" \
	test -n "$seen" -a "$rc" = 0 -a "${seen:-99999}" -le 5000

$VSN -j health probe $TGT --nqn $NQN --timeout-ms 5000 >"$OUT/probe2.json" 2>&1
$VSN health probe $TGT --nqn $NQN --timeout-ms 5000 >"$OUT/probe2.txt" 2>&1
diag <"$OUT/probe2.txt"
out=$(vm_exec tgt -t 60 <<'EOF'
nvme ana-log /dev/nvme0 -o json >/share/k_ana2.json
nvme smart-log /dev/nvme0 -o json >/share/k_smart2.json
vsn -j health local nvme0 >/share/v_local2.json
EOF
)
echo "$out" | diag
if grep -q '{"grpid":2,"state":"inaccessible","nnsids":1}' "$OUT/probe2.json" &&
	grep -q 'group 2: inaccessible (1 namespace)' "$OUT/probe2.txt"; then
	ok "probe after the change: group 2 inaccessible (JSON and human output)"
else
	nok "probe after the change: group 2 inaccessible (JSON and human output)"
fi
report "after the change, probe" "$(compare probe "$OUT/probe2.json" "$(share k_smart2.json)" \
	"$(share k_ana2.json)" "$(share k_id.json)" 2>&1 | grep -E '^RESULT ana')"
report "after the change, local nvme0" "$(compare local "$(share v_local2.json)" \
	"$(share k_smart2.json)" "$(share k_ana2.json)" "$(share k_id.json)" 2>&1 | grep -E '^RESULT ana')"

# ------------------------------------------------------------------ failures, each within its timeout
fail_case() { # DESCRIPTION ADDR EXPECTED-ERROR MAX-MS [NQN [ALSO-EXPECTED]]
	local t ms rc
	t=$(date +%s%N)
	$VSN health probe "$2" --nqn "${5:-$NQN}" --timeout-ms $TMO >"$OUT/fail.out" 2>&1
	rc=$?
	ms=$(ms_since "$t")
	diag <"$OUT/fail.out"
	if [ $rc = 1 ] && grep -qF "vsn: error: $3" "$OUT/fail.out" && [ "$ms" -le "$4" ] &&
		grep -qF "${6:-$3}" "$OUT/fail.out"; then
		ok "$1: exit 1 in $ms ms, '$3'"
	else
		nok "$1: exit 1 (got $rc) within $4 ms (took $ms), '$3'"
	fi
}
vm_exec tgt -t 30 'vsn-target port-del 2' >/dev/null || nok "port 2 removed from the target"
fail_case "port removed (4421)" $TGT:4421 "$TGT:4421: TCP connect: Connection refused" 500
fail_case "no such host ($NOHOST)" $NOHOST "$NOHOST:4420: TCP connect: timeout after $TMO ms" \
	$((TMO + 700))
fail_case "listener that never answers (4498)" $TGT:4498 \
	"$TGT:4498: ICResp: timeout after $TMO ms" $((TMO + 700))
fail_case "wrong subsystem NQN" $TGT "$TGT:4420: Connect: NVMe status 0x182" 3000 \
	nqn.2026-11.io.vsn:nope "no such subsystem NQN on this port"

vm_exec tgt -t 30 "nvme disconnect -n $NQN" >/dev/null 2>&1
echo "# JSON of every reading: $OUT, the guest's files: $VM_RUN/tgt/share"
echo "# wall time $(secs "$T_START") s"
[ "$failed" -eq 0 ]
