// SPDX-License-Identifier: Apache-2.0
/*
 * The nftables datapath: turns each state diff into one netlink batch for
 * table inet sluice (planned by nft_plan.c, sent by nft_socket.c) and
 * implements the datapath interface around it. Layout and reading guide:
 * Documentation/nftables-datapath.md.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/netfilter/nf_tables.h>

#include "core/maglev.h"
#include "datapath/datapath.h"
#include "lib/caps.h"
#include "lib/log.h"
#include "lib/strmap.h"
#include "lib/xalloc.h"
#include "datapath/nft/nft_batch.h"
#include "datapath/nft/nft_conntrack.h"
#include "datapath/nft/nft_datapath.h"
#include "datapath/nft/nft_elems.h"
#include "datapath/nft/nft_objects.h"
#include "datapath/nft/nft_plan.h"
#include "datapath/nft/nft_ranges.h"
#include "datapath/nft/nft_skeleton.h"
#include "datapath/nft/nft_socket.h"

static int nft_open(const struct datapath_config *cfg, struct datapath **out, char *why,
		    size_t why_len)
{
	struct datapath *dp = xcalloc(1, sizeof(*dp));
	int err;

	*out = NULL;
	err = nft_socket_open(dp);
	if (err) {
		snprintf(why, why_len, "cannot open a netfilter netlink socket: %s",
			 strerror(-err));
		free(dp);
		return err;
	}
	err = nft_get_table(dp, NFT_TABLE_NAME);
	if (err && err != -ENOENT) {
		snprintf(why, why_len, "nf_tables does not answer (get table inet %s): %s",
			 NFT_TABLE_NAME, strerror(-err));
		nft_socket_close(dp);
		free(dp);
		return err;
	}
	pr_info("nft: table inet %s %s; the first apply %s in one transaction", NFT_TABLE_NAME,
		err ? "absent" : "present",
		err ? "builds it" : "keeps it if it is that sync's, else rebuilds it");
	if (nft_port_shift_read(&dp->port_shift, why, why_len))
		pr_warn("nft: client ports of translated TCP connections stay as they are (%s): "
			"one that reuses a port the socket path or a direct dial used may wait "
			"for a SYN retry (PAWS)",
			why);
	else
		pr_info("nft: client ports of translated TCP connections move to %u-%u, out of "
			"the ephemeral range",
			dp->port_shift.lo, dp->port_shift.hi);
	*why = '\0';
	strmap_init(&dp->services);
	strmap_init(&dp->dsr_logged);
	nft_ranges_init(&dp->ranges);
	dp->terminate_tcp = cfg->terminate_tcp;
	dp->count_all = cfg->count_all_services;
	dp->maglev_size = cfg->maglev_table_size ? cfg->maglev_table_size :
						   MAGLEV_DEFAULT_TABLE_SIZE;
	*out = dp;
	return 0;
}

static void nft_close(struct datapath *dp)
{
	if (!dp)
		return;
	nft_socket_close(dp);
	nft_services_clear(dp);
	strmap_destroy(&dp->services);
	strmap_destroy(&dp->dsr_logged);
	nft_ranges_destroy(&dp->ranges);
	free(dp->ops);
	free(dp->touched);
	free(dp);
}

/*
 * Direct server return needs the tc path's encapsulation: here a DSR
 * Service is served as any other (SNAT through this node), said once.
 */
static void log_dsr(struct datapath *dp, const struct state_diff *diff)
{
	const struct frontend *fe;

	for (size_t i = 0; i < diff->n_changes; i++) {
		fe = diff->changes[i].new;
		if (!fe || !fe->dsr || !fe->service || strmap_get(&dp->dsr_logged, fe->service))
			continue;
		strmap_put(&dp->dsr_logged, fe->service, (void *)1);
		pr_info("Service %s: forwarding mode dsr is not supported by the nftables "
			"datapath: its external traffic is SNATed through this node",
			fe->service);
	}
}

