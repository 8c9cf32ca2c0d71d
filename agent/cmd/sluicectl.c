// SPDX-License-Identifier: Apache-2.0
/*
 * sluicectl: shows what the datapath in place is doing, read straight from
 * the kernel (the BPF pins, or the nftables table), no agent needed.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ratelimit.h"
#include "datapath/datapath.h"
#include "lib/log.h"

#define DEFAULT_BPFFS "/sys/fs/bpf/sluice"

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: sluicectl [--bpffs=PATH] COMMAND\n"
		"\n"
		"Reads the state of the datapath in place straight from the kernel.\n"
		"\n"
		"Commands:\n"
		"  services     every frontend (address:port/proto, action, Service,\n"
		"               session affinity, rate limit), each followed by its backends\n"
		"  ratelimits   per Service: limit, burst, new flows admitted and limited\n"
		"  features     kernel features the agent probed at start: what it uses, why\n"
		"\n"
		"Options:\n"
		"  --bpffs=PATH pin directory of the agent (default %s)\n"
		"  -h, --help   this text\n",
		DEFAULT_BPFFS);
}

/* The datapath whose state is in the kernel; NULL, with one line saying so. */
static const struct datapath_ops *in_place(const struct datapath_config *cfg)
{
	const struct datapath_ops *ops = datapath_in_place(cfg);

	if (!ops)
		fprintf(stderr,
			"sluicectl: no datapath in place (no state of any datapath: %s; pin "
			"directory %s)\n",
			datapath_choices(), cfg->bpffs);
	return ops;
}

static int cmd_ratelimits(const struct datapath_config *cfg)
{
	const struct datapath_ops *ops = in_place(cfg);
	struct service_stats *stats = NULL;
	char rate[32], burst[16];
	size_t n = 0, i;
	int err;

	if (!ops)
		return 1;
	err = ops->read_stats ? ops->read_stats(cfg, &stats, &n) : -EOPNOTSUPP;
	if (err) {
		fprintf(stderr, "sluicectl: cannot read the %s datapath's counters: %s\n",
			ops->name, strerror(-err));
		return 1;
	}
	printf("%-40s %-12s %-10s %12s %12s\n", "SERVICE", "LIMIT", "BURST", "ADMITTED", "LIMITED");
	for (i = 0; i < n; i++) {
		if (stats[i].rate.count)
			snprintf(burst, sizeof(burst), "%u", stats[i].rate.burst);
		else
			snprintf(burst, sizeof(burst), "-");
		printf("%-40s %-12s %-10s %12llu %12llu\n", stats[i].service,
		       rate_limit_format(&stats[i].rate, rate, sizeof(rate)), burst,
		       (unsigned long long)stats[i].admitted, (unsigned long long)stats[i].limited);
	}
	free(stats);
	return 0;
}

/* The kernel features the agent in place decided on at its start. */
static int cmd_features(const struct datapath_config *cfg)
{
	const struct datapath_ops *ops = in_place(cfg);
	struct datapath_feature f[DATAPATH_FEATURES_MAX];
	size_t n = 0, i;
	int err;

	if (!ops)
		return 1;
	if (!ops->read_features) {
		printf("%s datapath: no kernel feature newer than Linux 6.1 to probe\n", ops->name);
		return 0;
	}
	err = ops->read_features(cfg, f, DATAPATH_FEATURES_MAX, &n);
	if (err) {
		fprintf(stderr, "sluicectl: cannot read the %s datapath's features: %s\n",
			ops->name, strerror(-err));
		return 1;
	}
	printf("%-14s %-18s %s\n", "FEATURE", "USES", "WHY");
	for (i = 0; i < n; i++)
		printf("%-14s %-18s %s\n", f[i].name, f[i].state, f[i].reason);
	return 0;
}

/* Frontends as the datapath prints them; else where to look, and the counters. */
static int cmd_services(const struct datapath_config *cfg)
{
	const struct datapath_ops *ops = in_place(cfg);

	if (!ops)
		return 1;
	if (ops->print_frontends)
		return ops->print_frontends(cfg, stdout);
	printf("%s datapath: frontends: see %s\n\n", ops->name, ops->inspect_hint);
	return cmd_ratelimits(cfg);
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "bpffs", required_argument, NULL, 'b' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct datapath_config cfg = { .bpffs = DEFAULT_BPFFS };
	int opt;

	while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
		switch (opt) {
		case 'b':
			cfg.bpffs = optarg;
			break;
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
	/* The datapath code logs through log.h: keep sluicectl's output to errors. */
	log_set_level(LOG_WARN);
	if (!strcmp(argv[optind], "services"))
		return cmd_services(&cfg);
	if (!strcmp(argv[optind], "ratelimits"))
		return cmd_ratelimits(&cfg);
	if (!strcmp(argv[optind], "features"))
		return cmd_features(&cfg);
	fprintf(stderr, "sluicectl: unknown command '%s'\n", argv[optind]);
	usage(stderr);
	return 2;
}
