/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Per-Service flow counters, as the kernel holds them, for sluicectl top
 * and explain: one small interface over whatever the datapath counts
 * (struct flow_counters, datapath.h): read_flow_counters where the
 * datapath has it, else read_stats (admitted and rate-limited new flows).
 */
#ifndef SLUICE_CTL_FLOWS_H
#define SLUICE_CTL_FLOWS_H

#include <stddef.h>
#include <stdint.h>

#include "datapath/datapath.h"

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
