// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests of the engine against a recording output: what each flush
 * hands over (full sync, one endpoint change, removals), owner conflicts,
 * this node's zone changing, and a failed apply being retried.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "core/engine.h"
#include "core_fixture.h"
#include "lib/addr.h"
#include "lib/log.h"

#define MAX_SEEN 32

/* What an output saw in its last apply, and since the start. */
struct recorder {
	int fail_with; /* returned by apply; 0: succeed */
	int applies;
	bool full;
	size_t added, changed, removed;
	char keys[MAX_SEEN][64]; /* "+|~|- addr:port/proto nbackends" */
	uint32_t ids[MAX_SEEN]; /* service_id of each of keys */
	size_t n_keys;
	int notified; /* service_applied calls */
	char last_service[64];
	size_t last_frontends;
};

static void key_text(const struct frontend *fe, char op, char *buf, size_t len)
{
	char addr[IP_ADDR_STRLEN];

	snprintf(buf, len, "%c %s:%u/%u %zu", op, ip_addr_format(&fe->key.addr, addr), fe->key.port,
		 fe->key.proto, fe->n_backends);
}

static int record_apply(void *ctx, const struct state_diff *diff)
{
	struct recorder *r = ctx;

	r->applies++;
	if (r->fail_with)
		return r->fail_with;
	r->full = diff->full;
	r->added = r->changed = r->removed = r->n_keys = 0;
	for (size_t i = 0; i < diff->n_changes; i++) {
		const struct frontend_change *c = &diff->changes[i];
		char op = !c->old ? '+' : !c->new ? '-' : '~';

		if (op == '+')
			r->added++;
		else if (op == '-')
			r->removed++;
		else
			r->changed++;
		if (r->n_keys < MAX_SEEN) {
			r->ids[r->n_keys] = (c->new ? c->new : c->old)->service_id;
			key_text(c->new ? c->new : c->old, op, r->keys[r->n_keys++],
				 sizeof(r->keys[0]));
		}
	}
	return 0;
}

static void record_applied(void *ctx, const struct service_applied *sa)
{
	struct recorder *r = ctx;

	r->notified++;
	snprintf(r->last_service, sizeof(r->last_service), "%s", sa->key);
	r->last_frontends = sa->frontends->n;
}

static const struct output_ops recorder_ops = {
	.apply = record_apply,
	.service_applied = record_applied,
};

static bool saw(const struct recorder *r, const char *key)
{
	for (size_t i = 0; i < r->n_keys; i++) {
		if (!strcmp(r->keys[i], key))
			return true;
	}
	return false;
}

struct world {
	struct store st;
	struct engine eng;
	struct recorder rec;
};

static int world_setup(void **state)
{
	struct world *w = calloc(1, sizeof(*w));

	store_init(&w->st);
	engine_init(&w->eng, &w->st, "node-a");
	assert_int_equal(engine_add_output(&w->eng, "recorder", &recorder_ops, &w->rec), 0);
	*state = w;
	return 0;
}

static int world_teardown(void **state)
{
	struct world *w = *state;

	engine_destroy(&w->eng);
	store_destroy(&w->st);
	free(w);
	return 0;
}

static const char *const ep1[] = { "10.244.1.1", NULL };
static const char *const ep12[] = { "10.244.1.1", "10.244.1.2", NULL };

static void test_first_flush_is_full_and_lists_every_frontend(void **state)
{
	struct world *w = *state;

	put_service(&w->st, "default", "web", "10.96.0.10");
	put_slice(&w->st, "default", "web-1", "web", ep12, NULL);
	assert_true(engine_pending(&w->eng) > 0);
	assert_int_equal(engine_flush(&w->eng), 0);
	assert_int_equal(w->rec.applies, 1);
	assert_true(w->rec.full);
	/* The ClusterIP marker (refuses other ports) and port 80 with both endpoints. */
	assert_int_equal(w->rec.added, 2);
	assert_true(saw(&w->rec, "+ 10.96.0.10:0/0 0"));
	assert_true(saw(&w->rec, "+ 10.96.0.10:80/6 2"));
	assert_int_equal(w->rec.notified, 1);
	assert_string_equal(w->rec.last_service, "default/web");
	assert_int_equal(engine_pending(&w->eng), 0);
	assert_int_equal(engine_services(&w->eng), 1);
}

