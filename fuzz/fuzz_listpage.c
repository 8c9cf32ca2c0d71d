// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer: one page of a list answer from the API server (ServiceList,
 * EndpointSliceList, NodeList: items without kind), read as the list
 * worker reads it: JSON, then every item decoded.
 */
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "lib/log.h"
#include "source/manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct manifest_objects objs = { 0 };
	json_t *page;

	log_set_level(LOG_QUIET);
	page = json_loadb((const char *)data, size, 0, NULL);
	if (!page)
		return 0;
	manifest_decode_object(page, "fuzz", &objs);
	manifest_objects_clear(&objs);
	json_decref(page);
	return 0;
}
