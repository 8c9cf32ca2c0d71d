// SPDX-License-Identifier: Apache-2.0
/*
 * The static part of table inet sluice, written by every full sync: the
 * table, the named sets and maps, the shared backend maps, reject-chain and
 * the hooked base chains with their lookup rules.
 */
#include <netinet/in.h>
#include <stdio.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netlink.h>
#include <libnftnl/chain.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <libnftnl/udata.h>

#include "lib/xalloc.h"
#include "datapath/nft/nft_batch.h"
#include "datapath/nft/nft_expr.h"
#include "datapath/nft/nft_port_shift.h"
#include "datapath/nft/nft_skeleton.h"

#define NFT_PRIO_DSTNAT (-100)
#define NFT_PRIO_FILTER 0
#define NFT_PRIO_SRCNAT 100

static const struct nft_set_desc named_sets[NFT_NAMED_SETS] = {
	[NFT_SET_SERVICES4] = { "services4", false, NFT_KEY_ADDR_PROTO_PORT, true },
	[NFT_SET_SERVICES6] = { "services6", true, NFT_KEY_ADDR_PROTO_PORT, true },
	[NFT_SET_NO_ENDPOINTS4] = { "no-endpoints4", false, NFT_KEY_ADDR_PROTO_PORT, true },
	[NFT_SET_NO_ENDPOINTS6] = { "no-endpoints6", true, NFT_KEY_ADDR_PROTO_PORT, true },
	[NFT_SET_ADDRS4] = { "service-addrs4", false, NFT_KEY_ADDR, false },
	[NFT_SET_ADDRS6] = { "service-addrs6", true, NFT_KEY_ADDR, false },
	[NFT_SET_NODEPORTS4] = { "nodeports4", false, NFT_KEY_PROTO_PORT, true },
	[NFT_SET_NODEPORTS6] = { "nodeports6", true, NFT_KEY_PROTO_PORT, true },
	[NFT_SET_NO_ENDPOINT_NODEPORTS4] = { "no-endpoint-nodeports4", false, NFT_KEY_PROTO_PORT,
					     true },
	[NFT_SET_NO_ENDPOINT_NODEPORTS6] = { "no-endpoint-nodeports6", true, NFT_KEY_PROTO_PORT,
					     true },
	[NFT_SET_FIREWALL4] = { "firewall-ips4", false, NFT_KEY_ADDR_PROTO_PORT, true },
	[NFT_SET_FIREWALL6] = { "firewall-ips6", true, NFT_KEY_ADDR_PROTO_PORT, true },
	[NFT_SET_NODEPORT_ADDRS4] = { "nodeport-addrs4", false, NFT_KEY_ADDR, false, true },
	[NFT_SET_NODEPORT_ADDRS6] = { "nodeport-addrs6", true, NFT_KEY_ADDR, false, true },
	[NFT_SET_NODE_SERVICES4] = { "node-services4", false, NFT_KEY_ADDR_PROTO_PORT, true },
	[NFT_SET_NODE_SERVICES6] = { "node-services6", true, NFT_KEY_ADDR_PROTO_PORT, true },
	[NFT_SET_NODE_NODEPORTS4] = { "node-nodeports4", false, NFT_KEY_PROTO_PORT, true },
	[NFT_SET_NODE_NODEPORTS6] = { "node-nodeports6", true, NFT_KEY_PROTO_PORT, true },
};

const char *nft_set_name(enum nft_named_set set)
{
	return set < NFT_NAMED_SETS ? named_sets[set].name : "?";
}

const struct nft_set_desc *nft_set_desc(enum nft_named_set set)
{
	return &named_sets[set];
}

/* ---- table ---- */

