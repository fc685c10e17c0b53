/* fs/writes.c: writes: the buffer of an open, its checks, the commit at
 * close, fsync. */
#include "fs/fs_i.h"

static int fh_push_op(struct fh *h, char *id, bool remove)
{
  if (h->n_ops == h->cap_ops) {
    size_t nc = h->cap_ops ? h->cap_ops * 2 : 8;
    struct fop *no = realloc(h->ops, nc * sizeof *no);
    if (!no)
      return -ENOMEM;
    h->ops = no;
    h->cap_ops = nc;
  }
  h->ops[h->n_ops].id = id;
  h->ops[h->n_ops].remove = remove;
  h->n_ops++;
  return 0;
}

/* Processes the complete lines of a followers or ctl buffer (and, when
 * final, the last partial one).  Returns 0 or -errno (nothing is sent). */
static int process_lines(struct fs *fs, struct fh *h, bool final,
                         cliq_error *err, const char **why)
{
  struct node *n = h->node;
  while (h->lines_done < h->wlen) {
    char *start = h->w + h->lines_done;
    char *nl = memchr(start, '\n', h->wlen - h->lines_done);
    size_t len = nl ? (size_t)(nl - start) : h->wlen - h->lines_done;
    if (!nl && !final) {
      if (h->wk == W_CTL) {
        char *verb = NULL;
        int r = wr_ctl_line(start, len, true, &verb);
        free(verb);
        if (r < 0) {
          *why = "ctl takes follow, unfollow, mute, unmute, leave, close, reopen";
          return r;
        }
      }
      return 0;
    }
    if (h->wk == W_CTL) {
      char *verb = NULL;
      int r = wr_ctl_line(start, len, false, &verb);
      if (r < 0) {
        *why = "ctl takes follow, unfollow, mute, unmute, leave, close, reopen";
        return r;
      }
      if (r == 0 && fh_push_op(h, verb, false) < 0) {
        free(verb);
        return -ENOMEM;
      }
    } else {
      char *id = NULL;
      bool remove = false;
      int r = wr_follower_line(start, len, &id, &remove);
      if (r < 0) {
        *why = "a followers line is a user id or email, or -ID to remove";
        return r;
      }
      if (r == 0) {
        if (remove && !h->append) {
          free(id);
          *why = "-ID lines remove followers when appending (>>), not in a whole-file write";
          return -EINVAL;
        }
        char *uid = NULL;
        struct tview v;
        r = tview_get(fs, n, STORE_PEEK, &v, err);
        if (r == 0)
          r = v.tid ? store_resolve_member(fs->store, v.tid, id, &uid, err)
                    : -EDESTADDRREQ;
        tview_clear(&v);
        free(id);
        if (r < 0) {
          if (r == -EINVAL)
            *why = "not a member of this channel";
          return r;
        }
        if (fh_push_op(h, uid, remove) < 0) {
          free(uid);
          return -ENOMEM;
        }
      }
    }
    h->lines_done += len + (nl ? 1 : 0);
  }
  return 0;
}

