#!/bin/bash
# The API server source end to end, on both datapaths: the agent follows a
# test API server (selftests/tools/fake-apiserver: TLS, bearer token, list
# and watch) running in the node namespace: initial sync, changes on the
# watch, malformed and invalid events, a 410 relist, an outage and a
# restart with changed objects, a refused token, an unknown CA.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/kube_lib.sh"

write_objects() {
	rm -f "$OBJECTS"/*
	service web 10.96.0.10 >"$OBJECTS/web.json"
	slice web-1 web 10.244.1.1 10.244.1.2 10.244.1.3 >"$OBJECTS/web-1.json"
	service other 10.96.0.20 >"$OBJECTS/other.json"
	slice other-1 other 10.244.1.9 >"$OBJECTS/other-1.json"
	service gone 10.96.0.30 >"$OBJECTS/gone.json"
	slice gone-1 gone 10.244.1.9 >"$OBJECTS/gone-1.json"
	node_object "$NODE_NAME" >"$OBJECTS/node.json"
	node_object some-other-node >"$OBJECTS/node-other.json"
	# Enough Services for two pages of the agent's list (limit=500).
	{
		echo '{"apiVersion":"v1","kind":"List","items":['
		for i in $(seq 0 599); do
			[ "$i" = 0 ] || echo ,
			service "bulk-$i" "10.96.$((1 + i / 250)).$((1 + i % 250))"
		done
		echo ']}'
	} >"$OBJECTS/bulk.json"
}

e2e_setup || { not_ok "setup"; exit 1; }
make_pki || { not_ok "setup: openssl certificates"; exit 1; }
start_backends 10.244.1.1:8080 10.244.1.2:8080 10.244.1.3:8080 10.244.1.9:8080 \
	10.96.0.10:80 10.96.0.20:80 10.96.0.30:80

W3="10.244.1.1:8080 10.244.1.2:8080 10.244.1.3:8080 "
W2="10.244.1.1:8080 10.244.1.2:8080 "
KUBE_FLAGS=(--source=kube --kubeconfig="$API_DIR/kubeconfig")

for dp in $DATAPATHS; do
	write_objects
	cp "$API_DIR/server-token" "$API_DIR/agent-token"
	: >"$API_DIR/server.log"
	if ! start_api; then
		not_ok "$dp: the test API server starts"
		continue
	fi
	if ! start_agent "$dp" "${KUBE_FLAGS[@]}"; then
		not_ok "$dp: agent starts and syncs from the API server"
		stop_api
		continue
	fi
	check "$dp: the agent lists only its own Node (fieldSelector)" \
		grep -q "listed 1 nodes" "$AGENT_LOG"
	check "$dp: a large list is read in pages (limit/continue)" \
		grep -q "listed 603 services (2 pages)" "$AGENT_LOG"

	# Initial sync.
	probe --count 150 10.96.0.10:80
	expect_backends "$dp: initial sync: a Service from the API reaches its endpoints" "$W3" 150

	# A change on the watch.
	slice web-1 web 10.244.1.1 10.244.1.2 | ctl apply
	sleep 1
	probe --count 100 10.96.0.10:80
	expect_backends "$dp: an endpoint removed on the watch gets no connection a second later" \
		"$W2" 100
	slice web-1 web 10.244.1.1 10.244.1.2 10.244.1.3 | ctl apply
	sleep 1
	probe --count 150 10.96.0.10:80
	expect_backends "$dp: an endpoint added on the watch is served a second later" "$W3" 150

	# A malformed event and an invalid object: one log line each, the watch goes on.
	ctl "malformed?resource=endpointslices" </dev/null
	service badaddr 10.96.0.999 | ctl apply
	slice web-1 web 10.244.1.1 10.244.1.2 | ctl apply
	sleep 1
	check "$dp: a malformed event is logged once and skipped" \
		test "$(grep -c 'endpointslices watch: malformed event skipped' "$AGENT_LOG")" = 1
	check "$dp: an invalid object on the watch is logged once, naming it" \
		test "$(grep -c 'badaddr' "$AGENT_LOG")" = 1
	probe --count 100 10.96.0.10:80
	expect_backends "$dp: the watch goes on after bad events" "$W2" 100

	# Bookmarks, then an ERROR 410 event on the open watches: relist, nothing lost.
	ctl bookmark </dev/null
	ctl expire </dev/null
	sleep 1
	check "$dp: an ERROR 410 event makes the agent list again" \
		grep -q "error event 410.*listing services again" "$AGENT_LOG"
	probe --count 100 10.96.0.10:80
	expect_backends "$dp: after the relist the same endpoints serve" "$W2" 100

	# The watch breaks; while it is broken an object is deleted and the
	# history compacted: the re-watch gets 410 Gone, the relist drops what
	# went and keeps the rest.
	mark=$(log_mark)
	ctl "unavailable?ms=1500" </dev/null
	ctl drop </dev/null
	ctl "delete?resource=services&namespace=default&name=gone" </dev/null
	ctl "delete?resource=endpointslices&namespace=default&name=gone-1" </dev/null
	slice web-1 web 10.244.1.1 10.244.1.2 10.244.1.3 | ctl apply
	ctl expire </dev/null
	# The agent retries with backoff while the server answers 503; a 410
	# at once is a failed watch too, so the relist comes after a backoff.
	check "$dp: a watch resumed from an expired version gets 410 and lists again" \
		wait_log_since "$mark" "watch: 410 Gone; listing services again" 8
	wait_log_since "$mark" "listed [0-9]* services" 10
	wait_log_since "$mark" "listed [0-9]* endpointslices" 10
	sleep 0.3
	# Untranslated, the connection reaches the decoy on the old ClusterIP.
	probe --count 20 10.96.0.30:80
	expect_backends "$dp: a Service deleted while the watch was broken is gone after the relist" \
		"10.96.0.30:80 " 20
	probe --count 150 10.96.0.10:80
	expect_backends "$dp: a change made while the watch was broken arrives with the relist" \
		"$W3" 150
	probe --count 30 10.96.0.20:80
	expect_backends "$dp: an unchanged Service stays through the relist" "10.244.1.9:8080 " 30

	# Outage: traffic keeps flowing; a restarted server with changed objects is picked up.
	# (The new watches first last a second: only that resets their backoff.)
	sleep 1
	lines=$(log_mark)
	stop_api
	sleep 1
	probe --count 100 10.96.0.10:80
	expect_backends "$dp: while the API server is down the datapath keeps serving" "$W3" 100
	check "$dp: the outage is logged" \
		bash -c "tail -n +$((lines + 1)) '$AGENT_LOG' | grep -q 'watching again from resourceVersion'"
	slice web-1 web 10.244.1.1 >"$OBJECTS/web-1.json"
	rm -f "$OBJECTS/other.json" "$OBJECTS/other-1.json"
	start_api || not_ok "$dp: the test API server restarts"
	# The watches get 410 (the server's versions are newer): relists, after a backoff.
	wait_log_since "$lines" "listed [0-9]* services" 15
	wait_log_since "$lines" "listed [0-9]* endpointslices" 15
	sleep 0.3
	probe --count 50 10.96.0.10:80
	expect_backends "$dp: after the API server restarts its changed objects are served" \
		"10.244.1.1:8080 " 50
	probe --count 20 10.96.0.20:80
	expect_backends "$dp: a Service absent after the restart is removed" "10.96.0.20:80 " 20

	# A refused token: logged clearly, the datapath keeps serving; a new token works.
	# (The new watches first last a second: only that resets their backoff.)
	sleep 1
	echo "wrong-token" >"$API_DIR/agent-token"
	ctl drop </dev/null
	sleep 1
	check "$dp: a refused token is logged clearly" grep -q "401 Unauthorized" "$AGENT_LOG"
	probe --count 30 10.96.0.10:80
	expect_backends "$dp: with a refused token the datapath keeps serving" \
		"10.244.1.1:8080 " 30
	cp "$API_DIR/server-token" "$API_DIR/agent-token"
	slice web-1 web 10.244.1.1 10.244.1.2 | ctl apply
	# The next watch, after the 401s' backoff, has the new token.
	probe_until 10 "$W2" 100 10.96.0.10:80
	expect_backends "$dp: a rotated token file is read again and the watch resumes" "$W2" 100
	stop_agent
	stop_api
done

# TLS is verified: a server certificate from another CA is refused.
write_objects
start_api
in_node timeout 2 "$AGENT" --source=kube --kubeconfig="$API_DIR/kubeconfig-other-ca" \
	--datapath=nftables --node-name="$NODE_NAME" >"$WORK/other-ca.log" 2>&1
check "a server certificate not signed by the configured CA is refused" \
	grep -qi "certificate" "$WORK/other-ca.log"
check "nothing is applied before the first complete list" \
	bash -c "! grep -q synced '$WORK/other-ca.log'"
stop_api
exit 0
