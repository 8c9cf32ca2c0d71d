// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests of what /metrics and kube-proxy's /healthz say: the text
 * format (escapes, histograms with kube-proxy's buckets), the health rule
 * and its JSON body, the trigger-time annotation's RFC 3339 times, and the
 * store's change counts.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>

#include "core/store.h"
#include "serve/healthz.h"
#include "serve/metrics_text.h"
#include "source/decode_util.h"
#include "source/manifest.h"

static void test_sample_escapes(void **state)
{
	struct prom_buf b = { 0 };
	const char *kv[4] = { "service", "a\"b\\c\nd", "outcome", "admitted" };

	prom_family(&b, "x_total", "counter", "help \\ with\nnewline");
	prom_sample(&b, "x_total", kv, 2, 42);
	prom_sample(&b, "y", NULL, 0, 0.5);
	assert_string_equal(b.s, "# HELP x_total help \\\\ with\\nnewline\n"
				 "# TYPE x_total counter\n"
				 "x_total{service=\"a\\\"b\\\\c\\nd\",outcome=\"admitted\"} 42\n"
				 "y 0.5\n");
	prom_buf_free(&b);
}

static void test_histogram_kube_proxy_buckets(void **state)
{
	struct prom_histogram h;
	struct prom_buf b = { 0 };

	assert_true(prom_sync_buckets[0] == 0.001 && prom_sync_buckets[14] == 16.384);
	assert_true(prom_programming_buckets[0] == 0.25 && prom_programming_buckets[2] == 1 &&
		    prom_programming_buckets[60] == 59 && prom_programming_buckets[61] == 60 &&
		    prom_programming_buckets[72] == 115 && prom_programming_buckets[73] == 120 &&
		    prom_programming_buckets[79] == 300);
	prom_histogram_init(&h, prom_sync_buckets, PROM_SYNC_BUCKETS);
	prom_histogram_observe(&h, 0.001); /* le is inclusive */
	prom_histogram_observe(&h, 0.003);
	prom_histogram_observe(&h, 100);
	prom_histogram_write(&b, "s", "h", &h);
	assert_non_null(strstr(b.s, "s_bucket{le=\"0.001\"} 1\n"));
	assert_non_null(strstr(b.s, "s_bucket{le=\"0.002\"} 1\n"));
	assert_non_null(strstr(b.s, "s_bucket{le=\"0.004\"} 2\n"));
	assert_non_null(strstr(b.s, "s_bucket{le=\"16.384\"} 2\n"));
	assert_non_null(strstr(b.s, "s_bucket{le=\"+Inf\"} 3\n"));
	assert_non_null(strstr(b.s, "s_sum 100.004"));
	assert_non_null(strstr(b.s, "s_count 3\n"));
	prom_histogram_free(&h);
	prom_buf_free(&b);
}

static void test_healthz_rule(void **state)
{
	struct healthz_state st = { .node_eligible = true, .timeout = 60 };

	assert_true(healthz_healthy(&st, 1000)); /* starting up */
	st.oldest_queued = 990;
	assert_true(healthz_healthy(&st, 1000)); /* waiting, not late */
	assert_false(healthz_healthy(&st, 1050)); /* 60 s unapplied */
	st.oldest_queued = 0;
	assert_true(healthz_healthy(&st, 5000)); /* applied again */
}

static void test_healthz_body(void **state)
{
	struct healthz_state st = { .node_eligible = true, .timeout = 60, .last_updated = 100 };
	char body[512];
	json_t *o;

	assert_int_equal(healthz_answer(&st, 1700000000.25, false, body, sizeof(body)), 200);
	o = json_loads(body, 0, NULL);
	assert_non_null(o);
	/* Healthy: lastUpdated reads now, as kube-proxy's. */
	assert_string_equal(json_string_value(json_object_get(o, "lastUpdated")),
			    "2023-11-14 22:13:20.25 +0000 UTC");
	assert_string_equal(json_string_value(json_object_get(o, "currentTime")),
			    "2023-11-14 22:13:20.25 +0000 UTC");
	assert_true(json_is_true(json_object_get(o, "nodeEligible")));
	assert_true(json_is_true(json_object_get(o, "healthy")));
	json_decref(o);

	/* The Node going away: /healthz 503, /livez 200. */
	st.node_eligible = false;
	assert_int_equal(healthz_answer(&st, 1700000000, false, body, sizeof(body)), 503);
	o = json_loads(body, 0, NULL);
	assert_true(json_is_false(json_object_get(o, "nodeEligible")));
	assert_string_equal(json_string_value(json_object_get(o, "lastUpdated")),
			    "1970-01-01 00:01:40 +0000 UTC");
	json_decref(o);
	assert_int_equal(healthz_answer(&st, 1700000000, true, body, sizeof(body)), 200);
	o = json_loads(body, 0, NULL);
	assert_null(json_object_get(o, "nodeEligible"));
	json_decref(o);

	/* A change late: both 503. */
	st.node_eligible = true;
	st.oldest_queued = 1700000000 - 61;
	assert_int_equal(healthz_answer(&st, 1700000000, true, body, sizeof(body)), 503);
	assert_int_equal(healthz_answer(&st, 1700000000, false, body, sizeof(body)), 503);
}

static void test_rfc3339(void **state)
{
	double t = 0;

	assert_true(decode_parse_rfc3339("2023-11-14T22:13:20Z", &t));
	assert_true(t == 1700000000.0);
	assert_true(decode_parse_rfc3339("2023-11-14T22:13:20.5Z", &t));
	assert_true(t == 1700000000.5);
	assert_true(decode_parse_rfc3339("2023-11-15T00:13:20+02:00", &t));
	assert_true(t == 1700000000.0);
	assert_false(decode_parse_rfc3339("2023-11-14 nope", &t));
	assert_false(decode_parse_rfc3339("2023-11-14T22:13:20", &t));
	assert_false(decode_parse_rfc3339("2023-13-14T22:13:20Z", &t));
	assert_false(decode_parse_rfc3339("2023-11-14T22:13:20Zjunk", &t));
}

static double seen[8];
static size_t n_seen;

static void collect(double t, void *arg)
{
	seen[n_seen++] = t;
}

static struct endpoint_slice *slice(const char *name, double trigger)
{
	struct endpoint_slice *s = calloc(1, sizeof(*s));

	s->ns = strdup("default");
	s->name = strdup(name);
	s->service_name = strdup("web");
	s->trigger_time = trigger;
	return s;
}

/* Changes counted and pending until applied; a trigger time observed once per version. */
static void test_store_changes(void **state)
{
	struct store st;

	store_init(&st);
	store_put_slice(&st, slice("web-1", 100));
	store_put_slice(&st, slice("web-1", 100)); /* the same version read again: no change */
	store_put_slice(&st, slice("web-2", 0)); /* no annotation */
	store_delete_slice(&st, "default", "web-2");
	store_delete_service(&st, "default", "web");
	assert_int_equal(st.slice_changes, 3);
	assert_int_equal(st.slice_changes_pending, 3);
	assert_int_equal(st.service_changes, 1);
	n_seen = 0;
	store_applied(&st, collect, NULL);
	assert_int_equal(n_seen, 1);
	assert_true(seen[0] == 100);
	assert_int_equal(st.slice_changes_pending, 0);
	assert_int_equal(st.service_changes_pending, 0);
	assert_int_equal(st.slice_changes, 3);
	store_put_slice(&st, slice("web-1", 200));
	store_applied(&st, collect, NULL);
	assert_int_equal(n_seen, 2);
	assert_true(seen[1] == 200);
	store_destroy(&st);
}

/* The decoder keeps what /healthz and the programming latency need. */
static void test_decoded_fields(void **state)
{
	static const char text[] =
		"apiVersion: v1\nkind: Node\nmetadata: {name: a, deletionTimestamp: "
		"'2023-11-14T22:13:20Z'}\n---\n"
		"apiVersion: v1\nkind: Node\nmetadata: {name: b}\nspec: {taints: [{key: x}, "
		"{key: ToBeDeletedByClusterAutoscaler, value: '1', effect: NoSchedule}]}\n---\n"
		"apiVersion: v1\nkind: Node\nmetadata: {name: c}\n---\n"
		"apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: s, "
		"namespace: d, labels: {kubernetes.io/service-name: w}, annotations: "
		"{endpoints.kubernetes.io/last-change-trigger-time: '2023-11-14T22:13:20.5Z'}}\n"
		"addressType: IPv4\nendpoints: []\n";
	struct manifest_objects objs = { 0 };

	assert_int_equal(manifest_decode(text, sizeof(text) - 1, "t.yaml", &objs), 0);
	assert_int_equal(objs.n_nodes, 3);
	assert_int_equal(objs.n_rejected, 0);
	for (size_t i = 0; i < objs.n_nodes; i++) {
		const struct node *n = objs.nodes[i];

		assert_int_equal(n->deleting, !strcmp(n->name, "a"));
		assert_int_equal(n->to_be_deleted, !strcmp(n->name, "b"));
	}
	assert_int_equal(objs.n_slices, 1);
	assert_true(objs.slices[0]->trigger_time == 1700000000.5);
	manifest_objects_clear(&objs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sample_escapes),
		cmocka_unit_test(test_histogram_kube_proxy_buckets),
		cmocka_unit_test(test_healthz_rule),
		cmocka_unit_test(test_healthz_body),
		cmocka_unit_test(test_rfc3339),
		cmocka_unit_test(test_store_changes),
		cmocka_unit_test(test_decoded_fields),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
