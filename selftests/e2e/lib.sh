#!/bin/bash
# End-to-end test kit: a small cluster of network namespaces on this machine.
#
#   node-ID  the node: the agent runs here; clients run here, in a child cgroup
#   be-ID    the backends: one veth away, every pod address on its interface
#
# The node routes the pod and service ranges into be-ID (design.md section
# 5: a locally born connection is routed before nftables' output hook can
# translate it), so a packet that escapes translation reaches a decoy
# server on the service address in be-ID and is counted as a failure.
# Nothing leaves the machine: no namespace has a default route.
# Everything is removed by e2e_teardown, which runs from an EXIT trap.
set -u

E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$E2E_DIR/../.." && pwd)
BUILD=${BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
# E2E_AGENT, E2E_SLUICECTL: other programs in the build tree's place
# (test_image.sh: the image's, chrooted by selftests/e2e/image-run.sh).
AGENT=${E2E_AGENT:-$BUILD/sluice-agent}
SLUICECTL=${E2E_SLUICECTL:-$BUILD/sluicectl}
ECHO_SERVER="$BUILD/selftests/tools/echo-server"
PROBE="$BUILD/selftests/tools/probe-client"

ID="sl$$"
NODE_NS="node-$ID"
BE_NS="be-$ID"
NODE_NAME="node-a"
WORK=$(mktemp -d "/tmp/sluice-e2e-$ID.XXXX")
MANIFESTS="$WORK/manifests"
BPFFS_MNT="$WORK/bpffs"
BPFFS="$BPFFS_MNT/sluice"
# The agent's status files (sluicectl status, explain): the test's own, never /run/sluice.
export SLUICE_STATUS_DIR="$WORK/status"
CGROUP_ROOT=$(awk '$9 == "cgroup2" { print $5; exit }' /proc/self/mountinfo)
CGROUP="$CGROUP_ROOT/sluice-e2e-$ID"
# For image-run.sh: what to bind into the image's root, and where.
export E2E_WORK="$WORK" E2E_BPFFS_MNT="$BPFFS_MNT" E2E_CGROUP_ROOT="$CGROUP_ROOT"
AGENT_PID=""
AGENT_LOG="$WORK/agent.log"
PIDS=()
EXTRA_NS=() # namespaces a test adds; removed with the others
TEARDOWN_HOOKS=() # functions a test adds; run before the namespaces go
TESTS_FAILED=0

ok() { echo "ok - $*"; }
not_ok() {
	echo "not ok - $*"
	TESTS_FAILED=$((TESTS_FAILED + 1))
}
# check NAME COMMAND...: one TAP line for the outcome of COMMAND.
check() {
	local name=$1
	shift
	if "$@"; then ok "$name"; else not_ok "$name"; fi
}

in_node() { nsenter --net="/run/netns/$NODE_NS" "$@"; }
in_be() { nsenter --net="/run/netns/$BE_NS" "$@"; }
# A process in the test cgroup (where the socket hooks are), in the node namespace.
in_client() {
	bash -c 'echo $$ > "$0/cgroup.procs" && exec nsenter --net="/run/netns/$1" "${@:2}"' \
		"$CGROUP" "$NODE_NS" "$@"
}

# A client outside the cluster, ext-ID, one veth away from the node
# (10.99.1.2 / fd99:1::2; the node is 10.99.1.1 / fd99:1::1): for NodePorts,
# externalIPs and LB IPs. setup_outside adds it; it goes with the others.
EXT_NS="ext-$ID"
in_ext() { nsenter --net="/run/netns/$EXT_NS" "$@"; }
# The probe from outside: no cgroup, no socket hooks, packets only.
probe_ext() { in_ext "$PROBE" "$@" >"$WORK/probe.out" 2>&1; }
probe_sources() { awk '$1 == "source" { print $2 }' "$WORK/probe.out" | sort | tr '\n' ' '; }

setup_outside() {
	EXTRA_NS+=("$EXT_NS")
	ip netns add "$EXT_NS" || return 1
	ip link add "x$ID" netns "$NODE_NS" type veth peer name "y$ID" netns "$EXT_NS" || return 1
	in_ext ip link set lo up
	in_ext ip link set "y$ID" up
	in_node ip link set "x$ID" up
	in_node ip addr add 10.99.1.1/24 dev "x$ID"
	in_ext ip addr add 10.99.1.2/24 dev "y$ID"
	in_node ip -6 addr add fd99:1::1/64 dev "x$ID" nodad
	in_ext ip -6 addr add fd99:1::2/64 dev "y$ID" nodad
	# externalIPs and LB IPs live in 10.99.2.0/24: the client routes them to the node.
	in_ext ip route add 10.99.2.0/24 via 10.99.1.1
	in_node sysctl -qw net.ipv4.ip_forward=1
	in_node sysctl -qw net.ipv6.conf.all.forwarding=1
	# The backends answer clients outside through the node.
	in_be ip -6 route add fd99:1::/64 via fd99::1
}

e2e_setup() {
	trap e2e_teardown EXIT
	trap 'exit 130' INT TERM
	mkdir -p "$MANIFESTS" "$BPFFS_MNT"
	mount -t bpf bpf "$BPFFS_MNT" || return 1
	mkdir "$CGROUP" || return 1
	ip netns add "$NODE_NS" && ip netns add "$BE_NS" || return 1
	ip link add "v$ID" netns "$NODE_NS" type veth peer name "w$ID" netns "$BE_NS" || return 1
	in_node ip link set lo up
	in_be ip link set lo up
	in_node ip link set "v$ID" up
	in_be ip link set "w$ID" up
	in_node ip addr add 10.99.0.1/24 dev "v$ID"
	in_be ip addr add 10.99.0.2/24 dev "w$ID"
	in_node ip -6 addr add fd99::1/64 dev "v$ID" nodad
	in_be ip -6 addr add fd99::2/64 dev "w$ID" nodad
	# Wide enough for 100k Services (bench/gen-manifests.sh) and their endpoints.
	in_node ip route add 10.244.0.0/14 via 10.99.0.2
	in_node ip route add 10.96.0.0/15 via 10.99.0.2
	in_node ip -6 route add fd00:244::/64 via fd99::2
	in_node ip -6 route add fd00:96::/112 via fd99::2
	in_be ip route add 10.99.0.0/16 via 10.99.0.1 2>/dev/null
	in_be sysctl -qw net.ipv6.conf.all.forwarding=0
}

e2e_teardown() {
	local rc=$?
	stop_agent
	for hook in "${TEARDOWN_HOOKS[@]}"; do "$hook"; done
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	if [ -x "$AGENT" ]; then
		in_node "$AGENT" --cleanup --bpffs="$BPFFS" --cgroup="$CGROUP" >/dev/null 2>&1
	fi
	ip netns del "$NODE_NS" 2>/dev/null
	ip netns del "$BE_NS" 2>/dev/null
	for ns in "${EXTRA_NS[@]}"; do ip netns del "$ns" 2>/dev/null; done
	[ -d "$CGROUP" ] && rmdir "$CGROUP" 2>/dev/null
	umount "$BPFFS_MNT" 2>/dev/null
	rm -rf "$WORK"
	exit $rc
}

# Adds pod addresses to the backend namespace and serves on ADDR:PORT pairs.
# Usage: start_backends ADDR:PORT...
start_backends() {
	local ep addr
	for ep in "$@"; do
		[[ $ep == --* ]] && continue # an echo-server flag
		addr=${ep%:*}
		addr=${addr#[}
		addr=${addr%]}
		case "$addr" in
		*:*) in_be ip -6 addr add "$addr/128" dev lo nodad 2>/dev/null ;;
		*) in_be ip addr add "$addr/32" dev lo 2>/dev/null ;;
		esac
	done
	# nsenter execs the server, so $! is the server itself.
	nsenter --net="/run/netns/$BE_NS" "$ECHO_SERVER" "$@" >"$WORK/echo.$#.$RANDOM.log" 2>&1 &
	PIDS+=($!)
	sleep 0.2
}

