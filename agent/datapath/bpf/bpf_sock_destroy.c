// SPDX-License-Identifier: Apache-2.0
/*
 * Sockets of the node whose backend left (issue 14, point 1). A connected
 * UDP socket was translated once, at connect(), and would keep sending to
 * a removed backend; after an apply that removed backends, the sockets
 * connected to one of them, translated from that frontend (revnat: socket
 * cookie and backend -> the address the application dialled), are
 * destroyed: the application sees ECONNABORTED and its next socket is
 * balanced anew. Connected UDP always; TCP only with
 * --removed-backend-tcp=terminate (kube-proxy leaves TCP alone, and so
 * does the default). Two ways, probed at open:
 *
 * - bpf_sock_destroy() (kfunc, Linux 6.5+) from a socket iterator
 *   (bpf/sock_destroy.bpf.c), loaded only where the kfunc exists;
 * - else sock_diag: dump the UDP (TCP) sockets (NETLINK_SOCK_DIAG), check each
 *   against revnat here, SOCK_DESTROY the matches (needs
 *   CONFIG_INET_DIAG_DESTROY).
 *
 * Both see the sockets of the agent's network namespace only (the host's
 * in production; pods' sockets live in their own namespaces and are not
 * destroyed). SLUICE_SOCK_DESTROY=sock_diag|off in the environment forces the
 * fallback or turns this off (tests).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/types.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "datapath/bpf/bpf_sock_destroy.h"
#include "lib/addr.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "shared.h"
#include "sock_destroy.skel.h"

enum sock_destroy_mode {
	UD_NONE,
	UD_BPF,
	UD_SOCK_DIAG,
};

struct sock_destroyer {
	enum sock_destroy_mode mode;
	bool tcp; /* --removed-backend-tcp=terminate */
	int revnat_fd;
	struct sock_destroy_bpf *skel;
	struct bpf_link *udp_link, *tcp_link;
	char why[144]; /* why this mode, for the features list */
};

/* What one run destroyed. */
struct destroyed {
	size_t udp, tcp;
};

static void gone_key_of(const struct frontend *fe, const struct backend *b,
			struct sl_sock_gone_key *key)
{
	size_t alen = fe->key.addr.family == AF_INET ? 4 : 16;

	memset(key, 0, sizeof(*key));
	memcpy(key->frontend_addr, fe->key.addr.bytes, alen);
	memcpy(key->backend_addr, b->addr.bytes, alen);
	key->frontend_port = htons(fe->key.port);
	key->backend_port = htons(b->port);
	key->family = fe->key.addr.family == AF_INET ? SL_AF_INET : SL_AF_INET6;
	key->proto = fe->key.proto;
}

struct gone_list {
	struct sl_sock_gone_key *keys;
	size_t n, cap;
};

static void add_gone(void *ctx, const struct frontend *old, const struct backend *gone)
{
	struct gone_list *l = ctx;

	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 16;
		l->keys = xreallocarray(l->keys, l->cap, sizeof(*l->keys));
	}
	gone_key_of(old, gone, &l->keys[l->n++]);
}

/* The {frontend, backend} pairs of UDP (and TCP) frontends whose backend diff removed. */
static size_t gone_pairs(const struct state_diff *diff, bool tcp, struct sl_sock_gone_key **out)
{
	struct gone_list l = { 0 };

	for (size_t i = 0; i < diff->n_changes; i++) {
		const struct frontend *old = diff->changes[i].old;

		if (old &&
		    (old->key.proto == IPPROTO_UDP || (tcp && old->key.proto == IPPROTO_TCP)))
			frontend_removed_backends(old, diff->changes[i].new, add_gone, &l);
	}
	*out = l.keys;
	return l.n;
}

/* ---- bpf_sock_destroy() from iter/udp ---- */

/* The kernel's BTF names the kfunc (Linux 6.5+): else libbpf would fail the load, loudly. */
static bool kernel_has_sock_destroy(void)
{
	struct btf *btf = btf__load_vmlinux_btf();
	bool found;

	if (!btf)
		return false;
	found = btf__find_by_name_kind(btf, "bpf_sock_destroy", BTF_KIND_FUNC) > 0;
	btf__free(btf);
	return found;
}

