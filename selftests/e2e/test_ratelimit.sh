#!/bin/bash
# Per-Service rate limits end to end, on both datapaths: the admitted count
# follows burst + rate x elapsed, the rest is refused at once, the counters
# agree with what the client saw, the ports of one Service share one bucket,
# and bad annotation values leave the Service working without a limit.
. "$(dirname "$0")/lib.sh"

write_manifests() {
	cat >"$MANIFESTS/limited.yaml" <<EOT
apiVersion: v1
kind: Service
metadata:
  name: limited
  namespace: default
  annotations: {sluice.io/rate-limit: "50/s", sluice.io/rate-limit-burst: "10"}
spec:
  clusterIP: 10.96.0.30
  ports:
  - {name: http, port: 80, targetPort: 8080}
  - {name: alt, port: 81, targetPort: 8081}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: limited-1, namespace: default, labels: {kubernetes.io/service-name: limited}}
addressType: IPv4
ports: [{name: http, port: 8080}, {name: alt, port: 8081}]
endpoints: [{addresses: [10.244.1.1]}, {addresses: [10.244.1.2]}]
EOT
	local i=0 value
	for value in fast 0/s -3/s 99999999999/s; do
		i=$((i + 1))
		cat >"$MANIFESTS/bad$i.yaml" <<EOT
apiVersion: v1
kind: Service
metadata:
  name: bad$i
  namespace: default
  annotations: {sluice.io/rate-limit: "$value"}
spec:
  clusterIP: 10.96.0.3$i
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: bad$i-1, namespace: default, labels: {kubernetes.io/service-name: bad$i}}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints: [{addresses: [10.244.1.1]}]
EOT
	done
}

# The admitted and limited counters of default/limited, from sluicectl.
counters() {
	in_node "$SLUICECTL" --bpffs="$BPFFS" ratelimits 2>/dev/null |
		awk 'NR == 1 { for (i = 1; i <= NF; i++) col[tolower($i)] = i; next }
		     $col["service"] == "default/limited" { print $col["admitted"], $col["limited"] }'
}

# within PCT GOT WANT: |GOT - WANT| <= WANT x PCT / 100
within() { awk -v p="$1" -v g="$2" -v w="$3" 'BEGIN { d = g - w; if (d < 0) d = -d; exit !(d <= w * p / 100) }'; }

e2e_setup || { not_ok "setup"; exit 1; }
start_backends 10.244.1.1:8080 10.244.1.2:8080 10.244.1.1:8081 10.244.1.2:8081 \
	10.96.0.30:80 10.96.0.30:81

for dp in $DATAPATHS; do
	rm -f "$MANIFESTS"/*
	write_manifests
	if ! start_agent "$dp"; then
		not_ok "$dp: agent starts"
		continue
	fi
	# sluicectl reads the first datapath with state in the kernel: on
	# nftables, first let the agent remove the BPF pins it found (at once
	# after its sync), or the BPF datapath's old counters are read.
	for _ in $(seq 40); do
		[ "$dp" != nftables ] || ! ls "$BPFFS"/maps/* >/dev/null 2>&1 && break
		sleep 0.05
	done
	read -r adm0 lim0 <<<"$(counters)"
	probe --duration 3 --timeout-ms 500 10.96.0.30:80
	admitted=$(probe_value ok)
	refused=$(probe_value refused)
	elapsed=$(probe_value elapsed)
	want=$(awk -v e="$elapsed" 'BEGIN { printf "%d", 10 + 50 * e }')
	if within 15 "$admitted" "$want" && [ "$(probe_value timeout)" = 0 ] &&
		[ "$refused" -gt 0 ] && [ $((admitted + refused)) = "$(probe_value attempts)" ]; then
		ok "$dp: 50/s burst 10 for ${elapsed}s admits $admitted (want $want +-15%), refuses $refused at once"
	else
		not_ok "$dp: 50/s burst 10 admits burst + rate x elapsed, refuses the rest at once (want $want)"
		probe_dump
	fi
	read -r adm1 lim1 <<<"$(counters)"
	if [ -n "$adm1" ] && [ $((adm1 - ${adm0:-0})) = "$admitted" ] &&
		[ $((lim1 - ${lim0:-0})) = "$refused" ]; then
		ok "$dp: the admitted and limited counters agree with the client ($adm1/$lim1)"
	else
		not_ok "$dp: the counters agree with the client (counters: ${adm0:-?}/${lim0:-?} -> ${adm1:-?}/${lim1:-?}; client $admitted/$refused)"
		in_node "$SLUICECTL" --bpffs="$BPFFS" ratelimits 2>&1 | sed 's/^/#   /'
	fi

	# Both ports at once for 2 s: one bucket, so about 10 + 50 x the time
	# either client dialled (two buckets: twice that). The span is timed
	# around both clients: on a slow machine one starts late.
	sleep 1
	t0=$(date +%s%N)
	in_client "$PROBE" --duration 2 --timeout-ms 500 10.96.0.30:81 >"$WORK/alt.out" 2>&1 &
	alt=$!
	probe --duration 2 --timeout-ms 500 10.96.0.30:80
	wait $alt
	span=$(awk -v a="$t0" -v b="$(date +%s%N)" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')
	want=$(awk -v s="$span" 'BEGIN { printf "%d", 10 + 50 * s }')
	total=$(($(probe_value ok) + $(awk '$1 == "ok" { print $2 }' "$WORK/alt.out")))
	check "$dp: two ports of one Service drain one bucket ($total admitted in ${span}s, want $want +-15%)" \
		within 15 "$total" "$want"

	for i in 1 2 3 4; do
		probe --count 100 10.96.0.3$i:80
		check "$dp: bad rate-limit value $i: the Service works without a limit" \
			test "$(probe_value ok)" = 100
	done
	check "$dp: each bad value is logged once, naming the Service" \
		test "$(grep -cE 'Service default/bad[1-4]: .*rate-limit' "$AGENT_LOG")" = 4
	stop_agent
done
exit 0
