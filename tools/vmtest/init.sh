#!/bin/sh
# The guest's /init (busybox): load the modules the initramfs carries, mount
# the host's root read-only over 9p with a tmpfs overlay on top, and hand
# over to guest.sh (bash, from the host's root) on that root.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in /modules/*.ko; do
	insmod "$m" || echo "vmtest-init: insmod $m failed"
done

# Kernel command line: vmtest.guest=PATH (guest.sh on the host's root).
guest=
for a in $(cat /proc/cmdline); do
	case "$a" in vmtest.guest=*) guest=${a#vmtest.guest=} ;; esac
done

fail() {
	echo "vmtest-init: $*"
	# isa-debug-exit: qemu exits with (2 << 1) | 1 = 5, "the guest broke".
	printf '\002' | dd of=/dev/port bs=1 seek=244 count=1 2>/dev/null
	poweroff -f
}

mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144,cache=loose hostroot /lower ||
	fail "cannot mount the host's root over 9p"
mount -t tmpfs -o mode=0755 rw /rw
mkdir -p /rw/upper /rw/work
mount -t overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work overlay /newroot ||
	fail "cannot mount the overlay"
[ -x "/newroot$guest" ] || fail "no guest script at $guest"
umount /proc /sys
mount --move /dev /newroot/dev
exec switch_root /newroot /bin/bash "$guest"
