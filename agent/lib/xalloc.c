// SPDX-License-Identifier: Apache-2.0
/* Allocation that aborts with a message on exhaustion (see xalloc.h). */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/xalloc.h"

static void __attribute__((noreturn)) out_of_memory(size_t size)
{
	/* No pr_warn: logging may allocate. */
	fprintf(stderr,
		"sluice: out of memory (allocating %zu bytes); aborting, the "
		"datapath keeps serving\n",
		size);
	abort();
}

void *xmalloc(size_t size)
{
	void *p = malloc(size ? size : 1);

	if (!p)
		out_of_memory(size);
	return p;
}

void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (!p)
		out_of_memory(n * size);
	return p;
}

void *xreallocarray(void *p, size_t n, size_t size)
{
	void *q;

	if (size && n > SIZE_MAX / size)
		out_of_memory(SIZE_MAX);
	q = realloc(p, n && size ? n * size : 1);
	if (!q)
		out_of_memory(n * size);
	return q;
}

char *xstrdup(const char *s)
{
	return xcheck(strdup(s));
}

char *xstrndup(const char *s, size_t n)
{
	return xcheck(strndup(s, n));
}

char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		out_of_memory(0);
	return s;
}

void *xcheck(void *p)
{
	if (!p)
		out_of_memory(0);
	return p;
}
