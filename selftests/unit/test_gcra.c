// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests of the rate-limit arithmetic: the GCRA step the BPF programs
 * run (bpf/lib/gcra.h) with the parameters the agent derives from the
 * sluice.io/rate-limit annotations (agent/ratelimit.h).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <linux/types.h>
#include <cmocka.h>

#include "core/ratelimit.h"
#include "lib/gcra.h"

#define NS_PER_S 1000000000ull
/* A "now" well past boot, as bpf_ktime_get_ns() gives on a machine that has run a while. */
#define T0 (3600ull * NS_PER_S)

/* A bucket as the BPF program keeps it: one word, and the parameters of its limit. */
struct bucket {
	__u64 tat, interval, depth;
};

static struct bucket bucket_of(const char *rate, const char *burst)
{
	struct rate_limit rl;
	struct bucket b = { 0 };
	char err[128];

	assert_int_equal(rate_limit_parse(rate, burst, &rl, err, sizeof(err)), 0);
	b.interval = rate_limit_interval_ns(&rl);
	b.depth = rate_limit_depth_ns(&rl);
	return b;
}

static int admit(struct bucket *b, __u64 now)
{
	__u64 next;

	if (!sl_gcra_admit(now, b->tat, b->interval, b->depth, &next))
		return 0;
	b->tat = next;
	return 1;
}

/* Flows admitted out of n tried at the same instant. */
static unsigned admit_many(struct bucket *b, __u64 now, unsigned n)
{
	unsigned admitted = 0;

	while (n--)
		admitted += admit(b, now);
	return admitted;
}

static void burst_is_admitted_at_once_then_refused(void **state)
{
	struct bucket b = bucket_of("50/s", "10");

	assert_int_equal(admit_many(&b, T0, 10), 10);
	assert_int_equal(admit(&b, T0), 0);
	assert_int_equal(admit_many(&b, T0, 1000), 0);
}

static void refill_is_one_flow_per_interval(void **state)
{
	struct bucket b = bucket_of("50/s", "10");
	__u64 t;
	unsigned admitted = 0;

	assert_int_equal(admit_many(&b, T0, 10), 10);
	/* 20 ms later exactly one more, and not two. */
	assert_int_equal(admit(&b, T0 + 20000000), 1);
	assert_int_equal(admit(&b, T0 + 20000000), 0);
	/* Tried every 100 us for one more second: 50 admitted, the steady rate. */
	for (t = T0 + 20000000 + 100000; t <= T0 + 20000000 + NS_PER_S; t += 100000)
		admitted += admit(&b, t);
	assert_int_equal(admitted, 50);
}

static void refused_flows_do_not_drain_the_bucket(void **state)
{
	struct bucket b = bucket_of("50/s", "10");
	__u64 tat;

	assert_int_equal(admit_many(&b, T0, 10), 10);
	tat = b.tat;
	assert_int_equal(admit_many(&b, T0 + 1000, 100000), 0);
	assert_int_equal(b.tat, tat);
}

static void long_idle_refills_to_burst_and_no_more(void **state)
{
	struct bucket b = bucket_of("50/s", "10");

	assert_int_equal(admit_many(&b, T0, 10), 10);
	/* A day of idleness buys the burst, not a day's worth of flows. */
	assert_int_equal(admit_many(&b, T0 + 86400 * NS_PER_S, 1000), 10);
	/* A never-used bucket (TAT 0) is a full one, however late the first flow. */
	b.tat = 0;
	assert_int_equal(admit_many(&b, T0, 1000), 10);
}

static void burst_defaults_to_the_rate(void **state)
{
	struct rate_limit rl;
	char err[128];

	assert_int_equal(rate_limit_parse("50/s", NULL, &rl, err, sizeof(err)), 0);
	assert_int_equal(rl.count, 50);
	assert_int_equal(rl.period, 1);
	assert_int_equal(rl.burst, 50);
	assert_int_equal(rate_limit_parse("10/m", NULL, &rl, err, sizeof(err)), 0);
	assert_int_equal(rl.count, 10);
	assert_int_equal(rl.period, 60);
	assert_int_equal(rl.burst, 10);
	assert_int_equal(rate_limit_parse("10/m", "3", &rl, err, sizeof(err)), 0);
	assert_int_equal(rl.burst, 3);
}

static void one_per_minute_admits_one_then_waits_a_minute(void **state)
{
	struct bucket b = bucket_of("1/m", NULL);

	assert_int_equal(b.interval, 60 * NS_PER_S);
	assert_int_equal(b.depth, 60 * NS_PER_S);
	assert_int_equal(admit(&b, T0), 1);
	assert_int_equal(admit(&b, T0 + 60 * NS_PER_S - 1), 0);
	assert_int_equal(admit(&b, T0 + 60 * NS_PER_S), 1);
	assert_int_equal(admit(&b, T0 + 60 * NS_PER_S), 0);
}

