// SPDX-License-Identifier: Apache-2.0
/*
 * The expressions of the rules of table inet sluice, one builder each: the
 * ones `nft --debug=netlink` shows for the equivalent nft syntax, so `nft
 * list table inet sluice` prints them back as that syntax.
 */
#include <stdio.h>
#include <netinet/in.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nf_nat.h>
#include <linux/rtnetlink.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>

#include "lib/xalloc.h"
#include "datapath/nft/nft_expr.h"

static struct nftnl_expr *expr_new(const char *name)
{
	return xcheck(nftnl_expr_alloc(name));
}

void nft_expr_meta(struct nftnl_rule *r, uint32_t key, uint32_t dreg)
{
	struct nftnl_expr *e = expr_new("meta");

	nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, key);
	nftnl_expr_set_u32(e, NFTNL_EXPR_META_DREG, dreg);
	nftnl_rule_add_expr(r, e);
}

static void expr_cmp(struct nftnl_rule *r, uint32_t sreg, uint32_t op, const void *data,
		     uint32_t len)
{
	struct nftnl_expr *e = expr_new("cmp");

	nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_SREG, sreg);
	nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_OP, op);
	nftnl_expr_set(e, NFTNL_EXPR_CMP_DATA, data, len);
	nftnl_rule_add_expr(r, e);
}

void nft_expr_cmp_u8(struct nftnl_rule *r, uint32_t sreg, uint8_t value)
{
	expr_cmp(r, sreg, NFT_CMP_EQ, &value, sizeof(value));
}

static void expr_payload(struct nftnl_rule *r, uint32_t base, uint32_t offset, uint32_t len,
			 uint32_t dreg)
{
	struct nftnl_expr *e = expr_new("payload");

	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_BASE, base);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, offset);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_LEN, len);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_DREG, dreg);
	nftnl_rule_add_expr(r, e);
}

static struct nftnl_expr *expr_lookup_new(uint32_t sreg, const char *set, uint32_t set_id)
{
	struct nftnl_expr *e = expr_new("lookup");

	nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SREG, sreg);
	nftnl_expr_set_str(e, NFTNL_EXPR_LOOKUP_SET, set);
	if (set_id)
		nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SET_ID, set_id);
	return e;
}

void nft_expr_lookup(struct nftnl_rule *r, uint32_t sreg, const char *set, uint32_t set_id,
		     bool has_dreg, uint32_t dreg)
{
	struct nftnl_expr *e = expr_lookup_new(sreg, set, set_id);

	if (has_dreg)
		nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_DREG, dreg);
	nftnl_rule_add_expr(r, e);
}

void nft_expr_lookup_not(struct nftnl_rule *r, uint32_t sreg, const char *set, uint32_t set_id)
{
	struct nftnl_expr *e = expr_lookup_new(sreg, set, set_id);

	nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_FLAGS, NFT_LOOKUP_F_INV);
	nftnl_rule_add_expr(r, e);
}

/* reg = (reg & mask) ^ xor, on len bytes. */
static void expr_bitwise(struct nftnl_rule *r, uint32_t reg, const void *mask, const void * xor,
			 uint32_t len)
{
	struct nftnl_expr *e = expr_new("bitwise");

	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_SREG, reg);
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_DREG, reg);
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_LEN, len);
	nftnl_expr_set(e, NFTNL_EXPR_BITWISE_MASK, mask, len);
	nftnl_expr_set(e, NFTNL_EXPR_BITWISE_XOR, xor, len);
	nftnl_rule_add_expr(r, e);
}

/* fib daddr type local: the destination is an address of this node. */
static void expr_fib_daddr_local(struct nftnl_rule *r)
{
	struct nftnl_expr *e = expr_new("fib");
	uint32_t local = RTN_LOCAL;

	nftnl_expr_set_u32(e, NFTNL_EXPR_FIB_DREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_FIB_RESULT, NFT_FIB_RESULT_ADDRTYPE);
	nftnl_expr_set_u32(e, NFTNL_EXPR_FIB_FLAGS, NFTA_FIB_F_DADDR);
	nftnl_rule_add_expr(r, e);
	expr_cmp(r, NFT_REG_1, NFT_CMP_EQ, &local, sizeof(local));
}

void nft_expr_mark_update(struct nftnl_rule *r, uint32_t and_mask, uint32_t xor_bits)
{
	struct nftnl_expr *e;

	nft_expr_meta(r, NFT_META_MARK, NFT_REG_1);
	expr_bitwise(r, NFT_REG_1, &and_mask, &xor_bits, sizeof(uint32_t));
	e = expr_new("meta");
	nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, NFT_META_MARK);
	nftnl_expr_set_u32(e, NFTNL_EXPR_META_SREG, NFT_REG_1);
	nftnl_rule_add_expr(r, e);
}

void nft_expr_mark_has(struct nftnl_rule *r, uint32_t bit)
{
	uint32_t zero = 0;

	nft_expr_meta(r, NFT_META_MARK, NFT_REG_1);
	expr_bitwise(r, NFT_REG_1, &bit, &zero, sizeof(bit));
	expr_cmp(r, NFT_REG_1, NFT_CMP_NEQ, &zero, sizeof(zero));
}

