// SPDX-License-Identifier: Apache-2.0
/*
 * Tests of the nftables datapath against the kernel: applies, full syncs
 * and real traffic, each test in a forked child inside its own fresh
 * network namespace (skipped without the privilege to make one).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <cmocka.h>

#include "datapath/datapath.h"
#include "lib/log.h"
#include "datapath/nft/nft_frontend.h"
#include "datapath/nft/nft_skeleton.h"
#include "../nft_fixtures.h"

/* ---- kernel tests: each in a child process inside a fresh network namespace ---- */

#define CHECK(cond)                                                                              \
	do {                                                                                     \
		if (!(cond)) {                                                                   \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
			return 1;                                                                \
		}                                                                                \
	} while (0)

static const struct datapath_config test_cfg = { .node_name = "test-node" };

/* Runs fn in a forked child in a new network namespace; skips without the privilege. */
static void run_in_netns(int (*fn)(void))
{
	int status = 0;
	pid_t pid;

	if (geteuid() != 0) {
		skip();
		return;
	}
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (unshare(CLONE_NEWNET)) {
			perror("unshare(CLONE_NEWNET)");
			_exit(77);
		}
		_exit(fn());
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) == 77) {
		skip();
		return;
	}
	assert_int_equal(WEXITSTATUS(status), 0);
}

/* What the kernel holds, read back over netlink: one line per object. */
struct dump {
	char **lines;
	size_t n, cap;
};

static void dump_add(struct dump *d, const char *line)
{
	if (d->n == d->cap) {
		d->cap = d->cap ? d->cap * 2 : 1024;
		d->lines = realloc(d->lines, d->cap * sizeof(*d->lines));
	}
	d->lines[d->n++] = strdup(line);
}

static void dump_free(struct dump *d)
{
	for (size_t i = 0; i < d->n; i++)
		free(d->lines[i]);
	free(d->lines);
	memset(d, 0, sizeof(*d));
}

static bool dump_has(const struct dump *d, const char *line)
{
	for (size_t i = 0; i < d->n; i++)
		if (!strcmp(d->lines[i], line))
			return true;
	return false;
}

static int dump_rule_cb(const struct nlmsghdr *nlh, void *data)
{
	struct nftnl_rule *r = nftnl_rule_alloc();
	char line[4096];

	if (nftnl_rule_nlmsg_parse(nlh, r) == 0) {
		/* The default output names table, chain, handle and every expression. */
		nftnl_rule_snprintf(line, sizeof(line), r, NFTNL_OUTPUT_DEFAULT, 0);
		dump_add(data, line);
	}
	nftnl_rule_free(r);
	return MNL_CB_OK;
}

static int dump_chain_cb(const struct nlmsghdr *nlh, void *data)
{
	struct nftnl_chain *c = nftnl_chain_alloc();
	char line[512];

	if (nftnl_chain_nlmsg_parse(nlh, c) == 0) {
		snprintf(line, sizeof(line), "chain %s handle %llu",
			 nftnl_chain_get_str(c, NFTNL_CHAIN_NAME),
			 (unsigned long long)nftnl_chain_get_u64(c, NFTNL_CHAIN_HANDLE));
		dump_add(data, line);
	}
	nftnl_chain_free(c);
	return MNL_CB_OK;
}

static int dump_elem_cb(const struct nlmsghdr *nlh, void *data)
{
	struct nftnl_set *s = nftnl_set_alloc();
	struct nftnl_set_elems_iter *it;
	struct nftnl_set_elem *e;

	if (nftnl_set_elems_nlmsg_parse(nlh, s) == 0) {
		it = nftnl_set_elems_iter_create(s);
		for (e = nftnl_set_elems_iter_next(it); e; e = nftnl_set_elems_iter_next(it)) {
			char line[512];

			nftnl_set_elem_snprintf(line, sizeof(line), e, NFTNL_OUTPUT_DEFAULT, 0);
			dump_add(data, line);
		}
		nftnl_set_elems_iter_destroy(it);
	}
	nftnl_set_free(s);
	return MNL_CB_OK;
}

/* Dumps rules, chains, or the elements of one named set of table sluice. */
static int dump_kernel(uint16_t type, const char *set, struct dump *out)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct mnl_socket *nl = mnl_socket_open(NETLINK_NETFILTER);
	uint16_t flags = NLM_F_DUMP;
	struct nlmsghdr *nlh;
	mnl_cb_t cb;
	int ret;

	if (!nl || mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0)
		return -1;
	memset(buf, 0, sizeof(buf)); /* libmnl leaves attribute padding unset */
	nlh = nftnl_nlmsg_build_hdr(buf, type, NFPROTO_INET, flags, 1);
	if (type == NFT_MSG_GETSETELEM) {
		struct nftnl_set *s = nftnl_set_alloc();

		nftnl_set_set_str(s, NFTNL_SET_TABLE, NFT_TABLE_NAME);
		nftnl_set_set_str(s, NFTNL_SET_NAME, set);
		nftnl_set_elems_nlmsg_build_payload(nlh, s);
		nftnl_set_free(s);
		cb = dump_elem_cb;
	} else if (type == NFT_MSG_GETRULE) {
		struct nftnl_rule *r = nftnl_rule_alloc();

		nftnl_rule_set_str(r, NFTNL_RULE_TABLE, NFT_TABLE_NAME);
		nftnl_rule_nlmsg_build_payload(nlh, r);
		nftnl_rule_free(r);
		cb = dump_rule_cb;
	} else {
		cb = dump_chain_cb;
	}
	ret = mnl_socket_sendto(nl, nlh, nlh->nlmsg_len);
	while (ret > 0) {
		ret = mnl_socket_recvfrom(nl, buf, sizeof(buf));
		if (ret <= 0)
			break;
		ret = mnl_cb_run(buf, ret, 1, mnl_socket_get_portid(nl), cb, out);
	}
	mnl_socket_close(nl);
	return ret;
}

/* Everything the kernel holds for table sluice, as lines. */
static int dump_all(struct dump *d)
{
	static const char *const sets[] = {
		"services4",
		"services6",
		"no-endpoints4",
		"no-endpoints6",
		"service-addrs4",
		"service-addrs6",
		"nodeports4",
		"nodeports6",
		"no-endpoint-nodeports4",
		"no-endpoint-nodeports6",
		"firewall-ips4",
		"firewall-ips6",
	};

	if (dump_kernel(NFT_MSG_GETRULE, NULL, d) < 0 || dump_kernel(NFT_MSG_GETCHAIN, NULL, d) < 0)
		return -1;
	for (size_t i = 0; i < sizeof(sets) / sizeof(sets[0]); i++) {
		struct dump elems = { 0 };
		char line[600];

		if (dump_kernel(NFT_MSG_GETSETELEM, sets[i], &elems) < 0)
			return -1;
		for (size_t j = 0; j < elems.n; j++) {
			snprintf(line, sizeof(line), "%s: %s", sets[i], elems.lines[j]);
			dump_add(d, line);
		}
		dump_free(&elems);
	}
	for (unsigned int i = 0; i < 2 * NFT_BACKEND_SHARDS_MIN; i++) {
		struct dump elems = { 0 };
		char map[NFT_BACKENDS_NAME_MAX], line[600];

		nft_backends_map_name(i & 1, i / 2, map, sizeof(map));
		if (dump_kernel(NFT_MSG_GETSETELEM, map, &elems) < 0)
			return -1;
		for (size_t j = 0; j < elems.n; j++) {
			snprintf(line, sizeof(line), "%s: %s", map, elems.lines[j]);
			dump_add(d, line);
		}
		dump_free(&elems);
	}
	return 0;
}

static size_t dump_count(const struct dump *d, const char *needle)
{
	size_t n = 0;

	for (size_t i = 0; i < d->n; i++)
		n += strstr(d->lines[i], needle) != NULL;
	return n;
}

/* A cluster's worth of frontends: n services, each a tcp/80 frontend and a marker. */
static struct frontend *make_services(size_t n, size_t *n_out)
{
	struct frontend *fes = calloc(2 * n, sizeof(*fes));

	for (size_t i = 0; i < n; i++) {
		char addr[32];

		snprintf(addr, sizeof(addr), "10.96.%zu.%zu", i / 250, i % 250 + 1);
		fe_init(&fes[2 * i], addr, IPPROTO_TCP, 80, FE_SERVE, 1 + i % 3, "10.1", 8080);
		fe_marker(&fes[2 * i + 1], addr);
	}
	*n_out = 2 * n;
	return fes;
}

static struct state_diff diff_of(struct frontend_change *ch, const struct frontend *fes, size_t n,
				 bool full)
{
	for (size_t i = 0; i < n; i++) {
		ch[i].old = NULL;
		ch[i].new = &fes[i];
	}
	return (struct state_diff){ .full = full, .changes = ch, .n_changes = n };
}

static int child_open_apply_cleanup(void)
{
	struct frontend fes[3];
	struct frontend_change ch[3];
	struct state_diff diff;
	struct datapath *dp;
	struct dump d = { 0 };
	char why[256] = "";

	CHECK(!nft_datapath_ops.present(&test_cfg));
	/* cleanup without a table is fine */
	CHECK(nft_datapath_ops.cleanup(&test_cfg, false) == 0);
	CHECK(nft_datapath_ops.open(&test_cfg, &dp, why, sizeof(why)) == 0);
	CHECK(!nft_datapath_ops.present(&test_cfg)); /* open alone changes nothing */
	fe_init(&fes[0], "10.96.0.10", IPPROTO_TCP, 80, FE_SERVE, 2, "10.1", 8080);
	fe_marker(&fes[1], "10.96.0.10");
	fe_init(&fes[2], "fd00:96::10", IPPROTO_UDP, 53, FE_SERVE, 1, "fd00:1::", 53);
	diff = diff_of(ch, fes, 3, true);
	CHECK(nft_datapath_ops.apply(dp, &diff) == 0);
	CHECK(nft_datapath_ops.present(&test_cfg));
	CHECK(dump_all(&d) == 0);
	CHECK(dump_count(&d, "services4:") == 1);
	CHECK(dump_count(&d, "chain fe-10.96.0.10-tcp-80 handle") == 1);
	CHECK(dump_count(&d, "chain fe-fd00_96__10-udp-53 handle") == 1);
	CHECK(dump_count(&d, "service-addrs4:") == 1);
	CHECK(dump_count(&d, "chain nat-output handle") == 1);
	CHECK(dump_count(&d, "chain filter-forward handle") == 1);
	dump_free(&d);
	/* close keeps the table: the kernel keeps serving */
	nft_datapath_ops.close(dp);
	CHECK(nft_datapath_ops.present(&test_cfg));
	CHECK(nft_datapath_ops.cleanup(&test_cfg, false) == 0);
	CHECK(!nft_datapath_ops.present(&test_cfg));
	CHECK(nft_datapath_ops.cleanup(&test_cfg, false) == 0);
	for (int i = 0; i < 3; i++)
		frontend_clear(&fes[i]);
	return 0;
}

