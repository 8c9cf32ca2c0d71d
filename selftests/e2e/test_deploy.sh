#!/bin/bash
# deploy/ as an operator applies it: kubectl kustomize renders it (no API
# server needed), check_deploy.py checks the DaemonSet and RBAC it renders;
# an overlay that sets the image to this build's tag renders that tag.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
skip() { echo "ok - $1 # SKIP $2"; }
py=""
for p in /usr/bin/python3 python3; do
	"$p" -c 'import yaml' 2>/dev/null && py=$p && break
done
command -v kubectl >/dev/null || { skip "kubectl kustomize deploy/" "no kubectl here"; exit 0; }
[ -n "$py" ] || { skip "kubectl kustomize deploy/" "no python3 with PyYAML (python3-yaml)"; exit 0; }
TMP=$(mktemp -d /tmp/sluice-deploy.XXXX)
trap 'rm -rf "$TMP"' EXIT

if kubectl kustomize "$ROOT/deploy" >"$TMP/rendered.yaml" 2>"$TMP/err"; then
	echo "ok - kubectl kustomize deploy/ renders"
else
	echo "not ok - kubectl kustomize deploy/ renders"
	sed 's/^/#   /' "$TMP/err"
	exit 1
fi
"$py" "$ROOT/selftests/e2e/check_deploy.py" "$ROOT" <"$TMP/rendered.yaml"

# The name and tag in one place: an overlay setting them changes the image, only.
version=$(git -C "$ROOT" describe --always --tags --dirty 2>/dev/null || echo unknown)
mkdir "$TMP/overlay"
cp -r "$ROOT/deploy" "$TMP/base"
cat >"$TMP/overlay/kustomization.yaml" <<EOT
resources: [../base]
images: [{name: sluice-agent, newName: registry.example/sluice/sluice-agent, newTag: "$version"}]
EOT
kubectl kustomize "$TMP/overlay" >"$TMP/overlay.yaml" 2>&1
diff "$TMP/rendered.yaml" "$TMP/overlay.yaml" | grep '^[<>]' >"$TMP/diff"
if [ "$(grep -c . "$TMP/diff")" = 2 ] &&
	grep -q "^> *image: registry.example/sluice/sluice-agent:$version\$" "$TMP/diff"; then
	echo "ok - an overlay's images: sets the DaemonSet's image (registry.example/sluice/sluice-agent:$version) and nothing else"
else
	echo "not ok - an overlay's images: sets the DaemonSet's image and nothing else"
	sed 's/^/#   /' "$TMP/diff"
fi
