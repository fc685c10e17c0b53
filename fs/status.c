/* fs/status.c: store callbacks turned into kernel invalidations, and the
 * .cliqfs/status document. */
#include "fs/fs_i.h"

/* ---- Callbacks from the store (any thread) -------------------------------------------- */

static void inval_node_if(struct fs *fs, const char *ident)
{
  pthread_mutex_lock(&fs->lock);
  struct node *n = find_ident_locked(fs, ident);
  fuse_ino_t ino = n ? n->ino : 0;
  pthread_mutex_unlock(&fs->lock);
  if (ino)
    inval_inode(fs->inval, ino);
}

static void inval_thread_nodes(struct fs *fs, const char *tid)
{
  char *ident = ident_of("t", tid, NULL);
  if (!ident)
    return;
  inval_node_if(fs, ident);
  for (size_t i = 0; i < sizeof thread_files / sizeof *thread_files; i++) {
    char *fi = ident_of("t", tid, kinds[thread_files[i]].file);
    if (fi)
      inval_node_if(fs, fi);
    free(fi);
  }
  free(ident);
}

/* Every node whose look depends on a thread list or a log of this chat. */
void inval_matching(struct fs *fs, const char *channel_id,
                           const char *chat_id)
{
  size_t cap = 64, k = 0;
  fuse_ino_t *inos = malloc(cap * sizeof *inos);
  if (!inos)
    return;
  pthread_mutex_lock(&fs->lock);
  for (size_t b = 0; b < fs->n_buckets; b++) {
    for (struct node *n = fs->by_ino[b]; n; n = n->next_ino) {
      bool hit = false;
      if (channel_id && n->channel_id && strcmp(n->channel_id, channel_id) == 0 &&
          (n->kind == N_CHANNEL || is_thread_level(n->kind)))
        hit = true;
      if (chat_id && n->thread_id && strcmp(n->thread_id, chat_id) == 0 &&
          is_thread_level(n->kind))
        hit = true;
      if (!hit)
        continue;
      if (k == cap) {
        fuse_ino_t *ni = realloc(inos, cap * 2 * sizeof *ni);
        if (!ni)
          break;
        inos = ni;
        cap *= 2;
      }
      inos[k++] = n->ino;
    }
  }
  pthread_mutex_unlock(&fs->lock);
  for (size_t i = 0; i < k; i++)
    inval_inode(fs->inval, inos[i]);
  free(inos);
}

void on_log_grew(void *ctx, const char *chat_id)
{
  struct fs *fs = ctx;
  if (strstr(chat_id, "-T-")) {
    inval_thread_nodes(fs, chat_id);
    inval_matching(fs, NULL, chat_id);   /* drafts opened as this thread */
    return;
  }
  /* A channel's own conversation: find which channel from the cached list. */
  store_channels *cs = NULL;
  if (store_channels_get(fs->store, STORE_CACHED, &cs, NULL) < 0)
    return;
  for (size_t i = 0; i < cs->count; i++) {
    if (strcmp(cs->items[i].chat_id, chat_id) != 0)
      continue;
    char *a = ident_of("c", cs->items[i].channel_id, "messages");
    char *b = ident_of("c", cs->items[i].channel_id, NULL);
    if (a)
      inval_node_if(fs, a);
    if (b)
      inval_node_if(fs, b);
    free(a);
    free(b);
  }
  store_channels_unref(cs);
  inval_inode(fs->inval, FUSE_ROOT_ID);
}

void on_threads_changed(void *ctx, const char *channel_id)
{
  struct fs *fs = ctx;
  if (channel_id)
    inval_matching(fs, channel_id, NULL);
}

void on_drafts_changed(void *ctx, const char *channel_id)
{
  struct fs *fs = ctx;
  pthread_mutex_lock(&fs->lock);
  fs->drafts_version++;
  pthread_mutex_unlock(&fs->lock);
  on_threads_changed(ctx, channel_id);
}

/* An answer had malformed entries: the rest is shown, and one errors line
 * says what was left out (also from an attempt that is handed on: the
 * store reports each reason once). */
void on_entries_skipped(void *ctx, const char *what, size_t count,
                               const char *why)
{
  struct fs *fs = ctx;
  enum patience was = patience_swap(PATIENCE_WAIT);
  fs_fail_path(fs, what, EIO, NULL, "%zu malformed %s left out: %s", count,
               count == 1 ? "entry" : "entries", why);
  patience_swap(was);
}

/* Deliveries wait for the state folder (full, read-only): one errors line
 * until one goes through again. */
