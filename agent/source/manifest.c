// SPDX-License-Identifier: Apache-2.0
/*
 * Kubernetes manifests into validated model objects: JSON (parsed by
 * jansson) or YAML (turned into the same jansson trees), as single objects,
 * Lists or multi-document YAML. Each object is checked on its own: a bad one
 * gets one log line and is left out, the rest is kept.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "source/manifest.h"
#include "core/ratelimit.h"
#include "lib/yaml_json.h"

#define MAX_LIST_DEPTH 8
#define SHOWN_MAX 64 /* bytes of a bad value quoted in a log line */
#define DEFAULT_AFFINITY_TIMEOUT 10800
#define MAX_AFFINITY_TIMEOUT 86400

/* What one call decodes, with room to grow, before it moves to the caller's objects. */
struct collected {
	struct manifest_objects objs;
	size_t cap_services, cap_slices, cap_nodes, cap_rejected;
};

/* Appends item to array (count n, capacity cap); false when out of memory. */
#define APPEND(array, n, cap, item)                                                        \
	({                                                                                 \
		bool ok_ = true;                                                           \
		if ((n) == (cap)) {                                                        \
			size_t cap_ = (cap) ? 2 * (cap) : 8;                               \
			typeof(array) bigger_ = realloc((array), cap_ * sizeof(*(array))); \
			if (bigger_) {                                                     \
				(array) = bigger_;                                         \
				(cap) = cap_;                                              \
			} else {                                                           \
				ok_ = false;                                               \
			}                                                                  \
		}                                                                          \
		if (ok_)                                                                   \
			(array)[(n)++] = (item);                                           \
		ok_;                                                                       \
	})

/* One object being decoded: what to call it in a log line, and its first problem. */
struct decode_ctx {
	const char *source;
	const char *kind;
	bool namespaced;
	const char *ns; /* points into the tree; NULL until known */
	const char *name;
	bool failed;
	bool nomem;
	char problem[256];
};

