// SPDX-License-Identifier: Apache-2.0
/* Per-Service flow counters from the datapath in place (see flows.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/flows.h"
#include "lib/xalloc.h"

static int cmp_service(const void *a, const void *b)
{
	return strcmp(((const struct flow_counters *)a)->service,
		      ((const struct flow_counters *)b)->service);
}

int flow_counters_read(const struct datapath_ops *ops, const struct datapath_config *cfg,
		       struct flow_counters **out, size_t *n, unsigned int *have)
{
	struct service_stats *stats = NULL;
	size_t n_stats = 0;
	int err;

	*out = NULL;
	*n = 0;
	*have = 0;
	if (ops->read_flow_counters) {
		err = ops->read_flow_counters(cfg, out, n);
		if (err)
			return err;
		for (size_t i = 0; i < *n; i++)
			*have |= (*out)[i].counted;
		if (*n > 1)
			qsort(*out, *n, sizeof(**out), cmp_service);
		return 0;
	}
	if (!ops->read_stats)
		return -EOPNOTSUPP;
	err = ops->read_stats(cfg, &stats, &n_stats);
	if (err)
		return err;
	*out = n_stats ? xcalloc(n_stats, sizeof(**out)) : NULL;
	for (size_t i = 0; i < n_stats; i++) {
		struct flow_counters *fc = &(*out)[i];

		snprintf(fc->service, sizeof(fc->service), "%s", stats[i].service);
		fc->rate = stats[i].rate;
		fc->flows[FLOW_ADMITTED] = stats[i].admitted;
		fc->flows[FLOW_RATE_LIMITED] = stats[i].limited;
		fc->counted = 1u << FLOW_ADMITTED | 1u << FLOW_RATE_LIMITED;
	}
	*n = n_stats;
	*have = 1u << FLOW_ADMITTED | 1u << FLOW_RATE_LIMITED;
	free(stats);
	if (*n > 1)
		qsort(*out, *n, sizeof(**out), cmp_service);
	return 0;
}

const struct flow_counters *flow_counters_find(const struct flow_counters *v, size_t n,
					       const char *service)
{
	struct flow_counters key;

	snprintf(key.service, sizeof(key.service), "%s", service);
	return n ? bsearch(&key, v, n, sizeof(*v), cmp_service) : NULL;
}
