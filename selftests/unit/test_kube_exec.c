// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests of exec credential plugins: the kubeconfig's exec block, the
 * ExecCredential a plugin prints, RFC 3339 times, and runs of small /bin/sh
 * plugins (environment, stdin, timeout, output cap, exit status).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "source/kube_client.h"
#include "source/kube_exec.h"

#define V1 "client.authentication.k8s.io/v1"
#define V1BETA1 "client.authentication.k8s.io/v1beta1"

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static int parse_cred(const char *text, struct kube_exec_credential *cred, char *err)
{
	return kube_exec_credential_parse(text, strlen(text), V1, cred, err, 256);
}

static void test_rfc3339(void **state)
{
	long long ms;

	assert_int_equal(kube_parse_rfc3339("2024-05-01T10:00:00Z", &ms), 0);
	assert_true(ms == 1714557600000LL);
	assert_int_equal(kube_parse_rfc3339("2024-05-01T10:00:00.5Z", &ms), 0);
	assert_true(ms == 1714557600500LL);
	assert_int_equal(kube_parse_rfc3339("2024-05-01T12:00:00.123456789+02:00", &ms), 0);
	assert_true(ms == 1714557600123LL);
	assert_int_equal(kube_parse_rfc3339("2024-05-01T02:30:00-07:30", &ms), 0);
	assert_true(ms == 1714557600000LL);
	assert_int_equal(kube_parse_rfc3339("2024-05-01 10:00:00Z", &ms), -EINVAL);
	assert_int_equal(kube_parse_rfc3339("2024-05-01T10:00:00", &ms), -EINVAL);
	assert_int_equal(kube_parse_rfc3339("2024-13-01T10:00:00Z", &ms), -EINVAL);
	assert_int_equal(kube_parse_rfc3339("2024-05-01T10:00:00+0200", &ms), -EINVAL);
	assert_int_equal(kube_parse_rfc3339("2024-05-01T10:00:00.Z", &ms), -EINVAL);
	assert_int_equal(kube_parse_rfc3339("2024-05-01T10:00:00Zjunk", &ms), -EINVAL);
	assert_int_equal(kube_parse_rfc3339("tomorrow", &ms), -EINVAL);
	assert_int_equal(kube_parse_rfc3339("", &ms), -EINVAL);
}

static void test_credential_token_with_expiry(void **state)
{
	struct kube_exec_credential cred;
	char err[256];

	assert_int_equal(parse_cred("{\"apiVersion\": \"" V1 "\", \"kind\": \"ExecCredential\","
				    " \"status\": {\"token\": \"tok-1\","
				    " \"expirationTimestamp\": \"2024-05-01T10:00:00Z\"}}",
				    &cred, err),
			 0);
	assert_string_equal(cred.token, "tok-1");
	assert_null(cred.cert.data);
	assert_true(cred.expiry_ms == 1714557600000LL);
	kube_exec_credential_free(&cred);
}

static void test_credential_certificate(void **state)
{
	struct kube_exec_credential cred;
	char err[256];

	assert_int_equal(parse_cred("{\"apiVersion\": \"" V1 "\", \"kind\": \"ExecCredential\","
				    " \"status\": {\"clientCertificateData\": \"CERT\\n\","
				    " \"clientKeyData\": \"KEY\\n\"}}",
				    &cred, err),
			 0);
	assert_null(cred.token);
	assert_int_equal(cred.cert.len, 5);
	assert_memory_equal(cred.cert.data, "CERT\n", 5);
	assert_int_equal(cred.key.len, 4);
	assert_true(cred.expiry_ms == 0);
	kube_exec_credential_free(&cred);
}

static void test_credential_v1beta1(void **state)
{
	const char *text = "{\"apiVersion\": \"" V1BETA1 "\", \"kind\": \"ExecCredential\","
			   " \"status\": {\"token\": \"t\"}}";
	struct kube_exec_credential cred;
	char err[256];

	assert_int_equal(kube_exec_credential_parse(text, strlen(text), V1BETA1, &cred, err,
						    sizeof(err)),
			 0);
	kube_exec_credential_free(&cred);
	/* The plugin answers in the version the kubeconfig asks for. */
	assert_int_equal(parse_cred(text, &cred, err), -EINVAL);
	assert_non_null(strstr(err, "apiVersion"));
}

