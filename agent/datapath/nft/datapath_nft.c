// SPDX-License-Identifier: Apache-2.0
/*
 * The nftables datapath: turns each state diff into one netlink batch for
 * table inet sluice (messages built by nft_msg.c), sends it in one
 * sendmsg() and reads the ACKs with mnl_cb_run. Layout and reading guide:
 * Documentation/nftables-datapath.md.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <time.h>
#include <netinet/in.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <libmnl/libmnl.h>
#include <libnftnl/batch.h>
#include <libnftnl/common.h>
#include <libnftnl/object.h>
#include <libnftnl/table.h>

#include "datapath/datapath.h"
#include "lib/log.h"
#include "datapath/nft/nft_msg.h"
#include "lib/strmap.h"

#ifndef NETLINK_EXT_ACK
#define NETLINK_EXT_ACK 11
#endif
#ifndef NETLINK_CAP_ACK
#define NETLINK_CAP_ACK 10
#endif

/* The kernel answers a batch synchronously; this only bounds a stuck read. */
#define ACK_TIMEOUT_SEC 30

/*
 * A Service with a rate limit: its objects (rate/admitted/limited.NS.NAME)
 * and chain (limit.NS.NAME) exist while refs > 0, refs being the
 * frontends in the kernel that carry the limit.
 */
struct svc_state {
	uint32_t refs;
	struct rate_limit rate; /* as programmed */
	/* While an apply is being built; committed only if the kernel accepts it. */
	int64_t delta;
	struct rate_limit new_rate;
	bool touched;
	char *service; /* "ns/name" */
};

/* A contiguous range of indices of a backends4/6-N map: one served frontend's backends. */
struct idx_range {
	uint32_t base, n;
};

/*
 * Index ranges of one backend map (family and shard): first fit from the freed
 * ranges (sorted, merged), else bumped past the highest range in use.
 */
struct range_alloc {
	uint32_t top; /* indices >= top are unused */
	struct idx_range *free;
	size_t n_free, cap_free;
};

/*
 * Which range each served frontend (without affinity) holds, by chain
 * name, and the allocators. A range is allocated while a batch is built
 * and freed only once the batch that stops using it is committed, so the
 * old and the new range of a frontend never overlap inside one batch.
 */
struct backend_ranges {
	struct range_alloc alloc[2][NFT_BACKEND_SHARDS]; /* [0] backends4-N, [1] backends6-N */
	struct strmap owner; /* chain name -> struct idx_range */
};

/* A range change of the apply being built, settled after the kernel's answer. */
struct range_op {
	char name[NFT_CHAIN_NAME_MAX];
	bool v6;
	unsigned int shard;
	bool is_new; /* allocated: recorded on commit, returned on failure */
	struct idx_range r; /* else: released on commit */
};

struct datapath {
	struct mnl_socket *nl;
	uint32_t portid;
	uint32_t seq;
	int sndbuf; /* SO_SNDBUF as last set, 0: the default */
	uint32_t map_serial; /* see struct nft_batch */
	struct strmap services; /* "ns/name" -> struct svc_state */
	struct svc_state **touched; /* the Services of the apply being built */
	size_t n_touched, cap_touched;
	struct backend_ranges ranges;
	struct range_op *ops; /* range changes of the apply being built */
	size_t n_ops, cap_ops;
	int ops_err; /* -ENOMEM / -ENOSPC while planning ranges */
};

static int nft_socket_open(struct datapath *dp)
{
	struct timeval tv = { .tv_sec = ACK_TIMEOUT_SEC };
	int one = 1;

	dp->nl = mnl_socket_open(NETLINK_NETFILTER);
	if (!dp->nl)
		return -errno;
	if (mnl_socket_bind(dp->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		int err = -errno;

		mnl_socket_close(dp->nl);
		dp->nl = NULL;
		return err;
	}
	/* Small error replies (no echo of our message) that still carry the kernel's reason. */
	mnl_socket_setsockopt(dp->nl, NETLINK_CAP_ACK, &one, sizeof(one));
	mnl_socket_setsockopt(dp->nl, NETLINK_EXT_ACK, &one, sizeof(one));
	setsockopt(mnl_socket_get_fd(dp->nl), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	dp->portid = mnl_socket_get_portid(dp->nl);
	dp->seq = time(NULL);
	return 0;
}

static void nft_socket_close(struct datapath *dp)
{
	if (dp->nl)
		mnl_socket_close(dp->nl);
	dp->nl = NULL;
}

/* The outcome of a batch or request, gathered from the kernel's replies. */
struct ack_state {
	uint32_t seq_last; /* the message whose reply ends the exchange */
	uint32_t err_seq; /* seq of the first error */
	int err; /* first error, -errno */
	char msg[256]; /* the kernel's extended ACK message for it */
	bool done;
};

/* Cookie of the reply callbacks: control messages fill st, data goes to data_cb. */
struct reply_ctx {
	struct ack_state *st;
	mnl_cb_t data_cb;
	void *data;
};

static int ack_error_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);
	struct ack_state *st = ((struct reply_ctx *)data)->st;

	if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(*e))) {
		errno = EBADMSG;
		return MNL_CB_ERROR;
	}
	if (e->error && !st->err) {
		size_t off = sizeof(*e);
		const struct nlattr *attr;

		st->err = e->error;
		st->err_seq = nlh->nlmsg_seq;
		/* With NETLINK_CAP_ACK only the header of our message comes back. */
		if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
			off += e->msg.nlmsg_len - sizeof(e->msg);
		if ((nlh->nlmsg_flags & NLM_F_ACK_TLVS) && off < mnl_nlmsg_get_payload_len(nlh)) {
			mnl_attr_for_each_payload((void *)((const char *)e + off),
						  mnl_nlmsg_get_payload_len(nlh) - off)
			{
				if (mnl_attr_get_type(attr) == NLMSGERR_ATTR_MSG &&
				    mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) == 0)
					snprintf(st->msg, sizeof(st->msg), "%s",
						 mnl_attr_get_str(attr));
			}
		}
	}
	/* Errors of earlier messages come first; keep reading until our last reply. */
	if (nlh->nlmsg_seq == st->seq_last) {
		st->done = true;
		return MNL_CB_STOP;
	}
	return MNL_CB_OK;
}

