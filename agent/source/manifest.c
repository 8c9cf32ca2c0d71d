// SPDX-License-Identifier: Apache-2.0
/*
 * Kubernetes manifests into validated model objects: JSON (parsed by
 * jansson) or YAML (turned into the same jansson trees), as single objects,
 * Lists or multi-document YAML. Each object is checked on its own: a bad one
 * gets one log line and is left out, the rest is kept. This file walks
 * documents and Lists, hands each object to its kind's decoder (decode_*.c)
 * and keeps what was decoded and what was rejected.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/xalloc.h"
#include "lib/yaml_json.h"
#include "source/decode.h"
#include "source/manifest.h"
#include "source/source.h"

#define MAX_LIST_DEPTH 8

/* What one call decodes, with room to grow, before it moves to the caller's objects. */
struct collected {
	struct manifest_objects objs;
	size_t cap_services, cap_slices, cap_nodes, cap_rejected;
};

/* Appends item to array (count n, capacity cap). */
#define APPEND(array, n, cap, item)                                                \
	do {                                                                       \
		if ((n) == (cap)) {                                                \
			(cap) = (cap) ? 2 * (cap) : 8;                             \
			(array) = xreallocarray((array), (cap), sizeof(*(array))); \
		}                                                                  \
		(array)[(n)++] = (item);                                           \
	} while (0)

/* Names the object in the log line and in out->rejected. */
static int reject(struct collected *c, const struct decode_ctx *ctx)
{
	struct manifest_rejected entry;

	if (ctx->namespaced)
		pr_warn("%s: %s %s/%s: %s", ctx->source, ctx->kind, ctx->ns ? ctx->ns : "?",
			ctx->name ? ctx->name : "?", ctx->problem);
	else
		pr_warn("%s: %s %s: %s", ctx->source, ctx->kind, ctx->name ? ctx->name : "?",
			ctx->problem);

	entry.kind = decode_strdup(ctx->kind);
	entry.ns = decode_strdup(ctx->ns);
	entry.name = decode_strdup(ctx->name);
	APPEND(c->objs.rejected, c->objs.n_rejected, c->cap_rejected, entry);
	return -EINVAL;
}

/* Something that is no object at all where one was expected (a document, a List item). */
static int reject_non_object(struct collected *c, const char *source, const char *what,
			     const json_t *v)
{
	struct manifest_rejected entry = { 0 };

	pr_warn("%s: %s is %s, not an object", source, what, decode_json_kind(v));
	APPEND(c->objs.rejected, c->objs.n_rejected, c->cap_rejected, entry);
	return -EINVAL;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t len = strlen(s), suffix_len = strlen(suffix);

	return len >= suffix_len && !strcmp(s + len - suffix_len, suffix);
}

static int decode_tree(struct collected *c, const json_t *obj, const char *source,
		       const char *list_kind, const char *list_api_version, int depth);

/* kind: List (or ServiceList...): items of a typed list may leave out kind and apiVersion. */
static int decode_list(struct collected *c, const json_t *list, const char *source,
		       const char *kind, const char *api_version, int depth)
{
	json_t *items = decode_member(list, "items"), *item;
	char *item_kind = NULL, what[64];
	size_t i;

	if (depth >= MAX_LIST_DEPTH) {
		pr_warn("%s: %s nested deeper than %d lists, skipped", source, kind,
			MAX_LIST_DEPTH);
		return -EINVAL;
	}
	if (!items)
		return 0;
	if (!json_is_array(items)) {
		struct manifest_rejected entry = { 0 };

		pr_warn("%s: %s: items is %s, not an array", source, kind, decode_json_kind(items));
		APPEND(c->objs.rejected, c->objs.n_rejected, c->cap_rejected, entry);
		return -EINVAL;
	}
	if (strcmp(kind, "List"))
		item_kind = xstrndup(kind, strlen(kind) - strlen("List"));
	/* An invalid item is logged and recorded; the List itself still counts. */
	json_array_foreach(items, i, item) {
		if (!json_is_object(item)) {
			snprintf(what, sizeof(what), "%s item %zu", kind, i);
			reject_non_object(c, source, what, item);
		} else {
			decode_tree(c, item, source, item_kind, api_version, depth + 1);
		}
	}
	free(item_kind);
	return 0;
}

