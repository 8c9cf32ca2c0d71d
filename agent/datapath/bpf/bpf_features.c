// SPDX-License-Identifier: Apache-2.0
/*
 * Kernel features newer than the oldest supported kernel (Debian 12's
 * 6.1) that the BPF datapath uses or would use, decided once at open:
 *
 * - sock_destroy: bpf_sock_destroy() from a socket iterator (6.5+), else
 *   sock_diag's SOCK_DESTROY (bpf_sock_destroy.c decides and logs);
 * - tcx: tcx links (6.6+) exist or not; the tc programs are clsact
 *   filters over netlink either way (libbpf 1.1 has no tcx API), which
 *   every kernel since 4.5 has;
 * - sctp: whether this kernel has SCTP at all (a module on Debian, off on
 *   some kernels): SCTP Services are programmed either way, and served
 *   where the kernel speaks SCTP.
 *
 * Each is logged in one line "bpf: feature NAME: STATE (REASON)" (the
 * sock destroyer's own line stands for sock_destroy) and written to the
 * pinned features map, which sluicectl reads.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>

#include "datapath/bpf/bpf_datapath.h"
#include "datapath/bpf/bpf_features.h"
#include "datapath/bpf/bpf_sock_destroy.h"
#include "lib/log.h"

/* True if the kernel's BTF has enum NAME with enumerator VAL. */
static bool btf_has_enumerator(const struct btf *btf, const char *name, const char *val)
{
	const struct btf_type *t;
	const struct btf_enum *e;
	__s32 id;
	__u16 i;

	if (!btf)
		return false;
	id = btf__find_by_name_kind(btf, name, BTF_KIND_ENUM);
	if (id < 0)
		return false;
	t = btf__type_by_id(btf, id);
	e = btf_enum(t);
	for (i = 0; i < btf_vlen(t); i++, e++)
		if (!strcmp(btf__name_by_offset(btf, e->name_off), val))
			return true;
	return false;
}

/* SCTP: a socket opens (the kernel loads the sctp module on demand). */
static bool kernel_has_sctp(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, IPPROTO_SCTP);

	if (fd < 0)
		return false;
	close(fd);
	return true;
}

static void add(struct datapath_feature *f, size_t *n, const char *name, const char *state,
		const char *reason, bool log)
{
	if (*n >= DATAPATH_FEATURES_MAX)
		return;
	snprintf(f[*n].name, sizeof(f[*n].name), "%s", name);
	snprintf(f[*n].state, sizeof(f[*n].state), "%s", state);
	snprintf(f[*n].reason, sizeof(f[*n].reason), "%s", reason);
	if (log)
		pr_info("bpf: feature %s: %s (%s)", name, state, reason);
	(*n)++;
}

void bpf_features_probe(struct datapath *dp)
{
	struct datapath_feature f[DATAPATH_FEATURES_MAX] = { 0 };
	struct btf *vmlinux = btf__load_vmlinux_btf();
	const char *mode, *why;
	bool tcx, sctp;
	size_t n = 0;
	__u32 i;
	int fd;

	if (libbpf_get_error(vmlinux))
		vmlinux = NULL;
	mode = sock_destroyer_mode(dp->udp, &why);
	add(f, &n, "sock_destroy", mode, why, false);

	tcx = btf_has_enumerator(vmlinux, "bpf_attach_type", "BPF_TCX_INGRESS");
	add(f, &n, "tcx", "clsact",
	    tcx ? "tc programs are clsact filters over netlink; the kernel has tcx links "
		  "(Linux 6.6+), libbpf 1.1 no API for them" :
		  "tc programs are clsact filters over netlink; no tcx links in this kernel "
		  "(Linux 6.6+)",
	    true);

	sctp = kernel_has_sctp();
	add(f, &n, "sctp", sctp ? "available" : "not available",
	    sctp ? "SCTP sockets open: SCTP Services are served" :
		   "no SCTP in this kernel (CONFIG_IP_SCTP): SCTP Services are programmed, "
		   "nothing speaks SCTP",
	    true);
	btf__free(vmlinux);

	memcpy(dp->features, f, sizeof(f));
	dp->n_features = n;
	fd = bpf_map__fd(dp->skel->maps.features);
	for (i = 0; i < SL_FEATURES_MAX; i++) {
		struct sl_feature v = { 0 };

		if (i < n) {
			snprintf(v.name, sizeof(v.name), "%s", f[i].name);
			snprintf(v.state, sizeof(v.state), "%s", f[i].state);
			snprintf(v.reason, sizeof(v.reason), "%s", f[i].reason);
		}
		if (bpf_map_update_elem(fd, &i, &v, BPF_ANY))
			pr_warn("bpf: cannot write maps/features: %s", strerror(errno));
	}
}

int bpf_read_features(const struct datapath_config *cfg, struct datapath_feature *out, size_t max,
		      size_t *n)
{
	char path[PATH_MAX];
	struct sl_feature v;
	__u32 i;
	int fd;

	*n = 0;
	fd = open_pin(cfg, "features", path);
	if (fd < 0)
		return fd; /* -ENOENT: an agent older than the features map */
	for (i = 0; i < SL_FEATURES_MAX && *n < max; i++) {
		if (bpf_map_lookup_elem(fd, &i, &v) || !v.name[0])
			break;
		snprintf(out[*n].name, sizeof(out[*n].name), "%s", v.name);
		snprintf(out[*n].state, sizeof(out[*n].state), "%s", v.state);
		snprintf(out[*n].reason, sizeof(out[*n].reason), "%s", v.reason);
		(*n)++;
	}
	close(fd);
	return 0;
}
