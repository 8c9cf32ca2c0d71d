/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Kernel features the BPF datapath uses that are newer than Debian 12's
 * 6.1, probed once at open, each logged in one line and written to the
 * pinned features map (sluicectl features reads it back without open).
 */
#ifndef SLUICE_BPF_FEATURES_H
#define SLUICE_BPF_FEATURES_H

#include <stddef.h>

#include "datapath/datapath.h"

struct datapath;

/* Probes (after the sock destroyer is open), logs, and writes maps/features. */
void bpf_features_probe(struct datapath *dp);
/* The features the agent in place wrote at its open (bpf_datapath_ops.read_features). */
int bpf_read_features(const struct datapath_config *cfg, struct datapath_feature *out, size_t max,
		      size_t *n);

#endif
