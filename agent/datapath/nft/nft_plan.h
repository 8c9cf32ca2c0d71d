/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The nftables datapath's planner: turns a state diff into the messages of
 * one batch (a full sync rebuilds the table, an update touches only the
 * frontends in the diff), with the per-Service bookkeeping of rate limits.
 */
#ifndef SLUICE_NFT_PLAN_H
#define SLUICE_NFT_PLAN_H

#include <stdbool.h>

#include "core/state.h"
#include "lib/strmap.h"

struct datapath;
struct nft_batch;

/*
 * The diff without the frontends the kernel could not hold under their
 * names (nft_fe_unnameable): such a frontend is never programmed, so it is
 * left out on either side of its change (a change left with neither side
 * goes), with one log line per Service each time it is handed over, and
 * the rest is applied as usual. *out shares diff's changes when nothing is
 * left out; otherwise out->changes is allocated (free it). Returns the
 * number of frontends left out.
 */
size_t nft_plan_nameable(const struct state_diff *diff, struct state_diff *out);
/* Counts, per Service, the frontends carrying a limit that the diff removes and adds. */
void nft_services_plan(struct datapath *dp, const struct state_diff *diff);
/* After the kernel's answer: keep the new counts (ok) or forget the plan. */
void nft_services_finish(struct datapath *dp, bool ok);
/* Forgets every Service (a full sync counts them again). */
void nft_services_clear(struct datapath *dp);

/*
 * Full sync: add the table (a no-op if present), delete it, build it again,
 * all in one batch. Traffic sees the old ruleset or the new one, never none.
 * Counters start from the values of the old table (old, read just before).
 */
void nft_build_full(struct datapath *dp, struct nft_batch *b, const struct state_diff *diff,
		    const struct strmap *old);
/*
 * Incremental: only the frontends in the diff. Element deletions first (so
 * the chains they point to lose their last reference), then Services that
 * gain a limit or change it, then chain work, then Services that lose
 * their limit (no chain jumps to them any more), then element additions
 * (pointing to chains that now exist).
 */
void nft_build_incremental(struct datapath *dp, struct nft_batch *b, const struct state_diff *diff);

#endif
