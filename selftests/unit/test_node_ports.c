// SPDX-License-Identifier: Apache-2.0
/* Unit tests of --nodeport-addresses: parsing, and the addresses it gives for a Node. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "core/node_ports.h"

static struct ip_addr ip(const char *text)
{
	struct ip_addr a;

	assert_true(ip_addr_parse(text, &a));
	return a;
}

static bool matches(const struct node_port_addrs *np, const char *text)
{
	struct ip_addr a = ip(text);

	return node_port_addrs_match(np, &a);
}

static void test_parse_valid(void **state)
{
	struct node_port_spec spec;
	char why[160];

	assert_int_equal(node_port_spec_parse("primary", &spec, why, sizeof(why)), 0);
	assert_true(spec.primary);
	assert_int_equal(spec.n_cidrs, 0);
	node_port_spec_clear(&spec);
	assert_int_equal(node_port_spec_parse("10.0.0.0/8,2001:db8::/32,192.0.2.7/32", &spec, why,
					      sizeof(why)),
			 0);
	assert_false(spec.primary);
	assert_int_equal(spec.n_cidrs, 3);
	assert_int_equal(spec.cidrs[1].addr.family, AF_INET6);
	assert_int_equal(spec.cidrs[2].prefix_len, 32);
	node_port_spec_clear(&spec);
}

static void test_parse_invalid(void **state)
{
	static const char *const bad[] = {
		"",  "foo", "10.0.0.1",		  "10.0.0.0/33", "1.2.3/24",
		"0", ",",   "primary,10.0.0.0/8", "Primary",	 "10.0.0.0/8,x"
	};
	struct node_port_spec spec;
	char why[160];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why[0] = '\0';
		assert_int_equal(node_port_spec_parse(bad[i], &spec, why, sizeof(why)), -EINVAL);
		assert_true(why[0] != '\0');
		assert_null(spec.cidrs);
	}
}

/* primary: the Node's first InternalIP of each family (the decoder puts them first). */
static void test_primary(void **state)
{
	struct ip_addr addrs[3] = { ip("172.18.0.2"), ip("172.18.0.3"), ip("fc00::2") };
	struct node node = { .name = "node-a", .addresses = addrs, .n_addresses = 3 };
	struct node_port_spec spec = { .primary = true };
	struct node_port_addrs np;

	node_port_addrs_compute(&spec, &node, &np);
	assert_false(np.all_v4);
	assert_false(np.all_v6);
	assert_true(matches(&np, "172.18.0.2"));
	assert_false(matches(&np, "172.18.0.3"));
	assert_false(matches(&np, "127.0.0.1"));
	assert_true(matches(&np, "fc00::2"));
	assert_false(matches(&np, "fc00::3"));
	node_port_addrs_clear(&np);

	/* No IPv6 address on the Node: every IPv6 address, as kube-proxy. */
	node.n_addresses = 2;
	node_port_addrs_compute(&spec, &node, &np);
	assert_false(np.all_v4);
	assert_true(np.all_v6);
	assert_true(matches(&np, "fd99::1"));
	node_port_addrs_clear(&np);

	/* No Node object yet: every address. */
	node_port_addrs_compute(&spec, NULL, &np);
	assert_true(np.all_v4 && np.all_v6);
	assert_true(matches(&np, "10.99.1.5"));
	node_port_addrs_clear(&np);
}

/* A CIDR list: per family; a family the list does not name is not restricted. */
static void test_cidrs(void **state)
{
	struct node_port_spec spec;
	struct node_port_addrs np, again;
	char why[160], text[256];

	assert_int_equal(node_port_spec_parse("10.99.1.0/28,10.1.0.0/16", &spec, why, sizeof(why)),
			 0);
	node_port_addrs_compute(&spec, NULL, &np);
	assert_false(np.all_v4);
	assert_true(np.all_v6);
	assert_true(matches(&np, "10.99.1.1"));
	assert_true(matches(&np, "10.99.1.15"));
	assert_false(matches(&np, "10.99.1.16"));
	assert_true(matches(&np, "10.1.200.3"));
	assert_false(matches(&np, "10.2.0.1"));
	assert_true(matches(&np, "fd99:1::1"));
	assert_string_equal(node_port_addrs_text(&np, text, sizeof(text)),
			    "10.99.1.0/28,10.1.0.0/16,all IPv6");
	node_port_addrs_compute(&spec, NULL, &again);
	assert_true(node_port_addrs_equal(&np, &again));
	again.all_v6 = false;
	assert_false(node_port_addrs_equal(&np, &again));
	node_port_addrs_clear(&again);
	node_port_addrs_copy(&again, &np);
	assert_true(node_port_addrs_equal(&np, &again));
	node_port_addrs_clear(&again);
	node_port_addrs_clear(&np);
	node_port_spec_clear(&spec);

	/* The whole space: everything, as 0.0.0.0/0 in kube-proxy. */
	assert_int_equal(node_port_spec_parse("0.0.0.0/0,::/0", &spec, why, sizeof(why)), 0);
	node_port_addrs_compute(&spec, NULL, &np);
	assert_true(matches(&np, "203.0.113.9"));
	assert_true(matches(&np, "2001:db8::9"));
	node_port_addrs_clear(&np);
	node_port_spec_clear(&spec);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_valid),
		cmocka_unit_test(test_parse_invalid),
		cmocka_unit_test(test_primary),
		cmocka_unit_test(test_cidrs),
	};

	return cmocka_run_group_tests_name("node_ports", tests, NULL, NULL);
}
