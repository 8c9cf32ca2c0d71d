// SPDX-License-Identifier: Apache-2.0
/* Desired-state helpers: frontend ordering, equality, cleanup and names for logs. */
#include <stdlib.h>
#include <string.h>

#include "core/state.h"

int frontend_key_cmp(const struct frontend_key *a, const struct frontend_key *b)
{
	int cmp = ip_addr_cmp(&a->addr, &b->addr); /* family first, then address */

	if (cmp)
		return cmp < 0 ? -1 : 1;
	if (a->proto != b->proto)
		return a->proto < b->proto ? -1 : 1;
	if (a->port != b->port)
		return a->port < b->port ? -1 : 1;
	return 0;
}

int backend_cmp(const struct backend *a, const struct backend *b)
{
	int cmp = ip_addr_cmp(&a->addr, &b->addr);

	if (cmp)
		return cmp;
	return a->port < b->port ? -1 : a->port > b->port;
}

void frontend_removed_backends(const struct frontend *old, const struct frontend *new,
			       void (*fn)(void *ctx, const struct frontend *old,
					  const struct backend *gone),
			       void *ctx)
{
	size_t n_new = new &&new->action == FE_SERVE ? new->n_backends : 0, i = 0, j = 0;

	if (!old || old->action != FE_SERVE)
		return;
	while (i < old->n_backends) {
		int cmp = j == n_new ? -1 : backend_cmp(&old->backends[i], &new->backends[j]);

		if (cmp < 0)
			fn(ctx, old, &old->backends[i++]);
		else if (cmp > 0)
			j++;
		else
			i++, j++;
	}
}

/* NULL and "" are the same for names: both mean "none". */
static bool name_equal(const char *a, const char *b)
{
	return strcmp(a ? a : "", b ? b : "") == 0;
}

bool frontend_equal(const struct frontend *a, const struct frontend *b)
{
	size_t i;

	if (frontend_key_cmp(&a->key, &b->key) || a->kind != b->kind || a->action != b->action ||
	    a->choice != b->choice || a->service_id != b->service_id ||
	    a->affinity_timeout != b->affinity_timeout || a->n_backends != b->n_backends ||
	    a->rate.count != b->rate.count || a->rate.period != b->rate.period ||
	    a->rate.burst != b->rate.burst || a->preserve_source != b->preserve_source ||
	    a->n_source_ranges != b->n_source_ranges)
		return false;
	for (i = 0; i < a->n_source_ranges; i++) {
		if (a->source_ranges[i].prefix_len != b->source_ranges[i].prefix_len ||
		    ip_addr_cmp(&a->source_ranges[i].addr, &b->source_ranges[i].addr))
			return false;
	}
	if (!name_equal(a->service, b->service) || !name_equal(a->port_name, b->port_name))
		return false;
	for (i = 0; i < a->n_backends; i++) {
		if (a->backends[i].port != b->backends[i].port ||
		    !ip_addr_equal(&a->backends[i].addr, &b->backends[i].addr))
			return false;
	}
	return true;
}

void frontend_clear(struct frontend *fe)
{
	if (!fe)
		return;
	free(fe->service);
	free(fe->port_name);
	free(fe->backends);
	free(fe->source_ranges);
	memset(fe, 0, sizeof(*fe));
}

const char *backend_choice_name(enum backend_choice choice)
{
	switch (choice) {
	case CHOICE_NONE:
		return "none";
	case CHOICE_CLUSTER:
		return "cluster";
	case CHOICE_ZONE:
		return "zone";
	case CHOICE_NODE:
		return "node";
	case CHOICE_TERMINATING:
		return "terminating";
	case CHOICE_LOCAL:
		return "local";
	case CHOICE_LOCAL_TERMINATING:
		return "local-terminating";
	}
	return "unknown";
}

const char *frontend_action_name(enum frontend_action action)
{
	switch (action) {
	case FE_SERVE:
		return "serve";
	case FE_REFUSE:
		return "refuse";
	case FE_DROP:
		return "drop";
	}
	return "unknown";
}
