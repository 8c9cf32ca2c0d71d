/* SPDX-License-Identifier: Apache-2.0 */
/* --nodeport-addresses on nftables: the elements of sets nodeport-addrs4/6. */
#ifndef SLUICE_NFT_NODE_PORTS_H
#define SLUICE_NFT_NODE_PORTS_H

#include <stdbool.h>

#include "core/node_ports.h"

struct nft_batch;

/*
 * Writes the address ranges NodePorts answer on into nodeport-addrs4/6
 * (np NULL: every address), emptying the sets first if flush (they exist
 * already).
 */
void nft_msg_node_port_addrs(struct nft_batch *b, const struct node_port_addrs *np, bool flush);

#endif
