/* SPDX-License-Identifier: Apache-2.0 */
/*
 * --nodeport-addresses: which of this node's addresses NodePorts answer
 * on, as kube-proxy's flag of that name: a list of CIDRs, or "primary"
 * (the Node object's primary address in each family). What the datapaths
 * get is the result for the node as it is now (struct node_port_addrs).
 */
#ifndef SLUICE_NODE_PORTS_H
#define SLUICE_NODE_PORTS_H

#include <stdbool.h>
#include <stddef.h>

#include "core/model.h"
#include "lib/addr.h"

/* The flag, parsed. */
struct node_port_spec {
	bool primary; /* "primary" */
	struct cidr *cidrs; /* the CIDR list; none with primary */
	size_t n_cidrs;
};

/*
 * The addresses NodePorts answer on now: per family, every address of the
 * node (all_v4/all_v6), or the node's addresses inside one of cidrs.
 */
struct node_port_addrs {
	bool all_v4, all_v6;
	struct cidr *cidrs; /* both families */
	size_t n_cidrs;
};

/*
 * Parses the flag's value ("primary", or CIDRs joined by ','). Returns 0,
 * or -EINVAL with the reason in why.
 */
int node_port_spec_parse(const char *text, struct node_port_spec *out, char *why, size_t len);
void node_port_spec_clear(struct node_port_spec *spec);

/*
 * The addresses for spec on node (NULL: no Node object seen). As
 * kube-proxy: a family without a CIDR in the list, or without a primary
 * address (primary), answers on all its addresses.
 */
void node_port_addrs_compute(const struct node_port_spec *spec, const struct node *node,
			     struct node_port_addrs *out);
bool node_port_addrs_match(const struct node_port_addrs *np, const struct ip_addr *addr);
bool node_port_addrs_equal(const struct node_port_addrs *a, const struct node_port_addrs *b);
/* "all", or the CIDRs joined by ',' (with "all IPv6" and such), for log lines. */
const char *node_port_addrs_text(const struct node_port_addrs *np, char *buf, size_t len);
/* A deep copy of src into dst (cleared first). */
void node_port_addrs_copy(struct node_port_addrs *dst, const struct node_port_addrs *src);
void node_port_addrs_clear(struct node_port_addrs *np);

#endif
