// SPDX-License-Identifier: Apache-2.0
/*
 * The nftables datapath's planner: how each change of a diff is carried
 * out (nothing, the chain rewritten, or removed and added), the order of
 * the messages in the batch, and the per-Service bookkeeping that adds a
 * Service's limit objects with its first limited frontend and deletes them
 * with its last.
 */
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <linux/netfilter/nf_tables.h>

#include "lib/log.h"
#include "lib/xalloc.h"
#include "datapath/nft/nft_batch.h"
#include "datapath/nft/nft_classify.h"
#include "datapath/nft/nft_datapath.h"
#include "datapath/nft/nft_elems.h"
#include "datapath/nft/nft_firewall.h"
#include "datapath/nft/nft_frontend.h"
#include "datapath/nft/nft_node_ports.h"
#include "datapath/nft/nft_objects.h"
#include "datapath/nft/nft_plan.h"
#include "datapath/nft/nft_ranges.h"
#include "datapath/nft/nft_ratelimit.h"
#include "datapath/nft/nft_refusals.h"
#include "datapath/nft/nft_skeleton.h"

/*
 * A Service with a rate limit: its objects (rate/admitted/limited.NS.NAME)
 * and chain (limit.NS.NAME) exist while refs > 0, refs being the
 * frontends in the kernel that carry the limit. A counted Service
 * (nft_fe_counted): its refusal counters exist while crefs > 0 (its
 * frontends in the kernel), its refuse.NS.NAME chain while n_refused > 0
 * (refused frontends), drop.NS.NAME while n_dropped > 0.
 */
struct svc_state {
	uint32_t refs, crefs, n_refused, n_dropped;
	struct rate_limit rate; /* as programmed */
	/* While an apply is being built; committed only if the kernel accepts it. */
	int64_t delta, cdelta, rdelta, ddelta;
	struct rate_limit new_rate;
	bool touched;
	char *service; /* "ns/name" */
};

/* ---- what can be programmed at all ---- */

size_t nft_plan_nameable(const struct state_diff *diff, struct state_diff *out)
{
	const char *logged = NULL;
	size_t left_out = 0, n = 0;

	*out = *diff;
	for (size_t i = 0; i < diff->n_changes && !left_out; i++) {
		const struct frontend *before = diff->changes[i].old, *after = diff->changes[i].new;

		left_out = (before && nft_fe_unnameable(before)) ||
			   (after && nft_fe_unnameable(after));
	}
	if (!left_out)
		return 0;
	left_out = 0;
	out->changes = xcalloc(diff->n_changes, sizeof(*out->changes));
	for (size_t i = 0; i < diff->n_changes; i++) {
		struct frontend_change ch = diff->changes[i];
		const char *why;

		/* Never programmed: there is nothing of it in the kernel to remove or change. */
		if (ch.old && nft_fe_unnameable(ch.old)) {
			ch.old = NULL;
			left_out++;
		}
		why = ch.new ? nft_fe_unnameable(ch.new) : NULL;
		if (why) {
			/* A Service's frontends come together in a diff: one line for them all. */
			if (!logged || strcmp(logged, ch.new->service))
				pr_warn("nft: Service %.256s: not programmed: %s; the rest is applied",
					ch.new->service, why);
			logged = ch.new->service;
			ch.new = NULL;
			left_out++;
		}
		if (ch.old || ch.new)
			out->changes[n++] = ch;
	}
	out->n_changes = n;
	return left_out;
}

/* ---- per-Service bookkeeping of one apply ---- */

static struct svc_state *svc_touch(struct datapath *dp, const char *service)
{
	struct svc_state *svc = strmap_get(&dp->services, service);

	if (!svc) {
		svc = xcalloc(1, sizeof(*svc));
		svc->service = xstrdup(service);
		strmap_put(&dp->services, service, svc);
	}
	if (!svc->touched) {
		if (dp->n_touched == dp->cap_touched) {
			dp->cap_touched = dp->cap_touched ? 2 * dp->cap_touched : 64;
			dp->touched =
				xreallocarray(dp->touched, dp->cap_touched, sizeof(*dp->touched));
		}
		dp->touched[dp->n_touched++] = svc;
		svc->touched = true;
		svc->delta = 0;
		svc->cdelta = 0;
		svc->rdelta = 0;
		svc->ddelta = 0;
		svc->new_rate = svc->rate;
	}
	return svc;
}

