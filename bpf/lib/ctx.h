/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The packet context the external-frontend code (flow.h and the headers it
 * uses) runs on: a tc program's struct __sk_buff or, with SL_CTX_XDP
 * defined before the first include, an XDP program's struct xdp_md. Reads
 * and writes of packet bytes, checksum fixes, room at the front or the
 * end, routing and the verdicts have one name here and two bodies.
 *
 * What XDP cannot do (redirect with a neighbour to resolve, deliver to
 * the stack with a translation, encapsulate for DSR, SCTP's CRC) it leaves
 * to tc: the packet goes up untouched (XDP_PASS) and the tc program on the
 * same device handles it, from the connection entry XDP wrote, if any.
 */
#ifndef SLUICE_BPF_CTX_H
#define SLUICE_BPF_CTX_H

#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "consts.h"

/* Verdicts of the common code: tc's or XDP's numbers. */
#ifdef SL_CTX_XDP
#define sl_ctx_t struct xdp_md /* a macro: CO-RE relocates by the struct name */
#define SL_V_OK 2 /* XDP_PASS */
#define SL_V_SHOT 1 /* XDP_DROP */
#define SL_V_REDIRECT 4 /* XDP_REDIRECT */
#define SL_V_TX 3 /* XDP_TX */
#define SL_IS_XDP 1
#else
#define sl_ctx_t struct __sk_buff
#define SL_V_OK SL_TC_ACT_OK
#define SL_V_SHOT SL_TC_ACT_SHOT
#define SL_V_REDIRECT SL_TC_ACT_REDIRECT
#define SL_IS_XDP 0
#endif

/*
 * XDP only, never returned by a program: routed, but XDP cannot send it
 * (the neighbour is not resolved); the packet is left to tc untouched.
 */
#define SL_V_TO_TC 101

/* 16-bit one's complement of a 64-bit sum, folded. */
static __always_inline __u16 sl_csum_fold64(__u64 s)
{
	s = (s & 0xffffffff) + (s >> 32);
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)~s;
}

#ifdef SL_CTX_XDP

static __always_inline long sl_load(sl_ctx_t *ctx, __u32 off, void *buf, __u32 len)
{
	return bpf_xdp_load_bytes(ctx, off, buf, len);
}

static __always_inline long sl_store(sl_ctx_t *ctx, __u32 off, const void *buf, __u32 len)
{
	return bpf_xdp_store_bytes(ctx, off, (void *)buf, len);
}

static __always_inline __u32 sl_ctx_len(sl_ctx_t *ctx)
{
	return bpf_xdp_get_buff_len(ctx); /* pkt_end - pkt is no scalar to the verifier */
}

static __always_inline __u32 sl_ctx_ifindex(sl_ctx_t *ctx)
{
	return ctx->ingress_ifindex;
}

/* The frame's ethertype, network order (no VLAN tag: a tagged frame is tc's). */
static __always_inline __u16 sl_ctx_protocol(sl_ctx_t *ctx)
{
	__u16 proto = 0;

	bpf_xdp_load_bytes(ctx, 12, &proto, 2);
	return proto;
}

/*
 * A checksum field at off changes by the sum diff (a __wsum of bpf_csum_diff
 * or of two values). XDP sees a frame as it came off the wire: its checksums
 * are complete, so every fix is the plain RFC 1624 update.
 */
static __always_inline long sl_csum_apply(sl_ctx_t *ctx, __u32 off, __u32 diff, __u64 flags)
{
	__u16 sum;

	if (bpf_xdp_load_bytes(ctx, off, &sum, 2))
		return -1;
	/* UDP over IPv4 without a checksum keeps none. */
	if ((flags & BPF_F_MARK_MANGLED_0) && !(flags & BPF_F_MARK_ENFORCE) && !sum)
		return 0;
	sum = sl_csum_fold64((__u64)(__u16)~sum + diff);
	if ((flags & BPF_F_MARK_MANGLED_0) && !sum)
		sum = 0xffff;
	return bpf_xdp_store_bytes(ctx, off, &sum, 2);
}

/* from and to: 2 or 4 bytes in network order, as bpf_l3_csum_replace takes them. */
static __always_inline __u32 sl_csum_diff_of(__u32 from, __u32 to, __u32 size)
{
	__u64 s;

	if (size == 2) {
		from = ~from & 0xffff;
		to &= 0xffff;
	} else {
		from = ~from;
	}
	/* ~from + to, folded to 32 bits with the carry. */
	s = (__u64)from + to;
	return (__u32)((s & 0xffffffff) + (s >> 32));
}

