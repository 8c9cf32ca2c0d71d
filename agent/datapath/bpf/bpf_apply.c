// SPDX-License-Identifier: Apache-2.0
/*
 * Applying a diff to the BPF maps: each frontend's backends under a fresh
 * generation (backend set), then its service entry in one update, then the
 * old set's slots deleted; loadBalancerSourceRanges; the per-Service
 * entries (name, rate limit, bucket, counters); after a full apply, the
 * sweep of whatever the diff did not list.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <linux/types.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "datapath/bpf/bpf_datapath.h"
#include "datapath/bpf/bpf_adopt.h"
#include "datapath/bpf/bpf_dsr.h"
#include "datapath/bpf/bpf_dump.h"
#include "datapath/bpf/bpf_maglev.h"
#include "datapath/bpf/bpf_sock_destroy.h"
#include "datapath/bpf/bpf_node_addrs.h"
#include "datapath/bpf/bpf_services.h"
#include "datapath/bpf/datapath_bpf_tc.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "shared.h"
#include "sock.skel.h"

/* ---- apply ---- */

/*
 * Every kind goes into the maps: the socket programs serve them all to
 * clients on the node, the tc programs the external kinds to the outside.
 */
static bool frontend_programmable(const struct frontend *fe)
{
	return fe->key.addr.family == AF_INET || fe->key.addr.family == AF_INET6;
}

static __u32 service_flags_of(const struct frontend *fe)
{
	__u32 flags;

	switch (fe->kind) {
	case FE_EXTERNAL_IP:
		flags = SL_KIND_EXTERNAL_IP;
		break;
	case FE_LB_INGRESS:
		flags = SL_KIND_LB_INGRESS;
		break;
	case FE_NODE_PORT:
		flags = SL_KIND_NODE_PORT;
		break;
	default:
		return SL_KIND_CLUSTER_IP;
	}
	if (bpf_maglev_wanted(fe))
		flags |= SL_SVC_F_MAGLEV;
	if (fe->preserve_source)
		flags |= SL_SVC_F_PRESERVE_SOURCE;
	if (fe->kind == FE_LB_INGRESS && fe->n_source_ranges)
		flags |= SL_SVC_F_SOURCE_RANGES;
	if (fe->has_node_set)
		flags |= SL_SVC_F_NODE_SET;
	if (fe->dsr)
		flags |= SL_SVC_F_DSR;
	return flags;
}

static void delete_slots(struct datapath *dp, __u32 set, __u32 count)
{
	int fd = bpf_map__fd(dp->skel->maps.backends);
	struct sl_backend_key key = { .backend_set = set };

	for (key.slot = 0; key.slot < count; key.slot++)
		bpf_map_delete_elem(fd, &key);
	/* After the slots' last user is gone: its service entry no longer names the set. */
	if (count)
		bpf_maglev_delete(dp, set);
}

/* The set's slots are deleted at the next apply (see struct datapath). */
static void retire_slots(struct datapath *dp, __u32 set, __u32 count)
{
	if (!count)
		return;
	grow((void **)&dp->retired, &dp->cap_retired, dp->n_retired, sizeof(*dp->retired));
	dp->retired[dp->n_retired++] = (struct bpf_retired_set){ .set = set, .count = count };
}

static void delete_retired(struct datapath *dp)
{
	for (size_t i = 0; i < dp->n_retired; i++)
		delete_slots(dp, dp->retired[i].set, dp->retired[i].count);
	dp->n_retired = 0;
}

static __u32 take_backend_set(struct datapath *dp)
{
	__u32 set = dp->next_set++;

	if (!dp->next_set)
		dp->next_set = 1;
	return set;
}

/* The entry under key; none without asking when a full apply found the map empty. */
static bool service_get(struct datapath *dp, const struct sl_service_key *key,
			struct sl_service *out)
{
	if (dp->services_empty)
		return false;
	return bpf_map_lookup_elem(bpf_map__fd(dp->skel->maps.services), key, out) == 0;
}

/* The usable backends of one of fe's sets: a v6 backend cannot serve a v4 frontend. */
static __u32 usable_count(const struct frontend *fe, const struct backend *list, size_t n)
{
	__u32 count = 0;

	for (size_t i = 0; i < n; i++)
		count += bpf_backend_usable(fe, &list[i]);
	return count;
}

