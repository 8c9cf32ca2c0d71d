// SPDX-License-Identifier: Apache-2.0
/*
 * The resolver: one Service, its EndpointSlices and this node's name and
 * zone in; the sorted frontends that Service needs out, with kube-proxy's
 * topology, traffic-policy and terminating-fallback rules (design.md
 * section 4). Pure: no kernel, no globals, only pr_debug lines.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/intern.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "core/resolver.h"

#define DEFAULT_AFFINITY_TIMEOUT 10800 /* Kubernetes' default timeoutSeconds */

/* One (address, port) an endpoint offers for a service port, before deduplication. */
struct candidate {
	struct backend be;
	const struct endpoint *ep;
	const struct endpoint_slice *slice;
	size_t order; /* position in the input, so that ties resolve the same way each time */
};

struct candidates {
	struct candidate *items;
	size_t n, cap;
};

/* Which endpoints a set takes. */
enum pick {
	PICK_READY_IN_MODE, /* ready, and allowed by the topology mode */
	PICK_SERVING_TERMINATING, /* not ready, serving and terminating */
	PICK_LOCAL_READY,
	PICK_LOCAL_SERVING_TERMINATING,
};

struct topology {
	enum backend_choice mode; /* CHOICE_CLUSTER (none), CHOICE_ZONE or CHOICE_NODE */
	const char *node_name;
	const char *zone;
};

/* 2: ready; 1: serving and terminating (usable only when nothing is ready); 0: never used. */
static int usefulness(const struct endpoint *ep)
{
	if (ep->ready)
		return 2;
	if (ep->serving && ep->terminating)
		return 1;
	return 0;
}

static bool names_contain(char *const *names, int n, const char *name)
{
	int i;

	if (!name)
		return false;
	for (i = 0; i < n; i++) {
		if (names[i] && strcmp(names[i], name) == 0)
			return true;
	}
	return false;
}

static bool is_local(const struct endpoint *ep, const char *node_name)
{
	return node_name && ep->node_name && strcmp(ep->node_name, node_name) == 0;
}

static bool name_equal(const char *a, const char *b)
{
	return strcmp(a ? a : "", b ? b : "") == 0;
}

static const char *proto_name(uint8_t proto)
{
	const char *name = l4_proto_name(proto);

	return name ? name : "?";
}

static void candidates_push(struct candidates *cands, const struct candidate *c)
{
	if (cands->n == cands->cap) {
		cands->cap = cands->cap ? cands->cap * 2 : 16;
		cands->items = xreallocarray(cands->items, cands->cap, sizeof(*cands->items));
	}
	cands->items[cands->n++] = *c;
}

/*
 * Address and port; of duplicates, a copy that is not terminating first (as
 * kube-proxy: an address reused by a new pod before the old one is gone
 * belongs to the new pod, even while it is not ready), then the most useful
 * one, then input order.
 */
static int candidate_cmp(const void *pa, const void *pb)
{
	const struct candidate *a = pa, *b = pb;
	int cmp = backend_cmp(&a->be, &b->be);

	if (cmp)
		return cmp;
	cmp = (int)a->ep->terminating - (int)b->ep->terminating;
	if (cmp)
		return cmp;
	cmp = usefulness(b->ep) - usefulness(a->ep);
	if (cmp)
		return cmp;
	return a->order < b->order ? -1 : a->order > b->order;
}

/* The slice's port for a service port: same name and protocol, with a number. */
static const struct slice_port *slice_port_for(const struct endpoint_slice *slice,
					       const struct service_port *port)
{
	int i;

	for (i = 0; i < slice->n_ports; i++) {
		const struct slice_port *sp = &slice->ports[i];

		if (sp->proto == port->proto && sp->port && name_equal(sp->name, port->name))
			return sp;
	}
	return NULL;
}

