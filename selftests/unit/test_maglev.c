// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests of Maglev consistent hashing (core/maglev.c) and of the
 * sluice.io/lb-algorithm choice: the table is the same in two processes
 * and against a recorded checksum (agents on two nodes, or one restarted,
 * agree), a removed backend moves little else, the spread is even, and the
 * backends in the table are the set the resolver's rules chose.
 */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/lb_algorithm.h"
#include "core/maglev.h"
#include "core/resolver.h"
#include "source/manifest.h"

#define M MAGLEV_DEFAULT_TABLE_SIZE

/* n backends 10.<i/256>.<i%256>.1:8080, sorted as state.h sorts them. */
static struct backend *make_backends(size_t n)
{
	struct backend *be = calloc(n, sizeof(*be));

	assert_non_null(be);
	for (size_t i = 0; i < n; i++) {
		be[i].addr.family = AF_INET;
		be[i].addr.bytes[0] = 10;
		be[i].addr.bytes[1] = (uint8_t)(i >> 8);
		be[i].addr.bytes[2] = (uint8_t)i;
		be[i].addr.bytes[3] = 1;
		be[i].port = 8080;
	}
	return be;
}

static uint64_t table_checksum(const uint32_t *t, uint32_t m)
{
	uint64_t h = 1469598103934665603ull;

	for (uint32_t i = 0; i < m; i++) {
		h ^= t[i];
		h *= 1099511628211ull;
	}
	return h;
}

static uint64_t checksum_of(size_t n)
{
	struct backend *be = make_backends(n);
	uint32_t *t = calloc(M, sizeof(*t));
	uint64_t sum;

	assert_non_null(t);
	maglev_build(be, n, M, t);
	sum = table_checksum(t, M);
	free(t);
	free(be);
	return sum;
}

static const char *self;

