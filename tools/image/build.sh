#!/bin/bash
# Usage: tools/image/build.sh BUILD_DIR
# The OCI image of sluice-agent and sluicectl (make image): root filesystem
# from Debian packages (debootstrap.sh, cached in BUILD_DIR/image/debootstrap;
# rootfs.sh), one layer FROM scratch committed by buildah, written to
# BUILD_DIR/sluice-agent-VERSION.oci.tar, tagged sluice-agent:VERSION.
# VERSION is what the agent says (git describe at build time).
#
# Reproducible: every timestamp is SOURCE_DATE_EPOCH (default: the last
# commit's time), buildah --timestamp fixes the layer's file times and the
# config's dates, and the archive around the OCI layout is a sorted tar with
# fixed owners and times. Same binaries and packages, same bytes.
set -euo pipefail
build=$(cd "$1" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
for tool in buildah debootstrap; do
	command -v $tool >/dev/null || { echo "image: $tool is missing (make deps)" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "image: debootstrap and chroot need root" >&2; exit 1; }

version=$("$build/sluice-agent" --version | awk '{ print $2 }')
revision=$(git -C "$here" rev-parse HEAD 2>/dev/null || echo unknown)
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$here" log -1 --format=%ct 2>/dev/null || echo 0)}
created=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)
name=sluice-agent
archive=$build/$name-$version.oci.tar
work=$build/image

"$here/debootstrap.sh" "$work/debootstrap"
"$here/rootfs.sh" "$work/debootstrap" "$build" "$work/rootfs"

# buildah's storage is the build's own (vfs: plain directories, no mounts),
# removed when done. Its blob info cache would go to /var/lib/containers/cache:
# buildah runs in a mount namespace of its own where /var/lib is read-only,
# so the cache stays in memory and nothing is left in /var/lib.
store=$work/storage
# Its network backend (unused: nothing runs) would leave /run/containers
# (netavark) or /etc/cni (CNI's lock): CNI, with its directory in the storage.
rm -rf "$store" "$work/oci"
mkdir -p "$store"
printf '[network]\nnetwork_backend = "cni"\nnetwork_config_dir = "%s"\n' "$store/networks" >"$store/containers.conf"
export CONTAINERS_CONF=$store/containers.conf
bah() {
	unshare --mount --propagation private sh -c \
		'mount --bind /var/lib /var/lib && mount -o remount,bind,ro /var/lib && exec "$@"' \
		bah buildah --root "$store/root" --runroot "$store/run" --storage-driver vfs "$@"
}
ctr=""
cleanup() {
	[ -n "$ctr" ] && bah rm "$ctr" >/dev/null 2>&1
	rm -rf "$store" "$work/oci" "$archive.tmp"
}
trap cleanup EXIT

echo "  IMAGE    $archive ($name:$version, SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH)"
ctr=$(bah from --name "sluice-image-$$" scratch)
bah add "$ctr" "$work/rootfs" / >/dev/null
bah config --entrypoint '["/usr/sbin/sluice-agent"]' --cmd '' \
	--env PATH=/usr/sbin:/usr/bin --workingdir / \
	--created-by "tools/image/build.sh" --author "" \
	--label org.opencontainers.image.title=sluice-agent \
	--label org.opencontainers.image.description="Sluice: a Kubernetes Service dataplane (kube-proxy's place): sluice-agent and sluicectl" \
	--label org.opencontainers.image.version="$version" \
	--label org.opencontainers.image.revision="$revision" \
	--label org.opencontainers.image.created="$created" \
	--label org.opencontainers.image.licenses=Apache-2.0 \
	"$ctr"
# gzip-compressed layer (Go's gzip: the same bytes for the same input).
bah commit -q --format oci --timestamp "$SOURCE_DATE_EPOCH" --disable-compression=false \
	"$ctr" "oci:$work/oci:$name:$version" >/dev/null

# The layout as an archive (what oci-archive: is), with nothing of this run in it.
tar -C "$work/oci" --sort=name --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 \
	--numeric-owner --format=ustar -cf "$archive.tmp" .
mv "$archive.tmp" "$archive"
digest=$(jq -r '.manifests[0].digest' "$work/oci/index.json")
echo "  IMAGE    $name:$version $digest, $(du -h "$archive" | cut -f1) archive," \
	"$(du -sh "$work/rootfs" | cut -f1) unpacked"
