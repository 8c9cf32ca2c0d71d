#!/bin/bash
# Connected UDP sockets on the node whose backend is removed (BPF only: the
# socket path's translation happens once, at connect(); issue 14, point
# 1). A process in the test cgroup connect()s a UDP socket to a ClusterIP
# UDP port and keeps sending; its backend is deleted from the slice and
# its server killed; within 2 s either its datagrams reach a live backend,
# or its socket fails and its next socket reaches a live backend. A UDP
# socket of another Service to the same backend address (another port) is
# not touched. Run with bpf_sock_destroy, then with the sock_diag fallback
# (SLUICE_SOCK_DESTROY=sock_diag); each is skipped where the kernel lacks it.
. "$(dirname "$0")/lib.sh"

# write_dns ADDR...: Service default/dns, 10.96.0.53:53/UDP -> ADDR:5353.
write_dns() {
	local addrs="" a
	for a in "$@"; do
		addrs+="
- addresses: [\"$a\"]
  conditions: {ready: true}"
	done
	cat >"$MANIFESTS/dns.yaml.tmp" <<EOT
apiVersion: v1
kind: Service
metadata: {name: dns, namespace: default}
spec:
  clusterIP: 10.96.0.53
  ports: [{name: dns, port: 53, protocol: UDP, targetPort: 5353}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: dns-1, namespace: default, labels: {kubernetes.io/service-name: dns}}
addressType: IPv4
ports: [{name: dns, port: 5353, protocol: UDP}]
endpoints:$addrs
EOT
	mv "$MANIFESTS/dns.yaml.tmp" "$MANIFESTS/dns.yaml"
}

# Service default/other, 10.96.0.54:54/UDP -> 10.244.3.1:5454 (the same
# address as a dns backend, another port).
write_other() {
	cat >"$MANIFESTS/other.yaml" <<EOT
apiVersion: v1
kind: Service
metadata: {name: other, namespace: default}
spec:
  clusterIP: 10.96.0.54
  ports: [{name: u, port: 54, protocol: UDP, targetPort: 5454}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: other-1, namespace: default, labels: {kubernetes.io/service-name: other}}
addressType: IPv4
ports: [{name: u, port: 5454, protocol: UDP}]
endpoints: [{addresses: ["10.244.3.1"], conditions: {ready: true}}]
EOT
}

wait_log() {
	local _
	for _ in $(seq 100); do
		[ "$(grep -c -- "$1" "$AGENT_LOG")" -ge "${2:-1}" ] && return 0
		sleep 0.05
	done
	return 1
}

# The backend (ADDR:PORT) of the last answered round in FILE.
last_backend() { awk '$1 == "round" && $4 ~ /:/ { b = $4 } END { print b }' "$1"; }

case " $DATAPATHS " in
*" bpf "*) ;;
*) exit 0 ;;
esac

e2e_setup || { not_ok "setup"; exit 1; }
# One server process per backend, so that one can be killed.
declare -A SERVER
start_dns_servers() {
	local a
	for a in 10.244.3.1 10.244.3.2; do
		if [ -z "${SERVER[$a]:-}" ] || ! kill -0 "${SERVER[$a]}" 2>/dev/null; then
			start_backends "$a:5353"
			SERVER[$a]=${PIDS[-1]}
		fi
	done
}
start_backends "10.244.3.1:5454"
dp=bpf

other_untouched() {
	! grep -q '^reopen [0-9]' "$WORK/other.out" &&
		[ "$(awk '$1 == "lost" { print $2 }' "$WORK/other.out")" = 0 ] &&
		[ "$(awk '$1 == "rounds" { print $2 }' "$WORK/other.out")" -gt 0 ]
}

