// SPDX-License-Identifier: Apache-2.0
/*
 * Builds the netlink messages for table inet sluice into one nftables batch:
 * object names, the static skeleton, and the per-frontend chain, DNAT rule
 * and map elements. The expressions are the ones `nft --debug=netlink`
 * shows for the equivalent nft syntax, so `nft list table inet sluice`
 * prints them back as that syntax.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nf_nat.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/rtnetlink.h>
#include <libmnl/libmnl.h>
#include <libnftnl/batch.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/object.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <libnftnl/udata.h>

#include "lib/log.h"
#include "core/model.h"
#include "datapath/nft/nft_msg.h"

/*
 * Pages of the batch: a message is written at the tail of the current page
 * and may run past its end by at most the overrun, so the overrun bounds the
 * largest message (NFT_ELEMS_PER_MSG elements of about 120 bytes).
 */
#define BATCH_PAGE_SIZE (256 * 1024)
#define BATCH_PAGE_OVERRUN (128 * 1024)
/* Zeroed ahead of each message: rules and objects fit, element keys are fully written. */
#define MSG_ZEROED_BYTES 1024

/* nft's own datatype numbers (src/datatype.h), so `nft list` prints the keys. */
#define NFT_TYPE_INTEGER 4
/* A 32-bit host-order integer nft can print a named map's key with (backends4/6-N). */
#define NFT_TYPE_MARK 19
#define NFT_TYPE_IPADDR 7
#define NFT_TYPE_IP6ADDR 8
#define NFT_TYPE_INET_PROTOCOL 12
#define NFT_TYPE_INET_SERVICE 13
#define NFT_TYPE_BITS 6
#define NFT_CONCAT2(a, b) (((a) << NFT_TYPE_BITS) | (b))
#define NFT_CONCAT3(a, b, c) (NFT_CONCAT2(NFT_CONCAT2(a, b), c))
/* nft's byteorder enum: the anonymous map's numgen keys are host order. */
#define NFT_BYTEORDER_HOST 1

#define NFT_PRIO_DSTNAT (-100)
#define NFT_PRIO_FILTER 0
#define NFT_PRIO_SRCNAT 100

/* Concatenation fields are padded to 4 bytes each. */
#define KEY_LEN4 (4 + 4 + 4)
#define KEY_LEN6 (16 + 4 + 4)
#define KEY_LEN_NODE_PORT (4 + 4)
#define ENDPOINT_LEN4 (4 + 4)
#define ENDPOINT_LEN6 (16 + 4)

/* What a named set's elements are keyed by. */
enum set_key {
	KEY_ADDR_PROTO_PORT, /* ip daddr . meta l4proto . th dport */
	KEY_PROTO_PORT, /* meta l4proto . th dport (NodePorts) */
	KEY_ADDR, /* ip daddr */
};

static const struct {
	const char *name;
	bool v6;
	enum set_key key;
	bool is_map; /* : verdict */
} named_sets[NFT_NAMED_SETS] = {
	[NFT_SET_SERVICES4] = { "services4", false, KEY_ADDR_PROTO_PORT, true },
	[NFT_SET_SERVICES6] = { "services6", true, KEY_ADDR_PROTO_PORT, true },
	[NFT_SET_NO_ENDPOINTS4] = { "no-endpoints4", false, KEY_ADDR_PROTO_PORT, true },
	[NFT_SET_NO_ENDPOINTS6] = { "no-endpoints6", true, KEY_ADDR_PROTO_PORT, true },
	[NFT_SET_ADDRS4] = { "service-addrs4", false, KEY_ADDR, false },
	[NFT_SET_ADDRS6] = { "service-addrs6", true, KEY_ADDR, false },
	[NFT_SET_NODEPORTS4] = { "nodeports4", false, KEY_PROTO_PORT, true },
	[NFT_SET_NODEPORTS6] = { "nodeports6", true, KEY_PROTO_PORT, true },
	[NFT_SET_NO_ENDPOINT_NODEPORTS4] = { "no-endpoint-nodeports4", false, KEY_PROTO_PORT,
					     true },
	[NFT_SET_NO_ENDPOINT_NODEPORTS6] = { "no-endpoint-nodeports6", true, KEY_PROTO_PORT, true },
	[NFT_SET_FIREWALL4] = { "firewall-ips4", false, KEY_ADDR_PROTO_PORT, true },
	[NFT_SET_FIREWALL6] = { "firewall-ips6", true, KEY_ADDR_PROTO_PORT, true },
};

const char *nft_set_name(enum nft_named_set set)
{
	return set < NFT_NAMED_SETS ? named_sets[set].name : "?";
}

static bool addr_unspecified(const struct ip_addr *addr)
{
	static const uint8_t zero[16];

	return !memcmp(addr->bytes, zero, addr->family == AF_INET ? 4 : 16);
}

bool nft_fe_is_node_port(const struct frontend *fe)
{
	return fe->key.proto && addr_unspecified(&fe->key.addr);
}

bool nft_fe_masquerades(const struct frontend *fe)
{
	return fe->kind != FE_CLUSTER_IP && !fe->preserve_source;
}

size_t nft_fe_usable_backends(const struct frontend *fe)
{
	size_t n = 0;

	for (size_t i = 0; i < fe->n_backends; i++)
		n += fe->backends[i].addr.family == fe->key.addr.family;
	return n;
}

enum nft_fe_class nft_fe_classify(const struct frontend *fe)
{
	if (fe->key.addr.family != AF_INET && fe->key.addr.family != AF_INET6)
		return NFT_FE_SKIP;
	if (fe->key.proto == 0 && fe->key.port == 0)
		return NFT_FE_MARKER;
	switch (fe->action) {
	case FE_SERVE:
		/* A served frontend without a usable backend is refused, never left open. */
		return nft_fe_usable_backends(fe) ? NFT_FE_SERVE : NFT_FE_REFUSE;
	case FE_DROP:
		return NFT_FE_DROP;
	case FE_REFUSE:
	default:
		return NFT_FE_REFUSE;
	}
}

static const char *proto_name(uint8_t proto, char *buf, size_t len)
{
	const char *name = l4_proto_name(proto);

	if (name)
		return name;
	snprintf(buf, len, "p%u", proto);
	return buf;
}

void nft_fe_chain_name(const struct frontend_key *key, char *buf, size_t len)
{
	char addr[IP_ADDR_STRLEN], proto[8];

	/* ':' is not allowed in an unquoted nft identifier, '-' separates fields. */
	if (key->proto && addr_unspecified(&key->addr))
		snprintf(addr, sizeof(addr), "nodeport%c", key->addr.family == AF_INET ? '4' : '6');
	else
		ip_addr_format(&key->addr, addr);
	for (char *c = addr; *c; c++)
		if (*c == ':')
			*c = '_';
	snprintf(buf, len, "fe-%s-%s-%u", addr, proto_name(key->proto, proto, sizeof(proto)),
		 key->port);
}

void nft_fe_key_text(const struct frontend_key *key, char *buf, size_t len)
{
	char addr[IP_ADDR_STRLEN], proto[8];

	ip_addr_format(&key->addr, addr);
	if (key->proto == 0 && key->port == 0)
		snprintf(buf, len, "%s (service address)", addr);
	else if (addr_unspecified(&key->addr))
		snprintf(buf, len, "nodePort %s/%u (IPv%c)",
			 proto_name(key->proto, proto, sizeof(proto)), key->port,
			 key->addr.family == AF_INET ? '4' : '6');
	else
		snprintf(buf, len, "%s %s/%u", addr, proto_name(key->proto, proto, sizeof(proto)),
			 key->port);
}

/* ---- batch bookkeeping ---- */

static void batch_fail(struct nft_batch *b, int err)
{
	if (!b->err)
		b->err = err;
}

static int batch_add_ref(struct nft_batch *b, const struct nft_msg_ref *ref)
{
	size_t idx = b->seq - b->seq_first;

	if (idx >= b->cap_refs) {
		size_t cap = b->cap_refs ? b->cap_refs * 2 : 256;
		struct nft_msg_ref *refs;

		while (cap <= idx)
			cap *= 2;
		refs = realloc(b->refs, cap * sizeof(*refs));
		if (!refs)
			return -ENOMEM;
		b->refs = refs;
		b->cap_refs = cap;
	}
	b->refs[idx] = *ref;
	return 0;
}

/* Starts a message at the batch's tail; NULL (and b->err set) on failure. */
static struct nlmsghdr *msg_start(struct nft_batch *b, uint16_t type, uint16_t flags,
				  const struct nft_msg_ref *ref)
{
	if (b->err)
		return NULL;
	if (batch_add_ref(b, ref)) {
		batch_fail(b, -ENOMEM);
		return NULL;
	}
	/*
	 * libmnl 1.0.4 leaves attribute padding as it finds it and libnftnl
	 * writes some names (objref) without their NUL: start from zeroed
	 * bytes so that every message reads back the same (the page has
	 * BATCH_PAGE_OVERRUN bytes beyond its limit, far more than this).
	 */
	memset(nftnl_batch_buffer(b->nb), 0, MSG_ZEROED_BYTES);
	return nftnl_nlmsg_build_hdr(nftnl_batch_buffer(b->nb), type, NFPROTO_INET, flags, b->seq);
}

/* Moves past a message written with msg_start. */
static void msg_end(struct nft_batch *b)
{
	b->seq++;
	b->n_msgs++;
	if (nftnl_batch_update(b->nb) < 0)
		batch_fail(b, -ENOMEM);
}

/*
 * Finds the last message written (a message that overflows a page moves to
 * the next one, so no pointer kept while building stays valid) and asks
 * for its ACK.
 */
static void mark_last_for_ack(struct nft_batch *b)
{
	int n_iov = nftnl_batch_iovec_len(b->nb);
	struct nlmsghdr *last = NULL;
	struct iovec *iov;

	if (!b->n_msgs || n_iov <= 0)
		return;
	iov = calloc(n_iov, sizeof(*iov));
	if (!iov) {
		batch_fail(b, -ENOMEM);
		return;
	}
	nftnl_batch_iovec(b->nb, iov, n_iov);
	for (int i = n_iov - 1; i >= 0 && !last; i--) {
		struct nlmsghdr *nlh = iov[i].iov_base;
		int len = iov[i].iov_len;

		for (; mnl_nlmsg_ok(nlh, len); nlh = mnl_nlmsg_next(nlh, &len))
			last = nlh;
	}
	if (last)
		last->nlmsg_flags |= NLM_F_ACK;
	free(iov);
}

int nft_batch_init(struct nft_batch *b, uint32_t seq)
{
	struct nft_msg_ref ref = { .what = NFT_WHAT_BATCH };

	memset(b, 0, sizeof(*b));
	b->nb = nftnl_batch_alloc(BATCH_PAGE_SIZE, BATCH_PAGE_OVERRUN);
	if (!b->nb)
		return -ENOMEM;
	b->seq_first = seq;
	b->seq = seq;
	if (batch_add_ref(b, &ref)) {
		nft_batch_free(b);
		return -ENOMEM;
	}
	nftnl_batch_begin(nftnl_batch_buffer(b->nb), b->seq++);
	if (nftnl_batch_update(b->nb) < 0) {
		nft_batch_free(b);
		return -ENOMEM;
	}
	return 0;
}

int nft_batch_finish(struct nft_batch *b)
{
	struct nft_msg_ref ref = { .what = NFT_WHAT_BATCH };

	nft_batch_flush_elems(b);
	if (b->err)
		return b->err;
	/* Errors always come back; the last message's ACK says the batch was processed. */
	mark_last_for_ack(b);
	if (batch_add_ref(b, &ref))
		return b->err = -ENOMEM;
	nftnl_batch_end(nftnl_batch_buffer(b->nb), b->seq++);
	if (nftnl_batch_update(b->nb) < 0)
		return b->err = -ENOMEM;
	return 0;
}

void nft_batch_free(struct nft_batch *b)
{
	for (int i = 0; i < NFT_NAMED_SETS; i++)
		if (b->pending[i])
			nftnl_set_free(b->pending[i]);
	if (b->nb)
		nftnl_batch_free(b->nb);
	free(b->refs);
	memset(b, 0, sizeof(*b));
}

const struct nft_msg_ref *nft_batch_ref(const struct nft_batch *b, uint32_t seq)
{
	if (seq < b->seq_first || seq - b->seq_first >= b->seq - b->seq_first)
		return NULL;
	return &b->refs[seq - b->seq_first];
}

