#!/bin/bash
# The demo: a sandbox cluster of network namespaces built from examples/,
# programmed by the agent; a client calls the services and the demo prints
# which backends answered, then removes everything.
# Usage: examples/demo.sh  (DATAPATH=bpf|nftables|auto, default auto)
. "$(dirname "$0")/../selftests/e2e/lib.sh"

show() {
	echo "\$ probe-client $*"
	probe "$@"
	sed -n 's/^backend /   answered by /p; s/^refused \([1-9].*\)/   refused: \1/p' \
		"$WORK/probe.out"
}

e2e_setup || exit 1
cp "$ROOT"/examples/*.yaml "$ROOT"/examples/*.json "$MANIFESTS/"
start_backends 10.244.1.1:8080 10.244.1.2:8080 10.244.1.3:8080 \
	10.244.1.1:5353 10.244.1.2:5353 10.244.1.3:5353 \
	[fd00:244::1]:8080 [fd00:244::2]:8080
start_agent "${DATAPATH:-auto}" || exit 1
grep -E 'datapath|synced' "$AGENT_LOG" | sed 's/^/agent: /'
echo
show --count 30 10.96.0.10:80
show --udp --count 30 10.96.0.10:53
show --count 30 '[fd00:96::10]:80'
show --count 5 10.96.0.11:80
echo
echo "\$ sluicectl services"
"$SLUICECTL" --bpffs="$BPFFS" services 2>&1 | sed 's/^/   /'
echo
echo "removing the sandbox"
