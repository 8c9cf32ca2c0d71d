/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Direct server return on the tc path. The ingress node DNATs a client's
 * packet to a backend on another node, keeps the client's source and
 * encapsulates it in IPv4 (IPIP, protocol 4) to that node, the service
 * address and port carried in an option of the outer header. The backend's
 * node (its tc ingress) takes the outer header off, remembers the service
 * address for the flow (a reply entry of the connection table) and
 * delivers the packet; the backend's replies are rewritten there to come
 * from the service address and routed to the client directly.
 */
#ifndef SLUICE_BPF_DSR_H
#define SLUICE_BPF_DSR_H

#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "shared.h"
#include "consts.h"
#include "maps.h"
#include "select.h"
#include "parse.h"
#include "csum.h"
#include "conntrack.h"

#define SL_IPPROTO_IPIP 4
/* RFC 4727's experimental IPv4 option number (30), copy and class 0. */
#define SL_DSR_OPT_TYPE 0x1e
#define SL_DSR_OPT_LEN 8
/* The outer header: IPv4 (20 bytes) and the option (8), what the MTU loses. */
#define SL_DSR_OUTER_LEN 28
#define SL_TCPOPT_MSS 2

/* Backend address -> its node's address (the agent writes it, bpf/lib/dsr.h reads it). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct sl_dsr_backend_key);
	__type(value, struct sl_dsr_node);
	__uint(max_entries, SL_MAX_DSR_BACKENDS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} dsr_nodes SEC(".maps");

/* The outer header as sent: IPv4 with one option, {port, address} of the service. */
struct sl_dsr_outer {
	struct iphdr ip;
	__u8 opt_type;
	__u8 opt_len;
	__u16 svc_port; /* network order */
	__u32 svc_addr;
};

/* sl_dsr_send's lookup and header, off the 512-byte stack (it runs below sl_flow). */
struct sl_dsr_scratch {
	struct bpf_fib_lookup fib;
	struct sl_dsr_outer outer;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct sl_dsr_scratch);
	__uint(max_entries, 1);
} dsr_scratch SEC(".maps");

/* sl_new_flow's verdict for a DSR flow: its forward entry is written, sl_dsr_send sends. */
#define SL_DSR_SEND 100

/*
 * A new flow of svc to be: true, with the backend's node's address in
 * node[16], when svc asks for DSR and be is on another node whose address
 * the agent knows. IPv4, TCP and UDP only (SCTP's CRC would be computed
 * at the wrong offset after the encapsulation): the rest keeps SNAT.
 */
static __always_inline bool sl_dsr_node_of(const struct sl_service *svc, const struct sl_pkt *p,
					   const struct sl_backend *be, __u8 node[16])
{
	struct sl_dsr_backend_key key __attribute__((aligned(8)));
	struct sl_dsr_node *n;

	if (!(svc->flags & SL_SVC_F_DSR) || p->tuple.family != SL_AF_INET ||
	    (p->tuple.proto != SL_IPPROTO_TCP && p->tuple.proto != SL_IPPROTO_UDP))
		return false;
	__builtin_memset(&key, 0, sizeof(key));
	__builtin_memcpy(key.addr, be->addr, 16);
	key.family = SL_AF_INET;
	n = bpf_map_lookup_elem(&dsr_nodes, &key);
	if (!n || sl_is_node_addr(n->node_addr, SL_AF_INET))
		return false;
	__builtin_memcpy(node, n->node_addr, 16);
	return true;
}

/*
 * A TCP SYN through the tunnel: its MSS option is lowered so that the
 * peer's segments fit mtu with the outer header. Linux writes MSS first;
 * the first few options are looked at.
 */
static __always_inline int sl_dsr_clamp_mss(sl_ctx_t *ctx, const struct sl_pkt *p, __u32 mtu)
{
	__u32 off = p->l4_off + 20, end, i;
	__u16 mss, limit;
	__u8 opt[2], doff;

	if (mtu < 576 || sl_load(ctx, p->l4_off + 12, &doff, 1))
		return 0;
	limit = mtu - SL_DSR_OUTER_LEN - 40;
	end = p->l4_off + (doff >> 4) * 4;
	for (i = 0; i < 8 && off + 4 <= end; i++) {
		if (sl_load(ctx, off, opt, 2))
			return 0;
		if (opt[0] == 0)
			return 0;
		if (opt[0] == 1) {
			off++;
			continue;
		}
		if (opt[0] == SL_TCPOPT_MSS && opt[1] == 4) {
			if (sl_load(ctx, off + 2, &mss, 2))
				return 0;
			if (bpf_ntohs(mss) <= limit)
				return 0;
			return sl_store_port(ctx, off + 2, p->l4_off + 16, 0, mss,
					     bpf_htons(limit));
		}
		if (opt[1] < 2)
			return 0;
		off += opt[1];
	}
	return 0;
}

