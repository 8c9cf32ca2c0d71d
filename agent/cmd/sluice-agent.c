// SPDX-License-Identifier: Apache-2.0
/*
 * sluice-agent: reads Services, EndpointSlices and Nodes from a source,
 * resolves them for this node and programs one datapath (see the registry).
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "core/lb_algorithm.h"
#include "core/maglev.h"
#include "core/engine.h"
#include "core/store.h"
#include "datapath/datapath.h"
#include "datapath/handover.h"
#include "lib/caps.h"
#include "lib/log.h"
#include "lib/size.h"
#include "lib/xalloc.h"
#include "serve/health.h"
#include "serve/health_nodeport.h"
#include "serve/healthz.h"
#include "serve/listen.h"
#include "serve/metrics.h"
#include "serve/status.h"
#include "serve/status_server.h"
#include "source/source.h"
#include "source/source_kube.h"
#include "version.h"

/*
 * A change is applied at once unless the last apply was less than
 * BURST_INTERVAL_MS ago: then the source is busy (a burst), and what
 * arrives is applied together BURST_INTERVAL_MS after that apply. So a
 * change after a quiet spell waits for nothing, and any churn costs at
 * most 1000 / BURST_INTERVAL_MS applies a second.
 */
#define BURST_INTERVAL_MS 20
#define RETRY_MS 1000
/* --max-services: 2^24 Services, 2^28 backend slots (the kernel may refuse less). */
#define MAX_SERVICES_LIMIT (1u << 24)
/* --max-connections: two table entries each, preallocated (about 300 bytes a connection). */
#define MAX_CONNECTIONS_LIMIT (1u << 24)
/* Its default: so many a CPU (what a node can serve grows with them), within these bounds. */
#define CONNECTIONS_PER_CPU 16384u
#define MIN_DEFAULT_CONNECTIONS 32768u
#define MAX_DEFAULT_CONNECTIONS 262144u
/*
 * Kept beside the datapath's runtime_caps once synced: Services added later
 * get healthCheckNodePort servers, on ports that may lie below 1024.
 */
#define AGENT_RUNTIME_CAPS CAPS_SERVE
/* Answering sluicectl, per turn of the loop at most: an apply never waits longer. */
#define ANSWER_BUDGET_US 2000
/* Enough for the connections of the old datapath that are being set up or torn down. */
#define DEFAULT_HANDOVER_SECONDS 10
#define MAX_HANDOVER_SECONDS 3600
#define MMAP_THRESHOLD (256 << 10)