static void table_msg(struct nft_batch *b, const char *name, uint16_t type, uint8_t what)
{
	struct nft_msg_ref ref = { .what = what };
	struct nftnl_table *t = xcheck(nftnl_table_alloc());
	struct nlmsghdr *nlh;

	nftnl_table_set_u32(t, NFTNL_TABLE_FAMILY, NFPROTO_INET);
	nftnl_table_set_str(t, NFTNL_TABLE_NAME, name);
	nlh = nft_msg_start(b, type, type == NFT_MSG_NEWTABLE ? NLM_F_CREATE : 0, &ref);
	if (nlh) {
		nftnl_table_nlmsg_build_payload(nlh, t);
		nft_msg_end(b);
	}
	nftnl_table_free(t);
}

void nft_msg_table_add(struct nft_batch *b)
{
	table_msg(b, NFT_TABLE_NAME, NFT_MSG_NEWTABLE, NFT_WHAT_TABLE_ADD);
}

void nft_msg_table_del(struct nft_batch *b)
{
	table_msg(b, NFT_TABLE_NAME, NFT_MSG_DELTABLE, NFT_WHAT_TABLE_DEL);
}

void nft_msg_drain_table_del(struct nft_batch *b)
{
	/* Adding first makes the delete succeed whether the table was there or not. */
	table_msg(b, NFT_DRAIN_TABLE_NAME, NFT_MSG_NEWTABLE, NFT_WHAT_TABLE_ADD);
	table_msg(b, NFT_DRAIN_TABLE_NAME, NFT_MSG_DELTABLE, NFT_WHAT_TABLE_DEL);
}

/*
 * table inet sluice-drain { chain drain { type nat hook postrouting
 * priority srcnat; } }: one NAT chain of any hook keeps the kernel's NAT
 * hooks (all four, both families) registered, so connections translated
 * before go on being translated, while nothing translates new ones.
 */
void nft_msg_drain_table_add(struct nft_batch *b)
{
	struct nft_msg_ref ref = { .what = NFT_WHAT_BASE_CHAIN };
	struct nftnl_chain *c = xcheck(nftnl_chain_alloc());

	table_msg(b, NFT_DRAIN_TABLE_NAME, NFT_MSG_NEWTABLE, NFT_WHAT_TABLE_ADD);
	nftnl_chain_set_u32(c, NFTNL_CHAIN_FAMILY, NFPROTO_INET);
	nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, NFT_DRAIN_TABLE_NAME);
	nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, "drain");
	nftnl_chain_set_str(c, NFTNL_CHAIN_TYPE, "nat");
	nftnl_chain_set_u32(c, NFTNL_CHAIN_HOOKNUM, NF_INET_POST_ROUTING);
	nftnl_chain_set_s32(c, NFTNL_CHAIN_PRIO, NFT_PRIO_SRCNAT);
	nftnl_chain_set_u32(c, NFTNL_CHAIN_POLICY, NF_ACCEPT);
	nft_chain_msg(b, c, NFT_MSG_NEWCHAIN, NLM_F_CREATE, &ref);
}

/* ---- chains ---- */

struct base_chain {
	const char *name;
	const char *type;
	uint32_t hook;
	int32_t prio;
};

/*
 * DNAT at dstnat (-100) runs before filter (0) on the same hook, so a
 * served packet reaches the filter chains with its backend address and
 * only unserved service addresses are refused there.
 */
static const struct base_chain nat_prerouting = { "nat-prerouting", "nat", NF_INET_PRE_ROUTING,
						  NFT_PRIO_DSTNAT };
static const struct base_chain nat_output = { "nat-output", "nat", NF_INET_LOCAL_OUT,
					      NFT_PRIO_DSTNAT };
/* Regular chains: nat-output's NodePorts, after the one fib lookup (nat_output_rules). */
#define NFT_NAT_OUTPUT_NODEPORTS4 "nat-output-nodeports4"
#define NFT_NAT_OUTPUT_NODEPORTS6 "nat-output-nodeports6"

static const struct base_chain nat_postrouting = { "nat-postrouting", "nat", NF_INET_POST_ROUTING,
						   NFT_PRIO_SRCNAT };

/* loadBalancerSourceRanges: checked before DNAT, while the packet carries the LB address. */
static const struct base_chain firewall_chains[] = {
	{ "filter-prerouting", "filter", NF_INET_PRE_ROUTING, NFT_PRIO_DSTNAT - 10 },
	{ "filter-output-pre-dnat", "filter", NF_INET_LOCAL_OUT, NFT_PRIO_DSTNAT - 10 },
};

