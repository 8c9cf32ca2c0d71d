// SPDX-License-Identifier: Apache-2.0
/*
 * make bench helper: the per-packet cost of the tc ingress program
 * (bpf/tc.bpf.c) against an empty tc program, with bpf_prog_test_run_opts,
 * at each service count given (ascending; default 1 and 10000), the maps
 * filled from one count to the next. Prints "key value" lines (ns per
 * packet). --per-cpu-lru: the connection table with per-CPU LRU lists
 * (BPF_F_NO_COMMON_LRU) in place of the common one, to compare the two.
 *
 * --xdp (bench/xdp.sh): the XDP program (bpf/xdp.bpf.c, over the same maps)
 * and an empty XDP program too, keys prefixed tc- and xdp-, the baselines
 * suffixed "" at the first count and -again at the last.
 *
 * Usage: tc-cost [--per-cpu-lru] [--xdp] [N...]
 *
 * A test run with repeat reuses one skb, so a packet the program rewrites is
 * seen rewritten from the second run on: only a packet the program passes
 * untouched (no service) is timed with repeat. Translated packets (new and
 * established NodePort flows, and the same encapsulated for direct server
 * return) are timed one run per call, against the empty program timed the
 * same way. Runs in a network namespace of its own (its
 * devices go with the process), as selftests/unit/test_tc.c does.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/bpf.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "shared.h"
#include "tc.skel.h"
#include "xdp.skel.h"

#define ETH_LEN 14
#define TC_ACT_OK 0
#define TC_ACT_REDIRECT 7
#define XDP_PASS 2
#define XDP_REDIRECT 4
#define REPEAT 200000
#define SINGLE_RUNS 20000
#define NEW_FLOWS 20000

static const char *setup_cmds[] = {
	"ip link set lo up",
	"ip link add slb0 type veth peer name slb0p",
	"ip link add slb1 type veth peer name slb1p",
	"ip link set slb0 up",
	"ip link set slb1 up",
	"ip link set slb0p up",
	"ip link set slb1p up",
	"ip addr add 192.0.2.1/24 dev slb0",
	"ip addr add 10.99.0.1/24 dev slb1",
	"ip route add 10.244.0.0/16 via 10.99.0.2 dev slb1",
	"ip route add 203.0.113.0/24 via 192.0.2.254 dev slb0",
	/* Resolved: XDP sends only to a next hop whose MAC is known. */
	"ip neigh add 10.99.0.2 lladdr 02:00:00:00:99:02 dev slb1 nud permanent",
	"sysctl -qw net.ipv4.ip_forward=1",
};

static struct tc_bpf *skel;
static struct xdp_bpf *xskel;
static int if_client, if_backend, empty_fd;
static unsigned int last_retval; /* the verdict of the latest test run */
/* The program measured next is an XDP one (xdp_md context, XDP verdicts). */
static bool run_xdp;

struct pkt {
	uint8_t b[128];
	uint32_t len;
};

static uint16_t csum(const uint8_t *p, size_t len, uint32_t sum)
{
	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (p[i] << 8) | p[i + 1];
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return ~sum & 0xffff;
}

/* eth + IPv4 + TCP with the given flags, checksums right. */
static void tcp_packet(struct pkt *p, const char *src, uint16_t sport, const char *dst,
		       uint16_t dport, uint8_t flags)
{
	uint8_t *ip = p->b + ETH_LEN, *tcp = ip + 20, pseudo[12 + 20];
	uint16_t sum;

	memset(p, 0, sizeof(*p));
	memcpy(p->b, "\x02\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00\x02\x08\x00", ETH_LEN);
	ip[0] = 0x45;
	ip[3] = 40;
	ip[8] = 64;
	ip[9] = 6;
	inet_pton(AF_INET, src, ip + 12);
	inet_pton(AF_INET, dst, ip + 16);
	sum = csum(ip, 20, 0);
	ip[10] = sum >> 8;
	ip[11] = sum & 0xff;
	tcp[0] = sport >> 8;
	tcp[1] = sport & 0xff;
	tcp[2] = dport >> 8;
	tcp[3] = dport & 0xff;
	tcp[12] = 5 << 4;
	tcp[13] = flags;
	tcp[14] = 0xff;
	memcpy(pseudo, ip + 12, 8);
	pseudo[8] = 0;
	pseudo[9] = 6;
	pseudo[10] = 0;
	pseudo[11] = 20;
	memcpy(pseudo + 12, tcp, 20);
	sum = csum(pseudo, sizeof(pseudo), 0);
	tcp[16] = sum >> 8;
	tcp[17] = sum & 0xff;
	p->len = ETH_LEN + 40;
}

