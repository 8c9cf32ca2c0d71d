// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Load balancing of traffic that reaches the node from outside (NodePorts,
 * externalIPs, LoadBalancer ingress IPs), on the clsact hooks of the
 * node's devices: a new flow gets a backend, an entry in the connection
 * table, DNAT and (externalTrafficPolicy Cluster) SNAT; every later packet
 * of either direction, and ICMP errors about it, are translated by that
 * entry. Translated packets are routed with bpf_fib_lookup() and sent with
 * bpf_redirect_neigh(), so a SNATed packet never meets the stack's checks
 * for a local source address arriving from outside.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "shared.h"
#include "consts.h"
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

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* ifindex -> device the agent attached to; written by the agent only (cleanup, sluicectl). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct sl_tc_device);
	__uint(max_entries, SL_MAX_NODE_ADDRS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} tc_devices SEC(".maps");

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

/*
 * Routes the translated packet to daddr: out of the device the FIB names
 * (bpf_redirect_neigh resolves the next hop's MAC), or up the stack when
 * the destination is this node. ifindex_out, if not NULL, gets the device.
 */
static __always_inline int sl_fib(struct __sk_buff *skb, __u8 family, const __u8 daddr[16],
				  __u32 *ifindex_out)
{
	struct bpf_fib_lookup fib;
	long ret;

	__builtin_memset(&fib, 0, sizeof(fib));
	fib.ifindex = skb->ifindex;
	if (family == SL_AF_INET) {
		fib.family = SL_AF_INET;
		__builtin_memcpy(&fib.ipv4_dst, daddr, 4);
	} else {
		fib.family = SL_AF_INET6;
		__builtin_memcpy(fib.ipv6_dst, daddr, 16);
	}
	ret = bpf_fib_lookup(skb, &fib, sizeof(fib), 0);
	if (ret == BPF_FIB_LKUP_RET_SUCCESS || ret == BPF_FIB_LKUP_RET_NO_NEIGH) {
		if (ifindex_out)
			*ifindex_out = fib.ifindex;
		return SL_TC_ACT_REDIRECT;
	}
	if (ifindex_out)
		*ifindex_out = 0;
	/* A local destination (or forwarding off): the stack decides. */
	if (ret == BPF_FIB_LKUP_RET_NOT_FWDED || ret == BPF_FIB_LKUP_RET_FWD_DISABLED)
		return SL_TC_ACT_OK;
	return SL_TC_ACT_SHOT;
}

/* After translation on ingress: send the packet on towards its new destination. */
static __always_inline int sl_forward(struct __sk_buff *skb, __u8 family, const __u8 daddr[16])
{
	__u32 ifindex;
	int verdict = sl_fib(skb, family, daddr, &ifindex);

	if (verdict == SL_TC_ACT_REDIRECT)
		return bpf_redirect_neigh(ifindex, NULL, 0, 0);
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
static __noinline int sl_new_flow(struct __sk_buff *skb, struct sl_pkt *p, __u64 now, bool ingress)
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

	scratch = bpf_map_lookup_elem(&new_flow_scratch, &zero);
	if (!scratch)
		return SL_TC_ACT_SHOT;
	fwd = &scratch->fwd;
	reply = &scratch->reply;

	__builtin_memset(&key, 0, sizeof(key));
	__builtin_memcpy(key.addr, p->tuple.daddr, 16);
	key.port = p->tuple.dport;
	key.proto = p->tuple.proto;
	key.family = family;
	svc = &scratch->svc;
	if (!sl_frontend(&key, svc))
		return SL_TC_ACT_OK;
	kind = svc->flags & SL_SVC_KIND_MASK;
	/* ClusterIPs are the socket programs' (traffic born on the node), but SCTP's. */
	if (kind == SL_KIND_CLUSTER_IP && p->tuple.proto != SL_IPPROTO_SCTP)
		return SL_TC_ACT_OK;
	if (!ingress && kind != SL_KIND_CLUSTER_IP)
		return SL_TC_ACT_OK;
	/*
	 * Refusals are counted per packet of no tracked connection: a dropped
	 * client's retransmitted SYN counts again, as on nftables.
	 */
	if ((svc->flags & SL_SVC_F_SOURCE_RANGES) && !sl_source_allowed(&key, p->tuple.saddr)) {
		sl_count_refused(svc->service_id, SL_REFUSED_SOURCE_RANGE);
		return SL_TC_ACT_SHOT;
	}
	if (svc->action == SL_ACTION_DROP) {
		sl_count_refused(svc->service_id, SL_REFUSED_POLICY_DROP);
		return SL_TC_ACT_SHOT;
	}
	if (svc->action != SL_ACTION_SERVE || svc->count == 0) {
		sl_count_refused(svc->service_id, SL_REFUSED_NO_ENDPOINTS);
		return sl_reject(skb, p, !ingress);
	}

	if (!sl_admit_new_flow(svc))
		return sl_reject(skb, p, !ingress);

	if (svc->affinity_timeout) {
		__builtin_memset(&scratch->aff, 0, sizeof(scratch->aff));
		scratch->aff.frontend = key;
		__builtin_memcpy(scratch->aff.client_addr, p->tuple.saddr, 16);
		be = sl_pick_affine_key(&scratch->aff, family, svc, &slot);
	} else {
		be = sl_pick_flow(svc, &key, p->tuple.saddr, p->tuple.sport, &slot);
	}
	if (!be)
		return sl_reject(skb, p, !ingress);

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
			return SL_TC_ACT_SHOT;
		return SL_DSR_SEND; /* sent by sl_tc: three frames would not fit the stack */
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

	verdict = sl_fib(skb, family, be->addr, &ifindex);
	if (verdict == SL_TC_ACT_SHOT)
		return verdict;
	/*
	 * A backend on this node itself (verdict OK: delivered locally) keeps
	 * the client's address: its replies leave through egress, where the
	 * egress program translates them, and a local source arriving from
	 * outside would be dropped as a martian.
	 */
	/* A ClusterIP keeps the client's address (kube-proxy masquerades none from the node's pods). */
	if (!(svc->flags & SL_SVC_F_PRESERVE_SOURCE) && kind != SL_KIND_CLUSTER_IP &&
	    verdict == SL_TC_ACT_REDIRECT) {
		if (!sl_snat_addr(ifindex, p, fwd->new_saddr))
			return SL_TC_ACT_SHOT;
		fwd->flags |= SL_CT_F_SNAT;
		reply->flags |= SL_CT_F_SNAT;
	}
	sl_ct_pair_key(&p->tuple, fwd, &reply_key);
	if (fwd->flags & SL_CT_F_SNAT) {
		fwd->new_sport = sl_snat_insert(&reply_key, reply, now);
		if (!fwd->new_sport)
			return SL_TC_ACT_SHOT; /* every port tried is in use: as a full table */
	} else if (bpf_map_update_elem(&conntrack, &reply_key, reply, BPF_ANY)) {
		return SL_TC_ACT_SHOT;
	}
	if (bpf_map_update_elem(&conntrack, &p->tuple, fwd, BPF_ANY))
		return SL_TC_ACT_SHOT;
	verdict_rw = sl_nat_rewrite(skb, p, fwd);
	if (verdict_rw < 0)
		return SL_TC_ACT_SHOT;
	p->sctp_crc = verdict_rw == SL_NAT_SCTP_CRC;
	if (verdict == SL_TC_ACT_REDIRECT)
		return bpf_redirect_neigh(ifindex, NULL, 0, 0);
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
static __noinline int sl_icmp_error(struct __sk_buff *skb, struct sl_pkt *p, bool ingress)
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
		return SL_TC_ACT_OK;
	if (sl_nat_icmp_error(skb, p, &key, ct))
		return SL_TC_ACT_SHOT;
	return ingress ? sl_forward(skb, p->tuple.family, ct->new_daddr) : SL_TC_ACT_OK;
}

