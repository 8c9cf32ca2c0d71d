/* SPDX-License-Identifier: Apache-2.0 */
/* The HOST:PORT of the agent's HTTP servers (--health-addr, --healthz-addr, --metrics-addr). */
#ifndef SLUICE_LISTEN_H
#define SLUICE_LISTEN_H

#include <sys/socket.h>

/* "HOST:PORT" or "[V6]:PORT", HOST an IP address. Returns 0, or -1 if text is not one. */
int listen_addr_parse(const char *text, struct sockaddr_storage *ss);

#endif