void nft_msg_ref_text(const struct nft_msg_ref *ref, char *buf, size_t len)
{
	char name[NFT_CHAIN_NAME_MAX], key[96];

	nft_fe_chain_name(&ref->key, name, sizeof(name));
	nft_fe_key_text(&ref->key, key, sizeof(key));
	switch (ref->what) {
	case NFT_WHAT_BATCH:
		snprintf(buf, len, "batch (commit)");
		break;
	case NFT_WHAT_TABLE_ADD:
		snprintf(buf, len, "add table inet %s", NFT_TABLE_NAME);
		break;
	case NFT_WHAT_TABLE_DEL:
		snprintf(buf, len, "delete table inet %s", NFT_TABLE_NAME);
		break;
	case NFT_WHAT_SET_ADD:
		snprintf(buf, len, "add set %s", nft_set_name(ref->set));
		break;
	case NFT_WHAT_BASE_CHAIN:
		snprintf(buf, len, "add base chain");
		break;
	case NFT_WHAT_BASE_RULE:
		snprintf(buf, len, "add base chain rule");
		break;
	case NFT_WHAT_FE_CHAIN_ADD:
		snprintf(buf, len, "add chain %s", name);
		break;
	case NFT_WHAT_FE_CHAIN_DEL:
		snprintf(buf, len, "delete chain %s", name);
		break;
	case NFT_WHAT_FE_CHAIN_FLUSH:
		snprintf(buf, len, "flush chain %s", name);
		break;
	case NFT_WHAT_FE_RULE:
		snprintf(buf, len, "add dnat rule to %s", name);
		break;
	case NFT_WHAT_BACKENDS_MAP_ADD:
		snprintf(buf, len, "add backend maps");
		break;
	case NFT_WHAT_BACKENDS_ADD:
	case NFT_WHAT_BACKENDS_DEL: {
		char map[NFT_BACKENDS_NAME_MAX];

		nft_backends_map_name(ref->key.addr.family == AF_INET6,
				      nft_fe_backend_shard(&ref->key), map, sizeof(map));
		snprintf(buf, len, "%s %u backend(s) of %s %s %s",
			 ref->what == NFT_WHAT_BACKENDS_ADD ? "add" : "delete", ref->count, name,
			 ref->what == NFT_WHAT_BACKENDS_ADD ? "to" : "from", map);
		break;
	}
	case NFT_WHAT_FE_LIMIT_RULE:
	case NFT_WHAT_FE_AFFINITY_RULE:
	case NFT_WHAT_FE_PICK_RULE:
		snprintf(buf, len, "add %s rule to %s",
			 ref->what == NFT_WHAT_FE_LIMIT_RULE	? "rate-limit jump" :
			 ref->what == NFT_WHAT_FE_AFFINITY_RULE ? "affinity" :
								  "endpoint pick",
			 name);
		break;
	case NFT_WHAT_EP_SET_ADD:
	case NFT_WHAT_EP_SET_DEL:
	case NFT_WHAT_EP_CHAIN_ADD:
	case NFT_WHAT_EP_CHAIN_DEL:
	case NFT_WHAT_EP_RULE: {
		char ep[NFT_EP_NAME_MAX];
		bool is_set = ref->what == NFT_WHAT_EP_SET_ADD || ref->what == NFT_WHAT_EP_SET_DEL;

		if (is_set)
			nft_ep_set_name(&ref->key, &ref->backend, ep, sizeof(ep));
		else
			nft_ep_chain_name(&ref->key, &ref->backend, ep, sizeof(ep));
		snprintf(buf, len, "%s %s %s",
			 ref->what == NFT_WHAT_EP_SET_DEL || ref->what == NFT_WHAT_EP_CHAIN_DEL ?
				 "delete" :
				 "add",
			 ref->what == NFT_WHAT_EP_RULE ? "rule to chain" :
			 is_set			       ? "set" :
							 "chain",
			 ep);
		break;
	}
	case NFT_WHAT_SVC_OBJ_ADD:
	case NFT_WHAT_SVC_OBJ_DEL:
	case NFT_WHAT_SVC_CHAIN_ADD:
	case NFT_WHAT_SVC_CHAIN_DEL:
	case NFT_WHAT_SVC_CHAIN_FLUSH:
	case NFT_WHAT_SVC_RULE:
		snprintf(buf, len, "%s of Service %s's rate limit",
			 ref->what == NFT_WHAT_SVC_OBJ_ADD     ? "add limit/counter objects" :
			 ref->what == NFT_WHAT_SVC_OBJ_DEL     ? "delete limit/counter objects" :
			 ref->what == NFT_WHAT_SVC_CHAIN_ADD   ? "add chain" :
			 ref->what == NFT_WHAT_SVC_CHAIN_DEL   ? "delete chain" :
			 ref->what == NFT_WHAT_SVC_CHAIN_FLUSH ? "flush chain" :
								 "add rule",
			 ref->service ? ref->service : "?");
		break;
	case NFT_WHAT_FE_MASQ_RULE:
		snprintf(buf, len, "add masquerade-mark rule to %s", name);
		break;
	case NFT_WHAT_FW_SET_ADD:
	case NFT_WHAT_FW_SET_DEL:
	case NFT_WHAT_FW_SET_FLUSH:
	case NFT_WHAT_FW_ELEMS: {
		char set[NFT_EP_NAME_MAX];

		nft_fw_set_name(&ref->key, set, sizeof(set));
		snprintf(buf, len, "%s set %s",
			 ref->what == NFT_WHAT_FW_SET_ADD   ? "add" :
			 ref->what == NFT_WHAT_FW_SET_DEL   ? "delete" :
			 ref->what == NFT_WHAT_FW_SET_FLUSH ? "flush" :
							      "add source ranges to",
			 set);
		break;
	}
	case NFT_WHAT_FW_CHAIN_ADD:
	case NFT_WHAT_FW_CHAIN_DEL:
	case NFT_WHAT_FW_RULE: {
		char fw[NFT_EP_NAME_MAX];

		nft_fw_chain_name(&ref->key, fw, sizeof(fw));
		snprintf(buf, len, "%s %s",
			 ref->what == NFT_WHAT_FW_CHAIN_ADD ? "add chain" :
			 ref->what == NFT_WHAT_FW_CHAIN_DEL ? "delete chain" :
							      "add rule to chain",
			 fw);
		break;
	}
	case NFT_WHAT_ELEMS_ADD:
	case NFT_WHAT_ELEMS_DEL:
		snprintf(buf, len, "%s %u element(s) %s %s, first %s",
			 ref->what == NFT_WHAT_ELEMS_ADD ? "add" : "delete", ref->count,
			 ref->what == NFT_WHAT_ELEMS_ADD ? "to" : "from", nft_set_name(ref->set),
			 key);
		break;
	default:
		snprintf(buf, len, "message");
	}
}

/* ---- table ---- */

static void table_msg(struct nft_batch *b, uint16_t type, uint8_t what)
{
	struct nft_msg_ref ref = { .what = what };
	struct nftnl_table *t = nftnl_table_alloc();
	struct nlmsghdr *nlh;

	if (!t)
		return batch_fail(b, -ENOMEM);
	nftnl_table_set_u32(t, NFTNL_TABLE_FAMILY, NFPROTO_INET);
	nftnl_table_set_str(t, NFTNL_TABLE_NAME, NFT_TABLE_NAME);
	nlh = msg_start(b, type, type == NFT_MSG_NEWTABLE ? NLM_F_CREATE : 0, &ref);
	if (nlh) {
		nftnl_table_nlmsg_build_payload(nlh, t);
		msg_end(b);
	}
	nftnl_table_free(t);
}

void nft_msg_table_add(struct nft_batch *b)
{
	table_msg(b, NFT_MSG_NEWTABLE, NFT_WHAT_TABLE_ADD);
}

void nft_msg_table_del(struct nft_batch *b)
{
	table_msg(b, NFT_MSG_DELTABLE, NFT_WHAT_TABLE_DEL);
}

/* ---- chains ---- */

struct base_chain {
	const char *name;
	const char *type;
	uint32_t hook;
	int32_t prio;
};

/*
 * DNAT at dstnat (-100) runs before filter (0) on the same hook, so a
 * served packet reaches the filter chains with its backend address and
 * only unserved service addresses are refused there.
 */
static const struct base_chain nat_chains[] = {
	{ "nat-prerouting", "nat", NF_INET_PRE_ROUTING, NFT_PRIO_DSTNAT },
	{ "nat-output", "nat", NF_INET_LOCAL_OUT, NFT_PRIO_DSTNAT },
};

static const struct base_chain nat_postrouting = { "nat-postrouting", "nat", NF_INET_POST_ROUTING,
						   NFT_PRIO_SRCNAT };

/* loadBalancerSourceRanges: checked before DNAT, while the packet carries the LB address. */
static const struct base_chain firewall_chains[] = {
	{ "filter-prerouting", "filter", NF_INET_PRE_ROUTING, NFT_PRIO_DSTNAT - 10 },
	{ "filter-output-pre-dnat", "filter", NF_INET_LOCAL_OUT, NFT_PRIO_DSTNAT - 10 },
};

static const struct base_chain filter_chains[] = {
	{ "filter-input", "filter", NF_INET_LOCAL_IN, NFT_PRIO_FILTER },
	{ "filter-forward", "filter", NF_INET_FORWARD, NFT_PRIO_FILTER },
	{ "filter-output", "filter", NF_INET_LOCAL_OUT, NFT_PRIO_FILTER },
};

static struct nftnl_chain *chain_new(const char *name)
{
	struct nftnl_chain *c = nftnl_chain_alloc();

	if (!c)
		return NULL;
	nftnl_chain_set_u32(c, NFTNL_CHAIN_FAMILY, NFPROTO_INET);
	nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, NFT_TABLE_NAME);
	nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, name);
	return c;
}

static void chain_msg(struct nft_batch *b, struct nftnl_chain *c, uint16_t type, uint16_t flags,
		      const struct nft_msg_ref *ref)
{
	struct nlmsghdr *nlh;

	if (!c)
		return batch_fail(b, -ENOMEM);
	nlh = msg_start(b, type, flags, ref);
	if (nlh) {
		nftnl_chain_nlmsg_build_payload(nlh, c);
		msg_end(b);
	}
	nftnl_chain_free(c);
}

static void base_chain_add(struct nft_batch *b, const struct base_chain *bc)
{
	struct nft_msg_ref ref = { .what = NFT_WHAT_BASE_CHAIN };
	struct nftnl_chain *c = chain_new(bc->name);

	if (c) {
		nftnl_chain_set_str(c, NFTNL_CHAIN_TYPE, bc->type);
		nftnl_chain_set_u32(c, NFTNL_CHAIN_HOOKNUM, bc->hook);
		nftnl_chain_set_s32(c, NFTNL_CHAIN_PRIO, bc->prio);
		nftnl_chain_set_u32(c, NFTNL_CHAIN_POLICY, NF_ACCEPT);
	}
	chain_msg(b, c, NFT_MSG_NEWCHAIN, NLM_F_CREATE, &ref);
}

static void fe_chain_msg(struct nft_batch *b, const struct frontend_key *key, uint16_t type,
			 uint16_t flags, uint8_t what)
{
	struct nft_msg_ref ref = { .what = what, .has_key = true, .key = *key };
	char name[NFT_CHAIN_NAME_MAX];

	nft_fe_chain_name(key, name, sizeof(name));
	chain_msg(b, chain_new(name), type, flags, &ref);
}

void nft_msg_fe_chain_add(struct nft_batch *b, const struct frontend_key *key)
{
	/* EXCL: a chain already there means our view of the kernel is wrong; fail loudly. */
	fe_chain_msg(b, key, NFT_MSG_NEWCHAIN, NLM_F_CREATE | NLM_F_EXCL, NFT_WHAT_FE_CHAIN_ADD);
}

void nft_msg_fe_chain_del(struct nft_batch *b, const struct frontend_key *key)
{
	/* Deleting a chain deletes its rules (and with them the anonymous backend map). */
	fe_chain_msg(b, key, NFT_MSG_DELCHAIN, 0, NFT_WHAT_FE_CHAIN_DEL);
}

void nft_msg_fe_chain_flush(struct nft_batch *b, const struct frontend_key *key)
{
	struct nft_msg_ref ref = { .what = NFT_WHAT_FE_CHAIN_FLUSH, .has_key = true, .key = *key };
	char name[NFT_CHAIN_NAME_MAX];
	struct nftnl_rule *r = nftnl_rule_alloc();
	struct nlmsghdr *nlh;

	if (!r)
		return batch_fail(b, -ENOMEM);
	nft_fe_chain_name(key, name, sizeof(name));
	nftnl_rule_set_u32(r, NFTNL_RULE_FAMILY, NFPROTO_INET);
	nftnl_rule_set_str(r, NFTNL_RULE_TABLE, NFT_TABLE_NAME);
	nftnl_rule_set_str(r, NFTNL_RULE_CHAIN, name);
	/* DELRULE with a chain and no handle removes every rule of that chain. */
	nlh = msg_start(b, NFT_MSG_DELRULE, 0, &ref);
	if (nlh) {
		nftnl_rule_nlmsg_build_payload(nlh, r);
		msg_end(b);
	}
	nftnl_rule_free(r);
}

