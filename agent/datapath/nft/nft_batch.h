/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One nftables transaction being built (libnftnl's nftnl_batch): its
 * messages, what each one was for (named in the log line if it fails), and
 * the writers every message builder puts its chains, rules, sets and
 * elements into it with. Sending it and reading the ACKs is nft_socket.c's
 * job.
 */
#ifndef SLUICE_NFT_BATCH_H
#define SLUICE_NFT_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/state.h"
#include "datapath/nft/nft_skeleton.h"

/* Elements per NEWSETELEM message: keeps every message far below the page overrun. */
#define NFT_ELEMS_PER_MSG 256

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
	NFT_WHAT_FE_RULE,
	NFT_WHAT_ELEMS_ADD,
	NFT_WHAT_ELEMS_DEL,
	NFT_WHAT_FE_LIMIT_RULE, /* ct state new jump limit.NS.NAME */
	NFT_WHAT_FE_AFFINITY_RULE, /* ip saddr @aff-... goto ep-... */
	NFT_WHAT_FE_PICK_RULE, /* numgen random mod N vmap { ... } and its map */
	NFT_WHAT_EP_SET_ADD, /* affinity set of one endpoint */
	NFT_WHAT_EP_SET_DEL,
	NFT_WHAT_EP_CHAIN_ADD,
	NFT_WHAT_EP_CHAIN_DEL,
	NFT_WHAT_EP_RULE,
	NFT_WHAT_SVC_OBJ_ADD, /* a Service's limit or counter */
	NFT_WHAT_SVC_OBJ_DEL,
	NFT_WHAT_SVC_CHAIN_ADD, /* limit.NS.NAME */
	NFT_WHAT_SVC_CHAIN_DEL,
	NFT_WHAT_SVC_CHAIN_FLUSH,
	NFT_WHAT_SVC_RULE,
	NFT_WHAT_FE_MASQ_RULE, /* meta mark set mark | 0x4000 */
	NFT_WHAT_FW_SET_ADD, /* allow-<frontend>: a LB frontend's source ranges */
	NFT_WHAT_FW_SET_DEL,
	NFT_WHAT_FW_SET_FLUSH,
	NFT_WHAT_FW_ELEMS,
	NFT_WHAT_FW_CHAIN_ADD, /* firewall-<frontend> */
	NFT_WHAT_FW_CHAIN_DEL,
	NFT_WHAT_FW_RULE,
	NFT_WHAT_BACKENDS_MAP_ADD, /* backends4/6-N (the skeleton) */
	NFT_WHAT_BACKENDS_ADD, /* a frontend's index range in backends4/6-N */
	NFT_WHAT_BACKENDS_DEL,
	NFT_WHAT_NODEPORT_ADDRS, /* nodeport-addrs4/6: flush, elements */
	NFT_WHAT_SYNC_MARK, /* sync-<fingerprint>: the table is a full sync's, unchanged since */
};

struct nft_msg_ref {
	uint8_t what; /* enum nft_msg_what */
	uint8_t set; /* enum nft_named_set, for ELEMS_* */
	uint8_t side; /* enum nft_side (nft_frontend.h): which chain, for FE_*, EP_*, BACKENDS_* */
	bool has_key;
	uint16_t shard; /* backends4/6-<shard>, for BACKENDS_* */
	uint32_t count; /* elements in the message, for ELEMS_* */
	struct frontend_key key; /* for FE_*, EP_*; the first element for ELEMS_* */
	struct backend backend; /* for EP_* */
	const char *service; /* for SVC_*: the frontend's string, alive while the batch is */
};

struct nftnl_batch;
struct nftnl_chain;
struct nftnl_rule;
struct nftnl_set;
struct nlmsghdr;

/*
 * One transaction being built: BATCH_BEGIN, messages, BATCH_END, spread
 * over as many pages as needed (libnftnl's nftnl_batch), sent in one
 * sendmsg() so the kernel sees one batch.
 */
