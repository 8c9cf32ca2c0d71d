#!/bin/bash
# Maglev consistent hashing end to end (sluice.io/lb-algorithm: maglev): a
# client outside the node dials a NodePort from fixed source ports, many
# flows, and the backend of every flow is recorded. The same flows get the
# same backends again, after an agent restart, from a fresh agent with no
# pinned state, and from a second node running its own agent on the same
# manifests; removing one backend moves only the flows that were on it
# (and at most 1% of the others). Both datapaths (their hashes differ, so
# each is compared with itself: Documentation/maglev.md).
. "$(dirname "$0")/lib.sh"

FLOWS=300
FIRST_PORT=20000
BACKENDS="10.244.3.1 10.244.3.2 10.244.3.3 10.244.3.4 10.244.3.5"

# write_manifests ADDR...: Service maglev/web, NodePort 30090, on these endpoints.
write_manifests() {
	local a
	cat >"$MANIFESTS/web.yaml" <<EOT
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: maglev
  annotations: {sluice.io/lb-algorithm: maglev}
spec:
  type: NodePort
  clusterIPs: [10.96.3.10, "fd00:96::310"]
  ipFamilies: [IPv4, IPv6]
  ports: [{name: http, port: 80, targetPort: 8080, nodePort: 30090, protocol: TCP}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-v6, namespace: maglev, labels: {kubernetes.io/service-name: web}}
addressType: IPv6
ports: [{name: http, port: 8080}]
endpoints:
- addresses: ["fd00:244::31"]
- addresses: ["fd00:244::32"]
- addresses: ["fd00:244::33"]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-1, namespace: maglev, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints:
EOT
	for a in "$@"; do echo "- addresses: [$a]" >>"$MANIFESTS/web.yaml"; done
}

# dial FILE [NS ADDR]: the flows from ports FIRST_PORT.. to a NodePort
# (the node's by default); "PORT BACKEND" per answered flow into FILE.
dial() {
	local ns=${2:-$EXT_NS} addr=${3:-10.99.1.1}
	nsenter --net="/run/netns/$ns" "$PROBE" --source-port "$FIRST_PORT" --count "$FLOWS" \
		--timeout-ms 2000 "$addr:30090" >"$WORK/probe.out" 2>&1
	awk '$1 == "flow" { print $2, $3 }' "$WORK/probe.out" | sort -n >"$1"
	# nftables: the flows' conntrack entries (CLOSE after the reset, 1 s
	# here) must be gone, or the next SYN of a tuple reuses their DNAT.
	[ "$dp" = nftables ] && sleep 1.2
	return 0
}

# Conntrack keeps a reset connection for 1 s, not 10, in the node namespaces.
short_close() { nsenter --net="/run/netns/$1" sysctl -qw net.netfilter.nf_conntrack_tcp_timeout_close=1; }

# same_flows NAME A B: every flow of A answered, by the backend it had in B.
same_flows() {
	local moved
	if [ "$(wc -l <"$2")" != "$FLOWS" ]; then
		not_ok "$1 ($(wc -l <"$2") of $FLOWS flows answered)"
		probe_dump | grep -v '^#   flow' | head -20
		return
	fi
	moved=$(join "$2" "$3" | awk '$2 != $3' | wc -l)
	if [ "$moved" = 0 ]; then ok "$1"; else
		not_ok "$1 ($moved of $FLOWS flows changed backend)"
		join "$2" "$3" | awk '$2 != $3' | head -5 | sed 's/^/#   /'
	fi
}