/* ---- expressions ---- */

static bool add_expr(struct nftnl_rule *r, struct nftnl_expr *e)
{
	if (!e)
		return false;
	nftnl_rule_add_expr(r, e);
	return true;
}

static bool expr_meta(struct nftnl_rule *r, uint32_t key, uint32_t dreg)
{
	struct nftnl_expr *e = nftnl_expr_alloc("meta");

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, key);
		nftnl_expr_set_u32(e, NFTNL_EXPR_META_DREG, dreg);
	}
	return add_expr(r, e);
}

static bool expr_cmp_u8(struct nftnl_rule *r, uint32_t sreg, uint8_t value)
{
	struct nftnl_expr *e = nftnl_expr_alloc("cmp");

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_SREG, sreg);
		nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_OP, NFT_CMP_EQ);
		nftnl_expr_set(e, NFTNL_EXPR_CMP_DATA, &value, sizeof(value));
	}
	return add_expr(r, e);
}

static bool expr_payload(struct nftnl_rule *r, uint32_t base, uint32_t offset, uint32_t len,
			 uint32_t dreg)
{
	struct nftnl_expr *e = nftnl_expr_alloc("payload");

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_BASE, base);
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, offset);
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_LEN, len);
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_DREG, dreg);
	}
	return add_expr(r, e);
}

/* set_id 0: a named set that already exists or is added earlier in the batch. */
static bool expr_lookup(struct nftnl_rule *r, uint32_t sreg, const char *set, uint32_t set_id,
			bool has_dreg, uint32_t dreg)
{
	struct nftnl_expr *e = nftnl_expr_alloc("lookup");

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SREG, sreg);
		nftnl_expr_set_str(e, NFTNL_EXPR_LOOKUP_SET, set);
		if (set_id)
			nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SET_ID, set_id);
		if (has_dreg)
			nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_DREG, dreg);
	}
	return add_expr(r, e);
}

/* ... != @set: the inverted lookup (no dreg). */
static bool expr_lookup_not(struct nftnl_rule *r, uint32_t sreg, const char *set, uint32_t set_id)
{
	struct nftnl_expr *e = nftnl_expr_alloc("lookup");

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SREG, sreg);
		nftnl_expr_set_str(e, NFTNL_EXPR_LOOKUP_SET, set);
		if (set_id)
			nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SET_ID, set_id);
		nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_FLAGS, NFT_LOOKUP_F_INV);
	}
	return add_expr(r, e);
}

/* reg = (reg & mask) ^ xor, on len bytes. */
static bool expr_bitwise(struct nftnl_rule *r, uint32_t reg, const void *mask, const void * xor,
			 uint32_t len)
{
	struct nftnl_expr *e = nftnl_expr_alloc("bitwise");

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_SREG, reg);
		nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_DREG, reg);
		nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_LEN, len);
		nftnl_expr_set(e, NFTNL_EXPR_BITWISE_MASK, mask, len);
		nftnl_expr_set(e, NFTNL_EXPR_BITWISE_XOR, xor, len);
	}
	return add_expr(r, e);
}

static bool expr_cmp(struct nftnl_rule *r, uint32_t sreg, uint32_t op, const void *data,
		     uint32_t len)
{
	struct nftnl_expr *e = nftnl_expr_alloc("cmp");

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_SREG, sreg);
		nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_OP, op);
		nftnl_expr_set(e, NFTNL_EXPR_CMP_DATA, data, len);
	}
	return add_expr(r, e);
}

/* fib daddr type local: the destination is an address of this node. */
static bool expr_fib_daddr_local(struct nftnl_rule *r)
{
	struct nftnl_expr *e = nftnl_expr_alloc("fib");
	uint32_t local = RTN_LOCAL;

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_FIB_DREG, NFT_REG_1);
		nftnl_expr_set_u32(e, NFTNL_EXPR_FIB_RESULT, NFT_FIB_RESULT_ADDRTYPE);
		nftnl_expr_set_u32(e, NFTNL_EXPR_FIB_FLAGS, NFTA_FIB_F_DADDR);
	}
	return add_expr(r, e) && expr_cmp(r, NFT_REG_1, NFT_CMP_EQ, &local, sizeof(local));
}

/* meta mark set meta mark & and_mask ^ xor_bits (set a bit: mask ~bit, xor bit). */
static bool expr_mark_update(struct nftnl_rule *r, uint32_t and_mask, uint32_t xor_bits)
{
	struct nftnl_expr *e;

	if (!expr_meta(r, NFT_META_MARK, NFT_REG_1) ||
	    !expr_bitwise(r, NFT_REG_1, &and_mask, &xor_bits, sizeof(uint32_t)))
		return false;
	e = nftnl_expr_alloc("meta");
	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, NFT_META_MARK);
		nftnl_expr_set_u32(e, NFTNL_EXPR_META_SREG, NFT_REG_1);
	}
	return add_expr(r, e);
}

/* meta mark & bit != 0 */
static bool expr_mark_has(struct nftnl_rule *r, uint32_t bit)
{
	uint32_t zero = 0;

	return expr_meta(r, NFT_META_MARK, NFT_REG_1) &&
	       expr_bitwise(r, NFT_REG_1, &bit, &zero, sizeof(bit)) &&
	       expr_cmp(r, NFT_REG_1, NFT_CMP_NEQ, &zero, sizeof(zero));
}

/* masquerade fully-random: SNAT to the outgoing interface's address, random ports. */
static bool expr_masquerade(struct nftnl_rule *r)
{
	struct nftnl_expr *e = nftnl_expr_alloc("masq");

	if (e)
		nftnl_expr_set_u32(e, NFTNL_EXPR_MASQ_FLAGS, NF_NAT_RANGE_PROTO_RANDOM_FULLY);
	return add_expr(r, e);
}

/* verdict NFT_GOTO / NFT_JUMP to chain, or NFT_RETURN etc. with chain NULL. */
static bool expr_verdict(struct nftnl_rule *r, int verdict, const char *chain)
{
	struct nftnl_expr *e = nftnl_expr_alloc("immediate");

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
		nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT, verdict);
		if (chain)
			nftnl_expr_set_str(e, NFTNL_EXPR_IMM_CHAIN, chain);
	}
	return add_expr(r, e);
}

static bool expr_goto(struct nftnl_rule *r, const char *chain)
{
	return expr_verdict(r, NFT_GOTO, chain);
}

static bool expr_immediate(struct nftnl_rule *r, uint32_t dreg, const void *data, uint32_t len)
{
	struct nftnl_expr *e = nftnl_expr_alloc("immediate");

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, dreg);
		nftnl_expr_set(e, NFTNL_EXPR_IMM_DATA, data, len);
	}
	return add_expr(r, e);
}

/* ct state new: ct state => reg 1; reg 1 &= 0x8; reg 1 != 0 (as nft writes it). */
static bool expr_ct_state_new(struct nftnl_rule *r)
{
	struct nftnl_expr *ct = nftnl_expr_alloc("ct");
	struct nftnl_expr *bw, *cmp;
	uint32_t mask = 1u << 3, zero = 0; /* NF_CT_STATE_BIT(IP_CT_NEW) */

	if (ct) {
		nftnl_expr_set_u32(ct, NFTNL_EXPR_CT_KEY, NFT_CT_STATE);
		nftnl_expr_set_u32(ct, NFTNL_EXPR_CT_DREG, NFT_REG_1);
	}
	if (!add_expr(r, ct))
		return false;
	bw = nftnl_expr_alloc("bitwise");
	if (bw) {
		nftnl_expr_set_u32(bw, NFTNL_EXPR_BITWISE_SREG, NFT_REG_1);
		nftnl_expr_set_u32(bw, NFTNL_EXPR_BITWISE_DREG, NFT_REG_1);
		nftnl_expr_set_u32(bw, NFTNL_EXPR_BITWISE_LEN, sizeof(mask));
		nftnl_expr_set(bw, NFTNL_EXPR_BITWISE_MASK, &mask, sizeof(mask));
		nftnl_expr_set(bw, NFTNL_EXPR_BITWISE_XOR, &zero, sizeof(zero));
	}
	if (!add_expr(r, bw))
		return false;
	cmp = nftnl_expr_alloc("cmp");
	if (cmp) {
		nftnl_expr_set_u32(cmp, NFTNL_EXPR_CMP_SREG, NFT_REG_1);
		nftnl_expr_set_u32(cmp, NFTNL_EXPR_CMP_OP, NFT_CMP_NEQ);
		nftnl_expr_set(cmp, NFTNL_EXPR_CMP_DATA, &zero, sizeof(zero));
	}
	return add_expr(r, cmp);
}

/* limit name "..." / counter name "...": a reference to a named stateful object. */
static bool expr_objref(struct nftnl_rule *r, uint32_t type, const char *name)
{
	struct nftnl_expr *e = nftnl_expr_alloc("objref");

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_OBJREF_IMM_TYPE, type);
		nftnl_expr_set_str(e, NFTNL_EXPR_OBJREF_IMM_NAME, name);
	}
	return add_expr(r, e);
}

/* update @set { reg }: adds the key, or refreshes its timeout if present. */
static bool expr_dynset_update(struct nftnl_rule *r, uint32_t sreg, const char *set,
			       uint32_t set_id)
{
	struct nftnl_expr *e = nftnl_expr_alloc("dynset");

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_DYNSET_SREG_KEY, sreg);
		nftnl_expr_set_u32(e, NFTNL_EXPR_DYNSET_OP, NFT_DYNSET_OP_UPDATE);
		nftnl_expr_set_str(e, NFTNL_EXPR_DYNSET_SET_NAME, set);
		if (set_id)
			nftnl_expr_set_u32(e, NFTNL_EXPR_DYNSET_SET_ID, set_id);
	}
	return add_expr(r, e);
}

static bool expr_reject(struct nftnl_rule *r, uint32_t type, uint8_t code)
{
	struct nftnl_expr *e = nftnl_expr_alloc("reject");

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_REJECT_TYPE, type);
		nftnl_expr_set_u8(e, NFTNL_EXPR_REJECT_CODE, code);
	}
	return add_expr(r, e);
}

static bool expr_numgen_random(struct nftnl_rule *r, uint32_t dreg, uint32_t modulus,
			       uint32_t offset)
{
	struct nftnl_expr *e = nftnl_expr_alloc("numgen");

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_NG_DREG, dreg);
		nftnl_expr_set_u32(e, NFTNL_EXPR_NG_MODULUS, modulus);
		nftnl_expr_set_u32(e, NFTNL_EXPR_NG_TYPE, NFT_NG_RANDOM);
		nftnl_expr_set_u32(e, NFTNL_EXPR_NG_OFFSET, offset);
	}
	return add_expr(r, e);
}

static bool expr_dnat(struct nftnl_rule *r, uint32_t family, uint32_t addr_reg, uint32_t port_reg)
{
	struct nftnl_expr *e = nftnl_expr_alloc("nat");

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_TYPE, NFT_NAT_DNAT);
		nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_FAMILY, family);
		nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_REG_ADDR_MIN, addr_reg);
		nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_REG_PROTO_MIN, port_reg);
	}
	return add_expr(r, e);
}

/*
 * Loads "ip[6] daddr . meta l4proto . th dport" (or only the address) into
 * registers from NFT_REG_1 on, after "meta nfproto ipv4|ipv6".
 */
static bool expr_frontend_key(struct nftnl_rule *r, bool v6, bool with_port)
{
	/* A v4 address fills one 32-bit register, a v6 one a whole 16-byte register. */
	uint32_t proto_reg = v6 ? NFT_REG_2 : NFT_REG32_01;
	uint32_t port_reg = v6 ? NFT_REG32_05 : NFT_REG32_02;

	if (!expr_meta(r, NFT_META_NFPROTO, NFT_REG_1) ||
	    !expr_cmp_u8(r, NFT_REG_1, v6 ? NFPROTO_IPV6 : NFPROTO_IPV4) ||
	    !expr_payload(r, NFT_PAYLOAD_NETWORK_HEADER, v6 ? 24 : 16, v6 ? 16 : 4, NFT_REG_1))
		return false;
	if (!with_port)
		return true;
	return expr_meta(r, NFT_META_L4PROTO, proto_reg) &&
	       expr_payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, port_reg);
}

/*
 * The NodePort key "meta l4proto . th dport" into NFT_REG_1 on, after
 * "[fib daddr type local] ip daddr != 127.0.0.0/8" (ip6 daddr != ::1): as
 * kube-proxy, NodePorts are not served on loopback addresses.
 */
