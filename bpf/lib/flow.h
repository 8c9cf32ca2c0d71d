/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Load balancing of traffic that reaches the node from outside (NodePorts,
 * externalIPs, LoadBalancer ingress IPs), one implementation for the tc
 * programs (bpf/tc.bpf.c) and the XDP program (bpf/xdp.bpf.c), over the
 * context of ctx.h: a new flow gets a frontend lookup, source ranges, the
 * rate limit, a backend (random, affinity or Maglev), an entry in the
 * connection table, DNAT and (externalTrafficPolicy Cluster) SNAT, or DSR;
 * every later packet of either direction, and ICMP errors about it, are
 * translated by that entry. Translated packets are routed with
 * bpf_fib_lookup() and sent out of the device it names, so a SNATed packet
 * never meets the stack's checks for a local source address arriving from
 * outside. What XDP cannot finish it passes up untouched, to tc (ctx.h).
 */
#ifndef SLUICE_BPF_FLOW_H
#define SLUICE_BPF_FLOW_H

#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "shared.h"
#include "consts.h"
#include "ctx.h"
#include "maps.h"
#include "helpers.h"
#include "limiter.h"
#include "select.h"
#include "maglev.h"
#include "parse.h"
#include "csum.h"
#include "conntrack.h"
#include "nat.h"
#include "reject.h"
#include "dsr.h"
#ifndef SL_CTX_XDP
#include "sctp.h"
#endif

/* A new flow's entries, built here: the stack of all calls together is 512 bytes. */
struct sl_new_flow_scratch {
	struct sl_ct fwd;
	struct sl_ct reply;
	struct sl_affinity_key aff;
	struct sl_service svc;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct sl_new_flow_scratch);
	__uint(max_entries, 1);
} new_flow_scratch SEC(".maps");

/* After translation: send the packet on towards its new destination. */
static __always_inline int sl_forward(sl_ctx_t *ctx, __u8 family, const __u8 daddr[16])
{
	__u32 ifindex;
	int verdict = sl_fib(ctx, family, daddr, &ifindex);

	if (verdict == SL_V_REDIRECT)
		return sl_redirect(ctx, ifindex);
	return verdict;
}

/*
 * The frontend a packet to key's address and port is for: exact, else a
 * NodePort, whose key then takes the unspecified address it is stored under.
 */
static __always_inline bool sl_frontend(struct sl_service_key *key, struct sl_service *svc)
{
	if (sl_service_read(key, svc))
		return true;
	if (!sl_node_port_read(key, svc))
		return false;
	__builtin_memset(key->addr, 0, 16);
	return true;
}

/* loadBalancerSourceRanges: true if the client may reach the frontend. */
static __always_inline bool sl_source_allowed(const struct sl_service_key *fe,
					      const __u8 client[16])
{
	struct sl_source_range_key key __attribute__((aligned(8)));

	__builtin_memset(&key, 0, sizeof(key));
	key.prefixlen = sizeof(key.frontend) * 8 + 128;
	key.frontend = *fe;
	__builtin_memcpy(key.client, client, 16);
	return bpf_map_lookup_elem(&source_ranges, &key) != NULL;
}

/*
 * The address SNAT uses towards ifindex: that device's, as the agent wrote
 * it; else the address the client reached (a NodePort's is the node's).
 */
static __always_inline bool sl_snat_addr(__u32 ifindex, const struct sl_pkt *p, __u8 out[16])
{
	struct sl_dev_addr_key key = { .ifindex = ifindex, .family = p->tuple.family };
	struct sl_dev_addr *dev;

	dev = bpf_map_lookup_elem(&dev_addrs, &key);
	if (dev) {
		__builtin_memcpy(out, dev->addr, 16);
		return true;
	}
	if (!sl_is_node_addr(p->tuple.daddr, p->tuple.family))
		return false;
	__builtin_memcpy(out, p->tuple.daddr, 16);
	return true;
}

/*
 * A packet of no tracked connection: a new flow to a frontend, or not ours.
 * On ingress (from outside, or from a pod behind an attached device);
 * on egress only SCTP to a ClusterIP, which the socket programs never see
 * (SCTP's connect() runs no cgroup hook): the node's own SCTP clients are
 * balanced here, per packet, on the device that routes the ClusterIP.
 */
