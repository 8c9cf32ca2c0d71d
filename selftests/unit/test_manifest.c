// SPDX-License-Identifier: Apache-2.0
/* Unit tests of manifest decoding: formats, every Service/EndpointSlice/Node field, bad input. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <cmocka.h>

#include "lib/log.h"
#include "source/manifest.h"

/* What one decode produced, with the warning lines it logged. */
struct decoded {
	int rc;
	struct manifest_objects objs;
	int n_warnings;
	char log[8192];
};

/* Decodes text with stderr captured, so that tests can count and read warnings. */
static void decode_text(const char *text, const char *source, struct decoded *d)
{
	FILE *capture = tmpfile();
	int saved = dup(STDERR_FILENO);
	size_t got;
	char *line;

	assert_non_null(capture);
	memset(d, 0, sizeof(*d));
	fflush(stderr);
	dup2(fileno(capture), STDERR_FILENO);
	d->rc = manifest_decode(text, strlen(text), source, &d->objs);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	rewind(capture);
	got = fread(d->log, 1, sizeof(d->log) - 1, capture);
	d->log[got] = '\0';
	fclose(capture);
	for (line = strstr(d->log, " warn: "); line; line = strstr(line + 1, " warn: "))
		d->n_warnings++;
	/* Shown as TAP comments, one per line. */
	for (line = d->log; *line; line = strchr(line, '\n') + 1) {
		if (!strchr(line, '\n'))
			break;
		print_message("# captured: %.*s\n", (int)(strchr(line, '\n') - line), line);
	}
}

static void decode_ok(const char *text, struct decoded *d)
{
	decode_text(text, "test.yaml", d);
	assert_int_equal(d->rc, 0);
}

static void ip_is(const struct ip_addr *addr, const char *expected)
{
	char buf[IP_ADDR_STRLEN];

	assert_string_equal(ip_addr_format(addr, buf), expected);
}

static const char *const WEB_JSON =
	"{\n"
	"  \"apiVersion\": \"v1\",\n"
	"  \"kind\": \"Service\",\n"
	"  \"metadata\": {\"name\": \"web\", \"namespace\": \"shop\"},\n"
	"  \"spec\": {\n"
	"    \"clusterIP\": \"10.96.0.10\",\n"
	"    \"ports\": [{\"name\": \"http\", \"port\": 80, \"targetPort\": 8080}]\n"
	"  }\n"
	"}\n";

/* The shape kubectl get -o yaml writes, with the fields Sluice does not read. */
static void test_kubectl_yaml_output(void **state)
{
	struct endpoint_slice *slice;
	struct decoded d;

	decode_ok("apiVersion: v1\n"
		  "items:\n"
		  "- apiVersion: v1\n"
		  "  kind: Service\n"
		  "  metadata:\n"
		  "    annotations:\n"
		  "      kubectl.kubernetes.io/last-applied-configuration: |\n"
		  "        {\"apiVersion\":\"v1\",\"kind\":\"Service\"}\n"
		  "    creationTimestamp: \"2024-05-01T10:00:00Z\"\n"
		  "    labels:\n"
		  "      app: web\n"
		  "    managedFields:\n"
		  "    - apiVersion: v1\n"
		  "      fieldsType: FieldsV1\n"
		  "      fieldsV1:\n"
		  "        f:spec:\n"
		  "          f:ports:\n"
		  "            .: {}\n"
		  "            k:{\"port\":80,\"protocol\":\"TCP\"}: {}\n"
		  "      manager: kubectl-client-side-apply\n"
		  "      operation: Update\n"
		  "      time: \"2024-05-01T10:00:00Z\"\n"
		  "    name: web\n"
		  "    namespace: default\n"
		  "    resourceVersion: \"1234\"\n"
		  "    uid: 0b6c5d8e-1111-2222-3333-444455556666\n"
		  "  spec:\n"
		  "    clusterIP: 10.96.12.34\n"
		  "    clusterIPs:\n"
		  "    - 10.96.12.34\n"
		  "    internalTrafficPolicy: Cluster\n"
		  "    ipFamilies:\n"
		  "    - IPv4\n"
		  "    ipFamilyPolicy: SingleStack\n"
		  "    ports:\n"
		  "    - name: http\n"
		  "      port: 80\n"
		  "      protocol: TCP\n"
		  "      targetPort: 8080\n"
		  "    selector:\n"
		  "      app: web\n"
		  "    sessionAffinity: None\n"
		  "    type: ClusterIP\n"
		  "  status:\n"
		  "    loadBalancer: {}\n"
		  "- addressType: IPv4\n"
		  "  apiVersion: discovery.k8s.io/v1\n"
		  "  endpoints:\n"
		  "  - addresses:\n"
		  "    - 10.244.1.7\n"
		  "    conditions:\n"
		  "      ready: true\n"
		  "      serving: true\n"
		  "      terminating: false\n"
		  "    nodeName: kind-worker\n"
		  "    targetRef:\n"
		  "      kind: Pod\n"
		  "      name: web-7d4b9c-abcde\n"
		  "      namespace: default\n"
		  "    zone: eu-west-1a\n"
		  "  kind: EndpointSlice\n"
		  "  metadata:\n"
		  "    generateName: web-\n"
		  "    labels:\n"
		  "      endpointslice.kubernetes.io/managed-by: endpointslice-controller.k8s.io\n"
		  "      kubernetes.io/service-name: web\n"
		  "    name: web-x7k2p\n"
		  "    namespace: default\n"
		  "    ownerReferences:\n"
		  "    - apiVersion: v1\n"
		  "      blockOwnerDeletion: true\n"
		  "      controller: true\n"
		  "      kind: Service\n"
		  "      name: web\n"
		  "  ports:\n"
		  "  - name: http\n"
		  "    port: 8080\n"
		  "    protocol: TCP\n"
		  "kind: List\n"
		  "metadata:\n"
		  "  resourceVersion: \"\"\n",
		  &d);
	assert_int_equal(d.n_warnings, 0);
	assert_int_equal(d.objs.n_services, 1);
	assert_int_equal(d.objs.services[0]->n_cluster_ips, 1);
	assert_int_equal(d.objs.services[0]->ports[0].target_port, 8080);
	assert_false(d.objs.services[0]->affinity_client_ip);
	assert_int_equal(d.objs.n_slices, 1);
	slice = d.objs.slices[0];
	assert_string_equal(slice->name, "web-x7k2p");
	assert_string_equal(slice->service_name, "web");
	assert_int_equal(slice->ports[0].port, 8080);
	assert_string_equal(slice->endpoints[0].node_name, "kind-worker");
	assert_string_equal(slice->endpoints[0].zone, "eu-west-1a");
	assert_true(slice->endpoints[0].ready);
	manifest_objects_clear(&d.objs);
}

static void test_json_single_service(void **state)
{
	struct decoded d;
	struct service *svc;

	decode_text(WEB_JSON, "dir/web.json", &d);
	assert_int_equal(d.rc, 0);
	assert_int_equal(d.n_warnings, 0);
	assert_int_equal(d.objs.n_services, 1);
	assert_int_equal(d.objs.n_slices, 0);
	assert_int_equal(d.objs.n_nodes, 0);
	svc = d.objs.services[0];
	assert_string_equal(svc->ns, "shop");
	assert_string_equal(svc->name, "web");
	assert_string_equal(svc->source, "dir/web.json");
	assert_int_equal(svc->n_cluster_ips, 1);
	ip_is(&svc->cluster_ips[0], "10.96.0.10");
	assert_int_equal(svc->n_ports, 1);
	assert_string_equal(svc->ports[0].name, "http");
	assert_int_equal(svc->ports[0].proto, PROTO_TCP);
	assert_int_equal(svc->ports[0].port, 80);
	assert_int_equal(svc->ports[0].target_port, 8080);
	assert_null(svc->ports[0].target_port_name);
	manifest_objects_clear(&d.objs);
}

static void test_json_list(void **state)
{
	struct decoded d;

	decode_ok("{\"apiVersion\": \"v1\", \"kind\": \"List\", \"items\": [\n"
		  " {\"apiVersion\": \"v1\", \"kind\":"
		  " \"Service\", \"metadata\": {\"name\": \"a\"},"
		  "  \"spec\": {\"clusterIP\": \"10.0.0.1\", \"ports\": [{\"port\": 53,"
		  "  \"protocol\": \"UDP\"}]}},\n"
		  " {\"apiVersion\": \"discovery.k8s.io/v1\", \"kind\": \"EndpointSlice\","
		  "  \"metadata\": {\"name\": \"a-1\", \"labels\":"
		  " {\"kubernetes.io/service-name\": \"a\"}},"
		  "  \"addressType\": \"IPv4\", \"endpoints\":"
		  " [{\"addresses\": [\"10.1.0.5\"]}]},\n"
		  " {\"apiVersion\": \"v1\", \"kind\":"
		  " \"Node\", \"metadata\": {\"name\": \"n1\"}}\n"
		  "]}\n",
		  &d);
	assert_int_equal(d.n_warnings, 0);
	assert_int_equal(d.objs.n_services, 1);
	assert_int_equal(d.objs.n_slices, 1);
	assert_int_equal(d.objs.n_nodes, 1);
	assert_string_equal(d.objs.services[0]->ns, "default");
	assert_int_equal(d.objs.services[0]->ports[0].proto, PROTO_UDP);
	assert_string_equal(d.objs.slices[0]->service_name, "a");
	assert_string_equal(d.objs.nodes[0]->name, "n1");
	manifest_objects_clear(&d.objs);
}

