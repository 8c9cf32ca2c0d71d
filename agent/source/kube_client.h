/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The API server client: where the API server is and how to prove who we
 * are (in-cluster service account or a kubeconfig: token, token file,
 * client certificate, exec plugin), GET requests over verified TLS with
 * libcurl, and the line format of watch streams.
 */
#ifndef SLUICE_KUBE_CLIENT_H
#define SLUICE_KUBE_CLIENT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>

struct kube_exec_config;

/* Overrides /var/run/secrets/kubernetes.io/serviceaccount (tests, unusual mounts). */
#define KUBE_SERVICEACCOUNT_DIR_ENV "SLUICE_SERVICEACCOUNT_DIR"
#define KUBE_SERVICEACCOUNT_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

/* A PEM document held in memory (the kubeconfig's *-data fields, decoded). */
struct kube_blob {
	char *data;
	size_t len;
};

struct kube_config {
	char *server; /* "https://host:port", without a trailing slash */
	char *ca_file; /* CA bundle to verify the server, or ... */
	struct kube_blob ca; /* ... the same in memory */
	char *token; /* a fixed bearer token, or ... */
	char *token_file; /* ... a file holding it, re-read when it changes */
	char *cert_file, *key_file; /* client certificate and key, or ... */
	struct kube_blob cert, key; /* ... the same in memory */
	struct kube_exec_config *exec; /* an exec credential plugin, or NULL */
	bool insecure; /* insecure-skip-tls-verify, allowed by KUBE_CONFIG_ALLOW_INSECURE */
	char *origin; /* the kubeconfig's path; NULL in cluster */
	char *user_name; /* the kubeconfig user; NULL for none */
};

/* kube_config_parse flags. */
enum {
	/* insecure-skip-tls-verify: true is obeyed (--kube-insecure-skip-tls-verify), not refused. */
	KUBE_CONFIG_ALLOW_INSECURE = 1 << 0,
};

/*
 * Reads a kubeconfig's current context. dir: the kubeconfig's directory,
 * against which relative file names are resolved. name: for log lines.
 * Returns 0 or -EINVAL (one log line naming the file and the problem).
 */
int kube_config_parse(const char *text, size_t len, const char *dir, const char *name,
		      unsigned int flags, struct kube_config *out);
/* kube_config_parse on a file. */
int kube_config_load(const char *path, unsigned int flags, struct kube_config *out);
/* KUBERNETES_SERVICE_HOST/_PORT and the service account directory. */
int kube_config_in_cluster(struct kube_config *out);
void kube_config_free(struct kube_config *cfg);

struct kube_client;

/* Takes ownership of cfg's contents. Returns 0 or -errno. */
int kube_client_new(struct kube_config *cfg, struct kube_client **out);
void kube_client_free(struct kube_client *client);
const char *kube_client_server(const struct kube_client *client);
/* Who the client is and how it proves it, for log lines: 'kubeconfig user "U" in F (token file T)'. */
const char *kube_client_identity(const struct kube_client *client);

/* Receives the body of a 2xx answer piece by piece; false aborts the request. */
typedef bool (*kube_body_fn)(void *ctx, const char *data, size_t len);

struct kube_response {
	long status; /* HTTP status, 0 if no answer came */
	char error[512]; /* transport error, or the start of a non-2xx body */
};

/*
 * GET server + path (path includes the query). Safe to call from several
 * threads at once. Returns 0 when an answer arrived (see resp->status: only
 * a 2xx body goes to fn), -ECANCELED when *stop became true or fn refused
 * more, or -EIO (connection or TLS failure, described in resp->error).
 * timeout_s: 0 for none (watches).
 */
int kube_client_get(struct kube_client *client, const char *path, long timeout_s, kube_body_fn fn,
		    void *ctx, atomic_bool *stop, struct kube_response *resp);

/*
 * Splits a byte stream into lines, for watch streams. Zero-initialize it and
 * set max_line. It holds only the start of the line not yet complete (never
 * a newline), so every byte fed is looked at and copied at most once.
 */
struct kube_line_buffer {
	char *buf; /* the incomplete line */
	size_t len, cap;
	size_t max_line; /* the longest line accepted, without its newline; 0: no limit */
};

/*
 * Calls fn for every complete line (without its newline; empty lines are
 * skipped) and keeps the incomplete rest for the next call. A line that
 * does not fit in a few MiB is released once delivered. Returns 0,
 * -ECANCELED if fn returned false, or -E2BIG when a line is longer than
 * max_line: the buffer is then released and the stream must be abandoned.
 */
int kube_line_buffer_feed(struct kube_line_buffer *lb, const char *data, size_t len,
			  bool (*fn)(void *ctx, const char *line, size_t len), void *ctx);
/* Releases the buffer (max_line stays). */
void kube_line_buffer_free(struct kube_line_buffer *lb);

enum kube_watch_type {
	KUBE_WATCH_ADDED,
	KUBE_WATCH_MODIFIED,
	KUBE_WATCH_DELETED,
	KUBE_WATCH_BOOKMARK,
	KUBE_WATCH_ERROR,
};

/* One event of a watch stream: {"type": "...", "object": {...}}. */
struct kube_watch_event {
	enum kube_watch_type type;
	json_t *root; /* owns everything below */
	json_t *object;
	const char *resource_version; /* object.metadata.resourceVersion, or NULL */
	const char *ns, *name; /* object.metadata, or NULL */
	int error_code; /* ERROR: the Status' code (410: history expired) */
	const char *error_message; /* ERROR: the Status' message, or "" */
};

/* Returns 0 or -EINVAL (why in err, size errlen) for a line that is no valid event. */
int kube_watch_parse_line(const char *line, size_t len, struct kube_watch_event *ev, char *err,
			  size_t errlen);
void kube_watch_event_clear(struct kube_watch_event *ev);

#endif
