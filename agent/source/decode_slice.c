// SPDX-License-Identifier: Apache-2.0
/*
 * The EndpointSlice decoder: address type, ports, and each endpoint's
 * addresses, conditions, node, zone and topology hints.
 */
#include <stdio.h>
#include <string.h>

#include "lib/log.h"
#include "lib/intern.h"
#include "lib/xalloc.h"
#include "source/decode.h"

/* hints.forZones / hints.forNodes: an array of {name: ...}, kept as the names. */
/* An endpoint's lists are counted in 16 bits (the API allows 100 addresses, 8 hints). */
static bool fits_u16(struct decode_ctx *ctx, const json_t *obj, const char *at, const char *key)
{
	json_t *list = decode_member(obj, key);

	if (json_is_array(list) && json_array_size(list) > UINT16_MAX)
		return decode_fail(ctx, "%s%s: %zu items, at most %u", at, key,
				   json_array_size(list), UINT16_MAX);
	return true;
}

static bool get_hint_names(struct decode_ctx *ctx, const json_t *hints, const char *at,
			   const char *key, char ***out, uint16_t *n)
{
	json_t *list, *item;
	const char *name;
	char item_at[128];
	size_t i;

	if (!fits_u16(ctx, hints, at, key) || !decode_get_array(ctx, hints, at, key, &list))
		return false;
	if (!list || !json_array_size(list))
		return true;
	*out = xcalloc(json_array_size(list), sizeof(**out));
	json_array_foreach(list, i, item) {
		snprintf(item_at, sizeof(item_at), "%s%s[%zu].", at, key, i);
		if (!decode_check_element(ctx, item, item_at) ||
		    !decode_get_string(ctx, item, item_at, "name", &name))
			return false;
		if (!name || !*name)
			return decode_fail(ctx, "%sname: missing", item_at);
		(*out)[(*n)++] = intern_get(name);
	}
	return true;
}

static bool decode_slice_ports(struct decode_ctx *ctx, const json_t *obj,
			       struct endpoint_slice *slice)
{
	json_t *ports, *item;
	const char *name;
	json_int_t value;
	bool present;
	char at[40];
	size_t i;

	if (!decode_get_array(ctx, obj, "", "ports", &ports))
		return false;
	if (!ports || !json_array_size(ports))
		return true;
	slice->ports = xcalloc(json_array_size(ports), sizeof(*slice->ports));
	json_array_foreach(ports, i, item) {
		struct slice_port *p = &slice->ports[slice->n_ports++];

		snprintf(at, sizeof(at), "ports[%zu].", i);
		if (!decode_check_element(ctx, item, at) ||
		    !decode_get_string(ctx, item, at, "name", &name))
			return false;
		p->name = intern_get(name ? name : "");
		if (!decode_get_protocol(ctx, item, at, &p->proto) ||
		    !decode_get_int(ctx, item, at, "port", 0, 65535, &value, &present))
			return false;
		p->port = value;
	}
	return true;
}

static bool decode_endpoint(struct decode_ctx *ctx, const json_t *item, const char *at, int family,
			    struct endpoint *ep)
{
	json_t *conditions, *hints;
	const char *node_name, *zone;
	char hints_at[64];
	int ready, serving, terminating, n_addresses = 0;
	bool ok;

	if (!decode_check_element(ctx, item, at) || !fits_u16(ctx, item, at, "addresses"))
		return false;
	ok = decode_get_ip_list(ctx, item, at, "addresses", family, &ep->addresses, &n_addresses);
	ep->n_addresses = n_addresses;
	if (!ok)
		return false;
	if (!decode_get_object(ctx, item, at, "conditions", &conditions))
		return false;
	snprintf(hints_at, sizeof(hints_at), "%sconditions.", at);
	if (!decode_get_bool(ctx, conditions, hints_at, "ready", &ready) ||
	    !decode_get_bool(ctx, conditions, hints_at, "serving", &serving) ||
	    !decode_get_bool(ctx, conditions, hints_at, "terminating", &terminating))
		return false;
	/* The API's defaults: unknown readiness counts as ready, serving follows ready. */
	ep->ready = ready != 0;
	ep->serving = serving < 0 ? ep->ready : serving;
	ep->terminating = terminating > 0;

