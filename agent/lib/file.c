// SPDX-License-Identifier: Apache-2.0
/* Reading a whole file into memory (manifests, kubeconfigs, tokens). */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include "lib/file.h"
#include "lib/xalloc.h"

#define READ_ATTEMPTS 3

bool file_same_content(const struct stat *a, const struct stat *b)
{
	return a->st_size == b->st_size && a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
	       a->st_mtim.tv_nsec == b->st_mtim.tv_nsec && a->st_ctim.tv_sec == b->st_ctim.tv_sec &&
	       a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

int read_fd_all(int fd, size_t max, size_t hint, char **text, size_t *len)
{
	size_t used = 0, cap = (hint < max ? hint : max) + 1;
	char *buf = xmalloc(cap + 1);
	ssize_t got;

	for (;;) {
		if (used == cap) {
			if (cap > max) {
				free(buf);
				return -EFBIG;
			}
			cap = cap * 2 > max + 1 ? max + 1 : cap * 2;
			buf = xreallocarray(buf, cap + 1, 1);
		}
		got = read(fd, buf + used, cap - used);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			int err = -errno;

			free(buf);
			return err;
		}
		if (!got)
			break;
		used += got;
	}
	if (used > max) {
		free(buf);
		return -EFBIG;
	}
	buf[used] = '\0';
	*text = buf;
	*len = used;
	return 0;
}

int read_file_checked(const char *path, size_t max, char **text, size_t *len, struct stat *st)
{
	struct stat before, after;
	int fd, err = -EAGAIN;
	size_t n = 0;

	fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	for (int attempt = 0; attempt < READ_ATTEMPTS && err == -EAGAIN; attempt++) {
		if (fstat(fd, &before)) {
			err = -errno;
			break;
		}
		if (!S_ISREG(before.st_mode)) {
			err = -EINVAL;
			break;
		}
		if ((size_t)before.st_size > max) {
			err = -EFBIG;
			break;
		}
		if (lseek(fd, 0, SEEK_SET) < 0) {
			err = -errno;
			break;
		}
		err = read_fd_all(fd, max, before.st_size, text, &n);
		if (err)
			break;
		/* Written in place while we read: what we hold may be half of it. */
		if (fstat(fd, &after) || !file_same_content(&before, &after) ||
		    (off_t)n != after.st_size) {
			free(*text);
			*text = NULL;
			err = -EAGAIN;
		}
	}
	close(fd);
	if (err)
		return err;
	if (len)
		*len = n;
	if (st)
		*st = after;
	return 0;
}

int read_whole_file(const char *path, char **text, size_t *len)
{
	return read_file_checked(path, FILE_DEFAULT_MAX_BYTES, text, len, NULL);
}
