// SPDX-License-Identifier: Apache-2.0
/*
 * A test Kubernetes API server for Services, EndpointSlices and Nodes: the
 * real protocol over TLS (bearer token or client certificate, paged lists
 * with resourceVersion and continue, chunked watch streams with bookmarks,
 * 410 Gone), holding its objects in memory, driven by the test over a
 * plain-HTTP control port.
 *
 * usage: fake-apiserver --listen=ADDR:PORT --control=ADDR:PORT --cert=PEM
 *        --key=PEM [--token-file=PATH] [--client-ca=PEM] [--objects=DIR]
 *
 * DIR holds JSON files (an object or a List each) loaded at start. A
 * request is authenticated, as by kube-apiserver, by a bearer token that is
 * one of the token file's lines or by a client certificate signed by the
 * --client-ca CA (mTLS: the server asks for one); anything else is 401.
 * With only --client-ca, a client certificate is required. The token file
 * is read on every request, so a test rotates or revokes tokens by
 * rewriting it.
 * Control requests (POST, answered 200 "ok"):
 *   /apply            body: an object or a List; ADDED or MODIFIED events
 *   /delete?resource=R&namespace=NS&name=N   a DELETED event
 *   /bookmark         a BOOKMARK event on every watch that asked for them
 *   /malformed?resource=R   a line that is no JSON on that resource's watches
 *   /expire           compact the history: open watches get an ERROR 410
 *                     event, and a watch from any earlier version a 410
 *   /drop             close every watch connection abruptly
 *   /unavailable?ms=N answer every API request with 503 for N ms
 *   /pause?ms=N       answer nothing (requests and watches hang) for N ms
 *   /slow?ms=N        wait N ms before each watch event line
 *   /misbehave?mode=M[&resource=R][&ms=N]   misbehave on purpose, on R's
 *                     requests (every resource's without R) until the next
 *                     /misbehave; the open watches of R end cleanly at once:
 *       none          behave
 *       slow          list and watch bodies trickle a byte every N ms (default 1)
 *       endless       a watch answers 200 and one line that never ends
 *       empty         a watch answers 200 and ends at once, without an event
 *       gone          a watch answers 200, an ERROR 410 event, and ends
 *       error         every request is answered 500
 *       reset         every request's connection is reset (RST), unanswered
 *       stall         requests get no answer, the connection stays open
 * Control GET /stats: one line per resource, "R LISTS WATCHES SELECTOR": the
 * API requests seen so far (a test's measure of how often a client comes
 * back) and the labelSelector of the last one ("-": none).
 * R is services, endpointslices or nodes. A labelSelector ("!k", "k",
 * "k=v", "k!=v", joined by ',') filters lists and watches as the real
 * server's does: an object that stops matching is DELETED for a watch, one
 * that starts matching ADDED. Resource versions start at the
 * start time in milliseconds, so a restarted server's are newer and a
 * client that resumes from an old one gets 410, as after an etcd compaction.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <sys/socket.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <time.h>
#include <unistd.h>
#include <gnutls/gnutls.h>
#include <jansson.h>
#include <microhttpd.h>

enum resource_id { RES_SERVICES, RES_SLICES, RES_NODES, N_RESOURCES };

/* /misbehave modes. */
enum mode {
	MODE_NONE,
	MODE_SLOW,
	MODE_ENDLESS,
	MODE_EMPTY,
	MODE_GONE,
	MODE_ERROR,
	MODE_RESET,
	MODE_STALL,
	N_MODES
};

static const char *const mode_names[N_MODES] = {
	[MODE_NONE] = "none",	[MODE_SLOW] = "slow",	[MODE_ENDLESS] = "endless",
	[MODE_EMPTY] = "empty", [MODE_GONE] = "gone",	[MODE_ERROR] = "error",
	[MODE_RESET] = "reset", [MODE_STALL] = "stall",
};

/* The start of the line an endless watch sends; 'x' follows forever. */
#define ENDLESS_PREFIX \
	"{\"type\":\"ADDED\",\"object\":{\"kind\":\"Service\",\"metadata\":{\"name\":\""

static const struct {
	const char *name, *path, *kind, *api_version;
} resources[N_RESOURCES] = {
	[RES_SERVICES] = { "services", "/api/v1/services", "Service", "v1" },
	[RES_SLICES] = { "endpointslices", "/apis/discovery.k8s.io/v1/endpointslices",
			 "EndpointSlice", "discovery.k8s.io/v1" },
	[RES_NODES] = { "nodes", "/api/v1/nodes", "Node", "v1" },
};