static __always_inline long sl_l3_csum_replace(sl_ctx_t *ctx, __u32 off, __u64 from, __u64 to,
					       __u64 size)
{
	if (!size)
		return sl_csum_apply(ctx, off, (__u32)to, 0);
	return sl_csum_apply(ctx, off, sl_csum_diff_of(from, to, size), 0);
}

static __always_inline long sl_l4_csum_replace(sl_ctx_t *ctx, __u32 off, __u64 from, __u64 to,
					       __u64 flags)
{
	__u32 size = flags & BPF_F_HDR_FIELD_MASK;

	if (!size)
		return sl_csum_apply(ctx, off, (__u32)to, flags);
	return sl_csum_apply(ctx, off, sl_csum_diff_of(from, to, size), flags);
}

/* The frame ends len bytes after its start (shorter only). */
static __always_inline long sl_change_tail(sl_ctx_t *ctx, __u32 len)
{
	return bpf_xdp_adjust_tail(ctx, (int)len - (int)sl_ctx_len(ctx));
}

/* Room for n more bytes right after the Ethernet header: the header moves to the front. */
static __always_inline long sl_grow_after_eth(sl_ctx_t *ctx, __u32 n)
{
	__u8 eth[SL_ETH_HLEN];

	if (bpf_xdp_adjust_head(ctx, -(int)n))
		return -1;
	if (bpf_xdp_load_bytes(ctx, n, eth, sizeof(eth)))
		return -1;
	return bpf_xdp_store_bytes(ctx, 0, eth, sizeof(eth));
}

/* The frame back out of the device it came in on. */
static __always_inline int sl_send_back(sl_ctx_t *ctx, __u64 redirect_flags)
{
	return SL_V_TX;
}

/*
 * The last route lookup's answer, off the stack: sl_redirect needs its
 * MAC addresses after the packet was rewritten.
 */
struct sl_xdp_route {
	struct bpf_fib_lookup fib;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct sl_xdp_route);
	__uint(max_entries, 1);
} xdp_route SEC(".maps");

/*
 * Routes daddr as sl_fib does on tc; SL_V_TO_TC where tc would redirect
 * but the next hop's MAC is not known yet (tc's bpf_redirect_neigh
 * resolves it; XDP has no such helper).
 */
static __always_inline int sl_fib(sl_ctx_t *ctx, __u8 family, const __u8 daddr[16],
				  __u32 *ifindex_out)
{
	struct sl_xdp_route *route;
	__u32 zero = 0;
	long ret;

	*ifindex_out = 0;
	route = bpf_map_lookup_elem(&xdp_route, &zero);
	if (!route)
		return SL_V_SHOT;
	__builtin_memset(&route->fib, 0, sizeof(route->fib));
	route->fib.ifindex = ctx->ingress_ifindex;
	if (family == SL_AF_INET) {
		route->fib.family = SL_AF_INET;
		__builtin_memcpy(&route->fib.ipv4_dst, daddr, 4);
	} else {
		route->fib.family = SL_AF_INET6;
		__builtin_memcpy(route->fib.ipv6_dst, daddr, 16);
	}
	ret = bpf_fib_lookup(ctx, &route->fib, sizeof(route->fib), 0);
	if (ret == BPF_FIB_LKUP_RET_SUCCESS) {
		*ifindex_out = route->fib.ifindex;
		return SL_V_REDIRECT;
	}
	if (ret == BPF_FIB_LKUP_RET_NO_NEIGH) {
		*ifindex_out = route->fib.ifindex; /* the device is known: SNAT takes its address */
		return SL_V_TO_TC;
	}
	if (ret == BPF_FIB_LKUP_RET_NOT_FWDED || ret == BPF_FIB_LKUP_RET_FWD_DISABLED)
		return SL_V_OK;
	return SL_V_SHOT;
}

