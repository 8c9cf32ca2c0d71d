// SPDX-License-Identifier: Apache-2.0
/* Parsing the HOST:PORT an HTTP server of the agent listens on. */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "lib/addr.h"
#include "serve/listen.h"

int listen_addr_parse(const char *text, struct sockaddr_storage *ss)
{
	char host[64];
	const char *colon = strrchr(text, ':');
	struct ip_addr ip;
	size_t len;
	long port;
	char *end;

	if (!colon || !colon[1])
		return -1;
	port = strtol(colon + 1, &end, 10);
	len = colon - text;
	if (*end || port < 1 || port > 65535 || len >= sizeof(host))
		return -1;
	memcpy(host, text, len);
	host[len] = '\0';
	if (host[0] == '[' && len > 2 && host[len - 1] == ']') {
		memmove(host, host + 1, len - 2);
		host[len - 2] = '\0';
	}
	if (!ip_addr_parse(host, &ip))
		return -1;
	memset(ss, 0, sizeof(*ss));
	if (ip.family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		memcpy(&s4->sin_addr, ip.bytes, 4);
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		memcpy(&s6->sin6_addr, ip.bytes, 16);
	}
	return 0;
}