# scenario WANT: the agent (SLUICE_SOCK_DESTROY set by the caller) must log
# "udp sockets: destroyed with WANT"; then the held socket leaves its
# removed backend.
scenario() {
	local want=$1 mode first gone live t_remove late HOLD OTHER
	rm -f "$MANIFESTS"/*
	write_dns 10.244.3.1 10.244.3.2
	write_other
	start_dns_servers
	if ! start_agent "$dp"; then
		not_ok "$dp ($want): agent starts"
		return 1
	fi
	mode=$(sed -n 's/.*sockets of removed backends (.*): destroyed with \(.*\)$/\1/p' "$AGENT_LOG" | head -1)
	check "$dp ($want): the agent logs how UDP sockets are destroyed" test -n "$mode"
	if [ "$mode" != "$want" ]; then
		# An older kernel (no bpf_sock_destroy, or no CONFIG_INET_DIAG_DESTROY).
		skip "$dp ($want): a connected UDP socket leaves a removed backend" \
			"sockets of removed backends: destroyed with ${mode:-?} here"
		stop_agent
		return 0
	fi

	# Two held sockets, each connected: one to dns, one to other.
	in_client "$PROBE" --udp-hold 6 --interval-ms 50 --timeout-ms 200 10.96.0.53:53 \
		>"$WORK/hold.out" 2>&1 &
	HOLD=$!
	in_client "$PROBE" --udp-hold 6 --interval-ms 50 --timeout-ms 200 10.96.0.54:54 \
		>"$WORK/other.out" 2>&1 &
	OTHER=$!
	sleep 1
	first=$(last_backend "$WORK/hold.out")
	gone=${first%:*}
	live=10.244.3.1
	[ "$gone" = 10.244.3.1 ] && live=10.244.3.2
	check "$dp ($want): the held socket is answered" test -n "$first"
	[ -n "$first" ] || { sed "s/^/#   /" "$WORK/hold.out" | head; return 1; }
	# Remove its backend and kill its server.
	t_remove=$(awk '$1 == "round" { t = $3 } END { print t }' "$WORK/hold.out")
	write_dns "$live"
	# The agent destroys the socket at the apply; the server goes after that
	# (killed first, its ICMP port unreachable would fail the socket anyway).
	wait_log "udp sockets: 1 connected to removed backends destroyed"
	kill "${SERVER[$gone]}" 2>/dev/null
	wait "$HOLD" 2>/dev/null
	wait "$OTHER" 2>/dev/null
	# After the removal (+2 s), every answer comes from the live backend.
	late=$(awk -v t="$t_remove" '$1 == "round" && $3 > t + 2 { print $4 }' "$WORK/hold.out" |
		sort -u | tr '\n' ' ')
	check "$dp ($want): within 2 s the held socket's datagrams reach a live backend ($late)" \
		test "$late" = "$live:5353 "
	check "$dp ($want): the agent destroyed the socket of the removed backend" \
		grep -q 'udp sockets: 1 connected to removed backends destroyed' "$AGENT_LOG"
	check "$dp ($want): the application saw an error on it and made a new socket" \
		grep -qE '^reopen [0-9.]+ (ECONNABORTED|EDESTADDRREQ)' "$WORK/hold.out"
	check "$dp ($want): a socket of another Service to the same address is not touched" other_untouched
	if [ "$TESTS_FAILED" -gt 0 ]; then
		grep -E '^(reopen|round [0-9]+ [0-9.]+ (error|lost))' "$WORK/hold.out" | sed 's/^/#   hold: /'
		grep -vE '^round' "$WORK/other.out" | sed 's/^/#   other: /'
		sed 's/^/#   hold: /' "$WORK/hold.out" | tail -40
		sed 's/^/#   agent: /' "$AGENT_LOG" | tail -20
	fi
	stop_agent
	in_node "$AGENT" --cleanup --bpffs="$BPFFS" --cgroup="$CGROUP" >/dev/null 2>&1
}

scenario bpf_sock_destroy
SLUICE_SOCK_DESTROY=sock_diag scenario sock_diag
exit 0
