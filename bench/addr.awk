# The address plan of the benchmarks (bench/gen-manifests.sh): addr(A.B, k) =
# A.(B + k/62500).(k/250 % 250).(k%250 + 1), 62,500 addresses per /16.
function ip(base, k,    ab) {
	split(base, ab, ".")
	return sprintf("%d.%d.%d.%d", ab[1], ab[2] + int(k / 62500), int(k / 250) % 250, k % 250 + 1)
}
# Service i's ClusterIP and its endpoint j of eps.
function cluster_ip(i) { return ip("10.96", i + 250) }
function endpoint_ip(i, j, eps) { return ip("10.244", (eps * i + j) % 250000) }
