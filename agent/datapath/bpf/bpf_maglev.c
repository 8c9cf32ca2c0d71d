// SPDX-License-Identifier: Apache-2.0
/*
 * Maglev tables into maps/maglev (bpf_maglev.h): the table of a set is
 * computed by core/maglev.c from the set's backends in slot order, written
 * into a fresh inner array, and only then put under the set's id, so the
 * tc program sees a whole table or none.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "core/maglev.h"
#include "datapath/bpf/bpf_datapath.h"
#include "datapath/bpf/bpf_maglev.h"
#include "datapath/bpf/bpf_services.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "shared.h"
#include "sock.skel.h"

bool bpf_maglev_wanted(const struct frontend *fe)
{
	return fe->maglev && fe->action == FE_SERVE && fe->kind != FE_CLUSTER_IP;
}

static __u32 table_size(const struct datapath *dp)
{
	return dp->maglev_size ? dp->maglev_size : MAGLEV_DEFAULT_TABLE_SIZE;
}

__u32 bpf_maglev_size(int outer_fd, __u32 set)
{
	__u32 id, zero = 0, size = 0;
	int fd;

	if (bpf_map_lookup_elem(outer_fd, &set, &id))
		return 0;
	fd = bpf_map_get_fd_by_id(id);
	if (fd < 0)
		return 0;
	if (bpf_map_lookup_elem(fd, &zero, &size))
		size = 0;
	close(fd);
	return size;
}

bool bpf_maglev_current(struct datapath *dp, const struct frontend *fe, __u32 set)
{
	__u32 size = bpf_maglev_size(bpf_map__fd(dp->skel->maps.maglev), set);

	return bpf_maglev_wanted(fe) ? size == table_size(dp) : size == 0;
}

void bpf_maglev_delete(struct datapath *dp, __u32 set)
{
	bpf_map_delete_elem(bpf_map__fd(dp->skel->maps.maglev), &set);
}

/* words[0..m] into the array fd: in batches, else one by one (no batch support). */
static int fill_array(int fd, const __u32 *words, __u32 count)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	__u32 *keys = xcalloc(count, sizeof(*keys)), n = count;
	int err = 0;

	for (__u32 i = 0; i < count; i++)
		keys[i] = i;
	if (bpf_map_update_batch(fd, keys, words, &n, &opts)) {
		for (__u32 i = 0; i < count && !err; i++)
			if (bpf_map_update_elem(fd, &keys[i], &words[i], BPF_ANY))
				err = -errno;
	}
	free(keys);
	return err;
}

int bpf_maglev_write(struct datapath *dp, const struct frontend *fe, __u32 set, bool kept,
		     const struct bpf_map **full)
{
	LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = BPF_F_INNER_MAP);
	int outer = bpf_map__fd(dp->skel->maps.maglev), fd, err;
	__u32 m = table_size(dp), *words, n = 0;
	struct backend *usable;
	char name[128];

	if (!bpf_maglev_wanted(fe))
		return 0;
	if (kept && bpf_maglev_current(dp, fe, set))
		return 0;
	/* The slots hold the usable backends in order: index i of the table is slot i. */
	usable = xcalloc(fe->n_backends, sizeof(*usable));
	for (size_t i = 0; i < fe->n_backends; i++)
		if (fe->backends[i].addr.family == fe->key.addr.family)
			usable[n++] = fe->backends[i];
	if (!n) {
		free(usable);
		return 0;
	}
	words = xcalloc(m + 1, sizeof(*words));
	words[0] = m;
	maglev_build(usable, n, m, words + 1);
	free(usable);
	fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "sl_maglev_tbl", sizeof(__u32), sizeof(__u32),
			    m + 1, &opts);
	if (fd < 0) {
		err = -errno;
		goto fail;
	}
	err = fill_array(fd, words, m + 1);
	/* One update: the program sees the old table of this set, or this one. */
	if (!err && bpf_map_update_elem(outer, &set, &fd, BPF_ANY))
		err = -errno;
	close(fd);
	if (!err) {
		free(words);
		return 0;
	}
fail:
	free(words);
	if (bpf_map_full(err))
		*full = dp->skel->maps.maglev;
	else
		pr_warn("bpf: %s: cannot write its Maglev table (%u entries): %s",
			bpf_frontend_name(fe, name, sizeof(name)), m, strerror(-err));
	return err;
}
