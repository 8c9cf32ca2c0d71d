// SPDX-License-Identifier: Apache-2.0
/*
 * Test client: opens many TCP connections or UDP exchanges to one
 * ADDR:PORT and prints what it saw, one "key value" per line: ok, refused,
 * timeout, error, peer-mismatch (getpeername / recvfrom did not show the
 * address dialled), then "backend ADDR:PORT COUNT" per answering backend
 * "source ADDR COUNT" per client address the backends reported, and
 * "errno NAME COUNT" per error seen.
 *
 * --log-failures: also one "failure T LOCAL-PORT ERRNO" line per failed TCP
 * attempt as it happens (T: seconds since the start), to place failures in
 * a scenario's timeline.
 *
 * --hold SEC (TCP, against echo-server --echo): one connection held for SEC
 * seconds, a numbered message sent every --interval-ms (default 100) and its
 * echo awaited (--timeout-ms); one "round N ok|lost|broken" line per round
 * trip, then "rounds", "lost", "broken" (1 when the connection failed; it
 * ends the hold), "local-port" at the start and at the end, and "backend".
 *
 * --udp-hold SEC: one connected UDP socket kept for SEC seconds, a datagram
 * sent every --interval-ms (default 100) and its answer awaited
 * (--timeout-ms); one "round N T BACKEND|lost|error ERRNO" line per round
 * (T: seconds since the start). An error on the socket (not a lost
 * answer) is printed and the socket made again: "reopen T ERRNO". Then
 * "rounds", "lost", "reopens", "backend" per answering backend.
 *
 * --mapped: an IPv4 ADDR:PORT is dialled from an AF_INET6 socket as the
 * IPv4-mapped ::ffff:ADDR, as dual-stack runtimes (the JVM) do; the peer
 * must then show that mapped address.
 *
 * --source-port PORT (TCP): attempt i leaves from local port PORT + i and
 * ends with a reset (SO_LINGER 0, so no TIME_WAIT keeps the port), and
 * each answered one prints "flow LOCAL-PORT BACKEND": the same flows can
 * be sent again later and their backends compared (consistent hashing).
 *
 * --until-ok: stop at the first answered attempt (--duration caps the wait)
 * and print "first-ok-at T", T the wall-clock time (CLOCK_REALTIME, s) it
 * was answered: make bench times a change from a file's rename to the first
 * connection it serves.
 *
 * --sctp: the connections are SCTP (SOCK_STREAM, IPPROTO_SCTP: one
 * association each, the same exchange as TCP); with --hold too.
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
static unsigned int source_port; /* --source-port: the first attempt's local port; 0: any */
static unsigned int attempt_no;
static int stream_proto; /* 0 (TCP) or IPPROTO_SCTP (--sctp) */

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

static bool log_failures;
static double started;

static double now_s(void);

static void log_failure(int fd, int err)
{
	struct sockaddr_storage local;
	socklen_t llen = sizeof(local);
	unsigned int port = 0;

	if (!log_failures)
		return;
	if (!getsockname(fd, (struct sockaddr *)&local, &llen))
		port = ntohs(((struct sockaddr_in *)&local)->sin_port);
	printf("failure %.3f %u %s\n", now_s() - started, port,
	       strerrorname_np(err) ? strerrorname_np(err) : "?");
}

/* A non-blocking TCP or SCTP (--sctp) socket. */
static int stream_socket(int family)
{
	return socket(family, SOCK_STREAM | SOCK_NONBLOCK, stream_proto);
}

/* --source-port: bind fd to this attempt's local port, and close it with a reset. */
static int bind_source_port(int fd, int family, unsigned int port)
{
	struct linger abort_on_close = { .l_onoff = 1, .l_linger = 0 };
	struct sockaddr_storage local = { .ss_family = family };
	int one = 1;

	if (family == AF_INET)
		((struct sockaddr_in *)&local)->sin_port = htons(port);
	else
		((struct sockaddr_in6 *)&local)->sin6_port = htons(port);
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    setsockopt(fd, SOL_SOCKET, SO_LINGER, &abort_on_close, sizeof(abort_on_close)))
		return -errno;
	return bind(fd, (struct sockaddr *)&local,
		    family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6)) ?
		       -errno :
		       0;
}

