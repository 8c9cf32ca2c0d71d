// SPDX-License-Identifier: Apache-2.0
/*
 * The nftables planner's batches for frontends with a node chain
 * (externalTrafficPolicy Local, traffic born on the node): which messages
 * each transition writes and in which order, so that no element points to
 * a missing chain and no chain is deleted while referenced. That the
 * kernel takes them is test_kernel_node_chains'. No root, no kernel.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <netinet/in.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <libmnl/libmnl.h>
#include <libnftnl/batch.h>
#include <libnftnl/chain.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <cmocka.h>

#include "lib/log.h"
#include "datapath/nft/nft_batch.h"
#include "datapath/nft/nft_datapath.h"
#include "datapath/nft/nft_plan.h"
#include "datapath/nft/nft_ranges.h"
#include "datapath/nft/nft_skeleton.h"
#include "../nft_fixtures.h"

#define LB_OUT "fe-out-10.99.2.21-tcp-80"
#define LB_MAIN "fe-10.99.2.21-tcp-80"

/* One line per message of a batch: "chain NAME", "rule CHAIN", "add SET", ... */
struct plan_run {
	char lines[1024][96];
	size_t n;
};

static void summarize_one(const struct nlmsghdr *nlh, struct plan_run *out)
{
	uint16_t type = NFNL_MSG_TYPE(nlh->nlmsg_type);
	char *line = out->lines[out->n];

	switch (type) {
	case NFT_MSG_NEWCHAIN:
	case NFT_MSG_DELCHAIN: {
		struct nftnl_chain *c = nftnl_chain_alloc();

		assert_int_equal(nftnl_chain_nlmsg_parse(nlh, c), 0);
		snprintf(line, 96, "%s %s", type == NFT_MSG_NEWCHAIN ? "chain" : "delchain",
			 nftnl_chain_get_str(c, NFTNL_CHAIN_NAME));
		nftnl_chain_free(c);
		break;
	}
	case NFT_MSG_NEWRULE:
	case NFT_MSG_DELRULE: {
		struct nftnl_rule *r = nftnl_rule_alloc();

		assert_int_equal(nftnl_rule_nlmsg_parse(nlh, r), 0);
		snprintf(line, 96, "%s %s", type == NFT_MSG_NEWRULE ? "rule" : "flush",
			 nftnl_rule_get_str(r, NFTNL_RULE_CHAIN));
		nftnl_rule_free(r);
		break;
	}
	case NFT_MSG_NEWSETELEM:
	case NFT_MSG_DELSETELEM: {
		struct nftnl_set *s = nftnl_set_alloc();

		assert_int_equal(nftnl_set_elems_nlmsg_parse(nlh, s), 0);
		snprintf(line, 96, "%s %s", type == NFT_MSG_NEWSETELEM ? "add" : "del",
			 nftnl_set_get_str(s, NFTNL_SET_NAME));
		nftnl_set_free(s);
		break;
	}
	default:
		return;
	}
	out->n++;
}

static void summarize(struct nft_batch *b, struct plan_run *out)
{
	struct iovec iov[64];
	int n_iov = nftnl_batch_iovec_len(b->nb);

	assert_true(n_iov > 0 && n_iov <= 64);
	nftnl_batch_iovec(b->nb, iov, n_iov);
	out->n = 0;
	for (int i = 0; i < n_iov; i++) {
		const struct nlmsghdr *nlh = iov[i].iov_base;
		int len = iov[i].iov_len;

		for (; mnl_nlmsg_ok(nlh, len); nlh = mnl_nlmsg_next(nlh, &len)) {
			assert_true(out->n < 1024);
			summarize_one(nlh, out);
		}
	}
}

/* Index of the first line equal to want (a prefix match if want ends in '*'), or -1. */
static int find(const struct plan_run *r, const char *want)
{
	size_t len = strlen(want);
	bool prefix = len && want[len - 1] == '*';

	for (size_t i = 0; i < r->n; i++)
		if (prefix ? !strncmp(r->lines[i], want, len - 1) : !strcmp(r->lines[i], want))
			return i;
	return -1;
}

