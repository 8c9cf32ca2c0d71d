// SPDX-License-Identifier: Apache-2.0
/*
 * A served frontend's messages: its chain, its rules (rate-limit jump,
 * masquerade mark, then the DNAT through its range of the backends map, or
 * with session affinity the client lookups and the endpoint pick), its
 * elements of the backends map, its endpoint chains and client sets, and
 * the names of all of these.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netlink.h>
#include <libnftnl/set.h>
#include <libnftnl/udata.h>

#include "lib/xalloc.h"
#include "core/maglev.h"
#include "core/model.h"
#include "datapath/nft/nft_batch.h"
#include "datapath/nft/nft_classify.h"
#include "datapath/nft/nft_expr.h"
#include "datapath/nft/nft_frontend.h"
#include "datapath/nft/nft_ratelimit.h"
#include "datapath/nft/nft_skeleton.h"

/* Most clients one endpoint remembers; a full set only stops refreshing, the DNAT still runs. */
#define NFT_AFFINITY_SET_SIZE 65536

/* ---- names ---- */

_Static_assert(IP_ADDR_STRLEN - 1 <= NFT_ADDR_TEXT_MAX, "an address text fits its bound");
_Static_assert(NFT_FE_OUT_NAME_LEN < NFT_CHAIN_NAME_MAX && NFT_EP_NAME_LEN < NFT_EP_NAME_MAX,
	       "the name buffers hold the longest names");
_Static_assert(NFT_FE_OUT_NAME_LEN <= NFT_CHAIN_MAXNAMELEN - 1 &&
		       NFT_EP_NAME_LEN <= NFT_CHAIN_MAXNAMELEN - 1 &&
		       NFT_EP_NAME_LEN <= NFT_SET_MAXNAMELEN - 1,
	       "frontend and endpoint names fit the kernel's limits");

static const char *proto_name(uint8_t proto, char *buf, size_t len)
{
	const char *name = l4_proto_name(proto);

	if (name)
		return name;
	snprintf(buf, len, "p%u", proto);
	return buf;
}

void nft_fe_side_chain_name(const struct frontend_key *key, enum nft_side side, char *buf,
			    size_t len)
{
	char addr[IP_ADDR_STRLEN], proto[8];

	/* ':' is not allowed in an unquoted nft identifier, '-' separates fields. */
	if (key->proto && nft_addr_unspecified(&key->addr))
		snprintf(addr, sizeof(addr), "nodeport%c", key->addr.family == AF_INET ? '4' : '6');
	else
		ip_addr_format(&key->addr, addr);
	for (char *c = addr; *c; c++)
		if (*c == ':')
			*c = '_';
	snprintf(buf, len, "fe-%s%s-%s-%u", side == NFT_SIDE_NODE ? "out-" : "", addr,
		 proto_name(key->proto, proto, sizeof(proto)), key->port);
}

void nft_fe_chain_name(const struct frontend_key *key, char *buf, size_t len)
{
	nft_fe_side_chain_name(key, NFT_SIDE_MAIN, buf, len);
}

void nft_fe_key_text(const struct frontend_key *key, char *buf, size_t len)
{
	char addr[IP_ADDR_STRLEN], proto[8];

	ip_addr_format(&key->addr, addr);
	if (key->proto == 0 && key->port == 0)
		snprintf(buf, len, "%s (service address)", addr);
	else if (nft_addr_unspecified(&key->addr))
		snprintf(buf, len, "nodePort %s/%u (IPv%c)",
			 proto_name(key->proto, proto, sizeof(proto)), key->port,
			 key->addr.family == AF_INET ? '4' : '6');
	else
		snprintf(buf, len, "%s %s/%u", addr, proto_name(key->proto, proto, sizeof(proto)),
			 key->port);
}

const char *nft_fe_unnameable(const struct frontend *fe)
{
	/* Names from the key always fit (the bounds above); the Service key is checked. */
	if (nft_fe_has_rate(fe) && !nft_svc_nameable(fe->service))
		return "its rate-limit objects cannot be named (the namespace and the name must "
		       "each be 1-63 of [a-z0-9-])";
	return NULL;
}

