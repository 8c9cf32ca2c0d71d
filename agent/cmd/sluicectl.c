// SPDX-License-Identifier: Apache-2.0
/*
 * sluicectl: shows what the datapath in place is doing, read straight from
 * the kernel (the BPF pins, or the nftables table), no agent needed.
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

#include "datapath/datapath.h"
#include "core/model.h"
#include "lib/log.h"
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
		"Reads the datapath in place: the BPF pins, else the nftables table.\n"
		"\n"
		"Commands:\n"
		"  services     every frontend (address:port/proto, action, Service,\n"
		"               session affinity, rate limit), each followed by its backends\n"
		"  ratelimits   per Service: limit, burst, new flows admitted and limited\n"
		"\n"
		"Options:\n"
		"  --bpffs=PATH pin directory of the agent (default %s)\n"
		"  -h, --help   this text\n",
		DEFAULT_BPFFS);
}

/* A pinned map's fd; a missing optional map (required false) is not reported. */
static int open_pinned_map(const char *bpffs, const char *name, bool required)
{
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/%s/%s", bpffs, SL_PIN_MAPS_DIR, name);
	fd = bpf_obj_get(path);
	if (fd < 0 && (required || errno != ENOENT))
		fprintf(stderr, "sluicectl: cannot open pinned map %s: %s%s\n", path,
			strerror(errno),
			errno == ENOENT ? " (is the agent running with the BPF datapath, "
					  "and is --bpffs right?)" :
					  "");
	return fd;
}

/* "10.0.0.1:80" or "[fd00::1]:80"; port in network order, 0 printed as "*". */
static void format_endpoint(const __u8 addr[16], __u8 family, __u16 port, char *buf, size_t len)
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

	if (!proto)
		return "*";
	if (l4_proto_name(proto))
		return l4_proto_name(proto);
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

/* "50/s", "10/m", or "none". */
static const char *format_rate(const struct rate_limit *rl, char *buf, size_t len)
{
	if (!rl->count)
		snprintf(buf, len, "none");
	else
		snprintf(buf, len, "%u/%s", rl->count, rl->period == 60 ? "m" : "s");
	return buf;
}

static void print_entry(const struct service_entry *e, int backends_fd, int info_fd)
{
	struct sl_backend_key slot = { .backend_set = e->val.backend_set };
	struct sl_service_info info;
	struct rate_limit rl = { 0 };
	char front[64], back[64], rate[32];
	const char *name = "?";
	struct sl_backend be;

	if (info_fd >= 0 && bpf_map_lookup_elem(info_fd, &e->val.service_id, &info) == 0) {
		info.name[sizeof(info.name) - 1] = '\0';
		name = info.name;
		rl.count = info.rate_count;
		rl.period = info.rate_period;
		rl.burst = info.rate_burst;
	}
	format_endpoint(e->key.addr, e->key.family, e->key.port, front, sizeof(front));
	if (!e->key.port && !e->key.proto) {
		printf("%s/* %s service=%u %s (other ports of this address)\n", front,
		       action_name(e->val.action), e->val.service_id, name);
		return;
	}
	printf("%s/%s %s service=%u %s affinity=", front, proto_name(e->key.proto),
	       action_name(e->val.action), e->val.service_id, name);
	if (e->val.affinity_timeout)
		printf("%us", e->val.affinity_timeout);
	else
		printf("none");
	printf(" rate=%s", format_rate(&rl, rate, sizeof(rate)));
	if (rl.count)
		printf(" burst=%u", rl.burst);
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
	int services_fd, backends_fd, info_fd, err = 1;
	void *prev = NULL;

	services_fd = open_pinned_map(bpffs, "services", true);
	if (services_fd < 0)
		return 1;
	backends_fd = open_pinned_map(bpffs, "backends", true);
	if (backends_fd < 0) {
		close(services_fd);
		return 1;
	}
	/* Names are for people: an older agent's pins without them still list. */
	info_fd = open_pinned_map(bpffs, "service_info", false);
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
		print_entry(&entries[i], backends_fd, info_fd);
	err = 0;
out:
	free(entries);
	close(services_fd);
	close(backends_fd);
	if (info_fd >= 0)
		close(info_fd);
	return err;
}

/* The datapath whose state is in the kernel: BPF pins first, then the nft table. */
static const struct datapath_ops *datapath_in_place(const struct datapath_config *cfg)
{
	if (bpf_datapath_ops.present(cfg))
		return &bpf_datapath_ops;
	if (nft_datapath_ops.present && nft_datapath_ops.present(cfg))
		return &nft_datapath_ops;
	return NULL;
}

static int cmd_ratelimits(const struct datapath_config *cfg)
{
	const struct datapath_ops *ops = datapath_in_place(cfg);
	struct service_stats *stats = NULL;
	char rate[32], burst[16];
	size_t n = 0, i;
	int err;

	if (!ops) {
		fprintf(stderr,
			"sluicectl: no datapath in place (no pins under %s, no nftables "
			"table sluice)\n",
			cfg->bpffs);
		return 1;
	}
	err = ops->read_stats ? ops->read_stats(cfg, &stats, &n) : -EOPNOTSUPP;
	if (err) {
		fprintf(stderr, "sluicectl: cannot read the %s datapath's counters: %s\n",
			ops->name, strerror(-err));
		return 1;
	}
	printf("%-40s %-12s %-10s %12s %12s\n", "SERVICE", "LIMIT", "BURST", "ADMITTED", "LIMITED");
	for (i = 0; i < n; i++) {
		if (stats[i].rate.count)
			snprintf(burst, sizeof(burst), "%u", stats[i].rate.burst);
		else
			snprintf(burst, sizeof(burst), "-");
		printf("%-40s %-12s %-10s %12llu %12llu\n", stats[i].service,
		       format_rate(&stats[i].rate, rate, sizeof(rate)), burst,
		       (unsigned long long)stats[i].admitted, (unsigned long long)stats[i].limited);
	}
	free(stats);
	return 0;
}

static int cmd_services_any(const struct datapath_config *cfg)
{
	const struct datapath_ops *ops = datapath_in_place(cfg);

	if (ops == &nft_datapath_ops) {
		printf("nftables datapath: frontends: see nft list table inet sluice\n\n");
		return cmd_ratelimits(cfg);
	}
	return cmd_services(cfg->bpffs);
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "bpffs", required_argument, NULL, 'b' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct datapath_config cfg = { .bpffs = DEFAULT_BPFFS };
	int opt;

	while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
		switch (opt) {
		case 'b':
			cfg.bpffs = optarg;
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
	/* The datapath code logs through log.h: keep sluicectl's output to errors. */
	log_set_level(LOG_WARN);
	if (!strcmp(argv[optind], "services"))
		return cmd_services_any(&cfg);
	if (!strcmp(argv[optind], "ratelimits"))
		return cmd_ratelimits(&cfg);
	fprintf(stderr, "sluicectl: unknown command '%s'\n", argv[optind]);
	usage(stderr);
	return 2;
}
