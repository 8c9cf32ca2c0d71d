// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Socket-level load balancing for traffic born on the node: connect() and
 * sendmsg() to a service frontend are sent to one backend, once per call,
 * and recvmsg()/getpeername() show the service address again.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#include "shared.h"
#include "consts.h"
#include "maps.h"
#include "helpers.h"
#include "limiter.h"
#include "select.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/*
 * Remembers, per socket and backend, the service address the application
 * asked for. Written only when it changes: sendmsg() on an unconnected UDP
 * socket runs for every datagram, and contended LRU updates are costly.
 */
static __always_inline void sl_remember(struct bpf_sock_addr *ctx, __u8 family,
					const struct sl_backend *be,
					const struct sl_service_key *svc_key)
{
	struct sl_revnat_key key __attribute__((aligned(8)));
	struct sl_revnat value __attribute__((aligned(8)));
	struct sl_revnat *known;

	__builtin_memset(&key, 0, sizeof(key));
	__builtin_memset(&value, 0, sizeof(value));
	key.cookie = bpf_get_socket_cookie(ctx);
	__builtin_memcpy(key.addr, be->addr, sizeof(key.addr));
	key.port = be->port;
	key.family = family;
	__builtin_memcpy(value.addr, svc_key->addr, sizeof(value.addr));
	value.port = svc_key->port;

	known = bpf_map_lookup_elem(&revnat, &key);
	if (known && known->port == value.port && sl_addr_equal(known->addr, value.addr))
		return;
	bpf_map_update_elem(&revnat, &key, &value, BPF_ANY);
}

/*
 * The client of session affinity: the socket's bound source address when it
 * has one, else its network namespace (a pod is one netns with one IP).
 */
static __always_inline void sl_affinity_client(struct bpf_sock_addr *ctx, __u8 family,
					       struct sl_affinity_key *key)
{
	struct bpf_sock *sk = ctx->sk;
	__u64 lo, hi;
	__u32 word;

	if (sk) {
		/* One 32-bit context load at a time, as in sl_ctx_load_addr(). */
		if (family == SL_AF_INET) {
			word = sk->src_ip4;
			__builtin_memcpy(key->client_addr, &word, 4);
		} else {
			word = sk->src_ip6[0];
			__builtin_memcpy(key->client_addr, &word, 4);
			word = sk->src_ip6[1];
			__builtin_memcpy(key->client_addr + 4, &word, 4);
			word = sk->src_ip6[2];
			__builtin_memcpy(key->client_addr + 8, &word, 4);
			word = sk->src_ip6[3];
			__builtin_memcpy(key->client_addr + 12, &word, 4);
		}
		__builtin_memcpy(&lo, key->client_addr, 8);
		__builtin_memcpy(&hi, key->client_addr + 8, 8);
		if (lo | hi)
			return;
	}
	key->netns_cookie = bpf_get_netns_cookie(ctx);
}

/* Session affinity ClientIP for a socket: see sl_affinity_client() for who the client is. */
static __always_inline struct sl_backend *sl_pick_affine(struct bpf_sock_addr *ctx, __u8 family,
							 const struct sl_service_key *fe,
							 const struct sl_service *svc, __u32 *slot)
{
	struct sl_affinity_key key __attribute__((aligned(8)));

	__builtin_memset(&key, 0, sizeof(key));
	key.frontend = *fe;
	sl_affinity_client(ctx, family, &key);
	return sl_pick_affine_key(&key, family, svc, slot);
}

/*
 * connect() and sendmsg(): frontend -> backend, or refuse, or pass through.
 * mapped: an IPv6 socket dialling an IPv4-mapped address, translated through
 * the IPv4 frontends (family SL_AF_INET) to the mapped backend address.
 */
