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

/*
 * Sizes that scale with the agent's --max-services=N (set before load with
 * bpf_map__set_max_entries; the values here are the object's defaults, for
 * N = SL_DEFAULT_MAX_SERVICES): the per-Service maps (service_info,
 * rate_buckets, service_counters) hold N entries, services N x
 * SL_FRONTENDS_PER_SERVICE frontends, backends N x SL_SLOTS_PER_SERVICE
 * slots. 131072 serves the target of 100k Services x 10 endpoints with
 * room: 200k frontends (a ClusterIP port and its marker each) of 262144,
 * 1M slots of 2M.
 */
#define SL_DEFAULT_MAX_SERVICES 131072
#define SL_FRONTENDS_PER_SERVICE 2
#define SL_SLOTS_PER_SERVICE 16
#define SL_MAX_SERVICES (SL_DEFAULT_MAX_SERVICES * SL_FRONTENDS_PER_SERVICE)
#define SL_MAX_BACKEND_SLOTS (SL_DEFAULT_MAX_SERVICES * SL_SLOTS_PER_SERVICE)
#define SL_MAX_REVNAT 262144
#define SL_MAX_AFFINITY 262144
#define SL_MAX_UDP_FLOWS 262144
/* Services (not frontends) with a bucket, counters or a name. */
#define SL_MAX_SERVICE_IDS SL_DEFAULT_MAX_SERVICES
#define SL_SERVICE_NAME_LEN 256
/* tc path: tracked connections (two entries each), node addresses, source ranges. */
#define SL_MAX_CONNTRACK 262144
#define SL_MAX_NODE_ADDRS 1024
#define SL_MAX_SOURCE_RANGES 65536

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
	__u32 backend_set; /* generation id of the backend slots in use */
	__u32 count; /* number of slots 0..count-1 in that set */
	__u32 service_id; /* per Service, shared by its ports (rate limits) */
	__u32 action; /* enum sl_action */
	__u32 affinity_timeout; /* seconds, 0 = no session affinity */
	__u32 flags; /* SL_SVC_KIND_MASK: enum sl_kind; SL_SVC_F_*: below */
	/* The Service's rate limit as GCRA parameters; interval 0 = no limit. */
	__u64 rate_interval_ns; /* between two admitted flows at the steady rate */
	__u64 rate_depth_ns; /* burst x interval: how far the TAT may run ahead */
	/*
	 * SL_SVC_F_NODE_SET: the set the socket path (traffic born on the
	 * node) uses instead of backend_set/count/action: the cluster-wide
	 * one, serve if node_count > 0, else refuse.
	 */
	__u32 node_set;
	__u32 node_count;
};

/* sl_service.flags: the frontend's kind in the low bits, then properties. */
enum sl_kind {
	SL_KIND_CLUSTER_IP = 0, /* socket path only */
	SL_KIND_EXTERNAL_IP = 1, /* spec.externalIPs: tc and socket path */
	SL_KIND_LB_INGRESS = 2, /* status.loadBalancer.ingress: tc and socket path */
	SL_KIND_NODE_PORT = 3, /* addr all zero: any address of node_addrs */
};
#define SL_SVC_KIND_MASK 0xfu
/* externalTrafficPolicy Local: keep the client's address, no SNAT. */
#define SL_SVC_F_PRESERVE_SOURCE (1u << 8)
/* loadBalancerSourceRanges: only clients in source_ranges may connect. */
#define SL_SVC_F_SOURCE_RANGES (1u << 9)
/* externalTrafficPolicy Local, external kinds: node_set serves traffic born on the node. */
#define SL_SVC_F_NODE_SET (1u << 10)
/*
 * sluice.io/forwarding-mode dsr (external kinds, Cluster policy): a backend
 * on another node (dsr_nodes) gets the flow encapsulated, and replies
 * directly (bpf/lib/dsr.h).
 */
#define SL_SVC_F_DSR (1u << 11)
/* sluice.io/lb-algorithm maglev: the tc path picks by maps/maglev's table (bpf/lib/maglev.h). */
#define SL_SVC_F_MAGLEV (1u << 12)

/*
 * maps/maglev: per backend set, an array of 1 + M words: word 0 is the
 * table size M (a prime, --maglev-table-size), words 1..M the slot of the
 * set that each table entry names. Inner arrays of any M (BPF_F_INNER_MAP).
 */
