/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Maglev tables of the BPF datapath (maps/maglev, shared.h): one per
 * backend set of a frontend with sluice.io/lb-algorithm maglev, written
 * before the service entry points at the set and deleted with its slots.
 */
#ifndef SLUICE_BPF_MAGLEV_H
#define SLUICE_BPF_MAGLEV_H

#include <stdbool.h>
#include <linux/types.h>

#include "core/state.h"

struct datapath;
struct bpf_map;

/* Whether fe's backend set gets a table: Maglev, served, a kind the tc path serves. */
bool bpf_maglev_wanted(const struct frontend *fe);
/*
 * Makes set's table the one fe's usable backends (slot order) give: a new
 * inner map, built whole, then put in one update. kept: the set existed
 * already, and a table of the right size under it is kept. -errno on
 * failure (*full names the outer map when it has no room).
 */
int bpf_maglev_write(struct datapath *dp, const struct frontend *fe, __u32 set, bool kept,
		     const struct bpf_map **full);
/* True if set holds the table fe needs (or fe needs none and set has none). */
bool bpf_maglev_current(struct datapath *dp, const struct frontend *fe, __u32 set);
void bpf_maglev_delete(struct datapath *dp, __u32 set);
/* The table size of set's table from the pinned map fd (0: none); for sluicectl. */
__u32 bpf_maglev_size(int outer_fd, __u32 set);

#endif
