/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agent's health endpoint (--health-addr): /healthz answers 200 while the
 * agent runs, /readyz 200 while the datapath holds what the sources say: 503
 * before the first full sync, and again while applying changes fails.
 */
#ifndef SLUICE_HEALTH_H
#define SLUICE_HEALTH_H

struct health_server;

/* addr is "HOST:PORT" (IPv6 as "[::1]:10256"). Returns NULL on failure (logged). */
struct health_server *health_start(const char *addr);
#include <stdbool.h>

/* Ready: the last apply succeeded. */
void health_set_ready(struct health_server *hs, bool ready);
void health_stop(struct health_server *hs);

#endif