/* One line a watch may send: a change, a bookmark, an error, or junk. */
struct event {
	long long rv; /* resourceVersion after this event */
	enum resource_id res;
	char *line; /* the JSON line with its newline */
	const char *name; /* the object's name, for field selectors; NULL: all */
	const char *type; /* ADDED, MODIFIED, DELETED; NULL for other lines */
	json_t *obj, *prev; /* the object after the change, and before it (MODIFIED) */
	bool bookmark; /* only for watches that asked for bookmarks */
	bool ends_stream; /* ERROR 410: the watch ends after it */
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t changed;
	long long rv; /* current resourceVersion */
	long long min_rv; /* oldest version a watch may start from */
	json_t *objects[N_RESOURCES]; /* "ns/name" -> object */
	struct event *events; /* the history; a watch replays from here */
	size_t n_events, cap_events;
	unsigned int drop_generation; /* bumped by /drop */
	long long unavailable_until, paused_until, slow_ms; /* monotonic ms */
	enum mode mode[N_RESOURCES]; /* /misbehave */
	long long mode_ms[N_RESOURCES]; /* slow: ms per byte */
	unsigned int mode_generation[N_RESOURCES]; /* bumped by /misbehave */
	unsigned long long requests[N_RESOURCES][2]; /* lists, watches */
	char *selector[N_RESOURCES]; /* the last request's labelSelector */
	bool quitting;
	const char *token_file; /* NULL: no token is accepted */
	bool client_ca; /* client certificates signed by --client-ca are accepted */
} S = { .lock = PTHREAD_MUTEX_INITIALIZER, .changed = PTHREAD_COND_INITIALIZER };

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static void sleep_ms(long long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

static int resource_by_kind(const char *kind)
{
	for (int i = 0; i < N_RESOURCES; i++)
		if (kind && !strcmp(kind, resources[i].kind))
			return i;
	return -1;
}

static int resource_by_name(const char *name)
{
	for (int i = 0; i < N_RESOURCES; i++)
		if (name && !strcmp(name, resources[i].name))
			return i;
	return -1;
}

static const char *meta_string(json_t *obj, const char *key)
{
	return json_string_value(json_object_get(json_object_get(obj, "metadata"), key));
}

static void object_key(char *buf, size_t len, enum resource_id res, const char *ns,
		       const char *name)
{
	if (res == RES_NODES)
		snprintf(buf, len, "%s", name);
	else
		snprintf(buf, len, "%s/%s", ns ? ns : "default", name);
}

/* Appends one line to the history and wakes the watches. Called locked. */
static void add_event(enum resource_id res, char *line, const char *name, bool bookmark,
		      bool ends_stream)
{
	if (S.n_events == S.cap_events) {
		S.cap_events = S.cap_events ? S.cap_events * 2 : 256;
		S.events = realloc(S.events, S.cap_events * sizeof(*S.events));
		if (!S.events)
			abort();
	}
	S.events[S.n_events++] = (struct event){
		.rv = S.rv,
		.res = res,
		.line = line,
		.name = name ? strdup(name) : NULL,
		.bookmark = bookmark,
		.ends_stream = ends_stream,
	};
	pthread_cond_broadcast(&S.changed);
}

static char *event_line(const char *type, json_t *obj)
{
	json_t *ev = json_pack("{s:s, s:O}", "type", type, "object", obj);
	char *text = json_dumps(ev, JSON_COMPACT), *line;

	json_decref(ev);
	if (!text || asprintf(&line, "%s\n", text) < 0)
		abort();
	free(text);
	return line;
}

/* Keeps the objects of the event just added, for watches with a label selector. */
static void event_objects(const char *type, json_t *obj, json_t *prev)
{
	struct event *e = &S.events[S.n_events - 1];

	e->type = type;
	e->obj = json_incref(obj);
	e->prev = json_incref(prev);
}

/* Adds or replaces one object (called locked); record: emit a watch event. */
static int apply_object(json_t *obj, bool record)
{
	int res = resource_by_kind(json_string_value(json_object_get(obj, "kind")));
	const char *name = meta_string(obj, "name"), *ns = meta_string(obj, "namespace");
	json_t *meta = json_object_get(obj, "metadata"), *prev;
	char key[512], rv[32];
	bool exists;

	if (res < 0 || !name || !json_is_object(meta))
		return -EINVAL;
	if (res != RES_NODES && !ns)
		json_object_set_new(meta, "namespace", json_string(ns = "default"));
	object_key(key, sizeof(key), res, ns, name);
	prev = json_incref(json_object_get(S.objects[res], key));
	exists = prev != NULL;
	if (record)
		S.rv++;
	snprintf(rv, sizeof(rv), "%lld", S.rv);
	json_object_set_new(meta, "resourceVersion", json_string(rv));
	json_object_set(S.objects[res], key, obj);
	if (record) {
		const char *type = exists ? "MODIFIED" : "ADDED";

		add_event(res, event_line(type, obj), name, false, false);
		event_objects(type, obj, prev);
	}
	json_decref(prev);
	return 0;
}

/* An object or a List of them. */
static int apply_tree(json_t *tree, bool record)
{
	json_t *items = json_object_get(tree, "items"), *item;
	size_t i;
	int err = 0;

	if (!json_is_array(items))
		return apply_object(tree, record);
	json_array_foreach(items, i, item)
		if (apply_object(item, record))
			err = -EINVAL;
	return err;
}

static int delete_object(enum resource_id res, const char *ns, const char *name)
{
	char key[512], rv[32];
	json_t *obj;

	object_key(key, sizeof(key), res, ns, name);
	obj = json_object_get(S.objects[res], key);
	if (!obj)
		return -ENOENT;
	json_incref(obj);
	json_object_del(S.objects[res], key);
	S.rv++;
	snprintf(rv, sizeof(rv), "%lld", S.rv);
	json_object_set_new(json_object_get(obj, "metadata"), "resourceVersion", json_string(rv));
	add_event(res, event_line("DELETED", obj), name, false, false);
	event_objects("DELETED", obj, NULL);
	json_decref(obj);
	return 0;
}

static void load_objects(const char *dir)
{
	struct dirent *de;
	DIR *d = opendir(dir);

	if (!d) {
		fprintf(stderr, "fake-apiserver: %s: %m\n", dir);
		exit(1);
	}
	while ((de = readdir(d))) {
		char path[4096];
		json_error_t err;
		json_t *tree;

		if (!strstr(de->d_name, ".json"))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		tree = json_load_file(path, 0, &err);
		if (!tree || apply_tree(tree, false)) {
			fprintf(stderr, "fake-apiserver: %s: cannot load: %s\n", path, err.text);
			exit(1);
		}
		json_decref(tree);
	}
	closedir(d);
}

/* --- the API: lists and watches --- */

/* A body sent a byte at a time (/misbehave?mode=slow). */
struct trickle {
	char *text;
	size_t len, off;
	long long ms;
};

static ssize_t trickle_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct trickle *t = cls;

	if (t->off == t->len)
		return MHD_CONTENT_READER_END_OF_STREAM;
	sleep_ms(t->ms);
	buf[0] = t->text[t->off++];
	return 1;
}

