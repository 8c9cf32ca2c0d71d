#!/bin/bash
# UDP flows leave a removed backend (issue 14, points 1 and 2): a flow that
# keeps sending must not stay on a backend that left the EndpointSlice.
#   1. a connect()ed UDP socket on the node (test cgroup) to a ClusterIP,
#   2. a fixed 5-tuple (fixed source port) from outside through a NodePort.
# Each sends a datagram every 100 ms (selftests/tools/udp-flow); once its
# backend answers, that backend leaves the slice and its server is killed;
# from 2 s after that every datagram must be answered by the live backend.
# nftables: the agent deletes the flows' conntrack entries. bpf: the socket
# path destroys the node's connected socket (skipped where the kernel has
# neither bpf_sock_destroy nor sock_diag destroy), the tc path re-balances.
. "$(dirname "$0")/lib.sh"

UDP_FLOW="$BUILD/selftests/tools/udp-flow"
declare -A SERVER # backend address -> its echo-server's pid

# One echo-server per backend, so that one can be killed.
start_server() {
	start_backends "$1:5353"
	SERVER[$1]=${PIDS[-1]}
}

# The Service (ClusterIP 10.96.0.20:53, NodePort 30090, UDP) with the given endpoints.
write_manifests() {
	local addrs="" a
	for a in "$@"; do
		addrs+="
- {addresses: [\"$a\"], conditions: {ready: true}, nodeName: $NODE_NAME}"
	done
	cat >"$MANIFESTS/dns.yaml.tmp" <<EOT
apiVersion: v1
kind: Service
metadata: {name: dns, namespace: default}
spec:
  type: NodePort
  clusterIP: 10.96.0.20
  ports:
  - {name: dns, port: 53, targetPort: 5353, nodePort: 30090, protocol: UDP}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: dns-v4, namespace: default, labels: {kubernetes.io/service-name: dns}}
addressType: IPv4
ports: [{name: dns, port: 5353, protocol: UDP}]
endpoints:$addrs
EOT
	mv "$MANIFESTS/dns.yaml.tmp" "$MANIFESTS/dns.yaml"
}

# flow NAME OUT RUNNER UDP-FLOW-ARGS...: runs one 4.5 s flow; once its
# backend answered, removes that backend (slice and server); then checks
# that everything answered from 2 s after the removal on came from the
# other, live backend.
flow() {
	local name=$1 out=$2 runner=$3 pid first="" live t_del i
	shift 3
	$runner "$UDP_FLOW" --duration 4.5 --interval-ms 100 --timeout-ms 90 "$@" >"$out" 2>&1 &
	pid=$!
	for i in $(seq 20); do
		first=$(awk '$3 ~ /^10\.244\.1\.[12]:5353$/ { print $3; exit }' "$out")
		[ -n "$first" ] && break
		sleep 0.1
	done
	if [ -z "$first" ]; then
		wait "$pid"
		not_ok "$name (no backend answered)"
		sed 's/^/#   /' "$out"
		return
	fi
	first=${first%:*}
	if [ "$first" = 10.244.1.1 ]; then live=10.244.1.2; else live=10.244.1.1; fi
	write_manifests "$live"
	kill "${SERVER[$first]}"
	t_del=$(date +%s.%N)
	wait "$pid"
	# After t_del + 2 s: at least 10 datagrams, every one answered by the live backend.
	if awk -v t="$t_del" -v live="$live:5353" '
		$2 > t + 2 { n++; if ($3 != live) bad++ }
		END { exit !(n >= 10 && !bad) }' "$out"; then
		ok "$name"
	else
		not_ok "$name (removed $first at $t_del; want only $live:5353 from 2 s later)"
		sed 's/^/#   /' "$out"
	fi
	# Back to two backends for the next flow.
	wait "${SERVER[$first]}" 2>/dev/null
	start_server "$first"
	write_manifests 10.244.1.1 10.244.1.2
	sleep 0.3
}

e2e_setup || { not_ok "setup"; exit 1; }
setup_outside || { not_ok "setup of the outside namespace"; exit 1; }
start_server 10.244.1.1
start_server 10.244.1.2

for dp in $DATAPATHS; do
	rm -f "$MANIFESTS"/*
	write_manifests 10.244.1.1 10.244.1.2
	if ! start_agent "$dp" --devices="x$ID,v$ID"; then
		not_ok "$dp: agent starts"
		continue
	fi
	name="$dp: a connected UDP socket on the node leaves a removed ClusterIP backend within 2 s"
	if [ "$dp" = bpf ] && ! grep -qE "sockets of removed backends \(.*\): destroyed with (bpf_sock_destroy|sock_diag)" "$AGENT_LOG"; then
		skip "$name" "this kernel has neither bpf_sock_destroy nor sock_diag destroy"
	else
		flow "$name" "$WORK/flow-node.out" in_client --connected 10.96.0.20:53
	fi
	name="$dp: a fixed 5-tuple from outside leaves a removed NodePort backend within 2 s"
	if [ "$dp" = bpf ] && ! grep -q "tc udp flows: " "$AGENT_LOG"; then
		not_ok "$name (the agent did not report tc UDP re-balancing)"
	else
		flow "$name" "$WORK/flow-ext.out" in_ext --sport 40053 10.99.1.1:30090
	fi
	if [ "$dp" = nftables ]; then
		check "$dp: the agent logged the conntrack entries it deleted" \
			grep -q "conntrack: deleted [1-9][0-9]* entries" "$AGENT_LOG"
	fi
	stop_agent
done
exit 0
