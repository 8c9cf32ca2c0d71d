// SPDX-License-Identifier: Apache-2.0
/*
 * One nftables transaction being built: its pages and sequence numbers,
 * the record of what each message is for (named in an error line), and the
 * writers that put a chain, rule, set or element list into it as one
 * message each.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <libmnl/libmnl.h>
#include <libnftnl/batch.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>

#include "lib/xalloc.h"
#include "datapath/nft/nft_batch.h"
#include "datapath/nft/nft_elems.h"
#include "datapath/nft/nft_firewall.h"
#include "datapath/nft/nft_frontend.h"

/*
 * Pages of the batch: a message is written at the tail of the current page
 * and may run past its end by at most the overrun, so the overrun bounds the
 * largest message (NFT_ELEMS_PER_MSG elements of about 120 bytes).
 */
#define BATCH_PAGE_SIZE (256 * 1024)
#define BATCH_PAGE_OVERRUN (128 * 1024)
/* Zeroed ahead of each message: rules and objects fit, element keys are fully written. */
#define MSG_ZEROED_BYTES 1024

/* ---- batch bookkeeping ---- */

void nft_batch_fail(struct nft_batch *b, int err)
{
	if (!b->err)
		b->err = err;
}

static void batch_add_ref(struct nft_batch *b, const struct nft_msg_ref *ref)
{
	size_t idx = b->seq - b->seq_first;

	if (idx >= b->cap_refs) {
		size_t cap = b->cap_refs ? b->cap_refs * 2 : 256;

		while (cap <= idx)
			cap *= 2;
		b->refs = xreallocarray(b->refs, cap, sizeof(*b->refs));
		b->cap_refs = cap;
	}
	b->refs[idx] = *ref;
}

/* Moves the batch past the message just written: libnftnl fails only to allocate a page. */
static void batch_update(struct nft_batch *b)
{
	if (nftnl_batch_update(b->nb) < 0)
		xcheck(NULL);
}

struct nlmsghdr *nft_msg_start(struct nft_batch *b, uint16_t type, uint16_t flags,
			       const struct nft_msg_ref *ref)
{
	if (b->err)
		return NULL;
	batch_add_ref(b, ref);
	/*
	 * libmnl 1.0.4 leaves attribute padding as it finds it and libnftnl
	 * writes some names (objref) without their NUL: start from zeroed
	 * bytes so that every message reads back the same (the page has
	 * BATCH_PAGE_OVERRUN bytes beyond its limit, far more than this).
	 */
	memset(nftnl_batch_buffer(b->nb), 0, MSG_ZEROED_BYTES);
	return nftnl_nlmsg_build_hdr(nftnl_batch_buffer(b->nb), type, NFPROTO_INET, flags, b->seq);
}

/* Word by word, unkeyed: a fingerprint must read the same in the next agent. */
static uint64_t fp_mix(uint64_t h, const void *data, size_t len)
{
	const uint8_t *p = data;
	uint64_t w;

	for (; len >= 8; p += 8, len -= 8) {
		memcpy(&w, p, 8);
		h = (h ^ w) * 0x100000001b3ull;
		h ^= h >> 29;
	}
	for (; len; p++, len--)
		h = (h ^ *p) * 0x100000001b3ull;
	return h;
}

void nft_batch_fp_mix(struct nft_batch *b, const void *data, size_t len)
{
	b->fp = fp_mix(b->fp, data, len);
}

void nft_msg_end(struct nft_batch *b)
{
	const struct nlmsghdr *nlh = nftnl_batch_buffer(b->nb);
	uint16_t head[2] = { nlh->nlmsg_type, nlh->nlmsg_flags };

	if (!b->fp_skip) {
		b->fp = fp_mix(b->fp, head, sizeof(head));
		b->fp = fp_mix(b->fp, (const char *)nlh + sizeof(*nlh),
			       nlh->nlmsg_len - sizeof(*nlh));
	}
	b->seq++;
	b->n_msgs++;
	batch_update(b);
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
	iov = xcalloc(n_iov, sizeof(*iov));
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

void nft_batch_init(struct nft_batch *b, uint32_t seq)
{
	struct nft_msg_ref ref = { .what = NFT_WHAT_BATCH };

	memset(b, 0, sizeof(*b));
	b->nb = xcheck(nftnl_batch_alloc(BATCH_PAGE_SIZE, BATCH_PAGE_OVERRUN));
	b->seq_first = seq;
	b->seq = seq;
	b->fp = 0xcbf29ce484222325ull;
	b->n_shards = NFT_BACKEND_SHARDS_MIN;
	batch_add_ref(b, &ref);
	nftnl_batch_begin(nftnl_batch_buffer(b->nb), b->seq++);
	batch_update(b);
}

int nft_batch_finish(struct nft_batch *b)
{
	struct nft_msg_ref ref = { .what = NFT_WHAT_BATCH };

	nft_batch_flush_elems(b);
	if (b->err)
		return b->err;
	/* Errors always come back; the last message's ACK says the batch was processed. */
	mark_last_for_ack(b);
	batch_add_ref(b, &ref);
	nftnl_batch_end(nftnl_batch_buffer(b->nb), b->seq++);
	batch_update(b);
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

	nft_fe_side_chain_name(&ref->key, ref->side, name, sizeof(name));
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
	case NFT_WHAT_SYNC_MARK:
		snprintf(buf, len, "add or delete the chain that marks a full sync");
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

		nft_backends_map_name(ref->key.addr.family == AF_INET6, ref->shard, map,
				      sizeof(map));
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
			nft_ep_set_name(&ref->key, ref->side, &ref->backend, ep, sizeof(ep));
		else
			nft_ep_chain_name(&ref->key, ref->side, &ref->backend, ep, sizeof(ep));
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
	case NFT_WHAT_NODEPORT_ADDRS:
		snprintf(buf, len, "write set %s (--nodeport-addresses)", nft_set_name(ref->set));
		break;
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

/* ---- one object, one message ---- */

struct nftnl_chain *nft_chain_new(const char *name)
{
	struct nftnl_chain *c = xcheck(nftnl_chain_alloc());

	nftnl_chain_set_u32(c, NFTNL_CHAIN_FAMILY, NFPROTO_INET);
	nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, NFT_TABLE_NAME);
	nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, name);
	return c;
}