/* True if set's count slots hold exactly the usable backends of list, in order. */
static bool set_matches(struct datapath *dp, __u32 set, __u32 count, __u32 want_count,
			const struct frontend *fe, const struct backend *list, size_t n)
{
	int fd = bpf_map__fd(dp->skel->maps.backends);
	struct sl_backend_key key = { .backend_set = set };
	struct sl_backend have, expect;
	size_t i;
	int known;

	if (count != want_count)
		return false;
	known = dp->set_checks ? bpf_set_check(dp->set_checks, set, count, want_count) : -1;
	if (known >= 0)
		return known;
	for (i = 0; i < n && want_count; i++) {
		if (!bpf_backend_usable(fe, &list[i]))
			continue;
		bpf_backend_of(&list[i], &expect);
		if (bpf_map_lookup_elem(fd, &key, &have) || memcmp(&have, &expect, sizeof(have)))
			return false;
		key.slot++;
	}
	return true;
}

/* True if the slots of cur's set hold exactly fe's usable backends, in order. */
static bool backends_match(struct datapath *dp, const struct sl_service *cur, __u32 want_count,
			   const struct frontend *fe)
{
	return set_matches(dp, cur->backend_set, cur->count, want_count, fe, fe->backends,
			   fe->n_backends);
}

/* The same for the node set (SL_SVC_F_NODE_SET), when cur has one. */
static bool node_set_matches(struct datapath *dp, const struct sl_service *cur, __u32 want_count,
			     const struct frontend *fe)
{
	if (!(cur->flags & SL_SVC_F_NODE_SET))
		return !want_count;
	return set_matches(dp, cur->node_set, cur->node_count, want_count, fe, fe->node_backends,
			   fe->n_node_backends);
}

/* True if the kernel already holds exactly what fe asks for (adoption after restart). */
static bool service_matches(struct datapath *dp, const struct sl_service *cur,
			    const struct sl_service *want, const struct frontend *fe)
{
	if (cur->action != want->action || cur->service_id != want->service_id ||
	    cur->affinity_timeout != want->affinity_timeout || cur->flags != want->flags ||
	    cur->rate_interval_ns != want->rate_interval_ns ||
	    cur->rate_depth_ns != want->rate_depth_ns)
		return false;
	return backends_match(dp, cur, want->count, fe) &&
	       node_set_matches(dp, cur, want->node_count, fe) &&
	       (!(want->flags & SL_SVC_F_MAGLEV) || bpf_maglev_current(dp, fe, cur->backend_set));
}

/* ---- loadBalancerSourceRanges ---- */

static void source_range_key_of(const struct sl_service_key *fe, const struct cidr *c,
				struct sl_source_range_key *key)
{
	memset(key, 0, sizeof(*key));
	key->frontend = *fe;
	memcpy(key->client, c->addr.bytes, c->addr.family == AF_INET ? 4 : 16);
	key->prefixlen = sizeof(key->frontend) * 8 + c->prefix_len;
}

/*
 * Deletes the ranges of frontend fe_key (all of them, or those not in fe's
 * list when fe is given). With fe_key NULL: of every frontend that has no
 * SL_SVC_F_SOURCE_RANGES entry in services (after adoption).
 */
static void prune_source_ranges(struct datapath *dp, const struct sl_service_key *fe_key,
				const struct frontend *fe)
{
	int fd = bpf_map__fd(dp->skel->maps.source_ranges);
	int svc_fd = bpf_map__fd(dp->skel->maps.services);
	struct sl_source_range_key key, next, want, *stale = NULL;
	size_t n = 0, cap = 0, i;
	struct sl_service svc;
	bool keep;
	void *prev = NULL;

	while (bpf_map_get_next_key(fd, prev, &next) == 0) {
		key = next;
		prev = &key;
		if (fe_key) {
			if (memcmp(&key.frontend, fe_key, sizeof(*fe_key)))
				continue;
			keep = false;
			for (i = 0; fe && i < fe->n_source_ranges && !keep; i++) {
				source_range_key_of(fe_key, &fe->source_ranges[i], &want);
				keep = !memcmp(&want, &key, sizeof(key));
			}
		} else {
			keep = bpf_map_lookup_elem(svc_fd, &key.frontend, &svc) == 0 &&
			       (svc.flags & SL_SVC_F_SOURCE_RANGES);
		}
		if (keep)
			continue;
		grow((void **)&stale, &cap, n, sizeof(*stale));
		stale[n++] = key;
	}
	for (i = 0; i < n; i++)
		bpf_map_delete_elem(fd, &stale[i]);
	free(stale);
}