static void test_kernel_open_apply_cleanup(void **state)
{
	run_in_netns(child_open_apply_cleanup);
}

/* Adding one service to thousands leaves every other chain, rule and element as it was. */
static int child_add_one_keeps_handles(void)
{
	size_t n;
	struct frontend *fes = make_services(2000, &n);
	struct frontend_change *ch = calloc(n, sizeof(*ch));
	struct frontend extra[2];
	struct frontend_change extra_ch[2];
	struct dump before = { 0 }, after = { 0 };
	struct state_diff diff;
	struct datapath *dp;
	char why[256], map[NFT_BACKENDS_NAME_MAX + 2];

	CHECK(nft_datapath_ops.open(&test_cfg, &dp, why, sizeof(why)) == 0);
	diff = diff_of(ch, fes, n, true);
	CHECK(nft_datapath_ops.apply(dp, &diff) == 0);
	CHECK(dump_all(&before) == 0);
	CHECK(dump_count(&before, "chain fe-") == 2000);

	fe_init(&extra[0], "10.97.0.1", IPPROTO_TCP, 443, FE_SERVE, 2, "10.2", 8443);
	fe_marker(&extra[1], "10.97.0.1");
	diff = diff_of(extra_ch, extra, 2, false);
	CHECK(nft_datapath_ops.apply(dp, &diff) == 0);
	CHECK(dump_all(&after) == 0);
	/* The full sync's mark goes with the first update, in the same transaction. */
	CHECK(dump_count(&before, "chain sync-") == 1);
	CHECK(dump_count(&after, "chain sync-") == 0);
	/* Every other line (rule with its handle, chain with its handle, element) is still there. */
	for (size_t i = 0; i < before.n; i++) {
		if (strstr(before.lines[i], "chain sync-"))
			continue;
		if (!dump_has(&after, before.lines[i])) {
			fprintf(stderr, "changed or gone: %s\n", before.lines[i]);
			return 1;
		}
	}
	/*
	 * ... and the only new ones are the added service's chain, rule, two
	 * elements and its two backends in its backends4 map.
	 */
	CHECK(after.n == before.n - 1 + 6);
	nft_backends_map_name(false, nft_fe_backend_shard(&extra[0].key, NFT_BACKEND_SHARDS_MIN),
			      map, sizeof(map));
	strcat(map, ": ");
	CHECK(dump_count(&after, map) == dump_count(&before, map) + 2);
	CHECK(dump_count(&after, "chain fe-10.97.0.1-tcp-443 handle") == 1);
	dump_free(&before);
	dump_free(&after);
	nft_datapath_ops.close(dp);
	return 0;
}

static void test_kernel_add_one_keeps_handles(void **state)
{
	run_in_netns(child_add_one_keeps_handles);
}

static const char *dump_find(const struct dump *d, const char *needle);

/*
 * A restarted agent whose full sync is the one the table holds writes
 * nothing: every chain, rule and element keeps its handle; one that
 * differs rebuilds the table.
 */
static int child_restart_adopts_table(void)
{
	size_t n;
	struct frontend *fes = make_services(500, &n);
	struct frontend_change *ch = calloc(n, sizeof(*ch));
	struct dump before = { 0 }, after = { 0 }, rebuilt = { 0 };
	struct state_diff diff;
	struct datapath *dp;
	char why[256];

	CHECK(nft_datapath_ops.open(&test_cfg, &dp, why, sizeof(why)) == 0);
	diff = diff_of(ch, fes, n, true);
	CHECK(nft_datapath_ops.apply(dp, &diff) == 0);
	nft_datapath_ops.close(dp);
	CHECK(dump_all(&before) == 0);

	CHECK(nft_datapath_ops.open(&test_cfg, &dp, why, sizeof(why)) == 0);
	diff = diff_of(ch, fes, n, true);
	CHECK(nft_datapath_ops.apply(dp, &diff) == 0);
	nft_datapath_ops.close(dp);
	CHECK(dump_all(&after) == 0);
	CHECK(after.n == before.n);
	for (size_t i = 0; i < before.n; i++)
		CHECK(dump_has(&after, before.lines[i]));

	/* One frontend fewer: another sync, the table rebuilt (new handles). */
	CHECK(nft_datapath_ops.open(&test_cfg, &dp, why, sizeof(why)) == 0);
	diff = diff_of(ch, fes, n - 1, true);
	CHECK(nft_datapath_ops.apply(dp, &diff) == 0);
	nft_datapath_ops.close(dp);
	CHECK(dump_all(&rebuilt) == 0);
	CHECK(dump_count(&rebuilt, "chain sync-") == 1);
	CHECK(!dump_has(&rebuilt, dump_find(&before, "chain sync-")));
	dump_free(&before);
	dump_free(&after);
	dump_free(&rebuilt);
	CHECK(nft_datapath_ops.cleanup(&test_cfg, false) == 0);
	free(ch);
	free(fes);
	return 0;
}

static void test_kernel_restart_adopts_table(void **state)
{
	run_in_netns(child_restart_adopts_table);
}

/* Finds the one line containing needle (NULL if none or several). */
static const char *dump_find(const struct dump *d, const char *needle)
{
	const char *found = NULL;

	for (size_t i = 0; i < d->n; i++) {
		if (strstr(d->lines[i], needle)) {
			if (found)
				return NULL;
			found = d->lines[i];
		}
	}
	return found;
}

/* The "offset N" of fe's DNAT rule in d, -1 if there is none. */
static long dnat_offset(const struct dump *d, const struct frontend *fe)
{
	char chain[NFT_CHAIN_NAME_MAX + 16];
	const char *line, *off;

	nft_fe_chain_name(&fe->key, chain, sizeof(chain));
	strcat(chain, " ");
	for (size_t i = 0; i < d->n; i++) {
		line = d->lines[i];
		/* libnftnl prints "offset N" only when N is not 0. */
		if (strstr(line, chain) && strstr(line, "numgen"))
			return (off = strstr(line, "offset ")) ? strtol(off + 7, NULL, 10) : 0;
	}
	return -1;
}

/* The same lines (handles included), in any order (a hash set's elements move). */
static bool same_lines(const struct dump *a, const struct dump *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < b->n; i++)
		if (!dump_has(a, b->lines[i]))
			return false;
	return true;
}

/* Elements of fe's backend map in d. */
static size_t backend_elems(const struct dump *d, const struct frontend *fe)
{
	char map[NFT_BACKENDS_NAME_MAX + 2];

	nft_backends_map_name(fe->key.addr.family == AF_INET6,
			      nft_fe_backend_shard(&fe->key, NFT_BACKEND_SHARDS_MIN), map,
			      sizeof(map));
	strcat(map, ": ");
	return dump_count(d, map);
}

/* Backend change, serve -> refuse -> drop -> serve, delete: each touches only its frontend. */
static int child_changes(void)
{
	struct frontend a, a2, a3, a_refuse, a_drop, b, marker;
	struct frontend_change ch[3];
	struct dump d0 = { 0 }, d1 = { 0 }, d = { 0 };
	struct state_diff diff = { .changes = ch };
	const char *line;
	char b_chain[256], a_chain[256], b_rule[4096], a_rule[4096];
	struct datapath *dp;
	char why[256];
	size_t b_share; /* b's backends in a's map (the two may share a shard) */
	long a_off;

	fe_init(&a, "10.96.0.10", IPPROTO_TCP, 80, FE_SERVE, 2, "10.1", 8080);
	fe_init(&a2, "10.96.0.10", IPPROTO_TCP, 80, FE_SERVE, 3, "10.1", 8080);
	fe_init(&a3, "10.96.0.10", IPPROTO_TCP, 80, FE_SERVE, 3, "10.4", 8080);
	fe_init(&a_refuse, "10.96.0.10", IPPROTO_TCP, 80, FE_REFUSE, 0, "10.1", 0);
	fe_init(&a_drop, "10.96.0.10", IPPROTO_TCP, 80, FE_DROP, 0, "10.1", 0);
	fe_init(&b, "10.96.0.20", IPPROTO_UDP, 53, FE_SERVE, 1, "10.3", 53);
	fe_marker(&marker, "10.96.0.10");
	CHECK(nft_datapath_ops.open(&test_cfg, &dp, why, sizeof(why)) == 0);
	ch[0] = (struct frontend_change){ NULL, &a };
	ch[1] = (struct frontend_change){ NULL, &b };
	ch[2] = (struct frontend_change){ NULL, &marker };
	diff.full = true;
	diff.n_changes = 3;
	CHECK(nft_datapath_ops.apply(dp, &diff) == 0);
	CHECK(dump_all(&d0) == 0);
	snprintf(a_chain, sizeof(a_chain), "%s", dump_find(&d0, "chain fe-10.96.0.10-tcp-80 "));
	snprintf(b_chain, sizeof(b_chain), "%s", dump_find(&d0, "chain fe-10.96.0.20-udp-53 "));
	snprintf(b_rule, sizeof(b_rule), "%s", dump_find(&d0, "sluice fe-10.96.0.20-udp-53 "));
	snprintf(a_rule, sizeof(a_rule), "%s", dump_find(&d0, "sluice fe-10.96.0.10-tcp-80 "));
	b_share = nft_fe_backend_shard(&a.key, NFT_BACKEND_SHARDS_MIN) ==
				  nft_fe_backend_shard(&b.key, NFT_BACKEND_SHARDS_MIN) ?
			  1 :
			  0;
	a_off = dnat_offset(&d0, &a);
	CHECK(a_off >= 0 && dnat_offset(&d0, &b) >= 0);
	CHECK(backend_elems(&d0, &a) == 2 + b_share);

	/* New backends: same chain (same handle), new rule with mod 3. */
	diff.full = false;
	diff.n_changes = 1;
	ch[0] = (struct frontend_change){ &a, &a2 };
	CHECK(nft_datapath_ops.apply(dp, &diff) == 0);
	CHECK(dump_all(&d1) == 0);
	CHECK(dump_has(&d1, a_chain));
	CHECK(dump_has(&d1, b_chain) && dump_has(&d1, b_rule));
	CHECK(!dump_has(&d1, a_rule));
	line = dump_find(&d1, "sluice fe-10.96.0.10-tcp-80 ");
	CHECK(line && strstr(line, "mod 3"));
	CHECK(dump_count(&d1, "services4:") == 2);
	/* ... in a new range of the map; the old range's two elements are gone. */
	CHECK(dnat_offset(&d1, &a2) >= 0 && dnat_offset(&d1, &a2) != a_off);
	CHECK(labs(dnat_offset(&d1, &a2) - a_off) >= 2);
	CHECK(backend_elems(&d1, &a2) == 3 + b_share);
	CHECK(dnat_offset(&d1, &b) == dnat_offset(&d0, &b));

	/*
	 * As many backends, other ones: the rule stays (same handle, same
	 * offset), only the range's elements are written again.
	 */
	snprintf(a_rule, sizeof(a_rule), "%s", dump_find(&d1, "sluice fe-10.96.0.10-tcp-80 "));
	ch[0] = (struct frontend_change){ &a2, &a3 };
	CHECK(nft_datapath_ops.apply(dp, &diff) == 0);
	CHECK(dump_all(&d) == 0);
	CHECK(dump_has(&d, a_rule) && dump_has(&d, b_rule));
	CHECK(dnat_offset(&d, &a3) == dnat_offset(&d1, &a2));
	CHECK(backend_elems(&d, &a3) == 3 + b_share);
	CHECK(!same_lines(&d, &d1));
	dump_free(&d);
	ch[0] = (struct frontend_change){ &a3, &a2 };
	CHECK(nft_datapath_ops.apply(dp, &diff) == 0);
	CHECK(dump_all(&d) == 0);
	CHECK(same_lines(&d, &d1));
	dump_free(&d);

	/* No endpoints: chain gone, element moves to no-endpoints4 -> reject-chain. */
	ch[0] = (struct frontend_change){ &a2, &a_refuse };
	CHECK(nft_datapath_ops.apply(dp, &diff) == 0);
	CHECK(dump_all(&d) == 0);
	CHECK(dump_count(&d, "fe-10.96.0.10-tcp-80") == 0);
	CHECK(dump_count(&d, "services4:") == 1);
	CHECK(dump_count(&d, "no-endpoints4:") == 1 && dump_count(&d, "reject-chain") >= 1);
	CHECK(dump_has(&d, b_chain) && dump_has(&d, b_rule));
	CHECK(backend_elems(&d, &a) == b_share); /* its range went with the chain */
	dump_free(&d);

	/* Local policy, endpoints elsewhere: drop. */
	ch[0] = (struct frontend_change){ &a_refuse, &a_drop };
	CHECK(nft_datapath_ops.apply(dp, &diff) == 0);
	CHECK(dump_all(&d) == 0);
	line = dump_find(&d, "no-endpoints4:");
	CHECK(line && strstr(line, "drop"));
	dump_free(&d);

	/* Served again, then deleted. */
	ch[0] = (struct frontend_change){ &a_drop, &a };
	CHECK(nft_datapath_ops.apply(dp, &diff) == 0);
	CHECK(dump_all(&d) == 0);
	CHECK(dump_count(&d, "chain fe-10.96.0.10-tcp-80 ") == 1);
	CHECK(dump_count(&d, "no-endpoints4:") == 0);
	CHECK(backend_elems(&d, &a) == 2 + b_share);
	dump_free(&d);
	ch[0] = (struct frontend_change){ &a, NULL };
	ch[1] = (struct frontend_change){ &marker, NULL };
	diff.n_changes = 2;
	CHECK(nft_datapath_ops.apply(dp, &diff) == 0);
	CHECK(dump_all(&d) == 0);
	CHECK(dump_count(&d, "fe-10.96.0.10-tcp-80") == 0);
	CHECK(dump_count(&d, "service-addrs4:") == 0);
	CHECK(dump_count(&d, "services4:") == 1);
	CHECK(dump_has(&d, b_chain) && dump_has(&d, b_rule));
	dump_free(&d);

	/* A failing batch changes nothing: deleting a frontend that is not there. */
	CHECK(dump_all(&d0) == 0);
	ch[0] = (struct frontend_change){ NULL, &a };
	ch[1] = (struct frontend_change){ &a_refuse, NULL }; /* not in the kernel */
	CHECK(nft_datapath_ops.apply(dp, &diff) == -ENOENT);
	CHECK(dump_all(&d) == 0);
	CHECK(dump_count(&d, "fe-10.96.0.10-tcp-80") == 0);
	dump_free(&d);
	nft_datapath_ops.close(dp);
	return 0;
}

