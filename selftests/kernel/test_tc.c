// SPDX-License-Identifier: Apache-2.0
/*
 * Packet-in/packet-out tests of the tc programs (bpf/tc.bpf.c) with
 * bpf_prog_test_run_opts: new flows (DNAT + SNAT), established flows,
 * replies, ICMP errors, UDP, IPv6, externalTrafficPolicy Local, source
 * ranges, refusal, Maglev. Checksums of every packet out are recomputed here.
 * Runs in a network namespace of its own with two veth pairs (a client
 * side and a backend side), so that the programs' FIB lookups have routes.
 */
#include <errno.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <linux/types.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <cmocka.h>

#include "core/maglev.h"
#include "lib/flow_hash.h"
#include "shared.h"
#include "tc.skel.h"
#include "xdp.skel.h"

#define DEV_CLIENT "sltc0"
#define DEV_BACKEND "sltc1"
#define TC_ACT_OK 0
#define TC_ACT_SHOT 2
#define TC_ACT_REDIRECT 7
#define ETH_LEN 14
#define XDP_DROP 1
#define XDP_PASS 2
#define XDP_TX 3
#define XDP_REDIRECT 4
/* The backend side's next hop, resolved (XDP sends only to a known neighbour). */
#define BACKEND_GW_MAC "02:00:00:00:99:02"

/* The node: client side 192.0.2.1 / 2001:db8:a::1, backend side 10.99.0.1 / fd99::1. */
static const char *setup_cmds[] = {
	"ip link set lo up",
	"ip link add " DEV_CLIENT " type veth peer name " DEV_CLIENT "p",
	"ip link add " DEV_BACKEND " type veth peer name " DEV_BACKEND "p",
	"ip link set " DEV_CLIENT " up",
	"ip link set " DEV_BACKEND " up",
	"ip link set " DEV_CLIENT "p up",
	"ip link set " DEV_BACKEND "p up",
	"ip addr add 192.0.2.1/24 dev " DEV_CLIENT,
	"ip addr add 10.99.0.1/24 dev " DEV_BACKEND,
	"ip -6 addr add 2001:db8:a::1/64 dev " DEV_CLIENT " nodad",
	"ip -6 addr add fd99::1/64 dev " DEV_BACKEND " nodad",
	"ip route add 10.244.0.0/16 via 10.99.0.2 dev " DEV_BACKEND,
	"ip route add 203.0.113.0/24 via 192.0.2.254 dev " DEV_CLIENT,
	"ip route add 198.18.0.0/16 via 192.0.2.254 dev " DEV_CLIENT,
	"ip -6 route add fd00:244::/64 via fd99::2 dev " DEV_BACKEND,
	"ip -6 route add 2001:db8:c::/64 via 2001:db8:a::fe dev " DEV_CLIENT,
	"ip neigh add 10.99.0.2 lladdr " BACKEND_GW_MAC " dev " DEV_BACKEND " nud permanent",
	"ip -6 neigh add fd99::2 lladdr " BACKEND_GW_MAC " dev " DEV_BACKEND " nud permanent",
	"ip neigh add 192.0.2.254 lladdr 02:00:00:00:02:fe dev " DEV_CLIENT " nud permanent",
	"ip -6 neigh add 2001:db8:a::fe lladdr 02:00:00:00:02:fe dev " DEV_CLIENT " nud permanent",
	"sysctl -qw net.ipv4.ip_forward=1",
	"sysctl -qw net.ipv6.conf.all.forwarding=1",
};

static struct tc_bpf *skel;
/* The XDP program over the tc object's maps: one connection table, one bucket. */
static struct xdp_bpf *xskel;
static int if_client, if_backend;

/* ---- addresses and checksums ---- */

static void addr_of(const char *text, uint8_t out[16])
{
	memset(out, 0, 16);
	if (inet_pton(AF_INET, text, out) != 1)
		assert_int_equal(inet_pton(AF_INET6, text, out), 1);
}

static uint32_t sum16(const uint8_t *p, size_t len, uint32_t sum)
{
	size_t i;

	for (i = 0; i + 1 < len; i += 2)
		sum += (p[i] << 8) | p[i + 1];
	if (len & 1)
		sum += p[len - 1] << 8;
	return sum;
}

static uint16_t fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return ~sum & 0xffff;
}

/* The checksum an L4 header over IPv4/IPv6 must carry, computed with its own field 0. */
static uint16_t l4_sum(bool v6, const uint8_t *saddr, const uint8_t *daddr, uint8_t proto,
		       const uint8_t *l4, size_t len, size_t csum_off)
{
	uint8_t copy[2048];
	uint32_t sum = 0;

	memcpy(copy, l4, len);
	copy[csum_off] = copy[csum_off + 1] = 0;
	if (proto != 1) { /* ICMPv4 has no pseudo-header */
		sum = sum16(saddr, v6 ? 16 : 4, sum);
		sum = sum16(daddr, v6 ? 16 : 4, sum);
		sum += proto + len;
	}
	return fold(sum16(copy, len, sum));
}

static uint16_t get16(const uint8_t *p)
{
	return (p[0] << 8) | p[1];
}

/* ---- packets ---- */

struct pkt {
	uint8_t b[2048];
	size_t len;
};

/* The parsed view of a packet out, for asserts. */
struct view {
	bool v6;
	uint8_t proto;
	uint8_t saddr[16], daddr[16];
	uint16_t sport, dport;
	const uint8_t *l3, *l4;
	size_t l4_len;
};

/*
 * Builds eth + IP + L4 (TCP with flags, or UDP with payload), checksums set
 * (UDP over IPv4 with checksum 0 if udp_csum0).
 */
static void build(struct pkt *p, uint8_t proto, const char *src, uint16_t sport, const char *dst,
		  uint16_t dport, uint8_t tcp_flags, bool udp_csum0)
{
	uint8_t saddr[16], daddr[16], *l3 = p->b + ETH_LEN, *l4;
	bool v6 = strchr(src, ':') != NULL;
	size_t l3_len = v6 ? 40 : 20, l4_len = proto == 6 ? 20 : 8 + 4;
	uint16_t sum;

	memset(p, 0, sizeof(*p));
	addr_of(src, saddr);
	addr_of(dst, daddr);
	memcpy(p->b, "\x02\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00\x02", 12);
	p->b[12] = v6 ? 0x86 : 0x08;
	p->b[13] = v6 ? 0xdd : 0x00;
	l4 = l3 + l3_len;
	if (v6) {
		l3[0] = 0x60;
		l3[4] = l4_len >> 8;
		l3[5] = l4_len & 0xff;
		l3[6] = proto;
		l3[7] = 64;
		memcpy(l3 + 8, saddr, 16);
		memcpy(l3 + 24, daddr, 16);
	} else {
		l3[0] = 0x45;
		l3[2] = (l3_len + l4_len) >> 8;
		l3[3] = (l3_len + l4_len) & 0xff;
		l3[8] = 64;
		l3[9] = proto;
		memcpy(l3 + 12, saddr, 4);
		memcpy(l3 + 16, daddr, 4);
		sum = fold(sum16(l3, 20, 0));
		l3[10] = sum >> 8;
		l3[11] = sum & 0xff;
	}
	l4[0] = sport >> 8;
	l4[1] = sport & 0xff;
	l4[2] = dport >> 8;
	l4[3] = dport & 0xff;
	if (proto == 6) {
		l4[4] = 0x11; /* seq 0x11000000 */
		l4[12] = 5 << 4;
		l4[13] = tcp_flags;
		l4[14] = 0xff;
		sum = l4_sum(v6, saddr, daddr, 6, l4, l4_len, 16);
		l4[16] = sum >> 8;
		l4[17] = sum & 0xff;
	} else {
		l4[4] = l4_len >> 8;
		l4[5] = l4_len & 0xff;
		memcpy(l4 + 8, "ping", 4);
		if (!udp_csum0) {
			sum = l4_sum(v6, saddr, daddr, 17, l4, l4_len, 6);
			l4[6] = sum >> 8;
			l4[7] = sum & 0xff;
		}
	}
	p->len = ETH_LEN + l3_len + l4_len;
}

/* Parses a packet out and asserts that every checksum in it is right. */
static void parse_checked(const struct pkt *p, struct view *v)
{
	const uint8_t *l3 = p->b + ETH_LEN;
	size_t l3_len, tot;
	uint16_t csum_off;

	memset(v, 0, sizeof(*v));
	v->v6 = p->b[12] == 0x86;
	v->l3 = l3;
	if (v->v6) {
		l3_len = 40;
		v->proto = l3[6];
		memcpy(v->saddr, l3 + 8, 16);
		memcpy(v->daddr, l3 + 24, 16);
		tot = l3_len + get16(l3 + 4);
	} else {
		l3_len = (l3[0] & 0xf) * 4;
		v->proto = l3[9];
		memcpy(v->saddr, l3 + 12, 4);
		memcpy(v->daddr, l3 + 16, 4);
		tot = get16(l3 + 2);
		assert_int_equal(fold(sum16(l3, l3_len, 0)), 0); /* IPv4 header checksum */
	}
	assert_int_equal(ETH_LEN + tot, p->len);
	v->l4 = l3 + l3_len;
	v->l4_len = tot - l3_len;
	v->sport = get16(v->l4);
	v->dport = get16(v->l4 + 2);
	csum_off = v->proto == 6 ? 16 : v->proto == 17 ? 6 : 2;
	if (v->proto == 17 && !v->v6 && get16(v->l4 + 6) == 0)
		return; /* no UDP checksum */
	assert_int_equal(get16(v->l4 + csum_off),
			 l4_sum(v->v6, v->saddr, v->daddr, v->proto, v->l4, v->l4_len, csum_off));
}

static void assert_addr(const uint8_t *got, const char *want)
{
	uint8_t w[16];
	char buf[INET6_ADDRSTRLEN];

	addr_of(want, w);
	if (memcmp(got, w, strchr(want, ':') ? 16 : 4)) {
		inet_ntop(strchr(want, ':') ? AF_INET6 : AF_INET, got, buf, sizeof(buf));
		fail_msg("address %s, want %s", buf, want);
	}
}

