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
#include "datapath/bpf/bpf_node_addrs.h"
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
	if (fe->preserve_source)
		flags |= SL_SVC_F_PRESERVE_SOURCE;
	if (fe->kind == FE_LB_INGRESS && fe->n_source_ranges)
		flags |= SL_SVC_F_SOURCE_RANGES;
	return flags;
}

static __u8 sl_family(uint8_t family)
{
	return family == AF_INET ? SL_AF_INET : SL_AF_INET6;
}

static void service_key_of(const struct frontend_key *fk, struct sl_service_key *key)
{
	memset(key, 0, sizeof(*key));
	memcpy(key->addr, fk->addr.bytes, fk->addr.family == AF_INET ? 4 : 16);
	key->port = htons(fk->port);
	key->proto = fk->proto;
	key->family = sl_family(fk->addr.family);
}

static void backend_of(const struct backend *b, struct sl_backend *out)
{
	memset(out, 0, sizeof(*out));
	memcpy(out->addr, b->addr.bytes, b->addr.family == AF_INET ? 4 : 16);
	out->port = htons(b->port);
	out->family = sl_family(b->addr.family);
}

static const char *frontend_name(const struct frontend *fe, char *buf, size_t len)
{
	char addr[IP_ADDR_STRLEN];

	snprintf(buf, len, "%s %s:%u/%u", fe->service ? fe->service : "?",
		 ip_addr_format(&fe->key.addr, addr), fe->key.port, fe->key.proto);
	return buf;
}

static void delete_slots(struct datapath *dp, __u32 set, __u32 count)
{
	int fd = bpf_map__fd(dp->skel->maps.backends);
	struct sl_backend_key key = { .backend_set = set };

	for (key.slot = 0; key.slot < count; key.slot++)
		bpf_map_delete_elem(fd, &key);
}

static __u32 take_backend_set(struct datapath *dp)
{
	__u32 set = dp->next_set++;

	if (!dp->next_set)
		dp->next_set = 1;
	return set;
}

/* The backends of fe that match its family: a v6 backend cannot serve a v4 frontend. */
static bool backend_usable(const struct frontend *fe, const struct backend *b)
{
	return b->addr.family == fe->key.addr.family;
}

/* True if the slots of cur's set hold exactly fe's usable backends, in order. */
static bool backends_match(struct datapath *dp, const struct sl_service *cur, __u32 want_count,
			   const struct frontend *fe)
{
	int fd = bpf_map__fd(dp->skel->maps.backends);
	struct sl_backend_key key = { .backend_set = cur->backend_set };
	struct sl_backend have, expect;
	size_t i;

	if (cur->count != want_count)
		return false;
	for (i = 0; i < fe->n_backends && want_count; i++) {
		if (!backend_usable(fe, &fe->backends[i]))
			continue;
		backend_of(&fe->backends[i], &expect);
		if (bpf_map_lookup_elem(fd, &key, &have) || memcmp(&have, &expect, sizeof(have)))
			return false;
		key.slot++;
	}
	return true;
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
	return backends_match(dp, cur, want->count, fe);
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
			       const struct frontend *fe)
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
			pr_warn("bpf: %s: cannot write a source range: %s",
				frontend_name(fe, name, sizeof(name)), strerror(-err));
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
 * already exactly right (nothing written), 0 if written, -errno on failure.
 */
