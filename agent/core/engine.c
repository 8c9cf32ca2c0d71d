// SPDX-License-Identifier: Apache-2.0
/*
 * The engine: turns what changed in the store into a diff of desired state
 * and hands it to its outputs (the datapath first). Only Services whose
 * inputs changed are resolved again, so one change costs O(that Service).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/engine.h"
#include "core/resolver.h"
#include "lib/intern.h"
#include "lib/log.h"
#include "lib/xalloc.h"

struct pending {
	char *key; /* service key */
	struct frontend_list *next; /* resolved, owner conflicts removed */
};

static void update_node_ports(struct engine *eng, const struct node *node);

void engine_init(struct engine *eng, struct store *store, const char *node_name)
{
	memset(eng, 0, sizeof(*eng));
	eng->store = store;
	eng->node_name = node_name;
	eng->next_id = 1;
	store_changes_init(&eng->pending);
	strmap_init(&eng->current);
	strmap_init(&eng->owners);
	strmap_init(&eng->contenders);
	strmap_init(&eng->node_addrs);
	strmap_init(&eng->node_unknown_logged);
	update_node_ports(eng, NULL);
}

void engine_set_dsr_default(struct engine *eng, bool dsr)
{
	eng->dsr_default = dsr;
}

int engine_add_output(struct engine *eng, const char *name, const struct output_ops *ops, void *ctx)
{
	if (eng->n_outputs == ENGINE_MAX_OUTPUTS)
		return -ENOSPC;
	eng->outputs[eng->n_outputs++] = (struct output){ .name = name, .ops = ops, .ctx = ctx };
	return 0;
}

static void list_free(struct frontend_list *list)
{
	if (!list)
		return;
	frontend_list_clear(list);
	free(list);
}

void engine_destroy(struct engine *eng)
{
	struct strmap_iter it;
	struct strmap_entry *e;

	for (e = strmap_first(&eng->current, &it); e; e = strmap_next(&eng->current, &it)) {
		struct engine_service *rec = e->value;

		frontend_list_clear(&rec->list);
		free(rec);
	}
	for (e = strmap_first(&eng->owners, &it); e; e = strmap_next(&eng->owners, &it))
		intern_put(e->value);
	strmap_destroy(&eng->current);
	for (e = strmap_first(&eng->contenders, &it); e; e = strmap_next(&eng->contenders, &it))
		free(e->value);
	strmap_destroy(&eng->owners);
	strmap_destroy(&eng->contenders);
	for (e = strmap_first(&eng->node_addrs, &it); e; e = strmap_next(&eng->node_addrs, &it))
		free(e->value);
	strmap_destroy(&eng->node_addrs);
	strmap_destroy(&eng->node_unknown_logged);
	free(eng->free_ids);
	store_changes_destroy(&eng->pending);
	free(eng->node_zone);
	node_port_addrs_clear(&eng->node_ports);
}

size_t engine_pending(const struct engine *eng)
{
	return store_pending(eng->store) + eng->pending.services.count + eng->pending.nodes.count;
}

size_t engine_services(const struct engine *eng)
{
	return eng->n_services;
}

const struct frontend_list *engine_applied(const struct engine *eng, const char *key)
{
	const struct engine_service *rec = strmap_get(&eng->current, key);

	return rec && rec->list.n ? &rec->list : NULL;
}

const char *engine_node_zone(const struct engine *eng)
{
	return eng->node_zone;
}

/* Adds (sign 1) or takes away (-1) a list's frontends and backends from the totals. */
static void count_applied(struct engine *eng, const struct frontend_list *list, int sign)
{
	for (size_t i = 0; list && i < list->n; i++) {
		if (!list->items[i].key.proto)
			continue;
		eng->n_frontends += sign;
		eng->n_backends += sign * (long)list->items[i].n_backends;
	}
}