static const struct base_chain filter_chains[] = {
	{ "filter-input", "filter", NF_INET_LOCAL_IN, NFT_PRIO_FILTER },
	{ "filter-forward", "filter", NF_INET_FORWARD, NFT_PRIO_FILTER },
	{ "filter-output", "filter", NF_INET_LOCAL_OUT, NFT_PRIO_FILTER },
};

static void base_chain_add(struct nft_batch *b, const struct base_chain *bc)
{
	struct nft_msg_ref ref = { .what = NFT_WHAT_BASE_CHAIN };
	struct nftnl_chain *c = nft_chain_new(bc->name);

	nftnl_chain_set_str(c, NFTNL_CHAIN_TYPE, bc->type);
	nftnl_chain_set_u32(c, NFTNL_CHAIN_HOOKNUM, bc->hook);
	nftnl_chain_set_s32(c, NFTNL_CHAIN_PRIO, bc->prio);
	nftnl_chain_set_u32(c, NFTNL_CHAIN_POLICY, NF_ACCEPT);
	nft_chain_msg(b, c, NFT_MSG_NEWCHAIN, NLM_F_CREATE, &ref);
}

/* ---- rules ---- */

/*
 * nat-prerouting: ip daddr . meta l4proto . th dport vmap @services4 (and the v6
 * twin), then for the node's own addresses that NodePorts answer on
 * fib daddr type local ip daddr @nodeport-addrs4 ip daddr != 127.0.0.0/8
 * meta l4proto . th dport vmap @nodeports4:
 * a frontend on a specific address wins over a NodePort, as in kube-proxy.
 */
static void nat_lookup_rules(struct nft_batch *b, const char *chain, bool v6)
{
	struct nft_msg_ref ref = { .what = NFT_WHAT_BASE_RULE };
	struct nftnl_rule *r = nft_rule_new(chain);
	const char *map = nft_set_name(v6 ? NFT_SET_SERVICES6 : NFT_SET_SERVICES4);

	nft_expr_frontend_key(r, v6, true);
	nft_expr_lookup(r, NFT_REG_1, map, 0, true, NFT_REG_VERDICT);
	nft_rule_msg(b, r, &ref);
	r = nft_rule_new(chain);
	map = nft_set_name(v6 ? NFT_SET_NODEPORTS6 : NFT_SET_NODEPORTS4);
	nft_expr_node_port_key(
		r, v6, true, nft_set_name(v6 ? NFT_SET_NODEPORT_ADDRS6 : NFT_SET_NODEPORT_ADDRS4));
	nft_expr_lookup(r, NFT_REG_1, map, 0, true, NFT_REG_VERDICT);
	nft_rule_msg(b, r, &ref);
}

/*
 * nat-output: traffic born on the node. Frontends with a node chain first
 * (node-services4, then services4); NodePorts on the node's addresses go to
 * nat-output-nodeports4, which tries node-nodeports4 before nodeports4, so
 * the route lookup is paid once:
 *   ip daddr . meta l4proto . th dport vmap @node-services4
 *   ip daddr . meta l4proto . th dport vmap @services4
 *   fib daddr type local ip daddr @nodeport-addrs4 ip daddr != 127.0.0.0/8
 *     goto nat-output-nodeports4
 * A frontend without a node chain costs one more hash lookup per new
 * connection born on the node, whatever the number of Services.
 */
