// SPDX-License-Identifier: Apache-2.0
/*
 * read_flow_counters and read_table_usage of the BPF datapath, from the
 * pins alone: per Service the admitted / limited counters (read_stats)
 * and the refusals by reason (service_refused), summed over CPUs; and
 * how full each map is.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/types.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "datapath/bpf/bpf_datapath.h"
#include "lib/xalloc.h"
#include "shared.h"

/* Both paths count every outcome; source ranges only where they are checked (tc). */
#define BPF_COUNTED ((1u << FLOW_OUTCOMES) - 1)

static int cmp_id(const void *a, const void *b)
{
	const struct flow_counters *x = a, *y = b;

	return (x->service_id > y->service_id) - (x->service_id < y->service_id);
}

static int cmp_name(const void *a, const void *b)
{
	const struct flow_counters *x = a, *y = b;
	int c = strcmp(x->service, y->service);

	return c ? c : cmp_id(a, b);
}

/* Adds service_refused to arr[0..*n) (sorted by id); ids without an entry are appended. */
static int add_refused(const struct datapath_config *cfg, struct flow_counters **arr, size_t *n,
		       size_t *cap)
{
	struct sl_service_refused *percpu;
	struct flow_counters probe, *e;
	char path[PATH_MAX];
	size_t n_sorted = *n;
	int fd, ncpus, cpu;
	__u32 key, next;
	void *prev;

	fd = open_pin(cfg, "service_refused", path);
	if (fd == -ENOENT)
		return 0; /* pins of an agent that did not count refusals */
	if (fd < 0)
		return fd;
	ncpus = libbpf_num_possible_cpus();
	if (ncpus <= 0) {
		close(fd);
		return ncpus ? ncpus : -EINVAL;
	}
	percpu = xcalloc(ncpus, sizeof(*percpu));
	for (prev = NULL; bpf_map_get_next_key(fd, prev, &next) == 0; prev = &key) {
		key = next;
		if (bpf_map_lookup_elem(fd, &key, percpu))
			continue;
		probe.service_id = key;
		e = n_sorted ? bsearch(&probe, *arr, n_sorted, sizeof(**arr), cmp_id) : NULL;
		if (!e) {
			grow((void **)arr, cap, *n, sizeof(**arr));
			e = &(*arr)[(*n)++];
			memset(e, 0, sizeof(*e));
			e->service_id = key;
			e->counted = BPF_COUNTED;
			snprintf(e->service, sizeof(e->service), "service-id %u", key);
		}
		for (cpu = 0; cpu < ncpus; cpu++) {
			e->flows[FLOW_NO_ENDPOINTS] += percpu[cpu].no_endpoints;
			e->flows[FLOW_POLICY_DROP] += percpu[cpu].policy_drop;
			e->flows[FLOW_SOURCE_RANGE] += percpu[cpu].source_range;
		}
	}
	free(percpu);
	close(fd);
	return 0;
}

int bpf_read_flow_counters(const struct datapath_config *cfg, struct flow_counters **out,
			   size_t *n_out)
{
	struct service_stats *st = NULL;
	struct flow_counters *arr = NULL;
	size_t n_st = 0, n = 0, cap = 0;
	int err;

	*out = NULL;
	*n_out = 0;
	err = bpf_read_stats(cfg, &st, &n_st);
	if (err == -ENOENT)
		return 0; /* nothing pinned: no counters */
	if (err)
		return err;
	for (size_t i = 0; i < n_st; i++) {
		struct flow_counters *e;

		grow((void **)&arr, &cap, n, sizeof(*arr));
		e = &arr[n++];
		memset(e, 0, sizeof(*e));
		memcpy(e->service, st[i].service, sizeof(e->service));
		e->service_id = st[i].service_id;
		e->rate = st[i].rate;
		e->flows[FLOW_ADMITTED] = st[i].admitted;
		e->flows[FLOW_RATE_LIMITED] = st[i].limited;
		e->counted = BPF_COUNTED;
	}
	free(st);
	if (n)
		qsort(arr, n, sizeof(*arr), cmp_id);
	err = add_refused(cfg, &arr, &n, &cap);
	if (err) {
		free(arr);
		return err;
	}
	if (n)
		qsort(arr, n, sizeof(*arr), cmp_name);
	*out = arr;
	*n_out = n;
	return 0;
}

/* The maps worth watching, by pin name, and the name the metric gives each. */
static const struct {
	const char *pin, *table;
} usage_maps[] = {
	{ "services", "services" },	   { "backends", "backends" },
	{ "service_info", "service_ids" }, { "conntrack", "conntrack" },
	{ "affinity", "affinity" },	   { "revnat", "revnat" },
	{ "udp_flows", "udp_flows" },	   { "source_ranges", "source_ranges" },
};

/* Entries of a map: one key walk (a scrape every few seconds affords it). */
static uint64_t count_keys(int fd, __u32 key_size)
{
	char key[256], next[256];
	uint64_t n = 0;
	void *prev = NULL;

	if (key_size > sizeof(key))
		return 0;
	while (bpf_map_get_next_key(fd, prev, next) == 0) {
		memcpy(key, next, key_size);
		prev = key;
		n++;
	}
	return n;
}

int bpf_read_table_usage(const struct datapath_config *cfg, struct table_usage **out, size_t *n)
{
	size_t cap = sizeof(usage_maps) / sizeof(usage_maps[0]);
	struct table_usage *arr = xcalloc(cap, sizeof(*arr));
	char path[PATH_MAX];

	*n = 0;
	for (size_t i = 0; i < cap; i++) {
		struct bpf_map_info info;
		__u32 len = sizeof(info);
		int fd = open_pin(cfg, usage_maps[i].pin, path);

		if (fd < 0)
			continue; /* not pinned: no tc path, or an older agent's pins */
		memset(&info, 0, sizeof(info));
		if (!bpf_obj_get_info_by_fd(fd, &info, &len)) {
			arr[*n].name = usage_maps[i].table;
			arr[*n].capacity = info.max_entries;
			arr[*n].entries = count_keys(fd, info.key_size);
			(*n)++;
		}
		close(fd);
	}
	*out = arr;
	return 0;
}
