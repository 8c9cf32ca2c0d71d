#!/bin/bash
# Metrics, kube-proxy's health contract and JSON logs end to end, on both
# datapaths: /metrics passes promtool, a real Prometheus server (on
# loopback in the node namespace) scrapes it, and the kernel's flow
# counters per Service and outcome (admitted, rate limited, no endpoints,
# policy drop, source range; clients on the node and outside) equal what
# the clients saw; /healthz and /livez answer kube-proxy's JSON, /healthz
# 503 once the Node carries the autoscaler's ToBeDeletedByClusterAutoscaler
# taint; --log-format=json writes one JSON object per line; bad addresses
# exit 2.
. "$(dirname "$0")/lib.sh"

PROM_PORT=19090

write_manifests() {
	cat >"$MANIFESTS/svc.yaml" <<EOT
apiVersion: v1
kind: Service
metadata:
  name: limited
  namespace: default
  annotations: {sluice.io/rate-limit: "1/m", sluice.io/rate-limit-burst: "4"}
spec:
  clusterIP: 10.96.0.40
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: limited-1
  namespace: default
  labels: {kubernetes.io/service-name: limited}
  annotations: {endpoints.kubernetes.io/last-change-trigger-time: "2020-01-01T00:00:00Z"}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints: [{addresses: [10.244.1.1]}]
---
apiVersion: v1
kind: Service
metadata:
  name: empty
  namespace: default
  annotations: {sluice.io/rate-limit: "100/s"}
spec:
  clusterIP: 10.96.0.41
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata:
  name: local
  namespace: default
  annotations: {sluice.io/rate-limit: "100/s"}
spec:
  clusterIP: 10.96.0.42
  internalTrafficPolicy: Local
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: local-1, namespace: default, labels: {kubernetes.io/service-name: local}}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints: [{addresses: [10.244.1.2], nodeName: node-b}]
---
apiVersion: v1
kind: Service
metadata: {name: plain, namespace: default}
spec:
  clusterIP: 10.96.0.43
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: plain-1, namespace: default, labels: {kubernetes.io/service-name: plain}}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints: [{addresses: [10.244.1.1]}]
---
apiVersion: v1
kind: Service
metadata:
  name: extlocal
  namespace: default
  annotations: {sluice.io/rate-limit: "100/s"}
spec:
  type: LoadBalancer
  clusterIP: 10.96.0.44
  externalTrafficPolicy: Local
  ports: [{name: http, port: 80, targetPort: 8080, nodePort: 30091}]
