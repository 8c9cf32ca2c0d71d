// SPDX-License-Identifier: Apache-2.0
/*
 * Which backend sets a full apply can keep: the services map read in
 * batches names each frontend's sets, the backends map read in batches
 * is compared slot by slot with what the frontend wants, in memory.
 */
#include <stdlib.h>
#include <string.h>

#include "datapath/bpf/bpf_adopt.h"
#include "datapath/bpf/bpf_datapath.h"
#include "datapath/bpf/bpf_dump.h"
#include "lib/xalloc.h"

struct key_change {
	struct sl_service_key key;
	__u32 change; /* index in the diff */
};

struct set_check {
	__u32 set;
	__u32 change;
	__u32 n_ok; /* slots that hold the backend wanted there */
	bool node; /* the node set (SL_SVC_F_NODE_SET), not the main one */
	bool bad; /* a slot holds something else, or the set is named twice */
};

struct bpf_set_checks {
	const struct state_diff *diff;
	struct key_change *keys;
	size_t n_keys;
	struct set_check *sets;
	size_t n_sets, cap_sets;
};

static int cmp_key_change(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(struct sl_service_key));
}

static int cmp_set_check(const void *a, const void *b)
{
	const struct set_check *x = a, *y = b;

	return x->set < y->set ? -1 : x->set > y->set;
}

static void add_set(struct bpf_set_checks *c, __u32 set, __u32 change, bool node)
{
	grow((void **)&c->sets, &c->cap_sets, c->n_sets, sizeof(*c->sets));
	c->sets[c->n_sets++] = (struct set_check){ .set = set, .change = change, .node = node };
}

static int name_sets(const void *key, const void *val, void *data)
{
	const struct sl_service *svc = val;
	struct bpf_set_checks *c = data;
	const struct key_change *kc;

	kc = bsearch(key, c->keys, c->n_keys, sizeof(*c->keys), cmp_key_change);
	if (!kc)
		return 0; /* no longer wanted: the sweep removes it */
	if (svc->count)
		add_set(c, svc->backend_set, kc->change, false);
	if ((svc->flags & SL_SVC_F_NODE_SET) && svc->node_count)
		add_set(c, svc->node_set, kc->change, true);
	return 0;
}

/* The slot-th usable backend of list, NULL past the last. */
static const struct backend *usable_nth(const struct frontend *fe, const struct backend *list,
					size_t n, __u32 slot)
{
	for (size_t i = 0; i < n; i++) {
		if (!bpf_backend_usable(fe, &list[i]))
			continue;
		if (!slot--)
			return &list[i];
	}
	return NULL;
}

static int check_slot(const void *key, const void *val, void *data)
{
	struct bpf_set_checks *c = data;
	struct set_check probe, *sc;
	struct sl_backend_key bkey;
	const struct frontend *fe;
	const struct backend *want;
	struct sl_backend expect;

	memcpy(&bkey, key, sizeof(bkey));
	probe.set = bkey.backend_set;
	sc = bsearch(&probe, c->sets, c->n_sets, sizeof(*c->sets), cmp_set_check);
	if (!sc || sc->bad)
		return 0;
	fe = c->diff->changes[sc->change].new;
	want = sc->node ? usable_nth(fe, fe->node_backends, fe->n_node_backends, bkey.slot) :
			  usable_nth(fe, fe->backends, fe->n_backends, bkey.slot);
	if (want)
		bpf_backend_of(want, &expect);
	if (!want || memcmp(&expect, val, sizeof(expect)))
		sc->bad = true;
	else
		sc->n_ok++;
	return 0;
}

struct bpf_set_checks *bpf_set_checks_read(struct datapath *dp, const struct state_diff *diff,
					   bool *empty)
{
	int svc_fd = bpf_map__fd(dp->skel->maps.services);
	struct sl_service_key first;
	struct bpf_set_checks *c;

	*empty = bpf_map_get_next_key(svc_fd, NULL, &first) != 0 && errno == ENOENT;
	if (*empty)
		return NULL;
	c = xcalloc(1, sizeof(*c));
	c->diff = diff;
	c->keys = xcalloc(diff->n_changes ? diff->n_changes : 1, sizeof(*c->keys));
	for (size_t i = 0; i < diff->n_changes; i++) {
		const struct frontend *fe = diff->changes[i].new;

		if (!fe || (fe->key.addr.family != AF_INET && fe->key.addr.family != AF_INET6))
			continue;
		bpf_service_key_of(&fe->key, &c->keys[c->n_keys].key);
		c->keys[c->n_keys++].change = (__u32)i;
	}
	if (c->n_keys)
		qsort(c->keys, c->n_keys, sizeof(*c->keys), cmp_key_change);
	/* A failed read leaves sets unknown: they are read slot by slot instead. */
	if (c->n_keys && bpf_map_each(svc_fd, sizeof(struct sl_service_key),
				      sizeof(struct sl_service), name_sets, c))
		c->n_sets = 0;
	if (c->n_sets) {
		qsort(c->sets, c->n_sets, sizeof(*c->sets), cmp_set_check);
		for (size_t i = 1; i < c->n_sets; i++)
			if (c->sets[i].set == c->sets[i - 1].set)
				c->sets[i].bad = c->sets[i - 1].bad = true;
		if (bpf_map_each(bpf_map__fd(dp->skel->maps.backends),
				 sizeof(struct sl_backend_key), sizeof(struct sl_backend),
				 check_slot, c))
			c->n_sets = 0;
	}
	free(c->keys);
	c->keys = NULL;
	return c;
}

int bpf_set_check(const struct bpf_set_checks *c, __u32 set, __u32 count, __u32 want_count)
{
	struct set_check probe = { .set = set }, *sc;

	if (!c->n_sets)
		return -1;
	sc = bsearch(&probe, c->sets, c->n_sets, sizeof(*c->sets), cmp_set_check);
	if (!sc)
		return -1;
	return !sc->bad && count == want_count && sc->n_ok == want_count;
}

void bpf_set_checks_free(struct bpf_set_checks *c)
{
	if (!c)
		return;
	free(c->sets);
	free(c);
}