/* A counted frontend holds its Service's counters, and its refuse. or drop. chain. */
static void plan_counted(struct datapath *dp, const struct frontend *fe, int d)
{
	enum nft_fe_class cls = nft_fe_classify(fe);
	struct svc_state *svc;

	if (!nft_fe_counted(fe, dp->count_all))
		return;
	svc = svc_touch(dp, fe->service);
	svc->cdelta += d;
	if (cls == NFT_FE_REFUSE)
		svc->rdelta += d;
	else if (cls == NFT_FE_DROP)
		svc->ddelta += d;
}

void nft_services_plan(struct datapath *dp, const struct state_diff *diff)
{
	for (size_t i = 0; i < diff->n_changes; i++) {
		const struct frontend *old = diff->changes[i].old, *new = diff->changes[i].new;
		struct svc_state *svc;

		if (old && !diff->full)
			plan_counted(dp, old, -1);
		if (new)
			plan_counted(dp, new, 1);
		if (old && nft_fe_has_rate(old) && !diff->full)
			svc_touch(dp, old->service)->delta--;
		if (new &&nft_fe_has_rate(new)) {
			svc = svc_touch(dp, new->service);
			svc->delta++;
			svc->new_rate = new->rate;
		}
	}
}

/* n + d, not below 0. */
static uint32_t count_after(uint32_t n, int64_t d)
{
	return (int64_t)n + d > 0 ? (uint32_t)((int64_t)n + d) : 0;
}

static bool rate_equal(const struct rate_limit *a, const struct rate_limit *b)
{
	return a->count == b->count && a->period == b->period && a->burst == b->burst;
}

static void svc_warn_clamped(const struct svc_state *svc)
{
	uint32_t burst = nft_limit_kernel_burst(&svc->new_rate);

	if (burst != svc->new_rate.burst)
		pr_warn("nft: Service %s: burst %u at %u/%us exceeds nft_limit's 64-bit bucket; "
			"using burst %u",
			svc->service, svc->new_rate.burst, svc->new_rate.count,
			svc->new_rate.period, burst);
}

/* Adds the objects of Services that gain their first limited frontend, updates changed limits. */
static void svc_build_adds(struct datapath *dp, struct nft_batch *b, const struct strmap *old)
{
	for (size_t i = 0; i < dp->n_touched; i++) {
		struct svc_state *svc = dp->touched[i];
		int64_t after = (int64_t)svc->refs + svc->delta;

		if (svc->refs == 0 && after > 0) {
			struct nft_old_counter a =
				nft_old_counter_get(old, NFT_SVC_ADMITTED, svc->service);
			struct nft_old_counter l =
				nft_old_counter_get(old, NFT_SVC_LIMITED, svc->service);

			svc_warn_clamped(svc);
			nft_msg_svc_add(b, svc->service, &svc->new_rate, a.pkts, a.bytes, l.pkts,
					l.bytes);
		} else if (svc->refs > 0 && after > 0 && !rate_equal(&svc->rate, &svc->new_rate)) {
			svc_warn_clamped(svc);
			nft_msg_svc_update(b, svc->service, &svc->new_rate);
		}
		/* Counters before the chains and firewall rules that name them. */
		if (!svc->crefs && count_after(svc->crefs, svc->cdelta)) {
			uint64_t pkts[NFT_REFUSALS], bytes[NFT_REFUSALS];

			for (int k = 0; k < NFT_REFUSALS; k++) {
				struct nft_old_counter c = nft_old_counter_get(
					old, nft_refusal_counters[k], svc->service);

				pkts[k] = c.pkts;
				bytes[k] = c.bytes;
			}
			nft_msg_refusals_add(b, svc->service, pkts, bytes);
		}
		if (!svc->n_refused && count_after(svc->n_refused, svc->rdelta))
			nft_msg_refusal_chain_add(b, svc->service, false);
		if (!svc->n_dropped && count_after(svc->n_dropped, svc->ddelta))
			nft_msg_refusal_chain_add(b, svc->service, true);
	}
}