/* One test run of prog_fd on p, arriving on ifindex; returns the kernel's ns per run. */
static double test_run(int prog_fd, const struct pkt *p, int ifindex, int repeat)
{
	struct __sk_buff ctx = { .ifindex = ifindex };
	struct xdp_md xctx = { .data_end = p->len, .ingress_ifindex = ifindex };
	uint8_t out[256];
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = p->b, .data_size_in = p->len,
		    .data_out = out, .data_size_out = sizeof(out), .ctx_in = &ctx,
		    .ctx_size_in = sizeof(ctx), .repeat = repeat);

	if (run_xdp) {
		opts.ctx_in = &xctx;
		opts.ctx_size_in = sizeof(xctx);
	}

	if (bpf_prog_test_run_opts(prog_fd, &opts)) {
		fprintf(stderr, "tc-cost: test run: %s\n", strerror(errno));
		exit(1);
	}
	last_retval = opts.retval;
	return opts.duration;
}

/* The mean of SINGLE_RUNS one-run calls (the kernel's timer, not the syscall). */
static double single_runs(int prog_fd, const struct pkt *p, int ifindex)
{
	double total = 0;

	for (int i = 0; i < SINGLE_RUNS; i++)
		total += test_run(prog_fd, p, ifindex, 1);
	return total / SINGLE_RUNS;
}

/* tc program "return TC_ACT_OK": the floor every measurement is divided by. */
static int load_empty(enum bpf_prog_type type, int verdict)
{
	struct bpf_insn insns[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = verdict },
		{ .code = BPF_JMP | BPF_EXIT },
	};

	return bpf_prog_load(type, "bench_empty", "GPL", insns, 2, NULL);
}

static void add_addr(struct bpf_map *map, const char *text)
{
	struct sl_node_addr_key key = { .family = SL_AF_INET };
	__u32 one = 1;

	inet_pton(AF_INET, text, key.addr);
	bpf_map_update_elem(bpf_map__fd(map), &key, &one, BPF_ANY);
}

/* Frontend ADDR:PORT of the given kind, served by backends 10.244.x.y:8080. */
static int add_frontend(const char *addr, uint16_t port, uint32_t kind, uint32_t set,
			uint32_t n_backends)
{
	struct sl_service_key key = { .port = htons(port), .proto = 6, .family = SL_AF_INET };
	struct sl_service svc = { .backend_set = set,
				  .count = n_backends,
				  .service_id = set,
				  .action = SL_ACTION_SERVE,
				  .flags = kind };

	inet_pton(AF_INET, addr, key.addr);
	for (uint32_t i = 0; i < n_backends; i++) {
		struct sl_backend_key slot = { .backend_set = set, .slot = i };
		struct sl_backend be = { .port = htons(8080), .family = SL_AF_INET };
		uint32_t k = set * n_backends + i;

		be.addr[0] = 10;
		be.addr[1] = 244;
		be.addr[2] = (k / 250) & 0xff;
		be.addr[3] = k % 250 + 1;
		if (bpf_map_update_elem(bpf_map__fd(skel->maps.backends), &slot, &be, BPF_ANY))
			return -errno;
	}
	if (bpf_map_update_elem(bpf_map__fd(skel->maps.services), &key, &svc, BPF_ANY))
		return -errno;
	return 0;
}

static void clear_conntrack(void)
{
	int fd = bpf_map__fd(skel->maps.conntrack);
	struct sl_ct_key key;

	while (bpf_map_get_next_key(fd, NULL, &key) == 0)
		bpf_map_delete_elem(fd, &key);
}

/* A timing of the wrong path is no timing: say so, and the table shows "-". */
static void expect_verdict(const char *what, unsigned int want)
{
	if (last_retval != want) {
		fprintf(stderr, "tc-cost: %s: verdict %u, want %u\n", what, last_retval, want);
		exit(1);
	}
}

/*
 * Every measurement with the maps as they are; keys carry the service
 * count, and the prefix (tc-, xdp-) when --xdp asks for both programs.
 */
