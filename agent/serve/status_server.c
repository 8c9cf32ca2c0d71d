// SPDX-License-Identifier: Apache-2.0
/*
 * agent.sock: sluicectl's questions answered from the store and the engine
 * by the main loop, within a time budget per turn (status_server.h). A
 * services answer first copies the Service names (the store may change
 * between turns), sorts the copy over as many turns as it takes, then
 * computes one document at a time while the client keeps reading.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "lib/log.h"
#include "lib/xalloc.h"
#include "serve/status_json.h"
#include "serve/status_server.h"

#define MAX_CLIENTS 8
/* A client has this long to send its request line, */
#define REQUEST_TIMEOUT_MS 5000
/* and then to take each piece of its answer. */
#define STALL_TIMEOUT_MS 30000
/* Documents are computed only while less than this waits for the client. */
#define OUT_LOW (64 * 1024)

enum phase {
	PH_FREE,
	PH_READ, /* the request line */
	PH_SORT, /* services: the names copied, being sorted */
	PH_SEND, /* services: computing documents */
	PH_DRAIN, /* everything computed, being sent */
};

/* A bottom-up merge sort that stops and resumes: the sorted names end in a. */
struct merge_sort {
	char **a, **b;
	size_t n, width, lo, i, j, k;
	bool merging;
};

struct client {
	int fd;
	enum phase phase;
	bool blocked; /* the socket is full: wait for EPOLLOUT */
	long long deadline; /* ms, CLOCK_MONOTONIC */
	char req[STATUS_REQUEST_MAX];
	size_t req_len;
	char *out;
	size_t out_off, out_len, out_cap;
	char *names; /* services: the copied names, NUL-separated */
	char **slots; /* the sort's two halves */
	struct merge_sort ms;
	size_t next, sent;
};

struct status_server {
	char *path;
	ino_t ino; /* the socket's, to remove only our own */
	int listen_fd, epoll_fd;
	const struct store *store;
	const struct engine *eng;
	struct client clients[MAX_CLIENTS];
	unsigned int rr; /* the client served first next turn */
};

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static long long now_ms(void)
{
	return now_ns() / 1000000;
}