/* Runs a program on p (in place), as if p arrived on (ingress) or left by ifindex. */
static int run(struct bpf_program *prog, struct pkt *p, int ifindex)
{
	struct __sk_buff ctx = { .ifindex = ifindex };
	uint8_t out[2048];
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = p->b, .data_size_in = p->len,
		    .data_out = out, .data_size_out = sizeof(out), .ctx_in = &ctx,
		    .ctx_size_in = sizeof(ctx));

	assert_int_equal(bpf_prog_test_run_opts(bpf_program__fd(prog), &opts), 0);
	memcpy(p->b, out, opts.data_size_out);
	p->len = opts.data_size_out;
	return opts.retval;
}

static int ingress(struct pkt *p, int ifindex)
{
	return run(skel->progs.sl_tc_ingress, p, ifindex);
}

/* Runs the XDP program on p (in place), as if p arrived on ifindex. */
static int xdp_ingress(struct pkt *p, int ifindex)
{
	struct xdp_md ctx = { .data_end = p->len, .ingress_ifindex = ifindex };
	uint8_t out[2048];
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = p->b, .data_size_in = p->len,
		    .data_out = out, .data_size_out = sizeof(out), .ctx_in = &ctx,
		    .ctx_size_in = sizeof(ctx));

	assert_int_equal(
		bpf_prog_test_run_opts(bpf_program__fd(xskel->progs.sl_xdp_ingress), &opts), 0);
	memcpy(p->b, out, opts.data_size_out);
	p->len = opts.data_size_out;
	return opts.retval;
}

/* Loads the XDP object over the tc object's maps (the agent shares them through pins). */
static int xdp_load(void)
{
	struct bpf_map *map, *shared;

	xskel = xdp_bpf__open();
	if (!xskel)
		return -1;
	bpf_object__for_each_map(map, xskel->obj) {
		if (bpf_map__is_internal(map))
			continue;
		shared = bpf_object__find_map_by_name(skel->obj, bpf_map__name(map));
		if (shared && bpf_map__reuse_fd(map, bpf_map__fd(shared)))
			return -1;
	}
	if (xdp_bpf__load(xskel)) {
		fprintf(stderr, "cannot load xdp_bpf: %s\n", strerror(errno));
		return -1;
	}
	return 0;
}

static int count_entries(int fd, size_t key_size)
{
	uint8_t key[64], next[64];
	int n = 0;
	void *prev = NULL;

	while (bpf_map_get_next_key(fd, prev, next) == 0) {
		memcpy(key, next, key_size);
		prev = key;
		n++;
	}
	return n;
}

static void clear_conntrack(void)
{
	int fd = bpf_map__fd(skel->maps.conntrack);
	struct sl_ct_key key;

	while (bpf_map_get_next_key(fd, NULL, &key) == 0)
		bpf_map_delete_elem(fd, &key);
}

/* ---- frontends ---- */

static uint32_t next_set = 1;

/* Writes a frontend with its backends ("addr:port" pairs, v6 as "[addr]:port"). */
static void frontend(const char *addr, uint16_t port, uint8_t proto, uint32_t flags,
		     uint32_t action, const char **backends, int n)
{
	struct sl_service_key key = { 0 };
	struct sl_service svc = { 0 };
	struct sl_backend_key slot = { 0 };
	struct sl_backend be;
	char host[64];
	const char *colon;
	int i;

	addr_of(addr, key.addr);
	key.port = htons(port);
	key.proto = proto;
	key.family = strchr(addr, ':') ? SL_AF_INET6 : SL_AF_INET;
	svc.backend_set = next_set++;
	svc.count = n;
	svc.service_id = 7;
	svc.action = action;
	svc.flags = flags;
	for (i = 0; i < n; i++) {
		memset(&be, 0, sizeof(be));
		colon = strrchr(backends[i], ':');
		snprintf(host, sizeof(host), "%.*s", (int)(colon - backends[i]), backends[i]);
		if (host[0] == '[') {
			memmove(host, host + 1, strlen(host));
			host[strlen(host) - 1] = '\0';
		}
		addr_of(host, be.addr);
		be.port = htons(atoi(colon + 1));
		be.family = key.family;
		slot.backend_set = svc.backend_set;
		slot.slot = i;
		assert_int_equal(bpf_map_update_elem(bpf_map__fd(skel->maps.backends), &slot, &be,
						     BPF_ANY),
				 0);
	}
	assert_int_equal(bpf_map_update_elem(bpf_map__fd(skel->maps.services), &key, &svc, BPF_ANY),
			 0);
}

/* Changes a frontend's entry in place (rate limit, affinity, service id). */
static void frontend_set(const char *addr, uint16_t port, uint8_t proto, uint32_t service_id,
			 uint32_t affinity_timeout, uint64_t rate_interval_ns,
			 uint64_t rate_depth_ns)
{
	int fd = bpf_map__fd(skel->maps.services);
	struct sl_service_key key = { 0 };
	struct sl_service svc;

	addr_of(addr, key.addr);
	key.port = htons(port);
	key.proto = proto;
	key.family = strchr(addr, ':') ? SL_AF_INET6 : SL_AF_INET;
	assert_int_equal(bpf_map_lookup_elem(fd, &key, &svc), 0);
	svc.service_id = service_id;
	svc.affinity_timeout = affinity_timeout;
	svc.rate_interval_ns = rate_interval_ns;
	svc.rate_depth_ns = rate_depth_ns;
	assert_int_equal(bpf_map_update_elem(fd, &key, &svc, BPF_ANY), 0);
}

static void node_addr(const char *addr)
{
	struct sl_node_addr_key key = { 0 };
	__u32 one = 1;

	addr_of(addr, key.addr);
	key.family = strchr(addr, ':') ? SL_AF_INET6 : SL_AF_INET;
	assert_int_equal(
		bpf_map_update_elem(bpf_map__fd(skel->maps.node_addrs), &key, &one, BPF_ANY), 0);
}

static void dev_addr(int ifindex, const char *addr)
{
	struct sl_dev_addr_key key = { .ifindex = ifindex };
	struct sl_dev_addr value;

	addr_of(addr, value.addr);
	key.family = strchr(addr, ':') ? SL_AF_INET6 : SL_AF_INET;
	assert_int_equal(
		bpf_map_update_elem(bpf_map__fd(skel->maps.dev_addrs), &key, &value, BPF_ANY), 0);
}