static bool expr_node_port_key(struct nftnl_rule *r, bool v6, bool fib_local)
{
	static const uint8_t loop6[16] = { [15] = 1 };
	const uint8_t mask4[4] = { 255, 0, 0, 0 }, zero4[4] = { 0 }, loop4[4] = { 127, 0, 0, 0 };

	if (!expr_meta(r, NFT_META_NFPROTO, NFT_REG_1) ||
	    !expr_cmp_u8(r, NFT_REG_1, v6 ? NFPROTO_IPV6 : NFPROTO_IPV4))
		return false;
	if (fib_local && !expr_fib_daddr_local(r))
		return false;
	if (!expr_payload(r, NFT_PAYLOAD_NETWORK_HEADER, v6 ? 24 : 16, v6 ? 16 : 4, NFT_REG_1))
		return false;
	if (v6 ? !expr_cmp(r, NFT_REG_1, NFT_CMP_NEQ, loop6, sizeof(loop6)) :
		 !expr_bitwise(r, NFT_REG_1, mask4, zero4, 4) ||
			    !expr_cmp(r, NFT_REG_1, NFT_CMP_NEQ, loop4, sizeof(loop4)))
		return false;
	return expr_meta(r, NFT_META_L4PROTO, NFT_REG_1) &&
	       expr_payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, NFT_REG32_01);
}

/* ---- rules ---- */

static struct nftnl_rule *rule_new(const char *chain)
{
	struct nftnl_rule *r = nftnl_rule_alloc();

	if (!r)
		return NULL;
	nftnl_rule_set_u32(r, NFTNL_RULE_FAMILY, NFPROTO_INET);
	nftnl_rule_set_str(r, NFTNL_RULE_TABLE, NFT_TABLE_NAME);
	nftnl_rule_set_str(r, NFTNL_RULE_CHAIN, chain);
	return r;
}

/* Appends rule r (freed here); ok false means building an expression failed. */
static void rule_msg(struct nft_batch *b, struct nftnl_rule *r, bool ok,
		     const struct nft_msg_ref *ref)
{
	struct nlmsghdr *nlh;

	if (!r || !ok) {
		batch_fail(b, -ENOMEM);
		goto out;
	}
	nlh = msg_start(b, NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND, ref);
	if (nlh) {
		nftnl_rule_nlmsg_build_payload(nlh, r);
		msg_end(b);
	}
out:
	if (r)
		nftnl_rule_free(r);
}

/*
 * nat-*: ip daddr . meta l4proto . th dport vmap @services4 (and the v6
 * twin), then for the node's own addresses
 * fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @nodeports4:
 * a frontend on a specific address wins over a NodePort, as in kube-proxy.
 */
static void nat_lookup_rules(struct nft_batch *b, const char *chain, bool v6)
{
	struct nft_msg_ref ref = { .what = NFT_WHAT_BASE_RULE };
	struct nftnl_rule *r = rule_new(chain);
	const char *map = nft_set_name(v6 ? NFT_SET_SERVICES6 : NFT_SET_SERVICES4);
	bool ok = r && expr_frontend_key(r, v6, true) &&
		  expr_lookup(r, NFT_REG_1, map, 0, true, NFT_REG_VERDICT);

	rule_msg(b, r, ok, &ref);
	r = rule_new(chain);
	map = nft_set_name(v6 ? NFT_SET_NODEPORTS6 : NFT_SET_NODEPORTS4);
	ok = r && expr_node_port_key(r, v6, true) &&
	     expr_lookup(r, NFT_REG_1, map, 0, true, NFT_REG_VERDICT);
	rule_msg(b, r, ok, &ref);
}

/*
 * nat-postrouting: meta mark & 0x4000 != 0 meta mark set meta mark & ~0x4000
 * masquerade fully-random. The bit is cleared so it does not leak into
 * whatever handles the packet next (tunnels, policy routing).
 */
static void masquerade_rule(struct nft_batch *b, const char *chain)
{
	struct nft_msg_ref ref = { .what = NFT_WHAT_BASE_RULE };
	struct nftnl_rule *r = rule_new(chain);
	bool ok = r && expr_mark_has(r, NFT_MASQ_MARK) && expr_mark_update(r, ~NFT_MASQ_MARK, 0) &&
		  expr_masquerade(r);

	rule_msg(b, r, ok, &ref);
}

/*
 * filter-prerouting / filter-output-pre-dnat, before DNAT (the packet still
 * carries the LB address): ct state new ip daddr . meta l4proto . th dport
 * vmap @firewall-ips4. As kube-proxy, only new flows are checked: flows
 * admitted before a range change keep going.
 */
static void firewall_lookup_rule(struct nft_batch *b, const char *chain, bool v6)
{
	struct nft_msg_ref ref = { .what = NFT_WHAT_BASE_RULE };
	struct nftnl_rule *r = rule_new(chain);
	const char *map = nft_set_name(v6 ? NFT_SET_FIREWALL6 : NFT_SET_FIREWALL4);
	bool ok = r && expr_ct_state_new(r) && expr_frontend_key(r, v6, true) &&
		  expr_lookup(r, NFT_REG_1, map, 0, true, NFT_REG_VERDICT);

	rule_msg(b, r, ok, &ref);
}

/*
 * NodePorts without endpoints: [ct state new fib daddr type local] ip daddr
 * != 127.0.0.0/8 meta l4proto . th dport vmap @no-endpoint-nodeports4.
 * filter-input needs no fib (every packet there is for this node);
 * filter-output checks new flows only, to pay the route lookup once.
 */
static void node_port_filter_rule(struct nft_batch *b, const char *chain, bool v6, bool output)
{
	struct nft_msg_ref ref = { .what = NFT_WHAT_BASE_RULE };
	struct nftnl_rule *r = rule_new(chain);
	const char *map =
		nft_set_name(v6 ? NFT_SET_NO_ENDPOINT_NODEPORTS6 : NFT_SET_NO_ENDPOINT_NODEPORTS4);
	bool ok = r && (!output || expr_ct_state_new(r)) && expr_node_port_key(r, v6, output) &&
		  expr_lookup(r, NFT_REG_1, map, 0, true, NFT_REG_VERDICT);

	rule_msg(b, r, ok, &ref);
}

/*
 * filter-*: frontends without endpoints get their verdict from
 * no-endpoints; any other packet still addressed to a service address
 * (an unknown port: served ones were DNATed before) is rejected.
 */
static void filter_rules(struct nft_batch *b, const char *chain, bool v6)
{
	struct nft_msg_ref ref = { .what = NFT_WHAT_BASE_RULE };
	struct nftnl_rule *r = rule_new(chain);
	bool ok = r && expr_frontend_key(r, v6, true) &&
		  expr_lookup(r, NFT_REG_1,
			      nft_set_name(v6 ? NFT_SET_NO_ENDPOINTS6 : NFT_SET_NO_ENDPOINTS4), 0,
			      true, NFT_REG_VERDICT);

	rule_msg(b, r, ok, &ref);
	r = rule_new(chain);
	ok = r && expr_frontend_key(r, v6, false) &&
	     expr_lookup(r, NFT_REG_1, nft_set_name(v6 ? NFT_SET_ADDRS6 : NFT_SET_ADDRS4), 0, false,
			 0) &&
	     expr_goto(r, NFT_REJECT_CHAIN);
	rule_msg(b, r, ok, &ref);
}

/* reject-chain: meta l4proto tcp reject with tcp reset; reject (icmpx port-unreachable). */
static void reject_chain(struct nft_batch *b)
{
	struct nft_msg_ref ref = { .what = NFT_WHAT_BASE_CHAIN };
	struct nftnl_rule *r;
	bool ok;

	chain_msg(b, chain_new(NFT_REJECT_CHAIN), NFT_MSG_NEWCHAIN, NLM_F_CREATE, &ref);
	ref.what = NFT_WHAT_BASE_RULE;
	r = rule_new(NFT_REJECT_CHAIN);
	ok = r && expr_meta(r, NFT_META_L4PROTO, NFT_REG_1) &&
	     expr_cmp_u8(r, NFT_REG_1, IPPROTO_TCP) && expr_reject(r, NFT_REJECT_TCP_RST, 0);
	rule_msg(b, r, ok, &ref);
	r = rule_new(NFT_REJECT_CHAIN);
	ok = r && expr_reject(r, NFT_REJECT_ICMPX_UNREACH, NFT_REJECT_ICMPX_PORT_UNREACH);
	rule_msg(b, r, ok, &ref);
}

/* ---- sets ---- */

static bool set_is_v6(int which)
{
	return named_sets[which].v6;
}

static void named_set_add(struct nft_batch *b, enum nft_named_set which)
{
	struct nft_msg_ref ref = { .what = NFT_WHAT_SET_ADD, .set = which };
	bool v6 = set_is_v6(which);
	bool is_map = named_sets[which].is_map;
	uint32_t addr_type = v6 ? NFT_TYPE_IP6ADDR : NFT_TYPE_IPADDR;
	struct nftnl_set *s = nftnl_set_alloc();
	struct nlmsghdr *nlh;

	if (!s)
		return batch_fail(b, -ENOMEM);
	nftnl_set_set_u32(s, NFTNL_SET_FAMILY, NFPROTO_INET);
	nftnl_set_set_str(s, NFTNL_SET_TABLE, NFT_TABLE_NAME);
	nftnl_set_set_str(s, NFTNL_SET_NAME, nft_set_name(which));
	nftnl_set_set_u32(s, NFTNL_SET_ID, ++b->set_id);
	if (is_map && named_sets[which].key == KEY_PROTO_PORT) {
		nftnl_set_set_u32(s, NFTNL_SET_FLAGS, NFT_SET_MAP);
		nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE,
				  NFT_CONCAT2(NFT_TYPE_INET_PROTOCOL, NFT_TYPE_INET_SERVICE));
		nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, KEY_LEN_NODE_PORT);
		nftnl_set_set_u32(s, NFTNL_SET_DATA_TYPE, NFT_DATA_VERDICT);
		nftnl_set_set_u32(s, NFTNL_SET_DATA_LEN, 0);
	} else if (is_map) {
		nftnl_set_set_u32(s, NFTNL_SET_FLAGS, NFT_SET_MAP);
		nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE,
				  NFT_CONCAT3(addr_type, NFT_TYPE_INET_PROTOCOL,
					      NFT_TYPE_INET_SERVICE));
		nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, v6 ? KEY_LEN6 : KEY_LEN4);
		nftnl_set_set_u32(s, NFTNL_SET_DATA_TYPE, NFT_DATA_VERDICT);
		nftnl_set_set_u32(s, NFTNL_SET_DATA_LEN, 0);
	} else {
		nftnl_set_set_u32(s, NFTNL_SET_FLAGS, 0);
		nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE, addr_type);
		nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, v6 ? 16 : 4);
	}
	nlh = msg_start(b, NFT_MSG_NEWSET, NLM_F_CREATE, &ref);
	if (nlh) {
		nftnl_set_nlmsg_build_payload(nlh, s);
		msg_end(b);
	}
	nftnl_set_free(s);
}

void nft_msg_base_chains(struct nft_batch *b)
{
	for (size_t i = 0; i < sizeof(firewall_chains) / sizeof(firewall_chains[0]); i++) {
		base_chain_add(b, &firewall_chains[i]);
		firewall_lookup_rule(b, firewall_chains[i].name, false);
		firewall_lookup_rule(b, firewall_chains[i].name, true);
	}
	for (size_t i = 0; i < sizeof(nat_chains) / sizeof(nat_chains[0]); i++) {
		base_chain_add(b, &nat_chains[i]);
		nat_lookup_rules(b, nat_chains[i].name, false);
		nat_lookup_rules(b, nat_chains[i].name, true);
	}
	base_chain_add(b, &nat_postrouting);
	masquerade_rule(b, nat_postrouting.name);
	for (size_t i = 0; i < sizeof(filter_chains) / sizeof(filter_chains[0]); i++) {
		const struct base_chain *fc = &filter_chains[i];

		base_chain_add(b, fc);
		filter_rules(b, fc->name, false);
		filter_rules(b, fc->name, true);
		if (fc->hook == NF_INET_LOCAL_IN || fc->hook == NF_INET_LOCAL_OUT) {
			node_port_filter_rule(b, fc->name, false, fc->hook == NF_INET_LOCAL_OUT);
			node_port_filter_rule(b, fc->name, true, fc->hook == NF_INET_LOCAL_OUT);
		}
	}
}

/* Forward: the backend maps are declared with the DNAT rule below. */
static void backends_map_add(struct nft_batch *b, bool v6, unsigned int shard);

