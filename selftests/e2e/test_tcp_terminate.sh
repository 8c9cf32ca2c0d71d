#!/bin/bash
# --removed-backend-tcp=terminate (issue 14, point 1: the choice for TCP):
# a TCP connection whose backend leaves the slice, its pod still alive, is
# ended within 2 s, from the node (socket path: the socket is destroyed;
# nftables: its conntrack entry goes and the next segment meets another
# backend's reset) and from outside through a NodePort (tc path or
# nftables); new connections go to the remaining endpoint. The default,
# keep (kube-proxy's), is test_long_flows.sh: the same connections hold.
. "$(dirname "$0")/lib.sh"

HOLD_SECONDS=6


write_service() {
	cat >"$MANIFESTS/term.yaml" <<EOT
apiVersion: v1
kind: Service
metadata: {name: term, namespace: default}
spec:
  type: NodePort
  clusterIP: 10.96.0.30
  ports:
  - {name: tcp, port: 80, targetPort: 8080, nodePort: 30091, protocol: TCP}
EOT
}

write_slice() {
	cat >"$MANIFESTS/.term-slice.yaml.tmp" <<EOT
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: term-v4, namespace: default, labels: {kubernetes.io/service-name: term}}
addressType: IPv4
ports: [{name: tcp, port: 8080, protocol: TCP}]
endpoints:
- {addresses: [$1], nodeName: $NODE_NAME, conditions: {ready: true}}
EOT
	mv "$MANIFESTS/.term-slice.yaml.tmp" "$MANIFESTS/term-slice.yaml"
}

# expect_ended NAME FILE: the hold broke, and within 2 s of the change (at 1.5 s).
expect_ended() {
	local name=$1 f=$2 broken rounds
	broken=$(awk '$1 == "broken" { print $2 }' "$f")
	rounds=$(awk '$1 == "rounds" { print $2 }' "$f")
	if [ "$broken" = 1 ] && [ -n "$rounds" ] && [ "$rounds" -le 35 ]; then
		ok "$name (ended after $rounds round trips of 100 ms)"
	else
		not_ok "$name"
		grep -v '^round .* ok$' "$f" | sed 's/^/#   /'
	fi
}

e2e_setup || { not_ok "setup"; exit 1; }
setup_outside || { not_ok "setup of the outside namespace"; exit 1; }
start_backends --echo 10.244.1.1:8080 10.244.1.2:8080 10.96.0.30:80

# bpf twice: the socket iterator (bpf_sock_destroy), then the sock_diag fallback.
variants=""
for dp in $DATAPATHS; do
	variants+=" $dp"
	[ "$dp" = bpf ] && variants+=" bpf:sock_diag"
done
for variant in $variants; do
	dp=${variant%%:*}
	destroy=${variant#*:}
	[ "$destroy" = "$variant" ] && destroy=""
	rm -f "$MANIFESTS"/*
	write_service
	write_slice 10.244.1.1
	if ! SLUICE_SOCK_DESTROY=$destroy start_agent "$dp" --devices="x$ID,v$ID" \
		--removed-backend-tcp=terminate; then
		not_ok "$variant: agent starts"
		continue
	fi
	dp=$variant
	in_client "$PROBE" --hold "$HOLD_SECONDS" --interval-ms 100 --timeout-ms 3000 \
		10.96.0.30:80 >"$WORK/term-cluster.out" 2>&1 &
	hold_cluster=$!
	in_ext "$PROBE" --hold "$HOLD_SECONDS" --interval-ms 100 --timeout-ms 3000 \
		10.99.1.1:30091 >"$WORK/term-nodeport.out" 2>&1 &
	hold_nodeport=$!
	sleep 1.5
	# The backend leaves the slice; its pod (the server) keeps running.
	write_slice 10.244.1.2
	wait "$hold_cluster" "$hold_nodeport"
	expect_ended "$dp: a ClusterIP connection from the node to the removed backend is ended" \
		"$WORK/term-cluster.out"
	expect_ended "$dp: a NodePort connection from outside to the removed backend is ended" \
		"$WORK/term-nodeport.out"
	if [ "${dp%%:*}" = bpf ]; then
		check "$dp: the agent destroyed the node's socket to the removed backend" \
			grep -q "tcp sockets: 1 connected to removed backends destroyed" "$AGENT_LOG"
	fi
	probe --count 20 10.96.0.30:80
	expect_backends "$dp: new connections go to the remaining endpoint" "10.244.1.2:8080 " 20
	stop_agent
	in_node "$AGENT" --cleanup --bpffs="$BPFFS" --cgroup="$CGROUP" >/dev/null 2>&1
done
exit 0
