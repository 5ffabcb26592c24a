#!/bin/bash
# make verify: the verifier's cost of every datapath program, on every kernel
# vsn supports, against the budget (a quarter of the verifier's limit).
#
#   scripts/verify.sh [--kernels LIST] [--tap] [--budget N]
#
#   --kernels LIST  which kernels to measure now (default: host): host, and
#                   the testbed's Debian kernels 6.1 and 6.12, each booted
#                   under QEMU (about 10 s each; built on first use); "all" =
#                   "host 6.1 6.12"
#   --tap           TAP lines ("ok N - ...") for tests/run.sh
#   --budget N      processed instructions allowed (default 250000)
#
# Each kernel's figures go to build/verify/KERNEL.json.  The table shows
# every kernel measured so far, each marked with when, and "(older build)"
# when measured with another build of vsn than build/vsn.  Exits 1, naming
# the program and the kernel, when a program measured now is refused or over
# budget.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
ROOT=$PWD
OUT=$ROOT/build/verify
VSN=$ROOT/build/vsn
KERNELS=host
TAP=0
BUDGET=250000
PY=/usr/bin/python3

while [ $# -gt 0 ]; do
	case $1 in
	--kernels) KERNELS=$2; shift 2 ;;
	--tap) TAP=1; shift ;;
	--budget) BUDGET=$2; shift 2 ;;
	-h|--help) sed -n '2,/^set /p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) echo "verify.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
	esac
done
[ "$KERNELS" = all ] && KERNELS="host 6.1 6.12"
[ -x "$VSN" ] || { echo "verify.sh: no $VSN: run make first" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "verify.sh: run as root (the verifier needs CAP_BPF)" >&2; exit 2; }
mkdir -p "$OUT"
BUILD_ID=$(sha256sum "$VSN" | cut -c1-16)
n=0
fail=0

tap_line() { # STATUS DESCRIPTION
	n=$((n + 1))
	[ "$TAP" = 1 ] && echo "$1 $n - $2"
	return 0
}

# One kernel's JSON: a TAP line per program, and a failure when one is out.
judge() { # LABEL JSONFILE
	local line
	while IFS= read -r line; do
		case $line in
		ok*) tap_line ok "${line#ok }" ;;
		*) tap_line "not ok" "${line#not ok }"; fail=1 ;;
		esac
	done < <($PY - "$1" "$2" "$BUDGET" <<-'EOF'
	import json, sys
	label, path, budget = sys.argv[1], sys.argv[2], int(sys.argv[3])
	r = json.load(open(path))
	for p in r["programs"]:
	    what = "%s on %s: %d processed instructions (budget %d), peak states %d, stack %s" % (
	        p["program"], r["kernel"], p["insns"], budget, p["peak_states"], p["stack"])
	    if not p["loaded"]:
	        print("not ok %s: REFUSED (%s)" % (what, p["error"]))
	    elif p["insns"] > budget:
	        print("not ok %s: OVER BUDGET" % what)
	    else:
	        print("ok %s" % what)
	EOF
	)
}

# Stamp a result with when and with which build it was measured.
stamp() { # JSONFILE
	$PY - "$1" "$BUILD_ID" <<-'EOF'
	import json, sys, time
	path, build = sys.argv[1], sys.argv[2]
	r = json.load(open(path))
	r["measured_at"] = int(time.time())
	r["build"] = build
	json.dump(r, open(path, "w"))
	EOF
}

measure_host() {
	local f=$OUT/host.json
	if ! "$VSN" -j verify --budget "$BUDGET" --kernel "host $(uname -r)" >"$f.tmp" 2>"$OUT/host.err" &&
		! [ -s "$f.tmp" ]; then
		tap_line "not ok" "vsn verify runs on the host kernel $(uname -r)"
		sed 's/^/# /' "$OUT/host.err"
		fail=1
		return
	fi
	mv "$f.tmp" "$f"
	stamp "$f"
	judge host "$f"
}

# A Debian kernel of the testbed: boot a guest, run vsn verify in it.
measure_guest() { # SERIES (6.1, 6.12)
	local series=$1 ns=vsnv-${1//./} f=$OUT/debian-$1.json log=$OUT/guest-$1.log kver
	export VSN_TESTBED_SERIES=$series
	unset VSN_TESTBED_DIR
	if ! bash scripts/testbed/build.sh >"$log" 2>&1; then
		tap_line "not ok" "testbed for Debian $series builds (see $log)"
		fail=1
		return
	fi
	(
		export VM_RUN=$OUT/vms-$series
		# shellcheck source=testbed/vm.sh
		. scripts/testbed/vm.sh
		trap 'vm_stop_all; ip netns del $ns 2>/dev/null' EXIT
		ip netns del "$ns" 2>/dev/null
		ip netns add "$ns" || exit 1
		vm_start verify --nic "$ns:tapv" --append "vsn.role=shell" && vm_wait verify || exit 1
		vm_exec verify -t 300 "vsn -j verify --budget $BUDGET --kernel \"Debian \$(uname -r)\"" \
			>"$f.tmp" 2>>"$log"
		exit 0
	) >>"$log" 2>&1
	if ! $PY -c 'import json,sys; json.load(open(sys.argv[1]))' "$f.tmp" 2>/dev/null; then
		tap_line "not ok" "vsn verify runs in a Debian $series guest (see $log)"
		tail -5 "$log" | sed 's/^/# /'
		fail=1
		return
	fi
	mv "$f.tmp" "$f"
	stamp "$f"
	kver=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["kernel"])' "$f")
	echo "# Debian $series guest: $kver" >&2
	judge "$series" "$f"
}

for k in $KERNELS; do
	case $k in
	host) measure_host ;;
	6.1 | 6.12) measure_guest "$k" ;;
	*) echo "verify.sh: unknown kernel '$k' (host, 6.1, 6.12, all)" >&2; exit 2 ;;
	esac
done

$PY scripts/verify_table.py --dir "$OUT" --budget "$BUDGET" --build "$BUILD_ID" \
	>"$OUT/table.txt"
if [ "$TAP" = 1 ]; then
	sed 's/^/# /' "$OUT/table.txt"
	echo "1..$n"
else
	cat "$OUT/table.txt"
fi
if [ "$fail" -ne 0 ]; then
	[ "$TAP" = 1 ] || echo "verify: FAILED: a program is refused or over budget (see above)" >&2
	exit 1
fi
exit 0