static int bpf_open_iter(struct sock_destroyer *ud)
{
	int err;

	if (!kernel_has_sock_destroy())
		return -EOPNOTSUPP;
	ud->skel = sock_destroy_bpf__open();
	if (!ud->skel)
		return -errno;
	/* TCP sockets are left alone unless asked: do not even load that program. */
	bpf_program__set_autoload(ud->skel->progs.sl_tcp_destroy, ud->tcp);
	err = bpf_map__reuse_fd(ud->skel->maps.revnat, ud->revnat_fd);
	if (!err)
		err = sock_destroy_bpf__load(ud->skel);
	if (!err) {
		ud->udp_link = bpf_program__attach_iter(ud->skel->progs.sl_udp_destroy, NULL);
		if (!ud->udp_link)
			err = -errno;
	}
	if (!err && ud->tcp) {
		ud->tcp_link = bpf_program__attach_iter(ud->skel->progs.sl_tcp_destroy, NULL);
		if (!ud->tcp_link)
			err = -errno;
	}
	if (err) {
		bpf_link__destroy(ud->udp_link);
		ud->udp_link = NULL;
		sock_destroy_bpf__destroy(ud->skel);
		ud->skel = NULL;
	}
	return err;
}

/* One iterator run: reads it to the end (the program does the work). */
static void run_iter(struct bpf_link *link)
{
	char buf[64];
	int iter = bpf_iter_create(bpf_link__fd(link));

	if (iter < 0) {
		pr_warn("bpf: sockets: cannot run the socket iterator: %s", strerror(errno));
		return;
	}
	while (read(iter, buf, sizeof(buf)) > 0)
		;
	close(iter);
}

static void bpf_destroy(struct sock_destroyer *ud, const struct sl_sock_gone_key *keys, size_t n,
			struct destroyed *done)
{
	int fd = bpf_map__fd(ud->skel->maps.sock_gone);
	struct sl_sock_gone_key k;
	bool udp = false, tcp = false;
	__u32 one = 1;
	size_t i;

	for (i = 0; i < n; i++) {
		if (bpf_map_update_elem(fd, &keys[i], &one, BPF_ANY) && i == 0)
			pr_warn("bpf: sockets: cannot note a removed backend: %s", strerror(errno));
		udp |= keys[i].proto == IPPROTO_UDP;
		tcp |= keys[i].proto == IPPROTO_TCP;
	}
	ud->skel->bss->destroyed_udp = 0;
	ud->skel->bss->destroyed_tcp = 0;
	if (udp)
		run_iter(ud->udp_link);
	if (tcp && ud->tcp_link)
		run_iter(ud->tcp_link);
	done->udp += ud->skel->bss->destroyed_udp;
	done->tcp += ud->skel->bss->destroyed_tcp;
	while (bpf_map_get_next_key(fd, NULL, &k) == 0)
		bpf_map_delete_elem(fd, &k);
}

/* ---- sock_diag ---- */

struct diag_req {
	struct nlmsghdr nlh;
	struct inet_diag_req_v2 r;
};

