/* fs/dirs.c: directories: opendir, readdir, mkdir, rmdir, and the operations
 * that are refused. */
#include "fs/fs_i.h"

/* ---- Directories ------------------------------------------------------------------- */

static int dir_add(struct dirh *d, const char *name, fuse_ino_t ino, bool dir)
{
  if (d->n == d->cap) {
    size_t nc = d->cap ? d->cap * 2 : 32;
    struct dirent_s *ne = realloc(d->e, nc * sizeof *ne);
    if (!ne)
      return -ENOMEM;
    d->e = ne;
    d->cap = nc;
  }
  d->e[d->n].name = strdup(name);
  if (!d->e[d->n].name)
    return -ENOMEM;
  d->e[d->n].ino = ino;
  d->e[d->n].type = dir ? S_IFDIR : S_IFREG;
  d->n++;
  return 0;
}

void dirh_free(struct dirh *d)
{
  for (size_t i = 0; i < d->n; i++)
    free(d->e[i].name);
  free(d->e);
  free(d);
}

static int add_fixed(struct fs *fs, struct dirh *d, struct node *dir,
                     const enum nkind *list, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    struct node *c = child_node(fs, dir, list[i]);
    if (!c)
      return -ENOMEM;
    int r = dir_add(d, kinds[list[i]].file, c->ino, kinds[list[i]].dir);
    if (r < 0)
      return r;
  }
  return 0;
}

static int list_root(struct fs *fs, struct dirh *d, cliq_error *err)
{
  store_channels *cs = NULL;
  int r = store_channels_get(fs->store, STORE_FETCH, &cs, err);
  if (r < 0)
    return r;
  size_t n = 0;
  char **names = NULL, **ids = NULL;
  pthread_mutex_lock(&fs->lock);
  r = memo_channels_locked(fs->root, cs);
  if (r == 0) {
    n = fs->root->memo.n;
    names = calloc(n + 1, sizeof *names);
    ids = calloc(n + 1, sizeof *ids);
    if (!names || !ids)
      r = -ENOMEM;
    for (size_t i = 0; r == 0 && i < n; i++) {
      names[i] = strdup(fs->root->memo.names[i]);
      ids[i] = strdup(fs->root->memo.ids[i]);
    }
  }
  pthread_mutex_unlock(&fs->lock);
  store_channels_unref(cs);
  char meta[] = ".cliqfs";
  struct node *m = node_get(fs, N_META, meta, NULL, NULL, NULL, fs->root, meta);
  if (r == 0)
    r = m ? dir_add(d, meta, m->ino, true) : -ENOMEM;
  for (size_t i = 0; r == 0 && i < n; i++) {
    if (!names[i] || !ids[i]) {
      r = -ENOMEM;
      break;
    }
    struct node *c = channel_node(fs, ids[i], names[i]);
    r = c ? dir_add(d, names[i], c->ino, true) : -ENOMEM;
  }
  for (size_t i = 0; names && ids && i < n; i++) {
    free(names[i]);
    free(ids[i]);
  }
  free(names);
  free(ids);
  return r;
}

static int list_channel(struct fs *fs, struct node *ch, struct dirh *d,
                        cliq_error *err)
{
  int r = add_fixed(fs, d, ch, channel_files,
                    sizeof channel_files / sizeof *channel_files);
  if (r < 0)
    return r;
  store_threads *ts = NULL;
  r = store_threads_get(fs->store, ch->channel_id, STORE_FETCH, &ts, err);
  if (r < 0)
    return r;
  struct draft_names dn;
  r = draft_names_get(fs, ch->channel_id, &dn);
  if (r < 0) {
    store_threads_unref(ts);
    return r;
  }
  size_t n = 0;
  char **names = NULL, **ids = NULL;
  pthread_mutex_lock(&fs->lock);
  r = memo_threads_locked(fs, ch, ts, &dn);
  if (r == 0) {
    n = ch->memo.n;
    names = calloc(n + 1, sizeof *names);
    ids = calloc(n + 1, sizeof *ids);
    if (!names || !ids)
      r = -ENOMEM;
    for (size_t i = 0; r == 0 && i < n; i++) {
      names[i] = strdup(ch->memo.names[i]);
      ids[i] = strdup(ch->memo.ids[i]);
    }
  }
  pthread_mutex_unlock(&fs->lock);
  store_threads_unref(ts);
  for (size_t i = 0; r == 0 && i < dn.n; i++) {
    struct node *t = draft_node(fs, ch, dn.names[i]);
    r = t ? dir_add(d, dn.names[i], t->ino, true) : -ENOMEM;
  }
  for (size_t i = 0; r == 0 && i < n; i++) {
    if (!names[i] || !ids[i]) {
      r = -ENOMEM;
      break;
    }
    struct node *t = thread_node(fs, ch, ids[i], names[i]);
    r = t ? dir_add(d, names[i], t->ino, true) : -ENOMEM;
  }
  for (size_t i = 0; names && ids && i < n; i++) {
    free(names[i]);
    free(ids[i]);
  }
  free(names);
  free(ids);
  draft_names_clear(&dn);
  return r;
}