static void test_yaml_single_service(void **state)
{
	struct decoded d;
	struct service *svc;

	decode_ok("apiVersion: v1\n"
		  "kind: Service\n"
		  "metadata:\n"
		  "  name: web\n"
		  "  namespace: shop\n"
		  "spec:\n"
		  "  clusterIP: 10.96.0.10\n"
		  "  ports:\n"
		  "  - name: http\n"
		  "    port: 80\n"
		  "    targetPort: 8080\n",
		  &d);
	assert_int_equal(d.n_warnings, 0);
	assert_int_equal(d.objs.n_services, 1);
	svc = d.objs.services[0];
	assert_string_equal(svc->name, "web");
	assert_string_equal(svc->ns, "shop");
	ip_is(&svc->cluster_ips[0], "10.96.0.10");
	assert_int_equal(svc->ports[0].port, 80);
	assert_int_equal(svc->ports[0].target_port, 8080);
	manifest_objects_clear(&d.objs);
}

static void test_yaml_multi_document(void **state)
{
	struct decoded d;

	decode_ok("# leading comment\n"
		  "---\n"
		  "apiVersion: v1\n"
		  "kind: Service\n"
		  "metadata: {name: one}\n"
		  "spec: {clusterIP: 10.0.0.1, ports: [{port: 80}]}\n"
		  "---\n"
		  "---\n"
		  "# only a comment\n"
		  "---\n"
		  "apiVersion: v1\n"
		  "kind: Service\n"
		  "metadata: {name: two}\n"
		  "spec: {clusterIP: 10.0.0.2, ports: [{port: 81}]}\n"
		  "...\n"
		  "---\n"
		  "apiVersion: v1\n"
		  "kind: Node\n"
		  "metadata: {name: n1}\n",
		  &d);
	assert_int_equal(d.n_warnings, 0);
	assert_int_equal(d.objs.n_services, 2);
	assert_string_equal(d.objs.services[0]->name, "one");
	assert_string_equal(d.objs.services[1]->name, "two");
	assert_int_equal(d.objs.services[1]->ports[0].port, 81);
	assert_int_equal(d.objs.n_nodes, 1);
	manifest_objects_clear(&d.objs);
}

static void test_yaml_list_and_typed_list(void **state)
{
	struct decoded d;

	/* kubectl's List, then a raw ServiceList whose items carry no kind. */
	decode_ok("apiVersion: v1\n"
		  "kind: List\n"
		  "items:\n"
		  "- apiVersion: v1\n"
		  "  kind: Service\n"
		  "  metadata: {name: a}\n"
		  "  spec: {ports: [{port: 80}]}\n"
		  "- apiVersion: v1\n"
		  "  kind: ConfigMap\n"
		  "  metadata: {name: cfg}\n"
		  "metadata: {resourceVersion: \"\"}\n"
		  "---\n"
		  "apiVersion: v1\n"
		  "kind: ServiceList\n"
		  "items:\n"
		  "- metadata: {name: b, namespace: x}\n"
		  "  spec: {ports: [{port: 443}]}\n"
		  "---\n"
		  "apiVersion: discovery.k8s.io/v1\n"
		  "kind: EndpointSliceList\n"
		  "items:\n"
		  "- metadata: {name: b-1, namespace: x}\n"
		  "  addressType: IPv6\n"
		  "  endpoints: [{addresses: ['fd00::5']}]\n"
		  "---\n"
		  "kind: List\n"
		  "items: []\n",
		  &d);
	assert_int_equal(d.n_warnings, 0);
	assert_int_equal(d.objs.n_services, 2);
	assert_string_equal(d.objs.services[0]->name, "a");
	assert_string_equal(d.objs.services[1]->ns, "x");
	assert_string_equal(d.objs.services[1]->name, "b");
	assert_int_equal(d.objs.n_slices, 1);
	assert_int_equal(d.objs.slices[0]->address_family, AF_INET6);
	ip_is(&d.objs.slices[0]->endpoints[0].addresses[0], "fd00::5");
	manifest_objects_clear(&d.objs);
}

static void test_service_all_fields(void **state)
{
	struct decoded d;
	struct service *svc;

	decode_ok("apiVersion: v1\n"
		  "kind: Service\n"
		  "metadata:\n"
		  "  name: lb\n"
		  "  annotations:\n"
		  "    sluice.io/rate-limit: 100/s\n"
		  "    sluice.io/rate-limit-burst: \"20\"\n"
		  "    sluice.io/forwarding-mode: dsr\n"
		  "    other: ignored\n"
		  "spec:\n"
		  "  type: LoadBalancer\n"
		  "  clusterIP: 10.0.0.7\n"
		  "  ports:\n"
		  "  - {name: http, port: 80, nodePort: 30080, targetPort: web, protocol: TCP}\n"
		  "  - {name: dns, port: 53, nodePort: 30053, protocol: SCTP}\n"
		  "  externalIPs: [192.0.2.10, '2001:db8::10']\n"
		  "  internalTrafficPolicy: Local\n"
		  "  externalTrafficPolicy: Local\n"
		  "  sessionAffinity: ClientIP\n"
		  "  sessionAffinityConfig: {clientIP: {timeoutSeconds: 60}}\n"
		  "  healthCheckNodePort: 32000\n"
		  "  trafficDistribution: PreferClose\n"
		  "  loadBalancerSourceRanges: [10.0.0.0/8, 192.168.0.0/16]\n"
		  "status:\n"
		  "  loadBalancer:\n"
		  "    ingress:\n"
		  "    - ip: 198.51.100.1\n"
		  "    - hostname: lb.example.com\n"
		  "    - ip: 198.51.100.2\n"
		  "      hostname: lb2.example.com\n",
		  &d);
	assert_int_equal(d.n_warnings, 0);
	assert_int_equal(d.objs.n_services, 1);
	svc = d.objs.services[0];
	assert_int_equal(svc->type, SVC_LOAD_BALANCER);
	assert_false(svc->headless);
	assert_int_equal(svc->n_ports, 2);
	assert_int_equal(svc->ports[0].node_port, 30080);
	assert_int_equal(svc->ports[0].target_port, 0);
	assert_string_equal(svc->ports[0].target_port_name, "web");
	assert_int_equal(svc->ports[1].proto, PROTO_SCTP);
	assert_int_equal(svc->ports[1].target_port, 0);
	assert_null(svc->ports[1].target_port_name);
	assert_int_equal(svc->n_external_ips, 2);
	ip_is(&svc->external_ips[0], "192.0.2.10");
	ip_is(&svc->external_ips[1], "2001:db8::10");
	assert_int_equal(svc->n_lb_ingress_ips, 2);
	ip_is(&svc->lb_ingress_ips[0], "198.51.100.1");
	ip_is(&svc->lb_ingress_ips[1], "198.51.100.2");
	assert_true(svc->internal_local);
	assert_true(svc->external_local);
	assert_true(svc->affinity_client_ip);
	assert_int_equal(svc->affinity_timeout, 60);
	assert_int_equal(svc->health_check_node_port, 32000);
	assert_string_equal(svc->traffic_distribution, "PreferClose");
	assert_int_equal(svc->n_lb_source_ranges, 2);
	assert_string_equal(svc->lb_source_ranges[1], "192.168.0.0/16");
	assert_string_equal(svc->rate_limit, "100/s");
	assert_string_equal(svc->rate_limit_burst, "20");
	assert_int_equal(svc->forwarding, FORWARDING_DSR);
	manifest_objects_clear(&d.objs);
}

/* A bad sluice.io/forwarding-mode: one line naming the Service, the default used. */
static void test_forwarding_mode_annotation(void **state)
{
	static const char *const fmt = "apiVersion: v1\n"
				       "kind: Service\n"
				       "metadata:\n"
				       "  name: web\n"
				       "  namespace: shop\n"
				       "  annotations: {sluice.io/forwarding-mode: %s}\n"
				       "spec: {ports: [{port: 80}]}\n";
	char text[512];
	struct decoded d;

	snprintf(text, sizeof(text), fmt, "snat");
	decode_ok(text, &d);
	assert_int_equal(d.n_warnings, 0);
	assert_int_equal(d.objs.services[0]->forwarding, FORWARDING_SNAT);
	manifest_objects_clear(&d.objs);
	snprintf(text, sizeof(text), fmt, "direct");
	decode_ok(text, &d);
	assert_int_equal(d.n_warnings, 1);
	assert_non_null(strstr(d.log, "Service shop/web: sluice.io/forwarding-mode \"direct\""));
	assert_int_equal(d.objs.n_services, 1);
	assert_int_equal(d.objs.services[0]->forwarding, FORWARDING_DEFAULT);
	manifest_objects_clear(&d.objs);
}

