/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The API server source (--source=kube): lists, then watches, Services,
 * EndpointSlices and this node's Node, and feeds the store what changed.
 */
#ifndef SLUICE_SOURCE_KUBE_H
#define SLUICE_SOURCE_KUBE_H

#include "source/source.h"
#include "core/store.h"

#include <stdbool.h>
#include <stddef.h>

/* The defaults of the limits below. */
#define KUBE_DEFAULT_MAX_EVENT_BYTES (16UL << 20)
#define KUBE_DEFAULT_MAX_LIST_BYTES (256UL << 20)

struct kube_source_options {
	const char *kubeconfig; /* a kubeconfig path, or NULL for the in-cluster configuration */
	const char *node_name; /* the one Node to watch */
	/*
	 * --max-event-bytes: a longer watch line is logged, its memory
	 * released and the watch restarted; 0: the default.
	 */
	size_t max_event_bytes;
	/*
	 * --max-list-bytes: a larger list page body is logged and the list
	 * retried with backoff; 0: the default.
	 */
	size_t max_list_bytes;
	/* --kube-insecure-skip-tls-verify: obey insecure-skip-tls-verify in the kubeconfig. */
	bool insecure_skip_tls_verify;
};

/*
 * Returns once the first list of every resource is complete and in the
 * store (retrying, with one log line per attempt, while the API server
 * cannot be reached). Returns 0 or -errno (a configuration error, logged).
 */
int kube_source_new(const struct kube_source_options *opts, struct store *store,
		    struct source **out);

#endif
