// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests of the resolver (design.md section 4) and of the state helpers:
 * a table of compact cases, each built into model objects on the stack and
 * run as its own cmocka test, plus a few tests that check one property each.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "lib/log.h"
#include "core/resolver.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MAX_SLICES 3
#define MAX_PORTS 3
#define MAX_EPS 8
#define MAX_BACKENDS 8
#define DEFAULT_CLUSTER_IP "10.96.0.10"
#define DEFAULT_NODE "node-a"

enum ep_cond {
	READY, /* ready, serving */
	NOT_READY, /* neither ready nor serving */
	SERVING_TERMINATING, /* serving, terminating, not ready */
	TERMINATING, /* terminating, not serving */
	READY_TERMINATING, /* ready and terminating at once */
	SERVING_NOT_READY, /* serving but not ready, not terminating */
};

struct ep_desc {
	const char *addr; /* NULL ends the list */
	const char *addr2; /* a second address, never used by the resolver */
	const char *node;
	const char *zone;
	enum ep_cond cond;
	const char *for_zones[3];
	const char *for_nodes[3];
};

struct port_desc {
	const char *name; /* NULL ends the list; "" is an unnamed port */
	uint8_t proto; /* 0: TCP */
	uint16_t port;
};

struct slice_desc {
	uint8_t family; /* 0 ends the list of slices; AF_UNSPEC slices use FQDN below */
	bool fqdn; /* addressType FQDN: address_family 0 */
	struct port_desc ports[MAX_PORTS]; /* ports[0].name NULL: one unnamed TCP port 8080 */
	struct ep_desc eps[MAX_EPS];
};

struct resolver_case {
	const char *name;
	const char *node; /* NULL: DEFAULT_NODE */
	const char *zone; /* NULL: the node has no zone label */
	bool internal_local, external_local, node_port;
	const char *cluster_ips[2]; /* [0] NULL: DEFAULT_CLUSTER_IP */
	struct port_desc ports[MAX_PORTS]; /* ports[0].name NULL: one unnamed TCP port 80 */
	struct slice_desc slices[MAX_SLICES];
	/* Expected for the frontend of the first ClusterIP and first port. */
	enum frontend_action action;
	enum backend_choice choice;
	const char *backends[MAX_BACKENDS]; /* "addr:port", in order */
};

/* Model objects built from a case, all on the caller's stack. */
struct fixture {
	struct service svc;
	struct service_port ports[MAX_PORTS];
	struct ip_addr cluster_ips[2];
	struct endpoint_slice slices[MAX_SLICES];
	const struct endpoint_slice *slice_ptrs[MAX_SLICES];
	struct slice_port slice_ports[MAX_SLICES][MAX_PORTS];
	struct endpoint eps[MAX_SLICES][MAX_EPS];
	struct ip_addr ep_addrs[MAX_SLICES][MAX_EPS][2];
	struct resolve_input in;
};

#define V4 AF_INET
#define V6 AF_INET6
#define EP(a, n, ...)                             \
	{                                         \
		.addr = a, .node = n, __VA_ARGS__ \
	}
#define ZONES(...) .for_zones = { __VA_ARGS__ }
#define NODES(...) .for_nodes = { __VA_ARGS__ }
#define COND(c) .cond = c
#define EXPECT(a, c, ...) .action = a, .choice = c, .backends = { __VA_ARGS__ }

