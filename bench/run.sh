#!/bin/bash
# make bench: measures the agent and both datapaths, and rulesets shaped like
# kube-proxy's (bench/peer-rules.sh), side by side in one run, and prints one
# table (Documentation/bench.md) and a plot. The machine is noisy, so every
# row pairs a measurement with its baseline from the same run.
#
# Setup is the end-to-end kit's (selftests/e2e/lib.sh): private namespaces,
# a child cgroup and a private bpffs, all removed by its EXIT trap; the
# peers' rules live in the node namespace only.
# Environment (Documentation/bench.md): BUILD, BENCH_SCALE (full: 1k, 10k,
# 100k Services; small: 100, 1k), BENCH_SIZES (overrides the scale),
# BENCH_ENDPOINTS (a Service, default 10), BENCH_DATAPATHS (default "bpf
# nftables"), BENCH_PEERS (default "iptables-legacy iptables-nft nft"),
# BENCH_PEER_LIMIT (s a peer's load may take, default 120), BENCH_CHANGES
# (one-change rounds, default 30), BENCH_CONN_ROUNDS (default 5),
# BENCH_CHURN_SECONDS (default 10; 0 skips it), BENCH_CHURN_RATE (default
# 1000), BENCH_PLOT (the PNG, default Documentation/bench.png; empty: none).
. "$(dirname "$0")/../selftests/e2e/lib.sh"
. "$(dirname "$0")/lib.sh"

BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
case ${BENCH_SCALE:-full} in
small) SIZES=${BENCH_SIZES:-100 1000} ;;
*) SIZES=${BENCH_SIZES:-1000 10000 100000} ;;
esac
EPS=${BENCH_ENDPOINTS:-10}
BENCH_DPS=${BENCH_DATAPATHS:-bpf nftables}
PEERS=${BENCH_PEERS:-iptables-legacy iptables-nft nft}
PEER_LIMIT=${BENCH_PEER_LIMIT:-120}
CHANGES=${BENCH_CHANGES:-30}
PEER_CHANGES=5    # a peer's change rewrites much more: fewer rounds
BIGFILE_CHANGES=3 # each re-reads the whole manifest file
STATUS_MAX=10000  # --status-dir rows up to this size (each is one more full sync)
CONN_ROUNDS=${BENCH_CONN_ROUNDS:-5}
CONN_SECONDS=0.5
CHURN_SECONDS=${BENCH_CHURN_SECONDS:-10}
CHURN_RATE=${BENCH_CHURN_RATE:-1000}
PLOT=${BENCH_PLOT-$ROOT/Documentation/bench.png}
# The Service every size adds and removes as one change: index 100000 of
# the address plan, so its ClusterIP (10.97.151.1) is no other Service's and
# its endpoints are service 0's (10.244.0.1-10), which are served.
FRESH=100000
FRESH_IP=10.97.151.1

declare -A R # results: R[metric-N,who]
BENCH_T0=$(date +%s)

now_ns() { date +%s%N; }
seconds() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'; }
say() { echo "# [$(($(date +%s) - BENCH_T0)) s] $*" >&2; }

# Removes every trace of both datapaths between measurements.
dp_cleanup() { in_node "$AGENT" --cleanup --bpffs="$BPFFS" --cgroup="$CGROUP" >/dev/null 2>&1; }
# The agent logs every resolved Service at -v (hundreds of MB at 100k):
# its log is read from LOG_OFF on, never again from the start.
LOG_OFF=0
log_mark() { LOG_OFF=$(stat -c %s "$AGENT_LOG"); }
# log_wait PATTERN STEPS PAUSE: waits STEPS x PAUSE s for a line matching
# PATTERN past LOG_OFF; prints its first field (the agent's timestamp) and
# marks the log at the end of what was read.
log_wait() {
	local pat=$1 steps=$2 pause=$3 size line
	for _ in $(seq "$steps"); do
		size=$(stat -c %s "$AGENT_LOG")
		if [ "$size" -gt "$LOG_OFF" ]; then
			line=$(tail -c +$((LOG_OFF + 1)) "$AGENT_LOG" | head -c $((size - LOG_OFF)) |
				grep -m1 -- "$pat")
			if [ -n "$line" ]; then
				LOG_OFF=$size
				echo "${line%% *}"
				return 0
			fi
			# A line is shorter than 4 KiB: what lies before was read whole.
			[ $((size - 4096)) -gt "$LOG_OFF" ] && LOG_OFF=$((size - 4096))
		fi
		sleep "$pause"
	done
	return 1
}
# The agent's next "applied" line (within 10 s); prints its time.
applied_after() { log_wait "applied .* changes for" 2000 0.005; }

