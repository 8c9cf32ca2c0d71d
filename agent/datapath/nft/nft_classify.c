// SPDX-License-Identifier: Apache-2.0
/*
 * What the nftables datapath does with one frontend: its class and the
 * predicates on it, asked by the planner and by the message builders alike.
 */
#include <string.h>

#include "datapath/nft/nft_classify.h"
#include "datapath/nft/nft_ratelimit.h"

bool nft_addr_unspecified(const struct ip_addr *addr)
{
	static const uint8_t zero[16];

	return !memcmp(addr->bytes, zero, addr->family == AF_INET ? 4 : 16);
}

bool nft_fe_is_node_port(const struct frontend *fe)
{
	return fe->key.proto && nft_addr_unspecified(&fe->key.addr);
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

bool nft_fe_has_affinity(const struct frontend *fe)
{
	return fe->affinity_timeout && nft_fe_classify(fe) == NFT_FE_SERVE;
}

bool nft_fe_has_rate(const struct frontend *fe)
{
	return fe->service && fe->service[0] && fe->rate.count;
}

bool nft_fe_counted(const struct frontend *fe, bool all)
{
	enum nft_fe_class cls = nft_fe_classify(fe);

	if (cls == NFT_FE_SKIP || cls == NFT_FE_MARKER || !fe->service || !fe->service[0])
		return false;
	return (all || fe->rate.count) && nft_svc_nameable(fe->service);
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

bool nft_fe_has_node_chain(const struct frontend *fe)
{
	enum nft_fe_class cls = nft_fe_classify(fe);

	if (!fe->has_node_set || fe->node_action != FE_SERVE || fe->kind == FE_CLUSTER_IP ||
	    cls == NFT_FE_SKIP || cls == NFT_FE_MARKER)
		return false;
	for (size_t i = 0; i < fe->n_node_backends; i++)
		if (fe->node_backends[i].addr.family == fe->key.addr.family)
			return true;
	return false;
}

void nft_fe_node_view(const struct frontend *fe, struct frontend *view)
{
	*view = *fe;
	view->action = fe->node_action;
	view->choice = fe->node_choice;
	view->backends = fe->node_backends;
	view->n_backends = fe->n_node_backends;
	view->preserve_source = false;
	view->source_ranges = NULL;
	view->n_source_ranges = 0;
	view->has_node_set = false;
	view->node_backends = NULL;
	view->n_node_backends = 0;
}