void nft_msg_skeleton(struct nft_batch *b)
{
	for (int i = 0; i < NFT_NAMED_SETS; i++)
		named_set_add(b, i);
	for (unsigned int shard = 0; shard < NFT_BACKEND_SHARDS; shard++) {
		backends_map_add(b, false, shard);
		backends_map_add(b, true, shard);
	}
	reject_chain(b);
	nft_msg_base_chains(b);
}

/* ---- a served frontend's DNAT rule ---- */

/* Writes one backend as the anonymous map's data: address . port, each field 4-byte padded. */
static size_t endpoint_data(const struct backend *be, uint8_t *out)
{
	size_t alen = be->addr.family == AF_INET ? 4 : 16;
	uint16_t port = htons(be->port);

	memset(out, 0, alen + 4);
	memcpy(out, be->addr.bytes, alen);
	memcpy(out + alen, &port, sizeof(port));
	return alen + 4;
}

/* An empty set object that names a set (and its transaction id) for element messages. */
static struct nftnl_set *elems_set_new(const char *name, uint32_t set_id)
{
	struct nftnl_set *s = nftnl_set_alloc();

	if (!s)
		return NULL;
	nftnl_set_set_u32(s, NFTNL_SET_FAMILY, NFPROTO_INET);
	nftnl_set_set_str(s, NFTNL_SET_TABLE, NFT_TABLE_NAME);
	nftnl_set_set_str(s, NFTNL_SET_NAME, name);
	if (set_id)
		nftnl_set_set_u32(s, NFTNL_SET_ID, set_id);
	return s;
}

/*
 * Writes the elements of s as one message. Each element is nested as
 * NFTA_LIST_ELEM, as nft does (libnftnl's own list builder numbers them
 * 1, 2, 3..., which the kernel accepts but libnftnl's parser refuses).
 */
static void elems_msg(struct nft_batch *b, struct nftnl_set *s, uint16_t type,
		      const struct nft_msg_ref *ref)
{
	uint16_t flags = type == NFT_MSG_NEWSETELEM ? NLM_F_CREATE | NLM_F_EXCL : 0;
	struct nlmsghdr *nlh = msg_start(b, type, flags, ref);
	struct nftnl_set_elems_iter *it;
	struct nftnl_set_elem *e;
	struct nlattr *list;

	if (!nlh)
		return;
	it = nftnl_set_elems_iter_create(s);
	if (!it)
		return batch_fail(b, -ENOMEM);
	mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_TABLE, NFT_TABLE_NAME);
	mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_SET, nftnl_set_get_str(s, NFTNL_SET_NAME));
	if (nftnl_set_is_set(s, NFTNL_SET_ID))
		mnl_attr_put_u32(nlh, NFTA_SET_ELEM_LIST_SET_ID,
				 htonl(nftnl_set_get_u32(s, NFTNL_SET_ID)));
	list = mnl_attr_nest_start(nlh, NFTA_SET_ELEM_LIST_ELEMENTS);
	for (e = nftnl_set_elems_iter_next(it); e; e = nftnl_set_elems_iter_next(it))
		nftnl_set_elem_nlmsg_build(nlh, e, NFTA_LIST_ELEM);
	mnl_attr_nest_end(nlh, list);
	nftnl_set_elems_iter_destroy(it);
	msg_end(b);
}

/*
 * backends4/6-N: a 32-bit host-order index (numgen's value) -> address . port.
 * Not constant: ranges come and go with incremental updates. A named map
 * is bound by reference, so adding thousands of rules that look it up costs
 * no walk of the transaction per rule (an anonymous map per rule did).
 */
unsigned int nft_fe_backend_shard(const struct frontend_key *key)
{
	size_t alen = key->addr.family == AF_INET6 ? 16 : 4;
	uint32_t h = 2166136261u; /* FNV-1a of address, protocol, port */

	for (size_t i = 0; i < alen; i++)
		h = (h ^ key->addr.bytes[i]) * 16777619u;
	h = (h ^ key->proto) * 16777619u;
	h = (h ^ (key->port >> 8)) * 16777619u;
	h = (h ^ (key->port & 0xff)) * 16777619u;
	return h % NFT_BACKEND_SHARDS;
}

void nft_backends_map_name(bool v6, unsigned int shard, char *buf, size_t len)
{
	snprintf(buf, len, "%s-%u", v6 ? NFT_BACKENDS6 : NFT_BACKENDS4, shard);
}

static void backends_map_add(struct nft_batch *b, bool v6, unsigned int shard)
{
	struct nft_msg_ref ref = { .what = NFT_WHAT_BACKENDS_MAP_ADD, .set = v6 };
	struct nftnl_udata_buf *udata = nftnl_udata_buf_alloc(64);
	struct nftnl_set *s = nftnl_set_alloc();
	char name[NFT_BACKENDS_NAME_MAX];
	struct nlmsghdr *nlh;

	if (!s || !udata) {
		batch_fail(b, -ENOMEM);
		goto out;
	}
	nftnl_set_set_u32(s, NFTNL_SET_FAMILY, NFPROTO_INET);
	nftnl_set_set_str(s, NFTNL_SET_TABLE, NFT_TABLE_NAME);
	nft_backends_map_name(v6, shard, name, sizeof(name));
	nftnl_set_set_str(s, NFTNL_SET_NAME, name);
	nftnl_set_set_u32(s, NFTNL_SET_ID, ++b->set_id);
	nftnl_set_set_u32(s, NFTNL_SET_FLAGS, NFT_SET_MAP);
	/* "integer" alone has no width for nft to print a named map with: 0 : ... */
	nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE, NFT_TYPE_MARK);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, sizeof(uint32_t));
	nftnl_set_set_u32(s, NFTNL_SET_DATA_TYPE,
			  NFT_CONCAT2(v6 ? NFT_TYPE_IP6ADDR : NFT_TYPE_IPADDR,
				      NFT_TYPE_INET_SERVICE));
	nftnl_set_set_u32(s, NFTNL_SET_DATA_LEN, v6 ? ENDPOINT_LEN6 : ENDPOINT_LEN4);
	/* Tells nft the keys are host order, so it prints 0, 1, 2... */
	nftnl_udata_put_u32(udata, NFTNL_UDATA_SET_KEYBYTEORDER, NFT_BYTEORDER_HOST);
	nftnl_set_set_data(s, NFTNL_SET_USERDATA, nftnl_udata_buf_data(udata),
			   nftnl_udata_buf_len(udata));
	nlh = msg_start(b, NFT_MSG_NEWSET, NLM_F_CREATE, &ref);
	if (nlh) {
		nftnl_set_nlmsg_build_payload(nlh, s);
		msg_end(b);
	}
out:
	if (s)
		nftnl_set_free(s);
	if (udata)
		nftnl_udata_buf_free(udata);
}

void nft_msg_fe_backends(struct nft_batch *b, uint16_t msg_type, const struct frontend *fe,
			 uint32_t base)
{
	struct nft_msg_ref ref = {
		.what = msg_type == NFT_MSG_NEWSETELEM ? NFT_WHAT_BACKENDS_ADD :
							 NFT_WHAT_BACKENDS_DEL,
		.has_key = true,
		.key = fe->key,
	};
	char map[NFT_BACKENDS_NAME_MAX];
	uint32_t index = base;

	nft_backends_map_name(fe->key.addr.family == AF_INET6, nft_fe_backend_shard(&fe->key), map,
			      sizeof(map));
	for (size_t i = 0; i < fe->n_backends && !b->err;) {
		struct nftnl_set *chunk = elems_set_new(map, 0);
		size_t in_chunk = 0;

		if (!chunk)
			return batch_fail(b, -ENOMEM);
		for (; i < fe->n_backends && in_chunk < NFT_ELEMS_PER_MSG; i++) {
			const struct backend *be = &fe->backends[i];
			struct nftnl_set_elem *e;
			uint8_t data[ENDPOINT_LEN6];

			if (be->addr.family != fe->key.addr.family)
				continue;
			e = nftnl_set_elem_alloc();
			if (!e) {
				batch_fail(b, -ENOMEM);
				break;
			}
			nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, &index, sizeof(index));
			/* A delete names the key only. */
			if (msg_type == NFT_MSG_NEWSETELEM)
				nftnl_set_elem_set(e, NFTNL_SET_ELEM_DATA, data,
						   endpoint_data(be, data));
			nftnl_set_elem_add(chunk, e);
			index++;
			in_chunk++;
		}
		ref.count = in_chunk;
		if (in_chunk)
			elems_msg(b, chunk, msg_type, &ref);
		nftnl_set_free(chunk);
	}
}

void nft_msg_fe_dnat_rule(struct nft_batch *b, const struct frontend *fe, uint32_t base)
{
	struct nft_msg_ref ref = { .what = NFT_WHAT_FE_RULE, .has_key = true, .key = fe->key };
	bool v6 = fe->key.addr.family == AF_INET6;
	size_t n = nft_fe_usable_backends(fe);
	char name[NFT_CHAIN_NAME_MAX], map[NFT_BACKENDS_NAME_MAX];
	struct nftnl_rule *r;
	bool ok;

	if (b->err)
		return;
	if (!n) /* callers classify first; a DNAT to nothing must never be written */
		return batch_fail(b, -EINVAL);
	nft_fe_chain_name(&fe->key, name, sizeof(name));
	nft_backends_map_name(v6, nft_fe_backend_shard(&fe->key), map, sizeof(map));
	/* Rate limit and affinity rules come before this one: nft_msg_fe_rules. */
	r = rule_new(name);
	/* "meta l4proto P" first: nft accepts a port mapping only after an L4 match. */
	ok = r && expr_meta(r, NFT_META_L4PROTO, NFT_REG_1) &&
	     expr_cmp_u8(r, NFT_REG_1, fe->key.proto) &&
	     expr_numgen_random(r, NFT_REG_1, n, base) &&
	     expr_lookup(r, NFT_REG_1, map, 0, true, NFT_REG_1) &&
	     expr_dnat(r, v6 ? NFPROTO_IPV6 : NFPROTO_IPV4, NFT_REG_1,
		       v6 ? NFT_REG_2 : NFT_REG32_01);
	rule_msg(b, r, ok, &ref);
}

/* ---- session affinity: one chain and one client set per endpoint ---- */

/* Most clients one endpoint remembers; a full set only stops refreshing, the DNAT still runs. */
#define NFT_AFFINITY_SET_SIZE 65536

bool nft_fe_has_affinity(const struct frontend *fe)
{
	return fe->affinity_timeout && nft_fe_classify(fe) == NFT_FE_SERVE;
}

bool nft_fe_has_rate(const struct frontend *fe)
{
	return fe->service && fe->service[0] && fe->rate.count;
}

static void ep_name(const char *prefix, const struct frontend_key *key, const struct backend *be,
		    char *buf, size_t len)
{
	char fe[NFT_CHAIN_NAME_MAX], addr[IP_ADDR_STRLEN];

	nft_fe_chain_name(key, fe, sizeof(fe));
	ip_addr_format(&be->addr, addr);
	for (char *c = addr; *c; c++)
		if (*c == ':')
			*c = '_';
	/* fe + 3 skips "fe-": ep-10.96.0.10-tcp-80-10.1.0.1-8080 */
	snprintf(buf, len, "%s-%s-%s-%u", prefix, fe + 3, addr, be->port);
}

void nft_ep_chain_name(const struct frontend_key *key, const struct backend *be, char *buf,
		       size_t len)
{
	ep_name("ep", key, be, buf, len);
}

void nft_ep_set_name(const struct frontend_key *key, const struct backend *be, char *buf,
		     size_t len)
{
	ep_name("aff", key, be, buf, len);
}

/* Loads the packet's source address into NFT_REG_1, after "meta nfproto" so nft prints ip saddr. */
static bool expr_saddr(struct nftnl_rule *r, bool v6)
{
	return expr_meta(r, NFT_META_NFPROTO, NFT_REG_1) &&
	       expr_cmp_u8(r, NFT_REG_1, v6 ? NFPROTO_IPV6 : NFPROTO_IPV4) &&
	       expr_payload(r, NFT_PAYLOAD_NETWORK_HEADER, v6 ? 8 : 12, v6 ? 16 : 4, NFT_REG_1);
}

