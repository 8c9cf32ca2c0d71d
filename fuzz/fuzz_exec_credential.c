// SPDX-License-Identifier: Apache-2.0
/* libFuzzer: the ExecCredential an exec plugin prints, and its RFC 3339 expiry. */
#include <stddef.h>
#include <stdint.h>

#include "lib/log.h"
#include "source/kube_exec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kube_exec_credential cred;
	char err[256];

	log_set_level(LOG_QUIET);
	if (kube_exec_credential_parse((const char *)data, size, "client.authentication.k8s.io/v1",
				       &cred, err, sizeof(err)) == 0)
		kube_exec_credential_free(&cred);
	return 0;
}
