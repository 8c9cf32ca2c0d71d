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

#include "core/state.h"

#define NFT_TABLE_NAME "sluice"
#define NFT_REJECT_CHAIN "reject-chain"
/*
 * The shared backend maps: index -> address . port, per family, split in
 * NFT_BACKEND_SHARDS maps backends4-0 ... backends4-31 (backends6-...). Each
 * served frontend without affinity owns a contiguous range of indices
 * [base, base + N) of its shard's map and its rule picks one with
 * numgen random mod N offset base. Shards because the kernel checks every
 * rule bound to a map each time an element is added to it.
 */
#define NFT_BACKENDS4 "backends4"
#define NFT_BACKENDS6 "backends6"
#define NFT_BACKEND_SHARDS 32
/* "backends6-31" */
#define NFT_BACKENDS_NAME_MAX 16

/* The shard of a frontend's backends: a hash of its key, the same in every agent. */
unsigned int nft_fe_backend_shard(const struct frontend_key *key);
/* backends4-<shard> or backends6-<shard>. */
void nft_backends_map_name(bool v6, unsigned int shard, char *buf, size_t len);
/* "fe-" + IPv6 text + "-sctp-65535" fits easily; nft allows 256. */
#define NFT_CHAIN_NAME_MAX 80
/* Endpoint chains and affinity sets: a frontend's name plus a backend's. */
#define NFT_EP_NAME_MAX 160
/* "admitted." + namespace (63) + "." + Service name (253). nft allows 256. */
#define NFT_OBJ_NAME_MAX 256
/* Elements per NEWSETELEM message: keeps every message far below the page overrun. */
#define NFT_ELEMS_PER_MSG 256

/*
 * The bit of the packet mark that asks nat-postrouting to masquerade a flow
 * (kube-proxy's masquerade bit): set in the frontend chain of an external
 * frontend under externalTrafficPolicy Cluster, cleared when masquerading.
 */
#define NFT_MASQ_MARK 0x4000u

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
	NFT_NAMED_SETS,
};

const char *nft_set_name(enum nft_named_set set);

/* What the datapath does with one frontend in nftables terms. */
enum nft_fe_class {
	NFT_FE_SKIP, /* not programmed here (not IPv4/IPv6) */
	NFT_FE_MARKER, /* element of service-addrs */
	NFT_FE_SERVE, /* chain + DNAT rule + element of services (nodeports) */
	NFT_FE_REFUSE, /* element of no-endpoints (no-endpoint-nodeports): reject */
	NFT_FE_DROP, /* element of no-endpoints (no-endpoint-nodeports): drop */
};

enum nft_fe_class nft_fe_classify(const struct frontend *fe);
/* A NodePort: the unspecified address, served on every local address (fib daddr type local). */
bool nft_fe_is_node_port(const struct frontend *fe);
/* True if fe's flows are marked for masquerade (external kinds, externalTrafficPolicy Cluster). */
bool nft_fe_masquerades(const struct frontend *fe);
/* Backends of fe usable for DNAT (same family as the frontend). */
size_t nft_fe_usable_backends(const struct frontend *fe);

/*
 * Writes the frontend's chain name, e.g. fe-10.96.0.10-tcp-80, fe-fd00__10-udp-53,
 * and for NodePorts fe-nodeport4-tcp-30080 / fe-nodeport6-tcp-30080.
 */
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
};

