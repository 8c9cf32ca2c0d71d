/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sluicectl explain in words: a Service's status document (what the agent
 * published) and its kernel counters in, sentences out. Pure: no I/O but
 * the FILE written to, so that unit tests hold the wording.
 */
#ifndef SLUICE_CTL_EXPLAIN_TEXT_H
#define SLUICE_CTL_EXPLAIN_TEXT_H

#include <stdbool.h>
#include <stdio.h>

#include <jansson.h>

#include "ctl/flows.h"

struct explain_context {
	const char *in_kernel; /* the datapath whose state is in the kernel; NULL: none found */
	const char *agent_datapath; /* status.json; NULL: no status */
	const char *requested, *fallback; /* --datapath, and why auto fell back ("" none) */
	bool agent_running;
	long long agent_pid;
	const struct flow_counters *counters; /* this Service's; NULL: none in the kernel */
	unsigned int have; /* outcomes the datapath counts (1 << FLOW_*) */
	double now;
};

void explain_render(FILE *out, json_t *svc, const struct explain_context *x);
/* One endpoint's reason in words (why: the published code). */
const char *explain_endpoint_text(json_t *fe, json_t *ep, const char *node, const char *zone,
				  char *buf, size_t len);
/* The topology mode and the hint that decided it, in words. */
const char *explain_topology_text(json_t *fe, const char *node, const char *zone, char *buf,
				  size_t len);

#endif