static void test_kernel_changes_touch_only_their_frontend(void **state)
{
	run_in_netns(child_changes);
}

/*
 * A full sync of 15000 frontends (5000 served services, their 5000 markers,
 * 5000 refused frontends), several MB: more than the default socket buffer,
 * still one transaction. A second full sync adopts the existing table.
 */
static int child_big_full_sync(void)
{
	size_t n_served, n = 15000;
	struct frontend *served = make_services(5000, &n_served);
	struct frontend *fes = calloc(n, sizeof(*fes));
	struct frontend_change *ch = calloc(n, sizeof(*ch));
	struct state_diff diff;
	struct dump d = { 0 };
	struct datapath *dp;
	struct timespec t0, t1;
	char why[256];

	memcpy(fes, served, n_served * sizeof(*fes));
	for (size_t i = n_served; i < n; i++) {
		char addr[32];

		snprintf(addr, sizeof(addr), "10.98.%zu.%zu", i / 250, i % 250 + 1);
		fe_init(&fes[i], addr, IPPROTO_TCP, 80, FE_REFUSE, 0, "10.1", 0);
	}
	diff = diff_of(ch, fes, n, true);
	CHECK(nft_datapath_ops.open(&test_cfg, &dp, why, sizeof(why)) == 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	CHECK(nft_datapath_ops.apply(dp, &diff) == 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	fprintf(stderr, "# full sync of %zu frontends: %.2f s\n", n,
		(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
	nft_datapath_ops.close(dp);
	/* A restarted agent: open again and rebuild in one batch over the existing table. */
	CHECK(nft_datapath_ops.open(&test_cfg, &dp, why, sizeof(why)) == 0);
	CHECK(nft_datapath_ops.apply(dp, &diff) == 0);
	CHECK(dump_kernel(NFT_MSG_GETCHAIN, NULL, &d) >= 0);
	CHECK(dump_count(&d, "chain fe-") == 5000);
	dump_free(&d);
	CHECK(dump_kernel(NFT_MSG_GETSETELEM, "no-endpoints4", &d) >= 0);
	CHECK(d.n == 5000);
	dump_free(&d);
	/* One change at this size: one small batch. */
	diff.full = false;
	diff.n_changes = 1;
	ch[0] = (struct frontend_change){ &fes[0], NULL };
	clock_gettime(CLOCK_MONOTONIC, &t0);
	CHECK(nft_datapath_ops.apply(dp, &diff) == 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	fprintf(stderr, "# one change among %zu frontends: %.2f ms\n", n,
		((t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9) * 1e3);
	nft_datapath_ops.close(dp);
	return 0;
}

static void test_kernel_big_full_sync(void **state)
{
	run_in_netns(child_big_full_sync);
}

/*
 * Full sync time against the number of served frontends (each a tcp/80
 * service with 1-3 backends plus its marker). Sizes from
 * SLUICE_NFT_SCALE (e.g. "3000,6000,12000"), default 3000 so the suite
 * stays quick; the numbers in Documentation/nftables-datapath.md.
 */
static int child_full_sync_scale(void)
{
	const char *env = getenv("SLUICE_NFT_SCALE");
	char sizes[128];

	snprintf(sizes, sizeof(sizes), "%s", env && *env ? env : "3000");
	for (char *tok = strtok(sizes, ","); tok; tok = strtok(NULL, ",")) {
		size_t n_served = strtoul(tok, NULL, 10), n;
		struct frontend *fes = make_services(n_served, &n);
		struct frontend_change *ch = calloc(n, sizeof(*ch));
		struct state_diff diff = diff_of(ch, fes, n, true);
		struct timespec t0, t1;
		struct datapath *dp;
		struct dump d = { 0 };
		char why[256];

		CHECK(nft_datapath_ops.open(&test_cfg, &dp, why, sizeof(why)) == 0);
		clock_gettime(CLOCK_MONOTONIC, &t0);
		CHECK(nft_datapath_ops.apply(dp, &diff) == 0);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		fprintf(stderr, "# full sync of %zu served frontends (+%zu markers): %.2f s\n",
			n_served, n - n_served,
			(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
		CHECK(dump_kernel(NFT_MSG_GETCHAIN, NULL, &d) >= 0);
		CHECK(dump_count(&d, "chain fe-") == n_served);
		dump_free(&d);
		nft_datapath_ops.close(dp);
		CHECK(nft_datapath_ops.cleanup(&test_cfg, false) == 0);
		for (size_t i = 0; i < n; i++)
			frontend_clear(&fes[i]);
		free(fes);
		free(ch);
	}
	return 0;
}

static void test_kernel_full_sync_scale(void **state)
{
	run_in_netns(child_full_sync_scale);
}

/* ---- real packets inside the namespace: DNAT before filter, refusals ---- */

static int sh(const char *cmd)
{
	int rc = system(cmd);

	if (rc)
		fprintf(stderr, "command failed (%d): %s\n", rc, cmd);
	return rc;
}

static int tcp_listen(int family, uint16_t port)
{
	struct sockaddr_in6 a6 = { .sin6_family = AF_INET6, .sin6_port = htons(port) };
	struct sockaddr_in a4 = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd = socket(family, SOCK_STREAM, 0), one = 1;

	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, family == AF_INET ? (struct sockaddr *)&a4 : (struct sockaddr *)&a6,
		 family == AF_INET ? sizeof(a4) : sizeof(a6)) ||
	    listen(fd, 64)) {
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * Connects to addr:port. Returns 0 (connected), -errno (refused...), or
 * -ETIMEDOUT after wait_ms with no answer.
 */
static int try_connect(int type, const char *addr, uint16_t port, int wait_ms)
{
	struct sockaddr_storage ss = { 0 };
	struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
	socklen_t len;
	int fd, err = 0;
	struct pollfd p;

	if (inet_pton(AF_INET, addr, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons(port);
		len = sizeof(*a4);
	} else {
		inet_pton(AF_INET6, addr, &a6->sin6_addr);
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons(port);
		len = sizeof(*a6);
	}
	fd = socket(ss.ss_family, type | SOCK_NONBLOCK, 0);
	if (connect(fd, (struct sockaddr *)&ss, len) && errno != EINPROGRESS) {
		err = -errno;
		goto out;
	}
	if (type == SOCK_DGRAM) {
		char c = 'x';

		/* ICMP port unreachable shows as ECONNREFUSED on a connected UDP socket. */
		send(fd, &c, 1, 0);
	}
	p = (struct pollfd){ .fd = fd, .events = type == SOCK_STREAM ? POLLOUT : POLLIN };
	if (poll(&p, 1, wait_ms) == 0) {
		err = -ETIMEDOUT;
	} else {
		socklen_t elen = sizeof(err);

		getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen);
		err = -err;
	}
out:
	close(fd);
	return err;
}

static int child_traffic(void)
{
	struct frontend fes[8];
	struct frontend_change ch[8];
	struct state_diff diff;
	struct datapath *dp;
	char why[256];
	int l4, l6;

	/*
	 * One namespace is both node and backends: the backend addresses sit on
	 * one end of a veth pair, and routes send the service ranges to it (a
	 * node needs a route before the output hook can translate, design.md
	 * section 5). A packet that escapes translation dies on the other end.
	 */
	if (sh("ip link set lo up && ip link add sl0 type veth peer name sl1 && "
	       "ip link set sl0 up && ip link set sl1 up && "
	       "ip addr add 10.1.0.1/24 dev sl0 && ip addr add 10.1.0.2/24 dev sl0 && "
	       "ip route add 10.96.0.0/16 dev sl0 && "
	       "ip -6 addr add fd00:1::1/64 dev sl0 nodad && "
	       "ip -6 route add fd00:96::/64 dev sl0"))
		return 77;
	l4 = tcp_listen(AF_INET, 8080);
	l6 = tcp_listen(AF_INET6, 8080);
	CHECK(l4 >= 0 && l6 >= 0);
	/* Nothing programmed: the service address is a black hole. */
	CHECK(try_connect(SOCK_STREAM, "10.96.0.10", 80, 200) == -ETIMEDOUT);

	fe_init(&fes[0], "10.96.0.10", IPPROTO_TCP, 80, FE_SERVE, 2, "10.1", 8080);
	fe_marker(&fes[1], "10.96.0.10");
	fe_init(&fes[2], "10.96.0.11", IPPROTO_TCP, 80, FE_REFUSE, 0, "10.1", 0);
	fe_init(&fes[3], "10.96.0.11", IPPROTO_UDP, 53, FE_REFUSE, 0, "10.1", 0);
	fe_marker(&fes[4], "10.96.0.11");
	fe_init(&fes[5], "10.96.0.12", IPPROTO_TCP, 80, FE_DROP, 0, "10.1", 0);
	fe_init(&fes[6], "fd00:96::10", IPPROTO_TCP, 80, FE_SERVE, 1, "fd00:1::", 8080);
	fe_marker(&fes[7], "fd00:96::10");
	diff = diff_of(ch, fes, 8, true);
	CHECK(nft_datapath_ops.open(&test_cfg, &dp, why, sizeof(why)) == 0);
	CHECK(nft_datapath_ops.apply(dp, &diff) == 0);

	/*
	 * 10.96.0.10 is in service-addrs4, which filter-output rejects: the
	 * connection succeeds only if the nat output DNAT (-100) ran before
	 * the filter (0) and took the service address away.
	 */
	for (int i = 0; i < 10; i++)
		CHECK(try_connect(SOCK_STREAM, "10.96.0.10", 80, 2000) == 0);
	CHECK(try_connect(SOCK_STREAM, "fd00:96::10", 80, 2000) == 0);
	/* Unknown port of a service address: rejected with a reset. */
	CHECK(try_connect(SOCK_STREAM, "10.96.0.10", 81, 2000) == -ECONNREFUSED);
	CHECK(try_connect(SOCK_STREAM, "fd00:96::10", 81, 2000) == -ECONNREFUSED);
	/* No endpoints: TCP reset, UDP port unreachable. */
	CHECK(try_connect(SOCK_STREAM, "10.96.0.11", 80, 2000) == -ECONNREFUSED);
	CHECK(try_connect(SOCK_DGRAM, "10.96.0.11", 53, 2000) == -ECONNREFUSED);
	/* Drop: no answer at all. */
	CHECK(try_connect(SOCK_STREAM, "10.96.0.12", 80, 300) == -ETIMEDOUT);
	nft_datapath_ops.close(dp);
	close(l4);
	close(l6);
	return 0;
}

static void test_kernel_traffic_dnat_before_filter(void **state)
{
	run_in_netns(child_traffic);
}

/* ---- kernel: rate limits and session affinity, with real connections ---- */

/* A node namespace whose backends 10.1.0.1-3 sit on a veth, as in child_traffic. */
static int setup_node(void)
{
	return sh("ip link set lo up && ip link add sl0 type veth peer name sl1 && "
		  "ip link set sl0 up && ip link set sl1 up && "
		  "ip addr add 10.1.0.1/24 dev sl0 && ip addr add 10.1.0.2/24 dev sl0 && "
		  "ip route add 10.96.0.0/16 dev sl0");
}

static int tcp_listen_on(const char *addr, uint16_t port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;

	inet_pton(AF_INET, addr, &a.sin_addr);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 1024)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Accepts one pending connection on any of fds; returns its index, -1 if none came. */
static int accept_any(const int *fds, int n, int wait_ms)
{
	struct pollfd p[4];

	for (int i = 0; i < n; i++)
		p[i] = (struct pollfd){ .fd = fds[i], .events = POLLIN };
	if (poll(p, n, wait_ms) <= 0)
		return -1;
	for (int i = 0; i < n; i++) {
		if (p[i].revents & POLLIN) {
			int c = accept(fds[i], NULL, NULL);

			if (c >= 0) {
				close(c);
				return i;
			}
		}
	}
	return -1;
}

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

/* The stats of one Service from read_stats (zeroed, found false if absent). */
static bool stats_of(const char *service, struct service_stats *out, size_t *n_services)
{
	struct service_stats *all;
	size_t n;
	bool found = false;

	memset(out, 0, sizeof(*out));
	if (nft_datapath_ops.read_stats(&test_cfg, &all, &n))
		return false;
	for (size_t i = 0; i < n; i++) {
		if (!strcmp(all[i].service, service)) {
			*out = all[i];
			found = true;
		}
	}
	if (n_services)
		*n_services = n;
	free(all);
	return found;
}

/*
 * "50/s" burst 10 on a Service with two ports: a client connecting as fast
 * as it can, alternating ports, gets 10 + 50 x elapsed connections and
 * refusals for the rest; the counters agree; a new limit keeps the
 * counters; so does a full re-apply by a new agent; the last port's
 * removal deletes the objects.
 */
static int child_rate_limit(void)
{
	struct rate_limit rl = { .count = 50, .period = 1, .burst = 10 };
	struct frontend fes[3], fes2[3];
	struct frontend_change ch[3];
	struct service_stats st, st2;
	struct state_diff diff;
	struct datapath *dp;
	unsigned long ok = 0, refused = 0, other = 0;
	double t0, elapsed, expect;
	int lfd[2];
	size_t n;
	char why[256];

	if (setup_node())
		return 77;
	lfd[0] = tcp_listen_on("10.1.0.1", 8080);
	lfd[1] = tcp_listen_on("10.1.0.1", 8081);
	CHECK(lfd[0] >= 0 && lfd[1] >= 0);
	for (int v = 0; v < 2; v++) {
		struct frontend *f = v ? fes2 : fes;

		fe_init(&f[0], "10.96.0.10", IPPROTO_TCP, 80, FE_SERVE, 1, "10.1", 8080);
		fe_init(&f[1], "10.96.0.10", IPPROTO_TCP, 81, FE_SERVE, 1, "10.1", 8081);
		fe_marker(&f[2], "10.96.0.10");
		for (int i = 0; i < 3; i++) {
			f[i].service = strdup("shop/cart");
			f[i].rate = rl;
		}
	}
	for (int i = 0; i < 3; i++)
		fes2[i].rate = (struct rate_limit){ .count = 100, .period = 1, .burst = 5 };
	diff = diff_of(ch, fes, 3, true);
	CHECK(nft_datapath_ops.open(&test_cfg, &dp, why, sizeof(why)) == 0);
	CHECK(nft_datapath_ops.apply(dp, &diff) == 0);
	CHECK(stats_of("shop/cart", &st, &n) && n == 1);
	CHECK(st.rate.count == 50 && st.rate.period == 1 && st.rate.burst == 10);
	CHECK(st.admitted == 0 && st.limited == 0);

	t0 = now_s();
	for (int i = 0; (elapsed = now_s() - t0) < 3.0; i++) {
		int rc = try_connect(SOCK_STREAM, "10.96.0.10", 80 + (i & 1), 1000);

		if (rc == 0) {
			ok++;
			CHECK(accept_any(&lfd[i & 1], 1, 1000) == 0);
		} else if (rc == -ECONNREFUSED) {
			refused++;
		} else {
			other++;
		}
	}
	expect = rl.burst + rl.count * elapsed;
	fprintf(stderr,
		"# 50/s burst 10, two ports, %.2f s: %lu admitted (expected %.0f), "
		"%lu refused, %lu other\n",
		elapsed, ok, expect, refused, other);
	CHECK(other == 0);
	CHECK(ok > expect * 0.85 && ok < expect * 1.15);
	CHECK(refused > ok); /* the client really went faster than the limit */
	CHECK(stats_of("shop/cart", &st, NULL));
	CHECK(st.admitted == ok && st.limited == refused);

	/* A new limit: the limit object is replaced, the counters go on. */
	ch[0] = (struct frontend_change){ &fes[0], &fes2[0] };
	ch[1] = (struct frontend_change){ &fes[1], &fes2[1] };
	ch[2] = (struct frontend_change){ &fes[2], &fes2[2] };
	diff = (struct state_diff){ .changes = ch, .n_changes = 3 };
	CHECK(nft_datapath_ops.apply(dp, &diff) == 0);
	CHECK(stats_of("shop/cart", &st2, NULL));
	CHECK(st2.rate.count == 100 && st2.rate.burst == 5);
	CHECK(st2.admitted == st.admitted && st2.limited == st.limited);
	/* The new bucket starts full: 5 admitted at once, then refusals. */
	for (int i = 0; i < 5; i++) {
		CHECK(try_connect(SOCK_STREAM, "10.96.0.10", 80, 1000) == 0);
		CHECK(accept_any(lfd, 1, 1000) == 0);
	}
	CHECK(try_connect(SOCK_STREAM, "10.96.0.10", 81, 1000) == -ECONNREFUSED);
	CHECK(stats_of("shop/cart", &st, NULL));
	CHECK(st.admitted == st2.admitted + 5 && st.limited == st2.limited + 1);
	nft_datapath_ops.close(dp);

	/* A restarted agent's full sync keeps the counters. */
	diff = diff_of(ch, fes2, 3, true);
	CHECK(nft_datapath_ops.open(&test_cfg, &dp, why, sizeof(why)) == 0);
	CHECK(nft_datapath_ops.apply(dp, &diff) == 0);
	CHECK(stats_of("shop/cart", &st2, NULL));
	CHECK(st2.admitted == st.admitted && st2.limited == st.limited);

	/* One port goes: the objects stay; the last one goes: they go. */
	ch[0] = (struct frontend_change){ &fes2[0], NULL };
	diff = (struct state_diff){ .changes = ch, .n_changes = 1 };
	CHECK(nft_datapath_ops.apply(dp, &diff) == 0);
	CHECK(stats_of("shop/cart", &st2, NULL));
	ch[0] = (struct frontend_change){ &fes2[1], NULL };
	ch[1] = (struct frontend_change){ &fes2[2], NULL };
	diff.n_changes = 2;
	CHECK(nft_datapath_ops.apply(dp, &diff) == 0);
	CHECK(!stats_of("shop/cart", &st2, &n) && n == 0);
	nft_datapath_ops.close(dp);
	for (int i = 0; i < 3; i++) {
		frontend_clear(&fes[i]);
		frontend_clear(&fes2[i]);
	}
	close(lfd[0]);
	close(lfd[1]);
	return 0;
}

static void test_kernel_rate_limit_traffic_and_counters(void **state)
{
	run_in_netns(child_rate_limit);
}

/* Connects n times; returns the backend index every connection reached, -1 if they differ. */
static int same_backend(const int *lfd, int n_lfd, int n)
{
	int first = -1;

	for (int i = 0; i < n; i++) {
		int got;

		if (try_connect(SOCK_STREAM, "10.96.0.10", 80, 1000))
			return -2;
		got = accept_any(lfd, n_lfd, 1000);
		if (got < 0 || (first >= 0 && got != first))
			return -1;
		first = got;
	}
	return first;
}

/*
 * Session affinity: one client stays on one backend; a new backend keeps
 * the old endpoints' chains and remembered clients; a new timeout
 * re-creates them; clients are forgotten after the timeout.
 */
static int child_affinity(void)
{
	struct frontend a, a3, a_short, plain;
	struct frontend_change ch[1];
	struct state_diff diff = { .changes = ch, .n_changes = 1 };
	struct dump d0 = { 0 }, d = { 0 };
	struct datapath *dp;
	char ep1[256], set[NFT_EP_NAME_MAX];
	int lfd[2], first;
	char why[256];

	if (setup_node())
		return 77;
	lfd[0] = tcp_listen_on("10.1.0.1", 8080);
	lfd[1] = tcp_listen_on("10.1.0.2", 8080);
	CHECK(lfd[0] >= 0 && lfd[1] >= 0);
	fe_init(&a, "10.96.0.10", IPPROTO_TCP, 80, FE_SERVE, 2, "10.1", 8080);
	fe_init(&a3, "10.96.0.10", IPPROTO_TCP, 80, FE_SERVE, 3, "10.1", 8080);
	fe_init(&a_short, "10.96.0.10", IPPROTO_TCP, 80, FE_SERVE, 3, "10.1", 8080);
	fe_init(&plain, "10.96.0.10", IPPROTO_TCP, 80, FE_SERVE, 3, "10.1", 8080);
	a.affinity_timeout = a3.affinity_timeout = 10800;
	a_short.affinity_timeout = 1;
	CHECK(nft_datapath_ops.open(&test_cfg, &dp, why, sizeof(why)) == 0);
	ch[0] = (struct frontend_change){ NULL, &a };
	diff.full = true;
	CHECK(nft_datapath_ops.apply(dp, &diff) == 0);
	diff.full = false;
	CHECK(dump_all(&d0) == 0);
	CHECK(dump_count(&d0, "chain ep-10.96.0.10-tcp-80-10.1.0.") == 2);
	snprintf(ep1, sizeof(ep1), "%s",
		 dump_find(&d0, "chain ep-10.96.0.10-tcp-80-10.1.0.1-8080 "));

	/* Twenty connections, one backend. */
	first = same_backend(lfd, 2, 20);
	CHECK(first >= 0);
	nft_ep_set_name(&a.key, NFT_SIDE_MAIN, &a.backends[first], set, sizeof(set));
	CHECK(dump_kernel(NFT_MSG_GETSETELEM, set, &d) >= 0 && d.n == 1);
	dump_free(&d);

	/* A third backend: the first two endpoint chains keep their handles, the client stays. */
	ch[0] = (struct frontend_change){ &a, &a3 };
	CHECK(nft_datapath_ops.apply(dp, &diff) == 0);
	CHECK(dump_all(&d) == 0);
	CHECK(dump_has(&d, ep1));
	CHECK(dump_count(&d, "chain ep-10.96.0.10-tcp-80-10.1.0.") == 3);
	dump_free(&d);
	CHECK(dump_kernel(NFT_MSG_GETSETELEM, set, &d) >= 0 && d.n == 1);
	dump_free(&d);
	CHECK(same_backend(lfd, 2, 10) == first);

	/* A new timeout re-creates the sets: clients are forgotten once. */
	ch[0] = (struct frontend_change){ &a3, &a_short };
	CHECK(nft_datapath_ops.apply(dp, &diff) == 0);
	CHECK(dump_kernel(NFT_MSG_GETSETELEM, set, &d) >= 0 && d.n == 0);
	dump_free(&d);
	/* ... the client is remembered again, then let go after the timeout (1 s). */
	/* 10.1.0.3 has no listener: retry until a reachable one is picked */
	for (int i = 0; i < 50; i++) {
		int rc = try_connect(SOCK_STREAM, "10.96.0.10", 80, 300);

		if (rc == 0) {
			first = accept_any(lfd, 2, 1000);
			break;
		}
		sleep(2); /* forget the unreachable pick */
	}
	CHECK(first >= 0);
	nft_ep_set_name(&a_short.key, NFT_SIDE_MAIN, &a_short.backends[first], set, sizeof(set));
	CHECK(dump_kernel(NFT_MSG_GETSETELEM, set, &d) >= 0 && d.n == 1);
	dump_free(&d);
	sleep(2);
	CHECK(dump_kernel(NFT_MSG_GETSETELEM, set, &d) >= 0 && d.n == 0);
	dump_free(&d);

	/* Affinity off: back to the one DNAT rule; no endpoint chain or set left. */
	ch[0] = (struct frontend_change){ &a_short, &plain };
	CHECK(nft_datapath_ops.apply(dp, &diff) == 0);
	CHECK(dump_all(&d) == 0);
	CHECK(dump_count(&d, "ep-10.96.0.10") == 0 && dump_count(&d, "aff-") == 0);
	CHECK(dump_count(&d, "chain fe-10.96.0.10-tcp-80 ") == 1);
	dump_free(&d);
	/* On again, then removed: everything goes. */
	ch[0] = (struct frontend_change){ &plain, &a3 };
	CHECK(nft_datapath_ops.apply(dp, &diff) == 0);
	ch[0] = (struct frontend_change){ &a3, NULL };
	CHECK(nft_datapath_ops.apply(dp, &diff) == 0);
	CHECK(dump_all(&d) == 0);
	CHECK(dump_count(&d, "fe-10.96.0.10") == 0 && dump_count(&d, "ep-") == 0);
	dump_free(&d);
	dump_free(&d0);
	nft_datapath_ops.close(dp);
	frontend_clear(&a);
	frontend_clear(&a3);
	frontend_clear(&a_short);
	frontend_clear(&plain);
	close(lfd[0]);
	close(lfd[1]);
	return 0;
}

static void test_kernel_affinity(void **state)
{
	run_in_netns(child_affinity);
}

/* ---- kernel: the longest names a valid Service can have ---- */

/*
 * A Service with a 63-character namespace and name, a rate limit, affinity
 * and source ranges on an IPv6 LB frontend of the longest address text and
 * port: applied, served, its counters read back (and kept by a new agent's
 * full sync). In the same apply, Services whose names the kernel could not
 * hold apart or at all ("a.b/c" and "a/b.c" were both rate.a.b.c; a
 * 253-character name was too long) are left out, and the rest is applied.
 */
static int child_long_names(void)
{
	static const char *const lb = "fd00:ffff:ffff:ffff:ffff:ffff:ffff:fff1";
	static const char *const be = "fd01:ffff:ffff:ffff:ffff:ffff:ffff:fffe";
	static const char *const ranges[] = { "fd00::/8", "192.0.2.0/24" };
	char ns[64], name[64], svc[128], chain[NFT_CHAIN_NAME_MAX], line[400], why[256];
	char dotted[300];
	struct frontend fes[5];
	struct frontend_change ch[5];
	struct service_stats st;
	struct state_diff diff;
	struct datapath *dp;
	struct dump d = { 0 };
	size_t n;
	int l6;

	if (sh("ip link set lo up && ip link add sl0 type veth peer name sl1 && "
	       "ip link set sl0 up && ip link set sl1 up && "
	       "ip -6 addr add fd01:ffff:ffff:ffff:ffff:ffff:ffff:fffe/64 dev sl0 nodad && "
	       "ip -6 route add fd00:ffff::/32 dev sl0 && "
	       "ip addr add 10.1.0.1/24 dev sl0 && ip route add 10.96.0.0/16 dev sl0"))
		return 77;
	l6 = tcp_listen(AF_INET6, 65534);
	CHECK(l6 >= 0);
	memset(ns, 0, sizeof(ns));
	memset(name, 0, sizeof(name));
	memset(ns, '0', 63); /* a namespace may start with a digit */
	memcpy(ns, "1-long-namespace", 16);
	memset(name, 'z', 63);
	memcpy(name, "a-long-service", 14);
	snprintf(svc, sizeof(svc), "%s/%s", ns, name);
	CHECK(strlen(svc) == 127);

	fe_init(&fes[0], lb, IPPROTO_TCP, 65535, FE_SERVE, 1, "fd01::", 65534);
	CHECK(ip_addr_parse(be, &fes[0].backends[0].addr));
	fes[0].kind = FE_LB_INGRESS;
	fes[0].preserve_source = true;
	fe_ranges(&fes[0], ranges, 2);
	fes[0].affinity_timeout = 10800;
	fes[0].rate = (struct rate_limit){ .count = 100, .period = 1, .burst = 100 };
	fes[0].service = strdup(svc);
	/* Names the kernel could not tell apart, or hold: left out, with a log line each. */
	fe_init(&fes[1], "10.96.0.11", IPPROTO_TCP, 80, FE_SERVE, 1, "10.1", 8080);
	fes[1].service = strdup("a.b/c");
	fe_init(&fes[2], "10.96.0.12", IPPROTO_TCP, 80, FE_SERVE, 1, "10.1", 8080);
	fes[2].service = strdup("a/b.c");
	memset(dotted, 0, sizeof(dotted));
	memset(dotted, 'd', 253);
	for (int i = 63; i < 253; i += 64)
		dotted[i] = '.';
	fe_init(&fes[3], "10.96.0.13", IPPROTO_TCP, 80, FE_SERVE, 1, "10.1", 8080);
	fes[3].service = malloc(strlen(dotted) + 8);
	sprintf(fes[3].service, "ns/%s", dotted);
	for (int i = 1; i <= 3; i++)
		fes[i].rate = fes[0].rate;
	/* The rest: applied. */
	fe_init(&fes[4], "10.96.0.14", IPPROTO_TCP, 80, FE_SERVE, 1, "10.1", 8080);
	fes[4].service = strdup("shop/web");

	diff = diff_of(ch, fes, 5, true);
	CHECK(nft_datapath_ops.open(&test_cfg, &dp, why, sizeof(why)) == 0);
	CHECK(nft_datapath_ops.apply(dp, &diff) == 0);
	if (getenv("SLUICE_DEBUG"))
		sh("nft list table inet sluice >&2");
	CHECK(dump_all(&d) == 0);
	nft_fe_chain_name(&fes[0].key, chain, sizeof(chain));
	CHECK(!strcmp(chain, "fe-fd00_ffff_ffff_ffff_ffff_ffff_ffff_fff1-tcp-65535"));
	snprintf(line, sizeof(line), "chain %s handle", chain);
	CHECK(dump_count(&d, line) == 1);
	snprintf(line, sizeof(line), "chain limit.%s.%s handle", ns, name);
	CHECK(dump_count(&d, line) == 1);
	CHECK(dump_count(&d, "chain ep-fd00_ffff_ffff_ffff_ffff_ffff_ffff_fff1-tcp-65535-"
			     "fd01_ffff_ffff_ffff_ffff_ffff_ffff_fffe-65534 handle") == 1);
	CHECK(dump_count(&d, "chain firewall-fd00_ffff_ffff_ffff_ffff_ffff_ffff_fff1-tcp-65535 "
			     "handle") == 1);
	CHECK(dump_count(&d, "firewall-ips6: ") == 1);
	CHECK(dump_count(&d, "services6: ") == 1);
	/* The Service beside them is served; the three that cannot be named are not. */
	CHECK(dump_count(&d, "chain fe-10.96.0.14-tcp-80 handle") == 1);
	CHECK(dump_count(&d, "chain fe-10.96.0.1") == 1);
	CHECK(dump_count(&d, "services4: ") == 1);
	CHECK(dump_count(&d, "limit.a") == 0);
	dump_free(&d);
	CHECK(stats_of(svc, &st, &n) && n == 1);
	CHECK(st.rate.count == 100 && st.admitted == 0);

	/* Served: through the firewall (source in fd00::/8), the limit and the affinity chain. */
	CHECK(try_connect(SOCK_STREAM, lb, 65535, 2000) == 0);
	CHECK(accept_any(&l6, 1, 1000) == 0);
	CHECK(try_connect(SOCK_STREAM, lb, 65535, 2000) == 0);
	CHECK(accept_any(&l6, 1, 1000) == 0);
	CHECK(stats_of(svc, &st, NULL) && st.admitted == 2);
	nft_datapath_ops.close(dp);

	/* A new agent's full sync reads the counters back under these names. */
	CHECK(nft_datapath_ops.open(&test_cfg, &dp, why, sizeof(why)) == 0);
	CHECK(nft_datapath_ops.apply(dp, &diff) == 0);
	CHECK(stats_of(svc, &st, &n) && n == 1 && st.admitted == 2);
	CHECK(try_connect(SOCK_STREAM, lb, 65535, 2000) == 0);
	CHECK(accept_any(&l6, 1, 1000) == 0);

	/* Removing everything, the never-programmed ones too, succeeds and leaves nothing. */
	for (int i = 0; i < 5; i++)
		ch[i] = (struct frontend_change){ &fes[i], NULL };
	diff = (struct state_diff){ .changes = ch, .n_changes = 5 };
	CHECK(nft_datapath_ops.apply(dp, &diff) == 0);
	CHECK(dump_all(&d) == 0);
	CHECK(dump_count(&d, "fe-") == 0 && dump_count(&d, "ep-") == 0 &&
	      dump_count(&d, "firewall-fd00") == 0 && dump_count(&d, "limit.") == 0);
	dump_free(&d);
	CHECK(!stats_of(svc, &st, &n) && n == 0);
	nft_datapath_ops.close(dp);
	for (int i = 0; i < 5; i++)
		frontend_clear(&fes[i]);
	close(l6);
	return 0;
}

static void test_kernel_long_names(void **state)
{
	run_in_netns(child_long_names);
}

/* ---- kernel: external traffic from a client namespace through the node ---- */

/* The three namespaces of child_external, held open by fd. */
static int ns_node = -1, ns_client = -1, ns_backend = -1;

static int ns_enter(int fd)
{
	return setns(fd, CLONE_NEWNET);
}

/* A new namespace, returned as an fd; the caller stays in the namespace it was in. */
static int ns_new(void)
{
	int fd;

	if (unshare(CLONE_NEWNET))
		return -1;
	fd = open("/proc/self/ns/net", O_RDONLY);
	ns_enter(ns_node);
	return fd;
}

static int sock_in(int ns, int family, int type)
{
	int fd;

	ns_enter(ns);
	fd = socket(family, type | SOCK_NONBLOCK, 0);
	ns_enter(ns_node);
	return fd;
}

static int listen_in(int ns, int family, int type, uint16_t port)
{
	struct sockaddr_in6 a6 = { .sin6_family = AF_INET6, .sin6_port = htons(port) };
	struct sockaddr_in a4 = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd = sock_in(ns, family, type), one = 1;

	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, family == AF_INET ? (struct sockaddr *)&a4 : (struct sockaddr *)&a6,
		 family == AF_INET ? sizeof(a4) : sizeof(a6)) ||
	    (type == SOCK_STREAM && listen(fd, 64))) {
		close(fd);
		return -1;
	}
	return fd;
}

static bool wait_fd(int fd, short events, int wait_ms)
{
	struct pollfd p = { .fd = fd, .events = events };

	return poll(&p, 1, wait_ms) == 1;
}

/*
 * One flow from a socket in namespace ns (the client, or the node itself)
 * to addr:port. The backend's listening socket lfd answers it: on success
 * the source address the backend saw is written to peer and 0 returned;
 * else -ECONNREFUSED, -ETIMEDOUT...
 */
static int flow(int ns, int type, const char *addr, uint16_t port, int lfd, char *peer, int wait_ms)
{
	struct sockaddr_storage ss = { 0 }, from;
	struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
	socklen_t len, flen = sizeof(from);
	int fd, afd = -1, err = 0;

	if (inet_pton(AF_INET, addr, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons(port);
		len = sizeof(*a4);
	} else {
		inet_pton(AF_INET6, addr, &a6->sin6_addr);
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons(port);
		len = sizeof(*a6);
	}
	fd = sock_in(ns, ss.ss_family, type);
	if (connect(fd, (struct sockaddr *)&ss, len) && errno != EINPROGRESS) {
		err = -errno;
		goto out;
	}
	if (type == SOCK_DGRAM) {
		char c = 'x';

		send(fd, &c, 1, 0);
		if (!wait_fd(lfd, POLLIN, wait_ms)) {
			err = -ETIMEDOUT;
			goto out;
		}
		recvfrom(lfd, &c, 1, 0, (struct sockaddr *)&from, &flen);
	} else {
		socklen_t elen = sizeof(err);

		if (!wait_fd(fd, POLLOUT, wait_ms)) {
			err = -ETIMEDOUT;
			goto out;
		}
		getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen);
		err = -err;
		if (err)
			goto out;
		if (!wait_fd(lfd, POLLIN, wait_ms)) {
			err = -ENOTCONN; /* connected, but not to our backend */
			goto out;
		}
		afd = accept(lfd, (struct sockaddr *)&from, &flen);
		if (afd < 0) {
			err = -errno;
			goto out;
		}
	}
	if (from.ss_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)&from)->sin_addr, peer, IP_ADDR_STRLEN);
	else
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&from)->sin6_addr, peer,
			  IP_ADDR_STRLEN);
out:
	if (afd >= 0)
		close(afd);
	close(fd);
	return err;
}

/* Checks that a flow reaches the backend from the expected source address. */
static bool flow_from(int ns, int type, const char *addr, uint16_t port, int lfd,
		      const char *want_src)
{
	char peer[IP_ADDR_STRLEN] = "";
	int rc = flow(ns, type, addr, port, lfd, peer, 2000);

	if (rc || strcmp(peer, want_src)) {
		fprintf(stderr, "flow to %s:%u: rc %d, backend saw '%s', expected '%s'\n", addr,
			port, rc, peer, want_src);
		return false;
	}
	return true;
}

static void fe_external(struct frontend *fe, enum frontend_kind kind, const char *addr,
			uint8_t proto, uint16_t port, enum frontend_action action,
			const char *be_prefix, uint16_t be_port, bool local)
{
	fe_init(fe, addr, proto, port, action, action == FE_SERVE ? 1 : 0, be_prefix, be_port);
	fe->kind = kind;
	fe->preserve_source = local;
}

/*
 *   client ns  c1 192.168.50.2, fd50::2 ---- c0 192.168.50.1, fd50::1   node ns (this one)
 *                                            b0 10.1.0.254, fd01::fe ---- b1 10.1.0.1, fd01::1  backend ns
 * The client routes 203.0.113.0/24 (externalIPs, LB IPs) to the node; the
 * backend's default route is the node, so it can answer a client whose
 * address was kept.
 */
static int setup_external(void)
{
	char cmd[1024];

	ns_node = open("/proc/self/ns/net", O_RDONLY);
	ns_client = ns_new();
	ns_backend = ns_new();
	if (ns_node < 0 || ns_client < 0 || ns_backend < 0)
		return -1;
	snprintf(cmd, sizeof(cmd),
		 "ip link set lo up && sysctl -qw net.ipv4.ip_forward=1 && "
		 "sysctl -qw net.ipv6.conf.all.forwarding=1 && "
		 "ip link add c0 type veth peer name c1 netns /proc/%d/fd/%d && "
		 "ip link add b0 type veth peer name b1 netns /proc/%d/fd/%d && "
		 "ip link set c0 up && ip link set b0 up && "
		 "ip addr add 192.168.50.1/24 dev c0 && ip -6 addr add fd50::1/64 dev c0 nodad && "
		 "ip addr add 10.1.0.254/24 dev b0 && ip -6 addr add fd01::fe/64 dev b0 nodad && "
		 "ip route add 203.0.113.0/24 via 10.1.0.1",
		 getpid(), ns_client, getpid(), ns_backend);
	if (sh(cmd))
		return -1;
	snprintf(cmd, sizeof(cmd),
		 "nsenter --net=/proc/%d/fd/%d sh -c 'ip link set lo up && ip link set c1 up && "
		 "ip addr add 192.168.50.2/24 dev c1 && ip -6 addr add fd50::2/64 dev c1 nodad && "
		 "ip route add 203.0.113.0/24 via 192.168.50.1 && "
		 "ip route add 10.1.0.254/32 via 192.168.50.1'",
		 getpid(), ns_client);
	if (sh(cmd))
		return -1;
	snprintf(cmd, sizeof(cmd),
		 "nsenter --net=/proc/%d/fd/%d sh -c 'ip link set lo up && ip link set b1 up && "
		 "ip addr add 10.1.0.1/24 dev b1 && ip -6 addr add fd01::1/64 dev b1 nodad && "
		 "ip route add default via 10.1.0.254 && ip -6 route add default via fd01::fe'",
		 getpid(), ns_backend);
	return sh(cmd);
}

/*
 * NodePort (TCP, UDP, IPv6), externalIP and LB IPs from a client outside
 * the node: Cluster policy shows the node's address to the backend, Local
 * keeps the client's; source ranges admit and drop; no-endpoint NodePorts
 * are refused or dropped; a local client reaches a NodePort on the node's
 * own address. Then range changes and removal, incrementally.
 */
static int child_external(void)
{
	static const char *const admit[] = { "192.168.50.0/28", "2001:db8::/32" };
	static const char *const others[] = { "198.51.100.0/24" };
	struct frontend fes[10], lb_open, lb_admit2, local0;
	struct frontend_change ch[10];
	struct state_diff diff;
	struct datapath *dp;
	struct dump d = { 0 };
	char why[256];
	int l4, l6, lu;

	if (setup_external())
		return 77;
	l4 = listen_in(ns_backend, AF_INET, SOCK_STREAM, 8080);
	l6 = listen_in(ns_backend, AF_INET6, SOCK_STREAM, 8080);
	lu = listen_in(ns_backend, AF_INET, SOCK_DGRAM, 5353);
	CHECK(l4 >= 0 && l6 >= 0 && lu >= 0);

	fe_external(&fes[0], FE_NODE_PORT, "0.0.0.0", IPPROTO_TCP, 30080, FE_SERVE, "10.1", 8080,
		    false);
	fe_external(&fes[1], FE_NODE_PORT, "0.0.0.0", IPPROTO_TCP, 30081, FE_SERVE, "10.1", 8080,
		    true);
	fes[1].backends[0] = fes[0].backends[0];
	fe_external(&fes[2], FE_NODE_PORT, "0.0.0.0", IPPROTO_UDP, 30053, FE_SERVE, "10.1", 5353,
		    false);
	fes[2].backends[0] = fes[0].backends[0];
	fes[2].backends[0].port = 5353;
	fe_external(&fes[3], FE_NODE_PORT, "::", IPPROTO_TCP, 30080, FE_SERVE, "fd01::", 8080,
		    false);
	fe_external(&fes[4], FE_EXTERNAL_IP, "203.0.113.10", IPPROTO_TCP, 80, FE_SERVE, "10.1",
		    8080, false);
	fes[4].backends[0] = fes[0].backends[0];
	fe_external(&fes[5], FE_LB_INGRESS, "203.0.113.20", IPPROTO_TCP, 80, FE_SERVE, "10.1", 8080,
		    true);
	fes[5].backends[0] = fes[0].backends[0];
	fe_ranges(&fes[5], admit, 2);
	fe_external(&fes[6], FE_LB_INGRESS, "203.0.113.21", IPPROTO_TCP, 80, FE_SERVE, "10.1", 8080,
		    false);
	fes[6].backends[0] = fes[0].backends[0];
	fe_ranges(&fes[6], others, 1);
	fe_external(&fes[7], FE_NODE_PORT, "0.0.0.0", IPPROTO_TCP, 30090, FE_DROP, "10.1", 0, true);
	fe_external(&fes[8], FE_NODE_PORT, "0.0.0.0", IPPROTO_TCP, 30091, FE_REFUSE, "10.1", 0,
		    false);
	fe_external(&fes[9], FE_LB_INGRESS, "203.0.113.22", IPPROTO_TCP, 80, FE_REFUSE, "10.1", 0,
		    false);
	fe_ranges(&fes[9], others, 1);
	diff = diff_of(ch, fes, 10, true);
	CHECK(nft_datapath_ops.open(&test_cfg, &dp, why, sizeof(why)) == 0);
	CHECK(nft_datapath_ops.apply(dp, &diff) == 0);
	if (getenv("SLUICE_DEBUG"))
		sh("nft list table inet sluice >&2");

	CHECK(dump_all(&d) == 0);
	CHECK(dump_count(&d, "chain fe-nodeport4-tcp-30080 ") == 1);
	CHECK(dump_count(&d, "chain fe-nodeport6-tcp-30080 ") == 1);
	CHECK(dump_count(&d, "chain nat-postrouting ") == 1);
	CHECK(dump_count(&d, "chain filter-prerouting ") == 1);
	CHECK(dump_count(&d, "chain firewall-203.0.113.20-tcp-80 ") == 1);
	CHECK(dump_count(&d, "chain firewall-203.0.113.22-tcp-80 ") == 1);
	/* (no-endpoint-nodeports4 lines contain "nodeports4: " too) */
	CHECK(dump_count(&d, "nodeports4: ") == 3 + 2);
	CHECK(dump_count(&d, "no-endpoint-nodeports4: ") == 2);
	CHECK(dump_count(&d, "firewall-ips4: ") == 3);
	CHECK(dump_count(&d, "[ masq ") == 1);
	dump_free(&d);

	/* NodePort, Cluster: the backend sees the node's address. TCP, UDP, IPv6. */
	CHECK(flow_from(ns_client, SOCK_STREAM, "192.168.50.1", 30080, l4, "10.1.0.254"));
	CHECK(flow_from(ns_client, SOCK_DGRAM, "192.168.50.1", 30053, lu, "10.1.0.254"));
	CHECK(flow_from(ns_client, SOCK_STREAM, "fd50::1", 30080, l6, "fd01::fe"));
	/* A NodePort answers on every address of the node. */
	CHECK(flow_from(ns_client, SOCK_STREAM, "10.1.0.254", 30080, l4, "10.1.0.254"));
	/* NodePort, Local: the client's own address. */
	CHECK(flow_from(ns_client, SOCK_STREAM, "192.168.50.1", 30081, l4, "192.168.50.2"));
	/* externalIP (Cluster) and LB IP (Local, client inside the ranges). */
	CHECK(flow_from(ns_client, SOCK_STREAM, "203.0.113.10", 80, l4, "10.1.0.254"));
	CHECK(flow_from(ns_client, SOCK_STREAM, "203.0.113.20", 80, l4, "192.168.50.2"));
	/* Outside the ranges: dropped, even where there are no endpoints. */
	CHECK(flow(ns_client, SOCK_STREAM, "203.0.113.21", 80, l4, why, 300) == -ETIMEDOUT);
	CHECK(flow(ns_client, SOCK_STREAM, "203.0.113.22", 80, l4, why, 300) == -ETIMEDOUT);
	/* NodePorts without endpoints: Local ones elsewhere dropped, others refused. */
	CHECK(flow(ns_client, SOCK_STREAM, "192.168.50.1", 30090, l4, why, 300) == -ETIMEDOUT);
	CHECK(flow(ns_client, SOCK_STREAM, "192.168.50.1", 30091, l4, why, 2000) == -ECONNREFUSED);
	/* A client on the node: nat output, masqueraded to the node's address towards the backend. */
	CHECK(flow_from(ns_node, SOCK_STREAM, "192.168.50.1", 30080, l4, "10.1.0.254"));
	CHECK(flow_from(ns_node, SOCK_STREAM, "203.0.113.10", 80, l4, "10.1.0.254"));
	/* Not on loopback, as kube-proxy. */
	CHECK(flow(ns_node, SOCK_STREAM, "127.0.0.1", 30080, l4, why, 300) == -ECONNREFUSED);

	/* The client leaves the ranges of .20: dropped (new flows); back in: admitted. */
	lb_open = fes[5];
	lb_open.source_ranges = fes[6].source_ranges;
	lb_open.n_source_ranges = 1;
	ch[0] = (struct frontend_change){ &fes[5], &lb_open };
	diff = (struct state_diff){ .changes = ch, .n_changes = 1 };
	CHECK(nft_datapath_ops.apply(dp, &diff) == 0);
	CHECK(flow(ns_client, SOCK_STREAM, "203.0.113.20", 80, l4, why, 300) == -ETIMEDOUT);
	/* No ranges at all on .21: everyone; .20 admitted again. */
	lb_admit2 = fes[6];
	lb_admit2.n_source_ranges = 0;
	ch[0] = (struct frontend_change){ &lb_open, &fes[5] };
	ch[1] = (struct frontend_change){ &fes[6], &lb_admit2 };
	diff.n_changes = 2;
	CHECK(nft_datapath_ops.apply(dp, &diff) == 0);
	CHECK(flow_from(ns_client, SOCK_STREAM, "203.0.113.20", 80, l4, "192.168.50.2"));
	CHECK(flow_from(ns_client, SOCK_STREAM, "203.0.113.21", 80, l4, "10.1.0.254"));
	CHECK(dump_all(&d) == 0);
	CHECK(dump_count(&d, "firewall-203.0.113.21") == 0);
	dump_free(&d);
	/* Cluster -> Local on the NodePort: the chain is rewritten without the mark. */
	local0 = fes[0];
	local0.preserve_source = true;
	ch[0] = (struct frontend_change){ &fes[0], &local0 };
	diff.n_changes = 1;
	CHECK(nft_datapath_ops.apply(dp, &diff) == 0);
	CHECK(flow_from(ns_client, SOCK_STREAM, "192.168.50.1", 30080, l4, "192.168.50.2"));
	/* Everything removed: nothing of it is left. */
	diff.n_changes = 0;
	for (int i = 0; i < 10; i++)
		ch[diff.n_changes++] = (struct frontend_change){ i == 0 ? &local0 :
								 i == 6 ? &lb_admit2 :
									  &fes[i],
								 NULL };
	CHECK(nft_datapath_ops.apply(dp, &diff) == 0);
	CHECK(dump_all(&d) == 0);
	CHECK(dump_count(&d, "fe-") == 0 && dump_count(&d, "firewall-2") == 0 &&
	      dump_count(&d, "allow-") == 0);
	CHECK(dump_count(&d, "nodeports4: ") == 0 && dump_count(&d, "firewall-ips4: ") == 0);
	dump_free(&d);
	nft_datapath_ops.close(dp);
	for (int i = 0; i < 10; i++)
		frontend_clear(&fes[i]);
	close(l4);
	close(l6);
	close(lu);
	return 0;
}

static void test_kernel_external_traffic(void **state)
{
	run_in_netns(child_external);
}

/* ---- externalTrafficPolicy Local: the node chains (fe-out-...) ---- */

/* The handle of chain name in d, 0 if absent. */
static unsigned long long chain_handle(const struct dump *d, const char *name)
{
	char prefix[128];
	size_t len = (size_t)snprintf(prefix, sizeof(prefix), "chain %s handle ", name);

	for (size_t i = 0; i < d->n; i++)
		if (!strncmp(d->lines[i], prefix, len))
			return strtoull(d->lines[i] + len, NULL, 10);
	return 0;
}

/* Applies changes (old[i] -> new[i], either NULL) in one incremental batch. */
static int apply_changes(struct datapath *dp, const struct frontend **old,
			 const struct frontend **new, size_t n)
{
	struct frontend_change ch[4];
	struct state_diff diff = { .changes = ch, .n_changes = n };

	for (size_t i = 0; i < n; i++)
		ch[i] = (struct frontend_change){ old[i], new[i] };
	return nft_datapath_ops.apply(dp, &diff);
}

/* Elements of every node map, and of all the backend maps together. */
struct node_counts {
	size_t services4, services6, nodeports4, backends, out_chains, ep_out_chains;
};

static int node_counts(struct node_counts *c, struct dump *d)
{
	static const char *const maps[] = { "node-services4", "node-services6", "node-nodeports4" };
	size_t *n[] = { &c->services4, &c->services6, &c->nodeports4 };

	memset(c, 0, sizeof(*c));
	if (dump_all(d))
		return -1;
	for (size_t i = 0; i < 3; i++) {
		struct dump e = { 0 };

		if (dump_kernel(NFT_MSG_GETSETELEM, maps[i], &e) < 0)
			return -1;
		*n[i] = e.n;
		dump_free(&e);
	}
	/* Element lines only: rules name the maps too. */
	for (size_t i = 0; i < d->n; i++)
		c->backends += !strncmp(d->lines[i], "backends", 8);
	c->out_chains = dump_count(d, "chain fe-out-");
	c->ep_out_chains = dump_count(d, "chain ep-out-");
	return 0;
}

/*
 * Every transition of a frontend's node chain, each one batch the kernel
 * takes: added with the frontend (full sync), its node set changed (the
 * chain rewritten in place, its range replaced), the outside side changed
 * alone, the policy switched to Cluster and back (chain and element removed
 * and added), no endpoint anywhere, adoption by a new agent, removal.
 */
static int child_node_chains(void)
{
	static const char *const lb = "fe-out-10.99.2.21-tcp-80";
	struct frontend a[6], np[2], v6;
	const struct frontend *old[3], *new[3];
	struct frontend_change ch[3];
	struct state_diff diff;
	struct node_counts c;
	struct dump d = { 0 };
	struct datapath *dp;
	unsigned long long h;
	char why[256];

	/* a[0]: LB IP, no local endpoint (dropped from outside), two cluster-wide. */
	fe_init(&a[0], "10.99.2.21", IPPROTO_TCP, 80, FE_DROP, 0, "10.1", 0);
	fe_node_set(&a[0], FE_LB_INGRESS, 2, "10.244", 8080);
	/* a[1]: a third endpoint elsewhere. */
	fe_init(&a[1], "10.99.2.21", IPPROTO_TCP, 80, FE_DROP, 0, "10.1", 0);
	fe_node_set(&a[1], FE_LB_INGRESS, 3, "10.244", 8080);
	/* a[2]: one of them is local now: served from outside too. */
	fe_init(&a[2], "10.99.2.21", IPPROTO_TCP, 80, FE_SERVE, 1, "10.244", 8080);
	fe_node_set(&a[2], FE_LB_INGRESS, 3, "10.244", 8080);
	/* a[3]: externalTrafficPolicy Cluster: one chain, masqueraded, no node set. */
	fe_init(&a[3], "10.99.2.21", IPPROTO_TCP, 80, FE_SERVE, 3, "10.244", 8080);
	a[3].kind = FE_LB_INGRESS;
	/* a[4]: Local again. */
	fe_init(&a[4], "10.99.2.21", IPPROTO_TCP, 80, FE_SERVE, 1, "10.244", 8080);
	fe_node_set(&a[4], FE_LB_INGRESS, 3, "10.244", 8080);
	/* a[5]: no endpoint anywhere: refused, no node chain. */
	fe_init(&a[5], "10.99.2.21", IPPROTO_TCP, 80, FE_REFUSE, 0, "10.1", 0);
	fe_node_set(&a[5], FE_LB_INGRESS, 0, "10.244", 8080);
	/* A NodePort served locally, and its node set. */
	fe_init(&np[0], "0.0.0.0", IPPROTO_UDP, 30081, FE_SERVE, 1, "10.244", 5353);
	fe_node_set(&np[0], FE_NODE_PORT, 2, "10.244", 5353);
	fe_init(&np[1], "0.0.0.0", IPPROTO_UDP, 30081, FE_REFUSE, 0, "10.1", 0);
	fe_node_set(&np[1], FE_NODE_PORT, 0, "10.244", 5353);
	/* IPv6 with affinity: endpoint chains on both sides. */
	fe_init(&v6, "fd00:99::21", IPPROTO_TCP, 80, FE_SERVE, 1, "fd00:1::", 8080);
	fe_node_set(&v6, FE_LB_INGRESS, 2, "fd00:1::", 8080);
	v6.affinity_timeout = 60;

	CHECK(nft_datapath_ops.open(&test_cfg, &dp, why, sizeof(why)) == 0);
	new[0] = &a[0];
	new[1] = &np[0];
	new[2] = &v6;
	for (int i = 0; i < 3; i++)
		ch[i] = (struct frontend_change){ NULL, new[i] };
	diff = (struct state_diff){ .full = true, .changes = ch, .n_changes = 3 };
	CHECK(nft_datapath_ops.apply(dp, &diff) == 0);
	CHECK(node_counts(&c, &d) == 0);
	CHECK(c.services4 == 1 && c.services6 == 1 && c.nodeports4 == 1);
	CHECK(c.out_chains == 3 && c.ep_out_chains == 2);
	CHECK(chain_handle(&d, "fe-10.99.2.21-tcp-80") == 0); /* dropped from outside */
	CHECK(dump_count(&d, "no-endpoints4:") == 1 && dump_count(&d, "nodeports4:") == 1);
	CHECK(dump_count(&d, "chain ep-fd00_99__21-tcp-80-") == 1);
	CHECK(c.backends == 2 + 1 + 2); /* affinity holds no range */
	h = chain_handle(&d, lb);
	CHECK(h != 0);
	dump_free(&d);

	/* The node set alone changes: the same chain, a new range, the old one gone. */
	old[0] = &a[0];
	new[0] = &a[1];
	CHECK(apply_changes(dp, old, new, 1) == 0);
	CHECK(node_counts(&c, &d) == 0);
	CHECK(chain_handle(&d, lb) == h && c.services4 == 1 && c.backends == 3 + 1 + 2);
	dump_free(&d);

	/* The outside side alone: the node chain stays as it is. */
	old[0] = &a[1];
	new[0] = &a[2];
	CHECK(apply_changes(dp, old, new, 1) == 0);
	CHECK(node_counts(&c, &d) == 0);
	CHECK(chain_handle(&d, lb) == h && chain_handle(&d, "fe-10.99.2.21-tcp-80") != 0);
	CHECK(dump_count(&d, "no-endpoints4:") == 0 && c.backends == 3 + 1 + 1 + 2);
	dump_free(&d);

	/* Cluster: the node chain, its element and its range go in the same batch. */
	old[0] = &a[2];
	new[0] = &a[3];
	CHECK(apply_changes(dp, old, new, 1) == 0);
	CHECK(node_counts(&c, &d) == 0);
	CHECK(chain_handle(&d, lb) == 0 && c.services4 == 0 && c.out_chains == 2);
	CHECK(c.backends == 3 + 1 + 2);
	dump_free(&d);

	/* Local again, and the NodePort loses every endpoint, in one batch. */
	old[0] = &a[3];
	new[0] = &a[4];
	old[1] = &np[0];
	new[1] = &np[1];
	CHECK(apply_changes(dp, old, new, 2) == 0);
	CHECK(node_counts(&c, &d) == 0);
	CHECK(chain_handle(&d, lb) != 0 && c.services4 == 1 && c.nodeports4 == 0);
	CHECK(chain_handle(&d, "fe-out-nodeport4-udp-30081") == 0);
	CHECK(dump_count(&d, "no-endpoint-nodeports4:") == 1 && c.backends == 1 + 3);
	dump_free(&d);
	nft_datapath_ops.close(dp);

	/* A new agent adopts the table: the same shape after its full sync. */
	CHECK(nft_datapath_ops.open(&test_cfg, &dp, why, sizeof(why)) == 0);
	new[0] = &a[4];
	new[1] = &np[1];
	new[2] = &v6;
	for (int i = 0; i < 3; i++)
		ch[i] = (struct frontend_change){ NULL, new[i] };
	CHECK(nft_datapath_ops.apply(dp, &diff) == 0);
	CHECK(node_counts(&c, &d) == 0);
	CHECK(c.services4 == 1 && c.services6 == 1 && c.nodeports4 == 0);
	CHECK(c.out_chains == 2 && c.ep_out_chains == 2 && c.backends == 1 + 3);
	dump_free(&d);

	/* No endpoint anywhere, then everything removed: nothing of them stays. */
	old[0] = &a[4];
	new[0] = &a[5];
	CHECK(apply_changes(dp, old, new, 1) == 0);
	CHECK(node_counts(&c, &d) == 0);
	CHECK(c.services4 == 0 && chain_handle(&d, lb) == 0 && c.backends == 0);
	dump_free(&d);
	old[0] = &a[5];
	old[1] = &np[1];
	old[2] = &v6;
	new[0] = new[1] = new[2] = NULL;
	CHECK(apply_changes(dp, old, new, 3) == 0);
	CHECK(node_counts(&c, &d) == 0);
	CHECK(c.services6 == 0 && c.out_chains == 0 && c.ep_out_chains == 0 && c.backends == 0);
	CHECK(dump_count(&d, "chain fe-") == 0 && dump_count(&d, "chain ep-") == 0);
	dump_free(&d);
	nft_datapath_ops.close(dp);
	for (int i = 0; i < 6; i++)
		frontend_clear(&a[i]);
	frontend_clear(&np[0]);
	frontend_clear(&np[1]);
	frontend_clear(&v6);
	return 0;
}

static void test_kernel_node_chains(void **state)
{
	run_in_netns(child_node_chains);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kernel_open_apply_cleanup),
		cmocka_unit_test(test_kernel_add_one_keeps_handles),
		cmocka_unit_test(test_kernel_restart_adopts_table),
		cmocka_unit_test(test_kernel_changes_touch_only_their_frontend),
		cmocka_unit_test(test_kernel_big_full_sync),
		cmocka_unit_test(test_kernel_full_sync_scale),
		cmocka_unit_test(test_kernel_traffic_dnat_before_filter),
		cmocka_unit_test(test_kernel_rate_limit_traffic_and_counters),
		cmocka_unit_test(test_kernel_affinity),
		cmocka_unit_test(test_kernel_long_names),
		cmocka_unit_test(test_kernel_external_traffic),
		cmocka_unit_test(test_kernel_node_chains),
	};

	log_set_level(getenv("SLUICE_DEBUG") ? LOG_DEBUG : LOG_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
