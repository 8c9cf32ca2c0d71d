// SPDX-License-Identifier: Apache-2.0
/*
 * The BPF datapath: socket-level programs (bpf/sock.bpf.c) attached to a
 * cgroup v2 through pinned links and fed from pinned maps, so that the
 * kernel keeps serving across agent restarts and a new agent adopts it.
 * The tc programs for traffic from outside (agent/datapath_bpf_tc.c) share
 * these maps.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <mntent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <linux/magic.h>
#include <linux/types.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "datapath/datapath.h"
#include "datapath/bpf/datapath_bpf_tc.h"
#include "lib/log.h"
#include "shared.h"
#include "sock.skel.h"

#define SL_DEFAULT_BPFFS "/sys/fs/bpf/sluice"
#define SL_BPFFS_MOUNT "/sys/fs/bpf"
#define SL_MAX_CREATED_DIRS 32

struct datapath {
	struct sock_bpf *skel;
	struct tc_datapath *tc; /* NULL without --devices */
	int cgroup_fd;
	struct bpf_link **links; /* one per program, in object order */
	size_t n_links;
	__u32 next_set; /* next backend set id; 0 is never used */
	/* Programmed frontends per service_id: the Service's entries go with the last one. */
	__u32 *frontends_of;
	size_t n_frontends_of;
	char bpffs[PATH_MAX];
};

/* What open() created in this call, so that a failure can take it back. */
struct open_undo {
	char *dirs[SL_MAX_CREATED_DIRS]; /* in creation order */
	int n_dirs;
	bool *map_pinned_here; /* per map */
	bool *link_pinned_here; /* per program */
};

