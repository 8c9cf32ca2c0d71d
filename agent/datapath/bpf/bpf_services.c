// SPDX-License-Identifier: Apache-2.0
/*
 * The BPF datapath's per-Service entries: a place within --max-services,
 * the Service's name and rate limit, its bucket and counters; on a full
 * apply, the adopted entries settled and the order in which Services get
 * places.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <linux/types.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "core/ratelimit.h"
#include "datapath/bpf/bpf_dump.h"
#include "datapath/bpf/bpf_services.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "shared.h"
#include "sock.skel.h"

/* ---- per-Service entries: name, rate limit, bucket, counters ---- */

static void service_info_of(const struct frontend *fe, struct sl_service_info *info)
{
	memset(info, 0, sizeof(*info));
	snprintf(info->name, sizeof(info->name), "%s", fe->service ? fe->service : "");
	info->rate_count = fe->rate.count;
	info->rate_period = fe->rate.count ? fe->rate.period : 0;
	info->rate_burst = fe->rate.count ? fe->rate.burst : 0;
	info->rate_interval_ns = rate_limit_interval_ns(&fe->rate);
	info->rate_depth_ns = rate_limit_depth_ns(&fe->rate);
}

/* Removes the Service's name, bucket and counters (its last frontend went). */
void bpf_forget_service(struct datapath *dp, __u32 id)
{
	bpf_map_delete_elem(bpf_map__fd(dp->skel->maps.service_info), &id);
	bpf_map_delete_elem(bpf_map__fd(dp->skel->maps.rate_buckets), &id);
	bpf_map_delete_elem(bpf_map__fd(dp->skel->maps.service_counters), &id);
	bpf_map_delete_elem(bpf_map__fd(dp->skel->maps.service_refused), &id);
}

/*
 * Writes the Service's name and limit if they changed. Another name under
 * the id (left by an agent before a restart, which numbers Services anew)
 * starts the bucket and counters afresh; a new limit starts a full bucket,
 * because a TAT charged at a slow old rate could run hours ahead. No name
 * at all (a new Service, or an id the engine reused) also starts afresh: a
 * program that looked the id's last frontend up just before it went may
 * have left a bucket or counters behind.
 */
int bpf_sync_service_info(struct datapath *dp, const struct frontend *fe)
{
	int info_fd = bpf_map__fd(dp->skel->maps.service_info);
	struct sl_service_info want, have;
	__u32 id = fe->service_id;
	char name[128];
	int err;

	service_info_of(fe, &want);
	if (bpf_map_lookup_elem(info_fd, &id, &have) == 0) {
		if (!memcmp(&have, &want, sizeof(want)))
			return 0;
		/*
		 * A ClusterIP's marker (protocol 0, port 0) carries no rate limit:
		 * it must not overwrite the limit its Service's ports wrote.
		 */
		if (!fe->key.proto && !fe->key.port && !strcmp(have.name, want.name))
			return 0;
		if (strcmp(have.name, want.name)) {
			bpf_map_delete_elem(bpf_map__fd(dp->skel->maps.service_counters), &id);
			bpf_map_delete_elem(bpf_map__fd(dp->skel->maps.service_refused), &id);
			bpf_map_delete_elem(bpf_map__fd(dp->skel->maps.rate_buckets), &id);
		} else if (have.rate_interval_ns != want.rate_interval_ns ||
			   have.rate_depth_ns != want.rate_depth_ns) {
			bpf_map_delete_elem(bpf_map__fd(dp->skel->maps.rate_buckets), &id);
		}
	} else {
		bpf_map_delete_elem(bpf_map__fd(dp->skel->maps.service_counters), &id);
		bpf_map_delete_elem(bpf_map__fd(dp->skel->maps.service_refused), &id);
		bpf_map_delete_elem(bpf_map__fd(dp->skel->maps.rate_buckets), &id);
	}
	if (bpf_map_update_elem(info_fd, &id, &want, BPF_ANY)) {
		err = -errno;
		if (!bpf_map_full(err))
			pr_warn("bpf: %s: cannot write the service_info entry: %s",
				bpf_frontend_name(fe, name, sizeof(name)), strerror(-err));
		return err;
	}
	return 0;
}

static void frontends_of_fit(struct datapath *dp, __u32 id)
{
	size_t n;
	__u32 *bigger;

	if (id < dp->n_frontends_of)
		return;
	n = dp->n_frontends_of ? dp->n_frontends_of : 256;
	while (n <= id)
		n *= 2;
	bigger = xreallocarray(dp->frontends_of, n, sizeof(*bigger));
	memset(bigger + dp->n_frontends_of, 0, (n - dp->n_frontends_of) * sizeof(*bigger));
	dp->frontends_of = bigger;
	dp->n_frontends_of = n;
}

/*
 * Gives fe's Service a place: its service_info entry, one of max_services.
 * Its frontends waiting for room count as its frontends from now on (the
 * caller writes them). Returns 0, SL_NO_PLACE, or -errno (-E2BIG: the
 * service_info map is full, of entries an adopted map still holds until
 * the sweep after a full apply).
 */
int bpf_place_service(struct datapath *dp, const struct frontend *fe)
{
	struct bpf_pending *p = bpf_pending_of(dp, fe->service_id);
	int err;

	if (dp->n_placed >= dp->max_services)
		return SL_NO_PLACE;
	err = bpf_sync_service_info(dp, fe);
	if (err)
		return err;
	frontends_of_fit(dp, fe->service_id);
	dp->frontends_of[fe->service_id] = p ? p->n : 0;
	dp->n_placed++;
	return 0;
}

