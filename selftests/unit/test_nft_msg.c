// SPDX-License-Identifier: Apache-2.0
/*
 * Tests of the netlink messages the nftables datapath builds, parsed back
 * with libnftnl: names, the skeleton, frontends, rate limits, affinity and
 * source-range firewalls. No root, no kernel.
 */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>
#include <netinet/in.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nf_nat.h>
#include <libmnl/libmnl.h>
#include <libnftnl/batch.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/object.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <cmocka.h>

#include "lib/log.h"
#include "datapath/nft/nft_batch.h"
#include "datapath/nft/nft_classify.h"
#include "datapath/nft/nft_elems.h"
#include "datapath/nft/nft_firewall.h"
#include "datapath/nft/nft_frontend.h"
#include "datapath/nft/nft_plan.h"
#include "datapath/nft/nft_port_shift.h"
#include "datapath/nft/nft_ratelimit.h"
#include "datapath/nft/nft_refusals.h"
#include "datapath/nft/nft_skeleton.h"
#include "../nft_fixtures.h"

/* ---- fixtures ---- */

/* Every message of a finished batch, in order, BEGIN and END included. */
struct msg_list {
	struct nlmsghdr *msgs[4096];
	size_t n;
	struct iovec iov[64];
};

static void collect_msgs(struct nft_batch *b, struct msg_list *out)
{
	int n_iov = nftnl_batch_iovec_len(b->nb);

	assert_true(n_iov > 0 && n_iov <= 64);
	nftnl_batch_iovec(b->nb, out->iov, n_iov);
	out->n = 0;
	for (int i = 0; i < n_iov; i++) {
		struct nlmsghdr *nlh = out->iov[i].iov_base;
		int len = out->iov[i].iov_len;

		for (; mnl_nlmsg_ok(nlh, len); nlh = mnl_nlmsg_next(nlh, &len)) {
			assert_true(out->n < 4096);
			out->msgs[out->n++] = nlh;
		}
	}
}

static uint16_t msg_type(const struct nlmsghdr *nlh)
{
	return NFNL_MSG_TYPE(nlh->nlmsg_type);
}

/* The n-th expression of rule r. */
static struct nftnl_expr *rule_expr(struct nftnl_rule *r, int n)
{
	struct nftnl_expr_iter *it = nftnl_expr_iter_create(r);
	struct nftnl_expr *e = nftnl_expr_iter_next(it);

	while (e && n--)
		e = nftnl_expr_iter_next(it);
	nftnl_expr_iter_destroy(it);
	assert_non_null(e);
	return e;
}

static void assert_expr_name(struct nftnl_expr *e, const char *name)
{
	assert_string_equal(nftnl_expr_get_str(e, NFTNL_EXPR_NAME), name);
}

/* ---- unit tests: names and messages ---- */

static void test_chain_names(void **state)
{
	struct frontend_key key = { 0 };
	char name[NFT_CHAIN_NAME_MAX];

	ip_addr_parse("10.96.0.10", &key.addr);
	key.proto = IPPROTO_TCP;
	key.port = 80;
	nft_fe_chain_name(&key, name, sizeof(name));
	assert_string_equal(name, "fe-10.96.0.10-tcp-80");
	ip_addr_parse("fd00:96::10", &key.addr);
	key.proto = IPPROTO_UDP;
	key.port = 53;
	nft_fe_chain_name(&key, name, sizeof(name));
	assert_string_equal(name, "fe-fd00_96__10-udp-53");
	ip_addr_parse("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", &key.addr);
	key.proto = IPPROTO_SCTP;
	key.port = 65535;
	nft_fe_chain_name(&key, name, sizeof(name));
	assert_string_equal(name, "fe-ffff_ffff_ffff_ffff_ffff_ffff_ffff_fffe-sctp-65535");
}

static void test_classify(void **state)
{
	struct frontend fe;

	fe_marker(&fe, "10.96.0.10");
	assert_int_equal(nft_fe_classify(&fe), NFT_FE_MARKER);
	frontend_clear(&fe);
	fe_init(&fe, "10.96.0.10", IPPROTO_TCP, 80, FE_SERVE, 2, "10.1", 8080);
	assert_int_equal(nft_fe_classify(&fe), NFT_FE_SERVE);
	fe.n_backends = 0; /* served without backends: refused, never a DNAT to nothing */
	assert_int_equal(nft_fe_classify(&fe), NFT_FE_REFUSE);
	fe.action = FE_DROP;
	assert_int_equal(nft_fe_classify(&fe), NFT_FE_DROP);
	frontend_clear(&fe);
	fe_init(&fe, "0.0.0.0", IPPROTO_TCP, 30080, FE_SERVE, 1, "10.1", 8080);
	fe.kind = FE_NODE_PORT;
	assert_int_equal(nft_fe_classify(&fe), NFT_FE_SERVE);
	assert_true(nft_fe_is_node_port(&fe));
	fe.action = FE_DROP;
	assert_int_equal(nft_fe_classify(&fe), NFT_FE_DROP);
	frontend_clear(&fe);
	fe_init(&fe, "10.96.0.10", IPPROTO_TCP, 80, FE_SERVE, 1, "10.1", 8080);
	assert_false(nft_fe_is_node_port(&fe));
	frontend_clear(&fe);
}

/*
 * Checks one served frontend's range of backends4/6 (added, then deleted)
 * and its rule: numgen random mod N offset BASE, lookup @backends4.
 */
static void check_dnat_messages(const struct frontend *fe, bool v6)
{
	const uint32_t base = 1000;
	struct nft_batch b;
	struct msg_list *ml = calloc(1, sizeof(*ml));
	struct nftnl_set *elems = nftnl_set_alloc();
	struct nftnl_set *dels = nftnl_set_alloc();
	struct nftnl_rule *rule = nftnl_rule_alloc();
	struct nftnl_set_elems_iter *it;
	struct nftnl_set_elem *e;
	char chain[NFT_CHAIN_NAME_MAX];
	struct nftnl_expr *x;
	uint32_t len, idx = 0;
	char map[NFT_BACKENDS_NAME_MAX];
	int mark = 0; /* expressions of the shift mark before numgen */

	assert_non_null(ml);
	nft_backends_map_name(v6, nft_fe_backend_shard(&fe->key, NFT_BACKEND_SHARDS_MIN), map,
			      sizeof(map));
	assert_true(nft_fe_backend_shard(&fe->key, NFT_BACKEND_SHARDS_MIN) <
		    NFT_BACKEND_SHARDS_MIN);
	assert_int_equal(strncmp(map, v6 ? "backends6-" : "backends4-", 10), 0);
	nft_batch_init(&b, 100);
	nft_msg_fe_backends(&b, NFT_MSG_NEWSETELEM, fe, NFT_SIDE_MAIN, base);
	nft_msg_fe_dnat_rule(&b, fe, NFT_SIDE_MAIN, base);
	nft_msg_fe_backends(&b, NFT_MSG_DELSETELEM, fe, NFT_SIDE_MAIN, base);
	assert_int_equal(nft_batch_finish(&b), 0);
	collect_msgs(&b, ml);
	/* BEGIN, NEWSETELEM, NEWRULE, DELSETELEM, END */
	assert_int_equal(ml->n, 5);
	assert_int_equal(ml->msgs[0]->nlmsg_type, NFNL_MSG_BATCH_BEGIN);
	assert_int_equal(ml->msgs[0]->nlmsg_seq, 100);
	assert_int_equal(ml->msgs[4]->nlmsg_type, NFNL_MSG_BATCH_END);

	assert_int_equal(msg_type(ml->msgs[1]), NFT_MSG_NEWSETELEM);
	assert_int_equal(nftnl_set_elems_nlmsg_parse(ml->msgs[1], elems), 0);
	assert_string_equal(nftnl_set_get_str(elems, NFTNL_SET_NAME), map);
	assert_false(nftnl_set_is_set(elems, NFTNL_SET_ID)); /* found by name: it is named */
	it = nftnl_set_elems_iter_create(elems);
	for (e = nftnl_set_elems_iter_next(it); e; e = nftnl_set_elems_iter_next(it), idx++) {
		const uint32_t *key = nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &len);
		const uint8_t *data = nftnl_set_elem_get(e, NFTNL_SET_ELEM_DATA, &len);
		const struct backend *be = &fe->backends[idx];
		size_t alen = v6 ? 16 : 4;
		uint16_t port;

		assert_int_equal(*key, base + idx); /* numgen's value, host order */
		assert_int_equal(len, alen + 4);
		assert_memory_equal(data, be->addr.bytes, alen);
		memcpy(&port, data + alen, 2);
		assert_int_equal(ntohs(port), be->port);
	}
	nftnl_set_elems_iter_destroy(it);
	assert_int_equal(idx, fe->n_backends);
	assert_int_equal(nft_batch_ref(&b, 101)->what, NFT_WHAT_BACKENDS_ADD);
	assert_int_equal(nft_batch_ref(&b, 101)->count, fe->n_backends);

	assert_int_equal(msg_type(ml->msgs[2]), NFT_MSG_NEWRULE);
	assert_false(ml->msgs[1]->nlmsg_flags & NLM_F_ACK);
	assert_int_equal(nftnl_rule_nlmsg_parse(ml->msgs[2], rule), 0);
	nft_fe_chain_name(&fe->key, chain, sizeof(chain));
	assert_string_equal(nftnl_rule_get_str(rule, NFTNL_RULE_CHAIN), chain);
	/* meta l4proto => reg 1; cmp eq reg 1 P */
	x = rule_expr(rule, 0);
	assert_expr_name(x, "meta");
	assert_int_equal(nftnl_expr_get_u32(x, NFTNL_EXPR_META_KEY), NFT_META_L4PROTO);
	x = rule_expr(rule, 1);
	assert_expr_name(x, "cmp");
	assert_int_equal(*(const uint8_t *)nftnl_expr_get(x, NFTNL_EXPR_CMP_DATA, &len),
			 fe->key.proto);
	/* TCP: meta mark set meta mark | 0x8000 (the client-port shift) */
	if (fe->key.proto == IPPROTO_TCP) {
		assert_expr_name(rule_expr(rule, 2), "meta");
		x = rule_expr(rule, 3);
		assert_expr_name(x, "bitwise");
		assert_int_equal(*(const uint32_t *)nftnl_expr_get(x, NFTNL_EXPR_BITWISE_XOR, &len),
				 NFT_SHIFT_MARK);
		x = rule_expr(rule, 4);
		assert_expr_name(x, "meta");
		assert_int_equal(nftnl_expr_get_u32(x, NFTNL_EXPR_META_KEY), NFT_META_MARK);
		assert_true(nftnl_expr_is_set(x, NFTNL_EXPR_META_SREG));
		mark = 3;
	}
	/* numgen reg 1 = random mod N offset BASE */
	x = rule_expr(rule, mark + 2);
	assert_expr_name(x, "numgen");
	assert_int_equal(nftnl_expr_get_u32(x, NFTNL_EXPR_NG_TYPE), NFT_NG_RANDOM);
	assert_int_equal(nftnl_expr_get_u32(x, NFTNL_EXPR_NG_MODULUS), fe->n_backends);
	assert_int_equal(nftnl_expr_get_u32(x, NFTNL_EXPR_NG_OFFSET), base);
	assert_int_equal(nftnl_expr_get_u32(x, NFTNL_EXPR_NG_DREG), NFT_REG_1);
	/* lookup reg 1 set backends4-<shard> dreg 1 */
	x = rule_expr(rule, mark + 3);
	assert_expr_name(x, "lookup");
	assert_string_equal(nftnl_expr_get_str(x, NFTNL_EXPR_LOOKUP_SET), map);
	assert_false(nftnl_expr_is_set(x, NFTNL_EXPR_LOOKUP_SET_ID));
	assert_int_equal(nftnl_expr_get_u32(x, NFTNL_EXPR_LOOKUP_SREG), NFT_REG_1);
	assert_int_equal(nftnl_expr_get_u32(x, NFTNL_EXPR_LOOKUP_DREG), NFT_REG_1);
	/* nat dnat ip addr_min reg 1 proto_min reg 9 (ip6: reg 2) */
	x = rule_expr(rule, mark + 4);
	assert_expr_name(x, "nat");
	assert_int_equal(nftnl_expr_get_u32(x, NFTNL_EXPR_NAT_TYPE), NFT_NAT_DNAT);
	assert_int_equal(nftnl_expr_get_u32(x, NFTNL_EXPR_NAT_FAMILY),
			 v6 ? NFPROTO_IPV6 : NFPROTO_IPV4);
	assert_int_equal(nftnl_expr_get_u32(x, NFTNL_EXPR_NAT_REG_ADDR_MIN), NFT_REG_1);
	assert_int_equal(nftnl_expr_get_u32(x, NFTNL_EXPR_NAT_REG_PROTO_MIN),
			 v6 ? NFT_REG_2 : NFT_REG32_01);

	/* The delete names the range's keys only; the last message asks for the ACK. */
	assert_int_equal(msg_type(ml->msgs[3]), NFT_MSG_DELSETELEM);
	assert_true(ml->msgs[3]->nlmsg_flags & NLM_F_ACK);
	assert_int_equal(nftnl_set_elems_nlmsg_parse(ml->msgs[3], dels), 0);
	idx = 0;
	it = nftnl_set_elems_iter_create(dels);
	for (e = nftnl_set_elems_iter_next(it); e; e = nftnl_set_elems_iter_next(it), idx++) {
		const uint32_t *key = nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &len);

		assert_int_equal(*key, base + idx);
		assert_false(nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_DATA));
	}
	nftnl_set_elems_iter_destroy(it);
	assert_int_equal(idx, fe->n_backends);
	assert_int_equal(nft_batch_ref(&b, 103)->what, NFT_WHAT_BACKENDS_DEL);

	nftnl_rule_free(rule);
	nftnl_set_free(dels);
	nftnl_set_free(elems);
	nft_batch_free(&b);
	free(ml);
}

