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
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/file.h"
#include "lib/hash.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "source/manifest.h"
#include "source/source_dir.h"

enum object_kind { KIND_SERVICE, KIND_SLICE, KIND_NODE };

struct object_ref {
	enum object_kind kind;
	char *key; /* "ns/name", a Node's name; NULL once moved to the file's next version */
};

/* A top-level item of the file as last read: its fingerprint and the objects it gave. */
struct file_item {
	uint64_t fp; /* 0: never skipped (it had rejected objects, or was parsed whole) */
	uint32_t first_ref, n_refs;
	uint32_t moved_to; /* where its refs went in the next version, + 1; 0: not yet */
	bool moved; /* moved over from the previous version, not decoded */
};

struct dir_file {
	struct stat st; /* identity when last read */
	struct object_ref *refs; /* objects it contributed */
	size_t n_refs;
	struct file_item *items;
	size_t n_items;
	/* Open addressing by fp: its high 32 bits, then the item's index + 1; 0 empty. */
	uint64_t *slots;
	size_t n_slots; /* a power of two, or 0 */
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

static void file_free(struct dir_file *f)
{
	if (!f)
		return;
	for (size_t i = 0; i < f->n_refs; i++)
		free(f->refs[i].key);
	free(f->refs);
	free(f->items);
	free(f->slots);
	free(f);
}

/* The item of f with fingerprint fp, or NULL. */
static struct file_item *find_item(const struct dir_file *f, uint64_t fp)
{
	size_t mask = f->n_slots - 1;

