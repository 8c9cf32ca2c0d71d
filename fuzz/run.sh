#!/bin/bash
# Runs each libFuzzer harness for FUZZ_SECONDS over a corpus seeded from
# fuzz/seeds/TARGET and, for the manifest decoder, examples/ and the e2e
# manifests. A crash, leak or sanitizer report fails the run and leaves the
# input under $FUZZ_BUILD/crashes/.
# Usage: fuzz/run.sh TARGET...   (make fuzz FUZZ_SECONDS=N)
set -u
cd "$(dirname "$0")/.."
FUZZ_BUILD=${FUZZ_BUILD:-build/fuzz}
seconds=${FUZZ_SECONDS:-30}
failed=0
mkdir -p "$FUZZ_BUILD/crashes"
for t in "$@"; do
	corpus="$FUZZ_BUILD/corpus/$t"
	mkdir -p "$corpus"
	cp -n fuzz/seeds/"$t"/* "$corpus"/ 2>/dev/null
	if [ "$t" = fuzz_manifest ] || [ "$t" = fuzz_manifest_stream ]; then
		cp -n examples/*.yaml examples/*.json "$corpus"/ 2>/dev/null
	fi
	log="$FUZZ_BUILD/$t.log"
	"$FUZZ_BUILD/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
		-artifact_prefix="$FUZZ_BUILD/crashes/$t-" -print_final_stats=1 \
		"$corpus" >"$log" 2>&1
	rc=$?
	runs=$(awk '/stat::number_of_executed_units/ { print $2 }' "$log")
	if [ "$rc" -eq 0 ]; then
		echo "fuzz: $t: ${runs:-?} runs in ${seconds}s, no crash"
	else
		echo "fuzz: $t: FAILED (exit $rc), see $log"
		grep -E 'ERROR|SUMMARY|artifact' "$log" | head -5 | sed 's/^/  /'
		failed=$((failed + 1))
	fi
done
[ "$failed" -eq 0 ]
