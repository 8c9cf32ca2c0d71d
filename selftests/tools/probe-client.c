// SPDX-License-Identifier: Apache-2.0
/*
 * Test client: opens many TCP connections or UDP exchanges to one
 * ADDR:PORT and prints what it saw, one "key value" per line: ok, refused,
 * timeout, error, peer-mismatch (getpeername / recvfrom did not show the
 * address dialled), then "backend ADDR:PORT COUNT" per answering backend
 * "source ADDR COUNT" per client address the backends reported, and
 * "errno NAME COUNT" per error seen.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
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

#define MAX_SEEN 256

struct tally {
	char name[80];
	unsigned long count;
};

struct results {
	unsigned long ok, refused, timeout, error, mismatch;
	struct tally backends[MAX_SEEN], sources[MAX_SEEN], errors[MAX_SEEN];
	int n_backends, n_sources, n_errors;
};

static int timeout_ms = 1000;

static void count_name(struct tally *t, int *n, const char *name)
{
	for (int i = 0; i < *n; i++) {
		if (!strcmp(t[i].name, name)) {
			t[i].count++;
			return;
		}
	}
	if (*n < MAX_SEEN) {
		snprintf(t[*n].name, sizeof(t[*n].name), "%s", name);
		t[(*n)++].count = 1;
	}
}

static bool same_endpoint(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;

		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;

	return x->sin6_port == y->sin6_port && !memcmp(&x->sin6_addr, &y->sin6_addr, 16);
}

static void classify_error(struct results *r, int err)
{
	if (err == ECONNREFUSED)
		r->refused++;
	else if (err == ETIMEDOUT || err == EAGAIN)
		r->timeout++;
	else
		r->error++;
	count_name(r->errors, &r->n_errors, strerrorname_np(err) ? strerrorname_np(err) : "?");
}

/* Reads the "BACKEND CLIENT" reply line and tallies both. */
static void record_reply(struct results *r, char *reply)
{
	char *client = strchr(reply, ' '), *nl = strchr(reply, '\n');

	if (nl)
		*nl = '\0';
	if (client)
		*client++ = '\0';
	count_name(r->backends, &r->n_backends, reply);
	if (client) {
		char *port = strrchr(client, ':');

		if (port)
			*port = '\0'; /* tally client addresses, not ports */
		count_name(r->sources, &r->n_sources, client);
	}
	r->ok++;
}

/*
 * A netfilter reject in the output hook fails the send itself with EPERM
 * (the packet was dropped) and queues the ICMP error it generated on the
 * socket: report what the socket says, as the application's next call would.
 */
static int pending_error(int fd, int err)
{
	struct pollfd p = { .fd = fd, .events = 0 };
	socklen_t elen = sizeof(int);
	int sk_err = 0;

	if (err != EPERM)
		return err;
	poll(&p, 1, 100);
	if (!getsockopt(fd, SOL_SOCKET, SO_ERROR, &sk_err, &elen) && sk_err)
		return sk_err;
	return err;
}

static int wait_fd(int fd, short events)
{
	struct pollfd p = { .fd = fd, .events = events };
	int n = poll(&p, 1, timeout_ms);

	return n > 0 ? 0 : n == 0 ? -ETIMEDOUT : -errno;
}

static void try_tcp(struct results *r, const struct sockaddr_storage *dst, socklen_t len)
{
	struct sockaddr_storage peer;
	socklen_t plen = sizeof(peer);
	char reply[256];
	size_t used = 0;
	int fd, err = 0;
	socklen_t elen = sizeof(err);

	fd = socket(dst->ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		r->error++;
		return;
	}
	if (connect(fd, (const struct sockaddr *)dst, len) && errno != EINPROGRESS) {
		classify_error(r, errno);
		goto out;
	}
	if ((err = -wait_fd(fd, POLLOUT)) ||
	    (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen), err)) {
		classify_error(r, err);
		goto out;
	}
	if (getpeername(fd, (struct sockaddr *)&peer, &plen) || !same_endpoint(&peer, dst))
		r->mismatch++;
	while (used < sizeof(reply) - 1) {
		ssize_t got;

		if (wait_fd(fd, POLLIN)) {
			r->timeout++;
			goto out;
		}
		got = read(fd, reply + used, sizeof(reply) - 1 - used);
		if (got < 0) {
			classify_error(r, errno);
			goto out;
		}
		if (!got)
			break;
		used += got;
		if (memchr(reply, '\n', used))
			break; /* the whole reply: close first, as clients do */
	}
	reply[used] = '\0';
	record_reply(r, reply);