static int setup(void **state)
{
	size_t i;

	if (unshare(CLONE_NEWNET)) {
		fprintf(stderr, "unshare(CLONE_NEWNET): %s (root needed)\n", strerror(errno));
		return -1;
	}
	for (i = 0; i < sizeof(setup_cmds) / sizeof(setup_cmds[0]); i++) {
		if (system(setup_cmds[i])) {
			fprintf(stderr, "setup failed: %s\n", setup_cmds[i]);
			return -1;
		}
	}
	if_client = if_nametoindex(DEV_CLIENT);
	if_backend = if_nametoindex(DEV_BACKEND);
	skel = tc_bpf__open();
	if (!skel)
		return -1;
	/* Small tables: every LRU map is preallocated. */
	bpf_map__set_max_entries(skel->maps.conntrack, 4096);
	bpf_map__set_max_entries(skel->maps.affinity, 1024);
	bpf_map__set_max_entries(skel->maps.revnat, 1024);
	bpf_map__set_max_entries(skel->maps.udp_flows, 1024);
	if (tc_bpf__load(skel)) {
		fprintf(stderr, "cannot load tc_bpf: %s\n", strerror(errno));
		return -1;
	}
	if (xdp_load())
		return -1;
	node_addr("192.0.2.1");
	node_addr("10.99.0.1");
	node_addr("2001:db8:a::1");
	node_addr("fd99::1");
	dev_addr(if_backend, "10.99.0.1");
	dev_addr(if_backend, "fd99::1");
	dev_addr(if_client, "192.0.2.1");
	dev_addr(if_client, "2001:db8:a::1");
	{
		const char *one[] = { "10.244.1.5:8080" };
		const char *two[] = { "10.244.1.5:8080", "10.244.2.6:8080" };
		const char *udp[] = { "10.244.1.5:5353" };
		const char *six[] = { "[fd00:244::5]:8080" };

		frontend("0.0.0.0", 30080, 6, SL_KIND_NODE_PORT, SL_ACTION_SERVE, one, 1);
		frontend("0.0.0.0", 30081, 6, SL_KIND_NODE_PORT, SL_ACTION_SERVE, two, 2);
		frontend("0.0.0.0", 30053, 17, SL_KIND_NODE_PORT, SL_ACTION_SERVE, udp, 1);
		frontend("0.0.0.0", 30868, 132, SL_KIND_NODE_PORT, SL_ACTION_SERVE, udp, 1);
		frontend("::", 30080, 6, SL_KIND_NODE_PORT, SL_ACTION_SERVE, six, 1);
		frontend("198.51.100.10", 80, 6, SL_KIND_EXTERNAL_IP | SL_SVC_F_PRESERVE_SOURCE,
			 SL_ACTION_SERVE, one, 1);
		frontend("198.51.100.20", 80, 6, SL_KIND_LB_INGRESS | SL_SVC_F_SOURCE_RANGES,
			 SL_ACTION_SERVE, one, 1);
		frontend("0.0.0.0", 30099, 6, SL_KIND_NODE_PORT, SL_ACTION_REFUSE, NULL, 0);
		frontend("0.0.0.0", 30099, 17, SL_KIND_NODE_PORT, SL_ACTION_REFUSE, NULL, 0);
		frontend("::", 30099, 17, SL_KIND_NODE_PORT, SL_ACTION_REFUSE, NULL, 0);
		frontend("0.0.0.0", 30098, 6, SL_KIND_NODE_PORT, SL_ACTION_DROP, NULL, 0);
		frontend("10.96.0.10", 80, 6, SL_KIND_CLUSTER_IP, SL_ACTION_SERVE, one, 1);
	}
	{
		/* 198.51.100.20:80 admits 203.0.113.0/24 only. */
		struct sl_source_range_key key = { 0 };
		__u32 one = 1;

		addr_of("198.51.100.20", key.frontend.addr);
		key.frontend.port = htons(80);
		key.frontend.proto = 6;
		key.frontend.family = SL_AF_INET;
		addr_of("203.0.113.0", key.client);
		key.prefixlen = sizeof(key.frontend) * 8 + 24;
		if (bpf_map_update_elem(bpf_map__fd(skel->maps.source_ranges), &key, &one, BPF_ANY))
			return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	xdp_bpf__destroy(xskel);
	tc_bpf__destroy(skel);
	/* The namespace and its devices go with the process. */
	return 0;
}

/* Sends a TCP SYN from the client to the NodePort; returns the packet out. */
static void nodeport_syn(struct pkt *p, uint16_t node_port, uint16_t client_port)
{
	build(p, 6, "203.0.113.7", client_port, "192.0.2.1", node_port, 0x02, false);
	assert_int_equal(ingress(p, if_client), TC_ACT_REDIRECT);
}

/* ---- tests ---- */

static void new_nodeport_tcp_flow_is_dnated_and_snated(void **state)
{
	struct pkt p;
	struct view v;

	clear_conntrack();
	nodeport_syn(&p, 30080, 40000);
	parse_checked(&p, &v);
	assert_addr(v.daddr, "10.244.1.5");
	assert_int_equal(v.dport, 8080);
	assert_addr(v.saddr, "10.99.0.1"); /* the backend side's address */
	assert_true((v.sport >= 1024 && v.sport < 32768) || v.sport >= 61000);
	assert_int_equal(v.l4[13], 0x02);
	assert_int_equal(count_entries(bpf_map__fd(skel->maps.conntrack), sizeof(struct sl_ct_key)),
			 2);
}

static void established_flow_keeps_backend_and_port(void **state)
{
	struct pkt p;
	struct view first, v;
	int i;

	clear_conntrack();
	nodeport_syn(&p, 30081, 40001);
	parse_checked(&p, &first);
	for (i = 0; i < 20; i++) {
		build(&p, 6, "203.0.113.7", 40001, "192.0.2.1", 30081, 0x10, false);
		assert_int_equal(ingress(&p, if_client), TC_ACT_REDIRECT);
		parse_checked(&p, &v);
		assert_memory_equal(v.daddr, first.daddr, 4);
		assert_int_equal(v.sport, first.sport);
		assert_int_equal(v.l4[13], 0x10);
	}
	assert_int_equal(count_entries(bpf_map__fd(skel->maps.conntrack), sizeof(struct sl_ct_key)),
			 2);
}

static void reply_is_reverse_nated(void **state)
{
	struct pkt p;
	struct view out, v;

	clear_conntrack();
	nodeport_syn(&p, 30080, 40002);
	parse_checked(&p, &out);
	build(&p, 6, "10.244.1.5", 8080, "10.99.0.1", out.sport, 0x12, false);
	assert_int_equal(ingress(&p, if_backend), TC_ACT_REDIRECT);
	parse_checked(&p, &v);
	assert_addr(v.saddr, "192.0.2.1");
	assert_int_equal(v.sport, 30080);
	assert_addr(v.daddr, "203.0.113.7");
	assert_int_equal(v.dport, 40002);
}

static void reply_on_egress_is_reverse_nated(void **state)
{
	struct pkt p;
	struct view v;

	/* Local policy: the backend answers the client itself, maybe not via an attached device. */
	clear_conntrack();
	build(&p, 6, "203.0.113.9", 41000, "198.51.100.10", 80, 0x02, false);
	assert_int_equal(ingress(&p, if_client), TC_ACT_REDIRECT);
	build(&p, 6, "10.244.1.5", 8080, "203.0.113.9", 41000, 0x12, false);
	assert_int_equal(run(skel->progs.sl_tc_egress, &p, if_client), TC_ACT_OK);
	parse_checked(&p, &v);
	assert_addr(v.saddr, "198.51.100.10");
	assert_int_equal(v.sport, 80);
	assert_addr(v.daddr, "203.0.113.9");
}

static void udp_flow_is_translated_both_ways(void **state)
{
	struct pkt p;
	struct view out, v;

	clear_conntrack();
	build(&p, 17, "203.0.113.7", 5000, "192.0.2.1", 30053, 0, false);
	assert_int_equal(ingress(&p, if_client), TC_ACT_REDIRECT);
	parse_checked(&p, &out);
	assert_addr(out.daddr, "10.244.1.5");
	assert_int_equal(out.dport, 5353);
	assert_addr(out.saddr, "10.99.0.1");
	assert_memory_equal(out.l4 + 8, "ping", 4);
	build(&p, 17, "10.244.1.5", 5353, "10.99.0.1", out.sport, 0, false);
	assert_int_equal(ingress(&p, if_backend), TC_ACT_REDIRECT);
	parse_checked(&p, &v);
	assert_addr(v.saddr, "192.0.2.1");
	assert_int_equal(v.sport, 30053);
	assert_addr(v.daddr, "203.0.113.7");
	assert_int_equal(v.dport, 5000);
}

/* CRC32c as SCTP computes it (RFC 4960 appendix B), a bit at a time. */
static uint32_t crc32c(const uint8_t *p, size_t len)
{
	uint32_t crc = 0xffffffff;
	size_t i;
	int k;

	for (i = 0; i < len; i++) {
		crc ^= p[i];
		for (k = 0; k < 8; k++)
			crc = crc & 1 ? (crc >> 1) ^ 0x82f63b78 : crc >> 1;
	}
	return ~crc;
}

/* The checksum field (little-endian on the wire, as Linux writes it) against a fresh CRC32c. */
static bool sctp_crc_ok(const uint8_t *l4, size_t len)
{
	uint8_t copy[2048];
	uint32_t want;

	memcpy(copy, l4, len);
	memset(copy + 8, 0, 4);
	want = crc32c(copy, len);
	return l4[8] == (want & 0xff) && l4[9] == ((want >> 8) & 0xff) &&
	       l4[10] == ((want >> 16) & 0xff) && l4[11] == want >> 24;
}

/* An IPv4 SCTP packet: common header and chunk_len bytes of chunks, CRC32c set. */
static void build_sctp(struct pkt *p, const char *src, uint16_t sport, const char *dst,
		       uint16_t dport, size_t chunk_len)
{
	uint8_t *l3 = p->b + ETH_LEN, *l4 = l3 + 20;
	size_t l4_len = 12 + chunk_len, i;
	uint32_t crc;
	uint16_t sum;

	memset(p, 0, sizeof(*p));
	memcpy(p->b, "\x02\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00\x02\x08\x00", 14);
	l3[0] = 0x45;
	l3[2] = (20 + l4_len) >> 8;
	l3[3] = (20 + l4_len) & 0xff;
	l3[8] = 64;
	l3[9] = 132;
	addr_of(src, l3 + 12);
	addr_of(dst, l3 + 16);
	sum = fold(sum16(l3, 20, 0));
	l3[10] = sum >> 8;
	l3[11] = sum & 0xff;
	l4[0] = sport >> 8;
	l4[1] = sport & 0xff;
	l4[2] = dport >> 8;
	l4[3] = dport & 0xff;
	memcpy(l4 + 4, "\x11\x22\x33\x44", 4); /* verification tag */
	for (i = 0; i < chunk_len; i++)
		l4[12 + i] = (uint8_t)(i * 7 + 1);
	crc = crc32c(l4, l4_len);
	l4[8] = crc & 0xff;
	l4[9] = (crc >> 8) & 0xff;
	l4[10] = (crc >> 16) & 0xff;
	l4[11] = crc >> 24;
	p->len = ETH_LEN + 20 + l4_len;
}

/*
 * SCTP NodePort: DNAT to the targetPort and SNAT of the source port change
 * ports inside the CRC32c, which must be right again after either
 * direction (a short packet and one of full size, with an odd tail).
 */
static void sctp_nodeport_flow_is_translated_with_its_crc32c(void **state)
{
	static const size_t sizes[] = { 20, 1448 };
	struct pkt p;
	const uint8_t *l3, *l4;
	uint16_t snat_port;
	size_t i;

	for (i = 0; i < 2; i++) {
		clear_conntrack();
		build_sctp(&p, "203.0.113.7", 5100, "192.0.2.1", 30868, sizes[i]);
		assert_int_equal(ingress(&p, if_client), TC_ACT_REDIRECT);
		l3 = p.b + ETH_LEN;
		l4 = l3 + 20;
		assert_int_equal(fold(sum16(l3, 20, 0)), 0);
		assert_addr(l3 + 16, "10.244.1.5");
		assert_int_equal(get16(l4 + 2), 5353);
		assert_addr(l3 + 12, "10.99.0.1");
		assert_true(sctp_crc_ok(l4, 12 + sizes[i]));
		snat_port = get16(l4);

		build_sctp(&p, "10.244.1.5", 5353, "10.99.0.1", snat_port, sizes[i]);
		assert_int_equal(ingress(&p, if_backend), TC_ACT_REDIRECT);
		assert_addr(l3 + 12, "192.0.2.1");
		assert_int_equal(get16(l4), 30868);
		assert_addr(l3 + 16, "203.0.113.7");
		assert_int_equal(get16(l4 + 2), 5100);
		assert_true(sctp_crc_ok(l4, 12 + sizes[i]));
	}
}

static void udp_zero_checksum_stays_zero(void **state)
{
	struct pkt p;
	struct view v;

	clear_conntrack();
	build(&p, 17, "203.0.113.8", 5001, "192.0.2.1", 30053, 0, true);
	assert_int_equal(ingress(&p, if_client), TC_ACT_REDIRECT);
	parse_checked(&p, &v);
	assert_addr(v.daddr, "10.244.1.5");
	assert_int_equal(get16(v.l4 + 6), 0);
}

/*
 * The backend answers the SNATed datagram with port unreachable: the
 * client gets it from the frontend, quoting its own datagram.
 */
static void icmp_error_about_flow_is_translated_with_inner_header(void **state)
{
	struct pkt p, err;
	struct view out, v;
	uint8_t *l3, *icmp, *inner;
	uint16_t sum;

	clear_conntrack();
	build(&p, 17, "203.0.113.7", 5002, "192.0.2.1", 30053, 0, false);
	assert_int_equal(ingress(&p, if_client), TC_ACT_REDIRECT);
	parse_checked(&p, &out);

	/* ICMP port unreachable from the backend quoting the translated datagram. */
	memset(&err, 0, sizeof(err));
	memcpy(err.b, p.b, ETH_LEN);
	l3 = err.b + ETH_LEN;
	l3[0] = 0x45;
	l3[3] = 20 + 8 + 20 + 12;
	l3[8] = 64;
	l3[9] = 1;
	memcpy(l3 + 12, out.daddr, 4);
	memcpy(l3 + 16, out.saddr, 4);
	sum = fold(sum16(l3, 20, 0));
	l3[10] = sum >> 8;
	l3[11] = sum & 0xff;
	icmp = l3 + 20;
	icmp[0] = 3;
	icmp[1] = 3;
	memcpy(icmp + 8, out.l3, 20 + 12);
	sum = fold(sum16(icmp, 8 + 32, 0));
	icmp[2] = sum >> 8;
	icmp[3] = sum & 0xff;
	err.len = ETH_LEN + 20 + 8 + 32;

	assert_int_equal(ingress(&err, if_backend), TC_ACT_REDIRECT);
	parse_checked(&err, &v);
	assert_int_equal(v.proto, 1);
	assert_addr(v.saddr, "192.0.2.1");
	assert_addr(v.daddr, "203.0.113.7");
	inner = (uint8_t *)v.l4 + 8;
	assert_int_equal(fold(sum16(inner, 20, 0)), 0); /* quoted IPv4 header checksum */
	assert_addr(inner + 12, "203.0.113.7");
	assert_addr(inner + 16, "192.0.2.1");
	assert_int_equal(get16(inner + 20), 5002);
	assert_int_equal(get16(inner + 22), 30053);
	/* The quoted UDP checksum matches the client's original datagram. */
	assert_int_equal(get16(inner + 26),
			 l4_sum(false, inner + 12, inner + 16, 17, inner + 20, 12, 6));
}

static void ipv6_nodeport_flow_is_translated_both_ways(void **state)
{
	struct pkt p;
	struct view out, v;

	clear_conntrack();
	build(&p, 6, "2001:db8:c::7", 40003, "2001:db8:a::1", 30080, 0x02, false);
	assert_int_equal(ingress(&p, if_client), TC_ACT_REDIRECT);
	parse_checked(&p, &out);
	assert_true(out.v6);
	assert_addr(out.daddr, "fd00:244::5");
	assert_int_equal(out.dport, 8080);
	assert_addr(out.saddr, "fd99::1");
	build(&p, 6, "fd00:244::5", 8080, "fd99::1", out.sport, 0x12, false);
	assert_int_equal(ingress(&p, if_backend), TC_ACT_REDIRECT);
	parse_checked(&p, &v);
	assert_addr(v.saddr, "2001:db8:a::1");
	assert_int_equal(v.sport, 30080);
	assert_addr(v.daddr, "2001:db8:c::7");
	assert_int_equal(v.dport, 40003);
}

/* Packet too big from the backend about the translated IPv6 segment: pseudo-header sums too. */
static void icmp6_error_about_flow_is_translated_with_inner_header(void **state)
{
	struct pkt p, err;
	struct view out, v;
	uint8_t *l3, *icmp, *inner;
	uint16_t sum;

	clear_conntrack();
	build(&p, 6, "2001:db8:c::7", 40010, "2001:db8:a::1", 30080, 0x02, false);
	assert_int_equal(ingress(&p, if_client), TC_ACT_REDIRECT);
	parse_checked(&p, &out);

	memset(&err, 0, sizeof(err));
	memcpy(err.b, p.b, ETH_LEN);
	l3 = err.b + ETH_LEN;
	l3[0] = 0x60;
	l3[5] = 8 + 60;
	l3[6] = 58;
	l3[7] = 64;
	memcpy(l3 + 8, out.daddr, 16);
	memcpy(l3 + 24, out.saddr, 16);
	icmp = l3 + 40;
	icmp[0] = 2; /* packet too big */
	icmp[6] = 0x05;
	icmp[7] = 0x00; /* MTU 1280 */
	memcpy(icmp + 8, out.l3, 60);
	sum = l4_sum(true, l3 + 8, l3 + 24, 58, icmp, 68, 2);
	icmp[2] = sum >> 8;
	icmp[3] = sum & 0xff;
	err.len = ETH_LEN + 40 + 68;

	assert_int_equal(ingress(&err, if_backend), TC_ACT_REDIRECT);
	parse_checked(&err, &v); /* outer ICMPv6 checksum, with the new pseudo-header */
	assert_int_equal(v.proto, 58);
	assert_addr(v.saddr, "2001:db8:a::1");
	assert_addr(v.daddr, "2001:db8:c::7");
	inner = (uint8_t *)v.l4 + 8;
	assert_addr(inner + 8, "2001:db8:c::7");
	assert_addr(inner + 24, "2001:db8:a::1");
	assert_int_equal(get16(inner + 40), 40010);
	assert_int_equal(get16(inner + 42), 30080);
	assert_int_equal(get16(inner + 40 + 16),
			 l4_sum(true, inner + 8, inner + 24, 6, inner + 40, 20, 16));
}

static void local_policy_keeps_client_address(void **state)
{
	struct pkt p;
	struct view v;

	clear_conntrack();
	build(&p, 6, "203.0.113.9", 41001, "198.51.100.10", 80, 0x02, false);
	assert_int_equal(ingress(&p, if_client), TC_ACT_REDIRECT);
	parse_checked(&p, &v);
	assert_addr(v.saddr, "203.0.113.9");
	assert_int_equal(v.sport, 41001);
	assert_addr(v.daddr, "10.244.1.5");
	assert_int_equal(v.dport, 8080);
}

static void source_range_admits_and_blocks(void **state)
{
	struct pkt p;
	struct view v;

	clear_conntrack();
	build(&p, 6, "203.0.113.9", 41002, "198.51.100.20", 80, 0x02, false);
	assert_int_equal(ingress(&p, if_client), TC_ACT_REDIRECT);
	parse_checked(&p, &v);
	assert_addr(v.daddr, "10.244.1.5");
	build(&p, 6, "198.18.0.1", 41003, "198.51.100.20", 80, 0x02, false);
	assert_int_equal(ingress(&p, if_client), TC_ACT_SHOT);
}

static void no_endpoints_tcp_gets_rst(void **state)
{
	struct pkt p;
	struct view v;

	clear_conntrack();
	build(&p, 6, "203.0.113.7", 40004, "192.0.2.1", 30099, 0x02, false);
	assert_int_equal(ingress(&p, if_client), TC_ACT_REDIRECT);
	parse_checked(&p, &v);
	assert_addr(v.saddr, "192.0.2.1");
	assert_int_equal(v.sport, 30099);
	assert_addr(v.daddr, "203.0.113.7");
	assert_int_equal(v.dport, 40004);
	assert_int_equal(v.l4[13], 0x14); /* RST|ACK */
	assert_int_equal(get16(v.l4 + 8), 0x1100); /* ack = their seq + 1 (SYN) */
	assert_int_equal(get16(v.l4 + 10), 0x0001);
	/* Sent back where it came from: MACs swapped. */
	assert_memory_equal(p.b, "\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01", 12);
}

static void no_endpoints_udp_gets_port_unreachable(void **state)
{
	struct pkt p;
	struct view v;

	build(&p, 17, "203.0.113.7", 5003, "192.0.2.1", 30099, 0, false);
	assert_int_equal(ingress(&p, if_client), TC_ACT_REDIRECT);
	parse_checked(&p, &v);
	assert_int_equal(v.proto, 1);
	assert_addr(v.saddr, "192.0.2.1");
	assert_addr(v.daddr, "203.0.113.7");
	assert_int_equal(v.l4[0], 3);
	assert_int_equal(v.l4[1], 3);
	assert_addr(v.l4 + 8 + 12, "203.0.113.7"); /* quoting the datagram */
	assert_int_equal(get16(v.l4 + 8 + 22), 30099);
}

static void no_endpoints_udp6_gets_port_unreachable(void **state)
{
	struct pkt p;
	struct view v;

	build(&p, 17, "2001:db8:c::7", 5004, "2001:db8:a::1", 30099, 0, false);
	assert_int_equal(ingress(&p, if_client), TC_ACT_REDIRECT);
	parse_checked(&p, &v);
	assert_int_equal(v.proto, 58);
	assert_addr(v.saddr, "2001:db8:a::1");
	assert_addr(v.daddr, "2001:db8:c::7");
	assert_int_equal(v.l4[0], 1);
	assert_int_equal(v.l4[1], 4);
	assert_int_equal(get16(v.l4 + 8 + 40 + 2), 30099);
}

static void local_policy_without_local_endpoints_drops(void **state)
{
	struct pkt p;

	build(&p, 6, "203.0.113.7", 40005, "192.0.2.1", 30098, 0x02, false);
	assert_int_equal(ingress(&p, if_client), TC_ACT_SHOT);
}

static void other_traffic_passes_untouched(void **state)
{
	struct pkt p, orig;

	/* A ClusterIP from outside, a node address on a port no NodePort has. */
	build(&p, 6, "203.0.113.7", 40006, "10.96.0.10", 80, 0x02, false);
	orig = p;
	assert_int_equal(ingress(&p, if_client), TC_ACT_OK);
	assert_memory_equal(p.b, orig.b, orig.len);
	build(&p, 6, "203.0.113.7", 40006, "192.0.2.1", 22, 0x02, false);
	orig = p;
	assert_int_equal(ingress(&p, if_client), TC_ACT_OK);
	assert_memory_equal(p.b, orig.b, orig.len);
}

static void fin_shortens_then_syn_starts_new_flow(void **state)
{
	int fd = bpf_map__fd(skel->maps.conntrack);
	struct sl_ct_key key = { 0 };
	struct sl_ct ct;
	struct pkt p;

	clear_conntrack();
	nodeport_syn(&p, 30080, 40007);
	build(&p, 6, "203.0.113.7", 40007, "192.0.2.1", 30080, 0x11, false);
	assert_int_equal(ingress(&p, if_client), TC_ACT_REDIRECT);
	addr_of("203.0.113.7", key.saddr);
	addr_of("192.0.2.1", key.daddr);
	key.sport = htons(40007);
	key.dport = htons(30080);
	key.proto = 6;
	key.family = SL_AF_INET;
	assert_int_equal(bpf_map_lookup_elem(fd, &key, &ct), 0);
	assert_true(ct.flags & SL_CT_F_CLOSING);
	nodeport_syn(&p, 30080, 40007);
	assert_int_equal(bpf_map_lookup_elem(fd, &key, &ct), 0);
	assert_false(ct.flags & SL_CT_F_CLOSING);
}

static void affinity_keeps_client_on_one_backend(void **state)
{
	struct pkt p;
	struct view first, v;
	int i;

	clear_conntrack();
	frontend_set("0.0.0.0", 30081, 6, 8, 10800, 0, 0);
	nodeport_syn(&p, 30081, 42000);
	parse_checked(&p, &first);
	for (i = 1; i < 30; i++) {
		nodeport_syn(&p, 30081, 42000 + i);
		parse_checked(&p, &v);
		assert_memory_equal(v.daddr, first.daddr, 4);
	}
	frontend_set("0.0.0.0", 30081, 6, 7, 0, 0, 0);
}

static void rate_limited_flow_gets_rst_and_is_counted(void **state)
{
	int fd = bpf_map__fd(skel->maps.service_counters);
	int ncpus = libbpf_num_possible_cpus(), cpu;
	struct sl_service_counters counts[ncpus];
	__u64 admitted = 0, limited = 0;
	__u32 id = 9;
	struct pkt p;
	struct view v;

	clear_conntrack();
	/* One flow per 1000 s, burst 1: the first is admitted, the next refused. */
	frontend_set("0.0.0.0", 30080, 6, id, 0, 1000000000000ull, 1000000000000ull);
	nodeport_syn(&p, 30080, 43000);
	parse_checked(&p, &v);
	assert_addr(v.daddr, "10.244.1.5");
	build(&p, 6, "203.0.113.7", 43001, "192.0.2.1", 30080, 0x02, false);
	assert_int_equal(ingress(&p, if_client), TC_ACT_REDIRECT);
	parse_checked(&p, &v);
	assert_addr(v.daddr, "203.0.113.7");
	assert_int_equal(v.l4[13], 0x14); /* RST|ACK */
	assert_int_equal(bpf_map_lookup_elem(fd, &id, counts), 0);
	for (cpu = 0; cpu < ncpus; cpu++) {
		admitted += counts[cpu].admitted;
		limited += counts[cpu].limited;
	}
	assert_int_equal(admitted, 1);
	assert_int_equal(limited, 1);
	frontend_set("0.0.0.0", 30080, 6, 7, 0, 0, 0);
}

/* Replaces a frontend's backends by a new set, as the agent does (new set, then the entry). */
static void frontend_replace(const char *addr, uint16_t port, uint8_t proto, uint32_t flags,
			     const char **backends, int n)
{
	frontend(addr, port, proto, flags, SL_ACTION_SERVE, backends, n);
}

/* A UDP datagram from the client to the NodePort; returns the packet out. */
static void nodeport_udp(struct pkt *p, uint16_t node_port, uint16_t client_port)
{
	build(p, 17, "203.0.113.7", client_port, "192.0.2.1", node_port, 0, false);
	assert_int_equal(ingress(p, if_client), TC_ACT_REDIRECT);
}

static void udp_flow_is_rebalanced_when_its_backend_leaves(void **state)
{
	const char *two[] = { "10.244.1.5:5353", "10.244.2.6:5353" };
	const char *gone5[] = { "10.244.2.6:5353", "10.244.3.7:5353" };
	const char *gone6[] = { "10.244.1.5:5353", "10.244.3.7:5353" };
	int fd = bpf_map__fd(skel->maps.conntrack);
	struct pkt p;
	struct view first, v;
	char host[INET_ADDRSTRLEN];
	bool was5;
	int i;

	clear_conntrack();
	frontend_replace("0.0.0.0", 30054, 17, SL_KIND_NODE_PORT, two, 2);
	nodeport_udp(&p, 30054, 5100);
	parse_checked(&p, &first);
	was5 = !memcmp(first.daddr, "\x0a\xf4\x01\x05", 4);
	/* The set changes but keeps the flow's backend (in another slot): the flow stays. */
	if (was5) {
		const char *moved[] = { "10.244.0.9:5353", "10.244.1.5:5353" };

		frontend_replace("0.0.0.0", 30054, 17, SL_KIND_NODE_PORT, moved, 2);
	} else {
		const char *moved[] = { "10.244.2.6:5353", "10.244.3.7:5353" };

		frontend_replace("0.0.0.0", 30054, 17, SL_KIND_NODE_PORT, moved, 2);
	}
	for (i = 0; i < 5; i++) {
		nodeport_udp(&p, 30054, 5100);
		parse_checked(&p, &v);
		assert_memory_equal(v.daddr, first.daddr, 4);
		assert_int_equal(v.sport, first.sport);
	}
	assert_int_equal(count_entries(fd, sizeof(struct sl_ct_key)), 2);
	/* Now a set without the flow's backend: the next datagram goes to a live one. */
	frontend_replace("0.0.0.0", 30054, 17, SL_KIND_NODE_PORT, was5 ? gone5 : gone6, 2);
	nodeport_udp(&p, 30054, 5100);
	parse_checked(&p, &v);
	assert_memory_not_equal(v.daddr, first.daddr, 4);
	assert_true(!memcmp(v.daddr, was5 ? "\x0a\xf4\x02\x06" : "\x0a\xf4\x01\x05", 4) ||
		    !memcmp(v.daddr, "\x0a\xf4\x03\x07", 4));
	assert_int_equal(v.dport, 5353);
	assert_memory_equal(v.l4 + 8, "ping", 4);
	/* The old connection is gone, the new one tracked: still two entries. */
	assert_int_equal(count_entries(fd, sizeof(struct sl_ct_key)), 2);
	/* And it sticks to its new backend. */
	memcpy(&first, &v, sizeof(v));
	for (i = 0; i < 5; i++) {
		nodeport_udp(&p, 30054, 5100);
		parse_checked(&p, &v);
		assert_memory_equal(v.daddr, first.daddr, 4);
		assert_int_equal(v.sport, first.sport);
	}
	/* Its replies are translated. */
	inet_ntop(AF_INET, first.daddr, host, sizeof(host));
	build(&p, 17, host, 5353, "10.99.0.1", first.sport, 0, false);
	assert_int_equal(ingress(&p, if_backend), TC_ACT_REDIRECT);
	parse_checked(&p, &v);
	assert_addr(v.saddr, "192.0.2.1");
	assert_int_equal(v.sport, 30054);
	assert_addr(v.daddr, "203.0.113.7");
	assert_int_equal(v.dport, 5100);
}

static void udp_flow_of_a_removed_frontend_is_forgotten(void **state)
{
	const char *one[] = { "10.244.1.5:5353" };
	int fd = bpf_map__fd(skel->maps.conntrack);
	struct sl_service_key key = { 0 };
	struct pkt p;

	clear_conntrack();
	frontend_replace("0.0.0.0", 30055, 17, SL_KIND_NODE_PORT, one, 1);
	nodeport_udp(&p, 30055, 5200);
	assert_int_equal(count_entries(fd, sizeof(struct sl_ct_key)), 2);
	key.port = htons(30055);
	key.proto = 17;
	key.family = SL_AF_INET;
	assert_int_equal(bpf_map_delete_elem(bpf_map__fd(skel->maps.services), &key), 0);
	build(&p, 17, "203.0.113.7", 5200, "192.0.2.1", 30055, 0, false);
	assert_int_equal(ingress(&p, if_client), TC_ACT_OK); /* not ours any more */
	assert_int_equal(count_entries(fd, sizeof(struct sl_ct_key)), 0);
}

static void tcp_flow_keeps_its_removed_backend(void **state)
{
	const char *two[] = { "10.244.1.5:8080", "10.244.2.6:8080" };
	const char *other[] = { "10.244.3.7:8080" };
	struct pkt p;
	struct view first, v;
	int i;

	clear_conntrack();
	frontend_replace("0.0.0.0", 30082, 6, SL_KIND_NODE_PORT, two, 2);
	nodeport_syn(&p, 30082, 40100);
	parse_checked(&p, &first);
	frontend_replace("0.0.0.0", 30082, 6, SL_KIND_NODE_PORT, other, 1);
	for (i = 0; i < 5; i++) {
		build(&p, 6, "203.0.113.7", 40100, "192.0.2.1", 30082, 0x10, false);
		assert_int_equal(ingress(&p, if_client), TC_ACT_REDIRECT);
		parse_checked(&p, &v);
		assert_memory_equal(v.daddr, first.daddr, 4);
		assert_int_equal(v.sport, first.sport);
	}
	/* A new connection goes to the new set. */
	nodeport_syn(&p, 30082, 40101);
	parse_checked(&p, &v);
	assert_addr(v.daddr, "10.244.3.7");
}

static void udp_entry_of_an_older_agent_is_adopted(void **state)
{
	const char *one[] = { "10.244.1.5:5353" };
	int fd = bpf_map__fd(skel->maps.conntrack);
	struct sl_ct_key key = { 0 };
	struct sl_ct ct;
	struct pkt p;
	struct view first, v;

	clear_conntrack();
	frontend_replace("0.0.0.0", 30056, 17, SL_KIND_NODE_PORT, one, 1);
	nodeport_udp(&p, 30056, 5300);
	parse_checked(&p, &first);
	/* As an agent before backend_set was kept wrote it: set 0, slot 0, no NodePort flag. */
	addr_of("203.0.113.7", key.saddr);
	addr_of("192.0.2.1", key.daddr);
	key.sport = htons(5300);
	key.dport = htons(30056);
	key.proto = 17;
	key.family = SL_AF_INET;
	assert_int_equal(bpf_map_lookup_elem(fd, &key, &ct), 0);
	ct.backend_set = 0;
	ct.slot = 0;
	ct.flags &= ~SL_CT_F_NODE_PORT;
	assert_int_equal(bpf_map_update_elem(fd, &key, &ct, BPF_EXIST), 0);
	/* Found by its slot (the NodePort entry, set 0 says older): adopted in place. */
	nodeport_udp(&p, 30056, 5300);
	parse_checked(&p, &v);
	assert_addr(v.daddr, "10.244.1.5");
	assert_int_equal(v.sport, first.sport);
	assert_int_equal(bpf_map_lookup_elem(fd, &key, &ct), 0);
	assert_true(ct.flags & SL_CT_F_NODE_PORT);
	assert_int_not_equal(ct.backend_set, 0);
	assert_int_equal(ntohs(ct.new_sport), first.sport);
	assert_int_equal(count_entries(fd, sizeof(struct sl_ct_key)), 2);
}

/* ---- direct server return (bpf/lib/dsr.h) ---- */

/* The DSR node 2 of these tests: on the client side's link, with backend 10.244.7.7. */
#define DSR_NODE "192.0.2.3"

static void dsr_node_of(const char *backend, const char *node)
{
	struct sl_dsr_backend_key key = { 0 };
	struct sl_dsr_node value = { 0 };

	addr_of(backend, key.addr);
	key.family = SL_AF_INET;
	addr_of(node, value.node_addr);
	assert_int_equal(
		bpf_map_update_elem(bpf_map__fd(skel->maps.dsr_nodes), &key, &value, BPF_ANY), 0);
}

/* A TCP SYN carrying an MSS option of mss. */
static void build_syn_mss(struct pkt *p, const char *src, uint16_t sport, const char *dst,
			  uint16_t dport, uint16_t mss)
{
	uint8_t *l3 = p->b + ETH_LEN, *l4 = l3 + 20;
	uint16_t sum;

	build(p, 6, src, sport, dst, dport, 0x02, false);
	l4[12] = 6 << 4;
	l4[20] = 2;
	l4[21] = 4;
	l4[22] = mss >> 8;
	l4[23] = mss & 0xff;
	p->len += 4;
	l3[3] += 4;
	l3[10] = l3[11] = 0;
	sum = fold(sum16(l3, 20, 0));
	l3[10] = sum >> 8;
	l3[11] = sum & 0xff;
	sum = l4_sum(false, l3 + 12, l3 + 16, 6, l4, 24, 16);
	l4[16] = sum >> 8;
	l4[17] = sum & 0xff;
}

/*
 * Asserts the outer header of a DSR packet (IPv4, option 0x1e carrying
 * the service address and port, valid checksum, lengths) and leaves the
 * inner packet in inner, as the backend's node sees it once decapsulated.
 */
static void dsr_outer_checked(const struct pkt *p, const char *from, const char *to,
			      const char *svc, uint16_t svc_port, struct pkt *inner)
{
	const uint8_t *l3 = p->b + ETH_LEN;

	assert_int_equal(p->b[12], 0x08);
	assert_int_equal(p->b[13], 0x00);
	assert_int_equal(l3[0], 0x47); /* IPv4, 28-byte header */
	assert_int_equal(l3[9], 4); /* IPIP */
	assert_int_equal(fold(sum16(l3, 28, 0)), 0);
	assert_int_equal(get16(l3 + 2), p->len - ETH_LEN);
	assert_int_equal(get16(l3 + 6) & 0x4000, 0x4000); /* DF */
	assert_addr(l3 + 12, from);
	assert_addr(l3 + 16, to);
	assert_int_equal(l3[20], 0x1e);
	assert_int_equal(l3[21], 8);
	assert_int_equal(get16(l3 + 22), svc_port);
	assert_addr(l3 + 24, svc);
	memset(inner, 0, sizeof(*inner));
	memcpy(inner->b, p->b, ETH_LEN);
	memcpy(inner->b + ETH_LEN, l3 + 28, p->len - ETH_LEN - 28);
	inner->len = p->len - 28;
}

static int dsr_setup(void)
{
	const char *remote[] = { "10.244.7.7:8080" };

	clear_conntrack();
	dsr_node_of("10.244.7.7", DSR_NODE);
	frontend("0.0.0.0", 30090, 6, SL_KIND_NODE_PORT | SL_SVC_F_DSR, SL_ACTION_SERVE, remote, 1);
	frontend("0.0.0.0", 30091, 17, SL_KIND_NODE_PORT | SL_SVC_F_DSR, SL_ACTION_SERVE, remote,
		 1);
	return 0;
}

static void dsr_flow_is_encapsulated_to_the_backends_node(void **state)
{
	struct pkt p, inner;
	struct view v;
	int i;

	dsr_setup();
	build_syn_mss(&p, "203.0.113.7", 40100, "192.0.2.1", 30090, 1460);
	assert_int_equal(ingress(&p, if_client), TC_ACT_REDIRECT);
	dsr_outer_checked(&p, "192.0.2.1", DSR_NODE, "192.0.2.1", 30090, &inner);
	parse_checked(&inner, &v);
	assert_addr(v.saddr, "203.0.113.7"); /* the client's address is kept */
	assert_int_equal(v.sport, 40100);
	assert_addr(v.daddr, "10.244.7.7");
	assert_int_equal(v.dport, 8080);
	/* MTU 1500: the MSS leaves room for the 28-byte outer header. */
	assert_int_equal(get16(v.l4 + 22), 1500 - 28 - 40);
	/* One entry (forward): no reply passes here. */
	assert_int_equal(count_entries(bpf_map__fd(skel->maps.conntrack), sizeof(struct sl_ct_key)),
			 1);
	for (i = 0; i < 5; i++) {
		build(&p, 6, "203.0.113.7", 40100, "192.0.2.1", 30090, 0x10, false);
		assert_int_equal(ingress(&p, if_client), TC_ACT_REDIRECT);
		dsr_outer_checked(&p, "192.0.2.1", DSR_NODE, "192.0.2.1", 30090, &inner);
		parse_checked(&inner, &v);
		assert_addr(v.daddr, "10.244.7.7");
		assert_int_equal(v.l4[13], 0x10);
	}
	build(&p, 17, "203.0.113.7", 40101, "192.0.2.1", 30091, 0, false);
	assert_int_equal(ingress(&p, if_client), TC_ACT_REDIRECT);
	dsr_outer_checked(&p, "192.0.2.1", DSR_NODE, "192.0.2.1", 30091, &inner);
	parse_checked(&inner, &v);
	assert_addr(v.saddr, "203.0.113.7");
	assert_addr(v.daddr, "10.244.7.7");
	assert_int_equal(v.dport, 8080);
}

static void dsr_to_a_backend_of_unknown_node_uses_snat(void **state)
{
	const char *remote[] = { "10.244.7.8:8080" };
	struct pkt p;
	struct view v;

	clear_conntrack();
	frontend("0.0.0.0", 30092, 6, SL_KIND_NODE_PORT | SL_SVC_F_DSR, SL_ACTION_SERVE, remote, 1);
	nodeport_syn(&p, 30092, 40102);
	parse_checked(&p, &v);
	assert_int_equal(v.proto, 6);
	assert_addr(v.saddr, "10.99.0.1");
	assert_addr(v.daddr, "10.244.7.8");
}

static void dsr_packet_is_decapsulated_and_the_reply_comes_from_the_service(void **state)
{
	struct sl_node_addr_key node = { 0 };
	struct pkt p, inner;
	struct view v;

	/* Node 1's packet, as the test above checks it... */
	dsr_setup();
	build(&p, 6, "203.0.113.7", 40103, "192.0.2.1", 30090, 0x02, false);
	assert_int_equal(ingress(&p, if_client), TC_ACT_REDIRECT);
	dsr_outer_checked(&p, "192.0.2.1", DSR_NODE, "192.0.2.1", 30090, &inner);
	/* ...arrives at node 2, this program with DSR_NODE as its own address. */
	clear_conntrack();
	node_addr(DSR_NODE);
	assert_int_equal(ingress(&p, if_client), TC_ACT_REDIRECT);
	assert_int_equal(p.len, inner.len);
	assert_memory_equal(p.b, inner.b, inner.len);
	parse_checked(&p, &v);
	assert_addr(v.saddr, "203.0.113.7");
	assert_addr(v.daddr, "10.244.7.7");
	assert_int_equal(v.dport, 8080);
	/* The backend's answer leaves from the service address, to the client directly. */
	build(&p, 6, "10.244.7.7", 8080, "203.0.113.7", 40103, 0x12, false);
	assert_int_equal(ingress(&p, if_backend), TC_ACT_REDIRECT);
	parse_checked(&p, &v);
	assert_addr(v.saddr, "192.0.2.1");
	assert_int_equal(v.sport, 30090);
	assert_addr(v.daddr, "203.0.113.7");
	assert_int_equal(v.dport, 40103);
	/* A packet of the same flow again: the entry is kept, not duplicated. */
	build(&p, 6, "203.0.113.7", 40103, "192.0.2.1", 30090, 0x10, false);
	node.family = SL_AF_INET;
	addr_of(DSR_NODE, node.addr);
	bpf_map_delete_elem(bpf_map__fd(skel->maps.node_addrs), &node);
	assert_int_equal(ingress(&p, if_client), TC_ACT_REDIRECT);
	node_addr(DSR_NODE);
	assert_int_equal(ingress(&p, if_client), TC_ACT_REDIRECT);
	assert_int_equal(count_entries(bpf_map__fd(skel->maps.conntrack), sizeof(struct sl_ct_key)),
			 2);
	bpf_map_delete_elem(bpf_map__fd(skel->maps.node_addrs), &node);
}

/* A UDP datagram of IP length ip_len (no UDP checksum), to the DSR NodePort 30091. */
static void build_udp_of(struct pkt *p, size_t ip_len)
{
	uint8_t *l3 = p->b + ETH_LEN;
	uint16_t sum;

	build(p, 17, "203.0.113.7", 40105, "192.0.2.1", 30091, 0, true);
	p->len = ETH_LEN + ip_len;
	l3[2] = ip_len >> 8;
	l3[3] = ip_len & 0xff;
	l3[10] = l3[11] = 0;
	sum = fold(sum16(l3, 20, 0));
	l3[10] = sum >> 8;
	l3[11] = sum & 0xff;
	l3[24] = (ip_len - 20) >> 8;
	l3[25] = (ip_len - 20) & 0xff;
}

static void dsr_packet_too_big_for_the_tunnel_is_dropped(void **state)
{
	struct pkt p, inner;

	dsr_setup();
	/* 1472 + 28 = 1500, the device's MTU: sent. */
	build_udp_of(&p, 1472);
	assert_int_equal(ingress(&p, if_client), TC_ACT_REDIRECT);
	dsr_outer_checked(&p, "192.0.2.1", DSR_NODE, "192.0.2.1", 30091, &inner);
	assert_int_equal(p.len, ETH_LEN + 1500);
	/* One byte more does not fit: dropped (documented), not sent fragmented. */
	build_udp_of(&p, 1473);
	assert_int_equal(ingress(&p, if_client), TC_ACT_SHOT);
}

static void ipip_to_another_address_passes_untouched(void **state)
{
	struct pkt p, inner, orig;

	dsr_setup();
	build(&p, 6, "203.0.113.7", 40104, "192.0.2.1", 30090, 0x02, false);
	assert_int_equal(ingress(&p, if_client), TC_ACT_REDIRECT);
	dsr_outer_checked(&p, "192.0.2.1", DSR_NODE, "192.0.2.1", 30090, &inner);
	/* DSR_NODE is not this node's address: not ours to open. */
	orig = p;
	assert_int_equal(ingress(&p, if_client), TC_ACT_OK);
	assert_memory_equal(p.b, orig.b, orig.len);
}

/* ---- Maglev ---- */

#define MAGLEV_M 251

static const char *const maglev_backends[] = { "10.244.1.5:8080", "10.244.2.6:8080",
					       "10.244.3.7:8080", "10.244.4.8:8080" };

/* Set's table from core/maglev.c, as the agent writes it: word 0 the size, then the slots. */
static void maglev_table(uint32_t set, uint32_t *table)
{
	LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = BPF_F_INNER_MAP);
	struct backend be[4] = { 0 };
	uint32_t i, m = MAGLEV_M;
	int fd;

	for (i = 0; i < 4; i++) {
		be[i].addr.family = AF_INET;
		addr_of("10.244.1.5", be[i].addr.bytes);
		be[i].addr.bytes[2] = i + 1;
		be[i].addr.bytes[3] = i + 5;
		be[i].port = 8080;
	}
	maglev_build(be, 4, m, table);
	fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "test_maglev", 4, 4, m + 1, &opts);
	assert_true(fd >= 0);
	i = 0;
	assert_int_equal(bpf_map_update_elem(fd, &i, &m, BPF_ANY), 0);
	for (i = 1; i <= m; i++)
		assert_int_equal(bpf_map_update_elem(fd, &i, &table[i - 1], BPF_ANY), 0);
	assert_int_equal(bpf_map_update_elem(bpf_map__fd(skel->maps.maglev), &set, &fd, BPF_ANY),
			 0);
	close(fd);
}

