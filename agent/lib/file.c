// SPDX-License-Identifier: Apache-2.0
/* Reading a whole file into memory (manifests, kubeconfigs, tokens). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "lib/file.h"

int read_whole_file(const char *path, char **text, size_t *len)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t used = 0, cap = 0, got;
	int err = 0;

	if (!f)
		return -errno;
	do {
		if (used + 4096 + 1 > cap) {
			char *b = realloc(buf, cap = cap ? cap * 2 : 8192);

			if (!b) {
				err = -ENOMEM;
				break;
			}
			buf = b;
		}
		got = fread(buf + used, 1, cap - used - 1, f);
		used += got;
	} while (got);
	if (!err && ferror(f))
		err = -EIO;
	fclose(f);
	if (err) {
		free(buf);
		return err;
	}
	buf[used] = '\0';
	*text = buf;
	if (len)
		*len = used;
	return 0;
}