/* Every endpoint of `port` in `family` across the slices, in input order. */
static void gather_candidates(const struct resolve_input *in, const struct service_port *port,
			      uint8_t family, struct candidates *cands)
{
	size_t s;
	int e;

	for (s = 0; s < in->n_slices; s++) {
		const struct endpoint_slice *slice = in->slices[s];
		const struct slice_port *sp;

		if (!slice || slice->ignored || slice->address_family != family)
			continue;
		sp = slice_port_for(slice, port);
		if (!sp)
			continue;
		for (e = 0; e < slice->n_endpoints; e++) {
			const struct endpoint *ep = &slice->endpoints[e];
			struct candidate c = { .ep = ep, .slice = slice, .order = cands->n };

			/* Only the first address counts, as in kube-proxy. */
			if (ep->n_addresses < 1 || ep->addresses[0].family != family)
				continue;
			c.be.addr = ep->addresses[0];
			c.be.port = sp->port;
			candidates_push(cands, &c);
		}
	}
}

/*
 * Gathers every endpoint of `port` in `family` across the slices, keeps one
 * per (address, port) as candidate_cmp orders them, and drops endpoints that
 * are never used. The result is sorted by address then port.
 */
static void collect_candidates(const struct resolve_input *in, const struct service_port *port,
			       uint8_t family, struct candidates *cands)
{
	size_t kept, i;

	gather_candidates(in, port, family, cands);
	if (cands->n > 1)
		qsort(cands->items, cands->n, sizeof(*cands->items), candidate_cmp);
	kept = 0;
	for (i = 0; i < cands->n; i++) {
		const struct candidate *c = &cands->items[i];

		if (i > 0 && backend_cmp(&c->be, &cands->items[i - 1].be) == 0)
			continue; /* a duplicate that loses to the one before */
		if (usefulness(c->ep) == 0)
			continue;
		cands->items[kept++] = *c;
	}
	cands->n = kept;
}

/*
 * kube-proxy's topology mode, from the ready endpoints only: same node if
 * every one has a node hint and one names this node; else same zone if every
 * one has a zone hint and one names this node's zone; else none.
 */
static enum backend_choice topology_mode(const struct candidates *cands, const char *node_name,
					 const char *zone)
{
	bool all_node_hints = true, all_zone_hints = true;
	bool node_hinted = false, zone_hinted = false;
	size_t i;

	for (i = 0; i < cands->n; i++) {
		const struct endpoint *ep = cands->items[i].ep;

		if (!ep->ready)
			continue;
		if (ep->n_hint_nodes < 1)
			all_node_hints = false;
		else if (names_contain(ep->hint_nodes, ep->n_hint_nodes, node_name))
			node_hinted = true;
		if (ep->n_hint_zones < 1)
			all_zone_hints = false;
		else if (names_contain(ep->hint_zones, ep->n_hint_zones, zone))
			zone_hinted = true;
	}
	/* With no ready endpoint nothing is hinted: no mode. */
	if (all_node_hints && node_hinted)
		return CHOICE_NODE;
	if (all_zone_hints && zone_hinted)
		return CHOICE_ZONE;
	return CHOICE_CLUSTER;
}

static bool picks(const struct endpoint *ep, enum pick pick, const struct topology *topo)
{
	switch (pick) {
	case PICK_READY_IN_MODE:
		if (!ep->ready)
			return false;
		if (topo->mode == CHOICE_NODE)
			return names_contain(ep->hint_nodes, ep->n_hint_nodes, topo->node_name);
		if (topo->mode == CHOICE_ZONE)
			return names_contain(ep->hint_zones, ep->n_hint_zones, topo->zone);
		return true;
	case PICK_SERVING_TERMINATING:
		return usefulness(ep) == 1;
	case PICK_LOCAL_READY:
		return ep->ready && is_local(ep, topo->node_name);
	case PICK_LOCAL_SERVING_TERMINATING:
		return usefulness(ep) == 1 && is_local(ep, topo->node_name);
	}
	return false;
}

