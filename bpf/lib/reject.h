/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Refusing a new flow from the tc path as kube-proxy's REJECT does: the
 * packet is turned into a TCP RST (for TCP) or an ICMP / ICMPv6 port
 * unreachable (for UDP) from the frontend to the client, and sent back out
 * of the device it came in on.
 */
#ifndef SLUICE_BPF_REJECT_H
#define SLUICE_BPF_REJECT_H

#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "shared.h"
#include "consts.h"
#include "parse.h"
#include "csum.h"

/* Room to build a reply: pseudo-header (40) + ICMPv6 header (8) + quote (48, SCTP 60). */
#define SL_REJECT_BUF 112

struct sl_reject_buf {
	__u8 b[SL_REJECT_BUF];
};

/* Per-CPU scratch space: the reply is built here, not on the 512-byte stack. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct sl_reject_buf);
	__uint(max_entries, 1);
} reject_scratch SEC(".maps");

/* Swaps the Ethernet source and destination: the reply goes back where it came from. */
static __always_inline int sl_swap_macs(sl_ctx_t *ctx)
{
	__u8 macs[12], swapped[12];

	if (sl_load(ctx, 0, macs, sizeof(macs)))
		return -1;
	__builtin_memcpy(swapped, macs + 6, 6);
	__builtin_memcpy(swapped + 6, macs, 6);
	return sl_store(ctx, 0, swapped, sizeof(swapped));
}

/* Writes an IPv4 header (no options) of a reply with the addresses of p reversed. */
static __always_inline void sl_fill_ip4(struct iphdr *ip, const struct sl_pkt *p, __u8 proto,
					__u16 tot_len)
{
	__builtin_memset(ip, 0, sizeof(*ip));
	ip->version = 4;
	ip->ihl = 5;
	ip->tot_len = bpf_htons(tot_len);
	ip->frag_off = bpf_htons(0x4000); /* DF */
	ip->ttl = 64;
	ip->protocol = proto;
	__builtin_memcpy(&ip->saddr, p->tuple.daddr, 4);
	__builtin_memcpy(&ip->daddr, p->tuple.saddr, 4);
	ip->check = sl_csum_fold(bpf_csum_diff(NULL, 0, (__be32 *)ip, sizeof(*ip), 0));
}

static __always_inline void sl_fill_ip6(struct ipv6hdr *ip6, const struct sl_pkt *p, __u8 proto,
					__u16 payload_len)
{
	__builtin_memset(ip6, 0, sizeof(*ip6));
	ip6->version = 6;
	ip6->payload_len = bpf_htons(payload_len);
	ip6->nexthdr = proto;
	ip6->hop_limit = 64;
	__builtin_memcpy(&ip6->saddr, p->tuple.daddr, 16);
	__builtin_memcpy(&ip6->daddr, p->tuple.saddr, 16);
}

/*
 * The pseudo-header of a reply (addresses of p reversed) at the start of
 * buf; returns its length (12 for IPv4, 40 for IPv6).
 */
static __always_inline __u32 sl_fill_pseudo(__u8 *buf, const struct sl_pkt *p, __u8 proto,
					    __u32 len)
{
	if (p->tuple.family == SL_AF_INET) {
		__builtin_memcpy(buf, p->tuple.daddr, 4);
		__builtin_memcpy(buf + 4, p->tuple.saddr, 4);
		buf[8] = 0;
		buf[9] = proto;
		buf[10] = len >> 8;
		buf[11] = len & 0xff;
		return 12;
	}
	__builtin_memcpy(buf, p->tuple.daddr, 16);
	__builtin_memcpy(buf + 16, p->tuple.saddr, 16);
	buf[32] = len >> 24;
	buf[33] = (len >> 16) & 0xff;
	buf[34] = (len >> 8) & 0xff;
	buf[35] = len & 0xff;
	buf[36] = 0;
	buf[37] = 0;
	buf[38] = 0;
	buf[39] = proto;
	return 40;
}

