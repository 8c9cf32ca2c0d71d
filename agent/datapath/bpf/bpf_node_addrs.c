// SPDX-License-Identifier: Apache-2.0
/*
 * The node-address maps of the BPF datapath, kept in line with the
 * addresses of this network namespace's devices (getifaddrs): node_addrs,
 * the node's addresses and whether NodePorts answer on each
 * (--nodeport-addresses), and dev_addrs, each device's SNAT address for the
 * tc path.
 */
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <linux/types.h>
#include <bpf/bpf.h>

#include "datapath/bpf/bpf_node_addrs.h"
#include "lib/xalloc.h"
#include "shared.h"

/* ---- node addresses ---- */

struct addr_entry {
	struct sl_node_addr_key node;
	struct sl_dev_addr_key dev;
	bool has_dev;
};

static bool link_local6(const struct in6_addr *a)
{
	return a->s6_addr[0] == 0xfe && (a->s6_addr[1] & 0xc0) == 0x80;
}

/* Deletes every key of fd for which keep() says no (keys of size key_size). */
static void prune(int fd, size_t key_size, bool (*keep)(const void *key, void *ctx), void *ctx)
{
	unsigned char key[64], next[64], *stale = NULL;
	size_t n = 0, i;
	void *prev = NULL;

	while (bpf_map_get_next_key(fd, prev, next) == 0) {
		memcpy(key, next, key_size);
		prev = key;
		if (keep(key, ctx))
			continue;
		stale = xreallocarray(stale, n + 1, key_size);
		memcpy(stale + n * key_size, key, key_size);
		n++;
	}
	for (i = 0; i < n; i++)
		bpf_map_delete_elem(fd, stale + i * key_size);
	free(stale);
}

struct addr_set {
	struct addr_entry *e;
	size_t n;
};

static bool keep_node(const void *key, void *ctx)
{
	const struct addr_set *set = ctx;
	size_t i;

	for (i = 0; i < set->n; i++) {
		if (!memcmp(&set->e[i].node, key, sizeof(set->e[i].node)))
			return true;
	}
	return false;
}

static bool keep_dev(const void *key, void *ctx)
{
	const struct addr_set *set = ctx;
	size_t i;

	for (i = 0; i < set->n; i++) {
		if (set->e[i].has_dev && !memcmp(&set->e[i].dev, key, sizeof(set->e[i].dev)))
			return true;
	}
	return false;
}

/* SL_NODE_ADDR_* for key; np NULL: what the map holds, else answering. */
static __u32 node_addr_flags(int fd, const struct sl_node_addr_key *key,
			     const struct node_port_addrs *np)
{
	struct ip_addr addr = { .family = key->family == SL_AF_INET ? AF_INET : AF_INET6 };
	__u32 have;

	if (!np)
		return bpf_map_lookup_elem(fd, key, &have) ? SL_NODE_ADDR_NODE_PORT : have;
	memcpy(addr.bytes, key->addr, sizeof(addr.bytes));
	return node_port_addrs_match(np, &addr) ? SL_NODE_ADDR_NODE_PORT : SL_NODE_ADDR_OTHER;
}

int bpf_node_addrs_sync(int node_addrs_fd, int dev_addrs_fd, const struct node_port_addrs *np)
{
	struct ifaddrs *ifa, *it;
	struct addr_set set = { 0 };
	struct sl_dev_addr_key dev_key;
	struct sl_dev_addr dev_addr, have;
	struct addr_entry *e;
	__u32 flags, have_flags;
	size_t n = 0;

	if (getifaddrs(&ifa))
		return -errno;
	for (it = ifa; it; it = it->ifa_next)
		n++;
	set.e = xcalloc(n, sizeof(*set.e));
	for (it = ifa; it; it = it->ifa_next) {
		if (!it->ifa_addr ||
		    (it->ifa_addr->sa_family != AF_INET && it->ifa_addr->sa_family != AF_INET6))
			continue;
		e = &set.e[set.n++];
		memset(e, 0, sizeof(*e));
		if (it->ifa_addr->sa_family == AF_INET) {
			memcpy(e->node.addr, &((struct sockaddr_in *)it->ifa_addr)->sin_addr, 4);
			e->node.family = SL_AF_INET;
		} else {
			memcpy(e->node.addr, &((struct sockaddr_in6 *)it->ifa_addr)->sin6_addr, 16);
			e->node.family = SL_AF_INET6;
		}
		flags = node_addr_flags(node_addrs_fd, &e->node, np);
		if (bpf_map_lookup_elem(node_addrs_fd, &e->node, &have_flags) ||
		    have_flags != flags)
			bpf_map_update_elem(node_addrs_fd, &e->node, &flags, BPF_ANY);
		/* SNAT towards a device: its first address, never loopback or link-local. */
		if ((it->ifa_flags & IFF_LOOPBACK) ||
		    (e->node.family == SL_AF_INET6 &&
		     link_local6(&((struct sockaddr_in6 *)it->ifa_addr)->sin6_addr)))
			continue;
		memset(&dev_key, 0, sizeof(dev_key));
		dev_key.ifindex = if_nametoindex(it->ifa_name);
		dev_key.family = e->node.family;
		if (!dev_key.ifindex || keep_dev(&dev_key, &set))
			continue;
		e->dev = dev_key;
		e->has_dev = true;
		memcpy(dev_addr.addr, e->node.addr, 16);
		if (bpf_map_lookup_elem(dev_addrs_fd, &dev_key, &have) ||
		    memcmp(&have, &dev_addr, sizeof(have)))
			bpf_map_update_elem(dev_addrs_fd, &dev_key, &dev_addr, BPF_ANY);
	}
	freeifaddrs(ifa);
	prune(node_addrs_fd, sizeof(struct sl_node_addr_key), keep_node, &set);
	prune(dev_addrs_fd, sizeof(struct sl_dev_addr_key), keep_dev, &set);
	free(set.e);
	return 0;
}
