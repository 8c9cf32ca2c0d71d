// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests of the API client's parsing: kubeconfig, watch event lines,
 * line splitting (one call per line, a cap on a line, memory released).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "source/kube_client.h"
#include "source/kube_worker.h"
#include "lib/log.h"

static int parse(const char *text, struct kube_config *cfg)
{
	return kube_config_parse(text, strlen(text), "/etc/kube", "test-kubeconfig", 0, cfg);
}

/* "-----BEGIN CERTIFICATE-----\n" in base64. */
#define PEM_B64 "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg=="

static void test_kubeconfig_current_context_with_files(void **state)
{
	struct kube_config cfg;
	const char *text = "apiVersion: v1\n"
			   "kind: Config\n"
			   "current-context: b\n"
			   "contexts:\n"
			   "- {name: a, context: {cluster: one, user: alice}}\n"
			   "- {name: b, context: {cluster: two, user: bob}}\n"
			   "clusters:\n"
			   "- {name: one, cluster: {server: 'https://one:6443'}}\n"
			   "- name: two\n"
			   "  cluster:\n"
			   "    server: https://10.0.0.1:6443/\n"
			   "    certificate-authority: ca.crt\n"
			   "users:\n"
			   "- {name: alice, user: {token: alice-token}}\n"
			   "- name: bob\n"
			   "  user:\n"
			   "    client-certificate: /abs/bob.crt\n"
			   "    client-key: keys/bob.key\n"
			   "    tokenFile: bob.token\n";

	assert_int_equal(parse(text, &cfg), 0);
	assert_string_equal(cfg.server, "https://10.0.0.1:6443");
	assert_string_equal(cfg.ca_file, "/etc/kube/ca.crt");
	assert_null(cfg.ca.data);
	assert_null(cfg.token);
	assert_string_equal(cfg.token_file, "/etc/kube/bob.token");
	assert_string_equal(cfg.cert_file, "/abs/bob.crt");
	assert_string_equal(cfg.key_file, "/etc/kube/keys/bob.key");
	kube_config_free(&cfg);
}

static void test_kubeconfig_inline_data_is_decoded(void **state)
{
	struct kube_config cfg;
	const char *text = "current-context: c\n"
			   "contexts: [{name: c, context: {cluster: k, user: u}}]\n"
			   "clusters: [{name: k, cluster: {server: 'https://k:443',\n"
			   "  certificate-authority-data: " PEM_B64 "}}]\n"
			   "users: [{name: u, user: {token: abc,\n"
			   "  client-certificate-data: " PEM_B64 ",\n"
			   "  client-key-data: " PEM_B64 "}}]\n";

	assert_int_equal(parse(text, &cfg), 0);
	assert_string_equal(cfg.token, "abc");
	assert_non_null(cfg.ca.data);
	assert_int_equal(cfg.ca.len, strlen("-----BEGIN CERTIFICATE-----\n"));
	assert_memory_equal(cfg.ca.data, "-----BEGIN CERTIFICATE-----\n", cfg.ca.len);
	assert_int_equal(cfg.cert.len, cfg.ca.len);
	assert_int_equal(cfg.key.len, cfg.ca.len);
	assert_null(cfg.ca_file);
	kube_config_free(&cfg);
}

static void test_kubeconfig_refuses_plain_http(void **state)
{
	struct kube_config cfg;
	const char *text = "current-context: c\n"
			   "contexts: [{name: c, context: {cluster: k}}]\n"
			   "clusters: [{name: k, cluster: {server: 'http://k:8080'}}]\n";

	assert_int_equal(parse(text, &cfg), -EINVAL);
}

static void test_kubeconfig_missing_context_or_cluster(void **state)
{
	struct kube_config cfg;

	assert_int_equal(parse("clusters: []\n", &cfg), -EINVAL);
	assert_int_equal(parse("current-context: x\ncontexts: []\n", &cfg), -EINVAL);
	assert_int_equal(parse("current-context: c\n"
			       "contexts: [{name: c, context: {cluster: nowhere}}]\n",
			       &cfg),
			 -EINVAL);
	assert_int_equal(parse("current-context: c\n"
			       "contexts: [{name: c, context: {cluster: k, user: ghost}}]\n"
			       "clusters: [{name: k, cluster: {server: 'https://k'}}]\n",
			       &cfg),
			 -EINVAL);
	assert_int_equal(parse("{not yaml: [\n", &cfg), -EINVAL);
}

static void test_kubeconfig_certificate_without_key(void **state)
{
	struct kube_config cfg;
	const char *text = "current-context: c\n"
			   "contexts: [{name: c, context: {cluster: k, user: u}}]\n"
			   "clusters: [{name: k, cluster: {server: 'https://k'}}]\n"
			   "users: [{name: u, user: {client-certificate: a.crt}}]\n";

	assert_int_equal(parse(text, &cfg), -EINVAL);
}

