#!/bin/bash
# XDP against tc for traffic from outside (Documentation/xdp.md), measured
# side by side in one run and printed as one table:
#  - per-packet cost with bpf_prog_test_run (bench/tc-cost --xdp): a packet
#    of no Service, a new NodePort flow, an established one, each program
#    against an empty program of its own kind, at 1 and BENCH_XDP_SERVICES;
#  - packets per second of one UDP flow to a NodePort, client -> node ->
#    backend over veth pairs (bench/udp-flood), with tc alone, with XDP
#    generic and with XDP native beside it.
# Setup is the end-to-end kit's (selftests/e2e/lib.sh): private namespaces,
# a child cgroup and a private bpffs, all removed by its EXIT trap.
# Environment: BUILD, BENCH_XDP_SECONDS (each flood, default 3),
# BENCH_XDP_SERVICES (default 10000).
. "$(dirname "$0")/../selftests/e2e/lib.sh"
. "$(dirname "$0")/lib.sh"

SECONDS_EACH=${BENCH_XDP_SECONDS:-3}
SERVICES=${BENCH_XDP_SERVICES:-10000}
FLOOD="$BUILD/bench/udp-flood"
TC_COST="$BUILD/bench/tc-cost"
declare -A R

case "$DATAPATHS" in *bpf*) ;; *) exit 0 ;; esac
if ! command -v ethtool >/dev/null || [ ! -x "$FLOOD" ] || [ ! -x "$TC_COST" ]; then
	echo "# xdp bench: needs ethtool, $FLOOD and $TC_COST" >&2
	exit 0
fi

e2e_setup || { echo "xdp bench: setup failed" >&2; exit 1; }
setup_outside || { echo "xdp bench: setup of the outside namespace failed" >&2; exit 1; }
# As from a wire: complete checksums, and GRO so that native XDP can redirect into a veth.
in_ext ethtool -K "y$ID" tx off gro on >/dev/null 2>&1
in_be ethtool -K "w$ID" tx off gro on >/dev/null 2>&1
in_be ip addr add 10.244.1.1/32 dev lo
cat >"$MANIFESTS/flood.yaml" <<EOT
apiVersion: v1
kind: Service
metadata: {name: flood, namespace: default}
spec:
  type: NodePort
  clusterIP: 10.96.1.60
  ports: [{name: u, port: 9, targetPort: 9000, nodePort: 30900, protocol: UDP}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: flood-1, namespace: default, labels: {kubernetes.io/service-name: flood}}
addressType: IPv4
ports: [{name: u, port: 9000, protocol: UDP}]
endpoints: [{addresses: [10.244.1.1], nodeName: $NODE_NAME}]
EOT

echo "# xdp bench: bpf_prog_test_run, tc and XDP" >&2
"$TC_COST" --xdp 1 "$SERVICES" >"$WORK/cost.out" || echo "# tc-cost --xdp failed" >&2
while read -r k v; do R[$k]=$v; done <"$WORK/cost.out"

# flood MODE: packets a second that reach the backend, the agent's XDP mode MODE.
flood() {
	local mode=$1
	if ! start_agent bpf --devices="x$ID,v$ID" --xdp="$mode"; then
		echo "# xdp bench: the agent did not start with --xdp=$mode" >&2
		return
	fi
	in_be "$FLOOD" sink 9000 "$SECONDS_EACH" >"$WORK/sink.out" 2>&1 &
	local sink=$!
	for _ in $(seq 40); do grep -q ready "$WORK/sink.out" && break; sleep 0.05; done
	in_ext timeout $((SECONDS_EACH + 15)) "$FLOOD" send 10.99.1.1 30900 \
		$((SECONDS_EACH + 1)) >"$WORK/send.out" 2>&1
	wait "$sink"
	R[pps-$mode]=$(awk '$1 == "received" { print $4 }' "$WORK/sink.out")
	R[sent-$mode]=$(awk '$1 == "sent" { printf "%.0f", $2 / ('"$SECONDS_EACH"' + 1) }' \
		"$WORK/send.out")
	stop_agent
	in_node "$AGENT" --cleanup --bpffs="$BPFFS" --cgroup="$CGROUP" >/dev/null 2>&1
}

for mode in off generic native; do
	echo "# xdp bench: UDP flood, --xdp=$mode" >&2
	flood "$mode"
done

row() { printf '%-50s %12s %12s %12s\n' "$@"; }

echo
row "XDP against tc (bpf_prog_test_run, ns)" "tc" "xdp" "xdp/tc"
row "--------------------------------------" "--" "---" "------"
row "empty program, repeat" "${R[tc-empty-repeat]:--}" "${R[xdp-empty-repeat]:--}" \
	"$(ratio "${R[xdp-empty-repeat]:-}" "${R[tc-empty-repeat]:-}")"
row "empty program, one run" "${R[tc-empty-single]:--}" "${R[xdp-empty-single]:--}" \
	"$(ratio "${R[xdp-empty-single]:-}" "${R[tc-empty-single]:-}")"
for n in 1 "$SERVICES"; do
	for c in pass new established; do
		case $c in
		pass) what="no service, repeat" base=empty-repeat ;;
		new) what="new NodePort flow" base=empty-single ;;
		established) what="established flow" base=empty-single ;;
		esac
		[ "$n" = 1 ] && sfx="" || sfx="-again"
		row "$what, $n svc" "${R[tc-$c-$n]:--}" "${R[xdp-$c-$n]:--}" \
			"$(ratio "${R[xdp-$c-$n]:-}" "${R[tc-$c-$n]:-}")"
		row "  / empty program of its kind" \
			"$(ratio "${R[tc-$c-$n]:-}" "${R[tc-$base$sfx]:-}")" \
			"$(ratio "${R[xdp-$c-$n]:-}" "${R[xdp-$base$sfx]:-}")" ""
	done
done
echo
row "UDP flood to a NodePort over veth (pkt/s)" "received" "sent" "/ tc alone"
row "-----------------------------------------" "--------" "----" "----------"
for mode in off generic native; do
	case $mode in off) what="tc alone (--xdp=off)" ;; *) what="XDP $mode beside tc" ;; esac
	row "$what" "${R[pps-$mode]:--}" "${R[sent-$mode]:--}" \
		"$(ratio "${R[pps-$mode]:-}" "${R[pps-off]:-}")"
done
echo "(ns and pkt/s are absolute and noisy: read the ratios; the flood's sender and"
echo " the packet path share this machine's CPUs)"
exit 0
