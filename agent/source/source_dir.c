// SPDX-License-Identifier: Apache-2.0
/*
 * The manifest directory source (--source=dir:PATH): loads every .json,
 * .yaml and .yml file, then follows changes with inotify, re-reading only
 * the files that changed and feeding the store what they add or remove.
 *
 * Only finished writes, renames and deletions wake it. Every such event
 * triggers a rescan of the directory that compares each file's identity
 * (inode, size, mtime, ctime) with what was loaded: this also covers editors
 * that write a temporary file and rename it, and ConfigMap volumes that swap
 * a symlinked "..data" directory. Writes in place are tracked too (IN_MODIFY
 * until IN_CLOSE_WRITE): a file that a writer still holds is not read, and a
 * file that changes while it is read is read again later, so a half-written
 * file is never applied. Writers should still rename into place.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/file.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "source/manifest.h"
#include "source/source_dir.h"

enum object_kind { KIND_SERVICE, KIND_SLICE, KIND_NODE };

struct object_ref {
	enum object_kind kind;
	char *ns, *name;
};

struct dir_file {
	struct stat st; /* identity when last read */
	struct object_ref *refs; /* objects it contributed */
	size_t n_refs;
	bool seen; /* found by the current scan */
};

static bool is_manifest_name(const char *name)
{
	const char *dot = strrchr(name, '.');

	if (name[0] == '.' || !dot)
		return false;
	return !strcmp(dot, ".json") || !strcmp(dot, ".yaml") || !strcmp(dot, ".yml");
}

static bool same_identity(const struct stat *a, const struct stat *b)
{
	return a->st_ino == b->st_ino && a->st_dev == b->st_dev && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
	       a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

static void refs_free(struct object_ref *refs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(refs[i].ns);
		free(refs[i].name);
	}
	free(refs);
}

static void file_free(struct dir_file *f)
{
	if (!f)
		return;
	refs_free(f->refs, f->n_refs);
	free(f);
}

static const char *ref_source(const struct store *st, const struct object_ref *ref)
{
	char key[512];
	const struct service *svc;
	const struct endpoint_slice *slice;
	const struct node *node;

	switch (ref->kind) {
	case KIND_SERVICE:
		svc = store_get_service(st, object_key(key, sizeof(key), ref->ns, ref->name));
		return svc ? svc->source : NULL;
	case KIND_SLICE:
		slice = strmap_get(&st->slices, object_key(key, sizeof(key), ref->ns, ref->name));
		return slice ? slice->source : NULL;
	case KIND_NODE:
		node = store_get_node(st, ref->name);
		return node ? node->source : NULL;
	}
	return NULL;
}

/* Removes an object this file had contributed, unless another file has taken it over since. */
static void forget_ref(struct store *st, const struct object_ref *ref, const char *source)
{
	const char *owner = ref_source(st, ref);

	if (!owner || strcmp(owner, source))
		return;
	switch (ref->kind) {
	case KIND_SERVICE:
		store_delete_service(st, ref->ns, ref->name);
		break;
	case KIND_SLICE:
		store_delete_slice(st, ref->ns, ref->name);
		break;
	case KIND_NODE:
		store_delete_node(st, ref->name);
		break;
	}
}

static const char *const kind_names[] = {
	[KIND_SERVICE] = "Service",
	[KIND_SLICE] = "EndpointSlice",
	[KIND_NODE] = "Node",
};

/* "Kind/ns/name": one key per object, for the sets below. */
static const char *ref_key(char *buf, size_t len, enum object_kind kind, const char *ns,
			   const char *name)
{
	snprintf(buf, len, "%s/%s/%s", kind_names[kind], ns ? ns : "", name ? name : "");
	return buf;
}

/* The objects of a file's new contents, and those rejected in it, by key. */
static void index_refs(struct strmap *set, const struct object_ref *refs, size_t n)
{
	char key[768];

	for (size_t i = 0; i < n; i++)
		strmap_put(set, ref_key(key, sizeof(key), refs[i].kind, refs[i].ns, refs[i].name),
			   (void *)1);
}

static void index_rejected(struct strmap *set, const struct manifest_objects *objs)
{
	char key[768];

	for (size_t i = 0; i < objs->n_rejected; i++) {
		const struct manifest_rejected *r = &objs->rejected[i];

		if (r->kind && r->name) {
			snprintf(key, sizeof(key), "%s/%s/%s", r->kind, r->ns ? r->ns : "",
				 r->name);
			strmap_put(set, key, (void *)1);
		}
	}
}

static void add_ref(struct object_ref **refs, size_t *n, enum object_kind kind, const char *ns,
		    const char *name)
{
	struct object_ref *r = xreallocarray(*refs, *n + 1, sizeof(**refs));

	*refs = r;
	r[*n].kind = kind;
	r[*n].ns = ns ? xstrdup(ns) : NULL;
	r[*n].name = xstrdup(name);
	(*n)++;
}

/*
 * Re-reads one file and moves the store to its new contents. A file that
 * does not parse keeps its previous objects, as a rejected update would.
 */
