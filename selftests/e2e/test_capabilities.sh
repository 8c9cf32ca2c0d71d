#!/bin/bash
# Capabilities end to end, on both datapaths (Documentation/security.md):
# once synced, the agent's main thread keeps exactly the documented set
# (permitted, effective, bounding; nothing inheritable or ambient;
# no_new_privs), no other thread has more, and the agent still applies
# with that set: a Service and an endpoint change written afterwards are
# served, a NodePort whose backends route through a device not attached
# yet gets the tc programs (bpf), healthCheckNodePort servers start on a
# port above and one below 1024, and no apply fails. The API server
# source's threads keep nothing at all.
. "$(dirname "$0")/lib.sh"

CAP_NET_BIND_SERVICE=10
CAP_NET_ADMIN=12
CAP_BPF=39

# mask CAP...: the 16-digit hex mask /proc/PID/status shows for those capabilities.
mask() {
	local m=0 c
	for c in "$@"; do m=$((m | (1 << c))); done
	printf '%016x' "$m"
}
SERVE_CAPS=$(mask $CAP_NET_BIND_SERVICE)
NONE=$(mask)

# The kept set per datapath, as security.md lists it.
want_caps() {
	case "$1" in
	bpf) mask $CAP_NET_BIND_SERVICE $CAP_NET_ADMIN $CAP_BPF ;;
	nftables) mask $CAP_NET_BIND_SERVICE $CAP_NET_ADMIN ;;
	esac
}
want_names() {
	case "$1" in
	bpf) echo "cap_net_bind_service,cap_net_admin,cap_bpf" ;;
	nftables) echo "cap_net_bind_service,cap_net_admin" ;;
	esac
}

# wait_for_drop: until the agent logs the capabilities it keeps (at most 5 s).
wait_for_drop() {
	local _
	for _ in $(seq 100); do
		grep -q "capabilities:" "$AGENT_LOG" && return 0
		sleep 0.05
	done
	return 1
}

# field FILE NAME: a field of a /proc status file ("CapEff", "NoNewPrivs").
field() { awk -v k="$2:" '$1 == k { print $2 }' "$1"; }

# main_thread_is DATAPATH: the main thread holds exactly the kept set.
main_thread_is() {
	local st="/proc/$AGENT_PID/status" want
	want=$(want_caps "$1")
	[ "$(field "$st" CapPrm)" = "$want" ] && [ "$(field "$st" CapEff)" = "$want" ] &&
		[ "$(field "$st" CapBnd)" = "$want" ] && [ "$(field "$st" CapInh)" = "$NONE" ] &&
		[ "$(field "$st" CapAmb)" = "$NONE" ] && [ "$(field "$st" NoNewPrivs)" = 1 ] && return 0
	echo "# want $want; $st says:"
	grep -E '^(Cap|NoNewPrivs)' "$st" | sed 's/^/#   /'
	return 1
}

