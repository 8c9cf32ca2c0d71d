/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Capabilities, as masks of CAPS_BIT(CAP_*) (the numbers of
 * <linux/capability.h>). Linux keeps them per thread: the main thread
 * limits itself once the first sync is applied (caps_keep), helper threads
 * that need none limit themselves when they start (caps_limit_thread), and
 * threads that a library starts are started from a limited thread
 * (caps_call_limited), since a new thread inherits its creator's sets.
 * Documentation/security.md says which thread keeps what, and why.
 */
#ifndef SLUICE_CAPS_H
#define SLUICE_CAPS_H

#include <stdint.h>
#include <linux/capability.h>

#define CAPS_BIT(cap) (1ULL << (cap))
/*
 * What starting an HTTP server needs (--health-addr, healthCheckNodePorts):
 * a port below 1024. Its thread keeps that and nothing else.
 */
#define CAPS_SERVE CAPS_BIT(CAP_NET_BIND_SERVICE)

/*
 * Limits the calling thread to keep (less what it does not have): the rest
 * leaves the bounding set, then the permitted, effective, inheritable and
 * so ambient sets; no_new_privs is set. The user stays uid 0. A thread
 * without CAP_SETPCAP keeps its bounding set, which its creator limited
 * already. Returns 0 or -errno (of the first step that failed; the later
 * steps are still done).
 */
int caps_limit_thread(uint64_t keep);

/*
 * caps_limit_thread for the main thread, with one log line: info
 * "capabilities: keeping LIST (who)", or a warning if a step failed.
 */
int caps_keep(uint64_t keep, const char *who);

/*
 * Runs fn(arg) in a new thread limited to keep and waits for it; threads
 * that fn starts (a library's server thread) get no more than keep. Returns
 * fn's result, or NULL if no thread could start.
 */
void *caps_call_limited(uint64_t keep, void *(*fn)(void *), void *arg);

/* "cap_net_admin,cap_bpf" (libcap's names), or "none"; free() it. */
char *caps_names(uint64_t mask);

#endif
