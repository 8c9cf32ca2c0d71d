// SPDX-License-Identifier: Apache-2.0
/*
 * A Service's rate limit in table inet sluice: the names of its limit and
 * counter objects and of its chain, and the messages that add, update and
 * delete them.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <netinet/in.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netlink.h>
#include <libnftnl/object.h>

#include "lib/xalloc.h"
#include "datapath/nft/nft_batch.h"
#include "datapath/nft/nft_expr.h"
#include "datapath/nft/nft_ratelimit.h"
#include "datapath/nft/nft_skeleton.h"

static const char *const svc_prefixes[] = {
	[NFT_SVC_LIMIT] = "rate.",
	[NFT_SVC_ADMITTED] = "admitted.",
	[NFT_SVC_LIMITED] = "limited.",
	[NFT_SVC_CHAIN] = "limit.",
	[NFT_SVC_NO_ENDPOINTS] = "no-endpoints.",
	[NFT_SVC_POLICY_DROP] = "policy-drop.",
	[NFT_SVC_SOURCE_RANGE] = "source-range.",
	[NFT_SVC_REFUSE_CHAIN] = "refuse.",
	[NFT_SVC_DROP_CHAIN] = "drop.",
};

_Static_assert(sizeof(svc_prefixes) / sizeof(svc_prefixes[0]) == NFT_SVC_KINDS,
	       "a prefix for every kind of Service object");

bool nft_svc_is_counter(enum nft_svc_name which)
{
	return which == NFT_SVC_ADMITTED || which == NFT_SVC_LIMITED ||
	       which == NFT_SVC_NO_ENDPOINTS || which == NFT_SVC_POLICY_DROP ||
	       which == NFT_SVC_SOURCE_RANGE;
}

_Static_assert(NFT_SVC_NAME_LEN <= NFT_OBJ_MAXNAMELEN - 1 &&
		       NFT_SVC_NAME_LEN <= NFT_CHAIN_MAXNAMELEN - 1,
	       "a Service's object and chain names must fit the kernel's limit");
_Static_assert(NFT_SVC_NAME_LEN < NFT_OBJ_NAME_MAX, "NFT_OBJ_NAME_MAX holds every name");

/* s[0..len) is a part of a Service key we can name: 1-63 of [a-z0-9-]. */
static bool svc_part_ok(const char *s, size_t len)
{
	if (!len || len > NFT_SVC_LABEL_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return false;
	return true;
}

/* Splits "ns<sep>name" into its two parts; false unless both are svc_part_ok. */
static bool svc_split(const char *s, char sep, size_t *ns_len)
{
	const char *at = strchr(s, sep);

	if (!at || !svc_part_ok(s, at - s) || !svc_part_ok(at + 1, strlen(at + 1)))
		return false;
	*ns_len = at - s;
	return true;
}

bool nft_svc_nameable(const char *service)
{
	size_t ns_len;

	return svc_split(service, '/', &ns_len);
}

bool nft_svc_name(enum nft_svc_name which, const char *service, char *buf, size_t len)
{
	size_t ns_len;
	int n;

	if (!svc_split(service, '/', &ns_len))
		return false;
	n = snprintf(buf, len, "%s%.*s.%s", svc_prefixes[which], (int)ns_len, service,
		     service + ns_len + 1);
	return n > 0 && (size_t)n < len;
}

int nft_svc_parse_name(const char *name, char *service, size_t len)
{
	for (int i = 0; i < (int)(sizeof(svc_prefixes) / sizeof(svc_prefixes[0])); i++) {
		size_t plen = strlen(svc_prefixes[i]), ns_len;
		const char *rest = name + plen;

		if (strncmp(name, svc_prefixes[i], plen))
			continue;
		/* No prefix starts another ("limit." and "limited."): one match at most. */
		if (!svc_split(rest, '.', &ns_len) || strlen(rest) >= len)
			return -1;
		snprintf(service, len, "%.*s/%s", (int)ns_len, rest, rest + ns_len + 1);
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

/*
 * NULL if the Service key cannot be named; the batch then fails. The planner
 * leaves such frontends out beforehand (nft_plan_nameable), so this is a backstop.
 */
static struct nftnl_obj *svc_obj_new(enum nft_svc_name which, const char *service, uint32_t type)
{
	char name[NFT_OBJ_NAME_MAX];
	struct nftnl_obj *o;

	if (!nft_svc_name(which, service, name, sizeof(name)))
		return NULL;
	o = xcheck(nftnl_obj_alloc());
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
		return nft_batch_fail(b, -ENAMETOOLONG);
	nlh = nft_msg_start(b, type, flags, ref);
	if (nlh) {
		nftnl_obj_nlmsg_build_payload(nlh, o);
		nft_msg_end(b);
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

void nft_msg_svc_counter_add(struct nft_batch *b, enum nft_svc_name which, const char *service,
			     uint64_t pkts, uint64_t bytes)
{
	struct nft_msg_ref ref = { .what = NFT_WHAT_SVC_OBJ_ADD, .service = service };
	struct nftnl_obj *o = svc_obj_new(which, service, NFT_OBJECT_COUNTER);

	if (o) {
		nftnl_obj_set_u64(o, NFTNL_OBJ_CTR_PKTS, pkts);
		nftnl_obj_set_u64(o, NFTNL_OBJ_CTR_BYTES, bytes);
	}
	/* The fingerprint names the counter, not the values it carries over. */
	b->fp_skip = true;
	obj_msg(b, o, NFT_MSG_NEWOBJ, NLM_F_CREATE | NLM_F_EXCL, &ref);
	b->fp_skip = false;
	nft_batch_fp_mix(b, &which, sizeof(which));
	nft_batch_fp_mix(b, service, strlen(service));
}

void nft_msg_svc_obj_del(struct nft_batch *b, enum nft_svc_name which, const char *service,
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

	if (!nft_svc_name(NFT_SVC_CHAIN, service, chain, sizeof(chain)) ||
	    !nft_svc_name(NFT_SVC_LIMIT, service, limit, sizeof(limit)) ||
	    !nft_svc_name(NFT_SVC_ADMITTED, service, admitted, sizeof(admitted)) ||
	    !nft_svc_name(NFT_SVC_LIMITED, service, limited, sizeof(limited)))
		return nft_batch_fail(b, -ENAMETOOLONG);
	r = nft_rule_new(chain);
	nft_expr_objref(r, NFT_OBJECT_LIMIT, limit);
	nft_expr_objref(r, NFT_OBJECT_COUNTER, admitted);
	nft_expr_verdict(r, NFT_RETURN, NULL);
	nft_rule_msg(b, r, &ref);
	/* Refused like a port without endpoints: TCP reset, ICMP port unreachable. */
	r = nft_rule_new(chain);
	nft_expr_objref(r, NFT_OBJECT_COUNTER, limited);
	nft_expr_goto(r, NFT_REJECT_CHAIN);
	nft_rule_msg(b, r, &ref);
}

static void svc_chain_msg(struct nft_batch *b, const char *service, uint16_t type, uint16_t flags,
			  uint8_t what)
{
	struct nft_msg_ref ref = { .what = what, .service = service };
	char chain[NFT_OBJ_NAME_MAX];

	if (!nft_svc_name(NFT_SVC_CHAIN, service, chain, sizeof(chain)))
		return nft_batch_fail(b, -ENAMETOOLONG);
	nft_chain_msg(b, nft_chain_new(chain), type, flags, &ref);
}

void nft_msg_svc_add(struct nft_batch *b, const char *service, const struct rate_limit *rl,
		     uint64_t admitted_pkts, uint64_t admitted_bytes, uint64_t limited_pkts,
		     uint64_t limited_bytes)
{
	nft_msg_svc_counter_add(b, NFT_SVC_ADMITTED, service, admitted_pkts, admitted_bytes);
	nft_msg_svc_counter_add(b, NFT_SVC_LIMITED, service, limited_pkts, limited_bytes);
	svc_limit_obj_add(b, service, rl);
	svc_chain_msg(b, service, NFT_MSG_NEWCHAIN, NLM_F_CREATE | NLM_F_EXCL,
		      NFT_WHAT_SVC_CHAIN_ADD);
	svc_chain_rules(b, service);
}

void nft_msg_svc_update(struct nft_batch *b, const char *service, const struct rate_limit *rl)
{
	struct nft_msg_ref ref = { .what = NFT_WHAT_SVC_CHAIN_FLUSH, .service = service };
	char chain[NFT_OBJ_NAME_MAX];

	if (!nft_svc_name(NFT_SVC_CHAIN, service, chain, sizeof(chain)))
		return nft_batch_fail(b, -ENAMETOOLONG);
	/* DELRULE with a chain and no handle empties the chain: the limit loses its user. */
	nft_rule_flush_msg(b, chain, &ref);
	nft_msg_svc_obj_del(b, NFT_SVC_LIMIT, service, NFT_OBJECT_LIMIT);
	svc_limit_obj_add(b, service, rl);
	svc_chain_rules(b, service);
}

void nft_msg_svc_del(struct nft_batch *b, const char *service)
{
	svc_chain_msg(b, service, NFT_MSG_DELCHAIN, 0, NFT_WHAT_SVC_CHAIN_DEL);
	nft_msg_svc_obj_del(b, NFT_SVC_LIMIT, service, NFT_OBJECT_LIMIT);
	nft_msg_svc_obj_del(b, NFT_SVC_ADMITTED, service, NFT_OBJECT_COUNTER);
	nft_msg_svc_obj_del(b, NFT_SVC_LIMITED, service, NFT_OBJECT_COUNTER);
}
