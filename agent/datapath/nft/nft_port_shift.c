// SPDX-License-Identifier: Apache-2.0
/*
 * Chooses the port range that nat-postrouting shifts the client ports of
 * DNAT'd TCP connections into: disjoint from the ephemeral range.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "datapath/nft/nft_port_shift.h"

#define FIRST_UNPRIVILEGED 1024u
#define MIN_GAP 1024u

bool nft_port_shift_choose(uint16_t eph_lo, uint16_t eph_hi, struct nft_port_shift *out)
{
	unsigned int size = eph_hi - eph_lo + 1u;
	unsigned int below = eph_lo > FIRST_UNPRIVILEGED ? eph_lo - FIRST_UNPRIVILEGED : 0;
	unsigned int above = 65535u - eph_hi;

	*out = (struct nft_port_shift){ 0 };
	if (eph_hi < eph_lo)
		return false;
	if (below >= size) {
		*out = (struct nft_port_shift){ FIRST_UNPRIVILEGED, FIRST_UNPRIVILEGED + size - 1 };
	} else if (above >= size) {
		*out = (struct nft_port_shift){ eph_hi + 1u, eph_hi + size };
	} else if (below >= above && below >= MIN_GAP) {
		/* Fewer ports than clients may use: conntrack takes the next free one. */
		*out = (struct nft_port_shift){ FIRST_UNPRIVILEGED, eph_lo - 1u };
	} else if (above >= MIN_GAP) {
		*out = (struct nft_port_shift){ eph_hi + 1u, 65535 };
	} else {
		return false;
	}
	return true;
}

int nft_port_shift_read(struct nft_port_shift *out, char *why, size_t why_len)
{
	FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "re");
	unsigned int lo, hi;
	int n;

	*out = (struct nft_port_shift){ 0 };
	if (!f) {
		snprintf(why, why_len, "cannot read net.ipv4.ip_local_port_range: %s",
			 strerror(errno));
		return -errno;
	}
	n = fscanf(f, "%u %u", &lo, &hi);
	fclose(f);
	if (n != 2 || lo > 65535 || hi > 65535) {
		snprintf(why, why_len, "net.ipv4.ip_local_port_range does not read as two ports");
		return -EINVAL;
	}
	if (!nft_port_shift_choose(lo, hi, out)) {
		snprintf(why, why_len,
			 "net.ipv4.ip_local_port_range %u-%u leaves fewer than %u ports outside it",
			 lo, hi, MIN_GAP);
		return -ERANGE;
	}
	return 0;
}