/* Fills sel with the candidates that `pick` takes; sel->n_backends is 0 if none. */
static void take(const struct candidates *cands, enum pick pick, const struct topology *topo,
		 struct backend_selection *sel)
{
	size_t i, n = 0;

	for (i = 0; i < cands->n; i++)
		n += picks(cands->items[i].ep, pick, topo);
	sel->backends = NULL;
	sel->n_backends = 0;
	if (!n)
		return;
	sel->backends = xcalloc(n, sizeof(*sel->backends));
	for (i = 0; i < cands->n; i++) {
		if (picks(cands->items[i].ep, pick, topo))
			sel->backends[sel->n_backends++] = cands->items[i].be;
	}
}

static void cluster_set(const struct candidates *cands, const struct topology *topo,
			struct backend_selection *sel)
{
	take(cands, PICK_READY_IN_MODE, topo, sel);
	sel->action = FE_SERVE;
	sel->choice = topo->mode;
	if (sel->n_backends)
		return;
	/* Nothing ready anywhere: serving-and-terminating endpoints, topology ignored. */
	take(cands, PICK_SERVING_TERMINATING, topo, sel);
	sel->choice = CHOICE_TERMINATING;
	if (!sel->n_backends) {
		sel->action = FE_REFUSE;
		sel->choice = CHOICE_NONE;
	}
}

static void local_set(const struct candidates *cands, const struct topology *topo,
		      struct backend_selection *sel)
{
	take(cands, PICK_LOCAL_READY, topo, sel);
	sel->action = FE_SERVE;
	sel->choice = CHOICE_LOCAL;
	if (sel->n_backends)
		return;
	take(cands, PICK_LOCAL_SERVING_TERMINATING, topo, sel);
	sel->choice = CHOICE_LOCAL_TERMINATING;
	if (!sel->n_backends) {
		/* Usable endpoints elsewhere: drop, as kube-proxy does; none at all: refuse. */
		sel->action = cands->n ? FE_DROP : FE_REFUSE;
		sel->choice = CHOICE_NONE;
	}
}

void port_endpoints_clear(struct port_endpoints *pe)
{
	if (!pe)
		return;
	free(pe->cluster.backends);
	free(pe->local.backends);
	memset(pe, 0, sizeof(*pe));
}

void resolve_endpoints(const struct resolve_input *in, const struct service_port *port,
		       uint8_t family, struct port_endpoints *out)
{
	struct candidates cands = { 0 };
	struct topology topo = { .node_name = in->node_name, .zone = in->node_zone };

	memset(out, 0, sizeof(*out));
	collect_candidates(in, port, family, &cands);
	topo.mode = topology_mode(&cands, in->node_name, in->node_zone);
	cluster_set(&cands, &topo, &out->cluster);
	local_set(&cands, &topo, &out->local);
	free(cands.items);
}

/* The topology mode's reason, by the same rule as topology_mode. */
static void explain_mode(const struct candidates *cands, const char *node_name, const char *zone,
			 struct port_explain *out)
{
	const struct candidate *no_node = NULL, *no_zone = NULL;
	bool any_ready = false, any_node = false, any_zone = false;
	size_t i;

	out->mode = topology_mode(cands, node_name, zone);
	if (out->mode == CHOICE_NODE) {
		out->mode_why = TOPO_WHY_NODE_HINTS;
		return;
	}
	if (out->mode == CHOICE_ZONE) {
		out->mode_why = TOPO_WHY_ZONE_HINTS;
		out->zone_hints = true;
		return;
	}
	for (i = 0; i < cands->n; i++) {
		const struct candidate *c = &cands->items[i];

		if (!c->ep->ready)
			continue;
		any_ready = true;
		any_node |= c->ep->n_hint_nodes > 0;
		any_zone |= c->ep->n_hint_zones > 0;
		if (c->ep->n_hint_nodes < 1 && !no_node)
			no_node = c;
		if (c->ep->n_hint_zones < 1 && !no_zone)
			no_zone = c;
	}
	if (!any_ready) {
		out->mode_why = TOPO_WHY_NO_READY;
		return;
	}
	if (!any_node && !any_zone) {
		out->mode_why = TOPO_WHY_NO_HINTS;
		return;
	}
	/* Zone hints are what EndpointSlice controllers write: explain by them when present. */
	out->zone_hints = any_zone;
	if (out->zone_hints ? no_zone != NULL : no_node != NULL) {
		out->mode_why = TOPO_WHY_HINT_MISSING;
		out->culprit = (out->zone_hints ? no_zone : no_node)->be;
		return;
	}
	out->mode_why = out->zone_hints && !zone ? TOPO_WHY_NO_ZONE : TOPO_WHY_NOT_FOR_US;
}

