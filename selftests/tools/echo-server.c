// SPDX-License-Identifier: Apache-2.0
/*
 * Test backend: listens on every ADDR:PORT given, TCP and UDP, and answers
 * each connection or datagram with the local address that received it, so a
 * client can tell which backend served it. Runs until killed.
 *
 * --echo: a TCP connection stays open after that line, and everything the
 * client sends is echoed back until it closes (probe-client --hold).
 *
 * --close-first: the server closes each connection right after its line, as
 * an HTTP/1.0 server does, so TIME_WAIT stays with the backend (the case
 * where a client port reused through another translation meets PAWS).
 *
 * --sctp: the stream sockets are SCTP (SOCK_STREAM, IPPROTO_SCTP, one
 * association per accepted socket) in place of TCP; UDP stays.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "endpoint.h"

#define MAX_SOCKS 256
#define MAX_FDS 1280 /* listening sockets, then --echo connections */
#define TYPE_CONN (-1)

static int stream_proto; /* 0 (TCP) or IPPROTO_SCTP */

static void format_endpoint(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN];

	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)ss;

		inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
		snprintf(buf, len, "[%s]:%u", host, ntohs(s6->sin6_port));
	} else {
		const struct sockaddr_in *s4 = (const void *)ss;

		inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
		snprintf(buf, len, "%s:%u", host, ntohs(s4->sin_port));
	}
}

static int open_socket(const struct sockaddr_storage *ss, socklen_t len, int type)
{
	int one = 1, fd = socket(ss->ss_family, type, type == SOCK_STREAM ? stream_proto : 0);

	if (fd < 0) {
		fprintf(stderr, "echo-server: socket: %s\n", strerror(errno));
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ss->ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)ss, len) ||
	    (type == SOCK_STREAM && listen(fd, 1024))) {
		fprintf(stderr, "echo-server: bind: %s\n", strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * Lets the client close first, so TIME_WAIT stays with the client: a
 * server-side TIME_WAIT would make a later test that reuses the client's
 * port (through another datapath's translation) wait for a SYN retry.
 */
static void close_after_peer(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char buf[64];

	if (poll(&p, 1, 1000) > 0 && read(fd, buf, sizeof(buf)) < 0)
		perror("read");
	close(fd);
}

/* --echo: echoes what a held connection sent; false once it is closed. */
static bool echo_back(int fd)
{
	char buf[512];
	ssize_t got = read(fd, buf, sizeof(buf));

	if (got <= 0)
		return false;
	return write(fd, buf, got) == got;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "echo", no_argument, NULL, 'e' },
		{ "close-first", no_argument, NULL, 'c' },
		{ "sctp", no_argument, NULL, 's' },
		{ 0 },
	};
	struct pollfd fds[MAX_FDS];
	int types[MAX_FDS], n = 0, c;
	bool echo = false, close_first = false;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (c == 'e')
			echo = true;
		else if (c == 'c')
			close_first = true;
		else if (c == 's')
			stream_proto = IPPROTO_SCTP;
		else
			return 2;
	}
	if (optind >= argc) {
		fprintf(stderr,
			"usage: echo-server [--sctp] [--echo | --close-first] ADDR:PORT...\n");
		return 2;
	}
	for (int i = optind; i < argc && n + 2 <= MAX_SOCKS; i++) {
		struct sockaddr_storage ss;
		socklen_t len;

		if (parse_endpoint(argv[i], &ss, &len)) {
			fprintf(stderr, "echo-server: bad endpoint %s\n", argv[i]);
			return 2;
		}
		fds[n].fd = open_socket(&ss, len, SOCK_STREAM);
		types[n++] = SOCK_STREAM;
		fds[n].fd = open_socket(&ss, len, SOCK_DGRAM);
		types[n++] = SOCK_DGRAM;
		if (fds[n - 1].fd < 0 || fds[n - 2].fd < 0)
			return 1;
	}
	for (int i = 0; i < n; i++)
		fds[i].events = POLLIN;
	printf("ready\n");
	fflush(stdout);
	for (;;) {
		if (poll(fds, n, -1) < 0)
			continue;
		for (int i = 0; i < n; i++) {
			struct sockaddr_storage local, peer;
			socklen_t llen = sizeof(local), plen = sizeof(peer);
			char reply[128], buf[512];

			if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			if (types[i] == TYPE_CONN) {
				if (!echo_back(fds[i].fd)) {
					close(fds[i].fd);
					fds[i] = fds[n - 1];
					types[i] = types[n - 1];
					n--;
					i--; /* the last one moved here: look at it now */
				}
				continue;
			}
			if (!(fds[i].revents & POLLIN))
				continue;
			if (types[i] == SOCK_STREAM) {
				int c = accept(fds[i].fd, NULL, NULL);

				if (c < 0)
					continue;
				getsockname(c, (struct sockaddr *)&local, &llen);
				getpeername(c, (struct sockaddr *)&peer, &plen);
				format_endpoint(&local, reply, sizeof(reply));
				strcat(reply, " ");
				format_endpoint(&peer, reply + strlen(reply),
						sizeof(reply) - strlen(reply));
				strcat(reply, "\n");
				if (write(c, reply, strlen(reply)) < 0)
					perror("write");
				if (echo && n < MAX_FDS) {
					fds[n] = (struct pollfd){ .fd = c, .events = POLLIN };
					types[n++] = TYPE_CONN;
					continue;
				}
				if (close_first)
					close(c);
				else
					close_after_peer(c);
			} else {
				ssize_t got = recvfrom(fds[i].fd, buf, sizeof(buf), 0,
						       (struct sockaddr *)&peer, &plen);

				if (got < 0)
					continue;
				getsockname(fds[i].fd, (struct sockaddr *)&local, &llen);
				format_endpoint(&local, reply, sizeof(reply));
				strcat(reply, " ");
				format_endpoint(&peer, reply + strlen(reply),
						sizeof(reply) - strlen(reply));
				strcat(reply, "\n");
				sendto(fds[i].fd, reply, strlen(reply), 0, (struct sockaddr *)&peer,
				       plen);
			}
		}
	}
}