static int fail(char *why, size_t why_len, int err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Writes the one reason the caller logs and returns err (negative errno). */
static int fail(char *why, size_t why_len, int err, const char *fmt, ...)
{
	va_list ap;

	if (why && why_len) {
		va_start(ap, fmt);
		vsnprintf(why, why_len, fmt, ap);
		va_end(ap);
	}
	return err < 0 ? err : -EINVAL;
}

static const char *bpffs_dir(const struct datapath_config *cfg)
{
	return cfg && cfg->bpffs && *cfg->bpffs ? cfg->bpffs : SL_DEFAULT_BPFFS;
}

static int join(char *out, const char *dir, const char *sub, const char *name)
{
	int n;

	if (name)
		n = snprintf(out, PATH_MAX, "%s/%s/%s", dir, sub, name);
	else
		n = snprintf(out, PATH_MAX, "%s/%s", dir, sub);
	return n < 0 || n >= PATH_MAX ? -ENAMETOOLONG : 0;
}

static bool fs_is(const char *path, long magic)
{
	struct statfs st;

	return statfs(path, &st) == 0 && st.f_type == (typeof(st.f_type))magic;
}

static bool path_under(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	return strncmp(path, dir, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

/* Creates dir and its missing parents, remembering each one made for undo. */
static int mkdir_parents(const char *dir, struct open_undo *undo)
{
	char path[PATH_MAX];
	size_t i, len = strlen(dir);

	if (len >= sizeof(path))
		return -ENAMETOOLONG;
	memcpy(path, dir, len + 1);
	for (i = 1; i <= len; i++) {
		if (path[i] != '/' && path[i] != '\0')
			continue;
		path[i] = '\0';
		if (mkdir(path, 0700) == 0) {
			if (undo->n_dirs == SL_MAX_CREATED_DIRS)
				return -ENAMETOOLONG;
			undo->dirs[undo->n_dirs] = strdup(path);
			if (!undo->dirs[undo->n_dirs])
				return -ENOMEM;
			undo->n_dirs++;
		} else if (errno != EEXIST) {
			return -errno;
		}
		path[i] = dir[i];
	}
	return 0;
}

/* The deepest existing directory on the way to path. */
static void existing_ancestor(const char *path, char *out)
{
	struct stat st;
	char *slash;

	snprintf(out, PATH_MAX, "%s", path);
	while (stat(out, &st) != 0 && errno == ENOENT) {
		slash = strrchr(out, '/');
		if (!slash || slash == out) {
			strcpy(out, "/");
			return;
		}
		*slash = '\0';
	}
}

/*
 * Makes <bpffs>, <bpffs>/maps and <bpffs>/links exist on a bpffs. Mounts a
 * bpffs at /sys/fs/bpf when the directory belongs there and nothing is
 * mounted, as Cilium does; the mount stays even if open() fails later.
 */
static int prepare_bpffs(const char *dir, struct open_undo *undo, char *why, size_t why_len)
{
	char ancestor[PATH_MAX], sub[PATH_MAX];
	int err;

	if (dir[0] != '/')
		return fail(why, why_len, -EINVAL, "bpffs directory %s is not absolute", dir);
	existing_ancestor(dir, ancestor);
	if (!fs_is(ancestor, BPF_FS_MAGIC)) {
		if (!path_under(dir, SL_BPFFS_MOUNT) || fs_is(SL_BPFFS_MOUNT, BPF_FS_MAGIC))
			return fail(why, why_len, -ENOTSUP,
				    "%s is not on a bpffs (mount one: mount -t bpf bpf DIR)", dir);
		if (mount("bpffs", SL_BPFFS_MOUNT, "bpf", 0, "mode=0700")) {
			err = -errno;
			return fail(why, why_len, err, "no bpffs at %s and mounting one failed: %s",
				    SL_BPFFS_MOUNT, strerror(-err));
		}
		pr_info("mounted a bpffs at %s", SL_BPFFS_MOUNT);
	}
	err = mkdir_parents(dir, undo);
	if (!err && !(err = join(sub, dir, SL_PIN_MAPS_DIR, NULL)))
		err = mkdir_parents(sub, undo);
	if (!err && !(err = join(sub, dir, SL_PIN_LINKS_DIR, NULL)))
		err = mkdir_parents(sub, undo);
	if (err)
		return fail(why, why_len, err, "cannot create pin directories under %s: %s", dir,
			    strerror(-err));
	/* A non-bpffs mount could sit between the ancestor and dir. */
	if (!fs_is(dir, BPF_FS_MAGIC))
		return fail(why, why_len, -ENOTSUP, "%s is not on a bpffs", dir);
	return 0;
}

/* The cgroup2 mount root, used when no --cgroup was given. */
static int cgroup2_root(char *out, size_t len)
{
	struct mntent *ent;
	FILE *mounts;
	int err = -ENOENT;

	mounts = setmntent("/proc/self/mounts", "r");
	if (!mounts)
		return -errno;
	while ((ent = getmntent(mounts))) {
		if (strcmp(ent->mnt_type, "cgroup2") == 0) {
			snprintf(out, len, "%s", ent->mnt_dir);
			err = 0;
			break;
		}
	}
	endmntent(mounts);
	return err;
}

static int open_cgroup(const char *path, char *why, size_t why_len)
{
	struct statfs st;
	int fd, err;

	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		return fail(why, why_len, err, "cannot open cgroup %s: %s", path, strerror(-err));
	}
	if (fstatfs(fd, &st) || st.f_type != CGROUP2_SUPER_MAGIC) {
		close(fd);
		return fail(why, why_len, -ENOTSUP, "%s is not a cgroup v2 directory", path);
	}
	return fd;
}

static int cgroup_id(const char *path, __u64 *id)
{
	union {
		struct file_handle fh;
		char buf[sizeof(struct file_handle) + sizeof(__u64)];
	} h;
	int mount_id;

	h.fh.handle_bytes = sizeof(__u64);
	if (name_to_handle_at(AT_FDCWD, path, &h.fh, &mount_id, 0))
		return -errno;
	memcpy(id, h.fh.f_handle, sizeof(*id));
	return 0;
}

/* Largest backend set id in use, so that a restarted agent never reuses a live one. */
static __u32 max_backend_set(int services_fd)
{
	struct sl_service_key key, next;
	struct sl_service svc;
	__u32 max = 0;
	void *prev = NULL;

	while (bpf_map_get_next_key(services_fd, prev, &next) == 0) {
		if (bpf_map_lookup_elem(services_fd, &next, &svc) == 0 && svc.backend_set > max)
			max = svc.backend_set;
		key = next;
		prev = &key;
	}
	return max;
}

static void undo_open(struct datapath *dp, struct open_undo *undo)
{
	struct bpf_program *prog;
	struct bpf_map *map;
	size_t i = 0;
	int d;

	if (dp->skel) {
		bpf_object__for_each_program(prog, dp->skel->obj)
		{
			if (i < dp->n_links && dp->links[i]) {
				if (undo->link_pinned_here && undo->link_pinned_here[i])
					bpf_link__unpin(dp->links[i]);
				bpf_link__destroy(dp->links[i]);
			}
			i++;
		}
		i = 0;
		bpf_object__for_each_map(map, dp->skel->obj)
		{
			if (undo->map_pinned_here && undo->map_pinned_here[i] &&
			    bpf_map__is_pinned(map))
				bpf_map__unpin(map, NULL);
			i++;
		}
		sock_bpf__destroy(dp->skel);
	}
	for (d = undo->n_dirs - 1; d >= 0; d--)
		rmdir(undo->dirs[d]);
	if (dp->cgroup_fd >= 0)
		close(dp->cgroup_fd);
	free(dp->links);
	free(dp);
}

/*
 * A pinned map of another layout (an older agent's) cannot be reused by
 * libbpf: unpin it, so that load creates and pins a new one. Programs still
 * attached keep their reference to the old map until they are swapped out.
 * Returns true if the pin is gone (or there was none).
 */
static bool drop_incompatible_pin(const struct bpf_map *map, const char *path)
{
	struct bpf_map_info info;
	__u32 len = sizeof(info);
	int fd;

	fd = bpf_obj_get(path);
	if (fd < 0)
		return errno == ENOENT;
	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(fd, &info, &len)) {
		close(fd);
		return false; /* let load report what is wrong */
	}
	close(fd);
	if (info.type == (__u32)bpf_map__type(map) && info.key_size == bpf_map__key_size(map) &&
	    info.value_size == bpf_map__value_size(map) &&
	    info.max_entries == bpf_map__max_entries(map) &&
	    info.map_flags == bpf_map__map_flags(map))
		return false;
	if (unlink(path)) {
		pr_warn("bpf: cannot remove pinned map %s of another layout: %s", path,
			strerror(errno));
		return false;
	}
	pr_info("bpf: pinned map %s has another layout (type %u key %u value %u max %u flags "
		"0x%x; want %u %u %u %u 0x%x): replaced by a new empty one",
		path, info.type, info.key_size, info.value_size, info.max_entries, info.map_flags,
		bpf_map__type(map), bpf_map__key_size(map), bpf_map__value_size(map),
		bpf_map__max_entries(map), bpf_map__map_flags(map));
	return true;
}

/* Sets every map's pin path so that load reuses pinned maps and pins new ones. */
static int set_map_pins(struct datapath *dp, struct open_undo *undo, char *why, size_t why_len)
{
	char path[PATH_MAX];
	struct bpf_map *map;
	size_t n = 0, i = 0;
	int err;

	bpf_object__for_each_map(map, dp->skel->obj) n++;
	undo->map_pinned_here = calloc(n ? n : 1, sizeof(bool));
	if (!undo->map_pinned_here)
		return fail(why, why_len, -ENOMEM, "out of memory");
	bpf_object__for_each_map(map, dp->skel->obj)
	{
		err = join(path, dp->bpffs, SL_PIN_MAPS_DIR, bpf_map__name(map));
		if (!err)
			err = bpf_map__set_pin_path(map, path);
		if (err)
			return fail(why, why_len, err, "cannot set pin path of map %s: %s",
				    bpf_map__name(map), strerror(-err));
		if (!access(path, F_OK))
			drop_incompatible_pin(map, path);
		undo->map_pinned_here[i++] = access(path, F_OK) != 0;
	}
	return 0;
}

/* An existing pinned link that can take the new program, with what it ran before. */
struct link_reuse {
	struct bpf_link *link;
	__u32 old_prog_id;
	int old_prog_fd; /* keeps the old program alive for a rollback */
};

/*
 * Opens the link pinned for prog if it is a live cgroup link of the same
 * hook on our cgroup. Returns 1 if reusable, 0 if there is no pin or it is
 * stale (another cgroup, cgroup gone), -errno on a real error.
 */
static int open_pinned_link(const char *path, struct bpf_program *prog, __u64 cgid,
			    struct link_reuse *out)
{
	struct bpf_link_info info;
	__u32 len = sizeof(info);
	struct bpf_link *link;
	int err;

	if (access(path, F_OK))
		return 0;
	link = bpf_link__open(path);
	if (!link)
		return -errno;
	memset(&info, 0, sizeof(info));
	err = bpf_obj_get_info_by_fd(bpf_link__fd(link), &info, &len);
	if (err) {
		bpf_link__destroy(link);
		return err;
	}
	if (info.type != BPF_LINK_TYPE_CGROUP ||
	    info.cgroup.attach_type != bpf_program__expected_attach_type(prog) ||
	    info.cgroup.cgroup_id != cgid) {
		pr_info("bpf: pinned link %s is stale (cgroup id %llu, want %llu): replacing it",
			path, (unsigned long long)info.cgroup.cgroup_id, (unsigned long long)cgid);
		bpf_link__destroy(link);
		return 0;
	}
	out->link = link;
	out->old_prog_id = info.prog_id;
	out->old_prog_fd = bpf_prog_get_fd_by_id(info.prog_id);
	return 1;
}

/*
 * Attaches every program: a pinned link on our cgroup gets the new program
 * swapped in (no gap in service); any other program gets a new link, pinned.
 * New links are made and pinned first, live links swapped last, so that a
 * failure can be undone without having touched the traffic.
 */
static int attach_programs(struct datapath *dp, const char *cgroup_path, struct open_undo *undo,
			   char *why, size_t why_len)
{
	struct link_reuse *reuse;
	struct bpf_program *prog, **progs;
	char path[PATH_MAX];
	size_t i, n = 0, swapped = 0;
	__u64 cgid = 0;
	int err = 0;

	bpf_object__for_each_program(prog, dp->skel->obj) n++;
	dp->links = calloc(n, sizeof(*dp->links));
	progs = calloc(n, sizeof(*progs));
	reuse = calloc(n, sizeof(*reuse));
	undo->link_pinned_here = calloc(n, sizeof(bool));
	if (!dp->links || !progs || !reuse || !undo->link_pinned_here) {
		err = fail(why, why_len, -ENOMEM, "out of memory");
		goto out;
	}
	dp->n_links = n;
	i = 0;
	bpf_object__for_each_program(prog, dp->skel->obj)
	{
		progs[i] = prog;
		reuse[i].old_prog_fd = -1;
		i++;
	}
	err = cgroup_id(cgroup_path, &cgid);
	if (err) {
		err = fail(why, why_len, err, "cannot get the id of cgroup %s: %s", cgroup_path,
			   strerror(-err));
		goto out;
	}

	for (i = 0; i < n; i++) {
		err = join(path, dp->bpffs, SL_PIN_LINKS_DIR, bpf_program__name(progs[i]));
		if (!err)
			err = open_pinned_link(path, progs[i], cgid, &reuse[i]);
		if (err < 0) {
			err = fail(why, why_len, err, "cannot open pinned link %s: %s", path,
				   strerror(-err));
			goto out;
		}
		if (err == 1) {
			err = 0;
			continue;
		}
		dp->links[i] = bpf_program__attach_cgroup(progs[i], dp->cgroup_fd);
		if (!dp->links[i]) {
			err = fail(why, why_len, -errno, "cannot attach %s to cgroup %s: %s",
				   bpf_program__name(progs[i]), cgroup_path, strerror(errno));
			goto out;
		}
		/* A stale pin is replaced: dropping it detaches what it held. */
		if (unlink(path) && errno != ENOENT) {
			err = fail(why, why_len, -errno, "cannot remove stale link pin %s: %s",
				   path, strerror(errno));
			goto out;
		}
		err = bpf_link__pin(dp->links[i], path);
		if (err) {
			err = fail(why, why_len, err, "cannot pin link %s: %s", path,
				   strerror(-err));
			goto out;
		}
		undo->link_pinned_here[i] = true;
	}

	for (i = 0; i < n; i++) {
		if (!reuse[i].link)
			continue;
		err = bpf_link__update_program(reuse[i].link, progs[i]);
		if (err) {
			err = fail(why, why_len, err, "cannot swap %s into its pinned link: %s",
				   bpf_program__name(progs[i]), strerror(-err));
			goto out;
		}
		dp->links[i] = reuse[i].link;
		reuse[i].link = NULL;
		swapped++;
	}
	pr_info("bpf: %zu programs attached to %s, %zu of them swapped into pinned links", n,
		cgroup_path, swapped);
out:
	for (i = 0; err && reuse && i < n; i++) {
		/* Roll back swaps already made: the old programs serve again. */
		if (dp->links[i] && !undo->link_pinned_here[i] && reuse[i].old_prog_fd >= 0 &&
		    bpf_link_update(bpf_link__fd(dp->links[i]), reuse[i].old_prog_fd, NULL))
			pr_warn("bpf: cannot restore program id %u in link of %s",
				reuse[i].old_prog_id, bpf_program__name(progs[i]));
	}
	for (i = 0; reuse && i < n; i++) {
		if (reuse[i].link)
			bpf_link__destroy(reuse[i].link);
		if (reuse[i].old_prog_fd >= 0)
			close(reuse[i].old_prog_fd);
	}
	free(reuse);
	free(progs);
	return err;
}

static int bpf_open(const struct datapath_config *cfg, struct datapath **out, char *why,
		    size_t why_len)
{
	struct open_undo undo = { 0 };
	char cgroup_path[PATH_MAX];
	struct datapath *dp;
	int err, i;

	*out = NULL;
	dp = calloc(1, sizeof(*dp));
	if (!dp)
		return fail(why, why_len, -ENOMEM, "out of memory");
	dp->cgroup_fd = -1;
	snprintf(dp->bpffs, sizeof(dp->bpffs), "%s", bpffs_dir(cfg));

	if (cfg && cfg->cgroup && *cfg->cgroup) {
		snprintf(cgroup_path, sizeof(cgroup_path), "%s", cfg->cgroup);
	} else if ((err = cgroup2_root(cgroup_path, sizeof(cgroup_path)))) {
		err = fail(why, why_len, err, "no --cgroup given and no cgroup2 mount found");
		goto err;
	}
	dp->cgroup_fd = open_cgroup(cgroup_path, why, why_len);
	if (dp->cgroup_fd < 0) {
		err = dp->cgroup_fd;
		goto err;
	}
	err = prepare_bpffs(dp->bpffs, &undo, why, why_len);
	if (err)
		goto err;

	dp->skel = sock_bpf__open();
	if (!dp->skel) {
		err = fail(why, why_len, -errno, "cannot open the BPF object: %s", strerror(errno));
		goto err;
	}
	err = set_map_pins(dp, &undo, why, why_len);
	if (err)
		goto err;
	err = sock_bpf__load(dp->skel);
	if (err) {
		err = fail(why, why_len, err,
			   "cannot load the BPF programs (Linux 5.18+ needed, and CAP_BPF, "
			   "CAP_NET_ADMIN and CAP_SYS_ADMIN, or a pinned map of another "
			   "version under %s/%s): %s",
			   dp->bpffs, SL_PIN_MAPS_DIR, strerror(-err));
		goto err;
	}
	err = attach_programs(dp, cgroup_path, &undo, why, why_len);
	if (err)
		goto err;

	err = tc_sync_node_addrs(bpf_map__fd(dp->skel->maps.node_addrs),
				 bpf_map__fd(dp->skel->maps.dev_addrs));
	if (err)
		pr_warn("bpf: cannot read the node's addresses (NodePorts need them): %s",
			strerror(-err));
	if (cfg && cfg->devices && *cfg->devices) {
		char maps_dir[PATH_MAX];

		err = join(maps_dir, dp->bpffs, SL_PIN_MAPS_DIR, NULL);
		if (!err)
			err = tc_datapath_open(maps_dir, cfg->devices, &dp->tc, why, why_len);
		if (err)
			goto err;
	}

	dp->next_set = max_backend_set(bpf_map__fd(dp->skel->maps.services)) + 1;
	if (!dp->next_set)
		dp->next_set = 1;
	pr_info("bpf: datapath open, pins under %s, next backend set %u", dp->bpffs, dp->next_set);
	for (i = 0; i < undo.n_dirs; i++)
		free(undo.dirs[i]);
	free(undo.map_pinned_here);
	free(undo.link_pinned_here);
	*out = dp;
	return 0;
err:
	undo_open(dp, &undo);
	for (i = 0; i < undo.n_dirs; i++)
		free(undo.dirs[i]);
	free(undo.map_pinned_here);
	free(undo.link_pinned_here);
	return err;
}

/* ---- apply ---- */

/*
 * Every kind goes into the maps: the socket programs serve them all to
 * clients on the node, the tc programs the external kinds to the outside.
 */
static bool frontend_programmable(const struct frontend *fe)
{
	return fe->key.addr.family == AF_INET || fe->key.addr.family == AF_INET6;
}

static __u32 service_flags_of(const struct frontend *fe)
{
	__u32 flags;

	switch (fe->kind) {
	case FE_EXTERNAL_IP:
		flags = SL_KIND_EXTERNAL_IP;
		break;
	case FE_LB_INGRESS:
		flags = SL_KIND_LB_INGRESS;
		break;
	case FE_NODE_PORT:
		flags = SL_KIND_NODE_PORT;
		break;
	default:
		return SL_KIND_CLUSTER_IP;
	}
	if (fe->preserve_source)
		flags |= SL_SVC_F_PRESERVE_SOURCE;
	if (fe->kind == FE_LB_INGRESS && fe->n_source_ranges)
		flags |= SL_SVC_F_SOURCE_RANGES;
	return flags;
}

static __u8 sl_family(uint8_t family)
{
	return family == AF_INET ? SL_AF_INET : SL_AF_INET6;
}

static void service_key_of(const struct frontend_key *fk, struct sl_service_key *key)
{
	memset(key, 0, sizeof(*key));
	memcpy(key->addr, fk->addr.bytes, fk->addr.family == AF_INET ? 4 : 16);
	key->port = htons(fk->port);
	key->proto = fk->proto;
	key->family = sl_family(fk->addr.family);
}

static void backend_of(const struct backend *b, struct sl_backend *out)
{
	memset(out, 0, sizeof(*out));
	memcpy(out->addr, b->addr.bytes, b->addr.family == AF_INET ? 4 : 16);
	out->port = htons(b->port);
	out->family = sl_family(b->addr.family);
}

static const char *frontend_name(const struct frontend *fe, char *buf, size_t len)
{
	char addr[IP_ADDR_STRLEN];

	snprintf(buf, len, "%s %s:%u/%u", fe->service ? fe->service : "?",
		 ip_addr_format(&fe->key.addr, addr), fe->key.port, fe->key.proto);
	return buf;
}

static void delete_slots(struct datapath *dp, __u32 set, __u32 count)
{
	int fd = bpf_map__fd(dp->skel->maps.backends);
	struct sl_backend_key key = { .backend_set = set };

	for (key.slot = 0; key.slot < count; key.slot++)
		bpf_map_delete_elem(fd, &key);
}

static __u32 take_backend_set(struct datapath *dp)
{
	__u32 set = dp->next_set++;

	if (!dp->next_set)
		dp->next_set = 1;
	return set;
}

/* The backends of fe that match its family: a v6 backend cannot serve a v4 frontend. */
static bool backend_usable(const struct frontend *fe, const struct backend *b)
{
	return b->addr.family == fe->key.addr.family;
}

/* True if the slots of cur's set hold exactly fe's usable backends, in order. */
static bool backends_match(struct datapath *dp, const struct sl_service *cur, __u32 want_count,
			   const struct frontend *fe)
{
	int fd = bpf_map__fd(dp->skel->maps.backends);
	struct sl_backend_key key = { .backend_set = cur->backend_set };
	struct sl_backend have, expect;
	size_t i;

	if (cur->count != want_count)
		return false;
	for (i = 0; i < fe->n_backends && want_count; i++) {
		if (!backend_usable(fe, &fe->backends[i]))
			continue;
		backend_of(&fe->backends[i], &expect);
		if (bpf_map_lookup_elem(fd, &key, &have) || memcmp(&have, &expect, sizeof(have)))
			return false;
		key.slot++;
	}
	return true;
}

/* True if the kernel already holds exactly what fe asks for (adoption after restart). */
static bool service_matches(struct datapath *dp, const struct sl_service *cur,
			    const struct sl_service *want, const struct frontend *fe)
{
	if (cur->action != want->action || cur->service_id != want->service_id ||
	    cur->affinity_timeout != want->affinity_timeout || cur->flags != want->flags ||
	    cur->rate_interval_ns != want->rate_interval_ns ||
	    cur->rate_depth_ns != want->rate_depth_ns)
		return false;
	return backends_match(dp, cur, want->count, fe);
}

/* ---- loadBalancerSourceRanges ---- */

static int grow(void **arr, size_t *cap, size_t n, size_t sz);

static void source_range_key_of(const struct sl_service_key *fe, const struct cidr *c,
				struct sl_source_range_key *key)
{
	memset(key, 0, sizeof(*key));
	key->frontend = *fe;
	memcpy(key->client, c->addr.bytes, c->addr.family == AF_INET ? 4 : 16);
	key->prefixlen = sizeof(key->frontend) * 8 + c->prefix_len;
}

/*
 * Deletes the ranges of frontend fe_key (all of them, or those not in fe's
 * list when fe is given). With fe_key NULL: of every frontend that has no
 * SL_SVC_F_SOURCE_RANGES entry in services (after adoption).
 */
static void prune_source_ranges(struct datapath *dp, const struct sl_service_key *fe_key,
				const struct frontend *fe)
{
	int fd = bpf_map__fd(dp->skel->maps.source_ranges);
	int svc_fd = bpf_map__fd(dp->skel->maps.services);
	struct sl_source_range_key key, next, want, *stale = NULL;
	size_t n = 0, cap = 0, i;
	struct sl_service svc;
	bool keep;
	void *prev = NULL;

	while (bpf_map_get_next_key(fd, prev, &next) == 0) {
		key = next;
		prev = &key;
		if (fe_key) {
			if (memcmp(&key.frontend, fe_key, sizeof(*fe_key)))
				continue;
			keep = false;
			for (i = 0; fe && i < fe->n_source_ranges && !keep; i++) {
				source_range_key_of(fe_key, &fe->source_ranges[i], &want);
				keep = !memcmp(&want, &key, sizeof(key));
			}
		} else {
			keep = bpf_map_lookup_elem(svc_fd, &key.frontend, &svc) == 0 &&
			       (svc.flags & SL_SVC_F_SOURCE_RANGES);
		}
		if (keep)
			continue;
		if (grow((void **)&stale, &cap, n, sizeof(*stale)))
			break;
		stale[n++] = key;
	}
	for (i = 0; i < n; i++)
		bpf_map_delete_elem(fd, &stale[i]);
	free(stale);
}

/* Writes fe's ranges, then removes the ones it no longer has: never an empty window. */
static int write_source_ranges(struct datapath *dp, const struct sl_service_key *key,
			       const struct frontend *fe)
{
	int fd = bpf_map__fd(dp->skel->maps.source_ranges);
	struct sl_source_range_key rk;
	__u32 one = 1;
	char name[128];
	size_t i;
	int err;

	for (i = 0; i < fe->n_source_ranges; i++) {
		if (fe->source_ranges[i].addr.family != fe->key.addr.family)
			continue; /* a v6 range says nothing about a v4 frontend */
		source_range_key_of(key, &fe->source_ranges[i], &rk);
		if (bpf_map_update_elem(fd, &rk, &one, BPF_ANY)) {
			err = -errno;
			pr_warn("bpf: %s: cannot write a source range: %s",
				frontend_name(fe, name, sizeof(name)), strerror(-err));
			return err;
		}
	}
	prune_source_ranges(dp, key, fe);
	return 0;
}

/*
 * Writes fe: its backends under a fresh set, then the service entry in one
 * update, then drops the set it replaced. The programs see the old set or
 * the new one, never a half-written one. Returns 1 if an adopted entry was
 * already exactly right (nothing written), 0 if written, -errno on failure.
 */
static int write_frontend(struct datapath *dp, const struct frontend *fe, bool adopting)
{
	int svc_fd = bpf_map__fd(dp->skel->maps.services);
	int be_fd = bpf_map__fd(dp->skel->maps.backends);
	struct sl_service_key key;
	struct sl_service cur, want = { 0 };
	struct sl_backend_key slot = { 0 };
	struct sl_backend be;
	char name[128];
	bool had_cur;
	size_t i;
	int err;

	service_key_of(&fe->key, &key);
	had_cur = bpf_map_lookup_elem(svc_fd, &key, &cur) == 0;
	want.action = fe->action == FE_SERVE  ? SL_ACTION_SERVE :
		      fe->action == FE_REFUSE ? SL_ACTION_REFUSE :
						SL_ACTION_DROP;
	want.service_id = fe->service_id;
	want.affinity_timeout = fe->affinity_timeout;
	want.rate_interval_ns = rate_limit_interval_ns(&fe->rate);
	want.rate_depth_ns = rate_limit_depth_ns(&fe->rate);
	want.flags = service_flags_of(fe);
	/* Ranges before the entry that enforces them; a stale one is gone before it could admit. */
	if ((want.flags & SL_SVC_F_SOURCE_RANGES) ||
	    (had_cur && (cur.flags & SL_SVC_F_SOURCE_RANGES))) {
		err = write_source_ranges(dp, &key, fe);
		if (err)
			return err;
	}
	if (fe->action == FE_SERVE) {
		for (i = 0; i < fe->n_backends; i++)
			want.count += backend_usable(fe, &fe->backends[i]);
	}
	if (adopting && had_cur && service_matches(dp, &cur, &want, fe))
		return 1;
	/*
	 * Same backends, other fields (a restarted agent numbers Services
	 * anew, a limit changed): the entry is rewritten over the set it
	 * already uses, so no slot is deleted under a program mid-lookup.
	 */
	if (had_cur && want.count && backends_match(dp, &cur, want.count, fe)) {
		want.backend_set = cur.backend_set;
		if (bpf_map_update_elem(svc_fd, &key, &want, BPF_ANY)) {
			err = -errno;
			pr_warn("bpf: %s: cannot write the service entry: %s",
				frontend_name(fe, name, sizeof(name)), strerror(-err));
			return err;
		}
		return 0;
	}

	if (want.count) {
		want.backend_set = take_backend_set(dp);
		slot.backend_set = want.backend_set;
		for (i = 0; i < fe->n_backends; i++) {
			if (!backend_usable(fe, &fe->backends[i]))
				continue;
			backend_of(&fe->backends[i], &be);
			if (bpf_map_update_elem(be_fd, &slot, &be, BPF_ANY)) {
				err = -errno;
				pr_warn("bpf: %s: cannot write backend slot %u: %s",
					frontend_name(fe, name, sizeof(name)), slot.slot,
					strerror(-err));
				delete_slots(dp, want.backend_set, slot.slot);
				return err;
			}
			slot.slot++;
		}
	}
	if (bpf_map_update_elem(svc_fd, &key, &want, BPF_ANY)) {
		err = -errno;
		pr_warn("bpf: %s: cannot write the service entry: %s",
			frontend_name(fe, name, sizeof(name)), strerror(-err));
		delete_slots(dp, want.backend_set, want.count);
		return err;
	}
	if (had_cur && cur.count)
		delete_slots(dp, cur.backend_set, cur.count);
	return 0;
}

static int remove_frontend(struct datapath *dp, const struct frontend *fe)
{
	int svc_fd = bpf_map__fd(dp->skel->maps.services);
	struct sl_service_key key;
	struct sl_service cur;
	char name[128];
	int err;

	service_key_of(&fe->key, &key);
	if (bpf_map_lookup_elem(svc_fd, &key, &cur))
		return 0;
	if (bpf_map_delete_elem(svc_fd, &key) && errno != ENOENT) {
		err = -errno;
		pr_warn("bpf: %s: cannot delete the service entry: %s",
			frontend_name(fe, name, sizeof(name)), strerror(-err));
		return err;
	}
	delete_slots(dp, cur.backend_set, cur.count);
	if (cur.flags & SL_SVC_F_SOURCE_RANGES)
		prune_source_ranges(dp, &key, NULL);
	return 0;
}

static int cmp_service_key(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(struct sl_service_key));
}

