/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Checksum-preserving rewrites for the tc programs: an address or a port
 * is stored and every checksum that covers it is updated incrementally
 * (bpf_l3_csum_replace / bpf_l4_csum_replace), so the packet keeps valid
 * checksums whatever its skb checksum state (none, complete, partial;
 * XDP sees complete ones only, ctx.h).
 * Also the from-scratch sums of packets the programs build themselves.
 */
#ifndef SLUICE_BPF_CSUM_H
#define SLUICE_BPF_CSUM_H

#include <bpf/bpf_helpers.h>

#include "shared.h"
#include "consts.h"
#include "parse.h"

/*
 * Flags for the L4 checksum of proto. UDP over IPv4 may carry no checksum
 * (0): it stays 0, and a result of 0 is written as 0xffff (MANGLED_0).
 * UDP over IPv6 always has one: a result of 0 is written as 0xffff too.
 */
static __always_inline __u64 sl_l4_csum_flags(__u8 family, __u8 proto)
{
	if (proto != SL_IPPROTO_UDP)
		return 0;
	return family == SL_AF_INET ? BPF_F_MARK_MANGLED_0 :
				      BPF_F_MARK_MANGLED_0 | BPF_F_MARK_ENFORCE;
}

/*
 * Stores new (4 or 16 bytes) at addr_off over old. ip_csum_off: the IPv4
 * header checksum to fix, 0 for none. l4_csum_off: the L4 checksum whose
 * pseudo-header holds this address, 0 for none (ICMPv4 has no pseudo-header,
 * an address inside an ICMP quote is no pseudo-header of this packet).
 */
static __always_inline int sl_store_addr(sl_ctx_t *ctx, __u8 family, __u32 addr_off,
					 __u32 ip_csum_off, __u32 l4_csum_off, __u64 l4_flags,
					 const __u8 old[16], const __u8 new[16])
{
	__u32 o4, n4;
	__s64 diff;

	if (family == SL_AF_INET) {
		__builtin_memcpy(&o4, old, 4);
		__builtin_memcpy(&n4, new, 4);
		if (sl_store(ctx, addr_off, &n4, 4))
			return -1;
		if (ip_csum_off && sl_l3_csum_replace(ctx, ip_csum_off, o4, n4, 4))
			return -1;
		if (l4_csum_off &&
		    sl_l4_csum_replace(ctx, l4_csum_off, o4, n4, BPF_F_PSEUDO_HDR | 4 | l4_flags))
			return -1;
		return 0;
	}
	diff = bpf_csum_diff((__be32 *)old, 16, (__be32 *)new, 16, 0);
	if (sl_store(ctx, addr_off, new, 16))
		return -1;
	if (l4_csum_off &&
	    sl_l4_csum_replace(ctx, l4_csum_off, 0, diff, BPF_F_PSEUDO_HDR | l4_flags))
		return -1;
	return 0;
}

/* Stores a port (network order) at port_off and fixes the L4 checksum at l4_csum_off. */
static __always_inline int sl_store_port(sl_ctx_t *ctx, __u32 port_off, __u32 l4_csum_off,
					 __u64 l4_flags, __u16 old, __u16 new)
{
	if (sl_store(ctx, port_off, &new, 2))
		return -1;
	if (l4_csum_off && sl_l4_csum_replace(ctx, l4_csum_off, old, new, 2 | l4_flags))
		return -1;
	return 0;
}

/* Folds a 32-bit one's complement sum into the 16-bit checksum field value. */
static __always_inline __u16 sl_csum_fold(__s64 sum)
{
	__u32 s = (__u32)sum;

	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)~s;
}

#endif
