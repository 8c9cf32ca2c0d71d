// SPDX-License-Identifier: Apache-2.0
/*
 * Interned strings (intern.h): a chained hash set of entries that each hold
 * a reference count and the bytes; the string handed out points into its
 * entry. One mutex: the API workers decode while the main loop frees.
 */
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/hash.h"
#include "lib/intern.h"
#include "lib/xalloc.h"

struct entry {
	struct entry *next;
	uint64_t hash;
	size_t refs;
	char s[];
};

static struct {
	pthread_mutex_t lock;
	struct entry **buckets;
	size_t n_buckets, count;
} set = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void grow(void)
{
	size_t n = set.n_buckets ? 2 * set.n_buckets : 256;
	struct entry **b = xcalloc(n, sizeof(*b));

	for (size_t i = 0; i < set.n_buckets; i++) {
		for (struct entry *e = set.buckets[i], *next; e; e = next) {
			next = e->next;
			e->next = b[e->hash & (n - 1)];
			b[e->hash & (n - 1)] = e;
		}
	}
	free(set.buckets);
	set.buckets = b;
	set.n_buckets = n;
}

/* The slot holding the entry for s (its hash h), or the empty slot at its chain's end. */
static struct entry **find(const char *s, uint64_t h)
{
	struct entry **slot = &set.buckets[h & (set.n_buckets - 1)];

	while (*slot && ((*slot)->hash != h || strcmp((*slot)->s, s)))
		slot = &(*slot)->next;
	return slot;
}

char *intern_get(const char *s)
{
	size_t len;
	uint64_t h;
	struct entry **slot, *e;

	if (!s)
		return NULL;
	len = strlen(s);
	h = hash64(s, len);
	pthread_mutex_lock(&set.lock);
	if (set.count >= set.n_buckets)
		grow();
	slot = find(s, h);
	e = *slot;
	if (!e) {
		e = xmalloc(sizeof(*e) + len + 1);
		e->next = NULL;
		e->hash = h;
		e->refs = 0;
		memcpy(e->s, s, len + 1);
		*slot = e;
		set.count++;
	}
	e->refs++;
	pthread_mutex_unlock(&set.lock);
	return e->s;
}

void intern_put(char *s)
{
	struct entry **slot, *e = NULL;

	if (!s)
		return;
	pthread_mutex_lock(&set.lock);
	if (set.n_buckets) {
		slot = find(s, hash64(s, strlen(s)));
		if (*slot && (*slot)->s == s) {
			e = *slot;
			if (!--e->refs) {
				*slot = e->next;
				set.count--;
				free(e);
			}
		}
	}
	pthread_mutex_unlock(&set.lock);
	if (!e)
		free(s);
}
