// SPDX-License-Identifier: Apache-2.0
/*
 * /metrics (--metrics-addr): collects the agent's values (sync timings,
 * changes, healthz answers) and reads the kernel's (flow counters, table
 * occupancy) at each scrape, through the datapath's ops. The text format
 * is metrics_text.c's. libmicrohttpd runs in the main loop (metrics.h).
 */
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/engine.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "serve/listen.h"
#include "serve/metrics.h"
#include "serve/metrics_text.h"

struct metrics {
	struct metrics_sources src;
	struct MHD_Daemon *daemon;
	int epoll_fd;
	struct prom_histogram sync_all, sync_full, sync_partial, programming;
	double last_sync, last_queued;
};

struct metrics *metrics_new(const struct metrics_sources *src)
{
	struct metrics *m = xcalloc(1, sizeof(*m));

	m->src = *src;
	m->epoll_fd = -1;
	prom_histogram_init(&m->sync_all, prom_sync_buckets, PROM_SYNC_BUCKETS);
	prom_histogram_init(&m->sync_full, prom_sync_buckets, PROM_SYNC_BUCKETS);
	prom_histogram_init(&m->sync_partial, prom_sync_buckets, PROM_SYNC_BUCKETS);
	prom_histogram_init(&m->programming, prom_programming_buckets, PROM_PROGRAMMING_BUCKETS);
	return m;
}

void metrics_observe_sync(struct metrics *m, bool full, double seconds, double now)
{
	if (!m)
		return;
	prom_histogram_observe(&m->sync_all, seconds);
	prom_histogram_observe(full ? &m->sync_full : &m->sync_partial, seconds);
	m->last_sync = now;
}

void metrics_queued(struct metrics *m, double now)
{
	if (m)
		m->last_queued = now;
}

void metrics_observe_programming(struct metrics *m, double seconds)
{
	/* A trigger time ahead of this node's clock (skew) is no negative latency. */
	if (m)
		prom_histogram_observe(&m->programming, seconds < 0 ? 0 : seconds);
}

static void gauge(struct prom_buf *b, const char *name, const char *help, double v)
{
	prom_family(b, name, "gauge", help);
	prom_sample(b, name, NULL, 0, v);
}

/* kube-proxy's gauge of Services with a Local policy and no local endpoint, per policy. */
static void no_local_endpoints(struct prom_buf *b, const struct engine *eng)
{
	static const char *const name = "kubeproxy_sync_proxy_rules_no_local_endpoints_total";
	size_t internal = 0, external = 0;
	struct strmap_iter it;

	for (struct strmap_entry *e = eng ? strmap_first(&eng->current, &it) : NULL; e;
	     e = strmap_next(&eng->current, &it)) {
		const struct frontend_list *list = e->value;
		bool in = false, ex = false;

		for (size_t i = 0; i < list->n; i++) {
			if (list->items[i].action != FE_DROP)
				continue;
			if (list->items[i].kind == FE_CLUSTER_IP)
				in = true;
			else
				ex = true;
		}
		internal += in;
		external += ex;
	}
	/*
	 * kube-proxy's name and meaning (a gauge, despite "_total"); typed
	 * untyped here so that promtool's lint, which reserves _total for
	 * counters, passes, and dashboards querying the name keep working.
	 */
	prom_family(
		b, name, "untyped",
		"Number of Services with a Local traffic policy and endpoints only on other nodes");
	prom_sample(b, name, (const char *const[]){ "traffic_policy", "internal" }, 1,
		    (double)internal);
	prom_sample(b, name, (const char *const[]){ "traffic_policy", "external" }, 1,
		    (double)external);
}