static void test_service_defaults(void **state)
{
	struct decoded d;
	struct service *svc;

	decode_ok("apiVersion: v1\n"
		  "kind: Service\n"
		  "metadata: {name: plain, namespace: ''}\n"
		  "spec:\n"
		  "  ports: [{port: 8080}]\n"
		  "  sessionAffinity: ClientIP\n"
		  "  externalTrafficPolicy: Cluster\n",
		  &d);
	assert_int_equal(d.objs.n_services, 1);
	svc = d.objs.services[0];
	assert_string_equal(svc->ns, "default");
	assert_int_equal(svc->type, SVC_CLUSTER_IP);
	assert_int_equal(svc->n_cluster_ips, 0);
	assert_false(svc->headless);
	assert_string_equal(svc->ports[0].name, "");
	assert_int_equal(svc->ports[0].proto, PROTO_TCP);
	assert_int_equal(svc->ports[0].node_port, 0);
	assert_int_equal(svc->ports[0].target_port, 0);
	assert_false(svc->internal_local);
	assert_false(svc->external_local);
	assert_true(svc->affinity_client_ip);
	assert_int_equal(svc->affinity_timeout, 10800);
	assert_null(svc->traffic_distribution);
	assert_null(svc->rate_limit);
	assert_null(svc->rate_limit_burst);
	assert_int_equal(svc->n_lb_source_ranges, 0);
	assert_int_equal(svc->n_external_ips, 0);
	assert_int_equal(svc->n_lb_ingress_ips, 0);
	manifest_objects_clear(&d.objs);
}

static void test_named_ports(void **state)
{
	struct decoded d;
	struct service *svc;

	decode_ok("apiVersion: v1\n"
		  "kind: Service\n"
		  "metadata: {name: multi}\n"
		  "spec:\n"
		  "  type: NodePort\n"
		  "  ports:\n"
		  "  - {name: http, port: 80, targetPort: http-alt, nodePort: 30001}\n"
		  "  - {name: https, port: 443, targetPort: 8443}\n"
		  "  - {name: dns-udp, port: 53, protocol: UDP, targetPort: ''}\n",
		  &d);
	assert_int_equal(d.objs.n_services, 1);
	svc = d.objs.services[0];
	assert_int_equal(svc->type, SVC_NODE_PORT);
	assert_int_equal(svc->n_ports, 3);
	assert_string_equal(svc->ports[0].name, "http");
	assert_string_equal(svc->ports[0].target_port_name, "http-alt");
	assert_int_equal(svc->ports[0].node_port, 30001);
	assert_string_equal(svc->ports[1].name, "https");
	assert_int_equal(svc->ports[1].target_port, 8443);
	assert_string_equal(svc->ports[2].name, "dns-udp");
	assert_int_equal(svc->ports[2].proto, PROTO_UDP);
	assert_null(svc->ports[2].target_port_name);
	manifest_objects_clear(&d.objs);
}

static void test_dual_stack_cluster_ips(void **state)
{
	struct decoded d;
	struct service *svc;

	/* clusterIPs wins over clusterIP. */
	decode_ok("apiVersion: v1\n"
		  "kind: Service\n"
		  "metadata: {name: dual}\n"
		  "spec:\n"
		  "  clusterIP: 10.0.0.9\n"
		  "  clusterIPs: [10.0.0.9, 'fd00:10::9']\n"
		  "  ipFamilies: [IPv4, IPv6]\n"
		  "  ports: [{port: 80}]\n",
		  &d);
	assert_int_equal(d.objs.n_services, 1);
	svc = d.objs.services[0];
	assert_int_equal(svc->n_cluster_ips, 2);
	ip_is(&svc->cluster_ips[0], "10.0.0.9");
	ip_is(&svc->cluster_ips[1], "fd00:10::9");
	assert_int_equal(svc->cluster_ips[1].family, AF_INET6);
	manifest_objects_clear(&d.objs);

	decode_ok("apiVersion: v1\n"
		  "kind: Service\n"
		  "metadata: {name: six}\n"
		  "spec: {clusterIP: 10.0.0.9, clusterIPs: ['fd00::1'], ports: [{port: 80}]}\n",
		  &d);
	assert_int_equal(d.objs.services[0]->n_cluster_ips, 1);
	ip_is(&d.objs.services[0]->cluster_ips[0], "fd00::1");
	manifest_objects_clear(&d.objs);
}

static void test_headless_service(void **state)
{
	struct decoded d;

	decode_ok("apiVersion: v1\n"
		  "kind: Service\n"
		  "metadata: {name: db}\n"
		  "spec: {clusterIP: None, clusterIPs: [None], ports: [{port: 5432}]}\n"
		  "---\n"
		  "apiVersion: v1\n"
		  "kind: Service\n"
		  "metadata: {name: db2}\n"
		  "spec: {clusterIP: None, ports: [{port: 5432}]}\n",
		  &d);
	assert_int_equal(d.n_warnings, 0);
	assert_int_equal(d.objs.n_services, 2);
	for (int i = 0; i < 2; i++) {
		assert_true(d.objs.services[i]->headless);
		assert_int_equal(d.objs.services[i]->n_cluster_ips, 0);
	}
	manifest_objects_clear(&d.objs);
}

static void test_external_name_service(void **state)
{
	struct decoded d;

	decode_ok("apiVersion: v1\n"
		  "kind: Service\n"
		  "metadata: {name: ext}\n"
		  "spec: {type: ExternalName, externalName: db.example.com}\n",
		  &d);
	assert_int_equal(d.objs.n_services, 1);
	assert_int_equal(d.objs.services[0]->type, SVC_EXTERNAL_NAME);
	assert_int_equal(d.objs.services[0]->n_cluster_ips, 0);
	assert_int_equal(d.objs.services[0]->n_ports, 0);
	manifest_objects_clear(&d.objs);
}

/*
 * kube-proxy's label selector: another proxy's Service (any value, even "")
 * and a headless Service's slices are ignored, even when they would not
 * decode, without a warning; they stay as names so that gaining the label
 * takes their frontends away.
 */
static void test_kube_proxy_labels_ignored(void **state)
{
	struct decoded d;

	decode_ok(
		"apiVersion: v1\n"
		"kind: Service\n"
		"metadata: {name: other, labels: {service.kubernetes.io/service-proxy-name: x}}\n"
		"spec: {clusterIP: 10.0.0.999, ports: [{port: 80}]}\n"
		"---\n"
		"apiVersion: v1\n"
		"kind: Service\n"
		"metadata: {name: empty, labels: {service.kubernetes.io/service-proxy-name: ''}}\n"
		"spec: {clusterIP: 10.0.0.1, ports: [{port: 80}]}\n"
		"---\n"
		"apiVersion: v1\n"
		"kind: Service\n"
		"metadata: {name: mine, labels: {service.kubernetes.io/other: x}}\n"
		"spec: {clusterIP: 10.0.0.2, ports: [{port: 80}]}\n"
		"---\n"
		"apiVersion: discovery.k8s.io/v1\n"
		"kind: EndpointSlice\n"
		"metadata:\n"
		"  name: db-1\n"
		"  labels: {kubernetes.io/service-name: db, service.kubernetes.io/headless: ''}\n"
		"addressType: IPv4\n"
		"endpoints: [{addresses: [10.1.0.1]}]\n"
		"---\n"
		"apiVersion: discovery.k8s.io/v1\n"
		"kind: EndpointSlice\n"
		"metadata:\n"
		"  name: other-1\n"
		"  labels: {kubernetes.io/service-name: other,"
		" service.kubernetes.io/service-proxy-name: x}\n"
		"addressType: Bogus\n",
		&d);
	assert_int_equal(d.n_warnings, 0);
	assert_int_equal(d.objs.n_rejected, 0);
	assert_int_equal(d.objs.n_services, 3);
	assert_string_equal(d.objs.services[0]->name, "other");
	assert_true(d.objs.services[0]->ignored);
	assert_int_equal(d.objs.services[0]->n_cluster_ips, 0);
	assert_true(d.objs.services[1]->ignored);
	assert_false(d.objs.services[2]->ignored);
	assert_int_equal(d.objs.services[2]->n_cluster_ips, 1);
	assert_int_equal(d.objs.n_slices, 2);
	for (int i = 0; i < 2; i++) {
		assert_true(d.objs.slices[i]->ignored);
		assert_int_equal(d.objs.slices[i]->n_endpoints, 0);
	}
	assert_string_equal(d.objs.slices[0]->service_name, "db");
	manifest_objects_clear(&d.objs);
}

