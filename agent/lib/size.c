// SPDX-License-Identifier: Apache-2.0
/* Byte sizes given on the command line: "65536", "64K", "16M", "1G". */
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "lib/size.h"

int parse_byte_size(const char *text, size_t *out)
{
	unsigned long long n, shift = 0;
	char *end;

	if (!text || !isdigit((unsigned char)*text))
		return -EINVAL;
	errno = 0;
	n = strtoull(text, &end, 10);
	if (errno)
		return -EINVAL;
	switch (*end) {
	case 'K':
		shift = 10;
		break;
	case 'M':
		shift = 20;
		break;
	case 'G':
		shift = 30;
		break;
	case '\0':
		break;
	default:
		return -EINVAL;
	}
	if (shift && *++end)
		return -EINVAL;
	if (n > (SIZE_MAX >> shift))
		return -EINVAL;
	*out = (size_t)(n << shift);
	return 0;
}
