// SPDX-License-Identifier: Apache-2.0
/*
 * The Service decoder: type, cluster IPs, ports, external IPs, traffic
 * policies, session affinity, health check port, load balancer ranges and
 * ingress, and the rate-limit annotations.
 */
#include <stdio.h>
#include <string.h>

#include "core/lb_algorithm.h"
#include "core/ratelimit.h"
#include "lib/log.h"
#include "lib/intern.h"
#include "lib/xalloc.h"
#include "source/decode.h"

#define DEFAULT_AFFINITY_TIMEOUT 10800
#define MAX_AFFINITY_TIMEOUT 86400

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

static bool decode_service_type(struct decode_ctx *ctx, const json_t *spec, struct service *svc)
{
	char buf[SHOWN_MAX + 4];
	const char *type;

	if (!decode_get_string(ctx, spec, "", "type", &type))
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
		return decode_fail(ctx, "unknown type \"%s\"", decode_shown(type, buf));
	return true;
}

/* clusterIPs (dual-stack) wins over clusterIP; "None" is headless, "" none at all. */
static bool decode_cluster_ips(struct decode_ctx *ctx, const json_t *spec, struct service *svc)
{
	const char *single;
	json_t *list, *item;
	char what[40];
	size_t i, n;

	if (!decode_get_string(ctx, spec, "", "clusterIP", &single) ||
	    !decode_get_array(ctx, spec, "", "clusterIPs", &list))
		return false;
	n = list ? json_array_size(list) : 0;
	if (!n) {
		if (!single || !*single)
			return true;
		if (!strcmp(single, "None")) {
			svc->headless = true;
			return true;
		}
		svc->cluster_ips = xcalloc(1, sizeof(*svc->cluster_ips));
		if (!decode_parse_ip(ctx, single, "clusterIP", 0, &svc->cluster_ips[0]))
			return false;
		svc->n_cluster_ips = 1;
		return true;
	}
	if (n > 2)
		return decode_fail(ctx, "clusterIPs: %zu addresses, at most 2 (one per family)", n);
	svc->cluster_ips = xcalloc(n, sizeof(*svc->cluster_ips));
	json_array_foreach(list, i, item) {
		snprintf(what, sizeof(what), "clusterIPs[%zu]", i);
		if (!decode_check_string(ctx, item, what, ""))
			return false;
		if (!strcmp(json_string_value(item), "None")) {
			svc->headless = true;
			continue;
		}
		if (!*json_string_value(item))
			continue;
		if (!decode_parse_ip(ctx, json_string_value(item), what, 0,
				     &svc->cluster_ips[svc->n_cluster_ips]))
			return false;
		svc->n_cluster_ips++;
	}
	if (svc->headless && svc->n_cluster_ips)
		return decode_fail(ctx, "clusterIPs: \"None\" mixed with addresses");
	if (svc->n_cluster_ips == 2 && svc->cluster_ips[0].family == svc->cluster_ips[1].family)
		return decode_fail(ctx, "clusterIPs: two addresses of the same family");
	return true;
}

/* targetPort is an int or a port name; 0 and "" mean unset (the port itself). */
static bool decode_target_port(struct decode_ctx *ctx, const json_t *item, const char *at,
			       struct service_port *p)
{
	json_t *v = decode_member(item, "targetPort");
	char buf[SHOWN_MAX + 4];
	const char *name;

	if (!v)
		return true;
	if (json_is_integer(v)) {
		if (json_integer_value(v) < 0 || json_integer_value(v) > 65535)
			return decode_fail(ctx,
					   "%stargetPort: %" JSON_INTEGER_FORMAT
					   " is out of range 1..65535",
					   at, json_integer_value(v));
		p->target_port = json_integer_value(v);
		return true;
	}
	if (!json_is_string(v))
		return decode_fail(ctx, "%stargetPort: expected an integer or a string, got %s", at,
				   decode_json_kind(v));
	if (!decode_check_string(ctx, v, at, "targetPort"))
		return false;
	name = json_string_value(v);
	if (!*name)
		return true;
	if (!valid_port_name(name))
		return decode_fail(ctx, "%stargetPort: invalid port name \"%s\"", at,
				   decode_shown(name, buf));
	p->target_port_name = intern_get(name);
	return true;
}

