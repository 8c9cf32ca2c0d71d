// SPDX-License-Identifier: Apache-2.0
/*
 * The XDP half of the BPF datapath (bpf/xdp.bpf.c, --xdp=native|generic):
 * the program shares every map with the tc programs (the pins under
 * <bpffs>/maps) and is attached to each --devices device through a BPF
 * link pinned as <bpffs>/links/xdp_<device>, so that it outlives the agent
 * and cleanup (which unpins every link) detaches it. tc stays attached
 * beside it: what XDP cannot finish it passes up, and tc handles it.
 *
 * A restart re-attaches: the old link is unpinned (detached) and a new one
 * made, in the mode asked for now; in between tc serves every packet.
 */
#include <errno.h>
#include <limits.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <dirent.h>
#include <linux/if_link.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "datapath/bpf/bpf_datapath.h"
#include "datapath/bpf/datapath_bpf_xdp.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "shared.h"
#include "xdp.skel.h"

struct xdp_datapath {
	struct xdp_bpf *skel;
	int *link_fds;
	size_t n_links;
};

static int link_pin_path(char *out, const char *bpffs, const char *dev)
{
	char name[IF_NAMESIZE + sizeof(SL_XDP_LINK_PREFIX)];

	snprintf(name, sizeof(name), SL_XDP_LINK_PREFIX "%s", dev);
	return join(out, bpffs, SL_PIN_LINKS_DIR, name);
}

/* A link in one mode (XDP_FLAGS_DRV_MODE or XDP_FLAGS_SKB_MODE); fd or -errno. */
static int link_in_mode(int prog_fd, int ifindex, __u32 flags)
{
	LIBBPF_OPTS(bpf_link_create_opts, opts, .flags = flags);
	libbpf_print_fn_t quiet;
	int fd;

	quiet = libbpf_set_print(NULL);
	fd = bpf_link_create(prog_fd, ifindex, BPF_XDP, &opts);
	libbpf_set_print(quiet);
	return fd < 0 ? -errno : fd;
}

/*
 * Attaches to one device; native falls back to generic (one log line)
 * where the driver has no XDP of its own. Returns the link's fd or -errno.
 */
static int attach_device(struct xdp_datapath *xdp, const char *bpffs, const char *dev,
			 enum datapath_xdp_mode mode)
{
	int prog_fd = bpf_program__fd(xdp->skel->progs.sl_xdp_ingress);
	char path[PATH_MAX];
	int ifindex, fd;

	ifindex = if_nametoindex(dev);
	if (!ifindex) {
		pr_warn("bpf: --xdp: no device %s in this network namespace; skipped", dev);
		return -ENODEV;
	}
	if (link_pin_path(path, bpffs, dev))
		return -ENAMETOOLONG;
	/* An earlier agent's link: detached by its unpinning, tc serves meanwhile. */
	if (unlink(path) && errno != ENOENT)
		pr_warn("bpf: cannot remove the pinned XDP link %s: %s", path, strerror(errno));
	if (mode == DATAPATH_XDP_NATIVE) {
		fd = link_in_mode(prog_fd, ifindex, XDP_FLAGS_DRV_MODE);
		if (fd >= 0) {
			pr_info("bpf: xdp program on %s (native)", dev);
			goto pin;
		}
		pr_warn("bpf: --xdp=native: %s cannot run XDP in its driver (%s); generic XDP "
			"instead",
			dev, strerror(-fd));
	}
	fd = link_in_mode(prog_fd, ifindex, XDP_FLAGS_SKB_MODE);
	if (fd < 0) {
		pr_warn("bpf: cannot attach the XDP program to %s: %s; tc serves it alone", dev,
			strerror(-fd));
		return fd;
	}
	pr_info("bpf: xdp program on %s (generic)", dev);
pin:
	if (bpf_obj_pin(fd, path)) {
		int err = -errno;

		pr_warn("bpf: cannot pin the XDP link of %s as %s: %s", dev, path, strerror(-err));
		close(fd);
		return err;
	}
	return fd;
}

int xdp_datapath_open(const char *bpffs, const struct datapath_config *cfg, __u32 max_services,
		      __u32 connections, int (*share_pins)(struct bpf_object *, const char *),
		      struct xdp_datapath **out, char *why, size_t why_len)
{
	struct xdp_datapath *xdp;
	char maps_dir[PATH_MAX], *list, *name, *save = NULL;
	int err, fd;

