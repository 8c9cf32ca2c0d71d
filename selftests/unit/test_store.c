// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests of the store: objects by name, slices grouped by their
 * Service, and the changes it hands over (store_take_changes).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "core_fixture.h"
#include "lib/log.h"

static const char *const one_addr[] = { "10.244.1.1", NULL };
static const char *const two_addrs[] = { "10.244.1.1", "10.244.1.2", NULL };

static void take(struct store *st, struct store_changes *ch)
{
	store_changes_init(ch);
	store_take_changes(st, ch);
}

static void test_service_put_and_delete_are_changes(void **state)
{
	struct store_changes ch;
	struct store st;

	store_init(&st);
	assert_int_equal(put_service(&st, "default", "web", "10.96.0.10"), 1);
	assert_int_equal(store_pending(&st), 1);
	assert_non_null(store_get_service(&st, "default/web"));
	take(&st, &ch);
	assert_int_equal(store_pending(&st), 0);
	assert_int_equal(ch.services.count, 1);
	assert_non_null(strmap_get(&ch.services, "default/web"));
	store_changes_destroy(&ch);

	store_delete_service(&st, "default", "web");
	assert_null(store_get_service(&st, "default/web"));
	take(&st, &ch);
	assert_non_null(strmap_get(&ch.services, "default/web"));
	store_changes_destroy(&ch);
	store_destroy(&st);
}

static void test_slices_group_by_service_and_mark_it(void **state)
{
	const struct slice_group *group;
	struct store_changes ch;
	struct store st;

	store_init(&st);
	put_slice(&st, "default", "web-a", "web", one_addr, NULL);
	put_slice(&st, "default", "web-b", "web", two_addrs, NULL);
	group = store_service_slices(&st, "default/web");
	assert_non_null(group);
	assert_int_equal(group->n, 2);
	take(&st, &ch);
	/* Slices mark their Service, not themselves. */
	assert_int_equal(ch.services.count, 1);
	assert_non_null(strmap_get(&ch.services, "default/web"));
	store_changes_destroy(&ch);

	/* Replacing a slice keeps one entry for it. */
	put_slice(&st, "default", "web-a", "web", two_addrs, NULL);
	assert_int_equal(store_service_slices(&st, "default/web")->n, 2);
	store_delete_slice(&st, "default", "web-a");
	store_delete_slice(&st, "default", "web-b");
	assert_null(store_service_slices(&st, "default/web"));
	take(&st, &ch);
	assert_non_null(strmap_get(&ch.services, "default/web"));
	store_changes_destroy(&ch);
	store_destroy(&st);
}

static void test_slice_moving_to_another_service_marks_both(void **state)
{
	struct store_changes ch;
	struct store st;

	store_init(&st);
	put_slice(&st, "default", "s", "old", one_addr, NULL);
	take(&st, &ch);
	store_changes_destroy(&ch);
	put_slice(&st, "default", "s", "new", one_addr, NULL);
	assert_null(store_service_slices(&st, "default/old"));
	assert_int_equal(store_service_slices(&st, "default/new")->n, 1);
	take(&st, &ch);
	assert_int_equal(ch.services.count, 2);
	assert_non_null(strmap_get(&ch.services, "default/old"));
	assert_non_null(strmap_get(&ch.services, "default/new"));
	store_changes_destroy(&ch);
	store_destroy(&st);
}

static void test_nodes_are_changes_of_their_own(void **state)
{
	struct store_changes ch;
	struct store st;

	store_init(&st);
	put_node(&st, "node-a", "zone-1");
	assert_string_equal(store_get_node(&st, "node-a")->zone, "zone-1");
	take(&st, &ch);
	assert_int_equal(ch.services.count, 0);
	assert_non_null(strmap_get(&ch.nodes, "node-a"));
	store_changes_destroy(&ch);
	store_delete_node(&st, "node-a");
	assert_null(store_get_node(&st, "node-a"));
	assert_int_equal(store_pending(&st), 1);
	store_destroy(&st);
}

/* A re-read file or a relist brings equal objects: nothing is marked, nothing counted. */
static void test_equal_objects_are_no_change(void **state)
{
	struct store_changes ch;
	struct store st;

	store_init(&st);
	put_service(&st, "default", "web", "10.96.0.10");
	put_slice(&st, "default", "web-1", "web", two_addrs, NULL);
	put_node(&st, "node-a", "zone-1");
	take(&st, &ch);
	store_changes_destroy(&ch);
	put_service(&st, "default", "web", "10.96.0.10");
	put_slice(&st, "default", "web-1", "web", two_addrs, NULL);
	put_node(&st, "node-a", "zone-1");
	assert_int_equal(store_pending(&st), 0);
	assert_int_equal(st.slice_changes, 1);
	assert_int_equal(st.service_changes, 1);
	assert_int_equal(store_service_slices(&st, "default/web")->n, 1);
	/* One endpoint less is a change of its Service. */
	put_slice(&st, "default", "web-1", "web", one_addr, NULL);
	take(&st, &ch);
	assert_int_equal(ch.services.count, 1);
	assert_non_null(strmap_get(&ch.services, "default/web"));
	store_changes_destroy(&ch);
	assert_int_equal(store_service_slices(&st, "default/web")->slices[0]->n_endpoints, 1);
	put_node(&st, "node-a", "zone-2");
	assert_int_equal(store_pending(&st), 1);
	store_destroy(&st);
}

static void test_take_merges_into_what_the_caller_holds(void **state)
{
	struct store_changes ch;
	struct store st;

	store_init(&st);
	put_service(&st, "default", "a", "10.96.0.1");
	take(&st, &ch);
	put_service(&st, "default", "b", "10.96.0.2");
	put_service(&st, "default", "a", "10.96.0.1");
	store_take_changes(&st, &ch);
	assert_int_equal(ch.services.count, 2);
	assert_non_null(strmap_get(&ch.services, "default/a"));
	assert_non_null(strmap_get(&ch.services, "default/b"));
	assert_int_equal(store_pending(&st), 0);
	store_changes_destroy(&ch);
	store_destroy(&st);
}

static void test_mark_all_dirty_marks_every_service(void **state)
{
	struct store_changes ch;
	struct store st;

	store_init(&st);
	put_service(&st, "default", "a", "10.96.0.1");
	put_service(&st, "other", "b", "10.96.0.2");
	take(&st, &ch);
	store_changes_destroy(&ch);
	store_mark_all_dirty(&st);
	take(&st, &ch);
	assert_int_equal(ch.services.count, 2);
	store_changes_destroy(&ch);
	store_destroy(&st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_service_put_and_delete_are_changes),
		cmocka_unit_test(test_slices_group_by_service_and_mark_it),
		cmocka_unit_test(test_slice_moving_to_another_service_marks_both),
		cmocka_unit_test(test_nodes_are_changes_of_their_own),
		cmocka_unit_test(test_equal_objects_are_no_change),
		cmocka_unit_test(test_take_merges_into_what_the_caller_holds),
		cmocka_unit_test(test_mark_all_dirty_marks_every_service),
	};

	log_set_level(LOG_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