/* Deletes the objects of Services whose last limited frontend went (after the chain work). */
static void svc_build_dels(struct datapath *dp, struct nft_batch *b)
{
	for (size_t i = 0; i < dp->n_touched; i++) {
		struct svc_state *svc = dp->touched[i];

		if (svc->refs > 0 && (int64_t)svc->refs + svc->delta <= 0)
			nft_msg_svc_del(b, svc->service);
		/* No element jumps to the chains any more; then no rule names the counters. */
		if (svc->n_refused && !count_after(svc->n_refused, svc->rdelta))
			nft_msg_refusal_chain_del(b, svc->service, false);
		if (svc->n_dropped && !count_after(svc->n_dropped, svc->ddelta))
			nft_msg_refusal_chain_del(b, svc->service, true);
		if (svc->crefs && !count_after(svc->crefs, svc->cdelta))
			nft_msg_refusals_del(b, svc->service);
	}
}

void nft_services_finish(struct datapath *dp, bool ok)
{
	for (size_t i = 0; i < dp->n_touched; i++) {
		struct svc_state *svc = dp->touched[i];

		svc->touched = false;
		if (ok) {
			svc->refs = count_after(svc->refs, svc->delta);
			svc->crefs = count_after(svc->crefs, svc->cdelta);
			svc->n_refused = count_after(svc->n_refused, svc->rdelta);
			svc->n_dropped = count_after(svc->n_dropped, svc->ddelta);
			svc->rate = svc->new_rate;
		}
		/* A Service without objects is not remembered. */
		if (!svc->refs && !svc->crefs) {
			strmap_remove(&dp->services, svc->service);
			free(svc->service);
			free(svc);
		}
	}
	dp->n_touched = 0;
}

void nft_services_clear(struct datapath *dp)
{
	struct strmap_iter it;

	for (struct strmap_entry *e = strmap_first(&dp->services, &it); e;
	     e = strmap_next(&dp->services, &it)) {
		struct svc_state *svc = e->value;

		free(svc->service);
		free(svc);
	}
	strmap_destroy(&dp->services);
	strmap_init(&dp->services);
}

/* ---- one frontend's programming ---- */

/*
 * The functions below program one chain of a frontend (side): fe is the
 * frontend for NFT_SIDE_MAIN, its node view for NFT_SIDE_NODE.
 *
 * A served chain's whole programming: endpoint chains (affinity) or its
 * range of its backends4/6-N map, the chain, its rules. A full sync defers
 * writing the range's elements (defer_backends, base returned in base_out)
 * until every rule is written.
 */
static void add_served(struct datapath *dp, struct nft_batch *b, const struct frontend *fe,
		       enum nft_side side, bool defer_backends, uint32_t *base_out)
{
	uint32_t base = 0;

	if (nft_fe_has_affinity(fe)) {
		for (size_t i = 0; i < fe->n_backends; i++)
			nft_msg_ep_add(b, fe, side, &fe->backends[i]);
	} else {
		if (!nft_range_alloc_for(dp, fe, side, &base))
			return;
		if (!defer_backends)
			nft_msg_fe_backends(b, NFT_MSG_NEWSETELEM, fe, side, base);
	}
	nft_msg_fe_chain_add(b, &fe->key, side);
	nft_msg_fe_rules(b, fe, side, base);
	if (base_out)
		*base_out = base;
}

/*
 * Deleting the chain drops its references; then its endpoint chains and
 * sets, or its range of its backends4/6-N map.
 */
static void remove_served(struct datapath *dp, struct nft_batch *b, const struct frontend *fe,
			  enum nft_side side)
{
	const struct idx_range *r = nft_range_of(dp, fe, side);