/* One object or List; list_kind/list_api_version: what a typed List says its items are. */
static int decode_tree(struct collected *c, const json_t *obj, const char *source,
		       const char *list_kind, const char *list_api_version, int depth)
{
	const char *kind = json_string_value(json_object_get(obj, "kind"));
	const char *api_version = json_string_value(json_object_get(obj, "apiVersion"));
	struct decode_ctx ctx;

	if (!kind) {
		kind = list_kind;
		if (!api_version)
			api_version = list_api_version;
	}
	if (!kind) {
		pr_debug("%s: skipping an object without kind", source);
		return 0;
	}
	if (ends_with(kind, "List") && json_object_get(obj, "items"))
		return decode_list(c, obj, source, kind, api_version, depth);
	if (!api_version)
		api_version = "";
	if (!strcmp(kind, "Service") && !strcmp(api_version, "v1")) {
		struct service *svc = decode_service(obj, source, &ctx);

		if (!svc)
			return reject(c, &ctx);
		APPEND(c->objs.services, c->objs.n_services, c->cap_services, svc);
		return 0;
	}
	if (!strcmp(kind, "EndpointSlice") && !strcmp(api_version, "discovery.k8s.io/v1")) {
		struct endpoint_slice *slice = decode_slice(obj, source, &ctx);

		if (!slice)
			return reject(c, &ctx);
		APPEND(c->objs.slices, c->objs.n_slices, c->cap_slices, slice);
		return 0;
	}
	if (!strcmp(kind, "Node") && !strcmp(api_version, "v1")) {
		struct node *node = decode_node(obj, source, &ctx);

		if (!node)
			return reject(c, &ctx);
		APPEND(c->objs.nodes, c->objs.n_nodes, c->cap_nodes, node);
		return 0;
	}
	pr_debug("%s: skipping %s %s", source, api_version, kind);
	return 0;
}

/* Moves everything collected to the end of out's arrays, and frees what is left of c. */
static void move_collected(struct collected *c, struct manifest_objects *out)
{
	struct manifest_objects *from = &c->objs;

#define MOVE(field, count)                                                               \
	do {                                                                             \
		if (from->count) {                                                       \
			out->field = xreallocarray(out->field, out->count + from->count, \
						   sizeof(*out->field));                 \
			memcpy(out->field + out->count, from->field,                     \
			       from->count * sizeof(*out->field));                       \
		}                                                                        \
		out->count += from->count;                                               \
		from->count = 0;                                                         \
	} while (0)

	MOVE(services, n_services);
	MOVE(slices, n_slices);
	MOVE(nodes, n_nodes);
	MOVE(rejected, n_rejected);
#undef MOVE
	manifest_objects_clear(from);
}

int manifest_decode_object(json_t *obj, const char *source, struct manifest_objects *out)
{
	struct collected c = { 0 };
	int err;

	if (!source)
		source = "(unknown)";
	if (!json_is_object(obj))
		err = reject_non_object(&c, source, "the object", obj);
	else
		err = decode_tree(&c, obj, source, NULL, NULL, 0);
	move_collected(&c, out);
	return err;
}

