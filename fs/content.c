/* fs/content.c: what each file holds, and its attributes. */
#include "fs/fs_i.h"

/* ---- Contents ------------------------------------------------------------------------ */

static int dup_text(const char *s, char **out, size_t *len)
{
  *out = strdup(s ? s : "");
  *len = *out ? strlen(*out) : 0;
  return *out ? 0 : -ENOMEM;
}

int json_text(json_t *v, char **out, size_t *len)
{
  char *t = v ? json_dumps(v, JSON_INDENT(2)) : strdup("{}");
  if (!t)
    return -ENOMEM;
  size_t l = strlen(t);
  char *nt = realloc(t, l + 2);
  if (!nt) {
    free(t);
    return -ENOMEM;
  }
  nt[l] = '\n';
  nt[l + 1] = '\0';
  *out = nt;
  *len = l + 1;
  return 0;
}

/* The kept rendering of src for ino: true with its length in *len and, when
 * out is not NULL, a copy in *out (*r gets -ENOMEM when that fails). */
static bool memo_find(struct fs *fs, fuse_ino_t ino, json_t *src, char **out,
                      size_t *len, int *r)
{
  struct doc_memo *m = &fs->memo[ino % DOC_MEMO_SLOTS];
  bool hit = false;
  pthread_mutex_lock(&fs->memo_lock);
  if (m->src == src && m->ino == ino) {
    hit = true;
    *len = m->len;
    if (out) {
      *out = malloc(m->len + 1);
      if (*out)
        memcpy(*out, m->text, m->len + 1);
      else
        *r = -ENOMEM;
    }
  }
  pthread_mutex_unlock(&fs->memo_lock);
  return hit;
}

/* Keeps text (taken, NUL-terminated) as the rendering of src for ino. */
static void memo_keep(struct fs *fs, fuse_ino_t ino, json_t *src, char *text,
                      size_t len)
{
  struct doc_memo *m = &fs->memo[ino % DOC_MEMO_SLOTS];
  pthread_mutex_lock(&fs->memo_lock);
  json_t *old_src = m->src;
  char *old_text = m->text;
  m->ino = ino;
  m->src = json_incref(src);
  m->text = text;
  m->len = len;
  pthread_mutex_unlock(&fs->memo_lock);
  json_decref(old_src);
  free(old_text);
}

/* store_doc_render's documents, and a channel's info (its raw object). */
#define DOC_CHANNEL_INFO (-1)

/* The rendering of document doc from its cached answer src, kept for the
 * next request on n.  out may be NULL when only the length is wanted. */
static int memo_render(struct fs *fs, struct node *n, int doc, json_t *src,
                       char **out, size_t *len, cliq_error *err)
{
  int r = 0;
  if (out)
    *out = NULL;
  *len = 0;
  /* json_null() is one shared value: its pointer tells nothing. */
  bool keepable = src && !json_is_null(src);
  if (keepable && memo_find(fs, n->ino, src, out, len, &r))
    return r;
  char *t = NULL;
  size_t l = 0;
  r = doc == DOC_CHANNEL_INFO
          ? json_text(src, &t, &l)
          : store_doc_render((enum store_doc)doc, src, &t, &l, err);
  if (r < 0)
    return r;
  *len = l;
  if (keepable && l <= DOC_MEMO_MAX_TEXT) {
    char *kept = t;
    if (out) {
      kept = malloc(l + 1);
      if (kept) {
        memcpy(kept, t, l);
        kept[l] = '\0';
      }
    }
    if (kept)
      memo_keep(fs, n->ino, src, kept, l);
    if (!out)
      return 0;
  }
  if (out)
    *out = t;
  else
    free(t);
  return 0;
}

static int thread_doc(struct fs *fs, struct node *n, const char *tid,
                      enum store_doc doc, enum store_mode mode, char **out,
                      size_t *len, cliq_error *err)
{
  json_t *src = NULL;
  int r = store_doc_source(fs->store, tid, doc, mode, &src, err);
  if (r < 0)
    return r;
  r = memo_render(fs, n, (int)doc, src, out, len, err);
  json_decref(src);
  return r;
}