static void measure_prog(int prog, const char *prefix, int services)
{
	unsigned int pass = run_xdp ? XDP_PASS : TC_ACT_OK;
	unsigned int redirect = run_xdp ? XDP_REDIRECT : TC_ACT_REDIRECT;
	double total = 0;
	struct pkt p;

	/* No service at this address: the program looks, then passes it untouched. */
	tcp_packet(&p, "203.0.113.7", 40000, "192.0.2.1", 22, 0x10);
	printf("%spass-%d %.1f\n", prefix, services, test_run(prog, &p, if_client, REPEAT));
	expect_verdict("pass", pass);

	/* New NodePort flows: each SYN from a new client port. */
	clear_conntrack();
	for (int i = 0; i < NEW_FLOWS; i++) {
		tcp_packet(&p, "203.0.113.7", 1024 + i, "192.0.2.1", 30080, 0x02);
		total += test_run(prog, &p, if_client, 1);
	}
	printf("%snew-%d %.1f\n", prefix, services, total / NEW_FLOWS);
	expect_verdict("new flow", redirect);

	/* An established NodePort flow: its conntrack entry exists. */
	clear_conntrack();
	tcp_packet(&p, "203.0.113.7", 50000, "192.0.2.1", 30080, 0x02);
	test_run(prog, &p, if_client, 1);
	tcp_packet(&p, "203.0.113.7", 50000, "192.0.2.1", 30080, 0x10);
	printf("%sestablished-%d %.1f\n", prefix, services, single_runs(prog, &p, if_client));
	expect_verdict("established flow", redirect);
	clear_conntrack();
}

/* The empty program of the kind measured next: the floor of its ratios. */
static void measure_empty(int fd, const char *prefix, const char *suffix)
{
	struct pkt p;

	tcp_packet(&p, "203.0.113.7", 40000, "192.0.2.1", 22, 0x10);
	printf("%sempty-repeat%s %.1f\n", prefix, suffix, test_run(fd, &p, if_client, REPEAT));
	printf("%sempty-single%s %.1f\n", prefix, suffix, single_runs(fd, &p, if_client));
}

static int empty_xdp_fd = -1;

/* tc's numbers, each count with its baseline again (the machine's speed drifts); with --xdp the XDP program's beside them. */
static void measure(int services)
{
	char suffix[16];

	if (!xskel) {
		snprintf(suffix, sizeof(suffix), "-%d", services);
		measure_empty(empty_fd, "", suffix);
		measure_prog(bpf_program__fd(skel->progs.sl_tc_ingress), "", services);
		return;
	}
	run_xdp = false;
	measure_empty(empty_fd, "tc-", services == 1 ? "" : "-again");
	measure_prog(bpf_program__fd(skel->progs.sl_tc_ingress), "tc-", services);
	run_xdp = true;
	measure_empty(empty_xdp_fd, "xdp-", services == 1 ? "" : "-again");
	measure_prog(bpf_program__fd(xskel->progs.sl_xdp_ingress), "xdp-", services);
	run_xdp = false;
}

/* The XDP object over the tc object's maps, as the agent shares them through pins. */
static int load_xdp(void)
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
	if (xdp_bpf__load(xskel))
		return -1;
	empty_xdp_fd = load_empty(BPF_PROG_TYPE_XDP, XDP_PASS);
	return empty_xdp_fd < 0 ? -1 : 0;
}

/*
 * Direct server return (Documentation/dsr.md): NodePort 30090's backends
 * are on node 192.0.2.3; new and established flows are encapsulated.
 */
static void measure_dsr(void)
{
	int prog = bpf_program__fd(skel->progs.sl_tc_ingress);
	double total = 0;
	struct pkt p;

	for (uint32_t i = 0; i < 2; i++) {
		struct sl_dsr_backend_key key = { .family = SL_AF_INET };
		struct sl_dsr_node node = { 0 };
		uint32_t k = 9999 * 2 + i;

		key.addr[0] = 10;
		key.addr[1] = 244;
		key.addr[2] = (k / 250) & 0xff;
		key.addr[3] = k % 250 + 1;
		inet_pton(AF_INET, "192.0.2.3", node.node_addr);
		bpf_map_update_elem(bpf_map__fd(skel->maps.dsr_nodes), &key, &node, BPF_ANY);
	}
	if (add_frontend("0.0.0.0", 30090, SL_KIND_NODE_PORT | SL_SVC_F_DSR, 9999, 2))
		exit(1);
	clear_conntrack();
	for (int i = 0; i < NEW_FLOWS; i++) {
		tcp_packet(&p, "203.0.113.7", 1024 + i, "192.0.2.1", 30090, 0x02);
		total += test_run(prog, &p, if_client, 1);
	}
	printf("dsr-new-1 %.1f\n", total / NEW_FLOWS);
	expect_verdict("dsr new flow", TC_ACT_REDIRECT);
	clear_conntrack();
	tcp_packet(&p, "203.0.113.7", 50000, "192.0.2.1", 30090, 0x02);
	test_run(prog, &p, if_client, 1);
	tcp_packet(&p, "203.0.113.7", 50000, "192.0.2.1", 30090, 0x10);
	printf("dsr-established-1 %.1f\n", single_runs(prog, &p, if_client));
	expect_verdict("dsr established flow", TC_ACT_REDIRECT);
	clear_conntrack();
}

