// SPDX-License-Identifier: Apache-2.0
/*
 * Dropping capabilities with libcap, one thread at a time (libpsx, which
 * would reach every thread, only knows threads started through its own
 * pthread_create wrapper, not libmicrohttpd's or libcurl's).
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>

#include "lib/caps.h"
#include "lib/log.h"
#include "lib/xalloc.h"

/* The capabilities this kernel knows, at most the 64 a mask holds. */
static cap_value_t caps_max(void)
{
	cap_value_t max = cap_max_bits();

	return max > 64 ? 64 : max;
}

/* Does the mask hold cap? */
static bool has(uint64_t mask, cap_value_t cap)
{
	return cap >= 0 && cap < 64 && (mask & CAPS_BIT(cap));
}

/* The calling thread's set of kind (permitted, effective, ...) as a mask. */
static uint64_t current(cap_flag_t kind)
{
	/* capget on itself fails only without memory for the copy. */
	cap_t now = xcheck(cap_get_proc());
	cap_flag_value_t v;
	uint64_t mask = 0;

	for (cap_value_t c = 0; c < caps_max(); c++) {
		if (!cap_get_flag(now, c, kind, &v) && v == CAP_SET)
			mask |= CAPS_BIT(c);
	}
	cap_free(now);
	return mask;
}

/*
 * The steps of caps_limit_thread; *kept gets what the thread keeps and
 * *step the name of the first step that failed. Without CAP_SETPCAP the
 * bounding set stays as it is, which is a failure only if must_bound.
 */
static int limit(uint64_t keep, bool must_bound, uint64_t *kept, const char **step)
{
	uint64_t permitted = current(CAP_PERMITTED);
	bool setpcap = has(current(CAP_EFFECTIVE), CAP_SETPCAP);
	cap_t want;
	int err = 0;

	*step = NULL;
	keep &= permitted;
	*kept = keep;
	/* The bounding set first: dropping from it needs CAP_SETPCAP, which goes next. */
	for (cap_value_t c = 0; c < caps_max(); c++) {
		if (has(keep, c) || cap_get_bound(c) != 1)
			continue;
		if (!setpcap) {
			err = must_bound ? -EPERM : 0;
			*step = must_bound ? "the bounding set (no cap_setpcap)" : NULL;
			break;
		}
		if (cap_drop_bound(c)) {
			err = -errno;
			*step = "the bounding set";
			break;
		}
	}
	/* Inheritable empty: the kernel clears the ambient set with it. */
	want = xcheck(cap_init());
	for (cap_value_t c = 0; c < caps_max(); c++) {
		if (!has(keep, c))
			continue;
		cap_set_flag(want, CAP_PERMITTED, 1, &c, CAP_SET);
		cap_set_flag(want, CAP_EFFECTIVE, 1, &c, CAP_SET);
	}
	if (cap_set_proc(want) && !err) {
		err = -errno;
		*step = "the permitted and effective sets";
	}
	cap_free(want);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) && !err) {
		err = -errno;
		*step = "no_new_privs";
	}
	return err;
}

int caps_limit_thread(uint64_t keep)
{
	const char *step;
	uint64_t kept;
	int err = limit(keep, false, &kept, &step);

	if (err)
		pr_debug("capabilities: a thread could not drop %s: %s", step, strerror(-err));
	return err;
}

int caps_keep(uint64_t keep, const char *who)
{
	const char *step;
	uint64_t kept;
	int err = limit(keep, true, &kept, &step);
	char *names = caps_names(kept);

	if (err)
		pr_warn("capabilities: cannot drop %s: %s; continuing with %s (%s) in the "
			"permitted set",
			step, strerror(-err), names, who);
	else
		pr_info("capabilities: keeping %s (%s)", names, who);
	free(names);
	return err;
}

struct limited_call {
	uint64_t keep;
	void *(*fn)(void *);
	void *arg;
};

static void *limited_start(void *arg)
{
	struct limited_call *call = arg;

	caps_limit_thread(call->keep);
	return call->fn(call->arg);
}

void *caps_call_limited(uint64_t keep, void *(*fn)(void *), void *arg)
{
	struct limited_call call = { .keep = keep, .fn = fn, .arg = arg };
	pthread_t thread;
	void *ret = NULL;
	int err;

	err = pthread_create(&thread, NULL, limited_start, &call);
	if (err) {
		pr_warn("capabilities: cannot start a thread: %s", strerror(err));
		return NULL;
	}
	pthread_join(thread, &ret);
	return ret;
}

char *caps_names(uint64_t mask)
{
	char *out = NULL, *name, *next;

	for (cap_value_t c = 0; c < 64; c++) {
		if (!has(mask, c))
			continue;
		name = cap_to_name(c);
		next = xasprintf("%s%s%s", out ? out : "", out ? "," : "", name ? name : "?");
		cap_free(name);
		free(out);
		out = next;
	}
	return out ? out : xstrdup("none");
}
