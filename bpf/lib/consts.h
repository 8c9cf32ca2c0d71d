/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Constants of the BPF programs: the UAPI #defines that vmlinux.h does not
 * carry (errno values, socket types, ethertypes, protocol numbers, TCP
 * flags) and the verdicts of cgroup and tc hooks.
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
#define SL_IPPROTO_SCTP 132

/* Return values of cgroup sock_addr programs. */
#define SL_VERDICT_REJECT 0
#define SL_VERDICT_ALLOW 1

/* tc (clsact, direct action) verdicts. */
#define SL_TC_ACT_OK 0
#define SL_TC_ACT_SHOT 2
#define SL_TC_ACT_REDIRECT 7

#define SL_ETH_P_IP 0x0800
#define SL_ETH_P_IPV6 0x86DD
#define SL_ETH_HLEN 14

#define SL_IPPROTO_ICMP 1
#define SL_IPPROTO_ICMPV6 58

/* IPv4 frag_off bits (host order): more fragments, offset. */
#define SL_IP_MF 0x2000
#define SL_IP_OFFSET 0x1fff

/* The flags byte of a TCP header (offset 13). */
#define SL_TCP_FIN 0x01
#define SL_TCP_SYN 0x02
#define SL_TCP_RST 0x04
#define SL_TCP_ACK 0x10

#define SL_ICMP_DEST_UNREACH 3
#define SL_ICMP_PORT_UNREACH 3
#define SL_ICMP_TIME_EXCEEDED 11
#define SL_ICMP_PARAMETERPROB 12
#define SL_ICMPV6_DEST_UNREACH 1
#define SL_ICMPV6_PORT_UNREACH 4
#define SL_ICMPV6_PKT_TOOBIG 2
#define SL_ICMPV6_TIME_EXCEED 3
#define SL_ICMPV6_PARAMPROB 4

#endif