# The second node, node-b: its own namespace, a link to the backends and
# one to the client, which reaches it from the same address 10.99.1.2 (an
# ECMP router in front of two nodes would hand it the same packets).
NODE_B_NS="nodeb-$ID"
BPFFS_B="$BPFFS_MNT/sluice-b"
CGROUP_B="$CGROUP_ROOT/sluice-e2e-$ID-b"
AGENT_B_PID=""
in_node_b() { nsenter --net="/run/netns/$NODE_B_NS" "$@"; }
setup_node_b() {
	[[ " ${EXTRA_NS[*]} " == *" $NODE_B_NS "* ]] || EXTRA_NS+=("$NODE_B_NS")
	ip netns add "$NODE_B_NS" || return 1
	ip link add "p$ID" netns "$NODE_B_NS" type veth peer name "q$ID" netns "$BE_NS" || return 1
	ip link add "r$ID" netns "$NODE_B_NS" type veth peer name "s$ID" netns "$EXT_NS" || return 1
	in_node_b ip link set lo up
	in_node_b ip link set "p$ID" up
	in_node_b ip link set "r$ID" up
	in_be ip link set "q$ID" up
	in_ext ip link set "s$ID" up
	in_node_b ip addr add 10.98.0.1/24 dev "p$ID"
	in_be ip addr add 10.98.0.2/24 dev "q$ID"
	in_node_b ip addr add 10.98.1.1/24 dev "r$ID"
	in_node_b ip route add 10.244.0.0/14 via 10.98.0.2
	in_node_b ip route add 10.99.1.2/32 dev "r$ID"
	in_ext ip route add 10.98.1.1/32 dev "s$ID" src 10.99.1.2
	in_node_b sysctl -qw net.ipv4.ip_forward=1
	mkdir -p "$CGROUP_B"
}
start_agent_b() {
	run_agent AGENT_B_PID "$NODE_B_NS" node-b "$CGROUP_B" "$BPFFS_B" "$WORK/agent-b.log" \
		"$WORK/status-b" "$1" --devices="p$ID,r$ID" --metrics-addr= --healthz-addr= || return 1
	[ "$1" = bpf ] || short_close "$NODE_B_NS"
}
stop_node_b() {
	halt_agent AGENT_B_PID "$WORK/agent-b.log"
	[ -d "/run/netns/$NODE_B_NS" ] &&
		in_node_b "$AGENT" --cleanup --bpffs="$BPFFS_B" --cgroup="$CGROUP_B" >/dev/null 2>&1
	[ -d "$CGROUP_B" ] && rmdir "$CGROUP_B" 2>/dev/null
	# Its links to the backends and the client go with it.
	ip netns del "$NODE_B_NS" 2>/dev/null
	return 0
}

e2e_setup || { not_ok "setup"; exit 1; }
# node-b's agent and cgroup go first, also on failure; then lib.sh's teardown.
TEARDOWN_HOOKS+=(stop_node_b)
setup_outside || { not_ok "setup of the outside namespace"; exit 1; }
start_backends $(for a in $BACKENDS; do echo "$a:8080"; done) \
	[fd00:244::31]:8080 [fd00:244::32]:8080 [fd00:244::33]:8080

# A Service with a wrong value: one line naming it, served with the default.
write_odd() {
	cat >"$MANIFESTS/odd.yaml" <<EOT
apiVersion: v1
kind: Service
metadata:
  name: odd
  namespace: maglev
  annotations: {sluice.io/lb-algorithm: round-robin}
spec:
  type: NodePort
  clusterIP: 10.96.3.11
  ports: [{name: http, port: 80, targetPort: 8080, nodePort: 30091, protocol: TCP}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: odd-1, namespace: maglev, labels: {kubernetes.io/service-name: odd}}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints:
- addresses: [10.244.3.1]
EOT
}

