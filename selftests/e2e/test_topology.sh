#!/bin/bash
# Topology-preferred endpoints and traffic policies end to end, on both
# datapaths: the node's zone from its Node object, forZones / forNodes
# hints, internalTrafficPolicy Local, the terminating fallback.
. "$(dirname "$0")/lib.sh"

# write_node ZONE (or "" for no zone label)
write_node() {
	local labels=""
	[ -n "$1" ] && labels="labels: {topology.kubernetes.io/zone: $1}"
	cat >"$MANIFESTS/node.yaml.tmp" <<EOT
apiVersion: v1
kind: Node
metadata:
  name: $NODE_NAME
  $labels
EOT
	mv "$MANIFESTS/node.yaml.tmp" "$MANIFESTS/node.yaml"
}

# write_service NAME IP POLICY  (POLICY: Cluster or Local internalTrafficPolicy)
write_service() {
	cat >"$MANIFESTS/svc-$1.yaml" <<EOT
apiVersion: v1
kind: Service
metadata: {name: $1, namespace: default}
spec:
  clusterIP: $2
  internalTrafficPolicy: $3
  trafficDistribution: PreferClose
  ports: [{name: http, port: 80, targetPort: 8080}]
EOT
}

A=10.244.1.1 B=10.244.1.2 C=10.244.1.3

e2e_setup || { not_ok "setup"; exit 1; }
start_backends $A:8080 $B:8080 $C:8080 10.96.0.20:80 10.96.0.21:80 10.96.0.22:80 10.96.0.23:80

for dp in $DATAPATHS; do
	rm -f "$MANIFESTS"/*
	write_node zone-1
	# zoned: hints put A and C in zone-1, B in zone-2.
	write_service zoned 10.96.0.20 Cluster
	write_topology_slice zoned "$A,node-a,zone-1,ready,zone:zone-1" "$B,node-b,zone-2,ready,zone:zone-2" \
		"$C,node-c,zone-1,ready,zone:zone-1"
	# noded: B is hinted for this node.
	write_service noded 10.96.0.21 Cluster
	write_topology_slice noded "$A,node-b,zone-1,ready,node:node-b" "$B,node-a,zone-1,ready,node:node-a" \
		"$C,node-c,zone-1,ready,node:node-c"
	# local: internalTrafficPolicy Local, A on this node.
	write_service local 10.96.0.22 Local
	write_topology_slice local "$A,node-a,zone-1,ready,-" "$B,node-b,zone-2,ready,-" \
		"$C,node-c,zone-1,ready,-"
	# draining: nothing ready; C still serving while terminating.
	write_service draining 10.96.0.23 Cluster
	write_topology_slice draining "$A,node-a,zone-1,notready,-" "$B,node-b,zone-2,notready,-" \
		"$C,node-c,zone-1,terminating,-"
	if ! start_agent "$dp"; then
		not_ok "$dp: agent starts"
		continue
	fi

	probe --count 150 10.96.0.20:80
	expect_backends "$dp: zone hints keep traffic in this node's zone" "$A:8080 $C:8080 " 150
	check "$dp: the agent explains the choice per service port (zone mode, 2 backends)" \
		grep -q 'default/zoned 10.96.0.20 port 80/tcp http: serve, choice zone, 2 backends' \
		"$AGENT_LOG"
	# The Node object going away and coming back after the Services.
	rm -f "$MANIFESTS/node.yaml"
	sleep 1
	probe --count 150 10.96.0.20:80
	expect_backends "$dp: without its Node object the node has no zone: every endpoint" \
		"$A:8080 $B:8080 $C:8080 " 150
	write_node zone-1
	sleep 1
	probe --count 100 10.96.0.20:80
	expect_backends "$dp: a Node object appearing after the Services brings zone mode back" \
		"$A:8080 $C:8080 " 100
	write_node zone-2
	sleep 1
	probe --count 100 10.96.0.20:80
	expect_backends "$dp: a new zone label on the Node moves traffic to that zone" "$B:8080 " 100
	write_node ""
	sleep 1
	probe --count 150 10.96.0.20:80
	expect_backends "$dp: a node without a zone label spreads over every endpoint" \
		"$A:8080 $B:8080 $C:8080 " 150
	write_node zone-1
	write_topology_slice zoned "$A,node-a,zone-1,ready,zone:zone-1" "$B,node-b,zone-2,ready,-" \
		"$C,node-c,zone-1,ready,zone:zone-1"
	sleep 1
	probe --count 150 10.96.0.20:80
	expect_backends "$dp: one ready endpoint without a hint spreads over every endpoint" \
		"$A:8080 $B:8080 $C:8080 " 150

	probe --count 100 10.96.0.21:80
	expect_backends "$dp: node hints keep traffic on this node" "$B:8080 " 100
	probe --count 100 10.96.0.22:80
	expect_backends "$dp: internalTrafficPolicy Local uses this node's endpoints only" \
		"$A:8080 " 100
	write_topology_slice local "$A,node-a,zone-1,notready,-" "$B,node-b,zone-2,ready,-"
	sleep 1
	probe --count 3 --timeout-ms 300 10.96.0.22:80
	expect_dropped "$dp: Local with endpoints only on other nodes drops the traffic" 3
	write_topology_slice local "$A,node-a,zone-1,notready,-"
	sleep 1
	probe --count 10 10.96.0.22:80
	expect_refused "$dp: Local with no usable endpoint anywhere refuses" 10

	probe --count 100 10.96.0.23:80
	expect_backends "$dp: with nothing ready, serving-and-terminating endpoints serve" \
		"$C:8080 " 100
	write_topology_slice draining "$A,node-a,zone-1,ready,-" "$B,node-b,zone-2,notready,-" \
		"$C,node-c,zone-1,terminating,-"
	sleep 1
	probe --count 100 10.96.0.23:80
	expect_backends "$dp: once an endpoint is ready, terminating ones get nothing new" \
		"$A:8080 " 100
	stop_agent
done
exit 0