	if (!f->n_slots || !fp)
		return NULL;
	/* The tag spares a cache miss into items for every slot that is not it. */
	for (size_t i = fp & mask; f->slots[i]; i = (i + 1) & mask) {
		struct file_item *item;

		if (f->slots[i] >> 32 != fp >> 32)
			continue;
		item = &f->items[(uint32_t)f->slots[i] - 1];
		if (item->fp == fp)
			return item;
	}
	return NULL;
}

/* The item's index + 1, which load_file finds it by again. */
static uint32_t file_knows(void *ctx, uint64_t fp)
{
	const struct dir_file *f = ctx;
	const struct file_item *item = find_item(f, fp);

	return item ? (uint32_t)(item - f->items) + 1 : 0;
}

static void index_items(struct dir_file *f)
{
	size_t n = 16;

	while (n < 2 * f->n_items)
		n *= 2;
	f->slots = xcalloc(n, sizeof(*f->slots));
	f->n_slots = n;
	for (size_t i = 0; i < f->n_items; i++) {
		uint64_t fp = f->items[i].fp;
		size_t slot = fp & (n - 1);
		bool twice = false;

		/* One walk finds both an earlier copy (it stays the one found) and the free slot. */
		for (; fp && !twice && f->slots[slot]; slot = (slot + 1) & (n - 1))
			twice = f->slots[slot] >> 32 == fp >> 32 &&
				f->items[(uint32_t)f->slots[slot] - 1].fp == fp;
		if (fp && !twice)
			f->slots[slot] = (fp >> 32) << 32 | (i + 1);
	}
}

static const char *ref_source(const struct store *st, const struct object_ref *ref)
{
	const struct service *svc;
	const struct endpoint_slice *slice;
	const struct node *node;

	switch (ref->kind) {
	case KIND_SERVICE:
		svc = store_get_service(st, ref->key);
		return svc ? svc->source : NULL;
	case KIND_SLICE:
		slice = strmap_get(&st->slices, ref->key);
		return slice ? slice->source : NULL;
	case KIND_NODE:
		node = store_get_node(st, ref->key);
		return node ? node->source : NULL;
	}
	return NULL;
}

/* Removes an object this file had contributed, unless another file has taken it over since. */
static void forget_ref(struct store *st, const struct object_ref *ref, const char *source)
{
	const char *owner = ref_source(st, ref), *slash = strchr(ref->key, '/');
	char ns[256];

	if (!owner || strcmp(owner, source))
		return;
	if (ref->kind == KIND_NODE || !slash) {
		store_delete_node(st, ref->key);
		return;
	}
	snprintf(ns, sizeof(ns), "%.*s", (int)(slash - ref->key), ref->key);
	if (ref->kind == KIND_SERVICE)
		store_delete_service(st, ns, slash + 1);
	else
		store_delete_slice(st, ns, slash + 1);
}

static const char *const kind_names[] = {
	[KIND_SERVICE] = "Service",
	[KIND_SLICE] = "EndpointSlice",
	[KIND_NODE] = "Node",
};

/* "Kind/key": one key per object, for the sets below. */
static const char *kind_key(char *buf, size_t len, enum object_kind kind, const char *key)
{
	snprintf(buf, len, "%s/%s", kind_names[kind], key);
	return buf;
}

static void add_ref(struct object_ref **refs, size_t *n, size_t *cap, enum object_kind kind,
		    char *key)
{
	if (*n == *cap) {
		*cap = *cap ? 2 * *cap : 16;
		*refs = xreallocarray(*refs, *cap, sizeof(**refs));
	}
	(*refs)[*n].kind = kind;
	(*refs)[*n].key = key;
	(*n)++;
}

static char *new_key(const char *ns, const char *name)
{
	char key[512];

	return xstrdup(ns ? object_key(key, sizeof(key), ns, name) : name);
}

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

/* The file's next version, built from what was decoded and what was skipped. */
struct next_version {
	struct dir_file *f;
	size_t cap_refs, cap_items;
};

static void push_item(struct next_version *next, uint64_t fp, uint32_t first_ref, bool moved)
{
	struct dir_file *f = next->f;

	if (f->n_items == next->cap_items) {
		next->cap_items = next->cap_items ? 2 * next->cap_items : 16;
		f->items = xreallocarray(f->items, next->cap_items, sizeof(*f->items));
	}
	f->items[f->n_items++] = (struct file_item){
		.fp = fp,
		.first_ref = first_ref,
		.n_refs = f->n_refs - first_ref,
		.moved = moved,
	};
}

/* An item skipped as unchanged: its refs move over from the old version. */
static void move_item(struct next_version *next, struct dir_file *old, struct file_item *from)
{
	struct dir_file *f = next->f;
	uint32_t first = f->n_refs;

	for (uint32_t i = 0; i < from->n_refs; i++) {
		struct object_ref *ref = &old->refs[from->first_ref + i];
		/* The same bytes twice in one file: the second copy gets copies. */
		char *key = from->moved_to ? xstrdup(f->refs[from->moved_to - 1 + i].key) :
					     ref->key;

		add_ref(&f->refs, &f->n_refs, &next->cap_refs, ref->kind, key);
		if (!from->moved_to)
			ref->key = NULL;
	}
	if (!from->moved_to)
		from->moved_to = first + 1;
	push_item(next, from->fp, first, true);
}

/* An item decoded now: refs of what it gave. */
static void add_decoded(struct next_version *next, const struct manifest_item *item,
			const struct manifest_objects *objs)
{
	struct dir_file *f = next->f;
	uint32_t first = f->n_refs;

	for (uint32_t i = 0; i < item->n_services; i++) {
		const struct service *svc = objs->services[item->first_service + i];

		add_ref(&f->refs, &f->n_refs, &next->cap_refs, KIND_SERVICE,
			new_key(svc->ns, svc->name));
	}
	for (uint32_t i = 0; i < item->n_slices; i++) {
		const struct endpoint_slice *slice = objs->slices[item->first_slice + i];

		add_ref(&f->refs, &f->n_refs, &next->cap_refs, KIND_SLICE,
			new_key(slice->ns, slice->name));
	}
	for (uint32_t i = 0; i < item->n_nodes; i++)
		add_ref(&f->refs, &f->n_refs, &next->cap_refs, KIND_NODE,
			xstrdup(objs->nodes[item->first_node + i]->name));
	push_item(next, item->fp, first, false);
}

/*
 * The old version's objects that no unchanged item carried over: kept if
 * decoded again, kept in their last good version if rejected now (as
 * refs of the new version), else forgotten.
 */
static void settle_old_refs(struct dir_source *src, const char *path, struct dir_file *old,
			    struct next_version *next, const struct manifest_objects *objs)
{
	struct strmap fresh, rejected, left;
	struct strmap_iter it;
	struct strmap_entry *e;
	struct dir_file *f = next->f;
	uint32_t first = f->n_refs;
	char key[768];

	strmap_init(&fresh);
	strmap_init(&rejected);
	strmap_init(&left);
	for (size_t i = 0; i < f->n_items; i++) {
		const struct file_item *item = &f->items[i];

		if (item->moved)
			continue;
		for (uint32_t r = item->first_ref; r < item->first_ref + item->n_refs; r++)
			strmap_put(&fresh,
				   kind_key(key, sizeof(key), f->refs[r].kind, f->refs[r].key),
				   (void *)1);
	}
	for (size_t i = 0; i < objs->n_rejected; i++) {
		const struct manifest_rejected *r = &objs->rejected[i];

		if (r->kind && r->name) {
			snprintf(key, sizeof(key), "%s/%s%s%s", r->kind, r->ns ? r->ns : "",
				 r->ns ? "/" : "", r->name);
			strmap_put(&rejected, key, (void *)1);
		}
	}
	for (size_t i = 0; i < old->n_refs; i++) {
		struct object_ref *ref = &old->refs[i];

		if (!ref->key ||
		    strmap_get(&fresh, kind_key(key, sizeof(key), ref->kind, ref->key)))
			continue;
		if (strmap_get(&rejected, key)) {
			add_ref(&f->refs, &f->n_refs, &next->cap_refs, ref->kind, ref->key);
			ref->key = NULL;
		} else {
			strmap_put(&left, key, ref);
		}
	}
	/* An object twice in the file, once in an unchanged item, stays (rare: one pass). */
	for (size_t r = 0; left.count && r < first; r++)
		strmap_remove(&left, kind_key(key, sizeof(key), f->refs[r].kind, f->refs[r].key));
	for (e = strmap_first(&left, &it); e; e = strmap_next(&left, &it))
		forget_ref(src->store, e->value, path);
	if (f->n_refs != first)
		push_item(next, 0, first, false);
	strmap_destroy(&fresh);
	strmap_destroy(&rejected);
	strmap_destroy(&left);
}

/* Opens and decodes a file; -EAGAIN when it changed while being read (three times). */
static int decode_file(const char *path, size_t max, struct dir_file *old,
		       struct manifest_items *items, struct manifest_objects *objs, struct stat *st)
{
	struct stat before;
	int fd, err = -EAGAIN;
	size_t n_read;

	fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	for (int attempt = 0; attempt < 3 && err == -EAGAIN; attempt++) {
		if (fstat(fd, &before)) {
			err = -errno;
			break;
		}
		if (!S_ISREG(before.st_mode)) {
			err = -EINVAL;
			break;
		}
		if ((size_t)before.st_size > max) {
			err = -EFBIG;
			break;
		}
		if (lseek(fd, 0, SEEK_SET) < 0) {
			err = -errno;
			break;
		}
		*items = (struct manifest_items){ .known = old ? file_knows : NULL, .ctx = old };
		/* Sized as the last version, so that a re-read does not grow by doubling. */
		if (old && old->n_items) {
			items->cap = old->n_items + 16;
			items->items = xreallocarray(NULL, items->cap, sizeof(*items->items));
		}
		err = manifest_decode_fd(fd, max, 0, path, items, objs, &n_read);
		if (err == -EINVAL || !err) {
			/* Written in place while we read: what we hold may be half of it. */
			if (fstat(fd, st) || !file_same_content(&before, st) ||
			    (off_t)n_read != st->st_size)
				err = -EAGAIN;
		}
		if (err) {
			manifest_objects_clear(objs);
			free(items->items);
			items->items = NULL;
		}
	}
	close(fd);
	return err;
}

/*
 * Re-reads one file and moves the store to its new contents. A file that
 * does not parse keeps its previous objects, as a rejected update would.
 * Items byte for byte as in the last version are not decoded again.
 */
static void load_file(struct dir_source *src, const char *name, const struct stat *scanned,
		      struct dir_file *old)
{
	struct manifest_objects objs = { 0 };
	struct manifest_items items = { 0 };
	struct next_version next = { 0 };
	size_t skipped = 0;
	struct stat st;
	char path[4096];
	int err;

	snprintf(path, sizeof(path), "%s/%s", src->path, name);
	err = decode_file(path, src->max_file_bytes, old, &items, &objs, &st);
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
	if (err == -EINVAL) {
		keep_old(src, name, &st, old);
		return;
	}
	if (err) {
		pr_warn("%s: cannot read: %s", path, strerror(-err));
		src->rejected++;
		src->rejected_of[REJECTED_OTHER]++;
		return;
	}
	src->rejected += objs.n_rejected;
	for (size_t i = 0; i < objs.n_rejected; i++)
		src->rejected_of[rejected_kind_of(objs.rejected[i].kind)]++;

	next.f = xcalloc(1, sizeof(*next.f));
	if (old && old->n_items) {
		next.cap_items = old->n_items + 16;
		next.cap_refs = old->n_refs + 16;
		next.f->items = xreallocarray(NULL, next.cap_items, sizeof(*next.f->items));
		next.f->refs = xreallocarray(NULL, next.cap_refs, sizeof(*next.f->refs));
	}
	for (size_t i = 0; i < items.n; i++) {
		struct file_item *from =
			items.items[i].skipped ? &old->items[items.items[i].known - 1] : NULL;

		if (from) {
			move_item(&next, old, from);
			skipped++;
		} else {
			add_decoded(&next, &items.items[i], &objs);
		}
	}
	src->items_skipped += skipped;
	src->items_decoded += items.n - skipped;
	free(items.items);
	if (old)
		settle_old_refs(src, path, old, &next, &objs);

	for (size_t i = 0; i < objs.n_services; i++)
		store_put_service(src->store, objs.services[i]);
	for (size_t i = 0; i < objs.n_slices; i++)
		store_put_slice(src->store, objs.slices[i]);
	for (size_t i = 0; i < objs.n_nodes; i++)
		store_put_node(src->store, objs.nodes[i]);
	objs.n_services = objs.n_slices = objs.n_nodes = 0; /* the store owns them now */
	manifest_objects_clear(&objs);

	next.f->st = st;
	next.f->seen = true;
	index_items(next.f);
	file_free(strmap_put(&src->files, name, next.f));
	pr_debug("%s: loaded %zu objects, %zu of %zu items unchanged", path, next.f->n_refs,
		 skipped, next.f->n_items);
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