/* LoadBalancer ingress: ipMode VIP or none is captured on the node, Proxy is not. */
static void test_lb_ingress_ip_mode(void **state)
{
	struct decoded d;

	decode_ok("apiVersion: v1\n"
		  "kind: Service\n"
		  "metadata: {name: lb}\n"
		  "spec: {type: LoadBalancer, clusterIP: 10.0.0.1, ports: [{port: 80}]}\n"
		  "status:\n"
		  "  loadBalancer:\n"
		  "    ingress:\n"
		  "    - {ip: 192.0.2.1, ipMode: Proxy}\n"
		  "    - {ip: 192.0.2.2, ipMode: VIP}\n"
		  "    - {ip: 192.0.2.3}\n"
		  "    - {hostname: lb.example.com, ipMode: Proxy}\n",
		  &d);
	assert_int_equal(d.n_warnings, 0);
	assert_int_equal(d.objs.n_services, 1);
	assert_int_equal(d.objs.services[0]->n_lb_ingress_ips, 2);
	ip_is(&d.objs.services[0]->lb_ingress_ips[0], "192.0.2.2");
	ip_is(&d.objs.services[0]->lb_ingress_ips[1], "192.0.2.3");
	manifest_objects_clear(&d.objs);

	decode_text("apiVersion: v1\n"
		    "kind: Service\n"
		    "metadata: {name: lb}\n"
		    "spec: {type: LoadBalancer, clusterIP: 10.0.0.1, ports: [{port: 80}]}\n"
		    "status: {loadBalancer: {ingress: [{ip: 192.0.2.1, ipMode: Tunnel}]}}\n",
		    "lb.yaml", &d);
	assert_int_equal(d.objs.n_services, 0);
	assert_int_equal(d.n_warnings, 1);
	assert_non_null(strstr(d.log,
			       "lb.yaml: Service default/lb: "
			       "status.loadBalancer.ingress[0].ipMode: unknown value \"Tunnel\""));
	manifest_objects_clear(&d.objs);
}

static const char *const SLICE_HEAD = "apiVersion: discovery.k8s.io/v1\n"
				      "kind: EndpointSlice\n"
				      "metadata:\n"
				      "  name: web-abc\n"
				      "  namespace: shop\n"
				      "  labels: {kubernetes.io/service-name: web}\n"
				      "addressType: IPv4\n"
				      "ports: [{name: http, port: 8080},"
				      " {name: dns, protocol: UDP}]\n";

static void decode_slice(const char *endpoints, struct decoded *d)
{
	char text[4096];

	snprintf(text, sizeof(text), "%s%s", SLICE_HEAD, endpoints);
	decode_ok(text, d);
	assert_int_equal(d->n_warnings, 0);
	assert_int_equal(d->objs.n_slices, 1);
}

static void test_slice_condition_defaults(void **state)
{
	struct endpoint_slice *slice;
	struct decoded d;

	decode_slice("endpoints:\n"
		     "- addresses: [10.1.0.1]\n"
		     "- addresses: [10.1.0.2]\n"
		     "  conditions: {}\n"
		     "- addresses: [10.1.0.3]\n"
		     "  conditions: {ready: false}\n"
		     "- addresses: [10.1.0.4]\n"
		     "  conditions: {ready: null, serving: null, terminating: null}\n",
		     &d);
	slice = d.objs.slices[0];
	assert_string_equal(slice->ns, "shop");
	assert_string_equal(slice->name, "web-abc");
	assert_string_equal(slice->service_name, "web");
	assert_int_equal(slice->address_family, AF_INET);
	assert_int_equal(slice->n_ports, 2);
	assert_string_equal(slice->ports[0].name, "http");
	assert_int_equal(slice->ports[0].proto, PROTO_TCP);
	assert_int_equal(slice->ports[0].port, 8080);
	assert_int_equal(slice->ports[1].proto, PROTO_UDP);
	assert_int_equal(slice->ports[1].port, 0);
	assert_int_equal(slice->n_endpoints, 4);
	for (int i = 0; i < 4; i++) {
		bool ready = i != 2;

		assert_int_equal(slice->endpoints[i].ready, ready);
		assert_int_equal(slice->endpoints[i].serving, ready);
		assert_false(slice->endpoints[i].terminating);
		assert_null(slice->endpoints[i].node_name);
		assert_null(slice->endpoints[i].zone);
		assert_int_equal(slice->endpoints[i].n_hint_zones, 0);
	}
	manifest_objects_clear(&d.objs);
}

static void test_slice_condition_explicit(void **state)
{
	struct endpoint_slice *slice;
	struct decoded d;

	decode_slice("endpoints:\n"
		     "- addresses: [10.1.0.1, 10.1.0.11]\n"
		     "  conditions: {ready: false, serving: true, terminating: true}\n"
		     "  nodeName: node-a\n"
		     "  zone: zone-1\n"
		     "- addresses: [10.1.0.2]\n"
		     "  conditions: {ready: true, serving: false, terminating: false}\n",
		     &d);
	slice = d.objs.slices[0];
	assert_int_equal(slice->n_endpoints, 2);
	assert_int_equal(slice->endpoints[0].n_addresses, 2);
	ip_is(&slice->endpoints[0].addresses[1], "10.1.0.11");
	assert_false(slice->endpoints[0].ready);
	assert_true(slice->endpoints[0].serving);
	assert_true(slice->endpoints[0].terminating);
	assert_string_equal(slice->endpoints[0].node_name, "node-a");
	assert_string_equal(slice->endpoints[0].zone, "zone-1");
	assert_true(slice->endpoints[1].ready);
	assert_false(slice->endpoints[1].serving);
	assert_false(slice->endpoints[1].terminating);
	manifest_objects_clear(&d.objs);
}

static void test_slice_hints(void **state)
{
	struct endpoint_slice *slice;
	struct decoded d;

	decode_slice("endpoints:\n"
		     "- addresses: [10.1.0.1]\n"
		     "  hints:\n"
		     "    forZones: [{name: zone-a}, {name: zone-b}]\n"
		     "    forNodes: [{name: node-1}]\n"
		     "- addresses: [10.1.0.2]\n"
		     "  hints: {forZones: [{name: zone-c}]}\n",
		     &d);
	slice = d.objs.slices[0];
	assert_int_equal(slice->endpoints[0].n_hint_zones, 2);
	assert_string_equal(slice->endpoints[0].hint_zones[0], "zone-a");
	assert_string_equal(slice->endpoints[0].hint_zones[1], "zone-b");
	assert_int_equal(slice->endpoints[0].n_hint_nodes, 1);
	assert_string_equal(slice->endpoints[0].hint_nodes[0], "node-1");
	assert_int_equal(slice->endpoints[1].n_hint_zones, 1);
	assert_int_equal(slice->endpoints[1].n_hint_nodes, 0);
	manifest_objects_clear(&d.objs);
}

static void test_slice_fqdn_and_family_mismatch(void **state)
{
	struct decoded d;

	decode_text("apiVersion: discovery.k8s.io/v1\n"
		    "kind: EndpointSlice\n"
		    "metadata: {name: names}\n"
		    "addressType: FQDN\n"
		    "endpoints: [{addresses: [db.example.com]}]\n"
		    "---\n"
		    "apiVersion: discovery.k8s.io/v1\n"
		    "kind: EndpointSlice\n"
		    "metadata: {name: mixed}\n"
		    "addressType: IPv6\n"
		    "endpoints: [{addresses: ['fd00::1']}, {addresses: [10.0.0.1]}]\n",
		    "slices.yaml", &d);
	assert_int_equal(d.rc, 0);
	assert_int_equal(d.objs.n_slices, 1);
	assert_string_equal(d.objs.slices[0]->name, "names");
	assert_int_equal(d.objs.slices[0]->address_family, 0);
	assert_int_equal(d.objs.slices[0]->n_endpoints, 0);
	assert_int_equal(d.n_warnings, 1);
	assert_non_null(strstr(d.log, "slices.yaml: EndpointSlice default/mixed: "
				      "invalid endpoints[1].addresses[0]"
				      " \"10.0.0.1\": not an IPv6"));
	manifest_objects_clear(&d.objs);
}

static void test_node_zone_and_addresses(void **state)
{
	struct decoded d;
	struct node *node;

	decode_ok("apiVersion: v1\n"
		  "kind: Node\n"
		  "metadata:\n"
		  "  name: node-a\n"
		  "  labels: {topology.kubernetes.io/zone:"
		  " zone-1, kubernetes.io/hostname: node-a}\n"
		  "status:\n"
		  "  addresses:\n"
		  "  - {type: Hostname, address: node-a}\n"
		  "  - {type: ExternalIP, address: 203.0.113.7}\n"
		  "  - {type: InternalIP, address: 172.18.0.2}\n"
		  "  - {type: InternalIP, address: 'fc00::2'}\n"
		  "  - {type: InternalDNS, address: node-a.local}\n"
		  "  - {type: ExternalIP, address: not-an-ip}\n"
		  "---\n"
		  "apiVersion: v1\n"
		  "kind: Node\n"
		  "metadata: {name: node-b}\n",
		  &d);
	assert_int_equal(d.n_warnings, 0);
	assert_int_equal(d.objs.n_nodes, 2);
	node = d.objs.nodes[0];
	assert_string_equal(node->name, "node-a");
	assert_string_equal(node->zone, "zone-1");
	assert_int_equal(node->n_addresses, 3);
	/* InternalIPs first, whatever the order: the first of a family is the primary. */
	ip_is(&node->addresses[0], "172.18.0.2");
	ip_is(&node->addresses[1], "fc00::2");
	ip_is(&node->addresses[2], "203.0.113.7");
	assert_null(d.objs.nodes[1]->zone);
	assert_int_equal(d.objs.nodes[1]->n_addresses, 0);
	manifest_objects_clear(&d.objs);
}

