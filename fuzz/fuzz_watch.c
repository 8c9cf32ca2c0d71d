// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer: a watch stream as the API server sends it, cut into chunks at
 * the places the first bytes choose, framed into lines, each line parsed as
 * an event and its object decoded.
 */
#include <stddef.h>
#include <stdint.h>

#include "lib/log.h"
#include "source/kube_client.h"
#include "source/manifest.h"

static bool on_line(void *ctx, const char *line, size_t len)
{
	struct kube_watch_event ev = { 0 };
	char err[256];

	if (kube_watch_parse_line(line, len, &ev, err, sizeof(err)) == 0) {
		struct manifest_objects objs = { 0 };

		if (ev.object)
			manifest_decode_object(ev.object, "fuzz", &objs);
		manifest_objects_clear(&objs);
		kube_watch_event_clear(&ev);
	}
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kube_line_buffer lb = { 0 };
	size_t chunk = size ? data[0] % 64 + 1 : 1;

	log_set_level(LOG_QUIET);
	for (size_t off = 1; off < size; off += chunk)
		kube_line_buffer_feed(&lb, (const char *)data + off,
				      size - off < chunk ? size - off : chunk, on_line, NULL);
	kube_line_buffer_free(&lb);
	return 0;
}