/* The slot the table names for a client's flow to NodePort port (the frontend's key hashed). */
static uint32_t maglev_expected(const uint32_t *table, const char *client, uint16_t sport,
				uint16_t port)
{
	uint8_t saddr[16], any[16] = { 0 };

	addr_of(client, saddr);
	return table[sl_flow_hash(saddr, any, htons(sport), htons(port), 6, SL_AF_INET) % MAGLEV_M];
}

/*
 * Every new flow of a Maglev frontend goes where the table says, the same
 * packet again (as another node would see it) to the same backend, and
 * the flows spread over the backends.
 */
static void maglev_flow_takes_the_tables_backend(void **state)
{
	uint32_t table[MAGLEV_M], slot, seen = 0;
	struct pkt p;
	struct view v, again;
	char want[INET_ADDRSTRLEN];
	int i;

	frontend("0.0.0.0", 30082, 6, SL_KIND_NODE_PORT | SL_SVC_F_MAGLEV, SL_ACTION_SERVE,
		 (const char **)maglev_backends, 4);
	maglev_table(next_set - 1, table);
	for (i = 0; i < 64; i++) {
		clear_conntrack();
		nodeport_syn(&p, 30082, 43000 + i);
		parse_checked(&p, &v);
		slot = maglev_expected(table, "203.0.113.7", 43000 + i, 30082);
		snprintf(want, sizeof(want), "%.*s", (int)strcspn(maglev_backends[slot], ":"),
			 maglev_backends[slot]);
		assert_addr(v.daddr, want);
		seen |= 1u << slot;
		/* The identical packet with no connection entry: the same backend. */
		clear_conntrack();
		nodeport_syn(&p, 30082, 43000 + i);
		parse_checked(&p, &again);
		assert_memory_equal(again.daddr, v.daddr, 4);
	}
	assert_int_equal(seen, 0xf);
}