/* Writes fe's ranges, then removes the ones it no longer has: never an empty window. */
static int write_source_ranges(struct datapath *dp, const struct sl_service_key *key,
			       const struct frontend *fe, const struct bpf_map **full)
{
	int fd = bpf_map__fd(dp->skel->maps.source_ranges);
	struct sl_source_range_key rk;
	__u32 one = 1;
	char name[128];
	size_t i;
	int err;

	for (i = 0; i < fe->n_source_ranges; i++) {
		if (fe->source_ranges[i].addr.family != fe->key.addr.family)
			continue; /* a v6 range says nothing about a v4 frontend */
		source_range_key_of(key, &fe->source_ranges[i], &rk);
		if (bpf_map_update_elem(fd, &rk, &one, BPF_ANY)) {
			err = -errno;
			if (bpf_map_full(err))
				*full = dp->skel->maps.source_ranges;
			else
				pr_warn("bpf: %s: cannot write a source range: %s",
					bpf_frontend_name(fe, name, sizeof(name)), strerror(-err));
			return err;
		}
	}
	prune_source_ranges(dp, key, fe);
	return 0;
}

/*
 * Writes fe: its backends under a fresh set, then the service entry in one
 * update, then drops the set it replaced. The programs see the old set or
 * the new one, never a half-written one. Returns 1 if an adopted entry was
 * already exactly right (nothing written), 0 if written, -errno on failure:
 * the kernel then keeps what it had for fe's key. A failure for lack of
 * room is not logged here (the caller logs once per Service): *full names
 * the map that is full.
 */
/*
 * Writes the usable backends of list as slots 0.. of a new set; its id in
 * *set. On failure the slots written are deleted again.
 */
static int write_set(struct datapath *dp, const struct frontend *fe, const struct backend *list,
		     size_t n, __u32 *set, const struct bpf_map **full)
{
	struct sl_backend_key *slots = xcalloc(n ? n : 1, sizeof(*slots));
	struct sl_backend *bes = xcalloc(n ? n : 1, sizeof(*bes));
	__u32 count = 0;
	char name[128];
	int err;

	*set = take_backend_set(dp);
	for (size_t i = 0; i < n; i++) {
		if (!bpf_backend_usable(fe, &list[i]))
			continue;
		slots[count] = (struct sl_backend_key){ .backend_set = *set, .slot = count };
		bpf_backend_of(&list[i], &bes[count++]);
	}
	/* One syscall for the set; none of it is named by an entry yet. */
	err = bpf_map_update_many(bpf_map__fd(dp->skel->maps.backends), slots, sizeof(*slots), bes,
				  sizeof(*bes), count);
	free(slots);
	free(bes);
	if (err) {
		if (bpf_map_full(err))
			*full = dp->skel->maps.backends;
		else
			pr_warn("bpf: %s: cannot write its %u backend slots: %s",
				bpf_frontend_name(fe, name, sizeof(name)), count, strerror(-err));
		delete_slots(dp, *set, count);
	}
	return err;
}

