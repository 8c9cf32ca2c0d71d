// SPDX-License-Identifier: Apache-2.0
/*
 * The tc half of the BPF datapath (bpf/tc.bpf.c): load the programs over
 * the socket datapath's pinned maps, attach them as clsact filters to the
 * devices, adopt or remove them. The node-address maps they read are kept
 * current by bpf_node_addrs.c.
 *
 * Filters are netlink tc objects (libbpf 1.1 has no tcx links): they stay
 * after the agent exits. Ours are recognised by their handle and priority
 * and by the name of the program they run, so a restart replaces them in
 * place (BPF_TC_F_REPLACE) and cleanup removes exactly them.
 */
#include <errno.h>
#include <limits.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <linux/types.h>
#include <libmnl/libmnl.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "datapath/bpf/bpf_datapath.h"
#include "datapath/bpf/datapath_bpf_tc.h"
#include "datapath/bpf/datapath_bpf_xdp.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "shared.h"
#include "tc.skel.h"

/* Our filters: this handle at this priority, running a program named sl_tc_*. */
#define SL_TC_HANDLE 0x51
#define SL_TC_PRIORITY 0x51
#define SL_TC_PROG_PREFIX "sl_tc_"

struct tc_datapath {
	struct tc_bpf *skel;
	struct xdp_datapath *xdp; /* --xdp: the XDP program on the same devices */
	int *ifindexes; /* devices attached, no duplicates */
	size_t n_ifindexes, cap_ifindexes;
};

/* ---- netlink: routes and filter dumps ---- */

struct nl_req {
	struct mnl_socket *nl;
	char buf[8192]; /* MNL_SOCKET_BUFFER_SIZE, which is not a constant expression */
	unsigned int seq, portid;
};

static int nl_open(struct nl_req *r)
{
	r->nl = mnl_socket_open(NETLINK_ROUTE);
	if (!r->nl)
		return -errno;
	if (mnl_socket_bind(r->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		mnl_socket_close(r->nl);
		return -errno;
	}
	r->portid = mnl_socket_get_portid(r->nl);
	r->seq = time(NULL);
	return 0;
}

/* Sends nlh and runs cb on every answer until the end of the dump or the ACK. */
static int nl_talk(struct nl_req *r, struct nlmsghdr *nlh, mnl_cb_t cb, void *data)
{
	int ret;

	nlh->nlmsg_seq = ++r->seq;
	if (mnl_socket_sendto(r->nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	for (;;) {
		ret = mnl_socket_recvfrom(r->nl, r->buf, sizeof(r->buf));
		if (ret < 0)
			return -errno;
		ret = mnl_cb_run(r->buf, ret, r->seq, r->portid, cb, data);
		if (ret <= MNL_CB_STOP)
			return ret < 0 ? -errno : 0;
	}
}

static int route_oif_cb(const struct nlmsghdr *nlh, void *data)
{
	struct nlattr *attr;

	mnl_attr_for_each(attr, nlh, sizeof(struct rtmsg)) {
		if (mnl_attr_get_type(attr) == RTA_OIF)
			*(int *)data = (int)mnl_attr_get_u32(attr);
	}
	return MNL_CB_OK;
}

/* The device the node routes addr through (RTM_GETROUTE), or 0. */
static int route_oif(struct nl_req *r, const struct ip_addr *addr)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(r->buf);
	struct rtmsg *rtm;
	int oif = 0;

	nlh->nlmsg_type = RTM_GETROUTE;
	/* The ACK after the answer ends the exchange. */
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	rtm->rtm_family = addr->family;
	rtm->rtm_dst_len = addr->family == AF_INET ? 32 : 128;
	mnl_attr_put(nlh, RTA_DST, addr->family == AF_INET ? 4 : 16, addr->bytes);
	if (nl_talk(r, nlh, route_oif_cb, &oif))
		return 0;
	return oif;
}

static int count_filters_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct tcmsg *tcm = mnl_nlmsg_get_payload(nlh);
	__u32 prio = TC_H_MAJ(tcm->tcm_info) >> 16;

	/* Each filter is dumped once per handle and once as its priority's head (handle 0). */
	if (nlh->nlmsg_type == RTM_NEWTFILTER && prio != SL_TC_PRIORITY)
		(*(int *)data)++;
	else if (nlh->nlmsg_type == RTM_NEWTFILTER && tcm->tcm_handle &&
		 tcm->tcm_handle != SL_TC_HANDLE)
		(*(int *)data)++;
	return MNL_CB_OK;
}

/* Filters on ifindex's clsact (ingress and egress) that are not ours; -errno on failure. */
static int count_foreign_filters(struct nl_req *r, int ifindex)
{
	static const __u32 parents[] = { TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_INGRESS),
					 TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_EGRESS) };
	struct nlmsghdr *nlh;
	struct tcmsg *tcm;
	int n = 0, err;
	size_t i;

	for (i = 0; i < 2; i++) {
		nlh = mnl_nlmsg_put_header(r->buf);
		nlh->nlmsg_type = RTM_GETTFILTER;
		nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
		tcm = mnl_nlmsg_put_extra_header(nlh, sizeof(*tcm));
		tcm->tcm_family = AF_UNSPEC;
		tcm->tcm_ifindex = ifindex;
		tcm->tcm_parent = parents[i];
		err = nl_talk(r, nlh, count_filters_cb, &n);
		if (err)
			return err;
	}
	return n;
}