void nft_chain_msg(struct nft_batch *b, struct nftnl_chain *c, uint16_t type, uint16_t flags,
		   const struct nft_msg_ref *ref)
{
	struct nlmsghdr *nlh = nft_msg_start(b, type, flags, ref);

	if (nlh) {
		nftnl_chain_nlmsg_build_payload(nlh, c);
		nft_msg_end(b);
	}
	nftnl_chain_free(c);
}

struct nftnl_rule *nft_rule_new(const char *chain)
{
	struct nftnl_rule *r = xcheck(nftnl_rule_alloc());

	nftnl_rule_set_u32(r, NFTNL_RULE_FAMILY, NFPROTO_INET);
	nftnl_rule_set_str(r, NFTNL_RULE_TABLE, NFT_TABLE_NAME);
	nftnl_rule_set_str(r, NFTNL_RULE_CHAIN, chain);
	return r;
}

static void rule_write(struct nft_batch *b, struct nftnl_rule *r, uint16_t type, uint16_t flags,
		       const struct nft_msg_ref *ref)
{
	struct nlmsghdr *nlh = nft_msg_start(b, type, flags, ref);

	if (nlh) {
		nftnl_rule_nlmsg_build_payload(nlh, r);
		nft_msg_end(b);
	}
	nftnl_rule_free(r);
}

void nft_rule_msg(struct nft_batch *b, struct nftnl_rule *r, const struct nft_msg_ref *ref)
{
	rule_write(b, r, NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND, ref);
}

void nft_rule_flush_msg(struct nft_batch *b, const char *chain, const struct nft_msg_ref *ref)
{
	rule_write(b, nft_rule_new(chain), NFT_MSG_DELRULE, 0, ref);
}

struct nftnl_set *nft_set_new(const char *name, uint32_t set_id)
{
	struct nftnl_set *s = xcheck(nftnl_set_alloc());

	nftnl_set_set_u32(s, NFTNL_SET_FAMILY, NFPROTO_INET);
	nftnl_set_set_str(s, NFTNL_SET_TABLE, NFT_TABLE_NAME);
	nftnl_set_set_str(s, NFTNL_SET_NAME, name);
	if (set_id)
		nftnl_set_set_u32(s, NFTNL_SET_ID, set_id);
	return s;
}

void nft_set_msg(struct nft_batch *b, struct nftnl_set *s, uint16_t type, uint16_t flags,
		 const struct nft_msg_ref *ref)
{
	struct nlmsghdr *nlh = nft_msg_start(b, type, flags, ref);

	if (nlh) {
		nftnl_set_nlmsg_build_payload(nlh, s);
		nft_msg_end(b);
	}
	nftnl_set_free(s);
}

/*
 * Writes the elements of s as one message. Each element is nested as
 * NFTA_LIST_ELEM, as nft does (libnftnl's own list builder numbers them
 * 1, 2, 3..., which the kernel accepts but libnftnl's parser refuses).
 */
void nft_elems_msg(struct nft_batch *b, struct nftnl_set *s, uint16_t type,
		   const struct nft_msg_ref *ref)
{
	uint16_t flags = type == NFT_MSG_NEWSETELEM ? NLM_F_CREATE | NLM_F_EXCL : 0;
	struct nlmsghdr *nlh = nft_msg_start(b, type, flags, ref);
	struct nftnl_set_elems_iter *it;
	struct nftnl_set_elem *e;
	struct nlattr *list;

	if (!nlh)
		return;
	it = xcheck(nftnl_set_elems_iter_create(s));
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
	nft_msg_end(b);
}

void nft_sync_mark_name(uint64_t fp, char *buf, size_t len)
{
	snprintf(buf, len, "sync-%016llx", (unsigned long long)fp);
}

void nft_sync_mark_msg(struct nft_batch *b, const char *name, uint16_t type)
{
	struct nft_msg_ref ref = { .what = NFT_WHAT_SYNC_MARK };

	nft_chain_msg(b, nft_chain_new(name), type, type == NFT_MSG_NEWCHAIN ? NLM_F_CREATE : 0,
		      &ref);
}
