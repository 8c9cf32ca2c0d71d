/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Internal to the message builders: the expressions of a rule, as
 * `nft --debug=netlink` shows them for the equivalent nft syntax (so that
 * `nft list table inet sluice` prints them back as that syntax), and nft's
 * numbers for the key types and layouts of the sets.
 */
#ifndef SLUICE_NFT_EXPR_H
#define SLUICE_NFT_EXPR_H

#include <stdbool.h>
#include <stdint.h>

/* nft's own datatype numbers (src/datatype.h), so `nft list` prints the keys. */
#define NFT_TYPE_INTEGER 4
/* A 32-bit host-order integer nft can print a named map's key with (backends4/6-N). */
#define NFT_TYPE_MARK 19
#define NFT_TYPE_IPADDR 7
#define NFT_TYPE_IP6ADDR 8
#define NFT_TYPE_INET_PROTOCOL 12
#define NFT_TYPE_INET_SERVICE 13
#define NFT_TYPE_BITS 6
#define NFT_CONCAT2(a, b) (((a) << NFT_TYPE_BITS) | (b))
#define NFT_CONCAT3(a, b, c) (NFT_CONCAT2(NFT_CONCAT2(a, b), c))
/* nft's byteorder enum: the anonymous map's numgen keys are host order. */
#define NFT_BYTEORDER_HOST 1

/* Concatenation fields are padded to 4 bytes each. */
#define NFT_KEY_LEN4 (4 + 4 + 4)
#define NFT_KEY_LEN6 (16 + 4 + 4)
#define NFT_KEY_LEN_NODE_PORT (4 + 4)
#define NFT_ENDPOINT_LEN4 (4 + 4)
#define NFT_ENDPOINT_LEN6 (16 + 4)

struct nftnl_rule;

/* Each appends one expression (or the few nft writes for one match) to r. */
void nft_expr_meta(struct nftnl_rule *r, uint32_t key, uint32_t dreg);
void nft_expr_cmp_u8(struct nftnl_rule *r, uint32_t sreg, uint8_t value);
/* set_id 0: a named set that already exists or is added earlier in the batch. */
void nft_expr_lookup(struct nftnl_rule *r, uint32_t sreg, const char *set, uint32_t set_id,
		     bool has_dreg, uint32_t dreg);
/* ... != @set: the inverted lookup (no dreg). */
void nft_expr_lookup_not(struct nftnl_rule *r, uint32_t sreg, const char *set, uint32_t set_id);
/* meta mark set meta mark & and_mask ^ xor_bits (set a bit: mask ~bit, xor bit). */
void nft_expr_mark_update(struct nftnl_rule *r, uint32_t and_mask, uint32_t xor_bits);
/* meta mark & bit != 0 */
void nft_expr_mark_has(struct nftnl_rule *r, uint32_t bit);
/* masquerade fully-random: SNAT to the outgoing interface's address, random ports. */
void nft_expr_masquerade(struct nftnl_rule *r);
/* verdict NFT_GOTO / NFT_JUMP to chain, or NFT_RETURN etc. with chain NULL. */
void nft_expr_verdict(struct nftnl_rule *r, int verdict, const char *chain);
void nft_expr_goto(struct nftnl_rule *r, const char *chain);
void nft_expr_immediate(struct nftnl_rule *r, uint32_t dreg, const void *data, uint32_t len);
/* ct state new: ct state => reg 1; reg 1 &= 0x8; reg 1 != 0 (as nft writes it). */
void nft_expr_ct_state_new(struct nftnl_rule *r);
/* limit name "..." / counter name "...": a reference to a named stateful object. */
void nft_expr_objref(struct nftnl_rule *r, uint32_t type, const char *name);
/* update @set { reg }: adds the key, or refreshes its timeout if present. */
void nft_expr_dynset_update(struct nftnl_rule *r, uint32_t sreg, const char *set, uint32_t set_id);
void nft_expr_reject(struct nftnl_rule *r, uint32_t type, uint8_t code);
void nft_expr_numgen_random(struct nftnl_rule *r, uint32_t dreg, uint32_t modulus, uint32_t offset);
void nft_expr_dnat(struct nftnl_rule *r, uint32_t family, uint32_t addr_reg, uint32_t port_reg);
/*
 * Loads "ip[6] daddr . meta l4proto . th dport" (or only the address) into
 * registers from NFT_REG_1 on, after "meta nfproto ipv4|ipv6".
 */
void nft_expr_frontend_key(struct nftnl_rule *r, bool v6, bool with_port);
/*
 * The NodePort key "meta l4proto . th dport" into NFT_REG_1 on, after
 * "[fib daddr type local] [ip daddr @addr_set] ip daddr != 127.0.0.0/8"
 * (ip6 daddr != ::1): as kube-proxy, NodePorts are not served on loopback
 * addresses, nor on addresses --nodeport-addresses leaves out.
 */
void nft_expr_node_port_key(struct nftnl_rule *r, bool v6, bool fib_local, const char *addr_set);
/* The address part of nft_expr_node_port_key alone (nat-output's NodePort rule). */
void nft_expr_node_addr(struct nftnl_rule *r, bool v6, bool fib_local, const char *addr_set);
/* "meta l4proto . th dport" into NFT_REG_1 on (no family check: the L4 header only). */
void nft_expr_proto_port_key(struct nftnl_rule *r);
/* Loads the packet's source address into NFT_REG_1, after "meta nfproto" so nft prints ip saddr. */
/* snat ip to ip saddr : lo-hi, each port shifted into the range (NF_NAT_RANGE_PROTO_OFFSET). */
void nft_expr_snat_port_shift(struct nftnl_rule *r, bool v6, uint16_t lo, uint16_t hi);
void nft_expr_saddr(struct nftnl_rule *r, bool v6);
/*
 * jhash(ip saddr . th sport, seed) mod modulus into dreg (the flow's
 * client, for Maglev buckets); after an L4 protocol match.
 */
void nft_expr_client_jhash(struct nftnl_rule *r, bool v6, uint32_t seed, uint32_t modulus,
			   uint32_t dreg);

#endif