static const struct resolver_case cases[] = {
	/* Readiness and the terminating fallback. */
	{ "no_slices_refuses", EXPECT(FE_REFUSE, CHOICE_NONE) },
	{ "not_ready_only_refuses",
	  .slices = { { V4, .eps = { EP("10.0.0.1", "node-b", COND(NOT_READY)),
				     EP("10.0.0.2", "node-a", COND(NOT_READY)) } } },
	  EXPECT(FE_REFUSE, CHOICE_NONE) },
	{ "ready_and_not_ready_serves_ready",
	  .slices = { { V4, .eps = { EP("10.0.0.1", "node-b", COND(NOT_READY)),
				     EP("10.0.0.2", "node-b") } } },
	  EXPECT(FE_SERVE, CHOICE_CLUSTER, "10.0.0.2:8080") },
	{ "terminating_fallback_uses_serving_terminating",
	  .slices = { { V4, .eps = { EP("10.0.0.1", "node-b", COND(SERVING_TERMINATING)),
				     EP("10.0.0.2", "node-b", COND(TERMINATING)),
				     EP("10.0.0.3", "node-a", COND(SERVING_TERMINATING)),
				     EP("10.0.0.4", "node-b", COND(NOT_READY)) } } },
	  EXPECT(FE_SERVE, CHOICE_TERMINATING, "10.0.0.1:8080", "10.0.0.3:8080") },
	{ "terminating_not_serving_refuses",
	  .slices = { { V4, .eps = { EP("10.0.0.1", "node-b", COND(TERMINATING)),
				     EP("10.0.0.2", "node-a", COND(SERVING_NOT_READY)) } } },
	  EXPECT(FE_REFUSE, CHOICE_NONE) },
	{ "ready_preferred_over_serving_terminating",
	  .slices = { { V4, .eps = { EP("10.0.0.1", "node-b", COND(SERVING_TERMINATING)),
				     EP("10.0.0.2", "node-b") } } },
	  EXPECT(FE_SERVE, CHOICE_CLUSTER, "10.0.0.2:8080") },
	{ "ready_and_terminating_counts_as_ready",
	  .slices = { { V4, .eps = { EP("10.0.0.1", "node-b", COND(READY_TERMINATING)),
				     EP("10.0.0.2", "node-b", COND(SERVING_TERMINATING)) } } },
	  EXPECT(FE_SERVE, CHOICE_CLUSTER, "10.0.0.1:8080") },

	/* Zone hints. */
	{ "zone_hints_match", .zone = "z1",
	  .slices = { { V4, .eps = { EP("10.0.0.1", "node-b", ZONES("z1")),
				     EP("10.0.0.2", "node-c", ZONES("z2")),
				     EP("10.0.0.3", "node-d", ZONES("z1")) } } },
	  EXPECT(FE_SERVE, CHOICE_ZONE, "10.0.0.1:8080", "10.0.0.3:8080") },
	{ "zone_hints_no_match_uses_all", .zone = "z3",
	  .slices = { { V4, .eps = { EP("10.0.0.1", "node-b", ZONES("z1")),
				     EP("10.0.0.2", "node-c", ZONES("z2")) } } },
	  EXPECT(FE_SERVE, CHOICE_CLUSTER, "10.0.0.1:8080", "10.0.0.2:8080") },
	{ "zone_hints_missing_on_one_endpoint_uses_all", .zone = "z1",
	  .slices = { { V4, .eps = { EP("10.0.0.1", "node-b", ZONES("z1")),
				     EP("10.0.0.2", "node-c") } } },
	  EXPECT(FE_SERVE, CHOICE_CLUSTER, "10.0.0.1:8080", "10.0.0.2:8080") },
	{ "zone_hints_node_without_zone_label_uses_all",
	  .slices = { { V4, .eps = { EP("10.0.0.1", "node-b", ZONES("z1")),
				     EP("10.0.0.2", "node-c", ZONES("z2")) } } },
	  EXPECT(FE_SERVE, CHOICE_CLUSTER, "10.0.0.1:8080", "10.0.0.2:8080") },
	{ "zone_hints_endpoint_for_several_zones", .zone = "z2",
	  .slices = { { V4, .eps = { EP("10.0.0.1", "node-b", ZONES("z1", "z2")),
				     EP("10.0.0.2", "node-c", ZONES("z1")),
				     EP("10.0.0.3", "node-d", ZONES("z3", "z2")) } } },
	  EXPECT(FE_SERVE, CHOICE_ZONE, "10.0.0.1:8080", "10.0.0.3:8080") },
	{ "zone_hints_unhinted_not_ready_endpoint_does_not_matter", .zone = "z1",
	  .slices = { { V4, .eps = { EP("10.0.0.1", "node-b", ZONES("z1")),
				     EP("10.0.0.2", "node-c", ZONES("z2")),
				     EP("10.0.0.3", "node-d", COND(NOT_READY)),
				     EP("10.0.0.4", "node-d", COND(SERVING_TERMINATING)) } } },
	  EXPECT(FE_SERVE, CHOICE_ZONE, "10.0.0.1:8080") },
	{ "zone_hints_ignore_endpoint_zone_field", .zone = "z1",
	  .slices = { { V4, .eps = { EP("10.0.0.1", "node-b", .zone = "z1", ZONES("z2")),
				     EP("10.0.0.2", "node-c", .zone = "z2", ZONES("z1")) } } },
	  EXPECT(FE_SERVE, CHOICE_ZONE, "10.0.0.2:8080") },

	/* Node hints. */
	{ "node_hints_match",
	  .slices = { { V4, .eps = { EP("10.0.0.1", "node-b", NODES("node-a")),
				     EP("10.0.0.2", "node-b", NODES("node-b")) } } },
	  EXPECT(FE_SERVE, CHOICE_NODE, "10.0.0.1:8080") },
	{ "node_hints_no_match_uses_all",
	  .slices = { { V4, .eps = { EP("10.0.0.1", "node-b", NODES("node-b")),
				     EP("10.0.0.2", "node-c", NODES("node-c")) } } },
	  EXPECT(FE_SERVE, CHOICE_CLUSTER, "10.0.0.1:8080", "10.0.0.2:8080") },
	{ "node_hints_partial_uses_all",
	  .slices = { { V4, .eps = { EP("10.0.0.1", "node-a", NODES("node-a")),
				     EP("10.0.0.2", "node-c") } } },
	  EXPECT(FE_SERVE, CHOICE_CLUSTER, "10.0.0.1:8080", "10.0.0.2:8080") },
	{ "node_hints_take_precedence_over_zone_hints", .zone = "z1",
	  .slices = { { V4, .eps = { EP("10.0.0.1", "node-a", ZONES("z1"), NODES("node-a")),
				     EP("10.0.0.2", "node-b", ZONES("z1"), NODES("node-b")),
				     EP("10.0.0.3", "node-c", ZONES("z2"), NODES("node-c")) } } },
	  EXPECT(FE_SERVE, CHOICE_NODE, "10.0.0.1:8080") },
	{ "node_hints_no_match_falls_back_to_zone_hints", .zone = "z1",
	  .slices = { { V4, .eps = { EP("10.0.0.2", "node-b", ZONES("z1"), NODES("node-b")),
				     EP("10.0.0.3", "node-c", ZONES("z2"), NODES("node-c")) } } },
	  EXPECT(FE_SERVE, CHOICE_ZONE, "10.0.0.2:8080") },
	{ "node_hints_partial_falls_back_to_zone_hints", .zone = "z2",
	  .slices = { { V4, .eps = { EP("10.0.0.1", "node-a", ZONES("z1"), NODES("node-a")),
				     EP("10.0.0.3", "node-c", ZONES("z2")) } } },
	  EXPECT(FE_SERVE, CHOICE_ZONE, "10.0.0.3:8080") },
	{ "hints_ignored_in_terminating_fallback", .zone = "z1",
	  .slices = { { V4, .eps = { EP("10.0.0.1", "node-b", COND(SERVING_TERMINATING),
					ZONES("z2"), NODES("node-b")),
				     EP("10.0.0.2", "node-c", COND(SERVING_TERMINATING),
					ZONES("z1"), NODES("node-a")) } } },
	  EXPECT(FE_SERVE, CHOICE_TERMINATING, "10.0.0.1:8080", "10.0.0.2:8080") },

	/* internalTrafficPolicy: Local. */
	{ "itp_local_uses_local_ready", .internal_local = true,
	  .slices = { { V4, .eps = { EP("10.0.0.1", "node-a"), EP("10.0.0.2", "node-b"),
				     EP("10.0.0.3", "node-a") } } },
	  EXPECT(FE_SERVE, CHOICE_LOCAL, "10.0.0.1:8080", "10.0.0.3:8080") },
	{ "itp_local_prefers_local_ready_over_local_terminating", .internal_local = true,
	  .slices = { { V4, .eps = { EP("10.0.0.1", "node-a", COND(SERVING_TERMINATING)),
				     EP("10.0.0.2", "node-a") } } },
	  EXPECT(FE_SERVE, CHOICE_LOCAL, "10.0.0.2:8080") },
	{ "itp_local_only_local_terminating", .internal_local = true,
	  .slices = { { V4, .eps = { EP("10.0.0.1", "node-a", COND(SERVING_TERMINATING)),
				     EP("10.0.0.2", "node-a", COND(TERMINATING)),
				     EP("10.0.0.3", "node-b") } } },
	  EXPECT(FE_SERVE, CHOICE_LOCAL_TERMINATING, "10.0.0.1:8080") },
	{ "itp_local_only_remote_drops", .internal_local = true,
	  .slices = { { V4, .eps = { EP("10.0.0.1", "node-b"),
				     EP("10.0.0.2", "node-a", COND(NOT_READY)) } } },
	  EXPECT(FE_DROP, CHOICE_NONE) },
	{ "itp_local_only_remote_terminating_drops", .internal_local = true,
	  .slices = { { V4, .eps = { EP("10.0.0.1", "node-b", COND(SERVING_TERMINATING)) } } },
	  EXPECT(FE_DROP, CHOICE_NONE) },
	{ "itp_local_no_endpoints_refuses", .internal_local = true,
	  EXPECT(FE_REFUSE, CHOICE_NONE) },
	{ "itp_local_no_usable_endpoint_refuses", .internal_local = true,
	  .slices = { { V4, .eps = { EP("10.0.0.1", "node-a", COND(NOT_READY)),
				     EP("10.0.0.2", "node-b", COND(TERMINATING)) } } },
	  EXPECT(FE_REFUSE, CHOICE_NONE) },
	{ "itp_local_ignores_topology_hints", .internal_local = true, .zone = "z1",
	  .slices = { { V4, .eps = { EP("10.0.0.1", "node-a", ZONES("z2"), NODES("node-b")),
				     EP("10.0.0.2", "node-b", ZONES("z1"), NODES("node-a")) } } },
	  EXPECT(FE_SERVE, CHOICE_LOCAL, "10.0.0.1:8080") },
	{ "itp_local_with_node_port_still_local_on_cluster_ip", .internal_local = true,
	  .node_port = true, .slices = { { V4, .eps = { EP("10.0.0.1", "node-b") } } },
	  EXPECT(FE_DROP, CHOICE_NONE) },
	{ "etp_local_does_not_affect_cluster_ip", .external_local = true, .node_port = true,
	  .slices = { { V4, .eps = { EP("10.0.0.1", "node-b"), EP("10.0.0.2", "node-c") } } },
	  EXPECT(FE_SERVE, CHOICE_CLUSTER, "10.0.0.1:8080", "10.0.0.2:8080") },

	/* Port matching. */
	{ "named_port_matches_by_name", .ports = { { "http", PROTO_TCP, 80 } },
	  .slices = { { V4, .ports = { { "metrics", PROTO_TCP, 9090 }, { "http", PROTO_TCP, 8080 } },
			.eps = { EP("10.0.0.1", "node-b") } } },
	  EXPECT(FE_SERVE, CHOICE_CLUSTER, "10.0.0.1:8080") },
	{ "named_port_udp_slice_port_does_not_serve_tcp", .ports = { { "dns", PROTO_TCP, 53 } },
	  .slices = { { V4, .ports = { { "dns", PROTO_UDP, 5353 } },
			.eps = { EP("10.0.0.1", "node-b") } } },
	  EXPECT(FE_REFUSE, CHOICE_NONE) },
	{ "named_port_matches_by_name_and_protocol",
	  .ports = { { "dns", PROTO_UDP, 53 }, { "dns", PROTO_TCP, 53 } },
	  .slices = { { V4, .ports = { { "dns", PROTO_TCP, 5354 }, { "dns", PROTO_UDP, 5353 } },
			.eps = { EP("10.0.0.1", "node-b") } } },
	  EXPECT(FE_SERVE, CHOICE_CLUSTER, "10.0.0.1:5353") },
	{ "unnamed_port_does_not_match_named_slice_port",
	  .slices = { { V4, .ports = { { "http", PROTO_TCP, 8080 } },
			.eps = { EP("10.0.0.1", "node-b") } } },
	  EXPECT(FE_REFUSE, CHOICE_NONE) },
	{ "slice_port_without_number_ignored",
	  .slices = { { V4, .ports = { { "", PROTO_TCP, 0 } },
			.eps = { EP("10.0.0.1", "node-b") } } },
	  EXPECT(FE_REFUSE, CHOICE_NONE) },
	{ "only_first_address_of_endpoint_used",
	  .slices = { { V4, .eps = { EP("10.0.0.1", "node-b", .addr2 = "10.0.0.9") } } },
	  EXPECT(FE_SERVE, CHOICE_CLUSTER, "10.0.0.1:8080") },

	/* Several slices. */
	{ "multiple_slices_merged",
	  .slices = { { V4, .eps = { EP("10.0.0.3", "node-b") } },
		      { V4, .eps = { EP("10.0.0.1", "node-c"), EP("10.0.0.2", "node-d") } } },
	  EXPECT(FE_SERVE, CHOICE_CLUSTER, "10.0.0.1:8080", "10.0.0.2:8080", "10.0.0.3:8080") },
	{ "duplicates_across_slices_deduplicated",
	  .slices = { { V4, .eps = { EP("10.0.0.1", "node-b"), EP("10.0.0.2", "node-b") } },
		      { V4, .eps = { EP("10.0.0.2", "node-b"), EP("10.0.0.1", "node-b") } } },
	  EXPECT(FE_SERVE, CHOICE_CLUSTER, "10.0.0.1:8080", "10.0.0.2:8080") },
	{ "duplicate_prefers_ready_copy",
	  .slices = { { V4, .eps = { EP("10.0.0.1", "node-b", COND(NOT_READY)),
				     EP("10.0.0.2", "node-b", COND(SERVING_TERMINATING)) } },
		      { V4, .eps = { EP("10.0.0.1", "node-b") } } },
	  EXPECT(FE_SERVE, CHOICE_CLUSTER, "10.0.0.1:8080") },
	{ "duplicate_prefers_ready_copy_in_either_order", .internal_local = true,
	  .slices = { { V4, .eps = { EP("10.0.0.1", "node-a") } },
		      { V4, .eps = { EP("10.0.0.1", "node-a", COND(TERMINATING)) } } },
	  EXPECT(FE_SERVE, CHOICE_LOCAL, "10.0.0.1:8080") },
	/* kube-proxy: of two copies, the one not terminating wins, ready or not. */
	{ "duplicate_prefers_non_terminating_copy",
	  .slices = { { V4, .eps = { EP("10.0.0.1", "node-b", COND(SERVING_TERMINATING)),
				     EP("10.0.0.2", "node-b", COND(SERVING_TERMINATING)) } },
		      { V4, .eps = { EP("10.0.0.1", "node-c", COND(NOT_READY)) } } },
	  EXPECT(FE_SERVE, CHOICE_TERMINATING, "10.0.0.2:8080") },
	{ "duplicate_ready_terminating_loses_to_ready",
	  .slices = { { V4, .eps = { EP("10.0.0.1", "node-a", COND(READY_TERMINATING)) } },
		      { V4, .eps = { EP("10.0.0.1", "node-b") } } },
	  EXPECT(FE_SERVE, CHOICE_CLUSTER, "10.0.0.1:8080") },
	{ "same_address_different_ports_kept_and_sorted",
	  .slices = { { V4, .ports = { { "", PROTO_TCP, 8081 } },
			.eps = { EP("10.0.0.1", "node-b") } },
		      { V4, .eps = { EP("10.0.0.2", "node-b"), EP("10.0.0.1", "node-b") } } },
	  EXPECT(FE_SERVE, CHOICE_CLUSTER, "10.0.0.1:8080", "10.0.0.1:8081", "10.0.0.2:8080") },
	{ "backends_sorted_by_address",
	  .slices = { { V4, .eps = { EP("10.0.0.10", "node-b"), EP("10.0.0.9", "node-b"),
				     EP("9.0.0.1", "node-b"), EP("10.0.1.0", "node-b") } } },
	  EXPECT(FE_SERVE, CHOICE_CLUSTER, "9.0.0.1:8080", "10.0.0.9:8080", "10.0.0.10:8080",
		 "10.0.1.0:8080") },

	/* Address families. */
	{ "ipv4_cluster_ip_ignores_ipv6_and_fqdn_slices",
	  .slices = { { V6, .eps = { EP("fd00::1", "node-b") } },
		      { V4, .fqdn = true, .eps = { EP("10.0.0.7", "node-b") } },
		      { V4, .eps = { EP("10.0.0.1", "node-b") } } },
	  EXPECT(FE_SERVE, CHOICE_CLUSTER, "10.0.0.1:8080") },
	{ "ipv6_cluster_ip_uses_only_ipv6_slices", .cluster_ips = { "fd00:96::10" },
	  .slices = { { V4, .eps = { EP("10.0.0.1", "node-b") } },
		      { V6, .eps = { EP("fd00::2", "node-b"), EP("fd00::1", "node-c") } } },
	  EXPECT(FE_SERVE, CHOICE_CLUSTER, "[fd00::1]:8080", "[fd00::2]:8080") },
	{ "ipv6_zone_hints", .cluster_ips = { "fd00:96::10" }, .zone = "z1",
	  .slices = { { V6, .eps = { EP("fd00::2", "node-b", ZONES("z1")),
				     EP("fd00::1", "node-c", ZONES("z2")) } } },
	  EXPECT(FE_SERVE, CHOICE_ZONE, "[fd00::2]:8080") },
};

