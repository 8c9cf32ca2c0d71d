/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The XDP half of the BPF datapath (bpf/xdp.bpf.c, --xdp): load the program
 * over the pinned maps, attach it to the --devices through links pinned as
 * <bpffs>/links/xdp_<device>, remove them, and say per device how it runs.
 */
#ifndef SLUICE_DATAPATH_BPF_XDP_H
#define SLUICE_DATAPATH_BPF_XDP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <linux/types.h>

#include "datapath/datapath.h"

struct bpf_object;
struct xdp_datapath;

/* The pin name prefix of our XDP links under <bpffs>/links. */
#define SL_XDP_LINK_PREFIX "xdp_"

/*
 * Loads the XDP program over the maps pinned under maps_dir (shared with
 * tc, set up by share_pins) and attaches it, in cfg->xdp's mode, to each
 * device of cfg->devices, replacing a link an earlier agent pinned. A
 * device that cannot take it is logged and left to tc. Returns 0 or -errno
 * with one reason in why.
 */
int xdp_datapath_open(const char *bpffs, const struct datapath_config *cfg, __u32 max_services,
		      __u32 connections, int (*share_pins)(struct bpf_object *, const char *),
		      struct xdp_datapath **out, char *why, size_t why_len);
/* Releases the agent's handles; the pinned links keep the program attached. */
void xdp_datapath_close(struct xdp_datapath *xdp);
/* Detaches every XDP program of ours: unpins links_dir's xdp_* links. Count removed or -errno. */
int xdp_datapath_cleanup(const char *links_dir);
/* Prints one line per XDP link of ours: device, mode the kernel runs it in. */
int xdp_datapath_print(const char *links_dir, FILE *out);

#endif
