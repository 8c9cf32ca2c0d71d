// SPDX-License-Identifier: Apache-2.0
/*
 * Comparing and freeing the model's objects: each one owns every string and
 * array it points to.
 */
#include <stdlib.h>
#include <string.h>

#include "lib/intern.h"

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

static bool str_eq(const char *a, const char *b)
{
	return a == b || (a && b && !strcmp(a, b));
}

static bool strings_eq(char *const *a, int n_a, char *const *b, int n_b)
{
	if (n_a != n_b)
		return false;
	for (int i = 0; i < n_a; i++)
		if (!str_eq(a[i], b[i]))
			return false;
	return true;
}

static bool addrs_eq(const struct ip_addr *a, int n_a, const struct ip_addr *b, int n_b)
{
	if (n_a != n_b)
		return false;
	for (int i = 0; i < n_a; i++)
		if (!ip_addr_equal(&a[i], &b[i]))
			return false;
	return true;
}

static bool service_port_eq(const struct service_port *a, const struct service_port *b)
{
	return str_eq(a->name, b->name) && a->proto == b->proto && a->port == b->port &&
	       a->node_port == b->node_port && a->target_port == b->target_port &&
	       str_eq(a->target_port_name, b->target_port_name);
}

bool service_equal(const struct service *a, const struct service *b)
{
	if (!str_eq(a->ns, b->ns) || !str_eq(a->name, b->name) || a->ignored != b->ignored ||
	    a->type != b->type || a->headless != b->headless ||
	    !addrs_eq(a->cluster_ips, a->n_cluster_ips, b->cluster_ips, b->n_cluster_ips) ||
	    a->n_ports != b->n_ports ||
	    !addrs_eq(a->external_ips, a->n_external_ips, b->external_ips, b->n_external_ips) ||
	    !addrs_eq(a->lb_ingress_ips, a->n_lb_ingress_ips, b->lb_ingress_ips,
		      b->n_lb_ingress_ips) ||
	    a->internal_local != b->internal_local || a->external_local != b->external_local ||
	    a->affinity_client_ip != b->affinity_client_ip ||
	    a->affinity_timeout != b->affinity_timeout ||
	    a->health_check_node_port != b->health_check_node_port ||
	    !str_eq(a->traffic_distribution, b->traffic_distribution) ||
	    !str_eq(a->rate_limit, b->rate_limit) ||
	    !str_eq(a->rate_limit_burst, b->rate_limit_burst) || a->rate.count != b->rate.count ||
	    a->rate.period != b->rate.period || a->rate.burst != b->rate.burst ||
	    !strings_eq(a->lb_source_ranges, a->n_lb_source_ranges, b->lb_source_ranges,
			b->n_lb_source_ranges) ||
	    a->n_lb_source_cidrs != b->n_lb_source_cidrs || a->forwarding != b->forwarding ||
	    a->lb_algorithm != b->lb_algorithm ||
	    !str_eq(a->lb_algorithm_rejected, b->lb_algorithm_rejected))
		return false;
	for (int i = 0; i < a->n_ports; i++)
		if (!service_port_eq(&a->ports[i], &b->ports[i]))
			return false;
	for (int i = 0; i < a->n_lb_source_cidrs; i++)
		if (!ip_addr_equal(&a->lb_source_cidrs[i].addr, &b->lb_source_cidrs[i].addr) ||
		    a->lb_source_cidrs[i].prefix_len != b->lb_source_cidrs[i].prefix_len)
			return false;
	return true;
}

static bool endpoint_eq(const struct endpoint *a, const struct endpoint *b)
{
	return addrs_eq(a->addresses, a->n_addresses, b->addresses, b->n_addresses) &&
	       a->ready == b->ready && a->serving == b->serving &&
	       a->terminating == b->terminating && str_eq(a->node_name, b->node_name) &&
	       str_eq(a->zone, b->zone) &&
	       strings_eq(a->hint_zones, a->n_hint_zones, b->hint_zones, b->n_hint_zones) &&
	       strings_eq(a->hint_nodes, a->n_hint_nodes, b->hint_nodes, b->n_hint_nodes);
}

bool endpoint_slice_equal(const struct endpoint_slice *a, const struct endpoint_slice *b)
{
	if (!str_eq(a->ns, b->ns) || !str_eq(a->name, b->name) ||
	    !str_eq(a->service_name, b->service_name) || a->ignored != b->ignored ||
	    a->address_family != b->address_family || a->n_ports != b->n_ports ||
	    a->n_endpoints != b->n_endpoints || a->trigger_time != b->trigger_time)
		return false;
	for (int i = 0; i < a->n_ports; i++)
		if (!str_eq(a->ports[i].name, b->ports[i].name) ||
		    a->ports[i].proto != b->ports[i].proto || a->ports[i].port != b->ports[i].port)
			return false;
	for (int i = 0; i < a->n_endpoints; i++)
		if (!endpoint_eq(&a->endpoints[i], &b->endpoints[i]))
			return false;
	return true;
}

bool node_equal(const struct node *a, const struct node *b)
{
	return str_eq(a->name, b->name) && str_eq(a->zone, b->zone) &&
	       addrs_eq(a->addresses, a->n_addresses, b->addresses, b->n_addresses) &&
	       a->deleting == b->deleting && a->to_be_deleted == b->to_be_deleted;
}

static void free_strings(char **strings, int n)
{
	for (int i = 0; i < n; i++)
		free(strings[i]);
	free(strings);
}

static void put_strings(char **strings, int n)
{
	for (int i = 0; i < n; i++)
		intern_put(strings[i]);
	free(strings);
}

void service_free(struct service *svc)
{
	if (!svc)
		return;
	intern_put(svc->ns);
	free(svc->name);
	intern_put(svc->source);
	free(svc->cluster_ips);
	for (int i = 0; i < svc->n_ports; i++) {
		intern_put(svc->ports[i].name);
		intern_put(svc->ports[i].target_port_name);
	}
	free(svc->ports);
	free(svc->external_ips);
	free(svc->lb_ingress_ips);
	intern_put(svc->traffic_distribution);
	free(svc->rate_limit);
	free(svc->rate_limit_burst);
	free(svc->lb_algorithm_rejected);
	free_strings(svc->lb_source_ranges, svc->n_lb_source_ranges);
	free(svc->lb_source_cidrs);
	free(svc);
}

static void endpoint_clear(struct endpoint *ep, bool pooled)
{
	if (!pooled)
		free(ep->addresses);
	intern_put(ep->node_name);
	intern_put(ep->zone);
	put_strings(ep->hint_zones, ep->n_hint_zones);
	put_strings(ep->hint_nodes, ep->n_hint_nodes);
}

void endpoint_slice_free(struct endpoint_slice *slice)
{
	if (!slice)
		return;
	intern_put(slice->ns);
	free(slice->name);
	intern_put(slice->source);
	free(slice->service_name);
	for (int i = 0; i < slice->n_ports; i++)
		intern_put(slice->ports[i].name);
	free(slice->ports);
	for (int i = 0; i < slice->n_endpoints; i++)
		endpoint_clear(&slice->endpoints[i], slice->address_pool);
	free(slice->endpoints);
	free(slice->address_pool);
	free(slice);
}

void node_free(struct node *node)
{
	if (!node)
		return;
	free(node->name);
	intern_put(node->source);
	intern_put(node->zone);
	free(node->addresses);
	free(node);
}
