// SPDX-License-Identifier: Apache-2.0
/*
 * Which conntrack entries an nftables apply deletes (nft_ct_stale_pairs):
 * UDP and SCTP frontends that lose a backend, are removed, or turn to
 * refuse/drop; TCP only when asked, never a backend that stays. No root, no kernel.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <cmocka.h>

#include "datapath/nft/nft_conntrack.h"

static struct backend be(const char *addr, uint16_t port)
{
	struct backend b = { .port = port };

	assert_true(ip_addr_parse(addr, &b.addr));
	return b;
}

static struct frontend fe(const char *addr, uint8_t proto, uint16_t port, struct backend *bes,
			  size_t n)
{
	struct frontend f = { .key = { .proto = proto, .port = port },
			      .action = n ? FE_SERVE : FE_REFUSE,
			      .backends = bes,
			      .n_backends = n };

	assert_true(ip_addr_parse(addr, &f.key.addr));
	return f;
}

static void test_removed_udp_backend(void **state)
{
	struct backend two[] = { be("10.244.1.1", 5353), be("10.244.1.2", 5353) };
	struct backend one[] = { be("10.244.1.2", 5353) };
	struct frontend old = fe("10.96.0.20", IPPROTO_UDP, 53, two, 2);
	struct frontend new = fe("10.96.0.20", IPPROTO_UDP, 53, one, 1);
	struct frontend_change ch = { .old = &old, .new = &new };
	struct state_diff diff = { .changes = &ch, .n_changes = 1 };
	struct nft_ct_stale *p;

	assert_int_equal(nft_ct_stale_pairs(&diff, false, &p), 1);
	assert_true(ip_addr_equal(&p[0].be.addr, &two[0].addr));
	assert_int_equal(p[0].be.port, 5353);
	assert_int_equal(p[0].fe.port, 53);
	free(p);
}

static void test_tcp_never(void **state)
{
	struct backend two[] = { be("10.244.1.1", 8080), be("10.244.1.2", 8080) };
	struct frontend old = fe("10.96.0.20", IPPROTO_TCP, 80, two, 2);
	struct frontend_change ch = { .old = &old, .new = NULL };
	struct state_diff diff = { .changes = &ch, .n_changes = 1 };
	struct nft_ct_stale *p;

	assert_int_equal(nft_ct_stale_pairs(&diff, false, &p), 0);
	free(p);
}

/* --removed-backend-tcp=terminate: TCP pairs too, and only the backend that left. */
static void test_tcp_when_terminating(void **state)
{
	struct backend two[] = { be("10.244.1.1", 8080), be("10.244.1.2", 8080) };
	struct backend one[] = { be("10.244.1.2", 8080) };
	struct frontend old = fe("10.96.0.20", IPPROTO_TCP, 80, two, 2);
	struct frontend new = fe("10.96.0.20", IPPROTO_TCP, 80, one, 1);
	struct frontend_change ch = { .old = &old, .new = &new };
	struct state_diff diff = { .changes = &ch, .n_changes = 1 };
	struct nft_ct_stale *p;

	assert_int_equal(nft_ct_stale_pairs(&diff, true, &p), 1);
	assert_int_equal(p[0].fe.proto, IPPROTO_TCP);
	assert_int_equal(p[0].be.addr.bytes[3], 1);
	free(p);
}

static void test_removed_refused_and_sctp(void **state)
{
	struct backend two[] = { be("fd00:244::1", 5353), be("fd00:244::2", 5353) };
	struct frontend udp_old = fe("fd00:96::20", IPPROTO_UDP, 53, two, 2);
	struct frontend udp_new = fe("fd00:96::20", IPPROTO_UDP, 53, NULL, 0); /* refused */
	struct frontend sctp_old = fe("::", IPPROTO_SCTP, 30090, two, 2); /* a NodePort */
	struct frontend_change ch[] = { { .old = &udp_old, .new = &udp_new },
					{ .old = &sctp_old, .new = NULL },
					{ .old = NULL, .new = &udp_old } };
	struct state_diff diff = { .changes = ch, .n_changes = 3 };
	struct nft_ct_stale *p;

	assert_int_equal(nft_ct_stale_pairs(&diff, false, &p), 4);
	/* Sorted by protocol, then backend: one dump per backend and protocol. */
	assert_int_equal(p[0].fe.proto, IPPROTO_UDP);
	assert_int_equal(p[1].fe.proto, IPPROTO_UDP);
	assert_int_equal(p[2].fe.proto, IPPROTO_SCTP);
	assert_true(ip_addr_cmp(&p[2].be.addr, &p[3].be.addr) < 0);
	free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_removed_udp_backend),
		cmocka_unit_test(test_tcp_never),
		cmocka_unit_test(test_tcp_when_terminating),
		cmocka_unit_test(test_removed_refused_and_sctp),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