# Starts the agent on $MANIFESTS in the node namespace and waits for its
# first sync, at most SYNC_WAIT_STEPS x 50 ms (default 5 s).
# Usage: start_agent DATAPATH [extra flags]
start_agent() {
	local dp=$1
	shift
	run_agent AGENT_PID "$NODE_NS" "$NODE_NAME" "$CGROUP" "$BPFFS" "$AGENT_LOG" \
		"$SLUICE_STATUS_DIR" "$dp" "$@"
}

# The agent of any node namespace (a test with two nodes runs two): its pid
# goes into the variable named PIDVAR.
# Usage: run_agent PIDVAR NS NODE_NAME CGROUP BPFFS LOG STATUS_DIR DATAPATH [flags]
run_agent() {
	local var=$1 ns=$2 node=$3 cg=$4 bpffs=$5 log=$6 status=$7 dp=$8 i pid
	shift 8
	: >"$log"
	# nsenter execs the agent, so $! is the agent itself.
	SLUICE_STATUS_DIR="$status" nsenter --net="/run/netns/$ns" "$AGENT" \
		--source="dir:$MANIFESTS" --datapath="$dp" --node-name="$node" --cgroup="$cg" \
		--bpffs="$bpffs" -v "$@" >>"$log" 2>&1 &
	pid=$!
	printf -v "$var" %s "$pid"
	for i in $(seq "${SYNC_WAIT_STEPS:-100}"); do
		grep -q "synced" "$log" && return 0
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	echo "# agent did not sync; its log:"
	sed 's/^/#   /' "$log"
	return 1
}

