// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer: the streamed manifest decode (a file read in small chunks, as
 * the directory source reads it), checked against the text decoded in one
 * piece: when that succeeds, the stream must give the same objects. A
 * second read with the first read's fingerprints known skips exactly the
 * items remembered. The first byte picks the chunk size.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "lib/log.h"
#include "source/manifest.h"

static bool knows(void *ctx, uint64_t fp)
{
	const struct manifest_items *seen = ctx;

	for (size_t i = 0; i < seen->n; i++)
		if (seen->items[i].fp == fp)
			return true;
	return false;
}

static size_t objects(const struct manifest_objects *o)
{
	return o->n_services + o->n_slices + o->n_nodes;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct manifest_objects whole = { 0 }, first = { 0 }, again = { 0 };
	struct manifest_items seen = { 0 }, second = { .known = knows, .ctx = &seen };
	size_t chunk, n_read, remembered = 0, skipped = 0;
	int fd, rc_whole, rc;

	if (!size)
		return 0;
	log_set_level(LOG_QUIET);
	chunk = data[0] % 16 + 1;
	data++;
	size--;
	fd = memfd_create("fuzz", 0);
	if (fd < 0 || write(fd, data, size) != (ssize_t)size)
		abort();
	rc_whole = manifest_decode((const char *)data, size, "fuzz", &whole);
	lseek(fd, 0, SEEK_SET);
	rc = manifest_decode_fd(fd, 1 << 20, chunk, "fuzz", &seen, &first, &n_read);
	if (!rc_whole && (rc || objects(&first) != objects(&whole) ||
			  first.n_rejected != whole.n_rejected))
		abort();
	if (!rc) {
		lseek(fd, 0, SEEK_SET);
		if (manifest_decode_fd(fd, 1 << 20, chunk, "fuzz", &second, &again, &n_read))
			abort();
		for (size_t i = 0; i < seen.n; i++)
			remembered += seen.items[i].fp != 0;
		for (size_t i = 0; i < second.n; i++)
			skipped += second.items[i].skipped;
		if (skipped != remembered || second.n != seen.n)
			abort();
	}
	close(fd);
	free(seen.items);
	free(second.items);
	manifest_objects_clear(&whole);
	manifest_objects_clear(&first);
	manifest_objects_clear(&again);
	return 0;
}
