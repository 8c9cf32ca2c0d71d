// SPDX-License-Identifier: Apache-2.0
/*
 * sluicectl services and ratelimits. services prints the frontends as the
 * kernel holds them (the datapath's print_frontends); services -o json
 * lists the Services as the running agent computes them when asked, with
 * the kernel's counters beside each; ratelimits is the counters alone.
 */
#include <stdlib.h>
#include <string.h>

#include "core/ratelimit.h"
#include "ctl/ctl.h"
#include "ctl/flows.h"
#include "ctl/table.h"

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

/* doc, as json_dumpf(JSON_INDENT(2)) prints it two levels down (in "items"). */
static void print_item(json_t *doc, bool first)
{
	char *text = json_dumps(doc, JSON_INDENT(2));

	fputs(first ? "\n    " : ",\n    ", stdout);
	for (const char *c = text; c && *c; c++) {
		putchar(*c);
		if (*c == '\n')
			fputs("    ", stdout);
	}
	free(text);
}

/*
 * Every Service as the agent computes it, by namespace then name, with its
 * kernel counters: printed one at a time as the agent sends them, so that
 * 100k Services need no more memory here than one.
 */
static int services_json(struct ctl *ctl)
{
	const struct datapath_ops *ops;
	struct flow_counters *fc = NULL;
	unsigned int have = 0;
	size_t n_fc = 0, n = 0;
	char err[256];
	FILE *answer;
	json_t *doc;

	answer = ctl_ask(ctl, "services", "services -o json");
	if (!answer)
		return 1;
	ops = ctl_in_place(ctl, true);
	if (ops)
		flow_counters_read(ops, &ctl->cfg, &fc, &n_fc, &have);
	/* The head as json_dumpf prints {"kind", "datapath", "items"}. */
	printf("{\n  \"kind\": \"List\",\n  \"datapath\": ");
	if (ops)
		printf("\"%s\"", ops->name);
	else
		printf("null");
	printf(",\n  \"items\": [");
	while ((doc = ctl_answer_next(answer, err, sizeof(err))) && !json_object_get(doc, "end")) {
		const struct flow_counters *c = flow_counters_find(fc, n_fc, js(doc, "service"));

		if (c) {
			json_t *k = json_object();

			for (int o = 0; o < FLOW_OUTCOMES; o++) {
				if (have & (1u << o))
					json_object_set_new(k, flow_outcome_name(o),
							    json_integer((json_int_t)c->flows[o]));
			}
			json_object_set_new(doc, "kernel", k);
		}
		print_item(doc, !n++);
		json_decref(doc);
	}
	fclose(answer);
	free(fc);
	printf(n ? "\n  ]\n}\n" : "]\n}\n");
	if (!doc) {
		fprintf(stderr, "sluicectl: services -o json: %s (after %zu Services)\n", err, n);
		return 1;
	}
	json_decref(doc);
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
