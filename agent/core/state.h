/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Desired state: what the datapath must do for each frontend (service
 * address, protocol, port), as the resolver computes it, and the diff
 * between two such states that the datapath applies.
 */
#ifndef SLUICE_STATE_H
#define SLUICE_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/addr.h"
#include "core/node_ports.h"
#include "core/ratelimit.h"

enum frontend_kind {
	FE_CLUSTER_IP,
	FE_EXTERNAL_IP,
	FE_LB_INGRESS,
	FE_NODE_PORT,
};

/* What a packet or connect() to the frontend gets. */
enum frontend_action {
	FE_SERVE, /* pick a backend */
	FE_REFUSE, /* no usable endpoint: ECONNREFUSED / TCP RST / ICMP unreachable */
	FE_DROP, /* Local policy and endpoints only on other nodes: drop silently */
};

/* Why these backends were chosen (design.md section 4), for sluicectl and logs. */
enum backend_choice {
	CHOICE_NONE, /* no usable endpoint */
	CHOICE_CLUSTER, /* all ready endpoints, no topology mode */
	CHOICE_ZONE, /* ready endpoints hinted for this node's zone */
	CHOICE_NODE, /* ready endpoints hinted for this node */
	CHOICE_TERMINATING, /* no ready endpoint: serving-and-terminating ones */
	CHOICE_LOCAL, /* traffic policy Local: this node's ready endpoints */
	CHOICE_LOCAL_TERMINATING, /* Local, no ready local one: local terminating ones */
};

struct backend {
	struct ip_addr addr;
	uint16_t port;
};

/*
 * FE_NODE_PORT frontends carry the unspecified address of their family
 * (all zero bytes): they match every local address of this node.
 *
 * A frontend with proto 0 and port 0 is the "known service address" marker:
 * a connection to any port of that address that no other frontend serves is
 * refused, as kube-proxy rejects unknown ports on a ClusterIP.
 */
struct frontend_key {
	struct ip_addr addr;
	uint8_t proto; /* IPPROTO_TCP / IPPROTO_UDP, or 0 for the marker */
	uint16_t port; /* host order */
};

struct frontend {
	struct frontend_key key;
	enum frontend_kind kind;
	enum frontend_action action;
	enum backend_choice choice;
	char *service; /* "namespace/name" */
	char *port_name; /* service port name, "" when unnamed */
	uint32_t service_id; /* stable per Service while the agent runs */
	uint32_t affinity_timeout; /* seconds of idleness; 0: no session affinity */
	struct rate_limit rate; /* the Service's limit, shared by its ports */
	/* sluice.io/lb-algorithm (or --lb-algorithm): new flows by Maglev, else at random. */
	bool maglev;
	/*
	 * External kinds only. preserve_source: externalTrafficPolicy Local,
	 * the client's address is kept (no SNAT) and the backends are this
	 * node's. source_ranges: loadBalancerSourceRanges, on FE_LB_INGRESS
	 * frontends only; none means every source is allowed.
	 */
	bool preserve_source;
	struct cidr *source_ranges;
	size_t n_source_ranges;
	struct backend *backends; /* sorted by address then port, no duplicates */
	size_t n_backends;
	/*
	 * has_node_set (external kinds under externalTrafficPolicy Local):
	 * traffic born on the node (the socket path, the output hook) goes to
	 * these, the cluster-wide set, as kube-proxy's "short-circuit local
	 * traffic"; the fields above are for traffic from outside. Without it,
	 * both use the fields above. node_action is FE_SERVE iff
	 * n_node_backends > 0, else FE_REFUSE (no endpoint anywhere).
	 */
	bool has_node_set;
	enum frontend_action node_action;
	enum backend_choice node_choice;
	struct backend *node_backends; /* sorted as backends */
	size_t n_node_backends;
	/*
	 * dsr (external kinds, externalTrafficPolicy Cluster, sluice.io/
	 * forwarding-mode dsr): traffic from outside to a backend on another
	 * node is encapsulated to that node, which replies directly.
	 * backend_nodes (dsr only, else NULL): per backend, the address of its
	 * node in the backend's family; family 0 where the backend is on this
	 * node or its node's address is unknown (those are served with SNAT).
	 */
	bool dsr;
	struct ip_addr *backend_nodes;
};

struct frontend_change {
	const struct frontend *old; /* NULL: added */
	const struct frontend *new; /* NULL: removed */
};

struct state_diff {
	/*
	 * full: the first apply after open. Every frontend is listed as added;
	 * the datapath adopts what it finds and removes anything not listed.
	 */
	bool full;
	struct frontend_change *changes;
	size_t n_changes;
	/*
	 * The addresses NodePorts answer on (--nodeport-addresses for the
	 * node as it is now); NULL: unchanged since the last apply. A full
	 * apply always carries them.
	 */
	const struct node_port_addrs *node_ports;
};

int frontend_key_cmp(const struct frontend_key *a, const struct frontend_key *b);
/* The order of frontend backends: address (family first), then port. */
int backend_cmp(const struct backend *a, const struct backend *b);
/*
 * Calls fn for every backend old served that new does not (new NULL, or not
 * serving: all of them), merging the sorted lists: O(old + new). A backend
 * of either set (from outside, or the node set) counts, once.
 */
void frontend_removed_backends(const struct frontend *old, const struct frontend *new,
			       void (*fn)(void *ctx, const struct frontend *old,
					  const struct backend *gone),
			       void *ctx);
/* True if a and b would program the datapath identically. */
bool frontend_equal(const struct frontend *a, const struct frontend *b);
void frontend_clear(struct frontend *fe);
const char *backend_choice_name(enum backend_choice choice);
const char *frontend_action_name(enum frontend_action action);

#endif
