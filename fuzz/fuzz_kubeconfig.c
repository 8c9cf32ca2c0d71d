// SPDX-License-Identifier: Apache-2.0
/* libFuzzer: the kubeconfig reader (YAML, current context, inline data). */
#include <stddef.h>
#include <stdint.h>

#include "lib/log.h"
#include "source/kube_client.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kube_config cfg = { 0 };

	log_set_level(LOG_QUIET);
	if (kube_config_parse((const char *)data, size, "/nonexistent", "fuzz",
			      KUBE_CONFIG_ALLOW_INSECURE, &cfg) == 0)
		kube_config_free(&cfg);
	return 0;
}
