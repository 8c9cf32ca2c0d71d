// SPDX-License-Identifier: Apache-2.0
/*
 * The words of sluicectl explain. Each published code (status_json.c) has
 * one sentence here, saying the rule of design.md section 4 that applied.
 */
#include <string.h>

#include "ctl/ctl.h"
#include "ctl/explain_text.h"
#include "ctl/table.h"

/* "a, b" from a JSON array of strings. */
static const char *join(json_t *arr, char *buf, size_t len)
{
	size_t i, at = 0;
	json_t *v;

	buf[0] = 0;
	json_array_foreach(arr, i, v) {
		if (at < len)
			at += snprintf(buf + at, len - at, "%s%s", i ? ", " : "",
				       json_string_value(v) ?: "");
	}
	return buf;
}

const char *explain_topology_text(json_t *fe, const char *node, const char *zone, char *buf,
				  size_t len)
{
	json_t *t = json_object_get(fe, "topology");
	const char *why = js(t, "why"), *hint = js(t, "hint");
	bool zones = !strcmp(hint, "forZones");

	if (*js(t, "ignored"))
		snprintf(buf, len, "not applied: traffic policy Local ignores topology hints");
	else if (!strcmp(why, "node-hints"))
		snprintf(buf, len,
			 "PreferSameNode: every ready endpoint has a forNodes hint and one names "
			 "this node (%s)",
			 node);
	else if (!strcmp(why, "zone-hints"))
		snprintf(buf, len,
			 "PreferSameZone: every ready endpoint has a forZones hint and one names "
			 "this node's zone (%s)",
			 zone);
	else if (!strcmp(why, "no-ready-endpoint"))
		snprintf(buf, len, "none: no endpoint is ready, so no hint applies");
	else if (!strcmp(why, "no-hints"))
		snprintf(buf, len, "none: no ready endpoint has a topology hint");
	else if (!strcmp(why, "hint-missing"))
		snprintf(buf, len,
			 "none: ready endpoint %s has no %s hint, so the hints of every endpoint "
			 "are ignored",
			 js(t, "endpoint"), hint);
	else if (!strcmp(why, "not-hinted-here"))
		snprintf(buf, len, "none: every ready endpoint has a %s hint, but none names %s %s",
			 hint, zones ? "this node's zone" : "this node", zones ? zone : node);
	else if (!strcmp(why, "node-has-no-zone"))
		snprintf(buf, len,
			 "none: the endpoints have forZones hints but node %s has no "
			 "topology.kubernetes.io/zone label",
			 node);
	else
		snprintf(buf, len, "%s", *why ? why : "unknown");
	return buf;
}

const char *explain_endpoint_text(json_t *fe, json_t *ep, const char *node, const char *zone,
				  char *buf, size_t len)
{
	const char *why = js(ep, "why"), *choice = js(fe, "choice");
	bool local = !strcmp(js(fe, "policy"), "Local");
	char hints[256];

	if (!strcmp(why, "used")) {
		if (!strcmp(choice, "terminating") || !strcmp(choice, "local-terminating"))
			snprintf(buf, len,
				 "serving while terminating: nothing %sis ready (fallback)",
				 local ? "on this node " : "");
		else if (!strcmp(choice, "zone"))
			snprintf(buf, len, "ready, hinted for this node's zone %s", zone);
		else if (!strcmp(choice, "node"))
			snprintf(buf, len, "ready, hinted for this node");
		else if (local)
			snprintf(buf, len, "ready, on this node");
		else
			snprintf(buf, len, "ready");
	} else if (!strcmp(why, "not-serving")) {
		snprintf(buf, len,
			 jb(ep, "terminating") ? "terminating and no longer serving" : "not ready");
	} else if (!strcmp(why, "duplicate")) {
		snprintf(buf, len, "the same address and port in another slice counts instead");
	} else if (!strcmp(why, "terminating")) {
		snprintf(buf, len, "serving while terminating: used only when nothing %sis ready",
			 local ? "on this node " : "");
	} else if (!strcmp(why, "other-zone")) {
		snprintf(buf, len, "hinted for zone %s, not this node's zone %s",
			 join(json_object_get(ep, "forZones"), hints, sizeof(hints)), zone);
	} else if (!strcmp(why, "other-node")) {
		snprintf(buf, len, "hinted for node %s, not this node",
			 join(json_object_get(ep, "forNodes"), hints, sizeof(hints)));
	} else if (!strcmp(why, "not-local")) {
		snprintf(buf, len, "on %s%s: traffic policy Local takes this node's endpoints only",
			 *js(ep, "node") ? "node " : "another node", js(ep, "node"));
	} else {
		snprintf(buf, len, "%s", why);
	}
	return buf;
}

