// SPDX-License-Identifier: Apache-2.0
/*
 * Reading the stateful objects of table sluice back (a GETOBJ dump): the
 * Services' limits and counters for read_stats, and the counters a full
 * sync carries over into the rebuilt table.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <libmnl/libmnl.h>
#include <libnftnl/common.h>
#include <libnftnl/object.h>

#include "lib/xalloc.h"
#include "datapath/nft/nft_datapath.h"
#include "datapath/nft/nft_objects.h"
#include "datapath/nft/nft_skeleton.h"
#include "datapath/nft/nft_socket.h"

struct obj_values {
	int kind; /* NFT_SVC_* */
	char service[256];
	uint64_t pkts, bytes; /* counters */
	struct rate_limit rate; /* limits */
};

typedef void (*obj_cb)(const struct obj_values *v, void *data);

struct obj_dump_ctx {
	obj_cb cb;
	void *data;
};

static int obj_dump_data_cb(const struct nlmsghdr *nlh, void *data)
{
	struct obj_dump_ctx *ctx = data;
	struct nftnl_obj *o = xcheck(nftnl_obj_alloc());
	struct obj_values v = { 0 };

	if (nftnl_obj_nlmsg_parse(nlh, o) == 0 && nftnl_obj_is_set(o, NFTNL_OBJ_NAME) &&
	    !strcmp(nftnl_obj_get_str(o, NFTNL_OBJ_TABLE), NFT_TABLE_NAME)) {
		v.kind = nft_svc_parse_name(nftnl_obj_get_str(o, NFTNL_OBJ_NAME), v.service,
					    sizeof(v.service));
		switch (nftnl_obj_get_u32(o, NFTNL_OBJ_TYPE)) {
		case NFT_OBJECT_COUNTER:
			if (v.kind < 0 || !nft_svc_is_counter(v.kind))
				v.kind = -1;
			v.pkts = nftnl_obj_get_u64(o, NFTNL_OBJ_CTR_PKTS);
			v.bytes = nftnl_obj_get_u64(o, NFTNL_OBJ_CTR_BYTES);
			break;
		case NFT_OBJECT_LIMIT:
			if (v.kind != NFT_SVC_LIMIT)
				v.kind = -1;
			v.rate.count = nftnl_obj_get_u64(o, NFTNL_OBJ_LIMIT_RATE);
			v.rate.period = nftnl_obj_get_u64(o, NFTNL_OBJ_LIMIT_UNIT);
			v.rate.burst = nftnl_obj_get_u32(o, NFTNL_OBJ_LIMIT_BURST);
			break;
		default:
			v.kind = -1;
		}
		if (v.kind >= 0)
			ctx->cb(&v, ctx->data);
	}
	nftnl_obj_free(o);
	return MNL_CB_OK;
}

