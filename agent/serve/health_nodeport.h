/* SPDX-License-Identifier: Apache-2.0 */
/*
 * healthCheckNodePort: for each Service with externalTrafficPolicy Local and
 * a healthCheckNodePort, an HTTP server on that port of this node that
 * answers 200 with the number of local endpoints, or 503 when there is
 * none, so that a load balancer sends traffic only to nodes that can serve it.
 */
#ifndef SLUICE_HEALTH_NODEPORT_H
#define SLUICE_HEALTH_NODEPORT_H

#include "core/output.h"
#include "core/resolver.h"
#include "core/store.h"
#include "lib/strmap.h"

struct hc_servers {
	struct strmap by_service; /* service key -> struct hc_server * */
};

void hc_servers_init(struct hc_servers *hc);
/* Brings the server of one Service in line with its applied frontends (NULL: gone). */
void hc_servers_update(struct hc_servers *hc, const char *key, const struct service *svc,
		       const struct frontend_list *applied);
void hc_servers_destroy(struct hc_servers *hc);

/* The servers as an engine output: ctx is a struct hc_servers. */
extern const struct output_ops hc_output_ops;

#endif
