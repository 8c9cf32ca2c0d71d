/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Map keys and values shared by the BPF programs and the agent. Only
 * fixed-width __uN types: this header is built both against vmlinux.h and
 * against the UAPI headers, so it must not use kernel-only types.
 */
#ifndef SLUICE_BPF_SHARED_H
#define SLUICE_BPF_SHARED_H

#define SL_AF_INET 2
#define SL_AF_INET6 10

/* Names under the bpffs directory (--bpffs). */
#define SL_PIN_MAPS_DIR "maps"
#define SL_PIN_LINKS_DIR "links"

#define SL_MAX_SERVICES 262144
#define SL_MAX_BACKEND_SLOTS 1048576
#define SL_MAX_REVNAT 262144
#define SL_MAX_AFFINITY 262144
#define SL_MAX_UDP_FLOWS 262144
/* Services (not frontends) with a bucket, counters or a name. */
#define SL_MAX_SERVICE_IDS 65536
#define SL_SERVICE_NAME_LEN 256

/* sl_service.action */
enum sl_action {
	SL_ACTION_SERVE = 0,
	SL_ACTION_REFUSE = 1,
	SL_ACTION_DROP = 2,
};

/*
 * Frontend: address (IPv4 in the first 4 bytes, rest zero), port in network
 * order, protocol. proto 0 / port 0 is the per-address marker that refuses
 * ports no other entry serves.
 */
struct sl_service_key {
	__u8 addr[16];
	__u16 port;
	__u8 proto;
	__u8 family;
};

struct sl_service {
	__u32 backend_set;	/* generation id of the backend slots in use */
	__u32 count;		/* number of slots 0..count-1 in that set */
	__u32 service_id;	/* per Service, shared by its ports (rate limits) */
	__u32 action;		/* enum sl_action */
	__u32 affinity_timeout; /* seconds, 0 = no session affinity */
	__u32 flags;		/* reserved, 0 */
	/* The Service's rate limit as GCRA parameters; interval 0 = no limit. */
	__u64 rate_interval_ns;	/* between two admitted flows at the steady rate */
	__u64 rate_depth_ns;	/* burst x interval: how far the TAT may run ahead */
};

/* Backend slot: slots of a set are written before the service entry points at the set. */
struct sl_backend_key {
	__u32 backend_set;
	__u32 slot;
};

struct sl_backend {
	__u8 addr[16];
	__u16 port;		/* network order */
	__u8 family;
	__u8 pad;
};

/*
 * Reverse translation for recvmsg/getpeername: per socket (cookie) and
 * backend address, the service address the application asked for.
 */
struct sl_revnat_key {
	__u64 cookie;
	__u8 addr[16];
	__u16 port;
	__u8 family;
	__u8 pad[5];
};

struct sl_revnat {
	__u8 addr[16];
	__u16 port;
	__u8 pad[6];
};

/*
 * Session affinity ClientIP: per frontend and client, the backend last
 * chosen. The client is the socket's bound source address if it has one,
 * else its network namespace (cookie): a pod is one netns and one IP.
 * Exactly one of client_addr and netns_cookie is non-zero.
 */
struct sl_affinity_key {
	struct sl_service_key frontend;
	__u8 client_addr[16];
	__u32 pad;
	__u64 netns_cookie;
};

/*
 * The remembered backend and its slot. The slot is looked up again on every
 * use and must still hold this address and port, so a removed backend is
 * never used (one hash lookup, as for a fresh pick).
 */
struct sl_affinity {
	__u8 addr[16];
	__u16 port;		/* network order */
	__u8 family;
	__u8 pad;
	__u32 slot;
	__u64 last_used_ns;	/* bpf_ktime_get_ns(), refreshed at most once a second */
};

/*
 * Unconnected UDP: per socket and frontend, the backend of the flow, so that
 * later datagrams go to the same backend and are not charged to the rate
 * limit again. Checked against the slot like sl_affinity.
 */
struct sl_flow_key {
	__u64 cookie;		/* bpf_get_socket_cookie() */
	struct sl_service_key frontend;
	__u32 pad;
};

struct sl_flow {
	__u8 addr[16];
	__u16 port;		/* network order */
	__u8 family;
	__u8 pad;
	__u32 slot;
};

/* Per Service (service_id): the GCRA theoretical arrival time of the next flow. */
struct sl_bucket {
	__u64 tat_ns;
};

/* Per Service and CPU (sum over CPUs): new flows let through and refused by the limit. */
struct sl_service_counters {
	__u64 admitted;
	__u64 limited;
};

/* Per Service, written by the agent for people: bpftool and sluicectl show names. */
struct sl_service_info {
	char name[SL_SERVICE_NAME_LEN]; /* "namespace/name" */
	__u32 rate_count;	/* flows per rate_period seconds; 0 = no limit */
	__u32 rate_period;
	__u32 rate_burst;
	__u32 pad;
	__u64 rate_interval_ns;
	__u64 rate_depth_ns;
};

#endif