void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
                     size_t size, off_t off, struct fuse_file_info *fi)
{
  (void)ino;
  (void)off;    /* one message per close: the bytes in the order written */
  struct fs *fs = fuse_req_userdata(req);
  struct fh *h = (struct fh *)(uintptr_t)fi->fh;
  struct node *n = h->node;
  cliq_error err;
  memset(&err, 0, sizeof err);
  const char *why = NULL;
  int r = 0;
  pthread_mutex_lock(&h->lock);
  if (h->wk == W_NONE) {
    r = -EBADF;
    goto out;
  }
  if (h->poisoned) {
    r = -h->poisoned;
    goto out_quiet;
  }
  if ((h->wk == W_MESSAGE || h->wk == W_MAIN) && memchr(buf, '\0', size)) {
    /* A NUL would end the text early: nothing is cut silently. */
    r = -EILSEQ;
    why = "a message cannot hold a NUL byte";
    h->poisoned = EILSEQ;
    goto out;
  }
  if (h->wk == W_MESSAGE || h->wk == W_MAIN) {
    r = write_allowed(fs, n, &err, &why);
    if (r == 0 && h->wk == W_MESSAGE && n->draft) {
      struct tview v;
      if (tview_get(fs, n, STORE_PEEK, &v, &err) == 0 &&
          !v.draft.main_message_id && !v.draft.main_pending) {
        r = -EDESTADDRREQ;
        why = "write the new thread's main before its messages";
      }
      tview_clear(&v);
    }
    if (r < 0)
      goto out;
  }
  size_t old = h->wlen;
  if (h->wlen + size + 1 > h->wcap) {
    size_t nc = h->wcap ? h->wcap : 1024;
    while (nc < h->wlen + size + 1)
      nc *= 2;
    char *nb = realloc(h->w, nc);
    if (!nb) {
      r = -ENOMEM;
      goto out;
    }
    h->w = nb;
    h->wcap = nc;
  }
  memcpy(h->w + h->wlen, buf, size);
  h->wlen += size;
  h->w[h->wlen] = '\0';
  switch (h->wk) {
  case W_MESSAGE:
  case W_MAIN:
    r = wr_message_check(h->w, h->wlen, false);
    if (r == -EMSGSIZE)
      why = "a message holds at most 5000 characters";
    else if (r == -EILSEQ)
      why = "a message must be UTF-8 text";
    break;
  case W_STATE: {
    bool close;
    r = wr_state_parse(h->w, h->wlen, false, &close);
    if (r > 0)
      r = 0;
    if (r < 0)
      why = "state takes close or reopen";
    break;
  }
  default:
    r = process_lines(fs, h, false, &err, &why);
    break;
  }
  if (r < 0) {
    /* Nothing of this open will be sent: no silent truncation. */
    h->wlen = old;
    h->w[old] = '\0';
    h->poisoned = -r;
    goto out;
  }
  pthread_mutex_unlock(&h->lock);
  fuse_reply_write(req, size);
  return;
out:
  fs_fail(fs, n, -r, &err, why);
out_quiet:
  pthread_mutex_unlock(&h->lock);
  reply_err(req, -r);
}

/* Journals what this open wrote (store_* append to the outbox, fsync'd);
 * *ids gets the entries.  Called at close (flush) and fsync. */
static int commit(struct fs *fs, struct fh *h, store_ids *ids, cliq_error *err,
                  const char **why)
{
  struct node *n = h->node;
  char *path = node_path(fs, n);
  int r = 0;
  switch (h->wk) {
  case W_MESSAGE:
  case W_MAIN: {
    r = wr_message_check(h->w, h->wlen, true);
    if (r < 0) {
      *why = r == -EILSEQ ? "a message must be UTF-8 text" : NULL;
      break;
    }
    size_t len = wr_message_len(h->w, h->wlen);
    if (len == 0)
      break;
    char *text = strndup(h->w, len);
    if (!text) {
      r = -ENOMEM;
      break;
    }
    struct chview c;
    r = chview_get(fs, n->channel_id, STORE_PEEK, &c, err);
    if (r == 0) {
      if (h->wk == W_MAIN) {
        r = store_draft_post_main(fs->store, n->channel_id, c.chat_id, n->draft,
                                  text, path, ids, err);
        inval_matching(fs, n->channel_id, NULL);
      } else if (n->kind == N_CH_MESSAGES) {
        r = store_post_channel(fs->store, n->channel_id, c.chat_id, text, path,
                               ids, err);
      } else if (n->draft) {
        r = store_draft_append(fs->store, n->channel_id, c.chat_id, n->draft,
                               text, path, ids, err);
        if (r == 0) {
          pthread_mutex_lock(&fs->lock);
          fs->drafts_version++;
          pthread_mutex_unlock(&fs->lock);
          inval_matching(fs, n->channel_id, NULL);
        }
      } else {
        r = store_reply(fs->store, n->channel_id, n->thread_id, text, path, ids,
                        err);
      }
      chview_clear(&c);
    }
    free(text);
    break;
  }
  case W_STATE: {
    bool close = false;
    r = wr_state_parse(h->w, h->wlen, true, &close);
    if (r < 0) {
      *why = "state takes close or reopen";
      break;
    }
    if (r == 1) {
      r = 0;
      break;
    }
    struct tview v;
    r = tview_get(fs, n, STORE_PEEK, &v, err);
    if (r == 0 && !v.tid)
      r = -EDESTADDRREQ;
    if (r == 0)
      r = store_set_state(fs->store, n->channel_id, v.tid, close, path, ids,
                          err);
    tview_clear(&v);
    break;
  }
  case W_FOLLOWERS:
  case W_CTL: {
    r = process_lines(fs, h, true, err, why);
    if (r < 0 || h->n_ops == 0)
      break;
    struct tview v;
    r = tview_get(fs, n, STORE_PEEK, &v, err);
    if (r == 0 && !v.tid)
      r = -EDESTADDRREQ;
    if (r == 0 && h->wk == W_CTL) {
      for (size_t i = 0; i < h->n_ops && r == 0; i++)
        r = store_ctl(fs->store, n->channel_id, v.tid, h->ops[i].id, path, ids,
                      err);
    } else if (r == 0) {
      const char **uids = calloc(h->n_ops + 1, sizeof *uids);
      size_t k = 0;
      if (!uids)
        r = -ENOMEM;
      if (r == 0 && h->append) {
        /* In order, grouping runs of adds and of removes. */
        for (size_t i = 0; i < h->n_ops && r == 0;) {
          bool rm = h->ops[i].remove;
          k = 0;
          while (i < h->n_ops && h->ops[i].remove == rm)
            uids[k++] = h->ops[i++].id;
          r = rm ? store_followers_remove(fs->store, n->channel_id, v.tid, uids,
                                          k, path, ids, err)
                 : store_followers_add(fs->store, n->channel_id, v.tid, uids, k,
                                       path, ids, err);
        }
      } else if (r == 0) {
        for (size_t i = 0; i < h->n_ops; i++)
          uids[k++] = h->ops[i].id;
        r = store_followers_replace(fs->store, n->channel_id, v.tid, uids, k,
                                    path, ids, err);
      }
      free(uids);
    }
    tview_clear(&v);
    break;
  }
  default:
    break;
  }
  free(path);
  return r;
}

