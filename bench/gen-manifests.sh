#!/bin/bash
# Writes a manifest directory of N ClusterIP Services with E ready endpoints
# each (default 2), for the benchmarks: services.json (one kind: List with
# every Service and the slices of services 1..N-1) and slice-0.json (service
# 0's slice on its own, so one endpoint change is one small file write).
# With FIRST: only Services FIRST..N-1, every slice in services.json (make
# bench adds and removes such a file as one change).
#
#   service i:   bench/s<i>, ClusterIP addr(10.96, i + 250), TCP 80 -> 8080
#   endpoints:   addr(10.244, n % 250000) for n = E*i .. E*i + E-1
#   addr(A.B, k) = A.(B + k/62500).(k/250 % 250).(k%250 + 1) (bench/addr.awk):
#   62,500 addresses per /16, so 100k Services fit in 10.96.0.0/15 and
#   their endpoints in 10.244.0.0/14 (the routes of the e2e kit); past
#   250,000 endpoints the addresses repeat (in other Services' slices, never
#   twice in one).
# Service 0 is therefore 10.96.1.1:80 -> 10.244.0.1:8080, 10.244.0.2:8080 (...).
# Usage: gen-manifests.sh N DIR [E [FIRST]]
set -eu

n=$1
dir=$2
eps=${3:-2}
first=${4:-}
mkdir -p "$dir"
prog='
function slice(i,    j, eps_text) {
	for (j = 0; j < eps; j++)
		eps_text = eps_text sprintf("%s{\"addresses\":[\"%s\"],\"conditions\":{\"ready\":true}}",
			(j ? "," : ""), endpoint_ip(i, j, eps))
	return sprintf("{\"apiVersion\":\"discovery.k8s.io/v1\",\"kind\":\"EndpointSlice\"," \
		"\"metadata\":{\"name\":\"s%d-a\",\"namespace\":\"bench\"," \
		"\"labels\":{\"kubernetes.io/service-name\":\"s%d\"}}," \
		"\"addressType\":\"IPv4\",\"ports\":[{\"name\":\"http\",\"port\":8080,\"protocol\":\"TCP\"}]," \
		"\"endpoints\":[%s]}", i, i, eps_text)
}
BEGIN {
	out = dir "/services.json"
	printf "{\"apiVersion\":\"v1\",\"kind\":\"List\",\"items\":[\n" > out
	for (i = first + 0; i < n; i++) {
		printf "%s{\"apiVersion\":\"v1\",\"kind\":\"Service\"," \
			"\"metadata\":{\"name\":\"s%d\",\"namespace\":\"bench\"}," \
			"\"spec\":{\"type\":\"ClusterIP\",\"clusterIP\":\"%s\"," \
			"\"ports\":[{\"name\":\"http\",\"port\":80,\"protocol\":\"TCP\",\"targetPort\":8080}]}}\n",
			(i > first + 0 ? "," : ""), i, cluster_ip(i) > out
		if (i || first != "")
			printf ",%s\n", slice(i) > out
	}
	printf "]}\n" > out
	if (first == "")
		print slice(0) > (dir "/slice-0.json")
}'
awk -v n="$n" -v dir="$dir" -v eps="$eps" -v first="$first" \
	-f "$(dirname "$0")/addr.awk" -f <(printf '%s' "$prog")