static int list_entries(struct fs *fs, struct node *dir, struct dirh *d)
{
  outbox_entry *items = NULL;
  size_t n = 0;
  int r = store_outbox_list(fs->store, dir->kind == N_FAILED, &items, &n);
  for (size_t i = 0; r == 0 && i < n; i++) {
    char *name = entry_name(&items[i]);
    struct node *c = name ? entry_node(fs, dir, &items[i], name) : NULL;
    r = c ? dir_add(d, name, c->ino, false) : -ENOMEM;
    free(name);
  }
  outbox_entry_list_free(items, n);
  return r;
}

void run_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
  struct fs *fs = fuse_req_userdata(req);
  struct node *n = node_by_ino(fs, ino);
  if (!n) {
    reply_err(req, ENOENT);
    return;
  }
  if (!kinds[n->kind].dir) {
    reply_err(req, ENOTDIR);
    return;
  }
  struct dirh *d = calloc(1, sizeof *d);
  if (!d) {
    reply_err(req, ENOMEM);
    return;
  }
  cliq_error err;
  memset(&err, 0, sizeof err);
  int r = dir_add(d, ".", n->ino, true);
  if (r == 0)
    r = dir_add(d, "..", n->parent ? n->parent->ino : n->ino, true);
  if (r == 0) {
    switch (n->kind) {
    case N_ROOT:
      r = list_root(fs, d, &err);
      break;
    case N_META:
      r = add_fixed(fs, d, n, meta_files, sizeof meta_files / sizeof *meta_files);
      break;
    case N_CHANNEL:
      r = list_channel(fs, n, d, &err);
      break;
    case N_THREAD: {
      /* The draft or thread must still exist. */
      struct tview v;
      r = tview_get(fs, n, STORE_PEEK, &v, &err);
      tview_clear(&v);
      if (r == 0)
        r = add_fixed(fs, d, n, thread_files,
                      sizeof thread_files / sizeof *thread_files);
      break;
    }
    case N_OUTBOX:
    case N_FAILED:
      r = list_entries(fs, n, d);
      break;
    default:
      break;
    }
  }
  if (r < 0) {
    fs_fail(fs, n, -r, &err, NULL);
    dirh_free(d);
    reply_err(req, -r);
    return;
  }
  handle_add(fs, &d->h, true);
  fi->fh = (uint64_t)(uintptr_t)d;
  fuse_reply_open(req, fi);
}

void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi)
{
  (void)ino;
  struct dirh *d = (struct dirh *)(uintptr_t)fi->fh;
  char *buf = malloc(size);
  if (!buf) {
    reply_err(req, ENOMEM);
    return;
  }
  size_t pos = 0;
  for (size_t i = (size_t)off; i < d->n; i++) {
    struct stat st;
    memset(&st, 0, sizeof st);
    st.st_ino = d->e[i].ino;
    st.st_mode = d->e[i].type;
    size_t need = fuse_add_direntry(req, buf + pos, size - pos, d->e[i].name,
                                    &st, (off_t)(i + 1));
    if (need > size - pos)
      break;
    pos += need;
  }
  fuse_reply_buf(req, buf, pos);
  free(buf);
}

void op_releasedir(fuse_req_t req, fuse_ino_t ino,
                          struct fuse_file_info *fi)
{
  (void)ino;
  struct fs *fs = fuse_req_userdata(req);
  struct dirh *d = (struct dirh *)(uintptr_t)fi->fh;
  handle_del(fs, &d->h);
  dirh_free(d);
  reply_err(req, 0);
}

/* ---- mkdir, rmdir, and everything that is not allowed ------------------------------- */

