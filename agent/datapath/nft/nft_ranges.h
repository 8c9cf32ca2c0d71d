/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Index ranges of the backends4/6-N maps: which range each served frontend
 * (without affinity) holds, allocated while a batch is built and settled
 * once the kernel has answered.
 */
#ifndef SLUICE_NFT_RANGES_H
#define SLUICE_NFT_RANGES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/state.h"
#include "datapath/nft/nft_frontend.h"
#include "datapath/nft/nft_skeleton.h"
#include "lib/strmap.h"

/* A contiguous range of indices of a backends4/6-N map: one served frontend's backends. */
struct idx_range {
	uint32_t base, n;
};

/*
 * Index ranges of one backend map (family and shard): first fit from the freed
 * ranges (sorted, merged), else bumped past the highest range in use.
 */
struct range_alloc {
	uint32_t top; /* indices >= top are unused */
	struct idx_range *free;
	size_t n_free, cap_free;
};

/*
 * Which range each served frontend's chain (without affinity) holds, by chain
 * name, and the allocators. A range is allocated while a batch is built
 * and freed only once the batch that stops using it is committed, so the
 * old and the new range of a frontend never overlap inside one batch.
 */
struct backend_ranges {
	struct range_alloc alloc[2][NFT_BACKEND_SHARDS_MAX]; /* [0] backends4-N, [1] backends6-N */
	unsigned int n_shards; /* maps per family in the table: chosen by the full sync */
	struct strmap owner; /* chain name -> struct idx_range */
};

/* A range change of the apply being built, settled after the kernel's answer. */
struct range_op {
	char name[NFT_CHAIN_NAME_MAX];
	bool v6;
	unsigned int shard;
	bool is_new; /* allocated: recorded on commit, returned on failure */
	struct idx_range r; /* else: released on commit */
};

struct datapath;

void nft_ranges_init(struct backend_ranges *br);
void nft_ranges_destroy(struct backend_ranges *br);
/*
 * Ranges belong to one chain of a frontend (its side): fe is the frontend,
 * or its node view for NFT_SIDE_NODE.
 *
 * A new range for fe's usable backends; false (dp->ops_err set) if none.
 */
bool nft_range_alloc_for(struct datapath *dp, const struct frontend *fe, enum nft_side side,
			 uint32_t *base);
/* The range the chain holds in the kernel (NULL: none, e.g. with affinity). */
const struct idx_range *nft_range_of(struct datapath *dp, const struct frontend *fe,
				     enum nft_side side);
/* The chain's range is released once the batch commits. */
void nft_range_release(struct datapath *dp, const struct frontend *fe, enum nft_side side,
		       const struct idx_range *r);
/*
 * After the kernel's answer. Committed: released ranges go back to the
 * allocator, new ones are recorded. Refused: the new ones go back, the
 * kernel still holds the old ones.
 */
void nft_ranges_finish(struct datapath *dp, bool ok);

#endif