static bool fail(struct decode_ctx *ctx, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Records the object's first problem (the one worth reporting); returns false. */
static bool fail(struct decode_ctx *ctx, const char *fmt, ...)
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

static bool no_memory(struct decode_ctx *ctx)
{
	ctx->nomem = true;
	return fail(ctx, "out of memory");
}

/* A value as a log line shows it: control characters replaced, long ones cut. */
static const char *shown(const char *s, char buf[SHOWN_MAX + 4])
{
	size_t i;

	for (i = 0; s[i] && i < SHOWN_MAX; i++)
		buf[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
	strcpy(buf + i, s[i] ? "..." : "");
	return buf;
}

static const char *json_kind(const json_t *v)
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

/* A member of obj; absent, null, or obj not an object all read as unset, as in the API. */
static json_t *member(const json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	return json_is_null(v) ? NULL : v;
}

/*
 * The getters below read obj's member key (at is the path prefix used in
 * messages, such as "ports[2].") and leave their output unset (NULL, false)
 * when it is absent. A member of the wrong type fails the object.
 */
static bool get_object(struct decode_ctx *ctx, const json_t *obj, const char *at, const char *key,
		       json_t **out)
{
	json_t *v = member(obj, key);

	*out = NULL;
	if (v && !json_is_object(v))
		return fail(ctx, "%s%s: expected an object, got %s", at, key, json_kind(v));
	*out = v;
	return true;
}

static bool get_array(struct decode_ctx *ctx, const json_t *obj, const char *at, const char *key,
		      json_t **out)
{
	json_t *v = member(obj, key);

	*out = NULL;
	if (v && !json_is_array(v))
		return fail(ctx, "%s%s: expected an array, got %s", at, key, json_kind(v));
	*out = v;
	return true;
}

static bool check_string(struct decode_ctx *ctx, const json_t *v, const char *at, const char *key)
{
	if (!json_is_string(v))
		return fail(ctx, "%s%s: expected a string, got %s", at, key, json_kind(v));
	/* A NUL inside (YAML "\0") would silently cut the C string. */
	if (strlen(json_string_value(v)) != json_string_length(v))
		return fail(ctx, "%s%s: contains a NUL character", at, key);
	return true;
}

static bool get_string(struct decode_ctx *ctx, const json_t *obj, const char *at, const char *key,
		       const char **out)
{
	json_t *v = member(obj, key);

	*out = NULL;
	if (!v)
		return true;
	if (!check_string(ctx, v, at, key))
		return false;
	*out = json_string_value(v);
	return true;
}

/* A bool whose absence matters: *out is -1 when unset, else 0 or 1. */
static bool get_bool(struct decode_ctx *ctx, const json_t *obj, const char *at, const char *key,
		     int *out)
{
	json_t *v = member(obj, key);

	*out = -1;
	if (!v)
		return true;
	if (!json_is_boolean(v))
		return fail(ctx, "%s%s: expected a boolean, got %s", at, key, json_kind(v));
	*out = json_is_true(v);
	return true;
}

static bool get_int(struct decode_ctx *ctx, const json_t *obj, const char *at, const char *key,
		    json_int_t min, json_int_t max, json_int_t *out, bool *present)
{
	json_t *v = member(obj, key);

	*out = 0;
	*present = false;
	if (!v)
		return true;
	if (json_is_real(v))
		return fail(ctx, "%s%s: expected an integer, got %g", at, key, json_real_value(v));
	if (!json_is_integer(v))
		return fail(ctx, "%s%s: expected an integer, got %s", at, key, json_kind(v));
	if (json_integer_value(v) < min || json_integer_value(v) > max)
		return fail(ctx,
			    "%s%s: %" JSON_INTEGER_FORMAT " is out of range %" JSON_INTEGER_FORMAT
			    "..%" JSON_INTEGER_FORMAT,
			    at, key, json_integer_value(v), min, max);
	*out = json_integer_value(v);
	*present = true;
	return true;
}

/* An element of an array that must be an object; at is its prefix, "ports[2]." */
static bool check_object_element(struct decode_ctx *ctx, const json_t *item, const char *at)
{
	if (json_is_object(item))
		return true;
	return fail(ctx, "%.*s: expected an object, got %s", (int)strlen(at) - 1, at,
		    json_kind(item));
}

/* A copy of s (NULL stays NULL); NULL and the object failed when out of memory. */
static char *dup_string(struct decode_ctx *ctx, const char *s, bool *ok)
{
	char *copy;

	if (!s)
		return NULL;
	copy = strdup(s);
	if (!copy)
		*ok = no_memory(ctx);
	return copy;
}

/* what names the field in the message, as in `invalid clusterIP "10.0.0.999"`. */
static bool parse_ip(struct decode_ctx *ctx, const char *text, const char *what, int family,
		     struct ip_addr *out)
{
	char buf[SHOWN_MAX + 4];

	if (!ip_addr_parse(text, out))
		return fail(ctx, "invalid %s \"%s\"", what, shown(text, buf));
	if (family && out->family != family)
		return fail(ctx, "invalid %s \"%s\": not an %s address", what, shown(text, buf),
			    family == AF_INET ? "IPv4" : "IPv6");
	return true;
}

/* An array of IP address strings; family 0 takes both. */
static bool get_ip_list(struct decode_ctx *ctx, const json_t *obj, const char *at, const char *key,
			int family, struct ip_addr **out, int *n)
{
	json_t *list, *item;
	char what[96];
	size_t i;

	if (!get_array(ctx, obj, at, key, &list))
		return false;
	if (!list || !json_array_size(list))
		return true;
	*out = calloc(json_array_size(list), sizeof(**out));
	if (!*out)
		return no_memory(ctx);
	json_array_foreach(list, i, item)
	{
		snprintf(what, sizeof(what), "%s%s[%zu]", at, key, i);
		if (!check_string(ctx, item, what, ""))
			return false;
		if (!parse_ip(ctx, json_string_value(item), what, family, &(*out)[*n]))
			return false;
		(*n)++;
	}
	return true;
}

/* An array of strings, copied as they are. */
static bool get_string_list(struct decode_ctx *ctx, const json_t *obj, const char *at,
			    const char *key, char ***out, int *n)
{
	json_t *list, *item;
	char what[96];
	bool ok = true;
	size_t i;

	if (!get_array(ctx, obj, at, key, &list))
		return false;
	if (!list || !json_array_size(list))
		return true;
	*out = calloc(json_array_size(list), sizeof(**out));
	if (!*out)
		return no_memory(ctx);
	json_array_foreach(list, i, item)
	{
		snprintf(what, sizeof(what), "%s%s[%zu]", at, key, i);
		if (!check_string(ctx, item, what, ""))
			return false;
		(*out)[*n] = dup_string(ctx, json_string_value(item), &ok);
		if (!ok)
			return false;
		(*n)++;
	}
	return true;
}

/* hints.forZones / hints.forNodes: an array of {name: ...}, kept as the names. */
static bool get_hint_names(struct decode_ctx *ctx, const json_t *hints, const char *at,
			   const char *key, char ***out, int *n)
{
	json_t *list, *item;
	const char *name;
	char item_at[128];
	bool ok = true;
	size_t i;

	if (!get_array(ctx, hints, at, key, &list))
		return false;
	if (!list || !json_array_size(list))
		return true;
	*out = calloc(json_array_size(list), sizeof(**out));
	if (!*out)
		return no_memory(ctx);
	json_array_foreach(list, i, item)
	{
		snprintf(item_at, sizeof(item_at), "%s%s[%zu].", at, key, i);
		if (!check_object_element(ctx, item, item_at) ||
		    !get_string(ctx, item, item_at, "name", &name))
			return false;
		if (!name || !*name)
			return fail(ctx, "%sname: missing", item_at);
		(*out)[*n] = dup_string(ctx, name, &ok);
		if (!ok)
			return false;
		(*n)++;
	}
	return true;
}

static bool get_protocol(struct decode_ctx *ctx, const json_t *obj, const char *at, uint8_t *out)
{
	char buf[SHOWN_MAX + 4];
	const char *s;

	if (!get_string(ctx, obj, at, "protocol", &s))
		return false;
	if (!s || !*s || !strcmp(s, "TCP"))
		*out = PROTO_TCP;
	else if (!strcmp(s, "UDP"))
		*out = PROTO_UDP;
	else if (!strcmp(s, "SCTP"))
		*out = PROTO_SCTP;
	else
		return fail(ctx, "%sprotocol: unknown protocol \"%s\"", at, shown(s, buf));
	return true;
}

/* Kubernetes object names: DNS subdomains (lower-case alphanumerics, '-' and '.'). */
static bool valid_object_name(const char *s, size_t max)
{
	size_t len = strlen(s);

	if (!len || len > max)
		return false;
	for (size_t i = 0; i < len; i++) {
		bool alnum = (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9');

		if (!alnum && ((s[i] != '-' && s[i] != '.') || i == 0 || i == len - 1))
			return false;
	}
	return true;
}

/* A named port (IANA_SVC_NAME): 1-15 of [a-z0-9-], a letter, no edge or double '-'. */
static bool valid_port_name(const char *s)
{
	size_t len = strlen(s);
	bool letter = false;

	if (!len || len > 15 || s[0] == '-' || s[len - 1] == '-' || strstr(s, "--"))
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] >= 'a' && s[i] <= 'z')
			letter = true;
		else if (!(s[i] >= '0' && s[i] <= '9') && s[i] != '-')
			return false;
	}
	return letter;
}

