/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Backend selection, shared by the socket and tc programs: a random slot of
 * the frontend's current backend set, or the client's remembered backend
 * (session affinity ClientIP), never a backend that left the set.
 */
#ifndef SLUICE_BPF_SELECT_H
#define SLUICE_BPF_SELECT_H

#include <bpf/bpf_helpers.h>

#include "shared.h"
#include "maps.h"
#include "helpers.h"

/*
 * An affinity entry's last use is refreshed at most once a second (or once
 * per timeout/8 when that is shorter): contended writes to one entry are
 * not free, and a client is let go after between timeout - that step and
 * timeout of idleness.
 */
#define SL_AFFINITY_REFRESH_NS 1000000000ull
#define SL_NS_PER_S 1000000000ull

/*
 * Reads the services entry of key into out. A hash map recycles the
 * element an update replaces at once, so a value read through the pointer
 * of a lookup can turn into another frontend's mid-use (seen: a connect to
 * port 80 sent to a port-53 backend while the agent rewrote entries). So:
 * copy, look up again, and if the key now maps to another element, ours
 * was replaced: copy the current one.
 */
static __always_inline bool sl_service_read(const struct sl_service_key *key,
					    struct sl_service *out)
{
	struct sl_service *first, *again;

	first = bpf_map_lookup_elem(&services, key);
	if (!first)
		return false;
	__builtin_memcpy(out, first, sizeof(*out));
	again = bpf_map_lookup_elem(&services, key);
	if (again == first)
		return true;
	if (!again)
		return false;
	__builtin_memcpy(out, again, sizeof(*out));
	return true;
}

/* addr's SL_NODE_ADDR_* if it is one of this node's addresses (node_addrs), else 0. */
static __always_inline __u32 sl_node_addr_flags(const __u8 addr[16], __u8 family)
{
	struct sl_node_addr_key node __attribute__((aligned(8)));
	__u32 *flags;

	__builtin_memset(&node, 0, sizeof(node));
	__builtin_memcpy(node.addr, addr, sizeof(node.addr));
	node.family = family;
	flags = bpf_map_lookup_elem(&node_addrs, &node);
	return flags ? *flags : 0;
}

static __always_inline bool sl_is_node_addr(const __u8 addr[16], __u8 family)
{
	return sl_node_addr_flags(addr, family) != 0;
}

/*
 * A NodePort: key's address is one of this node's that NodePorts answer on
 * and a NodePort entry {unspecified address, port, proto} exists. key
 * itself is not changed.
 */
static __always_inline bool sl_node_port_read(const struct sl_service_key *key,
					      struct sl_service *out)
{
	struct sl_service_key any __attribute__((aligned(8)));

	if (!(sl_node_addr_flags(key->addr, key->family) & SL_NODE_ADDR_NODE_PORT))
		return false;
	__builtin_memset(&any, 0, sizeof(any));
	any.port = key->port;
	any.proto = key->proto;
	any.family = key->family;
	/* Only NodePort entries live under the unspecified address. */
	return sl_service_read(&any, out) && (out->flags & SL_SVC_KIND_MASK) == SL_KIND_NODE_PORT;
}

/* The backend in slot of the service's current set, if it is usable for family. */
static __always_inline struct sl_backend *sl_slot(const struct sl_service *svc, __u32 slot,
						  __u8 family)
{
	struct sl_backend_key slot_key;
	struct sl_backend *be;

	if (slot >= svc->count)
		return NULL;
	slot_key.backend_set = svc->backend_set;
	slot_key.slot = slot;
	be = bpf_map_lookup_elem(&backends, &slot_key);
	if (!be || be->family != family)
		return NULL;
	return be;
}

/* The remembered backend if its slot still holds it: never a removed backend. */
static __always_inline struct sl_backend *sl_slot_holds(const struct sl_service *svc, __u32 slot,
							__u8 family, const __u8 addr[16],
							__u16 port)
{
	struct sl_backend *be = sl_slot(svc, slot, family);

	if (be && be->port == port && sl_addr_equal(be->addr, addr))
		return be;
	return NULL;
}

/* A random slot of the current set. */
static __always_inline struct sl_backend *sl_pick(const struct sl_service *svc, __u8 family,
						  __u32 *slot)
{
	*slot = bpf_get_prandom_u32() % svc->count;
	return sl_slot(svc, *slot, family);
}

/*
 * Session affinity ClientIP, for a key whose frontend and client the caller
 * filled: the client's remembered backend while it is still in the set and
 * was used less than affinity_timeout ago; else a new pick, remembered.
 */
static __always_inline struct sl_backend *sl_pick_affine_key(struct sl_affinity_key *key,
							     __u8 family,
							     const struct sl_service *svc,
							     __u32 *slot)
{
	struct sl_affinity value __attribute__((aligned(8)));
	struct sl_affinity *known;
	struct sl_backend *be;
	__u64 now = bpf_ktime_get_ns();
	__u64 timeout = (__u64)svc->affinity_timeout * SL_NS_PER_S;
	__u64 refresh = timeout >> 3;

	if (refresh > SL_AFFINITY_REFRESH_NS)
		refresh = SL_AFFINITY_REFRESH_NS;
	known = bpf_map_lookup_elem(&affinity, key);
	/* Another CPU may have stamped a few ns "after" our now: that is idle 0. */
	if (known && (now <= known->last_used_ns || now - known->last_used_ns < timeout)) {
		be = sl_slot_holds(svc, known->slot, family, known->addr, known->port);
		if (be) {
			/* One word, in place, coarsely: no LRU update. */
			if (now > known->last_used_ns && now - known->last_used_ns > refresh)
				known->last_used_ns = now;
			*slot = known->slot;
			return be;
		}
	}
	be = sl_pick(svc, family, slot);
	if (!be)
		return NULL;
	__builtin_memset(&value, 0, sizeof(value));
	__builtin_memcpy(value.addr, be->addr, sizeof(value.addr));
	value.port = be->port;
	value.family = be->family;
	value.slot = *slot;
	value.last_used_ns = now;
	bpf_map_update_elem(&affinity, key, &value, BPF_ANY);
	return be;
}

#endif
