/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Small helpers over struct bpf_sock_addr: read the destination (or peer)
 * address and port into 16-byte map form, write one back, find the L4
 * protocol, fail a socket call with a chosen errno.
 */
#ifndef SLUICE_BPF_HELPERS_H
#define SLUICE_BPF_HELPERS_H

#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "consts.h"

/* The socket's protocol; sockets opened with protocol 0 fall back to their type. */
static __always_inline __u8 sl_sock_proto(const struct bpf_sock_addr *ctx)
{
	__u32 proto = ctx->protocol;

	if (proto)
		return proto;
	if (ctx->type == SL_SOCK_STREAM)
		return SL_IPPROTO_TCP;
	if (ctx->type == SL_SOCK_DGRAM)
		return SL_IPPROTO_UDP;
	return 0;
}

/* True if an IPv6 context holds an IPv4-mapped address (::ffff:a.b.c.d). */
static __always_inline bool sl_ctx_v4_mapped(const struct bpf_sock_addr *ctx)
{
	return ctx->user_ip6[0] == 0 && ctx->user_ip6[1] == 0 &&
	       ctx->user_ip6[2] == bpf_htonl(0x0000ffff);
}

/*
 * Copies the context's address into addr[16] (IPv4 in the first 4 bytes,
 * the rest left as the caller zeroed it). mapped: an IPv6 context holding
 * an IPv4-mapped address, read as the IPv4 address it maps (family is then
 * SL_AF_INET, the family the maps know it by).
 */
static __always_inline void sl_ctx_load_addr(const struct bpf_sock_addr *ctx, __u8 family,
					     bool mapped, __u8 addr[16])
{
	__u32 word;

	if (mapped) {
		word = ctx->user_ip6[3];
		__builtin_memcpy(addr, &word, 4);
		return;
	}
	if (family == SL_AF_INET) {
		word = ctx->user_ip4;
		__builtin_memcpy(addr, &word, 4);
		return;
	}
	/* One 32-bit context load at a time: the only width every kernel accepts. */
	word = ctx->user_ip6[0];
	__builtin_memcpy(addr, &word, 4);
	word = ctx->user_ip6[1];
	__builtin_memcpy(addr + 4, &word, 4);
	word = ctx->user_ip6[2];
	__builtin_memcpy(addr + 8, &word, 4);
	word = ctx->user_ip6[3];
	__builtin_memcpy(addr + 12, &word, 4);
}

/* The port as the maps hold it: network order, the low 16 bits of user_port. */
static __always_inline __u16 sl_ctx_load_port(const struct bpf_sock_addr *ctx)
{
	return (__u16)ctx->user_port;
}

/* Writes addr[16] and a network-order port into the context; mapped as in sl_ctx_load_addr(). */
static __always_inline void sl_ctx_store(struct bpf_sock_addr *ctx, __u8 family, bool mapped,
					 const __u8 addr[16], __u16 port)
{
	__u32 word;

	if (mapped) {
		__builtin_memcpy(&word, addr, 4);
		ctx->user_ip6[0] = 0;
		ctx->user_ip6[1] = 0;
		ctx->user_ip6[2] = bpf_htonl(0x0000ffff);
		ctx->user_ip6[3] = word;
	} else if (family == SL_AF_INET) {
		__builtin_memcpy(&word, addr, 4);
		ctx->user_ip4 = word;
	} else {
		__builtin_memcpy(&word, addr, 4);
		ctx->user_ip6[0] = word;
		__builtin_memcpy(&word, addr + 4, 4);
		ctx->user_ip6[1] = word;
		__builtin_memcpy(&word, addr + 8, 4);
		ctx->user_ip6[2] = word;
		__builtin_memcpy(&word, addr + 12, 4);
		ctx->user_ip6[3] = word;
	}
	ctx->user_port = port;
}

/* 16-byte address comparison without memcmp, which BPF has no library for. */
static __always_inline bool sl_addr_equal(const __u8 a[16], const __u8 b[16])
{
	__u64 a_lo, a_hi, b_lo, b_hi;

	__builtin_memcpy(&a_lo, a, 8);
	__builtin_memcpy(&a_hi, a + 8, 8);
	__builtin_memcpy(&b_lo, b, 8);
	__builtin_memcpy(&b_hi, b + 8, 8);
	return a_lo == b_lo && a_hi == b_hi;
}

/*
 * Fails the connect()/sendmsg() with errno err instead of the EPERM that a
 * plain reject gives (bpf_set_retval, Linux 5.18+).
 */
static __always_inline int sl_fail_with(int err)
{
	bpf_set_retval(-err);
	return SL_VERDICT_REJECT;
}

#endif