/*
 * metadata: the name (required) and, for namespaced kinds, the namespace
 * ("default" when empty). Both are read before failing so that the log line
 * can name the object.
 */
static bool decode_metadata(struct decode_ctx *ctx, const json_t *obj, json_t **labels,
			    json_t **annotations)
{
	char buf[SHOWN_MAX + 4];
	const char *name, *ns;
	json_t *meta;

	*labels = *annotations = NULL;
	if (!get_object(ctx, obj, "", "metadata", &meta))
		return false;
	if (get_string(ctx, meta, "metadata.", "name", &name) && name && *name)
		ctx->name = name;
	if (ctx->namespaced && get_string(ctx, meta, "metadata.", "namespace", &ns))
		ctx->ns = ns && *ns ? ns : "default";
	if (ctx->failed)
		return false;
	if (!ctx->name)
		return fail(ctx, "missing metadata.name");
	if (!valid_object_name(ctx->name, 253))
		return fail(ctx, "invalid metadata.name \"%s\"", shown(ctx->name, buf));
	if (ctx->namespaced && !valid_object_name(ctx->ns, 63))
		return fail(ctx, "invalid metadata.namespace \"%s\"", shown(ctx->ns, buf));
	return get_object(ctx, meta, "metadata.", "labels", labels) &&
	       get_object(ctx, meta, "metadata.", "annotations", annotations);
}

static bool decode_service_type(struct decode_ctx *ctx, const json_t *spec, struct service *svc)
{
	char buf[SHOWN_MAX + 4];
	const char *type;

	if (!get_string(ctx, spec, "", "type", &type))
		return false;
	if (!type || !*type || !strcmp(type, "ClusterIP"))
		svc->type = SVC_CLUSTER_IP;
	else if (!strcmp(type, "NodePort"))
		svc->type = SVC_NODE_PORT;
	else if (!strcmp(type, "LoadBalancer"))
		svc->type = SVC_LOAD_BALANCER;
	else if (!strcmp(type, "ExternalName"))
		svc->type = SVC_EXTERNAL_NAME;
	else
		return fail(ctx, "unknown type \"%s\"", shown(type, buf));
	return true;
}

/* clusterIPs (dual-stack) wins over clusterIP; "None" is headless, "" none at all. */
static bool decode_cluster_ips(struct decode_ctx *ctx, const json_t *spec, struct service *svc)
{
	const char *single;
	json_t *list, *item;
	char what[40];
	size_t i, n;

	if (!get_string(ctx, spec, "", "clusterIP", &single) ||
	    !get_array(ctx, spec, "", "clusterIPs", &list))
		return false;
	n = list ? json_array_size(list) : 0;
	if (!n) {
		if (!single || !*single)
			return true;
		if (!strcmp(single, "None")) {
			svc->headless = true;
			return true;
		}
		svc->cluster_ips = calloc(1, sizeof(*svc->cluster_ips));
		if (!svc->cluster_ips)
			return no_memory(ctx);
		if (!parse_ip(ctx, single, "clusterIP", 0, &svc->cluster_ips[0]))
			return false;
		svc->n_cluster_ips = 1;
		return true;
	}
	if (n > 2)
		return fail(ctx, "clusterIPs: %zu addresses, at most 2 (one per family)", n);
	svc->cluster_ips = calloc(n, sizeof(*svc->cluster_ips));
	if (!svc->cluster_ips)
		return no_memory(ctx);
	json_array_foreach(list, i, item)
	{
		snprintf(what, sizeof(what), "clusterIPs[%zu]", i);
		if (!check_string(ctx, item, what, ""))
			return false;
		if (!strcmp(json_string_value(item), "None")) {
			svc->headless = true;
			continue;
		}
		if (!*json_string_value(item))
			continue;
		if (!parse_ip(ctx, json_string_value(item), what, 0,
			      &svc->cluster_ips[svc->n_cluster_ips]))
			return false;
		svc->n_cluster_ips++;
	}
	if (svc->headless && svc->n_cluster_ips)
		return fail(ctx, "clusterIPs: \"None\" mixed with addresses");
	if (svc->n_cluster_ips == 2 && svc->cluster_ips[0].family == svc->cluster_ips[1].family)
		return fail(ctx, "clusterIPs: two addresses of the same family");
	return true;
}

/* targetPort is an int or a port name; 0 and "" mean unset (the port itself). */
static bool decode_target_port(struct decode_ctx *ctx, const json_t *item, const char *at,
			       struct service_port *p)
{
	json_t *v = member(item, "targetPort");
	char buf[SHOWN_MAX + 4];
	const char *name;
	bool ok = true;

	if (!v)
		return true;
	if (json_is_integer(v)) {
		if (json_integer_value(v) < 0 || json_integer_value(v) > 65535)
			return fail(ctx,
				    "%stargetPort: %" JSON_INTEGER_FORMAT
				    " is out of range 1..65535",
				    at, json_integer_value(v));
		p->target_port = json_integer_value(v);
		return true;
	}
	if (!json_is_string(v))
		return fail(ctx, "%stargetPort: expected an integer or a string, got %s", at,
			    json_kind(v));
	if (!check_string(ctx, v, at, "targetPort"))
		return false;
	name = json_string_value(v);
	if (!*name)
		return true;
	if (!valid_port_name(name))
		return fail(ctx, "%stargetPort: invalid port name \"%s\"", at, shown(name, buf));
	p->target_port_name = dup_string(ctx, name, &ok);
	return ok;
}

