#!/bin/bash
# PID 1 of the guest, on the overlay of the host's root: mounts what the
# tests expect (proc, sysfs, cgroup2, bpffs, tmpfs /run and /tmp), makes the
# unpacked kernel's modules its /lib/modules, reads the run's settings from
# the writable 9p share (config.sh, written by run.sh) and runs the tests
# there, logging to that share (guest.log, which run.sh counts). Whether
# the guest got to the end leaves through isa-debug-exit: 0 it did, 2 it
# broke (qemu exits 1 and 5).
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root TERM=dumb LANG=C.UTF-8

exit_vm() {
	sync
	printf "\\$(printf '%03o' "$1")" | dd of=/dev/port bs=1 seek=244 count=1 2>/dev/null
	echo o >/proc/sysrq-trigger
	sleep 10
}

mount -t proc proc /proc
mount -t sysfs sys /sys
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
# devtmpfs has no /dev/fd and /dev/std*, which udev adds on a host: bash's
# process substitution (bench/run.sh) needs /dev/fd.
[ -e /dev/fd ] || ln -s /proc/self/fd /dev/fd
[ -e /dev/stdin ] || ln -s /proc/self/fd/0 /dev/stdin
[ -e /dev/stdout ] || ln -s /proc/self/fd/1 /dev/stdout
[ -e /dev/stderr ] || ln -s /proc/self/fd/2 /dev/stderr
# A checkout under /tmp or /run (a CI clone) must stay visible under their tmpfs.
mkdir -p /vmtest-hidden/tmp /vmtest-hidden/run
mount --bind /tmp /vmtest-hidden/tmp
mount --bind /run /vmtest-hidden/run
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs -o mode=0755 tmpfs /run
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mount -t bpf bpf /sys/fs/bpf
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
mkdir -p /vmtest-out
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,cache=none vmtestout /vmtest-out ||
	{ echo "vmtest-guest: cannot mount the log share"; exit_vm 2; }
# shellcheck source=/dev/null
. /vmtest-out/config.sh
for d in "$VMTEST_SRC" "$VMTEST_BUILD"; do
	case "$d" in
	/tmp/* | /run/*) mkdir -p "$d" && mount --bind "/vmtest-hidden$d" "$d" ;;
	esac
done

# The guest kernel's modules (modprobe, and the kernel's own autoload).
rel=$(uname -r)
if [ -n "${VMTEST_MODULES:-}" ] && [ -d "$VMTEST_MODULES" ]; then
	mkdir -p "/lib/modules/$rel"
	mount --bind "$VMTEST_MODULES" "/lib/modules/$rel"
fi
hostname vmtest
ip link set lo up
echo 1 >/proc/sys/kernel/sysrq
# /proc/sys/net/... of the init namespace: the tests make their own netns.

cd "$VMTEST_SRC" || exit_vm 2
{
	echo "vmtest-guest: uname -r: $rel"
	echo "vmtest-guest: $(nproc) CPUs, $(awk '/MemTotal/ {print $2 " kB"}' /proc/meminfo)"
} | tee /vmtest-out/guest.log

run_step() {
	case "$1" in
	tests)
		BUILD=$VMTEST_BUILD selftests/run.sh "$VMTEST_TESTS"
		;;
	bench)
		# A short bench (config.sh sets its BENCH_* sizes): its table
		# of ratios is printed; the step counts as one test.
		if BUILD=$VMTEST_BUILD bench/run.sh; then
			echo "ok - bench"
		else
			echo "not ok - bench exited with status $?"
		fi
		;;
	*)
		echo "not ok - unknown vmtest step $1"
		;;
	esac
}

# run.sh on the host adds up the TAP lines and summaries of guest.log.
for step in $VMTEST_STEPS; do
	start=$(date +%s)
	echo "vmtest-guest: step $step" | tee -a /vmtest-out/guest.log
	run_step "$step" 2>&1 | tee -a /vmtest-out/guest.log
	echo "vmtest-guest: step $step took $(($(date +%s) - start)) s" |
		tee -a /vmtest-out/guest.log
done
echo "vmtest-guest: done" | tee -a /vmtest-out/guest.log
exit_vm 0
