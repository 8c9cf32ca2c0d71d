#!/bin/bash
# make bench: measures the agent and both datapaths side by side in one run
# and prints one table (Documentation/bench.md). The machine is noisy, so
# every row pairs a measurement with its baseline from the same run.
#
# Setup is the end-to-end kit's (selftests/e2e/lib.sh): private namespaces,
# a child cgroup and a private bpffs, all removed by its EXIT trap.
# Environment: BUILD (build directory), BENCH_SIZES (default "1000 10000"),
# BENCH_LOADED (services loaded for the latency and connection rows,
# default 10000), BENCH_DATAPATHS (default "bpf nftables"),
# BENCH_CHURN_SECONDS (the churn soak, default 60; 0 skips it),
# BENCH_CHURN_RATE (slice writes a second in the soak, default 1000).
. "$(dirname "$0")/../selftests/e2e/lib.sh"

BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
SIZES=${BENCH_SIZES:-1000 10000}
LOADED=${BENCH_LOADED:-10000}
BENCH_DPS=${BENCH_DATAPATHS:-bpf nftables}
CHANGES=5 # one-endpoint changes timed per datapath; the median is reported
PROBE_SECONDS=2
CHURN_SECONDS=${BENCH_CHURN_SECONDS:-60}
CHURN_RATE=${BENCH_CHURN_RATE:-1000}

declare -A R # results: R[metric,datapath]

now_ns() { date +%s%N; }

# Removes every trace of both datapaths between measurements.
dp_cleanup() { in_node "$AGENT" --cleanup --bpffs="$BPFFS" --cgroup="$CGROUP" >/dev/null 2>&1; }

# once DP N [KEY]: a full sync from nothing with --once; sets R[sync-N,DP] (s) and
# R[rss-N,DP] (MiB). Without a status directory (--status-dir=), so that the
# rows time the sync alone; KEY "status": with one (status.json only: the
# per-Service answers are computed when sluicectl asks), into R[status-N,DP],
# and its size into R[status-kib-N,DP].
once() {
	local dp=$1 n=$2 key=${3:-} t0 t1 status="--status-dir="
	dp_cleanup
	rm -rf "$WORK/status-once"
	[ "$key" = status ] && status="--status-dir=$WORK/status-once"
	t0=$(now_ns)
	nsenter --net="/run/netns/$NODE_NS" /usr/bin/time -f "%M" -o "$WORK/time.out" \
		"$AGENT" --once --source="dir:$WORK/m-$n" --datapath="$dp" --node-name="$NODE_NAME" \
		--cgroup="$CGROUP" --bpffs="$BPFFS" "$status" >"$WORK/once.log" 2>&1
	local rc=$?
	t1=$(now_ns)
	if [ $rc -ne 0 ]; then
		echo "# $dp --once with $n services failed (exit $rc):" >&2
		tail -5 "$WORK/once.log" | sed 's/^/#   /' >&2
		R[${key:-sync}-$n,$dp]=fail
		return 1
	fi
	R[${key:-sync}-$n,$dp]=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
	if [ "$key" = status ]; then
		R[status-kib-$n,$dp]=$(du -sk "$WORK/status-once" | awk '{ print $1 }')
		rm -rf "$WORK/status-once"
		return 0
	fi
	R[rss-$n,$dp]=$(awk '{ printf "%.1f", $1 / 1024 }' "$WORK/time.out")
}

# answers DP N: sluicectl services -o json (s) and explain (ms) against the
# running agent, and its RSS after them (MiB).
answers() {
	local dp=$1 n=$2 t0 t1
	t0=$(now_ns)
	in_node "$SLUICECTL" --bpffs="$BPFFS" services -o json >"$WORK/services.out" 2>&1 ||
		{ echo "# $dp: services -o json failed" >&2; return 1; }
	t1=$(now_ns)
	R[answer-all-$n,$dp]=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
	t0=$(now_ns)
	in_node "$SLUICECTL" --bpffs="$BPFFS" explain bench/s0 >/dev/null 2>&1
	t1=$(now_ns)
	R[answer-one-$n,$dp]=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", (b - a) / 1e6 }')
	R[answer-rss-$n,$dp]=$(awk '$1 == "VmRSS:" { printf "%.1f", $2 / 1024 }' \
		"/proc/$AGENT_PID/status")
	rm -f "$WORK/services.out"
}