	nft_msg_fe_chain_del(b, &fe->key, side);
	if (nft_fe_has_affinity(fe))
		for (size_t i = 0; i < fe->n_backends; i++)
			nft_msg_ep_del(b, fe, side, &fe->backends[i]);
	if (r) {
		nft_msg_fe_backends(b, NFT_MSG_DELSETELEM, fe, side, r->base);
		nft_range_release(dp, fe, side, r);
	}
}

/* The node chain of each side of a change: the node view, NULL without a node chain. */
struct node_side {
	struct frontend old_view, new_view;
	const struct frontend *old, *new;
};

static void node_side_of(const struct frontend *old, const struct frontend *new,
			 struct node_side *ns)
{
	ns->old = NULL;
	ns->new = NULL;
	if (old && nft_fe_has_node_chain(old)) {
		nft_fe_node_view(old, &ns->old_view);
		ns->old = &ns->old_view;
	}
	if (new &&nft_fe_has_node_chain(new)) {
		nft_fe_node_view(new, &ns->new_view);
		ns->new = &ns->new_view;
	}
}

/* A chain's backends in a full sync: sorted by map, then by diff order (deterministic). */
struct full_backends {
	uint32_t map; /* v6 << 16 | shard */
	uint32_t change; /* its index in the diff */
	uint32_t base;
	enum nft_side side;
};

static int cmp_full_backends(const void *a, const void *b)
{
	const struct full_backends *x = a, *y = b;

	if (x->map != y->map)
		return x->map < y->map ? -1 : 1;
	if (x->change != y->change)
		return x->change < y->change ? -1 : 1;
	return (int)x->side - (int)y->side;
}

static uint32_t map_of(const struct nft_batch *b, const struct frontend *fe)
{
	return (uint32_t)(fe->key.addr.family == AF_INET6) << 16 |
	       nft_fe_backend_shard(&fe->key, b->n_shards);
}

static void build_full_backends(struct nft_batch *b, const struct state_diff *diff,
				const uint32_t *bases, const uint32_t *node_bases)
{
	struct full_backends *items = xcalloc(2 * diff->n_changes + 1, sizeof(*items));
	struct nft_backends_pack pack = { 0 };
	struct node_side ns;
	size_t n = 0;

	for (size_t i = 0; i < diff->n_changes; i++) {
		const struct frontend *fe = diff->changes[i].new;

		if (!fe)
			continue;
		if (nft_fe_classify(fe) == NFT_FE_SERVE && !nft_fe_has_affinity(fe))
			items[n++] = (struct full_backends){ map_of(b, fe), (uint32_t)i, bases[i],
							     NFT_SIDE_MAIN };
		node_side_of(NULL, fe, &ns);
		if (ns.new && !nft_fe_has_affinity(ns.new))
			items[n++] = (struct full_backends){ map_of(b, ns.new), (uint32_t)i,
							     node_bases[i], NFT_SIDE_NODE };
	}
	qsort(items, n, sizeof(*items), cmp_full_backends);
	for (size_t i = 0; i < n && !b->err; i++) {
		const struct frontend *fe = diff->changes[items[i].change].new;

		if (items[i].side == NFT_SIDE_NODE) {
			node_side_of(NULL, fe, &ns);
			fe = ns.new;
		}
		nft_backends_pack(b, &pack, NFT_MSG_NEWSETELEM, fe, items[i].side, items[i].base);
	}
	nft_backends_pack_flush(b, &pack);
	free(items);
}

