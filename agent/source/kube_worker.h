/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the two sides of the API server source share (internal to
 * agent/source): the worker threads (kube_worker.c) list and watch one
 * resource each and queue what changed; the main thread (source_kube.c)
 * moves the queue into the store. They meet in struct kube_source.
 */
#ifndef SLUICE_KUBE_WORKER_H
#define SLUICE_KUBE_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "core/store.h"
#include "lib/strmap.h"
#include "source/kube_client.h"
#include "source/manifest.h"
#include "source/source.h"

enum resource_id { RES_SERVICES, RES_SLICES, RES_NODES, N_RESOURCES };

struct resource {
	struct kube_source *src;
	enum resource_id id;
	const char *name; /* for log lines */
	const char *path; /* collection URL path */
	char *selector; /* "&labelSelector=..." or "&fieldSelector=..." */
	pthread_t thread;
	bool started;
	char rv[128]; /* last resourceVersion seen; "" until listed */
	bool rv_proven; /* a healthy watch ran since the last list */
	int backoff_ms; /* next delay; 0 after a healthy watch */
	long long last_list_ms; /* monotonic start of the last list, 0 before the first */
	unsigned int seed; /* for jitter */
};

enum change_type { CHANGE_PUT, CHANGE_DELETE, CHANGE_REPLACE };

/* One change for the main thread: decoded objects, or a name to delete. */
struct change {
	struct change *next;
	enum resource_id res;
	enum change_type type;
	struct manifest_objects objs; /* PUT: the object; REPLACE: everything listed */
	char *ns, *name; /* DELETE */
};

struct kube_source {
	struct source base;
	struct store *store;
	struct kube_client *client;
	struct resource res[N_RESOURCES];
	pthread_mutex_t lock; /* guards the queue, n_listed, and cond */
	pthread_cond_t cond; /* signalled on stop and when a first list is done */
	struct change *head, **tail;
	int n_listed; /* resources whose first list is queued */
	int efd; /* readable when the queue is not empty */
	atomic_bool stop;
	atomic_size_t rejected;
	atomic_size_t rejected_of[4]; /* by enum rejected_kind (source.h), for metrics */
	size_t max_event_bytes; /* the longest watch line accepted */
	size_t max_list_bytes; /* the largest list page body accepted */
	struct strmap known[N_RESOURCES]; /* keys of what we put in the store (main thread) */
};

/*
 * Fills in resource id of src (its name, path and selector; node_name is
 * the one Node to watch). Returns 0 or -ENOMEM; r->selector is then NULL.
 */
int kube_resource_init(struct resource *r, struct kube_source *src, enum resource_id id,
		       const char *node_name);
/* The thread of one resource (arg: its struct resource): lists, then watches, until stop. */
void *kube_resource_thread(void *arg);

#endif