static void trickle_free(void *cls)
{
	struct trickle *t = cls;

	free(t->text);
	free(t);
}

/* Sends body (taking its reference); slow_ms: a byte every slow_ms ms, 0: at once. */
static enum MHD_Result send_json_slowly(struct MHD_Connection *conn, unsigned int status,
					json_t *body, long long slow_ms)
{
	char *text = json_dumps(body, JSON_COMPACT);
	struct MHD_Response *resp;
	enum MHD_Result ret;

	json_decref(body);
	if (slow_ms > 0) {
		struct trickle *t = calloc(1, sizeof(*t));

		t->text = text;
		t->len = strlen(text);
		t->ms = slow_ms;
		resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64, trickle_read, t,
							 trickle_free);
	} else {
		resp = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
	}
	MHD_add_response_header(resp, "Content-Type", "application/json");
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result send_json(struct MHD_Connection *conn, unsigned int status, json_t *body)
{
	return send_json_slowly(conn, status, body, 0);
}

static json_t *status_object(int code, const char *reason, const char *message)
{
	return json_pack("{s:s, s:s, s:{}, s:s, s:s, s:s, s:i}", "kind", "Status", "apiVersion",
			 "v1", "metadata", "status", "Failure", "message", message, "reason",
			 reason, "code", code);
}

static enum MHD_Result send_status(struct MHD_Connection *conn, int code, const char *reason,
				   const char *message)
{
	return send_json(conn, code, status_object(code, reason, message));
}

/* The bearer token is one of the token file's lines. */
static bool token_ok(struct MHD_Connection *conn)
{
	const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
	char line[4096];
	bool ok = false;
	FILE *f;

	if (!S.token_file || !auth || strncmp(auth, "Bearer ", 7) || !auth[7])
		return false;
	f = fopen(S.token_file, "re");
	if (!f)
		return false;
	while (!ok && fgets(line, sizeof(line), f)) {
		size_t n = strlen(line);

		while (n && strchr(" \r\n\t", line[n - 1]))
			line[--n] = '\0';
		ok = n && !strcmp(auth + 7, line);
	}
	fclose(f);
	return ok;
}

/* The peer sent a certificate that the --client-ca CA signed. */
static bool client_cert_ok(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	unsigned int status = 0;

	if (!S.client_ca || !ci || !ci->tls_session)
		return false;
	return gnutls_certificate_verify_peers2((gnutls_session_t)ci->tls_session, &status) ==
		       GNUTLS_E_SUCCESS &&
	       !status;
}

/* "metadata.name=X" is the only field selector this server knows. */
static const char *name_selector(struct MHD_Connection *conn, bool *bad)
{
	const char *sel = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "fieldSelector");

	*bad = false;
	if (!sel || !*sel)
		return NULL;
	if (strncmp(sel, "metadata.name=", 14)) {
		*bad = true;
		return NULL;
	}
	return sel + 14;
}

