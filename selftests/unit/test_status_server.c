// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests of agent.sock (status_server.c) on a socket in a temporary
 * directory: the answers, their order, the budget per turn, and clients
 * that are silent, stuck or ask too much. No kernel.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <jansson.h>

#include "core/engine.h"
#include "lib/log.h"
#include "serve/status_server.h"

#include "core_fixture.h"

struct world {
	char dir[64], path[128];
	struct store st;
	struct engine eng;
	struct status_server *srv;
};

/* n Services in namespaces "a", "a-b" and "b" ('/' must sort before '-'). */
static void fill(struct world *w, int n)
{
	static const char *const ns[] = { "b", "a-b", "a" };

	for (int i = 0; i < n; i++) {
		char name[32], ip[32];

		snprintf(name, sizeof(name), "svc-%d", i);
		snprintf(ip, sizeof(ip), "10.96.%d.%d", i / 250, i % 250 + 1);
		assert_int_equal(put_service(&w->st, ns[i % 3], name, ip), 1);
	}
}

static int setup_n(void **state, int n)
{
	struct world *w = calloc(1, sizeof(*w));

	snprintf(w->dir, sizeof(w->dir), "/tmp/sluice-status-XXXXXX");
	assert_non_null(mkdtemp(w->dir));
	snprintf(w->path, sizeof(w->path), "%s/agent.sock", w->dir);
	store_init(&w->st);
	fill(w, n);
	engine_init(&w->eng, &w->st, "node-a");
	assert_int_equal(engine_flush(&w->eng), 0);
	w->srv = status_server_open(w->path, &w->st, &w->eng);
	assert_non_null(w->srv);
	*state = w;
	return 0;
}

static int setup_small(void **state)
{
	return setup_n(state, 30);
}

static int setup_large(void **state)
{
	return setup_n(state, 3000);
}

static int teardown(void **state)
{
	struct world *w = *state;

	status_server_close(w->srv);
	engine_destroy(&w->eng);
	store_destroy(&w->st);
	rmdir(w->dir);
	free(w);
	return 0;
}

static int client(struct world *w, const char *request)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	strcpy(sa.sun_path, w->path);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	if (request)
		assert_int_equal(send(fd, request, strlen(request), 0), (ssize_t)strlen(request));
	fcntl(fd, F_SETFL, O_NONBLOCK);
	return fd;
}

static long long now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

struct answer {
	char *text;
	size_t len;
	int turns;
	long long longest_us; /* the longest status_server_run */
};

/* Runs the server until fd's answer ends (EOF); the answer in a. */
static void collect(struct world *w, int fd, long budget_us, struct answer *a)
{
	FILE *f = open_memstream(&a->text, &a->len);
	char buf[65536];

	a->turns = 0;
	a->longest_us = 0;
	for (;;) {
		long long t0 = now_us(), t;
		ssize_t r;

		status_server_run(w->srv, budget_us);
		t = now_us() - t0;
		if (t > a->longest_us)
			a->longest_us = t;
		a->turns++;
		assert_true(a->turns < 1000000);
		while ((r = recv(fd, buf, sizeof(buf), 0)) > 0)
			fwrite(buf, 1, r, f);
		if (r == 0)
			break;
	}
	fclose(f);
	close(fd);
}

static json_t *line_at(const struct answer *a, size_t i)
{
	const char *p = a->text;

	while (i-- && p)
		p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL;
	return p && *p ? json_loadb(p, strcspn(p, "\n"), 0, NULL) : NULL;
}

static size_t lines(const struct answer *a)
{
	size_t n = 0;

	for (size_t i = 0; i < a->len; i++)
		n += a->text[i] == '\n';
	return n;
}

