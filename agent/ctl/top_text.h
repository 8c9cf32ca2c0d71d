/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sluicectl top's table: per-Service rates between two samples of the
 * kernel's flow counters, busiest first. Pure, for unit tests.
 */
#ifndef SLUICE_CTL_TOP_TEXT_H
#define SLUICE_CTL_TOP_TEXT_H

#include <stddef.h>
#include <stdio.h>

#include "ctl/flows.h"

struct top_sample {
	struct flow_counters *v; /* sorted by service */
	size_t n;
	double t; /* seconds, any clock, the same for both samples */
};

/*
 * Prints the header and at most n_rows Services, sorted by new flows per
 * second (every outcome), then by name; columns for the outcomes in have.
 * A Service missing from prev counts from zero; a counter that went back
 * (a Service id reused) counts as no flows.
 */
void top_render(FILE *out, const struct top_sample *prev, const struct top_sample *cur,
		unsigned int have, size_t n_rows);

#endif