/* ---- our filters ---- */

/*
 * What sits at our handle and priority on one hook: 1 our program, 0
 * nothing, -EEXIST another program (not ours to replace), -errno on error.
 */
static int query_ours(int ifindex, enum bpf_tc_attach_point point)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = point);
	LIBBPF_OPTS(bpf_tc_opts, opts, .handle = SL_TC_HANDLE, .priority = SL_TC_PRIORITY);
	struct bpf_prog_info info;
	__u32 len = sizeof(info);
	libbpf_print_fn_t quiet;
	int err, fd;

	/* A hook without our filter is the common answer: not worth libbpf's warning. */
	quiet = libbpf_set_print(NULL);
	err = bpf_tc_query(&hook, &opts);
	libbpf_set_print(quiet);
	if (err == -ENOENT || err == -EINVAL)
		return 0; /* no filter there, or no clsact qdisc at all */
	if (err)
		return err;
	fd = bpf_prog_get_fd_by_id(opts.prog_id);
	if (fd < 0)
		return -errno;
	memset(&info, 0, sizeof(info));
	err = bpf_obj_get_info_by_fd(fd, &info, &len);
	close(fd);
	if (err)
		return err;
	return strncmp(info.name, SL_TC_PROG_PREFIX, strlen(SL_TC_PROG_PREFIX)) ? -EEXIST : 1;
}

/*
 * Attaches (or replaces in place) our program on one hook of ifindex;
 * recorded: an agent recorded the device in tc_devices.
 */
static int attach_hook(int ifindex, enum bpf_tc_attach_point point, int prog_fd, const char *name,
		       bool recorded)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = point);
	LIBBPF_OPTS(bpf_tc_opts, opts, .prog_fd = prog_fd, .handle = SL_TC_HANDLE,
		    .priority = SL_TC_PRIORITY, .flags = BPF_TC_F_REPLACE);
	int err = query_ours(ifindex, point);

	/*
	 * Once synced the agent has no CAP_SYS_ADMIN to look a program up by
	 * id (Documentation/security.md): a filter at our handle on a device
	 * an agent recorded is an earlier agent's.
	 */
	if (err == -EPERM && recorded)
		err = 1;
	if (err == -EEXIST) {
		pr_warn("bpf: %s: another program holds tc handle 0x%x priority 0x%x on %s; "
			"not replacing it",
			name, SL_TC_HANDLE, SL_TC_PRIORITY,
			point == BPF_TC_INGRESS ? "ingress" : "egress");
		return err;
	}
	if (err < 0)
		return err;
	return bpf_tc_attach(&hook, &opts);
}

