/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The decoders of the three kinds we serve from (internal to agent/source,
 * for manifest.c): one jansson object in, one validated model object out.
 */
#ifndef SLUICE_DECODE_H
#define SLUICE_DECODE_H

#include <jansson.h>

#include "core/model.h"
#include "source/decode_util.h"

/*
 * Each returns the decoded object, or NULL when it is invalid: then ctx
 * names the object and holds its first problem, for the caller to log.
 * ctx points into obj, so obj must outlive the use of ctx.
 */
struct service *decode_service(const json_t *obj, const char *source, struct decode_ctx *ctx);
struct endpoint_slice *decode_slice(const json_t *obj, const char *source, struct decode_ctx *ctx);
struct node *decode_node(const json_t *obj, const char *source, struct decode_ctx *ctx);

#endif
