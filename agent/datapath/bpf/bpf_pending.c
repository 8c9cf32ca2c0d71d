// SPDX-License-Identifier: Apache-2.0
/*
 * The frontends the BPF maps have no room for (past --max-services, or a
 * full map), kept per service_id as deep copies of what the engine handed
 * over, so that bpf_apply.c can program them when room frees up: the
 * engine counts them as applied and will not hand them over again.
 * Indexed by service_id, which the engine keeps dense (freed ids reused).
 */
#include <stdlib.h>
#include <string.h>

#include "datapath/bpf/bpf_datapath.h"
#include "lib/xalloc.h"

struct bpf_pending *bpf_pending_of(const struct datapath *dp, __u32 id)
{
	return id < dp->n_pending_ids ? dp->pending[id] : NULL;
}

static void *dup_array(const void *src, size_t n, size_t sz)
{
	void *out;

	if (!src || !n)
		return NULL;
	out = xreallocarray(NULL, n, sz);
	memcpy(out, src, n * sz);
	return out;
}

static void frontend_copy(struct frontend *dst, const struct frontend *src)
{
	*dst = *src;
	dst->service = src->service ? xstrdup(src->service) : NULL;
	dst->port_name = src->port_name ? xstrdup(src->port_name) : NULL;
	dst->backends = dup_array(src->backends, src->n_backends, sizeof(*src->backends));
	dst->node_backends =
		dup_array(src->node_backends, src->n_node_backends, sizeof(*src->node_backends));
	dst->source_ranges =
		dup_array(src->source_ranges, src->n_source_ranges, sizeof(*src->source_ranges));
	dst->backend_nodes = src->backend_nodes ? dup_array(src->backend_nodes, src->n_backends,
							    sizeof(*src->backend_nodes)) :
						  NULL;
}

bool bpf_pending_put(struct datapath *dp, const struct frontend *fe)
{
	__u32 id = fe->service_id;
	struct bpf_pending *p;
	size_t i, n;
	bool first = false;

	if (id >= dp->n_pending_ids) {
		n = dp->n_pending_ids ? dp->n_pending_ids : 256;
		while (n <= id)
			n *= 2;
		dp->pending = xreallocarray(dp->pending, n, sizeof(*dp->pending));
		memset(dp->pending + dp->n_pending_ids, 0,
		       (n - dp->n_pending_ids) * sizeof(*dp->pending));
		dp->n_pending_ids = n;
	}
	p = dp->pending[id];
	if (!p) {
		p = dp->pending[id] = xcalloc(1, sizeof(*p));
		dp->n_unprogrammed++;
		first = true;
	}
	for (i = 0; i < p->n; i++) {
		if (!frontend_key_cmp(&p->fes[i].key, &fe->key)) {
			frontend_clear(&p->fes[i]);
			frontend_copy(&p->fes[i], fe);
			return first;
		}
	}
	grow((void **)&p->fes, &p->cap, p->n, sizeof(*p->fes));
	frontend_copy(&p->fes[p->n++], fe);
	return first;
}

static void pending_free(struct datapath *dp, __u32 id)
{
	struct bpf_pending *p = dp->pending[id];
	size_t i;

	for (i = 0; i < p->n; i++)
		frontend_clear(&p->fes[i]);
	free(p->fes);
	free(p);
	dp->pending[id] = NULL;
	dp->n_unprogrammed--;
}

bool bpf_pending_del(struct datapath *dp, __u32 id, const struct frontend_key *key)
{
	struct bpf_pending *p = bpf_pending_of(dp, id);
	size_t i;

	if (!p)
		return false;
	for (i = 0; i < p->n; i++) {
		if (frontend_key_cmp(&p->fes[i].key, key))
			continue;
		frontend_clear(&p->fes[i]);
		p->fes[i] = p->fes[--p->n];
		if (p->n)
			return false;
		pending_free(dp, id);
		return true;
	}
	return false;
}

void bpf_pending_clear(struct datapath *dp)
{
	size_t id;

	for (id = 0; id < dp->n_pending_ids; id++) {
		if (dp->pending[id])
			pending_free(dp, id);
	}
}