static int find_last(const struct plan_run *r, const char *want)
{
	int last = -1;

	for (size_t i = 0; i < r->n; i++)
		if (!strcmp(r->lines[i], want))
			last = i;
	return last;
}

static int find_last_prefix(const struct plan_run *r, const char *prefix)
{
	int last = -1;

	for (size_t i = 0; i < r->n; i++)
		if (!strncmp(r->lines[i], prefix, strlen(prefix)))
			last = i;
	return last;
}

static struct datapath *dp_new(void)
{
	struct datapath *dp = calloc(1, sizeof(*dp));

	strmap_init(&dp->services);
	nft_ranges_init(&dp->ranges);
	return dp;
}

static void dp_free(struct datapath *dp)
{
	nft_services_clear(dp);
	strmap_destroy(&dp->services);
	nft_ranges_destroy(&dp->ranges);
	free(dp->ops);
	free(dp->touched);
	free(dp);
}

/* Plans one diff as the apply does and settles it as if the kernel took it. */
static void plan(struct datapath *dp, const struct state_diff *diff, struct plan_run *out)
{
	struct strmap none;
	struct nft_batch b;

	strmap_init(&none);
	nft_services_plan(dp, diff);
	nft_batch_init(&b, 1);
	if (diff->full)
		nft_build_full(dp, &b, diff, &none);
	else
		nft_build_incremental(dp, &b, diff);
	assert_int_equal(nft_batch_finish(&b), 0);
	assert_int_equal(dp->ops_err, 0);
	summarize(&b, out);
	nft_batch_free(&b);
	nft_services_finish(dp, true);
	nft_ranges_finish(dp, true);
	strmap_destroy(&none);
}

/* One change; the first apply after open is a full sync. */
static void plan_one(struct datapath *dp, bool full, const struct frontend *old,
		     const struct frontend *new, struct plan_run *out)
{
	struct frontend_change ch = { old, new };
	struct state_diff diff = { .full = full, .changes = &ch, .n_changes = 1 };

	plan(dp, &diff, out);
}

static void test_full_sync_writes_node_chains(void **state)
{
	struct plan_run *r = calloc(1, sizeof(*r));
	struct datapath *dp = dp_new();
	struct frontend lb, np, plain;
	struct frontend_change ch[3] = { { NULL, &lb }, { NULL, &np }, { NULL, &plain } };
	struct state_diff diff = { .full = true, .changes = ch, .n_changes = 3 };

	/* Dropped from outside (no local endpoint), two endpoints elsewhere. */
	fe_init(&lb, "10.99.2.21", IPPROTO_TCP, 80, FE_DROP, 0, "10.1", 0);
	fe_node_set(&lb, FE_LB_INGRESS, 2, "10.244", 8080);
	fe_init(&np, "0.0.0.0", IPPROTO_UDP, 30081, FE_SERVE, 1, "10.244", 5353);
	fe_node_set(&np, FE_NODE_PORT, 2, "10.244", 5353);
	/* Policy Cluster: no second chain, no per-packet cost. */
	fe_init(&plain, "10.99.2.22", IPPROTO_TCP, 80, FE_SERVE, 2, "10.244", 8080);
	plain.kind = FE_LB_INGRESS;
	plan(dp, &diff, r);
	assert_true(find(r, "chain " LB_OUT) >= 0);
	assert_int_equal(find(r, "chain " LB_MAIN), -1);
	assert_true(find(r, "chain fe-out-nodeport4-udp-30081") >= 0);
	assert_true(find(r, "chain fe-nodeport4-udp-30081") >= 0);
	assert_int_equal(find(r, "chain fe-out-10.99.2.22-tcp-80"), -1);
	/* Rules first, then the backends, then the elements that point to the chains. */
	assert_true(find_last(r, "rule " LB_OUT) < find(r, "add backends4-*"));
	assert_true(find(r, "add backends4-*") < find(r, "add node-services4"));
	assert_true(find(r, "add node-nodeports4") > find(r, "chain fe-out-nodeport4-udp-30081"));
	assert_true(find(r, "add no-endpoints4") >= 0);
	dp_free(dp);
	frontend_clear(&lb);
	frontend_clear(&np);
	frontend_clear(&plain);
	free(r);
}