struct live_set {
	__u32 set, count;
};

static int cmp_live_set(const void *a, const void *b)
{
	const struct live_set *x = a, *y = b;

	return x->set < y->set ? -1 : x->set > y->set;
}

/* Grows *arr (elements of size sz) so that it holds at least n + 1. */
static int grow(void **arr, size_t *cap, size_t n, size_t sz)
{
	void *bigger;

	if (n < *cap)
		return 0;
	*cap = *cap ? *cap * 2 : 256;
	bigger = realloc(*arr, *cap * sz);
	if (!bigger)
		return -ENOMEM;
	*arr = bigger;
	return 0;
}

/*
 * After a full apply: delete every service entry the diff did not list,
 * then every backend slot that no service entry uses (sets left by a
 * previous agent, or slots past a set's count after a crash mid-write).
 */
static int sweep(struct datapath *dp, const struct state_diff *diff)
{
	int svc_fd = bpf_map__fd(dp->skel->maps.services);
	int be_fd = bpf_map__fd(dp->skel->maps.backends);
	struct sl_service_key *wanted = NULL, *stale = NULL, skey, snext;
	struct sl_backend_key *orphans = NULL, bkey, bnext;
	struct live_set *live = NULL, probe, *hit;
	size_t n_wanted = 0, n_stale = 0, n_live = 0, n_orphans = 0;
	size_t cap_stale = 0, cap_live = 0, cap_orphans = 0, i;
	struct sl_service svc;
	void *prev;
	int err = -ENOMEM;

	wanted = calloc(diff->n_changes ? diff->n_changes : 1, sizeof(*wanted));
	if (!wanted)
		goto out;
	for (i = 0; i < diff->n_changes; i++) {
		if (diff->changes[i].new &&frontend_programmable(diff->changes[i].new))
			service_key_of(&diff->changes[i].new->key, &wanted[n_wanted++]);
	}
	qsort(wanted, n_wanted, sizeof(*wanted), cmp_service_key);

	for (prev = NULL; bpf_map_get_next_key(svc_fd, prev, &snext) == 0; prev = &skey) {
		skey = snext;
		if (bsearch(&skey, wanted, n_wanted, sizeof(*wanted), cmp_service_key))
			continue;
		if (grow((void **)&stale, &cap_stale, n_stale, sizeof(*stale)))
			goto out;
		stale[n_stale++] = skey;
	}
	for (i = 0; i < n_stale; i++) {
		if (bpf_map_lookup_elem(svc_fd, &stale[i], &svc) == 0 &&
		    bpf_map_delete_elem(svc_fd, &stale[i]) == 0)
			delete_slots(dp, svc.backend_set, svc.count);
	}

	for (prev = NULL; bpf_map_get_next_key(svc_fd, prev, &snext) == 0; prev = &skey) {
		skey = snext;
		if (bpf_map_lookup_elem(svc_fd, &skey, &svc) || !svc.count)
			continue;
		if (grow((void **)&live, &cap_live, n_live, sizeof(*live)))
			goto out;
		live[n_live].set = svc.backend_set;
		live[n_live++].count = svc.count;
	}
	qsort(live, n_live, sizeof(*live), cmp_live_set);
	for (prev = NULL; bpf_map_get_next_key(be_fd, prev, &bnext) == 0; prev = &bkey) {
		bkey = bnext;
		probe.set = bkey.backend_set;
		hit = bsearch(&probe, live, n_live, sizeof(*live), cmp_live_set);
		if (hit && bkey.slot < hit->count)
			continue;
		if (grow((void **)&orphans, &cap_orphans, n_orphans, sizeof(*orphans)))
			goto out;
		orphans[n_orphans++] = bkey;
	}
	for (i = 0; i < n_orphans; i++)
		bpf_map_delete_elem(be_fd, &orphans[i]);
	if (n_stale || n_orphans)
		pr_info("bpf: adoption removed %zu stale frontends and %zu unused backend slots",
			n_stale, n_orphans);
	err = 0;
out:
	if (err)
		pr_warn("bpf: out of memory while sweeping stale entries");
	free(wanted);
	free(stale);
	free(live);
	free(orphans);
	return err;
}

