// SPDX-License-Identifier: Apache-2.0
/*
 * The worker side of the API server source: one thread per resource lists
 * it (paged), then watches it, with backoff and jitter between attempts,
 * and queues what changed for the main thread (see source_kube.c).
 *
 * Retries follow client-go's reflector: a failed list or watch, and a watch
 * that ends within SHORT_WATCH_MS without delivering an event (an empty
 * answer, an immediate 410), count as failures and wait BACKOFF_MIN_MS
 * doubling to BACKOFF_MAX_MS, +-25% jitter; only a healthy watch (one that
 * delivered an event or lasted SHORT_WATCH_MS) resets that. A list starts
 * at most once per RELIST_MIN_MS. So a server that answers every watch at
 * once, with 200 or 410, sees a request or two per second at first and one
 * per half minute after that, not a TLS handshake per round trip.
 *
 * One exception: once a watch since the last list was healthy, an
 * immediate 410 when resuming is the expected answer after an outage (the
 * history was compacted meanwhile): it relists at once (spaced as above)
 * without adding to the backoff. A 410 loop always goes through a list, and
 * until a watch after that list proves healthy, a 410 at once counts.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/caps.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "source/decode_util.h"
#include "source/kube_client.h"
#include "source/kube_worker.h"
#include "source/source.h"
#include "source/manifest.h"

#define SOURCE_NAME "kube-apiserver" /* objects' source, in log lines */
#define LIST_PAGE_SIZE 500
#define LIST_TIMEOUT_S 120
#define WATCH_MIN_S 300 /* watches end after 5 to 10 minutes, as client-go's */
#define BACKOFF_MIN_MS 800
#define BACKOFF_MAX_MS 30000
#define SHORT_WATCH_MS 1000 /* a watch that ends sooner without an event failed */
#define RELIST_MIN_MS 1000 /* lists of one resource start at least this far apart */

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
	char *out = xmalloc(strlen(s) * 3 + 1), *p = out;

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

