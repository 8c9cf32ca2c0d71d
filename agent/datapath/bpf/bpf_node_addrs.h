/* SPDX-License-Identifier: Apache-2.0 */
/* The node-address maps of the BPF datapath, kept in line with the devices. */
#ifndef SLUICE_BPF_NODE_ADDRS_H
#define SLUICE_BPF_NODE_ADDRS_H

#include "core/node_ports.h"

/*
 * Writes the node's addresses (node_addrs, each marked whether NodePorts
 * answer on it by np; np NULL, before the first apply: as it was, new ones
 * answering) and each device's SNAT address (dev_addrs), removing the ones
 * that went.
 */
int bpf_node_addrs_sync(int node_addrs_fd, int dev_addrs_fd, const struct node_port_addrs *np);

#endif