/* The content of a thread-level file that is not a message log, of the
 * thread in v.  out may be NULL when only the length is wanted.  In
 * STORE_CACHED mode -ENODATA means "never fetched". */
static int thread_content(struct fs *fs, struct node *n, const struct tview *v,
                          enum store_mode mode, char **out, size_t *len,
                          cliq_error *err)
{
  if (out)
    *out = NULL;
  *len = 0;
  bool unopened = v->is_draft && !v->tid;
  char *t = NULL;
  int r;
  switch (n->kind) {
  case N_T_STATE:
    r = dup_text(unopened ? "draft\n" : tview_closed(v) ? "closed\n" : "open\n",
                 &t, len);
    break;
  case N_T_TITLE: {
    const char *title = v->is_draft ? v->draft.name
                        : v->have_thread && v->thread->title ? v->thread->title
                                                               : "";
    char *shown = store_shown_text(title);
    r = shown && asprintf(&t, "%s\n", shown) >= 0 ? 0 : -ENOMEM;
    free(shown);
    if (r == 0)
      *len = strlen(t);
    else
      t = NULL;
    break;
  }
  case N_T_MAIN:
    if (!v->is_draft)
      return thread_doc(fs, n, v->tid, STORE_DOC_MAIN, mode, out, len, err);
    r = dup_text(v->draft.main_text, &t, len);
    break;
  case N_T_MEMBERS:
  case N_T_FOLLOWERS:
  case N_T_NONFOLLOWERS:
    if (!unopened)
      return thread_doc(fs, n, v->tid,
                        n->kind == N_T_MEMBERS     ? STORE_DOC_MEMBERS
                        : n->kind == N_T_FOLLOWERS ? STORE_DOC_FOLLOWERS
                                                   : STORE_DOC_NONFOLLOWERS,
                        mode, out, len, err);
    r = dup_text("", &t, len);
    break;
  case N_T_INFO: {
    if (!unopened)
      return thread_doc(fs, n, v->tid, STORE_DOC_INFO, mode, out, len, err);
    json_t *o = json_pack("{s:s, s:s, s:s?}", "state", "draft", "title",
                          v->draft.name, "main_message_id",
                          v->draft.main_message_id);
    r = json_text(o, &t, len);
    json_decref(o);
    break;
  }
  default:
    r = -EINVAL;
    break;
  }
  if (r == 0 && out)
    *out = t;
  else
    free(t);
  return r;
}

/* The content of a file that is not a message log.  In STORE_CACHED mode
 * -ENODATA means "never fetched". */
int node_content(struct fs *fs, struct node *n, enum store_mode mode,
                        char **out, size_t *len, cliq_error *err)
{
  *out = NULL;
  *len = 0;
  int r = 0;
  switch (n->kind) {
  case N_STATUS: {
    char *t = status_text(fs);
    if (!t)
      return -ENOMEM;
    *out = t;
    *len = strlen(t);
    return 0;
  }
  case N_ERRORS:
    pthread_mutex_lock(&fs->lock);
    *out = malloc(fs->errors_len + 1);
    if (*out) {
      if (fs->errors_len)
        memcpy(*out, fs->errors, fs->errors_len);
      (*out)[fs->errors_len] = '\0';
      *len = fs->errors_len;
    }
    pthread_mutex_unlock(&fs->lock);
    return *out ? 0 : -ENOMEM;
  case N_CH_INFO: {
    struct chview c;
    r = chview_get(fs, n->channel_id, mode == STORE_FETCH ? STORE_PEEK : mode,
                   &c, err);
    if (r < 0)
      return r;
    r = memo_render(fs, n, DOC_CHANNEL_INFO, c.raw, out, len, err);
    chview_clear(&c);
    return r;
  }
  case N_T_CTL:
    return dup_text("", out, len);
  case N_OB_ENTRY:
  case N_FA_ENTRY: {
    outbox_entry e;
    r = entry_of_node(fs, n, &e);
    if (r < 0)
      return r;
    *out = store_outbox_entry_text(&e, len);
    outbox_entry_clear(&e);
    return *out ? 0 : -ENOMEM;
  }
  default:
    break;
  }
  if (!is_thread_level(n->kind))
    return -EISDIR;
  struct tview v;
  enum store_mode tmode = mode == STORE_FETCH ? STORE_PEEK : mode;
  r = tview_get(fs, n, tmode, &v, err);
  if (r < 0)
    return r;
  r = thread_content(fs, n, &v, mode, out, len, err);
  tview_clear(&v);
  return r;
}

