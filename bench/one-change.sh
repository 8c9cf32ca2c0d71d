#!/bin/bash
# One change to the datapath serving it, timed from outside the agent, with
# N Services of E endpoints loaded (default 100,000 x 10): p50 and p99 per
# datapath and kind of change. Runnable on its own (as root, after `make`
# and `make build/bench/change-probe`); bench/run.sh may call it.
#
# bench/change-probe makes each change and watches the kernel: on bpf the
# frontend's services entry and backend slots (what a new connection gets),
# on nftables the commit of a transaction in the node's namespace. Kinds:
#   slice     one endpoint of service 0 moves, in its own small file (slice-0.json)
#   service   service 0 toggles sessionAffinity, in its own small file (svc-0.json)
#   bigfile   service 1 toggles sessionAffinity inside services.json, the file
#             that holds every other object (read whole again: BIG_CHANGES of them)
#   watch     --source=kube against selftests/tools/fake-apiserver holding the
#             same objects: service 0's slice changed by a watch event
# Changes are CHANGES_QUIET_MS apart, so each finds the source quiet.
#
# Environment: BUILD, ONE_CHANGE_SERVICES (N, default 100000),
# ONE_CHANGE_ENDPOINTS (E, default 10), ONE_CHANGE_DATAPATHS (default
# "bpf nftables"), ONE_CHANGE_KINDS (default "slice service bigfile watch"),
# CHANGES (per kind, default 100), BIG_CHANGES (default 10),
# CHANGES_QUIET_MS (default 200), ONE_CHANGE_OUT (also write the "key value"
# lines there). Output: one line per datapath and kind,
#   one-change DATAPATH KIND p50_ms P50 p99_ms P99 n N applies A cpu_ms CPU
# where A counts the agent's apply lines during the kind (one per change
# when nothing is coalesced) and CPU the agent's CPU time (user and system,
# the kernel's work in its syscalls included) per change, in ms: on a loaded
# machine the latencies include waiting for a CPU, this does not.
. "$(dirname "$0")/../selftests/e2e/lib.sh"
. "$ROOT/selftests/e2e/kube_lib.sh"

N=${ONE_CHANGE_SERVICES:-100000}
E=${ONE_CHANGE_ENDPOINTS:-10}
DPS=${ONE_CHANGE_DATAPATHS:-bpf nftables}
KINDS=${ONE_CHANGE_KINDS:-slice service bigfile watch}
CHANGES=${CHANGES:-100}
BIG_CHANGES=${BIG_CHANGES:-10}
QUIET_MS=${CHANGES_QUIET_MS:-200}
CHANGE_PROBE="$BUILD/bench/change-probe"
OUT=${ONE_CHANGE_OUT:-}
APPLIED="applied .* changes for"

[ -x "$CHANGE_PROBE" ] || { echo "one-change: build $CHANGE_PROBE first" >&2; exit 2; }

applies() { grep -c "$APPLIED" "$AGENT_LOG"; }
# The agent's user + system CPU time so far, in clock ticks.
agent_ticks() { awk '{ print $14 + $15 }' "/proc/$AGENT_PID/stat"; }

# wait_applies COUNT: until the agent logged COUNT applies (at most 30 s).
wait_applies() {
	local _
	for _ in $(seq 3000); do
		[ "$(applies)" -ge "$1" ] && return 0
		sleep 0.01
	done
	return 1
}

# probe_change DP FRONTEND ACTION: one change; prints the latency in ms
# (none after 60 s: a loaded machine can take seconds over the big file).
probe_change() {
	local dp=$1 frontend=$2 action=$3 out
	if [ "$dp" = bpf ]; then
		out=$(in_node "$CHANGE_PROBE" --timeout-ms=60000 --bpffs="$BPFFS" \
			--frontend="$frontend" "$action")
	else
		out=$(in_node "$CHANGE_PROBE" --timeout-ms=60000 --nft "$action")
	fi
	awk '$1 == "latency_us" { printf "%.3f\n", $2 / 1000 }' <<<"$out"
}

# slice_text I: service 0's slice, its second endpoint moved on odd I.
slice_text() {
	local addr=10.244.0.2
	[ $(($1 % 2)) = 1 ] && addr=10.244.255.1
	sed "s/\"10\.244\.0\.2\"/\"$addr\"/" "$WORK/slice-0.orig"
}

# affinity_text FILE I: FILE with sessionAffinity ClientIP on its first Service on odd I.
affinity_text() {
	if [ $(($2 % 2)) = 1 ]; then
		sed -E '0,/"spec":\{"type":"ClusterIP",/s//"spec":{"type":"ClusterIP","sessionAffinity":"ClientIP",/' "$1"
	else
		sed -E '0,/"sessionAffinity":"ClientIP",/s///' "$1"
	fi
}

