#!/bin/bash
# The API source's authentication as kubeconfig users use it, against the
# test API server (fake-apiserver: tokens and mTLS client certificates):
#   1. client certificates from files and from -data; a missing one and one
#      from another CA: one line naming the kubeconfig user per attempt,
#      retries with growing backoff, and it syncs once the files are right;
#   2. exec credential plugins (selftests/tools/exec-plugin.sh): env and
#      KUBERNETES_EXEC_INFO, one run shared and cached until shortly before
#      expiry, a new run on expiry and on a 401, a failing plugin (its
#      stderr logged, backoff, recovery), a client certificate from the
#      plugin, v1beta1, output that is no ExecCredential, interactiveMode
#      Always refused;
#   3. insecure-skip-tls-verify refused, and obeyed with
#      --kube-insecure-skip-tls-verify.
# Authentication comes before the datapath: one datapath serves (the first
# of $DATAPATHS). Token file rotation is in test_kube_source.sh.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/kube_lib.sh"

DP=${DATAPATHS%% *}
STATE="$API_DIR/exec"
W2="10.244.1.1:8080 10.244.1.2:8080 "
W3="10.244.1.1:8080 10.244.1.2:8080 10.244.1.3:8080 "

write_objects() {
	rm -f "$OBJECTS"/*
	service web 10.96.0.10 >"$OBJECTS/web.json"
	slice web-1 web 10.244.1.1 10.244.1.2 >"$OBJECTS/web-1.json"
	node_object "$NODE_NAME" >"$OBJECTS/node.json"
}

# client_cert NAME CA_DIR: NAME.crt and NAME.key for client authentication, signed by CA_DIR's CA.
client_cert() {
	printf 'extendedKeyUsage=clientAuth\n' >"$API_DIR/client.ext"
	openssl req -newkey rsa:2048 -nodes -subj /CN=sluice-agent \
		-keyout "$API_DIR/$1.key" -out "$API_DIR/$1.csr" 2>/dev/null &&
		openssl x509 -req -in "$API_DIR/$1.csr" -CA "$2/ca.crt" -CAkey "$2/ca.key" \
			-CAcreateserial -days 1 -extfile "$API_DIR/client.ext" \
			-out "$API_DIR/$1.crt" 2>/dev/null
}

# kubeconfig_for PATH USER [CLUSTER LINES]: a kubeconfig whose context names
# USER, with the user block (indented 4) on stdin; the cluster trusts the
# test CA unless CLUSTER LINES (indented 4) say otherwise.
kubeconfig_for() {
	local cluster=${3:-"    certificate-authority-data: $(base64 -w0 "$API_DIR/ca.crt")"}
	cat >"$1" <<EOT
apiVersion: v1
kind: Config
current-context: e2e
contexts:
- name: e2e
  context: {cluster: fake, user: $2}
clusters:
- name: fake
  cluster:
    server: https://127.0.0.1:6443
$cluster
users:
- name: $2
  user:
$(cat)
EOT
}

# start_agent_nowait FLAGS...: the agent in the background, without waiting for a sync.
start_agent_nowait() {
	: >"$AGENT_LOG"
	nsenter --net="/run/netns/$NODE_NS" "$AGENT" --source=kube --datapath="$DP" \
		--node-name="$NODE_NAME" --cgroup="$CGROUP" --bpffs="$BPFFS" -v "$@" \
		>>"$AGENT_LOG" 2>&1 &
	AGENT_PID=$!
}

# run_briefly LOG FLAGS...: the agent for at most 4 s; its exit status (124: still running).
run_briefly() {
	local log=$1
	shift
	in_node timeout 4 "$AGENT" --source=kube --datapath="$DP" --node-name="$NODE_NAME" \
		--cgroup="$CGROUP" --bpffs="$BPFFS" "$@" >"$log" 2>&1
}

runs() { cat "$STATE/runs" 2>/dev/null | wc -l; }

# runs_settle N: until the plugin ran N times (3 s at most), then half a second
# more, for a run that should not come.
runs_settle() {
	local _
	for _ in $(seq 30); do
		[ "$(runs)" -ge "$1" ] && break
		sleep 0.1
	done
	sleep 0.5
}

# tokens FROM TO: the exec tokens the server accepts.
tokens() { seq "$1" "$2" | sed 's/^/exec-token-/' >"$API_DIR/exec-tokens"; }

# watch_total: the watch requests the server saw, all resources together.
watch_total() {
	in_node curl -sf "http://127.0.0.1:6444/stats" | awk '{ n += $3 } END { print n + 0 }'
}

# drop_and_rewatch: the server drops every watch; until all three are back.
drop_and_rewatch() {
	local before _
	before=$(watch_total)
	ctl drop </dev/null
	for _ in $(seq 100); do
		[ "$(watch_total)" -ge $((before + 3)) ] && return 0
		sleep 0.1
	done
	return 1
}

# the delays of the first two "services list" retries grow
backoff_grows() {
	grep -o 'services list: .*listing again in [0-9]* ms' "$AGENT_LOG" |
		sed 's/.*listing again in \([0-9]*\) ms/\1/' | head -2 |
		awk 'NR == 1 { a = $1 } NR == 2 { b = $1 } END { exit !(NR == 2 && b > a) }'
}

e2e_setup || { not_ok "setup"; exit 1; }
make_pki || { not_ok "setup: openssl certificates"; exit 1; }
client_cert client "$API_DIR" && client_cert other "$API_DIR/other-ca" ||
	{ not_ok "setup: client certificates"; exit 1; }
start_backends 10.244.1.1:8080 10.244.1.2:8080 10.244.1.3:8080 10.96.0.10:80
write_objects

# ---- 1. client certificates: the server requires one from the test CA ----
start_api --client-ca="$API_DIR/ca.crt" || not_ok "the test API server starts (mTLS)"

kubeconfig_for "$API_DIR/kc-cert-file" cert-user <<EOT
    client-certificate: client.crt
    client-key: client.key
EOT
if start_agent "$DP" --source=kube --kubeconfig="$API_DIR/kc-cert-file"; then
	ok "a client certificate and key from files (relative to the kubeconfig) authenticate"
	probe --count 40 10.96.0.10:80
	expect_backends "with a client certificate the Service is served" "$W2" 40
else
	not_ok "a client certificate and key from files (relative to the kubeconfig) authenticate"
fi
stop_agent

kubeconfig_for "$API_DIR/kc-cert-data" cert-user <<EOT
    client-certificate-data: $(base64 -w0 "$API_DIR/client.crt")
    client-key-data: $(base64 -w0 "$API_DIR/client.key")
EOT
check "a client certificate and key from client-certificate-data and client-key-data authenticate" \
	start_agent "$DP" --source=kube --kubeconfig="$API_DIR/kc-cert-data"
stop_agent

# Missing files, then a certificate from another CA, then the right one.
mkdir -p "$API_DIR/rot"
kubeconfig_for "$API_DIR/kc-cert-rot" rot-user <<EOT
    client-certificate: rot/client.crt
    client-key: rot/client.key
EOT
start_agent_nowait --kubeconfig="$API_DIR/kc-cert-rot"
check "a missing client certificate file: a line naming the kubeconfig user and the file" \
	wait_log "kubeconfig user \"rot-user\" in $API_DIR/kc-cert-rot (client certificate $API_DIR/rot/client.crt): client certificate or key: " 5
cp "$API_DIR/other.crt" "$API_DIR/rot/client.crt"
cp "$API_DIR/other.key" "$API_DIR/rot/client.key"
check "a client certificate from another CA: 401, in a line naming the kubeconfig user" \
	wait_log "services list: 401 Unauthorized: the API server refused the credentials of kubeconfig user \"rot-user\" in $API_DIR/kc-cert-rot" 10
check "while refused the agent keeps running, nothing applied" \
	bash -c "kill -0 $AGENT_PID && ! grep -q synced '$AGENT_LOG'"
check "the retries back off (the delays grow)" backoff_grows
cp "$API_DIR/client.crt" "$API_DIR/rot/client.crt"
cp "$API_DIR/client.key" "$API_DIR/rot/client.key"
check "once the certificate files are right the agent syncs (read again on each attempt)" \
	wait_log synced 15
stop_agent

echo "    {}" | kubeconfig_for "$API_DIR/kc-nobody" nobody
run_briefly "$WORK/nobody.log" --kubeconfig="$API_DIR/kc-nobody"
check "no client certificate at all: a 401 line naming the user without credentials" \
	grep -q "refused the credentials of kubeconfig user \"nobody\" in $API_DIR/kc-nobody (no credentials)" "$WORK/nobody.log"
stop_api

# ---- 2. exec plugins: the server takes the plugin's tokens (and certificates) ----
mkdir -p "$STATE"
cp "$ROOT/selftests/tools/exec-plugin.sh" "$API_DIR/exec-plugin.sh"
cp "$API_DIR/client.crt" "$API_DIR/client.key" "$STATE/"
tokens 1 40
start_api --token-file="$API_DIR/exec-tokens" --client-ca="$API_DIR/ca.crt" ||
	not_ok "the test API server starts (exec tokens)"

# exec_kubeconfig PATH API_VERSION INTERACTIVE_MODE
exec_kubeconfig() {
	kubeconfig_for "$1" exec-user <<EOT
    exec:
      apiVersion: $2
      command: ./exec-plugin.sh
      args: ["$STATE"]
      env:
      - {name: EXEC_TTL, value: "8"}
      - {name: EXEC_FROM_KUBECONFIG, value: "yes"}
      interactiveMode: $3
      provideClusterInfo: true
      installHint: "the test plugin is selftests/tools/exec-plugin.sh"
EOT
}
exec_kubeconfig "$API_DIR/kc-exec" client.authentication.k8s.io/v1 IfAvailable

export EXEC_TTL=999 EXEC_FROM_AGENT=outer
start_agent "$DP" --source=kube --kubeconfig="$API_DIR/kc-exec"
rc=$?
unset EXEC_TTL EXEC_FROM_AGENT
check "an exec plugin's token authenticates (the command relative to the kubeconfig)" test "$rc" = 0
check "one plugin run serves the first lists and watches of every resource ($(runs) runs)" \
	test "$(runs)" = 1
check "the plugin gets the agent's environment with the kubeconfig's env over it" \
	bash -c "grep -qx EXEC_TTL=8 '$STATE/last-env' && grep -qx EXEC_FROM_KUBECONFIG=yes '$STATE/last-env' &&
		grep -qx EXEC_FROM_AGENT=outer '$STATE/last-env'"
info=$(cat "$STATE/last-info")
check "KUBERNETES_EXEC_INFO: an ExecCredential of the kubeconfig's apiVersion, not interactive" \
	bash -c "grep -q '\"kind\":\"ExecCredential\"' <<<'$info' &&
		grep -q '\"apiVersion\":\"client.authentication.k8s.io/v1\"' <<<'$info' &&
		grep -q '\"interactive\":false' <<<'$info'"
check "KUBERNETES_EXEC_INFO: the cluster (provideClusterInfo) with its server and CA" \
	bash -c "grep -q '\"server\":\"https://127.0.0.1:6443\"' <<<'$info' &&
		grep -q '\"certificate-authority-data\":\"$(base64 -w0 "$API_DIR/ca.crt")\"' <<<'$info'"

# Cached: a re-watch within the token's life runs no plugin.
check "the watches come back after a drop" drop_and_rewatch
runs_settle 2
check "a credential is cached until shortly before its expirationTimestamp ($(runs) runs)" \
	test "$(runs)" = 1
# Expired (8 s, refreshed 2 s before): the next requests run it again.
sleep 5
echo 0 >"$STATE/ttl"
drop_and_rewatch
runs_settle 2
check "after expiry the next request runs the plugin again ($(runs) runs)" test "$(runs)" = 2
slice web-1 web 10.244.1.1 10.244.1.2 10.244.1.3 | ctl apply
check "with the new token the watch delivers changes" probe_until 10 "$W3" 60 10.96.0.10:80

# Revoked: the 401 makes it run again, at once, and the watch resumes.
tokens 3 40
drop_and_rewatch
runs_settle 3
check "a 401 to the plugin's token runs the plugin again ($(runs) runs)" test "$(runs)" = 3
check "the 401 is logged once, naming the user" \
	test "$(grep -c 'kubeconfig user "exec-user" in .*answered 401 to the exec plugin' "$AGENT_LOG")" = 1
slice web-1 web 10.244.1.1 10.244.1.2 | ctl apply
check "after the 401 the watch delivers changes with the new token" \
	probe_until 10 "$W2" 60 10.96.0.10:80

# A failing plugin: its stderr and exit status are logged, runs back off, traffic goes on.
echo fail >"$STATE/mode"
tokens 4 40
runs0=$(runs)
mark=$(log_mark)
ctl drop </dev/null
check "a failing plugin: one line with the user and its exit status" \
	wait_log_since "$mark" "kube: kubeconfig user \"exec-user\" in $API_DIR/kc-exec: exec plugin \"./exec-plugin.sh\" exited with status 3; running it again in" 5
check "a failing plugin: its stderr is passed through to the log" \
	wait_log_since "$mark" "exec plugin \"./exec-plugin.sh\": exec-plugin: no credentials for you (test)" 2
sleep 4
failed_runs=$(($(runs) - runs0))
check "a failing plugin is run again with backoff, not per request ($failed_runs runs in 4 s)" \
	test "$failed_runs" -ge 2 -a "$failed_runs" -le 4
check "one exit status line per failed run" test \
	"$(tail -n +$((mark + 1)) "$AGENT_LOG" | grep -c 'exited with status 3; running it again')" = "$failed_runs"
check "while the plugin fails the agent runs on" kill -0 "$AGENT_PID"
probe --count 30 10.96.0.10:80
expect_backends "while the plugin fails the datapath keeps serving" "$W2" 30
echo token >"$STATE/mode"
slice web-1 web 10.244.1.1 10.244.1.2 10.244.1.3 | ctl apply
check "once the plugin works again the watch resumes" probe_until 25 "$W3" 60 10.96.0.10:80
stop_agent

# A client certificate from the plugin (the server accepts the test CA's).
echo cert >"$STATE/mode"
check "a client certificate and key from the plugin (clientCertificateData) authenticate" \
	start_agent "$DP" --source=kube --kubeconfig="$API_DIR/kc-exec"
check "the agent logs that the plugin gave a client certificate" \
	grep -q 'exec plugin "./exec-plugin.sh" gave a client certificate' "$AGENT_LOG"
stop_agent

echo token >"$STATE/mode"
exec_kubeconfig "$API_DIR/kc-exec-beta" client.authentication.k8s.io/v1beta1 Never
check "a client.authentication.k8s.io/v1beta1 plugin authenticates" \
	start_agent "$DP" --source=kube --kubeconfig="$API_DIR/kc-exec-beta"
stop_agent

echo garbage >"$STATE/mode"
run_briefly "$WORK/garbage.log" --kubeconfig="$API_DIR/kc-exec"
check "output that is no ExecCredential: one clear line per run" \
	grep -q 'exec plugin "./exec-plugin.sh" printed no valid ExecCredential: not JSON' "$WORK/garbage.log"
echo token >"$STATE/mode"

exec_kubeconfig "$API_DIR/kc-exec-always" client.authentication.k8s.io/v1 Always
runs0=$(runs)
run_briefly "$WORK/always.log" --kubeconfig="$API_DIR/kc-exec-always"
rc=$?
check "interactiveMode Always is refused at start (exit status $rc)" test "$rc" != 0 -a "$rc" != 124
check "interactiveMode Always: one line naming the user, and the plugin never runs" \
	bash -c "grep -q 'kubeconfig user \"exec-user\" in $API_DIR/kc-exec-always: exec interactiveMode is Always' '$WORK/always.log' &&
		test $(runs) = $runs0"
stop_api

# ---- 3. insecure-skip-tls-verify (the server's certificate is from an unknown CA) ----
cp "$API_DIR/server-token" "$API_DIR/agent-token"
start_api || not_ok "the test API server starts (token)"
kubeconfig_for "$API_DIR/kc-insecure" agent "    insecure-skip-tls-verify: true" <<EOT
    tokenFile: agent-token
EOT
run_briefly "$WORK/insecure.log" --kubeconfig="$API_DIR/kc-insecure"
rc=$?
check "insecure-skip-tls-verify: true is refused at start (exit status $rc)" \
	test "$rc" != 0 -a "$rc" != 124
check "the refusal is one line naming the kubeconfig, the cluster and the flag" \
	grep -q "$API_DIR/kc-insecure: cluster \"fake\": insecure-skip-tls-verify: true is refused.*--kube-insecure-skip-tls-verify" \
	"$WORK/insecure.log"
check "with --kube-insecure-skip-tls-verify the agent syncs without verifying the server" \
	start_agent "$DP" --source=kube --kubeconfig="$API_DIR/kc-insecure" --kube-insecure-skip-tls-verify
check "with --kube-insecure-skip-tls-verify a warning says the server is not verified" \
	grep -q "cluster \"fake\": insecure-skip-tls-verify: the API server's certificate is NOT verified" "$AGENT_LOG"
stop_agent
stop_api
exit 0