static int ack_done_cb(const struct nlmsghdr *nlh, void *data)
{
	((struct reply_ctx *)data)->st->done = true;
	return MNL_CB_STOP;
}

static int reply_data_cb(const struct nlmsghdr *nlh, void *data)
{
	struct reply_ctx *ctx = data;

	return ctx->data_cb ? ctx->data_cb(nlh, ctx->data) : MNL_CB_OK;
}

/*
 * Reads replies with mnl_cb_run2 until the one for st->seq_last (an ACK,
 * an error, or the end of a dump). data_cb sees every data message.
 * Returns 0 or -errno of the socket; the kernel's verdict is in st.
 */
static int read_replies(struct datapath *dp, struct ack_state *st, mnl_cb_t data_cb, void *data)
{
	static mnl_cb_t ctl[NLMSG_MIN_TYPE] = {
		[NLMSG_ERROR] = ack_error_cb,
		[NLMSG_DONE] = ack_done_cb,
	};
	struct reply_ctx ctx = { .st = st, .data_cb = data_cb, .data = data };
	char *buf = malloc(MNL_SOCKET_BUFFER_SIZE);
	int ret = 0;

	if (!buf)
		return -ENOMEM;
	while (!st->done) {
		ssize_t n = mnl_socket_recvfrom(dp->nl, buf, MNL_SOCKET_BUFFER_SIZE);

		if (n < 0) {
			ret = -errno;
			break;
		}
		if (mnl_cb_run2(buf, n, 0, dp->portid, reply_data_cb, &ctx, ctl, NLMSG_MIN_TYPE) <
		    0) {
			ret = -errno;
			break;
		}
	}
	free(buf);
	return ret;
}

static int ensure_sndbuf(struct datapath *dp, size_t len)
{
	int want;

	/* The whole batch goes in one skb: the socket must accept it at once. */
	if (len + 4096 <= (size_t)dp->sndbuf || len < 64 * 1024)
		return 0;
	if (len > (size_t)(1 << 30))
		return -EMSGSIZE;
	want = len + 64 * 1024;
	if (setsockopt(mnl_socket_get_fd(dp->nl), SOL_SOCKET, SO_SNDBUFFORCE, &want,
		       sizeof(want)) &&
	    setsockopt(mnl_socket_get_fd(dp->nl), SOL_SOCKET, SO_SNDBUF, &want, sizeof(want)))
		return -errno;
	dp->sndbuf = want;
	return 0;
}

/* Sends a finished batch in one sendmsg and reads the kernel's verdict. */
static int send_batch(struct datapath *dp, struct nft_batch *b, const char *what)
{
	struct sockaddr_nl addr = { .nl_family = AF_NETLINK };
	struct ack_state st = { .seq_last = b->seq - 2 }; /* the last message before END */
	int n_iov = nftnl_batch_iovec_len(b->nb);
	struct msghdr msg = { 0 };
	struct iovec *iov;
	size_t len = 0;
	char text[160];
	int err;

	if (!b->n_msgs)
		return 0;
	if (n_iov > IOV_MAX) {
		pr_warn("nft: %s: batch of %zu messages needs %d pages, more than sendmsg takes",
			what, b->n_msgs, n_iov);
		return -EMSGSIZE;
	}
	iov = calloc(n_iov, sizeof(*iov));
	if (!iov)
		return -ENOMEM;
	nftnl_batch_iovec(b->nb, iov, n_iov);
	for (int i = 0; i < n_iov; i++)
		len += iov[i].iov_len;
	err = ensure_sndbuf(dp, len);
	if (err) {
		pr_warn("nft: %s: cannot size the socket for a %zu-byte batch: %s", what, len,
			strerror(-err));
		goto out;
	}
	msg.msg_name = &addr;
	msg.msg_namelen = sizeof(addr);
	msg.msg_iov = iov;
	msg.msg_iovlen = n_iov;
	if (sendmsg(mnl_socket_get_fd(dp->nl), &msg, 0) < 0) {
		err = -errno;
		pr_warn("nft: %s: sendmsg of %zu bytes failed: %s", what, len, strerror(-err));
		goto out;
	}
	err = read_replies(dp, &st, NULL, NULL);
	if (err) {
		pr_warn("nft: %s: reading the kernel's answer failed: %s", what, strerror(-err));
		goto out;
	}
	if (st.err) {
		const struct nft_msg_ref *ref = nft_batch_ref(b, st.err_seq);

		err = st.err;
		if (ref)
			nft_msg_ref_text(ref, text, sizeof(text));
		else
			snprintf(text, sizeof(text), "message %u", st.err_seq);
		pr_warn("nft: %s: %s failed: %s%s%s; nothing was changed", what, text,
			strerror(-err), st.msg[0] ? ": " : "", st.msg);
		goto out;
	}
	pr_debug("nft: %s: committed %zu messages, %zu bytes", what, b->n_msgs, len);
out:
	free(iov);
	return err;
}

