// SPDX-License-Identifier: Apache-2.0
/*
 * Maglev lookup tables (maglev.h): m entries, each naming a backend, that
 * the datapaths index with a flow's hash mod m.
 *
 * How the table is filled: every (entry, backend) pair has a score, a hash
 * of the entry's number and the backend's identity under fixed keys, and
 * each backend a quota, m / n or one more. Each entry goes to its
 * best-scoring backend among those with room, where a backend prefers the
 * entries that score highest for it: the stable allocation of entries to
 * backends, computed by deferred acceptance (entries propose, in order of
 * their scores; a full backend keeps its best and gives back its worst).
 *
 * Why not the paper's fill (backends take turns claiming the next free
 * entry of their permutations): its spread is as even, but removing one of
 * 100 backends from a 16381-entry table moved 1.5% of the other backends'
 * entries in selftests/unit/test_maglev.c, above the 1% that a removal may
 * disturb; this fill moved at most 0.92% for every n from 3 to 100 (the
 * stable allocation only changes where the freed entries cascade).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "core/maglev.h"
#include "lib/xalloc.h"

/*
 * Fixed keys: two agents, or one restarted, must compute the same
 * permutations (the string map's hash is seeded per process; this is not).
 */
#define MAGLEV_KEY_BACKEND 0x9ae16a3b2f90404full
#define MAGLEV_KEY_ENTRY 0xc3a5c85c97cb3127ull

bool maglev_is_prime(uint32_t n)
{
	if (n < 2)
		return false;
	for (uint32_t d = 2; d <= n / d; d++)
		if (n % d == 0)
			return false;
	return true;
}

int maglev_table_size_parse(const char *s, uint32_t *out, char *why, size_t why_len)
{
	unsigned long n;
	char *end;

	errno = 0;
	n = s ? strtoul(s, &end, 10) : 0;
	if (!s || !*s || *end || errno || *s == '-' || n < MAGLEV_MIN_TABLE_SIZE ||
	    n > MAGLEV_MAX_TABLE_SIZE || !maglev_is_prime((uint32_t)n)) {
		snprintf(why, why_len, "\"%s\" is not a prime from %u to %u (e.g. 16381, 65521)",
			 s ? s : "", MAGLEV_MIN_TABLE_SIZE, MAGLEV_MAX_TABLE_SIZE);
		return -EINVAL;
	}
	*out = (uint32_t)n;
	return 0;
}

/* A 64-bit finalizer (multiply-xorshift): every input bit moves every output bit. */
static uint64_t mix64(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 33;
	return h;
}

/* A backend's identity hashed: family, address bytes, port; the same on every host. */
static uint64_t identity_hash(const struct backend *be)
{
	size_t alen = be->addr.family == AF_INET6 ? 16 : 4;
	uint64_t h = MAGLEV_KEY_BACKEND ^ (be->addr.family == AF_INET6 ? 6 : 4);

	for (size_t i = 0; i < alen; i++)
		h = mix64(h ^ ((uint64_t)be->addr.bytes[i] << 8 | i));
	return mix64(h ^ ((uint64_t)be->port << 16 | 0xffff));
}

/* An accepted entry in its backend's min-heap: the worst one is given back first. */
struct held {
	uint64_t score;
	uint32_t entry;
};

static bool held_less(const struct held *a, const struct held *b)
{
	return a->score < b->score || (a->score == b->score && a->entry < b->entry);
}

static void heap_swap(struct held *h, uint32_t i, uint32_t j)
{
	struct held t = h[i];

	h[i] = h[j];
	h[j] = t;
}