static void test_one_endpoint_change_is_one_change(void **state)
{
	struct world *w = *state;

	put_service(&w->st, "default", "web", "10.96.0.10");
	put_slice(&w->st, "default", "web-1", "web", ep12, NULL);
	put_service(&w->st, "default", "other", "10.96.0.11");
	assert_int_equal(engine_flush(&w->eng), 0);

	put_slice(&w->st, "default", "web-1", "web", ep1, NULL);
	assert_int_equal(engine_flush(&w->eng), 0);
	assert_int_equal(w->rec.applies, 2);
	assert_false(w->rec.full);
	assert_int_equal(w->rec.added + w->rec.removed, 0);
	assert_int_equal(w->rec.changed, 1);
	assert_true(saw(&w->rec, "~ 10.96.0.10:80/6 1"));
	/* Only the changed Service is resolved and reported again. */
	assert_int_equal(w->rec.notified, 3);
	assert_string_equal(w->rec.last_service, "default/web");
}

static void test_nothing_pending_applies_nothing(void **state)
{
	struct world *w = *state;

	put_service(&w->st, "default", "web", "10.96.0.10");
	assert_int_equal(engine_flush(&w->eng), 0);
	assert_int_equal(engine_flush(&w->eng), 0);
	assert_int_equal(w->rec.applies, 1);
	/* The same object again (a re-read file, a relist) is no change at all. */
	put_service(&w->st, "default", "web", "10.96.0.10");
	assert_int_equal(engine_pending(&w->eng), 0);
	assert_int_equal(engine_flush(&w->eng), 0);
	assert_int_equal(w->rec.applies, 1);
	/* Another source path for it is no change either. */
	put_yaml(&w->st,
		 "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: default}\n"
		 "spec:\n  clusterIP: 10.96.0.10\n  ports: [{port: 80, protocol: TCP, "
		 "targetPort: 8080}]\n");
	assert_int_equal(engine_pending(&w->eng), 0);
	/* A real change is one. */
	put_service(&w->st, "default", "web", "10.96.0.11");
	assert_int_equal(engine_pending(&w->eng), 1);
}

static void test_deleted_service_is_removed(void **state)
{
	struct world *w = *state;

	put_service(&w->st, "default", "web", "10.96.0.10");
	put_slice(&w->st, "default", "web-1", "web", ep1, NULL);
	assert_int_equal(engine_flush(&w->eng), 0);
	store_delete_service(&w->st, "default", "web");
	assert_int_equal(engine_flush(&w->eng), 0);
	assert_int_equal(w->rec.removed, 2);
	assert_int_equal(w->rec.last_frontends, 0);
	assert_int_equal(engine_services(&w->eng), 0);
}

static void test_second_owner_of_a_frontend_is_ignored(void **state)
{
	struct world *w = *state;

	put_service(&w->st, "default", "first", "10.96.0.10");
	assert_int_equal(engine_flush(&w->eng), 0);
	put_service(&w->st, "default", "second", "10.96.0.10");
	assert_int_equal(engine_flush(&w->eng), 0);
	/* The first owner keeps both frontends; the newcomer gets none. */
	assert_int_equal(w->rec.added + w->rec.changed + w->rec.removed, 0);
	assert_string_equal(w->rec.last_service, "default/second");
	assert_int_equal(w->rec.last_frontends, 0);
	assert_int_equal(engine_services(&w->eng), 1);
}

static void test_frontend_let_go_goes_to_the_service_that_lost_it(void **state)
{
	struct world *w = *state;

	put_service(&w->st, "default", "first", "10.96.0.10");
	assert_int_equal(engine_flush(&w->eng), 0);
	put_service(&w->st, "default", "second", "10.96.0.10");
	assert_int_equal(engine_flush(&w->eng), 0);
	assert_int_equal(w->rec.last_frontends, 0);

	store_delete_service(&w->st, "default", "first");
	assert_int_equal(engine_flush(&w->eng), 0);
	assert_int_equal(w->rec.removed, 2);
	/* The loser is handed over again and now takes both frontends. */
	assert_true(engine_pending(&w->eng) > 0);
	assert_int_equal(engine_flush(&w->eng), 0);
	assert_int_equal(w->rec.added, 2);
	assert_string_equal(w->rec.last_service, "default/second");
	assert_int_equal(w->rec.last_frontends, 2);
}

