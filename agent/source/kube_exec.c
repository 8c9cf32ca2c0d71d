// SPDX-License-Identifier: Apache-2.0
/*
 * exec credential plugins (client.authentication.k8s.io/v1 and v1beta1), as
 * EKS, GKE and AKS kubeconfigs use them: the user's exec block, running the
 * plugin (posix_spawn, no shell, bounded in time and output) and reading the
 * ExecCredential it prints.
 *
 * The agent is never interactive: the plugin's stdin is /dev/null and
 * KUBERNETES_EXEC_INFO says spec.interactive false, so interactiveMode
 * Never and IfAvailable work and Always is refused. A plugin runs in its
 * own process group with default signal dispositions and no other file
 * descriptor of the agent; on a timeout, too much output or the agent
 * stopping, the whole group is killed.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/file.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "source/kube_exec.h"

#define API_V1 "client.authentication.k8s.io/v1"
#define API_V1BETA1 "client.authentication.k8s.io/v1beta1"
#define EXEC_INFO_ENV "KUBERNETES_EXEC_INFO"
#define STDERR_LINE_MAX 512 /* a longer stderr line is logged in pieces */

extern char **environ;

static const char *get_string(json_t *obj, const char *key)
{
	return json_string_value(json_object_get(obj, key));
}

static void free_strv(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

void kube_exec_config_free(struct kube_exec_config *ec)
{
	free(ec->api_version);
	free(ec->command);
	free_strv(ec->argv);
	free_strv(ec->env);
	free(ec->install_hint);
	free(ec->exec_info);
	free(ec->who);
	memset(ec, 0, sizeof(*ec));
}

static char *base64_encode(const char *in, size_t len)
{
	static const char tab[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char *out = xmalloc((len + 2) / 3 * 4 + 1), *p = out;

	for (size_t i = 0; i < len; i += 3) {
		unsigned int v = (unsigned char)in[i] << 16;

		if (i + 1 < len)
			v |= (unsigned char)in[i + 1] << 8;
		if (i + 2 < len)
			v |= (unsigned char)in[i + 2];
		*p++ = tab[(v >> 18) & 63];
		*p++ = tab[(v >> 12) & 63];
		*p++ = i + 1 < len ? tab[(v >> 6) & 63] : '=';
		*p++ = i + 2 < len ? tab[v & 63] : '=';
	}
	*p = '\0';
	return out;
}

/* spec.cluster of KUBERNETES_EXEC_INFO (provideClusterInfo), as client-go fills it. */
static json_t *cluster_info(json_t *cluster, const char *dir)
{
	static const char *const copied[] = { "server", "tls-server-name",
					      "insecure-skip-tls-verify", "proxy-url",
					      "disable-compression" };
	json_t *info = json_object(), *ext, *item;
	const char *ca_file = get_string(cluster, "certificate-authority");
	const char *ca_data = get_string(cluster, "certificate-authority-data");
	size_t i;

	for (i = 0; i < sizeof(copied) / sizeof(copied[0]); i++) {
		json_t *v = json_object_get(cluster, copied[i]);

		if (v)
			json_object_set(info, copied[i], v);
	}
	if (ca_data) {
		json_object_set_new(info, "certificate-authority-data", json_string(ca_data));
	} else if (ca_file) {
		char *path = ca_file[0] == '/' || !dir ? xstrdup(ca_file) :
							 xasprintf("%s/%s", dir, ca_file);
		char *text;
		size_t len;

		if (!read_whole_file(path, &text, &len)) {
			char *b64 = base64_encode(text, len);

			json_object_set_new(info, "certificate-authority-data", json_string(b64));
			free(b64);
			free(text);
		}
		free(path);
	}
	/* The cluster's extension for exec plugins goes to them as spec.cluster.config. */
	ext = json_object_get(cluster, "extensions");
	json_array_foreach(ext, i, item) {
		if (!strcmp(get_string(item, "name") ?: "", "client.authentication.k8s.io/exec"))
			json_object_set(info, "config", json_object_get(item, "extension"));
	}
	return info;
}

static char **string_array(json_t *arr, size_t extra_front)
{
	size_t n = json_array_size(arr), i;
	char **v = xcalloc(n + extra_front + 1, sizeof(*v));
	json_t *item;

	json_array_foreach(arr, i, item)
		v[extra_front + i] = xstrdup(json_string_value(item));
	return v;
}

static bool all_strings(json_t *arr)
{
	json_t *item;
	size_t i;

	json_array_foreach(arr, i, item)
		if (!json_is_string(item))
			return false;
	return true;
}

/* env: [{name, value}] as "NAME=value"; false for a malformed entry. */
static bool parse_env(json_t *env, char ***out)
{
	size_t n = json_array_size(env), i;
	char **v = xcalloc(n + 1, sizeof(*v));
	json_t *item;

	json_array_foreach(env, i, item) {
		const char *name = get_string(item, "name"), *value = get_string(item, "value");

		if (!name || !*name || strchr(name, '=') || !value) {
			free_strv(v);
			return false;
		}
		v[i] = xasprintf("%s=%s", name, value);
	}
	*out = v;
	return true;
}

int kube_exec_config_parse(json_t *exec, json_t *cluster, const char *dir, const char *who,
			   struct kube_exec_config *out)
{
	const char *api, *cmd, *mode, *hint;
	json_t *args, *env, *spec, *info;
	char *text;

	memset(out, 0, sizeof(*out));
	if (!json_is_object(exec)) {
		pr_warn("%s: exec is not a mapping", who);
		return -EINVAL;
	}
	api = get_string(exec, "apiVersion");
	cmd = get_string(exec, "command");
	mode = get_string(exec, "interactiveMode");
	hint = get_string(exec, "installHint");
	args = json_object_get(exec, "args");
	env = json_object_get(exec, "env");
	if (!cmd || !*cmd) {
		pr_warn("%s: exec has no command", who);
		return -EINVAL;
	}
	if (!api || (strcmp(api, API_V1) && strcmp(api, API_V1BETA1))) {
		pr_warn("%s: exec apiVersion \"%s\" is not supported (" API_V1 " or " API_V1BETA1
			")",
			who, api ?: "");
		return -EINVAL;
	}
	if (mode && !strcmp(mode, "Always")) {
		pr_warn("%s: exec interactiveMode is Always, but the agent never has a terminal "
			"(use Never or IfAvailable)",
			who);
		return -EINVAL;
	}
	if (mode && strcmp(mode, "Never") && strcmp(mode, "IfAvailable")) {
		pr_warn("%s: exec interactiveMode \"%s\" is none of Never, IfAvailable, Always",
			who, mode);
		return -EINVAL;
	}
	if ((args && (!json_is_array(args) || !all_strings(args)))) {
		pr_warn("%s: exec args is not a list of strings", who);
		return -EINVAL;
	}
	if (env && (!json_is_array(env) || !parse_env(env, &out->env))) {
		pr_warn("%s: exec env is not a list of {name, value}", who);
		return -EINVAL;
	}
	if (!out->env)
		out->env = xcalloc(1, sizeof(*out->env));
	out->api_version = xstrdup(api);
	out->command = xstrdup(cmd);
	out->argv = string_array(args, 1);
	/* As kubectl: a command with a '/' is relative to the kubeconfig, a bare name is looked up in PATH. */
	out->argv[0] = cmd[0] != '/' && strchr(cmd, '/') && dir ? xasprintf("%s/%s", dir, cmd) :
								  xstrdup(cmd);
	out->install_hint = hint ? xstrdup(hint) : NULL;
	out->who = xstrdup(who);
	spec = json_pack("{s:b}", "interactive", 0);
	if (json_is_true(json_object_get(exec, "provideClusterInfo")))
		json_object_set_new(spec, "cluster", cluster_info(cluster, dir));
	info = json_pack("{s:s, s:s, s:o}", "kind", "ExecCredential", "apiVersion", api, "spec",
			 spec);
	text = xcheck(json_dumps(info, JSON_COMPACT));
	json_decref(info);
	out->exec_info = text;
	return 0;
}

void kube_exec_credential_free(struct kube_exec_credential *cred)
{
	free(cred->token);
	free(cred->cert.data);
	free(cred->key.data);
	memset(cred, 0, sizeof(*cred));
}

static int digits(const char *p, int n)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		v = v * 10 + (p[i] - '0');
	}
	return v;
}