/* A Maglev frontend whose table is missing (mid-adoption, say) still serves, at random. */
static void maglev_without_table_serves_at_random(void **state)
{
	struct pkt p;
	struct view v;

	clear_conntrack();
	frontend("0.0.0.0", 30083, 6, SL_KIND_NODE_PORT | SL_SVC_F_MAGLEV, SL_ACTION_SERVE,
		 (const char **)maglev_backends, 4);
	nodeport_syn(&p, 30083, 44000);
	parse_checked(&p, &v);
	assert_int_equal(v.daddr[0], 10);
	assert_int_equal(v.daddr[1], 244);
	assert_int_equal(v.dport, 8080);
}

/* ---- XDP: the same path, another entry point ---- */

static void xdp_syn(struct pkt *p, uint16_t node_port, uint16_t client_port)
{
	build(p, 6, "203.0.113.7", client_port, "192.0.2.1", node_port, 0x02, false);
}

/* A NodePort SYN: XDP rewrites it as tc does and sends it to the resolved next hop. */
static void xdp_nodeport_flow_is_translated_as_by_tc(void **state)
{
	uint8_t gw[6] = { 0x02, 0, 0, 0, 0x99, 0x02 };
	struct pkt p, q;
	struct view v, w;

	clear_conntrack();
	xdp_syn(&p, 30080, 45000);
	assert_int_equal(xdp_ingress(&p, if_client), XDP_REDIRECT);
	parse_checked(&p, &v);
	assert_memory_equal(p.b, gw, 6);
	assert_int_equal(count_entries(bpf_map__fd(skel->maps.conntrack), sizeof(struct sl_ct_key)),
			 2);
	/* The next segment of the flow, through tc: the entry XDP wrote translates it alike. */
	build(&q, 6, "203.0.113.7", 45000, "192.0.2.1", 30080, 0x10, false);
	assert_int_equal(ingress(&q, if_client), TC_ACT_REDIRECT);
	parse_checked(&q, &w);
	assert_memory_equal(w.saddr, v.saddr, 4);
	assert_memory_equal(w.daddr, v.daddr, 4);
	assert_int_equal(w.sport, v.sport);
	assert_int_equal(w.dport, v.dport);
	/* And tc on a fresh table: the same translation but the random SNAT port. */
	clear_conntrack();
	nodeport_syn(&q, 30080, 45000);
	parse_checked(&q, &w);
	assert_memory_equal(w.saddr, v.saddr, 4);
	assert_addr(v.daddr, "10.244.1.5");
	assert_int_equal(v.dport, 8080);
	assert_addr(v.saddr, "10.99.0.1");
	assert_int_equal(v.l4[13], 0x02);
	/* The established flow through XDP again: the same port as its entry says. */
	build(&q, 6, "203.0.113.7", 45000, "192.0.2.1", 30080, 0x10, false);
	assert_int_equal(xdp_ingress(&q, if_client), XDP_REDIRECT);
	parse_checked(&q, &w);
	assert_addr(w.daddr, "10.244.1.5");
}

