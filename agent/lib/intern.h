/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shared, reference-counted copies of the strings that many objects carry
 * (namespaces, source paths, port names, node names, zones), so that 100k
 * objects of one namespace hold one copy of its name. Thread-safe.
 */
#ifndef SLUICE_INTERN_H
#define SLUICE_INTERN_H

/* A shared copy of s with one more reference (NULL stays NULL). Never write to it. */
char *intern_get(const char *s);
/*
 * Drops a reference taken by intern_get (the copy goes with the last one).
 * Any other malloc'd string is simply freed, so that objects built by hand
 * (tests) free as before. NULL is ignored.
 */
void intern_put(char *s);

#endif