/* Journals what h holds (h->lock held) and forgets it, so that a second
 * flush or an fsync then close sends nothing twice.  *now gets the entries. */
int commit_pending(struct fs *fs, struct fh *h, store_ids *now)
{
  int r = 0;
  if (h->poisoned) {
    /* The error was reported at write; nothing is sent. */
    r = -h->poisoned;
  } else if (h->wlen > 0) {
    cliq_error err;
    memset(&err, 0, sizeof err);
    const char *why = NULL;
    r = commit(fs, h, now, &err, &why);
    if (r < 0)
      fs_fail(fs, h->node, -r, &err, why);
  }
  for (size_t i = 0; i < now->n; i++)
    (void)store_ids_add(&h->ids, now->v[i]);
  fh_reset_write(h);
  return r;
}

/* How long a close waits for its write to be delivered when it can be at
 * once (store_write_settle): enough for Cliq to answer, so that what a user
 * reads next shows it; not a minute of a slow network. */
#define WRITE_SETTLE_S 5.0

static double settle_s(struct fs *fs)
{
  double max_wait = fs->cfg->max_wait_s > 0 ? fs->cfg->max_wait_s : 60;
  return max_wait < WRITE_SETTLE_S ? max_wait : WRITE_SETTLE_S;
}

void run_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
  (void)ino;
  struct fs *fs = fuse_req_userdata(req);
  struct fh *h = (struct fh *)(uintptr_t)fi->fh;
  __atomic_add_fetch(&fs->flush_count, 1, __ATOMIC_RELAXED);
  store_ids now = { 0 };
  pthread_mutex_lock(&h->lock);
  int r = 0;
  if (h->wk != W_NONE && closes_the_open(h, fuse_req_ctx(req)->pid))
    r = commit_pending(fs, h, &now);
  else if (h->poisoned)
    r = -h->poisoned;           /* a child's close: nothing sent yet */
  pthread_mutex_unlock(&h->lock);
  if (r == 0 && now.n > 0) {
    /* Journaled: close may return.  It waits a moment for the delivery
     * when that can come at once; a refusal meanwhile (a thread closed
     * behind our back) is the close's error, and is in failed/. */
    r = store_write_settle(fs->store, &now, settle_s(fs));
    if (r < 0) {
      pthread_mutex_lock(&h->lock);
      h->failed = -r;
      pthread_mutex_unlock(&h->lock);
    }
  }
  store_ids_clear(&now);
  reply_err(req, -r);
}

/* The journal targets whose queue an fsync of n waits for (0, 1 or 2:
 * a draft's own target and its thread's).  Caller frees. */