static void try_tcp(struct results *r, const struct sockaddr_storage *dst, socklen_t len)
{
	unsigned int port = source_port ? source_port + attempt_no : 0;
	struct sockaddr_storage peer;
	socklen_t plen = sizeof(peer);
	char reply[256];
	size_t used = 0;
	int fd, err = 0;
	socklen_t elen = sizeof(err);

	attempt_no++;
	fd = stream_socket(dst->ss_family);
	if (fd < 0) {
		r->error++;
		return;
	}
	if (port && (err = -bind_source_port(fd, dst->ss_family, port))) {
		classify_error(r, err);
		goto out;
	}
	if (connect(fd, (const struct sockaddr *)dst, len) && errno != EINPROGRESS) {
		log_failure(fd, errno);
		classify_error(r, errno);
		goto out;
	}
	if ((err = -wait_fd(fd, POLLOUT)) ||
	    (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen), err)) {
		log_failure(fd, err);
		classify_error(r, err);
		goto out;
	}
	if (getpeername(fd, (struct sockaddr *)&peer, &plen) || !same_endpoint(&peer, dst))
		r->mismatch++;
	while (used < sizeof(reply) - 1) {
		ssize_t got;

		if (wait_fd(fd, POLLIN)) {
			log_failure(fd, ETIMEDOUT);
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
	if (port)
		printf("flow %u %s\n", port, reply); /* reply now holds the backend alone */
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

static int local_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len))
		return -1;
	return ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port :
						((struct sockaddr_in *)&ss)->sin_port);
}

/* Reads one line (up to '\n') within timeout_ms per read: 0, or -errno. */
static int read_line(int fd, char *buf, size_t size)
{
	size_t used = 0;

	while (used < size - 1) {
		ssize_t got;
		int err = wait_fd(fd, POLLIN);

		if (err)
			return err;
		got = read(fd, buf + used, 1);
		if (got < 0)
			return -errno;
		if (!got)
			return -ECONNRESET;
		if (buf[used++] == '\n')
			break;
	}
	buf[used] = '\0';
	return 0;
}

/* --hold: one long connection, one numbered round trip per interval. */
static int hold_tcp(const struct sockaddr_storage *dst, socklen_t len, double seconds,
		    int interval_ms)
{
	unsigned long rounds = 0, lost = 0;
	int fd, err = 0, port_start = -1, port_end = -1, broken = 0;
	socklen_t elen = sizeof(err);
	char line[256], backend[256] = "-", msg[32];
	double start;

	fd = stream_socket(dst->ss_family);
	if (fd < 0)
		return 1;
	if (connect(fd, (const struct sockaddr *)dst, len) && errno != EINPROGRESS)
		err = errno;
	else if ((err = -wait_fd(fd, POLLOUT)) == 0)
		getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen);
	if (!err)
		err = -read_line(fd, line, sizeof(line));
	if (err) {
		printf("connect-error %s\nrounds 0\nlost 0\nbroken 1\n",
		       strerrorname_np(err) ? strerrorname_np(err) : "?");
		close(fd);
		return 0;
	}
	sscanf(line, "%255s", backend);
	port_start = local_port(fd);
	printf("local-port-start %d\n", port_start);
	fflush(stdout);
	start = now_s();
	while (now_s() - start < seconds) {
		int n = snprintf(msg, sizeof(msg), "%lu\n", ++rounds);

		poll(NULL, 0, interval_ms);
		if (write(fd, msg, n) != n) {
			err = errno;
			broken = 1;
		} else if ((err = -read_line(fd, line, sizeof(line)))) {
			/* a timeout is a lost message; anything else breaks the connection */
			if (err == ETIMEDOUT)
				lost++;
			else
				broken = 1;
		} else if (strcmp(line, msg)) {
			lost++;
			err = EPROTO;
		}
		const char *what = broken ? "broken" : err ? "lost" : "ok";
		const char *why = err && strerrorname_np(err) ? strerrorname_np(err) : "";

		printf("round %lu %s%s%s\n", rounds, what, err ? " " : "", err ? why : "");
		fflush(stdout);
		if (broken)
			break;
	}
	port_end = local_port(fd);
	printf("rounds %lu\nlost %lu\nbroken %d\nlocal-port %d %d\nbackend %s\n"
	       "elapsed %.3f\n",
	       rounds, lost, broken, port_start, port_end, backend, now_s() - start);
	close(fd);
	return 0;
}

/* --udp-hold: a socket connected to dst, or -errno. */
static int udp_open_connected(const struct sockaddr_storage *dst, socklen_t len)
{
	int fd = socket(dst->ss_family, SOCK_DGRAM, 0), err;

	if (fd < 0)
		return -errno;
	if (connect(fd, (const struct sockaddr *)dst, len)) {
		err = errno;
		close(fd);
		return -err;
	}
	return fd;
}

static const char *err_name(int err)
{
	return strerrorname_np(err) ? strerrorname_np(err) : "?";
}

