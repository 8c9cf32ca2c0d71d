/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Direct server return on the BPF datapath, the agent's half: the
 * dsr_nodes map (backend address -> its node's address) that the tc path
 * reads for the new flows of DSR frontends (bpf/lib/dsr.h).
 */
#ifndef SLUICE_BPF_DSR_H
#define SLUICE_BPF_DSR_H

#include "core/state.h"

struct datapath;

/*
 * Writes the backends' nodes of the DSR frontends the diff adds or keeps,
 * then forgets those of the frontends it removes or replaces (an address
 * several frontends share stays while one uses it). After a full diff,
 * entries nobody asked for are deleted. Without the tc path: nothing.
 */
void bpf_dsr_apply(struct datapath *dp, const struct state_diff *diff);
void bpf_dsr_free(struct datapath *dp);

#endif