stop_agent() {
	halt_agent AGENT_PID "$AGENT_LOG"
}

# Usage: halt_agent PIDVAR LOG: stops the agent run_agent started, if running.
halt_agent() {
	local var=$1 log=$2
	if [ -n "${!var}" ]; then
		kill -TERM "${!var}" 2>/dev/null
		wait "${!var}" 2>/dev/null
		printf -v "$var" %s ""
	fi
	# make test SANITIZE=1: a sanitizer's report (at exit for leaks) fails the test.
	if grep -qE 'Sanitizer|runtime error:' "$log" 2>/dev/null; then
		not_ok "the agent ran clean under the sanitizers"
		grep -E -A12 'Sanitizer|runtime error:' "$log" | sed 's/^/#   /' | head -40
		: >"$log"
	fi
}

# Runs the probe client in the test cgroup; output in $WORK/probe.out.
probe() {
	in_client "$PROBE" "$@" >"$WORK/probe.out" 2>&1
}
probe_value() { awk -v k="$1" '$1 == k { print $2 }' "$WORK/probe.out"; }
# The sorted list of backends that answered the last probe.
probe_backends() { awk '$1 == "backend" { print $2 }' "$WORK/probe.out" | sort | tr '\n' ' '; }
probe_dump() { sed 's/^/#   /' "$WORK/probe.out"; }

# expect_backends "NAME" "SORTED LIST" ATTEMPTS: every attempt answered, by
# exactly the listed backends, with the service address as peer.
expect_backends() {
	local name=$1 want=$2 n=$3 got
	got=$(probe_backends)
	if [ "$(probe_value ok)" = "$n" ] && [ "$got" = "$want" ] &&
		[ "$(probe_value peer-mismatch)" = "0" ]; then
		ok "$name"
	else
		not_ok "$name (want $n answers from: $want)"
		probe_dump
	fi
}

expect_refused() {
	local name=$1 n=$2
	if [ "$(probe_value refused)" = "$n" ]; then
		ok "$name"
	else
		not_ok "$name (want $n refused)"
		probe_dump
	fi
}

# expect_dropped NAME N: none of N attempts answered or was refused: they timed out.
expect_dropped() {
	local name=$1 n=$2
	if [ "$(probe_value ok)" = 0 ] && [ "$(probe_value timeout)" = "$n" ]; then
		ok "$name"
	else
		not_ok "$name (want $n timeouts)"
		probe_dump
	fi
}

# http_status NS ADDR PORT PATH: the HTTP status code ADDR:PORT answers
# from inside namespace NS (bash's /dev/tcp: no HTTP client needed).
http_status() {
	nsenter --net="/run/netns/$1" timeout 3 bash -c "exec 3<>/dev/tcp/$2/$3 &&
		printf 'GET $4 HTTP/1.0\r\n\r\n' >&3 && cat <&3" 2>/dev/null |
		awk 'NR == 1 { print $2 }'
}

# skip NAME REASON: one TAP line for a check that cannot run here (never a pass).
# within COMMAND...: COMMAND holds within 2 s (for what the agent does
# right after its "synced" line, such as removing another datapath's state).
within() {
	local i
	for i in $(seq 40); do "$@" && return 0; sleep 0.05; done
	return 1
}
skip() { echo "ok - $1 # SKIP $2"; }

