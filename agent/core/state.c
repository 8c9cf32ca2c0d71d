// SPDX-License-Identifier: Apache-2.0
/* Desired-state helpers: frontend ordering, equality, cleanup and names for logs. */
#include <stdlib.h>
#include <string.h>

#include "core/state.h"
#include "lib/intern.h"

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

/* Walks the union of a frontend's served sets in order, each backend once. */
struct served_walk {
	const struct backend *a, *b;
	size_t na, nb, i, j;
};

static void served_walk_init(struct served_walk *w, const struct frontend *fe)
{
	memset(w, 0, sizeof(*w));
	if (!fe)
		return;
	if (fe->action == FE_SERVE) {
		w->a = fe->backends;
		w->na = fe->n_backends;
	}
	if (fe->has_node_set && fe->node_action == FE_SERVE) {
		w->b = fe->node_backends;
		w->nb = fe->n_node_backends;
	}
}

static const struct backend *served_walk_peek(const struct served_walk *w)
{
	if (w->i == w->na)
		return w->j == w->nb ? NULL : &w->b[w->j];
	if (w->j == w->nb || backend_cmp(&w->a[w->i], &w->b[w->j]) <= 0)
		return &w->a[w->i];
	return &w->b[w->j];
}

static void served_walk_next(struct served_walk *w)
{
	const struct backend *cur = served_walk_peek(w);

	if (w->i < w->na && !backend_cmp(&w->a[w->i], cur))
		w->i++;
	if (w->j < w->nb && !backend_cmp(&w->b[w->j], cur))
		w->j++;
}

void frontend_removed_backends(const struct frontend *old, const struct frontend *new,
			       void (*fn)(void *ctx, const struct frontend *old,
					  const struct backend *gone),
			       void *ctx)
{
	const struct backend *o, *n;
	struct served_walk wo, wn;

	served_walk_init(&wo, old);
	served_walk_init(&wn, new);
	while ((o = served_walk_peek(&wo))) {
		int cmp = (n = served_walk_peek(&wn)) ? backend_cmp(o, n) : -1;

		if (cmp < 0) {
			fn(ctx, old, o);
			served_walk_next(&wo);
		} else if (cmp > 0) {
			served_walk_next(&wn);
		} else {
			served_walk_next(&wo);
			served_walk_next(&wn);
		}
	}
}

static bool backends_equal(const struct backend *a, const struct backend *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (a[i].port != b[i].port || !ip_addr_equal(&a[i].addr, &b[i].addr))
			return false;
	}
	return true;
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
	    a->n_source_ranges != b->n_source_ranges || a->dsr != b->dsr || a->maglev != b->maglev)
		return false;
	for (i = 0; a->dsr && i < a->n_backends; i++) {
		if (ip_addr_cmp(&a->backend_nodes[i], &b->backend_nodes[i]))
			return false;
	}
	for (i = 0; i < a->n_source_ranges; i++) {
		if (a->source_ranges[i].prefix_len != b->source_ranges[i].prefix_len ||
		    ip_addr_cmp(&a->source_ranges[i].addr, &b->source_ranges[i].addr))
			return false;
	}
	if (!name_equal(a->service, b->service) || !name_equal(a->port_name, b->port_name))
		return false;
	if (a->has_node_set != b->has_node_set ||
	    (a->has_node_set &&
	     (a->node_action != b->node_action || a->node_choice != b->node_choice ||
	      a->n_node_backends != b->n_node_backends ||
	      !backends_equal(a->node_backends, b->node_backends, a->n_node_backends))))
		return false;
	return backends_equal(a->backends, b->backends, a->n_backends);
}

void frontend_clear(struct frontend *fe)
{
	if (!fe)
		return;
	intern_put(fe->service);
	intern_put(fe->port_name);
	free(fe->backends);
	free(fe->node_backends);
	free(fe->backend_nodes);
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
