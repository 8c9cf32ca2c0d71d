/* SPDX-License-Identifier: Apache-2.0 */
/*
 * exec credential plugins (client.authentication.k8s.io/v1 and v1beta1), as
 * EKS, GKE and AKS kubeconfigs use them: the user's exec block, running the
 * plugin (posix_spawn, no shell, bounded in time and output) and reading the
 * ExecCredential it prints.
 */
#ifndef SLUICE_KUBE_EXEC_H
#define SLUICE_KUBE_EXEC_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>

#include "source/kube_client.h"

/* The limits of one run (kube_exec_limits' defaults, documented in install.md). */
#define KUBE_EXEC_TIMEOUT_MS 30000
#define KUBE_EXEC_MAX_STDOUT (1u << 20)
#define KUBE_EXEC_MAX_STDERR 4096

struct kube_exec_config {
	char *api_version; /* client.authentication.k8s.io/v1 or v1beta1 */
	char *command; /* as the kubeconfig says, for log lines */
	char **argv; /* argv[0]: the program (resolved if it has a '/'); NULL-terminated */
	char **env; /* "NAME=value", set over the agent's environment; NULL-terminated */
	char *install_hint; /* logged when the command is not found, or NULL */
	char *exec_info; /* the KUBERNETES_EXEC_INFO value */
	char *who; /* 'user "U" in FILE', for log lines */
};

/* What a plugin printed: a token, a client certificate and key (PEM), or both. */
struct kube_exec_credential {
	char *token;
	struct kube_blob cert, key;
	long long expiry_ms; /* status.expirationTimestamp, ms since the epoch; 0: none */
};

struct kube_exec_limits {
	int timeout_ms; /* the plugin is killed (with its process group) after this */
	size_t max_stdout; /* more output kills it too */
	size_t max_stderr; /* stderr is logged up to this many bytes per run */
};

/*
 * Reads the user's exec block. cluster: the current context's cluster
 * (for provideClusterInfo); dir: the kubeconfig's directory (a command with
 * a '/' is relative to it); who: for log lines. Returns 0 or -EINVAL after
 * one log line (no command, an unknown apiVersion, interactiveMode Always).
 */
int kube_exec_config_parse(json_t *exec, json_t *cluster, const char *dir, const char *who,
			   struct kube_exec_config *out);
void kube_exec_config_free(struct kube_exec_config *ec);

/*
 * Parses an ExecCredential of api_version. Returns 0, or -EINVAL with the
 * reason in err (size errlen).
 */
int kube_exec_credential_parse(const char *text, size_t len, const char *api_version,
			       struct kube_exec_credential *out, char *err, size_t errlen);
void kube_exec_credential_free(struct kube_exec_credential *cred);

/* An RFC 3339 time ("2024-05-01T10:00:00Z", "...T10:00:00.5+02:00") in ms since the epoch. */
int kube_parse_rfc3339(const char *s, long long *ms);

/*
 * Runs the plugin once, stdin from /dev/null, its stderr logged line by
 * line (bounded). Returns 0 with *out filled, -ECANCELED when *stop became
 * true (the plugin is killed), or -EIO with the reason in err.
 */
int kube_exec_run(const struct kube_exec_config *ec, const struct kube_exec_limits *lim,
		  atomic_bool *stop, struct kube_exec_credential *out, char *err, size_t errlen);

#endif