static int diag_socket(void)
{
	struct timeval tv = { .tv_sec = 2 };
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);

	if (fd >= 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

/* SOCK_DESTROY of one socket; 0 or -errno (the kernel's answer). */
static int diag_destroy(int fd, __u8 family, __u8 proto, const struct inet_diag_sockid *id)
{
	struct diag_req req;
	char buf[512];
	struct nlmsghdr *h;
	struct nlmsgerr *e;
	ssize_t len;

	memset(&req, 0, sizeof(req));
	req.nlh.nlmsg_len = sizeof(req);
	req.nlh.nlmsg_type = SOCK_DESTROY;
	req.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	req.r.sdiag_family = family;
	req.r.sdiag_protocol = proto;
	req.r.idiag_states = ~0u;
	req.r.id = *id;
	if (send(fd, &req, sizeof(req), 0) < 0)
		return -errno;
	len = recv(fd, buf, sizeof(buf), 0);
	if (len < 0)
		return -errno;
	h = (struct nlmsghdr *)buf;
	if (!NLMSG_OK(h, (size_t)len) || h->nlmsg_type != NLMSG_ERROR)
		return -EPROTO;
	e = NLMSG_DATA(h);
	return e->error;
}

/* Found by the probe: SOCK_DESTROY answers ENOENT for no socket, EOPNOTSUPP without it. */
static bool diag_probe(void)
{
	struct inet_diag_sockid id;
	int fd = diag_socket(), err;

	if (fd < 0)
		return false;
	memset(&id, 0, sizeof(id));
	id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
	id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
	err = diag_destroy(fd, AF_INET, IPPROTO_UDP, &id);
	close(fd);
	return err == -ENOENT;
}

static bool gone_match(const struct sl_sock_gone_key *keys, size_t n, struct sl_sock_gone_key *k)
{
	size_t i;
	int pass;

	for (pass = 0; pass < 2; pass++) {
		for (i = 0; i < n; i++)
			if (!memcmp(&keys[i], k, sizeof(*k)))
				return true;
		memset(k->frontend_addr, 0, sizeof(k->frontend_addr)); /* a NodePort */
	}
	return false;
}

/*
 * TCP: full sockets only (TIME_WAIT and request sockets have no
 * application to tell).
 */
#define TCP_FULL_STATES (~((1u << 6) | (1u << 12))) /* TCP_TIME_WAIT, TCP_NEW_SYN_RECV */

/* One family and protocol: dump its sockets, destroy the matches; returns how many. */
static size_t diag_destroy_family(struct sock_destroyer *ud, __u8 family, __u8 proto,
				  const struct sl_sock_gone_key *keys, size_t n)
{
	struct inet_diag_sockid *ids = NULL;
	size_t n_ids = 0, cap = 0, i, done = 0, alen = family == AF_INET ? 4 : 16;
	struct sl_sock_gone_key k;
	struct sl_revnat_key rk;
	struct sl_revnat orig;
	struct inet_diag_msg *m;
	struct diag_req req;
	struct nlmsghdr *h;
	static char buf[32768];
	bool end = false;
	ssize_t len;
	int fd = diag_socket(), err;

	if (fd < 0)
		return 0;
	memset(&req, 0, sizeof(req));
	req.nlh.nlmsg_len = sizeof(req);
	req.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	req.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	req.r.sdiag_family = family;
	req.r.sdiag_protocol = proto;
	req.r.idiag_states = proto == IPPROTO_TCP ? TCP_FULL_STATES : ~0u;
	if (send(fd, &req, sizeof(req), 0) < 0)
		end = true;
	while (!end) {
		len = recv(fd, buf, sizeof(buf), 0);
		if (len <= 0)
			break;
		for (h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)len); h = NLMSG_NEXT(h, len)) {
			if (h->nlmsg_type == NLMSG_DONE || h->nlmsg_type == NLMSG_ERROR) {
				end = true;
				break;
			}
			m = NLMSG_DATA(h);
			if (!m->id.idiag_dport)
				continue;
			memset(&rk, 0, sizeof(rk));
			rk.cookie = (__u64)m->id.idiag_cookie[0] |
				    ((__u64)m->id.idiag_cookie[1] << 32);
			memcpy(rk.addr, m->id.idiag_dst, alen);
			rk.port = m->id.idiag_dport;
			rk.family = family;
			/* An IPv6 socket connected to a v4-mapped address: revnat has it as IPv4. */
			if (family == AF_INET6 && !m->id.idiag_dst[0] && !m->id.idiag_dst[1] &&
			    m->id.idiag_dst[2] == htonl(0x0000ffff)) {
				memset(rk.addr, 0, sizeof(rk.addr));
				memcpy(rk.addr, &m->id.idiag_dst[3], 4);
				rk.family = SL_AF_INET;
			}
			if (bpf_map_lookup_elem(ud->revnat_fd, &rk, &orig))
				continue;
			memset(&k, 0, sizeof(k));
			memcpy(k.frontend_addr, orig.addr, 16);
			memcpy(k.backend_addr, rk.addr, 16);
			k.frontend_port = orig.port;
			k.backend_port = rk.port;
			k.family = rk.family;
			k.proto = proto;
			if (!gone_match(keys, n, &k))
				continue;
			if (n_ids == cap) {
				cap = cap ? 2 * cap : 16;
				ids = xreallocarray(ids, cap, sizeof(*ids));
			}
			ids[n_ids++] = m->id;
		}
	}
	for (i = 0; i < n_ids; i++) {
		err = diag_destroy(fd, family, proto, &ids[i]);
		if (!err)
			done++;
		else if (err != -ENOENT)
			pr_warn("bpf: sockets: SOCK_DESTROY: %s", strerror(-err));
	}
	free(ids);
	close(fd);
	return done;
}

