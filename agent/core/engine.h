/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The engine: turns what changed in the store into a diff of desired state
 * and hands it to the datapath. Only Services whose inputs changed are
 * resolved again, so one change costs O(that Service).
 */
#ifndef SLUICE_ENGINE_H
#define SLUICE_ENGINE_H

#include <stdbool.h>
#include <stdint.h>

#include "datapath/datapath.h"
#include "serve/health_nodeport.h"
#include "core/store.h"
#include "lib/strmap.h"

struct engine {
	struct store *store;
	const struct datapath_ops *ops;
	struct datapath *dp;
	const char *node_name;
	char *node_zone; /* this node's zone label as last seen */
	bool synced; /* the first (full) apply has succeeded */
	struct strmap current; /* service key -> struct frontend_list *, as applied */
	struct strmap owners; /* frontend key text -> owning service key */
	struct strmap ids; /* service key -> service id */
	uint32_t next_id;
	struct hc_servers health_checks; /* healthCheckNodePort servers */
};

void engine_init(struct engine *eng, struct store *store, const struct datapath_ops *ops,
		 struct datapath *dp, const char *node_name);
void engine_destroy(struct engine *eng);
/*
 * Resolves the dirty Services and applies the difference. Returns 0, or the
 * datapath's -errno; on failure nothing is recorded as applied and the same
 * Services are tried again on the next flush.
 */
int engine_flush(struct engine *eng);
/* Number of Services and Nodes that changed since the last successful flush. */
size_t engine_pending(const struct engine *eng);

#endif