# every_thread_within MASK [MIN_THREADS]: no thread of the agent holds a
# capability outside MASK in any set, each has no_new_privs, and there
# are at least MIN_THREADS threads (the servers' own are there).
every_thread_within() {
	local allowed=$((16#$1)) min=${2:-1} n=0 st k v bad=0
	for st in /proc/"$AGENT_PID"/task/*/status; do
		[ -r "$st" ] || continue
		n=$((n + 1))
		for k in CapPrm CapEff CapBnd CapInh CapAmb; do
			v=$(field "$st" $k)
			if [ $((16#$v & ~allowed)) != 0 ]; then
				echo "# $st ($(field "$st" Name)): $k $v is more than $1"
				bad=1
			fi
		done
		[ "$(field "$st" NoNewPrivs)" = 1 ] || {
			echo "# $st: no no_new_privs"
			bad=1
		}
	done
	[ "$n" -ge "$min" ] || {
		echo "# $n threads, want at least $min"
		bad=1
	}
	return $bad
}

# helper_threads_within MASK: the threads other than the main one hold no more than MASK
# (permitted, effective, inheritable, ambient), and there is one at least.
helper_threads_within() {
	local allowed=$((16#$1)) st k v bad=0 n=0
	for st in /proc/"$AGENT_PID"/task/*/status; do
		[ "$st" = "/proc/$AGENT_PID/task/$AGENT_PID/status" ] && continue
		[ -r "$st" ] || continue
		n=$((n + 1))
		for k in CapPrm CapEff CapInh CapAmb; do
			v=$(field "$st" $k)
			if [ $((16#$v & ~allowed)) != 0 ]; then
				echo "# $st: $k $v is more than $1"
				bad=1
			fi
		done
	done
	[ "$n" -ge 1 ] || {
		echo "# no helper thread"
		bad=1
	}
	return $bad
}

# write_local NAME IDX HC: externalTrafficPolicy Local on NodePort 3009IDX,
# one endpoint on this node, healthCheckNodePort HC.
write_local() {
	cat >"$MANIFESTS/$1.yaml.tmp" <<EOT
apiVersion: v1
kind: Service
metadata: {name: $1, namespace: tenant}
spec:
  type: NodePort
  clusterIP: 10.96.2.$2
  externalTrafficPolicy: Local
  healthCheckNodePort: $3
  ports: [{name: http, port: 80, targetPort: 8080, nodePort: 3009$2}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: $1-1, namespace: tenant, labels: {kubernetes.io/service-name: $1}}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints:
- {addresses: [10.244.1.4], conditions: {ready: true}, nodeName: $NODE_NAME}
EOT
	mv "$MANIFESTS/$1.yaml.tmp" "$MANIFESTS/$1.yaml"
}

# ---- the API server source: kube_lib's CA and server, an empty cluster ----
. "$(dirname "$0")/kube_lib.sh"
make_api() {
	make_pki || return 1
	# Root's own file, readable by its owner only: as a projected token is.
	chmod 0600 "$API_DIR/agent-token"
	start_api
}

e2e_setup || { not_ok "setup"; exit 1; }
setup_outside || { not_ok "setup of the outside namespace"; exit 1; }
# .4 is the NodePort Services' endpoint; .1-.3 the ClusterIP's.
start_backends 10.244.1.1:8080 10.244.1.2:8080 10.244.1.3:8080 10.244.1.4:8080 10.96.0.10:80
API_OK=0
if [ -x "$FAKE" ] && make_api; then API_OK=1; fi

for dp in $DATAPATHS; do
	rm -f "$MANIFESTS"/*
	write_web_manifest 10.244.1.1 10.244.1.2
	# Only the outside device: the backends' device gets tc when a NodePort needs it.
	if ! start_agent "$dp" --devices="x$ID" --health-addr=127.0.0.1:10256; then
		not_ok "$dp: agent starts and syncs"
		continue
	fi
	wait_for_drop
	check "$dp: the agent logs the set it keeps" \
		grep -q "capabilities: keeping $(want_names "$dp") (datapath $dp)" "$AGENT_LOG"
	check "$dp: the main thread keeps exactly $(want_names "$dp"), no_new_privs" \
		main_thread_is "$dp"
	# The health server's thread was started before the drop, limited to binding.
	check "$dp: the health server's thread keeps at most cap_net_bind_service" \
		helper_threads_within "$SERVE_CAPS"
	check "$dp: /healthz answers with the reduced set" \
		test "$(http_status "$NODE_NS" 127.0.0.1 10256 /healthz)" = 200

	# Changes after the drop: an endpoint change, Services with NodePorts and health checks.
	write_web_manifest 10.244.1.1 10.244.1.3
	write_local late 2 32092
	write_local low 3 1002
	sleep 1.5
	probe --count 100 10.96.0.10:80
	expect_backends "$dp: an endpoint change after the drop is applied" \
		"10.244.1.1:8080 10.244.1.3:8080 " 100
	probe --count 50 10.96.2.2:80
	expect_backends "$dp: a Service added after the drop is served" "10.244.1.4:8080 " 50
	probe_ext --count 50 10.99.1.1:30092
	expect_backends "$dp: its NodePort is served from outside" "10.244.1.4:8080 " 50
	if [ "$dp" = bpf ]; then
		check "$dp: the backends' device gets the tc programs after the drop" \
			grep -q "bpf: tc programs on v$ID" "$AGENT_LOG"
	fi
	check "$dp: a healthCheckNodePort server starts after the drop" \
		test "$(http_status "$EXT_NS" 10.99.1.1 32092 /)" = 200
	check "$dp: a healthCheckNodePort below 1024 starts after the drop" \
		test "$(http_status "$EXT_NS" 10.99.1.1 1002 /)" = 200
	check "$dp: no thread holds more than $(want_names "$dp")" \
		every_thread_within "$(want_caps "$dp")" 4
	check "$dp: the server threads hold at most cap_net_bind_service" \
		helper_threads_within "$SERVE_CAPS"
	failures=$(sed -n '/capabilities:/,$p' "$AGENT_LOG" |
		grep -iE 'fail|cannot|not permitted|retry' || true)
	check "$dp: nothing fails after the drop${failures:+ (${failures//$'\n'/; })}" \
		test -z "$failures"
	main_thread_is "$dp" >/dev/null
	check "$dp: the main thread's set is unchanged after the changes" test $? = 0
	stop_agent

	# bpf, restarted without the NodePorts: the old agent's filters stay on
	# the backends' device, and the NodePort written after the drop must
	# replace them without CAP_SYS_ADMIN (no lookup of a program by id).
	if [ "$dp" = bpf ]; then
		rm -f "$MANIFESTS/late.yaml" "$MANIFESTS/low.yaml"
		start_agent "$dp" --devices="x$ID" || not_ok "$dp: agent restarts"
		wait_for_drop
		write_local late 2 32092
		sleep 1.5
		probe_ext --count 50 10.99.1.1:30092
		expect_backends "$dp: restarted: a NodePort written after the drop is served" \
			"10.244.1.4:8080 " 50
		check "$dp: restarted: the earlier agent's tc filters are replaced after the drop" \
			grep -q "bpf: tc programs on v$ID" "$AGENT_LOG"
		# libbpf's "Exclusivity flag on" is the clsact that is already there.
		failures=$(sed -n '/capabilities:/,$p' "$AGENT_LOG" | grep -v 'Exclusivity flag on' |
			grep -iE 'fail|cannot|not permitted|retry' || true)
		check "$dp: restarted: nothing fails after the drop${failures:+ (${failures//$'\n'/; })}" \
			test -z "$failures"
		stop_agent
	fi

	# The API server source: its threads (and curl's) hold nothing (no
	# --healthz-addr server here: its thread keeps cap_net_bind_service).
	if [ "$API_OK" != 1 ]; then
		skip "$dp: the API server source's threads hold no capability" "no test API server"
		continue
	fi
	: >"$AGENT_LOG"
	nsenter --net="/run/netns/$NODE_NS" "$AGENT" --source=kube \
		--kubeconfig="$API_DIR/kubeconfig" --datapath="$dp" --node-name="$NODE_NAME" \
		--cgroup="$CGROUP" --bpffs="$BPFFS" -v --healthz-addr= >>"$AGENT_LOG" 2>&1 &
	AGENT_PID=$!
	wait_for_drop
	check "$dp: kube source: the main thread keeps exactly $(want_names "$dp")" \
		main_thread_is "$dp"
	check "$dp: kube source: the list and watch threads hold no capability" \
		helper_threads_within "$NONE"
	stop_agent
done
exit 0
