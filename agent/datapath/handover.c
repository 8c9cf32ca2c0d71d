// SPDX-License-Identifier: Apache-2.0
/*
 * The handover from the datapath in place to the one this agent opened:
 * both serve, fed the same diffs, until the old one is removed.
 */
#include <stdio.h>
#include <string.h>

#include "datapath/handover.h"
#include "lib/log.h"

static const struct datapath_ops *previous(const struct datapath_ops *keep,
					   const struct datapath_config *cfg)
{
	const struct datapath_ops *ops;

	for (size_t i = 0; (ops = datapath_at(i)); i++) {
		if (ops != keep && ops->present(cfg))
			return ops;
	}
	return NULL;
}

bool datapath_handover_begin(struct datapath_handover *ho, const struct datapath_ops *keep,
			     const struct datapath_config *cfg, unsigned int seconds,
			     long long now_ms)
{
	const struct datapath_ops *old = previous(keep, cfg);
	char why[512] = "";

	memset(ho, 0, sizeof(*ho));
	if (!old || !seconds)
		return false;
	if (old->open(cfg, &ho->old.dp, why, sizeof(why))) {
		pr_warn("the %s datapath in place cannot be kept serving during the switch (%s); "
			"it goes at once",
			old->name, why);
		return false;
	}
	ho->old.ops = old;
	snprintf(ho->old.output_name, sizeof(ho->old.output_name), "datapath %s", old->name);
	snprintf(ho->output_name, sizeof(ho->output_name), "handover from datapath %s", old->name);
	ho->end_ms = now_ms + seconds * 1000LL;
	ho->active = true;
	pr_info("switching from %s to %s: both serve for %u s, then the %s state goes", old->name,
		keep->name, seconds, old->name);
	return true;
}

int datapath_handover_timeout(const struct datapath_handover *ho, long long now_ms)
{
	if (!ho->active)
		return -1;
	if (ho->failed || now_ms >= ho->end_ms)
		return 0;
	return (int)(ho->end_ms - now_ms);
}

void datapath_handover_end(struct datapath_handover *ho, const struct datapath_ops *keep,
			   const struct datapath_config *cfg)
{
	if (!ho->active)
		return;
	datapath_close(&ho->old);
	ho->active = false;
	pr_info("switch to %s complete", keep->name);
	datapath_cleanup_others(keep, cfg);
}

void datapath_handover_abandon(struct datapath_handover *ho)
{
	if (!ho->active)
		return;
	datapath_close(&ho->old);
	ho->active = false;
}

static int handover_apply(void *ctx, const struct state_diff *diff)
{
	struct datapath_handover *ho = ctx;
	int err;

	if (!ho->active || ho->failed)
		return 0;
	err = ho->old.ops->apply(ho->old.dp, diff);
	if (err) {
		pr_warn("%s: an apply failed (%s): ending the handover now", ho->output_name,
			strerror(-err));
		ho->failed = true;
	}
	return 0;
}

const struct output_ops handover_output_ops = {
	.apply = handover_apply,
};