static int write_frontend(struct datapath *dp, const struct frontend *fe, bool adopting,
			  const struct bpf_map **full)
{
	int svc_fd = bpf_map__fd(dp->skel->maps.services);
	struct sl_service_key key;
	struct sl_service cur, want = { 0 };
	bool had_cur, keep_set = false, keep_node = false;
	char name[128];
	int err;

	bpf_service_key_of(&fe->key, &key);
	had_cur = service_get(dp, &key, &cur);
	want.action = fe->action == FE_SERVE  ? SL_ACTION_SERVE :
		      fe->action == FE_REFUSE ? SL_ACTION_REFUSE :
						SL_ACTION_DROP;
	want.service_id = fe->service_id;
	want.affinity_timeout = fe->affinity_timeout;
	want.rate_interval_ns = rate_limit_interval_ns(&fe->rate);
	want.rate_depth_ns = rate_limit_depth_ns(&fe->rate);
	want.flags = service_flags_of(fe);
	/* Ranges before the entry that enforces them; a stale one is gone before it could admit. */
	if ((want.flags & SL_SVC_F_SOURCE_RANGES) ||
	    (had_cur && (cur.flags & SL_SVC_F_SOURCE_RANGES))) {
		err = write_source_ranges(dp, &key, fe, full);
		if (err)
			return err;
	}
	if (fe->action == FE_SERVE)
		want.count = usable_count(fe, fe->backends, fe->n_backends);
	if (fe->has_node_set && fe->node_action == FE_SERVE)
		want.node_count = usable_count(fe, fe->node_backends, fe->n_node_backends);
	if (adopting && had_cur && service_matches(dp, &cur, &want, fe))
		return 1;
	/*
	 * A set whose backends did not change (a restarted agent numbers
	 * Services anew, a limit changed, the other set changed) is kept: the
	 * entry is rewritten over it, so no slot is deleted under a program
	 * mid-lookup.
	 */
	if (had_cur && want.count && backends_match(dp, &cur, want.count, fe)) {
		want.backend_set = cur.backend_set;
		keep_set = true;
	} else if (want.count) {
		err = write_set(dp, fe, fe->backends, fe->n_backends, &want.backend_set, full);
		if (err)
			return err;
	}
	if (had_cur && want.node_count && node_set_matches(dp, &cur, want.node_count, fe)) {
		want.node_set = cur.node_set;
		keep_node = true;
	} else if (want.node_count) {
		err = write_set(dp, fe, fe->node_backends, fe->n_node_backends, &want.node_set,
				full);
		if (err) {
			if (!keep_set)
				delete_slots(dp, want.backend_set, want.count);
			return err;
		}
	}
	/* A new set's table before the entry names the set; a kept set's is checked. */
	if (want.count) {
		/* A table is trusted only where this entry's flag says one was written. */
		err = bpf_maglev_write(dp, fe, want.backend_set,
				       keep_set && (cur.flags & SL_SVC_F_MAGLEV), full);
		if (err) {
			if (!keep_set)
				delete_slots(dp, want.backend_set, want.count);
			if (!keep_node)
				delete_slots(dp, want.node_set, want.node_count);
			return err;
		}
	}
	/* One update flips both sets: the programs see the old pair or the new one. */
	if (bpf_map_update_elem(svc_fd, &key, &want, BPF_ANY)) {
		err = -errno;
		if (bpf_map_full(err))
			*full = dp->skel->maps.services;
		else
			pr_warn("bpf: %s: cannot write the service entry: %s",
				bpf_frontend_name(fe, name, sizeof(name)), strerror(-err));
		if (!keep_set)
			delete_slots(dp, want.backend_set, want.count);
		if (!keep_node)
			delete_slots(dp, want.node_set, want.node_count);
		return err;
	}
	if (had_cur && cur.count && !keep_set)
		retire_slots(dp, cur.backend_set, cur.count);
	/* No longer Maglev (the entry says so now): a kept set's table goes. */
	if (keep_set && (cur.flags & SL_SVC_F_MAGLEV) && !bpf_maglev_wanted(fe))
		bpf_maglev_delete(dp, want.backend_set);
	if (had_cur && (cur.flags & SL_SVC_F_NODE_SET) && cur.node_count && !keep_node)
		retire_slots(dp, cur.node_set, cur.node_count);
	return 0;
}

static int remove_frontend(struct datapath *dp, const struct frontend *fe)
{
	int svc_fd = bpf_map__fd(dp->skel->maps.services);
	struct sl_service_key key;
	struct sl_service cur;
	char name[128];
	int err;

	bpf_service_key_of(&fe->key, &key);
	if (bpf_map_lookup_elem(svc_fd, &key, &cur))
		return 0;
	if (bpf_map_delete_elem(svc_fd, &key) && errno != ENOENT) {
		err = -errno;
		pr_warn("bpf: %s: cannot delete the service entry: %s",
			bpf_frontend_name(fe, name, sizeof(name)), strerror(-err));
		return err;
	}
	retire_slots(dp, cur.backend_set, cur.count);
	if (cur.flags & SL_SVC_F_NODE_SET)
		retire_slots(dp, cur.node_set, cur.node_count);
	if (cur.flags & SL_SVC_F_SOURCE_RANGES)
		prune_source_ranges(dp, &key, NULL);
	return 0;
}

static int cmp_service_key(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(struct sl_service_key));
}

struct live_set {
	__u32 set, count;
	bool maglev; /* its entry has SL_SVC_F_MAGLEV: its table stays */
};