/* Asks for table sluice. 0: it exists, -ENOENT: nf_tables answered without it. */
static int get_table(struct datapath *dp)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct ack_state st = { 0 };
	struct nftnl_table *t = nftnl_table_alloc();
	struct nlmsghdr *nlh;
	int err;

	if (!t)
		return -ENOMEM;
	memset(buf, 0, sizeof(buf)); /* libmnl 1.0.4 leaves attribute padding unset */
	nftnl_table_set_str(t, NFTNL_TABLE_NAME, NFT_TABLE_NAME);
	nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETTABLE, NFPROTO_INET, NLM_F_ACK, ++dp->seq);
	nftnl_table_nlmsg_build_payload(nlh, t);
	nftnl_table_free(t);
	st.seq_last = dp->seq;
	if (mnl_socket_sendto(dp->nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	err = read_replies(dp, &st, NULL, NULL);
	return err ? err : st.err;
}

/* ---- index ranges of the backends4/6-N maps ---- */

static void ranges_init(struct backend_ranges *br)
{
	memset(br, 0, sizeof(*br));
	strmap_init(&br->owner);
}

static void ranges_destroy(struct backend_ranges *br)
{
	struct strmap_iter it;

	for (struct strmap_entry *e = strmap_first(&br->owner, &it); e;
	     e = strmap_next(&br->owner, &it))
		free(e->value);
	strmap_destroy(&br->owner);
	for (int v6 = 0; v6 < 2; v6++)
		for (int shard = 0; shard < NFT_BACKEND_SHARDS; shard++)
			free(br->alloc[v6][shard].free);
}

/* First fit among the freed ranges, else past the top. Returns 0 or -ENOSPC / -ENOMEM. */
static int range_get(struct range_alloc *a, uint32_t n, uint32_t *base)
{
	for (size_t i = 0; i < a->n_free; i++) {
		struct idx_range *f = &a->free[i];

		if (f->n < n)
			continue;
		*base = f->base;
		f->base += n;
		f->n -= n;
		if (!f->n) {
			memmove(f, f + 1, (a->n_free - i - 1) * sizeof(*f));
			a->n_free--;
		}
		return 0;
	}
	/* numgen's offset + modulus - 1 must stay within 32 bits. */
	if ((uint64_t)a->top + n > UINT32_MAX)
		return -ENOSPC;
	*base = a->top;
	a->top += n;
	return 0;
}

/* Gives a range back: merged with its neighbours, or lowering the top. */
static int range_put(struct range_alloc *a, struct idx_range r)
{
	size_t i = 0;

	while (i < a->n_free && a->free[i].base < r.base)
		i++;
	if (i > 0 && a->free[i - 1].base + a->free[i - 1].n == r.base) {
		a->free[i - 1].n += r.n;
		i--;
	} else {
		if (a->n_free == a->cap_free) {
			size_t cap = a->cap_free ? 2 * a->cap_free : 64;
			struct idx_range *f = realloc(a->free, cap * sizeof(*f));

			if (!f)
				return -ENOMEM; /* the indices stay unused: a leak, not a clash */
			a->free = f;
			a->cap_free = cap;
		}
		memmove(&a->free[i + 1], &a->free[i], (a->n_free - i) * sizeof(*a->free));
		a->free[i] = r;
		a->n_free++;
	}
	/* free[i] now holds r; join the next range if it touches. */
	if (i + 1 < a->n_free && a->free[i].base + a->free[i].n == a->free[i + 1].base) {
		a->free[i].n += a->free[i + 1].n;
		memmove(&a->free[i + 1], &a->free[i + 2], (a->n_free - i - 2) * sizeof(*a->free));
		a->n_free--;
	}
	if (a->free[i].base + a->free[i].n == a->top) {
		a->top = a->free[i].base;
		a->n_free--;
	}
	return 0;
}

static struct range_op *range_op_new(struct datapath *dp, const struct frontend *fe)
{
	struct range_op *op;

	if (dp->n_ops == dp->cap_ops) {
		size_t cap = dp->cap_ops ? 2 * dp->cap_ops : 64;
		struct range_op *ops = realloc(dp->ops, cap * sizeof(*ops));

		if (!ops) {
			dp->ops_err = -ENOMEM;
			return NULL;
		}
		dp->ops = ops;
		dp->cap_ops = cap;
	}
	op = &dp->ops[dp->n_ops++];
	memset(op, 0, sizeof(*op));
	nft_fe_chain_name(&fe->key, op->name, sizeof(op->name));
	op->v6 = fe->key.addr.family == AF_INET6;
	op->shard = nft_fe_backend_shard(&fe->key);
	return op;
}

/* A new range for fe's usable backends; false (dp->ops_err set) if none. */
static bool range_alloc_for(struct datapath *dp, const struct frontend *fe, uint32_t *base)
{
	uint32_t n = nft_fe_usable_backends(fe);
	bool v6 = fe->key.addr.family == AF_INET6;
	struct range_alloc *a = &dp->ranges.alloc[v6][nft_fe_backend_shard(&fe->key)];
	struct range_op *op;
	int err;

	err = range_get(a, n, base);
	if (err) {
		char key[96];

		nft_fe_key_text(&fe->key, key, sizeof(key));
		pr_warn("nft: %s: no room for %u backends in %s", key, n,
			v6 ? NFT_BACKENDS6 : NFT_BACKENDS4);
		dp->ops_err = err;
		return false;
	}
	op = range_op_new(dp, fe);
	if (!op) {
		range_put(a, (struct idx_range){ *base, n });
		return false;
	}
	op->is_new = true;
	op->r = (struct idx_range){ *base, n };
	return true;
}

/* The range fe holds in the kernel (NULL: none, e.g. with affinity). */
static const struct idx_range *range_of(struct datapath *dp, const struct frontend *fe)
{
	char name[NFT_CHAIN_NAME_MAX];

	nft_fe_chain_name(&fe->key, name, sizeof(name));
	return strmap_get(&dp->ranges.owner, name);
}

/* fe's range is released once the batch commits. */
static void range_release(struct datapath *dp, const struct frontend *fe, const struct idx_range *r)
{
	struct range_op *op = range_op_new(dp, fe);

	if (op)
		op->r = *r;
}

/*
 * After the kernel's answer. Committed: released ranges go back to the
 * allocator, new ones are recorded. Refused: the new ones go back, the
 * kernel still holds the old ones.
 */
static void ranges_finish(struct datapath *dp, bool ok)
{
	struct strmap *owner = &dp->ranges.owner;

	for (size_t i = 0; i < dp->n_ops && ok; i++) {
		struct range_op *op = &dp->ops[i];

		if (op->is_new)
			continue;
		range_put(&dp->ranges.alloc[op->v6][op->shard], op->r);
		free(strmap_remove(owner, op->name));
	}
	for (size_t i = 0; i < dp->n_ops; i++) {
		struct range_op *op = &dp->ops[i];
		struct idx_range *r;

		if (!op->is_new)
			continue;
		if (!ok) {
			range_put(&dp->ranges.alloc[op->v6][op->shard], op->r);
			continue;
		}
		r = malloc(sizeof(*r));
		if (!r) {
			/* Forgotten: the frontend's next change allocates anew, its range leaks. */
			pr_warn("nft: out of memory recording the backend range of %s", op->name);
			continue;
		}
		*r = op->r;
		free(strmap_put(owner, op->name, r));
	}
	dp->n_ops = 0;
	dp->ops_err = 0;
}

static int nft_open(const struct datapath_config *cfg, struct datapath **out, char *why,
		    size_t why_len)
{
	struct datapath *dp = calloc(1, sizeof(*dp));
	int err;

	*out = NULL;
	if (!dp) {
		snprintf(why, why_len, "out of memory");
		return -ENOMEM;
	}
	err = nft_socket_open(dp);
	if (err) {
		snprintf(why, why_len, "cannot open a netfilter netlink socket: %s",
			 strerror(-err));
		free(dp);
		return err;
	}
	err = get_table(dp);
	if (err && err != -ENOENT) {
		snprintf(why, why_len, "nf_tables does not answer (get table inet %s): %s",
			 NFT_TABLE_NAME, strerror(-err));
		nft_socket_close(dp);
		free(dp);
		return err;
	}
	pr_info("nft: table inet %s %s; the first apply rebuilds it in one transaction",
		NFT_TABLE_NAME, err ? "absent" : "present");
	strmap_init(&dp->services);
	ranges_init(&dp->ranges);
	*out = dp;
	return 0;
}

static void services_clear(struct datapath *dp)
{
	struct strmap_iter it;

	for (struct strmap_entry *e = strmap_first(&dp->services, &it); e;
	     e = strmap_next(&dp->services, &it)) {
		struct svc_state *svc = e->value;

		free(svc->service);
		free(svc);
	}
	strmap_destroy(&dp->services);
	strmap_init(&dp->services);
}

static void nft_close(struct datapath *dp)
{
	if (!dp)
		return;
	nft_socket_close(dp);
	services_clear(dp);
	strmap_destroy(&dp->services);
	ranges_destroy(&dp->ranges);
	free(dp->ops);
	free(dp->touched);
	free(dp);
}

/* ---- stateful objects: reading them back (read_stats, adoption) ---- */

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
	struct nftnl_obj *o = nftnl_obj_alloc();
	struct obj_values v = { 0 };

	if (!o)
		return MNL_CB_ERROR;
	if (nftnl_obj_nlmsg_parse(nlh, o) == 0 && nftnl_obj_is_set(o, NFTNL_OBJ_NAME) &&
	    !strcmp(nftnl_obj_get_str(o, NFTNL_OBJ_TABLE), NFT_TABLE_NAME)) {
		v.kind = nft_svc_parse_name(nftnl_obj_get_str(o, NFTNL_OBJ_NAME), v.service,
					    sizeof(v.service));
		switch (nftnl_obj_get_u32(o, NFTNL_OBJ_TYPE)) {
		case NFT_OBJECT_COUNTER:
			if (v.kind != NFT_SVC_ADMITTED && v.kind != NFT_SVC_LIMITED)
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
	struct nftnl_obj *o = nftnl_obj_alloc();
	struct ack_state st = { 0 };
	struct nlmsghdr *nlh;
	int err;

	if (!o)
		return -ENOMEM;
	memset(buf, 0, sizeof(buf)); /* libmnl 1.0.4 leaves attribute padding unset */
	nftnl_obj_set_str(o, NFTNL_OBJ_TABLE, NFT_TABLE_NAME);
	nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETOBJ, NFPROTO_INET, NLM_F_DUMP | NLM_F_ACK,
				    ++dp->seq);
	nftnl_obj_nlmsg_build_payload(nlh, o);
	nftnl_obj_free(o);
	st.seq_last = dp->seq;
	if (mnl_socket_sendto(dp->nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	err = read_replies(dp, &st, obj_dump_data_cb, &ctx);
	return err ? err : st.err;
}

/* Old counter values by object name, for a full sync to start from. */
struct old_counter {
	uint64_t pkts, bytes;
};

static void collect_counter(const struct obj_values *v, void *data)
{
	char name[NFT_OBJ_NAME_MAX];
	struct old_counter *c;

	if (v->kind != NFT_SVC_ADMITTED && v->kind != NFT_SVC_LIMITED)
		return;
	if (!nft_svc_name(v->kind, v->service, name, sizeof(name)))
		return;
	c = malloc(sizeof(*c));
	if (!c)
		return;
	c->pkts = v->pkts;
	c->bytes = v->bytes;
	free(strmap_put(data, name, c));
}

static struct old_counter old_counter_get(const struct strmap *old, enum nft_svc_name which,
					  const char *service)
{
	struct old_counter zero = { 0 }, *c;
	char name[NFT_OBJ_NAME_MAX];

	if (!old || !nft_svc_name(which, service, name, sizeof(name)))
		return zero;
	c = strmap_get(old, name);
	return c ? *c : zero;
}

static void old_counters_free(struct strmap *old)
{
	struct strmap_iter it;

	for (struct strmap_entry *e = strmap_first(old, &it); e; e = strmap_next(old, &it))
		free(e->value);
	strmap_destroy(old);
}

/* ---- per-Service bookkeeping of one apply ---- */

static struct svc_state *svc_touch(struct datapath *dp, const char *service)
{
	struct svc_state *svc = strmap_get(&dp->services, service);

	if (!svc) {
		svc = calloc(1, sizeof(*svc));
		if (!svc)
			return NULL;
		svc->service = strdup(service);
		if (!svc->service) {
			free(svc);
			return NULL;
		}
		strmap_put(&dp->services, service, svc);
	}
	if (!svc->touched) {
		if (dp->n_touched == dp->cap_touched) {
			size_t cap = dp->cap_touched ? 2 * dp->cap_touched : 64;
			struct svc_state **t = realloc(dp->touched, cap * sizeof(*t));

			if (!t)
				return NULL;
			dp->touched = t;
			dp->cap_touched = cap;
		}
		dp->touched[dp->n_touched++] = svc;
		svc->touched = true;
		svc->delta = 0;
		svc->new_rate = svc->rate;
	}
	return svc;
}

/* Counts, per Service, the frontends carrying a limit that the diff removes and adds. */
static int svc_plan(struct datapath *dp, const struct state_diff *diff)
{
	for (size_t i = 0; i < diff->n_changes; i++) {
		const struct frontend *old = diff->changes[i].old, *new = diff->changes[i].new;
		struct svc_state *svc;

		if (old && nft_fe_has_rate(old) && !diff->full) {
			svc = svc_touch(dp, old->service);
			if (!svc)
				return -ENOMEM;
			svc->delta--;
		}
		if (new &&nft_fe_has_rate(new)) {
			svc = svc_touch(dp, new->service);
			if (!svc)
				return -ENOMEM;
			svc->delta++;
			svc->new_rate = new->rate;
		}
	}
	return 0;
}

static bool rate_equal(const struct rate_limit *a, const struct rate_limit *b)
{
	return a->count == b->count && a->period == b->period && a->burst == b->burst;
}

static void svc_warn_clamped(const struct svc_state *svc)
{
	uint32_t burst = nft_limit_kernel_burst(&svc->new_rate);

	if (burst != svc->new_rate.burst)
		pr_warn("nft: Service %s: burst %u at %u/%us exceeds nft_limit's 64-bit bucket; "
			"using burst %u",
			svc->service, svc->new_rate.burst, svc->new_rate.count,
			svc->new_rate.period, burst);
}

/* Adds the objects of Services that gain their first limited frontend, updates changed limits. */
static void svc_build_adds(struct datapath *dp, struct nft_batch *b, const struct strmap *old)
{
	for (size_t i = 0; i < dp->n_touched; i++) {
		struct svc_state *svc = dp->touched[i];
		int64_t after = (int64_t)svc->refs + svc->delta;

		if (svc->refs == 0 && after > 0) {
			struct old_counter a = old_counter_get(old, NFT_SVC_ADMITTED, svc->service);
			struct old_counter l = old_counter_get(old, NFT_SVC_LIMITED, svc->service);

			svc_warn_clamped(svc);
			nft_msg_svc_add(b, svc->service, &svc->new_rate, a.pkts, a.bytes, l.pkts,
					l.bytes);
		} else if (svc->refs > 0 && after > 0 && !rate_equal(&svc->rate, &svc->new_rate)) {
			svc_warn_clamped(svc);
			nft_msg_svc_update(b, svc->service, &svc->new_rate);
		}
	}
}

/* Deletes the objects of Services whose last limited frontend went (after the chain work). */
static void svc_build_dels(struct datapath *dp, struct nft_batch *b)
{
	for (size_t i = 0; i < dp->n_touched; i++) {
		struct svc_state *svc = dp->touched[i];

		if (svc->refs > 0 && (int64_t)svc->refs + svc->delta <= 0)
			nft_msg_svc_del(b, svc->service);
	}
}

/* After the kernel's answer: keep the new counts (ok) or forget the plan. */
static void svc_finish(struct datapath *dp, bool ok)
{
	for (size_t i = 0; i < dp->n_touched; i++) {
		struct svc_state *svc = dp->touched[i];

		svc->touched = false;
		if (ok) {
			svc->refs = (int64_t)svc->refs + svc->delta > 0 ? svc->refs + svc->delta :
									  0;
			svc->rate = svc->new_rate;
		}
		/* A Service without objects is not remembered. */
		if (!svc->refs) {
			strmap_remove(&dp->services, svc->service);
			free(svc->service);
			free(svc);
		}
	}
	dp->n_touched = 0;
}

/*
 * A served frontend's whole programming: endpoint chains (affinity) or its
 * range of its backends4/6-N map, its chain, its rules. A full sync defers
 * writing the range's elements (defer_backends, base returned in base_out)
 * until every rule is written.
 */
static void add_served(struct datapath *dp, struct nft_batch *b, const struct frontend *fe,
		       bool defer_backends, uint32_t *base_out)
{
	uint32_t base = 0;

	if (nft_fe_has_affinity(fe)) {
		for (size_t i = 0; i < fe->n_backends; i++)
			nft_msg_ep_add(b, fe, &fe->backends[i]);
	} else {
		if (!range_alloc_for(dp, fe, &base))
			return;
		if (!defer_backends)
			nft_msg_fe_backends(b, NFT_MSG_NEWSETELEM, fe, base);
	}
	nft_msg_fe_chain_add(b, &fe->key);
	nft_msg_fe_rules(b, fe, base);
	if (base_out)
		*base_out = base;
}

/*
 * Deleting the frontend's chain drops its references; then its endpoint
 * chains and sets, or its range of its backends4/6-N map.
 */
static void remove_served(struct datapath *dp, struct nft_batch *b, const struct frontend *fe)
{
	const struct idx_range *r = range_of(dp, fe);

	nft_msg_fe_chain_del(b, &fe->key);
	if (nft_fe_has_affinity(fe))
		for (size_t i = 0; i < fe->n_backends; i++)
			nft_msg_ep_del(b, fe, &fe->backends[i]);
	if (r) {
		nft_msg_fe_backends(b, NFT_MSG_DELSETELEM, fe, r->base);
		range_release(dp, fe, r);
	}
}

/*
 * Full sync: add the table (a no-op if present), delete it, build it again,
 * all in one batch. Traffic sees the old ruleset or the new one, never none.
 * Counters start from the values of the old table (old, read just before).
 */
static void build_full(struct datapath *dp, struct nft_batch *b, const struct state_diff *diff,
		       const struct strmap *old)
{
	uint32_t *bases = calloc(diff->n_changes ? diff->n_changes : 1, sizeof(*bases));

	if (!bases) {
		dp->ops_err = -ENOMEM;
		return;
	}
	nft_msg_table_add(b);
	nft_msg_table_del(b);
	nft_msg_table_add(b);
	nft_msg_skeleton(b);
	svc_build_adds(dp, b, old);
	for (size_t i = 0; i < diff->n_changes; i++) {
		const struct frontend *fe = diff->changes[i].new;

		if (fe && nft_fe_classify(fe) == NFT_FE_SERVE)
			add_served(dp, b, fe, true, &bases[i]);
		if (fe)
			nft_msg_fw_add(b, fe);
	}
	/*
	 * The backends after every rule: the kernel checks a map's elements
	 * each time a rule binds it (a walk of the whole map) and each rule's
	 * binding each time an element is added (a list step). Binding while
	 * the map is empty leaves only the cheaper of the two.
	 */
	for (size_t i = 0; i < diff->n_changes; i++) {
		const struct frontend *fe = diff->changes[i].new;

		if (fe && nft_fe_classify(fe) == NFT_FE_SERVE && !nft_fe_has_affinity(fe))
			nft_msg_fe_backends(b, NFT_MSG_NEWSETELEM, fe, bases[i]);
	}
	free(bases);
	for (size_t i = 0; i < diff->n_changes; i++) {
		if (diff->changes[i].new) {
			nft_batch_queue_elem(b, NFT_MSG_NEWSETELEM, diff->changes[i].new);
			nft_batch_queue_fw_elem(b, NFT_MSG_NEWSETELEM, diff->changes[i].new);
		}
	}
	nft_batch_flush_elems(b);
}

static int backend_cmp(const struct backend *a, const struct backend *b)
{
	int cmp = ip_addr_cmp(&a->addr, &b->addr);

	if (cmp)
		return cmp;
	return a->port < b->port ? -1 : a->port > b->port;
}

static bool same_backends(const struct frontend *a, const struct frontend *b)
{
	if (a->n_backends != b->n_backends || a->key.proto != b->key.proto)
		return false;
	for (size_t i = 0; i < a->n_backends; i++)
		if (backend_cmp(&a->backends[i], &b->backends[i]))
			return false;
	return true;
}

static bool same_limit_jump(const struct frontend *a, const struct frontend *b)
{
	if (nft_fe_has_rate(a) != nft_fe_has_rate(b))
		return false;
	return !nft_fe_has_rate(a) || !strcmp(a->service, b->service);
}

/* How one change is carried out. */
enum change_plan {
	PLAN_NOTHING, /* same programming */
	PLAN_REPLACE_RULE, /* served before and after: flush the chain, write it again */
	PLAN_REMOVE_ADD, /* remove the old programming, add the new */
};

static enum change_plan plan_change(const struct frontend *old, const struct frontend *new)
{
	enum nft_fe_class co, cn;

	if (!old || !new || frontend_key_cmp(&old->key, &new->key))
		return PLAN_REMOVE_ADD;
	co = nft_fe_classify(old);
	cn = nft_fe_classify(new);
	if (co != cn)
		return PLAN_REMOVE_ADD;
	if (co != NFT_FE_SERVE)
		return PLAN_NOTHING;
	/* A new limit value alone changes only the Service's objects, not this chain. */
	if (same_backends(old, new) && old->affinity_timeout == new->affinity_timeout &&
	    same_limit_jump(old, new) && nft_fe_masquerades(old) == nft_fe_masquerades(new))
		return PLAN_NOTHING;
	return PLAN_REPLACE_RULE;
}

/*
 * The source-range firewall of a LB frontend lives beside its class
 * (a refused or dropped frontend keeps it too): removed, added, or, with
 * the same key on both sides, its set refilled when the ranges changed.
 */
struct fw_plan {
	bool del, add, update;
};

static struct fw_plan plan_firewall(const struct frontend *old, const struct frontend *new)
{
	bool had = old && nft_fe_has_firewall(old), has = new &&nft_fe_has_firewall(new);
	struct fw_plan p = { 0 };

	if (had && has && !frontend_key_cmp(&old->key, &new->key)) {
		p.update = !nft_fw_same_ranges(old, new);
		return p;
	}
	p.del = had;
	p.add = has;
	return p;
}

/*
 * Endpoint chains of a served frontend whose backends or affinity changed:
 * kept for backends in both (their clients stay remembered), deleted for
 * backends that went, added for new ones. A new timeout re-creates them
 * all (the kernel cannot change a set's timeout). Backends are sorted.
 */
static void replace_endpoints(struct nft_batch *b, const struct frontend *old,
			      const struct frontend *new)
{
	bool old_aff = nft_fe_has_affinity(old), new_aff = nft_fe_has_affinity(new);
	size_t i = 0, j = 0;

	if (!old_aff || !new_aff || old->affinity_timeout != new->affinity_timeout) {
		if (old_aff)
			for (i = 0; i < old->n_backends; i++)
				nft_msg_ep_del(b, old, &old->backends[i]);
		if (new_aff)
			for (j = 0; j < new->n_backends; j++)
				nft_msg_ep_add(b, new, &new->backends[j]);
		return;
	}
	while (i < old->n_backends || j < new->n_backends) {
		int cmp = i == old->n_backends ? 1 :
			  j == new->n_backends ? -1 :
						 backend_cmp(&old->backends[i], &new->backends[j]);

		if (cmp < 0)
			nft_msg_ep_del(b, old, &old->backends[i++]);
		else if (cmp > 0)
			nft_msg_ep_add(b, new, &new->backends[j++]);
		else
			i++, j++;
	}
}

/*
 * A served frontend whose chain is written again (flushed and refilled in
 * this batch). Without affinity and with the same backends it keeps its
 * range; new backends get a new range, added before the rule that uses it,
 * and the old range's elements are deleted after it, in the same batch.
 */
static void replace_served(struct datapath *dp, struct nft_batch *b, const struct frontend *old,
			   const struct frontend *new)
{
	const struct idx_range *r = range_of(dp, old);
	bool keep = r && !nft_fe_has_affinity(new) && same_backends(old, new);
	uint32_t base = keep ? r->base : 0;

	if (!keep && !nft_fe_has_affinity(new)) {
		if (!range_alloc_for(dp, new, &base))
			return;
		nft_msg_fe_backends(b, NFT_MSG_NEWSETELEM, new, base);
	}
	/* One transaction: packets see the old rules or the new ones. */
	nft_msg_fe_chain_flush(b, &new->key);
	replace_endpoints(b, old, new);
	nft_msg_fe_rules(b, new, base);
	if (r && !keep) {
		nft_msg_fe_backends(b, NFT_MSG_DELSETELEM, old, r->base);
		range_release(dp, old, r);
	}
}

/*
 * Incremental: only the frontends in the diff. Element deletions first (so
 * the chains they point to lose their last reference), then Services that
 * gain a limit or change it, then chain work, then Services that lose
 * their limit (no chain jumps to them any more), then element additions
 * (pointing to chains that now exist).
 */
static void build_incremental(struct datapath *dp, struct nft_batch *b,
			      const struct state_diff *diff)
{
	for (size_t i = 0; i < diff->n_changes; i++) {
		const struct frontend_change *ch = &diff->changes[i];

		if (ch->old && plan_change(ch->old, ch->new) == PLAN_REMOVE_ADD)
			nft_batch_queue_elem(b, NFT_MSG_DELSETELEM, ch->old);
		if (plan_firewall(ch->old, ch->new).del)
			nft_batch_queue_fw_elem(b, NFT_MSG_DELSETELEM, ch->old);
	}
	nft_batch_flush_elems(b);
	svc_build_adds(dp, b, NULL);
	for (size_t i = 0; i < diff->n_changes; i++) {
		const struct frontend_change *ch = &diff->changes[i];
		struct fw_plan fw = plan_firewall(ch->old, ch->new);

		if (fw.del)
			nft_msg_fw_del(b, &ch->old->key);
		if (fw.add)
			nft_msg_fw_add(b, ch->new);
		if (fw.update)
			nft_msg_fw_update(b, ch->new);
		if (fw.add)
			nft_batch_queue_fw_elem(b, NFT_MSG_NEWSETELEM, ch->new);
		switch (plan_change(ch->old, ch->new)) {
		case PLAN_NOTHING:
			break;
		case PLAN_REPLACE_RULE:
			replace_served(dp, b, ch->old, ch->new);
			break;
		case PLAN_REMOVE_ADD:
			if (ch->old && nft_fe_classify(ch->old) == NFT_FE_SERVE)
				remove_served(dp, b, ch->old);
			if (ch->new &&nft_fe_classify(ch->new) == NFT_FE_SERVE)
				add_served(dp, b, ch->new, false, NULL);
			if (ch->new)
				nft_batch_queue_elem(b, NFT_MSG_NEWSETELEM, ch->new);
			break;
		}
	}
	svc_build_dels(dp, b);
	nft_batch_flush_elems(b);
}

static int nft_apply(struct datapath *dp, const struct state_diff *diff)
{
	struct backend_ranges before;
	struct strmap old_counters;
	struct nft_batch b;
	int err;

	memset(&before, 0, sizeof(before));
	strmap_init(&old_counters);
	if (diff->full) {
		/* Adoption: the rebuilt table's counters continue from the old table's. */
		err = dump_objects(dp, collect_counter, &old_counters);
		if (err && err != -ENOENT)
			pr_warn("nft: full sync: cannot read the old counters (%s); they restart "
				"at 0",
				strerror(-err));
		services_clear(dp);
		/*
		 * The rebuilt table starts with empty backend maps: so do the
		 * ranges. The old ones come back if the kernel refuses the batch.
		 */
		before = dp->ranges;
		ranges_init(&dp->ranges);
	}
	err = svc_plan(dp, diff);
	if (err)
		goto out_plan;
	err = nft_batch_init(&b, ++dp->seq);
	if (err)
		goto out_plan;
	/* A full sync deletes every old map in the same batch: names may start over. */
	b.map_serial = diff->full ? 0 : dp->map_serial;
	if (diff->full)
		build_full(dp, &b, diff, &old_counters);
	else
		build_incremental(dp, &b, diff);
	err = nft_batch_finish(&b);
	if (!err)
		err = dp->ops_err;
	dp->seq = b.seq;
	if (!diff->full || b.map_serial > dp->map_serial)
		dp->map_serial = b.map_serial;
	if (err) {
		pr_warn("nft: building the batch for %zu changes failed: %s", diff->n_changes,
			strerror(-err));
		goto out;
	}
	err = send_batch(dp, &b, diff->full ? "full sync" : "update");
	if (!err)
		pr_debug("nft: applied %zu changes%s", diff->n_changes,
			 diff->full ? " (full sync)" : "");
out:
	nft_batch_free(&b);
out_plan:
	svc_finish(dp, !err);
	ranges_finish(dp, !err);
	if (diff->full && err) {
		ranges_destroy(&dp->ranges);
		dp->ranges = before;
	} else if (diff->full) {
		ranges_destroy(&before);
	}
	old_counters_free(&old_counters);
	return err;
}

static int nft_cleanup(const struct datapath_config *cfg)
{
	struct datapath dp = { 0 };
	struct nft_batch b;
	int err;

	err = nft_socket_open(&dp);
	if (err) {
		pr_warn("nft: cleanup: cannot open a netfilter netlink socket: %s", strerror(-err));
		return err;
	}
	err = nft_batch_init(&b, ++dp.seq);
	if (err)
		goto out;
	/* Adding first makes the delete succeed whether the table was there or not. */
	nft_msg_table_add(&b);
	nft_msg_table_del(&b);
	err = nft_batch_finish(&b);
	if (!err)
		err = send_batch(&dp, &b, "cleanup");
	nft_batch_free(&b);
out:
	nft_socket_close(&dp);
	return err;
}

static bool nft_present(const struct datapath_config *cfg)
{
	struct datapath dp = { 0 };
	bool present;

	if (nft_socket_open(&dp))
		return false;
	present = get_table(&dp) == 0;
	nft_socket_close(&dp);
	return present;
}

struct stats_list {
	struct service_stats *v;
	size_t n, cap;
	struct strmap index; /* "ns/name" -> entry number + 1 */
	int err;
};

static void stats_collect(const struct obj_values *v, void *data)
{
	struct stats_list *l = data;
	struct service_stats *st = NULL;
	uintptr_t at = (uintptr_t)strmap_get(&l->index, v->service);

	if (at)
		st = &l->v[at - 1];
	if (!st) {
		if (l->n == l->cap) {
			size_t cap = l->cap ? 2 * l->cap : 16;
			struct service_stats *nv = realloc(l->v, cap * sizeof(*nv));

			if (!nv) {
				l->err = -ENOMEM;
				return;
			}
			l->v = nv;
			l->cap = cap;
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

/*
 * Every Service's limit and counters, read from the objects of table
 * sluice over a fresh socket (sluicectl runs beside the agent). The
 * counters count the first packet of each flow: packets = flows.
 */
static int nft_read_stats(const struct datapath_config *cfg, struct service_stats **out, size_t *n)
{
	struct datapath dp = { 0 };
	struct stats_list l = { 0 };
	int err;

	*out = NULL;
	*n = 0;
	err = nft_socket_open(&dp);
	if (err)
		return err;
	strmap_init(&l.index);
	err = dump_objects(&dp, stats_collect, &l);
	strmap_destroy(&l.index);
	nft_socket_close(&dp);
	if (!err)
		err = l.err;
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

const struct datapath_ops nft_datapath_ops = {
	.name = "nftables",
	.open = nft_open,
	.apply = nft_apply,
	.close = nft_close,
	.cleanup = nft_cleanup,
	.present = nft_present,
	.read_stats = nft_read_stats,
};