	if (!decode_get_string(ctx, item, at, "nodeName", &node_name) ||
	    !decode_get_string(ctx, item, at, "zone", &zone))
		return false;
	if (node_name && *node_name)
		ep->node_name = intern_get(node_name);
	if (zone && *zone)
		ep->zone = intern_get(zone);
	if (!decode_get_object(ctx, item, at, "hints", &hints))
		return false;
	snprintf(hints_at, sizeof(hints_at), "%shints.", at);
	return get_hint_names(ctx, hints, hints_at, "forZones", &ep->hint_zones,
			      &ep->n_hint_zones) &&
	       get_hint_names(ctx, hints, hints_at, "forNodes", &ep->hint_nodes, &ep->n_hint_nodes);
}

/* Moves every endpoint's addresses into one block: one allocation instead of one each. */
static void pool_addresses(struct endpoint_slice *slice)
{
	size_t n = 0;

	for (int i = 0; i < slice->n_endpoints; i++)
		n += slice->endpoints[i].n_addresses;
	if (!n)
		return;
	slice->address_pool = xcalloc(n, sizeof(*slice->address_pool));
	n = 0;
	for (int i = 0; i < slice->n_endpoints; i++) {
		struct endpoint *ep = &slice->endpoints[i];

		if (ep->n_addresses)
			memcpy(slice->address_pool + n, ep->addresses,
			       ep->n_addresses * sizeof(*ep->addresses));
		free(ep->addresses);
		ep->addresses = ep->n_addresses ? slice->address_pool + n : NULL;
		n += ep->n_addresses;
	}
}

static bool decode_slice_body(struct decode_ctx *ctx, const json_t *obj, const json_t *labels,
			      struct endpoint_slice *slice)
{
	char buf[SHOWN_MAX + 4], at[40];
	const char *type, *service_name, *ignored_by;
	json_t *endpoints, *item;
	size_t i;

	if (!decode_get_string(ctx, labels, "metadata.labels.", "kubernetes.io/service-name",
			       &service_name))
		return false;
	slice->service_name = decode_strdup(service_name);
	ignored_by = decode_ignored_by(labels);
	if (ignored_by) {
		/* Kept, without endpoints, so that gaining the label takes them away. */
		pr_debug("%s: EndpointSlice %s/%s: labelled %s, ignored as kube-proxy does",
			 ctx->source, ctx->ns, ctx->name, ignored_by);
		slice->ignored = true;
		return true;
	}
	if (!decode_get_string(ctx, obj, "", "addressType", &type))
		return false;
	if (!type)
		return decode_fail(ctx, "missing addressType");
	if (!strcmp(type, "IPv4"))
		slice->address_family = AF_INET;
	else if (!strcmp(type, "IPv6"))
		slice->address_family = AF_INET6;
	else if (strcmp(type, "FQDN"))
		return decode_fail(ctx, "unknown addressType \"%s\"", decode_shown(type, buf));
	if (!decode_slice_ports(ctx, obj, slice))
		return false;
	/* FQDN slices carry names, not addresses: nothing to serve from them. */
	if (!slice->address_family)
		return true;
	if (!decode_get_array(ctx, obj, "", "endpoints", &endpoints))
		return false;
	if (!endpoints || !json_array_size(endpoints))
		return true;
	slice->endpoints = xcalloc(json_array_size(endpoints), sizeof(*slice->endpoints));
	json_array_foreach(endpoints, i, item) {
		snprintf(at, sizeof(at), "endpoints[%zu].", i);
		if (!decode_endpoint(ctx, item, at, slice->address_family,
				     &slice->endpoints[slice->n_endpoints++]))
			return false;
	}
	pool_addresses(slice);
	return true;
}

struct endpoint_slice *decode_slice(const json_t *obj, const char *source, struct decode_ctx *ctx)
{
	struct endpoint_slice *slice = xcalloc(1, sizeof(*slice));
	json_t *labels, *annotations;
	const char *trigger = NULL;

	*ctx = (struct decode_ctx){ .source = source,
				    .kind = "EndpointSlice",
				    .namespaced = true,
				    .name_rule = DECODE_NAME_DNS1123_SUBDOMAIN };

	if (decode_metadata(ctx, obj, &labels, &annotations) &&
	    decode_slice_body(ctx, obj, labels, slice) &&
	    decode_get_string(ctx, annotations, "metadata.annotations.",
			      "endpoints.kubernetes.io/last-change-trigger-time", &trigger)) {
		/* Only a metric depends on it: a bad value is no reason to reject the slice. */
		if (trigger && !decode_parse_rfc3339(trigger, &slice->trigger_time))
			slice->trigger_time = 0;
		decode_copy_names(ctx, &slice->ns, &slice->name, &slice->source);
	}
	if (ctx->failed) {
		endpoint_slice_free(slice);
		return NULL;
	}
	return slice;
}
