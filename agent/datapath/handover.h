/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Switching datapaths without failing a flow: once the new datapath
 * serves, the one found in place drains for --handover-seconds (it keeps
 * only what the flows it translated need to finish: nftables' NAT hooks
 * in table inet sluice-drain), then it is removed. A datapath with
 * nothing to drain (BPF: its cleanup orders itself) goes at once
 * (Documentation/flows.md, "Switching datapaths").
 */
#ifndef SLUICE_HANDOVER_H
#define SLUICE_HANDOVER_H

#include <stdbool.h>

#include "datapath/datapath.h"

struct datapath_handover {
	const struct datapath_ops *old; /* draining; NULL when none */
	long long end_ms; /* CLOCK_MONOTONIC ms; the drain ends then */
};

/*
 * After the first apply of keep: drains the datapath in place other than
 * keep for seconds, or removes it at once (seconds 0, or nothing to
 * drain). True while a drain runs.
 */
bool datapath_handover_begin(struct datapath_handover *ho, const struct datapath_ops *keep,
			     const struct datapath_config *cfg, unsigned int seconds,
			     long long now_ms);
/* Milliseconds until the drain is due to end (0: now), -1 when none runs. */
int datapath_handover_timeout(const struct datapath_handover *ho, long long now_ms);
/* Ends it: removes the drained state (keep serves). */
void datapath_handover_end(struct datapath_handover *ho, const struct datapath_ops *keep,
			   const struct datapath_config *cfg);

#endif
