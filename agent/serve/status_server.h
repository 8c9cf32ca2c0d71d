/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agent's answers to sluicectl on <status-dir>/agent.sock (a unix
 * stream socket, mode 0600): each document computed when asked, from the
 * store and the engine as they are at that moment.
 *
 * Served by the main loop, which owns the store and the engine: it polls
 * status_server_fd() and calls status_server_run() with a time budget per
 * turn, so an answer is computed between applies and never delays one by
 * more than the budget. Sockets are nonblocking; a request is one line of
 * at most STATUS_REQUEST_MAX bytes; a client that does not send it, or
 * stops reading its answer, is dropped after a timeout; a long answer
 * (services at 100k Services) is computed and sent in pieces over turns.
 *
 * The protocol, one compact JSON object per line:
 *   "explain NAMESPACE/NAME\n"  the Service's document (status_json.h), or
 *                               {"schema":1,"error":CODE,"message":TEXT}
 *   "services\n"                every Service's document, by namespace then
 *                               name, then {"schema":1,"end":COUNT}: without
 *                               that line the answer was cut short
 * CODE: not-found, bad-request, busy.
 */
#ifndef SLUICE_STATUS_SERVER_H
#define SLUICE_STATUS_SERVER_H

#include "core/engine.h"
#include "core/store.h"

#define STATUS_REQUEST_MAX 512

struct status_server;

/*
 * Listens on path (a stale socket there is replaced). Returns NULL on
 * failure (logged): the agent then serves traffic without answers.
 */
struct status_server *status_server_open(const char *path, const struct store *store,
					 const struct engine *eng);
/* The descriptor to poll for POLLIN, and the longest wait (ms; -1: none; 0: work ready). */
int status_server_fd(const struct status_server *s);
int status_server_timeout_ms(const struct status_server *s);
/* Accepts, reads and answers for about budget_us microseconds at most. */
void status_server_run(struct status_server *s, long budget_us);
/* Drops the clients and removes the socket. */
void status_server_close(struct status_server *s);

#endif
