// SPDX-License-Identifier: Apache-2.0
/* Leveled logging to stderr; libbpf's own messages are routed through it. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <bpf/libbpf.h>

#include "lib/log.h"

static enum log_level current_level = LOG_INFO;

void log_set_level(enum log_level level)
{
	current_level = level;
}

enum log_level log_get_level(void)
{
	return current_level;
}

static void log_vmsg(enum log_level level, const char *fmt, va_list ap)
{
	static const char *const names[] = { "warn", "info", "debug" };
	struct timespec ts;
	char line[4096];
	size_t len;

	if (level > current_level)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	vsnprintf(line, sizeof(line), fmt, ap);
	len = strlen(line);
	while (len && line[len - 1] == '\n')
		line[--len] = '\0';
	fprintf(stderr, "%lld.%03ld %s: %s\n", (long long)ts.tv_sec, ts.tv_nsec / 1000000,
		names[level], line);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, fmt, ap);
	va_end(ap);
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	enum log_level ours = level == LIBBPF_WARN ? LOG_WARN :
			      level == LIBBPF_INFO ? LOG_INFO :
						     LOG_DEBUG;

	/* libbpf's info messages are noise for an operator; keep them at debug. */
	if (ours == LOG_INFO)
		ours = LOG_DEBUG;
	log_vmsg(ours, fmt, ap);
	return 0;
}

void log_route_libbpf(void)
{
	libbpf_set_print(libbpf_print);
}
