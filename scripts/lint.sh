#!/bin/bash
# make lint: cppcheck, clang-tidy and clang-format over the project's C.
# clang-tidy findings inside generated skeletons (build/) are not ours.
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
shopt -s globstar
USER_SRCS=(user/**/*.c)
ALL_C=(user/**/*.c user/**/*.h include/*.h bpf/*.c bpf/lib/**/*.h tests/unit/*.c tests/cluster/*.c)
rc=0

echo "cppcheck"
cppcheck --quiet --error-exitcode=1 --enable=warning,style,performance,portability \
	--std=c11 --inline-suppr --suppress=missingIncludeSystem \
	--include=/usr/include/bpf/libbpf_common.h -Iinclude -Iuser user/ tests/unit/ tests/cluster/ || rc=1

echo "clang-tidy"
out=$(clang-tidy --quiet "${USER_SRCS[@]}" -- -std=gnu11 -Iinclude -Iuser -isystem "$BUILD" 2>&1 |
	grep -E '^[^ ]+:[0-9]+:[0-9]+: (warning|error):' | grep -v "^$BUILD/\|/$BUILD/")
if [ -n "$out" ]; then
	echo "$out"
	rc=1
fi

echo "clang-format"
clang-format --dry-run --Werror "${ALL_C[@]}" || rc=1
exit $rc
