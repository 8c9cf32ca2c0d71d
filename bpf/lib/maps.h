/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The maps of the socket datapath, each with the BTF key/value types of
 * shared.h so that `bpftool map dump` prints field names. The agent pins
 * them under <bpffs>/maps/<name>; the tc object (bpf/tc.bpf.c) includes
 * this header too and reuses the same pins, so one bucket, one affinity
 * table and one set of counters serve both paths.
 */
#ifndef SLUICE_BPF_MAPS_H
#define SLUICE_BPF_MAPS_H

#include "shared.h"

/* Frontend {addr, port, proto, family} -> what to do and which backend set. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct sl_service_key);
	__type(value, struct sl_service);
	__uint(max_entries, SL_MAX_SERVICES);
} services SEC(".maps");

/* {backend set, slot} -> backend; sets come and go, so no preallocation. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct sl_backend_key);
	__type(value, struct sl_backend);
	__uint(max_entries, SL_MAX_BACKEND_SLOTS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} backends SEC(".maps");

/*
 * backend set -> its Maglev table (shared.h), for frontends with
 * SL_SVC_F_MAGLEV only: no table is preallocated for other Services. Room
 * for two sets per frontend: the old one's and the new one's mid-update.
 */
struct sl_maglev_table {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, SL_MAGLEV_DEFAULT_SIZE + 1);
	__uint(map_flags, BPF_F_INNER_MAP);
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__type(key, __u32);
	__uint(max_entries, 2 * SL_MAX_SERVICES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__array(values, struct sl_maglev_table);
} maglev SEC(".maps");

/* {socket cookie, backend addr, port} -> service addr, port; entries age out by LRU. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct sl_revnat_key);
	__type(value, struct sl_revnat);
	__uint(max_entries, SL_MAX_REVNAT);
} revnat SEC(".maps");

/* {frontend, client} -> backend for session affinity ClientIP; idle entries age out by LRU. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct sl_affinity_key);
	__type(value, struct sl_affinity);
	__uint(max_entries, SL_MAX_AFFINITY);
} affinity SEC(".maps");

/* {socket cookie, frontend} -> backend of an unconnected UDP flow. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct sl_flow_key);
	__type(value, struct sl_flow);
	__uint(max_entries, SL_MAX_UDP_FLOWS);
} udp_flows SEC(".maps");

/* service_id -> GCRA bucket word, updated by compare-and-swap from every CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct sl_bucket);
	__uint(max_entries, SL_MAX_SERVICE_IDS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} rate_buckets SEC(".maps");

/* service_id -> admitted / limited new flows, per CPU (readers sum). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__type(key, __u32);
	__type(value, struct sl_service_counters);
	__uint(max_entries, SL_MAX_SERVICE_IDS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} service_counters SEC(".maps");

/* service_id -> new flows refused by reason (no endpoints, policy, source range), per CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__type(key, __u32);
	__type(value, struct sl_service_refused);
	__uint(max_entries, SL_MAX_SERVICE_IDS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} service_refused SEC(".maps");

/* service_id -> name and rate limit, written by the agent only, for people. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct sl_service_info);
	__uint(max_entries, SL_MAX_SERVICE_IDS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} service_info SEC(".maps");

/* 0 -> the agent's own state (Services not programmed), for people; the programs never read it. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct sl_agent_state);
	__uint(max_entries, 1);
} agent_state SEC(".maps");

/* Kernel features probed by the agent at open, for people; the programs never read it. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct sl_feature);
	__uint(max_entries, SL_FEATURES_MAX);
} features SEC(".maps");

/* Addresses of this node (every device): SL_NODE_ADDR_*, NodePorts answer on some. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct sl_node_addr_key);
	__type(value, __u32);
	__uint(max_entries, SL_MAX_NODE_ADDRS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} node_addrs SEC(".maps");

/* {ifindex, family} -> the address SNAT uses for flows leaving through that device. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct sl_dev_addr_key);
	__type(value, struct sl_dev_addr);
	__uint(max_entries, SL_MAX_NODE_ADDRS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} dev_addrs SEC(".maps");

/* {frontend, client prefix} -> 1: loadBalancerSourceRanges of LB frontends. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct sl_source_range_key);
	__type(value, __u32);
	__uint(max_entries, SL_MAX_SOURCE_RANGES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} source_ranges SEC(".maps");

#endif