static void sync_metrics(struct metrics *m, struct prom_buf *b)
{
	const struct store *st = m->src.store;

	prom_histogram_write(b, "kubeproxy_sync_proxy_rules_duration_seconds",
			     "SyncProxyRules latency in seconds (every apply of changes)",
			     &m->sync_all);
	prom_histogram_write(b, "kubeproxy_sync_full_proxy_rules_duration_seconds",
			     "SyncProxyRules latency in seconds for full resyncs", &m->sync_full);
	prom_histogram_write(b, "kubeproxy_sync_partial_proxy_rules_duration_seconds",
			     "SyncProxyRules latency in seconds for partial resyncs",
			     &m->sync_partial);
	gauge(b, "kubeproxy_sync_proxy_rules_last_timestamp_seconds",
	      "The last time the datapath was successfully synced", m->last_sync);
	gauge(b, "kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds",
	      "The last time a sync of the datapath was queued", m->last_queued);
	prom_histogram_write(b, "kubeproxy_network_programming_duration_seconds",
			     "In Cluster Network Programming Latency in seconds (from an "
			     "EndpointSlice's last-change-trigger-time to the datapath)",
			     &m->programming);
	if (st) {
		prom_family(b, "kubeproxy_sync_proxy_rules_endpoint_changes_total", "counter",
			    "Cumulative EndpointSlice changes");
		prom_sample(b, "kubeproxy_sync_proxy_rules_endpoint_changes_total", NULL, 0,
			    (double)st->slice_changes);
		gauge(b, "kubeproxy_sync_proxy_rules_endpoint_changes_pending",
		      "Pending EndpointSlice changes", (double)st->slice_changes_pending);
		prom_family(b, "kubeproxy_sync_proxy_rules_service_changes_total", "counter",
			    "Cumulative Service changes");
		prom_sample(b, "kubeproxy_sync_proxy_rules_service_changes_total", NULL, 0,
			    (double)st->service_changes);
		gauge(b, "kubeproxy_sync_proxy_rules_service_changes_pending",
		      "Pending Service changes", (double)st->service_changes_pending);
	}
	no_local_endpoints(b, m->src.engine);
}

static void healthz_metrics(struct metrics *m, struct prom_buf *b)
{
	struct healthz_counts c;

	healthz_get_counts(m->src.healthz, &c);
	prom_family(b, "kubeproxy_proxy_healthz_total", "counter",
		    "Cumulative proxy healthz HTTP status");
	prom_sample(b, "kubeproxy_proxy_healthz_total", (const char *const[]){ "code", "200" }, 1,
		    (double)c.healthz_200);
	prom_sample(b, "kubeproxy_proxy_healthz_total", (const char *const[]){ "code", "503" }, 1,
		    (double)c.healthz_503);
	prom_family(b, "kubeproxy_proxy_livez_total", "counter",
		    "Cumulative proxy livez HTTP status");
	prom_sample(b, "kubeproxy_proxy_livez_total", (const char *const[]){ "code", "200" }, 1,
		    (double)c.livez_200);
	prom_sample(b, "kubeproxy_proxy_livez_total", (const char *const[]){ "code", "503" }, 1,
		    (double)c.livez_503);
}

static void datapath_metrics(struct metrics *m, struct prom_buf *b)
{
	const char *why = m->src.fallback_why && *m->src.fallback_why ? m->src.fallback_why : NULL;
	const struct datapath_ops *ops = m->src.dp_ops;
	struct flow_counters *fc = NULL;
	struct table_usage *tu = NULL;
	size_t n_fc = 0, n_tu = 0;
	const char *kv[4];
	int err;

	if (!ops)
		return;
	prom_family(b, "sluice_datapath_info", "gauge",
		    "The datapath serving (1), and why --datapath=auto fell back to it");
	kv[0] = "datapath";
	kv[1] = ops->name;
	kv[2] = "fallback_reason";
	kv[3] = why;
	prom_sample(b, "sluice_datapath_info", kv, why ? 2 : 1, 1);

	err = ops->read_flow_counters ? ops->read_flow_counters(m->src.dp_cfg, &fc, &n_fc) : 0;
	gauge(b, "sluice_kernel_read_errors", "1 if the last read of the kernel counters failed",
	      err ? 1 : 0);
	prom_family(b, "sluice_service_flows_total", "counter",
		    "New flows to a Service by outcome, counted in the kernel (Services with a "
		    "rate limit, or all with --metrics-all-services)");
	for (size_t i = 0; i < n_fc; i++) {
		if (!m->src.all_services && !fc[i].rate.count)
			continue;
		for (int o = 0; o < FLOW_OUTCOMES; o++) {
			const char *labels[4] = { "service", fc[i].service, "outcome",
						  flow_outcome_name(o) };

			if (fc[i].counted & (1u << o))
				prom_sample(b, "sluice_service_flows_total", labels, 2,
					    (double)fc[i].flows[o]);
		}
	}
	free(fc);

	if (ops->read_table_usage && !ops->read_table_usage(m->src.dp_cfg, &tu, &n_tu)) {
		prom_family(b, "sluice_table_entries", "gauge",
			    "Entries in a kernel table of the datapath");
		for (size_t i = 0; i < n_tu; i++)
			prom_sample(b, "sluice_table_entries",
				    (const char *const[]){ "table", tu[i].name }, 1,
				    (double)tu[i].entries);
		prom_family(
			b, "sluice_table_capacity", "gauge",
			"Capacity of a kernel table of the datapath (tables with a fixed size)");
		for (size_t i = 0; i < n_tu; i++)
			if (tu[i].capacity)
				prom_sample(b, "sluice_table_capacity",
					    (const char *const[]){ "table", tu[i].name }, 1,
					    (double)tu[i].capacity);
	}
	free(tu);
	if (ops->services_not_programmed) {
		uint64_t n = 0;

		if (!ops->services_not_programmed(m->src.dp_cfg, &n))
			gauge(b, "sluice_services_not_programmed",
			      "Services not programmed for lack of room (--max-services)",
			      (double)n);
	}
}