void bpf_service_ref(struct datapath *dp, const struct frontend *fe)
{
	frontends_of_fit(dp, fe->service_id);
	dp->frontends_of[fe->service_id]++;
}

void bpf_service_unref(struct datapath *dp, const struct frontend *fe)
{
	__u32 id = fe->service_id;

	if (bpf_placed(dp, id) && !--dp->frontends_of[id]) {
		bpf_forget_service(dp, id);
		dp->n_placed--;
	}
}

struct sweep_ids {
	struct datapath *dp;
	__u32 *stale;
	size_t n, cap;
};

static int sweep_id(const void *key, const void *val, void *data)
{
	struct sweep_ids *s = data;
	__u32 id;

	(void)val;
	memcpy(&id, key, sizeof(id));
	if (!bpf_placed(s->dp, id)) {
		grow((void **)&s->stale, &s->cap, s->n, sizeof(*s->stale));
		s->stale[s->n++] = id;
	}
	return 0;
}

/* After a full apply: drop per-Service entries of ids no programmed frontend has. */
void bpf_sweep_services(struct datapath *dp)
{
	const struct bpf_map *maps[] = {
		dp->skel->maps.service_info,
		dp->skel->maps.rate_buckets,
		dp->skel->maps.service_counters,
		dp->skel->maps.service_refused,
	};
	struct sweep_ids s = { .dp = dp };

	for (size_t m = 0; m < sizeof(maps) / sizeof(maps[0]); m++) {
		s.n = 0;
		/* Read in batches: a syscall per chunk, not per Service. */
		bpf_map_each_of(maps[m], sweep_id, &s);
		for (size_t i = 0; i < s.n; i++)
			bpf_map_delete_elem(bpf_map__fd(maps[m]), &s.stale[i]);
	}
	free(s.stale);
}

/* ---- a full apply: adopted per-Service entries, who goes first ---- */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void bpf_full_prep_init(struct bpf_full_prep *fp, const struct state_diff *diff)
{
	const struct frontend *fe;
	size_t i;

	memset(fp, 0, sizeof(*fp));
	for (i = 0; i < diff->n_changes; i++) {
		fe = diff->changes[i].new;
		if (fe && fe->service_id > fp->max_id)
			fp->max_id = fe->service_id;
	}
	fp->name_of = xcalloc((size_t)fp->max_id + 1, sizeof(*fp->name_of));
	for (i = 0; i < diff->n_changes; i++) {
		fe = diff->changes[i].new;
		if (!fe || fp->name_of[fe->service_id])
			continue;
		fp->name_of[fe->service_id] = fe->service ? fe->service : "";
		fp->n_services++;
	}
}

/*
 * The adopted per-Service entries were numbered by the agent before this
 * one: an id that now names another Service, or none, loses its name,
 * bucket and counters, so that they hold no room this run's Services need
 * (the sweep after the apply would come too late: places are given during
 * it). Done when service_info turns out full, or when not every Service
 * fits; names (if not NULL) gets the names the map held, sorted.
 */
void bpf_drop_renumbered(struct datapath *dp, struct bpf_full_prep *fp, char ***names,
			 size_t *n_names)
{
	int info_fd = bpf_map__fd(dp->skel->maps.service_info);
	size_t n_stale = 0, cap_stale = 0, cap = 0, i;
	struct sl_service_info info;
	__u32 key, next, *stale = NULL;
	void *prev;

	fp->renumbered = true;
	for (prev = NULL; bpf_map_get_next_key(info_fd, prev, &next) == 0; prev = &key) {
		key = next;
		if (bpf_map_lookup_elem(info_fd, &key, &info))
			continue;
		info.name[sizeof(info.name) - 1] = '\0';
		if (names) {
			grow((void **)names, &cap, *n_names, sizeof(**names));
			(*names)[(*n_names)++] = xstrdup(info.name);
		}
		if (key <= fp->max_id && fp->name_of[key] && !strcmp(fp->name_of[key], info.name))
			continue;
		grow((void **)&stale, &cap_stale, n_stale, sizeof(*stale));
		stale[n_stale++] = key;
	}
	for (i = 0; i < n_stale; i++)
		bpf_forget_service(dp, stale[i]);
	free(stale);
	if (names && *n_names)
		qsort(*names, *n_names, sizeof(**names), cmp_str);
}

/*
 * A full apply with more Services than places: the Services the adopted
 * service_info names (those served before the restart) take places first,
 * so that restarting with the same flag does not change which Services
 * are served. Returns the order of the changes, or NULL for the diff's own
 * (every Service fits).
 */
size_t *bpf_full_apply_order(struct datapath *dp, const struct state_diff *diff,
			     struct bpf_full_prep *fp)
{
	const struct frontend *fe;
	size_t n_names = 0, i, k = 0, *order;
	char **names = NULL;
	const char *name;
	int pass;

	if (fp->n_services <= dp->max_services)
		return NULL;
	bpf_drop_renumbered(dp, fp, &names, &n_names);
	order = xcalloc(diff->n_changes, sizeof(*order));
	for (pass = 0; pass < 2; pass++) {
		for (i = 0; i < diff->n_changes; i++) {
			fe = diff->changes[i].new;
			name = fe && fe->service ? fe->service : "";
			if ((n_names && bsearch(&name, names, n_names, sizeof(*names), cmp_str)) ==
			    !pass)
				order[k++] = i;
		}
	}
	for (i = 0; i < n_names; i++)
		free(names[i]);
	free(names);
	return order;
}
