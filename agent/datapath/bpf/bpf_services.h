/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The BPF datapath's per-Service entries (internal to agent/datapath/bpf):
 * places within --max-services, name, rate limit, bucket and counters, and
 * on a full apply which Services go first.
 */
#ifndef SLUICE_BPF_SERVICES_H
#define SLUICE_BPF_SERVICES_H

#include <errno.h>
#include <stdio.h>

#include "datapath/bpf/bpf_datapath.h"
#include "lib/addr.h"

static inline const char *bpf_frontend_name(const struct frontend *fe, char *buf, size_t len)
{
	char addr[IP_ADDR_STRLEN];

	snprintf(buf, len, "%s %s:%u/%u", fe->service ? fe->service : "?",
		 ip_addr_format(&fe->key.addr, addr), fe->key.port, fe->key.proto);
	return buf;
}

/* A map update that failed for lack of room: the hash maps say E2BIG, the LPM trie ENOSPC. */
static inline bool bpf_map_full(int err)
{
	return err == -E2BIG || err == -ENOSPC;
}

/* True if the Service holds a place (a service_info entry) within --max-services. */
static inline bool bpf_placed(const struct datapath *dp, __u32 id)
{
	return id < dp->n_frontends_of && dp->frontends_of[id];
}

/* place_service: max_services Services hold a place already. */
#define SL_NO_PLACE 1

/* A full apply's view of its Services, to settle adopted per-Service entries. */
struct bpf_full_prep {
	const char **name_of; /* per service_id in the diff: its Service's name */
	__u32 max_id;
	size_t n_services;
	bool renumbered; /* drop_renumbered done */
};

int bpf_sync_service_info(struct datapath *dp, const struct frontend *fe);
void bpf_forget_service(struct datapath *dp, __u32 id);
/* Gives fe's Service a place: 0, SL_NO_PLACE, or -errno (a map is full). */
int bpf_place_service(struct datapath *dp, const struct frontend *fe);
void bpf_service_ref(struct datapath *dp, const struct frontend *fe);
void bpf_service_unref(struct datapath *dp, const struct frontend *fe);
/* After a full apply: drops per-Service entries of ids no programmed frontend has. */
void bpf_sweep_services(struct datapath *dp);
void bpf_full_prep_init(struct bpf_full_prep *fp, const struct state_diff *diff);
void bpf_drop_renumbered(struct datapath *dp, struct bpf_full_prep *fp, char ***names,
			 size_t *n_names);
/* The order of a full apply's changes, or NULL when every Service fits. */
size_t *bpf_full_apply_order(struct datapath *dp, const struct state_diff *diff,
			     struct bpf_full_prep *fp);

#endif
