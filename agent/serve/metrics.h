/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agent's /metrics (--metrics-addr): kube-proxy's sync metrics under
 * their names, and Sluice's own (datapath, flows per Service by outcome
 * from the kernel counters, table occupancy, rejected inputs). Served by
 * libmicrohttpd without a thread of its own: the main loop polls
 * metrics_fd() and calls metrics_run(), so reading the kernel counters
 * needs no capability beyond what the main thread keeps, and the agent's
 * own values need no lock.
 */
#ifndef SLUICE_METRICS_H
#define SLUICE_METRICS_H

#include <stdbool.h>
#include <stddef.h>

#include "core/engine.h"
#include "core/store.h"
#include "datapath/datapath.h"
#include "serve/healthz.h"
#include "source/source.h"

struct metrics;

/* Where the values come from; kept, not copied. */
struct metrics_sources {
	const struct datapath_ops *dp_ops;
	const struct datapath_config *dp_cfg;
	const char *fallback_why; /* "" or NULL: --datapath was not auto-fallen back */
	const struct store *store;
	struct source *source;
	struct healthz_server *healthz; /* may be NULL */
	const struct engine *engine; /* may be NULL */
	/* --metrics-all-services: a series per Service, not only rate-limited ones. */
	bool all_services;
};

/* The metrics without a server (metrics_render only): for tests, and before listening. */
struct metrics *metrics_new(const struct metrics_sources *src);
/* Listens on addr (HOST:PORT). Returns 0 or -1 (one line logged). */
int metrics_listen(struct metrics *m, const char *addr);
/* The descriptor to poll for POLLIN (-1 if not listening), and the longest wait (ms, -1: none). */
int metrics_fd(const struct metrics *m);
int metrics_timeout_ms(const struct metrics *m);
/* Serves what is ready; call when metrics_fd is readable or its timeout passed. */
void metrics_run(struct metrics *m);
void metrics_free(struct metrics *m);

/* One engine flush that applied changes: full (the first) or partial, and how long it took. */
void metrics_observe_sync(struct metrics *m, bool full, double seconds, double now);
/* A change was queued at now (kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds). */
void metrics_queued(struct metrics *m, double now);
/* A change triggered at trigger_time reached the datapath at now. */
void metrics_observe_programming(struct metrics *m, double seconds);

/* The whole exposition, as /metrics answers it; *out is malloc'd. */
char *metrics_render(struct metrics *m, size_t *len);

#endif
