/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The API server source (--source=kube): lists, then watches, Services,
 * EndpointSlices and this node's Node, and feeds the store what changed.
 */
#ifndef SLUICE_SOURCE_KUBE_H
#define SLUICE_SOURCE_KUBE_H

#include "source/source.h"
#include "core/store.h"

/*
 * kubeconfig: a kubeconfig path, or NULL for the in-cluster configuration.
 * Returns once the first list of every resource is complete and in the
 * store (retrying, with one log line per attempt, while the API server
 * cannot be reached). Returns 0 or -errno (a configuration error, logged).
 */
int kube_source_new(const char *kubeconfig, const char *node_name, struct store *store,
		    struct source **out);

#endif
