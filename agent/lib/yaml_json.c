// SPDX-License-Identifier: Apache-2.0
/* YAML text to jansson trees, one per document, so that one decoder serves JSON and YAML. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yaml.h>

#include "lib/yaml_json.h"
#include "lib/xalloc.h"

/* Bounded so that freeing a tree (jansson recurses) cannot exhaust the stack. */
#define YAML_MAX_DEPTH 512

/* An open sequence or mapping. */
struct yaml_frame {
	json_t *node; /* array or object, owned by its parent or by the builder's root */
	char *key; /* object: the key read, waiting for its value */
};

struct yaml_builder {
	struct yaml_frame *frames;
	size_t depth, cap;
	json_t *root; /* the document being built */
	yaml_json_doc_fn *fn; /* gets each finished document */
	void *ctx;
	int fn_err; /* fn's error, which stopped the parse */
	struct yaml_json_error *err;
};

static bool builder_fail(struct yaml_builder *b, const yaml_mark_t *mark, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static bool builder_fail(struct yaml_builder *b, const yaml_mark_t *mark, const char *fmt, ...)
{
	va_list ap;

	b->err->line = mark ? (int)mark->line + 1 : 0;
	va_start(ap, fmt);
	vsnprintf(b->err->text, sizeof(b->err->text), fmt, ap);
	va_end(ap);
	return false;
}

static bool builder_nomem(struct yaml_builder *b)
{
	b->err->nomem = true;
	return builder_fail(b, NULL, "out of memory");
}

static bool is_one_of(const char *s, const char *const *words)
{
	for (; *words; words++) {
		if (!strcmp(s, *words))
			return true;
	}
	return false;
}

static bool all_digits(const char *s, const char *digits)
{
	if (!*s)
		return false;
	for (; *s; s++) {
		if (!strchr(digits, *s))
			return false;
	}
	return true;
}

/* [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)? */
static bool looks_like_float(const char *s)
{
	bool mantissa = false;

	if (*s == '-' || *s == '+')
		s++;
	while (*s >= '0' && *s <= '9') {
		s++;
		mantissa = true;
	}
	if (*s == '.') {
		s++;
		while (*s >= '0' && *s <= '9') {
			s++;
			mantissa = true;
		}
	}
	if (!mantissa)
		return false;
	if (*s == 'e' || *s == 'E') {
		s++;
		if (*s == '-' || *s == '+')
			s++;
		if (!(*s >= '0' && *s <= '9'))
			return false;
		while (*s >= '0' && *s <= '9')
			s++;
	}
	return !*s;
}

/* text is the whole scalar, digits its digits in base. */
static json_t *integer_or_real(const char *text, const char *digits, int base, bool negative)
{
	unsigned long long magnitude;
	double real;

	errno = 0;
	magnitude = strtoull(digits, NULL, base);
	if (!errno && magnitude <= (unsigned long long)LLONG_MAX)
		return json_integer(negative ? -(json_int_t)magnitude : (json_int_t)magnitude);
	if (!errno && negative && magnitude == (unsigned long long)LLONG_MAX + 1)
		return json_integer(LLONG_MIN);
	/* Too big for a JSON integer: keep it a number, which no integer field accepts. */
	real = base == 8 ? 1e300 : strtod(text, NULL);
	return json_real(isfinite(real) ? real : 1e300);
}

/* The YAML 1.2 core schema's resolution of a plain scalar. */
static json_t *resolve_plain(const char *s, size_t len)
{
	static const char *const nulls[] = { "null", "Null", "NULL", "~", NULL };
	static const char *const trues[] = { "true", "True", "TRUE", NULL };
	static const char *const falses[] = { "false", "False", "FALSE", NULL };
	const char *digits = s;
	bool negative = false;
	double real;

	if (strlen(s) != len)
		return json_stringn(s, len);
	if (!len || is_one_of(s, nulls))
		return json_null();
	if (is_one_of(s, trues))
		return json_true();
	if (is_one_of(s, falses))
		return json_false();
	if (!strncmp(s, "0x", 2) && all_digits(s + 2, "0123456789abcdefABCDEF"))
		return integer_or_real(s, s + 2, 16, false);
	if (!strncmp(s, "0o", 2) && all_digits(s + 2, "01234567"))
		return integer_or_real(s, s + 2, 8, false);
	if (*digits == '-' || *digits == '+') {
		negative = *digits == '-';
		digits++;
	}
	if (all_digits(digits, "0123456789"))
		return integer_or_real(s, digits, 10, negative);
	if (looks_like_float(s)) {
		real = strtod(s, NULL);
		/* jansson holds no infinities: an overflowing float stays text. */
		if (isfinite(real))
			return json_real(real);
	}
	return json_stringn(s, len);
}

static json_t *scalar_value(const yaml_event_t *ev)
{
	const char *value = (const char *)ev->data.scalar.value;
	const char *tag = (const char *)ev->data.scalar.tag;

	if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE ||
	    (tag && (!strcmp(tag, "!") || !strcmp(tag, YAML_STR_TAG))))
		return json_stringn(value, ev->data.scalar.length);
	return resolve_plain(value, ev->data.scalar.length);
}