static const char *conditions_text(json_t *ep)
{
	if (jb(ep, "ready"))
		return jb(ep, "terminating") ? "ready,terminating" : "ready";
	if (jb(ep, "serving"))
		return jb(ep, "terminating") ? "serving,terminating" : "serving";
	return jb(ep, "terminating") ? "terminating" : "not-ready";
}

static void frontend_head(FILE *out, json_t *fe)
{
	const char *action = js(fe, "action"), *addr = js(fe, "address");
	size_t n_used = json_array_size(json_object_get(fe, "backends"));
	size_t n_eps = json_array_size(json_object_get(fe, "endpoints"));
	bool v6 = strchr(addr, ':') != NULL;

	fprintf(out, "\nFrontend %s%s%s:%lld/%s (%s%s%s): ", v6 ? "[" : "",
		!strcmp(js(fe, "kind"), "NodePort") ? (v6 ? "::" : "*") : addr, v6 ? "]" : "",
		ji(fe, "port"), js(fe, "protocol"), js(fe, "kind"),
		*js(fe, "portName") ? ", port " : "", js(fe, "portName"));
	if (!strcmp(action, "serve"))
		fprintf(out, "serves %zu of %zu endpoints\n", n_used, n_eps);
	else if (!strcmp(action, "drop"))
		fprintf(out,
			"drops new connections: traffic policy Local and usable endpoints only on "
			"other nodes\n");
	else
		fprintf(out, "refuses new connections (connection refused): no usable endpoint\n");
}

static void frontend_policy(FILE *out, json_t *fe)
{
	bool local = !strcmp(js(fe, "policy"), "Local");

	fprintf(out, "  Traffic policy:  %s %s: %s%s\n", js(fe, "policyField"), js(fe, "policy"),
		local ? "this node's endpoints only" : "endpoints on every node",
		jb(fe, "preserveSource") ? "; the client's address is kept (no SNAT)" : "");
}

/* External frontends: SNAT through this node, or direct server return (Documentation/dsr.md). */
static void frontend_forwarding(FILE *out, json_t *svc, json_t *fe, const struct explain_context *x)
{
	const char *mode = js(fe, "forwardingMode"), *from, *key;
	json_t *nodes = json_object_get(fe, "dsrNodes"), *node;
	size_t direct = 0;

	if (!*mode)
		return;
	from = *js(svc, "forwardingModeAnnotation") ? "sluice.io/forwarding-mode" :
						      "--forwarding-mode";
	if (strcmp(mode, "dsr")) {
		fprintf(out, "  Forwarding:      snat (%s): replies return through this node\n",
			from);
		return;
	}
	json_object_foreach(nodes, key, node)
		direct += json_is_string(node);
	fprintf(out, "  Forwarding:      dsr (%s): ", from);
	if (x->agent_datapath && strcmp(x->agent_datapath, "bpf")) {
		fprintf(out, "not supported by the %s datapath: SNAT through this node\n",
			x->agent_datapath);
		return;
	}
	if (strchr(js(fe, "address"), ':')) {
		fprintf(out, "IPv4 only: this IPv6 frontend uses SNAT through this node\n");
		return;
	}
	fprintf(out,
		"%zu of %zu backends are on other nodes of known address: the client's "
		"packets reach them encapsulated, they reply to it directly; the others "
		"use SNAT\n",
		direct, json_object_size(nodes));
	json_object_foreach(nodes, key, node) {
		if (json_is_string(node))
			fprintf(out, "                   %s on node %s (IPv4 in IPv4)\n", key,
				json_string_value(node));
	}
}