static void test_dnat_rule_v4(void **state)
{
	struct frontend fe;

	fe_init(&fe, "10.96.0.10", IPPROTO_TCP, 80, FE_SERVE, 3, "10.1", 8080);
	check_dnat_messages(&fe, false);
	frontend_clear(&fe);
}

static void test_dnat_rule_v6(void **state)
{
	struct frontend fe;

	fe_init(&fe, "fd00:96::10", IPPROTO_UDP, 53, FE_SERVE, 2, "fd00:1::", 5353);
	check_dnat_messages(&fe, true);
	frontend_clear(&fe);
}

/* Parses one element message and returns its set (caller frees). */
static struct nftnl_set *parse_elems(struct nlmsghdr *nlh)
{
	struct nftnl_set *s = nftnl_set_alloc();

	assert_int_equal(nftnl_set_elems_nlmsg_parse(nlh, s), 0);
	return s;
}

static struct nftnl_set_elem *first_elem(struct nftnl_set *s, struct nftnl_set_elems_iter **it)
{
	*it = nftnl_set_elems_iter_create(s);
	return nftnl_set_elems_iter_next(*it);
}

static void test_map_elements(void **state)
{
	struct frontend served, refused, dropped, marker;
	struct msg_list *ml = calloc(1, sizeof(*ml));
	struct nftnl_set_elems_iter *it;
	struct nftnl_set_elem *e;
	struct nftnl_set *s;
	struct nft_batch b;
	const uint8_t *key;
	uint32_t len;

	fe_init(&served, "10.96.0.10", IPPROTO_TCP, 80, FE_SERVE, 1, "10.1", 8080);
	fe_init(&refused, "10.96.0.11", IPPROTO_UDP, 53, FE_REFUSE, 0, "10.1", 0);
	fe_init(&dropped, "fd00:96::12", IPPROTO_TCP, 443, FE_DROP, 0, "10.1", 0);
	fe_marker(&marker, "10.96.0.10");
	nft_batch_init(&b, 1);
	nft_batch_queue_elem(&b, NFT_MSG_NEWSETELEM, &served);
	nft_batch_queue_elem(&b, NFT_MSG_NEWSETELEM, &refused);
	nft_batch_queue_elem(&b, NFT_MSG_NEWSETELEM, &dropped);
	nft_batch_queue_elem(&b, NFT_MSG_NEWSETELEM, &marker);
	/* Changing the message type writes what was queued first. */
	nft_batch_queue_elem(&b, NFT_MSG_DELSETELEM, &served);
	assert_int_equal(nft_batch_finish(&b), 0);
	collect_msgs(&b, ml);
	assert_int_equal(ml->n, 2 + 5);

	/* services4: 10.96.0.10 . tcp . 80 : goto fe-10.96.0.10-tcp-80 */
	assert_int_equal(msg_type(ml->msgs[1]), NFT_MSG_NEWSETELEM);
	s = parse_elems(ml->msgs[1]);
	assert_string_equal(nftnl_set_get_str(s, NFTNL_SET_NAME), "services4");
	e = first_elem(s, &it);
	key = nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &len);
	assert_int_equal(len, 12);
	assert_memory_equal(key, "\x0a\x60\x00\x0a\x06\x00\x00\x00\x00\x50\x00\x00", 12);
	assert_int_equal((int32_t)nftnl_set_elem_get_u32(e, NFTNL_SET_ELEM_VERDICT), NFT_GOTO);
	assert_string_equal(nftnl_set_elem_get_str(e, NFTNL_SET_ELEM_CHAIN),
			    "fe-10.96.0.10-tcp-80");
	nftnl_set_elems_iter_destroy(it);
	nftnl_set_free(s);

	/* no-endpoints4: 10.96.0.11 . udp . 53 : goto reject-chain */
	s = parse_elems(ml->msgs[2]);
	assert_string_equal(nftnl_set_get_str(s, NFTNL_SET_NAME), "no-endpoints4");
	e = first_elem(s, &it);
	assert_int_equal((int32_t)nftnl_set_elem_get_u32(e, NFTNL_SET_ELEM_VERDICT), NFT_GOTO);
	assert_string_equal(nftnl_set_elem_get_str(e, NFTNL_SET_ELEM_CHAIN), "reject-chain");
	nftnl_set_elems_iter_destroy(it);
	nftnl_set_free(s);

	/* no-endpoints6: fd00:96::12 . tcp . 443 : drop, 24-byte key */
	s = parse_elems(ml->msgs[3]);
	assert_string_equal(nftnl_set_get_str(s, NFTNL_SET_NAME), "no-endpoints6");
	e = first_elem(s, &it);
	key = nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &len);
	assert_int_equal(len, 24);
	assert_int_equal(key[16], IPPROTO_TCP);
	assert_int_equal(key[20] << 8 | key[21], 443);
	assert_int_equal(nftnl_set_elem_get_u32(e, NFTNL_SET_ELEM_VERDICT), NF_DROP);
	nftnl_set_elems_iter_destroy(it);
	nftnl_set_free(s);

	/* service-addrs4: the address alone */
	s = parse_elems(ml->msgs[4]);
	assert_string_equal(nftnl_set_get_str(s, NFTNL_SET_NAME), "service-addrs4");
	e = first_elem(s, &it);
	key = nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &len);
	assert_int_equal(len, 4);
	assert_memory_equal(key, "\x0a\x60\x00\x0a", 4);
	nftnl_set_elems_iter_destroy(it);
	nftnl_set_free(s);

	/* The delete names the key only. */
	assert_int_equal(msg_type(ml->msgs[5]), NFT_MSG_DELSETELEM);
	s = parse_elems(ml->msgs[5]);
	e = first_elem(s, &it);
	assert_false(nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_VERDICT));
	assert_false(nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_CHAIN));
	nftnl_set_elems_iter_destroy(it);
	nftnl_set_free(s);

	nft_batch_free(&b);
	frontend_clear(&served);
	frontend_clear(&refused);
	frontend_clear(&dropped);
	frontend_clear(&marker);
	free(ml);
}

/* Many elements and many backends are split into bounded messages, seqs in order. */
static void test_batch_splits_large_sets(void **state)
{
	struct msg_list *ml = calloc(1, sizeof(*ml));
	size_t n = 3 * NFT_ELEMS_PER_MSG + 5, elems_msgs = 0, map_elems = 0;
	struct frontend *fes = calloc(n, sizeof(*fes));
	struct frontend big;
	struct nft_batch b;

	nft_batch_init(&b, 7);
	for (size_t i = 0; i < n; i++) {
		char addr[32];

		snprintf(addr, sizeof(addr), "10.96.%zu.%zu", i / 250, i % 250 + 1);
		fe_init(&fes[i], addr, IPPROTO_TCP, 80, FE_SERVE, 1, "10.1", 8080);
		nft_batch_queue_elem(&b, NFT_MSG_NEWSETELEM, &fes[i]);
	}
	fe_init(&big, "fd00:96::1", IPPROTO_TCP, 80, FE_SERVE, 1000, "fd00:1::", 8080);
	nft_batch_flush_elems(&b);
	nft_msg_fe_backends(&b, NFT_MSG_NEWSETELEM, &big, NFT_SIDE_MAIN, 0);
	nft_msg_fe_dnat_rule(&b, &big, NFT_SIDE_MAIN, 0);
	assert_int_equal(nft_batch_finish(&b), 0);
	collect_msgs(&b, ml);
	for (size_t i = 0; i < ml->n; i++) {
		assert_int_equal(ml->msgs[i]->nlmsg_seq, 7 + i);
		if (msg_type(ml->msgs[i]) == NFT_MSG_NEWSETELEM && ml->msgs[i]->nlmsg_type >> 8) {
			struct nftnl_set *s = parse_elems(ml->msgs[i]);
			const char *name = nftnl_set_get_str(s, NFTNL_SET_NAME);

			if (!strcmp(name, "services4"))
				elems_msgs++;
			else
				map_elems++;
			nftnl_set_free(s);
		}
	}
	assert_int_equal(elems_msgs, 4);
	assert_int_equal(map_elems, (1000 + NFT_ELEMS_PER_MSG - 1) / NFT_ELEMS_PER_MSG);
	/* Refs name each message for error log lines. */
	assert_int_equal(nft_batch_ref(&b, 8)->what, NFT_WHAT_ELEMS_ADD);
	assert_int_equal(nft_batch_ref(&b, 8)->count, NFT_ELEMS_PER_MSG);
	assert_null(nft_batch_ref(&b, 7 + ml->n));
	nft_batch_free(&b);
	for (size_t i = 0; i < n; i++)
		frontend_clear(&fes[i]);
	frontend_clear(&big);
	free(fes);
	free(ml);
}

/* ---- unit tests: affinity and rate-limit messages ---- */

static void test_service_and_endpoint_names(void **state)
{
	struct frontend fe;
	char name[NFT_OBJ_NAME_MAX], svc[256];

	assert_true(nft_svc_name(NFT_SVC_LIMIT, "shop/cart", name, sizeof(name)));
	assert_string_equal(name, "rate.shop.cart");
	assert_int_equal(nft_svc_parse_name(name, svc, sizeof(svc)), NFT_SVC_LIMIT);
	assert_string_equal(svc, "shop/cart");
	assert_true(nft_svc_name(NFT_SVC_ADMITTED, "shop/cart", name, sizeof(name)));
	assert_string_equal(name, "admitted.shop.cart");
	assert_int_equal(nft_svc_parse_name(name, svc, sizeof(svc)), NFT_SVC_ADMITTED);
	assert_true(nft_svc_name(NFT_SVC_LIMITED, "shop/cart", name, sizeof(name)));
	assert_string_equal(name, "limited.shop.cart");
	assert_true(nft_svc_name(NFT_SVC_CHAIN, "shop/cart", name, sizeof(name)));
	assert_string_equal(name, "limit.shop.cart");
	/* Not ours, or malformed. */
	assert_int_equal(nft_svc_parse_name("other", svc, sizeof(svc)), -1);
	assert_int_equal(nft_svc_parse_name("rate.nodot", svc, sizeof(svc)), -1);
	assert_int_equal(nft_svc_parse_name("rate.a.b.c", svc, sizeof(svc)), -1);

	fe_init(&fe, "10.96.0.10", IPPROTO_TCP, 80, FE_SERVE, 1, "10.1", 8080);
	nft_ep_chain_name(&fe.key, NFT_SIDE_MAIN, &fe.backends[0], name, sizeof(name));
	assert_string_equal(name, "ep-10.96.0.10-tcp-80-10.1.0.1-8080");
	nft_ep_set_name(&fe.key, NFT_SIDE_MAIN, &fe.backends[0], name, sizeof(name));
	assert_string_equal(name, "aff-10.96.0.10-tcp-80-10.1.0.1-8080");
	frontend_clear(&fe);
	fe_init(&fe, "fd00:96::10", IPPROTO_UDP, 53, FE_SERVE, 1, "fd00:1::", 53);
	nft_ep_chain_name(&fe.key, NFT_SIDE_MAIN, &fe.backends[0], name, sizeof(name));
	assert_string_equal(name, "ep-fd00_96__10-udp-53-fd00_1__1-53");
	frontend_clear(&fe);
}

/* Every burst fits nft_limit's 64-bit bucket, clamped only where it would not. */
static void test_limit_kernel_burst(void **state)
{
	struct rate_limit rl = { .count = 50, .period = 1, .burst = 10 };

	assert_int_equal(nft_limit_kernel_burst(&rl), 10);
	rl = (struct rate_limit){ .count = 1, .period = 60, .burst = RATE_LIMIT_MAX_BURST };
	/* 60e9 ns per flow x burst must stay below 2^64 */
	assert_int_equal(nft_limit_kernel_burst(&rl), UINT64_MAX / 60000000000ull);
	rl = (struct rate_limit){ .count = RATE_LIMIT_MAX_COUNT,
				  .period = 1,
				  .burst = RATE_LIMIT_MAX_BURST };
	assert_int_equal(nft_limit_kernel_burst(&rl), RATE_LIMIT_MAX_BURST);
}

static struct nftnl_rule *parse_rule(struct nlmsghdr *nlh)
{
	struct nftnl_rule *r = nftnl_rule_alloc();

	assert_int_equal(msg_type(nlh), NFT_MSG_NEWRULE);
	assert_int_equal(nftnl_rule_nlmsg_parse(nlh, r), 0);
	return r;
}

static size_t rule_n_exprs(struct nftnl_rule *r)
{
	struct nftnl_expr_iter *it = nftnl_expr_iter_create(r);
	size_t n = 0;

	while (nftnl_expr_iter_next(it))
		n++;
	nftnl_expr_iter_destroy(it);
	return n;
}

/* The last expression of r is a verdict (immediate) to chain. */
static void assert_verdict(struct nftnl_rule *r, int verdict, const char *chain)
{
	struct nftnl_expr *x = rule_expr(r, rule_n_exprs(r) - 1);

	assert_expr_name(x, "immediate");
	assert_int_equal(nftnl_expr_get_u32(x, NFTNL_EXPR_IMM_DREG), NFT_REG_VERDICT);
	assert_int_equal((int32_t)nftnl_expr_get_u32(x, NFTNL_EXPR_IMM_VERDICT), verdict);
	if (chain)
		assert_string_equal(nftnl_expr_get_str(x, NFTNL_EXPR_IMM_CHAIN), chain);
}

/*
 * Service keys to object names is injective and parses back: the two parts
 * are labels of [a-z0-9-] (the decoder makes sure of it), so the '.' that
 * joins them is found in neither. A key with a '.', such as "a.b/c" and
 * "a/b.c" (both "rate.a.b.c" before), cannot be named at all.
 */
