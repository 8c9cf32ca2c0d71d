// SPDX-License-Identifier: Apache-2.0
/*
 * The elements of the table's named sets: each frontend's key in the set
 * its class puts it in (with its verdict in a map), queued per set and
 * written NFT_ELEMS_PER_MSG per message.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <libnftnl/set.h>

#include "lib/xalloc.h"
#include "datapath/nft/nft_batch.h"
#include "datapath/nft/nft_classify.h"
#include "datapath/nft/nft_elems.h"
#include "datapath/nft/nft_expr.h"
#include "datapath/nft/nft_firewall.h"
#include "datapath/nft/nft_frontend.h"
#include "datapath/nft/nft_ratelimit.h"
#include "datapath/nft/nft_skeleton.h"

static int fe_named_set(const struct frontend *fe, enum nft_fe_class cls)
{
	bool v6 = fe->key.addr.family == AF_INET6;
	bool np = nft_fe_is_node_port(fe);

	switch (cls) {
	case NFT_FE_MARKER:
		return v6 ? NFT_SET_ADDRS6 : NFT_SET_ADDRS4;
	case NFT_FE_SERVE:
		if (np)
			return v6 ? NFT_SET_NODEPORTS6 : NFT_SET_NODEPORTS4;
		return v6 ? NFT_SET_SERVICES6 : NFT_SET_SERVICES4;
	case NFT_FE_REFUSE:
	case NFT_FE_DROP:
		if (np)
			return v6 ? NFT_SET_NO_ENDPOINT_NODEPORTS6 : NFT_SET_NO_ENDPOINT_NODEPORTS4;
		return v6 ? NFT_SET_NO_ENDPOINTS6 : NFT_SET_NO_ENDPOINTS4;
	default:
		return -1;
	}
}

/*
 * The element key of a frontend in set which: addr . proto . port (each
 * field padded to 4 bytes), proto . port (NodePorts), or the address alone.
 */
static size_t fe_elem_key(const struct frontend_key *key, int which, uint8_t *out)
{
	size_t alen = key->addr.family == AF_INET ? 4 : 16;
	uint16_t port = htons(key->port);
	enum nft_set_key kind = nft_set_desc(which)->key;
	bool with_port = kind != NFT_KEY_ADDR;

	memset(out, 0, NFT_KEY_LEN6);
	if (kind == NFT_KEY_PROTO_PORT) {
		out[0] = key->proto;
		memcpy(out + 4, &port, sizeof(port));
		return NFT_KEY_LEN_NODE_PORT;
	}
	memcpy(out, key->addr.bytes, alen);
	if (!with_port)
		return alen;
	out[alen] = key->proto;
	memcpy(out + alen + 4, &port, sizeof(port));
	return alen + 8;
}

static void flush_one(struct nft_batch *b, int which)
{
	struct nftnl_set *s = b->pending[which];
	struct nft_msg_ref ref = {
		.what = b->pending_type == NFT_MSG_NEWSETELEM ? NFT_WHAT_ELEMS_ADD :
								NFT_WHAT_ELEMS_DEL,
		.set = which,
		.count = b->n_pending[which],
	};
	const struct nft_set_desc *desc = nft_set_desc(which);
	struct nftnl_set_elems_iter *it;
	struct nftnl_set_elem *e;

	if (!s)
		return;
	/* Name the first element in an error line: the key goes back through the ref. */
	it = xcheck(nftnl_set_elems_iter_create(s));
	e = nftnl_set_elems_iter_cur(it);
	if (e) {
		uint32_t len;
		const uint8_t *k = nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &len);
		bool v6 = desc->v6;

		ref.has_key = true;
		ref.key.addr.family = v6 ? AF_INET6 : AF_INET;
		if (desc->key == NFT_KEY_PROTO_PORT) {
			ref.key.proto = k[0];
			ref.key.port = ntohs(*(const uint16_t *)(k + 4));
		} else {
			memcpy(ref.key.addr.bytes, k, v6 ? 16 : 4);
		}
		if (desc->key == NFT_KEY_ADDR_PROTO_PORT) {
			ref.key.proto = k[v6 ? 16 : 4];
			ref.key.port = ntohs(*(const uint16_t *)(k + (v6 ? 20 : 8)));
		}
	}
	nftnl_set_elems_iter_destroy(it);
	nft_elems_msg(b, s, b->pending_type, &ref);
	nftnl_set_free(s);
	b->pending[which] = NULL;
	b->n_pending[which] = 0;
}