struct nft_batch {
	struct nftnl_batch *nb;
	uint32_t seq_first; /* seq of BATCH_BEGIN */
	uint32_t seq; /* seq of the next message */
	uint32_t set_id; /* last transaction-local set id used */
	/*
	 * Last number used in an anonymous map name (__map_N: the endpoint
	 * pick of affinity frontends). Carried from
	 * batch to batch by the caller so that a name is never reused while
	 * the old map may still exist; a full sync may restart it at 0.
	 */
	uint32_t map_serial;
	size_t n_msgs; /* messages between BEGIN and END */
	struct nft_msg_ref *refs; /* refs[seq - seq_first] */
	size_t cap_refs;
	int err; /* first -errno while building; the batch is not sent */
	/* Elements waiting to be written, one set each (see nft_batch_flush_elems). */
	struct nftnl_set *pending[NFT_NAMED_SETS];
	size_t n_pending[NFT_NAMED_SETS];
	uint16_t pending_type; /* NFT_MSG_NEWSETELEM or NFT_MSG_DELSETELEM */
	/* --metrics-all-services: every Service's refusals are counted (nft_fe_counted). */
	bool count_all;
	uint32_t maglev_size; /* --maglev-table-size: buckets of a Maglev frontend's map */
	unsigned int n_shards; /* backend maps per family (nft_skeleton.h) */
	/*
	 * A hash of every message's type, flags and payload (not its seq),
	 * the same in every agent: a full sync's table is named by it
	 * (nft_sync_mark_name). Messages written while fp_skip is set are
	 * left out (counter values carried over from the old table).
	 */
	uint64_t fp;
	bool fp_skip;
};

/* Mixes data into b->fp (what a message left out of it stands for). */
void nft_batch_fp_mix(struct nft_batch *b, const void *data, size_t len);
/* "sync-<16 hex digits>": the empty chain that names a full sync's fingerprint. */
#define NFT_SYNC_MARK_LEN 22
void nft_sync_mark_name(uint64_t fp, char *buf, size_t len);
/* Adds (NFT_MSG_NEWCHAIN) or deletes (NFT_MSG_DELCHAIN) the chain named. */
void nft_sync_mark_msg(struct nft_batch *b, const char *name, uint16_t type);

/* Starts a batch whose BATCH_BEGIN carries seq. */
void nft_batch_init(struct nft_batch *b, uint32_t seq);
/* Writes BATCH_END (after flushing pending elements). Returns b->err. */
int nft_batch_finish(struct nft_batch *b);
void nft_batch_free(struct nft_batch *b);
/* The message a seq belongs to, NULL if not in this batch. */
const struct nft_msg_ref *nft_batch_ref(const struct nft_batch *b, uint32_t seq);
/* Describes ref for a log line: "add chain fe-10.96.0.10-tcp-80". */
void nft_msg_ref_text(const struct nft_msg_ref *ref, char *buf, size_t len);

/* ---- for the message builders ---- */

/* Records the first error; the batch is not sent. */
void nft_batch_fail(struct nft_batch *b, int err);
/* Starts a message at the batch's tail; NULL if the batch has already failed. */
struct nlmsghdr *nft_msg_start(struct nft_batch *b, uint16_t type, uint16_t flags,
			       const struct nft_msg_ref *ref);
/* Moves past a message written with nft_msg_start. */
void nft_msg_end(struct nft_batch *b);

/* A chain of the table by name; nft_chain_msg writes it as one message and frees it. */
struct nftnl_chain *nft_chain_new(const char *name);
void nft_chain_msg(struct nft_batch *b, struct nftnl_chain *c, uint16_t type, uint16_t flags,
		   const struct nft_msg_ref *ref);
/* A rule appended to chain; nft_rule_msg writes it (NEWRULE, append) and frees it. */
struct nftnl_rule *nft_rule_new(const char *chain);
void nft_rule_msg(struct nft_batch *b, struct nftnl_rule *r, const struct nft_msg_ref *ref);
/* DELRULE with a chain and no handle: removes every rule of that chain. */
void nft_rule_flush_msg(struct nft_batch *b, const char *chain, const struct nft_msg_ref *ref);
/*
 * A set object that names a set of the table (and its transaction id, if
 * not 0): declared further by the caller, or left empty to carry elements.
 * nft_set_msg writes it as one message and frees it.
 */
struct nftnl_set *nft_set_new(const char *name, uint32_t set_id);
void nft_set_msg(struct nft_batch *b, struct nftnl_set *s, uint16_t type, uint16_t flags,
		 const struct nft_msg_ref *ref);
/* Writes the elements of s (from nft_set_new) as one NEWSETELEM / DELSETELEM message. */
void nft_elems_msg(struct nft_batch *b, struct nftnl_set *s, uint16_t type,
		   const struct nft_msg_ref *ref);

#endif
