// SPDX-License-Identifier: Apache-2.0
/*
 * The decoders' shared helpers (see decode_util.h): the first problem of an
 * object, typed getters of jansson members, and the checks of addresses,
 * object names and protocols.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <time.h>
#include <stdio.h>
#include <string.h>

#include "lib/intern.h"
#include "lib/xalloc.h"
#include "source/decode_util.h"

bool decode_fail(struct decode_ctx *ctx, const char *fmt, ...)
{
	va_list ap;

	if (ctx->failed)
		return false;
	ctx->failed = true;
	va_start(ap, fmt);
	vsnprintf(ctx->problem, sizeof(ctx->problem), fmt, ap);
	va_end(ap);
	return false;
}

const char *decode_shown(const char *s, char buf[SHOWN_MAX + 4])
{
	size_t i;

	for (i = 0; s[i] && i < SHOWN_MAX; i++)
		buf[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
	strcpy(buf + i, s[i] ? "..." : "");
	return buf;
}

const char *decode_json_kind(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "an array";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
		return "an integer";
	case JSON_REAL:
		return "a non-integer number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "a boolean";
	case JSON_NULL:
		return "null";
	}
	return "?";
}

json_t *decode_member(const json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	return json_is_null(v) ? NULL : v;
}

bool decode_get_object(struct decode_ctx *ctx, const json_t *obj, const char *at, const char *key,
		       json_t **out)
{
	json_t *v = decode_member(obj, key);

	*out = NULL;
	if (v && !json_is_object(v))
		return decode_fail(ctx, "%s%s: expected an object, got %s", at, key,
				   decode_json_kind(v));
	*out = v;
	return true;
}

bool decode_get_array(struct decode_ctx *ctx, const json_t *obj, const char *at, const char *key,
		      json_t **out)
{
	json_t *v = decode_member(obj, key);

	*out = NULL;
	if (v && !json_is_array(v))
		return decode_fail(ctx, "%s%s: expected an array, got %s", at, key,
				   decode_json_kind(v));
	*out = v;
	return true;
}

bool decode_check_string(struct decode_ctx *ctx, const json_t *v, const char *at, const char *key)
{
	if (!json_is_string(v))
		return decode_fail(ctx, "%s%s: expected a string, got %s", at, key,
				   decode_json_kind(v));
	/* A NUL inside (YAML "\0") would silently cut the C string. */
	if (strlen(json_string_value(v)) != json_string_length(v))
		return decode_fail(ctx, "%s%s: contains a NUL character", at, key);
	return true;
}

bool decode_get_string(struct decode_ctx *ctx, const json_t *obj, const char *at, const char *key,
		       const char **out)
{
	json_t *v = decode_member(obj, key);

	*out = NULL;
	if (!v)
		return true;
	if (!decode_check_string(ctx, v, at, key))
		return false;
	*out = json_string_value(v);
	return true;
}

bool decode_get_bool(struct decode_ctx *ctx, const json_t *obj, const char *at, const char *key,
		     int *out)
{
	json_t *v = decode_member(obj, key);

	*out = -1;
	if (!v)
		return true;
	if (!json_is_boolean(v))
		return decode_fail(ctx, "%s%s: expected a boolean, got %s", at, key,
				   decode_json_kind(v));
	*out = json_is_true(v);
	return true;
}

bool decode_get_int(struct decode_ctx *ctx, const json_t *obj, const char *at, const char *key,
		    json_int_t min, json_int_t max, json_int_t *out, bool *present)
{
	json_t *v = decode_member(obj, key);

	*out = 0;
	*present = false;
	if (!v)
		return true;
	if (json_is_real(v))
		return decode_fail(ctx, "%s%s: expected an integer, got %g", at, key,
				   json_real_value(v));
	if (!json_is_integer(v))
		return decode_fail(ctx, "%s%s: expected an integer, got %s", at, key,
				   decode_json_kind(v));
	if (json_integer_value(v) < min || json_integer_value(v) > max)
		return decode_fail(ctx,
				   "%s%s: %" JSON_INTEGER_FORMAT
				   " is out of range %" JSON_INTEGER_FORMAT
				   "..%" JSON_INTEGER_FORMAT,
				   at, key, json_integer_value(v), min, max);
	*out = json_integer_value(v);
	*present = true;
	return true;
}

