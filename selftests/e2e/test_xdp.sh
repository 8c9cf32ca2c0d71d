#!/bin/bash
# --xdp on the bpf datapath, native and generic: a client outside (ext-ID,
# one veth away) reaches a NodePort over TCP and UDP with the XDP program
# attached beside tc, and is refused by one without endpoints (generic); bpftool shows the program and its pinned link,
# sluicectl status the mode per device; a device whose driver has no XDP
# (a bridge) falls back to generic with one log line; --cleanup, a restart
# without --xdp and a switch to nftables remove it; --xdp without --devices
# fails with one line and status 2.
#
# XDP sees frames as a wire delivers them, with complete checksums: the
# client's and the backends' veth ends compute theirs (tx offload off),
# and GRO on the receiving ends lets native XDP redirect into a veth.
. "$(dirname "$0")/lib.sh"

if ! command -v ethtool >/dev/null || ! command -v bpftool >/dev/null; then
	skip "xdp: $(basename "$0" .sh)" "needs ethtool and bpftool"
	exit 0
fi
case "$DATAPATHS" in *bpf*) ;; *) exit 0 ;; esac
# Loading tc and XDP over 131072-Service maps under SANITIZE=1 on a loaded machine: up to 20 s.
SYNC_WAIT_STEPS=${SYNC_WAIT_STEPS:-400}

cat_manifests() {
	cat >"$MANIFESTS/web.yaml" <<EOT
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  type: NodePort
  clusterIP: 10.96.1.50
  ports:
  - {name: http, port: 80, targetPort: 8080, nodePort: 30090, protocol: TCP}
  - {name: dns, port: 53, targetPort: 5353, nodePort: 30090, protocol: UDP}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-1, namespace: default, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{name: http, port: 8080}, {name: dns, port: 5353, protocol: UDP}]
endpoints:
- {addresses: [10.244.1.1], nodeName: $NODE_NAME}
- {addresses: [10.244.1.2], nodeName: node-b}
---
apiVersion: v1
kind: Service
metadata: {name: empty, namespace: default}
spec:
  type: NodePort
  clusterIP: 10.96.1.51
  ports: [{name: http, port: 80, targetPort: 8080, nodePort: 30091, protocol: TCP}]
EOT
}

e2e_setup || { not_ok "setup"; exit 1; }
setup_outside || { not_ok "setup of the outside namespace"; exit 1; }
in_ext ethtool -K "y$ID" tx off gro on >/dev/null 2>&1
in_be ethtool -K "w$ID" tx off gro on >/dev/null 2>&1
in_node ip link add "d$ID" type bridge && in_node ip link set "d$ID" up
# veth delivers what native XDP sends back (XDP_TX) only to a peer that runs
# XDP itself: the client's end gets a program that passes everything (our
# own object, its maps fresh and empty), as a NIC's wire would take it.
peer_xdp=no
in_ext ip link set dev "y$ID" xdpdrv obj "$BUILD/bpf/xdp.bpf.o" sec xdp >/dev/null 2>&1 &&
	peer_xdp=yes
start_backends 10.244.1.1:8080 10.244.1.2:8080 10.244.1.1:5353 10.244.1.2:5353
cat_manifests