struct options {
	const char *source;
	const char *kubeconfig;
	const char *health_addr;
	const char *metrics_addr, *healthz_addr; /* "" : off */
	bool metrics_addr_set, healthz_addr_set; /* given: failing to listen stops the agent */
	bool metrics_all_services;
	const char *status_dir; /* --status-dir; "" : no status.json, no agent.sock */
	size_t max_file_bytes; /* --max-file-bytes, 0: the source's default */
	struct kube_source_options kube; /* --max-event-bytes, --max-list-bytes */
	const char *node_name;
	const char *datapath; /* "auto" or a datapath's name */
	struct datapath_config dp;
	unsigned int handover_seconds; /* --handover-seconds */
	struct node_port_spec node_ports; /* --nodeport-addresses */
	bool dsr; /* --forwarding-mode=dsr */
	bool once, cleanup;
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: sluice-agent --source=dir:PATH|kube [options]\n"
		"       sluice-agent --cleanup [--bpffs=PATH] [--cgroup=PATH]\n"
		"\n"
		"  --source=dir:PATH     manifest directory (watched) or kube (API server)\n"
		"  --kubeconfig=PATH     kubeconfig for --source=kube\n"
		"  --kube-insecure-skip-tls-verify\n"
		"                        obey insecure-skip-tls-verify: true in the kubeconfig\n"
		"                        (the API server's certificate is not verified)\n"
		"  --node-name=NAME      this node (default $NODE_NAME, then the host name)\n"
		"  --datapath=MODE       auto (default), %s\n"
		"  --cgroup=PATH         cgroup v2 directory for the socket hooks\n"
		"                        (default: the cgroup2 mount root)\n"
		"  --bpffs=PATH          pin directory (default /sys/fs/bpf/sluice)\n"
		"  --devices=LIST        devices for the tc path\n"
		"  --max-services=N      Services the BPF maps hold (default 131072); more\n"
		"                        are logged and not programmed until room frees up\n"
		"  --lb-algorithm=ALGO   random (default) or maglev: how new flows of Services\n"
		"                        without sluice.io/lb-algorithm pick a backend\n"
		"  --maglev-table-size=N entries of each Maglev table, a prime (default 16381)\n"
		"  --nodeport-addresses=CIDR,...|primary\n"
		"                        node addresses NodePorts answer on (default primary:\n"
		"                        the Node's InternalIP, else ExternalIP, per family)\n"
		"  --forwarding-mode=snat|dsr\n"
		"                        external traffic to a backend on another node: through\n"
		"                        this node (snat, default) or direct server return, for\n"
		"                        Services without sluice.io/forwarding-mode\n"
		"  --xdp=native|generic|off\n"
		"                        also run the external-frontend path as XDP on the\n"
		"                        --devices (default off; native falls back to generic\n"
		"                        where the driver has no XDP); tc stays beside it\n"
		"  --health-addr=H:P     serve /healthz and /readyz (e.g. 0.0.0.0:10256)\n"
		"  --healthz-addr=H:P    kube-proxy's /healthz and /livez (default 0.0.0.0:10256;\n"
		"                        \"\": off)\n"
		"  --metrics-addr=H:P    Prometheus /metrics (default 127.0.0.1:10249; \"\": off)\n"
		"  --metrics-all-services  flow counters of every Service, not only rate-limited\n"
		"  --log-format=FORMAT   text (default) or json: one object per line\n"
		"  --status-dir=PATH     status.json and agent.sock for sluicectl (default\n"
		"                        $SLUICE_STATUS_DIR, else " STATUS_DEFAULT_DIR
		"; empty: none)\n"
		"  --max-connections=N   connections the tc path tracks (default 16384 a CPU,\n"
		"                        32768 to 262144)\n"
		"  --removed-backend-tcp=keep|terminate\n"
		"                        TCP connections to a backend that left: left alone\n"
		"                        (default, as kube-proxy) or ended\n"
		"  --handover-seconds=N  switching datapaths: the one in place keeps translating\n"
		"                        the flows it began for N s (default 10; 0: none)\n"
		"  --max-file-bytes=N    larger manifest files are not read (default 256M)\n"
		"  --max-event-bytes=N   longer API watch lines restart the watch (default 16M)\n"
		"  --max-list-bytes=N    larger API list pages fail the list (default 256M)\n"
		"  --once                apply once, leave the datapath in place, exit\n"
		"  --cleanup             remove every trace of every datapath and exit\n"
		"  -v, --verbose         debug logging\n"
		"  --version             print the version and exit\n",
		datapath_choices());
}

/* The cgroup v2 mount point, from /proc/self/mountinfo. */
static char *cgroup2_root(void)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[4096], mnt[PATH_MAX], fstype[64];
	char *found = NULL;

	if (!f)
		return NULL;
	while (!found && fgets(line, sizeof(line), f)) {
		const char *sep = strstr(line, " - ");

		if (!sep || sscanf(line, "%*s %*s %*s %*s %4095s", mnt) != 1 ||
		    sscanf(sep + 3, "%63s", fstype) != 1)
			continue;
		if (!strcmp(fstype, "cgroup2"))
			found = xstrdup(mnt);
	}
	fclose(f);
	return found;
}

