// SPDX-License-Identifier: Apache-2.0
/*
 * The store: the current Services, EndpointSlices and Nodes from every
 * source, indexed so that the engine can find a Service's slices, and the
 * set of Services whose inputs changed since the engine last looked.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/store.h"
#include "lib/xalloc.h"

#define KEY_MAX 512

const char *object_key(char *buf, size_t len, const char *ns, const char *name)
{
	snprintf(buf, len, "%s/%s", ns ? ns : "", name ? name : "");
	return buf;
}

void store_init(struct store *st)
{
	memset(st, 0, sizeof(*st));
	strmap_init(&st->services);
	strmap_init(&st->slices);
	strmap_init(&st->slices_by_service);
	strmap_init(&st->nodes);
	store_changes_init(&st->changed);
}

void store_destroy(struct store *st)
{
	struct strmap_iter it;
	struct strmap_entry *e;

	free(st->trigger_times);
	for (e = strmap_first(&st->services, &it); e; e = strmap_next(&st->services, &it))
		service_free(e->value);
	for (e = strmap_first(&st->slices, &it); e; e = strmap_next(&st->slices, &it))
		endpoint_slice_free(e->value);
	for (e = strmap_first(&st->slices_by_service, &it); e;
	     e = strmap_next(&st->slices_by_service, &it)) {
		struct slice_group *group = e->value;

		if (group->slices != group->inline_slices)
			free(group->slices);
		free(group);
	}
	for (e = strmap_first(&st->nodes, &it); e; e = strmap_next(&st->nodes, &it))
		node_free(e->value);
	strmap_destroy(&st->services);
	strmap_destroy(&st->slices);
	strmap_destroy(&st->slices_by_service);
	strmap_destroy(&st->nodes);
	store_changes_destroy(&st->changed);
}

void store_changes_init(struct store_changes *c)
{
	strmap_init(&c->services);
	strmap_init(&c->nodes);
}

void store_changes_destroy(struct store_changes *c)
{
	strmap_destroy(&c->services);
	strmap_destroy(&c->nodes);
}

static void merge_names(struct strmap *into, struct strmap *from)
{
	struct strmap_iter it;
	struct strmap_entry *e;

	if (!into->count) { /* the common case: hand the whole set over */
		strmap_destroy(into);
		*into = *from;
		strmap_init(from);
		return;
	}
	for (e = strmap_first(from, &it); e; e = strmap_next(from, &it))
		strmap_put(into, e->key, (void *)1);
	strmap_destroy(from);
}

void store_take_changes(struct store *st, struct store_changes *into)
{
	merge_names(&into->services, &st->changed.services);
	merge_names(&into->nodes, &st->changed.nodes);
}

size_t store_pending(const struct store *st)
{
	return st->changed.services.count + st->changed.nodes.count;
}

static void mark_dirty(struct store *st, const char *ns, const char *name)
{
	char key[KEY_MAX];

	if (name)
		strmap_put(&st->changed.services, object_key(key, sizeof(key), ns, name),
			   (void *)1);
}

void store_mark_changed(struct store *st, const char *key)
{
	strmap_put(&st->changed.services, key, (void *)1);
}

void store_mark_all_dirty(struct store *st)
{
	struct strmap_iter it;
	struct strmap_entry *e;

	for (e = strmap_first(&st->services, &it); e; e = strmap_next(&st->services, &it))
		strmap_put(&st->changed.services, e->key, (void *)1);
}

/*
 * An equal object (a re-read file, a relist) is no change: the stored one
 * stays and only takes the new one's source, which decides who owns it.
 */
#define KEEP_EQUAL(old, obj, free_fn)          \
	do {                                   \
		char *source = (old)->source;  \
                                               \
		(old)->source = (obj)->source; \
		(obj)->source = source;        \
		free_fn(obj);                  \
	} while (0)

void store_put_service(struct store *st, struct service *svc)
{
	char key[KEY_MAX];
	struct service *old;

	object_key(key, sizeof(key), svc->ns, svc->name);
	old = strmap_get(&st->services, key);
	if (old && service_equal(old, svc)) {
		KEEP_EQUAL(old, svc, service_free);
		return;
	}
	service_free(strmap_put(&st->services, key, svc));
	strmap_put(&st->changed.services, key, (void *)1);
	st->service_changes++;
	st->service_changes_pending++;
}

void store_delete_service(struct store *st, const char *ns, const char *name)
{
	char key[KEY_MAX];

	object_key(key, sizeof(key), ns, name);
	service_free(strmap_remove(&st->services, key));
	strmap_put(&st->changed.services, key, (void *)1);
	st->service_changes++;
	st->service_changes_pending++;
}