void nft_build_full(struct datapath *dp, struct nft_batch *b, const struct state_diff *diff,
		    const struct strmap *old)
{
	size_t n = diff->n_changes ? diff->n_changes : 1;
	uint32_t *bases = xcalloc(n, sizeof(*bases)), *node_bases = xcalloc(n, sizeof(*bases));

	nft_msg_table_add(b);
	nft_msg_table_del(b);
	nft_msg_table_add(b);
	nft_msg_skeleton(b, &dp->port_shift, b->n_shards);
	nft_msg_node_port_addrs(b, diff->node_ports, false);
	svc_build_adds(dp, b, old);
	for (size_t i = 0; i < diff->n_changes; i++) {
		const struct frontend *fe = diff->changes[i].new;
		struct node_side ns;

		if (fe && nft_fe_classify(fe) == NFT_FE_SERVE)
			add_served(dp, b, fe, NFT_SIDE_MAIN, true, &bases[i]);
		node_side_of(NULL, fe, &ns);
		if (ns.new)
			add_served(dp, b, ns.new, NFT_SIDE_NODE, true, &node_bases[i]);
		if (fe)
			nft_msg_fw_add(b, fe);
	}
	/*
	 * The backends after every rule: the kernel checks a map's elements
	 * each time a rule binds it (a walk of the whole map) and each rule's
	 * binding each time an element is added (a list step). Binding while
	 * the map is empty leaves only the cheaper of the two. Map by map, so
	 * that messages are full.
	 */
	build_full_backends(b, diff, bases, node_bases);
	free(bases);
	free(node_bases);
	for (size_t i = 0; i < diff->n_changes; i++) {
		if (diff->changes[i].new) {
			nft_batch_queue_elem(b, NFT_MSG_NEWSETELEM, diff->changes[i].new);
			nft_batch_queue_node_elem(b, NFT_MSG_NEWSETELEM, diff->changes[i].new);
			nft_batch_queue_fw_elem(b, NFT_MSG_NEWSETELEM, diff->changes[i].new);
		}
	}
	nft_batch_flush_elems(b);
}

/* ---- planning one change ---- */

static bool same_backends(const struct frontend *a, const struct frontend *b)
{
	if (a->n_backends != b->n_backends || a->key.proto != b->key.proto)
		return false;
	for (size_t i = 0; i < a->n_backends; i++)
		if (backend_cmp(&a->backends[i], &b->backends[i]))
			return false;
	return true;
}

static bool same_limit_jump(const struct frontend *a, const struct frontend *b)
{
	if (nft_fe_has_rate(a) != nft_fe_has_rate(b))
		return false;
	return !nft_fe_has_rate(a) || !strcmp(a->service, b->service);
}

/* Refused or dropped: a counted frontend's element jumps to its Service's chain. */
static bool same_refusal_chain(const struct frontend *a, const struct frontend *b, bool all)
{
	bool ca = nft_fe_counted(a, all), cb = nft_fe_counted(b, all);

	return ca == cb && (!ca || !strcmp(a->service, b->service));
}

/* How one change is carried out. */
enum change_plan {
	PLAN_NOTHING, /* same programming */
	PLAN_REPLACE_RULE, /* served before and after: flush the chain, write it again */
	PLAN_REMOVE_ADD, /* remove the old programming, add the new */
};

/* For either side of a change; a side that has no chain before or after is NULL there. */
static enum change_plan plan_change(const struct frontend *old, const struct frontend *new,
				    bool all)
{
	enum nft_fe_class co, cn;

	if (!old && !new)
		return PLAN_NOTHING;
	if (!old || !new || frontend_key_cmp(&old->key, &new->key))
		return PLAN_REMOVE_ADD;
	co = nft_fe_classify(old);
	cn = nft_fe_classify(new);
	if (co != cn)
		return PLAN_REMOVE_ADD;
	/* Another verdict in the same map: the element is deleted and added in this batch. */
	if (co != NFT_FE_SERVE)
		return same_refusal_chain(old, new, all) ? PLAN_NOTHING : PLAN_REMOVE_ADD;
	/* A new limit value alone changes only the Service's objects, not this chain. */
	if (same_backends(old, new) && old->affinity_timeout == new->affinity_timeout &&
	    same_limit_jump(old, new) && nft_fe_masquerades(old) == nft_fe_masquerades(new) &&
	    old->maglev == new->maglev)
		return PLAN_NOTHING;
	return PLAN_REPLACE_RULE;
}

/*
 * The source-range firewall of a LB frontend lives beside its class
 * (a refused or dropped frontend keeps it too): removed, added, or, with
 * the same key on both sides, its set refilled when the ranges changed.
 */