static void test_service_names_injective(void **state)
{
	static const char alphabet[] = { 'a', '-', '0' };
	static const char *const refused[] = {
		"a.b/c", "a/b.c", "a.b/c.d", "",      "a",     "/b",	"a/",
		"a/b/c", "A/b",	  "a/B",     "a_b/c", "a b/c", "a/b\n",
	};
	char parts[39][4], name[NFT_OBJ_NAME_MAX], key[16], back[NFT_OBJ_NAME_MAX];
	char ns63[64], name63[64], longest[140];
	size_t n = 0;

	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		assert_false(nft_svc_nameable(refused[i]));
		for (int which = NFT_SVC_LIMIT; which < NFT_SVC_KINDS; which++)
			assert_false(nft_svc_name(which, refused[i], name, sizeof(name)));
	}
	/* What the old scheme made of them is not a name nft_svc_name writes. */
	assert_int_equal(nft_svc_parse_name("rate.a.b.c", back, sizeof(back)), -1);
	assert_int_equal(nft_svc_parse_name("rate.a_b.c", back, sizeof(back)), -1);
	assert_int_equal(nft_svc_parse_name("rate..c", back, sizeof(back)), -1);
	assert_int_equal(nft_svc_parse_name("rate.a.", back, sizeof(back)), -1);

	/* Every key of two parts of 1-3 of "a-0": each named, parsed back to itself. */
	for (size_t len = 1; len <= 3; len++)
		for (size_t v = 0, m = len == 1 ? 3 : len == 2 ? 9 : 27; v < m; v++) {
			for (size_t i = 0, x = v; i < len; i++, x /= 3)
				parts[n][i] = alphabet[x % 3];
			parts[n++][len] = '\0';
		}
	assert_int_equal(n, 39);
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < n; j++)
			for (int which = NFT_SVC_LIMIT; which < NFT_SVC_KINDS; which++) {
				snprintf(key, sizeof(key), "%s/%s", parts[i], parts[j]);
				assert_true(nft_svc_nameable(key));
				assert_true(nft_svc_name(which, key, name, sizeof(name)));
				assert_int_equal(nft_svc_parse_name(name, back, sizeof(back)),
						 which);
				assert_string_equal(back, key);
			}
	/* "a-b/c" and "a/b-c" stay apart. */
	assert_true(nft_svc_name(NFT_SVC_LIMIT, "a-b/c", name, sizeof(name)));
	assert_string_equal(name, "rate.a-b.c");
	assert_true(nft_svc_name(NFT_SVC_LIMIT, "a/b-c", name, sizeof(name)));
	assert_string_equal(name, "rate.a.b-c");

	/* The longest: 63 + 63, every name within the kernel's limit, parsed back. */
	memset(ns63, '9', 63);
	ns63[63] = '\0';
	memset(name63, 'z', 63);
	name63[63] = '\0';
	snprintf(longest, sizeof(longest), "%s/%s", ns63, name63);
	for (int which = NFT_SVC_LIMIT; which < NFT_SVC_KINDS; which++) {
		assert_true(nft_svc_name(which, longest, name, sizeof(name)));
		assert_true(strlen(name) <= NFT_SVC_NAME_LEN);
		assert_true(strlen(name) <= NFT_OBJ_MAXNAMELEN - 1);
		assert_true(strlen(name) <= NFT_CHAIN_MAXNAMELEN - 1);
		assert_int_equal(nft_svc_parse_name(name, back, sizeof(back)), which);
		assert_string_equal(back, longest);
	}
	assert_true(nft_svc_name(NFT_SVC_NO_ENDPOINTS, longest, name, sizeof(name)));
	assert_int_equal(strlen(name), NFT_SVC_NAME_LEN);
	assert_true(nft_svc_name(NFT_SVC_SOURCE_RANGE, longest, name, sizeof(name)));
	assert_int_equal(strlen(name), NFT_SVC_NAME_LEN);
	assert_int_equal(NFT_SVC_NAME_LEN, 140);
	/* One more character in either part: refused, not cut. */
	snprintf(longest, sizeof(longest), "%s9/%s", ns63, name63);
	assert_false(nft_svc_name(NFT_SVC_LIMIT, longest, name, sizeof(name)));
	snprintf(longest, sizeof(longest), "%s/%sz", ns63, name63);
	assert_false(nft_svc_name(NFT_SVC_LIMIT, longest, name, sizeof(name)));
	/* A buffer too small: refused too. */
	assert_false(nft_svc_name(NFT_SVC_LIMIT, "shop/cart", name, 14));
	assert_true(nft_svc_name(NFT_SVC_LIMIT, "shop/cart", name, 15));
}

/* Name of a chain, set or object message; NULL for other messages. */
static char *msg_name(struct nlmsghdr *nlh, char *buf, size_t len)
{
	const char *name = NULL;

	switch (msg_type(nlh)) {
	case NFT_MSG_NEWCHAIN: {
		struct nftnl_chain *c = nftnl_chain_alloc();

		assert_int_equal(nftnl_chain_nlmsg_parse(nlh, c), 0);
		snprintf(buf, len, "%s", nftnl_chain_get_str(c, NFTNL_CHAIN_NAME));
		nftnl_chain_free(c);
		return buf;
	}
	case NFT_MSG_NEWSET: {
		struct nftnl_set *s = nftnl_set_alloc();

		assert_int_equal(nftnl_set_nlmsg_parse(nlh, s), 0);
		snprintf(buf, len, "%s", nftnl_set_get_str(s, NFTNL_SET_NAME));
		nftnl_set_free(s);
		return buf;
	}
	case NFT_MSG_NEWOBJ: {
		struct nftnl_obj *o = nftnl_obj_alloc();

		assert_int_equal(nftnl_obj_nlmsg_parse(nlh, o), 0);
		snprintf(buf, len, "%s", nftnl_obj_get_str(o, NFTNL_OBJ_NAME));
		nftnl_obj_free(o);
		return buf;
	}
	case NFT_MSG_NEWRULE: {
		struct nftnl_rule *r = parse_rule(nlh);

		name = nftnl_rule_get_str(r, NFTNL_RULE_CHAIN);
		snprintf(buf, len, "%s", name);
		nftnl_rule_free(r);
		return buf;
	}
	}
	return NULL;
}

/*
 * The longest names a valid Service can have: a 63-character namespace and
 * name, a rate limit, affinity and source ranges on an LB frontend at the
 * longest IPv6 text, SCTP port 65535, a backend of the longest text too.
 * Every name of the batch is within its bound, and the bounds within the
 * kernel's NFT_*_MAXNAMELEN - 1 (256 on 6.1 as on later kernels).
 */
static void test_longest_names_fit(void **state)
{
	static const char *const v6 = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe";
	static const char *const ranges[] = { "fd00::/8", "10.0.0.0/8" };
	struct msg_list *ml = calloc(1, sizeof(*ml));
	char name[NFT_EP_NAME_MAX], svc[140], buf[512];
	size_t longest = 0, n_names = 0;
	struct frontend fe;
	struct nft_batch b;

	assert_true(NFT_FE_NAME_LEN <= NFT_CHAIN_MAXNAMELEN - 1);
	assert_true(NFT_EP_NAME_LEN <= NFT_CHAIN_MAXNAMELEN - 1);
	assert_true(NFT_EP_NAME_LEN <= NFT_SET_MAXNAMELEN - 1);
	assert_true(NFT_FW_NAME_LEN <= NFT_CHAIN_MAXNAMELEN - 1);
	assert_true(NFT_SVC_NAME_LEN <= NFT_OBJ_MAXNAMELEN - 1);
	assert_int_equal(NFT_NAME_MAXLEN, 256);

	fe_init(&fe, v6, IPPROTO_SCTP, 65535, FE_SERVE, 1, "fd00::", 8080);
	assert_true(ip_addr_parse("fffe:ffff:ffff:ffff:ffff:ffff:ffff:fffe", &fe.backends[0].addr));
	fe.backends[0].port = 65535;
	fe.kind = FE_LB_INGRESS;
	fe_ranges(&fe, ranges, 2);
	fe.affinity_timeout = 10800;
	fe.rate = (struct rate_limit){ .count = 10, .period = 1, .burst = 10 };
	snprintf(svc, sizeof(svc), "%.63s/%.63s",
		 "ns-4567890123456789012345678901234567890123456789012345678901234",
		 "svc-567890123456789012345678901234567890123456789012345678901234");
	assert_int_equal(strlen(svc), 127);
	fe.service = strdup(svc);
	assert_null(nft_fe_unnameable(&fe));

	nft_fe_chain_name(&fe.key, name, sizeof(name));
	assert_string_equal(name, "fe-ffff_ffff_ffff_ffff_ffff_ffff_ffff_fffe-sctp-65535");
	nft_ep_set_name(&fe.key, NFT_SIDE_MAIN, &fe.backends[0], name, sizeof(name));
	assert_string_equal(name, "aff-ffff_ffff_ffff_ffff_ffff_ffff_ffff_fffe-sctp-65535-"
				  "fffe_ffff_ffff_ffff_ffff_ffff_ffff_fffe-65535");
	assert_true(strlen(name) <= NFT_EP_NAME_LEN);
	nft_fw_chain_name(&fe.key, name, sizeof(name));
	assert_true(strlen(name) <= NFT_FW_NAME_LEN);
	fe.key.proto = 255; /* "p255": as long as "sctp" */
	nft_fe_chain_name(&fe.key, name, sizeof(name));
	assert_string_equal(name, "fe-ffff_ffff_ffff_ffff_ffff_ffff_ffff_fffe-p255-65535");
	fe.key.proto = IPPROTO_SCTP;

	/* Everything the apply writes for it, in one batch that builds without error. */
	nft_batch_init(&b, 1);
	nft_msg_svc_add(&b, fe.service, &fe.rate, 0, 0, 0, 0);
	nft_msg_refusals_add(&b, fe.service, (uint64_t[NFT_REFUSALS]){ 0 },
			     (uint64_t[NFT_REFUSALS]){ 0 });
	nft_msg_refusal_chain_add(&b, fe.service, false);
	nft_msg_refusal_chain_add(&b, fe.service, true);
	nft_msg_ep_add(&b, &fe, NFT_SIDE_MAIN, &fe.backends[0]);
	nft_msg_fe_chain_add(&b, &fe.key, NFT_SIDE_MAIN);
	nft_msg_fe_rules(&b, &fe, NFT_SIDE_MAIN, 0);
	nft_msg_fw_add(&b, &fe);
	assert_int_equal(nft_batch_finish(&b), 0);
	collect_msgs(&b, ml);
	for (size_t i = 0; i < ml->n; i++) {
		if (!msg_name(ml->msgs[i], buf, sizeof(buf)))
			continue;
		n_names++;
		if (strlen(buf) > longest)
			longest = strlen(buf);
		assert_true(strlen(buf) <= NFT_NAME_MAXLEN - 1);
	}
	print_message("# %zu names, the longest %zu bytes (kernel: %d)\n", n_names, longest,
		      NFT_NAME_MAXLEN - 1);
	assert_true(n_names >= 10);
	assert_int_equal(longest, NFT_SVC_NAME_LEN);
	nft_batch_free(&b);
	frontend_clear(&fe);
	free(ml);
}

/* Counts warning lines of fn's stderr. */
static size_t warnings_of(void (*fn)(void *), void *arg)
{
	FILE *capture = tmpfile();
	int saved = dup(STDERR_FILENO);
	char line[1024];
	size_t n = 0;

	assert_non_null(capture);
	fflush(stderr);
	dup2(fileno(capture), STDERR_FILENO);
	fn(arg);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	rewind(capture);
	while (fgets(line, sizeof(line), capture)) {
		print_message("# captured: %s", line);
		n += strstr(line, " warn: ") != NULL;
	}
	fclose(capture);
	return n;
}

struct nameable_call {
	const struct state_diff *in;
	struct state_diff out;
	size_t left_out;
};

static void call_nameable(void *arg)
{
	struct nameable_call *c = arg;

	c->left_out = nft_plan_nameable(c->in, &c->out);
}

/*
 * The planner leaves out, up front, what the kernel could not hold under
 * its names (here: rate-limited Services whose keys nft_svc_name refuses),
 * with one line per Service, and keeps everything else of the diff.
 */
static void test_unnameable_left_out(void **state)
{
	struct rate_limit rl = { .count = 5, .period = 1, .burst = 5 };
	struct frontend fes[6];
	struct frontend_change ch[5];
	struct state_diff diff = { .changes = ch, .n_changes = 5 };
	struct nameable_call c = { .in = &diff };
	const char *services[6] = { "shop/cart", "a.b/c", "a.b/c", "a/b.c", "x.y/z", "a/b.c" };

	for (int i = 0; i < 6; i++) {
		char addr[32];

		snprintf(addr, sizeof(addr), "10.96.0.%d", 10 + i);
		fe_init(&fes[i], addr, IPPROTO_TCP, 80 + i, FE_SERVE, 1, "10.1", 8080);
		fes[i].service = strdup(services[i]);
		fes[i].rate = i == 4 ? (struct rate_limit){ 0 } :
				       rl; /* x.y/z: no limit, no objects */
	}
	/* Nothing to leave out: the diff as it is, nothing allocated. */
	ch[0] = (struct frontend_change){ NULL, &fes[0] };
	diff.n_changes = 1;
	assert_int_equal(warnings_of(call_nameable, &c), 0);
	assert_int_equal(c.left_out, 0);
	assert_ptr_equal(c.out.changes, ch);

	ch[1] = (struct frontend_change){ NULL, &fes[1] }; /* a.b/c, two frontends: one line */
	ch[2] = (struct frontend_change){ NULL, &fes[2] };
	ch[3] = (struct frontend_change){ &fes[5], &fes[3] }; /* a/b.c: neither side */
	ch[4] = (struct frontend_change){ NULL, &fes[4] };
	diff.n_changes = 5;
	diff.full = true;
	assert_int_equal(warnings_of(call_nameable, &c), 2);
	assert_int_equal(c.left_out, 4);
	assert_true(c.out.full);
	assert_int_equal(c.out.n_changes, 2);
	assert_ptr_equal(c.out.changes[0].new, &fes[0]);
	assert_ptr_equal(c.out.changes[1].new, &fes[4]);
	free(c.out.changes);

	/* Never programmed, so never removed: the old side goes, the new one stays. */
	fes[5].rate = (struct rate_limit){ 0 };
	free(fes[5].service);
	fes[5].service = strdup("a/b-c");
	ch[0] = (struct frontend_change){ &fes[3], &fes[5] };
	ch[1] = (struct frontend_change){ &fes[1], NULL };
	diff = (struct state_diff){ .changes = ch, .n_changes = 2 };
	assert_int_equal(warnings_of(call_nameable, &c), 0);
	assert_int_equal(c.left_out, 2);
	assert_int_equal(c.out.n_changes, 1);
	assert_null(c.out.changes[0].old);
	assert_ptr_equal(c.out.changes[0].new, &fes[5]);
	free(c.out.changes);
	for (int i = 0; i < 6; i++)
		frontend_clear(&fes[i]);
}

