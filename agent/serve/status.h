/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agent's status under --status-dir (default /run/sluice, or
 * $SLUICE_STATUS_DIR), for sluicectl: status.json for the agent as a
 * whole, rewritten (to a temporary name, then renamed) after every sync so
 * that `sluicectl status` still answers once the agent stopped, and
 * agent.sock, where the running agent answers explain and services
 * (status_server.h). Per-Service documents are computed when asked, never
 * written: at 100k Services files cost seconds and hundreds of MiB.
 */
#ifndef SLUICE_STATUS_H
#define SLUICE_STATUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/engine.h"

#define STATUS_DEFAULT_DIR "/run/sluice"
#define STATUS_FILE "status.json"
#define STATUS_SOCKET "agent.sock"
/* Where versions before agent.sock wrote one file per Service: removed at start. */
#define STATUS_OLD_SERVICES_DIR "services"

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
	bool serving; /* agent.sock answers */
};

/* The directory: --status-dir if given, else $SLUICE_STATUS_DIR, else the default. */
const char *status_dir_default(const char *flag);
/*
 * Creates dir, and removes what older versions left there (services/, and
 * temporary files). Returns 0 or -errno (logged).
 */
int status_open(const char *dir, const struct engine *eng, struct status_publisher **out);
void status_close(struct status_publisher *p);
/* Rewrites status.json. Returns 0 or -errno (logged once per errno). */
int status_write_agent(struct status_publisher *p, const struct agent_status *st);
/* Removes status.json, agent.sock and the directories the agent made (--cleanup). */
int status_remove(const char *dir);

#endif