/*
 * Each transition of one frontend: the node set changed (the chain rewritten
 * in place), the outside side alone, policy Cluster and back, no endpoint
 * anywhere, removal. Element deletions come before the chain deletions,
 * chains before the elements that point to them.
 */
static void test_node_chain_transitions(void **state)
{
	struct plan_run *r = calloc(1, sizeof(*r));
	struct datapath *dp = dp_new();
	struct frontend a[6];
	int i;

	fe_init(&a[0], "10.99.2.21", IPPROTO_TCP, 80, FE_DROP, 0, "10.1", 0);
	fe_node_set(&a[0], FE_LB_INGRESS, 2, "10.244", 8080);
	fe_init(&a[1], "10.99.2.21", IPPROTO_TCP, 80, FE_DROP, 0, "10.1", 0);
	fe_node_set(&a[1], FE_LB_INGRESS, 3, "10.244", 8080);
	fe_init(&a[2], "10.99.2.21", IPPROTO_TCP, 80, FE_SERVE, 1, "10.244", 8080);
	fe_node_set(&a[2], FE_LB_INGRESS, 3, "10.244", 8080);
	fe_init(&a[3], "10.99.2.21", IPPROTO_TCP, 80, FE_SERVE, 3, "10.244", 8080);
	a[3].kind = FE_LB_INGRESS;
	fe_init(&a[4], "10.99.2.21", IPPROTO_TCP, 80, FE_SERVE, 1, "10.244", 8080);
	fe_node_set(&a[4], FE_LB_INGRESS, 3, "10.244", 8080);
	fe_init(&a[5], "10.99.2.21", IPPROTO_TCP, 80, FE_REFUSE, 0, "10.1", 0);
	fe_node_set(&a[5], FE_LB_INGRESS, 0, "10.244", 8080);
	plan_one(dp, true, NULL, &a[0], r);

	/* New node set: a new range before the rule, the old one deleted after it. */
	plan_one(dp, false, &a[0], &a[1], r);
	i = find(r, "flush " LB_OUT);
	assert_true(i >= 0);
	assert_true(find(r, "add backends4-*") < find(r, "rule " LB_OUT));
	assert_true(find(r, "del backends4-*") > find_last(r, "rule " LB_OUT));
	assert_int_equal(find(r, "chain " LB_OUT), -1);
	assert_int_equal(find(r, "add node-services4"), -1);
	assert_int_equal(find(r, "del node-services4"), -1);
	assert_int_equal(find(r, "add no-endpoints4"), -1); /* the outside side is the same */

	/* A local endpoint: the main side is added, the node chain is untouched. */
	plan_one(dp, false, &a[1], &a[2], r);
	assert_true(find(r, "del no-endpoints4") < find(r, "chain " LB_MAIN));
	assert_true(find(r, "chain " LB_MAIN) < find(r, "add services4"));
	assert_int_equal(find(r, "flush " LB_OUT), -1);
	assert_int_equal(find(r, "rule " LB_OUT), -1);

	/* Policy Cluster: the element goes first, then the chain; the main chain is rewritten. */
	plan_one(dp, false, &a[2], &a[3], r);
	assert_true(find(r, "del node-services4") >= 0);
	assert_true(find(r, "del node-services4") < find(r, "delchain " LB_OUT));
	assert_true(find(r, "del backends4-*") >= 0);
	assert_true(find(r, "flush " LB_MAIN) >= 0);

	/* Local again: the chain first, then its element. */
	plan_one(dp, false, &a[3], &a[4], r);
	assert_true(find(r, "chain " LB_OUT) >= 0);
	assert_true(find(r, "chain " LB_OUT) < find(r, "add node-services4"));
	assert_true(find_last(r, "rule " LB_OUT) < find(r, "add node-services4"));

	/* No endpoint anywhere: both chains go, refused from everywhere. */
	plan_one(dp, false, &a[4], &a[5], r);
	assert_true(find(r, "del node-services4") < find(r, "delchain " LB_OUT));
	assert_true(find(r, "del services4") < find(r, "delchain " LB_MAIN));
	assert_true(find(r, "add no-endpoints4") > find(r, "delchain " LB_MAIN));
	assert_int_equal(find(r, "add node-services4"), -1);

	/* Back to a served node set, then removed: element, chain, range. */
	plan_one(dp, false, &a[5], &a[4], r);
	plan_one(dp, false, &a[4], NULL, r);
	assert_true(find(r, "del node-services4") < find(r, "delchain " LB_OUT));
	assert_true(find(r, "delchain " LB_OUT) < find_last_prefix(r, "del backends4-"));
	assert_int_equal(dp->ranges.owner.count, 0); /* every range given back */
	dp_free(dp);
	for (int k = 0; k < 6; k++)
		frontend_clear(&a[k]);
	free(r);
}

