// SPDX-License-Identifier: Apache-2.0
/*
 * The Node decoder: the name, the zone label, the addresses to serve on,
 * and whether it is going away (deletionTimestamp, the autoscaler's taint).
 */
#include <stdio.h>
#include <string.h>

#include "lib/log.h"
#include "lib/intern.h"
#include "lib/xalloc.h"
#include "source/decode.h"

/*
 * status.addresses: the InternalIP entries, then the ExternalIP ones (others
 * are not addresses to serve), so that the first of a family is the node's
 * primary address in it, as kube-proxy picks it (GetNodeHostIPs).
 */
static bool decode_node_addresses(struct decode_ctx *ctx, const json_t *obj, struct node *node)
{
	static const char *const types[] = { "InternalIP", "ExternalIP" };
	json_t *status, *addresses, *item;
	const char *type, *address;
	char at[40];
	size_t i;

	if (!decode_get_object(ctx, obj, "", "status", &status) ||
	    !decode_get_array(ctx, status, "status.", "addresses", &addresses))
		return false;
	if (!addresses || !json_array_size(addresses))
		return true;
	node->addresses = xcalloc(json_array_size(addresses), sizeof(*node->addresses));
	for (size_t t = 0; t < 2; t++)
		json_array_foreach(addresses, i, item) {
			snprintf(at, sizeof(at), "status.addresses[%zu].", i);
			if (!decode_check_element(ctx, item, at) ||
			    !decode_get_string(ctx, item, at, "type", &type) ||
			    !decode_get_string(ctx, item, at, "address", &address))
				return false;
			if (!type || strcmp(type, types[t]) || !address)
				continue;
			if (!ip_addr_parse(address, &node->addresses[node->n_addresses])) {
				pr_debug("%s: Node %s: ignoring %s%s that is not an IP address",
					 ctx->source, ctx->name, at, type);
				continue;
			}
			node->n_addresses++;
		}
	return true;
}

/*
 * What makes a Node ineligible for kube-proxy's /healthz: it is being
 * deleted, or the cluster autoscaler marked it for deletion (a load
 * balancer should drain it first).
 */
static bool decode_node_deletion(struct decode_ctx *ctx, const json_t *obj, struct node *node)
{
	json_t *metadata = decode_member(obj, "metadata"), *spec, *taints, *item;
	const char *key;
	char at[40];
	size_t i;

	node->deleting = json_is_string(decode_member(metadata, "deletionTimestamp"));
	if (!decode_get_object(ctx, obj, "", "spec", &spec) ||
	    !decode_get_array(ctx, spec, "spec.", "taints", &taints))
		return false;
	json_array_foreach(taints, i, item) {
		snprintf(at, sizeof(at), "spec.taints[%zu].", i);
		if (!decode_check_element(ctx, item, at) ||
		    !decode_get_string(ctx, item, at, "key", &key))
			return false;
		if (key && !strcmp(key, "ToBeDeletedByClusterAutoscaler"))
			node->to_be_deleted = true;
	}
	return true;
}

struct node *decode_node(const json_t *obj, const char *source, struct decode_ctx *ctx)
{
	struct node *node = xcalloc(1, sizeof(*node));
	json_t *labels, *annotations;
	const char *zone;

	*ctx = (struct decode_ctx){ .source = source,
				    .kind = "Node",
				    .name_rule = DECODE_NAME_DNS1123_SUBDOMAIN };
	if (decode_metadata(ctx, obj, &labels, &annotations) &&
	    decode_get_string(ctx, labels, "metadata.labels.", "topology.kubernetes.io/zone",
			      &zone) &&
	    decode_node_addresses(ctx, obj, node) && decode_node_deletion(ctx, obj, node)) {
		if (zone && *zone)
			node->zone = intern_get(zone);
		decode_copy_names(ctx, NULL, &node->name, &node->source);
	}
	if (ctx->failed) {
		node_free(node);
		return NULL;
	}
	return node;
}
