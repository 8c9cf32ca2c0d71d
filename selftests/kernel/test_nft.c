// SPDX-License-Identifier: Apache-2.0
/*
 * Tests of the nftables datapath: the netlink messages it builds (parsed
 * back with libnftnl, no kernel), and the datapath against the kernel, each
 * such test in a forked child inside its own fresh network namespace.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <libmnl/libmnl.h>
#include <libnftnl/batch.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/object.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <cmocka.h>

#include "datapath/datapath.h"
#include "lib/log.h"
#include "datapath/nft/nft_msg.h"

/* ---- fixtures ---- */

/* A frontend owning its backends: backends a.b.c.1.. / prefix::1.. on port be_port. */
static void fe_init(struct frontend *fe, const char *addr, uint8_t proto, uint16_t port,
		    enum frontend_action action, size_t n_backends, const char *be_prefix,
		    uint16_t be_port)
{
	memset(fe, 0, sizeof(*fe));
	assert_true(ip_addr_parse(addr, &fe->key.addr));
	fe->key.proto = proto;
	fe->key.port = port;
	fe->action = action;
	fe->backends = calloc(n_backends ? n_backends : 1, sizeof(*fe->backends));
	assert_non_null(fe->backends);
	fe->n_backends = n_backends;
	for (size_t i = 0; i < n_backends; i++) {
		char text[IP_ADDR_STRLEN];

		if (strchr(be_prefix, ':'))
			snprintf(text, sizeof(text), "%s%zx", be_prefix, i + 1);
		else
			snprintf(text, sizeof(text), "%s.%zu.%zu", be_prefix, (i + 1) / 250,
				 (i + 1) % 250);
		assert_true(ip_addr_parse(text, &fe->backends[i].addr));
		fe->backends[i].port = be_port;
	}
}

static void fe_marker(struct frontend *fe, const char *addr)
{
	memset(fe, 0, sizeof(*fe));
	assert_true(ip_addr_parse(addr, &fe->key.addr));
	fe->action = FE_REFUSE;
}

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

	assert_non_null(ml);
	nft_backends_map_name(v6, nft_fe_backend_shard(&fe->key), map, sizeof(map));
	assert_true(nft_fe_backend_shard(&fe->key) < NFT_BACKEND_SHARDS);
	assert_int_equal(strncmp(map, v6 ? "backends6-" : "backends4-", 10), 0);
	assert_int_equal(nft_batch_init(&b, 100), 0);
	nft_msg_fe_backends(&b, NFT_MSG_NEWSETELEM, fe, base);
	nft_msg_fe_dnat_rule(&b, fe, base);
	nft_msg_fe_backends(&b, NFT_MSG_DELSETELEM, fe, base);
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
	/* numgen reg 1 = random mod N offset BASE */
	x = rule_expr(rule, 2);
	assert_expr_name(x, "numgen");
	assert_int_equal(nftnl_expr_get_u32(x, NFTNL_EXPR_NG_TYPE), NFT_NG_RANDOM);
	assert_int_equal(nftnl_expr_get_u32(x, NFTNL_EXPR_NG_MODULUS), fe->n_backends);
	assert_int_equal(nftnl_expr_get_u32(x, NFTNL_EXPR_NG_OFFSET), base);
	assert_int_equal(nftnl_expr_get_u32(x, NFTNL_EXPR_NG_DREG), NFT_REG_1);
	/* lookup reg 1 set backends4-<shard> dreg 1 */
	x = rule_expr(rule, 3);
	assert_expr_name(x, "lookup");
	assert_string_equal(nftnl_expr_get_str(x, NFTNL_EXPR_LOOKUP_SET), map);
	assert_false(nftnl_expr_is_set(x, NFTNL_EXPR_LOOKUP_SET_ID));
	assert_int_equal(nftnl_expr_get_u32(x, NFTNL_EXPR_LOOKUP_SREG), NFT_REG_1);
	assert_int_equal(nftnl_expr_get_u32(x, NFTNL_EXPR_LOOKUP_DREG), NFT_REG_1);
	/* nat dnat ip addr_min reg 1 proto_min reg 9 (ip6: reg 2) */
	x = rule_expr(rule, 4);
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
	assert_int_equal(nft_batch_init(&b, 1), 0);
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

	assert_int_equal(nft_batch_init(&b, 7), 0);
	for (size_t i = 0; i < n; i++) {
		char addr[32];

		snprintf(addr, sizeof(addr), "10.96.%zu.%zu", i / 250, i % 250 + 1);
		fe_init(&fes[i], addr, IPPROTO_TCP, 80, FE_SERVE, 1, "10.1", 8080);
		nft_batch_queue_elem(&b, NFT_MSG_NEWSETELEM, &fes[i]);
	}
	fe_init(&big, "fd00:96::1", IPPROTO_TCP, 80, FE_SERVE, 1000, "fd00:1::", 8080);
	nft_batch_flush_elems(&b);
	nft_msg_fe_backends(&b, NFT_MSG_NEWSETELEM, &big, 0);
	nft_msg_fe_dnat_rule(&b, &big, 0);
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
	nft_ep_chain_name(&fe.key, &fe.backends[0], name, sizeof(name));
	assert_string_equal(name, "ep-10.96.0.10-tcp-80-10.1.0.1-8080");
	nft_ep_set_name(&fe.key, &fe.backends[0], name, sizeof(name));
	assert_string_equal(name, "aff-10.96.0.10-tcp-80-10.1.0.1-8080");
	frontend_clear(&fe);
	fe_init(&fe, "fd00:96::10", IPPROTO_UDP, 53, FE_SERVE, 1, "fd00:1::", 53);
	nft_ep_chain_name(&fe.key, &fe.backends[0], name, sizeof(name));
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

/* A Service's rate limit: counters with starting values, the limit, its chain and rules. */
static void test_service_limit_messages(void **state)
{
	struct msg_list *ml = calloc(1, sizeof(*ml));
	struct rate_limit rl = { .count = 50, .period = 1, .burst = 10 };
	struct nftnl_obj *o;
	struct nftnl_rule *r;
	struct nftnl_expr *x;
	struct nft_batch b;

	assert_int_equal(nft_batch_init(&b, 1), 0);
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
	assert_int_equal(nft_batch_init(&b, 1), 0);
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
	assert_int_equal(nft_batch_init(&b, 1), 0);
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
	assert_int_equal(nft_batch_init(&b, 1), 0);
	nft_msg_fe_rules(&b, &fe, 0);
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

		nft_ep_set_name(&fe.key, &fe.backends[i], set, sizeof(set));
		nft_ep_chain_name(&fe.key, &fe.backends[i], chain, sizeof(chain));
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

		nft_ep_chain_name(&fe.key, &fe.backends[m], chain, sizeof(chain));
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
	assert_int_equal(nft_batch_init(&b, 1), 0);
	nft_msg_ep_add(&b, &fe, &fe.backends[1]);
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
	x = rule_expr(r, 2);
	assert_expr_name(x, "immediate");
	assert_memory_equal(nftnl_expr_get(x, NFTNL_EXPR_IMM_DATA, &len), fe.backends[1].addr.bytes,
			    4);
	x = rule_expr(r, 4);
	assert_expr_name(x, "nat");
	nftnl_rule_free(r);
	nft_batch_free(&b);

	/* Deleting: chain first (its rule holds the set), then the set. */
	assert_int_equal(nft_batch_init(&b, 1), 0);
	nft_msg_ep_del(&b, &fe, &fe.backends[1]);
	assert_int_equal(nft_batch_finish(&b), 0);
	collect_msgs(&b, ml);
	assert_int_equal(ml->n, 4);
	assert_int_equal(msg_type(ml->msgs[1]), NFT_MSG_DELCHAIN);
	assert_int_equal(msg_type(ml->msgs[2]), NFT_MSG_DELSET);
	nft_batch_free(&b);

	/* Without affinity or limit: the one DNAT rule, as before. */
	fe.affinity_timeout = 0;
	fe.rate.count = 0;
	assert_int_equal(nft_batch_init(&b, 1), 0);
	nft_msg_fe_rules(&b, &fe, 0);
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
	nft_ep_chain_name(&key, &be, name, sizeof(name));
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
	assert_int_equal(nft_batch_init(&b, 1), 0);
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
		assert_int_equal(nft_batch_init(&b, 1), 0);
		nft_msg_fe_rules(&b, &fe, 0);
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
	struct msg_list *ml = calloc(1, sizeof(*ml));
	struct nftnl_chain *c = nftnl_chain_alloc();
	struct nftnl_rule *r;
	struct nftnl_expr *x;
	struct nft_batch b;
	bool saw_post = false, saw_fw = false, saw_fw_out = false;
	int i, n_nodeport_sets = 0, n_backend_maps = 0;

	assert_int_equal(nft_batch_init(&b, 1), 0);
	nft_msg_skeleton(&b);
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
	assert_int_equal(n_backend_maps, 2 * NFT_BACKEND_SHARDS);
	assert_int_equal(n_nodeport_sets, 4);

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

static void fe_ranges(struct frontend *fe, const char *const *cidrs, size_t n)
{
	fe->source_ranges = calloc(n, sizeof(*fe->source_ranges));
	fe->n_source_ranges = n;
	for (size_t i = 0; i < n; i++)
		assert_true(cidr_parse(cidrs[i], &fe->source_ranges[i]));
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
	assert_int_equal(nft_batch_init(&b, 1), 0);
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
	assert_int_equal(nft_batch_init(&b, 1), 0);
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
	assert_int_equal(nft_batch_init(&b, 1), 0);
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

/* ---- kernel tests: each in a child process inside a fresh network namespace ---- */

#define CHECK(cond)                                                                              \
	do {                                                                                     \
		if (!(cond)) {                                                                   \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
			return 1;                                                                \
		}                                                                                \
	} while (0)

static const struct datapath_config test_cfg = { .node_name = "test-node" };

/* Runs fn in a forked child in a new network namespace; skips without the privilege. */
static void run_in_netns(int (*fn)(void))
{
	int status = 0;
	pid_t pid;

	if (geteuid() != 0) {
		skip();
		return;
	}
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (unshare(CLONE_NEWNET)) {
			perror("unshare(CLONE_NEWNET)");
			_exit(77);
		}
		_exit(fn());
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) == 77) {
		skip();
		return;
	}
	assert_int_equal(WEXITSTATUS(status), 0);
}