static __always_inline int sl_tc(struct __sk_buff *skb, bool ingress)
{
	struct sl_pkt p;
	struct sl_ct *ct;
	__u64 now;
	int err;

	if (!sl_parse(skb, &p)) {
		/* A DSR packet from another node's ingress (IPIP is not parsed). */
		err = ingress ? sl_dsr_decap(skb, &p, bpf_ktime_get_ns()) : 0;
		if (err <= 0)
			return err ? SL_TC_ACT_SHOT : SL_TC_ACT_OK;
		return sl_forward(skb, p.tuple.family, p.tuple.daddr);
	}
	if (p.icmp_error)
		return sl_icmp_error(skb, &p, ingress);
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
		if (ingress && sl_dsr_forward_entry(ct))
			return sl_dsr_send(skb, &p, ct);
		err = sl_nat_rewrite(skb, &p, ct);
		if (err < 0)
			return SL_TC_ACT_SHOT;
		p.sctp_crc = err == SL_NAT_SCTP_CRC;
		/* A flow leaving the node (SCTP to a ClusterIP) is routed to its backend too. */
		if (ingress || (ct->flags & SL_CT_F_LOCAL_OUT))
			err = sl_forward(skb, p.tuple.family, ct->new_daddr);
		else
			err = SL_TC_ACT_OK;
	} else {
		if (!ingress && p.tuple.proto != SL_IPPROTO_SCTP)
			return SL_TC_ACT_OK;
		err = sl_new_flow(skb, &p, now, ingress);
		if (err == SL_DSR_SEND)
			return sl_dsr_send_new(skb, &p);
	}
	if (!p.sctp_crc || err == SL_TC_ACT_SHOT)
		return err;
	/*
	 * SCTP ports rewritten: the CRC32c, here for both paths (a redirect
	 * takes effect after the program returns). Not in sl_new_flow: three
	 * frames would not fit Linux 6.1's 512-byte stack; the verdict waits
	 * in p, not in a new stack slot.
	 */
	p.verdict = err;
	if (sl_sctp_fix_crc(skb, p.l4_off))
		return SL_TC_ACT_SHOT;
	return p.verdict;
}

/* Every packet arriving on a device: new flows, both directions of tracked ones. */
SEC("tc")
int sl_tc_ingress(struct __sk_buff *skb)
{
	return sl_tc(skb, true);
}

/*
 * Every packet leaving a device: replies of tracked connections that did
 * not come in through an attached device (a backend on this node, or
 * behind a device the agent did not attach to) are translated here.
 */
SEC("tc")
int sl_tc_egress(struct __sk_buff *skb)
{
	return sl_tc(skb, false);
}
