/* SPDX-License-Identifier: Apache-2.0 */
/* sluicectl services on the BPF datapath: the frontends as the pins hold them. */
#ifndef SLUICE_BPF_SHOW_H
#define SLUICE_BPF_SHOW_H

#include <stdio.h>

#include "datapath/datapath.h"

/*
 * Prints every frontend in the pinned services map (address:port/proto,
 * action, Service, session affinity, rate limit), each followed by its
 * backends, to out. Returns 0, or 1 (an exit status) after printing the
 * reason to stderr.
 */
int bpf_print_frontends(const struct datapath_config *cfg, FILE *out);

#endif
