// SPDX-License-Identifier: Apache-2.0
/*
 * sluicectl: shows what the BPF datapath is doing, read straight from the
 * pinned maps under the bpffs directory (no agent needed).
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/types.h>
#include <bpf/bpf.h>

#include "shared.h"

#define DEFAULT_BPFFS "/sys/fs/bpf/sluice"

struct service_entry {
	struct sl_service_key key;
	struct sl_service val;
};

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: sluicectl [--bpffs=PATH] COMMAND\n"
		"\n"
		"Reads the BPF datapath's pinned maps.\n"
		"\n"
		"Commands:\n"
		"  services     every frontend (address:port/proto, action, service id,\n"
		"               session affinity), each followed by its backends\n"
		"\n"
		"Options:\n"
		"  --bpffs=PATH pin directory of the agent (default %s)\n"
		"  -h, --help   this text\n",
		DEFAULT_BPFFS);
}

static int open_pinned_map(const char *bpffs, const char *name)
{
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/%s/%s", bpffs, SL_PIN_MAPS_DIR, name);
	fd = bpf_obj_get(path);
	if (fd < 0)
		fprintf(stderr, "sluicectl: cannot open pinned map %s: %s%s\n", path,
			strerror(errno),
			errno == ENOENT ? " (is the agent running with the BPF datapath, "
					  "and is --bpffs right?)" :
					  "");
	return fd;
}

/* "10.0.0.1:80" or "[fd00::1]:80"; port in network order, 0 printed as "*". */
static void format_endpoint(const __u8 addr[16], __u8 family, __u16 port, char *buf,
			    size_t len)
{
	char text[INET6_ADDRSTRLEN] = "?";
	char port_text[8] = "*";

	inet_ntop(family == SL_AF_INET ? AF_INET : AF_INET6, addr, text, sizeof(text));
	if (port)
		snprintf(port_text, sizeof(port_text), "%u", ntohs(port));
	if (family == SL_AF_INET)
		snprintf(buf, len, "%s:%s", text, port_text);
	else
		snprintf(buf, len, "[%s]:%s", text, port_text);
}

static const char *proto_name(__u8 proto)
{
	static char other[8];

	switch (proto) {
	case 0:
		return "*";
	case 6:
		return "tcp";
	case 17:
		return "udp";
	case 132:
		return "sctp";
	}
	snprintf(other, sizeof(other), "%u", proto);
	return other;
}

static const char *action_name(__u32 action)
{
	switch (action) {
	case SL_ACTION_SERVE:
		return "serve";
	case SL_ACTION_REFUSE:
		return "refuse";
	case SL_ACTION_DROP:
		return "drop";
	}
	return "unknown";
}

/* Family, address, then the marker before real ports, then port and protocol. */
static int cmp_entries(const void *a, const void *b)
{
	const struct sl_service_key *x = &((const struct service_entry *)a)->key;
	const struct sl_service_key *y = &((const struct service_entry *)b)->key;
	int c;

	if (x->family != y->family)
		return x->family < y->family ? -1 : 1;
	c = memcmp(x->addr, y->addr, sizeof(x->addr));
	if (c)
		return c;
	if (ntohs(x->port) != ntohs(y->port))
		return ntohs(x->port) < ntohs(y->port) ? -1 : 1;
	return x->proto < y->proto ? -1 : x->proto > y->proto;
}

static void print_entry(const struct service_entry *e, int backends_fd)
{
	struct sl_backend_key slot = { .backend_set = e->val.backend_set };
	char front[64], back[64];
	struct sl_backend be;

	format_endpoint(e->key.addr, e->key.family, e->key.port, front, sizeof(front));
	if (!e->key.port && !e->key.proto) {
		printf("%s/* %s service=%u (other ports of this address)\n", front,
		       action_name(e->val.action), e->val.service_id);
		return;
	}
	printf("%s/%s %s service=%u affinity=", front, proto_name(e->key.proto),
	       action_name(e->val.action), e->val.service_id);
	if (e->val.affinity_timeout)
		printf("%us", e->val.affinity_timeout);
	else
		printf("none");
	printf(" backends=%u\n", e->val.count);
	for (slot.slot = 0; slot.slot < e->val.count; slot.slot++) {
		if (bpf_map_lookup_elem(backends_fd, &slot, &be)) {
			printf("    slot %u: missing\n", slot.slot);
			continue;
		}
		format_endpoint(be.addr, be.family, be.port, back, sizeof(back));
		printf("    %s\n", back);
	}
}

static int cmd_services(const char *bpffs)
{
	struct service_entry *entries = NULL, *bigger;
	struct sl_service_key key, next;
	size_t n = 0, cap = 0, i;
	int services_fd, backends_fd, err = 1;
	void *prev = NULL;

	services_fd = open_pinned_map(bpffs, "services");
	if (services_fd < 0)
		return 1;
	backends_fd = open_pinned_map(bpffs, "backends");
	if (backends_fd < 0) {
		close(services_fd);
		return 1;
	}
	while (bpf_map_get_next_key(services_fd, prev, &next) == 0) {
		key = next;
		prev = &key;
		if (n == cap) {
			cap = cap ? cap * 2 : 256;
			bigger = realloc(entries, cap * sizeof(*entries));
			if (!bigger) {
				fprintf(stderr, "sluicectl: out of memory\n");
				goto out;
			}
			entries = bigger;
		}
		entries[n].key = key;
		if (bpf_map_lookup_elem(services_fd, &key, &entries[n].val) == 0)
			n++;
	}
	qsort(entries, n, sizeof(*entries), cmp_entries);
	for (i = 0; i < n; i++)
		print_entry(&entries[i], backends_fd);
	err = 0;
out:
	free(entries);
	close(services_fd);
	close(backends_fd);
	return err;
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "bpffs", required_argument, NULL, 'b' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *bpffs = DEFAULT_BPFFS;
	int opt;

	while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
		switch (opt) {
		case 'b':
			bpffs = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[optind], "services"))
		return cmd_services(bpffs);
	fprintf(stderr, "sluicectl: unknown command '%s'\n", argv[optind]);
	usage(stderr);
	return 2;
}
