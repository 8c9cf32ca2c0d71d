/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The datapath interface: open (or adopt) kernel state, apply a diff of
 * desired state atomically, read counters, close leaving the kernel state
 * in place, or clean up every trace. Two implementations: bpf and nftables.
 */
#ifndef SLUICE_DATAPATH_H
#define SLUICE_DATAPATH_H

#include <stddef.h>

#include "state.h"

struct datapath_config {
	const char *bpffs;	/* pin directory, e.g. /sys/fs/bpf/sluice */
	const char *cgroup;	/* cgroup v2 directory for the socket hooks */
	const char *devices;	/* comma-separated devices for the tc path, or NULL */
	const char *node_name;
};

struct datapath;

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
};

extern const struct datapath_ops bpf_datapath_ops;
extern const struct datapath_ops nft_datapath_ops;

#endif
