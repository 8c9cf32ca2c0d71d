// SPDX-License-Identifier: Apache-2.0
/* A string-keyed hash map of opaque pointers (chained, grows by doubling). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/strmap.h"
#include "lib/xalloc.h"

static uint64_t hash_string(const char *s)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */

	while (*s) {
		h ^= (unsigned char)*s++;
		h *= 1099511628211ULL;
	}
	return h;
}

void strmap_init(struct strmap *map)
{
	memset(map, 0, sizeof(*map));
}

void strmap_destroy(struct strmap *map)
{
	for (size_t i = 0; i < map->n_buckets; i++) {
		struct strmap_entry *e = map->buckets[i], *next;

		for (; e; e = next) {
			next = e->next;
			free(e->key);
			free(e);
		}
	}
	free(map->buckets);
	strmap_init(map);
}

static struct strmap_entry **find_slot(const struct strmap *map, const char *key)
{
	struct strmap_entry **slot;

	if (!map->n_buckets)
		return NULL;
	slot = &map->buckets[hash_string(key) & (map->n_buckets - 1)];
	while (*slot && strcmp((*slot)->key, key))
		slot = &(*slot)->next;
	return slot;
}

void *strmap_get(const struct strmap *map, const char *key)
{
	struct strmap_entry **slot = find_slot(map, key);

	return slot && *slot ? (*slot)->value : NULL;
}

static void grow(struct strmap *map)
{
	size_t n = map->n_buckets ? map->n_buckets * 2 : 64;
	struct strmap_entry **buckets = xcalloc(n, sizeof(*buckets));

	for (size_t i = 0; i < map->n_buckets; i++) {
		struct strmap_entry *e = map->buckets[i], *next;

		for (; e; e = next) {
			size_t b = hash_string(e->key) & (n - 1);

			next = e->next;
			e->next = buckets[b];
			buckets[b] = e;
		}
	}
	free(map->buckets);
	map->buckets = buckets;
	map->n_buckets = n;
}

void *strmap_put(struct strmap *map, const char *key, void *value)
{
	struct strmap_entry **slot, *e;
	void *old;

	if (map->count + 1 > map->n_buckets)
		grow(map);
	slot = find_slot(map, key);
	if (*slot) {
		old = (*slot)->value;
		(*slot)->value = value;
		return old;
	}
	e = xcalloc(1, sizeof(*e));
	e->key = xstrdup(key);
	e->value = value;
	*slot = e;
	map->count++;
	return NULL;
}

void *strmap_remove(struct strmap *map, const char *key)
{
	struct strmap_entry **slot = find_slot(map, key), *e;
	void *value;

	if (!slot || !*slot)
		return NULL;
	e = *slot;
	value = e->value;
	*slot = e->next;
	free(e->key);
	free(e);
	map->count--;
	return value;
}

static struct strmap_entry *scan_from(const struct strmap *map, struct strmap_iter *it)
{
	for (; it->bucket < map->n_buckets; it->bucket++) {
		if (map->buckets[it->bucket]) {
			it->entry = map->buckets[it->bucket];
			return it->entry;
		}
	}
	it->entry = NULL;
	return NULL;
}

struct strmap_entry *strmap_first(const struct strmap *map, struct strmap_iter *it)
{
	it->bucket = 0;
	return scan_from(map, it);
}

struct strmap_entry *strmap_next(const struct strmap *map, struct strmap_iter *it)
{
	if (it->entry && it->entry->next) {
		it->entry = it->entry->next;
		return it->entry;
	}
	it->bucket++;
	return scan_from(map, it);
}
