#!/bin/bash
# Builds the guest's small initramfs: busybox (static), the modules that
# mount the host's root over 9p (virtio-pci, 9p, overlay, and what they
# depend on, in load order) and init.sh as /init.
# Usage: tools/vmtest/mkinitramfs.sh MODULES_ROOT RELEASE OUT.cpio.gz
#   MODULES_ROOT holds lib/modules/RELEASE (with modules.dep).
set -euo pipefail
modroot=$1
rel=$2
out=$3
here=$(cd "$(dirname "$0")" && pwd)
busybox=$(command -v busybox) || {
	echo "mkinitramfs: no busybox (apt-get install busybox-static)" >&2
	exit 1
}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

mkdir -p "$work"/{bin,dev,proc,sys,lower,rw,newroot,modules}
cp "$busybox" "$work/bin/busybox"
ln -s busybox "$work/bin/sh"
cp "$here/init.sh" "$work/init"
chmod +x "$work/init"

# Load order from modules.dep; built-in modules print "builtin", skipped.
n=0
for m in virtio_pci 9pnet_virtio 9p overlay; do
	modprobe -d "$modroot" -S "$rel" --show-depends "$m" |
		awk '$1 == "insmod" {print $2}'
done | awk '!seen[$0]++' | while read -r ko; do
	n=$((n + 1))
	name=$(printf '%02d-%s' "$n" "$(basename "$ko")")
	cp "$ko" "$work/modules/$name"
done

(cd "$work" && find . | "$busybox" cpio -o -H newc 2>/dev/null) | gzip -1 >"$out.tmp"
mv "$out.tmp" "$out"
