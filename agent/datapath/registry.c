// SPDX-License-Identifier: Apache-2.0
/*
 * The registry: the one list of datapaths, in the order --datapath=auto
 * tries them. Adding a datapath adds one line here and its own folder.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "datapath/datapath.h"
#include "lib/log.h"

static const struct datapath_ops *const datapaths[] = {
	&bpf_datapath_ops,
	&nft_datapath_ops,
};

#define N_DATAPATHS (sizeof(datapaths) / sizeof(datapaths[0]))

const struct datapath_ops *datapath_find(const char *name)
{
	for (size_t i = 0; i < N_DATAPATHS; i++) {
		if (!strcmp(datapaths[i]->name, name))
			return datapaths[i];
	}
	return NULL;
}

const char *datapath_choices(void)
{
	static char text[128];
	size_t len;

	if (*text)
		return text;
	len = 0;
	for (size_t i = 0; i < N_DATAPATHS && len < sizeof(text); i++)
		len += snprintf(text + len, sizeof(text) - len, "%s%s",
				!i		     ? "" :
				i + 1 == N_DATAPATHS ? " or " :
						       ", ",
				datapaths[i]->name);
	return text;
}

static int open_one(const struct datapath_ops *ops, const struct datapath_config *cfg,
		    struct datapath_handle *h, char *why, size_t why_len)
{
	int err = ops->open(cfg, &h->dp, why, why_len);

	if (err)
		return err;
	h->ops = ops;
	snprintf(h->output_name, sizeof(h->output_name), "datapath %s", ops->name);
	return 0;
}

int datapath_open_choice(const char *choice, const struct datapath_config *cfg,
			 struct datapath_handle *h)
{
	char why[512] = "";
	int err = -ENOENT;

	memset(h, 0, sizeof(*h));
	if (strcmp(choice, "auto")) {
		const struct datapath_ops *ops = datapath_find(choice);

		if (!ops) {
			pr_warn("--datapath: unknown value \"%s\" (auto, %s)", choice,
				datapath_choices());
			return -EINVAL;
		}
		err = open_one(ops, cfg, h, why, sizeof(why));
		if (err)
			pr_warn("%s datapath: %s", ops->name, why);
		return err;
	}
	for (size_t i = 0; i < N_DATAPATHS; i++) {
		size_t len = strlen(h->fallback);

		err = open_one(datapaths[i], cfg, h, why, sizeof(why));
		if (!err)
			return 0;
		if (i + 1 < N_DATAPATHS) {
			pr_warn("%s datapath unavailable (%s); using %s", datapaths[i]->name, why,
				datapaths[i + 1]->name);
			/* sluicectl status and sluice_datapath_info say it too. */
			snprintf(h->fallback + len, sizeof(h->fallback) - len,
				 "%s%s unavailable: %s", len ? "; " : "", datapaths[i]->name, why);
		} else
			pr_warn("%s datapath: %s", datapaths[i]->name, why);
	}
	return err;
}

void datapath_close(struct datapath_handle *h)
{
	if (h->ops)
		h->ops->close(h->dp);
	memset(h, 0, sizeof(*h));
}

const struct datapath_ops *datapath_in_place(const struct datapath_config *cfg,
					     const struct datapath_ops *skip)
{
	for (size_t i = 0; i < N_DATAPATHS; i++) {
		if (datapaths[i] != skip && datapaths[i]->present(cfg))
			return datapaths[i];
	}
	return NULL;
}

int datapath_cleanup_others(const struct datapath_ops *keep, const struct datapath_config *cfg)
{
	int first = 0;

	for (size_t i = 0; i < N_DATAPATHS; i++) {
		const struct datapath_ops *ops = datapaths[i];
		int err;

		if (ops == keep)
			continue;
		/* Beside a serving datapath, only the others' leftovers are removed. */
		if (keep) {
			if (!ops->present(cfg))
				continue;
			pr_info("removing the %s datapath's state", ops->name);
		}
		err = ops->cleanup(cfg, keep != NULL);
		if (err) {
			pr_warn("%s cleanup: %s", ops->name, strerror(-err));
			if (!first)
				first = err;
		}
	}
	return first;
}

static int datapath_output_apply(void *ctx, const struct state_diff *diff)
{
	struct datapath_handle *h = ctx;

	return h->ops->apply(h->dp, diff);
}

const struct output_ops datapath_output_ops = {
	.apply = datapath_output_apply,
};

const char *flow_outcome_name(enum flow_outcome o)
{
	static const char *const names[FLOW_OUTCOMES] = {
		[FLOW_ADMITTED] = "admitted",	      [FLOW_RATE_LIMITED] = "rate_limited",
		[FLOW_NO_ENDPOINTS] = "no_endpoints", [FLOW_POLICY_DROP] = "policy_drop",
		[FLOW_SOURCE_RANGE] = "source_range",
	};

	return o < FLOW_OUTCOMES ? names[o] : "unknown";
}