void on_delivery_stalled(void *ctx, const cliq_error *err)
{
  struct fs *fs = ctx;
  enum patience was = patience_swap(PATIENCE_WAIT);
  fs_fail_path(fs, ".cliqfs/outbox", err && err->err ? err->err : EIO, NULL,
               "deliveries wait: the state folder %s cannot be written (%s); "
               "nothing is lost, they go out once there is room",
               fs->cfg->state_dir ? fs->cfg->state_dir : "?",
               err && err->message[0] ? err->message : "?");
  patience_swap(was);
}

/* Cliq refused a journaled write for good: one errors line, saying where
 * the entry is kept. */
void on_write_failed(void *ctx, const outbox_entry *e, const char *path,
                            const cliq_error *err)
{
  struct fs *fs = ctx;
  cliq_error line;
  memset(&line, 0, sizeof line);
  if (err)
    line = *err;
  if (!line.err)
    line.err = EIO;
  char *name = entry_name(e);
  char what[sizeof line.message];
  memcpy(what, line.message, sizeof what);
  line.message[0] = '\0';      /* the line's message is the one below */
  fs_fail_path(fs, path, line.err, &line,
               "%s (not delivered, kept as .cliqfs/failed/%s)",
               what[0] ? what : strerror(line.err), name ? name : "?");
  free(name);
}

/* ---- Status ------------------------------------------------------------------------ */

/* Epoch seconds as ISO 8601 UTC (status shows both). */
static json_t *iso_of(double epoch_s)
{
  char iso[40];
  store_format_time((int64_t)(epoch_s * 1000), iso, sizeof iso);
  return json_string(iso);
}

