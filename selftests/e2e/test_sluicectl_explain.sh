#!/bin/bash
# sluicectl explain, status, services -o json and top end to end, on both
# datapaths, with real Services: zone hints, a missing hint, node hints,
# externalTrafficPolicy Local, the terminating fallback, session affinity
# and a rate limit. Asserts what the user sees: the words of explain, the
# fields of status, the JSON, the order and rates of top.
. "$(dirname "$0")/lib.sh"

A=10.244.1.1 B=10.244.1.2 C=10.244.1.3

ctl() { in_node "$SLUICECTL" --bpffs="$BPFFS" "$@"; }

# write_service NAME IP [EXTRA SPEC LINES] [ANNOTATIONS]
write_service() {
	cat >"$MANIFESTS/svc-$1.yaml" <<EOT
apiVersion: v1
kind: Service
metadata: {name: $1, namespace: default, annotations: {${4:-}}}
spec:
  clusterIP: $2
  ports: [{name: http, port: 80, targetPort: 8080${5:-}}]
${3:-}
EOT
}

write_manifests() {
	rm -f "$MANIFESTS"/*
	cat >"$MANIFESTS/node.yaml" <<EOT
apiVersion: v1
kind: Node
metadata: {name: $NODE_NAME, labels: {topology.kubernetes.io/zone: zone-1}}
EOT
	write_service zoned 10.96.0.20 "  trafficDistribution: PreferClose"
	write_topology_slice zoned "$A,node-a,zone-1,ready,zone:zone-1" "$B,node-b,zone-2,ready,zone:zone-2" \
		"$C,node-c,zone-1,ready,zone:zone-1"
	write_service unhinted 10.96.0.21
	write_topology_slice unhinted "$A,node-a,zone-1,ready,zone:zone-1" "$B,node-b,zone-2,ready,-"
	write_service noded 10.96.0.22
	write_topology_slice noded "$A,node-b,zone-1,ready,node:node-b" "$B,node-a,zone-1,ready,node:node-a"
	write_service draining 10.96.0.23 "  sessionAffinity: ClientIP"
	write_topology_slice draining "$A,node-a,zone-1,notready,-" "$C,node-c,zone-1,terminating,-"
	write_service etp 10.96.0.24 "  type: NodePort
  externalTrafficPolicy: Local" "" ", nodePort: 30124"
	write_topology_slice etp "$A,node-a,zone-1,ready,-" "$B,node-b,zone-2,ready,-"
	write_service limited 10.96.0.25 "" "sluice.io/rate-limit: \"3/m\""
	write_topology_slice limited "$A,node-a,zone-1,ready,-"
	write_service busy 10.96.0.26 "" "sluice.io/rate-limit: \"10000/s\""
	write_topology_slice busy "$A,node-a,zone-1,ready,-"
	echo "kind: [not, a, manifest" >"$MANIFESTS/broken.yaml"
}

# has FILE TEXT: FILE holds the fixed string TEXT (else the file is shown).
has() {
	grep -qF -- "$2" "$1" && return 0
	echo "# missing: $2"
	sed 's/^/#   /' "$1"
	return 1
}
# endpoint_row FILE ADDR IN-USE WHY: the table row of ADDR says IN-USE and WHY.
endpoint_row() {
	awk -F '   +' -v ep="$2:8080" -v use="$3" -v why="$4" \
		'$1 == "  " ep && $6 == use && $7 == why { ok = 1 } END { exit !ok }' "$1" && return 0
	echo "# no row '$2 ... $3 ... $4' in:"
	sed 's/^/#   /' "$1"
	return 1
}

e2e_setup || { not_ok "setup"; exit 1; }
start_backends $A:8080 $B:8080 $C:8080

for dp in $DATAPATHS; do
	write_manifests
	rm -rf "$SLUICE_STATUS_DIR"
	if ! start_agent "$dp"; then
		not_ok "$dp: agent starts"
		continue
	fi
	out="$WORK/out"
	check "$dp: agent.sock is there, root's only" \
		test "$(stat -c %F,%a "$SLUICE_STATUS_DIR/agent.sock" 2>&1)" = "socket,600"
	check "$dp: no per-Service files" test ! -e "$SLUICE_STATUS_DIR/services"

	ctl explain default/zoned >"$out" 2>&1
	check "$dp: explain names the datapath in the kernel" has "$out" "Datapath:          $dp"
	check "$dp: explain: zone mode and the hint that decided it" has "$out" \
		"Topology:        PreferSameZone: every ready endpoint has a forZones hint and one names this node's zone (zone-1)"
	check "$dp: explain: 2 of 3 endpoints in use" has "$out" \
		"Frontend 10.96.0.20:80/tcp (ClusterIP, port http): serves 2 of 3 endpoints"
	check "$dp: explain: the endpoint of the other zone is not used, and why" \
		endpoint_row "$out" "$B" no "hinted for zone zone-2, not this node's zone zone-1"
	check "$dp: explain: an endpoint of this zone is used" \
		endpoint_row "$out" "$A" yes "ready, hinted for this node's zone zone-1"
	check "$dp: explain: the traffic policy" has "$out" \
		"Traffic policy:  internalTrafficPolicy Cluster: endpoints on every node"
	check "$dp: explain: no terminating fallback needed" has "$out" \
		"Terminating:     fallback not needed: ready endpoints serve"
	check "$dp: explain: trafficDistribution" has "$out" "trafficDistribution PreferClose"

	ctl explain default/unhinted >"$out" 2>&1
	check "$dp: explain: one ready endpoint without a hint turns topology off, named" has "$out" \
		"none: ready endpoint $B:8080 has no forZones hint, so the hints of every endpoint are ignored"
	ctl explain default/noded >"$out" 2>&1
	check "$dp: explain: node hints" has "$out" "PreferSameNode: every ready endpoint has a forNodes hint and one names this node (node-a)"
	check "$dp: explain: the endpoint hinted for another node" \
		endpoint_row "$out" "$A" no "hinted for node node-b, not this node"

	ctl explain default/draining >"$out" 2>&1
	check "$dp: explain: the terminating fallback in use" has "$out" \
		"Terminating:     fallback in use: no endpoint is ready, so serving-and-terminating ones serve"
	check "$dp: explain: the terminating endpoint serves" \
		endpoint_row "$out" "$C" yes "serving while terminating: nothing is ready (fallback)"
	check "$dp: explain: the not-ready endpoint" endpoint_row "$out" "$A" no "not ready"
	check "$dp: explain: session affinity" has "$out" \
		"Session affinity:  ClientIP: one client address keeps its backend until 10800s idle"
	probe --count 20 10.96.0.23:80
	expect_backends "$dp: and the terminating endpoint is what answers" "$C:8080 " 20

	ctl explain default/etp >"$out" 2>&1
	check "$dp: explain: externalTrafficPolicy Local on the NodePort" has "$out" \
		"Traffic policy:  externalTrafficPolicy Local: this node's endpoints only; the client's address is kept (no SNAT)"
	check "$dp: explain: the NodePort frontend uses the local endpoint only" has "$out" \
		"Frontend *:30124/tcp (NodePort, port http): serves 1 of 2 endpoints"
	check "$dp: explain: the other node's endpoint, and why" \
		endpoint_row "$out" "$B" no "on node node-b: traffic policy Local takes this node's endpoints only"
	check "$dp: explain: the ClusterIP of that Service keeps the Cluster policy" has "$out" \
		"Frontend 10.96.0.24:80/tcp (ClusterIP, port http): serves 2 of 2 endpoints"
	check "$dp: explain: topology is not applied under Local" has "$out" \
		"not applied: traffic policy Local ignores topology hints"

	probe --count 10 10.96.0.25:80
	ctl explain default/limited >"$out" 2>&1
	check "$dp: explain: the rate limit and the kernel's counts (3 admitted, 7 limited)" has \
		"$out" "Rate limit:        3/m new flows, burst 3 (sluice.io/rate-limit); kernel counters: 3 admitted, 7 rate-limited"

	ctl explain default/nope >"$out" 2>&1
	check "$dp: explain of an unknown Service: one line, exit 1" \
		test "$?" = 1 -a "$(wc -l <"$out")" = 1
	ctl explain nope >"$out" 2>&1
	check "$dp: explain of a malformed name: one line, exit 2" \
		test "$?" = 2 -a "$(wc -l <"$out")" = 1

	ctl status >"$out" 2>&1
	check "$dp: status: the agent runs, with its version" has "$out" \
		"Agent:             running (pid $AGENT_PID), version $("$SLUICECTL" --version | awk '{ print $2 }')"
	check "$dp: status: the datapath" has "$out" "Datapath:          $dp (--datapath=$dp)"
	check "$dp: status: the datapath in the kernel" has "$out" "In the kernel:     $dp"
	check "$dp: status: 7 Services, 8 frontends, 13 backends" \
		grep -qzE "Services: +7
Frontends: +8
Backends: +11" "$out"
	check "$dp: status: the rejected manifest is counted" has "$out" \
		"Rejected inputs:   1 (see the agent's log)"
	check "$dp: status: the last sync" grep -qE "^Last sync: +20[0-9-]+ [0-9:]+ UTC \([0-9]+s ago\)$" "$out"

	ctl services -o json >"$out" 2>&1
	check "$dp: services -o json: every Service, its frontends and backends" \
		test "$(jq -r '[.items[] | .service] | join(" ")' "$out")" = \
		"default/busy default/draining default/etp default/limited default/noded default/unhinted default/zoned"
	check "$dp: services -o json: the backends the zone mode chose" \
		test "$(jq -r '.items[] | select(.service == "default/zoned") | .frontends[0].backends | join(" ")' "$out")" = "$A:8080 $C:8080"
	check "$dp: services -o json: the kernel's counters" \
		test "$(jq -r '.items[] | select(.service == "default/limited") | "\(.kernel.admitted) \(.kernel.rate_limited)"' "$out")" = "3 7"
	check "$dp: services -o json: the datapath" test "$(jq -r .datapath "$out")" = "$dp"

	# top: traffic to busy and limited while top samples; busy first, limited with refusals.
	(sleep 0.3; probe --count 200 10.96.0.26:80; in_client "$PROBE" --count 20 10.96.0.25:80 >/dev/null) &
	ctl top --interval 2 -n 3 >"$out" 2>&1
	wait $!
	sed 's/^/# top: /' "$out"
	# The refusal columns appear where the datapath counts them (bpf).
	check "$dp: top: a header in capitals" \
		grep -qE '^SERVICE +FLOWS/S +ADMITTED/S +RATE_LIMITED/S +((NO_ENDPOINTS|POLICY_DROP|SOURCE_RANGE)/S +)*LIMIT +ADMITTED$' "$out"
	check "$dp: top: the busiest Service first, with its rate" \
		awk 'NR == 2 && $1 == "default/busy" && $2 >= 50 && $3 == $2 && $4 == 0 { ok = 1 } END { exit !ok }' "$out"
	check "$dp: top: the rate-limited Service second, its refusals by reason" \
		awk 'NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i }
		     NR == 3 && $1 == "default/limited" && $col["RATE_LIMITED/S"] >= 5 &&
		     $col["LIMIT"] == "3/m" { ok = 1 } END { exit !ok }' "$out"
	# nftables counts Services with a limit only: 2 rows there.
	check "$dp: top: -n 3 rows at most" test "$(wc -l <"$out")" -le 4 -a "$(wc -l <"$out")" -ge 3
	ctl top --interval 0 >"$out" 2>&1
	check "$dp: top: a bad interval: one line, exit 2" test "$?" = 2 -a "$(wc -l <"$out")" = 1

	# Stopped: status still answers from status.json; explain needs the agent.
	stop_agent
	ctl status >"$out" 2>&1
	check "$dp: status: a stopped agent is said to be so" has "$out" "Agent:             not running"
	ctl explain default/zoned >"$out" 2>&1
	check "$dp: explain with the agent stopped: one line, exit 1" \
		test "$?" = 1 -a "$(wc -l <"$out")" = 1
	check "$dp: and it says the agent is not running" has "$out" "needs the running agent"
	ctl services -o json >"$out" 2>&1
	check "$dp: services -o json with the agent stopped: one line, exit 1" \
		test "$?" = 1 -a "$(wc -l <"$out")" = 1
	# What an older version wrote, and a Service gone while the agent was down.
	mkdir -p "$SLUICE_STATUS_DIR/services/default"
	echo '{}' >"$SLUICE_STATUS_DIR/services/default/noded.json"
	rm -f "$MANIFESTS/svc-noded.yaml" "$MANIFESTS/slice-noded.yaml"
	start_agent "$dp" || not_ok "$dp: agent restarts"
	check "$dp: an older version's Service files are removed at start" \
		test ! -e "$SLUICE_STATUS_DIR/services"
	ctl explain default/noded >"$out" 2>&1
	check "$dp: a Service removed while the agent was down is not known" has "$out" \
		"Service default/noded is not known to the agent"
	rm -f "$MANIFESTS/svc-etp.yaml"
	check "$dp: a Service removed while the agent runs is gone from its answers" \
		within eval '! ctl explain default/etp >/dev/null 2>&1'
	check "$dp: and from services -o json" \
		within eval '[ "$(ctl services -o json | jq -r "[.items[].service] | join(\" \")")" = "default/busy default/draining default/limited default/unhinted default/zoned" ]'
	# A client that connects and never asks does not hold up the agent.
	perl -MIO::Socket::UNIX -e 'IO::Socket::UNIX->new(Peer => $ARGV[0]) or die; sleep 3' \
		"$SLUICE_STATUS_DIR/agent.sock" &
	silent=$!
	sleep 0.2
	ctl explain default/zoned >"$out" 2>&1
	check "$dp: explain answers beside a silent client" has "$out" "Service:           default/zoned"
	kill "$silent" 2>/dev/null
	wait "$silent" 2>/dev/null
	stop_agent
	check "$dp: the agent removes agent.sock when it stops" \
		test ! -e "$SLUICE_STATUS_DIR/agent.sock"
done
in_node "$AGENT" --cleanup --bpffs="$BPFFS" --cgroup="$CGROUP" >/dev/null 2>&1
check "--cleanup removes status.json and its directory" test ! -e "$SLUICE_STATUS_DIR"
exit 0