/* A Service's rate limit: counters with starting values, the limit, its chain and rules. */
static void test_service_limit_messages(void **state)
{
	struct msg_list *ml = calloc(1, sizeof(*ml));
	struct rate_limit rl = { .count = 50, .period = 1, .burst = 10 };
	struct nftnl_obj *o;
	struct nftnl_rule *r;
	struct nftnl_expr *x;
	struct nft_batch b;

	nft_batch_init(&b, 1);
	nft_msg_svc_add(&b, "shop/cart", &rl, 7, 420, 3, 180);
	assert_int_equal(nft_batch_finish(&b), 0);
	collect_msgs(&b, ml);
	/* BEGIN, 2 counters, limit, chain, 2 rules, END */
	assert_int_equal(ml->n, 8);
	o = nftnl_obj_alloc();
	assert_int_equal(msg_type(ml->msgs[1]), NFT_MSG_NEWOBJ);
	assert_int_equal(nftnl_obj_nlmsg_parse(ml->msgs[1], o), 0);
	assert_string_equal(nftnl_obj_get_str(o, NFTNL_OBJ_NAME), "admitted.shop.cart");
	assert_int_equal(nftnl_obj_get_u32(o, NFTNL_OBJ_TYPE), NFT_OBJECT_COUNTER);
	assert_int_equal(nftnl_obj_get_u64(o, NFTNL_OBJ_CTR_PKTS), 7);
	assert_int_equal(nftnl_obj_get_u64(o, NFTNL_OBJ_CTR_BYTES), 420);
	nftnl_obj_free(o);
	o = nftnl_obj_alloc();
	assert_int_equal(nftnl_obj_nlmsg_parse(ml->msgs[2], o), 0);
	assert_string_equal(nftnl_obj_get_str(o, NFTNL_OBJ_NAME), "limited.shop.cart");
	assert_int_equal(nftnl_obj_get_u64(o, NFTNL_OBJ_CTR_PKTS), 3);
	nftnl_obj_free(o);
	o = nftnl_obj_alloc();
	assert_int_equal(nftnl_obj_nlmsg_parse(ml->msgs[3], o), 0);
	assert_string_equal(nftnl_obj_get_str(o, NFTNL_OBJ_NAME), "rate.shop.cart");
	assert_int_equal(nftnl_obj_get_u32(o, NFTNL_OBJ_TYPE), NFT_OBJECT_LIMIT);
	assert_int_equal(nftnl_obj_get_u64(o, NFTNL_OBJ_LIMIT_RATE), 50);
	assert_int_equal(nftnl_obj_get_u64(o, NFTNL_OBJ_LIMIT_UNIT), 1);
	assert_int_equal(nftnl_obj_get_u32(o, NFTNL_OBJ_LIMIT_BURST), 10);
	assert_int_equal(nftnl_obj_get_u32(o, NFTNL_OBJ_LIMIT_TYPE), NFT_LIMIT_PKTS);
	nftnl_obj_free(o);
	assert_int_equal(msg_type(ml->msgs[4]), NFT_MSG_NEWCHAIN);
	/* limit name "rate..." counter name "admitted..." return */
	r = parse_rule(ml->msgs[5]);
	assert_string_equal(nftnl_rule_get_str(r, NFTNL_RULE_CHAIN), "limit.shop.cart");
	x = rule_expr(r, 0);
	assert_expr_name(x, "objref");
	assert_int_equal(nftnl_expr_get_u32(x, NFTNL_EXPR_OBJREF_IMM_TYPE), NFT_OBJECT_LIMIT);
	assert_string_equal(nftnl_expr_get_str(x, NFTNL_EXPR_OBJREF_IMM_NAME), "rate.shop.cart");
	x = rule_expr(r, 1);
	assert_int_equal(nftnl_expr_get_u32(x, NFTNL_EXPR_OBJREF_IMM_TYPE), NFT_OBJECT_COUNTER);
	assert_string_equal(nftnl_expr_get_str(x, NFTNL_EXPR_OBJREF_IMM_NAME),
			    "admitted.shop.cart");
	assert_verdict(r, NFT_RETURN, NULL);
	nftnl_rule_free(r);
	/* counter name "limited..." goto reject-chain */
	r = parse_rule(ml->msgs[6]);
	assert_string_equal(nftnl_expr_get_str(rule_expr(r, 0), NFTNL_EXPR_OBJREF_IMM_NAME),
			    "limited.shop.cart");
	assert_verdict(r, NFT_GOTO, NFT_REJECT_CHAIN);
	nftnl_rule_free(r);
	nft_batch_free(&b);

	/* New parameters: empty the chain, replace the limit, refill; counters untouched. */
	rl.count = 100;
	nft_batch_init(&b, 1);
	nft_msg_svc_update(&b, "shop/cart", &rl);
	assert_int_equal(nft_batch_finish(&b), 0);
	collect_msgs(&b, ml);
	assert_int_equal(ml->n, 7);
	assert_int_equal(msg_type(ml->msgs[1]), NFT_MSG_DELRULE);
	assert_int_equal(msg_type(ml->msgs[2]), NFT_MSG_DELOBJ);
	assert_int_equal(msg_type(ml->msgs[3]), NFT_MSG_NEWOBJ);
	o = nftnl_obj_alloc();
	assert_int_equal(nftnl_obj_nlmsg_parse(ml->msgs[3], o), 0);
	assert_string_equal(nftnl_obj_get_str(o, NFTNL_OBJ_NAME), "rate.shop.cart");
	assert_int_equal(nftnl_obj_get_u64(o, NFTNL_OBJ_LIMIT_RATE), 100);
	nftnl_obj_free(o);
	assert_int_equal(msg_type(ml->msgs[4]), NFT_MSG_NEWRULE);
	assert_int_equal(msg_type(ml->msgs[5]), NFT_MSG_NEWRULE);
	nft_batch_free(&b);

	/* Removal: chain first (it holds the objects), then the three objects. */
	nft_batch_init(&b, 1);
	nft_msg_svc_del(&b, "shop/cart");
	assert_int_equal(nft_batch_finish(&b), 0);
	collect_msgs(&b, ml);
	assert_int_equal(ml->n, 6);
	assert_int_equal(msg_type(ml->msgs[1]), NFT_MSG_DELCHAIN);
	for (int i = 2; i < 5; i++)
		assert_int_equal(msg_type(ml->msgs[i]), NFT_MSG_DELOBJ);
	nft_batch_free(&b);
	free(ml);
}

/* Affinity and a limit: the frontend chain's rules and one endpoint's set, chain and rules. */
static void test_affinity_messages(void **state)
{
	struct msg_list *ml = calloc(1, sizeof(*ml));
	struct nftnl_set *s = nftnl_set_alloc();
	struct nftnl_set_elems_iter *it;
	struct nftnl_set_elem *e;
	struct nftnl_rule *r;
	struct nftnl_expr *x;
	struct frontend fe;
	struct nft_batch b;
	uint32_t len, mask;
	size_t m;

	fe_init(&fe, "10.96.0.10", IPPROTO_TCP, 80, FE_SERVE, 2, "10.1", 8080);
	fe.affinity_timeout = 10800;
	fe.service = strdup("shop/cart");
	fe.rate = (struct rate_limit){ .count = 50, .period = 1, .burst = 10 };
	assert_true(nft_fe_has_affinity(&fe) && nft_fe_has_rate(&fe));
	nft_batch_init(&b, 1);
	nft_msg_fe_rules(&b, &fe, NFT_SIDE_MAIN, 0);
	assert_int_equal(nft_batch_finish(&b), 0);
	collect_msgs(&b, ml);
	/* BEGIN, limit jump, 2 affinity rules, vmap, its elements, pick rule, END */
	assert_int_equal(ml->n, 8);
	/* ct state new jump limit.shop.cart */
	r = parse_rule(ml->msgs[1]);
	assert_string_equal(nftnl_rule_get_str(r, NFTNL_RULE_CHAIN), "fe-10.96.0.10-tcp-80");
	x = rule_expr(r, 0);
	assert_expr_name(x, "ct");
	assert_int_equal(nftnl_expr_get_u32(x, NFTNL_EXPR_CT_KEY), NFT_CT_STATE);
	x = rule_expr(r, 1);
	assert_expr_name(x, "bitwise");
	memcpy(&mask, nftnl_expr_get(x, NFTNL_EXPR_BITWISE_MASK, &len), sizeof(mask));
	assert_int_equal(mask, 8); /* NF_CT_STATE_BIT(IP_CT_NEW) */
	x = rule_expr(r, 2);
	assert_int_equal(nftnl_expr_get_u32(x, NFTNL_EXPR_CMP_OP), NFT_CMP_NEQ);
	assert_verdict(r, NFT_JUMP, "limit.shop.cart");
	nftnl_rule_free(r);
	/* ip saddr @aff-<ep> goto ep-<ep>, in backend order */
	for (int i = 0; i < 2; i++) {
		char set[NFT_EP_NAME_MAX], chain[NFT_EP_NAME_MAX];

		nft_ep_set_name(&fe.key, NFT_SIDE_MAIN, &fe.backends[i], set, sizeof(set));
		nft_ep_chain_name(&fe.key, NFT_SIDE_MAIN, &fe.backends[i], chain, sizeof(chain));
		r = parse_rule(ml->msgs[2 + i]);
		x = rule_expr(r, 2);
		assert_expr_name(x, "payload");
		assert_int_equal(nftnl_expr_get_u32(x, NFTNL_EXPR_PAYLOAD_OFFSET), 12);
		x = rule_expr(r, 3);
		assert_expr_name(x, "lookup");
		assert_string_equal(nftnl_expr_get_str(x, NFTNL_EXPR_LOOKUP_SET), set);
		assert_false(nftnl_expr_is_set(x, NFTNL_EXPR_LOOKUP_DREG));
		assert_verdict(r, NFT_GOTO, chain);
		nftnl_rule_free(r);
	}
	/* numgen random mod 2 vmap { 0 : goto ep-...1, 1 : goto ep-...2 } */
	assert_int_equal(nftnl_set_nlmsg_parse(ml->msgs[4], s), 0);
	assert_int_equal(nftnl_set_get_u32(s, NFTNL_SET_DATA_TYPE), NFT_DATA_VERDICT);
	assert_int_equal(nftnl_set_get_u32(s, NFTNL_SET_FLAGS),
			 NFT_SET_ANONYMOUS | NFT_SET_CONSTANT | NFT_SET_MAP);
	nftnl_set_free(s);
	s = parse_elems(ml->msgs[5]);
	it = nftnl_set_elems_iter_create(s);
	m = 0;
	for (e = nftnl_set_elems_iter_next(it); e; e = nftnl_set_elems_iter_next(it), m++) {
		char chain[NFT_EP_NAME_MAX];

		nft_ep_chain_name(&fe.key, NFT_SIDE_MAIN, &fe.backends[m], chain, sizeof(chain));
		assert_int_equal(*(const uint32_t *)nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &len),
				 m);
		assert_int_equal((int32_t)nftnl_set_elem_get_u32(e, NFTNL_SET_ELEM_VERDICT),
				 NFT_GOTO);
		assert_string_equal(nftnl_set_elem_get_str(e, NFTNL_SET_ELEM_CHAIN), chain);
	}
	assert_int_equal(m, 2);
	nftnl_set_elems_iter_destroy(it);
	nftnl_set_free(s);
	r = parse_rule(ml->msgs[6]);
	assert_expr_name(rule_expr(r, 0), "numgen");
	x = rule_expr(r, 1);
	assert_expr_name(x, "lookup");
	assert_int_equal(nftnl_expr_get_u32(x, NFTNL_EXPR_LOOKUP_DREG), NFT_REG_VERDICT);
	nftnl_rule_free(r);
	nft_batch_free(&b);

	/* One endpoint: set (timeout, dynamic), chain, update rule, DNAT rule. */
	nft_batch_init(&b, 1);
	nft_msg_ep_add(&b, &fe, NFT_SIDE_MAIN, &fe.backends[1]);
	assert_int_equal(nft_batch_finish(&b), 0);
	collect_msgs(&b, ml);
	assert_int_equal(ml->n, 6);
	s = nftnl_set_alloc();
	assert_int_equal(msg_type(ml->msgs[1]), NFT_MSG_NEWSET);
	assert_int_equal(nftnl_set_nlmsg_parse(ml->msgs[1], s), 0);
	assert_string_equal(nftnl_set_get_str(s, NFTNL_SET_NAME),
			    "aff-10.96.0.10-tcp-80-10.1.0.2-8080");
	assert_int_equal(nftnl_set_get_u32(s, NFTNL_SET_FLAGS), NFT_SET_TIMEOUT | NFT_SET_EVAL);
	assert_int_equal(nftnl_set_get_u64(s, NFTNL_SET_TIMEOUT), 10800ull * 1000);
	assert_int_equal(nftnl_set_get_u32(s, NFTNL_SET_KEY_LEN), 4);
	assert_int_equal(msg_type(ml->msgs[2]), NFT_MSG_NEWCHAIN);
	r = parse_rule(ml->msgs[3]);
	assert_string_equal(nftnl_rule_get_str(r, NFTNL_RULE_CHAIN),
			    "ep-10.96.0.10-tcp-80-10.1.0.2-8080");
	x = rule_expr(r, 3);
	assert_expr_name(x, "dynset");
	assert_int_equal(nftnl_expr_get_u32(x, NFTNL_EXPR_DYNSET_OP), NFT_DYNSET_OP_UPDATE);
	assert_int_equal(nftnl_expr_get_u32(x, NFTNL_EXPR_DYNSET_SET_ID),
			 nftnl_set_get_u32(s, NFTNL_SET_ID));
	nftnl_rule_free(r);
	nftnl_set_free(s);
	r = parse_rule(ml->msgs[4]);
	/* meta l4proto tcp, the shift mark (3), then the endpoint and the DNAT. */
	x = rule_expr(r, 5);
	assert_expr_name(x, "immediate");
	assert_memory_equal(nftnl_expr_get(x, NFTNL_EXPR_IMM_DATA, &len), fe.backends[1].addr.bytes,
			    4);
	x = rule_expr(r, 7);
	assert_expr_name(x, "nat");
	nftnl_rule_free(r);
	nft_batch_free(&b);

	/* Deleting: chain first (its rule holds the set), then the set. */
	nft_batch_init(&b, 1);
	nft_msg_ep_del(&b, &fe, NFT_SIDE_MAIN, &fe.backends[1]);
	assert_int_equal(nft_batch_finish(&b), 0);
	collect_msgs(&b, ml);
	assert_int_equal(ml->n, 4);
	assert_int_equal(msg_type(ml->msgs[1]), NFT_MSG_DELCHAIN);
	assert_int_equal(msg_type(ml->msgs[2]), NFT_MSG_DELSET);
	nft_batch_free(&b);

	/* Without affinity or limit: the one DNAT rule, as before. */
	fe.affinity_timeout = 0;
	fe.rate.count = 0;
	nft_batch_init(&b, 1);
	nft_msg_fe_rules(&b, &fe, NFT_SIDE_MAIN, 0);
	assert_int_equal(nft_batch_finish(&b), 0);
	collect_msgs(&b, ml);
	assert_int_equal(ml->n, 3);
	assert_int_equal(msg_type(ml->msgs[1]), NFT_MSG_NEWRULE);
	nft_batch_free(&b);
	frontend_clear(&fe);
	free(ml);
}