static double now_real(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* By namespace, then name: '/' sorts before every character of a name. */
static int key_cmp(const char *a, const char *b)
{
	for (;; a++, b++) {
		unsigned char x = *a == '/' ? 1 : (unsigned char)*a;
		unsigned char y = *b == '/' ? 1 : (unsigned char)*b;

		if (x != y || !x)
			return x - y;
	}
}

/* Sorts until the clock passes until_ns; returns whether the names are sorted. */
static bool sort_step(struct merge_sort *ms, long long until_ns)
{
	unsigned int ops = 0;

	while (ms->width < ms->n) {
		while (ms->lo < ms->n) {
			size_t mid = ms->lo + ms->width < ms->n ? ms->lo + ms->width : ms->n;
			size_t hi = ms->lo + 2 * ms->width < ms->n ? ms->lo + 2 * ms->width : ms->n;

			if (!ms->merging) {
				ms->i = ms->lo;
				ms->j = mid;
				ms->k = ms->lo;
				ms->merging = true;
			}
			while (ms->k < hi) {
				if (ms->j >= hi ||
				    (ms->i < mid && key_cmp(ms->a[ms->i], ms->a[ms->j]) <= 0))
					ms->b[ms->k++] = ms->a[ms->i++];
				else
					ms->b[ms->k++] = ms->a[ms->j++];
				if (!(++ops & 1023) && now_ns() >= until_ns)
					return false;
			}
			ms->merging = false;
			ms->lo += 2 * ms->width;
		}
		char **t = ms->a;

		ms->a = ms->b;
		ms->b = t;
		ms->width *= 2;
		ms->lo = 0;
	}
	return true;
}

static void out_reserve(struct client *c, size_t more)
{
	if (c->out_off && c->out_off == c->out_len) {
		c->out_off = c->out_len = 0;
	} else if (c->out_off > c->out_cap / 2) {
		memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
		c->out_len -= c->out_off;
		c->out_off = 0;
	}
	if (c->out_len + more <= c->out_cap)
		return;
	while (c->out_len + more > c->out_cap)
		c->out_cap = c->out_cap ? 2 * c->out_cap : 16384;
	c->out = xreallocarray(c->out, c->out_cap, 1);
}

static int out_append(const char *buf, size_t len, void *arg)
{
	struct client *c = arg;

	out_reserve(c, len);
	memcpy(c->out + c->out_len, buf, len);
	c->out_len += len;
	return 0;
}

/* Appends doc as one line, and drops the reference. */
static void out_json(struct client *c, json_t *doc)
{
	json_dump_callback(doc, out_append, c, JSON_COMPACT);
	out_append("\n", 1, c);
	json_decref(doc);
}

static void out_error(struct client *c, const char *code, const char *message)
{
	out_json(c, json_pack("{s:i,s:s,s:s}", "schema", STATUS_SCHEMA, "error", code, "message",
			      message));
}

/* The Service's document as of now; false if it is gone. */
static bool out_service(struct status_server *s, struct client *c, const char *key)
{
	struct status_service_input in = {
		.key = key,
		.svc = store_get_service(s->store, key),
		.slices = store_service_slices(s->store, key),
		.applied = engine_applied(s->eng, key),
		.node_name = s->eng->node_name,
		.node_zone = engine_node_zone(s->eng),
		.published = now_real(),
	};

	if (!in.svc)
		return false;
	out_json(c, status_service_json(&in));
	return true;
}

static void client_close(struct status_server *s, struct client *c)
{
	epoll_ctl(s->epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c->out);
	free(c->names);
	free(c->slots);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}

static void client_watch(struct status_server *s, struct client *c, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = c };

	epoll_ctl(s->epoll_fd, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Copies every Service's name: the copy, not the store, is walked across turns. */
static void services_begin(struct status_server *s, struct client *c)
{
	const struct strmap *m = &s->store->services;
	struct strmap_iter it;
	struct strmap_entry *e;
	size_t bytes = 0, n = 0;
	char *p;

	for (e = strmap_first(m, &it); e; e = strmap_next(m, &it))
		bytes += strlen(e->key) + 1;
	c->names = p = xmalloc(bytes + 1);
	c->slots = xcalloc(2 * m->count + 2, sizeof(char *));
	c->ms.a = c->slots;
	c->ms.b = c->slots + m->count + 1;
	for (e = strmap_first(m, &it); e; e = strmap_next(m, &it)) {
		size_t len = strlen(e->key) + 1;

		memcpy(p, e->key, len);
		c->ms.a[n++] = p;
		p += len;
	}
	c->ms.n = n;
	c->ms.width = 1;
	c->phase = PH_SORT;
}

static void handle_request(struct status_server *s, struct client *c)
{
	char *req = c->req;

	c->phase = PH_DRAIN;
	c->deadline = now_ms() + STALL_TIMEOUT_MS;
	client_watch(s, c, 0);
	if (!strcmp(req, "services")) {
		services_begin(s, c);
	} else if (!strncmp(req, "explain ", 8) && req[8] && !strchr(req + 8, ' ')) {
		char msg[STATUS_REQUEST_MAX + 64];

		if (!out_service(s, c, req + 8)) {
			snprintf(msg, sizeof(msg), "Service %s is not known to the agent", req + 8);
			out_error(c, "not-found", msg);
		}
	} else {
		out_error(c, "bad-request", "expected \"explain NAMESPACE/NAME\" or \"services\"");
	}
}

/* Reads what came of the request line; answers once it is whole. */
static void client_read(struct status_server *s, struct client *c)
{
	for (;;) {
		ssize_t r = recv(c->fd, c->req + c->req_len, sizeof(c->req) - c->req_len, 0);
		char *nl;

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (r <= 0) {
			client_close(s, c);
			return;
		}
		nl = memchr(c->req + c->req_len, '\n', r);
		c->req_len += r;
		if (nl) {
			*nl = 0;
			handle_request(s, c);
			return;
		}
		if (c->req_len == sizeof(c->req)) {
			c->req[0] = 0;
			c->phase = PH_DRAIN;
			client_watch(s, c, 0);
			out_error(c, "bad-request", "request longer than one line of 512 bytes");
			return;
		}
	}
}

static void client_accept(struct status_server *s)
{
	for (;;) {
		int fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct epoll_event ev = { .events = EPOLLIN };
		struct client *c = NULL;
		struct ucred cred;
		socklen_t len = sizeof(cred);

		if (fd < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		/* The socket's mode is the gate; this is in case it was changed. */
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) ||
		    (cred.uid != 0 && cred.uid != geteuid())) {
			close(fd);
			continue;
		}
		for (int i = 0; i < MAX_CLIENTS && !c; i++)
			if (s->clients[i].phase == PH_FREE)
				c = &s->clients[i];
		if (!c) {
			static const char busy[] = "{\"schema\":1,\"error\":\"busy\",\"message\":"
						   "\"the agent is answering too many clients\"}\n";

			send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
			close(fd);
			continue;
		}
		c->fd = fd;
		c->phase = PH_READ;
		c->deadline = now_ms() + REQUEST_TIMEOUT_MS;
		ev.data.ptr = c;
		if (epoll_ctl(s->epoll_fd, EPOLL_CTL_ADD, fd, &ev)) {
			close(fd);
			memset(c, 0, sizeof(*c));
			c->fd = -1;
		}
	}
}

/* Sends what is waiting; returns -1 if the client went away. */
static int client_flush(struct status_server *s, struct client *c)
{
	while (c->out_off < c->out_len) {
		ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			c->blocked = true;
			client_watch(s, c, EPOLLOUT);
			return 0;
		}
		if (w < 0)
			return -1;
		c->out_off += w;
		c->deadline = now_ms() + STALL_TIMEOUT_MS;
	}
	return 0;
}

