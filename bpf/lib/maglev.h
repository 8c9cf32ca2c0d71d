/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Maglev selection for the packet paths: a new flow of a frontend with
 * SL_SVC_F_MAGLEV takes the slot that the table of the frontend's current
 * backend set names at the flow's hash, so every node (and every agent
 * restart) sends a flow to the same backend. The agent writes a set's
 * table (agent/datapath/bpf/bpf_maglev.c) before the service entry points
 * at the set, and deletes it with the set's slots: a lookup sees a whole
 * table or none, and with none the pick is random, as before.
 */
#ifndef SLUICE_BPF_MAGLEV_H
#define SLUICE_BPF_MAGLEV_H

#include <bpf/bpf_helpers.h>

#include "shared.h"
#include "maps.h"
#include "select.h"
#include "flow_hash.h"

/*
 * Keys for the lookups below, in map memory: the new-flow path's stack is
 * at the 512 bytes that Linux 6.1 allows for the calls together, and a key
 * on it (or a call with its own frame) would not fit.
 */
const volatile __u32 sl_maglev_zero = 0;

struct sl_maglev_scratch {
	__u32 index;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct sl_maglev_scratch);
	__uint(max_entries, 1);
} maglev_scratch SEC(".maps");

/*
 * The slot the table of svc's set names for the flow of a client
 * (saddr, sport) to the frontend fe; false without a table. svc must
 * point into map memory (its set is the outer key).
 */
static __always_inline bool sl_maglev_slot(const struct sl_service *svc,
					   const struct sl_service_key *fe, const __u8 *saddr,
					   __u16 sport, __u32 *slot)
{
	struct sl_maglev_scratch *scratch;
	__u32 *size, *entry;
	void *table;

	table = bpf_map_lookup_elem(&maglev, &svc->backend_set);
	if (!table)
		return false;
	size = bpf_map_lookup_elem(table, (const void *)&sl_maglev_zero);
	scratch = bpf_map_lookup_elem(&maglev_scratch, (const void *)&sl_maglev_zero);
	if (!size || !*size || !scratch)
		return false;
	scratch->index =
		sl_flow_hash(saddr, fe->addr, sport, fe->port, fe->proto, fe->family) % *size + 1;
	entry = bpf_map_lookup_elem(table, &scratch->index);
	if (!entry)
		return false;
	*slot = *entry;
	return true;
}

/*
 * A new flow's backend: by the table for a Maglev frontend, else (or when
 * the table is missing or names a slot that does not hold a usable
 * backend) a random slot. The flow is hashed as the client and the
 * frontend's key: a NodePort's key has the unspecified address, so a
 * client's flow gets one backend whichever node's address it reached.
 */
static __always_inline struct sl_backend *sl_pick_flow(const struct sl_service *svc,
						       const struct sl_service_key *fe,
						       const __u8 saddr[16], __u16 sport,
						       __u32 *slot)
{
	struct sl_backend *be;

	if ((svc->flags & SL_SVC_F_MAGLEV) && sl_maglev_slot(svc, fe, saddr, sport, slot)) {
		be = sl_slot(svc, *slot, fe->family);
		if (be)
			return be;
	}
	return sl_pick(svc, fe->family, slot);
}

#endif
