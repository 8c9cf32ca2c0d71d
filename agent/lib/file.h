/* SPDX-License-Identifier: Apache-2.0 */
/* Reading a whole file into memory (manifests, kubeconfigs, tokens). */
#ifndef SLUICE_FILE_H
#define SLUICE_FILE_H

#include <stddef.h>

/*
 * Reads path into a malloc'd, NUL-terminated buffer. *len (if not NULL)
 * gets its length. Returns 0 or -errno.
 */
int read_whole_file(const char *path, char **text, size_t *len);

#endif
