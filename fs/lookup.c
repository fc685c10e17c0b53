/* fs/lookup.c: lookup, getattr, setattr and access. */
#include "fs/fs_i.h"

/* ---- Lookup ---------------------------------------------------------------------------- */

void reply_entry_for(fuse_req_t req, struct fs *fs, struct node *n)
{
  struct fuse_entry_param e;
  memset(&e, 0, sizeof e);
  cliq_error err;
  double attr_to = 0;
  int r = node_attr(fs, n, &e.attr, &attr_to, &err);
  if (r < 0) {
    reply_err(req, -r);
    return;
  }
  e.ino = n->ino;
  e.generation = 1;
  e.attr_timeout = attr_to;
  e.entry_timeout = kinds[n->kind].entry_to;
  note_reported(n, &e.attr);
  fuse_reply_entry(req, &e);
}

/* Finds a channel by its directory name or chat/channel id. */
static int find_channel(struct fs *fs, const char *name, enum store_mode mode,
                        struct node **out, cliq_error *err)
{
  *out = NULL;
  store_channels *cs = NULL;
  int r = store_channels_get(fs->store, mode, &cs, err);
  if (r < 0)
    return r;
  char *chan_id = NULL, *dir_name = NULL;
  pthread_mutex_lock(&fs->lock);
  r = memo_channels_locked(fs->root, cs);
  if (r == 0) {
    for (size_t i = 0; i < fs->root->memo.n; i++) {
      if (strcmp(fs->root->memo.names[i], name) == 0) {
        chan_id = strdup(fs->root->memo.ids[i]);
        dir_name = strdup(name);
        break;
      }
    }
  }
  pthread_mutex_unlock(&fs->lock);
  if (r == 0 && !chan_id) {
    for (size_t i = 0; i < cs->count; i++) {
      if (strcmp(cs->items[i].chat_id, name) == 0 ||
          strcmp(cs->items[i].channel_id, name) == 0) {
        chan_id = strdup(cs->items[i].channel_id);
        dir_name = strdup(name);
        break;
      }
    }
  }
  store_channels_unref(cs);
  if (r < 0)
    return r;
  if (!chan_id)
    return -ENOENT;
  *out = channel_node(fs, chan_id, dir_name);
  free(chan_id);
  free(dir_name);
  return *out ? 0 : -ENOMEM;
}

static int find_thread(struct fs *fs, struct node *ch, const char *name,
                       enum store_mode mode, struct node **out,
                       cliq_error *err)
{
  *out = NULL;
  store_threads *ts = NULL;
  int r = store_threads_get(fs->store, ch->channel_id, mode, &ts, err);
  if (r < 0)
    return r;
  struct draft_names d;
  r = draft_names_get(fs, ch->channel_id, &d);
  if (r < 0) {
    store_threads_unref(ts);
    return r;
  }
  char *tid = NULL;
  pthread_mutex_lock(&fs->lock);
  r = memo_threads_locked(fs, ch, ts, &d);
  if (r == 0) {
    for (size_t i = 0; i < ch->memo.n; i++) {
      if (strcmp(ch->memo.names[i], name) == 0) {
        tid = strdup(ch->memo.ids[i]);
        break;
      }
    }
  }
  pthread_mutex_unlock(&fs->lock);
  if (r == 0 && !tid && store_threads_find(ts, name))
    tid = strdup(name);       /* reached by chat id */
  store_threads_unref(ts);
  draft_names_clear(&d);
  if (r < 0)
    return r;
  if (!tid)
    return -ENOENT;
  *out = thread_node(fs, ch, tid, name);
  free(tid);
  return *out ? 0 : -ENOMEM;
}

/* A thread not in the channel's list, reached by its chat id. */
static int find_thread_by_id(struct fs *fs, struct node *ch, const char *name,
                             struct node **out, cliq_error *err)
{
  *out = NULL;
  if (!strstr(name, "-T-"))
    return -ENOENT;
  struct chview c;
  int r = chview_get(fs, ch->channel_id, STORE_PEEK, &c, err);
  if (r < 0)
    return r;
  store_thread t;
  r = store_thread_lookup(fs->store, name, STORE_FETCH, &t, err);
  if (r == -EINVAL)
    r = -ENOENT;     /* not the shape of a chat id: no such name */
  if (r == 0) {
    if (strcmp(t.parent_chat_id, c.chat_id) != 0)
      r = -ENOENT;
    store_thread_clear(&t);
  }
  chview_clear(&c);
  if (r < 0)
    return r;
  *out = thread_node(fs, ch, name, name);
  return *out ? 0 : -ENOMEM;
}

