/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Splitting a JSON text into its top level without parsing it whole (for
 * manifest.c): the members of a top-level object are parsed one by one, and
 * the elements of its "items" array (or of a top-level array) are handed
 * over as raw bytes, one at a time, so that no tree of the whole text is
 * ever built. A file is read in bounded chunks: memory holds one element.
 */
#ifndef SLUICE_JSON_SPLIT_H
#define SLUICE_JSON_SPLIT_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>

/* A text in memory (text != NULL), or a file read from fd's offset, at most max bytes. */
struct json_input {
	const char *text;
	size_t len;
	int fd;
	size_t max;
	size_t chunk; /* bytes read at a time, 0: 1 MiB (tests cross boundaries with less) */
	size_t n_read; /* out: bytes read from fd */
};

struct json_split_ops {
	/* A top-level object's member other than the streamed items (value reference is passed). */
	int (*member)(void *ctx, const char *key, json_t *value);
	/* An element of the top-level array or of the top-level object's items array. */
	int (*element)(void *ctx, const char *text, size_t len, int line);
};

struct json_split_error {
	int line;
	bool overflow; /* a number beyond 64 bits: jansson refuses what YAML reads */
	char text[160];
};

/* What json_split found at the top level. */
enum json_split_shape {
	JSON_SPLIT_OBJECT, /* members only */
	JSON_SPLIT_LIST, /* an object whose "items" array was streamed */
	JSON_SPLIT_ARRAY, /* a top-level array, streamed */
	JSON_SPLIT_OTHER, /* JSON, but nothing was handed over: parse the text whole */
	JSON_SPLIT_NOT_JSON, /* no '{' or '[' first: not JSON (YAML, or nothing at all) */
};

/*
 * Returns the shape (>= 0), -EINVAL when the text is no JSON (err says where;
 * callbacks may have been called), a callback's error, -EFBIG past in->max,
 * or another -errno from reading. A second "items" member is OTHER.
 */
int json_split(struct json_input *in, const struct json_split_ops *ops, void *ctx,
	       struct json_split_error *err);

#endif
