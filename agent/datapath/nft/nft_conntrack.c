// SPDX-License-Identifier: Apache-2.0
/*
 * Conntrack cleanup for removed UDP/SCTP backends (kube-proxy's
 * ClearEntriesForNAT): a DNAT'ed datagram flow keeps its conntrack entry,
 * and so its backend, for as long as packets keep coming. After a batch
 * that removed a backend commits, its entries are deleted over ctnetlink
 * (NETLINK_NETFILTER, the socket the datapath already holds): a dump the
 * kernel filters on the reply source (CTA_FILTER, Linux 5.8+), then
 * IPCTNL_MSG_CT_DELETE by exact original tuple. TCP is never touched.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <libmnl/libmnl.h>

#include "lib/log.h"
#include "lib/xalloc.h"
#include "datapath/nft/nft_conntrack.h"
#include "datapath/nft/nft_datapath.h"
#include "datapath/nft/nft_socket.h"

/* The kernel's CTA_FILTER_F_* bits (net/netfilter/nf_internals.h), not in the uapi headers. */
#define CT_FILTER_IP_SRC (1u << 0)
#define CT_FILTER_PROTO_NUM (1u << 3)
#define CT_FILTER_PROTO_SRC_PORT (1u << 4)

/* One entry's original tuple, as the dump shows it (ports in network order). */
struct ct_entry {
	uint8_t src[16], dst[16];
	uint16_t sport, dport;
	uint16_t zone; /* network order; 0: the default zone */
	uint32_t id; /* network order */
	bool has_id;
};

struct ct_dump {
	const struct nft_ct_stale *pairs; /* one backend's pairs */
	size_t n_pairs;
	uint8_t family, proto;
	struct ct_entry *entries;
	size_t n, cap;
};

static bool is_udp_like(uint8_t proto)
{
	return proto == IPPROTO_UDP || proto == IPPROTO_SCTP;
}

static int stale_cmp(const void *a, const void *b)
{
	const struct nft_ct_stale *x = a, *y = b;
	int c;

	if (x->fe.proto != y->fe.proto)
		return x->fe.proto < y->fe.proto ? -1 : 1;
	c = ip_addr_cmp(&x->be.addr, &y->be.addr);
	if (c)
		return c;
	if (x->be.port != y->be.port)
		return x->be.port < y->be.port ? -1 : 1;
	return frontend_key_cmp(&x->fe, &y->fe);
}

struct stale_list {
	struct nft_ct_stale *pairs;
	size_t n, cap;
};

static void add_stale(void *ctx, const struct frontend *old, const struct backend *gone)
{
	struct stale_list *l = ctx;

	if (gone->addr.family != old->key.addr.family)
		return;
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 8;
		l->pairs = xreallocarray(l->pairs, l->cap, sizeof(*l->pairs));
	}
	l->pairs[l->n].fe = old->key;
	l->pairs[l->n++].be = *gone;
}

size_t nft_ct_stale_pairs(const struct state_diff *diff, bool tcp, struct nft_ct_stale **out)
{
	struct stale_list l = { 0 };

	for (size_t i = 0; i < diff->n_changes; i++) {
		const struct frontend *old = diff->changes[i].old;

		if (old && (is_udp_like(old->key.proto) || (tcp && old->key.proto == IPPROTO_TCP)))
			frontend_removed_backends(old, diff->changes[i].new, add_stale, &l);
	}
	if (l.n > 1)
		qsort(l.pairs, l.n, sizeof(*l.pairs), stale_cmp);
	*out = l.pairs;
	return l.n;
}

static size_t addr_len(uint8_t family)
{
	return family == AF_INET ? 4 : 16;
}

static bool is_unspecified(const struct ip_addr *a)
{
	static const uint8_t zero[16];

	return !memcmp(a->bytes, zero, addr_len(a->family));
}

static struct nlmsghdr *ct_msg(char *buf, uint8_t type, uint16_t flags, uint8_t family,
			       uint32_t seq)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct nfgenmsg *nfg;

	nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | type;
	nlh->nlmsg_flags = NLM_F_REQUEST | flags;
	nlh->nlmsg_seq = seq;
	nfg = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfg));
	nfg->nfgen_family = family;
	nfg->version = NFNETLINK_V0;
	nfg->res_id = 0;
	return nlh;
}