char *status_text(struct fs *fs)
{
  json_t *root = json_object();
  json_t *apis = json_object();
  for (int a = 0; a < CLIQ_API_COUNT; a++) {
    gov_api_status gs = { 0 };
    const struct cliq_api_info *info = cliq_api_info((enum cliq_api)a);
    if (fs->gov) {
      gov_status(fs->gov, (enum cliq_api)a, &gs);
    } else {
      gs.limit = info->limit;
      gs.window_s = info->window_s;
    }
    json_t *o = json_pack("{s:i, s:f, s:i, s:f, s:i}", "limit", gs.limit,
                          "window_s", gs.window_s, "used", gs.used,
                          "locked_until", gs.locked_until, "waiting",
                          gs.waiting);
    if (o && gs.locked_until > 0)
      json_object_set_new(o, "locked_until_iso", iso_of(gs.locked_until));
    json_object_set_new(apis, cliq_api_name((enum cliq_api)a), o);
  }
  json_object_set_new(root, "apis", apis);
  tcache_stats ts = { 0 };
  if (fs->cache)
    tcache_stats_get(fs->cache, &ts);
  json_object_set_new(root, "cache",
                      json_pack("{s:I, s:I, s:I, s:I, s:f}", "entries",
                                (json_int_t)ts.entries, "hits",
                                (json_int_t)ts.hits, "misses",
                                (json_int_t)ts.misses, "bytes",
                                (json_int_t)ts.bytes, "oldest_age_s",
                                ts.oldest_age_s));
  store_outbox_stats os;
  if (fs->store)
    store_outbox_stats_get(fs->store, &os);
  else
    memset(&os, 0, sizeof os);
  json_object_set_new(
      root, "outbox",
      json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "depth",
                (json_int_t)os.depth, "failed", (json_int_t)os.failed,
                "delivered", (json_int_t)os.delivered, "refused",
                (json_int_t)os.refused, "retries", (json_int_t)os.retries,
                "sends", (json_int_t)os.sends, "checks", (json_int_t)os.checks,
                "found", (json_int_t)os.found));
  if (fs->store && os.depth > 0) {
    /* The oldest message still waiting, and since when. */
    outbox_entry *items = NULL;
    size_t n = 0;
    if (store_outbox_list(fs->store, false, &items, &n) == 0 && n > 0) {
      double oldest = items[0].created;
      for (size_t i = 1; i < n; i++)
        if (items[i].created < oldest)
          oldest = items[i].created;
      json_t *ob = json_object_get(root, "outbox");
      json_object_set_new(ob, "oldest", json_real(oldest));
      json_object_set_new(ob, "oldest_iso", iso_of(oldest));
    }
    outbox_entry_list_free(items, n);
  }
  json_object_set_new(root, "auth",
                      json_string(fs->client ? cliq_client_auth_state(fs->client)
                                             : "none"));
  if (fs->store) {
    char *me_id = NULL, *me_name = NULL;
    store_self_get(fs->store, &me_id, &me_name);
    if (me_id) {
      char *me = NULL;
      if (asprintf(&me, "%s (%s)", me_name ? me_name : "?", me_id) >= 0) {
        json_object_set_new(root, "me", json_string(me));
        free(me);
      }
    }
    free(me_id);
    free(me_name);
  }
  if (fs->store) {
    store_sync_stats ss;
    store_sync_stats_get(fs->store, &ss);
    json_t *sync = json_pack(
        "{s:s, s:I, s:I, s:I, s:I, s:I, s:I}", "mode", store_sync_name(ss.mode),
        "channels", (json_int_t)ss.channels, "channels_total",
        (json_int_t)ss.channels_total, "threads", (json_int_t)ss.threads,
        "threads_synced", (json_int_t)ss.threads_synced, "messages",
        (json_int_t)ss.messages, "requests", (json_int_t)ss.requests);
    if (sync) {
      json_object_set_new(sync, "eta_s", ss.eta_s >= 0 ? json_real(ss.eta_s)
                                                       : json_null());
      json_object_set_new(sync, "last_full_pass",
                          ss.last_full_pass > 0 ? json_real(ss.last_full_pass)
                                                : json_null());
      if (ss.last_full_pass > 0)
        json_object_set_new(sync, "last_full_pass_iso",
                            iso_of(ss.last_full_pass));
      json_object_set_new(sync, "share", json_integer(ss.share));
      json_t *backoff = json_object();
      for (int a = 0; backoff && a < CLIQ_API_COUNT; a++)
        if (ss.backoff[a])
          json_object_set_new(backoff, cliq_api_name((enum cliq_api)a),
                              json_integer(ss.backoff[a]));
      json_object_set_new(sync, "backoff", backoff ? backoff : json_null());
      json_object_set_new(root, "sync", sync);
    }
    store_memory_stats ms;
    store_memory_stats_get(fs->store, &ms);
    json_object_set_new(
        root, "memory",
        json_pack("{s:I, s:I, s:I, s:I}", "logs", (json_int_t)ms.logs,
                  "logs_on_disk_only", (json_int_t)ms.evicted,
                  "log_bytes", (json_int_t)ms.resident, "log_bytes_budget",
                  (json_int_t)ms.budget));
  }
  json_object_set_new(root, "waiting", calls_json(fs));
  if (fs->cfg->state_dir)
    json_object_set_new(root, "state_dir", json_string(fs->cfg->state_dir));
  json_t *fuse = json_object();
  json_t *getattr = json_object();
  pthread_mutex_lock(&fs->lock);
  json_object_set_new(root, "last_errors", json_deep_copy(fs->last_errors));
  for (int k = 0; k < N_KIND_COUNT; k++)
    json_object_set_new(getattr, kinds[k].label,
                        json_integer((json_int_t)__atomic_load_n(
                            &fs->getattr_count[k], __ATOMIC_RELAXED)));
  json_object_set_new(fuse, "nodes", json_integer((json_int_t)fs->n_nodes));
  pthread_mutex_unlock(&fs->lock);
  json_object_set_new(fuse, "getattr", getattr);
  json_t *reads = json_object();
  for (int k = 0; k < N_KIND_COUNT; k++)
    json_object_set_new(reads, kinds[k].label,
                        json_integer((json_int_t)__atomic_load_n(
                            &fs->read_count[k], __ATOMIC_RELAXED)));
  json_object_set_new(fuse, "read", reads);
  json_object_set_new(fuse, "flush",
                      json_integer((json_int_t)__atomic_load_n(
                          &fs->flush_count, __ATOMIC_RELAXED)));
  json_object_set_new(fuse, "workers", json_integer((json_int_t)fs->fuse_workers));
  json_object_set_new(fuse, "waiting",
                      json_integer((json_int_t)waiters_busy(fs->waiters)));
  json_object_set_new(fuse, "invalidations_sent",
                      json_integer((json_int_t)inval_sent(fs->inval)));
  json_object_set_new(fuse, "invalidations_pending",
                      json_integer((json_int_t)inval_pending(fs->inval)));
  json_object_set_new(root, "fuse", fuse);
  json_object_set_new(root, "time_scale", json_real(fs->cfg->time_scale > 0
                                                        ? fs->cfg->time_scale
                                                        : 1.0));
  char *t = NULL;
  size_t len = 0;
  json_text(root, &t, &len);
  json_decref(root);
  return t;
}
