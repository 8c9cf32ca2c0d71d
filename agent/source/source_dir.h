/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The manifest directory source (--source=dir:PATH): loads every .json,
 * .yaml and .yml file, then follows changes with inotify, re-reading only
 * the files that changed and feeding the store what they add or remove.
 */
#ifndef SLUICE_SOURCE_DIR_H
#define SLUICE_SOURCE_DIR_H

#include <stddef.h>
#include <stdint.h>

#include "source/source.h"
#include "core/store.h"
#include "lib/strmap.h"

struct dir_source {
	struct source base;
	char *path;
	int inotify_fd;
	struct store *store;
	struct strmap files; /* file name -> struct dir_file * */
	struct strmap writing; /* file name -> (void *)1: modified, not closed yet */
	size_t max_file_bytes; /* larger files are not read */
	size_t rejected; /* files or objects rejected by the last scan */
	size_t rejected_of[4]; /* ever, by enum rejected_kind (source.h), for metrics */
	/* Top-level items read ever: decoded, and skipped as unchanged since the last read. */
	uint64_t items_decoded, items_skipped;
};

/*
 * --max-file-bytes. Files are read in chunks and decoded one List item or
 * YAML document at a time, so memory follows the largest item (its tree
 * takes about 14 times its bytes), not the file: 100k Services of 10
 * endpoints in one JSON List are about 110 MB.
 */
#define DIR_DEFAULT_MAX_FILE_BYTES (256u << 20)

/*
 * Loads the directory and starts watching it; max_file_bytes 0 takes the
 * default. Returns 0 or -errno.
 */
int dir_source_open(struct dir_source *src, const char *path, size_t max_file_bytes,
		    struct store *store);
/* The descriptor to poll for changes. */
int dir_source_fd(const struct dir_source *src);
/* Drains pending inotify events and re-reads what changed. */
int dir_source_handle_events(struct dir_source *src);
void dir_source_close(struct dir_source *src);

#endif
