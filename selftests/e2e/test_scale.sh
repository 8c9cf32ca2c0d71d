#!/bin/bash
# 100,000 Services (issue 17: correctness at the physical limit; speed is
# make bench's): every Service is programmed on both datapaths, and a
# sample of 20 spread over the whole range, probed through their
# ClusterIPs, answers from its own two endpoints only, with a decoy on each
# sampled ClusterIP to catch untranslated traffic; a restarted agent
# adopts the datapath and writes nothing to it (its apply line at -v says
# so), and the last sampled Service still answers. SCALE_SERVICES
# overrides the count.
. "$(dirname "$0")/lib.sh"

N=${SCALE_SERVICES:-100000}

# The addresses of bench/gen-manifests.sh: addr A.B K.
addr() {
	local a=${1%.*} b=${1#*.} k=$2
	echo "$a.$((b + k / 62500)).$((k / 250 % 250)).$((k % 250 + 1))"
}

e2e_setup || { not_ok "setup"; exit 1; }
"$ROOT/bench/gen-manifests.sh" "$N" "$MANIFESTS" || { not_ok "manifests"; exit 1; }
sample=""
endpoints=()
for j in $(seq 0 19); do
	i=$((j * (N - 1) / 19))
	sample+=" $i"
	endpoints+=("$(addr 10.244 $((2 * i))):8080" "$(addr 10.244 $((2 * i + 1))):8080"
		"$(addr 10.96 $((i + 250))):80")
done
start_backends "${endpoints[@]}"

for dp in $DATAPATHS; do
	if ! SYNC_WAIT_STEPS=6000 start_agent "$dp" --max-services=131072; then
		not_ok "$dp: the agent syncs $N Services"
		continue
	fi
	check "$dp: every one of the $N Services is programmed" \
		grep -q "synced: datapath $dp serving $N services" "$AGENT_LOG"
	bad=""
	for i in $sample; do
		want=$(printf '%s:8080\n' "$(addr 10.244 $((2 * i)))" "$(addr 10.244 $((2 * i + 1)))" |
			sort | tr '\n' ' ')
		probe --count 8 "$(addr 10.96 $((i + 250))):80"
		# Every answer from one of its own two endpoints (both need not show in 8).
		got=$(probe_backends)
		stray=$(for b in $got; do [[ " $want" == *" $b "* ]] || echo "$b"; done)
		if [ -z "$got" ] || [ -n "$stray" ] || [ "$(probe_value ok)" != 8 ]; then
			bad+=" s$i"
			echo "# s$i: want $want"
			probe_dump
		fi
	done
	check "$dp: 20 Services sampled over the range answer from their own endpoints${bad:+ (not:$bad)}" \
		test -z "$bad"
	# A restart adopts what the kernel holds: it writes nothing that is already right.
	stop_agent
	if ! SYNC_WAIT_STEPS=6000 start_agent "$dp" --max-services=131072; then
		not_ok "$dp: the restarted agent syncs $N Services"
		continue
	fi
	case $dp in
	bpf) wrote=$(sed -n 's/.*bpf: applied [0-9]* changes (\([0-9]*\) written.*, \([0-9]*\) removed.*full.*/\1 \2/p' "$AGENT_LOG") ;;
	*) wrote=$(sed -n 's/.*nft: applied [0-9]* changes (full sync): \([0-9]*\) messages written.*/\1/p' "$AGENT_LOG") ;;
	esac
	check "$dp: the restarted agent writes nothing to the datapath (wrote: ${wrote:-no apply line})" \
		test "$wrote" = "$([ "$dp" = bpf ] && echo "0 0" || echo 0)"
	i=${sample##* }
	probe --count 8 "$(addr 10.96 $((i + 250))):80"
	check "$dp: after the restart s$i still answers" test "$(probe_value ok)" = 8
	stop_agent
	in_node "$AGENT" --cleanup --bpffs="$BPFFS" --cgroup="$CGROUP" >/dev/null 2>&1
done
exit 0