/* One requirement of a label selector. */
struct requirement {
	char *key, *value; /* value NULL: existence only */
	bool negated; /* "!k" or "k!=v" */
};

struct selector {
	struct requirement *reqs;
	size_t n;
};

static void selector_free(struct selector *sel)
{
	for (size_t i = 0; i < sel->n; i++) {
		free(sel->reqs[i].key);
		free(sel->reqs[i].value);
	}
	free(sel->reqs);
	sel->reqs = NULL;
	sel->n = 0;
}

/* The equality-based labelSelector syntax; false for anything else (set-based "in"). */
static bool selector_parse(const char *text, struct selector *sel)
{
	char *copy = strdup(text ? text : ""), *save = NULL, *tok;
	bool ok = true;

	memset(sel, 0, sizeof(*sel));
	for (tok = strtok_r(copy, ",", &save); tok && ok; tok = strtok_r(NULL, ",", &save)) {
		struct requirement r = { 0 };
		char *op;

		if (tok[0] == '!') {
			r.negated = true;
			r.key = strdup(tok + 1);
		} else if ((op = strstr(tok, "!="))) {
			r.negated = true;
			r.key = strndup(tok, op - tok);
			r.value = strdup(op + 2);
		} else if ((op = strchr(tok, '='))) {
			r.key = strndup(tok, op - tok);
			r.value = strdup(op + (op[1] == '=' ? 2 : 1));
		} else {
			r.key = strdup(tok);
		}
		ok = *r.key && !strpbrk(r.key, " ()!=") && (!r.value || !strpbrk(r.value, " ()!="));
		sel->reqs = realloc(sel->reqs, (sel->n + 1) * sizeof(*sel->reqs));
		sel->reqs[sel->n++] = r;
	}
	free(copy);
	if (!ok)
		selector_free(sel);
	return ok;
}

static bool selector_matches(const struct selector *sel, json_t *obj)
{
	json_t *labels = json_object_get(json_object_get(obj, "metadata"), "labels");

	for (size_t i = 0; i < sel->n; i++) {
		const struct requirement *r = &sel->reqs[i];
		const char *v = json_string_value(json_object_get(labels, r->key));
		bool has = json_object_get(labels, r->key) != NULL;
		bool holds = r->value ? v && !strcmp(v, r->value) : has;

		if (holds == r->negated)
			return false;
	}
	return true;
}

static int compare_strings(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A page of the collection; continue tokens are "RV:OFFSET" of a snapshot. */
static enum MHD_Result serve_list(struct MHD_Connection *conn, enum resource_id res,
				  const char *only_name, const struct selector *sel,
				  long long slow_ms)
{
	const char *limit_arg = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "limit");
	const char *cont = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "continue");
	long limit = limit_arg ? strtol(limit_arg, NULL, 10) : 0;
	long long snap_rv;
	size_t offset = 0, n = 0, i;
	const char **keys;
	const char *key;
	json_t *obj, *items = json_array(), *list;
	char rv[32], next[64] = "", list_kind[64];

	pthread_mutex_lock(&S.lock);
	if (cont && *cont) {
		if (sscanf(cont, "%lld:%zu", &snap_rv, &offset) != 2 || snap_rv != S.rv) {
			pthread_mutex_unlock(&S.lock);
			json_decref(items);
			return send_status(conn, 410, "Expired",
					   "The provided continue parameter is too old");
		}
	}
	keys = calloc(json_object_size(S.objects[res]) + 1, sizeof(*keys));
	json_object_foreach(S.objects[res], key, obj)
		if ((!only_name || !strcmp(meta_string(obj, "name"), only_name)) &&
		    selector_matches(sel, obj))
			keys[n++] = key;
	qsort(keys, n, sizeof(*keys), compare_strings);
	for (i = offset; i < n && (limit <= 0 || i < offset + (size_t)limit); i++) {
		json_t *item = json_deep_copy(json_object_get(S.objects[res], keys[i]));

		/* Items of a typed list carry no kind, as the real server's. */
		json_object_del(item, "kind");
		json_object_del(item, "apiVersion");
		json_array_append_new(items, item);
	}
	if (i < n)
		snprintf(next, sizeof(next), "%lld:%zu", S.rv, i);
	snprintf(rv, sizeof(rv), "%lld", S.rv);
	pthread_mutex_unlock(&S.lock);
	free(keys);
	snprintf(list_kind, sizeof(list_kind), "%sList", resources[res].kind);
	list = json_pack("{s:s, s:s, s:{s:s}, s:o}", "kind", list_kind, "apiVersion",
			 resources[res].api_version, "metadata", "resourceVersion", rv, "items",
			 items);
	if (*next)
		json_object_set_new(json_object_get(list, "metadata"), "continue",
				    json_string(next));
	return send_json_slowly(conn, 200, list, slow_ms);
}

