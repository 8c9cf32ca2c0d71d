// SPDX-License-Identifier: Apache-2.0
/* The Prometheus text format: families, samples, label escapes, histograms. */
#include <math.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/xalloc.h"
#include "serve/metrics_text.h"

const double prom_sync_buckets[PROM_SYNC_BUCKETS] = {
	0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064,  0.128,
	0.256, 0.512, 1.024, 2.048, 4.096, 8.192, 16.384,
};

const double prom_programming_buckets[PROM_PROGRAMMING_BUCKETS] = {
	0.25, 0.5, 1,  2,  3,  4,   5,	 6,   7,   8,	9,   10,  11,  12,  13,	 14,
	15,   16,  17, 18, 19, 20,  21,	 22,  23,  24,	25,  26,  27,  28,  29,	 30,
	31,   32,  33, 34, 35, 36,  37,	 38,  39,  40,	41,  42,  43,  44,  45,	 46,
	47,   48,  49, 50, 51, 52,  53,	 54,  55,  56,	57,  58,  59,  60,  65,	 70,
	75,   80,  85, 90, 95, 100, 105, 110, 115, 120, 150, 180, 210, 240, 270, 300,
};

static void put(struct prom_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(struct prom_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		size_t room = b->cap - b->len;

		va_start(ap, fmt);
		n = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? room : 0, fmt, ap);
		va_end(ap);
		if (n < 0)
			return;
		if (b->s && (size_t)n < room) {
			b->len += n;
			return;
		}
		b->cap = b->cap ? 2 * b->cap : 4096;
		while (b->cap - b->len <= (size_t)n)
			b->cap *= 2;
		b->s = xreallocarray(b->s, b->cap, 1);
	}
}

void prom_buf_free(struct prom_buf *b)
{
	free(b->s);
	memset(b, 0, sizeof(*b));
}

/* A sample value: integers as such, NaN and infinities as Prometheus spells them. */
static void put_value(struct prom_buf *b, double v)
{
	if (isnan(v))
		put(b, "NaN");
	else if (isinf(v))
		put(b, v > 0 ? "+Inf" : "-Inf");
	else if (v > -9007199254740992.0 && v < 9007199254740992.0 && v == (double)(long long)v)
		put(b, "%lld", (long long)v);
	else
		put(b, "%.17g", v);
}

/* HELP text escapes backslash and newline; label values also the double quote. */
static void put_escaped(struct prom_buf *b, const char *s, bool quote)
{
	for (; *s; s++) {
		if (*s == '\\')
			put(b, "\\\\");
		else if (*s == '\n')
			put(b, "\\n");
		else if (quote && *s == '"')
			put(b, "\\\"");
		else
			put(b, "%c", *s);
	}
}

void prom_family(struct prom_buf *b, const char *name, const char *type, const char *help)
{
	put(b, "# HELP %s ", name);
	put_escaped(b, help, false);
	put(b, "\n# TYPE %s %s\n", name, type);
}

void prom_sample(struct prom_buf *b, const char *name, const char *const *kv, size_t n_labels,
		 double value)
{
	put(b, "%s", name);
	for (size_t i = 0; i < n_labels; i++) {
		put(b, "%s%s=\"", i ? "," : "{", kv[2 * i]);
		put_escaped(b, kv[2 * i + 1], true);
		put(b, "\"");
	}
	put(b, "%s ", n_labels ? "}" : "");
	put_value(b, value);
	put(b, "\n");
}

void prom_histogram_init(struct prom_histogram *h, const double *bounds, size_t n_bounds)
{
	memset(h, 0, sizeof(*h));
	h->bounds = bounds;
	h->n_bounds = n_bounds;
	h->counts = xcalloc(n_bounds + 1, sizeof(*h->counts));
}

void prom_histogram_free(struct prom_histogram *h)
{
	free(h->counts);
	h->counts = NULL;
}

void prom_histogram_observe(struct prom_histogram *h, double v)
{
	size_t i = 0;

	while (i < h->n_bounds && v > h->bounds[i])
		i++;
	h->counts[i]++;
	h->sum += v;
	h->count++;
}

void prom_histogram_write(struct prom_buf *b, const char *name, const char *help,
			  const struct prom_histogram *h)
{
	uint64_t cumulative = 0;
	char bucket[128], le[32];
	const char *kv[2] = { "le", le };

	prom_family(b, name, "histogram", help);
	snprintf(bucket, sizeof(bucket), "%s_bucket", name);
	for (size_t i = 0; i <= h->n_bounds; i++) {
		cumulative += h->counts[i];
		if (i < h->n_bounds)
			snprintf(le, sizeof(le), "%g", h->bounds[i]);
		else
			snprintf(le, sizeof(le), "+Inf");
		prom_sample(b, bucket, kv, 1, (double)cumulative);
	}
	put(b, "%s_sum ", name);
	put_value(b, h->sum);
	put(b, "\n%s_count %llu\n", name, (unsigned long long)h->count);
}