static __noinline int sl_new_flow(sl_ctx_t *ctx, struct sl_pkt *p, __u64 now, bool ingress)
{
	struct sl_service_key key __attribute__((aligned(8)));
	struct sl_ct_key reply_key __attribute__((aligned(8)));
	struct sl_new_flow_scratch *scratch;
	struct sl_ct *fwd, *reply;
	struct sl_service *svc;
	struct sl_backend *be;
	__u32 kind, slot = 0, ifindex = 0;
	__u8 family = p->tuple.family;
	__u32 zero = 0;
	int verdict, verdict_rw;
	bool routed;

	scratch = bpf_map_lookup_elem(&new_flow_scratch, &zero);
	if (!scratch)
		return SL_V_SHOT;
	fwd = &scratch->fwd;
	reply = &scratch->reply;

	__builtin_memset(&key, 0, sizeof(key));
	__builtin_memcpy(key.addr, p->tuple.daddr, 16);
	key.port = p->tuple.dport;
	key.proto = p->tuple.proto;
	key.family = family;
	svc = &scratch->svc;
	if (!sl_frontend(&key, svc))
		return SL_V_OK;
	kind = svc->flags & SL_SVC_KIND_MASK;
	/* ClusterIPs are the socket programs' (traffic born on the node), but SCTP's. */
	if (kind == SL_KIND_CLUSTER_IP && p->tuple.proto != SL_IPPROTO_SCTP)
		return SL_V_OK;
	if (!ingress && kind != SL_KIND_CLUSTER_IP)
		return SL_V_OK;
	/*
	 * Refusals are counted per packet of no tracked connection: a dropped
	 * client's retransmitted SYN counts again, as on nftables.
	 */
	if ((svc->flags & SL_SVC_F_SOURCE_RANGES) && !sl_source_allowed(&key, p->tuple.saddr)) {
		sl_count_refused(svc->service_id, SL_REFUSED_SOURCE_RANGE);
		return SL_V_SHOT;
	}
	if (svc->action == SL_ACTION_DROP) {
		sl_count_refused(svc->service_id, SL_REFUSED_POLICY_DROP);
		return SL_V_SHOT;
	}
	if (svc->action != SL_ACTION_SERVE || svc->count == 0) {
		sl_count_refused(svc->service_id, SL_REFUSED_NO_ENDPOINTS);
		return sl_reject(ctx, p, !ingress);
	}

	if (!sl_admit_new_flow(svc))
		return sl_reject(ctx, p, !ingress);

	if (svc->affinity_timeout) {
		__builtin_memset(&scratch->aff, 0, sizeof(scratch->aff));
		scratch->aff.frontend = key;
		__builtin_memcpy(scratch->aff.client_addr, p->tuple.saddr, 16);
		be = sl_pick_affine_key(&scratch->aff, family, svc, &slot);
	} else {
		be = sl_pick_flow(svc, &key, p->tuple.saddr, p->tuple.sport, &slot);
	}
	if (!be)
		return sl_reject(ctx, p, !ingress);

	/* Forward: client -> frontend becomes (SNAT address or client) -> backend. */
	__builtin_memset(fwd, 0, sizeof(*fwd));
	__builtin_memcpy(fwd->new_saddr, p->tuple.saddr, 16);
	fwd->new_sport = p->tuple.sport;
	__builtin_memcpy(fwd->new_daddr, be->addr, 16);
	fwd->new_dport = be->port;
	fwd->service_id = svc->service_id;
	fwd->backend_set = svc->backend_set;
	fwd->slot = slot < SL_CT_SLOT_UNKNOWN ? slot : SL_CT_SLOT_UNKNOWN;
	if (kind == SL_KIND_NODE_PORT)
		fwd->flags = SL_CT_F_NODE_PORT;
	if (!ingress)
		fwd->flags |= SL_CT_F_LOCAL_OUT;
	fwd->last_seen_ns = now;
	/* Direct server return to a backend on another node: no reply entry here. */
	if (ingress && sl_dsr_node_of(svc, p, be, fwd->new_saddr)) {
		fwd->flags |= SL_CT_F_DSR;
		if (bpf_map_update_elem(&conntrack, &p->tuple, fwd, BPF_ANY))
			return SL_V_SHOT;
		return SL_DSR_SEND; /* sent by sl_flow: three frames would not fit the stack */
	}

	/* Reply: backend -> (SNAT address or client) becomes frontend -> client. */
	__builtin_memset(reply, 0, sizeof(*reply));
	__builtin_memcpy(reply->new_saddr, p->tuple.daddr, 16);
	reply->new_sport = p->tuple.dport;
	__builtin_memcpy(reply->new_daddr, p->tuple.saddr, 16);
	reply->new_dport = p->tuple.sport;
	reply->flags = SL_CT_F_REPLY;
	reply->service_id = svc->service_id;
	reply->last_seen_ns = now;

	verdict = sl_fib(ctx, family, be->addr, &ifindex);
	if (verdict == SL_V_SHOT)
		return verdict;
	/* XDP's SL_V_TO_TC is routed too: tc sends it, from these entries. */
	routed = verdict == SL_V_REDIRECT || verdict == SL_V_TO_TC;
	/*
	 * A backend on this node itself (verdict OK: delivered locally) keeps
	 * the client's address: its replies leave through egress, where the
	 * egress program translates them, and a local source arriving from
	 * outside would be dropped as a martian.
	 */
	/* A ClusterIP keeps the client's address (kube-proxy masquerades none from the node's pods). */
	if (!(svc->flags & SL_SVC_F_PRESERVE_SOURCE) && kind != SL_KIND_CLUSTER_IP && routed) {
		if (!sl_snat_addr(ifindex, p, fwd->new_saddr))
			return SL_V_SHOT;
		fwd->flags |= SL_CT_F_SNAT;
		reply->flags |= SL_CT_F_SNAT;
	}
	sl_ct_pair_key(&p->tuple, fwd, &reply_key);
	if (fwd->flags & SL_CT_F_SNAT) {
		fwd->new_sport = sl_snat_insert(&reply_key, reply, now);
		if (!fwd->new_sport)
			return SL_V_SHOT; /* every port tried is in use: as a full table */
	} else if (bpf_map_update_elem(&conntrack, &reply_key, reply, BPF_ANY)) {
		return SL_V_SHOT;
	}
	if (bpf_map_update_elem(&conntrack, &p->tuple, fwd, BPF_ANY))
		return SL_V_SHOT;
	/* XDP, a packet it cannot send: up untouched, tc translates it by the entry. */
	if (!sl_can_send(verdict))
		return SL_V_OK;
	verdict_rw = sl_nat_rewrite(ctx, p, fwd);
	if (verdict_rw < 0)
		return SL_V_SHOT;
	p->sctp_crc = verdict_rw == SL_NAT_SCTP_CRC;
	if (verdict == SL_V_REDIRECT)
		return sl_redirect(ctx, ifindex);
	return verdict;
}

