#!/bin/bash
# Session affinity ClientIP end to end, on both datapaths: one client stays
# on one backend while it keeps coming back, and is let go after
# timeoutSeconds of idleness.
. "$(dirname "$0")/lib.sh"

write_manifests() {
	cat >"$MANIFESTS/sticky.yaml" <<EOT
apiVersion: v1
kind: Service
metadata: {name: sticky, namespace: default}
spec:
  clusterIPs: [10.96.0.40, "fd00:96::40"]
  sessionAffinity: ClientIP
  sessionAffinityConfig: {clientIP: {timeoutSeconds: 2}}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: sticky-v4, namespace: default, labels: {kubernetes.io/service-name: sticky}}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints:
- addresses: [10.244.1.1]
- addresses: [10.244.1.2]
- addresses: [10.244.1.3]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: sticky-v6, namespace: default, labels: {kubernetes.io/service-name: sticky}}
addressType: IPv6
ports: [{name: http, port: 8080}]
endpoints:
- addresses: ["fd00:244::1"]
- addresses: ["fd00:244::2"]
- addresses: ["fd00:244::3"]
EOT
}

# one_backend NAME N: all N attempts answered, by a single backend.
one_backend() {
	local got
	got=$(probe_backends)
	if [ "$(probe_value ok)" = "$2" ] && [ "$(echo $got | wc -w)" = 1 ]; then
		ok "$1"
	else
		not_ok "$1"
		probe_dump
	fi
}

e2e_setup || { not_ok "setup"; exit 1; }
start_backends 10.244.1.1:8080 10.244.1.2:8080 10.244.1.3:8080 \
	[fd00:244::1]:8080 [fd00:244::2]:8080 [fd00:244::3]:8080 10.96.0.40:80 [fd00:96::40]:80

for dp in $DATAPATHS; do
	rm -f "$MANIFESTS"/*
	write_manifests
	if ! start_agent "$dp"; then
		not_ok "$dp: agent starts"
		continue
	fi
	probe --count 60 10.96.0.40:80
	one_backend "$dp: 60 connections from one client all reach one backend" 60
	first=$(probe_backends)
	probe --count 7 --interval-ms 500 10.96.0.40:80
	one_backend "$dp: a client coming back every 0.5 s for 3.5 s stays on it" 7
	check "$dp: ... the same backend as before" test "$(probe_backends)" = "$first"
	probe --count 40 '[fd00:96::40]:80'
	one_backend "$dp: IPv6: 40 connections from one client all reach one backend" 40

	# After timeoutSeconds (2) of idleness a new pick is made: over 8 idle
	# gaps, one backend of three being picked every time has odds 1/3^7.
	seen=""
	for i in $(seq 8); do
		sleep 2.3
		probe --count 1 10.96.0.40:80
		seen+=" $(probe_backends)"
	done
	distinct=$(echo $seen | tr ' ' '\n' | sort -u | wc -l)
	check "$dp: after timeoutSeconds of idleness the client is let go (saw $distinct backends)" \
		test "$distinct" -ge 2
	stop_agent
done
exit 0
