// SPDX-License-Identifier: Apache-2.0
/*
 * The API server client: where the API server is and how to prove who we
 * are (in-cluster service account or a kubeconfig), GET requests over
 * verified TLS with libcurl, and the line format of watch streams.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <curl/curl.h>

#include "lib/file.h"
#include "source/kube_client.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "lib/yaml_json.h"

struct kube_client {
	struct kube_config cfg;
	pthread_mutex_t lock; /* guards the token below */
	char *token; /* current bearer token, NULL for none */
	struct stat token_st; /* identity of token_file when last read */
	bool token_warned; /* token_file unreadable, already logged */
};

static void blob_free(struct kube_blob *b)
{
	free(b->data);
	b->data = NULL;
	b->len = 0;
}

void kube_config_free(struct kube_config *cfg)
{
	free(cfg->server);
	free(cfg->ca_file);
	free(cfg->token);
	free(cfg->token_file);
	free(cfg->cert_file);
	free(cfg->key_file);
	blob_free(&cfg->ca);
	blob_free(&cfg->cert);
	blob_free(&cfg->key);
	memset(cfg, 0, sizeof(*cfg));
}

/* Strips trailing white space in place (token files often end in a newline). */
static char *chomp(char *s)
{
	size_t n = strlen(s);

	while (n && strchr(" \t\r\n", s[n - 1]))
		s[--n] = '\0';
	return s;
}

static int base64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Standard base64 with optional padding; white space is ignored. */
static int base64_decode(const char *in, struct kube_blob *out)
{
	size_t n = strlen(in), used = 0;
	unsigned int acc = 0;
	int bits = 0;
	char *buf = xmalloc(n / 4 * 3 + 4);

	for (size_t i = 0; i < n; i++) {
		int v;

		if (strchr(" \t\r\n", in[i]))
			continue;
		if (in[i] == '=')
			break;
		v = base64_value((unsigned char)in[i]);
		if (v < 0) {
			free(buf);
			return -EINVAL;
		}
		acc = (acc << 6) | (unsigned int)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			buf[used++] = (char)((acc >> bits) & 0xff);
		}
	}
	buf[used] = '\0';
	out->data = buf;
	out->len = used;
	return 0;
}

/* The element of a kubeconfig list (clusters, users, contexts) with that name. */
static json_t *named_entry(json_t *root, const char *list, const char *field, const char *name)
{
	json_t *arr = json_object_get(root, list), *item;
	size_t i;

	json_array_foreach(arr, i, item) {
		const char *n = json_string_value(json_object_get(item, "name"));

		if (n && !strcmp(n, name))
			return json_object_get(item, field);
	}
	return NULL;
}

static const char *get_string(json_t *obj, const char *key)
{
	return json_string_value(json_object_get(obj, key));
}

/* A path from the kubeconfig, made absolute against its directory. */
static char *resolve_path(const char *dir, const char *path)
{
	if (path[0] == '/' || !dir || !*dir)
		return xstrdup(path);
	return xasprintf("%s/%s", dir, path);
}

/* One credential given as a file or as base64 data; data wins, as in kubectl. */
static int file_or_data(json_t *obj, const char *file_key, const char *data_key, const char *dir,
			const char *name, char **file, struct kube_blob *blob)
{
	const char *data = get_string(obj, data_key), *path = get_string(obj, file_key);

	if (data) {
		if (base64_decode(data, blob)) {
			pr_warn("%s: %s is not valid base64", name, data_key);
			return -EINVAL;
		}
		return 0;
	}
	if (path) {
		*file = resolve_path(dir, path);
		return 0;
	}
	return 0;
}

int kube_config_parse(const char *text, size_t len, const char *dir, const char *name,
		      struct kube_config *out)
{
	struct yaml_json_error yerr;
	json_t *docs, *root, *context, *cluster, *user;
	const char *current, *cluster_name, *user_name, *server;
	int err = -EINVAL;

