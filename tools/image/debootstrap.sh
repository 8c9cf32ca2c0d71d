#!/bin/bash
# Usage: tools/image/debootstrap.sh CACHE_DIR
# A minbase debootstrap of Debian bookworm with the packages of
# tools/image/packages, from the apt mirror this machine is configured with.
# Cached: CACHE_DIR/.stamp records the mirror and the package list; the
# root is made again only when either changes (or CACHE_DIR is removed).
set -euo pipefail
cache=$1
here=$(cd "$(dirname "$0")" && pwd)
suite=bookworm

# The mirror: the first bookworm URI in apt's sources (deb822 or one-line).
mirror=${DEBIAN_MIRROR:-$({ cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
	/etc/apt/sources.list.d/*.sources 2>/dev/null || true; } |
	awk '/^URIs:/ { u = $2 } /^Suites:/ && / '$suite'( |$)/ && u { print u; exit }
	     /^deb / && $3 == "'$suite'" { print $2; exit }')}
[ -n "$mirror" ] || { echo "debootstrap.sh: no $suite mirror in /etc/apt/sources.list*" >&2; exit 1; }
pkgs=$(sed 's/#.*//' "$here/packages" | xargs | tr ' ' ,)
want="$suite $mirror $pkgs"

if [ -f "$cache/.stamp" ] && [ "$(cat "$cache/.stamp")" = "$want" ]; then
	echo "  ROOTFS   $cache (cached)"
	exit 0
fi
echo "  ROOTFS   $cache: debootstrap --variant=minbase $suite $mirror"
rm -rf "$cache" "$cache.tmp"
mkdir -p "$(dirname "$cache")"
# Into a temporary directory first: an interrupted run leaves no half root.
trap 'rm -rf "$cache.tmp"' EXIT
debootstrap --variant=minbase --include="$pkgs" --merged-usr "$suite" "$cache.tmp" "$mirror" \
	>"$cache.log" 2>&1 || { tail -20 "$cache.log" >&2; exit 1; }
mv "$cache.tmp" "$cache"
echo "$want" >"$cache/.stamp"
