// SPDX-License-Identifier: Apache-2.0
/*
 * The engine: turns what changed in the store into a diff of desired state
 * and hands it to the datapath. Only Services whose inputs changed are
 * resolved again, so one change costs O(that Service).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/engine.h"
#include "lib/log.h"
#include "core/resolver.h"

struct pending {
	char *key; /* service key */
	struct frontend_list *next; /* resolved, owner conflicts removed */
};

void engine_init(struct engine *eng, struct store *store, const struct datapath_ops *ops,
		 struct datapath *dp, const char *node_name)
{
	memset(eng, 0, sizeof(*eng));
	eng->store = store;
	eng->ops = ops;
	eng->dp = dp;
	eng->node_name = node_name;
	eng->next_id = 1;
	strmap_init(&eng->current);
	strmap_init(&eng->owners);
	strmap_init(&eng->ids);
	hc_servers_init(&eng->health_checks);
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

	for (e = strmap_first(&eng->current, &it); e; e = strmap_next(&eng->current, &it))
		list_free(e->value);
	for (e = strmap_first(&eng->owners, &it); e; e = strmap_next(&eng->owners, &it))
		free(e->value);
	strmap_destroy(&eng->current);
	strmap_destroy(&eng->owners);
	strmap_destroy(&eng->ids);
	hc_servers_destroy(&eng->health_checks);
	free(eng->node_zone);
}

size_t engine_pending(const struct engine *eng)
{
	return eng->store->dirty_services.count + eng->store->dirty_nodes.count;
}

static const char *fe_key_text(const struct frontend_key *key, char *buf, size_t len)
{
	char addr[IP_ADDR_STRLEN];

	snprintf(buf, len, "%s/%u/%u", ip_addr_format(&key->addr, addr), key->proto, key->port);
	return buf;
}

/* A zone change on this node's Node object changes every Service's topology. */
static void check_node(struct engine *eng)
{
	const struct node *node;
	const char *zone;

	if (!strmap_get(&eng->store->dirty_nodes, eng->node_name))
		goto out;
	node = store_get_node(eng->store, eng->node_name);
	zone = node ? node->zone : NULL;
	if ((zone == NULL) != (eng->node_zone == NULL) || (zone && strcmp(zone, eng->node_zone))) {
		pr_info("node %s: zone is now %s", eng->node_name, zone ? zone : "(none)");
		free(eng->node_zone);
		eng->node_zone = zone ? strdup(zone) : NULL;
		store_mark_all_dirty(eng->store);
	}
out:
	strmap_destroy(&eng->store->dirty_nodes);
}

static uint32_t service_id(struct engine *eng, const char *key)
{
	uintptr_t id = (uintptr_t)strmap_get(&eng->ids, key);

	if (!id) {
		id = eng->next_id++;
		strmap_put(&eng->ids, key, (void *)id);
	}
	return (uint32_t)id;
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

	list = calloc(1, sizeof(*list));
	if (!list)
		return NULL;
	if (!svc)
		return list;
	group = store_service_slices(eng->store, key);
	in.svc = svc;
	in.slices = group ? (const struct endpoint_slice *const *)group->slices : NULL;
	in.n_slices = group ? group->n : 0;
	in.node_name = eng->node_name;
	in.node_zone = eng->node_zone;
	in.service_id = service_id(eng, key);
	if (resolve_service(&in, list)) {
		free(list);
		return NULL;
	}
	drop_conflicts(eng, claims, key, list);
	return list;
}

static int push_change(struct state_diff *diff, size_t *cap, const struct frontend *old,
		       const struct frontend *new)
{
	if (diff->n_changes == *cap) {
		size_t n = *cap ? *cap * 2 : 64;
		struct frontend_change *c = realloc(diff->changes, n * sizeof(*c));

		if (!c)
			return -ENOMEM;
		diff->changes = c;
		*cap = n;
	}
	diff->changes[diff->n_changes].old = old;
	diff->changes[diff->n_changes].new = new;
	diff->n_changes++;
	return 0;
}