static int cmp_live_set(const void *a, const void *b)
{
	const struct live_set *x = a, *y = b;

	return x->set < y->set ? -1 : x->set > y->set;
}

/* The marker of a ClusterIP: refuses the ports no other frontend serves. */
static bool is_marker(const struct frontend *fe)
{
	return !fe->key.proto && !fe->key.port;
}

/* Maglev tables of sets that no Maglev entry names (a crash mid-update, an older agent's). */
static void sweep_maglev(struct datapath *dp, const struct live_set *live, size_t n_live)
{
	int fd = bpf_map__fd(dp->skel->maps.maglev);
	__u32 key, next, *stale = NULL;
	size_t n = 0, cap = 0;
	struct live_set probe, *hit;
	void *prev;

	for (prev = NULL; bpf_map_get_next_key(fd, prev, &next) == 0; prev = &key) {
		key = next;
		probe.set = key;
		hit = n_live ? bsearch(&probe, live, n_live, sizeof(*live), cmp_live_set) : NULL;
		if (hit && hit->maglev)
			continue;
		grow((void **)&stale, &cap, n, sizeof(*stale));
		stale[n++] = key;
	}
	for (size_t i = 0; i < n; i++)
		bpf_map_delete_elem(fd, &stale[i]);
	if (n)
		pr_info("bpf: adoption removed %zu unused Maglev tables", n);
	free(stale);
}

/* What sweep gathers while it reads the maps (in batches). */
struct sweep_ctx {
	const struct sl_service_key *wanted;
	size_t n_wanted;
	struct sl_service_key *stale;
	struct sl_service *stale_val;
	size_t n_stale, cap_stale, cap_stale_val;
	struct live_set *live;
	size_t n_live, cap_live;
	struct sl_backend_key *orphans;
	size_t n_orphans, cap_orphans;
};

static void add_live(struct sweep_ctx *c, __u32 set, __u32 count, bool maglev)
{
	grow((void **)&c->live, &c->cap_live, c->n_live, sizeof(*c->live));
	c->live[c->n_live++] = (struct live_set){ .set = set, .count = count, .maglev = maglev };
}

static int sweep_service(const void *key, const void *val, void *data)
{
	const struct sl_service *svc = val;
	struct sweep_ctx *c = data;

	if (!c->n_wanted ||
	    !bsearch(key, c->wanted, c->n_wanted, sizeof(*c->wanted), cmp_service_key)) {
		grow((void **)&c->stale, &c->cap_stale, c->n_stale, sizeof(*c->stale));
		grow((void **)&c->stale_val, &c->cap_stale_val, c->n_stale, sizeof(*c->stale_val));
		memcpy(&c->stale[c->n_stale], key, sizeof(*c->stale));
		c->stale_val[c->n_stale++] = *svc;
		return 0;
	}
	if (svc->count)
		add_live(c, svc->backend_set, svc->count, svc->flags & SL_SVC_F_MAGLEV);
	if ((svc->flags & SL_SVC_F_NODE_SET) && svc->node_count)
		add_live(c, svc->node_set, svc->node_count, false);
	return 0;
}

static int sweep_backend(const void *key, const void *val, void *data)
{
	struct sweep_ctx *c = data;
	struct sl_backend_key bkey;
	struct live_set probe, *hit;

	(void)val;
	memcpy(&bkey, key, sizeof(bkey));
	probe.set = bkey.backend_set;
	hit = c->n_live ? bsearch(&probe, c->live, c->n_live, sizeof(*c->live), cmp_live_set) :
			  NULL;
	if (hit && bkey.slot < hit->count)
		return 0;
	grow((void **)&c->orphans, &c->cap_orphans, c->n_orphans, sizeof(*c->orphans));
	c->orphans[c->n_orphans++] = bkey;
	return 0;
}

/*
 * After a full apply: delete every service entry the diff did not list,
 * then every backend slot that no service entry uses (sets left by a
 * previous agent, or slots past a set's count after a crash mid-write).
 * Both maps are read in batches, not a syscall per key.
 */