# Starts the agent on manifest directory m-N and waits (up to 60 s) for its first sync.
bench_agent() {
	MANIFESTS="$WORK/m-$2" SYNC_WAIT_STEPS=1200 start_agent "$1"
}

# change_latency DP N KEY FILE: CHANGES changes while the agent runs, each
# timed from the write (and rename) of FILE to the agent's "applied" log
# line; the median goes to R[KEY-N,DP]. FILE slice-0.json: service 0's
# second endpoint moves; services.json: service 0's targetPort changes in
# the file that holds every other object (the whole file is read again).
change_latency() {
	local dp=$1 n=$2 key=$3 file=$4 dir="$WORK/m-$n" i before t0 ts lat=() addr port
	for i in $(seq $CHANGES); do
		if [ $((i % 2)) = 1 ]; then addr=10.244.255.1 port=8081; else addr=10.244.0.2 port=8080; fi
		if [ "$file" = slice-0.json ]; then
			# The last address in the file is the second endpoint's.
			sed -E "s/\"10\.244\.[0-9.]+\"(\][^[]*)\$/\"$addr\"\1/" "$dir/$file" \
				>"$dir/.$file.tmp"
		else
			sed -E "0,/\"targetPort\":808[01]/s//\"targetPort\":$port/" "$dir/$file" \
				>"$dir/.$file.tmp"
		fi
		before=$(grep -c "applied .* changes for" "$AGENT_LOG")
		t0=$(now_ns)
		mv "$dir/.$file.tmp" "$dir/$file"
		ts=""
		for _ in $(seq 2000); do
			if [ "$(grep -c "applied .* changes for" "$AGENT_LOG")" -gt "$before" ]; then
				ts=$(grep "applied .* changes for" "$AGENT_LOG" | tail -1 | awk '{ print $1 }')
				break
			fi
			sleep 0.002
		done
		[ -n "$ts" ] || { echo "# $dp: change $i never applied" >&2; R[$key-$n,$dp]=fail; return 1; }
		lat+=("$(awk -v a="$t0" -v b="$ts" 'BEGIN { printf "%.1f", b * 1000 - a / 1e6 }')")
		sleep 0.05
	done
	R[$key-$n,$dp]=$(printf '%s\n' "${lat[@]}" | sort -n |
		awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
}

# Connections per second over PROBE_SECONDS from the test cgroup in the node namespace.
cps() {
	probe --duration "$PROBE_SECONDS" "$1" || return 1
	awk '$1 == "ok" { ok = $2 } $1 == "elapsed" { el = $2 } END { printf "%.0f", ok / el }' \
		"$WORK/probe.out"
}

# connections DP N: direct to a backend vs through service 0, interleaved twice.
connections() {
	local dp=$1 n=$2 d1 s1 d2 s2
	d1=$(cps 10.244.0.1:8080)
	s1=$(cps 10.96.1.1:80)
	d2=$(cps 10.244.0.1:8080)
	s2=$(cps 10.96.1.1:80)
	if [ "$(probe_value ok)" = 0 ] || [ -z "$s2" ]; then
		echo "# $dp: service not answering" >&2
		probe_dump >&2
	fi
	R[direct-$n,$dp]=$(((${d1:-0} + ${d2:-0}) / 2))
	R[svc-$n,$dp]=$(((${s1:-0} + ${s2:-0}) / 2))
}

# churn_writer FILE RATE SECONDS: selftests/tools/churn-writer.pl for this file's addresses.
churn_writer() { perl "$ROOT/selftests/tools/churn-writer.pl" "$@" bench 10.244.200; }

# churn DP: CHURN_RATE slice writes a second for CHURN_SECONDS on one
# Service (two stable endpoints, one toggled) while two clients loop on its
# ClusterIP; sets R[churn-*,DP]: writes/s, applies/s (the agent's "applied"
# lines), failed connections, connections to an address never in the slice
# (decoys on the ClusterIP and on 10.244.200.9), whether 300 connections 1 s
# after the end reach exactly the final slice, and VmRSS before and after.
churn() {
	local dp=$1 dir="$WORK/m-churn" c f a0 attempts=0 ok=0 stray=0 last want got clients=()
	mkdir -p "$dir"
	rm -f "$dir"/*
	cat >"$dir/churn.json" <<EOT
{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "churn", "namespace": "bench"},
 "spec": {"clusterIP": "10.96.0.30", "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}}
EOT
	churn_writer "$dir/slice.json" 1 0.1 >/dev/null
	dp_cleanup
	MANIFESTS=$dir start_agent "$dp" || { stop_agent; return 1; }
	churn_writer "$dir/slice.json" "$CHURN_RATE" 1 >/dev/null # warm-up
	sleep 0.3
	R[churn-rss0,$dp]=$(awk '$1 == "VmRSS:" { printf "%.1f", $2 / 1024 }' "/proc/$AGENT_PID/status")
	a0=$(grep -c "applied .* changes for" "$AGENT_LOG")
	for c in 1 2; do
		in_client "$PROBE" --duration "$CHURN_SECONDS" --timeout-ms 2000 10.96.0.30:80 \
			>"$WORK/churn-client-$c.out" 2>&1 &
		clients+=($!)
	done
	churn_writer "$dir/slice.json" "$CHURN_RATE" "$CHURN_SECONDS" >"$WORK/churn-writer.out"
	wait "${clients[@]}"
	R[churn-writes,$dp]=$(awk '$1 == "writes" { n = $2 } $1 == "elapsed" { t = $2 }
		END { printf "%.0f", n / t }' "$WORK/churn-writer.out")
	R[churn-applies,$dp]=$(awk -v a="$(($(grep -c "applied .* changes for" "$AGENT_LOG") - a0))" \
		'$1 == "elapsed" { printf "%.1f", a / $2 }' "$WORK/churn-writer.out")
	last=$(awk '$1 == "last" { print $2 }' "$WORK/churn-writer.out")
	sleep 1
	probe --count 300 10.96.0.30:80
	want="10.244.200.1:8080 10.244.200.2:8080 $last:8080 "
	got=$(probe_backends)
	if [ "$(probe_value ok)" = 300 ] && [ "$got" = "$want" ]; then
		R[churn-final,$dp]=yes
	else
		R[churn-final,$dp]=no
		echo "# $dp: 1 s after the churn, want $want, got $got" >&2
	fi
	R[churn-rss1,$dp]=$(awk '$1 == "VmRSS:" { printf "%.1f", $2 / 1024 }' "/proc/$AGENT_PID/status")
	for f in "$WORK"/churn-client-*.out; do
		attempts=$((attempts + $(awk '$1 == "attempts" { print $2 }' "$f")))
		ok=$((ok + $(awk '$1 == "ok" { print $2 }' "$f")))
		stray=$((stray + $(awk '$1 == "backend" && $2 !~ /^10\.244\.200\.[1-4]:8080$/ { n += $3 }
			END { print n + 0 }' "$f")))
	done
	R[churn-failed,$dp]="$((attempts - ok)) / $attempts"
	R[churn-stray,$dp]=$stray
	stop_agent
}

e2e_setup || { echo "bench: setup failed" >&2; exit 1; }
# Thousands of connections a second would exhaust the client's ports in
# TIME_WAIT within seconds; let connect() reuse them (these namespaces only).
in_node sysctl -qw net.ipv4.tcp_tw_reuse=1 net.ipv4.ip_local_port_range="1024 65000"
in_be sysctl -qw net.ipv4.tcp_tw_reuse=1
start_backends 10.244.0.1:8080 10.244.0.2:8080 10.244.255.1:8080
# The churn soak: its four endpoints, a pod never listed, a decoy on the ClusterIP.
start_backends 10.244.200.1:8080 10.244.200.2:8080 10.244.200.3:8080 10.244.200.4:8080 \
	10.244.200.9:8080 10.96.0.30:80

# Row 3 first, on a quiet machine: tc ingress per packet (its own namespace).
TC_COST="$BUILD/bench/tc-cost"
if [ -x "$TC_COST" ]; then
	echo "# tc program: bpf_prog_test_run" >&2
	"$TC_COST" "$LOADED" >"$WORK/tc-cost.out" || echo "# tc-cost failed" >&2
	while read -r k v; do R[tc-$k]=$v; done <"$WORK/tc-cost.out"
fi

for n in 1 $SIZES; do "$BENCH_DIR/gen-manifests.sh" "$n" "$WORK/m-$n"; done
[ -d "$WORK/m-$LOADED" ] || "$BENCH_DIR/gen-manifests.sh" "$LOADED" "$WORK/m-$LOADED"

for dp in $BENCH_DPS; do
	echo "# $dp: full syncs" >&2
	for n in 1 $SIZES; do once "$dp" "$n"; done
	# With status.json (the running agent answers sluicectl on agent.sock instead).
	for n in $SIZES; do once "$dp" "$n" status; done
	for n in 1 $LOADED; do
		echo "# $dp: agent running with $n services" >&2
		dp_cleanup
		bench_agent "$dp" "$n" || { stop_agent; continue; }
		change_latency "$dp" "$n" change slice-0.json
		change_latency "$dp" "$n" bigfile services.json
		connections "$dp" "$n"
		answers "$dp" "$n"
		stop_agent
	done
	if [ "$CHURN_SECONDS" != 0 ]; then
		echo "# $dp: churn soak, $CHURN_RATE writes/s for $CHURN_SECONDS s" >&2
		churn "$dp"
	fi
	dp_cleanup
done

# ---- the table ----
ratio() {
	awk -v a="$1" -v b="$2" \
		'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b; else print "-" }'
}
per_service_us() {
	awk -v t="$1" -v b="$2" -v n="$3" \
		'BEGIN { if (t + 0 > 0 && n > 1) printf "%.1f", (t - b) * 1e6 / (n - 1); else print "-" }'
}
row() { printf '%-56s %12s %12s %12s\n' "$@"; }

set -- $BENCH_DPS
A=$1
B=${2:-$1}
echo
row "measurement" "$A" "$B" "$B/$A"
row "-----------" "---" "---" "---"
for n in 1 $SIZES; do
	row "full sync, $n svc (s, --once)" "${R[sync-$n,$A]:--}" "${R[sync-$n,$B]:--}" \
		"$(ratio "${R[sync-$n,$B]:-}" "${R[sync-$n,$A]:-}")"
done
for n in $SIZES; do
	a=$(per_service_us "${R[sync-$n,$A]:-}" "${R[sync-1,$A]:-}" "$n")
	b=$(per_service_us "${R[sync-$n,$B]:-}" "${R[sync-1,$B]:-}" "$n")
	row "  per service above 1 svc, $n (us)" "$a" "$b" "$(ratio "$b" "$a")"
done
for n in $SIZES; do
	row "  sync time $n svc / 1 svc" "$(ratio "${R[sync-$n,$A]:-}" "${R[sync-1,$A]:-}")" \
		"$(ratio "${R[sync-$n,$B]:-}" "${R[sync-1,$B]:-}")" ""
done
for n in $SIZES; do
	row "  with --status-dir, $n svc (s, --once)" "${R[status-$n,$A]:--}" \
		"${R[status-$n,$B]:--}" "$(ratio "${R[status-$n,$B]:-}" "${R[status-$n,$A]:-}")"
	row "  with / without --status-dir, $n svc" "$(ratio "${R[status-$n,$A]:-}" "${R[sync-$n,$A]:-}")" \
		"$(ratio "${R[status-$n,$B]:-}" "${R[sync-$n,$B]:-}")" ""
	row "  status directory, $n svc (KiB)" "${R[status-kib-$n,$A]:--}" "${R[status-kib-$n,$B]:--}" ""
done
for n in 1 $SIZES; do
	row "peak RSS, $n svc (MiB)" "${R[rss-$n,$A]:--}" "${R[rss-$n,$B]:--}" \
		"$(ratio "${R[rss-$n,$B]:-}" "${R[rss-$n,$A]:-}")"
done
for n in 1 $LOADED; do
	row "one endpoint change, $n svc (ms, median $CHANGES)" "${R[change-$n,$A]:--}" \
		"${R[change-$n,$B]:--}" "$(ratio "${R[change-$n,$B]:-}" "${R[change-$n,$A]:-}")"
done
for n in 1 $LOADED; do
	row "one Service changed in the file of $n svc (ms, median)" "${R[bigfile-$n,$A]:--}" \
		"${R[bigfile-$n,$B]:--}" "$(ratio "${R[bigfile-$n,$B]:-}" "${R[bigfile-$n,$A]:-}")"
done
for n in 1 $LOADED; do
	row "sluicectl services -o json, $n svc (s)" "${R[answer-all-$n,$A]:--}" \
		"${R[answer-all-$n,$B]:--}" "$(ratio "${R[answer-all-$n,$B]:-}" "${R[answer-all-$n,$A]:-}")"
	row "  sluicectl explain, $n svc (ms)" "${R[answer-one-$n,$A]:--}" \
		"${R[answer-one-$n,$B]:--}" "$(ratio "${R[answer-one-$n,$B]:-}" "${R[answer-one-$n,$A]:-}")"
	row "  agent RSS after answering, $n svc (MiB)" "${R[answer-rss-$n,$A]:--}" \
		"${R[answer-rss-$n,$B]:--}" ""
done
for n in 1 $LOADED; do
	row "conn/s direct, $n svc loaded" "${R[direct-$n,$A]:--}" "${R[direct-$n,$B]:--}" \
		"$(ratio "${R[direct-$n,$B]:-}" "${R[direct-$n,$A]:-}")"
	a=$(ratio "${R[svc-$n,$A]:-}" "${R[direct-$n,$A]:-}")
	b=$(ratio "${R[svc-$n,$B]:-}" "${R[direct-$n,$B]:-}")
	row "conn/s via ClusterIP / direct, $n svc" "$a" "$b" "$(ratio "$b" "$a")"
done
for c in pass new established; do
	case $c in
	pass) what="tc ingress, no service, repeat" base=empty-repeat ;;
	new) what="tc ingress, new NodePort flow" base=empty-single ;;
	established) what="tc ingress, established flow" base=empty-single ;;
	esac
	for n in 1 $LOADED; do
		row "$what / empty prog, $n svc" "$(ratio "${R[tc-$c-$n]:-}" "${R[tc-$base]:-}")" "n/a" ""
	done
done
row "  empty tc prog, repeat / one run (ns)" "${R[tc-empty-repeat]:--} / ${R[tc-empty-single]:--}" \
	"n/a" ""
if [ "$CHURN_SECONDS" != 0 ]; then
	row "churn soak ${CHURN_SECONDS}s: slice writes/s" "${R[churn-writes,$A]:--}" \
		"${R[churn-writes,$B]:--}" ""
	row "  applies/s (agent's \"applied\" lines)" "${R[churn-applies,$A]:--}" \
		"${R[churn-applies,$B]:--}" ""
	row "  failed connections / all" "${R[churn-failed,$A]:--}" "${R[churn-failed,$B]:--}" ""
	row "  connections to an address never in the slice" "${R[churn-stray,$A]:--}" \
		"${R[churn-stray,$B]:--}" ""
	row "  final slice served 1 s after the churn" "${R[churn-final,$A]:--}" \
		"${R[churn-final,$B]:--}" ""
	row "  agent RSS before -> after (MiB)" \
		"${R[churn-rss0,$A]:--} -> ${R[churn-rss1,$A]:--}" \
		"${R[churn-rss0,$B]:--} -> ${R[churn-rss1,$B]:--}" ""
fi
echo "(seconds, ms, ns and conn/s are absolute and noisy: read the ratios;"
echo " a change's latency includes the agent's 20 ms settle time)"
BUILD="$BUILD" BENCH_XDP_SERVICES="$LOADED" bash "$BENCH_DIR/xdp.sh" || echo "# bench/xdp.sh failed" >&2