int lookup_child(struct fs *fs, struct node *p, const char *name,
                        struct node **out, cliq_error *err)
{
  *out = NULL;
  switch (p->kind) {
  case N_ROOT: {
    if (strcmp(name, ".cliqfs") == 0) {
      char ident[] = ".cliqfs";
      *out = node_get(fs, N_META, ident, NULL, NULL, NULL, fs->root, name);
      return *out ? 0 : -ENOMEM;
    }
    int r = find_channel(fs, name, STORE_PEEK, out, err);
    if (r == -ENOENT)
      r = find_channel(fs, name, STORE_FETCH, out, err);
    return r;
  }
  case N_META:
    for (size_t i = 0; i < sizeof meta_files / sizeof *meta_files; i++)
      if (strcmp(name, kinds[meta_files[i]].file) == 0) {
        *out = child_node(fs, p, meta_files[i]);
        return *out ? 0 : -ENOMEM;
      }
    return -ENOENT;
  case N_CHANNEL: {
    for (size_t i = 0; i < sizeof channel_files / sizeof *channel_files; i++)
      if (strcmp(name, kinds[channel_files[i]].file) == 0) {
        *out = child_node(fs, p, channel_files[i]);
        return *out ? 0 : -ENOMEM;
      }
    store_draft d;
    if (store_draft_get(fs->store, p->channel_id, name, &d) == 0) {
      store_draft_clear(&d);
      *out = draft_node(fs, p, name);
      return *out ? 0 : -ENOMEM;
    }
    int r = find_thread(fs, p, name, STORE_PEEK, out, err);
    if (r == -ENOENT)
      r = find_thread(fs, p, name, STORE_FETCH, out, err);
    if (r == -ENOENT)
      r = find_thread_by_id(fs, p, name, out, err);
    return r;
  }
  case N_THREAD:
    for (size_t i = 0; i < sizeof thread_files / sizeof *thread_files; i++)
      if (strcmp(name, kinds[thread_files[i]].file) == 0) {
        *out = child_node(fs, p, thread_files[i]);
        return *out ? 0 : -ENOMEM;
      }
    return -ENOENT;
  case N_OUTBOX:
  case N_FAILED: {
    uint64_t id;
    int r = entry_id_of_name(name, &id);
    if (r < 0)
      return r;
    outbox_entry e;
    r = store_outbox_get(fs->store, p->kind == N_FAILED, id, &e);
    if (r < 0)
      return r;
    char *want = entry_name(&e);
    if (!want)
      r = -ENOMEM;
    else if (strcmp(want, name) != 0)
      r = -ENOENT;
    else
      *out = entry_node(fs, p, &e, name);
    if (r == 0 && !*out)
      r = -ENOMEM;
    free(want);
    outbox_entry_clear(&e);
    return r;
  }
  default:
    return -ENOTDIR;
  }
}

void run_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
  struct fs *fs = fuse_req_userdata(req);
  struct node *p = node_by_ino(fs, parent);
  if (!p) {
    reply_err(req, ENOENT);
    return;
  }
  struct node *n = NULL;
  cliq_error err;
  memset(&err, 0, sizeof err);
  int r = lookup_child(fs, p, name, &n, &err);
  if (r < 0) {
    /* A name that is not there is no failure worth a log line; Cliq failing
     * to tell us is. */
    if (r != -ENOENT || err.http_status || err.curl_code) {
      char *path = node_path_child(fs, p, name);
      fs_fail_path(fs, path, -r, &err, NULL);
      free(path);
    }
    reply_err(req, -r);
    return;
  }
  reply_entry_for(req, fs, n);
}

void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
  (void)ino;
  (void)nlookup;
  fuse_reply_none(req);   /* nodes live until unmount */
}

