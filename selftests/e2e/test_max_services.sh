#!/bin/bash
# --max-services end to end (BPF only: nftables has no such limit). With
# room for 4 Services and 6 defined, the first 4 serve and the other 2 are
# logged once each, counted, and not translated, while the rest keep
# working; deleting one makes room and a waiting Service is served; a
# restart with the same flag changes nothing and adopts the same maps; a
# restart with a larger one resizes the maps without a failed connection
# and serves every Service; --once with a smaller one exits 1. Then a
# Service that finds the services map full (rather than no place left) is
# logged, and served once room frees up.
. "$(dirname "$0")/lib.sh"

# write_service N: Service default/sN, ClusterIP 10.96.1.N:80 -> 10.244.2.N:8080.
write_service() {
	cat >"$MANIFESTS/s$1.yaml.tmp" <<EOT
apiVersion: v1
kind: Service
metadata: {name: s$1, namespace: default}
spec:
  clusterIP: 10.96.1.$1
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: s$1-1, namespace: default, labels: {kubernetes.io/service-name: s$1}}
addressType: IPv4
ports: [{port: 8080}]
endpoints: [{addresses: [10.244.2.$1]}]
EOT
	mv "$MANIFESTS/s$1.yaml.tmp" "$MANIFESTS/s$1.yaml"
}

# write_multi N: Service default/mN, ClusterIP 10.96.1.N, ports 80, 81 and 82
# -> 10.244.2.N:8080: four frontends (three ports and the address's marker).
write_multi() {
	cat >"$MANIFESTS/m$1.yaml.tmp" <<EOT
apiVersion: v1
kind: Service
metadata: {name: m$1, namespace: default}
spec:
  clusterIP: 10.96.1.$1
  ports:
  - {name: a, port: 80, targetPort: 8080}
  - {name: b, port: 81, targetPort: 8080}
  - {name: c, port: 82, targetPort: 8080}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: m$1-1, namespace: default, labels: {kubernetes.io/service-name: m$1}}
addressType: IPv4
ports: [{name: a, port: 8080}, {name: b, port: 8080}, {name: c, port: 8080}]
endpoints: [{addresses: [10.244.2.$1]}]
EOT
	mv "$MANIFESTS/m$1.yaml.tmp" "$MANIFESTS/m$1.yaml"
}

# wait_log PATTERN [COUNT]: until the agent's log has COUNT (default 1)
# lines matching PATTERN, at most 5 s.
wait_log() {
	local _
	for _ in $(seq 100); do
		[ "$(grep -c -- "$1" "$AGENT_LOG")" -ge "${2:-1}" ] && return 0
		sleep 0.05
	done
	return 1
}

# served N...: every Service sN answers from its endpoint.
served() {
	local n
	for n in "$@"; do
		probe --count 20 "10.96.1.$n:80"
		[ "$(probe_value ok)" = 20 ] && [ "$(probe_backends)" = "10.244.2.$n:8080 " ] ||
			{ echo "# s$n is not served:"; probe_dump; return 1; }
	done
}

# unserved N...: connections to sN are not translated: the decoy on the
# service address itself answers them.
unserved() {
	local n
	for n in "$@"; do
		probe --count 5 "10.96.1.$n:80"
		[ "$(probe_backends)" = "10.96.1.$n:80 " ] ||
			{ echo "# s$n is translated:"; probe_dump; return 1; }
	done
}

# The agent_state counter, as bpftool prints it from the pin.
not_programmed() {
	bpftool -j map dump pinned "$BPFFS/maps/agent_state" 2>/dev/null |
		sed -n 's/.*"services_not_programmed": *\([0-9]*\).*/\1/p'
}

map_field() { bpftool -j map show pinned "$BPFFS/maps/$1" | sed -n "s/.*\"$2\": *\([0-9]*\).*/\1/p"; }

e2e_setup || { not_ok "setup"; exit 1; }
eps=""
for n in 1 2 3 4 5 6; do eps+="10.244.2.$n:8080 10.96.1.$n:80 "; done
# shellcheck disable=SC2086 # one word per endpoint
start_backends $eps

