/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Engine outputs: where the engine's changes go (the datapath, the
 * healthCheckNodePort servers, and whatever is added later). The engine
 * knows outputs only through this interface.
 */
#ifndef SLUICE_OUTPUT_H
#define SLUICE_OUTPUT_H

#include "core/model.h"
#include "core/resolver.h"
#include "core/state.h"

/* One Service after a successful apply. */
struct service_applied {
	const char *key; /* "ns/name" */
	const struct service *svc; /* NULL once the Service is gone */
	const struct frontend_list *frontends; /* as applied now; n == 0 when none */
};

struct output_ops {
	/*
	 * Applies a diff, atomically per frontend. Returns 0 or -errno; on
	 * failure the engine records nothing as applied and hands the same
	 * Services over again later. NULL: the output takes no diffs. Only
	 * the first output added may fail (it is the datapath): the engine
	 * stops at the first failure.
	 */
	int (*apply)(void *ctx, const struct state_diff *diff);
	/* After every output applied the diff: once per Service it covered. */
	void (*service_applied)(void *ctx, const struct service_applied *sa);
};

struct output {
	const char *name; /* for log lines, e.g. "datapath bpf" */
	const struct output_ops *ops;
	void *ctx;
};

#endif
