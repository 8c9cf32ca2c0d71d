// SPDX-License-Identifier: Apache-2.0
/* libFuzzer: the manifest decoder on any text (JSON, YAML, lists, documents). */
#include <stddef.h>
#include <stdint.h>

#include "lib/log.h"
#include "source/manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct manifest_objects objs = { 0 };

	log_set_level(LOG_QUIET);
	manifest_decode((const char *)data, size, "fuzz", &objs);
	manifest_objects_clear(&objs);
	return 0;
}
