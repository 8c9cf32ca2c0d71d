#!/bin/bash
# Writes the rules kube-proxy would write for the Services of
# bench/gen-manifests.sh (the same addresses, bench/addr.awk), so that make
# bench measures its two modes beside Sluice on the same Services:
#
#   iptables  iptables-restore input (for iptables-legacy and iptables-nft):
#             nat OUTPUT and PREROUTING -> KUBE-SERVICES, one rule a
#             Service -> KUBE-SVC-<i>: the masquerade mark for clients
#             outside the pod range, then one rule an endpoint with
#             "-m statistic --mode random --probability 1/(n-j)" ->
#             KUBE-SEP-<i>-<j>: the hairpin mark, DNAT to the endpoint;
#             KUBE-POSTROUTING masquerades marked packets.
#   nft       nft -f input, kube-proxy's nftables mode: table ip
#             sluice-peer, nat output and prerouting -> chain services ->
#             "ip daddr . meta l4proto . th dport vmap @service-ips" ->
#             chain service-<i>: the masquerade mark, then "numgen random
#             mod N vmap" -> chain endpoint-<i>-<j>: the hairpin mark,
#             dnat to the endpoint.
#
# "add K" / "del K": what kube-proxy sends when Service K joins (leaves) a
# ruleset of Services 0..N-1: iptables rewrites KUBE-SERVICES whole
# (iptables-restore --noflush, as its partial syncs do) and adds (removes)
# K's chains; nft adds (removes) K's chains and map element in one
# transaction.
# Usage: peer-rules.sh iptables|nft FILE N [ENDPOINTS [add|del K]]
set -eu

mode=$1
out=$2
n=$3
eps=${4:-10}
change=${5:-}
extra=${6:--1}
prog='
function svc(i) { return sprintf("KUBE-SVC-S%d", i) }
function sep(i, j) { return sprintf("KUBE-SEP-S%d-%d", i, j) }
function svc_rule(i) {
	printf "-A KUBE-SERVICES -d %s/32 -p tcp -m comment --comment \"bench/s%d:http cluster IP\" " \
		"-m tcp --dport 80 -j %s\n", cluster_ip(i), i, svc(i)
}
function ipt_chains(i,    j) {
	print ":" svc(i) " - [0:0]"
	for (j = 0; j < eps; j++)
		print ":" sep(i, j) " - [0:0]"
}
function ipt_rules(i,    j) {
	printf "-A %s ! -s 10.244.0.0/14 -d %s/32 -p tcp -m tcp --dport 80 -j KUBE-MARK-MASQ\n",
		svc(i), cluster_ip(i)
	for (j = 0; j < eps; j++) {
		if (j < eps - 1)
			printf "-A %s -m statistic --mode random --probability %.11f -j %s\n",
				svc(i), 1 / (eps - j), sep(i, j)
		else
			printf "-A %s -j %s\n", svc(i), sep(i, j)
		printf "-A %s -s %s/32 -j KUBE-MARK-MASQ\n", sep(i, j), endpoint_ip(i, j, eps)
		printf "-A %s -p tcp -m tcp -j DNAT --to-destination %s:8080\n", sep(i, j),
			endpoint_ip(i, j, eps)
	}
}
function iptables(    i, j) {
	print "*nat"
	print ":KUBE-SERVICES - [0:0]"
	if (change == "") {
		print ":KUBE-MARK-MASQ - [0:0]"
		print ":KUBE-POSTROUTING - [0:0]"
		for (i = 0; i < n; i++)
			ipt_chains(i)
		print "-A OUTPUT -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES"
		print "-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES"
		print "-A POSTROUTING -j KUBE-POSTROUTING"
		print "-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000"
		print "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN"
		print "-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000"
		print "-A KUBE-POSTROUTING -j MASQUERADE --random-fully"
	} else if (change == "add") {
		ipt_chains(extra)
	}
	for (i = 0; i < n; i++)
		svc_rule(i)
	if (change == "add")
		svc_rule(extra)
	print "-A KUBE-SERVICES -m addrtype --dst-type LOCAL -j RETURN"
	if (change == "") {
		for (i = 0; i < n; i++)
			ipt_rules(i)
	} else if (change == "add") {
		ipt_rules(extra)
	} else {
		print "-F " svc(extra)
		print "-X " svc(extra)
		for (j = 0; j < eps; j++) {
			print "-F " sep(extra, j)
			print "-X " sep(extra, j)
		}
	}
	print "COMMIT"
}
function nft_service(t, i,    j) {
	for (j = 0; j < eps; j++) {
		printf "add chain %s endpoint-%d-%d\n", t, i, j
		printf "add rule %s endpoint-%d-%d ip saddr %s jump mark-for-masquerade\n", t, i, j,
			endpoint_ip(i, j, eps)
		printf "add rule %s endpoint-%d-%d meta l4proto tcp dnat to %s:8080\n", t, i, j,
			endpoint_ip(i, j, eps)
	}
	printf "add chain %s service-%d\n", t, i
	printf "add rule %s service-%d ip daddr %s tcp dport 80 ip saddr != 10.244.0.0/14 " \
		"jump mark-for-masquerade\n", t, i, cluster_ip(i)
	printf "add rule %s service-%d numgen random mod %d vmap {", t, i, eps
	for (j = 0; j < eps; j++)
		printf "%s %d : goto endpoint-%d-%d", (j ? "," : ""), j, i, j
	print " }"
}
function nft(    i, j, t) {
	t = "ip sluice-peer"
	if (change == "add") {
		nft_service(t, extra)
		printf "add element %s service-ips { %s . tcp . 80 : goto service-%d }\n", t,
			cluster_ip(extra), extra
		return
	}
	if (change == "del") {
		printf "delete element %s service-ips { %s . tcp . 80 }\n", t, cluster_ip(extra)
		printf "delete chain %s service-%d\n", t, extra
		for (j = 0; j < eps; j++)
			printf "delete chain %s endpoint-%d-%d\n", t, extra, j
		return
	}
	print "table " t " {"
	print "  map service-ips { type ipv4_addr . inet_proto . inet_service : verdict; }"
	print "  chain services { ip daddr . meta l4proto . th dport vmap @service-ips; }"
	print "  chain mark-for-masquerade { meta mark set meta mark | 0x4000; }"
	print "  chain masquerading { meta mark & 0x4000 == 0 return; " \
		"meta mark set meta mark ^ 0x4000; masquerade fully-random; }"
	print "  chain nat-output { type nat hook output priority -100; policy accept; jump services; }"
	print "  chain nat-prerouting { type nat hook prerouting priority -100; policy accept; " \
		"jump services; }"
	print "  chain nat-postrouting { type nat hook postrouting priority 100; policy accept; " \
		"jump masquerading; }"
	print "}"
	for (i = 0; i < n; i++)
		nft_service(t, i)
	for (i = 0; i < n; i += 1000) {
		printf "add element %s service-ips {", t
		for (j = i; j < n && j < i + 1000; j++)
			printf "%s %s . tcp . 80 : goto service-%d", (j > i ? "," : ""), cluster_ip(j), j
		print " }"
	}
}
BEGIN { if (mode == "iptables") iptables(); else if (mode == "nft") nft(); else exit 2 }'
awk -v mode="$mode" -v n="$n" -v eps="$eps" -v change="$change" -v extra="$extra" \
	-f "$(dirname "$0")/addr.awk" -f <(printf '%s' "$prog") >"$out"
