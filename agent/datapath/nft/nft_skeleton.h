/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The static part of table inet sluice: the table, its named sets and
 * maps (with the shared backend maps), reject-chain and the hooked base
 * chains with their lookup rules. The layout is described in
 * Documentation/nftables-datapath.md.
 */
#ifndef SLUICE_NFT_SKELETON_H
#define SLUICE_NFT_SKELETON_H

#include <stdbool.h>
#include <stddef.h>

#include "core/state.h"

#define NFT_TABLE_NAME "sluice"
/* After a switch to another datapath: NAT for the connections translated before. */
#define NFT_DRAIN_TABLE_NAME "sluice-drain"
#define NFT_REJECT_CHAIN "reject-chain"
/*
 * The shared backend maps: index -> address . port, per family, split in
 * S maps backends4-0 ... backends4-<S-1> (backends6-...). Each served
 * frontend without affinity owns a contiguous range of indices
 * [base, base + N) of its shard's map and its rule picks one with
 * numgen random mod N offset base. Shards because the kernel checks every
 * rule bound to a map each time an element is added to it (elements x
 * rules per map), and finds a map by name in a list (rules x maps): S
 * grows with the frontends of a full sync, about 128 rules a map.
 */
#define NFT_BACKENDS4 "backends4"
#define NFT_BACKENDS6 "backends6"
#define NFT_BACKEND_SHARDS_MIN 32
#define NFT_BACKEND_SHARDS_MAX 1024
/* "backends6-1023" */
#define NFT_BACKENDS_NAME_MAX 16

/* The shard count for a full sync of n frontends: a power of two in [MIN, MAX]. */
unsigned int nft_backend_shards_for(size_t n);
/* The shard of a frontend's backends: a hash of its key, the same in every agent. */
unsigned int nft_fe_backend_shard(const struct frontend_key *key, unsigned int n_shards);
/* backends4-<shard> or backends6-<shard>. */
void nft_backends_map_name(bool v6, unsigned int shard, char *buf, size_t len);

/*
 * The bit of the packet mark that asks nat-postrouting to masquerade a flow
 * (kube-proxy's masquerade bit): set in the frontend chain of an external
 * frontend under externalTrafficPolicy Cluster, cleared when masquerading.
 */
#define NFT_MASQ_MARK 0x4000u
/* The client port of a TCP connection DNAT'd here moves out of the ephemeral range. */
#define NFT_SHIFT_MARK 0x8000u

/* The named sets and maps of the table. */
enum nft_named_set {
	NFT_SET_SERVICES4, /* served frontends: addr . proto . port -> goto fe-... */
	NFT_SET_SERVICES6,
	NFT_SET_NO_ENDPOINTS4, /* refused / dropped frontends: -> goto reject-chain | drop */
	NFT_SET_NO_ENDPOINTS6,
	NFT_SET_ADDRS4, /* known service addresses (marker frontends) */
	NFT_SET_ADDRS6,
	NFT_SET_NODEPORTS4, /* served NodePorts: proto . port -> goto fe-nodeport4-... */
	NFT_SET_NODEPORTS6,
	NFT_SET_NO_ENDPOINT_NODEPORTS4, /* refused / dropped NodePorts */
	NFT_SET_NO_ENDPOINT_NODEPORTS6,
	NFT_SET_FIREWALL4, /* LB frontends with source ranges: -> goto firewall-... */
	NFT_SET_FIREWALL6,
	NFT_SET_NODEPORT_ADDRS4, /* interval set: addresses NodePorts answer on */
	NFT_SET_NODEPORT_ADDRS6,
	/*
	 * Frontends with a node chain (nft_fe_has_node_chain), for nat-output
	 * only, before services4/6 and nodeports4/6: -> goto fe-out-...
	 */
	NFT_SET_NODE_SERVICES4,
	NFT_SET_NODE_SERVICES6,
	NFT_SET_NODE_NODEPORTS4,
	NFT_SET_NODE_NODEPORTS6,
	NFT_NAMED_SETS,
};

const char *nft_set_name(enum nft_named_set set);

/* What a named set's elements are keyed by. */
enum nft_set_key {
	NFT_KEY_ADDR_PROTO_PORT, /* ip daddr . meta l4proto . th dport */
	NFT_KEY_PROTO_PORT, /* meta l4proto . th dport (NodePorts) */
	NFT_KEY_ADDR, /* ip daddr */
};

/* How a named set is declared: what nft_elems.c needs to write its elements. */
struct nft_set_desc {
	const char *name;
	bool v6;
	enum nft_set_key key;
	bool is_map; /* : verdict */
	bool interval; /* flags interval: elements are ranges (nft_node_ports.c) */
};

const struct nft_set_desc *nft_set_desc(enum nft_named_set set);

struct nft_batch;
struct nft_port_shift;

/* Table: add (idempotent) and delete. */
void nft_msg_table_add(struct nft_batch *b);
void nft_msg_table_del(struct nft_batch *b);
/* table inet sluice-drain: add (with its one NAT chain), delete (idempotent). */
void nft_msg_drain_table_add(struct nft_batch *b);
void nft_msg_drain_table_del(struct nft_batch *b);
/* Everything but the frontends: sets, maps, reject-chain, hooked chains and their rules. */
void nft_msg_skeleton(struct nft_batch *b, const struct nft_port_shift *shift,
		      unsigned int n_shards);
/*
 * Base chains and their lookup rules only (part of the skeleton, last in a
 * full sync). shift: the client-port shift of nat-postrouting, or NULL.
 */
void nft_msg_base_chains(struct nft_batch *b, const struct nft_port_shift *shift);

#endif