static void nat_output_rules(struct nft_batch *b, bool v6)
{
	struct nft_msg_ref ref = { .what = NFT_WHAT_BASE_RULE };
	const char *sub = v6 ? NFT_NAT_OUTPUT_NODEPORTS6 : NFT_NAT_OUTPUT_NODEPORTS4;
	const enum nft_named_set maps[] = {
		v6 ? NFT_SET_NODE_SERVICES6 : NFT_SET_NODE_SERVICES4,
		v6 ? NFT_SET_SERVICES6 : NFT_SET_SERVICES4,
	};
	struct nftnl_rule *r;

	for (size_t i = 0; i < 2; i++) {
		r = nft_rule_new(nat_output.name);
		nft_expr_frontend_key(r, v6, true);
		nft_expr_lookup(r, NFT_REG_1, nft_set_name(maps[i]), 0, true, NFT_REG_VERDICT);
		nft_rule_msg(b, r, &ref);
	}
	r = nft_rule_new(nat_output.name);
	nft_expr_node_addr(r, v6, true,
			   nft_set_name(v6 ? NFT_SET_NODEPORT_ADDRS6 : NFT_SET_NODEPORT_ADDRS4));
	nft_expr_goto(r, sub);
	nft_rule_msg(b, r, &ref);
}

/* nat-output-nodeports4: meta l4proto . th dport vmap @node-nodeports4, then @nodeports4. */
static void nat_output_node_ports_chain(struct nft_batch *b, bool v6)
{
	struct nft_msg_ref ref = { .what = NFT_WHAT_BASE_CHAIN };
	const char *sub = v6 ? NFT_NAT_OUTPUT_NODEPORTS6 : NFT_NAT_OUTPUT_NODEPORTS4;
	const enum nft_named_set maps[] = {
		v6 ? NFT_SET_NODE_NODEPORTS6 : NFT_SET_NODE_NODEPORTS4,
		v6 ? NFT_SET_NODEPORTS6 : NFT_SET_NODEPORTS4,
	};

	nft_chain_msg(b, nft_chain_new(sub), NFT_MSG_NEWCHAIN, NLM_F_CREATE, &ref);
	ref.what = NFT_WHAT_BASE_RULE;
	for (size_t i = 0; i < 2; i++) {
		struct nftnl_rule *r = nft_rule_new(sub);

		nft_expr_proto_port_key(r);
		nft_expr_lookup(r, NFT_REG_1, nft_set_name(maps[i]), 0, true, NFT_REG_VERDICT);
		nft_rule_msg(b, r, &ref);
	}
}

/*
 * nat-postrouting: meta mark & 0x4000 != 0 meta mark set meta mark & ~0xc000
 * masquerade fully-random. The bit is cleared so it does not leak into
 * whatever handles the packet next (tunnels, policy routing).
 */
static void masquerade_rule(struct nft_batch *b, const char *chain)
{
	struct nft_msg_ref ref = { .what = NFT_WHAT_BASE_RULE };
	struct nftnl_rule *r = nft_rule_new(chain);

	nft_expr_mark_has(r, NFT_MASQ_MARK);
	nft_expr_mark_update(r, ~(NFT_MASQ_MARK | NFT_SHIFT_MARK), 0);
	nft_expr_masquerade(r);
	nft_rule_msg(b, r, &ref);
}

/*
 * nat-postrouting, after the masquerade rule, per family: meta nfproto ipv4
 * meta mark & 0x8000 != 0 meta mark set meta mark & ~0x8000 snat ip to ip
 * saddr : LO-HI (each port shifted, nft_port_shift.h says why). The bit is
 * set by the DNAT rules of TCP frontends; without a range it is only cleared.
 */
static void port_shift_rule(struct nft_batch *b, const char *chain,
			    const struct nft_port_shift *shift, bool v6)
{
	struct nft_msg_ref ref = { .what = NFT_WHAT_BASE_RULE };
	struct nftnl_rule *r = nft_rule_new(chain);

	nft_expr_meta(r, NFT_META_NFPROTO, NFT_REG_1);
	nft_expr_cmp_u8(r, NFT_REG_1, v6 ? NFPROTO_IPV6 : NFPROTO_IPV4);
	nft_expr_mark_has(r, NFT_SHIFT_MARK);
	nft_expr_mark_update(r, ~NFT_SHIFT_MARK, 0);
	if (shift && shift->hi)
		nft_expr_snat_port_shift(r, v6, shift->lo, shift->hi);
	nft_rule_msg(b, r, &ref);
}

