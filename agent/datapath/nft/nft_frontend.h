/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A served frontend's programming and its names: its chain and rules, its
 * range of elements of its backends4/6-N map, and with session affinity
 * (kube-proxy's nftables shape) one endpoint chain and client set per
 * backend and the endpoint pick.
 */
#ifndef SLUICE_NFT_FRONTEND_H
#define SLUICE_NFT_FRONTEND_H

#include <stddef.h>
#include <stdint.h>

#include "core/state.h"
#include "datapath/nft/nft_batch.h"

/*
 * The longest texts in a frontend's names: an address (IP_ADDR_STRLEN - 1 =
 * INET6_ADDRSTRLEN - 1 = 45, more than any IPv6 text; "nodeport6" is 9), a
 * protocol ("sctp", "p255") and a port ("65535").
 */
#define NFT_ADDR_TEXT_MAX 45
#define NFT_PROTO_TEXT_MAX 4
#define NFT_PORT_TEXT_MAX 5
/* fe-<address>-<proto>-<port>: at most 59 bytes. */
#define NFT_FE_NAME_LEN (3 + NFT_ADDR_TEXT_MAX + 1 + NFT_PROTO_TEXT_MAX + 1 + NFT_PORT_TEXT_MAX)
/* fe-out-<address>-<proto>-<port>, a node chain: at most 63 bytes. */
#define NFT_FE_OUT_NAME_LEN (NFT_FE_NAME_LEN + 4)
/* aff-[out-]<address>-<proto>-<port>-<backend address>-<port> (ep- is shorter): at most 116. */
#define NFT_EP_NAME_LEN \
	(4 + NFT_FE_OUT_NAME_LEN - 3 + 1 + NFT_ADDR_TEXT_MAX + 1 + NFT_PORT_TEXT_MAX)
/*
 * Buffers for them (checked at compile time, as is that every name fits the
 * kernel's NFT_CHAIN_MAXNAMELEN / NFT_SET_MAXNAMELEN - 1 = 255 bytes).
 */
#define NFT_CHAIN_NAME_MAX 80
#define NFT_EP_NAME_MAX 160

struct nft_batch;

/*
 * Which of a frontend's chains a message is about. Every served frontend
 * has its chain (NFT_SIDE_MAIN: every client, or with a node set the
 * clients outside); one with a node chain (nft_fe_has_node_chain) also has
 * fe-out-... for traffic born on the node, written from its node view
 * (nft_fe_node_view), with endpoint chains and sets ep-out-... / aff-out-....
 * "out" can start no address text nor "nodeport4/6": the names stay apart.
 */
enum nft_side {
	NFT_SIDE_MAIN,
	NFT_SIDE_NODE,
};

/*
 * Writes the frontend's chain name, e.g. fe-10.96.0.10-tcp-80, fe-fd00__10-udp-53,
 * and for NodePorts fe-nodeport4-tcp-30080 / fe-nodeport6-tcp-30080.
 */
void nft_fe_chain_name(const struct frontend_key *key, char *buf, size_t len);
/* The chain of one side: nft_fe_chain_name, or fe-out-10.99.2.21-tcp-80 for NFT_SIDE_NODE. */
void nft_fe_side_chain_name(const struct frontend_key *key, enum nft_side side, char *buf,
			    size_t len);
/* "10.96.0.10 tcp/80" for log lines. */
void nft_fe_key_text(const struct frontend_key *key, char *buf, size_t len);
/*
 * NULL if every name fe's programming needs can be written, fits the kernel
 * and belongs to fe alone; else why not, for a log line. Names made from
 * the key fit by construction (the bounds above); a rate-limited
 * frontend's Service key must be one nft_svc_name accepts.
 */
const char *nft_fe_unnameable(const struct frontend *fe);

/* A served frontend's chain of one side. */
void nft_msg_fe_chain_add(struct nft_batch *b, const struct frontend_key *key, enum nft_side side);
void nft_msg_fe_chain_del(struct nft_batch *b, const struct frontend_key *key, enum nft_side side);
/* Removes every rule of the chain (followed by nft_msg_fe_rules in the same batch). */
void nft_msg_fe_chain_flush(struct nft_batch *b, const struct frontend_key *key,
			    enum nft_side side);
/*
 * The functions below that take a frontend and a side write the objects of
 * that side's chain from fe: the frontend itself for NFT_SIDE_MAIN, its
 * node view for NFT_SIDE_NODE.
 *
 * The chain's DNAT rule:
 *   meta l4proto P dnat ip[6] to numgen random mod N offset BASE map @backends4-<shard>
 * where N = nft_fe_usable_backends(fe) and [BASE, BASE + N) is the
 * chain's range of its backends4/6-N map (written by nft_msg_fe_backends).
 * Both sides of a frontend use the same shard, each its own range.
 */
void nft_msg_fe_dnat_rule(struct nft_batch *b, const struct frontend *fe, enum nft_side side,
			  uint32_t base);
/*
 * Adds (NFT_MSG_NEWSETELEM) the usable backends of fe as elements base,
 * base + 1, ... of its shard's backends4/6-N map, or deletes
 * (NFT_MSG_DELSETELEM) those indices, in messages of at most
 * NFT_ELEMS_PER_MSG elements.
 */
void nft_msg_fe_backends(struct nft_batch *b, uint16_t msg_type, const struct frontend *fe,
			 enum nft_side side, uint32_t base);
/*
 * The same for many frontends, packed densely: consecutive calls for the
 * same map and message type share messages (the kernel finds the map by
 * name once a message). Flush after the last one.
 */
struct nft_backends_pack {
	struct nftnl_set *chunk; /* the message being filled, NULL if none */
	struct nft_msg_ref ref; /* its first frontend, its map's shard, its count */
	uint16_t msg_type;
	bool v6;
};
void nft_backends_pack(struct nft_batch *b, struct nft_backends_pack *p, uint16_t msg_type,
		       const struct frontend *fe, enum nft_side side, uint32_t base);
void nft_backends_pack_flush(struct nft_batch *b, struct nft_backends_pack *p);

/* ---- session affinity (kube-proxy's nftables shape) ---- */

/*
 * ep-<frontend>-<backend address>-<port> and aff-<same>: one per backend of
 * an affinity frontend's chain (<frontend> is the chain's name without "fe-").
 */
void nft_ep_chain_name(const struct frontend_key *key, enum nft_side side, const struct backend *be,
		       char *buf, size_t len);
void nft_ep_set_name(const struct frontend_key *key, enum nft_side side, const struct backend *be,
		     char *buf, size_t len);
/*
 * One endpoint of an affinity frontend: the set of its clients (timeout
 * fe->affinity_timeout) and its chain "update @aff-... { ip saddr }; dnat".
 * Deleting removes the chain, then the set.
 */
void nft_msg_ep_add(struct nft_batch *b, const struct frontend *fe, enum nft_side side,
		    const struct backend *be);
void nft_msg_ep_del(struct nft_batch *b, const struct frontend *fe, enum nft_side side,
		    const struct backend *be);

/*
 * Every rule of a served frontend's chain, in order:
 *   [ct state new jump limit.NS.NAME]             when the Service has a rate limit
 *   [meta mark set mark | 0x4000]                 when nft_fe_masquerades(fe)
 *   then without affinity the one DNAT rule (nft_msg_fe_dnat_rule, range at base),
 *   with affinity: ip saddr @aff-<ep> goto ep-<ep>, one per backend, then
 *                  numgen random mod N vmap { 0 : goto ep-<ep0>, ... }
 * The endpoint chains must exist (nft_msg_ep_add) before this is written.
 */
void nft_msg_fe_rules(struct nft_batch *b, const struct frontend *fe, enum nft_side side,
		      uint32_t base);

#endif