/* ---- per-Service entries: name, rate limit, bucket, counters ---- */

static void service_info_of(const struct frontend *fe, struct sl_service_info *info)
{
	memset(info, 0, sizeof(*info));
	snprintf(info->name, sizeof(info->name), "%s", fe->service ? fe->service : "");
	info->rate_count = fe->rate.count;
	info->rate_period = fe->rate.count ? fe->rate.period : 0;
	info->rate_burst = fe->rate.count ? fe->rate.burst : 0;
	info->rate_interval_ns = rate_limit_interval_ns(&fe->rate);
	info->rate_depth_ns = rate_limit_depth_ns(&fe->rate);
}

/* Removes the Service's name, bucket and counters (its last frontend went). */
static void forget_service(struct datapath *dp, __u32 id)
{
	bpf_map_delete_elem(bpf_map__fd(dp->skel->maps.service_info), &id);
	bpf_map_delete_elem(bpf_map__fd(dp->skel->maps.rate_buckets), &id);
	bpf_map_delete_elem(bpf_map__fd(dp->skel->maps.service_counters), &id);
}

/*
 * Writes the Service's name and limit if they changed. Another name under
 * the id (left by an agent before a restart, which numbers Services anew)
 * starts the bucket and counters afresh; a new limit starts a full bucket,
 * because a TAT charged at a slow old rate could run hours ahead.
 */
