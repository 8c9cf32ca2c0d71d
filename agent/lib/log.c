// SPDX-License-Identifier: Apache-2.0
/*
 * Leveled logging to stderr, as text or JSON lines; libbpf's own messages
 * are routed through it.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <bpf/libbpf.h>

#include "lib/log.h"

static enum log_level current_level = LOG_INFO;
static enum log_format current_format = LOG_FORMAT_TEXT;

void log_set_level(enum log_level level)
{
	current_level = level;
}

enum log_level log_get_level(void)
{
	return current_level;
}

void log_set_format(enum log_format format)
{
	current_format = format;
}

int log_parse_format(const char *text, enum log_format *out)
{
	if (!strcmp(text, "text"))
		*out = LOG_FORMAT_TEXT;
	else if (!strcmp(text, "json"))
		*out = LOG_FORMAT_JSON;
	else
		return -1;
	return 0;
}

/* Appends s as the inside of a JSON string (RFC 8259 escapes); stops at the buffer's end. */
static size_t json_escape(char *buf, size_t len, size_t at, const char *s)
{
	static const char hex[] = "0123456789abcdef";

	for (; *s && at + 7 < len; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			buf[at++] = '\\';
			buf[at++] = c;
		} else if (c == '\n') {
			buf[at++] = '\\';
			buf[at++] = 'n';
		} else if (c == '\t') {
			buf[at++] = '\\';
			buf[at++] = 't';
		} else if (c < 0x20 || c == 0x7f) {
			at += snprintf(buf + at, len - at, "\\u00%c%c", hex[c >> 4], hex[c & 15]);
		} else {
			/* Bytes >= 0x80 pass: the agent's messages are UTF-8 or ASCII. */
			buf[at++] = c;
		}
	}
	buf[at] = '\0';
	return at;
}

char *log_format_line(char *buf, size_t len, enum log_format format, enum log_level level,
		      long long ts_sec, long ts_nsec, const char *msg)
{
	static const char *const names[] = { "warn", "info", "debug" };
	const char *name = level >= LOG_WARN && level <= LOG_DEBUG ? names[level] : "info";
	time_t secs = (time_t)ts_sec;
	struct tm tm;
	size_t at;

	if (format == LOG_FORMAT_TEXT) {
		snprintf(buf, len, "%lld.%03ld %s: %s", ts_sec, ts_nsec / 1000000, name, msg);
		return buf;
	}
	/* RFC 3339 in UTC with milliseconds, as log collectors parse it. */
	gmtime_r(&secs, &tm);
	at = snprintf(buf, len,
		      "{\"time\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\",\"level\":\"%s\","
		      "\"msg\":\"",
		      tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
		      tm.tm_sec, ts_nsec / 1000000, name);
	if (at >= len)
		at = len - 1;
	/* Room is kept for the closing "} even when msg is cut short. */
	at = json_escape(buf, len > 3 ? len - 3 : len, at, msg);
	snprintf(buf + at, len - at, "\"}");
	return buf;
}

static void log_vmsg(enum log_level level, const char *fmt, va_list ap)
{
	char line[4096], out[8192 + 64];
	struct timespec ts;
	size_t len;

	if (level > current_level)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	vsnprintf(line, sizeof(line), fmt, ap);
	len = strlen(line);
	while (len && line[len - 1] == '\n')
		line[--len] = '\0';
	log_format_line(out, sizeof(out), current_format, level, (long long)ts.tv_sec, ts.tv_nsec,
			line);
	fprintf(stderr, "%s\n", out);
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
