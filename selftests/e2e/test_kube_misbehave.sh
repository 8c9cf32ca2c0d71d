#!/bin/bash
# The API server source against a server that misbehaves on purpose
# (fake-apiserver's /misbehave), on both datapaths, a different mode on
# each resource at once, in two agent lifetimes per datapath (a fresh agent
# has no backoff yet, so every mode is met at once):
#   A. lists and watch events trickled a byte at a time (endpointslices), a
#      watch line that never ends (services), requests that stall and then
#      connections that are reset (nodes)
#   B. a 410 storm (services), empty watches (endpointslices), 500s (nodes)
# and each time the server behaves again afterwards. The agent must stay
# correct (what it serves keeps serving, changes arrive whole), polite (at
# most RATE_MAX requests per second per resource, counted by the server)
# and bounded (VmHWM under MEM_MAX_KB while an endless line streams: one
# over-long line is held at most, --max-event-bytes, default 16 MiB).
# Last, a list page over --max-list-bytes, and a bad flag value.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/kube_lib.sh"

RATE_MAX=3 # requests per second per resource
MEM_MAX_KB=$((64 * 1024))
WINDOW_MS=4000 # a politeness measure lasts at least this long
OVERLONG="services watch: an event is longer than --max-event-bytes (16777216 bytes)"
RESOURCES="services endpointslices nodes"
W3="10.244.1.1:8080 10.244.1.2:8080 10.244.1.3:8080 "
W2="10.244.1.1:8080 10.244.1.2:8080 "
KUBE_FLAGS=(--source=kube --kubeconfig="$API_DIR/kubeconfig")

