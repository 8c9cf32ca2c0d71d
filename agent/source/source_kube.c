// SPDX-License-Identifier: Apache-2.0
/*
 * The API server source (--source=kube): lists, then watches, Services,
 * EndpointSlices and this node's Node, and feeds the store what changed.
 *
 * One thread per resource runs list + watch with libcurl: a paged list
 * (limit/continue) gives a complete state and a resourceVersion; a watch
 * from there (with bookmarks) streams changes. A broken watch resumes from
 * the last resourceVersion seen, after a capped exponential backoff with
 * jitter (kube_worker.c says when a watch counts as broken); 410 Gone
 * (history expired) means a fresh list, which replaces that resource's
 * objects wholesale. A watch line and a list page have a size limit. The
 * threads only decode; changes go to the main thread through a queue and
 * an eventfd, because the store is not thread safe. Nothing reaches the
 * store before the first list of every resource is complete.
 *
 * This file is the main thread's side: it starts and stops the threads
 * (kube_worker.c) and moves the changes they queue into the store.
 */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/xalloc.h"
#include "source/kube_client.h"
#include "source/kube_worker.h"
#include "source/manifest.h"
#include "source/source_kube.h"

/* Allocations from this size on are mapped and unmapped on their own. */
#define LARGE_BLOCK_BYTES (1024 * 1024)

/* --- main thread: moving queued changes into the store --- */

static void change_free(struct change *c)
{
	manifest_objects_clear(&c->objs);
	free(c->ns);
	free(c->name);
	free(c);
}

static const char *service_key(char *buf, size_t len, const struct service *s)
{
	return object_key(buf, len, s->ns, s->name);
}

/* Puts every decoded object in the store and remembers its key in known (if given). */
static void put_objects(struct kube_source *src, struct manifest_objects *objs,
			struct strmap *known)
{
	char key[512];

	for (size_t i = 0; i < objs->n_services; i++) {
		if (known)
			strmap_put(known, service_key(key, sizeof(key), objs->services[i]),
				   (void *)1);
		store_put_service(src->store, objs->services[i]);
	}
	for (size_t i = 0; i < objs->n_slices; i++) {
		if (known)
			strmap_put(known,
				   object_key(key, sizeof(key), objs->slices[i]->ns,
					      objs->slices[i]->name),
				   (void *)1);
		store_put_slice(src->store, objs->slices[i]);
	}
	for (size_t i = 0; i < objs->n_nodes; i++) {
		if (known)
			strmap_put(known, objs->nodes[i]->name, (void *)1);
		store_put_node(src->store, objs->nodes[i]);
	}
	/* The store owns them now. */
	objs->n_services = objs->n_slices = objs->n_nodes = 0;
}

static void delete_object(struct kube_source *src, enum resource_id res, const char *ns,
			  const char *name)
{
	switch (res) {
	case RES_SERVICES:
		store_delete_service(src->store, ns, name);
		break;
	case RES_SLICES:
		store_delete_slice(src->store, ns, name);
		break;
	case RES_NODES:
		store_delete_node(src->store, name);
		break;
	case N_RESOURCES:
		break;
	}
}

/* Deletes by key: "ns/name", or a Node's name. */
static void delete_key(struct kube_source *src, enum resource_id res, const char *key)
{
	const char *slash = strchr(key, '/');
	char ns[256];

	if (res == RES_NODES || !slash) {
		delete_object(src, res, NULL, key);
		return;
	}
	snprintf(ns, sizeof(ns), "%.*s", (int)(slash - key), key);
	delete_object(src, res, ns, slash + 1);
}

static const char *const kind_names[N_RESOURCES] = { "Service", "EndpointSlice", "Node" };

/*
 * A fresh list replaces what the resource had: objects absent from it go;
 * those rejected as invalid keep their last good version; unchanged ones
 * are put again, which the engine's diff turns into no datapath change.
 */
static void apply_replace(struct kube_source *src, struct change *c)
{
	struct strmap *known = &src->known[c->res], fresh;
	struct strmap_iter it;
	struct strmap_entry *e;
	char **gone = NULL;
	size_t n_gone = 0, n_listed = c->objs.n_services + c->objs.n_slices + c->objs.n_nodes;
	char key[512];

	strmap_init(&fresh);
	for (size_t i = 0; i < c->objs.n_rejected; i++) {
		const struct manifest_rejected *rej = &c->objs.rejected[i];

		if (!rej->name || !rej->kind || strcmp(rej->kind, kind_names[c->res]))
			continue;
		if (c->res == RES_NODES)
			snprintf(key, sizeof(key), "%s", rej->name);
		else
			object_key(key, sizeof(key), rej->ns, rej->name);
		if (strmap_get(known, key))
			strmap_put(&fresh, key, (void *)1);
	}
	put_objects(src, &c->objs, &fresh);
	for (e = strmap_first(known, &it); e; e = strmap_next(known, &it)) {
		if (strmap_get(&fresh, e->key))
			continue;
		gone = xreallocarray(gone, n_gone + 1, sizeof(*gone));
		gone[n_gone++] = xstrdup(e->key);
	}
	for (size_t i = 0; i < n_gone; i++) {
		delete_key(src, c->res, gone[i]);
		free(gone[i]);
	}
	free(gone);
	strmap_destroy(known);
	*known = fresh;
	pr_debug("kube: %s: %zu objects from a list, %zu gone", src->res[c->res].name, n_listed,
		 n_gone);
}