static int write_frontend(struct datapath *dp, const struct frontend *fe, bool adopting)
{
	int svc_fd = bpf_map__fd(dp->skel->maps.services);
	int be_fd = bpf_map__fd(dp->skel->maps.backends);
	struct sl_service_key key;
	struct sl_service cur, want = { 0 };
	struct sl_backend_key slot = { 0 };
	struct sl_backend be;
	char name[128];
	bool had_cur;
	size_t i;
	int err;

	service_key_of(&fe->key, &key);
	had_cur = bpf_map_lookup_elem(svc_fd, &key, &cur) == 0;
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
		err = write_source_ranges(dp, &key, fe);
		if (err)
			return err;
	}
	if (fe->action == FE_SERVE) {
		for (i = 0; i < fe->n_backends; i++)
			want.count += backend_usable(fe, &fe->backends[i]);
	}
	if (adopting && had_cur && service_matches(dp, &cur, &want, fe))
		return 1;
	/*
	 * Same backends, other fields (a restarted agent numbers Services
	 * anew, a limit changed): the entry is rewritten over the set it
	 * already uses, so no slot is deleted under a program mid-lookup.
	 */
	if (had_cur && want.count && backends_match(dp, &cur, want.count, fe)) {
		want.backend_set = cur.backend_set;
		if (bpf_map_update_elem(svc_fd, &key, &want, BPF_ANY)) {
			err = -errno;
			pr_warn("bpf: %s: cannot write the service entry: %s",
				frontend_name(fe, name, sizeof(name)), strerror(-err));
			return err;
		}
		return 0;
	}

	if (want.count) {
		want.backend_set = take_backend_set(dp);
		slot.backend_set = want.backend_set;
		for (i = 0; i < fe->n_backends; i++) {
			if (!backend_usable(fe, &fe->backends[i]))
				continue;
			backend_of(&fe->backends[i], &be);
			if (bpf_map_update_elem(be_fd, &slot, &be, BPF_ANY)) {
				err = -errno;
				pr_warn("bpf: %s: cannot write backend slot %u: %s",
					frontend_name(fe, name, sizeof(name)), slot.slot,
					strerror(-err));
				delete_slots(dp, want.backend_set, slot.slot);
				return err;
			}
			slot.slot++;
		}
	}
	if (bpf_map_update_elem(svc_fd, &key, &want, BPF_ANY)) {
		err = -errno;
		pr_warn("bpf: %s: cannot write the service entry: %s",
			frontend_name(fe, name, sizeof(name)), strerror(-err));
		delete_slots(dp, want.backend_set, want.count);
		return err;
	}
	if (had_cur && cur.count)
		delete_slots(dp, cur.backend_set, cur.count);
	return 0;
}

static int remove_frontend(struct datapath *dp, const struct frontend *fe)
{
	int svc_fd = bpf_map__fd(dp->skel->maps.services);
	struct sl_service_key key;
	struct sl_service cur;
	char name[128];
	int err;

	service_key_of(&fe->key, &key);
	if (bpf_map_lookup_elem(svc_fd, &key, &cur))
		return 0;
	if (bpf_map_delete_elem(svc_fd, &key) && errno != ENOENT) {
		err = -errno;
		pr_warn("bpf: %s: cannot delete the service entry: %s",
			frontend_name(fe, name, sizeof(name)), strerror(-err));
		return err;
	}
	delete_slots(dp, cur.backend_set, cur.count);
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
};

static int cmp_live_set(const void *a, const void *b)
{
	const struct live_set *x = a, *y = b;

	return x->set < y->set ? -1 : x->set > y->set;
}

/*
 * After a full apply: delete every service entry the diff did not list,
 * then every backend slot that no service entry uses (sets left by a
 * previous agent, or slots past a set's count after a crash mid-write).
 */
