/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Frontends for the nftables tests (unit/test_nft_msg.c and
 * kernel/test_nft_datapath.c); include after <cmocka.h>.
 */
#ifndef SLUICE_SELFTESTS_NFT_FIXTURES_H
#define SLUICE_SELFTESTS_NFT_FIXTURES_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/state.h"

/* A frontend owning its backends: backends a.b.c.1.. / prefix::1.. on port be_port. */
static inline void fe_init(struct frontend *fe, const char *addr, uint8_t proto, uint16_t port,
			   enum frontend_action action, size_t n_backends, const char *be_prefix,
			   uint16_t be_port)
{
	memset(fe, 0, sizeof(*fe));
	assert_true(ip_addr_parse(addr, &fe->key.addr));
	fe->key.proto = proto;
	fe->key.port = port;
	fe->action = action;
	fe->backends = calloc(n_backends ? n_backends : 1, sizeof(*fe->backends));
	assert_non_null(fe->backends);
	fe->n_backends = n_backends;
	for (size_t i = 0; i < n_backends; i++) {
		char text[IP_ADDR_STRLEN];

		if (strchr(be_prefix, ':'))
			snprintf(text, sizeof(text), "%s%zx", be_prefix, i + 1);
		else
			snprintf(text, sizeof(text), "%s.%zu.%zu", be_prefix, (i + 1) / 250,
				 (i + 1) % 250);
		assert_true(ip_addr_parse(text, &fe->backends[i].addr));
		fe->backends[i].port = be_port;
	}
}

static inline void fe_marker(struct frontend *fe, const char *addr)
{
	memset(fe, 0, sizeof(*fe));
	assert_true(ip_addr_parse(addr, &fe->key.addr));
	fe->action = FE_REFUSE;
}

/*
 * externalTrafficPolicy Local on an external frontend from fe_init: the
 * client's address kept, and a node set (traffic born on the node) of n
 * backends prefix.1.. on be_port; n 0: no endpoint anywhere.
 */
static inline void fe_node_set(struct frontend *fe, enum frontend_kind kind, size_t n,
			       const char *be_prefix, uint16_t be_port)
{
	struct frontend tmp;

	fe_init(&tmp, "10.0.0.1", IPPROTO_TCP, 1, FE_SERVE, n, be_prefix, be_port);
	fe->kind = kind;
	fe->preserve_source = true;
	fe->has_node_set = true;
	fe->node_action = n ? FE_SERVE : FE_REFUSE;
	fe->node_backends = tmp.backends;
	fe->n_node_backends = n;
}

static inline void fe_ranges(struct frontend *fe, const char *const *cidrs, size_t n)
{
	fe->source_ranges = calloc(n, sizeof(*fe->source_ranges));
	fe->n_source_ranges = n;
	for (size_t i = 0; i < n; i++)
		assert_true(cidr_parse(cidrs[i], &fe->source_ranges[i]));
}

#endif
