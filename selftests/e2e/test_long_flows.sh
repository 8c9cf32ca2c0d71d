#!/bin/bash
# Long-lived TCP connections survive endpoint changes and agent restarts, on
# both datapaths (issue 14, point 4). Two connections are held open for the
# whole scenario, exchanging one numbered message every 100 ms
# (probe-client --hold against echo-server --echo): one from the node (the
# test cgroup, socket hooks) to a ClusterIP, one from a client namespace
# outside the node (tc path) to a NodePort. While they run:
#   (a) their backend turns terminating (ready: false, serving: true,
#       terminating: true),
#   (b) it leaves the slice while its pod keeps running (new connections go
#       to the other endpoint: checked, so the change did happen),
#   (c) the agent is stopped with SIGTERM and started again,
#   (d) the agent is killed with SIGKILL and started again.
# Checked per connection: every message came back (none lost, none late by
# more than 3 s), the connection never broke, and it is the same connection
# (the same local port) from start to end.
. "$(dirname "$0")/lib.sh"

HOLD_SECONDS=7


write_service() {
	cat >"$MANIFESTS/hold.yaml" <<EOT
apiVersion: v1
kind: Service
metadata: {name: hold, namespace: default}
spec:
  type: NodePort
  clusterIP: 10.96.0.20
  externalTrafficPolicy: Cluster
  ports:
  - {name: tcp, port: 80, targetPort: 8080, nodePort: 30090, protocol: TCP}
EOT
}

# write_slice ENDPOINT-LINES: the Service's slice, written and renamed into place.
write_slice() {
	cat >"$MANIFESTS/.hold-slice.yaml.tmp" <<EOT
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: hold-v4, namespace: default, labels: {kubernetes.io/service-name: hold}}
addressType: IPv4
ports: [{name: tcp, port: 8080, protocol: TCP}]
endpoints:
$1
EOT
	mv "$MANIFESTS/.hold-slice.yaml.tmp" "$MANIFESTS/hold-slice.yaml"
}
READY_1="- {addresses: [10.244.1.1], nodeName: $NODE_NAME, conditions: {ready: true}}"
TERMINATING_1="- {addresses: [10.244.1.1], nodeName: $NODE_NAME,
   conditions: {ready: false, serving: true, terminating: true}}"
READY_2="- {addresses: [10.244.1.2], nodeName: $NODE_NAME, conditions: {ready: true}}"

# expect_held NAME FILE: the hold in FILE lost nothing, never broke, one local port.
expect_held() {
	local name=$1 f=$2 v rounds lost broken ports
	v() { awk -v k="$1" '$1 == k { $1 = ""; sub(/^ /, ""); print }' "$f"; }
	rounds=$(v rounds) lost=$(v lost) broken=$(v broken) ports=$(v local-port)
	if [ -n "$rounds" ] && [ "$rounds" -ge $((HOLD_SECONDS * 5)) ] && [ "$lost" = 0 ] &&
		[ "$broken" = 0 ] && [ "${ports% *}" = "${ports#* }" ] &&
		[ "$(v backend)" = "10.244.1.1:8080" ]; then
		ok "$name ($rounds round trips, local port ${ports% *}, backend $(v backend))"
	else
		not_ok "$name"
		grep -v '^round .* ok$' "$f" | sed 's/^/#   /'
	fi
}

e2e_setup || { not_ok "setup"; exit 1; }
setup_outside || { not_ok "setup of the outside namespace"; exit 1; }
# Two endpoints, and a decoy on the ClusterIP that answers untranslated traffic.
start_backends --echo 10.244.1.1:8080 10.244.1.2:8080 10.96.0.20:80

for dp in $DATAPATHS; do
	rm -f "$MANIFESTS"/*
	write_service
	write_slice "$READY_1"
	if ! start_agent "$dp" --devices="x$ID,v$ID"; then
		not_ok "$dp: agent starts"
		continue
	fi
	in_client "$PROBE" --hold "$HOLD_SECONDS" --interval-ms 100 --timeout-ms 3000 \
		10.96.0.20:80 >"$WORK/hold-cluster.out" 2>&1 &
	hold_cluster=$!
	in_ext "$PROBE" --hold "$HOLD_SECONDS" --interval-ms 100 --timeout-ms 3000 \
		10.99.1.1:30090 >"$WORK/hold-nodeport.out" 2>&1 &
	hold_nodeport=$!
	sleep 1

	# (a) the backend turns terminating: it still serves (the only one left).
	write_slice "$TERMINATING_1"
	sleep 1
	# (b) it leaves the slice; its pod (the server) keeps running.
	write_slice "$READY_2"
	sleep 1
	probe --count 20 10.96.0.20:80
	expect_backends "$dp: after the change, new connections go to the remaining endpoint" \
		"10.244.1.2:8080 " 20
	# (c) SIGTERM and a new agent.
	stop_agent
	start_agent "$dp" --devices="x$ID,v$ID" || not_ok "$dp: agent restarts after SIGTERM"
	sleep 0.5
	# (d) SIGKILL and a new agent.
	kill -KILL "$AGENT_PID" 2>/dev/null
	wait "$AGENT_PID" 2>/dev/null
	AGENT_PID=""
	start_agent "$dp" --devices="x$ID,v$ID" || not_ok "$dp: agent restarts after SIGKILL"

	wait "$hold_cluster" "$hold_nodeport"
	expect_held "$dp: a ClusterIP connection from the node holds through terminating, removal, SIGTERM and SIGKILL restarts" \
		"$WORK/hold-cluster.out"
	expect_held "$dp: a NodePort connection from outside holds through terminating, removal, SIGTERM and SIGKILL restarts" \
		"$WORK/hold-nodeport.out"
	probe --count 20 10.96.0.20:80
	expect_backends "$dp: the restarted agent serves the remaining endpoint" "10.244.1.2:8080 " 20
	stop_agent
	in_node "$AGENT" --cleanup --bpffs="$BPFFS" --cgroup="$CGROUP" >/dev/null 2>&1
done
exit 0
