// SPDX-License-Identifier: Apache-2.0
/*
 * The API server source (--source=kube): lists, then watches, Services,
 * EndpointSlices and this node's Node, and feeds the store what changed.
 *
 * One thread per resource runs list + watch with libcurl: a paged list
 * (limit/continue) gives a complete state and a resourceVersion; a watch
 * from there (with bookmarks) streams changes. A broken watch resumes from
 * the last resourceVersion seen, after a capped exponential backoff with
 * jitter; 410 Gone (history expired) means a fresh list, which replaces
 * that resource's objects wholesale. The threads only decode; changes go
 * to the main thread through a queue and an eventfd, because the store is
 * not thread safe. Nothing reaches the store before the first list of
 * every resource is complete.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "source/kube_client.h"
#include "lib/log.h"
#include "source/manifest.h"
#include "source/source_kube.h"

#define SOURCE_NAME "kube-apiserver" /* objects' source, in log lines */
#define LIST_PAGE_SIZE 500
#define LIST_TIMEOUT_S 120
#define WATCH_MIN_S 300 /* watches end after 5 to 10 minutes, as client-go's */
#define BACKOFF_MIN_MS 200
#define BACKOFF_MAX_MS 30000

enum resource_id { RES_SERVICES, RES_SLICES, RES_NODES, N_RESOURCES };

struct resource {
	struct kube_source *src;
	enum resource_id id;
	const char *name; /* for log lines */
	const char *path; /* collection URL path */
	char *selector; /* "&fieldSelector=..." or "" */
	pthread_t thread;
	bool started;
	char rv[128]; /* last resourceVersion seen; "" until listed */
	int backoff_ms; /* next delay; 0 after a success */
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
	struct strmap known[N_RESOURCES]; /* keys of what we put in the store (main thread) */
};

static const struct {
	const char *name, *path;
} resource_info[N_RESOURCES] = {
	[RES_SERVICES] = { "services", "/api/v1/services" },
	[RES_SLICES] = { "endpointslices", "/apis/discovery.k8s.io/v1/endpointslices" },
	[RES_NODES] = { "nodes", "/api/v1/nodes" },
};

static long long monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* Percent-encodes everything but unreserved characters (RFC 3986). */
static char *url_escape(const char *s)
{
	char *out = malloc(strlen(s) * 3 + 1), *p = out;

	if (!out)
		return NULL;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    strchr("-._~", c))
			*p++ = (char)c;
		else
			p += sprintf(p, "%%%02X", c);
	}
	*p = '\0';
	return out;
}

static void change_free(struct change *c)
{
	manifest_objects_clear(&c->objs);
	free(c->ns);
	free(c->name);
	free(c);
}

static void enqueue(struct kube_source *src, struct change *c)
{
	uint64_t one = 1;

	pthread_mutex_lock(&src->lock);
	*src->tail = c;
	src->tail = &c->next;
	pthread_mutex_unlock(&src->lock);
	if (write(src->efd, &one, sizeof(one)) < 0)
		pr_debug("kube: eventfd write: %m");
}

/* Sleeps up to ms, or less when the source stops. Returns false when stopping. */
static bool sleep_unless_stopped(struct kube_source *src, int ms)
{
	struct timespec until;

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += ms / 1000;
	until.tv_nsec += (ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&src->lock);
	while (!atomic_load(&src->stop) &&
	       pthread_cond_timedwait(&src->cond, &src->lock, &until) != ETIMEDOUT)
		;
	pthread_mutex_unlock(&src->lock);
	return !atomic_load(&src->stop);
}

/* The next delay: doubling from BACKOFF_MIN_MS to BACKOFF_MAX_MS, +-25% jitter. */
static int next_backoff(struct resource *r)
{
	int base = r->backoff_ms ? r->backoff_ms : BACKOFF_MIN_MS;

	r->backoff_ms = base * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : base * 2;
	return base * 3 / 4 + (int)(rand_r(&r->seed) % (unsigned int)(base / 2 + 1));
}

/* The message of a Status body, or the body itself. */
static void status_message(const struct kube_response *resp, char *out, size_t len)
{
	json_t *status = json_loads(resp->error, 0, NULL);
	const char *msg = json_string_value(json_object_get(status, "message"));

	snprintf(out, len, "%s", msg ? msg : resp->error);
	json_decref(status);
}

