/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The one out-of-memory policy: allocation never fails for the caller. When
 * the C library cannot allocate, the agent logs one line and aborts; the
 * kernel keeps serving from its pinned state (or table) and the DaemonSet or
 * unit restarts the agent, which adopts it. Every allocation in agent/ goes
 * through these, so no caller carries a -ENOMEM path that is never tested.
 */
#ifndef SLUICE_XALLOC_H
#define SLUICE_XALLOC_H

#include <stddef.h>

void *xmalloc(size_t size);
void *xcalloc(size_t n, size_t size);
/* Like realloc(p, n * size), checking the multiplication for overflow. */
void *xreallocarray(void *p, size_t n, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* A new string formatted as by printf. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Dies like the allocators: for libraries that report out of memory as NULL. */
void *xcheck(void *p);

#endif