static bool decode_service_ports(struct decode_ctx *ctx, const json_t *spec, struct service *svc)
{
	json_t *ports, *item;
	const char *name;
	json_int_t value;
	bool present;
	char at[40];
	size_t i;

	if (!decode_get_array(ctx, spec, "", "ports", &ports))
		return false;
	if (!ports || !json_array_size(ports))
		return true;
	svc->ports = xcalloc(json_array_size(ports), sizeof(*svc->ports));
	json_array_foreach(ports, i, item) {
		/* Counted first so that service_free() sees what is filled in. */
		struct service_port *p = &svc->ports[svc->n_ports++];

		snprintf(at, sizeof(at), "ports[%zu].", i);
		if (!decode_check_element(ctx, item, at) ||
		    !decode_get_string(ctx, item, at, "name", &name))
			return false;
		p->name = intern_get(name ? name : "");
		if (!decode_get_protocol(ctx, item, at, &p->proto))
			return false;
		if (!decode_get_int(ctx, item, at, "port", 1, 65535, &value, &present))
			return false;
		if (!present)
			return decode_fail(ctx, "%sport: missing", at);
		p->port = value;
		if (!decode_get_int(ctx, item, at, "nodePort", 0, 65535, &value, &present))
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

	if (!decode_get_string(ctx, spec, "", key, &s))
		return false;
	*local = s && !strcmp(s, "Local");
	if (s && *s && !*local && strcmp(s, "Cluster"))
		return decode_fail(ctx, "%s: unknown policy \"%s\"", key, decode_shown(s, buf));
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
	if (!decode_get_string(ctx, spec, "", "sessionAffinity", &s))
		return false;
	if (!s || !*s || !strcmp(s, "None"))
		return true;
	if (strcmp(s, "ClientIP"))
		return decode_fail(ctx, "sessionAffinity: unknown value \"%s\"",
				   decode_shown(s, buf));
	svc->affinity_client_ip = true;
	if (!decode_get_object(ctx, spec, "", "sessionAffinityConfig", &config) ||
	    !decode_get_object(ctx, config, "sessionAffinityConfig.", "clientIP", &client_ip) ||
	    !decode_get_int(ctx, client_ip, "sessionAffinityConfig.clientIP.", "timeoutSeconds", 1,
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
	svc->lb_source_cidrs = xcalloc(svc->n_lb_source_ranges, sizeof(*svc->lb_source_cidrs));
	for (int i = 0; i < svc->n_lb_source_ranges; i++) {
		if (!cidr_parse(svc->lb_source_ranges[i], &svc->lb_source_cidrs[i]))
			return decode_fail(ctx, "loadBalancerSourceRanges[%d]: invalid CIDR \"%s\"",
					   i, decode_shown(svc->lb_source_ranges[i], buf));
		svc->n_lb_source_cidrs++;
	}
	return true;
}

static bool decode_service_spec(struct decode_ctx *ctx, const json_t *spec, struct service *svc)
{
	const char *distribution;
	json_int_t hc_port;
	bool present;

	if (!decode_service_type(ctx, spec, svc) || !decode_cluster_ips(ctx, spec, svc) ||
	    !decode_service_ports(ctx, spec, svc) ||
	    !decode_get_ip_list(ctx, spec, "", "externalIPs", 0, &svc->external_ips,
				&svc->n_external_ips) ||
	    !get_traffic_policy(ctx, spec, "internalTrafficPolicy", &svc->internal_local) ||
	    !get_traffic_policy(ctx, spec, "externalTrafficPolicy", &svc->external_local) ||
	    !decode_affinity(ctx, spec, svc) ||
	    !decode_get_int(ctx, spec, "", "healthCheckNodePort", 0, 65535, &hc_port, &present) ||
	    !decode_get_string(ctx, spec, "", "trafficDistribution", &distribution) ||
	    !decode_get_string_list(ctx, spec, "", "loadBalancerSourceRanges",
				    &svc->lb_source_ranges, &svc->n_lb_source_ranges))
		return false;
	svc->health_check_node_port = hc_port;
	if (!decode_source_ranges(ctx, svc))
		return false;
	if (distribution && *distribution)
		svc->traffic_distribution = intern_get(distribution);
	return true;
}

/*
 * status.loadBalancer.ingress[].ip; entries with only a hostname are not
 * ours to use, nor those with ipMode Proxy: that load balancer proxies the
 * traffic to the nodes, so its address is not captured here (kube-proxy).
 */
static bool decode_lb_ingress(struct decode_ctx *ctx, const json_t *obj, struct service *svc)
{
	json_t *status, *lb, *ingress, *item;
	char at[64], what[80], buf[SHOWN_MAX + 4];
	const char *ip, *mode;
	size_t i;

	if (!decode_get_object(ctx, obj, "", "status", &status) ||
	    !decode_get_object(ctx, status, "status.", "loadBalancer", &lb) ||
	    !decode_get_array(ctx, lb, "status.loadBalancer.", "ingress", &ingress))
		return false;
	if (!ingress || !json_array_size(ingress))
		return true;
	svc->lb_ingress_ips = xcalloc(json_array_size(ingress), sizeof(*svc->lb_ingress_ips));
	json_array_foreach(ingress, i, item) {
		snprintf(at, sizeof(at), "status.loadBalancer.ingress[%zu].", i);
		if (!decode_check_element(ctx, item, at) ||
		    !decode_get_string(ctx, item, at, "ip", &ip) ||
		    !decode_get_string(ctx, item, at, "ipMode", &mode))
			return false;
		/* The API server accepts these two only, and only with an ip. */
		if (mode && strcmp(mode, "VIP") && strcmp(mode, "Proxy"))
			return decode_fail(ctx, "%sipMode: unknown value \"%s\"", at,
					   decode_shown(mode, buf));
		if (!ip || !*ip || (mode && !strcmp(mode, "Proxy")))
			continue;
		snprintf(what, sizeof(what), "%sip", at);
		if (!decode_parse_ip(ctx, ip, what, 0, &svc->lb_ingress_ips[svc->n_lb_ingress_ips]))
			return false;
		svc->n_lb_ingress_ips++;
	}
	return true;
}

/*
 * The rate-limit, forwarding-mode and lb-algorithm annotations. A bad value
 * does not reject the Service: it is logged once, here, and the Service
 * works without a limit, with the default forwarding mode, or with the
 * default algorithm (--lb-algorithm).
 */
static bool decode_annotations(struct decode_ctx *ctx, const json_t *annotations,
			       struct service *svc)
{
	const char *rate, *burst, *mode, *algo;
	char why[160], shown[SHOWN_MAX + 4];

	if (!decode_get_string(ctx, annotations, "metadata.annotations.", "sluice.io/rate-limit",
			       &rate) ||
	    !decode_get_string(ctx, annotations, "metadata.annotations.",
			       "sluice.io/rate-limit-burst", &burst) ||
	    !decode_get_string(ctx, annotations, "metadata.annotations.",
			       "sluice.io/forwarding-mode", &mode))
		return false;
	if (mode && !strcmp(mode, "snat"))
		svc->forwarding = FORWARDING_SNAT;
	else if (mode && !strcmp(mode, "dsr"))
		svc->forwarding = FORWARDING_DSR;
	else if (mode)
		pr_warn("%s: Service %s/%s: sluice.io/forwarding-mode \"%s\" is not snat or dsr; "
			"using the default (--forwarding-mode)",
			ctx->source, ctx->ns ? ctx->ns : "?", ctx->name ? ctx->name : "?", mode);
	svc->rate_limit = decode_strdup(rate);
	svc->rate_limit_burst = decode_strdup(burst);
	if (rate_limit_parse(rate, burst, &svc->rate, why, sizeof(why)))
		pr_warn("%s: Service %s/%s: %s; serving it without a rate limit", ctx->source,
			ctx->ns ? ctx->ns : "?", ctx->name ? ctx->name : "?", why);
	if (!decode_get_string(ctx, annotations, "metadata.annotations.", "sluice.io/lb-algorithm",
			       &algo))
		return false;
	if (algo && lb_algorithm_parse(algo, &svc->lb_algorithm)) {
		svc->lb_algorithm = LB_ALGO_DEFAULT;
		svc->lb_algorithm_rejected = decode_strdup(algo);
		pr_warn("%s: Service %s/%s: sluice.io/lb-algorithm: unknown value \"%s\" (random or maglev); using the default, %s",
			ctx->source, ctx->ns ? ctx->ns : "?", ctx->name ? ctx->name : "?",
			decode_shown(algo, shown), lb_algorithm_name(lb_algorithm_default()));
	}
	return true;
}

struct service *decode_service(const json_t *obj, const char *source, struct decode_ctx *ctx)
{
	struct service *svc = xcalloc(1, sizeof(*svc));
	json_t *labels, *annotations, *spec;
	const char *ignored_by;

	*ctx = (struct decode_ctx){ .source = source,
				    .kind = "Service",
				    .namespaced = true,
				    .name_rule = DECODE_NAME_DNS1035_LABEL };
	if (!decode_metadata(ctx, obj, &labels, &annotations))
		goto out;
	ignored_by = decode_ignored_by(labels);
	if (ignored_by) {
		/* Not ours to serve, nor to judge: the rest is not even read. */
		pr_debug("%s: Service %s/%s: labelled %s, ignored as kube-proxy does", source,
			 ctx->ns, ctx->name, ignored_by);
		svc->ignored = true;
		decode_copy_names(ctx, &svc->ns, &svc->name, &svc->source);
		return svc;
	}
	if (decode_get_object(ctx, obj, "", "spec", &spec) && decode_service_spec(ctx, spec, svc) &&
	    decode_lb_ingress(ctx, obj, svc) && decode_annotations(ctx, annotations, svc))
		decode_copy_names(ctx, &svc->ns, &svc->name, &svc->source);
out:
	if (ctx->failed) {
		service_free(svc);
		return NULL;
	}
	return svc;
}