void nft_expr_masquerade(struct nftnl_rule *r)
{
	struct nftnl_expr *e = expr_new("masq");

	nftnl_expr_set_u32(e, NFTNL_EXPR_MASQ_FLAGS, NF_NAT_RANGE_PROTO_RANDOM_FULLY);
	nftnl_rule_add_expr(r, e);
}

void nft_expr_verdict(struct nftnl_rule *r, int verdict, const char *chain)
{
	struct nftnl_expr *e = expr_new("immediate");

	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT, verdict);
	if (chain)
		nftnl_expr_set_str(e, NFTNL_EXPR_IMM_CHAIN, chain);
	nftnl_rule_add_expr(r, e);
}

void nft_expr_goto(struct nftnl_rule *r, const char *chain)
{
	nft_expr_verdict(r, NFT_GOTO, chain);
}

void nft_expr_immediate(struct nftnl_rule *r, uint32_t dreg, const void *data, uint32_t len)
{
	struct nftnl_expr *e = expr_new("immediate");

	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, dreg);
	nftnl_expr_set(e, NFTNL_EXPR_IMM_DATA, data, len);
	nftnl_rule_add_expr(r, e);
}

void nft_expr_ct_state_new(struct nftnl_rule *r)
{
	struct nftnl_expr *ct = expr_new("ct");
	uint32_t mask = 1u << 3, zero = 0; /* NF_CT_STATE_BIT(IP_CT_NEW) */

	nftnl_expr_set_u32(ct, NFTNL_EXPR_CT_KEY, NFT_CT_STATE);
	nftnl_expr_set_u32(ct, NFTNL_EXPR_CT_DREG, NFT_REG_1);
	nftnl_rule_add_expr(r, ct);
	expr_bitwise(r, NFT_REG_1, &mask, &zero, sizeof(mask));
	expr_cmp(r, NFT_REG_1, NFT_CMP_NEQ, &zero, sizeof(zero));
}

void nft_expr_objref(struct nftnl_rule *r, uint32_t type, const char *name)
{
	struct nftnl_expr *e = expr_new("objref");

	nftnl_expr_set_u32(e, NFTNL_EXPR_OBJREF_IMM_TYPE, type);
	nftnl_expr_set_str(e, NFTNL_EXPR_OBJREF_IMM_NAME, name);
	nftnl_rule_add_expr(r, e);
}

void nft_expr_dynset_update(struct nftnl_rule *r, uint32_t sreg, const char *set, uint32_t set_id)
{
	struct nftnl_expr *e = expr_new("dynset");

	nftnl_expr_set_u32(e, NFTNL_EXPR_DYNSET_SREG_KEY, sreg);
	nftnl_expr_set_u32(e, NFTNL_EXPR_DYNSET_OP, NFT_DYNSET_OP_UPDATE);
	nftnl_expr_set_str(e, NFTNL_EXPR_DYNSET_SET_NAME, set);
	if (set_id)
		nftnl_expr_set_u32(e, NFTNL_EXPR_DYNSET_SET_ID, set_id);
	nftnl_rule_add_expr(r, e);
}

void nft_expr_reject(struct nftnl_rule *r, uint32_t type, uint8_t code)
{
	struct nftnl_expr *e = expr_new("reject");

	nftnl_expr_set_u32(e, NFTNL_EXPR_REJECT_TYPE, type);
	nftnl_expr_set_u8(e, NFTNL_EXPR_REJECT_CODE, code);
	nftnl_rule_add_expr(r, e);
}

void nft_expr_numgen_random(struct nftnl_rule *r, uint32_t dreg, uint32_t modulus, uint32_t offset)
{
	struct nftnl_expr *e = expr_new("numgen");

	nftnl_expr_set_u32(e, NFTNL_EXPR_NG_DREG, dreg);
	nftnl_expr_set_u32(e, NFTNL_EXPR_NG_MODULUS, modulus);
	nftnl_expr_set_u32(e, NFTNL_EXPR_NG_TYPE, NFT_NG_RANDOM);
	nftnl_expr_set_u32(e, NFTNL_EXPR_NG_OFFSET, offset);
	nftnl_rule_add_expr(r, e);
}

void nft_expr_dnat(struct nftnl_rule *r, uint32_t family, uint32_t addr_reg, uint32_t port_reg)
{
	struct nftnl_expr *e = expr_new("nat");

	nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_TYPE, NFT_NAT_DNAT);
	nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_FAMILY, family);
	nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_REG_ADDR_MIN, addr_reg);
	nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_REG_PROTO_MIN, port_reg);
	nftnl_rule_add_expr(r, e);
}

