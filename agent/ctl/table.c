// SPDX-License-Identifier: Apache-2.0
/* kubectl-style aligned tables for sluicectl's output. */
#include <stdlib.h>
#include <string.h>

#include "ctl/table.h"
#include "lib/xalloc.h"

#define TABLE_GAP 3 /* kubectl's tabwriter padding */

void table_init(struct table *t, size_t n, const char *const *header)
{
	memset(t, 0, sizeof(*t));
	t->n_cols = n;
	if (header)
		table_add(t, header);
}

void table_add(struct table *t, const char *const *cells)
{
	if (t->n_rows == t->cap) {
		t->cap = t->cap ? 2 * t->cap : 16;
		t->cells = xreallocarray(t->cells, t->cap * t->n_cols, sizeof(*t->cells));
	}
	for (size_t c = 0; c < t->n_cols; c++)
		t->cells[t->n_rows * t->n_cols + c] = xstrdup(cells[c] ? cells[c] : "");
	t->n_rows++;
}

void table_print(const struct table *t, FILE *out, const char *indent)
{
	size_t *width = xcalloc(t->n_cols ? t->n_cols : 1, sizeof(*width));

	for (size_t r = 0; r < t->n_rows; r++) {
		for (size_t c = 0; c < t->n_cols; c++) {
			size_t len = strlen(t->cells[r * t->n_cols + c]);

			if (len > width[c])
				width[c] = len;
		}
	}
	for (size_t r = 0; r < t->n_rows; r++) {
		fputs(indent ? indent : "", out);
		for (size_t c = 0; c < t->n_cols; c++) {
			const char *cell = t->cells[r * t->n_cols + c];

			if (c + 1 == t->n_cols)
				fprintf(out, "%s\n", cell);
			else
				fprintf(out, "%-*s", (int)(width[c] + TABLE_GAP), cell);
		}
	}
	free(width);
}

void table_clear(struct table *t)
{
	for (size_t i = 0; i < t->n_rows * t->n_cols; i++)
		free(t->cells[i]);
	free(t->cells);
	memset(t, 0, sizeof(*t));
}
