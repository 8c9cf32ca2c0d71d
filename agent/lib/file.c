// SPDX-License-Identifier: Apache-2.0
/* Reading a whole file into memory (manifests, kubeconfigs, tokens). */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "lib/file.h"
#include "lib/xalloc.h"

int read_whole_file(const char *path, char **text, size_t *len)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t used = 0, cap = 0, got;
	bool failed;

	if (!f)
		return -errno;
	do {
		if (used + 4096 + 1 > cap) {
			cap = cap ? cap * 2 : 8192;
			buf = xreallocarray(buf, cap, 1);
		}
		got = fread(buf + used, 1, cap - used - 1, f);
		used += got;
	} while (got);
	failed = ferror(f);
	fclose(f);
	if (failed) {
		free(buf);
		return -EIO;
	}
	buf[used] = '\0';
	*text = buf;
	if (len)
		*len = used;
	return 0;
}