/* Places a new value (reference stolen) in the open container or as the document root. */
static bool attach(struct yaml_builder *b, json_t *value, const yaml_event_t *ev)
{
	struct yaml_frame *top;
	int rc;

	if (!value)
		return builder_nomem(b);
	if (!b->depth) {
		b->root = value;
		return true;
	}
	top = &b->frames[b->depth - 1];
	if (json_is_array(top->node)) {
		if (json_array_append_new(top->node, value))
			return builder_nomem(b);
		return true;
	}
	rc = json_object_set_new(top->node, top->key, value);
	free(top->key);
	top->key = NULL;
	if (rc)
		return builder_fail(b, &ev->start_mark, "invalid mapping key");
	return true;
}

static bool waiting_for_key(const struct yaml_builder *b)
{
	const struct yaml_frame *top = b->depth ? &b->frames[b->depth - 1] : NULL;

	return top && json_is_object(top->node) && !top->key;
}

static bool open_container(struct yaml_builder *b, json_t *node, const yaml_event_t *ev)
{
	if (waiting_for_key(b)) {
		json_decref(node);
		return builder_fail(b, &ev->start_mark, "mapping keys must be scalars");
	}
	if (b->depth >= YAML_MAX_DEPTH) {
		json_decref(node);
		return builder_fail(b, &ev->start_mark, "nesting deeper than %d levels",
				    YAML_MAX_DEPTH);
	}
	if (b->depth == b->cap) {
		b->cap = b->cap ? b->cap * 2 : 16;
		b->frames = xreallocarray(b->frames, b->cap, sizeof(*b->frames));
	}
	if (!attach(b, node, ev))
		return false;
	b->frames[b->depth].node = node;
	b->frames[b->depth].key = NULL;
	b->depth++;
	return true;
}

static bool handle_event(struct yaml_builder *b, const yaml_event_t *ev)
{
	switch (ev->type) {
	case YAML_DOCUMENT_START_EVENT:
		b->root = NULL;
		return true;
	case YAML_DOCUMENT_END_EVENT: {
		json_t *doc = b->root ? b->root : json_null();

		b->root = NULL;
		b->fn_err = b->fn(b->ctx, doc);
		return !b->fn_err;
	}
	case YAML_SCALAR_EVENT:
		if (waiting_for_key(b)) {
			b->frames[b->depth - 1].key = xstrndup((const char *)ev->data.scalar.value,
							       ev->data.scalar.length);
			return true;
		}
		return attach(b, scalar_value(ev), ev);
	case YAML_SEQUENCE_START_EVENT:
		return open_container(b, xcheck(json_array()), ev);
	case YAML_MAPPING_START_EVENT:
		return open_container(b, xcheck(json_object()), ev);
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT:
		if (b->depth) {
			b->depth--;
			free(b->frames[b->depth].key);
		}
		return true;
	case YAML_ALIAS_EVENT:
		return builder_fail(b, &ev->start_mark, "YAML aliases (*%s) are not supported",
				    ev->data.alias.anchor);
	default:
		return true;
	}
}