void nft_batch_flush_elems(struct nft_batch *b)
{
	for (int i = 0; i < NFT_NAMED_SETS; i++)
		flush_one(b, i);
}

/* Queues one element of set which; verdict 0 with chain NULL for a plain set or a delete. */
static void queue_elem(struct nft_batch *b, uint16_t msg_type, int which,
		       const struct frontend_key *fkey, int verdict, const char *chain)
{
	struct nftnl_set_elem *e;
	uint8_t key[NFT_KEY_LEN6];
	size_t len;

	if (b->err)
		return;
	if (b->pending_type != msg_type)
		nft_batch_flush_elems(b);
	b->pending_type = msg_type;
	if (!b->pending[which])
		b->pending[which] = nft_set_new(nft_set_name(which), 0);
	e = xcheck(nftnl_set_elem_alloc());
	len = fe_elem_key(fkey, which, key);
	nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, key, len);
	/* A delete names the key only; an add carries the verdict too. */
	if (msg_type == NFT_MSG_NEWSETELEM && nft_set_desc(which)->is_map) {
		nftnl_set_elem_set_u32(e, NFTNL_SET_ELEM_VERDICT, verdict);
		if (chain)
			nftnl_set_elem_set_str(e, NFTNL_SET_ELEM_CHAIN, chain);
	}
	nftnl_set_elem_add(b->pending[which], e);
	if (++b->n_pending[which] >= NFT_ELEMS_PER_MSG)
		flush_one(b, which);
}

void nft_batch_queue_elem(struct nft_batch *b, uint16_t msg_type, const struct frontend *fe)
{
	enum nft_fe_class cls = nft_fe_classify(fe);
	int which = fe_named_set(fe, cls);
	char name[NFT_OBJ_NAME_MAX];
	bool counted;

	_Static_assert(NFT_CHAIN_NAME_MAX <= NFT_OBJ_NAME_MAX, "name holds a frontend chain");
	if (which < 0)
		return;
	/* A counted Service's refusals go through its own chain, which counts them. */
	counted = (cls == NFT_FE_REFUSE || cls == NFT_FE_DROP) && nft_fe_counted(fe, b->count_all);
	if (counted && !nft_svc_name(cls == NFT_FE_DROP ? NFT_SVC_DROP_CHAIN : NFT_SVC_REFUSE_CHAIN,
				     fe->service, name, sizeof(name)))
		return nft_batch_fail(b, -ENAMETOOLONG);
	switch (cls) {
	case NFT_FE_SERVE:
		nft_fe_chain_name(&fe->key, name, sizeof(name));
		return queue_elem(b, msg_type, which, &fe->key, NFT_GOTO, name);
	case NFT_FE_REFUSE:
		return queue_elem(b, msg_type, which, &fe->key, NFT_GOTO,
				  counted ? name : NFT_REJECT_CHAIN);
	case NFT_FE_DROP:
		if (counted)
			return queue_elem(b, msg_type, which, &fe->key, NFT_GOTO, name);
		return queue_elem(b, msg_type, which, &fe->key, NF_DROP, NULL);
	default:
		return queue_elem(b, msg_type, which, &fe->key, 0, NULL);
	}
}

void nft_batch_queue_fw_elem(struct nft_batch *b, uint16_t msg_type, const struct frontend *fe)
{
	char chain[NFT_EP_NAME_MAX];

	if (!nft_fe_has_firewall(fe))
		return;
	nft_fw_chain_name(&fe->key, chain, sizeof(chain));
	queue_elem(b, msg_type,
		   fe->key.addr.family == AF_INET6 ? NFT_SET_FIREWALL6 : NFT_SET_FIREWALL4,
		   &fe->key, NFT_GOTO, chain);
}

void nft_batch_queue_node_elem(struct nft_batch *b, uint16_t msg_type, const struct frontend *fe)
{
	bool v6 = fe->key.addr.family == AF_INET6;
	char chain[NFT_CHAIN_NAME_MAX];
	int which;

	if (!nft_fe_has_node_chain(fe))
		return;
	if (nft_fe_is_node_port(fe))
		which = v6 ? NFT_SET_NODE_NODEPORTS6 : NFT_SET_NODE_NODEPORTS4;
	else
		which = v6 ? NFT_SET_NODE_SERVICES6 : NFT_SET_NODE_SERVICES4;
	nft_fe_side_chain_name(&fe->key, NFT_SIDE_NODE, chain, sizeof(chain));
	queue_elem(b, msg_type, which, &fe->key, NFT_GOTO, chain);
}
