# Helpers of the bench's scripts (run.sh, xdp.sh): sourced, not run.

# ratio A B: A / B with two decimals, "-" when either is missing (or a
# "> T" of a load that was stopped).
ratio() {
	awk -v a="$1" -v b="$2" \
		'BEGIN { if (a + 0 > 0 && b + 0 > 0 && a !~ />/) printf "%.2f", a / b; else print "-" }'
}
# percentile P: the value at rank ceil(P/100 x n) of the numbers on stdin.
percentile() {
	sort -n | awk -v p="$1" '{ v[NR] = $1 } END {
		if (!NR) { print "-"; exit }
		r = int(p * NR / 100); if (r < p * NR / 100) r++; if (r < 1) r = 1; print v[r] }'
}
