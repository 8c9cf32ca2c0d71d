// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests of the manifest directory source and the file reader it uses,
 * in a temporary directory: files held open by a writer, files larger than
 * the cap, FIFOs, and re-reads that add, keep and remove objects.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "lib/file.h"
#include "lib/log.h"
#include "source/source_dir.h"

struct fixture {
	char dir[64];
	struct store st;
	struct dir_source src;
};

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));

	snprintf(fx->dir, sizeof(fx->dir), "/tmp/sluice-dir-test.XXXXXX");
	if (!mkdtemp(fx->dir))
		return -1;
	store_init(&fx->st);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	char cmd[128];

	dir_source_close(&fx->src);
	store_destroy(&fx->st);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->dir);
	if (system(cmd))
		return -1;
	free(fx);
	return 0;
}

static void path_of(const struct fixture *fx, const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", fx->dir, name);
}

/* Services svc-FIRST .. svc-(FIRST+N-1) in namespace ns, as one YAML text. */
static char *services_yaml(int first, int n)
{
	size_t cap = (size_t)n * 160 + 1, len = 0;
	char *text = malloc(cap);

	text[0] = '\0';
	for (int i = first; i < first + n; i++)
		len += snprintf(text + len, cap - len,
				"---\napiVersion: v1\nkind: Service\nmetadata: {name: svc-%d, "
				"namespace: ns}\nspec:\n  clusterIP: 10.96.%d.%d\n  ports: [{port: "
				"80}]\n",
				i, i / 250, i % 250 + 1);
	return text;
}

/* The same Services as one JSON kind: List, as kubectl writes it (items before kind). */
static char *services_json(int first, int n, int changed)
{
	size_t cap = (size_t)n * 200 + 100, len = 0;
	char *text = malloc(cap);

	len += snprintf(text, cap, "{\"apiVersion\": \"v1\", \"items\": [\n");
	for (int i = first; i < first + n; i++)
		len += snprintf(text + len, cap - len,
				"%s{\"apiVersion\": \"v1\", \"kind\": \"Service\", \"metadata\": "
				"{\"name\": \"svc-%d\", \"namespace\": \"ns\"}, \"spec\": "
				"{\"clusterIP\": \"10.96.%d.%d\", \"ports\": [{\"port\": %d}]}}\n",
				i > first ? "," : "", i, i / 250, i % 250 + 1,
				i == changed ? 81 : 80);
	snprintf(text + len, cap - len, "], \"kind\": \"List\"}\n");
	return text;
}

