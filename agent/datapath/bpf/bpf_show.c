// SPDX-License-Identifier: Apache-2.0
/*
 * sluicectl services on the BPF datapath: every frontend of the pinned
 * services map, sorted, with its Service's name and limit (service_info)
 * and its backend slots, read straight from the pins, no agent needed.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/types.h>
#include <bpf/bpf.h>

#include "core/model.h"
#include "core/ratelimit.h"
#include "datapath/bpf/bpf_datapath.h"
#include "datapath/bpf/bpf_maglev.h"
#include "datapath/bpf/bpf_show.h"
#include "lib/xalloc.h"
#include "shared.h"

struct service_entry {
	struct sl_service_key key;
	struct sl_service val;
};

/* A pinned map's fd; a missing optional map (required false) is not reported. */
static int open_pinned_map(const struct datapath_config *cfg, const char *name, bool required)
{
	char path[PATH_MAX];
	int fd;

	fd = open_pin(cfg, name, path);
	if (fd < 0 && (required || fd != -ENOENT))
		fprintf(stderr, "sluicectl: cannot open pinned map %s: %s%s\n", path, strerror(-fd),
			fd == -ENOENT ? " (is the agent running with the BPF datapath, "
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

static void print_slots(__u32 set, __u32 count, int backends_fd, FILE *out)
{
	struct sl_backend_key slot = { .backend_set = set };
	struct sl_backend be;
	char back[64];

	for (slot.slot = 0; slot.slot < count; slot.slot++) {
		if (bpf_map_lookup_elem(backends_fd, &slot, &be)) {
			fprintf(out, "    slot %u: missing\n", slot.slot);
			continue;
		}
		format_endpoint(be.addr, be.family, be.port, back, sizeof(back));
		fprintf(out, "    %s\n", back);
	}
}

static void print_entry(const struct service_entry *e, int backends_fd, int info_fd, int maglev_fd,
			FILE *out)
{
	struct sl_service_info info;
	struct rate_limit rl = { 0 };
	char front[64], rate[32];
	const char *name = "?";

	if (info_fd >= 0 && bpf_map_lookup_elem(info_fd, &e->val.service_id, &info) == 0) {
		info.name[sizeof(info.name) - 1] = '\0';
		name = info.name;
		rl.count = info.rate_count;
		rl.period = info.rate_period;
		rl.burst = info.rate_burst;
	}
	format_endpoint(e->key.addr, e->key.family, e->key.port, front, sizeof(front));
	if (!e->key.port && !e->key.proto) {
		fprintf(out, "%s/* %s service=%u %s (other ports of this address)\n", front,
			action_name(e->val.action), e->val.service_id, name);
		return;
	}
	fprintf(out, "%s/%s %s service=%u %s affinity=", front, proto_name(e->key.proto),
		action_name(e->val.action), e->val.service_id, name);
	if (e->val.affinity_timeout)
		fprintf(out, "%us", e->val.affinity_timeout);
	else
		fprintf(out, "none");
	fprintf(out, " rate=%s", rate_limit_format(&rl, rate, sizeof(rate)));
	if (rl.count)
		fprintf(out, " burst=%u", rl.burst);
	if (e->val.flags & SL_SVC_F_DSR)
		fprintf(out, " forwarding=dsr");
	fprintf(out, " backends=%u", e->val.count);
	/* lb=maglev: the tc path picks by maps/maglev's table of this set (its size shown). */
	if (e->val.flags & SL_SVC_F_MAGLEV)
		fprintf(out, " lb=maglev table=%u",
			maglev_fd >= 0 ? bpf_maglev_size(maglev_fd, e->val.backend_set) : 0);
	fprintf(out, "\n");
	print_slots(e->val.backend_set, e->val.count, backends_fd, out);
	if (e->val.flags & SL_SVC_F_NODE_SET) {
		fprintf(out, "  from this node: %s backends=%u\n",
			e->val.node_count ? "serve" : "refuse", e->val.node_count);
		print_slots(e->val.node_set, e->val.node_count, backends_fd, out);
	}
}

int bpf_print_frontends(const struct datapath_config *cfg, FILE *out)
{
	struct service_entry *entries = NULL;
	struct sl_service_key key, next;
	struct sl_agent_state st;
	size_t n = 0, cap = 0, i;
	int services_fd, backends_fd, info_fd, maglev_fd;
	void *prev = NULL;

	services_fd = open_pinned_map(cfg, "services", true);
	if (services_fd < 0)
		return 1;
	backends_fd = open_pinned_map(cfg, "backends", true);
	if (backends_fd < 0) {
		close(services_fd);
		return 1;
	}
	/* Names are for people: an older agent's pins without them still list. */
	info_fd = open_pinned_map(cfg, "service_info", false);
	maglev_fd = open_pinned_map(cfg, "maglev", false);
	while (bpf_map_get_next_key(services_fd, prev, &next) == 0) {
		key = next;
		prev = &key;
		grow((void **)&entries, &cap, n, sizeof(*entries));
		entries[n].key = key;
		if (bpf_map_lookup_elem(services_fd, &key, &entries[n].val) == 0)
			n++;
	}
	if (n)
		qsort(entries, n, sizeof(*entries), cmp_entries);
	for (i = 0; i < n; i++)
		print_entry(&entries[i], backends_fd, info_fd, maglev_fd, out);
	/* Services the agent found no room for are in no map: say so, beside the listing. */
	if (bpf_read_agent_state(cfg, &st) == 0 && st.services_not_programmed)
		fprintf(stderr,
			"sluicectl: %u Services not programmed: the BPF maps hold %u Services "
			"(--max-services); the agent's log names them\n",
			st.services_not_programmed, st.max_services);
	free(entries);
	close(services_fd);
	close(backends_fd);
	if (info_fd >= 0)
		close(info_fd);
	if (maglev_fd >= 0)
		close(maglev_fd);
	return 0;
}