	memset(out, 0, sizeof(*out));
	docs = yaml_to_json(text, len, &yerr);
	if (!docs) {
		pr_warn("%s:%d: invalid kubeconfig: %s", name, yerr.line, yerr.text);
		return yerr.nomem ? -ENOMEM : -EINVAL;
	}
	root = json_array_get(docs, 0);
	current = get_string(root, "current-context");
	if (!current) {
		pr_warn("%s: kubeconfig has no current-context", name);
		goto out;
	}
	context = named_entry(root, "contexts", "context", current);
	if (!json_is_object(context)) {
		pr_warn("%s: context \"%s\" is not defined", name, current);
		goto out;
	}
	cluster_name = get_string(context, "cluster");
	user_name = get_string(context, "user");
	cluster = cluster_name ? named_entry(root, "clusters", "cluster", cluster_name) : NULL;
	if (!json_is_object(cluster)) {
		pr_warn("%s: context \"%s\": cluster \"%s\" is not defined", name, current,
			cluster_name ? cluster_name : "");
		goto out;
	}
	server = get_string(cluster, "server");
	if (!server || strncmp(server, "https://", 8)) {
		pr_warn("%s: cluster \"%s\": server must be an https:// URL", name, cluster_name);
		goto out;
	}
	if (json_is_true(json_object_get(cluster, "insecure-skip-tls-verify")))
		pr_warn("%s: insecure-skip-tls-verify is ignored: the server is always verified",
			name);
	out->server = xstrndup(server, strlen(server) - (server[strlen(server) - 1] == '/'));
	err = file_or_data(cluster, "certificate-authority", "certificate-authority-data", dir,
			   name, &out->ca_file, &out->ca);
	if (err)
		goto out;
	user = user_name ? named_entry(root, "users", "user", user_name) : NULL;
	if (user_name && !json_is_object(user)) {
		pr_warn("%s: context \"%s\": user \"%s\" is not defined", name, current, user_name);
		err = -EINVAL;
		goto out;
	}
	if (user) {
		const char *token = get_string(user, "token");
		const char *token_file = get_string(user, "tokenFile");

		if (json_object_get(user, "exec") || json_object_get(user, "auth-provider"))
			pr_warn("%s: user \"%s\": exec and auth-provider plugins are not supported",
				name, user_name);
		if (token)
			out->token = xstrdup(token);
		if (!token && token_file && !(out->token_file = resolve_path(dir, token_file)))
			err = -ENOMEM;
		if (!err)
			err = file_or_data(user, "client-certificate", "client-certificate-data",
					   dir, name, &out->cert_file, &out->cert);
		if (!err)
			err = file_or_data(user, "client-key", "client-key-data", dir, name,
					   &out->key_file, &out->key);
		if (!err &&
		    (!!(out->cert_file || out->cert.data) != !!(out->key_file || out->key.data))) {
			pr_warn("%s: user \"%s\": a client certificate needs its key and the other way round",
				name, user_name);
			err = -EINVAL;
		}
	}
out:
	json_decref(docs);
	if (err)
		kube_config_free(out);
	return err;
}

int kube_config_load(const char *path, struct kube_config *out)
{
	char *text, *dir, *slash;
	size_t len;
	int err;

	err = read_whole_file(path, &text, &len);
	if (err) {
		pr_warn("%s: cannot read kubeconfig: %s", path, strerror(-err));
		return err;
	}
	dir = xstrdup(path);
	slash = strrchr(dir, '/');
	if (slash)
		*slash = '\0';
	else
		strcpy(dir, ".");
	err = kube_config_parse(text, len, slash == dir ? "/" : dir, path, out);
	free(dir);
	free(text);
	return err;
}

int kube_config_in_cluster(struct kube_config *out)
{
	const char *host = getenv("KUBERNETES_SERVICE_HOST");
	const char *port = getenv("KUBERNETES_SERVICE_PORT");
	const char *dir = getenv(KUBE_SERVICEACCOUNT_DIR_ENV);

	memset(out, 0, sizeof(*out));
	if (!host || !*host || !port || !*port) {
		pr_warn("kube: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set: "
			"not running in a cluster? (use --kubeconfig=PATH)");
		return -EINVAL;
	}
	if (!dir || !*dir)
		dir = KUBE_SERVICEACCOUNT_DIR;
	/* An IPv6 address goes in brackets. */
	out->server = strchr(host, ':') ? xasprintf("https://[%s]:%s", host, port) :
					  xasprintf("https://%s:%s", host, port);
	out->ca_file = xasprintf("%s/ca.crt", dir);
	out->token_file = xasprintf("%s/token", dir);
	return 0;
}

