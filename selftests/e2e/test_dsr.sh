#!/bin/bash
# Direct server return (Documentation/dsr.md) between two node namespaces,
# each with its own agent (own bpffs mount, child cgroup, status directory)
# fed the same manifests: a DSR NodePort Service whose endpoints are all on
# node 2, and both Node objects with their addresses.
#
#   ext-ID (client 10.99.1.2) --+
#   node-ID (node-a, 10.99.1.1) +-- bridge in lan-ID (no other route out)
#   n2-ID (node-b, 10.99.1.3) --+-- be2-ID (pods 10.244.2.1, 10.244.2.2)
#
# The client dials node 1's NodePort (TCP and UDP) and an externalIP that
# node 1 is the route to. BPF: node 1 encapsulates to node 2,
# which delivers, and replies from 10.99.1.1:30080 itself; the client's
# nft counters, by source MAC, show that no reply came from node 1, and
# the backends see the client's own address. nftables: one log line says
# DSR is not supported, and the Service works through node 1 with SNAT.
. "$(dirname "$0")/lib.sh"

LAN_NS="lan-$ID"
N2_NS="n2-$ID"
BE2_NS="be2-$ID"
N2_BPFFS_MNT="$WORK/bpffs2"
N2_BPFFS="$N2_BPFFS_MNT/sluice"
N2_CGROUP="$CGROUP_ROOT/sluice-e2e-$ID-b"
N2_LOG="$WORK/agent2.log"
N2_PID=""
N1_DEV="l1$ID"
N2_DEV="l2$ID"
CONNECTIONS=200
# Two agents load their programs at once beside other jobs: more time to sync.
SYNC_WAIT_STEPS=${SYNC_WAIT_STEPS:-400}

in_lan() { nsenter --net="/run/netns/$LAN_NS" "$@"; }
in_n2() { nsenter --net="/run/netns/$N2_NS" "$@"; }
in_be2() { nsenter --net="/run/netns/$BE2_NS" "$@"; }

n2_teardown() {
	halt_agent N2_PID "$N2_LOG"
	if [ -x "$AGENT" ] && [ -e "/run/netns/$N2_NS" ]; then
		in_n2 "$AGENT" --cleanup --bpffs="$N2_BPFFS" --cgroup="$N2_CGROUP" >/dev/null 2>&1
	fi
	[ -d "$N2_CGROUP" ] && rmdir "$N2_CGROUP" 2>/dev/null
	umount "$N2_BPFFS_MNT" 2>/dev/null
}

# A veth from namespace NS (device DEV, address ADDR/24) to the LAN bridge.
lan_port() {
	local ns=$1 dev=$2 addr=$3
	ip link add "$dev" netns "$ns" type veth peer name "p$dev" netns "$LAN_NS" || return 1
	in_lan ip link set "p$dev" master "br$ID" up
	nsenter --net="/run/netns/$ns" ip link set "$dev" up
	nsenter --net="/run/netns/$ns" ip addr add "$addr/24" dev "$dev"
}

setup_two_nodes() {
	TEARDOWN_HOOKS+=(n2_teardown)
	EXTRA_NS+=("$LAN_NS" "$N2_NS" "$BE2_NS" "$EXT_NS")
	ip netns add "$LAN_NS" && ip netns add "$N2_NS" && ip netns add "$BE2_NS" &&
		ip netns add "$EXT_NS" || return 1
	mkdir -p "$N2_BPFFS_MNT" "$WORK/status2"
	mount -t bpf bpf "$N2_BPFFS_MNT" && mkdir "$N2_CGROUP" || return 1
	in_lan ip link set lo up
	in_lan ip link add "br$ID" type bridge
	in_lan ip link set "br$ID" up
	lan_port "$NODE_NS" "$N1_DEV" 10.99.1.1 && lan_port "$N2_NS" "$N2_DEV" 10.99.1.3 &&
		lan_port "$EXT_NS" "c$ID" 10.99.1.2 || return 1
	in_ext ip link set lo up
	# The externalIP is announced by node 1 (as a load balancer would route it).
	in_ext ip route add 10.99.2.0/24 via 10.99.1.1
	in_n2 ip link set lo up
	in_be2 ip link set lo up
	ip link add "v2$ID" netns "$N2_NS" type veth peer name "w2$ID" netns "$BE2_NS" || return 1
	in_n2 ip link set "v2$ID" up
	in_be2 ip link set "w2$ID" up
	in_n2 ip addr add 10.99.5.1/24 dev "v2$ID"
	in_be2 ip addr add 10.99.5.2/24 dev "w2$ID"
	in_n2 ip route add 10.244.2.0/24 via 10.99.5.2
	in_be2 ip route add 10.99.1.0/24 via 10.99.5.1
	# The underlay routes each node's pods to it (node 1's SNAT path uses it).
	in_node ip route add 10.244.2.0/24 via 10.99.1.3
	in_node sysctl -qw net.ipv4.ip_forward=1
	in_n2 sysctl -qw net.ipv4.ip_forward=1
	# Counted at the client: replies from the NodePort, by the MAC they came from.
	local mac1 mac2
	# (sysfs is the root namespace's under nsenter: ask ip.)
	mac1=$(in_node ip -br link show dev "$N1_DEV" | awk '{ print $3 }')
	mac2=$(in_n2 ip -br link show dev "$N2_DEV" | awk '{ print $3 }')
	in_ext nft -f - <<EOT || return 1
table inet dsrcount {
	counter from_node1 {}
	counter from_node2 {}
	chain in {
		type filter hook input priority 0;
		ip saddr { 10.99.1.1, 10.99.2.10 } th sport { 30080, 30053, 80 } ether saddr $mac1 counter name from_node1
		ip saddr { 10.99.1.1, 10.99.2.10 } th sport { 30080, 30053, 80 } ether saddr $mac2 counter name from_node2
	}
}
EOT
}