void nft_expr_frontend_key(struct nftnl_rule *r, bool v6, bool with_port)
{
	/* A v4 address fills one 32-bit register, a v6 one a whole 16-byte register. */
	uint32_t proto_reg = v6 ? NFT_REG_2 : NFT_REG32_01;
	uint32_t port_reg = v6 ? NFT_REG32_05 : NFT_REG32_02;

	nft_expr_meta(r, NFT_META_NFPROTO, NFT_REG_1);
	nft_expr_cmp_u8(r, NFT_REG_1, v6 ? NFPROTO_IPV6 : NFPROTO_IPV4);
	expr_payload(r, NFT_PAYLOAD_NETWORK_HEADER, v6 ? 24 : 16, v6 ? 16 : 4, NFT_REG_1);
	if (!with_port)
		return;
	nft_expr_meta(r, NFT_META_L4PROTO, proto_reg);
	expr_payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, port_reg);
}

void nft_expr_node_addr(struct nftnl_rule *r, bool v6, bool fib_local, const char *addr_set)
{
	static const uint8_t loop6[16] = { [15] = 1 };
	const uint8_t mask4[4] = { 255, 0, 0, 0 }, zero4[4] = { 0 }, loop4[4] = { 127, 0, 0, 0 };

	nft_expr_meta(r, NFT_META_NFPROTO, NFT_REG_1);
	nft_expr_cmp_u8(r, NFT_REG_1, v6 ? NFPROTO_IPV6 : NFPROTO_IPV4);
	if (fib_local)
		expr_fib_daddr_local(r);
	expr_payload(r, NFT_PAYLOAD_NETWORK_HEADER, v6 ? 24 : 16, v6 ? 16 : 4, NFT_REG_1);
	if (addr_set)
		nft_expr_lookup(r, NFT_REG_1, addr_set, 0, false, 0);
	if (v6) {
		expr_cmp(r, NFT_REG_1, NFT_CMP_NEQ, loop6, sizeof(loop6));
	} else {
		expr_bitwise(r, NFT_REG_1, mask4, zero4, 4);
		expr_cmp(r, NFT_REG_1, NFT_CMP_NEQ, loop4, sizeof(loop4));
	}
}

void nft_expr_proto_port_key(struct nftnl_rule *r)
{
	nft_expr_meta(r, NFT_META_L4PROTO, NFT_REG_1);
	expr_payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, NFT_REG32_01);
}

void nft_expr_node_port_key(struct nftnl_rule *r, bool v6, bool fib_local, const char *addr_set)
{
	nft_expr_node_addr(r, v6, fib_local, addr_set);
	nft_expr_proto_port_key(r);
}

void nft_expr_snat_port_shift(struct nftnl_rule *r, bool v6, uint16_t lo, uint16_t hi)
{
	struct nftnl_expr *e;
	uint16_t min = htons(lo), max = htons(hi);

	expr_payload(r, NFT_PAYLOAD_NETWORK_HEADER, v6 ? 8 : 12, v6 ? 16 : 4, NFT_REG_1);
	nft_expr_immediate(r, NFT_REG_2, &min, sizeof(min));
	nft_expr_immediate(r, NFT_REG_3, &max, sizeof(max));
	e = expr_new("nat");
	nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_TYPE, NFT_NAT_SNAT);
	nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_FAMILY, v6 ? NFPROTO_IPV6 : NFPROTO_IPV4);
	nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_REG_ADDR_MIN, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_REG_PROTO_MIN, NFT_REG_2);
	nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_REG_PROTO_MAX, NFT_REG_3);
	/* Port X goes to lo + X % (hi - lo + 1): one to one, no random pick. */
	nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_FLAGS, NF_NAT_RANGE_PROTO_OFFSET);
	nftnl_rule_add_expr(r, e);
}

void nft_expr_saddr(struct nftnl_rule *r, bool v6)
{
	nft_expr_meta(r, NFT_META_NFPROTO, NFT_REG_1);
	nft_expr_cmp_u8(r, NFT_REG_1, v6 ? NFPROTO_IPV6 : NFPROTO_IPV4);
	expr_payload(r, NFT_PAYLOAD_NETWORK_HEADER, v6 ? 8 : 12, v6 ? 16 : 4, NFT_REG_1);
}

void nft_expr_client_jhash(struct nftnl_rule *r, bool v6, uint32_t seed, uint32_t modulus,
			   uint32_t dreg)
{
	struct nftnl_expr *e;

	/* saddr . sport in consecutive 32-bit registers, as nft lays out a concatenation. */
	nft_expr_saddr(r, v6);
	expr_payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, 0, 2, v6 ? NFT_REG32_04 : NFT_REG32_01);
	e = expr_new("hash");
	nftnl_expr_set_u32(e, NFTNL_EXPR_HASH_TYPE, NFT_HASH_JENKINS);
	nftnl_expr_set_u32(e, NFTNL_EXPR_HASH_SREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_HASH_LEN, v6 ? 16 + 4 : 4 + 4);
	nftnl_expr_set_u32(e, NFTNL_EXPR_HASH_MODULUS, modulus);
	/* Fixed: without it the kernel seeds each rule at random, and nodes would disagree. */
	nftnl_expr_set_u32(e, NFTNL_EXPR_HASH_SEED, seed);
	nftnl_expr_set_u32(e, NFTNL_EXPR_HASH_DREG, dreg);
	nftnl_rule_add_expr(r, e);
}