/* Each refused credential, with a word its reason must contain. */
static void test_credential_refused(void **state)
{
	static const struct {
		const char *text, *why;
	} cases[] = {
		{ "not json", "not JSON" },
		{ "[]", "kind" },
		{ "{\"apiVersion\": \"" V1
		  "\", \"kind\": \"Secret\", \"status\": {\"token\": \"t\"}}",
		  "kind" },
		{ "{\"apiVersion\": \"" V1 "\", \"kind\": \"ExecCredential\"}", "no status" },
		{ "{\"apiVersion\": \"" V1 "\", \"kind\": \"ExecCredential\", \"status\": {}}",
		  "neither" },
		{ "{\"apiVersion\": \"" V1 "\", \"kind\": \"ExecCredential\","
		  " \"status\": {\"token\": \"\"}}",
		  "neither" },
		{ "{\"apiVersion\": \"" V1 "\", \"kind\": \"ExecCredential\","
		  " \"status\": {\"clientCertificateData\": \"C\"}}",
		  "without clientKeyData" },
		{ "{\"apiVersion\": \"" V1 "\", \"kind\": \"ExecCredential\","
		  " \"status\": {\"token\": \"t\", \"clientKeyData\": \"K\"}}",
		  "without clientCertificateData" },
		{ "{\"apiVersion\": \"" V1 "\", \"kind\": \"ExecCredential\","
		  " \"status\": {\"token\": \"a\\r\\nX-Evil: 1\"}}",
		  "HTTP header" },
		{ "{\"apiVersion\": \"" V1 "\", \"kind\": \"ExecCredential\","
		  " \"status\": {\"token\": \"t\", \"expirationTimestamp\": \"soon\"}}",
		  "RFC 3339" },
	};
	struct kube_exec_credential cred;
	char err[256];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		err[0] = '\0';
		assert_int_equal(parse_cred(cases[i].text, &cred, err), -EINVAL);
		if (!strstr(err, cases[i].why))
			fail_msg("case %zu: \"%s\" does not say \"%s\"", i, err, cases[i].why);
		assert_null(cred.token);
		assert_null(cred.cert.data);
	}
}

static int parse_exec_yaml(const char *exec_json, struct kube_exec_config *ec)
{
	json_t *exec = json_loads(exec_json, 0, NULL);
	json_t *cluster = json_pack("{s:s, s:s}", "server", "https://k:6443",
				    "certificate-authority-data", "Q0E=");
	int err;

	assert_non_null(exec);
	err = kube_exec_config_parse(exec, cluster, "/etc/kube", "kubeconfig user \"u\" in test",
				     ec);
	json_decref(exec);
	json_decref(cluster);
	return err;
}

static void test_exec_config(void **state)
{
	struct kube_exec_config ec;

	assert_int_equal(
		parse_exec_yaml("{\"apiVersion\": \"" V1 "\", \"command\": \"aws\","
				" \"args\": [\"eks\", \"get-token\"],"
				" \"env\": [{\"name\": \"AWS_PROFILE\", \"value\": \"p\"}],"
				" \"interactiveMode\": \"IfAvailable\"}",
				&ec),
		0);
	assert_string_equal(ec.argv[0], "aws");
	assert_string_equal(ec.argv[1], "eks");
	assert_string_equal(ec.argv[2], "get-token");
	assert_null(ec.argv[3]);
	assert_string_equal(ec.env[0], "AWS_PROFILE=p");
	assert_null(ec.env[1]);
	assert_string_equal(ec.exec_info, "{\"kind\":\"ExecCredential\",\"apiVersion\":\"" V1
					  "\",\"spec\":{\"interactive\":false}}");
	kube_exec_config_free(&ec);

	/* A path with a '/' is relative to the kubeconfig; the cluster goes along on request. */
	assert_int_equal(parse_exec_yaml("{\"apiVersion\": \"" V1BETA1 "\","
					 " \"command\": \"./bin/plugin\","
					 " \"provideClusterInfo\": true}",
					 &ec),
			 0);
	assert_string_equal(ec.argv[0], "/etc/kube/./bin/plugin");
	assert_string_equal(ec.command, "./bin/plugin");
	assert_non_null(strstr(ec.exec_info, "\"server\":\"https://k:6443\""));
	assert_non_null(strstr(ec.exec_info, "\"certificate-authority-data\":\"Q0E=\""));
	kube_exec_config_free(&ec);
}