/* A UDP datagram to a NodePort: translated, checksum valid (parse_checked sums it). */
static void xdp_udp_flow_is_translated(void **state)
{
	struct pkt p;
	struct view v;

	clear_conntrack();
	build(&p, 17, "203.0.113.7", 45100, "192.0.2.1", 30053, 0, false);
	assert_int_equal(xdp_ingress(&p, if_client), XDP_REDIRECT);
	parse_checked(&p, &v);
	assert_addr(v.daddr, "10.244.1.5");
	assert_int_equal(v.dport, 5353);
}

/* No Service at the address and port: passed up untouched, nothing tracked. */
static void xdp_no_service_passes_untouched(void **state)
{
	struct pkt p, orig;

	clear_conntrack();
	build(&p, 6, "203.0.113.7", 45200, "192.0.2.1", 22, 0x02, false);
	orig = p;
	assert_int_equal(xdp_ingress(&p, if_client), XDP_PASS);
	assert_int_equal(p.len, orig.len);
	assert_memory_equal(p.b, orig.b, p.len);
	assert_int_equal(count_entries(bpf_map__fd(skel->maps.conntrack), sizeof(struct sl_ct_key)),
			 0);
}

/* UDP over IPv4 without a checksum keeps none through XDP's software fix. */
static void xdp_udp_zero_checksum_stays_zero(void **state)
{
	struct pkt p;
	struct view v;

	clear_conntrack();
	build(&p, 17, "203.0.113.8", 5101, "192.0.2.1", 30053, 0, true);
	assert_int_equal(xdp_ingress(&p, if_client), XDP_REDIRECT);
	parse_checked(&p, &v);
	assert_addr(v.daddr, "10.244.1.5");
	assert_int_equal(get16(v.l4 + 6), 0);
}

