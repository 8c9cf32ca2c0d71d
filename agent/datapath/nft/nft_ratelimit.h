/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A Service's rate limit in table inet sluice: the objects
 * rate/admitted/limited.NS.NAME, the chain limit.NS.NAME, their names and
 * their messages.
 */
#ifndef SLUICE_NFT_RATELIMIT_H
#define SLUICE_NFT_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/state.h"

/*
 * Object and chain names: <prefix><namespace>.<name>. The namespace (a
 * DNS-1123 label) and the Service name (a DNS-1035 label) are each 1-63 of
 * [a-z0-9-] (the decoder checks it, as the API server does), so neither
 * holds the '.' that joins them: the name is injective and parses back.
 * The longest, "no-endpoints." + 63 + "." + 63, is NFT_SVC_NAME_LEN = 140
 * bytes; the kernel takes NFT_OBJ_MAXNAMELEN - 1 = 255 (6.1 and later alike).
 */
#define NFT_SVC_LABEL_MAX 63
#define NFT_SVC_NAME_LEN (sizeof("no-endpoints.") - 1 + NFT_SVC_LABEL_MAX + 1 + NFT_SVC_LABEL_MAX)
/* Buffer for one of these names (and for the names read back from the kernel). */
#define NFT_OBJ_NAME_MAX 256

enum nft_svc_name {
	NFT_SVC_LIMIT, /* limit object: the bucket */
	NFT_SVC_ADMITTED, /* counter object: new flows let through */
	NFT_SVC_LIMITED, /* counter object: new flows refused */
	NFT_SVC_CHAIN, /* chain: limit, count, return or count, reject */
	/* Refusals of a counted Service (nft_refusals.h): */
	NFT_SVC_NO_ENDPOINTS, /* counter object: refused, no usable endpoint */
	NFT_SVC_POLICY_DROP, /* counter object: dropped, Local with endpoints elsewhere */
	NFT_SVC_SOURCE_RANGE, /* counter object: dropped, outside loadBalancerSourceRanges */
	NFT_SVC_REFUSE_CHAIN, /* chain: count no-endpoints, goto reject-chain */
	NFT_SVC_DROP_CHAIN, /* chain: count policy-drop, drop */
	NFT_SVC_KINDS
};

/* True for the kinds that are counter objects. */
bool nft_svc_is_counter(enum nft_svc_name which);

/*
 * "ns/name" -> "rate.ns.name" (which = NFT_SVC_*). Returns false unless
 * service is two parts of 1-63 of [a-z0-9-] joined by one '/' (anything
 * else could collide, as "a.b/c" and "a/b.c" would, or not fit) and buf
 * holds the name.
 */
bool nft_svc_name(enum nft_svc_name which, const char *service, char *buf, size_t len);
/* True if nft_svc_name accepts service (with a buffer of NFT_OBJ_NAME_MAX). */
bool nft_svc_nameable(const char *service);
/* "rate.ns.name" -> NFT_SVC_LIMIT and "ns/name"; -1 if not one nft_svc_name writes. */
int nft_svc_parse_name(const char *name, char *service, size_t len);

/*
 * How the kernel's packet limit is told our bucket: rate = count, unit =
 * period, burst = burst. nft_limit starts full and holds unit/rate x burst
 * nanoseconds of tokens, i.e. exactly `burst` flows (measured, see
 * Documentation/nftables-datapath.md). It refuses cost x burst beyond 64
 * bits: the burst is clamped to the largest that fits (returned).
 */
uint32_t nft_limit_kernel_burst(const struct rate_limit *rl);

struct nft_batch;

/*
 * Adds a Service's counters (starting at the given values: adoption keeps
 * them across a full sync), its limit object and its chain.
 */
void nft_msg_svc_add(struct nft_batch *b, const char *service, const struct rate_limit *rl,
		     uint64_t admitted_pkts, uint64_t admitted_bytes, uint64_t limited_pkts,
		     uint64_t limited_bytes);
/*
 * New limit parameters, counters untouched: the kernel cannot update a
 * limit object in place, so flush the chain (its only user), delete the
 * object, add it again, refill the chain, all in this batch.
 */
void nft_msg_svc_update(struct nft_batch *b, const char *service, const struct rate_limit *rl);
/* Removes the chain, then the objects (no frontend chain may jump to it any more). */
void nft_msg_svc_del(struct nft_batch *b, const char *service);

/* One counter object of a Service (which: a counter kind), starting at pkts, bytes. */
void nft_msg_svc_counter_add(struct nft_batch *b, enum nft_svc_name which, const char *service,
			     uint64_t pkts, uint64_t bytes);
/* Deletes one object of a Service (type NFT_OBJECT_*). */
void nft_msg_svc_obj_del(struct nft_batch *b, enum nft_svc_name which, const char *service,
			 uint32_t type);

#endif