static void test_exec_config_refused(void **state)
{
	static const char *const bad[] = {
		"{\"apiVersion\": \"" V1 "\"}",
		"{\"apiVersion\": \"" V1 "\", \"command\": \"\"}",
		"{\"command\": \"p\"}",
		"{\"apiVersion\": \"client.authentication.k8s.io/v1alpha1\", \"command\": \"p\"}",
		"{\"apiVersion\": \"" V1 "\", \"command\": \"p\", \"interactiveMode\": \"Always\"}",
		"{\"apiVersion\": \"" V1 "\", \"command\": \"p\", \"interactiveMode\": \"Maybe\"}",
		"{\"apiVersion\": \"" V1 "\", \"command\": \"p\", \"args\": [1]}",
		"{\"apiVersion\": \"" V1 "\", \"command\": \"p\", \"args\": \"-x\"}",
		"{\"apiVersion\": \"" V1 "\", \"command\": \"p\", \"env\": [{\"name\": \"A\"}]}",
		"{\"apiVersion\": \"" V1 "\", \"command\": \"p\","
		" \"env\": [{\"name\": \"A=B\", \"value\": \"c\"}]}",
		"[\"p\"]",
	};
	struct kube_exec_config ec;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (parse_exec_yaml(bad[i], &ec) != -EINVAL)
			fail_msg("accepted: %s", bad[i]);
}

static int parse_kubeconfig(const char *cluster, const char *user, unsigned int flags,
			    struct kube_config *cfg)
{
	char *text;
	int err;

	assert_true(asprintf(&text,
			     "current-context: c\n"
			     "contexts: [{name: c, context: {cluster: k, user: u}}]\n"
			     "clusters: [{name: k, cluster: {server: 'https://k:443'%s}}]\n"
			     "users: [{name: u, user: {%s}}]\n",
			     cluster, user) > 0);
	err = kube_config_parse(text, strlen(text), "/etc/kube", "test-kubeconfig", flags, cfg);
	free(text);
	return err;
}

static void test_kubeconfig_exec_and_token(void **state)
{
	struct kube_config cfg;

	assert_int_equal(parse_kubeconfig("", "exec: {apiVersion: " V1 ", command: p}", 0, &cfg),
			 0);
	assert_non_null(cfg.exec);
	assert_string_equal(cfg.user_name, "u");
	assert_string_equal(cfg.origin, "test-kubeconfig");
	assert_string_equal(cfg.exec->who, "kubeconfig user \"u\" in test-kubeconfig");
	kube_config_free(&cfg);
	/* A token wins, as in client-go: the plugin is not run. */
	assert_int_equal(parse_kubeconfig("", "token: t, exec: {apiVersion: " V1 ", command: p}", 0,
					  &cfg),
			 0);
	assert_null(cfg.exec);
	assert_string_equal(cfg.token, "t");
	kube_config_free(&cfg);
	assert_int_equal(parse_kubeconfig("",
					  "exec: {apiVersion: " V1 ", command: p,"
					  " interactiveMode: Always}",
					  0, &cfg),
			 -EINVAL);
}

static void test_kubeconfig_insecure(void **state)
{
	struct kube_config cfg;

	assert_int_equal(parse_kubeconfig(", insecure-skip-tls-verify: true", "token: t", 0, &cfg),
			 -EINVAL);
	assert_int_equal(parse_kubeconfig(", insecure-skip-tls-verify: true", "token: t",
					  KUBE_CONFIG_ALLOW_INSECURE, &cfg),
			 0);
	assert_true(cfg.insecure);
	kube_config_free(&cfg);
	assert_int_equal(parse_kubeconfig(", insecure-skip-tls-verify: false", "token: t", 0, &cfg),
			 0);
	assert_false(cfg.insecure);
	kube_config_free(&cfg);
	/* As client-go: no CA together with skipping verification. */
	assert_int_equal(parse_kubeconfig(", insecure-skip-tls-verify: true,"
					  " certificate-authority: ca.crt",
					  "token: t", KUBE_CONFIG_ALLOW_INSECURE, &cfg),
			 -EINVAL);
}