static int nft_apply(struct datapath *dp, const struct state_diff *all)
{
	struct backend_ranges before;
	struct strmap old_counters;
	struct state_diff kept, *diff = &kept;
	char mark[NFT_SYNC_MARK_LEN] = "";
	bool adopted = false;
	struct nft_batch b;
	int err;

	/* What can never be programmed is refused here, with a log line, not by the kernel. */
	nft_plan_nameable(all, &kept);
	log_dsr(dp, all);
	memset(&before, 0, sizeof(before));
	strmap_init(&old_counters);
	if (diff->full) {
		/* Adoption: the rebuilt table's counters continue from the old table's. */
		err = nft_old_counters_read(dp, &old_counters);
		if (err && err != -ENOENT)
			pr_warn("nft: full sync: cannot read the old counters (%s); they restart "
				"at 0",
				strerror(-err));
		nft_services_clear(dp);
		/*
		 * The rebuilt table starts with empty backend maps: so do the
		 * ranges. The old ones come back if the kernel refuses the batch.
		 */
		before = dp->ranges;
		nft_ranges_init(&dp->ranges);
	}
	nft_services_plan(dp, diff);
	nft_batch_init(&b, ++dp->seq);
	b.count_all = dp->count_all;
	b.maglev_size = dp->maglev_size;
	if (diff->full)
		dp->ranges.n_shards = nft_backend_shards_for(diff->n_changes);
	b.n_shards = dp->ranges.n_shards;
	/* A full sync deletes every old map in the same batch: names may start over. */
	b.map_serial = diff->full ? 0 : dp->map_serial;
	if (diff->full)
		nft_build_full(dp, &b, diff, &old_counters);
	else
		nft_build_incremental(dp, &b, diff);
	nft_batch_flush_elems(&b);
	if (diff->full && !b.err) {
		nft_sync_mark_name(b.fp, mark, sizeof(mark));
		if (nft_get_chain(dp, NFT_TABLE_NAME, mark) == 0) {
			pr_info("nft: full sync: table %s already holds this sync (%s): nothing "
				"written",
				NFT_TABLE_NAME, mark);
			adopted = true;
		} else {
			nft_sync_mark_msg(&b, mark, NFT_MSG_NEWCHAIN);
		}
	} else if (!diff->full && b.n_msgs && dp->sync_mark[0]) {
		nft_sync_mark_msg(&b, dp->sync_mark, NFT_MSG_DELCHAIN);
	}
	err = nft_batch_finish(&b);
	if (!err)
		err = dp->ops_err;
	dp->seq = b.seq;
	if (!diff->full || b.map_serial > dp->map_serial)
		dp->map_serial = b.map_serial;
	if (err) {
		pr_warn("nft: building the batch for %zu changes failed: %s", diff->n_changes,
			strerror(-err));
		goto out;
	}
	if (!adopted)
		err = nft_send_batch(dp, &b, diff->full ? "full sync" : "update");
	if (!err && b.n_msgs) {
		if (diff->full)
			memcpy(dp->sync_mark, mark, sizeof(mark));
		else
			dp->sync_mark[0] = 0;
	}
	if (!err) {
		struct nft_ct_stale *stale;
		size_t n_stale;

		pr_debug("nft: applied %zu changes%s: %zu messages written", diff->n_changes,
			 diff->full ? " (full sync)" : "", adopted ? 0 : b.n_msgs);
		/* Datagram flows stay on a removed backend: delete their conntrack entries. */
		n_stale = nft_ct_stale_pairs(diff, dp->terminate_tcp, &stale);
		if (n_stale)
			nft_ct_flush_stale(dp, stale, n_stale);
		free(stale);
	}
out:
	nft_batch_free(&b);
	nft_services_finish(dp, !err);
	nft_ranges_finish(dp, !err);
	if (diff->full && err) {
		nft_ranges_destroy(&dp->ranges);
		dp->ranges = before;
	} else if (diff->full) {
		nft_ranges_destroy(&before);
	}
	nft_old_counters_free(&old_counters);
	if (kept.changes != all->changes)
		free(kept.changes);
	return err;
}

