/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Internal to the BPF datapath (agent/datapath/bpf/): the open datapath's
 * state, where the pins live, and the entry points each file provides to
 * the bpf_datapath_ops table in datapath_bpf.c.
 */
#ifndef SLUICE_BPF_DATAPATH_H
#define SLUICE_BPF_DATAPATH_H

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <linux/types.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "datapath/datapath.h"
#include "lib/xalloc.h"
#include "shared.h"
#include "sock.skel.h"

#define SL_DEFAULT_BPFFS "/sys/fs/bpf/sluice"

struct bpf_set_checks;

/* A backend set no entry names any more, its slots deleted at the next apply. */
struct bpf_retired_set {
	__u32 set, count;
};

struct datapath {
	struct sock_bpf *skel;
	struct tc_datapath *tc; /* NULL without --devices */
	struct sock_destroyer *udp; /* connected UDP sockets of removed backends */
	struct bpf_dsr *dsr; /* dsr_nodes references (bpf_dsr.c); NULL until needed */
	int cgroup_fd;
	struct bpf_link **links; /* one per program, in object order */
	size_t n_links;
	__u32 next_set; /* next backend set id; 0 is never used */
	__u32 max_services; /* --max-services: Services with per-Service entries, at most */
	__u32 maglev_size; /* --maglev-table-size; 0: the default */
	/*
	 * Per service_id of a Service that holds a place (a service_info
	 * entry): its frontends, programmed or waiting for room. The
	 * Service's entries go with the last one.
	 */
	__u32 *frontends_of;
	size_t n_frontends_of;
	size_t n_placed; /* Services with frontends_of[id] > 0 (<= max_services) */
	/*
	 * Per service_id: the Service's desired frontends that the maps have
	 * no room for (bpf_pending.c), retried at each apply. A Service with
	 * no place has all its frontends here and none in the kernel.
	 */
	struct bpf_pending **pending;
	size_t n_pending_ids; /* length of pending[] */
	size_t n_unprogrammed; /* Services with a pending entry */
	long long published; /* n_unprogrammed as last written to agent_state; -1: never */
	struct node_port_addrs node_ports; /* as the last apply carried them */
	bool have_node_ports; /* false until an apply carried them */
	struct datapath_feature features[DATAPATH_FEATURES_MAX]; /* probed at open */
	size_t n_features;
	/*
	 * During a full apply (bpf_adopt.c): whether the services map was
	 * empty before it, and which backend sets already hold what their
	 * frontend wants (both maps read in batches); NULL otherwise.
	 */
	bool services_empty;
	const struct bpf_set_checks *set_checks;
	/*
	 * Backend sets an entry named until the last apply. A program that
	 * read the old entry may still look their slots up (a missing slot
	 * refuses the connection), so they go at the start of the next apply,
	 * which the agent's burst interval keeps at least 20 ms away.
	 */
	struct bpf_retired_set *retired;
	size_t n_retired, cap_retired;
	char bpffs[PATH_MAX];
};

/* A Service's frontends waiting for room, deep copies (bpf_pending.c). */
struct bpf_pending {
	struct frontend *fes;
	size_t n, cap;
};

/* ---- the map entries of the model's frontends and backends ---- */

static inline __u8 sl_family(uint8_t family)
{
	return family == AF_INET ? SL_AF_INET : SL_AF_INET6;
}

static inline void bpf_service_key_of(const struct frontend_key *fk, struct sl_service_key *key)
{
	memset(key, 0, sizeof(*key));
	memcpy(key->addr, fk->addr.bytes, fk->addr.family == AF_INET ? 4 : 16);
	key->port = htons(fk->port);
	key->proto = fk->proto;
	key->family = sl_family(fk->addr.family);
}

static inline void bpf_backend_of(const struct backend *b, struct sl_backend *out)
{
	memset(out, 0, sizeof(*out));
	memcpy(out->addr, b->addr.bytes, b->addr.family == AF_INET ? 4 : 16);
	out->port = htons(b->port);
	out->family = sl_family(b->addr.family);
}

