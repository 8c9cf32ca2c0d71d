#!/bin/bash
# make vmtest: boots each kernel of KERNEL under qemu (TCG) with the host's
# root shared read-only over 9p, runs the tests inside on that kernel
# (built on the host beforehand), prints the guest's uname -r and ends with
# "N passed, N failed, N skipped"; exit 0 only when nothing failed.
# Environment (Documentation/vmtest.md):
#   KERNEL          space-separated list: vmlinuz paths or Debian releases/
#                   versions (tools/vmtest/fetch-kernel.sh); default the
#                   newest bookworm linux-image-6.1.*-amd64
#   VMTEST          test patterns for selftests/run.sh inside the guest
#   VMTEST_BENCH    1: also a short make bench (BENCH_* below), 0: not
#   VMTEST_MEM      guest memory (default 1G), VMTEST_CPUS (default 2)
#   VMTEST_TIMEOUT  seconds for one whole VM run before qemu is killed
#   VMTEST_MODULES  the guest kernel's lib/modules/RELEASE, for a vmlinuz
#                   path whose modules are not in ../lib/modules/RELEASE
set -uo pipefail
cd "$(dirname "$0")/../.."
src=$(pwd)
BUILD=${BUILD:-build}
vmdir=$src/$BUILD/vmtest
KERNEL=${KERNEL:-default}
VMTEST_BENCH=${VMTEST_BENCH:-1}
VMTEST_MEM=${VMTEST_MEM:-1G}
VMTEST_CPUS=${VMTEST_CPUS:-2}
VMTEST_TIMEOUT=${VMTEST_TIMEOUT:-5400}
mkdir -p "$vmdir"
for tool in qemu-system-x86_64 busybox depmod apt-get dpkg-deb; do
	if ! command -v "$tool" >/dev/null; then
		echo "not ok - vmtest: no $tool here (make deps)"
		echo "0 passed, 1 failed, 0 skipped"
		exit 1
	fi
done

