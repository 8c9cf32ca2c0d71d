/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One Service's status document, as the agent publishes it for sluicectl
 * (explain, services -o json): its frontends as applied and, per frontend,
 * why these endpoints (the resolver's explain_endpoints). Pure: no I/O.
 */
#ifndef SLUICE_STATUS_JSON_H
#define SLUICE_STATUS_JSON_H

#include <jansson.h>

#include "core/resolver.h"
#include "core/store.h"

/* Bumped when a field changes meaning; sluicectl refuses documents it does not know. */
#define STATUS_SCHEMA 1

struct status_service_input {
	const char *key; /* "ns/name" */
	const struct service *svc; /* NULL: gone */
	const struct slice_group *slices; /* NULL: none */
	const struct frontend_list *applied; /* NULL: none applied */
	const char *node_name, *node_zone;
	double published; /* seconds since the epoch */
};

/* The document; the caller json_decref()s it. */
json_t *status_service_json(const struct status_service_input *in);
/* "ClusterIP", "NodePort", "ExternalIP", "LoadBalancer". */
const char *frontend_kind_name(enum frontend_kind kind);
const char *topology_why_name(enum topology_why why);
const char *endpoint_why_name(enum endpoint_why why);
/* ADDR:PORT, with brackets around IPv6 addresses, into buf (64 bytes). */
const char *backend_format(const struct backend *be, char *buf, size_t len);

#endif