/* ---- the interface ---- */

struct sock_destroyer *sock_destroyer_open(int revnat_fd, bool tcp)
{
	struct sock_destroyer *ud = xcalloc(1, sizeof(*ud));
	const char *force = getenv("SLUICE_SOCK_DESTROY");
	int err = -EOPNOTSUPP;

	ud->revnat_fd = revnat_fd;
	ud->tcp = tcp;
	if (force && !strcmp(force, "off")) {
		ud->mode = UD_NONE;
		snprintf(ud->why, sizeof(ud->why), "SLUICE_SOCK_DESTROY=off");
	} else if ((!force || strcmp(force, "sock_diag")) && !(err = bpf_open_iter(ud))) {
		ud->mode = UD_BPF;
		snprintf(ud->why, sizeof(ud->why),
			 "the kernel has the bpf_sock_destroy() kfunc (Linux 6.5+)");
	} else {
		if (err != -EOPNOTSUPP)
			pr_debug("bpf: udp sockets: no bpf_sock_destroy() iterator: %s",
				 strerror(-err));
		ud->mode = diag_probe() ? UD_SOCK_DIAG : UD_NONE;
		if (force && !strcmp(force, "sock_diag"))
			snprintf(ud->why, sizeof(ud->why), "SLUICE_SOCK_DESTROY=sock_diag");
		else
			snprintf(ud->why, sizeof(ud->why), "%s%s",
				 err == -EOPNOTSUPP ?
					 "no bpf_sock_destroy() kfunc in this kernel (Linux 6.5+)" :
					 "the bpf_sock_destroy() iterator did not load",
				 ud->mode == UD_SOCK_DIAG ?
					 ": SOCK_DESTROY over sock_diag" :
					 ", nor SOCK_DESTROY (CONFIG_INET_DIAG_DESTROY)");
	}
	pr_info("sockets of removed backends (connected UDP%s): destroyed with %s",
		tcp ? ", TCP" : "",
		ud->mode == UD_BPF	 ? "bpf_sock_destroy" :
		ud->mode == UD_SOCK_DIAG ? "sock_diag" :
					   "not available");
	return ud;
}

void sock_destroyer_run(struct sock_destroyer *ud, const struct state_diff *diff)
{
	struct destroyed done = { 0 };
	struct sl_sock_gone_key *keys;
	size_t n, i;

	if (!ud || ud->mode == UD_NONE || diff->full)
		return;
	n = gone_pairs(diff, ud->tcp, &keys);
	if (!n)
		return;
	if (ud->mode == UD_BPF) {
		/* One iterator run per map's worth of pairs. */
		for (i = 0; i < n; i += SL_SOCK_GONE_MAX)
			bpf_destroy(ud, keys + i,
				    n - i < SL_SOCK_GONE_MAX ? n - i : SL_SOCK_GONE_MAX, &done);
	} else {
		done.udp = diag_destroy_family(ud, AF_INET, IPPROTO_UDP, keys, n) +
			   diag_destroy_family(ud, AF_INET6, IPPROTO_UDP, keys, n);
		if (ud->tcp)
			done.tcp = diag_destroy_family(ud, AF_INET, IPPROTO_TCP, keys, n) +
				   diag_destroy_family(ud, AF_INET6, IPPROTO_TCP, keys, n);
	}
	if (done.udp)
		pr_info("bpf: udp sockets: %zu connected to removed backends destroyed", done.udp);
	if (done.tcp)
		pr_info("bpf: tcp sockets: %zu connected to removed backends destroyed", done.tcp);
	free(keys);
}

const char *sock_destroyer_mode(const struct sock_destroyer *ud, const char **why)
{
	*why = ud ? ud->why : "";
	if (!ud || ud->mode == UD_NONE)
		return "not available";
	return ud->mode == UD_BPF ? "bpf_sock_destroy" : "sock_diag";
}

void sock_destroyer_close(struct sock_destroyer *ud)
{
	if (!ud)
		return;
	bpf_link__destroy(ud->udp_link);
	bpf_link__destroy(ud->tcp_link);
	sock_destroy_bpf__destroy(ud->skel);
	free(ud);
}