static int hold_udp(const struct sockaddr_storage *dst, socklen_t len, double hold, int interval_ms)
{
	struct results r = { 0 };
	unsigned long rounds = 0, lost = 0, reopens = 0;
	double start = now_s();
	char reply[256], *sp;
	ssize_t got;
	int fd, err;

	setvbuf(stdout, NULL, _IOLBF, 0); /* rounds are read while it runs */
	fd = udp_open_connected(dst, len);
	while (now_s() - start < hold) {
		if (fd < 0) {
			printf("reopen %.3f %s\n", now_s() - start, err_name(-fd));
			reopens++;
			poll(NULL, 0, interval_ms);
			fd = udp_open_connected(dst, len);
			continue;
		}
		rounds++;
		err = 0;
		if (send(fd, "ping", 4, 0) < 0) {
			err = errno;
		} else if ((err = -wait_fd(fd, POLLIN)) == ETIMEDOUT) {
			printf("round %lu %.3f lost\n", rounds, now_s() - start);
			lost++;
			continue; /* waited timeout_ms already */
		} else if (!err) {
			got = recv(fd, reply, sizeof(reply) - 1, 0);
			if (got < 0) {
				err = errno;
			} else {
				reply[got] = '\0';
				sp = strchr(reply, ' ');
				printf("round %lu %.3f %.*s\n", rounds, now_s() - start,
				       sp ? (int)(sp - reply) : (int)got, reply);
				record_reply(&r, reply);
			}
		}
		if (err) {
			printf("round %lu %.3f error %s\n", rounds, now_s() - start, err_name(err));
			close(fd);
			printf("reopen %.3f %s\n", now_s() - start, err_name(err));
			reopens++;
			fd = udp_open_connected(dst, len);
		}
		poll(NULL, 0, interval_ms);
	}
	if (fd >= 0)
		close(fd);
	printf("rounds %lu\nlost %lu\nreopens %lu\n", rounds, lost, reopens);
	for (int i = 0; i < r.n_backends; i++)
		printf("backend %s %lu\n", r.backends[i].name, r.backends[i].count);
	return 0;
}

/* ADDR:PORT (IPv4) -> [::ffff:ADDR]:PORT for an AF_INET6 socket; -1 if dst is not IPv4. */
static int to_v4_mapped(struct sockaddr_storage *dst, socklen_t *len)
{
	struct sockaddr_in v4 = *(struct sockaddr_in *)dst;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)dst;

	if (v4.sin_family != AF_INET)
		return -1;
	memset(dst, 0, sizeof(*dst));
	v6->sin6_family = AF_INET6;
	v6->sin6_port = v4.sin_port;
	v6->sin6_addr.s6_addr[10] = 0xff;
	v6->sin6_addr.s6_addr[11] = 0xff;
	memcpy(&v6->sin6_addr.s6_addr[12], &v4.sin_addr, 4);
	*len = sizeof(*v6);
	return 0;
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
		{ "hold", required_argument, NULL, 'H' },
		{ "udp-hold", required_argument, NULL, 'U' },
		{ "log-failures", no_argument, NULL, 'L' },
		{ "mapped", no_argument, NULL, 'm' },
		{ "sctp", no_argument, NULL, 's' },
		{ "source-port", required_argument, NULL, 'P' },
		{ "until-ok", no_argument, NULL, 'O' },
		{ 0 },
	};
	bool udp = false, connected = false, mapped = false, until_ok = false;
	unsigned long count = 1, attempts = 0;
	double duration = 0, start, hold = 0, udp_hold = 0;
	int interval_ms = 0;
	struct sockaddr_storage dst;
	struct results r = { 0 };
	socklen_t len;
	int c;
	/* The default wait, where the machine is much slower (make vmtest sets it). */
	const char *env_timeout = getenv("PROBE_TIMEOUT_MS");

	if (env_timeout && atoi(env_timeout) > 0)
		timeout_ms = atoi(env_timeout);
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
		case 'H':
			hold = atof(optarg);
			break;
		case 'U':
			udp_hold = atof(optarg);
			break;
		case 'L':
			log_failures = true;
			break;
		case 'm':
			mapped = true;
			break;
		case 's':
			stream_proto = IPPROTO_SCTP;
			break;
		case 'P':
			source_port = strtoul(optarg, NULL, 10);
			break;
		case 'O':
			until_ok = true;
			break;
		default:
			return 2;
		}
	}
	if (optind + 1 != argc || parse_endpoint(argv[optind], &dst, &len) ||
	    (mapped && to_v4_mapped(&dst, &len))) {
		fprintf(stderr,
			"usage: probe-client [--udp [--connected] | --sctp] [--mapped] [--source-port PORT] "
			"[--until-ok] [--count N | "
			"--duration SEC | --hold SEC | --udp-hold SEC] [--timeout-ms MS] "
			"[--interval-ms MS] "
			"ADDR:PORT\n");
		return 2;
	}
	if (hold > 0)
		return hold_tcp(&dst, len, hold, interval_ms ? interval_ms : 100);
	if (udp_hold > 0)
		return hold_udp(&dst, len, udp_hold, interval_ms ? interval_ms : 100);
	start = started = now_s();
	while (duration > 0 ? now_s() - start < duration : attempts < count) {
		if (udp)
			try_udp(&r, &dst, len, connected);
		else
			try_tcp(&r, &dst, len);
		attempts++;
		if (until_ok && r.ok) {
			struct timespec ts;

			clock_gettime(CLOCK_REALTIME, &ts);
			printf("first-ok-at %ld.%09ld\n", (long)ts.tv_sec, ts.tv_nsec);
			break;
		}
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
