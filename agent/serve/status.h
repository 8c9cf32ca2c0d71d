/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agent's status files under --status-dir (default /run/sluice, or
 * $SLUICE_STATUS_DIR), read by sluicectl: status.json for the agent as a
 * whole, rewritten after every sync, and services/NAMESPACE/NAME.json per
 * Service, written only for the Services a sync covered, from a queue that
 * the event loop drains within a time budget so that publishing never
 * delays an apply. Every file is written to a temporary name and renamed.
 */
#ifndef SLUICE_STATUS_H
#define SLUICE_STATUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/engine.h"
#include "core/output.h"
#include "core/store.h"

#define STATUS_DEFAULT_DIR "/run/sluice"
#define STATUS_FILE "status.json"
#define STATUS_SERVICES_DIR "services"

struct status_publisher;

/* What status.json says about the agent (strings are copied as written). */
struct agent_status {
	const char *version, *node, *source;
	const char *datapath, *requested; /* in use; --datapath */
	const char *fallback; /* why auto did not take the ones before, "" if none */
	const char *bpffs, *cgroup;
	double started, last_sync, last_full_sync; /* seconds since the epoch; 0: never */
	double last_attempt; /* the last flush, successful or not */
	int last_error; /* -errno of the last flush, 0 */
	uint64_t syncs, failed_syncs;
	size_t services, frontends, backends, rejected;
	uint64_t not_programmed;
	bool synced;
};

/* The directory: --status-dir if given, else $SLUICE_STATUS_DIR, else the default. */
const char *status_dir_default(const char *flag);
/*
 * Creates dir and dir/services and notes the Service files already there, to
 * remove those of Services that are gone once the first sync is published.
 * Returns 0 or -errno (logged).
 */
int status_open(const char *dir, const struct store *store, const struct engine *eng,
		struct status_publisher **out);
void status_close(struct status_publisher *p);
/* The engine output (ctx: the publisher): queues each Service a sync covered. */
extern const struct output_ops status_output_ops;
/*
 * Writes queued Service files for at most budget_ms (< 0: all of them).
 * Returns how many are still queued.
 */
size_t status_publish(struct status_publisher *p, int budget_ms);
/* How many Service files are queued. */
size_t status_queued(const struct status_publisher *p);
/* Rewrites status.json. Returns 0 or -errno (logged once per errno). */
int status_write_agent(struct status_publisher *p, const struct agent_status *st);
/* Removes every status file and the directories the agent made (--cleanup). */
int status_remove(const char *dir);

#endif