/* ---- external traffic: NodePorts, masquerade mark, source-range firewall ---- */

static void test_node_port_names(void **state)
{
	struct frontend_key key = { .proto = IPPROTO_TCP, .port = 30080 };
	char name[NFT_EP_NAME_MAX];
	struct backend be = { .port = 8080 };

	key.addr.family = AF_INET;
	nft_fe_chain_name(&key, name, sizeof(name));
	assert_string_equal(name, "fe-nodeport4-tcp-30080");
	nft_fe_key_text(&key, name, sizeof(name));
	assert_string_equal(name, "nodePort tcp/30080 (IPv4)");
	ip_addr_parse("10.1.0.1", &be.addr);
	nft_ep_chain_name(&key, NFT_SIDE_MAIN, &be, name, sizeof(name));
	assert_string_equal(name, "ep-nodeport4-tcp-30080-10.1.0.1-8080");
	key.addr.family = AF_INET6;
	key.proto = IPPROTO_UDP;
	key.port = 30053;
	nft_fe_chain_name(&key, name, sizeof(name));
	assert_string_equal(name, "fe-nodeport6-udp-30053");
	ip_addr_parse("203.0.113.20", &key.addr);
	key.proto = IPPROTO_TCP;
	key.port = 443;
	nft_fw_chain_name(&key, name, sizeof(name));
	assert_string_equal(name, "firewall-203.0.113.20-tcp-443");
	nft_fw_set_name(&key, name, sizeof(name));
	assert_string_equal(name, "allow-203.0.113.20-tcp-443");
}

/* NodePort elements: proto . port in nodeports4/6, or no-endpoint-nodeports4/6. */
static void test_node_port_elements(void **state)
{
	struct msg_list *ml = calloc(1, sizeof(*ml));
	struct frontend served, dropped, refused6;
	struct nftnl_set_elems_iter *it;
	struct nftnl_set_elem *e;
	struct nftnl_set *s;
	struct nft_batch b;
	const uint8_t *key;
	uint32_t len;

	fe_init(&served, "0.0.0.0", IPPROTO_TCP, 30080, FE_SERVE, 1, "10.1", 8080);
	fe_init(&dropped, "0.0.0.0", IPPROTO_UDP, 30053, FE_DROP, 0, "10.1", 0);
	fe_init(&refused6, "::", IPPROTO_TCP, 30080, FE_REFUSE, 0, "fd00:1::", 0);
	served.kind = dropped.kind = refused6.kind = FE_NODE_PORT;
	nft_batch_init(&b, 1);
	nft_batch_queue_elem(&b, NFT_MSG_NEWSETELEM, &served);
	nft_batch_queue_elem(&b, NFT_MSG_NEWSETELEM, &dropped);
	nft_batch_queue_elem(&b, NFT_MSG_NEWSETELEM, &refused6);
	assert_int_equal(nft_batch_finish(&b), 0);
	collect_msgs(&b, ml);
	assert_int_equal(ml->n, 2 + 3);

	s = parse_elems(ml->msgs[1]);
	assert_string_equal(nftnl_set_get_str(s, NFTNL_SET_NAME), "nodeports4");
	e = first_elem(s, &it);
	key = nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &len);
	assert_int_equal(len, 8);
	assert_int_equal(key[0], IPPROTO_TCP);
	assert_int_equal(ntohs(*(const uint16_t *)(key + 4)), 30080);
	assert_int_equal((int32_t)nftnl_set_elem_get_u32(e, NFTNL_SET_ELEM_VERDICT), NFT_GOTO);
	assert_string_equal(nftnl_set_elem_get_str(e, NFTNL_SET_ELEM_CHAIN),
			    "fe-nodeport4-tcp-30080");
	nftnl_set_elems_iter_destroy(it);
	nftnl_set_free(s);

	s = parse_elems(ml->msgs[2]);
	assert_string_equal(nftnl_set_get_str(s, NFTNL_SET_NAME), "no-endpoint-nodeports4");
	e = first_elem(s, &it);
	key = nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &len);
	assert_int_equal(len, 8);
	assert_int_equal(key[0], IPPROTO_UDP);
	assert_int_equal((int32_t)nftnl_set_elem_get_u32(e, NFTNL_SET_ELEM_VERDICT), NF_DROP);
	nftnl_set_elems_iter_destroy(it);
	nftnl_set_free(s);

	s = parse_elems(ml->msgs[3]);
	assert_string_equal(nftnl_set_get_str(s, NFTNL_SET_NAME), "no-endpoint-nodeports6");
	e = first_elem(s, &it);
	assert_string_equal(nftnl_set_elem_get_str(e, NFTNL_SET_ELEM_CHAIN), NFT_REJECT_CHAIN);
	nftnl_set_elems_iter_destroy(it);
	nftnl_set_free(s);
	nft_batch_free(&b);
	frontend_clear(&served);
	frontend_clear(&dropped);
	frontend_clear(&refused6);
	free(ml);
}

/* Index of the first rule of rules in chain, or -1. */
static int find_rule(struct msg_list *ml, const char *chain, int from)
{
	for (size_t i = from; i < ml->n; i++) {
		struct nftnl_rule *r;
		bool hit;

		if (msg_type(ml->msgs[i]) != NFT_MSG_NEWRULE)
			continue;
		r = parse_rule(ml->msgs[i]);
		hit = !strcmp(nftnl_rule_get_str(r, NFTNL_RULE_CHAIN), chain);
		nftnl_rule_free(r);
		if (hit)
			return i;
	}
	return -1;
}

/* meta mark set meta mark | 0x4000: meta load, bitwise (mask ~bit, xor bit), meta set. */
static void assert_mark_or(struct nftnl_rule *r, uint32_t bit)
{
	struct nftnl_expr *x;
	uint32_t len, v;

	assert_int_equal(rule_n_exprs(r), 3);
	x = rule_expr(r, 0);
	assert_expr_name(x, "meta");
	assert_int_equal(nftnl_expr_get_u32(x, NFTNL_EXPR_META_KEY), NFT_META_MARK);
	x = rule_expr(r, 1);
	assert_expr_name(x, "bitwise");
	memcpy(&v, nftnl_expr_get(x, NFTNL_EXPR_BITWISE_MASK, &len), sizeof(v));
	assert_int_equal(v, ~bit);
	memcpy(&v, nftnl_expr_get(x, NFTNL_EXPR_BITWISE_XOR, &len), sizeof(v));
	assert_int_equal(v, bit);
	x = rule_expr(r, 2);
	assert_expr_name(x, "meta");
	assert_true(nftnl_expr_is_set(x, NFTNL_EXPR_META_SREG));
}

/* The mark rule comes after the rate-limit jump and before the DNAT, only where it masquerades. */
static void test_masquerade_mark_rule(void **state)
{
	static const struct {
		enum frontend_kind kind;
		bool preserve;
		bool marks;
	} cases[] = {
		{ FE_CLUSTER_IP, false, false }, { FE_NODE_PORT, false, true },
		{ FE_EXTERNAL_IP, false, true }, { FE_LB_INGRESS, false, true },
		{ FE_NODE_PORT, true, false },	 { FE_LB_INGRESS, true, false },
	};
	struct msg_list *ml = calloc(1, sizeof(*ml));

	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct frontend fe;
		struct nftnl_rule *r;
		struct nft_batch b;
		char chain[NFT_CHAIN_NAME_MAX];

		fe_init(&fe, cases[c].kind == FE_NODE_PORT ? "0.0.0.0" : "203.0.113.10",
			IPPROTO_TCP, 80, FE_SERVE, 2, "10.1", 8080);
		fe.kind = cases[c].kind;
		fe.preserve_source = cases[c].preserve;
		fe.service = strdup("shop/cart");
		fe.rate = (struct rate_limit){ .count = 50, .period = 1, .burst = 10 };
		assert_true(nft_fe_masquerades(&fe) == cases[c].marks);
		nft_fe_chain_name(&fe.key, chain, sizeof(chain));
		nft_batch_init(&b, 1);
		nft_msg_fe_rules(&b, &fe, NFT_SIDE_MAIN, 0);
		assert_int_equal(nft_batch_finish(&b), 0);
		collect_msgs(&b, ml);
		/* BEGIN, limit jump, [mark], dnat (its backends are written apart), END */
		assert_int_equal(ml->n, cases[c].marks ? 5 : 4);
		r = parse_rule(ml->msgs[1]);
		assert_verdict(r, NFT_JUMP, "limit.shop.cart");
		nftnl_rule_free(r);
		if (cases[c].marks) {
			r = parse_rule(ml->msgs[2]);
			assert_string_equal(nftnl_rule_get_str(r, NFTNL_RULE_CHAIN), chain);
			assert_mark_or(r, NFT_MASQ_MARK);
			nftnl_rule_free(r);
		}
		r = parse_rule(ml->msgs[ml->n - 2]);
		assert_expr_name(rule_expr(r, rule_n_exprs(r) - 1), "nat");
		nftnl_rule_free(r);
		nft_batch_free(&b);
		frontend_clear(&fe);
	}
	free(ml);
}

