// SPDX-License-Identifier: Apache-2.0
/* Unit tests of the API client's parsing: kubeconfig, watch event lines, line splitting. */
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
#include "lib/log.h"

static int parse(const char *text, struct kube_config *cfg)
{
	return kube_config_parse(text, strlen(text), "/etc/kube", "test-kubeconfig", cfg);
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

	snprintf(l->got[l->n++], sizeof(l->got[0]), "%.*s", (int)len, line);
	return true;
}

static void test_line_buffer_splits_across_chunks(void **state)
{
	struct kube_line_buffer lb = { 0 };
	struct lines l = { 0 };

	assert_true(kube_line_buffer_feed(&lb, "{\"a\":", 5, collect_line, &l));
	assert_int_equal(l.n, 0);
	assert_true(kube_line_buffer_feed(&lb, "1}\n\n{\"b\":2}\n{\"c\"", 16, collect_line, &l));
	assert_int_equal(l.n, 2);
	assert_string_equal(l.got[0], "{\"a\":1}");
	assert_string_equal(l.got[1], "{\"b\":2}");
	assert_true(kube_line_buffer_feed(&lb, ":3}\n", 4, collect_line, &l));
	assert_int_equal(l.n, 3);
	assert_string_equal(l.got[2], "{\"c\":3}");
	kube_line_buffer_free(&lb);
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
	};

	log_set_level(LOG_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
