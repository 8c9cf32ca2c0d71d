/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The datapath interface: open (or adopt) kernel state, apply a diff of
 * desired state atomically, read counters, close leaving the kernel state
 * in place, or clean up every trace. The implementations live in their own
 * folders and are listed once, in registry.c; everything else finds them
 * through the registry functions at the end of this header.
 */
#ifndef SLUICE_DATAPATH_H
#define SLUICE_DATAPATH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/output.h"
#include "core/state.h"

/* --xdp: the XDP program on the --devices, and in which mode (BPF only). */
enum datapath_xdp_mode {
	DATAPATH_XDP_OFF,
	DATAPATH_XDP_NATIVE, /* in the driver; generic where the driver has no XDP */
	DATAPATH_XDP_GENERIC, /* after the skb is built, on any device */
};

struct datapath_config {
	const char *bpffs; /* pin directory, e.g. /sys/fs/bpf/sluice */
	const char *cgroup; /* cgroup v2 directory for the socket hooks */
	const char *devices; /* comma-separated devices for the tc path, or NULL */
	const char *node_name;
	/*
	 * --max-services: Services the datapath's fixed-size tables hold (BPF:
	 * the per-Service maps; services and backends scale with it); the
	 * ones past it are logged and not programmed. 0: the default.
	 */
	uint32_t max_services;
	/* --maglev-table-size: entries of each Maglev frontend's table; 0: the default. */
	uint32_t maglev_table_size;
	/*
	 * --removed-backend-tcp=terminate: TCP connections to a backend that
	 * left its frontend are ended (socket destroyed, flow reset) instead
	 * of left alone as kube-proxy does.
	 */
	bool terminate_tcp;
	/*
	 * --max-connections: connections the tc path's table holds (two
	 * entries each, preallocated); 0: the default, SL_MAX_CONNTRACK / 2.
	 */
	uint32_t max_connections;
	/*
	 * --metrics-all-services: count every Service's flows where counting
	 * costs kernel objects per Service (nftables' refusal counters);
	 * otherwise only rate-limited Services'. BPF counts every Service.
	 */
	bool count_all_services;
	enum datapath_xdp_mode xdp; /* --xdp, with --devices only */
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

/*
 * What becomes of new flows to a Service, counted in the kernel (the
 * outcome label of sluice_service_flows_total; sluicectl top).
 */
enum flow_outcome {
	FLOW_ADMITTED, /* let through to a backend */
	FLOW_RATE_LIMITED, /* refused by the Service's rate limit */
	FLOW_NO_ENDPOINTS, /* refused: no usable endpoint (RST, port unreachable) */
	FLOW_POLICY_DROP, /* dropped: traffic policy Local, endpoints only elsewhere */
	FLOW_SOURCE_RANGE, /* dropped: client outside loadBalancerSourceRanges */
	FLOW_OUTCOMES
};

/* "admitted", "rate_limited", "no_endpoints", "policy_drop", "source_range". */
const char *flow_outcome_name(enum flow_outcome o);

/* One Service's flow counters, summed over CPUs, as the kernel holds them. */
struct flow_counters {
	char service[256]; /* "namespace/name" ("service-id N" if the name is gone) */
	uint32_t service_id; /* 0 where the kernel does not hold it (nftables) */
	struct rate_limit rate; /* count 0: no limit */
	uint64_t flows[FLOW_OUTCOMES];
	/* Bits 1 << FLOW_*: the outcomes this datapath counts for the Service. */
	uint32_t counted;
};

/* A table the kernel holds for this datapath, and how full it is. */
struct table_usage {
	const char *name; /* "services", "backends", "conntrack", ...: static */
	uint64_t entries;
	uint64_t capacity; /* 0: no fixed capacity */
};

/*
 * A kernel feature newer than the oldest supported kernel (Debian 12's
 * 6.1) that a datapath probed once at open: what it uses instead or not
 * (state) and why (reason). The agent logs one line per feature.
 */
#define DATAPATH_FEATURES_MAX 8
struct datapath_feature {
	char name[24]; /* "sock_destroy", "tcx", ... */
	char state[24]; /* what is used: "bpf_sock_destroy", "sock_diag", "clsact" */
	char reason[144];
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
	/*
	 * Removes everything this datapath ever put in the kernel. replaced:
	 * another datapath serves now, so what translates new flows goes
	 * first and what answers for flows already translated goes last.
	 */
	int (*cleanup)(const struct datapath_config *cfg, bool replaced);
	/*
	 * Another datapath serves now: keeps only what flows this one
	 * translated before need to finish (nothing that translates new
	 * ones), until cleanup. 0, or -errno. NULL: cleanup at once.
	 */
	int (*drain)(const struct datapath_config *cfg);
	/* True if there is state of this datapath in the kernel. */
	bool (*present)(const struct datapath_config *cfg);
	/*
	 * Reads every Service's rate-limit state from the kernel, without
	 * open (sluicectl runs beside the agent). *out is malloc'd, one entry
	 * per Service that has a limit or counters. Returns 0 or -errno.
	 */
	int (*read_stats)(const struct datapath_config *cfg, struct service_stats **out, size_t *n);
	/*
	 * Reads every Service's flow counters from the kernel, without open
	 * (the agent's /metrics and sluicectl alike: safe beside a running
	 * agent, from any process with the datapath's runtime_caps). *out is
	 * malloc'd, sorted by service, one entry per Service the kernel has
	 * counters or a name for; entries' counted says which outcomes are
	 * kept. Returns 0 (no state: *n = 0) or -errno.
	 */
	int (*read_flow_counters)(const struct datapath_config *cfg, struct flow_counters **out,
				  size_t *n);
	/*
	 * The kernel tables' occupancy against their capacity (connection
	 * table, maps), without open. *out is malloc'd. Returns 0 or -errno.
	 */
	int (*read_table_usage)(const struct datapath_config *cfg, struct table_usage **out,
				size_t *n);
	/*
	 * Prints every frontend and its backends as the kernel holds them
	 * (sluicectl services), without open. Returns 0, or nonzero after
	 * saying why on stderr. NULL: inspect_hint says where to look.
	 */
	int (*print_frontends)(const struct datapath_config *cfg, FILE *out);
	/*
	 * Optional: one line per device the datapath attached to and how
	 * (sluicectl status), from the kernel's state alone.
	 */
	int (*print_devices)(const struct datapath_config *cfg, FILE *out);
	/*
	 * Services not programmed for lack of room (past --max-services, or a
	 * full table), as the agent counted them at its last apply, read from
	 * the kernel without open (sluicectl, metrics). Returns 0 or -errno.
	 * NULL: the datapath has no such limit.
	 */
	int (*services_not_programmed)(const struct datapath_config *cfg, uint64_t *n);
	/*
	 * The features the agent in place probed at its open (at most max),
	 * read from the kernel without open (sluicectl features, status).
	 * Returns 0 or -errno. NULL: the datapath probes none.
	 */
	int (*read_features)(const struct datapath_config *cfg, struct datapath_feature *out,
			     size_t max, size_t *n);
	/* How people see this datapath's state, e.g. "nft list table inet sluice". */
	const char *inspect_hint;
	/*
	 * The capabilities, as bits 1 << CAP_* (lib/caps.h), that apply and
	 * close still need once open and the first apply are done: the agent
	 * drops every other (Documentation/security.md).
	 */
	uint64_t runtime_caps;
};

/* The implementations: for the registry, and for their own tests. */
extern const struct datapath_ops bpf_datapath_ops;
extern const struct datapath_ops nft_datapath_ops;

/* ---- the registry (registry.c) ---- */

/* An open datapath. */
struct datapath_handle {
	const struct datapath_ops *ops;
	struct datapath *dp;
	char output_name[32]; /* "datapath NAME", for the engine's log lines */
	/* --datapath=auto: why the ones tried first did not open ("" if none failed). */
	char fallback[512];
};

/* By name ("bpf", "nftables"); NULL if there is none of that name. */
const struct datapath_ops *datapath_find(const char *name);
/* The names, "bpf or nftables", for usage and error lines. */
const char *datapath_choices(void);
/*
 * Opens the named datapath, or with "auto" the first that opens, logging
 * one line for each that could not, with its reason. Returns 0 or -errno.
 */
int datapath_open_choice(const char *choice, const struct datapath_config *cfg,
			 struct datapath_handle *h);
/* Releases the handles; the kernel keeps serving. */
void datapath_close(struct datapath_handle *h);
/* The first datapath other than skip (may be NULL) whose state is in the kernel, or NULL. */
const struct datapath_ops *datapath_in_place(const struct datapath_config *cfg,
					     const struct datapath_ops *skip);
/*
 * Removes the state of every datapath but keep; with keep NULL, of every
 * one (--cleanup). Logs each failure; returns 0 or the first -errno.
 */
int datapath_cleanup_others(const struct datapath_ops *keep, const struct datapath_config *cfg);

/* The datapath as the engine's first output: ctx is a struct datapath_handle. */
extern const struct output_ops datapath_output_ops;

#endif