status:
  loadBalancer: {ingress: [{ip: 10.99.2.51}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: extlocal-1, namespace: default, labels: {kubernetes.io/service-name: extlocal}}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints: [{addresses: [10.244.1.2], nodeName: node-b}]
---
apiVersion: v1
kind: Service
metadata:
  name: ranged
  namespace: default
  annotations: {sluice.io/rate-limit: "100/s"}
spec:
  type: LoadBalancer
  clusterIP: 10.96.0.45
  loadBalancerSourceRanges: [192.0.2.0/24]
  ports: [{name: http, port: 80, targetPort: 8080, nodePort: 30092}]
status:
  loadBalancer: {ingress: [{ip: 10.99.2.52}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: ranged-1, namespace: default, labels: {kubernetes.io/service-name: ranged}}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints: [{addresses: [10.244.1.1]}]
---
apiVersion: v1
kind: Service
metadata: {name: bare, namespace: default}
spec:
  clusterIP: 10.96.0.46
  ports: [{name: http, port: 80, targetPort: 8080}]
EOT
	node_manifest ""
}

# node_manifest TAINTS: this Node, with spec.taints TAINTS (YAML flow list or "").
node_manifest() {
	cat >"$MANIFESTS/node.yaml.tmp" <<EOT
apiVersion: v1
kind: Node
metadata: {name: $NODE_NAME}
spec: {taints: [$1]}
EOT
	mv "$MANIFESTS/node.yaml.tmp" "$MANIFESTS/node.yaml"
}

scrape() { in_node curl -s --max-time 5 "http://127.0.0.1:10249/metrics"; }
# flows SERVICE OUTCOME: the sample in a fresh scrape ("" if absent).
flows() {
	scrape | awk -v s="service=\"default/$1\"" -v o="outcome=\"$2\"" \
		'$1 ~ /^sluice_service_flows_total\{/ && index($1, s) && index($1, o) { print $2 }'
}

# Prometheus, in the node namespace on loopback, scraping the agent every second.
start_prometheus() {
	mkdir -p "$WORK/prom"
	cat >"$WORK/prom/prometheus.yml" <<EOT
global: {scrape_interval: 1s, evaluation_interval: 1s}
scrape_configs:
  - job_name: sluice
    static_configs: [{targets: ["127.0.0.1:10249"]}]
EOT
	nsenter --net="/run/netns/$NODE_NS" prometheus --config.file="$WORK/prom/prometheus.yml" \
		--storage.tsdb.path="$WORK/prom/data" --web.listen-address="127.0.0.1:$PROM_PORT" \
		>"$WORK/prom/log" 2>&1 &
	PROM_PID=$!
	PIDS+=($PROM_PID)
}
stop_prometheus() {
	[ -n "${PROM_PID:-}" ] && kill "$PROM_PID" 2>/dev/null && wait "$PROM_PID" 2>/dev/null
	PROM_PID=""
	rm -rf "$WORK/prom"
}
# prom_query QUERY: the first result's value, over Prometheus' HTTP API.
prom_query() {
	in_node curl -s --max-time 3 "http://127.0.0.1:$PROM_PORT/api/v1/query" \
		--data-urlencode "query=$1" | jq -r '.data.result[0].value[1] // empty' 2>/dev/null
}

e2e_setup || { not_ok "setup"; exit 1; }
setup_outside || { not_ok "setup of the outside namespace"; exit 1; }
# LB IPs not served here are forwarded, as through a real node's default
# route: into the test's backend namespace, where a decoy would answer.
in_node ip route add 10.99.2.0/24 via 10.99.0.2
start_backends 10.244.1.1:8080 10.244.1.2:8080 10.96.0.40:80 10.96.0.41:80 10.96.0.42:80 \
	10.96.0.43:80 10.99.2.51:80 10.99.2.52:80 10.96.0.46:80

for dp in $DATAPATHS; do
	rm -f "$MANIFESTS"/*
	write_manifests
	if ! start_agent "$dp" --log-format=json --devices="x$ID,v$ID"; then
		not_ok "$dp: agent starts"
		continue
	fi
	check "$dp: /metrics passes promtool check metrics" \
		bash -c "$(declare -f in_node scrape); NODE_NS=$NODE_NS; scrape | promtool check metrics"
	check "$dp: sluice_datapath_info names the datapath" \
		bash -c "$(declare -f in_node scrape); NODE_NS=$NODE_NS; scrape | grep -q '^sluice_datapath_info{datapath=\"$dp\"} 1'"

	# 4 admitted (the burst), 6 rate limited; 5 refused for no endpoints; 3 dropped (Local).
	probe --count 10 --timeout-ms 500 10.96.0.40:80
	adm=$(probe_value ok) lim=$(probe_value refused)
	probe --count 5 --timeout-ms 500 10.96.0.41:80
	noep=$(probe_value refused)
	# Shorter than the first SYN retransmission (1 s): one SYN each on nftables too.
	probe --count 3 --timeout-ms 300 10.96.0.42:80
	drop=$(probe_value timeout)
	check "$dp: clients saw 4 admitted, 6 limited, 5 refused, 3 dropped ($adm $lim $noep $drop)" \
		test "$adm $lim $noep $drop" = "4 6 5 3"
	check "$dp: admitted and rate_limited in the kernel equal what the client saw" \
		test "$(flows limited admitted) $(flows limited rate_limited)" = "$adm $lim"
	check "$dp: no_endpoints and policy_drop in the kernel equal what the clients saw" \
		test "$(flows empty no_endpoints) $(flows local policy_drop)" = "$noep $drop"
	# From outside: a Local LB IP with endpoints only elsewhere, and a LB IP
	# whose source ranges leave the client (10.99.1.2) out: both dropped.
	probe_ext --count 4 --timeout-ms 300 10.99.2.51:80
	extdrop=$(probe_value timeout)
	probe_ext --count 3 --timeout-ms 300 10.99.2.52:80
	ranged=$(probe_value timeout)
	check "$dp: clients outside saw 4 and 3 dropped ($extdrop $ranged)" \
		test "$extdrop $ranged" = "4 3"
	check "$dp: policy_drop and source_range in the kernel equal what the clients saw" \
		test "$(flows extlocal policy_drop) $(flows ranged source_range)" = "$extdrop $ranged"
	check "$dp: every outcome of a rate-limited Service has its series, 0 where none" \
		test "$(flows extlocal no_endpoints) $(flows ranged policy_drop) $(flows empty admitted)" = "0 0 0"
	check "$dp: a Service without a rate limit has no series by default" \
		test -z "$(flows plain admitted)$(flows bare no_endpoints)"
	check "$dp: kube-proxy's sync metrics are there (one full sync)" \
		bash -c "$(declare -f in_node scrape); NODE_NS=$NODE_NS; scrape | grep -q '^kubeproxy_sync_full_proxy_rules_duration_seconds_count 1$'"
	check "$dp: network programming latency observed from the slice's trigger time" \
		bash -c "$(declare -f in_node scrape); NODE_NS=$NODE_NS; scrape | grep -q '^kubeproxy_network_programming_duration_seconds_count [1-9]'"

	start_prometheus
	got=""
	for i in $(seq 60); do
		got=$(prom_query "sluice_service_flows_total{service=\"default/limited\",outcome=\"rate_limited\"}")
		[ -n "$got" ] && break
		sleep 0.25
	done
	check "$dp: Prometheus scraped the agent: rate_limited = $lim (got ${got:-nothing})" \
		test "$got" = "$lim"
	check "$dp: Prometheus sees kube-proxy's sync timestamp" \
		test -n "$(prom_query kubeproxy_sync_proxy_rules_last_timestamp_seconds)"
	stop_prometheus

	body=$(in_node curl -s --max-time 3 http://127.0.0.1:10256/healthz)
	check "$dp: /healthz 200 with kube-proxy's JSON body" \
		bash -c "test \"\$(echo '$body' | jq -r '.nodeEligible, .healthy, (.lastUpdated|type), (.currentTime|type)' | tr '\n' ' ')\" = 'true true string string '"
	check "$dp: /livez 200" test "$(http_status "$NODE_NS" 127.0.0.1 10256 /livez)" = 200
	node_manifest "{key: ToBeDeletedByClusterAutoscaler, value: '1', effect: NoSchedule}"
	check "$dp: /healthz 503 once the Node is tainted ToBeDeletedByClusterAutoscaler" \
		within bash -c "test \"\$(in_node() { nsenter --net=/run/netns/$NODE_NS \"\$@\"; }; $(declare -f http_status); http_status $NODE_NS 127.0.0.1 10256 /healthz)\" = 503"
	check "$dp: /livez still 200 (the agent is live)" \
		test "$(http_status "$NODE_NS" 127.0.0.1 10256 /livez)" = 200
	check "$dp: kubeproxy_proxy_healthz_total counts the 503" \
		bash -c "$(declare -f in_node scrape); NODE_NS=$NODE_NS; scrape | grep -q '^kubeproxy_proxy_healthz_total{code=\"503\"} [1-9]'"
	check "$dp: --log-format=json: every log line is one JSON object with time, level, msg" \
		bash -c "jq -e -s 'length > 3 and all(.[]; has(\"time\") and has(\"level\") and has(\"msg\"))' '$AGENT_LOG' >/dev/null"
	stop_agent

	# --metrics-all-services: every Service gets its series.
	node_manifest ""
	start_agent "$dp" --metrics-all-services --devices="x$ID,v$ID" >/dev/null || not_ok "$dp: agent restarts"
	probe --count 2 --timeout-ms 500 10.96.0.43:80
	check "$dp: --metrics-all-services: a Service without a limit is counted" \
		test "$(flows plain admitted)" = "$([ "$dp" = bpf ] && echo 2)"
	probe --count 3 --timeout-ms 500 10.96.0.46:80
	bare=$(probe_value refused)
	check "$dp: --metrics-all-services: its refusals too ($bare refused)" \
		test "$bare $(flows bare no_endpoints)" = "3 3"
	check "$dp: counters survive the restart (adoption): no_endpoints of empty = $noep" \
		test "$(flows empty no_endpoints)" = "$noep"
	stop_agent
done

for bad in --metrics-addr=localhost:10249 --metrics-addr=127.0.0.1:99999 --healthz-addr=nope; do
	in_node "$AGENT" --source="dir:$MANIFESTS" "$bad" >"$WORK/bad.log" 2>&1
	rc=$?
	check "$bad: exit 2 with one line" test "$rc" = 2 -a "$(wc -l <"$WORK/bad.log")" = 1
done

exit 0