static void frontend_fallback(FILE *out, json_t *fe)
{
	const char *choice = js(fe, "choice");
	bool local = !strcmp(js(fe, "policy"), "Local");

	if (jb(fe, "fallback"))
		fprintf(out,
			"  Terminating:     fallback in use: no endpoint %sis ready, so "
			"serving-and-terminating ones serve\n",
			local ? "on this node " : "");
	else if (!strcmp(choice, "none"))
		fprintf(out, "  Terminating:     no fallback: no endpoint %sis serving either\n",
			local ? "on this node " : "");
	else
		fprintf(out, "  Terminating:     fallback not needed: ready endpoints serve\n");
}

static void frontend_endpoints(FILE *out, json_t *fe, const char *node, const char *zone)
{
	static const char *const head[] = { "ENDPOINT", "NODE",	  "ZONE", "CONDITIONS",
					    "HINTS",	"IN USE", "WHY" };
	json_t *eps = json_object_get(fe, "endpoints"), *ep;
	struct table t;
	size_t i;

	if (!json_array_size(eps)) {
		fprintf(out, "  Endpoints:       none for this port in this address family\n");
		return;
	}
	table_init(&t, 7, head);
	json_array_foreach(eps, i, ep) {
		char addr[80], hints[300], zones[128], nodes[128], why[300];
		const char *a = js(ep, "address");
		const char *row[7];

		snprintf(addr, sizeof(addr), strchr(a, ':') ? "[%s]:%lld" : "%s:%lld", a,
			 ji(ep, "port"));
		join(json_object_get(ep, "forZones"), zones, sizeof(zones));
		join(json_object_get(ep, "forNodes"), nodes, sizeof(nodes));
		snprintf(hints, sizeof(hints), "%s%s%s%s%s", *zones ? "zone:" : "", zones,
			 *zones && *nodes ? " " : "", *nodes ? "node:" : "", nodes);
		row[0] = addr;
		row[1] = *js(ep, "node") ? js(ep, "node") : "-";
		row[2] = *js(ep, "zone") ? js(ep, "zone") : "-";
		row[3] = conditions_text(ep);
		row[4] = *hints ? hints : "-";
		row[5] = !strcmp(js(ep, "why"), "used") ? "yes" : "no";
		row[6] = explain_endpoint_text(fe, ep, node, zone, why, sizeof(why));
		table_add(&t, row);
	}
	table_print(&t, out, "  ");
	table_clear(&t);
}

static void rate_line(FILE *out, json_t *svc, const struct explain_context *x)
{
	json_t *rl = json_object_get(svc, "rateLimit");
	const struct flow_counters *c = x->counters;

	fprintf(out, "Rate limit:        ");
	if (rl)
		fprintf(out, "%s new flows, burst %lld (sluice.io/rate-limit)", js(rl, "limit"),
			ji(rl, "burst"));
	else if (*js(svc, "rateLimitRejected"))
		fprintf(out, "none: the annotation \"%s\" was rejected (see the agent's log)",
			js(svc, "rateLimitRejected"));
	else
		fprintf(out, "none");
	if (c)
		fprintf(out, "; kernel counters: %llu admitted, %llu rate-limited\n",
			(unsigned long long)c->flows[FLOW_ADMITTED],
			(unsigned long long)c->flows[FLOW_RATE_LIMITED]);
	else
		fprintf(out, "; no kernel counters for it%s\n",
			x->in_kernel ? "" : " (no datapath found in the kernel)");
	for (int o = FLOW_NO_ENDPOINTS; c && o < FLOW_OUTCOMES; o++) {
		if (x->have & (1u << o))
			fprintf(out, "                   %llu refused: %s\n",
				(unsigned long long)c->flows[o], flow_outcome_name(o));
	}
}