static void test_claims_in_one_flush_are_settled_by_name(void **state)
{
	struct world *w = *state;

	/* Put in the other order: the name decides, not the arrival. */
	put_service(&w->st, "default", "zz", "10.96.0.10");
	put_service(&w->st, "default", "aa", "10.96.0.10");
	assert_int_equal(engine_flush(&w->eng), 0);
	assert_int_equal(w->rec.added, 2);
	assert_int_equal(engine_services(&w->eng), 1);
	assert_string_equal(w->rec.last_service, "default/zz");
	assert_int_equal(w->rec.last_frontends, 0);
}

static void test_zone_change_of_this_node_resolves_every_service(void **state)
{
	static const char *const hinted[] = { "10.244.1.1", NULL };
	struct world *w = *state;

	put_node(&w->st, "node-a", "zone-1");
	put_service(&w->st, "default", "web", "10.96.0.10");
	put_slice(&w->st, "default", "web-1", "web", hinted, "zone-2");
	put_service(&w->st, "default", "other", "10.96.0.11");
	assert_int_equal(engine_flush(&w->eng), 0);
	/* Hinted for another zone: PreferSameZone does not apply, all endpoints serve. */
	assert_true(saw(&w->rec, "+ 10.96.0.10:80/6 1"));

	/* Another node changing resolves nothing. */
	put_node(&w->st, "node-b", "zone-2");
	assert_int_equal(engine_flush(&w->eng), 0);
	assert_int_equal(w->rec.applies, 1);
	assert_int_equal(w->rec.notified, 2);

	/* This node moving into the hinted zone re-resolves both Services. */
	put_node(&w->st, "node-a", "zone-2");
	assert_int_equal(engine_flush(&w->eng), 0);
	assert_int_equal(w->rec.applies, 2);
	assert_int_equal(w->rec.notified, 4);
	assert_int_equal(w->rec.changed, 1); /* the choice is now "zone" */
}

static void test_dsr_follows_the_address_of_the_backends_node(void **state)
{
	static const char *const node_b =
		"apiVersion: v1\nkind: Node\nmetadata: {name: node-b}\n"
		"status: {addresses: [{type: InternalIP, address: 192.168.0.2}]}\n";
	struct world *w = *state;

	put_yaml(&w->st, "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n"
			 "  namespace: default\n  annotations: {sluice.io/forwarding-mode: dsr}\n"
			 "spec: {type: NodePort, clusterIP: 10.96.0.10,\n"
			 "  ports: [{port: 80, targetPort: 8080, nodePort: 30080}]}\n");
	put_slice(&w->st, "default", "web-1", "web", ep1, NULL); /* on node-b */
	assert_int_equal(engine_flush(&w->eng), 0);
	assert_int_equal(w->rec.applies, 1);
	/* node-b's address becomes known: the NodePort frontend (DSR) changes, only it. */
	put_yaml(&w->st, node_b);
	assert_int_equal(engine_flush(&w->eng), 0);
	assert_int_equal(w->rec.applies, 2);
	assert_int_equal(w->rec.changed, 1);
	assert_true(saw(&w->rec, "~ 0.0.0.0:30080/6 1"));
	/* The same address again: nothing to do. */
	put_yaml(&w->st, node_b);
	assert_int_equal(engine_flush(&w->eng), 0);
	assert_int_equal(w->rec.applies, 2);
}