for dp in $DATAPATHS; do
	rm -f "$MANIFESTS"/*
	write_manifests $BACKENDS
	write_odd
	if ! start_agent "$dp" --devices="x$ID,v$ID"; then
		not_ok "$dp: agent starts"
		continue
	fi
	check "$dp: a wrong sluice.io/lb-algorithm: one log line naming the Service" \
		test "$(grep -c 'Service maglev/odd: sluice.io/lb-algorithm: unknown value "round-robin"' "$AGENT_LOG")" = 1
	probe_ext --count 3 10.99.1.1:30091
	check "$dp: ... and the Service is served with the default" test "$(probe_value ok)" = 3
	[ "$dp" = nftables ] && short_close "$NODE_NS"
	if [ "$dp" = nftables ]; then
		check "$dp: no log line says Maglev is missing" \
			test "$(grep -c 'maglev is not available' "$AGENT_LOG")" = 0
		in_node nft list chain inet sluice fe-nodeport4-tcp-30090 >"$WORK/chain" 2>&1
		check "$dp: nft shows the NodePort's jhash into a map of 16381 buckets" \
			grep -q 'dnat ip to jhash ip saddr . tcp sport mod 16381 seed 0x51ce5eed map' "$WORK/chain"
	else
		in_node "$SLUICECTL" --bpffs="$BPFFS" services >"$WORK/services" 2>&1
		check "$dp: sluicectl services shows the NodePort's Maglev table" \
			grep -q '0.0.0.0:30090/tcp .*maglev/web .* lb=maglev table=16381' "$WORK/services"
	fi
	"$SLUICECTL" explain maglev/web >"$WORK/explain" 2>&1
	check "$dp: sluicectl explain names the algorithm and where it came from" \
		grep -q '^Load balancing:    maglev (sluice.io/lb-algorithm)' "$WORK/explain"

	dial "$WORK/first"
	spread=$(awk '{ n[$2]++ } END { for (b in n) print n[b] }' "$WORK/first" | sort -n | tr '\n' ' ')
	check "$dp: $FLOWS flows from fixed ports spread over all 5 backends ($spread)" \
		test "$(awk '{ print $2 }' "$WORK/first" | sort -u | wc -l)" = 5
	dial "$WORK/again"
	same_flows "$dp: the same flows again get the same backends" "$WORK/again" "$WORK/first"
	dial "$WORK/first6" "$EXT_NS" '[fd99:1::1]'
	check "$dp: IPv6: the flows spread over all 3 backends" \
		test "$(awk '{ print $2 }' "$WORK/first6" | sort -u | wc -l)" = 3
	dial "$WORK/again6" "$EXT_NS" '[fd99:1::1]'
	same_flows "$dp: IPv6: the same flows again get the same backends" "$WORK/again6" \
		"$WORK/first6"

	stop_agent
	start_agent "$dp" --devices="x$ID,v$ID" || not_ok "$dp: agent restarts"
	dial "$WORK/restarted"
	same_flows "$dp: after an agent restart every flow gets the same backend" \
		"$WORK/restarted" "$WORK/first"
	dial "$WORK/restarted6" "$EXT_NS" '[fd99:1::1]'
	same_flows "$dp: IPv6: after an agent restart every flow gets the same backend" \
		"$WORK/restarted6" "$WORK/first6"

	stop_agent
	in_node "$AGENT" --cleanup --bpffs="$BPFFS" --cgroup="$CGROUP" >/dev/null 2>&1
	start_agent "$dp" --devices="x$ID,v$ID" || not_ok "$dp: a fresh agent starts"
	dial "$WORK/fresh"
	same_flows "$dp: a fresh agent (no pinned state, new set ids) gives every flow the same backend" \
		"$WORK/fresh" "$WORK/first"

	if setup_node_b && start_agent_b "$dp"; then
		dial "$WORK/node-b" "$EXT_NS" 10.98.1.1
		same_flows "$dp: a second node with its own agent gives every flow the same backend" \
			"$WORK/node-b" "$WORK/first"
	else
		not_ok "$dp: the second node and its agent start"
	fi

	# One backend leaves: its flows move, the others' stay (1% of them may move).
	write_manifests 10.244.3.1 10.244.3.2 10.244.3.4 10.244.3.5
	sleep 1
	dial "$WORK/removed"
	on_gone=$(awk '$2 == "10.244.3.3:8080"' "$WORK/first" | wc -l)
	others=$((FLOWS - on_gone))
	moved=$(join "$WORK/removed" "$WORK/first" | awk '$3 != "10.244.3.3:8080" && $2 != $3' | wc -l)
	check "$dp: removing a backend: all $FLOWS flows answered, none by it" \
		test "$(wc -l <"$WORK/removed")" = "$FLOWS" -a \
		"$(awk '$2 == "10.244.3.3:8080"' "$WORK/removed" | wc -l)" = 0
	check "$dp: ... of the $others flows on other backends $moved moved (at most 1%)" \
		test $((moved * 100)) -le "$others"
	if [ -n "$AGENT_B_PID" ]; then
		dial "$WORK/removed-b" "$EXT_NS" 10.98.1.1
		same_flows "$dp: ... and node-b agrees on every flow" "$WORK/removed-b" "$WORK/removed"
	fi
	stop_node_b
	stop_agent

	# --maglev-table-size: another prime is used; anything else stops the agent at once.
	# (Four tables of 65521 entries to build and write: up to 20 s for the sync.)
	SYNC_WAIT_STEPS=400 start_agent "$dp" --devices="x$ID,v$ID" --maglev-table-size=65521 ||
		not_ok "$dp: agent starts with --maglev-table-size=65521"
	if [ "$dp" = nftables ]; then
		in_node nft list chain inet sluice fe-nodeport4-tcp-30090 >"$WORK/services" 2>&1
		want='jhash ip saddr . tcp sport mod 65521 seed'
	else
		in_node "$SLUICECTL" --bpffs="$BPFFS" services >"$WORK/services" 2>&1
		want='lb=maglev table=65521'
	fi
	check "$dp: --maglev-table-size=65521: the table has 65521 entries" \
		grep -q "$want" "$WORK/services"
	dial "$WORK/big"
	check "$dp: ... and every flow is answered" test "$(wc -l <"$WORK/big")" = "$FLOWS"
	stop_agent
	in_node "$AGENT" --source="dir:$MANIFESTS" --maglev-table-size=16383 --once \
		>"$WORK/bad.log" 2>&1
	check "$dp: --maglev-table-size=16383 (not a prime) is refused with one clear line" \
		grep -q 'maglev-table-size: "16383" is not a prime from 251 to 131071' "$WORK/bad.log"
done
exit 0