static int sync_service_info(struct datapath *dp, const struct frontend *fe)
{
	int info_fd = bpf_map__fd(dp->skel->maps.service_info);
	struct sl_service_info want, have;
	__u32 id = fe->service_id;
	char name[128];
	int err;

	service_info_of(fe, &want);
	if (bpf_map_lookup_elem(info_fd, &id, &have) == 0) {
		if (!memcmp(&have, &want, sizeof(want)))
			return 0;
		if (strcmp(have.name, want.name)) {
			bpf_map_delete_elem(bpf_map__fd(dp->skel->maps.service_counters), &id);
			bpf_map_delete_elem(bpf_map__fd(dp->skel->maps.rate_buckets), &id);
		} else if (have.rate_interval_ns != want.rate_interval_ns ||
			   have.rate_depth_ns != want.rate_depth_ns) {
			bpf_map_delete_elem(bpf_map__fd(dp->skel->maps.rate_buckets), &id);
		}
	}
	if (bpf_map_update_elem(info_fd, &id, &want, BPF_ANY)) {
		err = -errno;
		pr_warn("bpf: %s: cannot write the service_info entry: %s",
			frontend_name(fe, name, sizeof(name)), strerror(-err));
		return err;
	}
	return 0;
}

static int service_ref(struct datapath *dp, const struct frontend *fe)
{
	__u32 id = fe->service_id;
	size_t n;
	__u32 *bigger;

	if (id >= dp->n_frontends_of) {
		n = dp->n_frontends_of ? dp->n_frontends_of : 256;
		while (n <= id)
			n *= 2;
		bigger = realloc(dp->frontends_of, n * sizeof(*bigger));
		if (!bigger)
			return -ENOMEM;
		memset(bigger + dp->n_frontends_of, 0, (n - dp->n_frontends_of) * sizeof(*bigger));
		dp->frontends_of = bigger;
		dp->n_frontends_of = n;
	}
	dp->frontends_of[id]++;
	return sync_service_info(dp, fe);
}

