#!/bin/bash
# Usage: tools/image/rootfs.sh CACHE_DIR BUILD_DIR OUT_DIR
# The image's root filesystem, made in OUT_DIR (replaced) from the
# debootstrap root CACHE_DIR (tools/image/debootstrap.sh): only the files
# of the packages in tools/image/packages and their Depends closure (docs,
# man pages, message catalogues and iconv modules trimmed, copyright kept), a dpkg status
# file naming exactly those packages (for image scanners), and the two
# programs from BUILD_DIR, debug info stripped.
set -euo pipefail
cache=$(cd "$1" && pwd)
build=$2
out=$3
here=$(cd "$(dirname "$0")" && pwd)
q() { dpkg-query --admindir="$cache/var/lib/dpkg" "$@"; }
installed() { q -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

# ca-certificates only for its bundle: its Depends (openssl, debconf) are
# for making the bundle, not for reading it.
roots=$(sed 's/#.*//' "$here/packages" | grep -vx ' *ca-certificates *' | xargs)

# The Depends and Pre-Depends closure; of alternatives the first installed one.
declare -A seen=()
todo=($roots)
while [ ${#todo[@]} -gt 0 ]; do
	p=${todo[0]}
	todo=("${todo[@]:1}")
	[ -n "${seen[$p]:-}" ] && continue
	installed "$p" || { echo "rootfs.sh: $p is not in $cache" >&2; exit 1; }
	seen[$p]=1
	deps=$(q -W -f='${Pre-Depends},${Depends}' "$p")
	IFS=, read -ra groups <<<"$deps"
	for g in "${groups[@]}"; do
		IFS='|' read -ra alts <<<"$g"
		for a in "${alts[@]}"; do
			a=$(echo "$a" | sed 's/(.*)//; s/:any//; s/ //g')
			[ -n "$a" ] || continue
			if installed "$a"; then todo+=("$a"); break; fi
		done
	done
done
pkgs=$(printf '%s\n' "${!seen[@]}" | sort)

rm -rf "$out"
mkdir -p "$out"
# Debian 12's merged /usr: the top-level links debootstrap makes.
for d in bin sbin lib lib64; do ln -s "usr/$d" "$out/$d"; done

# Every file of those packages, paths through the top-level links
# canonicalized to /usr, less documentation (copyright stays), message
# catalogues (the programs log in English) and glibc's iconv modules (8 MB;
# neither program converts character sets: UTF-8 and ASCII are built in).
for p in $pkgs; do q -L "$p"; done |
	sed -E 's#^/(bin|sbin|lib|lib64)(/|$)#/usr/\1\2#' |
	grep -vE '^/usr/share/(man|info|lintian|bug|doc-base|locale)(/|$)' |
	grep -vE '^/usr/lib/x86_64-linux-gnu/gconv(/|$)' |
	grep -vE '^/usr/share/doc/[^/]+/.+' |
	sed 's#^/##' | grep -v '^\.\?$' | sort -u >"$out.files"
for p in $pkgs; do
	f=usr/share/doc/$p/copyright
	[ -e "$cache/$f" ] && echo "$f"
done >>"$out.files"
sort -u -o "$out.files" "$out.files"
tar -C "$cache" --no-recursion -cf - -T "$out.files" | tar -C "$out" -xpf -
rm -f "$out.files"

# What a container needs of /etc, and the CA bundle.
mkdir -p "$out/etc/ssl/certs" "$out/tmp" "$out/var/lib/dpkg" "$out/proc" "$out/sys" \
	"$out/dev" "$out/run" "$out/usr/sbin" "$out/usr/bin"
chmod 1777 "$out/tmp"
cp "$cache/etc/ssl/certs/ca-certificates.crt" "$out/etc/ssl/certs/"
cp "$cache/usr/lib/os-release" "$out/usr/lib/os-release"
ln -s ../usr/lib/os-release "$out/etc/os-release"
printf 'root:x:0:0:root:/root:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n' \
	>"$out/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$out/etc/group"
printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"$out/etc/nsswitch.conf"
# dpkg's status for exactly these packages (trivy, grype read it), and ca-certificates.
for p in $pkgs ca-certificates; do q -s "$p"; echo; done >"$out/var/lib/dpkg/status"

install -m 0755 "$build/sluice-agent" "$out/usr/sbin/sluice-agent"
install -m 0755 "$build/sluicectl" "$out/usr/bin/sluicectl"
strip --strip-debug "$out/usr/sbin/sluice-agent" "$out/usr/bin/sluicectl"

# Every library both programs need resolves inside the root (the image's
# own dynamic loader answers, not the host's).
for b in usr/sbin/sluice-agent usr/bin/sluicectl; do
	if chroot "$out" /lib64/ld-linux-x86-64.so.2 --list "/$b" | grep 'not found'; then
		echo "rootfs.sh: /$b needs a library the image lacks (add its package to tools/image/packages)" >&2
		exit 1
	fi
done
echo "  ROOTFS   $out: $(echo $pkgs | wc -w) packages + ca-certificates' bundle, $(du -sh "$out" | cut -f1)"