/* One log line for a failed request, with what the status usually means. */
static void describe_failure(struct resource *r, const char *what, int err,
			     const struct kube_response *resp, char *out, size_t len)
{
	char msg[512];

	if (err) {
		snprintf(out, len, "%s %s: %s", r->name, what, resp->error);
		return;
	}
	status_message(resp, msg, sizeof(msg));
	switch (resp->status) {
	case 401:
		snprintf(out, len,
			 "%s %s: 401 Unauthorized: the API server refused our credentials "
			 "(token or client certificate): %s",
			 r->name, what, msg);
		break;
	case 403:
		snprintf(out, len,
			 "%s %s: 403 Forbidden: the account needs get, list and watch on %s "
			 "(see deploy/rbac.yaml): %s",
			 r->name, what, r->name, msg);
		break;
	default:
		snprintf(out, len, "%s %s: HTTP %ld: %s", r->name, what, resp->status, msg);
	}
}

struct body_buffer {
	char *data;
	size_t len, cap;
};

static bool collect_body(void *ctx, const char *data, size_t len)
{
	struct body_buffer *b = ctx;

	if (b->len + len + 1 > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 65536;
		char *d;

		while (cap < b->len + len + 1)
			cap *= 2;
		d = realloc(b->data, cap);
		if (!d)
			return false;
		b->data = d;
		b->cap = cap;
	}
	memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
	return true;
}

/*
 * Lists the whole collection page by page and queues it as one REPLACE.
 * Returns 0, -ECANCELED, -EAGAIN (continue token expired: list again) or
 * -EIO (described in why).
 */
static int list_resource(struct resource *r, char *why, size_t whylen)
{
	struct kube_source *src = r->src;
	struct manifest_objects objs = { 0 };
	char *cont = NULL, rv[sizeof(r->rv)] = "";
	size_t pages = 0;
	struct change *c;
	int err;

	do {
		struct body_buffer body = { 0 };
		struct kube_response resp;
		json_t *list, *meta;
		const char *next, *list_rv;
		char *path;

		if (asprintf(&path, "%s?limit=%d%s%s%s", r->path, LIST_PAGE_SIZE, r->selector,
			     cont ? "&continue=" : "", cont ? cont : "") < 0) {
			err = -ENOMEM;
			break;
		}
		free(cont);
		cont = NULL;
		err = kube_client_get(src->client, path, LIST_TIMEOUT_S, collect_body, &body,
				      &src->stop, &resp);
		free(path);
		if (!err && resp.status == 410) {
			free(body.data);
			snprintf(why, whylen, "%s list: continue token expired", r->name);
			err = -EAGAIN;
			break;
		}
		if (err || resp.status != 200) {
			free(body.data);
			if (err != -ECANCELED)
				describe_failure(r, "list", err, &resp, why, whylen);
			err = err == -ECANCELED ? err : -EIO;
			break;
		}
		list = json_loadb(body.data ? body.data : "", body.len, 0, NULL);
		free(body.data);
		meta = json_object_get(list, "metadata");
		list_rv = json_string_value(json_object_get(meta, "resourceVersion"));
		if (!json_is_object(list) || !list_rv || !*list_rv) {
			json_decref(list);
			snprintf(why, whylen,
				 "%s list: the answer is no list with a resourceVersion", r->name);
			err = -EIO;
			break;
		}
		snprintf(rv, sizeof(rv), "%s", list_rv);
		next = json_string_value(json_object_get(meta, "continue"));
		if (next && *next && !(cont = url_escape(next)))
			err = -ENOMEM;
		/* Invalid objects are logged and left out; the rest of the page counts. */
		if (!err && manifest_decode_object(list, SOURCE_NAME, &objs) == -ENOMEM)
			err = -ENOMEM;
		json_decref(list);
		pages++;
	} while (!err && cont);
	free(cont);
	if (err) {
		if (err == -ENOMEM)
			snprintf(why, whylen, "%s list: out of memory", r->name);
		manifest_objects_clear(&objs);
		return err == -ENOMEM ? -EIO : err;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		manifest_objects_clear(&objs);
		snprintf(why, whylen, "%s list: out of memory", r->name);
		return -EIO;
	}
	atomic_fetch_add(&src->rejected, objs.n_rejected);
	pr_info("kube: listed %zu %s (%zu pages) at resourceVersion %s",
		objs.n_services + objs.n_slices + objs.n_nodes, r->name, pages, rv);
	c->res = r->id;
	c->type = CHANGE_REPLACE;
	c->objs = objs;
	enqueue(src, c);
	snprintf(r->rv, sizeof(r->rv), "%s", rv);
	return 0;
}