static const char *fe_key_text(const struct frontend_key *key, char *buf, size_t len)
{
	char addr[IP_ADDR_STRLEN];

	snprintf(buf, len, "%s/%u/%u", ip_addr_format(&key->addr, addr), key->proto, key->port);
	return buf;
}

/* The NodePort addresses for the Node as it is now; logged and marked when they change. */
static void update_node_ports(struct engine *eng, const struct node *node)
{
	static const struct node_port_spec every = { 0 };
	struct node_port_addrs now;
	char text[256];

	node_port_addrs_compute(eng->node_port_spec ? eng->node_port_spec : &every, node, &now);
	if (node_port_addrs_equal(&now, &eng->node_ports)) {
		node_port_addrs_clear(&now);
		return;
	}
	if (eng->node_port_spec && eng->node_port_spec->primary)
		pr_info("node %s: NodePorts answer on %s%s", eng->node_name,
			node_port_addrs_text(&now, text, sizeof(text)),
			node ? "" : " (no Node object yet: its primary addresses are unknown)");
	node_port_addrs_clear(&eng->node_ports);
	eng->node_ports = now;
	eng->node_ports_dirty = true;
}

void engine_set_node_ports(struct engine *eng, const struct node_port_spec *spec)
{
	eng->node_port_spec = spec;
	node_port_addrs_clear(&eng->node_ports);
	update_node_ports(eng, store_get_node(eng->store, eng->node_name));
}

/* The first address of family in a Node's status.addresses (its primary one), or NULL. */
static const struct ip_addr *node_primary(const struct node *node, uint8_t family)
{
	for (int i = 0; node && i < node->n_addresses; i++) {
		if (node->addresses[i].family == family)
			return &node->addresses[i];
	}
	return NULL;
}

/* The resolver's node_addr: another node's primary address, for DSR; unknown logged once. */
static const struct ip_addr *dsr_node_addr(void *ctx, const char *name, uint8_t family)
{
	struct engine *eng = ctx;
	const struct ip_addr *addr = node_primary(store_get_node(eng->store, name), family);
	char key[300];

	if (addr)
		return addr;
	snprintf(key, sizeof(key), "%s %u", name, family);
	if (!strmap_get(&eng->node_unknown_logged, key)) {
		strmap_put(&eng->node_unknown_logged, key, (void *)1);
		pr_info("node %s: no %s address known (no Node object, or none in its "
			"status.addresses): DSR Services reach their backends there with SNAT",
			name, family == AF_INET ? "IPv4" : "IPv6");
	}
	return NULL;
}

/*
 * Another node's addresses changed: the DSR frontends (the only ones that
 * use them) are resolved again. Rare, so a walk of the applied state.
 */
static void check_other_node(struct engine *eng, const char *name)
{
	const struct node *node = store_get_node(eng->store, name);
	char text[2 * IP_ADDR_STRLEN + 2] = "", a4[IP_ADDR_STRLEN] = "", a6[IP_ADDR_STRLEN] = "";
	const struct ip_addr *addr;
	struct strmap_iter it;
	struct strmap_entry *e;
	char *seen;

	if ((addr = node_primary(node, AF_INET)))
		ip_addr_format(addr, a4);
	if ((addr = node_primary(node, AF_INET6)))
		ip_addr_format(addr, a6);
	snprintf(text, sizeof(text), "%s %s", a4, a6);
	seen = strmap_get(&eng->node_addrs, name);
	if (seen && !strcmp(seen, text))
		return;
	free(strmap_put(&eng->node_addrs, name, xstrdup(text)));
	snprintf(text, sizeof(text), "%s %u", name, AF_INET);
	strmap_remove(&eng->node_unknown_logged, text);
	snprintf(text, sizeof(text), "%s %u", name, AF_INET6);
	strmap_remove(&eng->node_unknown_logged, text);
	for (e = strmap_first(&eng->current, &it); e; e = strmap_next(&eng->current, &it)) {
		const struct frontend_list *list = e->value;

		for (size_t i = 0; list && i < list->n; i++) {
			if (list->items[i].dsr) {
				store_mark_changed(eng->store, e->key);
				break;
			}
		}
	}
}