/* Keeps a file's old objects; it is not read again until it changes. */
static void keep_old(struct dir_source *src, const char *name, const struct stat *st,
		     struct dir_file *old)
{
	src->rejected++;
	src->rejected_of[REJECTED_OTHER]++;
	if (!old) {
		old = xcalloc(1, sizeof(*old));
		strmap_put(&src->files, name, old);
	}
	old->st = *st;
	old->seen = true;
}

static void load_file(struct dir_source *src, const char *name, const struct stat *scanned,
		      struct dir_file *old)
{
	struct manifest_objects objs = { 0 };
	struct object_ref *refs = NULL;
	struct strmap kept, rejected;
	struct dir_file *f;
	struct stat st;
	size_t n_refs = 0;
	char path[4096], key[768], *text = NULL;
	size_t len = 0;
	int err;

	snprintf(path, sizeof(path), "%s/%s", src->path, name);
	err = read_file_checked(path, src->max_file_bytes, &text, &len, &st);
	if (err == -EAGAIN) {
		/* Its writer's next close brings it back; until then the old objects stay. */
		pr_info("%s: changed while being read; it is read again when its writer is done",
			path);
		return;
	}
	if (err == -EFBIG) {
		pr_warn("%s: larger than --max-file-bytes=%zu; not read, its old objects stay",
			path, src->max_file_bytes);
		keep_old(src, name, scanned, old);
		return;
	}
	if (err) {
		pr_warn("%s: cannot read: %s", path, strerror(-err));
		src->rejected++;
		src->rejected_of[REJECTED_OTHER]++;
		return;
	}
	err = manifest_decode(text, len, path, &objs);
	free(text);
	if (err) {
		keep_old(src, name, &st, old);
		return;
	}
	src->rejected += objs.n_rejected;
	for (size_t i = 0; i < objs.n_rejected; i++)
		src->rejected_of[rejected_kind_of(objs.rejected[i].kind)]++;

	for (size_t i = 0; i < objs.n_services; i++)
		add_ref(&refs, &n_refs, KIND_SERVICE, objs.services[i]->ns, objs.services[i]->name);
	for (size_t i = 0; i < objs.n_slices; i++)
		add_ref(&refs, &n_refs, KIND_SLICE, objs.slices[i]->ns, objs.slices[i]->name);
	for (size_t i = 0; i < objs.n_nodes; i++)
		add_ref(&refs, &n_refs, KIND_NODE, NULL, objs.nodes[i]->name);
	/* An object rejected as invalid keeps its last good version. */
	strmap_init(&kept);
	strmap_init(&rejected);
	if (old && old->n_refs) {
		index_refs(&kept, refs, n_refs);
		index_rejected(&rejected, &objs);
	}
	for (size_t i = 0; old && i < old->n_refs; i++) {
		const struct object_ref *ref = &old->refs[i];

		ref_key(key, sizeof(key), ref->kind, ref->ns, ref->name);
		if (strmap_get(&kept, key))
			continue;
		if (strmap_get(&rejected, key))
			add_ref(&refs, &n_refs, ref->kind, ref->ns, ref->name);
		else
			forget_ref(src->store, ref, path);
	}
	strmap_destroy(&kept);
	strmap_destroy(&rejected);

	for (size_t i = 0; i < objs.n_services; i++)
		store_put_service(src->store, objs.services[i]);
	for (size_t i = 0; i < objs.n_slices; i++)
		store_put_slice(src->store, objs.slices[i]);
	for (size_t i = 0; i < objs.n_nodes; i++)
		store_put_node(src->store, objs.nodes[i]);
	objs.n_services = objs.n_slices = objs.n_nodes = 0; /* the store owns them now */
	manifest_objects_clear(&objs);

	f = xcalloc(1, sizeof(*f));
	f->st = st;
	f->refs = refs;
	f->n_refs = n_refs;
	f->seen = true;
	file_free(strmap_put(&src->files, name, f));
	pr_debug("%s: loaded %zu objects", path, n_refs);
}

static void forget_file(struct dir_source *src, const char *name, struct dir_file *f)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/%s", src->path, name);
	pr_info("%s: removed", path);
	for (size_t i = 0; i < f->n_refs; i++)
		forget_ref(src->store, &f->refs[i], path);
}

