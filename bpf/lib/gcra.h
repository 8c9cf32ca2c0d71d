/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The rate-limit arithmetic (GCRA, the "virtual scheduling" form of a token
 * bucket), shared by the BPF programs and the agent's unit tests. The whole
 * bucket state is one 64-bit word, the theoretical arrival time (TAT) of the
 * next flow, so a BPF program can update it with one compare-and-swap and
 * stays exact when every CPU hits the same Service at once: no lock, no
 * per-CPU drift, no refill timer.
 *
 * A flow arriving at `now` is admitted when, after charging it one
 * `interval`, the TAT is at most `depth` ahead of now; depth = burst x
 * interval, so an idle bucket admits `burst` flows at once and then one per
 * interval. A long idle time needs no special case: max(tat, now) forgets it.
 */
#ifndef SLUICE_GCRA_H
#define SLUICE_GCRA_H

/* Returns 1 and the new TAT if the flow is admitted, 0 if it is limited. */
static __always_inline int sl_gcra_admit(__u64 now, __u64 tat, __u64 interval, __u64 depth,
					 __u64 *new_tat)
{
	__u64 next = (tat > now ? tat : now) + interval;

	if (next - now > depth)
		return 0;
	*new_tat = next;
	return 1;
}

#endif
