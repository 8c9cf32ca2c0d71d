/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Sockets of the node whose backend left (connected UDP; TCP when asked):
 * after an apply,
 * destroy those the socket programs translated to a removed backend of
 * that frontend, with a socket iterator and bpf_sock_destroy() (Linux
 * 6.5+) where the kernel has it, else with sock_diag's SOCK_DESTROY
 * (CONFIG_INET_DIAG_DESTROY). Only sockets of the agent's network
 * namespace are seen.
 */
#ifndef SLUICE_BPF_SOCK_DESTROY_H
#define SLUICE_BPF_SOCK_DESTROY_H

#include <stdbool.h>

#include "core/state.h"

struct sock_destroyer;

/*
 * Probes what this kernel offers (logs one line "sockets of removed
 * backends (connected UDP[, TCP]): destroyed with bpf_sock_destroy|
 * sock_diag|not available"); revnat_fd is the socket programs' revnat map;
 * tcp: TCP sockets too. Never fails: NULL-safe handle.
 */
struct sock_destroyer *sock_destroyer_open(int revnat_fd, bool tcp);
/* Destroys the sockets of the backends diff removed from their frontends. */
void sock_destroyer_run(struct sock_destroyer *ud, const struct state_diff *diff);
/* What open chose ("bpf_sock_destroy", "sock_diag", "not available") and why. */
const char *sock_destroyer_mode(const struct sock_destroyer *ud, const char **why);
void sock_destroyer_close(struct sock_destroyer *ud);

#endif
