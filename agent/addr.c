// SPDX-License-Identifier: Apache-2.0
/* IP addresses as the agent carries them: family plus 16 bytes, v4 in the first 4. */
#include <arpa/inet.h>
#include <string.h>

#include "addr.h"

bool ip_addr_parse(const char *text, struct ip_addr *out)
{
	memset(out, 0, sizeof(*out));
	if (!text)
		return false;
	if (inet_pton(AF_INET, text, out->bytes) == 1) {
		out->family = AF_INET;
		return true;
	}
	if (inet_pton(AF_INET6, text, out->bytes) == 1) {
		out->family = AF_INET6;
		return true;
	}
	return false;
}

const char *ip_addr_format(const struct ip_addr *addr, char *buf)
{
	if (!inet_ntop(addr->family, addr->bytes, buf, IP_ADDR_STRLEN))
		strcpy(buf, "?");
	return buf;
}

int ip_addr_cmp(const struct ip_addr *a, const struct ip_addr *b)
{
	if (a->family != b->family)
		return a->family < b->family ? -1 : 1;
	return memcmp(a->bytes, b->bytes, a->family == AF_INET ? 4 : 16);
}

bool ip_addr_equal(const struct ip_addr *a, const struct ip_addr *b)
{
	return ip_addr_cmp(a, b) == 0;
}
