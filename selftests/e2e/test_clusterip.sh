#!/bin/bash
# ClusterIP end to end, on both datapaths: real servers on several backend
# addresses, hundreds of connections, TCP and UDP, IPv4 and IPv6; refusals;
# changes while the agent runs; bad input; restart; cleanup.
. "$(dirname "$0")/lib.sh"

V4_BACKENDS="10.244.1.1:8080 10.244.1.2:8080 10.244.1.3:8080 "
V4_DNS="10.244.1.1:5353 10.244.1.2:5353 10.244.1.3:5353 "
V6_BACKENDS="[fd00:244::1]:8080 [fd00:244::2]:8080 [fd00:244::3]:8080 "

# web-slice.yaml with the given IPv4 endpoint addresses.
write_web_slice() {
	local addrs="" a
	for a in "$@"; do
		addrs+="
- addresses: [\"$a\"]
  conditions: {ready: true}
  nodeName: $NODE_NAME"
	done
	cat >"$MANIFESTS/web-slice.yaml.tmp" <<EOT
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-v4
  namespace: default
  labels: {kubernetes.io/service-name: web}
addressType: IPv4
ports:
- {name: http, port: 8080, protocol: TCP}
- {name: dns, port: 5353, protocol: UDP}
endpoints:$addrs
EOT
	mv "$MANIFESTS/web-slice.yaml.tmp" "$MANIFESTS/web-slice.yaml"
}

write_manifests() {
	rm -f "$MANIFESTS"/*
	# Dual-stack Service, named target ports, TCP and UDP, as YAML.
	cat >"$MANIFESTS/web.yaml" <<EOT
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  type: ClusterIP
  clusterIP: 10.96.0.10
  clusterIPs: [10.96.0.10, "fd00:96::10"]
  ipFamilies: [IPv4, IPv6]
  ports:
  - {name: http, port: 80, protocol: TCP, targetPort: web}
  - {name: dns, port: 53, protocol: UDP, targetPort: 5353}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-v6
  namespace: default
  labels: {kubernetes.io/service-name: web}
addressType: IPv6
ports:
- {name: http, port: 8080, protocol: TCP}
- {name: dns, port: 5353, protocol: UDP}
endpoints:
- addresses: ["fd00:244::1"]
- addresses: ["fd00:244::2"]
- addresses: ["fd00:244::3"]
EOT
	write_web_slice 10.244.1.1 10.244.1.2 10.244.1.3
	# A Service without endpoints, as JSON.
	cat >"$MANIFESTS/empty.json" <<EOT
{"apiVersion": "v1", "kind": "Service",
 "metadata": {"name": "empty", "namespace": "default"},
 "spec": {"clusterIP": "10.96.0.11",
          "ports": [{"name": "http", "port": 80, "protocol": "TCP"},
                    {"name": "dns", "port": 53, "protocol": "UDP"}]}}
EOT
}

e2e_setup || { not_ok "setup"; exit 1; }
# Endpoints, a pod that is no endpoint (.9), and decoys on the service
# addresses that answer any packet that escaped translation.
start_backends 10.244.1.1:8080 10.244.1.2:8080 10.244.1.3:8080 10.244.1.9:8080 \
	10.244.1.1:5353 10.244.1.2:5353 10.244.1.3:5353 10.244.1.9:5353 \
	[fd00:244::1]:8080 [fd00:244::2]:8080 [fd00:244::3]:8080 \
	[fd00:244::1]:5353 [fd00:244::2]:5353 [fd00:244::3]:5353 \
	10.96.0.10:80 10.96.0.10:53 10.96.0.10:81 10.96.0.11:80 10.96.0.12:80 [fd00:96::10]:80

for dp in $DATAPATHS; do
	write_manifests
	if ! start_agent "$dp"; then
		not_ok "$dp: agent starts and syncs"
		continue
	fi

	probe --count 300 10.96.0.10:80
	expect_backends "$dp: TCP IPv4: 300 connections reach every endpoint and only them" \
		"$V4_BACKENDS" 300
	probe --udp --count 300 10.96.0.10:53
	expect_backends "$dp: UDP IPv4 sendto: every endpoint, replies from the ClusterIP" \
		"$V4_DNS" 300
	probe --udp --connected --count 100 10.96.0.10:53
	expect_backends "$dp: UDP IPv4 connected: every endpoint, getpeername shows the ClusterIP" \
		"$V4_DNS" 100
	probe --count 300 '[fd00:96::10]:80'
	expect_backends "$dp: TCP IPv6: every endpoint and only them" "$V6_BACKENDS" 300
	probe --udp --count 300 '[fd00:96::10]:53'
	expect_backends "$dp: UDP IPv6: every endpoint, replies from the ClusterIP" \
		"[fd00:244::1]:5353 [fd00:244::2]:5353 [fd00:244::3]:5353 " 300

	probe --count 20 10.96.0.11:80
	expect_refused "$dp: TCP to a port without endpoints is refused" 20
	probe --udp --connected --count 20 10.96.0.11:53
	expect_refused "$dp: UDP to a port without endpoints is refused" 20
	probe --count 20 10.96.0.10:81
	expect_refused "$dp: an unknown port on a known ClusterIP is refused" 20

	# Changes while the agent runs.
	write_web_slice 10.244.1.1 10.244.1.2
	sleep 1
	probe --count 200 10.96.0.10:80
	expect_backends "$dp: a removed endpoint gets no new connection a second later" \
		"10.244.1.1:8080 10.244.1.2:8080 " 200
	cat >"$MANIFESTS/late.yaml" <<EOT
apiVersion: v1
kind: Service
metadata: {name: late, namespace: other}
spec:
  clusterIP: 10.96.0.12
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: late-1, namespace: other, labels: {kubernetes.io/service-name: late}}
addressType: IPv4
ports: [{port: 8080}]
endpoints: [{addresses: [10.244.1.9]}]
EOT
	sleep 1
	probe --count 50 10.96.0.12:80
	expect_backends "$dp: a Service added while the agent runs is served a second later" \
		"10.244.1.9:8080 " 50

	# Bad input: a file that does not parse, an object with an invalid address.
	printf 'apiVersion: v1\nkind: Service\nmetadata: {name: [broken\n' >"$MANIFESTS/broken.yaml"
	cat >"$MANIFESTS/bad-address.yaml" <<EOT
apiVersion: v1
kind: Service
metadata: {name: badaddr, namespace: default}
spec:
  clusterIP: 10.96.0.999
  ports: [{port: 80}]
EOT
	sleep 1
	check "$dp: a broken file is logged once, naming the file" \
		test "$(grep -c 'broken.yaml' "$AGENT_LOG")" = 1
	check "$dp: an invalid address is logged once, naming the file and the object" \
		test "$(grep 'bad-address.yaml' "$AGENT_LOG" | grep -c 'badaddr')" = 1
	probe --count 50 10.96.0.10:80
	expect_backends "$dp: other Services keep working after bad input" \
		"10.244.1.1:8080 10.244.1.2:8080 " 50
	rm -f "$MANIFESTS/broken.yaml" "$MANIFESTS/bad-address.yaml"

	# SIGTERM leaves the datapath serving; a new agent adopts it without a gap.
	in_client "$PROBE" --duration 2.5 10.96.0.10:80 >"$WORK/during-restart.out" 2>&1 &
	bg=$!
	sleep 0.3
	stop_agent
	probe --count 50 10.96.0.10:80
	expect_backends "$dp: after SIGTERM the datapath keeps serving" \
		"10.244.1.1:8080 10.244.1.2:8080 " 50
	start_agent "$dp" || not_ok "$dp: agent restarts"
	wait $bg
	cp "$WORK/during-restart.out" "$WORK/probe.out"
	if [ "$(probe_value ok)" = "$(probe_value attempts)" ] &&
		[ "$(probe_backends)" = "10.244.1.1:8080 10.244.1.2:8080 " ]; then
		ok "$dp: no connection fails while the agent stops and restarts"
	else
		not_ok "$dp: no connection fails while the agent stops and restarts"
		probe_dump
	fi
	probe --count 100 10.96.0.10:80
	expect_backends "$dp: the restarted agent serves the same backends" \
		"10.244.1.1:8080 10.244.1.2:8080 " 100

	# The kernel features decided at start: one log line each, and sluicectl features.
	if [ "$dp" = bpf ]; then
		in_node "$SLUICECTL" --bpffs="$BPFFS" features >"$WORK/features" 2>&1
		if [ "$(awk 'NR > 1 { print $1 }' "$WORK/features" | tr '\n' ' ')" = "sock_destroy tcx sctp " ] &&
			grep -q "bpf: feature tcx: " "$AGENT_LOG" && grep -q "bpf: feature sctp: " "$AGENT_LOG"; then
			ok "$dp: kernel features probed at start: logged, and listed by sluicectl features"
		else
			not_ok "$dp: kernel features probed at start: logged, and listed by sluicectl features"
			sed 's/^/#   /' "$WORK/features"
		fi
	fi

	# --cleanup removes every trace.
	prog_ids=$(bpftool cgroup show "$CGROUP" 2>/dev/null | awk '$1 ~ /^[0-9]+$/ { print $1 }')
	stop_agent
	in_node "$AGENT" --cleanup --bpffs="$BPFFS" --cgroup="$CGROUP" >>"$AGENT_LOG" 2>&1
	check "$dp: --cleanup exits 0" test $? = 0
	left=""
	[ -n "$(find "$BPFFS" -mindepth 1 2>/dev/null)" ] && left+=" pins"
	[ -n "$(bpftool cgroup show "$CGROUP" 2>/dev/null)" ] && left+=" cgroup-links"
	for id in $prog_ids; do
		bpftool prog show id "$id" >/dev/null 2>&1 && left+=" prog-$id"
	done
	in_node nft list table inet sluice >/dev/null 2>&1 && left+=" nft-table"
	check "$dp: --cleanup leaves no pin, link, program or table${left:+ (left:$left)}" \
		test -z "$left"
done
exit 0