static void test_kubeconfig_bad_base64(void **state)
{
	struct kube_config cfg;
	const char *text = "current-context: c\n"
			   "contexts: [{name: c, context: {cluster: k}}]\n"
			   "clusters: [{name: k, cluster: {server: 'https://k',\n"
			   "  certificate-authority-data: 'not*base64'}}]\n";

	assert_int_equal(parse(text, &cfg), -EINVAL);
}

static void test_in_cluster_from_environment(void **state)
{
	struct kube_config cfg;

	setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
	setenv("KUBERNETES_SERVICE_PORT", "443", 1);
	setenv(KUBE_SERVICEACCOUNT_DIR_ENV, "/sa", 1);
	assert_int_equal(kube_config_in_cluster(&cfg), 0);
	assert_string_equal(cfg.server, "https://[fd00::1]:443");
	assert_string_equal(cfg.ca_file, "/sa/ca.crt");
	assert_string_equal(cfg.token_file, "/sa/token");
	kube_config_free(&cfg);
	unsetenv("KUBERNETES_SERVICE_HOST");
	assert_int_equal(kube_config_in_cluster(&cfg), -EINVAL);
}

static int parse_event(const char *line, struct kube_watch_event *ev)
{
	char err[256];

	return kube_watch_parse_line(line, strlen(line), ev, err, sizeof(err));
}

static void test_watch_added_event(void **state)
{
	struct kube_watch_event ev;

	assert_int_equal(parse_event("{\"type\":\"ADDED\",\"object\":{\"kind\":\"Service\","
				     "\"metadata\":{\"name\":\"web\",\"namespace\":\"default\","
				     "\"resourceVersion\":\"42\"}}}",
				     &ev),
			 0);
	assert_int_equal(ev.type, KUBE_WATCH_ADDED);
	assert_string_equal(ev.name, "web");
	assert_string_equal(ev.ns, "default");
	assert_string_equal(ev.resource_version, "42");
	assert_string_equal(json_string_value(json_object_get(ev.object, "kind")), "Service");
	kube_watch_event_clear(&ev);
}

static void test_watch_bookmark_has_no_name(void **state)
{
	struct kube_watch_event ev;

	assert_int_equal(parse_event("{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"Node\","
				     "\"metadata\":{\"resourceVersion\":\"99\"}}}",
				     &ev),
			 0);
	assert_int_equal(ev.type, KUBE_WATCH_BOOKMARK);
	assert_string_equal(ev.resource_version, "99");
	kube_watch_event_clear(&ev);
}

static void test_watch_error_410(void **state)
{
	struct kube_watch_event ev;

	assert_int_equal(parse_event("{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\","
				     "\"code\":410,\"reason\":\"Expired\","
				     "\"message\":\"too old resource version\"}}",
				     &ev),
			 0);
	assert_int_equal(ev.type, KUBE_WATCH_ERROR);
	assert_int_equal(ev.error_code, 410);
	assert_string_equal(ev.error_message, "too old resource version");
	kube_watch_event_clear(&ev);
}

static void test_watch_malformed_lines_are_refused(void **state)
{
	struct kube_watch_event ev;

	assert_int_equal(parse_event("{\"type\": \"MODIFIED\", \"object\": {\"kind\": ", &ev),
			 -EINVAL);
	assert_int_equal(parse_event("[1, 2]", &ev), -EINVAL);
	assert_int_equal(parse_event("{\"type\":\"SOMETHING\",\"object\":{}}", &ev), -EINVAL);
	assert_int_equal(parse_event("{\"type\":\"ADDED\"}", &ev), -EINVAL);
	/* A change must carry the version to resume from, and a name. */
	assert_int_equal(parse_event("{\"type\":\"ADDED\",\"object\":{\"metadata\":"
				     "{\"name\":\"x\"}}}",
				     &ev),
			 -EINVAL);
	assert_int_equal(parse_event("{\"type\":\"DELETED\",\"object\":{\"metadata\":"
				     "{\"resourceVersion\":\"1\"}}}",
				     &ev),
			 -EINVAL);
}

struct lines {
	char got[8][64];
	int n;
};

static bool collect_line(void *ctx, const char *line, size_t len)
{
	struct lines *l = ctx;

	snprintf(l->got[l->n++ % 8], sizeof(l->got[0]), "%.*s", (int)len, line);
	return true;
}

