/* SPDX-License-Identifier: Apache-2.0 */
/* IP addresses as the agent carries them: family plus 16 bytes, v4 in the first 4. */
#ifndef SLUICE_ADDR_H
#define SLUICE_ADDR_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <netinet/in.h>

struct ip_addr {
	uint8_t family; /* AF_INET or AF_INET6 */
	uint8_t bytes[16];
};

#define IP_ADDR_STRLEN 46

/* An address block, e.g. loadBalancerSourceRanges' "203.0.113.0/24". */
struct cidr {
	struct ip_addr addr; /* host bits cleared */
	uint8_t prefix_len;
};

/* Parses a literal IPv4 or IPv6 address; false if it is not one. */
bool ip_addr_parse(const char *text, struct ip_addr *out);
/* Formats into buf (IP_ADDR_STRLEN bytes) and returns buf. */
const char *ip_addr_format(const struct ip_addr *addr, char *buf);
/* Parses "ADDR/LEN"; false if it is not one (host bits set are cleared). */
bool cidr_parse(const char *text, struct cidr *out);
int ip_addr_cmp(const struct ip_addr *a, const struct ip_addr *b);
bool ip_addr_equal(const struct ip_addr *a, const struct ip_addr *b);

#endif