/* What the kernel holds, read back over netlink: one line per object. */
struct dump {
	char **lines;
	size_t n, cap;
};

static void dump_add(struct dump *d, const char *line)
{
	if (d->n == d->cap) {
		d->cap = d->cap ? d->cap * 2 : 1024;
		d->lines = realloc(d->lines, d->cap * sizeof(*d->lines));
	}
	d->lines[d->n++] = strdup(line);
}

static void dump_free(struct dump *d)
{
	for (size_t i = 0; i < d->n; i++)
		free(d->lines[i]);
	free(d->lines);
	memset(d, 0, sizeof(*d));
}

static bool dump_has(const struct dump *d, const char *line)
{
	for (size_t i = 0; i < d->n; i++)
		if (!strcmp(d->lines[i], line))
			return true;
	return false;
}

static int dump_rule_cb(const struct nlmsghdr *nlh, void *data)
{
	struct nftnl_rule *r = nftnl_rule_alloc();
	char line[4096];

	if (nftnl_rule_nlmsg_parse(nlh, r) == 0) {
		/* The default output names table, chain, handle and every expression. */
		nftnl_rule_snprintf(line, sizeof(line), r, NFTNL_OUTPUT_DEFAULT, 0);
		dump_add(data, line);
	}
	nftnl_rule_free(r);
	return MNL_CB_OK;
}

static int dump_chain_cb(const struct nlmsghdr *nlh, void *data)
{
	struct nftnl_chain *c = nftnl_chain_alloc();
	char line[512];

	if (nftnl_chain_nlmsg_parse(nlh, c) == 0) {
		snprintf(line, sizeof(line), "chain %s handle %llu",
			 nftnl_chain_get_str(c, NFTNL_CHAIN_NAME),
			 (unsigned long long)nftnl_chain_get_u64(c, NFTNL_CHAIN_HANDLE));
		dump_add(data, line);
	}
	nftnl_chain_free(c);
	return MNL_CB_OK;
}

static int dump_elem_cb(const struct nlmsghdr *nlh, void *data)
{
	struct nftnl_set *s = nftnl_set_alloc();
	struct nftnl_set_elems_iter *it;
	struct nftnl_set_elem *e;

	if (nftnl_set_elems_nlmsg_parse(nlh, s) == 0) {
		it = nftnl_set_elems_iter_create(s);
		for (e = nftnl_set_elems_iter_next(it); e; e = nftnl_set_elems_iter_next(it)) {
			char line[512];

			nftnl_set_elem_snprintf(line, sizeof(line), e, NFTNL_OUTPUT_DEFAULT, 0);
			dump_add(data, line);
		}
		nftnl_set_elems_iter_destroy(it);
	}
	nftnl_set_free(s);
	return MNL_CB_OK;
}

/* Dumps rules, chains, or the elements of one named set of table sluice. */
static int dump_kernel(uint16_t type, const char *set, struct dump *out)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct mnl_socket *nl = mnl_socket_open(NETLINK_NETFILTER);
	uint16_t flags = NLM_F_DUMP;
	struct nlmsghdr *nlh;
	mnl_cb_t cb;
	int ret;

	if (!nl || mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0)
		return -1;
	memset(buf, 0, sizeof(buf)); /* libmnl leaves attribute padding unset */
	nlh = nftnl_nlmsg_build_hdr(buf, type, NFPROTO_INET, flags, 1);
	if (type == NFT_MSG_GETSETELEM) {
		struct nftnl_set *s = nftnl_set_alloc();

		nftnl_set_set_str(s, NFTNL_SET_TABLE, NFT_TABLE_NAME);
		nftnl_set_set_str(s, NFTNL_SET_NAME, set);
		nftnl_set_elems_nlmsg_build_payload(nlh, s);
		nftnl_set_free(s);
		cb = dump_elem_cb;
	} else if (type == NFT_MSG_GETRULE) {
		struct nftnl_rule *r = nftnl_rule_alloc();

		nftnl_rule_set_str(r, NFTNL_RULE_TABLE, NFT_TABLE_NAME);
		nftnl_rule_nlmsg_build_payload(nlh, r);
		nftnl_rule_free(r);
		cb = dump_rule_cb;
	} else {
		cb = dump_chain_cb;
	}
	ret = mnl_socket_sendto(nl, nlh, nlh->nlmsg_len);
	while (ret > 0) {
		ret = mnl_socket_recvfrom(nl, buf, sizeof(buf));
		if (ret <= 0)
			break;
		ret = mnl_cb_run(buf, ret, 1, mnl_socket_get_portid(nl), cb, out);
	}
	mnl_socket_close(nl);
	return ret;
}

/* Everything the kernel holds for table sluice, as lines. */
static int dump_all(struct dump *d)
{
	static const char *const sets[] = {
		"services4",
		"services6",
		"no-endpoints4",
		"no-endpoints6",
		"service-addrs4",
		"service-addrs6",
		"nodeports4",
		"nodeports6",
		"no-endpoint-nodeports4",
		"no-endpoint-nodeports6",
		"firewall-ips4",
		"firewall-ips6",
	};

	if (dump_kernel(NFT_MSG_GETRULE, NULL, d) < 0 || dump_kernel(NFT_MSG_GETCHAIN, NULL, d) < 0)
		return -1;
	for (size_t i = 0; i < sizeof(sets) / sizeof(sets[0]); i++) {
		struct dump elems = { 0 };
		char line[600];

		if (dump_kernel(NFT_MSG_GETSETELEM, sets[i], &elems) < 0)
			return -1;
		for (size_t j = 0; j < elems.n; j++) {
			snprintf(line, sizeof(line), "%s: %s", sets[i], elems.lines[j]);
			dump_add(d, line);
		}
		dump_free(&elems);
	}
	for (unsigned int i = 0; i < 2 * NFT_BACKEND_SHARDS; i++) {
		struct dump elems = { 0 };
		char map[NFT_BACKENDS_NAME_MAX], line[600];

		nft_backends_map_name(i & 1, i / 2, map, sizeof(map));
		if (dump_kernel(NFT_MSG_GETSETELEM, map, &elems) < 0)
			return -1;
		for (size_t j = 0; j < elems.n; j++) {
			snprintf(line, sizeof(line), "%s: %s", map, elems.lines[j]);
			dump_add(d, line);
		}
		dump_free(&elems);
	}
	return 0;
}

static size_t dump_count(const struct dump *d, const char *needle)
{
	size_t n = 0;

	for (size_t i = 0; i < d->n; i++)
		n += strstr(d->lines[i], needle) != NULL;
	return n;
}

/* A cluster's worth of frontends: n services, each a tcp/80 frontend and a marker. */
static struct frontend *make_services(size_t n, size_t *n_out)
{
	struct frontend *fes = calloc(2 * n, sizeof(*fes));

	for (size_t i = 0; i < n; i++) {
		char addr[32];

		snprintf(addr, sizeof(addr), "10.96.%zu.%zu", i / 250, i % 250 + 1);
		fe_init(&fes[2 * i], addr, IPPROTO_TCP, 80, FE_SERVE, 1 + i % 3, "10.1", 8080);
		fe_marker(&fes[2 * i + 1], addr);
	}
	*n_out = 2 * n;
	return fes;
}

static struct state_diff diff_of(struct frontend_change *ch, const struct frontend *fes, size_t n,
				 bool full)
{
	for (size_t i = 0; i < n; i++) {
		ch[i].old = NULL;
		ch[i].new = &fes[i];
	}
	return (struct state_diff){ .full = full, .changes = ch, .n_changes = n };
}

