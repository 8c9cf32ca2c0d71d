/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Adoption at a full apply: which backend sets in the kernel already hold
 * exactly what their frontend wants, found by reading the services and
 * backends maps in batches and comparing in memory, so that a restart
 * reads a few hundred chunks instead of a syscall per backend slot.
 */
#ifndef SLUICE_BPF_ADOPT_H
#define SLUICE_BPF_ADOPT_H

#include <stdbool.h>
#include <linux/types.h>

#include "core/state.h"

struct datapath;
struct bpf_set_checks;

/* Reads both maps against diff's frontends; *empty: the services map has no entry. */
struct bpf_set_checks *bpf_set_checks_read(struct datapath *dp, const struct state_diff *diff,
					   bool *empty);
/*
 * Whether set (named by its frontend's entry with count slots) holds the
 * want_count usable backends its frontend wants: 1 yes, 0 no, -1 not
 * known (a set no entry named when the maps were read).
 */
int bpf_set_check(const struct bpf_set_checks *c, __u32 set, __u32 count, __u32 want_count);
void bpf_set_checks_free(struct bpf_set_checks *c);

#endif
