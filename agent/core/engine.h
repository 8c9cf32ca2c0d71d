/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The engine: turns what changed in the store into a diff of desired state
 * and hands it to the datapath. Only Services whose inputs changed are
 * resolved again, so one change costs O(that Service).
 */
#ifndef SLUICE_ENGINE_H
#define SLUICE_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/node_ports.h"
#include "core/output.h"
#include "core/store.h"
#include "lib/strmap.h"

#define ENGINE_MAX_OUTPUTS 8

struct engine {
	struct store *store;
	const char *node_name;
	char *node_zone; /* this node's zone label as last seen */
	bool synced; /* the first (full) apply has succeeded */
	struct store_changes pending; /* taken from the store, not yet applied */
	/*
	 * service key -> struct engine_service * (its frontend_list first, so
	 * a value reads as the list applied; n == 0 when none): every Service
	 * with an id.
	 */
	struct strmap current;
	size_t n_services; /* of them with at least one frontend applied */
	struct strmap owners; /* frontend key text -> owning service key */
	struct strmap contenders; /* frontend key text -> a Service that lost it */
	/*
	 * Ids are reused, lowest first: ids below next_id are in use or in
	 * free_ids (a min-heap), so with at most N Services known at any
	 * time no id is above N and datapaths can index arrays by id.
	 */
	uint32_t next_id;
	uint32_t *free_ids;
	size_t n_free_ids, cap_free_ids;
	struct output outputs[ENGINE_MAX_OUTPUTS];
	size_t n_outputs;
	const struct node_port_spec *node_port_spec; /* --nodeport-addresses; NULL: all */
	struct node_port_addrs node_ports; /* what it gives for the Node as last seen */
	bool node_ports_dirty; /* not applied yet */
	bool dsr_default; /* --forwarding-mode=dsr */
	/* Other nodes' addresses as last seen ("v4 v6"), so that DSR follows a change. */
	struct strmap node_addrs;
	struct strmap node_unknown_logged; /* "name family": logged once */
	/* In the applied state, markers left out: for sluicectl status and metrics. */
	size_t n_frontends, n_backends;
};

/* What the engine keeps per Service. */
struct engine_service {
	struct frontend_list list; /* as applied */
	uint32_t id; /* stable while the Service exists or has frontends */
};

void engine_init(struct engine *eng, struct store *store, const char *node_name);
void engine_destroy(struct engine *eng);
/*
 * Adds an output (in order; the datapath first). name is kept, not copied.
 * Returns 0, or -ENOSPC past ENGINE_MAX_OUTPUTS.
 */
int engine_add_output(struct engine *eng, const char *name, const struct output_ops *ops,
		      void *ctx);
/*
 * --nodeport-addresses (kept, not copied; the default: every address). Set
 * before the first flush.
 */
void engine_set_node_ports(struct engine *eng, const struct node_port_spec *spec);
/* --forwarding-mode=dsr: Services without the annotation use DSR. Before the first flush. */
void engine_set_dsr_default(struct engine *eng, bool dsr);
/*
 * Resolves the changed Services and applies the difference to every output.
 * Returns 0, or the failing output's -errno; on failure nothing is recorded
 * as applied and the same Services are tried again on the next flush.
 */
int engine_flush(struct engine *eng);
/* Number of Services and Nodes that changed since the last successful flush. */
size_t engine_pending(const struct engine *eng);
/* Number of Services with at least one applied frontend. */
size_t engine_services(const struct engine *eng);
/* The frontends applied for Service key now; NULL if none. */
const struct frontend_list *engine_applied(const struct engine *eng, const char *key);
/* This node's zone label as the engine last saw it; NULL if none. */
const char *engine_node_zone(const struct engine *eng);

#endif
