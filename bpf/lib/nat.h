/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Address translation of the tc and XDP paths: rewrite a packet's tuple as a
 * connection entry says (DNAT, SNAT, reverse NAT alike), translate an ICMP
 * error about a tracked connection (outer and quoted headers), and choose
 * a SNAT port that no live connection to the same backend uses.
 */
#ifndef SLUICE_BPF_NAT_H
#define SLUICE_BPF_NAT_H

#include <bpf/bpf_helpers.h>

#include "shared.h"
#include "consts.h"
#include "helpers.h"
#include "parse.h"
#include "csum.h"
#include "conntrack.h"

/*
 * SNAT ports: 1024-32767 and 61000-65535, around Linux's default
 * ip_local_port_range (32768-60999), so that a translated connection never
 * takes the 4-tuple of a connection the node itself makes to the same
 * backend (those use ephemeral ports). 36280 ports per backend address
 * and port and SNAT address. Replies are matched in the connection table
 * before anything else, so NodePort numbers in the range are harmless.
 */
#define SL_SNAT_LOW_MIN 1024
#define SL_SNAT_LOW_COUNT (32767 - SL_SNAT_LOW_MIN + 1)
#define SL_SNAT_HIGH_MIN 61000
#define SL_SNAT_HIGH_COUNT (65535 - SL_SNAT_HIGH_MIN + 1)
#define SL_SNAT_TRIES 16

/* sl_nat_rewrite: done, and the SCTP checksum is to be computed again. */
#define SL_NAT_SCTP_CRC 1

/*
 * Rewrites p's addresses and ports to those of ct; checksums follow.
 * Returns 0, SL_NAT_SCTP_CRC, or -1 on failure.
 */
static __always_inline int sl_nat_rewrite(sl_ctx_t *ctx, const struct sl_pkt *p,
					  const struct sl_ct *ct)
{
	__u8 family = p->tuple.family, proto = p->tuple.proto;
	__u32 ip_csum = family == SL_AF_INET ? p->l3_off + 10 : 0;
	__u32 l4_csum = sl_l4_csum_off(proto) ? p->l4_off + sl_l4_csum_off(proto) : 0;
	__u64 flags = sl_l4_csum_flags(family, proto);

	if (!sl_addr_equal(p->tuple.saddr, ct->new_saddr) &&
	    sl_store_addr(ctx, family, p->l3_off + sl_saddr_off(family), ip_csum, l4_csum, flags,
			  p->tuple.saddr, ct->new_saddr))
		return -1;
	if (!sl_addr_equal(p->tuple.daddr, ct->new_daddr) &&
	    sl_store_addr(ctx, family, p->l3_off + sl_daddr_off(family), ip_csum, l4_csum, flags,
			  p->tuple.daddr, ct->new_daddr))
		return -1;
	if (p->tuple.sport != ct->new_sport &&
	    sl_store_port(ctx, p->l4_off, l4_csum, flags, p->tuple.sport, ct->new_sport))
		return -1;
	if (p->tuple.dport != ct->new_dport &&
	    sl_store_port(ctx, p->l4_off + 2, l4_csum, flags, p->tuple.dport, ct->new_dport))
		return -1;
	/*
	 * SCTP: addresses are outside its CRC32c, ports inside. The caller
	 * computes it (sl_sctp_fix_crc) where the stack has room for the call;
	 * decided from p and ct here, which hold no new value across calls.
	 */
	if (p->tuple.proto == SL_IPPROTO_SCTP &&
	    (p->tuple.sport != ct->new_sport || p->tuple.dport != ct->new_dport))
		return SL_NAT_SCTP_CRC;
	return 0;
}

/* Bytes of the quoted packet that the ICMP checksum fix re-sums: IP header + 8 (+ TCP's sum). */
#define SL_QUOTE_V4 40
#define SL_QUOTE_V6 60

/*
 * The quoted packet's fields, translated as ct says (the quote is the
 * reverse direction of ct's packets): its destination becomes ct's new
 * source and its source ct's new destination. The quoted IPv4 header
 * checksum and the quoted L4 checksum (when quoted) are fixed in place; the
 * ICMP checksum is fixed afterwards by re-summing the quote.
 */