static int backend_cmp_void(const void *a, const void *b)
{
	return backend_cmp(a, b);
}

static bool selection_has(const struct backend_selection *sel, const struct backend *be)
{
	return sel->n_backends &&
	       bsearch(be, sel->backends, sel->n_backends, sizeof(*be), backend_cmp_void);
}

/* Why a kept (deduplicated, usable) endpoint is not in sel. */
static enum endpoint_why unused_why(const struct candidate *c, const struct port_explain *pe,
				    const struct topology *topo)
{
	if (pe->local && !is_local(c->ep, topo->node_name))
		return EP_WHY_NOT_LOCAL;
	if (!c->ep->ready)
		return EP_WHY_TERMINATING;
	return topo->mode == CHOICE_NODE ? EP_WHY_OTHER_NODE : EP_WHY_OTHER_ZONE;
}

void explain_endpoints(const struct resolve_input *in, const struct service_port *port,
		       uint8_t family, bool local, struct port_explain *out)
{
	struct candidates raw = { 0 }, kept = { 0 };
	struct topology topo = { .node_name = in->node_name, .zone = in->node_zone };
	struct port_endpoints pe;
	const struct backend_selection *sel;
	size_t i;

	memset(out, 0, sizeof(*out));
	out->local = local;
	collect_candidates(in, port, family, &kept);
	explain_mode(&kept, in->node_name, in->node_zone, out);
	resolve_endpoints(in, port, family, &pe);
	sel = local ? &pe.local : &pe.cluster;
	out->action = sel->action;
	out->choice = sel->choice;
	out->n_used = sel->n_backends;
	topo.mode = out->mode;

	/* Sorted as collect_candidates sorts: the first of equal addresses counts. */
	gather_candidates(in, port, family, &raw);
	if (raw.n > 1)
		qsort(raw.items, raw.n, sizeof(*raw.items), candidate_cmp);
	out->eps = raw.n ? xcalloc(raw.n, sizeof(*out->eps)) : NULL;
	for (i = 0; i < raw.n; i++) {
		const struct candidate *c = &raw.items[i];
		struct endpoint_explain *ee = &out->eps[c->order];

		ee->be = c->be;
		ee->ep = c->ep;
		ee->slice = c->slice->name;
		if (i > 0 && backend_cmp(&c->be, &raw.items[i - 1].be) == 0)
			ee->why = EP_WHY_DUPLICATE;
		else if (usefulness(c->ep) == 0)
			ee->why = EP_WHY_NOT_SERVING;
		else if (selection_has(sel, &c->be))
			ee->why = EP_WHY_USED;
		else
			ee->why = unused_why(c, out, &topo);
	}
	out->n_eps = raw.n;
	free(raw.items);
	free(kept.items);
	port_endpoints_clear(&pe);
}

void port_explain_clear(struct port_explain *pe)
{
	if (!pe)
		return;
	free(pe->eps);
	memset(pe, 0, sizeof(*pe));
}

bool frontend_uses_local(const struct service *svc, enum frontend_kind kind)
{
	return kind == FE_CLUSTER_IP ? svc->internal_local : svc->external_local;
}