/*
 * filter-prerouting / filter-output-pre-dnat, before DNAT (the packet still
 * carries the LB address): ct state new ip daddr . meta l4proto . th dport
 * vmap @firewall-ips4. As kube-proxy, only new flows are checked: flows
 * admitted before a range change keep going.
 */
static void firewall_lookup_rule(struct nft_batch *b, const char *chain, bool v6)
{
	struct nft_msg_ref ref = { .what = NFT_WHAT_BASE_RULE };
	struct nftnl_rule *r = nft_rule_new(chain);
	const char *map = nft_set_name(v6 ? NFT_SET_FIREWALL6 : NFT_SET_FIREWALL4);

	nft_expr_ct_state_new(r);
	nft_expr_frontend_key(r, v6, true);
	nft_expr_lookup(r, NFT_REG_1, map, 0, true, NFT_REG_VERDICT);
	nft_rule_msg(b, r, &ref);
}

/*
 * NodePorts without endpoints: [ct state new fib daddr type local] ip daddr
 * @nodeport-addrs4 ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap
 * @no-endpoint-nodeports4.
 * filter-input needs no fib (every packet there is for this node);
 * filter-output checks new flows only, to pay the route lookup once.
 */
static void node_port_filter_rule(struct nft_batch *b, const char *chain, bool v6, bool output)
{
	struct nft_msg_ref ref = { .what = NFT_WHAT_BASE_RULE };
	struct nftnl_rule *r = nft_rule_new(chain);
	const char *map =
		nft_set_name(v6 ? NFT_SET_NO_ENDPOINT_NODEPORTS6 : NFT_SET_NO_ENDPOINT_NODEPORTS4);

	if (output)
		nft_expr_ct_state_new(r);
	nft_expr_node_port_key(r, v6, output,
			       nft_set_name(v6 ? NFT_SET_NODEPORT_ADDRS6 :
						 NFT_SET_NODEPORT_ADDRS4));
	nft_expr_lookup(r, NFT_REG_1, map, 0, true, NFT_REG_VERDICT);
	nft_rule_msg(b, r, &ref);
}

/*
 * filter-*: frontends without endpoints get their verdict from
 * no-endpoints; any other packet still addressed to a service address
 * (an unknown port: served ones were DNATed before) is rejected.
 */
static void filter_rules(struct nft_batch *b, const char *chain, bool v6)
{
	struct nft_msg_ref ref = { .what = NFT_WHAT_BASE_RULE };
	struct nftnl_rule *r = nft_rule_new(chain);

	nft_expr_frontend_key(r, v6, true);
	nft_expr_lookup(r, NFT_REG_1,
			nft_set_name(v6 ? NFT_SET_NO_ENDPOINTS6 : NFT_SET_NO_ENDPOINTS4), 0, true,
			NFT_REG_VERDICT);
	nft_rule_msg(b, r, &ref);
	r = nft_rule_new(chain);
	nft_expr_frontend_key(r, v6, false);
	nft_expr_lookup(r, NFT_REG_1, nft_set_name(v6 ? NFT_SET_ADDRS6 : NFT_SET_ADDRS4), 0, false,
			0);
	nft_expr_goto(r, NFT_REJECT_CHAIN);
	nft_rule_msg(b, r, &ref);
}

/* reject-chain: meta l4proto tcp reject with tcp reset; reject (icmpx port-unreachable). */
static void reject_chain(struct nft_batch *b)
{
	struct nft_msg_ref ref = { .what = NFT_WHAT_BASE_CHAIN };
	struct nftnl_rule *r;

	nft_chain_msg(b, nft_chain_new(NFT_REJECT_CHAIN), NFT_MSG_NEWCHAIN, NLM_F_CREATE, &ref);
	ref.what = NFT_WHAT_BASE_RULE;
	r = nft_rule_new(NFT_REJECT_CHAIN);
	nft_expr_meta(r, NFT_META_L4PROTO, NFT_REG_1);
	nft_expr_cmp_u8(r, NFT_REG_1, IPPROTO_TCP);
	nft_expr_reject(r, NFT_REJECT_TCP_RST, 0);
	nft_rule_msg(b, r, &ref);
	r = nft_rule_new(NFT_REJECT_CHAIN);
	nft_expr_reject(r, NFT_REJECT_ICMPX_UNREACH, NFT_REJECT_ICMPX_PORT_UNREACH);
	nft_rule_msg(b, r, &ref);
}