static void sweep(struct datapath *dp, const struct state_diff *diff)
{
	int svc_fd = bpf_map__fd(dp->skel->maps.services);
	int be_fd = bpf_map__fd(dp->skel->maps.backends);
	struct sl_service_key *wanted = NULL, *stale = NULL, skey, snext;
	struct sl_backend_key *orphans = NULL, bkey, bnext;
	struct live_set *live = NULL, probe, *hit;
	size_t n_wanted = 0, n_stale = 0, n_live = 0, n_orphans = 0;
	size_t cap_stale = 0, cap_live = 0, cap_orphans = 0, i;
	struct sl_service svc;
	void *prev;

	wanted = xcalloc(diff->n_changes, sizeof(*wanted));
	for (i = 0; i < diff->n_changes; i++) {
		if (diff->changes[i].new &&frontend_programmable(diff->changes[i].new))
			service_key_of(&diff->changes[i].new->key, &wanted[n_wanted++]);
	}
	qsort(wanted, n_wanted, sizeof(*wanted), cmp_service_key);

	for (prev = NULL; bpf_map_get_next_key(svc_fd, prev, &snext) == 0; prev = &skey) {
		skey = snext;
		if (bsearch(&skey, wanted, n_wanted, sizeof(*wanted), cmp_service_key))
			continue;
		grow((void **)&stale, &cap_stale, n_stale, sizeof(*stale));
		stale[n_stale++] = skey;
	}
	for (i = 0; i < n_stale; i++) {
		if (bpf_map_lookup_elem(svc_fd, &stale[i], &svc) == 0 &&
		    bpf_map_delete_elem(svc_fd, &stale[i]) == 0)
			delete_slots(dp, svc.backend_set, svc.count);
	}

	for (prev = NULL; bpf_map_get_next_key(svc_fd, prev, &snext) == 0; prev = &skey) {
		skey = snext;
		if (bpf_map_lookup_elem(svc_fd, &skey, &svc) || !svc.count)
			continue;
		grow((void **)&live, &cap_live, n_live, sizeof(*live));
		live[n_live].set = svc.backend_set;
		live[n_live++].count = svc.count;
	}
	qsort(live, n_live, sizeof(*live), cmp_live_set);
	for (prev = NULL; bpf_map_get_next_key(be_fd, prev, &bnext) == 0; prev = &bkey) {
		bkey = bnext;
		probe.set = bkey.backend_set;
		hit = bsearch(&probe, live, n_live, sizeof(*live), cmp_live_set);
		if (hit && bkey.slot < hit->count)
			continue;
		grow((void **)&orphans, &cap_orphans, n_orphans, sizeof(*orphans));
		orphans[n_orphans++] = bkey;
	}
	for (i = 0; i < n_orphans; i++)
		bpf_map_delete_elem(be_fd, &orphans[i]);
	if (n_stale || n_orphans)
		pr_info("bpf: adoption removed %zu stale frontends and %zu unused backend slots",
			n_stale, n_orphans);
	free(wanted);
	free(stale);
	free(live);
	free(orphans);
}

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
static void forget_service(struct datapath *dp, __u32 id)
{
	bpf_map_delete_elem(bpf_map__fd(dp->skel->maps.service_info), &id);
	bpf_map_delete_elem(bpf_map__fd(dp->skel->maps.rate_buckets), &id);
	bpf_map_delete_elem(bpf_map__fd(dp->skel->maps.service_counters), &id);
}

/*
 * Writes the Service's name and limit if they changed. Another name under
 * the id (left by an agent before a restart, which numbers Services anew)
 * starts the bucket and counters afresh; a new limit starts a full bucket,
 * because a TAT charged at a slow old rate could run hours ahead.
 */
static int sync_service_info(struct datapath *dp, const struct frontend *fe)
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
		if (strcmp(have.name, want.name)) {
			bpf_map_delete_elem(bpf_map__fd(dp->skel->maps.service_counters), &id);
			bpf_map_delete_elem(bpf_map__fd(dp->skel->maps.rate_buckets), &id);
		} else if (have.rate_interval_ns != want.rate_interval_ns ||
			   have.rate_depth_ns != want.rate_depth_ns) {
			bpf_map_delete_elem(bpf_map__fd(dp->skel->maps.rate_buckets), &id);
		}
	}
	if (bpf_map_update_elem(info_fd, &id, &want, BPF_ANY)) {
		err = -errno;
		pr_warn("bpf: %s: cannot write the service_info entry: %s",
			frontend_name(fe, name, sizeof(name)), strerror(-err));
		return err;
	}
	return 0;
}

static int service_ref(struct datapath *dp, const struct frontend *fe)
{
	__u32 id = fe->service_id;
	size_t n;
	__u32 *bigger;

	if (id >= dp->n_frontends_of) {
		n = dp->n_frontends_of ? dp->n_frontends_of : 256;
		while (n <= id)
			n *= 2;
		bigger = xreallocarray(dp->frontends_of, n, sizeof(*bigger));
		memset(bigger + dp->n_frontends_of, 0, (n - dp->n_frontends_of) * sizeof(*bigger));
		dp->frontends_of = bigger;
		dp->n_frontends_of = n;
	}
	dp->frontends_of[id]++;
	return sync_service_info(dp, fe);
}