/* CTA_TUPLE_*: addresses and ports (NULL / 0 where the filter leaves them out). */
static void put_tuple(struct nlmsghdr *nlh, uint16_t type, uint8_t family, uint8_t proto,
		      const uint8_t *src, const uint8_t *dst, uint16_t sport, uint16_t dport,
		      bool with_dport)
{
	bool v4 = family == AF_INET;
	struct nlattr *tuple = mnl_attr_nest_start(nlh, type), *nest;

	nest = mnl_attr_nest_start(nlh, CTA_TUPLE_IP);
	mnl_attr_put(nlh, v4 ? CTA_IP_V4_SRC : CTA_IP_V6_SRC, addr_len(family), src);
	if (dst)
		mnl_attr_put(nlh, v4 ? CTA_IP_V4_DST : CTA_IP_V6_DST, addr_len(family), dst);
	mnl_attr_nest_end(nlh, nest);
	nest = mnl_attr_nest_start(nlh, CTA_TUPLE_PROTO);
	mnl_attr_put_u8(nlh, CTA_PROTO_NUM, proto);
	mnl_attr_put_u16(nlh, CTA_PROTO_SRC_PORT, sport);
	if (with_dport)
		mnl_attr_put_u16(nlh, CTA_PROTO_DST_PORT, dport);
	mnl_attr_nest_end(nlh, nest);
	mnl_attr_nest_end(nlh, tuple);
}

struct attr_tb {
	const struct nlattr *tb[CTA_MAX + 1];
	int max;
};

static int attr_cb(const struct nlattr *attr, void *data)
{
	struct attr_tb *t = data;
	int type = mnl_attr_get_type(attr);

	if (type <= t->max)
		t->tb[type] = attr;
	return MNL_CB_OK;
}

static bool parse_nested(const struct nlattr *attr, struct attr_tb *t, int max)
{
	memset(t, 0, sizeof(*t));
	t->max = max;
	return attr && mnl_attr_parse_nested(attr, attr_cb, t) >= 0;
}

static bool copy_attr(const struct nlattr *attr, void *dst, size_t len)
{
	if (!attr || mnl_attr_get_payload_len(attr) != len)
		return false;
	memcpy(dst, mnl_attr_get_payload(attr), len);
	return true;
}

/* Does the entry's original destination belong to one of the backend's frontends? */
static bool entry_matches(const struct ct_dump *d, const struct ct_entry *e)
{
	size_t len = addr_len(d->family);

	/* Not translated (a client dialling the backend itself): not ours. */
	if (!memcmp(e->dst, d->pairs[0].be.addr.bytes, len) &&
	    e->dport == htons(d->pairs[0].be.port))
		return false;
	for (size_t i = 0; i < d->n_pairs; i++) {
		const struct frontend_key *fe = &d->pairs[i].fe;

		if (e->dport != htons(fe->port))
			continue;
		if (is_unspecified(&fe->addr) || !memcmp(e->dst, fe->addr.bytes, len))
			return true;
	}
	return false;
}

static int dump_cb(const struct nlmsghdr *nlh, void *data)
{
	struct ct_dump *d = data;
	struct attr_tb top, tuple, ip, proto;
	const struct backend *be = &d->pairs[0].be;
	uint8_t reply_src[16];
	uint16_t reply_sport;
	bool v4 = d->family == AF_INET;
	size_t len = addr_len(d->family);
	struct ct_entry e = { 0 };

	if ((nlh->nlmsg_type & 0xff) != IPCTNL_MSG_CT_NEW ||
	    (nlh->nlmsg_type >> 8) != NFNL_SUBSYS_CTNETLINK)
		return MNL_CB_OK;
	memset(&top, 0, sizeof(top));
	top.max = CTA_MAX;
	if (mnl_attr_parse(nlh, sizeof(struct nfgenmsg), attr_cb, &top) < 0)
		return MNL_CB_OK;
	if (!parse_nested(top.tb[CTA_TUPLE_ORIG], &tuple, CTA_TUPLE_MAX) ||
	    !parse_nested(tuple.tb[CTA_TUPLE_IP], &ip, CTA_IP_MAX) ||
	    !parse_nested(tuple.tb[CTA_TUPLE_PROTO], &proto, CTA_PROTO_MAX))
		return MNL_CB_OK;
	if (!proto.tb[CTA_PROTO_NUM] || mnl_attr_get_u8(proto.tb[CTA_PROTO_NUM]) != d->proto)
		return MNL_CB_OK;
	if (!copy_attr(ip.tb[v4 ? CTA_IP_V4_SRC : CTA_IP_V6_SRC], e.src, len) ||
	    !copy_attr(ip.tb[v4 ? CTA_IP_V4_DST : CTA_IP_V6_DST], e.dst, len) ||
	    !copy_attr(proto.tb[CTA_PROTO_SRC_PORT], &e.sport, 2) ||
	    !copy_attr(proto.tb[CTA_PROTO_DST_PORT], &e.dport, 2))
		return MNL_CB_OK;
	/* The kernel filtered on the reply source; check it anyway (a kernel before 5.8 does not). */
	if (!parse_nested(top.tb[CTA_TUPLE_REPLY], &tuple, CTA_TUPLE_MAX) ||
	    !parse_nested(tuple.tb[CTA_TUPLE_IP], &ip, CTA_IP_MAX) ||
	    !parse_nested(tuple.tb[CTA_TUPLE_PROTO], &proto, CTA_PROTO_MAX) ||
	    !copy_attr(ip.tb[v4 ? CTA_IP_V4_SRC : CTA_IP_V6_SRC], reply_src, len) ||
	    !copy_attr(proto.tb[CTA_PROTO_SRC_PORT], &reply_sport, 2) ||
	    memcmp(reply_src, be->addr.bytes, len) || reply_sport != htons(be->port))
		return MNL_CB_OK;
	copy_attr(top.tb[CTA_ZONE], &e.zone, 2);
	e.has_id = copy_attr(top.tb[CTA_ID], &e.id, 4);
	if (!entry_matches(d, &e))
		return MNL_CB_OK;
	if (d->n == d->cap) {
		d->cap = d->cap ? 2 * d->cap : 16;
		d->entries = xreallocarray(d->entries, d->cap, sizeof(*d->entries));
	}
	d->entries[d->n++] = e;
	return MNL_CB_OK;
}

