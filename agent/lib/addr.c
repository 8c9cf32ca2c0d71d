// SPDX-License-Identifier: Apache-2.0
/* IP addresses as the agent carries them: family plus 16 bytes, v4 in the first 4. */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "lib/addr.h"

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

bool cidr_parse(const char *text, struct cidr *out)
{
	char buf[IP_ADDR_STRLEN + 8];
	const char *slash = text ? strchr(text, '/') : NULL;
	size_t len;
	char *end;
	long prefix;
	int bits;

	memset(out, 0, sizeof(*out));
	if (!slash || (len = slash - text) >= IP_ADDR_STRLEN || !slash[1])
		return false;
	memcpy(buf, text, len);
	buf[len] = '\0';
	if (!ip_addr_parse(buf, &out->addr))
		return false;
	prefix = strtol(slash + 1, &end, 10);
	bits = out->addr.family == AF_INET ? 32 : 128;
	if (*end || prefix < 0 || prefix > bits)
		return false;
	out->prefix_len = (uint8_t)prefix;
	for (int i = prefix; i < bits; i++)
		out->addr.bytes[i / 8] &= (uint8_t) ~(0x80u >> (i % 8));
	return true;
}
