// SPDX-License-Identifier: Apache-2.0
/*
 * Test client: one UDP flow that lasts. One socket for the whole run
 * (connect()ed with --connected, else sendto() from the source port fixed
 * with --sport), a datagram every --interval-ms for --duration seconds and
 * its reply awaited (--timeout-ms). Prints, per datagram, "at EPOCH
 * BACKEND" (the ADDR:PORT echo-server answered from), "at EPOCH timeout"
 * or "at EPOCH errno NAME" (e.g. ECONNREFUSED from an ICMP error), EPOCH
 * being the wall clock when the answer came, in seconds. A connected
 * socket that fails (e.g. the datapath destroyed it) is replaced by a new
 * one, as an application would do; not on a timeout or ECONNREFUSED (an
 * ICMP error queued on the socket, which stays usable). Used by
 * selftests/e2e/test_udp_flows.sh.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "endpoint.h"

static double clock_s(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void report_errno(int err)
{
	printf("at %.3f errno %s\n", clock_s(CLOCK_REALTIME),
	       strerrorname_np(err) ? strerrorname_np(err) : "?");
}

/* The flow's socket: bound to sport if nonzero, connected if asked; -1 on failure. */
static int open_flow(const struct sockaddr_storage *dst, socklen_t len, int sport, bool connected)
{
	struct sockaddr_storage src;
	int fd = socket(dst->ss_family, SOCK_DGRAM, 0), one = 1;

	if (fd < 0) {
		perror("socket");
		return -1;
	}
	memset(&src, 0, sizeof(src));
	src.ss_family = dst->ss_family;
	/* sin_port and sin6_port sit at the same offset */
	((struct sockaddr_in *)&src)->sin_port = htons(sport);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (sport && bind(fd, (struct sockaddr *)&src, len)) {
		perror("bind");
		close(fd);
		return -1;
	}
	if (connected && connect(fd, (const struct sockaddr *)dst, len)) {
		perror("connect");
		close(fd);
		return -1;
	}
	return fd;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "connected", no_argument, NULL, 'c' },
		{ "sport", required_argument, NULL, 's' },
		{ "duration", required_argument, NULL, 'd' },
		{ "interval-ms", required_argument, NULL, 'i' },
		{ "timeout-ms", required_argument, NULL, 't' },
		{ 0 },
	};
	int interval_ms = 100, timeout_ms = 300, sport = 0, fd, c;
	double duration = 5, start;
	bool connected = false;
	struct sockaddr_storage dst;
	socklen_t len;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			connected = true;
			break;
		case 's':
			sport = atoi(optarg);
			break;
		case 'd':
			duration = atof(optarg);
			break;
		case 'i':
			interval_ms = atoi(optarg);
			break;
		case 't':
			timeout_ms = atoi(optarg);
			break;
		default:
			return 2;
		}
	}
	if (optind + 1 != argc || parse_endpoint(argv[optind], &dst, &len)) {
		fprintf(stderr, "usage: udp-flow [--connected] [--sport PORT] [--duration SEC] "
				"[--interval-ms MS] [--timeout-ms MS] ADDR:PORT\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	fd = open_flow(&dst, len, sport, connected);
	if (fd < 0)
		return 1;
	start = clock_s(CLOCK_MONOTONIC);
	while (clock_s(CLOCK_MONOTONIC) - start < duration) {
		double sent = clock_s(CLOCK_MONOTONIC), left;
		char reply[256];
		ssize_t got;
		bool failed = false;

		if ((connected ? send(fd, "ping", 4, 0) :
				 sendto(fd, "ping", 4, 0, (struct sockaddr *)&dst, len)) < 0) {
			report_errno(errno);
			failed = errno != ECONNREFUSED;
			goto next;
		}
		for (;;) {
			struct pollfd p = { .fd = fd, .events = POLLIN };
			int ms = timeout_ms - (int)((clock_s(CLOCK_MONOTONIC) - sent) * 1000);

			if (ms <= 0 || poll(&p, 1, ms) <= 0) {
				printf("at %.3f timeout\n", clock_s(CLOCK_REALTIME));
				break;
			}
			got = recv(fd, reply, sizeof(reply) - 1, 0);
			if (got < 0) {
				report_errno(errno);
				failed = errno != ECONNREFUSED;
				break;
			}
			reply[got] = '\0';
			reply[strcspn(reply, " \n")] = '\0';
			printf("at %.3f %s\n", clock_s(CLOCK_REALTIME), reply);
			break;
		}
next:
		if (failed && connected) {
			close(fd);
			fd = open_flow(&dst, len, sport, connected);
			if (fd < 0)
				return 1;
		}
		left = interval_ms / 1000.0 - (clock_s(CLOCK_MONOTONIC) - sent);
		if (left > 0)
			poll(NULL, 0, (int)(left * 1000));
	}
	close(fd);
	return 0;
}