/* Dumps the limit and counter objects of table sluice; -ENOENT: no table. */
static int dump_objects(struct datapath *dp, obj_cb cb, void *data)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct obj_dump_ctx ctx = { .cb = cb, .data = data };
	struct nftnl_obj *o = xcheck(nftnl_obj_alloc());
	struct nft_ack_state st = { 0 };
	struct nlmsghdr *nlh;
	int err;

	memset(buf, 0, sizeof(buf)); /* libmnl 1.0.4 leaves attribute padding unset */
	nftnl_obj_set_str(o, NFTNL_OBJ_TABLE, NFT_TABLE_NAME);
	nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETOBJ, NFPROTO_INET, NLM_F_DUMP | NLM_F_ACK,
				    ++dp->seq);
	nftnl_obj_nlmsg_build_payload(nlh, o);
	nftnl_obj_free(o);
	st.seq_last = dp->seq;
	if (mnl_socket_sendto(dp->nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	err = nft_read_replies(dp, &st, obj_dump_data_cb, &ctx);
	return err ? err : st.err;
}

/* ---- adoption: the counters a full sync starts from ---- */

static void collect_counter(const struct obj_values *v, void *data)
{
	char name[NFT_OBJ_NAME_MAX];
	struct nft_old_counter *c;

	if (!nft_svc_is_counter(v->kind))
		return;
	if (!nft_svc_name(v->kind, v->service, name, sizeof(name)))
		return;
	c = xmalloc(sizeof(*c));
	c->pkts = v->pkts;
	c->bytes = v->bytes;
	free(strmap_put(data, name, c));
}

int nft_old_counters_read(struct datapath *dp, struct strmap *old)
{
	return dump_objects(dp, collect_counter, old);
}

struct nft_old_counter nft_old_counter_get(const struct strmap *old, enum nft_svc_name which,
					   const char *service)
{
	struct nft_old_counter zero = { 0 }, *c;
	char name[NFT_OBJ_NAME_MAX];

	if (!old || !nft_svc_name(which, service, name, sizeof(name)))
		return zero;
	c = strmap_get(old, name);
	return c ? *c : zero;
}

void nft_old_counters_free(struct strmap *old)
{
	struct strmap_iter it;

	for (struct strmap_entry *e = strmap_first(old, &it); e; e = strmap_next(old, &it))
		free(e->value);
	strmap_destroy(old);
}

/* ---- read_stats ---- */

struct stats_list {
	struct service_stats *v;
	size_t n, cap;
	struct strmap index; /* "ns/name" -> entry number + 1 */
};

static void stats_collect(const struct obj_values *v, void *data)
{
	struct stats_list *l = data;
	struct service_stats *st = NULL;
	uintptr_t at;

	/* A Service's rate limit only: its refusal counters are read_flow_counters'. */
	if (v->kind != NFT_SVC_LIMIT && v->kind != NFT_SVC_ADMITTED && v->kind != NFT_SVC_LIMITED)
		return;
	at = (uintptr_t)strmap_get(&l->index, v->service);
	if (at)
		st = &l->v[at - 1];
	if (!st) {
		if (l->n == l->cap) {
			l->cap = l->cap ? 2 * l->cap : 16;
			l->v = xreallocarray(l->v, l->cap, sizeof(*l->v));
		}
		st = &l->v[l->n++];
		strmap_put(&l->index, v->service, (void *)(uintptr_t)l->n);
		memset(st, 0, sizeof(*st));
		snprintf(st->service, sizeof(st->service), "%s", v->service);
	}
	if (v->kind == NFT_SVC_LIMIT)
		st->rate = v->rate;
	else if (v->kind == NFT_SVC_ADMITTED)
		st->admitted = v->pkts;
	else if (v->kind == NFT_SVC_LIMITED)
		st->limited = v->pkts;
}

int nft_stats_read(struct datapath *dp, struct service_stats **out, size_t *n)
{
	struct stats_list l = { 0 };
	int err;

	strmap_init(&l.index);
	err = dump_objects(dp, stats_collect, &l);
	strmap_destroy(&l.index);
	if (err == -ENOENT) /* no table: no Service has a limit */
		err = 0;
	if (err) {
		free(l.v);
		return err;
	}
	*out = l.v;
	*n = l.n;
	return 0;
}

/* ---- read_flow_counters ---- */

struct flows_list {
	struct flow_counters *v;
	size_t n, cap;
	struct strmap index; /* "ns/name" -> entry number + 1 */
};

/* The outcome a counter object counts, -1 for none. */
static int counter_outcome(int kind)
{
	switch (kind) {
	case NFT_SVC_ADMITTED:
		return FLOW_ADMITTED;
	case NFT_SVC_LIMITED:
		return FLOW_RATE_LIMITED;
	case NFT_SVC_NO_ENDPOINTS:
		return FLOW_NO_ENDPOINTS;
	case NFT_SVC_POLICY_DROP:
		return FLOW_POLICY_DROP;
	case NFT_SVC_SOURCE_RANGE:
		return FLOW_SOURCE_RANGE;
	default:
		return -1;
	}
}

static void flows_collect(const struct obj_values *v, void *data)
{
	struct flows_list *l = data;
	int outcome = counter_outcome(v->kind);
	struct flow_counters *fc;
	uintptr_t at;

	if (outcome < 0 && v->kind != NFT_SVC_LIMIT)
		return;
	at = (uintptr_t)strmap_get(&l->index, v->service);
	if (at) {
		fc = &l->v[at - 1];
	} else {
		if (l->n == l->cap) {
			l->cap = l->cap ? 2 * l->cap : 16;
			l->v = xreallocarray(l->v, l->cap, sizeof(*l->v));
		}
		fc = &l->v[l->n++];
		strmap_put(&l->index, v->service, (void *)(uintptr_t)l->n);
		memset(fc, 0, sizeof(*fc));
		snprintf(fc->service, sizeof(fc->service), "%s", v->service);
	}
	if (v->kind == NFT_SVC_LIMIT) {
		fc->rate = v->rate;
		return;
	}
	/* The counters count a flow's first packet (and a dropped one's retries): packets. */
	fc->flows[outcome] = v->pkts;
	fc->counted |= 1u << outcome;
}

static int cmp_flows(const void *a, const void *b)
{
	return strcmp(((const struct flow_counters *)a)->service,
		      ((const struct flow_counters *)b)->service);
}

int nft_flows_read(struct datapath *dp, struct flow_counters **out, size_t *n)
{
	struct flows_list l = { 0 };
	int err;

	strmap_init(&l.index);
	err = dump_objects(dp, flows_collect, &l);
	strmap_destroy(&l.index);
	if (err == -ENOENT) /* no table: nothing counted */
		err = 0;
	if (err) {
		free(l.v);
		return err;
	}
	if (l.n > 1)
		qsort(l.v, l.n, sizeof(*l.v), cmp_flows);
	*out = l.v ? l.v : xcalloc(1, sizeof(**out));
	*n = l.n;
	return 0;
}
