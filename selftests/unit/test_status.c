// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests of what sluicectl shows: kubectl-style tables, the status
 * document of a Service (the explanation agrees with the applied set),
 * explain's words, and top's rates and order. No kernel, no files.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/resolver.h"
#include "core/store.h"
#include "ctl/ctl.h"
#include "ctl/explain_text.h"
#include "ctl/table.h"
#include "ctl/top_text.h"
#include "lib/log.h"
#include "serve/status_json.h"
#include "source/manifest.h"

/* Decodes text and moves every object into the store; returns the count moved. */
static size_t put_yaml(struct store *st, const char *text)
{
	struct manifest_objects objs = { 0 };
	size_t n = 0, i;

	if (manifest_decode(text, strlen(text), "test", &objs))
		return 0;
	for (i = 0; i < objs.n_services; i++, n++)
		store_put_service(st, objs.services[i]);
	for (i = 0; i < objs.n_slices; i++, n++)
		store_put_slice(st, objs.slices[i]);
	objs.n_services = objs.n_slices = 0;
	manifest_objects_clear(&objs);
	return n;
}

/* Captures what fn writes to a FILE. */
static char *capture(void (*fn)(FILE *out, void *arg), void *arg)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	fn(f, arg);
	fclose(f);
	return text;
}

static void print_table(FILE *out, void *arg)
{
	table_print(arg, out, "");
}

static void test_table_kubectl_alignment(void **state)
{
	static const char *const head[] = { "SERVICE", "LIMIT", "ADMITTED" };
	static const char *const r1[] = { "default/a-long-name", "5/s", "12" };
	static const char *const r2[] = { "x/y", NULL, "1234567" };
	struct table t;
	char *text;

	table_init(&t, 3, head);
	table_add(&t, r1);
	table_add(&t, r2);
	text = capture(print_table, &t);
	/* Each column as wide as its widest cell plus three spaces; the last one bare. */
	assert_string_equal(text, "SERVICE               LIMIT   ADMITTED\n"
				  "default/a-long-name   5/s     12\n"
				  "x/y                           1234567\n");
	free(text);
	table_clear(&t);
}

static const char zoned_yaml[] =
	"apiVersion: v1\nkind: Service\nmetadata: {name: zoned, namespace: default,\n"
	"  annotations: {sluice.io/rate-limit: \"5/s\"}}\n"
	"spec:\n  clusterIP: 10.96.0.20\n  sessionAffinity: ClientIP\n"
	"  ports: [{name: http, port: 80, targetPort: 8080}]\n"
	"---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
	"metadata: {name: zoned-1, namespace: default, labels: {kubernetes.io/service-name: zoned}}\n"
	"addressType: IPv4\nports: [{name: http, port: 8080}]\nendpoints:\n"
	"- {addresses: [10.244.1.1], nodeName: node-a, zone: z1, hints: {forZones: [{name: z1}]}}\n"
	"- {addresses: [10.244.1.2], nodeName: node-b, zone: z2, hints: {forZones: [{name: z2}]}}\n"
	"- {addresses: [10.244.1.3], nodeName: node-c, zone: z1, conditions: {ready: false},\n"
	"   hints: {forZones: [{name: z1}]}}\n"
	"- {addresses: [10.244.1.1], nodeName: node-a, zone: z1, conditions: {ready: false}}\n";

/* Other nodes' addresses for DSR: node-b is 192.168.0.2, the rest unknown. */
static const struct ip_addr *doc_node_addr(void *ctx, const char *name, uint8_t family)
{
	static struct ip_addr b;

	if (strcmp(name, "node-b") || family != AF_INET || !ip_addr_parse("192.168.0.2", &b))
		return NULL;
	return &b;
}

/* The document of Service key, resolved and applied as the engine would. */
static json_t *service_doc(struct store *st, const char *key, const char *zone,
			   struct frontend_list *list)
{
	const struct slice_group *g = store_service_slices(st, key);
	struct resolve_input in = {
		.svc = store_get_service(st, key),
		.slices = g ? (const struct endpoint_slice *const *)g->slices : NULL,
		.n_slices = g ? g->n : 0,
		.node_name = "node-a",
		.node_zone = zone,
		.service_id = 7,
		.node_addr = doc_node_addr,
	};
	struct status_service_input sin = {
		.key = key,
		.svc = in.svc,
		.slices = g,
		.applied = list,
		.node_name = "node-a",
		.node_zone = zone,
		.published = 1000,
	};