static void parse_or_fail(const char *text, struct ip_addr *out)
{
	if (!ip_addr_parse(text, out))
		fail_msg("test case has an invalid address '%s'", text);
}

static int count_names(const char *const *names, int max)
{
	int n = 0;

	while (n < max && names[n])
		n++;
	return n;
}

static void build_endpoint(const struct ep_desc *d, struct endpoint *ep, struct ip_addr *addrs)
{
	memset(ep, 0, sizeof(*ep));
	parse_or_fail(d->addr, &addrs[0]);
	ep->addresses = addrs;
	ep->n_addresses = 1;
	if (d->addr2) {
		parse_or_fail(d->addr2, &addrs[1]);
		ep->n_addresses = 2;
	}
	ep->ready = d->cond == READY || d->cond == READY_TERMINATING;
	ep->serving = d->cond == READY || d->cond == READY_TERMINATING ||
		      d->cond == SERVING_TERMINATING || d->cond == SERVING_NOT_READY;
	ep->terminating = d->cond == SERVING_TERMINATING || d->cond == TERMINATING ||
			  d->cond == READY_TERMINATING;
	ep->node_name = (char *)d->node;
	ep->zone = (char *)d->zone;
	ep->hint_zones = (char **)d->for_zones;
	ep->n_hint_zones = count_names(d->for_zones, ARRAY_SIZE(d->for_zones));
	ep->hint_nodes = (char **)d->for_nodes;
	ep->n_hint_nodes = count_names(d->for_nodes, ARRAY_SIZE(d->for_nodes));
}

