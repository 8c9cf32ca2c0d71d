#!/bin/bash
# kube-proxy's corner rules, end to end on both datapaths, with a client
# outside the node (ext-ID):
#  - loadBalancerSourceRanges and externalTrafficPolicy on each kind of
#    external address: the ranges hold for LB IPs only (as kube-proxy), ETP
#    Local holds NodePorts, externalIPs and LB IPs to this node's endpoints,
#    and drops when it has none;
#  - a LoadBalancer ingress with ipMode Proxy is not captured, VIP or none is;
#  - one Service over several EndpointSlices: an address in two slices is
#    one endpoint, FQDN slices add none, an endpoint's first address counts;
#  - --nodeport-addresses: the node has two addresses, NodePorts answer on
#    the chosen one only (default primary: the Node's InternalIP).
. "$(dirname "$0")/lib.sh"

EP="10.244.1.1:8080 10.244.1.2:8080 "
LOCAL_EP="10.244.1.1:8080 "

# ext_service NAME IDX POLICY RANGES INGRESS ENDPOINTS...: a LoadBalancer
# Service 10.96.3.IDX, NodePort 301IDX, externalIP 10.99.2.5IDX, ingress as given.
ext_service() {
	local name=$1 idx=$2 policy=$3 ranges=$4 ingress=$5 eps="" ep
	shift 5
	for ep in "$@"; do # ADDR@NODE
		eps+="- {addresses: [${ep%@*}], nodeName: ${ep#*@}}"$'\n'
	done
	cat >"$MANIFESTS/$name.yaml" <<EOT
apiVersion: v1
kind: Service
metadata: {name: $name, namespace: default}
spec:
  type: LoadBalancer
  clusterIP: 10.96.3.$idx
  externalTrafficPolicy: $policy
  externalIPs: [10.99.2.5$idx]
  loadBalancerSourceRanges: [$ranges]
  ports: [{name: http, port: 80, targetPort: 8080, nodePort: 3010$idx, protocol: TCP}]
status:
  loadBalancer: {ingress: [$ingress]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: $name-1, namespace: default, labels: {kubernetes.io/service-name: $name}}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints:
$eps
EOT
}

