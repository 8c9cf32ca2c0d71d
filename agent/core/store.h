/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The store: the current Services, EndpointSlices and Nodes from every
 * source, indexed so that the engine can find a Service's slices, and the
 * set of Services whose inputs changed since the engine last looked.
 */
#ifndef SLUICE_STORE_H
#define SLUICE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/model.h"
#include "lib/strmap.h"

struct slice_group {
	struct endpoint_slice **slices; /* inline (below) while there are at most two */
	size_t n, cap;
	struct endpoint_slice *inline_slices[2];
};

/* Names of what changed: handed from the store to the engine. */
struct store_changes {
	struct strmap services; /* "ns/name" -> (void *)1 */
	struct strmap nodes; /* name -> (void *)1 */
};

struct store {
	struct strmap services; /* "ns/name" -> struct service * */
	struct strmap slices; /* "ns/name" -> struct endpoint_slice * */
	struct strmap slices_by_service; /* "ns/service" -> struct slice_group * */
	struct strmap nodes; /* name -> struct node * */
	struct store_changes changed; /* since the last store_take_changes() */
	/*
	 * For the sync metrics (kube-proxy's names): Service and EndpointSlice
	 * events ever, and since the last successful apply (store_applied).
	 */
	uint64_t service_changes, slice_changes;
	uint64_t service_changes_pending, slice_changes_pending;
	/* last-change-trigger-times of slice versions not applied yet. */
	double *trigger_times;
	size_t n_trigger_times, cap_trigger_times;
};

void store_init(struct store *st);
void store_destroy(struct store *st);

/*
 * The put functions take ownership and replace an object of the same name;
 * an object equal to the stored one (its source aside) marks nothing changed.
 */
void store_put_service(struct store *st, struct service *svc);
void store_put_slice(struct store *st, struct endpoint_slice *slice);
void store_put_node(struct store *st, struct node *node);
void store_delete_service(struct store *st, const char *ns, const char *name);
void store_delete_slice(struct store *st, const char *ns, const char *name);
void store_delete_node(struct store *st, const char *name);

const struct service *store_get_service(const struct store *st, const char *key);
const struct node *store_get_node(const struct store *st, const char *name);
/* The slices labelled for Service key "ns/name"; NULL if none. */
const struct slice_group *store_service_slices(const struct store *st, const char *key);

/* Marks one Service changed: resolved again on the next flush. */
void store_mark_changed(struct store *st, const char *key);
/* Marks every Service changed (for example when this node's zone changes). */
void store_mark_all_dirty(struct store *st);

void store_changes_init(struct store_changes *c);
void store_changes_destroy(struct store_changes *c);
/* Adds what changed since the last call to *into, and forgets it here. */
void store_take_changes(struct store *st, struct store_changes *into);
/* Number of changed Services and Nodes not yet taken. */
size_t store_pending(const struct store *st);

/*
 * Everything in the store is applied now (the engine flushed it): the
 * pending counts restart at 0, and the trigger times of what was applied
 * are handed to fn (one call each; fn may be NULL) and forgotten.
 */
void store_applied(struct store *st, void (*fn)(double trigger_time, void *arg), void *arg);

/* Writes "ns/name" into buf (size len) and returns buf. */
const char *object_key(char *buf, size_t len, const char *ns, const char *name);

#endif
