// SPDX-License-Identifier: Apache-2.0
/*
 * kube-proxy's /healthz and /livez (--healthz-addr): its semantics and its
 * JSON body, so that load balancers' health checks and the DaemonSet's
 * probes written for kube-proxy keep working. libmicrohttpd serves it from
 * its own thread, which holds only cap_net_bind_service; the state is
 * written by the main loop under a mutex.
 */
#include <microhttpd.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/caps.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "serve/healthz.h"
#include "serve/listen.h"

bool healthz_healthy(const struct healthz_state *st, double now)
{
	/* Starting up, or fully synced: healthy; a change waiting: until it is late. */
	return !st->oldest_queued || now - st->oldest_queued < st->timeout;
}

char *healthz_go_time(double t, char *buf, size_t len)
{
	time_t secs = (time_t)t;
	long nsec = (long)((t - (double)secs) * 1e9 + 0.5);
	char frac[16] = "";
	struct tm tm;
	int n;

	if (nsec >= 1000000000L) {
		secs++;
		nsec -= 1000000000L;
	}
	gmtime_r(&secs, &tm);
	if (nsec) {
		/* Go's ".999999999": trailing zeros trimmed. */
		n = snprintf(frac, sizeof(frac), ".%09ld", nsec);
		while (n > 1 && frac[n - 1] == '0')
			frac[--n] = '\0';
	}
	snprintf(buf, len, "%04d-%02d-%02d %02d:%02d:%02d%s +0000 UTC", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
	return buf;
}

unsigned int healthz_answer(const struct healthz_state *st, double now, bool livez, char *buf,
			    size_t len)
{
	bool healthy = healthz_healthy(st, now) && (livez || st->node_eligible);
	char last[64], cur[64];

	/* kube-proxy: lastUpdated reads "now" while healthy (older releases' meaning). */
	healthz_go_time(healthy ? now : st->last_updated, last, sizeof(last));
	healthz_go_time(now, cur, sizeof(cur));
	if (livez)
		snprintf(buf, len,
			 "{\"lastUpdated\": \"%s\",\"currentTime\": \"%s\", \"healthy\": %s}", last,
			 cur, healthy ? "true" : "false");
	else
		snprintf(buf, len,
			 "{\"lastUpdated\": \"%s\",\"currentTime\": \"%s\", \"nodeEligible\": %s, "
			 "\"healthy\": %s}",
			 last, cur, st->node_eligible ? "true" : "false",
			 healthy ? "true" : "false");
	return healthy ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE;
}

struct healthz_server {
	struct MHD_Daemon *daemon;
	pthread_mutex_t lock;
	struct healthz_state st;
	struct healthz_counts counts;
};

static double wall_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned int status, const char *body,
			     const char *type)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	resp = MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, "Content-Type", type);
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
			      const char *method, const char *version, const char *upload_data,
			      size_t *upload_data_size, void **req_cls)
{
	struct healthz_server *hs = cls;
	bool livez = !strcmp(url, "/livez");
	unsigned int status;
	char body[512];

	if (strcmp(method, "GET") && strcmp(method, "HEAD"))
		return reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n",
			     "text/plain");
	if (!livez && strcmp(url, "/healthz"))
		return reply(conn, MHD_HTTP_NOT_FOUND, "not found\n", "text/plain");
	pthread_mutex_lock(&hs->lock);
	status = healthz_answer(&hs->st, wall_now(), livez, body, sizeof(body));
	if (livez)
		(status == MHD_HTTP_OK ? hs->counts.livez_200++ : hs->counts.livez_503++);
	else
		(status == MHD_HTTP_OK ? hs->counts.healthz_200++ : hs->counts.healthz_503++);
	pthread_mutex_unlock(&hs->lock);
	return reply(conn, status, body, "application/json");
}

struct healthz_start_args {
	unsigned int flags;
	struct sockaddr_storage *ss;
	struct healthz_server *hs;
};

/* Runs in a thread limited to CAPS_SERVE, so that the server's thread gets no more. */
static void *start_daemon(void *arg)
{
	struct healthz_start_args *a = arg;

	return MHD_start_daemon(a->flags, 0, NULL, NULL, handle, a->hs, MHD_OPTION_SOCK_ADDR, a->ss,
				MHD_OPTION_CONNECTION_TIMEOUT, 5u, MHD_OPTION_END);
}

struct healthz_server *healthz_start(const char *addr)
{
	unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD;
	struct healthz_server *hs;
	struct sockaddr_storage ss;
	sigset_t all, old;

	if (listen_addr_parse(addr, &ss)) {
		pr_warn("--healthz-addr: \"%s\" is not HOST:PORT", addr);
		return NULL;
	}
	hs = xcalloc(1, sizeof(*hs));
	pthread_mutex_init(&hs->lock, NULL);
	hs->st.node_eligible = true;
	hs->st.timeout = HEALTHZ_TIMEOUT_SECONDS;
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	hs->daemon = caps_call_limited(CAPS_SERVE, start_daemon,
				       &(struct healthz_start_args){ flags, &ss, hs });
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!hs->daemon) {
		pr_warn("--healthz-addr: cannot listen on %s; serving no /livez there", addr);
		pthread_mutex_destroy(&hs->lock);
		free(hs);
		return NULL;
	}
	pr_info("kube-proxy health endpoint on http://%s/healthz and /livez", addr);
	return hs;
}

void healthz_queued(struct healthz_server *hs, double now)
{
	if (!hs)
		return;
	pthread_mutex_lock(&hs->lock);
	if (!hs->st.oldest_queued)
		hs->st.oldest_queued = now;
	pthread_mutex_unlock(&hs->lock);
}

void healthz_updated(struct healthz_server *hs, double now)
{
	if (!hs)
		return;
	pthread_mutex_lock(&hs->lock);
	hs->st.oldest_queued = 0;
	hs->st.last_updated = now;
	pthread_mutex_unlock(&hs->lock);
}

void healthz_set_node_eligible(struct healthz_server *hs, bool eligible)
{
	if (!hs)
		return;
	pthread_mutex_lock(&hs->lock);
	hs->st.node_eligible = eligible;
	pthread_mutex_unlock(&hs->lock);
}

void healthz_get_counts(struct healthz_server *hs, struct healthz_counts *out)
{
	memset(out, 0, sizeof(*out));
	if (!hs)
		return;
	pthread_mutex_lock(&hs->lock);
	*out = hs->counts;
	pthread_mutex_unlock(&hs->lock);
}

void healthz_stop(struct healthz_server *hs)
{
	if (!hs)
		return;
	MHD_stop_daemon(hs->daemon);
	pthread_mutex_destroy(&hs->lock);
	free(hs);
}