int kube_resource_init(struct resource *r, struct kube_source *src, enum resource_id id,
		       const char *node_name)
{
	char *sel, *escaped;

	r->src = src;
	r->id = id;
	r->name = resource_info[id].name;
	r->path = resource_info[id].path;
	r->seed = (unsigned int)(monotonic_ms() ^ (getpid() << 8) ^ id);
	if (id != RES_NODES) {
		/*
		 * kube-proxy's one selector, on both kinds and in its order (by
		 * key): what another proxy owns, or a headless Service's slices,
		 * never reaches us. The decoders check the labels too, for the
		 * manifest directory.
		 */
		escaped = url_escape("!" LABEL_HEADLESS ",!" LABEL_SERVICE_PROXY_NAME);
		r->selector = xasprintf("&labelSelector=%s", escaped);
		free(escaped);
		return 0;
	}
	/* Only this node's Node: its zone label is all we need. */
	sel = xasprintf("metadata.name=%s", node_name);
	escaped = url_escape(sel);
	free(sel);
	r->selector = xasprintf("&fieldSelector=%s", escaped);
	free(escaped);
	return 0;
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
		snprintf(
			out, len,
			"%s %s: 401 Unauthorized: the API server refused the credentials of %s: %s",
			r->name, what, kube_client_identity(r->src->client), msg);
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

/* One list page's body, at most max bytes. */
struct body_buffer {
	char *data;
	size_t len, cap, max;
	bool too_large; /* the page went over max: the request was aborted */
};

static bool collect_body(void *ctx, const char *data, size_t len)
{
	struct body_buffer *b = ctx;

	if (len > b->max - b->len) {
		b->too_large = true;
		return false;
	}
	if (b->len + len + 1 > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 65536;

		while (cap < b->len + len + 1)
			cap *= 2;
		if (cap > b->max + 1)
			cap = b->max + 1;
		b->data = xreallocarray(b->data, cap, 1);
		b->cap = cap;
	}
	memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
	return true;
}

static void body_free(struct body_buffer *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
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
		struct body_buffer body = { .max = src->max_list_bytes };
		struct kube_response resp;
		json_t *list, *meta;
		const char *next, *list_rv;
		char *path;

		path = xasprintf("%s?limit=%d%s%s%s", r->path, LIST_PAGE_SIZE, r->selector,
				 cont ? "&continue=" : "", cont ? cont : "");
		free(cont);
		cont = NULL;
		err = kube_client_get(src->client, path, LIST_TIMEOUT_S, collect_body, &body,
				      &src->stop, &resp);
		free(path);
		if (body.too_large) {
			body_free(&body);
			snprintf(why, whylen,
				 "%s list: a page is larger than --max-list-bytes (%zu bytes)",
				 r->name, src->max_list_bytes);
			err = -EIO;
			break;
		}
		if (!err && resp.status == 410) {
			body_free(&body);
			snprintf(why, whylen, "%s list: continue token expired", r->name);
			err = -EAGAIN;
			break;
		}
		if (err || resp.status != 200) {
			body_free(&body);
			if (err != -ECANCELED)
				describe_failure(r, "list", err, &resp, why, whylen);
			err = err == -ECANCELED ? err : -EIO;
			break;
		}
		list = json_loadb(body.data ? body.data : "", body.len, 0, NULL);
		body_free(&body);
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
		if (next && *next)
			cont = url_escape(next);
		/* Invalid objects are logged and left out; the rest of the page counts. */
		manifest_decode_object(list, SOURCE_NAME, &objs);
		json_decref(list);
		pages++;
	} while (cont);
	free(cont);
	if (err) {
		manifest_objects_clear(&objs);
		return err;
	}
	c = xcalloc(1, sizeof(*c));
	atomic_fetch_add(&src->rejected, objs.n_rejected);
	for (size_t i = 0; i < objs.n_rejected; i++)
		atomic_fetch_add(&src->rejected_of[rejected_kind_of(objs.rejected[i].kind)], 1);
	pr_info("kube: listed %zu %s (%zu pages) at resourceVersion %s",
		objs.n_services + objs.n_slices + objs.n_nodes, r->name, pages, rv);
	c->res = r->id;
	c->type = CHANGE_REPLACE;
	c->objs = objs;
	enqueue(src, c);
	snprintf(r->rv, sizeof(r->rv), "%s", rv);
	r->rv_proven = false;
	return 0;
}

struct watch_stream {
	struct resource *r;
	struct kube_line_buffer lines;
	int result; /* why the stream was abandoned: -ESTALE, -EIO */
	bool oversized; /* a line longer than --max-event-bytes */
	char why[512];
	size_t events; /* changes and bookmarks: not errors, not junk */
};

static enum rejected_kind resource_rejected_kind(const struct resource *r)
{
	return r->id == RES_SERVICES ? REJECTED_SERVICE :
	       r->id == RES_SLICES   ? REJECTED_ENDPOINTSLICE :
				       REJECTED_NODE;
}

static void queue_put(struct resource *r, json_t *object)
{
	struct manifest_objects objs = { 0 };
	struct change *c;
	int err = manifest_decode_object(object, SOURCE_NAME, &objs);

	if (err == -EINVAL) {
		atomic_fetch_add(&r->src->rejected, 1); /* logged; the last good version stays */
		atomic_fetch_add(&r->src->rejected_of[resource_rejected_kind(r)], 1);
	}
	if (objs.n_services + objs.n_slices + objs.n_nodes == 0) {
		manifest_objects_clear(&objs);
		return;
	}
	c = xcalloc(1, sizeof(*c));
	c->res = r->id;
	c->type = CHANGE_PUT;
	c->objs = objs;
	enqueue(r->src, c);
}

static void queue_delete(struct resource *r, const char *ns, const char *name)
{
	struct change *c = xcalloc(1, sizeof(*c));

	c->res = r->id;
	c->type = CHANGE_DELETE;
	c->ns = r->id == RES_NODES || !ns ? NULL : xstrdup(ns);
	c->name = xstrdup(name);
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
		atomic_fetch_add(&r->src->rejected_of[resource_rejected_kind(r)], 1);
		return true;
	}
	if (ev.type != KUBE_WATCH_ERROR)
		ws->events++;
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
	int err = kube_line_buffer_feed(&ws->lines, data, len, on_watch_line, ws);

	if (err == -E2BIG) {
		ws->result = -EIO;
		ws->oversized = true;
		snprintf(ws->why, sizeof(ws->why),
			 "%s watch: an event is longer than --max-event-bytes (%zu bytes)",
			 ws->r->name, ws->lines.max_line);
	}
	return !err;
}