	assert_int_equal(resolve_service(&in, list), 0);
	return status_service_json(&sin);
}

static json_t *frontend_at(json_t *doc, size_t i)
{
	return json_array_get(json_object_get(doc, "frontends"), i);
}

static const char *ep_why(json_t *fe, size_t i)
{
	return json_string_value(
		json_object_get(json_array_get(json_object_get(fe, "endpoints"), i), "why"));
}

static void test_document_explains_zone_choice(void **state)
{
	struct frontend_list list = { 0 };
	struct store st;
	json_t *doc, *fe, *backends;

	store_init(&st);
	assert_int_equal(put_yaml(&st, zoned_yaml), 2);
	doc = service_doc(&st, "default/zoned", "z1", &list);
	assert_string_equal(js(doc, "service"), "default/zoned");
	assert_int_equal(ji(doc, "serviceId"), 7);
	assert_string_equal(js(json_object_get(doc, "rateLimit"), "limit"), "5/s");
	/* The marker is left out: one frontend. */
	assert_int_equal(json_array_size(json_object_get(doc, "frontends")), 1);
	fe = frontend_at(doc, 0);
	assert_string_equal(js(fe, "choice"), "zone");
	assert_string_equal(js(json_object_get(fe, "topology"), "mode"), "PreferSameZone");
	assert_string_equal(js(json_object_get(fe, "topology"), "why"), "zone-hints");
	assert_false(jb(fe, "stale"));
	backends = json_object_get(fe, "backends");
	assert_int_equal(json_array_size(backends), 1);
	assert_string_equal(json_string_value(json_array_get(backends, 0)), "10.244.1.1:8080");
	/* Input order: used, other zone, not ready, the duplicate of the first. */
	assert_string_equal(ep_why(fe, 0), "used");
	assert_string_equal(ep_why(fe, 1), "other-zone");
	assert_string_equal(ep_why(fe, 2), "not-serving");
	assert_string_equal(ep_why(fe, 3), "duplicate");
	json_decref(doc);
	frontend_list_clear(&list);
	store_destroy(&st);
}

static void test_document_without_zone_label(void **state)
{
	struct frontend_list list = { 0 };
	struct store st;
	json_t *doc, *fe;
	char buf[256];

	store_init(&st);
	put_yaml(&st, zoned_yaml);
	doc = service_doc(&st, "default/zoned", NULL, &list);
	fe = frontend_at(doc, 0);
	assert_string_equal(js(json_object_get(fe, "topology"), "why"), "node-has-no-zone");
	assert_string_equal(ep_why(fe, 1), "used");
	explain_topology_text(fe, "node-a", "", buf, sizeof(buf));
	assert_string_equal(buf, "none: the endpoints have forZones hints but node node-a has no "
				 "topology.kubernetes.io/zone label");
	json_decref(doc);
	frontend_list_clear(&list);
	store_destroy(&st);
}

static void test_topology_words(void **state)
{
	json_t *fe = json_pack("{s:{s:s,s:s,s:s}}", "topology", "why", "hint-missing", "hint",
			       "forZones", "endpoint", "10.244.1.2:8080");
	char buf[256];

	explain_topology_text(fe, "node-a", "z1", buf, sizeof(buf));
	assert_string_equal(buf,
			    "none: ready endpoint 10.244.1.2:8080 has no forZones hint, so the "
			    "hints of every endpoint are ignored");
	json_decref(fe);
	fe = json_pack("{s:{s:s,s:s}}", "topology", "why", "not-hinted-here", "hint", "forNodes");
	explain_topology_text(fe, "node-a", "z1", buf, sizeof(buf));
	assert_string_equal(buf, "none: every ready endpoint has a forNodes hint, but none names "
				 "this node node-a");
	json_decref(fe);
}