struct nft_msg_ref {
	uint8_t what; /* enum nft_msg_what */
	uint8_t set; /* enum nft_named_set, for ELEMS_* */
	bool has_key;
	uint32_t count; /* elements in the message, for ELEMS_* */
	struct frontend_key key; /* for FE_*, EP_*; the first element for ELEMS_* */
	struct backend backend; /* for EP_* */
	const char *service; /* for SVC_*: the frontend's string, alive while the batch is */
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
 *   meta l4proto P dnat ip[6] to numgen random mod N offset BASE map @backends4-<shard>
 * where N = nft_fe_usable_backends(fe) and [BASE, BASE + N) is the
 * frontend's range of its backends4/6-N map (written by nft_msg_fe_backends).
 */
void nft_msg_fe_dnat_rule(struct nft_batch *b, const struct frontend *fe, uint32_t base);
/*
 * Adds (NFT_MSG_NEWSETELEM) the usable backends of fe as elements base,
 * base + 1, ... of its shard's backends4/6-N map, or deletes
 * (NFT_MSG_DELSETELEM) those indices, in messages of at most
 * NFT_ELEMS_PER_MSG elements.
 */
void nft_msg_fe_backends(struct nft_batch *b, uint16_t msg_type, const struct frontend *fe,
			 uint32_t base);

/* ---- session affinity (kube-proxy's nftables shape) ---- */

/* ep-<frontend>-<backend address>-<port> and aff-<same>: one per backend of an affinity frontend. */
void nft_ep_chain_name(const struct frontend_key *key, const struct backend *be, char *buf,
		       size_t len);
void nft_ep_set_name(const struct frontend_key *key, const struct backend *be, char *buf,
		     size_t len);
/* True if fe is served with session affinity (one endpoint chain per backend). */
bool nft_fe_has_affinity(const struct frontend *fe);
/*
 * One endpoint of an affinity frontend: the set of its clients (timeout
 * fe->affinity_timeout) and its chain "update @aff-... { ip saddr }; dnat".
 * Deleting removes the chain, then the set.
 */
void nft_msg_ep_add(struct nft_batch *b, const struct frontend *fe, const struct backend *be);
void nft_msg_ep_del(struct nft_batch *b, const struct frontend *fe, const struct backend *be);

/*
 * Every rule of a served frontend's chain, in order:
 *   [ct state new jump limit.NS.NAME]             when the Service has a rate limit
 *   [meta mark set mark | 0x4000]                 when nft_fe_masquerades(fe)
 *   then without affinity the one DNAT rule (nft_msg_fe_dnat_rule, range at base),
 *   with affinity: ip saddr @aff-<ep> goto ep-<ep>, one per backend, then
 *                  numgen random mod N vmap { 0 : goto ep-<ep0>, ... }
 * The endpoint chains must exist (nft_msg_ep_add) before this is written.
 */
void nft_msg_fe_rules(struct nft_batch *b, const struct frontend *fe, uint32_t base);

/* ---- per-Service rate limit: objects rate/admitted/limited.NS.NAME, chain limit.NS.NAME ---- */

enum nft_svc_name {
	NFT_SVC_LIMIT, /* limit object: the bucket */
	NFT_SVC_ADMITTED, /* counter object: new flows let through */
	NFT_SVC_LIMITED, /* counter object: new flows refused */
	NFT_SVC_CHAIN, /* chain: limit, count, return or count, reject */
};

/* "ns/name" -> "rate.ns.name" (which = NFT_SVC_*). Returns false if it does not fit. */
bool nft_svc_name(enum nft_svc_name which, const char *service, char *buf, size_t len);
/* "rate.ns.name" -> NFT_SVC_LIMIT and "ns/name"; -1 if not one of ours. */
int nft_svc_parse_name(const char *name, char *service, size_t len);
/* True if fe carries a rate limit (its Service's objects exist while it does). */
bool nft_fe_has_rate(const struct frontend *fe);

/*
 * How the kernel's packet limit is told our bucket: rate = count, unit =
 * period, burst = burst. nft_limit starts full and holds unit/rate x burst
 * nanoseconds of tokens, i.e. exactly `burst` flows (measured, see
 * Documentation/nftables-datapath.md). It refuses cost x burst beyond 64
 * bits: the burst is clamped to the largest that fits (returned).
 */
uint32_t nft_limit_kernel_burst(const struct rate_limit *rl);

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

/*
 * Queues the named-set element of fe (by its class) for a NEWSETELEM or
 * DELSETELEM message. Elements are written NFT_ELEMS_PER_MSG per message
 * per set; all queued elements must be of one message type until flushed.
 */
void nft_batch_queue_elem(struct nft_batch *b, uint16_t msg_type, const struct frontend *fe);
void nft_batch_flush_elems(struct nft_batch *b);

/* ---- loadBalancerSourceRanges: firewall-ips4/6 -> chain firewall-<fe> -> set allow-<fe> ---- */

/* firewall-10.0.0.5-tcp-80 and allow-10.0.0.5-tcp-80 (buffers of NFT_EP_NAME_MAX). */
void nft_fw_chain_name(const struct frontend_key *key, char *buf, size_t len);
void nft_fw_set_name(const struct frontend_key *key, char *buf, size_t len);
/*
 * True if fe restricts its sources: a LB ingress frontend with source
 * ranges of its own family (as kube-proxy, ranges of the other family are
 * ignored; none left means everyone is allowed).
 */
bool nft_fe_has_firewall(const struct frontend *fe);
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
/*
 * Adds the set (with its elements) and the chain "ip saddr != @allow-... drop".
 * The firewall-ips element is queued separately (nft_batch_queue_fw_elem).
 */
void nft_msg_fw_add(struct nft_batch *b, const struct frontend *fe);
/* New ranges for an existing firewall: flush the set, add the new elements. */
void nft_msg_fw_update(struct nft_batch *b, const struct frontend *fe);
/* Deletes the chain, then the set (after the firewall-ips element went). */
void nft_msg_fw_del(struct nft_batch *b, const struct frontend_key *key);
/* Queues fe's firewall-ips4/6 element (if nft_fe_has_firewall) like nft_batch_queue_elem. */
void nft_batch_queue_fw_elem(struct nft_batch *b, uint16_t msg_type, const struct frontend *fe);

#endif