/* ---- sets ---- */

static void named_set_add(struct nft_batch *b, enum nft_named_set which)
{
	struct nft_msg_ref ref = { .what = NFT_WHAT_SET_ADD, .set = which };
	bool v6 = named_sets[which].v6;
	bool is_map = named_sets[which].is_map;
	uint32_t addr_type = v6 ? NFT_TYPE_IP6ADDR : NFT_TYPE_IPADDR;
	struct nftnl_set *s = nft_set_new(nft_set_name(which), ++b->set_id);

	if (is_map && named_sets[which].key == NFT_KEY_PROTO_PORT) {
		nftnl_set_set_u32(s, NFTNL_SET_FLAGS, NFT_SET_MAP);
		nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE,
				  NFT_CONCAT2(NFT_TYPE_INET_PROTOCOL, NFT_TYPE_INET_SERVICE));
		nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, NFT_KEY_LEN_NODE_PORT);
		nftnl_set_set_u32(s, NFTNL_SET_DATA_TYPE, NFT_DATA_VERDICT);
		nftnl_set_set_u32(s, NFTNL_SET_DATA_LEN, 0);
	} else if (is_map) {
		nftnl_set_set_u32(s, NFTNL_SET_FLAGS, NFT_SET_MAP);
		nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE,
				  NFT_CONCAT3(addr_type, NFT_TYPE_INET_PROTOCOL,
					      NFT_TYPE_INET_SERVICE));
		nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, v6 ? NFT_KEY_LEN6 : NFT_KEY_LEN4);
		nftnl_set_set_u32(s, NFTNL_SET_DATA_TYPE, NFT_DATA_VERDICT);
		nftnl_set_set_u32(s, NFTNL_SET_DATA_LEN, 0);
	} else {
		nftnl_set_set_u32(s, NFTNL_SET_FLAGS,
				  named_sets[which].interval ? NFT_SET_INTERVAL : 0);
		nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE, addr_type);
		nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, v6 ? 16 : 4);
	}
	nft_set_msg(b, s, NFT_MSG_NEWSET, NLM_F_CREATE, &ref);
}

/*
 * backends4/6-N: a 32-bit host-order index (numgen's value) -> address . port.
 * Not constant: ranges come and go with incremental updates. A named map
 * is bound by reference, so adding thousands of rules that look it up costs
 * no walk of the transaction per rule (an anonymous map per rule did).
 */
unsigned int nft_backend_shards_for(size_t n)
{
	unsigned int s = NFT_BACKEND_SHARDS_MIN;

	while (s < NFT_BACKEND_SHARDS_MAX && (size_t)s * 128 < n)
		s *= 2;
	return s;
}

unsigned int nft_fe_backend_shard(const struct frontend_key *key, unsigned int n_shards)
{
	size_t alen = key->addr.family == AF_INET6 ? 16 : 4;
	uint32_t h = 2166136261u; /* FNV-1a of address, protocol, port */

	for (size_t i = 0; i < alen; i++)
		h = (h ^ key->addr.bytes[i]) * 16777619u;
	h = (h ^ key->proto) * 16777619u;
	h = (h ^ (key->port >> 8)) * 16777619u;
	h = (h ^ (key->port & 0xff)) * 16777619u;
	return h % n_shards;
}

void nft_backends_map_name(bool v6, unsigned int shard, char *buf, size_t len)
{
	snprintf(buf, len, "%s-%u", v6 ? NFT_BACKENDS6 : NFT_BACKENDS4, shard);
}