/* The skeleton: NodePort lookups with fib daddr type local, masquerade, firewall chains. */
static void test_skeleton_external_chains(void **state)
{
	const struct nft_port_shift shift = { 1024, 29255 };
	struct msg_list *ml = calloc(1, sizeof(*ml));
	struct nftnl_chain *c = nftnl_chain_alloc();
	struct nftnl_rule *r;
	struct nftnl_expr *x;
	struct nft_batch b;
	bool saw_post = false, saw_fw = false, saw_fw_out = false;
	int i, n_nodeport_sets = 0, n_backend_maps = 0;
	uint32_t len;

	nft_batch_init(&b, 1);
	nft_msg_skeleton(&b, &shift, NFT_BACKEND_SHARDS_MIN);
	assert_int_equal(nft_batch_finish(&b), 0);
	collect_msgs(&b, ml);
	for (size_t m = 0; m < ml->n; m++) {
		if (msg_type(ml->msgs[m]) == NFT_MSG_NEWSET) {
			struct nftnl_set *s = nftnl_set_alloc();

			assert_int_equal(nftnl_set_nlmsg_parse(ml->msgs[m], s), 0);
			if (strstr(nftnl_set_get_str(s, NFTNL_SET_NAME), "nodeports")) {
				assert_int_equal(nftnl_set_get_u32(s, NFTNL_SET_KEY_LEN), 8);
				assert_int_equal(nftnl_set_get_u32(s, NFTNL_SET_DATA_TYPE),
						 NFT_DATA_VERDICT);
				n_nodeport_sets++;
			}
			/* backends4/6-N: mark : ipv4_addr . inet_service (7 << 6 | 13), named */
			if (!strncmp(nftnl_set_get_str(s, NFTNL_SET_NAME), "backends", 8)) {
				bool v6 = !strncmp(nftnl_set_get_str(s, NFTNL_SET_NAME),
						   "backends6-", 10);

				assert_int_equal(nftnl_set_get_u32(s, NFTNL_SET_FLAGS),
						 NFT_SET_MAP);
				assert_int_equal(nftnl_set_get_u32(s, NFTNL_SET_KEY_TYPE), 19);
				assert_int_equal(nftnl_set_get_u32(s, NFTNL_SET_KEY_LEN), 4);
				assert_int_equal(nftnl_set_get_u32(s, NFTNL_SET_DATA_TYPE),
						 v6 ? 525 : 461);
				assert_int_equal(nftnl_set_get_u32(s, NFTNL_SET_DATA_LEN),
						 v6 ? 20 : 8);
				n_backend_maps++;
			}
			nftnl_set_free(s);
		}
		if (msg_type(ml->msgs[m]) != NFT_MSG_NEWCHAIN)
			continue;
		assert_int_equal(nftnl_chain_nlmsg_parse(ml->msgs[m], c), 0);
		if (!strcmp(nftnl_chain_get_str(c, NFTNL_CHAIN_NAME), "nat-postrouting")) {
			assert_int_equal(nftnl_chain_get_u32(c, NFTNL_CHAIN_HOOKNUM),
					 NF_INET_POST_ROUTING);
			assert_int_equal(nftnl_chain_get_s32(c, NFTNL_CHAIN_PRIO), 100);
			saw_post = true;
		} else if (!strcmp(nftnl_chain_get_str(c, NFTNL_CHAIN_NAME), "filter-prerouting")) {
			assert_int_equal(nftnl_chain_get_u32(c, NFTNL_CHAIN_HOOKNUM),
					 NF_INET_PRE_ROUTING);
			assert_int_equal(nftnl_chain_get_s32(c, NFTNL_CHAIN_PRIO), -110);
			saw_fw = true;
		} else if (!strcmp(nftnl_chain_get_str(c, NFTNL_CHAIN_NAME),
				   "filter-output-pre-dnat")) {
			assert_int_equal(nftnl_chain_get_u32(c, NFTNL_CHAIN_HOOKNUM),
					 NF_INET_LOCAL_OUT);
			assert_int_equal(nftnl_chain_get_s32(c, NFTNL_CHAIN_PRIO), -110);
			saw_fw_out = true;
		}
	}
	assert_true(saw_post && saw_fw && saw_fw_out);
	assert_int_equal(n_backend_maps, 2 * NFT_BACKEND_SHARDS_MIN);
	assert_int_equal(n_nodeport_sets, 6); /* and node-nodeports4/6 */

	/* nat-prerouting: services4, nodeports4, services6, nodeports6 */
	i = find_rule(ml, "nat-prerouting", 0);
	assert_true(i > 0);
	i = find_rule(ml, "nat-prerouting", i + 1);
	r = parse_rule(ml->msgs[i]);
	x = rule_expr(r, 2);
	assert_expr_name(x, "fib");
	assert_int_equal(nftnl_expr_get_u32(x, NFTNL_EXPR_FIB_RESULT), NFT_FIB_RESULT_ADDRTYPE);
	assert_int_equal(nftnl_expr_get_u32(x, NFTNL_EXPR_FIB_FLAGS), NFTA_FIB_F_DADDR);
	x = rule_expr(r, rule_n_exprs(r) - 1);
	assert_expr_name(x, "lookup");
	assert_string_equal(nftnl_expr_get_str(x, NFTNL_EXPR_LOOKUP_SET), "nodeports4");
	nftnl_rule_free(r);

	/* nat-postrouting: mark test, mark clear, masquerade fully-random */
	i = find_rule(ml, "nat-postrouting", 0);
	r = parse_rule(ml->msgs[i]);
	x = rule_expr(r, rule_n_exprs(r) - 1);
	assert_expr_name(x, "masq");
	assert_int_equal(nftnl_expr_get_u32(x, NFTNL_EXPR_MASQ_FLAGS), 1 << 4);
	assert_int_equal(nftnl_expr_get_u32(rule_expr(r, 2), NFTNL_EXPR_CMP_OP), NFT_CMP_NEQ);
	nftnl_rule_free(r);
	/* then per family: meta nfproto, the shift mark, cleared, snat to saddr shifted */
	for (int f = 0; f < 2; f++) {
		i = find_rule(ml, "nat-postrouting", i + 1);
		assert_true(i > 0);
		r = parse_rule(ml->msgs[i]);
		x = rule_expr(r, 1);
		assert_int_equal(*(const uint8_t *)nftnl_expr_get(x, NFTNL_EXPR_CMP_DATA, &len),
				 f ? NFPROTO_IPV6 : NFPROTO_IPV4);
		x = rule_expr(r, rule_n_exprs(r) - 1);
		assert_expr_name(x, "nat");
		assert_int_equal(nftnl_expr_get_u32(x, NFTNL_EXPR_NAT_TYPE), NFT_NAT_SNAT);
		assert_int_equal(nftnl_expr_get_u32(x, NFTNL_EXPR_NAT_FLAGS),
				 NF_NAT_RANGE_PROTO_OFFSET);
		x = rule_expr(r, rule_n_exprs(r) - 3);
		assert_expr_name(x, "immediate");
		assert_int_equal(
			ntohs(*(const uint16_t *)nftnl_expr_get(x, NFTNL_EXPR_IMM_DATA, &len)),
			shift.lo);
		nftnl_rule_free(r);
	}
	assert_int_equal(find_rule(ml, "nat-postrouting", i + 1), -1);

	/* filter-prerouting: ct state new ... vmap @firewall-ips4 */
	i = find_rule(ml, "filter-prerouting", 0);
	r = parse_rule(ml->msgs[i]);
	assert_expr_name(rule_expr(r, 0), "ct");
	x = rule_expr(r, rule_n_exprs(r) - 1);
	assert_string_equal(nftnl_expr_get_str(x, NFTNL_EXPR_LOOKUP_SET), "firewall-ips4");
	nftnl_rule_free(r);
	nftnl_chain_free(c);
	nft_batch_free(&b);
	free(ml);
}

/* ---- externalTrafficPolicy Local: the node chains ---- */

/*
 * fe-out-... beside fe-...: a node chain's name, and its endpoint chains'
 * and sets', are never a main chain's, nor the other way round, for every
 * kind of key (addresses of both families, NodePorts, proto numbers).
 */
static void test_node_chain_names(void **state)
{
	static const char *const addrs[] = { "10.99.2.21", "0.0.0.0", "fd00:99::21",
					     "::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe" };
	static const uint8_t protos[] = { IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP, 255 };
	char names[2 * 5 * 4 * 2][NFT_EP_NAME_MAX];
	struct backend be = { .port = 65535 };
	struct frontend_key key = { .port = 65535 };
	char name[NFT_EP_NAME_MAX];
	size_t n = 0;

	ip_addr_parse("10.99.2.21", &key.addr);
	key.proto = IPPROTO_TCP;
	key.port = 80;
	nft_fe_side_chain_name(&key, NFT_SIDE_NODE, name, sizeof(name));
	assert_string_equal(name, "fe-out-10.99.2.21-tcp-80");
	nft_fe_side_chain_name(&key, NFT_SIDE_MAIN, name, sizeof(name));
	assert_string_equal(name, "fe-10.99.2.21-tcp-80");
	ip_addr_parse("10.244.1.1", &be.addr);
	be.port = 8080;
	nft_ep_chain_name(&key, NFT_SIDE_NODE, &be, name, sizeof(name));
	assert_string_equal(name, "ep-out-10.99.2.21-tcp-80-10.244.1.1-8080");
	nft_ep_set_name(&key, NFT_SIDE_NODE, &be, name, sizeof(name));
	assert_string_equal(name, "aff-out-10.99.2.21-tcp-80-10.244.1.1-8080");
	ip_addr_parse("::", &key.addr);
	key.proto = IPPROTO_UDP;
	key.port = 30081;
	nft_fe_side_chain_name(&key, NFT_SIDE_NODE, name, sizeof(name));
	assert_string_equal(name, "fe-out-nodeport6-udp-30081");

	/* The longest: within the bounds the buffers and the kernel are checked against. */
	ip_addr_parse("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", &key.addr);
	ip_addr_parse("fffe:ffff:ffff:ffff:ffff:ffff:ffff:fffe", &be.addr);
	key.proto = IPPROTO_SCTP;
	key.port = be.port = 65535;
	nft_fe_side_chain_name(&key, NFT_SIDE_NODE, name, sizeof(name));
	assert_string_equal(name, "fe-out-ffff_ffff_ffff_ffff_ffff_ffff_ffff_fffe-sctp-65535");
	assert_true(strlen(name) <= NFT_FE_OUT_NAME_LEN);
	nft_ep_set_name(&key, NFT_SIDE_NODE, &be, name, sizeof(name));
	assert_true(strlen(name) <= NFT_EP_NAME_LEN);
	assert_true(NFT_FE_OUT_NAME_LEN < NFT_CHAIN_NAME_MAX);
	assert_true(NFT_EP_NAME_LEN <= NFT_SET_MAXNAMELEN - 1);

	/* Injective over both sides: every name differs from every other. */
	ip_addr_parse("10.1.0.1", &be.addr);
	be.port = 8080;
	for (size_t a = 0; a < 5; a++)
		for (size_t p = 0; p < 4; p++)
			for (int side = 0; side < 2; side++) {
				ip_addr_parse(addrs[a], &key.addr);
				key.proto = protos[p];
				key.port = 80;
				nft_fe_side_chain_name(&key, side, names[n++], NFT_EP_NAME_MAX);
				nft_ep_chain_name(&key, side, &be, names[n++], NFT_EP_NAME_MAX);
			}
	for (size_t i = 0; i < n; i++) {
		assert_true(strncmp(names[i], "fe-out-", 7) || i % 4 == 2);
		for (size_t j = i + 1; j < n; j++)
			assert_string_not_equal(names[i], names[j]);
	}
}

/* Which frontends get a node chain, and what their node view serves. */
static void test_node_chain_classify(void **state)
{
	static const char *const ranges[] = { "192.0.2.0/24" };
	struct frontend fe, other, view;

	fe_init(&fe, "10.99.2.21", IPPROTO_TCP, 80, FE_DROP, 0, "10.1", 0);
	fe_node_set(&fe, FE_LB_INGRESS, 2, "10.244", 8080);
	fe_ranges(&fe, ranges, 1);
	fe.affinity_timeout = 60;
	assert_int_equal(nft_fe_classify(&fe), NFT_FE_DROP);
	assert_true(nft_fe_has_node_chain(&fe));
	nft_fe_node_view(&fe, &view);
	assert_int_equal(nft_fe_classify(&view), NFT_FE_SERVE);
	assert_ptr_equal(view.backends, fe.node_backends);
	assert_int_equal(view.n_backends, 2);
	assert_true(nft_fe_masquerades(&view)); /* kube-proxy masquerades local traffic */
	assert_false(nft_fe_masquerades(&fe));
	assert_false(nft_fe_has_firewall(&view)); /* the ranges stay with fe */
	assert_true(nft_fe_has_firewall(&fe));
	assert_true(nft_fe_has_affinity(&view));
	assert_false(nft_fe_has_node_chain(&view));

	/* No endpoint anywhere: none (fe itself is refused then). */
	fe.node_action = FE_REFUSE;
	assert_false(nft_fe_has_node_chain(&fe));
	fe.node_action = FE_SERVE;
	/* Backends of the other family only: none to DNAT to. */
	fe_init(&other, "fd00:99::21", IPPROTO_TCP, 80, FE_SERVE, 1, "fd00:1::", 8080);
	fe_node_set(&other, FE_LB_INGRESS, 2, "10.244", 8080);
	assert_false(nft_fe_has_node_chain(&other));
	frontend_clear(&other);
	/* Without a node set (ClusterIP, policy Cluster), or a marker: none. */
	fe_init(&other, "10.99.2.21", IPPROTO_TCP, 80, FE_SERVE, 2, "10.244", 8080);
	other.kind = FE_EXTERNAL_IP;
	assert_false(nft_fe_has_node_chain(&other));
	frontend_clear(&other);
	fe_marker(&other, "10.96.0.10");
	other.has_node_set = true;
	other.node_action = FE_SERVE;
	assert_false(nft_fe_has_node_chain(&other));
	frontend_clear(&other);
	frontend_clear(&fe);
}

/*
 * A node chain's rules: the rate-limit jump, the masquerade mark, the DNAT
 * through the frontend's own shard at the node range; its element in
 * node-services4 or node-nodeports6, and none for a frontend without one.
 */
