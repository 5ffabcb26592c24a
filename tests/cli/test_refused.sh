#!/bin/bash
# A datapath program the kernel refuses: vsn attach names the program, the
# kernel, the verifier's last lines and the file holding the whole log, and
# prints the log itself only with --verbose; an attach that does not need
# the refused program still works.
#
# build/refuse/vsn is vsn built with -DVSN_SELFTEST_REFUSE, which makes
# vsn_up_egress (the uplinks' TC egress program) one that every verifier
# refuses.  Topology: tests/lib/topo.sh with prefix vsnr; pins under
# /sys/fs/bpf/vsnr.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
ROOT=$PWD
P=vsnr
PIN=/sys/fs/bpf/vsnr
VSN=$ROOT/build/refuse/vsn
T=$(mktemp -d /tmp/vsnr-test.XXXXXX)

. tests/lib/tap.sh
. tests/lib/netns.sh
vsn() { hv env TMPDIR="$T" "$VSN" --pin-dir "$PIN" "$@"; }
trap netns_down EXIT

[ -x "$VSN" ] || fatal "$VSN not built (make build/refuse/vsn)"
netns_up

# 1. Only the VM side: vsn_up_egress is not needed, so not loaded.
vsn attach --vm vmif >"$T/vm.out" 2>&1
rc=$?
diag <"$T/vm.out"
check "attach --vm only: exit 0 although vsn_up_egress would be refused" test "$rc" -eq 0
check "attach --vm only: vsn_vm_ingress pinned, vsn_up_egress and vsn_up_ingress not" \
	eval 'test -e $PIN/vsn_vm_ingress && test ! -e $PIN/vsn_up_egress && test ! -e $PIN/vsn_up_ingress'
vsn detach >/dev/null 2>&1

# 2. With an uplink: refused, and said so briefly.
vsn attach --vm vmif --uplink up0 >"$T/up.out" 2>&1
rc=$?
diag <"$T/up.out"
check "attach --uplink: exits non-zero" test "$rc" -ne 0
check "the error names the refused program and the kernel" \
	grep -qE "^vsn: error: the kernel \($(uname -r | sed 's/[.+]/\\&/g')\) refuses program vsn_up_egress" "$T/up.out"
check "the verifier's own last lines are quoted (its reason and its statistics)" \
	eval 'grep -q "invalid mem access" "$T/up.out" && grep -q "processed [0-9]* insns" "$T/up.out"'
log=$(sed -n 's/^vsn: the whole verifier log is in \([^ ]*\).*/\1/p' "$T/up.out")
check "the whole log is in the file named ($log)" \
	eval 'test -n "$log" && grep -q "invalid mem access" "$log" && grep -q "^0: R1=ctx" "$log"'
check "without --verbose the output stays short (at most 20 lines, the log has $(wc -l <"${log:-/dev/null}"))" \
	test "$(wc -l <"$T/up.out")" -le 20
check "a failed attach attached nothing to the uplink" \
	eval '! hv tc filter show dev up0 egress | grep -q bpf'
check "a failed first attach leaves nothing on the VM interface and no pin directory" \
	eval '! hv tc filter show dev vmif ingress | grep -q bpf && test ! -e $PIN'

# 3. --verbose: the log on the terminal too.
hv env TMPDIR="$T" "$VSN" --verbose --pin-dir "$PIN" attach --vm vmif --uplink up0 >"$T/v.out" 2>&1
check "--verbose prints the verifier log (from its first instruction)" grep -q "^0: R1=ctx" "$T/v.out"
vsn detach >/dev/null 2>&1

# 4. vsn verify says the same, naming program and kernel, and fails.
vsn verify >"$T/verify.out" 2>&1
rc=$?
diag <"$T/verify.out"
check "vsn verify exits 1 and marks vsn_up_egress REFUSED" \
	eval 'test $rc -eq 1 && grep -qE "^vsn_up_egress .*REFUSED" "$T/verify.out"'
check "vsn verify: the other programs load (ok)" \
	test "$(grep -cE '^vsn_(vm_ingress|up_xdp|up_ingress) .* ok$' "$T/verify.out")" -eq 3
echo "1..$n"
[ "$failed" -eq 0 ]