/* The default --max-connections: about 10 MB on 2 CPUs, 40 MB on 8, 80 MB from 16. */
static uint32_t default_max_connections(void)
{
	long cpus = sysconf(_SC_NPROCESSORS_CONF);
	uint64_t n = (uint64_t)CONNECTIONS_PER_CPU * (cpus > 0 ? (uint64_t)cpus : 1);

	if (n < MIN_DEFAULT_CONNECTIONS)
		return MIN_DEFAULT_CONNECTIONS;
	return n > MAX_DEFAULT_CONNECTIONS ? MAX_DEFAULT_CONNECTIONS : (uint32_t)n;
}

static int parse_options(int argc, char **argv, struct options *opt)
{
	static const struct option longopts[] = {
		{ "source", required_argument, NULL, 's' },
		{ "kubeconfig", required_argument, NULL, 'k' },
		{ "kube-insecure-skip-tls-verify", no_argument, NULL, 'I' },
		{ "node-name", required_argument, NULL, 'n' },
		{ "datapath", required_argument, NULL, 'd' },
		{ "cgroup", required_argument, NULL, 'c' },
		{ "bpffs", required_argument, NULL, 'b' },
		{ "devices", required_argument, NULL, 'D' },
		{ "max-services", required_argument, NULL, 'M' },
		{ "lb-algorithm", required_argument, NULL, 'g' },
		{ "maglev-table-size", required_argument, NULL, 'G' },
		{ "nodeport-addresses", required_argument, NULL, 'N' },
		{ "forwarding-mode", required_argument, NULL, 'W' },
		{ "xdp", required_argument, NULL, 'x' },
		{ "health-addr", required_argument, NULL, 'H' },
		{ "healthz-addr", required_argument, NULL, 'Z' },
		{ "metrics-addr", required_argument, NULL, 'm' },
		{ "metrics-all-services", no_argument, NULL, 'A' },
		{ "log-format", required_argument, NULL, 'l' },
		{ "status-dir", required_argument, NULL, 'S' },
		{ "version", no_argument, NULL, 'V' },
		{ "handover-seconds", required_argument, NULL, 'O' },
		{ "removed-backend-tcp", required_argument, NULL, 'T' },
		{ "max-connections", required_argument, NULL, 'X' },
		{ "max-file-bytes", required_argument, NULL, 'F' },
		{ "max-event-bytes", required_argument, NULL, 'E' },
		{ "max-list-bytes", required_argument, NULL, 'L' },
		{ "once", no_argument, NULL, 'o' },
		{ "cleanup", no_argument, NULL, 'C' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	static char hostname[256];
	char why[160];
	int c;

	memset(opt, 0, sizeof(*opt));
	opt->dp.bpffs = "/sys/fs/bpf/sluice";
	opt->datapath = "auto";
	opt->handover_seconds = DEFAULT_HANDOVER_SECONDS;
	opt->metrics_addr = "127.0.0.1:10249"; /* kube-proxy's defaults */
	opt->healthz_addr = "0.0.0.0:10256";
	/* kube-proxy's nftables mode's default, the mode Sluice stands in for. */
	opt->node_ports.primary = true;
	while ((c = getopt_long(argc, argv, "vh", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			opt->source = optarg;
			break;
		case 'k':
			opt->kubeconfig = optarg;
			break;
		case 'I':
			opt->kube.insecure_skip_tls_verify = true;
			break;
		case 'n':
			opt->node_name = optarg;
			break;
		case 'd':
			if (strcmp(optarg, "auto") && !datapath_find(optarg)) {
				pr_warn("--datapath: unknown value \"%s\" (auto, %s)", optarg,
					datapath_choices());
				return -EINVAL;
			}
			opt->datapath = optarg;
			break;
		case 'c':
			opt->dp.cgroup = optarg;
			break;
		case 'b':
			opt->dp.bpffs = optarg;
			break;
		case 'D':
			opt->dp.devices = optarg;
			break;
		case 'M': {
			char *end;
			unsigned long n;

			errno = 0;
			n = strtoul(optarg, &end, 10);
			if (errno || end == optarg || *end || optarg[0] == '-' || n < 1 ||
			    n > MAX_SERVICES_LIMIT) {
				pr_warn("--max-services: \"%s\" is not a number from 1 to %u",
					optarg, MAX_SERVICES_LIMIT);
				return -EINVAL;
			}
			opt->dp.max_services = (uint32_t)n;
			break;
		}
		case 'g': {
			enum lb_algorithm algo;

			if (lb_algorithm_parse(optarg, &algo)) {
				pr_warn("--lb-algorithm: unknown value \"%s\" (random, maglev)",
					optarg);
				return -EINVAL;
			}
			lb_algorithm_set_default(algo);
			break;
		}
		case 'G':
			if (maglev_table_size_parse(optarg, &opt->dp.maglev_table_size, why,
						    sizeof(why))) {
				pr_warn("--maglev-table-size: %s", why);
				return -EINVAL;
			}
			break;
		case 'N':
			node_port_spec_clear(&opt->node_ports);
			if (node_port_spec_parse(optarg, &opt->node_ports, why, sizeof(why))) {
				pr_warn("--nodeport-addresses: %s", why);
				return -EINVAL;
			}
			break;
		case 'W':
			if (strcmp(optarg, "snat") && strcmp(optarg, "dsr")) {
				pr_warn("--forwarding-mode: \"%s\" is not snat or dsr", optarg);
				return -EINVAL;
			}
			opt->dsr = !strcmp(optarg, "dsr");
			break;
		case 'x':
			if (!strcmp(optarg, "native")) {
				opt->dp.xdp = DATAPATH_XDP_NATIVE;
			} else if (!strcmp(optarg, "generic")) {
				opt->dp.xdp = DATAPATH_XDP_GENERIC;
			} else if (!strcmp(optarg, "off")) {
				opt->dp.xdp = DATAPATH_XDP_OFF;
			} else {
				pr_warn("--xdp: \"%s\" is not native, generic or off", optarg);
				return -EINVAL;
			}
			break;
		case 'H':
			opt->health_addr = optarg;
			break;
		case 'X': {
			char *end;
			unsigned long n;

			errno = 0;
			n = strtoul(optarg, &end, 10);
			if (errno || end == optarg || *end || optarg[0] == '-' || n < 1024 ||
			    n > MAX_CONNECTIONS_LIMIT) {
				pr_warn("--max-connections: \"%s\" is not a number from 1024 to %u",
					optarg, MAX_CONNECTIONS_LIMIT);
				return -EINVAL;
			}
			opt->dp.max_connections = (uint32_t)n;
			break;
		}
		case 'T':
			if (!strcmp(optarg, "terminate")) {
				opt->dp.terminate_tcp = true;
			} else if (strcmp(optarg, "keep")) {
				pr_warn("--removed-backend-tcp: \"%s\" is not keep or terminate",
					optarg);
				return -EINVAL;
			}
			break;
		case 'Z':
		case 'm': {
			struct sockaddr_storage ss;
			const char *flag = c == 'Z' ? "--healthz-addr" : "--metrics-addr";

			if (*optarg && listen_addr_parse(optarg, &ss)) {
				pr_warn("%s: \"%s\" is not HOST:PORT (an IP address and a port)",
					flag, optarg);
				return -EINVAL;
			}
			if (c == 'Z') {
				opt->healthz_addr = optarg;
				opt->healthz_addr_set = true;
			} else {
				opt->metrics_addr = optarg;
				opt->metrics_addr_set = true;
			}
			break;
		}
		case 'A':
			opt->metrics_all_services = true;
			opt->dp.count_all_services = true;
			break;
		case 'l': {
			enum log_format format;

			if (log_parse_format(optarg, &format)) {
				pr_warn("--log-format: \"%s\" is not text or json", optarg);
				return -EINVAL;
			}
			log_set_format(format);
			break;
		}
		case 'S':
			opt->status_dir = optarg;
			break;
		case 'V':
			printf("sluice-agent %s\n", SLUICE_VERSION);
			exit(0);
		case 'O': {
			char *end;
			unsigned long n;

			errno = 0;
			n = strtoul(optarg, &end, 10);
			if (errno || end == optarg || *end || optarg[0] == '-' ||
			    n > MAX_HANDOVER_SECONDS) {
				pr_warn("--handover-seconds: \"%s\" is not a number from 0 to %u",
					optarg, MAX_HANDOVER_SECONDS);
				return -EINVAL;
			}
			opt->handover_seconds = (unsigned int)n;
			break;
		}
		case 'F':
			if (parse_byte_size(optarg, &opt->max_file_bytes) || !opt->max_file_bytes) {
				pr_warn("--max-file-bytes: \"%s\" is no size (bytes, or with K, M or G)",
					optarg);
				return -EINVAL;
			}
			break;
		case 'E':
		case 'L': {
			size_t *limit = c == 'E' ? &opt->kube.max_event_bytes :
						   &opt->kube.max_list_bytes;

			if (parse_byte_size(optarg, limit) || !*limit) {
				pr_warn("--max-%s-bytes: \"%s\" is no size (bytes, or with K, M or G)",
					c == 'E' ? "event" : "list", optarg);
				return -EINVAL;
			}
			break;
		}
		case 'o':
			opt->once = true;
			break;
		case 'C':
			opt->cleanup = true;
			break;
		case 'v':
			log_set_level(LOG_DEBUG);
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		pr_warn("unexpected argument \"%s\"", argv[optind]);
		return -EINVAL;
	}
	if (!opt->cleanup && opt->dp.xdp != DATAPATH_XDP_OFF &&
	    (!opt->dp.devices || !*opt->dp.devices)) {
		pr_warn("--xdp needs --devices: XDP runs on the devices of the tc path");
		return -EINVAL;
	}
	if (!opt->node_name)
		opt->node_name = getenv("NODE_NAME");
	if (!opt->node_name || !*opt->node_name) {
		gethostname(hostname, sizeof(hostname) - 1);
		opt->node_name = hostname;
	}
	if (!opt->dp.cgroup)
		opt->dp.cgroup = cgroup2_root();
	if (!opt->dp.max_connections)
		opt->dp.max_connections = default_max_connections();
	opt->dp.node_name = opt->node_name;
	opt->status_dir = status_dir_default(opt->status_dir);
	if (!opt->cleanup && !opt->source) {
		pr_warn("--source is required (dir:PATH or kube)");
		return -EINVAL;
	}
	return 0;
}

/*
 * From here on the loop takes signals from a signalfd. Until then (the
 * initial sync may wait for the API server) they keep their default action,
 * so the agent can still be stopped; helper threads block them themselves.
 */
static int signal_fd(void)
{
	sigset_t mask;

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	return signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static double wall_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* What status.json says; pub NULL: --status-dir= (none). */
struct publish {
	struct status_publisher *pub;
	struct status_server *server; /* agent.sock; NULL under --once */
	struct agent_status st;
	struct source *src;
	const struct engine *eng;
	const struct datapath_handle *dp;
	const struct options *opt;
};

static void publish_agent(struct publish *pb)
{
	const struct datapath_handle *dp = pb->dp;
	uint64_t unprogrammed = 0;

	if (!pb->pub)
		return;
	pb->st.services = engine_services(pb->eng);
	pb->st.frontends = pb->eng->n_frontends;
	pb->st.backends = pb->eng->n_backends;
	pb->st.rejected = pb->src->ops->rejected(pb->src);
	if (dp->ops->services_not_programmed &&
	    !dp->ops->services_not_programmed(&pb->opt->dp, &unprogrammed))
		pb->st.not_programmed = unprogrammed;
	status_write_agent(pb->pub, &pb->st);
}

/* After every flush: the time, the outcome, the counts. */
static void publish_flush(struct publish *pb, int err, bool full)
{
	double now = wall_now();

	pb->st.last_attempt = now;
	pb->st.last_error = err;
	if (err) {
		pb->st.failed_syncs++;
	} else {
		pb->st.syncs++;
		pb->st.synced = true;
		pb->st.last_sync = now;
		if (full)
			pb->st.last_full_sync = now;
	}
	publish_agent(pb);
}

/* What the health and metrics servers are told about the agent's work. */
struct observers {
	struct metrics *metrics;
	struct healthz_server *healthz;
	struct store *store;
	const char *node_name;
};

static void observe_programming(double trigger_time, void *arg)
{
	struct observers *obs = arg;

	metrics_observe_programming(obs->metrics, wall_now() - trigger_time);
}

/* A change is waiting; and this Node's eligibility for /healthz as it is now. */
static void observe_queued(struct observers *obs)
{
	const struct node *node = store_get_node(obs->store, obs->node_name);

	healthz_queued(obs->healthz, wall_now());
	metrics_queued(obs->metrics, wall_now());
	healthz_set_node_eligible(obs->healthz, !node || (!node->deleting && !node->to_be_deleted));
}

/* engine_flush, timed and reported to the observers. */
static int flush_observed(struct engine *eng, struct observers *obs)
{
	bool full = !eng->synced;
	struct timespec a, b;
	int err;

	clock_gettime(CLOCK_MONOTONIC, &a);
	err = engine_flush(eng);
	clock_gettime(CLOCK_MONOTONIC, &b);
	if (err)
		return err;
	metrics_observe_sync(obs->metrics, full,
			     (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9, wall_now());
	store_applied(obs->store, observe_programming, obs);
	healthz_updated(obs->healthz, wall_now());
	return 0;
}

static int run(struct source *src, struct engine *eng, struct health_server *health,
	       struct datapath_handover *ho, const struct datapath_handle *dp,
	       const struct options *opt, struct observers *obs, struct publish *pb)
{
	int sfd = signal_fd();
	/* poll() skips the fds < 0: no metrics, no agent.sock. */
	struct pollfd fds[4] = {
		{ .fd = sfd, .events = POLLIN },
		{ .fd = src->ops->fd(src), .events = POLLIN },
		{ .fd = metrics_fd(obs->metrics), .events = POLLIN },
		{ .fd = status_server_fd(pb->server), .events = POLLIN },
	};
	/* last_flush: when the last apply ended (in the past: the first change applies at once). */
	long long next_flush = 0, retry_at = 0, last_flush = now_ms() - BURST_INTERVAL_MS;
	bool was_pending = false;

	if (sfd < 0)
		return -errno;
	for (;;) {
		int ho_timeout = datapath_handover_timeout(ho, now_ms());
		int m_timeout = metrics_timeout_ms(obs->metrics);
		int a_timeout = status_server_timeout_ms(pb->server);
		int err, timeout = -1;
		long long now;

		if (engine_pending(eng)) {
			long long left = next_flush - now_ms();

			timeout = left < 0 ? 0 : (int)left;
		}
		if (ho_timeout >= 0 && (timeout < 0 || ho_timeout < timeout))
			timeout = ho_timeout;
		if (m_timeout >= 0 && (timeout < 0 || m_timeout < timeout))
			timeout = m_timeout;
		/* 0 while an answer is being computed: look at events, then go on with it. */
		if (a_timeout >= 0 && (timeout < 0 || a_timeout < timeout))
			timeout = a_timeout;
		if (poll(fds, 4, timeout) < 0 && errno != EINTR)
			return -errno;
		/* Scrapes are served between applies, by this thread (metrics.h). */
		if (fds[2].fd >= 0)
			metrics_run(obs->metrics);
		/* sluicectl too, within a budget, from the store as it is (status_server.h). */
		status_server_run(pb->server, ANSWER_BUDGET_US);
		if (fds[0].revents & POLLIN) {
			struct signalfd_siginfo si;

			if (read(sfd, &si, sizeof(si)) == sizeof(si)) {
				pr_info("signal %u: stopping; the datapath keeps serving",
					si.ssi_signo);
				close(sfd);
				return 0;
			}
		}
		now = now_ms();
		if (datapath_handover_timeout(ho, now) == 0) {
			datapath_handover_end(ho, dp->ops, &opt->dp);
			caps_keep(dp->ops->runtime_caps | AGENT_RUNTIME_CAPS, dp->output_name);
		}
		if (fds[1].revents & POLLIN) {
			size_t rejected = src->ops->rejected(src);

			src->ops->handle_events(src);
			if (src->ops->rejected(src) != rejected)
				publish_agent(pb);
			if (engine_pending(eng))
				observe_queued(obs);
			/* The first change since the last apply sets when it is applied. */
			if (engine_pending(eng) && !was_pending) {
				now = now_ms();
				next_flush = last_flush + BURST_INTERVAL_MS;
				if (next_flush < now)
					next_flush = now;
				/* After a failed apply, new events do not bring the retry forward. */
				if (next_flush < retry_at)
					next_flush = retry_at;
				pr_debug("change queued: %s", next_flush > now ?
								      "coalescing (burst)" :
								      "applying at once (quiet)");
			}
			was_pending = engine_pending(eng);
		}
		if (!engine_pending(eng) || now < next_flush)
			continue;
		err = flush_observed(eng, obs);
		health_set_ready(health, !err);
		publish_flush(pb, err, false);
		last_flush = now_ms();
		was_pending = false;
		if (err) {
			/* The datapath keeps its last good state; try again later. */
			retry_at = now + RETRY_MS;
			next_flush = retry_at;
			was_pending = true;
		} else {
			retry_at = 0;
		}
	}
}

int main(int argc, char **argv)
{
	struct datapath_handle dp = { 0 };
	struct datapath_handover handover = { 0 };
	struct hc_servers health_checks;
	struct source *src;
	struct options opt;
	struct engine eng;
	struct health_server *health = NULL;
	struct healthz_server *healthz = NULL;
	struct metrics *metrics = NULL;
	struct observers obs = { 0 };
	struct publish pb = { 0 };
	struct store store;
	int err;

	/*
	 * Arrays as large as 100k Services (a file's fingerprints, a full
	 * diff) are mapped and given back when freed; glibc's default
	 * threshold grows with them and leaves them to fragment the heap.
	 */
	mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD);
	log_route_libbpf();
	if (parse_options(argc, argv, &opt))
		return 2;
	if (opt.cleanup) {
		err = datapath_cleanup_others(NULL, &opt.dp);
		if (*opt.status_dir && status_remove(opt.status_dir))
			pr_warn("status: cannot remove %s: %s", opt.status_dir, strerror(errno));
		return err ? 1 : 0;
	}
	if (strncmp(opt.source, "dir:", 4) && strcmp(opt.source, "kube")) {
		pr_warn("--source: unknown source \"%s\" (dir:PATH or kube)", opt.source);
		return 2;
	}

	if (opt.health_addr && !(health = health_start(opt.health_addr)))
		return 1;
	/*
	 * After --health-addr, which may hold the same port (its /healthz is
	 * then the one answering there): the default address not free is one
	 * line and no reason to stop; an address asked for is.
	 */
	if (!opt.once && *opt.healthz_addr && !(healthz = healthz_start(opt.healthz_addr)) &&
	    opt.healthz_addr_set) {
		health_stop(health);
		return 1;
	}
	store_init(&store);
	if (!strcmp(opt.source, "kube")) {
		opt.kube.kubeconfig = opt.kubeconfig;
		opt.kube.node_name = opt.node_name;
		err = kube_source_new(&opt.kube, &store, &src);
	} else
		err = dir_source_new(opt.source + 4, opt.max_file_bytes, &store, &src);
	if (err) {
		health_stop(health);
		healthz_stop(healthz);
		store_destroy(&store);
		return 1;
	}
	err = datapath_open_choice(opt.datapath, &opt.dp, &dp);
	if (err)
		goto out_source;
	pr_info("node %s, datapath %s, source %s", opt.node_name, dp.ops->name, opt.source);
	if (opt.dp.xdp != DATAPATH_XDP_OFF && strcmp(dp.ops->name, "bpf"))
		pr_warn("--xdp: the %s datapath has no XDP program: ignored", dp.ops->name);
	obs.healthz = healthz;
	obs.store = &store;
	obs.node_name = opt.node_name;
	/* Queued since start: /healthz turns 503 if the first sync takes too long. */
	observe_queued(&obs);

	/* The datapath first: it is the output that may fail and be retried. */
	hc_servers_init(&health_checks);
	engine_init(&eng, &store, opt.node_name);
	engine_set_node_ports(&eng, &opt.node_ports);
	engine_set_dsr_default(&eng, opt.dsr);
	engine_add_output(&eng, dp.output_name, &datapath_output_ops, &dp);
	engine_add_output(&eng, "healthCheckNodePort servers", &hc_output_ops, &health_checks);
	if (!opt.once && *opt.metrics_addr) {
		metrics = metrics_new(&(struct metrics_sources){
			.dp_ops = dp.ops,
			.dp_cfg = &opt.dp,
			.fallback_why = dp.fallback,
			.store = &store,
			.source = src,
			.healthz = healthz,
			.engine = &eng,
			.all_services = opt.metrics_all_services,
		});
		if (metrics_listen(metrics, opt.metrics_addr) && opt.metrics_addr_set) {
			err = -EADDRINUSE;
			goto out_engine;
		}
		obs.metrics = metrics;
	}
	pb = (struct publish){
		.src = src,
		.eng = &eng,
		.dp = &dp,
		.opt = &opt,
		.st = {
			.version = SLUICE_VERSION,
			.node = opt.node_name,
			.source = opt.source,
			.datapath = dp.ops->name,
			.requested = opt.datapath,
			.fallback = dp.fallback,
			.bpffs = opt.dp.bpffs,
			.cgroup = opt.dp.cgroup,
			.started = wall_now(),
		},
	};
	/* The status is for people: without it the agent still serves. */
	if (*opt.status_dir && !status_open(opt.status_dir, &eng, &pb.pub) && !opt.once) {
		char path[4096];

		snprintf(path, sizeof(path), "%s/%s", opt.status_dir, STATUS_SOCKET);
		pb.server = status_server_open(path, &store, &eng);
		pb.st.serving = pb.server;
	}
	err = flush_observed(&eng, &obs);
	publish_flush(&pb, err, true);
	if (err)
		goto out_engine;
	/* Switching datapaths: the other's state drains or goes once this one serves. */
	datapath_handover_begin(&handover, dp.ops, &opt.dp, opt.once ? 0 : opt.handover_seconds,
				now_ms());
	pr_info("synced: datapath %s serving %zu services", dp.ops->name, engine_services(&eng));
	health_set_ready(health, true);
	/* What needed privilege is open or done: keep only what applying needs. */
	caps_keep(dp.ops->runtime_caps | AGENT_RUNTIME_CAPS |
			  (handover.old ? handover.old->runtime_caps : 0),
		  dp.output_name);
	if (opt.once) {
		uint64_t unprogrammed = 0;

		if (src->ops->rejected(src)) {
			pr_warn("%zu inputs were rejected; see the lines above",
				src->ops->rejected(src));
			err = -EINVAL;
		}
		if (dp.ops->services_not_programmed &&
		    !dp.ops->services_not_programmed(&opt.dp, &unprogrammed) && unprogrammed) {
			pr_warn("%llu Services not programmed (--max-services); see the lines above",
				(unsigned long long)unprogrammed);
			err = -ENOSPC;
		}
		goto out_engine;
	}
	err = run(src, &eng, health, &handover, &dp, &opt, &obs, &pb);
out_engine:
	status_server_close(pb.server);
	if (pb.server) {
		/* Stopped: sluicectl status says so without asking a socket that is gone. */
		pb.st.serving = false;
		publish_agent(&pb);
	}
	status_close(pb.pub);
	metrics_free(metrics);
	engine_destroy(&eng);
	hc_servers_destroy(&health_checks);
	datapath_close(&dp);
out_source:
	src->ops->close(src);
	store_destroy(&store);
	health_stop(health);
	healthz_stop(healthz);
	node_port_spec_clear(&opt.node_ports);
	return err ? 1 : 0;
}