struct watch_stream {
	struct resource *r;
	struct kube_line_buffer lines;
	int result; /* why the stream was abandoned: -ESTALE, -EIO */
	char why[512];
	size_t events;
};

static void queue_put(struct resource *r, json_t *object)
{
	struct manifest_objects objs = { 0 };
	struct change *c;
	int err = manifest_decode_object(object, SOURCE_NAME, &objs);

	if (err == -EINVAL)
		atomic_fetch_add(&r->src->rejected, 1); /* logged; the last good version stays */
	if (objs.n_services + objs.n_slices + objs.n_nodes == 0) {
		manifest_objects_clear(&objs);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		manifest_objects_clear(&objs);
		return;
	}
	c->res = r->id;
	c->type = CHANGE_PUT;
	c->objs = objs;
	enqueue(r->src, c);
}

static void queue_delete(struct resource *r, const char *ns, const char *name)
{
	struct change *c = calloc(1, sizeof(*c));

	if (!c)
		return;
	c->res = r->id;
	c->type = CHANGE_DELETE;
	c->ns = r->id == RES_NODES || !ns ? NULL : strdup(ns);
	c->name = strdup(name);
	if (!c->name) {
		change_free(c);
		return;
	}
	enqueue(r->src, c);
}

/* One line of a watch stream. Returns false to abandon the stream. */
static bool on_watch_line(void *ctx, const char *line, size_t len)
{
	struct watch_stream *ws = ctx;
	struct resource *r = ws->r;
	struct kube_watch_event ev;
	char err[256];

	if (kube_watch_parse_line(line, len, &ev, err, sizeof(err))) {
		pr_warn("kube: %s watch: malformed event skipped (%s): %.*s", r->name, err,
			(int)(len < 120 ? len : 120), line);
		atomic_fetch_add(&r->src->rejected, 1);
		return true;
	}
	ws->events++;
	r->backoff_ms = 0;
	switch (ev.type) {
	case KUBE_WATCH_ADDED:
	case KUBE_WATCH_MODIFIED:
		queue_put(r, ev.object);
		break;
	case KUBE_WATCH_DELETED:
		queue_delete(r, ev.ns, ev.name);
		break;
	case KUBE_WATCH_BOOKMARK:
		pr_debug("kube: %s watch: bookmark at resourceVersion %s", r->name,
			 ev.resource_version);
		break;
	case KUBE_WATCH_ERROR:
		ws->result = ev.error_code == 410 ? -ESTALE : -EIO;
		snprintf(ws->why, sizeof(ws->why), "%s watch: error event %d: %s", r->name,
			 ev.error_code, ev.error_message);
		kube_watch_event_clear(&ev);
		return false;
	}
	snprintf(r->rv, sizeof(r->rv), "%s", ev.resource_version);
	kube_watch_event_clear(&ev);
	return true;
}

static bool on_watch_data(void *ctx, const char *data, size_t len)
{
	struct watch_stream *ws = ctx;

	return kube_line_buffer_feed(&ws->lines, data, len, on_watch_line, ws);
}

/*
 * Watches from r->rv until the stream ends. Returns 0 (the server ended it
 * in time: watch again), -ESTALE (410: list again), -ECANCELED, or -EIO
 * (described in why).
 */
static int watch_resource(struct resource *r, char *why, size_t whylen)
{
	struct watch_stream ws = { .r = r };
	struct kube_response resp;
	int timeout_s = WATCH_MIN_S + (int)(rand_r(&r->seed) % WATCH_MIN_S);
	char *path, *rv = url_escape(r->rv);
	int err;

	if (!rv ||
	    asprintf(&path,
		     "%s?watch=1&allowWatchBookmarks=true&resourceVersion=%s&timeoutSeconds=%d%s",
		     r->path, rv, timeout_s, r->selector) < 0) {
		free(rv);
		snprintf(why, whylen, "%s watch: out of memory", r->name);
		return -EIO;
	}
	free(rv);
	pr_debug("kube: watching %s from resourceVersion %s", r->name, r->rv);
	err = kube_client_get(r->src->client, path, timeout_s + 30, on_watch_data, &ws,
			      &r->src->stop, &resp);
	free(path);
	kube_line_buffer_free(&ws.lines);
	if (ws.result) {
		snprintf(why, whylen, "%s", ws.why);
		return ws.result;
	}
	if (err == -ECANCELED)
		return atomic_load(&r->src->stop) ? -ECANCELED : -EIO;
	if (!err && resp.status == 410) {
		snprintf(why, whylen, "%s watch: 410 Gone", r->name);
		return -ESTALE;
	}
	if (err || resp.status != 200) {
		describe_failure(r, "watch", err, &resp, why, whylen);
		return -EIO;
	}
	return 0;
}

