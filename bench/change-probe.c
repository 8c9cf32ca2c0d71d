// SPDX-License-Identifier: Apache-2.0
/*
 * bench/one-change.sh helper: makes one change and times, from outside the
 * agent, how long until the datapath serving it has changed.
 *
 *   change-probe --bpffs=DIR --frontend=ADDR:PORT[/tcp|udp|sctp] ACTION
 *   change-probe --nft ACTION
 *   ACTION: --rename=SRC:DST          rename(SRC, DST): a manifest file closed
 *           --post=HOST:PORT/PATH:FILE  an HTTP POST of FILE (the test API
 *                                       server's /apply: a watch event)
 *   --timeout-ms=N (default 10000)
 *
 * bpf: the frontend's entry in DIR/maps/services is read before the action
 * and then every 50 us until it differs: new backends are written under a
 * new generation and the entry flipped to them, so its change is when new
 * connections see the change (the backend slots it names are hashed too, in
 * case a datapath writes them in place). One lookup a turn keeps the probe
 * light beside the agent on a small machine. nftables: a netlink listener on
 * the nf_tables group of this network namespace waits for the first
 * NFT_MSG_NEWGEN, the commit of a transaction. Prints "latency_us N", or
 * "timeout" (exit 1).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netlink.h>
#include <bpf/bpf.h>

#include "shared.h"

#define MAX_SLOTS 4096

struct probe {
	int map_fd, backends_fd; /* bpf */
	struct sl_service_key key;
	int nl_fd; /* nftables */
};

/* What a new connection to the frontend would be given, as one value. */
struct bpf_view {
	bool present;
	struct sl_service svc;
	uint64_t backends_hash;
};

static long long now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

static int parse_frontend(const char *text, struct sl_service_key *key)
{
	char buf[128], *colon, *slash;
	unsigned long port;

	snprintf(buf, sizeof(buf), "%s", text);
	memset(key, 0, sizeof(*key));
	key->proto = IPPROTO_TCP;
	slash = strchr(buf, '/');
	if (slash) {
		*slash++ = 0;
		key->proto = !strcmp(slash, "udp")  ? IPPROTO_UDP :
			     !strcmp(slash, "sctp") ? IPPROTO_SCTP :
						      IPPROTO_TCP;
	}
	colon = strrchr(buf, ':');
	if (!colon)
		return -EINVAL;
	*colon = 0;
	port = strtoul(colon + 1, NULL, 10);
	key->port = htons((uint16_t)port);
	if (buf[0] == '[') {
		buf[strlen(buf) - 1] = 0;
		key->family = SL_AF_INET6;
		return inet_pton(AF_INET6, buf + 1, key->addr) == 1 ? 0 : -EINVAL;
	}
	key->family = SL_AF_INET;
	return inet_pton(AF_INET, buf, key->addr) == 1 ? 0 : -EINVAL;
}

/* with_slots false: the entry alone (one syscall). */
static void bpf_read(const struct probe *p, struct bpf_view *v, bool with_slots)
{
	uint64_t h = 14695981039346656037ull;

	memset(v, 0, sizeof(*v));
	v->present = !bpf_map_lookup_elem(p->map_fd, &p->key, &v->svc);
	for (uint32_t i = 0; with_slots && v->present && i < v->svc.count && i < MAX_SLOTS; i++) {
		struct sl_backend_key k = { .backend_set = v->svc.backend_set, .slot = i };
		struct sl_backend b = { 0 };

		bpf_map_lookup_elem(p->backends_fd, &k, &b);
		for (size_t j = 0; j < sizeof(b); j++)
			h = (h ^ ((uint8_t *)&b)[j]) * 1099511628211ull;
	}
	v->backends_hash = h;
}

static bool bpf_same_entry(const struct bpf_view *a, const struct bpf_view *b)
{
	return a->present == b->present && !memcmp(&a->svc, &b->svc, sizeof(a->svc));
}

static int nft_listen(void)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK,
				  .nl_groups = 1u << (NFNLGRP_NFTABLES - 1) };
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_NETFILTER);
	int size = 8 << 20;

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		close(fd);
		return -1;
	}
	return fd;
}

/* True once a transaction committed (NEWGEN), or events were lost: one did. */
static bool nft_committed(int fd)
{
	static char buf[1 << 16];

	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);

		if (n < 0)
			return errno == ENOBUFS;
		for (struct nlmsghdr *nh = (struct nlmsghdr *)buf; NLMSG_OK(nh, (size_t)n);
		     nh = NLMSG_NEXT(nh, n))
			if (nh->nlmsg_type == ((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWGEN))
				return true;
	}
}

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	long n;

	if (!f)
		return NULL;
	if (!fseek(f, 0, SEEK_END) && (n = ftell(f)) >= 0 && !fseek(f, 0, SEEK_SET)) {
		buf = malloc(n + 1);
		if (buf && fread(buf, 1, n, f) != (size_t)n) {
			free(buf);
			buf = NULL;
		}
		*len = n;
	}
	fclose(f);
	return buf;
}