static void heap_up(struct held *h, uint32_t i)
{
	while (i && held_less(&h[i], &h[(i - 1) / 2])) {
		heap_swap(h, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

static void heap_down(struct held *h, uint32_t n, uint32_t i)
{
	for (;;) {
		uint32_t l = 2 * i + 1, r = l + 1, min = i;

		if (l < n && held_less(&h[l], &h[min]))
			min = l;
		if (r < n && held_less(&h[r], &h[min]))
			min = r;
		if (min == i)
			return;
		heap_swap(h, i, min);
		i = min;
	}
}

struct ranked {
	uint64_t id;
	size_t index;
};

static int ranked_cmp(const void *a, const void *b)
{
	const struct ranked *x = a, *y = b;

	if (x->id != y->id)
		return x->id > y->id ? -1 : 1;
	return x->index < y->index ? -1 : x->index > y->index;
}

/* What the fill works on; one allocation each, freed at the end. */
struct fill {
	size_t n;
	uint32_t m;
	uint64_t *id; /* per backend: identity hash */
	uint32_t *quota, *size; /* per backend */
	struct held *heap; /* per backend: quota slots from base[b] */
	size_t *base;
	uint64_t *entry_key; /* per entry: its number hashed */
	uint64_t *last_score; /* per entry: the score of its last proposal */
	uint32_t *last_backend; /* UINT32_MAX: none yet */
	uint32_t *free_entries; /* a stack of entries without a backend */
};

/*
 * Quotas: m / n each, and one more for the m mod n backends whose identity
 * hashes highest, so that the counts differ by at most one.
 */
static void fill_quotas(struct fill *f)
{
	struct ranked *order = xcalloc(f->n, sizeof(*order));
	uint32_t q = f->m / f->n, extra = f->m % f->n;
	size_t at = 0;

	for (size_t b = 0; b < f->n; b++)
		order[b] = (struct ranked){ .id = f->id[b], .index = b };
	qsort(order, f->n, sizeof(*order), ranked_cmp);
	for (size_t r = 0; r < f->n; r++)
		f->quota[order[r].index] = q + (r < extra);
	for (size_t b = 0; b < f->n; b++) {
		f->base[b] = at;
		at += f->quota[b];
	}
	free(order);
}

/* The best (score, backend) pair for entry e below its last proposal. */
static uint32_t next_choice(const struct fill *f, uint32_t e, uint64_t *score)
{
	uint64_t last = f->last_score[e], best = 0;
	uint32_t last_b = f->last_backend[e], choice = UINT32_MAX;

	for (uint32_t b = 0; b < f->n; b++) {
		uint64_t s = mix64(f->id[b] ^ f->entry_key[e]);

		if (!f->quota[b])
			continue;
		/* Pairs order by score, then backend: strictly after the last one. */
		if (last_b != UINT32_MAX && (s > last || (s == last && b >= last_b)))
			continue;
		if (choice == UINT32_MAX || s > best || (s == best && b > choice)) {
			best = s;
			choice = b;
		}
	}
	*score = best;
	return choice;
}

/* Entry e proposes until a backend holds it; an entry given back goes on the stack. */
static void propose(struct fill *f, uint32_t e, uint32_t *table, uint32_t *sp)
{
	for (;;) {
		uint64_t score;
		uint32_t b = next_choice(f, e, &score);
		struct held in = { .score = score, .entry = e };
		struct held *h = &f->heap[f->base[b]];

		f->last_score[e] = score;
		f->last_backend[e] = b;
		if (f->size[b] < f->quota[b]) {
			h[f->size[b]] = in;
			heap_up(h, f->size[b]++);
			table[e] = b;
			return;
		}
		if (held_less(&h[0], &in)) {
			f->free_entries[(*sp)++] = h[0].entry;
			h[0] = in;
			heap_down(h, f->size[b], 0);
			table[e] = b;
			return;
		}
	}
}

void maglev_build(const struct backend *backends, size_t n, uint32_t m, uint32_t *table)
{
	struct fill f = { .n = n, .m = m };
	uint32_t sp = 0;

	f.id = xcalloc(n, sizeof(*f.id));
	f.quota = xcalloc(n, sizeof(*f.quota));
	f.size = xcalloc(n, sizeof(*f.size));
	f.base = xcalloc(n, sizeof(*f.base));
	f.heap = xcalloc(m, sizeof(*f.heap));
	f.entry_key = xcalloc(m, sizeof(*f.entry_key));
	f.last_score = xcalloc(m, sizeof(*f.last_score));
	f.last_backend = xcalloc(m, sizeof(*f.last_backend));
	f.free_entries = xcalloc(m, sizeof(*f.free_entries));
	for (size_t b = 0; b < n; b++)
		f.id[b] = identity_hash(&backends[b]);
	fill_quotas(&f);
	for (uint32_t e = 0; e < m; e++) {
		f.entry_key[e] = mix64(MAGLEV_KEY_ENTRY ^ e);
		f.last_backend[e] = UINT32_MAX;
		f.free_entries[sp++] = m - 1 - e;
	}
	/* The quotas add up to m: every entry finds a backend with room. */
	while (sp) {
		uint32_t e = f.free_entries[--sp];

		propose(&f, e, table, &sp);
	}
	free(f.id);
	free(f.quota);
	free(f.size);
	free(f.base);
	free(f.heap);
	free(f.entry_key);
	free(f.last_score);
	free(f.last_backend);
	free(f.free_entries);
}
