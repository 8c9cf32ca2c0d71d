/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The datapath interface: open (or adopt) kernel state, apply a diff of
 * desired state atomically, read counters, close leaving the kernel state
 * in place, or clean up every trace. Two implementations: bpf and nftables.
 */
#ifndef SLUICE_DATAPATH_H
#define SLUICE_DATAPATH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/state.h"

struct datapath_config {
	const char *bpffs; /* pin directory, e.g. /sys/fs/bpf/sluice */
	const char *cgroup; /* cgroup v2 directory for the socket hooks */
	const char *devices; /* comma-separated devices for the tc path, or NULL */
	const char *node_name;
};

struct datapath;

/* Per-Service rate-limit state, as the kernel holds it (for sluicectl and metrics). */
struct service_stats {
	char service[256]; /* "namespace/name" */
	uint32_t service_id;
	struct rate_limit rate; /* count 0: no limit */
	uint64_t admitted; /* new flows let through */
	uint64_t limited; /* new flows refused by the limit */
};

struct datapath_ops {
	const char *name;
	/*
	 * Opens the datapath, adopting pinned or existing state. On failure
	 * returns -errno and writes one human-readable reason into why.
	 */
	int (*open)(const struct datapath_config *cfg, struct datapath **out, char *why,
		    size_t why_len);
	/* Applies a diff atomically with respect to every single frontend. */
	int (*apply)(struct datapath *dp, const struct state_diff *diff);
	/* Releases the agent's handles; the kernel keeps serving. */
	void (*close)(struct datapath *dp);
	/* Removes everything this datapath ever put in the kernel. */
	int (*cleanup)(const struct datapath_config *cfg);
	/* True if there is state of this datapath in the kernel. */
	bool (*present)(const struct datapath_config *cfg);
	/*
	 * Reads every Service's rate-limit state from the kernel, without
	 * open (sluicectl runs beside the agent). *out is malloc'd, one entry
	 * per Service that has a limit or counters. Returns 0 or -errno.
	 */
	int (*read_stats)(const struct datapath_config *cfg, struct service_stats **out, size_t *n);
};

extern const struct datapath_ops bpf_datapath_ops;
extern const struct datapath_ops nft_datapath_ops;

#endif