/* The chat whose log a messages file shows; NULL with 0 for a draft that has
 * no thread yet. */
int log_chat_of(struct fs *fs, struct node *n, char **chat_out,
                       bool *closed, cliq_error *err)
{
  *chat_out = NULL;
  if (closed)
    *closed = false;
  if (n->kind == N_CH_MESSAGES) {
    struct chview c;
    int r = chview_get(fs, n->channel_id, STORE_PEEK, &c, err);
    if (r < 0)
      return r;
    *chat_out = c.chat_id;
    c.chat_id = NULL;
    chview_clear(&c);
    return 0;
  }
  struct tview v;
  int r = tview_get(fs, n, STORE_PEEK, &v, err);
  if (r < 0)
    return r;
  if (closed)
    *closed = tview_closed(&v);
  *chat_out = v.tid;
  v.tid = NULL;
  tview_clear(&v);
  return 0;
}

bool is_log_kind(enum nkind k)
{
  return k == N_CH_MESSAGES || k == N_T_MESSAGES || k == N_T_JSONL;
}

/* ---- Attributes --------------------------------------------------------------------- */

static int64_t max64(int64_t a, int64_t b)
{
  return a > b ? a : b;
}

/* Newest time below a channel from what is cached (never fetches threads). */
static int64_t channel_newest(struct fs *fs, const char *channel_id,
                              int64_t channel_last)
{
  int64_t t = channel_last;
  store_threads *ts = NULL;
  cliq_error err;
  if (store_threads_get(fs->store, channel_id, STORE_CACHED, &ts, &err) == 0) {
    for (size_t i = 0; i < ts->count; i++)
      t = max64(t, ts->items[i].last_ms);
    store_threads_unref(ts);
  }
  return t;
}

/* *attr_to (may be NULL) gets how long the kernel may keep these
 * attributes: the kind's timeout, but 0 while the content was never fetched
 * (its size is about to change) and for what our own writes change
 * (followers, drafts), so that a stat after a write or a first read is exact.
 * The state of a thread in its channel's list keeps the kind's timeout: it
 * changes only with that list, and every change of the list (a refresh that
 * differs, our own close or reopen delivered) invalidates the thread's nodes
 * (on_threads_changed); writing the file itself makes the kernel forget its
 * attributes.  A stat and every read() then cost no request. */
