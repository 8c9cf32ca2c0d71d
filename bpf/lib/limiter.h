/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Per-Service rate limiting of new flows: the GCRA bucket word of a Service
 * updated by compare-and-swap (exact when every CPU charges it at once, no
 * lock, no refill timer), the per-CPU admitted / limited counters, and
 * the per-CPU counters of flows refused for other reasons.
 */
#ifndef SLUICE_BPF_LIMITER_H
#define SLUICE_BPF_LIMITER_H

#include <bpf/bpf_helpers.h>

#include "shared.h"
#include "maps.h"
#include "gcra.h"

/*
 * A failed CAS means another CPU admitted a flow in between; each retry
 * re-reads its TAT. Two CPUs need at most a few; past the bound the flow is
 * limited, the conservative answer when the bucket is that hot.
 */
#define SL_GCRA_RETRIES 8

/* Counts one new flow of service_id as admitted or limited (this CPU's slot). */
static __always_inline void sl_count_flow(__u32 service_id, bool admitted)
{
	struct sl_service_counters *c, init = { 0 };

	c = bpf_map_lookup_elem(&service_counters, &service_id);
	if (!c) {
		/* First flow on this CPU since the agent (re)set the Service: create it. */
		init.admitted = admitted;
		init.limited = !admitted;
		if (!bpf_map_update_elem(&service_counters, &service_id, &init, BPF_NOEXIST))
			return;
		c = bpf_map_lookup_elem(&service_counters, &service_id);
		if (!c)
			return;
	}
	/* Per-CPU value: a plain increment is exact. */
	if (admitted)
		c->admitted++;
	else
		c->limited++;
}

/*
 * Counts one new flow of service_id refused for reason (this CPU's slot).
 * Only refused flows come here: a hash lookup is fine off the admitted path.
 */
static __always_inline void sl_count_refused(__u32 service_id, enum sl_refused_reason reason)
{
	struct sl_service_refused *c, init = { 0 };

	c = bpf_map_lookup_elem(&service_refused, &service_id);
	if (!c) {
		/* First refusal on this CPU since the agent (re)set the Service (NOEXIST: no race). */
		bpf_map_update_elem(&service_refused, &service_id, &init, BPF_NOEXIST);
		c = bpf_map_lookup_elem(&service_refused, &service_id);
		if (!c)
			return;
	}
	if (reason == SL_REFUSED_NO_ENDPOINTS)
		c->no_endpoints++;
	else if (reason == SL_REFUSED_POLICY_DROP)
		c->policy_drop++;
	else
		c->source_range++;
}

/* Charges one new flow to the Service's bucket; true if it is admitted. */
static __always_inline bool sl_rate_admit(__u32 service_id, __u64 interval, __u64 depth)
{
	struct sl_bucket *bucket, fresh = { 0 };
	__u64 now, tat, new_tat;
	int i;

	bucket = bpf_map_lookup_elem(&rate_buckets, &service_id);
	if (!bucket) {
		/* A missing bucket is a full one (TAT 0); NOEXIST loses no race. */
		bpf_map_update_elem(&rate_buckets, &service_id, &fresh, BPF_NOEXIST);
		bucket = bpf_map_lookup_elem(&rate_buckets, &service_id);
		if (!bucket)
			return true; /* map full: fail open, as a Service without a limit */
	}
	now = bpf_ktime_get_ns();
	for (i = 0; i < SL_GCRA_RETRIES; i++) {
		tat = *(volatile __u64 *)&bucket->tat_ns;
		if (!sl_gcra_admit(now, tat, interval, depth, &new_tat))
			return false;
		if (__sync_val_compare_and_swap(&bucket->tat_ns, tat, new_tat) == tat)
			return true;
	}
	return false;
}

/*
 * Charges a new flow of svc: to its bucket when the Service has a limit,
 * and to its admitted or limited counter. True if the flow may go on.
 */
static __always_inline bool sl_admit_new_flow(const struct sl_service *svc)
{
	bool admitted = true;

	if (svc->rate_interval_ns)
		admitted =
			sl_rate_admit(svc->service_id, svc->rate_interval_ns, svc->rate_depth_ns);
	sl_count_flow(svc->service_id, admitted);
	return admitted;
}

#endif
