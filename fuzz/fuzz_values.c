// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer: the small parsers of values that tenants write: IP addresses,
 * CIDRs (loadBalancerSourceRanges) and the rate-limit annotations. The
 * input is split at its first NUL into two strings.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/ratelimit.h"
#include "lib/addr.h"
#include "lib/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *a = malloc(size + 1), *b;
	struct rate_limit rl;
	struct ip_addr ip;
	struct cidr c;
	char err[256], text[IP_ADDR_STRLEN];

	log_set_level(LOG_QUIET);
	memcpy(a, data, size);
	a[size] = 0;
	b = a + strlen(a);
	if (b < a + size)
		b++;
	if (ip_addr_parse(a, &ip))
		ip_addr_format(&ip, text);
	cidr_parse(a, &c);
	rate_limit_parse(a, b, &rl, err, sizeof(err));
	rate_limit_parse(a, NULL, &rl, err, sizeof(err));
	free(a);
	return 0;
}
