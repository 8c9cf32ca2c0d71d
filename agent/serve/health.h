/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agent's health endpoint (--health-addr): /healthz answers 200 while the
 * agent runs, /readyz 200 once the first full sync is applied (503 before),
 * for the DaemonSet's probes.
 */
#ifndef SLUICE_HEALTH_H
#define SLUICE_HEALTH_H

struct health_server;

/* addr is "HOST:PORT" (IPv6 as "[::1]:10256"). Returns NULL on failure (logged). */
struct health_server *health_start(const char *addr);
void health_set_ready(struct health_server *hs);
void health_stop(struct health_server *hs);

#endif