/* --post=HOST:PORT/PATH:FILE: sends the request; the answer is not waited for. */
static int post(const char *arg, const char *body, size_t len)
{
	char host[64], path[256], head[512];
	struct sockaddr_in sa = { .sin_family = AF_INET };
	unsigned int port;
	int fd, n;

	if (sscanf(arg, "%63[^:]:%u/%255[^:]", host, &port, path) != 3 ||
	    inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		return -EINVAL;
	sa.sin_port = htons(port);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)))
		return -errno;
	n = snprintf(head, sizeof(head),
		     "POST /%s HTTP/1.1\r\nHost: %s\r\nContent-Length: %zu\r\n"
		     "Connection: close\r\n\r\n",
		     path, host, len);
	if (write(fd, head, n) != n || write(fd, body, len) != (ssize_t)len) {
		close(fd);
		return -EIO;
	}
	return fd;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "bpffs", required_argument, NULL, 'b' },
		{ "frontend", required_argument, NULL, 'f' },
		{ "nft", no_argument, NULL, 'n' },
		{ "rename", required_argument, NULL, 'r' },
		{ "post", required_argument, NULL, 'p' },
		{ "timeout-ms", required_argument, NULL, 't' },
		{ 0 },
	};
	const char *bpffs = NULL, *frontend = NULL, *rename_arg = NULL, *post_arg = NULL;
	struct probe p = { .map_fd = -1, .backends_fd = -1, .nl_fd = -1 };
	char src[4096], dst[4096], *body = NULL;
	long long timeout_us = 10000000, t0, t, seen = 0;
	struct bpf_view before, now;
	bool nft = false, changed = false;
	size_t body_len = 0;
	unsigned int turns = 0;
	int c, conn = -1;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'b':
			bpffs = optarg;
			break;
		case 'f':
			frontend = optarg;
			break;
		case 'n':
			nft = true;
			break;
		case 'r':
			rename_arg = optarg;
			break;
		case 'p':
			post_arg = optarg;
			break;
		case 't':
			timeout_us = atoll(optarg) * 1000;
			break;
		default:
			return 2;
		}
	}
	if ((!nft && (!bpffs || !frontend)) || !rename_arg == !post_arg) {
		fprintf(stderr, "usage: see bench/change-probe.c\n");
		return 2;
	}
	if (rename_arg && sscanf(rename_arg, "%4095[^:]:%4095s", src, dst) != 2)
		return 2;
	if (post_arg) {
		const char *file = strrchr(post_arg, ':');

		body = file ? read_file(file + 1, &body_len) : NULL;
		if (!body) {
			fprintf(stderr, "--post: cannot read the body\n");
			return 2;
		}
	}
	/* Polling wakes up when asked, not up to 50 us later. */
	prctl(PR_SET_TIMERSLACK, 1UL);
	if (nft) {
		p.nl_fd = nft_listen();
		if (p.nl_fd < 0) {
			perror("netlink");
			return 2;
		}
	} else {
		char path[4096];

		snprintf(path, sizeof(path), "%s/maps/services", bpffs);
		p.map_fd = bpf_obj_get(path);
		snprintf(path, sizeof(path), "%s/maps/backends", bpffs);
		p.backends_fd = bpf_obj_get(path);
		if (p.map_fd < 0 || p.backends_fd < 0 || parse_frontend(frontend, &p.key)) {
			fprintf(stderr, "cannot open the maps under %s or parse %s\n", bpffs,
				frontend);
			return 2;
		}
		bpf_read(&p, &before, true);
	}

	t0 = now_us();
	if (rename_arg && rename(src, dst)) {
		perror("rename");
		return 2;
	}
	if (post_arg && (conn = post(post_arg, body, body_len)) < 0) {
		fprintf(stderr, "--post: %s\n", strerror(-conn));
		return 2;
	}
	for (t = t0; !changed && t - t0 < timeout_us; t = now_us()) {
		if (nft) {
			struct pollfd pfd = { .fd = p.nl_fd, .events = POLLIN };

			if (poll(&pfd, 1, 100) > 0)
				changed = nft_committed(p.nl_fd);
		} else {
			/* Every 64th turn the slots too (an in-place write, about 3 ms late). */
			bool slots = !(++turns % 64);

			bpf_read(&p, &now, slots);
			changed = !bpf_same_entry(&before, &now) ||
				  (slots && now.backends_hash != before.backends_hash);
			if (!changed)
				nanosleep(&(struct timespec){ .tv_nsec = 50000 }, NULL);
		}
		if (changed)
			seen = now_us();
	}
	if (conn >= 0)
		close(conn);
	if (!changed) {
		printf("timeout\n");
		return 1;
	}
	printf("latency_us %lld\n", seen - t0);
	return 0;
}
