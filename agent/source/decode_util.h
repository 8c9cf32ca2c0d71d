/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the object decoders share (internal to agent/source): the decode
 * context that names the object and keeps its first problem, typed getters
 * of jansson members, and the checks of IP addresses, names and protocols.
 */
#ifndef SLUICE_DECODE_UTIL_H
#define SLUICE_DECODE_UTIL_H

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>

#include "core/model.h"

#define SHOWN_MAX 64 /* bytes of a bad value quoted in a log line */

/*
 * The labels of objects that kube-proxy leaves alone, whatever their value:
 * a Service another proxy owns, the EndpointSlices of a headless Service.
 * kube-proxy's one label selector excludes both from both kinds.
 */
#define LABEL_SERVICE_PROXY_NAME "service.kubernetes.io/service-proxy-name"
#define LABEL_HEADLESS "service.kubernetes.io/headless"

/*
 * What the API server requires of a metadata.name, by kind
 * (k8s.io/apimachinery/pkg/util/validation; the kinds' Validate*Name in
 * k8s.io/kubernetes/pkg/apis/.../validation). A namespace is always a
 * DNS-1123 label (ValidateNamespaceName = NameIsDNSLabel).
 */
enum decode_name_rule {
	/* EndpointSlice, Node (NameIsDNSSubdomain): labels joined by '.', <= 253 */
	DECODE_NAME_DNS1123_SUBDOMAIN,
	/* Service (NameIsDNS1035Label): [a-z]([-a-z0-9]*[a-z0-9])?, <= 63 */
	DECODE_NAME_DNS1035_LABEL,
};

/* One object being decoded: what to call it in a log line, and its first problem. */
struct decode_ctx {
	const char *source;
	const char *kind;
	bool namespaced;
	enum decode_name_rule name_rule;
	const char *ns; /* points into the tree; NULL until known */
	const char *name;
	bool failed;
	char problem[320];
};

/* Records the object's first problem (the one worth reporting); returns false. */
bool decode_fail(struct decode_ctx *ctx, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* A value as a log line shows it: control characters replaced, long ones cut. */
const char *decode_shown(const char *s, char buf[SHOWN_MAX + 4]);
/* "an object", "a string"...: what v is, for a log line. */
const char *decode_json_kind(const json_t *v);
/* A member of obj; absent, null, or obj not an object all read as unset, as in the API. */
json_t *decode_member(const json_t *obj, const char *key);

/*
 * The getters below read obj's member key (at is the path prefix used in
 * messages, such as "ports[2].") and leave their output unset (NULL, false)
 * when it is absent. A member of the wrong type fails the object.
 */
bool decode_get_object(struct decode_ctx *ctx, const json_t *obj, const char *at, const char *key,
		       json_t **out);
bool decode_get_array(struct decode_ctx *ctx, const json_t *obj, const char *at, const char *key,
		      json_t **out);
/* v must be a string without a NUL inside; at and key name it in the message. */
bool decode_check_string(struct decode_ctx *ctx, const json_t *v, const char *at, const char *key);
bool decode_get_string(struct decode_ctx *ctx, const json_t *obj, const char *at, const char *key,
		       const char **out);
/* A bool whose absence matters: *out is -1 when unset, else 0 or 1. */
bool decode_get_bool(struct decode_ctx *ctx, const json_t *obj, const char *at, const char *key,
		     int *out);
bool decode_get_int(struct decode_ctx *ctx, const json_t *obj, const char *at, const char *key,
		    json_int_t min, json_int_t max, json_int_t *out, bool *present);
/* An element of an array that must be an object; at is its prefix, "ports[2]." */
/*
 * An RFC 3339 time ("2024-05-01T10:00:00.5Z", "...+02:00") as seconds since
 * the epoch; false if text is not one.
 */
bool decode_parse_rfc3339(const char *text, double *out);
bool decode_check_element(struct decode_ctx *ctx, const json_t *item, const char *at);
/* A copy of s (NULL stays NULL). */
char *decode_strdup(const char *s);
/* what names the field in the message, as in `invalid clusterIP "10.0.0.999"`. */
bool decode_parse_ip(struct decode_ctx *ctx, const char *text, const char *what, int family,
		     struct ip_addr *out);
/* An array of IP address strings; family 0 takes both. */
bool decode_get_ip_list(struct decode_ctx *ctx, const json_t *obj, const char *at, const char *key,
			int family, struct ip_addr **out, int *n);
/* An array of strings, copied as they are. */
bool decode_get_string_list(struct decode_ctx *ctx, const json_t *obj, const char *at,
			    const char *key, char ***out, int *n);
/* protocol: TCP (the default), UDP or SCTP. */
bool decode_get_protocol(struct decode_ctx *ctx, const json_t *obj, const char *at, uint8_t *out);
/*
 * metadata: the name (required, valid by ctx->name_rule) and, for
 * namespaced kinds, the namespace ("default" when empty; a DNS-1123 label).
 * Both are read before failing so that the log line can name the object.
 */
bool decode_metadata(struct decode_ctx *ctx, const json_t *obj, json_t **labels,
		     json_t **annotations);
/* Fills the names every object carries (ns only if given). */
void decode_copy_names(const struct decode_ctx *ctx, char **ns, char **name, char **source);

/* The kube-proxy label that metadata.labels carries (LABEL_*), or NULL. */
const char *decode_ignored_by(const json_t *labels);

#endif