static void backends_map_add(struct nft_batch *b, bool v6, unsigned int shard)
{
	struct nft_msg_ref ref = { .what = NFT_WHAT_BACKENDS_MAP_ADD, .set = v6 };
	struct nftnl_udata_buf *udata = xcheck(nftnl_udata_buf_alloc(64));
	char name[NFT_BACKENDS_NAME_MAX];
	struct nftnl_set *s;

	nft_backends_map_name(v6, shard, name, sizeof(name));
	s = nft_set_new(name, ++b->set_id);
	nftnl_set_set_u32(s, NFTNL_SET_FLAGS, NFT_SET_MAP);
	/* "integer" alone has no width for nft to print a named map with: 0 : ... */
	nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE, NFT_TYPE_MARK);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, sizeof(uint32_t));
	nftnl_set_set_u32(s, NFTNL_SET_DATA_TYPE,
			  NFT_CONCAT2(v6 ? NFT_TYPE_IP6ADDR : NFT_TYPE_IPADDR,
				      NFT_TYPE_INET_SERVICE));
	nftnl_set_set_u32(s, NFTNL_SET_DATA_LEN, v6 ? NFT_ENDPOINT_LEN6 : NFT_ENDPOINT_LEN4);
	/* Tells nft the keys are host order, so it prints 0, 1, 2... */
	nftnl_udata_put_u32(udata, NFTNL_UDATA_SET_KEYBYTEORDER, NFT_BYTEORDER_HOST);
	nftnl_set_set_data(s, NFTNL_SET_USERDATA, nftnl_udata_buf_data(udata),
			   nftnl_udata_buf_len(udata));
	nft_set_msg(b, s, NFT_MSG_NEWSET, NLM_F_CREATE, &ref);
	nftnl_udata_buf_free(udata);
}

/* ---- the skeleton ---- */

void nft_msg_base_chains(struct nft_batch *b, const struct nft_port_shift *shift)
{
	for (size_t i = 0; i < sizeof(firewall_chains) / sizeof(firewall_chains[0]); i++) {
		base_chain_add(b, &firewall_chains[i]);
		firewall_lookup_rule(b, firewall_chains[i].name, false);
		firewall_lookup_rule(b, firewall_chains[i].name, true);
	}
	base_chain_add(b, &nat_prerouting);
	nat_lookup_rules(b, nat_prerouting.name, false);
	nat_lookup_rules(b, nat_prerouting.name, true);
	nat_output_node_ports_chain(b, false);
	nat_output_node_ports_chain(b, true);
	base_chain_add(b, &nat_output);
	nat_output_rules(b, false);
	nat_output_rules(b, true);
	base_chain_add(b, &nat_postrouting);
	masquerade_rule(b, nat_postrouting.name);
	port_shift_rule(b, nat_postrouting.name, shift, false);
	port_shift_rule(b, nat_postrouting.name, shift, true);
	for (size_t i = 0; i < sizeof(filter_chains) / sizeof(filter_chains[0]); i++) {
		const struct base_chain *fc = &filter_chains[i];

		base_chain_add(b, fc);
		filter_rules(b, fc->name, false);
		filter_rules(b, fc->name, true);
		if (fc->hook == NF_INET_LOCAL_IN || fc->hook == NF_INET_LOCAL_OUT) {
			node_port_filter_rule(b, fc->name, false, fc->hook == NF_INET_LOCAL_OUT);
			node_port_filter_rule(b, fc->name, true, fc->hook == NF_INET_LOCAL_OUT);
		}
	}
}

void nft_msg_skeleton(struct nft_batch *b, const struct nft_port_shift *shift,
		      unsigned int n_shards)
{
	for (int i = 0; i < NFT_NAMED_SETS; i++)
		named_set_add(b, i);
	/* v4 first: the kernel finds a map by name from the head of a list. */
	for (unsigned int shard = 0; shard < n_shards; shard++)
		backends_map_add(b, false, shard);
	for (unsigned int shard = 0; shard < n_shards; shard++)
		backends_map_add(b, true, shard);
	reject_chain(b);
	nft_msg_base_chains(b, shift);
}
