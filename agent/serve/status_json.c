// SPDX-License-Identifier: Apache-2.0
/*
 * One Service's status document: what the engine applied for it and why,
 * per frontend, from the resolver's explain_endpoints. Field names are
 * camelCase as in the Kubernetes API; Documentation/operations.md lists them.
 */
#include <stdio.h>
#include <string.h>

#include "serve/status_json.h"

const char *frontend_kind_name(enum frontend_kind kind)
{
	switch (kind) {
	case FE_CLUSTER_IP:
		return "ClusterIP";
	case FE_EXTERNAL_IP:
		return "ExternalIP";
	case FE_LB_INGRESS:
		return "LoadBalancer";
	case FE_NODE_PORT:
		return "NodePort";
	}
	return "unknown";
}

const char *topology_why_name(enum topology_why why)
{
	switch (why) {
	case TOPO_WHY_NODE_HINTS:
		return "node-hints";
	case TOPO_WHY_ZONE_HINTS:
		return "zone-hints";
	case TOPO_WHY_NO_READY:
		return "no-ready-endpoint";
	case TOPO_WHY_NO_HINTS:
		return "no-hints";
	case TOPO_WHY_HINT_MISSING:
		return "hint-missing";
	case TOPO_WHY_NOT_FOR_US:
		return "not-hinted-here";
	case TOPO_WHY_NO_ZONE:
		return "node-has-no-zone";
	}
	return "unknown";
}

const char *endpoint_why_name(enum endpoint_why why)
{
	switch (why) {
	case EP_WHY_USED:
		return "used";
	case EP_WHY_NOT_SERVING:
		return "not-serving";
	case EP_WHY_DUPLICATE:
		return "duplicate";
	case EP_WHY_TERMINATING:
		return "terminating";
	case EP_WHY_OTHER_ZONE:
		return "other-zone";
	case EP_WHY_OTHER_NODE:
		return "other-node";
	case EP_WHY_NOT_LOCAL:
		return "not-local";
	}
	return "unknown";
}

const char *backend_format(const struct backend *be, char *buf, size_t len)
{
	char addr[IP_ADDR_STRLEN];

	ip_addr_format(&be->addr, addr);
	snprintf(buf, len, be->addr.family == AF_INET6 ? "[%s]:%u" : "%s:%u", addr, be->port);
	return buf;
}

static const char *mode_name(enum backend_choice mode)
{
	return mode == CHOICE_NODE ? "PreferSameNode" :
	       mode == CHOICE_ZONE ? "PreferSameZone" :
				     "none";
}

static const char *type_name(enum service_type type)
{
	switch (type) {
	case SVC_CLUSTER_IP:
		return "ClusterIP";
	case SVC_NODE_PORT:
		return "NodePort";
	case SVC_LOAD_BALANCER:
		return "LoadBalancer";
	case SVC_EXTERNAL_NAME:
		return "ExternalName";
	}
	return "unknown";
}

static json_t *names_json(char *const *names, int n)
{
	json_t *arr = json_array();

	for (int i = 0; i < n; i++)
		json_array_append_new(arr, json_string(names[i] ? names[i] : ""));
	return arr;
}

/* Only what explains: empty and default fields are left out to keep 100k files small. */
static json_t *endpoint_json(const struct endpoint_explain *ee)
{
	char addr[IP_ADDR_STRLEN];
	json_t *o = json_object();

	json_object_set_new(o, "address", json_string(ip_addr_format(&ee->be.addr, addr)));
	json_object_set_new(o, "port", json_integer(ee->be.port));
	if (ee->slice)
		json_object_set_new(o, "slice", json_string(ee->slice));
	if (ee->ep->node_name)
		json_object_set_new(o, "node", json_string(ee->ep->node_name));
	if (ee->ep->zone)
		json_object_set_new(o, "zone", json_string(ee->ep->zone));
	json_object_set_new(o, "ready", json_boolean(ee->ep->ready));
	json_object_set_new(o, "serving", json_boolean(ee->ep->serving));
	json_object_set_new(o, "terminating", json_boolean(ee->ep->terminating));
	if (ee->ep->n_hint_zones)
		json_object_set_new(o, "forZones",
				    names_json(ee->ep->hint_zones, ee->ep->n_hint_zones));
	if (ee->ep->n_hint_nodes)
		json_object_set_new(o, "forNodes",
				    names_json(ee->ep->hint_nodes, ee->ep->n_hint_nodes));
	json_object_set_new(o, "why", json_string(endpoint_why_name(ee->why)));
	return o;
}