/* One transaction on a fresh socket: the table goes, and the drain table comes or goes. */
static int replace_tables(bool drain, const char *what)
{
	struct datapath dp = { 0 };
	struct nft_batch b;
	int err;

	err = nft_socket_open(&dp);
	if (err) {
		pr_warn("nft: %s: cannot open a netfilter netlink socket: %s", what,
			strerror(-err));
		return err;
	}
	nft_batch_init(&b, ++dp.seq);
	/* Adding first makes the delete succeed whether the table was there or not. */
	nft_msg_drain_table_del(&b);
	if (drain)
		nft_msg_drain_table_add(&b);
	nft_msg_table_add(&b);
	nft_msg_table_del(&b);
	err = nft_batch_finish(&b);
	if (!err)
		err = nft_send_batch(&dp, &b, what);
	nft_batch_free(&b);
	nft_socket_close(&dp);
	return err;
}

static int nft_cleanup(const struct datapath_config *cfg, bool replaced)
{
	(void)cfg;
	(void)replaced; /* one transaction: nothing to order */
	return replace_tables(false, "cleanup");
}

/*
 * Another datapath serves now: the table goes in one transaction with
 * sluice-drain coming, whose one NAT chain keeps conntrack translating the
 * connections this table DNAT'd (being set up, torn down, or long-lived)
 * until cleanup removes it.
 */
static int nft_drain(const struct datapath_config *cfg)
{
	(void)cfg;
	return replace_tables(true, "drain");
}

static bool nft_present(const struct datapath_config *cfg)
{
	struct datapath dp = { 0 };
	bool present;

	if (nft_socket_open(&dp))
		return false;
	present = nft_get_table(&dp, NFT_TABLE_NAME) == 0 ||
		  nft_get_table(&dp, NFT_DRAIN_TABLE_NAME) == 0;
	nft_socket_close(&dp);
	return present;
}

/*
 * Every Service's limit and counters, read from the objects of table
 * sluice over a fresh socket (sluicectl runs beside the agent). The
 * counters count the first packet of each flow: packets = flows.
 */
static int nft_read_stats(const struct datapath_config *cfg, struct service_stats **out, size_t *n)
{
	struct datapath dp = { 0 };
	int err;

	*out = NULL;
	*n = 0;
	err = nft_socket_open(&dp);
	if (err)
		return err;
	err = nft_stats_read(&dp, out, n);
	nft_socket_close(&dp);
	return err;
}

/*
 * The counter objects as flow outcomes, over a fresh socket: admitted and
 * rate_limited of rate-limited Services, the refusals of counted ones
 * (rate-limited, or all with --metrics-all-services); counted says which.
 */
static int nft_read_flow_counters(const struct datapath_config *cfg, struct flow_counters **out,
				  size_t *n)
{
	struct datapath dp = { 0 };
	int err;

	(void)cfg;
	*out = NULL;
	*n = 0;
	err = nft_socket_open(&dp);
	if (err)
		return err;
	err = nft_flows_read(&dp, out, n);
	nft_socket_close(&dp);
	return err;
}

/* One number from a sysctl file of this network namespace; -1 if unreadable. */
static long long read_sysctl(const char *path)
{
	FILE *f = fopen(path, "re");
	long long v = -1;

	if (f) {
		if (fscanf(f, "%lld", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

/* The connection table of this datapath is conntrack's: nf_conntrack_count of _max. */
static int nft_read_table_usage(const struct datapath_config *cfg, struct table_usage **out,
				size_t *n)
{
	long long count = read_sysctl("/proc/sys/net/netfilter/nf_conntrack_count"),
		  max = read_sysctl("/proc/sys/net/netfilter/nf_conntrack_max");

	(void)cfg;
	*out = xcalloc(1, sizeof(**out));
	*n = 0;
	if (count >= 0 && max >= 0) {
		(*out)[0] = (struct table_usage){ "conntrack", (uint64_t)count, (uint64_t)max };
		*n = 1;
	}
	return 0;
}

const struct datapath_ops nft_datapath_ops = {
	.name = "nftables",
	.open = nft_open,
	.apply = nft_apply,
	.close = nft_close,
	.cleanup = nft_cleanup,
	.drain = nft_drain,
	.present = nft_present,
	.read_stats = nft_read_stats,
	.read_flow_counters = nft_read_flow_counters,
	.read_table_usage = nft_read_table_usage,
	.inspect_hint = "nft list table inet sluice",
	/* Every nfnetlink message, and SO_SNDBUFFORCE for a large batch. */
	.runtime_caps = CAPS_BIT(CAP_NET_ADMIN),
};
