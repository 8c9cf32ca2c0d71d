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
#include <libnftnl/table.h>

#include "datapath.h"
#include "log.h"
#include "nft_msg.h"

#ifndef NETLINK_EXT_ACK
#define NETLINK_EXT_ACK 11
#endif
#ifndef NETLINK_CAP_ACK
#define NETLINK_CAP_ACK 10
#endif

/* The kernel answers a batch synchronously; this only bounds a stuck read. */
#define ACK_TIMEOUT_SEC 30

struct datapath {
	struct mnl_socket *nl;
	uint32_t portid;
	uint32_t seq;
	int sndbuf;		/* SO_SNDBUF as last set, 0: the default */
	uint32_t map_serial;	/* see struct nft_batch */
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
	uint32_t seq_last;	/* the message whose reply ends the exchange */
	uint32_t err_seq;	/* seq of the first error */
	int err;		/* first error, -errno */
	char msg[256];		/* the kernel's extended ACK message for it */
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
						  mnl_nlmsg_get_payload_len(nlh) - off) {
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
		if (mnl_cb_run2(buf, n, 0, dp->portid, reply_data_cb, &ctx, ctl,
				NLMSG_MIN_TYPE) < 0) {
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
	*out = dp;
	return 0;
}

static void nft_close(struct datapath *dp)
{
	if (!dp)
		return;
	nft_socket_close(dp);
	free(dp);
}

/*
 * Full sync: add the table (a no-op if present), delete it, build it again,
 * all in one batch. Traffic sees the old ruleset or the new one, never none.
 */
static void build_full(struct nft_batch *b, const struct state_diff *diff)
{
	nft_msg_table_add(b);
	nft_msg_table_del(b);
	nft_msg_table_add(b);
	nft_msg_skeleton(b);
	for (size_t i = 0; i < diff->n_changes; i++) {
		const struct frontend *fe = diff->changes[i].new;

		if (fe && nft_fe_classify(fe) == NFT_FE_SERVE) {
			nft_msg_fe_chain_add(b, &fe->key);
			nft_msg_fe_dnat_rule(b, fe);
		}
	}
	for (size_t i = 0; i < diff->n_changes; i++)
		if (diff->changes[i].new)
			nft_batch_queue_elem(b, NFT_MSG_NEWSETELEM, diff->changes[i].new);
	nft_batch_flush_elems(b);
}

static bool same_backends(const struct frontend *a, const struct frontend *b)
{
	if (a->n_backends != b->n_backends || a->key.proto != b->key.proto)
		return false;
	for (size_t i = 0; i < a->n_backends; i++)
		if (a->backends[i].port != b->backends[i].port ||
		    !ip_addr_equal(&a->backends[i].addr, &b->backends[i].addr))
			return false;
	return true;
}

/* How one change is carried out. */
enum change_plan {
	PLAN_NOTHING,		/* same programming */
	PLAN_REPLACE_RULE,	/* served before and after: flush the chain, add the new rule */
	PLAN_REMOVE_ADD,	/* remove the old programming, add the new */
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
	if (co == NFT_FE_SERVE)
		return same_backends(old, new) ? PLAN_NOTHING : PLAN_REPLACE_RULE;
	return PLAN_NOTHING;
}

/*
 * Incremental: only the frontends in the diff. Element deletions first (so
 * the chains they point to lose their last reference), then chain work,
 * then element additions (pointing to chains that now exist).
 */
static void build_incremental(struct nft_batch *b, const struct state_diff *diff)
{
	for (size_t i = 0; i < diff->n_changes; i++) {
		const struct frontend_change *ch = &diff->changes[i];

		if (ch->old && plan_change(ch->old, ch->new) == PLAN_REMOVE_ADD)
			nft_batch_queue_elem(b, NFT_MSG_DELSETELEM, ch->old);
	}
	nft_batch_flush_elems(b);
	for (size_t i = 0; i < diff->n_changes; i++) {
		const struct frontend_change *ch = &diff->changes[i];

		switch (plan_change(ch->old, ch->new)) {
		case PLAN_NOTHING:
			break;
		case PLAN_REPLACE_RULE:
			/* One transaction: packets see the old rule or the new one. */
			nft_msg_fe_chain_flush(b, &ch->new->key);
			nft_msg_fe_dnat_rule(b, ch->new);
			break;
		case PLAN_REMOVE_ADD:
			if (ch->old && nft_fe_classify(ch->old) == NFT_FE_SERVE)
				nft_msg_fe_chain_del(b, &ch->old->key);
			if (ch->new && nft_fe_classify(ch->new) == NFT_FE_SERVE) {
				nft_msg_fe_chain_add(b, &ch->new->key);
				nft_msg_fe_dnat_rule(b, ch->new);
			}
			if (ch->new)
				nft_batch_queue_elem(b, NFT_MSG_NEWSETELEM, ch->new);
			break;
		}
	}
	nft_batch_flush_elems(b);
}

static int nft_apply(struct datapath *dp, const struct state_diff *diff)
{
	struct nft_batch b;
	int err;

	err = nft_batch_init(&b, ++dp->seq);
	if (err)
		return err;
	/* A full sync deletes every old map in the same batch: names may start over. */
	b.map_serial = diff->full ? 0 : dp->map_serial;
	if (diff->full)
		build_full(&b, diff);
	else
		build_incremental(&b, diff);
	err = nft_batch_finish(&b);
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

const struct datapath_ops nft_datapath_ops = {
	.name = "nftables",
	.open = nft_open,
	.apply = nft_apply,
	.close = nft_close,
	.cleanup = nft_cleanup,
	.present = nft_present,
};
