/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The nftables datapath's netfilter netlink socket: one sendmsg() per
 * batch, the kernel's replies read with mnl_cb_run2 until the last ACK.
 */
#ifndef SLUICE_NFT_SOCKET_H
#define SLUICE_NFT_SOCKET_H

#include <stdbool.h>
#include <stdint.h>
#include <libmnl/libmnl.h>

struct datapath;
struct nft_batch;

/* Opens and binds dp->nl (extended ACKs, a read timeout); returns 0 or -errno. */
int nft_socket_open(struct datapath *dp);
void nft_socket_close(struct datapath *dp);

/* The outcome of a batch or request, gathered from the kernel's replies. */
struct nft_ack_state {
	uint32_t seq_last; /* the message whose reply ends the exchange */
	uint32_t err_seq; /* seq of the first error */
	int err; /* first error, -errno */
	char msg[256]; /* the kernel's extended ACK message for it */
	bool done;
};

/*
 * Reads replies with mnl_cb_run2 until the one for st->seq_last (an ACK,
 * an error, or the end of a dump). data_cb sees every data message.
 * Returns 0 or -errno of the socket; the kernel's verdict is in st.
 */
int nft_read_replies(struct datapath *dp, struct nft_ack_state *st, mnl_cb_t data_cb, void *data);
/* Sends a finished batch in one sendmsg and reads the kernel's verdict (what: for log lines). */
int nft_send_batch(struct datapath *dp, struct nft_batch *b, const char *what);
/* Asks for table inet NAME. 0: it exists, -ENOENT: nf_tables answered without it. */
int nft_get_table(struct datapath *dp, const char *name);
/* Asks for chain NAME of table inet TABLE. 0: it exists, -ENOENT: not there. */
int nft_get_chain(struct datapath *dp, const char *table, const char *name);

#endif