static const struct service_port *port_of(const struct service *svc, const struct frontend *fe)
{
	for (int i = 0; i < svc->n_ports; i++) {
		const struct service_port *p = &svc->ports[i];

		if (p->proto == fe->key.proto && !strcmp(p->name ? p->name : "", fe->port_name))
			return p;
	}
	return NULL;
}

static json_t *frontend_json(const struct status_service_input *in, const struct frontend *fe)
{
	const struct service *svc = in->svc;
	const struct slice_group *g = in->slices;
	struct resolve_input rin = {
		.svc = svc,
		.slices = g ? (const struct endpoint_slice *const *)g->slices : NULL,
		.n_slices = g ? g->n : 0,
		.node_name = in->node_name,
		.node_zone = in->node_zone,
	};
	const struct service_port *port = svc ? port_of(svc, fe) : NULL;
	char addr[IP_ADDR_STRLEN], text[64];
	json_t *o = json_object(), *arr;
	bool local;

	json_object_set_new(o, "kind", json_string(frontend_kind_name(fe->kind)));
	json_object_set_new(o, "address", json_string(ip_addr_format(&fe->key.addr, addr)));
	json_object_set_new(o, "port", json_integer(fe->key.port));
	json_object_set_new(o, "protocol", json_string(l4_proto_name(fe->key.proto) ?: "?"));
	json_object_set_new(o, "portName", json_string(fe->port_name));
	json_object_set_new(o, "action", json_string(frontend_action_name(fe->action)));
	json_object_set_new(o, "choice", json_string(backend_choice_name(fe->choice)));
	local = svc && frontend_uses_local(svc, fe->kind);
	json_object_set_new(o, "policy", json_string(local ? "Local" : "Cluster"));
	json_object_set_new(o, "policyField",
			    json_string(fe->kind == FE_CLUSTER_IP ? "internalTrafficPolicy" :
								    "externalTrafficPolicy"));
	if (fe->preserve_source)
		json_object_set_new(o, "preserveSource", json_true());
	if (fe->kind != FE_CLUSTER_IP)
		json_object_set_new(o, "forwardingMode", json_string(fe->dsr ? "dsr" : "snat"));
	if (fe->dsr) {
		/* Per backend: its node's address (DSR), or null (this node, unknown: SNAT). */
		json_t *nodes = json_object();

		for (size_t i = 0; i < fe->n_backends; i++)
			json_object_set_new(
				nodes, backend_format(&fe->backends[i], text, sizeof(text)),
				fe->backend_nodes && fe->backend_nodes[i].family ?
					json_string(ip_addr_format(&fe->backend_nodes[i], addr)) :
					json_null());
		json_object_set_new(o, "dsrNodes", nodes);
	}
	if (fe->n_source_ranges) {
		arr = json_array();
		for (size_t i = 0; i < fe->n_source_ranges; i++) {
			snprintf(text, sizeof(text), "%s/%u",
				 ip_addr_format(&fe->source_ranges[i].addr, addr),
				 fe->source_ranges[i].prefix_len);
			json_array_append_new(arr, json_string(text));
		}
		json_object_set_new(o, "sourceRanges", arr);
	}
	arr = json_array();
	for (size_t i = 0; i < fe->n_backends; i++)
		json_array_append_new(
			arr, json_string(backend_format(&fe->backends[i], text, sizeof(text))));
	json_object_set_new(o, "backends", arr);
	if (port) {
		struct port_explain pe;
		json_t *topo = json_object();

		explain_endpoints(&rin, port, fe->key.addr.family, local, &pe);
		json_object_set_new(topo, "mode", json_string(mode_name(pe.mode)));
		json_object_set_new(topo, "why", json_string(topology_why_name(pe.mode_why)));
		if (pe.mode_why == TOPO_WHY_HINT_MISSING || pe.mode_why == TOPO_WHY_NOT_FOR_US ||
		    pe.mode_why == TOPO_WHY_ZONE_HINTS || pe.mode_why == TOPO_WHY_NO_ZONE)
			json_object_set_new(topo, "hint",
					    json_string(pe.zone_hints ? "forZones" : "forNodes"));
		else if (pe.mode_why == TOPO_WHY_NODE_HINTS)
			json_object_set_new(topo, "hint", json_string("forNodes"));
		if (pe.mode_why == TOPO_WHY_HINT_MISSING)
			json_object_set_new(
				topo, "endpoint",
				json_string(backend_format(&pe.culprit, text, sizeof(text))));
		if (local)
			json_object_set_new(topo, "ignored", json_string("Local policy"));
		json_object_set_new(o, "topology", topo);
		json_object_set_new(o, "fallback",
				    json_boolean(pe.choice == CHOICE_TERMINATING ||
						 pe.choice == CHOICE_LOCAL_TERMINATING));
		/* The applied set and the explanation come from one store: say if they differ. */
		if (pe.n_used != fe->n_backends)
			json_object_set_new(o, "stale", json_true());
		arr = json_array();
		for (size_t i = 0; i < pe.n_eps; i++)
			json_array_append_new(arr, endpoint_json(&pe.eps[i]));
		json_object_set_new(o, "endpoints", arr);
		port_explain_clear(&pe);
	}
	return o;
}