static void ep_name(const char *prefix, const struct frontend_key *key, enum nft_side side,
		    const struct backend *be, char *buf, size_t len)
{
	char fe[NFT_CHAIN_NAME_MAX], addr[IP_ADDR_STRLEN];

	nft_fe_side_chain_name(key, side, fe, sizeof(fe));
	ip_addr_format(&be->addr, addr);
	for (char *c = addr; *c; c++)
		if (*c == ':')
			*c = '_';
	/* fe + 3 skips "fe-": ep-10.96.0.10-tcp-80-10.1.0.1-8080 */
	snprintf(buf, len, "%s-%s-%s-%u", prefix, fe + 3, addr, be->port);
}

void nft_ep_chain_name(const struct frontend_key *key, enum nft_side side, const struct backend *be,
		       char *buf, size_t len)
{
	ep_name("ep", key, side, be, buf, len);
}

void nft_ep_set_name(const struct frontend_key *key, enum nft_side side, const struct backend *be,
		     char *buf, size_t len)
{
	ep_name("aff", key, side, be, buf, len);
}

/* ---- the frontend's chain ---- */

static void fe_chain_msg(struct nft_batch *b, const struct frontend_key *key, enum nft_side side,
			 uint16_t type, uint16_t flags, uint8_t what)
{
	struct nft_msg_ref ref = { .what = what, .side = side, .has_key = true, .key = *key };
	char name[NFT_CHAIN_NAME_MAX];

	nft_fe_side_chain_name(key, side, name, sizeof(name));
	nft_chain_msg(b, nft_chain_new(name), type, flags, &ref);
}

void nft_msg_fe_chain_add(struct nft_batch *b, const struct frontend_key *key, enum nft_side side)
{
	/* EXCL: a chain already there means our view of the kernel is wrong; fail loudly. */
	fe_chain_msg(b, key, side, NFT_MSG_NEWCHAIN, NLM_F_CREATE | NLM_F_EXCL,
		     NFT_WHAT_FE_CHAIN_ADD);
}

void nft_msg_fe_chain_del(struct nft_batch *b, const struct frontend_key *key, enum nft_side side)
{
	/* Deleting a chain deletes its rules (and with them the anonymous backend map). */
	fe_chain_msg(b, key, side, NFT_MSG_DELCHAIN, 0, NFT_WHAT_FE_CHAIN_DEL);
}

void nft_msg_fe_chain_flush(struct nft_batch *b, const struct frontend_key *key, enum nft_side side)
{
	struct nft_msg_ref ref = {
		.what = NFT_WHAT_FE_CHAIN_FLUSH, .side = side, .has_key = true, .key = *key
	};
	char name[NFT_CHAIN_NAME_MAX];

	nft_fe_side_chain_name(key, side, name, sizeof(name));
	nft_rule_flush_msg(b, name, &ref);
}

/* ---- a served frontend's DNAT rule and backends ---- */

/* Writes one backend as the anonymous map's data: address . port, each field 4-byte padded. */
static size_t endpoint_data(const struct backend *be, uint8_t *out)
{
	size_t alen = be->addr.family == AF_INET ? 4 : 16;
	uint16_t port = htons(be->port);

	memset(out, 0, alen + 4);
	memcpy(out, be->addr.bytes, alen);
	memcpy(out + alen, &port, sizeof(port));
	return alen + 4;
}

void nft_backends_pack_flush(struct nft_batch *b, struct nft_backends_pack *p)
{
	if (!p->chunk)
		return;
	if (p->ref.count)
		nft_elems_msg(b, p->chunk, p->msg_type, &p->ref);
	nftnl_set_free(p->chunk);
	p->chunk = NULL;
}

