// SPDX-License-Identifier: Apache-2.0
/*
 * sluicectl explain NAMESPACE/NAME: the Service's document as the running
 * agent computes it when asked, the datapath and the counters the kernel
 * holds, in words.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl/ctl.h"
#include "ctl/explain_text.h"
#include "serve/status_server.h"

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
	char req[STATUS_REQUEST_MAX], err[256];
	json_t *svc, *status;
	size_t n_fc = 0;
	FILE *answer;

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
	if (strlen(key) > sizeof(req) - 16)
		return ctl_usage_error("explain: \"%.40s...\" is too long for a name", key);
	snprintf(req, sizeof(req), "explain %s", key);
	answer = ctl_ask(ctl, req, "explain");
	if (!answer)
		return 1;
	svc = ctl_answer_next(answer, err, sizeof(err));
	fclose(answer);
	if (!svc) {
		fprintf(stderr, "sluicectl: explain %s: %s\n", key, err);
		return 1;
	}
	if (*js(svc, "error")) {
		if (!strcmp(js(svc, "error"), "not-found"))
			fprintf(stderr, "sluicectl: Service %s is not known to the agent\n", key);
		else
			fprintf(stderr, "sluicectl: explain %s: the agent says: %s\n", key,
				js(svc, "message"));
		json_decref(svc);
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