static void sweep(struct datapath *dp, const struct state_diff *diff)
{
	int svc_fd = bpf_map__fd(dp->skel->maps.services);
	int be_fd = bpf_map__fd(dp->skel->maps.backends);
	struct sweep_ctx c = { 0 };
	struct sl_service_key *wanted;
	const struct frontend *fe;
	size_t n_wanted = 0, i;

	wanted = xcalloc(diff->n_changes ? diff->n_changes : 1, sizeof(*wanted));
	for (i = 0; i < diff->n_changes; i++) {
		fe = diff->changes[i].new;
		/* A Service with no place has no entry: an adopted one goes. */
		if (fe && frontend_programmable(fe) && bpf_placed(dp, fe->service_id))
			bpf_service_key_of(&fe->key, &wanted[n_wanted++]);
	}
	/* qsort and bsearch take no NULL array, even empty: nothing wanted is n == 0. */
	if (n_wanted)
		qsort(wanted, n_wanted, sizeof(*wanted), cmp_service_key);
	c.wanted = wanted;
	c.n_wanted = n_wanted;

	bpf_map_each(svc_fd, sizeof(struct sl_service_key), sizeof(struct sl_service),
		     sweep_service, &c);
	for (i = 0; i < c.n_stale; i++) {
		if (bpf_map_delete_elem(svc_fd, &c.stale[i]) == 0) {
			delete_slots(dp, c.stale_val[i].backend_set, c.stale_val[i].count);
			if (c.stale_val[i].flags & SL_SVC_F_NODE_SET)
				delete_slots(dp, c.stale_val[i].node_set,
					     c.stale_val[i].node_count);
		}
	}
	if (c.n_live)
		qsort(c.live, c.n_live, sizeof(*c.live), cmp_live_set);
	bpf_map_each(be_fd, sizeof(struct sl_backend_key), sizeof(struct sl_backend), sweep_backend,
		     &c);
	for (i = 0; i < c.n_orphans; i++)
		bpf_map_delete_elem(be_fd, &c.orphans[i]);
	sweep_maglev(dp, c.live, c.n_live);
	if (c.n_stale || c.n_orphans)
		pr_info("bpf: adoption removed %zu stale frontends and %zu unused backend slots",
			c.n_stale, c.n_orphans);
	free(wanted);
	free(c.stale);
	free(c.stale_val);
	free(c.live);
	free(c.orphans);
}

/* ---- Services that do not fit: logged once, kept, retried ---- */

/* The one line a Service gets when it starts waiting for room. */
static void log_not_programmed(struct datapath *dp, const struct frontend *fe, int err,
			       const struct bpf_map *full)
{
	const char *svc = fe->service ? fe->service : "?";
	char addr[IP_ADDR_STRLEN];

	if (err == SL_NO_PLACE)
		pr_warn("Service %s: not programmed: the BPF maps hold %u Services (--max-services)",
			svc, dp->max_services);
	else if (!bpf_map_full(err))
		pr_warn("Service %s: not programmed: cannot write its service_info entry: %s", svc,
			strerror(-err));
	else if (!full)
		pr_warn("Service %s: not programmed: BPF map service_info is full (%u entries, "
			"--max-services)",
			svc, bpf_map__max_entries(dp->skel->maps.service_info));
	else
		pr_warn("Service %s: frontend %s:%u/%u not programmed: BPF map %s is full (%u "
			"entries, sized by --max-services=%u)",
			svc, ip_addr_format(&fe->key.addr, addr), fe->key.port, fe->key.proto,
			bpf_map__name(full), bpf_map__max_entries(full), dp->max_services);
}

/* A frontend the maps have no room for: kept for later, its Service logged once. */
static void defer(struct datapath *dp, const struct frontend *fe, int err,
		  const struct bpf_map *full)
{
	if (bpf_pending_put(dp, fe))
		log_not_programmed(dp, fe, err, full);
}

/*
 * fe is what its key should hold now (fp: during a full apply, which
 * adopts). A Service without a place gets one
 * if one is free, else fe waits with the rest of its Service; a frontend
 * that does not fit (a full map) waits alone, the kernel keeping what it
 * had for the key. Returns 0 if written, 1 if an adopted entry was
 * already right, 2 if fe waits for room, or -errno of a failure that is
 * not for lack of room.
 */
