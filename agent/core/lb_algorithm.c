// SPDX-License-Identifier: Apache-2.0
/* The sluice.io/lb-algorithm values and the process-wide default (lb_algorithm.h). */
#include <errno.h>
#include <string.h>

#include "core/lb_algorithm.h"

int lb_algorithm_parse(const char *s, enum lb_algorithm *out)
{
	if (s && !strcmp(s, "random")) {
		*out = LB_ALGO_RANDOM;
		return 0;
	}
	if (s && !strcmp(s, "maglev")) {
		*out = LB_ALGO_MAGLEV;
		return 0;
	}
	return -EINVAL;
}

const char *lb_algorithm_name(enum lb_algorithm algo)
{
	return algo == LB_ALGO_MAGLEV ? "maglev" : "random";
}

static enum lb_algorithm default_algo = LB_ALGO_RANDOM;

void lb_algorithm_set_default(enum lb_algorithm algo)
{
	default_algo = algo == LB_ALGO_MAGLEV ? LB_ALGO_MAGLEV : LB_ALGO_RANDOM;
}

enum lb_algorithm lb_algorithm_default(void)
{
	return default_algo;
}

bool lb_algorithm_is_maglev(enum lb_algorithm algo)
{
	return algo == LB_ALGO_MAGLEV ||
	       (algo == LB_ALGO_DEFAULT && default_algo == LB_ALGO_MAGLEV);
}