bool decode_check_element(struct decode_ctx *ctx, const json_t *item, const char *at)
{
	if (json_is_object(item))
		return true;
	return decode_fail(ctx, "%.*s: expected an object, got %s", (int)strlen(at) - 1, at,
			   decode_json_kind(item));
}

char *decode_strdup(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

bool decode_parse_ip(struct decode_ctx *ctx, const char *text, const char *what, int family,
		     struct ip_addr *out)
{
	char buf[SHOWN_MAX + 4];

	if (!ip_addr_parse(text, out))
		return decode_fail(ctx, "invalid %s \"%s\"", what, decode_shown(text, buf));
	if (family && out->family != family)
		return decode_fail(ctx, "invalid %s \"%s\": not an %s address", what,
				   decode_shown(text, buf), family == AF_INET ? "IPv4" : "IPv6");
	return true;
}

bool decode_get_ip_list(struct decode_ctx *ctx, const json_t *obj, const char *at, const char *key,
			int family, struct ip_addr **out, int *n)
{
	json_t *list, *item;
	char what[96];
	size_t i;

	if (!decode_get_array(ctx, obj, at, key, &list))
		return false;
	if (!list || !json_array_size(list))
		return true;
	*out = xcalloc(json_array_size(list), sizeof(**out));
	json_array_foreach(list, i, item) {
		snprintf(what, sizeof(what), "%s%s[%zu]", at, key, i);
		if (!decode_check_string(ctx, item, what, ""))
			return false;
		if (!decode_parse_ip(ctx, json_string_value(item), what, family, &(*out)[*n]))
			return false;
		(*n)++;
	}
	return true;
}

bool decode_get_string_list(struct decode_ctx *ctx, const json_t *obj, const char *at,
			    const char *key, char ***out, int *n)
{
	json_t *list, *item;
	char what[96];
	size_t i;

	if (!decode_get_array(ctx, obj, at, key, &list))
		return false;
	if (!list || !json_array_size(list))
		return true;
	*out = xcalloc(json_array_size(list), sizeof(**out));
	json_array_foreach(list, i, item) {
		snprintf(what, sizeof(what), "%s%s[%zu]", at, key, i);
		if (!decode_check_string(ctx, item, what, ""))
			return false;
		(*out)[(*n)++] = xstrdup(json_string_value(item));
	}
	return true;
}

bool decode_get_protocol(struct decode_ctx *ctx, const json_t *obj, const char *at, uint8_t *out)
{
	char buf[SHOWN_MAX + 4];
	const char *s;

	if (!decode_get_string(ctx, obj, at, "protocol", &s))
		return false;
	if (!s || !*s || !strcmp(s, "TCP"))
		*out = PROTO_TCP;
	else if (!strcmp(s, "UDP"))
		*out = PROTO_UDP;
	else if (!strcmp(s, "SCTP"))
		*out = PROTO_SCTP;
	else
		return decode_fail(ctx, "%sprotocol: unknown protocol \"%s\"", at,
				   decode_shown(s, buf));
	return true;
}

/*
 * Kubernetes names, as k8s.io/apimachinery/pkg/util/validation checks them
 * (IsDNS1123Label, IsDNS1123Subdomain, IsDNS1035Label) and words its
 * messages. A label is 1-63 of [a-z0-9-] that starts and ends with an
 * alphanumeric (DNS-1035: starts with a letter); a subdomain is labels
 * joined by '.', at most 253 in all (no per-label limit, as upstream).
 */
#define DNS1123_LABEL_MAX 63
#define DNS1123_SUBDOMAIN_MAX 253
#define DNS1035_LABEL_MAX 63

static bool lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* s[0..len) matches [a-z0-9]([-a-z0-9]*[a-z0-9])? (letter_first: [a-z] first). */
static bool dns_label_ok(const char *s, size_t len, bool letter_first)
{
	if (!len || !lower_alnum(s[0]) || !lower_alnum(s[len - 1]))
		return false;
	if (letter_first && !(s[0] >= 'a' && s[0] <= 'z'))
		return false;
	for (size_t i = 1; i + 1 < len; i++)
		if (!lower_alnum(s[i]) && s[i] != '-')
			return false;
	return true;
}

static bool dns_subdomain_ok(const char *s)
{
	for (const char *dot;; s = dot + 1) {
		dot = strchr(s, '.');
		if (!dns_label_ok(s, dot ? (size_t)(dot - s) : strlen(s), false))
			return false;
		if (!dot)
			return true;
	}
}

/* Fails ctx unless s (metadata.<field>) is valid under rule; label: a namespace. */
static bool check_name(struct decode_ctx *ctx, const char *field, const char *s, bool label,
		       enum decode_name_rule rule)
{
	size_t len = strlen(s), max;
	char buf[SHOWN_MAX + 4];
	const char *what;
	bool ok;

	if (label) {
		max = DNS1123_LABEL_MAX;
		ok = dns_label_ok(s, len, false);
		what = "a lowercase RFC 1123 label must consist of lower case alphanumeric "
		       "characters or '-', and must start and end with an alphanumeric character";
	} else if (rule == DECODE_NAME_DNS1035_LABEL) {
		max = DNS1035_LABEL_MAX;
		ok = dns_label_ok(s, len, true);
		what = "a DNS-1035 label must consist of lower case alphanumeric characters or "
		       "'-', start with an alphabetic character, and end with an alphanumeric "
		       "character";
	} else {
		max = DNS1123_SUBDOMAIN_MAX;
		ok = dns_subdomain_ok(s);
		what = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
		       "characters, '-' or '.', and must start and end with an alphanumeric "
		       "character";
	}
	if (len > max)
		return decode_fail(ctx,
				   "invalid metadata.%s \"%s\": must be no more than %zu "
				   "characters",
				   field, decode_shown(s, buf), max);
	if (!ok)
		return decode_fail(ctx, "invalid metadata.%s \"%s\": %s", field,
				   decode_shown(s, buf), what);
	return true;
}

bool decode_metadata(struct decode_ctx *ctx, const json_t *obj, json_t **labels,
		     json_t **annotations)
{
	const char *name, *ns;
	json_t *meta;

	*labels = *annotations = NULL;
	if (!decode_get_object(ctx, obj, "", "metadata", &meta))
		return false;
	if (decode_get_string(ctx, meta, "metadata.", "name", &name) && name && *name)
		ctx->name = name;
	if (ctx->namespaced && decode_get_string(ctx, meta, "metadata.", "namespace", &ns))
		ctx->ns = ns && *ns ? ns : "default";
	if (ctx->failed)
		return false;
	if (!ctx->name)
		return decode_fail(ctx, "missing metadata.name");
	if (!check_name(ctx, "name", ctx->name, false, ctx->name_rule))
		return false;
	if (ctx->namespaced && !check_name(ctx, "namespace", ctx->ns, true, ctx->name_rule))
		return false;
	return decode_get_object(ctx, meta, "metadata.", "labels", labels) &&
	       decode_get_object(ctx, meta, "metadata.", "annotations", annotations);
}

void decode_copy_names(const struct decode_ctx *ctx, char **ns, char **name, char **source)
{
	if (ns)
		*ns = intern_get(ctx->ns);
	*name = decode_strdup(ctx->name);
	*source = intern_get(ctx->source);
}

const char *decode_ignored_by(const json_t *labels)
{
	/* DoesNotExist in the selector: any value, even "", excludes the object. */
	if (json_object_get(labels, LABEL_SERVICE_PROXY_NAME))
		return LABEL_SERVICE_PROXY_NAME;
	if (json_object_get(labels, LABEL_HEADLESS))
		return LABEL_HEADLESS;
	return NULL;
}

bool decode_parse_rfc3339(const char *text, double *out)
{
	int y, mo, d, h, mi, s, n = 0, off_h, off_m;
	double frac = 0, scale = 0.1;
	const char *p;
	struct tm tm = { 0 };
	time_t t;

	if (!text ||
	    sscanf(text, "%4d-%2d-%2d%*1[Tt ]%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &s, &n) != 6 ||
	    n != 19)
		return false;
	p = text + n;
	if (*p == '.') {
		for (p++; *p >= '0' && *p <= '9'; p++, scale /= 10)
			frac += (*p - '0') * scale;
	}
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = s;
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60)
		return false;
	t = timegm(&tm);
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if ((*p == '+' || *p == '-') && sscanf(p + 1, "%2d:%2d", &off_h, &off_m) == 2 &&
		   strlen(p) == 6) {
		t -= (*p == '+' ? 1 : -1) * (off_h * 3600 + off_m * 60);
		p += 6;
	} else {
		return false;
	}
	if (*p)
		return false;
	*out = (double)t + frac;
	return true;
}
