/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The elements of the table's named sets (services, no-endpoints,
 * service-addrs, nodeports, firewall-ips, node-services, node-nodeports): queued per set, written
 * NFT_ELEMS_PER_MSG per message.
 */
#ifndef SLUICE_NFT_ELEMS_H
#define SLUICE_NFT_ELEMS_H

#include <stdint.h>

#include "core/state.h"

struct nft_batch;

/*
 * Queues the named-set element of fe (by its class) for a NEWSETELEM or
 * DELSETELEM message. Elements are written NFT_ELEMS_PER_MSG per message
 * per set; all queued elements must be of one message type until flushed.
 */
void nft_batch_queue_elem(struct nft_batch *b, uint16_t msg_type, const struct frontend *fe);
/* Queues fe's firewall-ips4/6 element (if nft_fe_has_firewall) like nft_batch_queue_elem. */
void nft_batch_queue_fw_elem(struct nft_batch *b, uint16_t msg_type, const struct frontend *fe);
/*
 * Queues fe's node-services4/6 (node-nodeports4/6) element, -> goto
 * fe-out-..., if nft_fe_has_node_chain(fe), like nft_batch_queue_elem.
 */
void nft_batch_queue_node_elem(struct nft_batch *b, uint16_t msg_type, const struct frontend *fe);
void nft_batch_flush_elems(struct nft_batch *b);

#endif