static void test_node_chain_messages(void **state)
{
	struct msg_list *ml = calloc(1, sizeof(*ml));
	struct frontend lb, np6, plain, view;
	char map[NFT_BACKENDS_NAME_MAX];
	struct nftnl_set_elems_iter *it;
	struct nftnl_set_elem *e;
	struct nftnl_rule *r;
	struct nftnl_expr *x;
	struct nftnl_set *s;
	struct nft_batch b;
	const uint8_t *key;
	uint32_t len;

	fe_init(&lb, "10.99.2.21", IPPROTO_TCP, 80, FE_SERVE, 1, "10.244", 8080);
	fe_node_set(&lb, FE_LB_INGRESS, 2, "10.244", 8080);
	lb.service = strdup("shop/cart");
	lb.rate = (struct rate_limit){ .count = 50, .period = 1, .burst = 10 };
	nft_fe_node_view(&lb, &view);
	nft_batch_init(&b, 1);
	nft_msg_fe_chain_add(&b, &lb.key, NFT_SIDE_NODE);
	nft_msg_fe_rules(&b, &view, NFT_SIDE_NODE, 7);
	assert_int_equal(nft_batch_finish(&b), 0);
	collect_msgs(&b, ml);
	/* BEGIN, chain, limit jump, mark, dnat, END */
	assert_int_equal(ml->n, 6);
	assert_string_equal(msg_name(ml->msgs[1], (char[80]){ 0 }, 80), "fe-out-10.99.2.21-tcp-80");
	for (size_t i = 2; i < 5; i++) {
		r = parse_rule(ml->msgs[i]);
		assert_string_equal(nftnl_rule_get_str(r, NFTNL_RULE_CHAIN),
				    "fe-out-10.99.2.21-tcp-80");
		if (i == 2)
			assert_verdict(r, NFT_JUMP, "limit.shop.cart");
		if (i == 3)
			assert_mark_or(r, NFT_MASQ_MARK);
		if (i == 4) {
			x = rule_expr(r, rule_n_exprs(r) - 3);
			assert_expr_name(x, "numgen");
			assert_int_equal(nftnl_expr_get_u32(x, NFTNL_EXPR_NG_MODULUS), 2);
			assert_int_equal(nftnl_expr_get_u32(x, NFTNL_EXPR_NG_OFFSET), 7);
			x = rule_expr(r, rule_n_exprs(r) - 2);
			nft_backends_map_name(false,
					      nft_fe_backend_shard(&lb.key, NFT_BACKEND_SHARDS_MIN),
					      map, sizeof(map));
			assert_string_equal(nftnl_expr_get_str(x, NFTNL_EXPR_LOOKUP_SET), map);
		}
		nftnl_rule_free(r);
	}
	nft_batch_free(&b);

	/* The node range: the node set's backends, named after the node chain if it fails. */
	nft_batch_init(&b, 1);
	nft_msg_fe_backends(&b, NFT_MSG_NEWSETELEM, &view, NFT_SIDE_NODE, 7);
	assert_int_equal(nft_batch_finish(&b), 0);
	collect_msgs(&b, ml);
	assert_int_equal(ml->n, 3);
	s = parse_elems(ml->msgs[1]);
	assert_string_equal(nftnl_set_get_str(s, NFTNL_SET_NAME), map);
	assert_int_equal(nftnl_set_get_u32(s, NFTNL_SET_ID), 0);
	nftnl_set_free(s);
	{
		char text[200];

		nft_msg_ref_text(nft_batch_ref(&b, ml->msgs[1]->nlmsg_seq), text, sizeof(text));
		assert_non_null(strstr(text, "2 backend(s) of fe-out-10.99.2.21-tcp-80"));
	}
	nft_batch_free(&b);

	fe_init(&np6, "::", IPPROTO_UDP, 30081, FE_DROP, 0, "fd00:1::", 0);
	fe_node_set(&np6, FE_NODE_PORT, 1, "fd00:1::", 5353);
	fe_init(&plain, "10.99.2.22", IPPROTO_TCP, 80, FE_SERVE, 1, "10.244", 8080);
	plain.kind = FE_LB_INGRESS;
	nft_batch_init(&b, 1);
	nft_batch_queue_node_elem(&b, NFT_MSG_NEWSETELEM, &lb);
	nft_batch_queue_node_elem(&b, NFT_MSG_NEWSETELEM, &np6);
	nft_batch_queue_node_elem(&b, NFT_MSG_NEWSETELEM, &plain);
	assert_int_equal(nft_batch_finish(&b), 0);
	collect_msgs(&b, ml);
	assert_int_equal(ml->n, 2 + 2); /* nothing for plain */
	s = parse_elems(ml->msgs[1]);
	assert_string_equal(nftnl_set_get_str(s, NFTNL_SET_NAME), "node-services4");
	e = first_elem(s, &it);
	key = nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &len);
	assert_int_equal(len, 12); /* addr . proto . port, 4 bytes each */
	assert_int_equal(key[4], IPPROTO_TCP);
	assert_int_equal((int32_t)nftnl_set_elem_get_u32(e, NFTNL_SET_ELEM_VERDICT), NFT_GOTO);
	assert_string_equal(nftnl_set_elem_get_str(e, NFTNL_SET_ELEM_CHAIN),
			    "fe-out-10.99.2.21-tcp-80");
	nftnl_set_elems_iter_destroy(it);
	nftnl_set_free(s);
	s = parse_elems(ml->msgs[2]);
	assert_string_equal(nftnl_set_get_str(s, NFTNL_SET_NAME), "node-nodeports6");
	e = first_elem(s, &it);
	key = nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &len);
	assert_int_equal(len, 8);
	assert_int_equal(ntohs(*(const uint16_t *)(key + 4)), 30081);
	assert_string_equal(nftnl_set_elem_get_str(e, NFTNL_SET_ELEM_CHAIN),
			    "fe-out-nodeport6-udp-30081");
	nftnl_set_elems_iter_destroy(it);
	nftnl_set_free(s);
	nft_batch_free(&b);

	/* A delete names the key only. */
	nft_batch_init(&b, 1);
	nft_batch_queue_node_elem(&b, NFT_MSG_DELSETELEM, &lb);
	assert_int_equal(nft_batch_finish(&b), 0);
	collect_msgs(&b, ml);
	assert_int_equal(msg_type(ml->msgs[1]), NFT_MSG_DELSETELEM);
	s = parse_elems(ml->msgs[1]);
	e = first_elem(s, &it);
	assert_false(nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_CHAIN));
	nftnl_set_elems_iter_destroy(it);
	nftnl_set_free(s);
	nft_batch_free(&b);
	frontend_clear(&lb);
	frontend_clear(&np6);
	frontend_clear(&plain);
	free(ml);
}

/* The lookup set of the last expression of rule i of ml, or its goto chain. */
static const char *rule_target(struct msg_list *ml, int i, char *buf, size_t len)
{
	struct nftnl_rule *r = parse_rule(ml->msgs[i]);
	struct nftnl_expr *x = rule_expr(r, rule_n_exprs(r) - 1);

	if (!strcmp(nftnl_expr_get_str(x, NFTNL_EXPR_NAME), "lookup"))
		snprintf(buf, len, "@%s", nftnl_expr_get_str(x, NFTNL_EXPR_LOOKUP_SET));
	else
		snprintf(buf, len, "goto %s", nftnl_expr_get_str(x, NFTNL_EXPR_IMM_CHAIN));
	nftnl_rule_free(r);
	return buf;
}

/*
 * nat-output: node-services before services; NodePorts after one fib
 * lookup, node-nodeports before nodeports in nat-output-nodeports4/6,
 * which exist before the rule that goes there. nat-prerouting (traffic
 * from outside) never looks at the node maps.
 */
static void test_skeleton_nat_output(void **state)
{
	static const char *const want_out[] = {
		"@node-services4", "@services4", "goto nat-output-nodeports4",
		"@node-services6", "@services6", "goto nat-output-nodeports6",
	};
	static const char *const want_pre[] = { "@services4", "@nodeports4", "@services6",
						"@nodeports6" };
	struct msg_list *ml = calloc(1, sizeof(*ml));
	int i = 0, sub_chain = -1, first_out = -1, n_node_sets = 0;
	struct nft_batch b;
	char buf[80];

	nft_batch_init(&b, 1);
	nft_msg_skeleton(&b, NULL, NFT_BACKEND_SHARDS_MIN);
	assert_int_equal(nft_batch_finish(&b), 0);
	collect_msgs(&b, ml);
	for (size_t m = 0; m < ml->n; m++) {
		if (msg_type(ml->msgs[m]) == NFT_MSG_NEWSET &&
		    !strncmp(msg_name(ml->msgs[m], buf, sizeof(buf)), "node-", 5))
			n_node_sets++;
		if (msg_type(ml->msgs[m]) == NFT_MSG_NEWCHAIN &&
		    !strcmp(msg_name(ml->msgs[m], buf, sizeof(buf)), "nat-output-nodeports4"))
			sub_chain = m;
	}
	assert_int_equal(n_node_sets, 4);
	for (size_t k = 0; k < 6; k++) {
		i = find_rule(ml, "nat-output", k ? i + 1 : 0);
		assert_true(i > 0);
		if (!k)
			first_out = i;
		assert_string_equal(rule_target(ml, i, buf, sizeof(buf)), want_out[k]);
	}
	assert_int_equal(find_rule(ml, "nat-output", i + 1), -1);
	assert_true(sub_chain > 0 && sub_chain < first_out);
	/* The NodePort rule: fib daddr type local, the address checks, no port key. */
	{
		struct nftnl_rule *r =
			parse_rule(ml->msgs[find_rule(ml, "nat-output", first_out) + 2]);

		assert_expr_name(rule_expr(r, 2), "fib");
		assert_expr_name(rule_expr(r, rule_n_exprs(r) - 2), "cmp");
		nftnl_rule_free(r);
	}
	for (int f = 0; f < 2; f++) {
		const char *chain = f ? "nat-output-nodeports6" : "nat-output-nodeports4";

		i = find_rule(ml, chain, 0);
		assert_string_equal(rule_target(ml, i, buf, sizeof(buf)),
				    f ? "@node-nodeports6" : "@node-nodeports4");
		i = find_rule(ml, chain, i + 1);
		assert_string_equal(rule_target(ml, i, buf, sizeof(buf)),
				    f ? "@nodeports6" : "@nodeports4");
		assert_int_equal(find_rule(ml, chain, i + 1), -1);
	}
	for (size_t k = 0; k < 4; k++) {
		i = find_rule(ml, "nat-prerouting", k ? i + 1 : 0);
		assert_string_equal(rule_target(ml, i, buf, sizeof(buf)), want_pre[k]);
	}
	assert_int_equal(find_rule(ml, "nat-prerouting", i + 1), -1);
	nft_batch_free(&b);
	free(ml);
}

static void test_firewall_ranges(void **state)
{
	static const char *const cidrs[] = { "192.168.1.0/24", "2001:db8::/32", "10.0.0.0/8",
					     "192.168.0.0/24", "10.1.2.0/24",	"255.255.255.0/24" };
	static const char *const v6only[] = { "2001:db8::/32" };
	static const char *const all[] = { "0.0.0.0/0" };
	struct nft_fw_range r[8];
	struct frontend fe, other;
	size_t n;

	fe_init(&fe, "203.0.113.20", IPPROTO_TCP, 80, FE_SERVE, 1, "10.1", 8080);
	assert_false(nft_fe_has_firewall(&fe)); /* ClusterIP kind, no ranges */
	fe.kind = FE_LB_INGRESS;
	assert_false(nft_fe_has_firewall(&fe)); /* no ranges: everyone */
	fe_ranges(&fe, cidrs, 6);
	assert_true(nft_fe_has_firewall(&fe));
	n = nft_fw_ranges(&fe, r, 8);
	/* 10.0.0.0/8 swallows 10.1.2.0/24; 192.168.0.0/24 and .1.0/24 touch: merged. */
	assert_int_equal(n, 3);
	assert_memory_equal(r[0].start, ((uint8_t[]){ 10, 0, 0, 0 }), 4);
	assert_memory_equal(r[0].end, ((uint8_t[]){ 11, 0, 0, 0 }), 4);
	assert_true(r[0].has_end);
	assert_memory_equal(r[1].start, ((uint8_t[]){ 192, 168, 0, 0 }), 4);
	assert_memory_equal(r[1].end, ((uint8_t[]){ 192, 168, 2, 0 }), 4);
	/* The last block runs to the top: no end element. */
	assert_memory_equal(r[2].start, ((uint8_t[]){ 255, 255, 255, 0 }), 4);
	assert_false(r[2].has_end);

	/* Only ranges of the other family: none of ours, everyone allowed (as kube-proxy). */
	fe_init(&other, "203.0.113.21", IPPROTO_TCP, 80, FE_SERVE, 1, "10.1", 8080);
	other.kind = FE_LB_INGRESS;
	fe_ranges(&other, v6only, 1);
	assert_false(nft_fe_has_firewall(&other));
	free(other.source_ranges);
	fe_ranges(&other, all, 1);
	assert_int_equal(nft_fw_ranges(&other, r, 8), 1);
	assert_false(r[0].has_end);
	assert_false(nft_fw_same_ranges(&fe, &other));
	assert_true(nft_fw_same_ranges(&fe, &fe));
	frontend_clear(&fe);
	frontend_clear(&other);
}