# ---- sections ----

bench_setup() {
	local i eps=()
	e2e_setup || { echo "bench: setup failed" >&2; exit 1; }
	# Thousands of connections a second would exhaust the client's ports in
	# TIME_WAIT within seconds; let connect() reuse them (these namespaces only).
	in_node sysctl -qw net.ipv4.tcp_tw_reuse=1 net.ipv4.ip_local_port_range="1024 65000"
	in_be sysctl -qw net.ipv4.tcp_tw_reuse=1
	for i in $(seq "$EPS"); do eps+=("10.244.0.$i:8080"); done
	start_backends "${eps[@]}" 10.244.255.1:8080
	# The churn soak: its four endpoints, a pod never listed, a decoy on the ClusterIP.
	start_backends 10.244.200.1:8080 10.244.200.2:8080 10.244.200.3:8080 10.244.200.4:8080 \
		10.244.200.9:8080 10.96.0.30:80
}

# Every manifest directory and peer ruleset, written once and reused.
bench_inputs() {
	local n
	say "writing manifests and peer rules"
	for n in 1 $SIZES; do
		"$BENCH_DIR/gen-manifests.sh" "$n" "$WORK/m-$n" "$EPS"
		"$BENCH_DIR/peer-rules.sh" iptables "$WORK/ipt-$n" "$n" "$EPS"
		"$BENCH_DIR/peer-rules.sh" iptables "$WORK/ipt-add-$n" "$n" "$EPS" add "$FRESH"
		"$BENCH_DIR/peer-rules.sh" iptables "$WORK/ipt-del-$n" "$n" "$EPS" del "$FRESH"
		"$BENCH_DIR/peer-rules.sh" nft "$WORK/nft-$n" "$n" "$EPS"
	done
	"$BENCH_DIR/peer-rules.sh" nft "$WORK/nft-add" 0 "$EPS" add "$FRESH"
	"$BENCH_DIR/peer-rules.sh" nft "$WORK/nft-del" 0 "$EPS" del "$FRESH"
	"$BENCH_DIR/gen-manifests.sh" $((FRESH + 1)) "$WORK/fresh" "$EPS" "$FRESH"
}

# tc ingress per packet, first on a quiet machine (its own namespace): the
# common LRU connection table (the one the agent loads) and per-CPU LRU.
bench_tc() {
	local tc_cost="$BUILD/bench/tc-cost" lru k v
	[ -x "$tc_cost" ] || return 0
	for lru in common per-cpu; do
		say "tc program: bpf_prog_test_run, $lru LRU"
		"$tc_cost" $([ $lru = per-cpu ] && echo --per-cpu-lru) 1 $SIZES \
			>"$WORK/tc-$lru.out" || echo "# tc-cost ($lru LRU) failed" >&2
		while read -r k v; do R[tc-$k,$lru]=$v; done <"$WORK/tc-$lru.out"
	done
}

# sync_agent DP N: starts the agent on m-N from a clean datapath; the full
# sync is timed from the start to its "synced" line; its peak RSS after it.
sync_agent() {
	local dp=$1 n=$2 t0 ts
	dp_cleanup
	t0=$(now_ns)
	# run_agent's own wait re-reads the whole log: only its start here.
	MANIFESTS="$WORK/m-$n" SYNC_WAIT_STEPS=1 start_agent "$dp" >/dev/null
	LOG_OFF=0
	ts=$(log_wait "synced: datapath" 3000 0.1) && kill -0 "$AGENT_PID" 2>/dev/null || {
		echo "# $dp: the agent did not sync $n services" >&2
		tail -5 "$AGENT_LOG" >&2
		R[sync-$n,$dp]=fail
		return 1
	}
	R[sync-$n,$dp]=$(awk -v a="$t0" -v b="$ts" 'BEGIN { printf "%.3f", b - a / 1e9 }')
	R[rss-$n,$dp]=$(awk '$1 == "VmHWM:" { printf "%.1f", $2 / 1024 }' "/proc/$AGENT_PID/status")
}