/* --- runs of /bin/sh plugins --- */

static const struct kube_exec_limits test_limits = {
	.timeout_ms = 2000,
	.max_stdout = 65536,
	.max_stderr = 1024,
};

#define CRED(tok)                                                                    \
	"printf '{\"apiVersion\":\"" V1 "\",\"kind\":\"ExecCredential\",\"status\":" \
	"{\"token\":\"%s\"}}' \"" tok "\""

static void sh_plugin(const char *script, const char *env_name, const char *env_value,
		      struct kube_exec_config *ec)
{
	json_t *exec = json_pack("{s:s, s:s, s:[s,s]}", "apiVersion", V1, "command", "/bin/sh",
				 "args", "-c", script);

	if (env_name)
		json_object_set_new(exec, "env",
				    json_pack("[{s:s, s:s}]", "name", env_name, "value",
					      env_value));
	assert_int_equal(kube_exec_config_parse(exec, NULL, "/etc/kube", "test user", ec), 0);
	json_decref(exec);
}

/* Runs script; returns kube_exec_run's result, the token in tok (if any), the reason in err. */
static int run_sh(const char *script, const struct kube_exec_limits *lim, char *tok, char *err,
		  long long *elapsed_ms)
{
	struct kube_exec_config ec;
	struct kube_exec_credential cred;
	long long start = now_ms();
	int ret;

	sh_plugin(script, NULL, NULL, &ec);
	err[0] = tok[0] = '\0';
	ret = kube_exec_run(&ec, lim, NULL, &cred, err, 512);
	if (elapsed_ms)
		*elapsed_ms = now_ms() - start;
	if (!ret)
		snprintf(tok, 128, "%s", cred.token ? cred.token : "");
	kube_exec_credential_free(&cred);
	kube_exec_config_free(&ec);
	return ret;
}

static void test_run_token(void **state)
{
	char tok[128], err[512];

	assert_int_equal(run_sh(CRED("t-1"), &test_limits, tok, err, NULL), 0);
	assert_string_equal(tok, "t-1");
}

static void test_run_environment_and_stdin(void **state)
{
	struct kube_exec_config ec;
	struct kube_exec_credential cred;
	char err[512], tok[128];

	/* The kubeconfig's env over the agent's; KUBERNETES_EXEC_INFO says not interactive. */
	setenv("SLUICE_TEST_OUTER", "outer", 1);
	setenv("SLUICE_TEST_OVER", "agent", 1);
	setenv("KUBERNETES_EXEC_INFO", "stale", 1);
	sh_plugin("case \"$KUBERNETES_EXEC_INFO\" in *'\"interactive\":false'*) i=ni;; *) i=bad;; "
		  "esac; if read x; then in=data; else in=eof; fi; "
		  "tok=\"$SLUICE_TEST_OUTER-$SLUICE_TEST_OVER-$i-$in\"; " CRED("$tok"),
		  "SLUICE_TEST_OVER", "kubeconfig", &ec);
	assert_int_equal(kube_exec_run(&ec, &test_limits, NULL, &cred, err, sizeof(err)), 0);
	snprintf(tok, sizeof(tok), "%s", cred.token);
	assert_string_equal(tok, "outer-kubeconfig-ni-eof");
	kube_exec_credential_free(&cred);
	kube_exec_config_free(&ec);
	unsetenv("SLUICE_TEST_OUTER");
	unsetenv("SLUICE_TEST_OVER");
	unsetenv("KUBERNETES_EXEC_INFO");
}

static void test_run_timeout_kills_the_group(void **state)
{
	struct kube_exec_limits lim = test_limits;
	char tok[128], err[512];
	long long ms;

	lim.timeout_ms = 300;
	/* A child of the plugin holds stdout too: the whole group goes. */
	assert_int_equal(run_sh("sleep 30 & sleep 30", &lim, tok, err, &ms), -EIO);
	assert_non_null(strstr(err, "gave no answer within 300 ms: killed"));
	assert_true(ms < 2000);
}