qemu_pid=
cleanup() {
	if [ -n "$qemu_pid" ] && kill -0 "$qemu_pid" 2>/dev/null; then
		echo "vmtest: stopping qemu ($qemu_pid)"
		kill "$qemu_pid" 2>/dev/null
		sleep 2
		kill -9 "$qemu_pid" 2>/dev/null
	fi
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM

# The release string of a bzImage (its setup header points at it).
bzimage_release() {
	local off
	off=$(od -An -tu2 -j 526 -N 2 "$1" | tr -d ' ')
	dd if="$1" bs=1 skip=$((off + 512)) count=256 2>/dev/null |
		tr '\0' '\n' | head -n 1 | awk '{print $1}'
}

total_p=0
total_f=0
total_s=0

# Boots one kernel; adds its counts to the totals.
run_kernel() {
	local k=$1 vmlinuz rel modules out log initrd start rc p f s
	if [ -f "$k" ]; then
		vmlinuz=$(realpath "$k")
		rel=$(bzimage_release "$vmlinuz")
		modules=${VMTEST_MODULES:-$(dirname "$vmlinuz")/../lib/modules/$rel}
	else
		[ "$k" = default ] && k=
		rel=$(tools/vmtest/fetch-kernel.sh "$vmdir/kernels" "$k" | tail -n 1) ||
			{ echo "not ok - vmtest: cannot fetch kernel $k"; total_f=$((total_f + 1)); return; }
		vmlinuz=$vmdir/kernels/$rel/root/boot/vmlinuz-$rel
		modules=$vmdir/kernels/$rel/root/lib/modules/$rel
	fi
	if [ ! -f "$modules/modules.dep" ]; then
		echo "not ok - vmtest: no modules.dep in $modules (VMTEST_MODULES)"
		total_f=$((total_f + 1))
		return
	fi
	modules=$(realpath "$modules")
	out=$vmdir/out-$rel
	log=$vmdir/console-$rel.log
	initrd=$vmdir/initramfs-$rel.cpio.gz
	rm -rf "$out"
	mkdir -p "$out"
	tools/vmtest/mkinitramfs.sh "$modules/../../.." "$rel" "$initrd" || {
		echo "not ok - vmtest: initramfs for $rel"
		total_f=$((total_f + 1))
		return
	}
	local steps=tests
	[ "$VMTEST_BENCH" = 1 ] && steps="tests bench"
	{
		printf 'VMTEST_SRC=%q\nVMTEST_BUILD=%q\nVMTEST_MODULES=%q\n' "$src" "$BUILD" "$modules"
		printf 'VMTEST_TESTS=%q\nVMTEST_STEPS=%q\n' "${VMTEST:-}" "$steps"
		# The bench's scale: small, for a guest 15-25x slower than the host.
		printf 'export BENCH_SIZES=%q BENCH_DATAPATHS=%q BENCH_CHANGES=%q BENCH_CONN_ROUNDS=%q\n' \
			"${BENCH_SIZES:-100}" "${BENCH_DATAPATHS:-bpf nftables}" "${BENCH_CHANGES:-5}" \
			"${BENCH_CONN_ROUNDS:-3}"
		# No plot from the guest: its writes land in a tmpfs that goes with it.
		printf 'export BENCH_PLOT=\n'
		printf 'export BENCH_CHURN_SECONDS=%q BENCH_CHURN_RATE=%q\n' \
			"${BENCH_CHURN_SECONDS:-5}" "${BENCH_CHURN_RATE:-50}"
		# The first sync of an agent in the guest can take seconds (TCG, a
		# loaded host): wait up to 60 s instead of lib.sh's 5.
		printf 'export SYNC_WAIT_STEPS=%q\n' "${SYNC_WAIT_STEPS:-1200}"
		# A connection times out after 3 s, not 1: a vCPU under TCG can
		# stall past 1 s while the host is busy (a test's own
		# --timeout-ms still wins).
		printf 'export PROBE_TIMEOUT_MS=%q\n' "${PROBE_TIMEOUT_MS:-3000}"
		# Scenario knobs that run.sh passes through when set.
		[ -n "${E2E_DATAPATHS:-}" ] && printf 'export E2E_DATAPATHS=%q\n' "$E2E_DATAPATHS"
	} >"$out/config.sh"

	echo "vmtest: kernel $rel ($vmlinuz), ${VMTEST_CPUS} CPUs, $VMTEST_MEM, TCG; console log $log"
	start=$(date +%s)
	# KVM is not usable on these machines for a stock kernel: TCG only.
	timeout -k 10 "$VMTEST_TIMEOUT" qemu-system-x86_64 \
		-machine pc,accel=tcg -cpu max -smp "$VMTEST_CPUS" -m "$VMTEST_MEM" \
		-display none -monitor none -no-reboot -nic none \
		-chardev "file,id=con,path=$log" -serial chardev:con \
		-device isa-debug-exit,iobase=0xf4,iosize=0x04 \
		-virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
		-virtfs "local,path=$out,mount_tag=vmtestout,security_model=none" \
		-kernel "$vmlinuz" -initrd "$initrd" \
		-append "console=ttyS0 quiet loglevel=4 panic=-1 vmtest.guest=$src/tools/vmtest/guest.sh" \
		</dev/null &
	qemu_pid=$!
	# Follow the guest's log as it is written (the console has the kernel's).
	tail -n +1 -F "$out/guest.log" 2>/dev/null --pid=$qemu_pid &
	local tail_pid=$!
	wait "$qemu_pid"
	rc=$?
	qemu_pid=
	sleep 1
	kill "$tail_pid" 2>/dev/null
	wait "$tail_pid" 2>/dev/null
	echo "vmtest: $rel: qemu exited $rc after $(($(date +%s) - start)) s"

	# isa-debug-exit: 1 the guest got to the end, 5 it broke; 124/137 timeout.
	p=0 f=0 s=0
	if [ "$rc" -ne 1 ] || ! grep -q '^vmtest-guest: done' "$out/guest.log" 2>/dev/null; then
		echo "not ok - vmtest: the guest on $rel did not finish (qemu status $rc; see $log)"
		tail -n 30 "$log" | sed 's/^/  console: /'
		f=1
	fi
	local line
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out/guest.log" 2>/dev/null | tail -n 1)
	if [ -n "$line" ]; then
		p=$(echo "$line" | awk '{print $1}')
		f=$((f + $(echo "$line" | awk '{print $3}')))
		s=$(echo "$line" | sed -n 's/.* \([0-9]*\) skipped.*/\1/p')
		s=${s:-0}
	fi
	grep -q '^ok - bench$' "$out/guest.log" 2>/dev/null && p=$((p + 1))
	grep -q '^not ok - bench' "$out/guest.log" 2>/dev/null && f=$((f + 1))
	echo "vmtest: $rel: $p passed, $f failed, $s skipped"
	total_p=$((total_p + p))
	total_f=$((total_f + f))
	total_s=$((total_s + s))
}

for k in $KERNEL; do
	run_kernel "$k"
done
echo "$total_p passed, $total_f failed, $total_s skipped"
[ "$total_f" -eq 0 ]