bool service_externally_reachable(const struct service *svc)
{
	int i;

	if (svc->n_external_ips > 0 || svc->n_lb_ingress_ips > 0)
		return true;
	if (svc->type != SVC_NODE_PORT && svc->type != SVC_LOAD_BALANCER)
		return false;
	for (i = 0; i < svc->n_ports; i++) {
		if (svc->ports[i].node_port)
			return true;
	}
	return false;
}

void frontend_list_clear(struct frontend_list *list)
{
	size_t i;

	if (!list)
		return;
	for (i = 0; i < list->n; i++)
		frontend_clear(&list->items[i]);
	free(list->items);
	list->items = NULL;
	list->n = 0;
}

static int frontend_cmp(const void *a, const void *b)
{
	return frontend_key_cmp(&((const struct frontend *)a)->key,
				&((const struct frontend *)b)->key);
}

static void log_frontend(const struct frontend *fe)
{
	char addr[IP_ADDR_STRLEN];

	if (log_get_level() < LOG_DEBUG)
		return;
	ip_addr_format(&fe->key.addr, addr);
	if (!fe->key.proto) {
		pr_debug("resolver: %s %s other ports: %s", fe->service, addr,
			 frontend_action_name(fe->action));
		return;
	}
	pr_debug("resolver: %s %s port %u/%s%s%s: %s, choice %s, %zu backends", fe->service, addr,
		 fe->key.port, proto_name(fe->key.proto), *fe->port_name ? " " : "", fe->port_name,
		 frontend_action_name(fe->action), backend_choice_name(fe->choice), fe->n_backends);
}

/* Common fields of every frontend of the Service; takes (shared) copies of the strings. */
static void frontend_init(struct frontend *fe, const struct resolve_input *in,
			  const struct ip_addr *addr, const char *service, const char *port_name)
{
	memset(fe, 0, sizeof(*fe));
	fe->key.addr = *addr;
	fe->kind = FE_CLUSTER_IP;
	fe->service_id = in->service_id;
	fe->service = intern_get(service);
	fe->port_name = intern_get(port_name ? port_name : "");
	/* Markers too: a datapath keeps one limit per Service, from any of its frontends. */
	fe->rate = in->svc->rate;
	fe->maglev = lb_algorithm_is_maglev(in->svc->lb_algorithm);
}

/* An endpoint's address and the node it is on, to find a backend's node. */
struct addr_node {
	struct ip_addr addr;
	const char *node;
};

static int addr_node_cmp(const void *a, const void *b)
{
	return ip_addr_cmp(&((const struct addr_node *)a)->addr,
			   &((const struct addr_node *)b)->addr);
}

/*
 * DSR: the address of each backend's node, family 0 for a backend on this
 * node, without a nodeName, or on a node whose address the caller does not
 * know (those are served with SNAT).
 */
static void backend_nodes_fill(const struct resolve_input *in, struct frontend *fe)
{
	struct addr_node *index = NULL, want, *hit;
	size_t n = 0, cap = 0, s, b;
	const struct ip_addr *addr;
	uint8_t family = fe->key.addr.family;

	fe->backend_nodes =
		xcalloc(fe->n_backends ? fe->n_backends : 1, sizeof(*fe->backend_nodes));
	for (s = 0; s < in->n_slices; s++) {
		const struct endpoint_slice *slice = in->slices[s];

		if (!slice || slice->ignored || slice->address_family != family)
			continue;
		for (int e = 0; e < slice->n_endpoints; e++) {
			const struct endpoint *ep = &slice->endpoints[e];

			if (ep->n_addresses < 1 || !ep->node_name)
				continue;
			if (n == cap) {
				cap = cap ? 2 * cap : 16;
				index = xreallocarray(index, cap, sizeof(*index));
			}
			index[n].addr = ep->addresses[0];
			index[n++].node = ep->node_name;
		}
	}
	if (n > 1)
		qsort(index, n, sizeof(*index), addr_node_cmp);
	for (b = 0; b < fe->n_backends && n; b++) {
		want.addr = fe->backends[b].addr;
		hit = bsearch(&want, index, n, sizeof(*index), addr_node_cmp);
		if (!hit || (in->node_name && !strcmp(hit->node, in->node_name)) || !in->node_addr)
			continue;
		addr = in->node_addr(in->node_addr_ctx, hit->node, family);
		if (addr && addr->family == family)
			fe->backend_nodes[b] = *addr;
	}
	free(index);
}