/* The TCP segment becomes a RST from the frontend, as the kernel answers a closed port. */
static __always_inline int sl_reject_tcp(sl_ctx_t *ctx, const struct sl_pkt *p)
{
	__u8 family = p->tuple.family;
	__u32 ip_len = family == SL_AF_INET ? sizeof(struct iphdr) : sizeof(struct ipv6hdr);
	__u32 zero = 0, payload, seg_len;
	struct sl_reject_buf *scratch;
	struct tcphdr in, *out;
	__u16 tot_len;

	scratch = bpf_map_lookup_elem(&reject_scratch, &zero);
	if (!scratch || p->l4_off != p->l3_off + ip_len)
		return SL_V_SHOT;
	if (sl_load(ctx, p->l4_off, &in, sizeof(in)))
		return SL_V_SHOT;
	if (p->tcp_flags & SL_TCP_RST)
		return SL_V_SHOT; /* never answer a RST */
	/* Payload length: the IP length minus the headers. */
	if (family == SL_AF_INET) {
		if (sl_load(ctx, p->l3_off + 2, &tot_len, 2))
			return SL_V_SHOT;
		seg_len = bpf_ntohs(tot_len) - ip_len;
	} else {
		if (sl_load(ctx, p->l3_off + 4, &tot_len, 2))
			return SL_V_SHOT;
		seg_len = bpf_ntohs(tot_len);
	}
	payload = seg_len - in.doff * 4;

	if (sl_change_tail(ctx, p->l4_off + sizeof(struct tcphdr)))
		return SL_V_SHOT;
	if (sl_swap_macs(ctx))
		return SL_V_SHOT;

	/* RFC 9293 3.10.7.1: seq from their ACK, else ACK everything they sent. */
	__u32 pseudo = sl_fill_pseudo(scratch->b, p, SL_IPPROTO_TCP, sizeof(struct tcphdr));

	if (pseudo > 40)
		return SL_V_SHOT;
	out = (struct tcphdr *)(scratch->b + pseudo);
	__builtin_memset(out, 0, sizeof(*out));
	out->source = in.dest;
	out->dest = in.source;
	out->doff = 5;
	out->rst = 1;
	if (in.ack) {
		out->seq = in.ack_seq;
	} else {
		out->ack = 1;
		out->ack_seq = bpf_htonl(bpf_ntohl(in.seq) + payload + in.syn + in.fin);
	}
	out->check = sl_csum_fold(
		bpf_csum_diff(NULL, 0, (__be32 *)scratch->b, pseudo == 12 ? 32 : 60, 0));
	if (sl_store(ctx, p->l4_off, out, sizeof(*out)))
		return SL_V_SHOT;

	if (family == SL_AF_INET) {
		struct iphdr ip;

		sl_fill_ip4(&ip, p, SL_IPPROTO_TCP, sizeof(ip) + sizeof(struct tcphdr));
		if (sl_store(ctx, p->l3_off, &ip, sizeof(ip)))
			return SL_V_SHOT;
	} else {
		struct ipv6hdr ip6;

		sl_fill_ip6(&ip6, p, SL_IPPROTO_TCP, sizeof(struct tcphdr));
		if (sl_store(ctx, p->l3_off, &ip6, sizeof(ip6)))
			return SL_V_SHOT;
	}
	return sl_send_back(ctx, 0);
}

/*
 * The datagram becomes an ICMP (IPv4: type 3 code 3) or ICMPv6 (type 1
 * code 4) port unreachable from the frontend, quoting its IP header and
 * the first 8 bytes after it; for SCTP the first 20 (RFC 4960 appendix C:
 * an INIT's sender checks the Initiate Tag in the quote, else it ignores
 * the error). redirect_flags: BPF_F_INGRESS when the refused packet was
 * leaving the node (tc egress), so that the error reaches its sender.
 */