/* Why a known Service has no frontend at all. */
static const char *no_frontend_why(const struct service *svc)
{
	if (svc->ignored)
		return "labelled service.kubernetes.io/service-proxy-name: another proxy serves it";
	if (svc->headless)
		return "headless (clusterIP: None): DNS names the endpoints, no proxy is involved";
	if (svc->type == SVC_EXTERNAL_NAME)
		return "ExternalName: a DNS alias, no proxy is involved";
	if (svc->n_cluster_ips < 1)
		return "no ClusterIP yet";
	return "its frontends are served by another Service that claimed them first";
}

json_t *status_service_json(const struct status_service_input *in)
{
	const struct service *svc = in->svc;
	json_t *o = json_object(), *arr;
	char addr[IP_ADDR_STRLEN], rate[32];

	json_object_set_new(o, "schema", json_integer(STATUS_SCHEMA));
	json_object_set_new(o, "service", json_string(in->key));
	json_object_set_new(o, "published", json_real(in->published));
	json_object_set_new(o, "node", json_string(in->node_name ? in->node_name : ""));
	json_object_set_new(o, "zone", in->node_zone ? json_string(in->node_zone) : json_null());
	if (!svc)
		return o;
	json_object_set_new(o, "type", json_string(type_name(svc->type)));
	arr = json_array();
	for (int i = 0; i < svc->n_cluster_ips; i++)
		json_array_append_new(arr, json_string(ip_addr_format(&svc->cluster_ips[i], addr)));
	json_object_set_new(o, "clusterIPs", arr);
	json_object_set_new(o, "internalTrafficPolicy",
			    json_string(svc->internal_local ? "Local" : "Cluster"));
	json_object_set_new(o, "externalTrafficPolicy",
			    json_string(svc->external_local ? "Local" : "Cluster"));
	json_object_set_new(o, "externallyReachable",
			    json_boolean(service_externally_reachable(svc)));
	if (svc->traffic_distribution)
		json_object_set_new(o, "trafficDistribution",
				    json_string(svc->traffic_distribution));
	json_object_set_new(o, "sessionAffinity",
			    json_string(svc->affinity_client_ip ? "ClientIP" : "None"));
	if (svc->affinity_client_ip)
		json_object_set_new(o, "affinityTimeoutSeconds",
				    json_integer(svc->affinity_timeout ? svc->affinity_timeout :
									 10800));
	if (svc->forwarding != FORWARDING_DEFAULT)
		json_object_set_new(o, "forwardingModeAnnotation",
				    json_string(svc->forwarding == FORWARDING_DSR ? "dsr" :
										    "snat"));
	if (svc->rate.count) {
		json_t *r = json_object();

		json_object_set_new(r, "limit",
				    json_string(rate_limit_format(&svc->rate, rate, sizeof(rate))));
		json_object_set_new(r, "burst", json_integer(svc->rate.burst));
		json_object_set_new(o, "rateLimit", r);
	} else if (svc->rate_limit) {
		/* The annotation was refused (logged): say so beside the Service. */
		json_object_set_new(o, "rateLimitRejected", json_string(svc->rate_limit));
	}
	/* How new flows pick a backend, and whether the annotation or --lb-algorithm said so. */
	json_object_set_new(o, "lbAlgorithm",
			    json_string(lb_algorithm_is_maglev(svc->lb_algorithm) ? "maglev" :
										    "random"));
	json_object_set_new(o, "lbAlgorithmFrom",
			    json_string(svc->lb_algorithm ? "sluice.io/lb-algorithm" :
							    "--lb-algorithm"));
	if (svc->lb_algorithm_rejected)
		json_object_set_new(o, "lbAlgorithmRejected",
				    json_string(svc->lb_algorithm_rejected));
	arr = json_array();
	for (size_t i = 0; in->applied && i < in->applied->n; i++) {
		const struct frontend *fe = &in->applied->items[i];

		if (!json_object_get(o, "serviceId"))
			json_object_set_new(o, "serviceId", json_integer(fe->service_id));
		if (fe->key.proto)
			json_array_append_new(arr, frontend_json(in, fe));
	}
	json_object_set_new(o, "frontends", arr);
	if (!json_array_size(arr))
		json_object_set_new(o, "noFrontends", json_string(no_frontend_why(svc)));
	return o;
}
