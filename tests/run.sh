#!/bin/bash
# Runs the test suites and closes with one line "N passed, N failed".
# A suite is a folder of tests/ (tests/README.md); each test prints TAP-style
# lines ("ok N - name" / "not ok N - name"); a test that crashes or prints
# nothing counts as one failure.
# Usage: tests/run.sh [SUITE | SUITE/TEST ...]
#   suites: verify unit pkt netns cluster cli e2e (default: all, in that order)
#   SUITE/TEST: one test, TEST being its file name without test_ and the
#   extension (e.g. netns/wire, pkt/dp_roce, cluster/etcd, e2e/controller)
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

PY=/usr/bin/python3
BUILD=${BUILD:-build}
LOGDIR=$BUILD/test-logs
mkdir -p "$LOGDIR"

# The tests need a BPF filesystem; mount one if the machine has none.
if ! mountpoint -q /sys/fs/bpf; then
	mount -t bpf bpf /sys/fs/bpf
fi

passed=0
failed=0
failures=()

# Each suite's tests, in the order they run.
VERIFY=(budget)
PKT=(dp_connections dp_paths dp_backends dp_roce dp_passthrough dp_host dp_reset dp_liveness dp_tenants
	dp_xfer nvme_framing nvme_commands replay pktlib ring)
NETNS=(netns wire bw reset daemon cmd_stall tenants vethgro detach api_slow)
CLUSTER=(etcd tls hosts)
CLI=(cli refused)
# verify_guests first: a program over budget in a guest fails in seconds.
E2E=(verify_guests nvme_vip roce host_guest host_guest-6.12 latency nvmf_health controller)

count_log() { # name rc: count a finished log
	local name=$1 rc=$2 log="$LOGDIR/$1.log" p f
	p=$(grep -cE '^ok [0-9]+' "$log")
	f=$(grep -cE '^not ok [0-9]+' "$log")
	grep -E '^(not )?ok [0-9]+' "$log" | sed 's/^/   /'
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1
		echo "   not ok - $name exited $rc without reporting a failure (see $log)"
		tail -20 "$log" | sed 's/^/   | /'
	fi
	[ "$f" -ne 0 ] && failures+=("$name: see $log")
	passed=$((passed + p))
	failed=$((failed + f))
}

run_suite() { # name command...
	local name=$1 log="$LOGDIR/$1.log"
	shift
	printf '== %s\n' "$name"
	"$@" >"$log" 2>&1
	count_log "$name" $?
}

# QEMU guests under TCG on a shared 2-core machine are slow and jittery: an
# end-to-end test that fails is run once more, and both runs are reported.
run_twice() { # name command...
	local name=$1 log="$LOGDIR/$1.log"
	shift
	if "$@" >"$log.try1" 2>&1; then
		mv "$log.try1" "$log"
		printf '== %s\n' "$name"
		count_log "$name" 0
		return
	fi
	echo "== $name: first run failed, running it again (first run: $log.try1)"
	grep -E '^not ok' "$log.try1" | sed 's/^/   (try 1) /'
	run_suite "$name" "$@"
}

run_test() { # suite test
	local suite=$1 t=$2 name="$1-$2"
	case $suite in
	verify) run_suite "$name" bash "tests/verify/test_$t.sh" ;;
	unit) run_suite "$name" unshare --net sh -c \
		'ip link set lo up && exec env CMOCKA_MESSAGE_OUTPUT=TAP "$0"' "$BUILD/unit/test_$t" ;;
	pkt) run_suite "$name" $PY "tests/pkt/test_$t.py" ;;
	netns | cluster | cli) run_suite "$name" bash "tests/$suite/test_$t.sh" ;;
	e2e)
		case $t in
		host_guest-6.12)
			run_twice "$name" env VSN_TESTBED_SERIES=6.12 bash tests/e2e/test_host_guest.sh ;;
		*) run_twice "$name" bash "tests/e2e/test_$t.sh" ;;
		esac
		;;
	esac
}

tests_of() { # suite: its tests
	case $1 in
	verify) echo "${VERIFY[@]}" ;;
	unit) for b in "$BUILD"/unit/test_*; do [ -x "$b" ] && basename "$b" | sed 's/^test_//'; done ;;
	pkt) echo "${PKT[@]}" ;;
	netns) echo "${NETNS[@]}" ;;
	cluster) echo "${CLUSTER[@]}" ;;
	cli) echo "${CLI[@]}" ;;
	e2e) echo "${E2E[@]}" ;;
	*) return 1 ;;
	esac
}

args=("$@")
[ ${#args[@]} -eq 0 ] && args=(verify unit pkt netns cluster cli e2e)

for a in "${args[@]}"; do
	suite=${a%%/*}
	if ! list=$(tests_of "$suite"); then
		echo "unknown suite '$suite' (verify unit pkt netns cluster cli e2e; see tests/README.md)"
		failed=$((failed + 1))
		continue
	fi
	if [ "$a" != "$suite" ]; then
		if ! grep -qw -- "${a#*/}" <<<"$list"; then
			echo "unknown test '$a' (the $suite suite has: $(echo $list))"
			failed=$((failed + 1))
			continue
		fi
		list=${a#*/}
	fi
	for t in $list; do
		run_test "$suite" "$t"
	done
done

for f in "${failures[@]}"; do
	echo "FAILED $f"
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
