// SPDX-License-Identifier: Apache-2.0
/*
 * The agent's health endpoint (--health-addr): /healthz answers 200 while the
 * agent runs, /readyz 200 once the first full sync is applied (503 before),
 * for the DaemonSet's probes. libmicrohttpd serves it from its own thread.
 */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "lib/addr.h"
#include "serve/health.h"
#include "serve/listen.h"
#include "lib/caps.h"
#include "lib/log.h"
#include "lib/xalloc.h"

struct health_server {
	struct MHD_Daemon *daemon;
	atomic_bool ready;
};

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned int status, const char *body)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	resp = MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_PERSISTENT);
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, "Content-Type", "text/plain");
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
			      const char *method, const char *version, const char *upload_data,
			      size_t *upload_data_size, void **req_cls)
{
	struct health_server *hs = cls;

	if (strcmp(method, "GET") && strcmp(method, "HEAD"))
		return reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n");
	if (!strcmp(url, "/healthz"))
		return reply(conn, MHD_HTTP_OK, "ok\n");
	if (!strcmp(url, "/readyz"))
		return atomic_load(&hs->ready) ?
			       reply(conn, MHD_HTTP_OK, "ready\n") :
			       reply(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "not synced yet\n");
	return reply(conn, MHD_HTTP_NOT_FOUND, "not found\n");
}

struct health_start {
	unsigned int flags;
	struct sockaddr_storage *ss;
	struct health_server *hs;
};

/* Runs in a thread limited to CAPS_SERVE, so that the server's thread gets no more. */
static void *start_daemon(void *arg)
{
	struct health_start *st = arg;

	return MHD_start_daemon(st->flags, 0, NULL, NULL, handle, st->hs, MHD_OPTION_SOCK_ADDR,
				st->ss, MHD_OPTION_CONNECTION_TIMEOUT, 5u, MHD_OPTION_END);
}

struct health_server *health_start(const char *addr)
{
	struct health_server *hs;
	struct sockaddr_storage ss;
	unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD;
	sigset_t all, old;

	if (listen_addr_parse(addr, &ss)) {
		pr_warn("--health-addr: \"%s\" is not HOST:PORT", addr);
		return NULL;
	}
	hs = xcalloc(1, sizeof(*hs));
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	/* The server's thread inherits a full mask: signals belong to the main loop. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	hs->daemon = caps_call_limited(CAPS_SERVE, start_daemon,
				       &(struct health_start){ flags, &ss, hs });
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!hs->daemon) {
		pr_warn("--health-addr: cannot listen on %s", addr);
		free(hs);
		return NULL;
	}
	pr_info("health endpoint on http://%s/healthz and /readyz", addr);
	return hs;
}

void health_set_ready(struct health_server *hs, bool ready)
{
	if (hs)
		atomic_store(&hs->ready, ready);
}

void health_stop(struct health_server *hs)
{
	if (!hs)
		return;
	MHD_stop_daemon(hs->daemon);
	free(hs);
}