int node_attr(struct fs *fs, struct node *n, struct stat *st,
                     double *attr_to, cliq_error *err)
{
  memset(st, 0, sizeof *st);
  bool unknown = false;
  const struct kind_info *ki = &kinds[n->kind];
  st->st_ino = n->ino;
  st->st_uid = fs->uid;
  st->st_gid = fs->gid;
  st->st_blksize = 4096;
  mode_t mode = ki->mode;
  int64_t mtime_ms = 0;
  off_t size = 0;
  int r = 0;
  bool state_listed = false;

  switch (n->kind) {
  case N_ROOT: {
    store_channels *cs = NULL;
    if (store_channels_get(fs->store, STORE_CACHED, &cs, err) == 0) {
      for (size_t i = 0; i < cs->count; i++)
        mtime_ms = max64(mtime_ms, cs->items[i].last_ms);
      store_channels_unref(cs);
    }
    break;
  }
  case N_META:
  case N_OUTBOX:
  case N_FAILED:
    break;
  case N_OB_ENTRY:
  case N_FA_ENTRY: {
    outbox_entry e;
    r = entry_of_node(fs, n, &e);
    if (r < 0)
      return r;
    size_t len = 0;
    free(store_outbox_entry_text(&e, &len));
    size = (off_t)len;
    double t = n->kind == N_FA_ENTRY && e.failed_at > 0 ? e.failed_at
                                                          : e.created;
    mtime_ms = (int64_t)(t * 1000);
    outbox_entry_clear(&e);
    break;
  }
  case N_STATUS:
  case N_ERRORS: {
    char *c = NULL;
    size_t len = 0;
    if (node_content(fs, n, STORE_CACHED, &c, &len, err) == 0)
      size = (off_t)len;
    free(c);
    mtime_ms = (int64_t)time(NULL) * 1000;
    break;
  }
  case N_CHANNEL:
  case N_CH_INFO:
  case N_CH_MESSAGES: {
    struct chview c;
    r = chview_get(fs, n->channel_id, STORE_PEEK, &c, err);
    if (r < 0)
      return r;
    mtime_ms = n->kind == N_CHANNEL ? channel_newest(fs, n->channel_id, c.last_ms)
                                    : c.last_ms;
    if (n->kind == N_CH_INFO) {
      size_t len = 0;
      if (memo_render(fs, n, DOC_CHANNEL_INFO, c.raw, NULL, &len, NULL) == 0)
        size = (off_t)len;
    } else if (n->kind == N_CH_MESSAGES) {
      store_log *log = NULL;
      if (store_log_get(fs->store, c.chat_id, STORE_CACHED, &log, NULL) == 0) {
        size = (off_t)store_log_size(log, STORE_LOG_TEXT);
        mtime_ms = max64(mtime_ms, store_log_last_ms(log));
      } else {
        unknown = true;
      }
    }
    chview_clear(&c);
    break;
  }
  default: {
    struct tview v;
    r = tview_get(fs, n, STORE_PEEK, &v, err);
    if (r < 0)
      return r;
    if (v.have_thread)
      mtime_ms = v.thread->last_ms;
    store_log *log = NULL;
    bool log_known = v.tid && store_log_get(fs->store, v.tid, STORE_CACHED,
                                            &log, NULL) == 0;
    if (log_known)
      mtime_ms = max64(mtime_ms, store_log_last_ms(log));
    if (n->kind == N_T_MESSAGES || n->kind == N_T_JSONL) {
      if (log_known)
        size = (off_t)store_log_size(log, n->kind == N_T_JSONL ? STORE_LOG_JSONL
                                                               : STORE_LOG_TEXT);
      else
        unknown = v.tid != NULL;
      if (n->kind == N_T_MESSAGES && tview_closed(&v))
        mode = 0444;
    } else if (n->kind != N_THREAD) {
      if (n->kind == N_T_MAIN && v.is_draft && !v.draft.main_message_id &&
          !v.draft.main_pending)
        mode = 0644;
      size_t len = 0;
      if (thread_content(fs, n, &v, STORE_CACHED, NULL, &len, NULL) == 0)
        size = (off_t)len;
      else
        unknown = true;
      state_listed = v.listed;
    }
    tview_clear(&v);
    break;
  }
  }

  if (attr_to) {
    *attr_to = ki->attr_to;
    if (unknown || n->draft || (n->kind == N_T_STATE && !state_listed) ||
        n->kind == N_T_FOLLOWERS)
      *attr_to = 0;
  }
  if (mtime_ms <= 0)
    mtime_ms = (int64_t)fs->mount_time * 1000;
  st->st_mtim.tv_sec = (time_t)(mtime_ms / 1000);
  st->st_mtim.tv_nsec = (long)(mtime_ms % 1000) * 1000000L;
  st->st_ctim = st->st_mtim;
  st->st_atim = st->st_mtim;
  if (fs->cfg->umask >= 0)
    mode &= ~(mode_t)fs->cfg->umask;
  if (ki->dir) {
    st->st_mode = S_IFDIR | mode;
    st->st_nlink = 2;
    st->st_size = 0;
  } else {
    st->st_mode = S_IFREG | mode;
    st->st_nlink = 1;
    st->st_size = size;
    st->st_blocks = (size + 511) / 512;
  }
  return 0;
}

void note_reported(struct node *n, const struct stat *st)
{
  if (!S_ISDIR(st->st_mode))
    __atomic_store_n(&n->reported_size, (int64_t)st->st_size, __ATOMIC_RELEASE);
}
