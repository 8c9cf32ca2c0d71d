#!/bin/bash
# Fetches a Debian kernel package with apt into the build tree and unpacks it
# there (dpkg-deb -x): the host's own kernel, bootloader and /boot are never
# touched. Prints the unpacked kernel's release (e.g. 6.1.0-57-amd64) last.
# Usage: tools/vmtest/fetch-kernel.sh DIR [KERNEL]
#   KERNEL: empty (the newest bookworm linux-image-6.1.*-amd64, not -cloud),
#   a release (6.1.0-57-amd64 or 6.1.0-57), a package name, or a package
#   version of the newest 6.1 image (e.g. 6.1.192-3).
set -euo pipefail
dir=$1
want=${2:-}

# The generic amd64 flavour only: -cloud has no 9p, -rt is another kernel.
newest_61() {
	apt-cache search --names-only '^linux-image-6\.1\.0-[0-9]+-amd64$' |
		awk '{print $1}' | sort -V | tail -n 1
}

# Empty lists (a fresh container): read them once.
if [ -z "$(newest_61)" ]; then
	echo "fetch-kernel: apt-get update (no kernel packages in apt's lists)" >&2
	apt-get update -qq >&2 || true
fi

case "$want" in
'') pkg=$(newest_61) ;;
linux-image-*) pkg=$want ;;
*-amd64) pkg=linux-image-$want ;;
[0-9]*.[0-9]*.[0-9]*-[0-9]*)
	# A release without flavour (6.1.0-57) or a package version (6.1.192-3).
	if apt-cache show "linux-image-$want-amd64" >/dev/null 2>&1; then
		pkg=linux-image-$want-amd64
	else
		pkg="$(newest_61)=$want"
	fi
	;;
*)
	echo "fetch-kernel: cannot tell what KERNEL=$want names" >&2
	exit 2
	;;
esac
if [ -z "${pkg%%=*}" ]; then
	echo "fetch-kernel: no linux-image-6.1.0-*-amd64 in apt's lists (apt-get update?)" >&2
	exit 1
fi

name=${pkg%%=*}
rel=${name#linux-image-}
out=$dir/$rel
if [ ! -f "$out/.unpacked" ]; then
	mkdir -p "$out/deb"
	echo "fetch-kernel: apt-get download $pkg" >&2
	(cd "$out/deb" && apt-get download -q "$pkg" >&2)
	rm -rf "$out/root"
	dpkg-deb -x "$out"/deb/*.deb "$out/root"
	rm -rf "$out/deb"
	# The package leaves modules.dep to its postinst: make it here.
	depmod -b "$out/root" "$rel"
	touch "$out/.unpacked"
fi
echo "$rel"
