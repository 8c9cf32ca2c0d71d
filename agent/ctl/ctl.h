/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sluicectl's commands, one file each, and what they share: where the
 * kernel's state is (--bpffs) and where the agent publishes (--status-dir):
 * status.json, and agent.sock where the running agent answers.
 * Exit codes: 0 done, 1 the state could not be read, 2 bad usage.
 */
#ifndef SLUICE_CTL_H
#define SLUICE_CTL_H

#include <stdbool.h>
#include <stdio.h>

#include <jansson.h>

#include "datapath/datapath.h"

struct ctl {
	struct datapath_config cfg;
	const char *status_dir;
};

/* Prints "sluicectl: " and the message on stderr; returns 2 (bad usage). */
int ctl_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The datapath whose state is in the kernel; NULL (said on stderr unless quiet). */
const struct datapath_ops *ctl_in_place(const struct ctl *ctl, bool quiet);
/* Reads a JSON document the agent wrote; NULL with why (a line) in err. */
json_t *ctl_load(const char *path, char *err, size_t len);
/* status.json, or NULL with one line on stderr unless quiet. */
json_t *ctl_load_status(const struct ctl *ctl, bool quiet);
/*
 * Sends request (status_server.h) to the running agent; the answer to read
 * with ctl_answer_next, or NULL with one line on stderr saying that what
 * (a command) needs the running agent.
 */
FILE *ctl_ask(const struct ctl *ctl, const char *request, const char *what);
/* The answer's next document; NULL at its end or on error (why, a line, in err). */
json_t *ctl_answer_next(FILE *answer, char *err, size_t len);
/* Whether the agent that wrote status is still running (its pid, and it is sluice-agent). */
bool ctl_agent_running(json_t *status);
/* "2024-05-01 10:00:03 UTC (3s ago)" for a time in seconds since the epoch. */
const char *ctl_time_text(double t, double now, char *buf, size_t len);
/* Field getters that tolerate absence: "" / 0 / false. */
const char *js(json_t *o, const char *key);
long long ji(json_t *o, const char *key);
bool jb(json_t *o, const char *key);

int cmd_services(struct ctl *ctl, int argc, char **argv);
int cmd_ratelimits(struct ctl *ctl, int argc, char **argv);
int cmd_status(struct ctl *ctl, int argc, char **argv);
int cmd_explain(struct ctl *ctl, int argc, char **argv);
int cmd_top(struct ctl *ctl, int argc, char **argv);
int cmd_features(struct ctl *ctl, int argc, char **argv);
/* The probed kernel features as a table (features, and the end of status). */
int ctl_print_features(const struct ctl *ctl, const struct datapath_ops *ops, FILE *out);

#endif