void nft_backends_pack(struct nft_batch *b, struct nft_backends_pack *p, uint16_t msg_type,
		       const struct frontend *fe, enum nft_side side, uint32_t base)
{
	bool v6 = fe->key.addr.family == AF_INET6;
	unsigned int shard = nft_fe_backend_shard(&fe->key, b->n_shards);
	uint32_t index = base;

	if (p->chunk && (p->msg_type != msg_type || p->v6 != v6 || p->ref.shard != shard))
		nft_backends_pack_flush(b, p);
	for (size_t i = 0; i < fe->n_backends && !b->err; i++) {
		const struct backend *be = &fe->backends[i];
		struct nftnl_set_elem *e;
		uint8_t data[NFT_ENDPOINT_LEN6];
		char map[NFT_BACKENDS_NAME_MAX];

		if (be->addr.family != fe->key.addr.family)
			continue;
		if (!p->chunk) {
			nft_backends_map_name(v6, shard, map, sizeof(map));
			p->chunk = nft_set_new(map, 0);
			p->msg_type = msg_type;
			p->v6 = v6;
			/* A failure names the message's first frontend. */
			p->ref = (struct nft_msg_ref){
				.what = msg_type == NFT_MSG_NEWSETELEM ? NFT_WHAT_BACKENDS_ADD :
									 NFT_WHAT_BACKENDS_DEL,
				.side = side,
				.has_key = true,
				.shard = shard,
				.key = fe->key,
			};
		}
		e = xcheck(nftnl_set_elem_alloc());
		nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, &index, sizeof(index));
		/* A delete names the key only. */
		if (msg_type == NFT_MSG_NEWSETELEM)
			nftnl_set_elem_set(e, NFTNL_SET_ELEM_DATA, data, endpoint_data(be, data));
		nftnl_set_elem_add(p->chunk, e);
		index++;
		if (++p->ref.count == NFT_ELEMS_PER_MSG)
			nft_backends_pack_flush(b, p);
	}
}

void nft_msg_fe_backends(struct nft_batch *b, uint16_t msg_type, const struct frontend *fe,
			 enum nft_side side, uint32_t base)
{
	struct nft_backends_pack p = { 0 };

	nft_backends_pack(b, &p, msg_type, fe, side, base);
	nft_backends_pack_flush(b, &p);
}

/* TCP: nat-postrouting moves the client port out of the ephemeral range (nft_port_shift.h). */
static void mark_for_port_shift(struct nftnl_rule *r, const struct frontend *fe)
{
	if (fe->key.proto == PROTO_TCP)
		nft_expr_mark_update(r, ~NFT_SHIFT_MARK, NFT_SHIFT_MARK);
}

/*
 * sluice.io/lb-algorithm maglev: jhash(ip saddr . th sport) with a fixed
 * seed picks one of the table's buckets (core/maglev.c over the usable
 * backends), an anonymous constant map of bucket -> address . port, built
 * whole with the rule in one transaction. Every node of this datapath, and
 * a restarted agent, hashes a flow alike; BPF's tc path uses another hash.
 */
#define NFT_MAGLEV_SEED 0x51ce5eedu