/* Re-reads the token file when it changed (rotation); called before each request. */
static char *current_token(struct kube_client *c)
{
	struct stat st;
	char *token = NULL, *text;

	pthread_mutex_lock(&c->lock);
	if (c->cfg.token_file && !stat(c->cfg.token_file, &st) &&
	    (st.st_ino != c->token_st.st_ino || st.st_size != c->token_st.st_size ||
	     st.st_mtim.tv_sec != c->token_st.st_mtim.tv_sec ||
	     st.st_mtim.tv_nsec != c->token_st.st_mtim.tv_nsec)) {
		int err = read_whole_file(c->cfg.token_file, &text, NULL);

		if (!err) {
			if (c->token)
				pr_info("kube: %s changed: using the new token", c->cfg.token_file);
			free(c->token);
			c->token = chomp(text);
			c->token_st = st;
			c->token_warned = false;
		} else if (!c->token_warned) {
			pr_warn("kube: cannot read token %s: %s", c->cfg.token_file,
				strerror(-err));
			c->token_warned = true;
		}
	}
	if (c->token)
		token = xstrdup(c->token);
	pthread_mutex_unlock(&c->lock);
	return token;
}

static void curl_init_once(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

int kube_client_new(struct kube_config *cfg, struct kube_client **out)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	struct kube_client *c = xcalloc(1, sizeof(*c));
	const curl_version_info_data *info;

	/* Before any thread runs: curl_global_init is not thread safe. */
	pthread_once(&once, curl_init_once);
	info = curl_version_info(CURLVERSION_NOW);
	if (!(info->features & CURL_VERSION_SSL)) {
		pr_warn("kube: libcurl was built without TLS");
		free(c);
		return -ENOTSUP;
	}
	c->cfg = *cfg;
	memset(cfg, 0, sizeof(*cfg));
	pthread_mutex_init(&c->lock, NULL);
	if (c->cfg.token)
		c->token = xstrdup(c->cfg.token);
	*out = c;
	return 0;
}

void kube_client_free(struct kube_client *client)
{
	if (!client)
		return;
	kube_config_free(&client->cfg);
	free(client->token);
	pthread_mutex_destroy(&client->lock);
	free(client);
}

const char *kube_client_server(const struct kube_client *client)
{
	return client->cfg.server;
}

struct request {
	CURL *curl;
	kube_body_fn fn;
	void *ctx;
	atomic_bool *stop;
	struct kube_response *resp;
	size_t error_len;
	bool aborted;
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata)
{
	struct request *r = userdata;
	size_t len = size * nmemb;

	if (!r->resp->status)
		curl_easy_getinfo(r->curl, CURLINFO_RESPONSE_CODE, &r->resp->status);
	if (r->resp->status / 100 != 2) {
		/* Keep the start of an error body (a Status object) for the log line. */
		size_t room = sizeof(r->resp->error) - 1 - r->error_len;
		size_t n = len < room ? len : room;

		memcpy(r->resp->error + r->error_len, data, n);
		r->error_len += n;
		r->resp->error[r->error_len] = '\0';
		return len;
	}
	if (!r->fn(r->ctx, data, len)) {
		r->aborted = true;
		return CURL_WRITEFUNC_ERROR;
	}
	return len;
}

/* libcurl calls this at least once a second: the way to stop a long watch. */
static int on_progress(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	struct request *r = userdata;

	if (r->stop && atomic_load(r->stop)) {
		r->aborted = true;
		return 1;
	}
	return 0;
}

