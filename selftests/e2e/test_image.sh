#!/bin/bash
# The OCI image (make image) tested for real: the archive is unpacked layer
# by layer into a directory, checked for what it holds (and does not), and
# its sluice-agent and sluicectl run from that root (image-run.sh: chroot,
# with the DaemonSet's mounts) in the e2e sandbox: a ClusterIP on both
# datapaths, then test_clusterip.sh whole, with the image's binaries and
# libraries, not the build tree's. A second build must give the same bytes.
#
# make image runs here when it is quick: once an image was built (the
# debootstrap cache in build/image, or an archive, is there) it takes
# seconds. A cold build (the debootstrap) takes 1 to 2.5 minutes, so it
# runs only with IMAGE_TEST=1 (.ci/run runs make image first); otherwise,
# and with IMAGE_TEST=0 or without buildah or debootstrap, the test skips.
set -u
E2E_DIR=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$E2E_DIR/../.." && pwd)
BUILD=${BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
ok() { echo "ok - $*"; }
not_ok() { echo "not ok - $*"; }
check() {
	local name=$1
	shift
	if "$@"; then ok "$name"; else not_ok "$name"; fi
}
skip() { echo "ok - $1 # SKIP $2"; }

# Not possible here, and not faked: no container engine runs on this machine.
skip "the image runs under a container engine (podman, crun)" \
	"crun's setrlimit is refused on this machine: the image is run from a chroot instead"

why=""
[ "$(id -u)" = 0 ] || why="needs root (debootstrap, chroot, namespaces)"
for t in buildah debootstrap jq unshare; do
	[ -n "$why" ] || command -v $t >/dev/null || why="no $t here (make deps)"
done
[ "${IMAGE_TEST:-1}" = 0 ] && why="IMAGE_TEST=0"
# make test SANITIZE=1: the image holds the plain build, not one with ASan.
ldd "$BUILD/sluice-agent" 2>/dev/null | grep -q libasan && why="a sanitizer build ($BUILD)"
built=""
[ -f "$BUILD/image/debootstrap/.stamp" ] || ls "$BUILD"/sluice-agent-*.oci.tar >/dev/null 2>&1 && built=1
[ -n "$why" ] || [ -n "$built" ] || [ "${IMAGE_TEST:-}" = 1 ] ||
	why="no image built yet: make image (1 to 2.5 min cold), or IMAGE_TEST=1"
if [ -n "$why" ]; then
	skip "make image, and the image's programs end to end" "$why"
	exit 0
fi

version=$("$BUILD/sluice-agent" --version | awk '{ print $2 }')
ARCHIVE="$BUILD/sluice-agent-$version.oci.tar"
IMG=$(mktemp -d /tmp/sluice-image.XXXX)
trap 'rm -rf "$IMG"' EXIT
start=$(date +%s)
if ! make -s -C "$ROOT" image BUILD="$BUILD" >"$IMG/build.log" 2>&1; then
	not_ok "make image"
	sed 's/^/#   /' "$IMG/build.log" | tail -30
	exit 1
fi
ok "make image: $(basename "$ARCHIVE") in $(($(date +%s) - start)) s ($(du -h "$ARCHIVE" | cut -f1))"

# Reproducible: the root filesystem made again, the image committed again.
sum1=$(sha256sum <"$ARCHIVE")
rm -rf "$BUILD/image/rootfs"
make -s -C "$ROOT" image BUILD="$BUILD" >"$IMG/build2.log" 2>&1
check "a second make image gives the same archive, byte for byte" test "$(sha256sum <"$ARCHIVE")" = "$sum1"

# Unpack: index -> manifest -> config and layers, every blob's digest checked.
mkdir -p "$IMG/oci" "$IMG/root"
tar -C "$IMG/oci" -xf "$ARCHIVE"
blob() { echo "$IMG/oci/blobs/sha256/${1#sha256:}"; }
bad=""
for f in "$IMG"/oci/blobs/sha256/*; do
	[ "$(sha256sum <"$f" | cut -d' ' -f1)" = "$(basename "$f")" ] || bad+=" $(basename "$f")"
done
check "every blob in the archive has the digest it is named by${bad:+ (not:$bad)}" test -z "$bad"
check "the archive is tagged sluice-agent:$version (the agent's version)" \
	test "$(jq -r '.manifests[0].annotations["org.opencontainers.image.ref.name"]' "$IMG/oci/index.json")" = \
	"sluice-agent:$version"
manifest=$(blob "$(jq -r '.manifests[0].digest' "$IMG/oci/index.json")")
config=$(blob "$(jq -r .config.digest "$manifest")")
check "the config: entrypoint /usr/sbin/sluice-agent, label version $version" \
	test "$(jq -c '[.config.Entrypoint, .config.Labels["org.opencontainers.image.version"]]' "$config")" = \
	"[[\"/usr/sbin/sluice-agent\"],\"$version\"]"
whiteouts=0
for l in $(jq -r '.layers[].digest' "$manifest"); do
	tar -C "$IMG/root" -xzf "$(blob "$l")" || not_ok "layer $l unpacks"
	whiteouts=$((whiteouts + $(tar -tzf "$(blob "$l")" | grep -c '\.wh\.')))
done
check "one layer ($(jq '.layers | length' "$manifest")), no whiteouts" \
	test "$(jq '.layers | length' "$manifest")" = 1 -a "$whiteouts" = 0

# What the image holds: the two programs and libraries, nothing to build or install with.
r="$IMG/root"
check "sluice-agent and sluicectl are in the image" test -x "$r/usr/sbin/sluice-agent" -a -x "$r/usr/bin/sluicectl"
extra=$(find "$r" -type f -perm -u+x ! -name '*.so*' ! -path '*/usr/sbin/sluice-agent' ! -path '*/usr/bin/sluicectl' |
	sed "s|^$r||" | head -5)