static void fe_maglev_dnat_rule(struct nft_batch *b, const struct frontend *fe, const char *chain)
{
	struct nft_msg_ref ref = {
		.what = NFT_WHAT_FE_RULE, .side = NFT_SIDE_MAIN, .has_key = true, .key = fe->key
	};
	struct nftnl_udata_buf *udata = xcheck(nftnl_udata_buf_alloc(64));
	bool v6 = fe->key.addr.family == AF_INET6;
	uint32_t m = b->maglev_size ? b->maglev_size : MAGLEV_DEFAULT_TABLE_SIZE;
	uint32_t set_id = ++b->set_id, *table = xcalloc(m, sizeof(*table));
	struct backend *usable = xcalloc(fe->n_backends, sizeof(*usable));
	struct nftnl_rule *r;
	struct nftnl_set *s;
	size_t n = 0;
	char map[32];

	for (size_t i = 0; i < fe->n_backends; i++)
		if (fe->backends[i].addr.family == fe->key.addr.family)
			usable[n++] = fe->backends[i];
	maglev_build(usable, n, m, table);
	snprintf(map, sizeof(map), "__map_%u", ++b->map_serial);
	s = nft_set_new(map, set_id);
	nftnl_set_set_u32(s, NFTNL_SET_FLAGS, NFT_SET_ANONYMOUS | NFT_SET_CONSTANT | NFT_SET_MAP);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE, NFT_TYPE_MARK);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, sizeof(uint32_t));
	nftnl_set_set_u32(s, NFTNL_SET_DATA_TYPE,
			  NFT_CONCAT2(v6 ? NFT_TYPE_IP6ADDR : NFT_TYPE_IPADDR,
				      NFT_TYPE_INET_SERVICE));
	nftnl_set_set_u32(s, NFTNL_SET_DATA_LEN, v6 ? NFT_ENDPOINT_LEN6 : NFT_ENDPOINT_LEN4);
	nftnl_set_set_u32(s, NFTNL_SET_DESC_SIZE, m);
	nftnl_udata_put_u32(udata, NFTNL_UDATA_SET_KEYBYTEORDER, NFT_BYTEORDER_HOST);
	nftnl_set_set_data(s, NFTNL_SET_USERDATA, nftnl_udata_buf_data(udata),
			   nftnl_udata_buf_len(udata));
	nftnl_udata_buf_free(udata);
	nft_set_msg(b, s, NFT_MSG_NEWSET, NLM_F_CREATE, &ref);
	for (uint32_t i = 0; i < m && !b->err;) {
		struct nftnl_set *chunk = nft_set_new(map, set_id);
		size_t in_chunk = 0;

		for (; i < m && in_chunk < NFT_ELEMS_PER_MSG; i++, in_chunk++) {
			struct nftnl_set_elem *e = xcheck(nftnl_set_elem_alloc());
			uint8_t data[NFT_ENDPOINT_LEN6];

			nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, &i, sizeof(i));
			nftnl_set_elem_set(e, NFTNL_SET_ELEM_DATA, data,
					   endpoint_data(&usable[table[i]], data));
			nftnl_set_elem_add(chunk, e);
		}
		nft_elems_msg(b, chunk, NFT_MSG_NEWSETELEM, &ref);
		nftnl_set_free(chunk);
	}
	free(table);
	free(usable);

	r = nft_rule_new(chain);
	nft_expr_meta(r, NFT_META_L4PROTO, NFT_REG_1);
	nft_expr_cmp_u8(r, NFT_REG_1, fe->key.proto);
	mark_for_port_shift(r, fe);
	nft_expr_client_jhash(r, v6, NFT_MAGLEV_SEED, m, NFT_REG_1);
	nft_expr_lookup(r, NFT_REG_1, map, set_id, true, NFT_REG_1);
	nft_expr_dnat(r, v6 ? NFPROTO_IPV6 : NFPROTO_IPV4, NFT_REG_1,
		      v6 ? NFT_REG_2 : NFT_REG32_01);
	nft_rule_msg(b, r, &ref);
}

