// SPDX-License-Identifier: Apache-2.0
/*
 * Reading whole maps and writing many entries in few syscalls, with the
 * per-entry fallback where the kernel has no batch operations.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "datapath/bpf/bpf_datapath.h"
#include "datapath/bpf/bpf_dump.h"
#include "lib/log.h"
#include "lib/xalloc.h"

/* Entries a lookup_batch asks for: a few hundred KiB of buffer. */
#define DUMP_CHUNK 4096

/* Whether the kernel takes the batch calls: probed by their first use. */
static bool no_lookup_batch, no_update_batch;

static bool batch_refused(int err)
{
	return err == -EINVAL || err == -ENOTSUP || err == -EOPNOTSUPP || err == -ENOSYS;
}

static int each_by_key(int fd, __u32 key_size, __u32 val_size, bpf_entry_cb cb, void *ctx)
{
	unsigned char *key = xmalloc(key_size), *next = xmalloc(key_size);
	unsigned char *val = xmalloc(val_size);
	void *prev = NULL;
	int err = 0;

	while (!err && bpf_map_get_next_key(fd, prev, next) == 0) {
		memcpy(key, next, key_size);
		prev = key;
		/* Gone since get_next_key: skipped. */
		if (bpf_map_lookup_elem(fd, key, val) == 0)
			err = cb(key, val, ctx);
	}
	free(key);
	free(next);
	free(val);
	return err;
}

int bpf_map_each(int fd, __u32 key_size, __u32 val_size, bpf_entry_cb cb, void *ctx)
{
	__u32 chunk = DUMP_CHUNK, count;
	unsigned char *keys, *vals;
	/* The batch token of a hash map is a bucket index; key-sized buffers fit any map. */
	__u64 in[4], out[4];
	bool first = true, done = false;
	int err = 0;

	if (no_lookup_batch)
		return each_by_key(fd, key_size, val_size, cb, ctx);
	keys = xcalloc(chunk, key_size);
	vals = xcalloc(chunk, val_size);
	while (!done && !err) {
		count = chunk;
		err = bpf_map_lookup_batch(fd, first ? NULL : in, out, keys, vals, &count, NULL);
		err = err ? -errno : 0;
		if (err == -ENOENT) {
			done = true; /* the last entries, if any, are in */
			err = 0;
		} else if (err == -ENOSPC && count == 0) {
			/* One bucket holds more than a chunk: a bigger one. */
			chunk *= 2;
			keys = xreallocarray(keys, chunk, key_size);
			vals = xreallocarray(vals, chunk, val_size);
			err = 0;
			continue;
		} else if (err && first && batch_refused(err)) {
			pr_info("bpf: this kernel reads maps one entry at a time (no lookup_batch: "
				"%s)",
				strerror(-err));
			no_lookup_batch = true;
			free(keys);
			free(vals);
			return each_by_key(fd, key_size, val_size, cb, ctx);
		} else if (err) {
			break;
		}
		first = false;
		for (__u32 i = 0; i < count && !err; i++)
			err = cb(keys + (size_t)i * key_size, vals + (size_t)i * val_size, ctx);
		memcpy(in, out, sizeof(in));
	}
	free(keys);
	free(vals);
	return err;
}

int bpf_map_each_of(const struct bpf_map *map, bpf_entry_cb cb, void *ctx)
{
	__u32 val_size = bpf_map__value_size(map);
	enum bpf_map_type type = bpf_map__type(map);

	if (type == BPF_MAP_TYPE_PERCPU_HASH || type == BPF_MAP_TYPE_LRU_PERCPU_HASH ||
	    type == BPF_MAP_TYPE_PERCPU_ARRAY) {
		int cpus = libbpf_num_possible_cpus();

		if (cpus < 1)
			return cpus < 0 ? cpus : -EINVAL;
		val_size = ((val_size + 7) & ~7u) * (__u32)cpus;
	}
	return bpf_map_each(bpf_map__fd(map), bpf_map__key_size(map), val_size, cb, ctx);
}

/* ---- writes ---- */

int bpf_map_update_many(int fd, const void *keys, __u32 key_size, const void *vals, __u32 val_size,
			__u32 n)
{
	DECLARE_LIBBPF_OPTS(bpf_map_batch_opts, opts, .elem_flags = BPF_ANY);
	__u32 count = n, i;
	int err;

	if (!n)
		return 0;
	if (!no_update_batch) {
		err = bpf_map_update_batch(fd, keys, vals, &count, &opts) ? -errno : 0;
		if (!err)
			return 0;
		if (!batch_refused(err) || count)
			return err;
		/* Refused before the first entry: the kernel has no batch update, or a key is bad. */
	}
	for (i = 0; i < n; i++) {
		if (bpf_map_update_elem(fd, (const char *)keys + (size_t)i * key_size,
					(const char *)vals + (size_t)i * val_size, BPF_ANY))
			return -errno;
	}
	if (!no_update_batch) {
		pr_info("bpf: this kernel writes maps one entry at a time (no update_batch)");
		no_update_batch = true;
	}
	return 0;
}