# status_once DP N: the full sync of --once with a status directory, and its size.
status_once() {
	local dp=$1 n=$2 t0 t1
	dp_cleanup
	rm -rf "$WORK/status-once"
	t0=$(now_ns)
	in_node "$AGENT" --once --source="dir:$WORK/m-$n" --datapath="$dp" --node-name="$NODE_NAME" \
		--cgroup="$CGROUP" --bpffs="$BPFFS" --status-dir="$WORK/status-once" \
		>"$WORK/once.log" 2>&1 || { R[status-$n,$dp]=fail; return 1; }
	t1=$(now_ns)
	R[status-$n,$dp]=$(seconds "$t0" "$t1")
	R[status-kib-$n,$dp]=$(du -sk "$WORK/status-once" | awk '{ print $1 }')
	rm -rf "$WORK/status-once"
}

# answers DP N: sluicectl services -o json (s) and explain (ms) against the
# running agent, and its RSS after them (MiB).
answers() {
	local dp=$1 n=$2 t0 t1
	t0=$(now_ns)
	in_node "$SLUICECTL" --bpffs="$BPFFS" services -o json >/dev/null 2>&1 ||
		{ echo "# $dp: services -o json failed" >&2; return 1; }
	t1=$(now_ns)
	R[answer-all-$n,$dp]=$(seconds "$t0" "$t1")
	t0=$(now_ns)
	in_node "$SLUICECTL" --bpffs="$BPFFS" explain bench/s0 >/dev/null 2>&1
	t1=$(now_ns)
	R[answer-one-$n,$dp]=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", (b - a) / 1e6 }')
	R[answer-rss-$n,$dp]=$(awk '$1 == "VmRSS:" { printf "%.1f", $2 / 1024 }' \
		"/proc/$AGENT_PID/status")
}

# change_latency DP N KEY FILE ROUNDS: changes while the agent runs, each
# timed from the rename of FILE to the agent's "applied" log line (ms
# resolution); p50 and p99 into R[KEY-N,DP]. FILE slice-0.json: service
# 0's last endpoint moves; services.json: service 0's targetPort changes in
# the file that holds every other object (the whole file is read again).
change_latency() {
	local dp=$1 n=$2 key=$3 file=$4 rounds=$5 dir="$WORK/m-$n" i t0 ts addr port
	: >"$WORK/lat"
	for i in $(seq "$rounds"); do
		# Toggled from what the file holds (an earlier datapath's rounds left it so).
		addr=10.244.255.1 port=8081
		grep -q '"10.244.255.1"' "$dir/$file" && addr=10.244.0.$EPS
		grep -q '"targetPort":8081' "$dir/$file" && port=8080
		if [ "$file" = slice-0.json ]; then
			sed -E "s/\"10\.244\.[0-9.]+\"(\][^[]*)\$/\"$addr\"\1/" "$dir/$file" >"$dir/.$file.tmp"
		else
			sed -E "0,/\"targetPort\":808[01]/s//\"targetPort\":$port/" "$dir/$file" \
				>"$dir/.$file.tmp"
		fi
		log_mark
		t0=$(now_ns)
		mv "$dir/.$file.tmp" "$dir/$file"
		ts=$(applied_after) ||
			{ echo "# $dp: change $i never applied" >&2; R[$key-$n,$dp]=fail; return 1; }
		awk -v a="$t0" -v b="$ts" 'BEGIN { printf "%.1f\n", b * 1000 - a / 1e6 }' >>"$WORK/lat"
		sleep 0.05
	done
	R[$key-$n,$dp]="$(percentile 50 <"$WORK/lat") / $(percentile 99 <"$WORK/lat")"
}

# first_connection WHO N ROUNDS ADD DEL: a new Service (FRESH) is added by
# the command ADD and removed by DEL, ROUNDS times; each add is timed from
# the command's start to the first connection its ClusterIP serves (a
# client retrying every ms from the test cgroup); p50 and p99 in ms.
first_connection() {
	local who=$1 n=$2 rounds=$3 add=$4 del=$5 i t0 pid ok end=$(($(date +%s) + 30))
	: >"$WORK/lat"
	for i in $(seq "$rounds"); do
		# At most 30 s of rounds (a peer's change at 100k takes long).
		[ "$i" -gt 1 ] && [ "$(date +%s)" -gt "$end" ] && break
		in_client "$PROBE" --until-ok --timeout-ms 1 --duration 30 "$FRESH_IP:80" \
			>"$WORK/first.out" 2>&1 &
		pid=$!
		sleep 0.05
		t0=$(now_ns)
		$add
		wait "$pid"
		ok=$(awk '$1 == "first-ok-at" { print $2 }' "$WORK/first.out")
		[ -n "$ok" ] || { echo "# $who: the new Service was never served" >&2; break; }
		awk -v a="$t0" -v b="$ok" 'BEGIN { printf "%.1f\n", b * 1000 - a / 1e6 }' >>"$WORK/lat"
		$del
	done
	R[first-$n,$who]="$(percentile 50 <"$WORK/lat") / $(percentile 99 <"$WORK/lat")"
}
fresh_add() { mv "$WORK/fresh.json.tmp" "$MANIFESTS/fresh.json"; }
fresh_del() {
	log_mark
	rm -f "$MANIFESTS/fresh.json"
	applied_after >/dev/null
	cp "$WORK/fresh/services.json" "$WORK/fresh.json.tmp"
	sleep 0.05
}