/*
 * A change of this node's Node object: its zone changes every Service's
 * topology, its addresses the NodePort addresses (--nodeport-addresses=primary).
 * Other nodes' addresses matter to DSR frontends.
 */
static void check_node(struct engine *eng)
{
	const struct node *node;
	const char *zone;
	struct strmap_iter it;
	struct strmap_entry *e;

	for (e = strmap_first(&eng->pending.nodes, &it); e;
	     e = strmap_next(&eng->pending.nodes, &it)) {
		if (strcmp(e->key, eng->node_name))
			check_other_node(eng, e->key);
	}
	store_take_changes(eng->store, &eng->pending);
	if (!strmap_get(&eng->pending.nodes, eng->node_name))
		goto out;
	node = store_get_node(eng->store, eng->node_name);
	update_node_ports(eng, node);
	zone = node ? node->zone : NULL;
	if ((zone == NULL) != (eng->node_zone == NULL) || (zone && strcmp(zone, eng->node_zone))) {
		pr_info("node %s: zone is now %s", eng->node_name, zone ? zone : "(none)");
		free(eng->node_zone);
		eng->node_zone = zone ? xstrdup(zone) : NULL;
		store_mark_all_dirty(eng->store);
		store_take_changes(eng->store, &eng->pending);
	}
out:
	strmap_destroy(&eng->pending.nodes);
}

/* Takes the lowest id of the free_ids min-heap. */
static uint32_t take_free_id(struct engine *eng)
{
	uint32_t *h = eng->free_ids, top = h[0], v;
	size_t n = --eng->n_free_ids, i = 0, c;

	if (!n)
		return top;
	v = h[n];
	while ((c = 2 * i + 1) < n) {
		if (c + 1 < n && h[c + 1] < h[c])
			c++;
		if (v <= h[c])
			break;
		h[i] = h[c];
		i = c;
	}
	h[i] = v;
	return top;
}

/* Gives a Service's id back (the Service is gone): the next new Service may take it. */
static void release_id(struct engine *eng, uint32_t id)
{
	size_t i, parent;

	if (!id)
		return;
	if (eng->n_free_ids == eng->cap_free_ids) {
		eng->cap_free_ids = eng->cap_free_ids ? 2 * eng->cap_free_ids : 64;
		eng->free_ids = xreallocarray(eng->free_ids, eng->cap_free_ids, sizeof(uint32_t));
	}
	for (i = eng->n_free_ids++; i; i = parent) {
		parent = (i - 1) / 2;
		if (eng->free_ids[parent] <= id)
			break;
		eng->free_ids[i] = eng->free_ids[parent];
	}
	eng->free_ids[i] = id;
}

/* The Service's id: the one it has, else the lowest free one. */
static uint32_t service_id(struct engine *eng, const char *key)
{
	struct engine_service *rec = strmap_get(&eng->current, key);

	if (!rec) {
		rec = xcalloc(1, sizeof(*rec));
		rec->id = eng->n_free_ids ? take_free_id(eng) : eng->next_id++;
		strmap_put(&eng->current, key, rec);
	}
	return rec->id;
}

/*
 * Drops frontends whose key another Service already owns (two manifests
 * claiming one ClusterIP): the first owner keeps it, the newcomer is logged.
 */
static void drop_conflicts(struct engine *eng, struct strmap *claims, const char *svc_key,
			   struct frontend_list *list)
{
	size_t kept = 0;
	char text[96];