/* sluice.io/forwarding-mode, else --forwarding-mode; only for traffic from outside, Cluster policy. */
static bool frontend_dsr(const struct resolve_input *in, enum frontend_kind kind)
{
	const struct service *svc = in->svc;

	if (kind == FE_CLUSTER_IP || svc->external_local)
		return false;
	if (svc->forwarding == FORWARDING_DEFAULT)
		return in->dsr_default;
	return svc->forwarding == FORWARDING_DSR;
}

/*
 * One frontend for one service port at one address. The ClusterIP takes
 * the local set under internalTrafficPolicy Local; external kinds take it
 * under externalTrafficPolicy Local, and then keep the client's address.
 */
static void port_frontend(struct frontend *fe, const struct resolve_input *in,
			  const struct ip_addr *addr, enum frontend_kind kind, uint16_t number,
			  const struct service_port *port, const char *service)
{
	const struct service *svc = in->svc;
	struct backend_selection *use;
	struct port_endpoints pe;
	bool local;

	resolve_endpoints(in, port, addr->family, &pe);
	frontend_init(fe, in, addr, service, port->name);
	fe->kind = kind;
	fe->key.proto = port->proto;
	fe->key.port = number;
	if (svc->affinity_client_ip)
		fe->affinity_timeout = svc->affinity_timeout ? svc->affinity_timeout :
							       DEFAULT_AFFINITY_TIMEOUT;
	fe->rate = svc->rate;
	local = frontend_uses_local(svc, kind);
	fe->preserve_source = kind != FE_CLUSTER_IP && svc->external_local;
	if (kind == FE_LB_INGRESS && svc->n_lb_source_cidrs) {
		fe->source_ranges = xcalloc(svc->n_lb_source_cidrs, sizeof(*fe->source_ranges));
		memcpy(fe->source_ranges, svc->lb_source_cidrs,
		       svc->n_lb_source_cidrs * sizeof(*fe->source_ranges));
		fe->n_source_ranges = svc->n_lb_source_cidrs;
	}
	use = local ? &pe.local : &pe.cluster;
	fe->action = use->action;
	fe->choice = use->choice;
	fe->backends = use->backends;
	fe->n_backends = use->n_backends;
	use->backends = NULL; /* now owned by fe */
	fe->dsr = frontend_dsr(in, kind);
	if (fe->dsr)
		backend_nodes_fill(in, fe);
	/*
	 * kube-proxy holds only traffic from outside to an external address to
	 * the Local policy: traffic born on the node takes the cluster set.
	 */
	if (kind != FE_CLUSTER_IP && svc->external_local) {
		fe->has_node_set = true;
		fe->node_action = pe.cluster.action;
		fe->node_choice = pe.cluster.choice;
		fe->node_backends = pe.cluster.backends;
		fe->n_node_backends = pe.cluster.n_backends;
		pe.cluster.backends = NULL;
	}
	port_endpoints_clear(&pe);
}

/* Frontends of one service port at each address of a list (externalIPs, LB ingress IPs). */
static void address_list_frontends(struct frontend *items, size_t *n,
				   const struct resolve_input *in, const struct ip_addr *addrs,
				   int n_addrs, enum frontend_kind kind,
				   const struct service_port *port, const char *service)
{
	for (int a = 0; a < n_addrs; a++)
		port_frontend(&items[(*n)++], in, &addrs[a], kind, port->port, port, service);
}

