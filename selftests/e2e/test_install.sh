#!/bin/bash
# make install like a system service: into a DESTDIR (never /), every file
# in place with its mode, both man pages rendered by man(1) without a
# warning and covering every flag and command, and the systemd unit as
# Documentation/security.md says, accepted by systemd-analyze verify.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
DEST=$(mktemp -d /tmp/sluice-install.XXXX)
trap 'rm -rf "$DEST"' EXIT
failed=0
ok() { echo "ok - $*"; }
not_ok() {
	echo "not ok - $*"
	failed=1
}
check() {
	local name=$1
	shift
	if "$@"; then ok "$name"; else not_ok "$name"; fi
}

if ! make -s -C "$ROOT" install BUILD="$BUILD" DESTDIR="$DEST" PREFIX=/usr >"$DEST.log" 2>&1; then
	not_ok "make install DESTDIR=... PREFIX=/usr"
	sed 's/^/#   /' "$DEST.log"
	rm -f "$DEST.log"
	exit 1
fi
rm -f "$DEST.log"
ok "make install DESTDIR=... PREFIX=/usr"

# mode FILE: its octal mode
mode() { stat -c %a "$1"; }
want_files="usr/bin/sluicectl:755 usr/sbin/sluice-agent:755 usr/share/man/man8/sluice-agent.8:644
usr/share/man/man8/sluicectl.8:644 usr/lib/systemd/system/sluice-agent.service:644"
for f in $want_files; do
	check "installed ${f%:*} (mode ${f#*:})" test -f "$DEST/${f%:*}" -a "$(mode "$DEST/${f%:*}" 2>/dev/null)" = "${f#*:}"
done
check "nothing else is installed" test "$(find "$DEST" -type f | wc -l)" = 5
check "the installed agent is the one built" \
	test "$("$DEST/usr/sbin/sluice-agent" --version)" = "$("$BUILD/sluice-agent" --version)"
check "sluicectl --version says the same version" \
	test "$("$DEST/usr/bin/sluicectl" --version | awk '{ print $2 }')" = \
	"$("$BUILD/sluice-agent" --version | awk '{ print $2 }')"

# Man pages: rendered without warnings, every flag and command in them.
for page in sluice-agent sluicectl; do
	f="$DEST/usr/share/man/man8/$page.8"
	if ! command -v man >/dev/null; then
		echo "ok - man renders $page(8) # SKIP no man(1) here (make deps)"
		continue
	fi
	MANWIDTH=80 man --warnings -l "$f" >"$DEST/$page.txt" 2>"$DEST/$page.warn"
	check "man renders $page(8) without warnings" test ! -s "$DEST/$page.warn" -a -s "$DEST/$page.txt"
	[ -s "$DEST/$page.warn" ] && sed 's/^/#   /' "$DEST/$page.warn"
done
missing=""
for flag in $("$BUILD/sluice-agent" --help | grep -oE -- '--[a-z][a-z-]+' | sort -u); do
	grep -qF -- "$flag" "$DEST/sluice-agent.txt" 2>/dev/null || missing+=" $flag"
done
check "sluice-agent(8) documents every flag of --help${missing:+ (missing:$missing)}" test -z "$missing"
missing=""
for flag in $(sed -n 's/^| `\(--[a-z-]*\).*/\1/p' "$ROOT/README.md" | sort -u); do
	grep -qF -- "$flag" "$DEST/sluice-agent.txt" 2>/dev/null || missing+=" $flag"
done
check "sluice-agent(8) documents every flag of the README's table${missing:+ (missing:$missing)}" test -z "$missing"
missing=""
for cmd in services ratelimits status explain top; do
	grep -qE "^ {7}$cmd( |$)" "$DEST/sluicectl.txt" 2>/dev/null || missing+=" $cmd"
	"$BUILD/sluicectl" --help | grep -qE "^  $cmd( |$)" || missing+=" $cmd(--help)"
done
check "sluicectl(8) documents every command${missing:+ (missing:$missing)}" test -z "$missing"

# The unit: capabilities as in security.md, read-only but for what the agent writes.
unit="$DEST/usr/lib/systemd/system/sluice-agent.service"
caps="CAP_BPF CAP_NET_ADMIN CAP_NET_BIND_SERVICE CAP_PERFMON CAP_SETPCAP CAP_SYS_ADMIN CAP_SYS_RESOURCE"
unit_caps() { sed -n "s/^$1=//p" "$unit" | tr ' ' '\n' | sort | tr '\n' ' ' | sed 's/ $//'; }
check "unit: CapabilityBoundingSet is what opening a datapath needs" test "$(unit_caps CapabilityBoundingSet)" = "$caps"
check "unit: AmbientCapabilities the same" test "$(unit_caps AmbientCapabilities)" = "$caps"
for cap in $caps; do
	low=$(echo "$cap" | tr 'A-Z' 'a-z')
	grep -qiE "$low|${cap#CAP_}" "$ROOT/Documentation/security.md" ||
		not_ok "unit: $cap is explained in security.md"
done
check "unit: ProtectSystem=strict" grep -qx 'ProtectSystem=strict' "$unit"
check "unit: the pins and the cgroup are writable" grep -qx 'ReadWritePaths=/sys/fs/bpf /sys/fs/cgroup' "$unit"
check "unit: the status files' directory, kept across restarts" \
	grep -qx 'RuntimeDirectory=sluice' "$unit"
check "unit: Restart=on-failure" grep -qx 'Restart=on-failure' "$unit"
check "unit: ExecStart is the installed agent" grep -q '^ExecStart=/usr/sbin/sluice-agent ' "$unit"

if command -v systemd-analyze >/dev/null; then
	# verify checks that ExecStart exists: point it at the DESTDIR copy.
	sed "s|^ExecStart=/usr/sbin/|ExecStart=$DEST/usr/sbin/|" "$unit" >"$DEST/verify.service"
	systemd-analyze verify --man=no "$DEST/verify.service" >"$DEST/verify.out" 2>&1
	rc=$?
	check "systemd-analyze verify accepts the unit, without a warning" test $rc = 0 -a ! -s "$DEST/verify.out"
	sed 's/^/#   /' "$DEST/verify.out"
else
	echo "ok - systemd-analyze verify accepts the unit # SKIP no systemd-analyze here"
fi
exit $failed
