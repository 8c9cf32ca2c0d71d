// SPDX-License-Identifier: Apache-2.0
/* What sluicectl's commands share: finding the state, reading and asking the agent. */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ctl/ctl.h"
#include "serve/status.h"
#include "serve/status_json.h"

int ctl_usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("sluicectl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 2;
}

const struct datapath_ops *ctl_in_place(const struct ctl *ctl, bool quiet)
{
	const struct datapath_ops *ops = datapath_in_place(&ctl->cfg, NULL);

	if (!ops && !quiet)
		fprintf(stderr,
			"sluicectl: no datapath in place (no state of any datapath: %s; pin "
			"directory %s)\n",
			datapath_choices(), ctl->cfg.bpffs);
	return ops;
}

json_t *ctl_load(const char *path, char *err, size_t len)
{
	json_error_t jerr;
	json_t *doc = json_load_file(path, 0, &jerr);

	if (!doc) {
		snprintf(err, len, "%s: %s", path, errno == ENOENT ? strerror(ENOENT) : jerr.text);
		return NULL;
	}
	if (ji(doc, "schema") != STATUS_SCHEMA) {
		snprintf(err, len, "%s: schema %lld, this sluicectl reads %d (versions differ)",
			 path, ji(doc, "schema"), STATUS_SCHEMA);
		json_decref(doc);
		return NULL;
	}
	return doc;
}

json_t *ctl_load_status(const struct ctl *ctl, bool quiet)
{
	char path[4096], err[4200];
	json_t *doc;

	snprintf(path, sizeof(path), "%s/%s", ctl->status_dir, STATUS_FILE);
	errno = 0;
	doc = ctl_load(path, err, sizeof(err));
	if (!doc && !quiet)
		fprintf(stderr,
			"sluicectl: no agent status (%s): is sluice-agent running with "
			"--status-dir=%s?\n",
			err, ctl->status_dir);
	return doc;
}

FILE *ctl_ask(const struct ctl *ctl, const char *request, const char *what)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	/* Long enough for an agent busy with a full sync of 100k Services. */
	struct timeval tv = { .tv_sec = 60 };
	size_t len = strlen(request);
	FILE *f;
	int fd;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s", ctl->status_dir, STATUS_SOCKET);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		int err = errno;

		if (fd >= 0)
			close(fd);
		if (err == ENOENT || err == ECONNREFUSED)
			fprintf(stderr,
				"sluicectl: %s needs the running agent, and none answers on %s: is "
				"sluice-agent running with --status-dir=%s?\n",
				what, sa.sun_path, ctl->status_dir);
		else
			fprintf(stderr, "sluicectl: %s: cannot reach the agent on %s: %s%s\n", what,
				sa.sun_path, strerror(err),
				err == EACCES ? " (the socket is root's only)" : "");
		return NULL;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (send(fd, request, len, MSG_NOSIGNAL) != (ssize_t)len ||
	    send(fd, "\n", 1, MSG_NOSIGNAL) != 1 || !(f = fdopen(fd, "r"))) {
		fprintf(stderr, "sluicectl: %s: cannot ask the agent on %s: %s\n", what,
			sa.sun_path, strerror(errno));
		close(fd);
		return NULL;
	}
	return f;
}

json_t *ctl_answer_next(FILE *answer, char *err, size_t len)
{
	static char *line;
	static size_t cap;
	json_error_t jerr;
	json_t *doc;
	ssize_t n;

	errno = 0;
	n = getline(&line, &cap, answer);
	if (n <= 0) {
		snprintf(err, len, "the agent's answer ended early%s%s", errno ? ": " : "",
			 errno == EAGAIN ? "no answer in 60 s" :
			 errno		 ? strerror(errno) :
					   "");
		return NULL;
	}
	doc = json_loadb(line, n, 0, &jerr);
	if (!doc) {
		snprintf(err, len, "the agent's answer is not JSON: %s", jerr.text);
		return NULL;
	}
	if (ji(doc, "schema") != STATUS_SCHEMA) {
		snprintf(err, len,
			 "the agent answers in schema %lld, this sluicectl reads %d "
			 "(versions differ)",
			 ji(doc, "schema"), STATUS_SCHEMA);
		json_decref(doc);
		return NULL;
	}
	return doc;
}

bool ctl_agent_running(json_t *status)
{
	long long pid = ji(status, "pid");
	char path[64], comm[64] = "";
	FILE *f;

	if (pid <= 0 || (kill((pid_t)pid, 0) && errno == ESRCH))
		return false;
	/* A pid reused by another program is not the agent. */
	snprintf(path, sizeof(path), "/proc/%lld/comm", pid);
	f = fopen(path, "re");
	if (!f)
		return true;
	if (!fgets(comm, sizeof(comm), f))
		comm[0] = 0;
	fclose(f);
	return !strncmp(comm, "sluice-agent", 12);
}

const char *ctl_time_text(double t, double now, char *buf, size_t len)
{
	time_t s = (time_t)t;
	struct tm tm;
	char when[32];
	double ago = now - t;

	if (t <= 0) {
		snprintf(buf, len, "never");
		return buf;
	}
	gmtime_r(&s, &tm);
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm);
	if (ago < 0)
		ago = 0;
	if (ago < 120)
		snprintf(buf, len, "%s (%.0fs ago)", when, ago);
	else if (ago < 7200)
		snprintf(buf, len, "%s (%.0fm ago)", when, ago / 60);
	else
		snprintf(buf, len, "%s (%.0fh ago)", when, ago / 3600);
	return buf;
}

const char *js(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

long long ji(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_integer(v) ? json_integer_value(v) : (long long)json_number_value(v);
}

bool jb(json_t *o, const char *key)
{
	return json_is_true(json_object_get(o, key));
}
