// SPDX-License-Identifier: Apache-2.0
/*
 * bench/xdp.sh helper: a UDP flood and its sink, for packets per second
 * through the node's packet path (run each in its own test namespace).
 *
 *   udp-flood send ADDR PORT SECONDS   one flow, small datagrams, batches of
 *                                      sendmmsg; prints "sent N"
 *   udp-flood sink PORT SECONDS        counts datagrams from the first one on
 *                                      for SECONDS; prints "received N pps P"
 *
 * Bounded in time; the sender stops on its own.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define PAYLOAD 18 /* a 64-byte frame with Ethernet, IPv4 and UDP headers */

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int flood(const char *addr, int port, double seconds)
{
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(port) };
	struct mmsghdr msgs[BATCH];
	struct iovec iov = { .iov_base = (char[PAYLOAD]){ 0 }, .iov_len = PAYLOAD };
	unsigned long long sent = 0;
	double end;
	int fd, n;

	if (inet_pton(AF_INET, addr, &to.sin_addr) != 1)
		return fprintf(stderr, "udp-flood: bad address %s\n", addr), 2;
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&to, sizeof(to)))
		return perror("udp-flood: socket"), 1;
	memset(msgs, 0, sizeof(msgs));
	for (int i = 0; i < BATCH; i++) {
		msgs[i].msg_hdr.msg_iov = &iov;
		msgs[i].msg_hdr.msg_iovlen = 1;
	}
	end = now() + seconds;
	while (now() < end) {
		n = sendmmsg(fd, msgs, BATCH, 0);
		if (n > 0)
			sent += n;
		else if (errno != ENOBUFS && errno != EAGAIN && errno != ECONNREFUSED)
			return perror("udp-flood: sendmmsg"), 1;
	}
	printf("sent %llu\n", sent);
	return 0;
}

static int sink(int port, double seconds)
{
	struct sockaddr_in at = { .sin_family = AF_INET, .sin_port = htons(port) };
	struct timeval tv = { .tv_sec = 0, .tv_usec = 200000 };
	char bufs[BATCH][64];
	struct iovec iovs[BATCH];
	struct mmsghdr msgs[BATCH];
	unsigned long long received = 0;
	double start = 0, wait_end = now() + seconds + 10, t;
	int fd, n, size = 4 << 20;

	fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&at, sizeof(at)))
		return perror("udp-flood: bind"), 1;
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	memset(msgs, 0, sizeof(msgs));
	for (int i = 0; i < BATCH; i++) {
		iovs[i].iov_base = bufs[i];
		iovs[i].iov_len = sizeof(bufs[i]);
		msgs[i].msg_hdr.msg_iov = &iovs[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
	}
	printf("ready\n");
	fflush(stdout);
	for (;;) {
		t = now();
		if ((start && t - start >= seconds) || (!start && t > wait_end))
			break;
		n = recvmmsg(fd, msgs, BATCH, 0, NULL);
		if (n <= 0)
			continue;
		if (!start)
			start = now();
		received += n;
	}
	t = start ? now() - start : 1;
	printf("received %llu pps %.0f\n", received, received / t);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 5 && !strcmp(argv[1], "send"))
		return flood(argv[2], atoi(argv[3]), atof(argv[4]));
	if (argc == 4 && !strcmp(argv[1], "sink"))
		return sink(atoi(argv[2]), atof(argv[3]));
	fprintf(stderr, "usage: udp-flood send ADDR PORT SECONDS | sink PORT SECONDS\n");
	return 2;
}
