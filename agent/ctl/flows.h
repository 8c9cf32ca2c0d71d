/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Per-Service flow counters, as the kernel holds them, for sluicectl top
 * and explain: one small interface over whatever the datapath counts.
 * Today that is read_stats (admitted and rate-limited new flows); counters
 * of refusals by reason plug in here without touching top or explain.
 */
#ifndef SLUICE_CTL_FLOWS_H
#define SLUICE_CTL_FLOWS_H

#include <stddef.h>
#include <stdint.h>

#include "datapath/datapath.h"

enum flow_outcome {
	FLOW_ADMITTED,
	FLOW_RATE_LIMITED,
	FLOW_NO_ENDPOINTS,
	FLOW_POLICY_DROP,
	FLOW_SOURCE_RANGE,
	FLOW_OUTCOMES,
};

struct flow_counters {
	char service[256]; /* "namespace/name" */
	struct rate_limit rate; /* count 0: none */
	uint64_t n[FLOW_OUTCOMES]; /* since the Service appeared */
};

/* "admitted", "rate_limited", ...: the metric's outcome label (operations.md). */
const char *flow_outcome_name(enum flow_outcome o);
/*
 * Reads every Service's counters; *out (malloc'd) sorted by service, *have
 * the outcomes this datapath counts (bit 1 << FLOW_*). Returns 0 or -errno.
 */
int flow_counters_read(const struct datapath_ops *ops, const struct datapath_config *cfg,
		       struct flow_counters **out, size_t *n, unsigned int *have);
/* The entry for service in a sorted array, or NULL. */
const struct flow_counters *flow_counters_find(const struct flow_counters *v, size_t n,
					       const char *service);

#endif