/* Advances one client's answer until until_ns, the socket is full, or it is done. */
static void client_work(struct status_server *s, struct client *c, long long until_ns)
{
	while (!c->blocked && now_ns() < until_ns) {
		if (client_flush(s, c)) {
			client_close(s, c);
			return;
		}
		if (c->blocked)
			return;
		if (c->phase == PH_SORT) {
			if (sort_step(&c->ms, until_ns))
				c->phase = PH_SEND;
			continue;
		}
		if (c->phase == PH_SEND) {
			while (c->next < c->ms.n && c->out_len - c->out_off < OUT_LOW &&
			       now_ns() < until_ns)
				c->sent += out_service(s, c, c->ms.a[c->next++]);
			if (c->next == c->ms.n) {
				out_json(c, json_pack("{s:i,s:I}", "schema", STATUS_SCHEMA, "end",
						      (json_int_t)c->sent));
				c->phase = PH_DRAIN;
			}
			continue;
		}
		if (c->phase == PH_DRAIN && c->out_off == c->out_len) {
			client_close(s, c);
			return;
		}
	}
}

struct status_server *status_server_open(const char *path, const struct store *store,
					 const struct engine *eng)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
	struct status_server *s;
	struct stat st;
	mode_t mask;
	int fd, err;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		pr_warn("status: socket path %s is too long", path);
		return NULL;
	}
	strcpy(sa.sun_path, path);
	/* A previous agent's socket; anything else there is not ours to remove. */
	if (!lstat(path, &st) && S_ISSOCK(st.st_mode))
		unlink(path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		pr_warn("status: socket: %s", strerror(errno));
		return NULL;
	}
	/* Root only from the start: the mode is what keeps others out. */
	mask = umask(0177);
	err = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(mask);
	if (err || chmod(path, 0600) || listen(fd, 16) || stat(path, &st)) {
		pr_warn("status: cannot listen on %s: %s", path, strerror(errno));
		close(fd);
		return NULL;
	}
	s = xcalloc(1, sizeof(*s));
	s->path = xstrdup(path);
	s->ino = st.st_ino;
	s->listen_fd = fd;
	s->store = store;
	s->eng = eng;
	for (int i = 0; i < MAX_CLIENTS; i++)
		s->clients[i].fd = -1;
	s->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (s->epoll_fd < 0 || epoll_ctl(s->epoll_fd, EPOLL_CTL_ADD, fd, &ev)) {
		pr_warn("status: epoll: %s", strerror(errno));
		status_server_close(s);
		return NULL;
	}
	return s;
}

int status_server_fd(const struct status_server *s)
{
	return s ? s->epoll_fd : -1;
}

int status_server_timeout_ms(const struct status_server *s)
{
	long long now = now_ms();
	int timeout = -1;

	for (int i = 0; s && i < MAX_CLIENTS; i++) {
		const struct client *c = &s->clients[i];
		long long left;

		if (c->phase == PH_FREE)
			continue;
		if (c->phase != PH_READ && !c->blocked)
			return 0;
		left = c->deadline - now;
		if (left < 0)
			left = 0;
		if (timeout < 0 || left < timeout)
			timeout = (int)left;
	}
	return timeout;
}

void status_server_run(struct status_server *s, long budget_us)
{
	long long until = now_ns() + budget_us * 1000LL, now;
	struct epoll_event ev[16];
	int n;

	if (!s)
		return;
	n = epoll_wait(s->epoll_fd, ev, 16, 0);
	for (int i = 0; i < n; i++) {
		struct client *c = ev[i].data.ptr;

		if (!c)
			client_accept(s);
		else if (c->phase == PH_READ)
			client_read(s, c);
		else if (ev[i].events & (EPOLLERR | EPOLLHUP))
			client_close(s, c);
		else if (ev[i].events & EPOLLOUT && c->blocked)
			c->blocked = false, client_watch(s, c, 0);
	}
	now = now_ms();
	for (unsigned int i = 0; i < MAX_CLIENTS; i++) {
		struct client *c = &s->clients[(s->rr + i) % MAX_CLIENTS];

		if (c->phase == PH_FREE)
			continue;
		if (now >= c->deadline) {
			pr_debug("status: dropped a client that %s",
				 c->phase == PH_READ ? "sent no request" : "stopped reading");
			client_close(s, c);
			continue;
		}
		if (c->phase != PH_READ)
			client_work(s, c, until);
	}
	s->rr++;
}

void status_server_close(struct status_server *s)
{
	struct stat st;

	if (!s)
		return;
	for (int i = 0; i < MAX_CLIENTS; i++)
		if (s->clients[i].phase != PH_FREE)
			client_close(s, &s->clients[i]);
	if (s->epoll_fd >= 0)
		close(s->epoll_fd);
	close(s->listen_fd);
	/* Not if another agent has replaced it meanwhile. */
	if (!lstat(s->path, &st) && st.st_ino == s->ino)
		unlink(s->path);
	free(s->path);
	free(s);
}