static __always_inline int sl_reject_udp(sl_ctx_t *ctx, const struct sl_pkt *p,
					 __u64 redirect_flags)
{
	__u8 family = p->tuple.family;
	__u32 ip_len = family == SL_AF_INET ? sizeof(struct iphdr) : sizeof(struct ipv6hdr);
	__u32 l4_quote = p->tuple.proto == SL_IPPROTO_SCTP ? 20 : 8;
	__u32 quote = ip_len + l4_quote, zero = 0, pseudo;
	struct sl_reject_buf *scratch;
	__u8 *icmp;

	scratch = bpf_map_lookup_elem(&reject_scratch, &zero);
	if (!scratch || p->l4_off != p->l3_off + ip_len)
		return SL_V_SHOT;
	if (sl_change_tail(ctx, p->l3_off + quote))
		return SL_V_SHOT;
	/* Room for the new IP and ICMP headers between Ethernet and the quote. */
	if (sl_grow_after_eth(ctx, ip_len + 8))
		return SL_V_SHOT;
	if (sl_swap_macs(ctx))
		return SL_V_SHOT;

	if (family == SL_AF_INET) {
		struct iphdr ip;

		/* ICMPv4 has no pseudo-header: sum the ICMP header and the quote. */
		icmp = scratch->b;
		__builtin_memset(icmp, 0, 8);
		icmp[0] = SL_ICMP_DEST_UNREACH;
		icmp[1] = SL_ICMP_PORT_UNREACH;
		if (sl_load(ctx, p->l3_off + ip_len + 8, icmp + 8, 20 + l4_quote))
			return SL_V_SHOT;
		*(__u16 *)(icmp + 2) =
			sl_csum_fold(bpf_csum_diff(NULL, 0, (__be32 *)icmp, 8 + 20 + l4_quote, 0));
		sl_fill_ip4(&ip, p, SL_IPPROTO_ICMP, 20 + 8 + 20 + l4_quote);
		if (sl_store(ctx, p->l3_off, &ip, sizeof(ip)) ||
		    sl_store(ctx, p->l3_off + 20, icmp, 8))
			return SL_V_SHOT;
	} else {
		struct ipv6hdr ip6;

		pseudo = sl_fill_pseudo(scratch->b, p, SL_IPPROTO_ICMPV6, 8 + 40 + l4_quote);
		if (pseudo != 40)
			return SL_V_SHOT;
		icmp = scratch->b + 40;
		__builtin_memset(icmp, 0, 8);
		icmp[0] = SL_ICMPV6_DEST_UNREACH;
		icmp[1] = SL_ICMPV6_PORT_UNREACH;
		if (sl_load(ctx, p->l3_off + ip_len + 8, icmp + 8, 40 + l4_quote))
			return SL_V_SHOT;
		*(__u16 *)(icmp + 2) = sl_csum_fold(
			bpf_csum_diff(NULL, 0, (__be32 *)scratch->b, 40 + 8 + 40 + l4_quote, 0));
		sl_fill_ip6(&ip6, p, SL_IPPROTO_ICMPV6, 8 + 40 + l4_quote);
		if (sl_store(ctx, p->l3_off, &ip6, sizeof(ip6)) ||
		    sl_store(ctx, p->l3_off + 40, icmp, 8))
			return SL_V_SHOT;
	}
	return sl_send_back(ctx, redirect_flags);
}

/*
 * Refuses the new flow p: RST for TCP, port unreachable for UDP and SCTP
 * (as kube-proxy's REJECT). egress: p was leaving the node (SCTP from the
 * node to a ClusterIP), the answer goes back up the stack.
 */
static __always_inline int sl_reject(sl_ctx_t *ctx, const struct sl_pkt *p, bool egress)
{
	if (p->tuple.proto == SL_IPPROTO_TCP)
		return sl_reject_tcp(ctx, p);
	return sl_reject_udp(ctx, p, egress ? BPF_F_INGRESS : 0);
}

#endif
