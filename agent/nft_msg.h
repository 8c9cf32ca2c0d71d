/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Builds the netlink messages for table inet sluice into one nftables
 * batch (libnftnl): the object names and layout, and one builder per kind
 * of object. Sending the batch and reading the ACKs is datapath_nft.c's job.
 * The layout is described in Documentation/nftables-datapath.md.
 */
#ifndef SLUICE_NFT_MSG_H
#define SLUICE_NFT_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "state.h"

#define NFT_TABLE_NAME "sluice"
#define NFT_REJECT_CHAIN "reject-chain"
/* "fe-" + IPv6 text + "-sctp-65535" fits easily; nft allows 256. */
#define NFT_CHAIN_NAME_MAX 80
/* Elements per NEWSETELEM message: keeps every message far below the page overrun. */
#define NFT_ELEMS_PER_MSG 256

/* The named sets and maps of the table. */
enum nft_named_set {
	NFT_SET_SERVICES4,	/* served frontends: addr . proto . port -> goto fe-... */
	NFT_SET_SERVICES6,
	NFT_SET_NO_ENDPOINTS4,	/* refused / dropped frontends: -> goto reject-chain | drop */
	NFT_SET_NO_ENDPOINTS6,
	NFT_SET_ADDRS4,		/* known service addresses (marker frontends) */
	NFT_SET_ADDRS6,
	NFT_NAMED_SETS,
};

const char *nft_set_name(enum nft_named_set set);

/* What the datapath does with one frontend in nftables terms. */
enum nft_fe_class {
	NFT_FE_SKIP,		/* not programmed here (NodePort on any address: later issue) */
	NFT_FE_MARKER,		/* element of service-addrs */
	NFT_FE_SERVE,		/* chain + DNAT rule + element of services */
	NFT_FE_REFUSE,		/* element of no-endpoints: goto reject-chain */
	NFT_FE_DROP,		/* element of no-endpoints: drop */
};

enum nft_fe_class nft_fe_classify(const struct frontend *fe);
/* Backends of fe usable for DNAT (same family as the frontend). */
size_t nft_fe_usable_backends(const struct frontend *fe);

/* Writes the frontend's chain name, e.g. fe-10.96.0.10-tcp-80, fe-fd00__10-udp-53. */
void nft_fe_chain_name(const struct frontend_key *key, char *buf, size_t len);
/* "10.96.0.10 tcp/80" for log lines. */
void nft_fe_key_text(const struct frontend_key *key, char *buf, size_t len);

/* What one message of a batch was for: named in the log line if it fails. */
enum nft_msg_what {
	NFT_WHAT_BATCH,
	NFT_WHAT_TABLE_ADD,
	NFT_WHAT_TABLE_DEL,
	NFT_WHAT_SET_ADD,
	NFT_WHAT_BASE_CHAIN,
	NFT_WHAT_BASE_RULE,
	NFT_WHAT_FE_CHAIN_ADD,
	NFT_WHAT_FE_CHAIN_DEL,
	NFT_WHAT_FE_CHAIN_FLUSH,
	NFT_WHAT_FE_MAP_ADD,		/* the anonymous backend map of a DNAT rule */
	NFT_WHAT_FE_MAP_ELEMS,
	NFT_WHAT_FE_RULE,
	NFT_WHAT_ELEMS_ADD,
	NFT_WHAT_ELEMS_DEL,
};

struct nft_msg_ref {
	uint8_t what;		/* enum nft_msg_what */
	uint8_t set;		/* enum nft_named_set, for ELEMS_* */
	bool has_key;
	uint32_t count;		/* elements in the message, for ELEMS_* */
	struct frontend_key key; /* for FE_*; the first element for ELEMS_* */
};

struct nftnl_batch;
struct nftnl_set;

/*
 * One transaction being built: BATCH_BEGIN, messages, BATCH_END, spread
 * over as many pages as needed (libnftnl's nftnl_batch), sent in one
 * sendmsg() so the kernel sees one batch.
 */
struct nft_batch {
	struct nftnl_batch *nb;
	uint32_t seq_first;	/* seq of BATCH_BEGIN */
	uint32_t seq;		/* seq of the next message */
	uint32_t set_id;	/* last transaction-local set id used */
	/*
	 * Last number used in an anonymous map name (__map_N). Carried from
	 * batch to batch by the caller so that a name is never reused while
	 * the old map may still exist; a full sync may restart it at 0.
	 */
	uint32_t map_serial;
	size_t n_msgs;		/* messages between BEGIN and END */
	struct nft_msg_ref *refs; /* refs[seq - seq_first] */
	size_t cap_refs;
	int err;		/* first -errno while building; the batch is not sent */
	/* Elements waiting to be written, one set each (see nft_batch_flush_elems). */
	struct nftnl_set *pending[NFT_NAMED_SETS];
	size_t n_pending[NFT_NAMED_SETS];
	uint16_t pending_type;	/* NFT_MSG_NEWSETELEM or NFT_MSG_DELSETELEM */
};

/* Starts a batch whose BATCH_BEGIN carries seq. Returns 0 or -ENOMEM. */
int nft_batch_init(struct nft_batch *b, uint32_t seq);
/* Writes BATCH_END (after flushing pending elements). Returns b->err. */
int nft_batch_finish(struct nft_batch *b);
void nft_batch_free(struct nft_batch *b);
/* The message a seq belongs to, NULL if not in this batch. */
const struct nft_msg_ref *nft_batch_ref(const struct nft_batch *b, uint32_t seq);
/* Describes ref for a log line: "add chain fe-10.96.0.10-tcp-80". */
void nft_msg_ref_text(const struct nft_msg_ref *ref, char *buf, size_t len);

/* Table: add (idempotent) and delete. */
void nft_msg_table_add(struct nft_batch *b);
void nft_msg_table_del(struct nft_batch *b);
/* Everything but the frontends: sets, maps, reject-chain, hooked chains and their rules. */
void nft_msg_skeleton(struct nft_batch *b);
/* Base chains and their lookup rules only (part of the skeleton, last in a full sync). */
void nft_msg_base_chains(struct nft_batch *b);

/* A served frontend's chain. */
void nft_msg_fe_chain_add(struct nft_batch *b, const struct frontend_key *key);
void nft_msg_fe_chain_del(struct nft_batch *b, const struct frontend_key *key);
/* Removes every rule of the chain (followed by nft_msg_fe_dnat_rule in the same batch). */
void nft_msg_fe_chain_flush(struct nft_batch *b, const struct frontend_key *key);
/*
 * The frontend's one rule:
 *   meta l4proto P dnat ip[6] to numgen random mod N map { 0 : a . p, ... }
 * as an anonymous constant map (with its elements) plus the rule.
 */
void nft_msg_fe_dnat_rule(struct nft_batch *b, const struct frontend *fe);

/*
 * Queues the named-set element of fe (by its class) for a NEWSETELEM or
 * DELSETELEM message. Elements are written NFT_ELEMS_PER_MSG per message
 * per set; all queued elements must be of one message type until flushed.
 */
void nft_batch_queue_elem(struct nft_batch *b, uint16_t msg_type, const struct frontend *fe);
void nft_batch_flush_elems(struct nft_batch *b);

#endif