static void set_blob(CURL *curl, CURLoption opt, const struct kube_blob *b)
{
	struct curl_blob blob = { .data = b->data, .len = b->len, .flags = CURL_BLOB_COPY };

	curl_easy_setopt(curl, opt, &blob);
}

int kube_client_get(struct kube_client *client, const char *path, long timeout_s, kube_body_fn fn,
		    void *ctx, atomic_bool *stop, struct kube_response *resp)
{
	struct kube_config *cfg = &client->cfg;
	struct request r = { .fn = fn, .ctx = ctx, .stop = stop, .resp = resp };
	struct curl_slist *headers = NULL;
	char *url = NULL, *auth = NULL, *token;
	CURLcode rc;
	int err = 0;

	memset(resp, 0, sizeof(*resp));
	r.curl = xcheck(curl_easy_init());
	token = current_token(client);
	url = xasprintf("%s%s", cfg->server, path);
	if (token)
		auth = xasprintf("Authorization: Bearer %s", token);
	headers = xcheck(curl_slist_append(headers, "Accept: application/json"));
	if (auth)
		headers = xcheck(curl_slist_append(headers, auth));
	curl_easy_setopt(r.curl, CURLOPT_URL, url);
	curl_easy_setopt(r.curl, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(r.curl, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(r.curl, CURLOPT_USERAGENT, "sluice-agent");
	curl_easy_setopt(r.curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(r.curl, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(r.curl, CURLOPT_SSL_VERIFYHOST, 2L);
	if (cfg->ca.data)
		set_blob(r.curl, CURLOPT_CAINFO_BLOB, &cfg->ca);
	else if (cfg->ca_file)
		curl_easy_setopt(r.curl, CURLOPT_CAINFO, cfg->ca_file);
	if (cfg->cert.data)
		set_blob(r.curl, CURLOPT_SSLCERT_BLOB, &cfg->cert);
	else if (cfg->cert_file)
		curl_easy_setopt(r.curl, CURLOPT_SSLCERT, cfg->cert_file);
	if (cfg->key.data)
		set_blob(r.curl, CURLOPT_SSLKEY_BLOB, &cfg->key);
	else if (cfg->key_file)
		curl_easy_setopt(r.curl, CURLOPT_SSLKEY, cfg->key_file);
	curl_easy_setopt(r.curl, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(r.curl, CURLOPT_TIMEOUT, timeout_s);
	/* A watch may be silent for minutes; keepalive finds a vanished peer. */
	curl_easy_setopt(r.curl, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(r.curl, CURLOPT_TCP_KEEPIDLE, 15L);
	curl_easy_setopt(r.curl, CURLOPT_TCP_KEEPINTVL, 5L);
	curl_easy_setopt(r.curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(r.curl, CURLOPT_WRITEDATA, &r);
	curl_easy_setopt(r.curl, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(r.curl, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(r.curl, CURLOPT_XFERINFODATA, &r);

	rc = curl_easy_perform(r.curl);
	if (!resp->status)
		curl_easy_getinfo(r.curl, CURLINFO_RESPONSE_CODE, &resp->status);
	if (r.aborted) {
		err = -ECANCELED;
	} else if (rc != CURLE_OK) {
		snprintf(resp->error, sizeof(resp->error), "%s", curl_easy_strerror(rc));
		err = -EIO;
	}
	curl_slist_free_all(headers);
	curl_easy_cleanup(r.curl);
	free(url);
	free(auth);
	free(token);
	return err;
}

/* A buffer above this is released once its line is delivered (or abandoned). */
#define LINE_BUFFER_KEEP (1024 * 1024)

/* Room for need bytes, growing by doubling but never beyond max (if set). */
static void line_buffer_reserve(struct kube_line_buffer *lb, size_t need)
{
	size_t cap = lb->cap ? lb->cap : 4096;

	if (need <= lb->cap)
		return;
	while (cap < need)
		cap *= 2;
	if (lb->max_line && cap > lb->max_line && need <= lb->max_line)
		cap = lb->max_line;
	lb->buf = xreallocarray(lb->buf, cap, 1);
	lb->cap = cap;
}

/* Forgets the line held; a large buffer goes back to the system. */
static void line_buffer_reset(struct kube_line_buffer *lb)
{
	lb->len = 0;
	if (lb->cap > LINE_BUFFER_KEEP)
		kube_line_buffer_free(lb);
}

int kube_line_buffer_feed(struct kube_line_buffer *lb, const char *data, size_t len,
			  bool (*fn)(void *ctx, const char *line, size_t len), void *ctx)
{
	while (len) {
		const char *nl = memchr(data, '\n', len);
		size_t take = nl ? (size_t)(nl - data) : len;
		const char *line = data;
		size_t line_len = take;
		bool more;

		if (lb->max_line && lb->len + take > lb->max_line) {
			kube_line_buffer_free(lb);
			return -E2BIG;
		}
		if (!nl || lb->len) {
			/* Only the start of a line is copied: the rest of it is still to come. */
			line_buffer_reserve(lb, lb->len + take);
			memcpy(lb->buf + lb->len, data, take);
			lb->len += take;
			if (!nl)
				return 0;
			line = lb->buf;
			line_len = lb->len;
		}
		more = !line_len || fn(ctx, line, line_len);
		if (line == lb->buf)
			line_buffer_reset(lb);
		if (!more)
			return -ECANCELED;
		data += take + 1;
		len -= take + 1;
	}
	return 0;
}

void kube_line_buffer_free(struct kube_line_buffer *lb)
{
	size_t max_line = lb->max_line;

	free(lb->buf);
	memset(lb, 0, sizeof(*lb));
	lb->max_line = max_line;
}

static const char *const watch_types[] = {
	[KUBE_WATCH_ADDED] = "ADDED",	  [KUBE_WATCH_MODIFIED] = "MODIFIED",
	[KUBE_WATCH_DELETED] = "DELETED", [KUBE_WATCH_BOOKMARK] = "BOOKMARK",
	[KUBE_WATCH_ERROR] = "ERROR",
};

int kube_watch_parse_line(const char *line, size_t len, struct kube_watch_event *ev, char *err,
			  size_t errlen)
{
	json_error_t jerr;
	json_t *meta;
	const char *type;
	size_t i;

	memset(ev, 0, sizeof(*ev));
	ev->root = json_loadb(line, len, 0, &jerr);
	if (!ev->root) {
		snprintf(err, errlen, "invalid JSON: %s", jerr.text);
		return -EINVAL;
	}
	type = get_string(ev->root, "type");
	ev->object = json_object_get(ev->root, "object");
	if (!type || !json_is_object(ev->object)) {
		snprintf(err, errlen, "no type or object");
		goto fail;
	}
	for (i = 0; i < sizeof(watch_types) / sizeof(watch_types[0]); i++)
		if (!strcmp(type, watch_types[i]))
			break;
	if (i == sizeof(watch_types) / sizeof(watch_types[0])) {
		snprintf(err, errlen, "unknown event type \"%.40s\"", type);
		goto fail;
	}
	ev->type = i;
	if (ev->type == KUBE_WATCH_ERROR) {
		ev->error_code = (int)json_integer_value(json_object_get(ev->object, "code"));
		ev->error_message = get_string(ev->object, "message");
		if (!ev->error_message)
			ev->error_message = "";
		return 0;
	}
	meta = json_object_get(ev->object, "metadata");
	ev->resource_version = get_string(meta, "resourceVersion");
	ev->ns = get_string(meta, "namespace");
	ev->name = get_string(meta, "name");
	if (!ev->resource_version || !*ev->resource_version) {
		snprintf(err, errlen, "%s event without metadata.resourceVersion", type);
		goto fail;
	}
	if (ev->type != KUBE_WATCH_BOOKMARK && (!ev->name || !*ev->name)) {
		snprintf(err, errlen, "%s event without metadata.name", type);
		goto fail;
	}
	return 0;
fail:
	kube_watch_event_clear(ev);
	return -EINVAL;
}

void kube_watch_event_clear(struct kube_watch_event *ev)
{
	json_decref(ev->root);
	memset(ev, 0, sizeof(*ev));
}
