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
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include "lib/file.h"
#include "lib/hash.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "lib/yaml_json.h"
#include "source/decode.h"
#include "source/json_split.h"
#include "source/manifest.h"
#include "source/source.h"

#define MAX_LIST_DEPTH 8

/*
 * What one call decodes, with room to grow, before it moves to the caller's
 * objects. The rejections' log lines wait too: a text that turns out not to
 * parse gets one line, not one per object before the error.
 */
struct collected {
	struct manifest_objects objs;
	size_t cap_services, cap_slices, cap_nodes, cap_rejected;
	char **lines;
	size_t n_lines, cap_lines;
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

static void note_line(struct collected *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* A log line for when the text is known to parse. */
static void note_line(struct collected *c, const char *fmt, ...)
{
	char *line;
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&line, fmt, ap) < 0)
		line = NULL;
	va_end(ap);
	APPEND(c->lines, c->n_lines, c->cap_lines, xcheck(line));
}

/* Names the object in the log line and in out->rejected. */
static int reject(struct collected *c, const struct decode_ctx *ctx)
{
	struct manifest_rejected entry;

	if (ctx->namespaced)
		note_line(c, "%s: %s %s/%s: %s", ctx->source, ctx->kind, ctx->ns ? ctx->ns : "?",
			  ctx->name ? ctx->name : "?", ctx->problem);
	else
		note_line(c, "%s: %s %s: %s", ctx->source, ctx->kind, ctx->name ? ctx->name : "?",
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

	note_line(c, "%s: %s is %s, not an object", source, what, decode_json_kind(v));
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
		note_line(c, "%s: %s nested deeper than %d lists, skipped", source, kind,
			  MAX_LIST_DEPTH);
		return -EINVAL;
	}
	if (!items)
		return 0;
	if (!json_is_array(items)) {
		struct manifest_rejected entry = { 0 };

		note_line(c, "%s: %s: items is %s, not an array", source, kind,
			  decode_json_kind(items));
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

static void drop_collected(struct collected *c)
{
	for (size_t i = 0; i < c->n_lines; i++)
		free(c->lines[i]);
	free(c->lines);
	manifest_objects_clear(&c->objs);
	memset(c, 0, sizeof(*c));
}

/*
 * Logs the lines kept, moves everything collected to the end of out's
 * arrays, and frees what is left of c.
 */
static void move_collected(struct collected *c, struct manifest_objects *out)
{
	struct manifest_objects *from = &c->objs;

	for (size_t i = 0; i < c->n_lines; i++)
		pr_warn("%s", c->lines[i]);

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
	drop_collected(c);
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

/* One item record per top-level item; ranges of what decoding it appended. */
static size_t begin_item(struct collected *c, struct manifest_items *items, uint64_t fp)
{
	struct manifest_item item = {
		.fp = fp,
		.first_service = c->objs.n_services,
		.first_slice = c->objs.n_slices,
		.first_node = c->objs.n_nodes,
		.first_rejected = c->objs.n_rejected,
	};

	if (!items)
		return 0;
	APPEND(items->items, items->n, items->cap, item);
	return items->n - 1;
}

static void end_item(struct collected *c, struct manifest_items *items, size_t i)
{
	struct manifest_item *item;

	if (!items)
		return;
	item = &items->items[i];
	item->n_services = c->objs.n_services - item->first_service;
	item->n_slices = c->objs.n_slices - item->first_slice;
	item->n_nodes = c->objs.n_nodes - item->first_node;
	/* What was rejected is decoded again next time, to be logged and kept again. */
	if (c->objs.n_rejected != item->first_rejected)
		item->fp = 0;
}

/* A JSON text streamed item by item (json_split.h): what the callbacks share. */
struct stream {
	struct collected *c;
	const char *source;
	struct manifest_items *items;
	struct json_split_error *err;
	json_t *top; /* the top-level object's members other than items */
	size_t n_elements;
	/* Items without a kind, and non-objects: they wait for the List's kind. */
	struct deferred {
		json_t *item;
		size_t index; /* among the items, for a log line */
	} * deferred;
	size_t n_deferred, cap_deferred;
};

static int on_member(void *ctx, const char *key, json_t *value)
{
	struct stream *s = ctx;

	/* Both an items array and another items member: jansson keeps the last. */
	if (!strcmp(key, "items") && s->n_elements) {
		json_decref(value);
		return JSON_SPLIT_OTHER;
	}
	json_object_set_new(s->top, key, value);
	return 0;
}

static int on_element(void *ctx, const char *text, size_t len, int line)
{
	struct stream *s = ctx;
	size_t index = s->n_elements++, rec;
	uint64_t fp = s->items ? hash64(text, len) : 0;
	uint32_t known;
	json_error_t jerr;
	json_t *item;

	if (json_object_get(s->top, "items"))
		return JSON_SPLIT_OTHER;
	if (s->items && s->items->known && (known = s->items->known(s->items->ctx, fp))) {
		rec = begin_item(s->c, s->items, fp);
		s->items->items[rec].skipped = true;
		s->items->items[rec].known = known;
		return 0;
	}
	item = json_loadb(text, len, JSON_DECODE_ANY, &jerr);
	if (!item) {
		s->err->overflow = json_error_code(&jerr) == json_error_numeric_overflow;
		s->err->line = line + jerr.line - 1;
		snprintf(s->err->text, sizeof(s->err->text), "%s", jerr.text);
		return -EINVAL;
	}
	if (!json_is_object(item) || !json_is_string(json_object_get(item, "kind"))) {
		struct deferred d = { .item = item, .index = index };

		APPEND(s->deferred, s->n_deferred, s->cap_deferred, d);
		return 0;
	}
	rec = begin_item(s->c, s->items, fp);
	decode_tree(s->c, item, s->source, NULL, NULL, 1);
	end_item(s->c, s->items, rec);
	json_decref(item);
	return 0;
}

/* The items that waited, now that the List's kind is known (kind NULL: a bare array). */
static void decode_deferred(struct stream *s, const char *kind, const char *api_version)
{
	char *item_kind = NULL, what[64];

	if (kind && strcmp(kind, "List"))
		item_kind = xstrndup(kind, strlen(kind) - strlen("List"));
	for (size_t i = 0; i < s->n_deferred; i++) {
		size_t rec = begin_item(s->c, s->items, 0);

		const struct deferred *d = &s->deferred[i];

		if (!json_is_object(d->item)) {
			snprintf(what, sizeof(what), "%s item %zu", kind ? kind : "List", d->index);
			reject_non_object(s->c, s->source, what, d->item);
		} else {
			decode_tree(s->c, d->item, s->source, item_kind, api_version, 1);
		}
		end_item(s->c, s->items, rec);
	}
	free(item_kind);
}

static void stream_free(struct stream *s)
{
	for (size_t i = 0; i < s->n_deferred; i++)
		json_decref(s->deferred[i].item);
	free(s->deferred);
	json_decref(s->top);
}

/*
 * Decodes a JSON text without its whole tree. Returns 0, -EINVAL (logged),
 * another -errno, 1: the text is to be parsed whole (a shape only a whole
 * parse can settle), or 2: it is not JSON; then c and items are as they were.
 */
static int decode_streamed(struct json_input *in, const char *source, struct manifest_items *items,
			   struct collected *c)
{
	static const struct json_split_ops ops = { .member = on_member, .element = on_element };
	struct json_split_error err;
	struct stream s = { .c = c, .source = source, .items = items, .err = &err };
	size_t n_items = items ? items->n : 0;
	const char *kind;
	int rc;

	s.top = xcheck(json_object());
	rc = json_split(in, &ops, &s, &err);
	if (rc == -EINVAL && !err.overflow)
		pr_warn("%s:%d: invalid JSON: %s", source, err.line, err.text);
	if (rc < 0 && (rc != -EINVAL || !err.overflow))
		goto out;
	kind = json_string_value(json_object_get(s.top, "kind"));
	if (rc == JSON_SPLIT_LIST && kind && ends_with(kind, "List")) {
		decode_deferred(&s, kind, json_string_value(json_object_get(s.top, "apiVersion")));
		rc = 0;
	} else if (rc == JSON_SPLIT_ARRAY) {
		decode_deferred(&s, NULL, NULL);
		rc = 0;
	} else if (rc == JSON_SPLIT_OBJECT) {
		size_t rec = begin_item(c, items, 0);

		decode_tree(c, s.top, source, NULL, NULL, 0);
		end_item(c, items, rec);
		rc = 0;
	} else if (rc == JSON_SPLIT_NOT_JSON) {
		rc = 2;
	} else {
		/* Numbers beyond 64 bits (YAML reads them), or not a List after all. */
		rc = 1;
	}
out:
	if (rc) {
		drop_collected(c);
		if (items)
			items->n = n_items;
	}
	stream_free(&s);
	return rc;
}

/* One document (number n, from 1). An invalid object is logged and recorded; the text still counts. */
static void decode_document(struct collected *c, const json_t *doc, size_t n, const char *source)
{
	char what[48];

	if (json_is_null(doc))
		return;
	snprintf(what, sizeof(what), "document %zu", n);
	if (json_is_array(doc)) {
		/* A bare JSON array of objects: read as a List's items. */
		json_t *list = xcheck(json_pack("{s:s, s:O}", "kind", "List", "items", doc));

		decode_list(c, list, source, "List", NULL, 0);
		json_decref(list);
	} else if (!json_is_object(doc)) {
		reject_non_object(c, source, what, doc);
	} else {
		decode_tree(c, doc, source, NULL, NULL, 0);
	}
}

/* Decodes a text parsed whole: YAML in memory, or JSON that could not be streamed. */
static int decode_whole(const char *text, size_t len, const char *source,
			struct manifest_items *items, struct collected *c)
{
	json_t *docs, *doc;
	size_t rec = begin_item(c, items, 0);
	int err = 0;
	size_t i;

	docs = parse_documents(text, len, source, &err);
	if (!docs) {
		if (items)
			items->n--;
		return err;
	}
	json_array_foreach(docs, i, doc)
		decode_document(c, doc, i + 1, source);
	json_decref(docs);
	end_item(c, items, rec);
	return 0;
}

/* A YAML file read one document at a time: what the callback needs. */
struct yaml_docs {
	struct collected *c;
	struct manifest_items *items;
	const char *source;
	size_t n;
};

static int on_document(void *ctx, json_t *doc)
{
	struct yaml_docs *y = ctx;
	size_t rec = begin_item(y->c, y->items, 0);

	decode_document(y->c, doc, ++y->n, y->source);
	end_item(y->c, y->items, rec);
	json_decref(doc);
	return 0;
}

static int decode_yaml_fd(struct json_input *in, const char *source, struct manifest_items *items,
			  struct collected *c)
{
	struct yaml_docs y = { .c = c, .items = items, .source = source };
	struct yaml_json_error yaml_err;
	int err;

	if (lseek(in->fd, 0, SEEK_SET) < 0)
		return -errno;
	err = yaml_to_json_fd(in->fd, in->max, &in->n_read, on_document, &y, &yaml_err);
	if (err == -EINVAL)
		pr_warn("%s:%d: invalid YAML: %s", source, yaml_err.line, yaml_err.text);
	return err;
}

static int decode_input(struct json_input *in, const char *source, struct manifest_items *items,
			struct manifest_objects *out)
{
	struct collected c = { 0 };
	char *text = NULL;
	size_t len;
	int err;

	if (!source)
		source = "(unknown)";
	err = decode_streamed(in, source, items, &c);
	if (err == 2 && !in->text) {
		err = decode_yaml_fd(in, source, items, &c);
	} else if (err == 1 || err == 2) {
		if (in->text) {
			err = decode_whole(in->text, in->len, source, items, &c);
		} else if (lseek(in->fd, 0, SEEK_SET) < 0) {
			err = -errno;
		} else {
			err = read_fd_all(in->fd, in->max, in->n_read, &text, &len);
			if (!err) {
				in->n_read = len;
				err = decode_whole(text, len, source, items, &c);
			}
			free(text);
		}
	}
	if (err) {
		drop_collected(&c);
		return err;
	}
	move_collected(&c, out);
	return 0;
}

int manifest_decode(const char *text, size_t len, const char *source, struct manifest_objects *out)
{
	struct json_input in = { .text = text ? text : "", .len = text ? len : 0 };

	return decode_input(&in, source, NULL, out);
}

int manifest_decode_fd(int fd, size_t max, size_t chunk, const char *source,
		       struct manifest_items *items, struct manifest_objects *out, size_t *n_read)
{
	struct json_input in = { .fd = fd, .max = max, .chunk = chunk };
	int err = decode_input(&in, source, items, out);

	*n_read = in.n_read;
	return err;
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
