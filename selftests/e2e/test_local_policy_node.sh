#!/bin/bash
# externalTrafficPolicy Local and clients on the node, on both datapaths.
# kube-proxy holds only traffic from outside to this node's endpoints:
# traffic born on the node to an LB IP, an externalIP or a NodePort on a
# node address goes to the cluster-wide endpoints ("short-circuit local
# traffic"), with the node's address as source. A client outside is still
# dropped without a local endpoint, and served by the local one only.
# BPF: the socket path's node set; nftables: the fe-out-... chains that
# nat-output reaches through node-services4 and node-nodeports4.
. "$(dirname "$0")/lib.sh"

# write_manifests NODE [POLICY [ENDPOINTS]]: the node of endpoint 10.244.1.1
# (10.244.1.2 is on node-b), externalTrafficPolicy (default Local); ENDPOINTS
# "none" writes the slice without endpoints.
write_manifests() {
	local policy=${2:-Local} endpoints="
- {addresses: [10.244.1.1], nodeName: $1}
- {addresses: [10.244.1.2], nodeName: node-b}"
	[ "${3:-}" = none ] && endpoints=" []"
	cat >"$MANIFESTS/local.yaml.tmp" <<EOT
apiVersion: v1
kind: Service
metadata: {name: local, namespace: default}
spec:
  type: LoadBalancer
  clusterIP: 10.96.1.1
  externalTrafficPolicy: $policy
  externalIPs: [10.99.2.11]
  healthCheckNodePort: 32081
  ports:
  - {name: http, port: 80, targetPort: 8080, nodePort: 30081, protocol: TCP}
  - {name: dns, port: 53, targetPort: 5353, nodePort: 30081, protocol: UDP}
status:
  loadBalancer: {ingress: [{ip: 10.99.2.21}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: local-v4, namespace: default, labels: {kubernetes.io/service-name: local}}
addressType: IPv4
ports: [{name: http, port: 8080}, {name: dns, port: 5353, protocol: UDP}]
endpoints:$endpoints
EOT
	mv "$MANIFESTS/local.yaml.tmp" "$MANIFESTS/local.yaml"
}

# expect_node_source NAME: every backend saw the node's own address.
expect_node_source() {
	check "$1" test "$(probe_sources)" = "10.99.0.1 "
}

e2e_setup || { not_ok "setup"; exit 1; }
setup_outside || { not_ok "setup of the outside namespace"; exit 1; }
# Clients on the node route the external addresses into the backend
# namespace (as a node's default route would), where decoys answer any
# connection that escaped translation.
in_node ip route add 10.99.2.0/24 via 10.99.0.2
start_backends 10.244.1.1:8080 10.244.1.2:8080 10.244.1.1:5353 10.244.1.2:5353
start_backends 10.99.2.11:80 10.99.2.21:80 10.99.2.11:53 10.99.2.21:53

for dp in $DATAPATHS; do
	rm -f "$MANIFESTS"/*
	write_manifests node-c # no endpoint on this node
	if ! start_agent "$dp" --devices="x$ID"; then
		not_ok "$dp: agent starts"
		continue
	fi
	for dst in 10.99.2.21:80 10.99.2.11:80 10.99.0.1:30081 10.99.1.1:30081; do
		probe --count 60 "$dst"
		expect_backends "$dp: no local endpoint: a client on the node reaches $dst through the cluster endpoints" \
			"10.244.1.1:8080 10.244.1.2:8080 " 60
		expect_node_source "$dp: no local endpoint: $dst: the backend sees the node's address"
	done
	probe --udp --count 60 10.99.2.21:53
	expect_backends "$dp: no local endpoint: UDP from the node to the LB IP reaches the cluster endpoints" \
		"10.244.1.1:5353 10.244.1.2:5353 " 60
	probe --udp --count 60 10.99.0.1:30081
	expect_backends "$dp: no local endpoint: UDP from the node to a NodePort reaches the cluster endpoints" \
		"10.244.1.1:5353 10.244.1.2:5353 " 60
	for dst in 10.99.2.21:80 10.99.2.11:80 10.99.1.1:30081; do
		probe_ext --count 3 --timeout-ms 300 "$dst"
		expect_dropped "$dp: no local endpoint: a client outside to $dst is dropped" 3
	done

	write_manifests "$NODE_NAME" # 10.244.1.1 is local now
	sleep 1
	for dst in 10.99.2.21:80 10.99.2.11:80 10.99.0.1:30081; do
		probe --count 60 "$dst"
		expect_backends "$dp: a local endpoint: a client on the node to $dst uses every endpoint, as kube-proxy" \
			"10.244.1.1:8080 10.244.1.2:8080 " 60
	done
	for dst in 10.99.2.21:80 10.99.2.11:80 10.99.1.1:30081; do
		probe_ext --count 20 "$dst"
		expect_backends "$dp: a local endpoint: a client outside to $dst uses it only" \
			"10.244.1.1:8080 " 20
		check "$dp: a local endpoint: $dst: the backend sees the outside client's address" \
			test "$(probe_sources)" = "10.99.1.2 "
	done

	# A restarted agent adopts what it finds (full sync) and serves the same.
	stop_agent
	write_manifests node-c
	if ! start_agent "$dp" --devices="x$ID"; then
		not_ok "$dp: agent restarts"
		continue
	fi
	for dst in 10.99.2.21:80 10.99.0.1:30081; do
		probe --count 40 "$dst"
		expect_backends "$dp: after a restart: a client on the node to $dst uses every endpoint" \
			"10.244.1.1:8080 10.244.1.2:8080 " 40
	done
	probe_ext --count 3 --timeout-ms 300 10.99.2.21:80
	expect_dropped "$dp: after a restart: a client outside is still dropped" 3

	# Policy Cluster and back: one chain for everyone, then the two again.
	write_manifests node-c Cluster
	sleep 1
	probe_ext --count 20 10.99.2.21:80
	expect_backends "$dp: policy Cluster: a client outside uses every endpoint" \
		"10.244.1.1:8080 10.244.1.2:8080 " 20
	probe --count 20 10.99.2.21:80
	expect_backends "$dp: policy Cluster: a client on the node uses every endpoint" \
		"10.244.1.1:8080 10.244.1.2:8080 " 20
	write_manifests node-c Local
	sleep 1
	probe --count 40 10.99.1.1:30081
	expect_backends "$dp: Local again: a client on the node to 10.99.1.1:30081 uses every endpoint" \
		"10.244.1.1:8080 10.244.1.2:8080 " 40
	expect_node_source "$dp: Local again: the backend sees the node's address"
	probe_ext --count 3 --timeout-ms 300 10.99.1.1:30081
	expect_dropped "$dp: Local again: a client outside to 10.99.1.1:30081 is dropped" 3

	# No endpoint anywhere: refused from the node and from outside alike.
	write_manifests node-c Local none
	sleep 1
	for dst in 10.99.2.21:80 10.99.0.1:30081; do
		probe --count 3 --timeout-ms 300 "$dst"
		expect_refused "$dp: no endpoint anywhere: a client on the node to $dst is refused" 3
	done
	probe_ext --count 3 --timeout-ms 300 10.99.2.21:80
	expect_refused "$dp: no endpoint anywhere: a client outside is refused" 3
	stop_agent
done
exit 0