	*out = NULL;
	if (join(maps_dir, bpffs, SL_PIN_MAPS_DIR, NULL))
		return -ENAMETOOLONG;
	xdp = xcalloc(1, sizeof(*xdp));
	xdp->skel = xdp_bpf__open();
	if (!xdp->skel) {
		err = -errno;
		snprintf(why, why_len, "cannot open the XDP BPF object: %s", strerror(-err));
		goto fail;
	}
	/* The tc object's sizes, so that both reuse the same pins. */
	err = bpf_size_maps(xdp->skel->obj, max_services);
	if (!err)
		err = bpf_map__set_max_entries(xdp->skel->maps.conntrack, 2 * connections);
	if (!err)
		err = share_pins(xdp->skel->obj, maps_dir);
	if (err) {
		snprintf(why, why_len, "cannot set the XDP maps' pins: %s", strerror(-err));
		goto fail;
	}
	xdp->skel->rodata->sl_terminate_tcp = cfg->terminate_tcp;
	err = xdp_bpf__load(xdp->skel);
	if (err) {
		snprintf(why, why_len, "cannot load the XDP program: %s", strerror(-err));
		goto fail;
	}
	list = xstrdup(cfg->devices ? cfg->devices : "");
	for (name = strtok_r(list, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
		fd = attach_device(xdp, bpffs, name, cfg->xdp);
		if (fd < 0)
			continue;
		xdp->link_fds = xreallocarray(xdp->link_fds, xdp->n_links + 1, sizeof(int));
		xdp->link_fds[xdp->n_links++] = fd;
	}
	free(list);
	*out = xdp;
	return 0;
fail:
	xdp_bpf__destroy(xdp->skel);
	free(xdp);
	return err;
}

void xdp_datapath_close(struct xdp_datapath *xdp)
{
	size_t i;

	if (!xdp)
		return;
	/* The pins hold the links, the links the program. */
	for (i = 0; i < xdp->n_links; i++)
		close(xdp->link_fds[i]);
	free(xdp->link_fds);
	xdp_bpf__destroy(xdp->skel);
	free(xdp);
}

int xdp_datapath_cleanup(const char *links_dir)
{
	char path[PATH_MAX];
	struct dirent *ent;
	int removed = 0, err = 0;
	DIR *d;

	d = opendir(links_dir);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((ent = readdir(d))) {
		if (strncmp(ent->d_name, SL_XDP_LINK_PREFIX, strlen(SL_XDP_LINK_PREFIX)))
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", links_dir, ent->d_name) >=
		    (int)sizeof(path))
			continue;
		if (unlink(path)) {
			if (!err)
				err = -errno;
			continue;
		}
		removed++;
	}
	closedir(d);
	if (removed)
		pr_info("bpf: removed %d XDP links", removed);
	return err ? err : removed;
}

/* The mode the kernel runs ifindex's XDP program in, if it is prog_id. */
static const char *mode_of(int ifindex, __u32 prog_id)
{
	LIBBPF_OPTS(bpf_xdp_query_opts, q);

	if (bpf_xdp_query(ifindex, 0, &q))
		return "unknown (cannot query the device)";
	if (q.prog_id != prog_id && q.drv_prog_id != prog_id && q.skb_prog_id != prog_id)
		return "not attached (another program holds the device)";
	if (q.attach_mode == XDP_ATTACHED_DRV || q.drv_prog_id == prog_id)
		return "native";
	if (q.attach_mode == XDP_ATTACHED_SKB || q.skb_prog_id == prog_id)
		return "generic";
	return "offloaded";
}

int xdp_datapath_print(const char *links_dir, FILE *out)
{
	struct bpf_link_info info;
	char path[PATH_MAX], name[IF_NAMESIZE];
	struct dirent *ent;
	__u32 len;
	int fd, n = 0;
	DIR *d;

	d = opendir(links_dir);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((ent = readdir(d))) {
		if (strncmp(ent->d_name, SL_XDP_LINK_PREFIX, strlen(SL_XDP_LINK_PREFIX)) ||
		    snprintf(path, sizeof(path), "%s/%s", links_dir, ent->d_name) >=
			    (int)sizeof(path))
			continue;
		fd = bpf_obj_get(path);
		if (fd < 0) {
			fprintf(out, "  %s: XDP link unreadable (%s)\n",
				ent->d_name + strlen(SL_XDP_LINK_PREFIX), strerror(errno));
			continue;
		}
		memset(&info, 0, sizeof(info));
		len = sizeof(info);
		if (bpf_obj_get_info_by_fd(fd, &info, &len) || !info.xdp.ifindex ||
		    !if_indextoname(info.xdp.ifindex, name)) {
			fprintf(out, "  %s: XDP link detached (the device went)\n",
				ent->d_name + strlen(SL_XDP_LINK_PREFIX));
		} else {
			fprintf(out, "  %s: XDP %s (link id %u, program id %u), tc beside it\n",
				name, mode_of(info.xdp.ifindex, info.prog_id), info.id,
				info.prog_id);
		}
		close(fd);
		n++;
	}
	closedir(d);
	return n;
}