static bool decode_service_ports(struct decode_ctx *ctx, const json_t *spec, struct service *svc)
{
	json_t *ports, *item;
	const char *name;
	json_int_t value;
	bool present, ok = true;
	char at[40];
	size_t i;

	if (!get_array(ctx, spec, "", "ports", &ports))
		return false;
	if (!ports || !json_array_size(ports))
		return true;
	svc->ports = calloc(json_array_size(ports), sizeof(*svc->ports));
	if (!svc->ports)
		return no_memory(ctx);
	json_array_foreach(ports, i, item)
	{
		/* Counted first so that service_free() sees what is filled in. */
		struct service_port *p = &svc->ports[svc->n_ports++];

		snprintf(at, sizeof(at), "ports[%zu].", i);
		if (!check_object_element(ctx, item, at) ||
		    !get_string(ctx, item, at, "name", &name))
			return false;
		p->name = dup_string(ctx, name ? name : "", &ok);
		if (!ok || !get_protocol(ctx, item, at, &p->proto))
			return false;
		if (!get_int(ctx, item, at, "port", 1, 65535, &value, &present))
			return false;
		if (!present)
			return fail(ctx, "%sport: missing", at);
		p->port = value;
		if (!get_int(ctx, item, at, "nodePort", 0, 65535, &value, &present))
			return false;
		p->node_port = value;
		if (!decode_target_port(ctx, item, at, p))
			return false;
	}
	return true;
}

/* internalTrafficPolicy / externalTrafficPolicy: Cluster (default) or Local. */
static bool get_traffic_policy(struct decode_ctx *ctx, const json_t *spec, const char *key,
			       bool *local)
{
	char buf[SHOWN_MAX + 4];
	const char *s;

	if (!get_string(ctx, spec, "", key, &s))
		return false;
	*local = s && !strcmp(s, "Local");
	if (s && *s && !*local && strcmp(s, "Cluster"))
		return fail(ctx, "%s: unknown policy \"%s\"", key, shown(s, buf));
	return true;
}

static bool decode_affinity(struct decode_ctx *ctx, const json_t *spec, struct service *svc)
{
	char buf[SHOWN_MAX + 4];
	json_t *config, *client_ip;
	json_int_t timeout;
	const char *s;
	bool present;

	svc->affinity_timeout = DEFAULT_AFFINITY_TIMEOUT;
	if (!get_string(ctx, spec, "", "sessionAffinity", &s))
		return false;
	if (!s || !*s || !strcmp(s, "None"))
		return true;
	if (strcmp(s, "ClientIP"))
		return fail(ctx, "sessionAffinity: unknown value \"%s\"", shown(s, buf));
	svc->affinity_client_ip = true;
	if (!get_object(ctx, spec, "", "sessionAffinityConfig", &config) ||
	    !get_object(ctx, config, "sessionAffinityConfig.", "clientIP", &client_ip) ||
	    !get_int(ctx, client_ip, "sessionAffinityConfig.clientIP.", "timeoutSeconds", 1,
		     MAX_AFFINITY_TIMEOUT, &timeout, &present))
		return false;
	if (present)
		svc->affinity_timeout = timeout;
	return true;
}

/* loadBalancerSourceRanges: the API server rejects a Service with a malformed one; so do we. */
static bool decode_source_ranges(struct decode_ctx *ctx, struct service *svc)
{
	char buf[80];

	if (!svc->n_lb_source_ranges)
		return true;
	svc->lb_source_cidrs = calloc(svc->n_lb_source_ranges, sizeof(*svc->lb_source_cidrs));
	if (!svc->lb_source_cidrs)
		return no_memory(ctx);
	for (int i = 0; i < svc->n_lb_source_ranges; i++) {
		if (!cidr_parse(svc->lb_source_ranges[i], &svc->lb_source_cidrs[i]))
			return fail(ctx, "loadBalancerSourceRanges[%d]: invalid CIDR \"%s\"", i,
				    shown(svc->lb_source_ranges[i], buf));
		svc->n_lb_source_cidrs++;
	}
	return true;
}

static bool decode_service_spec(struct decode_ctx *ctx, const json_t *spec, struct service *svc)
{
	const char *distribution;
	json_int_t hc_port;
	bool present, ok = true;

	if (!decode_service_type(ctx, spec, svc) || !decode_cluster_ips(ctx, spec, svc) ||
	    !decode_service_ports(ctx, spec, svc) ||
	    !get_ip_list(ctx, spec, "", "externalIPs", 0, &svc->external_ips,
			 &svc->n_external_ips) ||
	    !get_traffic_policy(ctx, spec, "internalTrafficPolicy", &svc->internal_local) ||
	    !get_traffic_policy(ctx, spec, "externalTrafficPolicy", &svc->external_local) ||
	    !decode_affinity(ctx, spec, svc) ||
	    !get_int(ctx, spec, "", "healthCheckNodePort", 0, 65535, &hc_port, &present) ||
	    !get_string(ctx, spec, "", "trafficDistribution", &distribution) ||
	    !get_string_list(ctx, spec, "", "loadBalancerSourceRanges", &svc->lb_source_ranges,
			     &svc->n_lb_source_ranges))
		return false;
	svc->health_check_node_port = hc_port;
	if (!decode_source_ranges(ctx, svc))
		return false;
	if (distribution && *distribution)
		svc->traffic_distribution = dup_string(ctx, distribution, &ok);
	return ok;
}