int kube_parse_rfc3339(const char *s, long long *ms)
{
	long long frac = 0, scale = 1000, off = 0;
	int year, mon, day, hour, min, sec;
	struct tm tm = { 0 };
	const char *p;
	time_t t;

	if (strlen(s) < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') ||
	    s[13] != ':' || s[16] != ':')
		return -EINVAL;
	year = digits(s, 4);
	mon = digits(s + 5, 2);
	day = digits(s + 8, 2);
	hour = digits(s + 11, 2);
	min = digits(s + 14, 2);
	sec = digits(s + 17, 2);
	if (year < 0 || mon < 1 || mon > 12 || day < 1 || day > 31 || hour < 0 || hour > 23 ||
	    min < 0 || min > 59 || sec < 0 || sec > 60)
		return -EINVAL;
	p = s + 19;
	if (*p == '.') {
		if (p[1] < '0' || p[1] > '9')
			return -EINVAL;
		for (p++; *p >= '0' && *p <= '9'; p++) {
			scale /= 10;
			frac += (*p - '0') * scale;
		}
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int oh = digits(p + 1, 2), om;

		/* digits() stops at the NUL: only look past p[3] once it is the ':'. */
		if (oh < 0 || oh > 23 || p[3] != ':')
			return -EINVAL;
		om = digits(p + 4, 2);
		if (om < 0 || om > 59)
			return -EINVAL;
		off = (*p == '-' ? -1 : 1) * (oh * 3600LL + om * 60LL);
		p += 6;
	} else {
		return -EINVAL;
	}
	if (*p)
		return -EINVAL;
	tm.tm_year = year - 1900;
	tm.tm_mon = mon - 1;
	tm.tm_mday = day;
	tm.tm_hour = hour;
	tm.tm_min = min;
	tm.tm_sec = sec;
	t = timegm(&tm);
	*ms = ((long long)t - off) * 1000 + frac;
	return 0;
}