static void group_remove(struct store *st, struct endpoint_slice *slice)
{
	char key[KEY_MAX];
	struct slice_group *group;

	if (!slice->service_name)
		return;
	object_key(key, sizeof(key), slice->ns, slice->service_name);
	group = strmap_get(&st->slices_by_service, key);
	if (!group)
		return;
	for (size_t i = 0; i < group->n; i++) {
		if (group->slices[i] == slice) {
			group->slices[i] = group->slices[--group->n];
			break;
		}
	}
	if (!group->n) {
		strmap_remove(&st->slices_by_service, key);
		if (group->slices != group->inline_slices)
			free(group->slices);
		free(group);
	}
}

static void group_add(struct store *st, struct endpoint_slice *slice)
{
	char key[KEY_MAX];
	struct slice_group *group;

	if (!slice->service_name)
		return;
	object_key(key, sizeof(key), slice->ns, slice->service_name);
	group = strmap_get(&st->slices_by_service, key);
	if (!group) {
		group = xcalloc(1, sizeof(*group));
		group->slices = group->inline_slices;
		group->cap = 2;
		strmap_put(&st->slices_by_service, key, group);
	}
	if (group->n == group->cap) {
		bool was_inline = group->slices == group->inline_slices;

		group->cap *= 2;
		group->slices = xreallocarray(was_inline ? NULL : group->slices, group->cap,
					      sizeof(*group->slices));
		if (was_inline)
			memcpy(group->slices, group->inline_slices, sizeof(group->inline_slices));
	}
	group->slices[group->n++] = slice;
}

static void drop_slice(struct store *st, const char *key)
{
	struct endpoint_slice *old = strmap_remove(&st->slices, key);

	if (!old)
		return;
	group_remove(st, old);
	mark_dirty(st, old->ns, old->service_name);
	endpoint_slice_free(old);
}

/* A trigger time this version brings (a re-read of the same version brings none). */
static void note_trigger(struct store *st, const struct endpoint_slice *old,
			 const struct endpoint_slice *slice)
{
	if (!slice->trigger_time || (old && old->trigger_time == slice->trigger_time))
		return;
	if (st->n_trigger_times == st->cap_trigger_times) {
		st->cap_trigger_times = st->cap_trigger_times ? 2 * st->cap_trigger_times : 16;
		st->trigger_times = xreallocarray(st->trigger_times, st->cap_trigger_times,
						  sizeof(*st->trigger_times));
	}
	st->trigger_times[st->n_trigger_times++] = slice->trigger_time;
}

void store_put_slice(struct store *st, struct endpoint_slice *slice)
{
	char key[KEY_MAX];
	struct endpoint_slice *old;

	object_key(key, sizeof(key), slice->ns, slice->name);
	old = strmap_get(&st->slices, key);
	if (old && endpoint_slice_equal(old, slice)) {
		KEEP_EQUAL(old, slice, endpoint_slice_free);
		return;
	}
	note_trigger(st, old, slice);
	st->slice_changes++;
	st->slice_changes_pending++;
	drop_slice(st, key);
	strmap_put(&st->slices, key, slice);
	group_add(st, slice);
	mark_dirty(st, slice->ns, slice->service_name);
}

void store_delete_slice(struct store *st, const char *ns, const char *name)
{
	char key[KEY_MAX];

	st->slice_changes++;
	st->slice_changes_pending++;
	drop_slice(st, object_key(key, sizeof(key), ns, name));
}

void store_put_node(struct store *st, struct node *node)
{
	struct node *old = strmap_get(&st->nodes, node->name);

	if (old && node_equal(old, node)) {
		KEEP_EQUAL(old, node, node_free);
		return;
	}
	node_free(strmap_put(&st->nodes, node->name, node));
	strmap_put(&st->changed.nodes, node->name, (void *)1);
}

void store_delete_node(struct store *st, const char *name)
{
	node_free(strmap_remove(&st->nodes, name));
	strmap_put(&st->changed.nodes, name, (void *)1);
}

const struct service *store_get_service(const struct store *st, const char *key)
{
	return strmap_get(&st->services, key);
}

const struct node *store_get_node(const struct store *st, const char *name)
{
	return strmap_get(&st->nodes, name);
}

const struct slice_group *store_service_slices(const struct store *st, const char *key)
{
	return strmap_get(&st->slices_by_service, key);
}

void store_applied(struct store *st, void (*fn)(double trigger_time, void *arg), void *arg)
{
	for (size_t i = 0; fn && i < st->n_trigger_times; i++)
		fn(st->trigger_times[i], arg);
	st->n_trigger_times = 0;
	st->service_changes_pending = 0;
	st->slice_changes_pending = 0;
}