#define SL_MAGLEV_DEFAULT_SIZE 16381

/* Backend slot: slots of a set are written before the service entry points at the set. */
struct sl_backend_key {
	__u32 backend_set;
	__u32 slot;
};

struct sl_backend {
	__u8 addr[16];
	__u16 port; /* network order */
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
	__u16 port; /* network order */
	__u8 family;
	__u8 pad;
	__u32 slot;
	__u64 last_used_ns; /* bpf_ktime_get_ns(), refreshed at most once a second */
};

/*
 * Unconnected UDP: per socket and frontend, the backend of the flow, so that
 * later datagrams go to the same backend and are not charged to the rate
 * limit again. Checked against the slot like sl_affinity.
 */
struct sl_flow_key {
	__u64 cookie; /* bpf_get_socket_cookie() */
	struct sl_service_key frontend;
	__u32 pad;
};

struct sl_flow {
	__u8 addr[16];
	__u16 port; /* network order */
	__u8 family;
	__u8 pad;
	__u32 slot;
};

/*
 * A backend that left a frontend's set, written by the agent for one run
 * of the socket iterators (bpf/sock_destroy.bpf.c), which destroy the
 * node's sockets translated from that frontend to that backend: connected
 * UDP always, TCP with --removed-backend-tcp=terminate. Not pinned: the
 * agent's own.
 */
#define SL_SOCK_GONE_MAX 4096