static void build_port(const struct port_desc *d, struct service_port *port)
{
	memset(port, 0, sizeof(*port));
	port->name = (char *)d->name;
	port->proto = d->proto ? d->proto : PROTO_TCP;
	port->port = d->port;
	port->target_port = 8080;
}

static void build_fixture(const struct resolver_case *c, struct fixture *f)
{
	static const struct port_desc default_svc_port = { "", PROTO_TCP, 80 };
	static const struct port_desc default_slice_port = { "", PROTO_TCP, 8080 };
	int i, s, p, e;

	memset(f, 0, sizeof(*f));
	f->svc.ns = "default";
	f->svc.name = "web";
	f->svc.source = "test";
	f->svc.type = c->node_port ? SVC_NODE_PORT : SVC_CLUSTER_IP;
	f->svc.internal_local = c->internal_local;
	f->svc.external_local = c->external_local;
	f->svc.affinity_timeout = 10800;
	parse_or_fail(c->cluster_ips[0] ? c->cluster_ips[0] : DEFAULT_CLUSTER_IP,
		      &f->cluster_ips[0]);
	f->svc.n_cluster_ips = 1;
	if (c->cluster_ips[1]) {
		parse_or_fail(c->cluster_ips[1], &f->cluster_ips[1]);
		f->svc.n_cluster_ips = 2;
	}
	f->svc.cluster_ips = f->cluster_ips;
	if (!c->ports[0].name) {
		build_port(&default_svc_port, &f->ports[0]);
		f->svc.n_ports = 1;
	}
	for (i = 0; i < MAX_PORTS && c->ports[i].name; i++) {
		build_port(&c->ports[i], &f->ports[i]);
		f->svc.n_ports = i + 1;
	}
	for (i = 0; i < f->svc.n_ports && c->node_port; i++)
		f->ports[i].node_port = 30000 + i;
	f->svc.ports = f->ports;

	for (s = 0; s < MAX_SLICES && c->slices[s].family; s++) {
		const struct slice_desc *sd = &c->slices[s];
		struct endpoint_slice *slice = &f->slices[s];
		const struct port_desc *pd = sd->ports[0].name ? sd->ports : &default_slice_port;
		int n_ports = 1;

		if (sd->ports[0].name) {
			for (n_ports = 0; n_ports < MAX_PORTS && sd->ports[n_ports].name; n_ports++)
				;
		}
		slice->ns = "default";
		slice->name = "web-slice";
		slice->source = "test";
		slice->service_name = "web";
		slice->address_family = sd->fqdn ? 0 : sd->family;
		for (p = 0; p < n_ports; p++) {
			f->slice_ports[s][p].name = (char *)pd[p].name;
			f->slice_ports[s][p].proto = pd[p].proto ? pd[p].proto : PROTO_TCP;
			f->slice_ports[s][p].port = pd[p].port;
		}
		slice->ports = f->slice_ports[s];
		slice->n_ports = n_ports;
		for (e = 0; e < MAX_EPS && sd->eps[e].addr; e++)
			build_endpoint(&sd->eps[e], &f->eps[s][e], f->ep_addrs[s][e]);
		slice->endpoints = f->eps[s];
		slice->n_endpoints = e;
		f->slice_ptrs[s] = slice;
	}
	f->in.svc = &f->svc;
	f->in.slices = f->slice_ptrs;
	f->in.n_slices = s;
	f->in.node_name = c->node ? c->node : DEFAULT_NODE;
	f->in.node_zone = c->zone;
	f->in.service_id = 42;
}

/* Backends as "a:p,b:p" so a failure prints both lists whole. */
static void format_backends(const struct backend *be, size_t n, char *buf, size_t len)
{
	char addr[IP_ADDR_STRLEN];
	size_t i, used = 0;

	buf[0] = '\0';
	for (i = 0; i < n && used < len; i++) {
		ip_addr_format(&be[i].addr, addr);
		used += snprintf(buf + used, len - used,
				 be[i].addr.family == AF_INET6 ? "%s[%s]:%u" : "%s%s:%u",
				 i ? "," : "", addr, be[i].port);
	}
}

static void join_expected(const char *const *list, char *buf, size_t len)
{
	size_t i, used = 0;

	buf[0] = '\0';
	for (i = 0; i < MAX_BACKENDS && list[i] && used < len; i++)
		used += snprintf(buf + used, len - used, "%s%s", i ? "," : "", list[i]);
}

static const struct frontend *find_frontend(const struct frontend_list *list,
					    const struct ip_addr *addr, uint8_t proto,
					    uint16_t port)
{
	struct frontend_key key = { .addr = *addr, .proto = proto, .port = port };
	size_t i;

	for (i = 0; i < list->n; i++) {
		if (!frontend_key_cmp(&list->items[i].key, &key))
			return &list->items[i];
	}
	return NULL;
}

static size_t count_families(const struct fixture *f)
{
	bool v4 = false, v6 = false;

	for (int c = 0; c < f->svc.n_cluster_ips; c++) {
		v4 |= f->cluster_ips[c].family == AF_INET;
		v6 |= f->cluster_ips[c].family == AF_INET6;
	}
	return (size_t)v4 + (size_t)v6;
}

/* What every resolved list must satisfy, whatever the case. */
static void check_invariants(const struct fixture *f, const struct frontend_list *list)
{
	size_t i, j;
	int c;

	for (i = 0; i < list->n; i++) {
		const struct frontend *fe = &list->items[i];

		if (i)
			assert_true(frontend_key_cmp(&list->items[i - 1].key, &fe->key) < 0);
		assert_string_equal(fe->service, "default/web");
		assert_int_equal(fe->service_id, 42);
		assert_int_equal(fe->kind, fe->key.port >= 30000 ? FE_NODE_PORT : FE_CLUSTER_IP);
		assert_int_equal(fe->preserve_source,
				 fe->kind != FE_CLUSTER_IP && f->svc.external_local);
		assert_true(fe->action == FE_SERVE ? fe->n_backends > 0 : fe->n_backends == 0);
		for (j = 1; j < fe->n_backends; j++) {
			int cmp = ip_addr_cmp(&fe->backends[j - 1].addr, &fe->backends[j].addr);

			assert_true(cmp < 0 ||
				    (cmp == 0 && fe->backends[j - 1].port < fe->backends[j].port));
		}
		for (j = 0; j < fe->n_backends; j++)
			assert_int_equal(fe->backends[j].addr.family, fe->key.addr.family);
	}
	for (c = 0; c < f->svc.n_cluster_ips; c++) {
		const struct frontend *marker = find_frontend(list, &f->cluster_ips[c], 0, 0);

		assert_non_null(marker);
		assert_int_equal(marker->action, FE_REFUSE);
		assert_int_equal(marker->choice, CHOICE_NONE);
		assert_int_equal(marker->n_backends, 0);
		assert_string_equal(marker->port_name, "");
	}
}

