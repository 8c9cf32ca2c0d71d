// SPDX-License-Identifier: Apache-2.0
/*
 * read_stats of the BPF datapath: every Service's name, rate limit and
 * counters, read from the pinned maps alone (sluicectl and /metrics).
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

/* A new entry for id, named by its id until service_info names it. */
static struct service_stats *stats_append(struct service_stats **arr, size_t *n, size_t *cap,
					  __u32 id)
{
	grow((void **)arr, cap, *n, sizeof(**arr));
	memset(&(*arr)[*n], 0, sizeof(**arr));
	(*arr)[*n].service_id = id;
	snprintf((*arr)[*n].service, sizeof((*arr)[*n].service), "service-id %u", id);
	return &(*arr)[(*n)++];
}

static int cmp_stats_id(const void *a, const void *b)
{
	const struct service_stats *x = a, *y = b;

	return (x->service_id > y->service_id) - (x->service_id < y->service_id);
}

/*
 * The entry for id: found among the first n_sorted (sorted by id), else
 * appended.
 */
static struct service_stats *stats_entry(struct service_stats **arr, size_t *n, size_t *cap,
					 size_t n_sorted, __u32 id)
{
	struct service_stats probe = { .service_id = id }, *hit;
	size_t i;

	hit = n_sorted ? bsearch(&probe, *arr, n_sorted, sizeof(**arr), cmp_stats_id) : NULL;
	if (hit)
		return hit;
	/* Counters without a name are rare (a Service going away): a short scan. */
	for (i = n_sorted; i < *n; i++) {
		if ((*arr)[i].service_id == id)
			return &(*arr)[i];
	}
	return stats_append(arr, n, cap, id);
}

static int cmp_stats(const void *a, const void *b)
{
	const struct service_stats *x = a, *y = b;
	int c = strcmp(x->service, y->service);

	return c ? c : (x->service_id > y->service_id) - (x->service_id < y->service_id);
}

/*
 * Every Service with a name (service_info) or counters (summed over CPUs),
 * read from the pins alone: sluicectl runs beside the agent.
 */
int bpf_read_stats(const struct datapath_config *cfg, struct service_stats **out, size_t *n_out)
{
	struct service_stats *arr = NULL, *e;
	struct sl_service_counters *percpu = NULL;
	struct sl_service_info info;
	char path[PATH_MAX];
	size_t n = 0, cap = 0, n_named;
	int info_fd, counters_fd, ncpus, cpu, err = 0;
	__u32 key, next;
	void *prev;

	*out = NULL;
	*n_out = 0;
	info_fd = open_pin(cfg, "service_info", path);
	if (info_fd < 0)
		return info_fd;
	counters_fd = open_pin(cfg, "service_counters", path);
	if (counters_fd < 0) {
		close(info_fd);
		return counters_fd;
	}
	ncpus = libbpf_num_possible_cpus();
	if (ncpus <= 0) {
		err = ncpus ? ncpus : -EINVAL;
		goto out;
	}
	percpu = xcalloc(ncpus, sizeof(*percpu));
	for (prev = NULL; bpf_map_get_next_key(info_fd, prev, &next) == 0; prev = &key) {
		key = next;
		if (bpf_map_lookup_elem(info_fd, &key, &info))
			continue;
		e = stats_append(&arr, &n, &cap, key); /* keys are unique */
		info.name[sizeof(info.name) - 1] = '\0';
		snprintf(e->service, sizeof(e->service), "%s", info.name);
		e->rate.count = info.rate_count;
		e->rate.period = info.rate_period;
		e->rate.burst = info.rate_burst;
	}
	if (n)
		qsort(arr, n, sizeof(*arr), cmp_stats_id);
	n_named = n;
	for (prev = NULL; bpf_map_get_next_key(counters_fd, prev, &next) == 0; prev = &key) {
		key = next;
		if (bpf_map_lookup_elem(counters_fd, &key, percpu))
			continue;
		e = stats_entry(&arr, &n, &cap, n_named, key);
		for (cpu = 0; cpu < ncpus; cpu++) {
			e->admitted += percpu[cpu].admitted;
			e->limited += percpu[cpu].limited;
		}
	}
	if (n)
		qsort(arr, n, sizeof(*arr), cmp_stats);
out:
	free(percpu);
	close(info_fd);
	close(counters_fd);
	if (err) {
		free(arr);
		return err;
	}
	*out = arr;
	*n_out = n;
	return 0;
}

int bpf_read_agent_state(const struct datapath_config *cfg, struct sl_agent_state *out)
{
	char path[PATH_MAX];
	__u32 key = 0;
	int fd, err = 0;

	memset(out, 0, sizeof(*out));
	fd = open_pin(cfg, "agent_state", path);
	if (fd < 0)
		return fd;
	if (bpf_map_lookup_elem(fd, &key, out))
		err = -errno;
	close(fd);
	return err;
}

/*
 * Services not programmed for lack of room, as the agent counted them at
 * its last apply (0 before an agent that counts them has applied).
 */
int bpf_services_not_programmed(const struct datapath_config *cfg, uint64_t *n)
{
	struct sl_agent_state st;
	int err = bpf_read_agent_state(cfg, &st);

	*n = err ? 0 : st.services_not_programmed;
	return err == -ENOENT ? 0 : err;
}
