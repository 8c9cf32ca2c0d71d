/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Constants of the socket programs: the UAPI #defines that vmlinux.h does not
 * carry (errno values, socket types) and the verdicts of cgroup hooks.
 */
#ifndef SLUICE_BPF_CONSTS_H
#define SLUICE_BPF_CONSTS_H

/* errno values handed to bpf_set_retval(), negated. */
#define SL_ETIMEDOUT 110
#define SL_ECONNREFUSED 111

/* Socket types, for sockets whose protocol field is 0. */
#define SL_SOCK_STREAM 1
#define SL_SOCK_DGRAM 2

#define SL_IPPROTO_TCP 6
#define SL_IPPROTO_UDP 17

/* Return values of cgroup sock_addr programs. */
#define SL_VERDICT_REJECT 0
#define SL_VERDICT_ALLOW 1

#endif