static void test_line_buffer_splits_across_chunks(void **state)
{
	struct kube_line_buffer lb = { 0 };
	struct lines l = { 0 };

	assert_int_equal(kube_line_buffer_feed(&lb, "{\"a\":", 5, collect_line, &l), 0);
	assert_int_equal(l.n, 0);
	assert_int_equal(
		kube_line_buffer_feed(&lb, "1}\n\n{\"b\":2}\n{\"c\"", 16, collect_line, &l), 0);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.got[0], "{\"a\":1}");
	assert_string_equal(l.got[1], "{\"b\":2}");
	assert_int_equal(kube_line_buffer_feed(&lb, ":3}\n", 4, collect_line, &l), 0);
	assert_int_equal(l.n, 3);
	assert_string_equal(l.got[2], "{\"c\":3}");
	kube_line_buffer_free(&lb);
}

static void test_line_buffer_byte_at_a_time(void **state)
{
	static const char stream[] = "{\"a\":1}\n\n\n{\"bb\":22}\n{\"ccc\":333}\n{\"d\"";
	struct kube_line_buffer lb = { .max_line = 64 };
	struct lines l = { 0 };

	for (size_t i = 0; i < sizeof(stream) - 1; i++)
		assert_int_equal(kube_line_buffer_feed(&lb, stream + i, 1, collect_line, &l), 0);
	/* One call per complete line, none for empty lines or the unfinished one. */
	assert_int_equal(l.n, 3);
	assert_string_equal(l.got[0], "{\"a\":1}");
	assert_string_equal(l.got[1], "{\"bb\":22}");
	assert_string_equal(l.got[2], "{\"ccc\":333}");
	assert_int_equal(lb.len, 4);
	assert_int_equal(kube_line_buffer_feed(&lb, "}\n", 2, collect_line, &l), 0);
	assert_int_equal(l.n, 4);
	assert_string_equal(l.got[3], "{\"d\"}");
	kube_line_buffer_free(&lb);
}

struct line_stats {
	size_t calls, bytes, longest;
	size_t stop_after; /* refuse the line after this many; 0: never */
};

static bool count_line(void *ctx, const char *line, size_t len)
{
	struct line_stats *st = ctx;

	st->calls++;
	st->bytes += len;
	if (len > st->longest)
		st->longest = len;
	return !st->stop_after || st->calls < st->stop_after;
}

#define MiB (1024 * 1024)

/* 16 MiB in 4 KiB chunks without a newline: refused past the cap, memory released. */
static void test_line_buffer_gives_up_at_cap(void **state)
{
	struct kube_line_buffer lb = { .max_line = 16 * MiB };
	struct line_stats st = { 0 };
	char *chunk = malloc(4096);
	size_t fed = 0;
	int err = 0;

	memset(chunk, 'x', 4096);
	memcpy(chunk, "{\"type\":\"ADDED\",\"object\":{\"name\":\"", 35);
	while (fed <= 16 * MiB && !err) {
		err = kube_line_buffer_feed(&lb, chunk, 4096, count_line, &st);
		fed += 4096;
		/* The buffer never grows beyond the cap. */
		assert_true(lb.cap <= lb.max_line);
	}
	/* A line of exactly 16 MiB is still accepted; one chunk more is not. */
	assert_int_equal(err, -E2BIG);
	assert_int_equal(fed, 16 * MiB + 4096);
	assert_int_equal(st.calls, 0);
	assert_null(lb.buf);
	assert_int_equal(lb.len, 0);
	assert_int_equal(lb.cap, 0);
	assert_int_equal(lb.max_line, 16 * MiB);
	free(chunk);
}

static void test_line_buffer_line_at_cap(void **state)
{
	struct kube_line_buffer lb = { .max_line = 100 };
	struct line_stats st = { 0 };
	char line[102];

	memset(line, 'a', sizeof(line));
	line[100] = '\n';
	/* Split, then whole: a line of max_line bytes goes through either way. */
	assert_int_equal(kube_line_buffer_feed(&lb, line, 60, count_line, &st), 0);
	assert_int_equal(kube_line_buffer_feed(&lb, line + 60, 41, count_line, &st), 0);
	assert_int_equal(kube_line_buffer_feed(&lb, line, 101, count_line, &st), 0);
	assert_int_equal(st.calls, 2);
	assert_int_equal(st.longest, 100);
	/* One byte more is refused, whether the newline is there yet or not. */
	line[100] = 'a';
	line[101] = '\n';
	assert_int_equal(kube_line_buffer_feed(&lb, line, 102, count_line, &st), -E2BIG);
	assert_int_equal(kube_line_buffer_feed(&lb, line, 50, count_line, &st), 0);
	assert_int_equal(kube_line_buffer_feed(&lb, line, 51, count_line, &st), -E2BIG);
	assert_int_equal(st.calls, 2);
	assert_null(lb.buf);
	kube_line_buffer_free(&lb);
}