for dp in $DATAPATHS; do
	if [ "$dp" != bpf ]; then
		skip "$dp: --max-services" "the limit does not apply: nftables sets and maps grow as needed"
		continue
	fi
	rm -f "$MANIFESTS"/*
	for n in 1 2 3 4; do write_service $n; done
	if ! start_agent "$dp" --max-services=4; then
		not_ok "$dp: agent starts and syncs with --max-services=4"
		continue
	fi
	check "$dp: maps sized from --max-services=4 (service_info 4, services 8, backends 64)" \
		test "$(map_field service_info max_entries) $(map_field services max_entries) $(map_field backends max_entries)" = "4 8 64"
	check "$dp: 4 Services, room for 4: every one is served" served 1 2 3 4

	write_service 5
	wait_log "Service default/s5: not programmed"
	write_service 6
	wait_log "Service default/s6: not programmed"
	sleep 0.2
	check "$dp: the 5th and 6th Services are logged once each, naming them" \
		test "$(grep -c 'Service default/s[56]: not programmed: the BPF maps hold 4 Services (--max-services)' "$AGENT_LOG")" = 2
	check "$dp: the Services past the limit are not served" unserved 5 6
	check "$dp: the others keep working" served 1 2 3 4
	check "$dp: agent_state counts 2 Services not programmed" test "$(not_programmed)" = 2
	in_node "$SLUICECTL" --bpffs="$BPFFS" services >/dev/null 2>"$WORK/ctl.err"
	check "$dp: sluicectl services says 2 Services are not programmed" \
		grep -q "2 Services not programmed" "$WORK/ctl.err"

	# Deleting one makes room: the lowest waiting id (s5's) takes it.
	rm -f "$MANIFESTS/s2.yaml"
	wait_log "Service default/s5: programmed now"
	check "$dp: a deleted Service makes room: s5 is served once s2 is gone" served 5
	check "$dp: s2 is gone, s6 still waits" unserved 2 6
	check "$dp: the other Services are untouched" served 1 3 4
	check "$dp: agent_state counts 1" test "$(not_programmed)" = 1

	# A restart with the same flag: same maps, same Services served, no failed connection.
	ids_before="$(map_field services id) $(map_field backends id) $(map_field service_info id)"
	in_client "$PROBE" --duration 2.5 10.96.1.5:80 >"$WORK/during-restart.out" 2>&1 &
	bg=$!
	sleep 0.3
	stop_agent
	start_agent "$dp" --max-services=4 || not_ok "$dp: agent restarts with --max-services=4"
	wait $bg
	cp "$WORK/during-restart.out" "$WORK/probe.out"
	if [ "$(probe_value ok)" = "$(probe_value attempts)" ] &&
		[ "$(probe_backends)" = "10.244.2.5:8080 " ]; then
		ok "$dp: no connection fails while the agent restarts with the same flag"
	else
		not_ok "$dp: no connection fails while the agent restarts with the same flag"
		probe_dump
	fi
	check "$dp: the restarted agent adopts the same maps" \
		test "$(map_field services id) $(map_field backends id) $(map_field service_info id)" = "$ids_before"
	check "$dp: after the restart the same Services are served" served 1 3 4 5
	check "$dp: and the same one waits" unserved 6
	check "$dp: the restarted agent logs the waiting Service once" \
		test "$(grep -c 'Service default/s6: not programmed' "$AGENT_LOG")" = 1

	# A larger flag: the maps are replaced by larger ones, their entries copied first.
	in_client "$PROBE" --duration 2.5 10.96.1.1:80 >"$WORK/during-restart.out" 2>&1 &
	bg=$!
	sleep 0.3
	stop_agent
	start_agent "$dp" --max-services=8 || not_ok "$dp: agent restarts with --max-services=8"
	wait $bg
	cp "$WORK/during-restart.out" "$WORK/probe.out"
	if [ "$(probe_value ok)" = "$(probe_value attempts)" ] &&
		[ "$(probe_backends)" = "10.244.2.1:8080 " ]; then
		ok "$dp: no connection fails while the agent restarts with a larger --max-services"
	else
		not_ok "$dp: no connection fails while the agent restarts with a larger --max-services"
		probe_dump
	fi
	check "$dp: the resize is logged and the entries copied (services: 8 entries)" \
		grep -q "map services: 8 entries copied into the resized map" "$AGENT_LOG"
	check "$dp: the maps are resized (service_info 8, services 16, backends 128)" \
		test "$(map_field service_info max_entries) $(map_field services max_entries) $(map_field backends max_entries)" = "8 16 128"
	check "$dp: with room for 8, every Service is served" served 1 3 4 5 6
	check "$dp: agent_state counts 0" test "$(not_programmed)" = 0
	stop_agent

	# --once with a smaller flag: the maps shrink, 4 of the 5 Services fit,
	# and the run fails because one was not programmed.
	in_node "$AGENT" --once --source="dir:$MANIFESTS" --datapath="$dp" --node-name="$NODE_NAME" \
		--cgroup="$CGROUP" --bpffs="$BPFFS" --max-services=4 >"$WORK/once.log" 2>&1
	check "$dp: --once exits 1 when a Service was not programmed" test $? = 1
	check "$dp: --once says how many" grep -q "1 Services not programmed (--max-services)" \
		"$WORK/once.log"
	n_served=0
	for n in 1 3 4 5 6; do served $n >/dev/null && n_served=$((n_served + 1)); done
	check "$dp: after shrinking to 4, 4 of the 5 Services are served" test $n_served = 4

	# A full map rather than the count: 2 Services of 4 frontends fill the
	# 8 entries of services; a third gets a place but no entry, and gets
	# one when a Service goes.
	in_node "$AGENT" --cleanup --bpffs="$BPFFS" --cgroup="$CGROUP" >/dev/null 2>&1
	rm -f "$MANIFESTS"/*
	write_multi 1
	write_multi 2
	if ! start_agent "$dp" --max-services=4; then
		not_ok "$dp: agent starts with two Services of four frontends"
		continue
	fi
	write_service 3
	wait_log "Service default/s3: frontend"
	check "$dp: a Service that finds the services map full is logged once, naming the map" \
		test "$(grep -c 'Service default/s3: frontend 10.96.1.3:[0-9]*/[0-9]* not programmed: BPF map services is full (8 entries' "$AGENT_LOG")" = 1
	check "$dp: the Services that fit are served" served 1 2
	check "$dp: the one that does not fit is not served" unserved 3
	check "$dp: agent_state counts it" test "$(not_programmed)" = 1
	rm -f "$MANIFESTS/m1.yaml"
	wait_log "Service default/s3: programmed now"
	check "$dp: once a Service goes, it is served" served 3 2
	check "$dp: agent_state counts 0 again" test "$(not_programmed)" = 0
	stop_agent
done
exit 0