static uint32_t ep_set_msg(struct nft_batch *b, const struct frontend *fe, const struct backend *be,
			   bool add)
{
	struct nft_msg_ref ref = { .what = add ? NFT_WHAT_EP_SET_ADD : NFT_WHAT_EP_SET_DEL,
				   .has_key = true,
				   .key = fe->key,
				   .backend = *be };
	bool v6 = fe->key.addr.family == AF_INET6;
	struct nftnl_set *s = nftnl_set_alloc();
	char name[NFT_EP_NAME_MAX];
	struct nlmsghdr *nlh;
	uint32_t set_id = 0;

	if (!s) {
		batch_fail(b, -ENOMEM);
		return 0;
	}
	nft_ep_set_name(&fe->key, be, name, sizeof(name));
	nftnl_set_set_u32(s, NFTNL_SET_FAMILY, NFPROTO_INET);
	nftnl_set_set_str(s, NFTNL_SET_TABLE, NFT_TABLE_NAME);
	nftnl_set_set_str(s, NFTNL_SET_NAME, name);
	if (add) {
		set_id = ++b->set_id;
		nftnl_set_set_u32(s, NFTNL_SET_ID, set_id);
		/* dynamic (updated from the packet path) with per-element expiry */
		nftnl_set_set_u32(s, NFTNL_SET_FLAGS, NFT_SET_TIMEOUT | NFT_SET_EVAL);
		nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE, v6 ? NFT_TYPE_IP6ADDR : NFT_TYPE_IPADDR);
		nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, v6 ? 16 : 4);
		nftnl_set_set_u64(s, NFTNL_SET_TIMEOUT, (uint64_t)fe->affinity_timeout * 1000);
		nftnl_set_set_u32(s, NFTNL_SET_DESC_SIZE, NFT_AFFINITY_SET_SIZE);
	}
	nlh = msg_start(b, add ? NFT_MSG_NEWSET : NFT_MSG_DELSET,
			add ? NLM_F_CREATE | NLM_F_EXCL : 0, &ref);
	if (nlh) {
		nftnl_set_nlmsg_build_payload(nlh, s);
		msg_end(b);
	}
	nftnl_set_free(s);
	return set_id;
}

void nft_msg_ep_add(struct nft_batch *b, const struct frontend *fe, const struct backend *be)
{
	struct nft_msg_ref ref = {
		.what = NFT_WHAT_EP_CHAIN_ADD, .has_key = true, .key = fe->key, .backend = *be
	};
	bool v6 = fe->key.addr.family == AF_INET6;
	char chain[NFT_EP_NAME_MAX], set[NFT_EP_NAME_MAX];
	uint8_t addr[16];
	uint16_t port = htons(be->port);
	struct nftnl_rule *r;
	uint32_t set_id;
	bool ok;

	if (be->addr.family != fe->key.addr.family)
		return;
	set_id = ep_set_msg(b, fe, be, true);
	nft_ep_chain_name(&fe->key, be, chain, sizeof(chain));
	nft_ep_set_name(&fe->key, be, set, sizeof(set));
	chain_msg(b, chain_new(chain), NFT_MSG_NEWCHAIN, NLM_F_CREATE | NLM_F_EXCL, &ref);

	/* Remember (or refresh) the client, then DNAT: two rules, so a full set still DNATs. */
	ref.what = NFT_WHAT_EP_RULE;
	r = rule_new(chain);
	ok = r && expr_saddr(r, v6) && expr_dynset_update(r, NFT_REG_1, set, set_id);
	rule_msg(b, r, ok, &ref);
	memcpy(addr, be->addr.bytes, v6 ? 16 : 4);
	r = rule_new(chain);
	ok = r && expr_meta(r, NFT_META_L4PROTO, NFT_REG_1) &&
	     expr_cmp_u8(r, NFT_REG_1, fe->key.proto) &&
	     expr_immediate(r, NFT_REG_1, addr, v6 ? 16 : 4) &&
	     expr_immediate(r, v6 ? NFT_REG_2 : NFT_REG32_01, &port, sizeof(port)) &&
	     expr_dnat(r, v6 ? NFPROTO_IPV6 : NFPROTO_IPV4, NFT_REG_1,
		       v6 ? NFT_REG_2 : NFT_REG32_01);
	rule_msg(b, r, ok, &ref);
}

void nft_msg_ep_del(struct nft_batch *b, const struct frontend *fe, const struct backend *be)
{
	struct nft_msg_ref ref = {
		.what = NFT_WHAT_EP_CHAIN_DEL, .has_key = true, .key = fe->key, .backend = *be
	};
	char chain[NFT_EP_NAME_MAX];

	if (be->addr.family != fe->key.addr.family)
		return;
	/* The chain's update rule holds the set: chain first. */
	nft_ep_chain_name(&fe->key, be, chain, sizeof(chain));
	chain_msg(b, chain_new(chain), NFT_MSG_DELCHAIN, 0, &ref);
	ep_set_msg(b, fe, be, false);
}

/* numgen random mod N vmap { 0 : goto ep-..., ... }: the anonymous verdict map and the rule. */
static void fe_pick_rule(struct nft_batch *b, const struct frontend *fe, const char *fe_chain,
			 size_t n)
{
	struct nft_msg_ref ref = { .what = NFT_WHAT_FE_PICK_RULE, .has_key = true, .key = fe->key };
	struct nftnl_udata_buf *udata = nftnl_udata_buf_alloc(64);
	struct nftnl_set *s = nftnl_set_alloc();
	uint32_t set_id = ++b->set_id, index = 0;
	struct nftnl_rule *r;
	struct nlmsghdr *nlh;
	char map[32];
	bool ok;

	if (!s || !udata) {
		batch_fail(b, -ENOMEM);
		goto out;
	}
	snprintf(map, sizeof(map), "__map_%u", ++b->map_serial);
	nftnl_set_set_u32(s, NFTNL_SET_FAMILY, NFPROTO_INET);
	nftnl_set_set_str(s, NFTNL_SET_TABLE, NFT_TABLE_NAME);
	nftnl_set_set_str(s, NFTNL_SET_NAME, map);
	nftnl_set_set_u32(s, NFTNL_SET_ID, set_id);
	nftnl_set_set_u32(s, NFTNL_SET_FLAGS, NFT_SET_ANONYMOUS | NFT_SET_CONSTANT | NFT_SET_MAP);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE, NFT_TYPE_INTEGER);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, sizeof(uint32_t));
	nftnl_set_set_u32(s, NFTNL_SET_DATA_TYPE, NFT_DATA_VERDICT);
	nftnl_set_set_u32(s, NFTNL_SET_DATA_LEN, 0);
	nftnl_set_set_u32(s, NFTNL_SET_DESC_SIZE, n);
	nftnl_udata_put_u32(udata, NFTNL_UDATA_SET_KEYBYTEORDER, NFT_BYTEORDER_HOST);
	nftnl_set_set_data(s, NFTNL_SET_USERDATA, nftnl_udata_buf_data(udata),
			   nftnl_udata_buf_len(udata));
	nlh = msg_start(b, NFT_MSG_NEWSET, NLM_F_CREATE, &ref);
	if (!nlh)
		goto out;
	nftnl_set_nlmsg_build_payload(nlh, s);
	msg_end(b);
	nftnl_set_free(s);
	s = NULL;

	for (size_t i = 0; i < fe->n_backends && !b->err;) {
		struct nftnl_set *chunk = elems_set_new(map, set_id);
		size_t in_chunk = 0;

		if (!chunk) {
			batch_fail(b, -ENOMEM);
			break;
		}
		for (; i < fe->n_backends && in_chunk < NFT_ELEMS_PER_MSG; i++) {
			struct nftnl_set_elem *e;
			char ep[NFT_EP_NAME_MAX];

			if (fe->backends[i].addr.family != fe->key.addr.family)
				continue;
			e = nftnl_set_elem_alloc();
			if (!e) {
				batch_fail(b, -ENOMEM);
				break;
			}
			nft_ep_chain_name(&fe->key, &fe->backends[i], ep, sizeof(ep));
			nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, &index, sizeof(index));
			nftnl_set_elem_set_u32(e, NFTNL_SET_ELEM_VERDICT, NFT_GOTO);
			nftnl_set_elem_set_str(e, NFTNL_SET_ELEM_CHAIN, ep);
			nftnl_set_elem_add(chunk, e);
			index++;
			in_chunk++;
		}
		if (in_chunk)
			elems_msg(b, chunk, NFT_MSG_NEWSETELEM, &ref);
		nftnl_set_free(chunk);
	}

	r = rule_new(fe_chain);
	ok = r && expr_numgen_random(r, NFT_REG_1, n, 0) &&
	     expr_lookup(r, NFT_REG_1, map, set_id, true, NFT_REG_VERDICT);
	rule_msg(b, r, ok, &ref);
out:
	if (s)
		nftnl_set_free(s);
	if (udata)
		nftnl_udata_buf_free(udata);
}

void nft_msg_fe_rules(struct nft_batch *b, const struct frontend *fe, uint32_t base)
{
	struct nft_msg_ref ref = { .has_key = true, .key = fe->key };
	bool v6 = fe->key.addr.family == AF_INET6;
	size_t n = nft_fe_usable_backends(fe);
	char name[NFT_CHAIN_NAME_MAX];
	struct nftnl_rule *r;
	bool ok;

	if (b->err)
		return;
	if (!n)
		return batch_fail(b, -EINVAL);
	nft_fe_chain_name(&fe->key, name, sizeof(name));
	if (nft_fe_has_rate(fe)) {
		char svc[NFT_OBJ_NAME_MAX];

		/* New flows only: the bucket counts connections, not packets. */
		ref.what = NFT_WHAT_FE_LIMIT_RULE;
		if (!nft_svc_name(NFT_SVC_CHAIN, fe->service, svc, sizeof(svc)))
			return batch_fail(b, -ENAMETOOLONG);
		r = rule_new(name);
		ok = r && expr_ct_state_new(r) && expr_verdict(r, NFT_JUMP, svc);
		rule_msg(b, r, ok, &ref);
	}
	if (nft_fe_masquerades(fe)) {
		/* externalTrafficPolicy Cluster: nat-postrouting masquerades the flow. */
		ref.what = NFT_WHAT_FE_MASQ_RULE;
		r = rule_new(name);
		ok = r && expr_mark_update(r, ~NFT_MASQ_MARK, NFT_MASQ_MARK);
		rule_msg(b, r, ok, &ref);
	}
	if (!nft_fe_has_affinity(fe))
		return nft_msg_fe_dnat_rule(b, fe, base);
	/* A known client goes back to its endpoint, as long as that endpoint is listed. */
	ref.what = NFT_WHAT_FE_AFFINITY_RULE;
	for (size_t i = 0; i < fe->n_backends; i++) {
		char set[NFT_EP_NAME_MAX], ep[NFT_EP_NAME_MAX];

		if (fe->backends[i].addr.family != fe->key.addr.family)
			continue;
		nft_ep_set_name(&fe->key, &fe->backends[i], set, sizeof(set));
		nft_ep_chain_name(&fe->key, &fe->backends[i], ep, sizeof(ep));
		r = rule_new(name);
		ok = r && expr_saddr(r, v6) && expr_lookup(r, NFT_REG_1, set, 0, false, 0) &&
		     expr_goto(r, ep);
		rule_msg(b, r, ok, &ref);
	}
	fe_pick_rule(b, fe, name, n);
}

/* ---- per-Service rate limit ---- */

static const char *const svc_prefixes[] = {
	[NFT_SVC_LIMIT] = "rate.",
	[NFT_SVC_ADMITTED] = "admitted.",
	[NFT_SVC_LIMITED] = "limited.",
	[NFT_SVC_CHAIN] = "limit.",
};

bool nft_svc_name(enum nft_svc_name which, const char *service, char *buf, size_t len)
{
	/* Namespaces and Service names have no dots: "ns/name" -> "ns.name" is reversible. */
	int n = snprintf(buf, len, "%s%s", svc_prefixes[which], service);
	char *slash;

	if (n < 0 || (size_t)n >= len || n >= NFT_OBJ_NAME_MAX)
		return false;
	slash = strchr(buf + strlen(svc_prefixes[which]), '/');
	if (slash)
		*slash = '.';
	return true;
}

int nft_svc_parse_name(const char *name, char *service, size_t len)
{
	for (int i = 0; i < (int)(sizeof(svc_prefixes) / sizeof(svc_prefixes[0])); i++) {
		size_t plen = strlen(svc_prefixes[i]);
		char *dot;

		if (strncmp(name, svc_prefixes[i], plen))
			continue;
		if ((size_t)snprintf(service, len, "%s", name + plen) >= len)
			return -1;
		dot = strchr(service, '.');
		if (!dot || dot == service || !dot[1] || strchr(dot + 1, '.'))
			return -1;
		*dot = '/';
		return i;
	}
	return -1;
}

uint32_t nft_limit_kernel_burst(const struct rate_limit *rl)
{
	uint64_t cost = (uint64_t)rl->period * 1000000000ull / rl->count;
	uint64_t max_burst = UINT64_MAX / (cost ? cost : 1);

	return rl->burst > max_burst ? (uint32_t)max_burst : rl->burst;
}

static struct nftnl_obj *svc_obj_new(enum nft_svc_name which, const char *service, uint32_t type)
{
	struct nftnl_obj *o = nftnl_obj_alloc();
	char name[NFT_OBJ_NAME_MAX];

