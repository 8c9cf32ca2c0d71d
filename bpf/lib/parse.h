/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Packet parsing for the tc and XDP programs: Ethernet, IPv4 (no
 * fragments) or IPv6 (no extension headers), then TCP, UDP, or an
 * ICMP/ICMPv6 error whose quoted header is parsed the same way. Everything
 * is read with sl_load() (ctx.h: bpf_skb_load_bytes or bpf_xdp_load_bytes),
 * so the verifier needs no bounds proofs.
 */
#ifndef SLUICE_BPF_PARSE_H
#define SLUICE_BPF_PARSE_H

#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "shared.h"
#include "consts.h"
#include "ctx.h"

/* A parsed packet: its tuple and where its fields are. */
struct sl_pkt {
	struct sl_ct_key tuple; /* ports 0 for an ICMP error */
	__u32 l3_off;
	__u32 l4_off;
	__u8 tcp_flags;
	__u8 icmp_error; /* 1: an ICMP/ICMPv6 error, inner tuple below */
	__u8 sctp_crc; /* 1: SCTP ports rewritten, the CRC32c to compute (sctp.h) */
	__u8 verdict; /* sl_flow: the new flow's verdict across that computation */
	/* ICMP errors: the quoted packet's tuple, as it was sent. */
	struct sl_ct_key inner;
	__u32 inner_l3_off;
	__u32 inner_l4_off;
};

/* Offsets of fields, per family. */
static __always_inline __u32 sl_saddr_off(__u8 family)
{
	return family == SL_AF_INET ? 12 : 8;
}

static __always_inline __u32 sl_daddr_off(__u8 family)
{
	return family == SL_AF_INET ? 16 : 24;
}

static __always_inline __u32 sl_addr_len(__u8 family)
{
	return family == SL_AF_INET ? 4 : 16;
}

/*
 * The L4 checksum's offset in its header, 0 for protocols whose checksum
 * is not a one's complement sum fixed in place (SCTP: sctp.h).
 */
static __always_inline __u32 sl_l4_csum_off(__u8 proto)
{
	if (proto == SL_IPPROTO_TCP)
		return 16;
	if (proto == SL_IPPROTO_UDP)
		return 6;
	if (proto == SL_IPPROTO_ICMP || proto == SL_IPPROTO_ICMPV6)
		return 2;
	return 0;
}

/*
 * Reads an IP header at off into tuple (addresses, protocol, family);
 * returns the L4 offset, or 0 if the packet is not one the tc path handles
 * (a fragment, IPv4 options in an ICMP quote, IPv6 extension headers).
 */
static __always_inline __u32 sl_parse_ip(sl_ctx_t *ctx, __u32 off, __u8 family,
					 struct sl_ct_key *tuple, bool quoted)
{
	if (family == SL_AF_INET) {
		struct iphdr ip;

		if (sl_load(ctx, off, &ip, sizeof(ip)))
			return 0;
		if (ip.ihl < 5 || (quoted && ip.ihl != 5))
			return 0;
		if (bpf_ntohs(ip.frag_off) & (SL_IP_MF | SL_IP_OFFSET))
			return 0;
		__builtin_memcpy(tuple->saddr, &ip.saddr, 4);
		__builtin_memcpy(tuple->daddr, &ip.daddr, 4);
		tuple->proto = ip.protocol;
		tuple->family = SL_AF_INET;
		return off + ip.ihl * 4;
	} else {
		struct ipv6hdr ip6;

		if (sl_load(ctx, off, &ip6, sizeof(ip6)))
			return 0;
		__builtin_memcpy(tuple->saddr, &ip6.saddr, 16);
		__builtin_memcpy(tuple->daddr, &ip6.daddr, 16);
		tuple->proto = ip6.nexthdr;
		tuple->family = SL_AF_INET6;
		return off + sizeof(ip6);
	}
}

/*
 * Reads the ports of a TCP, UDP or SCTP header (the first 4 bytes of
 * each); false for another protocol.
 */
static __always_inline bool sl_parse_ports(sl_ctx_t *ctx, __u32 off, struct sl_ct_key *tuple)
{
	__u16 ports[2];

	if (tuple->proto != SL_IPPROTO_TCP && tuple->proto != SL_IPPROTO_UDP &&
	    tuple->proto != SL_IPPROTO_SCTP)
		return false;
	if (sl_load(ctx, off, ports, sizeof(ports)))
		return false;
	tuple->sport = ports[0];
	tuple->dport = ports[1];
	return true;
}

/* True for the ICMP types that quote a packet (errors), per family. */
static __always_inline bool sl_icmp_is_error(__u8 family, __u8 type)
{
	if (family == SL_AF_INET)
		return type == SL_ICMP_DEST_UNREACH || type == SL_ICMP_TIME_EXCEEDED ||
		       type == SL_ICMP_PARAMETERPROB;
	return type == SL_ICMPV6_DEST_UNREACH || type == SL_ICMPV6_PKT_TOOBIG ||
	       type == SL_ICMPV6_TIME_EXCEED || type == SL_ICMPV6_PARAMPROB;
}

/* Parses ctx; false if it is nothing the tc path translates. */
static __always_inline bool sl_parse(sl_ctx_t *ctx, struct sl_pkt *p)
{
	__u16 proto = sl_ctx_protocol(ctx);
	__u8 family, icmp_type;
	__u32 off;

	__builtin_memset(p, 0, sizeof(*p));
	if (proto == bpf_htons(SL_ETH_P_IP))
		family = SL_AF_INET;
	else if (proto == bpf_htons(SL_ETH_P_IPV6))
		family = SL_AF_INET6;
	else
		return false;
	p->l3_off = SL_ETH_HLEN;
	off = sl_parse_ip(ctx, p->l3_off, family, &p->tuple, false);
	if (!off)
		return false;
	p->l4_off = off;
	if (sl_parse_ports(ctx, off, &p->tuple)) {
		if (p->tuple.proto == SL_IPPROTO_TCP && sl_load(ctx, off + 13, &p->tcp_flags, 1))
			return false;
		return true;
	}
	if (p->tuple.proto != (family == SL_AF_INET ? SL_IPPROTO_ICMP : SL_IPPROTO_ICMPV6))
		return false;
	if (sl_load(ctx, off, &icmp_type, 1) || !sl_icmp_is_error(family, icmp_type))
		return false;
	/* The quoted packet starts after the 8-byte ICMP header. */
	p->inner_l3_off = off + 8;
	off = sl_parse_ip(ctx, p->inner_l3_off, family, &p->inner, true);
	if (!off || !sl_parse_ports(ctx, off, &p->inner))
		return false;
	p->inner_l4_off = off;
	p->icmp_error = 1;
	return true;
}

#endif