void nft_msg_fe_dnat_rule(struct nft_batch *b, const struct frontend *fe, enum nft_side side,
			  uint32_t base)
{
	struct nft_msg_ref ref = {
		.what = NFT_WHAT_FE_RULE, .side = side, .has_key = true, .key = fe->key
	};
	bool v6 = fe->key.addr.family == AF_INET6;
	size_t n = nft_fe_usable_backends(fe);
	char name[NFT_CHAIN_NAME_MAX], map[NFT_BACKENDS_NAME_MAX];
	struct nftnl_rule *r;

	if (b->err)
		return;
	if (!n) /* callers classify first; a DNAT to nothing must never be written */
		return nft_batch_fail(b, -EINVAL);
	nft_fe_side_chain_name(&fe->key, side, name, sizeof(name));
	/* Traffic from outside (the main chain) of an external kind: by the flow's hash. */
	if (fe->maglev && fe->kind != FE_CLUSTER_IP && side == NFT_SIDE_MAIN)
		return fe_maglev_dnat_rule(b, fe, name);
	nft_backends_map_name(v6, nft_fe_backend_shard(&fe->key, b->n_shards), map, sizeof(map));
	/* Rate limit and affinity rules come before this one: nft_msg_fe_rules. */
	r = nft_rule_new(name);
	/* "meta l4proto P" first: nft accepts a port mapping only after an L4 match. */
	nft_expr_meta(r, NFT_META_L4PROTO, NFT_REG_1);
	nft_expr_cmp_u8(r, NFT_REG_1, fe->key.proto);
	mark_for_port_shift(r, fe);
	nft_expr_numgen_random(r, NFT_REG_1, n, base);
	nft_expr_lookup(r, NFT_REG_1, map, 0, true, NFT_REG_1);
	nft_expr_dnat(r, v6 ? NFPROTO_IPV6 : NFPROTO_IPV4, NFT_REG_1,
		      v6 ? NFT_REG_2 : NFT_REG32_01);
	nft_rule_msg(b, r, &ref);
}

/* ---- session affinity: one chain and one client set per endpoint ---- */

static uint32_t ep_set_msg(struct nft_batch *b, const struct frontend *fe, enum nft_side side,
			   const struct backend *be, bool add)
{
	struct nft_msg_ref ref = { .what = add ? NFT_WHAT_EP_SET_ADD : NFT_WHAT_EP_SET_DEL,
				   .side = side,
				   .has_key = true,
				   .key = fe->key,
				   .backend = *be };
	bool v6 = fe->key.addr.family == AF_INET6;
	char name[NFT_EP_NAME_MAX];
	uint32_t set_id = add ? ++b->set_id : 0;
	struct nftnl_set *s;

	nft_ep_set_name(&fe->key, side, be, name, sizeof(name));
	s = nft_set_new(name, set_id);
	if (add) {
		/* dynamic (updated from the packet path) with per-element expiry */
		nftnl_set_set_u32(s, NFTNL_SET_FLAGS, NFT_SET_TIMEOUT | NFT_SET_EVAL);
		nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE, v6 ? NFT_TYPE_IP6ADDR : NFT_TYPE_IPADDR);
		nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, v6 ? 16 : 4);
		nftnl_set_set_u64(s, NFTNL_SET_TIMEOUT, (uint64_t)fe->affinity_timeout * 1000);
		nftnl_set_set_u32(s, NFTNL_SET_DESC_SIZE, NFT_AFFINITY_SET_SIZE);
	}
	nft_set_msg(b, s, add ? NFT_MSG_NEWSET : NFT_MSG_DELSET,
		    add ? NLM_F_CREATE | NLM_F_EXCL : 0, &ref);
	return set_id;
}