static __always_inline int sl_nat_quote(sl_ctx_t *ctx, const struct sl_pkt *p,
					const struct sl_ct *ct, __u32 quote_len)
{
	__u8 family = p->inner.family, proto = p->inner.proto;
	__u32 ip_csum = family == SL_AF_INET ? p->inner_l3_off + 10 : 0;
	__u32 l4_csum = p->inner_l4_off + sl_l4_csum_off(proto);
	__u32 alen = sl_addr_len(family);
	__u16 old_sum = 0;

	/*
	 * The quoted L4 checksum only if the quote holds it and, for UDP, it
	 * is used; never SCTP's (a CRC of chunks the quote does not hold).
	 */
	if (!sl_l4_csum_off(proto) ||
	    p->inner_l4_off + sl_l4_csum_off(proto) + 2 > p->inner_l3_off + quote_len ||
	    sl_load(ctx, l4_csum, &old_sum, 2) || !old_sum)
		l4_csum = 0;

	if (!sl_addr_equal(p->inner.daddr, ct->new_saddr)) {
		if (sl_store(ctx, p->inner_l3_off + sl_daddr_off(family), ct->new_saddr, alen))
			return -1;
		if (family == SL_AF_INET) {
			__u32 o, n;

			__builtin_memcpy(&o, p->inner.daddr, 4);
			__builtin_memcpy(&n, ct->new_saddr, 4);
			sl_l3_csum_replace(ctx, ip_csum, o, n, 4);
			if (l4_csum)
				sl_l3_csum_replace(ctx, l4_csum, o, n, 4);
		} else if (l4_csum) {
			sl_l3_csum_replace(ctx, l4_csum, 0,
					   bpf_csum_diff((__be32 *)p->inner.daddr, 16,
							 (__be32 *)ct->new_saddr, 16, 0),
					   0);
		}
	}
	if (!sl_addr_equal(p->inner.saddr, ct->new_daddr)) {
		if (sl_store(ctx, p->inner_l3_off + sl_saddr_off(family), ct->new_daddr, alen))
			return -1;
		if (family == SL_AF_INET) {
			__u32 o, n;

			__builtin_memcpy(&o, p->inner.saddr, 4);
			__builtin_memcpy(&n, ct->new_daddr, 4);
			sl_l3_csum_replace(ctx, ip_csum, o, n, 4);
			if (l4_csum)
				sl_l3_csum_replace(ctx, l4_csum, o, n, 4);
		} else if (l4_csum) {
			sl_l3_csum_replace(ctx, l4_csum, 0,
					   bpf_csum_diff((__be32 *)p->inner.saddr, 16,
							 (__be32 *)ct->new_daddr, 16, 0),
					   0);
		}
	}
	if (p->inner.dport != ct->new_sport) {
		if (sl_store(ctx, p->inner_l4_off + 2, &ct->new_sport, 2))
			return -1;
		if (l4_csum)
			sl_l3_csum_replace(ctx, l4_csum, p->inner.dport, ct->new_sport, 2);
	}
	if (p->inner.sport != ct->new_dport) {
		if (sl_store(ctx, p->inner_l4_off, &ct->new_dport, 2))
			return -1;
		if (l4_csum)
			sl_l3_csum_replace(ctx, l4_csum, p->inner.sport, ct->new_dport, 2);
	}
	return 0;
}

/*
 * An ICMP error quoting a packet of a tracked connection: the quote is
 * translated back, the outer destination becomes the one ct's packets go
 * to, and the outer source, if it is the peer that ct translates (not a
 * router on the way), becomes the address that peer stands for. ct is the
 * entry of the direction opposite to the quote, found by the quote reversed.
 */
