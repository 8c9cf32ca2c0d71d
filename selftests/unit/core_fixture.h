/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Test fixture for the store and the engine: model objects built from short
 * YAML texts by the real decoder, put straight into a store.
 */
#ifndef SLUICE_CORE_FIXTURE_H
#define SLUICE_CORE_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/store.h"
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
	for (i = 0; i < objs.n_nodes; i++, n++)
		store_put_node(st, objs.nodes[i]);
	objs.n_services = objs.n_slices = objs.n_nodes = 0;
	manifest_objects_clear(&objs);
	return n;
}

/* A ClusterIP Service "ns/name" with one TCP port 80. */
static size_t put_service(struct store *st, const char *ns, const char *name, const char *ip)
{
	char text[512];

	snprintf(text, sizeof(text),
		 "apiVersion: v1\nkind: Service\nmetadata: {name: %s, namespace: %s}\n"
		 "spec:\n  clusterIP: %s\n  ports: [{port: 80, protocol: TCP, targetPort: 8080}]\n",
		 name, ns, ip);
	return put_yaml(st, text);
}

/* An IPv4 slice of Service ns/svc with one ready endpoint per address (NULL-ended). */
static inline size_t put_slice(struct store *st, const char *ns, const char *name, const char *svc,
			       const char *const *addrs, const char *zone_hint)
{
	char text[4096];
	size_t len;

	len = snprintf(text, sizeof(text),
		       "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
		       "metadata:\n  name: %s\n  namespace: %s\n"
		       "  labels: {kubernetes.io/service-name: %s}\n"
		       "addressType: IPv4\nports: [{port: 8080, protocol: TCP}]\nendpoints:\n",
		       name, ns, svc);
	for (; *addrs && len < sizeof(text); addrs++)
		len += snprintf(text + len, sizeof(text) - len,
				"- addresses: [\"%s\"]\n  conditions: {ready: true}\n"
				"  nodeName: node-b\n%s%s%s",
				*addrs, zone_hint ? "  hints: {forZones: [{name: " : "",
				zone_hint ? zone_hint : "", zone_hint ? "}]}\n" : "");
	return put_yaml(st, text);
}

static inline size_t put_node(struct store *st, const char *name, const char *zone)
{
	char text[512];

	snprintf(text, sizeof(text), "apiVersion: v1\nkind: Node\nmetadata:\n  name: %s\n%s%s%s",
		 name, zone ? "  labels: {topology.kubernetes.io/zone: " : "", zone ? zone : "",
		 zone ? "}\n" : "");
	return put_yaml(st, text);
}

#endif