static void test_failed_apply_is_retried_with_the_same_changes(void **state)
{
	struct world *w = *state;

	put_service(&w->st, "default", "web", "10.96.0.10");
	put_slice(&w->st, "default", "web-1", "web", ep12, NULL);
	w->rec.fail_with = -EIO;
	assert_int_equal(engine_flush(&w->eng), -EIO);
	assert_int_equal(w->rec.notified, 0);
	assert_true(engine_pending(&w->eng) > 0);
	assert_int_equal(engine_services(&w->eng), 0);

	/* A change arriving meanwhile joins the retry. */
	put_service(&w->st, "default", "api", "10.96.0.12");
	w->rec.fail_with = 0;
	assert_int_equal(engine_flush(&w->eng), 0);
	assert_true(w->rec.full); /* still the first successful apply */
	assert_int_equal(w->rec.added, 4);
	assert_true(saw(&w->rec, "+ 10.96.0.10:80/6 2"));
	assert_true(saw(&w->rec, "+ 10.96.0.12:80/6 0"));
	assert_int_equal(w->rec.notified, 2);
	assert_int_equal(engine_pending(&w->eng), 0);
}

static void test_outputs_are_bounded(void **state)
{
	struct world *w = *state;
	int err = 0;

	for (int i = 0; i < ENGINE_MAX_OUTPUTS && !err; i++)
		err = engine_add_output(&w->eng, "more", &recorder_ops, &w->rec);
	assert_int_equal(err, -ENOSPC);
}

/* The service_id the last apply handed over with key, or 0. */
static uint32_t id_of(const struct recorder *r, const char *key)
{
	for (size_t i = 0; i < r->n_keys; i++) {
		if (!strcmp(r->keys[i], key))
			return r->ids[i];
	}
	return 0;
}

/* Adds Service default/NAME at 10.96.0.OCTET alone in one flush; returns its id. */
static uint32_t add_one(struct world *w, const char *name, int octet)
{
	char ip[32], key[64];

	snprintf(ip, sizeof(ip), "10.96.0.%d", octet);
	snprintf(key, sizeof(key), "+ %s:80/6 0", ip);
	put_service(&w->st, "default", name, ip);
	assert_int_equal(engine_flush(&w->eng), 0);
	return id_of(&w->rec, key);
}

static void test_ids_of_deleted_services_are_reused_lowest_first(void **state)
{
	struct world *w = *state;
	char name[32];

	assert_int_equal(add_one(w, "a", 1), 1);
	assert_int_equal(add_one(w, "b", 2), 2);
	assert_int_equal(add_one(w, "c", 3), 3);
	assert_int_equal(add_one(w, "d", 4), 4);
	/* Freed ids come back lowest first, before any new one. */
	store_delete_service(&w->st, "default", "c");
	store_delete_service(&w->st, "default", "b");
	assert_int_equal(engine_flush(&w->eng), 0);
	assert_int_equal(w->rec.removed, 4);
	assert_int_equal(add_one(w, "e", 5), 2);
	assert_int_equal(add_one(w, "f", 6), 3);
	assert_int_equal(add_one(w, "g", 7), 5);
	/* A modified Service keeps its id. */
	put_slice(&w->st, "default", "a-1", "a", ep1, NULL);
	assert_int_equal(engine_flush(&w->eng), 0);
	assert_int_equal(id_of(&w->rec, "~ 10.96.0.1:80/6 1"), 1);
	/* Churn: with at most 6 Services at a time, no id ever goes above 6. */
	for (int i = 0; i < 200; i++) {
		snprintf(name, sizeof(name), "churn-%d", i);
		assert_true(add_one(w, name, 100 + i % 50) <= 6);
		store_delete_service(&w->st, "default", name);
		assert_int_equal(engine_flush(&w->eng), 0);
	}
	assert_int_equal(add_one(w, "h", 8), 6);
	assert_int_equal(engine_services(&w->eng), 6);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, world_setup, world_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_first_flush_is_full_and_lists_every_frontend),
		T(test_one_endpoint_change_is_one_change),
		T(test_nothing_pending_applies_nothing),
		T(test_deleted_service_is_removed),
		T(test_second_owner_of_a_frontend_is_ignored),
		T(test_frontend_let_go_goes_to_the_service_that_lost_it),
		T(test_claims_in_one_flush_are_settled_by_name),
		T(test_zone_change_of_this_node_resolves_every_service),
		T(test_dsr_follows_the_address_of_the_backends_node),
		T(test_failed_apply_is_retried_with_the_same_changes),
		T(test_outputs_are_bounded),
		T(test_ids_of_deleted_services_are_reused_lowest_first),
	};

	log_set_level(LOG_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
