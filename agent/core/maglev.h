/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Maglev consistent hashing (Eisenbud et al., NSDI 2016): the lookup table
 * of one frontend, computed from its backend set. Pure: the same backends
 * give the same table in every process on every node, because each
 * backend's permutation depends only on its address and port, hashed with
 * fixed keys. The datapaths map a flow's hash onto the table.
 */
#ifndef SLUICE_MAGLEV_H
#define SLUICE_MAGLEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/state.h"

/* Table sizes: primes; the default is Cilium's, 100 entries per backend up to 163 backends. */
#define MAGLEV_DEFAULT_TABLE_SIZE 16381u
#define MAGLEV_MIN_TABLE_SIZE 251u
#define MAGLEV_MAX_TABLE_SIZE 131071u

bool maglev_is_prime(uint32_t n);
/*
 * --maglev-table-size: a prime from MAGLEV_MIN_TABLE_SIZE to
 * MAGLEV_MAX_TABLE_SIZE. -EINVAL with the reason in why otherwise.
 */
int maglev_table_size_parse(const char *s, uint32_t *out, char *why, size_t why_len);

/*
 * Fills table[0..m-1] with indexes into backends[0..n-1] (n >= 1, m a
 * prime > 1). Only the backends' identities count, and their order only
 * through that identity: the caller passes them sorted (state.h's order).
 */
void maglev_build(const struct backend *backends, size_t n, uint32_t m, uint32_t *table);

#endif
