// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests of the string map: put, get, remove and iteration over many
 * keys, and a hash seeded per process (two processes place the same keys
 * in different orders, so collisions cannot be chosen from outside).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "lib/strmap.h"

static void test_put_get_remove_many(void **state)
{
	enum { N = 20000 };
	struct strmap_iter it;
	struct strmap_entry *e;
	struct strmap m;
	char key[32];
	size_t seen = 0;

	strmap_init(&m);
	for (uintptr_t i = 1; i <= N; i++) {
		snprintf(key, sizeof(key), "ns/svc-%lu", (unsigned long)i);
		assert_null(strmap_put(&m, key, (void *)i));
	}
	assert_int_equal(m.count, N);
	snprintf(key, sizeof(key), "ns/svc-%d", 777);
	assert_int_equal((uintptr_t)strmap_get(&m, key), 777);
	assert_int_equal((uintptr_t)strmap_put(&m, key, (void *)1), 777);
	assert_int_equal((uintptr_t)strmap_remove(&m, key), 1);
	assert_null(strmap_get(&m, key));
	for (e = strmap_first(&m, &it); e; e = strmap_next(&m, &it))
		seen++;
	assert_int_equal(seen, N - 1);
	strmap_destroy(&m);
	assert_int_equal(m.count, 0);
}

/* Writes the first keys of a map's iteration order into fd. */
static void iteration_order(int fd)
{
	struct strmap_iter it;
	struct strmap_entry *e;
	struct strmap m;
	char key[32];
	int n = 0;

	strmap_init(&m);
	for (int i = 0; i < 64; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		strmap_put(&m, key, NULL);
	}
	for (e = strmap_first(&m, &it); e && n < 16; e = strmap_next(&m, &it), n++)
		if (write(fd, e->key, strlen(e->key) + 1) < 0)
			break;
	strmap_destroy(&m);
}

static const char *self;

/* The order in a new process (exec'd: a fork would inherit the seed). */
static void order_in_child(char *buf, size_t len)
{
	int fds[2], status;
	ssize_t got, total = 0;
	pid_t pid;

	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (!pid) {
		close(fds[0]);
		dup2(fds[1], STDOUT_FILENO);
		execl(self, self, "--order", (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	while ((got = read(fds[0], buf + total, len - total)) > 0)
		total += got;
	close(fds[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_true(total > 0);
}

static void test_hash_is_seeded_per_process(void **state)
{
	char a[512] = { 0 }, b[512] = { 0 };

	order_in_child(a, sizeof(a) - 1);
	order_in_child(b, sizeof(b) - 1);
	/* 64 keys in 16+ buckets: equal orders under two seeds are all but impossible. */
	assert_memory_not_equal(a, b, sizeof(a));
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_put_get_remove_many),
		cmocka_unit_test(test_hash_is_seeded_per_process),
	};

	if (argc > 1 && !strcmp(argv[1], "--order")) {
		iteration_order(STDOUT_FILENO);
		return 0;
	}
	self = argv[0];
	return cmocka_run_group_tests(tests, NULL, NULL);
}