# Connections per second over CONN_SECONDS from the test cgroup in the node namespace.
cps() {
	probe --duration "$CONN_SECONDS" "$1" || return 1
	awk '$1 == "ok" { ok = $2 } $1 == "elapsed" { el = $2 } END { printf "%.0f", ok / el }' \
		"$WORK/probe.out"
}

# connections WHO N: a backend dialled directly and service 0's ClusterIP,
# alternating, CONN_ROUNDS rounds; the median direct rate and the median
# of the rounds' via-service / direct ratios.
connections() {
	local who=$1 n=$2 i d s
	: >"$WORK/direct"
	: >"$WORK/ratio"
	for i in $(seq "$CONN_ROUNDS"); do
		d=$(cps 10.244.0.1:8080)
		s=$(cps 10.96.1.1:80)
		echo "${d:-0}" >>"$WORK/direct"
		awk -v d="${d:-0}" -v s="${s:-0}" 'BEGIN { if (d > 0) printf "%.3f\n", s / d }' \
			>>"$WORK/ratio"
	done
	[ "${s:-0}" -gt 0 ] || { echo "# $who: service 0 not answering with $n" >&2; probe_dump >&2; }
	R[direct-$n,$who]=$(percentile 50 <"$WORK/direct")
	R[conn-$n,$who]=$(percentile 50 <"$WORK/ratio")
}

# bench_sluice DP: per size, the agent's full sync, one change, a new
# Service's first connection, the connection rates and sluicectl's answers.
bench_sluice() {
	local dp=$1 n
	for n in 1 $SIZES; do
		say "$dp: agent with $n services"
		sync_agent "$dp" "$n" || { stop_agent; continue; }
		say "$dp: synced $n in ${R[sync-$n,$dp]} s; changes"
		change_latency "$dp" "$n" change slice-0.json "$CHANGES"
		change_latency "$dp" "$n" bigfile services.json "$BIGFILE_CHANGES"
		say "$dp: $n: new Services"
		MANIFESTS="$WORK/m-$n"
		cp "$WORK/fresh/services.json" "$WORK/fresh.json.tmp"
		first_connection "$dp" "$n" 20 fresh_add fresh_del
		rm -f "$WORK/fresh.json.tmp"
		say "$dp: $n: connections"
		connections "$dp" "$n"
		answers "$dp" "$n"
		stop_agent
	done
	for n in $SIZES; do
		[ "$n" -le "$STATUS_MAX" ] && status_once "$dp" "$n"
	done
	dp_cleanup
}

# A peer's load (timed out after PEER_LIMIT s), flush, add and delete
# commands for the ruleset of N Services.
peer_load() {
	local cmd
	case $1 in
	iptables-*) cmd=("$1-restore" "$WORK/ipt-$2") ;;
	nft) cmd=(nft -f "$WORK/nft-$2") ;;
	esac
	timeout "$PEER_LIMIT" nsenter --net="/run/netns/$NODE_NS" "${cmd[@]}"
}
peer_flush() {
	case $1 in
	iptables-*) printf '*nat\nCOMMIT\n' | in_node "$1-restore" ;;
	nft) in_node nft delete table ip sluice-peer ;;
	esac
	[ "$1" = iptables-nft ] && in_node nft delete table ip nat
	return 0
}
peer_add() {
	case $PEER in
	iptables-*) in_node "$PEER-restore" --noflush "$WORK/ipt-add-$PEER_N" ;;
	nft) in_node nft -f "$WORK/nft-add" ;;
	esac
}
peer_del() {
	case $PEER in
	iptables-*) in_node "$PEER-restore" --noflush "$WORK/ipt-del-$PEER_N" ;;
	nft) in_node nft -f "$WORK/nft-del" ;;
	esac
}

