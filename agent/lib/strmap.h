/* SPDX-License-Identifier: Apache-2.0 */
/* A string-keyed hash map of opaque pointers (chained, grows by doubling). */
#ifndef SLUICE_STRMAP_H
#define SLUICE_STRMAP_H

#include <stdbool.h>
#include <stddef.h>

struct strmap_entry {
	char *key;
	void *value;
	struct strmap_entry *next;
};

struct strmap {
	struct strmap_entry **buckets;
	size_t n_buckets;
	size_t count;
};

void strmap_init(struct strmap *map);
/* Frees the entries and keys; values are the caller's (free them first). */
void strmap_destroy(struct strmap *map);
void *strmap_get(const struct strmap *map, const char *key);
/* Sets key to value; returns the previous value or NULL. Copies the key. */
void *strmap_put(struct strmap *map, const char *key, void *value);
/* Removes key; returns its value or NULL. */
void *strmap_remove(struct strmap *map, const char *key);

/* Iteration: for (e = strmap_first(m, &it); e; e = strmap_next(m, &it)) */
struct strmap_iter {
	size_t bucket;
	struct strmap_entry *entry;
};
struct strmap_entry *strmap_first(const struct strmap *map, struct strmap_iter *it);
struct strmap_entry *strmap_next(const struct strmap *map, struct strmap_iter *it);

#endif