/* A token goes into an HTTP header: printable ASCII only. */
static bool header_safe(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			return false;
	return true;
}

static void set_blob(struct kube_blob *b, const char *s)
{
	b->len = strlen(s);
	b->data = xstrdup(s);
}

int kube_exec_credential_parse(const char *text, size_t len, const char *api_version,
			       struct kube_exec_credential *out, char *err, size_t errlen)
{
	const char *kind, *api, *token, *cert, *key, *exp;
	json_error_t jerr;
	json_t *root, *status;
	int ret = -EINVAL;

	memset(out, 0, sizeof(*out));
	root = json_loadb(text, len, 0, &jerr);
	if (!root) {
		snprintf(err, errlen, "not JSON: %s (line %d)", jerr.text, jerr.line);
		return -EINVAL;
	}
	kind = get_string(root, "kind");
	api = get_string(root, "apiVersion");
	status = json_object_get(root, "status");
	if (!kind || strcmp(kind, "ExecCredential")) {
		snprintf(err, errlen, "kind is \"%.40s\", not ExecCredential", kind ?: "");
		goto out;
	}
	if (!api || strcmp(api, api_version)) {
		snprintf(err, errlen, "apiVersion is \"%.60s\", but the kubeconfig asks for %s",
			 api ?: "", api_version);
		goto out;
	}
	if (!json_is_object(status)) {
		snprintf(err, errlen, "no status");
		goto out;
	}
	token = get_string(status, "token");
	cert = get_string(status, "clientCertificateData");
	key = get_string(status, "clientKeyData");
	exp = get_string(status, "expirationTimestamp");
	if (token && !*token)
		token = NULL;
	if (cert && !*cert)
		cert = NULL;
	if (key && !*key)
		key = NULL;
	if (!cert != !key) {
		snprintf(err, errlen, "status has %s without %s",
			 cert ? "clientCertificateData" : "clientKeyData",
			 cert ? "clientKeyData" : "clientCertificateData");
		goto out;
	}
	if (!token && !cert) {
		snprintf(err, errlen,
			 "status has neither a token nor clientCertificateData and clientKeyData");
		goto out;
	}
	if (token && !header_safe(token)) {
		snprintf(err, errlen, "status.token holds characters an HTTP header cannot carry");
		goto out;
	}
	if (exp && kube_parse_rfc3339(exp, &out->expiry_ms)) {
		snprintf(err, errlen, "status.expirationTimestamp \"%.60s\" is no RFC 3339 time",
			 exp);
		goto out;
	}
	if (token)
		out->token = xstrdup(token);
	if (cert) {
		set_blob(&out->cert, cert);
		set_blob(&out->key, key);
	}
	ret = 0;
out:
	json_decref(root);
	return ret;
}

static long long monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static bool env_named(const char *entry, const char *name, size_t name_len)
{
	return !strncmp(entry, name, name_len) && entry[name_len] == '=';
}

