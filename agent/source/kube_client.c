// SPDX-License-Identifier: Apache-2.0
/*
 * The API server client: where the API server is and how to prove who we
 * are (in-cluster service account or a kubeconfig: token, token file,
 * client certificate, exec plugin), GET requests over verified TLS with
 * libcurl, and the line format of watch streams.
 *
 * An exec plugin's credential is shared by every thread: cached until
 * shortly before its expirationTimestamp (EXEC_REFRESH_MS, or a quarter of
 * its lifetime if that is shorter), run again after a 401 to it, and after
 * a failed run not run again for a backoff (EXEC_BACKOFF_MIN_MS doubling to
 * EXEC_BACKOFF_MAX_MS), however many requests want it meanwhile.
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
#include "source/kube_exec.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "lib/yaml_json.h"

#define EXEC_REFRESH_MS 10000
#define EXEC_BACKOFF_MIN_MS 1000
#define EXEC_BACKOFF_MAX_MS 30000

struct kube_client {
	struct kube_config cfg;
	char *identity; /* for log lines */
	pthread_mutex_t lock; /* guards the token and the exec state below */
	char *token; /* current bearer token, NULL for none */
	struct stat token_st; /* identity of token_file when last read */
	bool token_warned; /* token_file unreadable, already logged */
	/* exec plugin */
	pthread_mutex_t exec_lock; /* held while the plugin runs: one run at a time */
	struct kube_exec_limits exec_limits;
	struct kube_exec_credential cred;
	bool cred_valid;
	unsigned long cred_gen; /* bumped with every new credential, never 0 once one came */
	long long cred_refresh_ms; /* realtime: run the plugin again from here on; 0: never */
	long long exec_retry_ms; /* monotonic: after a failed run, none before this */
	int exec_backoff_ms;
	bool exec_failed; /* the last run failed (exec_error says why) */
	char exec_error[512];
};