/* The ingress node's entry of a DSR connection: its packets are encapsulated. */
static __always_inline bool sl_dsr_forward_entry(const struct sl_ct *ct)
{
	return (ct->flags & (SL_CT_F_DSR | SL_CT_F_REPLY)) == SL_CT_F_DSR;
}

/* XDP leaves DSR packets to tc: encapsulation needs bpf_skb_adjust_room and a neighbour. */
#ifndef SL_CTX_XDP

/*
 * Sends the client's packet p of DSR connection ct (a forward entry) to
 * its backend: DNAT (the source stays the client's), the outer header to
 * ct's node (new_saddr) from this node's address on the way there, out
 * of that device. Returns the tc verdict.
 */
static __noinline int sl_dsr_send(sl_ctx_t *ctx, const struct sl_pkt *p, const struct sl_ct *ct)
{
	__u32 ip_csum = p->l3_off + 10, l4_csum = p->l4_off + sl_l4_csum_off(p->tuple.proto);
	__u64 flags = sl_l4_csum_flags(SL_AF_INET, p->tuple.proto);
	struct sl_dev_addr_key dev_key = { .family = SL_AF_INET };
	struct sl_dsr_scratch *scratch;
	struct bpf_fib_lookup *fib;
	struct sl_dsr_outer *outer;
	struct sl_dev_addr *dev;
	__u32 len = sl_ctx_len(ctx), zero = 0, mtu = 0;
	__u8 tos;
	long ret;

	scratch = bpf_map_lookup_elem(&dsr_scratch, &zero);
	if (!scratch)
		return SL_V_SHOT;
	fib = &scratch->fib;
	outer = &scratch->outer;
	__builtin_memset(fib, 0, sizeof(*fib));
	fib->family = SL_AF_INET;
	fib->ifindex = sl_ctx_ifindex(ctx);
	__builtin_memcpy(&fib->ipv4_dst, ct->new_saddr, 4);
	ret = bpf_fib_lookup(ctx, fib, sizeof(*fib), 0);
	if (ret != BPF_FIB_LKUP_RET_SUCCESS && ret != BPF_FIB_LKUP_RET_NO_NEIGH)
		return SL_V_SHOT;
	dev_key.ifindex = fib->ifindex;
	dev = bpf_map_lookup_elem(&dev_addrs, &dev_key);
	if (!dev)
		return SL_V_SHOT;
	/*
	 * Too big once encapsulated (TCP's MSS is clamped below): dropped, as
	 * documented. A GSO packet is segmented to fit later. mtu: the device's.
	 */
	if (bpf_check_mtu(ctx, fib->ifindex, &mtu, SL_DSR_OUTER_LEN, 0))
		return SL_V_SHOT;

	if (!sl_addr_equal(p->tuple.daddr, ct->new_daddr) &&
	    sl_store_addr(ctx, SL_AF_INET, p->l3_off + 16, ip_csum, l4_csum, flags, p->tuple.daddr,
			  ct->new_daddr))
		return SL_V_SHOT;
	if (p->tuple.dport != ct->new_dport &&
	    sl_store_port(ctx, p->l4_off + 2, l4_csum, flags, p->tuple.dport, ct->new_dport))
		return SL_V_SHOT;
	if (p->tuple.proto == SL_IPPROTO_TCP && (p->tcp_flags & SL_TCP_SYN) &&
	    sl_dsr_clamp_mss(ctx, p, mtu))
		return SL_V_SHOT;
	if (sl_load(ctx, p->l3_off + 1, &tos, 1))
		return SL_V_SHOT;

	__builtin_memset(outer, 0, sizeof(*outer));
	outer->ip.version = 4;
	outer->ip.ihl = SL_DSR_OUTER_LEN / 4;
	outer->ip.tos = tos;
	outer->ip.tot_len = bpf_htons(len - SL_ETH_HLEN + SL_DSR_OUTER_LEN);
	outer->ip.frag_off = bpf_htons(0x4000); /* DF */
	outer->ip.ttl = 64;
	outer->ip.protocol = SL_IPPROTO_IPIP;
	__builtin_memcpy(&outer->ip.saddr, dev->addr, 4);
	__builtin_memcpy(&outer->ip.daddr, ct->new_saddr, 4);
	outer->opt_type = SL_DSR_OPT_TYPE;
	outer->opt_len = SL_DSR_OPT_LEN;
	outer->svc_port = p->tuple.dport;
	__builtin_memcpy(&outer->svc_addr, p->tuple.daddr, 4);
	outer->ip.check = sl_csum_fold(bpf_csum_diff(NULL, 0, (__be32 *)outer, sizeof(*outer), 0));

	if (bpf_skb_adjust_room(ctx, SL_DSR_OUTER_LEN, BPF_ADJ_ROOM_MAC,
				BPF_F_ADJ_ROOM_ENCAP_L3_IPV4))
		return SL_V_SHOT;
	if (sl_store(ctx, SL_ETH_HLEN, outer, sizeof(*outer)))
		return SL_V_SHOT;
	return bpf_redirect_neigh(fib->ifindex, NULL, 0, 0);
}

