// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests of the log lines (--log-format): text as before, JSON one
 * object per line with time, level and msg, escapes that keep it one
 * line of valid JSON, and libbpf's routed messages in the same shape.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <jansson.h>
#include <bpf/libbpf.h>

#include "lib/log.h"

/* 2023-11-14T22:13:20Z */
#define T0 1700000000LL

static void test_text_line(void **state)
{
	char buf[256];

	log_format_line(buf, sizeof(buf), LOG_FORMAT_TEXT, LOG_WARN, T0, 123456789, "hello");
	assert_string_equal(buf, "1700000000.123 warn: hello");
}

static void test_json_line(void **state)
{
	char buf[256];

	log_format_line(buf, sizeof(buf), LOG_FORMAT_JSON, LOG_INFO, T0, 5000000, "synced");
	assert_string_equal(
		buf,
		"{\"time\":\"2023-11-14T22:13:20.005Z\",\"level\":\"info\",\"msg\":\"synced\"}");
}

/* Quotes, backslashes, newlines and control bytes: still one line of JSON, msg intact. */
static void test_json_escapes(void **state)
{
	const char *msg = "file \"a\\b.yaml\"\nline 2\tx\x01 end";
	json_error_t err;
	char buf[512];
	json_t *obj;

	log_format_line(buf, sizeof(buf), LOG_FORMAT_JSON, LOG_DEBUG, T0, 0, msg);
	assert_null(strchr(buf, '\n'));
	obj = json_loads(buf, 0, &err);
	assert_non_null(obj);
	assert_string_equal(json_string_value(json_object_get(obj, "msg")), msg);
	assert_string_equal(json_string_value(json_object_get(obj, "level")), "debug");
	json_decref(obj);
}

/* A message longer than the buffer is cut, and the object still closes. */
static void test_json_truncated(void **state)
{
	char msg[600], buf[128];
	json_t *obj;

	memset(msg, '"', sizeof(msg) - 1);
	msg[sizeof(msg) - 1] = '\0';
	log_format_line(buf, sizeof(buf), LOG_FORMAT_JSON, LOG_WARN, T0, 0, msg);
	obj = json_loads(buf, 0, NULL);
	assert_non_null(obj);
	json_decref(obj);
}

static void test_parse_format(void **state)
{
	enum log_format f = LOG_FORMAT_TEXT;

	assert_int_equal(log_parse_format("json", &f), 0);
	assert_int_equal(f, LOG_FORMAT_JSON);
	assert_int_equal(log_parse_format("text", &f), 0);
	assert_int_equal(f, LOG_FORMAT_TEXT);
	assert_int_equal(log_parse_format("JSON", &f), -1);
	assert_int_equal(log_parse_format("", &f), -1);
}

static libbpf_print_fn_t routed;

static void call_routed(enum libbpf_print_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	routed(level, fmt, ap);
	va_end(ap);
}

/* log_msg and libbpf's messages on stderr, as JSON lines. */
static void test_json_on_stderr_and_libbpf(void **state)
{
	char path[] = "/tmp/sluice-test-log.XXXXXX", line[1024];
	int fd = mkstemp(path), saved = dup(2), n = 0;
	FILE *f;

	assert_true(fd >= 0);
	log_route_libbpf();
	routed = libbpf_set_print(NULL);
	assert_non_null(routed);
	libbpf_set_print(routed);
	log_set_format(LOG_FORMAT_JSON);
	dup2(fd, 2);
	pr_warn("one %d", 1);
	call_routed(LIBBPF_WARN, "libbpf: map '%s': failed\n", "services");
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	log_set_format(LOG_FORMAT_TEXT);
	f = fopen(path, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		json_t *obj = json_loads(line, 0, NULL);

		assert_non_null(obj);
		assert_string_equal(json_string_value(json_object_get(obj, "level")), "warn");
		assert_string_equal(json_string_value(json_object_get(obj, "msg")),
				    n ? "libbpf: map 'services': failed" : "one 1");
		json_decref(obj);
		n++;
	}
	fclose(f);
	close(fd);
	unlink(path);
	assert_int_equal(n, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_text_line),
		cmocka_unit_test(test_json_line),
		cmocka_unit_test(test_json_escapes),
		cmocka_unit_test(test_json_truncated),
		cmocka_unit_test(test_parse_format),
		cmocka_unit_test(test_json_on_stderr_and_libbpf),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