static int apply_new(struct datapath *dp, const struct frontend *fe, struct bpf_full_prep *fp)
{
	const struct bpf_map *full = NULL;
	__u32 id = fe->service_id;
	int err, info_err = 0;

	if (!bpf_placed(dp, id)) {
		err = bpf_place_service(dp, fe);
		if (bpf_map_full(err) && fp && !fp->renumbered) {
			bpf_drop_renumbered(dp, fp, NULL, NULL);
			err = bpf_place_service(dp, fe);
		}
		if (err) {
			defer(dp, fe, err, NULL);
			return err == SL_NO_PLACE || bpf_map_full(err) ? 2 : err;
		}
	} else {
		/* A new name or limit; the Service keeps its place whatever happens. */
		info_err = bpf_sync_service_info(dp, fe);
	}
	bpf_service_ref(dp, fe);
	err = write_frontend(dp, fe, fp != NULL, &full);
	if (bpf_map_full(err)) {
		defer(dp, fe, err, full);
		return 2;
	}
	if (err < 0)
		return err;
	if (bpf_pending_del(dp, id, &fe->key))
		pr_info("Service %s: programmed now", fe->service ? fe->service : "?");
	return info_err && !bpf_map_full(info_err) ? info_err : err;
}

static bool same_key(const struct frontend *a, const struct frontend *b)
{
	struct sl_service_key ka, kb;

	bpf_service_key_of(&a->key, &ka);
	bpf_service_key_of(&b->key, &kb);
	return !memcmp(&ka, &kb, sizeof(ka));
}

/* old is what its key held; new (or NULL) is its successor. */
static int apply_old(struct datapath *dp, const struct frontend *old, const struct frontend *new)
{
	bool moved = !new || !same_key(old, new);
	int err = 0;

	if (!bpf_placed(dp, old->service_id)) {
		/* Never in the kernel: only its copy goes. */
		if (moved)
			bpf_pending_del(dp, old->service_id, &old->key);
		return 0;
	}
	if (moved) {
		err = remove_frontend(dp, old);
		bpf_pending_del(dp, old->service_id, &old->key);
	}
	bpf_service_unref(dp, old);
	return err;
}

/*
 * Programs what waits for room, lowest service_id first, until no place
 * is left or a map is full: Services went, or a full apply swept stale
 * entries. When nothing fits this costs a scan of pending[] and one
 * failed map update at most.
 */
static void retry_pending(struct datapath *dp)
{
	bool can_place = true, can_write = true;
	const struct bpf_map *full;
	struct frontend_key key;
	struct bpf_pending *p;
	char *svc;
	size_t id, i;
	int err;

	for (id = 0; id < dp->n_pending_ids && dp->n_unprogrammed && (can_place || can_write);
	     id++) {
		p = dp->pending[id];
		if (!p)
			continue;
		if (!bpf_placed(dp, id)) {
			if (!can_place)
				continue;
			if (bpf_place_service(dp, &p->fes[0])) {
				can_place = false;
				continue;
			}
		}
		if (!can_write)
			continue;
		svc = xstrdup(p->fes[0].service ? p->fes[0].service : "?");
		while (p) {
			/* Ports first, as in bpf_apply. */
			for (i = 0; i < p->n - 1 && is_marker(&p->fes[i]); i++)
				;
			full = NULL;
			err = write_frontend(dp, &p->fes[i], false, &full);
			if (err < 0) {
				can_write = !bpf_map_full(err);
				break;
			}
			key = p->fes[i].key;
			if (bpf_pending_del(dp, id, &key)) {
				pr_info("Service %s: programmed now: the BPF maps have room again",
					svc);
				p = NULL;
			}
		}
		free(svc);
	}
}

/* The count of Services not programmed, in agent_state for sluicectl and bpftool. */
static void publish_state(struct datapath *dp)
{
	struct sl_agent_state st = {
		.max_services = dp->max_services,
		.services_not_programmed = (__u32)dp->n_unprogrammed,
	};
	__u32 key = 0;
	int err;

	if (dp->published == (long long)dp->n_unprogrammed)
		return;
	if (bpf_map_update_elem(bpf_map__fd(dp->skel->maps.agent_state), &key, &st, BPF_ANY)) {
		err = -errno;
		pr_warn("bpf: cannot write agent_state: %s", strerror(-err));
		return;
	}
	if (dp->n_unprogrammed)
		pr_warn("bpf: %zu Services not programmed (--max-services=%u, %zu placed)",
			dp->n_unprogrammed, dp->max_services, dp->n_placed);
	else if (dp->published > 0)
		pr_info("bpf: every Service is programmed again (--max-services=%u, %zu placed)",
			dp->max_services, dp->n_placed);
	dp->published = (long long)dp->n_unprogrammed;
}

