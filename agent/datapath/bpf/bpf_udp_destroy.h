/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Connected UDP sockets of the node whose backend left: after an apply,
 * destroy those the socket programs translated to a removed backend of
 * that frontend, with a socket iterator and bpf_sock_destroy() (Linux
 * 6.5+) where the kernel has it, else with sock_diag's SOCK_DESTROY
 * (CONFIG_INET_DIAG_DESTROY). Only sockets of the agent's network
 * namespace are seen.
 */
#ifndef SLUICE_BPF_UDP_DESTROY_H
#define SLUICE_BPF_UDP_DESTROY_H

#include "core/state.h"

struct udp_destroyer;

/*
 * Probes what this kernel offers (logs one line "udp sockets: destroyed
 * with bpf_sock_destroy|sock_diag|not available"); revnat_fd is the
 * socket programs' revnat map. Never fails: NULL-safe handle.
 */
struct udp_destroyer *udp_destroyer_open(int revnat_fd);
/* Destroys the sockets of the UDP backends diff removed from their frontends. */
void udp_destroyer_run(struct udp_destroyer *ud, const struct state_diff *diff);
void udp_destroyer_close(struct udp_destroyer *ud);

#endif