struct fw_plan {
	bool del, add, update;
};

static struct fw_plan plan_firewall(const struct frontend *old, const struct frontend *new,
				    bool all)
{
	bool had = old && nft_fe_has_firewall(old), has = new &&nft_fe_has_firewall(new);
	struct fw_plan p = { 0 };

	/* Counting starts or stops (or another counter): the chain is written again. */
	if (had && has && !frontend_key_cmp(&old->key, &new->key) &&
	    same_refusal_chain(old, new, all)) {
		p.update = !nft_fw_same_ranges(old, new);
		return p;
	}
	p.del = had;
	p.add = has;
	return p;
}

/*
 * Endpoint chains of a served frontend whose backends or affinity changed:
 * kept for backends in both (their clients stay remembered), deleted for
 * backends that went, added for new ones. A new timeout re-creates them
 * all (the kernel cannot change a set's timeout). Backends are sorted.
 */
static void replace_endpoints(struct nft_batch *b, const struct frontend *old,
			      const struct frontend *new, enum nft_side side)
{
	bool old_aff = nft_fe_has_affinity(old), new_aff = nft_fe_has_affinity(new);
	size_t i = 0, j = 0;

	if (!old_aff || !new_aff || old->affinity_timeout != new->affinity_timeout) {
		if (old_aff)
			for (i = 0; i < old->n_backends; i++)
				nft_msg_ep_del(b, old, side, &old->backends[i]);
		if (new_aff)
			for (j = 0; j < new->n_backends; j++)
				nft_msg_ep_add(b, new, side, &new->backends[j]);
		return;
	}
	while (i < old->n_backends || j < new->n_backends) {
		int cmp = i == old->n_backends ? 1 :
			  j == new->n_backends ? -1 :
						 backend_cmp(&old->backends[i], &new->backends[j]);

		if (cmp < 0)
			nft_msg_ep_del(b, old, side, &old->backends[i++]);
		else if (cmp > 0)
			nft_msg_ep_add(b, new, side, &new->backends[j++]);
		else
			i++, j++;
	}
}

/* The rule would read the same: only which backends fill its range differ. */
static bool same_dnat_rule(const struct frontend *old, const struct frontend *new)
{
	return !nft_fe_has_affinity(old) && !nft_fe_has_affinity(new) && !old->maglev &&
	       !new->maglev &&nft_fe_usable_backends(old) == nft_fe_usable_backends(new) &&
	       same_limit_jump(old, new) && nft_fe_masquerades(old) == nft_fe_masquerades(new);
}

/*
 * A served frontend whose chain is written again (flushed and refilled in
 * this batch). Without affinity and with the same backends it keeps its
 * range; new backends get a new range, added before the rule that uses it,
 * and the old range's elements are deleted after it, in the same batch.
 * As many backends as before, the rule otherwise alike: only the range's
 * elements are deleted and added again (one transaction: packets see the
 * old ones or the new ones). No rule is written, so the commit does not
 * validate every chain of the table (a written DNAT rule makes the kernel
 * do that: about 190 ms at 100k frontends).
 */
static void replace_served(struct datapath *dp, struct nft_batch *b, const struct frontend *old,
			   const struct frontend *new, enum nft_side side)
{
	const struct idx_range *r = nft_range_of(dp, old, side);
	bool keep = r && !nft_fe_has_affinity(new) && same_backends(old, new);
	uint32_t base = keep ? r->base : 0;

	if (r && !keep && same_dnat_rule(old, new)) {
		nft_msg_fe_backends(b, NFT_MSG_DELSETELEM, old, side, r->base);
		nft_msg_fe_backends(b, NFT_MSG_NEWSETELEM, new, side, r->base);
		return;
	}

	if (!keep && !nft_fe_has_affinity(new)) {
		if (!nft_range_alloc_for(dp, new, side, &base))
			return;
		nft_msg_fe_backends(b, NFT_MSG_NEWSETELEM, new, side, base);
	}
	/* One transaction: packets see the old rules or the new ones. */
	nft_msg_fe_chain_flush(b, &new->key, side);
	replace_endpoints(b, old, new, side);
	nft_msg_fe_rules(b, new, side, base);
	if (r && !keep) {
		nft_msg_fe_backends(b, NFT_MSG_DELSETELEM, old, side, r->base);
		nft_range_release(dp, old, side, r);
	}
}