static void test_endpoint_words(void **state)
{
	json_t *fe = json_pack("{s:s,s:s}", "choice", "local", "policy", "Local");
	json_t *ep = json_pack("{s:s,s:s}", "why", "not-local", "node", "node-b");
	char buf[256];

	explain_endpoint_text(fe, ep, "node-a", "z1", buf, sizeof(buf));
	assert_string_equal(buf, "on node node-b: traffic policy Local takes this node's endpoints "
				 "only");
	json_decref(ep);
	ep = json_pack("{s:s}", "why", "terminating");
	explain_endpoint_text(fe, ep, "node-a", "z1", buf, sizeof(buf));
	assert_string_equal(buf,
			    "serving while terminating: used only when nothing on this node is "
			    "ready");
	json_decref(ep);
	json_decref(fe);
}

struct render_arg {
	json_t *doc;
	struct explain_context *x;
};

static void render(FILE *out, void *arg)
{
	struct render_arg *a = arg;

	explain_render(out, a->doc, a->x);
}

static void test_explain_render(void **state)
{
	struct flow_counters fc = { .service = "default/zoned", .flows = { 12, 3 } };
	struct explain_context x = {
		.in_kernel = "nftables",
		.agent_datapath = "nftables",
		.requested = "auto",
		.fallback = "bpf unavailable: no BTF",
		.agent_running = true,
		.counters = &fc,
		.have = 3,
		.now = 1003,
	};
	struct frontend_list list = { 0 };
	struct render_arg arg = { .x = &x };
	struct store st;
	char *text;

	store_init(&st);
	put_yaml(&st, zoned_yaml);
	arg.doc = service_doc(&st, "default/zoned", "z1", &list);
	text = capture(render, &arg);
	assert_non_null(strstr(text, "Datapath:          nftables (--datapath=auto fell back: bpf "
				     "unavailable: no BTF); in the kernel\n"));
	assert_non_null(strstr(text, "Rate limit:        5/s new flows, burst 5 "
				     "(sluice.io/rate-limit); kernel counters: 12 admitted, 3 "
				     "rate-limited\n"));
	assert_non_null(strstr(text, "Session affinity:  ClientIP: one client address keeps its "
				     "backend until 10800s idle\n"));
	/* No annotation: --lb-algorithm's default, random. */
	assert_non_null(strstr(text, "Load balancing:    random (--lb-algorithm); a new flow picks "
				     "a backend at random\n"));
	assert_non_null(strstr(text, "Published:         1970-01-01 00:16:40 UTC (3s ago) by the "
				     "agent\n"));
	assert_non_null(strstr(text, "Frontend 10.96.0.20:80/tcp (ClusterIP, port http): serves 1 "
				     "of 4 endpoints\n"));
	assert_non_null(strstr(text,
			       "  ENDPOINT          NODE     ZONE   CONDITIONS   HINTS     IN "
			       "USE   WHY\n"));
	assert_non_null(strstr(text,
			       "  10.244.1.2:8080   node-b   z2     ready        zone:z2   no  "
			       "     hinted for zone z2, not this node's zone z1\n"));
	free(text);
	json_decref(arg.doc);
	frontend_list_clear(&list);
	store_destroy(&st);
}

static const char *const dsr_yaml =
	"apiVersion: v1\nkind: Service\n"
	"metadata: {name: web, namespace: default, annotations: {sluice.io/forwarding-mode: dsr}}\n"
	"spec: {type: NodePort, clusterIP: 10.96.0.30,\n"
	"  ports: [{name: http, port: 80, targetPort: 8080, nodePort: 30080}]}\n"
	"---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
	"metadata: {name: web-1, namespace: default, labels: {kubernetes.io/service-name: web}}\n"
	"addressType: IPv4\nports: [{name: http, port: 8080}]\nendpoints:\n"
	"- {addresses: [10.244.1.1], nodeName: node-a}\n"
	"- {addresses: [10.244.2.1], nodeName: node-b}\n"
	"- {addresses: [10.244.3.1], nodeName: node-c}\n";

