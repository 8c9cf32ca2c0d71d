// SPDX-License-Identifier: Apache-2.0
/* A string-keyed hash map of opaque pointers (chained, grows by doubling). */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/random.h>

#include "lib/strmap.h"
#include "lib/xalloc.h"

/*
 * SipHash-1-3 under a key drawn once per process: bucket positions cannot
 * be predicted from outside, so names chosen to collide (Services and
 * slices are tenant input) cannot make lookups linear.
 */
static uint64_t sip_key[2];
static pthread_once_t sip_once = PTHREAD_ONCE_INIT;

static void sip_seed(void)
{
	if (getrandom(sip_key, sizeof(sip_key), GRND_NONBLOCK) != sizeof(sip_key)) {
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		sip_key[0] = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ULL ^ (uint64_t)getpid();
		sip_key[1] = (uint64_t)ts.tv_sec * 0xbf58476d1ce4e5b9ULL ^ (uintptr_t)&ts;
	}
}

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

static void sip_round(uint64_t v[4])
{
	v[0] += v[1];
	v[1] = ROTL(v[1], 13) ^ v[0];
	v[0] = ROTL(v[0], 32);
	v[2] += v[3];
	v[3] = ROTL(v[3], 16) ^ v[2];
	v[0] += v[3];
	v[3] = ROTL(v[3], 21) ^ v[0];
	v[2] += v[1];
	v[1] = ROTL(v[1], 17) ^ v[2];
	v[2] = ROTL(v[2], 32);
}

static uint64_t hash_string(const char *s)
{
	size_t len = strlen(s), i;
	uint64_t v[4], m, last = (uint64_t)len << 56;

	pthread_once(&sip_once, sip_seed);
	v[0] = sip_key[0] ^ 0x736f6d6570736575ULL;
	v[1] = sip_key[1] ^ 0x646f72616e646f6dULL;
	v[2] = sip_key[0] ^ 0x6c7967656e657261ULL;
	v[3] = sip_key[1] ^ 0x7465646279746573ULL;
	for (i = 0; i + 8 <= len; i += 8) {
		memcpy(&m, s + i, 8);
		v[3] ^= m;
		sip_round(v);
		v[0] ^= m;
	}
	for (size_t j = 0; i + j < len; j++)
		last |= (uint64_t)(unsigned char)s[i + j] << (8 * j);
	v[3] ^= last;
	sip_round(v);
	v[0] ^= last;
	v[2] ^= 0xff;
	sip_round(v);
	sip_round(v);
	sip_round(v);
	return v[0] ^ v[1] ^ v[2] ^ v[3];
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
	size_t len;
	void *old;

	if (map->count + 1 > map->n_buckets)
		grow(map);
	slot = find_slot(map, key);
	if (*slot) {
		old = (*slot)->value;
		(*slot)->value = value;
		return old;
	}
	/* The key lives in the entry's own block: one allocation per entry. */
	len = strlen(key);
	e = xmalloc(sizeof(*e) + len + 1);
	e->key = memcpy(e + 1, key, len + 1);
	e->next = NULL;
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