/*
 * Slots a UDP flow's backend is looked for in when its frontend's set
 * changed and its own slot no longer holds it (a backend before it in the
 * sorted set came or went). Past these, the flow is balanced again.
 */
#define SL_CT_RESCAN_SLOTS 32

/*
 * --removed-backend-tcp=terminate (set at load): TCP flows are checked as
 * UDP ones; a flow whose backend left is balanced again, and the backend
 * it now meets answers its next segment with a reset.
 */
const volatile bool sl_terminate_tcp = false;

/*
 * A UDP flow's forward entry, on ingress: is its backend still in its
 * frontend's backend set? One lookup (the frontend's entry) while the set
 * is the one the backend was chosen from. When the set changed, the
 * backend is looked for in the new one (its slot, then the first
 * SL_CT_RESCAN_SLOTS slots); found, the entry takes the new set and slot
 * in place, so that later packets pay one lookup again. False if the
 * backend left (or the frontend went, or no longer serves): the caller
 * forgets the connection and makes the packet a new flow. TCP flows are
 * checked only with sl_terminate_tcp (kube-proxy keeps established TCP
 * connections to a removed backend), and one whose backend is not in the
 * slots looked at is kept: a reset is never sent on a guess.
 */
static __noinline bool sl_flow_backend_live(const struct sl_pkt *p, struct sl_ct *ct)
{
	struct sl_service_key key __attribute__((aligned(8)));
	struct sl_backend_key slot_key;
	struct sl_service *svc;
	struct sl_backend *be;
	__u32 set, count, i;

	__builtin_memset(&key, 0, sizeof(key));
	if (!(ct->flags & SL_CT_F_NODE_PORT))
		__builtin_memcpy(key.addr, p->tuple.daddr, 16);
	key.port = p->tuple.dport;
	key.proto = p->tuple.proto;
	key.family = p->tuple.family;
	svc = bpf_map_lookup_elem(&services, &key);
	/* Set 0: an older agent's entry, without SL_CT_F_NODE_PORT; a NodePort's? */
	if (!svc && !ct->backend_set && !(ct->flags & SL_CT_F_NODE_PORT)) {
		__builtin_memset(key.addr, 0, 16);
		svc = bpf_map_lookup_elem(&services, &key);
		if (svc && (svc->flags & SL_SVC_KIND_MASK) == SL_KIND_NODE_PORT)
			ct->flags |= SL_CT_F_NODE_PORT;
		else
			svc = NULL;
	}
	if (!svc)
		return false;
	/*
	 * Read through the pointer: if the element is recycled for another
	 * frontend meanwhile, its set is another one and the check below
	 * decides on it; at worst a flow is balanced again once.
	 */
	set = *(volatile __u32 *)&svc->backend_set;
	if (set == ct->backend_set)
		return true;
	count = *(volatile __u32 *)&svc->count;
	if (svc->action != SL_ACTION_SERVE || !count)
		return false;
	slot_key.backend_set = set;
	slot_key.slot = ct->slot;
	if (ct->slot < count) {
		be = bpf_map_lookup_elem(&backends, &slot_key);
		if (be && be->port == ct->new_dport && sl_addr_equal(be->addr, ct->new_daddr)) {
			ct->backend_set = set;
			return true;
		}
	}
	for (i = 0; i < SL_CT_RESCAN_SLOTS && i < count; i++) {
		slot_key.slot = i;
		be = bpf_map_lookup_elem(&backends, &slot_key);
		if (be && be->port == ct->new_dport && sl_addr_equal(be->addr, ct->new_daddr)) {
			ct->slot = i;
			ct->backend_set = set;
			return true;
		}
	}
	if (p->tuple.proto == SL_IPPROTO_TCP && count > SL_CT_RESCAN_SLOTS) {
		ct->slot = SL_CT_SLOT_UNKNOWN;
		ct->backend_set = set;
		return true;
	}
	return false;
}