/* The agent's environment, ec->env over it (the last of a name wins), then KUBERNETES_EXEC_INFO. */
static char **plugin_env(const struct kube_exec_config *ec)
{
	size_t n_env = 0, n = 0;
	char **v;

	while (ec->env[n_env])
		n_env++;
	for (char **e = environ; e && *e; e++)
		n++;
	v = xcalloc(n + n_env + 2, sizeof(*v));
	n = 0;
	for (char **e = environ; e && *e; e++) {
		const char *eq = strchr(*e, '=');
		size_t len = eq ? (size_t)(eq - *e) : strlen(*e);
		bool replaced = env_named(*e, EXEC_INFO_ENV, strlen(EXEC_INFO_ENV));

		for (size_t i = 0; i < n_env && !replaced; i++)
			replaced = env_named(ec->env[i], *e, len);
		if (!replaced)
			v[n++] = xstrdup(*e);
	}
	for (size_t i = 0; i < n_env; i++) {
		size_t len = strchr(ec->env[i], '=') - ec->env[i];
		bool later = false;

		for (size_t j = i + 1; j < n_env && !later; j++)
			later = env_named(ec->env[j], ec->env[i], len);
		if (!later)
			v[n++] = xstrdup(ec->env[i]);
	}
	v[n] = xasprintf("%s=%s", EXEC_INFO_ENV, ec->exec_info);
	return v;
}

/* The plugin's stderr, logged line by line up to a budget. */
struct stderr_log {
	const struct kube_exec_config *ec;
	char line[STDERR_LINE_MAX];
	size_t len, logged, max;
	bool dropped;
};

static void stderr_flush(struct stderr_log *sl)
{
	if (!sl->len)
		return;
	if (sl->logged + sl->len <= sl->max) {
		pr_info("kube: %s: exec plugin \"%s\": %.*s", sl->ec->who, sl->ec->command,
			(int)sl->len, sl->line);
		sl->logged += sl->len;
	} else if (!sl->dropped) {
		pr_info("kube: %s: exec plugin \"%s\": stderr beyond %zu bytes not logged",
			sl->ec->who, sl->ec->command, sl->max);
		sl->dropped = true;
	}
	sl->len = 0;
}

static void stderr_feed(struct stderr_log *sl, const char *data, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (data[i] == '\n') {
			stderr_flush(sl);
			continue;
		}
		if (sl->len == sizeof(sl->line))
			stderr_flush(sl);
		sl->line[sl->len++] = data[i] == '\r' || data[i] == '\t' ? ' ' : data[i];
	}
}

struct out_buf {
	char *data;
	size_t len, cap, max;
};

/* Reads what fd has now. Returns 1 (more may come), 0 (EOF) or -E2BIG (stdout over its cap). */
static int drain(int fd, struct out_buf *ob, struct stderr_log *sl)
{
	char buf[4096];

	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n == 0)
			return 0;
		if (n < 0)
			return errno == EINTR ? 1 : errno == EAGAIN ? 1 : 0;
		if (sl) {
			stderr_feed(sl, buf, (size_t)n);
			continue;
		}
		if ((size_t)n > ob->max - ob->len)
			return -E2BIG;
		if (ob->len + (size_t)n + 1 > ob->cap) {
			ob->cap = ob->cap ? ob->cap * 2 : 8192;
			while (ob->cap < ob->len + (size_t)n + 1)
				ob->cap *= 2;
			ob->data = xreallocarray(ob->data, ob->cap, 1);
		}
		memcpy(ob->data + ob->len, buf, (size_t)n);
		ob->len += (size_t)n;
		ob->data[ob->len] = '\0';
	}
}

static int spawn(const struct kube_exec_config *ec, int out_fd, int err_fd, pid_t *pid)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, all;
	char **envp = plugin_env(ec);
	int rc;

	sigemptyset(&none);
	sigfillset(&all);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
	posix_spawn_file_actions_adddup2(&fa, err_fd, 2);
	/* The agent's sockets, maps and pipes are none of the plugin's business. */
	posix_spawn_file_actions_addclosefrom_np(&fa, 3);
	posix_spawnattr_init(&attr);
	/* The worker threads block every signal; the plugin must not inherit that. */
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &all);
	/* Its own process group, so that a kill reaches whatever it started. */
	posix_spawnattr_setpgroup(&attr, 0);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
						POSIX_SPAWN_SETPGROUP);
	if (strchr(ec->argv[0], '/'))
		rc = posix_spawn(pid, ec->argv[0], &fa, &attr, ec->argv, envp);
	else
		rc = posix_spawnp(pid, ec->argv[0], &fa, &attr, ec->argv, envp);
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&fa);
	free_strv(envp);
	return -rc;
}

