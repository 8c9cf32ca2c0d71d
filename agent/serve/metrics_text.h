/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Prometheus text exposition format (version 0.0.4): families with
 * HELP and TYPE, samples with escaped label values, and histograms with
 * cumulative buckets, _sum and _count. Pure: unit-tested, no server.
 */
#ifndef SLUICE_METRICS_TEXT_H
#define SLUICE_METRICS_TEXT_H

#include <stddef.h>
#include <stdint.h>

/* A growing text buffer; s is NUL-terminated. */
struct prom_buf {
	char *s;
	size_t len, cap;
};

void prom_buf_free(struct prom_buf *b);

/* # HELP name help / # TYPE name type ("counter", "gauge", "histogram"). */
void prom_family(struct prom_buf *b, const char *name, const char *type, const char *help);
/*
 * name{k1="v1",...} value, for n_labels pairs kv[2i], kv[2i+1]; values
 * are escaped (backslash, quote, newline).
 */
void prom_sample(struct prom_buf *b, const char *name, const char *const *kv, size_t n_labels,
		 double value);

/* A histogram with fixed upper bounds (le), counts per bucket (not cumulative). */
struct prom_histogram {
	const double *bounds;
	size_t n_bounds;
	uint64_t *counts; /* n_bounds + 1: the last is +Inf */
	double sum;
	uint64_t count;
};

void prom_histogram_init(struct prom_histogram *h, const double *bounds, size_t n_bounds);
void prom_histogram_free(struct prom_histogram *h);
void prom_histogram_observe(struct prom_histogram *h, double v);
/* The family and its samples: name_bucket{le=...}, name_sum, name_count. */
void prom_histogram_write(struct prom_buf *b, const char *name, const char *help,
			  const struct prom_histogram *h);

/* kube-proxy's buckets: sync_proxy_rules_*: 1 ms x 2^k, 15 of them (to 16.384 s). */
#define PROM_SYNC_BUCKETS 15
extern const double prom_sync_buckets[PROM_SYNC_BUCKETS];
/* network_programming_duration_seconds: 0.25, 0.5, 1..59, 60..115 by 5, 120..300 by 30. */
#define PROM_PROGRAMMING_BUCKETS (2 + 59 + 12 + 7)
extern const double prom_programming_buckets[PROM_PROGRAMMING_BUCKETS];

#endif
