#!/bin/bash
# Helpers for the end-to-end tests of --source=kube (sourced after lib.sh):
# a throwaway PKI and kubeconfig, the test API server
# (selftests/tools/fake-apiserver) in the node namespace, its control port,
# objects to feed it, and waiting on the agent's log or its datapath.

FAKE="$BUILD/selftests/tools/fake-apiserver"
API_DIR="$WORK/api"
OBJECTS="$API_DIR/objects"
API_PID=""

# A throwaway CA and a server certificate for 127.0.0.1, and the kubeconfig.
make_pki() {
	mkdir -p "$API_DIR" "$OBJECTS" "$API_DIR/other-ca"
	openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=sluice-test-ca \
		-keyout "$API_DIR/ca.key" -out "$API_DIR/ca.crt" 2>/dev/null || return 1
	openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 \
		-keyout "$API_DIR/server.key" -out "$API_DIR/server.csr" 2>/dev/null || return 1
	printf 'subjectAltName=IP:127.0.0.1\n' >"$API_DIR/san.ext"
	openssl x509 -req -in "$API_DIR/server.csr" -CA "$API_DIR/ca.crt" -CAkey "$API_DIR/ca.key" \
		-CAcreateserial -days 1 -extfile "$API_DIR/san.ext" -out "$API_DIR/server.crt" \
		2>/dev/null || return 1
	openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=other-ca \
		-keyout "$API_DIR/other-ca/ca.key" -out "$API_DIR/other-ca/ca.crt" 2>/dev/null || return 1
	echo "token-$RANDOM$RANDOM" >"$API_DIR/server-token"
	cp "$API_DIR/server-token" "$API_DIR/agent-token"
	write_kubeconfig "$API_DIR/kubeconfig" "$API_DIR/ca.crt"
	write_kubeconfig "$API_DIR/kubeconfig-other-ca" "$API_DIR/other-ca/ca.crt"
}

# write_kubeconfig PATH CA: the CA inline (certificate-authority-data), the token from a file.
write_kubeconfig() {
	cat >"$1" <<EOT
apiVersion: v1
kind: Config
current-context: e2e
contexts:
- name: e2e
  context: {cluster: fake, user: agent}
clusters:
- name: fake
  cluster:
    server: https://127.0.0.1:6443/
    certificate-authority-data: $(base64 -w0 "$2")
users:
- name: agent
  user:
    tokenFile: agent-token
EOT
}

# How often the server log says a server started (it is appended to).
api_starts() { cat "$API_DIR/server.log" 2>/dev/null | grep -c "serving on"; }

# start_api [AUTH...]: the server, accepting what AUTH (fake-apiserver's
# --token-file and --client-ca) says; by default the token in server-token.
start_api() {
	local auth=("$@") before
	before=$(api_starts)
	[ $# -gt 0 ] || auth=(--token-file="$API_DIR/server-token")
	# nsenter execs the server, so $! is the server itself.
	nsenter --net="/run/netns/$NODE_NS" "$FAKE" --listen=127.0.0.1:6443 --control=127.0.0.1:6444 \
		--cert="$API_DIR/server.crt" --key="$API_DIR/server.key" \
		"${auth[@]}" --objects="$OBJECTS" >>"$API_DIR/server.log" 2>&1 &
	API_PID=$!
	PIDS+=("$API_PID")
	for _ in $(seq 50); do
		[ "$(api_starts)" -gt "$before" ] && return 0
		sleep 0.05
	done
	return 1
}

stop_api() {
	[ -n "$API_PID" ] && kill -TERM "$API_PID" 2>/dev/null && wait "$API_PID" 2>/dev/null
	API_PID=""
}

# ctl PATH [JSON on stdin]: one control request to the test API server.
ctl() {
	in_node curl -sf -X POST --data-binary @- "http://127.0.0.1:6444/$1" >/dev/null
}

# api_requests RESOURCE: the lists and watches of RESOURCE the test API server has seen.
api_requests() {
	in_node curl -sf "http://127.0.0.1:6444/stats" | awk -v r="$1" '$1 == r { print $2 + $3 }'
}

service() { # NAME CLUSTERIP
	echo "{\"apiVersion\":\"v1\",\"kind\":\"Service\",
	 \"metadata\":{\"name\":\"$1\",\"namespace\":\"default\"},
	 \"spec\":{\"clusterIP\":\"$2\",\"ports\":[{\"name\":\"http\",\"port\":80,\"protocol\":\"TCP\",\"targetPort\":8080}]}}"
}

slice() { # NAME SERVICE ADDR...
	local name=$1 svc=$2 eps="" a
	shift 2
	for a in "$@"; do
		eps+="${eps:+,}{\"addresses\":[\"$a\"],\"conditions\":{\"ready\":true},\"nodeName\":\"$NODE_NAME\"}"
	done
	echo "{\"apiVersion\":\"discovery.k8s.io/v1\",\"kind\":\"EndpointSlice\",
	 \"metadata\":{\"name\":\"$name\",\"namespace\":\"default\",\"labels\":{\"kubernetes.io/service-name\":\"$svc\"}},
	 \"addressType\":\"IPv4\",\"ports\":[{\"name\":\"http\",\"port\":8080,\"protocol\":\"TCP\"}],
	 \"endpoints\":[$eps]}"
}

node_object() { # NAME
	echo "{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":{\"name\":\"$1\"}}"
}

# log_mark: the agent log's current length, for wait_log_since.
log_mark() { wc -l <"$AGENT_LOG"; }

# wait_log PATTERN SECONDS: until the agent's log matches.
wait_log() { wait_log_since 0 "$1" "$2"; }

# wait_log_since MARK PATTERN SECONDS: until the agent's log after line MARK matches.
wait_log_since() {
	local _
	for _ in $(seq $(($3 * 10))); do
		tail -n +$(($1 + 1)) "$AGENT_LOG" | grep -q -- "$2" && return 0
		sleep 0.1
	done
	return 1
}

# probe_until SECONDS "SORTED LIST" COUNT ADDR: probes until exactly those
# backends answer every attempt (or the time is up); then expect_backends.
probe_until() {
	local _
	for _ in $(seq $(($1 * 4))); do
		probe --count "$3" "$4"
		[ "$(probe_value ok)" = "$3" ] && [ "$(probe_backends)" = "$2" ] && return 0
		sleep 0.25
	done
	return 1
}