static void write_file(const struct fixture *fx, const char *name, const char *text)
{
	char path[256];
	FILE *f;

	path_of(fx, name, path, sizeof(path));
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

static bool has_service(const struct fixture *fx, int i)
{
	char key[64];

	snprintf(key, sizeof(key), "ns/svc-%d", i);
	return store_get_service(&fx->st, key) != NULL;
}

static void test_fifo_is_refused_without_blocking(void **state)
{
	struct fixture *fx = *state;
	char path[256], *text = NULL;
	size_t len;

	path_of(fx, "pipe.yaml", path, sizeof(path));
	assert_int_equal(mkfifo(path, 0600), 0);
	/* Opening a FIFO without a writer would block a plain open() forever. */
	assert_int_equal(read_file_checked(path, 1 << 20, &text, &len, NULL), -EINVAL);
	assert_int_equal(dir_source_open(&fx->src, fx->dir, 0, &fx->st), 0);
	assert_int_equal(fx->st.services.count, 0);
}

static void test_file_over_the_cap_is_not_read(void **state)
{
	struct fixture *fx = *state;
	char *big = services_yaml(0, 100), *small = services_yaml(100, 1);
	char path[256], *text = NULL;
	size_t len;

	write_file(fx, "big.yaml", big);
	write_file(fx, "small.yaml", small);
	path_of(fx, "big.yaml", path, sizeof(path));
	assert_int_equal(read_file_checked(path, 1024, &text, &len, NULL), -EFBIG);
	assert_int_equal(dir_source_open(&fx->src, fx->dir, 4096, &fx->st), 0);
	/* The small file serves; the big one is rejected, once. */
	assert_true(has_service(fx, 100));
	assert_false(has_service(fx, 0));
	assert_int_equal(fx->src.rejected, 1);
	free(big);
	free(small);
}

static void test_file_held_by_a_writer_waits_for_its_close(void **state)
{
	struct fixture *fx = *state;
	char *full = services_yaml(0, 2), *other = services_yaml(10, 1);
	char path[256];
	int fd;

	assert_int_equal(dir_source_open(&fx->src, fx->dir, 0, &fx->st), 0);
	path_of(fx, "slow.yaml", path, sizeof(path));
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	/* Half of the text: it parses, with one Service and a port cut short. */
	assert_int_equal(write(fd, full, strlen(full) / 2), (ssize_t)(strlen(full) / 2));
	/* Another file finishing makes the source rescan the directory. */
	write_file(fx, "other.yaml", other);
	assert_int_equal(dir_source_handle_events(&fx->src), 0);
	assert_true(has_service(fx, 10));
	assert_false(has_service(fx, 0));

	assert_int_equal(write(fd, full + strlen(full) / 2, strlen(full) - strlen(full) / 2),
			 (ssize_t)(strlen(full) - strlen(full) / 2));
	assert_int_equal(close(fd), 0);
	assert_int_equal(dir_source_handle_events(&fx->src), 0);
	assert_true(has_service(fx, 0));
	assert_true(has_service(fx, 1));
	free(full);
	free(other);
}

static void test_reread_adds_keeps_and_removes(void **state)
{
	struct fixture *fx = *state;
	enum { N = 2000 };
	char *first = services_yaml(0, N), *second = services_yaml(N / 2, N);
	char *bad, *svc_bad;
	size_t len;

	write_file(fx, "many.yaml", first);
	assert_int_equal(dir_source_open(&fx->src, fx->dir, 0, &fx->st), 0);
	assert_int_equal(fx->st.services.count, N);

	/* Half of them go, half stay, N/2 are new. */
	write_file(fx, "many.yaml", second);
	assert_int_equal(dir_source_handle_events(&fx->src), 0);
	assert_int_equal(fx->st.services.count, N);
	assert_false(has_service(fx, 0));
	assert_false(has_service(fx, N / 2 - 1));
	assert_true(has_service(fx, N / 2));
	assert_true(has_service(fx, N + N / 2 - 1));

	/* An object that turns invalid keeps its last good version; the others move on. */
	len = strlen(second) + 200;
	bad = malloc(len);
	svc_bad = strstr(second, "name: svc-1500,");
	assert_non_null(svc_bad);
	svc_bad = strstr(svc_bad, "clusterIP: ");
	snprintf(bad, len, "%.*sclusterIP: 10.96.999.1%s", (int)(svc_bad - second), second,
		 strchr(svc_bad, '\n'));
	write_file(fx, "many.yaml", bad);
	assert_int_equal(dir_source_handle_events(&fx->src), 0);
	assert_true(has_service(fx, 1500));
	assert_int_equal(fx->src.rejected, 1);
	assert_int_equal(fx->st.services.count, N);

	assert_int_equal(unlink(strcat(strcpy(bad, fx->dir), "/many.yaml")), 0);
	assert_int_equal(dir_source_handle_events(&fx->src), 0);
	assert_int_equal(fx->st.services.count, 0);
	free(first);
	free(second);
	free(bad);
}

/* A JSON List read again: only the items whose bytes changed are decoded. */
static void test_json_reread_decodes_only_changed_items(void **state)
{
	struct fixture *fx = *state;
	enum { N = 1000 };
	char *first = services_json(0, N, -1), *second = services_json(1, N, 7), *bad;
	const struct service *svc;
	uint64_t changes;

	write_file(fx, "list.json", first);
	assert_int_equal(dir_source_open(&fx->src, fx->dir, 0, &fx->st), 0);
	assert_int_equal(fx->st.services.count, N);
	assert_int_equal(fx->src.items_decoded, N);
	changes = fx->st.service_changes;

	/* svc-0 gone, svc-7's port changed, svc-1000 new: three items decoded, three changes. */
	write_file(fx, "list.json", second);
	assert_int_equal(dir_source_handle_events(&fx->src), 0);
	assert_int_equal(fx->src.items_decoded, N + 2);
	assert_int_equal(fx->src.items_skipped, N - 2);
	assert_int_equal(fx->st.service_changes, changes + 3);
	assert_false(has_service(fx, 0));
	assert_true(has_service(fx, N));
	svc = store_get_service(&fx->st, "ns/svc-7");
	assert_non_null(svc);
	assert_int_equal(svc->ports[0].port, 81);
	assert_int_equal(fx->st.services.count, N);

	/* svc-7 turns invalid: its last good version stays, also when the others are skipped. */
	bad = strdup(second);
	memcpy(strstr(bad, "10.96.0.8\""), "10.96.0.999", 11);
	write_file(fx, "list.json", bad);
	assert_int_equal(dir_source_handle_events(&fx->src), 0);
	assert_int_equal(fx->src.rejected, 1);
	assert_int_equal(store_get_service(&fx->st, "ns/svc-7")->ports[0].port, 81);
	/* The next read decodes it again (rejected items are never skipped), and it still stays. */
	write_file(fx, "list.json", bad);
	assert_int_equal(dir_source_handle_events(&fx->src), 0);
	assert_int_equal(fx->src.rejected, 1);
	assert_true(has_service(fx, 7));
	assert_int_equal(fx->st.services.count, N);

	/* Back to the first text: svc-0 and svc-1000 swap again; then the file goes. */
	write_file(fx, "list.json", first);
	assert_int_equal(dir_source_handle_events(&fx->src), 0);
	assert_true(has_service(fx, 0));
	assert_false(has_service(fx, N));
	assert_int_equal(store_get_service(&fx->st, "ns/svc-7")->ports[0].port, 80);
	assert_int_equal(unlink(strcat(strcpy(bad, fx->dir), "/list.json")), 0);
	assert_int_equal(dir_source_handle_events(&fx->src), 0);
	assert_int_equal(fx->st.services.count, 0);
	free(first);
	free(second);
	free(bad);
}

/* The same object twice in a file, once in an item that changes: it stays. */
static void test_duplicate_object_in_an_unchanged_item_stays(void **state)
{
	struct fixture *fx = *state;
	char *one = services_json(5, 1, -1), *text = malloc(4096);
	const char *item = strstr(one, "{\"apiVersion\": \"v1\", \"kind\": \"Service\"");
	int len = (int)(strstr(item, "\n") - item);

	snprintf(text, 4096, "[%.*s, %.*s]", len, item, len, item);
	write_file(fx, "dup.json", text);
	assert_int_equal(dir_source_open(&fx->src, fx->dir, 0, &fx->st), 0);
	assert_true(has_service(fx, 5));
	/* The second copy becomes another kind: the first, unchanged, still holds svc-5. */
	snprintf(text, 4096, "[%.*s, {\"kind\": \"ConfigMap\", \"apiVersion\": \"v1\"}]", len,
		 item);
	write_file(fx, "dup.json", text);
	assert_int_equal(dir_source_handle_events(&fx->src), 0);
	assert_true(has_service(fx, 5));
	free(one);
	free(text);
}

/* A ConfigMap volume: the kubelet swaps "..data" to a new directory by rename. */
static void test_configmap_swap_is_followed(void **state)
{
	struct fixture *fx = *state;
	char *v1 = services_yaml(0, 1), *v2 = services_yaml(1, 1);
	char a[256], b[256];

	path_of(fx, "..2026_a", a, sizeof(a));
	path_of(fx, "..2026_b", b, sizeof(b));
	assert_int_equal(mkdir(a, 0755), 0);
	write_file(fx, "..2026_a/web.yaml", v1);
	assert_int_equal(symlinkat("..2026_a", AT_FDCWD, strcat(strcpy(a, fx->dir), "/..data")), 0);
	assert_int_equal(
		symlinkat("..data/web.yaml", AT_FDCWD, strcat(strcpy(a, fx->dir), "/web.yaml")), 0);
	assert_int_equal(dir_source_open(&fx->src, fx->dir, 0, &fx->st), 0);
	assert_true(has_service(fx, 0));

	assert_int_equal(mkdir(b, 0755), 0);
	write_file(fx, "..2026_b/web.yaml", v2);
	assert_int_equal(symlinkat("..2026_b", AT_FDCWD, strcat(strcpy(a, fx->dir), "/..data_tmp")),
			 0);
	assert_int_equal(rename(a, strcat(strcpy(b, fx->dir), "/..data")), 0);
	assert_int_equal(dir_source_handle_events(&fx->src), 0);
	assert_false(has_service(fx, 0));
	assert_true(has_service(fx, 1));
	free(v1);
	free(v2);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_fifo_is_refused_without_blocking),
		T(test_file_over_the_cap_is_not_read),
		T(test_file_held_by_a_writer_waits_for_its_close),
		T(test_reread_adds_keeps_and_removes),
		T(test_configmap_swap_is_followed),
		T(test_json_reread_decodes_only_changed_items),
		T(test_duplicate_object_in_an_unchanged_item_stays),
	};

	log_set_level(LOG_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
