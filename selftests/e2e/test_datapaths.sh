#!/bin/bash
# Choosing, falling back and switching datapaths; --once.
. "$(dirname "$0")/lib.sh"

serves() {
	probe --count 40 10.96.0.10:80
	expect_backends "$1" "10.244.1.1:8080 10.244.1.2:8080 " 40
}

e2e_setup || { not_ok "setup"; exit 1; }
start_backends 10.244.1.1:8080 10.244.1.2:8080 10.96.0.10:80
write_web_manifest

# auto without CAP_BPF, CAP_SYS_ADMIN and CAP_PERFMON: nftables serves.
start_agent_without_bpf_caps
check "auto without BPF capabilities: one log line says why BPF is not used" \
	test "$(grep -c 'bpf datapath unavailable (.*); using nftables' "$AGENT_LOG")" = 1
check "auto without BPF capabilities: the nftables datapath is chosen" \
	grep -q 'synced: datapath nftables' "$AGENT_LOG"
check "auto without BPF capabilities: no BPF state left behind" test "$(bpf_pins)" = 0
serves "auto without BPF capabilities: every Service is served through nftables"
stop_agent

# auto with every capability: BPF; the nftables table goes (its NAT hooks
# drain in sluice-drain: test_switch_flows).
start_agent auto
check "auto with capabilities: the bpf datapath is chosen" \
	grep -q 'synced: datapath bpf' "$AGENT_LOG"
check "switching to bpf removes the nftables table" within no_table
serves "after switching to bpf the Service is served"
stop_agent

# Back to nftables: the links, programs and pins go.
start_agent nftables
no_socket_programs() { test -z "$(bpftool cgroup show "$CGROUP" 2>/dev/null)"; }
check "switching to nftables removes every BPF pin" within no_pins
check "switching to nftables detaches the socket programs" within no_socket_programs
check "switching to nftables creates the table" has_table
serves "after switching to nftables the Service is served"
stop_agent

# The health endpoint: /healthz while running, /readyz once synced.
health() { http_status "$NODE_NS" 127.0.0.1 10256 "$1"; }
start_agent auto --health-addr=127.0.0.1:10256
check "/healthz answers 200 while the agent runs" test "$(health /healthz)" = 200
check "/readyz answers 200 once the first sync is applied" test "$(health /readyz)" = 200
check "an unknown health path answers 404" test "$(health /nope)" = 404
stop_agent

# /readyz goes back to 503 while applying fails (the table removed under the
# agent makes every later nftables batch fail), and /healthz stays 200.
start_agent nftables --health-addr=127.0.0.1:10256
in_node nft delete table inet sluice
sed -i 's/10.244.1.2/10.244.1.3/' "$MANIFESTS/web.yaml"
for i in $(seq 60); do grep -q 'apply of .* failed' "$AGENT_LOG" && break; sleep 0.05; done
check "/readyz answers 503 while the datapath cannot apply changes" \
	test "$(health /readyz)" = 503
check "/healthz still answers 200 while applies fail" test "$(health /healthz)" = 200
stop_agent
write_web_manifest
check "the health endpoint goes away with the agent" test -z "$(health /healthz)"

# --once: applies, leaves the datapath in place, exits 0; bad input exits 1.
for dp in $DATAPATHS; do
	in_node "$AGENT" --cleanup --bpffs="$BPFFS" --cgroup="$CGROUP" >/dev/null 2>&1
	nsenter --net="/run/netns/$NODE_NS" "$AGENT" --source="dir:$MANIFESTS" --once \
		--datapath="$dp" --node-name="$NODE_NAME" --cgroup="$CGROUP" --bpffs="$BPFFS" \
		>"$AGENT_LOG" 2>&1
	check "$dp: --once exits 0 when every input applies" test $? = 0
	serves "$dp: after --once the datapath keeps serving"
	printf 'kind: Service\nmetadata: [\n' >"$MANIFESTS/broken.yaml"
	nsenter --net="/run/netns/$NODE_NS" "$AGENT" --source="dir:$MANIFESTS" --once \
		--datapath="$dp" --node-name="$NODE_NAME" --cgroup="$CGROUP" --bpffs="$BPFFS" \
		>"$AGENT_LOG" 2>&1
	check "$dp: --once exits 1 when an input is rejected" test $? = 1
	serves "$dp: --once with a broken file still applies the rest"
	rm -f "$MANIFESTS/broken.yaml"
done
exit 0
