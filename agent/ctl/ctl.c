// SPDX-License-Identifier: Apache-2.0
/* What sluicectl's commands share: finding the state, reading the agent's files. */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
	const struct datapath_ops *ops = datapath_in_place(&ctl->cfg);

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