	for (size_t i = 0; i < list->n; i++) {
		const char *owner = strmap_get(&eng->owners, fe_key_text(&list->items[i].key, text,
									 sizeof(text)));

		/* Claims made earlier in this same flush count too. */
		if (!owner || !strcmp(owner, svc_key))
			owner = strmap_get(claims, text);
		if (owner && strcmp(owner, svc_key)) {
			if (list->items[i].key.proto)
				pr_warn("Service %s: %s is already served by Service %s; ignored",
					svc_key, text, owner);
			/* It gets the frontend once the owner lets it go. */
			free(strmap_put(&eng->contenders, text, xstrdup(svc_key)));
			frontend_clear(&list->items[i]);
			continue;
		}
		strmap_put(claims, text, (void *)svc_key);
		list->items[kept++] = list->items[i];
	}
	list->n = kept;
}

static struct frontend_list *resolve_one(struct engine *eng, struct strmap *claims, const char *key)
{
	const struct service *svc = store_get_service(eng->store, key);
	const struct slice_group *group;
	struct resolve_input in = { 0 };
	struct frontend_list *list;

	list = xcalloc(1, sizeof(*list));
	if (!svc)
		return list;
	group = store_service_slices(eng->store, key);
	in.svc = svc;
	in.slices = group ? (const struct endpoint_slice *const *)group->slices : NULL;
	in.n_slices = group ? group->n : 0;
	in.node_name = eng->node_name;
	in.node_zone = eng->node_zone;
	in.service_id = service_id(eng, key);
	in.dsr_default = eng->dsr_default;
	in.node_addr = dsr_node_addr;
	in.node_addr_ctx = eng;
	if (resolve_service(&in, list)) {
		free(list);
		return NULL;
	}
	drop_conflicts(eng, claims, key, list);
	return list;
}

static void push_change(struct state_diff *diff, size_t *cap, const struct frontend *old,
			const struct frontend *new)
{
	if (diff->n_changes == *cap) {
		*cap = *cap ? *cap * 2 : 64;
		diff->changes = xreallocarray(diff->changes, *cap, sizeof(*diff->changes));
	}
	diff->changes[diff->n_changes].old = old;
	diff->changes[diff->n_changes].new = new;
	diff->n_changes++;
}

/* Merge-walks two sorted lists into changes. */
static void diff_lists(struct state_diff *diff, size_t *cap, const struct frontend_list *old,
		       const struct frontend_list *new)
{
	size_t i = 0, j = 0, n_old = old ? old->n : 0, n_new = new->n;

	while (i < n_old || j < n_new) {
		int cmp = i == n_old ? 1 :
			  j == n_new ? -1 :
				       frontend_key_cmp(&old->items[i].key, &new->items[j].key);

		if (cmp < 0) {
			push_change(diff, cap, &old->items[i++], NULL);
		} else if (cmp > 0) {
			push_change(diff, cap, NULL, &new->items[j++]);
		} else {
			if (!frontend_equal(&old->items[i], &new->items[j]))
				push_change(diff, cap, &old->items[i], &new->items[j]);
			i++;
			j++;
		}
	}
}

static void record_owners(struct engine *eng, const char *key, const struct frontend_list *old,
			  const struct frontend_list *new)
{
	char text[96];

	for (size_t i = 0; old && i < old->n; i++)
		intern_put(strmap_remove(&eng->owners,
					 fe_key_text(&old->items[i].key, text, sizeof(text))));
	/* The frontends' own (interned) copy of the key: one string per Service. */
	for (size_t i = 0; i < new->n; i++)
		intern_put(strmap_put(&eng->owners,
				      fe_key_text(&new->items[i].key, text, sizeof(text)),
				      intern_get(key)));
	/* A frontend let go: the Service that lost it to this one is resolved again. */
	for (size_t i = 0; old && i < old->n; i++) {
		char *loser;

		fe_key_text(&old->items[i].key, text, sizeof(text));
		if (strmap_get(&eng->owners, text))
			continue;
		loser = strmap_remove(&eng->contenders, text);
		if (loser)
			store_mark_changed(eng->store, loser);
		free(loser);
	}
}