static void apply_change(struct kube_source *src, struct change *c)
{
	char key[512];

	switch (c->type) {
	case CHANGE_PUT:
		put_objects(src, &c->objs, &src->known[c->res]);
		break;
	case CHANGE_DELETE:
		if (c->res == RES_NODES)
			snprintf(key, sizeof(key), "%s", c->name);
		else
			object_key(key, sizeof(key), c->ns, c->name);
		strmap_remove(&src->known[c->res], key);
		delete_object(src, c->res, c->ns, c->name);
		break;
	case CHANGE_REPLACE:
		apply_replace(src, c);
		break;
	}
}

static struct kube_source *to_kube(struct source *src)
{
	return (struct kube_source *)src;
}

static int kube_fd(struct source *base)
{
	return to_kube(base)->efd;
}

static int kube_handle_events(struct source *base)
{
	struct kube_source *src = to_kube(base);
	struct change *list, *next;
	uint64_t count;

	if (read(src->efd, &count, sizeof(count)) < 0 && errno != EAGAIN)
		return -errno;
	pthread_mutex_lock(&src->lock);
	list = src->head;
	src->head = NULL;
	src->tail = &src->head;
	pthread_mutex_unlock(&src->lock);
	for (; list; list = next) {
		next = list->next;
		apply_change(src, list);
		change_free(list);
	}
	return 0;
}

static size_t kube_rejected(struct source *base)
{
	return atomic_load(&to_kube(base)->rejected);
}

static size_t kube_rejected_of(struct source *base, enum rejected_kind kind)
{
	return kind < REJECTED_KINDS ? atomic_load(&to_kube(base)->rejected_of[kind]) : 0;
}

static void kube_close(struct source *base)
{
	struct kube_source *src = to_kube(base);
	struct change *c, *next;

	pthread_mutex_lock(&src->lock);
	atomic_store(&src->stop, true);
	pthread_cond_broadcast(&src->cond);
	pthread_mutex_unlock(&src->lock);
	for (int i = 0; i < N_RESOURCES; i++) {
		if (src->res[i].started)
			pthread_join(src->res[i].thread, NULL);
		free(src->res[i].selector);
		strmap_destroy(&src->known[i]);
	}
	for (c = src->head; c; c = next) {
		next = c->next;
		change_free(c);
	}
	kube_client_free(src->client);
	if (src->efd >= 0)
		close(src->efd);
	pthread_cond_destroy(&src->cond);
	pthread_mutex_destroy(&src->lock);
	free(src);
}

static const struct source_ops kube_source_ops = {
	.name = "kube",
	.fd = kube_fd,
	.handle_events = kube_handle_events,
	.rejected = kube_rejected,
	.rejected_of = kube_rejected_of,
	.close = kube_close,
};

int kube_source_new(const struct kube_source_options *opts, struct store *store,
		    struct source **out)
{
	const char *kubeconfig = opts->kubeconfig;
	struct kube_source *src = xcalloc(1, sizeof(*src));
	struct kube_config cfg;
	pthread_condattr_t attr;
	sigset_t all, old;
	unsigned int flags;
	int err;

	src->base.ops = &kube_source_ops;
	src->store = store;
	src->tail = &src->head;
	src->efd = -1;
	src->max_event_bytes = opts->max_event_bytes ?: KUBE_DEFAULT_MAX_EVENT_BYTES;
	src->max_list_bytes = opts->max_list_bytes ?: KUBE_DEFAULT_MAX_LIST_BYTES;
	/*
	 * Watch lines and list pages may take up to those limits. Blocks that
	 * large always come from mmap, so that freeing one gives its memory
	 * back: by default glibc raises this threshold after the first such
	 * free and keeps later blocks in a thread's arena, where neither free
	 * nor malloc_trim returns them.
	 */
	mallopt(M_MMAP_THRESHOLD, LARGE_BLOCK_BYTES);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&src->cond, &attr);
	pthread_condattr_destroy(&attr);
	pthread_mutex_init(&src->lock, NULL);
	for (int i = 0; i < N_RESOURCES; i++)
		strmap_init(&src->known[i]);

	flags = opts->insecure_skip_tls_verify ? KUBE_CONFIG_ALLOW_INSECURE : 0;
	err = kubeconfig ? kube_config_load(kubeconfig, flags, &cfg) : kube_config_in_cluster(&cfg);
	if (err)
		goto fail;
	err = kube_client_new(&cfg, &src->client);
	if (err) {
		kube_config_free(&cfg);
		goto fail;
	}
	src->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (src->efd < 0) {
		err = -errno;
		goto fail;
	}
	for (int i = 0; i < N_RESOURCES; i++) {
		err = kube_resource_init(&src->res[i], src, i, opts->node_name);
		if (err)
			goto fail;
	}
	pr_info("kube: API server %s as %s; watch lines up to %zu bytes, list pages up to %zu bytes",
		kube_client_server(src->client), kube_client_identity(src->client),
		src->max_event_bytes, src->max_list_bytes);
	/*
	 * The threads block every signal: the main loop takes SIGTERM through
	 * a signalfd, which only works if no other thread can receive it.
	 */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (int i = 0; i < N_RESOURCES && !err; i++) {
		err = -pthread_create(&src->res[i].thread, NULL, kube_resource_thread,
				      &src->res[i]);
		src->res[i].started = !err;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err)
		goto fail;

	/* No half-cluster: wait until every resource has been listed once. */
	pthread_mutex_lock(&src->lock);
	while (src->n_listed < N_RESOURCES)
		pthread_cond_wait(&src->cond, &src->lock);
	pthread_mutex_unlock(&src->lock);
	kube_handle_events(&src->base);
	*out = &src->base;
	return 0;
fail:
	kube_close(&src->base);
	return err;
}