struct watch {
	enum resource_id res;
	char *only_name;
	struct selector sel;
	bool bookmarks;
	size_t cursor; /* next event index */
	long long deadline;
	unsigned int drop_generation;
	unsigned int mode_generation; /* the stream ends when /misbehave changes it */
	long long slow_ms; /* a byte every slow_ms ms, 0: at once */
	bool endless; /* ENDLESS_PREFIX, then 'x' forever */
	char *pending; /* the part of a line not yet written */
	size_t pending_len, pending_off;
	bool ending; /* the stream ends once pending is written */
};

static void watch_free(void *cls)
{
	struct watch *w = cls;

	free(w->only_name);
	selector_free(&w->sel);
	free(w->pending);
	free(w);
}

/*
 * The line event e sends to watch w, or NULL for none. Called locked. Seen
 * through a label selector, a change may add or delete an object instead.
 */
static char *watch_line(const struct watch *w, const struct event *e)
{
	bool now, before;

	if (e->res != w->res || (e->bookmark && !w->bookmarks))
		return NULL;
	if (w->only_name && e->name && strcmp(e->name, w->only_name))
		return NULL;
	if (!e->type || !w->sel.n)
		return strdup(e->line);
	now = selector_matches(&w->sel, e->obj);
	before = e->prev && selector_matches(&w->sel, e->prev);
	if (strcmp(e->type, "MODIFIED"))
		return now ? strdup(e->line) : NULL;
	if (now && before)
		return strdup(e->line);
	if (now || before)
		return event_line(now ? "ADDED" : "DELETED", e->obj);
	return NULL;
}

/* Streams the history from the cursor on, blocking (one thread per connection) for more. */
static ssize_t watch_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct watch *w = cls;
	const struct event *e = NULL;
	bool dropped, changed;
	char *line = NULL;
	size_t n;

	pthread_mutex_lock(&S.lock);
	dropped = S.quitting || S.drop_generation != w->drop_generation;
	changed = S.mode_generation[w->res] != w->mode_generation;
	pthread_mutex_unlock(&S.lock);
	if (dropped)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	if (changed)
		return MHD_CONTENT_READER_END_OF_STREAM;
	if (w->endless) {
		memset(buf, 'x', max);
		if (!pos)
			memcpy(buf, ENDLESS_PREFIX,
			       max < strlen(ENDLESS_PREFIX) ? max : strlen(ENDLESS_PREFIX));
		return (ssize_t)max;
	}
	if (w->pending_off < w->pending_len) {
		n = w->pending_len - w->pending_off < max ? w->pending_len - w->pending_off : max;
		if (w->slow_ms) {
			sleep_ms(w->slow_ms);
			n = 1;
		}
		memcpy(buf, w->pending + w->pending_off, n);
		w->pending_off += n;
		return (ssize_t)n;
	}
	if (w->ending)
		return MHD_CONTENT_READER_END_OF_STREAM;
	pthread_mutex_lock(&S.lock);
	for (;;) {
		struct timespec until;
		long long now = now_ms();

		if (S.quitting || S.drop_generation != w->drop_generation) {
			pthread_mutex_unlock(&S.lock);
			return MHD_CONTENT_READER_END_WITH_ERROR;
		}
		if (now >= w->deadline || S.mode_generation[w->res] != w->mode_generation) {
			pthread_mutex_unlock(&S.lock);
			return MHD_CONTENT_READER_END_OF_STREAM;
		}
		if (now >= S.paused_until) {
			while (w->cursor < S.n_events &&
			       !(line = watch_line(w, &S.events[w->cursor])))
				w->cursor++;
			if (w->cursor < S.n_events) {
				e = &S.events[w->cursor++];
				break;
			}
		}
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += 200 * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&S.changed, &S.lock, &until);
	}
	free(w->pending);
	w->pending = line;
	w->pending_len = strlen(line);
	w->pending_off = 0;
	w->ending = e->ends_stream;
	n = (size_t)S.slow_ms;
	pthread_mutex_unlock(&S.lock);
	if (n)
		sleep_ms((long long)n);
	return watch_read(cls, pos, buf, max);
}