static void test_broken_yaml(void **state)
{
	struct decoded d;

	decode_text("apiVersion: v1\n"
		    "kind: Service\n"
		    "metadata:\n"
		    "  name: web\n"
		    "   namespace: [oops\n",
		    "dir/broken.yaml", &d);
	assert_int_equal(d.rc, -EINVAL);
	assert_int_equal(d.objs.n_services + d.objs.n_slices + d.objs.n_nodes, 0);
	assert_null(d.objs.services);
	assert_int_equal(d.n_warnings, 1);
	assert_non_null(strstr(d.log, "dir/broken.yaml:5: invalid YAML"));
	manifest_objects_clear(&d.objs);
}

static void test_broken_json(void **state)
{
	struct decoded d;

	decode_text("{\"apiVersion\": \"v1\", \"kind\": \"Service\",\n"
		    " \"metadata\": {\"name\": \"web\"},\n"
		    " \"spec\": {\"ports\": [{\"port\": 80,}]}}\n",
		    "dir/broken.json", &d);
	assert_int_equal(d.rc, -EINVAL);
	assert_int_equal(d.objs.n_services, 0);
	assert_int_equal(d.n_warnings, 1);
	assert_non_null(strstr(d.log, "dir/broken.json:3: invalid JSON"));
	manifest_objects_clear(&d.objs);

	/* JSON is one value: two concatenated objects do not parse. */
	decode_text("{\"kind\": \"Node\"}\n{\"kind\": \"Node\"}\n", "two.json", &d);
	assert_int_equal(d.rc, -EINVAL);
	assert_int_equal(d.n_warnings, 1);
	manifest_objects_clear(&d.objs);
}

static void test_invalid_address_among_valid(void **state)
{
	struct decoded d;

	decode_text("apiVersion: v1\n"
		    "kind: List\n"
		    "items:\n"
		    "- apiVersion: v1\n"
		    "  kind: Service\n"
		    "  metadata: {name: good-1}\n"
		    "  spec: {clusterIP: 10.0.0.1, ports: [{port: 80}]}\n"
		    "- apiVersion: v1\n"
		    "  kind: Service\n"
		    "  metadata: {name: web}\n"
		    "  spec: {clusterIP: 10.0.0.999, ports: [{port: 80}]}\n"
		    "- apiVersion: v1\n"
		    "  kind: Service\n"
		    "  metadata: {name: good-2}\n"
		    "  spec: {clusterIP: 10.0.0.2, ports: [{port: 80}]}\n",
		    "examples/x.yaml", &d);
	assert_int_equal(d.rc, 0);
	assert_int_equal(d.objs.n_services, 2);
	assert_string_equal(d.objs.services[0]->name, "good-1");
	assert_string_equal(d.objs.services[1]->name, "good-2");
	assert_int_equal(d.n_warnings, 1);
	assert_non_null(strstr(d.log, "examples/x.yaml: Service default/web:"
				      " invalid clusterIP \"10.0.0.999\""));
	assert_int_equal(d.objs.n_rejected, 1);
	assert_true(manifest_rejected_contains(&d.objs, "Service", "default", "web"));
	assert_false(manifest_rejected_contains(&d.objs, "Service", "default", "good-1"));
	assert_false(manifest_rejected_contains(&d.objs, "EndpointSlice", "default", "web"));
	manifest_objects_clear(&d.objs);
}

static void test_ports_out_of_range(void **state)
{
	static const char *const bad_specs[] = {
		"{ports: [{port: 70000}]}",
		"{ports: [{port: 0}]}",
		"{ports: [{port: -1}]}",
		"{ports: [{name: x}]}",
		"{ports: [{port: 80, nodePort: 65536}]}",
		"{ports: [{port: 80, targetPort: 65536}]}",
		"{ports: [{port: 80, targetPort: '8080'}]}",
		"{ports: [{port: 80, protocol: ICMP}]}",
		"{ports: [{port: 80}], healthCheckNodePort: 99999}",
		"{ports: [{port: 80}], sessionAffinity: ClientIP,"
		" sessionAffinityConfig: {clientIP: {timeoutSeconds: 86401}}}",
		"{ports: [{port: 80}], sessionAffinity: ClientIP,"
		" sessionAffinityConfig: {clientIP: {timeoutSeconds: 0}}}",
	};
	struct decoded d;
	char text[512];

	for (size_t i = 0; i < sizeof(bad_specs) / sizeof(bad_specs[0]); i++) {
		snprintf(text, sizeof(text),
			 "apiVersion: v1\nkind: Service\nmetadata: {name: bad}\nspec: %s\n"
			 "---\n"
			 "apiVersion: v1\nkind: Service\nmetadata: {name: ok}\n"
			 "spec: {ports: [{port: 65535, nodePort: 32767}]}\n",
			 bad_specs[i]);
		decode_text(text, "ports.yaml", &d);
		assert_int_equal(d.rc, 0);
		assert_int_equal(d.n_warnings, 1);
		assert_non_null(strstr(d.log, "ports.yaml: Service default/bad: "));
		assert_int_equal(d.objs.n_services, 1);
		assert_string_equal(d.objs.services[0]->name, "ok");
		assert_int_equal(d.objs.services[0]->ports[0].port, 65535);
		manifest_objects_clear(&d.objs);
	}
}

/* ---- object names, as the API server validates them ---- */

/* A string of n copies of c. */
static const char *repeat(char c, size_t n, char *buf)
{
	memset(buf, c, n);
	buf[n] = '\0';
	return buf;
}

/* One object of kind (Service, EndpointSlice, Node) named ns/name, as YAML. */
static void name_doc(char *out, size_t len, const char *kind, const char *ns, const char *name)
{
	const char *api = strcmp(kind, "EndpointSlice") ? "v1" : "discovery.k8s.io/v1";
	char meta[700];

	if (ns)
		snprintf(meta, sizeof(meta), "{name: \"%s\", namespace: \"%s\"}", name, ns);
	else
		snprintf(meta, sizeof(meta), "{name: \"%s\"}", name);
	snprintf(out, len, "apiVersion: %s\nkind: %s\nmetadata: %s\n%s", api, kind, meta,
		 !strcmp(kind, "Service") ? "spec: {clusterIP: 10.0.0.1, ports: [{port: 80}]}\n" :
		 !strcmp(kind, "EndpointSlice") ? "addressType: IPv4\n" :
						  "");
}

/* Decodes ns/name of kind beside a valid object of the same kind: accepted or not, alone. */
static void check_name(const char *kind, const char *ns, const char *name, bool valid,
		       const char *problem)
{
	char text[2048], good[512], line[512];
	struct decoded d;
	size_t n;

	name_doc(text, sizeof(text), kind, ns, name);
	name_doc(good, sizeof(good), kind, ns ? "good-ns" : NULL, "good");
	strcat(text, "---\n");
	strcat(text, good);
	decode_text(text, "names.yaml", &d);
	assert_int_equal(d.rc, 0);
	n = !strcmp(kind, "Service")	   ? d.objs.n_services :
	    !strcmp(kind, "EndpointSlice") ? d.objs.n_slices :
					     d.objs.n_nodes;
	if (valid) {
		assert_int_equal(d.n_warnings, 0);
		assert_int_equal(n, 2);
		assert_int_equal(d.objs.n_rejected, 0);
	} else {
		/* One line naming the source and the object, the object left out, the rest kept. */
		assert_int_equal(d.n_warnings, 1);
		assert_int_equal(n, 1);
		assert_int_equal(d.objs.n_rejected, 1);
		assert_true(manifest_rejected_contains(&d.objs, kind, ns, name));
		if (ns)
			snprintf(line, sizeof(line), "names.yaml: %s %s/%.64s", kind, ns, name);
		else
			snprintf(line, sizeof(line), "names.yaml: %s %.64s", kind, name);
		assert_non_null(strstr(d.log, line));
		assert_non_null(strstr(d.log, problem));
	}
	manifest_objects_clear(&d.objs);
}

/*
 * k8s.io/apimachinery/pkg/util/validation, as the kinds use it: a Service
 * name is a DNS-1035 label (NameIsDNS1035Label), a namespace a DNS-1123
 * label (ValidateNamespaceName), EndpointSlice and Node names DNS-1123
 * subdomains (NameIsDNSSubdomain).
 */