static __always_inline int sl_translate(struct bpf_sock_addr *ctx, __u8 family, bool mapped,
					bool datagram)
{
	struct sl_service_key key __attribute__((aligned(8)));
	struct sl_flow_key flow_key __attribute__((aligned(8)));
	struct sl_flow flow __attribute__((aligned(8)));
	struct sl_service svc_copy __attribute__((aligned(8)));
	struct sl_service *svc = &svc_copy;
	struct sl_backend *be = NULL;
	struct sl_flow *known;
	__u32 slot = 0;

	__builtin_memset(&key, 0, sizeof(key));
	sl_ctx_load_addr(ctx, family, mapped, key.addr);
	key.port = sl_ctx_load_port(ctx);
	key.proto = sl_sock_proto(ctx);
	key.family = family;

	if (!sl_service_read(&key, svc) && !sl_node_port_read(&key, svc)) {
		/* A known service address with a port it does not serve: refuse, as kube-proxy. */
		key.port = 0;
		key.proto = 0;
		if (bpf_map_lookup_elem(&services, &key))
			return sl_fail_with(SL_ECONNREFUSED);
		return SL_VERDICT_ALLOW;
	}
	/*
	 * externalTrafficPolicy Local holds only traffic from outside to this
	 * node's endpoints: kube-proxy sends traffic born on the node to the
	 * cluster-wide set. A field test of the copy: no lookup.
	 */
	if (svc->flags & SL_SVC_F_NODE_SET) {
		svc->backend_set = svc->node_set;
		svc->count = svc->node_count;
		svc->action = svc->node_count ? SL_ACTION_SERVE : SL_ACTION_REFUSE;
	}
	/* Local policy, endpoints elsewhere: kube-proxy drops, so the client times out. */
	if (svc->action == SL_ACTION_DROP) {
		sl_count_refused(svc->service_id, SL_REFUSED_POLICY_DROP);
		return sl_fail_with(SL_ETIMEDOUT);
	}
	if (svc->action != SL_ACTION_SERVE || svc->count == 0) {
		sl_count_refused(svc->service_id, SL_REFUSED_NO_ENDPOINTS);
		return sl_fail_with(SL_ECONNREFUSED);
	}

	/* Unconnected UDP: a later datagram of a known (socket, frontend) flow is no new flow. */
	if (datagram) {
		__builtin_memset(&flow_key, 0, sizeof(flow_key));
		flow_key.cookie = bpf_get_socket_cookie(ctx);
		flow_key.frontend = key;
		known = bpf_map_lookup_elem(&udp_flows, &flow_key);
		if (known)
			be = sl_slot_holds(svc, known->slot, family, known->addr, known->port);
		if (be)
			goto translate;
	}

	/* A new flow: charge the Service's bucket; refused like a port without endpoints. */
	if (!sl_admit_new_flow(svc))
		return sl_fail_with(SL_ECONNREFUSED);

	if (svc->affinity_timeout)
		be = sl_pick_affine(ctx, family, &key, svc, &slot);
	else
		be = sl_pick(svc, family, &slot);
	if (!be)
		return sl_fail_with(SL_ECONNREFUSED);

	if (datagram) {
		__builtin_memset(&flow, 0, sizeof(flow));
		__builtin_memcpy(flow.addr, be->addr, sizeof(flow.addr));
		flow.port = be->port;
		flow.family = be->family;
		flow.slot = slot;
		bpf_map_update_elem(&udp_flows, &flow_key, &flow, BPF_ANY);
	}
translate:
	sl_remember(ctx, family, be, &key);
	sl_ctx_store(ctx, family, mapped, be->addr, be->port);
	return SL_VERDICT_ALLOW;
}

/* recvmsg() and getpeername(): backend -> the service address the socket asked for. */
static __always_inline int sl_reverse(struct bpf_sock_addr *ctx, __u8 family, bool mapped)
{
	struct sl_revnat_key key __attribute__((aligned(8)));
	struct sl_revnat *orig;

	__builtin_memset(&key, 0, sizeof(key));
	sl_ctx_load_addr(ctx, family, mapped, key.addr);
	key.cookie = bpf_get_socket_cookie(ctx);
	key.port = sl_ctx_load_port(ctx);
	key.family = family;

	orig = bpf_map_lookup_elem(&revnat, &key);
	if (orig)
		sl_ctx_store(ctx, family, mapped, orig->addr, orig->port);
	return SL_VERDICT_ALLOW;
}

SEC("cgroup/connect4")
int sl_connect4(struct bpf_sock_addr *ctx)
{
	return sl_translate(ctx, SL_AF_INET, false, false);
}

/* TCP and connected UDP on an IPv6 socket, to an IPv6 or an IPv4-mapped address. */
SEC("cgroup/connect6")
int sl_connect6(struct bpf_sock_addr *ctx)
{
	if (sl_ctx_v4_mapped(ctx))
		return sl_translate(ctx, SL_AF_INET, true, false);
	return sl_translate(ctx, SL_AF_INET6, false, false);
}

/* Also runs for IPv6 sockets sending to an IPv4-mapped address (udpv6_sendmsg -> udp_sendmsg). */
SEC("cgroup/sendmsg4")
int sl_sendmsg4(struct bpf_sock_addr *ctx)
{
	return sl_translate(ctx, SL_AF_INET, false, true);
}

/* The kernel never runs this hook for a mapped destination (sendmsg4 does): pass it. */
SEC("cgroup/sendmsg6")
int sl_sendmsg6(struct bpf_sock_addr *ctx)
{
	if (sl_ctx_v4_mapped(ctx))
		return SL_VERDICT_ALLOW;
	return sl_translate(ctx, SL_AF_INET6, false, true);
}

SEC("cgroup/recvmsg4")
int sl_recvmsg4(struct bpf_sock_addr *ctx)
{
	return sl_reverse(ctx, SL_AF_INET, false);
}

/* An IPv4 peer of an IPv6 socket shows as mapped; its revnat entry is the IPv4 one. */
SEC("cgroup/recvmsg6")
int sl_recvmsg6(struct bpf_sock_addr *ctx)
{
	if (sl_ctx_v4_mapped(ctx))
		return sl_reverse(ctx, SL_AF_INET, true);
	return sl_reverse(ctx, SL_AF_INET6, false);
}

SEC("cgroup/getpeername4")
int sl_getpeername4(struct bpf_sock_addr *ctx)
{
	return sl_reverse(ctx, SL_AF_INET, false);
}

SEC("cgroup/getpeername6")
int sl_getpeername6(struct bpf_sock_addr *ctx)
{
	if (sl_ctx_v4_mapped(ctx))
		return sl_reverse(ctx, SL_AF_INET, true);
	return sl_reverse(ctx, SL_AF_INET6, false);
}
