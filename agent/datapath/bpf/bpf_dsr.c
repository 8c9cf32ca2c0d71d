// SPDX-License-Identifier: Apache-2.0
/*
 * The dsr_nodes map of the tc path: for every backend of a DSR frontend
 * that is on another node whose address is known, that address (the
 * encapsulation's outer destination). Entries are counted per frontend
 * that uses them, so that a pod address two Services share stays until
 * the last one lets it go; each frontend's contribution is kept, so that
 * applying a diff again (after a failure) counts nothing twice. IPv4
 * only, as the tc path's DSR.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <bpf/bpf.h>

#include "datapath/bpf/bpf_datapath.h"
#include "datapath/bpf/bpf_dsr.h"
#include "datapath/bpf/datapath_bpf_tc.h"
#include "lib/log.h"
#include "lib/strmap.h"
#include "lib/xalloc.h"
#include "shared.h"

struct dsr_ref {
	unsigned int refs;
	struct ip_addr node;
};

/* What one frontend contributes: its backends with a node address. */
struct dsr_contribution {
	struct ip_addr *backends, *nodes;
	size_t n;
};

struct bpf_dsr {
	struct strmap refs; /* backend address text -> struct dsr_ref */
	/*
	 * Frontend key text -> struct dsr_contribution, as in the map now:
	 * an apply tried again after a failure changes nothing twice.
	 */
	struct strmap by_frontend;
	struct strmap v6_logged; /* Services told that their IPv6 frontends use SNAT */
};

static struct bpf_dsr *dsr_state(struct datapath *dp)
{
	if (!dp->dsr) {
		dp->dsr = xcalloc(1, sizeof(*dp->dsr));
		strmap_init(&dp->dsr->refs);
		strmap_init(&dp->dsr->by_frontend);
		strmap_init(&dp->dsr->v6_logged);
	}
	return dp->dsr;
}

static void key_of(const struct ip_addr *addr, struct sl_dsr_backend_key *key)
{
	memset(key, 0, sizeof(*key));
	memcpy(key->addr, addr->bytes, 4);
	key->family = SL_AF_INET;
}

static const char *fe_text(const struct frontend_key *key, char *buf, size_t len)
{
	char addr[IP_ADDR_STRLEN];

	snprintf(buf, len, "%s %u %u", ip_addr_format(&key->addr, addr), key->proto, key->port);
	return buf;
}

static void ref(struct bpf_dsr *st, int fd, const struct ip_addr *backend,
		const struct ip_addr *node)
{
	struct sl_dsr_backend_key key;
	struct sl_dsr_node value;
	char text[IP_ADDR_STRLEN];
	struct dsr_ref *r;

	ip_addr_format(backend, text);
	r = strmap_get(&st->refs, text);
	if (!r) {
		r = xcalloc(1, sizeof(*r));
		strmap_put(&st->refs, text, r);
	}
	if (r->refs++ && ip_addr_equal(&r->node, node))
		return;
	r->node = *node;
	key_of(backend, &key);
	memset(&value, 0, sizeof(value));
	memcpy(value.node_addr, node->bytes, 4);
	if (bpf_map_update_elem(fd, &key, &value, BPF_ANY))
		pr_warn("bpf: cannot write dsr_nodes for %s: %s (its flows use SNAT)", text,
			strerror(errno));
}

static void unref(struct bpf_dsr *st, int fd, const struct ip_addr *backend)
{
	struct sl_dsr_backend_key key;
	char text[IP_ADDR_STRLEN];
	struct dsr_ref *r;

	ip_addr_format(backend, text);
	r = strmap_get(&st->refs, text);
	if (!r || --r->refs)
		return;
	free(strmap_remove(&st->refs, text));
	key_of(backend, &key);
	bpf_map_delete_elem(fd, &key);
}

static void contribution_free(struct dsr_contribution *c)
{
	if (!c)
		return;
	free(c->backends);
	free(c->nodes);
	free(c);
}

/* The frontend's key no longer contributes: its backends' references go. */
static void withdraw(struct bpf_dsr *st, int fd, const struct frontend_key *fk)
{
	struct dsr_contribution *c;
	char text[96];

	c = strmap_remove(&st->by_frontend, fe_text(fk, text, sizeof(text)));
	for (size_t i = 0; c && i < c->n; i++)
		unref(st, fd, &c->backends[i]);
	contribution_free(c);
}