static void run_case(void **state)
{
	const struct resolver_case *c = *state;
	char got[512], want[512];
	struct frontend_list list;
	const struct frontend *fe;
	struct fixture f;

	build_fixture(c, &f);
	assert_int_equal(resolve_service(&f.in, &list), 0);
	check_invariants(&f, &list);
	/* Per ClusterIP a marker and a frontend per port; NodePorts once per family. */
	assert_int_equal(list.n,
			 (size_t)f.svc.n_cluster_ips * (f.svc.n_ports + 1) +
				 (c->node_port ? (size_t)f.svc.n_ports * count_families(&f) : 0));
	fe = find_frontend(&list, &f.cluster_ips[0], f.ports[0].proto, f.ports[0].port);
	assert_non_null(fe);
	assert_string_equal(fe->port_name, f.ports[0].name);
	format_backends(fe->backends, fe->n_backends, got, sizeof(got));
	join_expected(c->backends, want, sizeof(want));
	assert_string_equal(got, want);
	assert_string_equal(frontend_action_name(fe->action), frontend_action_name(c->action));
	assert_string_equal(backend_choice_name(fe->choice), backend_choice_name(c->choice));
	frontend_list_clear(&list);
}

/* Tests of one property each, on fixtures built from a base case. */

static const struct resolver_case two_ready = {
	"two_ready",
	.slices = { { V4, .eps = { EP("10.0.0.1", "node-a"), EP("10.0.0.2", "node-b") } },
		    { V6, .eps = { EP("fd00::1", "node-a") } } },
};

static void test_headless_yields_nothing(void **state)
{
	struct frontend_list list;
	struct fixture f;

	build_fixture(&two_ready, &f);
	f.svc.headless = true;
	assert_int_equal(resolve_service(&f.in, &list), 0);
	assert_int_equal(list.n, 0);
	frontend_list_clear(&list);
}

static void test_external_name_yields_nothing(void **state)
{
	struct frontend_list list;
	struct fixture f;

	build_fixture(&two_ready, &f);
	f.svc.type = SVC_EXTERNAL_NAME;
	assert_int_equal(resolve_service(&f.in, &list), 0);
	assert_int_equal(list.n, 0);
	frontend_list_clear(&list);
}

static void test_no_cluster_ip_yields_nothing(void **state)
{
	struct frontend_list list;
	struct fixture f;

	build_fixture(&two_ready, &f);
	f.svc.n_cluster_ips = 0;
	assert_int_equal(resolve_service(&f.in, &list), 0);
	assert_int_equal(list.n, 0);
	assert_null(list.items);
}

static void test_marker_frontend_present(void **state)
{
	struct frontend_list list;
	struct fixture f;

	build_fixture(&two_ready, &f);
	assert_int_equal(resolve_service(&f.in, &list), 0);
	assert_int_equal(list.n, 2);
	/* proto 0 sorts before TCP: the marker comes first. */
	assert_int_equal(list.items[0].key.proto, 0);
	assert_int_equal(list.items[0].key.port, 0);
	assert_true(ip_addr_equal(&list.items[0].key.addr, &f.cluster_ips[0]));
	assert_int_equal(list.items[0].action, FE_REFUSE);
	assert_int_equal(list.items[0].n_backends, 0);
	assert_int_equal(list.items[0].affinity_timeout, 0);
	assert_int_equal(list.items[1].key.proto, PROTO_TCP);
	assert_int_equal(list.items[1].action, FE_SERVE);
	frontend_list_clear(&list);
}

static void test_marker_present_without_endpoints(void **state)
{
	static const struct resolver_case sctp_only = {
		"sctp_only",
		.ports = { { "s", PROTO_SCTP, 9 } },
	};
	struct frontend_list list;
	struct fixture f;

	build_fixture(&sctp_only, &f);
	assert_int_equal(resolve_service(&f.in, &list), 0);
	assert_int_equal(list.n, 2);
	assert_int_equal(list.items[0].key.proto, 0);
	assert_int_equal(list.items[0].action, FE_REFUSE);
	assert_int_equal(list.items[1].key.proto, PROTO_SCTP);
	assert_int_equal(list.items[1].action, FE_REFUSE);
	frontend_list_clear(&list);
}

/* SCTP ports are served as TCP and UDP ones (both datapaths, issue 18). */
static void test_sctp_port_served(void **state)
{
	static const struct resolver_case mixed = {
		"mixed",
		.ports = { { "a", PROTO_SCTP, 80 }, { "b", PROTO_UDP, 80 }, { "c", PROTO_TCP, 81 } },
	};
	struct frontend_list list;
	struct fixture f;
	size_t i, sctp = 0;

	build_fixture(&mixed, &f);
	assert_int_equal(resolve_service(&f.in, &list), 0);
	assert_int_equal(list.n, 4);
	for (i = 0; i < list.n; i++)
		sctp += list.items[i].key.proto == PROTO_SCTP;
	assert_int_equal(sctp, 1);
	frontend_list_clear(&list);
}

static void test_affinity_timeout_copied(void **state)
{
	struct frontend_list list;
	struct fixture f;

	build_fixture(&two_ready, &f);
	f.svc.affinity_client_ip = true;
	f.svc.affinity_timeout = 600;
	assert_int_equal(resolve_service(&f.in, &list), 0);
	assert_int_equal(list.n, 2);
	assert_int_equal(list.items[1].affinity_timeout, 600);
	frontend_list_clear(&list);

	f.svc.affinity_client_ip = false;
	assert_int_equal(resolve_service(&f.in, &list), 0);
	assert_int_equal(list.items[1].affinity_timeout, 0);
	frontend_list_clear(&list);
}