/* Hands the diff to every output in order; the first failure stops the flush. */
static int apply_outputs(struct engine *eng, const struct state_diff *diff)
{
	for (size_t i = 0; i < eng->n_outputs; i++) {
		const struct output *out = &eng->outputs[i];
		int err = out->ops->apply ? out->ops->apply(out->ctx, diff) : 0;

		if (err) {
			pr_warn("%s: apply of %zu changes failed: %s", out->name, diff->n_changes,
				strerror(-err));
			return err;
		}
	}
	return 0;
}

static void notify_outputs(struct engine *eng, const struct service_applied *sa)
{
	for (size_t i = 0; i < eng->n_outputs; i++) {
		const struct output *out = &eng->outputs[i];

		if (out->ops->service_applied)
			out->ops->service_applied(out->ctx, sa);
	}
}

/* Makes todo[i] the applied state of its Service and tells the outputs. */
static void record_applied(struct engine *eng, struct pending *p)
{
	struct engine_service *rec = strmap_get(&eng->current, p->key);
	const struct frontend_list *old = rec && rec->list.n ? &rec->list : NULL;
	const struct service *svc = store_get_service(eng->store, p->key);
	struct service_applied sa = { .key = p->key, .svc = svc, .frontends = p->next };

	record_owners(eng, p->key, old, p->next);
	count_applied(eng, old, -1);
	count_applied(eng, p->next, 1);
	notify_outputs(eng, &sa);
	eng->n_services += (p->next->n > 0) - (old != NULL);
	if (rec) {
		frontend_list_clear(&rec->list);
		rec->list = *p->next;
		free(p->next);
	} else {
		list_free(p->next);
	}
	p->next = NULL;
	/* Gone, and nothing applied any more: its id is free for the next new Service. */
	if (rec && !rec->list.n && !svc) {
		strmap_remove(&eng->current, p->key);
		release_id(eng, rec->id);
		free(rec);
	}
}

static int cmp_pending(const void *a, const void *b)
{
	return strcmp(((const struct pending *)a)->key, ((const struct pending *)b)->key);
}

int engine_flush(struct engine *eng)
{
	struct state_diff diff = { .full = !eng->synced };
	struct strmap *changed = &eng->pending.services;
	struct pending *todo = NULL;
	struct strmap claims;
	struct strmap_iter it;
	struct strmap_entry *e;
	size_t n = 0, cap = 0;
	int err = 0;

	store_take_changes(eng->store, &eng->pending);
	check_node(eng);
	if (!changed->count && eng->synced && !eng->node_ports_dirty)
		return 0;
	if (eng->node_ports_dirty || !eng->synced)
		diff.node_ports = &eng->node_ports;
	todo = xcalloc(changed->count + 1, sizeof(*todo));
	for (e = strmap_first(changed, &it); e; e = strmap_next(changed, &it))
		todo[n++].key = e->key;
	/* By name, so that every node settles two claims on one frontend alike. */
	qsort(todo, n, sizeof(*todo), cmp_pending);
	strmap_init(&claims);
	for (size_t i = 0; i < n; i++) {
		todo[i].next = resolve_one(eng, &claims, todo[i].key);
		if (!todo[i].next) {
			err = -EINVAL;
			goto out;
		}
		diff_lists(&diff, &cap, engine_applied(eng, todo[i].key), todo[i].next);
	}

	err = apply_outputs(eng, &diff);
	if (err)
		goto out;
	pr_debug("applied %zu changes for %zu services", diff.n_changes, n);
	eng->synced = true;
	eng->node_ports_dirty = false;
	for (size_t i = 0; i < n; i++)
		record_applied(eng, &todo[i]);
	strmap_destroy(changed);
out:
	strmap_destroy(&claims);
	for (size_t i = 0; i < n; i++)
		list_free(todo[i].next);
	free(todo);
	free(diff.changes);
	return err;
}
