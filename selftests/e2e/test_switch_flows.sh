#!/bin/bash
# Switching datapaths while clients connect in a loop fails no connection
# (issue 14, point 3): bpf -> nftables -> bpf -> nftables by the automatic
# fallback (no BPF capabilities) -> bpf, with two clients on the node
# looping all along, one through the ClusterIP and one dialling a backend
# directly. The backends close first, so their TIME_WAIT sockets are the
# ones a reused client port meets: a SYN whose TCP timestamps come from
# another translation (offsets differ per destination) is dropped there as
# a PAWS failure unless nftables moves its client ports out of the
# ephemeral range. Checked: every connection of both loops succeeded and
# saw the address it dialled, the backends counted no PAWS drop, BPF
# state went at once (in order: what translates new connections first),
# and nftables' table went at once with its NAT hooks kept in table
# sluice-drain for --handover-seconds (the connections it DNAT'd finish).
. "$(dirname "$0")/lib.sh"

# Long enough that the drain table is still there when checked on a slow
# machine (2 s was not, under qemu's TCG).
HANDOVER=5

has_drain() { in_node nft list table inet sluice-drain >/dev/null 2>&1; }
no_drain() { ! has_drain; }
paws_drops() { in_be awk '/^TcpExt:/ { if (!n) { for (i = 1; i <= NF; i++) k[i] = $i; n = 1 }
	else for (i = 1; i <= NF; i++) if (k[i] == "PAWSTimewait") print $i }' /proc/net/netstat; }

# switch_to DP [ARGS]: stops the agent and starts one on DP, as an operator does.
switch_to() {
	stop_agent
	start_agent "$@" --handover-seconds=$HANDOVER || not_ok "the agent on $1 syncs"
}

# The agent on auto without the BPF capabilities: the fallback to nftables.
switch_to_fallback() {
	stop_agent
	start_agent_without_bpf_caps --handover-seconds=$HANDOVER ||
		not_ok "the agent falls back to nftables and syncs"
}

# expect_loop NAME FILE ADDR: every attempt of the loop in FILE succeeded.
expect_loop() {
	local name=$1 f=$2 v attempts ok
	v() { awk -v k="$1" '$1 == k { print $2 }' "$f"; }
	attempts=$(v attempts) ok=$(v ok)
	if [ -n "$attempts" ] && [ "$attempts" -gt 1000 ] && [ "$ok" = "$attempts" ] &&
		[ "$(v peer-mismatch)" = 0 ]; then
		ok "$name ($ok connections)"
	else
		not_ok "$name"
		sed 's/^/#   /' "$f" | head -30
	fi
}

e2e_setup || { not_ok "setup"; exit 1; }
start_backends --close-first 10.244.1.1:8080 10.244.1.2:8080 10.96.0.10:80
write_web_manifest
paws_before=$(paws_drops)

start_agent bpf || { not_ok "the agent on bpf syncs"; exit 1; }
in_client "$PROBE" --log-failures --duration 22 --timeout-ms 1000 10.96.0.10:80 \
	>"$WORK/loop-service.out" 2>&1 &
LOOP_SERVICE=$!
in_client "$PROBE" --log-failures --duration 22 --timeout-ms 1000 10.244.1.1:8080 \
	>"$WORK/loop-direct.out" 2>&1 &
LOOP_DIRECT=$!
sleep 3

# bpf -> nftables: the BPF state goes as nftables serves.
switch_to nftables
check "bpf -> nftables: no BPF pin is left" within no_pins
check "bpf -> nftables: the table serves" has_table
sleep 3

# nftables -> bpf: the table goes; its NAT hooks stay for the handover.
switch_to bpf
check "nftables -> bpf: the table is gone" no_table
check "nftables -> bpf: the agent says nftables drains for the handover" \
	grep -q "switched from nftables to bpf: nftables keeps translating the flows it began for $HANDOVER s" "$AGENT_LOG"
check "nftables -> bpf: table sluice-drain holds the NAT hooks meanwhile" has_drain
sleep $((HANDOVER + 1))
check "nftables -> bpf: after the handover sluice-drain is gone too" within no_drain

# bpf -> nftables by the fallback: bpf cannot be opened there, so it goes at once.
switch_to_fallback
check "fallback: no BPF pin is left" within no_pins
sleep 3
switch_to bpf
wait $LOOP_SERVICE $LOOP_DIRECT
expect_loop "no connection through the ClusterIP failed across four switches" \
	"$WORK/loop-service.out"
expect_loop "no connection dialling a backend directly failed across four switches" \
	"$WORK/loop-direct.out"
check "the backends dropped no SYN as a PAWS failure in TIME_WAIT" \
	test "$(paws_drops)" = "$paws_before"
stop_agent
exit 0