# bench_peers: each peer's ruleset at each size, loaded with its own tool
# (timed, at most PEER_LIMIT s; a size is left out when the one before took
# more than a tenth of the limit, as the loads grow at least linearly), then
# the same connection and first-connection rows as Sluice's.
bench_peers() {
	local t0 t1 prev rc
	for PEER in $PEERS; do
		case $PEER in iptables-*) command -v "$PEER-restore" ;; *) command -v nft ;; esac \
			>/dev/null || { say "$PEER: not installed, skipped"; continue; }
		prev=0
		for PEER_N in $SIZES; do
			if awk -v p="$prev" -v l="$PEER_LIMIT" 'BEGIN { exit !(p * 10 > l) }'; then
				R[load-$PEER_N,$PEER]="> $(awk -v p="$prev" 'BEGIN { printf "%.0f", p * 10 }')*"
				prev=$((PEER_LIMIT * 10))
				continue
			fi
			say "$PEER: $PEER_N services"
			t0=$(now_ns)
			peer_load "$PEER" "$PEER_N" >"$WORK/peer.out" 2>&1
			rc=$?
			t1=$(now_ns)
			prev=$(seconds "$t0" "$t1")
			if [ $rc != 0 ]; then
				if [ $rc = 124 ]; then
					R[load-$PEER_N,$PEER]="> $PEER_LIMIT"
				else
					R[load-$PEER_N,$PEER]=fail
					tail -3 "$WORK/peer.out" >&2
				fi
				peer_flush "$PEER" >/dev/null 2>&1
				prev=$((PEER_LIMIT * 10))
				continue
			fi
			R[load-$PEER_N,$PEER]=$prev
			connections "$PEER" "$PEER_N"
			first_connection "$PEER" "$PEER_N" "$PEER_CHANGES" peer_add peer_del
			peer_flush "$PEER" >/dev/null 2>&1
		done
	done
}

