// SPDX-License-Identifier: Apache-2.0
/* Freeing of the model's objects: each one owns every string and array it points to. */
#include <stdlib.h>

#include "core/model.h"

const char *l4_proto_name(uint8_t proto)
{
	switch (proto) {
	case PROTO_TCP:
		return "tcp";
	case PROTO_UDP:
		return "udp";
	case PROTO_SCTP:
		return "sctp";
	}
	return NULL;
}

static void free_strings(char **strings, int n)
{
	for (int i = 0; i < n; i++)
		free(strings[i]);
	free(strings);
}

void service_free(struct service *svc)
{
	if (!svc)
		return;
	free(svc->ns);
	free(svc->name);
	free(svc->source);
	free(svc->cluster_ips);
	for (int i = 0; i < svc->n_ports; i++) {
		free(svc->ports[i].name);
		free(svc->ports[i].target_port_name);
	}
	free(svc->ports);
	free(svc->external_ips);
	free(svc->lb_ingress_ips);
	free(svc->traffic_distribution);
	free(svc->rate_limit);
	free(svc->rate_limit_burst);
	free(svc->lb_algorithm_rejected);
	free_strings(svc->lb_source_ranges, svc->n_lb_source_ranges);
	free(svc->lb_source_cidrs);
	free(svc);
}

static void endpoint_clear(struct endpoint *ep)
{
	free(ep->addresses);
	free(ep->node_name);
	free(ep->zone);
	free_strings(ep->hint_zones, ep->n_hint_zones);
	free_strings(ep->hint_nodes, ep->n_hint_nodes);
}

void endpoint_slice_free(struct endpoint_slice *slice)
{
	if (!slice)
		return;
	free(slice->ns);
	free(slice->name);
	free(slice->source);
	free(slice->service_name);
	for (int i = 0; i < slice->n_ports; i++)
		free(slice->ports[i].name);
	free(slice->ports);
	for (int i = 0; i < slice->n_endpoints; i++)
		endpoint_clear(&slice->endpoints[i]);
	free(slice->endpoints);
	free(slice);
}

void node_free(struct node *node)
{
	if (!node)
		return;
	free(node->name);
	free(node->source);
	free(node->zone);
	free(node->addresses);
	free(node);
}