/* status.loadBalancer.ingress[].ip; entries with only a hostname are not ours to use. */
static bool decode_lb_ingress(struct decode_ctx *ctx, const json_t *obj, struct service *svc)
{
	json_t *status, *lb, *ingress, *item;
	char at[64], what[80];
	const char *ip;
	size_t i;

	if (!get_object(ctx, obj, "", "status", &status) ||
	    !get_object(ctx, status, "status.", "loadBalancer", &lb) ||
	    !get_array(ctx, lb, "status.loadBalancer.", "ingress", &ingress))
		return false;
	if (!ingress || !json_array_size(ingress))
		return true;
	svc->lb_ingress_ips = calloc(json_array_size(ingress), sizeof(*svc->lb_ingress_ips));
	if (!svc->lb_ingress_ips)
		return no_memory(ctx);
	json_array_foreach(ingress, i, item)
	{
		snprintf(at, sizeof(at), "status.loadBalancer.ingress[%zu].", i);
		if (!check_object_element(ctx, item, at) || !get_string(ctx, item, at, "ip", &ip))
			return false;
		if (!ip || !*ip)
			continue;
		snprintf(what, sizeof(what), "%sip", at);
		if (!parse_ip(ctx, ip, what, 0, &svc->lb_ingress_ips[svc->n_lb_ingress_ips]))
			return false;
		svc->n_lb_ingress_ips++;
	}
	return true;
}

/*
 * The rate-limit annotations. A bad value does not reject the Service: it
 * is logged once, here, and the Service works without a limit.
 */
static bool decode_annotations(struct decode_ctx *ctx, const json_t *annotations,
			       struct service *svc)
{
	const char *rate, *burst;
	char why[160];
	bool ok = true;

	if (!get_string(ctx, annotations, "metadata.annotations.", "sluice.io/rate-limit", &rate) ||
	    !get_string(ctx, annotations, "metadata.annotations.", "sluice.io/rate-limit-burst",
			&burst))
		return false;
	svc->rate_limit = dup_string(ctx, rate, &ok);
	if (ok)
		svc->rate_limit_burst = dup_string(ctx, burst, &ok);
	if (ok && rate_limit_parse(rate, burst, &svc->rate, why, sizeof(why)))
		pr_warn("%s: Service %s/%s: %s; serving it without a rate limit", ctx->source,
			ctx->ns ? ctx->ns : "?", ctx->name ? ctx->name : "?", why);
	return ok;
}

/* Names the object in the log line and in out->rejected. */
static int reject(struct collected *c, const struct decode_ctx *ctx)
{
	struct manifest_rejected entry = { 0 };
	bool ok = true;

	if (ctx->nomem)
		return -ENOMEM;
	if (ctx->namespaced)
		pr_warn("%s: %s %s/%s: %s", ctx->source, ctx->kind, ctx->ns ? ctx->ns : "?",
			ctx->name ? ctx->name : "?", ctx->problem);
	else
		pr_warn("%s: %s %s: %s", ctx->source, ctx->kind, ctx->name ? ctx->name : "?",
			ctx->problem);

	entry.kind = ctx->kind ? strdup(ctx->kind) : NULL;
	entry.ns = ctx->ns ? strdup(ctx->ns) : NULL;
	entry.name = ctx->name ? strdup(ctx->name) : NULL;
	if ((ctx->kind && !entry.kind) || (ctx->ns && !entry.ns) || (ctx->name && !entry.name))
		ok = false;
	if (ok)
		ok = APPEND(c->objs.rejected, c->objs.n_rejected, c->cap_rejected, entry);
	if (!ok) {
		free(entry.kind);
		free(entry.ns);
		free(entry.name);
		return -ENOMEM;
	}
	return -EINVAL;
}

/* Fills the names every object carries; false (object failed) when out of memory. */
static bool copy_names(struct decode_ctx *ctx, char **ns, char **name, char **source)
{
	bool ok = true;

	if (ns)
		*ns = dup_string(ctx, ctx->ns, &ok);
	if (ok)
		*name = dup_string(ctx, ctx->name, &ok);
	if (ok)
		*source = dup_string(ctx, ctx->source, &ok);
	return ok;
}

static int decode_service(struct collected *c, const json_t *obj, const char *source)
{
	struct decode_ctx ctx = { .source = source, .kind = "Service", .namespaced = true };
	struct service *svc = calloc(1, sizeof(*svc));
	json_t *labels, *annotations, *spec;

	if (!svc)
		return -ENOMEM;
	if (decode_metadata(&ctx, obj, &labels, &annotations) &&
	    get_object(&ctx, obj, "", "spec", &spec) && decode_service_spec(&ctx, spec, svc) &&
	    decode_lb_ingress(&ctx, obj, svc) && decode_annotations(&ctx, annotations, svc))
		copy_names(&ctx, &svc->ns, &svc->name, &svc->source);
	if (ctx.failed) {
		service_free(svc);
		return reject(c, &ctx);
	}
	if (!APPEND(c->objs.services, c->objs.n_services, c->cap_services, svc)) {
		service_free(svc);
		return -ENOMEM;
	}
	return 0;
}

static bool decode_slice_ports(struct decode_ctx *ctx, const json_t *obj,
			       struct endpoint_slice *slice)
{
	json_t *ports, *item;
	const char *name;
	json_int_t value;
	bool present, ok = true;
	char at[40];
	size_t i;