/* IPv6 (16-byte address sums, a mandatory UDP/TCP checksum): both directions through XDP. */
static void xdp_ipv6_nodeport_flow_is_translated_both_ways(void **state)
{
	struct pkt p;
	struct view out, v;

	clear_conntrack();
	build(&p, 6, "2001:db8:c::7", 45600, "2001:db8:a::1", 30080, 0x02, false);
	assert_int_equal(xdp_ingress(&p, if_client), XDP_REDIRECT);
	parse_checked(&p, &out);
	assert_true(out.v6);
	assert_addr(out.daddr, "fd00:244::5");
	assert_int_equal(out.dport, 8080);
	assert_addr(out.saddr, "fd99::1");
	build(&p, 6, "fd00:244::5", 8080, "fd99::1", out.sport, 0x12, false);
	assert_int_equal(xdp_ingress(&p, if_backend), XDP_REDIRECT);
	parse_checked(&p, &v);
	assert_addr(v.saddr, "2001:db8:a::1");
	assert_int_equal(v.sport, 30080);
	assert_addr(v.daddr, "2001:db8:c::7");
	assert_int_equal(v.dport, 45600);
}

/* SCTP (its CRC needs the skb) goes up to tc untouched, and tc serves it. */
static void xdp_leaves_sctp_to_tc(void **state)
{
	struct pkt p, orig;

	clear_conntrack();
	build_sctp(&p, "203.0.113.7", 45700, "192.0.2.1", 30868, 20);
	orig = p;
	assert_int_equal(xdp_ingress(&p, if_client), XDP_PASS);
	assert_memory_equal(p.b, orig.b, p.len);
	assert_int_equal(count_entries(bpf_map__fd(skel->maps.conntrack), sizeof(struct sl_ct_key)),
			 0);
	assert_int_equal(ingress(&p, if_client), TC_ACT_REDIRECT);
	assert_addr(p.b + ETH_LEN + 16, "10.244.1.5");
	assert_true(sctp_crc_ok(p.b + ETH_LEN + 20, 12 + 20));
}

