// SPDX-License-Identifier: Apache-2.0
/*
 * The dsr_nodes map of the tc path: for every backend of a DSR frontend
 * that is on another node whose address is known, that address (the
 * encapsulation's outer destination). Entries are counted per frontend
 * that uses them, so that a pod address two Services share stays until
 * the last one lets it go. IPv4 only, as the tc path's DSR.
 */
#include <errno.h>
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

struct bpf_dsr {
	struct strmap refs; /* backend address text -> struct dsr_ref */
	struct strmap v6_logged; /* Services told that their IPv6 frontends use SNAT */
};

static struct bpf_dsr *dsr_state(struct datapath *dp)
{
	if (!dp->dsr) {
		dp->dsr = xcalloc(1, sizeof(*dp->dsr));
		strmap_init(&dp->dsr->refs);
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

static void ref_backends(struct datapath *dp, int fd, const struct frontend *fe)
{
	struct bpf_dsr *st = dsr_state(dp);
	struct sl_dsr_backend_key key;
	struct sl_dsr_node value;
	char text[IP_ADDR_STRLEN];
	struct dsr_ref *ref;

	if (fe->key.addr.family != AF_INET) {
		if (!strmap_get(&st->v6_logged, fe->service)) {
			strmap_put(&st->v6_logged, fe->service, (void *)1);
			pr_info("Service %s: direct server return is IPv4 only: its IPv6 "
				"frontends use SNAT",
				fe->service);
		}
		return;
	}
	for (size_t i = 0; i < fe->n_backends; i++) {
		const struct ip_addr *node = &fe->backend_nodes[i];

		if (node->family != AF_INET || fe->backends[i].addr.family != AF_INET)
			continue;
		ip_addr_format(&fe->backends[i].addr, text);
		ref = strmap_get(&st->refs, text);
		if (!ref) {
			ref = xcalloc(1, sizeof(*ref));
			strmap_put(&st->refs, text, ref);
		}
		ref->refs++;
		if (ref->refs > 1 && ip_addr_equal(&ref->node, node))
			continue;
		ref->node = *node;
		key_of(&fe->backends[i].addr, &key);
		memset(&value, 0, sizeof(value));
		memcpy(value.node_addr, node->bytes, 4);
		if (bpf_map_update_elem(fd, &key, &value, BPF_ANY))
			pr_warn("bpf: cannot write dsr_nodes for %s: %s (its flows use SNAT)", text,
				strerror(errno));
	}
}

static void unref_backends(struct datapath *dp, int fd, const struct frontend *fe)
{
	struct bpf_dsr *st = dsr_state(dp);
	struct sl_dsr_backend_key key;
	char text[IP_ADDR_STRLEN];
	struct dsr_ref *ref;

	if (fe->key.addr.family != AF_INET)
		return;
	for (size_t i = 0; i < fe->n_backends; i++) {
		if (fe->backend_nodes[i].family != AF_INET)
			continue;
		ip_addr_format(&fe->backends[i].addr, text);
		ref = strmap_get(&st->refs, text);
		if (!ref || --ref->refs)
			continue;
		free(strmap_remove(&st->refs, text));
		key_of(&fe->backends[i].addr, &key);
		bpf_map_delete_elem(fd, &key);
	}
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

static void clear_refs(struct bpf_dsr *st)
{
	struct strmap_iter it;
	struct strmap_entry *e;

	for (e = strmap_first(&st->refs, &it); e; e = strmap_next(&st->refs, &it))
		free(e->value);
	strmap_destroy(&st->refs);
	strmap_init(&st->refs);
}

void bpf_dsr_apply(struct datapath *dp, const struct state_diff *diff)
{
	int fd = tc_datapath_dsr_fd(dp->tc);
	size_t i;

	if (fd < 0)
		return;
	if (diff->full)
		clear_refs(dsr_state(dp));
	/* New entries first: a backend that moves between frontends keeps its entry. */
	for (i = 0; i < diff->n_changes; i++) {
		if (uses_dsr(diff->changes[i].new))
			ref_backends(dp, fd, diff->changes[i].new);
	}
	for (i = 0; i < diff->n_changes; i++) {
		if (uses_dsr(diff->changes[i].old))
			unref_backends(dp, fd, diff->changes[i].old);
	}
	if (diff->full)
		sweep(dp, fd);
}

void bpf_dsr_free(struct datapath *dp)
{
	if (!dp->dsr)
		return;
	clear_refs(dp->dsr);
	strmap_destroy(&dp->dsr->refs);
	strmap_destroy(&dp->dsr->v6_logged);
	free(dp->dsr);
	dp->dsr = NULL;
}
