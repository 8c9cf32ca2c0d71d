// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Sockets of the node whose backend left: socket iterators (iter/udp, and
 * iter/tcp with --removed-backend-tcp=terminate; run by the agent after an
 * apply that removed backends) that destroy, with the bpf_sock_destroy()
 * kfunc (Linux 6.5+), every socket connected to a removed backend that the
 * socket programs translated from the frontend it was removed from
 * (revnat: socket cookie and backend -> the address the application
 * dialled). Sockets of other destinations are never touched. The agent
 * loads this object only where the kfunc exists; elsewhere it uses
 * sock_diag (SOCK_DESTROY).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "shared.h"
#include "consts.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

extern int bpf_sock_destroy(struct sock_common *sk) __ksym;

/*
 * The socket programs' revnat (bpf/lib/maps.h), the same definition: the
 * agent hands the pinned map in (bpf_map__reuse_fd) before load. Only this
 * map: maps.h would create every socket map again.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct sl_revnat_key);
	__type(value, struct sl_revnat);
	__uint(max_entries, SL_MAX_REVNAT);
} revnat SEC(".maps");

/* {frontend, removed backend} -> 1, for one run; written by the agent. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct sl_sock_gone_key);
	__type(value, __u32);
	__uint(max_entries, SL_SOCK_GONE_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} sock_gone SEC(".maps");

/* Sockets destroyed by the last runs (the agent reads and resets them). */
__u64 destroyed_udp = 0;
__u64 destroyed_tcp = 0;

static __always_inline bool ipv6_addr_v4mapped(const struct in6_addr *a)
{
	return a->in6_u.u6_addr32[0] == 0 && a->in6_u.u6_addr32[1] == 0 &&
	       a->in6_u.u6_addr32[2] == bpf_htonl(0x0000ffff);
}

/*
 * The socket's destination, translated by the socket programs (revnat has
 * it) from a frontend the agent listed with that backend: destroy it.
 */
static __always_inline bool sl_gone(struct sock *sk, __u8 proto)
{
	struct sl_sock_gone_key gone __attribute__((aligned(8)));
	struct sl_revnat_key key __attribute__((aligned(8)));
	struct sl_revnat *orig;
	__u16 family;

	family = sk->__sk_common.skc_family;
	if (!sk->__sk_common.skc_dport || (family != SL_AF_INET && family != SL_AF_INET6))
		return false;
	__builtin_memset(&key, 0, sizeof(key));
	/* An IPv6 socket connected to a v4-mapped address: revnat has it as IPv4. */
	if (family == SL_AF_INET6 && ipv6_addr_v4mapped(&sk->__sk_common.skc_v6_daddr))
		family = SL_AF_INET;
	if (family == SL_AF_INET)
		__builtin_memcpy(key.addr, &sk->__sk_common.skc_daddr, 4);
	else
		__builtin_memcpy(key.addr, &sk->__sk_common.skc_v6_daddr, 16);
	key.port = sk->__sk_common.skc_dport;
	key.family = family;
	key.cookie = bpf_get_socket_cookie(sk);
	orig = bpf_map_lookup_elem(&revnat, &key);
	if (!orig)
		return false;
	__builtin_memset(&gone, 0, sizeof(gone));
	__builtin_memcpy(gone.frontend_addr, orig->addr, 16);
	__builtin_memcpy(gone.backend_addr, key.addr, 16);
	gone.frontend_port = orig->port;
	gone.backend_port = key.port;
	gone.family = family;
	gone.proto = proto;
	if (bpf_map_lookup_elem(&sock_gone, &gone))
		return true;
	/* A NodePort dialled at a node address: its frontend is the unspecified one. */
	__builtin_memset(gone.frontend_addr, 0, 16);
	return bpf_map_lookup_elem(&sock_gone, &gone) != NULL;
}

SEC("iter/udp")
int sl_udp_destroy(struct bpf_iter__udp *ctx)
{
	struct sock *sk = (struct sock *)ctx->udp_sk;

	if (sk && sl_gone(sk, SL_IPPROTO_UDP) && !bpf_sock_destroy((struct sock_common *)sk))
		__sync_fetch_and_add(&destroyed_udp, 1);
	return 0;
}

/* Full sockets only: TIME_WAIT and request sockets have no application to tell. */
SEC("iter/tcp")
int sl_tcp_destroy(struct bpf_iter__tcp *ctx)
{
	struct sock_common *skc = ctx->sk_common;
	struct tcp_sock *tp;

	if (!skc)
		return 0;
	tp = bpf_skc_to_tcp_sock(skc);
	if (tp && sl_gone((struct sock *)tp, SL_IPPROTO_TCP) &&
	    !bpf_sock_destroy((struct sock_common *)tp))
		__sync_fetch_and_add(&destroyed_tcp, 1);
	return 0;
}