static void test_name_rules(void **state)
{
	static const char *const label_msg = "a DNS-1035 label must consist of lower case";
	static const char *const ns_msg = "a lowercase RFC 1123 label must consist of lower case";
	static const char *const sub_msg =
		"a lowercase RFC 1123 subdomain must consist of lower case";
	char l63[64], l64[65], n63[64], sub253[300], sub254[300];
	static const char *const kinds[] = { "EndpointSlice", "Node" };

	repeat('a', 63, l63);
	repeat('a', 64, l64);
	repeat('7', 63, n63);
	/* 63 + 1 + 63 + 1 + 63 + 1 + 61 = 253: dots allowed, no per-label limit */
	snprintf(sub253, sizeof(sub253), "%s.%s.%s.%.61s", l63, l63, l63, l63);
	snprintf(sub254, sizeof(sub254), "%s.%s.%s.%.62s", l63, l63, l63, l63);
	assert_int_equal(strlen(sub253), 253);

	/* Service names: DNS-1035 labels. */
	check_name("Service", "default", l63, true, NULL);
	check_name("Service", "default", "a", true, NULL);
	check_name("Service", "default", "web-2-b", true, NULL);
	check_name("Service", "default", "a.b", false, label_msg);
	check_name("Service", "default", l64, false, "must be no more than 63 characters");
	check_name("Service", "default", "Web", false, label_msg);
	check_name("Service", "default", "-web", false, label_msg);
	check_name("Service", "default", "web-", false, label_msg);
	check_name("Service", "default", "1web", false, label_msg);
	check_name("Service", "default", "we_b", false, label_msg);

	/* Namespaces: DNS-1123 labels, a leading digit allowed. */
	check_name("Service", n63, "web", true, NULL);
	check_name("Service", "1-ns", "web", true, NULL);
	check_name("Service", l63, l63, true, NULL);
	check_name("Service", "a.b", "web", false, ns_msg);
	check_name("Service", l64, "web", false, "must be no more than 63 characters");
	check_name("Service", "Shop", "web", false, ns_msg);
	check_name("Service", "-shop", "web", false, ns_msg);
	check_name("EndpointSlice", "a.b", "web-abc12", false, ns_msg);

	/* EndpointSlice and Node names: DNS-1123 subdomains. */
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		const char *ns = i == 0 ? "default" : NULL;

		check_name(kinds[i], ns, sub253, true, NULL);
		check_name(kinds[i], ns, "ip-10-0-0-1.ec2.internal", true, NULL);
		check_name(kinds[i], ns, "1a", true, NULL);
		check_name(kinds[i], ns, l64, true, NULL);
		check_name(kinds[i], ns, sub254, false, "must be no more than 253 characters");
		check_name(kinds[i], ns, "a..b", false, sub_msg);
		check_name(kinds[i], ns, "a-.b", false, sub_msg);
		check_name(kinds[i], ns, "a.-b", false, sub_msg);
		check_name(kinds[i], ns, ".a", false, sub_msg);
		check_name(kinds[i], ns, "a.", false, sub_msg);
		check_name(kinds[i], ns, "Node-1", false, sub_msg);
		check_name(kinds[i], ns, "node_1", false, sub_msg);
	}
}

/* The two Services whose "ns.name" used to be the same: neither gets past the decoder. */
static void test_dotted_names_rejected(void **state)
{
	struct decoded d;

	decode_text("apiVersion: v1\nkind: Service\nmetadata: {name: c, namespace: a.b}\n"
		    "spec: {clusterIP: 10.0.0.1, ports: [{port: 80}]}\n"
		    "---\n"
		    "apiVersion: v1\nkind: Service\nmetadata: {name: b.c, namespace: a}\n"
		    "spec: {clusterIP: 10.0.0.2, ports: [{port: 80}]}\n"
		    "---\n"
		    "apiVersion: v1\nkind: Service\nmetadata: {name: b-c, namespace: a}\n"
		    "spec: {clusterIP: 10.0.0.3, ports: [{port: 80}]}\n",
		    "dots.yaml", &d);
	assert_int_equal(d.rc, 0);
	assert_int_equal(d.n_warnings, 2);
	assert_non_null(strstr(d.log, "dots.yaml: Service a.b/c: invalid metadata.namespace"));
	assert_non_null(strstr(d.log, "dots.yaml: Service a/b.c: invalid metadata.name"));
	assert_int_equal(d.objs.n_services, 1);
	assert_string_equal(d.objs.services[0]->name, "b-c");
	assert_int_equal(d.objs.n_rejected, 2);
	manifest_objects_clear(&d.objs);
}

static void test_unknown_kinds_skipped(void **state)
{
	struct decoded d;

	decode_ok("apiVersion: apps/v1\n"
		  "kind: Deployment\n"
		  "metadata: {name: web}\n"
		  "spec: {replicas: 3}\n"
		  "---\n"
		  "apiVersion: v1\n"
		  "kind: ConfigMap\n"
		  "metadata: {name: cfg}\n"
		  "data: {ports: '80'}\n"
		  "---\n"
		  "apiVersion: discovery.k8s.io/v1beta1\n"
		  "kind: EndpointSlice\n"
		  "metadata: {name: old}\n"
		  "addressType: IPv4\n"
		  "---\n"
		  "apiVersion: v1\n"
		  "metadata: {name: no-kind}\n"
		  "---\n"
		  "kind: 42\n"
		  "---\n"
		  "apiVersion: v1\n"
		  "kind: Service\n"
		  "metadata: {name: kept}\n",
		  &d);
	assert_int_equal(d.n_warnings, 0);
	assert_int_equal(d.objs.n_services, 1);
	assert_string_equal(d.objs.services[0]->name, "kept");
	assert_int_equal(d.objs.n_slices, 0);
	assert_int_equal(d.objs.n_rejected, 0);
	manifest_objects_clear(&d.objs);
}

static void test_wrong_types(void **state)
{
	static const char *const bad[] = {
		"{\"apiVersion\": \"v1\", \"kind\": \"Service\", \"metadata\": null}",
		"{\"apiVersion\": \"v1\", \"kind\": \"Service\", \"metadata\": []}",
		"{\"apiVersion\": \"v1\", \"kind\": \"Service\", \"metadata\": {\"name\": 7}}",
		"{\"apiVersion\": \"v1\", \"kind\": \"Service\", \"metadata\": {\"name\": \"\"}}",
		"{\"apiVersion\": \"v1\", \"kind\": \"Service\","
		" \"metadata\": {\"name\": \"Bad_Name\"}}",
		"{\"apiVersion\": \"v1\", \"kind\": \"Service\", \"metadata\": {\"name\": \"a\","
		" \"namespace\": {}}}",
		"{\"apiVersion\": \"v1\", \"kind\": \"Service\", \"metadata\": {\"name\": \"a\"},"
		" \"spec\": \"x\"}",
		"{\"apiVersion\": \"v1\", \"kind\": \"Service\", \"metadata\": {\"name\": \"a\"},"
		" \"spec\": {\"ports\": \"80\"}}",
		"{\"apiVersion\": \"v1\", \"kind\": \"Service\", \"metadata\": {\"name\": \"a\"},"
		" \"spec\": {\"ports\": [80]}}",
		"{\"apiVersion\": \"v1\", \"kind\": \"Service\", \"metadata\": {\"name\": \"a\"},"
		" \"spec\": {\"ports\": [{\"port\": 80.5}]}}",
		"{\"apiVersion\": \"v1\", \"kind\": \"Service\", \"metadata\": {\"name\": \"a\"},"
		" \"spec\": {\"ports\": [{\"port\": \"80\"}]}}",
		"{\"apiVersion\": \"v1\", \"kind\": \"Service\", \"metadata\": {\"name\": \"a\"},"
		" \"spec\": {\"ports\": [{\"port\": 99999999999999999999999}]}}",
		"{\"apiVersion\": \"v1\", \"kind\": \"Service\", \"metadata\": {\"name\": \"a\"},"
		" \"spec\": {\"ports\": [{\"port\": 1e999}]}}",
		"{\"apiVersion\": \"v1\", \"kind\": \"Service\", \"metadata\": {\"name\": \"a\"},"
		" \"spec\": {\"clusterIP\": 10}}",
		"{\"apiVersion\": \"v1\", \"kind\": \"Service\", \"metadata\": {\"name\": \"a\"},"
		" \"spec\": {\"clusterIPs\": [\"10.0.0.1\", \"10.0.0.2\"]}}",
		"{\"apiVersion\": \"v1\", \"kind\": \"Service\", \"metadata\": {\"name\": \"a\"},"
		" \"spec\": {\"externalIPs\": [null]}}",
		"{\"apiVersion\": \"v1\", \"kind\": \"Service\", \"metadata\": {\"name\": \"a\"},"
		" \"spec\": {\"type\": \"Weird\"}}",
		"{\"apiVersion\": \"v1\", \"kind\": \"Service\", \"metadata\": {\"name\": \"a\","
		" \"annotations\": {\"sluice.io/rate-limit\": 100}}}",
		"{\"apiVersion\": \"v1\", \"kind\": \"Service\", \"metadata\": {\"name\": \"a\"},"
		" \"status\": {\"loadBalancer\": {\"ingress\": [\"1.2.3.4\"]}}}",
		"{\"apiVersion\": \"v1\", \"kind\": \"Service\", \"metadata\": {\"name\": \"a\"},"
		" \"status\": {\"loadBalancer\": {\"ingress\": [{\"ip\": \"1.2.3\"}]}}}",
		"{\"apiVersion\": \"discovery.k8s.io/v1\", \"kind\": \"EndpointSlice\","
		" \"metadata\": {\"name\": \"a\"}}",
		"{\"apiVersion\": \"discovery.k8s.io/v1\", \"kind\": \"EndpointSlice\","
		" \"metadata\": {\"name\": \"a\"}, \"addressType\": \"IPv4\", \"endpoints\": {}}",
		"{\"apiVersion\": \"discovery.k8s.io/v1\", \"kind\": \"EndpointSlice\","
		" \"metadata\": {\"name\": \"a\"}, \"addressType\": \"IPv4\","
		" \"endpoints\": [{\"addresses\": [\"10.0.0.1\"],"
		" \"conditions\": {\"ready\": \"yes\"}}]}",
		"{\"apiVersion\": \"discovery.k8s.io/v1\", \"kind\": \"EndpointSlice\","
		" \"metadata\": {\"name\": \"a\"}, \"addressType\": \"IPv4\","
		" \"endpoints\": [{\"addresses\": [\"10.0.0.1\"],"
		" \"hints\": {\"forZones\": [\"z\"]}}]}",
		"{\"apiVersion\": \"discovery.k8s.io/v1\", \"kind\": \"EndpointSlice\","
		" \"metadata\": {\"name\": \"a\", \"labels\":"
		" {\"kubernetes.io/service-name\": true}},"
		" \"addressType\": \"IPv4\"}",
		"{\"apiVersion\": \"v1\", \"kind\": \"Node\", \"metadata\": {\"name\": \"n\"},"
		" \"status\": {\"addresses\": [{\"type\": \"InternalIP\", \"address\": [1]}]}}",
		"{\"apiVersion\": \"v1\", \"kind\": \"Node\", \"metadata\": {\"name\": \"n\","
		" \"labels\": {\"topology.kubernetes.io/zone\": 1}}}",
		"{\"apiVersion\": \"v1\", \"kind\": \"List\", \"items\": {\"a\": 1}}",
		"{\"apiVersion\": \"v1\", \"kind\": \"List\", \"items\": [null]}",
		"[1]",
	};
	struct decoded d;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		decode_text(bad[i], "types.json", &d);
		assert_int_equal(d.rc, 0);
		assert_int_equal(d.n_warnings, 1);
		assert_int_equal(d.objs.n_services + d.objs.n_slices + d.objs.n_nodes, 0);
		assert_int_equal(d.objs.n_rejected, 1);
		manifest_objects_clear(&d.objs);
	}
}

