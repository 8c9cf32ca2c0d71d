/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Whole BPF maps in and out in few syscalls: bpf_map_lookup_batch reads
 * a hash map a chunk of buckets at a time and bpf_map_update_batch writes
 * many entries in one call (Linux 5.6); where the kernel refuses them
 * (EINVAL, ENOTSUP) each falls back to one syscall per entry.
 */
#ifndef SLUICE_BPF_DUMP_H
#define SLUICE_BPF_DUMP_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>

struct bpf_map;

/* Called for each entry; returns 0 to go on. */
typedef int (*bpf_entry_cb)(const void *key, const void *val, void *ctx);

/* Every entry of map fd, in the kernel's order, a chunk in memory at a time. */
int bpf_map_each(int fd, __u32 key_size, __u32 val_size, bpf_entry_cb cb, void *ctx);

/* The same for a libbpf map, its values as the kernel copies them (per CPU: one each). */
int bpf_map_each_of(const struct bpf_map *map, bpf_entry_cb cb, void *ctx);

/*
 * Writes n entries (keys and vals: arrays of n) with BPF_ANY. Returns 0
 * or -errno of the first entry that failed: the entries before it are in.
 */
int bpf_map_update_many(int fd, const void *keys, __u32 key_size, const void *vals, __u32 val_size,
			__u32 n);

#endif
