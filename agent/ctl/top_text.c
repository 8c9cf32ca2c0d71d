// SPDX-License-Identifier: Apache-2.0
/* sluicectl top's table (see top_text.h). */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "core/ratelimit.h"
#include "ctl/table.h"
#include "ctl/top_text.h"
#include "lib/xalloc.h"

struct top_row {
	const struct flow_counters *c;
	double rate[FLOW_OUTCOMES];
	double total;
};

static int cmp_rows(const void *pa, const void *pb)
{
	const struct top_row *a = pa, *b = pb;

	if (a->total != b->total)
		return a->total < b->total ? 1 : -1;
	return strcmp(a->c->service, b->c->service);
}

void top_render(FILE *out, const struct top_sample *prev, const struct top_sample *cur,
		unsigned int have, size_t n_rows)
{
	const char *head[3 + FLOW_OUTCOMES + 2];
	char names[FLOW_OUTCOMES][32];
	double dt = cur->t - prev->t;
	struct top_row *rows = cur->n ? xcalloc(cur->n, sizeof(*rows)) : NULL;
	size_t n_cols = 0;
	struct table t;

	if (dt <= 0)
		dt = 1;
	head[n_cols++] = "SERVICE";
	head[n_cols++] = "FLOWS/S";
	for (int o = 0; o < FLOW_OUTCOMES; o++) {
		if (!(have & (1u << o)))
			continue;
		/* "RATE_LIMITED/S": the metric's outcome label, in capitals. */
		snprintf(names[o], sizeof(names[o]), "%s/S", flow_outcome_name(o));
		for (char *c = names[o]; *c; c++)
			*c = (char)toupper((unsigned char)*c);
		head[n_cols++] = names[o];
	}
	head[n_cols++] = "LIMIT";
	head[n_cols++] = "ADMITTED";
	for (size_t i = 0; i < cur->n; i++) {
		const struct flow_counters *c = &cur->v[i];
		const struct flow_counters *p = flow_counters_find(prev->v, prev->n, c->service);

		rows[i].c = c;
		for (int o = 0; o < FLOW_OUTCOMES; o++) {
			uint64_t before = p ? p->flows[o] : 0;

			rows[i].rate[o] =
				c->flows[o] >= before ? (double)(c->flows[o] - before) / dt : 0;
			if (have & (1u << o))
				rows[i].total += rows[i].rate[o];
		}
	}
	if (cur->n > 1)
		qsort(rows, cur->n, sizeof(*rows), cmp_rows);
	table_init(&t, n_cols, head);
	for (size_t i = 0; i < cur->n && i < n_rows; i++) {
		char cells[3 + FLOW_OUTCOMES + 2][300];
		const char *row[3 + FLOW_OUTCOMES + 2];
		size_t k = 0;

		snprintf(cells[k], sizeof(cells[k]), "%s", rows[i].c->service);
		row[k] = cells[k], k++;
		snprintf(cells[k], sizeof(cells[k]), "%.1f", rows[i].total);
		row[k] = cells[k], k++;
		for (int o = 0; o < FLOW_OUTCOMES; o++) {
			if (!(have & (1u << o)))
				continue;
			snprintf(cells[k], sizeof(cells[k]), "%.1f", rows[i].rate[o]);
			row[k] = cells[k], k++;
		}
		rate_limit_format(&rows[i].c->rate, cells[k], sizeof(cells[k]));
		row[k] = cells[k], k++;
		snprintf(cells[k], sizeof(cells[k]), "%llu",
			 (unsigned long long)rows[i].c->flows[FLOW_ADMITTED]);
		row[k] = cells[k], k++;
		table_add(&t, row);
	}
	table_print(&t, out, "");
	table_clear(&t);
	free(rows);
}
