/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Reading the stateful objects of table sluice back from the kernel: every
 * Service's limit and counters for read_stats, and the old counter values a
 * full sync starts from (adoption).
 */
#ifndef SLUICE_NFT_OBJECTS_H
#define SLUICE_NFT_OBJECTS_H

#include <stddef.h>
#include <stdint.h>

#include "datapath/datapath.h"
#include "datapath/nft/nft_ratelimit.h"
#include "lib/strmap.h"

struct datapath;

/* Old counter values by object name, for a full sync to start from. */
struct nft_old_counter {
	uint64_t pkts, bytes;
};

/* Reads every counter object into old (initialised by the caller); -ENOENT: no table. */
int nft_old_counters_read(struct datapath *dp, struct strmap *old);
/* The old values of one of a Service's counters; zero if unknown or old is NULL. */
struct nft_old_counter nft_old_counter_get(const struct strmap *old, enum nft_svc_name which,
					   const char *service);
void nft_old_counters_free(struct strmap *old);

/*
 * Every Service's limit and counters, from the objects of table sluice (no
 * table: none). *out is malloc'd. Returns 0 or -errno.
 */
int nft_stats_read(struct datapath *dp, struct service_stats **out, size_t *n);
/*
 * Every Service's flow counters (admitted, rate_limited and the refusals,
 * counted bits for the objects there are) and limit, sorted by Service.
 * *out is malloc'd. Returns 0 or -errno.
 */
int nft_flows_read(struct datapath *dp, struct flow_counters **out, size_t *n);

#endif