out:
	close(fd);
}

static void try_udp(struct results *r, const struct sockaddr_storage *dst, socklen_t len,
		    bool connected)
{
	struct sockaddr_storage from;
	socklen_t flen = sizeof(from);
	char reply[256];
	ssize_t got;
	int fd, err;

	fd = socket(dst->ss_family, SOCK_DGRAM, 0);
	if (fd < 0) {
		r->error++;
		return;
	}
	if (connected) {
		if (connect(fd, (const struct sockaddr *)dst, len) || send(fd, "ping", 4, 0) < 0) {
			classify_error(r, pending_error(fd, errno));
			goto out;
		}
	} else if (sendto(fd, "ping", 4, 0, (const struct sockaddr *)dst, len) < 0) {
		classify_error(r, errno);
		goto out;
	}
	err = wait_fd(fd, POLLIN);
	if (err) {
		classify_error(r, -err);
		goto out;
	}
	got = recvfrom(fd, reply, sizeof(reply) - 1, 0, (struct sockaddr *)&from, &flen);
	if (got < 0) {
		classify_error(r, errno);
		goto out;
	}
	if (!same_endpoint(&from, dst))
		r->mismatch++;
	if (connected) {
		flen = sizeof(from);
		if (getpeername(fd, (struct sockaddr *)&from, &flen) || !same_endpoint(&from, dst))
			r->mismatch++;
	}
	reply[got] = '\0';
	record_reply(r, reply);
out:
	close(fd);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "udp", no_argument, NULL, 'u' },
		{ "connected", no_argument, NULL, 'c' },
		{ "count", required_argument, NULL, 'n' },
		{ "duration", required_argument, NULL, 'd' },
		{ "timeout-ms", required_argument, NULL, 't' },
		{ "interval-ms", required_argument, NULL, 'i' },
		{ 0 },
	};
	bool udp = false, connected = false;
	unsigned long count = 1, attempts = 0;
	double duration = 0, start;
	int interval_ms = 0;
	struct sockaddr_storage dst;
	struct results r = { 0 };
	socklen_t len;
	int c;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'u':
			udp = true;
			break;
		case 'c':
			connected = true;
			break;
		case 'n':
			count = strtoul(optarg, NULL, 10);
			break;
		case 'd':
			duration = atof(optarg);
			break;
		case 't':
			timeout_ms = atoi(optarg);
			break;
		case 'i':
			interval_ms = atoi(optarg);
			break;
		default:
			return 2;
		}
	}
	if (optind + 1 != argc || parse_endpoint(argv[optind], &dst, &len)) {
		fprintf(stderr, "usage: probe-client [--udp [--connected]] [--count N | "
				"--duration SEC] [--timeout-ms MS] [--interval-ms MS] ADDR:PORT\n");
		return 2;
	}
	start = now_s();
	while (duration > 0 ? now_s() - start < duration : attempts < count) {
		if (udp)
			try_udp(&r, &dst, len, connected);
		else
			try_tcp(&r, &dst, len);
		attempts++;
		if (interval_ms)
			poll(NULL, 0, interval_ms);
	}
	printf("attempts %lu\nelapsed %.3f\nok %lu\nrefused %lu\ntimeout %lu\nerror %lu\n"
	       "peer-mismatch %lu\n",
	       attempts, now_s() - start, r.ok, r.refused, r.timeout, r.error, r.mismatch);
	for (int i = 0; i < r.n_backends; i++)
		printf("backend %s %lu\n", r.backends[i].name, r.backends[i].count);
	for (int i = 0; i < r.n_errors; i++)
		printf("errno %s %lu\n", r.errors[i].name, r.errors[i].count);
	for (int i = 0; i < r.n_sources; i++)
		printf("source %s %lu\n", r.sources[i].name, r.sources[i].count);
	return 0;
}
