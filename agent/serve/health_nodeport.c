// SPDX-License-Identifier: Apache-2.0
/*
 * healthCheckNodePort: for each Service with externalTrafficPolicy Local and
 * a healthCheckNodePort, an HTTP server on that port of this node that
 * answers 200 with the number of local endpoints, or 503 when there is
 * none, so that a load balancer sends traffic only to nodes that can serve it.
 * Each server runs in libmicrohttpd's own thread; the count it reports is
 * one atomic word the main loop updates.
 */
#include <microhttpd.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve/health_nodeport.h"
#include "lib/caps.h"
#include "lib/log.h"
#include "lib/xalloc.h"

struct hc_server {
	struct MHD_Daemon *daemon; /* NULL while waiting for its port */
	uint16_t port;
	char *ns, *name;
	atomic_uint local_endpoints;
	bool warned; /* the "cannot serve" line was logged */
};

void hc_servers_init(struct hc_servers *hc)
{
	strmap_init(&hc->by_service);
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *conn, const char *url,
			      const char *method, const char *version, const char *upload_data,
			      size_t *upload_data_size, void **req_cls)
{
	struct hc_server *srv = cls;
	unsigned int n = atomic_load(&srv->local_endpoints);
	struct MHD_Response *resp;
	enum MHD_Result ret;
	char body[512];
	int len;

	/* The shape kube-proxy answers with, so existing load balancer checks read it. */
	len = snprintf(body, sizeof(body),
		       "{\"service\":{\"namespace\":\"%s\",\"name\":\"%s\"},"
		       "\"localEndpoints\":%u,\"serviceProxyHealthy\":true}\n",
		       srv->ns, srv->name, n);
	resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_COPY);
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, "Content-Type", "application/json");
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	ret = MHD_queue_response(conn, n ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, resp);
	MHD_destroy_response(resp);
	return ret;
}

static void server_stop(struct hc_server *srv)
{
	if (!srv)
		return;
	if (srv->daemon)
		MHD_stop_daemon(srv->daemon);
	free(srv->ns);
	free(srv->name);
	free(srv);
}

/* Runs in a thread limited to CAPS_SERVE, so that the server's thread gets no more. */
static void *start_daemon(void *arg)
{
	struct hc_server *srv = arg;
	struct MHD_Daemon *d;

	d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_DUAL_STACK, srv->port, NULL,
			     NULL, answer, srv, MHD_OPTION_CONNECTION_TIMEOUT, 5u, MHD_OPTION_END);
	/* A node without IPv6 (ipv6.disable=1) has no dual-stack socket: IPv4 only. */
	if (!d)
		d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, srv->port, NULL, NULL, answer,
				     srv, MHD_OPTION_CONNECTION_TIMEOUT, 5u, MHD_OPTION_END);
	return d;
}

/* Starts listening; false leaves srv waiting, to be tried again (logged once). */
static bool server_listen(struct hc_server *srv)
{
	sigset_t all, old;

	/* Dual-stack socket: the port answers on every address of the node. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	srv->daemon = caps_call_limited(CAPS_SERVE, start_daemon, srv);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!srv->daemon) {
		if (!srv->warned)
			pr_warn("Service %s/%s: cannot serve healthCheckNodePort %u yet (in use?); "
				"tried again as Services change",
				srv->ns, srv->name, srv->port);
		srv->warned = true;
		return false;
	}
	pr_info("Service %s/%s: health check on node port %u", srv->ns, srv->name, srv->port);
	return true;
}

static struct hc_server *server_new(const struct service *svc)
{
	struct hc_server *srv = xcalloc(1, sizeof(*srv));

	srv->port = svc->health_check_node_port;
	srv->ns = xstrdup(svc->ns);
	srv->name = xstrdup(svc->name);
	server_listen(srv);
	return srv;
}

/* Servers that could not listen (a port another Service held) try again. */
static void retry_waiting(struct hc_servers *hc)
{
	struct strmap_iter it;
	struct strmap_entry *e;

	for (e = strmap_first(&hc->by_service, &it); e; e = strmap_next(&hc->by_service, &it)) {
		struct hc_server *srv = e->value;

		if (!srv->daemon)
			server_listen(srv);
	}
}

/* This node's endpoints behind the Service's external frontends. */
static unsigned int local_endpoints(const struct frontend_list *applied)
{
	for (size_t i = 0; applied && i < applied->n; i++) {
		const struct frontend *fe = &applied->items[i];

		if (fe->kind != FE_CLUSTER_IP && fe->key.proto)
			return fe->choice == CHOICE_LOCAL ? (unsigned int)fe->n_backends : 0;
	}
	return 0;
}

void hc_servers_update(struct hc_servers *hc, const char *key, const struct service *svc,
		       const struct frontend_list *applied)
{
	struct hc_server *srv = strmap_get(&hc->by_service, key);
	bool wanted = svc && svc->external_local && svc->health_check_node_port;

	if (srv && (!wanted || srv->port != svc->health_check_node_port)) {
		server_stop(strmap_remove(&hc->by_service, key));
		srv = NULL;
		retry_waiting(hc);
	}
	if (!wanted)
		return;
	if (!srv) {
		srv = server_new(svc);
		strmap_put(&hc->by_service, key, srv);
	}
	atomic_store(&srv->local_endpoints, local_endpoints(applied));
}

void hc_servers_destroy(struct hc_servers *hc)
{
	struct strmap_iter it;
	struct strmap_entry *e;

	for (e = strmap_first(&hc->by_service, &it); e; e = strmap_next(&hc->by_service, &it))
		server_stop(e->value);
	strmap_destroy(&hc->by_service);
}

static void hc_service_applied(void *ctx, const struct service_applied *sa)
{
	hc_servers_update(ctx, sa->key, sa->svc, sa->frontends);
}

const struct output_ops hc_output_ops = {
	.service_applied = hc_service_applied,
};
