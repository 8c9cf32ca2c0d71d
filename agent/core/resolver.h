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
	bool dsr_default; /* --forwarding-mode=dsr: Services without the annotation use DSR */
	/*
	 * The address (in family) of the node named name, for DSR frontends'
	 * backend_nodes; NULL if unknown. NULL function: every node unknown.
	 */
	const struct ip_addr *(*node_addr)(void *ctx, const char *name, uint8_t family);
	void *node_addr_ctx;
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
/*
 * Why the resolver chose as it did, as data (sluicectl explain reads it from
 * the agent's status files): recomputed on demand with the same predicates
 * as resolve_endpoints, never kept beside the desired state.
 */

/* Why the topology mode is what it is (design.md section 4). */
enum topology_why {
	TOPO_WHY_NODE_HINTS, /* every ready endpoint has forNodes; one names this node */
	TOPO_WHY_ZONE_HINTS, /* every ready endpoint has forZones; one names this zone */
	TOPO_WHY_NO_READY, /* no ready endpoint: nothing is hinted */
	TOPO_WHY_NO_HINTS, /* no ready endpoint has a hint */
	TOPO_WHY_HINT_MISSING, /* `culprit`, ready, has no hint of kind `zone_hints` */
	TOPO_WHY_NOT_FOR_US, /* every ready endpoint hinted, none for this node or zone */
	TOPO_WHY_NO_ZONE, /* zone hints, but this node has no zone label */
};

/* What became of one endpoint in the set a frontend uses. */
enum endpoint_why {
	EP_WHY_USED,
	EP_WHY_NOT_SERVING, /* neither ready nor serving-and-terminating */
	EP_WHY_DUPLICATE, /* the same address and port elsewhere counts instead */
	EP_WHY_TERMINATING, /* serving while terminating, but ready endpoints exist */
	EP_WHY_OTHER_ZONE, /* ready, not hinted for this node's zone (PreferSameZone) */
	EP_WHY_OTHER_NODE, /* ready, not hinted for this node (PreferSameNode) */
	EP_WHY_NOT_LOCAL, /* traffic policy Local: on another node */
};

struct endpoint_explain {
	struct backend be;
	const struct endpoint *ep; /* in the input slices: conditions, node, zone, hints */
	const char *slice; /* its EndpointSlice's name */
	enum endpoint_why why;
};

struct port_explain {
	bool local; /* the frontend takes the Local set */
	enum backend_choice mode; /* topology: CHOICE_CLUSTER (none), CHOICE_ZONE, CHOICE_NODE */
	enum topology_why mode_why;
	bool zone_hints; /* TOPO_WHY_HINT_MISSING / NOT_FOR_US: about forZones, else forNodes */
	struct backend culprit; /* TOPO_WHY_HINT_MISSING */
	enum frontend_action action; /* as resolve_service decides for the frontend */
	enum backend_choice choice;
	size_t n_used;
	struct endpoint_explain *eps; /* every endpoint of the port in the family, input order */
	size_t n_eps;
};

/*
 * Explains the set that a frontend of `port` in `family` uses, under the
 * Local policy if `local`: the same decision as resolve_endpoints, with a
 * reason for every endpoint. Pointers in *out point into in->slices.
 */
void explain_endpoints(const struct resolve_input *in, const struct service_port *port,
		       uint8_t family, bool local, struct port_explain *out);
void port_explain_clear(struct port_explain *pe);
/* Whether a frontend of this kind takes the Local set (the policy of its kind). */
bool frontend_uses_local(const struct service *svc, enum frontend_kind kind);

/* A nodePort on some port, an externalIP or an LB ingress IP (design.md section 4). */
bool service_externally_reachable(const struct service *svc);

#endif
