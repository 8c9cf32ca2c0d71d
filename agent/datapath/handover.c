// SPDX-License-Identifier: Apache-2.0
/*
 * The handover from the datapath in place to the one this agent opened:
 * the old one drains, then goes.
 */
#include <string.h>

#include "datapath/handover.h"
#include "lib/log.h"

bool datapath_handover_begin(struct datapath_handover *ho, const struct datapath_ops *keep,
			     const struct datapath_config *cfg, unsigned int seconds,
			     long long now_ms)
{
	const struct datapath_ops *old = datapath_in_place(cfg, keep);
	int err;

	memset(ho, 0, sizeof(*ho));
	if (!old)
		return false;
	if (!seconds || !old->drain) {
		datapath_cleanup_others(keep, cfg);
		return false;
	}
	err = old->drain(cfg);
	if (err) {
		pr_warn("%s: cannot drain (%s); its state goes at once", old->name, strerror(-err));
		datapath_cleanup_others(keep, cfg);
		return false;
	}
	ho->old = old;
	ho->end_ms = now_ms + seconds * 1000LL;
	pr_info("switched from %s to %s: %s keeps translating the flows it began for %u s",
		old->name, keep->name, old->name, seconds);
	return true;
}

int datapath_handover_timeout(const struct datapath_handover *ho, long long now_ms)
{
	if (!ho->old)
		return -1;
	return now_ms >= ho->end_ms ? 0 : (int)(ho->end_ms - now_ms);
}

void datapath_handover_end(struct datapath_handover *ho, const struct datapath_ops *keep,
			   const struct datapath_config *cfg)
{
	if (!ho->old)
		return;
	ho->old = NULL;
	datapath_cleanup_others(keep, cfg);
	pr_info("switch to %s complete", keep->name);
}
