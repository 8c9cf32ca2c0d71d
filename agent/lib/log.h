/* SPDX-License-Identifier: Apache-2.0 */
/* Leveled logging to stderr; libbpf's own messages are routed through it. */
#ifndef SLUICE_LOG_H
#define SLUICE_LOG_H

/* LOG_QUIET drops every message (fuzzers). */
enum log_level { LOG_QUIET = -1, LOG_WARN, LOG_INFO, LOG_DEBUG };

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Installs a libbpf print callback that forwards to log_msg(). */
void log_route_libbpf(void);

#define pr_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define pr_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define pr_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