static void service_unref(struct datapath *dp, const struct frontend *fe)
{
	__u32 id = fe->service_id;

	if (id < dp->n_frontends_of && dp->frontends_of[id] && !--dp->frontends_of[id])
		forget_service(dp, id);
}

/* After a full apply: drop per-Service entries of ids no programmed frontend has. */
static void sweep_services(struct datapath *dp)
{
	int fds[] = {
		bpf_map__fd(dp->skel->maps.service_info),
		bpf_map__fd(dp->skel->maps.rate_buckets),
		bpf_map__fd(dp->skel->maps.service_counters),
	};
	__u32 key, next, *stale = NULL;
	size_t n_stale = 0, cap = 0, i, m;
	void *prev;

	for (m = 0; m < sizeof(fds) / sizeof(fds[0]); m++) {
		n_stale = 0;
		for (prev = NULL; bpf_map_get_next_key(fds[m], prev, &next) == 0; prev = &key) {
			key = next;
			if (key < dp->n_frontends_of && dp->frontends_of[key])
				continue;
			grow((void **)&stale, &cap, n_stale, sizeof(*stale));
			stale[n_stale++] = key;
		}
		for (i = 0; i < n_stale; i++)
			bpf_map_delete_elem(fds[m], &stale[i]);
	}
	free(stale);
}

static bool same_key(const struct frontend *a, const struct frontend *b)
{
	struct sl_service_key ka, kb;

	service_key_of(&a->key, &ka);
	service_key_of(&b->key, &kb);
	return !memcmp(&ka, &kb, sizeof(ka));
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
	const struct frontend_change *ch;
	size_t i, written = 0, kept = 0, removed = 0;
	int err, first_err = 0;

	/* A full apply lists every frontend as added: count them from zero. */
	if (diff->full && dp->frontends_of)
		memset(dp->frontends_of, 0, dp->n_frontends_of * sizeof(*dp->frontends_of));
	for (i = 0; i < diff->n_changes; i++) {
		ch = &diff->changes[i];
		if (ch->new) {
			/* A modify whose key moved out of our scope still removes the old one. */
			if (!frontend_programmable(ch->new)) {
				err = ch->old && frontend_programmable(ch->old) ?
					      remove_frontend(dp, ch->old) :
					      0;
			} else {
				err = write_frontend(dp, ch->new, diff->full);
				if (err == 1) {
					kept++;
					err = 0;
				} else if (!err) {
					written++;
				}
				if (!err && ch->old && !same_key(ch->old, ch->new) &&
				    frontend_programmable(ch->old))
					err = remove_frontend(dp, ch->old);
			}
		} else if (ch->old && frontend_programmable(ch->old)) {
			err = remove_frontend(dp, ch->old);
			removed += !err;
		} else {
			err = 0;
		}
		if (err && !first_err)
			first_err = err;
		/* New reference first, so that a modify keeps the Service's counters. */
		if (ch->new &&frontend_programmable(ch->new)) {
			err = service_ref(dp, ch->new);
			if (err && !first_err)
				first_err = err;
		}
		if (ch->old && frontend_programmable(ch->old))
			service_unref(dp, ch->old);
	}
	if (diff->full) {
		sweep(dp, diff);
		sweep_services(dp);
		prune_source_ranges(dp, NULL, NULL);
	}
	/* Addresses come and go with devices; NodePorts follow them at each apply. */
	bpf_node_addrs_sync(bpf_map__fd(dp->skel->maps.node_addrs),
			    bpf_map__fd(dp->skel->maps.dev_addrs));
	if (dp->tc)
		reach_backends(dp, diff);
	pr_debug("bpf: applied %zu changes (%zu written, %zu already in place, %zu removed)%s",
		 diff->n_changes, written, kept, removed, diff->full ? ", full" : "");
	return first_err;
}
