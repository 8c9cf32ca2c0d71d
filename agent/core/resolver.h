/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The resolver: pure, no kernel, no I/O besides log lines. One Service, its
 * EndpointSlices and the node's name and zone in; the frontends the datapath
 * must program for that Service out (design.md section 4).
 */
#ifndef SLUICE_RESOLVER_H
#define SLUICE_RESOLVER_H

#include <stddef.h>

#include "core/model.h"
#include "core/state.h"

struct resolve_input {
	const struct service *svc;
	const struct endpoint_slice *const *slices; /* the Service's slices, any family */
	size_t n_slices;
	const char *node_name; /* this node */
	const char *node_zone; /* this node's zone label, NULL if none */
	uint32_t service_id; /* copied into every frontend */
};

struct frontend_list {
	struct frontend *items; /* sorted by key */
	size_t n;
};

/*
 * Computes the frontends of one Service: for every ClusterIP and every
 * port, a frontend with its action and backends, plus one marker frontend
 * (proto 0, port 0) per ClusterIP. Headless and ExternalName services
 * yield nothing. Cannot fail (allocation aborts, lib/xalloc.h): returns 0;
 * it stays int for the callers that check it.
 */
int resolve_service(const struct resolve_input *in, struct frontend_list *out);
void frontend_list_clear(struct frontend_list *list);

/* One backend set and what a frontend that uses it must do. */
struct backend_selection {
	enum frontend_action action; /* FE_SERVE iff n_backends > 0 */
	enum backend_choice choice;
	struct backend *backends; /* sorted by address then port, no duplicates */
	size_t n_backends;
};

/*
 * The endpoints of one service port in one address family, split as
 * kube-proxy splits them. A frontend under a Cluster traffic policy uses
 * `cluster` (topology applied); one under a Local policy uses `local`
 * (empty with endpoints elsewhere: FE_DROP). Both are always computed.
 */
struct port_endpoints {
	struct backend_selection cluster;
	struct backend_selection local;
};

/* Computes both sets for `port` of in->svc from in->slices of `family`. */
void resolve_endpoints(const struct resolve_input *in, const struct service_port *port,
		       uint8_t family, struct port_endpoints *out);
void port_endpoints_clear(struct port_endpoints *pe);
/* A nodePort on some port, an externalIP or an LB ingress IP (design.md section 4). */
bool service_externally_reachable(const struct service *svc);

#endif