static bool attached(const struct tc_datapath *tc, int ifindex)
{
	size_t i;

	for (i = 0; i < tc->n_ifindexes; i++) {
		if (tc->ifindexes[i] == ifindex)
			return true;
	}
	return false;
}

/*
 * Creates clsact on ifindex if missing (remembered in tc_devices, so that
 * cleanup removes only a qdisc we made), then attaches both programs.
 */
static int attach_device(struct tc_datapath *tc, int ifindex)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex,
		    .attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS);
	int devices_fd = bpf_map__fd(tc->skel->maps.tc_devices);
	struct sl_tc_device dev;
	__u32 key = ifindex;
	char name[IF_NAMESIZE] = "?";
	int err;
	bool known;

	if (attached(tc, ifindex))
		return 0;
	if_indextoname(ifindex, name);
	known = bpf_map_lookup_elem(devices_fd, &key, &dev) == 0 && !strcmp(dev.name, name);
	if (!known)
		memset(&dev, 0, sizeof(dev));
	snprintf(dev.name, sizeof(dev.name), "%s", name);
	err = bpf_tc_hook_create(&hook);
	if (!err)
		dev.flags |= SL_TC_DEV_F_QDISC_OURS;
	else if (err != -EEXIST)
		goto fail;
	/* Recorded before attaching: a crash in between still leaves cleanup its facts. */
	bpf_map_update_elem(devices_fd, &key, &dev, BPF_ANY);
	err = attach_hook(ifindex, BPF_TC_INGRESS, bpf_program__fd(tc->skel->progs.sl_tc_ingress),
			  name, known);
	if (!err)
		err = attach_hook(ifindex, BPF_TC_EGRESS,
				  bpf_program__fd(tc->skel->progs.sl_tc_egress), name, known);
	if (err)
		goto fail;
	if (tc->n_ifindexes == tc->cap_ifindexes) {
		tc->cap_ifindexes = tc->cap_ifindexes ? tc->cap_ifindexes * 2 : 8;
		tc->ifindexes =
			xreallocarray(tc->ifindexes, tc->cap_ifindexes, sizeof(*tc->ifindexes));
	}
	tc->ifindexes[tc->n_ifindexes++] = ifindex;
	pr_info("bpf: tc programs on %s (ingress and egress)%s", name,
		known ? "" : (dev.flags & SL_TC_DEV_F_QDISC_OURS ? ", clsact created" : ""));
	return 0;
fail:
	pr_warn("bpf: cannot attach the tc programs to %s: %s", name, strerror(-err));
	return err;
}

int tc_share_pins(struct bpf_object *obj, const char *maps_dir)
{
	struct bpf_map_info info;
	char path[PATH_MAX];
	struct bpf_map *map;
	__u32 len;
	int err, fd;

	bpf_object__for_each_map(map, obj) {
		/* .rodata (the load-time settings) is the object's own, never shared. */
		if (bpf_map__is_internal(map))
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", maps_dir, bpf_map__name(map)) >=
		    (int)sizeof(path))
			return -ENAMETOOLONG;
		err = bpf_map__set_pin_path(map, path);
		if (err)
			return err;
		/* A tc-only map of an older layout (an older agent's): start it afresh. */
		fd = bpf_obj_get(path);
		if (fd < 0)
			continue;
		memset(&info, 0, sizeof(info));
		len = sizeof(info);
		if (!bpf_obj_get_info_by_fd(fd, &info, &len) &&
		    (info.key_size != bpf_map__key_size(map) ||
		     info.value_size != bpf_map__value_size(map) ||
		     info.max_entries != bpf_map__max_entries(map) ||
		     info.type != (__u32)bpf_map__type(map))) {
			pr_info("bpf: pinned map %s has another layout: replaced by a new one",
				path);
			unlink(path);
		}
		close(fd);
	}
	return 0;
}

