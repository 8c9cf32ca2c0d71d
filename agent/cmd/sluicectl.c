// SPDX-License-Identifier: Apache-2.0
/*
 * sluicectl: shows what the datapath in place is doing, read straight from
 * the kernel (the BPF pins, or the nftables table), and why, from the
 * agent's status.json and agent.sock (--status-dir). The commands live in agent/ctl/.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "ctl/ctl.h"
#include "lib/log.h"
#include "serve/status.h"
#include "version.h"

#define DEFAULT_BPFFS "/sys/fs/bpf/sluice"

static const struct {
	const char *name;
	int (*run)(struct ctl *ctl, int argc, char **argv);
} commands[] = {
	{ "services", cmd_services }, { "ratelimits", cmd_ratelimits },
	{ "status", cmd_status },     { "explain", cmd_explain },
	{ "top", cmd_top },	      { "features", cmd_features },
};

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: sluicectl [--bpffs=PATH] [--status-dir=PATH] COMMAND [ARGS]\n"
		"\n"
		"Reads the state of the datapath in place straight from the kernel, and\n"
		"why it is so from the agent (status.json, and the running agent's answers).\n"
		"\n"
		"Commands:\n"
		"  services [-o json]   every frontend (address:port/proto, action, Service,\n"
		"                       session affinity, rate limit), each followed by its\n"
		"                       backends; -o json: every Service as the running agent\n"
		"                       computes it, with the kernel's counters\n"
		"  ratelimits           per Service: limit, burst, new flows admitted and limited\n"
		"  status [-o json]     the agent: datapath and why, last sync, counts, version,\n"
		"                       rejected inputs\n"
		"  explain NAMESPACE/NAME [-o json]\n"
		"                       per frontend: the endpoints in use and why (topology,\n"
		"                       traffic policy, terminating fallback), affinity, the\n"
		"                       rate limit and its counters, the datapath\n"
		"  top [--interval=S] [-n N] [--once]\n"
		"                       the busiest Services by new flows/s, redrawn every S\n"
		"                       seconds (default 2); q or Ctrl-C quits; --once or a\n"
		"                       non-terminal: one table\n"
		"  features             kernel features the agent probed at start: what it\n"
		"                       uses, why (also at the end of status)\n"
		"\n"
		"Options:\n"
		"  --bpffs=PATH        pin directory of the agent (default %s)\n"
		"  --status-dir=PATH   the agent's status.json and agent.sock (default\n"
		"                      $SLUICE_STATUS_DIR, else %s)\n"
		"  --version           the version\n"
		"  -h, --help          this text\n",
		DEFAULT_BPFFS, STATUS_DEFAULT_DIR);
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "bpffs", required_argument, NULL, 'b' },
		{ "status-dir", required_argument, NULL, 's' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct ctl ctl = { .cfg = { .bpffs = DEFAULT_BPFFS } };
	const char *status_dir = NULL;
	int opt;

	/* "+": options after the command are the command's own. */
	while ((opt = getopt_long(argc, argv, "+h", options, NULL)) != -1) {
		switch (opt) {
		case 'b':
			ctl.cfg.bpffs = optarg;
			break;
		case 's':
			status_dir = optarg;
			break;
		case 'V':
			printf("sluicectl %s\n", SLUICE_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	ctl.status_dir = status_dir_default(status_dir);
	/* The datapath code logs through log.h: keep sluicectl's output to errors. */
	log_set_level(LOG_WARN);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (!strcmp(argv[optind], commands[i].name))
			return commands[i].run(&ctl, argc - optind, argv + optind);
	}
	fprintf(stderr,
		"sluicectl: unknown command '%s' (services, ratelimits, status, explain, "
		"top, features; --help)\n",
		argv[optind]);
	return 2;
}