/*
 * The node chain of a change, beside the main one and in the same batch:
 * added or removed with its element of node-services4/6 (node-nodeports4/6)
 * when the frontend gains or loses it, rewritten in place (same handle and
 * element) when its node set, affinity or rate limit changes.
 */
static void build_node_side(struct datapath *dp, struct nft_batch *b,
			    const struct frontend_change *ch)
{
	struct node_side ns;

	node_side_of(ch->old, ch->new, &ns);
	switch (plan_change(ns.old, ns.new, b->count_all)) {
	case PLAN_NOTHING:
		break;
	case PLAN_REPLACE_RULE:
		replace_served(dp, b, ns.old, ns.new, NFT_SIDE_NODE);
		break;
	case PLAN_REMOVE_ADD:
		if (ns.old)
			remove_served(dp, b, ns.old, NFT_SIDE_NODE);
		if (ns.new) {
			add_served(dp, b, ns.new, NFT_SIDE_NODE, false, NULL);
			nft_batch_queue_node_elem(b, NFT_MSG_NEWSETELEM, ch->new);
		}
		break;
	}
}

void nft_build_incremental(struct datapath *dp, struct nft_batch *b, const struct state_diff *diff)
{
	if (diff->node_ports)
		nft_msg_node_port_addrs(b, diff->node_ports, true);
	for (size_t i = 0; i < diff->n_changes; i++) {
		const struct frontend_change *ch = &diff->changes[i];
		struct node_side ns;

		if (ch->old && plan_change(ch->old, ch->new, b->count_all) == PLAN_REMOVE_ADD)
			nft_batch_queue_elem(b, NFT_MSG_DELSETELEM, ch->old);
		node_side_of(ch->old, ch->new, &ns);
		if (ns.old && plan_change(ns.old, ns.new, b->count_all) == PLAN_REMOVE_ADD)
			nft_batch_queue_node_elem(b, NFT_MSG_DELSETELEM, ch->old);
		if (plan_firewall(ch->old, ch->new, b->count_all).del)
			nft_batch_queue_fw_elem(b, NFT_MSG_DELSETELEM, ch->old);
	}
	nft_batch_flush_elems(b);
	svc_build_adds(dp, b, NULL);
	for (size_t i = 0; i < diff->n_changes; i++) {
		const struct frontend_change *ch = &diff->changes[i];
		struct fw_plan fw = plan_firewall(ch->old, ch->new, b->count_all);

		if (fw.del)
			nft_msg_fw_del(b, &ch->old->key);
		if (fw.add)
			nft_msg_fw_add(b, ch->new);
		if (fw.update)
			nft_msg_fw_update(b, ch->new);
		if (fw.add)
			nft_batch_queue_fw_elem(b, NFT_MSG_NEWSETELEM, ch->new);
		switch (plan_change(ch->old, ch->new, b->count_all)) {
		case PLAN_NOTHING:
			break;
		case PLAN_REPLACE_RULE:
			replace_served(dp, b, ch->old, ch->new, NFT_SIDE_MAIN);
			break;
		case PLAN_REMOVE_ADD:
			if (ch->old && nft_fe_classify(ch->old) == NFT_FE_SERVE)
				remove_served(dp, b, ch->old, NFT_SIDE_MAIN);
			if (ch->new &&nft_fe_classify(ch->new) == NFT_FE_SERVE)
				add_served(dp, b, ch->new, NFT_SIDE_MAIN, false, NULL);
			if (ch->new)
				nft_batch_queue_elem(b, NFT_MSG_NEWSETELEM, ch->new);
			break;
		}
		build_node_side(dp, b, ch);
	}
	svc_build_dels(dp, b);
	nft_batch_flush_elems(b);
}
