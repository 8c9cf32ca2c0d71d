// SPDX-License-Identifier: Apache-2.0
/*
 * loadBalancerSourceRanges: a LB frontend's allow set (its source ranges,
 * merged into interval-set elements) and its firewall chain, their names
 * and their messages.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <libmnl/libmnl.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>

#include "lib/log.h"
#include "lib/xalloc.h"
#include "datapath/nft/nft_batch.h"
#include "datapath/nft/nft_classify.h"
#include "datapath/nft/nft_expr.h"
#include "datapath/nft/nft_firewall.h"
#include "datapath/nft/nft_ratelimit.h"
#include "datapath/nft/nft_skeleton.h"

/* Enough for any real list; more ranges than this are cut with a warning. */
#define NFT_FW_MAX_RANGES 1024

_Static_assert(NFT_FW_NAME_LEN < NFT_EP_NAME_MAX && NFT_FW_NAME_LEN <= NFT_CHAIN_MAXNAMELEN - 1 &&
		       NFT_FW_NAME_LEN <= NFT_SET_MAXNAMELEN - 1,
	       "firewall chain and allow set names fit their buffers and the kernel");

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

bool nft_fw_same_ranges(const struct frontend *a, const struct frontend *b)
{
	size_t na, nb;
	struct nft_fw_range *ra = xcalloc(2 * NFT_FW_MAX_RANGES, sizeof(*ra)), *rb;
	bool same;

	rb = ra + NFT_FW_MAX_RANGES;
	na = nft_fw_ranges(a, ra, NFT_FW_MAX_RANGES);
	nb = nft_fw_ranges(b, rb, NFT_FW_MAX_RANGES);
	same = na == nb && a->key.addr.family == b->key.addr.family &&
	       !memcmp(ra, rb, na * sizeof(*ra));
	free(ra);
	return same;
}

void nft_msg_range_elems(struct nft_batch *b, const struct frontend *fe, const char *set,
			 uint32_t set_id, const struct nft_msg_ref *ref)
{
	size_t alen = fe->key.addr.family == AF_INET ? 4 : 16, n;
	struct nft_fw_range *ranges = xcalloc(NFT_FW_MAX_RANGES, sizeof(*ranges));
	struct nftnl_set *chunk = NULL;
	size_t in_chunk = 0;

	if (fe->n_source_ranges > NFT_FW_MAX_RANGES)
		pr_warn("nft: %s: %zu loadBalancerSourceRanges, only the first %d are used",
			fe->service ? fe->service : "?", fe->n_source_ranges, NFT_FW_MAX_RANGES);
	n = nft_fw_ranges(fe, ranges, NFT_FW_MAX_RANGES);
	for (size_t i = 0; i < n && !b->err; i++) {
		for (int end = 0; end < 2; end++) {
			struct nftnl_set_elem *e;

			if (end && !ranges[i].has_end)
				continue;
			if (!chunk)
				chunk = nft_set_new(set, set_id);
			e = xcheck(nftnl_set_elem_alloc());
			nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY,
					   end ? ranges[i].end : ranges[i].start, alen);
			if (end)
				nftnl_set_elem_set_u32(e, NFTNL_SET_ELEM_FLAGS,
						       NFT_SET_ELEM_INTERVAL_END);
			nftnl_set_elem_add(chunk, e);
			/* A start and its end stay in one message. */
			if (++in_chunk >= NFT_ELEMS_PER_MSG && (end || !ranges[i].has_end)) {
				nft_elems_msg(b, chunk, NFT_MSG_NEWSETELEM, ref);
				nftnl_set_free(chunk);
				chunk = NULL;
				in_chunk = 0;
			}
		}
	}
	if (chunk && in_chunk)
		nft_elems_msg(b, chunk, NFT_MSG_NEWSETELEM, ref);
	if (chunk)
		nftnl_set_free(chunk);
	free(ranges);
}

void nft_msg_fw_add(struct nft_batch *b, const struct frontend *fe)
{
	struct nft_msg_ref ref = { .what = NFT_WHAT_FW_SET_ADD, .has_key = true, .key = fe->key };
	bool v6 = fe->key.addr.family == AF_INET6;
	char set[NFT_EP_NAME_MAX], chain[NFT_EP_NAME_MAX];
	struct nftnl_set *s;
	struct nftnl_rule *r;
	uint32_t set_id;

	if (b->err || !nft_fe_has_firewall(fe))
		return;
	nft_fw_set_name(&fe->key, set, sizeof(set));
	nft_fw_chain_name(&fe->key, chain, sizeof(chain));
	set_id = ++b->set_id;
	s = nft_set_new(set, set_id);
	nftnl_set_set_u32(s, NFTNL_SET_FLAGS, NFT_SET_INTERVAL);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE, v6 ? NFT_TYPE_IP6ADDR : NFT_TYPE_IPADDR);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, v6 ? 16 : 4);
	nft_set_msg(b, s, NFT_MSG_NEWSET, NLM_F_CREATE | NLM_F_EXCL, &ref);
	ref.what = NFT_WHAT_FW_ELEMS;
	nft_msg_range_elems(b, fe, set, set_id, &ref);

	ref.what = NFT_WHAT_FW_CHAIN_ADD;
	nft_chain_msg(b, nft_chain_new(chain), NFT_MSG_NEWCHAIN, NLM_F_CREATE | NLM_F_EXCL, &ref);
	/* ip saddr != @allow-... drop: kube-proxy drops, it does not reject. */
	ref.what = NFT_WHAT_FW_RULE;
	r = nft_rule_new(chain);
	nft_expr_saddr(r, v6);
	nft_expr_lookup_not(r, NFT_REG_1, set, set_id);
	/* Counted Services count the drops (after the lookup: allowed sources pay nothing). */
	if (nft_fe_counted(fe, b->count_all)) {
		char counter[NFT_OBJ_NAME_MAX];

		if (!nft_svc_name(NFT_SVC_SOURCE_RANGE, fe->service, counter, sizeof(counter))) {
			nftnl_rule_free(r);
			return nft_batch_fail(b, -ENAMETOOLONG);
		}
		nft_expr_objref(r, NFT_OBJECT_COUNTER, counter);
	}
	nft_expr_verdict(r, NF_DROP, NULL);
	nft_rule_msg(b, r, &ref);
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
	nlh = nft_msg_start(b, NFT_MSG_DELSETELEM, 0, &ref);
	if (!nlh)
		return;
	mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_TABLE, NFT_TABLE_NAME);
	mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_SET, set);
	nft_msg_end(b);
	ref.what = NFT_WHAT_FW_ELEMS;
	nft_msg_range_elems(b, fe, set, 0, &ref);
}

void nft_msg_fw_del(struct nft_batch *b, const struct frontend_key *key)
{
	struct nft_msg_ref ref = { .what = NFT_WHAT_FW_CHAIN_DEL, .has_key = true, .key = *key };
	char set[NFT_EP_NAME_MAX], chain[NFT_EP_NAME_MAX];

	nft_fw_set_name(key, set, sizeof(set));
	nft_fw_chain_name(key, chain, sizeof(chain));
	/* The chain's rule holds the set: chain first. */
	nft_chain_msg(b, nft_chain_new(chain), NFT_MSG_DELCHAIN, 0, &ref);
	ref.what = NFT_WHAT_FW_SET_DEL;
	nft_set_msg(b, nft_set_new(set, 0), NFT_MSG_DELSET, 0, &ref);
}
