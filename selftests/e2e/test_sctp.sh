#!/bin/bash
# SCTP Services end to end, on both datapaths: a ClusterIP dialled from the
# node (BPF: the tc path on egress, SCTP's connect() runs no socket hook;
# nftables: DNAT) and a NodePort dialled from outside, each SCTP
# association answered by one of the endpoints and only by them. A port
# without endpoints is answered with ICMP port unreachable, as kube-proxy's
# REJECT does; an SCTP client ignores it (RFC 4960 appendix C, ICMP3) and
# times out, on either datapath alike. Where the running kernel has no SCTP
# (CONFIG_IP_SCTP off, no module) every check reports SKIP, never passed.
# Timeouts of 4 s: a lost INIT is sent again after SCTP's initial RTO of 3 s.
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

# ICMP destination unreachables the node has received.
unreachs() {
	in_node awk '$1 == "Icmp:" && !h { for (i = 1; i <= NF; i++) c[$i] = i; h = 1; next }
		$1 == "Icmp:" { print $c["InDestUnreachs"] }' /proc/net/snmp
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
	probe --sctp --count 50 --timeout-ms 4000 --log-failures 10.96.3.10:3868
	expect_backends "$dp: SCTP ClusterIP from the node reaches every endpoint and only them" \
		"10.244.1.1:3869 10.244.1.2:3869 " 50
	before=$(unreachs)
	probe --sctp --count 3 --timeout-ms 1000 10.96.3.11:3868
	after=$(unreachs)
	if [ "$(probe_value ok)" = 0 ] && [ "$(probe_value timeout)" = 3 ] &&
		[ $((after - before)) -ge 3 ]; then
		ok "$dp: SCTP to a ClusterIP port without endpoints gets ICMP port unreachable"
	else
		not_ok "$dp: SCTP to a ClusterIP port without endpoints gets ICMP port unreachable" \
			"(want 3 timeouts, 3+ unreachables: $before -> $after)"
		probe_dump
	fi
	probe_ext --sctp --count 50 --timeout-ms 4000 10.99.1.1:30868
	expect_backends "$dp: SCTP NodePort from outside reaches every endpoint" \
		"10.244.1.1:3869 10.244.1.2:3869 " 50
	stop_agent
done
exit 0
