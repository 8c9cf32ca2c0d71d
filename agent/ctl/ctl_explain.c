// SPDX-License-Identifier: Apache-2.0
/*
 * sluicectl explain NAMESPACE/NAME: the Service's file as the agent
 * published it, the datapath and the counters the kernel holds, in words.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl/ctl.h"
#include "ctl/explain_text.h"
#include "serve/status.h"

/* A namespace and name as the API server allows them (DNS labels). */
static bool valid_key(const char *key)
{
	const char *slash = strchr(key, '/');

	if (!slash || slash == key || !slash[1] || strchr(slash + 1, '/'))
		return false;
	for (const char *c = key; *c; c++) {
		if (c != slash &&
		    !((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-'))
			return false;
	}
	return true;
}

static double now_real(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int cmd_explain(struct ctl *ctl, int argc, char **argv)
{
	struct explain_context x = { .now = now_real() };
	struct flow_counters *fc = NULL;
	const struct datapath_ops *ops;
	const char *key = NULL;
	bool json = false;
	char path[4096], err[4200];
	json_t *svc, *status;
	size_t n_fc = 0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-o") && i + 1 < argc && !strcmp(argv[i + 1], "json"))
			json = true, i++;
		else if (!strcmp(argv[i], "-ojson") || !strcmp(argv[i], "--output=json"))
			json = true;
		else if (argv[i][0] == '-' || key)
			return ctl_usage_error(
				"explain: unexpected argument \"%s\" (usage: explain "
				"NAMESPACE/NAME [-o json])",
				argv[i]);
		else
			key = argv[i];
	}
	if (!key)
		return ctl_usage_error("explain: which Service? (usage: explain NAMESPACE/NAME)");
	if (!valid_key(key))
		return ctl_usage_error("explain: \"%s\" is not NAMESPACE/NAME", key);
	snprintf(path, sizeof(path), "%s/%s/%s.json", ctl->status_dir, STATUS_SERVICES_DIR, key);
	errno = 0;
	svc = ctl_load(path, err, sizeof(err));
	if (!svc) {
		if (errno == ENOENT)
			fprintf(stderr, "sluicectl: Service %s is not known to the agent (%s)\n",
				key, err);
		else
			fprintf(stderr, "sluicectl: cannot read Service %s: %s\n", key, err);
		return 1;
	}
	status = ctl_load_status(ctl, true);
	if (status) {
		x.agent_datapath = js(status, "datapath");
		x.requested = js(status, "requested");
		x.fallback = js(status, "fallback");
		x.agent_pid = ji(status, "pid");
		x.agent_running = ctl_agent_running(status);
	}
	ops = ctl_in_place(ctl, true);
	if (ops) {
		x.in_kernel = ops->name;
		if (!flow_counters_read(ops, &ctl->cfg, &fc, &n_fc, &x.have))
			x.counters = flow_counters_find(fc, n_fc, key);
	}
	if (json) {
		json_t *c = json_object();

		json_object_set_new(c, "datapath",
				    x.in_kernel ? json_string(x.in_kernel) : json_null());
		for (int o = 0; x.counters && o < FLOW_OUTCOMES; o++) {
			if (x.have & (1u << o))
				json_object_set_new(c, flow_outcome_name(o),
						    json_integer((json_int_t)x.counters->flows[o]));
		}
		json_object_set_new(svc, "kernel", c);
		json_dumpf(svc, stdout, JSON_INDENT(2));
		fputc('\n', stdout);
	} else {
		explain_render(stdout, svc, &x);
	}
	free(fc);
	json_decref(status);
	json_decref(svc);
	return 0;
}