/* Affinity and a rate limit on the node side: its own endpoint chains, the Service's bucket. */
static void test_node_chain_affinity_and_limit(void **state)
{
	struct plan_run *r = calloc(1, sizeof(*r));
	struct datapath *dp = dp_new();
	struct frontend a, b;

	fe_init(&a, "fd00:99::21", IPPROTO_TCP, 80, FE_SERVE, 1, "fd00:1::", 8080);
	fe_node_set(&a, FE_LB_INGRESS, 2, "fd00:1::", 8080);
	a.affinity_timeout = 60;
	a.service = strdup("shop/cart");
	a.rate = (struct rate_limit){ .count = 5, .period = 1, .burst = 5 };
	plan_one(dp, true, NULL, &a, r);
	assert_true(find(r, "chain ep-fd00_99__21-tcp-80-fd00_1__1-8080") >= 0);
	assert_true(find(r, "chain ep-out-fd00_99__21-tcp-80-fd00_1__1-8080") >= 0);
	assert_true(find(r, "chain ep-out-fd00_99__21-tcp-80-fd00_1__2-8080") >= 0);
	assert_true(find(r, "chain limit.shop.cart") < find(r, "chain fe-out-fd00_99__21-tcp-80"));
	assert_true(find(r, "add node-services6") >= 0);
	assert_int_equal(find(r, "add backends6-*"), -1); /* affinity holds no range */

	/* One node endpoint gone: its chain goes, the other keeps its clients. */
	fe_init(&b, "fd00:99::21", IPPROTO_TCP, 80, FE_SERVE, 1, "fd00:1::", 8080);
	fe_node_set(&b, FE_LB_INGRESS, 1, "fd00:1::", 8080);
	b.affinity_timeout = 60;
	b.service = strdup("shop/cart");
	b.rate = a.rate;
	plan_one(dp, false, &a, &b, r);
	assert_true(find(r, "flush fe-out-fd00_99__21-tcp-80") >= 0);
	assert_true(find(r, "delchain ep-out-fd00_99__21-tcp-80-fd00_1__2-8080") >= 0);
	assert_int_equal(find(r, "delchain ep-out-fd00_99__21-tcp-80-fd00_1__1-8080"), -1);
	assert_int_equal(find(r, "flush fe-fd00_99__21-tcp-80"), -1);

	/* Removed: both sides' chains before the Service's limit chain. */
	plan_one(dp, false, &b, NULL, r);
	assert_true(find(r, "delchain fe-out-fd00_99__21-tcp-80") <
		    find(r, "delchain limit.shop.cart"));
	assert_true(find(r, "delchain fe-fd00_99__21-tcp-80") <
		    find(r, "delchain limit.shop.cart"));
	dp_free(dp);
	frontend_clear(&a);
	frontend_clear(&b);
	free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full_sync_writes_node_chains),
		cmocka_unit_test(test_node_chain_transitions),
		cmocka_unit_test(test_node_chain_affinity_and_limit),
	};

	log_set_level(getenv("SLUICE_DEBUG") ? LOG_DEBUG : LOG_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
