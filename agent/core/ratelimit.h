/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The sluice.io/rate-limit and sluice.io/rate-limit-burst annotations:
 * parsing and validation, and the GCRA parameters the datapaths use.
 */
#ifndef SLUICE_RATELIMIT_H
#define SLUICE_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

/*
 * New flows one node admits to one Service (annotation sluice.io/rate-limit):
 * a bucket of `burst` flows refilled with `count` flows every `period`
 * seconds. count 0: no limit.
 */
struct rate_limit {
	uint32_t count;
	uint32_t period; /* seconds: 1 or 60 */
	uint32_t burst;
};

/* Largest accepted values: beyond them a node could not tell flows apart anyway. */
#define RATE_LIMIT_MAX_COUNT 1000000000u
#define RATE_LIMIT_MAX_BURST 1000000000u

/*
 * Parses "<N>/s" or "<N>/m" and an optional burst "<B>" (default N).
 * rate NULL: no limit (out->count 0), returns 0. On a bad value returns
 * -EINVAL with the reason in err and out->count 0.
 */
int rate_limit_parse(const char *rate, const char *burst, struct rate_limit *out, char *err,
		     size_t err_len);
/* Nanoseconds between two admitted flows at the steady rate (at least 1). */
uint64_t rate_limit_interval_ns(const struct rate_limit *rl);
/* How far ahead of now the bucket's TAT may run: burst x interval. */
uint64_t rate_limit_depth_ns(const struct rate_limit *rl);
/* "50/s", "10/m", or "none": rl in buf (len bytes), which is returned. */
const char *rate_limit_format(const struct rate_limit *rl, char *buf, size_t len);

#endif
