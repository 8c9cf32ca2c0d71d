#!/bin/bash
# Usage: IMAGE_ROOT=DIR image-run.sh PROGRAM [ARG...]
# Runs PROGRAM, a path inside the unpacked image DIR, chrooted into DIR with
# the mounts deploy/daemonset.yaml gives the agent's container: /proc, /dev,
# /sys, the bpffs at /sys/fs/bpf and the cgroup2 root at /run/sluice/cgroup.
# In the e2e sandbox (lib.sh exports E2E_*) the bpffs is the test's own, and
# the test's work directory (manifests, status files) is bound at its own
# path; --bpffs= and --cgroup= arguments are rewritten to the paths above.
#
# All of it happens in a mount namespace of the program's own (unshare -m,
# private propagation): nothing is mounted in the machine's namespace, and
# every mount goes with the namespace when the program exits, also when it
# is killed. unshare and chroot exec, so the caller's $! is the program.
set -eu
root=${IMAGE_ROOT:?}
prog=$1
shift
bpffs=${E2E_BPFFS_MNT:?the e2e sandbox (lib.sh) names the bpffs}
cgroup=${E2E_CGROUP_ROOT:?the e2e sandbox (lib.sh) names the cgroup2 root}
args=()
for a in "$@"; do
	case "$a" in
	--bpffs="$bpffs"/*) a="--bpffs=/sys/fs/bpf/${a#--bpffs="$bpffs"/}" ;;
	--cgroup="$cgroup") a="--cgroup=/run/sluice/cgroup" ;;
	--cgroup="$cgroup"/*) a="--cgroup=/run/sluice/cgroup/${a#--cgroup="$cgroup"/}" ;;
	esac
	args+=("$a")
done
mkdir -p "$root/run/sluice/cgroup" ${E2E_WORK:+"$root$E2E_WORK"}
# shellcheck disable=SC2016 # expanded by the inner shell
exec unshare --mount --propagation private bash -c '
	set -e
	root=$1 bpffs=$2 cgroup=$3 work=$4
	shift 4
	mount --bind /proc "$root/proc"
	mount --bind /dev "$root/dev"
	mount --bind /sys "$root/sys"      # not recursive: none of the host'"'"'s submounts
	mount --bind "$bpffs" "$root/sys/fs/bpf"
	mount --bind "$cgroup" "$root/run/sluice/cgroup"
	[ -z "$work" ] || mount --bind "$work" "$root$work"
	exec chroot "$root" "$@"' image-run "$root" "$bpffs" "$cgroup" "${E2E_WORK:-}" \
	"$prog" "${args[@]}"