static enum MHD_Result serve_watch(struct MHD_Connection *conn, enum resource_id res,
				   const char *only_name, struct selector *sel, enum mode mode,
				   long long mode_ms)
{
	const char *rv_arg =
		MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "resourceVersion");
	const char *bm =
		MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "allowWatchBookmarks");
	const char *timeout =
		MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "timeoutSeconds");
	long long from = rv_arg && *rv_arg ? strtoll(rv_arg, NULL, 10) : 0;
	struct MHD_Response *resp;
	struct watch *w;
	enum MHD_Result ret;

	w = calloc(1, sizeof(*w));
	w->res = res;
	w->only_name = only_name ? strdup(only_name) : NULL;
	w->sel = *sel; /* now the watch's */
	memset(sel, 0, sizeof(*sel));
	w->bookmarks = bm && !strcmp(bm, "true");
	w->deadline = now_ms() + (timeout ? strtoll(timeout, NULL, 10) : 1800) * 1000;
	pthread_mutex_lock(&S.lock);
	if (!from)
		from = S.rv;
	if (from < S.min_rv) {
		pthread_mutex_unlock(&S.lock);
		watch_free(w);
		return send_status(conn, 410, "Expired", "too old resource version");
	}
	while (w->cursor < S.n_events && S.events[w->cursor].rv <= from)
		w->cursor++;
	w->drop_generation = S.drop_generation;
	w->mode_generation = S.mode_generation[res];
	pthread_mutex_unlock(&S.lock);
	switch (mode) {
	case MODE_SLOW:
		w->slow_ms = mode_ms;
		break;
	case MODE_ENDLESS:
		w->endless = true;
		break;
	case MODE_EMPTY:
		w->ending = true;
		break;
	case MODE_GONE: {
		json_t *st = status_object(410, "Expired", "too old resource version (test)");

		w->pending = event_line("ERROR", st);
		w->pending_len = strlen(w->pending);
		w->ending = true;
		json_decref(st);
		break;
	}
	default:
		break;
	}
	resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, w->endless ? 65536 : 4096,
						 watch_read, w, watch_free);
	MHD_add_response_header(resp, "Content-Type", "application/json");
	ret = MHD_queue_response(conn, 200, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* Waits on S.changed for at most 200 ms. Called locked. */
static void wait_a_while(void)
{
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_nsec += 200 * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_cond_timedwait(&S.changed, &S.lock, &until);
}

/* Closes the connection with a reset, answering nothing. */
static enum MHD_Result reset_connection(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	if (ci)
		setsockopt(ci->connect_fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	return MHD_NO;
}

static enum MHD_Result api_handler(void *cls, struct MHD_Connection *conn, const char *url,
				   const char *method, const char *version, const char *upload_data,
				   size_t *upload_size, void **con_cls)
{
	const char *watch = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "watch");
	bool is_watch = watch && (!strcmp(watch, "1") || !strcmp(watch, "true"));
	const char *labels =
		MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "labelSelector");
	const char *only_name;
	long long wait_ms, mode_ms = 0;
	enum mode mode = MODE_NONE;
	struct selector sel;
	enum MHD_Result ret;
	bool bad;
	int res = -1;

	if (strcmp(method, "GET"))
		return send_status(conn, 405, "MethodNotAllowed", "only GET here");
	for (int i = 0; i < N_RESOURCES; i++)
		if (!strcmp(url, resources[i].path))
			res = i;
	if (res >= 0) {
		pthread_mutex_lock(&S.lock);
		S.requests[res][is_watch]++;
		free(S.selector[res]);
		S.selector[res] = labels && *labels ? strdup(labels) : NULL;
		/* stall: no answer until the mode changes; the connection stays open. */
		while (S.mode[res] == MODE_STALL && !S.quitting)
			wait_a_while();
		mode = S.mode[res];
		mode_ms = S.mode_ms[res];
		pthread_mutex_unlock(&S.lock);
	}
	if (mode == MODE_ERROR)
		return send_status(conn, 500, "InternalError", "an internal error (test)");
	if (mode == MODE_RESET)
		return reset_connection(conn);
	pthread_mutex_lock(&S.lock);
	wait_ms = S.paused_until - now_ms();
	pthread_mutex_unlock(&S.lock);
	if (wait_ms > 0)
		sleep_ms(wait_ms);
	pthread_mutex_lock(&S.lock);
	wait_ms = S.unavailable_until - now_ms();
	pthread_mutex_unlock(&S.lock);
	if (wait_ms > 0)
		return send_status(conn, 503, "ServiceUnavailable", "unavailable (test)");
	if (!client_cert_ok(conn) && !token_ok(conn)) {
		fprintf(stderr, "fake-apiserver: 401 for %s: no valid %s\n", url,
			S.client_ca ? (S.token_file ? "client certificate or token" :
						      "client certificate") :
				      "token");
		return send_status(conn, 401, "Unauthorized", "Unauthorized");
	}
	if (res < 0)
		return send_status(conn, 404, "NotFound", "the server could not find the resource");
	only_name = name_selector(conn, &bad);
	if (bad)
		return send_status(conn, 400, "BadRequest", "unsupported field selector");
	if (!selector_parse(labels, &sel))
		return send_status(conn, 400, "BadRequest", "unsupported label selector");
	if (is_watch)
		ret = serve_watch(conn, res, only_name, &sel, mode, mode_ms);
	else
		ret = serve_list(conn, res, only_name, &sel, mode == MODE_SLOW ? mode_ms : 0);
	selector_free(&sel);
	return ret;
}

/* --- the control port --- */

struct upload {
	char *data;
	size_t len;
};