int tc_datapath_open(const char *maps_dir, const struct datapath_config *cfg, __u32 max_services,
		     struct tc_datapath **out, char *why, size_t why_len)
{
	const char *devices = cfg->devices;
	__u32 connections = cfg->max_connections ? cfg->max_connections : SL_MAX_CONNTRACK / 2;
	struct tc_datapath *tc;
	char *list, *name, *save = NULL, path[PATH_MAX];
	int err, ifindex;

	*out = NULL;
	tc = xcalloc(1, sizeof(*tc));
	tc->skel = tc_bpf__open();
	if (!tc->skel) {
		err = -errno;
		snprintf(why, why_len, "cannot open the tc BPF object: %s", strerror(-err));
		goto fail;
	}
	/* The same sizes as the socket object's, or its pins would look like another layout. */
	err = bpf_size_maps(tc->skel->obj, max_services);
	/* Two entries a connection, one per direction; preallocated, as every LRU map. */
	if (!err)
		err = bpf_map__set_max_entries(tc->skel->maps.conntrack, 2 * connections);
	if (!err)
		err = tc_share_pins(tc->skel->obj, maps_dir);
	if (err) {
		snprintf(why, why_len, "cannot set the tc maps' pins: %s", strerror(-err));
		goto fail;
	}
	tc->skel->rodata->sl_terminate_tcp = cfg->terminate_tcp;
	err = tc_bpf__load(tc->skel);
	if (err) {
		snprintf(why, why_len, "cannot load the tc programs: %s", strerror(-err));
		goto fail;
	}
	list = xstrdup(devices ? devices : "");
	for (name = strtok_r(list, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
		ifindex = if_nametoindex(name);
		if (!ifindex) {
			pr_warn("bpf: --devices: no device %s in this network namespace; skipped",
				name);
			continue;
		}
		attach_device(tc, ifindex);
	}
	free(list);
	/*
	 * After tc: whatever XDP leaves to tc finds it in place. Without XDP
	 * tc serves the same frontends, only later: a failure is logged, not fatal.
	 */
	if (cfg->xdp != DATAPATH_XDP_OFF &&
	    xdp_datapath_open(bpffs_dir(cfg), cfg, max_services, connections, tc_share_pins,
			      &tc->xdp, why, why_len))
		pr_warn("bpf: --xdp: %s; tc serves the devices alone", why);
	else if (cfg->xdp == DATAPATH_XDP_OFF &&
		 !join(path, bpffs_dir(cfg), SL_PIN_LINKS_DIR, NULL))
		xdp_datapath_cleanup(path); /* an earlier agent's --xdp: off now */
	/* A marker the e2e tests look for (Documentation/bpf-datapath.md, "Removed backends"). */
	pr_info("tc udp flows: re-balanced when their backend leaves");
	*out = tc;
	return 0;
fail:
	tc_bpf__destroy(tc->skel);
	free(tc);
	return err;
}

void tc_datapath_reach(struct tc_datapath *tc, const struct ip_addr *addrs, size_t n)
{
	struct nl_req *r;
	size_t i;
	int oif;

	if (!tc || !n)
		return;
	r = xcalloc(1, sizeof(*r));
	if (nl_open(r)) {
		pr_warn("bpf: cannot open rtnetlink to find the backends' devices");
		free(r);
		return;
	}
	for (i = 0; i < n; i++) {
		oif = route_oif(r, &addrs[i]);
		if (oif > 1 && !attached(tc, oif))
			attach_device(tc, oif);
	}
	mnl_socket_close(r->nl);
	free(r);
}

int tc_datapath_dsr_fd(const struct tc_datapath *tc)
{
	return tc ? bpf_map__fd(tc->skel->maps.dsr_nodes) : -1;
}

void tc_datapath_close(struct tc_datapath *tc)
{
	if (!tc)
		return;
	/* The filters hold the programs; the pins hold the maps. */
	xdp_datapath_close(tc->xdp);
	tc_bpf__destroy(tc->skel);
	free(tc->ifindexes);
	free(tc);
}

/* The devices recorded by an agent, from the pinned tc_devices map: flags per ifindex. */
static __u32 recorded_flags(int devices_fd, int ifindex, const char *name)
{
	struct sl_tc_device dev;
	__u32 key = ifindex;

	if (devices_fd < 0 || bpf_map_lookup_elem(devices_fd, &key, &dev))
		return 0;
	dev.name[sizeof(dev.name) - 1] = '\0';
	return strcmp(dev.name, name) ? 0 : dev.flags;
}

int tc_datapath_cleanup(const char *maps_dir)
{
	LIBBPF_OPTS(bpf_tc_opts, opts, .handle = SL_TC_HANDLE, .priority = SL_TC_PRIORITY);
	static const enum bpf_tc_attach_point points[] = { BPF_TC_INGRESS, BPF_TC_EGRESS };
	struct if_nameindex *ifs, *it;
	char path[PATH_MAX];
	struct nl_req *r = NULL;
	int devices_fd, first_err = 0, err, removed = 0;
	size_t i;

	snprintf(path, sizeof(path), "%s/tc_devices", maps_dir);
	devices_fd = bpf_obj_get(path);
	ifs = if_nameindex();
	if (!ifs) {
		err = -errno;
		goto out;
	}
	for (it = ifs; it->if_index; it++) {
		for (i = 0; i < 2; i++) {
			LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = it->if_index,
				    .attach_point = points[i]);

			if (query_ours(it->if_index, points[i]) != 1)
				continue;
			err = bpf_tc_detach(&hook, &opts);
			if (err && !first_err)
				first_err = err;
			removed += !err;
		}
		if (!(recorded_flags(devices_fd, it->if_index, it->if_name) &
		      SL_TC_DEV_F_QDISC_OURS))
			continue;
		if (!r) {
			r = xcalloc(1, sizeof(*r));
			if (nl_open(r)) {
				free(r);
				r = NULL;
				continue;
			}
		}
		/* Only a clsact we made, and only if nobody else's filter sits in it. */
		if (count_foreign_filters(r, it->if_index) == 0) {
			LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = it->if_index,
				    .attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS);

			err = bpf_tc_hook_destroy(&hook);
			if (err && err != -ENOENT && !first_err)
				first_err = err;
		}
	}
	if (removed)
		pr_info("bpf: removed %d tc filters", removed);
	err = first_err;
