/* SPDX-License-Identifier: Apache-2.0 */
/* Reading a whole file into memory (manifests, kubeconfigs, tokens). */
#ifndef SLUICE_FILE_H
#define SLUICE_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

/* The cap of read_whole_file: kubeconfigs with inline certificates, tokens. */
#define FILE_DEFAULT_MAX_BYTES (4u << 20)

/*
 * Reads a regular file of at most max bytes into a malloc'd, NUL-terminated
 * buffer; *len (if not NULL) gets its length, *st (if not NULL) the identity
 * of what was read. The file is opened O_NONBLOCK, so a FIFO put in its
 * place cannot block the caller. Returns 0, -EINVAL (not a regular file),
 * -EFBIG (over max), -EAGAIN (it changed while being read: size, mtime or
 * ctime moved, three times in a row), or another -errno.
 */
int read_file_checked(const char *path, size_t max, char **text, size_t *len, struct stat *st);
/*
 * Reads fd from its offset to its end into a malloc'd, NUL-terminated
 * buffer (hint: the expected size); past max bytes: -EFBIG.
 */
int read_fd_all(int fd, size_t max, size_t hint, char **text, size_t *len);
/* True if b is a as far as contents go (size, mtime, ctime): no write in between. */
bool file_same_content(const struct stat *a, const struct stat *b);
/* read_file_checked with FILE_DEFAULT_MAX_BYTES, no identity. */
int read_whole_file(const char *path, char **text, size_t *len);

#endif
