// SPDX-License-Identifier: Apache-2.0
/*
 * The top level of a JSON text, split without parsing it whole (see
 * json_split.h). A byte scanner finds where each value ends (strings with
 * their escapes, nesting); jansson parses what is handed over, so every
 * byte of the text is still checked by jansson, except the elements a
 * caller skips (it recognised their bytes as ones jansson already read).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/xalloc.h"
#include "source/json_split.h"

#define CHUNK (1u << 20)

enum { SCAN_OK, SCAN_MORE, SCAN_BAD };

struct window {
	struct json_input *in;
	char *buf;
	size_t cap;
	const char *data; /* buf, or in->text */
	size_t len, pos;
	size_t chunk; /* bytes read at a time */
	bool eof;
	int line; /* line of data[line_pos] */
	size_t line_pos;
	struct json_split_error *err;
};

static void count_lines(struct window *w, size_t upto)
{
	const char *p = w->data + w->line_pos, *end = w->data + upto;

	while (p < end && (p = memchr(p, '\n', end - p))) {
		w->line++;
		p++;
	}
	w->line_pos = upto;
}

static int line_at(struct window *w, size_t at)
{
	count_lines(w, at);
	return w->line;
}

static int fail(struct window *w, size_t at, const char *what)
{
	w->err->line = line_at(w, at < w->len ? at : w->len);
	snprintf(w->err->text, sizeof(w->err->text), "%s", what);
	return -EINVAL;
}