static int scan(struct dir_source *src)
{
	struct strmap_iter it;
	struct strmap_entry *e;
	struct dirent *de;
	DIR *dir;
	char **gone = NULL;
	size_t n_gone = 0;

	dir = opendir(src->path);
	if (!dir) {
		pr_warn("%s: cannot open directory: %s", src->path, strerror(errno));
		return -errno;
	}
	for (e = strmap_first(&src->files, &it); e; e = strmap_next(&src->files, &it))
		((struct dir_file *)e->value)->seen = false;
	src->rejected = 0;
	while ((de = readdir(dir))) {
		struct dir_file *f;
		struct stat st;

		if (!is_manifest_name(de->d_name))
			continue;
		if (fstatat(dirfd(dir), de->d_name, &st, 0) || !S_ISREG(st.st_mode))
			continue;
		f = strmap_get(&src->files, de->d_name);
		if (f) {
			f->seen = true;
			if (same_identity(&f->st, &st))
				continue;
		}
		/* A writer still holds it: its close brings it back. */
		if (strmap_get(&src->writing, de->d_name))
			continue;
		load_file(src, de->d_name, &st, f);
	}
	closedir(dir);

	for (e = strmap_first(&src->files, &it); e; e = strmap_next(&src->files, &it)) {
		if (((struct dir_file *)e->value)->seen)
			continue;
		gone = xreallocarray(gone, n_gone + 1, sizeof(*gone));
		gone[n_gone++] = xstrdup(e->key);
	}
	for (size_t i = 0; i < n_gone; i++) {
		struct dir_file *f = strmap_remove(&src->files, gone[i]);

		forget_file(src, gone[i], f);
		file_free(f);
		free(gone[i]);
	}
	free(gone);
	return 0;
}

int dir_source_open(struct dir_source *src, const char *path, size_t max_file_bytes,
		    struct store *store)
{
	int err;

	memset(src, 0, sizeof(*src));
	src->store = store;
	src->max_file_bytes = max_file_bytes ? max_file_bytes : DIR_DEFAULT_MAX_FILE_BYTES;
	strmap_init(&src->files);
	strmap_init(&src->writing);
	src->path = xstrdup(path);
	src->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (src->inotify_fd < 0) {
		err = -errno;
		goto fail;
	}
	if (inotify_add_watch(src->inotify_fd, path,
			      IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE |
				      IN_ONLYDIR) < 0) {
		err = -errno;
		pr_warn("%s: cannot watch directory: %s", path, strerror(errno));
		goto fail;
	}
	err = scan(src);
	if (err)
		goto fail;
	return 0;
fail:
	dir_source_close(src);
	return err;
}

int dir_source_fd(const struct dir_source *src)
{
	return src->inotify_fd;
}

/* Notes writers in progress; true if the event calls for a rescan. */
static bool note_event(struct dir_source *src, const struct inotify_event *ev)
{
	/* Lost events: who is still writing is unknown; the identity checks remain. */
	if (ev->mask & IN_Q_OVERFLOW) {
		strmap_destroy(&src->writing);
		return true;
	}
	if (ev->mask & IN_MODIFY) {
		if (ev->len && is_manifest_name(ev->name) && !strmap_get(&src->writing, ev->name))
			strmap_put(&src->writing, ev->name, (void *)1);
		return false;
	}
	/* Any other event rescans, also of hidden names: ConfigMaps swap "..data". */
	if (ev->len)
		strmap_remove(&src->writing, ev->name);
	return true;
}

int dir_source_handle_events(struct dir_source *src)
{
	char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool rescan = false;
	ssize_t n;

	while ((n = read(src->inotify_fd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;

			rescan |= note_event(src, ev);
			p += sizeof(*ev) + ev->len;
		}
	}
	if (n < 0 && errno != EAGAIN && errno != EINTR)
		return -errno;
	return rescan ? scan(src) : 0;
}

void dir_source_close(struct dir_source *src)
{
	struct strmap_iter it;
	struct strmap_entry *e;

	for (e = strmap_first(&src->files, &it); e; e = strmap_next(&src->files, &it))
		file_free(e->value);
	strmap_destroy(&src->files);
	strmap_destroy(&src->writing);
	if (src->inotify_fd > 0)
		close(src->inotify_fd);
	free(src->path);
	src->path = NULL;
	src->inotify_fd = -1;
}

static struct dir_source *to_dir(struct source *src)
{
	return (struct dir_source *)src;
}

static int dir_fd(struct source *src)
{
	return dir_source_fd(to_dir(src));
}

static int dir_handle_events(struct source *src)
{
	return dir_source_handle_events(to_dir(src));
}

static size_t dir_rejected(struct source *src)
{
	return to_dir(src)->rejected;
}

static size_t dir_rejected_of(struct source *src, enum rejected_kind kind)
{
	return kind < REJECTED_KINDS ? to_dir(src)->rejected_of[kind] : 0;
}

static void dir_close(struct source *src)
{
	dir_source_close(to_dir(src));
	free(src);
}

static const struct source_ops dir_source_ops = {
	.name = "dir",
	.fd = dir_fd,
	.handle_events = dir_handle_events,
	.rejected = dir_rejected,
	.rejected_of = dir_rejected_of,
	.close = dir_close,
};

int dir_source_new(const char *path, size_t max_file_bytes, struct store *store,
		   struct source **out)
{
	struct dir_source *src = xcalloc(1, sizeof(*src));
	int err;

	err = dir_source_open(src, path, max_file_bytes, store);
	if (err) {
		free(src);
		return err;
	}
	src->base.ops = &dir_source_ops;
	*out = &src->base;
	return 0;
}
