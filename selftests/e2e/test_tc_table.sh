#!/bin/bash
# The tc path's connection table is sized by --max-connections (issue 17,
# point 4): two preallocated entries a connection, default 16384 a CPU
# (32768 to 262144), as bpftool shows the pinned map; a new
# size replaces the pinned table at the next start and traffic from outside
# is served with either; a bad value is one line and exit 2. BPF only.
. "$(dirname "$0")/lib.sh"

case " $DATAPATHS " in *" bpf "*) ;; *) skip "the tc connection table" "bpf not tested"; exit 0 ;; esac

e2e_setup || { not_ok "setup"; exit 1; }
setup_outside || { not_ok "setup of the outside namespace"; exit 1; }
start_backends 10.244.1.1:8080
cat >"$MANIFESTS/np.yaml" <<EOT
apiVersion: v1
kind: Service
metadata: {name: np, namespace: default}
spec:
  type: NodePort
  clusterIP: 10.96.0.40
  ports: [{name: http, port: 80, targetPort: 8080, nodePort: 30092}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: np-1, namespace: default, labels: {kubernetes.io/service-name: np}}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints:
- addresses: [10.244.1.1]
EOT

table_size() {
	bpftool map show pinned "$BPFFS/maps/conntrack" 2>/dev/null |
		sed -n 's/.*max_entries \([0-9]*\).*/\1/p'
}
served() {
	probe_ext --count 10 10.99.1.1:30092
	[ "$(probe_value ok)" = 10 ]
}

cpus=$(nproc --all)
default=$((cpus * 16384))
[ "$default" -lt 32768 ] && default=32768
[ "$default" -gt 262144 ] && default=262144
for want in "4096 8192" "default $((2 * default))"; do
	n=${want% *} entries=${want#* }
	args=()
	[ "$n" != default ] && args=(--max-connections="$n")
	start_agent bpf --devices="x$ID,v$ID" "${args[@]}" || { not_ok "agent starts"; continue; }
	check "--max-connections=$n: the table holds $entries entries" test "$(table_size)" = "$entries"
	check "--max-connections=$n: a NodePort is served from outside" served
	stop_agent
done
out=$(in_node "$AGENT" --source="dir:$MANIFESTS" --max-connections=10 2>&1)
check "--max-connections below 1024: exit 2 with one line" \
	test $? = 2 -a "$(grep -c 'max-connections' <<<"$out")" = 1
in_node "$AGENT" --cleanup --bpffs="$BPFFS" --cgroup="$CGROUP" >/dev/null 2>&1
exit 0