static void test_explain_forwarding_mode(void **state)
{
	struct explain_context x = { .in_kernel = "bpf", .agent_datapath = "bpf", .now = 1000 };
	struct frontend_list list = { 0 };
	struct render_arg arg = { .x = &x };
	struct store st;
	json_t *fe;
	char *text;

	store_init(&st);
	assert_int_equal(put_yaml(&st, dsr_yaml), 2);
	arg.doc = service_doc(&st, "default/web", NULL, &list);
	assert_string_equal(js(arg.doc, "forwardingModeAnnotation"), "dsr");
	fe = frontend_at(arg.doc, 0); /* 0.0.0.0 sorts before the ClusterIP */
	assert_string_equal(js(fe, "kind"), "NodePort");
	assert_string_equal(js(frontend_at(arg.doc, 1), "forwardingMode"), ""); /* ClusterIP */
	assert_string_equal(js(fe, "forwardingMode"), "dsr");
	assert_string_equal(js(json_object_get(fe, "dsrNodes"), "10.244.2.1:8080"), "192.168.0.2");
	assert_true(
		json_is_null(json_object_get(json_object_get(fe, "dsrNodes"), "10.244.1.1:8080")));
	text = capture(render, &arg);
	assert_non_null(strstr(text, "  Forwarding:      dsr (sluice.io/forwarding-mode): 1 of 3 "
				     "backends are on other nodes of known address"));
	assert_non_null(strstr(text, "                   10.244.2.1:8080 on node 192.168.0.2 (IPv4 "
				     "in IPv4)\n"));
	free(text);
	/* The nftables datapath serves it with SNAT, and says so. */
	x.agent_datapath = x.in_kernel = "nftables";
	text = capture(render, &arg);
	assert_non_null(strstr(text,
			       "  Forwarding:      dsr (sluice.io/forwarding-mode): not "
			       "supported by the nftables datapath: SNAT through this node\n"));
	free(text);
	json_decref(arg.doc);
	frontend_list_clear(&list);
	store_destroy(&st);
}

struct top_arg {
	struct top_sample *prev, *cur;
	unsigned int have;
	size_t rows;
};

static void top(FILE *out, void *arg)
{
	struct top_arg *a = arg;

	top_render(out, a->prev, a->cur, a->have, a->rows);
}

static void test_top_rates_and_order(void **state)
{
	struct flow_counters before[] = {
		{ .service = "a/quiet", .flows = { 100, 0 } },
		{ .service = "b/reused", .flows = { 900, 0 } },
		{ .service = "c/busy", .flows = { 10, 0 } },
	};
	struct flow_counters after[] = {
		{ .service = "a/quiet", .flows = { 102, 0 } },
		{ .service = "b/reused", .flows = { 5, 0 } },
		{ .service = "c/busy", .flows = { 210, 40 }, .rate = { .count = 100, .period = 1 } },
		{ .service = "d/new", .flows = { 8, 0 } },
	};
	struct top_sample prev = { before, 3, 10 }, cur = { after, 4, 12 };
	struct top_arg arg = { &prev, &cur, 3, 3 };
	char *text = capture(top, &arg);

	/* Busiest first; a new Service counts from zero; a counter that went back, as none. */
	assert_string_equal(text,
			    "SERVICE   FLOWS/S   ADMITTED/S   RATE_LIMITED/S   LIMIT   ADMITTED\n"
			    "c/busy    120.0     100.0        20.0             100/s   210\n"
			    "d/new     4.0       4.0          0.0              none    8\n"
			    "a/quiet   1.0       1.0          0.0              none    102\n");
	free(text);
}

static void test_top_columns_follow_counters(void **state)
{
	struct flow_counters c[] = { { .service = "x/y", .flows = { 0, 0, 6 } } };
	struct top_sample prev = { NULL, 0, 0 }, cur = { c, 1, 2 };
	struct top_arg arg = { &prev, &cur, 1u << FLOW_ADMITTED | 1u << FLOW_NO_ENDPOINTS, 10 };
	char *text = capture(top, &arg);

	assert_string_equal(text,
			    "SERVICE   FLOWS/S   ADMITTED/S   NO_ENDPOINTS/S   LIMIT   ADMITTED\n"
			    "x/y       3.0       0.0          3.0              none    0\n");
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table_kubectl_alignment),
		cmocka_unit_test(test_document_explains_zone_choice),
		cmocka_unit_test(test_document_without_zone_label),
		cmocka_unit_test(test_topology_words),
		cmocka_unit_test(test_endpoint_words),
		cmocka_unit_test(test_explain_render),
		cmocka_unit_test(test_explain_forwarding_mode),
		cmocka_unit_test(test_top_rates_and_order),
		cmocka_unit_test(test_top_columns_follow_counters),
	};

	log_set_level(LOG_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
