// SPDX-License-Identifier: Apache-2.0
/*
 * --nodeport-addresses on nftables: the NodePort rules look the packet's
 * destination up in interval sets nodeport-addrs4/6 after "fib daddr type
 * local", so a CIDR list needs no tracking of the node's addresses; an
 * unrestricted family holds 0.0.0.0/0 or ::/0.
 */
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nf_tables.h>

#include "lib/xalloc.h"
#include "datapath/nft/nft_batch.h"
#include "datapath/nft/nft_firewall.h"
#include "datapath/nft/nft_node_ports.h"
#include "datapath/nft/nft_skeleton.h"

static void family_elems(struct nft_batch *b, const struct node_port_addrs *np, bool v6, bool flush)
{
	enum nft_named_set which = v6 ? NFT_SET_NODEPORT_ADDRS6 : NFT_SET_NODEPORT_ADDRS4;
	struct nft_msg_ref ref = { .what = NFT_WHAT_NODEPORT_ADDRS, .set = which };
	int family = v6 ? AF_INET6 : AF_INET;
	bool all = !np || (v6 ? np->all_v6 : np->all_v4);
	struct frontend fe = { .key.addr.family = family };
	struct nlmsghdr *nlh;
	struct cidr *ranges;
	size_t n = 0;

	ranges = xcalloc((np ? np->n_cidrs : 0) + 1, sizeof(*ranges));
	if (all) {
		ranges[n].addr.family = family; /* prefix 0: everything */
		n++;
	}
	for (size_t i = 0; !all && i < np->n_cidrs; i++) {
		if (np->cidrs[i].addr.family == family)
			ranges[n++] = np->cidrs[i];
	}
	fe.source_ranges = ranges;
	fe.n_source_ranges = n;
	if (flush) {
		/* DELSETELEM without elements empties the set. */
		nlh = nft_msg_start(b, NFT_MSG_DELSETELEM, 0, &ref);
		if (nlh) {
			mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_TABLE, NFT_TABLE_NAME);
			mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_SET, nft_set_name(which));
			nft_msg_end(b);
		}
	}
	nft_msg_range_elems(b, &fe, nft_set_name(which), 0, &ref);
	free(ranges);
}

void nft_msg_node_port_addrs(struct nft_batch *b, const struct node_port_addrs *np, bool flush)
{
	family_elems(b, np, false, flush);
	family_elems(b, np, true, flush);
}