replies_from() { in_ext nft list counter inet dsrcount "$1" | awk '$1 == "packets" { print $2 }'; }
dsr_nodes_count() {
	in_node bpftool map dump pinned "$BPFFS/maps/dsr_nodes" -j |
		jq '[.[] | select(.formatted.value.node_addr[0:4] == [10,99,1,3])] | length'
}
reset_counters() { in_ext nft reset counters table inet dsrcount >/dev/null; }

write_manifests() {
	cat >"$MANIFESTS/dsr.yaml" <<EOT
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: default
  annotations: {sluice.io/forwarding-mode: dsr}
spec:
  type: NodePort
  clusterIP: 10.96.7.1
  externalIPs: [10.99.2.10]
  ports:
  - {name: http, port: 80, targetPort: 8080, nodePort: 30080, protocol: TCP}
  - {name: dns, port: 53, targetPort: 5353, nodePort: 30053, protocol: UDP}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-1, namespace: default, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{name: http, port: 8080}, {name: dns, port: 5353, protocol: UDP}]
endpoints:
- {addresses: [10.244.2.1], nodeName: node-b}
- {addresses: [10.244.2.2], nodeName: node-b}
---
apiVersion: v1
kind: Node
metadata: {name: $NODE_NAME}
status: {addresses: [{type: InternalIP, address: 10.99.1.1}]}
---
apiVersion: v1
kind: Node
metadata: {name: node-b}
status: {addresses: [{type: InternalIP, address: 10.99.1.3}]}
EOT
}

e2e_setup || { not_ok "setup"; exit 1; }
setup_two_nodes || { not_ok "setup of the second node, the LAN and the client"; exit 1; }
BE_NS=$BE2_NS start_backends 10.244.2.1:8080 10.244.2.2:8080 10.244.2.1:5353 10.244.2.2:5353
write_manifests

