/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Kubernetes objects Sluice reads (v1 Service, discovery.k8s.io/v1
 * EndpointSlice, v1 Node), reduced to the fields the resolver needs and
 * already validated: every address here parsed, every port in range.
 */
#ifndef SLUICE_MODEL_H
#define SLUICE_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/addr.h"
#include "core/ratelimit.h"
#include "core/lb_algorithm.h"

enum l4_proto { PROTO_TCP = 6, PROTO_UDP = 17, PROTO_SCTP = 132 };

/* sluice.io/forwarding-mode: how external traffic reaches a backend on another node. */
enum forwarding_mode {
	FORWARDING_DEFAULT, /* no annotation (or a bad one, logged): --forwarding-mode */
	FORWARDING_SNAT, /* through the ingress node, source translated */
	FORWARDING_DSR, /* encapsulated to the backend's node, which replies directly */
};

enum service_type {
	SVC_CLUSTER_IP,
	SVC_NODE_PORT,
	SVC_LOAD_BALANCER,
	SVC_EXTERNAL_NAME,
};

struct service_port {
	char *name; /* "" when the port is unnamed */
	uint8_t proto; /* enum l4_proto */
	uint16_t port;
	uint16_t node_port; /* 0 if none */
	uint16_t target_port; /* numeric targetPort, 0 if named or absent */
	char *target_port_name; /* named targetPort, NULL if numeric */
};

struct service {
	char *ns, *name;
	char *source; /* where it came from (file path, "api"), for log lines */
	/* Labelled for another proxy (kube-proxy's label selector): kept with
	 * its name only, so that gaining the label removes its frontends. */
	bool ignored;
	enum service_type type;
	bool headless; /* clusterIP: None */
	struct ip_addr *cluster_ips;
	int n_cluster_ips;
	struct service_port *ports;
	int n_ports;
	struct ip_addr *external_ips;
	int n_external_ips;
	struct ip_addr *lb_ingress_ips;
	int n_lb_ingress_ips;
	bool internal_local; /* internalTrafficPolicy: Local */
	bool external_local; /* externalTrafficPolicy: Local */
	bool affinity_client_ip;
	uint32_t affinity_timeout; /* seconds, default 10800 */
	uint16_t health_check_node_port;
	char *traffic_distribution; /* NULL if unset */
	char *rate_limit; /* raw annotation sluice.io/rate-limit, NULL if absent */
	char *rate_limit_burst; /* raw annotation sluice.io/rate-limit-burst */
	struct rate_limit rate; /* parsed; count 0 when absent or invalid (logged) */
	enum forwarding_mode forwarding; /* annotation sluice.io/forwarding-mode */
	/* sluice.io/lb-algorithm; LB_ALGO_DEFAULT when absent or invalid (logged) */
	enum lb_algorithm lb_algorithm;
	char *lb_algorithm_rejected; /* the invalid value, for sluicectl explain; NULL if none */
	char **lb_source_ranges; /* raw CIDR strings */
	int n_lb_source_ranges;
	struct cidr *lb_source_cidrs; /* the same, parsed */
	int n_lb_source_cidrs;
};

struct slice_port {
	char *name; /* "" when unnamed */
	uint8_t proto;
	uint16_t port; /* 0 when the slice port has no number */
};

/* Packed: 100k slices of 10 endpoints hold a million of these. */
struct endpoint {
	struct ip_addr *addresses;
	char *node_name; /* NULL if unset */
	char *zone; /* NULL if unset */
	char **hint_zones; /* hints.forZones[].name */
	char **hint_nodes; /* hints.forNodes[].name */
	uint16_t n_addresses, n_hint_zones, n_hint_nodes; /* decoders refuse more */
	/* Conditions with the API's defaults applied: unset ready means
	 * true, unset serving follows ready, unset terminating means false. */
	bool ready : 1, serving : 1, terminating : 1;
};

struct endpoint_slice {
	char *ns, *name;
	char *source;
	char *service_name; /* label kubernetes.io/service-name, NULL if absent */
	bool ignored; /* labelled as kube-proxy skips it: no endpoints used */
	uint8_t address_family; /* AF_INET, AF_INET6, or 0 for FQDN (ignored) */
	struct slice_port *ports;
	int n_ports;
	struct endpoint *endpoints;
	int n_endpoints;
	/* Every endpoint's addresses in one block (NULL: each its own), one allocation. */
	struct ip_addr *address_pool;
	/*
	 * Annotation endpoints.kubernetes.io/last-change-trigger-time, seconds
	 * since the epoch (0: absent or unreadable): when the change that this
	 * version carries happened, for kubeproxy_network_programming_duration_seconds.
	 */
	double trigger_time;
};

struct node {
	char *name;
	char *source;
	char *zone; /* label topology.kubernetes.io/zone, NULL if absent */
	struct ip_addr *addresses; /* status.addresses: InternalIPs, then ExternalIPs */
	int n_addresses;
	bool deleting; /* metadata.deletionTimestamp is set */
	bool to_be_deleted; /* tainted ToBeDeletedByClusterAutoscaler */
};

/* "tcp", "udp" or "sctp"; NULL for any other protocol number. */
const char *l4_proto_name(uint8_t proto);

/*
 * True if a and b carry the same fields (their source aside): a re-read or
 * a relist that brings an equal object changes nothing downstream.
 */
bool service_equal(const struct service *a, const struct service *b);
bool endpoint_slice_equal(const struct endpoint_slice *a, const struct endpoint_slice *b);
bool node_equal(const struct node *a, const struct node *b);

void service_free(struct service *svc);
void endpoint_slice_free(struct endpoint_slice *slice);
void node_free(struct node *node);

#endif