/* Parses text into an array of documents; NULL after one log line when it does not parse. */
static json_t *parse_documents(const char *text, size_t len, const char *source, int *err)
{
	struct yaml_json_error yaml_err;
	json_error_t json_err;
	json_t *value, *docs;
	size_t i = 0;

	/* A UTF-8 byte order mark: libyaml skips it, jansson does not. */
	if (len >= 3 && !memcmp(text, "\xef\xbb\xbf", 3)) {
		text += 3;
		len -= 3;
	}
	while (i < len && text[i] && strchr(" \t\r\n", text[i]))
		i++;
	if (i < len && (text[i] == '{' || text[i] == '[')) {
		value = json_loadb(text, len, 0, &json_err);
		/* With a constant format and a value, NULL can only mean out of memory. */
		if (value)
			return xcheck(json_pack("[o]", value));
		/*
		 * jansson refuses numbers beyond 64 bits or a double; YAML reads
		 * the same JSON and leaves such a number to fail only its object.
		 */
		if (json_error_code(&json_err) == json_error_numeric_overflow) {
			docs = yaml_to_json(text, len, &yaml_err);
			if (docs)
				return docs;
		}
		pr_warn("%s:%d: invalid JSON: %s", source, json_err.line, json_err.text);
		*err = -EINVAL;
		return NULL;
	}
	docs = yaml_to_json(text, len, &yaml_err);
	if (!docs) {
		if (yaml_err.nomem) {
			*err = -ENOMEM;
		} else {
			pr_warn("%s:%d: invalid YAML: %s", source, yaml_err.line, yaml_err.text);
			*err = -EINVAL;
		}
	}
	return docs;
}

int manifest_decode(const char *text, size_t len, const char *source, struct manifest_objects *out)
{
	struct collected c = { 0 };
	json_t *docs, *doc;
	char what[48];
	int err = 0;
	size_t i;

	if (!source)
		source = "(unknown)";
	if (!text)
		len = 0;
	docs = parse_documents(text ? text : "", len, source, &err);
	if (!docs)
		return err;
	/* An invalid object is logged and recorded; the text itself still counts. */
	json_array_foreach(docs, i, doc) {
		if (json_is_null(doc))
			continue;
		snprintf(what, sizeof(what), "document %zu", i + 1);
		if (json_is_array(doc)) {
			/* A bare JSON array of objects: read as a List's items. */
			json_t *list =
				xcheck(json_pack("{s:s, s:O}", "kind", "List", "items", doc));

			decode_list(&c, list, source, "List", NULL, 0);
			json_decref(list);
		} else if (!json_is_object(doc)) {
			reject_non_object(&c, source, what, doc);
		} else {
			decode_tree(&c, doc, source, NULL, NULL, 0);
		}
	}
	json_decref(docs);
	move_collected(&c, out);
	return 0;
}

bool manifest_rejected_contains(const struct manifest_objects *objs, const char *kind,
				const char *ns, const char *name)
{
	for (size_t i = 0; i < objs->n_rejected; i++) {
		const struct manifest_rejected *r = &objs->rejected[i];

		if (r->kind && r->name && kind && name && !strcmp(r->kind, kind) &&
		    !strcmp(r->name, name) && !strcmp(r->ns ? r->ns : "", ns ? ns : ""))
			return true;
	}
	return false;
}

void manifest_objects_clear(struct manifest_objects *objs)
{
	for (size_t i = 0; i < objs->n_services; i++)
		service_free(objs->services[i]);
	for (size_t i = 0; i < objs->n_slices; i++)
		endpoint_slice_free(objs->slices[i]);
	for (size_t i = 0; i < objs->n_nodes; i++)
		node_free(objs->nodes[i]);
	for (size_t i = 0; i < objs->n_rejected; i++) {
		free(objs->rejected[i].kind);
		free(objs->rejected[i].ns);
		free(objs->rejected[i].name);
	}
	free(objs->services);
	free(objs->slices);
	free(objs->nodes);
	free(objs->rejected);
	memset(objs, 0, sizeof(*objs));
}

const char *rejected_kind_name(enum rejected_kind k)
{
	static const char *const names[REJECTED_KINDS] = { "Service", "EndpointSlice", "Node",
							   "other" };

	return k < REJECTED_KINDS ? names[k] : "other";
}

enum rejected_kind rejected_kind_of(const char *kind)
{
	if (kind && !strcmp(kind, "Service"))
		return REJECTED_SERVICE;
	if (kind && !strcmp(kind, "EndpointSlice"))
		return REJECTED_ENDPOINTSLICE;
	if (kind && !strcmp(kind, "Node"))
		return REJECTED_NODE;
	return REJECTED_OTHER;
}
