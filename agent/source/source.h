/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The source interface: where Services, EndpointSlices and Nodes come from.
 * A source fills the store when it opens (its whole initial state: nothing
 * is applied before that) and then, whenever its descriptor is readable,
 * feeds the store what changed. The agent's loop does not know which kind
 * of source it holds.
 */
#ifndef SLUICE_SOURCE_H
#define SLUICE_SOURCE_H

#include <stddef.h>

#include "core/store.h"

struct source;

/* What a rejected input was (sluice_rejected_objects_total's kind label). */
enum rejected_kind {
	REJECTED_SERVICE,
	REJECTED_ENDPOINTSLICE,
	REJECTED_NODE,
	REJECTED_OTHER, /* a file or document that did not parse, an unknown kind */
	REJECTED_KINDS
};

/* "Service", "EndpointSlice", "Node", "other". */
const char *rejected_kind_name(enum rejected_kind k);
/* The kind of a manifest_rejected entry's kind string (NULL: other). */
enum rejected_kind rejected_kind_of(const char *kind);

struct source_ops {
	const char *name;
	/* The descriptor to poll for changes. */
	int (*fd)(struct source *src);
	/* Called when fd is readable: moves what changed into the store. */
	int (*handle_events)(struct source *src);
	/* Inputs rejected so far (unparsable files, invalid objects). */
	size_t (*rejected)(struct source *src);
	/* The same, of one kind. */
	size_t (*rejected_of)(struct source *src, enum rejected_kind kind);
	void (*close)(struct source *src);
};

struct source {
	const struct source_ops *ops;
};

/* --source=dir:PATH. Returns 0 or -errno (logged). */
int dir_source_new(const char *path, size_t max_file_bytes, struct store *store,
		   struct source **out);

#endif