write_manifests() {
	rm -f "$MANIFESTS"/*
	cat >"$MANIFESTS/node.yaml" <<EOT
apiVersion: v1
kind: Node
metadata: {name: $NODE_NAME}
status:
  addresses:
  - {type: Hostname, address: $NODE_NAME}
  - {type: InternalIP, address: 10.99.1.1}
EOT
	# Source ranges that leave the client (10.99.1.2) out.
	ext_service open 1 Cluster 192.0.2.0/24 "{ip: 10.99.2.61}" \
		10.244.1.1@"$NODE_NAME" 10.244.1.2@node-b
	ext_service local 2 Local "" "{ip: 10.99.2.62}" 10.244.1.1@"$NODE_NAME" 10.244.1.2@node-b
	ext_service remote 3 Local "" "{ip: 10.99.2.63}" 10.244.1.2@node-b
	ext_service modes 4 Cluster "" \
		"{ip: 10.99.2.64, ipMode: Proxy}, {ip: 10.99.2.65, ipMode: VIP}, {ip: 10.99.2.66}" \
		10.244.1.1@"$NODE_NAME"
	# Several slices: 10.244.1.2 twice, an FQDN slice, a second address never used.
	cat >"$MANIFESTS/spread.yaml" <<EOT
apiVersion: v1
kind: Service
metadata: {name: spread, namespace: default}
spec:
  clusterIP: 10.96.3.9
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: spread-a, namespace: default, labels: {kubernetes.io/service-name: spread}}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints:
- {addresses: [10.244.1.1]}
- {addresses: [10.244.1.2]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: spread-b, namespace: default, labels: {kubernetes.io/service-name: spread}}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints:
- {addresses: [10.244.1.2]}
- {addresses: [10.244.1.3, 10.244.1.9]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: spread-c, namespace: default, labels: {kubernetes.io/service-name: spread}}
addressType: FQDN
ports: [{name: http, port: 8080}]
endpoints:
- {addresses: [db.example.com]}
EOT
}

# backend_count ADDR:PORT: answers from that backend in the last probe.
backend_count() { awk -v b="$1" '$1 == "backend" && $2 == b { n = $3 } END { print n + 0 }' "$WORK/probe.out"; }

# no_answer NAME: the last probe got no answer from a backend.
no_answer() {
	if [ "$(probe_value ok)" = 0 ]; then ok "$1"; else not_ok "$1" && probe_dump; fi
}

e2e_setup || { not_ok "setup"; exit 1; }
setup_outside || { not_ok "setup of the outside namespace"; exit 1; }
# The node's second address, on the same link as the client.
in_node ip addr add 10.99.1.5/24 dev "x$ID"
# As a real node routes on (default route), this one routes the external
# addresses into the backend namespace, where decoys answer what escapes
# translation: a drop must be the datapath's, not a missing route's.
in_node ip route add 10.99.2.0/24 via 10.99.0.2
start_backends 10.244.1.1:8080 10.244.1.2:8080 10.244.1.3:8080 10.244.1.9:8080 \
	10.99.2.53:80 10.99.2.63:80 10.99.2.64:80

for dp in $DATAPATHS; do
	write_manifests
	if ! start_agent "$dp" --devices="x$ID,v$ID"; then
		not_ok "$dp: agent starts"
		continue
	fi

	# loadBalancerSourceRanges: LB IPs only.
	probe_ext --count 3 --timeout-ms 300 10.99.2.61:80
	expect_dropped "$dp: source ranges: a LB IP drops a source outside them" 3
	probe_ext --count 60 10.99.1.1:30101
	expect_backends "$dp: source ranges: the NodePort is not filtered (as kube-proxy)" "$EP" 60
	probe_ext --count 60 10.99.2.51:80
	expect_backends "$dp: source ranges: an externalIP is not filtered (as kube-proxy)" "$EP" 60

	# externalTrafficPolicy Local on every kind: this node's endpoints, the client's address.
	for fe in 10.99.1.1:30102 10.99.2.52:80 10.99.2.62:80; do
		probe_ext --count 40 "$fe"
		expect_backends "$dp: ETP Local: $fe reaches this node's endpoint only" "$LOCAL_EP" 40
		check "$dp: ETP Local: $fe keeps the client's address" \
			test "$(probe_sources)" = "10.99.1.2 "
	done
	for fe in 10.99.1.1:30103 10.99.2.53:80 10.99.2.63:80; do
		probe_ext --count 3 --timeout-ms 300 "$fe"
		expect_dropped "$dp: ETP Local: $fe drops without a local endpoint" 3
	done

	# ipMode.
	probe_ext --count 20 10.99.2.64:80
	expect_backends "$dp: a LB ingress with ipMode Proxy is not captured on the node" \
		"10.99.2.64:80 " 20
	probe_ext --count 30 10.99.2.65:80
	expect_backends "$dp: a LB ingress with ipMode VIP is captured" "$LOCAL_EP" 30
	probe_ext --count 30 10.99.2.66:80
	expect_backends "$dp: a LB ingress without ipMode is captured" "$LOCAL_EP" 30

	# Several slices: three endpoints, each about a third of the traffic.
	probe --count 600 10.96.3.9:80
	expect_backends "$dp: several slices: the deduplicated endpoints, first addresses only" \
		"10.244.1.1:8080 10.244.1.2:8080 10.244.1.3:8080 " 600
	check "$dp: several slices: an address in two slices gets a third of the flows, not a half" \
		test "$(backend_count 10.244.1.2:8080)" -lt 260 -a \
		"$(backend_count 10.244.1.1:8080)" -gt 140 -a "$(backend_count 10.244.1.3:8080)" -gt 140

	# --nodeport-addresses, default primary: the Node's InternalIP only.
	probe_ext --count 3 --timeout-ms 300 10.99.1.5:30101
	no_answer "$dp: default primary: a NodePort does not answer on another node address"
	check "$dp: default primary: the agent says where NodePorts answer" \
		grep -q "NodePorts answer on 10.99.1.1/32,all IPv6" "$AGENT_LOG"
	# The Node's InternalIP changes: NodePorts follow it.
	sed "s/10.99.1.1}/10.99.1.5}/" "$MANIFESTS/node.yaml" >"$WORK/node.yaml"
	mv "$WORK/node.yaml" "$MANIFESTS/node.yaml"
	sleep 1
	probe_ext --count 40 10.99.1.5:30101
	expect_backends "$dp: default primary: NodePorts follow the Node's new InternalIP" "$EP" 40
	probe_ext --count 3 --timeout-ms 300 10.99.1.1:30101
	no_answer "$dp: default primary: not on the old one"
	stop_agent

	if ! start_agent "$dp" --devices="x$ID,v$ID" --nodeport-addresses=10.99.1.4/30; then
		not_ok "$dp: agent starts with --nodeport-addresses"
		continue
	fi
	probe_ext --count 40 10.99.1.5:30101
	expect_backends "$dp: --nodeport-addresses=CIDR: a NodePort answers on an address inside" \
		"$EP" 40
	probe_ext --count 3 --timeout-ms 300 10.99.1.1:30101
	no_answer "$dp: --nodeport-addresses=CIDR: no NodePort on an address outside"
	probe_ext --count 20 10.99.2.51:80
	expect_backends "$dp: --nodeport-addresses leaves externalIPs alone" "$EP" 20
	stop_agent
done

# A bad value: one clear line, exit 2.
in_node "$AGENT" --source="dir:$MANIFESTS" --nodeport-addresses=10.0.0.0/8,nope \
	>"$WORK/bad.log" 2>&1
rc=$?
check "an invalid --nodeport-addresses exits 2 with one line naming the flag" \
	test "$rc" = 2 -a "$(grep -c 'nodeport-addresses' "$WORK/bad.log")" = 1
exit 0