/* What a watch was like, for the backoff. */
struct watch_outcome {
	bool usable; /* answered 200, and no line was over the cap */
	size_t events; /* changes and bookmarks delivered */
};

/*
 * Watches from r->rv until the stream ends. Returns 0 (the server ended it:
 * watch again), -ESTALE (410: list again), -ECANCELED, or -EIO (described
 * in why).
 */
static int watch_resource(struct resource *r, struct watch_outcome *out, char *why, size_t whylen)
{
	struct watch_stream ws = { .r = r, .lines.max_line = r->src->max_event_bytes };
	struct kube_response resp;
	int timeout_s = WATCH_MIN_S + (int)(rand_r(&r->seed) % WATCH_MIN_S);
	char *path, *rv = url_escape(r->rv);
	int err;

	path = xasprintf(
		"%s?watch=1&allowWatchBookmarks=true&resourceVersion=%s&timeoutSeconds=%d%s",
		r->path, rv, timeout_s, r->selector);
	free(rv);
	pr_debug("kube: watching %s from resourceVersion %s", r->name, r->rv);
	err = kube_client_get(r->src->client, path, timeout_s + 30, on_watch_data, &ws,
			      &r->src->stop, &resp);
	free(path);
	kube_line_buffer_free(&ws.lines);
	out->usable = resp.status == 200 && !ws.oversized;
	out->events = ws.events;
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

/* Waits until RELIST_MIN_MS after the last list started. Returns false when stopping. */
static bool space_lists(struct resource *r)
{
	long long wait = r->last_list_ms ? r->last_list_ms + RELIST_MIN_MS - monotonic_ms() : 0;

	if (wait > 0 && !sleep_unless_stopped(r->src, (int)wait))
		return false;
	r->last_list_ms = monotonic_ms();
	return true;
}

void *kube_resource_thread(void *arg)
{
	struct resource *r = arg;
	struct kube_source *src = r->src;
	bool listed_once = false, healthy;
	struct watch_outcome outcome;
	long long started, lasted;
	char why[1024];
	int err, delay;

	/* HTTP, TLS and decoding need no capability: this thread and curl's have none. */
	caps_limit_thread(0);
	while (!atomic_load(&src->stop)) {
		if (!r->rv[0]) {
			if (!space_lists(r))
				break;
			err = list_resource(r, why, sizeof(why));
			if (err == -ECANCELED)
				break;
			if (!err) {
				/* The backoff stays until a watch proves healthy. */
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
		started = monotonic_ms();
		err = watch_resource(r, &outcome, why, sizeof(why));
		if (err == -ECANCELED)
			break;
		lasted = monotonic_ms() - started;
		healthy = outcome.events || (outcome.usable && lasted >= SHORT_WATCH_MS);
		if (healthy) {
			r->backoff_ms = 0;
			r->rv_proven = true;
		}
		if (err == -ESTALE) {
			/* History expired: only a new list is complete again. */
			r->rv[0] = '\0';
			if (r->rv_proven) {
				pr_info("kube: %s; listing %s again", why, r->name);
				continue;
			}
			delay = next_backoff(r);
			pr_warn("kube: %s; listing %s again in %d ms (the watch ended after %lld ms without an event)",
				why, r->name, delay, lasted);
			sleep_unless_stopped(src, delay);
			continue;
		}
		if (!err && healthy)
			continue;
		if (!err)
			snprintf(why, sizeof(why), "%s watch ended after %lld ms without an event",
				 r->name, lasted);
		delay = next_backoff(r);
		pr_warn("kube: %s; watching again from resourceVersion %s in %d ms", why, r->rv,
			delay);
		sleep_unless_stopped(src, delay);
	}
	return NULL;
}