static long long ms_arg(struct MHD_Connection *conn)
{
	const char *ms = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "ms");

	return ms ? strtoll(ms, NULL, 10) : 1000;
}

/* Runs one control request on the complete body. Called locked. Returns an HTTP status. */
static int control(struct MHD_Connection *conn, const char *url, struct upload *up)
{
	const char *res_arg = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "resource");
	int res = resource_by_name(res_arg);
	char rv[32];

	if (!strcmp(url, "/apply")) {
		json_t *tree = json_loadb(up->data ? up->data : "", up->len, 0, NULL);
		int err = tree ? apply_tree(tree, true) : -EINVAL;

		json_decref(tree);
		return err ? 400 : 200;
	}
	if (!strcmp(url, "/delete")) {
		const char *name = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "name");
		const char *ns =
			MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "namespace");

		if (res < 0 || !name)
			return 400;
		return delete_object(res, ns, name) ? 404 : 200;
	}
	if (!strcmp(url, "/bookmark")) {
		snprintf(rv, sizeof(rv), "%lld", S.rv);
		for (int i = 0; i < N_RESOURCES; i++) {
			json_t *obj = json_pack("{s:s, s:s, s:{s:s}}", "kind", resources[i].kind,
						"apiVersion", resources[i].api_version, "metadata",
						"resourceVersion", rv);

			add_event(i, event_line("BOOKMARK", obj), NULL, true, false);
			json_decref(obj);
		}
		return 200;
	}
	if (!strcmp(url, "/malformed")) {
		if (res < 0)
			return 400;
		add_event(res, strdup("{\"type\": \"MODIFIED\", \"object\": {\"kind\": \n"), NULL,
			  false, false);
		return 200;
	}
	if (!strcmp(url, "/expire")) {
		S.min_rv = ++S.rv;
		for (int i = 0; i < N_RESOURCES; i++) {
			json_t *st = status_object(410, "Expired", "too old resource version");

			add_event(i, event_line("ERROR", st), NULL, false, true);
			json_decref(st);
		}
		return 200;
	}
	if (!strcmp(url, "/drop")) {
		S.drop_generation++;
		pthread_cond_broadcast(&S.changed);
		return 200;
	}
	if (!strcmp(url, "/unavailable")) {
		S.unavailable_until = now_ms() + ms_arg(conn);
		return 200;
	}
	if (!strcmp(url, "/pause")) {
		S.paused_until = now_ms() + ms_arg(conn);
		return 200;
	}
	if (!strcmp(url, "/slow")) {
		S.slow_ms = ms_arg(conn);
		return 200;
	}
	if (!strcmp(url, "/misbehave")) {
		const char *name = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "mode");
		const char *ms = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "ms");
		int mode = -1;

		for (int i = 0; i < N_MODES; i++)
			if (name && !strcmp(name, mode_names[i]))
				mode = i;
		if (mode < 0 || (res_arg && res < 0))
			return 400;
		for (int i = 0; i < N_RESOURCES; i++) {
			if (res >= 0 && i != res)
				continue;
			S.mode[i] = mode;
			S.mode_ms[i] = ms ? strtoll(ms, NULL, 10) : 1;
			S.mode_generation[i]++;
		}
		pthread_cond_broadcast(&S.changed);
		return 200;
	}
	return 404;
}

static enum MHD_Result control_handler(void *cls, struct MHD_Connection *conn, const char *url,
				       const char *method, const char *version,
				       const char *upload_data, size_t *upload_size, void **con_cls)
{
	struct upload *up = *con_cls;
	struct MHD_Response *resp;
	enum MHD_Result ret;
	int status;

	if (!strcmp(url, "/stats")) {
		char text[2048];
		size_t n = 0;

		pthread_mutex_lock(&S.lock);
		for (int i = 0; i < N_RESOURCES && n < sizeof(text); i++)
			n += snprintf(text + n, sizeof(text) - n, "%s %llu %llu %.500s\n",
				      resources[i].name, S.requests[i][0], S.requests[i][1],
				      S.selector[i] ? S.selector[i] : "-");
		if (n > sizeof(text))
			n = sizeof(text);
		pthread_mutex_unlock(&S.lock);
		resp = MHD_create_response_from_buffer(n, text, MHD_RESPMEM_MUST_COPY);
		ret = MHD_queue_response(conn, 200, resp);
		MHD_destroy_response(resp);
		return ret;
	}
	if (!up) {
		*con_cls = up = calloc(1, sizeof(*up));
		return up ? MHD_YES : MHD_NO;
	}
	if (*upload_size) {
		up->data = realloc(up->data, up->len + *upload_size);
		memcpy(up->data + up->len, upload_data, *upload_size);
		up->len += *upload_size;
		*upload_size = 0;
		return MHD_YES;
	}
	pthread_mutex_lock(&S.lock);
	status = control(conn, url, up);
	pthread_mutex_unlock(&S.lock);
	free(up->data);
	free(up);
	*con_cls = NULL;
	fprintf(stderr, "fake-apiserver: control %s: %d\n", url, status);
	resp = MHD_create_response_from_buffer(
		status == 200 ? 3 : 5, status == 200 ? "ok\n" : "fail\n", MHD_RESPMEM_PERSISTENT);
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* --- start-up --- */

static char *read_text(const char *path)
{
	FILE *f = fopen(path, "re");
	char *buf;
	long len;

	if (!f || fseek(f, 0, SEEK_END) || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET)) {
		fprintf(stderr, "fake-apiserver: %s: %m\n", path);
		exit(1);
	}
	buf = calloc(1, (size_t)len + 1);
	if (fread(buf, 1, (size_t)len, f) != (size_t)len)
		exit(1);
	fclose(f);
	return buf;
}