static size_t sync_targets(struct fs *fs, struct node *n, char *out[2])
{
  out[0] = out[1] = NULL;
  if (n->kind == N_CH_MESSAGES) {
    out[0] = strdup(n->channel_id);
    return out[0] ? 1 : 0;
  }
  if (!is_thread_level(n->kind))
    return 0;
  size_t k = 0;
  if (n->draft) {
    out[k] = store_draft_target(n->channel_id, n->draft);
    if (out[k])
      k++;
    store_draft d;
    if (store_draft_get(fs->store, n->channel_id, n->draft, &d) == 0) {
      if (d.thread_chat_id) {
        out[k++] = d.thread_chat_id;
        d.thread_chat_id = NULL;
      }
      store_draft_clear(&d);
    }
  } else if (n->thread_id) {
    out[k] = strdup(n->thread_id);
    if (out[k])
      k++;
  }
  return k;
}

/* Waits for ids, a slice at a time so that an interrupted fsync (Ctrl-C)
 * returns; then the first refusal among them. */
static int wait_delivered(struct fs *fs, fuse_req_t req, const store_ids *ids)
{
  int r;
  while ((r = store_ids_wait(fs->store, ids, 0.5)) == -ETIMEDOUT) {
    if (fuse_req_interrupted(req))
      return -EINTR;
  }
  if (r < 0)
    return r;
  return store_ids_failure(fs->store, ids);
}

/* fsync: what this open wrote and not yet closed is journaled now; then
 * waits until everything its file's target has queued (and everything this
 * open journaled) is delivered.  A refusal is the fsync's error, now and at
 * every later fsync of this open. */
void run_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
                     struct fuse_file_info *fi)
{
  (void)ino;
  (void)datasync;
  struct fs *fs = fuse_req_userdata(req);
  struct fh *h = (struct fh *)(uintptr_t)fi->fh;
  store_ids now = { 0 }, wait = { 0 };
  pthread_mutex_lock(&h->lock);
  int r = h->wk == W_NONE ? 0 : commit_pending(fs, h, &now);
  for (size_t i = 0; r == 0 && i < h->ids.n; i++)
    r = store_ids_add(&wait, h->ids.v[i]);
  pthread_mutex_unlock(&h->lock);
  char *targets[2];
  size_t nt = sync_targets(fs, h->node, targets);
  if (r == 0)
    r = store_pending_ids(fs->store, (const char *const *)targets, nt, &wait);
  if (r == 0)
    r = wait_delivered(fs, req, &wait);
  for (size_t i = 0; i < nt; i++)
    free(targets[i]);
  pthread_mutex_lock(&h->lock);
  if (r < 0 && r != -EINTR && r != -ECANCELED && r != -ENOMEM)
    h->failed = -r;
  if (r == 0 && h->failed)
    r = -h->failed;
  pthread_mutex_unlock(&h->lock);
  store_ids_clear(&now);
  store_ids_clear(&wait);
  reply_err(req, -r);
}

/* fsync of a directory: everything queued below it is delivered. */
void run_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync,
                        struct fuse_file_info *fi)
{
  (void)datasync;
  (void)fi;
  struct fs *fs = fuse_req_userdata(req);
  struct node *n = node_by_ino(fs, ino);
  if (!n) {
    reply_err(req, ENOENT);
    return;
  }
  store_ids wait = { 0 };
  int r = 0;
  switch (n->kind) {
  case N_ROOT:
  case N_META:
  case N_OUTBOX:
    r = store_pending_ids_of_channel(fs->store, NULL, NULL, &wait);
    break;
  case N_CHANNEL: {
    struct chview c;
    cliq_error err;
    if (chview_get(fs, n->channel_id, STORE_CACHED, &c, &err) < 0)
      memset(&c, 0, sizeof c);
    r = store_pending_ids_of_channel(fs->store, n->channel_id, c.chat_id,
                                     &wait);
    chview_clear(&c);
    break;
  }
  case N_THREAD: {
    char *targets[2];
    size_t nt = sync_targets(fs, n, targets);
    r = store_pending_ids(fs->store, (const char *const *)targets, nt, &wait);
    for (size_t i = 0; i < nt; i++)
      free(targets[i]);
    break;
  }
  default:
    break;
  }
  if (r == 0)
    r = wait_delivered(fs, req, &wait);
  store_ids_clear(&wait);
  reply_err(req, -r);
}