static void test_socket_is_roots_only(void **state)
{
	struct world *w = *state;
	struct stat st;

	assert_int_equal(stat(w->path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0600);
}

static void test_explain(void **state)
{
	struct world *w = *state;
	struct answer a;
	json_t *doc;

	collect(w, client(w, "explain a/svc-2\n"), 2000, &a);
	assert_int_equal(lines(&a), 1);
	doc = line_at(&a, 0);
	assert_string_equal(json_string_value(json_object_get(doc, "service")), "a/svc-2");
	assert_int_equal(json_array_size(json_object_get(doc, "frontends")), 1);
	json_decref(doc);
	free(a.text);

	collect(w, client(w, "explain a/nope\n"), 2000, &a);
	doc = line_at(&a, 0);
	assert_string_equal(json_string_value(json_object_get(doc, "error")), "not-found");
	json_decref(doc);
	free(a.text);

	collect(w, client(w, "delete a/svc-2\n"), 2000, &a);
	doc = line_at(&a, 0);
	assert_string_equal(json_string_value(json_object_get(doc, "error")), "bad-request");
	json_decref(doc);
	free(a.text);
}

static void test_request_too_long(void **state)
{
	struct world *w = *state;
	char req[STATUS_REQUEST_MAX + 100];
	struct answer a;
	json_t *doc;

	memset(req, 'x', sizeof(req) - 1);
	req[sizeof(req) - 1] = 0;
	collect(w, client(w, req), 2000, &a);
	doc = line_at(&a, 0);
	assert_string_equal(json_string_value(json_object_get(doc, "error")), "bad-request");
	json_decref(doc);
	free(a.text);
}

/* Every Service, by namespace then name, then the end line; over many short turns. */
static void test_services_sorted_in_pieces(void **state)
{
	struct world *w = *state;
	char prev[64] = "";
	struct answer a;
	json_t *doc;
	size_t n;

	collect(w, client(w, "services\n"), 200, &a);
	n = lines(&a);
	assert_int_equal(n, 3001);
	for (size_t i = 0; i < n - 1; i++) {
		const char *key;
		char ns[64], pns[64];

		doc = line_at(&a, i);
		key = json_string_value(json_object_get(doc, "service"));
		assert_non_null(key);
		sscanf(key, "%63[^/]", ns);
		sscanf(prev, "%63[^/]", pns);
		/* "a" before "a-b" before "b"; names in byte order within one. */
		if (i && !strcmp(ns, pns))
			assert_true(strcmp(prev, key) < 0);
		else if (i)
			assert_true(strcmp(pns, ns) < 0);
		snprintf(prev, sizeof(prev), "%s", key);
		json_decref(doc);
	}
	doc = line_at(&a, n - 1);
	assert_int_equal(json_integer_value(json_object_get(doc, "end")), 3000);
	json_decref(doc);
	/*
	 * In pieces. How long a turn takes is not asserted (speed belongs to
	 * make bench; under load a turn was seen past 50 ms), only printed.
	 */
	assert_true(a.turns > 10);
	print_message("# services of 3000: %d turns, the longest %lld us (budget 200)\n", a.turns,
		      a.longest_us);
	free(a.text);
}

/* The store changes between turns of an answer: the names were copied. */
static void test_services_while_the_store_changes(void **state)
{
	struct world *w = *state;
	int fd = client(w, "services\n");
	struct answer a;
	json_t *doc;

	/* Accepted, then asked: the names are copied. */
	status_server_run(w->srv, 50);
	status_server_run(w->srv, 50);
	for (int i = 0; i < 3000; i += 2) {
		char name[32];

		snprintf(name, sizeof(name), "svc-%d", i);
		store_delete_service(&w->st, i % 3 == 0 ? "b" : i % 3 == 1 ? "a-b" : "a", name);
	}
	fill(w, 10); /* and some come back */
	collect(w, fd, 200, &a);
	doc = line_at(&a, lines(&a) - 1);
	/* The 1500 left and the 5 that came back (svc-0, 2, 4, 6, 8). */
	assert_int_equal(json_integer_value(json_object_get(doc, "end")), 1505);
	assert_int_equal(json_integer_value(json_object_get(doc, "end")) + 1, lines(&a));
	json_decref(doc);
	free(a.text);
}

/* A client that asks and never reads holds no turn; one that never asks is dropped. */
static void test_stuck_and_silent_clients(void **state)
{
	struct world *w = *state;
	int stuck = client(w, "services\n"), silent = client(w, NULL);
	int rcvbuf = 4096;
	struct answer a;
	json_t *doc;
	int turns;

	setsockopt(stuck, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	/* Until the stuck client's socket is full and nothing is left to do now. */
	for (turns = 0; turns < 10000 && status_server_timeout_ms(w->srv) == 0; turns++)
		status_server_run(w->srv, 500);
	assert_true(turns < 10000);
	assert_int_not_equal(status_server_timeout_ms(w->srv), 0);
	/* Others are still answered. */
	collect(w, client(w, "explain b/svc-0\n"), 2000, &a);
	doc = line_at(&a, 0);
	assert_string_equal(json_string_value(json_object_get(doc, "service")), "b/svc-0");
	json_decref(doc);
	free(a.text);
	/* The silent client waits for its request line: a timeout, not a busy loop. */
	for (turns = 0; turns < 100 && status_server_timeout_ms(w->srv) == 0; turns++)
		status_server_run(w->srv, 500);
	print_message("# idle again after %d turns: timeout %d ms\n", turns,
		      status_server_timeout_ms(w->srv));
	assert_true(status_server_timeout_ms(w->srv) > 1000);
	close(stuck);
	close(silent);
}

static void test_too_many_clients(void **state)
{
	struct world *w = *state;
	int fds[9];
	struct answer a;
	json_t *doc;

	for (int i = 0; i < 8; i++)
		fds[i] = client(w, NULL);
	status_server_run(w->srv, 1000);
	collect(w, client(w, "services\n"), 1000, &a);
	doc = line_at(&a, 0);
	assert_string_equal(json_string_value(json_object_get(doc, "error")), "busy");
	json_decref(doc);
	free(a.text);
	for (int i = 0; i < 8; i++)
		close(fds[i]);
	/* Gone clients free their places. */
	status_server_run(w->srv, 1000);
	collect(w, client(w, "explain a/svc-2\n"), 1000, &a);
	assert_int_equal(lines(&a), 1);
	free(a.text);
}

static void test_close_removes_the_socket(void **state)
{
	struct world *w = *state;
	struct stat st;

	status_server_close(w->srv);
	assert_int_equal(stat(w->path, &st), -1);
	/* A stale socket of a previous agent is replaced. */
	w->srv = status_server_open(w->path, &w->st, &w->eng);
	status_server_close(w->srv);
	w->srv = NULL;
	{
		int fd = socket(AF_UNIX, SOCK_STREAM, 0);
		struct sockaddr_un sa = { .sun_family = AF_UNIX };

		strcpy(sa.sun_path, w->path);
		assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
		close(fd);
	}
	w->srv = status_server_open(w->path, &w->st, &w->eng);
	assert_non_null(w->srv);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_socket_is_roots_only, setup_small, teardown),
		cmocka_unit_test_setup_teardown(test_explain, setup_small, teardown),
		cmocka_unit_test_setup_teardown(test_request_too_long, setup_small, teardown),
		cmocka_unit_test_setup_teardown(test_services_sorted_in_pieces, setup_large,
						teardown),
		cmocka_unit_test_setup_teardown(test_services_while_the_store_changes, setup_large,
						teardown),
		cmocka_unit_test_setup_teardown(test_stuck_and_silent_clients, setup_large,
						teardown),
		cmocka_unit_test_setup_teardown(test_too_many_clients, setup_small, teardown),
		cmocka_unit_test_setup_teardown(test_close_removes_the_socket, setup_small,
						teardown),
	};

	log_set_level(LOG_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