write_objects() {
	rm -f "$OBJECTS"/*
	service web 10.96.0.10 >"$OBJECTS/web.json"
	slice web-1 web 10.244.1.1 10.244.1.2 10.244.1.3 >"$OBJECTS/web-1.json"
	node_object "$NODE_NAME" >"$OBJECTS/node.json"
}

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# misbehave MODE [MS [RESOURCE]]: the server misbehaves on RESOURCE's
# requests (every resource's without one); MS: slow's delay per byte.
misbehave() {
	ctl "misbehave?mode=$1${2:+&ms=$2}${3:+&resource=$3}" </dev/null
}

# with_port PORT: the Service on stdin with its port changed, on stdout.
with_port() { sed "s/\"port\":80,/\"port\":$1,/"; }

# The server's request counts now, for polite.
declare -A REQ0
requests_start() {
	local r
	for r in $RESOURCES; do REQ0[$r]=$(api_requests "$r"); done
	T0=$(now_ms)
}

# Until WINDOW_MS have passed since requests_start.
window_wait() {
	local left=$((T0 + WINDOW_MS - $(now_ms)))
	[ "$left" -gt 0 ] && sleep "$(printf '%d.%03d' $((left / 1000)) $((left % 1000)))"
	return 0
}

# polite NAME RESOURCE [MAX]: RESOURCE saw at least one request since
# requests_start (the mode was met) and at most RATE_MAX a second (or MAX in all).
polite() {
	local n=$(($(api_requests "$2") - REQ0[$2])) ms=$(($(now_ms) - T0))
	local max=${3:-$((RATE_MAX * ms / 1000))}
	check "$1 ($n requests in $ms ms, at most $max)" test "$n" -ge 1 -a "$n" -le "$max"
}

mem_kb() { awk -v f="$1:" '$1 == f { print $2 }' "/proc/$AGENT_PID/status"; }

# Under ASan (make test SANITIZE=1) freed memory sits in a quarantine and
# shadow memory adds to it: the memory checks are skipped there.
SANITIZED=""
ldd "$AGENT" 2>/dev/null | grep -q 'libasan' && SANITIZED=1

# check_mem NAME COMMAND...: check, or skip in a sanitizer build.
check_mem() {
	if [ -n "$SANITIZED" ]; then skip "$1" "ASan's quarantine and shadow memory"; else check "$@"; fi
}

e2e_setup || { not_ok "setup"; exit 1; }
make_pki || { not_ok "setup: openssl certificates"; exit 1; }
start_backends 10.244.1.1:8080 10.244.1.2:8080 10.244.1.3:8080 10.244.1.9:8080 \
	10.96.0.10:80 10.96.0.40:80

for dp in $DATAPATHS; do
	write_objects
	: >"$API_DIR/server.log"
	if ! start_api; then
		not_ok "$dp: the test API server starts"
		continue
	fi

	# A. The first list of endpointslices, and what follows on its watch,
	# come a byte every 2 ms.
	misbehave slow 2 endpointslices
	if ! start_agent "$dp" "${KUBE_FLAGS[@]}"; then
		not_ok "$dp: agent starts and syncs from the API server"
		stop_api
		continue
	fi
	probe --count 100 10.96.0.10:80
	expect_backends "$dp: a list trickled a byte at a time is read whole" "$W3" 100

	mark=$(log_mark)
	rss_before=$(mem_kb VmRSS)
	hwm_before=$(mem_kb VmHWM)
	requests_start
	misbehave endless 0 services
	misbehave stall 0 nodes
	slice web-1 web 10.244.1.1 10.244.1.2 | ctl apply
	# An endless watch line is given up at 16 MiB (the default), twice.
	rss_max=0
	for _ in $(seq 100); do
		rss=$(mem_kb VmRSS)
		[ "${rss:-0}" -gt "$rss_max" ] && rss_max=$rss
		[ "$(tail -n +$((mark + 1)) "$AGENT_LOG" | grep -c "$OVERLONG")" -ge 2 ] && break
		sleep 0.2
	done
	hwm=$(mem_kb VmHWM)
	check "$dp: an endless watch line is given up at the cap, logged, the watch restarted" \
		test "$(tail -n +$((mark + 1)) "$AGENT_LOG" | grep -c "$OVERLONG")" -ge 2
	check_mem "$dp: while an endless line streams the agent stays under $((MEM_MAX_KB / 1024)) MiB (VmHWM ${hwm} kB, VmRSS up to ${rss_max} kB)" \
		test "${hwm:-999999999}" -le "$MEM_MAX_KB"
	# One line at most is held: the peak is what was there, plus 16 MiB and some slack.
	hwm_bound=$((rss_before + 16384 + 8192))
	[ "$hwm_before" -gt "$hwm_bound" ] && hwm_bound=$hwm_before
	check_mem "$dp: while an endless line streams the agent holds one line at most (VmHWM ${hwm} kB, bound ${hwm_bound} kB)" \
		test "${hwm:-999999999}" -le "$hwm_bound"
	probe_until 10 "$W2" 100 10.96.0.10:80
	expect_backends "$dp: a watch event trickled a byte at a time arrives whole" "$W2" 100
	window_wait
	polite "$dp: an endless watch line: services are watched again politely" services
	polite "$dp: a stalled request is waited for, not repeated" nodes 1
	misbehave none 0 services
	misbehave none 0 endpointslices
	sleep 0.5
	rss_after=$(mem_kb VmRSS)
	check_mem "$dp: the endless line's memory is released (VmRSS ${rss_before} kB before, ${rss_after} kB after)" \
		test "${rss_after:-999999999}" -le $((rss_before + 8192))

	# The stalled request is answered with a reset, and so is every one after it.
	requests_start
	misbehave reset 0 nodes
	window_wait
	polite "$dp: connection resets: nodes are asked again politely" nodes
	check "$dp: nothing trickled or cut off is taken for a malformed event" \
		bash -c "! tail -n +$((mark + 1)) '$AGENT_LOG' | grep -q 'malformed event'"
	misbehave none 0 nodes
	service late 10.96.0.40 | ctl apply
	slice late-1 late 10.244.1.9 | ctl apply
	probe_until 10 "10.244.1.9:8080 " 30 10.96.0.40:80
	expect_backends "$dp: once the server behaves again a new Service arrives" \
		"10.244.1.9:8080 " 30
	probe --count 100 10.96.0.10:80
	expect_backends "$dp: the Service served all along still serves" "$W2" 100
	stop_agent

	# B. Watches that end at once, with ERROR 410 or with nothing, and 500s:
	# each counts as a failure, and failures back off.
	if ! start_agent "$dp" "${KUBE_FLAGS[@]}"; then
		not_ok "$dp: agent starts again and syncs from the API server"
		stop_api
		continue
	fi
	mark=$(log_mark)
	requests_start
	misbehave gone 0 services
	misbehave empty 0 endpointslices
	misbehave error 0 nodes
	window_wait
	polite "$dp: a 410 storm: services are relisted politely" services
	polite "$dp: empty watches: endpointslices are watched again politely" endpointslices
	polite "$dp: 500s: nodes are asked again politely" nodes
	check "$dp: the 410 storm is logged" \
		wait_log_since "$mark" "services watch: error event 410.*listing services again in" 1
	check "$dp: an empty watch is logged as a failure" \
		wait_log_since "$mark" "endpointslices watch ended after [0-9]* ms without an event" 1
	check "$dp: a 500 is logged" wait_log_since "$mark" "nodes watch: HTTP 500" 1
	probe --count 100 10.96.0.10:80
	expect_backends "$dp: during a 410 storm, empty watches and 500s the Service keeps serving" \
		"$W2" 100
	misbehave none
	service late 10.96.0.40 | with_port 81 | ctl apply
	slice web-1 web 10.244.1.1 10.244.1.2 10.244.1.3 | ctl apply
	probe_until 10 "$W3" 100 10.96.0.10:80
	expect_backends "$dp: once the server behaves again an endpoint change arrives" "$W3" 100
	probe_until 10 "10.244.1.9:8080 " 30 10.96.0.40:81
	expect_backends "$dp: once the server behaves again a Service change arrives" \
		"10.244.1.9:8080 " 30
	stop_agent
	stop_api
done

# A list page over --max-list-bytes: logged, the list retried with backoff,
# nothing applied before a complete list.
write_objects
{
	echo '{"apiVersion":"v1","kind":"List","items":['
	for i in $(seq 0 599); do
		[ "$i" = 0 ] || echo ,
		service "bulk-$i" "10.96.$((1 + i / 250)).$((1 + i % 250))"
	done
	echo ']}'
} >"$OBJECTS/bulk.json"
: >"$API_DIR/server.log"
start_api
requests_start
in_node timeout 4 "$AGENT" "${KUBE_FLAGS[@]}" --max-list-bytes=16K --datapath=nftables \
	--node-name="$NODE_NAME" --cgroup="$CGROUP" --bpffs="$BPFFS" >"$WORK/list-cap.log" 2>&1
check "a list page over --max-list-bytes is logged" \
	grep -q "services list: a page is larger than --max-list-bytes (16384 bytes); listing again in" \
	"$WORK/list-cap.log"
polite "a list page over --max-list-bytes is retried politely" services
check "nothing is applied while a list page is over --max-list-bytes" \
	bash -c "! grep -q synced '$WORK/list-cap.log'"
stop_api
in_node "$AGENT" "${KUBE_FLAGS[@]}" --max-event-bytes=0 --datapath=nftables \
	--node-name="$NODE_NAME" --cgroup="$CGROUP" --bpffs="$BPFFS" >"$WORK/flag.log" 2>&1
check "--max-event-bytes=0 is refused (exit 2)" test $? = 2
exit 0