/* The credentials of one request. */
struct creds {
	char *token;
	struct kube_blob cert, key; /* the exec plugin's client certificate, or empty */
	unsigned long gen; /* the exec credential's generation; 0: no exec plugin */
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
	if (cfg->exec)
		kube_exec_config_free(cfg->exec);
	free(cfg->exec);
	free(cfg->origin);
	free(cfg->user_name);
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

/* The user's exec block, unless a token overrides it (as in client-go). */
static int parse_exec(json_t *user, json_t *cluster, const char *dir, const char *name,
		      const char *user_name, struct kube_config *out)
{
	json_t *exec = json_object_get(user, "exec");
	char *who;
	int err;

	if (!exec)
		return 0;
	who = xasprintf("kubeconfig user \"%s\" in %s", user_name, name);
	if (out->token || out->token_file) {
		pr_warn("%s: the token is used, the exec plugin is not run", who);
		free(who);
		return 0;
	}
	out->exec = xcalloc(1, sizeof(*out->exec));
	err = kube_exec_config_parse(exec, cluster, dir, who, out->exec);
	free(who);
	return err;
}

int kube_config_parse(const char *text, size_t len, const char *dir, const char *name,
		      unsigned int flags, struct kube_config *out)
{
	static const char *const unsupported[] = { "tls-server-name", "proxy-url" };
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
	if (json_is_true(json_object_get(cluster, "insecure-skip-tls-verify"))) {
		if (!(flags & KUBE_CONFIG_ALLOW_INSECURE)) {
			pr_warn("%s: cluster \"%s\": insecure-skip-tls-verify: true is refused: the API "
				"server's certificate would not be verified "
				"(--kube-insecure-skip-tls-verify allows it)",
				name, cluster_name);
			goto out;
		}
		/* As client-go: skipping verification and naming a CA contradict each other. */
		if (get_string(cluster, "certificate-authority") ||
		    get_string(cluster, "certificate-authority-data")) {
			pr_warn("%s: cluster \"%s\": insecure-skip-tls-verify and a certificate "
				"authority exclude each other",
				name, cluster_name);
			goto out;
		}
		pr_warn("%s: cluster \"%s\": insecure-skip-tls-verify: the API server's certificate "
			"is NOT verified (--kube-insecure-skip-tls-verify)",
			name, cluster_name);
		out->insecure = true;
	}
	/* Either changes where or how we connect: worth a line, though not a refusal. */
	for (size_t i = 0; i < sizeof(unsupported) / sizeof(unsupported[0]); i++)
		if (json_object_get(cluster, unsupported[i]))
			pr_warn("%s: cluster \"%s\": %s is not supported and ignored", name,
				cluster_name, unsupported[i]);
	out->origin = xstrdup(name);
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

		out->user_name = xstrdup(user_name);
		if (json_object_get(user, "auth-provider"))
			pr_warn("%s: user \"%s\": auth-provider plugins are not supported (kubectl "
				"dropped them): use an exec plugin",
				name, user_name);
		if (token)
			out->token = xstrdup(token);
		if (!token && token_file)
			out->token_file = resolve_path(dir, token_file);
		err = parse_exec(user, cluster, dir, name, user_name, out);
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

int kube_config_load(const char *path, unsigned int flags, struct kube_config *out)
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
	err = kube_config_parse(text, len, slash == dir ? "/" : dir, path, flags, out);
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

static long long clock_ms(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static void blob_copy(struct kube_blob *to, const struct kube_blob *from)
{
	to->data = NULL;
	to->len = from->len;
	if (from->data) {
		to->data = xmalloc(from->len + 1);
		memcpy(to->data, from->data, from->len);
		to->data[from->len] = '\0';
	}
}

/* The cached exec credential into cr, if it is still good. Called locked. */
static bool exec_cached(struct kube_client *c, struct creds *cr)
{
	if (!c->cred_valid ||
	    (c->cred_refresh_ms && clock_ms(CLOCK_REALTIME) >= c->cred_refresh_ms))
		return false;
	cr->token = c->cred.token ? xstrdup(c->cred.token) : NULL;
	blob_copy(&cr->cert, &c->cred.cert);
	blob_copy(&cr->key, &c->cred.key);
	cr->gen = c->cred_gen;
	return true;
}

/* Keeps a new credential (called locked) and says when to run the plugin again. */
static void exec_keep(struct kube_client *c, struct kube_exec_credential *cred)
{
	long long now = clock_ms(CLOCK_REALTIME), margin;
	char until[64] = "no expiry";

	kube_exec_credential_free(&c->cred);
	c->cred = *cred;
	memset(cred, 0, sizeof(*cred));
	c->cred_valid = true;
	c->cred_gen++;
	c->cred_refresh_ms = 0;
	if (c->cred.expiry_ms) {
		time_t t = (time_t)(c->cred.expiry_ms / 1000);
		struct tm tm;

		margin = (c->cred.expiry_ms - now) / 4;
		if (margin > EXEC_REFRESH_MS)
			margin = EXEC_REFRESH_MS;
		c->cred_refresh_ms = c->cred.expiry_ms - (margin > 0 ? margin : 0);
		strftime(until, sizeof(until), "valid until %Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
	}
	if (c->exec_failed || c->cred_gen == 1)
		pr_info("kube: %s: exec plugin \"%s\" gave a %s (%s)", c->cfg.exec->who,
			c->cfg.exec->command,
			c->cred.token ?
				(c->cred.cert.data ? "token and client certificate" : "token") :
				"client certificate",
			until);
	else
		pr_debug("kube: %s: exec plugin \"%s\" gave a new credential (%s)",
			 c->cfg.exec->who, c->cfg.exec->command, until);
	c->exec_failed = false;
	c->exec_backoff_ms = 0;
}

/*
 * The exec plugin's credential: the cached one, or one from a new run.
 * Returns 0, -ECANCELED, or -EIO (why in err): the run failed now or, in
 * its backoff, before.
 */
static int exec_creds(struct kube_client *c, atomic_bool *stop, struct creds *cr, char *err,
		      size_t errlen)
{
	struct kube_exec_credential cred;
	char why[512];
	int ret;

	pthread_mutex_lock(&c->lock);
	ret = exec_cached(c, cr) ? 0 : 1;
	pthread_mutex_unlock(&c->lock);
	if (!ret)
		return 0;
	pthread_mutex_lock(&c->exec_lock);
	pthread_mutex_lock(&c->lock);
	/* Another thread may have run it while this one waited. */
	if (exec_cached(c, cr)) {
		ret = 0;
	} else if (c->exec_failed && clock_ms(CLOCK_MONOTONIC) < c->exec_retry_ms) {
		snprintf(err, errlen, "%.400s (run again in %lld ms)", c->exec_error,
			 c->exec_retry_ms - clock_ms(CLOCK_MONOTONIC));
		ret = -EIO;
	}
	pthread_mutex_unlock(&c->lock);
	if (ret != 1 || (stop && atomic_load(stop))) {
		pthread_mutex_unlock(&c->exec_lock);
		return ret == 1 ? -ECANCELED : ret;
	}
	ret = kube_exec_run(c->cfg.exec, &c->exec_limits, stop, &cred, why, sizeof(why));
	pthread_mutex_lock(&c->lock);
	if (!ret) {
		exec_keep(c, &cred);
		exec_cached(c, cr);
	} else if (ret == -EIO) {
		int delay = c->exec_backoff_ms ? c->exec_backoff_ms : EXEC_BACKOFF_MIN_MS;

		c->exec_backoff_ms = delay * 2 > EXEC_BACKOFF_MAX_MS ? EXEC_BACKOFF_MAX_MS :
								       delay * 2;
		c->exec_failed = true;
		c->exec_retry_ms = clock_ms(CLOCK_MONOTONIC) + delay;
		snprintf(c->exec_error, sizeof(c->exec_error), "%s", why);
		/* One line per run; the requests that fail for it say so too. */
		pr_warn("kube: %s; running it again in %d ms at the earliest", why, delay);
		snprintf(err, errlen, "%s", why);
	}
	pthread_mutex_unlock(&c->lock);
	pthread_mutex_unlock(&c->exec_lock);
	return ret;
}

/* The API server refused credential gen: the next request runs the plugin again. */
static void exec_refused(struct kube_client *c, unsigned long gen)
{
	pthread_mutex_lock(&c->lock);
	if (c->cred_valid && c->cred_gen == gen) {
		c->cred_valid = false;
		pr_info("kube: %s: the API server answered 401 to the exec plugin's credential: "
			"running it again",
			c->cfg.exec->who);
	}
	pthread_mutex_unlock(&c->lock);
}

static int get_creds(struct kube_client *c, atomic_bool *stop, struct creds *cr, char *err,
		     size_t errlen)
{
	memset(cr, 0, sizeof(*cr));
	/* A token wins over an exec plugin (kube_config_parse drops the plugin then). */
	if (!c->cfg.exec) {
		cr->token = current_token(c);
		return 0;
	}
	return exec_creds(c, stop, cr, err, errlen);
}

static void creds_free(struct creds *cr)
{
	free(cr->token);
	blob_free(&cr->cert);
	blob_free(&cr->key);
}

static void curl_init_once(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* Appends one part of a description, comma separated. */
static void add_part(char *buf, size_t len, const char *part)
{
	size_t n = strlen(buf);

	snprintf(buf + n, len - n, "%s%s", n ? ", " : "", part);
}

/* How the client proves who it is, for log lines. */
static char *describe_identity(const struct kube_config *cfg)
{
	char how[1024] = "", part[512];

	if (cfg->exec) {
		snprintf(part, sizeof(part), "exec plugin \"%s\"", cfg->exec->command);
		add_part(how, sizeof(how), part);
	}
	if (cfg->token)
		add_part(how, sizeof(how), "token");
	if (cfg->token_file) {
		snprintf(part, sizeof(part), "token file %s", cfg->token_file);
		add_part(how, sizeof(how), part);
	}
	if (cfg->cert_file) {
		snprintf(part, sizeof(part), "client certificate %s", cfg->cert_file);
		add_part(how, sizeof(how), part);
	} else if (cfg->cert.data) {
		add_part(how, sizeof(how), "client certificate from client-certificate-data");
	}
	if (!cfg->origin)
		return xasprintf("the in-cluster service account (%s)", *how ? how : "no token");
	if (!cfg->user_name)
		return xasprintf("%s, whose context names no user (no credentials)", cfg->origin);
	return xasprintf("kubeconfig user \"%s\" in %s (%s)", cfg->user_name, cfg->origin,
			 *how ? how : "no credentials");
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
	pthread_mutex_init(&c->exec_lock, NULL);
	c->exec_limits = (struct kube_exec_limits){
		.timeout_ms = KUBE_EXEC_TIMEOUT_MS,
		.max_stdout = KUBE_EXEC_MAX_STDOUT,
		.max_stderr = KUBE_EXEC_MAX_STDERR,
	};
	c->identity = describe_identity(&c->cfg);
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
	kube_exec_credential_free(&client->cred);
	free(client->token);
	free(client->identity);
	pthread_mutex_destroy(&client->lock);
	pthread_mutex_destroy(&client->exec_lock);
	free(client);
}

const char *kube_client_server(const struct kube_client *client)
{
	return client->cfg.server;
}

const char *kube_client_identity(const struct kube_client *client)
{
	return client->identity;
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

/* One request with these credentials; see kube_client_get. */
static int get_once(struct kube_client *client, const char *path, long timeout_s, kube_body_fn fn,
		    void *ctx, atomic_bool *stop, const struct creds *cr,
		    struct kube_response *resp)
{
	struct kube_config *cfg = &client->cfg;
	struct request r = { .fn = fn, .ctx = ctx, .stop = stop, .resp = resp };
	struct curl_slist *headers = NULL;
	char *url = NULL, *auth = NULL, errbuf[CURL_ERROR_SIZE] = "";
	CURLcode rc;
	int err = 0;

	memset(resp, 0, sizeof(*resp));
	r.curl = xcheck(curl_easy_init());
	url = xasprintf("%s%s", cfg->server, path);
	if (cr->token)
		auth = xasprintf("Authorization: Bearer %s", cr->token);
	headers = xcheck(curl_slist_append(headers, "Accept: application/json"));
	if (auth)
		headers = xcheck(curl_slist_append(headers, auth));
	curl_easy_setopt(r.curl, CURLOPT_URL, url);
	curl_easy_setopt(r.curl, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(r.curl, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(r.curl, CURLOPT_USERAGENT, "sluice-agent");
	curl_easy_setopt(r.curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(r.curl, CURLOPT_ERRORBUFFER, errbuf);
	/* Only with --kube-insecure-skip-tls-verify (kube_config_parse refuses it otherwise). */
	curl_easy_setopt(r.curl, CURLOPT_SSL_VERIFYPEER, cfg->insecure ? 0L : 1L);
	curl_easy_setopt(r.curl, CURLOPT_SSL_VERIFYHOST, cfg->insecure ? 0L : 2L);
	if (cfg->ca.data)
		set_blob(r.curl, CURLOPT_CAINFO_BLOB, &cfg->ca);
	else if (cfg->ca_file)
		curl_easy_setopt(r.curl, CURLOPT_CAINFO, cfg->ca_file);
	/* The exec plugin's client certificate, else the kubeconfig's. */
	if (cr->cert.data) {
		set_blob(r.curl, CURLOPT_SSLCERT_BLOB, &cr->cert);
		set_blob(r.curl, CURLOPT_SSLKEY_BLOB, &cr->key);
	} else {
		if (cfg->cert.data)
			set_blob(r.curl, CURLOPT_SSLCERT_BLOB, &cfg->cert);
		else if (cfg->cert_file)
			curl_easy_setopt(r.curl, CURLOPT_SSLCERT, cfg->cert_file);
		if (cfg->key.data)
			set_blob(r.curl, CURLOPT_SSLKEY_BLOB, &cfg->key);
		else if (cfg->key_file)
			curl_easy_setopt(r.curl, CURLOPT_SSLKEY, cfg->key_file);
	}
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
	} else if (rc == CURLE_SSL_CERTPROBLEM) {
		/* The client certificate or key cannot be used: say whose. */
		snprintf(resp->error, sizeof(resp->error), "%s: client certificate or key: %s",
			 client->identity, *errbuf ? errbuf : curl_easy_strerror(rc));
		err = -EIO;
	} else if (rc != CURLE_OK) {
		snprintf(resp->error, sizeof(resp->error), "%s",
			 *errbuf ? errbuf : curl_easy_strerror(rc));
		err = -EIO;
	}
	curl_slist_free_all(headers);
	curl_easy_cleanup(r.curl);
	free(url);
	free(auth);
	return err;
}

int kube_client_get(struct kube_client *client, const char *path, long timeout_s, kube_body_fn fn,
		    void *ctx, atomic_bool *stop, struct kube_response *resp)
{
	struct creds cr;
	int err;

	for (int attempt = 0;; attempt++) {
		memset(resp, 0, sizeof(*resp));
		err = get_creds(client, stop, &cr, resp->error, sizeof(resp->error));
		if (err) {
			creds_free(&cr);
			return err;
		}
		err = get_once(client, path, timeout_s, fn, ctx, stop, &cr, resp);
		creds_free(&cr);
		/* A 401 body never reaches fn: trying again with a new credential is safe. */
		if (err || resp->status != 401 || !cr.gen || attempt)
			return err;
		exec_refused(client, cr.gen);
	}
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