static void parse_addr(const char *arg, struct sockaddr_in *sa)
{
	char host[64];
	int port;

	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	if (sscanf(arg, "%63[^:]:%d", host, &port) != 2 ||
	    inet_pton(AF_INET, host, &sa->sin_addr) != 1) {
		fprintf(stderr, "fake-apiserver: bad address %s (want IPv4:PORT)\n", arg);
		exit(2);
	}
	sa->sin_port = htons((uint16_t)port);
}

int main(int argc, char **argv)
{
	const char *listen = NULL, *ctl = NULL, *cert = NULL, *key = NULL, *objects = NULL;
	const char *client_ca = NULL;
	struct sockaddr_in api_sa, ctl_sa;
	struct MHD_Daemon *api, *control_d;
	struct timespec rt;
	sigset_t mask;
	int sig;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strncmp(a, "--listen=", 9))
			listen = a + 9;
		else if (!strncmp(a, "--control=", 10))
			ctl = a + 10;
		else if (!strncmp(a, "--cert=", 7))
			cert = a + 7;
		else if (!strncmp(a, "--key=", 6))
			key = a + 6;
		else if (!strncmp(a, "--token-file=", 13))
			S.token_file = a + 13;
		else if (!strncmp(a, "--client-ca=", 12))
			client_ca = a + 12;
		else if (!strncmp(a, "--objects=", 10))
			objects = a + 10;
		else {
			fprintf(stderr, "fake-apiserver: unknown argument %s\n", a);
			return 2;
		}
	}
	if (!listen || !ctl || !cert || !key || (!S.token_file && !client_ca)) {
		fprintf(stderr, "usage: fake-apiserver --listen=ADDR:PORT --control=ADDR:PORT "
				"--cert=PEM --key=PEM [--token-file=PATH] [--client-ca=PEM] "
				"[--objects=DIR]\n");
		return 2;
	}
	if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
		fprintf(stderr, "fake-apiserver: libmicrohttpd has no TLS support\n");
		return 1;
	}
	parse_addr(listen, &api_sa);
	parse_addr(ctl, &ctl_sa);
	S.client_ca = client_ca != NULL;
	clock_gettime(CLOCK_REALTIME, &rt);
	S.rv = S.min_rv = rt.tv_sec * 1000LL + rt.tv_nsec / 1000000;
	for (int i = 0; i < N_RESOURCES; i++)
		S.objects[i] = json_object();
	if (objects)
		load_objects(objects);

	/* Signals are taken by sigwait below, not by the server threads. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	pthread_sigmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);

	api = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
				       MHD_USE_TLS | MHD_USE_ERROR_LOG,
			       0, NULL, NULL, api_handler, NULL, MHD_OPTION_SOCK_ADDR, &api_sa,
			       MHD_OPTION_LISTENING_ADDRESS_REUSE, 1, MHD_OPTION_HTTPS_MEM_CERT,
			       read_text(cert), MHD_OPTION_HTTPS_MEM_KEY, read_text(key),
			       /* A CA here makes the server ask for client certificates. */
			       client_ca ? MHD_OPTION_HTTPS_MEM_TRUST : MHD_OPTION_END,
			       client_ca ? read_text(client_ca) : NULL, MHD_OPTION_END);
	control_d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL,
				     NULL, control_handler, NULL, MHD_OPTION_SOCK_ADDR, &ctl_sa,
				     MHD_OPTION_LISTENING_ADDRESS_REUSE, 1, MHD_OPTION_END);
	if (!api || !control_d) {
		fprintf(stderr, "fake-apiserver: cannot listen on %s / %s\n", listen, ctl);
		return 1;
	}
	fprintf(stderr, "fake-apiserver: serving on %s (control %s) at resourceVersion %lld\n",
		listen, ctl, S.rv);
	sigwait(&mask, &sig);
	pthread_mutex_lock(&S.lock);
	S.quitting = true;
	pthread_cond_broadcast(&S.changed);
	pthread_mutex_unlock(&S.lock);
	MHD_stop_daemon(control_d);
	MHD_stop_daemon(api);
	return 0;
}