	if (!get_array(ctx, obj, "", "ports", &ports))
		return false;
	if (!ports || !json_array_size(ports))
		return true;
	slice->ports = calloc(json_array_size(ports), sizeof(*slice->ports));
	if (!slice->ports)
		return no_memory(ctx);
	json_array_foreach(ports, i, item)
	{
		struct slice_port *p = &slice->ports[slice->n_ports++];

		snprintf(at, sizeof(at), "ports[%zu].", i);
		if (!check_object_element(ctx, item, at) ||
		    !get_string(ctx, item, at, "name", &name))
			return false;
		p->name = dup_string(ctx, name ? name : "", &ok);
		if (!ok || !get_protocol(ctx, item, at, &p->proto) ||
		    !get_int(ctx, item, at, "port", 0, 65535, &value, &present))
			return false;
		p->port = value;
	}
	return true;
}

static bool decode_endpoint(struct decode_ctx *ctx, const json_t *item, const char *at, int family,
			    struct endpoint *ep)
{
	json_t *conditions, *hints;
	const char *node_name, *zone;
	char hints_at[64];
	int ready, serving, terminating;
	bool ok = true;

	if (!check_object_element(ctx, item, at) ||
	    !get_ip_list(ctx, item, at, "addresses", family, &ep->addresses, &ep->n_addresses))
		return false;
	if (!get_object(ctx, item, at, "conditions", &conditions))
		return false;
	snprintf(hints_at, sizeof(hints_at), "%sconditions.", at);
	if (!get_bool(ctx, conditions, hints_at, "ready", &ready) ||
	    !get_bool(ctx, conditions, hints_at, "serving", &serving) ||
	    !get_bool(ctx, conditions, hints_at, "terminating", &terminating))
		return false;
	/* The API's defaults: unknown readiness counts as ready, serving follows ready. */
	ep->ready = ready != 0;
	ep->serving = serving < 0 ? ep->ready : serving;
	ep->terminating = terminating > 0;

	if (!get_string(ctx, item, at, "nodeName", &node_name) ||
	    !get_string(ctx, item, at, "zone", &zone))
		return false;
	if (node_name && *node_name)
		ep->node_name = dup_string(ctx, node_name, &ok);
	if (ok && zone && *zone)
		ep->zone = dup_string(ctx, zone, &ok);
	if (!ok || !get_object(ctx, item, at, "hints", &hints))
		return false;
	snprintf(hints_at, sizeof(hints_at), "%shints.", at);
	return get_hint_names(ctx, hints, hints_at, "forZones", &ep->hint_zones,
			      &ep->n_hint_zones) &&
	       get_hint_names(ctx, hints, hints_at, "forNodes", &ep->hint_nodes, &ep->n_hint_nodes);
}

static bool decode_slice_body(struct decode_ctx *ctx, const json_t *obj, const json_t *labels,
			      struct endpoint_slice *slice)
{
	char buf[SHOWN_MAX + 4], at[40];
	const char *type, *service_name;
	json_t *endpoints, *item;
	bool ok = true;
	size_t i;

	if (!get_string(ctx, labels, "metadata.labels.", "kubernetes.io/service-name",
			&service_name))
		return false;
	slice->service_name = dup_string(ctx, service_name, &ok);
	if (!ok || !get_string(ctx, obj, "", "addressType", &type))
		return false;
	if (!type)
		return fail(ctx, "missing addressType");
	if (!strcmp(type, "IPv4"))
		slice->address_family = AF_INET;
	else if (!strcmp(type, "IPv6"))
		slice->address_family = AF_INET6;
	else if (strcmp(type, "FQDN"))
		return fail(ctx, "unknown addressType \"%s\"", shown(type, buf));
	if (!decode_slice_ports(ctx, obj, slice))
		return false;
	/* FQDN slices carry names, not addresses: nothing to serve from them. */
	if (!slice->address_family)
		return true;
	if (!get_array(ctx, obj, "", "endpoints", &endpoints))
		return false;
	if (!endpoints || !json_array_size(endpoints))
		return true;
	slice->endpoints = calloc(json_array_size(endpoints), sizeof(*slice->endpoints));
	if (!slice->endpoints)
		return no_memory(ctx);
	json_array_foreach(endpoints, i, item)
	{
		snprintf(at, sizeof(at), "endpoints[%zu].", i);
		if (!decode_endpoint(ctx, item, at, slice->address_family,
				     &slice->endpoints[slice->n_endpoints++]))
			return false;
	}
	return true;
}

static int decode_slice(struct collected *c, const json_t *obj, const char *source)
{
	struct decode_ctx ctx = { .source = source, .kind = "EndpointSlice", .namespaced = true };
	struct endpoint_slice *slice = calloc(1, sizeof(*slice));
	json_t *labels, *annotations;

	if (!slice)
		return -ENOMEM;
	if (decode_metadata(&ctx, obj, &labels, &annotations) &&
	    decode_slice_body(&ctx, obj, labels, slice))
		copy_names(&ctx, &slice->ns, &slice->name, &slice->source);
	if (ctx.failed) {
		endpoint_slice_free(slice);
		return reject(c, &ctx);
	}
	if (!APPEND(c->objs.slices, c->objs.n_slices, c->cap_slices, slice)) {
		endpoint_slice_free(slice);
		return -ENOMEM;
	}
	return 0;
}

/* status.addresses: the InternalIP and ExternalIP entries; others are not addresses to serve. */
static bool decode_node_addresses(struct decode_ctx *ctx, const json_t *obj, struct node *node)
{
	json_t *status, *addresses, *item;
	const char *type, *address;
	char at[40];
	size_t i;

	if (!get_object(ctx, obj, "", "status", &status) ||
	    !get_array(ctx, status, "status.", "addresses", &addresses))
		return false;
	if (!addresses || !json_array_size(addresses))
		return true;
	node->addresses = calloc(json_array_size(addresses), sizeof(*node->addresses));
	if (!node->addresses)
		return no_memory(ctx);
	json_array_foreach(addresses, i, item)
	{
		snprintf(at, sizeof(at), "status.addresses[%zu].", i);
		if (!check_object_element(ctx, item, at) ||
		    !get_string(ctx, item, at, "type", &type) ||
		    !get_string(ctx, item, at, "address", &address))
			return false;
		if (!type || (strcmp(type, "InternalIP") && strcmp(type, "ExternalIP")) || !address)
			continue;
		if (!ip_addr_parse(address, &node->addresses[node->n_addresses])) {
			pr_debug("%s: Node %s: ignoring %s%s that is not an IP address",
				 ctx->source, ctx->name, at, type);
			continue;
		}
		node->n_addresses++;
	}
	return true;
}