void nft_msg_ep_add(struct nft_batch *b, const struct frontend *fe, enum nft_side side,
		    const struct backend *be)
{
	struct nft_msg_ref ref = { .what = NFT_WHAT_EP_CHAIN_ADD,
				   .side = side,
				   .has_key = true,
				   .key = fe->key,
				   .backend = *be };
	bool v6 = fe->key.addr.family == AF_INET6;
	char chain[NFT_EP_NAME_MAX], set[NFT_EP_NAME_MAX];
	uint8_t addr[16];
	uint16_t port = htons(be->port);
	struct nftnl_rule *r;
	uint32_t set_id;

	if (be->addr.family != fe->key.addr.family)
		return;
	set_id = ep_set_msg(b, fe, side, be, true);
	nft_ep_chain_name(&fe->key, side, be, chain, sizeof(chain));
	nft_ep_set_name(&fe->key, side, be, set, sizeof(set));
	nft_chain_msg(b, nft_chain_new(chain), NFT_MSG_NEWCHAIN, NLM_F_CREATE | NLM_F_EXCL, &ref);

	/* Remember (or refresh) the client, then DNAT: two rules, so a full set still DNATs. */
	ref.what = NFT_WHAT_EP_RULE;
	r = nft_rule_new(chain);
	nft_expr_saddr(r, v6);
	nft_expr_dynset_update(r, NFT_REG_1, set, set_id);
	nft_rule_msg(b, r, &ref);
	memcpy(addr, be->addr.bytes, v6 ? 16 : 4);
	r = nft_rule_new(chain);
	nft_expr_meta(r, NFT_META_L4PROTO, NFT_REG_1);
	nft_expr_cmp_u8(r, NFT_REG_1, fe->key.proto);
	mark_for_port_shift(r, fe);
	nft_expr_immediate(r, NFT_REG_1, addr, v6 ? 16 : 4);
	nft_expr_immediate(r, v6 ? NFT_REG_2 : NFT_REG32_01, &port, sizeof(port));
	nft_expr_dnat(r, v6 ? NFPROTO_IPV6 : NFPROTO_IPV4, NFT_REG_1,
		      v6 ? NFT_REG_2 : NFT_REG32_01);
	nft_rule_msg(b, r, &ref);
}

void nft_msg_ep_del(struct nft_batch *b, const struct frontend *fe, enum nft_side side,
		    const struct backend *be)
{
	struct nft_msg_ref ref = { .what = NFT_WHAT_EP_CHAIN_DEL,
				   .side = side,
				   .has_key = true,
				   .key = fe->key,
				   .backend = *be };
	char chain[NFT_EP_NAME_MAX];

	if (be->addr.family != fe->key.addr.family)
		return;
	/* The chain's update rule holds the set: chain first. */
	nft_ep_chain_name(&fe->key, side, be, chain, sizeof(chain));
	nft_chain_msg(b, nft_chain_new(chain), NFT_MSG_DELCHAIN, 0, &ref);
	ep_set_msg(b, fe, side, be, false);
}

/* numgen random mod N vmap { 0 : goto ep-..., ... }: the anonymous verdict map and the rule. */
static void fe_pick_rule(struct nft_batch *b, const struct frontend *fe, enum nft_side side,
			 const char *fe_chain, size_t n)
{
	struct nft_msg_ref ref = {
		.what = NFT_WHAT_FE_PICK_RULE, .side = side, .has_key = true, .key = fe->key
	};
	struct nftnl_udata_buf *udata = xcheck(nftnl_udata_buf_alloc(64));
	uint32_t set_id = ++b->set_id, index = 0;
	struct nftnl_rule *r;
	struct nftnl_set *s;
	char map[32];

	snprintf(map, sizeof(map), "__map_%u", ++b->map_serial);
	s = nft_set_new(map, set_id);
	nftnl_set_set_u32(s, NFTNL_SET_FLAGS, NFT_SET_ANONYMOUS | NFT_SET_CONSTANT | NFT_SET_MAP);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE, NFT_TYPE_INTEGER);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, sizeof(uint32_t));
	nftnl_set_set_u32(s, NFTNL_SET_DATA_TYPE, NFT_DATA_VERDICT);
	nftnl_set_set_u32(s, NFTNL_SET_DATA_LEN, 0);
	nftnl_set_set_u32(s, NFTNL_SET_DESC_SIZE, n);
	nftnl_udata_put_u32(udata, NFTNL_UDATA_SET_KEYBYTEORDER, NFT_BYTEORDER_HOST);
	nftnl_set_set_data(s, NFTNL_SET_USERDATA, nftnl_udata_buf_data(udata),
			   nftnl_udata_buf_len(udata));
	nftnl_udata_buf_free(udata);
	nft_set_msg(b, s, NFT_MSG_NEWSET, NLM_F_CREATE, &ref);

	for (size_t i = 0; i < fe->n_backends && !b->err;) {
		struct nftnl_set *chunk = nft_set_new(map, set_id);
		size_t in_chunk = 0;

		for (; i < fe->n_backends && in_chunk < NFT_ELEMS_PER_MSG; i++) {
			struct nftnl_set_elem *e;
			char ep[NFT_EP_NAME_MAX];

			if (fe->backends[i].addr.family != fe->key.addr.family)
				continue;
			e = xcheck(nftnl_set_elem_alloc());
			nft_ep_chain_name(&fe->key, side, &fe->backends[i], ep, sizeof(ep));
			nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, &index, sizeof(index));
			nftnl_set_elem_set_u32(e, NFTNL_SET_ELEM_VERDICT, NFT_GOTO);
			nftnl_set_elem_set_str(e, NFTNL_SET_ELEM_CHAIN, ep);
			nftnl_set_elem_add(chunk, e);
			index++;
			in_chunk++;
		}
		if (in_chunk)
			nft_elems_msg(b, chunk, NFT_MSG_NEWSETELEM, &ref);
		nftnl_set_free(chunk);
	}

	r = nft_rule_new(fe_chain);
	nft_expr_numgen_random(r, NFT_REG_1, n, 0);
	nft_expr_lookup(r, NFT_REG_1, map, set_id, true, NFT_REG_VERDICT);
	nft_rule_msg(b, r, &ref);
}

