/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Decoding of Kubernetes manifests: JSON or YAML text (one object, a
 * kind: List, or several YAML documents) into validated model objects.
 */
#ifndef SLUICE_MANIFEST_H
#define SLUICE_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "core/model.h"

/* An object of one of our kinds that was left out as invalid (already logged). */
struct manifest_rejected {
	char *kind; /* "Service", "EndpointSlice" or "Node"; NULL if unknown */
	char *ns; /* NULL for Nodes, or when unknown */
	char *name; /* NULL when the object had no usable name */
};

struct manifest_objects {
	struct service **services;
	size_t n_services;
	struct endpoint_slice **slices;
	size_t n_slices;
	struct node **nodes;
	size_t n_nodes;
	struct manifest_rejected *rejected;
	size_t n_rejected;
};

/*
 * Decodes text from `source` (a file path, used in log lines and stored in
 * each object's source field). Objects of other kinds are skipped quietly.
 * An object that fails validation (invalid address, port out of range,
 * missing name) is logged with one line naming source and object and left
 * out; the rest is kept. Returns 0, or -EINVAL when the text does not
 * parse at all (one log line naming source; out is left empty).
 * Decoded objects are appended to out, so one manifest_objects can collect
 * several texts; on any error out is left as it was.
 */
int manifest_decode(const char *text, size_t len, const char *source, struct manifest_objects *out);
/*
 * A top-level item of a text (an element of a JSON List's items or of a
 * top-level array; a text parsed whole is one item) and what decoding it
 * appended: index ranges into out's arrays, counted from what out held
 * before the call.
 */
struct manifest_item {
	uint64_t fp; /* keyed hash of its bytes; 0: not to be remembered */
	uint32_t known; /* known(fp)'s answer: not 0 when the caller has it (not decoded) */
	bool skipped; /* known != 0 */
	uint32_t first_service, n_services;
	uint32_t first_slice, n_slices;
	uint32_t first_node, n_nodes;
	uint32_t first_rejected;
};

struct manifest_items {
	/*
	 * Items whose fingerprint the caller knows are skipped (NULL: none):
	 * known returns 0 for an unknown fp, else a value the item keeps.
	 */
	uint32_t (*known)(void *ctx, uint64_t fp);
	void *ctx;
	struct manifest_item *items; /* appended to; the caller frees */
	size_t n, cap;
};

/*
 * manifest_decode of a file, read from fd's offset in bounded chunks (at
 * most max bytes: -EFBIG past it), without ever building the tree of a
 * whole JSON List: one item is parsed and decoded at a time. items (may be
 * NULL) gets one record per top-level item; an item is only ever skipped
 * when it is byte for byte one that decoded cleanly before, so an object
 * that is rejected is decoded, logged and recorded again. *n_read: the
 * bytes read; chunk: bytes read at a time (0: 1 MiB). Returns as
 * manifest_decode, or -errno from reading.
 */
int manifest_decode_fd(int fd, size_t max, size_t chunk, const char *source,
		       struct manifest_items *items, struct manifest_objects *out, size_t *n_read);
/*
 * Decodes one already-parsed object (for the API server source): a Service,
 * EndpointSlice or Node, or a List of them (items of a typed list such as
 * ServiceList may omit kind and apiVersion). Like manifest_decode, it
 * appends to out.
 * Returns 0 (decoded, or skipped as another kind) or -EINVAL (the object is
 * invalid: logged and recorded in out->rejected).
 */
int manifest_decode_object(json_t *obj, const char *source, struct manifest_objects *out);
/* True if an object of that kind, namespace (NULL for Nodes) and name was rejected. */
bool manifest_rejected_contains(const struct manifest_objects *objs, const char *kind,
				const char *ns, const char *name);
/* Frees every object and array in objs (also arrays whose counts were zeroed). */
void manifest_objects_clear(struct manifest_objects *objs);

#endif