/* The checksum that a new process computes (exec'd, as another agent would). */
static uint64_t checksum_in_child(size_t n)
{
	char buf[64] = { 0 }, arg[16];
	int fds[2], status;
	ssize_t got, total = 0;
	pid_t pid;

	snprintf(arg, sizeof(arg), "%zu", n);
	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (!pid) {
		close(fds[0]);
		dup2(fds[1], STDOUT_FILENO);
		execl(self, self, "--checksum", arg, (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	while ((got = read(fds[0], buf + total, sizeof(buf) - 1 - total)) > 0)
		total += got;
	close(fds[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	return strtoull(buf, NULL, 16);
}

/*
 * Recorded once: a change here changes which backend every Maglev flow
 * gets after an upgrade (or between nodes of two versions). Do not update
 * it without saying so in the release notes.
 */
#define CHECKSUM_10_BACKENDS 0x13658e37a0c3727bull

static void test_same_table_in_two_processes(void **state)
{
	uint64_t here = checksum_of(10);

	assert_true(here == checksum_in_child(10));
	assert_true(checksum_in_child(10) == checksum_in_child(10));
	assert_true(checksum_of(57) == checksum_in_child(57));
	print_message("# checksum of 10 backends: 0x%016llx\n", (unsigned long long)here);
	assert_true(here == CHECKSUM_10_BACKENDS);
}

/* Entries per backend within 5% of m / n, for n from 1 to 163 (100 entries each). */
static void test_spread_is_even(void **state)
{
	static const size_t ns[] = { 1, 2, 3, 5, 7, 10, 16, 33, 50, 64, 100, 128, 163 };
	uint32_t *t = calloc(M, sizeof(*t));

	assert_non_null(t);
	for (size_t k = 0; k < sizeof(ns) / sizeof(ns[0]); k++) {
		size_t n = ns[k];
		struct backend *be = make_backends(n);
		uint32_t *count = calloc(n, sizeof(*count));
		double even = (double)M / n;

		maglev_build(be, n, M, t);
		for (uint32_t i = 0; i < M; i++) {
			assert_true(t[i] < n);
			count[t[i]]++;
		}
		for (size_t i = 0; i < n; i++) {
			if (count[i] < even * 0.95 || count[i] > even * 1.05)
				fail_msg("n=%zu: backend %zu has %u entries, even is %.1f", n, i,
					 count[i], even);
		}
		free(count);
		free(be);
	}
	free(t);
}

/*
 * Removing backend r of n: every entry that held it moves (to any other),
 * and of the entries that held another backend at most 1% move.
 */
static void test_removal_moves_little_else(void **state)
{
	static const size_t ns[] = { 3, 4, 5, 8, 10, 13, 20, 32, 50, 75, 100 };
	uint32_t *before = calloc(M, sizeof(*before)), *after = calloc(M, sizeof(*after));
	double worst = 0;

	assert_non_null(before);
	assert_non_null(after);
	for (size_t k = 0; k < sizeof(ns) / sizeof(ns[0]); k++) {
		size_t n = ns[k];
		struct backend *be = make_backends(n);
		struct backend *rest = calloc(n - 1, sizeof(*rest));

		maglev_build(be, n, M, before);
		/* Every one of them in turn: the identity, not the position, must count. */
		for (size_t r = 0; r < n; r++) {
			uint32_t others_moved = 0;

			memcpy(rest, be, r * sizeof(*rest));
			memcpy(rest + r, be + r + 1, (n - 1 - r) * sizeof(*rest));
			maglev_build(rest, n - 1, M, after);
			for (uint32_t i = 0; i < M; i++) {
				/* after's index j is be's j, or j + 1 past the removed one. */
				size_t was = before[i],
				       now = after[i] >= r ? after[i] + 1 : after[i];

				assert_true(now != r);
				if (was != r && was != now)
					others_moved++;
			}
			if ((double)others_moved / M > worst)
				worst = (double)others_moved / M;
			if (others_moved > M / 100)
				fail_msg("n=%zu, removed %zu: %u other entries moved (%.2f%%)", n,
					 r, others_moved, 100.0 * others_moved / M);
		}
		free(rest);
		free(be);
	}
	print_message("# worst share of other entries moved: %.3f%%\n", 100 * worst);
	free(before);
	free(after);
}

/* Adding one backend back is the reverse: the table returns to what it was. */
static void test_rebuild_is_deterministic(void **state)
{
	struct backend *be = make_backends(20);
	uint32_t *a = calloc(M, sizeof(*a)), *b = calloc(M, sizeof(*b));

	maglev_build(be, 20, M, a);
	maglev_build(be, 19, M, b);
	maglev_build(be, 20, M, b);
	assert_memory_equal(a, b, M * sizeof(*a));
	free(a);
	free(b);
	free(be);
}

static void test_table_size_flag(void **state)
{
	static const char *const bad[] = { "16380",  "16383",  "0",	      "2",
					   "241",    "131101", "-16381",      "abc",
					   "16381x", "",       "999999999999" };
	char why[160];
	uint32_t m;

	assert_int_equal(maglev_table_size_parse("16381", &m, why, sizeof(why)), 0);
	assert_int_equal(m, 16381);
	assert_int_equal(maglev_table_size_parse("251", &m, why, sizeof(why)), 0);
	assert_int_equal(maglev_table_size_parse("65521", &m, why, sizeof(why)), 0);
	assert_int_equal(maglev_table_size_parse("131071", &m, why, sizeof(why)), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		m = 7;
		assert_int_not_equal(maglev_table_size_parse(bad[i], &m, why, sizeof(why)), 0);
		assert_int_equal(m, 7);
		assert_non_null(strstr(why, "not a prime from 251 to 131071"));
	}
	assert_false(maglev_is_prime(1));
	assert_true(maglev_is_prime(2));
	assert_true(maglev_is_prime(16381));
	assert_false(maglev_is_prime(16383)); /* 3 x 43 x 127 */
}

/* ---- the annotation, the default, and the set the table is built from ---- */

static const char *const SLICE = "---\n"
				 "apiVersion: discovery.k8s.io/v1\n"
				 "kind: EndpointSlice\n"
				 "metadata:\n"
				 "  name: web-1\n"
				 "  namespace: default\n"
				 "  labels: {kubernetes.io/service-name: web}\n"
				 "addressType: IPv4\n"
				 "ports: [{port: 8080, protocol: TCP}]\n"
				 "endpoints:\n"
				 "- addresses: [10.1.0.1]\n"
				 "  conditions: {ready: %s}\n"
				 "- addresses: [10.1.0.2]\n"
				 "  conditions: {ready: false, serving: false}\n"
				 "- addresses: [10.1.0.3]\n"
				 "  conditions: {ready: false, serving: true, terminating: true}\n"
				 "- addresses: [10.1.0.4]\n"
				 "  conditions: {ready: %s}\n";

/* The frontends of Service default/web annotated algo (NULL: none), with that slice. */
static void resolve_web(const char *algo, const char *ready, struct frontend_list *out,
			struct manifest_objects *objs)
{
	char text[2048], annot[128] = "";
	size_t len;
	struct resolve_input in = { .node_name = "node-a", .service_id = 1 };

	if (algo)
		snprintf(annot, sizeof(annot), "  annotations: {sluice.io/lb-algorithm: %s}\n",
			 algo);
	len = snprintf(
		text, sizeof(text),
		"apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  namespace: default\n"
		"%sspec:\n  type: NodePort\n  clusterIP: 10.96.0.10\n"
		"  ports: [{port: 80, nodePort: 30080, protocol: TCP, targetPort: 8080}]\n",
		annot);
	snprintf(text + len, sizeof(text) - len, SLICE, ready, ready);
	memset(objs, 0, sizeof(*objs));
	assert_int_equal(manifest_decode(text, strlen(text), "test.yaml", objs), 0);
	assert_int_equal(objs->n_services, 1);
	assert_int_equal(objs->n_slices, 1);
	in.svc = objs->services[0];
	in.slices = (const struct endpoint_slice *const *)objs->slices;
	in.n_slices = 1;
	assert_int_equal(resolve_service(&in, out), 0);
	assert_true(out->n > 0);
}

static size_t count_maglev(const struct frontend_list *list)
{
	size_t n = 0;

	for (size_t i = 0; i < list->n; i++)
		n += list->items[i].maglev;
	return n;
}

static void test_annotation_and_default(void **state)
{
	struct manifest_objects objs;
	struct frontend_list list = { 0 };

	lb_algorithm_set_default(LB_ALGO_RANDOM);
	resolve_web("maglev", "true", &list, &objs);
	assert_int_equal(count_maglev(&list), list.n);
	frontend_list_clear(&list);
	manifest_objects_clear(&objs);

	resolve_web(NULL, "true", &list, &objs);
	assert_int_equal(count_maglev(&list), 0);
	frontend_list_clear(&list);
	manifest_objects_clear(&objs);

	/* --lb-algorithm=maglev: the default; the annotation random still wins. */
	lb_algorithm_set_default(LB_ALGO_MAGLEV);
	resolve_web(NULL, "true", &list, &objs);
	assert_int_equal(count_maglev(&list), list.n);
	frontend_list_clear(&list);
	manifest_objects_clear(&objs);
	resolve_web("random", "true", &list, &objs);
	assert_int_equal(count_maglev(&list), 0);
	frontend_list_clear(&list);
	manifest_objects_clear(&objs);

	/* A wrong value: the default, and the Service is still served. */
	resolve_web("round-robin", "true", &list, &objs);
	assert_int_equal(objs.services[0]->lb_algorithm, LB_ALGO_DEFAULT);
	assert_int_equal(count_maglev(&list), list.n);
	frontend_list_clear(&list);
	manifest_objects_clear(&objs);
	lb_algorithm_set_default(LB_ALGO_RANDOM);
	resolve_web("round-robin", "true", &list, &objs);
	assert_int_equal(count_maglev(&list), 0);
	for (size_t i = 0; i < list.n; i++)
		if (list.items[i].key.proto)
			assert_int_equal(list.items[i].action, FE_SERVE);
	frontend_list_clear(&list);
	manifest_objects_clear(&objs);

	assert_int_not_equal(lb_algorithm_parse("Maglev", &(enum lb_algorithm){ 0 }), 0);
	assert_int_not_equal(lb_algorithm_parse(NULL, &(enum lb_algorithm){ 0 }), 0);
}

/* Which backends (last address byte) a table built from fe's set holds. */
static unsigned table_members(const struct frontend *fe)
{
	uint32_t *t = calloc(M, sizeof(*t));
	unsigned members = 0;

	assert_true(fe->n_backends > 0);
	maglev_build(fe->backends, fe->n_backends, M, t);
	for (uint32_t i = 0; i < M; i++)
		members |= 1u << fe->backends[t[i]].addr.bytes[3];
	free(t);
	return members;
}

static const struct frontend *node_port_of(const struct frontend_list *list)
{
	for (size_t i = 0; i < list->n; i++)
		if (list->items[i].kind == FE_NODE_PORT)
			return &list->items[i];
	fail_msg("no NodePort frontend");
	return NULL;
}

/*
 * The table holds exactly the set the selection rules chose: ready
 * endpoints, and serving-and-terminating ones only when none is ready;
 * never a not-serving one.
 */
static void test_table_follows_selection_rules(void **state)
{
	struct manifest_objects objs;
	struct frontend_list list = { 0 };

	resolve_web("maglev", "true", &list, &objs);
	assert_int_equal(table_members(node_port_of(&list)), (1u << 1) | (1u << 4));
	frontend_list_clear(&list);
	manifest_objects_clear(&objs);

	resolve_web("maglev", "false", &list, &objs);
	assert_int_equal(node_port_of(&list)->choice, CHOICE_TERMINATING);
	assert_int_equal(table_members(node_port_of(&list)), 1u << 3);
	frontend_list_clear(&list);
	manifest_objects_clear(&objs);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_same_table_in_two_processes),
		cmocka_unit_test(test_spread_is_even),
		cmocka_unit_test(test_removal_moves_little_else),
		cmocka_unit_test(test_rebuild_is_deterministic),
		cmocka_unit_test(test_table_size_flag),
		cmocka_unit_test(test_annotation_and_default),
		cmocka_unit_test(test_table_follows_selection_rules),
	};

	if (argc > 2 && !strcmp(argv[1], "--checksum")) {
		printf("%llx\n", (unsigned long long)checksum_of(strtoul(argv[2], NULL, 10)));
		return 0;
	}
	self = argv[0];
	return cmocka_run_group_tests(tests, NULL, NULL);
}