for mode in native generic; do
	if ! start_agent bpf --devices="x$ID,v$ID,d$ID" --xdp=$mode; then
		not_ok "xdp $mode: agent starts"
		continue
	fi
	want=$([ $mode = native ] && echo driver || echo generic)
	in_node bpftool net show >"$WORK/net" 2>&1
	prog=$(awk -v dev="x$ID" -v want="$want" \
		'index($1, dev "(") == 1 && $2 == want && $3 == "id" { print $4 }' "$WORK/net")
	check "xdp $mode: bpftool net shows an XDP program ($want) on the client's device" \
		test -n "$prog"
	check "xdp $mode: it is sl_xdp_ingress" \
		bash -c "bpftool prog show id '${prog:-0}' | grep -q sl_xdp_ingress"
	in_node bpftool link show >"$WORK/links" 2>&1
	check "xdp $mode: bpftool link shows an XDP link per device" \
		test "$(grep -cE '^[0-9]+: xdp ' "$WORK/links")" = 3
	check "xdp $mode: the links are pinned under the agent's pin dir" \
		test -e "$BPFFS/links/xdp_x$ID" -a -e "$BPFFS/links/xdp_v$ID"
	if [ $mode = native ]; then
		check "xdp native: the bridge has no driver XDP: one line, generic instead" \
			test "$(grep -c "d$ID cannot run XDP in its driver" "$AGENT_LOG")" = 1
	fi
	in_node "$SLUICECTL" --bpffs="$BPFFS" status >"$WORK/ctl-status" 2>&1
	check "xdp $mode: sluicectl status shows the mode per device" \
		grep -qE "x$ID: XDP $mode" "$WORK/ctl-status"
	check "xdp $mode: sluicectl status: the bridge runs generic XDP" \
		grep -qE "d$ID: XDP generic" "$WORK/ctl-status"

	probe_ext --count 100 10.99.1.1:30090
	expect_backends "xdp $mode: NodePort TCP reaches every endpoint" \
		"10.244.1.1:8080 10.244.1.2:8080 " 100
	probe_ext --udp --count 100 10.99.1.1:30090
	expect_backends "xdp $mode: NodePort UDP reaches every endpoint" \
		"10.244.1.1:5353 10.244.1.2:5353 " 100
	if [ $mode = native ] && [ $peer_xdp = no ]; then
		skip "xdp native: a NodePort without endpoints refuses (RST sent back by XDP_TX)" \
			"no XDP program on the client's veth end: veth would not deliver XDP_TX"
	else
		probe_ext --count 5 --timeout-ms 1000 10.99.1.1:30091
		expect_refused "xdp $mode: a NodePort without endpoints refuses (RST sent back by XDP)" 5
	fi
	if [ $mode = native ]; then
		# veth counts what native XDP redirected: the client's packets took the XDP path.
		redirected=$(in_node ethtool -S "x$ID" 2>/dev/null |
			awk '/xdp_redirect/ { n += $2 } END { print n + 0 }')
		check "xdp native: the client's packets were redirected by XDP ($redirected)" \
			test "$redirected" -ge 100
	fi
	stop_agent
	# The agent gone, the pinned links keep XDP attached and serving.
	probe_ext --count 20 10.99.1.1:30090
	expect_backends "xdp $mode: XDP and tc keep serving after the agent exits" \
		"10.244.1.1:8080 10.244.1.2:8080 " 20
	in_node "$AGENT" --cleanup --bpffs="$BPFFS" --cgroup="$CGROUP" >"$WORK/cleanup" 2>&1
	in_node bpftool net show >"$WORK/net" 2>&1
	check "xdp $mode: --cleanup detaches the XDP program" \
		bash -c "! grep -q sl_xdp_ingress '$WORK/net'"
	check "xdp $mode: --cleanup leaves no pins" no_pins
done

# Restarted without --xdp: the links an earlier agent left go, tc serves.
if start_agent bpf --devices="x$ID,v$ID" --xdp=generic; then
	stop_agent
	start_agent bpf --devices="x$ID,v$ID"
	in_node bpftool net show >"$WORK/net" 2>&1
	check "restarted without --xdp: the XDP program is detached" \
		bash -c "! grep -qE 'x$ID.* generic id' '$WORK/net'"
	check "restarted without --xdp: its links are unpinned" test ! -e "$BPFFS/links/xdp_x$ID"
	probe_ext --count 20 10.99.1.1:30090
	expect_backends "restarted without --xdp: tc serves alone" "10.244.1.1:8080 10.244.1.2:8080 " 20
	stop_agent
else
	not_ok "restart without --xdp: agent starts"
fi
# A switch to nftables removes XDP with the rest of the BPF datapath.
if start_agent bpf --devices="x$ID,v$ID" --xdp=native; then
	stop_agent
	start_agent nftables --devices="x$ID,v$ID" --xdp=native
	in_node bpftool net show >"$WORK/net" 2>&1
	check "switched to nftables: no XDP program left" \
		bash -c "! grep -qE 'x$ID.* (driver|generic) id' '$WORK/net'"
	check "switched to nftables: --xdp is one warning" \
		test "$(grep -c -- '--xdp: the nftables datapath has no XDP' "$AGENT_LOG")" = 1
	probe_ext --count 20 10.99.1.1:30090
	expect_backends "switched to nftables: NodePort served" "10.244.1.1:8080 10.244.1.2:8080 " 20
	stop_agent
	in_node "$AGENT" --cleanup --bpffs="$BPFFS" --cgroup="$CGROUP" >/dev/null 2>&1
else
	not_ok "switch to nftables: agent starts"
fi

in_node "$AGENT" --source="dir:$MANIFESTS" --bpffs="$BPFFS" --xdp=generic >"$WORK/noxdp" 2>&1
rc=$?
check "--xdp without --devices: exit status 2" test $rc = 2
check "--xdp without --devices: one line saying why" \
	test "$(grep -c -- '--xdp needs --devices' "$WORK/noxdp")" = 1 -a \
	"$(wc -l <"$WORK/noxdp")" = 1
exit 0
