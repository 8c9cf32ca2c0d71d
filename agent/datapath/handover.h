/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Switching datapaths without failing a flow: the datapath found in place
 * keeps serving beside the new one for --handover-seconds, fed the same
 * changes, so that connections it translated a moment ago (conntrack's NAT
 * on nftables, the tc connection table, the socket path's reverse
 * translation) finish on it; then it is removed
 * (Documentation/flows.md, "Switching datapaths").
 */
#ifndef SLUICE_HANDOVER_H
#define SLUICE_HANDOVER_H

#include <stdbool.h>

#include "core/output.h"
#include "datapath/datapath.h"

struct datapath_handover {
	struct datapath_handle old;
	long long end_ms; /* CLOCK_MONOTONIC ms; the handover ends then */
	bool active;
	bool failed; /* an apply to the old datapath failed: end now */
	char output_name[48]; /* "handover from datapath NAME" */
};

/*
 * Before the first apply: opens the datapath in place other than keep, to
 * be fed until seconds have passed. True when a handover runs: add
 * handover_output_ops with ho as ctx after the new datapath. False when
 * there is nothing to hand over from, seconds is 0, or the old datapath
 * cannot be opened here (logged; the caller removes it at once).
 */
bool datapath_handover_begin(struct datapath_handover *ho, const struct datapath_ops *keep,
			     const struct datapath_config *cfg, unsigned int seconds,
			     long long now_ms);
/* Milliseconds until the handover is due to end (0: now), -1 when none runs. */
int datapath_handover_timeout(const struct datapath_handover *ho, long long now_ms);
/* Ends it: releases the old datapath and removes its state (keep serves). */
void datapath_handover_end(struct datapath_handover *ho, const struct datapath_ops *keep,
			   const struct datapath_config *cfg);
/* Stops the agent mid-handover: releases the handle, leaves both in place. */
void datapath_handover_abandon(struct datapath_handover *ho);

/* ctx: a struct datapath_handover. Never fails the flush; a failure ends the handover. */
extern const struct output_ops handover_output_ops;

#endif
