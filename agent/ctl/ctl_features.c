// SPDX-License-Identifier: Apache-2.0
/*
 * sluicectl features: the kernel features newer than Linux 6.1 that the
 * agent in place probed at its start, what it uses for each and why
 * (Documentation/vmtest.md, "What is probed"). Also printed by status.
 */
#include <stdio.h>
#include <string.h>

#include "ctl/ctl.h"
#include "ctl/table.h"

int ctl_print_features(const struct ctl *ctl, const struct datapath_ops *ops, FILE *out)
{
	struct datapath_feature f[DATAPATH_FEATURES_MAX];
	size_t n = 0;
	int err;

	if (!ops->read_features) {
		fprintf(out, "%s datapath: no kernel feature newer than Linux 6.1 to probe\n",
			ops->name);
		return 0;
	}
	err = ops->read_features(&ctl->cfg, f, DATAPATH_FEATURES_MAX, &n);
	if (err) {
		fprintf(stderr, "sluicectl: cannot read the %s datapath's features: %s\n",
			ops->name, strerror(-err));
		return 1;
	}
	fprintf(out, "%-14s %-18s %s\n", "FEATURE", "USES", "WHY");
	for (size_t i = 0; i < n; i++)
		fprintf(out, "%-14s %-18s %s\n", f[i].name, f[i].state, f[i].reason);
	return 0;
}

int cmd_features(struct ctl *ctl, int argc, char **argv)
{
	const struct datapath_ops *ops;

	if (argc > 1)
		return ctl_usage_error("features: unexpected argument \"%s\"", argv[1]);
	ops = ctl_in_place(ctl, false);
	return ops ? ctl_print_features(ctl, ops, stdout) : 1;
}