/* libyaml's read handler over a file: at most max bytes in all. */
struct fd_input {
	int fd;
	size_t max, *n_read;
	int err;
};

static int read_fd(void *data, unsigned char *buf, size_t size, size_t *got)
{
	struct fd_input *in = data;
	ssize_t n;

	do
		n = read(in->fd, buf, size);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		in->err = -errno;
		return 0;
	}
	*in->n_read += n;
	if (*in->n_read > in->max) {
		in->err = -EFBIG;
		return 0;
	}
	*got = n;
	return 1;
}

static int parse_stream(yaml_parser_t *parser, yaml_json_doc_fn *fn, void *ctx,
			struct yaml_json_error *err, const struct fd_input *in)
{
	struct yaml_builder b = { .err = err, .fn = fn, .ctx = ctx };
	yaml_event_t ev;
	bool ok = true, done = false;

	while (ok && !done) {
		if (!yaml_parser_parse(parser, &ev)) {
			if (in && in->err) {
				builder_fail(&b, NULL, "cannot read: %s", strerror(-in->err));
			} else if (parser->error == YAML_MEMORY_ERROR) {
				builder_nomem(&b);
			} else if (parser->context) {
				builder_fail(&b, &parser->problem_mark, "%s %s",
					     parser->problem ? parser->problem : "syntax error",
					     parser->context);
			} else {
				builder_fail(&b, &parser->problem_mark, "%s",
					     parser->problem ? parser->problem : "syntax error");
			}
			ok = false;
			break;
		}
		ok = handle_event(&b, &ev);
		done = ev.type == YAML_STREAM_END_EVENT;
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(parser);

	/* Open containers belong to the unfinished root; only pending keys are ours. */
	for (size_t i = 0; i < b.depth; i++)
		free(b.frames[i].key);
	free(b.frames);
	json_decref(b.root);
	if (ok)
		return 0;
	if (b.fn_err)
		return b.fn_err;
	if (in && in->err)
		return in->err;
	return err->nomem ? -ENOMEM : -EINVAL;
}

int yaml_to_json_fd(int fd, size_t max, size_t *n_read, yaml_json_doc_fn *fn, void *ctx,
		    struct yaml_json_error *err)
{
	struct fd_input in = { .fd = fd, .max = max, .n_read = n_read };
	yaml_parser_t parser;

	memset(err, 0, sizeof(*err));
	*n_read = 0;
	if (!yaml_parser_initialize(&parser)) {
		err->nomem = true;
		snprintf(err->text, sizeof(err->text), "out of memory");
		return -ENOMEM;
	}
	yaml_parser_set_input(&parser, read_fd, &in);
	return parse_stream(&parser, fn, ctx, err, &in);
}

static int append_doc(void *ctx, json_t *doc)
{
	return json_array_append_new(ctx, doc) ? -ENOMEM : 0;
}

json_t *yaml_to_json(const char *text, size_t len, struct yaml_json_error *err)
{
	json_t *docs = xcheck(json_array());
	yaml_parser_t parser;

	memset(err, 0, sizeof(*err));
	if (!yaml_parser_initialize(&parser)) {
		json_decref(docs);
		err->nomem = true;
		snprintf(err->text, sizeof(err->text), "out of memory");
		return NULL;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)(text ? text : ""),
				     text ? len : 0);
	if (parse_stream(&parser, append_doc, docs, err, NULL)) {
		json_decref(docs);
		return NULL;
	}
	return docs;
}