/* Services have..want-1 as external IPs 198.18.x.y:80 (after the one NodePort), two backends each. */
static int add_services(int have, int want)
{
	char addr[32];

	for (int i = have - 1; i < want - 1; i++) {
		snprintf(addr, sizeof(addr), "198.%d.%d.%d", 18 + i / 62500, i / 250 % 250,
			 i % 250 + 1);
		if (add_frontend(addr, 80, SL_KIND_EXTERNAL_IP, 2 + i, 2)) {
			fprintf(stderr, "tc-cost: cannot add service %d: %s\n", i, strerror(errno));
			return -1;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const int default_counts[] = { 1, 10000 };
	int have = 1, first = 1, n_counts = 0, counts[16];
	bool per_cpu_lru = false, with_xdp = false;

	for (; first < argc && argv[first][0] == '-'; first++) {
		if (!strcmp(argv[first], "--per-cpu-lru"))
			per_cpu_lru = true;
		else if (!strcmp(argv[first], "--xdp"))
			with_xdp = true;
	}
	for (int i = first; i < argc && n_counts < 16; i++)
		counts[n_counts++] = atoi(argv[i]);
	if (!n_counts) {
		n_counts = 2;
		memcpy(counts, default_counts, sizeof(default_counts));
	}

	if (unshare(CLONE_NEWNET)) {
		fprintf(stderr, "tc-cost: unshare(CLONE_NEWNET): %s (root needed)\n",
			strerror(errno));
		return 1;
	}
	for (size_t i = 0; i < sizeof(setup_cmds) / sizeof(setup_cmds[0]); i++) {
		if (system(setup_cmds[i])) {
			fprintf(stderr, "tc-cost: setup failed: %s\n", setup_cmds[i]);
			return 1;
		}
	}
	if_client = if_nametoindex("slb0");
	if_backend = if_nametoindex("slb1");
	skel = tc_bpf__open();
	if (!skel)
		return 1;
	/* Every LRU map is preallocated: keep them to what is measured. */
	bpf_map__set_max_entries(skel->maps.conntrack, 4 * NEW_FLOWS);
	bpf_map__set_max_entries(skel->maps.affinity, 1024);
	bpf_map__set_max_entries(skel->maps.revnat, 1024);
	bpf_map__set_max_entries(skel->maps.udp_flows, 1024);
	if (per_cpu_lru)
		bpf_map__set_map_flags(skel->maps.conntrack,
				       bpf_map__map_flags(skel->maps.conntrack) |
					       BPF_F_NO_COMMON_LRU);
	if (tc_bpf__load(skel)) {
		fprintf(stderr, "tc-cost: cannot load tc_bpf: %s\n", strerror(errno));
		return 1;
	}
	if (with_xdp && load_xdp()) {
		fprintf(stderr, "tc-cost: cannot load xdp_bpf: %s\n", strerror(errno));
		return 1;
	}
	empty_fd = load_empty(BPF_PROG_TYPE_SCHED_CLS, TC_ACT_OK);
	if (empty_fd < 0) {
		fprintf(stderr, "tc-cost: cannot load the empty program: %s\n", strerror(errno));
		return 1;
	}
	add_addr(skel->maps.node_addrs, "192.0.2.1");
	add_addr(skel->maps.node_addrs, "10.99.0.1");
	{
		struct sl_dev_addr_key key = { .ifindex = if_backend, .family = SL_AF_INET };
		struct sl_dev_addr value = { 0 };

		inet_pton(AF_INET, "10.99.0.1", value.addr);
		bpf_map_update_elem(bpf_map__fd(skel->maps.dev_addrs), &key, &value, BPF_ANY);
		key.ifindex = if_client;
		inet_pton(AF_INET, "192.0.2.1", value.addr);
		bpf_map_update_elem(bpf_map__fd(skel->maps.dev_addrs), &key, &value, BPF_ANY);
	}
	if (add_frontend("0.0.0.0", 30080, SL_KIND_NODE_PORT, 1, 2))
		return 1;

	for (int i = 0; i < n_counts; i++) {
		if (counts[i] < have || add_services(have, counts[i]))
			return 1;
		have = counts[i];
		measure(have);
		if (have == 1 && !with_xdp)
			measure_dsr();
	}
	xdp_bpf__destroy(xskel);
	tc_bpf__destroy(skel);
	close(empty_fd);
	return 0;
}