static void a_billion_per_second_is_one_flow_per_nanosecond(void **state)
{
	struct bucket b = bucket_of("1000000000/s", NULL);

	assert_int_equal(b.interval, 1);
	assert_int_equal(b.depth, NS_PER_S);
	/* A full bucket: the TAT may run one second (a billion flows) ahead, not more. */
	b.tat = T0 + NS_PER_S - 1;
	assert_int_equal(admit(&b, T0), 1);
	assert_int_equal(b.tat, T0 + NS_PER_S);
	assert_int_equal(admit(&b, T0), 0);
	assert_int_equal(admit(&b, T0 + 1), 1);
	/* From empty, a million at one instant all pass. */
	b.tat = 0;
	assert_int_equal(admit_many(&b, T0, 1000000), 1000000);
}

static void the_largest_values_do_not_overflow(void **state)
{
	struct bucket b = bucket_of("1/m", "1000000000");
	/* Far in the future of any boot clock: 2^62 + 2^61 ns is 219 years. */
	__u64 late = (1ull << 62) + (1ull << 61);

	/* 60e9 x 1e9 would wrap 64 bits: the depth saturates at 2^62 instead. */
	assert_int_equal(b.depth, 1ull << 62);
	assert_int_equal(admit(&b, late), 1);
	assert_true(b.tat > late);
	assert_int_equal(b.tat - late, 60 * NS_PER_S);
	/* A TAT at the very edge of the depth refuses rather than wrapping around. */
	b.tat = late + b.depth;
	assert_int_equal(admit(&b, late), 0);
	b = bucket_of("1000000000/m", "1000000000");
	assert_int_equal(b.interval, 60);
	assert_int_equal(b.depth, 60 * NS_PER_S);
}

static void no_limit_has_no_parameters(void **state)
{
	struct rate_limit rl;
	char err[128];

	assert_int_equal(rate_limit_parse(NULL, NULL, &rl, err, sizeof(err)), 0);
	assert_int_equal(rl.count, 0);
	assert_int_equal(rate_limit_interval_ns(&rl), 0);
	assert_int_equal(rate_limit_depth_ns(&rl), 0);
}

/* A bad value: -EINVAL, no limit, and a reason that quotes the value. */
static void expect_rejected(const char *rate, const char *burst, const char *quoted)
{
	struct rate_limit rl = { .count = 7, .period = 1, .burst = 7 };
	char err[160] = "";

	assert_int_equal(rate_limit_parse(rate, burst, &rl, err, sizeof(err)), -EINVAL);
	assert_int_equal(rl.count, 0);
	assert_non_null(strstr(err, quoted));
}

static void rejects_a_word(void **state)
{
	expect_rejected("fast", NULL, "\"fast\"");
}

static void rejects_zero(void **state)
{
	expect_rejected("0/s", NULL, "\"0/s\"");
}

static void rejects_a_negative_rate(void **state)
{
	expect_rejected("-3/s", NULL, "\"-3/s\"");
}

static void rejects_an_overflowing_rate(void **state)
{
	expect_rejected("99999999999/s", NULL, "\"99999999999/s\"");
	expect_rejected("18446744073709551617/s", NULL, "18446744073709551617");
}

static void rejects_hours(void **state)
{
	expect_rejected("10/h", NULL, "\"10/h\"");
}

static void rejects_an_empty_value(void **state)
{
	expect_rejected("", NULL, "\"\"");
	expect_rejected("/s", NULL, "\"/s\"");
}

static void rejects_a_bad_burst(void **state)
{
	expect_rejected("50/s", "0", "\"0\"");
	expect_rejected("50/s", "many", "\"many\"");
	expect_rejected("50/s", "99999999999", "\"99999999999\"");
	expect_rejected(NULL, "10", "\"10\"");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(burst_is_admitted_at_once_then_refused),
		cmocka_unit_test(refill_is_one_flow_per_interval),
		cmocka_unit_test(refused_flows_do_not_drain_the_bucket),
		cmocka_unit_test(long_idle_refills_to_burst_and_no_more),
		cmocka_unit_test(burst_defaults_to_the_rate),
		cmocka_unit_test(one_per_minute_admits_one_then_waits_a_minute),
		cmocka_unit_test(a_billion_per_second_is_one_flow_per_nanosecond),
		cmocka_unit_test(the_largest_values_do_not_overflow),
		cmocka_unit_test(no_limit_has_no_parameters),
		cmocka_unit_test(rejects_a_word),
		cmocka_unit_test(rejects_zero),
		cmocka_unit_test(rejects_a_negative_rate),
		cmocka_unit_test(rejects_an_overflowing_rate),
		cmocka_unit_test(rejects_hours),
		cmocka_unit_test(rejects_an_empty_value),
		cmocka_unit_test(rejects_a_bad_burst),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
