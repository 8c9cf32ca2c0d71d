// SPDX-License-Identifier: Apache-2.0
/*
 * sluicectl services and ratelimits. services prints the frontends as the
 * kernel holds them (the datapath's print_frontends); services -o json
 * lists the Services as the agent published them, with the kernel's
 * counters beside each; ratelimits is the counters alone.
 */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/ratelimit.h"
#include "ctl/ctl.h"
#include "ctl/flows.h"
#include "ctl/table.h"
#include "serve/status.h"

static int cmd_ratelimits_print(struct ctl *ctl, const struct datapath_ops *ops)
{
	static const char *const head[] = { "SERVICE", "LIMIT", "BURST", "ADMITTED", "LIMITED" };
	struct flow_counters *fc = NULL;
	unsigned int have;
	struct table t;
	size_t n = 0;
	int err;

	err = flow_counters_read(ops, &ctl->cfg, &fc, &n, &have);
	if (err) {
		fprintf(stderr, "sluicectl: cannot read the %s datapath's counters: %s\n",
			ops->name, strerror(-err));
		return 1;
	}
	table_init(&t, 5, head);
	for (size_t i = 0; i < n; i++) {
		char rate[32], burst[16], adm[24], lim[24];
		const char *row[5] = { fc[i].service, rate, burst, adm, lim };

		rate_limit_format(&fc[i].rate, rate, sizeof(rate));
		snprintf(burst, sizeof(burst), fc[i].rate.count ? "%u" : "-", fc[i].rate.burst);
		snprintf(adm, sizeof(adm), "%llu", (unsigned long long)fc[i].flows[FLOW_ADMITTED]);
		snprintf(lim, sizeof(lim), "%llu",
			 (unsigned long long)fc[i].flows[FLOW_RATE_LIMITED]);
		table_add(&t, row);
	}
	table_print(&t, stdout, "");
	table_clear(&t);
	free(fc);
	return 0;
}

int cmd_ratelimits(struct ctl *ctl, int argc, char **argv)
{
	const struct datapath_ops *ops;

	if (argc > 1)
		return ctl_usage_error("ratelimits: unexpected argument \"%s\"", argv[1]);
	ops = ctl_in_place(ctl, false);
	return ops ? cmd_ratelimits_print(ctl, ops) : 1;
}

static int only_dirs(const struct dirent *d)
{
	return d->d_name[0] != '.';
}

static int only_json(const struct dirent *d)
{
	size_t len = strlen(d->d_name);

	return d->d_name[0] != '.' && len > 5 && !strcmp(d->d_name + len - 5, ".json");
}

/* Every published Service, sorted by namespace then name, with its kernel counters. */
static int services_json(struct ctl *ctl)
{
	const struct datapath_ops *ops = ctl_in_place(ctl, true);
	struct flow_counters *fc = NULL;
	struct dirent **ns = NULL;
	unsigned int have = 0;
	size_t n_fc = 0;
	char path[4096];
	json_t *list, *items;
	int n_ns;

	snprintf(path, sizeof(path), "%s/%s", ctl->status_dir, STATUS_SERVICES_DIR);
	n_ns = scandir(path, &ns, only_dirs, alphasort);
	if (n_ns < 0) {
		fprintf(stderr,
			"sluicectl: no Services published in %s (%s): is sluice-agent "
			"running with --status-dir=%s?\n",
			path, strerror(errno), ctl->status_dir);
		return 1;
	}
	if (ops)
		flow_counters_read(ops, &ctl->cfg, &fc, &n_fc, &have);
	list = json_object();
	items = json_array();
	json_object_set_new(list, "kind", json_string("List"));
	json_object_set_new(list, "datapath", ops ? json_string(ops->name) : json_null());
	for (int i = 0; i < n_ns; i++) {
		struct dirent **files = NULL;
		char dir[4400];
		int n_files;

		snprintf(dir, sizeof(dir), "%s/%s", path, ns[i]->d_name);
		n_files = scandir(dir, &files, only_json, alphasort);
		for (int j = 0; j < n_files; j++) {
			char file[4700], err[4800];
			const struct flow_counters *c;
			json_t *doc;

			snprintf(file, sizeof(file), "%s/%s", dir, files[j]->d_name);
			doc = ctl_load(file, err, sizeof(err));
			free(files[j]);
			if (!doc)
				continue; /* removed meanwhile, or another schema: skipped */
			c = flow_counters_find(fc, n_fc, js(doc, "service"));
			if (c) {
				json_t *k = json_object();

				for (int o = 0; o < FLOW_OUTCOMES; o++) {
					if (have & (1u << o))
						json_object_set_new(
							k, flow_outcome_name(o),
							json_integer((json_int_t)c->flows[o]));
				}
				json_object_set_new(doc, "kernel", k);
			}
			json_array_append_new(items, doc);
		}
		free(files);
		free(ns[i]);
	}
	free(ns);
	json_object_set_new(list, "items", items);
	json_dumpf(list, stdout, JSON_INDENT(2));
	fputc('\n', stdout);
	json_decref(list);
	free(fc);
	return 0;
}

int cmd_services(struct ctl *ctl, int argc, char **argv)
{
	const struct datapath_ops *ops;
	bool json = false;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-o") && i + 1 < argc && !strcmp(argv[i + 1], "json"))
			json = true, i++;
		else if (!strcmp(argv[i], "-ojson") || !strcmp(argv[i], "--output=json"))
			json = true;
		else
			return ctl_usage_error("services: unexpected argument \"%s\" (usage: "
					       "services [-o json])",
					       argv[i]);
	}
	if (json)
		return services_json(ctl);
	ops = ctl_in_place(ctl, false);
	if (!ops)
		return 1;
	if (ops->print_frontends)
		return ops->print_frontends(&ctl->cfg, stdout);
	printf("%s datapath: frontends: see %s\n\n", ops->name, ops->inspect_hint);
	return cmd_ratelimits_print(ctl, ops);
}
