// SPDX-License-Identifier: Apache-2.0
/*
 * The BPF datapath: socket-level programs (bpf/sock.bpf.c) attached to a
 * cgroup v2 through pinned links and fed from pinned maps, so that the
 * kernel keeps serving across agent restarts and a new agent adopts it.
 * The tc programs for traffic from outside (datapath_bpf_tc.c) share
 * these maps.
 *
 * This file: the bpf_datapath_ops table, and the pin directory as a whole
 * (cleanup removes it, present says whether anything is in it). Open and
 * close are in bpf_open.c, apply in bpf_apply.c, read_stats in bpf_stats.c.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "datapath/datapath.h"
#include "datapath/bpf/bpf_datapath.h"
#include "datapath/bpf/bpf_features.h"
#include "datapath/bpf/bpf_show.h"
#include "datapath/bpf/datapath_bpf_tc.h"
#include "datapath/bpf/datapath_bpf_xdp.h"
#include "lib/caps.h"
#include "lib/log.h"
#include "shared.h"

/* How long the reverse translation outlives the forward one when replaced. */
#define REVERSE_GRACE_MS 500

/*
 * The links that translate new connections and datagrams; the others
 * (recvmsg, getpeername) answer for sockets translated already.
 */
static bool translates(const char *pin)
{
	return !strncmp(pin, "sl_connect", 10) || !strncmp(pin, "sl_sendmsg", 10);
}

enum unpin_which { UNPIN_ALL, UNPIN_TRANSLATING };

/* Unlinks the pins in dir (which); returns the count removed, or -errno. */
static int unpin_all(const char *dir, enum unpin_which which, int *first_err)
{
	char path[PATH_MAX];
	struct dirent *ent;
	int removed = 0;
	DIR *d;

	d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((ent = readdir(d))) {
		if (!strcmp(ent->d_name, ".") || !strcmp(ent->d_name, ".."))
			continue;
		if (which == UNPIN_TRANSLATING && !translates(ent->d_name))
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", dir, ent->d_name) >= (int)sizeof(path))
			continue;
		if (unlink(path)) {
			pr_warn("bpf: cannot remove pin %s: %s", path, strerror(errno));
			if (!*first_err)
				*first_err = -errno;
			continue;
		}
		removed++;
	}
	closedir(d);
	return removed;
}

static int bpf_cleanup(const struct datapath_config *cfg, bool replaced)
{
	const char *dir = bpffs_dir(cfg);
	char links[PATH_MAX], maps[PATH_MAX];
	int first_err = 0, n_links = 0, n_maps, err;

	if (join(links, dir, SL_PIN_LINKS_DIR, NULL) || join(maps, dir, SL_PIN_MAPS_DIR, NULL))
		return -ENAMETOOLONG;
	/* XDP first (what it passes up, tc translates), then the tc filters, found on the devices. */
	n_links = xdp_datapath_cleanup(links);
	if (n_links < 0)
		first_err = n_links;
	n_links = 0;
	err = tc_datapath_cleanup(maps);
	if (err && !first_err)
		first_err = err;
	/*
	 * Links next: unpinning them detaches the programs before the maps go.
	 * Replaced, connect and sendmsg go first: a socket they translated a
	 * moment ago still has getpeername and the replies of its datagrams
	 * translated back (REVERSE_GRACE_MS) while the new datapath takes the
	 * new ones.
	 */
	if (replaced) {
		n_links = unpin_all(links, UNPIN_TRANSLATING, &first_err);
		if (n_links > 0)
			poll(NULL, 0, REVERSE_GRACE_MS);
	}
	if (n_links >= 0) {
		int rest = unpin_all(links, UNPIN_ALL, &first_err);

		n_links = rest < 0 ? rest : n_links + rest;
	}
	n_maps = unpin_all(maps, UNPIN_ALL, &first_err);
	if (n_links < 0 || n_maps < 0) {
		pr_warn("bpf: cannot read pins under %s: %s", dir,
			strerror(-(n_links < 0 ? n_links : n_maps)));
		return n_links < 0 ? n_links : n_maps;
	}
	if (rmdir(links) && errno != ENOENT && !first_err)
		first_err = -errno;
	if (rmdir(maps) && errno != ENOENT && !first_err)
		first_err = -errno;
	/* EBUSY: dir is itself a bpffs mount point, which is not ours to remove. */
	if (rmdir(dir) && errno != ENOENT && errno != EBUSY && !first_err)
		first_err = -errno;
	if (first_err)
		pr_warn("bpf: cleanup of %s incomplete: %s", dir, strerror(-first_err));
	else if (n_links || n_maps)
		pr_info("bpf: removed %d links and %d maps under %s", n_links, n_maps, dir);
	return first_err;
}

static bool dir_has_entries(const char *dir)
{
	struct dirent *ent;
	bool found = false;
	DIR *d;

	d = opendir(dir);
	if (!d)
		return false;
	while (!found && (ent = readdir(d)))
		found = strcmp(ent->d_name, ".") && strcmp(ent->d_name, "..");
	closedir(d);
	return found;
}

static bool bpf_present(const struct datapath_config *cfg)
{
	const char *dir = bpffs_dir(cfg);
	char links[PATH_MAX], maps[PATH_MAX];

	if (join(links, dir, SL_PIN_LINKS_DIR, NULL) || join(maps, dir, SL_PIN_MAPS_DIR, NULL))
		return false;
	return dir_has_entries(links) || dir_has_entries(maps) || tc_datapath_present();
}

/* The devices: tc on each, XDP and its mode where --xdp attached it. */
static int bpf_print_devices(const struct datapath_config *cfg, FILE *out)
{
	char links[PATH_MAX], maps[PATH_MAX];
	int n_tc, n_xdp;

	if (join(links, bpffs_dir(cfg), SL_PIN_LINKS_DIR, NULL) ||
	    join(maps, bpffs_dir(cfg), SL_PIN_MAPS_DIR, NULL))
		return -ENAMETOOLONG;
	n_tc = tc_datapath_print(maps, out);
	n_xdp = xdp_datapath_print(links, out);
	if (n_tc <= 0 && n_xdp <= 0)
		fprintf(out, "  none (no --devices): socket programs only\n");
	else if (n_xdp <= 0)
		fprintf(out, "  XDP: off (--xdp)\n");
	return n_tc < 0 ? n_tc : n_xdp < 0 ? n_xdp : 0;
}

const struct datapath_ops bpf_datapath_ops = {
	.name = "bpf",
	.open = bpf_open,
	.apply = bpf_apply,
	.close = bpf_close,
	.cleanup = bpf_cleanup,
	.present = bpf_present,
	.read_stats = bpf_read_stats,
	.read_flow_counters = bpf_read_flow_counters,
	.read_table_usage = bpf_read_table_usage,
	.print_frontends = bpf_print_frontends,
	.print_devices = bpf_print_devices,
	.services_not_programmed = bpf_services_not_programmed,
	.read_features = bpf_read_features,
	.inspect_hint = "bpftool map dump pinned BPFFS/maps/services",
	/*
	 * Map updates through the open fds (before 6.5 every bpf() command
	 * needs CAP_BPF where unprivileged BPF is disabled), and the tc
	 * filters for devices that the backends' routes add later.
	 */
	.runtime_caps = CAPS_BIT(CAP_BPF) | CAPS_BIT(CAP_NET_ADMIN),
};