/* The backends of fe that match its family: a v6 backend cannot serve a v4 frontend. */
static inline bool bpf_backend_usable(const struct frontend *fe, const struct backend *b)
{
	return b->addr.family == fe->key.addr.family;
}

/* The sizes --max-services gives (0: the default). */
static inline __u32 bpf_max_services(const struct datapath_config *cfg)
{
	return cfg && cfg->max_services ? cfg->max_services : SL_DEFAULT_MAX_SERVICES;
}

static inline const char *bpffs_dir(const struct datapath_config *cfg)
{
	return cfg && cfg->bpffs && *cfg->bpffs ? cfg->bpffs : SL_DEFAULT_BPFFS;
}

static inline int join(char *out, const char *dir, const char *sub, const char *name)
{
	int n;

	if (name)
		n = snprintf(out, PATH_MAX, "%s/%s/%s", dir, sub, name);
	else
		n = snprintf(out, PATH_MAX, "%s/%s", dir, sub);
	return n < 0 || n >= PATH_MAX ? -ENAMETOOLONG : 0;
}

/*
 * The fd of the map pinned as name under cfg's pin directory, or -errno;
 * path (PATH_MAX bytes) gets the pin's path, for messages.
 */
static inline int open_pin(const struct datapath_config *cfg, const char *name, char *path)
{
	int fd;

	if (join(path, bpffs_dir(cfg), SL_PIN_MAPS_DIR, name))
		return -ENAMETOOLONG;
	fd = bpf_obj_get(path);
	return fd < 0 ? -errno : fd;
}

/* Grows *arr (elements of size sz) so that it holds at least n + 1. */
static inline void grow(void **arr, size_t *cap, size_t n, size_t sz)
{
	if (n < *cap)
		return;
	*cap = *cap ? *cap * 2 : 256;
	*arr = xreallocarray(*arr, *cap, sz);
}

/* bpf_open.c: pin directories, cgroup, maps and links; adoption of pins. */
int bpf_open(const struct datapath_config *cfg, struct datapath **out, char *why, size_t why_len);
void bpf_close(struct datapath *dp);
/* bpf_apply.c: a diff into the maps. */
int bpf_apply(struct datapath *dp, const struct state_diff *diff);
/* bpf_stats.c: per-Service counters from the pins alone. */
int bpf_read_stats(const struct datapath_config *cfg, struct service_stats **out, size_t *n_out);
/* bpf_flows.c: flow counters by outcome, and map occupancy, from the pins alone. */
int bpf_read_flow_counters(const struct datapath_config *cfg, struct flow_counters **out,
			   size_t *n_out);
int bpf_read_table_usage(const struct datapath_config *cfg, struct table_usage **out, size_t *n);
/* bpf_stats.c: agent_state from its pin (n: Services not programmed). */
int bpf_read_agent_state(const struct datapath_config *cfg, struct sl_agent_state *out);
int bpf_services_not_programmed(const struct datapath_config *cfg, uint64_t *n);
/*
 * bpf_open.c: sets max_entries of every map of obj that --max-services
 * scales (the socket object's and the tc object's, so that both reuse the
 * same pins). Before load.
 */
int bpf_size_maps(struct bpf_object *obj, __u32 max_services);
/* bpf_pending.c: the frontends waiting for room, per service_id. */
struct bpf_pending *bpf_pending_of(const struct datapath *dp, __u32 id);
/* Keeps a copy of fe (replacing one of the same key); true if its Service had none. */
bool bpf_pending_put(struct datapath *dp, const struct frontend *fe);
/* Drops the copy of the frontend key of Service id; true if that was its last one. */
bool bpf_pending_del(struct datapath *dp, __u32 id, const struct frontend_key *key);
/* Drops every copy (a full apply starts over). */
void bpf_pending_clear(struct datapath *dp);

#endif
