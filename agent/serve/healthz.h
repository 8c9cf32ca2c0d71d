/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kube-proxy's health contract (--healthz-addr): /healthz and /livez
 * answer 200 unless a change has waited unapplied longer than the timeout
 * (503); /healthz also 503 while this Node is being deleted or carries the
 * ToBeDeletedByClusterAutoscaler taint, so that load balancers drain it.
 * The body is kube-proxy's JSON. Served from libmicrohttpd's own thread;
 * the main loop tells it what happened.
 */
#ifndef SLUICE_HEALTHZ_H
#define SLUICE_HEALTHZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* kube-proxy's: twice its default --sync-period of 30 s. */
#define HEALTHZ_TIMEOUT_SECONDS 60.0

/* What the answers are made of (seconds since the epoch; 0: never). */
struct healthz_state {
	double last_updated; /* the last successful apply */
	double oldest_queued; /* the oldest change not applied yet; 0: none */
	bool node_eligible;
	double timeout;
};

/* kube-proxy's rule: healthy unless a queued change is older than the timeout. */
bool healthz_healthy(const struct healthz_state *st, double now);
/*
 * The answer to /healthz (livez false) or /livez at now: the status
 * (200 or 503) and kube-proxy's body into buf. Returns the status.
 */
unsigned int healthz_answer(const struct healthz_state *st, double now, bool livez, char *buf,
			    size_t len);
/* Go's time.Time.String() in UTC ("2024-05-01 10:00:00.5 +0000 UTC"), as kube-proxy's body has it. */
char *healthz_go_time(double t, char *buf, size_t len);

struct healthz_server;

/* Answers counted, for kubeproxy_proxy_healthz_total / _livez_total {code}. */
struct healthz_counts {
	uint64_t healthz_200, healthz_503, livez_200, livez_503;
};

/*
 * addr is HOST:PORT. NULL on failure (logged: one line); the caller decides
 * whether that stops the agent (an explicit --healthz-addr) or not (the default).
 */
struct healthz_server *healthz_start(const char *addr);
void healthz_queued(struct healthz_server *hs, double now); /* a change is waiting */
void healthz_updated(struct healthz_server *hs, double now); /* everything is applied */
void healthz_set_node_eligible(struct healthz_server *hs, bool eligible);
void healthz_get_counts(struct healthz_server *hs, struct healthz_counts *out);
void healthz_stop(struct healthz_server *hs);

#endif
