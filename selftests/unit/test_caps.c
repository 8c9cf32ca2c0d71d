// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests of lib/caps: the names in the log line, a thread that limits
 * itself (in a child process, so that the test keeps its own sets), and a
 * call in a limited thread whose own threads inherit the limit while the
 * caller keeps what it had. They hold as root and as any other user: a
 * thread can always give up what it has.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "lib/caps.h"

/* A field of the calling thread's /proc status ("CapEff", "NoNewPrivs"), in base. */
static uint64_t status_field(const char *name, int base)
{
	char line[256], key[64];
	uint64_t value = UINT64_MAX;
	FILE *f = fopen("/proc/thread-self/status", "re");

	if (!f)
		return UINT64_MAX;
	snprintf(key, sizeof(key), "%s:", name);
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, key, strlen(key)))
			value = strtoull(line + strlen(key), NULL, base);
	}
	fclose(f);
	return value;
}

static void test_names(void **state)
{
	char *s = caps_names(0);

	assert_string_equal(s, "none");
	free(s);
	s = caps_names(CAPS_BIT(CAP_BPF) | CAPS_BIT(CAP_NET_ADMIN) | CAPS_SERVE);
	assert_string_equal(s, "cap_net_bind_service,cap_net_admin,cap_bpf");
	free(s);
}

static void test_limit_thread(void **state)
{
	uint64_t keep = CAPS_BIT(CAP_NET_ADMIN);
	int status;
	pid_t pid;

	pid = fork();
	assert_true(pid >= 0);
	if (!pid) {
		uint64_t had = status_field("CapPrm", 16), bound = status_field("CapBnd", 16);
		bool setpcap = status_field("CapEff", 16) & CAPS_BIT(CAP_SETPCAP);

		caps_limit_thread(keep);
		if (status_field("CapPrm", 16) != (had & keep) ||
		    status_field("CapEff", 16) != (had & keep) || status_field("CapInh", 16) != 0 ||
		    status_field("CapAmb", 16) != 0 || status_field("NoNewPrivs", 10) != 1)
			_exit(1);
		/* The bounding set goes only with CAP_SETPCAP; without it, it stays. */
		if (status_field("CapBnd", 16) != (setpcap ? bound & keep : bound))
			_exit(2);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

struct seen {
	uint64_t prm, eff, nnp;
};

static void *look(void *arg)
{
	struct seen *s = arg;

	s->prm = status_field("CapPrm", 16);
	s->eff = status_field("CapEff", 16);
	s->nnp = status_field("NoNewPrivs", 10);
	return s;
}

/* In the limited thread: what it has, and what a thread it starts has. */
static void *limited(void *arg)
{
	struct seen *s = arg;
	pthread_t t;

	look(&s[0]);
	if (pthread_create(&t, NULL, look, &s[1]))
		return NULL;
	pthread_join(t, NULL);
	return s;
}

static void test_call_limited(void **state)
{
	uint64_t had = status_field("CapPrm", 16), nnp = status_field("NoNewPrivs", 10);
	struct seen s[2];

	memset(s, 0xff, sizeof(s));
	assert_ptr_equal(caps_call_limited(CAPS_SERVE, limited, s), s);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(s[i].prm, had & CAPS_SERVE);
		assert_int_equal(s[i].eff, had & CAPS_SERVE);
		assert_int_equal(s[i].nnp, 1);
	}
	/* The caller keeps its own sets. */
	assert_int_equal(status_field("CapPrm", 16), had);
	assert_int_equal(status_field("NoNewPrivs", 10), nnp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_limit_thread),
		cmocka_unit_test(test_call_limited),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