static void service_unref(struct datapath *dp, const struct frontend *fe)
{
	__u32 id = fe->service_id;

	if (id < dp->n_frontends_of && dp->frontends_of[id] && !--dp->frontends_of[id])
		forget_service(dp, id);
}

/* After a full apply: drop per-Service entries of ids no programmed frontend has. */
static void sweep_services(struct datapath *dp)
{
	int fds[] = {
		bpf_map__fd(dp->skel->maps.service_info),
		bpf_map__fd(dp->skel->maps.rate_buckets),
		bpf_map__fd(dp->skel->maps.service_counters),
	};
	__u32 key, next, *stale = NULL;
	size_t n_stale = 0, cap = 0, i, m;
	void *prev;

	for (m = 0; m < sizeof(fds) / sizeof(fds[0]); m++) {
		n_stale = 0;
		for (prev = NULL; bpf_map_get_next_key(fds[m], prev, &next) == 0; prev = &key) {
			key = next;
			if (key < dp->n_frontends_of && dp->frontends_of[key])
				continue;
			if (grow((void **)&stale, &cap, n_stale, sizeof(*stale)))
				break;
			stale[n_stale++] = key;
		}
		for (i = 0; i < n_stale; i++)
			bpf_map_delete_elem(fds[m], &stale[i]);
	}
	free(stale);
}

