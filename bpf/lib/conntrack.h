/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The connection table of the tc and XDP paths: an LRU hash of both
 * directions of every translated connection, their lifetimes (TCP by
 * state, UDP by idle time) and the coarse refresh of their timestamps.
 */
#ifndef SLUICE_BPF_CONNTRACK_H
#define SLUICE_BPF_CONNTRACK_H

#include <bpf/bpf_helpers.h>

#include "shared.h"
#include "consts.h"
#include "helpers.h"

#define SL_NS 1000000000ull
/* kube-proxy sets nf_conntrack_tcp_timeout_established to a day. */
#define SL_CT_TCP_OPEN_NS (86400 * SL_NS)
/* After a FIN or RST: long enough for the last ACKs and a retransmitted FIN. */
#define SL_CT_TCP_CLOSING_NS (10 * SL_NS)
/* UDP (and the flows ICMP quotes): idle time, as conntrack's UDP stream timeout. */
#define SL_CT_UDP_IDLE_NS (120 * SL_NS)
/* last_seen_ns is rewritten at most this often: contended writes to one entry cost. */
#define SL_CT_REFRESH_NS (1 * SL_NS)

/*
 * Common LRU: measured against BPF_F_NO_COMMON_LRU (per-CPU lists) in
 * Documentation/bpf-datapath.md. Preallocated, as every LRU map.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct sl_ct_key);
	__type(value, struct sl_ct);
	__uint(max_entries, SL_MAX_CONNTRACK);
} conntrack SEC(".maps");

static __always_inline __u64 sl_ct_lifetime(const struct sl_ct *ct, __u8 proto)
{
	if (proto != SL_IPPROTO_TCP)
		return SL_CT_UDP_IDLE_NS;
	return ct->flags & SL_CT_F_CLOSING ? SL_CT_TCP_CLOSING_NS : SL_CT_TCP_OPEN_NS;
}

static __always_inline bool sl_ct_expired(const struct sl_ct *ct, __u8 proto, __u64 now)
{
	/* Another CPU may have stamped a few ns after our now: not expired. */
	return now > ct->last_seen_ns && now - ct->last_seen_ns > sl_ct_lifetime(ct, proto);
}

/* The live entry for key, or NULL (missing or expired: LRU reclaims it later). */
static __always_inline struct sl_ct *sl_ct_lookup(const struct sl_ct_key *key, __u64 now)
{
	struct sl_ct *ct = bpf_map_lookup_elem(&conntrack, key);

	if (!ct || sl_ct_expired(ct, key->proto, now))
		return NULL;
	return ct;
}

/* The key of the other direction: the tuple ct rewrites a packet to, reversed. */
static __always_inline void sl_ct_pair_key(const struct sl_ct_key *key, const struct sl_ct *ct,
					   struct sl_ct_key *pair)
{
	__builtin_memset(pair, 0, sizeof(*pair));
	__builtin_memcpy(pair->saddr, ct->new_daddr, 16);
	__builtin_memcpy(pair->daddr, ct->new_saddr, 16);
	pair->sport = ct->new_dport;
	pair->dport = ct->new_sport;
	pair->proto = key->proto;
	pair->family = key->family;
}

/*
 * Deletes the connection of key's entry ct, both directions (the other one
 * first: its key is computed from ct). ct must not be used afterwards.
 */
static __always_inline void sl_ct_forget(const struct sl_ct_key *key, const struct sl_ct *ct)
{
	struct sl_ct_key pair_key __attribute__((aligned(8)));

	sl_ct_pair_key(key, ct, &pair_key);
	bpf_map_delete_elem(&conntrack, &pair_key);
	bpf_map_delete_elem(&conntrack, key);
}

/*
 * A packet matched ct: refresh its timestamp coarsely (one store, in place,
 * no map update) and, on a TCP FIN or RST, shorten both directions' lifetime.
 */
static __always_inline void sl_ct_touch(const struct sl_ct_key *key, struct sl_ct *ct,
					__u8 tcp_flags, __u64 now)
{
	struct sl_ct_key pair_key __attribute__((aligned(8)));
	struct sl_ct *pair;

	if (now > ct->last_seen_ns && now - ct->last_seen_ns > SL_CT_REFRESH_NS)
		ct->last_seen_ns = now;
	if (key->proto != SL_IPPROTO_TCP || !(tcp_flags & (SL_TCP_FIN | SL_TCP_RST)) ||
	    (ct->flags & SL_CT_F_CLOSING))
		return;
	ct->flags |= SL_CT_F_CLOSING; /* a lost race only delays closing */
	ct->last_seen_ns = now;
	sl_ct_pair_key(key, ct, &pair_key);
	pair = bpf_map_lookup_elem(&conntrack, &pair_key);
	if (pair) {
		pair->flags |= SL_CT_F_CLOSING;
		pair->last_seen_ns = now;
	}
}

#endif