int kube_exec_run(const struct kube_exec_config *ec, const struct kube_exec_limits *lim,
		  atomic_bool *stop, struct kube_exec_credential *out, char *err, size_t errlen)
{
	struct stderr_log sl = { .ec = ec, .max = lim->max_stderr };
	struct out_buf ob = { .max = lim->max_stdout };
	int outp[2], errp[2], fds[2], status = 0, ret = -EIO, rc;
	long long deadline = monotonic_ms() + lim->timeout_ms;
	const char *killed = NULL;
	bool exited = false;
	char why[256];
	pid_t pid;

	memset(out, 0, sizeof(*out));
	if (pipe2(outp, O_CLOEXEC)) {
		snprintf(err, errlen, "%s: exec plugin \"%s\": pipe: %s", ec->who, ec->command,
			 strerror(errno));
		return -EIO;
	}
	if (pipe2(errp, O_CLOEXEC)) {
		snprintf(err, errlen, "%s: exec plugin \"%s\": pipe: %s", ec->who, ec->command,
			 strerror(errno));
		close(outp[0]);
		close(outp[1]);
		return -EIO;
	}
	rc = spawn(ec, outp[1], errp[1], &pid);
	close(outp[1]);
	close(errp[1]);
	fds[0] = outp[0];
	fds[1] = errp[0];
	if (rc) {
		close(fds[0]);
		close(fds[1]);
		snprintf(err, errlen, "%s: exec plugin \"%s\" cannot run: %s%s%s", ec->who,
			 ec->command, strerror(-rc), ec->install_hint ? "; " : "",
			 ec->install_hint ?: "");
		return -EIO;
	}
	/* Only our ends are non-blocking: the plugin writes to blocking pipes. */
	fcntl(fds[0], F_SETFL, O_NONBLOCK);
	fcntl(fds[1], F_SETFL, O_NONBLOCK);
	while (!exited) {
		struct pollfd pfd[2];
		long long left = deadline - monotonic_ms();
		int n = 0;

		if (stop && atomic_load(stop)) {
			killed = "the agent is stopping";
			ret = -ECANCELED;
			break;
		}
		if (left <= 0) {
			snprintf(why, sizeof(why), "gave no answer within %d ms", lim->timeout_ms);
			killed = why;
			break;
		}
		for (int i = 0; i < 2; i++)
			if (fds[i] >= 0)
				pfd[n++] = (struct pollfd){ .fd = fds[i], .events = POLLIN };
		/* With both pipes closed this only waits for the exit (poll of nothing sleeps). */
		poll(pfd, (nfds_t)n, (int)(left < 100 ? left : n ? 100 : 20));
		exited = waitpid(pid, &status, WNOHANG) == pid;
		for (int i = 0; i < 2; i++) {
			if (fds[i] < 0)
				continue;
			rc = drain(fds[i], &ob, i ? &sl : NULL);
			if (rc == -E2BIG) {
				snprintf(why, sizeof(why), "wrote more than %zu bytes",
					 lim->max_stdout);
				killed = why;
				break;
			}
			/* After the exit, what is left in a pipe kept open by a child of the plugin is not waited for. */
			if (!rc || exited) {
				close(fds[i]);
				fds[i] = -1;
			}
		}
		if (killed)
			break;
	}
	for (int i = 0; i < 2; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	stderr_flush(&sl);
	if (killed) {
		if (!exited) {
			kill(-pid, SIGKILL);
			waitpid(pid, &status, 0);
		}
		snprintf(err, errlen, "%s: exec plugin \"%s\" %s: killed", ec->who, ec->command,
			 killed);
		goto out;
	}
	if (WIFSIGNALED(status)) {
		snprintf(err, errlen, "%s: exec plugin \"%s\" was killed by signal %d (%s)",
			 ec->who, ec->command, WTERMSIG(status), strsignal(WTERMSIG(status)));
		goto out;
	}
	if (WEXITSTATUS(status)) {
		snprintf(err, errlen, "%s: exec plugin \"%s\" exited with status %d%s%s", ec->who,
			 ec->command, WEXITSTATUS(status),
			 WEXITSTATUS(status) == 127 && ec->install_hint ? "; " : "",
			 WEXITSTATUS(status) == 127 && ec->install_hint ? ec->install_hint : "");
		goto out;
	}
	if (kube_exec_credential_parse(ob.data ?: "", ob.len, ec->api_version, out, why,
				       sizeof(why))) {
		snprintf(err, errlen, "%s: exec plugin \"%s\" printed no valid ExecCredential: %s",
			 ec->who, ec->command, why);
		goto out;
	}
	ret = 0;
out:
	free(ob.data);
	return ret;
}