/* A large line is delivered once, whole, and its buffer released afterwards. */
static void test_line_buffer_large_line_released(void **state)
{
	struct kube_line_buffer lb = { .max_line = 16 * MiB };
	struct line_stats st = { 0 };
	char *chunk = malloc(4096);

	memset(chunk, 'y', 4096);
	for (int i = 0; i < 1024; i++)
		assert_int_equal(kube_line_buffer_feed(&lb, chunk, 4096, count_line, &st), 0);
	assert_int_equal(st.calls, 0);
	assert_int_equal(lb.len, 4 * MiB);
	assert_int_equal(kube_line_buffer_feed(&lb, "z\nnext", 6, count_line, &st), 0);
	assert_int_equal(st.calls, 1);
	assert_int_equal(st.longest, 4 * MiB + 1);
	/* What is held is the start of the next line, in a small buffer. */
	assert_int_equal(lb.len, 4);
	assert_true(lb.cap <= 4096);
	kube_line_buffer_free(&lb);
	free(chunk);
}

/* Complete lines in one chunk are all delivered, and only the rest is kept. */
static void test_line_buffer_many_lines_in_one_chunk(void **state)
{
	struct kube_line_buffer lb = { .max_line = 1024 };
	struct line_stats st = { 0 };
	size_t n = 10000, len = 0;
	char *data = malloc(n * 16 + 16);

	for (size_t i = 0; i < n; i++)
		len += sprintf(data + len, "{\"n\":%zu}\n", i);
	len += sprintf(data + len, "{\"n\":");
	assert_int_equal(kube_line_buffer_feed(&lb, data, len, count_line, &st), 0);
	assert_int_equal(st.calls, n);
	assert_int_equal(lb.len, 5);
	assert_true(lb.cap <= 4096);
	kube_line_buffer_free(&lb);
	free(data);
}

static void test_line_buffer_callback_stops(void **state)
{
	struct kube_line_buffer lb = { 0 };
	struct line_stats st = { .stop_after = 2 };

	assert_int_equal(kube_line_buffer_feed(&lb, "a\nb", 3, count_line, &st), 0);
	assert_int_equal(kube_line_buffer_feed(&lb, "b\nc\nd\n", 6, count_line, &st), -ECANCELED);
	assert_int_equal(st.calls, 2);
	kube_line_buffer_free(&lb);
}

/* kube-proxy's label selector on Services and EndpointSlices, percent-encoded; this Node only. */
static void test_resource_selectors(void **state)
{
	static const char *const want[N_RESOURCES] = {
		[RES_SERVICES] = "&labelSelector=%21service.kubernetes.io%2Fheadless"
				 "%2C%21service.kubernetes.io%2Fservice-proxy-name",
		[RES_SLICES] = "&labelSelector=%21service.kubernetes.io%2Fheadless"
			       "%2C%21service.kubernetes.io%2Fservice-proxy-name",
		[RES_NODES] = "&fieldSelector=metadata.name%3Dnode-a%2Bb",
	};
	struct kube_source src = { 0 };

	for (int id = 0; id < N_RESOURCES; id++) {
		struct resource r = { 0 };

		assert_int_equal(kube_resource_init(&r, &src, id, "node-a+b"), 0);
		assert_string_equal(r.selector, want[id]);
		free(r.selector);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kubeconfig_current_context_with_files),
		cmocka_unit_test(test_kubeconfig_inline_data_is_decoded),
		cmocka_unit_test(test_kubeconfig_refuses_plain_http),
		cmocka_unit_test(test_kubeconfig_missing_context_or_cluster),
		cmocka_unit_test(test_kubeconfig_certificate_without_key),
		cmocka_unit_test(test_kubeconfig_bad_base64),
		cmocka_unit_test(test_in_cluster_from_environment),
		cmocka_unit_test(test_watch_added_event),
		cmocka_unit_test(test_watch_bookmark_has_no_name),
		cmocka_unit_test(test_watch_error_410),
		cmocka_unit_test(test_watch_malformed_lines_are_refused),
		cmocka_unit_test(test_line_buffer_splits_across_chunks),
		cmocka_unit_test(test_line_buffer_byte_at_a_time),
		cmocka_unit_test(test_line_buffer_gives_up_at_cap),
		cmocka_unit_test(test_line_buffer_line_at_cap),
		cmocka_unit_test(test_line_buffer_large_line_released),
		cmocka_unit_test(test_line_buffer_many_lines_in_one_chunk),
		cmocka_unit_test(test_line_buffer_callback_stops),
		cmocka_unit_test(test_resource_selectors),
	};

	log_set_level(LOG_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
