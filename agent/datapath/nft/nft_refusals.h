/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Refusals counted per Service (sluice_service_flows_total's no_endpoints,
 * policy_drop and source_range): a counted Service's three counter objects
 * and the two chains its refused and dropped frontends' elements jump to.
 */
#ifndef SLUICE_NFT_REFUSALS_H
#define SLUICE_NFT_REFUSALS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "datapath/nft/nft_ratelimit.h"

struct nft_batch;

/* The counters, in this order: no-endpoints., policy-drop., source-range. */
#define NFT_REFUSALS 3
extern const enum nft_svc_name nft_refusal_counters[NFT_REFUSALS];

/* Adds a Service's three counters, starting at pkts[i], bytes[i] (adoption). */
void nft_msg_refusals_add(struct nft_batch *b, const char *service,
			  const uint64_t pkts[NFT_REFUSALS], const uint64_t bytes[NFT_REFUSALS]);
/* Deletes them (after every rule that names them). */
void nft_msg_refusals_del(struct nft_batch *b, const char *service);
/*
 * refuse.NS.NAME { counter name "no-endpoints.NS.NAME" goto reject-chain }
 * or, drop set, drop.NS.NAME { counter name "policy-drop.NS.NAME" drop }.
 */
void nft_msg_refusal_chain_add(struct nft_batch *b, const char *service, bool drop);
void nft_msg_refusal_chain_del(struct nft_batch *b, const char *service, bool drop);

#endif
