// SPDX-License-Identifier: Apache-2.0
/*
 * status.json for sluicectl, rewritten after every sync: small (the agent
 * as a whole), so that writing it costs microseconds and `sluicectl status`
 * can still say what the agent last did once it stopped. Per-Service
 * answers come from agent.sock (status_server.c).
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
	const struct engine *eng;
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

static void warn_once(struct status_publisher *p, int err, const char *what, const char *path)
{
	if (p && p->last_errno == err)
		return;
	if (p)
		p->last_errno = err;
	pr_warn("status: %s %s: %s", what, path, strerror(err));
}

/* Writes text to path through a temporary file beside it and a rename. */
static int write_atomic(const char *path, const char *text, size_t len)
{
	char tmp[4200];
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

/* services/NAMESPACE/NAME.json, as versions before agent.sock wrote them. */
static void remove_old_services(const char *dir)
{
	char path[4096];
	struct dirent *ns;
	DIR *top;

	snprintf(path, sizeof(path), "%s/%s", dir, STATUS_OLD_SERVICES_DIR);
	top = opendir(path);
	if (!top)
		return;
	while ((ns = readdir(top))) {
		char sub[4400];

		if (!strcmp(ns->d_name, ".") || !strcmp(ns->d_name, ".."))
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", path, ns->d_name);
		remove_dir_files(sub);
	}
	closedir(top);
	if (!rmdir(path))
		pr_info("status: removed %s (Service files of an older version)", path);
}

/* .status.json.tmp of an agent that died while writing. */
static void remove_temporaries(const char *dir)
{
	struct dirent *f;
	DIR *d = opendir(dir);

	if (!d)
		return;
	while ((f = readdir(d))) {
		size_t len = strlen(f->d_name);

		if (f->d_name[0] == '.' && len > 4 && !strcmp(f->d_name + len - 4, ".tmp"))
			unlinkat(dirfd(d), f->d_name, 0);
	}
	closedir(d);
}

int status_open(const char *dir, const struct engine *eng, struct status_publisher **out)
{
	struct status_publisher *p;

	*out = NULL;
	if (mkdir(dir, 0755) && errno != EEXIST) {
		int err = -errno;

		warn_once(NULL, -err, "cannot create", dir);
		return err;
	}
	remove_old_services(dir);
	remove_temporaries(dir);
	p = xcalloc(1, sizeof(*p));
	p->dir = xstrdup(dir);
	p->eng = eng;
	*out = p;
	return 0;
}

void status_close(struct status_publisher *p)
{
	if (!p)
		return;
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
	if (st->serving) {
		snprintf(path, sizeof(path), "%s/%s", p->dir, STATUS_SOCKET);
		json_object_set_new(o, "socket", json_string(path));
	} else {
		json_object_set_new(o, "socket", json_null());
	}
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

int status_remove(const char *dir)
{
	char path[4096];

	remove_old_services(dir);
	snprintf(path, sizeof(path), "%s/%s", dir, STATUS_SOCKET);
	if (unlink(path) && errno != ENOENT)
		return -errno;
	snprintf(path, sizeof(path), "%s/%s", dir, STATUS_FILE);
	if (unlink(path) && errno != ENOENT)
		return -errno;
	/* Only if empty: the directory may be shared with other files. */
	rmdir(dir);
	return 0;
}
