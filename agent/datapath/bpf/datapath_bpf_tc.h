/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The tc half of the BPF datapath (bpf/tc.bpf.c): load the programs over
 * the socket datapath's pinned maps, attach them as clsact filters to the
 * devices, adopt or remove them.
 */
#ifndef SLUICE_DATAPATH_BPF_TC_H
#define SLUICE_DATAPATH_BPF_TC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <linux/types.h>

#include "datapath/datapath.h"
#include "lib/addr.h"

struct tc_datapath;

/*
 * Loads the tc programs, sharing the maps pinned under maps_dir (sized for
 * max_services, as the socket object's), and attaches them (ingress and
 * egress) to each device of the comma-separated list, replacing our
 * filters in place if an agent left them. Returns 0 or -errno with one
 * reason in why.
 */
int tc_datapath_open(const char *maps_dir, const struct datapath_config *cfg, __u32 max_services,
		     struct tc_datapath **out, char *why, size_t why_len);
/*
 * Attaches the programs also to the devices the node routes these
 * addresses through (backends of external frontends): replies of SNATed
 * connections must be translated before the stack delivers them locally.
 */
void tc_datapath_reach(struct tc_datapath *tc, const struct ip_addr *addrs, size_t n);
/* The fd of the tc path's dsr_nodes map (bpf_dsr.c), -1 without the tc path. */
int tc_datapath_dsr_fd(const struct tc_datapath *tc);
/* Releases the agent's handles; the filters keep serving. */
void tc_datapath_close(struct tc_datapath *tc);
/*
 * Removes our filters from every device of this network namespace, and the
 * clsact qdiscs we created where no other filter remains.
 */
int tc_datapath_cleanup(const char *maps_dir);
/*
 * Sets obj's map pins to those under maps_dir: the socket datapath's maps
 * and the tc path's own (the XDP object shares them the same way).
 */
struct bpf_object;
int tc_share_pins(struct bpf_object *obj, const char *maps_dir);
/* One line per device an agent recorded in maps/tc_devices; the count, or -errno. */
int tc_datapath_print(const char *maps_dir, FILE *out);
/* True if a filter of ours is attached to a device of this namespace. */
bool tc_datapath_present(void);

#endif