/* Drops what lies before pos and reads more; -ENODATA at the end of the input. */
static int refill(struct window *w)
{
	struct json_input *in = w->in;
	ssize_t got;

	if (w->eof)
		return -ENODATA;
	count_lines(w, w->pos);
	memmove(w->buf, w->buf + w->pos, w->len - w->pos);
	w->len -= w->pos;
	w->line_pos -= w->pos;
	w->pos = 0;
	/* An element larger than the buffer: double it, so rescans stay linear. */
	if (w->len == w->cap) {
		w->cap *= 2;
		w->buf = xreallocarray(w->buf, w->cap, 1);
	}
	do
		got = read(in->fd, w->buf + w->len,
			   w->cap - w->len < w->chunk ? w->cap - w->len : w->chunk);
	while (got < 0 && errno == EINTR);
	if (got < 0)
		return -errno;
	w->data = w->buf;
	if (!got) {
		w->eof = true;
		return 0;
	}
	in->n_read += got;
	if (in->n_read > in->max)
		return -EFBIG;
	w->len += got;
	return 0;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Skips white space; false at the end of the input. */
static int skip_ws(struct window *w, bool *end)
{
	int err;

	*end = false;
	for (;;) {
		while (w->pos < w->len && is_space(w->data[w->pos]))
			w->pos++;
		if (w->pos < w->len)
			return 0;
		err = refill(w);
		if (err == -ENODATA || (!err && w->eof && w->pos == w->len)) {
			*end = true;
			return 0;
		}
		if (err)
			return err;
	}
}

/* The end of the string whose opening quote is at d[p]. */
static int scan_string(const char *d, size_t len, size_t p, size_t *end)
{
	for (size_t q = p + 1;;) {
		const char *quote = memchr(d + q, '"', len - q);
		size_t at, slashes = 0;

		if (!quote)
			return SCAN_MORE;
		at = quote - d;
		while (at - slashes > p + 1 && d[at - slashes - 1] == '\\')
			slashes++;
		if (!(slashes & 1)) {
			*end = at + 1;
			return SCAN_OK;
		}
		q = at + 1;
	}
}

/* Where the value that starts at d[p] ends (it is checked when jansson parses it). */
static int scan_value(const char *d, size_t len, size_t p, bool eof, size_t *end)
{
	size_t depth = 0, i = p;
	int rc;

	if (d[p] == '"')
		return scan_string(d, len, p, end);
	if (d[p] != '{' && d[p] != '[') {
		while (i < len && !strchr(",:]}{[\" \t\r\n", d[i]))
			i++;
		if (i == len && !eof)
			return SCAN_MORE;
		if (i == p)
			return SCAN_BAD;
		*end = i;
		return SCAN_OK;
	}
	for (; i < len; i++) {
		switch (d[i]) {
		case '"':
			rc = scan_string(d, len, i, &i);
			if (rc != SCAN_OK)
				return rc;
			i--;
			break;
		case '{':
		case '[':
			depth++;
			break;
		case '}':
		case ']':
			if (!--depth) {
				*end = i + 1;
				return SCAN_OK;
			}
			break;
		}
	}
	return SCAN_MORE;
}

/* The value at pos: [pos, *end), reading more as needed. */
static int next_value(struct window *w, size_t *end)
{
	for (;;) {
		int rc = scan_value(w->data, w->len, w->pos, w->eof, end), err;

		if (rc == SCAN_OK)
			return 0;
		if (rc == SCAN_BAD)
			return fail(w, w->pos, "unexpected character");
		err = refill(w);
		if (err == -ENODATA)
			return fail(w, w->len, "unexpected end of input");
		if (err)
			return err;
	}
}

/* The next non-space byte, which must be one of want. */
static int expect(struct window *w, const char *want, char *got)
{
	bool end;
	int err = skip_ws(w, &end);
	char msg[64];

	if (err)
		return err;
	if (end)
		return fail(w, w->len, "unexpected end of input");
	*got = w->data[w->pos];
	if (!strchr(want, *got)) {
		snprintf(msg, sizeof(msg), "expected one of '%s'", want);
		return fail(w, w->pos, msg);
	}
	return 0;
}

static json_t *parse_span(struct window *w, size_t start, size_t end, int *err)
{
	json_error_t jerr;
	json_t *v = json_loadb(w->data + start, end - start, JSON_DECODE_ANY, &jerr);

	if (v)
		return v;
	w->err->overflow = json_error_code(&jerr) == json_error_numeric_overflow;
	w->err->line = line_at(w, start) + jerr.line - 1;
	snprintf(w->err->text, sizeof(w->err->text), "%s", jerr.text);
	*err = -EINVAL;
	return NULL;
}

/* An array at pos: each element to ops->element. */
static int stream_elements(struct window *w, const struct json_split_ops *ops, void *ctx)
{
	bool first = true;
	size_t end;
	char c;
	int err;

	w->pos++;
	for (;;) {
		err = expect(w, first ? "]{[\"-0123456789tfn" : ",]", &c);
		if (err)
			return err;
		if (c == ']') {
			w->pos++;
			return 0;
		}
		if (!first) {
			w->pos++;
			err = expect(w, "{[\"-0123456789tfn", &c);
			if (err)
				return err;
		}
		first = false;
		err = next_value(w, &end);
		if (err)
			return err;
		err = ops->element(ctx, w->data + w->pos, end - w->pos, line_at(w, w->pos));
		if (err)
			return err;
		w->pos = end;
	}
}

/* A top-level object at pos: members one by one, items streamed. */
static int split_object(struct window *w, const struct json_split_ops *ops, void *ctx)
{
	bool first = true, streamed = false;
	size_t end;
	json_t *key, *value;
	char c;
	int err = 0;

	w->pos++;
	for (;;) {
		err = expect(w, first ? "}\"" : ",}", &c);
		if (err)
			return err;
		if (c == '}') {
			w->pos++;
			return streamed ? JSON_SPLIT_LIST : JSON_SPLIT_OBJECT;
		}
		if (!first) {
			w->pos++;
			err = expect(w, "\"", &c);
			if (err)
				return err;
		}
		first = false;
		err = next_value(w, &end);
		if (err)
			return err;
		key = parse_span(w, w->pos, end, &err);
		if (!key)
			return err;
		w->pos = end;
		err = expect(w, ":", &c);
		if (!err) {
			w->pos++;
			err = expect(w, "{[\"-0123456789tfn", &c);
		}
		if (err)
			goto out;
		if (!strcmp(json_string_value(key), "items") && c == '[') {
			/* jansson keeps the last of two: only a text parsed whole can say. */
			if (streamed) {
				err = JSON_SPLIT_OTHER;
				goto out;
			}
			streamed = true;
			err = stream_elements(w, ops, ctx);
		} else {
			err = next_value(w, &end);
			if (!err && (value = parse_span(w, w->pos, end, &err))) {
				w->pos = end;
				err = ops->member(ctx, json_string_value(key), value);
			}
		}
out:
		json_decref(key);
		if (err)
			return err;
	}
}

int json_split(struct json_input *in, const struct json_split_ops *ops, void *ctx,
	       struct json_split_error *err)
{
	struct window w = { .in = in, .line = 1, .err = err };
	bool end;
	int rc;

	memset(err, 0, sizeof(*err));
	if (in->text) {
		w.data = in->text;
		w.len = in->len;
		w.eof = true;
	} else {
		w.chunk = in->chunk ? in->chunk : CHUNK;
		w.cap = w.chunk < 64 ? 64 : w.chunk;
		w.buf = xmalloc(w.cap);
		w.data = w.buf;
	}
	/* A UTF-8 byte order mark: libyaml skips it, jansson does not. */
	rc = 0;
	while (w.len < 3 && !w.eof && !rc)
		rc = refill(&w);
	if (rc)
		goto out;
	if (w.len >= 3 && !memcmp(w.data, "\xef\xbb\xbf", 3))
		w.pos = 3;
	rc = skip_ws(&w, &end);
	if (rc || end) {
		rc = rc ? rc : JSON_SPLIT_NOT_JSON;
		goto out;
	}
	if (w.data[w.pos] == '{') {
		rc = split_object(&w, ops, ctx);
	} else if (w.data[w.pos] == '[') {
		rc = stream_elements(&w, ops, ctx);
		if (!rc)
			rc = JSON_SPLIT_ARRAY;
	} else {
		rc = JSON_SPLIT_NOT_JSON;
		goto out;
	}
	if (rc < 0 || rc == JSON_SPLIT_OTHER)
		goto out;
	/* JSON is one value: anything but white space after it is an error. */
	{
		int err2 = skip_ws(&w, &end);

		if (err2)
			rc = err2;
		else if (!end)
			rc = fail(&w, w.pos, "end of file expected");
	}
out:
	free(w.buf);
	return rc;
}
