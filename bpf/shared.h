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

#endif
