#!/bin/bash
# Dual-stack sockets, on both datapaths: an AF_INET6 socket dialling the
# IPv4-mapped address of an IPv4 Service (::ffff:10.96.0.10), as the JVM
# does, is served like an AF_INET one: TCP, UDP sendto and connected UDP,
# the peer shown as the mapped Service address, refusals, session affinity
# and the rate limit.
. "$(dirname "$0")/lib.sh"

V4_WEB="10.244.1.1:8080 10.244.1.2:8080 "
V4_DNS="10.244.1.1:5353 10.244.1.2:5353 "

write_manifests() {
	rm -f "$MANIFESTS"/*
	cat >"$MANIFESTS/svc.yaml" <<EOT
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  clusterIP: 10.96.0.10
  ports:
  - {name: http, port: 80, protocol: TCP, targetPort: 8080}
  - {name: dns, port: 53, protocol: UDP, targetPort: 5353}
---
apiVersion: v1
kind: Service
metadata: {name: sticky, namespace: default}
spec:
  clusterIP: 10.96.0.12
  sessionAffinity: ClientIP
  ports:
  - {name: http, port: 80, protocol: TCP, targetPort: 8080}
---
apiVersion: v1
kind: Service
metadata:
  name: limited
  namespace: default
  annotations: {sluice.io/rate-limit: "1/m", sluice.io/rate-limit-burst: "3"}
spec:
  clusterIP: 10.96.0.13
  ports:
  - {name: http, port: 80, protocol: TCP, targetPort: 8080}
---
apiVersion: v1
kind: Service
metadata: {name: empty, namespace: default}
spec:
  clusterIP: 10.96.0.11
  ports:
  - {name: http, port: 80, protocol: TCP}
  - {name: dns, port: 53, protocol: UDP}
EOT
	for svc in web sticky limited; do
		cat >"$MANIFESTS/$svc-slice.yaml" <<EOT
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: $svc-v4, namespace: default, labels: {kubernetes.io/service-name: $svc}}
addressType: IPv4
ports: [{name: http, port: 8080, protocol: TCP}, {name: dns, port: 5353, protocol: UDP}]
endpoints:
- {addresses: [10.244.1.1], nodeName: $NODE_NAME}
- {addresses: [10.244.1.2], nodeName: $NODE_NAME}
EOT
	done
}

e2e_setup || { not_ok "setup"; exit 1; }
start_backends 10.244.1.1:8080 10.244.1.2:8080 10.244.1.1:5353 10.244.1.2:5353
# Decoys on the service addresses: a connection that escaped translation is answered by them.
start_backends 10.96.0.10:80 10.96.0.10:81 10.96.0.10:53 10.96.0.11:80 10.96.0.11:53 10.96.0.12:80 10.96.0.13:80

for dp in $DATAPATHS; do
	write_manifests
	if ! start_agent "$dp"; then
		not_ok "$dp: agent starts"
		continue
	fi
	probe --mapped --count 100 10.96.0.10:80
	expect_backends "$dp: v4-mapped TCP connect reaches every endpoint, getpeername shows the Service" \
		"$V4_WEB" 100
	probe --mapped --udp --count 100 10.96.0.10:53
	expect_backends "$dp: v4-mapped UDP sendto reaches every endpoint, replies from the Service" \
		"$V4_DNS" 100
	probe --mapped --udp --connected --count 100 10.96.0.10:53
	expect_backends "$dp: v4-mapped connected UDP reaches every endpoint, getpeername shows the Service" \
		"$V4_DNS" 100
	probe --mapped --count 5 10.96.0.11:80
	expect_refused "$dp: v4-mapped TCP connect to a Service without endpoints is refused" 5
	probe --mapped --udp --connected --count 5 10.96.0.11:53
	expect_refused "$dp: v4-mapped connected UDP to a Service without endpoints is refused" 5
	probe --mapped --count 5 10.96.0.10:81
	expect_refused "$dp: v4-mapped TCP connect to a port the ClusterIP does not serve is refused" 5

	probe --mapped --count 40 10.96.0.12:80
	case "$(probe_backends)" in "10.244.1.1:8080 " | "10.244.1.2:8080 ") one=yes ;; *) one=no ;; esac
	if [ "$(probe_value ok)" = 40 ] && [ "$one" = yes ]; then
		ok "$dp: v4-mapped connects keep their session affinity"
		mapped_be=$(probe_backends)
		probe --count 20 10.96.0.12:80
		check "$dp: AF_INET and v4-mapped sockets of one client share its affinity" \
			test "$(probe_backends)" = "$mapped_be"
	else
		not_ok "$dp: v4-mapped connects keep their session affinity"
		probe_dump
	fi

	probe --mapped --count 10 10.96.0.13:80
	if [ "$(probe_value ok)" = 3 ] && [ "$(probe_value refused)" = 7 ]; then
		ok "$dp: v4-mapped connects are charged to the rate limit (burst 3 of 10)"
	else
		not_ok "$dp: v4-mapped connects are charged to the rate limit (burst 3 of 10)"
		probe_dump
	fi
	stop_agent
done
exit 0
