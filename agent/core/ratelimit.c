// SPDX-License-Identifier: Apache-2.0
/*
 * The sluice.io/rate-limit and sluice.io/rate-limit-burst annotations:
 * parsing and validation, and the GCRA parameters the datapaths use.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "core/ratelimit.h"

/* Strict decimal: digits only, no sign, no spaces, no overflow past max. */
static bool parse_count(const char *s, size_t len, uint32_t max, uint32_t *out)
{
	uint64_t v = 0;

	if (!len)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
		if (v > max)
			return false;
	}
	*out = (uint32_t)v;
	return true;
}

int rate_limit_parse(const char *rate, const char *burst, struct rate_limit *out, char *err,
		     size_t err_len)
{
	const char *slash;
	struct rate_limit rl = { 0 };

	memset(out, 0, sizeof(*out));
	if (!rate) {
		if (burst) {
			snprintf(err, err_len,
				 "sluice.io/rate-limit-burst \"%.40s\" without "
				 "sluice.io/rate-limit",
				 burst);
			return -EINVAL;
		}
		return 0;
	}
	slash = strchr(rate, '/');
	if (!slash || strlen(slash) != 2 || (slash[1] != 's' && slash[1] != 'm') ||
	    !parse_count(rate, slash - rate, RATE_LIMIT_MAX_COUNT, &rl.count) || !rl.count) {
		snprintf(err, err_len,
			 "invalid sluice.io/rate-limit \"%.40s\" (want N/s or N/m, "
			 "N from 1 to %u)",
			 rate, RATE_LIMIT_MAX_COUNT);
		return -EINVAL;
	}
	rl.period = slash[1] == 's' ? 1 : 60;
	rl.burst = rl.count;
	if (burst &&
	    (!parse_count(burst, strlen(burst), RATE_LIMIT_MAX_BURST, &rl.burst) || !rl.burst)) {
		snprintf(err, err_len,
			 "invalid sluice.io/rate-limit-burst \"%.40s\" (want a "
			 "whole number from 1 to %u)",
			 burst, RATE_LIMIT_MAX_BURST);
		return -EINVAL;
	}
	*out = rl;
	return 0;
}

uint64_t rate_limit_interval_ns(const struct rate_limit *rl)
{
	uint64_t interval;

	if (!rl->count)
		return 0;
	interval = (uint64_t)rl->period * 1000000000ull / rl->count;
	return interval ? interval : 1;
}

uint64_t rate_limit_depth_ns(const struct rate_limit *rl)
{
	/*
	 * 60e9 x 1e9 would overflow 64 bits: saturate at 2^62 ns (146 years),
	 * which also keeps now + depth + interval far from wrapping.
	 */
	const uint64_t cap = 1ull << 62;
	uint64_t interval = rate_limit_interval_ns(rl);

	if (interval && rl->burst > cap / interval)
		return cap;
	return interval * rl->burst;
}

const char *rate_limit_format(const struct rate_limit *rl, char *buf, size_t len)
{
	if (!rl->count)
		snprintf(buf, len, "none");
	else
		snprintf(buf, len, "%u/%s", rl->count, rl->period == 60 ? "m" : "s");
	return buf;
}