	if (!o)
		return NULL;
	if (!nft_svc_name(which, service, name, sizeof(name))) {
		nftnl_obj_free(o);
		return NULL;
	}
	nftnl_obj_set_u32(o, NFTNL_OBJ_FAMILY, NFPROTO_INET);
	nftnl_obj_set_str(o, NFTNL_OBJ_TABLE, NFT_TABLE_NAME);
	nftnl_obj_set_str(o, NFTNL_OBJ_NAME, name);
	nftnl_obj_set_u32(o, NFTNL_OBJ_TYPE, type);
	return o;
}

static void obj_msg(struct nft_batch *b, struct nftnl_obj *o, uint16_t type, uint16_t flags,
		    const struct nft_msg_ref *ref)
{
	struct nlmsghdr *nlh;

	if (!o)
		return batch_fail(b, b->err ? b->err : -ENAMETOOLONG);
	nlh = msg_start(b, type, flags, ref);
	if (nlh) {
		nftnl_obj_nlmsg_build_payload(nlh, o);
		msg_end(b);
	}
	nftnl_obj_free(o);
}

static void svc_limit_obj_add(struct nft_batch *b, const char *service, const struct rate_limit *rl)
{
	struct nft_msg_ref ref = { .what = NFT_WHAT_SVC_OBJ_ADD, .service = service };
	struct nftnl_obj *o = svc_obj_new(NFT_SVC_LIMIT, service, NFT_OBJECT_LIMIT);

	if (o) {
		nftnl_obj_set_u64(o, NFTNL_OBJ_LIMIT_RATE, rl->count);
		nftnl_obj_set_u64(o, NFTNL_OBJ_LIMIT_UNIT, rl->period);
		nftnl_obj_set_u32(o, NFTNL_OBJ_LIMIT_BURST, nft_limit_kernel_burst(rl));
		nftnl_obj_set_u32(o, NFTNL_OBJ_LIMIT_TYPE, NFT_LIMIT_PKTS);
		nftnl_obj_set_u32(o, NFTNL_OBJ_LIMIT_FLAGS, 0);
	}
	obj_msg(b, o, NFT_MSG_NEWOBJ, NLM_F_CREATE | NLM_F_EXCL, &ref);
}

static void svc_counter_add(struct nft_batch *b, enum nft_svc_name which, const char *service,
			    uint64_t pkts, uint64_t bytes)
{
	struct nft_msg_ref ref = { .what = NFT_WHAT_SVC_OBJ_ADD, .service = service };
	struct nftnl_obj *o = svc_obj_new(which, service, NFT_OBJECT_COUNTER);

	if (o) {
		nftnl_obj_set_u64(o, NFTNL_OBJ_CTR_PKTS, pkts);
		nftnl_obj_set_u64(o, NFTNL_OBJ_CTR_BYTES, bytes);
	}
	obj_msg(b, o, NFT_MSG_NEWOBJ, NLM_F_CREATE | NLM_F_EXCL, &ref);
}

static void svc_obj_del(struct nft_batch *b, enum nft_svc_name which, const char *service,
			uint32_t type)
{
	struct nft_msg_ref ref = { .what = NFT_WHAT_SVC_OBJ_DEL, .service = service };

	obj_msg(b, svc_obj_new(which, service, type), NFT_MSG_DELOBJ, 0, &ref);
}

/*
 * limit.NS.NAME:
 *   limit name "rate.NS.NAME" counter name "admitted.NS.NAME" return
 *   counter name "limited.NS.NAME" goto reject-chain
 */
static void svc_chain_rules(struct nft_batch *b, const char *service)
{
	struct nft_msg_ref ref = { .what = NFT_WHAT_SVC_RULE, .service = service };
	char chain[NFT_OBJ_NAME_MAX], limit[NFT_OBJ_NAME_MAX], admitted[NFT_OBJ_NAME_MAX],
		limited[NFT_OBJ_NAME_MAX];
	struct nftnl_rule *r;
	bool ok;

	if (!nft_svc_name(NFT_SVC_CHAIN, service, chain, sizeof(chain)) ||
	    !nft_svc_name(NFT_SVC_LIMIT, service, limit, sizeof(limit)) ||
	    !nft_svc_name(NFT_SVC_ADMITTED, service, admitted, sizeof(admitted)) ||
	    !nft_svc_name(NFT_SVC_LIMITED, service, limited, sizeof(limited)))
		return batch_fail(b, -ENAMETOOLONG);
	r = rule_new(chain);
	ok = r && expr_objref(r, NFT_OBJECT_LIMIT, limit) &&
	     expr_objref(r, NFT_OBJECT_COUNTER, admitted) && expr_verdict(r, NFT_RETURN, NULL);
	rule_msg(b, r, ok, &ref);
	/* Refused like a port without endpoints: TCP reset, ICMP port unreachable. */
	r = rule_new(chain);
	ok = r && expr_objref(r, NFT_OBJECT_COUNTER, limited) && expr_goto(r, NFT_REJECT_CHAIN);
	rule_msg(b, r, ok, &ref);
}

static void svc_chain_msg(struct nft_batch *b, const char *service, uint16_t type, uint16_t flags,
			  uint8_t what)
{
	struct nft_msg_ref ref = { .what = what, .service = service };
	char chain[NFT_OBJ_NAME_MAX];

	if (!nft_svc_name(NFT_SVC_CHAIN, service, chain, sizeof(chain)))
		return batch_fail(b, -ENAMETOOLONG);
	chain_msg(b, chain_new(chain), type, flags, &ref);
}

void nft_msg_svc_add(struct nft_batch *b, const char *service, const struct rate_limit *rl,
		     uint64_t admitted_pkts, uint64_t admitted_bytes, uint64_t limited_pkts,
		     uint64_t limited_bytes)
{
	svc_counter_add(b, NFT_SVC_ADMITTED, service, admitted_pkts, admitted_bytes);
	svc_counter_add(b, NFT_SVC_LIMITED, service, limited_pkts, limited_bytes);
	svc_limit_obj_add(b, service, rl);
	svc_chain_msg(b, service, NFT_MSG_NEWCHAIN, NLM_F_CREATE | NLM_F_EXCL,
		      NFT_WHAT_SVC_CHAIN_ADD);
	svc_chain_rules(b, service);
}

void nft_msg_svc_update(struct nft_batch *b, const char *service, const struct rate_limit *rl)
{
	struct nft_msg_ref ref = { .what = NFT_WHAT_SVC_CHAIN_FLUSH, .service = service };
	char chain[NFT_OBJ_NAME_MAX];
	struct nftnl_rule *r;
	struct nlmsghdr *nlh;

	if (!nft_svc_name(NFT_SVC_CHAIN, service, chain, sizeof(chain)))
		return batch_fail(b, -ENAMETOOLONG);
	/* DELRULE with a chain and no handle empties the chain: the limit loses its user. */
	r = rule_new(chain);
	if (!r)
		return batch_fail(b, -ENOMEM);
	nlh = msg_start(b, NFT_MSG_DELRULE, 0, &ref);
	if (nlh) {
		nftnl_rule_nlmsg_build_payload(nlh, r);
		msg_end(b);
	}
	nftnl_rule_free(r);
	svc_obj_del(b, NFT_SVC_LIMIT, service, NFT_OBJECT_LIMIT);
	svc_limit_obj_add(b, service, rl);
	svc_chain_rules(b, service);
}

void nft_msg_svc_del(struct nft_batch *b, const char *service)
{
	svc_chain_msg(b, service, NFT_MSG_DELCHAIN, 0, NFT_WHAT_SVC_CHAIN_DEL);
	svc_obj_del(b, NFT_SVC_LIMIT, service, NFT_OBJECT_LIMIT);
	svc_obj_del(b, NFT_SVC_ADMITTED, service, NFT_OBJECT_COUNTER);
	svc_obj_del(b, NFT_SVC_LIMITED, service, NFT_OBJECT_COUNTER);
}

/* ---- named-set elements ---- */

static int fe_named_set(const struct frontend *fe, enum nft_fe_class cls)
{
	bool v6 = fe->key.addr.family == AF_INET6;
	bool np = nft_fe_is_node_port(fe);

	switch (cls) {
	case NFT_FE_MARKER:
		return v6 ? NFT_SET_ADDRS6 : NFT_SET_ADDRS4;
	case NFT_FE_SERVE:
		if (np)
			return v6 ? NFT_SET_NODEPORTS6 : NFT_SET_NODEPORTS4;
		return v6 ? NFT_SET_SERVICES6 : NFT_SET_SERVICES4;
	case NFT_FE_REFUSE:
	case NFT_FE_DROP:
		if (np)
			return v6 ? NFT_SET_NO_ENDPOINT_NODEPORTS6 : NFT_SET_NO_ENDPOINT_NODEPORTS4;
		return v6 ? NFT_SET_NO_ENDPOINTS6 : NFT_SET_NO_ENDPOINTS4;
	default:
		return -1;
	}
}

/*
 * The element key of a frontend in set which: addr . proto . port (each
 * field padded to 4 bytes), proto . port (NodePorts), or the address alone.
 */
static size_t fe_elem_key(const struct frontend_key *key, int which, uint8_t *out)
{
	size_t alen = key->addr.family == AF_INET ? 4 : 16;
	uint16_t port = htons(key->port);
	bool with_port = named_sets[which].key != KEY_ADDR;

	memset(out, 0, KEY_LEN6);
	if (named_sets[which].key == KEY_PROTO_PORT) {
		out[0] = key->proto;
		memcpy(out + 4, &port, sizeof(port));
		return KEY_LEN_NODE_PORT;
	}
	memcpy(out, key->addr.bytes, alen);
	if (!with_port)
		return alen;
	out[alen] = key->proto;
	memcpy(out + alen + 4, &port, sizeof(port));
	return alen + 8;
}

static void flush_one(struct nft_batch *b, int which)
{
	struct nftnl_set *s = b->pending[which];
	struct nft_msg_ref ref = {
		.what = b->pending_type == NFT_MSG_NEWSETELEM ? NFT_WHAT_ELEMS_ADD :
								NFT_WHAT_ELEMS_DEL,
		.set = which,
		.count = b->n_pending[which],
	};
	struct nftnl_set_elems_iter *it;
	struct nftnl_set_elem *e;

	if (!s)
		return;
	/* Name the first element in an error line: the key goes back through the ref. */
	it = nftnl_set_elems_iter_create(s);
	e = it ? nftnl_set_elems_iter_cur(it) : NULL;
	if (e) {
		uint32_t len;
		const uint8_t *k = nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &len);
		bool v6 = set_is_v6(which);

		ref.has_key = true;
		ref.key.addr.family = v6 ? AF_INET6 : AF_INET;
		if (named_sets[which].key == KEY_PROTO_PORT) {
			ref.key.proto = k[0];
			ref.key.port = ntohs(*(const uint16_t *)(k + 4));
		} else {
			memcpy(ref.key.addr.bytes, k, v6 ? 16 : 4);
		}
		if (named_sets[which].key == KEY_ADDR_PROTO_PORT) {
			ref.key.proto = k[v6 ? 16 : 4];
			ref.key.port = ntohs(*(const uint16_t *)(k + (v6 ? 20 : 8)));
		}
	}
	if (it)
		nftnl_set_elems_iter_destroy(it);
	elems_msg(b, s, b->pending_type, &ref);
	nftnl_set_free(s);
	b->pending[which] = NULL;
	b->n_pending[which] = 0;
}

void nft_batch_flush_elems(struct nft_batch *b)
{
	for (int i = 0; i < NFT_NAMED_SETS; i++)
		flush_one(b, i);
}

/* Queues one element of set which; verdict 0 with chain NULL for a plain set or a delete. */
static void queue_elem(struct nft_batch *b, uint16_t msg_type, int which,
		       const struct frontend_key *fkey, int verdict, const char *chain)
{
	struct nftnl_set_elem *e;
	uint8_t key[KEY_LEN6];
	size_t len;

	if (b->err)
		return;
	if (b->pending_type != msg_type)
		nft_batch_flush_elems(b);
	b->pending_type = msg_type;
	if (!b->pending[which]) {
		b->pending[which] = elems_set_new(nft_set_name(which), 0);
		if (!b->pending[which])
			return batch_fail(b, -ENOMEM);
	}
	e = nftnl_set_elem_alloc();
	if (!e)
		return batch_fail(b, -ENOMEM);
	len = fe_elem_key(fkey, which, key);
	nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, key, len);
	/* A delete names the key only; an add carries the verdict too. */
	if (msg_type == NFT_MSG_NEWSETELEM && named_sets[which].is_map) {
		nftnl_set_elem_set_u32(e, NFTNL_SET_ELEM_VERDICT, verdict);
		if (chain)
			nftnl_set_elem_set_str(e, NFTNL_SET_ELEM_CHAIN, chain);
	}
	nftnl_set_elem_add(b->pending[which], e);
	if (++b->n_pending[which] >= NFT_ELEMS_PER_MSG)
		flush_one(b, which);
}