/* The entries of one backend (the kernel filters on the reply source). */
static int dump_backend(struct datapath *dp, struct ct_dump *d)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	const struct backend *be = &d->pairs[0].be;
	struct nft_ack_state st = { 0 };
	struct nlmsghdr *nlh;
	struct nlattr *filter;
	int err;

	memset(buf, 0, sizeof(buf));
	nlh = ct_msg(buf, IPCTNL_MSG_CT_GET, NLM_F_DUMP, d->family, ++dp->seq);
	put_tuple(nlh, CTA_TUPLE_REPLY, d->family, d->proto, be->addr.bytes, NULL, htons(be->port),
		  0, false);
	filter = mnl_attr_nest_start(nlh, CTA_FILTER);
	mnl_attr_put_u32(nlh, CTA_FILTER_REPLY_FLAGS,
			 CT_FILTER_IP_SRC | CT_FILTER_PROTO_NUM | CT_FILTER_PROTO_SRC_PORT);
	mnl_attr_nest_end(nlh, filter);
	st.seq_last = dp->seq;
	if (mnl_socket_sendto(dp->nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	err = nft_read_replies(dp, &st, dump_cb, d);
	return err ? err : st.err;
}

/* Deletes one entry; 1 if the kernel deleted it, 0 if it had gone, -errno otherwise. */
static int delete_entry(struct datapath *dp, const struct ct_dump *d, const struct ct_entry *e)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nft_ack_state st = { 0 };
	struct nlmsghdr *nlh;
	int err;

	memset(buf, 0, sizeof(buf));
	nlh = ct_msg(buf, IPCTNL_MSG_CT_DELETE, NLM_F_ACK, d->family, ++dp->seq);
	put_tuple(nlh, CTA_TUPLE_ORIG, d->family, d->proto, e->src, e->dst, e->sport, e->dport,
		  true);
	if (e->zone)
		mnl_attr_put(nlh, CTA_ZONE, 2, &e->zone);
	if (e->has_id)
		mnl_attr_put(nlh, CTA_ID, 4, &e->id);
	st.seq_last = dp->seq;
	if (mnl_socket_sendto(dp->nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	err = nft_read_replies(dp, &st, NULL, NULL);
	if (!err)
		err = st.err;
	if (err == -ENOENT)
		return 0; /* expired, or replaced by a new flow (another id) */
	return err ? err : 1;
}

size_t nft_ct_flush_stale(struct datapath *dp, const struct nft_ct_stale *pairs, size_t n)
{
	size_t deleted = 0, backends = 0, i = 0;
	int first_err = 0;

	while (i < n) {
		struct ct_dump d = {
			.pairs = &pairs[i],
			.family = pairs[i].be.addr.family,
			.proto = pairs[i].fe.proto,
		};
		int err;

		/* The pairs of one backend (sorted by protocol, then backend). */
		while (i + d.n_pairs < n && pairs[i + d.n_pairs].fe.proto == d.proto &&
		       pairs[i + d.n_pairs].be.port == pairs[i].be.port &&
		       ip_addr_equal(&pairs[i + d.n_pairs].be.addr, &pairs[i].be.addr))
			d.n_pairs++;
		i += d.n_pairs;
		backends++;
		err = dump_backend(dp, &d);
		for (size_t k = 0; !err && k < d.n; k++) {
			int r = delete_entry(dp, &d, &d.entries[k]);

			if (r < 0)
				err = r;
			else
				deleted += r;
		}
		if (err && !first_err)
			first_err = err;
		free(d.entries);
	}
	if (first_err)
		pr_warn("nft: conntrack: deleting the flows of removed UDP/SCTP backends failed: %s; "
			"they keep their backend until idle",
			strerror(-first_err));
	if (n)
		pr_debug("nft: conntrack: deleted %zu entries of %zu removed UDP/SCTP backends",
			 deleted, backends);
	return deleted;
}