static __always_inline int sl_nat_icmp_error(sl_ctx_t *ctx, const struct sl_pkt *p,
					     const struct sl_ct_key *key, const struct sl_ct *ct)
{
	__u8 family = p->tuple.family;
	__u32 ip_csum = family == SL_AF_INET ? p->l3_off + 10 : 0;
	/* ICMPv6 sums a pseudo-header with the outer addresses; ICMPv4 does not. */
	__u32 icmp_csum = p->l4_off + 2;
	__u32 pseudo_csum = family == SL_AF_INET6 ? icmp_csum : 0;
	__u32 quote_len = family == SL_AF_INET ? SL_QUOTE_V4 : SL_QUOTE_V6;
	__u8 before[SL_QUOTE_V6], after[SL_QUOTE_V6];
	__s64 diff;

	if (p->inner_l3_off + quote_len > sl_ctx_len(ctx))
		quote_len = family == SL_AF_INET ? 28 : 48; /* IP header + 8, always quoted */
	if (p->inner_l3_off + quote_len > sl_ctx_len(ctx))
		return -1;
	/* Constant sizes for the verifier; a shorter quote re-sums zeros on both sides. */
	__builtin_memset(before, 0, sizeof(before));
	__builtin_memset(after, 0, sizeof(after));
	if (quote_len == SL_QUOTE_V6) {
		if (sl_load(ctx, p->inner_l3_off, before, SL_QUOTE_V6))
			return -1;
	} else if (quote_len == 48) {
		if (sl_load(ctx, p->inner_l3_off, before, 48))
			return -1;
	} else if (quote_len == SL_QUOTE_V4) {
		if (sl_load(ctx, p->inner_l3_off, before, SL_QUOTE_V4))
			return -1;
	} else if (sl_load(ctx, p->inner_l3_off, before, 28)) {
		return -1;
	}
	if (sl_nat_quote(ctx, p, ct, quote_len))
		return -1;
	if (quote_len == SL_QUOTE_V6) {
		if (sl_load(ctx, p->inner_l3_off, after, SL_QUOTE_V6))
			return -1;
	} else if (quote_len == 48) {
		if (sl_load(ctx, p->inner_l3_off, after, 48))
			return -1;
	} else if (quote_len == SL_QUOTE_V4) {
		if (sl_load(ctx, p->inner_l3_off, after, SL_QUOTE_V4))
			return -1;
	} else if (sl_load(ctx, p->inner_l3_off, after, 28)) {
		return -1;
	}
	diff = bpf_csum_diff((__be32 *)before, sizeof(before), (__be32 *)after, sizeof(after), 0);
	if (sl_l4_csum_replace(ctx, icmp_csum, 0, diff, 0))
		return -1;

	if (!sl_addr_equal(p->tuple.daddr, ct->new_daddr) &&
	    sl_store_addr(ctx, family, p->l3_off + sl_daddr_off(family), ip_csum, pseudo_csum, 0,
			  p->tuple.daddr, ct->new_daddr))
		return -1;
	if (sl_addr_equal(p->tuple.saddr, key->saddr) &&
	    !sl_addr_equal(p->tuple.saddr, ct->new_saddr) &&
	    sl_store_addr(ctx, family, p->l3_off + sl_saddr_off(family), ip_csum, pseudo_csum, 0,
			  p->tuple.saddr, ct->new_saddr))
		return -1;
	return 0;
}

/*
 * Inserts the reply entry of a SNATed connection under a free port of
 * snat_addr: a port whose reply tuple {backend, snat_addr:port} no live
 * entry holds. Returns the port (network order), or 0 if none was found.
 */
static __always_inline __u16 sl_snat_insert(struct sl_ct_key *reply_key, struct sl_ct *reply,
					    __u64 now)
{
	struct sl_ct *old;
	__u32 pick;
	__u16 port;
	int i;

	for (i = 0; i < SL_SNAT_TRIES; i++) {
		pick = bpf_get_prandom_u32() % (SL_SNAT_LOW_COUNT + SL_SNAT_HIGH_COUNT);
		port = bpf_htons(pick < SL_SNAT_LOW_COUNT ?
					 SL_SNAT_LOW_MIN + pick :
					 SL_SNAT_HIGH_MIN + pick - SL_SNAT_LOW_COUNT);
		reply_key->dport = port;
		if (!bpf_map_update_elem(&conntrack, reply_key, reply, BPF_NOEXIST))
			return port;
		/* Taken: by a live connection, or by one that expired and awaits eviction. */
		old = bpf_map_lookup_elem(&conntrack, reply_key);
		if (old && sl_ct_expired(old, reply_key->proto, now) &&
		    !bpf_map_update_elem(&conntrack, reply_key, reply, BPF_ANY))
			return port;
	}
	return 0;
}

#endif