/* sluice.io/lb-algorithm: what picks a new flow's backend. */
static void lb_line(FILE *out, json_t *svc)
{
	if (!*js(svc, "lbAlgorithm"))
		return;
	fprintf(out, "Load balancing:    %s (%s)", js(svc, "lbAlgorithm"),
		js(svc, "lbAlgorithmFrom"));
	if (*js(svc, "lbAlgorithmRejected"))
		fprintf(out, "; the annotation \"%s\" was rejected (see the agent's log)",
			js(svc, "lbAlgorithmRejected"));
	if (!strcmp(js(svc, "lbAlgorithm"), "maglev"))
		fprintf(out, "; a new flow from outside takes the backend its hash names in the "
			     "Maglev table (every node agrees)\n");
	else
		fprintf(out, "; a new flow picks a backend at random\n");
}

static void datapath_line(FILE *out, const struct explain_context *x)
{
	fprintf(out, "Datapath:          %s", x->agent_datapath ? x->agent_datapath : "unknown");
	if (x->fallback && *x->fallback)
		fprintf(out, " (--datapath=%s fell back: %s)", x->requested ? x->requested : "",
			x->fallback);
	else if (x->requested && *x->requested)
		fprintf(out, " (--datapath=%s)", x->requested);
	if (!x->in_kernel)
		fprintf(out, "; none found in the kernel\n");
	else if (x->agent_datapath && strcmp(x->in_kernel, x->agent_datapath))
		fprintf(out, "; but %s state is in the kernel\n", x->in_kernel);
	else
		fprintf(out, "; in the kernel\n");
}

void explain_render(FILE *out, json_t *svc, const struct explain_context *x)
{
	const char *node = js(svc, "node"), *zone = js(svc, "zone");
	json_t *fes = json_object_get(svc, "frontends"), *fe,
	       *ips = json_object_get(svc, "clusterIPs");
	char buf[512], ipl[256];
	size_t i;

	fprintf(out, "Service:           %s (%s%s%s)\n", js(svc, "service"),
		*js(svc, "type") ? js(svc, "type") : "gone", json_array_size(ips) ? " " : "",
		join(ips, ipl, sizeof(ipl)));
	fprintf(out, "Node:              %s, %s%s\n", node, *zone ? "zone " : "no zone label",
		zone);
	datapath_line(out, x);
	if (!strcmp(js(svc, "sessionAffinity"), "ClientIP"))
		fprintf(out,
			"Session affinity:  ClientIP: one client address keeps its backend until "
			"%llds idle\n",
			ji(svc, "affinityTimeoutSeconds"));
	else
		fprintf(out, "Session affinity:  None\n");
	if (*js(svc, "trafficDistribution"))
		fprintf(out, "Distribution:      trafficDistribution %s\n",
			js(svc, "trafficDistribution"));
	rate_line(out, svc, x);
	lb_line(out, svc);
	fprintf(out, "Published:         %s by the agent%s\n",
		ctl_time_text(json_number_value(json_object_get(svc, "published")), x->now, buf,
			      sizeof(buf)),
		x->agent_running ? "" : " (not running now: this may be out of date)");
	if (*js(svc, "noFrontends"))
		fprintf(out, "\nNo frontends: %s\n", js(svc, "noFrontends"));
	json_array_foreach(fes, i, fe) {
		frontend_head(out, fe);
		frontend_policy(out, fe);
		frontend_forwarding(out, svc, fe, x);
		if (json_object_get(fe, "topology"))
			fprintf(out, "  Topology:        %s\n",
				explain_topology_text(fe, node, zone, buf, sizeof(buf)));
		frontend_fallback(out, fe);
		if (json_array_size(json_object_get(fe, "sourceRanges")))
			fprintf(out, "  Source ranges:   %s (loadBalancerSourceRanges)\n",
				join(json_object_get(fe, "sourceRanges"), buf, sizeof(buf)));
		if (jb(fe, "stale"))
			fprintf(out,
				"  Note:            its inputs changed after this apply; the next one "
				"follows within 100 ms\n");
		frontend_endpoints(out, fe, node, zone);
	}
}
