#!/bin/bash
# SCTP Services end to end, on both datapaths: a ClusterIP dialled from the
# node (socket path on BPF, DNAT on nftables) and a NodePort dialled from
# outside (tc path on BPF), each SCTP association answered by one of the
# endpoints and only by them; a port without endpoints is refused (ClusterIP).
# Where the running kernel has no SCTP (CONFIG_IP_SCTP off, no module) every
# check reports SKIP, never passed.
. "$(dirname "$0")/lib.sh"

# SCTP in this kernel: built in, or a module that loads.
have_sctp() {
	[ -d /proc/sys/net/sctp ] && return 0
	modprobe -q sctp 2>/dev/null && [ -d /proc/sys/net/sctp ]
}
if ! have_sctp; then
	for dp in $DATAPATHS; do
		skip "$dp: SCTP ClusterIP and NodePort" "the kernel has no SCTP ($(uname -r))"
	done
	exit 0
fi

write_manifests() {
	cat >"$MANIFESTS/sig.yaml" <<EOT
apiVersion: v1
kind: Service
metadata: {name: sig, namespace: default}
spec:
  type: NodePort
  clusterIP: 10.96.3.10
  ports:
  - {name: sig, port: 3868, targetPort: 3869, nodePort: 30868, protocol: SCTP}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: sig-v4, namespace: default, labels: {kubernetes.io/service-name: sig}}
addressType: IPv4
ports: [{name: sig, port: 3869, protocol: SCTP}]
endpoints:
- {addresses: [10.244.1.1], nodeName: $NODE_NAME}
- {addresses: [10.244.1.2], nodeName: $NODE_NAME}
---
apiVersion: v1
kind: Service
metadata: {name: sig-empty, namespace: default}
spec:
  clusterIP: 10.96.3.11
  ports:
  - {name: sig, port: 3868, protocol: SCTP}
EOT
}

e2e_setup || { not_ok "setup"; exit 1; }
setup_outside || { not_ok "setup of the outside namespace"; exit 1; }
# Endpoints, and decoys on the ClusterIPs that answer what escaped translation.
start_backends --sctp 10.244.1.1:3869 10.244.1.2:3869 10.96.3.10:3868 10.96.3.11:3868

for dp in $DATAPATHS; do
	rm -f "$MANIFESTS"/*
	write_manifests
	if ! start_agent "$dp" --devices="x$ID,v$ID" --nodeport-addresses=0.0.0.0/0; then
		not_ok "$dp: agent starts"
		continue
	fi
	probe --sctp --count 50 10.96.3.10:3868
	expect_backends "$dp: SCTP ClusterIP from the node reaches every endpoint and only them" \
		"10.244.1.1:3869 10.244.1.2:3869 " 50
	probe --sctp --count 10 10.96.3.11:3868
	expect_refused "$dp: SCTP to a ClusterIP port without endpoints is refused" 10
	probe_ext --sctp --count 50 10.99.1.1:30868
	expect_backends "$dp: SCTP NodePort from outside reaches every endpoint" \
		"10.244.1.1:3869 10.244.1.2:3869 " 50
	stop_agent
done
exit 0
