// SPDX-License-Identifier: Apache-2.0
/*
 * sluicectl status: the agent as it last wrote status.json (datapath and
 * why, last sync, counts, version, rejected inputs), and whether it still
 * runs and its datapath is the one in the kernel.
 */
#include <stdarg.h>
#include <string.h>
#include <time.h>

#include "ctl/ctl.h"
#include "ctl/table.h"

static void row(struct table *t, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void row(struct table *t, const char *key, const char *fmt, ...)
{
	char value[1024];
	const char *cells[2] = { key, value };
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(value, sizeof(value), fmt, ap);
	va_end(ap);
	table_add(t, cells);
}

int cmd_status(struct ctl *ctl, int argc, char **argv)
{
	const struct datapath_ops *ops;
	struct timespec ts;
	bool json = false, running;
	char t1[96], t2[96];
	struct table t;
	json_t *st;
	double now;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-o") && i + 1 < argc && !strcmp(argv[i + 1], "json"))
			json = true, i++;
		else if (!strcmp(argv[i], "-ojson") || !strcmp(argv[i], "--output=json"))
			json = true;
		else
			return ctl_usage_error("status: unexpected argument \"%s\" (usage: status "
					       "[-o json])",
					       argv[i]);
	}
	st = ctl_load_status(ctl, false);
	if (!st)
		return 1;
	clock_gettime(CLOCK_REALTIME, &ts);
	now = ts.tv_sec + ts.tv_nsec / 1e9;
	running = ctl_agent_running(st);
	ops = ctl_in_place(ctl, true);
	if (json) {
		json_object_set_new(st, "running", json_boolean(running));
		json_object_set_new(st, "inKernel", ops ? json_string(ops->name) : json_null());
		json_dumpf(st, stdout, JSON_INDENT(2));
		fputc('\n', stdout);
		json_decref(st);
		return 0;
	}
	/* Keys and values aligned, as kubectl describe prints them. */
	table_init(&t, 2, NULL);
	row(&t, "Agent:", "%s (pid %lld), version %s", running ? "running" : "not running",
	    ji(st, "pid"), js(st, "version"));
	row(&t, "Node:", "%s%s%s", js(st, "node"), *js(st, "zone") ? ", zone " : ", no zone label",
	    js(st, "zone"));
	row(&t, "Source:", "%s", js(st, "source"));
	row(&t, "Datapath:", "%s (--datapath=%s)", js(st, "datapath"), js(st, "requested"));
	row(&t, "Why:", "%s",
	    *js(st, "fallback")			 ? js(st, "fallback") :
	    !strcmp(js(st, "requested"), "auto") ? "auto: the first datapath opened" :
						   "asked for by --datapath");
	row(&t, "In the kernel:", "%s%s", ops ? ops->name : "no datapath state found",
	    ops && strcmp(ops->name, js(st, "datapath")) ? " (not the agent's datapath)" : "");
	row(&t, "Last sync:", "%s%s%s",
	    ctl_time_text(json_number_value(json_object_get(st, "lastSync")), now, t1, sizeof(t1)),
	    *js(st, "lastError") ? "; the last attempt failed: " : "", js(st, "lastError"));
	row(&t, "Last full sync:", "%s",
	    ctl_time_text(json_number_value(json_object_get(st, "lastFullSync")), now, t2,
			  sizeof(t2)));
	row(&t, "Syncs:", "%lld (%lld failed)", ji(st, "syncs"), ji(st, "failedSyncs"));
	row(&t, "Services:", "%lld", ji(st, "services"));
	row(&t, "Frontends:", "%lld", ji(st, "frontends"));
	row(&t, "Backends:", "%lld", ji(st, "backends"));
	row(&t, "Rejected inputs:", "%lld%s", ji(st, "rejected"),
	    ji(st, "rejected") ? " (see the agent's log)" : "");
	row(&t, "Not programmed:", "%lld%s", ji(st, "notProgrammed"),
	    ji(st, "notProgrammed") ? " (--max-services)" : "");
	row(&t, "Answers:", "%s",
	    running && *js(st, "socket") ? js(st, "socket") :
	    running			 ? "none (--once, or the socket could not be made)" :
					   "none while the agent is not running");
	table_print(&t, stdout, "");
	table_clear(&t);
	json_decref(st);
	/* The devices of the packet paths: tc, and XDP in its mode (issue 19). */
	if (ops && ops->print_devices) {
		printf("\nDevices (%s):\n", ops->name);
		ops->print_devices(&ctl->cfg, stdout);
	}
	/* The kernel features the datapath in place probed at its start (issue 18). */
	if (ops) {
		printf("\nKernel features (%s):\n", ops->name);
		ctl_print_features(ctl, ops, stdout);
	}
	return 0;
}