void nft_batch_queue_elem(struct nft_batch *b, uint16_t msg_type, const struct frontend *fe)
{
	enum nft_fe_class cls = nft_fe_classify(fe);
	int which = fe_named_set(fe, cls);
	char name[NFT_CHAIN_NAME_MAX];

	if (which < 0)
		return;
	switch (cls) {
	case NFT_FE_SERVE:
		nft_fe_chain_name(&fe->key, name, sizeof(name));
		return queue_elem(b, msg_type, which, &fe->key, NFT_GOTO, name);
	case NFT_FE_REFUSE:
		return queue_elem(b, msg_type, which, &fe->key, NFT_GOTO, NFT_REJECT_CHAIN);
	case NFT_FE_DROP:
		return queue_elem(b, msg_type, which, &fe->key, NF_DROP, NULL);
	default:
		return queue_elem(b, msg_type, which, &fe->key, 0, NULL);
	}
}

/* ---- loadBalancerSourceRanges ---- */

static void fw_name(const char *prefix, const struct frontend_key *key, char *buf, size_t len)
{
	char fe[NFT_CHAIN_NAME_MAX];

	nft_fe_chain_name(key, fe, sizeof(fe));
	/* fe + 3 skips "fe-": firewall-10.0.0.5-tcp-80 */
	snprintf(buf, len, "%s-%s", prefix, fe + 3);
}

void nft_fw_chain_name(const struct frontend_key *key, char *buf, size_t len)
{
	fw_name("firewall", key, buf, len);
}

void nft_fw_set_name(const struct frontend_key *key, char *buf, size_t len)
{
	fw_name("allow", key, buf, len);
}

bool nft_fe_has_firewall(const struct frontend *fe)
{
	if (fe->kind != FE_LB_INGRESS || nft_fe_classify(fe) == NFT_FE_SKIP ||
	    nft_fe_is_node_port(fe))
		return false;
	for (size_t i = 0; i < fe->n_source_ranges; i++)
		if (fe->source_ranges[i].addr.family == fe->key.addr.family)
			return true;
	return false;
}

static int range_cmp(const void *a, const void *b)
{
	return memcmp(((const struct nft_fw_range *)a)->start,
		      ((const struct nft_fw_range *)b)->start, 16);
}

/* Big-endian 16-byte add of one; false if it wrapped (the range ran to the top). */
static bool addr_inc(uint8_t *a, size_t alen)
{
	for (size_t i = alen; i-- > 0;)
		if (++a[i])
			return true;
	return false;
}

size_t nft_fw_ranges(const struct frontend *fe, struct nft_fw_range *out, size_t max)
{
	size_t alen = fe->key.addr.family == AF_INET ? 4 : 16, bits = alen * 8, n = 0, m = 0;

	for (size_t i = 0; i < fe->n_source_ranges && n < max; i++) {
		const struct cidr *c = &fe->source_ranges[i];
		struct nft_fw_range *r = &out[n];

		if (c->addr.family != fe->key.addr.family || c->prefix_len > bits)
			continue;
		memset(r, 0, sizeof(*r));
		memcpy(r->start, c->addr.bytes, alen);
		memcpy(r->end, c->addr.bytes, alen);
		/* Host bits cleared in start, set in end (the block's last address), then + 1. */
		for (size_t bit = c->prefix_len; bit < bits; bit++) {
			uint8_t m8 = 0x80u >> (bit % 8);

			r->start[bit / 8] &= (uint8_t)~m8;
			r->end[bit / 8] |= m8;
		}
		r->has_end = addr_inc(r->end, alen);
		n++;
	}
	qsort(out, n, sizeof(*out), range_cmp);
	/* Merge overlapping and touching blocks: the kernel's interval set refuses overlaps. */
	for (size_t i = 0; i < n; i++) {
		struct nft_fw_range *last = m ? &out[m - 1] : NULL;

		if (last && (!last->has_end || memcmp(out[i].start, last->end, alen) <= 0)) {
			if (!out[i].has_end)
				last->has_end = false, memset(last->end, 0, sizeof(last->end));
			else if (last->has_end && memcmp(out[i].end, last->end, alen) > 0)
				memcpy(last->end, out[i].end, alen);
			continue;
		}
		out[m++] = out[i];
	}
	return m;
}

/* Enough for any real list; more ranges than this are cut with a warning. */
#define NFT_FW_MAX_RANGES 1024

bool nft_fw_same_ranges(const struct frontend *a, const struct frontend *b)
{
	size_t na, nb;
	struct nft_fw_range *ra = calloc(2 * NFT_FW_MAX_RANGES, sizeof(*ra)), *rb;
	bool same;

	if (!ra)
		return false;
	rb = ra + NFT_FW_MAX_RANGES;
	na = nft_fw_ranges(a, ra, NFT_FW_MAX_RANGES);
	nb = nft_fw_ranges(b, rb, NFT_FW_MAX_RANGES);
	same = na == nb && a->key.addr.family == b->key.addr.family &&
	       !memcmp(ra, rb, na * sizeof(*ra));
	free(ra);
	return same;
}

/* The allow set's elements: a start, and an interval end unless the range runs to the top. */
static void fw_elems(struct nft_batch *b, const struct frontend *fe, const char *set,
		     uint32_t set_id)
{
	struct nft_msg_ref ref = { .what = NFT_WHAT_FW_ELEMS, .has_key = true, .key = fe->key };
	size_t alen = fe->key.addr.family == AF_INET ? 4 : 16, n;
	struct nft_fw_range *ranges = calloc(NFT_FW_MAX_RANGES, sizeof(*ranges));
	struct nftnl_set *chunk = NULL;
	size_t in_chunk = 0;

	if (!ranges)
		return batch_fail(b, -ENOMEM);
	if (fe->n_source_ranges > NFT_FW_MAX_RANGES)
		pr_warn("nft: %s: %zu loadBalancerSourceRanges, only the first %d are used",
			fe->service ? fe->service : "?", fe->n_source_ranges, NFT_FW_MAX_RANGES);
	n = nft_fw_ranges(fe, ranges, NFT_FW_MAX_RANGES);
	for (size_t i = 0; i < n && !b->err; i++) {
		for (int end = 0; end < 2; end++) {
			struct nftnl_set_elem *e;

			if (end && !ranges[i].has_end)
				continue;
			if (!chunk) {
				chunk = elems_set_new(set, set_id);
				if (!chunk)
					goto fail;
			}
			e = nftnl_set_elem_alloc();
			if (!e)
				goto fail;
			nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY,
					   end ? ranges[i].end : ranges[i].start, alen);
			if (end)
				nftnl_set_elem_set_u32(e, NFTNL_SET_ELEM_FLAGS,
						       NFT_SET_ELEM_INTERVAL_END);
			nftnl_set_elem_add(chunk, e);
			/* A start and its end stay in one message. */
			if (++in_chunk >= NFT_ELEMS_PER_MSG && (end || !ranges[i].has_end)) {
				elems_msg(b, chunk, NFT_MSG_NEWSETELEM, &ref);
				nftnl_set_free(chunk);
				chunk = NULL;
				in_chunk = 0;
			}
		}
	}
	if (chunk && in_chunk)
		elems_msg(b, chunk, NFT_MSG_NEWSETELEM, &ref);
	if (chunk)
		nftnl_set_free(chunk);
	free(ranges);
	return;
fail:
	if (chunk)
		nftnl_set_free(chunk);
	free(ranges);
	batch_fail(b, -ENOMEM);
}

void nft_msg_fw_add(struct nft_batch *b, const struct frontend *fe)
{
	struct nft_msg_ref ref = { .what = NFT_WHAT_FW_SET_ADD, .has_key = true, .key = fe->key };
	bool v6 = fe->key.addr.family == AF_INET6;
	char set[NFT_EP_NAME_MAX], chain[NFT_EP_NAME_MAX];
	struct nftnl_set *s;
	struct nftnl_rule *r;
	struct nlmsghdr *nlh;
	uint32_t set_id;
	bool ok;

	if (b->err || !nft_fe_has_firewall(fe))
		return;
	nft_fw_set_name(&fe->key, set, sizeof(set));
	nft_fw_chain_name(&fe->key, chain, sizeof(chain));
	s = nftnl_set_alloc();
	if (!s)
		return batch_fail(b, -ENOMEM);
	set_id = ++b->set_id;
	nftnl_set_set_u32(s, NFTNL_SET_FAMILY, NFPROTO_INET);
	nftnl_set_set_str(s, NFTNL_SET_TABLE, NFT_TABLE_NAME);
	nftnl_set_set_str(s, NFTNL_SET_NAME, set);
	nftnl_set_set_u32(s, NFTNL_SET_ID, set_id);
	nftnl_set_set_u32(s, NFTNL_SET_FLAGS, NFT_SET_INTERVAL);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE, v6 ? NFT_TYPE_IP6ADDR : NFT_TYPE_IPADDR);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, v6 ? 16 : 4);
	nlh = msg_start(b, NFT_MSG_NEWSET, NLM_F_CREATE | NLM_F_EXCL, &ref);
	if (nlh) {
		nftnl_set_nlmsg_build_payload(nlh, s);
		msg_end(b);
	}
	nftnl_set_free(s);
	fw_elems(b, fe, set, set_id);

	ref.what = NFT_WHAT_FW_CHAIN_ADD;
	chain_msg(b, chain_new(chain), NFT_MSG_NEWCHAIN, NLM_F_CREATE | NLM_F_EXCL, &ref);
	/* ip saddr != @allow-... drop: kube-proxy drops, it does not reject. */
	ref.what = NFT_WHAT_FW_RULE;
	r = rule_new(chain);
	ok = r && expr_saddr(r, v6) && expr_lookup_not(r, NFT_REG_1, set, set_id) &&
	     expr_verdict(r, NF_DROP, NULL);
	rule_msg(b, r, ok, &ref);
}

void nft_msg_fw_update(struct nft_batch *b, const struct frontend *fe)
{
	struct nft_msg_ref ref = { .what = NFT_WHAT_FW_SET_FLUSH, .has_key = true, .key = fe->key };
	char set[NFT_EP_NAME_MAX];
	struct nlmsghdr *nlh;

	if (b->err || !nft_fe_has_firewall(fe))
		return;
	nft_fw_set_name(&fe->key, set, sizeof(set));
	/* DELSETELEM without elements empties the set; the new ones follow in this batch. */
	nlh = msg_start(b, NFT_MSG_DELSETELEM, 0, &ref);
	if (!nlh)
		return;
	mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_TABLE, NFT_TABLE_NAME);
	mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_SET, set);
	msg_end(b);
	fw_elems(b, fe, set, 0);
}

void nft_msg_fw_del(struct nft_batch *b, const struct frontend_key *key)
{
	struct nft_msg_ref ref = { .what = NFT_WHAT_FW_CHAIN_DEL, .has_key = true, .key = *key };
	char set[NFT_EP_NAME_MAX], chain[NFT_EP_NAME_MAX];
	struct nftnl_set *s;
	struct nlmsghdr *nlh;

	nft_fw_set_name(key, set, sizeof(set));
	nft_fw_chain_name(key, chain, sizeof(chain));
	/* The chain's rule holds the set: chain first. */
	chain_msg(b, chain_new(chain), NFT_MSG_DELCHAIN, 0, &ref);
	ref.what = NFT_WHAT_FW_SET_DEL;
	s = nftnl_set_alloc();
	if (!s)
		return batch_fail(b, -ENOMEM);
	nftnl_set_set_u32(s, NFTNL_SET_FAMILY, NFPROTO_INET);
	nftnl_set_set_str(s, NFTNL_SET_TABLE, NFT_TABLE_NAME);
	nftnl_set_set_str(s, NFTNL_SET_NAME, set);
	nlh = msg_start(b, NFT_MSG_DELSET, 0, &ref);
	if (nlh) {
		nftnl_set_nlmsg_build_payload(nlh, s);
		msg_end(b);
	}
	nftnl_set_free(s);
}

void nft_batch_queue_fw_elem(struct nft_batch *b, uint16_t msg_type, const struct frontend *fe)
{
	char chain[NFT_EP_NAME_MAX];

	if (!nft_fe_has_firewall(fe))
		return;
	nft_fw_chain_name(&fe->key, chain, sizeof(chain));
	queue_elem(b, msg_type,
		   fe->key.addr.family == AF_INET6 ? NFT_SET_FIREWALL6 : NFT_SET_FIREWALL4,
		   &fe->key, NFT_GOTO, chain);
}