static void test_yaml_scalar_types(void **state)
{
	struct decoded d;

	/* Quoted numbers are strings, so a quoted port is the wrong type. */
	decode_text("apiVersion: v1\nkind: Service\nmetadata: {name: q}\n"
		    "spec: {ports: [{port: \"80\"}]}\n",
		    "q.yaml", &d);
	assert_int_equal(d.objs.n_services, 0);
	assert_int_equal(d.n_warnings, 1);
	assert_non_null(strstr(d.log, "ports[0].port: expected an integer, got a string"));
	manifest_objects_clear(&d.objs);

	/* ~ and an empty value are null (unset); 0x hex is an integer; true is a boolean. */
	decode_ok("apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: ~}\n"
		  "spec:\n  type:\n  ports: [{port: 0x50, name: !!str 42}]\n"
		  "---\n"
		  "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: e}\n"
		  "addressType: IPv4\nendpoints: [{addresses:"
		  " [1.2.3.4], conditions: {ready: False}}]\n",
		  &d);
	assert_int_equal(d.n_warnings, 0);
	assert_int_equal(d.objs.n_services, 1);
	assert_string_equal(d.objs.services[0]->ns, "default");
	assert_int_equal(d.objs.services[0]->ports[0].port, 80);
	assert_string_equal(d.objs.services[0]->ports[0].name, "42");
	assert_false(d.objs.slices[0]->endpoints[0].ready);
	manifest_objects_clear(&d.objs);
}

static void test_yaml_alias_rejected(void **state)
{
	struct decoded d;

	decode_text("apiVersion: v1\n"
		    "kind: Service\n"
		    "metadata: {name: a}\n"
		    "spec:\n"
		    "  ports: &p [{port: 80}]\n"
		    "  other: *p\n",
		    "alias.yaml", &d);
	assert_int_equal(d.rc, -EINVAL);
	assert_int_equal(d.n_warnings, 1);
	assert_non_null(strstr(d.log, "alias.yaml:6: invalid YAML: YAML aliases"));
	assert_int_equal(d.objs.n_services, 0);
	manifest_objects_clear(&d.objs);
}

static void test_empty_and_odd_texts(void **state)
{
	static const char *const texts[] = {
		"", "   \n", "# nothing\n", "---\n---\n", "[]", "{}", "null\n",
	};
	struct decoded d;

	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		decode_text(texts[i], "odd.yaml", &d);
		assert_int_equal(d.rc, 0);
		assert_int_equal(d.n_warnings, 0);
		assert_int_equal(d.objs.n_services + d.objs.n_slices + d.objs.n_nodes, 0);
		manifest_objects_clear(&d.objs);
	}
	/* A document that is not a mapping: one warning, not a parse failure. */
	decode_text("just a string\n", "odd.yaml", &d);
	assert_int_equal(d.rc, 0);
	assert_int_equal(d.n_warnings, 1);
	manifest_objects_clear(&d.objs);
	/* Deep nesting is refused, not recursed into. */
	{
		char deep[4096] = "x: ";
		size_t n = strlen(deep);

		memset(deep + n, '[', 600);
		memset(deep + n + 600, ']', 600);
		deep[n + 1200] = '\0';
		decode_text(deep, "deep.yaml", &d);
		assert_int_equal(d.rc, -EINVAL);
		assert_non_null(strstr(d.log, "nesting deeper"));
		manifest_objects_clear(&d.objs);
	}
	/* Text with a NUL byte inside a string (YAML escape) fails only its object. */
	decode_text("apiVersion: v1\nkind: Service\nmetadata: {name: \"a\\0b\"}\n", "nul.yaml", &d);
	assert_int_equal(d.rc, 0);
	assert_int_equal(d.objs.n_services, 0);
	assert_int_equal(d.n_warnings, 1);
	manifest_objects_clear(&d.objs);
}

static void test_decode_appends(void **state)
{
	struct manifest_objects objs = { 0 };
	const char *broken = "kind: [";

	assert_int_equal(manifest_decode(WEB_JSON, strlen(WEB_JSON), "a.json", &objs), 0);
	assert_int_equal(manifest_decode(WEB_JSON, strlen(WEB_JSON), "b.json", &objs), 0);
	assert_int_equal(objs.n_services, 2);
	assert_string_equal(objs.services[1]->source, "b.json");
	assert_int_equal(manifest_decode(broken, strlen(broken), "c.yaml", &objs), -EINVAL);
	assert_int_equal(objs.n_services, 2);
	manifest_objects_clear(&objs);
	assert_null(objs.services);
	assert_int_equal(objs.n_services, 0);
}

/*
 * A JSON List is decoded item by item from chunks (manifest_decode_fd);
 * at every chunk size it gives what parsing it whole gives.
 */
static const char STREAMED_LIST[] =
	"\xef\xbb\xbf {\"apiVersion\": \"v1\", \"items\": [\n"
	"{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"a\","
	"\"namespace\":\"x\",\"annotations\":{\"note\":\"a \\\"quoted\\\" ] } [ { \\\\\"}},"
	"\"spec\":{\"clusterIP\":\"10.96.0.1\",\"ports\":[{\"port\":80}]}},\n"
	"{\"apiVersion\":\"v1\",\"kind\":\"List\",\"items\":[{\"apiVersion\":\"v1\","
	"\"kind\":\"Service\",\"metadata\":{\"name\":\"b\"},\"spec\":{\"clusterIP\":"
	"\"10.96.0.2\",\"ports\":[{\"port\":80}]}}]} ,\n"
	" \"not an object\" , 42,\n"
	"{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"Bad_Name\"},"
	"\"spec\":{}},\n"
	"{\"apiVersion\":\"discovery.k8s.io/v1\",\"kind\":\"EndpointSlice\",\"metadata\":"
	"{\"name\":\"a-1\",\"namespace\":\"x\",\"labels\":{\"kubernetes.io/service-name\":"
	"\"a\"}},\"addressType\":\"IPv4\",\"endpoints\":[{\"addresses\":[\"10.244.0.1\"]}]},\n"
	"{\"kind\":\"ConfigMap\",\"apiVersion\":\"v1\",\"data\":{\"k\":\"}]\"}}\n"
	"], \"kind\": \"List\", \"metadata\": {\"resourceVersion\": \"\"}}\n";

/* manifest_decode_fd of text through a memfd, chunk bytes at a time. */
static int decode_chunked(const char *text, size_t len, size_t chunk, struct manifest_objects *out,
			  struct manifest_items *items)
{
	int fd = memfd_create("manifest", 0), err;
	size_t n_read;

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	log_set_level(LOG_QUIET);
	err = manifest_decode_fd(fd, 1 << 20, chunk, "chunked.json", items, out, &n_read);
	log_set_level(LOG_WARN);
	assert_int_equal(n_read, len);
	close(fd);
	return err;
}

