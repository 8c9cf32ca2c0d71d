// SPDX-License-Identifier: Apache-2.0
/*
 * Publishing the agent's status for sluicectl: status.json after every sync,
 * and one file per Service from a queue the engine fills (only the Services
 * a sync covered) and the event loop drains within a time budget. One file
 * per Service keeps a change O(that Service); the budget keeps a full sync
 * of 100k Services from delaying the next apply.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "lib/log.h"
#include "lib/xalloc.h"
#include "serve/status.h"
#include "serve/status_json.h"

struct status_publisher {
	char *dir;
	const struct store *store;
	const struct engine *eng;
	char **queue; /* FIFO of Service keys, from head */
	size_t head, n, cap;
	struct strmap queued; /* keys in the queue */
	struct strmap stale; /* files found at open, not written since */
	bool synced; /* a sync queued every Service */
	int last_errno; /* logged once per value */
};

const char *status_dir_default(const char *flag)
{
	const char *env = getenv("SLUICE_STATUS_DIR");

	if (flag)
		return flag;
	return env && *env ? env : STATUS_DEFAULT_DIR;
}

static double now_real(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static long long now_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static void warn_once(struct status_publisher *p, int err, const char *what, const char *path)
{
	if (p && p->last_errno == err)
		return;
	if (p)
		p->last_errno = err;
	pr_warn("status: %s %s: %s", what, path, strerror(err));
}

/* Names as the API server allows them: no path can leave the directory. */
static bool key_is_safe(const char *key)
{
	const char *slash = strchr(key, '/');

	if (!slash || slash == key || !slash[1] || strchr(slash + 1, '/'))
		return false;
	for (const char *c = key; *c; c++) {
		if (c != slash && !((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') ||
				    *c == '-' || *c == '.'))
			return false;
	}
	return key[0] != '.' && slash[1] != '.';
}

/* Writes text to path through a temporary file beside it and a rename. */
static int write_atomic(const char *path, const char *text, size_t len)
{
	char tmp[4096];
	const char *base = strrchr(path, '/');
	ssize_t done = 0;
	int fd, err = 0;

	base = base ? base + 1 : path;
	snprintf(tmp, sizeof(tmp), "%.*s.%s.tmp", (int)(base - path), path, base);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	while ((size_t)done < len) {
		ssize_t w = write(fd, text + done, len - done);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			err = -errno;
			break;
		}
		done += w;
	}
	if (close(fd) && !err)
		err = -errno;
	if (!err && rename(tmp, path))
		err = -errno;
	if (err)
		unlink(tmp);
	return err;
}

static void service_path(const struct status_publisher *p, const char *key, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s/%s.json", p->dir, STATUS_SERVICES_DIR, key);
}

static void publish_one(struct status_publisher *p, const char *key)
{
	struct status_service_input in = {
		.key = key,
		.svc = store_get_service(p->store, key),
		.slices = store_service_slices(p->store, key),
		.applied = engine_applied(p->eng, key),
		.node_name = p->eng->node_name,
		.node_zone = engine_node_zone(p->eng),
		.published = now_real(),
	};
	char path[4096];
	json_t *doc;
	char *text;
	int err;

	free(strmap_remove(&p->stale, key));
	if (!key_is_safe(key))
		return;
	service_path(p, key, path, sizeof(path));
	if (!in.svc) {
		if (unlink(path) && errno != ENOENT)
			warn_once(p, errno, "cannot remove", path);
		return;
	}
	doc = status_service_json(&in);
	text = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	if (!text)
		return;
	err = write_atomic(path, text, strlen(text));
	if (err == -ENOENT) {
		/* The namespace's directory, made on first use. */
		char dir[4096];

		snprintf(dir, sizeof(dir), "%s/%s/%.*s", p->dir, STATUS_SERVICES_DIR,
			 (int)(strchr(key, '/') - key), key);
		if (mkdir(dir, 0755) && errno != EEXIST)
			err = -errno;
		else
			err = write_atomic(path, text, strlen(text));
	}
	if (err)
		warn_once(p, -err, "cannot write", path);
	free(text);
}

static void queue_push(struct status_publisher *p, const char *key)
{
	if (strmap_get(&p->queued, key))
		return;
	if (p->head && p->head == p->n) {
		p->head = p->n = 0;
	} else if (p->n == p->cap && p->head > p->cap / 2) {
		memmove(p->queue, p->queue + p->head, (p->n - p->head) * sizeof(*p->queue));
		p->n -= p->head;
		p->head = 0;
	}
	if (p->n == p->cap) {
		p->cap = p->cap ? 2 * p->cap : 256;
		p->queue = xreallocarray(p->queue, p->cap, sizeof(*p->queue));
	}
	p->queue[p->n++] = xstrdup(key);
	strmap_put(&p->queued, key, (void *)1);
}

/* Files of Services that were gone before this agent started. */
static void remove_stale(struct status_publisher *p)
{
	struct strmap_iter it;
	struct strmap_entry *e;
	char path[4096];

	for (e = strmap_first(&p->stale, &it); e; e = strmap_next(&p->stale, &it)) {
		service_path(p, e->key, path, sizeof(path));
		unlink(path);
	}
	strmap_destroy(&p->stale);
	strmap_init(&p->stale);
}

size_t status_publish(struct status_publisher *p, int budget_ms)
{
	long long deadline = now_mono_ms() + budget_ms;

	if (!p)
		return 0;
	while (p->head < p->n) {
		char *key = p->queue[p->head++];

		strmap_remove(&p->queued, key);
		publish_one(p, key);
		free(key);
		/* A file costs 30 us on tmpfs but can take ms on a journaling disk: check each. */
		if (budget_ms >= 0 && now_mono_ms() >= deadline)
			break;
	}
	if (p->head == p->n && p->synced && p->stale.count)
		remove_stale(p);
	return p->n - p->head;
}

size_t status_queued(const struct status_publisher *p)
{
	return p ? p->n - p->head : 0;
}

static void status_service_applied(void *ctx, const struct service_applied *sa)
{
	struct status_publisher *p = ctx;

	queue_push(p, sa->key);
}

static int status_apply(void *ctx, const struct state_diff *diff)
{
	struct status_publisher *p = ctx;

	/* A full apply covers every Service: once it is published, the rest is stale. */
	if (diff->full)
		p->synced = true;
	return 0;
}

const struct output_ops status_output_ops = {
	.apply = status_apply,
	.service_applied = status_service_applied,
};

/* Notes NS/NAME.json files under services/, and removes leftover temporary files. */
static void scan_existing(struct status_publisher *p)
{
	char path[4096];
	struct dirent *ns, *f;
	DIR *top, *sub;

	snprintf(path, sizeof(path), "%s/%s", p->dir, STATUS_SERVICES_DIR);
	top = opendir(path);
	if (!top)
		return;
	while ((ns = readdir(top))) {
		if (ns->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s/%s", p->dir, STATUS_SERVICES_DIR, ns->d_name);
		sub = opendir(path);
		if (!sub)
			continue;
		while ((f = readdir(sub))) {
			size_t len = strlen(f->d_name);
			char key[600];

			if (f->d_name[0] == '.' && len > 4 &&
			    !strcmp(f->d_name + len - 4, ".tmp")) {
				unlinkat(dirfd(sub), f->d_name, 0);
				continue;
			}
			if (f->d_name[0] == '.' || len < 6 || strcmp(f->d_name + len - 5, ".json"))
				continue;
			snprintf(key, sizeof(key), "%s/%.*s", ns->d_name, (int)(len - 5),
				 f->d_name);
			strmap_put(&p->stale, key, NULL);
		}
		closedir(sub);
	}
	closedir(top);
}

int status_open(const char *dir, const struct store *store, const struct engine *eng,
		struct status_publisher **out)
{
	struct status_publisher *p;
	char path[4096];

	*out = NULL;
	if (mkdir(dir, 0755) && errno != EEXIST) {
		int err = -errno;

		warn_once(NULL, -err, "cannot create", dir);
		return err;
	}
	snprintf(path, sizeof(path), "%s/%s", dir, STATUS_SERVICES_DIR);
	if (mkdir(path, 0755) && errno != EEXIST) {
		int err = -errno;

		warn_once(NULL, -err, "cannot create", path);
		return err;
	}
	p = xcalloc(1, sizeof(*p));
	p->dir = xstrdup(dir);
	p->store = store;
	p->eng = eng;
	strmap_init(&p->queued);
	strmap_init(&p->stale);
	scan_existing(p);
	*out = p;
	return 0;
}

void status_close(struct status_publisher *p)
{
	if (!p)
		return;
	for (size_t i = p->head; i < p->n; i++)
		free(p->queue[i]);
	free(p->queue);
	strmap_destroy(&p->queued);
	strmap_destroy(&p->stale);
	free(p->dir);
	free(p);
}

static json_t *time_json(double t)
{
	return t > 0 ? json_real(t) : json_null();
}

int status_write_agent(struct status_publisher *p, const struct agent_status *st)
{
	json_t *o = json_object();
	char path[4096], *text;
	int err;

	json_object_set_new(o, "schema", json_integer(STATUS_SCHEMA));
	json_object_set_new(o, "version", json_string(st->version ? st->version : "unknown"));
	json_object_set_new(o, "pid", json_integer(getpid()));
	json_object_set_new(o, "node", json_string(st->node ? st->node : ""));
	json_object_set_new(o, "zone",
			    engine_node_zone(p->eng) ? json_string(engine_node_zone(p->eng)) :
						       json_null());
	json_object_set_new(o, "source", json_string(st->source ? st->source : ""));
	json_object_set_new(o, "datapath", json_string(st->datapath ? st->datapath : ""));
	json_object_set_new(o, "requested", json_string(st->requested ? st->requested : ""));
	json_object_set_new(o, "fallback", json_string(st->fallback ? st->fallback : ""));
	json_object_set_new(o, "bpffs", json_string(st->bpffs ? st->bpffs : ""));
	json_object_set_new(o, "cgroup", json_string(st->cgroup ? st->cgroup : ""));
	json_object_set_new(o, "started", time_json(st->started));
	json_object_set_new(o, "written", json_real(now_real()));
	json_object_set_new(o, "synced", json_boolean(st->synced));
	json_object_set_new(o, "lastSync", time_json(st->last_sync));
	json_object_set_new(o, "lastFullSync", time_json(st->last_full_sync));
	json_object_set_new(o, "lastAttempt", time_json(st->last_attempt));
	json_object_set_new(o, "lastError",
			    st->last_error ? json_string(strerror(-st->last_error)) : json_null());
	json_object_set_new(o, "syncs", json_integer((json_int_t)st->syncs));
	json_object_set_new(o, "failedSyncs", json_integer((json_int_t)st->failed_syncs));
	json_object_set_new(o, "services", json_integer((json_int_t)st->services));
	json_object_set_new(o, "frontends", json_integer((json_int_t)st->frontends));
	json_object_set_new(o, "backends", json_integer((json_int_t)st->backends));
	json_object_set_new(o, "rejected", json_integer((json_int_t)st->rejected));
	json_object_set_new(o, "notProgrammed", json_integer((json_int_t)st->not_programmed));
	json_object_set_new(o, "publishQueued", json_integer((json_int_t)(p->n - p->head)));
	text = json_dumps(o, JSON_INDENT(2));
	json_decref(o);
	if (!text)
		return -ENOMEM;
	snprintf(path, sizeof(path), "%s/%s", p->dir, STATUS_FILE);
	err = write_atomic(path, text, strlen(text));
	free(text);
	if (err)
		warn_once(p, -err, "cannot write", path);
	return err;
}

/* Removes path's entries one level down (files), then path itself. */
static void remove_dir_files(const char *path)
{
	struct dirent *f;
	DIR *d = opendir(path);

	if (!d)
		return;
	while ((f = readdir(d))) {
		if (strcmp(f->d_name, ".") && strcmp(f->d_name, ".."))
			unlinkat(dirfd(d), f->d_name, 0);
	}
	closedir(d);
	rmdir(path);
}

int status_remove(const char *dir)
{
	char path[4096];
	struct dirent *ns;
	DIR *top;

	snprintf(path, sizeof(path), "%s/%s", dir, STATUS_SERVICES_DIR);
	top = opendir(path);
	if (top) {
		while ((ns = readdir(top))) {
			char sub[4400];

			if (!strcmp(ns->d_name, ".") || !strcmp(ns->d_name, ".."))
				continue;
			snprintf(sub, sizeof(sub), "%s/%s", path, ns->d_name);
			remove_dir_files(sub);
		}
		closedir(top);
		rmdir(path);
	}
	snprintf(path, sizeof(path), "%s/%s", dir, STATUS_FILE);
	if (unlink(path) && errno != ENOENT)
		return -errno;
	/* Only if empty: the directory may be shared with other files. */
	rmdir(dir);
	return 0;
}
