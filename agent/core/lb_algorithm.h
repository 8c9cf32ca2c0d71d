/* SPDX-License-Identifier: Apache-2.0 */
/*
 * How a Service's new flows pick a backend: the sluice.io/lb-algorithm
 * annotation, and --lb-algorithm for Services without it.
 */
#ifndef SLUICE_LB_ALGORITHM_H
#define SLUICE_LB_ALGORITHM_H

#include <stdbool.h>

/* Per Service: annotation sluice.io/lb-algorithm, and --lb-algorithm for the default. */
enum lb_algorithm {
	LB_ALGO_DEFAULT = 0, /* no annotation: --lb-algorithm */
	LB_ALGO_RANDOM,
	LB_ALGO_MAGLEV,
};

/* "random" or "maglev" into *out; -EINVAL for anything else (NULL included). */
int lb_algorithm_parse(const char *s, enum lb_algorithm *out);
const char *lb_algorithm_name(enum lb_algorithm algo);
/* --lb-algorithm: what LB_ALGO_DEFAULT means, process-wide (random until set). */
void lb_algorithm_set_default(enum lb_algorithm algo);
enum lb_algorithm lb_algorithm_default(void);
/* True if a Service annotated algo uses Maglev under the default. */
bool lb_algorithm_is_maglev(enum lb_algorithm algo);

#endif