/* Merge-walks two sorted lists into changes. */
static int diff_lists(struct state_diff *diff, size_t *cap, const struct frontend_list *old,
		      const struct frontend_list *new)
{
	size_t i = 0, j = 0, n_old = old ? old->n : 0, n_new = new->n;
	int err = 0;

	while (!err && (i < n_old || j < n_new)) {
		int cmp = i == n_old ? 1 :
			  j == n_new ? -1 :
				       frontend_key_cmp(&old->items[i].key, &new->items[j].key);

		if (cmp < 0) {
			err = push_change(diff, cap, &old->items[i++], NULL);
		} else if (cmp > 0) {
			err = push_change(diff, cap, NULL, &new->items[j++]);
		} else {
			if (!frontend_equal(&old->items[i], &new->items[j]))
				err = push_change(diff, cap, &old->items[i], &new->items[j]);
			i++;
			j++;
		}
	}
	return err;
}

static void record_owners(struct engine *eng, const char *key, const struct frontend_list *old,
			  const struct frontend_list *new)
{
	char text[96];

	for (size_t i = 0; old && i < old->n; i++)
		free(strmap_remove(&eng->owners,
				   fe_key_text(&old->items[i].key, text, sizeof(text))));
	for (size_t i = 0; i < new->n; i++) {
		char *owner = strdup(key);

		if (!owner)
			abort();
		free(strmap_put(&eng->owners, fe_key_text(&new->items[i].key, text, sizeof(text)),
				owner));
	}
}

int engine_flush(struct engine *eng)
{
	struct state_diff diff = { .full = !eng->synced };
	struct pending *todo = NULL;
	struct strmap claims;
	struct strmap_iter it;
	struct strmap_entry *e;
	size_t n = 0, cap = 0;
	int err = 0;

	check_node(eng);
	if (!eng->store->dirty_services.count && eng->synced)
		return 0;
	todo = calloc(eng->store->dirty_services.count + 1, sizeof(*todo));
	if (!todo)
		return -ENOMEM;
	strmap_init(&claims);
	for (e = strmap_first(&eng->store->dirty_services, &it); e;
	     e = strmap_next(&eng->store->dirty_services, &it)) {
		todo[n].key = e->key;
		todo[n].next = resolve_one(eng, &claims, e->key);
		if (!todo[n].next) {
			err = -ENOMEM;
			goto out;
		}
		err = diff_lists(&diff, &cap, strmap_get(&eng->current, e->key), todo[n].next);
		n++;
		if (err)
			goto out;
	}

	err = eng->ops->apply(eng->dp, &diff);
	if (err) {
		pr_warn("datapath %s: apply of %zu changes failed: %s", eng->ops->name,
			diff.n_changes, strerror(-err));
		goto out;
	}
	pr_debug("applied %zu changes for %zu services", diff.n_changes, n);
	eng->synced = true;
	for (size_t i = 0; i < n; i++) {
		struct frontend_list *old = strmap_get(&eng->current, todo[i].key);

		record_owners(eng, todo[i].key, old, todo[i].next);
		hc_servers_update(&eng->health_checks, todo[i].key,
				  store_get_service(eng->store, todo[i].key), todo[i].next);
		if (todo[i].next->n) {
			strmap_put(&eng->current, todo[i].key, todo[i].next);
		} else {
			strmap_remove(&eng->current, todo[i].key);
			list_free(todo[i].next);
			if (!store_get_service(eng->store, todo[i].key))
				strmap_remove(&eng->ids, todo[i].key);
		}
		todo[i].next = NULL;
		list_free(old);
	}
	strmap_destroy(&eng->store->dirty_services);
out:
	strmap_destroy(&claims);
	for (size_t i = 0; i < n; i++)
		list_free(todo[i].next);
	free(todo);
	free(diff.changes);
	return err;
}