static void source_metrics(struct metrics *m, struct prom_buf *b)
{
	struct source *src = m->src.source;

	if (!src || !src->ops->rejected_of)
		return;
	prom_family(b, "sluice_rejected_objects_total", "counter",
		    "Inputs rejected (logged; their last good version stays), by kind");
	for (int k = 0; k < REJECTED_KINDS; k++)
		prom_sample(b, "sluice_rejected_objects_total",
			    (const char *const[]){ "kind", rejected_kind_name(k) }, 1,
			    (double)src->ops->rejected_of(src, k));
}

char *metrics_render(struct metrics *m, size_t *len)
{
	struct prom_buf b = { 0 };

	sync_metrics(m, &b);
	healthz_metrics(m, &b);
	datapath_metrics(m, &b);
	source_metrics(m, &b);
	if (m->src.engine)
		gauge(&b, "sluice_services", "Services with at least one applied frontend",
		      (double)engine_services(m->src.engine));
	*len = b.len;
	return b.s ? b.s : xstrdup("");
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
			      const char *method, const char *version, const char *upload_data,
			      size_t *upload_data_size, void **req_cls)
{
	struct metrics *m = cls;
	struct MHD_Response *resp;
	enum MHD_Result ret;
	unsigned int status = MHD_HTTP_OK;
	size_t len;
	char *body;

	if (strcmp(method, "GET") && strcmp(method, "HEAD")) {
		status = MHD_HTTP_METHOD_NOT_ALLOWED;
		body = xstrdup("method not allowed\n");
	} else if (strcmp(url, "/metrics")) {
		status = MHD_HTTP_NOT_FOUND;
		body = xstrdup("not found\n");
	} else {
		body = metrics_render(m, &len);
	}
	len = strlen(body);
	resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type",
				status == MHD_HTTP_OK ? "text/plain; version=0.0.4; charset=utf-8" :
							"text/plain");
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

int metrics_listen(struct metrics *m, const char *addr)
{
	unsigned int flags = MHD_USE_EPOLL;
	const union MHD_DaemonInfo *info;
	struct sockaddr_storage ss;

	if (listen_addr_parse(addr, &ss)) {
		pr_warn("--metrics-addr: \"%s\" is not HOST:PORT", addr);
		return -1;
	}
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	m->daemon = MHD_start_daemon(flags, 0, NULL, NULL, handle, m, MHD_OPTION_SOCK_ADDR, &ss,
				     MHD_OPTION_CONNECTION_TIMEOUT, 5u, MHD_OPTION_END);
	info = m->daemon ? MHD_get_daemon_info(m->daemon, MHD_DAEMON_INFO_EPOLL_FD) : NULL;
	if (!info) {
		pr_warn("--metrics-addr: cannot listen on %s; no /metrics", addr);
		if (m->daemon)
			MHD_stop_daemon(m->daemon);
		m->daemon = NULL;
		return -1;
	}
	m->epoll_fd = info->epoll_fd;
	pr_info("metrics on http://%s/metrics", addr);
	return 0;
}

int metrics_fd(const struct metrics *m)
{
	return m && m->daemon ? m->epoll_fd : -1;
}

int metrics_timeout_ms(const struct metrics *m)
{
	MHD_UNSIGNED_LONG_LONG t;

	if (!m || !m->daemon || MHD_get_timeout(m->daemon, &t) != MHD_YES)
		return -1;
	return t > 60000 ? 60000 : (int)t;
}

void metrics_run(struct metrics *m)
{
	if (m && m->daemon)
		MHD_run(m->daemon);
}

void metrics_free(struct metrics *m)
{
	if (!m)
		return;
	if (m->daemon)
		MHD_stop_daemon(m->daemon);
	prom_histogram_free(&m->sync_all);
	prom_histogram_free(&m->sync_full);
	prom_histogram_free(&m->sync_partial);
	prom_histogram_free(&m->programming);
	free(m);
}
