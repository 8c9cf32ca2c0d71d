/* SPDX-License-Identifier: Apache-2.0 */
/* The nftables datapath's state, shared by its socket, planner, ranges and object readers. */
#ifndef SLUICE_NFT_DATAPATH_H
#define SLUICE_NFT_DATAPATH_H

#include <stddef.h>
#include <stdint.h>

#include "datapath/nft/nft_batch.h"
#include "datapath/nft/nft_port_shift.h"
#include "datapath/nft/nft_ranges.h"
#include "lib/strmap.h"

struct mnl_socket;
struct svc_state;

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
	int ops_err; /* -ENOSPC while planning ranges */
	struct nft_port_shift port_shift; /* chosen at open */
	bool terminate_tcp; /* --removed-backend-tcp=terminate */
	bool count_all; /* --metrics-all-services: every Service's refusals are counted */
	struct strmap dsr_logged; /* Services told that DSR is BPF-only (once each) */
	uint32_t maglev_size; /* --maglev-table-size (the default filled in) */
	/*
	 * The chain that says the table is exactly what the last full sync
	 * wrote (its batch's fingerprint), "" if none: a full sync that
	 * finds its own fingerprint there writes nothing; the first update
	 * after it deletes the mark in its own transaction.
	 */
	char sync_mark[NFT_SYNC_MARK_LEN];
};

#endif
