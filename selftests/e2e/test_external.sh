#!/bin/bash
# Traffic from outside the node, on both datapaths: a client in its own
# namespace (ext-ID, one veth away from the node, no other route) reaches
# NodePorts (TCP, UDP, IPv6), externalIPs and LoadBalancer IPs. With
# externalTrafficPolicy Cluster the backend sees the node's address, with
# Local the client's own; loadBalancerSourceRanges admit and block; the
# healthCheckNodePort answers 200 or 503.
. "$(dirname "$0")/lib.sh"

write_manifests() {
	local name=$1 policy=$2 idx=$3 ext_ip=$4 lb_ip=$5 ranges=$6 hc=$7
	cat >"$MANIFESTS/$name.yaml" <<EOT
apiVersion: v1
kind: Service
metadata: {name: $name, namespace: default}
spec:
  type: LoadBalancer
  clusterIPs: [10.96.1.$idx, "fd00:96::1:$idx"]
  ipFamilies: [IPv4, IPv6]
  externalTrafficPolicy: $policy
  externalIPs: [$ext_ip]
  loadBalancerSourceRanges: [$ranges]
  healthCheckNodePort: $hc
  ports:
  - {name: http, port: 80, targetPort: 8080, nodePort: 3008$idx, protocol: TCP}
  - {name: dns, port: 53, targetPort: 5353, nodePort: 3008$idx, protocol: UDP}
status:
  loadBalancer: {ingress: [{ip: $lb_ip}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: $name-v4, namespace: default, labels: {kubernetes.io/service-name: $name}}
addressType: IPv4
ports: [{name: http, port: 8080}, {name: dns, port: 5353, protocol: UDP}]
endpoints:
- {addresses: [10.244.1.1], nodeName: $NODE_NAME}
- {addresses: [10.244.1.2], nodeName: node-b}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: $name-v6, namespace: default, labels: {kubernetes.io/service-name: $name}}
addressType: IPv6
ports: [{name: http, port: 8080}, {name: dns, port: 5353, protocol: UDP}]
endpoints:
- {addresses: ["fd00:244::1"], nodeName: $NODE_NAME}
- {addresses: ["fd00:244::2"], nodeName: node-b}
EOT
}

e2e_setup || { not_ok "setup"; exit 1; }
setup_outside || { not_ok "setup of the outside namespace"; exit 1; }
start_backends 10.244.1.1:8080 10.244.1.2:8080 10.244.1.1:5353 10.244.1.2:5353 \
	[fd00:244::1]:8080 [fd00:244::2]:8080 [fd00:244::1]:5353 [fd00:244::2]:5353

for dp in $DATAPATHS; do
	rm -f "$MANIFESTS"/*
	# cluster: externalTrafficPolicy Cluster, the LB IP open to 10.99.1.0/24.
	write_manifests cluster Cluster 0 10.99.2.10 10.99.2.20 "10.99.1.0/24" 0
	# local: externalTrafficPolicy Local, the LB IP open to another range only.
	write_manifests local Local 1 10.99.2.11 10.99.2.21 "192.0.2.0/24" 32081
	if ! start_agent "$dp" --devices="x$ID,v$ID"; then
		not_ok "$dp: agent starts"
		continue
	fi

	probe_ext --count 100 10.99.1.1:30080
	expect_backends "$dp: NodePort TCP reaches every endpoint" "10.244.1.1:8080 10.244.1.2:8080 " 100
	check "$dp: externalTrafficPolicy Cluster: the backend sees the node's address" \
		test "$(probe_sources)" = "10.99.0.1 " -o "$(probe_sources)" = "10.99.1.1 "
	probe_ext --udp --count 100 10.99.1.1:30080
	expect_backends "$dp: NodePort UDP reaches every endpoint, replies from the node" \
		"10.244.1.1:5353 10.244.1.2:5353 " 100
	probe_ext --count 100 '[fd99:1::1]:30080'
	expect_backends "$dp: NodePort over IPv6 reaches every endpoint" \
		"[fd00:244::1]:8080 [fd00:244::2]:8080 " 100
	probe_ext --count 100 10.99.2.10:80
	expect_backends "$dp: an externalIP reaches every endpoint" "10.244.1.1:8080 10.244.1.2:8080 " 100
	probe_ext --count 100 10.99.2.20:80
	expect_backends "$dp: a LoadBalancer IP admits a source inside loadBalancerSourceRanges" \
		"10.244.1.1:8080 10.244.1.2:8080 " 100

	probe_ext --count 100 10.99.1.1:30081
	expect_backends "$dp: externalTrafficPolicy Local uses this node's endpoints only" \
		"10.244.1.1:8080 " 100
	check "$dp: externalTrafficPolicy Local: the backend sees the client's own address" \
		test "$(probe_sources)" = "10.99.1.2 "
	probe_ext --count 3 --timeout-ms 300 10.99.2.21:80
	expect_dropped "$dp: a LoadBalancer IP blocks a source outside loadBalancerSourceRanges" 3
	check "$dp: the healthCheckNodePort answers 200 while this node has a local endpoint" \
		test "$(http_status "$EXT_NS" 10.99.1.1 32081 /)" = 200

	# Only remote endpoints left: Local drops, the health check says 503.
	sed -i "/10.244.1.1\\]/d; /fd00:244::1\"\\]/d" "$MANIFESTS/local.yaml"
	sleep 1
	probe_ext --count 3 --timeout-ms 300 10.99.1.1:30081
	expect_dropped "$dp: externalTrafficPolicy Local without a local endpoint drops" 3
	check "$dp: the healthCheckNodePort answers 503 without a local endpoint" \
		test "$(http_status "$EXT_NS" 10.99.1.1 32081 /)" = 503

	# A second Service asks for the same healthCheckNodePort: it waits, and
	# gets the port once the first Service is gone.
	write_manifests local2 Local 3 10.99.2.13 10.99.2.23 "192.0.2.0/24" 32081
	sleep 0.5
	rm -f "$MANIFESTS/local.yaml"
	for _ in $(seq 40); do
		[ "$(http_status "$EXT_NS" 10.99.1.1 32081 /)" = 200 ] && break
		sleep 0.05
	done
	check "$dp: a healthCheckNodePort held by another Service is served once it is free" \
		test "$(http_status "$EXT_NS" 10.99.1.1 32081 /)" = 200
	stop_agent
done
exit 0
