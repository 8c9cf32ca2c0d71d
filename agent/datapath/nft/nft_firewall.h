/* SPDX-License-Identifier: Apache-2.0 */
/*
 * loadBalancerSourceRanges: firewall-ips4/6 -> chain firewall-<fe> -> set
 * allow-<fe>, the names, the allowed ranges as interval-set elements, and
 * the messages.
 */
#ifndef SLUICE_NFT_FIREWALL_H
#define SLUICE_NFT_FIREWALL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/state.h"
#include "datapath/nft/nft_frontend.h"

/* firewall-<frontend name without "fe-"> (allow- is shorter): at most 65 bytes. */
#define NFT_FW_NAME_LEN (sizeof("firewall-") - 1 + NFT_FE_NAME_LEN - 3)

/* firewall-10.0.0.5-tcp-80 and allow-10.0.0.5-tcp-80 (buffers of NFT_EP_NAME_MAX). */
void nft_fw_chain_name(const struct frontend_key *key, char *buf, size_t len);
void nft_fw_set_name(const struct frontend_key *key, char *buf, size_t len);
/* True if a and b allow the same sources (both with a firewall). */
bool nft_fw_same_ranges(const struct frontend *a, const struct frontend *b);
/*
 * The allowed sources as interval-set elements: sorted, merged ranges, each
 * a start and (unless it runs to the top of the address space) an
 * exclusive end. Returns the number of ranges, at most max.
 */
struct nft_fw_range {
	uint8_t start[16];
	uint8_t end[16]; /* first address after the range */
	bool has_end;
};
size_t nft_fw_ranges(const struct frontend *fe, struct nft_fw_range *out, size_t max);

struct nft_batch;
struct nft_msg_ref;

/*
 * Writes fe's source ranges as elements of interval set `set` (a start, and
 * an interval end unless the range runs to the top), ref naming the
 * messages. Also for the NodePort address sets (nft_node_ports.c).
 */
void nft_msg_range_elems(struct nft_batch *b, const struct frontend *fe, const char *set,
			 uint32_t set_id, const struct nft_msg_ref *ref);

/*
 * Adds the set (with its elements) and the chain "ip saddr != @allow-... drop".
 * The firewall-ips element is queued separately (nft_batch_queue_fw_elem).
 */
void nft_msg_fw_add(struct nft_batch *b, const struct frontend *fe);
/* New ranges for an existing firewall: flush the set, add the new elements. */
void nft_msg_fw_update(struct nft_batch *b, const struct frontend *fe);
/* Deletes the chain, then the set (after the firewall-ips element went). */
void nft_msg_fw_del(struct nft_batch *b, const struct frontend_key *key);

#endif