/* After sl_new_flow's SL_DSR_SEND: the entry it wrote, sent from sl_flow's frame. */
static __always_inline int sl_dsr_send_new(sl_ctx_t *ctx, const struct sl_pkt *p)
{
	struct sl_ct *ct = bpf_map_lookup_elem(&conntrack, &p->tuple);

	return ct ? sl_dsr_send(ctx, p, ct) : SL_V_SHOT;
}

/*
 * On the backend's node, ingress, a packet the tc path does not parse
 * (sl_parse failed): if it is a DSR packet to this node, the outer header
 * goes, p is parsed from the inner packet (client -> backend), and the
 * connection's reply entry says that the backend's answers come from the
 * carried service address. 1: decapsulated, the caller forwards p to its
 * destination; 0: not a DSR packet, untouched; -1: drop.
 */
static __noinline int sl_dsr_decap(sl_ctx_t *ctx, struct sl_pkt *p, __u64 now)
{
	struct sl_ct_key key __attribute__((aligned(8)));
	struct sl_dsr_outer outer;
	struct sl_ct reply, *known;
	__u8 node[16] = {};
	__u32 known_addr;

	if (sl_ctx_protocol(ctx) != bpf_htons(SL_ETH_P_IP) ||
	    sl_load(ctx, SL_ETH_HLEN, &outer, sizeof(outer)))
		return 0;
	if (outer.ip.version != 4 || outer.ip.ihl != SL_DSR_OUTER_LEN / 4 ||
	    outer.ip.protocol != SL_IPPROTO_IPIP || outer.opt_type != SL_DSR_OPT_TYPE ||
	    outer.opt_len != SL_DSR_OPT_LEN ||
	    (bpf_ntohs(outer.ip.frag_off) & (SL_IP_MF | SL_IP_OFFSET)))
		return 0;
	__builtin_memcpy(node, &outer.ip.daddr, 4);
	if (!sl_is_node_addr(node, SL_AF_INET))
		return 0;
	/* Linux 6.3+ resets the skb's encapsulation state with the flag; 6.1 has none. */
	if (bpf_skb_adjust_room(ctx, -SL_DSR_OUTER_LEN, BPF_ADJ_ROOM_MAC,
				BPF_F_ADJ_ROOM_DECAP_L3_IPV4) &&
	    bpf_skb_adjust_room(ctx, -SL_DSR_OUTER_LEN, BPF_ADJ_ROOM_MAC, 0))
		return -1;
	if (!sl_parse(ctx, p) || p->icmp_error || p->tuple.family != SL_AF_INET ||
	    (p->tuple.proto != SL_IPPROTO_TCP && p->tuple.proto != SL_IPPROTO_UDP))
		return -1;

	/* The reply direction: backend -> client becomes service -> client. */
	__builtin_memset(&key, 0, sizeof(key));
	__builtin_memcpy(key.saddr, p->tuple.daddr, 4);
	__builtin_memcpy(key.daddr, p->tuple.saddr, 4);
	key.sport = p->tuple.dport;
	key.dport = p->tuple.sport;
	key.proto = p->tuple.proto;
	key.family = SL_AF_INET;
	known = sl_ct_lookup(&key, now);
	if (known)
		__builtin_memcpy(&known_addr, known->new_saddr, 4);
	if (known && (known->flags & SL_CT_F_DSR) && known->new_sport == outer.svc_port &&
	    known_addr == outer.svc_addr) {
		/* A SYN on a closing connection starts it again: the entry lives again. */
		if ((p->tcp_flags & (SL_TCP_SYN | SL_TCP_ACK)) == SL_TCP_SYN)
			known->flags &= ~SL_CT_F_CLOSING;
		sl_ct_touch(&key, known, p->tcp_flags, now);
		return 1;
	}
	__builtin_memset(&reply, 0, sizeof(reply));
	__builtin_memcpy(reply.new_saddr, &outer.svc_addr, 4);
	reply.new_sport = outer.svc_port;
	__builtin_memcpy(reply.new_daddr, p->tuple.saddr, 4);
	reply.new_dport = p->tuple.sport;
	reply.flags = SL_CT_F_REPLY | SL_CT_F_DSR;
	reply.last_seen_ns = now;
	if (bpf_map_update_elem(&conntrack, &key, &reply, BPF_ANY))
		return -1;
	return 1;
}

#endif /* !SL_CTX_XDP */

#endif
