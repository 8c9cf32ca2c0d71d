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

/* connect() and sendmsg(): frontend -> backend, or refuse, or pass through. */
static __always_inline int sl_translate(struct bpf_sock_addr *ctx, __u8 family)
{
	struct sl_service_key key __attribute__((aligned(8)));
	struct sl_backend_key slot_key;
	struct sl_service *svc;
	struct sl_backend *be;

	__builtin_memset(&key, 0, sizeof(key));
	if (!sl_ctx_load_addr(ctx, family, key.addr))
		return SL_VERDICT_ALLOW;
	key.port = sl_ctx_load_port(ctx);
	key.proto = sl_sock_proto(ctx);
	key.family = family;

	svc = bpf_map_lookup_elem(&services, &key);
	if (!svc) {
		/* A known service address with a port it does not serve: refuse, as kube-proxy. */
		key.port = 0;
		key.proto = 0;
		if (bpf_map_lookup_elem(&services, &key))
			return sl_fail_with(SL_ECONNREFUSED);
		return SL_VERDICT_ALLOW;
	}
	/* Local policy, endpoints elsewhere: kube-proxy drops, so the client times out. */
	if (svc->action == SL_ACTION_DROP)
		return sl_fail_with(SL_ETIMEDOUT);
	if (svc->action != SL_ACTION_SERVE || svc->count == 0)
		return sl_fail_with(SL_ECONNREFUSED);

	slot_key.backend_set = svc->backend_set;
	slot_key.slot = bpf_get_prandom_u32() % svc->count;
	be = bpf_map_lookup_elem(&backends, &slot_key);
	if (!be || be->family != family)
		return sl_fail_with(SL_ECONNREFUSED);

	sl_remember(ctx, family, be, &key);
	sl_ctx_store(ctx, family, be->addr, be->port);
	return SL_VERDICT_ALLOW;
}

/* recvmsg() and getpeername(): backend -> the service address the socket asked for. */
static __always_inline int sl_reverse(struct bpf_sock_addr *ctx, __u8 family)
{
	struct sl_revnat_key key __attribute__((aligned(8)));
	struct sl_revnat *orig;

	__builtin_memset(&key, 0, sizeof(key));
	if (!sl_ctx_load_addr(ctx, family, key.addr))
		return SL_VERDICT_ALLOW;
	key.cookie = bpf_get_socket_cookie(ctx);
	key.port = sl_ctx_load_port(ctx);
	key.family = family;

	orig = bpf_map_lookup_elem(&revnat, &key);
	if (orig)
		sl_ctx_store(ctx, family, orig->addr, orig->port);
	return SL_VERDICT_ALLOW;
}

SEC("cgroup/connect4")
int sl_connect4(struct bpf_sock_addr *ctx)
{
	return sl_translate(ctx, SL_AF_INET);
}

SEC("cgroup/connect6")
int sl_connect6(struct bpf_sock_addr *ctx)
{
	return sl_translate(ctx, SL_AF_INET6);
}

SEC("cgroup/sendmsg4")
int sl_sendmsg4(struct bpf_sock_addr *ctx)
{
	return sl_translate(ctx, SL_AF_INET);
}

SEC("cgroup/sendmsg6")
int sl_sendmsg6(struct bpf_sock_addr *ctx)
{
	return sl_translate(ctx, SL_AF_INET6);
}

SEC("cgroup/recvmsg4")
int sl_recvmsg4(struct bpf_sock_addr *ctx)
{
	return sl_reverse(ctx, SL_AF_INET);
}

SEC("cgroup/recvmsg6")
int sl_recvmsg6(struct bpf_sock_addr *ctx)
{
	return sl_reverse(ctx, SL_AF_INET6);
}

SEC("cgroup/getpeername4")
int sl_getpeername4(struct bpf_sock_addr *ctx)
{
	return sl_reverse(ctx, SL_AF_INET);
}

SEC("cgroup/getpeername6")
int sl_getpeername6(struct bpf_sock_addr *ctx)
{
	return sl_reverse(ctx, SL_AF_INET6);
}
