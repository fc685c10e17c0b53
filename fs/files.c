/* fs/files.c: open, read and release of files, and which close ends an open. */
#include "fs/fs_i.h"

/* ---- Files ------------------------------------------------------------------------------ */

/* The process (thread group) a task belongs to: FUSE names the calling
 * thread.  0 when it is gone or a zombie (its files are closed). */
static pid_t process_of(pid_t task)
{
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/status", (int)task);
  FILE *f = fopen(path, "re");
  if (!f)
    return 0;
  char line[256];
  pid_t tgid = 0;
  bool gone = false;
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, "State:", 6) == 0) {
      const char *c = line + 6;
      while (*c == ' ' || *c == '\t')
        c++;
      gone = *c == 'Z' || *c == 'X';
    } else if (strncmp(line, "Tgid:", 5) == 0) {
      tgid = (pid_t)strtol(line + 5, NULL, 10);
      break;
    }
  }
  fclose(f);
  return gone ? 0 : tgid;
}

/* Whether a close by task ends what h's open wrote.  One open is one message
 * (or one set of changes) however many processes share the descriptor:
 * children that inherited it (date, tail in `{ ...; } >> messages`) close
 * their copies first; the opener's close, or the first close after the
 * opener is gone, is the one that commits. */
bool closes_the_open(struct fh *h, pid_t task)
{
  if (h->opener <= 0)
    return true;
  pid_t closer = process_of(task);
  return closer == 0 || closer == h->opener || process_of(h->opener) == 0;
}

void fh_reset_write(struct fh *h)
{
  h->wlen = 0;
  h->lines_done = 0;
  if (h->w)
    h->w[0] = '\0';
  for (size_t i = 0; i < h->n_ops; i++)
    free(h->ops[i].id);
  h->n_ops = 0;
}

void fh_free(struct fh *h)
{
  fh_reset_write(h);
  store_ids_clear(&h->ids);
  free(h->ops);
  free(h->w);
  free(h->content);
  pthread_mutex_destroy(&h->lock);
  free(h);
}

static enum wkind write_kind(enum nkind k)
{
  switch (k) {
  case N_CH_MESSAGES:
  case N_T_MESSAGES:
    return W_MESSAGE;
  case N_T_MAIN:
    return W_MAIN;
  case N_T_STATE:
    return W_STATE;
  case N_T_FOLLOWERS:
    return W_FOLLOWERS;
  case N_T_CTL:
    return W_CTL;
  default:
    return W_NONE;
  }
}

/* Checks that a write may start on n: closed threads refuse replies, a draft's
 * main is written once, thread operations need a thread. */
int write_allowed(struct fs *fs, struct node *n, cliq_error *err,
                         const char **why)
{
  *why = NULL;
  if (n->kind == N_CH_MESSAGES)
    return 0;
  struct tview v;
  int r = tview_get(fs, n, STORE_PEEK, &v, err);
  if (r < 0)
    return r;
  bool unopened = v.is_draft && !v.tid;
  switch (n->kind) {
  case N_T_MESSAGES:
    if (tview_closed(&v)) {
      r = -EACCES;
      *why = "the thread is closed";
    }
    break;
  case N_T_MAIN:
    if (!v.is_draft || v.draft.main_message_id || v.draft.main_pending) {
      r = -EACCES;
      *why = "main is written once, for a new thread";
    }
    break;
  case N_T_STATE:
  case N_T_FOLLOWERS:
  case N_T_CTL:
    if (unopened) {
      r = -EDESTADDRREQ;
      *why = "the thread does not exist yet: write main, then messages";
    }
    break;
  default:
    break;
  }
  tview_clear(&v);
  return r;
}

/* Whether the pages the kernel holds of this file are still its content,
 * so that an open keeps them (keep_cache) and reads never reach us.  A log
 * only grows, and its size is what the kernel was told: the pages are a
 * prefix of it.  A stable file's pages are those of the last content served;
 * they are kept when this open serves the same bytes (its XXH3), dropped
 * otherwise (a state that flipped, a new follower of the same length). */
static bool page_cache_valid(struct node *n, struct fh *h)
{
  if (h->log)
    return true;
  if (!h->content) {
    __atomic_store_n(&n->page_tag, 0, __ATOMIC_RELEASE);
    return false;
  }
  h->content_tag = XXH3_64bits(h->content, h->content_len) | 1;
  uint64_t was = __atomic_exchange_n(&n->page_tag, h->content_tag,
                                     __ATOMIC_ACQ_REL);
  return was == h->content_tag;
}

