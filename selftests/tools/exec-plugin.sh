#!/bin/sh
# A test exec credential plugin for test_kube_auth.sh, as an EKS, GKE or
# AKS kubeconfig would name one. Usage: exec-plugin.sh STATE_DIR
#
# Every run appends a line to STATE_DIR/runs (the test counts them), saves
# KUBERNETES_EXEC_INFO to STATE_DIR/last-info and its EXEC_* variables to
# STATE_DIR/last-env, answers in the apiVersion KUBERNETES_EXEC_INFO names,
# and does what STATE_DIR/mode says:
#   token    (default) the token exec-token-N, N this run's number, expiring
#            in STATE_DIR/ttl seconds (else $EXEC_TTL; 0 or none: no expiry)
#   cert     STATE_DIR/client.crt and client.key as clientCertificateData
#            and clientKeyData
#   fail     a line on stderr, exit status 3
#   garbage  a line that is no JSON
set -u
state=$1
mode=$(cat "$state/mode" 2>/dev/null || echo token)
echo run >>"$state/runs"
n=$(wc -l <"$state/runs")
printf '%s\n' "${KUBERNETES_EXEC_INFO:-}" >"$state/last-info"
env | grep '^EXEC_' | sort >"$state/last-env"
api=$(printf '%s' "${KUBERNETES_EXEC_INFO:-}" |
	sed -n 's/.*"apiVersion":"\([^"]*\)".*/\1/p')
api=${api:-client.authentication.k8s.io/v1}
ttl=$(cat "$state/ttl" 2>/dev/null || echo "${EXEC_TTL:-0}")
expiry=""
if [ "$ttl" -gt 0 ]; then
	expiry=",\"expirationTimestamp\":\"$(date -u -d "@$(($(date +%s) + ttl))" +%Y-%m-%dT%H:%M:%SZ)\""
fi
# A PEM file as one JSON string.
pem() { awk '{ printf "%s\\n", $0 }' "$1"; }

case "$mode" in
token)
	printf '%s\n' "{\"apiVersion\":\"$api\",\"kind\":\"ExecCredential\",\"status\":{\"token\":\"exec-token-$n\"$expiry}}"
	;;
cert)
	# printf, not echo: dash's echo would turn the \n escapes into newlines.
	printf '%s\n' "{\"apiVersion\":\"$api\",\"kind\":\"ExecCredential\",\"status\":{\"clientCertificateData\":\"$(pem "$state/client.crt")\",\"clientKeyData\":\"$(pem "$state/client.key")\"$expiry}}"
	;;
fail)
	echo "exec-plugin: no credentials for you (test)" >&2
	exit 3
	;;
garbage)
	echo "this is no ExecCredential"
	;;
esac