static int decode_node(struct collected *c, const json_t *obj, const char *source)
{
	struct decode_ctx ctx = { .source = source, .kind = "Node" };
	struct node *node = calloc(1, sizeof(*node));
	json_t *labels, *annotations;
	const char *zone;
	bool ok = true;

	if (!node)
		return -ENOMEM;
	if (decode_metadata(&ctx, obj, &labels, &annotations) &&
	    get_string(&ctx, labels, "metadata.labels.", "topology.kubernetes.io/zone", &zone) &&
	    decode_node_addresses(&ctx, obj, node)) {
		if (zone && *zone)
			node->zone = dup_string(&ctx, zone, &ok);
		if (ok)
			copy_names(&ctx, NULL, &node->name, &node->source);
	}
	if (ctx.failed) {
		node_free(node);
		return reject(c, &ctx);
	}
	if (!APPEND(c->objs.nodes, c->objs.n_nodes, c->cap_nodes, node)) {
		node_free(node);
		return -ENOMEM;
	}
	return 0;
}

/* Something that is no object at all where one was expected (a document, a List item). */
static int reject_non_object(struct collected *c, const char *source, const char *what,
			     const json_t *v)
{
	struct manifest_rejected entry = { 0 };

	pr_warn("%s: %s is %s, not an object", source, what, json_kind(v));
	if (!APPEND(c->objs.rejected, c->objs.n_rejected, c->cap_rejected, entry))
		return -ENOMEM;
	return -EINVAL;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t len = strlen(s), suffix_len = strlen(suffix);

	return len >= suffix_len && !strcmp(s + len - suffix_len, suffix);
}

static int decode_tree(struct collected *c, const json_t *obj, const char *source,
		       const char *list_kind, const char *list_api_version, int depth);

/* kind: List (or ServiceList...): items of a typed list may leave out kind and apiVersion. */
static int decode_list(struct collected *c, const json_t *list, const char *source,
		       const char *kind, const char *api_version, int depth)
{
	json_t *items = member(list, "items"), *item;
	char *item_kind = NULL, what[64];
	int err = 0, rc;
	size_t i;

	if (depth >= MAX_LIST_DEPTH) {
		pr_warn("%s: %s nested deeper than %d lists, skipped", source, kind,
			MAX_LIST_DEPTH);
		return -EINVAL;
	}
	if (!items)
		return 0;
	if (!json_is_array(items)) {
		struct manifest_rejected entry = { 0 };

		pr_warn("%s: %s: items is %s, not an array", source, kind, json_kind(items));
		if (!APPEND(c->objs.rejected, c->objs.n_rejected, c->cap_rejected, entry))
			return -ENOMEM;
		return -EINVAL;
	}
	if (strcmp(kind, "List")) {
		item_kind = strndup(kind, strlen(kind) - strlen("List"));
		if (!item_kind)
			return -ENOMEM;
	}
	json_array_foreach(items, i, item)
	{
		if (!json_is_object(item)) {
			snprintf(what, sizeof(what), "%s item %zu", kind, i);
			rc = reject_non_object(c, source, what, item);
		} else {
			rc = decode_tree(c, item, source, item_kind, api_version, depth + 1);
		}
		if (rc == -ENOMEM) {
			err = rc;
			break;
		}
	}
	free(item_kind);
	return err;
}

/* One object or List; list_kind/list_api_version: what a typed List says its items are. */
static int decode_tree(struct collected *c, const json_t *obj, const char *source,
		       const char *list_kind, const char *list_api_version, int depth)
{
	const char *kind = json_string_value(json_object_get(obj, "kind"));
	const char *api_version = json_string_value(json_object_get(obj, "apiVersion"));

	if (!kind) {
		kind = list_kind;
		if (!api_version)
			api_version = list_api_version;
	}
	if (!kind) {
		pr_debug("%s: skipping an object without kind", source);
		return 0;
	}
	if (ends_with(kind, "List") && json_object_get(obj, "items"))
		return decode_list(c, obj, source, kind, api_version, depth);
	if (!api_version)
		api_version = "";
	if (!strcmp(kind, "Service") && !strcmp(api_version, "v1"))
		return decode_service(c, obj, source);
	if (!strcmp(kind, "EndpointSlice") && !strcmp(api_version, "discovery.k8s.io/v1"))
		return decode_slice(c, obj, source);
	if (!strcmp(kind, "Node") && !strcmp(api_version, "v1"))
		return decode_node(c, obj, source);
	pr_debug("%s: skipping %s %s", source, api_version, kind);
	return 0;
}

