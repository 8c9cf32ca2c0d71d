/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Leveled logging to stderr, one line per message, as text or as JSON
 * (--log-format); libbpf's own messages are routed through it.
 */
#ifndef SLUICE_LOG_H
#define SLUICE_LOG_H

#include <stddef.h>

/* LOG_QUIET drops every message (fuzzers). */
enum log_level { LOG_QUIET = -1, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* text: "1700000000.123 info: msg"; json: {"time":"...","level":"info","msg":"..."} */
enum log_format { LOG_FORMAT_TEXT, LOG_FORMAT_JSON };

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
void log_set_format(enum log_format format);
/* "text" or "json" into *out; -1 for anything else. */
int log_parse_format(const char *text, enum log_format *out);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Installs a libbpf print callback that forwards to log_msg(). */
void log_route_libbpf(void);
/*
 * One line as it is written, without the newline: for tests, and for
 * log_msg itself. ts_sec/ts_nsec: CLOCK_REALTIME. Returns buf.
 */
char *log_format_line(char *buf, size_t len, enum log_format format, enum log_level level,
		      long long ts_sec, long ts_nsec, const char *msg);

#define pr_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define pr_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define pr_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
