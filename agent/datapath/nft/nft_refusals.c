// SPDX-License-Identifier: Apache-2.0
/*
 * Refusals counted per Service: the messages that add and delete a counted
 * Service's refusal counters and the chains that count and refuse or drop.
 * Only refused packets reach them (the element's verdict jumps there), so
 * served flows pay nothing.
 */
#include <errno.h>
#include <netinet/in.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netlink.h>

#include "datapath/nft/nft_batch.h"
#include "datapath/nft/nft_expr.h"
#include "datapath/nft/nft_refusals.h"
#include "datapath/nft/nft_skeleton.h"

const enum nft_svc_name nft_refusal_counters[NFT_REFUSALS] = {
	NFT_SVC_NO_ENDPOINTS,
	NFT_SVC_POLICY_DROP,
	NFT_SVC_SOURCE_RANGE,
};

void nft_msg_refusals_add(struct nft_batch *b, const char *service,
			  const uint64_t pkts[NFT_REFUSALS], const uint64_t bytes[NFT_REFUSALS])
{
	for (int i = 0; i < NFT_REFUSALS; i++)
		nft_msg_svc_counter_add(b, nft_refusal_counters[i], service, pkts[i], bytes[i]);
}

void nft_msg_refusals_del(struct nft_batch *b, const char *service)
{
	for (int i = 0; i < NFT_REFUSALS; i++)
		nft_msg_svc_obj_del(b, nft_refusal_counters[i], service, NFT_OBJECT_COUNTER);
}

void nft_msg_refusal_chain_add(struct nft_batch *b, const char *service, bool drop)
{
	struct nft_msg_ref ref = { .what = NFT_WHAT_SVC_CHAIN_ADD, .service = service };
	char chain[NFT_OBJ_NAME_MAX], counter[NFT_OBJ_NAME_MAX];
	struct nftnl_rule *r;

	if (!nft_svc_name(drop ? NFT_SVC_DROP_CHAIN : NFT_SVC_REFUSE_CHAIN, service, chain,
			  sizeof(chain)) ||
	    !nft_svc_name(drop ? NFT_SVC_POLICY_DROP : NFT_SVC_NO_ENDPOINTS, service, counter,
			  sizeof(counter)))
		return nft_batch_fail(b, -ENAMETOOLONG);
	nft_chain_msg(b, nft_chain_new(chain), NFT_MSG_NEWCHAIN, NLM_F_CREATE | NLM_F_EXCL, &ref);
	ref.what = NFT_WHAT_SVC_RULE;
	r = nft_rule_new(chain);
	nft_expr_objref(r, NFT_OBJECT_COUNTER, counter);
	if (drop)
		nft_expr_verdict(r, NF_DROP, NULL);
	else
		nft_expr_goto(r, NFT_REJECT_CHAIN);
	nft_rule_msg(b, r, &ref);
}

void nft_msg_refusal_chain_del(struct nft_batch *b, const char *service, bool drop)
{
	struct nft_msg_ref ref = { .what = NFT_WHAT_SVC_CHAIN_DEL, .service = service };
	char chain[NFT_OBJ_NAME_MAX];

	if (!nft_svc_name(drop ? NFT_SVC_DROP_CHAIN : NFT_SVC_REFUSE_CHAIN, service, chain,
			  sizeof(chain)))
		return nft_batch_fail(b, -ENAMETOOLONG);
	nft_chain_msg(b, nft_chain_new(chain), NFT_MSG_DELCHAIN, 0, &ref);
}