/* NodePort frontends: one per IP family the Service has a ClusterIP in. */
static void node_port_frontends(struct frontend *items, size_t *n, const struct resolve_input *in,
				const struct service_port *port, const char *service)
{
	const struct service *svc = in->svc;
	bool done_v4 = false, done_v6 = false;

	if (!port->node_port || (svc->type != SVC_NODE_PORT && svc->type != SVC_LOAD_BALANCER))
		return;
	for (int c = 0; c < svc->n_cluster_ips; c++) {
		struct ip_addr any = { .family = svc->cluster_ips[c].family };
		bool *done = any.family == AF_INET ? &done_v4 : &done_v6;

		if (*done)
			continue;
		*done = true;
		port_frontend(&items[(*n)++], in, &any, FE_NODE_PORT, port->node_port, port,
			      service);
	}
}

/* "namespace/name", the Service's name in logs and in every frontend. */
static char *service_key(const struct service *svc)
{
	const char *ns = svc->ns ? svc->ns : "", *name = svc->name ? svc->name : "";
	size_t size = strlen(ns) + 1 + strlen(name) + 1;
	char *key = xmalloc(size);

	snprintf(key, size, "%s/%s", ns, name);
	return key;
}

int resolve_service(const struct resolve_input *in, struct frontend_list *out)
{
	const struct service *svc = in->svc;
	struct frontend *items;
	char *service;
	size_t n = 0, cap, i, kept;
	int c, p;

	out->items = NULL;
	out->n = 0;
	/* Not proxied, as by kube-proxy, and quietly: this runs on every change. */
	if (!svc || svc->ignored || svc->headless || svc->type == SVC_EXTERNAL_NAME ||
	    svc->n_cluster_ips < 1)
		return 0;
	service = service_key(svc);
	cap = (size_t)svc->n_cluster_ips +
	      (size_t)(svc->n_ports > 0 ? svc->n_ports : 0) *
		      ((size_t)svc->n_cluster_ips * 2 + (size_t)svc->n_external_ips +
		       (size_t)svc->n_lb_ingress_ips);
	items = xcalloc(cap, sizeof(*items));
	for (c = 0; c < svc->n_cluster_ips; c++) {
		const struct ip_addr *cluster_ip = &svc->cluster_ips[c];

		/* The marker: ports of this ClusterIP that no frontend serves are refused. */
		frontend_init(&items[n], in, cluster_ip, service, "");
		items[n].action = FE_REFUSE;
		items[n].choice = CHOICE_NONE;
		n++;
		for (p = 0; p < svc->n_ports; p++) {
			const struct service_port *port = &svc->ports[p];

			port_frontend(&items[n++], in, cluster_ip, FE_CLUSTER_IP, port->port, port,
				      service);
		}
	}
	for (p = 0; p < svc->n_ports; p++) {
		const struct service_port *port = &svc->ports[p];

		node_port_frontends(items, &n, in, port, service);
		address_list_frontends(items, &n, in, svc->external_ips, svc->n_external_ips,
				       FE_EXTERNAL_IP, port, service);
		address_list_frontends(items, &n, in, svc->lb_ingress_ips, svc->n_lb_ingress_ips,
				       FE_LB_INGRESS, port, service);
	}
	free(service);
	out->items = items;
	qsort(items, n, sizeof(*items), frontend_cmp);
	/* The API server rejects duplicate ClusterIPs and ports; never hand the datapath two. */
	kept = 0;
	for (i = 0; i < n; i++) {
		if (kept && frontend_key_cmp(&items[kept - 1].key, &items[i].key) == 0) {
			pr_warn("resolver: %s (%s): duplicate frontend for port %u/%s ignored",
				items[i].service, svc->source ? svc->source : "?",
				items[i].key.port, proto_name(items[i].key.proto));
			frontend_clear(&items[i]);
			continue;
		}
		items[kept++] = items[i];
	}
	out->n = kept;
	/* Room was made for every kind of frontend; 100k lists keep only what they use. */
	if (kept && kept < cap)
		out->items = xreallocarray(items, kept, sizeof(*items));
	items = out->items;
	for (i = 0; i < kept; i++)
		log_frontend(&items[i]);
	return 0;
}