static int child_open_apply_cleanup(void)
{
	struct frontend fes[3];
	struct frontend_change ch[3];
	struct state_diff diff;
	struct datapath *dp;
	struct dump d = { 0 };
	char why[256] = "";

	CHECK(!nft_datapath_ops.present(&test_cfg));
	/* cleanup without a table is fine */
	CHECK(nft_datapath_ops.cleanup(&test_cfg) == 0);
	CHECK(nft_datapath_ops.open(&test_cfg, &dp, why, sizeof(why)) == 0);
	CHECK(!nft_datapath_ops.present(&test_cfg)); /* open alone changes nothing */
	fe_init(&fes[0], "10.96.0.10", IPPROTO_TCP, 80, FE_SERVE, 2, "10.1", 8080);
	fe_marker(&fes[1], "10.96.0.10");
	fe_init(&fes[2], "fd00:96::10", IPPROTO_UDP, 53, FE_SERVE, 1, "fd00:1::", 53);
	diff = diff_of(ch, fes, 3, true);
	CHECK(nft_datapath_ops.apply(dp, &diff) == 0);
	CHECK(nft_datapath_ops.present(&test_cfg));
	CHECK(dump_all(&d) == 0);
	CHECK(dump_count(&d, "services4:") == 1);
	CHECK(dump_count(&d, "chain fe-10.96.0.10-tcp-80 handle") == 1);
	CHECK(dump_count(&d, "chain fe-fd00_96__10-udp-53 handle") == 1);
	CHECK(dump_count(&d, "service-addrs4:") == 1);
	CHECK(dump_count(&d, "chain nat-output handle") == 1);
	CHECK(dump_count(&d, "chain filter-forward handle") == 1);
	dump_free(&d);
	/* close keeps the table: the kernel keeps serving */
	nft_datapath_ops.close(dp);
	CHECK(nft_datapath_ops.present(&test_cfg));
	CHECK(nft_datapath_ops.cleanup(&test_cfg) == 0);
	CHECK(!nft_datapath_ops.present(&test_cfg));
	CHECK(nft_datapath_ops.cleanup(&test_cfg) == 0);
	for (int i = 0; i < 3; i++)
		frontend_clear(&fes[i]);
	return 0;
}

static void test_kernel_open_apply_cleanup(void **state)
{
	run_in_netns(child_open_apply_cleanup);
}

/* Adding one service to thousands leaves every other chain, rule and element as it was. */
static int child_add_one_keeps_handles(void)
{
	size_t n;
	struct frontend *fes = make_services(2000, &n);
	struct frontend_change *ch = calloc(n, sizeof(*ch));
	struct frontend extra[2];
	struct frontend_change extra_ch[2];
	struct dump before = { 0 }, after = { 0 };
	struct state_diff diff;
	struct datapath *dp;
	char why[256], map[NFT_BACKENDS_NAME_MAX + 2];

	CHECK(nft_datapath_ops.open(&test_cfg, &dp, why, sizeof(why)) == 0);
	diff = diff_of(ch, fes, n, true);
	CHECK(nft_datapath_ops.apply(dp, &diff) == 0);
	CHECK(dump_all(&before) == 0);
	CHECK(dump_count(&before, "chain fe-") == 2000);

	fe_init(&extra[0], "10.97.0.1", IPPROTO_TCP, 443, FE_SERVE, 2, "10.2", 8443);
	fe_marker(&extra[1], "10.97.0.1");
	diff = diff_of(extra_ch, extra, 2, false);
	CHECK(nft_datapath_ops.apply(dp, &diff) == 0);
	CHECK(dump_all(&after) == 0);
	/* Every line (rule with its handle, chain with its handle, element) is still there. */
	for (size_t i = 0; i < before.n; i++) {
		if (!dump_has(&after, before.lines[i])) {
			fprintf(stderr, "changed or gone: %s\n", before.lines[i]);
			return 1;
		}
	}
	/*
	 * ... and the only new ones are the added service's chain, rule, two
	 * elements and its two backends in its backends4 map.
	 */
	CHECK(after.n == before.n + 6);
	nft_backends_map_name(false, nft_fe_backend_shard(&extra[0].key), map, sizeof(map));
	strcat(map, ": ");
	CHECK(dump_count(&after, map) == dump_count(&before, map) + 2);
	CHECK(dump_count(&after, "chain fe-10.97.0.1-tcp-443 handle") == 1);
	dump_free(&before);
	dump_free(&after);
	nft_datapath_ops.close(dp);
	return 0;
}

static void test_kernel_add_one_keeps_handles(void **state)
{
	run_in_netns(child_add_one_keeps_handles);
}

/* Finds the one line containing needle (NULL if none or several). */
static const char *dump_find(const struct dump *d, const char *needle)
{
	const char *found = NULL;

	for (size_t i = 0; i < d->n; i++) {
		if (strstr(d->lines[i], needle)) {
			if (found)
				return NULL;
			found = d->lines[i];
		}
	}
	return found;
}

/* The "offset N" of fe's DNAT rule in d, -1 if there is none. */
static long dnat_offset(const struct dump *d, const struct frontend *fe)
{
	char chain[NFT_CHAIN_NAME_MAX + 16];
	const char *line, *off;

	nft_fe_chain_name(&fe->key, chain, sizeof(chain));
	strcat(chain, " ");
	for (size_t i = 0; i < d->n; i++) {
		line = d->lines[i];
		/* libnftnl prints "offset N" only when N is not 0. */
		if (strstr(line, chain) && strstr(line, "numgen"))
			return (off = strstr(line, "offset ")) ? strtol(off + 7, NULL, 10) : 0;
	}
	return -1;
}

/* Elements of fe's backend map in d. */
static size_t backend_elems(const struct dump *d, const struct frontend *fe)
{
	char map[NFT_BACKENDS_NAME_MAX + 2];

	nft_backends_map_name(fe->key.addr.family == AF_INET6, nft_fe_backend_shard(&fe->key), map,
			      sizeof(map));
	strcat(map, ": ");
	return dump_count(d, map);
}

/* Backend change, serve -> refuse -> drop -> serve, delete: each touches only its frontend. */
static int child_changes(void)
{
	struct frontend a, a2, a_refuse, a_drop, b, marker;
	struct frontend_change ch[3];
	struct dump d0 = { 0 }, d1 = { 0 }, d = { 0 };
	struct state_diff diff = { .changes = ch };
	const char *line;
	char b_chain[256], a_chain[256], b_rule[4096], a_rule[4096];
	struct datapath *dp;
	char why[256];
	size_t b_share; /* b's backends in a's map (the two may share a shard) */
	long a_off;

	fe_init(&a, "10.96.0.10", IPPROTO_TCP, 80, FE_SERVE, 2, "10.1", 8080);
	fe_init(&a2, "10.96.0.10", IPPROTO_TCP, 80, FE_SERVE, 3, "10.1", 8080);
	fe_init(&a_refuse, "10.96.0.10", IPPROTO_TCP, 80, FE_REFUSE, 0, "10.1", 0);
	fe_init(&a_drop, "10.96.0.10", IPPROTO_TCP, 80, FE_DROP, 0, "10.1", 0);
	fe_init(&b, "10.96.0.20", IPPROTO_UDP, 53, FE_SERVE, 1, "10.3", 53);
	fe_marker(&marker, "10.96.0.10");
	CHECK(nft_datapath_ops.open(&test_cfg, &dp, why, sizeof(why)) == 0);
	ch[0] = (struct frontend_change){ NULL, &a };
	ch[1] = (struct frontend_change){ NULL, &b };
	ch[2] = (struct frontend_change){ NULL, &marker };
	diff.full = true;
	diff.n_changes = 3;
	CHECK(nft_datapath_ops.apply(dp, &diff) == 0);
	CHECK(dump_all(&d0) == 0);
	snprintf(a_chain, sizeof(a_chain), "%s", dump_find(&d0, "chain fe-10.96.0.10-tcp-80 "));
	snprintf(b_chain, sizeof(b_chain), "%s", dump_find(&d0, "chain fe-10.96.0.20-udp-53 "));
	snprintf(b_rule, sizeof(b_rule), "%s", dump_find(&d0, "sluice fe-10.96.0.20-udp-53 "));
	snprintf(a_rule, sizeof(a_rule), "%s", dump_find(&d0, "sluice fe-10.96.0.10-tcp-80 "));
	b_share = nft_fe_backend_shard(&a.key) == nft_fe_backend_shard(&b.key) ? 1 : 0;
	a_off = dnat_offset(&d0, &a);
	CHECK(a_off >= 0 && dnat_offset(&d0, &b) >= 0);
	CHECK(backend_elems(&d0, &a) == 2 + b_share);

	/* New backends: same chain (same handle), new rule with mod 3. */
	diff.full = false;
	diff.n_changes = 1;
	ch[0] = (struct frontend_change){ &a, &a2 };
	CHECK(nft_datapath_ops.apply(dp, &diff) == 0);
	CHECK(dump_all(&d1) == 0);
	CHECK(dump_has(&d1, a_chain));
	CHECK(dump_has(&d1, b_chain) && dump_has(&d1, b_rule));
	CHECK(!dump_has(&d1, a_rule));
	line = dump_find(&d1, "sluice fe-10.96.0.10-tcp-80 ");
	CHECK(line && strstr(line, "mod 3"));
	CHECK(dump_count(&d1, "services4:") == 2);
	/* ... in a new range of the map; the old range's two elements are gone. */
	CHECK(dnat_offset(&d1, &a2) >= 0 && dnat_offset(&d1, &a2) != a_off);
	CHECK(labs(dnat_offset(&d1, &a2) - a_off) >= 2);
	CHECK(backend_elems(&d1, &a2) == 3 + b_share);
	CHECK(dnat_offset(&d1, &b) == dnat_offset(&d0, &b));

	/* No endpoints: chain gone, element moves to no-endpoints4 -> reject-chain. */
	ch[0] = (struct frontend_change){ &a2, &a_refuse };
	CHECK(nft_datapath_ops.apply(dp, &diff) == 0);
	CHECK(dump_all(&d) == 0);
	CHECK(dump_count(&d, "fe-10.96.0.10-tcp-80") == 0);
	CHECK(dump_count(&d, "services4:") == 1);
	CHECK(dump_count(&d, "no-endpoints4:") == 1 && dump_count(&d, "reject-chain") >= 1);
	CHECK(dump_has(&d, b_chain) && dump_has(&d, b_rule));
	CHECK(backend_elems(&d, &a) == b_share); /* its range went with the chain */
	dump_free(&d);

	/* Local policy, endpoints elsewhere: drop. */
	ch[0] = (struct frontend_change){ &a_refuse, &a_drop };
	CHECK(nft_datapath_ops.apply(dp, &diff) == 0);
	CHECK(dump_all(&d) == 0);
	line = dump_find(&d, "no-endpoints4:");
	CHECK(line && strstr(line, "drop"));
	dump_free(&d);

	/* Served again, then deleted. */
	ch[0] = (struct frontend_change){ &a_drop, &a };
	CHECK(nft_datapath_ops.apply(dp, &diff) == 0);
	CHECK(dump_all(&d) == 0);
	CHECK(dump_count(&d, "chain fe-10.96.0.10-tcp-80 ") == 1);
	CHECK(dump_count(&d, "no-endpoints4:") == 0);
	CHECK(backend_elems(&d, &a) == 2 + b_share);
	dump_free(&d);
	ch[0] = (struct frontend_change){ &a, NULL };
	ch[1] = (struct frontend_change){ &marker, NULL };
	diff.n_changes = 2;
	CHECK(nft_datapath_ops.apply(dp, &diff) == 0);
	CHECK(dump_all(&d) == 0);
	CHECK(dump_count(&d, "fe-10.96.0.10-tcp-80") == 0);
	CHECK(dump_count(&d, "service-addrs4:") == 0);
	CHECK(dump_count(&d, "services4:") == 1);
	CHECK(dump_has(&d, b_chain) && dump_has(&d, b_rule));
	dump_free(&d);

	/* A failing batch changes nothing: deleting a frontend that is not there. */
	CHECK(dump_all(&d0) == 0);
	ch[0] = (struct frontend_change){ NULL, &a };
	ch[1] = (struct frontend_change){ &a_refuse, NULL }; /* not in the kernel */
	CHECK(nft_datapath_ops.apply(dp, &diff) == -ENOENT);
	CHECK(dump_all(&d) == 0);
	CHECK(dump_count(&d, "fe-10.96.0.10-tcp-80") == 0);
	dump_free(&d);
	nft_datapath_ops.close(dp);
	return 0;
}