/* An ICMP error: translated if it quotes a packet of a tracked connection. */
static __noinline int sl_icmp_error(sl_ctx_t *ctx, struct sl_pkt *p, bool ingress)
{
	struct sl_ct_key key __attribute__((aligned(8)));
	struct sl_ct *ct;

	/* The quote was sent the other way: its reverse is the tuple of this direction. */
	__builtin_memset(&key, 0, sizeof(key));
	__builtin_memcpy(key.saddr, p->inner.daddr, 16);
	__builtin_memcpy(key.daddr, p->inner.saddr, 16);
	key.sport = p->inner.dport;
	key.dport = p->inner.sport;
	key.proto = p->inner.proto;
	key.family = p->inner.family;
	ct = sl_ct_lookup(&key, bpf_ktime_get_ns());
	if (!ct)
		return SL_V_OK;
	if (sl_nat_icmp_error(ctx, p, &key, ct))
		return SL_V_SHOT;
	return ingress ? sl_forward(ctx, p->tuple.family, ct->new_daddr) : SL_V_OK;
}

/*
 * One packet through the external-frontend path: ingress (tc or XDP) or
 * egress (tc). Returns the program's verdict.
 */
static __always_inline int sl_flow(sl_ctx_t *ctx, bool ingress)
{
	struct sl_pkt p;
	struct sl_ct *ct;
	__u64 now;
	int err;
#ifdef SL_CTX_XDP
	__u32 ifindex = 0;
	int verdict;
#endif

	if (!sl_parse(ctx, &p)) {
#ifdef SL_CTX_XDP
		return SL_V_OK;
#else
		/* A DSR packet from another node's ingress (IPIP is not parsed). */
		err = ingress ? sl_dsr_decap(ctx, &p, bpf_ktime_get_ns()) : 0;
		if (err <= 0)
			return err ? SL_V_SHOT : SL_V_OK;
		return sl_forward(ctx, p.tuple.family, p.tuple.daddr);
#endif
	}
	/* XDP leaves ICMP errors and SCTP (its CRC needs the skb) to tc. */
	if (SL_IS_XDP && (p.icmp_error || p.tuple.proto == SL_IPPROTO_SCTP))
		return SL_V_OK;
	if (p.icmp_error)
		return sl_icmp_error(ctx, &p, ingress);
	now = bpf_ktime_get_ns();
	ct = sl_ct_lookup(&p.tuple, now);
	/* A SYN on a closing connection is the client reusing its port: a new flow. */
	if (ct && (ct->flags & SL_CT_F_CLOSING) && !(ct->flags & SL_CT_F_REPLY) &&
	    (p.tcp_flags & (SL_TCP_SYN | SL_TCP_ACK)) == SL_TCP_SYN)
		ct = NULL;
	/* A UDP (or, asked, TCP) flow whose backend left the set: balanced again, as a new flow. */
	if (ct && ingress && !(ct->flags & SL_CT_F_REPLY) &&
	    (p.tuple.proto == SL_IPPROTO_UDP ||
	     (sl_terminate_tcp && p.tuple.proto == SL_IPPROTO_TCP)) &&
	    !sl_flow_backend_live(&p, ct)) {
		sl_ct_forget(&p.tuple, ct);
		ct = NULL;
	}
	if (ct) {
		sl_ct_touch(&p.tuple, ct, p.tcp_flags, now);
		if (ingress && sl_dsr_forward_entry(ct)) {
#ifdef SL_CTX_XDP
			return SL_V_OK;
#else
			return sl_dsr_send(ctx, &p, ct);
#endif
		}
#ifdef SL_CTX_XDP
		/* Routed before the rewrite: a packet XDP cannot send goes to tc untouched. */
		verdict = sl_fib(ctx, p.tuple.family, ct->new_daddr, &ifindex);
		if (!sl_can_send(verdict))
			return SL_V_OK;
#endif
		err = sl_nat_rewrite(ctx, &p, ct);
		if (err < 0)
			return SL_V_SHOT;
		p.sctp_crc = err == SL_NAT_SCTP_CRC;
#ifdef SL_CTX_XDP
		err = verdict == SL_V_REDIRECT ? sl_redirect(ctx, ifindex) : verdict;
#else
		/* A flow leaving the node (SCTP to a ClusterIP) is routed to its backend too. */
		if (ingress || (ct->flags & SL_CT_F_LOCAL_OUT))
			err = sl_forward(ctx, p.tuple.family, ct->new_daddr);
		else
			err = SL_V_OK;
#endif
	} else {
		if (!ingress && p.tuple.proto != SL_IPPROTO_SCTP)
			return SL_V_OK;
		err = sl_new_flow(ctx, &p, now, ingress);
		if (err == SL_DSR_SEND) {
#ifdef SL_CTX_XDP
			return SL_V_OK; /* tc sends it, from the entry just written */
#else
			return sl_dsr_send_new(ctx, &p);
#endif
		}
	}
#ifdef SL_CTX_XDP
	return err;
#else
	if (!p.sctp_crc || err == SL_V_SHOT)
		return err;
	/*
	 * SCTP ports rewritten: the CRC32c, here for both paths (a redirect
	 * takes effect after the program returns). Not in sl_new_flow: three
	 * frames would not fit Linux 6.1's 512-byte stack; the verdict waits
	 * in p, not in a new stack slot.
	 */
	p.verdict = err;
	if (sl_sctp_fix_crc(ctx, p.l4_off))
		return SL_V_SHOT;
	return p.verdict;
#endif
}

#endif
