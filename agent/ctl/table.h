/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tables as kubectl prints them: a header row in capitals, every column
 * padded to its widest cell plus three spaces, the last one not padded.
 */
#ifndef SLUICE_CTL_TABLE_H
#define SLUICE_CTL_TABLE_H

#include <stddef.h>
#include <stdio.h>

struct table {
	size_t n_cols, n_rows, cap;
	char **cells; /* n_rows x n_cols, row 0 the header */
};

/* A table of n columns with header cells (NULL: none, for kubectl describe-style lines). */
void table_init(struct table *t, size_t n, const char *const *header);
/* Appends a row of t->n_cols cells (copied; NULL prints as ""). */
void table_add(struct table *t, const char *const *cells);
void table_print(const struct table *t, FILE *out, const char *indent);
void table_clear(struct table *t);

#endif