void run_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
                     mode_t mode)
{
  (void)mode;
  struct fs *fs = fuse_req_userdata(req);
  struct node *p = node_by_ino(fs, parent);
  if (!p) {
    reply_err(req, ENOENT);
    return;
  }
  char *path = node_path_child(fs, p, name);
  int r = 0;
  cliq_error err;
  memset(&err, 0, sizeof err);
  if (p->kind != N_CHANNEL) {
    r = fs_fail_path(fs, path, EPERM, NULL, "only a channel can hold new threads");
    goto out;
  }
  if (strlen(name) > NAMES_MAX_BYTES) {
    r = fs_fail_path(fs, path, ENAMETOOLONG, NULL,
                     "a name holds at most 255 bytes");
    goto out;
  }
  const char *why = NULL;
  if (names_check_new(name, &why) < 0) {
    r = fs_fail_path(fs, path, EINVAL, NULL, "%s", why);
    goto out;
  }
  struct node *existing = NULL;
  r = lookup_child(fs, p, name, &existing, &err);
  if (r == 0) {
    r = -EEXIST;
    goto out;
  }
  if (r != -ENOENT) {
    fs_fail_path(fs, path, -r, &err, NULL);
    goto out;
  }
  r = store_draft_create(fs->store, p->channel_id, name);
  if (r < 0) {
    fs_fail_path(fs, path, -r, NULL, NULL);
    goto out;
  }
  pthread_mutex_lock(&fs->lock);
  fs->drafts_version++;
  pthread_mutex_unlock(&fs->lock);
  struct node *n = draft_node(fs, p, name);
  free(path);
  if (!n) {
    reply_err(req, ENOMEM);
    return;
  }
  inval_inode(fs->inval, p->ino);
  reply_entry_for(req, fs, n);
  return;
out:
  free(path);
  reply_err(req, -r);
}

void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
  struct fs *fs = fuse_req_userdata(req);
  struct node *p = node_by_ino(fs, parent);
  if (!p) {
    reply_err(req, ENOENT);
    return;
  }
  char *path = node_path_child(fs, p, name);
  int r = -EPERM;
  if (p->kind == N_CHANNEL) {
    r = store_draft_discard(fs->store, p->channel_id, name);
    if (r == 0) {
      pthread_mutex_lock(&fs->lock);
      fs->drafts_version++;
      pthread_mutex_unlock(&fs->lock);
      inval_inode(fs->inval, p->ino);
    } else if (r == -ENOENT) {
      struct node *n = NULL;
      cliq_error err;
      r = lookup_child(fs, p, name, &n, &err) == 0 ? -EPERM : -ENOENT;
    }
  }
  if (r == -EPERM)
    fs_fail_path(fs, path, EPERM, NULL, "threads cannot be removed");
  else if (r == -EBUSY)
    fs_fail_path(fs, path, EBUSY, NULL,
                 "the draft's main or its thread is waiting in the outbox");
  free(path);
  reply_err(req, -r);
}

static void deny(fuse_req_t req, fuse_ino_t parent, const char *name,
                 const char *what)
{
  struct fs *fs = fuse_req_userdata(req);
  struct node *p = node_by_ino(fs, parent);
  char *path = p ? node_path_child(fs, p, name) : NULL;
  fs_fail_path(fs, path, EPERM, NULL, "%s is not supported", what);
  free(path);
  reply_err(req, EPERM);
}

/* The one removal allowed: `rm` in .cliqfs/failed/ discards a refused
 * entry. */
void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
  struct fs *fs = fuse_req_userdata(req);
  struct node *p = node_by_ino(fs, parent);
  if (!p || p->kind != N_FAILED) {
    deny(req, parent, name, "removing files");
    return;
  }
  struct node *n = NULL;
  cliq_error err;
  memset(&err, 0, sizeof err);
  int r = lookup_child(fs, p, name, &n, &err);
  if (r == 0)
    r = store_failed_discard(fs->store, strtoull(n->ident + 3, NULL, 10));
  if (r == 0) {
    inval_inode(fs->inval, n->ino);
    inval_inode(fs->inval, p->ino);
  } else if (r != -ENOENT) {
    char *path = node_path_child(fs, p, name);
    fs_fail_path(fs, path, -r, NULL, "the refused entry could not be discarded");
    free(path);
  }
  reply_err(req, -r);
}

void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
                      fuse_ino_t newparent, const char *newname,
                      unsigned int flags)
{
  (void)newparent;
  (void)newname;
  (void)flags;
  deny(req, parent, name, "renaming");
}

void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
                    const char *newname)
{
  (void)ino;
  deny(req, newparent, newname, "linking");
}

void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
                       const char *name)
{
  (void)link;
  deny(req, parent, name, "symbolic links");
}

void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
                     mode_t mode, dev_t rdev)
{
  (void)mode;
  (void)rdev;
  deny(req, parent, name, "creating files");
}

void run_create(fuse_req_t req, fuse_ino_t parent, const char *name,
                      mode_t mode, struct fuse_file_info *fi)
{
  (void)mode;
  (void)fi;
  deny(req, parent, name, "creating files");
}
