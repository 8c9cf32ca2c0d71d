// SPDX-License-Identifier: Apache-2.0
/*
 * Index ranges of the backends4/6-N maps: a first-fit allocator per map,
 * the range each served frontend holds, and the range changes of the apply
 * being built, settled once the kernel has answered.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/xalloc.h"
#include "datapath/nft/nft_classify.h"
#include "datapath/nft/nft_datapath.h"
#include "datapath/nft/nft_ranges.h"

void nft_ranges_init(struct backend_ranges *br)
{
	memset(br, 0, sizeof(*br));
	br->n_shards = NFT_BACKEND_SHARDS_MIN;
	strmap_init(&br->owner);
}

void nft_ranges_destroy(struct backend_ranges *br)
{
	struct strmap_iter it;

	for (struct strmap_entry *e = strmap_first(&br->owner, &it); e;
	     e = strmap_next(&br->owner, &it))
		free(e->value);
	strmap_destroy(&br->owner);
	for (int v6 = 0; v6 < 2; v6++)
		for (int shard = 0; shard < NFT_BACKEND_SHARDS_MAX; shard++)
			free(br->alloc[v6][shard].free);
}

/* First fit among the freed ranges, else past the top. Returns 0 or -ENOSPC. */
static int range_get(struct range_alloc *a, uint32_t n, uint32_t *base)
{
	for (size_t i = 0; i < a->n_free; i++) {
		struct idx_range *f = &a->free[i];

		if (f->n < n)
			continue;
		*base = f->base;
		f->base += n;
		f->n -= n;
		if (!f->n) {
			memmove(f, f + 1, (a->n_free - i - 1) * sizeof(*f));
			a->n_free--;
		}
		return 0;
	}
	/* numgen's offset + modulus - 1 must stay within 32 bits. */
	if ((uint64_t)a->top + n > UINT32_MAX)
		return -ENOSPC;
	*base = a->top;
	a->top += n;
	return 0;
}

/* Gives a range back: merged with its neighbours, or lowering the top. */
static void range_put(struct range_alloc *a, struct idx_range r)
{
	size_t i = 0;

	while (i < a->n_free && a->free[i].base < r.base)
		i++;
	if (i > 0 && a->free[i - 1].base + a->free[i - 1].n == r.base) {
		a->free[i - 1].n += r.n;
		i--;
	} else {
		if (a->n_free == a->cap_free) {
			a->cap_free = a->cap_free ? 2 * a->cap_free : 64;
			a->free = xreallocarray(a->free, a->cap_free, sizeof(*a->free));
		}
		memmove(&a->free[i + 1], &a->free[i], (a->n_free - i) * sizeof(*a->free));
		a->free[i] = r;
		a->n_free++;
	}
	/* free[i] now holds r; join the next range if it touches. */
	if (i + 1 < a->n_free && a->free[i].base + a->free[i].n == a->free[i + 1].base) {
		a->free[i].n += a->free[i + 1].n;
		memmove(&a->free[i + 1], &a->free[i + 2], (a->n_free - i - 2) * sizeof(*a->free));
		a->n_free--;
	}
	if (a->free[i].base + a->free[i].n == a->top) {
		a->top = a->free[i].base;
		a->n_free--;
	}
}

static struct range_op *range_op_new(struct datapath *dp, const struct frontend *fe,
				     enum nft_side side)
{
	struct range_op *op;

	if (dp->n_ops == dp->cap_ops) {
		dp->cap_ops = dp->cap_ops ? 2 * dp->cap_ops : 64;
		dp->ops = xreallocarray(dp->ops, dp->cap_ops, sizeof(*dp->ops));
	}
	op = &dp->ops[dp->n_ops++];
	memset(op, 0, sizeof(*op));
	nft_fe_side_chain_name(&fe->key, side, op->name, sizeof(op->name));
	op->v6 = fe->key.addr.family == AF_INET6;
	op->shard = nft_fe_backend_shard(&fe->key, dp->ranges.n_shards);
	return op;
}

bool nft_range_alloc_for(struct datapath *dp, const struct frontend *fe, enum nft_side side,
			 uint32_t *base)
{
	uint32_t n = nft_fe_usable_backends(fe);
	bool v6 = fe->key.addr.family == AF_INET6;
	struct range_alloc *a =
		&dp->ranges.alloc[v6][nft_fe_backend_shard(&fe->key, dp->ranges.n_shards)];
	struct range_op *op;
	int err;

	err = range_get(a, n, base);
	if (err) {
		char key[96];

		nft_fe_key_text(&fe->key, key, sizeof(key));
		pr_warn("nft: %s%s: no room for %u backends in %s", key,
			side == NFT_SIDE_NODE ? " (node chain)" : "", n,
			v6 ? NFT_BACKENDS6 : NFT_BACKENDS4);
		dp->ops_err = err;
		return false;
	}
	op = range_op_new(dp, fe, side);
	op->is_new = true;
	op->r = (struct idx_range){ *base, n };
	return true;
}

const struct idx_range *nft_range_of(struct datapath *dp, const struct frontend *fe,
				     enum nft_side side)
{
	char name[NFT_CHAIN_NAME_MAX];

	nft_fe_side_chain_name(&fe->key, side, name, sizeof(name));
	return strmap_get(&dp->ranges.owner, name);
}

void nft_range_release(struct datapath *dp, const struct frontend *fe, enum nft_side side,
		       const struct idx_range *r)
{
	range_op_new(dp, fe, side)->r = *r;
}

void nft_ranges_finish(struct datapath *dp, bool ok)
{
	struct strmap *owner = &dp->ranges.owner;

	for (size_t i = 0; i < dp->n_ops && ok; i++) {
		struct range_op *op = &dp->ops[i];

		if (op->is_new)
			continue;
		range_put(&dp->ranges.alloc[op->v6][op->shard], op->r);
		free(strmap_remove(owner, op->name));
	}
	for (size_t i = 0; i < dp->n_ops; i++) {
		struct range_op *op = &dp->ops[i];
		struct idx_range *r;

		if (!op->is_new)
			continue;
		if (!ok) {
			range_put(&dp->ranges.alloc[op->v6][op->shard], op->r);
			continue;
		}
		r = xmalloc(sizeof(*r));
		*r = op->r;
		free(strmap_put(owner, op->name, r));
	}
	dp->n_ops = 0;
	dp->ops_err = 0;
}