void op_forget_multi(fuse_req_t req, size_t count,
                            struct fuse_forget_data *forgets)
{
  (void)count;
  (void)forgets;
  fuse_reply_none(req);
}

void run_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
  (void)fi;
  struct fs *fs = fuse_req_userdata(req);
  struct node *n = node_by_ino(fs, ino);
  if (!n) {
    reply_err(req, ENOENT);
    return;
  }
  __atomic_add_fetch(&fs->getattr_count[n->kind], 1, __ATOMIC_RELAXED);
  struct stat st;
  cliq_error err;
  memset(&err, 0, sizeof err);
  double attr_to = 0;
  int r = node_attr(fs, n, &st, &attr_to, &err);
  if (r < 0) {
    if (r != -ENOENT)
      fs_fail(fs, n, -r, &err, NULL);
    reply_err(req, -r);
    return;
  }
  note_reported(n, &st);
  fuse_reply_attr(req, &st, attr_to);
}

static bool writable_kind(enum nkind k)
{
  return k == N_CH_MESSAGES || k == N_T_MESSAGES || k == N_T_FOLLOWERS ||
         k == N_T_STATE || k == N_T_CTL || k == N_T_MAIN;
}

static bool is_message_log(enum nkind k)
{
  return k == N_CH_MESSAGES || k == N_T_MESSAGES;
}

void run_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
                       int to_set, struct fuse_file_info *fi)
{
  (void)fi;
  struct fs *fs = fuse_req_userdata(req);
  struct node *n = node_by_ino(fs, ino);
  if (!n) {
    reply_err(req, ENOENT);
    return;
  }
  /* The shell's ">" arrives as an open with O_TRUNC (atomic_o_trunc), so
   * a truncate is a user's own.  On a writable file other than a message
   * log, to 0, it changes nothing and is accepted; a message log cannot lose
   * what Cliq holds, so it refuses every size; nothing else can change. */
  bool only_size = (to_set & ~(FUSE_SET_ATTR_SIZE | FUSE_SET_ATTR_CTIME |
                               FUSE_SET_ATTR_KILL_SUID)) == 0;
  if ((to_set & FUSE_SET_ATTR_SIZE) && is_message_log(n->kind)) {
    fs_fail(fs, n, EPERM, NULL,
            "messages only grow: truncating would not remove anything from "
            "Cliq (append with >>)");
    reply_err(req, EPERM);
    return;
  }
  if (!(to_set & FUSE_SET_ATTR_SIZE) || !only_size || attr->st_size != 0 ||
      !writable_kind(n->kind)) {
    fs_fail(fs, n, EPERM, NULL, "attributes cannot be changed");
    reply_err(req, EPERM);
    return;
  }
  struct stat st;
  cliq_error err;
  double attr_to = 0;
  int r = node_attr(fs, n, &st, &attr_to, &err);
  if (r < 0) {
    reply_err(req, -r);
    return;
  }
  note_reported(n, &st);
  fuse_reply_attr(req, &st, attr_to);
}

void run_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
  struct fs *fs = fuse_req_userdata(req);
  struct node *n = node_by_ino(fs, ino);
  if (!n) {
    reply_err(req, ENOENT);
    return;
  }
  struct stat st;
  cliq_error err;
  double attr_to = 0;
  int r = node_attr(fs, n, &st, &attr_to, &err);
  if (r < 0) {
    reply_err(req, -r);
    return;
  }
  /* The bits of the caller's class, as the kernel's own check would pick
   * them (uid=, gid= and umask= make the classes differ). */
  const struct fuse_ctx *ctx = fuse_req_ctx(req);
  mode_t m = st.st_mode;
  unsigned bits = (m >> 6) & 7;
  if (ctx && ctx->uid == 0)
    bits = 6 | (((m >> 6) | (m >> 3) | m) & 1);  /* root: r, w; x if any */
  else if (ctx && ctx->uid != st.st_uid)
    bits = ctx->gid == st.st_gid ? (m >> 3) & 7 : m & 7;
  if (((mask & R_OK) && !(bits & 4)) || ((mask & W_OK) && !(bits & 2)) ||
      ((mask & X_OK) && !(bits & 1)))
    reply_err(req, EACCES);
  else
    reply_err(req, 0);
}