# churn_writer FILE RATE SECONDS: selftests/tools/churn-writer.pl for this file's addresses.
applied_count() { grep -c "applied .* changes for" "$AGENT_LOG"; }
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
	a0=$(applied_count)
	for c in 1 2; do
		in_client "$PROBE" --duration "$CHURN_SECONDS" --timeout-ms 2000 10.96.0.30:80 \
			>"$WORK/churn-client-$c.out" 2>&1 &
		clients+=($!)
	done
	churn_writer "$dir/slice.json" "$CHURN_RATE" "$CHURN_SECONDS" >"$WORK/churn-writer.out"
	wait "${clients[@]}"
	R[churn-writes,$dp]=$(awk '$1 == "writes" { n = $2 } $1 == "elapsed" { t = $2 }
		END { printf "%.0f", n / t }' "$WORK/churn-writer.out")
	R[churn-applies,$dp]=$(awk -v a="$(($(applied_count) - a0))" \
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
	dp_cleanup
}

bench_churn() {
	local dp
	[ "$CHURN_SECONDS" != 0 ] || return 0
	for dp in $BENCH_DPS; do
		say "$dp: churn soak, $CHURN_RATE writes/s for $CHURN_SECONDS s"
		churn "$dp"
	done
}

# ---- the table ----

per_service_us() {
	awk -v t="$1" -v b="$2" -v n="$3" \
		'BEGIN { if (t + 0 > 0 && n > 1) printf "%.1f", (t - b) * 1e6 / (n - 1); else print "-" }'
}
COLS=()
row() {
	local what=$1 c
	shift
	printf '%-52s' "$what"
	for c in "$@"; do printf ' %15s' "$c"; done
	echo
}
# cells KEY TEXT: the row TEXT of R[KEY,column] for every column.
cells() {
	local key=$1 c out=()
	for c in "${COLS[@]}"; do out+=("${R[$key,$c]:--}"); done
	row "$2" "${out[@]}"
}

bench_table() {
	local n c k what base a b out
	COLS=($BENCH_DPS $PEERS)
	echo
	row "measurement" "${COLS[@]}"
	row "-----------" "${COLS[@]//?/-}"
	for n in 1 $SIZES; do
		out=()
		for c in "${COLS[@]}"; do
			case $c in
			bpf | nftables) out+=("${R[sync-$n,$c]:--}") ;;
			*) out+=("${R[load-$n,$c]:--}") ;;
			esac
		done
		row "full sync (peers: load), $n svc (s)" "${out[@]}"
	done
	for n in $SIZES; do
		out=()
		for c in $BENCH_DPS; do
			out+=("$(per_service_us "${R[sync-$n,$c]:-}" "${R[sync-1,$c]:-}" "$n")")
		done
		row "  per service above 1 svc, $n (us)" "${out[@]}"
	done
	for n in $SIZES; do
		[ "$n" -le "$STATUS_MAX" ] || continue
		cells "status-$n" "  --once with --status-dir, $n svc (s)"
		cells "status-kib-$n" "  status directory, $n svc (KiB)"
	done
	for n in 1 $SIZES; do cells "rss-$n" "peak RSS, $n svc (MiB)"; done
	for n in 1 $SIZES; do cells "change-$n" "one endpoint change, $n svc (ms, p50 / p99)"; done
	for n in 1 $SIZES; do
		cells "bigfile-$n" "one Service changed in the file of $n (ms, p50/p99)"
	done
	for n in 1 $SIZES; do cells "first-$n" "new Service to first connection, $n (ms, p50/p99)"; done
	for n in 1 $SIZES; do
		cells "answer-all-$n" "sluicectl services -o json, $n svc (s)"
		cells "answer-one-$n" "  sluicectl explain, $n svc (ms)"
		cells "answer-rss-$n" "  agent RSS after answering, $n svc (MiB)"
	done
	for n in 1 $SIZES; do
		cells "direct-$n" "conn/s direct, $n svc loaded (median)"
		cells "conn-$n" "  conn/s via ClusterIP / direct, $n svc (median)"
	done
	echo
	row "tc ingress per packet / empty program" common-LRU per-CPU-LRU per-CPU/common
	row "-------------------------------------" ---------- ----------- --------------
	for k in pass established new; do
		case $k in
		pass) what="no service" base=empty-repeat ;;
		established) what="established NodePort flow" base=empty-single ;;
		new) what="new NodePort flow" base=empty-single ;;
		esac
		for n in 1 $SIZES; do
			a=$(ratio "${R[tc-$k-$n,common]:-}" "${R[tc-$base-$n,common]:-}")
			b=$(ratio "${R[tc-$k-$n,per-cpu]:-}" "${R[tc-$base-$n,per-cpu]:-}")
			row "  $what, $n svc" "$a" "$b" "$(ratio "$b" "$a")"
		done
		a=$(ratio "$(ratio "${R[tc-$k-${SIZES##* },common]:-}" "${R[tc-$base-${SIZES##* },common]:-}")" \
			"$(ratio "${R[tc-$k-1,common]:-}" "${R[tc-$base-1,common]:-}")")
		b=$(ratio "$(ratio "${R[tc-$k-${SIZES##* },per-cpu]:-}" \
			"${R[tc-$base-${SIZES##* },per-cpu]:-}")" \
			"$(ratio "${R[tc-$k-1,per-cpu]:-}" "${R[tc-$base-1,per-cpu]:-}")")
		row "  $what, ${SIZES##* } svc / 1 svc" "$a" "$b" ""
	done
	for k in dsr-new dsr-established; do
		row "  $k (direct server return), 1 svc" \
			"$(ratio "${R[tc-$k-1,common]:-}" "${R[tc-empty-single-1,common]:-}")" \
			"$(ratio "${R[tc-$k-1,per-cpu]:-}" "${R[tc-empty-single-1,per-cpu]:-}")" ""
	done
	for n in 1 $SIZES; do
		row "  empty program, repeat / one run, $n svc (ns)" \
			"${R[tc-empty-repeat-$n,common]:--} / ${R[tc-empty-single-$n,common]:--}" \
			"${R[tc-empty-repeat-$n,per-cpu]:--} / ${R[tc-empty-single-$n,per-cpu]:--}" ""
	done
	if [ "$CHURN_SECONDS" != 0 ]; then
		COLS=($BENCH_DPS)
		echo
		row "churn soak ${CHURN_SECONDS}s" "${COLS[@]}"
		cells churn-writes "  slice writes/s"
		cells churn-applies "  applies/s (agent's \"applied\" lines)"
		cells churn-failed "  failed connections / all"
		cells churn-stray "  connections to an address never in the slice"
		cells churn-final "  final slice served 1 s after the churn"
		out=()
		for c in "${COLS[@]}"; do out+=("${R[churn-rss0,$c]:--} -> ${R[churn-rss1,$c]:--}"); done
		row "  agent RSS before -> after (MiB)" "${out[@]}"
	fi
	echo
	echo "(absolute figures are noisy: read the ratios. p99 of fewer than 100 rounds is"
	echo " their maximum; peers: $PEER_CHANGES rounds. > T: the load took longer than T s"
	echo " and was stopped; > T*: not run, the size before took more than T/10 s)"
	echo "(make bench: $(($(date +%s) - BENCH_T0)) s; ${SIZES// /, } Services x $EPS endpoints)"
}

# bench_plot: cost against Service count (log scales): full sync or load
# time, new Service to first connection (p50), conn/s ratio and tc cost.
num() { awk -v v="$1" 'BEGIN { print (v + 0 > 0 && v !~ />/) ? v + 0 : "NaN" }'; }
bench_plot() {
	local dat="$WORK/plot.dat" n c k v m i plot_sync="" plot_first="" plot_conn=""
	[ -n "$PLOT" ] || return 0
	command -v gnuplot >/dev/null || { say "gnuplot not installed: no plot"; return 0; }
	COLS=($BENCH_DPS $PEERS)
	for n in 1 $SIZES; do
		printf '%s' "$n"
		for c in "${COLS[@]}"; do
			case $c in bpf | nftables) v=${R[sync-$n,$c]:-} ;; *) v=${R[load-$n,$c]:-} ;; esac
			printf ' %s' "$(num "$v")"
		done
		for c in "${COLS[@]}"; do printf ' %s' "$(num "${R[first-$n,$c]:-}")"; done
		for c in "${COLS[@]}"; do printf ' %s' "$(num "${R[conn-$n,$c]:-}")"; done
		for k in pass-$n/empty-repeat-$n established-$n/empty-single-$n new-$n/empty-single-$n; do
			printf ' %s' "$(num "$(ratio "${R[tc-${k%/*},common]:-}" "${R[tc-${k#*/},common]:-}")")"
		done
		echo
	done >"$dat"
	m=${#COLS[@]}
	for i in $(seq "$m"); do
		plot_sync+="'$dat' u 1:$((i + 1)) w lp t '${COLS[i - 1]}', "
		plot_first+="'$dat' u 1:$((i + 1 + m)) w lp t '${COLS[i - 1]}', "
		plot_conn+="'$dat' u 1:$((i + 1 + 2 * m)) w lp t '${COLS[i - 1]}', "
	done
	gnuplot <<EOT || say "gnuplot failed"
set terminal pngcairo size 1200,900 noenhanced font ",10"
set output '$PLOT'
set multiplot layout 2,2 title "make bench: cost against Service count ($EPS endpoints each, $(date -u +%Y-%m-%d))"
set logscale x
set xlabel 'Services'
set key top left
set grid
set logscale y
set title 'full sync (Sluice) / ruleset load (peers), s'
plot ${plot_sync%, }
set title 'new Service to its first connection, p50, ms'
plot ${plot_first%, }
unset logscale y
set title 'conn/s through a ClusterIP / direct (median)'
set yrange [0:1.1]
set key bottom left
plot ${plot_conn%, }
set yrange [0:*]
set key top left
set title 'tc program (bpf) per packet / empty program'
plot '$dat' u 1:$((3 * m + 2)) w lp t 'no service', '$dat' u 1:$((3 * m + 3)) w lp t 'established flow', '$dat' u 1:$((3 * m + 4)) w lp t 'new NodePort flow'
unset multiplot
EOT
	say "plot: $PLOT"
}

bench_setup
bench_inputs
bench_tc
for dp in $BENCH_DPS; do bench_sluice "$dp"; done
bench_peers
bench_churn
bench_table | tee "$WORK/table.txt"
bench_plot
mkdir -p "$BUILD/bench" && cp "$WORK/table.txt" "$BUILD/bench/table.txt"
# XDP against tc (Documentation/xdp.md): a table of its own, at 1 and the largest size up to 10k.
xdp_n=$(printf '%s\n' $SIZES | awk '$1 <= 10000 { n = $1 } END { print n + 0 ? n : 1000 }')
BUILD="$BUILD" BENCH_XDP_SERVICES="$xdp_n" bash "$BENCH_DIR/xdp.sh" || echo "# bench/xdp.sh failed" >&2
