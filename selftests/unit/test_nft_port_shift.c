// SPDX-License-Identifier: Apache-2.0
/*
 * The range nat-postrouting moves the client ports of DNAT'd TCP
 * connections into (nft_port_shift_choose): never overlapping the
 * ephemeral range, one to one when there is room. No root, no kernel.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "datapath/nft/nft_port_shift.h"

static void expect(uint16_t eph_lo, uint16_t eph_hi, uint16_t lo, uint16_t hi)
{
	struct nft_port_shift s;

	assert_true(nft_port_shift_choose(eph_lo, eph_hi, &s));
	assert_int_equal(s.lo, lo);
	assert_int_equal(s.hi, hi);
	/* Disjoint from the ephemeral range. */
	assert_true(s.hi < eph_lo || s.lo > eph_hi);
}

static void test_default_range_goes_below(void **state)
{
	(void)state;
	/* Linux's default 32768-60999: 28232 ports, as many from 1024 up. */
	expect(32768, 60999, 1024, 29255);
}

static void test_low_range_goes_above(void **state)
{
	(void)state;
	expect(1024, 30000, 30001, 58977);
}

static void test_too_wide_uses_the_larger_gap(void **state)
{
	(void)state;
	/* 10000-65000: 8976 ports below, 535 above: the ones below, not one to one. */
	expect(10000, 65000, 1024, 9999);
	expect(2000, 40000, 40001, 65535);
}

static void test_no_room(void **state)
{
	struct nft_port_shift s;

	(void)state;
	/* 1024-65535, as busy nodes set it: nothing outside. */
	assert_false(nft_port_shift_choose(1024, 65535, &s));
	assert_int_equal(s.hi, 0);
	assert_false(nft_port_shift_choose(1500, 65000, &s));
	assert_false(nft_port_shift_choose(40000, 30000, &s));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_default_range_goes_below),
		cmocka_unit_test(test_low_range_goes_above),
		cmocka_unit_test(test_too_wide_uses_the_larger_gap),
		cmocka_unit_test(test_no_room),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