void run_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
  struct fs *fs = fuse_req_userdata(req);
  struct node *n = node_by_ino(fs, ino);
  if (!n) {
    reply_err(req, ENOENT);
    return;
  }
  if (kinds[n->kind].dir) {
    reply_err(req, EISDIR);
    return;
  }
  int acc = fi->flags & O_ACCMODE;
  bool want_write = acc == O_WRONLY || acc == O_RDWR;
  bool want_read = acc == O_RDONLY || acc == O_RDWR;
  cliq_error err;
  memset(&err, 0, sizeof err);
  int r = 0;
  const char *why = NULL;
  struct fh *h = calloc(1, sizeof *h);
  if (!h) {
    reply_err(req, ENOMEM);
    return;
  }
  pthread_mutex_init(&h->lock, NULL);
  h->node = n;
  if (want_write) {
    h->wk = write_kind(n->kind);
    if (h->wk == W_NONE) {
      r = -EACCES;
      why = "this file is read-only";
      goto fail;
    }
    r = write_allowed(fs, n, &err, &why);
    if (r < 0)
      goto fail;
    h->append = (fi->flags & O_APPEND) != 0;
    h->opener = process_of(fuse_req_ctx(req)->pid);
  }
  h->can_read = want_read;
  int64_t size_now = -1;
  if (want_read && is_log_kind(n->kind)) {
    char *chat = NULL;
    r = log_chat_of(fs, n, &chat, NULL, &err);
    if (r < 0)
      goto fail;
    if (chat) {
      r = store_log_get(fs->store, chat, STORE_FETCH, &h->log, &err);
      free(chat);
      if (r < 0 && !h->log)
        goto fail;
      if (r < 0) {
        /* Nothing known and Cliq could not be asked. */
        goto fail;
      }
      h->form = n->kind == N_T_JSONL ? STORE_LOG_JSONL : STORE_LOG_TEXT;
      store_log_open_reader(h->log);
      h->reader = true;
      size_now = (int64_t)store_log_size(h->log, h->form);
    } else {
      size_now = 0;     /* a draft's messages: empty until the thread exists */
    }
  } else if (want_read) {
    r = node_content(fs, n, STORE_FETCH, &h->content, &h->content_len, &err);
    if (r < 0)
      goto fail;
    size_now = (int64_t)h->content_len;
  }
  /* The kernel may hold another size (never fetched: 0, or an older one):
   * then read this open directly, and tell the kernel to forget its
   * attributes. */
  int64_t told = __atomic_load_n(&n->reported_size, __ATOMIC_ACQUIRE);
  bool dynamic = n->kind == N_STATUS || n->kind == N_ERRORS;
  if (want_write || dynamic || (want_read && size_now != told)) {
    fi->direct_io = 1;
    if (want_read && !dynamic && size_now != told) {
      __atomic_store_n(&n->page_tag, 0, __ATOMIC_RELEASE);
      inval_inode(fs->inval, n->ino);
    }
  } else {
    fi->keep_cache = page_cache_valid(n, h);
  }
  /* Only an open that can write has anything to do at close (op_flush
   * journals and posts there); the kernel skips FLUSH for the others,
   * a request less per read-only open. */
  fi->noflush = !want_write;
  handle_add(fs, &h->h, false);
  fi->fh = (uint64_t)(uintptr_t)h;
  fuse_reply_open(req, fi);
  return;
fail:
  fs_fail(fs, n, -r, &err, why);
  if (h->reader)
    store_log_close_reader(h->log);
  fh_free(h);
  reply_err(req, -r);
}

void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
  (void)ino;
  struct fh *h = (struct fh *)(uintptr_t)fi->fh;
  if (!h->can_read) {
    reply_err(req, EBADF);
    return;
  }
  struct fs *fs = fuse_req_userdata(req);
  __atomic_add_fetch(&fs->read_count[h->node->kind], 1, __ATOMIC_RELAXED);
  if (h->log) {
    char *buf = malloc(size ? size : 1);
    if (!buf) {
      reply_err(req, ENOMEM);
      return;
    }
    size_t n = store_log_read(h->log, h->form, off, buf, size);
    fuse_reply_buf(req, buf, n);
    free(buf);
    return;
  }
  /* An older open still reading after the content changed fills the page
   * cache with its bytes: the next open must not keep them. */
  if (__atomic_load_n(&h->node->page_tag, __ATOMIC_ACQUIRE) != h->content_tag)
    __atomic_store_n(&h->node->page_tag, 0, __ATOMIC_RELEASE);
  if (off < 0 || (size_t)off >= h->content_len) {
    fuse_reply_buf(req, NULL, 0);
    return;
  }
  size_t n = h->content_len - (size_t)off;
  if (n > size)
    n = size;
  /* A copy: the kernel may finish with the file (release frees content)
   * while this reply is still being written. */
  char *copy = malloc(n ? n : 1);
  if (!copy) {
    reply_err(req, ENOMEM);
    return;
  }
  memcpy(copy, h->content + off, n);
  fuse_reply_buf(req, copy, n);
  free(copy);
}

void op_release(fuse_req_t req, fuse_ino_t ino,
                       struct fuse_file_info *fi)
{
  (void)ino;
  struct fs *fs = fuse_req_userdata(req);
  struct fh *h = (struct fh *)(uintptr_t)fi->fh;
  handle_del(fs, &h->h);
  if (h->reader)
    store_log_close_reader(h->log);
  /* Written after the opener's close, by a process that held on to the
   * descriptor: journaled now (a failure is in .cliqfs/errors). */
  if (h->wk != W_NONE && !h->poisoned && h->wlen > 0) {
    store_ids now = { 0 };
    pthread_mutex_lock(&h->lock);
    (void)commit_pending(fs, h, &now);
    pthread_mutex_unlock(&h->lock);
    store_ids_clear(&now);
  }
  fh_free(h);
  reply_err(req, 0);
}

void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
  (void)ino;
  struct statvfs st;
  memset(&st, 0, sizeof st);
  st.f_bsize = 4096;
  st.f_frsize = 4096;
  st.f_namemax = NAMES_MAX_BYTES;
  fuse_reply_statfs(req, &st);
}

void op_init(void *userdata, struct fuse_conn_info *conn)
{
  (void)userdata;
  /* The shell's ">" then arrives as an open with O_TRUNC, not a separate
   * truncate. */
  if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
    conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
  /* No automatic revalidation of cached pages: with it, every read(2) of a
   * file whose attributes time out at once (messages) asked us for them
   * first, a GETATTR per 128 KiB of a warm cat.  Pages still go when the
   * size changes (the kernel drops them then), when an open serves another
   * content (keep_cache = 0) and when the store learns of a change (the
   * invalidation sender). */
  conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
  conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
}