out:
	if (r) {
		mnl_socket_close(r->nl);
		free(r);
	}
	if (ifs)
		if_freenameindex(ifs);
	if (devices_fd >= 0)
		close(devices_fd);
	return err;
}

bool tc_datapath_present(void)
{
	struct if_nameindex *ifs, *it;
	bool found = false;

	ifs = if_nameindex();
	if (!ifs)
		return false;
	for (it = ifs; it->if_index && !found; it++)
		found = query_ours(it->if_index, BPF_TC_INGRESS) == 1 ||
			query_ours(it->if_index, BPF_TC_EGRESS) == 1;
	if_freenameindex(ifs);
	return found;
}

int tc_datapath_print(const char *maps_dir, FILE *out)
{
	char path[PATH_MAX], name[IF_NAMESIZE];
	struct sl_tc_device dev;
	__u32 key, *prev = NULL;
	int fd, n = 0;

	snprintf(path, sizeof(path), "%s/tc_devices", maps_dir);
	fd = bpf_obj_get(path);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	while (!bpf_map_get_next_key(fd, prev, &key)) {
		prev = &key;
		if (bpf_map_lookup_elem(fd, &key, &dev))
			continue;
		dev.name[sizeof(dev.name) - 1] = '\0';
		fprintf(out, "  %s: tc ingress and egress%s\n", dev.name,
			if_indextoname(key, name) && !strcmp(name, dev.name) ?
				(query_ours(key, BPF_TC_INGRESS) == 1 ? "" :
									" (not attached now)") :
				" (the device went)");
		n++;
	}
	close(fd);
	return n;
}