static void test_run_exit_leaves_no_wait_for_children(void **state)
{
	char tok[128], err[512];
	long long ms;

	/* The plugin answers and exits; a child of it keeps the pipes open. */
	assert_int_equal(run_sh(CRED("t") "; sleep 5 &", &test_limits, tok, err, &ms), 0);
	assert_string_equal(tok, "t");
	assert_true(ms < 1500);
}

static void test_run_stdout_cap(void **state)
{
	struct kube_exec_limits lim = test_limits;
	char tok[128], err[512];
	long long ms;

	lim.max_stdout = 4096;
	assert_int_equal(run_sh("yes", &lim, tok, err, &ms), -EIO);
	assert_non_null(strstr(err, "wrote more than 4096 bytes: killed"));
	assert_true(ms < 2000);
}

static void test_run_much_stderr(void **state)
{
	char tok[128], err[512];

	/* More stderr than is logged is read and dropped: the plugin never blocks on it. */
	assert_int_equal(run_sh("head -c 300000 /dev/zero | tr '\\0' e >&2; " CRED("t"),
				&test_limits, tok, err, NULL),
			 0);
	assert_string_equal(tok, "t");
}

static void test_run_failures(void **state)
{
	struct kube_exec_config ec;
	struct kube_exec_credential cred;
	char tok[128], err[512];
	json_t *exec;

	assert_int_equal(run_sh("echo 'no credentials' >&2; exit 3", &test_limits, tok, err, NULL),
			 -EIO);
	assert_string_equal(err, "test user: exec plugin \"/bin/sh\" exited with status 3");
	assert_int_equal(run_sh("kill -TERM $$", &test_limits, tok, err, NULL), -EIO);
	assert_non_null(strstr(err, "killed by signal 15"));
	assert_int_equal(run_sh("echo hello", &test_limits, tok, err, NULL), -EIO);
	assert_non_null(strstr(err, "printed no valid ExecCredential: not JSON"));
	assert_int_equal(run_sh("true", &test_limits, tok, err, NULL), -EIO);
	assert_non_null(strstr(err, "printed no valid ExecCredential"));

	/* Not found: the install hint says what to do. */
	exec = json_pack("{s:s, s:s, s:s}", "apiVersion", V1, "command", "no-such-plugin-here",
			 "installHint", "install it from example.com");
	assert_int_equal(kube_exec_config_parse(exec, NULL, "/etc/kube", "test user", &ec), 0);
	json_decref(exec);
	assert_int_equal(kube_exec_run(&ec, &test_limits, NULL, &cred, err, sizeof(err)), -EIO);
	assert_non_null(strstr(err, "cannot run: No such file or directory"));
	assert_non_null(strstr(err, "install it from example.com"));
	kube_exec_config_free(&ec);
}

static void test_run_stop(void **state)
{
	struct kube_exec_config ec;
	struct kube_exec_credential cred;
	atomic_bool stop = true;
	char err[512];

	sh_plugin("sleep 30", NULL, NULL, &ec);
	assert_int_equal(kube_exec_run(&ec, &test_limits, &stop, &cred, err, sizeof(err)),
			 -ECANCELED);
	kube_exec_config_free(&ec);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc3339),
		cmocka_unit_test(test_credential_token_with_expiry),
		cmocka_unit_test(test_credential_certificate),
		cmocka_unit_test(test_credential_v1beta1),
		cmocka_unit_test(test_credential_refused),
		cmocka_unit_test(test_exec_config),
		cmocka_unit_test(test_exec_config_refused),
		cmocka_unit_test(test_kubeconfig_exec_and_token),
		cmocka_unit_test(test_kubeconfig_insecure),
		cmocka_unit_test(test_run_token),
		cmocka_unit_test(test_run_environment_and_stdin),
		cmocka_unit_test(test_run_timeout_kills_the_group),
		cmocka_unit_test(test_run_exit_leaves_no_wait_for_children),
		cmocka_unit_test(test_run_stdout_cap),
		cmocka_unit_test(test_run_much_stderr),
		cmocka_unit_test(test_run_failures),
		cmocka_unit_test(test_run_stop),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