/* set allow-... (interval), its elements, chain firewall-... with ip saddr != @allow-... drop. */
static void test_firewall_messages(void **state)
{
	static const char *const cidrs[] = { "192.168.50.0/28", "198.51.100.7/32" };
	struct msg_list *ml = calloc(1, sizeof(*ml));
	struct nftnl_set *s = nftnl_set_alloc();
	struct nftnl_set_elems_iter *it;
	struct nftnl_set_elem *e;
	struct nftnl_rule *r;
	struct nftnl_expr *x;
	struct frontend fe;
	struct nft_batch b;
	uint32_t len;
	size_t m = 0;

	fe_init(&fe, "203.0.113.20", IPPROTO_TCP, 80, FE_REFUSE, 0, "10.1", 8080);
	fe.kind = FE_LB_INGRESS;
	fe_ranges(&fe, cidrs, 2);
	nft_batch_init(&b, 1);
	nft_msg_fw_add(&b, &fe);
	nft_batch_queue_fw_elem(&b, NFT_MSG_NEWSETELEM, &fe);
	assert_int_equal(nft_batch_finish(&b), 0);
	collect_msgs(&b, ml);
	/* BEGIN, set, elements, chain, rule, firewall-ips4 element, END */
	assert_int_equal(ml->n, 7);
	assert_int_equal(msg_type(ml->msgs[1]), NFT_MSG_NEWSET);
	assert_int_equal(nftnl_set_nlmsg_parse(ml->msgs[1], s), 0);
	assert_string_equal(nftnl_set_get_str(s, NFTNL_SET_NAME), "allow-203.0.113.20-tcp-80");
	assert_int_equal(nftnl_set_get_u32(s, NFTNL_SET_FLAGS), NFT_SET_INTERVAL);
	assert_int_equal(nftnl_set_get_u32(s, NFTNL_SET_KEY_LEN), 4);
	nftnl_set_free(s);
	s = parse_elems(ml->msgs[2]);
	it = nftnl_set_elems_iter_create(s);
	for (e = nftnl_set_elems_iter_next(it); e; e = nftnl_set_elems_iter_next(it), m++) {
		static const uint8_t want[4][4] = { { 192, 168, 50, 0 },
						    { 192, 168, 50, 16 },
						    { 198, 51, 100, 7 },
						    { 198, 51, 100, 8 } };
		bool is_end = nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_FLAGS) &&
			      (nftnl_set_elem_get_u32(e, NFTNL_SET_ELEM_FLAGS) &
			       NFT_SET_ELEM_INTERVAL_END);

		assert_true(m < 4);
		assert_memory_equal(nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &len), want[m], 4);
		assert_true(is_end == (m % 2 == 1));
	}
	assert_int_equal(m, 4);
	nftnl_set_elems_iter_destroy(it);
	nftnl_set_free(s);
	assert_int_equal(msg_type(ml->msgs[3]), NFT_MSG_NEWCHAIN);
	r = parse_rule(ml->msgs[4]);
	assert_string_equal(nftnl_rule_get_str(r, NFTNL_RULE_CHAIN),
			    "firewall-203.0.113.20-tcp-80");
	x = rule_expr(r, 2);
	assert_expr_name(x, "payload");
	assert_int_equal(nftnl_expr_get_u32(x, NFTNL_EXPR_PAYLOAD_OFFSET), 12); /* ip saddr */
	x = rule_expr(r, 3);
	assert_expr_name(x, "lookup");
	assert_string_equal(nftnl_expr_get_str(x, NFTNL_EXPR_LOOKUP_SET),
			    "allow-203.0.113.20-tcp-80");
	assert_int_equal(nftnl_expr_get_u32(x, NFTNL_EXPR_LOOKUP_FLAGS), NFT_LOOKUP_F_INV);
	assert_verdict(r, NF_DROP, NULL);
	nftnl_rule_free(r);
	s = parse_elems(ml->msgs[5]);
	assert_string_equal(nftnl_set_get_str(s, NFTNL_SET_NAME), "firewall-ips4");
	e = first_elem(s, &it);
	assert_string_equal(nftnl_set_elem_get_str(e, NFTNL_SET_ELEM_CHAIN),
			    "firewall-203.0.113.20-tcp-80");
	nftnl_set_elems_iter_destroy(it);
	nftnl_set_free(s);
	nft_batch_free(&b);

	/* New ranges: flush (DELSETELEM without elements), then the new elements. */
	nft_batch_init(&b, 1);
	nft_msg_fw_update(&b, &fe);
	assert_int_equal(nft_batch_finish(&b), 0);
	collect_msgs(&b, ml);
	assert_int_equal(ml->n, 4);
	assert_int_equal(msg_type(ml->msgs[1]), NFT_MSG_DELSETELEM);
	s = parse_elems(ml->msgs[1]);
	assert_string_equal(nftnl_set_get_str(s, NFTNL_SET_NAME), "allow-203.0.113.20-tcp-80");
	e = first_elem(s, &it);
	assert_null(e);
	nftnl_set_elems_iter_destroy(it);
	nftnl_set_free(s);
	assert_int_equal(msg_type(ml->msgs[2]), NFT_MSG_NEWSETELEM);
	nft_batch_free(&b);

	/* Removal: the chain (holding the set), then the set. */
	nft_batch_init(&b, 1);
	nft_msg_fw_del(&b, &fe.key);
	assert_int_equal(nft_batch_finish(&b), 0);
	collect_msgs(&b, ml);
	assert_int_equal(ml->n, 4);
	assert_int_equal(msg_type(ml->msgs[1]), NFT_MSG_DELCHAIN);
	assert_int_equal(msg_type(ml->msgs[2]), NFT_MSG_DELSET);
	nft_batch_free(&b);
	frontend_clear(&fe);
	free(ml);
}

/* The first element of the message's set, its verdict and chain. */
static void assert_elem_verdict(struct nlmsghdr *nlh, const char *set, int verdict,
				const char *chain)
{
	struct nftnl_set_elems_iter *it;
	struct nftnl_set *s = parse_elems(nlh);
	struct nftnl_set_elem *e;

	assert_string_equal(nftnl_set_get_str(s, NFTNL_SET_NAME), set);
	e = first_elem(s, &it);
	assert_non_null(e);
	assert_int_equal((int32_t)nftnl_set_elem_get_u32(e, NFTNL_SET_ELEM_VERDICT), verdict);
	if (chain)
		assert_string_equal(nftnl_set_elem_get_str(e, NFTNL_SET_ELEM_CHAIN), chain);
	else
		assert_false(nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_CHAIN));
	nftnl_set_elems_iter_destroy(it);
	nftnl_set_free(s);
}

/*
 * Refusals counted per Service: three counters with starting values, the
 * refuse. and drop. chains, the elements of counted frontends jumping to
 * them (others keep reject-chain and drop), the firewall rule counting.
 */
static void test_refusal_messages(void **state)
{
	static const char *const cidrs[] = { "192.0.2.0/24" };
	static const char *const names[] = { "no-endpoints.shop.cart", "policy-drop.shop.cart",
					     "source-range.shop.cart" };
	static const uint64_t pkts[NFT_REFUSALS] = { 5, 3, 2 },
			      bytes[NFT_REFUSALS] = { 300, 180, 120 };
	struct msg_list *ml = calloc(1, sizeof(*ml));
	struct frontend refused, dropped, plain, lb;
	struct nftnl_rule *r;
	struct nftnl_obj *o;
	struct nftnl_expr *x;
	struct nft_batch b;

	nft_batch_init(&b, 1);
	nft_msg_refusals_add(&b, "shop/cart", pkts, bytes);
	nft_msg_refusal_chain_add(&b, "shop/cart", false);
	nft_msg_refusal_chain_add(&b, "shop/cart", true);
	assert_int_equal(nft_batch_finish(&b), 0);
	collect_msgs(&b, ml);
	/* BEGIN, 3 counters, 2 x (chain, rule), END */
	assert_int_equal(ml->n, 9);
	for (int i = 0; i < 3; i++) {
		o = nftnl_obj_alloc();
		assert_int_equal(msg_type(ml->msgs[1 + i]), NFT_MSG_NEWOBJ);
		assert_int_equal(nftnl_obj_nlmsg_parse(ml->msgs[1 + i], o), 0);
		assert_string_equal(nftnl_obj_get_str(o, NFTNL_OBJ_NAME), names[i]);
		assert_int_equal(nftnl_obj_get_u32(o, NFTNL_OBJ_TYPE), NFT_OBJECT_COUNTER);
		assert_int_equal(nftnl_obj_get_u64(o, NFTNL_OBJ_CTR_PKTS), pkts[i]);
		assert_int_equal(nftnl_obj_get_u64(o, NFTNL_OBJ_CTR_BYTES), bytes[i]);
		nftnl_obj_free(o);
	}
	/* refuse.shop.cart: counter name "no-endpoints.shop.cart" goto reject-chain */
	assert_int_equal(msg_type(ml->msgs[4]), NFT_MSG_NEWCHAIN);
	r = parse_rule(ml->msgs[5]);
	assert_string_equal(nftnl_rule_get_str(r, NFTNL_RULE_CHAIN), "refuse.shop.cart");
	assert_int_equal(rule_n_exprs(r), 2);
	x = rule_expr(r, 0);
	assert_expr_name(x, "objref");
	assert_int_equal(nftnl_expr_get_u32(x, NFTNL_EXPR_OBJREF_IMM_TYPE), NFT_OBJECT_COUNTER);
	assert_string_equal(nftnl_expr_get_str(x, NFTNL_EXPR_OBJREF_IMM_NAME), names[0]);
	assert_verdict(r, NFT_GOTO, NFT_REJECT_CHAIN);
	nftnl_rule_free(r);
	/* drop.shop.cart: counter name "policy-drop.shop.cart" drop */
	r = parse_rule(ml->msgs[7]);
	assert_string_equal(nftnl_rule_get_str(r, NFTNL_RULE_CHAIN), "drop.shop.cart");
	assert_string_equal(nftnl_expr_get_str(rule_expr(r, 0), NFTNL_EXPR_OBJREF_IMM_NAME),
			    names[1]);
	assert_verdict(r, NF_DROP, NULL);
	nftnl_rule_free(r);
	nft_batch_free(&b);

	/* Elements: a rate-limited Service's refusals jump to its chains, others do not. */
	fe_init(&refused, "10.96.0.11", IPPROTO_TCP, 80, FE_REFUSE, 0, "10.1", 0);
	fe_init(&dropped, "10.96.0.12", IPPROTO_TCP, 80, FE_DROP, 0, "10.1", 0);
	fe_init(&plain, "fd00:96::13", IPPROTO_TCP, 80, FE_REFUSE, 0, "10.1", 0);
	refused.service = strdup("shop/cart");
	dropped.service = strdup("shop/cart");
	plain.service = strdup("shop/plain");
	refused.rate = dropped.rate = (struct rate_limit){ .count = 5, .period = 1, .burst = 5 };
	assert_true(nft_fe_counted(&refused, false));
	assert_false(nft_fe_counted(&plain, false));
	assert_true(nft_fe_counted(&plain, true));
	nft_batch_init(&b, 1);
	nft_batch_queue_elem(&b, NFT_MSG_NEWSETELEM, &refused);
	nft_batch_queue_elem(&b, NFT_MSG_NEWSETELEM, &plain);
	nft_batch_flush_elems(&b);
	nft_batch_queue_elem(&b, NFT_MSG_NEWSETELEM, &dropped);
	nft_batch_flush_elems(&b);
	/* --metrics-all-services: every Service counted. */
	b.count_all = true;
	nft_batch_queue_elem(&b, NFT_MSG_NEWSETELEM, &plain);
	assert_int_equal(nft_batch_finish(&b), 0);
	collect_msgs(&b, ml);
	assert_int_equal(ml->n, 2 + 4);
	assert_elem_verdict(ml->msgs[1], "no-endpoints4", NFT_GOTO, "refuse.shop.cart");
	assert_elem_verdict(ml->msgs[2], "no-endpoints6", NFT_GOTO, NFT_REJECT_CHAIN);
	assert_elem_verdict(ml->msgs[3], "no-endpoints4", NFT_GOTO, "drop.shop.cart");
	assert_elem_verdict(ml->msgs[4], "no-endpoints6", NFT_GOTO, "refuse.shop.plain");
	nft_batch_free(&b);
	/* Not counted: drop stays a plain verdict. */
	dropped.rate.count = 0;
	nft_batch_init(&b, 1);
	nft_batch_queue_elem(&b, NFT_MSG_NEWSETELEM, &dropped);
	assert_int_equal(nft_batch_finish(&b), 0);
	collect_msgs(&b, ml);
	assert_elem_verdict(ml->msgs[1], "no-endpoints4", NF_DROP, NULL);
	nft_batch_free(&b);

	/* The firewall of a counted LB frontend counts before it drops; others only drop. */
	fe_init(&lb, "203.0.113.20", IPPROTO_TCP, 80, FE_SERVE, 1, "10.1", 8080);
	lb.kind = FE_LB_INGRESS;
	fe_ranges(&lb, cidrs, 1);
	lb.service = strdup("shop/cart");
	lb.rate = refused.rate;
	for (int counted = 1; counted >= 0; counted--) {
		nft_batch_init(&b, 1);
		nft_msg_fw_add(&b, &lb);
		assert_int_equal(nft_batch_finish(&b), 0);
		collect_msgs(&b, ml);
		/* BEGIN, set, elements, chain, rule, END */
		assert_int_equal(ml->n, 6);
		r = parse_rule(ml->msgs[4]);
		assert_int_equal(rule_n_exprs(r), counted ? 6 : 5);
		if (counted) {
			x = rule_expr(r, 4);
			assert_expr_name(x, "objref");
			assert_string_equal(nftnl_expr_get_str(x, NFTNL_EXPR_OBJREF_IMM_NAME),
					    names[2]);
		}
		assert_verdict(r, NF_DROP, NULL);
		nftnl_rule_free(r);
		nft_batch_free(&b);
		lb.rate.count = 0;
	}

	/* Removal: the chains, then the counters. */
	nft_batch_init(&b, 1);
	nft_msg_refusal_chain_del(&b, "shop/cart", false);
	nft_msg_refusal_chain_del(&b, "shop/cart", true);
	nft_msg_refusals_del(&b, "shop/cart");
	assert_int_equal(nft_batch_finish(&b), 0);
	collect_msgs(&b, ml);
	assert_int_equal(ml->n, 7);
	assert_int_equal(msg_type(ml->msgs[1]), NFT_MSG_DELCHAIN);
	assert_int_equal(msg_type(ml->msgs[2]), NFT_MSG_DELCHAIN);
	for (int i = 3; i < 6; i++)
		assert_int_equal(msg_type(ml->msgs[i]), NFT_MSG_DELOBJ);
	nft_batch_free(&b);
	frontend_clear(&refused);
	frontend_clear(&dropped);
	frontend_clear(&plain);
	frontend_clear(&lb);
	free(ml);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_chain_names),
		cmocka_unit_test(test_classify),
		cmocka_unit_test(test_node_port_names),
		cmocka_unit_test(test_node_port_elements),
		cmocka_unit_test(test_masquerade_mark_rule),
		cmocka_unit_test(test_skeleton_external_chains),
		cmocka_unit_test(test_node_chain_names),
		cmocka_unit_test(test_node_chain_classify),
		cmocka_unit_test(test_node_chain_messages),
		cmocka_unit_test(test_skeleton_nat_output),
		cmocka_unit_test(test_firewall_ranges),
		cmocka_unit_test(test_firewall_messages),
		cmocka_unit_test(test_refusal_messages),
		cmocka_unit_test(test_dnat_rule_v4),
		cmocka_unit_test(test_dnat_rule_v6),
		cmocka_unit_test(test_map_elements),
		cmocka_unit_test(test_batch_splits_large_sets),
		cmocka_unit_test(test_service_and_endpoint_names),
		cmocka_unit_test(test_service_names_injective),
		cmocka_unit_test(test_longest_names_fit),
		cmocka_unit_test(test_unnameable_left_out),
		cmocka_unit_test(test_limit_kernel_burst),
		cmocka_unit_test(test_service_limit_messages),
		cmocka_unit_test(test_affinity_messages),
	};

	log_set_level(getenv("SLUICE_DEBUG") ? LOG_DEBUG : LOG_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