static void test_streamed_list_reads_as_parsed_whole(void **state)
{
	static const size_t chunks[] = { 1, 2, 3, 5, 7, 64, 0 };
	struct manifest_items items = { 0 };
	struct decoded d;

	decode_text(STREAMED_LIST, "whole.json", &d);
	assert_int_equal(d.rc, 0);
	assert_int_equal(d.objs.n_services, 2);
	assert_int_equal(d.objs.n_slices, 1);
	/* Two non-objects and the bad name. */
	assert_int_equal(d.objs.n_rejected, 3);
	assert_non_null(strstr(d.log, "List item 2 is a string, not an object"));
	for (size_t i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
		struct manifest_objects objs = { 0 };

		items.n = 0;
		assert_int_equal(decode_chunked(STREAMED_LIST, sizeof(STREAMED_LIST) - 1, chunks[i],
						&objs, &items),
				 0);
		assert_int_equal(objs.n_services, 2);
		assert_string_equal(objs.services[0]->name, "a");
		assert_string_equal(objs.services[1]->name, "b");
		assert_int_equal(objs.services[1]->cluster_ips[0].bytes[3], 2);
		assert_int_equal(objs.n_slices, 1);
		assert_int_equal(objs.slices[0]->n_endpoints, 1);
		assert_int_equal(objs.n_rejected, 3);
		/* One record per item; those with a rejection are never remembered. */
		assert_int_equal(items.n, 7);
		assert_int_equal(items.items[0].n_services, 1);
		assert_true(items.items[0].fp != 0);
		assert_int_equal(items.items[1].n_services, 1);
		assert_int_equal(items.items[1].first_service, 1);
		assert_int_equal(items.items[2].fp, 0);
		manifest_objects_clear(&objs);
	}
	free(items.items);
	manifest_objects_clear(&d.objs);
}

/* Items without kind wait for the List's (after them, as kubectl writes); a bare array. */
static void test_streamed_typed_list_and_bare_array(void **state)
{
	static const char typed[] =
		"{\"items\": [{\"metadata\": {\"name\": \"c\"}, \"spec\": {\"clusterIP\": "
		"\"10.96.0.3\", \"ports\": [{\"port\": 80}]}}], \"kind\": \"ServiceList\", "
		"\"apiVersion\": \"v1\"}";
	static const char bare[] =
		"[{\"apiVersion\": \"v1\", \"kind\": \"Node\", \"metadata\": {\"name\": \"n1\"}},"
		" {\"metadata\": {\"name\": \"no-kind\"}}]";
	/* Not a List at all: an object with an items member is decoded as itself. */
	static const char not_list[] =
		"{\"apiVersion\": \"v1\", \"kind\": \"Node\", \"metadata\": {\"name\": \"n2\"},"
		" \"items\": [1, 2]}";
	struct manifest_objects objs = { 0 };

	assert_int_equal(decode_chunked(typed, sizeof(typed) - 1, 4, &objs, NULL), 0);
	assert_int_equal(objs.n_services, 1);
	assert_string_equal(objs.services[0]->name, "c");
	assert_int_equal(decode_chunked(bare, sizeof(bare) - 1, 4, &objs, NULL), 0);
	assert_int_equal(objs.n_nodes, 1);
	assert_int_equal(decode_chunked(not_list, sizeof(not_list) - 1, 4, &objs, NULL), 0);
	assert_int_equal(objs.n_nodes, 2);
	assert_string_equal(objs.nodes[1]->name, "n2");
	assert_int_equal(objs.n_rejected, 0);
	manifest_objects_clear(&objs);
}

/* YAML from a file: one document at a time, one item record each. */
static void test_streamed_yaml_documents(void **state)
{
	static const char docs[] = "apiVersion: v1\nkind: Node\nmetadata: {name: y1}\n---\n"
				   "---\napiVersion: v1\nkind: Node\nmetadata: {name: y2}\n";
	static const char broken[] = "apiVersion: v1\nkind: Node\nmetadata: {name: y3}\n---\n"
				     "kind: [\n";
	struct manifest_items items = { 0 };
	struct manifest_objects objs = { 0 };

	assert_int_equal(decode_chunked(docs, sizeof(docs) - 1, 0, &objs, &items), 0);
	assert_int_equal(objs.n_nodes, 2);
	assert_string_equal(objs.nodes[1]->name, "y2");
	assert_int_equal(items.n, 3);
	assert_int_equal(items.items[2].first_node, 1);
	assert_int_equal(decode_chunked(broken, sizeof(broken) - 1, 0, &objs, NULL), -EINVAL);
	assert_int_equal(objs.n_nodes, 2);
	free(items.items);
	manifest_objects_clear(&objs);
}

/* A syntax error in an item: one line with the file's line number, and nothing decoded. */
static void test_streamed_error_names_its_line_only(void **state)
{
	static const char text[] =
		"{\"kind\": \"List\", \"items\": [\n"
		"{\"apiVersion\": \"v1\", \"kind\": \"Service\", \"metadata\": {}},\n"
		"{\"kind\": tru}\n"
		"]}\n";
	struct decoded d;

	decode_text(text, "bad.json", &d);
	assert_int_equal(d.rc, -EINVAL);
	assert_int_equal(d.n_warnings, 1);
	assert_non_null(strstr(d.log, "bad.json:3: invalid JSON"));
	assert_int_equal(d.objs.n_rejected, 0);
	decode_text("{\"kind\": \"List\", \"items\": [{}]}\n{}", "tail.json", &d);
	assert_int_equal(d.rc, -EINVAL);
	assert_non_null(strstr(d.log, "tail.json:2: invalid JSON"));
}

static void test_decode_object_api(void **state)
{
	struct manifest_objects objs = { 0 };
	json_error_t err;
	json_t *list = json_loads("{\"kind\": \"NodeList\", \"apiVersion\": \"v1\", \"items\": ["
				  " {\"metadata\": {\"name\": \"n1\","
				  "  \"labels\": {\"topology.kubernetes.io/zone\": \"z1\"}}},"
				  " {\"metadata\": {\"name\": \"n2\"}}]}",
				  0, &err);
	json_t *svc = json_loads("{\"kind\": \"Service\", \"apiVersion\": \"v1\","
				 " \"metadata\": {\"name\": \"s\", \"namespace\": \"ns\"},"
				 " \"spec\": {\"clusterIP\": \"10.0.0.3\","
				 " \"ports\": [{\"port\": 80}]}}",
				 0, &err);

	assert_non_null(list);
	assert_non_null(svc);
	assert_int_equal(manifest_decode_object(list, "api", &objs), 0);
	assert_int_equal(manifest_decode_object(svc, "api", &objs), 0);
	assert_int_equal(objs.n_nodes, 2);
	assert_string_equal(objs.nodes[0]->zone, "z1");
	assert_string_equal(objs.nodes[1]->source, "api");
	assert_int_equal(objs.n_services, 1);
	assert_string_equal(objs.services[0]->ns, "ns");
	manifest_objects_clear(&objs);
	json_decref(list);
	json_decref(svc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json_single_service),
		cmocka_unit_test(test_json_list),
		cmocka_unit_test(test_yaml_single_service),
		cmocka_unit_test(test_yaml_multi_document),
		cmocka_unit_test(test_yaml_list_and_typed_list),
		cmocka_unit_test(test_kubectl_yaml_output),
		cmocka_unit_test(test_service_all_fields),
		cmocka_unit_test(test_forwarding_mode_annotation),
		cmocka_unit_test(test_service_defaults),
		cmocka_unit_test(test_named_ports),
		cmocka_unit_test(test_dual_stack_cluster_ips),
		cmocka_unit_test(test_headless_service),
		cmocka_unit_test(test_external_name_service),
		cmocka_unit_test(test_kube_proxy_labels_ignored),
		cmocka_unit_test(test_lb_ingress_ip_mode),
		cmocka_unit_test(test_slice_condition_defaults),
		cmocka_unit_test(test_slice_condition_explicit),
		cmocka_unit_test(test_slice_hints),
		cmocka_unit_test(test_slice_fqdn_and_family_mismatch),
		cmocka_unit_test(test_node_zone_and_addresses),
		cmocka_unit_test(test_broken_yaml),
		cmocka_unit_test(test_broken_json),
		cmocka_unit_test(test_invalid_address_among_valid),
		cmocka_unit_test(test_ports_out_of_range),
		cmocka_unit_test(test_name_rules),
		cmocka_unit_test(test_dotted_names_rejected),
		cmocka_unit_test(test_unknown_kinds_skipped),
		cmocka_unit_test(test_wrong_types),
		cmocka_unit_test(test_yaml_scalar_types),
		cmocka_unit_test(test_yaml_alias_rejected),
		cmocka_unit_test(test_empty_and_odd_texts),
		cmocka_unit_test(test_decode_appends),
		cmocka_unit_test(test_decode_object_api),
		cmocka_unit_test(test_streamed_list_reads_as_parsed_whole),
		cmocka_unit_test(test_streamed_typed_list_and_bare_array),
		cmocka_unit_test(test_streamed_yaml_documents),
		cmocka_unit_test(test_streamed_error_names_its_line_only),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