# write_web_manifest [ADDR...]: web.yaml, ClusterIP 10.96.0.10:80 to port 8080
# of each ADDR (default 10.244.1.1 10.244.1.2), written in one rename.
write_web_manifest() {
	local addrs="" a
	[ $# -gt 0 ] || set -- 10.244.1.1 10.244.1.2
	for a in "$@"; do addrs+="
- {addresses: [$a], conditions: {ready: true}, nodeName: $NODE_NAME}"; done
	cat >"$MANIFESTS/web.yaml.tmp" <<EOT
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  clusterIP: 10.96.0.10
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-1, namespace: default, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints:$addrs
EOT
	mv "$MANIFESTS/web.yaml.tmp" "$MANIFESTS/web.yaml"
}

# write_topology_slice NAME ENDPOINT...; ENDPOINT is ADDR,NODE,ZONE,CONDITIONS,HINT
# CONDITIONS: ready | terminating (serving) | notready; HINT: zone:Z, node:N or -
write_topology_slice() {
	local name=$1 eps="" ep addr node zone cond hint conds hints
	shift
	for ep in "$@"; do
		IFS=, read -r addr node zone cond hint <<<"$ep"
		case "$cond" in
		ready) conds="{ready: true, serving: true, terminating: false}" ;;
		terminating) conds="{ready: false, serving: true, terminating: true}" ;;
		*) conds="{ready: false, serving: false, terminating: false}" ;;
		esac
		case "$hint" in
		zone:*) hints="hints: {forZones: [{name: ${hint#zone:}}]}" ;;
		node:*) hints="hints: {forNodes: [{name: ${hint#node:}}]}" ;;
		*) hints="" ;;
		esac
		eps+="
- addresses: [$addr]
  nodeName: $node
  zone: $zone
  conditions: $conds
  $hints"
	done
	cat >"$MANIFESTS/slice-$name.yaml.tmp" <<EOT
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: $name-1, namespace: default, labels: {kubernetes.io/service-name: $name}}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints:$eps
EOT
	mv "$MANIFESTS/slice-$name.yaml.tmp" "$MANIFESTS/slice-$name.yaml"
}

# What each datapath leaves in the kernel.
bpf_pins() { find "$BPFFS" -mindepth 1 2>/dev/null | wc -l; }
no_pins() { test "$(bpf_pins)" = 0; }
has_table() { in_node nft list table inet sluice >/dev/null 2>&1; }
no_table() { ! has_table; }

# start_agent_without_bpf_caps [ARGS]: the agent on auto without CAP_BPF,
# CAP_SYS_ADMIN and CAP_PERFMON (the automatic fallback to nftables); returns
# 0 once it logged its first sync (at most 5 s).
start_agent_without_bpf_caps() {
	local i
	: >"$AGENT_LOG"
	nsenter --net="/run/netns/$NODE_NS" setpriv --bounding-set=-bpf,-sys_admin,-perfmon -- \
		"$AGENT" --source="dir:$MANIFESTS" --datapath=auto --node-name="$NODE_NAME" \
		--cgroup="$CGROUP" --bpffs="$BPFFS" "$@" >>"$AGENT_LOG" 2>&1 &
	AGENT_PID=$!
	for i in $(seq 100); do grep -q synced "$AGENT_LOG" && return 0; sleep 0.05; done
	return 1
}

# The datapaths to run every scenario on: both unless E2E_DATAPATHS says
# otherwise, less those this machine cannot run (reported as skipped).
DATAPATHS=""
for dp in ${E2E_DATAPATHS:-bpf nftables}; do
	if [ "$(id -u)" != 0 ]; then
		skip "$dp: $(basename "$0" .sh)" "needs root (namespaces, cgroups, bpffs)"
	elif [ "$dp" = bpf ] && [ ! -r /sys/kernel/btf/vmlinux ]; then
		skip "$dp: $(basename "$0" .sh)" "the kernel has no BTF (/sys/kernel/btf/vmlinux)"
	else
		DATAPATHS+="$dp "
	fi
done
[ -n "$DATAPATHS" ] || exit 0
