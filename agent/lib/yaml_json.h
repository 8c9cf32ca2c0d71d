/* SPDX-License-Identifier: Apache-2.0 */
/* YAML text to jansson trees, one per document, so that one decoder serves JSON and YAML. */
#ifndef SLUICE_YAML_JSON_H
#define SLUICE_YAML_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>

struct yaml_json_error {
	int line; /* 1-based line of the problem, 0 if none */
	bool nomem; /* out of memory rather than bad text */
	char text[200];
};

/*
 * Parses every document of a YAML stream. Returns a new JSON array with one
 * element per document (null for an empty document), or NULL with err
 * filled in. Plain scalars resolve as in YAML 1.2's core schema: integers
 * (decimal, 0x, 0o; too big for 64 bits: a real), floats, true/false,
 * null/~/empty; every other scalar, and every quoted or !!str-tagged one,
 * is a string. Aliases and non-scalar mapping keys are refused.
 */
json_t *yaml_to_json(const char *text, size_t len, struct yaml_json_error *err);

/* Gets each document as it ends (the reference passes); non-zero stops the parse. */
typedef int yaml_json_doc_fn(void *ctx, json_t *doc);
/*
 * The same, read from fd's offset (at most max bytes: -EFBIG), one document
 * at a time: only the document being built is in memory. *n_read: bytes
 * read. Returns 0, -EINVAL (err filled in), -ENOMEM, fn's error, or
 * -errno from reading.
 */
int yaml_to_json_fd(int fd, size_t max, size_t *n_read, yaml_json_doc_fn *fn, void *ctx,
		    struct yaml_json_error *err);

#endif
