/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the nftables datapath does with one frontend: its class, and the
 * predicates that both the planner and the message builders ask of it.
 */
#ifndef SLUICE_NFT_CLASSIFY_H
#define SLUICE_NFT_CLASSIFY_H

#include <stdbool.h>
#include <stddef.h>

#include "core/state.h"

/* What the datapath does with one frontend in nftables terms. */
enum nft_fe_class {
	NFT_FE_SKIP, /* not programmed here (not IPv4/IPv6) */
	NFT_FE_MARKER, /* element of service-addrs */
	NFT_FE_SERVE, /* chain + DNAT rule + element of services (nodeports) */
	NFT_FE_REFUSE, /* element of no-endpoints (no-endpoint-nodeports): reject */
	NFT_FE_DROP, /* element of no-endpoints (no-endpoint-nodeports): drop */
};

enum nft_fe_class nft_fe_classify(const struct frontend *fe);
/* 0.0.0.0 or ::, the address of a NodePort's key. */
bool nft_addr_unspecified(const struct ip_addr *addr);
/* A NodePort: the unspecified address, served on every local address (fib daddr type local). */
bool nft_fe_is_node_port(const struct frontend *fe);
/* True if fe's flows are marked for masquerade (external kinds, externalTrafficPolicy Cluster). */
bool nft_fe_masquerades(const struct frontend *fe);
/* Backends of fe usable for DNAT (same family as the frontend). */
size_t nft_fe_usable_backends(const struct frontend *fe);
/* True if fe is served with session affinity (one endpoint chain per backend). */
bool nft_fe_has_affinity(const struct frontend *fe);
/* True if fe carries a rate limit (its Service's objects exist while it does). */
bool nft_fe_has_rate(const struct frontend *fe);
/*
 * True if fe's refusals are counted per Service (nft_refusals.h): it is
 * served, refused or dropped, and its Service is rate-limited, or any
 * Service with all (--metrics-all-services), and has a nameable key.
 */
bool nft_fe_counted(const struct frontend *fe, bool all);
/*
 * True if fe restricts its sources: a LB ingress frontend with source
 * ranges of its own family (as kube-proxy, ranges of the other family are
 * ignored; none left means everyone is allowed).
 */
bool nft_fe_has_firewall(const struct frontend *fe);
/*
 * True if fe has a second chain for traffic born on the node (fe-out-...,
 * reached from nat-output through node-services4/6 or node-nodeports4/6):
 * an external frontend under externalTrafficPolicy Local whose node set
 * (the cluster-wide endpoints, has_node_set) has a backend of its family.
 * kube-proxy's "short-circuit local traffic". Without one, traffic born on
 * the node is treated as traffic from outside (a node set without endpoints
 * goes with a main chain without them: refused by the filter chains).
 */
bool nft_fe_has_node_chain(const struct frontend *fe);
/*
 * fe as its node chain serves it, sharing fe's arrays: the node set, the
 * masquerade mark (as kube-proxy masquerades local traffic), the same
 * affinity and rate limit, no source ranges (those stay with fe).
 */
void nft_fe_node_view(const struct frontend *fe, struct frontend *view);

#endif