/* ---- every rule of the frontend's chain ---- */

void nft_msg_fe_rules(struct nft_batch *b, const struct frontend *fe, enum nft_side side,
		      uint32_t base)
{
	struct nft_msg_ref ref = { .side = side, .has_key = true, .key = fe->key };
	bool v6 = fe->key.addr.family == AF_INET6;
	size_t n = nft_fe_usable_backends(fe);
	char name[NFT_CHAIN_NAME_MAX];
	struct nftnl_rule *r;

	if (b->err)
		return;
	if (!n)
		return nft_batch_fail(b, -EINVAL);
	nft_fe_side_chain_name(&fe->key, side, name, sizeof(name));
	if (nft_fe_has_rate(fe)) {
		char svc[NFT_OBJ_NAME_MAX];

		/* New flows only: the bucket counts connections, not packets. */
		ref.what = NFT_WHAT_FE_LIMIT_RULE;
		if (!nft_svc_name(NFT_SVC_CHAIN, fe->service, svc, sizeof(svc)))
			return nft_batch_fail(b, -ENAMETOOLONG);
		r = nft_rule_new(name);
		nft_expr_ct_state_new(r);
		nft_expr_verdict(r, NFT_JUMP, svc);
		nft_rule_msg(b, r, &ref);
	}
	if (nft_fe_masquerades(fe)) {
		/* Policy Cluster, or a node chain: nat-postrouting masquerades the flow. */
		ref.what = NFT_WHAT_FE_MASQ_RULE;
		r = nft_rule_new(name);
		nft_expr_mark_update(r, ~NFT_MASQ_MARK, NFT_MASQ_MARK);
		nft_rule_msg(b, r, &ref);
	}
	if (!nft_fe_has_affinity(fe))
		return nft_msg_fe_dnat_rule(b, fe, side, base);
	/* A known client goes back to its endpoint, as long as that endpoint is listed. */
	ref.what = NFT_WHAT_FE_AFFINITY_RULE;
	for (size_t i = 0; i < fe->n_backends; i++) {
		char set[NFT_EP_NAME_MAX], ep[NFT_EP_NAME_MAX];

		if (fe->backends[i].addr.family != fe->key.addr.family)
			continue;
		nft_ep_set_name(&fe->key, side, &fe->backends[i], set, sizeof(set));
		nft_ep_chain_name(&fe->key, side, &fe->backends[i], ep, sizeof(ep));
		r = nft_rule_new(name);
		nft_expr_saddr(r, v6);
		nft_expr_lookup(r, NFT_REG_1, set, 0, false, 0);
		nft_expr_goto(r, ep);
		nft_rule_msg(b, r, &ref);
	}
	fe_pick_rule(b, fe, side, name, n);
}
