// SPDX-License-Identifier: Apache-2.0
/*
 * The nftables datapath's netfilter netlink socket: sends a batch in one
 * sendmsg() and reads the kernel's ACKs and errors with mnl_cb_run2,
 * naming the failed message in the log line.
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
#include <libnftnl/chain.h>
#include <libnftnl/table.h>

#include "lib/log.h"
#include "lib/xalloc.h"
#include "datapath/nft/nft_batch.h"
#include "datapath/nft/nft_datapath.h"
#include "datapath/nft/nft_skeleton.h"
#include "datapath/nft/nft_socket.h"

#ifndef NETLINK_EXT_ACK
#define NETLINK_EXT_ACK 11
#endif
#ifndef NETLINK_CAP_ACK
#define NETLINK_CAP_ACK 10
#endif

/* The kernel answers a batch synchronously; this only bounds a stuck read. */
#define ACK_TIMEOUT_SEC 30

int nft_socket_open(struct datapath *dp)
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

void nft_socket_close(struct datapath *dp)
{
	if (dp->nl)
		mnl_socket_close(dp->nl);
	dp->nl = NULL;
}

/* Cookie of the reply callbacks: control messages fill st, data goes to data_cb. */
struct reply_ctx {
	struct nft_ack_state *st;
	mnl_cb_t data_cb;
	void *data;
};

static int ack_error_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);
	struct nft_ack_state *st = ((struct reply_ctx *)data)->st;

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

int nft_read_replies(struct datapath *dp, struct nft_ack_state *st, mnl_cb_t data_cb, void *data)
{
	static mnl_cb_t ctl[NLMSG_MIN_TYPE] = {
		[NLMSG_ERROR] = ack_error_cb,
		[NLMSG_DONE] = ack_done_cb,
	};
	struct reply_ctx ctx = { .st = st, .data_cb = data_cb, .data = data };
	char *buf = xmalloc(MNL_SOCKET_BUFFER_SIZE);
	int ret = 0;

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

int nft_send_batch(struct datapath *dp, struct nft_batch *b, const char *what)
{
	struct sockaddr_nl addr = { .nl_family = AF_NETLINK };
	struct nft_ack_state st = { .seq_last = b->seq - 2 }; /* the last message before END */
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
	iov = xcalloc(n_iov, sizeof(*iov));
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
	err = nft_read_replies(dp, &st, NULL, NULL);
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

/* Sends the one request in nlh (seq dp->seq) and reads the kernel's answer. */
static int get_one(struct datapath *dp, const struct nlmsghdr *nlh)
{
	struct nft_ack_state st = { .seq_last = dp->seq };
	int err;

	if (mnl_socket_sendto(dp->nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	err = nft_read_replies(dp, &st, NULL, NULL);
	return err ? err : st.err;
}

int nft_get_table(struct datapath *dp, const char *name)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nftnl_table *t = xcheck(nftnl_table_alloc());
	struct nlmsghdr *nlh;

	memset(buf, 0, sizeof(buf)); /* libmnl 1.0.4 leaves attribute padding unset */
	nftnl_table_set_str(t, NFTNL_TABLE_NAME, name);
	nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETTABLE, NFPROTO_INET, NLM_F_ACK, ++dp->seq);
	nftnl_table_nlmsg_build_payload(nlh, t);
	nftnl_table_free(t);
	return get_one(dp, nlh);
}

int nft_get_chain(struct datapath *dp, const char *table, const char *name)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nftnl_chain *c = xcheck(nftnl_chain_alloc());
	struct nlmsghdr *nlh;

	memset(buf, 0, sizeof(buf));
	nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, table);
	nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, name);
	nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETCHAIN, NFPROTO_INET, NLM_F_ACK, ++dp->seq);
	nftnl_chain_nlmsg_build_payload(nlh, c);
	nftnl_chain_free(c);
	return get_one(dp, nlh);
}