for dp in $DATAPATHS; do
	if ! start_agent "$dp" --devices="$N1_DEV" --metrics-addr= --healthz-addr=; then
		not_ok "$dp: node 1's agent starts"
		continue
	fi
	if ! run_agent N2_PID "$N2_NS" node-b "$N2_CGROUP" "$N2_BPFFS" "$N2_LOG" "$WORK/status2" \
		"$dp" --devices="$N2_DEV" --metrics-addr= --healthz-addr=; then
		not_ok "$dp: node 2's agent starts"
		stop_agent
		continue
	fi
	reset_counters
	probe_ext --count "$CONNECTIONS" 10.99.1.1:30080
	expect_backends "$dp: $CONNECTIONS connections to node 1's NodePort reach node 2's backends" \
		"10.244.2.1:8080 10.244.2.2:8080 " "$CONNECTIONS"
	if [ "$dp" = bpf ]; then
		check "bpf: the backends see the client's own address" \
			test "$(probe_sources)" = "10.99.1.2 "
		from1=$(replies_from from_node1)
		from2=$(replies_from from_node2)
		echo "# replies at the client: $from1 from node 1, $from2 from node 2"
		check "bpf: no reply passes through node 1" test "$from1" = 0
		check "bpf: node 2 sends every connection's replies itself" \
			test "$from2" -ge $((2 * CONNECTIONS))
		reset_counters
		probe_ext --count 50 10.99.2.10:80
		check "bpf: an externalIP: replies from node 2 with the externalIP, the client's address kept" \
			test "$(probe_value ok)" = 50 -a "$(probe_sources)" = "10.99.1.2 " -a \
			"$(replies_from from_node1)" = 0 -a "$(replies_from from_node2)" -ge 100
		reset_counters
		probe_ext --udp --count 50 10.99.1.1:30053
		check "bpf: UDP to the NodePort: every answer from node 2, the client's address kept" \
			test "$(probe_value ok)" = 50 -a "$(probe_sources)" = "10.99.1.2 " -a \
			"$(replies_from from_node1)" = 0 -a "$(replies_from from_node2)" -ge 50
		# SL_CT_F_DSR is 32, SL_CT_F_REPLY 1 (bpf/shared.h).
		in_node bpftool map dump pinned "$BPFFS/maps/conntrack" -j >"$WORK/ct1.json"
		check "bpf: node 1 tracks the flows as DSR, with no reply entry" \
			test "$(jq '[.[] | select(.formatted.value.flags % 64 >= 32)] | length' "$WORK/ct1.json")" \
			-ge "$CONNECTIONS" -a \
			"$(jq '[.[] | select(.formatted.value.flags % 2 == 1)] | length' "$WORK/ct1.json")" = 0
		in_n2 bpftool map dump pinned "$N2_BPFFS/maps/conntrack" -j >"$WORK/ct2.json"
		check "bpf: node 2 remembers the service address for the replies" \
			test "$(jq '[.[] | select(.formatted.value.flags % 64 >= 33)] | length' "$WORK/ct2.json")" \
			-ge "$CONNECTIONS"
		in_node "$SLUICECTL" --bpffs="$BPFFS" --status-dir="$WORK/status" \
			explain default/web >"$WORK/explain.out" 2>&1
		check "bpf: sluicectl explain shows the forwarding mode and the backends' node" \
			grep -q "Forwarding:      dsr (sluice.io/forwarding-mode): 2 of 2" \
			"$WORK/explain.out"
		grep -q "10.244.2.1:8080 on node 10.99.1.3" "$WORK/explain.out" ||
			not_ok "bpf: explain names node 2 for 10.244.2.1"
		[ -n "${E2E_SHOW:-}" ] && sed 's/^/# /' "$WORK/explain.out"
		in_node "$SLUICECTL" --bpffs="$BPFFS" services >"$WORK/services.out" 2>&1
		[ -n "${E2E_SHOW:-}" ] && sed "s/^/# /" "$WORK/services.out"
		check "bpf: sluicectl services marks the NodePort forwarding=dsr" \
			grep -q "^0.0.0.0:30080/tcp .* forwarding=dsr backends=2" "$WORK/services.out"
		check "bpf: dsr_nodes holds both backends, with node 2's address" \
			test "$(dsr_nodes_count)" = 2
		# A restarted agent adopts the pins: dsr_nodes stays, DSR goes on.
		stop_agent
		if start_agent "$dp" --devices="$N1_DEV" --metrics-addr= --healthz-addr=; then
			reset_counters
			probe_ext --count 20 10.99.1.1:30080
			check "bpf: after node 1's agent restarts, flows still skip node 1" \
				test "$(probe_value ok)" = 20 -a "$(dsr_nodes_count)" = 2 -a \
				"$(replies_from from_node1)" = 0 -a "$(replies_from from_node2)" -ge 40
		else
			not_ok "bpf: node 1's agent starts again"
		fi
		# snat: the backends' entries go, and new connections come through node 1.
		sed -i 's/forwarding-mode: dsr/forwarding-mode: snat/' "$MANIFESTS/dsr.yaml"
		within test "$(dsr_nodes_count)" = 0
		check "bpf: sluice.io/forwarding-mode snat: dsr_nodes is emptied" \
			test "$(dsr_nodes_count)" = 0
		reset_counters
		probe_ext --count 20 10.99.1.1:30080
		check "bpf: forwarding mode snat: the backends see node 1 and replies pass it" \
			test "$(probe_value ok)" = 20 -a "$(probe_sources)" = "10.99.1.1 " -a \
			"$(replies_from from_node2)" = 0
		sed -i 's/forwarding-mode: snat/forwarding-mode: dsr/' "$MANIFESTS/dsr.yaml"
	else
		check "nftables: one log line says DSR is not supported, SNAT instead" \
			test "$(grep -c "Service default/web: forwarding mode dsr is not supported by the nftables datapath" "$AGENT_LOG")" = 1
		check "nftables: the backends see node 1's address (SNAT)" \
			test "$(probe_sources)" = "10.99.1.1 "
		check "nftables: the replies come back through node 1" \
			test "$(replies_from from_node2)" = 0 -a "$(replies_from from_node1)" -gt 0
	fi
	halt_agent N2_PID "$N2_LOG"
	stop_agent
	# The next datapath starts from a clean kernel on both nodes.
	in_n2 "$AGENT" --cleanup --bpffs="$N2_BPFFS" --cgroup="$N2_CGROUP" >/dev/null 2>&1
	in_node "$AGENT" --cleanup --bpffs="$BPFFS" --cgroup="$CGROUP" >/dev/null 2>&1
done
exit 0
