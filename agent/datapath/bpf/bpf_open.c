// SPDX-License-Identifier: Apache-2.0
/*
 * Opening the BPF datapath: make the pin directories exist on a bpffs, open
 * the cgroup, load the socket programs over the pinned maps (adopting them,
 * or replacing one of another layout), attach the programs through pinned
 * links (swapping a new program into a live link), and take all of it back
 * if a step fails. Also close, which leaves the pins serving.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <mntent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <linux/magic.h>
#include <linux/types.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "datapath/bpf/bpf_datapath.h"
#include "datapath/bpf/bpf_features.h"
#include "datapath/bpf/bpf_node_addrs.h"
#include "datapath/bpf/bpf_sock_destroy.h"
#include "datapath/bpf/datapath_bpf_tc.h"
#include "datapath/bpf/bpf_dsr.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "shared.h"
#include "sock.skel.h"

#define SL_BPFFS_MOUNT "/sys/fs/bpf"
#define SL_MAX_CREATED_DIRS 32

/* What open() created in this call, so that a failure can take it back. */
struct open_undo {
	char *dirs[SL_MAX_CREATED_DIRS]; /* in creation order */
	int n_dirs;
	bool *map_pinned_here; /* per map */
	bool *link_pinned_here; /* per program */
	/*
	 * Per map: the map whose pin set_map_pins dropped (another layout or
	 * size), or -1. Re-pinned if open fails; a resized one (only
	 * max_entries differs, resized[i]) has its entries copied first.
	 */
	int *old_fd;
	bool *resized;
	size_t n_maps;
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
			undo->dirs[undo->n_dirs++] = xstrdup(path);
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
		if (bpf_map_lookup_elem(services_fd, &next, &svc) == 0) {
			if (svc.backend_set > max)
				max = svc.backend_set;
			if ((svc.flags & SL_SVC_F_NODE_SET) && svc.node_set > max)
				max = svc.node_set;
		}
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
		bpf_object__for_each_program(prog, dp->skel->obj) {
			if (i < dp->n_links && dp->links[i]) {
				if (undo->link_pinned_here && undo->link_pinned_here[i])
					bpf_link__unpin(dp->links[i]);
				bpf_link__destroy(dp->links[i]);
			}
			i++;
		}
		i = 0;
		bpf_object__for_each_map(map, dp->skel->obj) {
			if (undo->map_pinned_here && undo->map_pinned_here[i] &&
			    bpf_map__is_pinned(map))
				bpf_map__unpin(map, NULL);
			/* The pin set_map_pins dropped serves again, for the next try. */
			if (i < undo->n_maps && undo->old_fd[i] >= 0 && bpf_map__pin_path(map) &&
			    bpf_obj_pin(undo->old_fd[i], bpf_map__pin_path(map)))
				pr_warn("bpf: cannot restore pinned map %s: %s",
					bpf_map__pin_path(map), strerror(errno));
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

/* The max_entries --max-services=n gives the map name, or 0 if it does not scale. */
static __u32 scaled_max_entries(const char *name, __u32 n)
{
	if (!strcmp(name, "service_info") || !strcmp(name, "rate_buckets") ||
	    !strcmp(name, "service_counters") || !strcmp(name, "service_refused"))
		return n;
	if (!strcmp(name, "services"))
		return n * SL_FRONTENDS_PER_SERVICE;
	if (!strcmp(name, "maglev"))
		return 2 * n * SL_FRONTENDS_PER_SERVICE;
	if (!strcmp(name, "backends"))
		return n * SL_SLOTS_PER_SERVICE;
	return 0;
}

int bpf_size_maps(struct bpf_object *obj, __u32 max_services)
{
	struct bpf_map *map;
	__u32 size;
	int err;

	bpf_object__for_each_map(map, obj) {
		size = scaled_max_entries(bpf_map__name(map), max_services);
		if (size && (err = bpf_map__set_max_entries(map, size)))
			return err;
	}
	return 0;
}

/*
 * A pinned map of another layout (an older agent's) or size (another
 * --max-services) cannot be reused by libbpf: unpin it, so that load
 * creates and pins a new one. Programs still attached keep their reference
 * to the old map until they are swapped out. Returns the old map's fd if
 * the pin was dropped (*resized: only max_entries differs, so its entries
 * can be copied), else -1.
 */
static int drop_incompatible_pin(const struct bpf_map *map, const char *path, bool *resized)
{
	struct bpf_map_info info;
	__u32 len = sizeof(info);
	int fd;

	*resized = false;
	fd = bpf_obj_get(path);
	if (fd < 0)
		return -1;
	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		goto keep; /* let load report what is wrong */
	if (info.type == (__u32)bpf_map__type(map) && info.key_size == bpf_map__key_size(map) &&
	    info.value_size == bpf_map__value_size(map) &&
	    info.max_entries == bpf_map__max_entries(map) &&
	    info.map_flags == bpf_map__map_flags(map))
		goto keep;
	*resized = info.type == (__u32)bpf_map__type(map) &&
		   info.key_size == bpf_map__key_size(map) &&
		   info.value_size == bpf_map__value_size(map) &&
		   info.map_flags == bpf_map__map_flags(map);
	if (unlink(path)) {
		pr_warn("bpf: cannot remove pinned map %s of another layout: %s", path,
			strerror(errno));
		goto keep;
	}
	if (*resized)
		pr_info("bpf: pinned map %s holds %u entries, %u wanted (--max-services): "
			"replaced by a new one, its entries copied over",
			path, info.max_entries, bpf_map__max_entries(map));
	else
		pr_info("bpf: pinned map %s has another layout (type %u key %u value %u max %u "
			"flags 0x%x; want %u %u %u %u 0x%x): replaced by a new empty one",
			path, info.type, info.key_size, info.value_size, info.max_entries,
			info.map_flags, bpf_map__type(map), bpf_map__key_size(map),
			bpf_map__value_size(map), bpf_map__max_entries(map),
			bpf_map__map_flags(map));
	return fd;
keep:
	close(fd);
	return -1;
}

static bool map_is_percpu(enum bpf_map_type type)
{
	return type == BPF_MAP_TYPE_PERCPU_HASH || type == BPF_MAP_TYPE_PERCPU_ARRAY ||
	       type == BPF_MAP_TYPE_LRU_PERCPU_HASH;
}

#define SL_COPY_BATCH 4096

/*
 * Batched copy (BPF_MAP_LOOKUP_BATCH, UPDATE_BATCH): a million backend
 * slots take seconds one syscall at a time. Returns 0 when done, -E2BIG
 * when map is full, or another -errno (the map type has no batch
 * operations, say): the caller then copies element by element.
 */
static int copy_batched(int old_fd, int fd, size_t key_size, size_t value_size, size_t *copied)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	void *keys = xcalloc(SL_COPY_BATCH, key_size), *values = xcalloc(SL_COPY_BATCH, value_size);
	__u64 in = 0, out = 0;
	__u32 count, done;
	bool first = true;
	int err = 0, lerr;

	*copied = 0;
	for (;;) {
		count = SL_COPY_BATCH;
		lerr = bpf_map_lookup_batch(old_fd, first ? NULL : &in, &out, keys, values, &count,
					    &opts) ?
			       -errno :
			       0;
		first = false;
		if (lerr && lerr != -ENOENT) {
			err = lerr;
			break;
		}
		if (count) {
			done = count;
			if (bpf_map_update_batch(fd, keys, values, &done, &opts)) {
				err = -errno;
				*copied += done;
				break;
			}
			*copied += done;
		}
		if (lerr == -ENOENT)
			break;
		in = out;
	}
	free(keys);
	free(values);
	return err;
}

/*
 * Copies every entry of old_fd into map, a new map of the same layout and
 * another size, before any program uses it: the programs swapped in next
 * find what the old ones served from, so a new --max-services interrupts
 * nothing. Entries that do not fit a smaller map are left to the first
 * apply (which removes stale ones and retries what did not fit).
 */
static void copy_entries(int old_fd, const struct bpf_map *map)
{
	size_t key_size = bpf_map__key_size(map), value_size = bpf_map__value_size(map);
	size_t copied = 0, full = 0, failed = 0;
	int fd = bpf_map__fd(map), ncpus, first_err = 0, err;
	void *key, *next, *value, *prev = NULL, *tmp;

	if (map_is_percpu(bpf_map__type(map))) {
		ncpus = libbpf_num_possible_cpus();
		if (ncpus <= 0)
			return;
		value_size = ((value_size + 7) & ~(size_t)7) * ncpus;
	}
	err = copy_batched(old_fd, fd, key_size, value_size, &copied);
	if (err == -E2BIG) {
		pr_warn("bpf: map %s: %zu entries copied into the resized map, which is full; "
			"the first apply retries the rest",
			bpf_map__name(map), copied);
		return;
	}
	if (!err)
		goto out;
	/* No batch operations for this map: one element at a time (BPF_ANY: again is harmless). */
	copied = 0;
	key = xcalloc(1, key_size);
	next = xcalloc(1, key_size);
	value = xcalloc(1, value_size);
	while (bpf_map_get_next_key(old_fd, prev, next) == 0) {
		if (bpf_map_lookup_elem(old_fd, next, value) == 0) {
			if (bpf_map_update_elem(fd, next, value, BPF_ANY) == 0) {
				copied++;
			} else if (errno == E2BIG || errno == ENOSPC) {
				full++;
			} else {
				first_err = first_err ? first_err : errno;
				failed++;
			}
		}
		tmp = key;
		key = next;
		next = tmp;
		prev = key;
	}
	free(key);
	free(next);
	free(value);
	if (full || failed) {
		pr_warn("bpf: map %s: %zu entries copied into the resized map, %zu did not fit, "
			"%zu failed%s%s",
			bpf_map__name(map), copied, full, failed, failed ? ": " : "",
			failed ? strerror(first_err) : "");
		return;
	}
out:
	pr_info("bpf: map %s: %zu entries copied into the resized map", bpf_map__name(map), copied);
}

/* Sets every map's pin path so that load reuses pinned maps and pins new ones. */
static int set_map_pins(struct datapath *dp, struct open_undo *undo, char *why, size_t why_len)
{
	char path[PATH_MAX];
	struct bpf_map *map;
	size_t n = 0, i = 0;
	int err;

	bpf_object__for_each_map(map, dp->skel->obj)
		n++;
	undo->map_pinned_here = xcalloc(n, sizeof(bool));
	undo->old_fd = xcalloc(n, sizeof(int));
	undo->resized = xcalloc(n, sizeof(bool));
	undo->n_maps = n;
	for (i = 0; i < n; i++)
		undo->old_fd[i] = -1;
	i = 0;
	bpf_object__for_each_map(map, dp->skel->obj) {
		err = join(path, dp->bpffs, SL_PIN_MAPS_DIR, bpf_map__name(map));
		if (!err)
			err = bpf_map__set_pin_path(map, path);
		if (err)
			return fail(why, why_len, err, "cannot set pin path of map %s: %s",
				    bpf_map__name(map), strerror(-err));
		if (!access(path, F_OK))
			undo->old_fd[i] = drop_incompatible_pin(map, path, &undo->resized[i]);
		undo->map_pinned_here[i] = access(path, F_OK) != 0;
		i++;
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

	bpf_object__for_each_program(prog, dp->skel->obj)
		n++;
	dp->links = xcalloc(n, sizeof(*dp->links));
	progs = xcalloc(n, sizeof(*progs));
	reuse = xcalloc(n, sizeof(*reuse));
	undo->link_pinned_here = xcalloc(n, sizeof(bool));
	dp->n_links = n;
	i = 0;
	bpf_object__for_each_program(prog, dp->skel->obj) {
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
	for (i = 0; err && i < n; i++) {
		/* Roll back swaps already made: the old programs serve again. */
		if (dp->links[i] && !undo->link_pinned_here[i] && reuse[i].old_prog_fd >= 0 &&
		    bpf_link_update(bpf_link__fd(dp->links[i]), reuse[i].old_prog_fd, NULL))
			pr_warn("bpf: cannot restore program id %u in link of %s",
				reuse[i].old_prog_id, bpf_program__name(progs[i]));
	}
	for (i = 0; i < n; i++) {
		if (reuse[i].link)
			bpf_link__destroy(reuse[i].link);
		if (reuse[i].old_prog_fd >= 0)
			close(reuse[i].old_prog_fd);
	}
	free(reuse);
	free(progs);
	return err;
}

static void undo_free(struct open_undo *undo)
{
	size_t m;
	int i;

	for (i = 0; i < undo->n_dirs; i++)
		free(undo->dirs[i]);
	for (m = 0; m < undo->n_maps; m++) {
		if (undo->old_fd[m] >= 0)
			close(undo->old_fd[m]);
	}
	free(undo->old_fd);
	free(undo->resized);
	free(undo->map_pinned_here);
	free(undo->link_pinned_here);
}

int bpf_open(const struct datapath_config *cfg, struct datapath **out, char *why, size_t why_len)
{
	struct open_undo undo = { 0 };
	char cgroup_path[PATH_MAX];
	struct bpf_map *map;
	struct datapath *dp;
	int err, i;

	*out = NULL;
	dp = xcalloc(1, sizeof(*dp));
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
	dp->max_services = bpf_max_services(cfg);
	dp->maglev_size = cfg->maglev_table_size;
	err = bpf_size_maps(dp->skel->obj, dp->max_services);
	if (err) {
		err = fail(why, why_len, err, "cannot size the maps for --max-services=%u: %s",
			   dp->max_services, strerror(-err));
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
	/* Before the programs are swapped in: they must find what the old ones served. */
	i = 0;
	bpf_object__for_each_map(map, dp->skel->obj) {
		if (undo.old_fd[i] >= 0 && undo.resized[i])
			copy_entries(undo.old_fd[i], map);
		i++;
	}
	err = attach_programs(dp, cgroup_path, &undo, why, why_len);
	if (err)
		goto err;

	err = bpf_node_addrs_sync(bpf_map__fd(dp->skel->maps.node_addrs),
				  bpf_map__fd(dp->skel->maps.dev_addrs), NULL);
	if (err)
		pr_warn("bpf: cannot read the node's addresses (NodePorts need them): %s",
			strerror(-err));
	if (cfg && cfg->devices && *cfg->devices) {
		char maps_dir[PATH_MAX];

		err = join(maps_dir, dp->bpffs, SL_PIN_MAPS_DIR, NULL);
		if (!err)
			err = tc_datapath_open(maps_dir, cfg, dp->max_services, &dp->tc, why,
					       why_len);
		if (err)
			goto err;
	}

	dp->next_set = max_backend_set(bpf_map__fd(dp->skel->maps.services)) + 1;
	if (!dp->next_set)
		dp->next_set = 1;
	dp->published = -1;
	/* Probes and logs how connected UDP sockets of removed backends are destroyed. */
	dp->udp = sock_destroyer_open(bpf_map__fd(dp->skel->maps.revnat), cfg->terminate_tcp);
	/* Each feature newer than 6.1, once: logged and written to maps/features. */
	bpf_features_probe(dp);
	pr_info("bpf: datapath open, pins under %s, next backend set %u, maps sized for %u "
		"Services (--max-services)",
		dp->bpffs, dp->next_set, dp->max_services);
	undo_free(&undo);
	*out = dp;
	return 0;
err:
	undo_open(dp, &undo);
	undo_free(&undo);
	return err;
}

void bpf_close(struct datapath *dp)
{
	size_t i;

	if (!dp)
		return;
	/* Closing our fds only: the pins keep links, programs and maps alive. */
	for (i = 0; i < dp->n_links; i++)
		bpf_link__destroy(dp->links[i]);
	sock_destroyer_close(dp->udp);
	tc_datapath_close(dp->tc);
	bpf_dsr_free(dp);
	sock_bpf__destroy(dp->skel);
	if (dp->cgroup_fd >= 0)
		close(dp->cgroup_fd);
	bpf_pending_clear(dp);
	free(dp->pending);
	free(dp->frontends_of);
	free(dp->retired);
	free(dp->links);
	node_port_addrs_clear(&dp->node_ports);
	free(dp);
}