/*
 * The tc programs must also see the replies of SNATed connections where
 * they come in: on the devices towards the external frontends' backends.
 */
static void reach_backends(struct datapath *dp, const struct state_diff *diff)
{
	const struct frontend *fe;
	struct ip_addr *addrs = NULL;
	size_t n = 0, cap = 0, i, b;

	for (i = 0; i < diff->n_changes; i++) {
		fe = diff->changes[i].new;
		if (!fe || fe->kind == FE_CLUSTER_IP || fe->action != FE_SERVE)
			continue;
		for (b = 0; b < fe->n_backends; b++) {
			grow((void **)&addrs, &cap, n, sizeof(*addrs));
			addrs[n++] = fe->backends[b].addr;
		}
	}
	tc_datapath_reach(dp->tc, addrs, n);
	free(addrs);
}

int bpf_apply(struct datapath *dp, const struct state_diff *diff)
{
	const struct frontend *old, *new;
	size_t i, k, written = 0, kept = 0, removed = 0, deferred = 0, *order = NULL;
	struct bpf_full_prep prep = { 0 };
	int err, first_err = 0;

	delete_retired(dp);
	/* A full apply lists every frontend as added: count them from zero. */
	if (diff->full) {
		/* What the kernel holds, read in batches: compared in memory, not per slot. */
		dp->set_checks = bpf_set_checks_read(dp, diff, &dp->services_empty);
		if (dp->frontends_of)
			memset(dp->frontends_of, 0, dp->n_frontends_of * sizeof(*dp->frontends_of));
		dp->n_placed = 0;
		bpf_pending_clear(dp);
		bpf_full_prep_init(&prep, diff);
		order = bpf_full_apply_order(dp, diff, &prep);
	}
	/* Before the service entries: a DSR frontend finds its backends' nodes at once. */
	bpf_dsr_apply(dp, diff);
	/*
	 * Ports before markers: should a map fill up mid-Service, its ports
	 * serve without their marker rather than the marker refusing them.
	 */
	for (k = 0; k < 2 * diff->n_changes; k++) {
		i = order ? order[k % diff->n_changes] : k % diff->n_changes;
		old = diff->changes[i].old;
		new = diff->changes[i].new;
		if (is_marker(new ? new : old) != (k >= diff->n_changes))
			continue;
		if (old && !frontend_programmable(old))
			old = NULL;
		if (new && !frontend_programmable(new))
			new = NULL;
		/* New first, so that a modify keeps the Service's place and counters. */
		if (new) {
			err = apply_new(dp, new, diff->full ? &prep : NULL);
			if (err == 1)
				kept++;
			else if (err == 2)
				deferred++;
			else if (!err)
				written++;
			if (err < 0 && !first_err)
				first_err = err;
		}
		if (old) {
			err = apply_old(dp, old, new);
			removed += !new && !err;
			if (err && !first_err)
				first_err = err;
		}
	}
	free(order);
	if (diff->full) {
		free(prep.name_of);
		bpf_set_checks_free((struct bpf_set_checks *)dp->set_checks);
		dp->set_checks = NULL;
		dp->services_empty = false;
	}
	if (diff->full) {
		sweep(dp, diff);
		bpf_sweep_services(dp);
		prune_source_ranges(dp, NULL, NULL);
	}
	if (dp->n_unprogrammed)
		retry_pending(dp);
	publish_state(dp);
	/* Addresses come and go with devices; NodePorts follow them at each apply. */
	if (diff->node_ports) {
		node_port_addrs_copy(&dp->node_ports, diff->node_ports);
		dp->have_node_ports = true;
	}
	bpf_node_addrs_sync(bpf_map__fd(dp->skel->maps.node_addrs),
			    bpf_map__fd(dp->skel->maps.dev_addrs),
			    dp->have_node_ports ? &dp->node_ports : NULL);
	if (dp->tc)
		reach_backends(dp, diff);
	/* After the new sets are in: a socket made again gets a live backend. */
	sock_destroyer_run(dp->udp, diff);
	pr_debug("bpf: applied %zu changes (%zu written, %zu already in place, %zu removed, "
		 "%zu waiting for room)%s; %zu Services not programmed",
		 diff->n_changes, written, kept, removed, deferred, diff->full ? ", full" : "",
		 dp->n_unprogrammed);
	return first_err;
}