static void test_kernel_changes_touch_only_their_frontend(void **state)
{
	run_in_netns(child_changes);
}

/*
 * A full sync of 15000 frontends (5000 served services, their 5000 markers,
 * 5000 refused frontends), several MB: more than the default socket buffer,
 * still one transaction. A second full sync adopts the existing table.
 */
static int child_big_full_sync(void)
{
	size_t n_served, n = 15000;
	struct frontend *served = make_services(5000, &n_served);
	struct frontend *fes = calloc(n, sizeof(*fes));
	struct frontend_change *ch = calloc(n, sizeof(*ch));
	struct state_diff diff;
	struct dump d = { 0 };
	struct datapath *dp;
	struct timespec t0, t1;
	char why[256];

	memcpy(fes, served, n_served * sizeof(*fes));
	for (size_t i = n_served; i < n; i++) {
		char addr[32];

		snprintf(addr, sizeof(addr), "10.98.%zu.%zu", i / 250, i % 250 + 1);
		fe_init(&fes[i], addr, IPPROTO_TCP, 80, FE_REFUSE, 0, "10.1", 0);
	}
	diff = diff_of(ch, fes, n, true);
	CHECK(nft_datapath_ops.open(&test_cfg, &dp, why, sizeof(why)) == 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	CHECK(nft_datapath_ops.apply(dp, &diff) == 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	fprintf(stderr, "# full sync of %zu frontends: %.2f s\n", n,
		(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
	nft_datapath_ops.close(dp);
	/* A restarted agent: open again and rebuild in one batch over the existing table. */
	CHECK(nft_datapath_ops.open(&test_cfg, &dp, why, sizeof(why)) == 0);
	CHECK(nft_datapath_ops.apply(dp, &diff) == 0);
	CHECK(dump_kernel(NFT_MSG_GETCHAIN, NULL, &d) >= 0);
	CHECK(dump_count(&d, "chain fe-") == 5000);
	dump_free(&d);
	CHECK(dump_kernel(NFT_MSG_GETSETELEM, "no-endpoints4", &d) >= 0);
	CHECK(d.n == 5000);
	dump_free(&d);
	/* One change at this size: one small batch. */
	diff.full = false;
	diff.n_changes = 1;
	ch[0] = (struct frontend_change){ &fes[0], NULL };
	clock_gettime(CLOCK_MONOTONIC, &t0);
	CHECK(nft_datapath_ops.apply(dp, &diff) == 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	fprintf(stderr, "# one change among %zu frontends: %.2f ms\n", n,
		((t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9) * 1e3);
	nft_datapath_ops.close(dp);
	return 0;
}

static void test_kernel_big_full_sync(void **state)
{
	run_in_netns(child_big_full_sync);
}

/*
 * Full sync time against the number of served frontends (each a tcp/80
 * service with 1-3 backends plus its marker). Sizes from
 * SLUICE_NFT_SCALE (e.g. "3000,6000,12000"), default 3000 so the suite
 * stays quick; the numbers in Documentation/nftables-datapath.md.
 */
static int child_full_sync_scale(void)
{
	const char *env = getenv("SLUICE_NFT_SCALE");
	char sizes[128];

	snprintf(sizes, sizeof(sizes), "%s", env && *env ? env : "3000");
	for (char *tok = strtok(sizes, ","); tok; tok = strtok(NULL, ",")) {
		size_t n_served = strtoul(tok, NULL, 10), n;
		struct frontend *fes = make_services(n_served, &n);
		struct frontend_change *ch = calloc(n, sizeof(*ch));
		struct state_diff diff = diff_of(ch, fes, n, true);
		struct timespec t0, t1;
		struct datapath *dp;
		struct dump d = { 0 };
		char why[256];

		CHECK(nft_datapath_ops.open(&test_cfg, &dp, why, sizeof(why)) == 0);
		clock_gettime(CLOCK_MONOTONIC, &t0);
		CHECK(nft_datapath_ops.apply(dp, &diff) == 0);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		fprintf(stderr, "# full sync of %zu served frontends (+%zu markers): %.2f s\n",
			n_served, n - n_served,
			(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
		CHECK(dump_kernel(NFT_MSG_GETCHAIN, NULL, &d) >= 0);
		CHECK(dump_count(&d, "chain fe-") == n_served);
		dump_free(&d);
		nft_datapath_ops.close(dp);
		CHECK(nft_datapath_ops.cleanup(&test_cfg) == 0);
		for (size_t i = 0; i < n; i++)
			frontend_clear(&fes[i]);
		free(fes);
		free(ch);
	}
	return 0;
}

static void test_kernel_full_sync_scale(void **state)
{
	run_in_netns(child_full_sync_scale);
}

/* ---- real packets inside the namespace: DNAT before filter, refusals ---- */

static int sh(const char *cmd)
{
	int rc = system(cmd);

	if (rc)
		fprintf(stderr, "command failed (%d): %s\n", rc, cmd);
	return rc;
}

static int tcp_listen(int family, uint16_t port)
{
	struct sockaddr_in6 a6 = { .sin6_family = AF_INET6, .sin6_port = htons(port) };
	struct sockaddr_in a4 = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd = socket(family, SOCK_STREAM, 0), one = 1;

	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, family == AF_INET ? (struct sockaddr *)&a4 : (struct sockaddr *)&a6,
		 family == AF_INET ? sizeof(a4) : sizeof(a6)) ||
	    listen(fd, 64)) {
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * Connects to addr:port. Returns 0 (connected), -errno (refused...), or
 * -ETIMEDOUT after wait_ms with no answer.
 */
static int try_connect(int type, const char *addr, uint16_t port, int wait_ms)
{
	struct sockaddr_storage ss = { 0 };
	struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
	socklen_t len;
	int fd, err = 0;
	struct pollfd p;

	if (inet_pton(AF_INET, addr, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons(port);
		len = sizeof(*a4);
	} else {
		inet_pton(AF_INET6, addr, &a6->sin6_addr);
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons(port);
		len = sizeof(*a6);
	}
	fd = socket(ss.ss_family, type | SOCK_NONBLOCK, 0);
	if (connect(fd, (struct sockaddr *)&ss, len) && errno != EINPROGRESS) {
		err = -errno;
		goto out;
	}
	if (type == SOCK_DGRAM) {
		char c = 'x';

		/* ICMP port unreachable shows as ECONNREFUSED on a connected UDP socket. */
		send(fd, &c, 1, 0);
	}
	p = (struct pollfd){ .fd = fd, .events = type == SOCK_STREAM ? POLLOUT : POLLIN };
	if (poll(&p, 1, wait_ms) == 0) {
		err = -ETIMEDOUT;
	} else {
		socklen_t elen = sizeof(err);

		getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen);
		err = -err;
	}
out:
	close(fd);
	return err;
}

static int child_traffic(void)
{
	struct frontend fes[8];
	struct frontend_change ch[8];
	struct state_diff diff;
	struct datapath *dp;
	char why[256];
	int l4, l6;

	/*
	 * One namespace is both node and backends: the backend addresses sit on
	 * one end of a veth pair, and routes send the service ranges to it (a
	 * node needs a route before the output hook can translate, design.md
	 * section 5). A packet that escapes translation dies on the other end.
	 */
	if (sh("ip link set lo up && ip link add sl0 type veth peer name sl1 && "
	       "ip link set sl0 up && ip link set sl1 up && "
	       "ip addr add 10.1.0.1/24 dev sl0 && ip addr add 10.1.0.2/24 dev sl0 && "
	       "ip route add 10.96.0.0/16 dev sl0 && "
	       "ip -6 addr add fd00:1::1/64 dev sl0 nodad && "
	       "ip -6 route add fd00:96::/64 dev sl0"))
		return 77;
	l4 = tcp_listen(AF_INET, 8080);
	l6 = tcp_listen(AF_INET6, 8080);
	CHECK(l4 >= 0 && l6 >= 0);
	/* Nothing programmed: the service address is a black hole. */
	CHECK(try_connect(SOCK_STREAM, "10.96.0.10", 80, 200) == -ETIMEDOUT);

	fe_init(&fes[0], "10.96.0.10", IPPROTO_TCP, 80, FE_SERVE, 2, "10.1", 8080);
	fe_marker(&fes[1], "10.96.0.10");
	fe_init(&fes[2], "10.96.0.11", IPPROTO_TCP, 80, FE_REFUSE, 0, "10.1", 0);
	fe_init(&fes[3], "10.96.0.11", IPPROTO_UDP, 53, FE_REFUSE, 0, "10.1", 0);
	fe_marker(&fes[4], "10.96.0.11");
	fe_init(&fes[5], "10.96.0.12", IPPROTO_TCP, 80, FE_DROP, 0, "10.1", 0);
	fe_init(&fes[6], "fd00:96::10", IPPROTO_TCP, 80, FE_SERVE, 1, "fd00:1::", 8080);
	fe_marker(&fes[7], "fd00:96::10");
	diff = diff_of(ch, fes, 8, true);
	CHECK(nft_datapath_ops.open(&test_cfg, &dp, why, sizeof(why)) == 0);
	CHECK(nft_datapath_ops.apply(dp, &diff) == 0);

	/*
	 * 10.96.0.10 is in service-addrs4, which filter-output rejects: the
	 * connection succeeds only if the nat output DNAT (-100) ran before
	 * the filter (0) and took the service address away.
	 */
	for (int i = 0; i < 10; i++)
		CHECK(try_connect(SOCK_STREAM, "10.96.0.10", 80, 2000) == 0);
	CHECK(try_connect(SOCK_STREAM, "fd00:96::10", 80, 2000) == 0);
	/* Unknown port of a service address: rejected with a reset. */
	CHECK(try_connect(SOCK_STREAM, "10.96.0.10", 81, 2000) == -ECONNREFUSED);
	CHECK(try_connect(SOCK_STREAM, "fd00:96::10", 81, 2000) == -ECONNREFUSED);
	/* No endpoints: TCP reset, UDP port unreachable. */
	CHECK(try_connect(SOCK_STREAM, "10.96.0.11", 80, 2000) == -ECONNREFUSED);
	CHECK(try_connect(SOCK_DGRAM, "10.96.0.11", 53, 2000) == -ECONNREFUSED);
	/* Drop: no answer at all. */
	CHECK(try_connect(SOCK_STREAM, "10.96.0.12", 80, 300) == -ETIMEDOUT);
	nft_datapath_ops.close(dp);
	close(l4);
	close(l6);
	return 0;
}

static void test_kernel_traffic_dnat_before_filter(void **state)
{
	run_in_netns(child_traffic);
}

/* ---- kernel: rate limits and session affinity, with real connections ---- */

/* A node namespace whose backends 10.1.0.1-3 sit on a veth, as in child_traffic. */
static int setup_node(void)
{
	return sh("ip link set lo up && ip link add sl0 type veth peer name sl1 && "
		  "ip link set sl0 up && ip link set sl1 up && "
		  "ip addr add 10.1.0.1/24 dev sl0 && ip addr add 10.1.0.2/24 dev sl0 && "
		  "ip route add 10.96.0.0/16 dev sl0");
}

static int tcp_listen_on(const char *addr, uint16_t port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;

	inet_pton(AF_INET, addr, &a.sin_addr);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 1024)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Accepts one pending connection on any of fds; returns its index, -1 if none came. */
static int accept_any(const int *fds, int n, int wait_ms)
{
	struct pollfd p[4];

	for (int i = 0; i < n; i++)
		p[i] = (struct pollfd){ .fd = fds[i], .events = POLLIN };
	if (poll(p, n, wait_ms) <= 0)
		return -1;
	for (int i = 0; i < n; i++) {
		if (p[i].revents & POLLIN) {
			int c = accept(fds[i], NULL, NULL);

			if (c >= 0) {
				close(c);
				return i;
			}
		}
	}
	return -1;
}

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

/* The stats of one Service from read_stats (zeroed, found false if absent). */
static bool stats_of(const char *service, struct service_stats *out, size_t *n_services)
{
	struct service_stats *all;
	size_t n;
	bool found = false;

	memset(out, 0, sizeof(*out));
	if (nft_datapath_ops.read_stats(&test_cfg, &all, &n))
		return false;
	for (size_t i = 0; i < n; i++) {
		if (!strcmp(all[i].service, service)) {
			*out = all[i];
			found = true;
		}
	}
	if (n_services)
		*n_services = n;
	free(all);
	return found;
}

/*
 * "50/s" burst 10 on a Service with two ports: a client connecting as fast
 * as it can, alternating ports, gets 10 + 50 x elapsed connections and
 * refusals for the rest; the counters agree; a new limit keeps the
 * counters; so does a full re-apply by a new agent; the last port's
 * removal deletes the objects.
 */
static int child_rate_limit(void)
{
	struct rate_limit rl = { .count = 50, .period = 1, .burst = 10 };
	struct frontend fes[3], fes2[3];
	struct frontend_change ch[3];
	struct service_stats st, st2;
	struct state_diff diff;
	struct datapath *dp;
	unsigned long ok = 0, refused = 0, other = 0;
	double t0, elapsed, expect;
	int lfd[2];
	size_t n;
	char why[256];

	if (setup_node())
		return 77;
	lfd[0] = tcp_listen_on("10.1.0.1", 8080);
	lfd[1] = tcp_listen_on("10.1.0.1", 8081);
	CHECK(lfd[0] >= 0 && lfd[1] >= 0);
	for (int v = 0; v < 2; v++) {
		struct frontend *f = v ? fes2 : fes;

		fe_init(&f[0], "10.96.0.10", IPPROTO_TCP, 80, FE_SERVE, 1, "10.1", 8080);
		fe_init(&f[1], "10.96.0.10", IPPROTO_TCP, 81, FE_SERVE, 1, "10.1", 8081);
		fe_marker(&f[2], "10.96.0.10");
		for (int i = 0; i < 3; i++) {
			f[i].service = strdup("shop/cart");
			f[i].rate = rl;
		}
	}
	for (int i = 0; i < 3; i++)
		fes2[i].rate = (struct rate_limit){ .count = 100, .period = 1, .burst = 5 };
	diff = diff_of(ch, fes, 3, true);
	CHECK(nft_datapath_ops.open(&test_cfg, &dp, why, sizeof(why)) == 0);
	CHECK(nft_datapath_ops.apply(dp, &diff) == 0);
	CHECK(stats_of("shop/cart", &st, &n) && n == 1);
	CHECK(st.rate.count == 50 && st.rate.period == 1 && st.rate.burst == 10);
	CHECK(st.admitted == 0 && st.limited == 0);

	t0 = now_s();
	for (int i = 0; (elapsed = now_s() - t0) < 3.0; i++) {
		int rc = try_connect(SOCK_STREAM, "10.96.0.10", 80 + (i & 1), 1000);

		if (rc == 0) {
			ok++;
			CHECK(accept_any(&lfd[i & 1], 1, 1000) == 0);
		} else if (rc == -ECONNREFUSED) {
			refused++;
		} else {
			other++;
		}
	}
	expect = rl.burst + rl.count * elapsed;
	fprintf(stderr,
		"# 50/s burst 10, two ports, %.2f s: %lu admitted (expected %.0f), "
		"%lu refused, %lu other\n",
		elapsed, ok, expect, refused, other);
	CHECK(other == 0);
	CHECK(ok > expect * 0.85 && ok < expect * 1.15);
	CHECK(refused > ok); /* the client really went faster than the limit */
	CHECK(stats_of("shop/cart", &st, NULL));
	CHECK(st.admitted == ok && st.limited == refused);

	/* A new limit: the limit object is replaced, the counters go on. */
	ch[0] = (struct frontend_change){ &fes[0], &fes2[0] };
	ch[1] = (struct frontend_change){ &fes[1], &fes2[1] };
	ch[2] = (struct frontend_change){ &fes[2], &fes2[2] };
	diff = (struct state_diff){ .changes = ch, .n_changes = 3 };
	CHECK(nft_datapath_ops.apply(dp, &diff) == 0);
	CHECK(stats_of("shop/cart", &st2, NULL));
	CHECK(st2.rate.count == 100 && st2.rate.burst == 5);
	CHECK(st2.admitted == st.admitted && st2.limited == st.limited);
	/* The new bucket starts full: 5 admitted at once, then refusals. */
	for (int i = 0; i < 5; i++) {
		CHECK(try_connect(SOCK_STREAM, "10.96.0.10", 80, 1000) == 0);
		CHECK(accept_any(lfd, 1, 1000) == 0);
	}
	CHECK(try_connect(SOCK_STREAM, "10.96.0.10", 81, 1000) == -ECONNREFUSED);
	CHECK(stats_of("shop/cart", &st, NULL));
	CHECK(st.admitted == st2.admitted + 5 && st.limited == st2.limited + 1);
	nft_datapath_ops.close(dp);

	/* A restarted agent's full sync keeps the counters. */
	diff = diff_of(ch, fes2, 3, true);
	CHECK(nft_datapath_ops.open(&test_cfg, &dp, why, sizeof(why)) == 0);
	CHECK(nft_datapath_ops.apply(dp, &diff) == 0);
	CHECK(stats_of("shop/cart", &st2, NULL));
	CHECK(st2.admitted == st.admitted && st2.limited == st.limited);

	/* One port goes: the objects stay; the last one goes: they go. */
	ch[0] = (struct frontend_change){ &fes2[0], NULL };
	diff = (struct state_diff){ .changes = ch, .n_changes = 1 };
	CHECK(nft_datapath_ops.apply(dp, &diff) == 0);
	CHECK(stats_of("shop/cart", &st2, NULL));
	ch[0] = (struct frontend_change){ &fes2[1], NULL };
	ch[1] = (struct frontend_change){ &fes2[2], NULL };
	diff.n_changes = 2;
	CHECK(nft_datapath_ops.apply(dp, &diff) == 0);
	CHECK(!stats_of("shop/cart", &st2, &n) && n == 0);
	nft_datapath_ops.close(dp);
	for (int i = 0; i < 3; i++) {
		frontend_clear(&fes[i]);
		frontend_clear(&fes2[i]);
	}
	close(lfd[0]);
	close(lfd[1]);
	return 0;
}

static void test_kernel_rate_limit_traffic_and_counters(void **state)
{
	run_in_netns(child_rate_limit);
}

/* Connects n times; returns the backend index every connection reached, -1 if they differ. */
static int same_backend(const int *lfd, int n_lfd, int n)
{
	int first = -1;

	for (int i = 0; i < n; i++) {
		int got;

		if (try_connect(SOCK_STREAM, "10.96.0.10", 80, 1000))
			return -2;
		got = accept_any(lfd, n_lfd, 1000);
		if (got < 0 || (first >= 0 && got != first))
			return -1;
		first = got;
	}
	return first;
}

/*
 * Session affinity: one client stays on one backend; a new backend keeps
 * the old endpoints' chains and remembered clients; a new timeout
 * re-creates them; clients are forgotten after the timeout.
 */
static int child_affinity(void)
{
	struct frontend a, a3, a_short, plain;
	struct frontend_change ch[1];
	struct state_diff diff = { .changes = ch, .n_changes = 1 };
	struct dump d0 = { 0 }, d = { 0 };
	struct datapath *dp;
	char ep1[256], set[NFT_EP_NAME_MAX];
	int lfd[2], first;
	char why[256];

	if (setup_node())
		return 77;
	lfd[0] = tcp_listen_on("10.1.0.1", 8080);
	lfd[1] = tcp_listen_on("10.1.0.2", 8080);
	CHECK(lfd[0] >= 0 && lfd[1] >= 0);
	fe_init(&a, "10.96.0.10", IPPROTO_TCP, 80, FE_SERVE, 2, "10.1", 8080);
	fe_init(&a3, "10.96.0.10", IPPROTO_TCP, 80, FE_SERVE, 3, "10.1", 8080);
	fe_init(&a_short, "10.96.0.10", IPPROTO_TCP, 80, FE_SERVE, 3, "10.1", 8080);
	fe_init(&plain, "10.96.0.10", IPPROTO_TCP, 80, FE_SERVE, 3, "10.1", 8080);
	a.affinity_timeout = a3.affinity_timeout = 10800;
	a_short.affinity_timeout = 1;
	CHECK(nft_datapath_ops.open(&test_cfg, &dp, why, sizeof(why)) == 0);
	ch[0] = (struct frontend_change){ NULL, &a };
	diff.full = true;
	CHECK(nft_datapath_ops.apply(dp, &diff) == 0);
	diff.full = false;
	CHECK(dump_all(&d0) == 0);
	CHECK(dump_count(&d0, "chain ep-10.96.0.10-tcp-80-10.1.0.") == 2);
	snprintf(ep1, sizeof(ep1), "%s",
		 dump_find(&d0, "chain ep-10.96.0.10-tcp-80-10.1.0.1-8080 "));

	/* Twenty connections, one backend. */
	first = same_backend(lfd, 2, 20);
	CHECK(first >= 0);
	nft_ep_set_name(&a.key, &a.backends[first], set, sizeof(set));
	CHECK(dump_kernel(NFT_MSG_GETSETELEM, set, &d) >= 0 && d.n == 1);
	dump_free(&d);

	/* A third backend: the first two endpoint chains keep their handles, the client stays. */
	ch[0] = (struct frontend_change){ &a, &a3 };
	CHECK(nft_datapath_ops.apply(dp, &diff) == 0);
	CHECK(dump_all(&d) == 0);
	CHECK(dump_has(&d, ep1));
	CHECK(dump_count(&d, "chain ep-10.96.0.10-tcp-80-10.1.0.") == 3);
	dump_free(&d);
	CHECK(dump_kernel(NFT_MSG_GETSETELEM, set, &d) >= 0 && d.n == 1);
	dump_free(&d);
	CHECK(same_backend(lfd, 2, 10) == first);

	/* A new timeout re-creates the sets: clients are forgotten once. */
	ch[0] = (struct frontend_change){ &a3, &a_short };
	CHECK(nft_datapath_ops.apply(dp, &diff) == 0);
	CHECK(dump_kernel(NFT_MSG_GETSETELEM, set, &d) >= 0 && d.n == 0);
	dump_free(&d);
	/* ... the client is remembered again, then let go after the timeout (1 s). */
	/* 10.1.0.3 has no listener: retry until a reachable one is picked */
	for (int i = 0; i < 50; i++) {
		int rc = try_connect(SOCK_STREAM, "10.96.0.10", 80, 300);

		if (rc == 0) {
			first = accept_any(lfd, 2, 1000);
			break;
		}
		sleep(2); /* forget the unreachable pick */
	}
	CHECK(first >= 0);
	nft_ep_set_name(&a_short.key, &a_short.backends[first], set, sizeof(set));
	CHECK(dump_kernel(NFT_MSG_GETSETELEM, set, &d) >= 0 && d.n == 1);
	dump_free(&d);
	sleep(2);
	CHECK(dump_kernel(NFT_MSG_GETSETELEM, set, &d) >= 0 && d.n == 0);
	dump_free(&d);

	/* Affinity off: back to the one DNAT rule; no endpoint chain or set left. */
	ch[0] = (struct frontend_change){ &a_short, &plain };
	CHECK(nft_datapath_ops.apply(dp, &diff) == 0);
	CHECK(dump_all(&d) == 0);
	CHECK(dump_count(&d, "ep-10.96.0.10") == 0 && dump_count(&d, "aff-") == 0);
	CHECK(dump_count(&d, "chain fe-10.96.0.10-tcp-80 ") == 1);
	dump_free(&d);
	/* On again, then removed: everything goes. */
	ch[0] = (struct frontend_change){ &plain, &a3 };
	CHECK(nft_datapath_ops.apply(dp, &diff) == 0);
	ch[0] = (struct frontend_change){ &a3, NULL };
	CHECK(nft_datapath_ops.apply(dp, &diff) == 0);
	CHECK(dump_all(&d) == 0);
	CHECK(dump_count(&d, "fe-10.96.0.10") == 0 && dump_count(&d, "ep-") == 0);
	dump_free(&d);
	dump_free(&d0);
	nft_datapath_ops.close(dp);
	frontend_clear(&a);
	frontend_clear(&a3);
	frontend_clear(&a_short);
	frontend_clear(&plain);
	close(lfd[0]);
	close(lfd[1]);
	return 0;
}

static void test_kernel_affinity(void **state)
{
	run_in_netns(child_affinity);
}

/* ---- kernel: external traffic from a client namespace through the node ---- */

/* The three namespaces of child_external, held open by fd. */
static int ns_node = -1, ns_client = -1, ns_backend = -1;

static int ns_enter(int fd)
{
	return setns(fd, CLONE_NEWNET);
}

/* A new namespace, returned as an fd; the caller stays in the namespace it was in. */
static int ns_new(void)
{
	int fd;

	if (unshare(CLONE_NEWNET))
		return -1;
	fd = open("/proc/self/ns/net", O_RDONLY);
	ns_enter(ns_node);
	return fd;
}

static int sock_in(int ns, int family, int type)
{
	int fd;

	ns_enter(ns);
	fd = socket(family, type | SOCK_NONBLOCK, 0);
	ns_enter(ns_node);
	return fd;
}

static int listen_in(int ns, int family, int type, uint16_t port)
{
	struct sockaddr_in6 a6 = { .sin6_family = AF_INET6, .sin6_port = htons(port) };
	struct sockaddr_in a4 = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd = sock_in(ns, family, type), one = 1;

	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, family == AF_INET ? (struct sockaddr *)&a4 : (struct sockaddr *)&a6,
		 family == AF_INET ? sizeof(a4) : sizeof(a6)) ||
	    (type == SOCK_STREAM && listen(fd, 64))) {
		close(fd);
		return -1;
	}
	return fd;
}

static bool wait_fd(int fd, short events, int wait_ms)
{
	struct pollfd p = { .fd = fd, .events = events };

	return poll(&p, 1, wait_ms) == 1;
}

/*
 * One flow from a socket in namespace ns (the client, or the node itself)
 * to addr:port. The backend's listening socket lfd answers it: on success
 * the source address the backend saw is written to peer and 0 returned;
 * else -ECONNREFUSED, -ETIMEDOUT...
 */
static int flow(int ns, int type, const char *addr, uint16_t port, int lfd, char *peer, int wait_ms)
{
	struct sockaddr_storage ss = { 0 }, from;
	struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
	socklen_t len, flen = sizeof(from);
	int fd, afd = -1, err = 0;

	if (inet_pton(AF_INET, addr, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons(port);
		len = sizeof(*a4);
	} else {
		inet_pton(AF_INET6, addr, &a6->sin6_addr);
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons(port);
		len = sizeof(*a6);
	}
	fd = sock_in(ns, ss.ss_family, type);
	if (connect(fd, (struct sockaddr *)&ss, len) && errno != EINPROGRESS) {
		err = -errno;
		goto out;
	}
	if (type == SOCK_DGRAM) {
		char c = 'x';

		send(fd, &c, 1, 0);
		if (!wait_fd(lfd, POLLIN, wait_ms)) {
			err = -ETIMEDOUT;
			goto out;
		}
		recvfrom(lfd, &c, 1, 0, (struct sockaddr *)&from, &flen);
	} else {
		socklen_t elen = sizeof(err);

		if (!wait_fd(fd, POLLOUT, wait_ms)) {
			err = -ETIMEDOUT;
			goto out;
		}
		getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen);
		err = -err;
		if (err)
			goto out;
		if (!wait_fd(lfd, POLLIN, wait_ms)) {
			err = -ENOTCONN; /* connected, but not to our backend */
			goto out;
		}
		afd = accept(lfd, (struct sockaddr *)&from, &flen);
		if (afd < 0) {
			err = -errno;
			goto out;
		}
	}
	if (from.ss_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)&from)->sin_addr, peer, IP_ADDR_STRLEN);
	else
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&from)->sin6_addr, peer,
			  IP_ADDR_STRLEN);
out:
	if (afd >= 0)
		close(afd);
	close(fd);
	return err;
}

/* Checks that a flow reaches the backend from the expected source address. */
static bool flow_from(int ns, int type, const char *addr, uint16_t port, int lfd,
		      const char *want_src)
{
	char peer[IP_ADDR_STRLEN] = "";
	int rc = flow(ns, type, addr, port, lfd, peer, 2000);

	if (rc || strcmp(peer, want_src)) {
		fprintf(stderr, "flow to %s:%u: rc %d, backend saw '%s', expected '%s'\n", addr,
			port, rc, peer, want_src);
		return false;
	}
	return true;
}

static void fe_external(struct frontend *fe, enum frontend_kind kind, const char *addr,
			uint8_t proto, uint16_t port, enum frontend_action action,
			const char *be_prefix, uint16_t be_port, bool local)
{
	fe_init(fe, addr, proto, port, action, action == FE_SERVE ? 1 : 0, be_prefix, be_port);
	fe->kind = kind;
	fe->preserve_source = local;
}

/*
 *   client ns  c1 192.168.50.2, fd50::2 ---- c0 192.168.50.1, fd50::1   node ns (this one)
 *                                            b0 10.1.0.254, fd01::fe ---- b1 10.1.0.1, fd01::1  backend ns
 * The client routes 203.0.113.0/24 (externalIPs, LB IPs) to the node; the
 * backend's default route is the node, so it can answer a client whose
 * address was kept.
 */
static int setup_external(void)
{
	char cmd[1024];

	ns_node = open("/proc/self/ns/net", O_RDONLY);
	ns_client = ns_new();
	ns_backend = ns_new();
	if (ns_node < 0 || ns_client < 0 || ns_backend < 0)
		return -1;
	snprintf(cmd, sizeof(cmd),
		 "ip link set lo up && sysctl -qw net.ipv4.ip_forward=1 && "
		 "sysctl -qw net.ipv6.conf.all.forwarding=1 && "
		 "ip link add c0 type veth peer name c1 netns /proc/%d/fd/%d && "
		 "ip link add b0 type veth peer name b1 netns /proc/%d/fd/%d && "
		 "ip link set c0 up && ip link set b0 up && "
		 "ip addr add 192.168.50.1/24 dev c0 && ip -6 addr add fd50::1/64 dev c0 nodad && "
		 "ip addr add 10.1.0.254/24 dev b0 && ip -6 addr add fd01::fe/64 dev b0 nodad && "
		 "ip route add 203.0.113.0/24 via 10.1.0.1",
		 getpid(), ns_client, getpid(), ns_backend);
	if (sh(cmd))
		return -1;
	snprintf(cmd, sizeof(cmd),
		 "nsenter --net=/proc/%d/fd/%d sh -c 'ip link set lo up && ip link set c1 up && "
		 "ip addr add 192.168.50.2/24 dev c1 && ip -6 addr add fd50::2/64 dev c1 nodad && "
		 "ip route add 203.0.113.0/24 via 192.168.50.1 && "
		 "ip route add 10.1.0.254/32 via 192.168.50.1'",
		 getpid(), ns_client);
	if (sh(cmd))
		return -1;
	snprintf(cmd, sizeof(cmd),
		 "nsenter --net=/proc/%d/fd/%d sh -c 'ip link set lo up && ip link set b1 up && "
		 "ip addr add 10.1.0.1/24 dev b1 && ip -6 addr add fd01::1/64 dev b1 nodad && "
		 "ip route add default via 10.1.0.254 && ip -6 route add default via fd01::fe'",
		 getpid(), ns_backend);
	return sh(cmd);
}

/*
 * NodePort (TCP, UDP, IPv6), externalIP and LB IPs from a client outside
 * the node: Cluster policy shows the node's address to the backend, Local
 * keeps the client's; source ranges admit and drop; no-endpoint NodePorts
 * are refused or dropped; a local client reaches a NodePort on the node's
 * own address. Then range changes and removal, incrementally.
 */
static int child_external(void)
{
	static const char *const admit[] = { "192.168.50.0/28", "2001:db8::/32" };
	static const char *const others[] = { "198.51.100.0/24" };
	struct frontend fes[10], lb_open, lb_admit2, local0;
	struct frontend_change ch[10];
	struct state_diff diff;
	struct datapath *dp;
	struct dump d = { 0 };
	char why[256];
	int l4, l6, lu;

	if (setup_external())
		return 77;
	l4 = listen_in(ns_backend, AF_INET, SOCK_STREAM, 8080);
	l6 = listen_in(ns_backend, AF_INET6, SOCK_STREAM, 8080);
	lu = listen_in(ns_backend, AF_INET, SOCK_DGRAM, 5353);
	CHECK(l4 >= 0 && l6 >= 0 && lu >= 0);

	fe_external(&fes[0], FE_NODE_PORT, "0.0.0.0", IPPROTO_TCP, 30080, FE_SERVE, "10.1", 8080,
		    false);
	fe_external(&fes[1], FE_NODE_PORT, "0.0.0.0", IPPROTO_TCP, 30081, FE_SERVE, "10.1", 8080,
		    true);
	fes[1].backends[0] = fes[0].backends[0];
	fe_external(&fes[2], FE_NODE_PORT, "0.0.0.0", IPPROTO_UDP, 30053, FE_SERVE, "10.1", 5353,
		    false);
	fes[2].backends[0] = fes[0].backends[0];
	fes[2].backends[0].port = 5353;
	fe_external(&fes[3], FE_NODE_PORT, "::", IPPROTO_TCP, 30080, FE_SERVE, "fd01::", 8080,
		    false);
	fe_external(&fes[4], FE_EXTERNAL_IP, "203.0.113.10", IPPROTO_TCP, 80, FE_SERVE, "10.1",
		    8080, false);
	fes[4].backends[0] = fes[0].backends[0];
	fe_external(&fes[5], FE_LB_INGRESS, "203.0.113.20", IPPROTO_TCP, 80, FE_SERVE, "10.1", 8080,
		    true);
	fes[5].backends[0] = fes[0].backends[0];
	fe_ranges(&fes[5], admit, 2);
	fe_external(&fes[6], FE_LB_INGRESS, "203.0.113.21", IPPROTO_TCP, 80, FE_SERVE, "10.1", 8080,
		    false);
	fes[6].backends[0] = fes[0].backends[0];
	fe_ranges(&fes[6], others, 1);
	fe_external(&fes[7], FE_NODE_PORT, "0.0.0.0", IPPROTO_TCP, 30090, FE_DROP, "10.1", 0, true);
	fe_external(&fes[8], FE_NODE_PORT, "0.0.0.0", IPPROTO_TCP, 30091, FE_REFUSE, "10.1", 0,
		    false);
	fe_external(&fes[9], FE_LB_INGRESS, "203.0.113.22", IPPROTO_TCP, 80, FE_REFUSE, "10.1", 0,
		    false);
	fe_ranges(&fes[9], others, 1);
	diff = diff_of(ch, fes, 10, true);
	CHECK(nft_datapath_ops.open(&test_cfg, &dp, why, sizeof(why)) == 0);
	CHECK(nft_datapath_ops.apply(dp, &diff) == 0);
	if (getenv("SLUICE_DEBUG"))
		sh("nft list table inet sluice >&2");

	CHECK(dump_all(&d) == 0);
	CHECK(dump_count(&d, "chain fe-nodeport4-tcp-30080 ") == 1);
	CHECK(dump_count(&d, "chain fe-nodeport6-tcp-30080 ") == 1);
	CHECK(dump_count(&d, "chain nat-postrouting ") == 1);
	CHECK(dump_count(&d, "chain filter-prerouting ") == 1);
	CHECK(dump_count(&d, "chain firewall-203.0.113.20-tcp-80 ") == 1);
	CHECK(dump_count(&d, "chain firewall-203.0.113.22-tcp-80 ") == 1);
	/* (no-endpoint-nodeports4 lines contain "nodeports4: " too) */
	CHECK(dump_count(&d, "nodeports4: ") == 3 + 2);
	CHECK(dump_count(&d, "no-endpoint-nodeports4: ") == 2);
	CHECK(dump_count(&d, "firewall-ips4: ") == 3);
	CHECK(dump_count(&d, "[ masq ") == 1);
	dump_free(&d);

	/* NodePort, Cluster: the backend sees the node's address. TCP, UDP, IPv6. */
	CHECK(flow_from(ns_client, SOCK_STREAM, "192.168.50.1", 30080, l4, "10.1.0.254"));
	CHECK(flow_from(ns_client, SOCK_DGRAM, "192.168.50.1", 30053, lu, "10.1.0.254"));
	CHECK(flow_from(ns_client, SOCK_STREAM, "fd50::1", 30080, l6, "fd01::fe"));
	/* A NodePort answers on every address of the node. */
	CHECK(flow_from(ns_client, SOCK_STREAM, "10.1.0.254", 30080, l4, "10.1.0.254"));
	/* NodePort, Local: the client's own address. */
	CHECK(flow_from(ns_client, SOCK_STREAM, "192.168.50.1", 30081, l4, "192.168.50.2"));
	/* externalIP (Cluster) and LB IP (Local, client inside the ranges). */
	CHECK(flow_from(ns_client, SOCK_STREAM, "203.0.113.10", 80, l4, "10.1.0.254"));
	CHECK(flow_from(ns_client, SOCK_STREAM, "203.0.113.20", 80, l4, "192.168.50.2"));
	/* Outside the ranges: dropped, even where there are no endpoints. */
	CHECK(flow(ns_client, SOCK_STREAM, "203.0.113.21", 80, l4, why, 300) == -ETIMEDOUT);
	CHECK(flow(ns_client, SOCK_STREAM, "203.0.113.22", 80, l4, why, 300) == -ETIMEDOUT);
	/* NodePorts without endpoints: Local ones elsewhere dropped, others refused. */
	CHECK(flow(ns_client, SOCK_STREAM, "192.168.50.1", 30090, l4, why, 300) == -ETIMEDOUT);
	CHECK(flow(ns_client, SOCK_STREAM, "192.168.50.1", 30091, l4, why, 2000) == -ECONNREFUSED);
	/* A client on the node: nat output, masqueraded to the node's address towards the backend. */
	CHECK(flow_from(ns_node, SOCK_STREAM, "192.168.50.1", 30080, l4, "10.1.0.254"));
	CHECK(flow_from(ns_node, SOCK_STREAM, "203.0.113.10", 80, l4, "10.1.0.254"));
	/* Not on loopback, as kube-proxy. */
	CHECK(flow(ns_node, SOCK_STREAM, "127.0.0.1", 30080, l4, why, 300) == -ECONNREFUSED);

	/* The client leaves the ranges of .20: dropped (new flows); back in: admitted. */
	lb_open = fes[5];
	lb_open.source_ranges = fes[6].source_ranges;
	lb_open.n_source_ranges = 1;
	ch[0] = (struct frontend_change){ &fes[5], &lb_open };
	diff = (struct state_diff){ .changes = ch, .n_changes = 1 };
	CHECK(nft_datapath_ops.apply(dp, &diff) == 0);
	CHECK(flow(ns_client, SOCK_STREAM, "203.0.113.20", 80, l4, why, 300) == -ETIMEDOUT);
	/* No ranges at all on .21: everyone; .20 admitted again. */
	lb_admit2 = fes[6];
	lb_admit2.n_source_ranges = 0;
	ch[0] = (struct frontend_change){ &lb_open, &fes[5] };
	ch[1] = (struct frontend_change){ &fes[6], &lb_admit2 };
	diff.n_changes = 2;
	CHECK(nft_datapath_ops.apply(dp, &diff) == 0);
	CHECK(flow_from(ns_client, SOCK_STREAM, "203.0.113.20", 80, l4, "192.168.50.2"));
	CHECK(flow_from(ns_client, SOCK_STREAM, "203.0.113.21", 80, l4, "10.1.0.254"));
	CHECK(dump_all(&d) == 0);
	CHECK(dump_count(&d, "firewall-203.0.113.21") == 0);
	dump_free(&d);
	/* Cluster -> Local on the NodePort: the chain is rewritten without the mark. */
	local0 = fes[0];
	local0.preserve_source = true;
	ch[0] = (struct frontend_change){ &fes[0], &local0 };
	diff.n_changes = 1;
	CHECK(nft_datapath_ops.apply(dp, &diff) == 0);
	CHECK(flow_from(ns_client, SOCK_STREAM, "192.168.50.1", 30080, l4, "192.168.50.2"));
	/* Everything removed: nothing of it is left. */
	diff.n_changes = 0;
	for (int i = 0; i < 10; i++)
		ch[diff.n_changes++] = (struct frontend_change){ i == 0 ? &local0 :
								 i == 6 ? &lb_admit2 :
									  &fes[i],
								 NULL };
	CHECK(nft_datapath_ops.apply(dp, &diff) == 0);
	CHECK(dump_all(&d) == 0);
	CHECK(dump_count(&d, "fe-") == 0 && dump_count(&d, "firewall-2") == 0 &&
	      dump_count(&d, "allow-") == 0);
	CHECK(dump_count(&d, "nodeports4: ") == 0 && dump_count(&d, "firewall-ips4: ") == 0);
	dump_free(&d);
	nft_datapath_ops.close(dp);
	for (int i = 0; i < 10; i++)
		frontend_clear(&fes[i]);
	close(l4);
	close(l6);
	close(lu);
	return 0;
}

static void test_kernel_external_traffic(void **state)
{
	run_in_netns(child_external);
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
		cmocka_unit_test(test_firewall_ranges),
		cmocka_unit_test(test_firewall_messages),
		cmocka_unit_test(test_dnat_rule_v4),
		cmocka_unit_test(test_dnat_rule_v6),
		cmocka_unit_test(test_map_elements),
		cmocka_unit_test(test_batch_splits_large_sets),
		cmocka_unit_test(test_service_and_endpoint_names),
		cmocka_unit_test(test_limit_kernel_burst),
		cmocka_unit_test(test_service_limit_messages),
		cmocka_unit_test(test_affinity_messages),
		cmocka_unit_test(test_kernel_open_apply_cleanup),
		cmocka_unit_test(test_kernel_add_one_keeps_handles),
		cmocka_unit_test(test_kernel_changes_touch_only_their_frontend),
		cmocka_unit_test(test_kernel_big_full_sync),
		cmocka_unit_test(test_kernel_full_sync_scale),
		cmocka_unit_test(test_kernel_traffic_dnat_before_filter),
		cmocka_unit_test(test_kernel_rate_limit_traffic_and_counters),
		cmocka_unit_test(test_kernel_affinity),
		cmocka_unit_test(test_kernel_external_traffic),
	};

	log_set_level(getenv("SLUICE_DEBUG") ? LOG_DEBUG : LOG_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