/* fe's backends with a node address replace what its key contributed. */
static void contribute(struct datapath *dp, int fd, const struct frontend *fe)
{
	struct bpf_dsr *st = dsr_state(dp);
	struct dsr_contribution *c;
	char text[96];

	if (fe->key.addr.family != AF_INET) {
		if (!strmap_get(&st->v6_logged, fe->service)) {
			strmap_put(&st->v6_logged, fe->service, (void *)1);
			pr_info("Service %s: direct server return is IPv4 only: its IPv6 "
				"frontends use SNAT",
				fe->service);
		}
		return;
	}
	c = xcalloc(1, sizeof(*c));
	c->backends = xcalloc(fe->n_backends + 1, sizeof(*c->backends));
	c->nodes = xcalloc(fe->n_backends + 1, sizeof(*c->nodes));
	for (size_t i = 0; i < fe->n_backends; i++) {
		if (fe->backend_nodes[i].family != AF_INET ||
		    fe->backends[i].addr.family != AF_INET)
			continue;
		c->backends[c->n] = fe->backends[i].addr;
		c->nodes[c->n++] = fe->backend_nodes[i];
		/* Before the old references go: a backend kept keeps its entry. */
		ref(st, fd, &fe->backends[i].addr, &fe->backend_nodes[i]);
	}
	withdraw(st, fd, &fe->key);
	strmap_put(&st->by_frontend, fe_text(&fe->key, text, sizeof(text)), c);
}

static bool uses_dsr(const struct frontend *fe)
{
	return fe && fe->dsr && fe->backend_nodes && fe->action == FE_SERVE;
}

/* After a full apply: entries of an earlier agent that no frontend wants now. */
static void sweep(struct datapath *dp, int fd)
{
	struct sl_dsr_backend_key key, next, *prev = NULL;
	char text[IP_ADDR_STRLEN];
	struct ip_addr addr;

	while (!bpf_map_get_next_key(fd, prev, &next)) {
		key = next;
		prev = &key;
		addr.family = AF_INET;
		memcpy(addr.bytes, key.addr, 16);
		ip_addr_format(&addr, text);
		if (key.family != SL_AF_INET || !strmap_get(&dp->dsr->refs, text)) {
			bpf_map_delete_elem(fd, &key);
			prev = NULL; /* start over: the deleted key cannot lead on */
		}
	}
}

static void clear_state(struct bpf_dsr *st)
{
	struct strmap_iter it;
	struct strmap_entry *e;

	for (e = strmap_first(&st->refs, &it); e; e = strmap_next(&st->refs, &it))
		free(e->value);
	for (e = strmap_first(&st->by_frontend, &it); e; e = strmap_next(&st->by_frontend, &it))
		contribution_free(e->value);
	strmap_destroy(&st->refs);
	strmap_destroy(&st->by_frontend);
	strmap_init(&st->refs);
	strmap_init(&st->by_frontend);
}

void bpf_dsr_apply(struct datapath *dp, const struct state_diff *diff)
{
	int fd = tc_datapath_dsr_fd(dp->tc);
	const struct frontend *old, *new;
	size_t i;

	if (fd < 0)
		return;
	if (diff->full)
		clear_state(dsr_state(dp));
	/* New contributions first: a backend that moves between frontends keeps its entry. */
	for (i = 0; i < diff->n_changes; i++) {
		if (uses_dsr(diff->changes[i].new))
			contribute(dp, fd, diff->changes[i].new);
	}
	for (i = 0; i < diff->n_changes; i++) {
		old = diff->changes[i].old;
		new = diff->changes[i].new;
		if (new && !uses_dsr(new))
			withdraw(dsr_state(dp), fd, &new->key);
		if (old && (!new || frontend_key_cmp(&old->key, &new->key)))
			withdraw(dsr_state(dp), fd, &old->key);
	}
	if (diff->full)
		sweep(dp, fd);
}

void bpf_dsr_free(struct datapath *dp)
{
	if (!dp->dsr)
		return;
	clear_state(dp->dsr);
	strmap_destroy(&dp->dsr->refs);
	strmap_destroy(&dp->dsr->by_frontend);
	strmap_destroy(&dp->dsr->v6_logged);
	free(dp->dsr);
	dp->dsr = NULL;
}