struct sl_sock_gone_key {
	__u8 frontend_addr[16]; /* the unspecified address for a NodePort */
	__u8 backend_addr[16];
	__u16 frontend_port; /* network order */
	__u16 backend_port; /* network order */
	__u8 family;
	__u8 proto; /* SL_IPPROTO_UDP or SL_IPPROTO_TCP */
	__u8 pad[2];
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

/*
 * Per Service and CPU (sum over CPUs): new flows refused for a reason other
 * than the rate limit. A map of its own beside service_counters, so that
 * pins of an older agent are adopted as they are; only refused flows touch
 * it, so the admitted path pays nothing more.
 */
struct sl_service_refused {
	__u64 no_endpoints; /* no usable endpoint: refused (RST, ECONNREFUSED) */
	__u64 policy_drop; /* Local policy, endpoints only elsewhere: dropped */
	__u64 source_range; /* client outside loadBalancerSourceRanges: dropped (tc) */
};

enum sl_refused_reason {
	SL_REFUSED_NO_ENDPOINTS = 0,
	SL_REFUSED_POLICY_DROP = 1,
	SL_REFUSED_SOURCE_RANGE = 2,
};

/* Per Service, written by the agent for people: bpftool and sluicectl show names. */
struct sl_service_info {
	char name[SL_SERVICE_NAME_LEN]; /* "namespace/name" */
	__u32 rate_count; /* flows per rate_period seconds; 0 = no limit */
	__u32 rate_period;
	__u32 rate_burst;
	__u32 pad;
	__u64 rate_interval_ns;
	__u64 rate_depth_ns;
};

/*
 * The agent's own state, for people (bpftool, sluicectl) and metrics: one
 * entry, key 0, written by the agent after each apply. The programs never
 * read it.
 */
struct sl_agent_state {
	__u32 max_services; /* --max-services of the agent that wrote it */
	/* Services with frontends the maps have no room for (logged, retried). */
	__u32 services_not_programmed;
};

/*
 * maps/features: the kernel features the agent probed at open (one entry
 * each, key 0..SL_FEATURES_MAX-1, an empty name ends the list), what it
 * chose and why, for sluicectl and bpftool. The programs never read it.
 */
#define SL_FEATURES_MAX 8
#define SL_FEATURE_NAME_LEN 24
#define SL_FEATURE_STATE_LEN 24
#define SL_FEATURE_REASON_LEN 144

struct sl_feature {
	char name[SL_FEATURE_NAME_LEN]; /* e.g. "sock_destroy" */
	char state[SL_FEATURE_STATE_LEN]; /* what is used: "sock_diag" */
	char reason[SL_FEATURE_REASON_LEN]; /* why, naming the kernel version */
};

/*
 * An address of this node (any device), for both paths. The value says
 * whether NodePort frontends match packets to it (--nodeport-addresses);
 * either way the tc path may SNAT with it.
 */
#define SL_NODE_ADDR_NODE_PORT 1u /* NodePorts answer here (older agents wrote 1 for all) */
#define SL_NODE_ADDR_OTHER 2u /* an address of the node only */

struct sl_node_addr_key {
	__u8 addr[16];
	__u8 family;
	__u8 pad[3];
};

/* The address a device's SNAT uses: per egress ifindex and family. */
struct sl_dev_addr_key {
	__u32 ifindex;
	__u8 family;
	__u8 pad[3];
};

struct sl_dev_addr {
	__u8 addr[16];
};

/*
 * loadBalancerSourceRanges, an LPM trie: prefixlen = 160 (the frontend, a
 * whole sl_service_key) + the range's prefix length over client[].
 */
struct sl_source_range_key {
	__u32 prefixlen;
	struct sl_service_key frontend;
	__u8 client[16];
};

/*
 * Direct server return: per backend (pod) address on another node, the
 * address of that node, the outer destination of the encapsulation.
 * Written by the agent for the backends of DSR Services whose node's
 * address it knows (the Node object); IPv4 only.
 */
#define SL_MAX_DSR_BACKENDS 65536

struct sl_dsr_backend_key {
	__u8 addr[16];
	__u8 family;
	__u8 pad[3];
};

struct sl_dsr_node {
	__u8 node_addr[16];
};

/*
 * A device the agent attached the tc programs to, by ifindex: cleanup
 * removes the clsact qdisc only where the agent created it.
 */
#define SL_TC_DEV_F_QDISC_OURS (1u << 0)

struct sl_tc_device {
	char name[16];
	__u32 flags; /* SL_TC_DEV_F_* */
};

/*
 * A tracked connection of the tc path: the tuple of a packet as it arrives
 * (before translation). Every connection has two entries, one per
 * direction, each saying how to rewrite the packets that match it.
 */
struct sl_ct_key {
	__u8 saddr[16];
	__u8 daddr[16];
	__u16 sport; /* network order */
	__u16 dport; /* network order */
	__u8 proto;
	__u8 family;
	__u8 pad[2];
};

/* sl_ct.flags */
#define SL_CT_F_REPLY (1u << 0) /* the backend -> client direction */
#define SL_CT_F_CLOSING (1u << 1) /* TCP FIN or RST seen: short timeout */
#define SL_CT_F_SNAT (1u << 2) /* source rewritten (externalTrafficPolicy Cluster) */
#define SL_CT_F_NODE_PORT (1u << 3) /* forward: the frontend is {unspecified addr, dport} */
#define SL_CT_F_LOCAL_OUT (1u << 4) /* forward: born on the node, seen on egress (SCTP) */
/*
 * Direct server return (bpf/lib/dsr.h). Forward, on the ingress node: the
 * packet is DNATed, its source kept, and encapsulated to the backend's
 * node, whose address new_saddr holds (not a rewrite). Reply, on the
 * backend's node: written by the decapsulation, it rewrites the backend's
 * replies to the service address; it has no forward entry beside it.
 */
#define SL_CT_F_DSR (1u << 5)

/* sl_ct.slot when the backend's slot does not fit 16 bits: found by a scan. */
#define SL_CT_SLOT_UNKNOWN 0xffffu

/*
 * What a matching packet becomes; the other direction's key is this tuple
 * reversed. Forward entries also remember the frontend's backend set and
 * the backend's slot in it when the backend was chosen, so that a UDP flow
 * whose backend left the set is balanced again (tc.bpf.c). The layout
 * keeps the size of the one before (flags were 32 bits, backend_set was
 * padding), so an upgrade adopts the table: an entry with backend_set 0
 * is checked by its backend, as after a set change.
 */
struct sl_ct {
	__u8 new_saddr[16];
	__u8 new_daddr[16];
	__u16 new_sport; /* network order */
	__u16 new_dport; /* network order */
	__u16 flags; /* SL_CT_F_* */
	__u16 slot; /* forward: the backend's slot in backend_set */
	__u32 service_id;
	__u32 backend_set; /* forward: the frontend's set when the backend was chosen */
	__u64 last_seen_ns; /* bpf_ktime_get_ns(), refreshed at most once a second */
};

#endif
