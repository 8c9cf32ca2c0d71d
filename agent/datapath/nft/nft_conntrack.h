/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Conntrack cleanup after an apply: the UDP and SCTP flows that conntrack
 * still sends to a backend the apply removed from a frontend (or with the
 * frontend) are deleted over ctnetlink, so that their next packet is
 * balanced again, as kube-proxy does. TCP flows are left alone.
 */
#ifndef SLUICE_NFT_CONNTRACK_H
#define SLUICE_NFT_CONNTRACK_H

#include <stdbool.h>
#include <stddef.h>

#include "core/state.h"

struct datapath;

/* One frontend's removed backend. */
struct nft_ct_stale {
	struct frontend_key fe; /* unspecified address: a NodePort (any local address) */
	struct backend be;
};

/*
 * The (frontend, backend) pairs whose conntrack entries a committed diff
 * leaves stale: UDP and SCTP frontends (and TCP ones with tcp:
 * --removed-backend-tcp=terminate) that served a backend before and no
 * longer serve it (backend removed, frontend removed, refused or dropped).
 * *out is allocated (free it), sorted by protocol then backend. A TCP
 * connection whose entry goes has its next segment DNAT'd anew (conntrack
 * picks it up mid-stream), and the backend it meets resets it.
 */
size_t nft_ct_stale_pairs(const struct state_diff *diff, bool tcp, struct nft_ct_stale **out);
/*
 * Deletes the conntrack entries of those pairs over dp's netlink socket:
 * per backend, one dump filtered by the kernel on the reply source
 * (backend address, port, protocol), then one delete by exact original
 * tuple per entry whose original destination is the frontend. Logs the
 * count at debug, a failure as one warning; returns the entries deleted.
 */
size_t nft_ct_flush_stale(struct datapath *dp, const struct nft_ct_stale *pairs, size_t n);

#endif
