/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The client ports of DNAT'd TCP connections, moved out of the kernel's
 * ephemeral range (Documentation/nftables-datapath.md, "Client ports").
 * A connection this table translates and one the BPF socket path (or a
 * direct dial) made can then never meet on the backend under one 4-tuple:
 * the two carry TCP timestamps of different offsets, and a SYN that reuses
 * a 4-tuple still in TIME_WAIT there is dropped as a PAWS failure.
 */
#ifndef SLUICE_NFT_PORT_SHIFT_H
#define SLUICE_NFT_PORT_SHIFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Ports are shifted into [lo, hi]; hi 0: not shifted. */
struct nft_port_shift {
	uint16_t lo, hi;
};

/*
 * The range for an ephemeral range [eph_lo, eph_hi]: as many ports as it
 * has (so the shift is one to one) below it, else above it, else the larger
 * gap if it holds at least 1024 ports. False when there is no such gap.
 */
bool nft_port_shift_choose(uint16_t eph_lo, uint16_t eph_hi, struct nft_port_shift *out);
/*
 * Reads this network namespace's net.ipv4.ip_local_port_range (which also
 * covers IPv6) and chooses. Returns 0, or -errno with a reason in why.
 */
int nft_port_shift_read(struct nft_port_shift *out, char *why, size_t why_len);

#endif