static void test_output_sorted_dual_stack(void **state)
{
	static const struct resolver_case dual = {
		"dual",
		.cluster_ips = { "fd00:96::10", "10.96.0.10" },
		.ports = { { "web", PROTO_TCP, 443 },
			   { "dns", PROTO_UDP, 53 },
			   { "api", PROTO_TCP, 80 } },
		.slices = { { V6,
			      .ports = { { "web", PROTO_TCP, 8443 },
					 { "dns", PROTO_UDP, 5353 },
					 { "api", PROTO_TCP, 8080 } },
			      .eps = { EP("fd00::2", "node-b"), EP("fd00::1", "node-a") } },
			    { V4, .ports = { { "web", PROTO_TCP, 8443 } },
			      .eps = { EP("10.0.0.1", "node-a") } } },
	};
	/* Expected order: IPv4 first, then by proto (TCP 6 < UDP 17), then port. */
	static const struct {
		uint8_t family, proto;
		uint16_t port;
		const char *backends;
	} want[] = {
		{ AF_INET, 0, 0, "" },
		{ AF_INET, PROTO_TCP, 80, "" },
		{ AF_INET, PROTO_TCP, 443, "10.0.0.1:8443" },
		{ AF_INET, PROTO_UDP, 53, "" },
		{ AF_INET6, 0, 0, "" },
		{ AF_INET6, PROTO_TCP, 80, "[fd00::1]:8080,[fd00::2]:8080" },
		{ AF_INET6, PROTO_TCP, 443, "[fd00::1]:8443,[fd00::2]:8443" },
		{ AF_INET6, PROTO_UDP, 53, "[fd00::1]:5353,[fd00::2]:5353" },
	};
	struct frontend_list list;
	struct fixture f;
	char got[256];
	size_t i;

	build_fixture(&dual, &f);
	assert_int_equal(resolve_service(&f.in, &list), 0);
	check_invariants(&f, &list);
	assert_int_equal(list.n, ARRAY_SIZE(want));
	for (i = 0; i < list.n; i++) {
		assert_int_equal(list.items[i].key.addr.family, want[i].family);
		assert_int_equal(list.items[i].key.proto, want[i].proto);
		assert_int_equal(list.items[i].key.port, want[i].port);
		format_backends(list.items[i].backends, list.items[i].n_backends, got, sizeof(got));
		assert_string_equal(got, want[i].backends);
	}
	frontend_list_clear(&list);
}

static void test_externally_reachable_node_port(void **state)
{
	struct fixture f;

	build_fixture(&two_ready, &f);
	assert_false(service_externally_reachable(&f.svc));
	f.ports[0].node_port = 30080;
	f.svc.type = SVC_NODE_PORT;
	assert_true(service_externally_reachable(&f.svc));
	f.svc.type = SVC_LOAD_BALANCER;
	assert_true(service_externally_reachable(&f.svc));
	/* A stale nodePort on a ClusterIP-type Service does not count. */
	f.svc.type = SVC_CLUSTER_IP;
	assert_false(service_externally_reachable(&f.svc));
	f.svc.type = SVC_NODE_PORT;
	f.ports[0].node_port = 0;
	assert_false(service_externally_reachable(&f.svc));
}

static void test_externally_reachable_external_ip(void **state)
{
	struct ip_addr ext;
	struct fixture f;

	build_fixture(&two_ready, &f);
	parse_or_fail("192.0.2.10", &ext);
	f.svc.external_ips = &ext;
	f.svc.n_external_ips = 1;
	assert_true(service_externally_reachable(&f.svc));
}

static void test_externally_reachable_lb_ingress(void **state)
{
	struct ip_addr ingress;
	struct fixture f;

	build_fixture(&two_ready, &f);
	parse_or_fail("198.51.100.7", &ingress);
	f.svc.lb_ingress_ips = &ingress;
	f.svc.n_lb_ingress_ips = 1;
	assert_true(service_externally_reachable(&f.svc));
}

/* What a later NodePort frontend under externalTrafficPolicy Local will use. */
static void test_resolve_endpoints_gives_both_sets(void **state)
{
	static const struct resolver_case etp = {
		"etp",
		.external_local = true,
		.node_port = true,
		.zone = "z1",
		.slices = { { V4,
			      .eps = { EP("10.0.0.1", "node-b", ZONES("z1")),
				       EP("10.0.0.2", "node-c", ZONES("z2")),
				       EP("10.0.0.3", "node-a", COND(SERVING_TERMINATING)) } } },
	};
	struct port_endpoints pe;
	struct fixture f;

	build_fixture(&etp, &f);
	resolve_endpoints(&f.in, &f.ports[0], AF_INET, &pe);
	assert_int_equal(pe.cluster.action, FE_SERVE);
	assert_int_equal(pe.cluster.choice, CHOICE_ZONE);
	assert_int_equal(pe.cluster.n_backends, 1);
	assert_int_equal(pe.local.action, FE_SERVE);
	assert_int_equal(pe.local.choice, CHOICE_LOCAL_TERMINATING);
	assert_int_equal(pe.local.n_backends, 1);
	assert_int_equal(pe.local.backends[0].addr.bytes[3], 3);
	port_endpoints_clear(&pe);

	/* No local endpoint at all: the external frontend would drop. */
	f.eps[0][2].node_name = "node-d";
	resolve_endpoints(&f.in, &f.ports[0], AF_INET, &pe);
	assert_int_equal(pe.local.action, FE_DROP);
	assert_int_equal(pe.local.n_backends, 0);
	port_endpoints_clear(&pe);

	/* The other family has nothing: both sets refuse. */
	resolve_endpoints(&f.in, &f.ports[0], AF_INET6, &pe);
	assert_int_equal(pe.cluster.action, FE_REFUSE);
	assert_int_equal(pe.local.action, FE_REFUSE);
	port_endpoints_clear(&pe);
}

static void test_frontend_equal_and_key_order(void **state)
{
	struct backend b1[2] = { { .port = 80 }, { .port = 81 } }, b2[2];
	struct frontend a = { 0 }, b;

	parse_or_fail("10.0.0.1", &b1[0].addr);
	parse_or_fail("10.0.0.2", &b1[1].addr);
	memcpy(b2, b1, sizeof(b2));
	parse_or_fail("10.96.0.1", &a.key.addr);
	a.key.proto = PROTO_TCP;
	a.key.port = 80;
	a.service = "default/web";
	a.port_name = "";
	a.backends = b1;
	a.n_backends = 2;
	b = a;
	b.backends = b2;
	assert_true(frontend_equal(&a, &b));
	b2[1].port = 82;
	assert_false(frontend_equal(&a, &b));
	b2[1].port = 81;
	b.port_name = "http";
	assert_false(frontend_equal(&a, &b));
	b.port_name = "";
	b.affinity_timeout = 5;
	assert_false(frontend_equal(&a, &b));
	b.affinity_timeout = 0;
	b.choice = CHOICE_ZONE;
	assert_false(frontend_equal(&a, &b));
	b.choice = a.choice;

	/* Key order: family, address, proto, port. */
	b.key.port = 443;
	assert_true(frontend_key_cmp(&a.key, &b.key) < 0);
	b.key.proto = PROTO_UDP;
	b.key.port = 1;
	assert_true(frontend_key_cmp(&a.key, &b.key) < 0);
	parse_or_fail("10.96.0.0", &b.key.addr);
	assert_true(frontend_key_cmp(&a.key, &b.key) > 0);
	parse_or_fail("::1", &b.key.addr);
	assert_true(frontend_key_cmp(&a.key, &b.key) < 0);
	assert_int_equal(frontend_key_cmp(&a.key, &a.key), 0);
}

static void test_state_names(void **state)
{
	assert_string_equal(backend_choice_name(CHOICE_NONE), "none");
	assert_string_equal(backend_choice_name(CHOICE_CLUSTER), "cluster");
	assert_string_equal(backend_choice_name(CHOICE_ZONE), "zone");
	assert_string_equal(backend_choice_name(CHOICE_NODE), "node");
	assert_string_equal(backend_choice_name(CHOICE_TERMINATING), "terminating");
	assert_string_equal(backend_choice_name(CHOICE_LOCAL), "local");
	assert_string_equal(backend_choice_name(CHOICE_LOCAL_TERMINATING), "local-terminating");
	assert_string_equal(frontend_action_name(FE_SERVE), "serve");
	assert_string_equal(frontend_action_name(FE_REFUSE), "refuse");
	assert_string_equal(frontend_action_name(FE_DROP), "drop");
}

