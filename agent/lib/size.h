/* SPDX-License-Identifier: Apache-2.0 */
/* Byte sizes given on the command line: "65536", "64K", "16M", "1G". */
#ifndef SLUICE_SIZE_H
#define SLUICE_SIZE_H

#include <stddef.h>

/* K, M and G are powers of 1024. Returns 0, or -EINVAL (*out unchanged). */
int parse_byte_size(const char *text, size_t *out);

#endif