static bool same_key(const struct frontend *a, const struct frontend *b)
{
	struct sl_service_key ka, kb;

	service_key_of(&a->key, &ka);
	service_key_of(&b->key, &kb);
	return !memcmp(&ka, &kb, sizeof(ka));
}

/*
 * The tc programs must also see the replies of SNATed connections where
 * they come in: on the devices towards the external frontends' backends.
 */
static void reach_backends(struct datapath *dp, const struct state_diff *diff)
{
	const struct frontend *fe;
	struct ip_addr *addrs = NULL;
	size_t n = 0, cap = 0, i, b;

	for (i = 0; i < diff->n_changes; i++) {
		fe = diff->changes[i].new;
		if (!fe || fe->kind == FE_CLUSTER_IP || fe->action != FE_SERVE)
			continue;
		for (b = 0; b < fe->n_backends; b++) {
			if (grow((void **)&addrs, &cap, n, sizeof(*addrs)))
				goto out;
			addrs[n++] = fe->backends[b].addr;
		}
	}
	tc_datapath_reach(dp->tc, addrs, n);
out:
	free(addrs);
}

static int bpf_apply(struct datapath *dp, const struct state_diff *diff)
{
	const struct frontend_change *ch;
	size_t i, written = 0, kept = 0, removed = 0;
	int err, first_err = 0;

	/* A full apply lists every frontend as added: count them from zero. */
	if (diff->full && dp->frontends_of)
		memset(dp->frontends_of, 0, dp->n_frontends_of * sizeof(*dp->frontends_of));
	for (i = 0; i < diff->n_changes; i++) {
		ch = &diff->changes[i];
		if (ch->new) {
			/* A modify whose key moved out of our scope still removes the old one. */
			if (!frontend_programmable(ch->new)) {
				err = ch->old && frontend_programmable(ch->old) ?
					      remove_frontend(dp, ch->old) :
					      0;
			} else {
				err = write_frontend(dp, ch->new, diff->full);
				if (err == 1) {
					kept++;
					err = 0;
				} else if (!err) {
					written++;
				}
				if (!err && ch->old && !same_key(ch->old, ch->new) &&
				    frontend_programmable(ch->old))
					err = remove_frontend(dp, ch->old);
			}
		} else if (ch->old && frontend_programmable(ch->old)) {
			err = remove_frontend(dp, ch->old);
			removed += !err;
		} else {
			err = 0;
		}
		if (err && !first_err)
			first_err = err;
		/* New reference first, so that a modify keeps the Service's counters. */
		if (ch->new &&frontend_programmable(ch->new)) {
			err = service_ref(dp, ch->new);
			if (err && !first_err)
				first_err = err;
		}
		if (ch->old && frontend_programmable(ch->old))
			service_unref(dp, ch->old);
	}
	if (diff->full) {
		err = sweep(dp, diff);
		if (err && !first_err)
			first_err = err;
		sweep_services(dp);
		prune_source_ranges(dp, NULL, NULL);
	}
	/* Addresses come and go with devices; NodePorts follow them at each apply. */
	tc_sync_node_addrs(bpf_map__fd(dp->skel->maps.node_addrs),
			   bpf_map__fd(dp->skel->maps.dev_addrs));
	if (dp->tc)
		reach_backends(dp, diff);
	pr_debug("bpf: applied %zu changes (%zu written, %zu already in place, %zu removed)%s",
		 diff->n_changes, written, kept, removed, diff->full ? ", full" : "");
	return first_err;
}

static void bpf_close(struct datapath *dp)
{
	size_t i;

	if (!dp)
		return;
	/* Closing our fds only: the pins keep links, programs and maps alive. */
	for (i = 0; i < dp->n_links; i++)
		bpf_link__destroy(dp->links[i]);
	tc_datapath_close(dp->tc);
	sock_bpf__destroy(dp->skel);
	if (dp->cgroup_fd >= 0)
		close(dp->cgroup_fd);
	free(dp->frontends_of);
	free(dp->links);
	free(dp);
}

/* Unlinks every pin in dir; returns the count removed, or -errno. */
static int unpin_all(const char *dir, int *first_err)
{
	char path[PATH_MAX];
	struct dirent *ent;
	int removed = 0;
	DIR *d;

	d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((ent = readdir(d))) {
		if (!strcmp(ent->d_name, ".") || !strcmp(ent->d_name, ".."))
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", dir, ent->d_name) >= (int)sizeof(path))
			continue;
		if (unlink(path)) {
			pr_warn("bpf: cannot remove pin %s: %s", path, strerror(errno));
			if (!*first_err)
				*first_err = -errno;
			continue;
		}
		removed++;
	}
	closedir(d);
	return removed;
}