static void first_list_done(struct kube_source *src)
{
	pthread_mutex_lock(&src->lock);
	src->n_listed++;
	pthread_cond_broadcast(&src->cond);
	pthread_mutex_unlock(&src->lock);
}

static void *resource_thread(void *arg)
{
	struct resource *r = arg;
	struct kube_source *src = r->src;
	bool listed_once = false;
	char why[1024];
	int err, delay;

	while (!atomic_load(&src->stop)) {
		if (!r->rv[0]) {
			err = list_resource(r, why, sizeof(why));
			if (err == -ECANCELED)
				break;
			if (!err) {
				r->backoff_ms = 0;
				if (!listed_once)
					first_list_done(src);
				listed_once = true;
				continue;
			}
			delay = next_backoff(r);
			pr_warn("kube: %s; listing again in %d ms", why, delay);
			sleep_unless_stopped(src, delay);
			continue;
		}
		err = watch_resource(r, why, sizeof(why));
		if (err == -ECANCELED)
			break;
		if (err == -ESTALE) {
			/* History expired: only a new list is complete again. */
			pr_info("kube: %s; listing %s again", why, r->name);
			r->rv[0] = '\0';
			continue;
		}
		if (!err) {
			r->backoff_ms = 0;
			continue;
		}
		delay = next_backoff(r);
		pr_warn("kube: %s; watching again from resourceVersion %s in %d ms", why, r->rv,
			delay);
		sleep_unless_stopped(src, delay);
	}
	return NULL;
}

/* --- main thread: moving queued changes into the store --- */

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
		char **g;

		if (strmap_get(&fresh, e->key))
			continue;
		g = realloc(gone, (n_gone + 1) * sizeof(*gone));
		if (!g)
			break;
		gone = g;
		gone[n_gone++] = strdup(e->key);
	}
	for (size_t i = 0; i < n_gone; i++) {
		if (gone[i])
			delete_key(src, c->res, gone[i]);
		free(gone[i]);
	}
	free(gone);
	strmap_destroy(known);
	*known = fresh;
	pr_debug("kube: %s: %zu objects from a list, %zu gone", resource_info[c->res].name,
		 n_listed, n_gone);
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
	.close = kube_close,
};

int kube_source_new(const char *kubeconfig, const char *node_name, struct store *store,
		    struct source **out)
{
	struct kube_source *src = calloc(1, sizeof(*src));
	struct kube_config cfg;
	pthread_condattr_t attr;
	sigset_t all, old;
	char *escaped;
	int err;

	if (!src)
		return -ENOMEM;
	src->base.ops = &kube_source_ops;
	src->store = store;
	src->tail = &src->head;
	src->efd = -1;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&src->cond, &attr);
	pthread_condattr_destroy(&attr);
	pthread_mutex_init(&src->lock, NULL);
	for (int i = 0; i < N_RESOURCES; i++)
		strmap_init(&src->known[i]);

	err = kubeconfig ? kube_config_load(kubeconfig, &cfg) : kube_config_in_cluster(&cfg);
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
		struct resource *r = &src->res[i];

		r->src = src;
		r->id = i;
		r->name = resource_info[i].name;
		r->path = resource_info[i].path;
		r->seed = (unsigned int)(monotonic_ms() ^ (getpid() << 8) ^ i);
		escaped = NULL;
		if (i == RES_NODES) {
			/* Only this node's Node: its zone label is all we need. */
			char *sel;

			if (asprintf(&sel, "metadata.name=%s", node_name) < 0)
				sel = NULL;
			escaped = sel ? url_escape(sel) : NULL;
			free(sel);
			if (!escaped || asprintf(&r->selector, "&fieldSelector=%s", escaped) < 0)
				r->selector = NULL;
			free(escaped);
		} else {
			r->selector = strdup("");
		}
		if (!r->selector) {
			err = -ENOMEM;
			goto fail;
		}
	}
	pr_info("kube: API server %s%s%s", kube_client_server(src->client),
		kubeconfig ? ", kubeconfig " : " (in-cluster)", kubeconfig ? kubeconfig : "");
	/*
	 * The threads block every signal: the main loop takes SIGTERM through
	 * a signalfd, which only works if no other thread can receive it.
	 */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (int i = 0; i < N_RESOURCES && !err; i++) {
		err = -pthread_create(&src->res[i].thread, NULL, resource_thread, &src->res[i]);
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