/* Sends the rewritten frame out of ifindex, to the MAC the last sl_fib found. */
static __always_inline int sl_redirect(sl_ctx_t *ctx, __u32 ifindex)
{
	struct sl_xdp_route *route;
	__u8 macs[12];
	__u32 zero = 0;

	route = bpf_map_lookup_elem(&xdp_route, &zero);
	if (!route)
		return SL_V_SHOT;
	__builtin_memcpy(macs, route->fib.dmac, 6);
	__builtin_memcpy(macs + 6, route->fib.smac, 6);
	if (bpf_xdp_store_bytes(ctx, 0, macs, sizeof(macs)))
		return SL_V_SHOT;
	return bpf_redirect(ifindex, 0);
}

/*
 * True if XDP can finish a packet whose route verdict is verdict: sent out
 * of a device with a known neighbour, or dropped. Anything else (a local
 * backend, an unresolved neighbour) goes up untouched, tc translates it.
 */
static __always_inline bool sl_can_send(int verdict)
{
	return verdict == SL_V_REDIRECT || verdict == SL_V_SHOT;
}

#else /* tc */

static __always_inline long sl_load(sl_ctx_t *ctx, __u32 off, void *buf, __u32 len)
{
	return bpf_skb_load_bytes(ctx, off, buf, len);
}

static __always_inline long sl_store(sl_ctx_t *ctx, __u32 off, const void *buf, __u32 len)
{
	return bpf_skb_store_bytes(ctx, off, buf, len, 0);
}

static __always_inline __u32 sl_ctx_len(sl_ctx_t *ctx)
{
	return ctx->len;
}

static __always_inline __u32 sl_ctx_ifindex(sl_ctx_t *ctx)
{
	return ctx->ifindex;
}

static __always_inline __u16 sl_ctx_protocol(sl_ctx_t *ctx)
{
	return ctx->protocol;
}

/* The skb helpers know the checksum state (none, complete, partial). */
static __always_inline long sl_l3_csum_replace(sl_ctx_t *ctx, __u32 off, __u64 from, __u64 to,
					       __u64 size)
{
	return bpf_l3_csum_replace(ctx, off, from, to, size);
}

static __always_inline long sl_l4_csum_replace(sl_ctx_t *ctx, __u32 off, __u64 from, __u64 to,
					       __u64 flags)
{
	return bpf_l4_csum_replace(ctx, off, from, to, flags);
}

static __always_inline long sl_change_tail(sl_ctx_t *ctx, __u32 len)
{
	return bpf_skb_change_tail(ctx, len, 0);
}

static __always_inline long sl_grow_after_eth(sl_ctx_t *ctx, __u32 n)
{
	return bpf_skb_adjust_room(ctx, n, BPF_ADJ_ROOM_MAC, 0);
}

static __always_inline int sl_send_back(sl_ctx_t *ctx, __u64 redirect_flags)
{
	return bpf_redirect(ctx->ifindex, redirect_flags);
}

/*
 * Routes the translated packet to daddr: out of the device the FIB names
 * (bpf_redirect_neigh resolves the next hop's MAC), or up the stack when
 * the destination is this node. ifindex_out gets the device.
 */
static __always_inline int sl_fib(sl_ctx_t *ctx, __u8 family, const __u8 daddr[16],
				  __u32 *ifindex_out)
{
	struct bpf_fib_lookup fib;
	long ret;

	__builtin_memset(&fib, 0, sizeof(fib));
	fib.ifindex = ctx->ifindex;
	if (family == SL_AF_INET) {
		fib.family = SL_AF_INET;
		__builtin_memcpy(&fib.ipv4_dst, daddr, 4);
	} else {
		fib.family = SL_AF_INET6;
		__builtin_memcpy(fib.ipv6_dst, daddr, 16);
	}
	ret = bpf_fib_lookup(ctx, &fib, sizeof(fib), 0);
	if (ret == BPF_FIB_LKUP_RET_SUCCESS || ret == BPF_FIB_LKUP_RET_NO_NEIGH) {
		*ifindex_out = fib.ifindex;
		return SL_V_REDIRECT;
	}
	*ifindex_out = 0;
	/* A local destination (or forwarding off): the stack decides. */
	if (ret == BPF_FIB_LKUP_RET_NOT_FWDED || ret == BPF_FIB_LKUP_RET_FWD_DISABLED)
		return SL_V_OK;
	return SL_V_SHOT;
}

static __always_inline int sl_redirect(sl_ctx_t *ctx, __u32 ifindex)
{
	return bpf_redirect_neigh(ifindex, NULL, 0, 0);
}

static __always_inline bool sl_can_send(int verdict)
{
	return true;
}

#endif

#endif