/* External frontends: NodePort, externalIPs, LB ingress IPs. */

static const struct resolver_case local_and_remote = {
	"local_and_remote",
	.node_port = true,
	.cluster_ips = { "10.96.0.1", "fd00::96:1" },
	.slices = { { V4, .eps = { EP("10.0.0.1", "node-a"), EP("10.0.0.2", "node-b") } },
		    { V6, .eps = { EP("fd00::1", "node-b") } } },
};

static const struct frontend *find_kind(const struct frontend_list *list, enum frontend_kind kind,
					uint8_t family)
{
	for (size_t i = 0; i < list->n; i++) {
		if (list->items[i].kind == kind && list->items[i].key.addr.family == family &&
		    list->items[i].key.proto)
			return &list->items[i];
	}
	return NULL;
}

static void test_node_port_cluster_policy(void **state)
{
	const struct frontend *fe;
	struct frontend_list list;
	struct fixture f;

	build_fixture(&local_and_remote, &f);
	assert_int_equal(resolve_service(&f.in, &list), 0);
	fe = find_kind(&list, FE_NODE_PORT, AF_INET);
	assert_non_null(fe);
	assert_int_equal(fe->key.port, 30000);
	for (int i = 0; i < 16; i++)
		assert_int_equal(fe->key.addr.bytes[i], 0);
	assert_false(fe->preserve_source);
	assert_int_equal(fe->choice, CHOICE_CLUSTER);
	assert_int_equal(fe->n_backends, 2);
	/* Dual-stack: a second NodePort frontend for IPv6. */
	fe = find_kind(&list, FE_NODE_PORT, AF_INET6);
	assert_non_null(fe);
	assert_int_equal(fe->n_backends, 1);
	frontend_list_clear(&list);
}

/* The test's Node objects: node-b has an IPv4 address, node-c none known. */
static const struct ip_addr *test_node_addr(void *ctx, const char *name, uint8_t family)
{
	static struct ip_addr b;

	(*(int *)ctx)++;
	if (strcmp(name, "node-b") || family != AF_INET)
		return NULL;
	assert_true(ip_addr_parse("192.168.0.2", &b));
	return &b;
}

static void test_dsr_frontends_carry_their_backends_nodes(void **state)
{
	static const struct resolver_case c = {
		"dsr",
		.node_port = true,
		.cluster_ips = { "10.96.0.1" },
		.slices = { { V4, .eps = { EP("10.0.0.1", "node-a"), EP("10.0.0.2", "node-b"),
					   EP("10.0.0.3", "node-c") } } },
	};
	char text[IP_ADDR_STRLEN];
	const struct frontend *fe;
	struct frontend_list list;
	struct fixture f;
	int calls = 0;

	build_fixture(&c, &f);
	f.svc.forwarding = FORWARDING_DSR;
	f.in.node_addr = test_node_addr;
	f.in.node_addr_ctx = &calls;
	assert_int_equal(resolve_service(&f.in, &list), 0);
	fe = find_kind(&list, FE_NODE_PORT, AF_INET);
	assert_true(fe->dsr);
	assert_int_equal(fe->n_backends, 3);
	assert_non_null(fe->backend_nodes);
	/* This node's backend and node-c's (no address known) are served with SNAT. */
	assert_int_equal(fe->backend_nodes[0].family, 0);
	assert_string_equal(ip_addr_format(&fe->backend_nodes[1], text), "192.168.0.2");
	assert_int_equal(fe->backend_nodes[2].family, 0);
	/* The ClusterIP is the socket path's: never DSR. */
	fe = find_kind(&list, FE_CLUSTER_IP, AF_INET);
	assert_false(fe->dsr);
	assert_null(fe->backend_nodes);
	frontend_list_clear(&list);

	/* --forwarding-mode=dsr is the default; the annotation snat wins over it. */
	f.svc.forwarding = FORWARDING_SNAT;
	f.in.dsr_default = true;
	assert_int_equal(resolve_service(&f.in, &list), 0);
	assert_false(find_kind(&list, FE_NODE_PORT, AF_INET)->dsr);
	frontend_list_clear(&list);
	f.svc.forwarding = FORWARDING_DEFAULT;
	assert_int_equal(resolve_service(&f.in, &list), 0);
	assert_true(find_kind(&list, FE_NODE_PORT, AF_INET)->dsr);
	frontend_list_clear(&list);
	/* externalTrafficPolicy Local: backends are this node's, the client's address kept. */
	f.svc.external_local = true;
	assert_int_equal(resolve_service(&f.in, &list), 0);
	assert_false(find_kind(&list, FE_NODE_PORT, AF_INET)->dsr);
	frontend_list_clear(&list);
}

static void test_dsr_node_address_change_is_a_change(void **state)
{
	struct frontend_list a, b;
	struct fixture f;
	int calls = 0;

	build_fixture(&local_and_remote, &f);
	f.svc.forwarding = FORWARDING_DSR;
	assert_int_equal(resolve_service(&f.in, &a), 0);
	f.in.node_addr = test_node_addr;
	f.in.node_addr_ctx = &calls;
	assert_int_equal(resolve_service(&f.in, &b), 0);
	assert_true(calls > 0);
	assert_false(frontend_equal(find_kind(&a, FE_NODE_PORT, AF_INET),
				    find_kind(&b, FE_NODE_PORT, AF_INET)));
	assert_true(frontend_equal(find_kind(&a, FE_CLUSTER_IP, AF_INET),
				   find_kind(&b, FE_CLUSTER_IP, AF_INET)));
	frontend_list_clear(&a);
	frontend_list_clear(&b);
}

static void test_node_port_local_policy(void **state)
{
	const struct frontend *fe;
	struct frontend_list list;
	struct fixture f;

	build_fixture(&local_and_remote, &f);
	f.svc.external_local = true;
	assert_int_equal(resolve_service(&f.in, &list), 0);
	fe = find_kind(&list, FE_NODE_PORT, AF_INET);
	assert_non_null(fe);
	assert_true(fe->preserve_source);
	assert_int_equal(fe->choice, CHOICE_LOCAL);
	assert_int_equal(fe->n_backends, 1);
	/* The only IPv6 endpoint is elsewhere: drop, not refuse. */
	fe = find_kind(&list, FE_NODE_PORT, AF_INET6);
	assert_non_null(fe);
	assert_int_equal(fe->action, FE_DROP);
	/* The ClusterIP keeps the cluster set. */
	fe = find_kind(&list, FE_CLUSTER_IP, AF_INET);
	assert_int_equal(fe->n_backends, 2);
	assert_false(fe->preserve_source);
	assert_false(fe->has_node_set);
	frontend_list_clear(&list);
}

static void test_ignored_service_yields_nothing(void **state)
{
	struct frontend_list list;
	struct fixture f;

	build_fixture(&two_ready, &f);
	f.svc.ignored = true;
	assert_int_equal(resolve_service(&f.in, &list), 0);
	assert_int_equal(list.n, 0);
	frontend_list_clear(&list);
}

/* A slice labelled service.kubernetes.io/headless lends no endpoint. */
static void test_ignored_slice_contributes_nothing(void **state)
{
	struct frontend_list list;
	const struct frontend *fe;
	struct fixture f;

	build_fixture(&two_ready, &f);
	f.slices[0].ignored = true;
	assert_int_equal(resolve_service(&f.in, &list), 0);
	fe = find_kind(&list, FE_CLUSTER_IP, AF_INET);
	assert_non_null(fe);
	assert_int_equal(fe->action, FE_REFUSE);
	assert_int_equal(fe->n_backends, 0);
	frontend_list_clear(&list);
}