static int bpf_cleanup(const struct datapath_config *cfg)
{
	const char *dir = bpffs_dir(cfg);
	char links[PATH_MAX], maps[PATH_MAX];
	int first_err = 0, n_links, n_maps;

	if (join(links, dir, SL_PIN_LINKS_DIR, NULL) || join(maps, dir, SL_PIN_MAPS_DIR, NULL))
		return -ENAMETOOLONG;
	/* tc filters first: they are found on the devices, the record of clsact in maps/. */
	first_err = tc_datapath_cleanup(maps);
	/* Links next: unpinning them detaches the programs before the maps go. */
	n_links = unpin_all(links, &first_err);
	n_maps = unpin_all(maps, &first_err);
	if (n_links < 0 || n_maps < 0) {
		pr_warn("bpf: cannot read pins under %s: %s", dir,
			strerror(-(n_links < 0 ? n_links : n_maps)));
		return n_links < 0 ? n_links : n_maps;
	}
	if (rmdir(links) && errno != ENOENT && !first_err)
		first_err = -errno;
	if (rmdir(maps) && errno != ENOENT && !first_err)
		first_err = -errno;
	/* EBUSY: dir is itself a bpffs mount point, which is not ours to remove. */
	if (rmdir(dir) && errno != ENOENT && errno != EBUSY && !first_err)
		first_err = -errno;
	if (first_err)
		pr_warn("bpf: cleanup of %s incomplete: %s", dir, strerror(-first_err));
	else if (n_links || n_maps)
		pr_info("bpf: removed %d links and %d maps under %s", n_links, n_maps, dir);
	return first_err;
}

static bool dir_has_entries(const char *dir)
{
	struct dirent *ent;
	bool found = false;
	DIR *d;

	d = opendir(dir);
	if (!d)
		return false;
	while (!found && (ent = readdir(d)))
		found = strcmp(ent->d_name, ".") && strcmp(ent->d_name, "..");
	closedir(d);
	return found;
}

static bool bpf_present(const struct datapath_config *cfg)
{
	const char *dir = bpffs_dir(cfg);
	char links[PATH_MAX], maps[PATH_MAX];

	if (join(links, dir, SL_PIN_LINKS_DIR, NULL) || join(maps, dir, SL_PIN_MAPS_DIR, NULL))
		return false;
	return dir_has_entries(links) || dir_has_entries(maps) || tc_datapath_present();
}

static int open_pin(const struct datapath_config *cfg, const char *name)
{
	char path[PATH_MAX];
	int fd;

	if (join(path, bpffs_dir(cfg), SL_PIN_MAPS_DIR, name))
		return -ENAMETOOLONG;
	fd = bpf_obj_get(path);
	return fd < 0 ? -errno : fd;
}

/* A new entry for id, named by its id until service_info names it. */
static struct service_stats *stats_append(struct service_stats **arr, size_t *n, size_t *cap,
					  __u32 id)
{
	if (grow((void **)arr, cap, *n, sizeof(**arr)))
		return NULL;
	memset(&(*arr)[*n], 0, sizeof(**arr));
	(*arr)[*n].service_id = id;
	snprintf((*arr)[*n].service, sizeof((*arr)[*n].service), "service-id %u", id);
	return &(*arr)[(*n)++];
}

static int cmp_stats_id(const void *a, const void *b)
{
	const struct service_stats *x = a, *y = b;

	return (x->service_id > y->service_id) - (x->service_id < y->service_id);
}

/*
 * The entry for id: found among the first n_sorted (sorted by id), else
 * appended. Returns NULL without memory.
 */
static struct service_stats *stats_entry(struct service_stats **arr, size_t *n, size_t *cap,
					 size_t n_sorted, __u32 id)
{
	struct service_stats probe = { .service_id = id }, *hit;
	size_t i;

	hit = n_sorted ? bsearch(&probe, *arr, n_sorted, sizeof(**arr), cmp_stats_id) : NULL;
	if (hit)
		return hit;
	/* Counters without a name are rare (a Service going away): a short scan. */
	for (i = n_sorted; i < *n; i++) {
		if ((*arr)[i].service_id == id)
			return &(*arr)[i];
	}
	return stats_append(arr, n, cap, id);
}

static int cmp_stats(const void *a, const void *b)
{
	const struct service_stats *x = a, *y = b;
	int c = strcmp(x->service, y->service);

	return c ? c : (x->service_id > y->service_id) - (x->service_id < y->service_id);
}

/*
 * Every Service with a name (service_info) or counters (summed over CPUs),
 * read from the pins alone: sluicectl runs beside the agent.
 */
static int bpf_read_stats(const struct datapath_config *cfg, struct service_stats **out,
			  size_t *n_out)
{
	struct service_stats *arr = NULL, *e;
	struct sl_service_counters *percpu = NULL;
	struct sl_service_info info;
	size_t n = 0, cap = 0, n_named;
	int info_fd, counters_fd, ncpus, cpu, err = 0;
	__u32 key, next;
	void *prev;

	*out = NULL;
	*n_out = 0;
	info_fd = open_pin(cfg, "service_info");
	if (info_fd < 0)
		return info_fd;
	counters_fd = open_pin(cfg, "service_counters");
	if (counters_fd < 0) {
		close(info_fd);
		return counters_fd;
	}
	ncpus = libbpf_num_possible_cpus();
	if (ncpus <= 0) {
		err = ncpus ? ncpus : -EINVAL;
		goto out;
	}
	percpu = calloc(ncpus, sizeof(*percpu));
	if (!percpu) {
		err = -ENOMEM;
		goto out;
	}
	for (prev = NULL; bpf_map_get_next_key(info_fd, prev, &next) == 0; prev = &key) {
		key = next;
		if (bpf_map_lookup_elem(info_fd, &key, &info))
			continue;
		e = stats_append(&arr, &n, &cap, key); /* keys are unique */
		if (!e) {
			err = -ENOMEM;
			goto out;
		}
		info.name[sizeof(info.name) - 1] = '\0';
		snprintf(e->service, sizeof(e->service), "%s", info.name);
		e->rate.count = info.rate_count;
		e->rate.period = info.rate_period;
		e->rate.burst = info.rate_burst;
	}
	qsort(arr, n, sizeof(*arr), cmp_stats_id);
	n_named = n;
	for (prev = NULL; bpf_map_get_next_key(counters_fd, prev, &next) == 0; prev = &key) {
		key = next;
		if (bpf_map_lookup_elem(counters_fd, &key, percpu))
			continue;
		e = stats_entry(&arr, &n, &cap, n_named, key);
		if (!e) {
			err = -ENOMEM;
			goto out;
		}
		for (cpu = 0; cpu < ncpus; cpu++) {
			e->admitted += percpu[cpu].admitted;
			e->limited += percpu[cpu].limited;
		}
	}
	qsort(arr, n, sizeof(*arr), cmp_stats);
out:
	free(percpu);
	close(info_fd);
	close(counters_fd);
	if (err) {
		free(arr);
		return err;
	}
	*out = arr;
	*n_out = n;
	return 0;
}

const struct datapath_ops bpf_datapath_ops = {
	.name = "bpf",
	.open = bpf_open,
	.apply = bpf_apply,
	.close = bpf_close,
	.cleanup = bpf_cleanup,
	.present = bpf_present,
	.read_stats = bpf_read_stats,
};
