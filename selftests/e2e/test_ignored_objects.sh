#!/bin/bash
# Objects kube-proxy leaves alone, from both sources, on both datapaths: a
# Service labelled service.kubernetes.io/service-proxy-name is not served
# (gaining the label takes its frontends away, losing it brings them
# back), an EndpointSlice labelled service.kubernetes.io/headless lends no
# endpoint, headless and ExternalName Services cost no log line per sync.
# With the API source the labels go to the server as kube-proxy's label
# selector, so those objects never reach the agent.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/kube_lib.sh"

SELECTOR='!service.kubernetes.io/headless,!service.kubernetes.io/service-proxy-name'

# labelled JSON LABEL VALUE: the object with one more label.
labelled() { jq -c --arg k "$1" --arg v "$2" '.metadata.labels[$k] = $v'; }

# The objects, as files in DIR (manifests or the test API server's).
write_objects() {
	local dir=$1
	rm -f "$dir"/*
	service web 10.96.0.10 >"$dir/web.json"
	slice web-1 web 10.244.1.1 >"$dir/web-1.json"
	# A slice of a headless Service's: its endpoint must not be used.
	slice web-2 web 10.244.1.2 | labelled service.kubernetes.io/headless "" >"$dir/web-2.json"
	service other 10.96.0.20 | labelled service.kubernetes.io/service-proxy-name other-proxy \
		>"$dir/other.json"
	slice other-1 other 10.244.1.9 | labelled service.kubernetes.io/service-proxy-name \
		other-proxy >"$dir/other-1.json"
	service db None >"$dir/db.json"
	slice db-1 db 10.244.1.9 | labelled service.kubernetes.io/headless "" >"$dir/db-1.json"
	echo '{"apiVersion":"v1","kind":"Service","metadata":{"name":"ext","namespace":"default"},
	 "spec":{"type":"ExternalName","externalName":"db.example.com"}}' >"$dir/ext.json"
	node_object "$NODE_NAME" >"$dir/node.json"
}

# stats_selector RESOURCE: the labelSelector of the server's last request for it.
stats_selector() {
	in_node curl -sf "http://127.0.0.1:6444/stats" | awk -v r="$1" '$1 == r { print $4 }'
}

e2e_setup || { not_ok "setup"; exit 1; }
make_pki || { not_ok "setup: openssl certificates"; exit 1; }
start_backends 10.244.1.1:8080 10.244.1.2:8080 10.244.1.9:8080 10.96.0.10:80 10.96.0.20:80

for dp in $DATAPATHS; do
	# The manifest directory: no selector, the decoders filter.
	write_objects "$MANIFESTS"
	if ! start_agent "$dp"; then
		not_ok "$dp: dir: agent starts"
		continue
	fi
	probe --count 50 10.96.0.10:80
	expect_backends "$dp: dir: a slice labelled headless lends no endpoint" "10.244.1.1:8080 " 50
	probe --count 20 10.96.0.20:80
	expect_backends "$dp: dir: a Service of another proxy is not translated" "10.96.0.20:80 " 20
	labelled <"$MANIFESTS/web.json" service.kubernetes.io/service-proxy-name x >"$WORK/web.json"
	mv "$WORK/web.json" "$MANIFESTS/web.json"
	sleep 1
	probe --count 20 10.96.0.10:80
	expect_backends "$dp: dir: a Service that gains the label loses its frontends" \
		"10.96.0.10:80 " 20
	service web 10.96.0.10 >"$WORK/web.json"
	mv "$WORK/web.json" "$MANIFESTS/web.json"
	sleep 1
	probe --count 50 10.96.0.10:80
	expect_backends "$dp: dir: a Service that loses the label is served again" \
		"10.244.1.1:8080 " 50
	# Resyncs of unrelated changes say nothing about the headless or ExternalName Service.
	before=$(grep -cE 'default/(db|ext)' "$AGENT_LOG")
	for i in 1 2 3; do
		slice web-1 web 10.244.1.1 >"$WORK/web-1.json"
		mv "$WORK/web-1.json" "$MANIFESTS/web-1.json"
		sleep 0.3
	done
	check "$dp: dir: headless and ExternalName Services: no log line per sync" \
		test "$(grep -cE 'default/(db|ext)' "$AGENT_LOG")" = "$before" -a "$before" -le 1
	check "$dp: dir: no warning about ignored objects" \
		bash -c "! grep -E 'warn.*(other|db|ext|web-2)' '$AGENT_LOG'"
	stop_agent

	# The API source: the server filters by the selector the agent sends.
	write_objects "$OBJECTS"
	: >"$API_DIR/server.log"
	if ! start_api; then
		not_ok "$dp: api: the test API server starts"
		continue
	fi
	if ! start_agent "$dp" --source=kube --kubeconfig="$API_DIR/kubeconfig"; then
		not_ok "$dp: api: agent starts and syncs"
		stop_api
		continue
	fi
	check "$dp: api: Services are listed and watched with kube-proxy's label selector" \
		test "$(stats_selector services)" = "$SELECTOR"
	check "$dp: api: EndpointSlices are listed and watched with kube-proxy's label selector" \
		test "$(stats_selector endpointslices)" = "$SELECTOR"
	check "$dp: api: the ignored objects never reach the agent" \
		bash -c "grep -q 'listed 3 services' '$AGENT_LOG' &&
			grep -q 'listed 1 endpointslices' '$AGENT_LOG' &&
			! grep -q 'ignored as kube-proxy does' '$AGENT_LOG'"
	probe --count 50 10.96.0.10:80
	expect_backends "$dp: api: a slice labelled headless lends no endpoint" "10.244.1.1:8080 " 50
	probe --count 20 10.96.0.20:80
	expect_backends "$dp: api: a Service of another proxy is not translated" "10.96.0.20:80 " 20
	# Gaining the label is a DELETED event through the selector, losing it ADDED.
	service web 10.96.0.10 | labelled service.kubernetes.io/service-proxy-name x | ctl apply
	sleep 1
	probe --count 20 10.96.0.10:80
	expect_backends "$dp: api: a Service that gains the label loses its frontends" \
		"10.96.0.10:80 " 20
	service web 10.96.0.10 | ctl apply
	sleep 1
	probe --count 50 10.96.0.10:80
	expect_backends "$dp: api: a Service that loses the label is served again" \
		"10.244.1.1:8080 " 50
	slice web-2 web 10.244.1.2 | ctl apply
	sleep 1
	probe --count 100 10.96.0.10:80
	expect_backends "$dp: api: a slice that loses the headless label lends its endpoint" \
		"10.244.1.1:8080 10.244.1.2:8080 " 100
	check "$dp: api: still nothing ignored reached the agent" \
		bash -c "! grep -q 'ignored as kube-proxy does' '$AGENT_LOG'"
	stop_agent
	stop_api
done
exit 0