/* Moves everything collected to the end of out's arrays; out is unchanged on -ENOMEM. */
static int move_collected(struct collected *c, struct manifest_objects *out)
{
	struct manifest_objects *from = &c->objs;

#define RESERVE(field, count)                                                                  \
	do {                                                                                   \
		if (from->count) {                                                             \
			typeof(out->field) bigger_ = realloc(                                  \
				out->field, (out->count + from->count) * sizeof(*out->field)); \
			if (!bigger_)                                                          \
				return -ENOMEM;                                                \
			out->field = bigger_;                                                  \
		}                                                                              \
	} while (0)
#define MOVE(field, count)                                           \
	do {                                                         \
		if (from->count)                                     \
			memcpy(out->field + out->count, from->field, \
			       from->count * sizeof(*out->field));   \
		out->count += from->count;                           \
		from->count = 0;                                     \
	} while (0)

	RESERVE(services, n_services);
	RESERVE(slices, n_slices);
	RESERVE(nodes, n_nodes);
	RESERVE(rejected, n_rejected);
	MOVE(services, n_services);
	MOVE(slices, n_slices);
	MOVE(nodes, n_nodes);
	MOVE(rejected, n_rejected);
#undef RESERVE
#undef MOVE
	return 0;
}

/* Decodes into c, then hands the result to out (all or nothing). */
static int finish(struct collected *c, int err, struct manifest_objects *out)
{
	if (err != -ENOMEM) {
		int moved = move_collected(c, out);

		if (moved)
			err = moved;
	}
	manifest_objects_clear(&c->objs);
	return err;
}

int manifest_decode_object(json_t *obj, const char *source, struct manifest_objects *out)
{
	struct collected c = { 0 };
	int err;

	if (!source)
		source = "(unknown)";
	if (!json_is_object(obj))
		err = reject_non_object(&c, source, "the object", obj);
	else
		err = decode_tree(&c, obj, source, NULL, NULL, 0);
	return finish(&c, err, out);
}

/* Parses text into an array of documents; NULL after one log line when it does not parse. */
static json_t *parse_documents(const char *text, size_t len, const char *source, int *err)
{
	struct yaml_json_error yaml_err;
	json_error_t json_err;
	json_t *value, *docs;
	size_t i = 0;

	/* A UTF-8 byte order mark: libyaml skips it, jansson does not. */
	if (len >= 3 && !memcmp(text, "\xef\xbb\xbf", 3)) {
		text += 3;
		len -= 3;
	}
	while (i < len && text[i] && strchr(" \t\r\n", text[i]))
		i++;
	if (i < len && (text[i] == '{' || text[i] == '[')) {
		value = json_loadb(text, len, 0, &json_err);
		if (value) {
			docs = json_array();
			if (!docs || json_array_append_new(docs, value)) {
				json_decref(docs);
				*err = -ENOMEM;
				return NULL;
			}
			return docs;
		}
		/*
		 * jansson refuses numbers beyond 64 bits or a double; YAML reads
		 * the same JSON and leaves such a number to fail only its object.
		 */
		if (json_error_code(&json_err) == json_error_numeric_overflow) {
			docs = yaml_to_json(text, len, &yaml_err);
			if (docs)
				return docs;
		}
		pr_warn("%s:%d: invalid JSON: %s", source, json_err.line, json_err.text);
		*err = -EINVAL;
		return NULL;
	}
	docs = yaml_to_json(text, len, &yaml_err);
	if (!docs) {
		if (yaml_err.nomem) {
			*err = -ENOMEM;
		} else {
			pr_warn("%s:%d: invalid YAML: %s", source, yaml_err.line, yaml_err.text);
			*err = -EINVAL;
		}
	}
	return docs;
}

int manifest_decode(const char *text, size_t len, const char *source, struct manifest_objects *out)
{
	struct collected c = { 0 };
	json_t *docs, *doc;
	char what[48];
	int err = 0, rc;
	size_t i;

	if (!source)
		source = "(unknown)";
	if (!text)
		len = 0;
	docs = parse_documents(text ? text : "", len, source, &err);
	if (!docs)
		return err;
	json_array_foreach(docs, i, doc)
	{
		if (json_is_null(doc))
			continue;
		snprintf(what, sizeof(what), "document %zu", i + 1);
		if (json_is_array(doc)) {
			/* A bare JSON array of objects: read as a List's items. */
			json_t *list = json_pack("{s:s, s:O}", "kind", "List", "items", doc);

			rc = list ? decode_list(&c, list, source, "List", NULL, 0) : -ENOMEM;
			json_decref(list);
		} else if (!json_is_object(doc)) {
			rc = reject_non_object(&c, source, what, doc);
		} else {
			rc = decode_tree(&c, doc, source, NULL, NULL, 0);
		}
		if (rc == -ENOMEM) {
			err = rc;
			break;
		}
	}
	json_decref(docs);
	return finish(&c, err, out);
}

bool manifest_rejected_contains(const struct manifest_objects *objs, const char *kind,
				const char *ns, const char *name)
{
	for (size_t i = 0; i < objs->n_rejected; i++) {
		const struct manifest_rejected *r = &objs->rejected[i];

		if (r->kind && r->name && kind && name && !strcmp(r->kind, kind) &&
		    !strcmp(r->name, name) && !strcmp(r->ns ? r->ns : "", ns ? ns : ""))
			return true;
	}
	return false;
}

void manifest_objects_clear(struct manifest_objects *objs)
{
	for (size_t i = 0; i < objs->n_services; i++)
		service_free(objs->services[i]);
	for (size_t i = 0; i < objs->n_slices; i++)
		endpoint_slice_free(objs->slices[i]);
	for (size_t i = 0; i < objs->n_nodes; i++)
		node_free(objs->nodes[i]);
	for (size_t i = 0; i < objs->n_rejected; i++) {
		free(objs->rejected[i].kind);
		free(objs->rejected[i].ns);
		free(objs->rejected[i].name);
	}
	free(objs->services);
	free(objs->slices);
	free(objs->nodes);
	free(objs->rejected);
	memset(objs, 0, sizeof(*objs));
}
