#!/bin/bash
# Runs every test: the cmocka unit tests (no root, no kernel), the kernel
# tests (netlink, bpf_prog_test_run) and the end-to-end scripts, all in TAP,
# then prints "N passed, N failed, N skipped" last. A TAP line with
# "# SKIP" counts as skipped, never as passed.
# Usage: selftests/run.sh ["PATTERN..."]  (only tests whose path contains one
# of the space-separated patterns, e.g. "clusterip" or "unit/ clusterip")
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
patterns=${1:-}
passed=0
failed=0
skipped=0

wanted() {
	local p
	[ -z "$patterns" ] && return 0
	for p in $patterns; do
		case "$1" in *"$p"*) return 0 ;; esac
	done
	return 1
}

run_one() {
	local name=$1 out rc p f s
	shift
	out=$(mktemp)
	echo "# $name"
	"$@" >"$out" 2>&1
	rc=$?
	s=$(grep -cE '^(not )?ok .*# *(SKIP|skip)' "$out")
	p=$(grep -E '^ok ' "$out" | grep -cvE '# *(SKIP|skip)')
	f=$(grep -E '^not ok ' "$out" | grep -cvE '# *(SKIP|skip)')
	grep -E '^(ok|not ok) ' "$out" | sed "s|^|  |"
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		echo "  not ok - $name exited with status $rc"
		f=1
	fi
	if [ $((p + f + s)) -eq 0 ]; then
		echo "  not ok - $name ran no test"
		f=1
	fi
	if [ "$f" -ne 0 ]; then
		echo "  --- output of $name ---"
		sed 's|^|  | ' "$out" | tail -n 80
	fi
	passed=$((passed + p))
	failed=$((failed + f))
	skipped=$((skipped + s))
	rm -f "$out"
}

for t in "$BUILD"/selftests/unit/test_* "$BUILD"/selftests/kernel/test_*; do
	[ -x "$t" ] && [ "${t%.d}" = "$t" ] || continue
	wanted "$t" || continue
	CMOCKA_MESSAGE_OUTPUT=TAP run_one "$(basename "$t")" "$t"
done
for t in selftests/e2e/test_*.sh; do
	[ -f "$t" ] || continue
	wanted "$t" || continue
	BUILD=$BUILD run_one "$(basename "$t")" bash "$t"
done
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