# run_kind DP KIND COUNT: COUNT changes of KIND; prints the result line.
run_kind() {
	local dp=$1 kind=$2 count=$3 i a0 c0 lat=() l file frontend action
	a0=$(applies)
	c0=$(agent_ticks)
	for i in $(seq "$count"); do
		case "$kind" in
		slice)
			file=slice-0.json frontend=10.96.1.1:80
			slice_text "$i" >"$MANIFESTS/.$file.tmp"
			action=--rename="$MANIFESTS/.$file.tmp:$MANIFESTS/$file"
			;;
		service | bigfile)
			file=svc-0.json frontend=10.96.1.1:80
			[ "$kind" = bigfile ] && file=services.json frontend=10.96.1.2:80
			affinity_text "$MANIFESTS/$file" "$i" >"$MANIFESTS/.$file.tmp"
			action=--rename="$MANIFESTS/.$file.tmp:$MANIFESTS/$file"
			;;
		watch)
			frontend=10.96.1.1:80
			slice_text "$i" >"$WORK/event.json"
			action=--post="127.0.0.1:6444/apply:$WORK/event.json"
			;;
		esac
		l=$(probe_change "$dp" "$frontend" "$action")
		[ -n "$l" ] || { echo "# $dp $kind: change $i not seen in the datapath" >&2; break; }
		lat+=("$l")
		wait_applies $((a0 + i)) || true
		sleep "$(awk -v m="$QUIET_MS" 'BEGIN { print m / 1000 }')"
	done
	printf '%s\n' "${lat[@]}" | sort -n | awk -v dp="$dp" -v kind="$kind" \
		-v applies=$(($(applies) - a0)) -v ticks=$(($(agent_ticks) - c0)) \
		-v hz="$(getconf CLK_TCK)" '
		{ v[NR] = $1 }
		END {
			if (!NR) { printf "one-change %s %s failed\n", dp, kind; exit }
			p99 = int(NR * 0.99 + 0.999999)
			printf "one-change %s %s p50_ms %s p99_ms %s n %d applies %d cpu_ms %.2f\n",
				dp, kind, v[int((NR + 1) / 2)], v[p99], NR, applies,
				ticks * 1000 / hz / NR
		}'
}

report() {
	echo "$1"
	[ -n "$OUT" ] && echo "$1" >>"$OUT"
	return 0
}

e2e_setup || { echo "one-change: setup failed" >&2; exit 1; }
echo "# writing $N Services x $E endpoints" >&2
"$ROOT/bench/gen-manifests.sh" "$N" "$MANIFESTS" "$E"
# Service 0 in a file of its own; the first line of the List is it.
sed -n '2p' "$MANIFESTS/services.json" >"$MANIFESTS/svc-0.json"
sed -i -e '2d' -e '3s/^,//' "$MANIFESTS/services.json"
cp "$MANIFESTS/slice-0.json" "$WORK/slice-0.orig"

for dp in $DPS; do
	file_kinds=""
	for kind in $KINDS; do [ "$kind" != watch ] && file_kinds+=" $kind"; done
	if [ -n "$file_kinds" ]; then
		echo "# $dp: agent on the directory" >&2
		cp "$WORK/slice-0.orig" "$MANIFESTS/slice-0.json"
		SYNC_WAIT_STEPS=6000 start_agent "$dp" || { stop_agent; continue; }
		for kind in $file_kinds; do
			count=$CHANGES
			[ "$kind" = bigfile ] && count=$BIG_CHANGES
			report "$(run_kind "$dp" "$kind" "$count")"
		done
		stop_agent
		in_node "$AGENT" --cleanup --bpffs="$BPFFS" --cgroup="$CGROUP" >/dev/null 2>&1
	fi
	case " $KINDS " in *" watch "*) ;; *) continue ;; esac
	echo "# $dp: agent on the test API server" >&2
	[ -f "$API_DIR/kubeconfig" ] || make_pki || { echo "# no PKI" >&2; continue; }
	rm -f "$OBJECTS"/*
	cp "$MANIFESTS"/*.json "$OBJECTS/"
	cp "$WORK/slice-0.orig" "$OBJECTS/slice-0.json"
	# Loading N Services takes longer than start_api waits.
	start_api || for _ in $(seq 1200); do [ "$(api_starts)" -gt 0 ] && break; sleep 0.1; done
	[ "$(api_starts)" -gt 0 ] || { echo "# test API server did not start" >&2; continue; }
	SYNC_WAIT_STEPS=12000 start_agent "$dp" --source=kube --kubeconfig="$API_DIR/kubeconfig" ||
		{ stop_agent; stop_api; continue; }
	report "$(run_kind "$dp" watch "$CHANGES")"
	stop_agent
	stop_api
	in_node "$AGENT" --cleanup --bpffs="$BPFFS" --cgroup="$CGROUP" >/dev/null 2>&1
done
