# TAP-style assertions shared by the shell test suites (sourced).
# Each assertion prints "ok N - text" or "not ok N - text"; tests/run.sh
# counts them.  Diagnostics go on "# " lines.
n=0
failed=0

ok() {
	n=$((n + 1))
	echo "ok $n - $*"
}

nok() {
	n=$((n + 1))
	failed=$((failed + 1))
	echo "not ok $n - $*"
}

# check DESCRIPTION COMMAND...: one assertion (runs in this shell).
check() {
	local d=$1
	shift
	if "$@"; then ok "$d"; else nok "$d"; fi
}

not() { ! "$@"; }
diag() { sed 's/^/# /'; }