/* A backend behind a next hop of unknown MAC: XDP writes the entries, tc sends the packet. */
static void xdp_unresolved_neighbour_is_left_to_tc(void **state)
{
	const char *far[] = { "10.245.0.9:8080" };
	struct pkt p, orig;
	struct view v;

	clear_conntrack();
	assert_int_equal(system("ip route add 10.245.0.0/16 via 10.99.0.3 dev " DEV_BACKEND), 0);
	frontend("0.0.0.0", 30084, 6, SL_KIND_NODE_PORT, SL_ACTION_SERVE, far, 1);
	xdp_syn(&p, 30084, 45300);
	orig = p;
	assert_int_equal(xdp_ingress(&p, if_client), XDP_PASS);
	assert_memory_equal(p.b, orig.b, p.len);
	assert_int_equal(count_entries(bpf_map__fd(skel->maps.conntrack), sizeof(struct sl_ct_key)),
			 2);
	assert_int_equal(ingress(&p, if_client), TC_ACT_REDIRECT);
	parse_checked(&p, &v);
	assert_addr(v.daddr, "10.245.0.9");
	assert_addr(v.saddr, "10.99.0.1");
	system("ip route del 10.245.0.0/16");
}

/* A flow over the rate limit: refused with a RST sent back out (XDP_TX), counted once. */
static void xdp_rate_limited_flow_gets_rst_and_is_counted(void **state)
{
	int fd = bpf_map__fd(skel->maps.service_counters);
	int ncpus = libbpf_num_possible_cpus(), cpu;
	struct sl_service_counters counts[ncpus];
	__u64 admitted = 0, limited = 0;
	__u32 id = 10;
	struct pkt p;
	struct view v;

	clear_conntrack();
	frontend_set("0.0.0.0", 30080, 6, id, 0, 1000000000000ull, 1000000000000ull);
	xdp_syn(&p, 30080, 45400);
	assert_int_equal(xdp_ingress(&p, if_client), XDP_REDIRECT);
	xdp_syn(&p, 30080, 45401);
	assert_int_equal(xdp_ingress(&p, if_client), XDP_TX);
	parse_checked(&p, &v);
	assert_addr(v.daddr, "203.0.113.7");
	assert_addr(v.saddr, "192.0.2.1");
	assert_int_equal(v.sport, 30080);
	assert_int_equal(v.dport, 45401);
	assert_int_equal(v.l4[13], 0x14); /* RST|ACK */
	assert_int_equal(bpf_map_lookup_elem(fd, &id, counts), 0);
	for (cpu = 0; cpu < ncpus; cpu++) {
		admitted += counts[cpu].admitted;
		limited += counts[cpu].limited;
	}
	assert_int_equal(admitted, 1);
	assert_int_equal(limited, 1);
	frontend_set("0.0.0.0", 30080, 6, 7, 0, 0, 0);
}

/* No endpoints, UDP: XDP answers with the same port unreachable as tc. */
static void xdp_no_endpoints_udp_gets_port_unreachable(void **state)
{
	struct pkt p, q;

	clear_conntrack();
	build(&p, 17, "203.0.113.7", 45500, "192.0.2.1", 30099, 0, false);
	q = p;
	assert_int_equal(xdp_ingress(&p, if_client), XDP_TX);
	assert_int_equal(ingress(&q, if_client), TC_ACT_REDIRECT);
	assert_int_equal(p.len, q.len);
	/* Byte for byte (the IPv4 ID is 0 in both). */
	assert_memory_equal(p.b, q.b, p.len);
}

/* Maglev: XDP picks the backend tc picks for the same tuple, the table's. */
static void xdp_maglev_picks_the_backend_tc_picks(void **state)
{
	struct pkt p, q;
	struct view v, w;
	int i;

	frontend("0.0.0.0", 30085, 6, SL_KIND_NODE_PORT | SL_SVC_F_MAGLEV, SL_ACTION_SERVE,
		 (const char **)maglev_backends, 4);
	{
		uint32_t table[MAGLEV_M];

		maglev_table(next_set - 1, table);
	}
	/* Every backend is on 10.244/16, routed via the resolved next hop. */
	for (i = 0; i < 32; i++) {
		clear_conntrack();
		xdp_syn(&p, 30085, 46000 + i);
		assert_int_equal(xdp_ingress(&p, if_client), XDP_REDIRECT);
		parse_checked(&p, &v);
		clear_conntrack();
		nodeport_syn(&q, 30085, 46000 + i);
		parse_checked(&q, &w);
		assert_memory_equal(v.daddr, w.daddr, 4);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(new_nodeport_tcp_flow_is_dnated_and_snated),
		cmocka_unit_test(established_flow_keeps_backend_and_port),
		cmocka_unit_test(reply_is_reverse_nated),
		cmocka_unit_test(reply_on_egress_is_reverse_nated),
		cmocka_unit_test(udp_flow_is_translated_both_ways),
		cmocka_unit_test(udp_zero_checksum_stays_zero),
		cmocka_unit_test(sctp_nodeport_flow_is_translated_with_its_crc32c),
		cmocka_unit_test(icmp_error_about_flow_is_translated_with_inner_header),
		cmocka_unit_test(ipv6_nodeport_flow_is_translated_both_ways),
		cmocka_unit_test(icmp6_error_about_flow_is_translated_with_inner_header),
		cmocka_unit_test(local_policy_keeps_client_address),
		cmocka_unit_test(source_range_admits_and_blocks),
		cmocka_unit_test(no_endpoints_tcp_gets_rst),
		cmocka_unit_test(no_endpoints_udp_gets_port_unreachable),
		cmocka_unit_test(no_endpoints_udp6_gets_port_unreachable),
		cmocka_unit_test(local_policy_without_local_endpoints_drops),
		cmocka_unit_test(other_traffic_passes_untouched),
		cmocka_unit_test(fin_shortens_then_syn_starts_new_flow),
		cmocka_unit_test(affinity_keeps_client_on_one_backend),
		cmocka_unit_test(rate_limited_flow_gets_rst_and_is_counted),
		cmocka_unit_test(udp_flow_is_rebalanced_when_its_backend_leaves),
		cmocka_unit_test(udp_flow_of_a_removed_frontend_is_forgotten),
		cmocka_unit_test(tcp_flow_keeps_its_removed_backend),
		cmocka_unit_test(udp_entry_of_an_older_agent_is_adopted),
		cmocka_unit_test(dsr_flow_is_encapsulated_to_the_backends_node),
		cmocka_unit_test(dsr_to_a_backend_of_unknown_node_uses_snat),
		cmocka_unit_test(dsr_packet_is_decapsulated_and_the_reply_comes_from_the_service),
		cmocka_unit_test(dsr_packet_too_big_for_the_tunnel_is_dropped),
		cmocka_unit_test(ipip_to_another_address_passes_untouched),
		cmocka_unit_test(maglev_flow_takes_the_tables_backend),
		cmocka_unit_test(maglev_without_table_serves_at_random),
		cmocka_unit_test(xdp_nodeport_flow_is_translated_as_by_tc),
		cmocka_unit_test(xdp_udp_flow_is_translated),
		cmocka_unit_test(xdp_udp_zero_checksum_stays_zero),
		cmocka_unit_test(xdp_ipv6_nodeport_flow_is_translated_both_ways),
		cmocka_unit_test(xdp_leaves_sctp_to_tc),
		cmocka_unit_test(xdp_no_service_passes_untouched),
		cmocka_unit_test(xdp_unresolved_neighbour_is_left_to_tc),
		cmocka_unit_test(xdp_rate_limited_flow_gets_rst_and_is_counted),
		cmocka_unit_test(xdp_no_endpoints_udp_gets_port_unreachable),
		cmocka_unit_test(xdp_maglev_picks_the_backend_tc_picks),
	};

	/* Loading the programs needs root and the kernel's BTF (CO-RE). */
	if (geteuid() || access("/sys/kernel/btf/vmlinux", R_OK)) {
		printf("ok 1 - test_tc # SKIP needs root and /sys/kernel/btf/vmlinux\n");
		return 0;
	}
	return cmocka_run_group_tests(tests, setup, teardown);
}