/* kube-proxy's "short-circuit local traffic": node-born traffic takes the cluster set. */
static void test_local_policy_node_set(void **state)
{
	const struct frontend *fe;
	struct frontend_list list;
	struct fixture f;

	build_fixture(&local_and_remote, &f);
	f.svc.external_local = true;
	assert_int_equal(resolve_service(&f.in, &list), 0);
	fe = find_kind(&list, FE_NODE_PORT, AF_INET);
	assert_non_null(fe);
	assert_true(fe->has_node_set);
	assert_int_equal(fe->n_backends, 1);
	assert_int_equal(fe->node_action, FE_SERVE);
	assert_int_equal(fe->node_choice, CHOICE_CLUSTER);
	assert_int_equal(fe->n_node_backends, 2);
	/* Dropped from outside, served from the node. */
	fe = find_kind(&list, FE_NODE_PORT, AF_INET6);
	assert_non_null(fe);
	assert_int_equal(fe->action, FE_DROP);
	assert_int_equal(fe->node_action, FE_SERVE);
	assert_int_equal(fe->n_node_backends, 1);
	frontend_list_clear(&list);

	/* Cluster policy: one set for everyone. */
	build_fixture(&local_and_remote, &f);
	assert_int_equal(resolve_service(&f.in, &list), 0);
	fe = find_kind(&list, FE_NODE_PORT, AF_INET);
	assert_false(fe->has_node_set);
	assert_null(fe->node_backends);
	frontend_list_clear(&list);
}

/* A backend leaving either set is removed; one still in the other is not. */
static void removed_count(void *ctx, const struct frontend *old, const struct backend *gone)
{
	(void)old;
	(void)gone;
	(*(int *)ctx)++;
}

static void test_removed_backends_both_sets(void **state)
{
	struct backend a = { .port = 1 }, b = { .port = 2 }, c = { .port = 3 };
	struct backend old_local[] = { a }, old_node[] = { a, b, c }, new_node[] = { a, b };
	struct frontend old = { .action = FE_SERVE,
				.backends = old_local,
				.n_backends = 1,
				.has_node_set = true,
				.node_action = FE_SERVE,
				.node_backends = old_node,
				.n_node_backends = 3 };
	struct frontend new = { .action = FE_DROP,
				.has_node_set = true,
				.node_action = FE_SERVE,
				.node_backends = new_node,
				.n_node_backends = 2 };
	int n = 0;

	parse_or_fail("10.0.0.1", &a.addr);
	parse_or_fail("10.0.0.1", &b.addr);
	parse_or_fail("10.0.0.1", &c.addr);
	old_local[0] = a;
	old_node[0] = a, old_node[1] = b, old_node[2] = c;
	new_node[0] = a, new_node[1] = b;
	frontend_removed_backends(&old, &new, removed_count, &n);
	assert_int_equal(n, 1); /* c; a stays in the node set */
	n = 0;
	frontend_removed_backends(&old, NULL, removed_count, &n);
	assert_int_equal(n, 3); /* a once */
	assert_false(frontend_equal(&old, &new));
}

static void test_external_ip_and_lb_frontends(void **state)
{
	struct ip_addr external[1], lb[1];
	struct cidr ranges[2];
	const struct frontend *fe;
	struct frontend_list list;
	struct fixture f;

	build_fixture(&local_and_remote, &f);
	f.svc.type = SVC_LOAD_BALANCER;
	parse_or_fail("192.0.2.10", &external[0]);
	parse_or_fail("198.51.100.7", &lb[0]);
	assert_true(cidr_parse("203.0.113.0/24", &ranges[0]));
	assert_true(cidr_parse("2001:db8::1/32", &ranges[1]));
	f.svc.external_ips = external;
	f.svc.n_external_ips = 1;
	f.svc.lb_ingress_ips = lb;
	f.svc.n_lb_ingress_ips = 1;
	f.svc.lb_source_cidrs = ranges;
	f.svc.n_lb_source_cidrs = 2;
	assert_int_equal(resolve_service(&f.in, &list), 0);
	fe = find_frontend(&list, &external[0], PROTO_TCP, 80);
	assert_non_null(fe);
	assert_int_equal(fe->kind, FE_EXTERNAL_IP);
	assert_int_equal(fe->n_source_ranges, 0);
	assert_int_equal(fe->n_backends, 2);
	fe = find_frontend(&list, &lb[0], PROTO_TCP, 80);
	assert_non_null(fe);
	assert_int_equal(fe->kind, FE_LB_INGRESS);
	assert_int_equal(fe->n_source_ranges, 2);
	/* Host bits of a range are cleared when it is parsed. */
	assert_int_equal(fe->source_ranges[1].prefix_len, 32);
	assert_int_equal(fe->source_ranges[1].addr.bytes[4], 0);
	/* No marker for external addresses: only ClusterIPs refuse unknown ports. */
	assert_null(find_frontend(&list, &lb[0], 0, 0));
	frontend_list_clear(&list);
}

static const struct CMUnitTest property_tests[] = {
	cmocka_unit_test(test_headless_yields_nothing),
	cmocka_unit_test(test_local_policy_node_set),
	cmocka_unit_test(test_removed_backends_both_sets),
	cmocka_unit_test(test_external_name_yields_nothing),
	cmocka_unit_test(test_ignored_service_yields_nothing),
	cmocka_unit_test(test_ignored_slice_contributes_nothing),
	cmocka_unit_test(test_no_cluster_ip_yields_nothing),
	cmocka_unit_test(test_marker_frontend_present),
	cmocka_unit_test(test_marker_present_without_endpoints),
	cmocka_unit_test(test_sctp_port_served),
	cmocka_unit_test(test_affinity_timeout_copied),
	cmocka_unit_test(test_output_sorted_dual_stack),
	cmocka_unit_test(test_externally_reachable_node_port),
	cmocka_unit_test(test_externally_reachable_external_ip),
	cmocka_unit_test(test_externally_reachable_lb_ingress),
	cmocka_unit_test(test_resolve_endpoints_gives_both_sets),
	cmocka_unit_test(test_frontend_equal_and_key_order),
	cmocka_unit_test(test_state_names),
	cmocka_unit_test(test_node_port_cluster_policy),
	cmocka_unit_test(test_node_port_local_policy),
	cmocka_unit_test(test_external_ip_and_lb_frontends),
	cmocka_unit_test(test_dsr_frontends_carry_their_backends_nodes),
	cmocka_unit_test(test_dsr_node_address_change_is_a_change),
};

int main(void)
{
	struct CMUnitTest tests[ARRAY_SIZE(cases) + ARRAY_SIZE(property_tests)];
	size_t i, n = 0;

	/* Debug lines on stderr show the resolver's explanation next to a failure. */
	if (getenv("SLUICE_TEST_DEBUG"))
		log_set_level(LOG_DEBUG);
	else
		log_set_level(LOG_WARN);
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		tests[n] = (struct CMUnitTest){ .name = cases[i].name,
						.test_func = run_case,
						.initial_state = (void *)&cases[i] };
		n++;
	}
	for (i = 0; i < ARRAY_SIZE(property_tests); i++)
		tests[n++] = property_tests[i];
	return cmocka_run_group_tests_name("resolver", tests, NULL, NULL);
}