check "no other program: no shell, compiler, package manager${extra:+ (found: $extra)}" test -z "$extra"
headers=$(find "$r" -name '*.h' -o -name '*.a' -o -name 'pkgconfig' | sed "s|^$r||" | head -5)
check "no headers, static libraries or pkg-config files${headers:+ (found: $headers)}" test -z "$headers"
check "the image's agent says version $version" \
	test "$(chroot "$r" /usr/sbin/sluice-agent --version | awk '{ print $2 }')" = "$version"
check "the image's sluicectl says version $version" \
	test "$(chroot "$r" /usr/bin/sluicectl --version | awk '{ print $2 }')" = "$version"
# ldd, by the image's own dynamic loader: every library found, inside the image.
for b in /usr/sbin/sluice-agent /usr/bin/sluicectl; do
	chroot "$r" /lib64/ld-linux-x86-64.so.2 --list "$b" >"$IMG/ldd.out" 2>&1
	libs=$(awk '$2 == "=>" { print $3 }' "$IMG/ldd.out")
	missing=$(for l in $libs; do [ -e "$r$l" ] || echo "$l"; done)
	check "$b: its $(echo $libs | wc -w) libraries all resolve inside the image" \
		test -n "$libs" -a -z "$missing" -a "$(grep -c 'not found' "$IMG/ldd.out")" = 0
done

# The e2e sandbox with the image's programs (lib.sh takes E2E_AGENT, E2E_SLUICECTL).
mkdir "$IMG/bin"
printf '#!/bin/sh\nexec %s /usr/sbin/sluice-agent "$@"\n' "$E2E_DIR/image-run.sh" >"$IMG/bin/sluice-agent"
printf '#!/bin/sh\nexec %s /usr/bin/sluicectl "$@"\n' "$E2E_DIR/image-run.sh" >"$IMG/bin/sluicectl"
chmod +x "$IMG/bin/"*
export IMAGE_ROOT="$r" E2E_AGENT="$IMG/bin/sluice-agent" E2E_SLUICECTL="$IMG/bin/sluicectl"

# In a subshell: lib.sh's EXIT trap removes its sandbox before $IMG goes.
(
	. "$E2E_DIR/lib.sh"
	e2e_setup || { not_ok "setup"; exit 1; }
	start_backends 10.244.1.1:8080 10.244.1.2:8080 10.96.0.10:80
	cat >"$MANIFESTS/web.yaml" <<EOT
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  clusterIP: 10.96.0.10
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-1, namespace: default, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints: [{addresses: [10.244.1.1]}, {addresses: [10.244.1.2]}]
EOT
	# check_ctl NAME: the outcome of the command before, sluicectl's output on failure.
	check_ctl() {
		if [ $? = 0 ]; then ok "$1"; else not_ok "$1"; sed 's/^/#   /' "$WORK/ctl.out"; fi
	}
	for dp in $DATAPATHS; do
		start_agent "$dp" || { not_ok "$dp: the image's agent starts and syncs"; continue; }
		ok "$dp: the image's agent starts and syncs"
		check "$dp: the running agent is the image's file" \
			test "$(readlink "/proc/$AGENT_PID/exe")" = "$r/usr/sbin/sluice-agent"
		libs=$(awk '$6 ~ /\.so/ { print $6 }' "/proc/$AGENT_PID/maps" | sort -u)
		outside=$(echo "$libs" | grep -v "^$r/" | head -3)
		check "$dp: the $(echo "$libs" | wc -l) libraries it mapped are all the image's${outside:+ (not: $outside)}" \
			test -n "$libs" -a -z "$outside"
		probe --count 100 10.96.0.10:80
		expect_backends "$dp: a ClusterIP through the image's agent reaches both endpoints" \
			"10.244.1.1:8080 10.244.1.2:8080 " 100
		# -o json: the status files and the kernel counters (plain "services" on
		# nftables points to nft list table instead)
		in_node "$SLUICECTL" services -o json >"$WORK/ctl.out" 2>&1
		test "$(jq -r '.items[] | select(.service == "default/web") | .clusterIPs[0]' "$WORK/ctl.out")" = 10.96.0.10
		check_ctl "$dp: the image's sluicectl lists the Service"
		in_node "$SLUICECTL" status >"$WORK/ctl.out" 2>&1
		grep -q "version $version" "$WORK/ctl.out" && grep -qw "$dp" "$WORK/ctl.out"
		check_ctl "$dp: the image's sluicectl status names the datapath and version $version"
		stop_agent
		in_node "$AGENT" --cleanup --bpffs="$BPFFS" --cgroup="$CGROUP" >>"$AGENT_LOG" 2>&1
		check "$dp: the image's agent --cleanup exits 0" test $? = 0
	done
)

# The whole ClusterIP scenario on both datapaths, with the image's programs.
bash "$E2E_DIR/test_clusterip.sh" >"$IMG/clusterip.out" 2>&1
rc=$?
sed -E 's/^(not )?ok - /&image: /' "$IMG/clusterip.out" | grep -E '^(not )?ok '
if [ "$rc" != 0 ] || ! grep -qE '^ok ' "$IMG/clusterip.out"; then
	not_ok "image: test_clusterip.sh exits 0 (status $rc)"
	grep -v -E '^(not )?ok ' "$IMG/clusterip.out" | sed 's/^/#   /' | tail -30
fi
check "nothing the image's programs mounted is left in this namespace" \
	test -z "$(grep -F "$r" /proc/self/mountinfo)"
exit 0
